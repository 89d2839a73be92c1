/// An object's dnode (`dnode_phys_t`): its type, block size, indirection and block pointers.
///
/// ```
/// 0x00 dn_type  0x01 dn_indblkshift  0x02 dn_nlevels  0x03 dn_nblkptr  0x04 dn_bonustype
/// 0x05 dn_checksum  0x06 dn_compress  0x07 dn_flags  0x08 dn_datablkszsec (u16)
/// 0x0a dn_bonuslen (u16)  0x0c dn_extra_slots  0x10 dn_maxblkid  0x18 dn_used
/// 0x40 dn_blkptr[dn_nblkptr], then the bonus buffer (dn_bonuslen bytes)
/// ```
///
/// A dnode is 512 bytes times (1 + `dn_extra_slots`); multi-byte fields are in the byte order
/// of the block that holds it.
///
/// The corresponding OpenZFS type is `dnode_phys_t` (`include/sys/dnode.h`).
public struct Dnode: Hashable, Sendable {
    /// `DNODE_MIN_SIZE`: one dnode slot.
    public static let slotByteCount = 512
    /// Offset of `dn_blkptr`.
    static let blockPointersOffset = 64
    /// `DN_MAX_LEVELS` for 512-byte blocks and 128-byte pointers is 9 (3 + 6 × 7 ≥ 64 bits).
    public static let maximumLevels = 9

    /// `dn_type` (`dmu_object_type_t`; 0 = `DMU_OT_NONE`, a free slot).
    public var type: UInt8
    /// `dn_indblkshift`: log2 of the indirect block size.
    public var indirectBlockShift: UInt8
    /// `dn_nlevels`: 1 when the block pointers point at data.
    public var levels: UInt8
    /// `dn_bonustype`.
    public var bonusType: UInt8
    /// `dn_flags`.
    public var flags: UInt8
    /// `dn_datablkszsec` × 512: the data block size in bytes.
    public var dataBlockByteCount: Int
    /// `dn_maxblkid`: the highest level-0 block id in use.
    public var maximumBlockID: UInt64
    /// `dn_blkptr`.
    public var blockPointers: [BlockPointer]
    /// The bonus buffer (`dn_bonuslen` bytes).
    public var bonus: [UInt8]
    /// The byte order of the block the dnode came from (and of its bonus buffer).
    public var byteOrder: Endianness

    /// `DNODE_FLAG_SPILL_BLKPTR`.
    public static let spillFlag: UInt8 = 1 << 2

    /// Decodes the dnode at `offset` of `bytes`.
    ///
    /// - Throws: `FormatError` `.truncated` when the dnode (with its extra slots) does not fit,
    ///   `.invalidLayout` when its pointer count, bonus length, level count or block sizes
    ///   cannot describe a dnode OpenZFS writes.
    public init(decoding bytes: [UInt8], at offset: Int, byteOrder: Endianness) throws(FormatError) {
        guard offset >= 0, offset <= bytes.count - Self.slotByteCount else {
            throw FormatError(.truncated, "a dnode needs 512 bytes at offset \(offset) of \(bytes.count)", offset: offset)
        }
        func byte(_ at: Int) -> UInt8 { bytes[offset + at] }
        func u16(_ at: Int) -> Int {
            let a = Int(bytes[offset + at])
            let b = Int(bytes[offset + at + 1])
            return byteOrder == .little ? a | b << 8 : a << 8 | b
        }
        type = byte(0)
        indirectBlockShift = byte(1)
        levels = byte(2)
        let pointerCount = Int(byte(3))
        bonusType = byte(4)
        flags = byte(7)
        dataBlockByteCount = u16(8) << 9
        let bonusLength = u16(10)
        let extraSlots = Int(byte(12))
        self.byteOrder = byteOrder
        let size = Self.slotByteCount * (1 + extraSlots)
        guard offset + size <= bytes.count else {
            throw FormatError(.truncated, "a dnode of \(extraSlots + 1) slots does not fit the block", offset: offset)
        }
        maximumBlockID = bytes.withUnsafeBytes { OnDiskWord.load($0, at: offset + 16, byteOrder) }
        if type == 0 {
            blockPointers = []
            bonus = []
            levels = 0
            return
        }
        let spillBytes = flags & Self.spillFlag != 0 ? BlockPointer.byteCount : 0
        let room = size - Self.blockPointersOffset - spillBytes
        guard pointerCount >= 1, pointerCount * BlockPointer.byteCount + bonusLength <= room else {
            throw FormatError(
                .invalidLayout, "a dnode with \(pointerCount) block pointers and a \(bonusLength)-byte bonus does not fit \(size) bytes",
                offset: offset + 3)
        }
        guard levels >= 1, levels <= Self.maximumLevels else {
            throw FormatError(.invalidLayout, "a dnode with \(levels) levels of indirection", offset: offset + 2)
        }
        guard dataBlockByteCount > 0 else {
            throw FormatError(.invalidLayout, "a dnode with a zero data block size", offset: offset + 8)
        }
        guard levels == 1 || (10...17).contains(indirectBlockShift) else {
            throw FormatError(.invalidLayout, "a dnode with indirect blocks of 2^\(indirectBlockShift) bytes", offset: offset + 1)
        }
        var pointers: [BlockPointer] = []
        for index in 0..<pointerCount {
            pointers.append(try BlockPointer(decoding: bytes, at: offset + Self.blockPointersOffset + 128 * index, byteOrder: byteOrder))
        }
        blockPointers = pointers
        let bonusStart = offset + Self.blockPointersOffset + 128 * pointerCount
        bonus = Array(bytes[bonusStart..<(bonusStart + bonusLength)])
    }

    /// Where level-0 block `blockID` is found: the path of pointer indices from the top.
    ///
    /// Returns the index into ``blockPointers`` and, for each indirect level from the top
    /// down, the index into that indirect block; `nil` when the block lies past what the
    /// dnode's pointers and levels can address (a hole).
    public func path(toBlock blockID: UInt64) -> (top: Int, indirect: [Int])? {
        let perIndirectShift = Int(indirectBlockShift) - 7
        let indirectLevels = Int(levels) - 1
        guard indirectLevels == 0 || perIndirectShift > 0 else { return nil }
        let topShift = perIndirectShift * indirectLevels
        let top = topShift >= 64 ? 0 : blockID >> UInt64(topShift)
        guard top < UInt64(blockPointers.count) else { return nil }
        var indices: [Int] = []
        for level in stride(from: indirectLevels, through: 1, by: -1) {
            let shift = perIndirectShift * (level - 1)
            let above = shift >= 64 ? 0 : blockID >> UInt64(shift)
            indices.append(Int(above & ((1 << UInt64(perIndirectShift)) - 1)))
        }
        return (Int(top), indices)
    }

    /// The size of an indirect block of this dnode.
    public var indirectBlockByteCount: Int { 1 << Int(indirectBlockShift) }

    /// The first word of the bonus buffer, in the dnode's byte order (a packed nvlist's size).
    public var bonusWord: UInt64? {
        guard bonus.count >= 8 else { return nil }
        return bonus.withUnsafeBytes { OnDiskWord.load($0, at: 0, byteOrder) }
    }
}

/// The root block of an objset (`objset_phys_t`): its meta-dnode, whose data are the objset's
/// dnodes, and its type.
///
/// ```
/// 0x000  os_meta_dnode (512 bytes)   0x200 os_zil_header (192 bytes)
/// 0x2c0  os_type                     0x2c8 os_flags   ...
/// ```
///
/// The corresponding OpenZFS type is `objset_phys_t` (`include/sys/dmu_objset.h`).
public struct ObjsetPhys: Hashable, Sendable {
    /// `DMU_OST_META`: the MOS.
    public static let typeMeta: UInt64 = 1
    /// The smallest `objset_phys_t` (version 1 pools): 1 KiB.
    public static let minimumByteCount = 1024

    public var metaDnode: Dnode
    /// `os_type` (`dmu_objset_type_t`).
    public var type: UInt64

    /// Decodes an objset block whose words are in `byteOrder`.
    /// - Throws: `FormatError` `.truncated` under 1 KiB, and the meta-dnode's errors.
    public init(decoding bytes: [UInt8], byteOrder: Endianness) throws(FormatError) {
        guard bytes.count >= Self.minimumByteCount else {
            throw FormatError(.truncated, "an objset block is at least 1 KiB, not \(bytes.count) bytes")
        }
        metaDnode = try Dnode(decoding: bytes, at: 0, byteOrder: byteOrder)
        type = bytes.withUnsafeBytes { OnDiskWord.load($0, at: 0x2c0, byteOrder) }
    }
}
