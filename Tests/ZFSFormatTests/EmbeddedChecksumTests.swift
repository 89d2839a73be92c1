import Crypto
import Testing
import ZFSFormat

/// The label checksum (`zio_eck_t`, SHA-256 with the absolute offset as verifier), judged
/// against the fixture and the vectors of `shared/spec/ondisk.md` Appendix A.2 / A.3.
@Suite struct EmbeddedChecksumTests {
    /// SHA-256 of `block` with its last 32 bytes replaced by (offset, 0, 0, 0) little-endian,
    /// computed independently of the code under test.
    static func referenceDigest(_ block: ArraySlice<UInt8>, offset: UInt64) -> [UInt8] {
        var copy = Array(block)
        let verifier = (0..<8).map { UInt8(truncatingIfNeeded: offset >> (8 * $0)) } + [UInt8](repeating: 0, count: 24)
        copy.replaceSubrange((copy.count - 32)..., with: verifier)
        return Array(SHA256.hash(data: copy))
    }

    @Test func appendixA2ConfigTrailer() throws {
        let label = try LabelFixture.label0()
        let trailer = Array(label[0x1FFD8..<0x20000])
        #expect(trailer == LabelFixture.hex(
            "117a0cb17ada1002 78cfd25ef2191981 8a52fea154f38e27 bb126f9ea2ce817e c5f72cf0d8169391"))
        let block = label[0x4000..<0x20000]
        #expect(Self.referenceDigest(block, offset: 0x4000) == LabelFixture.hex(
            "811919f25ed2cf78 278ef354a1fe528a 7e81cea29e6f12bb 919316d8f02cf7c5"))
        #expect(try EmbeddedChecksum.verify(block, absoluteOffset: 0x4000) == .valid(byteOrder: .little))
    }

    @Test func appendixA3UberblockSlot() throws {
        let label = try LabelFixture.label0()
        let slot = label[0x3A000..<0x3A400]
        #expect(Self.referenceDigest(slot, offset: 0x3A000) == LabelFixture.hex(
            "a28673b1b718ca87e257319148d98c40f978154e259178b13f33265f39585e28"))
        #expect(Array(slot[0x3A3D8..<0x3A400]) == LabelFixture.hex(
            "117a 0cb1 7ada 1002 87ca 18b7 b173 86a2 408c d948 9131 57e2 b178 9125 4e15 78f9 285e 5839 5f26 333f"))
        #expect(try EmbeddedChecksum.verify(slot, absoluteOffset: 0x3A000) == .valid(byteOrder: .little))
    }

    @Test func bootEnvironmentVerifiesWithItsOwnOffset() throws {
        let label = try LabelFixture.label0()
        #expect(try EmbeddedChecksum.verify(label[0x2000..<0x4000], absoluteOffset: 0x2000) == .valid(byteOrder: .little))
        #expect(label[0x2000..<0x3FD8].allSatisfy { $0 == 0 })
    }

    @Test(arguments: [0, 0x2000, 0x44000, 0x7F8_4000, 0x7FC_4000, 0x4001, 0x4000 | 1 << 63] as [UInt64])
    func theVerifierIsTheAbsoluteOffset(wrongOffset: UInt64) throws {
        let label = try LabelFixture.label0()
        let status = try EmbeddedChecksum.verify(label[0x4000..<0x20000], absoluteOffset: wrongOffset)
        #expect(status == .mismatch(byteOrder: .little))
        #expect(!status.isValid)
        #expect(status.byteOrder == .little)
    }

    @Test func sealReproducesOpenZFSBytes() throws {
        let label = try LabelFixture.label0()
        for (start, end) in [(0x2000, 0x4000), (0x4000, 0x20000), (0x3A000, 0x3A400), (0x20000, 0x20400)] {
            var block = Array(label[start..<end])
            block.replaceSubrange((block.count - 40)..., with: repeatElement(0, count: 40))
            try EmbeddedChecksum.seal(&block, absoluteOffset: UInt64(start), byteOrder: .little)
            #expect(block == Array(label[start..<end]), "block at 0x\(String(start, radix: 16))")
        }
    }

    @Test func bigEndianWriterStoresTheDigestItself() throws {
        var block = [UInt8](repeating: 0xA5, count: 1024)
        try EmbeddedChecksum.seal(&block, absoluteOffset: 0x7FC_0000 + 0x20400, byteOrder: .big)
        #expect(Array(block[984..<992]) == [0x02, 0x10, 0xDA, 0x7A, 0xB1, 0x0C, 0x7A, 0x11])
        var hashed = block
        hashed.replaceSubrange(992..., with: [0, 0, 0, 0, 0x07, 0xFE, 0x04, 0x00] + [UInt8](repeating: 0, count: 24))
        #expect(Array(block[992...]) == Array(SHA256.hash(data: hashed)))
        #expect(try EmbeddedChecksum.verify(block, absoluteOffset: 0x7FC_0000 + 0x20400) == .valid(byteOrder: .big))
        #expect(try EmbeddedChecksum.verify(block, absoluteOffset: 0x20400) == .mismatch(byteOrder: .big))

        // Resealed little-endian: the magic is byte-reversed, and the block verifies as little-endian.
        var little = block
        try EmbeddedChecksum.seal(&little, absoluteOffset: 0x7FC_0000 + 0x20400, byteOrder: .little)
        #expect(Array(little[984..<992]) == Array(block[984..<992].reversed()))
        #expect(try EmbeddedChecksum.verify(little, absoluteOffset: 0x7FC_0000 + 0x20400) == .valid(byteOrder: .little))
    }

    @Test func sealWorksOnSlicesAndRawBuffers() throws {
        var storage = [UInt8](repeating: 7, count: 4096)
        var slice = storage[1024..<2048]
        try EmbeddedChecksum.seal(&slice, absoluteOffset: 0x1234_5678_9000, byteOrder: .big)
        #expect(try EmbeddedChecksum.verify(slice, absoluteOffset: 0x1234_5678_9000) == .valid(byteOrder: .big))
        try storage.withUnsafeMutableBytes { raw in
            try EmbeddedChecksum.seal(UnsafeMutableRawBufferPointer(rebasing: raw[0..<512]), absoluteOffset: 512, byteOrder: .little)
        }
        let status = try storage.withUnsafeBytes { raw in
            try EmbeddedChecksum.verify(UnsafeRawBufferPointer(rebasing: raw[0..<512]), absoluteOffset: 512)
        }
        #expect(status == .valid(byteOrder: .little))
    }

    @Test func blocksWithoutMagic() throws {
        #expect(try EmbeddedChecksum.verify([UInt8](repeating: 0, count: 1024), absoluteOffset: 0) == .noMagic)
        #expect(try EmbeddedChecksum.verify([UInt8](repeating: 0xFF, count: 40), absoluteOffset: 0) == .noMagic)
        #expect(EmbeddedChecksum.Status.noMagic.byteOrder == nil)
        #expect(!EmbeddedChecksum.Status.noMagic.isValid)
        // The smallest block is a bare trailer.
        var bare = [UInt8](repeating: 0, count: 40)
        try EmbeddedChecksum.seal(&bare, absoluteOffset: 99, byteOrder: .little)
        #expect(try EmbeddedChecksum.verify(bare, absoluteOffset: 99) == .valid(byteOrder: .little))
    }

    @Test func blocksShorterThanATrailerThrow() {
        for count in 0..<EmbeddedChecksum.byteCount {
            let short = [UInt8](repeating: 0x11, count: count)
            #expect(throws: FormatError.self, "\(count) bytes") {
                try EmbeddedChecksum.verify(short, absoluteOffset: 0)
            }
            var writable = short
            let error = #expect(throws: FormatError.self) {
                try EmbeddedChecksum.seal(&writable, absoluteOffset: 0, byteOrder: .little)
            }
            #expect(error?.code == .truncated)
        }
    }
}
