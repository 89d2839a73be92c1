// Block pointers found inside blocks (dnodes, indirect blocks, gang headers), the data that an
// embedded block pointer carries, and the gang header a gang DVA points at.

extension BlockPointer {
    /// Decodes the 128-byte `blkptr_t` at `offset` of `bytes`, whose words are in `byteOrder`.
    ///
    /// - Throws: `FormatError` `.truncated` when fewer than 128 bytes remain at `offset`.
    public init(decoding bytes: UnsafeRawBufferPointer, at offset: Int, byteOrder: Endianness) throws(FormatError) {
        guard offset >= 0, offset <= bytes.count - Self.byteCount else {
            throw FormatError(.truncated, "a block pointer needs 128 bytes at offset \(offset) of \(bytes.count)", offset: offset)
        }
        self.init(words: (0..<Self.wordCount).lazy.map { OnDiskWord.load(bytes, at: offset + 8 * $0, byteOrder) })
    }

    /// Decodes the block pointer at `offset` of an array; as the buffer-pointer overload.
    public init(decoding bytes: [UInt8], at offset: Int, byteOrder: Endianness) throws(FormatError) {
        guard offset >= 0, offset <= bytes.count - Self.byteCount else {
            throw FormatError(.truncated, "a block pointer needs 128 bytes at offset \(offset) of \(bytes.count)", offset: offset)
        }
        self = bytes.withUnsafeBytes { raw in
            BlockPointer(words: (0..<Self.wordCount).lazy.map { OnDiskWord.load(raw, at: offset + 8 * $0, byteOrder) })
        }
    }

    /// `BP_EMBEDDED_TYPE_DATA`: the only embedded type whose payload is block data.
    public static let embeddedTypeData: UInt8 = 0

    /// The largest payload an embedded pointer holds (`BPE_PAYLOAD_SIZE`): 14 of its 16 words.
    public static let maximumEmbeddedPayload = 112

    /// The payload of an embedded block pointer, still compressed (``Properties/compression``).
    ///
    /// The payload fills words 0-5, 7-9 and 11-15 (not `blk_prop` and `blk_birth`), byte *i*
    /// of each word being bits 8*i*...8*i*+7 of its value.
    ///
    /// The corresponding OpenZFS function is `decode_embedded_bp_compressed`
    /// (`module/zfs/blkptr.c`).
    /// - Throws: `FormatError` `.invalidType` when the pointer is not embedded or carries no
    ///   data (`BP_EMBEDDED_TYPE_REDACTED` and unknown types), `.invalidSize` when its payload
    ///   size exceeds 112 bytes.
    public func embeddedPayload() throws(FormatError) -> [UInt8] {
        guard let type = properties.embeddedType else {
            throw FormatError(.invalidType, "the block pointer is not embedded")
        }
        guard type == Self.embeddedTypeData else {
            throw FormatError(.invalidType, "an embedded block pointer of type \(type) carries no block data")
        }
        let size = Int(properties.embeddedPayloadByteCount ?? 0)
        guard size <= Self.maximumEmbeddedPayload else {
            throw FormatError(.invalidSize, "an embedded block pointer claims \(size) payload bytes (at most 112 fit)")
        }
        let all = words
        let payloadWords = [0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 14, 15].map { all[$0] }
        var payload = [UInt8]()
        payload.reserveCapacity(size)
        for i in 0..<size {
            payload.append(UInt8(truncatingIfNeeded: payloadWords[i / 8] >> (8 * UInt64(i % 8))))
        }
        return payload
    }

    /// The block's physical birth txg: `blk_phys_birth`, or `blk_birth` when that is 0
    /// (`BP_PHYSICAL_BIRTH`).
    public var physicalBirth: TXG { physicalBirthTXG.rawValue != 0 ? physicalBirthTXG : birthTXG }
}

/// A gang header: the 512-byte block a gang DVA points at, naming up to three smaller blocks
/// whose concatenation is the data.
///
/// ```
/// 0x000  zg_blkptr[3]   three block pointers (holes for unused slots)
/// 0x180  zg_filler      88 bytes
/// 0x1d8  zg_tail        zio_eck_t: magic 0x0210da7ab10c7a11, then 4 checksum words
/// ```
///
/// Its checksum is embedded: fletcher4 of the whole 512 bytes, computed with the checksum
/// words replaced by the *verifier* (vdev, byte offset of the pointer's first DVA, physical
/// birth, 0), compared with the stored words. A byte-swapped magic means the header was
/// written in the other byte order, and the pointers and checksum words are read in it.
///
/// The corresponding OpenZFS type is `zio_gbh_phys_t` (`include/sys/zio.h`); verification is
/// `zio_checksum_error_impl` with `zio_checksum_gang_verifier` (`module/zfs/zio_checksum.c`).
public struct GangHeader: Hashable, Sendable {
    /// `SPA_GANGBLOCKSIZE`.
    public static let byteCount = 512
    /// `SPA_GBH_NBLKPTRS`.
    public static let pointerCount = 3

    /// The member blocks, holes dropped, in order.
    public var members: [BlockPointer]
    /// The byte order the header was written in.
    public var byteOrder: Endianness

    /// Decodes and verifies the gang header of `gangPointer` (the pointer whose DVA has the G bit).
    ///
    /// - Throws: `FormatError` `.truncated` for a short block, `.badMagic` when the tail carries
    ///   no embedded-checksum magic, `.checksumMismatch` when the checksum does not verify.
    public init(decoding block: [UInt8], for gangPointer: BlockPointer) throws(FormatError) {
        guard block.count >= Self.byteCount else {
            throw FormatError(.truncated, "a gang header is 512 bytes, not \(block.count)")
        }
        let tail = Self.byteCount - EmbeddedChecksum.byteCount
        let verifier = [
            gangPointer.dva0.vdevID, gangPointer.dva0.byteOffset, gangPointer.physicalBirth.rawValue, 0,
        ]
        let outcome: (Endianness, [UInt64], [BlockPointer])? = block.withUnsafeBytes { raw in
            let header = UnsafeRawBufferPointer(rebasing: raw[0..<Self.byteCount])
            let magic = OnDiskWord.load(header, at: tail, .little)
            let order: Endianness
            if magic == EmbeddedChecksum.magic {
                order = .little
            } else if magic.byteSwapped == EmbeddedChecksum.magic {
                order = .big
            } else {
                return nil
            }
            let stored = (0..<4).map { OnDiskWord.load(header, at: tail + 8 + 8 * $0, order) }
            var copy = [UInt8](header)
            copy.withUnsafeMutableBytes { m in
                for (i, word) in verifier.enumerated() { OnDiskWord.store(word, into: m, at: tail + 8 + 8 * i, order) }
            }
            let sum = Fletcher4.checksum(copy, wordOrder: order)
            let pointers = (0..<Self.pointerCount).map { index in
                BlockPointer(words: (0..<BlockPointer.wordCount).lazy.map { OnDiskWord.load(header, at: index * 128 + 8 * $0, order) })
            }
            return (order, stored == [sum.a, sum.b, sum.c, sum.d] ? [] : stored, pointers)
        }
        guard let (order, mismatch, pointers) = outcome else {
            throw FormatError(.badMagic, "no gang header here: its tail has no embedded-checksum magic", offset: tail)
        }
        guard mismatch.isEmpty else {
            throw FormatError(.checksumMismatch, "the gang header's embedded checksum does not verify", offset: tail + 8)
        }
        byteOrder = order
        members = pointers.filter { !$0.isHole }
    }
}
