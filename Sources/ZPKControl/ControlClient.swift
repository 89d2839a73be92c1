// The client side of the control protocol, used by `zpk`: one connection, requests in sequence,
// each answered by zero or more event frames and one final reply (docs/daemon.md §2).

/// A connection to zpkd. Every call blocks the calling thread (the `zpk` process's main thread).
public final class ControlClient: Sendable {
    /// The socket path this client is connected to.
    public let socketPath: String
    private let connection: ControlConnection

    /// Connects to zpkd.
    /// - Throws: ``ControlError`` `.daemonUnreachable`: "cannot reach zpkd at PATH (REASON):
    ///   start it with `zpkd --socket PATH`".
    public init(socketPath: String) throws(ControlError) {
        self.socketPath = socketPath
        self.connection = try ControlConnection.connect(to: socketPath)
    }

    /// Sends one request and waits for its reply, passing each event frame to `onEvent` as it comes.
    ///
    /// - Parameters:
    ///   - operation: the `op` (`"status"`, `"object.put"`, …).
    ///   - arguments: the `args` object.
    ///   - payload: bytes to send after the header.
    ///   - onEvent: called with each `{"event": …}` header before the reply.
    /// - Returns: the reply's `result` object and payload.
    /// - Throws: ``ControlError`` `.remote` for an error reply (with its `code` as
    ///   ``ControlError/remoteCode`` and its `exit`), `.connectionFailed`, `.truncatedFrame`,
    ///   `.badHeader` when the daemon breaks the protocol.
    public func call(
        _ operation: String, _ arguments: [String: JSON] = [:], payload: [UInt8] = [],
        onEvent: ([String: JSON]) -> Void = { _ in }
    ) throws(ControlError) -> ControlReply {
        do {
            try connection.writeFrame(
                ControlFrame(header: ["op": .string(operation), "args": JSON(arguments)], payload: payload))
        } catch {
            // zpkd may answer without reading the request (busy, permission denied) and close at
            // once; the write then fails with EPIPE, but its answer is still waiting to be read.
            guard let answer = try? connection.readFrame(), answer.header["error"] != nil else { throw error }
            try Self.throwRemoteError(answer, operation: operation)
        }
        while true {
            guard let frame = try connection.readFrame() else {
                throw ControlError(
                    .connectionFailed,
                    "zpkd at \(socketPath) closed the connection before answering '\(operation)'; see its log")
            }
            if frame.header["event"] != nil {
                onEvent(frame.header)
                continue
            }
            try Self.throwRemoteError(frame, operation: operation)
            guard frame.header["ok"]?.boolValue == true else {
                throw ControlError(
                    .badHeader, "zpkd at \(socketPath) sent a frame that is neither an event nor a reply")
            }
            return ControlReply(frame.header["result"]?.objectValue ?? [:], payload: frame.payload)
        }
    }

    /// Throws the error a reply frame carries, if it carries one.
    static func throwRemoteError(_ frame: ControlFrame, operation: String) throws(ControlError) {
        guard let error = frame.header["error"] else { return }
        let exit = error["exit"]?.uint64Value.map { Int32(clamping: $0) } ?? 1
        throw ControlError(
            .remote, error["message"]?.stringValue ?? "zpkd answered '\(operation)' with an error",
            remoteCode: error["code"]?.stringValue ?? "internal", exitStatus: exit == 0 ? 1 : exit)
    }

    /// Closes the connection.
    public func close() {
        connection.close()
    }
}
