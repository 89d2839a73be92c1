// The walk over a cache device's persistent-L2ARC log blocks, as `zdb -l` does it.
//
// The corresponding OpenZFS function is `dump_l2arc_log_blocks` (`cmd/zdb/zdb.c`, 2.1.11),
// which emulates `l2arc_rebuild` (`module/zfs/arc.c`). Reproduced step by step:
//
//   1. The walk starts from the header's `dh_start_lbps[0]` (the newest block) and
//      `dh_start_lbps[1]` (the one before it); a zero `lbp_daddr` in [0] means no log blocks.
//      The device "hand" is fixed at `lbps[0].daddr + psize(lbps[0])`; "first" is the
//      header's EVICT_FIRST flag.
//   2. Each turn: stop silently unless `l2arc_log_blkptr_valid` (block and payload inside
//      [dh_start, dh_end], 0 < asize ≤ 64 KiB, nothing between hand and evict unless first).
//   3. Read asize bytes at daddr ("Error while reading next log block" and stop on a short
//      read) into the one 64 KiB block buffer zdb reuses for every turn.
//   4. Fletcher-4 of those bytes in *host* word order (`fletcher_4_native_varsize`, whatever
//      the checksum field of `lbp_prop` says) must equal `lbp_cksum`, else "Invalid cksum",
//      the pointer, and stop; this is the only "invalid cksum" zdb ever counts.
//   5. Unless the compression field is "off" (2), decompress the bytes into the buffer with
//      the capacity of a whole block; zdb ignores a decompression failure and uses whatever
//      the decoder left (L2ARCDecompression.swift).
//   6. A byte-swapped magic swaps the whole buffer as u64 words; any other magic prints
//      "Invalid log block magic" and stops.
//   7. Count the block and its asize; with -ll print it, with -lll its entries.
//   8. Stop if lbps[1]'s payload start lies in [lbps[0]'s payload start, evict] (in the ring
//      sense) and the device is not "first"; else lbps[0] = lbps[1], lbps[1] = the block's
//      `lb_prev_lbp`, and go on.
//
// Deliberate difference: a chain that leads back to a pair of pointers already visited makes
// zdb loop forever (the device cannot change under it, so every later turn repeats). We stop
// there, print "Log block chain loops back on itself; zdb never stops walking it", then the
// counts so far.
//
// Layouts (`include/sys/arc_impl.h`): `l2arc_log_blk_phys_t` is lb_magic ("LOGBLKHD"),
// lb_prev_lbp (64 bytes), 56 bytes of pad, then 1022 entries of 64 bytes: dva (2 words),
// birth, prop, daddr, complevel, 2 words of pad. `lbp_prop` and `le_prop` share the L2BLK_*
// bit fields: lsize 0..15 and psize 16..31 (in 512-byte units, minus one), compress 32..38,
// prefetch 39, checksum 40..47, type 48..55, protected 56, state 57..60.

import ZFSDevice
import ZFSFormat

// The layouts, constants and `l2arc_log_blkptr_valid` live in ZFSFormat (L2ARCLogBlock.swift);
// this file keeps the walk and zdb's text.
enum L2ARCLogBlocks {
    static let magic = L2ARCLogBlock.magic
    static let blockByteCount = L2ARCLogBlock.blockByteCount
    static let maximumEntries = L2ARCLogBlock.maximumEntries
    static let entriesOffset = L2ARCLogBlock.entriesOffset
    static let entryByteCount = L2ARCLogBlock.entryByteCount
    static let compressionOff = L2ARCLogBlock.compressionOff
    typealias DeviceWindow = L2ARCLogBlock.DeviceWindow

    static func lsize(_ prop: UInt64) -> UInt64 { L2ARCLogBlock.lsize(prop) }
    static func psize(_ prop: UInt64) -> UInt64 { L2ARCLogBlock.psize(prop) }
    static func compression(_ prop: UInt64) -> UInt64 { L2ARCLogBlock.compression(prop) }
    static func overlaps(bottom: UInt64, top: UInt64, check: UInt64) -> Bool {
        L2ARCLogBlock.overlaps(bottom: bottom, top: top, check: check)
    }

    /// The first `count` u64 words of `bytes` as this machine reads them.
    static func hostWords(_ bytes: [UInt8], count: Int) -> [UInt64] {
        bytes.withUnsafeBytes { raw in
            (0..<min(count, raw.count / 8)).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) }
        }
    }

    struct Walk {
        var text: String
        /// `rebuild.dh_lb_count`: blocks with a good checksum and magic.
        var validCount: UInt64
        /// `rebuild.dh_lb_asize`.
        var validAsize: UInt64
        /// Blocks whose checksum failed (zdb stops at the first, so 0 or 1).
        var invalidCount: Int
    }

    /// `dump_l2arc_log_blocks` at `-l` (`level` 1), `-ll` (2) or `-lll` (3).
    static func walk(device: any BlockDevice, header: L2ARCHeaderDump.Header, level: Int) -> Walk {
        let bar = "------------------------------------\n"
        var out = bar + "L2ARC device log blocks\n" + bar
        var pointers = header.startPointers
        guard pointers[0].daddr != 0 else {
            out += "No log blocks to read\n\n"
            return Walk(text: out, validCount: 0, validAsize: 0, invalidCount: 0)
        }
        let window = DeviceWindow(
            start: header.start, end: header.end, hand: pointers[0].daddr &+ pointers[0].psize,
            evict: header.evict, first: header.evictFirst)
        var count: UInt64 = 0
        var asizeTotal: UInt64 = 0
        var failed = 0
        // zdb's `this_lb`: one buffer for every turn; bytes a turn does not write keep the
        // previous turn's (they never reach the magic or lb_prev_lbp, which are fully rewritten).
        var block = [UInt8](repeating: 0, count: blockByteCount)
        var visited: Set<[L2ARCLogBlockPointer]> = []

        while true {
            guard visited.insert(pointers).inserted else {
                out += "Log block chain loops back on itself; zdb never stops walking it\n\n"
                break
            }
            let current = pointers[0]
            guard window.isValid(current) else { break }
            let asize = Int(current.psize)
            guard let bytes = try? device.read(count: asize, atAbsoluteOffset: current.daddr) else {
                out += "Error while reading next log block\n\n"
                break
            }
            block.replaceSubrange(0..<asize, with: bytes)

            if Fletcher4.checksum(bytes, wordOrder: .host).array != current.checksum {
                failed += 1
                out += "Invalid cksum\n"
                out += pointerText(current)
                break
            }
            if current.compression != compressionOff {
                L2ARCDecompression.decompress(algorithm: current.compression, source: bytes, into: &block)
            }
            var words = hostWords(Array(block[0..<72]), count: 9)
            if words[0] == magic.byteSwapped {
                swapWords(&block)
                words = words.map { $0.byteSwapped }
            }
            guard words[0] == magic else {
                out += "Invalid log block magic\n\n"
                break
            }

            count &+= 1
            asizeTotal &+= UInt64(asize)
            if level > 1 {
                out += "lb[\(padded(count, 4))]\tmagic: \(words[0])\n"
                out += pointerText(current)
            }
            if level > 2 {
                out += entriesText(block, entries: header.logEntries, blockNumber: count)
            }

            if overlaps(bottom: pointers[1].payloadStart, top: current.payloadStart, check: header.evict)
                && !header.evictFirst
            {
                break
            }
            pointers = [pointers[1], L2ARCLogBlockPointer(words: words[1..<9])]
        }

        out += "log_blk_count:\t \(count) with valid cksum\n"
        out += "\t\t \(failed) with invalid cksum\n"
        out += "log_blk_asize:\t \(asizeTotal)\n\n"
        return Walk(text: out, validCount: count, validAsize: asizeTotal, invalidCount: failed)
    }

    /// `byteswap_uint64_array` over the whole buffer.
    static func swapWords(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { raw in
            for index in 0..<(raw.count / 8) {
                let word = raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)
                raw.storeBytes(of: word.byteSwapped, toByteOffset: index * 8, as: UInt64.self)
            }
        }
    }

    /// `dump_l2arc_log_blkptr`.
    static func pointerText(_ pointer: L2ARCLogBlockPointer) -> String {
        "|\t\tdaddr: \(pointer.daddr)\n"
            + "|\t\tpayload_asize: \(pointer.payloadAsize)\n"
            + "|\t\tpayload_start: \(pointer.payloadStart)\n"
            + "|\t\tlsize: \(pointer.lsize)\n"
            + "|\t\tasize: \(pointer.psize)\n"
            + "|\t\tcompralgo: \(pointer.compression)\n"
            + "|\t\tcksumalgo: \(pointer.checksumAlgorithm)\n"
            + "|\n\n"
    }

    /// `dump_l2arc_log_entries`. zdb prints `dh_log_entries` entries even past the 1022 a block
    /// holds (reading beyond it); we stop at 1022.
    static func entriesText(_ block: [UInt8], entries: UInt64, blockNumber: UInt64) -> String {
        var out = ""
        let shown = Int(min(entries, UInt64(maximumEntries)))
        block.withUnsafeBytes { raw in
            for index in 0..<shown {
                let base = entriesOffset + index * entryByteCount
                func word(_ n: Int) -> UInt64 { raw.loadUnaligned(fromByteOffset: base + n * 8, as: UInt64.self) }
                let dva0 = word(0)
                let dva1 = word(1)
                let prop = word(3)
                out += "lb[\(padded(blockNumber, 4))]\tle[\(padded(UInt64(index + 1), 4))]\t"
                out += "DVA asize: \((dva0 & 0xFF_FFFF) << 9), vdev: \((dva0 >> 32) & 0xFF_FFFF), "
                out += "offset: \((dva1 & ~(UInt64(1) << 63)) << 9)\n"
                let fields: [(String, UInt64)] = [
                    ("birth", word(2)), ("lsize", lsize(prop)), ("psize", psize(prop)),
                    ("compr", compression(prop)), ("complevel", word(5)), ("type", (prop >> 48) & 0xFF),
                    ("protected", (prop >> 56) & 1), ("prefetch", (prop >> 39) & 1), ("address", word(4)),
                    ("ARC state", (prop >> 57) & 0xF),
                ]
                for (name, value) in fields { out += "|\t\t\t\t\(name): \(value)\n" }
                out += "|\n"
            }
        }
        return out + "\n"
    }

    /// printf's `%4llu`: right-aligned in `width` columns.
    static func padded(_ value: UInt64, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: " ", count: max(0, width - digits.count)) + digits
    }
}
