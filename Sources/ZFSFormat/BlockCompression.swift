import CZlib
import CZstd

/// The compression of a block (`enum zio_compress`, the 7-bit `COMPRESS` field of `blk_prop`),
/// and the decoders that undo it.
///
/// ```
/// 0 inherit  1 on  2 off  3 lzjb  4 empty  5...13 gzip-1...gzip-9  14 zle  15 lz4  16 zstd
/// ```
///
/// `inherit`, `on` and `empty` never appear in a block pointer OpenZFS writes; a pointer that
/// says so (or names a value past `zstd`) is damaged, and ``decompress(_:logicalByteCount:)``
/// throws rather than guessing.
///
/// The corresponding OpenZFS table is `zio_compress_table` (`module/zfs/zio_compress.c`).
public struct BlockCompression: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `ZIO_COMPRESS_OFF`: the block is stored as is.
    public static let off = BlockCompression(rawValue: 2)
    /// `ZIO_COMPRESS_LZJB`.
    public static let lzjb = BlockCompression(rawValue: 3)
    /// `ZIO_COMPRESS_ZLE`.
    public static let zle = BlockCompression(rawValue: 14)
    /// `ZIO_COMPRESS_LZ4`.
    public static let lz4 = BlockCompression(rawValue: 15)
    /// `ZIO_COMPRESS_ZSTD`.
    public static let zstd = BlockCompression(rawValue: 16)

    /// The name `zdb` prints.
    public var description: String {
        switch rawValue {
        case 0: "inherit"
        case 1: "on"
        case 2: "uncompressed"
        case 3: "lzjb"
        case 4: "empty"
        case 5...13: "gzip-\(rawValue - 4)"
        case 14: "zle"
        case 15: "lz4"
        case 16: "zstd"
        default: "compression \(rawValue)"
        }
    }

    /// Undoes this compression: `source` (the block's physical bytes) becomes exactly
    /// `logicalByteCount` bytes.
    ///
    /// - Throws: `FormatError` `.unsupportedEncoding` for a value that names no decoder,
    ///   `.invalidSize` when an uncompressed block is shorter than its logical size, and the
    ///   decoder's own error when the stream is damaged. Never traps, whatever the bytes.
    public func decompress(_ source: [UInt8], logicalByteCount: Int) throws(FormatError) -> [UInt8] {
        guard logicalByteCount >= 0 else {
            throw FormatError(.invalidSize, "a block cannot have \(logicalByteCount) logical bytes")
        }
        switch rawValue {
        case 2:
            guard source.count >= logicalByteCount else {
                throw FormatError(
                    .invalidSize, "an uncompressed block holds \(source.count) bytes, not its \(logicalByteCount) logical bytes")
            }
            return Array(source.prefix(logicalByteCount))
        case 3: return try LZJB.decompress(source, capacity: logicalByteCount)
        case 5...13: return try Gzip.decompress(source, capacity: logicalByteCount)
        case 14: return try ZLE.decompress(source, capacity: logicalByteCount)
        case 15:
            var output = [UInt8](repeating: 0, count: logicalByteCount)
            _ = try LZ4.decompressZFS(source, into: &output)
            return output
        case 16: return try ZFSZstd.decompress(source, capacity: logicalByteCount)
        default:
            throw FormatError(.unsupportedEncoding, "a block cannot be decompressed: its compression is \(self)")
        }
    }
}

/// gzip-1 … gzip-9 blocks: a zlib stream (RFC 1950, header and Adler-32 included), decoded by
/// the system's zlib.
///
/// The corresponding OpenZFS code is `gzip_decompress` (`module/zfs/gzip.c`), which calls
/// zlib's `uncompress` and fails unless the whole output is produced or the stream is damaged.
/// Like it, the output need not be filled exactly: a stream that decodes to fewer bytes leaves
/// the rest zero (OpenZFS leaves it as it was; a checksum-verified block never does this).
public enum Gzip {
    /// Decodes the zlib stream in `source` into `capacity` bytes.
    /// - Throws: `FormatError` `.invalidValue` naming zlib's verdict when the stream is damaged
    ///   or does not fit.
    public static func decompress(_ source: [UInt8], capacity: Int) throws(FormatError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: max(capacity, 0))
        var produced = uLongf(output.count)
        let status = output.withUnsafeMutableBufferPointer { out in
            source.withUnsafeBufferPointer { input in
                uncompress(out.baseAddress, &produced, input.baseAddress, uLong(input.count))
            }
        }
        guard status == Z_OK else {
            let reason =
                switch status {
                case Z_BUF_ERROR: "it does not fit \(capacity) bytes or is cut short"
                case Z_DATA_ERROR: "its data is damaged"
                case Z_MEM_ERROR: "zlib ran out of memory"
                default: "zlib returned \(status)"
                }
            throw FormatError(.invalidValue, "a gzip block does not decompress: \(reason)")
        }
        return output
    }
}

/// zstd blocks as OpenZFS writes them: an 8-byte header, then a "magicless" zstd frame.
///
/// ```
/// bytes 0-3  c_len, big-endian: the length of the frame that follows
/// bytes 4-7  big-endian word: level (bits 24-31, the zio_zstd_levels value) | version (0-23)
/// bytes 8-   a zstd frame without its 4-byte magic (ZSTD_f_zstd1_magicless), no checksum
/// ```
///
/// The corresponding OpenZFS code is `zfs_zstd_decompress_level` (`module/zstd/zfs_zstd.c`),
/// which rejects a level it does not know and a `c_len` that does not fit the block; so do we.
/// The frame is decoded by the system's libzstd.
public enum ZFSZstd {
    /// `sizeof (zfs_zstdhdr_t)`.
    public static let headerByteCount = 8

    /// Decodes an OpenZFS zstd block into `capacity` bytes.
    public static func decompress(_ source: [UInt8], capacity: Int) throws(FormatError) -> [UInt8] {
        guard source.count >= headerByteCount else {
            throw FormatError(.truncated, "a zstd block of \(source.count) bytes has no 8-byte header")
        }
        let frameLength = Int(source[0]) << 24 | Int(source[1]) << 16 | Int(source[2]) << 8 | Int(source[3])
        let level = source[4]
        // 1-19 and the zstd-fast levels (ZIO_ZSTD_LEVEL_FAST_* truncated to the 8-bit field).
        guard level != 0 && !(20...100).contains(level) else {
            throw FormatError(.invalidValue, "a zstd block's header names level \(level), which OpenZFS never writes", offset: 4)
        }
        guard frameLength <= source.count - headerByteCount else {
            throw FormatError(
                .invalidSize, "a zstd block's header says \(frameLength) bytes follow, but only \(source.count - headerByteCount) do",
                offset: 0)
        }
        guard let context = ZSTD_createDCtx() else {
            throw FormatError(.tooLarge, "libzstd could not allocate a decompression context")
        }
        defer { ZSTD_freeDCtx(context) }
        // ZSTD_d_format (ZSTD_d_experimentalParam1 = 1000) = ZSTD_f_zstd1_magicless (1).
        let formatParameter = ZSTD_dParameter(rawValue: 1000)
        guard ZSTD_isError(ZSTD_DCtx_setParameter(context, formatParameter, 1)) == 0 else {
            throw FormatError(.unsupportedEncoding, "this libzstd cannot read magicless frames")
        }
        var output = [UInt8](repeating: 0, count: max(capacity, 0))
        let result = output.withUnsafeMutableBytes { out in
            source.withUnsafeBytes { input in
                ZSTD_decompressDCtx(
                    context, out.baseAddress, out.count, input.baseAddress.map { $0 + headerByteCount }, frameLength)
            }
        }
        if ZSTD_isError(result) != 0 {
            let name = String(cString: ZSTD_getErrorName(result))
            throw FormatError(.invalidValue, "a zstd block does not decompress: \(name)", offset: headerByteCount)
        }
        return output
    }
}
