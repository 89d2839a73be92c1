// Damaging device files the way disks go bad, to see what zdb (and then zpk) makes of it.
//
// Label geometry (include/sys/vdev_impl.h, module/zfs/vdev_label.c in 2.1.11):
//
//   device:  | L0 | L1 | boot 3.5 MiB | ........ data ........ | L2 | L3 |
//   offset:    0   256K   512K                         psize-512K psize-256K
//
//   one label (vdev_label_t, 256 KiB):
//   0x00000  vl_pad1          8 KiB
//   0x02000  vl_be            8 KiB  boot environment block (zio_eck_t trailer at 0x3FD8)
//   0x04000  vl_vdev_phys   112 KiB  packed config nvlist (vp_nvlist, 114 648 bytes)
//                                    + 40-byte zio_eck_t trailer at 0x1FFD8
//   0x20000  vl_uberblock   128 KiB  ring of 2^max(ashift,10) (≤ 8 KiB) byte slots
//
// psize is the file size rounded DOWN to 256 KiB (zdb: `P2ALIGN(st_size, sizeof (vdev_label_t))`),
// and labels 2 and 3 sit at `psize - 4·256K + l·256K` computed in uint64_t: for files smaller than
// 1 MiB that wraps (a huge offset, so "failed to read label") or lands on labels 0 and 1.
// zdb never checks the embedded checksums, so damage shows in its output only when it breaks the
// nvlist (label "failed to unpack") or an uberblock's magic, or changes a value.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A device file (a ztest vdev or any other file) with the operations tests use to damage it.
///
/// ```swift
/// let victim = try VdevFile(pool.leafDevices[0]).copy(to: dir.path("victim"))
/// try victim.zeroLabel(0)
/// try victim.zeroLabel(1)
/// let (stdout, _, status) = try OpenZFS.zdb(["-l", victim.path])   // status 1
/// ```
/// All offsets are absolute byte offsets in the file unless a name says otherwise. Writes never
/// extend the file except ``truncate(to:)``.
public struct VdevFile: Hashable, Sendable, CustomStringConvertible {
    /// `sizeof (vdev_label_t)`.
    public static let labelSize: UInt64 = 256 << 10
    /// `VDEV_LABELS`.
    public static let labelCount = 4
    /// Offset of `vl_vdev_phys` (the config) within a label.
    public static let configOffset: UInt64 = 0x4000
    /// `sizeof (vp_nvlist)`: the config bytes zdb hands to `nvlist_unpack` (112 KiB − 40-byte trailer).
    public static let configNVListSize: UInt64 = (112 << 10) - 40
    /// Offset of `vl_uberblock` (the uberblock ring) within a label.
    public static let uberblockRingOffset: UInt64 = 0x20000
    /// `VDEV_UBERBLOCK_RING`.
    public static let uberblockRingSize: UInt64 = 128 << 10
    /// `VDEV_LABEL_START_SIZE`: where an l2cache device keeps its `l2arc_dev_hdr_phys_t` (512 bytes).
    public static let l2arcHeaderOffset: UInt64 = 4 << 20

    /// The file.
    public let path: String

    public init(_ path: String) { self.path = path }

    public var description: String { path }

    // MARK: Geometry

    /// The file's size in bytes (`st_size`).
    /// - Throws: ``OpenZFSHarnessError`` `.io` when `stat` fails.
    public func size() throws -> UInt64 {
        var info = stat()
        guard stat(path, &info) == 0 else { throw ioError("stat") }
        return UInt64(info.st_size)
    }

    /// Where zdb reads label `label` of a device of `deviceSize` bytes.
    ///
    /// The corresponding OpenZFS function is `vdev_label_offset`, applied by `dump_label` to
    /// `P2ALIGN(st_size, 256 KiB)`, in wrapping 64-bit arithmetic exactly as in C.
    public static func labelOffset(_ label: Int, deviceSize: UInt64) -> UInt64 {
        precondition((0..<labelCount).contains(label), "label \(label) is not 0...3")
        let psize = deviceSize & ~(labelSize - 1)
        let index = UInt64(label)
        return label < 2 ? index * labelSize : psize &- UInt64(labelCount) * labelSize &+ index * labelSize
    }

    /// Where zdb reads label `label` of this file.
    public func labelOffset(_ label: Int) throws -> UInt64 {
        Self.labelOffset(label, deviceSize: try size())
    }

    /// Offset of uberblock slot `slot` within a label, for a top-level vdev of `ashift`
    /// (`VDEV_UBERBLOCK_OFFSET`: slots are `2^min(max(ashift, 10), 13)` bytes).
    public static func uberblockOffset(slot: Int, ashift: Int) -> UInt64 {
        uberblockRingOffset + UInt64(slot) << UInt64(min(max(ashift, 10), 13))
    }

    // MARK: Reading and writing

    /// `count` bytes at `offset` (fewer at the end of the file).
    public func read(count: Int, at offset: UInt64) throws -> [UInt8] {
        let fd = try open(O_RDONLY)
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done))
            }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw ioError("pread at \(offset)") }
            if n == 0 { break }
            done += n
        }
        return Array(bytes[0..<done])
    }

    /// Writes `bytes` at `offset`; the range must lie inside the file.
    public func write(_ bytes: [UInt8], at offset: UInt64) throws {
        let end = offset + UInt64(bytes.count)
        guard end <= (try size()) else {
            throw OpenZFSHarnessError(
                .io, "refusing to write \(bytes.count) bytes at offset \(offset) of \(path): past its end (\(try size()) bytes)")
        }
        let fd = try open(O_WRONLY)
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes {
                pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ioError("pwrite at \(offset)") }
            done += n
        }
    }

    // MARK: Damage

    /// Overwrites all 256 KiB of label `label` with zeros (like `dd if=/dev/zero conv=notrunc`).
    /// zdb then prints "failed to unpack label N" and finds no uberblocks in it.
    public func zeroLabel(_ label: Int) throws {
        try write([UInt8](repeating: 0, count: Int(Self.labelSize)), at: try labelOffset(label))
    }

    /// Fills the packed-config bytes of label `label` (`vp_nvlist`, 0x4000..<0x1FFD8 in the label)
    /// with random bytes, leaving the checksum trailer and the uberblock ring alone.
    /// zdb then prints "failed to unpack label N" but still shows that label's uberblocks.
    public func fillConfig(ofLabel label: Int, using generator: inout some RandomNumberGenerator) throws {
        var bytes = [UInt8](repeating: 0, count: Int(Self.configNVListSize))
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &generator) }
        try write(bytes, at: try labelOffset(label) + Self.configOffset)
    }

    /// ``fillConfig(ofLabel:using:)`` with the system's random generator.
    public func fillConfig(ofLabel label: Int) throws {
        var generator = SystemRandomNumberGenerator()
        try fillConfig(ofLabel: label, using: &generator)
    }

    /// Inverts bit `bit` (0 = least significant) of the byte at absolute `offset`.
    public func flipBit(_ bit: Int, atOffset offset: UInt64) throws {
        precondition((0..<8).contains(bit), "bit \(bit) is not 0...7")
        guard let byte = try read(count: 1, at: offset).first else {
            throw OpenZFSHarnessError(.io, "cannot flip a bit at offset \(offset) of \(path): past its end")
        }
        try write([byte ^ UInt8(1 << bit)], at: offset)
    }

    /// Inverts bit `bit` of the byte at `offset` within label `label`.
    public func flipBit(_ bit: Int, inLabel label: Int, atOffset offset: UInt64) throws {
        precondition(offset < Self.labelSize, "offset \(offset) is outside a 256 KiB label")
        try flipBit(bit, atOffset: try labelOffset(label) + offset)
    }

    /// Sets the file's size (`truncate(2)`): shorter cuts labels 2 and 3 off or moves where zdb
    /// looks for them; longer appends zeros.
    public func truncate(to size: UInt64) throws {
        guard Glibc.truncate(path, off_t(size)) == 0 else { throw ioError("truncate to \(size)") }
    }

    /// Copies the file to `destination` (replacing it), copying only its data extents
    /// (`SEEK_DATA`/`SEEK_HOLE`), so a sparse 64 MiB ztest vdev costs a few MiB and milliseconds.
    /// On a file system without hole support the whole file is copied.
    /// - Returns: the copy.
    @discardableResult
    public func copy(to destination: String) throws -> VdevFile {
        // <unistd.h> values on Linux; Swift's Glibc module does not import them.
        let seekData: Int32 = 3
        let seekHole: Int32 = 4
        let source = try open(O_RDONLY)
        defer { close(source) }
        let copy = VdevFile(destination)
        let target = Glibc.open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard target >= 0 else { throw copy.ioError("open for writing") }
        defer { close(target) }
        let total = off_t(try size())
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var offset: off_t = 0
        while offset < total {
            let dataStart = lseek(source, offset, seekData)
            if dataStart < 0 && errno == ENXIO { break }  // only a hole remains
            guard dataStart >= 0 else { throw ioError("lseek(SEEK_DATA) at \(offset)") }
            let dataEnd = lseek(source, dataStart, seekHole)
            guard dataEnd >= 0 else { throw ioError("lseek(SEEK_HOLE) at \(dataStart)") }
            var position = dataStart
            while position < dataEnd {
                let want = min(chunk.count, Int(dataEnd - position))
                let n = chunk.withUnsafeMutableBytes { pread(source, $0.baseAddress, want, position) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw ioError("pread at \(position)") }
                let written = chunk.withUnsafeBytes { pwrite(target, $0.baseAddress, n, position) }
                guard written == n else { throw copy.ioError("pwrite at \(position)") }
                position += off_t(n)
            }
            offset = dataEnd
        }
        guard ftruncate(target, total) == 0 else { throw copy.ioError("ftruncate") }
        return copy
    }

    // MARK: Private

    private func open(_ flags: Int32) throws -> Int32 {
        let fd = Glibc.open(path, flags | O_CLOEXEC)
        guard fd >= 0 else { throw ioError("open") }
        return fd
    }

    private func ioError(_ call: String) -> OpenZFSHarnessError {
        OpenZFSHarnessError(.io, "\(call) failed on \(path): \(String(cString: strerror(errno)))")
    }
}
