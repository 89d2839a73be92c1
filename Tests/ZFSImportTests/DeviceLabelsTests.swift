import Testing
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSTestSupport

/// DeviceLabels reads labels at the kernel's offsets and verifies every checksum.
@Suite(.offTheCooperativePool) struct DeviceLabelsTests {
    @Test func offsetsFollowVdevLabelOffset() {
        #expect(DeviceLabels.labelOffsets(deviceSize: 128 << 20) == [0, 0x40000, 0x7F8_0000, 0x7FC_0000])
        // Rounded down to 256 KiB first.
        #expect(DeviceLabels.labelOffsets(deviceSize: (128 << 20) + 1000) == [0, 0x40000, 0x7F8_0000, 0x7FC_0000])
        // Too small for four labels: no wrapped offsets, unlike zdb.
        #expect(DeviceLabels.labelOffsets(deviceSize: 0x40000) == [0, nil, nil, nil])
        #expect(DeviceLabels.labelOffsets(deviceSize: 0) == [nil, nil, nil, nil])
    }

    @Test func genuineLabelIsValidAndCopiesAreNot() throws {
        let label = try Fixtures.bytes("label0-raidz-leaf.bin")
        let device = InMemoryBlockDevice.sparse(size: 128 << 20, path: "/dev/test0")
        for offset: UInt64 in [0, 0x40000, 0x7F8_0000] {
            device.setBytes(label, at: offset)
        }
        let labels = DeviceLabels(reading: device)
        #expect(labels.labels.map(\.status) == [.valid, .badChecksum, .badChecksum, .empty])
        #expect(labels.labels[0].config?.uint64("txg") == 232)
        // The 120 valid uberblocks of label 0; copies elsewhere fail their checksums.
        #expect(labels.labels[0].slots.filter(\.isUsable).count == 120)
        #expect(labels.labels[1].slots.filter(\.isUsable).isEmpty)
        #expect(labels.labels[3].problem?.contains("/dev/test0") == true)
    }

    @Test func readErrorsAreRecordedPerLabel() throws {
        let label = try Fixtures.bytes("label0-raidz-leaf.bin")
        let device = InMemoryBlockDevice.sparse(size: 128 << 20, path: "/dev/test1")
        device.setBytes(label, at: 0)
        device.inject(.readError(0x7FC_0000..<0x800_0000))
        let labels = DeviceLabels(reading: device)
        #expect(labels.labels[0].status == .valid)
        #expect(labels.labels[3].status == .unreadable)
        #expect(labels.labels[3].problem?.contains("/dev/test1") == true)
    }
}
