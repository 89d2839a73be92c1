// Uncached I/O for multihost (MMP) on shared block devices.
//
// Purpose. Two hosts that see one block device (dual-ported SAS, iSCSI, NBD) each have their own
// page cache. A buffered heartbeat write sits in the writer's cache until writeback (seconds, up to
// `dirty_expire_centisecs`, 30 s by default); a buffered read on the other host can return a block
// that host cached earlier. Either way the importer misses live heartbeats and imports a pool that
// is in use: split brain. OpenZFS's kernel `vdev_disk` submits bios straight to the device, so its
// MMP I/O never meets a page cache; `readUncached`/`writeUncached` are our equivalent.
//
// Mechanism. On a block device the first uncached call opens a second descriptor on the same path
// with `O_DIRECT` (same access mode), checks with `fstat` that it is the same device as the first,
// and asks the kernel for the logical block size (`ioctl(BLKSSZGET)`). Every uncached transfer then
// goes through a bounce buffer aligned to that size (and to 4 KiB), covering the caller's range
// rounded out to whole blocks (`DirectIOExtent`); an unaligned write reads its edge blocks first.
// The ordinary descriptor stays buffered: label and txg-sync I/O is unchanged (it fsyncs).
//
// A regular file (a file vdev) takes the ordinary path: the processes of one machine share one page
// cache, which is coherent, and O_DIRECT is not available on every file system (tmpfs before
// Linux 6.6 refuses it). Tests force the O_DIRECT path on a regular file with
// `init(path:mode:forceDirectIO:)`; if the file system refuses O_DIRECT with EINVAL, a forced
// regular file falls back to the ordinary path (`uncachedPath` says which, and why). A block device
// never falls back: if O_DIRECT cannot be opened, the uncached call throws, because a silent
// buffered heartbeat is exactly the bug this exists to prevent.
//
// What it does NOT guarantee. Durability (the device may still cache a write: `flush()` is the
// barrier), or atomicity of a read-modify-write against another host writing the same block at the
// same moment (MMP slots are always whole blocks, so MMP never does one).
//
// Concurrency. The O_DIRECT descriptor lives in `direct` (a Mutex) and is opened under that lock;
// every uncached call registers with `usage` (as every ordinary call does) before touching it, and
// it is closed together with the ordinary descriptor when the last operation has finished.

import Synchronization
import SystemPackage

extension FileBlockDevice {
    /// How the uncached calls of a device reach it; decided at the first uncached call.
    package enum UncachedPath: Hashable, Sendable {
        /// Through a second descriptor opened with `O_DIRECT`, in whole blocks of
        /// `logicalBlockSize` bytes.
        case direct(logicalBlockSize: Int)
        /// Through the ordinary (buffered) descriptor, for the reason given.
        case buffered(reason: String)
    }

    /// The state of the second, `O_DIRECT` descriptor.
    enum DirectDescriptor {
        case unresolved
        case direct(FileDescriptor, logicalBlockSize: Int)
        case buffered(reason: String)
        case closed
    }

    /// Memory alignment of the bounce buffer at least: one 4 KiB page. O_DIRECT needs the logical
    /// block size; a page is always a multiple of it on the kernels we run on.
    static let bounceBufferMinimumAlignment = 4096

    /// Why a regular file takes the ordinary path.
    package static let regularFileReason =
        "a regular file: every process on this machine shares its page cache, so buffered I/O is coherent"

    /// How uncached calls reach this device, or `nil` before the first uncached call.
    package var uncachedPath: UncachedPath? {
        direct.withLock { state in
            switch state {
            case .unresolved, .closed: nil
            case .direct(_, let size): .direct(logicalBlockSize: size)
            case .buffered(let reason): .buffered(reason: reason)
            }
        }
    }

    /// Closes the O_DIRECT descriptor, if one was opened. Called only when no operation is in
    /// flight (the same rule as the ordinary descriptor).
    func closeDirectDescriptor() {
        let previous = direct.withLock { state in
            let previous = state
            state = .closed
            return previous
        }
        if case .direct(let descriptor, _) = previous {
            _ = try? descriptor.close()
        }
    }

    public func readUncached(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64)
        throws(DeviceError)
    {
        try uncached(verb: "read", count: buffer.count, offset: offset) { (target: DirectTarget) throws(DeviceError) in
            try directRead(target, into: buffer, offset: offset)
        } ordinary: { () throws(DeviceError) in
            try read(into: buffer, atAbsoluteOffset: offset)
        }
    }

    public func writeUncached(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64)
        throws(DeviceError)
    {
        try uncached(verb: "write", count: buffer.count, offset: offset) { (target: DirectTarget) throws(DeviceError) in
            try checkWritable(count: buffer.count, offset: offset)
            try directWrite(target, from: buffer, offset: offset)
        } ordinary: { () throws(DeviceError) in
            try write(from: buffer, atAbsoluteOffset: offset)
        }
    }

    /// Runs `directly` with the O_DIRECT descriptor (opened on first use), or `ordinary` when the
    /// device takes the buffered path. A device already known to be buffered (a regular file)
    /// goes straight to `ordinary`: a heartbeat on a file vdev reads and writes a slot ~100 times
    /// a second.
    private func uncached(
        verb: String, count: Int, offset: UInt64,
        directly: (DirectTarget) throws(DeviceError) -> Void,
        ordinary: () throws(DeviceError) -> Void
    ) throws(DeviceError) {
        let knownBuffered = direct.withLock { if case .buffered = $0 { true } else { false } }
        if knownBuffered { return try ordinary() }
        _ = try fileOffset(offset, count: count, verb: verb)
        guard count > 0 else { return }
        var useOrdinaryPath = false
        try withDescriptor(verb: verb, count: count, offset: offset) { _ throws(DeviceError) in
            guard let target = try resolveDirect(verb: verb, count: count, offset: offset) else {
                useOrdinaryPath = true
                return
            }
            try directly(target)
        }
        if useOrdinaryPath { try ordinary() }
    }
}

// MARK: - The O_DIRECT descriptor

extension FileBlockDevice {
    struct DirectTarget {
        var descriptor: FileDescriptor
        var blockSize: Int
    }

    /// The O_DIRECT descriptor, opening it on first use; `nil` when this device takes the
    /// ordinary path. Call only inside `withDescriptor` (so the device cannot close meanwhile).
    private func resolveDirect(verb: String, count: Int, offset: UInt64) throws(DeviceError) -> DirectTarget? {
        try direct.withLock { (state: inout DirectDescriptor) throws(DeviceError) -> DirectTarget? in
            switch state {
            case .direct(let descriptor, let size):
                return DirectTarget(descriptor: descriptor, blockSize: size)
            case .buffered:
                return nil
            case .closed:
                throw DeviceError(
                    code: .closed,
                    message: "cannot \(verb) \(count) bytes at offset \(hexadecimal(offset)) of \(path): "
                        + "the device has been closed",
                    path: path,
                    offset: offset
                )
            case .unresolved:
                if !isBlockDevice && !forcesDirectIO {
                    state = .buffered(reason: Self.regularFileReason)
                    return nil
                }
                switch openDirect() {
                case .success(let target):
                    state = .direct(target.descriptor, logicalBlockSize: target.blockSize)
                    return target
                case .failure(let failure):
                    if !isBlockDevice, failure.errno == .invalidArgument {
                        state = .buffered(
                            reason: "the file system refused O_DIRECT (open: \(Errno.invalidArgument)); "
                                + Self.regularFileReason)
                        return nil
                    }
                    // Left unresolved: the next uncached call tries again.
                    throw directFailure(failure, verb: verb, count: count, offset: offset)
                }
            }
        }
    }

    struct DirectOpenFailure: Error {
        var systemCall: String
        var errno: Errno?
        var reason: String
    }

    /// Opens `path` again with O_DIRECT, checks it is the device already open, and measures its
    /// block size.
    private func openDirect() -> Result<DirectTarget, DirectOpenFailure> {
        let opened: FileDescriptor
        do {
            opened = try FileDescriptor.open(
                FilePath(path),
                mode.accessMode,
                options: [.direct, .nonBlocking, .closeOnExec, .noControllingTerminal]
            )
        } catch {
            let errno = asErrno(error)
            return .failure(DirectOpenFailure(systemCall: "open", errno: errno, reason: "open with O_DIRECT failed: \(errno)"))
        }
        func fail(_ failure: DirectOpenFailure) -> Result<DirectTarget, DirectOpenFailure> {
            _ = try? opened.close()
            return .failure(failure)
        }
        let mine: Stat
        let theirs: Stat
        do {
            mine = try descriptor.stat()
            theirs = try opened.stat()
        } catch {
            let errno = asErrno(error)
            return fail(DirectOpenFailure(systemCall: "fstat", errno: errno, reason: "fstat failed: \(errno)"))
        }
        guard mine.deviceID == theirs.deviceID, mine.inode == theirs.inode else {
            return fail(
                DirectOpenFailure(
                    systemCall: "fstat", errno: nil,
                    reason: "the path now names a different file than the one opened; close and reopen the device"))
        }
        if case .failure(let errno) = opened.clearNonBlocking() {
            return fail(DirectOpenFailure(systemCall: "fcntl", errno: errno, reason: "fcntl failed: \(errno)"))
        }
        let blockSize: Int
        if isBlockDevice {
            switch opened.logicalBlockSize() {
            case .success(let size): blockSize = size
            case .failure(let errno):
                return fail(
                    DirectOpenFailure(
                        systemCall: "ioctl", errno: errno,
                        reason: "the kernel did not report its logical block size (ioctl BLKSSZGET failed: \(errno))"))
            }
        } else {
            // A forced regular file: st_blksize is a multiple of what the file system needs.
            blockSize = theirs.preferredIOBlockSize
        }
        guard blockSize > 0, blockSize & (blockSize - 1) == 0 else {
            return fail(
                DirectOpenFailure(
                    systemCall: isBlockDevice ? "ioctl" : "fstat", errno: nil,
                    reason: "its block size \(blockSize) is not a power of two"))
        }
        return .success(DirectTarget(descriptor: opened, blockSize: blockSize))
    }

    private func directFailure(_ failure: DirectOpenFailure, verb: String, count: Int, offset: UInt64) -> DeviceError {
        DeviceError(
            code: failure.errno.map { DeviceError.Code(errno: $0) } ?? .invalidArgument,
            message: "cannot \(verb) \(count) bytes at offset \(hexadecimal(offset)) of \(path) bypassing the "
                + "page cache: \(failure.reason). Multihost needs uncached (O_DIRECT) I/O on a block device "
                + "that other hosts share, or it may miss their heartbeats; use a device that supports direct I/O",
            path: path,
            offset: offset,
            systemCall: failure.systemCall,
            cause: failure.errno
        )
    }
}

// MARK: - Transfers

extension FileBlockDevice {
    private func extent(_ target: DirectTarget, verb: String, count: Int, offset: UInt64) throws(DeviceError)
        -> DirectIOExtent
    {
        guard let extent = DirectIOExtent(offset: offset, count: count, blockSize: target.blockSize) else {
            throw DeviceError(
                code: .invalidArgument,
                message: "cannot \(verb) \(count) bytes at offset \(hexadecimal(offset)) of \(path): "
                    + "the range rounded out to \(target.blockSize)-byte blocks does not fit in a 63-bit file offset",
                path: path,
                offset: offset
            )
        }
        return extent
    }

    private func allocateBounceBuffer(_ extent: DirectIOExtent) -> UnsafeMutableRawBufferPointer {
        // Swift's aligned allocation is `posix_memalign` on Linux for alignments above 16.
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: extent.alignedCount,
            alignment: max(extent.blockSize, Self.bounceBufferMinimumAlignment))
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        return buffer
    }

    /// `pread`s into `bounce` (aligned) at `start` until it is full or the device ends; returns
    /// how many bytes arrived.
    private func directPread(
        _ target: DirectTarget,
        into bounce: UnsafeMutableRawBufferPointer,
        at start: UInt64,
        describing request: String
    ) throws(DeviceError) -> Int {
        do throws(PartialTransfer) {
            return try target.descriptor.readFully(into: bounce, at: Int64(start))
        } catch {
            throw DeviceError(
                code: DeviceError.Code(errno: error.errno),
                message: "cannot \(request) of \(path) bypassing the page cache: O_DIRECT pread of "
                    + "\(bounce.count) bytes at \(hexadecimal(start)) failed after \(error.done) bytes: \(error.errno)",
                path: path,
                offset: start,
                systemCall: "pread",
                cause: error.errno
            )
        }
    }

    private func directRead(_ target: DirectTarget, into buffer: UnsafeMutableRawBufferPointer, offset: UInt64)
        throws(DeviceError)
    {
        let extent = try extent(target, verb: "read", count: buffer.count, offset: offset)
        let bounce = allocateBounceBuffer(extent)
        defer { bounce.deallocate() }
        let got = try directPread(
            target, into: bounce, at: extent.alignedOffset,
            describing: "read \(buffer.count) bytes at offset \(hexadecimal(offset))")
        let available = max(0, min(got - extent.leadingBytes, buffer.count))
        if available > 0 {
            UnsafeMutableRawBufferPointer(rebasing: buffer[..<available]).copyMemory(
                from: UnsafeRawBufferPointer(rebasing: bounce[extent.leadingBytes..<(extent.leadingBytes + available)]))
        }
        guard available == buffer.count else {
            throw DeviceError.shortRead(
                path: path, offset: offset, requested: buffer.count, available: available, deviceSize: sizeInBytes)
        }
    }

    private func directWrite(_ target: DirectTarget, from buffer: UnsafeRawBufferPointer, offset: UInt64)
        throws(DeviceError)
    {
        let request = "write \(buffer.count) bytes at offset \(hexadecimal(offset))"
        let extent = try extent(target, verb: "write", count: buffer.count, offset: offset)
        guard extent.alignedEnd <= sizeInBytes else {
            // Only a regular file forced onto this path can end mid-block; a block device's size
            // is a whole number of logical blocks. Rounding out would grow the file.
            throw DeviceError(
                code: .invalidArgument,
                message: "cannot \(request) of \(path) bypassing the page cache: the device is \(sizeInBytes) bytes, "
                    + "not a whole number of \(extent.blockSize)-byte blocks, so its last block cannot be written directly",
                path: path,
                offset: offset
            )
        }
        let bounce = allocateBounceBuffer(extent)
        defer { bounce.deallocate() }
        for range in extent.readModifyWriteRanges {
            let within = Int(range.lowerBound - extent.alignedOffset)
            let block = UnsafeMutableRawBufferPointer(rebasing: bounce[within..<(within + extent.blockSize)])
            let got = try directPread(
                target, into: block, at: range.lowerBound,
                describing: "\(request) (reading the block at \(hexadecimal(range.lowerBound)) to merge it)")
            guard got == extent.blockSize else {
                throw DeviceError(
                    code: .ioError,
                    message: "cannot \(request) of \(path) bypassing the page cache: reading the block at "
                        + "\(hexadecimal(range.lowerBound)) to merge it returned \(got) of \(extent.blockSize) bytes; "
                        + "nothing was written",
                    path: path,
                    offset: offset,
                    systemCall: "pread"
                )
            }
        }
        UnsafeMutableRawBufferPointer(rebasing: bounce[extent.leadingBytes..<(extent.leadingBytes + buffer.count)])
            .copyMemory(from: buffer)
        do throws(PartialTransfer) {
            try target.descriptor.writeFully(UnsafeRawBufferPointer(bounce), at: Int64(extent.alignedOffset))
        } catch {
            guard !error.madeNoProgress else {
                throw DeviceError(
                    code: .ioError,
                    message: "cannot \(request) of \(path) bypassing the page cache: O_DIRECT pwrite made no "
                        + "progress after \(error.done) bytes landed",
                    path: path,
                    offset: offset,
                    systemCall: "pwrite"
                )
            }
            throw DeviceError(
                code: DeviceError.Code(errno: error.errno),
                message: "cannot \(request) of \(path) bypassing the page cache: O_DIRECT pwrite of "
                    + "\(bounce.count) bytes at \(hexadecimal(extent.alignedOffset)) failed after \(error.done) bytes "
                    + "landed: \(error.errno)",
                path: path,
                offset: offset,
                systemCall: "pwrite",
                cause: error.errno
            )
        }
    }
}
