// Refreshing a disk leaf's persistent device strings after its path was refreshed.
//
// When `fix_paths` gives a leaf a new path it calls `update_vdev_config_dev_strs`
// (`lib/libzutil/os/linux/zutil_import_os.c`), which for `type: 'disk'` leaves asks udev for
// the disk behind the path and rewrites `devid`, `phys_path` and `vdev_enc_sysfs_path` — or
// removes all three when the path is not a (whole) disk udev knows, which is what happens to a
// disk vdev found as an image file. `ZFS_VDEV_DEVID_OPT_OUT` removes `devid` and `phys_path`
// for every leaf type. `file` leaves are otherwise left alone.

import ZFSFormat

/// Recomputes the device-id strings of a leaf vdev config whose `path` was just set.
///
/// The corresponding OpenZFS function is `update_vdev_config_dev_strs`.
public protocol DeviceIdentityResolver: Sendable {
    /// Updates `devid`, `phys_path` and `vdev_enc_sysfs_path` of `leaf` for its current `path`.
    func refreshDeviceStrings(of leaf: inout NVList)
}

/// Leaves device-id strings as the labels have them (for tests and for callers that do not
/// want the host consulted).
public struct NoDeviceIdentity: DeviceIdentityResolver {
    public init() {}
    public func refreshDeviceStrings(of leaf: inout NVList) {}
}

/// The persistent names of one disk, as udev knows them.
public struct DiskIdentity: Hashable, Sendable {
    /// `devid`: e.g. `ata-ST4000DM000_Z1Z0ABCD`, `dm-uuid-mpath-3500…`, `/dev/zvol/tank/vol`.
    public var deviceID: String
    /// `phys_path`: e.g. `pci-0000:00:1f.2-ata-1`; `nil` when unknown.
    public var physicalPath: String?
    /// `vdev_enc_sysfs_path`: the enclosure slot's sysfs directory; `nil` when none.
    public var enclosureSysfsPath: String?

    public init(deviceID: String, physicalPath: String? = nil, enclosureSysfsPath: String? = nil) {
        self.deviceID = deviceID
        self.physicalPath = physicalPath
        self.enclosureSysfsPath = enclosureSysfsPath
    }
}

/// libzutil's rule, with the lookup of a disk's identity injected.
///
/// `lookUp(path, wholeDisk)` returns the disk's identity, or `nil` when the path is not a disk
/// udev knows (or, unless `wholeDisk` or a multipath device, not a whole disk) — then the three
/// strings are removed, as libzutil removes them.
public struct DiskIdentityRule: DeviceIdentityResolver {
    /// `ZFS_VDEV_DEVID_OPT_OUT`: strip `devid` and `phys_path` from every refreshed leaf.
    public var optOut: Bool
    private let lookUp: @Sendable (_ path: String, _ wholeDisk: Bool) -> DiskIdentity?

    public init(optOut: Bool = false, lookUp: @escaping @Sendable (_ path: String, _ wholeDisk: Bool) -> DiskIdentity?) {
        self.optOut = optOut
        self.lookUp = lookUp
    }

    public func refreshDeviceStrings(of leaf: inout NVList) {
        if optOut {
            leaf["devid"] = nil
            leaf["phys_path"] = nil
            return
        }
        guard leaf.string("type") == VdevType.disk.rawValue, let path = leaf.string("path") else { return }
        let wholeDisk = (leaf.uint64("whole_disk") ?? 0) != 0
        if let identity = lookUp(path, wholeDisk) {
            leaf.set("devid", .string(identity.deviceID))
            if let physical = identity.physicalPath, !physical.isEmpty {
                leaf.set("phys_path", .string(physical))
            }
            if let enclosure = identity.enclosureSysfsPath {
                leaf.set("vdev_enc_sysfs_path", .string(enclosure))
            } else {
                leaf["vdev_enc_sysfs_path"] = nil
            }
        } else {
            leaf["devid"] = nil
            leaf["phys_path"] = nil
            leaf["vdev_enc_sysfs_path"] = nil
        }
    }

    /// Whether an environment's `ZFS_VDEV_DEVID_OPT_OUT` asks to strip device ids: a number > 0
    /// (`strtoul`, any base) or a value starting with `yes` or `on`, in any case.
    public static func optOut(environment: [String: String]) -> Bool {
        guard let value = environment["ZFS_VDEV_DEVID_OPT_OUT"] else { return false }
        let lower = value.lowercased()
        return PoolSelector.strtoull(value) > 0 || lower.hasPrefix("yes") || lower.hasPrefix("on")
    }
}
