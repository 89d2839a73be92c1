import Crypto

/// The checksum algorithm of a block (`enum zio_checksum`, the `CHECKSUM` field of `blk_prop`)
/// and the verification of a block's bytes against its pointer's `blk_cksum`.
///
/// ```
/// 0 inherit  1 on  2 off  3 label  4 gang_header  5 zilog  6 fletcher2  7 fletcher4
/// 8 sha256  9 zilog2  10 noparity  11 sha512  12 skein  13 edonr
/// ```
///
/// ZPoolKit computes fletcher2, fletcher4 (and noparity, which is fletcher4) and sha256. For
/// every other value ``verify(_:byteOrder:expected:)`` answers ``Verdict/cannotVerify(_:)``:
/// the caller says so and never takes unverified bytes for verified ones.
///
/// The corresponding OpenZFS table is `zio_checksum_table` (`module/zfs/zio_checksum.c`).
public struct BlockChecksum: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `ZIO_CHECKSUM_OFF`: nothing to verify.
    public static let off = BlockChecksum(rawValue: 2)
    /// `ZIO_CHECKSUM_GANG_HEADER`: the embedded checksum of a gang header.
    public static let gangHeader = BlockChecksum(rawValue: 4)
    /// `ZIO_CHECKSUM_FLETCHER_2`.
    public static let fletcher2 = BlockChecksum(rawValue: 6)
    /// `ZIO_CHECKSUM_FLETCHER_4`.
    public static let fletcher4 = BlockChecksum(rawValue: 7)
    /// `ZIO_CHECKSUM_SHA256`.
    public static let sha256 = BlockChecksum(rawValue: 8)
    /// `ZIO_CHECKSUM_NOPARITY`: fletcher4 written without raidz parity.
    public static let noparity = BlockChecksum(rawValue: 10)

    /// The name zdb prints.
    public var description: String {
        let names = [
            "inherit", "on", "off", "label", "gang_header", "zilog", "fletcher2", "fletcher4", "SHA256", "zilog2",
            "noparity", "SHA512", "skein", "edonr",
        ]
        return Int(rawValue) < names.count ? names[Int(rawValue)] : "checksum \(rawValue)"
    }

    /// The outcome of checking a block against its pointer.
    public enum Verdict: Hashable, Sendable {
        /// The computed checksum equals the pointer's.
        case valid
        /// The pointer says `off`: there is nothing to check.
        case notChecksummed
        /// The computed checksum differs.
        case mismatch(computed: BlockPointer.Checksum)
        /// ZPoolKit does not implement this algorithm (or the value is not one).
        case cannotVerify(BlockChecksum)
    }

    /// Computes this checksum over `bytes`, or `nil` when it is not one ZPoolKit computes.
    ///
    /// - Parameter byteOrder: the byte order of the block (`BP_GET_BYTEORDER`): the fletcher
    ///   sums read their words in it (OpenZFS's native or byteswap form). SHA-256 reads bytes.
    public func compute(_ bytes: UnsafeRawBufferPointer, byteOrder: Endianness) -> BlockPointer.Checksum? {
        switch rawValue {
        case 6: return Fletcher2.checksum(bytes, wordOrder: byteOrder)
        case 7, 10:
            let sum = Fletcher4.checksum(bytes, wordOrder: byteOrder)
            return BlockPointer.Checksum(word0: sum.a, word1: sum.b, word2: sum.c, word3: sum.d)
        case 8:
            var hasher = SHA256()
            hasher.update(bufferPointer: bytes)
            let digest = hasher.finalize()
            return digest.withUnsafeBytes { d in
                func word(_ i: Int) -> UInt64 { UInt64(bigEndian: d.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) }
                return BlockPointer.Checksum(word0: word(0), word1: word(1), word2: word(2), word3: word(3))
            }
        default: return nil
        }
    }

    /// Checks `bytes` (the block's physical bytes) against `expected` (`blk_cksum`).
    public func verify(_ bytes: [UInt8], byteOrder: Endianness, expected: BlockPointer.Checksum) -> Verdict {
        if self == .off { return .notChecksummed }
        guard let computed = bytes.withUnsafeBytes({ compute($0, byteOrder: byteOrder) }) else {
            return .cannotVerify(self)
        }
        return computed == expected ? .valid : .mismatch(computed: computed)
    }
}

/// Fletcher-2: two pairs of 64-bit running sums over 128-bit steps.
///
/// ```
/// for each pair of 64-bit words (w0, w1):  a0 += w0;  a1 += w1;  b0 += a0;  b1 += a1
/// checksum = (a0, a1, b0, b1)
/// ```
/// A trailing part of less than 16 bytes is ignored (OpenZFS only checksums whole sectors).
///
/// The corresponding OpenZFS code is `fletcher_2_native` / `fletcher_2_byteswap`
/// (`module/zcommon/zfs_fletcher.c`).
public enum Fletcher2 {
    public static func checksum(_ bytes: UnsafeRawBufferPointer, wordOrder: Endianness) -> BlockPointer.Checksum {
        var a0: UInt64 = 0
        var a1: UInt64 = 0
        var b0: UInt64 = 0
        var b1: UInt64 = 0
        let big = wordOrder == .big
        var offset = 0
        while offset + 16 <= bytes.count {
            let r0 = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            let r1 = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)
            a0 &+= big ? UInt64(bigEndian: r0) : UInt64(littleEndian: r0)
            a1 &+= big ? UInt64(bigEndian: r1) : UInt64(littleEndian: r1)
            b0 &+= a0
            b1 &+= a1
            offset += 16
        }
        return BlockPointer.Checksum(word0: a0, word1: a1, word2: b0, word3: b1)
    }

    public static func checksum(_ bytes: [UInt8], wordOrder: Endianness) -> BlockPointer.Checksum {
        bytes.withUnsafeBytes { checksum($0, wordOrder: wordOrder) }
    }
}
