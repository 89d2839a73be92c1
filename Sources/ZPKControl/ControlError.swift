// The one public error of ZPKDaemon (STYLE §4): framing, sockets, and error replies from zpkd.

/// An error of the control protocol: a malformed frame, a socket that cannot be set up or
/// reached, or an error reply from `zpkd` (``Code-swift.struct/remote``).
public struct ControlError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as a value clients can switch on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: String, Hashable, Sendable {
            case truncatedFrame, frameTooLarge, badHeader, payloadTooLarge
            case daemonUnreachable, daemonAlreadyRunning, socketSetupFailed, connectionFailed
            case permissionDenied, badRequest, unknownOperation, remote
        }
        fileprivate let value: Value
        fileprivate init(_ value: Value) { self.value = value }

        /// The stream ended in the middle of a frame.
        public static let truncatedFrame = Code(.truncatedFrame)
        /// A header length of 0 or above ``ControlFrame/maximumHeaderByteCount``.
        public static let frameTooLarge = Code(.frameTooLarge)
        /// The header is not a UTF-8 JSON object, or its `payload_bytes` is not an integer.
        public static let badHeader = Code(.badHeader)
        /// `payload_bytes` above ``ControlFrame/maximumPayloadByteCount``.
        public static let payloadTooLarge = Code(.payloadTooLarge)
        /// No daemon answers on the socket (`connect` failed).
        public static let daemonUnreachable = Code(.daemonUnreachable)
        /// Another zpkd already answers on the socket.
        public static let daemonAlreadyRunning = Code(.daemonAlreadyRunning)
        /// The socket could not be created, bound or listened on.
        public static let socketSetupFailed = Code(.socketSetupFailed)
        /// A read or write on an established connection failed.
        public static let connectionFailed = Code(.connectionFailed)
        /// The peer is neither the daemon's user nor root.
        public static let permissionDenied = Code(.permissionDenied)
        /// A request whose arguments are missing or of the wrong type.
        public static let badRequest = Code(.badRequest)
        /// A request whose `op` the daemon does not know.
        public static let unknownOperation = Code(.unknownOperation)
        /// zpkd answered with an error reply; ``ControlError/remoteCode`` holds its code.
        public static let remote = Code(.remote)

        public var description: String { value.rawValue }
    }

    /// Where an error was thrown.
    public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
        public var fileID: String
        public var line: Int
        public var description: String { "\(fileID):\(line)" }
    }

    public var code: Code
    /// What went wrong and what to do.
    public var message: String
    /// For ``Code-swift.struct/remote``: the `code` of the error reply (e.g. `unknownPool`).
    public var remoteCode: String?
    /// The exit status the `zpk` command should end with (1, or 3 for a pool in use elsewhere).
    public var exitStatus: Int32
    /// The underlying error (an `Errno` with the syscall, a `DecodingError`), if any.
    public var cause: (any Error & Sendable)?
    public var location: SourceLocation

    public init(
        _ code: Code, _ message: String, remoteCode: String? = nil, exitStatus: Int32 = 1,
        cause: (any Error & Sendable)? = nil, fileID: String = #fileID, line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.remoteCode = remoteCode
        self.exitStatus = exitStatus
        self.cause = cause
        self.location = SourceLocation(fileID: fileID, line: line)
    }

    public var description: String { message }

    /// The message, the codes, the cause and the location, as a tree.
    public func detailedDescription() -> String {
        var lines = ["ControlError: \(code)", "├─ message: \(message)"]
        if let remoteCode { lines.append("├─ remote code: \(remoteCode)") }
        if let cause { lines.append("├─ cause: \(cause)") }
        lines.append("└─ location: \(location)")
        return lines.joined(separator: "\n")
    }
}
