import Synchronization
import SystemPackage

/// A ``BlockDevice`` backed by a block device node (`/dev/sdb`, `/dev/loop0`) or a regular file
/// (a file vdev), through one open file descriptor.
///
/// ```swift
/// let disk = try FileBlockDevice(path: "/dev/sdb")                  // read-only
/// let label0 = try disk.read(count: 262_144, atAbsoluteOffset: 0)
/// ```
///
/// ## Opening
///
/// Opening never creates or truncates a file, and never blocks. The path is `stat`ed first and
/// only a regular file or a block device is opened; a directory, FIFO, socket or character device
/// is refused with ``DeviceError/Code/notADevice`` without being opened, so scanning a directory
/// full of FIFOs cannot hang. The open itself adds `O_NONBLOCK` (cleared again once the
/// descriptor is confirmed to be a file or block device by `fstat`), in case the path is replaced
/// by a FIFO between the `stat` and the `open`. A symbolic link is followed; a dangling one is
/// ``DeviceError/Code/notFound``.
///
/// ## Uncached I/O
///
/// ``readUncached(into:atAbsoluteOffset:)`` and ``writeUncached(from:atAbsoluteOffset:)`` on a
/// block device go through a second descriptor, opened with `O_DIRECT` (same access mode) at the
/// first such call and checked with `fstat` to be the same device, in whole logical blocks
/// (`ioctl(BLKSSZGET)`) through an aligned bounce buffer; an unaligned write reads its edge blocks
/// first. If `O_DIRECT` cannot be opened they throw, naming the reason — they never fall back to
/// buffered I/O on a block device. On a regular file they are the ordinary calls: one machine's
/// page cache is coherent, and `O_DIRECT` is not available on every file system.
///
/// ## Sendability
///
/// The class is `Sendable` without `@unchecked`: the descriptor, path, mode, size and kind are
/// immutable `let`s fixed at open, and `pread`/`pwrite`/`fsync` on one descriptor are safe from
/// many threads because they take explicit offsets and share no file position. The only mutable
/// state is whether the descriptor is open and how many operations are using it, kept in a
/// `Mutex`, and the lazily opened `O_DIRECT` descriptor, in another `Mutex`. Each operation
/// registers itself under the first lock before its system call, and
/// ``close()`` closes the descriptor only when no operation is using it (otherwise the last one
/// to finish closes it). So a concurrent `close()` can never make an in-flight `pread` hit a
/// descriptor number the process has since reused for another file.
public final class FileBlockDevice: BlockDevice {
    /// How a device is opened.
    public enum Mode: Hashable, Sendable {
        /// Reads only; writes throw ``DeviceError/Code/readOnly``. The default.
        ///
        /// The corresponding C constant is `O_RDONLY`.
        case readOnly
        /// Reads and writes.
        ///
        /// The corresponding C constant is `O_RDWR`.
        case readWrite

        var accessMode: FileDescriptor.AccessMode {
            switch self {
            case .readOnly: .readOnly
            case .readWrite: .readWrite
            }
        }
    }

    public let path: String
    /// The size of the device in bytes, measured once when it was opened.
    public let sizeInBytes: UInt64
    public let isBlockDevice: Bool
    /// How the device was opened.
    public let mode: Mode

    let descriptor: FileDescriptor
    let usage = Mutex(Usage())
    /// The second, `O_DIRECT` descriptor of the uncached path, opened on first use.
    let direct = Mutex(DirectDescriptor.unresolved)
    /// Tests only: take the `O_DIRECT` path on a regular file too.
    let forcesDirectIO: Bool

    /// Opens a block device or regular file.
    ///
    /// - Parameters:
    ///   - path: The path of a block device node or a regular file. Symbolic links are followed.
    ///   - mode: ``Mode/readOnly`` (the default) or ``Mode/readWrite``.
    /// - Throws: ``DeviceError`` with code ``DeviceError/Code/notFound`` if nothing exists at
    ///   `path` or it is a dangling symbolic link, ``DeviceError/Code/notADevice`` for a
    ///   directory, FIFO, socket or character device, ``DeviceError/Code/permissionDenied`` if the
    ///   caller may not open it in `mode`, ``DeviceError/Code/ioError`` if the kernel cannot report
    ///   a block device's size.
    ///
    /// The corresponding C functions are `stat(2)`, `open(2)`, `fstat(2)` and, for a block device,
    /// `ioctl(BLKGETSIZE64)`.
    public convenience init(path: String, mode: Mode = .readOnly) throws(DeviceError) {
        try self.init(path: path, mode: mode, forceDirectIO: false)
    }

    /// Opens a device, optionally taking the `O_DIRECT` path of the uncached calls even for a
    /// regular file — so that tests without a block device exercise it. Production code uses
    /// ``init(path:mode:)``.
    package init(path: String, mode: Mode, forceDirectIO: Bool) throws(DeviceError) {
        let filePath = FilePath(path)

        // 1. Look before opening: opening a FIFO for reading blocks until a writer appears, and
        //    opening a character device can have side effects (a tape rewinds).
        let status: Stat
        do {
            status = try filePath.stat()
        } catch {
            throw Self.openFailure(path: path, systemCall: "stat", errno: error)
        }
        guard let kind = Kind(status.type) else {
            throw Self.notADevice(path: path, type: status.type)
        }

        // 2. Open. No `.create` and no `.truncate`: opening never makes or shortens a file.
        let descriptor: FileDescriptor
        do {
            descriptor = try FileDescriptor.open(
                filePath,
                mode.accessMode,
                options: [.nonBlocking, .closeOnExec, .noControllingTerminal]
            )
        } catch {
            throw Self.openFailure(path: path, systemCall: "open", errno: asErrno(error))
        }

        // 3. Confirm what was opened is what was looked at, then measure it.
        switch Self.measure(descriptor, path: path, expecting: kind) {
        case .success(let size):
            self.sizeInBytes = size
        case .failure(let error):
            _ = try? descriptor.close()
            throw error
        }
        self.path = path
        self.mode = mode
        self.descriptor = descriptor
        self.isBlockDevice = kind == .blockDevice
        self.forcesDirectIO = forceDirectIO

        // 4. A shared block device may have been written by another host since this host last
        //    read it: drop this host's cached pages of it, so that what the open reads (labels,
        //    uberblocks, the MOS) is what is on the disk now.
        if kind == .blockDevice { descriptor.dropCachedPages() }
    }

    deinit {
        let shouldClose = usage.withLock { usage in usage.beginClose() == .closeNow }
        if shouldClose {
            // Nobody can observe an error here; callers who care call `close()` themselves.
            closeDirectDescriptor()
            _ = try? descriptor.close()
        }
    }

    /// Closes the device. Later operations throw ``DeviceError/Code/closed``; closing again does
    /// nothing.
    ///
    /// If other threads are in the middle of operations on the device, the descriptor is closed
    /// when the last of them finishes, and any error from that close is discarded.
    ///
    /// - Throws: ``DeviceError`` if the kernel reports an error while closing (for example `EIO`
    ///   from a network file system). The descriptor is released either way.
    ///
    /// The corresponding C function is `close(2)`.
    public func close() throws(DeviceError) {
        guard usage.withLock({ $0.beginClose() }) == .closeNow else { return }
        closeDirectDescriptor()
        do {
            try descriptor.close()
        } catch {
            let errno = asErrno(error)
            throw DeviceError(
                code: DeviceError.Code(errno: errno),
                message: "closing \(path) failed: \(errno); data written since the last flush may be lost",
                path: path,
                systemCall: "close",
                cause: errno
            )
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        let start = try fileOffset(offset, count: buffer.count, verb: "read")
        guard buffer.count > 0 else { return }
        try withDescriptor(verb: "read", count: buffer.count, offset: offset) { descriptor throws(DeviceError) in
            let got: Int
            do throws(PartialTransfer) {
                got = try descriptor.readFully(into: buffer, at: start)
            } catch {
                throw DeviceError(
                    code: DeviceError.Code(errno: error.errno),
                    message: "cannot read \(buffer.count) bytes at offset \(hexadecimal(offset)) of \(path): "
                        + "pread failed after \(error.done) bytes: \(error.errno)",
                    path: path,
                    offset: offset,
                    systemCall: "pread",
                    cause: error.errno
                )
            }
            guard got == buffer.count else {
                throw DeviceError.shortRead(
                    path: path,
                    offset: offset,
                    requested: buffer.count,
                    available: got,
                    deviceSize: sizeInBytes
                )
            }
        }
    }

    public func write(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        let start = try checkWritable(count: buffer.count, offset: offset)
        guard buffer.count > 0 else { return }
        try withDescriptor(verb: "write", count: buffer.count, offset: offset) { descriptor throws(DeviceError) in
            do throws(PartialTransfer) {
                try descriptor.writeFully(buffer, at: start)
            } catch {
                guard !error.madeNoProgress else {
                    throw DeviceError(
                        code: .ioError,
                        message: "cannot write \(buffer.count) bytes at offset \(hexadecimal(offset)) of \(path): "
                            + "pwrite made no progress after \(error.done) bytes landed",
                        path: path,
                        offset: offset,
                        systemCall: "pwrite"
                    )
                }
                throw DeviceError(
                    code: DeviceError.Code(errno: error.errno),
                    message: "cannot write \(buffer.count) bytes at offset \(hexadecimal(offset)) of \(path): "
                        + "pwrite failed after \(error.done) bytes landed: \(error.errno)",
                    path: path,
                    offset: offset,
                    systemCall: "pwrite",
                    cause: error.errno
                )
            }
        }
    }

    public func flush() throws(DeviceError) {
        try withDescriptor(verb: "flush", count: 0, offset: nil) { descriptor throws(DeviceError) in
            if case .failure(let errno) = descriptor.synchronize() {
                throw DeviceError(
                    code: DeviceError.Code(errno: errno),
                    message: "cannot flush \(path): fsync failed: \(errno); "
                        + "writes since the last successful flush may not be on stable storage",
                    path: path,
                    systemCall: "fsync",
                    cause: errno
                )
            }
        }
    }
}

// MARK: - Opening

extension FileBlockDevice {
    /// The two kinds of file this type opens.
    enum Kind: Equatable {
        case regularFile
        case blockDevice

        init?(_ type: FileType) {
            switch type {
            case .regular: self = .regularFile
            case .blockSpecial: self = .blockDevice
            default: return nil
            }
        }
    }

    /// `fstat`s a freshly opened descriptor, checks it is still the kind `stat` saw, clears
    /// `O_NONBLOCK` and returns the size in bytes.
    private static func measure(
        _ descriptor: FileDescriptor,
        path: String,
        expecting kind: Kind
    ) -> Result<UInt64, DeviceError> {
        let status: Stat
        do {
            status = try descriptor.stat()
        } catch {
            return .failure(openFailure(path: path, systemCall: "fstat", errno: error))
        }
        guard Kind(status.type) == kind else {
            // The path was swapped between `stat` and `open`.
            return .failure(notADevice(path: path, type: status.type))
        }
        if case .failure(let errno) = descriptor.clearNonBlocking() {
            return .failure(openFailure(path: path, systemCall: "fcntl", errno: errno))
        }
        switch kind {
        case .regularFile:
            return .success(UInt64(clamping: status.size))
        case .blockDevice:
            return descriptor.blockDeviceSizeInBytes().mapError { errno in
                DeviceError(
                    code: DeviceError.Code(errno: errno),
                    message: "cannot open \(path): the kernel did not report the block device's size "
                        + "(ioctl BLKGETSIZE64 failed: \(errno))",
                    path: path,
                    systemCall: "ioctl",
                    cause: errno
                )
            }
        }
    }

    private static func notADevice(path: String, type: FileType) -> DeviceError {
        let what =
            switch type {
            case .directory: "a directory"
            case .fifo: "a FIFO (named pipe)"
            case .socket: "a socket"
            case .characterSpecial: "a character device"
            case .symbolicLink: "a symbolic link"
            default: "not a regular file (file type 0o\(String(type.rawValue, radix: 8)))"
            }
        return DeviceError(
            code: .notADevice,
            message: "cannot open \(path): it is \(what), not a block device or a regular file",
            path: path
        )
    }

    private static func openFailure(path: String, systemCall: String, errno: Errno) -> DeviceError {
        let reason: String
        if errno == .noSuchFileOrDirectory, let target = danglingSymbolicLinkTarget(path) {
            reason = "it is a symbolic link to '\(target)', which does not exist"
        } else {
            switch errno {
            case .noSuchFileOrDirectory: reason = "no such file or directory"
            case .permissionDenied, .notPermitted: reason = "permission denied (\(systemCall): \(errno))"
            case .readOnlyFileSystem: reason = "it is on a read-only file system; open it read-only"
            default: reason = "\(systemCall) failed: \(errno)"
            }
        }
        return DeviceError(
            code: DeviceError.Code(errno: errno),
            message: "cannot open \(path): \(reason)",
            path: path,
            systemCall: systemCall,
            cause: errno
        )
    }

    /// The target of `path` if `path` itself is a symbolic link (which, since `stat` just failed
    /// with `ENOENT`, dangles).
    private static func danglingSymbolicLinkTarget(_ path: String) -> String? {
        let filePath = FilePath(path)
        guard let status = try? filePath.stat(followTargetSymlink: false), status.type == .symbolicLink else {
            return nil
        }
        return readSymbolicLink(path) ?? "?"
    }
}

// MARK: - Operations

extension FileBlockDevice {
    /// The open/closed state of the descriptor and the number of operations using it.
    struct Usage: Sendable {
        enum CloseDecision: Equatable {
            case closeNow
            case alreadyClosing
            case deferred
        }

        private var isClosing = false
        private var isClosed = false
        private var operationsInFlight = 0

        /// Registers an operation; `false` if the device is closed or closing.
        mutating func beginOperation() -> Bool {
            guard !isClosing else { return false }
            operationsInFlight += 1
            return true
        }

        /// Unregisters an operation; `true` if it was the last one and a close is waiting.
        mutating func endOperation() -> Bool {
            operationsInFlight -= 1
            guard isClosing, !isClosed, operationsInFlight == 0 else { return false }
            isClosed = true
            return true
        }

        mutating func beginClose() -> CloseDecision {
            guard !isClosing else { return .alreadyClosing }
            isClosing = true
            guard operationsInFlight == 0 else { return .deferred }
            isClosed = true
            return .closeNow
        }
    }

    /// Runs `body` with the descriptor, holding it open for the duration.
    func withDescriptor(
        verb: String,
        count: Int,
        offset: UInt64?,
        _ body: (FileDescriptor) throws(DeviceError) -> Void
    ) throws(DeviceError) {
        guard usage.withLock({ $0.beginOperation() }) else {
            let what = offset.map { "\(verb) \(count) bytes at offset \(hexadecimal($0)) of" } ?? verb
            throw DeviceError(
                code: .closed,
                message: "cannot \(what) \(path): the device has been closed",
                path: path,
                offset: offset
            )
        }
        defer {
            if usage.withLock({ $0.endOperation() }) {
                closeDirectDescriptor()
                _ = try? descriptor.close()
            }
        }
        try body(descriptor)
    }

    /// Refuses a write of `count` bytes at `offset` to a read-only device or past its end;
    /// returns `offset` as an `off_t`.
    @discardableResult
    func checkWritable(count: Int, offset: UInt64) throws(DeviceError) -> Int64 {
        guard mode == .readWrite else {
            throw DeviceError(
                code: .readOnly,
                message: "cannot write \(count) bytes at offset \(hexadecimal(offset)) of \(path): "
                    + "it was opened read-only; open it with mode .readWrite to write",
                path: path,
                offset: offset
            )
        }
        let start = try fileOffset(offset, count: count, verb: "write")
        guard offset + UInt64(count) <= sizeInBytes else {
            throw DeviceError.writePastEnd(path: path, offset: offset, count: count, deviceSize: sizeInBytes)
        }
        return start
    }

    /// `offset` as an `off_t`, checking that `offset + count` fits too.
    func fileOffset(_ offset: UInt64, count: Int, verb: String) throws(DeviceError) -> Int64 {
        guard offset <= UInt64(Int64.max), UInt64(count) <= UInt64(Int64.max) - offset else {
            throw DeviceError(
                code: .invalidArgument,
                message: "cannot \(verb) \(count) bytes at offset \(hexadecimal(offset)) of \(path): "
                    + "the range does not fit in a 63-bit file offset",
                path: path,
                offset: offset
            )
        }
        return Int64(offset)
    }
}

// MARK: - Errno

extension DeviceError.Code {
    /// The code for a system call's `errno`.
    init(errno: Errno) {
        switch errno {
        case .noSuchFileOrDirectory, .notDirectory, .noSuchAddressOrDevice, .operationNotSupportedByDevice:
            self = .notFound
        case .permissionDenied, .notPermitted, .readOnlyFileSystem:
            self = .permissionDenied
        case .ioError:
            self = .ioError
        case .invalidArgument, .tooManySymbolicLinkLevels, .fileNameTooLong:
            self = .invalidArgument
        default:
            self = .unknown
        }
    }
}

/// SystemPackage's untyped `throws` only ever throws `Errno`; this recovers it.
func asErrno(_ error: any Error) -> Errno {
    (error as? Errno) ?? .ioError
}

// MARK: - Whole positioned transfers

/// How far a positioned transfer got before it stopped.
struct PartialTransfer: Error {
    /// Bytes moved before the stop.
    var done: Int
    /// The error (`EIO` when `pwrite` returned 0).
    var errno: Errno
    /// `pwrite` returned 0: no error, but no progress either.
    var madeNoProgress = false
}

extension FileDescriptor {
    /// `pread`s at `offset` until `buffer` is full or the file ends; returns the bytes read.
    func readFully(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(PartialTransfer) -> Int {
        var done = 0
        while done < buffer.count {
            let got: Int
            do {
                got = try read(
                    fromAbsoluteOffset: offset + Int64(done), into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]),
                    retryOnInterrupt: true)
            } catch {
                throw PartialTransfer(done: done, errno: asErrno(error))
            }
            if got == 0 { break }
            done += got
        }
        return done
    }

    /// `pwrite`s all of `buffer` at `offset`. Not SystemPackage's `writeAll(toAbsoluteOffset:)`:
    /// it forgets how many bytes landed before an error, which is exactly what a caller needs to
    /// know about a torn write, and it would spin forever if `pwrite` ever returned 0.
    func writeFully(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws(PartialTransfer) {
        var done = 0
        while done < buffer.count {
            let wrote: Int
            do {
                wrote = try write(
                    toAbsoluteOffset: offset + Int64(done), UnsafeRawBufferPointer(rebasing: buffer[done...]),
                    retryOnInterrupt: true)
            } catch {
                throw PartialTransfer(done: done, errno: asErrno(error))
            }
            guard wrote > 0 else { throw PartialTransfer(done: done, errno: .ioError, madeNoProgress: true) }
            done += wrote
        }
    }
}
