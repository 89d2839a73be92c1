// The MOS config read by MOSReader against `zdb -e -p DIR -C POOL`'s "MOS Configuration", key
// for key and value for value, on fresh random ztest pools (new seeds each run, printed): raidz,
// mirrors, single files, and dRAID1, 2 and 3 of random widths with one or two distributed
// spares; the shared discovery pools (a churned mirror of raidz1 vdevs, a dRAID), the OpenZFS
// test suite's images, and damaged copies: one mirror side or one raidz child overwritten, one
// dRAID child's column of a MOS block zeroed or its file removed (read through the redundancy,
// equal to zdb's answer on the undamaged pool), more dRAID children removed than it has parity
// and every copy overwritten ("metadata is damaged", typed errors naming the vdev).
//
// Set ZPK_MOS_SEED to replay the random layouts.

import Foundation
import Testing
import ZFSFormat
import ZFSTestSupport

@testable import ZFSImport

#if canImport(Glibc)
import Glibc
#endif

/// Random ztest pools for the MOS tests, made once per set on threads of their own (removed at
/// exit); `ZPK_MOS_SEED` replays both sets.
final class MOSTestPools: Sendable {
    let pools: [ZTestPool]
    let seed: UInt64

    /// raidz1-3, mirrors, single, ashift 9/12/13: one raidz of random parity, one mirror, one
    /// more of any non-dRAID layout.
    static let layouts: Task<MOSTestPools, any Error> = made(set: "random pools", salt: 0) { rng in
        var specs: [ZTestPoolSpec] = []
        while specs.count < 3 {
            let spec = ZTestPoolSpec.random(using: &rng)
            switch (specs.count, spec.layout) {
            case (0, .raidz), (1, .mirror), (2, .single), (2, .raidz), (2, .mirroredRaidz), (2, .mirror): specs.append(spec)
            default: continue
            }
        }
        return specs
    }

    /// dRAID of parity 1, 2 and 3 (one pool each, in that order), 1–4 data columns, 1–2
    /// distributed spares (ztest insists on at least one), 0–2 more children; ashift 12 or 13.
    static let draid: Task<MOSTestPools, any Error> = made(set: "random dRAID pools", salt: 0xd7a1d) { rng in
        (1...3).map { parity in
            let data = Int.random(in: 1...4, using: &rng)
            let spares = Int.random(in: 1...2, using: &rng)
            // ztest turns `-r 4` (its default) into 16 children for a dRAID: ask for 5 instead.
            let children = data + parity + spares + Int.random(in: 0...2, using: &rng)
            return ZTestPoolSpec(
                layout: .draid(parity: parity, data: data, spares: spares, children: children == 4 ? 5 : children),
                ashift: [12, 12, 13].randomElement(using: &rng)!, seconds: Int.random(in: 1...2, using: &rng), poolName: "draid\(parity)")
        }
    }

    static let directories = ManagedDirectories()

    static func get(_ set: Task<MOSTestPools, any Error> = layouts) async throws -> MOSTestPools {
        try OpenZFS.requireInstalled()
        return try await set.value
    }

    private static func made(
        set: String, salt: UInt64, specs: @escaping @Sendable (inout SplitMix64) -> [ZTestPoolSpec]
    ) -> Task<MOSTestPools, any Error> {
        Task {
            atexit { MOSTestPools.directories.removeAll() }
            return try await offThePool { try MOSTestPools(set: set, salt: salt, specs: specs) }
        }
    }

    private init(set: String, salt: UInt64, specs: (inout SplitMix64) -> [ZTestPoolSpec]) throws {
        let seed = ProcessInfo.processInfo.environment["ZPK_MOS_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        self.seed = seed
        print("MOSInteropTests: \(set) from seed \(seed) (ZPK_MOS_SEED=\(seed) replays them)")
        var rng = SplitMix64(seed: seed ^ salt)
        let specs = specs(&rng)
        let directory = try TemporaryDirectory(prefix: "mos-pools")
        Self.directories.keep(directory)
        let jobs = specs.map { spec in { @Sendable () throws -> ZTestPool in try OpenZFS.makePool(spec, in: directory.path) } }
        pools = try inParallel(jobs).map { try $0.get() }
        for pool in pools { print("MOSInteropTests: \(pool.spec)") }
    }

    /// The pool of dRAID `parity` (of the `draid` set).
    func pool(parity: Int) -> ZTestPool { pools[parity - 1] }
}

/// `zdb -e -p DIR -C POOL`: its MOS Configuration block (nil if none) and its whole answer.
func zdbMOSBlock(directory: String, target: String) async throws -> (block: String?, answer: String, status: Int32) {
    let (stdout, stderr, status) = try await offThePool {
        try OpenZFS.zdb(["-e", "-p", directory, "-C", target], currentDirectory: directory)
    }
    return (ZdbMOSText.extract(fromZdbOutput: stdout), "exit \(status)\n\(stdout)\n\(stderr)", status)
}

/// Reads the MOS config of the only pool named `name` in `directory` and expects it to equal
/// zdb's, key for key: zdb's answer on `directory`, or `expected` (zdb's MOS block from an
/// undamaged copy of the pool).
@discardableResult
func expectMOSMatchesZdb(
    directory: String, name: String, context: String, expected: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
) async throws -> VdevReader.Repairs? {
    let scan = await zdbScan(directory)
    let pool = try scan.pool(.name(name))
    let ours = try await offThePool { MOSReader.read(pool, in: scan) }
    let (block, answer, _): (String?, String, Int32) =
        if let expected { (expected, "", 0) } else { try await zdbMOSBlock(directory: directory, target: name) }
    guard let block else {
        Issue.record("zdb printed no MOS configuration for \(name): \(answer); \(context)", sourceLocation: sourceLocation)
        return nil
    }
    switch ours {
    case .failure(let error):
        Issue.record("MOS of \(name) not read: \(error); \(context)", sourceLocation: sourceLocation)
        return nil
    case .success(let mos):
        let (onlyOurs, onlyTheirs) = NVText.difference(ours: ZdbMOSText.render(mos.config), theirs: block)
        #expect(
            onlyOurs.isEmpty && onlyTheirs.isEmpty,
            "MOS config of \(name) differs from zdb's; \(context)\nonly ours:\n  \(onlyOurs.joined(separator: "\n  "))\nonly zdb's:\n  \(onlyTheirs.joined(separator: "\n  "))",
            sourceLocation: sourceLocation)
        #expect(!onlyTheirs.isEmpty || ZdbMOSText.render(mos.config).count > 200, sourceLocation: sourceLocation)
        // The vdev ZAPs the config names all exist; the directory's extras are there.
        #expect(mos.vdevZAPs.values.allSatisfy { $0 }, "\(mos.vdevZAPs); \(context)", sourceLocation: sourceLocation)
        if (mos.config.uint64("version") ?? 0) >= 5000 {
            // The features the config says a reader needs are active in the features_for_read ZAP.
            #expect(mos.directory["features_for_read"] != nil, "\(context)", sourceLocation: sourceLocation)
            for name in mos.config.list("features_for_read")?.pairs.map(\.name) ?? [] {
                #expect((mos.featuresForRead[name] ?? 0) > 0, "\(name) not active in \(mos.featuresForRead); \(context)", sourceLocation: sourceLocation)
            }
        }
        return mos.repairs
    }
}

/// Overwrites every allocated extent of a leaf's allocatable space (between the front and back
/// labels; the files are sparse, so holes hold no blocks) with random bytes: every block copy on
/// that leaf is now damaged.
func scrambleAllocatableSpace(of path: String, seed: UInt64) throws {
    let file = VdevFile(path)
    let size = try file.size()
    var rng = SplitMix64(seed: seed)
    var noise = [UInt8](repeating: 0, count: 1 << 20)
    noise.withUnsafeMutableBytes { raw in
        for i in 0..<(raw.count / 8) { raw.storeBytes(of: rng.next(), toByteOffset: 8 * i, as: UInt64.self) }
    }
    // SEEK_DATA and SEEK_HOLE (Linux values; Glibc does not export them to Swift).
    let seekData: Int32 = 3
    let seekHole: Int32 = 4
    let start = 4 << 20
    let end = Int(size) - (512 << 10)
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw TestFailure(description: "cannot open \(path)") }
    var extents: [(Int, Int)] = []
    var offset = start
    while offset < end {
        let data = lseek(fd, offset, seekData)
        guard data >= 0, data < end else { break }
        let hole = min(lseek(fd, data, seekHole), end)
        extents.append((data, hole))
        offset = hole
    }
    close(fd)
    for (from, to) in extents {
        var at = from
        while at < to {
            let count = min(noise.count, to - at)
            try file.write(Array(noise.prefix(count)), at: UInt64(at))
            at += count
        }
    }
}

@Suite(.offTheCooperativePool)
struct MOSInteropTests {
    init() throws { try OpenZFS.requireInstalled() }

    @Test(arguments: 0..<3)
    func randomPoolsMatchZdb(_ index: Int) async throws {
        let made = try await MOSTestPools.get()
        let pool = made.pools[index]
        try await withCopies(of: pool.deviceFiles, prefix: "mos-random") { directory in
            try await expectMOSMatchesZdb(directory: directory, name: pool.name, context: "\(pool.spec) seed \(made.seed)")
        }
    }

    /// A mirror of raidz vdevs at ashift 12: the raidz children have no `ashift` of their own in
    /// the config, and their columns follow the top-level mirror's (a random draw found the
    /// reader laying them out in 512-byte sectors: no block verified).
    @Test func mirrorOfRaidzUsesTheTopLevelAshift() async throws {
        let directory = try TemporaryDirectory(prefix: "mos-mirror-raidz")
        defer { withExtendedLifetime(directory) {} }  // removed here, not after its last use
        let spec = ZTestPoolSpec(layout: .mirroredRaidz(copies: 2, parity: 2, width: 4), ashift: 12, poolName: "mzr")
        let pool = try await offThePool { try OpenZFS.makePool(spec, in: directory.path) }
        try await withCopies(of: pool.deviceFiles, prefix: "mos-mirror-raidz") { copies in
            try await expectMOSMatchesZdb(directory: copies, name: pool.name, context: "\(pool)")
        }
    }

    /// The churned pool: several top-level vdevs (mirrors of raidz1), often logs, spares, holes.
    @Test func churnedPoolMatchesZdb() async throws {
        let pools = try await SharedZTestPools.get()
        try await withCopies(of: pools.churn.deviceFiles, prefix: "mos-churn") { directory in
            try await expectMOSMatchesZdb(directory: directory, name: pools.churn.name, context: "\(pools.churn)")
        }
    }

    /// Every leaf of the churned pool's last top-level vdev removed: the labels leave a
    /// `missing` placeholder; the MOS config (read through the other vdevs' ditto copies) names
    /// the vdev — type, guid and leaf paths — as the kernel's tryimport does.
    @Test func missingTopLevelIsNamedFromTheMOS() async throws {
        let pools = try await SharedZTestPools.get()
        let pool = pools.churn
        let concrete = pool.topLevelVdevs.enumerated().filter { $0.element.type != "hole" }
        try #require(concrete.count >= 2, "\(pool)")
        let (victimID, victim) = concrete.last!
        let victimFiles = Set(victim.leafPaths)
        try await withCopies(of: pool.deviceFiles.filter { !victimFiles.contains($0) }, prefix: "mos-missing") { directory in
            let scan = await zdbScan(directory)
            let found = try scan.pool(.name(pool.name))
            #expect(found.missingTopLevelIDs == [UInt64(victimID)], "\(pool)")
            let result = try await offThePool { MOSReader.read(found, in: scan) }
            let mos = try result.get()
            let missing = mos.missingTopLevels(in: found)
            #expect(missing.map(\.id) == [UInt64(victimID)], "\(missing); \(pool)")
            #expect(missing.first?.type == victim.type, "\(missing); \(pool)")
            #expect(Set(missing.first?.paths ?? []) == Set(victim.leafPaths.filter { $0.hasPrefix("/") }), "\(missing); \(pool)")
            #expect(missing.first?.isLog == victim.isLog)
        }
    }

    /// The shared discovery pools' dRAID1 (3 data, 1 distributed spare, 7 children).
    @Test func sharedDraidPoolMatchesZdb() async throws {
        let pools = try await SharedZTestPools.get()
        try await withCopies(of: pools.draid.deviceFiles, prefix: "mos-draid") { directory in
            try await expectMOSMatchesZdb(directory: directory, name: pools.draid.name, context: "\(pools.draid)")
        }
    }

    /// Random dRAID1, dRAID2 and dRAID3 pools.
    @Test(arguments: 1...3)
    func randomDraidPoolsMatchZdb(_ parity: Int) async throws {
        let made = try await MOSTestPools.get(MOSTestPools.draid)
        let pool = made.pool(parity: parity)
        try await withCopies(of: pool.deviceFiles, prefix: "mos-draid-random") { directory in
            try await expectMOSMatchesZdb(directory: directory, name: pool.name, context: "\(pool.spec) seed \(made.seed)")
        }
    }

    /// The dRAID child holding the first data column of the MOS objset block's first copy,
    /// and that copy's rows, worked out from the pool's uberblock.
    func draidVictim(_ pool: ZTestPool, in directory: String) async throws -> (child: Int, path: String, rows: [DraidRow], geometry: DraidGeometry) {
        let scan = await zdbScan(directory)
        let found = try scan.pool(.name(pool.name))
        let uberblock = try #require(PoolHealth.assess(found, in: scan, localHostID: 0).uberblock)
        let root = uberblock.rootBlockPointer
        let draid = try #require(found.root.children.first { $0.id == root.dva0.vdevID })
        let geometry = try DraidGeometry(config: draid.config, children: draid.children.count)
        let sector = 1 << geometry.ashift
        let size = (Int(root.properties.physicalByteCount) + sector - 1) / sector * sector
        let rows = try geometry.rows(offset: root.dva0.byteOffset, size: UInt64(size), map: DraidPermutations.map(children: geometry.children))
        let child = rows[0].columns[geometry.parity].child
        return (child, try #require(draid.children[child].path), rows, geometry)
    }

    /// One dRAID child's column of the MOS objset block (first copy) zeroed: that read is
    /// rebuilt from parity, and the config equals zdb's on the undamaged pool.
    @Test(arguments: 1...3)
    func zeroedDraidColumnIsRebuilt(_ parity: Int) async throws {
        let made = try await MOSTestPools.get(MOSTestPools.draid)
        let pool = made.pool(parity: parity)
        try await withCopies(of: pool.deviceFiles, prefix: "mos-draid-zeroed") { directory in
            let (block, answer, _) = try await zdbMOSBlock(directory: directory, target: pool.name)
            let expected = try #require(block, "zdb printed no MOS configuration: \(answer)")
            let victim = try await draidVictim(pool, in: directory)
            for row in victim.rows {
                for column in row.columns where column.child == victim.child && column.size > 0 {
                    try VdevFile(victim.path).write([UInt8](repeating: 0, count: column.size), at: VdevReader.labelStartByteCount + column.offset)
                }
            }
            let repairs = try await expectMOSMatchesZdb(
                directory: directory, name: pool.name, context: "\(pool.spec) seed \(made.seed), column on \(victim.path) zeroed", expected: expected)
            #expect((repairs?.draidRebuilds ?? 0) > 0, "\(String(describing: repairs))")
        }
    }

    /// The file of that child removed: every read that touches it is rebuilt from parity.
    @Test(arguments: 1...3)
    func missingDraidChildIsRebuilt(_ parity: Int) async throws {
        let made = try await MOSTestPools.get(MOSTestPools.draid)
        let pool = made.pool(parity: parity)
        try await withCopies(of: pool.deviceFiles, prefix: "mos-draid-missing") { directory in
            let (block, answer, _) = try await zdbMOSBlock(directory: directory, target: pool.name)
            let expected = try #require(block, "zdb printed no MOS configuration: \(answer)")
            let victim = try await draidVictim(pool, in: directory)
            try FileManager.default.removeItem(atPath: victim.path)
            let repairs = try await expectMOSMatchesZdb(
                directory: directory, name: pool.name, context: "\(pool.spec) seed \(made.seed), \(victim.path) removed", expected: expected)
            #expect((repairs?.draidRebuilds ?? 0) > 0, "\(String(describing: repairs))")
        }
    }

    /// nparity + 1 children removed: the dRAID vdev does not open (as `vdev_draid_open`
    /// says); a typed error names the MOS objset, the dRAID vdev and the missing children.
    @Test(arguments: 1...3)
    func tooManyMissingDraidChildrenIsATypedError(_ parity: Int) async throws {
        let made = try await MOSTestPools.get(MOSTestPools.draid)
        let pool = made.pool(parity: parity)
        var rng = SplitMix64(seed: made.seed &+ UInt64(parity))
        let removed = Set(pool.memberLeafDevices.shuffled(using: &rng).prefix(parity + 1).map { ($0 as NSString).lastPathComponent })
        try await withCopies(of: pool.deviceFiles.filter { !removed.contains(($0 as NSString).lastPathComponent) }, prefix: "mos-draid-gone") { directory in
            let scan = await zdbScan(directory)
            let found = try scan.pool(.name(pool.name))
            let result = try await offThePool { MOSReader.read(found, in: scan) }
            guard case .failure(let error) = result else {
                Issue.record("a dRAID\(parity) MOS was read with \(parity + 1) children removed: \(removed)")
                return
            }
            let top = try #require(found.root.children.first)
            let spec = try DraidGeometry(config: top.config, children: top.children.count).description
            #expect(error.object.hasPrefix("the MOS objset"), "\(error)")
            #expect(error.code == .unreadable, "\(error)")
            #expect(
                error.attempts.contains { $0.vdev == "\(spec)-0" && $0.reason.contains("\(parity + 1) of its") && $0.reason.contains("children are missing") },
                "\(error); removed \(removed)")
            // zdb is not asked here: it opens a leaf it does not find in DIR by the path the
            // config records, and the pool's own files are still there. With those moved away
            // too, zdb -e -C says "can't open 'POOL': No such device or address" (ENXIO, the
            // vdev_draid_open answer), as checked by hand.
        }
    }

    /// Every OpenZFS test-suite image pool that zdb can open.
    @Test func fixtureImagesMatchZdb() async throws {
        let directory = try await DecompressedImages.get()
        let scan = await zdbScan(directory)
        var compared: [String] = []
        var zdbRefused: [String] = []
        for pool in scan.pools {
            let (block, _, _) = try await zdbMOSBlock(directory: directory, target: "\(pool.guid.rawValue)")
            guard block != nil else {
                zdbRefused.append(pool.name)
                continue
            }
            compared.append(pool.name)
            try await expectMOSMatchesZdb(directory: directory, name: pool.name, context: "image pool \(pool.name)")
        }
        print("MOSInteropTests: images compared with zdb: \(compared.sorted()); zdb printed no MOS config for: \(zdbRefused.sorted())")
        #expect(compared.count >= 6, "compared \(compared), zdb refused \(zdbRefused)")
    }

    /// One side of a mirror overwritten: every MOS block is read from the other side.
    @Test func damagedMirrorSideIsReadThrough() async throws {
        let made = try await MOSTestPools.get()
        let pool = made.pools[1]
        try await withCopies(of: pool.deviceFiles, prefix: "mos-mirror") { directory in
            let victim = "\(directory)/\((pool.memberLeafDevices[0] as NSString).lastPathComponent)"
            try scrambleAllocatableSpace(of: victim, seed: made.seed)
            let repairs = try await expectMOSMatchesZdb(directory: directory, name: pool.name, context: "\(pool.spec), \(victim) scrambled")
            #expect((repairs?.mirrorFallbacks ?? 0) > 0, "\(String(describing: repairs))")
        }
    }

    /// One raidz child overwritten — the one holding the first data column of the MOS objset
    /// block's first copy: that read, and every other that touches the child, is rebuilt from
    /// parity (`repairs.raidzRebuilds` counts them; the ditto copies alone would hide it).
    @Test func damagedRaidzChildIsRebuilt() async throws {
        let made = try await MOSTestPools.get()
        let pool = made.pools[0]
        try await withCopies(of: pool.deviceFiles, prefix: "mos-raidz") { directory in
            let scan = await zdbScan(directory)
            let found = try scan.pool(.name(pool.name))
            let uberblock = try #require(PoolHealth.assess(found, in: scan, localHostID: 0).uberblock)
            let root = uberblock.rootBlockPointer
            let raidz = try #require(found.root.children.first { $0.id == root.dva0.vdevID })
            let ashift = Int(raidz.config.uint64("ashift") ?? 9)
            let parity = Int(raidz.config.uint64("nparity") ?? 1)
            let sector = 1 << ashift
            let size = (Int(root.properties.physicalByteCount) + sector - 1) / sector * sector
            let map = try RaidzMap(
                offset: root.dva0.byteOffset, size: UInt64(size), ashift: ashift, children: raidz.children.count, parity: parity)
            let victim = try #require(raidz.children[map.columns[parity].child].path)
            try scrambleAllocatableSpace(of: victim, seed: made.seed ^ 1)
            let repairs = try await expectMOSMatchesZdb(directory: directory, name: pool.name, context: "\(pool.spec), \(victim) scrambled")
            #expect((repairs?.raidzRebuilds ?? 0) > 0, "\(String(describing: repairs))")
        }
    }

    /// Every leaf overwritten: the labels and uberblocks remain, the MOS is gone. A typed
    /// error names the MOS objset, each vdev tried, its offset and the reason.
    @Test func destroyedMOSIsATypedError() async throws {
        let made = try await MOSTestPools.get()
        let pool = made.pools[1]
        try await withCopies(of: pool.deviceFiles, prefix: "mos-destroyed") { directory in
            for (n, leaf) in pool.memberLeafDevices.enumerated() {
                try scrambleAllocatableSpace(of: "\(directory)/\((leaf as NSString).lastPathComponent)", seed: made.seed &+ UInt64(n))
            }
            let scan = await zdbScan(directory)
            let found = try scan.pool(.name(pool.name))
            let result = try await offThePool { MOSReader.read(found, in: scan) }
            guard case .failure(let error) = result else {
                Issue.record("a destroyed MOS was read")
                return
            }
            #expect(error.object.hasPrefix("the MOS objset"), "\(error)")
            #expect(error.code == .unreadable, "\(error)")
            #expect(error.attempts.contains { $0.vdev.hasPrefix(directory) && $0.offset >= 4 << 20 }, "\(error)")
            let (block, answer, status) = try await zdbMOSBlock(directory: directory, target: pool.name)
            #expect(block == nil && status != 0, "zdb read a destroyed MOS: \(answer)")
        }
    }
}
