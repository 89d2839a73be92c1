// Unix stream sockets for the control protocol: one connection (either end; zpkd's listening
// socket is ZPKDaemon's ControlListener). Every call here blocks; callers run them on worker
// threads (`BlockingIO`) or a thread of their own, never on the cooperative pool.

#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SystemPackage

/// One end of a control connection: blocking frame reads and writes over a Unix stream socket.
public final class ControlConnection: Sendable {
    /// The file descriptor; -1 once closed. Guarded by the Mutex so `close` and `shutdown`
    /// from another thread never race a reuse of the number.
    private let descriptor: Mutex<Int32>

    /// Takes ownership of a connected socket (zpkd's listener hands it accepted ones).
    package init(descriptor: Int32) {
        self.descriptor = Mutex(descriptor)
    }

    deinit {
        close()
    }

    /// Connects to the socket at `path`.
    /// - Throws: ``ControlError`` `.daemonUnreachable` naming the path, the errno and how to start zpkd.
    public static func connect(to path: String) throws(ControlError) -> ControlConnection {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw ControlError(.daemonUnreachable, "cannot reach zpkd at \(path) (socket: \(Errno(rawValue: errno)))")
        }
        let connection = ControlConnection(descriptor: fd)
        let result: Int32
        do { result = try UnixAddress.with(path) { Glibc.connect(fd, $0, $1) } } catch {
            throw ControlError(.daemonUnreachable, "cannot reach zpkd at \(path) (\(error.message))")
        }
        guard result == 0 else {
            let error = Errno(rawValue: errno)
            throw ControlError(
                .daemonUnreachable,
                "cannot reach zpkd at \(path) (\(error)): start it with `zpkd --socket \(path)`", cause: error)
        }
        return connection
    }

    /// The uid of the process at the other end (`SO_PEERCRED`), or nil if the kernel does not say.
    public var peerUID: UInt32? {
        descriptor.withLock { fd -> UInt32? in
            // struct ucred { pid_t pid; uid_t uid; gid_t gid; } — three 32-bit fields on Linux.
            var credentials: (Int32, UInt32, UInt32) = (0, 0, 0)
            var length = socklen_t(MemoryLayout<(Int32, UInt32, UInt32)>.size)
            let result = withUnsafeMutableBytes(of: &credentials) {
                getsockopt(fd, SOL_SOCKET, SO_PEERCRED, $0.baseAddress, &length)
            }
            guard result == 0, length == 12 else { return nil }
            return credentials.1
        }
    }

    private var fd: Int32 { descriptor.withLock { $0 } }

    /// Makes every later read fail (`EAGAIN`, reported as `.connectionFailed`) when no byte
    /// arrives for `timeout` (`SO_RCVTIMEO`). Returns false if the kernel refused it.
    @discardableResult
    public func setReadTimeout(_ timeout: Duration) -> Bool {
        let (seconds, attoseconds) = timeout.components
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        return descriptor.withLock { fd in
            fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size)) == 0
        }
    }

    /// Reads exactly `count` bytes; nil when the stream ends before the first byte.
    func readExactly(_ count: Int) throws(ControlError) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var filled = 0
        let fd = self.fd
        while filled < count {
            let result = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, count - filled) }
            if result < 0 {
                if errno == EINTR { continue }
                let error = Errno(rawValue: errno)
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    throw ControlError(
                        .connectionFailed, "control connection idle for longer than its read timeout; closed", cause: error)
                }
                throw ControlError(.connectionFailed, "control connection read failed: \(error)", cause: error)
            }
            if result == 0 {
                if filled == 0 { return nil }
                throw ControlError(
                    .truncatedFrame, "control connection closed after \(filled) of \(count) bytes of a frame")
            }
            filled += result
        }
        return buffer
    }

    /// Reads one frame; nil when the peer closed the connection between frames.
    /// - Throws: ``ControlError`` `.truncatedFrame`, `.frameTooLarge`, `.badHeader`,
    ///   `.payloadTooLarge`, `.connectionFailed`.
    public func readFrame() throws(ControlError) -> ControlFrame? {
        guard let prefix = try readExactly(ControlFrame.lengthPrefixByteCount) else { return nil }
        let headerCount = try ControlFrame.headerByteCount(prefix: prefix)
        guard let headerBytes = try readExactly(headerCount) else {
            throw ControlError(.truncatedFrame, "control connection closed after a frame's length prefix")
        }
        let (header, payloadCount) = try ControlFrame.parseHeader(headerBytes)
        var payload: [UInt8] = []
        if payloadCount > 0 {
            guard let bytes = try readExactly(payloadCount) else {
                throw ControlError(
                    .truncatedFrame, "control connection closed before a payload of \(payloadCount) bytes")
            }
            payload = bytes
        }
        return ControlFrame(header: header, payload: payload)
    }

    /// Writes one frame (all of it). Never raises SIGPIPE: a vanished peer is an error.
    /// - Throws: ``ControlError`` `.connectionFailed`.
    public func writeFrame(_ frame: ControlFrame) throws(ControlError) {
        try writeAll(frame.encode())
    }

    func writeAll(_ bytes: [UInt8]) throws(ControlError) {
        var offset = 0
        let fd = self.fd
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if result < 0 {
                if errno == EINTR { continue }
                let error = Errno(rawValue: errno)
                throw ControlError(.connectionFailed, "control connection write failed: \(error)", cause: error)
            }
            offset += result
        }
    }

    /// Stops further reads: a read blocked in another thread returns end-of-stream. Replies
    /// can still be written.
    public func shutdownReading() {
        descriptor.withLock { fd in if fd >= 0 { _ = Glibc.shutdown(fd, Int32(SHUT_RD)) } }
    }

    /// Ends the writing side: the peer reads end-of-stream after what was sent.
    public func shutdownWriting() {
        descriptor.withLock { fd in if fd >= 0 { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) } }
    }

    /// Closes the descriptor (idempotent).
    public func close() {
        descriptor.withLock { fd in
            if fd >= 0 { _ = Glibc.close(fd) }
            fd = -1
        }
    }
}

/// `struct sockaddr_un` for a path.
package enum UnixAddress {
    package static func with(
        _ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32
    ) throws(ControlError) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity, !bytes.contains(0) else {
            throw ControlError(
                .socketSetupFailed,
                "socket path '\(path)' is empty or longer than \(capacity - 1) bytes; choose a shorter path")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }
}
