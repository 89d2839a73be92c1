// Cache files against real OpenZFS 2.1.11, on the shared ztest pools (DiscoveryInteropTests.swift):
//   * the entry we rebuild from labels is the one OpenZFS wrote, minus the MOS-only keys;
//   * zdb reads our file, and opens the pool from it exactly as from its own;
//   * a cache file's entries become import candidates with every leaf found, and a moved
//     device is reported missing, then found by scanning the entry's directories.

import Foundation
import Testing
import ZFSFormat
import ZFSImport
import ZFSTestSupport

/// The keys only the MOS config has (`vdev_config_generate` with `VDEV_CONFIG_MOS`).
let mosOnlyVdevKeys: Set<String> = ["com.delphix:vdev_zap_top", "com.delphix:vdev_zap_leaf", "com.delphix:resilver_defer"]

/// `config` without the MOS-only keys, at every depth of its vdev tree.
func withoutMOSOnlyKeys(_ config: NVList) -> NVList {
    var result = config
    result.pairs = config.pairs.compactMap { pair in
        if mosOnlyVdevKeys.contains(pair.name) { return nil }
        switch pair.value {
        case .nvlist(let list) where pair.name == "vdev_tree": return NVPair(pair.name, .nvlist(withoutMOSOnlyKeys(list)))
        case .nvlistArray(let lists) where pair.name == "children": return NVPair(pair.name, .nvlistArray(lists.map(withoutMOSOnlyKeys)))
        default: return pair
        }
    }
    return result
}

@Suite(.offTheCooperativePool)
struct CacheFileInteropTests {
    /// OpenZFS 2.1.11 is this suite's oracle: without it every test fails, naming the missing tool.
    init() throws { try OpenZFS.requireInstalled() }

    /// The entry `zpk cache add` would store, for the pool in its own directory.
    func ourEntry(_ pool: ZTestPool) async throws -> CacheFile.Entry {
        let result = await ImportScanner(options: .zdb(searchPaths: [pool.directory], selector: .name(pool.name))).scan()
        return try CacheFile.entry(for: try result.pool(.name(pool.name)), in: result)
    }

    @Test(arguments: ["churn", "draid", "random"])
    func entryFromLabelsIsOpenZFSsWithoutMOSOnlyKeys(_ which: String) async throws {
        let pools = try await SharedZTestPools.get()
        let pool = pools.pool(which)
        let context = "\(which) \(pool) seed \(pools.seed)"
        let theirs = try #require(try CacheFile.read(at: pool.cacheFile).entry(.name(pool.name)), "\(context)")
        let ours = try await ourEntry(pool)
        #expect(ours.name == theirs.name)
        let expected = withoutMOSOnlyKeys(theirs.config)
        #expect(ours.config == expected, "\(context)\nours:\n\(ours.config.dumpText(indent: 4))\ntheirs:\n\(expected.dumpText(indent: 4))")
    }

    /// zdb reads the file we write, and opens the pool from it (`zdb -U FILE -C POOL`: the cached
    /// config, then the MOS config it reads from the devices) exactly as from OpenZFS's own.
    @Test(arguments: ["churn", "draid", "random"])
    func zdbOpensThePoolFromOurCacheFile(_ which: String) async throws {
        let pools = try await SharedZTestPools.get()
        let pool = pools.pool(which)
        let context = "\(which) \(pool) seed \(pools.seed)"
        let entry = try await ourEntry(pool)
        try await withTemporaryDirectory(prefix: "cache-zdb") { directory in
            let ours = directory.path("zpool.cache")
            try CacheFile(entries: [entry]).write(to: ours)
            let (oursShown, theirsShown) = try await offThePool {
                (try OpenZFS.zdb(["-C", "-U", ours]), try OpenZFS.zdb(["-C", "-U", pool.cacheFile]))
            }
            #expect(oursShown.status == 0, "\(oursShown.stderr)")
            let theirsMinusZAPs = theirsShown.stdout.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { line in !mosOnlyVdevKeys.contains { line.contains("\($0):") } }.joined(separator: "\n")
            let theirsPoolOnly = OpenZFSCacheText.pool(pool.name, in: theirsMinusZAPs)
            #expect(oursShown.stdout == theirsPoolOnly, "\(context)")

            let (opened, reference) = try await offThePool {
                (try OpenZFS.zdb(["-U", ours, "-C", pool.name]), try OpenZFS.zdb(["-U", pool.cacheFile, "-C", pool.name]))
            }
            #expect(opened.status == 0, "zdb -U \(ours) -C \(pool.name): \(opened.stderr); \(context)")
            #expect(opened.stdout == reference.stdout, "\(context)")
            #expect(opened.stdout.contains("MOS Configuration:"), "\(context)")
        }
    }

    /// `zpool import -c` before the kernel: every leaf of every entry found at its path.
    @Test(arguments: ["churn", "draid", "random"])
    func openZFSsCacheFileBecomesCandidatesWithEveryLeafFound(_ which: String) async throws {
        let pools = try await SharedZTestPools.get()
        let pool = pools.pool(which)
        let context = "\(which) \(pool) seed \(pools.seed)"
        let cache = try CacheFile.read(at: pool.cacheFile)
        let result = cache.scanDevices(path: pool.cacheFile, selector: .name(pool.name))
        let candidate = try result.pool(.name(pool.name))
        #expect(candidate.config.string("cachefile") == pool.cacheFile)
        #expect(candidate.notes.isEmpty, "\(candidate.notes); \(context)")
        let leaves = candidate.root.leaves.filter { $0.path != nil }
        #expect(!leaves.isEmpty)
        for leaf in leaves {
            #expect(leaf.presence == .found(path: leaf.path!, labelCount: 4), "\(leaf.guid); \(context)")
        }
        #expect(candidate.memberDevices.count == leaves.count)
        #expect(Set(result.devices.map(\.path)) == Set(leaves.compactMap(\.path)))
        #expect(candidate.root.guidSum == VdevNode(config: try #require(cache.entry(.name(pool.name))?.vdevTree)).guidSum)
    }

    /// A device moved away is reported, with its path; scanning the entry's directories (what
    /// zpool does next: "cachefile import failed, retrying") finds it again.
    @Test func aMovedDeviceIsNotFoundThenFoundByScanningTheEntrysDirectories() async throws {
        let pools = try await SharedZTestPools.get()
        let pool = pools.random
        try await withCopies(of: pool.memberLeafDevices, prefix: "cache-moved") { directory in
            // An entry naming the copies, then one copy moved to a subdirectory.
            var entry = try await ourEntry(pool)
            entry.config = try Self.retargeted(entry.config, from: pool.directory, to: directory)
            let cachePath = directory + "/zpool.cache"
            try CacheFile(entries: [entry]).write(to: cachePath)
            let moved = try #require(entry.leafPaths.first)
            let sub = directory + "/sub"
            try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: false)
            try FileManager.default.moveItem(atPath: moved, toPath: sub + "/" + (moved as NSString).lastPathComponent)

            let cache = try CacheFile.read(at: cachePath)
            let result = cache.scanDevices(path: cachePath)
            let candidate = try #require(result.pools.first)
            let missing = candidate.root.leaves.filter { $0.presence == .notFound }
            #expect(missing.map(\.path) == [moved])
            #expect(candidate.notes.contains { $0.contains(moved) && $0.contains("nothing is at that path") }, "\(candidate.notes)")
            #expect(cache.entries[0].searchDirectories == [directory])

            let rescan = await ImportScanner(
                options: .zdb(searchPaths: cache.entries[0].searchDirectories + [sub], selector: .guid(try #require(entry.poolGUID)))
            ).scan()
            let found = try rescan.pool(.guid(try #require(entry.poolGUID)))
            #expect(found.root.leaves.allSatisfy { $0.presence != .notFound || $0.type == .draidSpare })
        }
    }

    /// Leaf paths under `old` moved to `new`.
    static func retargeted(_ config: NVList, from old: String, to new: String) throws -> NVList {
        var result = config
        for i in result.pairs.indices {
            switch result.pairs[i].value {
            case .nvlist(let list): result.pairs[i].value = .nvlist(try retargeted(list, from: old, to: new))
            case .nvlistArray(let lists): result.pairs[i].value = .nvlistArray(try lists.map { try retargeted($0, from: old, to: new) })
            case .string(let path) where result.pairs[i].name == "path" && path.hasPrefix(old + "/"):
                result.pairs[i].value = .string(new + path.dropFirst(old.count))
            default: break
            }
        }
        return result
    }
}

/// Cutting one pool's block out of `zdb -C -U` text.
enum OpenZFSCacheText {
    static func pool(_ name: String, in text: String) -> String {
        var lines: [Substring] = []
        var inside = false
        for line in text.split(separator: "\n") {
            if !line.hasPrefix(" ") && line.hasSuffix(":") { inside = line == "\(name):" }
            if inside { lines.append(line) }
        }
        return lines.map { $0 + "\n" }.joined()
    }
}
