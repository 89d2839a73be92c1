/// LZJB, the original ZFS compressor (`compression=lzjb`, and metadata before the lz4 feature).
///
/// A stream is groups of up to eight items led by a copy-map byte, least significant bit
/// first: a clear bit is one literal byte, a set bit a two-byte match
/// `llllll oo oooooooo` = length − 3 (6 bits) and a distance back into the output (10 bits).
/// The stream has no end marker: the decoder stops when the output is full.
///
/// The corresponding OpenZFS code is `lzjb_decompress` (`module/zfs/lzjb.c`), which never
/// checks the source length and trusts every distance. Here a stream that ends early, or a
/// match that reaches before the start of the output, throws — after writing every byte
/// decoded up to that point, as the C decoder leaves its buffer (zdb's L2ARC walk relies on
/// that).
public enum LZJB {
    static let matchBits = 6
    static let matchMinimum = 3
    static let offsetMask = (1 << (16 - matchBits)) - 1

    /// Decodes `source` into `destination`, filling it completely.
    ///
    /// - Throws: `FormatError` `.truncated` when `source` ends before `destination` is full,
    ///   `.invalidValue` for a match distance that points before the output; `destination`
    ///   then holds what was decoded so far, the rest unchanged.
    /// - Complexity: O(`destination.count`).
    public static func decompress(_ source: [UInt8], into destination: inout [UInt8]) throws(FormatError) {
        var src = 0
        var dst = 0
        var copyMap = 0
        var copyMask = 1 << 7
        let end = destination.count
        while dst < end {
            copyMask <<= 1
            if copyMask == 1 << 8 {
                copyMask = 1
                guard src < source.count else { throw truncated(src, dst) }
                copyMap = Int(source[src])
                src += 1
            }
            if copyMap & copyMask != 0 {
                guard src + 1 < source.count else { throw truncated(src, dst) }
                var length = (Int(source[src]) >> (8 - matchBits)) + matchMinimum
                let distance = (Int(source[src]) << 8 | Int(source[src + 1])) & offsetMask
                src += 2
                var from = dst - distance
                guard from >= 0 else {
                    throw FormatError(
                        .invalidValue, "an LZJB match reaches \(distance) bytes back from output byte \(dst)", offset: src - 2)
                }
                while length > 0 && dst < end {
                    destination[dst] = destination[from]
                    dst += 1
                    from += 1
                    length -= 1
                }
            } else {
                guard src < source.count else { throw truncated(src, dst) }
                destination[dst] = source[src]
                dst += 1
                src += 1
            }
        }
    }

    /// Decodes `source` into a new buffer of `capacity` bytes (the block's logical size).
    public static func decompress(_ source: [UInt8], capacity: Int) throws(FormatError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: max(0, capacity))
        try decompress(source, into: &output)
        return output
    }

    private static func truncated(_ src: Int, _ dst: Int) -> FormatError {
        FormatError(.truncated, "the LZJB stream ends after producing \(dst) bytes", offset: src)
    }
}

/// ZLE, zero-length encoding (`compression=zle`): runs of zeros and literal runs.
///
/// Each run starts with a length byte `b`: `b < n` is followed by `b + 1` literal bytes,
/// `b ≥ n` stands for `b + 1 − n` zeros. `n` is the compression level, 64 for every block
/// OpenZFS writes (`zio_compress_table`).
///
/// The corresponding OpenZFS code is `zle_decompress` (`module/zfs/zle.c`), which returns
/// an error when a run does not fit the source or the output; it does too, after writing
/// what was decoded before the run that did not fit.
public enum ZLE {
    /// The `n` of every ZLE block OpenZFS writes.
    public static let defaultLiteralLimit = 64

    /// Decodes `source` into `destination`; the output must fill `destination`.
    ///
    /// - Throws: `FormatError` `.truncated` when a literal run goes past `source`, or the
    ///   stream ends before `destination` is full; `.invalidSize` when a run overflows
    ///   `destination`.
    public static func decompress(
        _ source: [UInt8], into destination: inout [UInt8], literalLimit: Int = defaultLiteralLimit
    ) throws(FormatError) {
        var src = 0
        var dst = 0
        while src < source.count && dst < destination.count {
            var length = 1 + Int(source[src])
            src += 1
            if length <= literalLimit {
                guard src + length <= source.count else {
                    throw FormatError(.truncated, "a ZLE literal run of \(length) bytes goes past the stream", offset: src - 1)
                }
                guard dst + length <= destination.count else {
                    throw FormatError(.invalidSize, "a ZLE literal run overflows the \(destination.count)-byte output", offset: src - 1)
                }
                destination.replaceSubrange(dst..<(dst + length), with: source[src..<(src + length)])
                src += length
                dst += length
            } else {
                length -= literalLimit
                guard dst + length <= destination.count else {
                    throw FormatError(.invalidSize, "a ZLE zero run overflows the \(destination.count)-byte output", offset: src - 1)
                }
                for i in dst..<(dst + length) { destination[i] = 0 }
                dst += length
            }
        }
        guard dst == destination.count else {
            throw FormatError(.truncated, "the ZLE stream ends after producing \(dst) of \(destination.count) bytes", offset: src)
        }
    }

    /// Decodes `source` into a new buffer of `capacity` bytes.
    public static func decompress(
        _ source: [UInt8], capacity: Int, literalLimit: Int = defaultLiteralLimit
    ) throws(FormatError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: max(0, capacity))
        try decompress(source, into: &output, literalLimit: literalLimit)
        return output
    }
}
