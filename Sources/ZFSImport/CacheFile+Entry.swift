// Building a cache-file entry from a pool found on devices: the root config OpenZFS would
// store for it (`spa_config_generate(spa, rvd, …)`, `vdev_config_generate` with
// VDEV_CONFIG_MOS; `spec/ondisk.md` §6), reconstructed from labels.
//
// What the labels give: the pool keys, every top-level vdev's config (the newest label of
// each), `hole_array` and `vdev_children` — so the entry is OpenZFS's, key order included,
// except for what only the MOS holds: `com.delphix:vdev_zap_top`/`com.delphix:vdev_zap_leaf`
// (object numbers of per-vdev ZAPs) and `com.delphix:resilver_defer`. The interop tests compare
// our entry with the one OpenZFS wrote for the same pool minus exactly those keys.
//
// Choices, each what OpenZFS would store once it had imported the pool on this host:
//   * `state` is 0 (ACTIVE): a cache file lists imported pools.
//   * `txg` is the newest label txg (the config txg; the fixture's cache and labels agree).
//   * `hostid`/`hostname` are those of the newest label (the last writer), not this host's:
//     zpk has not imported the pool; OpenZFS rewrites them when it does.
//   * holes become real hole vdevs (`type: 'hole'`, `is_hole: 1`, zeros for the top-level
//     keys), as the MOS config has them, not libzutil's `{type, id, guid}` placeholders.
//   * leaf `path` (and `devid`, `phys_path`, `vdev_enc_sysfs_path`) are where the scan found
//     the device, in `vdev_config_generate`'s key position (right after `guid`).

import ZFSFormat

extension CacheFile {
    /// The leaf keys `vdev_config_generate` writes right after `guid`, in its order.
    static let leafNameKeys = ["path", "devid", "phys_path", "vdev_enc_sysfs_path", "fru"]

    /// The entry OpenZFS would write to a cache file for `candidate`, rebuilt from its labels.
    ///
    /// - Parameters:
    ///   - candidate: a pool from `result`.
    ///   - result: the scan that found it; its devices' labels supply the keys the assembled
    ///     import config leaves out (`errata`, `features_for_read`, `hostname`).
    /// - Returns: the entry, named after the pool.
    /// - Throws: ``CacheFileError`` `.poolNotCacheable` for a destroyed pool, a pool of an
    ///   unsupported version, or one with top-level vdevs that no device describes (OpenZFS
    ///   could not open it from the cache file); `.invalidEntry` when the config lacks a name
    ///   or a `vdev_tree`.
    public static func entry(for candidate: PoolCandidate, in result: ScanResult) throws(CacheFileError) -> Entry {
        let path = "zpool.cache"
        guard !candidate.isDestroyed else {
            throw CacheFileError(.poolNotCacheable, "pool '\(candidate.name)' (guid \(candidate.guid)) is destroyed; a cache file lists only pools to open", path: path)
        }
        guard candidate.isVersionSupported else {
            throw CacheFileError(
                .poolNotCacheable,
                "pool '\(candidate.name)' (guid \(candidate.guid)) has on-disk version \(candidate.version), which this software does not support (1–28 and 5000 are)",
                path: path)
        }
        if !candidate.missingTopLevelIDs.isEmpty {
            throw CacheFileError(
                .poolNotCacheable,
                "pool '\(candidate.name)' (guid \(candidate.guid)) is missing top-level vdevs \(candidate.missingTopLevelIDs.map(String.init).joined(separator: ", ")): no scanned device describes them; add the directories that hold them with -d",
                path: path)
        }
        let assembled = candidate.config
        guard let name = assembled.string("name"), let tree = assembled.list("vdev_tree") else {
            throw CacheFileError(.invalidEntry, "the config of pool \(candidate.guid) has no name or no vdev_tree", path: path)
        }
        let label = newestLabel(of: candidate, in: result) ?? assembled

        var config = NVList()
        config.set("version", .uint64(candidate.version))
        config.set("name", .string(name))
        config.set("state", .uint64(PoolState.active.rawValue))
        config.set("txg", .uint64(candidate.txg.rawValue))
        config.set("pool_guid", .uint64(candidate.guid.rawValue))
        config.set("errata", .uint64(label.uint64("errata") ?? 0))
        for key in ["comment", "compatibility"] {
            if let value = label[key] ?? assembled[key] { config.set(key, value) }
        }
        if let hostID = label.uint64("hostid") ?? candidate.hostID, hostID != 0 {
            config.set("hostid", .uint64(hostID))
        }
        if let hostname = label.string("hostname") ?? candidate.hostname {
            config.set("hostname", .string(hostname))
        }
        config.set("com.delphix:has_per_vdev_zaps", .boolean)
        let children = tree.lists("children") ?? []
        if let holes = assembled.uint64Array("hole_array") {
            config.set("hole_array", .uint64Array(holes))
        }
        config.set("vdev_children", .uint64(assembled.uint64("vdev_children") ?? UInt64(children.count)))
        config.set("vdev_tree", .nvlist(rootVdev(guid: candidate.guid, children: children)))
        config.set("features_for_read", .nvlist(label.list("features_for_read") ?? NVList()))
        return Entry(name: name, config: config)
    }

    /// The label config of the pool's newest txg that the scan read.
    static func newestLabel(of candidate: PoolCandidate, in result: ScanResult) -> NVList? {
        for device in result.devices {
            guard case .poolMember(let pool, _, _, let txg) = device.role, pool == candidate.guid, txg == candidate.txg,
                let config = device.probe?.config
            else { continue }
            return config
        }
        return nil
    }

    /// The root vdev as `vdev_config_generate` writes it for the MOS.
    static func rootVdev(guid: PoolGUID, children: [NVList]) -> NVList {
        var root = NVList()
        root.set("type", .string(VdevType.root.rawValue))
        root.set("id", .uint64(0))
        root.set("guid", .uint64(guid.rawValue))
        // The root is created with the pool, in the txg of its first top-level vdev (id 0; top-level
        // vdevs are never replaced, and a removed one keeps its create_txg as an indirect vdev).
        let created = children.compactMap { $0.string("type") == VdevType.hole.rawValue ? nil : $0.uint64("create_txg") }.min()
        if let created { root.set("create_txg", .uint64(created)) }
        root.set("children", .nvlistArray(children.map(topLevelVdev)))
        return root
    }

    static func topLevelVdev(_ vdev: NVList) -> NVList {
        guard vdev.string("type") == VdevType.hole.rawValue else { return withCanonicalLeafKeys(vdev) }
        // `vdev_config_generate` on a hole: a leaf that is its own top-level vdev.
        var hole = NVList()
        hole.set("type", .string(VdevType.hole.rawValue))
        hole.set("id", .uint64(vdev.uint64("id") ?? 0))
        hole.set("guid", .uint64(0))
        hole.set("whole_disk", .uint64(0))
        for key in ["metaslab_array", "metaslab_shift", "ashift", "asize", "is_log"] {
            hole.set(key, .uint64(0))
        }
        hole.set("is_hole", .uint64(1))
        return hole
    }

    /// Moves the leaf name keys (which path refresh re-adds at the end) back after `guid`.
    static func withCanonicalLeafKeys(_ vdev: NVList) -> NVList {
        var result = vdev
        if let children = vdev.lists("children"), let index = result.pairs.lastIndex(where: { $0.name == "children" }) {
            result.pairs[index].value = .nvlistArray(children.map(withCanonicalLeafKeys))
            return result
        }
        let names = leafNameKeys.compactMap { key in vdev.pairs.last { $0.name == key } }
        guard !names.isEmpty, let guidIndex = vdev.pairs.firstIndex(where: { $0.name == "guid" }) else { return result }
        var pairs = vdev.pairs
        pairs.removeAll { leafNameKeys.contains($0.name) }
        let insertAt = pairs.firstIndex(where: { $0.name == "guid" }).map { $0 + 1 } ?? guidIndex + 1
        pairs.insert(contentsOf: names, at: insertAt)
        result.pairs = pairs
        return result
    }
}
