// zpool.cache files: the pools a host opens at start, each with its full config.
//
// Purpose. A cache file is ONE packed nvlist, NATIVE-encoded, whose every pair is named after a
// pool and holds that pool's root config — what `spa_config_generate(spa, rvd, …)` builds and
// the MOS keeps (`spec/ondisk.md` §6): `version`, `name`, `state`, `txg`, `pool_guid`, `errata`,
// `comment`?, `compatibility`?, `hostid`?, `hostname`, `com.delphix:has_per_vdev_zaps`,
// `hole_array`?, `vdev_children`, `vdev_tree` (type `root`, id 0, guid = pool guid,
// `create_txg`, `children` = every top-level vdev, holes included) and `features_for_read`.
// `zpool import -c FILE` and the boot-time `zfs-import-cache` service read it
// (`zutil_import.c:zpool_find_import_cached`, `spec/import-and-mmp.md` §1.12); libzpool tools
// (zdb, ztest) preload it and open pools straight from it (§3.7). This file reads and writes
// such files; CacheFile+Entry.swift builds an entry from a scan, CacheFile+Devices.swift turns
// entries back into import candidates.
//
// What it does NOT guarantee.
//   * That an entry is current. A cache file is a snapshot: OpenZFS rewrites it whenever a
//     pool's config changes; ours change only when asked (`zpk cache add/remove`). Readers must
//     check the entry against the devices (CacheFile+Devices.swift does).
//   * An entry byte-identical to OpenZFS's. One built from labels (``CacheFile/entry(for:in:)``)
//     lacks what only the MOS knows: the per-vdev ZAP object numbers
//     (`com.delphix:vdev_zap_top`, `com.delphix:vdev_zap_leaf`) and `com.delphix:resilver_defer`.
//     OpenZFS opens such a pool anyway — it reads the MOS config and trusts that — and writes
//     the full entry the next time it syncs the cache.
//   * Mutual exclusion with writers other than zpk. Our writers take `flock` on the directory;
//     OpenZFS (kernel or libzpool) knows nothing of it and rewrites its files in place.
//
// Mechanism. Reading: the whole file, then `nvlist_unpack`. A zero-length file means "no
// pools" (OpenZFS's Linux kernel truncates instead of unlinking, §6). Both encodings and both
// byte orders are read (OpenZFS refuses a NATIVE file of the other byte order). Pairs that are
// not nvlists are skipped, as `spa_config_load` skips them. Writing (``CacheFile/update(at:fileSystem:_:)``)
// replaces the file atomically and durably, unlike OpenZFS's `O_TRUNC` rewrite in place:
//
//     1. open the directory, flock(LOCK_EX)        other zpk writers wait here
//     2. unlink stale ".NAME.zpk-*.tmp"            left by a writer that died after step 4
//     3. read and decode NAME, apply the edit      (missing NAME = no pools)
//     4. create ".NAME.zpk-PID-RANDOM.tmp"         O_EXCL, mode = NAME's (new file: 0644), owner = NAME's
//     5. write the packed nvlist, fsync, close
//     6. rename(tmp, NAME)                          atomic: readers see old or new, never a mix
//     7. fsync(directory)                           the rename survives a power cut
//     8. close(directory)                           releases the lock
//
// When the edit leaves no pool, step 4–6 become `unlink(NAME)` (OpenZFS removes the file too).
// A symbolic link at NAME is followed (the file it points to is replaced), as OpenZFS's
// `open(O_TRUNC)` would.
//
// Invariants. At every instant NAME is either absent (only if it was before) or a complete
// file, the old one or the new one. The new file's data is durable before the rename is
// issued, so no crash can leave NAME pointing at a file whose data never reached the disk.
// Nothing is ever written to a device, and nothing at all unless a caller asks for an update.
//
// Failure cases (crash = process killed or power cut after the step named):
//   after 1–3   nothing changed.
//   after 4–5   NAME is the old file; a temporary file remains, removed by the next update.
//   after 6     process crash: NAME is the new file. Power cut: the rename may not be on disk
//               yet, so NAME is the old file or the new one — both complete (the new one's
//               data was synced in 5).
//   after 7     NAME is the new file, durably.
//   An error in 4–6 unlinks the temporary file and throws ``CacheFileError`` `.cannotWrite`
//   naming the step; NAME is untouched. An error in 7 throws too: the new file is in place but
//   may not survive a power cut.
//   Compare OpenZFS (`spa_config_write`): open(O_TRUNC) → write → fsync; a crash between the
//   truncate and the fsync leaves an empty or partly written file, and the pools listed in the
//   old one are forgotten.
//
// Tunables: none. A new file gets mode 0644 (OpenZFS's `spa_config_write`), whatever the umask.
//
// Worked numbers. The fixture (one 4-wide raidz1 pool) is 2 512 bytes; a pool of 100 file
// leaves in ten raidz2 vdevs (scan-bench's) packs to 29 332 bytes. One update makes 2 fsyncs
// (file and directory) whatever the size.

import ZFSFormat

/// The contents of a `zpool.cache` file: pool configs keyed by pool name.
///
/// ```swift
/// var cache = try CacheFile.read(at: "/etc/zfs/zpool.cache")
/// for entry in cache.entries {
///     print(entry.name, entry.poolGUID.map(String.init(describing:)) ?? "?")
/// }
/// // Add a pool found on devices, atomically:
/// let result = ImportScanner(options: .init(searchPaths: ["/dev/disk/by-id"])).scan()
/// let entry = try CacheFile.entry(for: try result.pool(.name("tank")), in: result)
/// try CacheFile.update(at: "/etc/zpk/zpool.cache") { cache in try cache.insert(entry) }
/// ```
///
/// The corresponding OpenZFS functions are `spa_write_cachefile`/`spa_config_write` (writing,
/// `module/zfs/spa_config.c`) and `zpool_find_import_cached` (reading, `lib/libzutil/zutil_import.c`).
public struct CacheFile: Hashable, Sendable {
    /// One pool of a cache file.
    public struct Entry: Hashable, Sendable {
        /// The pair's name: the pool's name when it was written.
        public var name: String
        /// The pool's root config.
        public var config: NVList

        public init(name: String, config: NVList) {
            self.name = name
            self.config = config
        }

        /// `pool_guid`.
        public var poolGUID: PoolGUID? { config.uint64("pool_guid").map { PoolGUID($0) } }
        /// `name` inside the config (equal to ``name`` unless the pool was imported under a
        /// temporary name).
        public var poolName: String? { config.string("name") }
        /// `vdev_tree`.
        public var vdevTree: NVList? { config.list("vdev_tree") }

        /// Whether `selector` names this entry (by pool name, or by `pool_guid`).
        public func matches(_ selector: PoolSelector) -> Bool {
            switch selector {
            case .name(let wanted): name == wanted || poolName == wanted
            case .guid(let wanted): poolGUID == wanted
            }
        }
    }

    /// Where OpenZFS keeps its cache file (`ZPOOL_CACHE`).
    public static let openZFSDefaultPath = "/etc/zfs/zpool.cache"
    /// The permissions of a new cache file: 0644, as `spa_config_write` creates it.
    public static let newFilePermissions: UInt32 = 0o644

    /// The pools, in file order.
    public var entries: [Entry]
    /// Names of top-level pairs that are not nvlists: skipped on reading (as `spa_config_load`
    /// skips them) and dropped on writing.
    public var skippedPairs: [String]
    /// How the file was encoded when read; `nil` for an empty or new file.
    public var sourceEncoding: NVList.Encoding?
    /// The writer's byte order recorded in the file's header; `nil` for an empty or new file.
    public var sourceByteOrder: Endianness?

    /// A cache file with these entries.
    public init(entries: [Entry] = []) {
        self.entries = entries
        skippedPairs = []
        sourceEncoding = nil
        sourceByteOrder = nil
    }

    /// Decodes a cache file's bytes.
    ///
    /// An empty input is a file without pools. Either encoding and either byte order is read.
    /// - Parameters:
    ///   - bytes: the whole file.
    ///   - path: the file's name, for error messages.
    /// - Throws: ``CacheFileError`` `.corrupt` when the bytes are not a packed nvlist.
    /// - Complexity: O(*n*) in the file size.
    public init(decoding bytes: some Collection<UInt8>, path: String) throws(CacheFileError) {
        self.init()
        guard !bytes.isEmpty else { return }
        let list: NVList
        do {
            list = try NVList(decoding: bytes, acceptingForeignNative: true)
        } catch {
            throw CacheFileError(
                .corrupt,
                "invalid or corrupt cache file contents in '\(path)': \(error.message); "
                    + "move the file away (zpk cache add recreates it)",
                path: path)
        }
        let header = Array(bytes.prefix(2))
        sourceEncoding = NVList.Encoding(rawValue: header[0])
        sourceByteOrder = sourceEncoding == .xdr ? .big : (header[1] == 1 ? .little : .big)
        for pair in list.pairs {
            if case .nvlist(let config) = pair.value {
                entries.append(Entry(name: pair.name, config: config))
            } else {
                skippedPairs.append(pair.name)
            }
        }
    }

    /// The file's nvlist: one `NVLIST` pair per entry, in order, flag `NV_UNIQUE_NAME`.
    public var nvlist: NVList {
        NVList(flags: .uniqueName, pairs: entries.map { NVPair($0.name, .nvlist($0.config)) })
    }

    /// Packs the entries as OpenZFS writes a cache file: NATIVE encoding, the host's byte order.
    ///
    /// - Parameters:
    ///   - byteOrder: the writer's byte order; OpenZFS always writes its own.
    ///   - path: the file's name, for error messages.
    /// - Throws: ``CacheFileError`` `.invalidEntry` when a config cannot be packed (a string with
    ///   a NUL, nesting deeper than `NVList.maximumNestingDepth`, more than 2 GiB).
    public func encoded(byteOrder: Endianness = .host, path: String = "zpool.cache") throws(CacheFileError) -> [UInt8] {
        do {
            return try nvlist.encoded(as: .native, byteOrder: byteOrder)
        } catch {
            throw CacheFileError(.invalidEntry, "cannot pack the pools of cache file '\(path)': \(error.message)", path: path)
        }
    }

    /// The entry `selector` names, if any (a guid selects by `pool_guid`, a name by pair name
    /// or config `name`).
    public func entry(_ selector: PoolSelector) -> Entry? {
        entries.first { $0.matches(selector) }
    }

    /// Adds a pool, or replaces the entry of the same pool guid.
    ///
    /// An entry of the same `pool_guid` is replaced (even under another name: the pool was
    /// renamed). Otherwise the entry goes where OpenZFS would write it: OpenZFS writes the pools
    /// of a file in the order of its namespace, by name (`strcmp`), so a new entry is inserted
    /// before the first entry whose name sorts after it.
    ///
    /// - Returns: the entry that was replaced, if any.
    /// - Throws: ``CacheFileError`` `.invalidEntry` when the config has no `pool_guid`;
    ///   `.nameInUse` when another pool (another guid) has the same name.
    @discardableResult
    public mutating func insert(_ entry: Entry, path: String = "zpool.cache") throws(CacheFileError) -> Entry? {
        guard let guid = entry.poolGUID else {
            throw CacheFileError(.invalidEntry, "the config of pool '\(entry.name)' has no pool_guid; it cannot go in cache file '\(path)'", path: path)
        }
        if let same = entries.firstIndex(where: { $0.poolGUID == guid }) {
            if let other = entries.first(where: { $0.name == entry.name && $0.poolGUID != guid }) {
                throw Self.nameInUse(entry, other: other, path: path)
            }
            let replaced = entries[same]
            entries[same] = entry
            return replaced
        }
        if let other = entries.first(where: { $0.name == entry.name }) {
            throw Self.nameInUse(entry, other: other, path: path)
        }
        let position = entries.firstIndex { Self.sortsBefore(entry.name, $0.name) } ?? entries.endIndex
        entries.insert(entry, at: position)
        return nil
    }

    /// Removes the entry `selector` names.
    ///
    /// - Returns: the entry removed.
    /// - Throws: ``CacheFileError`` `.noSuchPool`.
    @discardableResult
    public mutating func remove(_ selector: PoolSelector, path: String = "zpool.cache") throws(CacheFileError) -> Entry {
        guard let index = entries.firstIndex(where: { $0.matches(selector) }) else {
            let names = entries.map { "'\($0.name)'" }.joined(separator: ", ")
            throw CacheFileError(
                .noSuchPool,
                "cache file '\(path)' has no pool \(selector)" + (entries.isEmpty ? "; it lists no pools" : "; it lists \(names)"),
                path: path)
        }
        return entries.remove(at: index)
    }

    /// `strcmp` order, as OpenZFS's pool namespace (`spa_name_compare`) sorts names.
    static func sortsBefore(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    private static func nameInUse(_ entry: Entry, other: Entry, path: String) -> CacheFileError {
        CacheFileError(
            .nameInUse,
            "cache file '\(path)' already holds another pool named '\(entry.name)' (guid \(other.poolGUID.map { "\($0)" } ?? "unknown")); "
                + "remove it first (zpk cache remove \(other.poolGUID.map { "\($0)" } ?? entry.name))",
            path: path)
    }
}
