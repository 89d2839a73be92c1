import PropertyBased
import Testing
import ZFSFormat

/// `uberblock_t`, `blkptr_t` and `ub_mmp_config`, judged against the fixture and
/// `shared/spec/ondisk.md` §5 and Appendix A.3 / A.4.
@Suite struct UberblockTests {
    /// Appendix A.3 as printed in the spec: the first 0xD8 bytes of label 0 slot 104.
    static let appendixA3 = LabelFixture.xxdRows("""
        0003a000: 0cb1 ba00 0000 0000 8813 0000 0000 0000  magic 0xbab10c | version 5000
        0003a010: e800 0000 0000 0000 ac5a b852 3d2f 62f9  txg 232 | guid_sum 0xf9622f3d52b85aac
        0003a020: e4cf 016b 0000 0000 0200 0000 0000 0000  timestamp 1795280868 | dva0.w0 (asize 2 sectors)
        0003a030: f400 0600 0000 0000 0200 0000 0000 0000  dva0.w1 (offset 0x600f4 sectors) | dva1.w0
        0003a040: 0e01 0700 0000 0000 0200 0000 0000 0000  dva1.w1 | dva2.w0
        0003a050: e402 0800 0000 0000 0700 0000 0f07 0b80  dva2.w1 | blk_prop 0x800b070f00000007
        0003a060: 0000 0000 0000 0000 0000 0000 0000 0000  pad | pad
        0003a070: 0000 0000 0000 0000 e800 0000 0000 0000  phys_birth 0 | birth 232
        0003a080: 9500 0000 0000 0000 e897 0956 0b00 0000  fill 149 | cksum[0] 0xb560997e8
        0003a090: f0d4 766a a004 0000 50ae 1081 12f6 0000  cksum[1] 0x4a06a76d4f0 | cksum[2] 0xf6128110ae50
        0003a0a0: d953 a351 16b4 2200 8813 0000 0000 0000  cksum[3] 0x22b41651a353d9 | software_version 5000
        0003a0b0: 11ea 1ca1 0000 0000 0000 0000 0000 0000  mmp_magic 0xa11cea11 | mmp_delay 0
        0003a0c0: 0000 0000 0000 0000 0000 0000 0000 0000  mmp_config 0 | checkpoint_txg 0
        0003a0d0: 0000 0000 0000 0000                      (master: raidz_reflow_info 0)
        """)

    @Test func appendixA3DecodesFieldByField() throws {
        #expect(Self.appendixA3.count == 0xD8)
        let ub = try Uberblock(decoding: Self.appendixA3)
        #expect(ub.byteOrder == .little)
        #expect(ub.version == 5000)
        #expect(ub.txg == TXG(232))
        #expect(ub.guidSum == 17_969_977_403_589_024_428)
        #expect(ub.guidSum == 0xF962_2F3D_52B8_5AAC)
        #expect(ub.timestampInSeconds == 1_795_280_868)
        #expect(ub.softwareVersion == 5000)
        #expect(ub.mmpMagic == MMPConfig.magic)
        #expect(ub.mmpDelayInNanoseconds == 0)
        #expect(ub.mmpConfig == .none)
        #expect(ub.checkpointTXG == .zero)
        #expect(ub.raidzReflowInfo == 0)
        #expect(ub.isMMPValid)
        #expect(ub.mmpSequence == nil && ub.mmpWriteIntervalInMilliseconds == nil && ub.mmpFailIntervals == nil)

        // Spec §5.2 decoded example.
        let bp = ub.rootBlockPointer
        #expect(bp.dva0.vdevID == 0)
        #expect(bp.dva0.allocatedSectors == 2)
        #expect(bp.dva0.allocatedByteCount == 1024)
        #expect(bp.dva0.offsetInSectors == 0x600F4)
        #expect(bp.dva0.byteOffset == 0xC01_E800)
        #expect(bp.dva0.grid == 0 && !bp.dva0.isGang && !bp.dva0.isEmpty)
        #expect(bp.dva1.byteOffset == 0xE02_1C00)
        #expect(bp.dva2.byteOffset == 0x1005_C800)
        #expect(bp.dvas.map(\.allocatedByteCount) == [1024, 1024, 1024])
        #expect(bp.properties.rawValue == 0x800B_070F_0000_0007)
        #expect(bp.properties.logicalByteCount == 4096)
        #expect(bp.properties.physicalByteCount == 512)
        #expect(bp.properties.compression == 15)
        #expect(bp.properties.checksumAlgorithm == 7)
        #expect(bp.properties.objectType == 11)
        #expect(bp.properties.level == 0)
        #expect(bp.properties.dataByteOrder == .little)
        #expect(!bp.properties.isEmbedded && bp.properties.embeddedType == nil)
        #expect(bp.properties.embeddedPayloadByteCount == nil)
        #expect(!bp.properties.isDeduplicated && !bp.properties.usesEncryption)
        #expect(bp.padding0 == 0 && bp.padding1 == 0)
        #expect(bp.physicalBirthTXG == .zero)
        #expect(bp.birthTXG == TXG(232))
        #expect(bp.fillCount == 149)
        #expect(bp.checksum == BlockPointer.Checksum(
            word0: 0xB_5609_97E8, word1: 0x4A0_6A76_D4F0, word2: 0xF612_8110_AE50, word3: 0x22_B416_51A3_53D9))
        #expect(!bp.isHole)
    }

    @Test func appendixA3MatchesTheFixtureAndReencodes() throws {
        let label = try LabelFixture.label0()
        let fromFixture = try Uberblock(decoding: label[0x3A000..<0x3A400])
        #expect(fromFixture == (try Uberblock(decoding: Self.appendixA3)))
        #expect(Array(label[0x3A000..<0x3A0D8]) == Self.appendixA3)
        #expect(fromFixture.encode() == Array(label[0x3A000..<0x3A0D0]))
        #expect(fromFixture.encodedByteCount == 208)
        // The whole slot, trailer included, byte for byte.
        let slot = fromFixture.encodeSlot(in: UberblockRing(ashift: 9), absoluteOffset: 0x3A000)
        #expect(slot == Array(label[0x3A000..<0x3A400]))
    }

    @Test func appendixA4MultihostUberblock() throws {
        var bytes = [UInt8](repeating: 0, count: 0x400)
        let rows: [(Int, String)] = [
            (0x00, "0cb1 ba00 0000 0000 8813 0000 0000 0000"),
            (0x10, "2403 0000 0000 0000 8592 940c 4965 bd88"),
            (0xA0, "a5d8 6956 97f7 1b00 8813 0000 0000 0000"),
            (0xB0, "11ea 1ca1 0000 0000 669c 233b 0000 0000"),
            (0xC0, "07e8 0300 0000 0000 0000 0000 0000 0000"),
        ]
        for (offset, row) in rows {
            bytes.replaceSubrange(offset..<(offset + 16), with: LabelFixture.hex(row))
        }
        let ub = try Uberblock(decoding: bytes)
        #expect(ub.txg == TXG(804))
        #expect(ub.guidSum == 0x88BD_6549_0C94_9285)
        #expect(ub.mmpDelayInNanoseconds == 992_189_542)
        #expect(ub.mmpConfig.rawValue == 0x3E807)
        // zdb: mmp_seq 0, mmp_fail 0, mmp_write 1000, mmp_valid 7.
        #expect(ub.mmpSequence == 0)
        #expect(ub.mmpFailIntervals == 0)
        #expect(ub.mmpWriteIntervalInMilliseconds == 1000)
        #expect(ub.mmpConfig.validBits == 7)
        #expect(UberblockRing(ashift: 9).syncSlotIndex(for: ub.txg, multihost: true) == 42)
    }

    @Test(arguments: [
        (UInt64(0x3E807), UInt32(1000), UInt16(0), UInt16(0)),
        (0x3_0003_E807, 1000, 3, 0),
        (0x1_0003_E807, 1000, 1, 0),
    ])
    func mmpConfigDecodes(raw: UInt64, interval: UInt32, sequence: UInt16, fail: UInt16) {
        let config = MMPConfig(rawValue: raw)
        #expect(config.isIntervalValid && config.isSequenceValid && config.isFailIntervalsValid)
        #expect(config.validBits == 7)
        #expect(config.writeIntervalInMilliseconds == interval)
        #expect(config.sequence == sequence)
        #expect(config.failIntervals == fail)
        // Built the way uberblock_update / mmp_write_uberblock build it.
        #expect(MMPConfig(writeIntervalInMilliseconds: UInt64(interval), sequence: sequence, failIntervals: fail) == config)
        #expect(MMPConfig.sequenceField(sequence) | MMPConfig.intervalField(UInt64(interval))
            | MMPConfig.failIntervalsField(fail) == raw)
    }

    @Test func mmpConfigMacros() {
        #expect(MMPConfig.intervalField(1000) == 0x3E801)
        #expect(MMPConfig.intervalField(0x1FF_FFFF) == 0xFFFF_FF01)  // truncated to 24 bits, like the C macro
        #expect(MMPConfig.sequenceField(0xFFFF) == 0xFFFF_0000_0002)
        #expect(MMPConfig.failIntervalsField(10) == 0x000A_0000_0000_0004)
        #expect(MMPConfig(rawValue: 0x3E807).settingSequence(3).rawValue == 0x3_0003_E807)
        #expect(MMPConfig(rawValue: 0x3_0003_E807).clearingSequence().rawValue == 0x3E805)
        #expect(MMPConfig().rawValue == 0)
        #expect(MMPConfig(sequence: 5).rawValue == 0x5_0000_0002)
        let onlyFail = MMPConfig(failIntervals: 0xFFFF)
        #expect(onlyFail.rawValue == 0xFFFF_0000_0000_0004)
        #expect(!onlyFail.isIntervalValid && !onlyFail.isSequenceValid && onlyFail.isFailIntervalsValid)
        #expect(MMPConfig.none.description == "0x0")
        #expect(MMPConfig(rawValue: 0x3_0003_E807).description == "0x30003E807 (interval 1000 ms, seq 3, fail intervals 0)")
    }

    @Test func mmpValidNeedsTheMMPMagic() throws {
        var ub = try LabelFixture.sampleUberblock(txg: 10, timestamp: 100)
        ub.mmpConfig = MMPConfig(rawValue: 0x3_0003_E807)
        #expect(ub.mmpSequence == 3 && ub.mmpWriteIntervalInMilliseconds == 1000 && ub.mmpFailIntervals == 0)
        ub.mmpMagic = 0  // a pre-0.7 writer: fields present but not trusted
        #expect(!ub.isMMPValid)
        #expect(ub.mmpSequence == nil && ub.mmpWriteIntervalInMilliseconds == nil && ub.mmpFailIntervals == nil)
        ub.mmpMagic = MMPConfig.magic
        ub.mmpConfig = MMPConfig(rawValue: 0x3_0003_E800)  // values without valid bits
        #expect(ub.mmpSequence == nil && ub.mmpWriteIntervalInMilliseconds == nil && ub.mmpFailIntervals == nil)
    }

    @Test func bigEndianEncodingSwapsEveryWord() throws {
        let ub = try Uberblock(decoding: Self.appendixA3)
        let little = ub.encode(byteOrder: .little)
        let big = ub.encode(byteOrder: .big)
        #expect(big.count == 208)
        for word in 0..<26 {
            #expect(Array(big[(8 * word)..<(8 * word + 8)]) == Array(little[(8 * word)..<(8 * word + 8)].reversed()))
        }
        var decoded = try Uberblock(decoding: big)
        #expect(decoded.byteOrder == .big)
        #expect(decoded.encode() == big)
        decoded.byteOrder = .little
        #expect(decoded == ub)
    }

    @Test func reflowInfoIsOptionalAndZeroIn2_1_11() throws {
        var ub = try Uberblock(decoding: Self.appendixA3)
        ub.raidzReflowInfo = 0x0080_0000_0000_1234
        let encoded = ub.encode(byteOrder: .big)
        #expect(encoded.count == 216)
        #expect(try Uberblock(decoding: encoded).raidzReflowInfo == 0x0080_0000_0000_1234)
        // A 2.1.11-sized buffer has no reflow word.
        #expect(try Uberblock(decoding: Array(encoded[0..<208])).raidzReflowInfo == 0)
    }

    @Test func randomUberblocksRoundTripInBothByteOrders() async {
        await propertyCheck(input: Gen.uint64().array(of: 27), Gen.bool) { words, bigEndian in
            let ub = Uberblock(
                version: words[0], txg: TXG(words[1]), guidSum: words[2], timestampInSeconds: words[3],
                rootBlockPointer: try BlockPointer(decodingWords: Array(words[4..<20])),
                softwareVersion: words[20], mmpMagic: words[21], mmpDelayInNanoseconds: words[22],
                mmpConfig: MMPConfig(rawValue: words[23]), checkpointTXG: TXG(words[24]),
                raidzReflowInfo: words[25] & 1 == 0 ? 0 : words[26], byteOrder: bigEndian ? .big : .little)
            #expect(ub.rootBlockPointer.words == Array(words[4..<20]))
            let encoded = ub.encode()
            #expect(encoded.count == ub.encodedByteCount)
            #expect(try Uberblock(decoding: encoded) == ub)
            // A sealed slot of any size decodes to the same uberblock and verifies.
            for ashift in [UInt64(9), 11, 12, 13] {
                let ring = UberblockRing(ashift: ashift)
                let offset = ring.slotOffset(3, labelOffset: 0x7F8_0000)
                let slot = ub.encodeSlot(in: ring, absoluteOffset: offset)
                #expect(slot.count == ring.slotByteCount)
                #expect(try Uberblock(decoding: slot) == ub)
                #expect(try EmbeddedChecksum.verify(slot, absoluteOffset: offset) == .valid(byteOrder: ub.byteOrder))
            }
        }
    }

    @Test func everyTruncationThrows() throws {
        let bytes = Self.appendixA3
        for count in 0..<Uberblock.byteCount {
            let error = #expect(throws: FormatError.self, "\(count) bytes") {
                try Uberblock(decoding: bytes[0..<count])
            }
            #expect(error?.code == .truncated)
            #expect(error?.offset == count)
        }
        #expect(try Uberblock(decoding: bytes[0..<208]).txg == TXG(232))
        #expect(try Uberblock(decoding: bytes[0..<215]).raidzReflowInfo == 0)
    }

    @Test func badMagicThrows() {
        for first: UInt64 in [0, 0x00BA_B10D, 0x0CB1_BA00_0000_0001, .max, MMPConfig.magic] {
            var bytes = [UInt8](repeating: 0, count: 208)
            for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: first >> (8 * i)) }
            let error = #expect(throws: FormatError.self) { try Uberblock(decoding: bytes) }
            #expect(error?.code == .badMagic)
        }
    }

    @Test func blockPointerWords() throws {
        #expect(throws: FormatError.self) { try BlockPointer(decodingWords: [1, 2, 3]) }
        let hole = BlockPointer()
        #expect(hole.isHole && hole.words == [UInt64](repeating: 0, count: 16))
        // An embedded pointer is never a hole; its sizes use the embedded layout.
        var embedded = BlockPointer()
        embedded.properties = BlockPointer.Properties(rawValue: 1 << 39 | 0x7F << 25 | 99)
        #expect(!embedded.isHole)
        #expect(embedded.properties.embeddedType == 0)
        #expect(embedded.properties.logicalByteCount == 100)
        #expect(embedded.properties.embeddedPayloadByteCount == 128)
        #expect(embedded.properties.physicalByteCount == 0)
        let gang = DVA(word0: 0xFF_0000_0000_0000 | 0xAB << 24 | 0xFF_FFFF, word1: .max)
        #expect(gang.isGang && gang.grid == 0xAB && gang.vdevID == 0xFF_0000 && gang.allocatedSectors == 0xFF_FFFF)
        #expect(gang.offsetInSectors == UInt64.max >> 1)
        #expect(gang.byteOffset == (UInt64.max >> 1) &<< 9)  // wraps like the C macro, never traps
    }

    // MARK: - Choosing

    @Test func compareFollowsTxgThenTimestampThenSequence() throws {
        let base = try LabelFixture.sampleUberblock(txg: 100, timestamp: 1000)
        var newerTXG = base
        newerTXG.txg = TXG(101)
        newerTXG.timestampInSeconds = 1  // txg wins over an older clock
        #expect(Uberblock.compare(newerTXG, base) == 1)
        #expect(Uberblock.compare(base, newerTXG) == -1)
        #expect(newerTXG.isBetter(than: base) && !base.isBetter(than: newerTXG))

        var later = base
        later.timestampInSeconds = 1001
        #expect(Uberblock.compare(later, base) == 1)

        // An MMP heartbeat (same txg and second, seq >= 1) beats the sync-written copy.
        var heartbeat = base
        heartbeat.mmpConfig = MMPConfig(writeIntervalInMilliseconds: 1000, sequence: 1, failIntervals: 10)
        var sync = base
        sync.mmpConfig = MMPConfig(writeIntervalInMilliseconds: 1000, sequence: 0, failIntervals: 10)
        #expect(Uberblock.compare(heartbeat, sync) == 1)
        #expect(Uberblock.compare(heartbeat, base) == 1)  // no MMP info counts as sequence 0
        #expect(Uberblock.compare(sync, base) == 0)
        // A sequence without MMP_VALID does not count.
        var untrusted = heartbeat
        untrusted.mmpMagic = 0
        #expect(Uberblock.compare(untrusted, base) == 0)
        #expect(Uberblock.compare(base, base) == 0 && !base.isBetter(than: base))
        // Unsigned comparison, as TREE_CMP on uint64_t.
        var huge = base
        huge.txg = TXG(.max)
        #expect(Uberblock.compare(huge, base) == 1)
    }

    @Test func bestFollowsVdevUberblockLoad() throws {
        let a = try LabelFixture.sampleUberblock(txg: 5, timestamp: 50)
        let b = try LabelFixture.sampleUberblock(txg: 7, timestamp: 40)
        var c = b
        c.guidSum = 1  // equal by compare: the first seen is kept
        #expect(Uberblock.best(of: [a, b, c]) == b)
        #expect(Uberblock.best(of: [c, b, a]) == c)
        #expect(Uberblock.best(of: [a, b, c], maximumTXG: TXG(6)) == a)
        #expect(Uberblock.best(of: [a, b], maximumTXG: TXG(4)) == nil)
        #expect(Uberblock.best(of: [Uberblock]()) == nil)
        // Only txg 0 (a freshly initialised ring): "no valid uberblock found".
        let zero = try LabelFixture.sampleUberblock(txg: 0, timestamp: 99)
        #expect(Uberblock.best(of: [zero]) == nil)
        #expect(Uberblock.best(of: [zero, a]) == a)
    }
}
