/// Opens a leaf by the path a user, a label or a cache file names: a file or block device path
/// (``FileBlockDevice``), or an NBD URI (``NBDBlockDevice``).
///
/// Every place that opens a leaf by path goes through ``open(path:mode:)``, so that a pool whose
/// labels name `nbd://host/export` is created, scanned, imported and checked like any other.
public enum DeviceOpener {
    /// Opens `path`.
    ///
    /// - Parameters:
    ///   - path: a file-system path, or an NBD URI (`nbd://HOST[:PORT]/EXPORT`,
    ///     `nbd+unix:///EXPORT?socket=PATH`; ``NBDBlockDevice/isNBDURI(_:)``).
    ///   - mode: read-only or read-write.
    /// - Returns: the device; close it with ``BlockDevice/close()`` (or drop it).
    /// - Throws: what ``FileBlockDevice/init(path:mode:)`` or
    ///   ``NBDBlockDevice/init(uri:mode:options:)`` throws.
    public static func open(path: String, mode: FileBlockDevice.Mode = .readOnly) throws(DeviceError) -> any BlockDevice {
        if NBDBlockDevice.isNBDURI(path) {
            return try NBDBlockDevice(uri: path, mode: mode)
        }
        return try FileBlockDevice(path: path, mode: mode)
    }

    /// Whether `path` names a network device (an NBD URI) rather than a file-system path:
    /// such a path is not resolved, `stat`ed or made absolute.
    public static func isNetworkPath(_ path: String) -> Bool {
        NBDBlockDevice.isNBDURI(path)
    }
}
