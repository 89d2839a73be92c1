import Testing
import ZFSDevice
import ZFSFormat
import ZFSTestSupport

@testable import ZFSPool

/// Heartbeats and claims use the uncached calls: the fault layer must forward them (so they
/// reach the device's O_DIRECT path) and must apply its faults to them.
@Suite("FaultInjectingDevice uncached I/O")
struct FaultInjectingUncachedTests {
    @Test func forwardsUncachedCallsAndAppliesFaultsToThem() throws {
        let inner = InMemoryBlockDevice(size: 1 << 20, path: "/dev/leaf0")
        let guid = VdevGUID(rawValue: 7)
        let faults = FaultTable(clock: ContinuousClock())
        let device = FaultInjectingDevice(inner: inner, guid: guid, faults: faults)

        try device.uncached.write([1, 2, 3, 4], atAbsoluteOffset: 0x3fc00)
        #expect(try device.uncached.read(count: 4, atAbsoluteOffset: 0x3fc00) == [1, 2, 3, 4])
        #expect(try device.uncached.read(count: 4, atAbsoluteOffset: 0x3fc00) == [1, 2, 3, 4])
        #expect(
            inner.calls == [
                .writeUncached(offset: 0x3fc00, count: 4), .readUncached(offset: 0x3fc00, count: 4),
                .readUncached(offset: 0x3fc00, count: 4),
            ])

        faults.set(.error, on: guid)
        inner.removeAllCalls()
        let write = #expect(throws: DeviceError.self) { try device.uncached.write([9], atAbsoluteOffset: 0x3fc00) }
        #expect(write?.code == .ioError)
        #expect(write?.message.contains("write of /dev/leaf0 at offset 0x3fc00 failed: EIO (injected fault") == true)
        let read = #expect(throws: DeviceError.self) { try device.uncached.read(count: 4, atAbsoluteOffset: 0x3fc00) }
        #expect(read?.code == .ioError)
        #expect(inner.calls.isEmpty, "a faulted uncached I/O never reaches the device")
        #expect(inner.bytes(in: 0x3fc00..<0x3fc04) == [1, 2, 3, 4])

        faults.clearAll()
        try device.uncached.write([9], atAbsoluteOffset: 0x3fc00)
        #expect(inner.calls == [.writeUncached(offset: 0x3fc00, count: 1)])
    }
}
