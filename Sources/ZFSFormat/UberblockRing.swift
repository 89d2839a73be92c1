/// The layout of the 128 KiB uberblock ring at the end of each label, and its slot codec.
///
/// The ring is cut into slots whose size follows the **top-level** vdev's `ashift` (for a leaf
/// label: the `ashift` key of its `vdev_tree`), clamped to 1 KiB..8 KiB:
///
/// ```
/// shift = min(max(ashift, 10), 13)        slot = 1 << shift     count = 128 KiB >> shift
/// ashift 9, 10 -> 1 KiB x 128   11 -> 2 KiB x 64   12 -> 4 KiB x 32   13..16 -> 8 KiB x 16
///
/// slot n:  +--------------------+----------------------- zeros ---+----------------+
///          | uberblock (208 B)  |                                 | zio_eck_t 40 B |
///          +--------------------+---------------------------------+----------------+
///          absolute offset = label offset + 0x20000 + n * slot size  (the checksum verifier)
/// ```
///
/// A txg sync writes slot `txg mod count` of all four labels, or `txg mod (count - 1)` when the
/// pool has multihost on: the last slot is then reserved for MMP heartbeats
/// (``mmpSlotIndex``). A freshly initialised label is different: its whole ring is one
/// checksummed block holding a txg-0 uberblock in slot 0 (``encodeInitialized(template:labelOffset:byteOrder:)``),
/// so read slot by slot it has no valid uberblock at all.
///
/// The corresponding OpenZFS macros are `VDEV_UBERBLOCK_SHIFT`, `VDEV_UBERBLOCK_COUNT`,
/// `VDEV_UBERBLOCK_OFFSET` and `VDEV_UBERBLOCK_SIZE` (`include/sys/vdev_impl.h`); described in
/// `shared/spec/ondisk.md` §1.4.
public struct UberblockRing: Hashable, Sendable {
    /// `VDEV_UBERBLOCK_RING`: the ring's size in bytes.
    public static let byteCount = 0x20000
    /// Offset of the ring inside a label (`offsetof (vdev_label_t, vl_uberblock)`).
    public static let offsetInLabel = 0x20000
    /// `UBERBLOCK_SHIFT`: the smallest slot shift (1 KiB slots).
    public static let minimumShift = 10
    /// `MAX_UBERBLOCK_SHIFT`: the largest slot shift (8 KiB slots).
    public static let maximumShift = 13
    /// `MMP_BLOCKS_PER_LABEL`: slots at the end of the ring reserved for MMP when multihost is on.
    public static let mmpSlotsPerLabel = 1

    /// The slot shift for a top-level vdev `ashift`: `min(max(ashift, 10), 13)`.
    ///
    /// The corresponding OpenZFS macro is `VDEV_UBERBLOCK_SHIFT`.
    public static func shift(ashift: UInt64) -> Int {
        Int(min(max(ashift, UInt64(minimumShift)), UInt64(maximumShift)))
    }

    /// log2 of the slot size, 10...13.
    public let shift: Int

    /// The ring layout for a top-level vdev of the given `ashift`. Any value is accepted; it is
    /// clamped as OpenZFS does.
    public init(ashift: UInt64) {
        shift = Self.shift(ashift: ashift)
    }

    /// `VDEV_UBERBLOCK_SIZE`: the size of one slot in bytes (1, 2, 4 or 8 KiB).
    public var slotByteCount: Int { 1 << shift }

    /// `VDEV_UBERBLOCK_COUNT`: the number of slots in the ring (128, 64, 32 or 16).
    public var slotCount: Int { Self.byteCount >> shift }

    /// The slot MMP heartbeats write when multihost is on: the last one.
    public var mmpSlotIndex: Int { slotCount - Self.mmpSlotsPerLabel }

    /// The slot indices, `0..<slotCount`.
    public var slotIndices: Range<Int> { 0..<slotCount }

    /// `VDEV_UBERBLOCK_OFFSET(vd, n)`: the offset of slot `index` inside a label.
    public func slotOffsetInLabel(_ index: Int) -> Int {
        Self.offsetInLabel + index * slotByteCount
    }

    /// The absolute device offset of slot `index` of the label at `labelOffset`: the verifier
    /// of the slot's embedded checksum.
    ///
    /// Computed modulo 2^64, as the `uint64_t` arithmetic of OpenZFS is, so an absurd
    /// `labelOffset` gives a wrong verifier (and a failed checksum), never a trap.
    public func slotOffset(_ index: Int, labelOffset: UInt64) -> UInt64 {
        labelOffset &+ UInt64(slotOffsetInLabel(index))
    }

    /// The slot a txg sync writes: `txg mod count`, or `txg mod (count - 1)` with multihost on.
    ///
    /// The corresponding OpenZFS code is in `vdev_uberblock_sync` (`module/zfs/vdev_label.c`).
    public func syncSlotIndex(for txg: TXG, multihost: Bool) -> Int {
        let usable = UInt64(slotCount - (multihost ? Self.mmpSlotsPerLabel : 0))
        return Int(txg.rawValue % usable)
    }

    // MARK: - Reading

    /// One slot of a ring as read from disk.
    ///
    /// ``checksum`` and ``uberblock`` are independent on purpose: `zdb -lu` prints every slot
    /// with a good magic and never checks checksums, while the kernel import path uses a slot
    /// only when both are good (``isUsable``).
    public struct Slot: Hashable, Sendable {
        /// The slot number, `0..<slotCount`.
        public var index: Int
        /// The absolute device offset of the slot (its checksum verifier).
        public var absoluteOffset: UInt64
        /// The slot's embedded checksum.
        public var checksum: EmbeddedChecksum.Status
        /// The decoded uberblock, or `nil` when the slot does not start with the uberblock magic
        /// in either byte order (an unused slot, or the trailer-only last slot of an initialised ring).
        public var uberblock: Uberblock?

        public init(index: Int, absoluteOffset: UInt64, checksum: EmbeddedChecksum.Status, uberblock: Uberblock?) {
            self.index = index
            self.absoluteOffset = absoluteOffset
            self.checksum = checksum
            self.uberblock = uberblock
        }

        /// Whether the kernel would consider this slot: the checksum is valid and the magic is good.
        ///
        /// The corresponding OpenZFS test is in `vdev_uberblock_load_done`
        /// (`zio->io_error == 0 && uberblock_verify(ub) == 0`).
        public var isUsable: Bool { checksum.isValid && uberblock != nil }
    }

    /// Decodes every slot of a ring.
    ///
    /// - Parameters:
    ///   - ring: The 128 KiB ring (label bytes 0x20000..<0x40000).
    ///   - labelOffset: The absolute device offset of the label holding the ring.
    /// - Returns: ``slotCount`` slots in index order.
    /// - Throws: `FormatError` `.truncated` when `ring` is shorter than 128 KiB;
    ///   `.invalidSize` when it is longer.
    /// - Complexity: O(*n*) in the ring size (one SHA-256 pass over every slot).
    public func decodeSlots(_ ring: UnsafeRawBufferPointer, labelOffset: UInt64) throws(FormatError) -> [Slot] {
        guard ring.count >= Self.byteCount else {
            throw FormatError(
                .truncated, "an uberblock ring is \(Self.byteCount) bytes, but only \(ring.count) were given",
                offset: ring.count)
        }
        guard ring.count == Self.byteCount else {
            throw FormatError(
                .invalidSize, "an uberblock ring is \(Self.byteCount) bytes, but \(ring.count) were given",
                offset: Self.byteCount)
        }
        return decodeSlotsUnchecked(ring, labelOffset: labelOffset)
    }

    /// Decodes every slot of a ring held in an array; same as the `UnsafeRawBufferPointer` overload.
    public func decodeSlots(_ ring: [UInt8], labelOffset: UInt64) throws(FormatError) -> [Slot] {
        try OnDiskWord.withBytes(of: ring) { (buffer) throws(FormatError) in try decodeSlots(buffer, labelOffset: labelOffset) }
    }

    /// Decodes every slot of a ring held in an array slice; same as the `UnsafeRawBufferPointer` overload.
    public func decodeSlots(_ ring: ArraySlice<UInt8>, labelOffset: UInt64) throws(FormatError) -> [Slot] {
        try OnDiskWord.withBytes(of: ring) { (buffer) throws(FormatError) in try decodeSlots(buffer, labelOffset: labelOffset) }
    }

    /// `ring` is exactly ``byteCount`` bytes.
    func decodeSlotsUnchecked(_ ring: UnsafeRawBufferPointer, labelOffset: UInt64) -> [Slot] {
        slotIndices.map { index in
            let start = index * slotByteCount
            let bytes = UnsafeRawBufferPointer(rebasing: ring[start..<(start + slotByteCount)])
            let offset = slotOffset(index, labelOffset: labelOffset)
            return Slot(
                index: index,
                absoluteOffset: offset,
                checksum: EmbeddedChecksum.verifyUnchecked(bytes, absoluteOffset: offset),
                uberblock: try? Uberblock(decoding: bytes))
        }
    }

    /// Verifies a ring as the single block a label initialisation writes (verifier = the ring's
    /// absolute offset, trailer = the ring's last 40 bytes).
    ///
    /// `.valid` identifies a freshly initialised label, an idle hot spare or a cache device.
    /// - Throws: `FormatError` `.truncated` / `.invalidSize` when `ring` is not 128 KiB.
    public static func verifyInitialized(_ ring: UnsafeRawBufferPointer, labelOffset: UInt64) throws(FormatError) -> EmbeddedChecksum.Status {
        guard ring.count == byteCount else {
            throw FormatError(
                ring.count < byteCount ? .truncated : .invalidSize,
                "an uberblock ring is \(byteCount) bytes, but \(ring.count) were given",
                offset: min(ring.count, byteCount))
        }
        return EmbeddedChecksum.verifyUnchecked(ring, absoluteOffset: labelOffset &+ UInt64(offsetInLabel))
    }

    // MARK: - Writing

    /// Writes one uberblock into slot `index` of an encoded ring, sealing that slot.
    ///
    /// - Parameters:
    ///   - uberblock: The uberblock to write.
    ///   - index: The slot, `0..<slotCount` (for a sync: ``syncSlotIndex(for:multihost:)``;
    ///     for an MMP heartbeat: ``mmpSlotIndex``).
    ///   - ring: A 128 KiB ring.
    ///   - labelOffset: The absolute device offset of the label that will hold the ring.
    ///   - byteOrder: The writer's byte order; defaults to the uberblock's ``Uberblock/byteOrder``.
    /// - Throws: `FormatError` `.invalidLayout` when `index` is not a slot of this ring;
    ///   `.invalidSize` when `ring` is not 128 KiB.
    public func write(
        _ uberblock: Uberblock, slot index: Int, into ring: inout [UInt8], labelOffset: UInt64, byteOrder: Endianness? = nil
    ) throws(FormatError) {
        guard slotIndices.contains(index) else {
            throw FormatError(.invalidLayout, "slot \(index) does not exist in a ring of \(slotCount) slots of \(slotByteCount) bytes")
        }
        guard ring.count == Self.byteCount else {
            throw FormatError(.invalidSize, "an uberblock ring is \(Self.byteCount) bytes, but \(ring.count) were given")
        }
        let start = index * slotByteCount
        let offset = slotOffset(index, labelOffset: labelOffset)
        ring.withUnsafeMutableBytes { all in
            let slot = UnsafeMutableRawBufferPointer(rebasing: all[start..<(start + slotByteCount)])
            uberblock.writeSlot(into: slot, absoluteOffset: offset, byteOrder: byteOrder ?? uberblock.byteOrder)
        }
    }

    /// Encodes a ring as a series of txg syncs would leave it: each uberblock in its sync slot
    /// (``syncSlotIndex(for:multihost:)``), later ones overwriting earlier ones, other slots zero.
    ///
    /// - Parameters:
    ///   - uberblocks: Uberblocks in write order.
    ///   - multihost: Whether the pool had multihost on (the last slot is then never used).
    ///   - labelOffset: The absolute device offset of the label that will hold the ring.
    ///   - byteOrder: The writer's byte order; `nil` writes each in its own ``Uberblock/byteOrder``.
    /// - Returns: 128 KiB.
    public func encode(
        uberblocks: some Sequence<Uberblock>, multihost: Bool, labelOffset: UInt64, byteOrder: Endianness? = nil
    ) -> [UInt8] {
        var ring = [UInt8](repeating: 0, count: Self.byteCount)
        ring.withUnsafeMutableBytes { all in
            for uberblock in uberblocks {
                let index = syncSlotIndex(for: uberblock.txg, multihost: multihost)
                let start = index * slotByteCount
                let slot = UnsafeMutableRawBufferPointer(rebasing: all[start..<(start + slotByteCount)])
                uberblock.writeSlot(
                    into: slot, absoluteOffset: slotOffset(index, labelOffset: labelOffset),
                    byteOrder: byteOrder ?? uberblock.byteOrder)
            }
        }
        return ring
    }

    /// Encodes the ring `vdev_label_init` writes: the template with its txg set to 0 in slot 0,
    /// zeros, and one checksum trailer over the whole 128 KiB (verifier = the ring's offset).
    ///
    /// Read slot by slot, such a ring has no usable uberblock: slot 0 has no trailer of its own
    /// (`.noMagic`), and the last slot holds only the ring's trailer (`.mismatch`, no uberblock).
    /// - Parameters:
    ///   - template: The pool's in-core uberblock (`spa_uberblock`); its txg is ignored.
    ///   - labelOffset: The absolute device offset of the label that will hold the ring.
    ///   - byteOrder: The writer's byte order; defaults to the template's ``Uberblock/byteOrder``.
    /// - Returns: 128 KiB.
    public static func encodeInitialized(template: Uberblock, labelOffset: UInt64, byteOrder: Endianness? = nil) -> [UInt8] {
        var uberblock = template
        uberblock.txg = .zero
        let order = byteOrder ?? template.byteOrder
        var ring = [UInt8](repeating: 0, count: byteCount)
        ring.withUnsafeMutableBytes { all in
            uberblock.write(into: all, byteOrder: order)
            EmbeddedChecksum.sealUnchecked(all, absoluteOffset: labelOffset &+ UInt64(offsetInLabel), byteOrder: order)
        }
        return ring
    }
}
