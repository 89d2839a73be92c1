/// A block pointer: where a block lives (up to three copies), how big it is, and its checksum.
///
/// An uberblock carries one, `ub_rootbp`, pointing at the MOS objset. ZPoolKit does not follow
/// block pointers; it decodes them exactly so that uberblocks round-trip and can be printed.
///
/// ```
/// word  offset  2.1.11 field        contents
///  0,1   0x00   blk_dva[0]          DVA 0 (see DVA)
///  2,3   0x10   blk_dva[1]          DVA 1
///  4,5   0x20   blk_dva[2]          DVA 2 (salt + IV1 for encrypted blocks)
///  6     0x30   blk_prop            see BlockPointer.Properties
///  7     0x38   blk_pad[0]          master: blk_prop2
///  8     0x40   blk_pad[1]
///  9     0x48   blk_phys_birth      physical birth txg (0 = same as logical)
/// 10     0x50   blk_birth           logical birth txg
/// 11     0x58   blk_fill            fill count (encrypted: low 32 bits fill, high 32 IV2)
/// 12-15  0x60   blk_cksum           checksum of the block (encrypted: 2 words + 2 words MAC)
/// ```
///
/// The words are stored in the byte order of the uberblock that holds the pointer.
///
/// The corresponding OpenZFS type is `blkptr_t` (`include/sys/spa.h`); described in
/// `shared/spec/ondisk.md` §5.2.
public struct BlockPointer: Hashable, Sendable {
    /// `sizeof (blkptr_t)`.
    public static let byteCount = 128
    /// The number of 64-bit words in a block pointer.
    public static let wordCount = 16

    /// The first copy (`blk_dva[0]`).
    public var dva0: DVA
    /// The second copy (`blk_dva[1]`).
    public var dva1: DVA
    /// The third copy (`blk_dva[2]`).
    public var dva2: DVA
    /// `blk_prop`.
    public var properties: Properties
    /// `blk_pad[0]` in 2.1.11 (`blk_prop2` in master).
    public var padding0: UInt64
    /// `blk_pad[1]`.
    public var padding1: UInt64
    /// `blk_phys_birth`: the physical birth txg; 0 means "same as ``birthTXG``".
    public var physicalBirthTXG: TXG
    /// `blk_birth`: the logical birth txg.
    public var birthTXG: TXG
    /// `blk_fill`: the number of non-empty blocks below this one.
    public var fillCount: UInt64
    /// `blk_cksum`: the checksum of the block this pointer points at.
    public var checksum: Checksum

    /// A hole: every word zero.
    public init() {
        self.init(words: repeatElement(0, count: Self.wordCount))
    }

    /// Builds a block pointer from its 16 words in `blkptr_t` order.
    ///
    /// Missing words are taken as zero and extra words are ignored; ``Uberblock`` always passes 16.
    init(words: some Collection<UInt64>) {
        var iterator = words.makeIterator()
        func next() -> UInt64 { iterator.next() ?? 0 }
        dva0 = DVA(word0: next(), word1: next())
        dva1 = DVA(word0: next(), word1: next())
        dva2 = DVA(word0: next(), word1: next())
        properties = Properties(rawValue: next())
        padding0 = next()
        padding1 = next()
        physicalBirthTXG = TXG(next())
        birthTXG = TXG(next())
        fillCount = next()
        checksum = Checksum(word0: next(), word1: next(), word2: next(), word3: next())
    }

    /// Builds a block pointer from exactly 16 words in `blkptr_t` order.
    ///
    /// - Throws: `FormatError` `.invalidSize` when `words` does not hold 16 words.
    public init(decodingWords words: [UInt64]) throws(FormatError) {
        guard words.count == Self.wordCount else {
            throw FormatError(.invalidSize, "a block pointer has \(Self.wordCount) words, not \(words.count)")
        }
        self.init(words: words)
    }

    /// The 16 words in `blkptr_t` order.
    public var words: [UInt64] {
        [
            dva0.word0, dva0.word1, dva1.word0, dva1.word1, dva2.word0, dva2.word1,
            properties.rawValue, padding0, padding1, physicalBirthTXG.rawValue, birthTXG.rawValue, fillCount,
            checksum.word0, checksum.word1, checksum.word2, checksum.word3,
        ]
    }

    /// The three DVAs in order.
    public var dvas: [DVA] { [dva0, dva1, dva2] }

    /// Whether this pointer is a hole: not embedded, and its first DVA is empty.
    ///
    /// The corresponding OpenZFS macro is `BP_IS_HOLE`.
    public var isHole: Bool { !properties.isEmbedded && dva0.isEmpty }

    /// The four checksum words of a block pointer (`zio_cksum_t`).
    public struct Checksum: Hashable, Sendable {
        public var word0: UInt64
        public var word1: UInt64
        public var word2: UInt64
        public var word3: UInt64

        public init(word0: UInt64, word1: UInt64, word2: UInt64, word3: UInt64) {
            self.word0 = word0
            self.word1 = word1
            self.word2 = word2
            self.word3 = word3
        }
    }

    /// The `blk_prop` word: sizes, compression, checksum algorithm, type, level and flags.
    ///
    /// ```
    /// bits   field
    /// 0-15   LSIZE: (logical bytes >> 9) - 1      (embedded: bits 0-24 = logical bytes - 1)
    /// 16-31  PSIZE: (physical bytes >> 9) - 1     (embedded: bits 25-31 = payload bytes - 1)
    /// 32-38  COMPRESS (enum zio_compress)
    /// 39     E: embedded data
    /// 40-47  CHECKSUM (enum zio_checksum)           (embedded: the embedded-data type)
    /// 48-55  TYPE (dmu_object_type_t)
    /// 56-60  LEVEL
    /// 61     X: encrypted or authenticated
    /// 62     D: dedup
    /// 63     B: byte order of the block's data, 1 = little-endian
    /// ```
    ///
    /// The corresponding OpenZFS macros are `BP_GET_*` and `BPE_GET_*` (`include/sys/spa.h`).
    public struct Properties: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt64

        public init(rawValue: UInt64) { self.rawValue = rawValue }

        /// `SPA_MINBLOCKSHIFT`: sizes are counted in 512-byte units.
        public static let sectorShift = 9

        @inline(__always) private func bits(_ low: Int, _ count: Int) -> UInt64 {
            (rawValue >> UInt64(low)) & ((1 << UInt64(count)) - 1)
        }

        /// `BP_IS_EMBEDDED`: the data is stored inside the pointer.
        public var isEmbedded: Bool { bits(39, 1) == 1 }

        /// `BPE_GET_ETYPE` for embedded pointers (0 = `BP_EMBEDDED_TYPE_DATA`); `nil` otherwise.
        public var embeddedType: UInt8? { isEmbedded ? UInt8(bits(40, 8)) : nil }

        /// `BP_GET_LSIZE`: the logical size in bytes.
        ///
        /// For an embedded pointer this is `BPE_GET_LSIZE` when it holds data, else 0, as in OpenZFS.
        public var logicalByteCount: UInt64 {
            if isEmbedded { return embeddedType == 0 ? bits(0, 25) + 1 : 0 }
            return (bits(0, 16) + 1) << UInt64(Self.sectorShift)
        }

        /// `BP_GET_PSIZE`: the physical (compressed) size in bytes; 0 for embedded pointers.
        public var physicalByteCount: UInt64 {
            isEmbedded ? 0 : (bits(16, 16) + 1) << UInt64(Self.sectorShift)
        }

        /// `BPE_GET_PSIZE`: the size of the embedded payload in bytes; `nil` when not embedded.
        public var embeddedPayloadByteCount: UInt64? { isEmbedded ? bits(25, 7) + 1 : nil }

        /// `BP_GET_COMPRESS` (`enum zio_compress`; 15 = LZ4).
        public var compression: UInt8 { UInt8(bits(32, 7)) }

        /// Bits 40..47 raw: `BP_GET_CHECKSUM` (`enum zio_checksum`; 7 = fletcher4) for ordinary
        /// pointers. OpenZFS reports `ZIO_CHECKSUM_OFF` for embedded ones, whose bits hold the
        /// embedded type instead.
        public var checksumAlgorithm: UInt8 { UInt8(bits(40, 8)) }

        /// `BP_GET_TYPE` (`dmu_object_type_t`; 11 = `DMU_OT_OBJSET`).
        public var objectType: UInt8 { UInt8(bits(48, 8)) }

        /// `BP_GET_LEVEL`: 0 for data, > 0 for indirect blocks.
        public var level: UInt8 { UInt8(bits(56, 5)) }

        /// `BP_USES_CRYPT`: the block is encrypted or authenticated.
        public var usesEncryption: Bool { bits(61, 1) == 1 }

        /// `BP_GET_DEDUP`.
        public var isDeduplicated: Bool { bits(62, 1) == 1 }

        /// `BP_GET_BYTEORDER`: the byte order of the block's contents (bit set = little-endian).
        public var dataByteOrder: Endianness { bits(63, 1) == 1 ? .little : .big }
    }
}

/// A data virtual address: one copy of a block, as (top-level vdev, offset, allocated size).
///
/// ```
/// word 0: bits 0-23 ASIZE (512-byte units) | 24-31 GRID | 32-55 VDEV | 56-63 unused
/// word 1: bits 0-62 OFFSET (512-byte units, from the start of the vdev's allocatable space) | 63 G (gang)
/// ```
///
/// The physical offset on a plain disk or file top-level vdev is ``byteOffset`` + 4 MiB
/// (``LabelLayout/startByteCount``); raidz and mirror map it through their own layout.
///
/// The corresponding OpenZFS type is `dva_t` with macros `DVA_GET_*` (`include/sys/spa.h`).
public struct DVA: Hashable, Sendable {
    /// `dva_word[0]`.
    public var word0: UInt64
    /// `dva_word[1]`.
    public var word1: UInt64

    public init(word0: UInt64, word1: UInt64) {
        self.word0 = word0
        self.word1 = word1
    }

    /// `DVA_GET_ASIZE` in 512-byte sectors (24 bits).
    public var allocatedSectors: UInt64 { word0 & 0xFF_FFFF }
    /// `DVA_GET_ASIZE` in bytes: the space allocated for this copy (for gang blocks, the total).
    public var allocatedByteCount: UInt64 { allocatedSectors << 9 }
    /// `DVA_GET_GRID` (reserved in 2.1.11).
    public var grid: UInt8 { UInt8(truncatingIfNeeded: word0 >> 24) }
    /// `DVA_GET_VDEV`: the id of the top-level vdev holding this copy (24 bits).
    public var vdevID: UInt64 { (word0 >> 32) & 0xFF_FFFF }
    /// `DVA_GET_OFFSET` in 512-byte sectors (63 bits).
    public var offsetInSectors: UInt64 { word1 & ~(1 << 63) }
    /// `DVA_GET_OFFSET` in bytes, relative to the start of the vdev's allocatable space.
    ///
    /// Computed modulo 2^64 like the C macro, so a corrupt word cannot trap.
    public var byteOffset: UInt64 { offsetInSectors &<< 9 }
    /// `DVA_GET_GANG`: the copy is a gang block header.
    public var isGang: Bool { word1 >> 63 == 1 }
    /// `DVA_IS_EMPTY`: both words zero.
    public var isEmpty: Bool { word0 == 0 && word1 == 0 }
}
