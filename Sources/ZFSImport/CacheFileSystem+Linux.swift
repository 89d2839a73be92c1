// The real system calls behind `CacheFileSystem` (Glibc). Every call retries on EINTR.

#if canImport(Glibc)
import Glibc
#endif

/// ``CacheFileSystem`` over the operating system's calls.
public struct PosixCacheFileSystem: CacheFileSystem {
    public init() {}

    public func status(_ path: String) throws(SystemCallFailure) -> CacheFileStatus? {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw SystemCallFailure("lstat", errno: errno)
        }
        let kind: CacheFileStatus.Kind
        switch info.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symbolicLink
        default: kind = .other
        }
        return CacheFileStatus(
            kind: kind, permissions: UInt32(info.st_mode & 0o7777), ownerID: info.st_uid, groupID: info.st_gid,
            sizeInBytes: UInt64(max(0, info.st_size)))
    }

    public func resolve(_ path: String) throws(SystemCallFailure) -> String {
        guard let resolved = realpath(path, nil) else { throw SystemCallFailure("realpath", errno: errno) }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    public func readFile(_ path: String) throws(SystemCallFailure) -> [UInt8] {
        let fd = try retrying("open") { open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) }
        defer { Glibc.close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SystemCallFailure("fstat", errno: errno) }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw SystemCallFailure("open", errno: EISDIR)
        default: throw SystemCallFailure("open", errno: EINVAL)
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(Int(max(0, info.st_size)))
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = try retrying("read") { chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return bytes
    }

    public func openDirectory(_ path: String) throws(SystemCallFailure) -> CacheFileHandle {
        CacheFileHandle(rawValue: try retrying("open") { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) })
    }

    public func lockExclusive(_ directory: CacheFileHandle) throws(SystemCallFailure) {
        _ = try retrying("flock") { flock(directory.rawValue, LOCK_EX) }
    }

    public func listDirectory(_ path: String) throws(SystemCallFailure) -> [String] {
        guard let stream = opendir(path) else { throw SystemCallFailure("opendir", errno: errno) }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public func createExclusive(
        _ path: String, permissions: UInt32, owner: (user: UInt32, group: UInt32)?
    ) throws(SystemCallFailure) -> CacheFileHandle {
        let fd = try retrying("open") { open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(permissions)) }
        // open() applied the umask; the file must have exactly these bits.
        guard fchmod(fd, mode_t(permissions)) == 0 else {
            let failure = SystemCallFailure("fchmod", errno: errno)
            Glibc.close(fd)
            Glibc.unlink(path)
            throw failure
        }
        if let owner { _ = fchown(fd, owner.user, owner.group) }
        return CacheFileHandle(rawValue: fd)
    }

    public func write(_ file: CacheFileHandle, _ bytes: [UInt8]) throws(SystemCallFailure) {
        var done = 0
        while done < bytes.count {
            let n = try retrying("write") {
                bytes.withUnsafeBytes { all in
                    let rest = UnsafeRawBufferPointer(rebasing: all[done...])
                    return Glibc.write(file.rawValue, rest.baseAddress, rest.count)
                }
            }
            guard n > 0 else { throw SystemCallFailure("write", errno: EIO) }
            done += n
        }
    }

    public func sync(_ file: CacheFileHandle) throws(SystemCallFailure) {
        _ = try retrying("fsync") { fsync(file.rawValue) }
    }

    public func close(_ file: CacheFileHandle) throws(SystemCallFailure) {
        // Never retry close: on Linux the descriptor is gone even when close reports EINTR.
        if Glibc.close(file.rawValue) != 0 && errno != EINTR {
            throw SystemCallFailure("close", errno: errno)
        }
    }

    public func rename(_ from: String, to: String) throws(SystemCallFailure) {
        _ = try retrying("rename") { Glibc.rename(from, to) }
    }

    public func unlink(_ path: String) throws(SystemCallFailure) {
        _ = try retrying("unlink") { Glibc.unlink(path) }
    }

    /// Runs a call until it does not fail with `EINTR`; a negative result throws its `errno`.
    private func retrying<T: BinaryInteger>(_ name: String, _ call: () -> T) throws(SystemCallFailure) -> T {
        while true {
            let result = call()
            if result >= 0 { return result }
            if errno == EINTR { continue }
            throw SystemCallFailure(name, errno: errno)
        }
    }
}
