// The arithmetic of direct (O_DIRECT) I/O, kept pure so that it can be tested without a device.
//
// The kernel accepts an O_DIRECT transfer only when its file offset, its length and its memory
// address are multiples of the device's logical block size (`ioctl(BLKSSZGET)`, 512 or 4096).
// `FileBlockDevice` therefore moves every uncached transfer through an aligned bounce buffer that
// covers the caller's range rounded out to whole blocks. A read copies the caller's bytes out of
// the bounce buffer; a write that does not start and end on block boundaries first reads the
// partial blocks at its edges (read-modify-write), so that the bytes around the caller's range are
// written back unchanged.

/// A byte range rounded out to whole blocks of a given size, for one O_DIRECT transfer.
///
/// ```
///   alignedOffset          offset              offset+count        alignedEnd
///        │◄─ leadingBytes ─►│◄──── count ──────►│◄─ trailingBytes ─►│
///        ├──────── block ───┼──────┬────────────┼──────── block ────┤
/// ```
///
/// MMP slots (1 KiB or more, at offsets that are multiples of their size, with ashift ≥
/// log2(logical block size)) are always aligned, so MMP I/O never needs read-modify-write; the
/// general case is handled so that no caller can produce a torn neighbour by accident.
package struct DirectIOExtent: Hashable, Sendable, CustomStringConvertible {
    /// The block size everything is rounded to (a power of two).
    package let blockSize: Int
    /// The caller's first byte.
    package let offset: UInt64
    /// The caller's byte count.
    package let count: Int
    /// `offset` rounded down to a block boundary.
    package let alignedOffset: UInt64
    /// The length of the rounded-out range: a whole number of blocks.
    package let alignedCount: Int

    /// Rounds `count` bytes at `offset` out to whole blocks of `blockSize`.
    ///
    /// - Returns: `nil` when `blockSize` is not a positive power of two, `count` is negative, or
    ///   the rounded range does not fit in a 63-bit file offset.
    package init?(offset: UInt64, count: Int, blockSize: Int) {
        guard blockSize > 0, blockSize & (blockSize - 1) == 0, count >= 0 else { return nil }
        let size = UInt64(blockSize)
        let (end, overflow) = offset.addingReportingOverflow(UInt64(count))
        guard !overflow else { return nil }
        let alignedOffset = offset & ~(size - 1)
        let (roundedUp, roundOverflow) = end.addingReportingOverflow(size - 1)
        guard !roundOverflow else { return nil }
        let alignedEnd = roundedUp & ~(size - 1)
        guard alignedEnd <= UInt64(Int64.max) else { return nil }
        self.blockSize = blockSize
        self.offset = offset
        self.count = count
        self.alignedOffset = alignedOffset
        self.alignedCount = Int(alignedEnd - alignedOffset)
    }

    /// One past the last byte of the rounded-out range.
    package var alignedEnd: UInt64 { alignedOffset + UInt64(alignedCount) }

    /// How many bytes of the bounce buffer precede the caller's first byte.
    package var leadingBytes: Int { Int(offset - alignedOffset) }

    /// How many bytes of the bounce buffer follow the caller's last byte.
    package var trailingBytes: Int { alignedCount - leadingBytes - count }

    /// Whether the caller's range is already whole blocks (no bounce padding at either edge).
    package var isAligned: Bool { leadingBytes == 0 && trailingBytes == 0 }

    /// The blocks a write must read before it can write the rounded-out range without changing
    /// the bytes around the caller's range: the partial block at each edge, merged when both
    /// edges fall in one block; empty for an aligned write.
    package var readModifyWriteRanges: [Range<UInt64>] {
        guard count > 0 else { return [] }
        let size = UInt64(blockSize)
        var ranges: [Range<UInt64>] = []
        if leadingBytes > 0 {
            ranges.append(alignedOffset..<(alignedOffset + size))
        }
        if trailingBytes > 0 {
            let tail = (alignedEnd - size)..<alignedEnd
            if ranges.last != tail { ranges.append(tail) }
        }
        return ranges
    }

    package var description: String {
        "\(count) bytes at 0x\(String(offset, radix: 16)) → \(alignedCount) bytes at "
            + "0x\(String(alignedOffset, radix: 16)) (block \(blockSize))"
    }
}
