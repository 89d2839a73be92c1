// What `zpool import` says about a pool it lists: the status (`zpool_status_t`), its message
// id, and the `status:` and `action:` texts, exactly as OpenZFS 2.1.11 words them
// (`lib/libzfs/libzfs_status.c`: `check_status`; `cmd/zpool/zpool_main.c`: `show_import`).
// `spec/import-and-mmp.md` §2.2–§2.3 describes master; where 2.1.11 differs (the CORRUPT_POOL
// text, the missing space before `action:` of the unsupported-feature cases), 2.1.11 wins here.

import ZFSFormat

/// The status `zpool import` derives for a pool, and the words it prints for it.
///
/// The raw value is the name of the `ZPOOL_STATUS_*` constant without its prefix
/// (`MISSING_DEV_R`, `HOSTID_MISMATCH`, `OK`, …). Only the statuses an import listing can show
/// are declared. The corresponding OpenZFS type is `zpool_status_t` (`include/libzfs.h`).
public struct ImportStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// A resilver is running (from the MOS scan statistics; never derived by ZPoolKit yet).
    public static let resilvering = ImportStatus(rawValue: "RESILVERING")
    /// A sequential rebuild is running (from the MOS; never derived by ZPoolKit yet).
    public static let rebuilding = ImportStatus(rawValue: "REBUILDING")
    /// The activity check found the pool in use by another host.
    public static let hostIDActive = ImportStatus(rawValue: "HOSTID_ACTIVE")
    /// The pool has multihost on and this host has no hostid.
    public static let hostIDRequired = ImportStatus(rawValue: "HOSTID_REQUIRED")
    /// The pool was not exported and was last written under another hostid: importing needs `-f`.
    public static let hostIDMismatch = ImportStatus(rawValue: "HOSTID_MISMATCH")
    /// The on-disk version is newer than this software reads.
    public static let versionNewer = ImportStatus(rawValue: "VERSION_NEWER")
    /// Features needed to read the pool are unknown to this software.
    public static let unsupportedFeaturesRead = ImportStatus(rawValue: "UNSUP_FEAT_READ")
    /// Features needed to write the pool are unknown; a read-only import is possible.
    public static let unsupportedFeaturesWrite = ImportStatus(rawValue: "UNSUP_FEAT_WRITE")
    /// The uberblock's guid sum does not match the tree: devices are missing, which ones is unknown.
    public static let badGUIDSum = ImportStatus(rawValue: "BAD_GUID_SUM")
    /// An intent log record cannot be read (MOS; never derived by ZPoolKit yet).
    public static let badLog = ImportStatus(rawValue: "BAD_LOG")
    /// The pool cannot be opened and a device is faulted.
    public static let faultedDeviceNoReplicas = ImportStatus(rawValue: "FAULTED_DEV_NR")
    /// The pool cannot be opened and a device is missing.
    public static let missingDeviceNoReplicas = ImportStatus(rawValue: "MISSING_DEV_NR")
    /// The pool cannot be opened and a device has a bad label or bad data.
    public static let corruptLabelNoReplicas = ImportStatus(rawValue: "CORRUPT_LABEL_NR")
    /// The pool metadata is corrupted (no valid uberblock, unreadable MOS, bad label keys).
    public static let corruptPool = ImportStatus(rawValue: "CORRUPT_POOL")
    /// A device is faulted, but redundancy covers it.
    public static let faultedDeviceReplicated = ImportStatus(rawValue: "FAULTED_DEV_R")
    /// A device is missing, but redundancy covers it.
    public static let missingDeviceReplicated = ImportStatus(rawValue: "MISSING_DEV_R")
    /// A device has a bad label or bad data, but redundancy covers it.
    public static let corruptLabelReplicated = ImportStatus(rawValue: "CORRUPT_LABEL_R")
    /// A device is offline.
    public static let offlineDevice = ImportStatus(rawValue: "OFFLINE_DEV")
    /// A device is removed.
    public static let removedDevice = ImportStatus(rawValue: "REMOVED_DEV")
    /// The pool uses a supported legacy version (1–28).
    public static let versionOlder = ImportStatus(rawValue: "VERSION_OLDER")
    /// Supported features are not enabled (MOS; never derived by ZPoolKit yet).
    public static let featuresDisabled = ImportStatus(rawValue: "FEAT_DISABLED")
    /// Nothing to report.
    public static let ok = ImportStatus(rawValue: "OK")

    public var description: String { rawValue }

    /// The `ZFS-8000-…` message id, `nil` for statuses without one (`zfs_msgid_table`).
    public var messageID: String? {
        switch self {
        case .missingDeviceReplicated: "ZFS-8000-2Q"
        case .missingDeviceNoReplicas: "ZFS-8000-3C"
        case .corruptLabelReplicated: "ZFS-8000-4J"
        case .corruptLabelNoReplicas: "ZFS-8000-5E"
        case .badGUIDSum: "ZFS-8000-6X"
        case .corruptPool: "ZFS-8000-72"
        case .versionNewer: "ZFS-8000-A5"
        case .hostIDMismatch, .hostIDActive, .hostIDRequired: "ZFS-8000-EY"
        case .badLog: "ZFS-8000-K4"
        default: nil
        }
    }

    /// The web page `zpool import` prints after `see:`.
    public var messageURL: String? {
        messageID.map { "https://openzfs.github.io/openzfs-docs/msg/\($0)" }
    }

    /// The text after `status:` (continuation lines begin with a tab), without the final
    /// newline; `nil` where `show_import` prints no status line (OK, and REMOVED_DEV, which
    /// 2.1.11's `show_import` does not handle). Unsupported features are listed one per line.
    public func statusText(unsupportedFeatures: [String] = []) -> String? {
        let features = unsupportedFeatures.map { "\n\t\($0)" }.joined()
        switch self {
        case .missingDeviceReplicated, .missingDeviceNoReplicas, .badGUIDSum:
            return "One or more devices are missing from the system."
        case .corruptLabelReplicated, .corruptLabelNoReplicas:
            return "One or more devices contains corrupted data."
        case .offlineDevice:
            return "One or more devices are offlined."
        case .corruptPool:
            return "The pool metadata is corrupted."
        case .versionOlder:
            return "The pool is formatted using a legacy on-disk version."
        case .versionNewer:
            return "The pool is formatted using an incompatible version."
        case .featuresDisabled:
            return "Some supported features are not enabled on the pool.\n\t(Note that they may be intentionally disabled if the\n\t'compatibility' property is set.)"
        case .unsupportedFeaturesRead:
            return "The pool uses the following feature(s) not supported on this system:" + features
        case .unsupportedFeaturesWrite:
            return "The pool can only be accessed in read-only mode on this system. It\n\tcannot be accessed in read-write mode because it uses the following\n\tfeature(s) not supported on this system:" + features
        case .hostIDActive:
            return "The pool is currently imported by another system."
        case .hostIDRequired:
            return "The pool has the multihost property on.  It cannot\n\tbe safely imported when the system hostid is not set."
        case .hostIDMismatch:
            return "The pool was last accessed by another system."
        case .faultedDeviceReplicated, .faultedDeviceNoReplicas:
            return "One or more devices are faulted."
        case .badLog:
            return "An intent log record cannot be read."
        case .resilvering, .rebuilding:
            return "One or more devices were being resilvered."
        default:
            return nil
        }
    }

    /// The text after `action:`, which depends on the root vdev's state as much as on the status.
    ///
    /// - Parameters:
    ///   - rootState: the root vdev's state (`vs_state`).
    ///   - activeHostname: for HOSTID_ACTIVE, the `mmp_hostname` of the host using the pool.
    ///   - activeHostID: for HOSTID_ACTIVE, its `mmp_hostid`.
    public func actionText(rootState: VdevState, activeHostname: String? = nil, activeHostID: UInt64 = 0) -> String {
        if rootState == .healthy {
            switch self {
            case .versionOlder, .featuresDisabled:
                return "The pool can be imported using its name or numeric identifier, though\n\tsome features will not be available without an explicit 'zpool upgrade'."
            case .hostIDMismatch:
                return "The pool can be imported using its name or numeric identifier and\n\tthe '-f' flag."
            default:
                return "The pool can be imported using its name or numeric identifier."
            }
        }
        if rootState == .degraded {
            return "The pool can be imported despite missing or damaged devices.  The\n\tfault tolerance of the pool may be compromised if imported."
        }
        switch self {
        case .versionNewer:
            return "The pool cannot be imported.  Access the pool on a system running newer\n\tsoftware, or recreate the pool from backup."
        case .unsupportedFeaturesRead:
            return "The pool cannot be imported. Access the pool on a system that supports\n\tthe required feature(s), or recreate the pool from backup."
        case .unsupportedFeaturesWrite:
            return "The pool cannot be imported in read-write mode. Import the pool with\n\t\"-o readonly=on\", access the pool on a system that supports the\n\trequired feature(s), or recreate the pool from backup."
        case .missingDeviceReplicated, .missingDeviceNoReplicas, .badGUIDSum:
            return "The pool cannot be imported. Attach the missing\n\tdevices and try again."
        case .hostIDActive:
            return "The pool must be exported from \(activeHostname ?? "unknown") (hostid=\(String(activeHostID, radix: 16)))\n\tbefore it can be safely imported."
        case .hostIDRequired:
            return "Set a unique system hostid with the zgenhostid(8) command."
        default:
            return "The pool cannot be imported due to damaged devices or data."
        }
    }

    /// Whether 2.1.11's `show_import` prints the `action:` label of this status without its
    /// leading space (it does for the unsupported-feature cases, through `printf_color`).
    public func actionLabelIsUnindented(rootState: VdevState) -> Bool {
        rootState != .healthy && rootState != .degraded
            && (self == .unsupportedFeaturesRead || self == .unsupportedFeaturesWrite)
    }
}

extension VdevState {
    /// The name `zpool import` and `zpool status` print for a vdev in this state with reason
    /// `aux`. The corresponding OpenZFS function is `zpool_state_to_name`
    /// (`lib/libzfs/libzfs_pool.c`).
    public func zpoolName(aux: VdevAux) -> String {
        switch self {
        case .closed, .offline: "OFFLINE"
        case .removed: "REMOVED"
        case .cantOpen:
            if aux == .corruptData || aux == .badLog {
                "FAULTED"
            } else if aux == .splitPool {
                "SPLIT"
            } else {
                "UNAVAIL"
            }
        case .faulted: "FAULTED"
        case .degraded: "DEGRADED"
        case .healthy: "ONLINE"
        default: "UNKNOWN"
        }
    }
}

extension VdevAux {
    /// The words `zpool import` prints after a vdev's state, `nil` for ``none``
    /// (`print_import_config` in `cmd/zpool/zpool_main.c`).
    public var zpoolImportNote: String? {
        switch self {
        case .none: nil
        case .openFailed: "cannot open"
        case .badGUIDSum: "missing device"
        case .noReplicas: "insufficient replicas"
        case .versionNewer: "newer version"
        case .unsupportedFeature: "unsupported feature(s)"
        case .errorsExceeded: "too many errors"
        case .active: "currently in use"
        case .childrenOffline: "all children offline"
        case .badLabel: "invalid label"
        default: "corrupted data"
        }
    }
}

/// The features OpenZFS 2.1.11 can read and write (`module/zcommon/zfeature_common.c`): a
/// pool whose label lists a `features_for_read` entry outside this set cannot be imported
/// (`spa_ld_select_uberblock` fails with `VDEV_AUX_UNSUP_FEAT`).
public enum SupportedFeatures {
    /// The 34 feature guids of 2.1.11's `spa_feature_table`.
    public static let openZFS2_1_11: Set<String> = [
        "com.delphix:async_destroy", "com.delphix:empty_bpobj", "org.illumos:lz4_compress",
        "com.joyent:multi_vdev_crash_dump", "com.delphix:spacemap_histogram", "com.delphix:enabled_txg",
        "com.delphix:hole_birth", "com.delphix:zpool_checkpoint", "com.delphix:spacemap_v2",
        "com.delphix:extensible_dataset", "com.delphix:bookmarks", "com.joyent:filesystem_limits",
        "com.delphix:embedded_data", "com.delphix:livelist", "com.delphix:log_spacemap",
        "org.open-zfs:large_blocks", "org.zfsonlinux:large_dnode", "org.illumos:sha512",
        "org.illumos:skein", "org.illumos:edonr", "com.delphix:redaction_bookmarks",
        "com.delphix:redacted_datasets", "com.delphix:bookmark_written", "com.delphix:device_removal",
        "com.delphix:obsolete_counts", "org.zfsonlinux:userobj_accounting", "com.datto:bookmark_v2",
        "com.datto:encryption", "org.zfsonlinux:project_quota", "org.zfsonlinux:allocation_classes",
        "com.datto:resilver_defer", "org.openzfs:device_rebuild", "org.freebsd:zstd_compress",
        "org.openzfs:draid",
    ]
}
