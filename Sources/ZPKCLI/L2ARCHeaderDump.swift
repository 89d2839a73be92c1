// The "L2ARC device header" and "L2ARC device log blocks" sections that `zdb -l` prints for a
// cache device.
//
// The corresponding OpenZFS functions are `dump_l2arc_header`, `dump_l2arc_log_blocks`,
// `dump_l2arc_log_blkptr` and `dump_l2arc_log_entries` (`cmd/zdb/zdb.c`, 2.1.11), with
// `l2arc_log_blkptr_valid` and `l2arc_range_check_overlap` (`module/zfs/arc.c`).
//
// The header is `l2arc_dev_hdr_phys_t` (`include/sys/arc_impl.h`), 512 bytes at device offset
// 4 MiB (`VDEV_LABEL_START_SIZE`), u64 words in the writer's order:
//
//   word  0 dh_magic "ZFSCACHE"   1 dh_version        2 dh_spa_guid      3 dh_vdev_guid
//   word  4 dh_log_entries        5 dh_evict          6 dh_flags         7 dh_start
//   word  8 dh_end                9..16 dh_start_lbps[0]  17..24 dh_start_lbps[1]
//   word 25 dh_lb_asize          26 dh_lb_count      27 dh_trim_action_time
//   word 28 dh_trim_state        29..58 pad          59..63 zio_eck_t
//
// Each `l2arc_log_blkptr_t` is daddr, payload_asize, payload_start, prop, cksum[4]. The log
// blocks (`l2arc_log_blk_phys_t`, 64 KiB logical) and the walk over them are in
// L2ARCLogBlocks.swift.
//
// zdb's exit status gains 1 when the header claims more log blocks (or more bytes of them)
// than the walk found valid.

import ZFSDevice
import ZFSFormat

enum L2ARCHeaderDump {
    /// `L2ARC_DEV_HDR_MAGIC`, "ZFSCACHE" read as a big-endian word.
    static let magic: UInt64 = 0x5A46_5343_4143_4845
    /// `VDEV_LABEL_START_SIZE`: where the header lives.
    static let headerOffset: UInt64 = 0x40_0000
    static let headerByteCount = 512

    struct Output {
        var text: String
        /// zdb's `error |= dump_l2arc_header(fd)`.
        var failed: Bool
    }

    /// The device header in host order (after byte-swapping a foreign one).
    struct Header {
        var words: [UInt64]

        var logEntries: UInt64 { words[4] }
        var evict: UInt64 { words[5] }
        var flags: UInt64 { words[6] }
        var start: UInt64 { words[7] }
        var end: UInt64 { words[8] }
        var startPointers: [L2ARCLogBlockPointer] {
            [L2ARCLogBlockPointer(words: words[9..<17]), L2ARCLogBlockPointer(words: words[17..<25])]
        }
        var logBlockAsize: UInt64 { words[25] }
        var logBlockCount: UInt64 { words[26] }
        /// `L2ARC_DEV_HDR_EVICT_FIRST`: the device has not wrapped around yet (`l2ad_first`).
        var evictFirst: Bool { flags & 1 != 0 }
    }

    /// Reads the header as `dump_l2arc_header` does; `nil` when it cannot be read or has no magic.
    static func readHeader(device: any BlockDevice) -> Header? {
        guard let bytes = try? device.read(count: headerByteCount, atAbsoluteOffset: headerOffset) else { return nil }
        var words = L2ARCLogBlocks.hostWords(bytes, count: headerByteCount / 8)
        if words[0] == magic.byteSwapped { words = words.map { $0.byteSwapped } }
        guard words[0] == magic else { return nil }
        return Header(words: words)
    }

    /// What `zdb -l` prints after the labels of a cache device, and whether it adds to the
    /// exit status.
    ///
    /// - Parameters:
    ///   - device: The open cache device.
    ///   - level: How many `l`s zdb was given: 2 adds each valid log block's pointer, 3 its
    ///     entries as well.
    static func render(device: any BlockDevice, level: Int = 1) -> Output {
        guard let header = readHeader(device: device) else {
            // Not an error, for backward compatibility (zdb's comment).
            return Output(text: "L2ARC device header not found\n\n", failed: false)
        }
        let words = header.words
        let bar = "------------------------------------\n"
        var out = bar + "L2ARC device header\n" + bar
        let fields: [(String, Int)] = [
            ("magic", 0), ("version", 1), ("pool_guid", 2), ("flags", 6), ("start_lbps[0]", 9),
            ("start_lbps[1]", 17), ("log_blk_ent", 4), ("start", 7), ("end", 8), ("evict", 5),
            ("lb_asize_refcount", 25), ("lb_count_refcount", 26), ("trim_action_time", 27),
        ]
        for (name, word) in fields { out += "    \(name): \(words[word])\n" }
        out += "    trim_state: \(words[28])\n\n"

        let walk = L2ARCLogBlocks.walk(device: device, header: header, level: level)
        out += walk.text
        // The header may count fewer blocks than the walk (a rebuild cut short by memory
        // pressure), never more.
        let failed = header.logBlockAsize > walk.validAsize || header.logBlockCount > walk.validCount
        return Output(text: out, failed: failed)
    }
}
