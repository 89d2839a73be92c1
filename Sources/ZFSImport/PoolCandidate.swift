// A pool found by a scan: the config libzutil would hand to the kernel, plus what we know
// about where each piece of it came from.

import ZFSFormat

/// A pool assembled from the labels a scan found.
///
/// ``config`` is exactly the nvlist that `get_configs` (`lib/libzutil/zutil_import.c`, 2.1.11)
/// builds before it asks the kernel to refresh it: the pool-level keys of one label, the
/// `vdev_children`/`hole_array` of the newest label, and a root `vdev_tree` whose children are
/// the best config of each top-level vdev seen, with `hole` and `missing` placeholders and leaf
/// paths refreshed by guid. `zdb -e -p DIR -CC POOL` prints it (plus a `load-policy`) under
/// "Configuration for import"; see ``zdbImportConfiguration(loadPolicy:)``.
///
/// The rest of the type explains the config: which devices carried which labels, which
/// top-level vdevs were seen and how fresh each was, which leaves were found on a scanned
/// device. ``root`` is the same tree as typed ``VdevNode``s, with room for the per-vdev state
/// and reason that a health pass will fill in.
public struct PoolCandidate: Sendable {
    /// One top-level vdev as the labels describe it.
    public struct TopLevelVdev: Sendable {
        /// `top_guid`.
        public var guid: VdevGUID
        /// `vdev_tree.id` of the best config: its place among the root's children.
        public var id: UInt64?
        /// The txg of the newest label config seen for it (the one used).
        public var bestTXG: TXG
        /// Every distinct label txg seen for it, in libzutil's list order (most recently seen first).
        public var txgs: [TXG]
        /// Devices whose labels describe this top-level vdev.
        public var devicePaths: [String]
    }

    /// One scanned device that carries a label of this pool.
    public struct MemberDevice: Hashable, Sendable {
        public var path: String
        /// The leaf's `guid`.
        public var guid: VdevGUID
        /// `top_guid`.
        public var topLevelGUID: VdevGUID
        /// The `txg` of the label used.
        public var txg: TXG
        /// Accepted labels with this guid (`num_labels`).
        public var labelCount: Int
        /// libzutil's search order (lower wins ties).
        public var searchOrder: Int
    }

    /// `name`.
    public var name: String
    /// `pool_guid`.
    public var guid: PoolGUID
    /// `version` (SPA version).
    public var version: UInt64
    /// `state` of the label the pool-level keys came from.
    public var state: PoolState
    /// The newest label txg among the top-level vdevs' best configs (libzutil's `max_txg`).
    public var txg: TXG
    /// `hostid` from the labels, when the last writer had one.
    public var hostID: UInt64?
    /// `hostname`, present only together with ``hostID`` (as libzutil copies it).
    public var hostname: String?
    /// `comment`.
    public var comment: String?
    /// The assembled config (see the type's documentation).
    public var config: NVList
    /// The assembled root vdev as a typed tree.
    public var root: VdevNode
    /// The top-level vdevs seen, in libzutil's processing order (most recently first seen first).
    public var topLevelVdevs: [TopLevelVdev]
    /// The devices carrying this pool's labels, in processing order.
    public var memberDevices: [MemberDevice]
    /// Observations a person should see: missing top-level vdevs, stale labels, leaves found
    /// on no device, an unsupported version.
    public var notes: [String]

    /// Whether this software can read the pool's on-disk version (`SPA_VERSION_IS_SUPPORTED`).
    /// `false` means unsupported — a newer format — never corrupt.
    public var isVersionSupported: Bool { SPAVersion.isSupported(version) }

    /// Whether the labels are those of a destroyed pool (importable only with `-D`).
    public var isDestroyed: Bool { state == .destroyed }

    /// Top-level ids that no scanned label describes (the `missing` placeholders).
    public var missingTopLevelIDs: [UInt64] {
        root.children.filter { $0.type == .missing }.compactMap(\.id)
    }

    /// Top-level ids that are holes (`hole_array`).
    public var holeTopLevelIDs: [UInt64] {
        root.children.filter { $0.type == .hole }.compactMap(\.id)
    }

    /// The config as `zdb -e -p DIR -CC` prints it under "Configuration for import": ours plus
    /// the load policy zdb adds before printing.
    ///
    /// - Parameter loadPolicy: zdb's policy; by default `load-request-txg` = `UINT64_MAX` and
    ///   `load-rewind-policy` = 2 (`ZPOOL_NEVER_REWIND`), what zdb uses without `-F`/`-X`/`-t`.
    public func zdbImportConfiguration(loadPolicy: NVList = ZdbImportText.defaultLoadPolicy) -> NVList {
        var result = config
        result.set("load-policy", .nvlist(loadPolicy))
        return result
    }
}

/// One vdev of an assembled pool tree.
///
/// Built from the config's `vdev_tree`; ``config`` keeps the vdev's own pairs (everything but
/// `children`). Health is not computed by discovery: ``state`` and ``aux`` are `nil` until a
/// health pass sets them.
public struct VdevNode: Hashable, Sendable {
    /// Whether a leaf vdev was found on a scanned device.
    public enum Presence: Hashable, Sendable {
        /// A scanned device carries this leaf's guid; `path` is the one chosen.
        case found(path: String, labelCount: Int)
        /// No scanned device carries this guid; the label's last known path is kept.
        case notFound
    }

    /// `type`.
    public var type: VdevType
    /// `id`: the index among siblings (absent on spare/cache list entries).
    public var id: UInt64?
    /// `guid` (0 for `hole` and `missing` placeholders).
    public var guid: VdevGUID
    /// `path`, for leaves.
    public var path: String?
    /// `is_log` = 1 (top-level log vdevs).
    public var isLog: Bool
    /// The children (`children`), in order.
    public var children: [VdevNode]
    /// The vdev's own pairs, `children` removed.
    public var config: NVList
    /// For leaves: whether a scanned device carries the guid. `nil` for interior vdevs and
    /// placeholders.
    public var presence: Presence?
    /// The vdev's state, once a health pass has run (`vdev_state_t`).
    public var state: VdevState?
    /// Why the vdev is in its state (`vdev_aux_t`), once a health pass has run.
    public var aux: VdevAux?

    /// Builds the typed tree of a `vdev_tree` nvlist.
    /// - Parameters:
    ///   - config: the vdev's nvlist, `children` included.
    ///   - presence: for each leaf guid, where it was found (leaves absent from the map are
    ///     ``Presence/notFound``).
    public init(config: NVList, presence: [VdevGUID: Presence] = [:]) {
        var own = config
        own["children"] = nil
        self.config = own
        type = VdevType(rawValue: config.string("type") ?? "")
        id = config.uint64("id")
        guid = VdevGUID(config.uint64("guid") ?? 0)
        path = config.string("path")
        isLog = config.uint64("is_log") == 1
        let childConfigs = config.lists("children") ?? []
        children = childConfigs.map { VdevNode(config: $0, presence: presence) }
        if childConfigs.isEmpty && !type.isPlaceholder && type != .root {
            self.presence = presence[guid] ?? .notFound
        } else {
            self.presence = nil
        }
        state = nil
        aux = nil
    }

    /// Whether the vdev has no children and is not a placeholder: a disk, a file, or a
    /// childless interior vdev from a damaged config.
    public var isLeaf: Bool { children.isEmpty && !type.isPlaceholder && type != .root }

    /// Every leaf below (or this vdev, if it is one), depth first.
    public var leaves: [VdevNode] {
        isLeaf ? [self] : children.flatMap(\.leaves)
    }

    /// The sum of the guids of this vdev and everything below it, modulo 2^64 — what the
    /// uberblock's `ub_guid_sum` must equal for the root (`spec/import-and-mmp.md` §1.15).
    public var guidSum: UInt64 {
        children.reduce(guid.rawValue) { $0 &+ $1.guidSum }
    }
}
