// The decoders a block read goes through: decompressors (lzjb, zle, gzip, zstd, dispatch),
// checksums (fletcher2, sha256, dispatch), embedded block pointers and gang headers. Each
// with known answers and with damaged input that must throw a typed error, never trap.

import CZlib
import CZstd
import Testing
import ZFSFormat
import ZFSTestSupport

@Suite struct BlockCodecTests {
    // MARK: LZJB and ZLE

    /// "abc" as three literals, then a 6-byte match 3 back: copy map 0b1000.
    @Test func lzjbDecodesLiteralsAndMatches() throws {
        let stream: [UInt8] = [0b1000, 0x61, 0x62, 0x63, (6 - 3) << 2, 3]
        #expect(try LZJB.decompress(stream, capacity: 9) == Array("abcabcabc".utf8))
        // The match is cut at the end of the output, as lzjb_decompress does.
        #expect(try LZJB.decompress(stream, capacity: 7) == Array("abcabca".utf8))
    }

    @Test func lzjbRejectsShortStreamsAndDistancesBeforeTheStart() {
        let stream: [UInt8] = [0b1000, 0x61, 0x62, 0x63, (6 - 3) << 2, 3]
        #expect(throws: FormatError.self) { try LZJB.decompress(stream, capacity: 10) }
        do {
            _ = try LZJB.decompress([1, 0x00, 0x05], capacity: 8)
            Issue.record("a match 5 bytes before the start decoded")
        } catch {
            #expect(error.code == .invalidValue)
        }
        // What was decoded before the error stays (zdb's L2ARC walk reads it).
        var buffer = [UInt8](repeating: 0xEE, count: 12)
        #expect(throws: FormatError.self) { try LZJB.decompress(stream, into: &buffer) }
        #expect(Array(buffer.prefix(9)) == Array("abcabcabc".utf8))
        #expect(buffer[9] == 0xEE)
    }

    @Test func zleDecodesLiteralAndZeroRuns() throws {
        // 3 literals (length byte 2), then 4 zeros (67 + 1 - 64).
        let stream: [UInt8] = [2, 0x78, 0x79, 0x7A, 67]
        #expect(try ZLE.decompress(stream, capacity: 7) == [0x78, 0x79, 0x7A, 0, 0, 0, 0])
        do {
            _ = try ZLE.decompress(stream, capacity: 5)
            Issue.record("an overflowing zero run decoded")
        } catch {
            #expect(error.code == .invalidSize)
        }
        do {
            _ = try ZLE.decompress(stream, capacity: 8)
            Issue.record("a stream shorter than the output decoded")
        } catch {
            #expect(error.code == .truncated)
        }
        #expect(throws: FormatError.self) { try ZLE.decompress([5, 1, 2], capacity: 6) }
    }

    // MARK: gzip and zstd through the system libraries

    static func zlibCompress(_ data: [UInt8], level: Int32) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(compressBound(uLong(data.count))))
        var length = uLongf(out.count)
        let status = compress2(&out, &length, data, uLong(data.count), level)
        precondition(status == Z_OK)
        return Array(out.prefix(Int(length)))
    }

    /// An OpenZFS zstd block: c_len (BE), level | version (BE), a magicless frame, padding.
    static func zfsZstdBlock(_ data: [UInt8], level: UInt8 = 3, padding: Int = 0) -> [UInt8] {
        let context = ZSTD_createCCtx()!
        defer { ZSTD_freeCCtx(context) }
        _ = ZSTD_CCtx_setParameter(context, ZSTD_cParameter(rawValue: 10), 1)  // ZSTD_c_format = magicless
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level))
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 0)
        var frame = [UInt8](repeating: 0, count: ZSTD_compressBound(data.count))
        let length = ZSTD_compress2(context, &frame, frame.count, data, data.count)
        precondition(ZSTD_isError(length) == 0)
        let c = UInt32(length)
        let version = UInt32(ZSTD_versionNumber())
        var block: [UInt8] = [UInt8(c >> 24), UInt8(truncatingIfNeeded: c >> 16), UInt8(truncatingIfNeeded: c >> 8), UInt8(truncatingIfNeeded: c)]
        block += [level, UInt8(truncatingIfNeeded: version >> 16), UInt8(truncatingIfNeeded: version >> 8), UInt8(truncatingIfNeeded: version)]
        return block + frame.prefix(length) + [UInt8](repeating: 0, count: padding)
    }

    static let sample: [UInt8] = (0..<4096).map { UInt8(truncatingIfNeeded: ($0 / 7) * 13) }

    @Test func gzipBlocksDecodeThroughZlib() throws {
        for level in [1, 6, 9] as [Int32] {
            let block = Self.zlibCompress(Self.sample, level: level) + [0, 0, 0]
            #expect(try BlockCompression(rawValue: UInt8(4 + level)).decompress(block, logicalByteCount: 4096) == Self.sample)
        }
        var damaged = Self.zlibCompress(Self.sample, level: 6)
        damaged[damaged.count / 2] ^= 0x55
        #expect(throws: FormatError.self) { try Gzip.decompress(damaged, capacity: 4096) }
        #expect(throws: FormatError.self) { try Gzip.decompress(Self.zlibCompress(Self.sample, level: 6), capacity: 100) }
        #expect(throws: FormatError.self) { try Gzip.decompress([], capacity: 10) }
    }

    @Test func zstdBlocksDecodeWithTheirOpenZFSHeader() throws {
        let block = Self.zfsZstdBlock(Self.sample, padding: 11)
        #expect(try BlockCompression.zstd.decompress(block, logicalByteCount: 4096) == Self.sample)
        // c_len larger than the block.
        var long = block
        long[0] = 0x7F
        #expect { try ZFSZstd.decompress(long, capacity: 4096) } throws: { ($0 as? FormatError)?.code == .invalidSize }
        // Level 0 is never written.
        var levelZero = block
        levelZero[4] = 0
        #expect { try ZFSZstd.decompress(levelZero, capacity: 4096) } throws: { ($0 as? FormatError)?.code == .invalidValue }
        // A damaged frame.
        var damaged = block
        damaged[9] ^= 0xFF
        damaged[10] ^= 0xFF
        #expect(throws: FormatError.self) { try ZFSZstd.decompress(damaged, capacity: 4096) }
        #expect { try ZFSZstd.decompress([0, 0], capacity: 4) } throws: { ($0 as? FormatError)?.code == .truncated }
    }

    @Test func compressionValuesWithoutADecoderAreRefused() throws {
        #expect(try BlockCompression.off.decompress([1, 2, 3, 4], logicalByteCount: 3) == [1, 2, 3])
        #expect(throws: FormatError.self) { try BlockCompression.off.decompress([1], logicalByteCount: 3) }
        for value: UInt8 in [0, 1, 4, 17, 127] {
            #expect { try BlockCompression(rawValue: value).decompress([1, 2], logicalByteCount: 2) } throws: {
                ($0 as? FormatError)?.code == .unsupportedEncoding
            }
        }
        #expect(BlockCompression(rawValue: 5).description == "gzip-1")
        #expect(BlockCompression.lz4.description == "lz4")
    }

    // MARK: Checksums

    @Test func fletcher2SumsPairsOfWords() {
        // Words 1, 2, 3, 4 little-endian: a0 = 1+3, a1 = 2+4, b0 = 1+4, b1 = 2+6.
        let bytes = [UInt64(1), 2, 3, 4].flatMap { w in (0..<8).map { UInt8(truncatingIfNeeded: w >> (8 * $0)) } }
        #expect(Fletcher2.checksum(bytes, wordOrder: .little) == BlockPointer.Checksum(word0: 4, word1: 6, word2: 5, word3: 8))
        let swapped = Fletcher2.checksum(bytes, wordOrder: .big)
        #expect(swapped.word0 == (1 as UInt64).byteSwapped &+ (3 as UInt64).byteSwapped)
    }

    @Test func sha256WordsAreTheDigestReadBigEndian() {
        // SHA-256 of the empty string.
        let expected = BlockPointer.Checksum(
            word0: 0xE3B0_C442_98FC_1C14, word1: 0x9AFB_F4C8_996F_B924, word2: 0x27AE_41E4_649B_934C, word3: 0xA495_991B_7852_B855)
        #expect(BlockChecksum.sha256.verify([], byteOrder: .little, expected: expected) == .valid)
        #expect(BlockChecksum.sha256.verify([0], byteOrder: .little, expected: expected) != .valid)
    }

    @Test func verificationNamesWhatItCannotCompute() {
        let zero = BlockPointer.Checksum(word0: 0, word1: 0, word2: 0, word3: 0)
        #expect(BlockChecksum.off.verify([1, 2, 3], byteOrder: .little, expected: zero) == .notChecksummed)
        for value: UInt8 in [11, 12, 13, 0, 99] {
            #expect(BlockChecksum(rawValue: value).verify([1], byteOrder: .little, expected: zero) == .cannotVerify(BlockChecksum(rawValue: value)))
        }
        let data = (0..<512).map { UInt8(truncatingIfNeeded: $0 * 31) }
        let f4 = Fletcher4.checksum(data, wordOrder: .big)
        let expected = BlockPointer.Checksum(word0: f4.a, word1: f4.b, word2: f4.c, word3: f4.d)
        #expect(BlockChecksum.fletcher4.verify(data, byteOrder: .big, expected: expected) == .valid)
        #expect(BlockChecksum.noparity.verify(data, byteOrder: .big, expected: expected) == .valid)
        if case .mismatch = BlockChecksum.fletcher4.verify(data, byteOrder: .little, expected: expected) {} else {
            Issue.record("fletcher4 in the wrong word order verified")
        }
    }

    // MARK: Embedded block pointers and gang headers

    /// An embedded pointer carrying `payload` (compression off, lsize = payload size).
    static func embeddedPointer(_ payload: [UInt8], type: UInt64 = 0, compression: UInt64 = 2) -> BlockPointer {
        var words = [UInt64](repeating: 0, count: 16)
        let slots = [0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 14, 15]
        for (i, byte) in payload.enumerated() {
            words[slots[i / 8]] |= UInt64(byte) << (8 * UInt64(i % 8))
        }
        words[6] = UInt64(payload.count - 1) | UInt64(payload.count - 1) << 25 | compression << 32 | 1 << 39 | type << 40
        words[10] = 77
        return try! BlockPointer(decodingWords: words)
    }

    @Test func embeddedPointersCarryTheirPayload() throws {
        let payload = (0..<112).map { UInt8($0 + 1) }
        let pointer = Self.embeddedPointer(payload)
        #expect(pointer.properties.isEmbedded)
        #expect(!pointer.isHole)
        #expect(try pointer.embeddedPayload() == payload)
        #expect(try Self.embeddedPointer([9, 8, 7]).embeddedPayload() == [9, 8, 7])
        #expect { try Self.embeddedPointer([1], type: 2).embeddedPayload() } throws: { ($0 as? FormatError)?.code == .invalidType }
        #expect { try BlockPointer().embeddedPayload() } throws: { ($0 as? FormatError)?.code == .invalidType }
        // A payload size field of 128 (7 bits all set) cannot fit 112 bytes.
        var words = Self.embeddedPointer([1]).words
        words[6] |= 0x7F << 25
        #expect { try BlockPointer(decodingWords: words).embeddedPayload() } throws: { ($0 as? FormatError)?.code == .invalidSize }
    }

    /// A gang header for a pointer whose first DVA is (vdev 1, sector 100), birth 9.
    static func gangHeader(order: Endianness, members: [BlockPointer]) -> (block: [UInt8], pointer: BlockPointer) {
        var words = [UInt64](repeating: 0, count: 16)
        words[0] = 1 << 32 | 2
        words[1] = 1 << 63 | 100
        words[6] = 7 << 40 | 2 << 32
        words[10] = 9
        let pointer = try! BlockPointer(decodingWords: words)
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ value: UInt64, _ at: Int) {
            for i in 0..<8 {
                block[at + i] = UInt8(truncatingIfNeeded: order == .little ? value >> (8 * UInt64(i)) : value >> (8 * UInt64(7 - i)))
            }
        }
        for (index, member) in members.enumerated() {
            for (w, word) in member.words.enumerated() { put(word, index * 128 + 8 * w) }
        }
        put(EmbeddedChecksum.magic, 472)
        for (i, word) in [1, 100 << 9, 9, 0].enumerated() { put(UInt64(word), 480 + 8 * i) }
        let sum = Fletcher4.checksum(block, wordOrder: order)
        for (i, word) in sum.array.enumerated() { put(word, 480 + 8 * i) }
        return (block, pointer)
    }

    @Test func gangHeadersVerifyWithTheirVerifier() throws {
        let member = Self.embeddedPointer([1, 2, 3])
        for order in [Endianness.little, .big] {
            let (block, pointer) = Self.gangHeader(order: order, members: [member, BlockPointer()])
            let header = try GangHeader(decoding: block, for: pointer)
            #expect(header.members == [member])
            #expect(header.byteOrder == order)
            var damaged = block
            damaged[5] ^= 1
            #expect { try GangHeader(decoding: damaged, for: pointer) } throws: { ($0 as? FormatError)?.code == .checksumMismatch }
            // Another birth txg changes the verifier.
            var words = pointer.words
            words[10] = 10
            #expect { try GangHeader(decoding: block, for: try BlockPointer(decodingWords: words)) } throws: {
                ($0 as? FormatError)?.code == .checksumMismatch
            }
        }
        let (block, pointer) = Self.gangHeader(order: .little, members: [])
        #expect { try GangHeader(decoding: [UInt8](repeating: 0, count: 512), for: pointer) } throws: { ($0 as? FormatError)?.code == .badMagic }
        #expect { try GangHeader(decoding: Array(block.prefix(100)), for: pointer) } throws: { ($0 as? FormatError)?.code == .truncated }
    }
}

/// `l2arc_log_blkptr_valid` and the log-block pointer layout (moved from ZPKCLI's walk).
@Suite struct L2ARCLogBlockTests {
    /// A 4 KiB log block at 0x10000 whose payload starts at 0x8000.
    static let pointer = L2ARCLogBlockPointer(words: [0x10000, 0x9000, 0x8000, 7 << 16 | 7 | 15 << 32, 1, 2, 3, 4])

    @Test func pointerFieldsComeFromTheirWords() {
        #expect(Self.pointer.psize == 4096)
        #expect(Self.pointer.lsize == 4096)
        #expect(Self.pointer.compression == 15)
        #expect(Self.pointer.checksum == [1, 2, 3, 4])
        // Fewer than 8 words: the rest are zero, never a trap.
        #expect(L2ARCLogBlockPointer(words: [5]).checksum == [0, 0, 0, 0])
    }

    @Test func validityFollowsTheDeviceWindow() {
        var window = L2ARCLogBlock.DeviceWindow(start: 0x1000, end: 0x10_0000, hand: 0x2_0000, evict: 0x3_0000, first: false)
        #expect(window.isValid(Self.pointer))
        window.hand = 0x1_0800  // the hand inside the block: evicted
        #expect(!window.isValid(Self.pointer))
        window.first = true  // unless the device has not wrapped yet
        #expect(window.isValid(Self.pointer))
        window = L2ARCLogBlock.DeviceWindow(start: 0x9000, end: 0x10_0000, hand: 0x2_0000, evict: 0x3_0000, first: false)
        #expect(!window.isValid(Self.pointer))  // the payload starts before the device's start
        var huge = Self.pointer
        huge.prop |= 0xFFFF << 16
        #expect(!L2ARCLogBlock.DeviceWindow(start: 0, end: .max, hand: 0, evict: 0, first: true).isValid(huge))
        #expect(L2ARCLogBlock.overlaps(bottom: 10, top: 2, check: 1))  // wraps around
        #expect(!L2ARCLogBlock.overlaps(bottom: 10, top: 2, check: 5))
    }
}
