import Foundation
import Synchronization
import Testing
import ZFSDevice

// Block-device sizes (ioctl BLKGETSIZE64) are tested against a real loop device in
// LoopDeviceTests.swift; here every device is a regular file, whose size is its st_size.

@Suite("FileBlockDevice on regular files")
struct FileBlockDeviceTests {
    @Test func reportsPathSizeAndKind() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/odd.img"
            try makeFile(at: path, bytes: patternBytes(count: 1_000_003))
            let device = try FileBlockDevice(path: path)
            #expect(device.path == path)
            #expect(device.sizeInBytes == 1_000_003)
            #expect(!device.isBlockDevice)
            #expect(device.mode == .readOnly)
        }
    }

    @Test func sparseFileSizeIsItsLength() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/sparse.img"
            try makeSparseFile(at: path, size: 64 << 30)  // 64 GiB, no blocks allocated
            let device = try FileBlockDevice(path: path)
            #expect(device.sizeInBytes == 64 << 30)
            #expect(try device.read(count: 16, atAbsoluteOffset: (64 << 30) - 16) == [UInt8](repeating: 0, count: 16))
        }
    }

    @Test func readsExactBytesAtOffsets() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/a.img"
            let contents = patternBytes(count: 300_000)
            try makeFile(at: path, bytes: contents)
            let device = try FileBlockDevice(path: path)
            #expect(try device.read(count: 300_000, atAbsoluteOffset: 0) == contents)
            #expect(try device.read(count: 1000, atAbsoluteOffset: 262_144) == Array(contents[262_144..<263_144]))
            #expect(try device.read(count: 1, atAbsoluteOffset: 299_999) == [contents[299_999]])
            #expect(try device.read(count: 0, atAbsoluteOffset: 0) == [])

            var buffer = [UInt8](repeating: 0xAA, count: 512)
            try buffer.withUnsafeMutableBytes { raw in
                try device.read(into: raw, atAbsoluteOffset: 4096)
            }
            #expect(buffer == Array(contents[4096..<4608]))
        }
    }

    @Test func writeThenReadRoundTrip() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/rw.img"
            try makeSparseFile(at: path, size: 1 << 20)
            let device = try FileBlockDevice(path: path, mode: .readWrite)
            let label = patternBytes(count: 262_144, seed: 7)
            try device.write(label, atAbsoluteOffset: (1 << 20) - 262_144)
            try device.write(label[100..<612], atAbsoluteOffset: 0)  // a contiguous slice
            try device.write(patternBytes(count: 8).reversed(), atAbsoluteOffset: 8192)  // not contiguous
            try label.withUnsafeBytes { raw in
                try device.write(from: UnsafeRawBufferPointer(rebasing: raw[0..<4]), atAbsoluteOffset: 16_384)
            }
            try device.flush()

            #expect(try device.read(count: 262_144, atAbsoluteOffset: (1 << 20) - 262_144) == label)
            #expect(try device.read(count: 512, atAbsoluteOffset: 0) == Array(label[100..<612]))
            #expect(try device.read(count: 8, atAbsoluteOffset: 8192) == [7, 6, 5, 4, 3, 2, 1, 0])
            #expect(try device.read(count: 4, atAbsoluteOffset: 16_384) == Array(label[0..<4]))
            try device.close()

            // What landed is in the file, seen by another reader, and the file did not grow.
            let file = try contentsOfFile(at: path)
            #expect(file.count == 1 << 20)
            #expect(Array(file[((1 << 20) - 262_144)...]) == label)
            let reopened = try FileBlockDevice(path: path)
            #expect(try reopened.read(count: 512, atAbsoluteOffset: 0) == Array(label[100..<612]))
        }
    }

    @Test func readOnlyDeviceCannotWrite() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/ro.img"
            let contents = patternBytes(count: 8192)
            try makeFile(at: path, bytes: contents)
            let device = try FileBlockDevice(path: path)  // read-only by default

            let error = #expect(throws: DeviceError.self) {
                try device.write([1, 2, 3, 4], atAbsoluteOffset: 0)
            }
            #expect(error?.code == .readOnly)
            #expect(
                error?.message
                    == "cannot write 4 bytes at offset 0x0 of \(path): it was opened read-only; open it with mode .readWrite to write"
            )
            #expect(error?.path == path)
            #expect(error?.offset == 0)
            #expect(try contentsOfFile(at: path) == contents)
        }
    }

    @Test func shortReadAtEndOfFileNamesWhatRemains() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/a.img"
            try makeSparseFile(at: path, size: 134_086_656)
            let device = try FileBlockDevice(path: path)

            let error = #expect(throws: DeviceError.self) {
                try device.read(count: 262_144, atAbsoluteOffset: 0x7fc_0000)
            }
            #expect(error?.code == .shortRead)
            #expect(
                error?.message
                    == "cannot read 262144 bytes at offset 0x7fc0000 of \(path): only 131072 bytes remain (the device is 134086656 bytes)"
            )
            #expect(error?.offset == 0x7fc_0000)
            #expect(error?.systemCall == nil)
            #expect(error?.cause == nil)
        }
    }

    @Test func readEntirelyPastTheEnd() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/a.img"
            try makeFile(at: path, bytes: patternBytes(count: 4096))
            let device = try FileBlockDevice(path: path)

            let error = #expect(throws: DeviceError.self) {
                try device.read(count: 512, atAbsoluteOffset: 4096)
            }
            #expect(error?.code == .shortRead)
            #expect(
                error?.message
                    == "cannot read 512 bytes at offset 0x1000 of \(path): the offset is at or past the end of the device (the device is 4096 bytes)"
            )
        }
    }

    @Test func shortReadLeavesTheAvailableBytesInTheBuffer() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/a.img"
            let contents = patternBytes(count: 1000)
            try makeFile(at: path, bytes: contents)
            let device = try FileBlockDevice(path: path)
            var buffer = [UInt8](repeating: 0xEE, count: 100)
            let error = buffer.withUnsafeMutableBytes { raw in
                #expect(throws: DeviceError.self) { try device.read(into: raw, atAbsoluteOffset: 950) }
            }
            #expect(error?.code == .shortRead)
            #expect(Array(buffer[..<50]) == Array(contents[950...]))
            #expect(Array(buffer[50...]) == [UInt8](repeating: 0xEE, count: 50))
        }
    }

    @Test func writePastTheEndIsRefusedAndTheFileDoesNotGrow() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/a.img"
            try makeSparseFile(at: path, size: 8192)
            let device = try FileBlockDevice(path: path, mode: .readWrite)

            let error = #expect(throws: DeviceError.self) {
                try device.write(patternBytes(count: 512), atAbsoluteOffset: 8000)
            }
            #expect(error?.code == .outOfRange)
            #expect(
                error?.message
                    == "cannot write 512 bytes at offset 0x1f40 of \(path): the write would end past the end of the device (the device is 8192 bytes), and a device never grows"
            )
            #expect(try contentsOfFile(at: path) == [UInt8](repeating: 0, count: 8192))

            // Up to the last byte is fine.
            try device.write([9], atAbsoluteOffset: 8191)
            #expect(try device.read(count: 1, atAbsoluteOffset: 8191) == [9])
        }
    }

    @Test func offsetsBeyondOffTAreInvalid() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/a.img"
            try makeFile(at: path, bytes: [0])
            let device = try FileBlockDevice(path: path, mode: .readWrite)

            let read = #expect(throws: DeviceError.self) {
                try device.read(count: 2, atAbsoluteOffset: UInt64(Int64.max))
            }
            #expect(read?.code == .invalidArgument)
            #expect(
                read?.message
                    == "cannot read 2 bytes at offset 0x7fffffffffffffff of \(path): the range does not fit in a 63-bit file offset"
            )
            let negative = #expect(throws: DeviceError.self) {
                try device.read(count: -1, atAbsoluteOffset: 0)
            }
            #expect(negative?.code == .invalidArgument)
            #expect(negative?.message == "cannot read -1 bytes at offset 0x0 of \(path): a byte count cannot be negative")
            let write = #expect(throws: DeviceError.self) {
                try device.write([1], atAbsoluteOffset: UInt64.max)
            }
            #expect(write?.code == .invalidArgument)
        }
    }

    @Test func operationsAfterCloseThrowClosed() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/a.img"
            try makeFile(at: path, bytes: patternBytes(count: 4096))
            let device = try FileBlockDevice(path: path, mode: .readWrite)
            try device.close()
            try device.close()  // a second close does nothing

            let read = #expect(throws: DeviceError.self) { try device.read(count: 512, atAbsoluteOffset: 512) }
            #expect(read?.code == .closed)
            #expect(read?.message == "cannot read 512 bytes at offset 0x200 of \(path): the device has been closed")
            let write = #expect(throws: DeviceError.self) { try device.write([1], atAbsoluteOffset: 0) }
            #expect(write?.code == .closed)
            let flush = #expect(throws: DeviceError.self) { try device.flush() }
            #expect(flush?.code == .closed)
            #expect(flush?.message == "cannot flush \(path): the device has been closed")
        }
    }

    @Test func openingReadWriteNeverTruncates() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/keep.img"
            let contents = patternBytes(count: 10_000, seed: 3)
            try makeFile(at: path, bytes: contents)
            let device = try FileBlockDevice(path: path, mode: .readWrite)
            #expect(device.sizeInBytes == 10_000)
            try device.close()
            #expect(try contentsOfFile(at: path) == contents)
        }
    }

    @Test func symbolicLinkToAFileIsFollowedAndKeepsItsPath() throws {
        try withTemporaryDirectory { directory in
            let target = "\(directory)/target.img"
            let link = "\(directory)/link.img"
            try makeFile(at: target, bytes: patternBytes(count: 2048))
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
            let device = try FileBlockDevice(path: link)
            #expect(device.path == link)
            #expect(device.sizeInBytes == 2048)
            #expect(try device.read(count: 2048, atAbsoluteOffset: 0) == patternBytes(count: 2048))
        }
    }

    /// Many threads read one device at once; positioned reads share no file offset.
    @Test func concurrentReadsSeeTheirOwnOffsets() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/a.img"
            let contents = patternBytes(count: 64 * 4096)
            try makeFile(at: path, bytes: contents)
            let device = try FileBlockDevice(path: path)
            let failures = Mutex(0)
            DispatchQueue.concurrentPerform(iterations: 64) { index in
                let offset = index * 4096
                let got = try? device.read(count: 4096, atAbsoluteOffset: UInt64(offset))
                if got != Array(contents[offset..<(offset + 4096)]) {
                    failures.withLock { $0 += 1 }
                }
            }
            #expect(failures.withLock { $0 } == 0)
        }
    }
}
