/// A transaction group number.
///
/// OpenZFS numbers every sync of a pool; labels (`txg` key), uberblocks (`ub_txg`) and block
/// pointers (`blk_birth`) all carry one. A newtype keeps txgs from mixing with GUIDs, sizes or
/// offsets, which are `UInt64` on disk too.
///
/// The corresponding OpenZFS type is `uint64_t` (named `txg` throughout `module/zfs/txg.c`).
public struct TXG: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The transaction group number as stored on disk.
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Creates a txg from its number.
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    /// Txg 0: the txg of a freshly initialised label and of "no uberblock found".
    public static let zero = TXG(0)

    /// The largest txg; the kernel's `spa_load_max_txg` when not rewinding (`UINT64_MAX`).
    public static let max = TXG(UInt64.max)

    public static func < (lhs: TXG, rhs: TXG) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { String(rawValue) }
}

/// The GUID of a storage pool: the `pool_guid` key of a label, and the guid of the root vdev.
///
/// The corresponding OpenZFS field is `spa_guid` / `ZPOOL_CONFIG_POOL_GUID`.
public struct PoolGUID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The GUID as stored on disk.
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Creates a pool GUID from its number.
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    public var description: String { String(rawValue) }
}

/// The GUID of one vdev (leaf, interior or top-level): the `guid` key of a `vdev_tree` entry.
///
/// The corresponding OpenZFS field is `vdev_guid` / `ZPOOL_CONFIG_GUID`.
public struct VdevGUID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The GUID as stored on disk.
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Creates a vdev GUID from its number.
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    public var description: String { String(rawValue) }
}
