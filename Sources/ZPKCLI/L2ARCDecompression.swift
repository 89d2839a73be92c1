// What zdb's `zio_decompress_data(compress, abd, &this_lb, asize, sizeof (this_lb), NULL)`
// leaves in its log-block buffer, for every value of the 7-bit compression field.
//
// zdb ignores the return value, so a failed decompression still counts: the buffer holds the
// bytes read from disk, overwritten from offset 0 by whatever the decoder wrote before it gave
// up. The decoders are OpenZFS 2.1.11's (`module/zfs/zio_compress.c` table):
//
//   0 inherit, 1 on, 4 empty, ≥ 17     no decoder: EINVAL, the buffer is left as read
//   2 off                              not called (the walk skips decompression)
//   3 lzjb    `lzjb_decompress`        ZFSFormat.LZJB (leaves its partial output, as C does)
//   14 zle    `zle_decompress` (n 64)  ZFSFormat.ZLE
//   15 lz4    `lz4_decompress_zfs`     ZFSFormat.LZ4 (the same decoder, quirks included)
//   5...13 gzip, 16 zstd               not emulated: treated as a decoder that fails before
//                                      writing, which is what zlib and zstd do on any input
//                                      that is not a stream of theirs (a bad zlib header, a
//                                      zstd length or frame magic that does not fit)
//
// `lzjb_decompress` never looks at the source length: it keeps reading past the end of the
// source (into unrelated memory) until it has written the whole output. ZFSFormat.LZJB stops
// at the end of the source instead. The output bytes that matter to `zdb -l` and `-ll` (the first 72:
// magic and lb_prev_lbp) are always decoded from the first ~82 source bytes, and a log block
// is at least 512 bytes, so they are exact.

import ZFSFormat

enum L2ARCDecompression {
    static func decompress(algorithm: UInt64, source: [UInt8], into buffer: inout [UInt8]) {
        switch algorithm {
        case 3: try? LZJB.decompress(source, into: &buffer)
        case 14: try? ZLE.decompress(source, into: &buffer, literalLimit: ZLE.defaultLiteralLimit)
        case 15: _ = try? LZ4.decompressZFS(source, into: &buffer)
        default: break
        }
    }
}
