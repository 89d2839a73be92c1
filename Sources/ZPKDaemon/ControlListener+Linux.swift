// The listening socket of zpkd (the connections it accepts are ZPKControl's ControlConnection).
// Every call here blocks; callers run them on dedicated threads (`BlockingThread`), never on the
// cooperative pool.

#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SystemPackage
import ZPKControl

/// The listening socket of zpkd: owner-only from the moment it exists.
final class ControlListener: Sendable {
    let path: String
    private let descriptor: Mutex<Int32>
    /// Device and inode of the socket file we bound, so shutdown removes only our own file.
    private let identity: (dev: UInt64, ino: UInt64)?

    private init(path: String, descriptor: Int32, identity: (dev: UInt64, ino: UInt64)?) {
        self.path = path
        self.descriptor = Mutex(descriptor)
        self.identity = identity
    }

    deinit {
        closeAndRemove()
    }

    /// Binds and listens at `path`, mode 0600.
    ///
    /// A socket file that accepts a connection belongs to a live daemon: refused. One that
    /// refuses (ECONNREFUSED: its daemon died) is stale and replaced. A path that is not a
    /// socket is never removed.
    /// - Throws: `ControlError` `.daemonAlreadyRunning`, `.socketSetupFailed`.
    static func bind(path: String) throws(ControlError) -> ControlListener {
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw ControlError(
                    .socketSetupFailed,
                    "cannot listen on \(path): it exists and is not a socket; remove it or choose another --socket path")
            }
            if let probe = try? ControlConnection.connect(to: path) {
                probe.close()
                throw ControlError(
                    .daemonAlreadyRunning,
                    "cannot listen on \(path): another zpkd is already running there; stop it first "
                        + "(or give this one another --socket path)")
            }
            unlink(path)  // stale: its daemon is gone
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw setupFailure("socket", path) }
        // Owner-only from the start: the umask applies to the file bind creates, so there is no
        // moment at which another user could connect. fchmod on a socket does not reach the file.
        let previousMask = umask(0o177)
        let bound = (try? UnixAddress.with(path) { Glibc.bind(fd, $0, $1) }) ?? -1
        let bindErrno = errno
        umask(previousMask)
        guard bound == 0 else {
            Glibc.close(fd)
            errno = bindErrno
            throw setupFailure("bind", path)
        }
        guard chmod(path, 0o600) == 0, listen(fd, 64) == 0 else {
            let failure = setupFailure("listen", path)
            Glibc.close(fd)
            unlink(path)
            throw failure
        }
        var bound_ = stat()
        let identity = stat(path, &bound_) == 0 ? (UInt64(bound_.st_dev), UInt64(bound_.st_ino)) : nil
        return ControlListener(path: path, descriptor: fd, identity: identity)
    }

    private static func setupFailure(_ call: String, _ path: String) -> ControlError {
        let error = Errno(rawValue: errno)
        return ControlError(
            .socketSetupFailed, "cannot listen on \(path): \(call) failed: \(error); check that its directory exists "
                + "and is writable", cause: error)
    }

    /// Waits for the next connection; nil once ``shutdown()`` was called.
    func accept() -> ControlConnection? {
        let fd = descriptor.withLock { $0 }
        guard fd >= 0 else { return nil }
        while true {
            let connection = Glibc.accept(fd, nil, nil)
            if connection >= 0 {
                _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
                return ControlConnection(descriptor: connection)
            }
            switch errno {
            case EINTR, ECONNABORTED, EPROTO: continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                // Out of descriptors or memory: keep serving the connections we have.
                usleep(100_000)
                continue
            default: return nil
            }
        }
    }

    /// Wakes a blocked ``accept()`` (it returns nil) and refuses new connections.
    func shutdown() {
        descriptor.withLock { fd in if fd >= 0 { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) } }
    }

    /// Closes the socket and removes its file if it is still the one we bound.
    func closeAndRemove() {
        descriptor.withLock { fd in
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }
        var info = stat()
        if let identity, lstat(path, &info) == 0, UInt64(info.st_dev) == identity.dev, UInt64(info.st_ino) == identity.ino {
            unlink(path)
        }
    }
}
