import Testing
import ZFSFormat

/// Layout facts of `include/sys/vdev_impl.h`, standing in for its `_Static_assert`s
/// (`shared/spec/ondisk.md` §1).
@Suite struct LabelLayoutTests {
    @Test func labelRegionsMatchVdevImplH() {
        #expect(VdevLabel.byteCount == 262_144)
        #expect(VdevLabel.padOffset == 0)
        #expect(VdevLabel.padByteCount == 8192)
        #expect(VdevLabel.bootEnvironmentOffset == 0x2000)
        #expect(VdevLabel.bootEnvironmentByteCount == 0x2000)
        #expect(VdevLabel.configBlockOffset == 0x4000)
        #expect(VdevLabel.configBlockByteCount == 0x1C000)
        #expect(VdevLabel.configCapacity == 114_648)
        #expect(VdevLabel.uberblockRingOffset == 0x20000)
        #expect(VdevLabel.uberblockRingByteCount == 131_072)
        #expect(VdevLabel.BootEnvironment.payloadOffset == 8)
        #expect(VdevLabel.BootEnvironment.payloadCapacity == 8144)
        // The regions tile the label exactly.
        #expect(VdevLabel.padByteCount + VdevLabel.bootEnvironmentByteCount + VdevLabel.configBlockByteCount
            + VdevLabel.uberblockRingByteCount == VdevLabel.byteCount)
        #expect(VdevLabel.BootEnvironment.payloadOffset + VdevLabel.BootEnvironment.payloadCapacity
            + EmbeddedChecksum.byteCount == VdevLabel.padByteCount)
    }

    @Test func structureSizes() {
        #expect(EmbeddedChecksum.byteCount == 40)
        #expect(EmbeddedChecksum.magic == 0x0210_DA7A_B10C_7A11)
        #expect(Uberblock.byteCount == 208)
        #expect(Uberblock.byteCountWithReflowInfo == 216)
        #expect(Uberblock.magic == 0x00BA_B10C)
        #expect(BlockPointer.byteCount == 128)
        #expect(BlockPointer.wordCount * 8 == BlockPointer.byteCount)
        #expect(MMPConfig.magic == 0xA11C_EA11)
    }

    @Test func deviceRegions() {
        #expect(LabelLayout.labelCount == 4)
        #expect(LabelLayout.bootRegionOffset == 512 << 10)
        #expect(LabelLayout.bootRegionByteCount == 3_670_016)
        #expect(LabelLayout.startByteCount == 4 << 20)
        #expect(LabelLayout.endByteCount == 512 << 10)
        #expect(LabelLayout.minimumDeviceByteCount == 64 << 20)
        #expect(LabelLayout.bootRegionOffset + LabelLayout.bootRegionByteCount == LabelLayout.startByteCount)
    }

    @Test func labelOffsetsOfThe128MiBFixtureDevice() {
        let offsets = (0..<4).map { LabelLayout.labelOffset(index: $0, deviceSize: 128 << 20) }
        #expect(offsets == [0, 0x40000, 0x7F8_0000, 0x7FC_0000])
        // The size is rounded down to 256 KiB first (vdev_open's P2ALIGN).
        let unaligned = (0..<4).map { LabelLayout.labelOffset(index: $0, deviceSize: (128 << 20) + 100 * 1024) }
        #expect(unaligned == offsets)
        #expect(LabelLayout.alignedDeviceSize((128 << 20) + 262_143) == 128 << 20)
    }

    @Test func labelOffsetsOfTinyDevices() {
        // A 256 KiB file: labels 0 and 3 both at 0, no room for 1 and 2 (zdb: "labels = 0 3").
        #expect((0..<4).map { LabelLayout.labelOffset(index: $0, deviceSize: 262_144) } == [0, nil, nil, 0])
        // Exactly four labels: each has its own place.
        #expect((0..<4).map { LabelLayout.labelOffset(index: $0, deviceSize: 1 << 20) } == [0, 0x40000, 0x80000, 0xC0000])
        #expect((0..<4).map { LabelLayout.labelOffset(index: $0, deviceSize: 100) } == [nil, nil, nil, nil])
        #expect(LabelLayout.labelOffset(index: 4, deviceSize: 128 << 20) == nil)
        #expect(LabelLayout.labelOffset(index: -1, deviceSize: 128 << 20) == nil)
        #expect(LabelLayout.labelOffset(index: 3, deviceSize: .max) == LabelLayout.alignedDeviceSize(.max) - 0x40000)
    }

    @Test func allocatableSpaceAndAsize() {
        // Fixture: the 4 x 128 MiB raidz has asize 517 996 544 = 4 x (128 MiB - 4.5 MiB).
        #expect(LabelLayout.asize(deviceSize: 128 << 20) == 129_499_136)
        #expect(4 * LabelLayout.asize(deviceSize: 128 << 20) == 517_996_544)
        #expect(LabelLayout.allocatableRange(deviceSize: 128 << 20) == 0x40_0000..<0x7F8_0000)
        #expect(LabelLayout.allocatableRange(deviceSize: 0x48_0000) == nil)
        #expect(LabelLayout.asize(deviceSize: 0x48_0000) == 0)
        #expect(LabelLayout.asize(deviceSize: 0x48_0000 + 0x40000) == 0x40000)
    }

    @Test(arguments: [
        (UInt64(0), 10), (9, 10), (10, 10), (11, 11), (12, 12), (13, 13), (14, 13), (16, 13), (.max, 13),
    ])
    func uberblockShiftIsClamped(ashift: UInt64, shift: Int) {
        #expect(VdevLabel.uberblockShift(ashift: ashift) == shift)
        #expect(UberblockRing(ashift: ashift).shift == shift)
    }

    @Test(arguments: [
        (UInt64(9), 1024, 128), (10, 1024, 128), (11, 2048, 64), (12, 4096, 32), (13, 8192, 16), (16, 8192, 16),
    ])
    func ringSlotsPerAshift(ashift: UInt64, slotByteCount: Int, slotCount: Int) {
        let ring = UberblockRing(ashift: ashift)
        #expect(ring.slotByteCount == slotByteCount)
        #expect(ring.slotCount == slotCount)
        #expect(ring.mmpSlotIndex == slotCount - 1)
        #expect(ring.slotIndices == 0..<slotCount)
        #expect(ring.slotOffsetInLabel(0) == 0x20000)
        #expect(ring.slotOffsetInLabel(slotCount - 1) + slotByteCount == VdevLabel.byteCount)
    }

    @Test func slotOffsetsAndSyncSlots() {
        let ring = UberblockRing(ashift: 9)
        // Appendix A.3: label 0 slot 104 is at 0x3A000 and holds txg 232.
        #expect(ring.slotOffset(104, labelOffset: 0) == 0x3A000)
        #expect(ring.syncSlotIndex(for: TXG(232), multihost: false) == 104)
        // Appendix A.4: with multihost, txg 804 lands in slot 42 = 804 mod 127, at 0x2A800.
        #expect(ring.syncSlotIndex(for: TXG(804), multihost: true) == 42)
        #expect(ring.slotOffset(42, labelOffset: 0) == 0x2A800)
        #expect(ring.slotOffset(127, labelOffset: 0x7FC_0000) == 0x7FC_0000 + 0x20000 + 127 * 1024)
        // With multihost, syncs never use the MMP slot.
        let big = UberblockRing(ashift: 12)
        #expect((0..<1000).allSatisfy { big.syncSlotIndex(for: TXG($0), multihost: true) != big.mmpSlotIndex })
        #expect(big.syncSlotIndex(for: TXG(31), multihost: false) == big.mmpSlotIndex)
        #expect(big.syncSlotIndex(for: TXG.max, multihost: true) == Int(UInt64.max % 31))
    }
}
