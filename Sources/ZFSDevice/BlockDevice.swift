// ZFSDevice — block I/O for pool import and label code.
//
// Purpose. Everything above this module (label scanning, the MMP activity check, txg sync) reads
// and writes whole on-disk structures at absolute byte offsets: a 256 KiB vdev label at offset 0,
// 256 KiB, size − 512 KiB and size − 256 KiB (`vdev_label_offset` in `module/zfs/vdev_label.c`),
// an uberblock slot inside one. `BlockDevice` is that shape and nothing more: exact-length
// positioned reads and writes, the device's size, and a durability barrier.
//
// What it does NOT guarantee.
//   - Atomicity. A write that fails part-way may have landed in part (a "torn" write); the error
//     says how many bytes landed when the implementation knows. OpenZFS tolerates torn label writes
//     by writing L0/L2 and L1/L3 in separate phases; callers here must do the same.
//   - Durability before `flush()`. A successful `write` may sit in a cache; only `flush()` (fsync)
//     is a barrier.
//   - Exclusive access. Nothing stops another process — or another host, which is what MMP is for —
//     from writing the same device.
//   - Asynchrony. Every call blocks its thread. Async callers reach a device through an injected
//     I/O thread pool (as NIOFS does); never loop over `read` on the cooperative pool.
//
// Mechanism. `FileBlockDevice` wraps one file descriptor (SystemPackage `FileDescriptor`): `pread`
// and `pwrite` in loops until every byte moved, each retried on EINTR, `fsync` for `flush()`. The
// size is `st_size` for a regular file and `ioctl(BLKGETSIZE64)` for a block device, read once at
// open. `readUncached`/`writeUncached` bypass the page cache for multihost on shared block devices
// (`O_DIRECT`, see FileBlockDevice+Uncached.swift). Tests use `InMemoryBlockDevice` (module `ZFSTestSupport`), which injects faults and records
// a call trace.
//
// Invariants.
//   - A read returns exactly `count` bytes or throws; a read that meets the end of the device
//     throws `.shortRead` naming how many bytes were available.
//   - A write never extends a device: a write ending past `sizeInBytes` throws `.outOfRange`
//     before any byte moves.
//   - Opening never creates, truncates or blocks: directories, FIFOs, sockets and character
//     devices are refused with `.notADevice` after a `stat`, before any `open`.
//
// Failure cases. A crash between `write` and `flush` loses or keeps the write, at the device's
// whim. A crash inside a multi-`pwrite` write may keep any prefix of it.

/// A fixed-size array of bytes addressed by absolute offset: a disk, a partition, or a file vdev.
///
/// All operations are synchronous and throw ``DeviceError``. Reads and writes are positioned
/// (`pread`/`pwrite`): they neither use nor move a file offset, so one device may be used from
/// several threads at once.
///
/// Conformers implement ``read(into:atAbsoluteOffset:)``, ``write(from:atAbsoluteOffset:)`` and
/// ``flush()``; ``read(count:atAbsoluteOffset:)`` and ``write(_:atAbsoluteOffset:)`` are provided.
///
/// The corresponding OpenZFS type is `vdev_t` with its `vdev_disk_ops`/`vdev_file_ops`.
public protocol BlockDevice: Sendable {
    /// The path the device was opened with, as the caller spelled it (symbolic links unresolved).
    var path: String { get }

    /// The size of the device in bytes.
    ///
    /// For a block device, the size the kernel reports (`ioctl(BLKGETSIZE64)`); for a regular
    /// file, its `st_size`. Devices never grow: writes past this size are refused.
    var sizeInBytes: UInt64 { get }

    /// Whether the device is a block device (rather than a regular file standing in for one).
    var isBlockDevice: Bool { get }

    /// Reads exactly `buffer.count` bytes at the given offset into a buffer, without allocating.
    ///
    /// - Parameters:
    ///   - buffer: The memory to fill. Its `count` is the number of bytes to read; when it is 0,
    ///     nothing is read.
    ///   - offset: The absolute byte offset on the device where reading begins.
    /// - Throws: ``DeviceError`` with code ``DeviceError/Code/shortRead`` if the device ends before
    ///   `buffer.count` bytes (the bytes before the end are in `buffer`),
    ///   ``DeviceError/Code/ioError`` if the device fails, ``DeviceError/Code/invalidArgument`` if
    ///   the range does not fit in `off_t`, ``DeviceError/Code/closed`` after closing.
    ///
    /// The corresponding C function is `pread(2)`, called until every byte is read.
    func read(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError)

    /// Writes all the bytes of a buffer at the given offset.
    ///
    /// - Parameters:
    ///   - buffer: The bytes to write.
    ///   - offset: The absolute byte offset on the device where writing begins.
    /// - Throws: ``DeviceError`` with code ``DeviceError/Code/outOfRange`` if the write would end
    ///   past ``sizeInBytes`` (nothing is written), ``DeviceError/Code/readOnly`` if the device was
    ///   opened read-only, ``DeviceError/Code/ioError`` if the device fails (a prefix of the bytes
    ///   may have landed; the message says how many), ``DeviceError/Code/closed`` after closing.
    ///
    /// The corresponding C function is `pwrite(2)`, called until every byte is written.
    func write(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError)

    /// Makes every completed write durable.
    ///
    /// - Throws: ``DeviceError`` with code ``DeviceError/Code/ioError`` if the device cannot
    ///   confirm that the data reached stable storage; earlier writes may then be lost.
    ///
    /// The corresponding C function is `fsync(2)`.
    func flush() throws(DeviceError)

    /// Reads exactly `buffer.count` bytes at the given offset from the device itself, bypassing
    /// this host's page cache.
    ///
    /// Multihost (MMP) needs this on a block device shared by several hosts: a buffered read can
    /// return a block this host cached earlier and miss another host's heartbeat. Use it for the
    /// activity check's uberblock reads and the heartbeat's read-back; everything else reads
    /// through ``read(into:atAbsoluteOffset:)``.
    ///
    /// The default implementation calls ``read(into:atAbsoluteOffset:)``, which is right for any
    /// device without a cache of its own (an in-memory device). ``FileBlockDevice`` uses `O_DIRECT`
    /// on a block device; see its "Uncached I/O" section.
    ///
    /// - Parameters:
    ///   - buffer: The memory to fill; any alignment. When its `count` is 0, nothing is read.
    ///   - offset: The absolute byte offset on the device where reading begins; any alignment.
    /// - Throws: Everything ``read(into:atAbsoluteOffset:)`` throws, and
    ///   ``DeviceError/Code/permissionDenied`` or ``DeviceError/Code/invalidArgument`` when the
    ///   device cannot be opened for uncached I/O (the message says so).
    func readUncached(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError)

    /// Writes all the bytes of a buffer at the given offset to the device itself, bypassing this
    /// host's page cache, so that another host reading the device sees them without waiting for
    /// writeback.
    ///
    /// The write is not a durability barrier (the device may still cache it); call ``flush()``
    /// for that. OpenZFS writes heartbeats without a flush and claims with one.
    ///
    /// The default implementation calls ``write(from:atAbsoluteOffset:)``. ``FileBlockDevice``
    /// uses `O_DIRECT` on a block device; see its "Uncached I/O" section.
    ///
    /// - Parameters:
    ///   - buffer: The bytes to write; any alignment.
    ///   - offset: The absolute byte offset on the device where writing begins; any alignment
    ///     (an unaligned write reads its edge blocks first).
    /// - Throws: Everything ``write(from:atAbsoluteOffset:)`` throws, and
    ///   ``DeviceError/Code/permissionDenied`` or ``DeviceError/Code/invalidArgument`` when the
    ///   device cannot be opened for uncached I/O (the message says so).
    func writeUncached(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError)

    /// Whether ``writeForcingUnitAccess(from:atAbsoluteOffset:)`` puts its bytes on stable storage
    /// before it returns, at the cost of a single write: the device has a per-write durability
    /// flag (NBD's `NBD_CMD_FLAG_FUA`, a disk's Force Unit Access).
    ///
    /// `false` by default. ``NBDBlockDevice`` answers `true` when its server offers FUA.
    var forcesUnitAccess: Bool { get }

    /// Writes all the bytes of a buffer as ``writeUncached(from:atAbsoluteOffset:)`` does, and,
    /// on a device that ``forcesUnitAccess``, asks for them to be on stable storage before the
    /// write completes (Force Unit Access).
    ///
    /// For the writes whose loss hurts most: labels, uberblocks, MMP heartbeats and claims. A
    /// device without a per-write flag writes uncached, as OpenZFS's file and disk vdevs write
    /// those blocks; the caller's ``flush()`` is then the barrier (OpenZFS flushes after each
    /// phase of `vdev_config_sync`, and never after a heartbeat). The default implementation is
    /// exactly that: ``writeUncached(from:atAbsoluteOffset:)``.
    ///
    /// - Parameters:
    ///   - buffer: The bytes to write.
    ///   - offset: The absolute byte offset on the device where writing begins.
    /// - Throws: Everything ``write(from:atAbsoluteOffset:)`` throws.
    func writeForcingUnitAccess(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64)
        throws(DeviceError)

    /// Releases what the device holds (a descriptor, network connections). Later operations throw
    /// ``DeviceError/Code/closed``; closing again does nothing.
    ///
    /// The default implementation does nothing (a view or an in-memory device holds nothing).
    /// Every device also releases its resources when the last reference to it goes away.
    ///
    /// - Throws: ``DeviceError`` when releasing reports an error; the resources are released
    ///   either way.
    func close() throws(DeviceError)

    /// Makes sure no write of this host reaches the device from now until ``unfence()``: writes
    /// and flushes are refused with ``DeviceError/Code/fenced``, and a write already handed to
    /// the transport but not yet delivered is cancelled where the transport allows it.
    ///
    /// Multihost calls it on every leaf when it suspends the pool (another host may import the
    /// pool from then on) and ``unfence()`` when `zpk clear` resumes it. ``NBDBlockDevice`` aborts
    /// its connections (see docs/nbd.md, "Fencing"); a local file or disk has nothing queued
    /// outside the kernel's own block layer, and the default implementation does nothing (the
    /// pool's fault table already refuses the writes above the device).
    func fence()

    /// Lifts ``fence()``: writes go through again (a network device reconnects on its next use).
    /// The default implementation does nothing.
    func unfence()
}

extension BlockDevice {
    /// Does nothing: nothing of this device's is queued beyond the kernel.
    public func fence() {}

    /// Does nothing (see ``fence()``).
    public func unfence() {}

    /// Calls ``read(into:atAbsoluteOffset:)``: a device without a page cache of its own has
    /// nothing to bypass.
    public func readUncached(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64)
        throws(DeviceError)
    {
        try read(into: buffer, atAbsoluteOffset: offset)
    }

    /// Calls ``write(from:atAbsoluteOffset:)``: a device without a page cache of its own has
    /// nothing to bypass.
    public func writeUncached(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64)
        throws(DeviceError)
    {
        try write(from: buffer, atAbsoluteOffset: offset)
    }

    /// `false`: no per-write durability flag.
    public var forcesUnitAccess: Bool { false }

    /// Calls ``writeUncached(from:atAbsoluteOffset:)``: without a per-write durability flag,
    /// the caller's ``flush()`` is the barrier.
    public func writeForcingUnitAccess(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64)
        throws(DeviceError)
    {
        try writeUncached(from: buffer, atAbsoluteOffset: offset)
    }

    /// Does nothing: the device holds nothing to release.
    public func close() throws(DeviceError) {}

    /// Writes all of `bytes` with ``writeForcingUnitAccess(from:atAbsoluteOffset:)``.
    ///
    /// - Throws: Everything ``write(from:atAbsoluteOffset:)`` throws.
    public func writeForcingUnitAccess(_ bytes: [UInt8], atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        let result: Result<Void, DeviceError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(DeviceError) in try writeForcingUnitAccess(from: buffer, atAbsoluteOffset: offset) }
        }
        try result.get()
    }

    /// Writes a label or uberblock: with Force Unit Access on a device that
    /// ``forcesUnitAccess``, otherwise with the ordinary (cached) write, followed by the caller's
    /// ``flush()`` as in OpenZFS's `vdev_config_sync`.
    public func writeMetadata(_ bytes: [UInt8], atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        if forcesUnitAccess {
            try writeForcingUnitAccess(bytes, atAbsoluteOffset: offset)
        } else {
            try write(bytes, atAbsoluteOffset: offset)
        }
    }

    /// A view of this device whose reads and writes bypass the page cache: its
    /// ``read(into:atAbsoluteOffset:)`` is this device's ``readUncached(into:atAbsoluteOffset:)``,
    /// and so on. Hand it to code that reads through the ordinary calls (a label reader) when
    /// every byte must come from the device itself.
    public var uncached: UncachedBlockDevice { UncachedBlockDevice(self) }
}

/// A ``BlockDevice`` that routes every read and write of another device through that device's
/// uncached calls (``BlockDevice/readUncached(into:atAbsoluteOffset:)``,
/// ``BlockDevice/writeUncached(from:atAbsoluteOffset:)``). Create one with
/// ``BlockDevice/uncached``.
public struct UncachedBlockDevice: BlockDevice {
    /// The device whose uncached calls this view makes.
    public let base: any BlockDevice

    /// Wraps `base`.
    public init(_ base: any BlockDevice) { self.base = base }

    public var path: String { base.path }
    public var sizeInBytes: UInt64 { base.sizeInBytes }
    public var isBlockDevice: Bool { base.isBlockDevice }

    public func read(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        try base.readUncached(into: buffer, atAbsoluteOffset: offset)
    }

    public func write(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        try base.writeUncached(from: buffer, atAbsoluteOffset: offset)
    }

    public func readUncached(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64)
        throws(DeviceError)
    {
        try base.readUncached(into: buffer, atAbsoluteOffset: offset)
    }

    public func writeUncached(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64)
        throws(DeviceError)
    {
        try base.writeUncached(from: buffer, atAbsoluteOffset: offset)
    }

    public var forcesUnitAccess: Bool { base.forcesUnitAccess }

    public func writeForcingUnitAccess(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64)
        throws(DeviceError)
    {
        try base.writeForcingUnitAccess(from: buffer, atAbsoluteOffset: offset)
    }

    public func flush() throws(DeviceError) { try base.flush() }

    /// Does nothing: the view does not own `base`.
    public func close() throws(DeviceError) {}

    /// Fences `base`: a view writes through it.
    public func fence() { base.fence() }

    /// Unfences `base`.
    public func unfence() { base.unfence() }
}

extension BlockDevice {
    /// Reads exactly `count` bytes at the given offset.
    ///
    /// - Parameters:
    ///   - count: The number of bytes to read; must not be negative.
    ///   - offset: The absolute byte offset on the device where reading begins.
    /// - Returns: An array of exactly `count` bytes.
    /// - Throws: ``DeviceError`` with code ``DeviceError/Code/invalidArgument`` for a negative
    ///   `count`, and everything ``read(into:atAbsoluteOffset:)`` throws — notably
    ///   ``DeviceError/Code/shortRead`` when the device ends first.
    ///
    /// The corresponding C function is `pread(2)`.
    /// - Complexity: O(`count`).
    public func read(count: Int, atAbsoluteOffset offset: UInt64) throws(DeviceError) -> [UInt8] {
        guard count >= 0 else {
            throw DeviceError(
                code: .invalidArgument,
                message: "cannot read \(count) bytes at offset \(hexadecimal(offset)) of \(path): "
                    + "a byte count cannot be negative",
                path: path,
                offset: offset
            )
        }
        var bytes = [UInt8](repeating: 0, count: count)
        let result: Result<Void, DeviceError> = bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(DeviceError) in try read(into: buffer, atAbsoluteOffset: offset) }
        }
        try result.get()
        return bytes
    }

    /// Writes all of `bytes` at the given offset.
    ///
    /// Contiguous collections (`[UInt8]`, `ArraySlice<UInt8>`, buffer pointers) are written in
    /// place; other collections are copied into an array first.
    ///
    /// - Parameters:
    ///   - bytes: The bytes to write.
    ///   - offset: The absolute byte offset on the device where writing begins.
    /// - Throws: Everything ``write(from:atAbsoluteOffset:)`` throws.
    ///
    /// The corresponding C function is `pwrite(2)`.
    /// - Complexity: O(`bytes.count`).
    public func write(_ bytes: some Collection<UInt8>, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        let inPlace: Result<Void, DeviceError>? = bytes.withContiguousStorageIfAvailable { elements in
            Result { () throws(DeviceError) in
                try write(from: UnsafeRawBufferPointer(elements), atAbsoluteOffset: offset)
            }
        }
        if let inPlace {
            try inPlace.get()
            return
        }
        let copy = Array(bytes)
        let result: Result<Void, DeviceError> = copy.withUnsafeBytes { buffer in
            Result { () throws(DeviceError) in try write(from: buffer, atAbsoluteOffset: offset) }
        }
        try result.get()
    }
}
