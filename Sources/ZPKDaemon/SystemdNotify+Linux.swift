// sd_notify(3) without libsystemd: a unit with Type=notify hands its service a datagram
// socket in $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace); the service sends
// newline-separated assignments to it — "READY=1" once it serves, "STATUS=…" for
// `systemctl status`, "STOPPING=1" when it begins to stop. The protocol is documented in
// sd_notify(3) and is stable; no reply comes back. docs/daemon.md §0 "systemd".

#if canImport(Glibc)
import Glibc
#endif

/// Sends service state to systemd (`sd_notify`).
public enum SystemdNotifier {
    /// Sends `state` (e.g. `"READY=1\nSTATUS=serving"`) to `socketPath` (`$NOTIFY_SOCKET`).
    /// - Returns: `false` when no socket is given (not started by systemd) or the send failed.
    @discardableResult
    public static func notify(_ state: String, socketPath: String?) -> Bool {
        guard let socketPath, !socketPath.isEmpty else { return false }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }  // abstract namespace
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (path.first == 0 ? 0 : 1))
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                message.withUnsafeBytes { sendto(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), socketAddress, length) }
            }
        }
        return sent == message.count
    }
}
