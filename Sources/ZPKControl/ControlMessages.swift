// The shapes of the control protocol's messages (docs/daemon.md §2): a request as the daemon's
// handlers see it, a successful reply, and the `error` object of a failed one. The client
// (ControlClient) writes the first and reads the other two; zpkd does the opposite.

/// One request as a handler sees it.
public struct ControlRequest: Sendable {
    /// The operation (`"ping"`, `"object.put"`, …).
    public var operation: String
    /// The request's `args` object (empty when absent).
    public var arguments: [String: JSON]
    /// The request's binary payload (object bytes, a packed XDR config).
    public var payload: [UInt8]

    public init(operation: String, arguments: [String: JSON] = [:], payload: [UInt8] = []) {
        self.operation = operation
        self.arguments = arguments
        self.payload = payload
    }

    /// The string argument `name`.
    /// - Throws: ``ControlError`` `.badRequest` when it is missing or not a string.
    public func string(_ name: String) throws(ControlError) -> String {
        guard let value = arguments[name]?.stringValue else {
            throw ControlError(.badRequest, "request '\(operation)' needs a string argument '\(name)'")
        }
        return value
    }

    /// The optional string argument `name`.
    /// - Throws: ``ControlError`` `.badRequest` when it is present but not a string.
    public func optionalString(_ name: String) throws(ControlError) -> String? {
        guard let value = arguments[name], value != .null else { return nil }
        guard let string = value.stringValue else {
            throw ControlError(.badRequest, "request '\(operation)': argument '\(name)' must be a string")
        }
        return string
    }

    /// The boolean argument `name`, false when absent.
    /// - Throws: ``ControlError`` `.badRequest` when it is present but not a boolean.
    public func flag(_ name: String) throws(ControlError) -> Bool {
        guard let value = arguments[name], value != .null else { return false }
        guard let flag = value.boolValue else {
            throw ControlError(.badRequest, "request '\(operation)': argument '\(name)' must be true or false")
        }
        return flag
    }
}

/// A handler's successful answer: a `result` object and an optional payload.
public struct ControlReply: Sendable {
    public var result: [String: JSON]
    public var payload: [UInt8]

    public init(_ result: [String: JSON] = [:], payload: [UInt8] = []) {
        self.result = result
        self.payload = payload
    }
}

/// The `error` object of a failed reply: `{"error": {"code", "message", "exit"}}`.
public struct ControlErrorReply: Hashable, Sendable {
    /// A stable machine-readable code (`unknownPool`, `badRequest`, …).
    public var code: String
    /// What went wrong and what to do, for people.
    public var message: String
    /// The exit status `zpk` should end with: 1, or 3 when the pool is in use on another host.
    public var exit: Int32

    public init(code: String, message: String, exit: Int32) {
        self.code = code
        self.message = message
        self.exit = exit
    }

    /// The reply frame.
    public var frame: ControlFrame {
        ControlFrame(header: [
            "error": ["code": .string(code), "message": .string(message), "exit": .unsigned(UInt64(max(0, exit)))]
        ])
    }
}
