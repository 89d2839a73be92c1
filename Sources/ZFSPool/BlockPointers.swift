// Building and checking the `blkptr_t`s that point at our blocks (`spec/ondisk.md` §5.2):
// real DVAs (top-level id, offset from the allocatable start, allocated size), PSIZE = LSIZE,
// compression off, SHA-256 in `blk_cksum` as four big-endian words (`module/zfs/sha2_zfs.c`).

import Crypto
import ZFSFormat

/// One allocated extent on a top-level vdev, offsets relative to the allocatable start (4 MiB).
struct Extent: Hashable, Sendable, Comparable {
    var vdev: UInt64
    var offset: UInt64
    var length: UInt64

    var end: UInt64 { offset + length }

    static func < (lhs: Extent, rhs: Extent) -> Bool {
        (lhs.vdev, lhs.offset) < (rhs.vdev, rhs.offset)
    }
}

enum BlockPointers {
    /// `ZIO_COMPRESS_OFF`.
    static let compressionOff: UInt64 = 2
    /// `ZIO_CHECKSUM_SHA256`.
    static let checksumSHA256: UInt64 = 8
    /// `DMU_OT_OBJSET`: the type the rootbp of a pool carries.
    static let typeObjset: UInt64 = 11
    /// `DMU_OT_PLAIN_FILE_CONTENTS`: user object data.
    static let typePlainFile: UInt64 = 19
    /// `DMU_OT_OBJECT_DIRECTORY`: our user-object directory block.
    static let typeDirectory: UInt64 = 1
    /// `SPA_MINBLOCKSIZE`.
    static let sectorSize: UInt64 = 512
    /// `SPA_MAXBLOCKSIZE`: 16 MiB.
    static let maximumBlockByteCount = 16 << 20

    static func physicalByteCount(forPayload count: Int) -> UInt64 {
        let bytes = UInt64(max(count, 1))
        return (bytes + sectorSize - 1) / sectorSize * sectorSize
    }

    /// SHA-256 of `bytes` as `blk_cksum` words: the digest read as four big-endian u64.
    static func sha256(_ bytes: UnsafeRawBufferPointer) -> BlockPointer.Checksum {
        var hasher = SHA256()
        hasher.update(bufferPointer: bytes)
        let digest = hasher.finalize()
        var words = [UInt64](repeating: 0, count: 4)
        digest.withUnsafeBytes { raw in
            for i in 0..<4 {
                var word: UInt64 = 0
                for j in 0..<8 { word = word << 8 | UInt64(raw[i * 8 + j]) }
                words[i] = word
            }
        }
        return BlockPointer.Checksum(word0: words[0], word1: words[1], word2: words[2], word3: words[3])
    }

    static func sha256(_ bytes: [UInt8]) -> BlockPointer.Checksum {
        bytes.withUnsafeBytes { sha256($0) }
    }

    static func dva(_ extent: Extent) -> DVA {
        DVA(word0: (extent.length >> 9) & 0xFF_FFFF | (extent.vdev & 0xFF_FFFF) << 32, word1: extent.offset >> 9)
    }

    static func extent(_ dva: DVA) -> Extent {
        Extent(vdev: dva.vdevID, offset: dva.byteOffset, length: dva.allocatedByteCount)
    }

    /// A level-0 pointer to `physicalByteCount` bytes stored at `extents` (up to 3 copies).
    static func make(
        extents: [Extent], physicalByteCount: UInt64, type: UInt64, birth: TXG, checksum: BlockPointer.Checksum
    ) -> BlockPointer {
        var bp = BlockPointer()
        let dvas = extents.map(dva)
        if dvas.count > 0 { bp.dva0 = dvas[0] }
        if dvas.count > 1 { bp.dva1 = dvas[1] }
        if dvas.count > 2 { bp.dva2 = dvas[2] }
        let sizeField = (physicalByteCount >> 9) - 1
        bp.properties = BlockPointer.Properties(
            rawValue: sizeField | sizeField << 16 | compressionOff << 32 | checksumSHA256 << 40 | type << 48
                | (Endianness.host == .little ? 1 << 63 : 0))
        bp.birthTXG = birth
        bp.fillCount = 1
        bp.checksum = checksum
        return bp
    }

    /// The extents a pointer's DVAs name (1 to 3).
    static func extents(of bp: BlockPointer) -> [Extent] {
        bp.dvas.filter { !$0.isEmpty }.map(extent)
    }

    /// The pointer as 16 words, for storing in an nvlist.
    static func words(_ bp: BlockPointer) -> NVPair.Value { .uint64Array(bp.words) }

    static func decode(_ value: [UInt64]?) -> BlockPointer? {
        guard let value, let bp = try? BlockPointer(decodingWords: value) else { return nil }
        return bp
    }
}
