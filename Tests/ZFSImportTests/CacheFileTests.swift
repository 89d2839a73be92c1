// CacheFile: decoding and encoding the fixture cache file, entry editing, and the file-level
// behaviour of `update` on a real directory (modes, removal, locking, stale temporaries).

import Foundation
import Synchronization
import Testing
import ZFSFormat
import ZFSImport
import ZFSTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A pool config with just what `insert` and `matches` look at.
func cacheEntry(_ name: String, guid: UInt64, txg: UInt64 = 10, paths: [String] = []) -> CacheFile.Entry {
    var config = NVList()
    config.set("version", .uint64(5000))
    config.set("name", .string(name))
    config.set("state", .uint64(0))
    config.set("txg", .uint64(txg))
    config.set("pool_guid", .uint64(guid))
    var root = NVList()
    root.set("type", .string("root"))
    root.set("id", .uint64(0))
    root.set("guid", .uint64(guid))
    root.set(
        "children",
        .nvlistArray(
            paths.enumerated().map { i, path in
                Synthetic.leaf(id: UInt64(i), guid: guid &+ UInt64(i) &+ 1, path: path)
            }))
    config.set("vdev_tree", .nvlist(root))
    return CacheFile.Entry(name: name, config: config)
}

func fileMode(_ path: String) -> UInt32? {
    var info = stat()
    guard lstat(path, &info) == 0 else { return nil }
    return UInt32(info.st_mode & 0o7777)
}

func exists(_ path: String) -> Bool { fileMode(path) != nil }

func directoryNames(_ path: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
}

@Suite(.offTheCooperativePool) struct CacheFileCodecTests {
    @Test func fixtureDecodesAndReencodesByteForByte() throws {
        let bytes = try Fixtures.bytes("zpool.cache")
        let cache = try CacheFile(decoding: bytes, path: "zpool.cache")
        #expect(cache.entries.map(\.name) == ["ztest"])
        #expect(cache.entries[0].poolGUID == PoolGUID(8_073_999_673_132_614_431))
        #expect(cache.entries[0].poolName == "ztest")
        #expect(cache.sourceEncoding == .native)
        #expect(cache.sourceByteOrder == .little)
        #expect(cache.skippedPairs.isEmpty)
        #expect(try cache.encoded(byteOrder: .little) == bytes)
        #expect(bytes.count == 2512)
    }

    @Test func emptyFileHasNoPools() throws {
        let cache = try CacheFile(decoding: [UInt8](), path: "/etc/zpk/zpool.cache")
        #expect(cache.entries.isEmpty)
        #expect(cache.sourceEncoding == nil)
    }

    /// A NATIVE file written on a big-endian host, and an XDR one, hold the same pools.
    @Test(arguments: [(NVList.Encoding.native, Endianness.big), (.xdr, .big), (.native, .little)])
    func everyEncodingAndByteOrderIsRead(_ encoding: NVList.Encoding, _ order: Endianness) throws {
        let fixture = try CacheFile(decoding: Fixtures.bytes("zpool.cache"), path: "fixture")
        let bytes = try fixture.nvlist.encoded(as: encoding, byteOrder: order)
        let cache = try CacheFile(decoding: bytes, path: "other")
        #expect(cache.entries == fixture.entries)
        #expect(cache.sourceEncoding == encoding)
        #expect(cache.sourceByteOrder == (encoding == .xdr ? .big : order))
    }

    @Test func garbageIsCorruptAndNamesTheFile() throws {
        for bytes: [UInt8] in [[0x00], [0x07, 0x01, 0, 0, 1, 2, 3], Array(try Fixtures.bytes("zpool.cache").prefix(100))] {
            let error = #expect(throws: CacheFileError.self) { try CacheFile(decoding: bytes, path: "/x/zpool.cache") }
            #expect(error?.code == .corrupt)
            #expect(error?.message.hasPrefix("invalid or corrupt cache file contents in '/x/zpool.cache': ") == true)
        }
    }

    @Test func pairsThatAreNotNVListsAreSkipped() throws {
        var list = NVList()
        list.set("a", .nvlist(cacheEntry("a", guid: 1).config))
        list.set("junk", .uint64(7))
        let cache = try CacheFile(decoding: try list.encoded(as: .native), path: "f")
        #expect(cache.entries.map(\.name) == ["a"])
        #expect(cache.skippedPairs == ["junk"])
    }

    @Test func insertKeepsNameOrderAndReplacesBySameGUID() throws {
        var cache = CacheFile()
        #expect(try cache.insert(cacheEntry("tank", guid: 2)) == nil)
        #expect(try cache.insert(cacheEntry("alpha", guid: 1)) == nil)
        #expect(try cache.insert(cacheEntry("zeta", guid: 3)) == nil)
        // strcmp order: uppercase before lowercase.
        #expect(try cache.insert(cacheEntry("Zulu", guid: 4)) == nil)
        #expect(cache.entries.map(\.name) == ["Zulu", "alpha", "tank", "zeta"])
        // Same guid, new txg: replaced in place.
        let replaced = try cache.insert(cacheEntry("tank", guid: 2, txg: 99))
        #expect(replaced?.config.uint64("txg") == 10)
        #expect(cache.entries.map(\.name) == ["Zulu", "alpha", "tank", "zeta"])
        #expect(cache.entry(.name("tank"))?.config.uint64("txg") == 99)
        // Same guid under a new name: the pool was renamed.
        try cache.insert(cacheEntry("renamed", guid: 2))
        #expect(cache.entries.map(\.name) == ["Zulu", "alpha", "renamed", "zeta"])
    }

    @Test func anotherPoolOfTheSameNameIsRefused() throws {
        var cache = CacheFile(entries: [cacheEntry("tank", guid: 2), cacheEntry("other", guid: 3)])
        let error = #expect(throws: CacheFileError.self) { try cache.insert(cacheEntry("tank", guid: 9), path: "/c") }
        #expect(error?.code == .nameInUse)
        #expect(
            error?.message
                == "cache file '/c' already holds another pool named 'tank' (guid 2); remove it first (zpk cache remove 2)")
        // Renaming pool 3 onto the name of pool 2 is refused too.
        #expect(throws: CacheFileError.self) { try cache.insert(cacheEntry("tank", guid: 3)) }
        var noGUID = cacheEntry("x", guid: 1)
        noGUID.config["pool_guid"] = nil
        #expect((#expect(throws: CacheFileError.self) { try cache.insert(noGUID) })?.code == .invalidEntry)
    }

    @Test func removeByNameOrGUID() throws {
        var cache = CacheFile(entries: [cacheEntry("a", guid: 1), cacheEntry("b", guid: 2)])
        #expect(try cache.remove(.guid(PoolGUID(2))).name == "b")
        #expect(try cache.remove(.name("a")).poolGUID == PoolGUID(1))
        let error = #expect(throws: CacheFileError.self) { try cache.remove(.name("a"), path: "/c") }
        #expect(error?.code == .noSuchPool)
        #expect(error?.message == "cache file '/c' has no pool 'a'; it lists no pools")
    }
}

@Suite(.offTheCooperativePool) struct CacheFileUpdateTests {
    @Test func newFileIsMode0644() throws {
        try withTemporaryDirectory(prefix: "cache-mode") { directory in
            let path = directory.path("zpool.cache")
            let written = try CacheFile.update(at: path) { cache throws(CacheFileError) in
                try cache.insert(cacheEntry("tank", guid: 5))
            }
            #expect(fileMode(path) == 0o644)
            #expect(try CacheFile.read(at: path) == written)
            #expect(try CacheFile.read(at: path).entries.map(\.name) == ["tank"])
            #expect(directoryNames(directory.path) == ["zpool.cache"])
        }
    }

    /// The mode is set with fchmod, so the umask (process-wide: not changed here, other tests
    /// run in parallel) cannot narrow it.
    @Test func createdFilesGetExactlyTheModeAskedFor() throws {
        try withTemporaryDirectory(prefix: "cache-mode") { directory in
            let fileSystem = PosixCacheFileSystem()
            let handle = try fileSystem.createExclusive(directory.path("f"), permissions: 0o666, owner: nil)
            try fileSystem.close(handle)
            #expect(fileMode(directory.path("f")) == 0o666)
        }
    }

    @Test func existingModeIsKept() throws {
        try withTemporaryDirectory(prefix: "cache-mode") { directory in
            let path = directory.path("zpool.cache")
            try CacheFile(entries: [cacheEntry("a", guid: 1)]).write(to: path)
            chmod(path, 0o600)
            try CacheFile.update(at: path) { cache throws(CacheFileError) in try cache.insert(cacheEntry("b", guid: 2)) }
            #expect(fileMode(path) == 0o600)
            #expect(try CacheFile.read(at: path).entries.map(\.name) == ["a", "b"])
        }
    }

    @Test func removingTheLastPoolRemovesTheFile() throws {
        try withTemporaryDirectory(prefix: "cache-rm") { directory in
            let path = directory.path("zpool.cache")
            try CacheFile(entries: [cacheEntry("a", guid: 1)]).write(to: path)
            let left = try CacheFile.update(at: path) { cache throws(CacheFileError) in try cache.remove(.name("a")) }
            #expect(left.entries.isEmpty)
            #expect(!exists(path))
            let error = #expect(throws: CacheFileError.self) { try CacheFile.read(at: path) }
            #expect(error?.code == .notFound)
            #expect(error?.message == "cannot open cache file '\(path)': No such file or directory")
            // Removing from a file that does not exist: no such pool, and still no file.
            let missing = #expect(throws: CacheFileError.self) {
                try CacheFile.update(at: path) { cache throws(CacheFileError) in try cache.remove(.name("a"), path: path) }
            }
            #expect(missing?.code == .noSuchPool)
            #expect(!exists(path))
        }
    }

    @Test func emptyFileIsReadAsNoPoolsAndRewritten() throws {
        try withTemporaryDirectory(prefix: "cache-empty") { directory in
            let path = directory.path("zpool.cache")
            #expect(FileManager.default.createFile(atPath: path, contents: Data()))
            #expect(try CacheFile.read(at: path).entries.isEmpty)
            try CacheFile.update(at: path) { cache throws(CacheFileError) in try cache.insert(cacheEntry("a", guid: 1)) }
            #expect(try CacheFile.read(at: path).entries.count == 1)
        }
    }

    @Test func corruptFileIsLeftAlone() throws {
        try withTemporaryDirectory(prefix: "cache-corrupt") { directory in
            let path = directory.path("zpool.cache")
            let junk = Data("not an nvlist".utf8)
            #expect(FileManager.default.createFile(atPath: path, contents: junk))
            let error = #expect(throws: CacheFileError.self) {
                try CacheFile.update(at: path) { cache throws(CacheFileError) in try cache.insert(cacheEntry("a", guid: 1)) }
            }
            #expect(error?.code == .corrupt)
            #expect(FileManager.default.contents(atPath: path) == junk)
            #expect(directoryNames(directory.path) == ["zpool.cache"])
        }
    }

    @Test func missingDirectoryIsNamed() throws {
        let error = #expect(throws: CacheFileError.self) {
            try CacheFile.update(at: "/nonexistent-zpk/zpool.cache") { cache throws(CacheFileError) in
                try cache.insert(cacheEntry("a", guid: 1))
            }
        }
        #expect(error?.code == .directoryMissing)
        #expect(
            error?.message
                == "cannot write cache file '/nonexistent-zpk/zpool.cache': directory '/nonexistent-zpk' does not exist; create it (mkdir -p /nonexistent-zpk) or choose another file")
        #expect(error?.cause?.systemCall == "open")
    }

    @Test func anEditThatThrowsWritesNothing() throws {
        try withTemporaryDirectory(prefix: "cache-abort") { directory in
            let path = directory.path("zpool.cache")
            try CacheFile(entries: [cacheEntry("a", guid: 1)]).write(to: path)
            let before = FileManager.default.contents(atPath: path)
            #expect(throws: CacheFileError.self) {
                try CacheFile.update(at: path) { cache throws(CacheFileError) in
                    try cache.insert(cacheEntry("b", guid: 2))
                    try cache.remove(.name("nope"))
                }
            }
            #expect(FileManager.default.contents(atPath: path) == before)
            #expect(directoryNames(directory.path) == ["zpool.cache"])
        }
    }

    @Test func staleTemporaryFilesAreRemovedAndOthersKept() throws {
        try withTemporaryDirectory(prefix: "cache-stale") { directory in
            let path = directory.path("zpool.cache")
            for name in [".zpool.cache.zpk-123-abc.tmp", ".other.cache.zpk-1-2.tmp", "zpool.cache.zpk-1.tmp", "unrelated"] {
                #expect(FileManager.default.createFile(atPath: directory.path(name), contents: Data("x".utf8)))
            }
            try CacheFile(entries: [cacheEntry("a", guid: 1)]).write(to: path)
            #expect(directoryNames(directory.path) == [".other.cache.zpk-1-2.tmp", "unrelated", "zpool.cache", "zpool.cache.zpk-1.tmp"])
        }
    }

    @Test func aSymbolicLinkIsFollowed() throws {
        try withTemporaryDirectory(prefix: "cache-link") { directory in
            try FileManager.default.createDirectory(atPath: directory.path("real"), withIntermediateDirectories: false)
            let real = directory.path("real/zpool.cache")
            try CacheFile(entries: [cacheEntry("a", guid: 1)]).write(to: real)
            symlink(real, directory.path("link.cache"))
            try CacheFile.update(at: directory.path("link.cache")) { cache throws(CacheFileError) in
                try cache.insert(cacheEntry("b", guid: 2))
            }
            var info = stat()
            #expect(lstat(directory.path("link.cache"), &info) == 0 && info.st_mode & S_IFMT == S_IFLNK)
            #expect(try CacheFile.read(at: real).entries.map(\.name) == ["a", "b"])
        }
    }

    /// Writers in parallel lose no update: each waits for the directory lock.
    @Test func concurrentWritersLoseNoUpdate() throws {
        try withTemporaryDirectory(prefix: "cache-race") { directory in
            let path = directory.path("zpool.cache")
            let failures = Mutex<[String]>([])
            let group = DispatchGroup()
            for writer in 0..<4 {
                group.enter()
                Thread {
                    for i in 0..<15 {
                        do {
                            try CacheFile.update(at: path) { cache throws(CacheFileError) in
                                try cache.insert(cacheEntry("pool-\(writer)-\(i)", guid: UInt64(writer * 100 + i + 1)))
                            }
                        } catch {
                            failures.withLock { $0.append("\(error)") }
                        }
                    }
                    group.leave()
                }.start()
            }
            group.wait()
            #expect(failures.withLock { $0 }.isEmpty)
            let cache = try CacheFile.read(at: path)
            #expect(cache.entries.count == 60)
            #expect(cache.entries.map(\.name) == cache.entries.map(\.name).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
            #expect(directoryNames(directory.path) == ["zpool.cache"])
        }
    }
}

/// Entries rebuilt from synthetic labels, and a cache file's entries checked against devices.
@Suite(.offTheCooperativePool) struct CacheFileEntryTests {
    /// Two top-level vdevs (a mirror, id 0; a single file, id 2) and a hole at id 1, labels at txg 50.
    static func writePool(in directory: String, txg: UInt64 = 50) throws {
        let mirror = Synthetic.interior(
            type: "mirror", id: 0, guid: 10,
            children: [Synthetic.leaf(id: 0, guid: 11, path: "/old/a"), Synthetic.leaf(id: 1, guid: 12, path: "/old/b")])
        var single = Synthetic.leaf(id: 2, guid: 20, path: "/old/c")
        for (key, value) in [("metaslab_array", 65), ("metaslab_shift", 24), ("ashift", 9), ("asize", 1 << 30), ("is_log", 0)] {
            single.set(key, .uint64(UInt64(value)))
        }
        single.set("create_txg", .uint64(30))
        for (name, leaf, tree) in [("a", 11 as UInt64, mirror), ("b", 12, mirror), ("c", 20, single)] {
            try Synthetic.writeDevice(
                at: "\(directory)/\(name)",
                config: Synthetic.label(txg: txg, vdevChildren: 3, holes: [1], leafGUID: leaf, tree: tree))
        }
    }

    @Test func holesBecomeMOSHoleVdevsAndPathsGoBackAfterGUID() throws {
        try withTemporaryDirectory(prefix: "cache-entry") { directory in
            try Self.writePool(in: directory.path)
            let result = ImportScanner(options: .zdb(searchPaths: [directory.path])).scan()
            let entry = try CacheFile.entry(for: try result.pool(.name("tank")), in: result)
            let config = entry.config
            #expect(
                config.pairs.map(\.name) == [
                    "version", "name", "state", "txg", "pool_guid", "errata", "hostid", "hostname",
                    "com.delphix:has_per_vdev_zaps", "hole_array", "vdev_children", "vdev_tree", "features_for_read",
                ])
            #expect(config.uint64("state") == 0)  // exported in the labels; ACTIVE in a cache file
            #expect(config.uint64("txg") == 50)
            #expect(config.uint64Array("hole_array") == [1])
            let root = try #require(config.list("vdev_tree"))
            #expect(root.pairs.map(\.name) == ["type", "id", "guid", "create_txg", "children"])
            #expect(root.uint64("create_txg") == 4)  // the oldest top-level vdev's
            let children = try #require(root.lists("children"))
            #expect(children.map { $0.string("type") } == ["mirror", "hole", "file"])
            #expect(
                children[1].pairs.map(\.name) == [
                    "type", "id", "guid", "whole_disk", "metaslab_array", "metaslab_shift", "ashift", "asize", "is_log", "is_hole",
                ])
            #expect(children[1].uint64("id") == 1 && children[1].uint64("is_hole") == 1 && children[1].uint64("guid") == 0)
            let leafA = try #require(children[0].lists("children")?.first)
            #expect(leafA.pairs.map(\.name) == ["type", "id", "guid", "path", "create_txg"])
            #expect(leafA.string("path") == directory.path("a"))
            #expect(children[2].string("path") == directory.path("c"))
            #expect(children[2].pairs.map(\.name).prefix(4) == ["type", "id", "guid", "path"])
        }
    }

    @Test func poolsThatCannotOpenFromACacheFileAreRefused() throws {
        try withTemporaryDirectory(prefix: "cache-entry") { directory in
            try Self.writePool(in: directory.path)
            unlink(directory.path("c"))  // top-level vdev id 2 is now on no device
            let result = ImportScanner(options: .zdb(searchPaths: [directory.path])).scan()
            let error = #expect(throws: CacheFileError.self) { try CacheFile.entry(for: try result.pool(.name("tank")), in: result) }
            #expect(error?.code == .poolNotCacheable)
            #expect(error?.message.contains("is missing top-level vdevs 2") == true)
        }
        try withTemporaryDirectory(prefix: "cache-entry") { directory in
            let tree = Synthetic.leaf(id: 0, guid: 11, path: "/x")
            try Synthetic.writeDevice(at: directory.path("a"), config: Synthetic.label(state: .destroyed, leafGUID: 11, tree: tree))
            let result = ImportScanner(options: .zdb(searchPaths: [directory.path])).scan()
            let error = #expect(throws: CacheFileError.self) { try CacheFile.entry(for: try result.pool(.name("tank")), in: result) }
            #expect(error?.code == .poolNotCacheable)
            #expect(error?.message == "pool 'tank' (guid 1000) is destroyed; a cache file lists only pools to open")
        }
    }

    /// A cache entry checked against its devices: found, missing, reused by another pool, newer.
    @Test func cacheEntriesAreCheckedAgainstTheirDevices() throws {
        try withTemporaryDirectory(prefix: "cache-devices") { directory in
            try Self.writePool(in: directory.path)
            let result = ImportScanner(options: .zdb(searchPaths: [directory.path])).scan()
            let entry = try CacheFile.entry(for: try result.pool(.name("tank")), in: result)
            let cachePath = directory.path("zpool.cache")
            try CacheFile(entries: [entry]).write(to: cachePath)

            var candidates = try CacheFile.read(at: cachePath).scanDevices(path: cachePath)
            var tank = try candidates.pool(.name("tank"))
            #expect(tank.notes == [])
            #expect(tank.root.leaves.filter { $0.type != .hole }.allSatisfy { if case .found = $0.presence { true } else { false } })
            #expect(tank.memberDevices.map(\.path) == ["a", "b", "c"].map(directory.path))
            #expect(tank.config.string("cachefile") == cachePath)
            #expect(tank.topLevelVdevs.map(\.guid) == [10, 0, 20].map { VdevGUID($0) })

            // b: now another pool's device; c: gone; a: labels from a later txg.
            try Synthetic.writeDevice(
                at: directory.path("b"),
                config: Synthetic.label(pool: "other", poolGUID: 2000, leafGUID: 99, tree: Synthetic.leaf(id: 0, guid: 99, path: "/y")))
            unlink(directory.path("c"))
            let mirror = Synthetic.interior(
                type: "mirror", id: 0, guid: 10,
                children: [Synthetic.leaf(id: 0, guid: 11, path: "/old/a"), Synthetic.leaf(id: 1, guid: 12, path: "/old/b")])
            try Synthetic.writeDevice(
                at: directory.path("a"), config: Synthetic.label(txg: 60, vdevChildren: 3, holes: [1], leafGUID: 11, tree: mirror))
            candidates = try CacheFile.read(at: cachePath).scanDevices(path: cachePath)
            tank = try candidates.pool(.guid(PoolGUID(1000)))
            #expect(
                tank.notes == [
                    "leaf vdev 12 at \(directory.path("b")): the device carries vdev 99 of pool 'other' (guid 2000); the cache file is stale or the device was reused",
                    "leaf vdev 20 at \(directory.path("c")): nothing is at that path",
                    "the devices' labels are from txg 60, newer than the cache file's txg 50: the cache file is stale; the pool's config may have changed since it was written",
                ])
            #expect(tank.root.leaves.filter { $0.presence == .notFound }.map(\.guid) == [12, 20].map { VdevGUID($0) })
            #expect(candidates.devices.first { $0.path == directory.path("b") }?.note == .filteredOut)
            #expect(CacheFile(entries: [entry]).entries[0].searchDirectories == [directory.path])
        }
    }
}
