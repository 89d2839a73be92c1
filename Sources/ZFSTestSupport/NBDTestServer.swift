// Real NBD servers for tests: Debian's `nbdkit` (file plugin, with its filters for faults) and
// `nbd-server`, started on a Unix socket in a test's temporary directory or on a free loopback
// port, and stopped (SIGTERM, then SIGKILL) when the object goes away. Installed by
// scripts/install-nbd; the tests that use them never skip.

import Foundation
import ZFSDevice

#if canImport(Glibc)
import Glibc
#endif

/// A running NBD server process serving files.
public final class NBDTestServer: @unchecked Sendable {
    // `@unchecked Sendable`: `pid` is the only mutable state; it is read and written with
    // `lock` held.
    public enum Kind: Sendable { case nbdkit, nbdServer }

    /// The URI of the server's (first) export.
    public let uri: String
    /// `host:port` (nbd-server) or the `nbd+unix:///?socket=` URI (nbdkit), for listing exports.
    public let server: String
    public let kind: Kind
    private let executable: String
    private let arguments: [String]
    private let readyPath: String?
    private let readyPort: UInt16?
    private let logPath: String
    private var pidFile: String? { kind == .nbdServer ? arguments.last : nil }
    private let lock = NSLock()
    private var pid: pid_t = 0

    /// `nbdkit` serving `file` on the Unix socket `directory/name.sock`.
    ///
    /// - Parameters:
    ///   - file: the backing file.
    ///   - directory: where the socket and the server's log go (a test's temporary directory).
    ///   - filters: nbdkit filters, outermost first (`["delay"]`, `["error"]`, `["log"]`).
    ///   - parameters: `key=value` parameters for the plugin and filters (`wdelay=2s`, …).
    public static func nbdkit(
        file: String, in directory: TemporaryDirectory, name: String = "nbdkit", filters: [String] = [],
        parameters: [String] = []
    ) throws -> NBDTestServer {
        let socket = directory.path("\(name).sock")
        var arguments = ["-f", "--exit-with-parent", "-U", socket]
        arguments += filters.map { "--filter=\($0)" }
        arguments += ["file", "file=\(file)"] + parameters
        let server = NBDTestServer(
            kind: .nbdkit, executable: try Self.locate("nbdkit"), arguments: arguments,
            uri: "nbd+unix:///?socket=\(socket)", server: "nbd+unix:///?socket=\(socket)", readyPath: socket,
            readyPort: nil, logPath: directory.path("\(name).log"))
        try server.start()
        return server
    }

    /// `nbdkit` serving `file` over TCP on a free port of 127.0.0.1 (one process: ``pause()``
    /// stalls every connection, with their bytes left in the sockets' queues).
    ///
    /// - Parameters: as ``nbdkit(file:in:name:filters:parameters:)``.
    public static func nbdkitTCP(
        file: String, in directory: TemporaryDirectory, name: String = "nbdkit-tcp", filters: [String] = [],
        parameters: [String] = []
    ) throws -> NBDTestServer {
        let executable = try Self.locate("nbdkit")
        return try onFreshPort { port in
            var arguments = ["-f", "--exit-with-parent", "-i", "127.0.0.1", "-p", String(port)]
            arguments += filters.map { "--filter=\($0)" }
            arguments += ["file", "file=\(file)"] + parameters
            let server = NBDTestServer(
                kind: .nbdkit, executable: executable, arguments: arguments,
                uri: "nbd://127.0.0.1:\(port)/", server: "127.0.0.1:\(port)", readyPath: nil, readyPort: port,
                logPath: directory.path("\(name).log"))
            try server.start()
            return server
        }
    }

    /// `nbd-server` serving `exports` (name, backing file) on a free port of 127.0.0.1, with
    /// export listing allowed.
    public static func nbdServer(
        exports: [(name: String, file: String)], in directory: TemporaryDirectory, name: String = "nbd-server"
    ) throws -> NBDTestServer {
        let executable = try Self.locate("nbd-server")
        let config = directory.path("\(name).conf")
        return try onFreshPort { port in
            var text = "[generic]\n    listenaddr = 127.0.0.1\n    port = \(port)\n    allowlist = true\n"
            for export in exports {
                text += "[\(export.name)]\n    exportname = \(export.file)\n    flush = true\n    fua = true\n"
            }
            try text.write(toFile: config, atomically: true, encoding: .utf8)
            // nbd-server daemonises (its `-d` mode serves one connection and exits); the pid file
            // says which process to stop.
            let server = NBDTestServer(
                kind: .nbdServer, executable: executable, arguments: ["-C", config, "-p", directory.path("\(name).pid")],
                uri: "nbd://127.0.0.1:\(port)/\(exports.first?.name ?? "")", server: "127.0.0.1:\(port)",
                readyPath: nil, readyPort: port, logPath: directory.path("\(name).log"))
            try server.start()
            return server
        }
    }

    /// Runs `start` on a free loopback port, and again on another one (up to three ports) when
    /// the server exited at start: between our check that a port is free and the server's bind,
    /// another test's server may take it, and then the server (nbd-server after it daemonised and
    /// wrote its pid file, so only its death tells) exits.
    private static func onFreshPort(_ start: (UInt16) throws -> NBDTestServer) throws -> NBDTestServer {
        var attempt = 1
        while true {
            do {
                return try start(try freeLoopbackPort())
            } catch let error as OpenZFSHarnessError where error.code == .spawnFailed && attempt < 3 {
                attempt += 1
            }
        }
    }

    private init(
        kind: Kind, executable: String, arguments: [String], uri: String, server: String, readyPath: String?,
        readyPort: UInt16?, logPath: String
    ) {
        self.kind = kind
        self.executable = executable
        self.arguments = arguments
        self.uri = uri
        self.server = server
        self.readyPath = readyPath
        self.readyPort = readyPort
        self.logPath = logPath
    }

    deinit { stop() }

    /// The URI of export `name` on this server.
    public func uri(export name: String) -> String { NBDBlockDevice.exportURI(server: server, name: name) }

    /// What the server wrote to stdout and stderr so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// How long `start()` waits for the server's first greeting: generous, for a loaded machine.
    static let startTimeout = Duration.seconds(60)

    /// Starts the server (again) and waits until it greets a connection (up to `startTimeout`).
    public func start() throws {
        if let readyPath { unlink(readyPath) }
        // Before the spawn: nbd-server may write its pid file before this thread runs again.
        if let pidFile { unlink(pidFile) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let environment = ProcessInfo.processInfo.environment.filter { $0.key == "PATH" || $0.key == "HOME" }
        switch OpenZFS.spawnInOwnProcessGroup(executable, arguments, environment: environment, actions: &actions) {
        case .success(let started):
            lock.withLock { pid = started }
        case .failure(let failure):
            throw OpenZFSHarnessError(.spawnFailed, "cannot start \(executable): \(failure.reason)")
        }
        let deadline = ContinuousClock.now + Self.startTimeout
        if let pidFile {
            var status: Int32 = 0
            let launcher = lock.withLock { pid }
            while waitpid(launcher, &status, 0) == -1 && errno == EINTR {}
            lock.withLock { pid = 0 }
            var daemon: pid_t = 0
            while ContinuousClock.now < deadline {
                if daemon == 0, let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                    let written = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
                {
                    daemon = written
                    lock.withLock { pid = written }
                }
                if daemon > 0 {
                    if Self.isGone(daemon) {
                        lock.withLock { pid = 0 }
                        // It logs to syslog, not to our log: say what we know.
                        throw OpenZFSHarnessError(
                            .spawnFailed, "\(executable) (pid \(daemon)) exited at start, before serving \(server) \(log)")
                    }
                    if greets(before: min(deadline, ContinuousClock.now + .seconds(1))) { return }
                }
                usleep(10_000)
            }
            let state = daemon > 0 ? Self.processState(daemon) : "no pid file"
            stop()
            throw OpenZFSHarnessError(
                .timedOut,
                "\(executable) did not greet a connection on \(server) within \(Self.startTimeout) (daemon: \(state)) \(log)")
        }
        while ContinuousClock.now < deadline {
            if greets(before: deadline) { return }
            var status: Int32 = 0
            let current = lock.withLock { pid }
            if waitpid(current, &status, WNOHANG) == current {
                lock.withLock { pid = 0 }
                throw OpenZFSHarnessError(.spawnFailed, "\(executable) exited at start (status \(status)): \(log)")
            }
            usleep(10_000)
        }
        let state = Self.processState(lock.withLock { pid })
        stop()
        throw OpenZFSHarnessError(
            .timedOut, "\(executable) did not greet a connection on \(server) within \(Self.startTimeout) (\(state)) \(log)")
    }

    /// Whether process `pid` (a daemon, not necessarily our child) has exited: no such process,
    /// or a zombie its new parent has not reaped yet.
    private static func isGone(_ pid: pid_t) -> Bool {
        if kill(pid, 0) == -1 && errno == ESRCH { return true }
        return processState(pid).hasPrefix("state Z")
    }

    /// The process's scheduler state from /proc (`state S`, `state Z`, …), for diagnostics.
    private static func processState(_ pid: pid_t) -> String {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")"), let state = stat[close...].dropFirst(2).first
        else { return "pid \(pid) gone" }
        return "state \(state), pid \(pid)"
    }

    /// Stalls the server (SIGSTOP): connections stay open, nothing is answered — a hung target.
    public func pause() {
        let current = lock.withLock { pid }
        if current > 0 { kill(kind == .nbdkit ? -current : current, SIGSTOP) }
    }

    /// Lets a paused server go on (SIGCONT).
    public func resume() {
        let current = lock.withLock { pid }
        if current > 0 { kill(kind == .nbdkit ? -current : current, SIGCONT) }
    }

    /// Stops the server: SIGTERM (to nbdkit's process group), SIGKILL after 1 s (nbdkit waits for its
    /// clients to hang up; a test's restart is a crash anyway) or 5 s (nbd-server).
    public func stop() {
        let current = lock.withLock { () -> pid_t in
            defer { pid = 0 }
            return pid
        }
        guard current > 0 else { return }
        kill(kind == .nbdkit ? -current : current, SIGCONT)
        if kind == .nbdServer {
            // A daemon, not our child: signal it and wait until it is gone.
            kill(current, SIGTERM)
            for _ in 0..<500 {
                if Self.isGone(current) { return }
                usleep(10_000)
            }
            kill(current, SIGKILL)
            return
        }
        kill(-current, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<100 {
            if waitpid(current, &status, WNOHANG) == current { return }
            usleep(10_000)
        }
        kill(-current, SIGKILL)
        while waitpid(current, &status, 0) == -1 && errno == EINTR {}
    }

    /// Whether the server greets a connection ("NBDMAGIC", the first bytes of every NBD
    /// handshake) before `deadline`. Accepting is not serving: nbd-server built with GnuTLS (as
    /// Debian's is) listens, then generates Diffie-Hellman parameters before its first accept,
    /// which took 40–900 ms here on an idle machine and over 10 s on a loaded one; a test that
    /// connected as soon as the port accepted then timed out in the handshake.
    private func greets(before deadline: ContinuousClock.Instant) -> Bool {
        let fd = connectToServer()
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var received: [UInt8] = []
        while received.count < 8 {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return false }
            var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let polled = poll(&ready, 1, Int32(min(left / .milliseconds(1), 1000).rounded(.up)))
            if polled < 0 && errno != EINTR { return false }
            if polled <= 0 { continue }
            var buffer = [UInt8](repeating: 0, count: 8 - received.count)
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { return false }
            received += buffer[0..<count]
        }
        return received == Array("NBDMAGIC".utf8)
    }

    /// A socket connected to the server's Unix socket or loopback port, or -1.
    private func connectToServer() -> Int32 {
        if let readyPath {
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(readyPath.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return -1 }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, b) in bytes.enumerated() { raw[i] = b }
            }
            return Self.connected(AF_UNIX, to: &address)
        }
        if let readyPort {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = readyPort.bigEndian
            address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            return Self.connected(AF_INET, to: &address)
        }
        return -1
    }

    private static func connected<Address>(_ family: Int32, to address: inout Address) -> Int32 {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        let succeeded = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<Address>.size)) == 0
            }
        }
        if succeeded { return fd }
        close(fd)
        return -1
    }

    /// A TCP port of 127.0.0.1 that nothing is bound to now, drawn below the kernel's ephemeral
    /// range (`ip_local_port_range`): a port from that range may be handed to any outgoing
    /// connection (a client of another test) before the server binds it.
    public static func freeLoopbackPort() throws -> UInt16 {
        let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
            .split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        let ephemeralStart = range?.first ?? 32768
        let candidates = ephemeralStart > 20_000 ? 10_000..<ephemeralStart : 40_000..<60_000
        for _ in 0..<200 {
            let port = UInt16(Int.random(in: candidates))
            if try isFree(port) { return port }
        }
        throw OpenZFSHarnessError(.io, "no free loopback port in \(candidates) after 200 tries")
    }

    /// Whether a socket can bind 127.0.0.1:`port` now.
    private static func isFree(_ port: UInt16) throws -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw OpenZFSHarnessError(.io, "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// The absolute path of `tool` (/usr/bin or /usr/sbin), or an error naming the install script.
    static func locate(_ tool: String) throws -> String {
        for directory in ["/usr/bin", "/usr/sbin", "/bin", "/sbin"] where access("\(directory)/\(tool)", X_OK) == 0 {
            return "\(directory)/\(tool)"
        }
        throw OpenZFSHarnessError(.spawnFailed, "\(tool) is not installed; run scripts/install-nbd")
    }
}
