// zpkd as a process: its socket (mode 0600, one daemon per socket, stale files replaced), ping,
// malformed frames that cost the sender its connection and nothing else, and graceful shutdown.

import Foundation
import Testing
import ZFSTestSupport
@testable import ZPKDaemon
@testable import ZPKControl

#if canImport(Glibc)
import Glibc
#endif

@Suite(.offTheCooperativePool, .serialized) struct DaemonServerTests {
    @Test func socketIsOwnerOnlyAndPingAnswers() throws {
        let workspace = try Workspace("zpkd-socket")
        let daemon = try workspace.startDaemon()
        var info = stat()
        #expect(lstat(workspace.socket, &info) == 0)
        #expect(info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_mode & 0o777 == 0o600)
        let client = try ControlClient(socketPath: workspace.socket)
        let reply = try client.call("ping")
        #expect(reply.result["hostid"] == .unsigned(0x1a2b_3c4d))
        #expect(reply.result["hostname"] == "test-host")
        #expect(reply.result["pid"] == .unsigned(UInt64(daemon.process.processIdentifier)))
        #expect(reply.result["version"] == .string(DaemonIdentity.version))
        // Several requests on one connection.
        #expect(try client.call("list").result["pools"] == .array([]))
        client.close()
        #expect(daemon.stop() == 0)
        #expect(access(workspace.socket, F_OK) != 0, "the socket file is removed at shutdown")
        #expect(daemon.log_.contains("zpkd ready on \(workspace.socket)\n"))
    }

    @Test func secondDaemonOnTheSameSocketIsRefused() throws {
        let workspace = try Workspace("zpkd-second")
        let first = try workspace.startDaemon()
        #expect {
            _ = try workspace.startDaemon()
        } throws: { error in
            guard let failure = error as? DaemonProcess.StartFailure else { return false }
            return failure.status == 1
                && failure.log.contains(
                    "zpkd: cannot listen on \(workspace.socket): another zpkd is already running there; stop it first "
                        + "(or give this one another --socket path)")
        }
        #expect(try ControlClient(socketPath: workspace.socket).call("ping").result["pid"]
            == .unsigned(UInt64(first.process.processIdentifier)))
        #expect(first.stop() == 0)
    }

    @Test func staleSocketFileIsReplaced() throws {
        let workspace = try Workspace("zpkd-stale")
        // A socket file whose owner is gone: bound, never listened on, closed.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        _ = try UnixAddress.with(workspace.socket) { bind(fd, $0, $1) }
        close(fd)
        #expect(access(workspace.socket, F_OK) == 0)
        let daemon = try workspace.startDaemon()
        #expect(try ControlClient(socketPath: workspace.socket).call("ping").result["hostname"] == "test-host")
        #expect(daemon.stop() == 0)
    }

    @Test func aPathThatIsNotASocketIsNeverRemoved() throws {
        let workspace = try Workspace("zpkd-notsocket")
        _ = FileManager.default.createFile(atPath: workspace.socket, contents: Array("keep".utf8).withUnsafeBytes { Data($0) })
        #expect(throws: DaemonProcess.StartFailure.self) { _ = try workspace.startDaemon() }
        #expect(FileManager.default.contents(atPath: workspace.socket) == Data("keep".utf8))
    }

    /// Reads the error reply a malformed frame gets, then the end of the connection.
    func errorCode(after bytes: [UInt8], closeWriting: Bool = false, socket: String) throws -> (String?, Bool) {
        let connection = try ControlConnection.connect(to: socket)
        try connection.writeAll(bytes)
        if closeWriting { connection.shutdownWriting() }
        let reply = try connection.readFrame()
        let closed = (try? connection.readFrame()) == nil
        return (reply?.header["error"]?["code"]?.stringValue, closed)
    }

    @Test func malformedFramesGetAnErrorReplyAndTheDaemonLives() throws {
        let workspace = try Workspace("zpkd-malformed")
        let daemon = try workspace.startDaemon()
        let socket = workspace.socket
        #expect(try errorCode(after: [0xff, 0xff, 0xff, 0xff], socket: socket) == ("frameTooLarge", true))
        #expect(try errorCode(after: [0, 0, 0, 0], socket: socket) == ("frameTooLarge", true))
        #expect(try errorCode(after: rawFrame(header: "{nope"), socket: socket) == ("badHeader", true))
        #expect(
            try errorCode(after: rawFrame(header: #"{"op":"object.put","payload_bytes":99999999}"#), socket: socket)
                == ("payloadTooLarge", true))
        // Truncated: a length prefix of 100 and 10 bytes of header, then end of stream.
        #expect(try errorCode(after: [0, 0, 0, 100] + Array("{\"op\":\"pi".utf8), closeWriting: true, socket: socket)
            == ("truncatedFrame", true))
        // A client that connects and leaves at once.
        try ControlConnection.connect(to: socket).close()
        // Well-formed frames with bad requests keep the connection usable.
        let client = try ControlClient(socketPath: socket)
        #expect {
            _ = try client.call("no.such.op")
        } throws: { error in
            (error as? ControlError)?.remoteCode == "unknownOperation"
        }
        #expect {
            _ = try client.call("status", ["pool": .unsigned(5)])
        } throws: { error in
            (error as? ControlError)?.remoteCode == "badRequest"
        }
        #expect {
            _ = try client.call("import")
        } throws: { error in
            (error as? ControlError)?.message == "request 'import' needs the pool's config as a packed nvlist payload"
        }
        #expect {
            _ = try client.call("import", payload: [1, 2, 3])
        } throws: { error in
            (error as? ControlError)?.remoteCode == "badRequest"
        }
        #expect(try client.call("ping").result["hostname"] == "test-host")
        // `args` must be an object (or absent, or null); the connection stays usable.
        let raw = try ControlConnection.connect(to: socket)
        defer { raw.close() }
        try raw.writeAll(rawFrame(header: #"{"op":"ping","args":[1]}"#))
        #expect(try raw.readFrame()?.header["error"]?["code"] == "badRequest")
        try raw.writeAll(rawFrame(header: #"{"op":"ping","args":null}"#))
        #expect(try raw.readFrame()?.header["ok"] == true)
        #expect(daemon.process.isRunning)
        #expect(daemon.stop() == 0)
    }
}

/// Pings `socket` with a new client until one is served (blocking, on a thread of its own):
/// the time that took, or `nil` if none was within `limit`.
func waitUntilServed(_ socket: String, within limit: Duration, retryingEvery pause: useconds_t) -> Duration? {
    let start = ContinuousClock.now
    while ContinuousClock.now - start < limit {
        if (try? ControlClient(socketPath: socket).call("ping")) != nil { return ContinuousClock.now - start }
        usleep(pause)
    }
    return nil
}

@Suite(.offTheCooperativePool) struct ConnectionLimitTests {
    /// Clients that connect and stall take at most `maximumConnections`; the next one is told
    /// zpkd is busy, and once the stalled ones leave, requests are served again.
    @Test func stalledClientsCannotTakeEveryThread() async throws {
        let workspace = try Workspace("zpkd-limit")
        let socket = workspace.socket
        let server = try ControlServer(
            configuration: .init(
                socketPath: socket, handlers: ["ping": { _, _ in ControlReply(["ok": true]) }], maximumConnections: 3))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask(executorPreference: DedicatedThreadExecutor.shared) { try await server.run() }
            defer { group.cancelAll() }
            try await onThread {
                var stalled: [ControlClient] = []
                for _ in 0..<3 {
                    let client = try ControlClient(socketPath: socket)
                    _ = try client.call("ping")  // served: the connection is counted
                    stalled.append(client)
                }
                #expect {
                    _ = try ControlClient(socketPath: socket).call("ping")
                } throws: { error in
                    (error as? ControlError)?.remoteCode == "busy"
                }
                stalled[0].close()
                // The server notices the close when its read returns; retry briefly.
                #expect(waitUntilServed(socket, within: .seconds(2), retryingEvery: 5_000) != nil)
                stalled.forEach { $0.close() }
            }
        }
        withExtendedLifetime(workspace) {}
    }
}

@Suite(.offTheCooperativePool) struct IdleTimeoutTests {
    /// A client that connects and sends nothing loses its slot after the idle timeout: with one
    /// slot, the next client is busy at first and served once the server closed the idle one.
    @Test func anIdleConnectionIsClosedAndItsSlotFreed() async throws {
        let workspace = try Workspace("zpkd-idle")
        let socket = workspace.socket
        let server = try ControlServer(
            configuration: .init(
                socketPath: socket, handlers: ["ping": { _, _ in ControlReply(["ok": true]) }], maximumConnections: 1,
                idleTimeout: .milliseconds(300)))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask(executorPreference: DedicatedThreadExecutor.shared) { try await server.run() }
            defer { group.cancelAll() }
            try await onThread {
                let idle = try ControlClient(socketPath: socket)
                _ = try idle.call("ping")  // served: the connection holds the only slot
                #expect {
                    _ = try ControlClient(socketPath: socket).call("ping")
                } throws: { error in
                    (error as? ControlError)?.remoteCode == "busy"
                }
                let waited = waitUntilServed(socket, within: .seconds(5), retryingEvery: 20_000)
                #expect(waited != nil, "the idle connection was never closed")
                if let waited {
                    #expect(waited >= .milliseconds(200), "served after \(waited): the slot was free before the timeout")
                }
                // The idle client's own next request finds its connection closed.
                #expect(throws: ControlError.self) { _ = try idle.call("ping") }
                idle.close()
            }
        }
        withExtendedLifetime(workspace) {}
    }
}

@Suite(.offTheCooperativePool) struct PeerCredentialTests {
    /// Even with the socket opened to everyone (chmod 0666, a mistake the daemon never makes),
    /// SO_PEERCRED keeps other users out: uid 65534 gets a permissionDenied reply.
    @Test func anotherUserIsRefusedBySOPeercred() async throws {
        try #require(geteuid() == 0, "needs root to run a client as another user (setpriv)")
        let workspace = try Workspace("zpkd-peer")
        let socket = workspace.socket
        let server = try ControlServer(
            configuration: .init(socketPath: socket, handlers: ["list": { _, _ in ControlReply(["pools": .array([])]) }]))
        #expect(chmod(workspace.path, 0o755) == 0 && chmod(socket, 0o666) == 0)
        let zpk = try Executable.path("zpk")
        try #require(access(zpk, X_OK) == 0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask(executorPreference: DedicatedThreadExecutor.shared) { try await server.run() }
            defer { group.cancelAll() }
            let stranger = try await onThread {
                try OpenZFS.run(
                    "/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", zpk, "list", "--socket", socket],
                    timeout: .seconds(30))
            }
            #expect(stranger.triple == (1, "", "permission denied: zpkd accepts requests only from its own user and root\n"))
            let owner = try await onThread { try OpenZFS.run(zpk, ["list", "--socket", socket], timeout: .seconds(30)) }
            #expect(owner.triple == (0, "no pools available\n", ""))
        }
    }
}

/// A frame of `text` as its header, byte for byte (a malformed header stays malformed).
private func rawFrame(header text: String) -> [UInt8] {
    let json = Array(text.utf8)
    let n = UInt32(json.count)
    return [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + json
}
