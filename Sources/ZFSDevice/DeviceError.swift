import SystemPackage

/// The one error type of `ZFSDevice`: every ``BlockDevice`` operation throws it, typed.
///
/// Shaped like NIOFS's `FileSystemError`: a ``Code`` that can grow without breaking clients, a
/// ``message`` for a person that names the device, the offset and the reason, the ``path`` of the
/// device, and — when a system call failed — that call's name (``systemCall``) and its `Errno`
/// (``cause``), plus the source ``location`` that raised the error.
///
/// ```swift
/// do {
///     let label = try device.read(count: 262_144, atAbsoluteOffset: 0)
/// } catch let error as DeviceError where error.code == .shortRead {
///     print(error)   // cannot read 262144 bytes at offset 0x0 of /tmp/a.img: only 4096 bytes remain …
/// }
/// ```
public struct DeviceError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of problem was found.
    ///
    /// A struct wrapping a private enum, so that codes can be added without breaking clients that
    /// switch over them.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case notFound
            case permissionDenied
            case notADevice
            case shortRead
            case outOfRange
            case readOnly
            case closed
            case ioError
            case invalidArgument
            case timedOut
            case disconnected
            case fenced
            case unknown
        }
        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// Nothing exists at the path, or the path is a symbolic link whose target does not exist.
        ///
        /// The corresponding C error is `ENOENT` (or `ENOTDIR`, `ENXIO`, `ENODEV`).
        public static let notFound = Code(.notFound)
        /// The caller may not open or use the device in the requested mode.
        ///
        /// The corresponding C error is `EACCES`, `EPERM` or `EROFS`.
        public static let permissionDenied = Code(.permissionDenied)
        /// The path names something that is neither a regular file nor a block device: a
        /// directory, a FIFO, a socket or a character device. Such a path is refused before it is
        /// opened, so refusing it never blocks.
        public static let notADevice = Code(.notADevice)
        /// The device ended before all the requested bytes were read.
        public static let shortRead = Code(.shortRead)
        /// A write would extend past the end of the device; devices never grow.
        public static let outOfRange = Code(.outOfRange)
        /// A write was attempted on a device opened read-only.
        public static let readOnly = Code(.readOnly)
        /// The device was used after ``FileBlockDevice/close()``.
        public static let closed = Code(.closed)
        /// The device reported an I/O error, or made no progress.
        ///
        /// The corresponding C error is `EIO`.
        public static let ioError = Code(.ioError)
        /// An argument cannot be valid: a negative count, an offset beyond `off_t`, a path the
        /// kernel rejects.
        ///
        /// The corresponding C error is `EINVAL` (or `ELOOP`, `ENAMETOOLONG`).
        public static let invalidArgument = Code(.invalidArgument)
        /// A request to a network device (``NBDBlockDevice``) did not complete within its timeout.
        /// The connection it used was closed; the next request reconnects. A write that timed out
        /// may still land on the server.
        ///
        /// The corresponding C error is `ETIMEDOUT`.
        public static let timedOut = Code(.timedOut)
        /// A network device (``NBDBlockDevice``) lost its connection to the server, or cannot
        /// reconnect yet (reconnects back off after failures).
        ///
        /// The corresponding C error is `ENOTCONN` (or `ECONNRESET`, `EPIPE`, `ECONNREFUSED`).
        public static let disconnected = Code(.disconnected)
        /// The device was fenced (``BlockDevice/fence()``): its pool was suspended, so no write
        /// of this host may reach it until the pool is resumed; and for a network device
        /// (``NBDBlockDevice``), a request whose connection the fence aborted.
        ///
        /// The corresponding C error is `EIO` (OpenZFS fails the I/O of a suspended pool).
        public static let fenced = Code(.fenced)
        /// A system call failed in a way no other code describes (`EMFILE`, `ENOSPC`, `EBUSY`, …);
        /// ``DeviceError/cause`` holds its `Errno`.
        public static let unknown = Code(.unknown)

        public var description: String {
            switch wrapped {
            case .notFound: "not found"
            case .permissionDenied: "permission denied"
            case .notADevice: "not a device"
            case .shortRead: "short read"
            case .outOfRange: "out of range"
            case .readOnly: "read-only"
            case .closed: "closed"
            case .ioError: "I/O error"
            case .invalidArgument: "invalid argument"
            case .timedOut: "timed out"
            case .disconnected: "disconnected"
            case .fenced: "fenced"
            case .unknown: "unknown"
            }
        }
    }

    /// Where in this package's (or an implementer's) source the error was raised.
    public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
        /// The `#fileID` of the throwing code.
        public var fileID: String
        /// The `#line` of the throwing code.
        public var line: Int

        public init(fileID: String, line: Int) {
            self.fileID = fileID
            self.line = line
        }

        public var description: String { "\(fileID):\(line)" }
    }

    /// What kind of problem was found.
    public var code: Code
    /// A sentence for a person: what went wrong, on which device, at which offset, and why.
    public var message: String
    /// The path of the device, as the caller named it.
    public var path: String
    /// The byte offset of the failed operation, when there is one.
    public var offset: UInt64?
    /// The name of the system call that failed (`"open"`, `"pread"`, `"pwrite"`, `"fsync"`, …),
    /// or of the libnbd call (`"nbd_aio_pread"`, …), when one did.
    public var systemCall: String?
    /// The error number the failed system call returned.
    public var cause: Errno?
    /// Where the error was raised.
    public var location: SourceLocation

    /// Creates an error. ``BlockDevice`` implementations outside this module use this.
    ///
    /// - Parameters:
    ///   - code: What kind of problem was found.
    ///   - message: A sentence naming the device, the offset and the reason.
    ///   - path: The device's path.
    ///   - offset: The byte offset of the failed operation, if any.
    ///   - systemCall: The name of the system call that failed, if one did.
    ///   - cause: The error number that system call returned.
    ///   - fileID: The `#fileID` of the code raising the error; leave the default.
    ///   - line: The `#line` of the code raising the error; leave the default.
    public init(
        code: Code,
        message: String,
        path: String,
        offset: UInt64? = nil,
        systemCall: String? = nil,
        cause: Errno? = nil,
        fileID: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.path = path
        self.offset = offset
        self.systemCall = systemCall
        self.cause = cause
        self.location = SourceLocation(fileID: fileID, line: line)
    }

    public var description: String { message }

    /// A multi-line description with every field, for logs and bug reports.
    ///
    /// ```
    /// DeviceError: short read
    /// ├─ message: cannot read 262144 bytes at offset 0x7fc0000 of /tmp/a.img: …
    /// ├─ path: /tmp/a.img
    /// ├─ offset: 0x7fc0000
    /// └─ location: ZFSDevice/FileBlockDevice.swift:210
    /// ```
    public func detailedDescription() -> String {
        var lines = ["message: \(message)", "path: \(path)"]
        if let offset { lines.append("offset: \(hexadecimal(offset))") }
        if let systemCall { lines.append("system call: \(systemCall)") }
        if let cause { lines.append("cause: \(cause) (errno \(cause.rawValue))") }
        lines.append("location: \(location)")
        var result = "DeviceError: \(code)"
        for (index, line) in lines.enumerated() {
            result += index == lines.count - 1 ? "\n└─ " : "\n├─ "
            result += line
        }
        return result
    }
}

// MARK: - Errors that every BlockDevice reports the same way

extension DeviceError {
    /// The error for a read that reached the end of the device before `requested` bytes.
    ///
    /// Every ``BlockDevice`` reports a short read with this message, so that callers and tests see
    /// the same text whatever the backing store:
    /// `"cannot read 262144 bytes at offset 0x7fc0000 of /tmp/a.img: only 131072 bytes remain (the device is 134086656 bytes)"`.
    ///
    /// - Parameters:
    ///   - path: The device's path.
    ///   - offset: Where the read began.
    ///   - requested: How many bytes the caller asked for.
    ///   - available: How many bytes the device held from `offset` on (fewer than `requested`).
    ///   - deviceSize: The size of the device, in bytes.
    ///   - fileID: The `#fileID` of the code raising the error; leave the default.
    ///   - line: The `#line` of the code raising the error; leave the default.
    public static func shortRead(
        path: String,
        offset: UInt64,
        requested: Int,
        available: Int,
        deviceSize: UInt64,
        fileID: String = #fileID,
        line: Int = #line
    ) -> DeviceError {
        let reason =
            if offset >= deviceSize {
                "the offset is at or past the end of the device (the device is \(deviceSize) bytes)"
            } else {
                "only \(available) bytes remain (the device is \(deviceSize) bytes)"
            }
        return DeviceError(
            code: .shortRead,
            message: "cannot read \(requested) bytes at offset \(hexadecimal(offset)) of \(path): \(reason)",
            path: path,
            offset: offset,
            fileID: fileID,
            line: line
        )
    }

    /// The error for a write that would extend past the end of the device.
    ///
    /// - Parameters:
    ///   - path: The device's path.
    ///   - offset: Where the write would begin.
    ///   - count: How many bytes the caller wanted to write.
    ///   - deviceSize: The size of the device, in bytes.
    ///   - fileID: The `#fileID` of the code raising the error; leave the default.
    ///   - line: The `#line` of the code raising the error; leave the default.
    public static func writePastEnd(
        path: String,
        offset: UInt64,
        count: Int,
        deviceSize: UInt64,
        fileID: String = #fileID,
        line: Int = #line
    ) -> DeviceError {
        DeviceError(
            code: .outOfRange,
            message: "cannot write \(count) bytes at offset \(hexadecimal(offset)) of \(path): "
                + "the write would end past the end of the device (the device is \(deviceSize) bytes), "
                + "and a device never grows",
            path: path,
            offset: offset,
            fileID: fileID,
            line: line
        )
    }
}

/// `0x7fc0000`: offsets in messages are hexadecimal, as `zdb` prints them.
func hexadecimal(_ value: UInt64) -> String {
    "0x" + String(value, radix: 16)
}
