// This host's hostid, found the way OpenZFS 2.1.11's userland finds it (`get_system_hostid`,
// `lib/libspl/os/linux/gethostid.c`; `spec/import-and-mmp.md` §0.8).

#if canImport(Glibc)
import Glibc
#endif

/// The system hostid as `zpool` computes it.
public enum SystemHostID {
    /// `ZFS_HOSTID` (any base, a test override), else `/proc/sys/kernel/spl/hostid` (hex, the
    /// SPL module's), else the first four bytes of `/etc/hostid` in native byte order; masked to
    /// 32 bits. 0 means "no hostid".
    ///
    /// - Parameter environment: the process environment (only `ZFS_HOSTID` is read).
    public static func current(environment: [String: String]) -> UInt64 {
        var hostID: UInt64
        if let text = environment["ZFS_HOSTID"] {
            hostID = PoolSelector.strtoull(text)
        } else {
            hostID = splHostID() ?? 0
        }
        if hostID == 0 {
            hostID = etcHostID() ?? 0
        }
        return hostID & PoolHealth.hostIDMask
    }

    /// `fscanf(f, "%lx")` of the SPL module's parameter.
    static func splHostID() -> UInt64? {
        guard let bytes = readFile("/proc/sys/kernel/spl/hostid", limit: 64) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self).drop { $0 == " " || $0 == "\t" || $0 == "\n" }
        let digits = text.prefix { $0.isHexDigit }
        return UInt64(digits, radix: 16)
    }

    static func etcHostID() -> UInt64? {
        guard let bytes = readFile("/etc/hostid", limit: 4), bytes.count == 4 else { return nil }
        let value = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        return UInt64(value)
    }

    private static func readFile(_ path: String, limit: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: limit)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, limit) }
        guard count > 0 else { return nil }
        return Array(buffer.prefix(count))
    }
}
