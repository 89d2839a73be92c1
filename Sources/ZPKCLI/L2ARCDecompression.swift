// What zdb's `zio_decompress_data(compress, abd, &this_lb, asize, sizeof (this_lb), NULL)`
// leaves in its log-block buffer, for every value of the 7-bit compression field.
//
// zdb ignores the return value, so a failed decompression still counts: the buffer holds the
// bytes read from disk, overwritten from offset 0 by whatever the decoder wrote before it gave
// up. The decoders are OpenZFS 2.1.11's (`module/zfs/zio_compress.c` table):
//
//   0 inherit, 1 on, 4 empty, ≥ 17     no decoder: EINVAL, the buffer is left as read
//   2 off                              not called (the walk skips decompression)
//   3 lzjb    `lzjb_decompress`        emulated here
//   14 zle    `zle_decompress` (n 64)  emulated here
//   15 lz4    `lz4_decompress_zfs`     ZFSFormat.LZ4 (the same decoder, quirks included)
//   5...13 gzip, 16 zstd               not emulated: treated as a decoder that fails before
//                                      writing, which is what zlib and zstd do on any input
//                                      that is not a stream of theirs (a bad zlib header, a
//                                      zstd length or frame magic that does not fit)
//
// `lzjb_decompress` never looks at the source length: it keeps reading past the end of the
// source (into unrelated memory) until it has written the whole output. We stop at the end
// of the source instead. The output bytes that matter to `zdb -l` and `-ll` (the first 72:
// magic and lb_prev_lbp) are always decoded from the first ~82 source bytes, and a log block
// is at least 512 bytes, so they are exact.

import ZFSFormat

enum L2ARCDecompression {
    static func decompress(algorithm: UInt64, source: [UInt8], into buffer: inout [UInt8]) {
        switch algorithm {
        case 3: lzjb(source, into: &buffer)
        case 14: zle(source, into: &buffer, literalLimit: 64)
        case 15: _ = try? LZ4.decompressZFS(source, into: &buffer)
        default: break
        }
    }

    /// `lzjb_decompress`, stopping where it would read past `source`.
    static func lzjb(_ source: [UInt8], into buffer: inout [UInt8]) {
        let matchBits = 6
        let matchMinimum = 3
        let offsetMask = (1 << (16 - matchBits)) - 1
        var src = 0
        var dst = 0
        var copyMap = 0
        var copyMask = 1 << 7
        while dst < buffer.count {
            copyMask <<= 1
            if copyMask == 1 << 8 {
                copyMask = 1
                guard src < source.count else { return }
                copyMap = Int(source[src])
                src += 1
            }
            if copyMap & copyMask != 0 {
                guard src + 1 < source.count else { return }
                var length = (Int(source[src]) >> (8 - matchBits)) + matchMinimum
                let offset = (Int(source[src]) << 8 | Int(source[src + 1])) & offsetMask
                src += 2
                var from = dst - offset
                guard from >= 0 else { return }
                while length > 0 && dst < buffer.count {
                    buffer[dst] = buffer[from]
                    dst += 1
                    from += 1
                    length -= 1
                }
            } else {
                guard src < source.count else { return }
                buffer[dst] = source[src]
                dst += 1
                src += 1
            }
        }
    }

    /// `zle_decompress` with `n` = `literalLimit`: a length byte ≤ n−1 is followed by that
    /// many + 1 literal bytes, a larger one stands for (byte + 1 − n) zeros.
    static func zle(_ source: [UInt8], into buffer: inout [UInt8], literalLimit: Int) {
        var src = 0
        var dst = 0
        while src < source.count && dst < buffer.count {
            var length = 1 + Int(source[src])
            src += 1
            if length <= literalLimit {
                guard src + length <= source.count, dst + length <= buffer.count else { return }
                buffer.replaceSubrange(dst..<(dst + length), with: source[src..<(src + length)])
                src += length
                dst += length
            } else {
                length -= literalLimit
                guard dst + length <= buffer.count else { return }
                buffer.replaceSubrange(dst..<(dst + length), with: repeatElement(0, count: length))
                dst += length
            }
        }
    }
}
