/// Persistent-L2ARC log blocks: the on-disk pieces of the chain a cache device keeps of what
/// it holds (`include/sys/arc_impl.h`, 2.1.11). The walk over a device, which reads it and
/// prints what `zdb -l` prints, is ZPKCLI's (`L2ARCLogBlocks.walk`); the layouts and the
/// pointer-validity rule it follows are here.
///
/// `l2arc_log_blk_phys_t` is lb_magic ("LOGBLKHD"), lb_prev_lbp (64 bytes), 56 bytes of pad,
/// then 1022 entries of 64 bytes: dva (2 words), birth, prop, daddr, complevel, 2 words of pad.
/// `lbp_prop` and `le_prop` share the L2BLK_* bit fields: lsize 0..15 and psize 16..31 (in
/// 512-byte units, minus one), compress 32..38, prefetch 39, checksum 40..47, type 48..55,
/// protected 56, state 57..60.
public enum L2ARCLogBlock {
    /// `L2ARC_LOG_BLK_MAGIC`, "LOGBLKHD" read as a big-endian word.
    public static let magic: UInt64 = 0x4C4F_4742_4C4B_4844
    /// `sizeof (l2arc_log_blk_phys_t)`.
    public static let blockByteCount = 65536
    /// `L2ARC_LOG_BLK_MAX_ENTRIES`.
    public static let maximumEntries = 1022
    /// Offset of `lb_entries` in a log block.
    public static let entriesOffset = 128
    /// `sizeof (l2arc_log_ent_phys_t)`.
    public static let entryByteCount = 64
    /// `ZIO_COMPRESS_OFF`.
    public static let compressionOff: UInt64 = 2

    /// `L2BLK_GET_LSIZE` in bytes.
    public static func lsize(_ prop: UInt64) -> UInt64 { ((prop & 0xFFFF) + 1) << 9 }
    /// `L2BLK_GET_PSIZE` in bytes.
    public static func psize(_ prop: UInt64) -> UInt64 { (((prop >> 16) & 0xFFFF) + 1) << 9 }
    /// `L2BLK_GET_COMPRESS`.
    public static func compression(_ prop: UInt64) -> UInt64 { (prop >> 32) & 0x7F }

    /// `l2arc_range_check_overlap`: whether `check` lies in the ring range bottom → top.
    public static func overlaps(bottom: UInt64, top: UInt64, check: UInt64) -> Bool {
        if bottom < top { return bottom <= check && check <= top }
        if bottom > top { return check <= top || bottom <= check }
        return check == top
    }

    /// The parts of `l2arc_dev_t` that `l2arc_log_blkptr_valid` reads.
    public struct DeviceWindow: Hashable, Sendable {
        public var start: UInt64
        public var end: UInt64
        public var hand: UInt64
        public var evict: UInt64
        public var first: Bool

        public init(start: UInt64, end: UInt64, hand: UInt64, evict: UInt64, first: Bool) {
            self.start = start
            self.end = end
            self.hand = hand
            self.evict = evict
            self.first = first
        }

        /// `l2arc_log_blkptr_valid`: the block and its payload lie inside [start, end],
        /// 0 < asize ≤ 64 KiB, and nothing of it lies between hand and evict unless the device
        /// is "first".
        public func isValid(_ pointer: L2ARCLogBlockPointer) -> Bool {
            let asize = pointer.psize
            let blockEnd = pointer.daddr &+ asize &- 1
            let payloadStart = pointer.payloadStart
            let evicted =
                overlaps(bottom: payloadStart, top: blockEnd, check: hand)
                || overlaps(bottom: payloadStart, top: blockEnd, check: evict)
                || overlaps(bottom: hand, top: evict, check: payloadStart)
                || overlaps(bottom: hand, top: evict, check: blockEnd)
            return payloadStart >= start && blockEnd <= end && asize > 0 && asize <= UInt64(blockByteCount)
                && (!evicted || first)
        }
    }
}

/// `l2arc_log_blkptr_t`, in host order.
public struct L2ARCLogBlockPointer: Hashable, Sendable {
    public var daddr: UInt64
    public var payloadAsize: UInt64
    public var payloadStart: UInt64
    public var prop: UInt64
    public var checksum: [UInt64]

    /// From its 8 words (daddr, payload_asize, payload_start, prop, cksum[4]); missing words
    /// are taken as zero.
    public init(words: ArraySlice<UInt64>) {
        var w = Array(words.prefix(8))
        while w.count < 8 { w.append(0) }
        daddr = w[0]
        payloadAsize = w[1]
        payloadStart = w[2]
        prop = w[3]
        checksum = Array(w[4..<8])
    }

    public var lsize: UInt64 { L2ARCLogBlock.lsize(prop) }
    /// For log blocks, the aligned size on the device.
    public var psize: UInt64 { L2ARCLogBlock.psize(prop) }
    public var compression: UInt64 { L2ARCLogBlock.compression(prop) }
    public var checksumAlgorithm: UInt64 { (prop >> 40) & 0xFF }
}
