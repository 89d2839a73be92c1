// Pool health: what `zpool import` would say about a pool the scan found.
//
// Purpose. A scan (ImportScanner) assembles each pool's config from labels; it never asks
// whether the pool can be opened. `zpool import` does: for every candidate it runs the kernel's
// `spa_tryimport`, a read-only load, and prints the root vdev's state, every vdev's state and
// reason, and a status with an action. This file reproduces that load, for OpenZFS 2.1.11,
// from the scanned config, the labels of each leaf device and (when given) what reading the
// MOS gave, and derives the status as `check_status` (`libzfs_status.c`) does in import mode.
//
// Mechanism (`spa_load` with load state TRYIMPORT, `module/zfs/spa.c`; spec §1.15, §1.16, §3.2,
// §3.6). Each step that fails stops the load; the tree keeps the states it had then.
//   1. Open the label tree (`spa_ld_open_vdevs`, config untrusted, 0 missing top-levels
//      tolerated for a scan): a leaf opens when its path (the scanned device, or for a leaf no
//      scanned device carries, the path its label recorded) opens and is ≥ 64 MiB; a leaf whose
//      label says `offline` is OFFLINE. Interior vdevs open by their type's rule (mirror: one
//      child; raidz/draid: all but `nparity`; root: every non-log top-level). A `missing`
//      placeholder opens (it "pretends to succeed").
//   2. Validate every readable leaf (`vdev_validate`, untrusted): its newest label whose
//      checksum holds must exist (else BAD_LABEL) and name a pool, this vdev (or its top-level)
//      and a state (else CORRUPT_DATA); failures roll up through the parents.
//   3. Select the best uberblock over the readable leaves (`vdev_uberblock_load`); none → root
//      CORRUPT_DATA. Decide whether an MMP activity check is required; with multihost on and
//      no local hostid → root ACTIVE (HOSTID_REQUIRED). Version not supported → VERSION_NEWER.
//      Version 5000: the best leaf's label must have `features_for_read`, all known to 2.1.11
//      (else UNSUP_FEAT).
//   3b. The MOS (`spa_ld_open_rootbp`, the config object): when the caller read it
//      (``PoolHealth/assess(_:in:localHostID:tunables:readingMOS:)`` does, MOSHealth.swift),
//      damage fails the root CORRUPT_DATA with the untrusted tree; a layout we do not read
//      (dRAID) falls back to the label tree below (``PoolHealth/ConfigSource/labels``).
//   4. The trusted pass (`spa_ld_trusted_config`): the MOS's vdev tree, leaf paths copied from
//      the label tree by guid, is opened and validated — pool guids must match, labels newer
//      than the uberblock are ignored, no missing top-level tolerated. Without the MOS, the
//      label tree stands in for it, each `missing` placeholder replaced with the top-level vdev
//      a neighbor list (TopLevelNeighbors.swift) describes, or else with a stand-in that cannot
//      be opened. A missing log vdev → root BAD_GUID_SUM; `ub_guid_sum` ≠ the tree's guid sum
//      → root BAD_GUID_SUM. Then the MOS's `features_for_read` (`spa_ld_check_features`).
//   5. After trust: multihost on (judged from the uberblock) and no local hostid → root ACTIVE.
//
// What it does NOT guarantee:
//   * Without the MOS (not asked for, or dRAID), everything the MOS decides is guessed from
//     the labels: a destroyed MOS lists as importable, a missing top-level vdev is assumed to
//     be a normal vdev unless a neighbor list says otherwise, pools older than version 19 (no
//     `vdev_children`) show a missing top-level vdev only as a guid-sum mismatch.
//   * No activity check is run: a pool that needs one (not exported, last written by another
//     hostid, multihost on or an MMP-unaware writer) is reported as if the check had found it
//     idle, with ``PoolHealth/ActivityCheck/required(minimum:lastHostID:lastHostname:)`` saying
//     so. OpenZFS would watch it for that long, and say HOSTID_ACTIVE if it is in use.
//   * Statuses that need more of the MOS than its config are never derived: RESILVERING,
//     REBUILDING, BAD_LOG, ERRATA, FEAT_DISABLED, UNSUP_FEAT_WRITE, NON_NATIVE_ASHIFT; spares
//     and cache devices are not shown.
//
// Invariants. ``PoolHealth/evaluate(_:devices:localHostID:neighbors:tunables:mos:)`` is pure: the same
// candidate, device map and hostid give the same answer. Only
// ``PoolHealth/assess(_:in:localHostID:tunables:readingMOS:)`` does I/O (read-only), through ``LeafDeviceReader``.
//
// Worked example (verified against libzpool 2.1.11, PoolHealthInteropTests): a pool of
// `a.img` and `mirror b.img c.img` with b and c deleted. The scan finds only a.img, whose newest
// label says `vdev_children` 2: id 1 becomes `missing`. Pass 1 opens a.img, the placeholder
// "opens", root HEALTHY; a.img validates; the best uberblock (txg 14) has a guid sum that
// includes the mirror and its leaves. Pass 2: the stand-in for id 1 cannot be opened, 1 error
// among 2 core top-levels with 0 tolerated → root CANT_OPEN/NO_REPLICAS: "UNAVAIL  insufficient
// replicas", MISSING_DEV_NR (ZFS-8000-3C), as OpenZFS says from the MOS.

import ZFSFormat
import ZFSMultihost

/// What opening the path of one leaf vdev gave.
public enum LeafDevice: Sendable {
    /// The path opened (read-only); these are its four labels with their checksum verdicts.
    case opened(DeviceLabels)
    /// The path could not be opened; why.
    case cannotOpen(String)
}

/// The state `zpool import` would report for one pool, and why.
///
/// ```swift
/// let scan = await ImportScanner(options: .init(searchPaths: ["/var/tmp/pool"])).scan()
/// for pool in scan.pools {
///     let health = PoolHealth.assess(pool, in: scan, localHostID: SystemHostID.current())
///     print(health.name, health.healthName, health.status, health.actionText)
/// }
/// ```
public struct PoolHealth: Sendable {
    /// How far the emulated load got before it stopped (or completed).
    public enum LoadStage: String, Hashable, Sendable {
        /// Opening the label tree failed (`spa_ld_open_vdevs`, untrusted).
        case openVdevs = "open-vdevs"
        /// Validating labels left the root unopenable (`spa_ld_validate_vdevs`, untrusted).
        case validateVdevs = "validate-vdevs"
        /// Choosing the uberblock, the MMP decision, the version or the features stopped it.
        case selectUberblock = "select-uberblock"
        /// Opening or validating the trusted tree failed, or the guid sum did not match.
        case trustedConfig = "trusted-config"
        /// After the trusted config (the no-hostid multihost check).
        case afterTrust = "after-trust"
        /// Everything we can check passed.
        case complete
    }

    /// The MMP activity check `spa_tryimport` would run before going on.
    public enum ActivityCheck: Hashable, Sendable {
        /// Not required: exported, same hostid, or multihost off.
        case notRequired
        /// Required and *not run* by ZPoolKit: OpenZFS would watch the labels for at least
        /// `minimum` (ZFSMultihost's `ActivityCheck.duration(for:tunables:)` with the tunables
        /// the evaluation was given) to see whether the last writer is still writing.
        case required(minimum: Duration, lastHostID: UInt64, lastHostname: String?)
        /// Multihost is on and this host has no hostid: refused (`MMP_STATE_NO_HOSTID`).
        case noHostID
    }

    /// A top-level vdev id the labels count but no scanned device describes.
    public struct MissingTopLevel: Hashable, Sendable, CustomStringConvertible {
        public var id: UInt64
        /// What a neighbor list in another leaf's label says it was, when one does.
        public var record: NeighborRecord?
        /// What the MOS config says it was, when the MOS was read (it then wins over `record`).
        public var mosVdev: MOSConfig.MissingTopLevel?

        public init(id: UInt64, record: NeighborRecord? = nil, mosVdev: MOSConfig.MissingTopLevel? = nil) {
            self.id = id
            self.record = record
            self.mosVdev = mosVdev
        }

        /// "top-level vdev 1 (mirror of /dev/sdc, /dev/sdd, guid …) is missing".
        public var description: String {
            if let mosVdev {
                return "top-level vdev \(id) (\(mosVdev)) is missing"
            }
            if let record {
                return "top-level vdev \(id) (\(record)) is missing"
            }
            return "top-level vdev \(id) is missing; no label on the devices found says what it was"
        }
    }

    /// Where the trusted pass took its tree, and so the status, health and listed tree, from.
    public enum ConfigSource: String, Hashable, Sendable {
        /// The config stored in the MOS, read as the kernel's tryimport reads it
        /// (`spa_ld_trusted_config`), or the MOS could not be read because it is damaged (then
        /// the root is FAULTED "corrupted data", as after `spa_ld_open_rootbp` fails).
        case mos
        /// The labels alone: the load stopped before the MOS (as the kernel's does), the MOS was
        /// not asked for, or its layout is one ZPoolKit does not read (dRAID).
        case labels
    }

    /// Why `zpool import POOL` would refuse without `-f`, and what it would say.
    public struct ForceRequirement: Hashable, Sendable {
        /// The config's `hostname` (the last writer's).
        public var hostname: String?
        /// The config's `hostid` (0 when the labels have none).
        public var hostID: UInt64
        /// The selected uberblock's time (`timestamp` of the tryimport config), seconds.
        public var timestamp: UInt64?

        /// zpool's refusal, 2.1.11 wording (`do_import`); `time` formats `timestamp` the way
        /// `ctime` does, newline included.
        public func message(poolName: String, time: (UInt64) -> String) -> String {
            "cannot import '\(poolName)': pool was previously in use from another system.\n"
                + "Last accessed by \(hostname ?? "<unknown>") (hostid=\(String(hostID, radix: 16))) at \(time(timestamp ?? 0))"
                + "The pool can be imported, use 'zpool import -f' to import the pool.\n"
        }
    }

    /// `name`.
    public var name: String
    /// `pool_guid`.
    public var guid: PoolGUID
    /// The label `state` (EXPORTED, ACTIVE, DESTROYED).
    public var poolState: PoolState
    /// The label `version`.
    public var version: UInt64
    /// The config's `hostid` / `hostname` (the last writer's), when the labels have a hostid.
    public var hostID: UInt64?
    public var hostname: String?
    /// `comment`.
    public var comment: String?
    /// The tree `zpool import` would show, every vdev with its ``VdevNode/state`` and
    /// ``VdevNode/aux`` (`nil` for holes and for `missing` placeholders that stand for nothing).
    /// A `missing` placeholder with a state stands for a top-level vdev that cannot be opened.
    public var root: VdevNode
    /// The status `zpool import` would derive.
    public var status: ImportStatus
    /// Feature guids in `features_for_read` that 2.1.11 does not know.
    public var unsupportedFeatures: [String]
    /// The uberblock the load selected, and the leaf it came from.
    public var uberblock: Uberblock?
    public var uberblockDevicePath: String?
    public var activityCheck: ActivityCheck
    /// Top-level vdevs no scanned device describes, named when a neighbor list can.
    public var missingTopLevels: [MissingTopLevel]
    /// Set when importing needs `-f` (`zfs_force_import_required`).
    public var forceRequirement: ForceRequirement?
    public var stage: LoadStage
    /// Label problems of each leaf device, by path (checksum failures, empty or unreadable labels).
    public var deviceNotes: [String: [String]]
    /// What a person should know beyond the status.
    public var notes: [String]
    /// Where the trusted pass's tree came from (see ``ConfigSource``).
    public var configSource: ConfigSource = .labels
    /// What reading the MOS gave, when the load got that far and the MOS was asked for: its
    /// config, or why it could not be read.
    public var mos: Result<MOSConfig, MOSError>?
    /// The top-level vdevs of the MOS config that the scanned candidate's tree lacks entirely
    /// (not even a `missing` placeholder): what a stale cache-file entry leaves out.
    public var mosExtraTopLevels: [MOSConfig.MissingTopLevel] = []

    /// The root vdev's state (`vs_state`).
    public var health: VdevState { root.state ?? .unknown }
    /// The root vdev's reason (`vs_aux`).
    public var reason: VdevAux { root.aux ?? .none }
    /// What `zpool import` prints after `state:` (ONLINE, DEGRADED, UNAVAIL, FAULTED, …).
    public var healthName: String { health.zpoolName(aux: reason) }
    /// Whether `zpool import` could import it (with `-f` if ``forceRequirement`` says so).
    public var isImportable: Bool { health == .healthy || health == .degraded }
    /// The `status:` text (`nil` when there is none).
    public var statusText: String? { status.statusText(unsupportedFeatures: unsupportedFeatures) }
    /// The `action:` text.
    public var actionText: String { status.actionText(rootState: health) }
}

extension PoolHealth {
    /// `HOSTID_MASK`: hostids are 32-bit.
    public static let hostIDMask: UInt64 = 0xFFFF_FFFF

    /// Emulates `spa_tryimport` on `pool` and derives the `zpool import` status. Pure.
    ///
    /// - Parameters:
    ///   - pool: the scanned candidate.
    ///   - devices: what opening each leaf path gave (``LeafDeviceReader/read(paths:concurrency:)``);
    ///     a leaf whose path is absent here counts as one that cannot be opened.
    ///   - localHostID: this host's hostid (`get_system_hostid`, ``SystemHostID``); 0 for none.
    ///   - neighbors: neighbor records by top-level id (``NeighborRecord/collect(for:in:)``).
    ///   - tunables: the importing host's multihost tunables, for the activity check's duration
    ///     (OpenZFS's defaults unless given).
    /// - Complexity: O(*n*) in the vdevs plus the uberblock slots of the readable leaves.
    ///   - mos: what reading the MOS from the uberblock this load selects gave
    ///     (``MOSReader/read(_:from:)``); `nil` judges from the labels alone. A config makes the
    ///     trusted pass open the MOS's vdev tree; a damaged MOS fails the load as
    ///     `spa_ld_open_rootbp` does; an `unsupported` error falls back to the labels.
    /// - Complexity: O(*n*) in the vdevs plus the uberblock slots of the readable leaves.
    public static func evaluate(
        _ pool: PoolCandidate, devices: [String: LeafDevice], localHostID: UInt64,
        neighbors: [UInt64: NeighborRecord] = [:], tunables: MultihostTunables = MultihostTunables(),
        mos: Result<MOSConfig, MOSError>? = nil
    ) -> PoolHealth {
        var evaluation = Evaluation(
            pool: pool, devices: devices, localHostID: localHostID & hostIDMask, neighbors: neighbors, tunables: tunables,
            mos: mos)
        evaluation.run()
        return evaluation.result()
    }

    /// The leaf paths ``evaluate(_:devices:localHostID:neighbors:tunables:mos:)`` will look up for `pool`:
    /// every file or disk leaf of the label tree, and the leaves of the top-level vdevs the
    /// neighbor records rebuild.
    public static func devicePaths(of pool: PoolCandidate, neighbors: [UInt64: NeighborRecord] = [:]) -> [String] {
        var seen = Set<String>()
        var paths: [String] = []
        for leaf in trustedTree(pool.root, neighbors: neighbors).leaves where leaf.type != .draidSpare && !leaf.type.isPlaceholder {
            if let path = leaf.path, path.hasPrefix("/"), seen.insert(path).inserted { paths.append(path) }
        }
        return paths
    }

    /// The tree the trusted pass opens: `missing` placeholders replaced by what a neighbor record
    /// describes (its leaves not yet found).
    static func trustedTree(_ root: VdevNode, neighbors: [UInt64: NeighborRecord]) -> VdevNode {
        var root = root
        for i in root.children.indices where root.children[i].type == .missing {
            guard let id = root.children[i].id, let record = neighbors[id] else { continue }
            root.children[i] = VdevNode(config: record.vdevConfig)
        }
        return root
    }
}

/// One run of the emulated load.
private struct Evaluation {
    let pool: PoolCandidate
    let devices: [String: LeafDevice]
    let localHostID: UInt64
    let neighbors: [UInt64: NeighborRecord]
    let tunables: MultihostTunables
    let mos: Result<MOSConfig, MOSError>?

    var tree: HealthVdev
    var configSource = PoolHealth.ConfigSource.labels
    var stage = PoolHealth.LoadStage.openVdevs
    var uberblock: (uberblock: Uberblock, path: String)?
    var activityCheck = PoolHealth.ActivityCheck.notRequired
    var unsupportedFeatures: [String] = []
    var notes: [String] = []

    init(
        pool: PoolCandidate, devices: [String: LeafDevice], localHostID: UInt64, neighbors: [UInt64: NeighborRecord],
        tunables: MultihostTunables, mos: Result<MOSConfig, MOSError>?
    ) {
        self.pool = pool
        self.devices = devices
        self.localHostID = localHostID
        self.neighbors = neighbors
        self.tunables = tunables
        self.mos = mos
        tree = HealthVdev(pool.root)
    }

    /// `spa_vdev_err`: the root takes the blame, nothing propagates.
    mutating func failRoot(_ aux: VdevAux) {
        tree.state = .cantOpen
        tree.aux = aux
    }

    mutating func run() {
        let poolGUID = pool.guid.rawValue
        // 1–2. The untrusted pass.
        let untrusted = HealthPass(devices: devices, poolGUID: poolGUID, trusted: false, missingTopLevelsAllowed: 0)
        guard untrusted.open(&tree, isTopLevel: false) else { return }
        stage = .validateVdevs
        untrusted.validate(&tree, topLevelGUID: 0, isTopLevel: false, labelTXGLimit: .max)
        guard tree.state > .cantOpen else { return }

        // 3. The uberblock, MMP, version and features.
        stage = .selectUberblock
        guard let best = untrusted.bestUberblock(tree) else {
            notes.append("no leaf holds an uberblock whose checksum verifies")
            return failRoot(.corruptData)
        }
        uberblock = best
        let ub = best.uberblock
        var bestLabel: NVList?
        if case .opened(let labels)? = devices[best.path] {
            bestLabel = HealthPass.labelConfig(labels, limit: ub.txg.rawValue)
        }
        let labelHostID = bestLabel?.uint64("hostid")
        switch activityCheckRequirement(ub, labelHostID: labelHostID) {
        case .notRequired:
            break
        case .refusedNoHostID:
            activityCheck = .noHostID
            return failRoot(.active)
        case .required:
            let duration = ActivityCheck.duration(for: ub, tunables: tunables).nanoseconds
            activityCheck = .required(
                minimum: .nanoseconds(Int64(clamping: duration)), lastHostID: labelHostID ?? 0,
                lastHostname: bestLabel?.string("hostname"))
        }
        guard SPAVersion.isSupported(ub.version) else { return failRoot(.versionNewer) }
        if ub.version >= SPAVersion.features {
            guard let bestLabel else {
                notes.append("no label of \(best.path) with a txg up to \(ub.txg) passes its checksum")
                return failRoot(.corruptData)
            }
            guard let features = bestLabel.list("features_for_read") else {
                notes.append("the label of \(best.path) has no features_for_read")
                return failRoot(.corruptData)
            }
            unsupportedFeatures = features.pairs.map(\.name).filter { !SupportedFeatures.openZFS2_1_11.contains($0) }
            guard unsupportedFeatures.isEmpty else { return failRoot(.unsupportedFeature) }
        }

        // 3b. The MOS (`spa_ld_open_rootbp`, then the config object in `spa_ld_trusted_config`).
        var trustedRoot: VdevNode?
        switch mos {
        case nil:
            break
        case .failure(let error) where error.code == .unsupported:
            notes.append("the MOS was not read (\(error)); the trusted pass opens the label tree instead")
        case .failure(let error):
            configSource = .mos
            notes.append("the pool metadata is damaged: \(error)")
            return failRoot(.corruptData)
        case .success(let config):
            configSource = .mos
            guard let vdevTree = config.config.list("vdev_tree") else {
                notes.append("the MOS config has no vdev_tree")
                return failRoot(.corruptData)
            }
            trustedRoot = PoolHealth.mosTree(vdevTree, labelTree: pool.root)
        }

        // 4. The trusted pass, on the MOS tree (or the label tree standing in for it).
        stage = .trustedConfig
        if let trustedRoot {
            tree = HealthVdev(trustedRoot)
        } else {
            tree = HealthVdev(PoolHealth.trustedTree(pool.root, neighbors: neighbors))
            for i in tree.children.indices where tree.children[i].node.type == .missing {
                tree.children[i].standIn = true
            }
        }
        let trusted = HealthPass(devices: devices, poolGUID: poolGUID, trusted: true, missingTopLevelsAllowed: 0)
        guard trusted.open(&tree, isTopLevel: false) else { return }
        trusted.validate(&tree, topLevelGUID: 0, isTopLevel: false, labelTXGLimit: ub.txg.rawValue)
        guard tree.state > .cantOpen else { return }
        if tree.children.contains(where: { $0.isLog && $0.state == .cantOpen }) {
            notes.append("a log device is missing; OpenZFS imports without it only with 'zpool import -m'")
            return failRoot(.badGUIDSum)
        }
        let sum = HealthPass.result(tree).guidSum
        guard sum == ub.guidSum else {
            notes.append("the uberblock's guid sum \(ub.guidSum) is not the sum of the vdevs found, \(sum): a device the labels do not describe is missing")
            return failRoot(.badGUIDSum)
        }

        // 4b. `spa_ld_check_features`: the MOS's features_for_read, each with a nonzero
        // reference count, must be known to 2.1.11.
        if ub.version >= SPAVersion.features, case .success(let config)? = mos {
            let unknown = config.featuresForRead.filter { $0.value > 0 && !SupportedFeatures.openZFS2_1_11.contains($0.key) }
            if !unknown.isEmpty {
                unsupportedFeatures = unknown.keys.sorted()
                return failRoot(.unsupportedFeature)
            }
        }

        // 5. After trust.
        stage = .afterTrust
        let multihostOn = ub.isMMPValid && (ub.mmpDelayInNanoseconds != 0 || ub.mmpConfig.isIntervalValid)
        if multihostOn && localHostID == 0 {
            activityCheck = .noHostID
            return failRoot(.active)
        }
        stage = .complete
    }

    /// `spa_activity_check_required` of 2.1.11 (the tryimport load has no earlier tryimport
    /// record). A missing label counts as hostid 0, as `nvlist_exists` on no label does; a label
    /// hostid wider than 32 bits is never this host's (hostids are masked to 32 bits).
    func activityCheckRequirement(_ ub: Uberblock, labelHostID: UInt64?) -> ActivityCheck.Requirement {
        let local = UInt32(truncatingIfNeeded: localHostID)
        let label = labelHostID.map { UInt32(exactly: $0) ?? local &+ 1 }
        return ActivityCheck.requirement(
            policy: .openZFS2_1_11, uberblock: ub, labelHostID: label,
            configState: PoolStateValue(rawValue: pool.state.rawValue), localHostID: local)
    }

    func result() -> PoolHealth {
        let root = HealthPass.result(tree)
        var missing: [PoolHealth.MissingTopLevel] = []
        var extra: [MOSConfig.MissingTopLevel] = []
        var fromMOS: [UInt64: MOSConfig.MissingTopLevel] = [:]
        if configSource == .mos, case .success(let config)? = mos {
            let placeholders = Set(pool.root.children.filter { $0.type == .missing }.compactMap(\.id))
            for vdev in config.missingTopLevels(in: pool) {
                fromMOS[vdev.id] = vdev
                if !placeholders.contains(vdev.id) { extra.append(vdev) }
            }
        }
        for placeholder in pool.root.children where placeholder.type == .missing {
            guard let id = placeholder.id else { continue }
            // A rebuilt vdev that opened is not missing after all (its devices are elsewhere).
            if let rebuilt = root.children.first(where: { $0.id == id && $0.type != .missing }),
                let state = rebuilt.state, state >= .degraded
            {
                continue
            }
            missing.append(PoolHealth.MissingTopLevel(id: id, record: neighbors[id], mosVdev: fromMOS[id]))
        }
        var deviceNotes: [String: [String]] = [:]
        for leaf in root.leaves {
            guard let path = leaf.path else { continue }
            switch devices[path] {
            case .opened(let labels)?:
                let problems = labels.labels.compactMap(\.problem)
                if !problems.isEmpty { deviceNotes[path] = problems }
            case .cannotOpen(let why)?:
                deviceNotes[path] = [why]
            case nil:
                break
            }
        }
        let mmpNoHostID: Bool = if case .noHostID = activityCheck { true } else { false }
        // The tryimport config names the importing host (`spa_config_generate` writes
        // `spa_hostid`, this host's id); a scan puts the label's hostid back
        // (`zutil_import.c`: "Restore the original information read from the actual label"),
        // `zpool import -c` does not, so a cache-file pool is never another host's.
        let configHostID = pool.config.contains("cachefile") ? localHostID : pool.hostID ?? 0
        let status = Self.status(
            root: root, poolState: pool.state, configHostID: configHostID, localHostID: localHostID,
            version: pool.version, noHostID: mmpNoHostID)
        var force: PoolHealth.ForceRequirement?
        if (pool.state != .exported && configHostID != localHostID) || mmpNoHostID {
            force = PoolHealth.ForceRequirement(
                hostname: pool.hostname, hostID: pool.hostID ?? 0, timestamp: uberblock?.uberblock.timestampInSeconds)
        }
        return PoolHealth(
            name: pool.name, guid: pool.guid, poolState: pool.state, version: pool.version,
            hostID: pool.hostID, hostname: pool.hostname, comment: pool.comment, root: root, status: status,
            unsupportedFeatures: unsupportedFeatures, uberblock: uberblock?.uberblock,
            uberblockDevicePath: uberblock?.path, activityCheck: activityCheck, missingTopLevels: missing,
            forceRequirement: force, stage: stage, deviceNotes: deviceNotes, notes: self.notes,
            configSource: configSource, mos: mos, mosExtraTopLevels: extra)
    }

    /// `check_status` in import mode, for what can be known without the MOS.
    static func status(
        root: VdevNode, poolState: PoolState, configHostID: UInt64, localHostID: UInt64, version: UInt64, noHostID: Bool
    ) -> ImportStatus {
        let state = root.state ?? .unknown
        let aux = root.aux ?? .none
        let cantOpen = state == .cantOpen
        if cantOpen && aux == .active {
            return noHostID ? .hostIDRequired : .hostIDMismatch
        }
        if configHostID != 0 && configHostID != localHostID && poolState == .active {
            return .hostIDMismatch
        }
        if cantOpen && aux == .versionNewer { return .versionNewer }
        if cantOpen && aux == .unsupportedFeature { return .unsupportedFeaturesRead }
        if cantOpen && aux == .badGUIDSum { return .badGUIDSum }
        if cantOpen && aux == .badLog { return .badLog }
        func problem(_ test: (VdevState, VdevAux) -> Bool) -> Bool { findProblem(root, test) }
        let faulted: (VdevState, VdevAux) -> Bool = { s, _ in s == .faulted }
        let missing: (VdevState, VdevAux) -> Bool = { s, a in s == .cantOpen && a == .openFailed }
        let broken: (VdevState, VdevAux) -> Bool = { s, _ in s == .cantOpen }
        if cantOpen && problem(faulted) { return .faultedDeviceNoReplicas }
        if cantOpen && problem(missing) { return .missingDeviceNoReplicas }
        if cantOpen && problem(broken) { return .corruptLabelNoReplicas }
        if cantOpen && aux == .corruptData { return .corruptPool }
        if problem(faulted) { return .faultedDeviceReplicated }
        if problem(missing) { return .missingDeviceReplicated }
        if problem(broken) { return .corruptLabelReplicated }
        if problem({ s, _ in s == .offline }) { return .offlineDevice }
        if problem({ s, _ in s == .removed }) { return .removedDevice }
        if SPAVersion.isSupported(version) && version != SPAVersion.features { return .versionOlder }
        return .ok
    }

    /// `find_vdev_problem`: tests the leaves (vdevs without children), skipping `replacing`
    /// subtrees; holes and placeholders without a state never match.
    static func findProblem(_ vdev: VdevNode, _ test: (VdevState, VdevAux) -> Bool) -> Bool {
        if vdev.type == .replacing { return false }
        if !vdev.children.isEmpty {
            return vdev.children.contains { findProblem($0, test) }
        }
        guard let state = vdev.state else { return false }
        return test(state, vdev.aux ?? .none)
    }
}
