import Foundation
import SystemPackage
import Testing
import ZFSDevice
import ZFSTestSupport

/// The rounding of O_DIRECT transfers (pure).
@Suite("DirectIOExtent")
struct DirectIOExtentTests {
    @Test func alignedRangeNeedsNoPaddingAndNoReadModifyWrite() throws {
        let extent = try #require(DirectIOExtent(offset: 0x41000 - 1024, count: 1024, blockSize: 512))
        #expect(extent.alignedOffset == 0x41000 - 1024)
        #expect(extent.alignedCount == 1024)
        #expect(extent.isAligned)
        #expect(extent.readModifyWriteRanges.isEmpty)
    }

    @Test func unalignedEdgesRoundOutAndReadBothEdgeBlocks() throws {
        let extent = try #require(DirectIOExtent(offset: 1000, count: 2000, blockSize: 512))
        #expect(extent.alignedOffset == 512)
        #expect(extent.alignedEnd == 3072)
        #expect(extent.alignedCount == 2560)
        #expect(extent.leadingBytes == 488)
        #expect(extent.trailingBytes == 72)
        #expect(!extent.isAligned)
        #expect(extent.readModifyWriteRanges == [512..<1024, 2560..<3072])
    }

    @Test func aRangeInsideOneBlockReadsThatBlockOnce() throws {
        let extent = try #require(DirectIOExtent(offset: 4100, count: 10, blockSize: 4096))
        #expect(extent.alignedOffset == 4096 && extent.alignedCount == 4096)
        #expect(extent.readModifyWriteRanges == [4096..<8192])
    }

    @Test func onlyTheUnalignedEdgeIsRead() throws {
        let head = try #require(DirectIOExtent(offset: 100, count: 412, blockSize: 512))
        #expect(head.readModifyWriteRanges == [0..<512])
        let tail = try #require(DirectIOExtent(offset: 512, count: 100, blockSize: 512))
        #expect(tail.readModifyWriteRanges == [512..<1024])
        let empty = try #require(DirectIOExtent(offset: 100, count: 0, blockSize: 512))
        #expect(empty.readModifyWriteRanges.isEmpty)
    }

    @Test func invalidInputIsNil() {
        #expect(DirectIOExtent(offset: 0, count: 512, blockSize: 0) == nil)
        #expect(DirectIOExtent(offset: 0, count: 512, blockSize: 768) == nil)
        #expect(DirectIOExtent(offset: 0, count: -1, blockSize: 512) == nil)
        #expect(DirectIOExtent(offset: UInt64.max - 10, count: 100, blockSize: 512) == nil)
        #expect(DirectIOExtent(offset: UInt64(Int64.max) - 10, count: 5, blockSize: 512) == nil)
    }

    /// Every offset and count in two blocks' worth, for three block sizes: the rounded range
    /// covers the request, starts and ends on block boundaries, and is minimal. (Plain checks,
    /// one issue per failing input: a million `#expect`s would take minutes.)
    @Test(arguments: [8, 64, 512])
    func roundingIsMinimalAndCovers(blockSize: Int) {
        let size = UInt64(blockSize)
        for offset in UInt64(0)..<(2 * size) {
            for count in 0...(2 * blockSize) {
                guard let extent = DirectIOExtent(offset: offset, count: count, blockSize: blockSize) else {
                    Issue.record("nil for offset \(offset), count \(count), block \(blockSize)")
                    continue
                }
                let end = offset + UInt64(count)
                var ok = extent.alignedOffset % size == 0 && extent.alignedEnd % size == 0
                ok = ok && extent.alignedOffset <= offset && extent.alignedEnd >= end
                ok = ok && offset - extent.alignedOffset < size && extent.alignedEnd - end < size
                ok = ok && extent.leadingBytes + count + extent.trailingBytes == extent.alignedCount
                for range in extent.readModifyWriteRanges {
                    // A block read for merging is one whole block holding bytes outside the request.
                    ok = ok && range.count == blockSize && range.lowerBound % size == 0
                    ok = ok && (range.lowerBound < offset || range.upperBound > end)
                }
                if !ok { Issue.record("wrong rounding: \(extent)") }
            }
        }
    }
}

/// Uncached I/O on the test doubles and on regular files.
@Suite("Uncached I/O")
struct UncachedIOTests {
    @Test func inMemoryDeviceRecordsUncachedCallsAndAppliesFaults() throws {
        let device = InMemoryBlockDevice(size: 1 << 20)
        try device.uncached.write(patternBytes(count: 1024, seed: 3), atAbsoluteOffset: 0x3fc00)
        #expect(try device.uncached.read(count: 1024, atAbsoluteOffset: 0x3fc00) == patternBytes(count: 1024, seed: 3))
        #expect(device.calls == [.writeUncached(offset: 0x3fc00, count: 1024), .readUncached(offset: 0x3fc00, count: 1024)])
        #expect(device.calls.map(\.isWrite) == [true, false])
        #expect(device.calls.map(\.isRead) == [false, true])
        #expect("\(InMemoryBlockDevice.Call.readUncached(offset: 0x40000, count: 512))" == "readUncached(offset: 0x40000, count: 512)")

        device.inject(.readError(0x3fc00..<0x40000), times: 1)
        let readError = #expect(throws: DeviceError.self) { try device.uncached.read(count: 1024, atAbsoluteOffset: 0x3fc00) }
        #expect(readError?.code == .ioError)
        device.inject(.tornWrite(0x3fc00..<0x40000, landing: 100), times: 1)
        let torn = #expect(throws: DeviceError.self) {
            try device.uncached.write([UInt8](repeating: 0xee, count: 1024), atAbsoluteOffset: 0x3fc00)
        }
        #expect(torn?.code == .ioError)
        #expect(device.bytes(in: 0x3fc00..<0x3fc64) == [UInt8](repeating: 0xee, count: 100))
        #expect(device.bytes(in: 0x3fc64..<0x3fc65) == [patternBytes(count: 1024, seed: 3)[100]])
        let pastEnd = #expect(throws: DeviceError.self) { try device.uncached.write([1, 2], atAbsoluteOffset: (1 << 20) - 1) }
        #expect(pastEnd?.code == .outOfRange)
    }

    @Test func uncachedViewRoutesOrdinaryCallsToUncachedOnes() throws {
        let device = InMemoryBlockDevice(size: 1 << 20, path: "/dev/shared0")
        let view = device.uncached
        #expect(view.path == "/dev/shared0" && view.sizeInBytes == 1 << 20 && view.isBlockDevice)
        try view.write([9, 9, 9], atAbsoluteOffset: 512)
        _ = try view.read(count: 3, atAbsoluteOffset: 512)
        try view.flush()
        #expect(device.calls == [.writeUncached(offset: 512, count: 3), .readUncached(offset: 512, count: 3), .flush])
    }

    @Test func regularFileTakesTheOrdinaryPathByDefault() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/vdev.img"
            try makeFile(at: path, bytes: patternBytes(count: 8192))
            let device = try FileBlockDevice(path: path, mode: .readWrite)
            defer { try? device.close() }
            #expect(device.uncachedPath == nil)
            #expect(try device.uncached.read(count: 100, atAbsoluteOffset: 7) == Array(patternBytes(count: 8192)[7..<107]))
            #expect(device.uncachedPath == .buffered(reason: FileBlockDevice.regularFileReason))
            try device.uncached.write([1, 2, 3], atAbsoluteOffset: 8189)
            #expect(Array(try contentsOfFile(at: path)[8189...]) == [1, 2, 3])
        }
    }

    /// The O_DIRECT path, forced on a regular file in the test's temporary directory. ext4 and
    /// xfs accept O_DIRECT; a file system that refuses it with EINVAL takes the documented
    /// fallback, which the test then asserts instead.
    @Test func forcedDirectIOOnARegularFile() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/vdev.img"
            let size = 64 * 1024
            let original = patternBytes(count: size, seed: 1)
            try makeFile(at: path, bytes: original)
            let device = try FileBlockDevice(path: path, mode: .readWrite, forceDirectIO: true)
            defer { try? device.close() }

            // Aligned MMP-slot-sized write and read.
            let slot = patternBytes(count: 1024, seed: 77)
            try device.uncached.write(slot, atAbsoluteOffset: 0x3c00)
            #expect(try device.uncached.read(count: 1024, atAbsoluteOffset: 0x3c00) == slot)

            switch try #require(device.uncachedPath) {
            case .direct(let blockSize):
                #expect(blockSize >= 512 && blockSize & (blockSize - 1) == 0)
            case .buffered(let reason):
                #expect(reason.hasPrefix("the file system refused O_DIRECT (open: "))
                #expect(reason.hasSuffix(FileBlockDevice.regularFileReason))
            }

            // Unaligned write: read-modify-write keeps the neighbours.
            let odd = [UInt8](repeating: 0xab, count: 5000)
            try device.uncached.write(odd, atAbsoluteOffset: 10_001)
            var expected = original
            expected.replaceSubrange(0x3c00..<0x4000, with: slot)
            expected.replaceSubrange(10_001..<15_001, with: odd)
            #expect(try contentsOfFile(at: path) == expected)
            // Unaligned read, and the ordinary descriptor agrees.
            #expect(try device.uncached.read(count: 5002, atAbsoluteOffset: 10_000) == Array(expected[10_000..<15_002]))
            #expect(try device.read(count: 5002, atAbsoluteOffset: 10_000) == Array(expected[10_000..<15_002]))

            // The end of the device behaves as on the ordinary path.
            let short = #expect(throws: DeviceError.self) {
                try device.uncached.read(count: 1024, atAbsoluteOffset: UInt64(size) - 512)
            }
            #expect(short?.code == .shortRead)
            #expect(
                short?.message
                    == "cannot read 1024 bytes at offset 0xfe00 of \(path): only 512 bytes remain (the device is 65536 bytes)")
            let pastEnd = #expect(throws: DeviceError.self) {
                try device.uncached.write(slot, atAbsoluteOffset: UInt64(size) - 512)
            }
            #expect(pastEnd?.code == .outOfRange)

            try device.close()
            let closed = #expect(throws: DeviceError.self) { try device.uncached.read(count: 512, atAbsoluteOffset: 0) }
            #expect(closed?.code == .closed)
        }
    }

    @Test func forcedDirectIORefusesToGrowAFileThatEndsMidBlock() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/odd.img"
            try makeFile(at: path, bytes: patternBytes(count: 8192 + 100))
            let device = try FileBlockDevice(path: path, mode: .readWrite, forceDirectIO: true)
            defer { try? device.close() }
            // The last 100 bytes are readable (the kernel returns a short block at EOF).
            #expect(try device.uncached.read(count: 100, atAbsoluteOffset: 8192) == Array(patternBytes(count: 8292)[8192...]))
            let result = Result { () throws(DeviceError) in try device.uncached.write([1], atAbsoluteOffset: 8200) }
            switch try #require(device.uncachedPath) {
            case .direct(let blockSize):
                let error = try #require(result.failure)
                #expect(error.code == .invalidArgument)
                #expect(
                    error.message
                        == "cannot write 1 bytes at offset 0x2008 of \(path) bypassing the page cache: the device is 8292 "
                        + "bytes, not a whole number of \(blockSize)-byte blocks, so its last block cannot be written directly")
                #expect(try contentsOfFile(at: path).count == 8292)
            case .buffered:
                #expect(result.failure == nil)
            }
        }
    }

    @Test func readOnlyDeviceRefusesUncachedWrites() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/ro.img"
            try makeFile(at: path, bytes: patternBytes(count: 4096))
            let device = try FileBlockDevice(path: path, mode: .readOnly, forceDirectIO: true)
            defer { try? device.close() }
            let error = #expect(throws: DeviceError.self) { try device.uncached.write([1], atAbsoluteOffset: 0) }
            #expect(error?.code == .readOnly)
            #expect(try device.uncached.read(count: 4096, atAbsoluteOffset: 0) == patternBytes(count: 4096))
        }
    }
}

extension Result {
    fileprivate var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
