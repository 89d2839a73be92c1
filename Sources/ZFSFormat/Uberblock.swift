/// The root of a pool's on-disk state for one transaction group.
///
/// Every txg sync writes one uberblock into one slot of the uberblock ring of all four labels of
/// every leaf (``UberblockRing``). On import, OpenZFS reads every slot it can, keeps those whose
/// embedded checksum and magic are good, and takes the best by ``compare(_:_:)``: highest txg,
/// then newest timestamp, then highest MMP sequence.
///
/// ```
/// offset  size  field                 notes
/// 0x00    8     ub_magic              0x00BAB10C; must stay first (detects the writer's byte order)
/// 0x08    8     ub_version            SPA version of the pool (5000)
/// 0x10    8     ub_txg
/// 0x18    8     ub_guid_sum           sum of all vdev guids mod 2^64, root (= pool guid) included
/// 0x20    8     ub_timestamp          seconds since the Unix epoch
/// 0x28    128   ub_rootbp             BlockPointer of the MOS
/// 0xA8    8     ub_software_version   5000
/// 0xB0    8     ub_mmp_magic          0xA11CEA11 when the MMP fields are meaningful
/// 0xB8    8     ub_mmp_delay          ns; 0 with a valid magic = multihost off
/// 0xC0    8     ub_mmp_config         MMPConfig
/// 0xC8    8     ub_checkpoint_txg
/// 0xD0          end of uberblock_t in 2.1.11 (208 bytes)
/// 0xD0    8     ub_raidz_reflow_info  master only (216 bytes); zero padding to a 2.1.11 reader
/// ```
///
/// Every word is in the writer's byte order. Decoding detects the order from the magic, as
/// `uberblock_verify` does (a byte-swapped magic means "swap every word"), and records it in
/// ``byteOrder`` so that ``encode()`` writes the uberblock back the way it was found.
///
/// The corresponding OpenZFS type is `uberblock_t` (`include/sys/uberblock_impl.h`); see
/// `module/zfs/uberblock.c` and `shared/spec/ondisk.md` §5.
public struct Uberblock: Hashable, Sendable, CustomStringConvertible {
    /// `UBERBLOCK_MAGIC` ("oo-ba-bloc!").
    public static let magic: UInt64 = 0x00BA_B10C

    /// `sizeof (uberblock_t)` in OpenZFS 2.1.11.
    public static let byteCount = 0xD0

    /// `sizeof (uberblock_t)` in OpenZFS master, which adds `ub_raidz_reflow_info`.
    public static let byteCountWithReflowInfo = 0xD8

    /// `SPA_VERSION_FEATURES` (5000): the SPA version of every feature-flag pool, and what
    /// `uberblock_update` writes into `ub_software_version`.
    public static let featureFlagsVersion: UInt64 = 5000

    /// `ub_version`: the SPA version of the pool. Syncs never change it.
    public var version: UInt64
    /// `ub_txg`: the transaction group this uberblock was written by.
    public var txg: TXG
    /// `ub_guid_sum`: the sum modulo 2^64 of the guids of every vdev in the tree, the root
    /// (whose guid is the pool guid) included, spares and cache devices excluded.
    public var guidSum: UInt64
    /// `ub_timestamp`: wall-clock seconds since the Unix epoch (UTC) when it was written.
    public var timestampInSeconds: UInt64
    /// `ub_rootbp`: the block pointer of the MOS objset.
    public var rootBlockPointer: BlockPointer
    /// `ub_software_version`: the highest SPA version of the software that wrote this txg.
    public var softwareVersion: UInt64
    /// `ub_mmp_magic`: ``MMPConfig/magic`` when the MMP fields are meaningful.
    public var mmpMagic: UInt64
    /// `ub_mmp_delay`: nanoseconds between MMP writes as last measured; 0 = multihost off.
    public var mmpDelayInNanoseconds: UInt64
    /// `ub_mmp_config`.
    public var mmpConfig: MMPConfig
    /// `ub_checkpoint_txg`: nonzero only in a checkpointed uberblock.
    public var checkpointTXG: TXG
    /// `ub_raidz_reflow_info` (OpenZFS master only): 0 for everything 2.1.11 writes.
    ///
    /// Decoded only when at least ``byteCountWithReflowInfo`` bytes are given (as in a slot);
    /// encoded only when nonzero, because 2.1.11 sees those bytes as padding.
    public var raidzReflowInfo: UInt64
    /// The byte order the uberblock was read in, or will be written in by ``encode()``.
    public var byteOrder: Endianness

    /// Creates an uberblock with the values a 2.1.11 txg sync of a pool without multihost writes.
    public init(
        version: UInt64 = Uberblock.featureFlagsVersion,
        txg: TXG,
        guidSum: UInt64,
        timestampInSeconds: UInt64,
        rootBlockPointer: BlockPointer = BlockPointer(),
        softwareVersion: UInt64 = Uberblock.featureFlagsVersion,
        mmpMagic: UInt64 = MMPConfig.magic,
        mmpDelayInNanoseconds: UInt64 = 0,
        mmpConfig: MMPConfig = .none,
        checkpointTXG: TXG = .zero,
        raidzReflowInfo: UInt64 = 0,
        byteOrder: Endianness = .host
    ) {
        self.version = version
        self.txg = txg
        self.guidSum = guidSum
        self.timestampInSeconds = timestampInSeconds
        self.rootBlockPointer = rootBlockPointer
        self.softwareVersion = softwareVersion
        self.mmpMagic = mmpMagic
        self.mmpDelayInNanoseconds = mmpDelayInNanoseconds
        self.mmpConfig = mmpConfig
        self.checkpointTXG = checkpointTXG
        self.raidzReflowInfo = raidzReflowInfo
        self.byteOrder = byteOrder
    }

    // Byte offsets of the fields (include/sys/uberblock_impl.h, spec §5.1).
    private static let versionOffset = 0x08
    private static let txgOffset = 0x10
    private static let guidSumOffset = 0x18
    private static let timestampOffset = 0x20
    private static let rootBlockPointerOffset = 0x28
    private static let softwareVersionOffset = 0xA8
    private static let mmpMagicOffset = 0xB0
    private static let mmpDelayOffset = 0xB8
    private static let mmpConfigOffset = 0xC0
    private static let checkpointTXGOffset = 0xC8
    private static let raidzReflowInfoOffset = 0xD0

    // MARK: - Decoding

    /// Decodes an uberblock, detecting the writer's byte order from the magic.
    ///
    /// Reads the first 208 bytes, plus `ub_raidz_reflow_info` when 216 or more are given. Trailing
    /// bytes (the rest of a slot, its checksum trailer) are ignored: this does **not** verify the
    /// slot's embedded checksum — see ``UberblockRing/Slot`` for that.
    ///
    /// The corresponding OpenZFS function is `uberblock_verify` (`module/zfs/uberblock.c`).
    /// - Parameter bytes: The uberblock, starting at its magic.
    /// - Throws: `FormatError` `.truncated` when fewer than 208 bytes are given; `.badMagic`
    ///   when the first word is not `UBERBLOCK_MAGIC` in either byte order.
    public init(decoding bytes: UnsafeRawBufferPointer) throws(FormatError) {
        guard bytes.count >= Self.byteCount else {
            throw FormatError(
                .truncated,
                "an uberblock is \(Self.byteCount) bytes, but only \(bytes.count) were given",
                offset: bytes.count)
        }
        let first = OnDiskWord.load(bytes, at: 0, .little)
        let order: Endianness
        if first == Self.magic {
            order = .little
        } else if first.byteSwapped == Self.magic {
            order = .big
        } else {
            throw FormatError(
                .badMagic,
                "no uberblock here: the first word is 0x\(String(first, radix: 16)) (read little-endian), "
                    + "not the uberblock magic 0x00bab10c in either byte order",
                offset: 0)
        }
        func word(_ offset: Int) -> UInt64 { OnDiskWord.load(bytes, at: offset, order) }
        version = word(Self.versionOffset)
        txg = TXG(word(Self.txgOffset))
        guidSum = word(Self.guidSumOffset)
        timestampInSeconds = word(Self.timestampOffset)
        rootBlockPointer = BlockPointer(
            words: (0..<BlockPointer.wordCount).lazy.map { word(Self.rootBlockPointerOffset + 8 * $0) })
        softwareVersion = word(Self.softwareVersionOffset)
        mmpMagic = word(Self.mmpMagicOffset)
        mmpDelayInNanoseconds = word(Self.mmpDelayOffset)
        mmpConfig = MMPConfig(rawValue: word(Self.mmpConfigOffset))
        checkpointTXG = TXG(word(Self.checkpointTXGOffset))
        raidzReflowInfo = bytes.count >= Self.byteCountWithReflowInfo ? word(Self.raidzReflowInfoOffset) : 0
        byteOrder = order
    }

    /// Decodes an uberblock held in an array; same as the `UnsafeRawBufferPointer` overload.
    public init(decoding bytes: [UInt8]) throws(FormatError) {
        self = try OnDiskWord.withBytes(of: bytes) { (buffer) throws(FormatError) in try Uberblock(decoding: buffer) }
    }

    /// Decodes an uberblock held in an array slice; same as the `UnsafeRawBufferPointer` overload.
    public init(decoding bytes: ArraySlice<UInt8>) throws(FormatError) {
        self = try OnDiskWord.withBytes(of: bytes) { (buffer) throws(FormatError) in try Uberblock(decoding: buffer) }
    }

    // MARK: - Encoding

    /// The number of bytes ``encode(byteOrder:)`` produces: 208, or 216 when
    /// ``raidzReflowInfo`` is nonzero.
    public var encodedByteCount: Int {
        raidzReflowInfo == 0 ? Self.byteCount : Self.byteCountWithReflowInfo
    }

    /// Encodes the uberblock in ``byteOrder``.
    public func encode() -> [UInt8] { encode(byteOrder: byteOrder) }

    /// Encodes the uberblock as a writer of the given byte order would.
    ///
    /// - Parameter byteOrder: The byte order of every word, the magic included.
    /// - Returns: ``encodedByteCount`` bytes (208 for anything OpenZFS 2.1.11 writes).
    public func encode(byteOrder: Endianness) -> [UInt8] {
        var bytes: [UInt8] = []
        encode(into: &bytes, byteOrder: byteOrder)
        return bytes
    }

    /// Appends the encoded uberblock (``encodedByteCount`` bytes) to `buffer`.
    public func encode(into buffer: inout [UInt8], byteOrder: Endianness) {
        let start = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: encodedByteCount))
        buffer.withUnsafeMutableBytes { all in
            write(into: UnsafeMutableRawBufferPointer(rebasing: all[start...]), byteOrder: byteOrder)
        }
    }

    /// Encodes the uberblock into one ring slot: the uberblock, zeros, and a sealed checksum
    /// trailer whose verifier is the slot's absolute offset.
    ///
    /// This is the buffer `vdev_uberblock_sync` writes (`module/zfs/vdev_label.c`).
    /// - Parameters:
    ///   - ring: The ring layout, which gives the slot size.
    ///   - absoluteOffset: The slot's byte offset on the leaf device
    ///     (``UberblockRing/slotOffset(_:labelOffset:)``).
    ///   - byteOrder: The writer's byte order; defaults to ``byteOrder``.
    /// - Returns: ``UberblockRing/slotByteCount`` bytes.
    public func encodeSlot(in ring: UberblockRing, absoluteOffset: UInt64, byteOrder: Endianness? = nil) -> [UInt8] {
        var slot = [UInt8](repeating: 0, count: ring.slotByteCount)
        slot.withUnsafeMutableBytes { buffer in
            writeSlot(into: buffer, absoluteOffset: absoluteOffset, byteOrder: byteOrder ?? self.byteOrder)
        }
        return slot
    }

    /// Writes the uberblock's words at the start of `buffer` (which holds ``encodedByteCount`` bytes or more).
    func write(into buffer: UnsafeMutableRawBufferPointer, byteOrder order: Endianness) {
        func put(_ value: UInt64, _ offset: Int) { OnDiskWord.store(value, into: buffer, at: offset, order) }
        put(Self.magic, 0)
        put(version, Self.versionOffset)
        put(txg.rawValue, Self.txgOffset)
        put(guidSum, Self.guidSumOffset)
        put(timestampInSeconds, Self.timestampOffset)
        for (i, value) in rootBlockPointer.words.enumerated() {
            put(value, Self.rootBlockPointerOffset + 8 * i)
        }
        put(softwareVersion, Self.softwareVersionOffset)
        put(mmpMagic, Self.mmpMagicOffset)
        put(mmpDelayInNanoseconds, Self.mmpDelayOffset)
        put(mmpConfig.rawValue, Self.mmpConfigOffset)
        put(checkpointTXG.rawValue, Self.checkpointTXGOffset)
        if raidzReflowInfo != 0 {
            put(raidzReflowInfo, Self.raidzReflowInfoOffset)
        }
    }

    /// Fills a whole slot: zeros, the uberblock, and the sealed trailer. `slot` is 1..8 KiB.
    func writeSlot(into slot: UnsafeMutableRawBufferPointer, absoluteOffset: UInt64, byteOrder order: Endianness) {
        slot.initializeMemory(as: UInt8.self, repeating: 0)
        write(into: slot, byteOrder: order)
        EmbeddedChecksum.sealUnchecked(slot, absoluteOffset: absoluteOffset, byteOrder: order)
    }

    // MARK: - MMP

    /// `MMP_VALID`: the uberblock carries meaningful MMP fields (`ub_mmp_magic` == `MMP_MAGIC`;
    /// the uberblock magic is always right once decoded).
    public var isMMPValid: Bool { mmpMagic == MMPConfig.magic }

    /// `MMP_INTERVAL(ub)` when `MMP_INTERVAL_VALID(ub)`, else `nil`.
    public var mmpWriteIntervalInMilliseconds: UInt32? {
        isMMPValid && mmpConfig.isIntervalValid ? mmpConfig.writeIntervalInMilliseconds : nil
    }

    /// `MMP_SEQ(ub)` when `MMP_SEQ_VALID(ub)`, else `nil`.
    public var mmpSequence: UInt16? {
        isMMPValid && mmpConfig.isSequenceValid ? mmpConfig.sequence : nil
    }

    /// `MMP_FAIL_INT(ub)` when `MMP_FAIL_INT_VALID(ub)`, else `nil`.
    public var mmpFailIntervals: UInt16? {
        isMMPValid && mmpConfig.isFailIntervalsValid ? mmpConfig.failIntervals : nil
    }

    // MARK: - Choosing

    /// Orders two uberblocks the way the importer does: txg, then timestamp, then MMP sequence.
    ///
    /// An uberblock without a valid MMP sequence counts as sequence 0, so an MMP heartbeat
    /// (same txg, sequence ≥ 1) beats the sync-written copy of its txg.
    ///
    /// The corresponding OpenZFS function is `vdev_uberblock_compare` (`module/zfs/vdev_label.c`).
    /// - Returns: -1 when `lhs` is worse, 0 when neither is better, +1 when `lhs` is better.
    public static func compare(_ lhs: Uberblock, _ rhs: Uberblock) -> Int {
        func order<T: Comparable>(_ a: T, _ b: T) -> Int { a < b ? -1 : (a > b ? 1 : 0) }
        let byTXG = order(lhs.txg, rhs.txg)
        if byTXG != 0 { return byTXG }
        let byTime = order(lhs.timestampInSeconds, rhs.timestampInSeconds)
        if byTime != 0 { return byTime }
        return order(lhs.mmpSequence ?? 0, rhs.mmpSequence ?? 0)
    }

    /// Whether this uberblock would be chosen over `other` (``compare(_:_:)`` is +1).
    public func isBetter(than other: Uberblock) -> Bool { Self.compare(self, other) > 0 }

    /// Picks the uberblock OpenZFS would pick: the best by ``compare(_:_:)`` among those with a
    /// txg no greater than `maximumTXG`; on a tie the first one seen is kept.
    ///
    /// Pass only uberblocks whose slot checksum is valid (``UberblockRing/Slot/isUsable``): the
    /// kernel never considers the others. As in OpenZFS, the search starts from an all-zero
    /// uberblock and a result with txg 0 means "no valid uberblock" (`spa_ld_select_uberblock`
    /// fails the import), so this returns `nil` unless some candidate has txg ≥ 1.
    ///
    /// The corresponding OpenZFS functions are `vdev_uberblock_load` and
    /// `vdev_uberblock_load_done` (`module/zfs/vdev_label.c`).
    /// - Parameters:
    ///   - candidates: Decoded uberblocks from every slot of every label of every leaf.
    ///   - maximumTXG: `spa_load_max_txg`: ``TXG/max`` unless rewinding.
    /// - Complexity: O(*n*) in the number of candidates.
    public static func best(of candidates: some Sequence<Uberblock>, maximumTXG: TXG = .max) -> Uberblock? {
        var best: Uberblock?
        for candidate in candidates where candidate.txg <= maximumTXG {
            if let current = best {
                if compare(candidate, current) > 0 { best = candidate }
            } else if candidate.txg > .zero {
                // The kernel starts from a zeroed uberblock, which any txg >= 1 beats. A txg-0
                // candidate may beat it on timestamp, but can never beat a txg >= 1 one, and a
                // txg-0 result fails the import; so skipping txg 0 gives the same outcome.
                best = candidate
            }
        }
        return best
    }

    public var description: String {
        "uberblock txg \(txg), timestamp \(timestampInSeconds), guid_sum \(guidSum), "
            + "version \(version), mmp \(mmpConfig), \(byteOrder)-endian"
    }
}
