// Grouping labels into pools and assembling each pool's config: libzutil's `add_config`,
// `get_configs` and `fix_paths` (`lib/libzutil/zutil_import.c`, 2.1.11), reproduced step for
// step. Pure: no I/O except through the injected ``DeviceIdentityResolver``.
//
// Mechanism (`spec/import-and-mmp.md` §1.6–§1.9):
//
//   1. `add`: an aux label (state 3/4) only adds a name entry {path, guid, order, num_labels}.
//      A pool label needs `pool_guid`, `guid`, `top_guid` and `txg` ≠ 0, else it is ignored.
//      It goes into pool (by pool guid) → top-level (by top guid) → one config per distinct
//      txg (first seen wins), and adds a name entry. Every list is newest-first, as libzutil
//      prepends.
//   2. `assemble`, per pool (newest-first): the best config of each top-level is its highest
//      txg; whenever a top-level's best beats the pool's running maximum, `vdev_children` and
//      `hole_array` are replaced by that config's (removed and re-added, so they move to the
//      end of the key order). The first top-level visited supplies `version`, `pool_guid`,
//      `name`, `comment`, `compatibility`, `state` and — only if `hostid` exists — `hostid` and
//      `hostname`. Each best `vdev_tree` goes to index `id`; with `vdev_children` known the array
//      is cut or extended to it; empty slots in `hole_array` become `hole`, the rest `missing`
//      (`guid` 0; never compacted, the kernel needs `id` = position). The root is
//      {type root, id 0, guid pool guid, children}.
//   3. `fixPaths`: each leaf (anything without `children`, placeholders included) takes the
//      path of the name entry with its guid — the entry equal to its current path wins at
//      once; else more labels, then lower order; with no current path the first entry wins.
//      Setting the path re-adds it (it moves to the end of the leaf's keys) and refreshes the
//      disk's device-id strings (`update_vdev_config_dev_strs`).
//
// Invariants: the output depends only on the sequence of `add` calls; `add` in libzutil's
// processing order (``CandidateOrder``) reproduces libzutil's key order, pool order and ties.
//
// Deviations, on purpose: where libzutil would crash (`verify`/`fnvlist_lookup` on a label
// missing `version`, `name`, `state`, `vdev_tree` or its `id`), we skip the key or the
// top-level vdev and say so in the pool's notes.

import ZFSFormat

/// Groups probed labels by pool and assembles each pool's import config.
public struct PoolAssembler: Sendable {
    /// A guid → path mapping learned from a device's label (`name_entry_t`).
    public struct NameEntry: Hashable, Sendable {
        public var path: String
        public var guid: VdevGUID
        public var searchOrder: Int
        public var labelCount: Int
    }

    private struct ConfigEntry: Sendable {
        var txg: UInt64
        var config: NVList
    }

    private struct TopLevelEntry: Sendable {
        var guid: UInt64
        /// Oldest first; iterate reversed for libzutil's newest-first list.
        var configs: [ConfigEntry] = []
        var devicePaths: [String] = []
    }

    private struct PoolEntry: Sendable {
        var guid: UInt64
        /// Oldest first.
        var topLevels: [TopLevelEntry] = []
        var members: [PoolCandidate.MemberDevice] = []
    }

    /// Oldest first.
    private var pools: [PoolEntry] = []
    /// Oldest first (libzutil's list is newest-first; we iterate reversed).
    public private(set) var names: [NameEntry] = []

    public init() {}

    /// Adds one device's label config (`add_config`).
    ///
    /// - Parameters:
    ///   - config: the device's first accepted label (``LabelProbe/config``).
    ///   - path: the device's path as scanned.
    ///   - searchOrder: its order (10 + search-path index).
    ///   - labelCount: ``LabelProbe/labelCount``.
    /// - Returns: what the device contributed, or the note saying why nothing.
    @discardableResult
    public mutating func add(
        _ config: NVList, path: String, searchOrder: Int, labelCount: Int
    ) -> (role: ScannedDevice.Role, note: ScannedDevice.Note?) {
        if let rawState = config.uint64("state"), PoolState(rawValue: rawState).isAuxiliary,
            let guid = config.uint64("guid")
        {
            names.append(NameEntry(path: path, guid: VdevGUID(guid), searchOrder: searchOrder, labelCount: labelCount))
            let role: ScannedDevice.Role =
                PoolState(rawValue: rawState) == .spare ? .spare(VdevGUID(guid)) : .l2cache(VdevGUID(guid))
            return (role, nil)
        }
        let poolGUID = config.uint64("pool_guid")
        let vdevGUID = config.uint64("guid")
        let topGUID = config.uint64("top_guid")
        let txg = config.uint64("txg")
        guard let poolGUID, let vdevGUID, let topGUID, let txg, txg != 0 else {
            var missing: [String] = []
            if poolGUID == nil { missing.append("pool_guid") }
            if vdevGUID == nil { missing.append("guid") }
            if topGUID == nil { missing.append("top_guid") }
            if txg == nil || txg == 0 { missing.append("txg") }
            return (.none, .incompleteLabel(missing: missing))
        }
        let p: Int
        if let found = pools.firstIndex(where: { $0.guid == poolGUID }) {
            p = found
        } else {
            pools.append(PoolEntry(guid: poolGUID))
            p = pools.count - 1
        }
        let t: Int
        if let found = pools[p].topLevels.firstIndex(where: { $0.guid == topGUID }) {
            t = found
        } else {
            pools[p].topLevels.append(TopLevelEntry(guid: topGUID))
            t = pools[p].topLevels.count - 1
        }
        if !pools[p].topLevels[t].configs.contains(where: { $0.txg == txg }) {
            pools[p].topLevels[t].configs.append(ConfigEntry(txg: txg, config: config))
        }
        pools[p].topLevels[t].devicePaths.append(path)
        pools[p].members.append(
            PoolCandidate.MemberDevice(
                path: path, guid: VdevGUID(vdevGUID), topLevelGUID: VdevGUID(topGUID), txg: TXG(txg),
                labelCount: labelCount, searchOrder: searchOrder))
        names.append(NameEntry(path: path, guid: VdevGUID(vdevGUID), searchOrder: searchOrder, labelCount: labelCount))
        return (.poolMember(pool: PoolGUID(poolGUID), topLevel: VdevGUID(topGUID), vdev: VdevGUID(vdevGUID), txg: TXG(txg)), nil)
    }

    /// Assembles every pool's config (`get_configs` up to, not including, the kernel refresh).
    ///
    /// - Parameter identity: recomputes a disk leaf's `devid`/`phys_path` after its path is
    ///   refreshed; ``NoDeviceIdentity`` leaves them alone.
    /// - Returns: the pools in libzutil's order (the reverse of first discovery).
    public func assemble(identity: any DeviceIdentityResolver = NoDeviceIdentity()) -> [PoolCandidate] {
        pools.reversed().map { assemble($0, identity: identity) }
    }

    private func assemble(_ pool: PoolEntry, identity: any DeviceIdentityResolver) -> PoolCandidate {
        var config = NVList()
        var notes: [String] = []
        var maxTXG: UInt64 = 0
        var holes: [UInt64] = []
        var vdevChildren: UInt64?
        var configSeen = false
        var hostID: UInt64?
        var children: [NVList?] = []
        var childSource: [UInt64: UInt64] = [:]  // id → top guid that filled it
        var topLevels: [PoolCandidate.TopLevelVdev] = []

        for top in pool.topLevels.reversed() {
            // Newest-first; strictly greater keeps the first of equal txgs (they are distinct anyway).
            var best: ConfigEntry?
            for entry in top.configs.reversed() where entry.txg > (best?.txg ?? 0) {
                best = entry
            }
            guard let best else { continue }
            let bestConfig = best.config

            if best.txg > maxTXG {
                config.pairs.removeAll { $0.name == "vdev_children" && $0.value.dataType == .uint64 }
                config.pairs.removeAll { $0.name == "hole_array" && $0.value.dataType == .uint64Array }
                maxTXG = best.txg
                holes = []
                vdevChildren = nil
                if let count = bestConfig.uint64("vdev_children") {
                    config.set("vdev_children", .uint64(count))
                    vdevChildren = count
                }
                if let array = bestConfig.uint64Array("hole_array") {
                    config.set("hole_array", .uint64Array(array))
                    holes = array
                }
            }

            if !configSeen {
                for key in ["version", "pool_guid", "name", "comment", "compatibility", "state"] {
                    guard let value = bestConfig[key] else {
                        if key != "comment" && key != "compatibility" {
                            notes.append("the label of top-level vdev \(top.guid) has no '\(key)'; libzutil would abort here")
                        }
                        continue
                    }
                    config.set(key, value)
                }
                if let id = bestConfig.uint64("hostid") {
                    hostID = id
                    config.set("hostid", .uint64(id))
                    if let name = bestConfig["hostname"] {
                        config.set("hostname", name)
                    }
                }
                configSeen = true
            }

            let tree = bestConfig.list("vdev_tree")
            let id = tree?.uint64("id")
            topLevels.append(
                PoolCandidate.TopLevelVdev(
                    guid: VdevGUID(top.guid), id: id, bestTXG: TXG(best.txg),
                    txgs: top.configs.reversed().map { TXG($0.txg) }, devicePaths: top.devicePaths))
            guard let tree, let id else {
                notes.append("the label of top-level vdev \(top.guid) has no vdev_tree id; it is left out")
                continue
            }
            guard id < UInt64(Int32.max) else {
                notes.append("top-level vdev \(top.guid) claims id \(id), which cannot be a real position; it is left out")
                continue
            }
            if Int(id) >= children.count {
                children += Array(repeating: nil, count: Int(id) + 1 - children.count)
            }
            if let previous = childSource[id] {
                notes.append("top-level vdevs \(previous) and \(top.guid) both claim id \(id); \(top.guid) is kept, as libzutil does")
            }
            children[Int(id)] = tree
            childSource[id] = top.guid
        }

        if let vdevChildren, vdevChildren < UInt64(Int32.max) {
            let count = Int(vdevChildren)
            if count < children.count {
                for (id, guid) in childSource where id >= vdevChildren {
                    notes.append("top-level vdev \(guid) has id \(id), beyond the \(vdevChildren) top-level vdevs the newest label counts; it is dropped")
                }
                children.removeLast(children.count - count)
            } else if count > children.count {
                children += Array(repeating: nil, count: count - children.count)
            }
        }
        for c in children.indices where children[c] == nil && holes.contains(UInt64(c)) {
            children[c] = Self.placeholder(.hole, id: UInt64(c))
        }
        for c in children.indices where children[c] == nil {
            children[c] = Self.placeholder(.missing, id: UInt64(c))
            notes.append("no device with a label of top-level vdev id \(c) was found; it is shown as 'missing'")
        }

        let poolGUID = config.uint64("pool_guid") ?? pool.guid
        var root = NVList()
        root.set("type", .string(VdevType.root.rawValue))
        root.set("id", .uint64(0))
        root.set("guid", .uint64(poolGUID))
        root.set("children", .nvlistArray(children.map { $0! }))
        var presence: [VdevGUID: VdevNode.Presence] = [:]
        fixPaths(&root, identity: identity, presence: &presence)
        config.set("vdev_tree", .nvlist(root))

        let rootNode = VdevNode(config: root, presence: presence)
        for leaf in rootNode.leaves where leaf.presence == .notFound {
            notes.append("leaf vdev \(leaf.guid) (last seen at \(leaf.path ?? "no path")) is on no scanned device")
        }
        for top in topLevels where top.bestTXG.rawValue < maxTXG {
            notes.append("the newest label of top-level vdev \(top.guid) is from txg \(top.bestTXG), older than the pool's newest, \(maxTXG)")
        }
        if vdevChildren == nil {
            notes.append("the newest label has no vdev_children (pool version < 19?): top-level vdevs missing from every scanned device cannot be detected")
        }
        let version = config.uint64("version") ?? SPAVersion.initial
        if !SPAVersion.isSupported(version) {
            notes.append("the pool's on-disk version \(version) is not supported by this software (1–28 and 5000 are); the labels are not corrupt")
        }
        return PoolCandidate(
            name: config.string("name") ?? "",
            guid: PoolGUID(poolGUID),
            version: version,
            state: PoolState(rawValue: config.uint64("state") ?? 0),
            txg: TXG(maxTXG),
            hostID: hostID,
            hostname: hostID != nil ? config.string("hostname") : nil,
            comment: config.string("comment"),
            config: config,
            root: rootNode,
            topLevelVdevs: topLevels,
            memberDevices: pool.members.reversed(),
            notes: notes)
    }

    private static func placeholder(_ type: VdevType, id: UInt64) -> NVList {
        var list = NVList()
        list.set("type", .string(type.rawValue))
        list.set("id", .uint64(id))
        list.set("guid", .uint64(0))
        return list
    }

    /// `fix_paths`: refreshes every leaf's path (and a disk's device ids) from the name entries.
    func fixPaths(
        _ vdev: inout NVList, identity: any DeviceIdentityResolver, presence: inout [VdevGUID: VdevNode.Presence]
    ) {
        if var children = vdev.lists("children") {
            for i in children.indices {
                fixPaths(&children[i], identity: identity, presence: &presence)
            }
            // Replace the value in place: libzutil edits the children where they are, so the
            // key keeps its position.
            if let index = vdev.pairs.lastIndex(where: { $0.name == "children" }) {
                vdev.pairs[index].value = .nvlistArray(children)
            }
            return
        }
        guard let guid = vdev.uint64("guid") else { return }
        guard let best = bestName(for: guid, currentPath: vdev.string("path")) else { return }
        presence[VdevGUID(guid)] = .found(path: best.path, labelCount: best.labelCount)
        vdev.set("path", .string(best.path))
        identity.refreshDeviceStrings(of: &vdev)
    }

    /// The name entry `fix_paths` picks for a leaf.
    func bestName(for guid: UInt64, currentPath: String?) -> NameEntry? {
        var best: NameEntry?
        for entry in names.reversed() where entry.guid.rawValue == guid {
            guard let currentPath else { return entry }
            // strcmp, not Unicode equivalence: two spellings of one name are two paths.
            if entry.path.utf8.elementsEqual(currentPath.utf8) { return entry }
            guard let chosen = best else {
                best = entry
                continue
            }
            if entry.labelCount > chosen.labelCount {
                best = entry
            } else if entry.labelCount == chosen.labelCount && entry.searchOrder < chosen.searchOrder {
                best = entry
            }
        }
        return best
    }
}
