// The small vocabulary of pool discovery: pool states, SPA versions, vdev types, and the
// vdev state/aux pairs a later health pass will fill in. Every raw value is an on-disk or
// ioctl fact from `include/sys/fs/zfs.h` (identical in 2.1.11 and master); see
// `spec/import-and-mmp.md` §0.7 and `spec/ondisk.md` §4.7.

import ZFSFormat

/// The `state` key of a label or pool config.
///
/// Only 0…4 appear on disk; 5…7 are in-core or userland-only values that tools print.
/// The corresponding OpenZFS type is `pool_state_t` (`include/sys/fs/zfs.h`).
public struct PoolState: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// In use, or crashed while in use. The corresponding C constant is `POOL_STATE_ACTIVE`.
    public static let active = PoolState(rawValue: 0)
    /// Cleanly exported. `POOL_STATE_EXPORTED`.
    public static let exported = PoolState(rawValue: 1)
    /// Destroyed with `zpool destroy`; importable only with `-D`. `POOL_STATE_DESTROYED`.
    public static let destroyed = PoolState(rawValue: 2)
    /// An idle hot spare's aux label (no pool guid). `POOL_STATE_SPARE`.
    public static let spare = PoolState(rawValue: 3)
    /// An L2ARC cache device's aux label (no pool guid). `POOL_STATE_L2CACHE`.
    public static let l2cache = PoolState(rawValue: 4)
    /// In-core only. `POOL_STATE_UNINITIALIZED`.
    public static let uninitialized = PoolState(rawValue: 5)
    /// libzfs only. `POOL_STATE_UNAVAIL`.
    public static let unavailable = PoolState(rawValue: 6)
    /// libzfs only. `POOL_STATE_POTENTIALLY_ACTIVE`.
    public static let potentiallyActive = PoolState(rawValue: 7)

    /// The largest state a label may carry and still be read (`zpool_read_label`).
    public static let largestOnDisk = PoolState.l2cache

    /// Whether this is the state of an aux (spare or cache) label rather than a pool label.
    public var isAuxiliary: Bool { self == .spare || self == .l2cache }

    /// The name `zpool_pool_state_to_name` prints (`ACTIVE`, `EXPORTED`, …).
    public var description: String {
        switch rawValue {
        case 0: "ACTIVE"
        case 1: "EXPORTED"
        case 2: "DESTROYED"
        case 3: "SPARE"
        case 4: "L2CACHE"
        case 5: "UNINITIALIZED"
        case 6: "UNAVAIL"
        case 7: "POTENTIALLY_ACTIVE"
        default: "UNKNOWN(\(rawValue))"
        }
    }
}

/// SPA (on-disk format) versions and whether this software reads them.
///
/// Legacy versions run 1…28; feature-flag pools say 5000 and list what they need in
/// `features_for_read` (`spec/ondisk.md` §8). A label version outside the supported set is
/// *unsupported*, not corrupt: `zfs-pool-v999` is a perfectly good label from the future.
public enum SPAVersion {
    /// `SPA_VERSION_1`, the first version.
    public static let initial: UInt64 = 1
    /// `SPA_VERSION_BEFORE_FEATURES`, the last legacy version.
    public static let lastLegacy: UInt64 = 28
    /// `SPA_VERSION_FEATURES` (= `SPA_VERSION_5000` = `SPA_VERSION`).
    public static let features: UInt64 = 5000
    /// `SPA_VERSION_SPARES`: hot spares exist from here on.
    public static let spares: UInt64 = 3
    /// `SPA_VERSION_L2CACHE`: cache devices exist from here on.
    public static let l2cache: UInt64 = 10
    /// `SPA_VERSION_HOLES`: labels carry `hole_array` and `vdev_children` from here on.
    public static let holes: UInt64 = 19

    /// Whether this software can read a pool of `version`.
    ///
    /// The corresponding OpenZFS macro is `SPA_VERSION_IS_SUPPORTED`.
    public static func isSupported(_ version: UInt64) -> Bool {
        (initial...lastLegacy).contains(version) || version == features
    }
}

/// The `type` string of a vdev config (`VDEV_TYPE_*` in `include/sys/fs/zfs.h`).
public struct VdevType: RawRepresentable, Hashable, Sendable, CustomStringConvertible,
    ExpressibleByStringLiteral
{
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }

    public static let root: VdevType = "root"
    public static let mirror: VdevType = "mirror"
    public static let replacing: VdevType = "replacing"
    public static let raidz: VdevType = "raidz"
    public static let draid: VdevType = "draid"
    /// A dRAID distributed spare (no device of its own).
    public static let draidSpare: VdevType = "dspare"
    public static let disk: VdevType = "disk"
    public static let file: VdevType = "file"
    /// libzutil's placeholder for a top-level vdev id that no scanned label describes.
    public static let missing: VdevType = "missing"
    /// A removed log device's place in the top-level namespace (`hole_array`).
    public static let hole: VdevType = "hole"
    /// A hot spare in use: interior vdev over the original leaf and the spare.
    public static let spare: VdevType = "spare"
    public static let log: VdevType = "log"
    public static let l2cache: VdevType = "l2cache"
    /// A top-level vdev removed by device removal, kept as a mapping.
    public static let indirect: VdevType = "indirect"

    /// Whether vdevs of this type are placeholders that hold no data and are never opened.
    public var isPlaceholder: Bool { self == .missing || self == .hole }

    public var description: String { rawValue }
}

/// A vdev's state as OpenZFS computes it when opening the tree.
///
/// Discovery does not compute states; the type is here so that a health pass can attach them
/// to ``VdevNode``. The corresponding OpenZFS type is `vdev_state_t`.
public struct VdevState: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let unknown = VdevState(rawValue: 0)
    public static let closed = VdevState(rawValue: 1)
    public static let offline = VdevState(rawValue: 2)
    public static let removed = VdevState(rawValue: 3)
    public static let cantOpen = VdevState(rawValue: 4)
    public static let faulted = VdevState(rawValue: 5)
    public static let degraded = VdevState(rawValue: 6)
    public static let healthy = VdevState(rawValue: 7)

    public var description: String {
        switch rawValue {
        case 0: "UNKNOWN"
        case 1: "CLOSED"
        case 2: "OFFLINE"
        case 3: "REMOVED"
        case 4: "CANT_OPEN"
        case 5: "FAULTED"
        case 6: "DEGRADED"
        case 7: "HEALTHY"
        default: "VDEV_STATE(\(rawValue))"
        }
    }
}

/// Why a vdev is in its state. The corresponding OpenZFS type is `vdev_aux_t`.
public struct VdevAux: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let none = VdevAux(rawValue: 0)
    public static let openFailed = VdevAux(rawValue: 1)
    public static let corruptData = VdevAux(rawValue: 2)
    public static let noReplicas = VdevAux(rawValue: 3)
    public static let badGUIDSum = VdevAux(rawValue: 4)
    public static let tooSmall = VdevAux(rawValue: 5)
    public static let badLabel = VdevAux(rawValue: 6)
    public static let versionNewer = VdevAux(rawValue: 7)
    public static let versionOlder = VdevAux(rawValue: 8)
    public static let unsupportedFeature = VdevAux(rawValue: 9)
    public static let spared = VdevAux(rawValue: 10)
    public static let errorsExceeded = VdevAux(rawValue: 11)
    public static let ioFailure = VdevAux(rawValue: 12)
    public static let badLog = VdevAux(rawValue: 13)
    public static let external = VdevAux(rawValue: 14)
    public static let splitPool = VdevAux(rawValue: 15)
    public static let badAshift = VdevAux(rawValue: 16)
    public static let externalPersist = VdevAux(rawValue: 17)
    public static let active = VdevAux(rawValue: 18)
    public static let childrenOffline = VdevAux(rawValue: 19)
    public static let ashiftTooBig = VdevAux(rawValue: 20)

    public var description: String {
        let names = [
            "NONE", "OPEN_FAILED", "CORRUPT_DATA", "NO_REPLICAS", "BAD_GUID_SUM", "TOO_SMALL",
            "BAD_LABEL", "VERSION_NEWER", "VERSION_OLDER", "UNSUP_FEAT", "SPARED", "ERR_EXCEEDED",
            "IO_FAILURE", "BAD_LOG", "EXTERNAL", "SPLIT_POOL", "BAD_ASHIFT", "EXTERNAL_PERSIST",
            "ACTIVE", "CHILDREN_OFFLINE", "ASHIFT_TOO_BIG",
        ]
        return rawValue < UInt64(names.count) ? names[Int(rawValue)] : "VDEV_AUX(\(rawValue))"
    }
}

/// Which pool a caller means: by name or by guid.
///
/// `zpool import ARG` treats an argument made only of decimal digits that fits in 64 bits as a
/// guid and anything else as a name (``init(zpoolArgument:)``); zdb, zhack and ztest parse it
/// with `strtoull(…, 0)` after cutting it at the first `/` or `@`, so hex and octal guids work
/// there (``init(zdbArgument:)``). See `spec/import-and-mmp.md` §1.14.
public enum PoolSelector: Hashable, Sendable, CustomStringConvertible {
    case name(String)
    case guid(PoolGUID)

    /// The rule of `zpool import ARG` (`cmd/zpool/zpool_main.c`).
    public init(zpoolArgument argument: String) {
        if !argument.isEmpty, argument.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
            let value = UInt64(argument)
        {
            self = .guid(PoolGUID(value))
        } else {
            self = .name(argument)
        }
    }

    /// The rule of `zpool_find_config` (`lib/libzutil/zutil_import.c`): cut at `/` or `@`,
    /// then a non-zero `strtoull(target, NULL, 0)` is a guid, anything else a name.
    public init(zdbArgument argument: String) {
        let target = String(argument.prefix { $0 != "/" && $0 != "@" })
        let value = Self.strtoull(target)
        self = value != 0 ? .guid(PoolGUID(value)) : .name(target)
    }

    /// Whether a pool config (or label) with this name and guid is the one meant.
    public func matches(name: String?, guid: PoolGUID?) -> Bool {
        switch self {
        case .name(let wanted): name == wanted
        case .guid(let wanted): guid == wanted
        }
    }

    public var description: String {
        switch self {
        case .name(let name): "'\(name)'"
        case .guid(let guid): "guid \(guid)"
        }
    }

    /// C's `strtoull(s, NULL, 0)`: optional white space and sign, a `0x`/`0` base prefix, the
    /// longest run of digits; saturates at `UInt64.max`; 0 when nothing parses.
    static func strtoull(_ text: String) -> UInt64 {
        var bytes = Substring(text).utf8.drop { $0 == 0x20 || (0x09...0x0D).contains($0) }
        var negative = false
        if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            negative = sign == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        var radix: UInt64 = 10
        if bytes.starts(with: "0x".utf8) || bytes.starts(with: "0X".utf8),
            let digit = bytes.dropFirst(2).first, Self.digitValue(digit, radix: 16) != nil
        {
            radix = 16
            bytes = bytes.dropFirst(2)
        } else if bytes.first == UInt8(ascii: "0") {
            radix = 8
        }
        var value: UInt64 = 0
        var overflow = false
        for byte in bytes {
            guard let digit = Self.digitValue(byte, radix: radix) else { break }
            let (product, o1) = value.multipliedReportingOverflow(by: radix)
            let (sum, o2) = product.addingReportingOverflow(digit)
            if o1 || o2 { overflow = true }
            value = sum
        }
        if overflow { return .max }
        return negative ? 0 &- value : value
    }

    private static func digitValue(_ byte: UInt8, radix: UInt64) -> UInt64? {
        let value: UInt64
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt64(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt64(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt64(byte - UInt8(ascii: "A")) + 10
        default: return nil
        }
        return value < radix ? value : nil
    }
}

/// Which destroyed pools a scan reports.
///
/// `zpool import` hides destroyed pools unless given `-D`, and with `-D` shows only them
/// (`spec/import-and-mmp.md` §1.13); `zdb -e` shows every pool whatever its state.
public enum DestroyedPoolPolicy: Hashable, Sendable {
    /// Hide destroyed pools (`zpool import`).
    case exclude
    /// Report only destroyed pools (`zpool import -D`).
    case only
    /// Report every pool (`zdb -e`).
    case include

    func admits(_ state: PoolState) -> Bool {
        switch self {
        case .exclude: state != .destroyed
        case .only: state == .destroyed
        case .include: true
        }
    }
}
