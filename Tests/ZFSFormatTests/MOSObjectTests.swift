// dnode_phys, objset_phys and ZAP (micro and fat) decoding: built byte by byte from the
// OpenZFS layouts, then damaged in the ways a corrupt block can be. Every damaged input must
// give a typed FormatError; random bytes must never trap or loop.

import Testing
import ZFSFormat
import ZFSTestSupport

/// Little helpers that lay out words in a byte order.
struct ByteLayout {
    var bytes: [UInt8]
    var order: Endianness
    init(count: Int, order: Endianness = .little) {
        bytes = [UInt8](repeating: 0, count: count)
        self.order = order
    }
    mutating func put(_ value: UInt64, at offset: Int, width: Int = 8) {
        for i in 0..<width {
            let shift = order == .little ? i : width - 1 - i
            bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(shift)))
        }
    }
}

/// A dnode: type 1, `pointers` block pointers (each with lsize field `i`), a bonus.
func makeDnode(
    order: Endianness = .little, pointers: Int = 1, levels: UInt8 = 1, indirectShift: UInt8 = 14, sectors: Int = 32,
    bonus: [UInt8] = [], maxBlockID: UInt64 = 0, type: UInt8 = 21
) -> [UInt8] {
    // Laid out in a larger buffer, then cut to one slot: damaged layouts overflow it.
    var d = ByteLayout(count: 1024, order: order)
    d.bytes[0] = type
    d.bytes[1] = indirectShift
    d.bytes[2] = levels
    d.bytes[3] = UInt8(pointers)
    d.put(UInt64(sectors), at: 8, width: 2)
    d.put(UInt64(bonus.count), at: 10, width: 2)
    d.put(maxBlockID, at: 16)
    for i in 0..<pointers {
        d.put(1 << 32 | 8, at: 64 + 128 * i)  // a DVA on vdev 1
        d.put(UInt64(i), at: 64 + 128 * i + 8)
        d.put(UInt64(i) | 7 << 40, at: 64 + 128 * i + 48)
    }
    let start = 64 + 128 * pointers
    for (i, b) in bonus.enumerated() { d.bytes[start + i] = b }
    return Array(d.bytes.prefix(512))
}

@Suite struct MOSObjectTests {
    @Test func dnodesDecodeInBothByteOrders() throws {
        for order in [Endianness.little, .big] {
            var bonus = ByteLayout(count: 8, order: order)
            bonus.put(1234, at: 0)
            let bytes = [UInt8](repeating: 0, count: 512) + makeDnode(order: order, pointers: 2, bonus: bonus.bytes, maxBlockID: 5)
            let dnode = try Dnode(decoding: bytes, at: 512, byteOrder: order)
            #expect(dnode.type == 21)
            #expect(dnode.blockPointers.count == 2)
            #expect(dnode.blockPointers[1].dva0.offsetInSectors == 1)
            #expect(dnode.dataBlockByteCount == 16384)
            #expect(dnode.maximumBlockID == 5)
            #expect(dnode.bonusWord == 1234)
        }
        // A free slot decodes as type 0 with nothing else.
        let free = try Dnode(decoding: [UInt8](repeating: 0, count: 512), at: 0, byteOrder: .little)
        #expect(free.type == 0 && free.blockPointers.isEmpty)
    }

    @Test func damagedDnodesAreRefused() {
        func code(_ bytes: [UInt8], at offset: Int = 0) -> FormatError.Code? {
            do {
                _ = try Dnode(decoding: bytes, at: offset, byteOrder: .little)
                return nil
            } catch { return error.code }
        }
        #expect(code(makeDnode(pointers: 0)) == .invalidLayout)
        #expect(code(makeDnode(pointers: 4)) == .invalidLayout)  // 64 + 512 > 512
        #expect(code(makeDnode(pointers: 3, bonus: [UInt8](repeating: 1, count: 100))) == .invalidLayout)
        #expect(code(makeDnode(levels: 0)) == .invalidLayout)
        #expect(code(makeDnode(levels: 10)) == .invalidLayout)
        #expect(code(makeDnode(levels: 2, indirectShift: 40)) == .invalidLayout)
        #expect(code(makeDnode(sectors: 0)) == .invalidLayout)
        #expect(code(Array(makeDnode().prefix(300))) == .truncated)
        #expect(code(makeDnode(), at: 100) == .truncated)
        #expect(code(makeDnode(), at: -1) == .truncated)
        var extra = makeDnode()
        extra[12] = 3  // four slots in a 512-byte buffer
        #expect(code(extra) == .truncated)
    }

    @Test func blockPathsFollowTheIndirection() throws {
        // Two levels, 16 KiB indirect blocks: 128 pointers each.
        let dnode = try Dnode(decoding: makeDnode(pointers: 3, levels: 2), at: 0, byteOrder: .little)
        #expect(dnode.path(toBlock: 0)! == (0, [0]))
        #expect(dnode.path(toBlock: 300)! == (2, [44]))
        #expect(dnode.path(toBlock: 3 * 128) == nil)
        let flat = try Dnode(decoding: makeDnode(pointers: 1), at: 0, byteOrder: .little)
        #expect(flat.path(toBlock: 0)! == (0, []))
        #expect(flat.path(toBlock: 1) == nil)
        let deep = try Dnode(decoding: makeDnode(pointers: 1, levels: 9, indirectShift: 17), at: 0, byteOrder: .little)
        #expect(deep.path(toBlock: .max) != nil)
    }

    @Test func objsetBlocksCarryTheMetaDnodeAndType() throws {
        var block = ByteLayout(count: 1024)
        block.bytes.replaceSubrange(0..<512, with: makeDnode(type: 10))
        block.put(ObjsetPhys.typeMeta, at: 0x2c0)
        let objset = try ObjsetPhys(decoding: block.bytes, byteOrder: .little)
        #expect(objset.type == ObjsetPhys.typeMeta)
        #expect(objset.metaDnode.type == 10)
        #expect(throws: FormatError.self) { try ObjsetPhys(decoding: Array(block.bytes.prefix(600)), byteOrder: .little) }
    }

    // MARK: ZAP

    static func microZAP(_ entries: [(String, UInt64)], order: Endianness = .little, size: Int = 512) -> [UInt8] {
        var z = ByteLayout(count: size, order: order)
        z.put(ZAP.microBlockType, at: 0)
        for (i, (name, value)) in entries.enumerated() {
            let at = 64 * (i + 1)
            z.put(value, at: at)
            for (j, b) in name.utf8.enumerated() { z.bytes[at + 14 + j] = b }
        }
        return z.bytes
    }

    @Test func microZAPsListTheirEntries() throws {
        for order in [Endianness.little, .big] {
            let block = Self.microZAP([("config", 61), ("root_dataset", 32), ("creation_version", 5000)], order: order)
            guard case .micro = try ZAP.kind(ofFirstBlock: block, byteOrder: order) else {
                Issue.record("not seen as a micro ZAP")
                return
            }
            let entries = try ZAP.microEntries(block, byteOrder: order)
            #expect(entries.map(\.name) == ["config", "root_dataset", "creation_version"])
            #expect(entries.map(\.value) == [61, 32, 5000])
        }
        var unterminated = Self.microZAP([("x", 1)])
        for i in 0..<50 { unterminated[64 + 14 + i] = 0x41 }
        #expect { try ZAP.microEntries(unterminated, byteOrder: .little) } throws: { ($0 as? FormatError)?.code == .invalidName }
        #expect { try ZAP.kind(ofFirstBlock: [UInt8](repeating: 0, count: 512), byteOrder: .little) } throws: {
            ($0 as? FormatError)?.code == .badMagic
        }
    }

    /// A 4 KiB fat-ZAP leaf holding `entries` (names and one u64 each, or a list of u16).
    static func leaf(_ entries: [(String, [UInt64], Int)], order: Endianness = .little, size: Int = 4096) -> [UInt8] {
        var l = ByteLayout(count: size, order: order)
        l.put(ZAP.leafBlockType, at: 0)
        l.put(UInt64(ZAP.leafMagic), at: 24, width: 4)
        let hashEntries = size / 32
        let chunksStart = 48 + 2 * hashEntries
        var next = 0
        func chunk(_ i: Int) -> Int { chunksStart + 24 * i }
        func array(_ bytes: [UInt8]) -> Int {
            let first = next
            var rest = bytes[...]
            repeat {
                let at = chunk(next)
                l.bytes[at] = 251
                let piece = rest.prefix(21)
                for (j, b) in piece.enumerated() { l.bytes[at + 1 + j] = b }
                rest = rest.dropFirst(21)
                next += 1
                l.put(rest.isEmpty ? 0xFFFF : UInt64(next), at: at + 22, width: 2)
            } while !rest.isEmpty
            return first
        }
        for (name, values, width) in entries {
            let entry = next
            next += 1
            let nameBytes = Array(name.utf8) + [0]
            let nameChunk = array(nameBytes)
            let valueBytes = values.flatMap { v in (0..<width).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64(width - 1 - $0))) } }
            let valueChunk = array(valueBytes)
            let at = chunk(entry)
            l.bytes[at] = 252
            l.bytes[at + 1] = UInt8(width)
            l.put(0xFFFF, at: at + 2, width: 2)
            l.put(UInt64(nameChunk), at: at + 4, width: 2)
            l.put(UInt64(nameBytes.count), at: at + 6, width: 2)
            l.put(UInt64(valueChunk), at: at + 8, width: 2)
            l.put(UInt64(values.count), at: at + 10, width: 2)
        }
        return l.bytes
    }

    @Test func fatZAPHeadersAndLeavesDecode() throws {
        for order in [Endianness.little, .big] {
            var header = ByteLayout(count: 16384, order: order)
            header.put(ZAP.headerBlockType, at: 0)
            header.put(ZAP.magic, at: 8)
            header.put(2, at: 32)  // zt_shift: 4 entries
            header.put(1, at: 64)
            header.put(2, at: 72)
            for i in 0..<4 { header.put(1, at: 8192 + 8 * i) }
            guard case .fat(let fat) = try ZAP.kind(ofFirstBlock: header.bytes, byteOrder: order) else {
                Issue.record("not seen as a fat ZAP")
                return
            }
            #expect(fat.embeddedTable == [1, 1, 1, 1])
            #expect(fat.entryCount == 2)
            let longName = "com.delphix:a_feature_name_longer_than_one_chunk"
            let block = Self.leaf([("config", [61], 8), (longName, [1, 2, 3], 2)], order: order)
            let entries = try ZAP.leafEntries(block, byteOrder: order)
            #expect(entries == [ZAP.Entry(name: "config", integerLength: 8, values: [61]), ZAP.Entry(name: longName, integerLength: 2, values: [1, 2, 3])])
        }
    }

    @Test func damagedFatZAPsAreRefused() {
        var header = ByteLayout(count: 16384)
        header.put(ZAP.headerBlockType, at: 0)
        header.put(ZAP.magic, at: 8)
        header.put(20, at: 32)  // 2^20 entries cannot be embedded in 8 KiB
        #expect { try ZAP.kind(ofFirstBlock: header.bytes, byteOrder: .little) } throws: { ($0 as? FormatError)?.code == .invalidLayout }
        header.put(0, at: 8)
        #expect { try ZAP.kind(ofFirstBlock: header.bytes, byteOrder: .little) } throws: { ($0 as? FormatError)?.code == .badMagic }

        let good = Self.leaf([("config", [61], 8)])
        let entry = 48 + 2 * 128
        // A name chain that loops onto itself (chunk 1 → 1) with a long name: bounded, refused.
        var loop = good
        loop[entry + 6] = 0xFF
        loop[entry + 7] = 0x0F
        loop[entry + 24 + 22] = 1
        loop[entry + 24 + 23] = 0
        #expect { try ZAP.leafEntries(loop, byteOrder: .little) } throws: { ($0 as? FormatError)?.code == .invalidLayout }
        // A value chunk index past the leaf.
        var outside = good
        outside[entry + 8] = 0xF0
        outside[entry + 9] = 0x7F
        #expect { try ZAP.leafEntries(outside, byteOrder: .little) } throws: { ($0 as? FormatError)?.code == .invalidLayout }
        // An integer length of 3.
        var width = good
        width[entry + 1] = 3
        #expect { try ZAP.leafEntries(width, byteOrder: .little) } throws: { ($0 as? FormatError)?.code == .invalidLayout }
        // A chain that reaches an entry chunk instead of an array chunk.
        var wrongType = good
        wrongType[entry + 4] = 0
        #expect { try ZAP.leafEntries(wrongType, byteOrder: .little) } throws: { ($0 as? FormatError)?.code == .invalidLayout }
        var magic = good
        magic[24] ^= 1
        #expect { try ZAP.leafEntries(magic, byteOrder: .little) } throws: { ($0 as? FormatError)?.code == .badMagic }
        #expect { try ZAP.leafEntries(Array(good.prefix(1000)), byteOrder: .little) } throws: { ($0 as? FormatError)?.code == .invalidSize }
    }

    /// Random and randomly damaged blocks through every decoder: errors, never traps or hangs.
    @Test func randomBytesNeverTrap() {
        var random = SplitMix64(seed: 0x4D4F_535F_4655_5A5A)
        let seeds: [[UInt8]] = [
            makeDnode(pointers: 2, levels: 3), Self.microZAP([("a", 1)]), Self.leaf([("config", [61], 8)]),
            BlockCodecTests.gangHeader(order: .little, members: [BlockPointer()]).block,
        ]
        for round in 0..<400 {
            var bytes = seeds[round % seeds.count]
            for _ in 0..<(1 + Int(random.next() % 16)) {
                bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
            }
            if round % 7 == 0 { bytes = (0..<bytes.count).map { _ in UInt8(truncatingIfNeeded: random.next()) } }
            for order in [Endianness.little, .big] {
                _ = try? Dnode(decoding: bytes, at: 0, byteOrder: order)
                _ = try? ZAP.kind(ofFirstBlock: bytes, byteOrder: order)
                _ = try? ZAP.microEntries(bytes, byteOrder: order)
                _ = try? ZAP.leafEntries(bytes, byteOrder: order)
                _ = try? GangHeader(decoding: bytes, for: BlockPointer())
                _ = try? BlockPointer(decoding: bytes, at: 0, byteOrder: order).embeddedPayload()
                for compression: UInt8 in [3, 5, 14, 15, 16] {
                    _ = try? BlockCompression(rawValue: compression).decompress(Array(bytes.prefix(300)), logicalByteCount: 4096)
                }
            }
        }
    }
}
