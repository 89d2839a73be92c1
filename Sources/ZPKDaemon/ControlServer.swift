// The control server of zpkd: accepts connections on the Unix socket and dispatches each
// request through a table of handlers (docs/daemon.md §2–§4).
//
// Threads. `accept`, `read` and `write` block, so each runs off the cooperative pool: reads and
// writes on the package's worker threads (`BlockingIO`, which never makes a job wait behind a
// blocked one), the accept loop on a thread of its own for its whole life; the requests
// themselves are async handlers that call the async PoolHost API. Each connection is a child
// task of `run()`, so shutdown waits for them.
//
// A broken client affects only its own connection: a malformed frame gets an error reply and the
// connection is closed (framing cannot be trusted after it); a client that vanishes mid-reply
// costs a failed write (no SIGPIPE); no input can make the daemon trap.
//
// Shutdown (graceful or cancellation): the listener stops accepting, every connection stops
// reading — a request being handled still gets its reply — and the socket file is removed.

import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import ZFSDevice
import ZFSPool
import ZPKControl

#if canImport(Glibc)
import Glibc
#endif

/// What a handler can do besides answering: send `{"event": …}` frames before its reply.
public struct ControlRequestContext: Sendable {
    let sendEvent: @Sendable (ControlFrame) async -> Void
    /// Sends a progress event (`{"event":"progress","phase",…}`) to the client.
    ///
    /// - Parameters:
    ///   - phase: what is under way (`"activity-check"`).
    ///   - remaining: time left in the phase.
    ///   - total: the phase's whole length.
    ///   - extra: more members for the event object.
    public func progress(
        phase: String, remaining: Duration, total: Duration, extra: [String: JSON] = [:]
    ) async {
        var header = extra
        header["event"] = "progress"
        header["phase"] = .string(phase)
        header["remaining_ms"] = .unsigned(UInt64(max(0, remaining / .milliseconds(1))))
        header["total_ms"] = .unsigned(UInt64(max(0, total / .milliseconds(1))))
        await sendEvent(ControlFrame(header: header))
    }

    /// Sends any event object (it should carry an `"event"` member).
    public func event(_ header: [String: JSON]) async {
        await sendEvent(ControlFrame(header: header))
    }

    public init(sendEvent: @escaping @Sendable (ControlFrame) async -> Void) {
        self.sendEvent = sendEvent
    }
}

/// Handles one operation. Throw a `PoolError` or `ControlError` to answer with an error reply.
public typealias ControlHandler = @Sendable (ControlRequest, ControlRequestContext) async throws -> ControlReply

/// The control socket's server, run as a `Service` in zpkd's `ServiceGroup`.
public struct ControlServer: Service {
    /// Where and how to serve.
    public struct Configuration: Sendable {
        /// The socket path (created mode 0600; a live daemon there is an error; a stale file is replaced).
        public var socketPath: String
        /// Operation name → handler.
        public var handlers: [String: ControlHandler]
        /// Maps a thrown error to the `error` object of a reply (code, message, exit status).
        public var describeError: @Sendable (any Error) -> ControlErrorReply
        /// Called once the socket listens (zpkd prints "zpkd ready on PATH").
        public var onReady: @Sendable (String) -> Void
        /// uids allowed besides root; default: this process's effective uid.
        public var allowedUIDs: Set<UInt32>
        /// Connections served at once; one more gets a `busy` error reply and is closed, so
        /// clients that connect and stall cannot take every thread.
        public var maximumConnections: Int
        /// A connection on which no byte arrives for this long while the server waits for a
        /// request (or the rest of one) is closed, freeing its slot. Default 5 minutes: longer
        /// than any pause of `zpk` between connecting and sending (a device scan).
        public var idleTimeout: Duration
        public var logger: Logger

        public init(
            socketPath: String, handlers: [String: ControlHandler],
            describeError: @escaping @Sendable (any Error) -> ControlErrorReply = ControlErrorReply.init(describing:),
            onReady: @escaping @Sendable (String) -> Void = { _ in }, allowedUIDs: Set<UInt32>? = nil,
            maximumConnections: Int = 64, idleTimeout: Duration = .seconds(300), logger: Logger = Logger.current
        ) {
            self.maximumConnections = maximumConnections
            self.idleTimeout = idleTimeout
            self.socketPath = socketPath
            self.handlers = handlers
            self.describeError = describeError
            self.onReady = onReady
            self.allowedUIDs = allowedUIDs ?? [geteuid()]
            self.logger = logger
        }
    }

    public let configuration: Configuration
    private let listener: ControlListener

    /// Creates the socket and starts listening at once (connections wait in the backlog until
    /// ``run()``), so a daemon can refuse to start before it touches any pool.
    /// - Throws: `ControlError` `.daemonAlreadyRunning` when a live daemon answers on the
    ///   path, `.socketSetupFailed` when the socket cannot be created there.
    public init(configuration: Configuration) throws(ControlError) {
        self.configuration = configuration
        self.listener = try ControlListener.bind(path: configuration.socketPath)
    }

    /// Serves until graceful shutdown or cancellation, then removes the socket file.
    public func run() async throws {
        let path = configuration.socketPath
        let listener = self.listener
        let open = OpenConnections(limit: configuration.maximumConnections)
        let (connections, continuation) = AsyncStream.makeStream(of: ControlConnection.self)
        let acceptor = Thread {
            while let connection = listener.accept() { continuation.yield(connection) }
            continuation.finish()
        }
        acceptor.start()
        configuration.logger.info("control socket listening", metadata: ["socket.path": "\(path)"])
        configuration.onReady(path)
        let stop: @Sendable () -> Void = {
            listener.shutdown()
            open.shutdownAll()
        }
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withDiscardingTaskGroup { group in
                    for await connection in connections {
                        switch open.insert(connection) {
                        case .inserted:
                            break
                        case .closed:
                            connection.close()
                            continue
                        case .full:
                            group.addTask { await self.refuseBusy(connection) }
                            continue
                        }
                        group.addTask {
                            await self.serve(connection)
                            open.remove(connection)
                            connection.close()
                        }
                    }
                }
            } onGracefulShutdown: {
                stop()
            }
        } onCancel: {
            stop()
        }
        listener.closeAndRemove()
        configuration.logger.info("control socket closed", metadata: ["socket.path": "\(path)"])
    }

    /// Tells a connection over the limit to come back later, and closes it.
    func refuseBusy(_ connection: ControlConnection) async {
        let reply = ControlErrorReply(
            code: "busy",
            message: "zpkd is serving \(configuration.maximumConnections) connections already; try again when one "
                + "of them is done", exit: 1)
        try? await write(reply.frame, to: connection)
        connection.close()
    }

    /// Serves requests on one connection until the client closes it or sends a bad frame.
    func serve(_ connection: ControlConnection) async {
        let logger = configuration.logger
        let uid = connection.peerUID
        guard let uid, uid == 0 || configuration.allowedUIDs.contains(uid) else {
            logger.info("control connection refused", metadata: ["peer.uid": "\(uid.map(String.init) ?? "unknown")"])
            let reply = ControlErrorReply(
                code: ControlError.Code.permissionDenied.description,
                message: "permission denied: zpkd accepts requests only from its own user and root", exit: 1)
            try? await write(reply.frame, to: connection)
            return
        }
        connection.setReadTimeout(configuration.idleTimeout)
        while true {
            let frame: ControlFrame?
            do {
                frame = try await BlockingIO.run { () throws(ControlError) in try connection.readFrame() }
            } catch {
                logger.info("bad control frame", metadata: ["error": "\(error.message)"])
                try? await write(ControlErrorReply(describing: error).frame, to: connection)
                return
            }
            guard let frame else { return }
            let reply = await respond(to: frame, on: connection)
            do { try await write(reply, to: connection) } catch {
                logger.info("control reply not delivered", metadata: ["error": "\(error.message)"])
                return
            }
        }
    }

    /// The final reply frame for one request frame.
    func respond(to frame: ControlFrame, on connection: ControlConnection) async -> ControlFrame {
        guard let operation = frame.header["op"]?.stringValue else {
            return ControlErrorReply(
                describing: ControlError(.badRequest, "a request needs an \"op\" string (docs/daemon.md)")
            ).frame
        }
        guard let handler = configuration.handlers[operation] else {
            let known = configuration.handlers.keys.sorted().joined(separator: ", ")
            return ControlErrorReply(
                describing: ControlError(
                    .unknownOperation, "zpkd does not know the operation '\(operation)'; it knows: \(known)")
            ).frame
        }
        let arguments: [String: JSON]
        let args = frame.header["args"] ?? .null
        if args == .null {
            arguments = [:]
        } else if let members = args.objectValue {
            arguments = members
        } else {
            return ControlErrorReply(
                describing: ControlError(.badRequest, "request '\(operation)': \"args\" must be a JSON object")
            ).frame
        }
        let request = ControlRequest(operation: operation, arguments: arguments, payload: frame.payload)
        let context = ControlRequestContext { event in
            // A client that stopped listening does not stop the request; its final reply fails.
            try? await self.write(event, to: connection)
        }
        configuration.logger.debug("control request", metadata: ["request.op": "\(operation)"])
        do {
            let reply = try await handler(request, context)
            return ControlFrame(header: ["ok": true, "result": JSON(reply.result)], payload: reply.payload)
        } catch {
            return configuration.describeError(error).frame
        }
    }

    private func write(_ frame: ControlFrame, to connection: ControlConnection) async throws(ControlError) {
        try await BlockingIO.run { () throws(ControlError) in try connection.writeFrame(frame) }
    }
}

extension ControlErrorReply {
    /// A `ControlError` keeps its code and exit status; a `PoolError` gives its code, its
    /// message and ``exitStatus(for:)``; anything else is `internal`, exit 1.
    public init(describing error: any Error) {
        if let error = error as? ControlError {
            self.init(code: error.remoteCode ?? error.code.description, message: error.message, exit: error.exitStatus)
        } else if let error = error as? PoolError {
            self.init(code: error.code.description, message: error.message, exit: Self.exitStatus(for: error.code))
        } else {
            self.init(code: "internal", message: "\(error)", exit: 1)
        }
    }

    /// The `zpk` exit status for a pool error: 3 when the pool is in use on another host
    /// (`.poolInUse`: the multihost activity check or the claim saw another host's writes, or
    /// `zpk clear` found one), else 1.
    ///
    /// `.importRequiresForce` stays 1: it says the pool was *last used* by another host and not
    /// exported (zpool exits 1 there too, and `-f` overrides it).
    public static func exitStatus(for code: PoolError.Code) -> Int32 {
        code == .poolInUse ? 3 : 1
    }
}

/// The connections being served, so shutdown can stop their reads.
final class OpenConnections: Sendable {
    private struct State {
        var connections: [ObjectIdentifier: ControlConnection] = [:]
        var closed = false
    }
    private let state = Mutex(State())
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    enum Insertion { case inserted, closed, full }

    /// Adds a connection unless shutdown began or `limit` are open.
    func insert(_ connection: ControlConnection) -> Insertion {
        state.withLock { state in
            guard !state.closed else { return .closed }
            guard state.connections.count < limit else { return .full }
            state.connections[ObjectIdentifier(connection)] = connection
            return .inserted
        }
    }

    func remove(_ connection: ControlConnection) {
        state.withLock { _ = $0.connections.removeValue(forKey: ObjectIdentifier(connection)) }
    }

    func shutdownAll() {
        let connections = state.withLock { state in
            state.closed = true
            return Array(state.connections.values)
        }
        for connection in connections { connection.shutdownReading() }
    }
}
