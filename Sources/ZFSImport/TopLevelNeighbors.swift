// Neighbor lists: what a leaf's label can say about the OTHER top-level vdevs of its pool.
//
// Why. A label holds the config of its own top-level vdev only (see
// `shared/seeds/spa-open-import-history.txt`: "Each device keeps the complete config for its
// toplevel vdev. No neighbors, no graph"). When every device of a top-level vdev is gone, an
// import scan sees a `missing` hole in the namespace (`vdev_children`) and OpenZFS can say no
// more than "one or more devices are missing"; the MOS knows which, but the MOS is reachable
// only through a complete pool. That essay ends with the wish this file fulfils: "neighbor
// lists — arbitrary lists of devices without entire vdev configs … purely suggestions, and not
// actually required for correctness."
//
// What. Pools written by ZPoolKit carry, in each leaf label, the key `org.zpoolkit:neighbors`
// (reverse-DNS, like feature guids, so it can never clash with an OpenZFS key). Its value is an
// NVLIST_ARRAY with one entry per other concrete top-level vdev:
//
//   top_id   UINT64        the vdev's `id` (its place among the root's children)
//   guid     UINT64        the top-level vdev's guid
//   type     STRING        `mirror`, `raidz`, `draid`, `file`, `disk`, …
//   nparity  UINT64        raidz/draid only
//   is_log   UINT64        1 for a log vdev (absent or 0 otherwise)
//   leaves   NVLIST_ARRAY  {guid UINT64, path STRING} per leaf, in tree order (a single-leaf
//                          top-level vdev lists itself)
//
// What it does NOT guarantee. It is a hint: written at the label's txg, it may be stale, and a
// reader never trusts it over a label or the MOS. Nested top-level vdevs (a mirror of raidz)
// are flattened to their leaves, so such a vdev is named, but not rebuilt exactly. OpenZFS
// ignores unknown label keys (`zdb -l` prints it; the kernel drops it the next time it
// rewrites the label), so a pool imported by OpenZFS loses its neighbor lists.
//
// Sizes. A label config holds 114 648 bytes; each entry costs about 100 bytes plus ~60 bytes
// per leaf plus the path, so a pool of 100 two-way mirrors of `/dev/disk/by-id/…` paths needs
// ~25 KB: writers should drop entries (farthest first) rather than exceed the label.

import ZFSFormat

/// One other top-level vdev, as a neighbor list in a label records it.
public struct NeighborRecord: Hashable, Sendable, CustomStringConvertible {
    /// The label key that holds the list.
    public static let labelKey = "org.zpoolkit:neighbors"

    /// One leaf of the recorded top-level vdev.
    public struct Leaf: Hashable, Sendable {
        public var guid: VdevGUID
        public var path: String?
        public init(guid: VdevGUID, path: String?) {
            self.guid = guid
            self.path = path
        }
    }

    /// `top_id`.
    public var topLevelID: UInt64
    /// `guid` of the top-level vdev.
    public var guid: VdevGUID
    /// `type` of the top-level vdev.
    public var type: VdevType
    /// `nparity` (raidz, draid).
    public var parity: UInt64?
    /// `is_log`.
    public var isLog: Bool
    /// `leaves`.
    public var leaves: [Leaf]

    public init(topLevelID: UInt64, guid: VdevGUID, type: VdevType, parity: UInt64? = nil, isLog: Bool = false, leaves: [Leaf]) {
        self.topLevelID = topLevelID
        self.guid = guid
        self.type = type
        self.parity = parity
        self.isLog = isLog
        self.leaves = leaves
    }

    /// Describes a top-level vdev of a tree (its leaves flattened).
    public init?(describing topLevel: VdevNode) {
        guard let id = topLevel.id, !topLevel.type.isPlaceholder, topLevel.type != .indirect else { return nil }
        self.init(
            topLevelID: id, guid: topLevel.guid, type: topLevel.type,
            parity: topLevel.config.uint64("nparity"), isLog: topLevel.isLog,
            leaves: topLevel.leaves.map { Leaf(guid: $0.guid, path: $0.path) })
    }

    /// Decodes one entry; `nil` when `top_id`, `guid`, `type` or `leaves` is missing.
    public init?(decoding list: NVList) {
        guard let id = list.uint64("top_id"), let guid = list.uint64("guid"), let type = list.string("type"),
            let leaves = list.lists("leaves")
        else { return nil }
        var decoded: [Leaf] = []
        for leaf in leaves {
            guard let leafGUID = leaf.uint64("guid") else { return nil }
            decoded.append(Leaf(guid: VdevGUID(leafGUID), path: leaf.string("path")))
        }
        self.init(
            topLevelID: id, guid: VdevGUID(guid), type: VdevType(rawValue: type), parity: list.uint64("nparity"),
            isLog: list.uint64("is_log") == 1, leaves: decoded)
    }

    /// The entry as it goes into the label.
    public func encoded() -> NVList {
        var list = NVList()
        list.set("top_id", .uint64(topLevelID))
        list.set("guid", .uint64(guid.rawValue))
        list.set("type", .string(type.rawValue))
        if let parity { list.set("nparity", .uint64(parity)) }
        if isLog { list.set("is_log", .uint64(1)) }
        list.set(
            "leaves",
            .nvlistArray(
                leaves.map { leaf in
                    var entry = NVList()
                    entry.set("guid", .uint64(leaf.guid.rawValue))
                    if let path = leaf.path { entry.set("path", .string(path)) }
                    return entry
                }))
        return list
    }

    /// The neighbor list in a label config, `nil` when it has none (every OpenZFS label).
    /// Entries that do not decode are skipped.
    public static func records(inLabel config: NVList) -> [NeighborRecord]? {
        config.lists(labelKey).map { $0.compactMap(NeighborRecord.init(decoding:)) }
    }

    /// `labelConfig` with a neighbor list describing every concrete top-level vdev of `root`
    /// except the one the label's `top_guid` names — what a ZPoolKit writer puts in each label.
    public static func label(_ labelConfig: NVList, withNeighborsFrom root: VdevNode) -> NVList {
        let own = labelConfig.uint64("top_guid")
        let records = root.children.compactMap(NeighborRecord.init(describing:)).filter { $0.guid.rawValue != own }
        var config = labelConfig
        config.set(labelKey, .nvlistArray(records.map { $0.encoded() }))
        return config
    }

    /// A `vdev_tree`-shaped config of the recorded vdev, leaves as children (or the leaf itself
    /// for a single-leaf vdev). Leaves are `disk` when their path is under `/dev/`, else `file`.
    public var vdevConfig: NVList {
        func leafConfig(_ leaf: Leaf, id: UInt64) -> NVList {
            var list = NVList()
            let isDisk = leaf.path?.hasPrefix("/dev/") ?? false
            list.set("type", .string(isDisk ? VdevType.disk.rawValue : VdevType.file.rawValue))
            list.set("id", .uint64(id))
            list.set("guid", .uint64(leaf.guid.rawValue))
            if let path = leaf.path { list.set("path", .string(path)) }
            return list
        }
        if (type == .file || type == .disk), leaves.count == 1 {
            var list = leafConfig(leaves[0], id: topLevelID)
            list.set("type", .string(type.rawValue))
            if isLog { list.set("is_log", .uint64(1)) }
            return list
        }
        var list = NVList()
        list.set("type", .string(type.rawValue))
        list.set("id", .uint64(topLevelID))
        list.set("guid", .uint64(guid.rawValue))
        if let parity { list.set("nparity", .uint64(parity)) }
        list.set("is_log", .uint64(isLog ? 1 : 0))
        list.set("children", .nvlistArray(leaves.enumerated().map { leafConfig($1, id: UInt64($0)) }))
        return list
    }

    /// "mirror of /dev/sdc, /dev/sdd, guid 123" — how a report names the vdev.
    public var description: String {
        let paths = leaves.map { $0.path ?? "guid \($0.guid)" }
        let kind: String
        if (type == .file || type == .disk), leaves.count == 1 {
            kind = paths[0]
        } else if type == .raidz {
            kind = "raidz\(parity ?? 1) of \(paths.joined(separator: ", "))"
        } else {
            kind = "\(type.rawValue) of \(paths.joined(separator: ", "))"
        }
        return "\(isLog ? "log " : "")\(kind), guid \(guid)"
    }

    /// The neighbor records the scanned labels of `pool` carry, by top-level id: for each id, the
    /// entry from the label with the highest txg.
    public static func collect(for pool: PoolCandidate, in scan: ScanResult) -> [UInt64: NeighborRecord] {
        var best: [UInt64: (txg: TXG, record: NeighborRecord)] = [:]
        for device in scan.devices {
            guard case .poolMember(let poolGUID, _, _, let txg) = device.role, poolGUID == pool.guid,
                let config = device.probe?.config, let records = records(inLabel: config)
            else { continue }
            for record in records where best[record.topLevelID].map({ txg > $0.txg }) ?? true {
                best[record.topLevelID] = (txg, record)
            }
        }
        return best.mapValues(\.record)
    }
}
