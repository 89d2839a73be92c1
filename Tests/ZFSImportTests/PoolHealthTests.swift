// PoolHealth.evaluate without I/O: synthetic labels and uberblock rings in memory, every rule of
// the emulated tryimport (open, validate, roll-up, uberblock, MMP, version, features, trusted
// pass, guid sum) and the check_status that follows. The same scenarios against real OpenZFS
// are in PoolHealthInteropTests.

import Testing
import ZFSDevice
import ZFSFormat
import ZFSMultihost
import ZFSTestSupport

@testable import ZFSImport

/// A pool made of synthetic labels: one or two top-level vdevs, devices in memory.
struct SyntheticPool {
    static let poolGUID: UInt64 = 1000
    static let size: UInt64 = 64 << 20

    var topLevels: [NVList]
    var state: PoolState = .exported
    var hostID: UInt64? = 0x1234
    var version: UInt64 = 5000
    var txg: UInt64 = 50
    var features: [String] = ["com.delphix:hole_birth"]
    /// `vdev_children` written into every label (defaults to the number of top-levels).
    var vdevChildren: UInt64?
    var uberblock: Uberblock

    /// A 2-way mirror (top 10; leaves 11 at /d/a, 12 at /d/b).
    static func mirror() -> SyntheticPool {
        SyntheticPool(topLevels: [Self.mirrorTop(id: 0, guid: 10, leaves: [(11, "/d/a"), (12, "/d/b")])])
    }

    static func mirrorTop(id: UInt64, guid: UInt64, leaves: [(UInt64, String)], type: String = "mirror", isLog: Bool = false) -> NVList {
        var top = Synthetic.interior(
            type: type, id: id, guid: guid,
            children: leaves.enumerated().map { Synthetic.leaf(id: UInt64($0), guid: $1.0, path: $1.1) }, isLog: isLog)
        top.set("asize", .uint64(60 << 20))
        return top
    }

    init(topLevels: [NVList]) {
        self.topLevels = topLevels
        let sum = topLevels.reduce(Self.poolGUID) { $0 &+ VdevNode(config: $1).guidSum }
        uberblock = Uberblock(txg: TXG(50), guidSum: sum, timestampInSeconds: 1_700_000_000, byteOrder: .little)
    }

    /// Every leaf: (guid, path, top-level config).
    var leaves: [(guid: UInt64, path: String, top: NVList)] {
        topLevels.flatMap { top in
            VdevNode(config: top).leaves.map { ($0.guid.rawValue, $0.path ?? "", top) }
        }
    }

    func label(for leaf: UInt64, top: NVList) -> NVList {
        var label = Synthetic.label(
            poolGUID: Self.poolGUID, txg: txg, state: state, hostID: hostID,
            vdevChildren: vdevChildren ?? UInt64(topLevels.count), leafGUID: leaf, tree: top, version: version)
        var list = NVList()
        for feature in features { list.set(feature, .boolean) }
        label.set("features_for_read", .nvlist(list))
        return label
    }

    /// A device holding `configs` (per label; nil = an empty label) and rings with `uberblock`.
    func device(path: String, configs: [NVList?], rings: Bool = true, size: UInt64 = SyntheticPool.size) throws -> DeviceLabels {
        let device = InMemoryBlockDevice.sparse(size: size, path: path)
        for (index, config) in configs.enumerated() {
            guard let config, let offset = DeviceLabels.labelOffsets(deviceSize: size)[index] else { continue }
            let ring: VdevLabel.RingContents = rings ? .synced([uberblock], layout: UberblockRing(ashift: 9), multihost: false) : .zero
            let bytes = try VdevLabel.encode(
                configPacked: try config.encoded(as: .xdr), ring: ring, labelOffset: offset, byteOrder: .little)
            device.setBytes(bytes, at: offset)
        }
        return DeviceLabels(reading: device)
    }

    /// The scanned candidate: labels of the leaves in `present` (default all) fed to the assembler.
    func candidate(present: Set<UInt64>? = nil) -> PoolCandidate {
        var assembler = PoolAssembler()
        for leaf in leaves where present?.contains(leaf.guid) ?? true {
            assembler.add(label(for: leaf.guid, top: leaf.top), path: leaf.path, searchOrder: 10, labelCount: 4)
        }
        return assembler.assemble()[0]
    }

    /// Devices for every leaf, with four good labels, except as overridden.
    func devices(overriding overrides: [String: LeafDevice] = [:]) throws -> [String: LeafDevice] {
        var map: [String: LeafDevice] = [:]
        for leaf in leaves {
            let config = label(for: leaf.guid, top: leaf.top)
            map[leaf.path] = .opened(try device(path: leaf.path, configs: [config, config, config, config]))
        }
        return map.merging(overrides) { $1 }
    }

    func evaluate(
        present: Set<UInt64>? = nil, overriding overrides: [String: LeafDevice] = [:], localHostID: UInt64 = 0x1234,
        neighbors: [UInt64: NeighborRecord] = [:], tunables: MultihostTunables = MultihostTunables()
    ) throws -> PoolHealth {
        PoolHealth.evaluate(
            candidate(present: present), devices: try devices(overriding: overrides), localHostID: localHostID,
            neighbors: neighbors, tunables: tunables)
    }
}

extension VdevNode {
    /// "TYPE STATE/AUX" for the vdev and its children, for compact expectations.
    var stateSummary: String {
        let own = "\(type) \(state.map { "\($0)" } ?? "-")/\(aux.map { "\($0)" } ?? "-")"
        return children.isEmpty ? own : own + " [" + children.map(\.stateSummary).joined(separator: ", ") + "]"
    }
}

@Suite struct PoolHealthTests {
    @Test func healthyMirrorIsOnline() throws {
        let health = try SyntheticPool.mirror().evaluate()
        #expect(health.root.stateSummary == "root HEALTHY/NONE [mirror HEALTHY/NONE [file HEALTHY/NONE, file HEALTHY/NONE]]")
        #expect(health.healthName == "ONLINE")
        #expect(health.status == .ok)
        #expect(health.statusText == nil)
        #expect(health.actionText == "The pool can be imported using its name or numeric identifier.")
        #expect(health.stage == .complete)
        #expect(health.uberblock?.txg == TXG(50))
        #expect(health.forceRequirement == nil)
        #expect(health.activityCheck == .notRequired)
        #expect(health.isImportable)
    }

    @Test func mirrorWithALeafThatCannotOpenIsDegraded() throws {
        let health = try SyntheticPool.mirror().evaluate(overriding: ["/d/b": .cannotOpen("gone")])
        #expect(health.root.stateSummary == "root DEGRADED/NONE [mirror DEGRADED/NONE [file HEALTHY/NONE, file CANT_OPEN/OPEN_FAILED]]")
        #expect(health.status == .missingDeviceReplicated)
        #expect(health.status.messageID == "ZFS-8000-2Q")
        #expect(health.actionText.hasPrefix("The pool can be imported despite missing or damaged devices."))
        #expect(health.deviceNotes["/d/b"] == ["gone"])
    }

    @Test func mirrorWithNoLeafLeftIsUnavailable() throws {
        let pool = SyntheticPool.mirror()
        let health = try pool.evaluate(overriding: ["/d/a": .cannotOpen("gone"), "/d/b": .cannotOpen("gone")])
        #expect(health.root.stateSummary == "root CANT_OPEN/NO_REPLICAS [mirror CANT_OPEN/NO_REPLICAS [file CANT_OPEN/OPEN_FAILED, file CANT_OPEN/OPEN_FAILED]]")
        #expect(health.stage == .openVdevs)
        #expect(health.status == .missingDeviceNoReplicas)
        #expect(health.healthName == "UNAVAIL")
        #expect(!health.isImportable)
    }

    /// Labels 0 and 1 gone (empty, or failing their checksum): labels 2 and 3 carry the leaf.
    @Test func twoDamagedLabelsStillValidate() throws {
        let pool = SyntheticPool.mirror()
        let config = pool.label(for: 11, top: pool.topLevels[0])
        var damaged = try pool.device(path: "/d/a", configs: [nil, config, config, config])
        damaged.labels[1].status = .badChecksum
        let health = try pool.evaluate(overriding: ["/d/a": .opened(damaged)])
        #expect(health.healthName == "ONLINE")
        #expect(health.status == .ok)
        #expect(health.deviceNotes["/d/a"]?.count == 1)
    }

    @Test func aLeafWithNoValidLabelHasAnInvalidLabel() throws {
        let pool = SyntheticPool.mirror()
        let empty = try pool.device(path: "/d/b", configs: [nil, nil, nil, nil])
        let health = try pool.evaluate(overriding: ["/d/b": .opened(empty)])
        #expect(health.root.children[0].children[1].stateSummary == "file CANT_OPEN/BAD_LABEL")
        #expect(health.healthName == "DEGRADED")
        #expect(health.status == .corruptLabelReplicated)
        #expect(health.status.messageID == "ZFS-8000-4J")
        #expect(health.root.children[0].children[1].aux?.zpoolImportNote == "invalid label")
    }

    /// The device at a leaf's path holds another vdev's label: corrupted data (FAULTED).
    @Test func aLeafWhosePathHoldsAnotherVdevIsCorrupt() throws {
        let pool = SyntheticPool.mirror()
        let other = pool.label(for: 99, top: SyntheticPool.mirrorTop(id: 0, guid: 98, leaves: [(99, "/x"), (97, "/y")]))
        let health = try pool.evaluate(overriding: ["/d/b": .opened(try pool.device(path: "/d/b", configs: [other, other, other, other]))])
        let leaf = health.root.children[0].children[1]
        #expect(leaf.stateSummary == "file CANT_OPEN/CORRUPT_DATA")
        #expect(leaf.state?.zpoolName(aux: leaf.aux ?? .none) == "FAULTED")
        #expect(health.status == .corruptLabelReplicated)
    }

    /// Labels newer than every uberblock: a feature pool finds no label to go with its best
    /// uberblock (root "corrupted data"); a legacy pool gets further, and the trusted pass, which
    /// ignores labels newer than the uberblock, finds none valid.
    @Test func labelsNewerThanTheUberblock() throws {
        var pool = SyntheticPool.mirror()
        pool.txg = 60  // labels at txg 60, uberblock at 50
        let features = try pool.evaluate()
        #expect(features.stage == .selectUberblock)
        #expect(features.root.stateSummary == "root CANT_OPEN/CORRUPT_DATA [mirror HEALTHY/NONE [file HEALTHY/NONE, file HEALTHY/NONE]]")
        #expect(features.status == .corruptPool)
        pool.version = 28
        pool.uberblock.version = 28
        let legacy = try pool.evaluate()
        #expect(legacy.stage == .trustedConfig)
        #expect(legacy.root.stateSummary == "root CANT_OPEN/NO_REPLICAS [mirror CANT_OPEN/NO_REPLICAS [file CANT_OPEN/BAD_LABEL, file CANT_OPEN/BAD_LABEL]]")
        #expect(legacy.status == .corruptLabelNoReplicas)
    }

    @Test func offlineLeafIsOffline() throws {
        let offlineLeaf = Synthetic.leaf(id: 1, guid: 12, path: "/d/b", extra: [("offline", .uint64(1))])
        var top = Synthetic.interior(type: "mirror", id: 0, guid: 10, children: [Synthetic.leaf(id: 0, guid: 11, path: "/d/a"), offlineLeaf])
        top.set("asize", .uint64(60 << 20))
        let health = try SyntheticPool(topLevels: [top]).evaluate()
        #expect(health.root.stateSummary == "root DEGRADED/NONE [mirror DEGRADED/NONE [file HEALTHY/NONE, file OFFLINE/NONE]]")
        #expect(health.status == .offlineDevice)
        #expect(health.statusText == "One or more devices are offlined.")
    }

    @Test func aDeviceSmallerThan64MiBIsTooSmall() throws {
        let pool = SyntheticPool.mirror()
        let config = pool.label(for: 12, top: pool.topLevels[0])
        let small = try pool.device(path: "/d/b", configs: [config, config, config, config], size: 32 << 20)
        let health = try pool.evaluate(overriding: ["/d/b": .opened(small)])
        #expect(health.root.children[0].children[1].stateSummary == "file CANT_OPEN/TOO_SMALL")
        #expect(health.root.children[0].children[1].aux?.zpoolImportNote == "corrupted data")
    }

    @Test func raidzToleratesParityFailures() throws {
        let top = SyntheticPool.mirrorTop(id: 0, guid: 10, leaves: [(11, "/d/a"), (12, "/d/b"), (13, "/d/c")], type: "raidz")
        let pool = SyntheticPool(topLevels: [top])
        let one = try pool.evaluate(overriding: ["/d/c": .cannotOpen("gone")])
        #expect(one.healthName == "DEGRADED")
        let two = try pool.evaluate(overriding: ["/d/b": .cannotOpen("gone"), "/d/c": .cannotOpen("gone")])
        #expect(two.root.stateSummary == "root CANT_OPEN/NO_REPLICAS [raidz CANT_OPEN/NO_REPLICAS [file HEALTHY/NONE, file CANT_OPEN/OPEN_FAILED, file CANT_OPEN/OPEN_FAILED]]")
        #expect(two.status == .missingDeviceNoReplicas)
        #expect(two.uberblock == nil)
    }

    // MARK: Missing top-level vdevs

    static func twoTopLevels(secondIsLog: Bool = false) -> SyntheticPool {
        SyntheticPool(topLevels: [
            SyntheticPool.mirrorTop(id: 0, guid: 10, leaves: [(11, "/d/a"), (12, "/d/b")]),
            SyntheticPool.mirrorTop(id: 1, guid: 20, leaves: [(21, "/d/c"), (22, "/d/d")], isLog: secondIsLog),
        ])
    }

    /// vdev_children says 2, only id 0 is found: the stand-in for id 1 cannot be opened in the
    /// trusted pass, so the root has insufficient replicas (MISSING_DEV_NR).
    @Test func aMissingTopLevelMakesThePoolUnavailable() throws {
        let pool = Self.twoTopLevels()
        let health = try pool.evaluate(present: [11, 12], overriding: ["/d/c": .cannotOpen("gone"), "/d/d": .cannotOpen("gone")])
        #expect(health.root.stateSummary == "root CANT_OPEN/NO_REPLICAS [mirror HEALTHY/NONE [file HEALTHY/NONE, file HEALTHY/NONE], missing CANT_OPEN/OPEN_FAILED]")
        #expect(health.stage == .trustedConfig)
        #expect(health.status == .missingDeviceNoReplicas)
        #expect(health.status.messageID == "ZFS-8000-3C")
        #expect(health.actionText == "The pool cannot be imported. Attach the missing\n\tdevices and try again.")
        #expect(health.missingTopLevels == [PoolHealth.MissingTopLevel(id: 1, record: nil)])
        #expect(health.missingTopLevels[0].description == "top-level vdev 1 is missing; no label on the devices found says what it was")
    }

    /// A neighbor list names the missing vdev: the trusted tree has its real shape and guids.
    @Test func aNeighborListNamesTheMissingTopLevel() throws {
        let pool = Self.twoTopLevels()
        let full = pool.candidate()
        let record = try #require(NeighborRecord(describing: full.root.children[1]))
        let health = try pool.evaluate(
            present: [11, 12], overriding: ["/d/c": .cannotOpen("gone"), "/d/d": .cannotOpen("gone")], neighbors: [1: record])
        #expect(health.root.stateSummary == "root CANT_OPEN/NO_REPLICAS [mirror HEALTHY/NONE [file HEALTHY/NONE, file HEALTHY/NONE], mirror CANT_OPEN/NO_REPLICAS [file CANT_OPEN/OPEN_FAILED, file CANT_OPEN/OPEN_FAILED]]")
        #expect(health.root.children[1].guid == VdevGUID(20))
        #expect(health.root.children[1].leaves.map(\.path) == ["/d/c", "/d/d"])
        #expect(health.missingTopLevels.map(\.description) == ["top-level vdev 1 (mirror of /d/c, /d/d, guid 20) is missing"])
        // When the recorded paths open (the devices were just not scanned), nothing is missing.
        let found = try pool.evaluate(present: [11, 12], neighbors: [1: record])
        #expect(found.healthName == "ONLINE")
        #expect(found.missingTopLevels.isEmpty)
    }

    /// A missing log vdev: OpenZFS 2.1.11's tryimport fails with BAD_GUID_SUM.
    @Test func aMissingLogIsABadGUIDSum() throws {
        let pool = Self.twoTopLevels(secondIsLog: true)
        let record = try #require(NeighborRecord(describing: pool.candidate().root.children[1]))
        #expect(record.isLog)
        let health = try pool.evaluate(
            present: [11, 12], overriding: ["/d/c": .cannotOpen("gone"), "/d/d": .cannotOpen("gone")], neighbors: [1: record])
        #expect(health.root.stateSummary == "root CANT_OPEN/BAD_GUID_SUM [mirror HEALTHY/NONE [file HEALTHY/NONE, file HEALTHY/NONE], mirror CANT_OPEN/NO_REPLICAS [file CANT_OPEN/OPEN_FAILED, file CANT_OPEN/OPEN_FAILED]]")
        #expect(health.status == .badGUIDSum)
        #expect(health.root.aux?.zpoolImportNote == "missing device")
    }

    /// No placeholder, but the uberblock counts vdevs the labels do not describe.
    @Test func aGUIDSumMismatchIsBadGUIDSum() throws {
        var pool = SyntheticPool.mirror()
        pool.uberblock.guidSum &+= 77
        let health = try pool.evaluate()
        #expect(health.root.stateSummary.hasPrefix("root CANT_OPEN/BAD_GUID_SUM"))
        #expect(health.status == .badGUIDSum)
        #expect(health.status.messageID == "ZFS-8000-6X")
    }

    // MARK: Uberblock, hosts, versions, features

    @Test func noUsableUberblockIsCorruptPool() throws {
        var pool = SyntheticPool.mirror()
        pool.state = .active
        let devices = try pool.leaves.reduce(into: [String: LeafDevice]()) { map, leaf in
            let config = pool.label(for: leaf.guid, top: leaf.top)
            map[leaf.path] = .opened(try pool.device(path: leaf.path, configs: [config, config, config, config], rings: false))
        }
        let health = try pool.evaluate(overriding: devices)
        #expect(health.root.stateSummary.hasPrefix("root CANT_OPEN/CORRUPT_DATA"))
        #expect(health.healthName == "FAULTED")
        #expect(health.status == .corruptPool)
        #expect(health.stage == .selectUberblock)
    }

    /// Not exported, written by hostid 0x1234, read here as 0x5678: importable with -f, and the
    /// requirement names the host, its hostid and the uberblock's time. Multihost off: no check.
    @Test func aPoolLastUsedElsewhereNeedsForce() throws {
        var pool = SyntheticPool.mirror()
        pool.state = .active
        let health = try pool.evaluate(localHostID: 0x5678)
        #expect(health.healthName == "ONLINE")
        #expect(health.status == .hostIDMismatch)
        #expect(health.statusText == "The pool was last accessed by another system.")
        #expect(health.actionText == "The pool can be imported using its name or numeric identifier and\n\tthe '-f' flag.")
        #expect(health.status.messageID == "ZFS-8000-EY")
        #expect(health.forceRequirement == PoolHealth.ForceRequirement(hostname: "nodeA", hostID: 0x1234, timestamp: 1_700_000_000))
        #expect(health.activityCheck == .notRequired)
        let message = try #require(health.forceRequirement).message(poolName: "tank") { _ in "Tue Nov 14 22:13:20 2023\n" }
        #expect(message == "cannot import 'tank': pool was previously in use from another system.\nLast accessed by nodeA (hostid=1234) at Tue Nov 14 22:13:20 2023\nThe pool can be imported, use 'zpool import -f' to import the pool.\n")
        // The same host: nothing to report.
        #expect(try pool.evaluate(localHostID: 0x1234).status == .ok)
    }

    /// An uberblock without MMP fields (a writer older than MMP): 2.1.11 would run a 20 s check.
    @Test func anActivityCheckIsRequiredButNotRun() throws {
        var pool = SyntheticPool.mirror()
        pool.state = .active
        pool.uberblock.mmpMagic = 0
        let health = try pool.evaluate(localHostID: 0x5678)
        #expect(health.activityCheck == .required(minimum: .seconds(20), lastHostID: 0x1234, lastHostname: "nodeA"))
        #expect(health.status == .hostIDMismatch)
        pool.uberblock.mmpMagic = MMPConfig.magic
        pool.uberblock.mmpDelayInNanoseconds = 1_000_000
        pool.uberblock.mmpConfig = MMPConfig(writeIntervalInMilliseconds: 1000, sequence: 0, failIntervals: 10)
        #expect(try pool.evaluate(localHostID: 0x5678).activityCheck == .required(minimum: .seconds(20), lastHostID: 0x1234, lastHostname: "nodeA"))
    }

    /// The tryimport emulation asks ZFSMultihost's ActivityCheck, the importer's own rules, both
    /// whether a check is needed and how long it lasts: for every uberblock shape, pool state and
    /// pair of hostids the answers agree, and the duration follows the tunables it is given (not
    /// OpenZFS's defaults).
    @Test func activityCheckAgreesWithTheImportersRules() throws {
        let tunables = MultihostTunables(intervalInMilliseconds: 250, failIntervals: 4, importIntervals: 7)
        // The four duration cases: fail intervals, never suspends, ZoL 0.7 writer, pre-MMP.
        let shapes: [(magic: UInt64, delay: UInt64, config: MMPConfig?)] = [
            (MMPConfig.magic, 3_000_000, MMPConfig(writeIntervalInMilliseconds: 300, sequence: 0, failIntervals: 5)),
            (MMPConfig.magic, 3_000_000, MMPConfig(writeIntervalInMilliseconds: 300, sequence: 0, failIntervals: 0)),
            (MMPConfig.magic, 3_000_000, nil),
            (0, 0, nil),
            (MMPConfig.magic, 0, nil),  // multihost off
        ]
        var requiredSeen = 0
        for shape in shapes {
            for state in [PoolState.active, .exported] {
                for localHostID: UInt64 in [0, 0x1234, 0x5678] {
                    var pool = SyntheticPool.mirror()
                    pool.state = state
                    pool.uberblock.mmpMagic = shape.magic
                    pool.uberblock.mmpDelayInNanoseconds = shape.delay
                    if let config = shape.config { pool.uberblock.mmpConfig = config }
                    let health = try pool.evaluate(localHostID: localHostID, tunables: tunables)
                    let rule = ActivityCheck.requirement(
                        policy: .openZFS2_1_11, uberblock: pool.uberblock, labelHostID: 0x1234,
                        configState: PoolStateValue(rawValue: state.rawValue), localHostID: UInt32(localHostID))
                    let context = "magic \(shape.magic) delay \(shape.delay) config \(String(describing: shape.config)) state \(state) local \(localHostID)"
                    switch rule {
                    case .notRequired where shape.delay != 0 && localHostID == 0:
                        // No check, but a multihost pool still needs a hostid (the after-trust rule).
                        #expect(health.activityCheck == .noHostID && health.stage == .afterTrust, "\(context)")
                    case .notRequired:
                        #expect(health.activityCheck == .notRequired, "\(context)")
                    case .refusedNoHostID:
                        #expect(health.activityCheck == .noHostID, "\(context)")
                    case .required:
                        requiredSeen += 1
                        let expected = ActivityCheck.duration(for: pool.uberblock, tunables: tunables).nanoseconds
                        #expect(
                            health.activityCheck
                                == .required(minimum: .nanoseconds(Int64(expected)), lastHostID: 0x1234, lastHostname: "nodeA"),
                            "\(context)")
                    }
                }
            }
        }
        #expect(requiredSeen == 5)
        // Case 4 with these tunables: max(1 s, 7 × 250 ms) = 1.75 s, where the defaults give 20 s.
        var preMMP = SyntheticPool.mirror()
        preMMP.state = .active
        preMMP.uberblock.mmpMagic = 0
        #expect(
            try preMMP.evaluate(localHostID: 0x5678, tunables: tunables).activityCheck
                == .required(minimum: .milliseconds(1750), lastHostID: 0x1234, lastHostname: "nodeA"))
    }

    @Test func multihostWithoutALocalHostIDIsRefused() throws {
        var pool = SyntheticPool.mirror()
        pool.state = .active
        pool.uberblock.mmpDelayInNanoseconds = 1_000_000
        pool.uberblock.mmpConfig = MMPConfig(writeIntervalInMilliseconds: 1000, sequence: 0, failIntervals: 10)
        let health = try pool.evaluate(localHostID: 0)
        #expect(health.root.stateSummary.hasPrefix("root CANT_OPEN/ACTIVE"))
        #expect(health.root.aux?.zpoolImportNote == "currently in use")
        #expect(health.status == .hostIDRequired)
        #expect(health.actionText == "Set a unique system hostid with the zgenhostid(8) command.")
        #expect(health.activityCheck == .noHostID)
    }

    @Test func anUnsupportedVersionIsNewerNotCorrupt() throws {
        var pool = SyntheticPool.mirror()
        pool.version = 999
        pool.uberblock.version = 999
        let health = try pool.evaluate()
        #expect(health.root.stateSummary.hasPrefix("root CANT_OPEN/VERSION_NEWER [mirror HEALTHY/NONE"))
        #expect(health.status == .versionNewer)
        #expect(health.root.aux?.zpoolImportNote == "newer version")
    }

    @Test func legacyVersionsAreOlder() throws {
        var pool = SyntheticPool.mirror()
        pool.version = 28
        pool.uberblock.version = 28
        let health = try pool.evaluate()
        #expect(health.status == .versionOlder)
        #expect(health.actionText == "The pool can be imported using its name or numeric identifier, though\n\tsome features will not be available without an explicit 'zpool upgrade'.")
    }

    @Test func unknownReadFeaturesAreUnsupported() throws {
        var pool = SyntheticPool.mirror()
        pool.features = ["com.delphix:hole_birth", "com.example:teleport"]
        let health = try pool.evaluate()
        #expect(health.root.stateSummary.hasPrefix("root CANT_OPEN/UNSUP_FEAT"))
        #expect(health.unsupportedFeatures == ["com.example:teleport"])
        #expect(health.status == .unsupportedFeaturesRead)
        #expect(health.statusText == "The pool uses the following feature(s) not supported on this system:\n\tcom.example:teleport")
        #expect(health.status.actionLabelIsUnindented(rootState: health.health))
        #expect(SupportedFeatures.openZFS2_1_11.count == 34)
    }

    @Test func theFeatureListIsRequired() throws {
        var pool = SyntheticPool.mirror()
        pool.features = []
        var withoutList = try pool.devices()
        for leaf in pool.leaves {
            var config = pool.label(for: leaf.guid, top: leaf.top)
            config["features_for_read"] = nil
            withoutList[leaf.path] = .opened(try pool.device(path: leaf.path, configs: [config, config, config, config]))
        }
        let health = try pool.evaluate(overriding: withoutList)
        #expect(health.root.stateSummary.hasPrefix("root CANT_OPEN/CORRUPT_DATA"))
        #expect(health.status == .corruptPool)
    }

    // MARK: Neighbor records

    @Test func neighborRecordsRoundTripThroughALabel() throws {
        let pool = Self.twoTopLevels()
        let root = pool.candidate().root
        let label = NeighborRecord.label(pool.label(for: 11, top: pool.topLevels[0]), withNeighborsFrom: root)
        let decoded = try NVList(decoding: try label.encoded(as: .xdr))
        let records = try #require(NeighborRecord.records(inLabel: decoded))
        #expect(records.count == 1)  // its own top-level vdev is not listed
        #expect(records[0] == NeighborRecord(
            topLevelID: 1, guid: VdevGUID(20), type: .mirror,
            leaves: [.init(guid: VdevGUID(21), path: "/d/c"), .init(guid: VdevGUID(22), path: "/d/d")]))
        #expect(NeighborRecord.records(inLabel: pool.label(for: 11, top: pool.topLevels[0])) == nil)
        let rebuilt = VdevNode(config: records[0].vdevConfig)
        #expect(rebuilt.guidSum == root.children[1].guidSum)
        #expect(rebuilt.children.map(\.type) == [.file, .file])
    }
}
