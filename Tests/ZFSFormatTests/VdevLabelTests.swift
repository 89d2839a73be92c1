import Testing
import ZFSFormat
import ZFSTestSupport

/// Whole labels: decoding the OpenZFS 2.1.11 fixture, re-encoding it byte for byte, and
/// encoding labels and rings in both writer byte orders (`shared/spec/ondisk.md` §1, §2, §5).
@Suite(.offTheCooperativePool) struct VdevLabelTests {
    static func fixtureLabel() throws -> VdevLabel {
        try VdevLabel(decoding: LabelFixture.label0(), absoluteOffset: 0, index: 0)
    }

    // MARK: - Decoding the fixture

    @Test func fixtureBootEnvironmentAndConfig() throws {
        let label = try Self.fixtureLabel()
        #expect(label.index == 0 && label.absoluteOffset == 0)
        #expect(label.bootEnvironment.version == .raw)
        #expect(label.bootEnvironment.isEmpty)
        #expect(label.bootEnvironment.payload.count == 8144)
        #expect(label.bootEnvironmentChecksum == .valid(byteOrder: .little))
        #expect(label.configChecksum == .valid(byteOrder: .little))
        #expect(label.configBytes.count == 0x1BFD8)
        #expect(label.configBytes.startIndex == 0x4000)
        // Appendix A.1: XDR header, version 0, nvflag 1, pair "version" = 5000, start of "name".
        #expect(Array(label.configBytes.prefix(64)) == LabelFixture.hex("""
            01010000 00000000 00000001 00000024 00000020 00000007 76657273 696f6e00
            00000008 00000001 00000000 00001388 00000024 00000020 00000004 6e616d65
            """))
        // The packed list is 1960 bytes; the rest of the area is zero.
        #expect(label.configBytes.dropFirst(LabelFixture.packedConfigByteCount).allSatisfy { $0 == 0 })
        #expect(try label.verifiedConfigBytes() == label.configBytes)
        #expect(label.ringBytes.count == 0x20000)
        // A ring full of synced slots is not an initialised ring.
        #expect(label.initializedRingChecksum() == .mismatch(byteOrder: .little))
    }

    @Test func fixtureHas120UsableUberblocksAndTheBestIsSlot104() throws {
        let slots = try Self.fixtureLabel().uberblockSlots(ashift: LabelFixture.ashift)
        #expect(slots.count == 128)
        #expect(slots.map(\.index) == Array(0..<128))
        #expect(slots.map(\.absoluteOffset) == (0..<128).map { 0x20000 + UInt64($0) * 1024 })
        let usable = slots.filter(\.isUsable)
        #expect(usable.count == 120)
        for slot in slots {
            if LabelFixture.emptySlots.contains(slot.index) {
                #expect(slot.checksum == .noMagic, "slot \(slot.index)")
                #expect(slot.uberblock == nil, "slot \(slot.index)")
            } else {
                #expect(slot.checksum == .valid(byteOrder: .little), "slot \(slot.index)")
                let ub = try #require(slot.uberblock)
                #expect(Int(ub.txg.rawValue % 128) == slot.index)
                #expect((60...232).contains(ub.txg.rawValue))
                // txgs 60 and 63 predate a vdev change that ztest made; every later one has the final sum.
                #expect(ub.guidSum == (ub.txg <= TXG(63) ? 265_016_277_936_536_391 : 17_969_977_403_589_024_428))
                #expect(ub.byteOrder == .little)
            }
        }
        let best = try #require(Uberblock.best(of: usable.compactMap(\.uberblock)))
        let bestSlot = try #require(slots.first { $0.uberblock == best })
        #expect(bestSlot.index == 104)
        #expect(bestSlot.absoluteOffset == 0x3A000)
        #expect(best.txg == TXG(232))
        #expect(best.timestampInSeconds == 1_795_280_868)
        #expect(best.guidSum == 17_969_977_403_589_024_428)
        // Rewinding (spa_load_max_txg): the ring holds txgs 60, 63, 70..78, 86..95, 97, 105..186,
        // 196, 207..213, 224, 226..232 (what zdb printed).
        let candidates = usable.compactMap(\.uberblock)
        #expect(Uberblock.best(of: candidates, maximumTXG: TXG(195))?.txg == TXG(186))
        #expect(Uberblock.best(of: candidates, maximumTXG: TXG(223))?.txg == TXG(213))
        #expect(Uberblock.best(of: candidates, maximumTXG: TXG(62))?.txg == TXG(60))
        #expect(Uberblock.best(of: candidates, maximumTXG: TXG(59)) == nil)
    }

    @Test func fixtureSlotsMatchWhatZdbPrinted() throws {
        let printed = LabelFixture.zdbUberblocks(try Fixtures.text("label0-raidz-leaf.zdb-lu.txt"))
        #expect(printed.count == 120)
        let slots = try Self.fixtureLabel().uberblockSlots(ashift: LabelFixture.ashift)
        #expect(Set(printed.map(\.slot)) == Set(slots.filter { $0.uberblock != nil }.map(\.index)))
        for entry in printed {
            let ub = try #require(slots[entry.slot].uberblock)
            let f = entry.fields
            #expect(f["magic"] == "0000000000bab10c")
            #expect(f["version"] == String(ub.version))
            #expect(f["txg"] == String(ub.txg.rawValue), "slot \(entry.slot)")
            #expect(f["guid_sum"] == String(ub.guidSum))
            #expect(f["timestamp"]?.split(separator: " ").first.map(String.init) == String(ub.timestampInSeconds))
            #expect(f["mmp_magic"] == "00000000a11cea11" && ub.mmpMagic == MMPConfig.magic)
            #expect(f["mmp_delay"] == String(ub.mmpDelayInNanoseconds))
            #expect(f["mmp_valid"] == String(ub.mmpConfig.validBits, radix: 16))
            #expect(f["checkpoint_txg"] == String(ub.checkpointTXG.rawValue))
            #expect(entry.labels == "0 1 2 3")
        }
    }

    @Test func aLabelReadAtTheWrongOffsetFailsEveryChecksumButStillDecodes() throws {
        // Label 0's bytes presented as label 1 (offset 0x40000): what a reader sees when a label
        // was copied, or when it computes offsets for the wrong device size.
        let label = try VdevLabel(decoding: LabelFixture.label0(), absoluteOffset: 0x40000, index: 1)
        #expect(label.configChecksum == .mismatch(byteOrder: .little))
        #expect(label.bootEnvironmentChecksum == .mismatch(byteOrder: .little))
        let error = #expect(throws: FormatError.self) { try label.verifiedConfigBytes() }
        #expect(error?.code == .checksumMismatch)
        #expect(error?.offset == 0x1FFD8)
        #expect(error?.message.contains("label 1") == true)
        #expect(error?.message.contains("0x44000") == true)
        let slots = label.uberblockSlots(ashift: 9)
        #expect(slots.filter { $0.uberblock != nil }.count == 120)  // zdb would print them all
        #expect(slots.filter(\.isUsable).isEmpty)  // the kernel would use none
        #expect(Uberblock.best(of: slots.filter(\.isUsable).compactMap(\.uberblock)) == nil)
    }

    @Test func anUnwrittenLabelHasNoTrailers() throws {
        let label = try VdevLabel(decoding: [UInt8](repeating: 0, count: VdevLabel.byteCount), absoluteOffset: 0x7FC_0000, index: 3)
        #expect(label.configChecksum == .noMagic && label.bootEnvironmentChecksum == .noMagic)
        let error = #expect(throws: FormatError.self) { try label.verifiedConfigBytes() }
        #expect(error?.code == .badMagic)
        #expect(label.uberblockSlots(ashift: 12).allSatisfy { $0.checksum == .noMagic && $0.uberblock == nil })
    }

    @Test func everyTruncationAndBadIndexThrows() throws {
        let bytes = try LabelFixture.label0()
        bytes.withUnsafeBytes { raw in
            for count in 0..<VdevLabel.byteCount {
                do throws(FormatError) {
                    _ = try VdevLabel(decoding: UnsafeRawBufferPointer(rebasing: raw[0..<count]), absoluteOffset: 0, index: 0)
                    Issue.record("a \(count)-byte label decoded")
                } catch {
                    if error.code != .truncated || error.offset != count {
                        Issue.record("a \(count)-byte label threw \(error.code)")
                    }
                }
            }
        }
        let tooLong = #expect(throws: FormatError.self) {
            try VdevLabel(decoding: bytes + [0], absoluteOffset: 0, index: 0)
        }
        #expect(tooLong?.code == .invalidSize)
        for index in [-1, 4, 100] {
            let error = #expect(throws: FormatError.self) {
                try VdevLabel(decoding: bytes[...], absoluteOffset: 0, index: index)
            }
            #expect(error?.code == .invalidLayout)
        }
        // The ring decoder on its own.
        let ring = UberblockRing(ashift: 9)
        for count in 0..<UberblockRing.byteCount {
            do throws(FormatError) {
                _ = try ring.decodeSlots(bytes[0x20000..<(0x20000 + count)], labelOffset: 0)
                Issue.record("a \(count)-byte ring decoded")
            } catch {
                if error.code != .truncated { Issue.record("a \(count)-byte ring threw \(error.code)") }
            }
        }
        #expect(try ring.decodeSlots(Array(bytes[0x20000...]), labelOffset: 0).filter(\.isUsable).count == 120)
    }

    // MARK: - Single-bit corruption

    @Test func everyBitFlipInASealedSlotIsDetected() throws {
        let ring = UberblockRing(ashift: 9)
        let offset = ring.slotOffset(104, labelOffset: 0)
        for order in [Endianness.little, .big] {
            let ub = try LabelFixture.sampleUberblock(txg: 232, timestamp: 1_795_280_868, byteOrder: order)
            let slot = ub.encodeSlot(in: ring, absoluteOffset: offset)
            #expect(try EmbeddedChecksum.verify(slot, absoluteOffset: offset) == .valid(byteOrder: order))
            let magicBytes = (slot.count - 40)..<(slot.count - 32)
            for bit in 0..<(slot.count * 8) {
                var flipped = slot
                flipped[bit / 8] ^= 1 << UInt8(bit % 8)
                let status = try EmbeddedChecksum.verify(flipped, absoluteOffset: offset)
                let expected: EmbeddedChecksum.Status = magicBytes.contains(bit / 8) ? .noMagic : .mismatch(byteOrder: order)
                if status != expected {
                    Issue.record("\(order)-endian slot, bit \(bit): \(status), expected \(expected)")
                }
                // Decoding the uberblock itself never traps either: a flip in its magic just loses it.
                let decoded = try? Uberblock(decoding: flipped)
                if (bit / 8 < 8) == (decoded != nil) {
                    Issue.record("\(order)-endian slot, bit \(bit): uberblock \(decoded == nil ? "lost" : "kept")")
                }
            }
        }
    }

    @Test func everyBitFlipInTheConfigTrailerIsDetected() throws {
        var bytes = try LabelFixture.label0()
        for bit in (0x1FFD8 * 8)..<(0x20000 * 8) {
            bytes[bit / 8] ^= 1 << UInt8(bit % 8)
            let label = try VdevLabel(decoding: bytes, absoluteOffset: 0, index: 0)
            #expect(!label.configChecksum.isValid, "bit \(bit)")
            #expect(throws: FormatError.self) { try label.verifiedConfigBytes() }
            bytes[bit / 8] ^= 1 << UInt8(bit % 8)
        }
    }

    // MARK: - Encoding

    @Test func reencodingTheFixtureReproducesItByteForByte() throws {
        let original = try LabelFixture.label0()
        let decoded = try Self.fixtureLabel()
        let layout = UberblockRing(ashift: LabelFixture.ashift)
        let uberblocks = decoded.uberblockSlots(ring: layout).compactMap(\.uberblock).sorted { $0.txg < $1.txg }
        let encoded = try VdevLabel.encode(
            configPacked: LabelFixture.packedConfig(),
            ring: .synced(uberblocks, layout: layout, multihost: false),
            labelIndex: 0, deviceSize: LabelFixture.deviceSize, byteOrder: .little)
        #expect(encoded.count == VdevLabel.byteCount)
        #expect(encoded == original)
        // Passing the decoded boot environment back changes nothing.
        let again = try VdevLabel.encode(
            configPacked: Array(decoded.configBytes), bootEnvironment: decoded.bootEnvironment,
            ring: .encoded(Array(decoded.ringBytes)), labelOffset: 0, byteOrder: .little)
        #expect(again == original)
    }

    @Test(arguments: [0, 1, 2, 3])
    func encodedLabelsVerifyAtTheirOwnOffsetOnly(labelIndex: Int) throws {
        let deviceSize = LabelFixture.deviceSize
        let offset = try #require(LabelLayout.labelOffset(index: labelIndex, deviceSize: deviceSize))
        let layout = UberblockRing(ashift: 9)
        let uberblocks = try (60...70).map { try LabelFixture.sampleUberblock(txg: $0, timestamp: 1000 + $0) }
        let bytes = try VdevLabel.encode(
            configPacked: LabelFixture.packedConfig(), ring: .synced(uberblocks, layout: layout, multihost: false),
            labelIndex: labelIndex, deviceSize: deviceSize, byteOrder: .little)
        let label = try VdevLabel(decoding: bytes, absoluteOffset: offset, index: labelIndex)
        #expect(label.configChecksum == .valid(byteOrder: .little))
        #expect(label.bootEnvironmentChecksum == .valid(byteOrder: .little))
        // Appendix A.2: the config blocks of labels 0..3 verify with 0x4000, 0x44000, 0x7F84000, 0x7FC4000.
        let verifiers: [UInt64] = [0x4000, 0x44000, 0x7F8_4000, 0x7FC_4000]
        #expect(try EmbeddedChecksum.verify(bytes[0x4000..<0x20000], absoluteOffset: verifiers[labelIndex]).isValid)
        #expect(Array(label.configBytes.prefix(LabelFixture.packedConfigByteCount)) == (try LabelFixture.packedConfig()))
        let slots = label.uberblockSlots(ring: layout)
        #expect(slots.filter(\.isUsable).compactMap(\.uberblock) == uberblocks)
        #expect(Uberblock.best(of: slots.filter(\.isUsable).compactMap(\.uberblock))?.txg == TXG(70))
        // The same bytes claimed for another label position verify nowhere.
        let other = (labelIndex + 1) % 4
        let misplaced = try VdevLabel(
            decoding: bytes, absoluteOffset: try #require(LabelLayout.labelOffset(index: other, deviceSize: deviceSize)),
            index: other)
        #expect(!misplaced.configChecksum.isValid)
        #expect(misplaced.uberblockSlots(ring: layout).allSatisfy { !$0.isUsable })
    }

    @Test func bigEndianWrittenLabelDecodesToTheSameValues() throws {
        let layout = UberblockRing(ashift: 12)
        let uberblocks = try (1000...1040).map { try LabelFixture.sampleUberblock(txg: $0, timestamp: 2000 + $0 / 3) }
        let boot = VdevLabel.BootEnvironment(version: .nvlist, payload: Array("not really XDR".utf8))
        let offset = try #require(LabelLayout.labelOffset(index: 2, deviceSize: 1 << 30))
        var decoded: [Endianness: VdevLabel] = [:]
        var bytes: [Endianness: [UInt8]] = [:]
        for order in [Endianness.little, .big] {
            let encoded = try VdevLabel.encode(
                configPacked: LabelFixture.packedConfig(), bootEnvironment: boot,
                ring: .synced(uberblocks, layout: layout, multihost: false),
                labelIndex: 2, deviceSize: 1 << 30, byteOrder: order)
            bytes[order] = encoded
            let label = try VdevLabel(decoding: encoded, absoluteOffset: offset, index: 2)
            #expect(label.configChecksum == .valid(byteOrder: order))
            #expect(label.bootEnvironmentChecksum == .valid(byteOrder: order))
            #expect(label.uberblockSlots(ring: layout).filter(\.isUsable).allSatisfy { $0.checksum == .valid(byteOrder: order) })
            decoded[order] = label
        }
        let little = try #require(decoded[.little]), big = try #require(decoded[.big])
        // XDR config and the big-endian vbe_version do not depend on the writer.
        #expect(little.configBytes == big.configBytes)
        #expect(little.bootEnvironment == big.bootEnvironment)
        #expect(big.bootEnvironment.version == .nvlist)
        #expect(Array(try #require(bytes[.big])[0x2000..<0x2008]) == [0, 0, 0, 0, 0, 0, 0, 1])
        #expect(Array(try #require(bytes[.little])[0x2000..<0x2008]) == [0, 0, 0, 0, 0, 0, 0, 1])
        #expect(big.bootEnvironment.payload.starts(with: Array("not really XDR".utf8)))
        // Uberblocks: same values, recorded byte order differs.
        let fromLittle = little.uberblockSlots(ring: layout).compactMap(\.uberblock)
        let fromBig = big.uberblockSlots(ring: layout).compactMap(\.uberblock)
        #expect(fromBig.allSatisfy { $0.byteOrder == .big })
        #expect(fromBig.map { var u = $0; u.byteOrder = .little; return u } == fromLittle)
        #expect(Uberblock.best(of: fromBig)?.txg == TXG(1040))
        // Slot 1040 mod 32 = 16 holds txg 1040; slot 15 still holds 1039 (1039 mod 32 = 15).
        #expect(fromBig.count == 32)
    }

    @Test func multihostRingReservesTheLastSlotForHeartbeats() throws {
        let layout = UberblockRing(ashift: 12)
        let mmp = MMPConfig(writeIntervalInMilliseconds: 1000, sequence: 0, failIntervals: 10)
        let syncs = try (UInt64(0)..<40).map { txg -> Uberblock in
            var ub = try LabelFixture.sampleUberblock(txg: 500 + txg, timestamp: 7000 + txg)
            ub.mmpConfig = mmp
            ub.mmpDelayInNanoseconds = 992_189_542
            return ub
        }
        let labelOffset = try #require(LabelLayout.labelOffset(index: 3, deviceSize: 64 << 20))
        var ring = layout.encode(uberblocks: syncs, multihost: true, labelOffset: labelOffset, byteOrder: .big)
        #expect(ring[(layout.slotOffsetInLabel(layout.mmpSlotIndex) - UberblockRing.offsetInLabel)...].allSatisfy { $0 == 0 })

        var heartbeat = try #require(syncs.last)
        heartbeat.mmpConfig = mmp.settingSequence(1)
        try layout.write(heartbeat, slot: layout.mmpSlotIndex, into: &ring, labelOffset: labelOffset)
        let slots = try layout.decodeSlots(ring, labelOffset: labelOffset)
        #expect(slots.filter(\.isUsable).count == 32)
        #expect(slots[layout.mmpSlotIndex].checksum == .valid(byteOrder: .little))  // heartbeat's own order
        let best = try #require(Uberblock.best(of: slots.filter(\.isUsable).compactMap(\.uberblock)))
        #expect(best.txg == TXG(539) && best.mmpSequence == 1)
        #expect(slots[layout.syncSlotIndex(for: TXG(539), multihost: true)].uberblock?.mmpSequence == 0)

        let badSlot = #expect(throws: FormatError.self) {
            try layout.write(heartbeat, slot: layout.slotCount, into: &ring, labelOffset: labelOffset)
        }
        #expect(badSlot?.code == .invalidLayout)
        var shortRing = [UInt8](repeating: 0, count: 100)
        let badRing = #expect(throws: FormatError.self) {
            try layout.write(heartbeat, slot: 0, into: &shortRing, labelOffset: labelOffset)
        }
        #expect(badRing?.code == .invalidSize)
    }

    @Test(arguments: [Endianness.little, .big])
    func initializedRingHasNoUsableUberblock(order: Endianness) throws {
        let template = try LabelFixture.sampleUberblock(txg: 4, timestamp: 1_795_280_860, byteOrder: order)
        let offset = try #require(LabelLayout.labelOffset(index: 1, deviceSize: 64 << 20))
        let bytes = try VdevLabel.encode(
            configPacked: LabelFixture.packedConfig(), ring: .initialized(template: template),
            labelIndex: 1, deviceSize: 64 << 20, byteOrder: order)
        let label = try VdevLabel(decoding: bytes, absoluteOffset: offset, index: 1)
        #expect(label.initializedRingChecksum() == .valid(byteOrder: order))
        #expect(try label.ringBytes.withUnsafeBytes { try UberblockRing.verifyInitialized($0, labelOffset: offset) }
            == .valid(byteOrder: order))
        let slots = label.uberblockSlots(ashift: 9)
        // Slot 0 holds the txg-0 uberblock that zdb prints, but no trailer of its own.
        var expected = template
        expected.txg = .zero
        #expect(slots[0].uberblock == expected)
        #expect(slots[0].checksum == .noMagic)
        // The last slot holds only the ring's trailer.
        #expect(slots[127].uberblock == nil && slots[127].checksum == .mismatch(byteOrder: order))
        #expect(slots[1..<127].allSatisfy { $0.checksum == .noMagic && $0.uberblock == nil })
        #expect(slots.filter(\.isUsable).isEmpty)
        #expect(Uberblock.best(of: slots.compactMap(\.uberblock)) == nil)
    }

    @Test func encodingRejectsWhatDoesNotFit() throws {
        let fits = [UInt8](repeating: 0x5A, count: VdevLabel.configCapacity)
        let label = try VdevLabel(
            decoding: VdevLabel.encode(configPacked: fits, ring: .zero, labelIndex: 0, deviceSize: 64 << 20, byteOrder: .little),
            absoluteOffset: 0, index: 0)
        #expect(label.configChecksum.isValid && label.configBytes.allSatisfy { $0 == 0x5A })

        let tooLarge = #expect(throws: FormatError.self) {
            try VdevLabel.encode(configPacked: fits + [0], ring: .zero, labelIndex: 0, deviceSize: 64 << 20, byteOrder: .little)
        }
        #expect(tooLarge?.code == .tooLarge)
        let bootTooLarge = #expect(throws: FormatError.self) {
            try VdevLabel.encode(
                configPacked: [], bootEnvironment: .init(version: .raw, payload: [UInt8](repeating: 1, count: 8145)),
                ring: .zero, labelIndex: 0, deviceSize: 64 << 20, byteOrder: .little)
        }
        #expect(bootTooLarge?.code == .tooLarge)
        for (index, size) in [(4, UInt64(64 << 20)), (-1, 64 << 20), (1, 262_144), (0, 100)] {
            let error = #expect(throws: FormatError.self) {
                try VdevLabel.encode(configPacked: [], ring: .zero, labelIndex: index, deviceSize: size, byteOrder: .little)
            }
            #expect(error?.code == .invalidLayout, "label \(index), \(size) bytes")
        }
        let badRing = #expect(throws: FormatError.self) {
            try VdevLabel.encode(configPacked: [], ring: .encoded([0]), labelOffset: 0, byteOrder: .little)
        }
        #expect(badRing?.code == .invalidSize)
    }
}

extension VdevLabelTests {
    @Test func absurdOffsetsNeverTrap() throws {
        // Offsets come from the caller, not the bytes, but a wrong one must still only fail checksums.
        let bytes = try LabelFixture.label0()
        let label = try VdevLabel(decoding: bytes, absoluteOffset: .max, index: 3)
        #expect(label.configChecksum == .mismatch(byteOrder: .little))
        #expect(label.uberblockSlots(ashift: 9).allSatisfy { !$0.isUsable })
        #expect(label.initializedRingChecksum() == .mismatch(byteOrder: .little))
        #expect(throws: FormatError.self) { try label.verifiedConfigBytes() }
        let encoded = try VdevLabel.encode(
            configPacked: [], ring: .initialized(template: LabelFixture.sampleUberblock(txg: 1, timestamp: 1)),
            labelOffset: .max - 5, byteOrder: .big)
        #expect(try VdevLabel(decoding: encoded, absoluteOffset: .max - 5, index: 0).configChecksum == .valid(byteOrder: .big))
    }
}
