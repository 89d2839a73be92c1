import Foundation
import Synchronization
import SystemPackage
import Testing
import ZFSDevice
import ZFSTestSupport

@Suite("InMemoryBlockDevice")
struct InMemoryBlockDeviceTests {
    @Test func roundTripAndExactTrace() throws {
        let device = InMemoryBlockDevice(size: 1 << 20, path: "/dev/mem0")
        #expect(device.path == "/dev/mem0")
        #expect(device.sizeInBytes == 1 << 20)
        #expect(device.isBlockDevice)

        let bytes = patternBytes(count: 200_000)  // spans several 64 KiB chunks
        try device.write(bytes, atAbsoluteOffset: 12_345)
        try device.flush()
        #expect(try device.read(count: 200_000, atAbsoluteOffset: 12_345) == bytes)
        #expect(try device.read(count: 4, atAbsoluteOffset: 0) == [0, 0, 0, 0])
        #expect(
            device.calls == [
                .write(offset: 12_345, count: 200_000),
                .flush,
                .read(offset: 12_345, count: 200_000),
                .read(offset: 0, count: 4),
            ]
        )
        #expect(device.bytes(in: 12_345..<12_350) == Array(bytes[0..<5]))
        #expect(device.calls.count == 4)  // inspection is not recorded

        device.removeAllCalls()
        #expect(device.calls == [])
    }

    @Test func contentsInitializerAndSetBytes() throws {
        let device = InMemoryBlockDevice(contents: [1, 2, 3, 4, 5, 6, 7, 8], isBlockDevice: false)
        #expect(device.sizeInBytes == 8)
        #expect(!device.isBlockDevice)
        device.setBytes([9, 9], at: 6)
        #expect(try device.read(count: 8, atAbsoluteOffset: 0) == [1, 2, 3, 4, 5, 6, 9, 9])
        #expect(device.calls == [.read(offset: 0, count: 8)])
    }

    @Test func sparseTerabyteDeviceAllocatesOnlyWhatIsWritten() throws {
        let size: UInt64 = 1 << 40
        let device = InMemoryBlockDevice.sparse(size: size)
        let lastLabel = size - 262_144
        #expect(try device.read(count: 262_144, atAbsoluteOffset: lastLabel) == [UInt8](repeating: 0, count: 262_144))
        let label = patternBytes(count: 262_144, seed: 1)
        try device.write(label, atAbsoluteOffset: lastLabel)
        #expect(try device.read(count: 262_144, atAbsoluteOffset: lastLabel) == label)
    }

    @Test func shortReadAtTheEndMatchesFileBlockDevice() throws {
        let memory = InMemoryBlockDevice.sparse(size: 134_086_656, path: "/tmp/a.img")
        let error = #expect(throws: DeviceError.self) {
            try memory.read(count: 262_144, atAbsoluteOffset: 0x7fc_0000)
        }
        #expect(error?.code == .shortRead)
        #expect(
            error?.message
                == "cannot read 262144 bytes at offset 0x7fc0000 of /tmp/a.img: only 131072 bytes remain (the device is 134086656 bytes)"
        )

        // The same read on a real file of the same size gives the same message (modulo path).
        try withTemporaryDirectory { directory in
            let path = "\(directory)/a.img"
            try makeSparseFile(at: path, size: 134_086_656)
            let file = try FileBlockDevice(path: path)
            let fileError = #expect(throws: DeviceError.self) {
                try file.read(count: 262_144, atAbsoluteOffset: 0x7fc_0000)
            }
            #expect(fileError?.message == error?.message.replacingOccurrences(of: "/tmp/a.img", with: path))
        }
    }

    @Test func writePastTheEndIsOutOfRange() {
        let device = InMemoryBlockDevice(size: 4096)
        let error = #expect(throws: DeviceError.self) { try device.write(patternBytes(count: 2), atAbsoluteOffset: 4095) }
        #expect(error?.code == .outOfRange)
        #expect(device.bytes(in: 4095..<4096) == [0])
        #expect(device.calls == [.write(offset: 4095, count: 2)])
    }

    @Test func readErrorFailsOnlyOverlappingReads() throws {
        let device = InMemoryBlockDevice(size: 1 << 20)
        device.inject(.readError(262_144..<524_288))

        // Touching the range's first or last byte fails; ending right before it or starting at
        // its end does not.
        let first = #expect(throws: DeviceError.self) { try device.read(count: 1, atAbsoluteOffset: 262_144) }
        #expect(first?.code == .ioError)
        #expect(first?.cause == .ioError)
        #expect(first?.systemCall == "pread")
        #expect(
            first?.message == "cannot read 1 bytes at offset 0x40000 of /dev/inmemory0: injected fault: Input/output error"
        )
        #expect(throws: DeviceError.self) { try device.read(count: 2, atAbsoluteOffset: 262_143) }
        #expect(throws: DeviceError.self) { try device.read(count: 1, atAbsoluteOffset: 524_287) }
        _ = try device.read(count: 262_144, atAbsoluteOffset: 0)
        _ = try device.read(count: 512, atAbsoluteOffset: 524_288)
        // Writes are unaffected by a read fault.
        try device.write([1], atAbsoluteOffset: 300_000)

        #expect(
            device.calls == [
                .read(offset: 262_144, count: 1),
                .read(offset: 262_143, count: 2),
                .read(offset: 524_287, count: 1),
                .read(offset: 0, count: 262_144),
                .read(offset: 524_288, count: 512),
                .write(offset: 300_000, count: 1),
            ]
        )

        device.removeAllFaults()
        #expect(try device.read(count: 1, atAbsoluteOffset: 300_000) == [1])
    }

    @Test func faultsWithACountAreSpent() throws {
        let device = InMemoryBlockDevice(size: 4096)
        device.inject(.readError(0..<4096), times: 2)
        #expect(throws: DeviceError.self) { try device.read(count: 512, atAbsoluteOffset: 0) }
        #expect(throws: DeviceError.self) { try device.read(count: 512, atAbsoluteOffset: 0) }
        _ = try device.read(count: 512, atAbsoluteOffset: 0)
        #expect(device.calls == Array(repeating: .read(offset: 0, count: 512), count: 3))
    }

    @Test func writeErrorLandsNothing() throws {
        let device = InMemoryBlockDevice(size: 8192)
        device.inject(.writeError(4096..<8192))
        let error = #expect(throws: DeviceError.self) {
            try device.write([UInt8](repeating: 7, count: 8192), atAbsoluteOffset: 0)
        }
        #expect(error?.code == .ioError)
        #expect(error?.systemCall == "pwrite")
        #expect(device.bytes(in: 0..<8192) == [UInt8](repeating: 0, count: 8192))
        try device.write([7], atAbsoluteOffset: 4095)  // just before the range
        #expect(device.bytes(in: 4095..<4096) == [7])
    }

    @Test func injectedShortReadBehavesLikeATruncatedDevice() throws {
        let contents = patternBytes(count: 8192)
        let device = InMemoryBlockDevice(contents: contents, path: "/dev/sdz")
        device.inject(.shortRead(endingAt: 5000), times: 1)

        // A read that stays before the injected end is untouched and does not spend the fault.
        #expect(try device.read(count: 1000, atAbsoluteOffset: 4000) == Array(contents[4000..<5000]))

        var buffer = [UInt8](repeating: 0xEE, count: 2000)
        let error = buffer.withUnsafeMutableBytes { raw in
            #expect(throws: DeviceError.self) { try device.read(into: raw, atAbsoluteOffset: 4000) }
        }
        #expect(error?.code == .shortRead)
        #expect(
            error?.message == "cannot read 2000 bytes at offset 0xfa0 of /dev/sdz: only 1000 bytes remain (the device is 5000 bytes)"
        )
        #expect(Array(buffer[..<1000]) == Array(contents[4000..<5000]))
        #expect(Array(buffer[1000...]) == [UInt8](repeating: 0xEE, count: 1000))

        // Spent: the whole device is readable again.
        #expect(try device.read(count: 8192, atAbsoluteOffset: 0) == contents)
    }

    @Test func tornWriteLandsOnlyAPrefix() throws {
        let device = InMemoryBlockDevice(size: 1 << 20, path: "/dev/sdy")
        let old = patternBytes(count: 262_144, seed: 1)
        try device.write(old, atAbsoluteOffset: 0)
        device.removeAllCalls()

        device.inject(.tornWrite(0..<262_144, landing: 4096), times: 1)
        let new = patternBytes(count: 262_144, seed: 2)
        let error = #expect(throws: DeviceError.self) { try device.write(new, atAbsoluteOffset: 0) }
        #expect(error?.code == .ioError)
        #expect(
            error?.message
                == "cannot write 262144 bytes at offset 0x0 of /dev/sdy: injected fault: Input/output error after 4096 bytes landed (torn write)"
        )
        #expect(device.bytes(in: 0..<4096) == Array(new[..<4096]))
        #expect(device.bytes(in: 4096..<262_144) == Array(old[4096...]))

        // The retry goes through.
        try device.write(new, atAbsoluteOffset: 0)
        #expect(device.bytes(in: 0..<262_144) == new)
        #expect(device.calls == [.write(offset: 0, count: 262_144), .write(offset: 0, count: 262_144)])
    }

    @Test func flushError() throws {
        let device = InMemoryBlockDevice(size: 512)
        device.inject(.flushError, times: 1)
        let error = #expect(throws: DeviceError.self) { try device.flush() }
        #expect(error?.code == .ioError)
        #expect(error?.systemCall == "fsync")
        try device.flush()
        #expect(device.calls == [.flush, .flush])
    }

    @Test func zeroLengthOperationsAreRecordedButDoNothing() throws {
        let device = InMemoryBlockDevice(size: 512)
        device.inject(.readError(0..<512))
        #expect(try device.read(count: 0, atAbsoluteOffset: 100) == [])
        try device.write([], atAbsoluteOffset: 512)
        #expect(device.calls == [.read(offset: 100, count: 0), .write(offset: 512, count: 0)])
    }

    @Test func callDescriptionsAreReadable() {
        #expect("\(InMemoryBlockDevice.Call.read(offset: 0x40000, count: 512))" == "read(offset: 0x40000, count: 512)")
        #expect("\(InMemoryBlockDevice.Call.write(offset: 0, count: 1))" == "write(offset: 0x0, count: 1)")
        #expect("\(InMemoryBlockDevice.Call.flush)" == "flush")
    }

    /// The double is used from several threads at once (an MMP writer and an import scan).
    @Test func concurrentUseRecordsEveryCall() throws {
        let device = InMemoryBlockDevice(size: 64 * 4096)
        DispatchQueue.concurrentPerform(iterations: 64) { index in
            try? device.write(patternBytes(count: 4096, seed: UInt8(index)), atAbsoluteOffset: UInt64(index * 4096))
        }
        #expect(device.calls.count == 64)
        for index in 0..<64 {
            #expect(device.bytes(in: UInt64(index * 4096)..<UInt64((index + 1) * 4096)) == patternBytes(count: 4096, seed: UInt8(index)))
        }
    }

    /// Code written against `any BlockDevice` runs on the double unchanged.
    @Test func usableAsAnExistential() throws {
        let devices: [any BlockDevice] = [InMemoryBlockDevice(contents: [1, 2, 3])]
        for device in devices {
            #expect(try device.read(count: 3, atAbsoluteOffset: 0) == [1, 2, 3])
        }
    }
}
