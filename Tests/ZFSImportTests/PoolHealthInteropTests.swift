// PoolHealth against real OpenZFS 2.1.11: for each scenario, zpk-oracle's `tryimport` (libzpool's
// spa_tryimport, the load `zpool import` runs) and our scan + PoolHealth.assess on the same
// directory must agree on the pool's health, selected txg, hostid and hostname, on every vdev's
// type, guid, path, state and reason, and on the status, message id and errata that libzfs's own
// zpool_import_status() gives for the tryimport config (zpk-oracle runs it in zpk-import-status,
// a libzfs program: no transcription of check_status of ours is involved).
//
// The scenario pools are made once per test process by zpk-oracle `create` (exact layouts,
// ~0.1 s each), each in its own directory, damaged as the scenario says, and listed by the
// oracle once; the tests then run our side. Host ids: pools are written by host-a (0x11111111)
// and listed as 0x22222222 unless the scenario says otherwise.
//
// Where we cannot agree by construction (spec: PoolHealth.swift, "What it does NOT guarantee"),
// the scenario says so: a `missing` stand-in is compared by state only (OpenZFS shows the MOS's
// vdev there).

import Foundation
import Testing
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSTestSupport

private let hostA = "0x11111111"
private let hostB = "0x22222222"

/// One directory with one damaged pool, and what OpenZFS says about it.
struct HealthScenario: Sendable, CustomStringConvertible {
    var name: String
    var directory: String
    /// The hostid the oracle listed it as.
    var localHostID: UInt64
    var oracle: [ZPKOracle.Pool]
    /// Everything else the test needs to know (paths, the pool's full tree before damage).
    var extra: [String: String] = [:]
    var description: String { "\(name) in \(directory)" }
}

/// All scenarios, made once (removed at exit).
final class HealthScenarios: Sendable {
    let byName: [String: HealthScenario]

    static let task: Task<HealthScenarios, any Error> = Task {
        atexit { HealthScenarios.directories.removeAll() }
        return try await offThePool { try HealthScenarios() }
    }

    static let directories = ManagedDirectories()

    static func get() async throws -> HealthScenarios {
        try OpenZFS.requireInstalled()
        return try await task.value
    }

    func callAsFunction(_ name: String) throws -> HealthScenario {
        guard let scenario = byName[name] else { throw TestFailure(description: "no scenario \(name)") }
        return scenario
    }

    private static func oracle(_ args: [String]) throws -> String {
        let out = try ZPKOracle.run(args, timeout: .seconds(120))
        guard out.status == 0 else {
            throw TestFailure(description: "zpk-oracle \(args.joined(separator: " ")) exited \(out.status)\n\(out.stdout)\n\(out.stderr)")
        }
        return out.stdout
    }

    private static func create(_ pool: String, in directory: String, _ spec: [String]) throws {
        _ = try oracle(["create", pool, "-d", directory, "--hostid", hostA, "--hostname", "host-a"] + spec)
    }

    private static func tryimport(_ directory: String, as hostID: String, extra: [String] = []) throws -> [ZPKOracle.Pool] {
        try ZPKOracle.parseTryImport(try oracle(["tryimport", "-d", directory, "--hostid", hostID] + extra))
    }

    private init() throws {
        var scenarios: [String: HealthScenario] = [:]
        func make(_ name: String, _ build: (String) throws -> [String: String]) throws {
            let directory = try TemporaryDirectory(prefix: "health-\(name)")
            HealthScenarios.directories.keep(directory)
            let extra = try build(directory.path)
            let local = extra["as"] ?? hostB
            scenarios[name] = HealthScenario(
                name: name, directory: directory.path, localHostID: PoolSelector.hostIDValue(local),
                oracle: try Self.tryimport(directory.path, as: local), extra: extra)
        }
        try make("mirror") { dir in
            try Self.create("healthy", in: dir, ["mirror", "a.img", "b.img"])
            return [:]
        }
        try make("degraded") { dir in
            try Self.create("degraded", in: dir, ["mirror", "a.img", "b.img"])
            try FileManager.default.removeItem(atPath: "\(dir)/b.img")
            return [:]
        }
        try make("missing-top-level") { dir in
            try Self.create("stripe", in: dir, ["a.img", "mirror", "b.img", "c.img"])
            try FileManager.default.removeItem(atPath: "\(dir)/b.img")
            try FileManager.default.removeItem(atPath: "\(dir)/c.img")
            return [:]
        }
        try make("raidz-two-missing") { dir in
            try Self.create("rz", in: dir, ["raidz", "a.img", "b.img", "c.img"])
            try FileManager.default.removeItem(atPath: "\(dir)/b.img")
            try FileManager.default.removeItem(atPath: "\(dir)/c.img")
            return [:]
        }
        try make("labels-0-1-damaged") { dir in
            try Self.create("scarred", in: dir, ["mirror", "a.img", "b.img"])
            let leaf = VdevFile("\(dir)/a.img")
            try leaf.zeroLabel(0)
            try leaf.flipBit(3, inLabel: 1, atOffset: VdevFile.configOffset + 100)
            return [:]
        }
        try make("all-labels-damaged") { dir in
            try Self.create("blank", in: dir, ["mirror", "a.img", "b.img"])
            let leaf = VdevFile("\(dir)/b.img")
            for label in 0..<4 { try leaf.zeroLabel(label) }
            return [:]
        }
        try make("other-host") { dir in
            try Self.create("elsewhere", in: dir, ["mirror", "a.img", "b.img"])
            // Imported by host-a, which then "crashes": labels stay ACTIVE with its hostid.
            _ = try Self.oracle(["import", "elsewhere", "-d", dir, "--hostid", hostA, "--hostname", "host-a", "--no-export"])
            return [:]
        }
        try make("other-host-as-itself") { dir in
            try Self.create("athome", in: dir, ["mirror", "a.img", "b.img"])
            _ = try Self.oracle(["import", "athome", "-d", dir, "--hostid", hostA, "--hostname", "host-a", "--no-export"])
            return ["as": hostA]
        }
        self.byName = scenarios
    }
}

extension PoolSelector {
    /// "0x…" hex as the oracle takes it.
    static func hostIDValue(_ text: String) -> UInt64 {
        UInt64(text.dropFirst(2), radix: 16) ?? 0
    }
}

/// Our answer for every pool `zpool import -d directory` would list.
func ourHealth(_ directory: String, localHostID: UInt64) async -> [PoolHealth] {
    let scan = await ImportScanner(options: .init(searchPaths: [directory])).scan()
    return scan.pools.map { PoolHealth.assess($0, in: scan, localHostID: localHostID) }
}

/// Expects `ours` to say what the oracle says about the pool.
func expectSameHealth(
    _ ours: PoolHealth, _ theirs: ZPKOracle.Pool, _ context: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(ours.name == theirs.name, "\(context)", sourceLocation: sourceLocation)
    #expect(ours.guid.rawValue == theirs.guid, "\(context)", sourceLocation: sourceLocation)
    #expect("\(ours.poolState)" == theirs.state, "\(context)", sourceLocation: sourceLocation)
    #expect(ours.healthName == theirs.health, "\(context): \(ours.root.stateSummary)", sourceLocation: sourceLocation)
    #expect(ours.status.rawValue == theirs.status, "\(context): libzfs says \(theirs.status)", sourceLocation: sourceLocation)
    #expect(ours.status.messageID == theirs.messageID, "\(context)", sourceLocation: sourceLocation)
    // PoolHealth has no errata (they live in the MOS): libzfs must report none either.
    #expect(theirs.errata == 0, "\(context): OpenZFS reports errata \(theirs.errata)", sourceLocation: sourceLocation)
    #expect((ours.hostID ?? 0) == theirs.hostID, "\(context)", sourceLocation: sourceLocation)
    #expect(ours.hostname == theirs.hostname, "\(context)", sourceLocation: sourceLocation)
    if let txg = theirs.txg {
        #expect(ours.uberblock?.txg.rawValue == txg, "\(context)", sourceLocation: sourceLocation)
    } else {
        #expect(ours.uberblock == nil, "\(context): OpenZFS stopped before choosing an uberblock", sourceLocation: sourceLocation)
    }
    expectSameVdev(ours.root, theirs.root, "\(context): \(theirs.name)", sourceLocation: sourceLocation)
}

/// Same type, guid, path, state and reason, recursively. A `missing` stand-in (OpenZFS shows
/// the MOS's vdev there) is compared by state only.
func expectSameVdev(_ ours: VdevNode, _ theirs: ZPKOracle.Vdev, _ context: String, sourceLocation: SourceLocation) {
    let here = "\(context)/\(theirs.path ?? "\(theirs.type)-\(theirs.fields["id"] ?? "?")")"
    let ourState = ours.state.map { $0.zpoolName(aux: ours.aux ?? .none) }
    #expect(ourState == theirs.state, "\(here): ours \(ours.stateSummary), theirs \(theirs)", sourceLocation: sourceLocation)
    if ours.type == .missing { return }
    #expect(ours.type.rawValue == theirs.type, "\(here)", sourceLocation: sourceLocation)
    #expect(ours.guid.rawValue == theirs.guid, "\(here)", sourceLocation: sourceLocation)
    #expect(ours.path == theirs.path, "\(here)", sourceLocation: sourceLocation)
    #expect((ours.aux ?? .none).description.lowercased() == theirs.aux, "\(here): ours \(ours.stateSummary)", sourceLocation: sourceLocation)
    #expect(ours.children.count == theirs.children.count, "\(here): ours \(ours.stateSummary), theirs \(theirs)", sourceLocation: sourceLocation)
    for (child, theirChild) in zip(ours.children, theirs.children) {
        expectSameVdev(child, theirChild, here, sourceLocation: sourceLocation)
    }
}

@Suite(.offTheCooperativePool)
struct PoolHealthInteropTests {
    /// OpenZFS 2.1.11 is this suite's oracle: without it every test fails, naming the missing tool.
    init() throws { try OpenZFS.requireInstalled() }

    @Test(arguments: [
        "mirror", "degraded", "missing-top-level", "raidz-two-missing", "labels-0-1-damaged", "all-labels-damaged",
        "other-host", "other-host-as-itself",
    ])
    func healthMatchesTryimport(_ name: String) async throws {
        let scenario = try await HealthScenarios.get()(name)
        let ours = await ourHealth(scenario.directory, localHostID: scenario.localHostID)
        try #require(ours.count == 1 && scenario.oracle.count == 1, "\(scenario): ours \(ours.map(\.name)), theirs \(scenario.oracle)")
        expectSameHealth(ours[0], scenario.oracle[0], "\(scenario)")
    }

    /// What each scenario must look like, beyond agreeing with OpenZFS.
    @Test func scenariosSayWhatTheyShould() async throws {
        let scenarios = try await HealthScenarios.get()
        func health(_ name: String) async throws -> PoolHealth {
            let scenario = try scenarios(name)
            return try #require(await ourHealth(scenario.directory, localHostID: scenario.localHostID).first)
        }
        #expect(try await health("mirror").healthName == "ONLINE")
        let degraded = try await health("degraded")
        #expect(degraded.healthName == "DEGRADED")
        #expect(degraded.status == .missingDeviceReplicated)
        let stripe = try await health("missing-top-level")
        #expect(stripe.healthName == "UNAVAIL")
        #expect(stripe.statusText == "One or more devices are missing from the system.")
        #expect(stripe.missingTopLevels.map(\.id) == [1])
        #expect(stripe.root.aux == .noReplicas)
        let scarred = try await health("labels-0-1-damaged")
        #expect(scarred.healthName == "ONLINE")
        let scarredLeaf = try #require(scarred.root.leaves.first { $0.path?.hasSuffix("/a.img") == true })
        #expect(scarred.deviceNotes[scarredLeaf.path ?? ""]?.count == 2)

        // Last used by host-a, which never exported it: -f, naming the host, hostid and time.
        let elsewhere = try await health("other-host")
        #expect(elsewhere.status == .hostIDMismatch)
        #expect(elsewhere.isImportable)
        let force = try #require(elsewhere.forceRequirement)
        #expect(force.hostname == "host-a")
        #expect(force.hostID == 0x1111_1111)
        #expect(force.timestamp == elsewhere.uberblock?.timestampInSeconds)
        #expect(elsewhere.activityCheck == .notRequired)  // multihost off
        // The same pool seen by host-a itself needs no -f.
        let home = try await health("other-host-as-itself")
        #expect(home.status == .ok && home.forceRequirement == nil)
    }

    /// Every pool of the OpenZFS test-suite images: name, guid, version, layout and health as
    /// OpenZFS's tryimport says. unclean_export needs an MMP activity check (ACTIVE, written by
    /// an MMP-unaware host): the oracle runs it with short tunables (about 1 s instead of 20).
    @Test func imagePoolsMatchTryimport() async throws {
        try OpenZFS.requireInstalled()
        let directory = try await DecompressedImages.get()
        let output = try await offThePool {
            try ZPKOracle.run(
                ["tryimport", "-d", directory, "--hostid", hostB, "--interval-ms", "100", "--import-intervals", "1"],
                timeout: .seconds(120))
        }
        try #require(output.status == 0, "\(output)")
        let theirs = try ZPKOracle.parseTryImport(output.stdout)
        let ours = await ourHealth(directory, localHostID: 0x2222_2222)
        #expect(ours.map(\.guid.rawValue) == theirs.map(\.guid), "the same pools, in the same order")
        for expected in ExpectedImagePool.all {
            let pool = try #require(ours.first { $0.guid.rawValue == expected.guid }, "\(expected)")
            let oracle = try #require(theirs.first { $0.guid == expected.guid }, "\(expected)")
            #expect(pool.name == expected.name)
            #expect(pool.version == expected.version)
            #expect(pool.root.children.first?.type == expected.topLevelType, "\(expected)")
            expectSameHealth(pool, oracle, "\(expected)")
        }
        let unclean = try #require(ours.first { $0.name == "unclean_export" })
        #expect(unclean.activityCheck == .required(minimum: .seconds(20), lastHostID: 13240505, lastHostname: "dlpx"))
        #expect(unclean.forceRequirement?.hostname == "dlpx")
        let v999 = try #require(ours.first { $0.name == "v999-pool" })
        #expect(v999.healthName == "UNAVAIL" && v999.status == .versionNewer && v999.root.aux == .versionNewer)
        let broken = try #require(ours.first { $0.name == "zfs-broken-mirror" })
        #expect(broken.healthName == "DEGRADED" && broken.status == .missingDeviceReplicated)
    }
}

// MARK: - Naming the missing (neighbor lists)

/// Rewrites the four labels of `path` with a neighbor list describing `root`'s other top-level
/// vdevs, keeping each label's uberblock ring and boot block (checksums resealed).
func addNeighborList(to path: String, describing root: VdevNode) throws {
    let device = try FileBlockDevice(path: path, mode: .readWrite)
    defer { try? device.close() }
    for (index, offset) in DeviceLabels.labelOffsets(deviceSize: device.sizeInBytes).enumerated() {
        guard let offset else { continue }
        let bytes = try device.read(count: VdevLabel.byteCount, atAbsoluteOffset: offset)
        let label = try VdevLabel(decoding: bytes, absoluteOffset: offset, index: index)
        let config = try NVList(decoding: try label.verifiedConfigBytes())
        let updated = NeighborRecord.label(config, withNeighborsFrom: root)
        let encoded = try VdevLabel.encode(
            configPacked: try updated.encoded(as: .xdr), bootEnvironment: label.bootEnvironment,
            ring: .encoded(Array(bytes[VdevLabel.uberblockRingOffset...])), labelOffset: offset, byteOrder: .little)
        try device.write(encoded, atAbsoluteOffset: offset)
    }
    try device.flush()
}

@Suite(.offTheCooperativePool)
struct NeighborListInteropTests {
    /// OpenZFS 2.1.11 is this suite's oracle: without it every test fails, naming the missing tool.
    init() throws { try OpenZFS.requireInstalled() }

    /// A pool of two mirrors; the labels of the first carry a neighbor list. zdb -l still reads
    /// them; with the second mirror's files deleted, OpenZFS (from its MOS) and we (from the
    /// neighbor list) show the same tree, and our report names the missing mirror.
    @Test(arguments: [false, true])
    func neighborListNamesTheMissingTopLevel(asLog: Bool) async throws {
        try OpenZFS.requireInstalled()
        let directory = try TemporaryDirectory(prefix: "health-neighbors")
        let dir = directory.path
        let spec = asLog ? ["mirror", "a.img", "b.img", "log", "mirror", "c.img", "d.img"] : ["mirror", "a.img", "b.img", "mirror", "c.img", "d.img"]
        let created = try ZPKOracle.run(
            ["create", "nb", "-d", dir, "--hostid", hostA, "--hostname", "host-a"] + spec, timeout: .seconds(60))
        try #require(created.status == 0, "\(created)")
        let before = await ImportScanner(options: .init(searchPaths: [dir])).scan()
        let full = try before.pool(.name("nb"))
        try #require(full.root.children.count == 2)
        for leaf in ["a.img", "b.img"] {
            try addNeighborList(to: "\(dir)/\(leaf)", describing: full.root)
        }

        // zdb -l reads the label, neighbor list and all.
        let (label, _, status) = try await offThePool { try OpenZFS.zdb(["-l", "\(dir)/a.img"]) }
        #expect(status == 0)
        #expect(label.contains("    org.zpoolkit:neighbors[0]:\n"), "\(label)")
        #expect(label.contains("labels = 0 1 2 3"), "\(label)")
        #expect(label.contains("        top_id: 1\n"), "\(label)")
        #expect(label.contains("            path: '\(dir)/c.img'\n"), "\(label)")

        try FileManager.default.removeItem(atPath: "\(dir)/c.img")
        try FileManager.default.removeItem(atPath: "\(dir)/d.img")
        let out = try await offThePool { try ZPKOracle.run(["tryimport", "-d", dir, "--hostid", hostB], timeout: .seconds(60)) }
        try #require(out.status == 0, "\(out)")
        let theirs = try ZPKOracle.parseTryImport(out.stdout)
        let ours = await ourHealth(dir, localHostID: 0x2222_2222)
        try #require(ours.count == 1 && theirs.count == 1)
        expectSameHealth(ours[0], theirs[0], "neighbors, second mirror \(asLog ? "a log" : "a data vdev")")
        #expect(ours[0].healthName == "UNAVAIL")
        #expect(ours[0].status == (asLog ? .badGUIDSum : .missingDeviceNoReplicas))
        let record = full.root.children[1]
        let leaves = record.leaves.map { $0.path ?? "" }
        #expect(leaves == ["\(dir)/c.img", "\(dir)/d.img"])
        #expect(
            ours[0].missingTopLevels.map(\.description)
                == ["top-level vdev 1 (\(asLog ? "log " : "")mirror of \(dir)/c.img, \(dir)/d.img, guid \(record.guid)) is missing"])
        withExtendedLifetime(directory) {}
    }
}
