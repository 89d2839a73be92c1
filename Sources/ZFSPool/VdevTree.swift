// The in-core vdev tree of a pool (root → top-level vdevs → leaves) and the config nvlists
// generated from it: the leaf label variant and the MOS / cache-file variant, keys in the order
// OpenZFS 2.1.11 writes them (`spec/ondisk.md` §4.2, §4.3; `spa_config.c:spa_config_generate`,
// `vdev_label.c:vdev_config_generate`). Pure: no I/O.

import ZFSFormat
import ZFSImport

/// One leaf: a file or a block device.
struct LeafVdev: Hashable, Sendable {
    var id: UInt64
    var guid: VdevGUID
    var path: String
    /// `disk` for a block device, `file` for a regular file.
    var isBlockDevice: Bool
    var createTXG: TXG
}

/// One top-level vdev: a single leaf, or a mirror of leaves.
struct TopLevelVdev: Hashable, Sendable {
    var id: UInt64
    var guid: VdevGUID
    var isMirror: Bool
    var leaves: [LeafVdev]
    var ashift: UInt64
    var asize: UInt64
    var metaslabShift: UInt64
    var createTXG: TXG

    /// The bytes the allocator may hand out: `asize` rounded down to the allocation unit.
    var allocatableByteCount: UInt64 { asize & ~((1 << ashift) - 1) }

    /// `vdev_metaslab_set_size`-like choice (cosmetic here: we keep no metaslabs): about 200
    /// metaslabs, at least 16 MiB each.
    static func metaslabShift(asize: UInt64) -> UInt64 {
        let target = max(asize / 200, 1)
        return max(24, UInt64(63 - target.leadingZeroBitCount))
    }
}

/// The whole tree. The root's guid is the pool guid.
struct VdevTree: Hashable, Sendable {
    var topLevels: [TopLevelVdev]

    var leaves: [LeafVdev] { topLevels.flatMap(\.leaves) }

    /// The tree in ZFSImport's vdev model, the one every guid sum and every parsed `vdev_tree`
    /// goes through: the root config read back as a `VdevNode`.
    func node(poolGUID: PoolGUID) -> VdevNode {
        VdevNode(config: rootConfig(poolGUID: poolGUID))
    }

    /// `ub_guid_sum` (`vdev_guid_sum`): `VdevNode.guidSum` of the root — root
    /// (= pool guid) + every top-level and leaf guid, mod 2^64, the sum a scan checks.
    func guidSum(poolGUID: PoolGUID) -> UInt64 {
        node(poolGUID: poolGUID).guidSum
    }

    func topLevel(containing guid: VdevGUID) -> TopLevelVdev? {
        topLevels.first { top in top.leaves.contains { $0.guid == guid } }
    }

    // MARK: Config generation

    /// `id` is the leaf's place among its siblings: its mirror child index, or the top-level id
    /// for a single-leaf top-level vdev (which is its own top-level).
    private static func leafPairs(_ leaf: LeafVdev, id: UInt64, into list: inout NVList) {
        list.append("type", .string(leaf.isBlockDevice ? "disk" : "file"))
        list.append("id", .uint64(id))
        list.append("guid", .uint64(leaf.guid.rawValue))
        list.append("path", .string(leaf.path))
        list.append("whole_disk", .uint64(0))
    }

    private static func topPairs(_ top: TopLevelVdev, into list: inout NVList) {
        list.append("metaslab_array", .uint64(0))
        list.append("metaslab_shift", .uint64(top.metaslabShift))
        list.append("ashift", .uint64(top.ashift))
        list.append("asize", .uint64(top.asize))
        list.append("is_log", .uint64(0))
        list.append("create_txg", .uint64(top.createTXG.rawValue))
    }

    /// The `vdev_tree` of one top-level vdev (what a leaf label carries).
    static func topLevelConfig(_ top: TopLevelVdev) -> NVList {
        var list = NVList()
        if top.isMirror {
            list.append("type", .string("mirror"))
            list.append("id", .uint64(top.id))
            list.append("guid", .uint64(top.guid.rawValue))
            topPairs(top, into: &list)
            let children = top.leaves.map { leaf -> NVList in
                var child = NVList()
                leafPairs(leaf, id: leaf.id, into: &child)
                child.append("create_txg", .uint64(leaf.createTXG.rawValue))
                return child
            }
            list.append("children", .nvlistArray(children))
        } else {
            leafPairs(top.leaves[0], id: top.id, into: &list)
            topPairs(top, into: &list)
        }
        return list
    }

    /// The root `vdev_tree` (MOS and cache-file config).
    func rootConfig(poolGUID: PoolGUID) -> NVList {
        var root = NVList()
        root.append("type", .string("root"))
        root.append("id", .uint64(0))
        root.append("guid", .uint64(poolGUID.rawValue))
        root.append("create_txg", .uint64(PoolIdentity.initialTXG.rawValue))
        root.append("children", .nvlistArray(topLevels.map(Self.topLevelConfig)))
        return root
    }

    // MARK: Parsing

    /// Parses a root `vdev_tree` (from the MOS, a cache file or a scan) through ZFSImport's
    /// `VdevNode` model, keeping the shapes ZFSPool writes (single leaves and mirrors).
    static func parse(root: NVList) throws(PoolError) -> VdevTree {
        let node = VdevNode(config: root)
        guard node.type == .root, !node.children.isEmpty else {
            throw PoolError(.invalidConfig, "the config's vdev_tree is not a root vdev with children")
        }
        var tops: [TopLevelVdev] = []
        for (index, child) in node.children.enumerated() {
            // An import scan puts a `missing` (or `hole`) placeholder where no device described a
            // top-level vdev; the MOS config will say what it is, so skip it here.
            if child.type.isPlaceholder { continue }
            tops.append(try parseTopLevel(child, index: UInt64(index)))
        }
        var seen = Set<UInt64>()
        for top in tops where !seen.insert(top.id).inserted {
            throw PoolError(
                .invalidConfig, "the config's vdev_tree has two top-level vdevs with id \(top.id); it is damaged")
        }
        guard !tops.isEmpty else {
            throw PoolError(.invalidConfig, "the config's vdev_tree has no top-level vdev that is not a placeholder")
        }
        return VdevTree(topLevels: tops)
    }

    private static func parseLeaf(_ node: VdevNode, index: UInt64) throws(PoolError) -> LeafVdev {
        guard node.type == .file || node.type == .disk, node.config.uint64("guid") != nil, let path = node.path else {
            throw PoolError(
                .invalidConfig, "leaf \(index) of the config's vdev_tree is not a file or disk with a guid and a path")
        }
        return LeafVdev(
            id: node.id ?? index, guid: node.guid, path: path, isBlockDevice: node.type == .disk,
            createTXG: TXG(node.config.uint64("create_txg") ?? 0))
    }

    static func parseTopLevel(_ node: VdevNode, index: UInt64) throws(PoolError) -> TopLevelVdev {
        let own = node.config
        guard own.uint64("guid") != nil, let ashift = own.uint64("ashift"), let asize = own.uint64("asize") else {
            throw PoolError(.invalidConfig, "top-level vdev \(index) of the config lacks guid, ashift or asize")
        }
        let id = node.id ?? index
        let isMirror = node.type == .mirror
        var leaves: [LeafVdev] = []
        if isMirror {
            for (childIndex, child) in node.children.enumerated() {
                leaves.append(try parseLeaf(child, index: UInt64(childIndex)))
            }
            guard !leaves.isEmpty else {
                throw PoolError(.invalidConfig, "mirror \(id) of the config has no children")
            }
        } else {
            leaves = [try parseLeaf(node, index: 0)]
        }
        return TopLevelVdev(
            id: id, guid: node.guid, isMirror: isMirror, leaves: leaves, ashift: ashift, asize: asize,
            metaslabShift: own.uint64("metaslab_shift") ?? TopLevelVdev.metaslabShift(asize: asize),
            createTXG: TXG(own.uint64("create_txg") ?? 0))
    }
}

/// What names a pool and its last owner: the fields both config variants share.
struct PoolIdentity: Hashable, Sendable {
    /// `TXG_INITIAL`: the first txg a new pool syncs.
    static let initialTXG = TXG(4)
    /// The feature our MOS needs (`features_for_read`): real OpenZFS refuses the pool for it.
    static let mosFeature = "org.zpoolkit:mos"
    /// `SPA_VERSION_5000`.
    static let version: UInt64 = 5000

    var name: String
    var guid: PoolGUID
    var state: PoolState
    var hostID: UInt64
    var hostname: String

    private func headPairs(txg: TXG, into list: inout NVList) {
        list.append("version", .uint64(Self.version))
        list.append("name", .string(name))
        list.append("state", .uint64(state.rawValue))
        list.append("txg", .uint64(txg.rawValue))
        list.append("pool_guid", .uint64(guid.rawValue))
        list.append("errata", .uint64(0))
        if hostID != 0 { list.append("hostid", .uint64(hostID)) }
        list.append("hostname", .string(hostname))
    }

    static var featuresForRead: NVList {
        var features = NVList()
        features.append(mosFeature, .boolean)
        return features
    }

    /// The label config of `leaf` (`spec/ondisk.md` §4.2 order).
    func labelConfig(leaf: LeafVdev, top: TopLevelVdev, tree: VdevTree, txg: TXG, createTXG: TXG? = nil) -> NVList {
        var list = NVList()
        headPairs(txg: txg, into: &list)
        list.append("top_guid", .uint64(top.guid.rawValue))
        list.append("guid", .uint64(leaf.guid.rawValue))
        list.append("vdev_children", .uint64(UInt64(tree.topLevels.count)))
        list.append("vdev_tree", .nvlist(VdevTree.topLevelConfig(top)))
        list.append("features_for_read", .nvlist(Self.featuresForRead))
        if let createTXG { list.append("create_txg", .uint64(createTXG.rawValue)) }
        return Self.withNeighbors(list, tree: tree, ownTopLevel: top)
    }

    /// `config` plus the `org.zpoolkit:neighbors` list (`ZFSImport.NeighborRecord`): every other
    /// top-level vdev of `tree` with its leaves, so that an import scan can name the leaves of a
    /// top-level vdev whose devices are all missing. Records are dropped, farthest top-level id
    /// first, until the packed config fits the label (`VdevLabel.configCapacity`).
    static func withNeighbors(_ config: NVList, tree: VdevTree, ownTopLevel: TopLevelVdev) -> NVList {
        guard tree.topLevels.count > 1 else { return config }
        var records = tree.topLevels.filter { $0.guid != ownTopLevel.guid }.map { top in
            NeighborRecord(
                topLevelID: top.id, guid: top.guid,
                type: top.isMirror ? .mirror : (top.leaves[0].isBlockDevice ? .disk : .file),
                leaves: top.leaves.map { NeighborRecord.Leaf(guid: $0.guid, path: $0.path) })
        }
        // Farthest first when trimming: sort by distance from our own id, nearest first.
        records.sort {
            let a = $0.topLevelID > ownTopLevel.id ? $0.topLevelID - ownTopLevel.id : ownTopLevel.id - $0.topLevelID
            let b = $1.topLevelID > ownTopLevel.id ? $1.topLevelID - ownTopLevel.id : ownTopLevel.id - $1.topLevelID
            return (a, $0.topLevelID) < (b, $1.topLevelID)
        }
        while true {
            var list = config
            list.append(NeighborRecord.labelKey, .nvlistArray(records.sorted { $0.topLevelID < $1.topLevelID }.map { $0.encoded() }))
            if let packed = try? list.encoded(as: .xdr), packed.count <= VdevLabel.configCapacity { return list }
            if records.isEmpty { return config }
            records.removeLast()
        }
    }

    /// The MOS / cache-file config (root `vdev_tree`).
    func poolConfig(tree: VdevTree, txg: TXG) -> NVList {
        var list = NVList()
        headPairs(txg: txg, into: &list)
        list.append("vdev_children", .uint64(UInt64(tree.topLevels.count)))
        list.append("vdev_tree", .nvlist(tree.rootConfig(poolGUID: guid)))
        list.append("features_for_read", .nvlist(Self.featuresForRead))
        return list
    }
}
