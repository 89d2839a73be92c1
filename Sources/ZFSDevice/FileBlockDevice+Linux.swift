// Linux-only system calls that SystemPackage 1.8.1 does not wrap: the block-device size and
// logical-block-size ioctls, fsync, clearing O_NONBLOCK, and the O_DIRECT open flag. Each shim returns `Result<_, Errno>` the way SystemPackage's
// internal `_read` does, and retries EINTR where the call can be interrupted.

#if os(Linux)
import Glibc
import SystemPackage

/// `BLKGETSIZE64` from `<linux/fs.h>`: `_IOR(0x12, 114, size_t)`, the device size in bytes as a
/// `u64`. (`BLKGETSIZE`, `0x1260`, reports 512-byte sectors in an `unsigned long` and is not used.)
let blockGetSize64Request: UInt = 0x8008_1272

/// `BLKSSZGET` from `<linux/fs.h>`: `_IO(0x12, 104)`, the logical block size in bytes as an
/// `int` — the unit of offset and length that O_DIRECT I/O on the device must respect.
let blockGetLogicalBlockSizeRequest: UInt = 0x1268

/// `O_DIRECT` from `<asm/fcntl.h>`, which Glibc's Swift module does not export (it needs
/// `_GNU_SOURCE`). Its value differs between architectures.
#if arch(x86_64) || arch(i386)
let openDirectFlag: CInt = 0o40000
#elseif arch(arm64) || arch(arm)
let openDirectFlag: CInt = 0o200000
#else
#error("O_DIRECT: add this architecture's value from <asm/fcntl.h>.")
#endif

extension FileDescriptor {
    /// Drops this host's cached pages of the whole file or device (`posix_fadvise(fd, 0, 0,
    /// POSIX_FADV_DONTNEED)`); dirty pages are not dropped. Advice: the result is not reported.
    func dropCachedPages() {
        _ = posix_fadvise(rawValue, 0, 0, POSIX_FADV_DONTNEED)
    }
}

extension FileDescriptor.OpenOptions {
    /// Transfer data between the device and the caller's memory directly, bypassing the page
    /// cache. Offsets, lengths and memory addresses must then be multiples of the device's
    /// logical block size.
    ///
    /// The corresponding C constant is `O_DIRECT`.
    static var direct: FileDescriptor.OpenOptions { .init(rawValue: openDirectFlag) }
}

extension FileDescriptor {
    /// The logical block size in bytes of the block device this descriptor refers to.
    ///
    /// The corresponding C function is `ioctl(fd, BLKSSZGET, &size)`.
    func logicalBlockSize() -> Result<Int, Errno> {
        var size: CInt = 0
        let status = withUnsafeMutablePointer(to: &size) { pointer in
            ioctl(rawValue, blockGetLogicalBlockSizeRequest, UnsafeMutableRawPointer(pointer))
        }
        guard status == 0 else { return .failure(Errno(rawValue: errno)) }
        return .success(Int(size))
    }

    /// The size in bytes of the block device this descriptor refers to.
    ///
    /// The corresponding C function is `ioctl(fd, BLKGETSIZE64, &size)`.
    func blockDeviceSizeInBytes() -> Result<UInt64, Errno> {
        var size: UInt64 = 0
        let status = withUnsafeMutablePointer(to: &size) { pointer in
            ioctl(rawValue, blockGetSize64Request, UnsafeMutableRawPointer(pointer))
        }
        guard status == 0 else { return .failure(Errno(rawValue: errno)) }
        return .success(size)
    }

    /// Flushes this descriptor's written data and metadata to stable storage, retrying `EINTR`.
    ///
    /// The corresponding C function is `fsync(2)`.
    func synchronize() -> Result<Void, Errno> {
        while true {
            if fsync(rawValue) == 0 { return .success(()) }
            let error = Errno(rawValue: errno)
            if error != .interrupted { return .failure(error) }
        }
    }

    /// Clears `O_NONBLOCK`, which opening sets so that opening can never block (see
    /// ``FileBlockDevice``). Linux ignores the flag for regular files and block devices, but
    /// clearing it keeps later reads and writes plainly blocking whatever the kernel does.
    ///
    /// The corresponding C function is `fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)`.
    func clearNonBlocking() -> Result<Void, Errno> {
        let flags = fcntl(rawValue, F_GETFL)
        guard flags >= 0 else { return .failure(Errno(rawValue: errno)) }
        guard flags & O_NONBLOCK != 0 else { return .success(()) }
        guard fcntl(rawValue, F_SETFL, flags & ~O_NONBLOCK) == 0 else {
            return .failure(Errno(rawValue: errno))
        }
        return .success(())
    }
}

/// The target of the symbolic link at `path`, or `nil` if it is not one.
///
/// The corresponding C function is `readlink(2)`.
func readSymbolicLink(_ path: String) -> String? {
    var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX))
    let length = buffer.withUnsafeMutableBytes { raw in
        readlink(path, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
    }
    guard length >= 0 else { return nil }
    return String(decoding: buffer[..<length], as: UTF8.self)
}

extension FileDescriptor.OpenOptions {
    /// Never make the opened file the controlling terminal. Irrelevant for the files
    /// `FileBlockDevice` accepts, but cheap insurance for the ones it refuses after a race.
    ///
    /// The corresponding C constant is `O_NOCTTY`.
    static var noControllingTerminal: FileDescriptor.OpenOptions { .init(rawValue: O_NOCTTY) }
}
#else
#error("ZFSDevice supports Linux only; port FileBlockDevice+Linux.swift to add a platform.")
#endif
