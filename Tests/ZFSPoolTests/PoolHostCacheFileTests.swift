// The host keeps its cache file in step with its pools: create/open/import/add/rename write the
// entry, export/destroy remove it, and `openPoolsFromCacheFile` fixes a stale one (the
// "zpk add a mirror, restore the cache file from before the add and restart" check).

import Foundation
import Testing
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSTestSupport

@testable import ZFSPool

@Suite struct PoolHostCacheFileTests {
    static let leaves = ["/dev/a", "/dev/b", "/dev/c", "/dev/d", "/dev/e", "/dev/f", "/dev/g"]

    /// A rack of leaves and a temporary directory for the cache file.
    struct Setup {
        let rack = DeviceRack(paths: PoolHostCacheFileTests.leaves)
        let directory: SparseFiles
        var cachePath: String { directory.directory + "/zpool.cache" }

        init() throws { directory = try SparseFiles(count: 0, size: 0) }

        func host(hostID: UInt64 = 0x1111_1111) -> PoolHost {
            var environment = rack.environment(hostID: hostID)
            environment.cacheFilePath = cachePath
            return PoolHost(environment: environment)
        }

        func cache() throws -> CacheFile { try CacheFile.read(at: cachePath) }
        var cacheExists: Bool { FileManager.default.fileExists(atPath: cachePath) }
    }

    static func topLevelCount(_ entry: CacheFile.Entry?) -> Int? {
        entry?.config.list("vdev_tree")?.lists("children")?.count
    }

    @Test func createWritesTheEntryExportAndDestroyRemoveIt() async throws {
        let setup = try Setup()
        let host = setup.host()
        let tank = try await host.create(name: "tank", layout: [.mirror(["/dev/a", "/dev/b"])])
        _ = try await host.create(name: "alpha", layout: [.leaf("/dev/c")])
        var cache = try setup.cache()
        #expect(cache.entries.map(\.name) == ["alpha", "tank"], "strcmp order, as OpenZFS writes them")
        #expect(cache.entry(.name("tank"))?.poolGUID == tank.guid)
        #expect(cache.entry(.name("tank"))?.config.uint64("state") == PoolState.active.rawValue)
        #expect(Self.topLevelCount(cache.entry(.name("tank"))) == 1)

        try await host.export("tank")
        cache = try setup.cache()
        #expect(cache.entries.map(\.name) == ["alpha"])
        try await host.destroy("alpha")
        #expect(!setup.cacheExists, "a cache file no pool uses is removed")
    }

    @Test func staleCacheFromBeforeAnAddIsFixedOnRestart() async throws {
        let setup = try Setup()
        let host = setup.host()
        let pool = try await host.create(name: "tank", layout: [.mirror(["/dev/a", "/dev/b"]), .mirror(["/dev/c", "/dev/d"])])
        let before = randomObjects(count: 12, maximumSize: 100_000, prefix: "before", seed: 41)
        for (name, bytes) in before { try await pool.put(name, bytes) }
        try await pool.sync()
        let staleBytes = try Data(contentsOf: URL(fileURLWithPath: setup.cachePath))
        #expect(Self.topLevelCount(try setup.cache().entry(.name("tank"))) == 2)

        try await host.add("tank", layout: [.mirror(["/dev/e", "/dev/f"])])
        #expect(Self.topLevelCount(try setup.cache().entry(.name("tank"))) == 3, "add rewrites the entry")
        let after = randomObjects(count: 12, maximumSize: 100_000, prefix: "after", seed: 42)
        for (name, bytes) in after { try await pool.put(name, bytes) }
        // zpkd's SIGTERM path: sync, leave the pool imported.
        let synced = await host.syncAll()
        #expect(synced.map(\.pool) == ["tank"])
        #expect(try synced[0].result.get() > TXG(5))

        // Restore the cache from before the add and "restart".
        try staleBytes.write(to: URL(fileURLWithPath: setup.cachePath))
        let restarted = setup.host()
        let outcomes = await restarted.openPoolsFromCacheFile()
        #expect(outcomes.count == 1)
        #expect(outcomes.first?.name == "tank")
        #expect(outcomes.first?.guid == pool.guid)
        let reopened = try #require(try outcomes.first?.result.get())
        #expect(reopened.openReport.configWasStale)
        #expect(reopened.status().vdevTree.children.count == 3)
        #expect(reopened.status().vdevTree.children.map(\.health) == ["ONLINE", "ONLINE", "ONLINE"])
        #expect(reopened.status().health == "ONLINE")
        try await expectObjects(reopened, before.merging(after) { a, _ in a })
        // The cache is fixed: three top-levels, every leaf path.
        let fixed = try #require(try setup.cache().entry(.name("tank")))
        #expect(Self.topLevelCount(fixed) == 3)
        let paths = (fixed.vdevTree?.lists("children") ?? []).flatMap { $0.lists("children") ?? [] }.compactMap { $0.string("path") }
        #expect(paths == ["/dev/a", "/dev/b", "/dev/c", "/dev/d", "/dev/e", "/dev/f"])
    }

    @Test func renameOnImportReplacesTheEntry() async throws {
        let setup = try Setup()
        let host = setup.host()
        let pool = try await host.create(name: "tank", layout: [.leaf("/dev/a")])
        try await pool.put("k", [1, 2, 3])
        let config = pool.config
        try await host.export("tank")
        let renamed = try await host.open(config: config, mode: .import(), newName: "lake")
        #expect(renamed.name == "lake")
        let cache = try setup.cache()
        #expect(cache.entries.map(\.name) == ["lake"])
        #expect(cache.entries.first?.config.string("name") == "lake")
        #expect(cache.entries.first?.poolGUID == pool.guid)
    }

    @Test func openPoolsFromCacheFileReportsEachEntry() async throws {
        let setup = try Setup()
        // No cache path, no cache file: no pools.
        #expect(await PoolHost(environment: setup.rack.environment()).openPoolsFromCacheFile().isEmpty)
        #expect(await setup.host().openPoolsFromCacheFile().isEmpty)

        let host = setup.host()
        _ = try await host.create(name: "good", layout: [.leaf("/dev/a")])
        let gone = try await host.create(name: "gone", layout: [.leaf("/dev/b")])
        // "gone" is listed at a path that no longer exists.
        var cache = try setup.cache()
        var entry = try #require(cache.entry(.name("gone")))
        var root = try #require(entry.config.list("vdev_tree"))
        var leaf = try #require(root.lists("children")?.first)
        leaf.set("path", .string("/dev/nowhere"))
        root.set("children", .nvlistArray([leaf]))
        entry.config.set("vdev_tree", .nvlist(root))
        try cache.insert(entry)
        try cache.write(to: setup.cachePath)

        let restarted = setup.host()
        let outcomes = await restarted.openPoolsFromCacheFile()
        #expect(outcomes.map(\.name) == ["gone", "good"])
        #expect(outcomes[0].guid == gone.guid)
        #expect(throws: PoolError.self) { try outcomes[0].result.get() }
        if case .failure(let error) = outcomes[0].result {
            #expect(error.code == .missingDevices)
            #expect(error.message.contains("/dev/nowhere"))
        }
        #expect(try outcomes[1].result.get().name == "good")
        #expect(try setup.cache().entries.map(\.name) == ["gone", "good"], "an entry that failed stays")
        // A second call returns the open pool rather than failing with poolExists.
        let again = await restarted.openPoolsFromCacheFile()
        #expect(try again[1].result.get() === outcomes[1].result.get())

        // An unreadable cache file: one outcome, named by the path, with the cause.
        try Data("not an nvlist".utf8).write(to: URL(fileURLWithPath: setup.cachePath))
        let broken = await setup.host().openPoolsFromCacheFile()
        #expect(broken.count == 1)
        #expect(broken.first?.name == setup.cachePath)
        #expect(broken.first?.guid == nil)
        if case .failure(let error)? = broken.first?.result {
            #expect(error.code == .cacheFileFailure)
            #expect(error.message.contains(setup.cachePath))
            #expect(error.cause is CacheFileError)
        } else {
            Issue.record("an unreadable cache file must give a failure outcome")
        }
    }

    @Test func aCacheFileThatCannotBeWrittenDoesNotFailThePool() async throws {
        let setup = try Setup()
        var environment = setup.rack.environment()
        environment.cacheFilePath = setup.directory.directory + "/missing-dir/zpool.cache"
        let host = PoolHost(environment: environment)
        let pool = try await host.create(name: "tank", layout: [.leaf("/dev/a")])
        #expect(pool.status().lastSyncedTXG == TXG(4))
        #expect(!FileManager.default.fileExists(atPath: environment.cacheFilePath!))
    }
}

/// The issue-4 scenarios on real files, through the cache file the way zpkd starts.
@Suite struct PoolHostRestartTests {
    @Test func aLeafDeletedWhileTheHostIsDownOpensDegradedNamingIt() async throws {
        let files = try SparseFiles(count: 2, size: 64 << 20)
        let cache = files.directory + "/zpk.cache"
        let environment = PoolHost.Environment(hostID: 0x77, hostname: "h", cacheFilePath: cache)
        let host = PoolHost(environment: environment)
        let pool = try await host.create(name: "tank", layout: [.mirror(files.paths)])
        try await pool.put("k", [1, 2, 3])
        _ = await host.syncAll()
        host.forget("tank")  // the host goes down (kill -9)
        try FileManager.default.removeItem(atPath: files.paths[1])

        let restarted = PoolHost(environment: environment)
        let outcomes = await restarted.openPoolsFromCacheFile()
        let reopened = try #require(try outcomes.first?.result.get())
        #expect(reopened.openReport.missingLeaves == [files.paths[1]])
        let status = reopened.status()
        #expect(status.health == "DEGRADED")
        let leaves = status.vdevTree.children[0].children
        #expect(leaves.map(\.path) == files.paths)
        #expect(leaves.map(\.health) == ["ONLINE", "UNAVAIL"])
        #expect(try await reopened.get("k") == [1, 2, 3])
    }

    @Test func aDestroyedPoolIsListedOnlyByImportD() async throws {
        let files = try SparseFiles(count: 1, size: 64 << 20)
        let host = PoolHost(environment: .init(hostID: 0x77, hostname: "h"))
        _ = try await host.create(name: "gone", layout: [.leaf(files.paths[0])])
        try await host.destroy("gone")
        let normal = await ImportScanner(options: .init(searchPaths: [files.directory], skipDevicesInUse: false)).scan()
        #expect(normal.pools.isEmpty)
        let destroyed = await ImportScanner(
            options: .init(searchPaths: [files.directory], destroyedPools: .only, skipDevicesInUse: false)
        ).scan()
        #expect(destroyed.pools.map(\.name) == ["gone"])
        await #expect { try await host.importPool("gone", searchPaths: [files.directory]) } throws: {
            ($0 as? PoolError)?.code == .unknownPool
        }
    }
}
