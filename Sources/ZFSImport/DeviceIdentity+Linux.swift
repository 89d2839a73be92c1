// The disk identity lookup of `encode_device_strings` (`lib/libzutil/os/linux/zutil_import_os.c`),
// without libudev: udev's database is a directory of text files, `/run/udev/data/b<major>:<minor>`,
// with `E:KEY=value` property lines and `S:link` device-link lines (links relative to /dev).
//
// What is reproduced: realpath → sysname → the block device in sysfs → its udev record; only
// whole disks (or multipath whole disks) get strings; `devid` from the `ID_BUS`-prefixed
// /dev/disk/by-id link, else `dm-uuid-<DM_UUID>`, else a /dev/zvol link, else (NVMe) the
// `nvme-` by-id link; `phys_path` from `ID_PATH`, else `ID_VDEV`, else a /dev/zvol link, else
// the /dev/disk/by-uuid link.
// What is not: libzutil waits up to 3 s for udev to initialise a device; we read what is there.
// The enclosure slot (`vdev_enc_sysfs_path`) is not looked up: it is always removed.

#if canImport(Glibc)
import Glibc
#endif

/// Looks disks up in the host's udev database.
public enum UdevDiskIdentity {
    /// The rule libzutil applies on Linux, backed by the udev database.
    public static func rule(optOut: Bool = false) -> DiskIdentityRule {
        DiskIdentityRule(optOut: optOut) { path, wholeDisk in lookUp(path: path, wholeDisk: wholeDisk) }
    }

    /// The identity of the disk at `path`, or `nil` when it is not a disk udev knows, or not a
    /// whole disk (unless `wholeDisk` or a multipath device).
    public static func lookUp(path: String, wholeDisk: Bool) -> DiskIdentity? {
        guard let node = realPath(path), let sysname = node.split(separator: "/").last.map(String.init) else {
            return nil
        }
        let sysDirectory = "/sys/class/block/\(sysname)"
        guard let devNumber = readText("\(sysDirectory)/dev")?.trimmingWhitespace(), !devNumber.isEmpty,
            let record = readText("/run/udev/data/b\(devNumber)")
        else { return nil }
        var properties: [String: String] = [:]
        var links: [String] = []
        for line in record.split(separator: "\n") {
            if line.hasPrefix("E:"), let equals = line.firstIndex(of: "=") {
                properties[String(line[line.index(line.startIndex, offsetBy: 2)..<equals])] =
                    String(line[line.index(after: equals)...])
            } else if line.hasPrefix("S:") {
                links.append("/dev/" + line.dropFirst(2))
            }
        }
        if properties["DEVNAME"] == nil, let uevent = readText("\(sysDirectory)/uevent") {
            for line in uevent.split(separator: "\n") where line.hasPrefix("DEVNAME=") {
                properties["DEVNAME"] = "/dev/" + line.dropFirst("DEVNAME=".count)
            }
        }
        let multipathWholeDisk =
            (properties["DEVNAME"]?.hasPrefix("/dev/dm-") ?? false)
            && properties["ID_PART_TABLE_TYPE"] != "gpt" && properties["DM_UUID"] != nil
        guard wholeDisk || multipathWholeDisk else { return nil }

        let byID = "/dev/disk/by-id/"
        var bus = properties["ID_BUS"]
        var deviceID: String?
        if bus == nil {
            if let uuid = properties["DM_UUID"] {
                deviceID = "dm-uuid-\(uuid)"
            } else if let zvol = links.first(where: { $0.hasPrefix("/dev/zvol") }) {
                deviceID = zvol
            } else if (realPath(sysDirectory) ?? "").contains("/nvme/") {
                bus = "nvme"
            } else {
                return nil
            }
        }
        if deviceID == nil, let bus {
            guard let link = links.first(where: { $0.hasPrefix("\(byID)\(bus)-") }) else { return nil }
            deviceID = String(link.dropFirst(byID.count))
        }
        guard let deviceID else { return nil }
        let physical =
            properties["ID_PATH"].flatMap { $0.isEmpty ? nil : $0 }
            ?? properties["ID_VDEV"].flatMap { $0.isEmpty ? nil : $0 }
            ?? links.first(where: { $0.hasPrefix("/dev/zvol") })
            ?? links.first(where: { $0.hasPrefix("/dev/disk/by-uuid") })
        return DiskIdentity(deviceID: deviceID, physicalPath: physical, enclosureSysfsPath: nil)
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = Glibc.realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func readText(_ path: String) -> String? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars.drop { $0 == " " || $0 == "\n" || $0 == "\t" }
        let trimmed = scalars.reversed().drop { $0 == " " || $0 == "\n" || $0 == "\t" }
        return String(String.UnicodeScalarView(trimmed.reversed()))
    }
}
