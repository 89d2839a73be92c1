// The MOS half of a health assessment: the tree the kernel's trusted pass opens.
//
// `spa_ld_trusted_config` (OpenZFS 2.1.11, `module/zfs/spa.c`) reads the config stored in the
// MOS, builds a new vdev tree from its `vdev_tree`, and copies into it the leaf paths of the
// tree it was given (the scan's or the cache file's: "vdev paths in the MOS may be obsolete"),
// first by `vdev_copy_path_strict` (same shape), else by `vdev_copy_path_relaxed` (by guid).
// That tree replaces the given one: it is opened and validated, its guid sum checked against the
// uberblock, its missing logs reported, and it is the tree `zpool import` prints. So a top-level
// vdev that no scanned device describes is shown as the MOS records it (its type, its leaves at
// the paths the MOS remembers), and a cache-file entry written before vdevs were added is
// completed by the MOS.
//
// We copy by guid alone: for a leaf present in both trees, the given tree's path wins. Where the
// shapes agree that is what the strict copy does; where they differ it is the relaxed copy's
// result for every leaf whose top-level vdev the given tree also has.

import ZFSFormat

extension PoolHealth {
    /// Whether the load got past the uberblock, version and features to the point where the
    /// kernel opens the MOS (`spa_ld_open_rootbp`).
    public var reachedMOS: Bool {
        [.trustedConfig, .afterTrust, .complete].contains(stage) && uberblock != nil
    }

    /// The MOS's vdev tree with the given tree's leaf paths (and presence) copied in by guid.
    static func mosTree(_ vdevTree: NVList, labelTree: VdevNode) -> VdevNode {
        var known: [VdevGUID: VdevNode] = [:]
        for leaf in labelTree.leaves where leaf.path != nil {
            known[leaf.guid] = leaf
        }
        var presence: [VdevGUID: VdevNode.Presence] = [:]
        for (guid, leaf) in known { presence[guid] = leaf.presence }
        var root = VdevNode(config: vdevTree, presence: presence)
        func copyPaths(_ node: inout VdevNode) {
            for i in node.children.indices { copyPaths(&node.children[i]) }
            guard node.isLeaf, let given = known[node.guid], let path = given.path else { return }
            node.path = path
            node.config.set("path", .string(path))
        }
        copyPaths(&root)
        return root
    }

    /// The leaf paths of the MOS tree (paths copied from `labelTree` as ``mosTree(_:labelTree:)``
    /// copies them), for reading before the trusted pass.
    public static func devicePaths(ofMOSTree vdevTree: NVList, labelTree: VdevNode) -> [String] {
        var seen = Set<String>()
        var paths: [String] = []
        for leaf in mosTree(vdevTree, labelTree: labelTree).leaves where leaf.type != .draidSpare && !leaf.type.isPlaceholder {
            if let path = leaf.path, path.hasPrefix("/"), seen.insert(path).inserted { paths.append(path) }
        }
        return paths
    }
}

extension MOSConfig.MissingTopLevel: CustomStringConvertible {
    /// "mirror of /tmp/b.img, /tmp/c.img, guid 123" (the paths the MOS recorded), as a neighbor
    /// record names its vdev.
    public var description: String {
        let kind = paths.count == 1 && (type == "file" || type == "disk") ? paths[0] : "\(type) of \(paths.joined(separator: ", "))"
        return "\(isLog ? "log " : "")\(kind), guid \(guid)"
    }
}
