// Discovery against real OpenZFS: fresh ztest pools, moved, damaged and mixed, scanned by us
// and by `zdb -e -p DIR -CC`; the assembled configs must agree key for key, value for value
// (and, so far always, byte for byte: key order too).
//
// Three pools are made once per test process, in parallel, with ZFSTestSupport's
// `OpenZFS.makePool`, and every test works on sparse copies in its own directory:
//   * "churn": ztest's random vdev changes on a mirror of raidz1 vdevs, required to reach
//     ≥ 2 top-level vdevs and a hot spare or a cache device, usually both (often also logs
//     and holes);
//   * "draid": a dRAID1 with 3 data disks, 1 distributed spare and 7 children (exact);
//   * "random": `ZTestPoolSpec.random` (single, mirror, raidz1–3, mirror of raidz, dRAID; ashift
//     9–13), renamed "ztest" like "churn" so that the two can be mixed to test duplicate names.
// Set ZPK_IMPORT_SEED to replay the random layout; the seed is in the pool's description.

import Foundation
import Testing
import ZFSFormat
import ZFSImport
import ZFSTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The three shared ztest pools (made once; removed at exit).
final class SharedZTestPools: Sendable {
    let churn: ZTestPool
    let draid: ZTestPool
    let random: ZTestPool
    let seed: UInt64

    /// Made once, on threads of their own: tests waiting for ztest suspend rather than hold
    /// cooperative threads.
    static let task: Task<SharedZTestPools, any Error> = Task {
        atexit { SharedZTestPools.directories.removeAll() }
        return try await offThePool { try SharedZTestPools() }
    }

    static let directories = ManagedDirectories()

    static func get() async throws -> SharedZTestPools {
        try OpenZFS.requireInstalled()
        return try await task.value
    }

    func pool(_ which: String) -> ZTestPool {
        switch which {
        case "churn": churn
        case "draid": draid
        default: random
        }
    }

    private init() throws {
        let seed = ProcessInfo.processInfo.environment["ZPK_IMPORT_SEED"].flatMap { UInt64($0) }
            ?? UInt64.random(in: 0...UInt64.max)
        self.seed = seed
        var churn = ZTestPoolSpec(
            layout: .mirroredRaidz(copies: 2, parity: 1, width: 3), vdevSizeInBytes: 128 << 20, poolName: "ztest")
        churn.minimumTopLevelVdevs = 2
        churn.maxAttempts = 1
        let draid = ZTestPoolSpec(layout: .draid(parity: 1, data: 3, spares: 1, children: 7), ashift: 12, poolName: "draidp")
        var rng = SplitMix64(seed: seed)
        var random = ZTestPoolSpec.random(using: &rng)
        random.poolName = "ztest"
        let directory = try TemporaryDirectory(prefix: "import-pools")
        Self.directories.keep(directory)
        // ztest mostly waits, so runs in parallel cost little more than the slowest. Its vdev
        // changes are random: under this load about 3 runs in 4 reach two top-level vdevs and
        // 5 in 8 also get a spare or a cache device (measured here), so three churn runs go at
        // once and the one with the most kinds of aux device wins; up to three rounds.
        let churnSpec = churn
        let randomSpec = random
        let churnJob = { @Sendable () throws -> ZTestPool in try OpenZFS.makePool(churnSpec, in: directory.path) }
        var made = inParallel([
            { @Sendable in try OpenZFS.makePool(draid, in: directory.path) },
            { @Sendable in try OpenZFS.makePool(randomSpec, in: directory.path) },
            churnJob, churnJob, churnJob,
        ])
        self.draid = try made[0].get()
        self.random = try made[1].get()
        var candidates = Array(made[2...])
        // A run that ztest ends between a txg sync and its cache-file update leaves a cache file
        // older than the labels (seen: txg 132 against 135). The cache-file suites compare
        // OpenZFS's cache file with the labels, so a run whose cache file is current ranks first.
        func cacheFileIsCurrent(_ pool: ZTestPool) -> Bool {
            guard let cache = try? CacheFile.read(at: pool.cacheFile),
                let candidate = try? cache.scanDevices(path: pool.cacheFile, selector: .name(pool.name)).pool(.name(pool.name))
            else { return false }
            return candidate.notes.isEmpty
        }
        var best: (pool: ZTestPool, score: Int)?
        for round in 1...3 {
            for case .success(let pool) in candidates {
                let auxKinds = (pool.spareDevices.isEmpty ? 0 : 1) + (pool.l2cacheDevices.isEmpty ? 0 : 1)
                let score = (cacheFileIsCurrent(pool) ? 10 : 0) + auxKinds
                if best == nil || score > best!.score { best = (pool, score) }
            }
            if let best, best.score > 10 { break }
            guard round < 3 else { break }
            made = inParallel([churnJob, churnJob, churnJob])
            candidates = made
        }
        guard let best else {
            if case .failure(let error)? = candidates.first { throw error }
            throw TestFailure(description: "ztest made no churn pool with two top-level vdevs in three rounds")
        }
        self.churn = best.pool
    }
}

@Suite(.offTheCooperativePool)
struct DiscoveryInteropTests {
    /// OpenZFS 2.1.11 is this suite's oracle: without it every test fails, naming the missing tool.
    init() throws { try OpenZFS.requireInstalled() }

    /// Each pool, moved to a new directory, assembles to zdb's config: the paths in the labels
    /// are stale, so every leaf path must be refreshed by guid.
    @Test(arguments: ["churn", "draid", "random"])
    func movedPoolMatchesZdb(_ which: String) async throws {
        let pools = try await SharedZTestPools.get()
        let pool = pools.pool(which)
        let context = "\(which) \(pool) seed \(pools.seed)"
        try await withCopies(of: pool.deviceFiles) { directory in
            let result = await zdbScan(directory)
            #expect(result.pools.count == 1, "\(context)")
            let found = try result.pool(.name(pool.name))
            #expect(found.missingTopLevelIDs.isEmpty, "\(found.notes); \(context)")
            #expect(found.root.children.count == pool.topLevelVdevs.count, "\(context)")
            for leaf in found.root.leaves where leaf.type != .draidSpare {
                #expect(leaf.path?.hasPrefix(directory + "/") == true, "\(leaf.path ?? "nil") not refreshed; \(context)")
                #expect(leaf.presence == .found(path: leaf.path ?? "", labelCount: 4), "\(context)")
            }
            let identical = try await expectMatchesZdb(found, directory: directory, target: pool.name)
            #expect(identical, "same keys and values as zdb, but not in zdb's order; \(context)")
        }
    }

    /// Hot spares and cache devices are aux devices of the scan, never pools, with the guid
    /// and state zdb -l shows.
    @Test func sparesAndCacheDevicesAreAuxiliary() async throws {
        let pools = try await SharedZTestPools.get()
        let pool = pools.churn
        try await withCopies(of: pool.deviceFiles) { directory in
            let result = await zdbScan(directory)
            #expect(result.pools.count == 1)
            let spares = result.auxiliaryDevices.filter { $0.kind == .spare }.map { ($0.path as NSString).lastPathComponent }
            let caches = result.auxiliaryDevices.filter { $0.kind == .l2cache }.map { ($0.path as NSString).lastPathComponent }
            #expect(Set(spares) == Set(pool.spareDevices.map { ($0 as NSString).lastPathComponent }), "\(pool)")
            #expect(Set(caches) == Set(pool.l2cacheDevices.map { ($0 as NSString).lastPathComponent }), "\(pool)")
            // Usually both; at least one (see SharedZTestPools).
            #expect(!spares.isEmpty || !caches.isEmpty, "\(pool)")
            for aux in result.auxiliaryDevices {
                let (label, _, _) = try await offThePool { try OpenZFS.zdb(["-l", aux.path]) }
                #expect(label.contains("\n    guid: \(aux.guid)\n"))
                #expect(label.contains("\n    state: \(aux.kind == .spare ? 3 : 4)\n"))
            }
            try await expectMatchesZdb(result.pools[0], directory: directory, target: pool.name)
        }
    }

    /// One leaf deleted: the leaf keeps the path its label recorded and is marked not found;
    /// everything else is refreshed.
    @Test func removedLeafMatchesZdb() async throws {
        let pools = try await SharedZTestPools.get()
        let pool = pools.churn
        let victim = pool.memberLeafDevices[0]
        try await withCopies(of: pool.deviceFiles.filter { $0 != victim }) { directory in
            let found = try await zdbScan(directory).pool(.name(pool.name))
            let absent = found.root.leaves.filter { $0.presence == .notFound }
            #expect(absent.map(\.path) == [victim], "\(pool)")
            try await expectMatchesZdb(found, directory: directory, target: pool.name)
        }
    }

    /// Every leaf of one top-level vdev deleted: `vdev_children` from the other labels turns
    /// its slot into a `missing` placeholder.
    @Test func removedTopLevelBecomesMissing() async throws {
        let pools = try await SharedZTestPools.get()
        let pool = pools.churn
        let concrete = pool.topLevelVdevs.enumerated().filter { $0.element.type != "hole" }
        try #require(concrete.count >= 2, "\(pool)")
        let (victimID, victim) = concrete.last!
        let victimFiles = Set(victim.leafPaths)
        try await withCopies(of: pool.deviceFiles.filter { !victimFiles.contains($0) }) { directory in
            let found = try await zdbScan(directory).pool(.name(pool.name))
            #expect(found.missingTopLevelIDs == [UInt64(victimID)], "\(pool)")
            #expect(found.root.children.count == pool.topLevelVdevs.count)
            try await expectMatchesZdb(found, directory: directory, target: pool.name)
        }
    }

    /// Labels 0 and 1 of a leaf zeroed: the device is still found through labels 2 and 3
    /// (`num_labels` 2), so its path is refreshed.
    @Test(arguments: ["draid", "random"])
    func zeroedFrontLabelsMatchZdb(_ which: String) async throws {
        let pools = try await SharedZTestPools.get()
        let pool = pools.pool(which)
        try await withCopies(of: pool.deviceFiles) { directory in
            let victim = "\(directory)/\((pool.leafDevices[0] as NSString).lastPathComponent)"
            try VdevFile(victim).zeroLabel(0)
            try VdevFile(victim).zeroLabel(1)
            let result = await zdbScan(directory)
            let device = try #require(result.devices.first { $0.path == victim })
            #expect(device.labelCount == 2)
            #expect(device.probe?.labels.map(\.verdict) == [.empty, .empty, .accepted, .accepted])
            let found = try result.pool(.name(pool.name))
            #expect(found.root.leaves.contains { $0.path == victim && $0.presence == .found(path: victim, labelCount: 2) })
            try await expectMatchesZdb(found, directory: directory, target: pool.name)
        }
    }

    /// Copies of the same leaves under other names: each has the same guid, four labels and
    /// the same search order, so `fix_paths` takes the one libzutil processed last — which
    /// depends on the shape of its AVL tree, built in `readdir` order. zdb and we must pick
    /// the same copy.
    @Test func duplicateDevicesTieBreakLikeZdb() async throws {
        let pools = try await SharedZTestPools.get()
        let pool = pools.draid
        try await withCopies(of: pool.deviceFiles) { directory in
            try await offThePool {
                for (i, source) in pool.leafDevices.prefix(3).enumerated() {
                    for prefix in ["zz", "b", "0", "m", "dup", "q", "a_", "x"] {
                        try VdevFile(source).copy(to: "\(directory)/\(prefix)-copy\(i)")
                    }
                }
            }
            let found = try await zdbScan(directory).pool(.name(pool.name))
            #expect(found.memberDevices.count == pool.leafDevices.count + 24)
            let identical = try await expectMatchesZdb(found, directory: directory, target: pool.name)
            #expect(identical)
        }
    }

    /// Two pools named "ztest" in one directory: both are listed, the name is ambiguous, and
    /// each guid selects one whose config equals zdb's for that guid.
    @Test func sameNamePoolsAreSelectedByGuid() async throws {
        let pools = try await SharedZTestPools.get()
        try #require(pools.churn.name == pools.random.name)
        let directory = try TemporaryDirectory(prefix: "import-twins")
        try await offThePool {
            for file in pools.churn.deviceFiles {
                try VdevFile(file).copy(to: directory.path((file as NSString).lastPathComponent))
            }
            for file in pools.random.deviceFiles {
                try VdevFile(file).copy(to: directory.path("twin-" + (file as NSString).lastPathComponent))
            }
        }
        let result = await zdbScan(directory.path)
        let twins = result.pools.filter { $0.name == "ztest" }
        #expect(twins.count == 2)
        #expect(Set(twins.map(\.guid)).count == 2)
        let ambiguous = #expect(throws: ImportError.self) { try result.pool(.name("ztest")) }
        #expect(ambiguous?.code == .moreThanOneMatchingPool)
        for twin in twins {
            let selected = try result.pool(.guid(twin.guid))
            #expect(selected.guid == twin.guid)
            try await expectMatchesZdb(selected, directory: directory.path, target: "\(twin.guid)")
        }
        // A guid filter keeps exactly one; the other pool's devices are noted as filtered out.
        let filtered = await ImportScanner(options: .zdb(searchPaths: [directory.path], selector: .guid(twins[0].guid))).scan()
        #expect(filtered.pools.map(\.guid) == [twins[0].guid])
        #expect(filtered.devices.contains { $0.note == .filteredOut })
        withExtendedLifetime(directory) {}
    }

    /// A pool whose labels say DESTROYED (state 2): hidden by default, alone with `.only`,
    /// included by zdb, whose config it matches.
    @Test func destroyedPoolOnlyWhenAsked() async throws {
        let pools = try await SharedZTestPools.get()
        let pool = pools.random
        try await withCopies(of: pool.deviceFiles) { directory in
            for file in pool.deviceFiles {
                try rewriteLabels(of: "\(directory)/\((file as NSString).lastPathComponent)") {
                    $0.set("state", .uint64(PoolState.destroyed.rawValue))
                }
            }
            #expect(await ImportScanner(options: .init(searchPaths: [directory])).scan().pools.isEmpty)
            let only = await ImportScanner(options: .init(searchPaths: [directory], destroyedPools: .only)).scan()
            #expect(only.pools.count == 1)
            #expect(only.pools.first?.isDestroyed == true)
            let found = try await zdbScan(directory).pool(.name(pool.name))
            #expect(found.state == .destroyed)
            try await expectMatchesZdb(found, directory: directory, target: pool.name)
        }
    }
}

/// Rewrites the config of every label of a device file that decodes (checksum resealed).
func rewriteLabels(of path: String, _ change: (inout NVList) -> Void) throws {
    let file = VdevFile(path)
    let size = try file.size()
    for case let offset? in DeviceLabels.labelOffsets(deviceSize: size) {
        let blockOffset = offset + UInt64(VdevLabel.configBlockOffset)
        let block = try file.read(count: VdevLabel.configBlockByteCount, at: blockOffset)
        guard block.count == VdevLabel.configBlockByteCount,
            var config = try? NVList(decoding: block[0..<VdevLabel.configCapacity])
        else { continue }
        change(&config)
        let packed = try config.encoded(as: .xdr)
        var fresh = packed + [UInt8](repeating: 0, count: VdevLabel.configBlockByteCount - packed.count)
        try EmbeddedChecksum.seal(&fresh, absoluteOffset: blockOffset, byteOrder: .little)
        try file.write(fresh, at: blockOffset)
    }
}
