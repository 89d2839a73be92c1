import Synchronization
import SystemPackage
import ZFSDevice

/// A `BlockDevice` held in memory, with fault injection and a call trace, for tests.
///
/// It behaves like `FileBlockDevice` on a healthy disk — exact-length reads, `.shortRead` at the
/// end with the same message, `.outOfRange` for writes past the end — until told to fail:
///
/// ```swift
/// let disk = InMemoryBlockDevice.sparse(size: 1 << 40)          // 1 TiB, nothing allocated
/// disk.inject(.readError(0..<262_144), times: 1)                  // label 0 reads fail once
/// #expect(throws: DeviceError.self) { try disk.read(count: 512, atAbsoluteOffset: 0) }
/// _ = try disk.read(count: 512, atAbsoluteOffset: 0)             // the fault is spent
/// #expect(disk.calls == [.read(offset: 0, count: 512), .read(offset: 0, count: 512)])
/// ```
///
/// Every call is recorded in ``calls`` before faults are applied, so a trace shows failed
/// attempts too (swift-system's `MockTestCase` style). ``bytes(in:)`` and ``setBytes(_:at:)``
/// inspect and prepare the contents without being recorded or faulted.
///
/// Storage is sparse: 64 KiB chunks are allocated on first write and unwritten bytes read as
/// zero, so a multi-terabyte device costs only what a test writes.
///
/// Sendable because all mutable state (contents, faults, trace) is inside one `Mutex`.
public final class InMemoryBlockDevice: BlockDevice {
    /// One operation the device was asked to do, in the order asked.
    public enum Call: Hashable, Sendable, CustomStringConvertible {
        /// `read(into:atAbsoluteOffset:)` (or `read(count:atAbsoluteOffset:)`).
        case read(offset: UInt64, count: Int)
        /// `write(from:atAbsoluteOffset:)` (or `write(_:atAbsoluteOffset:)`).
        case write(offset: UInt64, count: Int)
        /// `readUncached(into:atAbsoluteOffset:)` (also through the `uncached` view).
        case readUncached(offset: UInt64, count: Int)
        /// `writeUncached(from:atAbsoluteOffset:)` (also through the `uncached` view).
        case writeUncached(offset: UInt64, count: Int)
        /// `flush()`.
        case flush

        /// Whether the call is a write, cached or not.
        public var isWrite: Bool {
            switch self {
            case .write, .writeUncached: true
            case .read, .readUncached, .flush: false
            }
        }

        /// Whether the call is a read, cached or not.
        public var isRead: Bool {
            switch self {
            case .read, .readUncached: true
            case .write, .writeUncached, .flush: false
            }
        }

        public var description: String {
            switch self {
            case .readUncached(let offset, let count):
                "readUncached(offset: 0x\(String(offset, radix: 16)), count: \(count))"
            case .writeUncached(let offset, let count):
                "writeUncached(offset: 0x\(String(offset, radix: 16)), count: \(count))"
            case .read(let offset, let count): "read(offset: 0x\(String(offset, radix: 16)), count: \(count))"
            case .write(let offset, let count): "write(offset: 0x\(String(offset, radix: 16)), count: \(count))"
            case .flush: "flush"
            }
        }
    }

    /// A failure to inject. A fault applies to every matching call until spent or removed.
    public enum Fault: Hashable, Sendable {
        /// Reads that overlap the byte range fail with `EIO` (code `.ioError`); nothing is read.
        case readError(Range<UInt64>)
        /// Writes that overlap the byte range fail with `EIO` (code `.ioError`); nothing lands.
        case writeError(Range<UInt64>)
        /// The device behaves as if it ended at `endingAt`: a read reaching past it gets the bytes
        /// before it and then throws `.shortRead`, as a truncated disk would.
        case shortRead(endingAt: UInt64)
        /// Writes that overlap the byte range are torn: only their first `landing` bytes reach the
        /// device, then the write fails with `EIO` (code `.ioError`).
        case tornWrite(Range<UInt64>, landing: Int)
        /// `flush()` fails with `EIO` (code `.ioError`).
        case flushError
    }

    public let path: String
    public let sizeInBytes: UInt64
    public let isBlockDevice: Bool

    private let state: Mutex<State>

    /// Creates a device of `size` bytes, all zero, storing nothing until written.
    ///
    /// - Parameters:
    ///   - size: The size of the device in bytes.
    ///   - path: The path errors and traces name.
    ///   - isBlockDevice: What ``isBlockDevice`` reports.
    public init(size: UInt64, path: String = "/dev/inmemory0", isBlockDevice: Bool = true) {
        self.path = path
        self.sizeInBytes = size
        self.isBlockDevice = isBlockDevice
        self.state = Mutex(State())
    }

    /// Creates a device holding exactly `contents`.
    ///
    /// - Complexity: O(`contents.count`).
    public convenience init(contents: [UInt8], path: String = "/dev/inmemory0", isBlockDevice: Bool = true) {
        self.init(size: UInt64(contents.count), path: path, isBlockDevice: isBlockDevice)
        setBytes(contents, at: 0)
    }

    /// A device of `size` zero bytes that allocates memory only for what is written.
    public static func sparse(size: UInt64, path: String = "/dev/inmemory0") -> InMemoryBlockDevice {
        InMemoryBlockDevice(size: size, path: path)
    }

    // MARK: Inspection (not recorded, not faulted)

    /// Every call so far, oldest first.
    public var calls: [Call] {
        state.withLock { $0.calls }
    }

    /// Forgets the recorded calls, e.g. after a test's setup.
    public func removeAllCalls() {
        state.withLock { $0.calls.removeAll() }
    }

    /// The bytes in `range`, as they are now.
    ///
    /// - Precondition: `range` lies within the device (a programmer error in a test otherwise).
    /// - Complexity: O(`range.count`).
    public func bytes(in range: Range<UInt64>) -> [UInt8] {
        precondition(range.upperBound <= sizeInBytes, "\(range) is outside \(path) (\(sizeInBytes) bytes)")
        var result = [UInt8](repeating: 0, count: Int(range.upperBound - range.lowerBound))
        result.withUnsafeMutableBytes { buffer in
            state.withLock { $0.storage.copy(from: range.lowerBound, into: buffer) }
        }
        return result
    }

    /// Replaces bytes at `offset`, bypassing faults and the trace (test setup, or "another host
    /// wrote this").
    ///
    /// - Precondition: the bytes lie within the device.
    /// - Complexity: O(`bytes.count`).
    public func setBytes(_ bytes: [UInt8], at offset: UInt64) {
        precondition(
            offset <= sizeInBytes && UInt64(bytes.count) <= sizeInBytes - offset,
            "\(bytes.count) bytes at \(offset) is outside \(path) (\(sizeInBytes) bytes)"
        )
        bytes.withUnsafeBytes { buffer in
            state.withLock { $0.storage.store(buffer, at: offset) }
        }
    }

    // MARK: Faults

    /// Adds a fault.
    ///
    /// - Parameters:
    ///   - fault: What should fail.
    ///   - times: How many matching calls it affects before it is spent; `nil` (the default)
    ///     means every matching call until ``removeAllFaults()``.
    public func inject(_ fault: Fault, times: Int? = nil) {
        precondition(times.map { $0 > 0 } ?? true, "a fault must fire at least once")
        state.withLock { $0.faults.append(ArmedFault(fault: fault, remaining: times)) }
    }

    /// Removes every fault; the device is healthy again.
    public func removeAllFaults() {
        state.withLock { $0.faults.removeAll() }
    }

    // MARK: BlockDevice

    public func read(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        try read(into: buffer, atAbsoluteOffset: offset, recording: .read(offset: offset, count: buffer.count))
    }

    /// Memory has no page cache: the same bytes and the same faults as
    /// ``read(into:atAbsoluteOffset:)``, recorded as ``Call/readUncached(offset:count:)``.
    public func readUncached(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64)
        throws(DeviceError)
    {
        try read(into: buffer, atAbsoluteOffset: offset, recording: .readUncached(offset: offset, count: buffer.count))
    }

    public func write(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        try write(from: buffer, atAbsoluteOffset: offset, recording: .write(offset: offset, count: buffer.count))
    }

    /// Memory has no page cache: the same effect and the same faults as
    /// ``write(from:atAbsoluteOffset:)``, recorded as ``Call/writeUncached(offset:count:)``.
    public func writeUncached(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64)
        throws(DeviceError)
    {
        try write(from: buffer, atAbsoluteOffset: offset, recording: .writeUncached(offset: offset, count: buffer.count))
    }

    private func read(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64, recording call: Call)
        throws(DeviceError)
    {
        let count = buffer.count
        let outcome: Result<Void, DeviceError> = state.withLock { state in
            state.calls.append(call)
            guard count > 0 else { return .success(()) }
            let end = offset.addingReportingOverflow(UInt64(count))
            if state.firstFault(where: { fault in
                if case .readError(let range) = fault { return overlaps(range, offset, count) }
                return false
            }) != nil {
                return .failure(injectedError(verb: "read", count: count, offset: offset, systemCall: "pread"))
            }
            // The end of the device: the real one, or an injected one.
            var deviceEnd = sizeInBytes
            if let fault = state.firstFault(where: { fault in
                if case .shortRead(let endingAt) = fault {
                    return end.overflow || end.partialValue > endingAt
                }
                return false
            }), case .shortRead(let endingAt) = fault {
                deviceEnd = min(deviceEnd, endingAt)
            }
            guard !end.overflow, end.partialValue <= deviceEnd else {
                let available = offset < deviceEnd ? Int(deviceEnd - offset) : 0
                state.storage.copy(from: offset, into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<available]))
                return .failure(
                    .shortRead(path: path, offset: offset, requested: count, available: available, deviceSize: deviceEnd)
                )
            }
            state.storage.copy(from: offset, into: buffer)
            return .success(())
        }
        try outcome.get()
    }

    private func write(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64, recording call: Call)
        throws(DeviceError)
    {
        let count = buffer.count
        let outcome: Result<Void, DeviceError> = state.withLock { state in
            state.calls.append(call)
            guard offset <= sizeInBytes, UInt64(count) <= sizeInBytes - offset else {
                return .failure(.writePastEnd(path: path, offset: offset, count: count, deviceSize: sizeInBytes))
            }
            if state.firstFault(where: { fault in
                if case .writeError(let range) = fault { return overlaps(range, offset, count) }
                return false
            }) != nil {
                return .failure(injectedError(verb: "write", count: count, offset: offset, systemCall: "pwrite"))
            }
            if let fault = state.firstFault(where: { fault in
                if case .tornWrite(let range, _) = fault { return overlaps(range, offset, count) }
                return false
            }), case .tornWrite(_, let landing) = fault {
                let landed = max(0, min(landing, count))
                state.storage.store(UnsafeRawBufferPointer(rebasing: buffer[..<landed]), at: offset)
                var error = injectedError(verb: "write", count: count, offset: offset, systemCall: "pwrite")
                error.message += " after \(landed) bytes landed (torn write)"
                return .failure(error)
            }
            state.storage.store(buffer, at: offset)
            return .success(())
        }
        try outcome.get()
    }

    public func flush() throws(DeviceError) {
        let outcome: Result<Void, DeviceError> = state.withLock { state in
            state.calls.append(.flush)
            if state.firstFault(where: { $0 == .flushError }) != nil {
                return .failure(
                    DeviceError(
                        code: .ioError,
                        message: "cannot flush \(path): injected fault: \(Errno.ioError)",
                        path: path,
                        systemCall: "fsync",
                        cause: .ioError
                    )
                )
            }
            return .success(())
        }
        try outcome.get()
    }

    // MARK: Private

    private func injectedError(verb: String, count: Int, offset: UInt64, systemCall: String) -> DeviceError {
        DeviceError(
            code: .ioError,
            message: "cannot \(verb) \(count) bytes at offset 0x\(String(offset, radix: 16)) of \(path): "
                + "injected fault: \(Errno.ioError)",
            path: path,
            offset: offset,
            systemCall: systemCall,
            cause: .ioError
        )
    }
}

/// Whether `count` bytes at `offset` share at least one byte with `range`.
private func overlaps(_ range: Range<UInt64>, _ offset: UInt64, _ count: Int) -> Bool {
    guard count > 0, !range.isEmpty else { return false }
    let (end, overflow) = offset.addingReportingOverflow(UInt64(count))
    return offset < range.upperBound && (overflow || end > range.lowerBound)
}

private struct ArmedFault: Sendable {
    var fault: InMemoryBlockDevice.Fault
    /// `nil`: never spent.
    var remaining: Int?
}

private struct State: Sendable {
    var storage = SparseStorage()
    var calls: [InMemoryBlockDevice.Call] = []
    var faults: [ArmedFault] = []

    /// The first armed fault matching `predicate`, spending one of its uses.
    mutating func firstFault(where predicate: (InMemoryBlockDevice.Fault) -> Bool) -> InMemoryBlockDevice.Fault? {
        guard let index = faults.firstIndex(where: { predicate($0.fault) }) else { return nil }
        let fault = faults[index].fault
        if let remaining = faults[index].remaining {
            if remaining <= 1 {
                faults.remove(at: index)
            } else {
                faults[index].remaining = remaining - 1
            }
        }
        return fault
    }
}

/// Bytes in 64 KiB chunks, allocated on first write; absent chunks read as zero.
private struct SparseStorage: Sendable {
    static let chunkSize = 64 * 1024
    private var chunks: [UInt64: [UInt8]] = [:]

    func copy(from offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) {
        var done = 0
        while done < buffer.count {
            let position = offset + UInt64(done)
            let index = position / UInt64(Self.chunkSize)
            let within = Int(position % UInt64(Self.chunkSize))
            let length = min(Self.chunkSize - within, buffer.count - done)
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + length)])
            if let chunk = chunks[index] {
                chunk.withUnsafeBytes { source in
                    target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[within..<(within + length)]))
                }
            } else {
                target.initializeMemory(as: UInt8.self, repeating: 0)
            }
            done += length
        }
    }

    mutating func store(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) {
        var done = 0
        while done < buffer.count {
            let position = offset + UInt64(done)
            let index = position / UInt64(Self.chunkSize)
            let within = Int(position % UInt64(Self.chunkSize))
            let length = min(Self.chunkSize - within, buffer.count - done)
            let source = UnsafeRawBufferPointer(rebasing: buffer[done..<(done + length)])
            chunks[index, default: [UInt8](repeating: 0, count: Self.chunkSize)].withUnsafeMutableBytes { chunk in
                UnsafeMutableRawBufferPointer(rebasing: chunk[within..<(within + length)]).copyMemory(from: source)
            }
            done += length
        }
    }
}
