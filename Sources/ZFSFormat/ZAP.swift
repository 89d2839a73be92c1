/// ZAP objects: the name → integers maps of the MOS (the object directory, feature lists).
///
/// Block 0 says which kind an object is by its first word:
///
/// * a **micro ZAP** (`ZBT_MICRO`) is one block: a 64-byte header, then 64-byte entries
///   `mze_value` (u64), `mze_cd` (u32), pad (u16), `mze_name` (50 bytes, NUL-terminated),
///   each holding one 64-bit integer;
/// * a **fat ZAP** (`ZBT_HEADER`) is a header block whose pointer table (embedded in its
///   second half, or in blocks `zt_blk ..< zt_blk + zt_numblks`) names the leaf blocks
///   (`ZBT_LEAF`). A leaf is a 48-byte header, a hash table of `2^(blockshift − 5)` u16
///   chain heads, then 24-byte chunks: entries (type 252) whose name and value live in
///   chains of array chunks (type 251, 21 bytes each). Names are bytes; values are integers
///   of 1, 2, 4 or 8 bytes stored big-endian in the arrays.
///
/// Header fields are in the byte order of the block. Enumeration reads every entry chunk of
/// every leaf the pointer table names (no hashing, so no salt is needed); every chunk index
/// and chain is bounds-checked and a chain is never followed longer than the leaf has chunks.
///
/// The corresponding OpenZFS code is `module/zfs/zap_micro.c`, `zap.c`, `zap_leaf.c`;
/// the types are `mzap_phys_t`, `zap_phys_t`, `zap_leaf_phys_t` (`include/sys/zap_impl.h`,
/// `zap_leaf.h`).
public enum ZAP {
    /// `ZBT_LEAF`.
    public static let leafBlockType: UInt64 = (1 << 63) + 0
    /// `ZBT_HEADER`.
    public static let headerBlockType: UInt64 = (1 << 63) + 1
    /// `ZBT_MICRO`.
    public static let microBlockType: UInt64 = (1 << 63) + 3
    /// `ZAP_MAGIC`.
    public static let magic: UInt64 = 0x2F52AB2AB
    /// `ZAP_LEAF_MAGIC`.
    public static let leafMagic: UInt32 = 0x2AB1EAF
    static let microEntryByteCount = 64
    static let microNameByteCount = 50
    static let chunkByteCount = 24
    static let chainEnd = 0xFFFF

    /// One name and its integers.
    public struct Entry: Hashable, Sendable {
        public var name: String
        /// The size of each integer in bytes (1, 2, 4 or 8).
        public var integerLength: Int
        public var values: [UInt64]
        public init(name: String, integerLength: Int, values: [UInt64]) {
            self.name = name
            self.integerLength = integerLength
            self.values = values
        }
        /// The value of a single-integer entry.
        public var value: UInt64? { values.count == 1 ? values[0] : nil }
    }

    /// The kind of ZAP block 0 is.
    public enum Kind: Hashable, Sendable {
        case micro
        case fat(FatHeader)
    }

    /// The parts of a fat ZAP's header (`zap_phys_t`) enumeration needs.
    public struct FatHeader: Hashable, Sendable {
        /// `zt_blk`: the first block of an external pointer table (0 = embedded).
        public var tableBlock: UInt64
        /// `zt_numblks`: its block count.
        public var tableBlockCount: UInt64
        /// `zt_shift`: log2 of the number of table entries.
        public var tableShift: UInt64
        /// `zap_num_leafs`.
        public var leafCount: UInt64
        /// `zap_num_entries`.
        public var entryCount: UInt64
        /// The embedded table (when ``tableBlockCount`` is 0), entries in order.
        public var embeddedTable: [UInt64]
    }

    /// Reads block 0's first word (and, for a fat ZAP, its header).
    ///
    /// - Throws: `FormatError` `.badMagic` when the block is neither a micro ZAP nor a fat ZAP
    ///   header (or a fat header lacks `ZAP_MAGIC`), `.invalidLayout` for a pointer table that
    ///   cannot fit.
    public static func kind(ofFirstBlock block: [UInt8], byteOrder: Endianness) throws(FormatError) -> Kind {
        guard block.count >= 128 else {
            throw FormatError(.truncated, "a ZAP block of \(block.count) bytes is too small")
        }
        func word(_ i: Int) -> UInt64 { block.withUnsafeBytes { OnDiskWord.load($0, at: 8 * i, byteOrder) } }
        switch word(0) {
        case microBlockType: return .micro
        case headerBlockType:
            guard word(1) == magic else {
                throw FormatError(.badMagic, "a fat ZAP header without ZAP_MAGIC (0x\(String(word(1), radix: 16)))", offset: 8)
            }
            var header = FatHeader(
                tableBlock: word(2), tableBlockCount: word(3), tableShift: word(4), leafCount: word(8), entryCount: word(9),
                embeddedTable: [])
            if header.tableBlockCount == 0 {
                let embeddedShift = block.count.trailingZeroBitCount - 3 - 1
                guard block.count.nonzeroBitCount == 1, header.tableShift <= UInt64(embeddedShift) else {
                    throw FormatError(
                        .invalidLayout, "a fat ZAP's embedded pointer table of 2^\(header.tableShift) entries does not fit its header block",
                        offset: 32)
                }
                let base = block.count / 16
                header.embeddedTable = (0..<(1 << Int(header.tableShift))).map { word(base + $0) }
            } else {
                guard header.tableShift < 32, header.tableBlockCount <= 1 << 12 else {
                    throw FormatError(.invalidLayout, "a fat ZAP's pointer table of 2^\(header.tableShift) entries is absurd", offset: 32)
                }
            }
            return .fat(header)
        default:
            throw FormatError(
                .badMagic, "not a ZAP: block 0 starts with 0x\(String(word(0), radix: 16)), neither a micro ZAP nor a fat ZAP header",
                offset: 0)
        }
    }

    /// The entries of a micro ZAP block, in slot order.
    public static func microEntries(_ block: [UInt8], byteOrder: Endianness) throws(FormatError) -> [Entry] {
        guard block.count >= 128 else {
            throw FormatError(.truncated, "a micro ZAP block of \(block.count) bytes is too small")
        }
        var entries: [Entry] = []
        var offset = microEntryByteCount
        while offset + microEntryByteCount <= block.count {
            let nameBytes = block[(offset + 14)..<(offset + 14 + microNameByteCount)]
            if let first = nameBytes.first, first != 0 {
                guard let end = nameBytes.firstIndex(of: 0) else {
                    throw FormatError(.invalidName, "a micro ZAP name is not NUL-terminated", offset: offset + 14)
                }
                let value = block.withUnsafeBytes { OnDiskWord.load($0, at: offset, byteOrder) }
                entries.append(Entry(name: String(decoding: block[(offset + 14)..<end], as: UTF8.self), integerLength: 8, values: [value]))
            }
            offset += microEntryByteCount
        }
        return entries
    }

    /// The leaf block ids an external pointer-table block names.
    public static func tableEntries(_ block: [UInt8], byteOrder: Endianness) -> [UInt64] {
        block.withUnsafeBytes { raw in (0..<(raw.count / 8)).map { OnDiskWord.load(raw, at: 8 * $0, byteOrder) } }
    }

    /// The entries of one fat-ZAP leaf block, in chunk order.
    ///
    /// - Throws: `FormatError` `.badMagic` for a block that is not a leaf, `.invalidLayout` for
    ///   a chunk index, chain or integer length that cannot be right.
    public static func leafEntries(_ block: [UInt8], byteOrder: Endianness) throws(FormatError) -> [Entry] {
        guard block.count >= 1024, block.count.nonzeroBitCount == 1 else {
            throw FormatError(.invalidSize, "a ZAP leaf of \(block.count) bytes (a power of two ≥ 1 KiB)")
        }
        func u16(_ at: Int) -> Int {
            let a = Int(block[at])
            let b = Int(block[at + 1])
            return byteOrder == .little ? a | b << 8 : a << 8 | b
        }
        let (type, magicWord) = block.withUnsafeBytes { raw in
            (OnDiskWord.load(raw, at: 0, byteOrder), OnDiskWord.load(raw, at: 24, byteOrder))
        }
        let leafMagicValue = byteOrder == .little ? UInt32(truncatingIfNeeded: magicWord) : UInt32(truncatingIfNeeded: magicWord >> 32)
        guard type == leafBlockType, leafMagicValue == leafMagic else {
            throw FormatError(.badMagic, "not a ZAP leaf: block type 0x\(String(type, radix: 16)), magic 0x\(String(leafMagicValue, radix: 16))")
        }
        let hashEntries = 1 << (block.count.trailingZeroBitCount - 5)
        let chunksStart = 48 + 2 * hashEntries
        let chunkCount = (block.count - 2 * hashEntries) / chunkByteCount - 2
        func chunkOffset(_ index: Int) -> Int { chunksStart + index * chunkByteCount }

        /// The bytes of an array chain of `count` bytes starting at chunk `first`.
        func arrayBytes(_ first: Int, count: Int, what: String) throws(FormatError) -> [UInt8] {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(count)
            var chunk = first
            var visited = 0
            while bytes.count < count {
                guard chunk < chunkCount, visited < chunkCount else {
                    throw FormatError(.invalidLayout, "a ZAP leaf's \(what) chain leaves the leaf (chunk \(chunk) of \(chunkCount))")
                }
                let at = chunkOffset(chunk)
                guard block[at] == 251 else {
                    throw FormatError(.invalidLayout, "a ZAP leaf's \(what) chain reaches a chunk of type \(block[at])", offset: at)
                }
                let take = min(21, count - bytes.count)
                bytes.append(contentsOf: block[(at + 1)..<(at + 1 + take)])
                chunk = u16(at + 22)
                visited += 1
            }
            return bytes
        }

        var entries: [Entry] = []
        for index in 0..<chunkCount {
            let at = chunkOffset(index)
            guard block[at] == 252 else { continue }
            let integerLength = Int(block[at + 1])
            let nameChunk = u16(at + 4)
            let nameLength = u16(at + 6)
            let valueChunk = u16(at + 8)
            let valueCount = u16(at + 10)
            guard [1, 2, 4, 8].contains(integerLength) else {
                throw FormatError(.invalidLayout, "a ZAP entry with \(integerLength)-byte integers", offset: at + 1)
            }
            let nameBytes = try arrayBytes(nameChunk, count: nameLength, what: "name")
            let valueBytes = try arrayBytes(valueChunk, count: valueCount * integerLength, what: "value")
            var name = nameBytes
            if name.last == 0 { name.removeLast() }
            var values: [UInt64] = []
            values.reserveCapacity(valueCount)
            for i in 0..<valueCount {
                var v: UInt64 = 0
                for b in valueBytes[(i * integerLength)..<((i + 1) * integerLength)] { v = v << 8 | UInt64(b) }
                values.append(v)
            }
            entries.append(Entry(name: String(decoding: name, as: UTF8.self), integerLength: integerLength, values: values))
        }
        return entries
    }
}
