/// LZ4 as OpenZFS stores it: a 4-byte big-endian length, then one raw LZ4 block.
///
/// ```
/// +----------------+-------------------------------------------+--------------------+
/// | bufsiz (BE u32)| LZ4 block: bufsiz bytes of sequences      | zero padding       |
/// +----------------+-------------------------------------------+--------------------+
///  0               4                                  4 + bufsiz           psize/asize
/// ```
///
/// A block is a run of *sequences*; each is a token byte (high nibble: literal count, low
/// nibble: match length − 4; a nibble of 15 continues in following bytes, each added, until
/// one is not 255), the literals, a little-endian 16-bit back-reference offset, and the match
/// length continuation. The last sequence has literals only.
///
/// The decoder reproduces OpenZFS's own (`LZ4_uncompress_unknownOutputSize` in
/// `module/zfs/lz4.c`, the 64-bit little-endian build), not just the format: it copies in
/// 8-byte strides and may write up to 7 bytes past the end of a sequence (later sequences
/// overwrite them), and it stops at the same malformed inputs. This matters to callers that,
/// like zdb, decompress into a buffer that already holds data and use that buffer even when
/// decompression fails: the bytes the decoder did not reach keep their old values, and the
/// ones it did reach are exactly what OpenZFS leaves. The decoder never reads outside the
/// source nor writes outside the destination, and never traps.
///
/// The compressor is a plain greedy one: its output is valid LZ4, decodes with OpenZFS and
/// any other LZ4 decoder, but is not byte-identical to what OpenZFS's compressor emits.
public enum LZ4 {
    /// `sizeof (bufsiz)`: the big-endian length prefix OpenZFS puts before the block.
    public static let headerByteCount = 4

    // Decoder constants of lz4.c (COPYLENGTH, MINMATCH, the 64-bit STEPSIZE).
    static let copyLength = 8
    static let minimumMatch = 4
    static let stepSize = 8
    // Distance adjustments for overlapping copies with offsets 0...7 (dec32table, dec64table).
    static let shortOffsetAdjust: [Int] = [0, 3, 2, 3, 0, 0, 0, 0]
    static let shortOffsetAdjust64: [Int] = [0, 0, 0, -1, 0, 1, 2, 3]

    // MARK: - ZFS framing

    /// Decompresses an OpenZFS LZ4 buffer (`lz4_decompress_zfs`) into `destination`.
    ///
    /// The whole of `destination` is the output capacity (`d_len`); bytes the decoder does
    /// not write keep their values.
    ///
    /// - Parameters:
    ///   - source: The stored bytes (`s_len` of them): the length prefix, the block, padding.
    ///   - destination: The output buffer.
    /// - Returns: The number of bytes the block decodes to.
    /// - Throws: `FormatError` `.truncated` when `source` is shorter than the length prefix;
    ///   `.invalidSize` when the prefix says more than `source` holds (nothing is written);
    ///   `.invalidValue` for a malformed block, with `destination` left as OpenZFS leaves it.
    public static func decompressZFS(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer
    ) throws(FormatError) -> Int {
        guard source.count >= headerByteCount else {
            throw FormatError(
                .truncated, "an OpenZFS LZ4 buffer starts with a 4-byte length, but has only \(source.count) bytes",
                offset: 0)
        }
        let length = UInt64(source[0]) << 24 | UInt64(source[1]) << 16 | UInt64(source[2]) << 8 | UInt64(source[3])
        guard length + UInt64(headerByteCount) <= UInt64(source.count) else {
            throw FormatError(
                .invalidSize,
                "the LZ4 length prefix says \(length) compressed bytes, but only "
                    + "\(source.count - headerByteCount) follow it",
                offset: 0)
        }
        let block = UnsafeRawBufferPointer(rebasing: source[headerByteCount..<(headerByteCount + Int(length))])
        do {
            return try decompressBlock(block, into: destination)
        } catch {
            throw FormatError(error.code, error.message, offset: error.offset.map { $0 + headerByteCount })
        }
    }

    /// Decompresses an OpenZFS LZ4 buffer into an array; same as the buffer-pointer overload.
    ///
    /// `destination.count` is the output capacity; on a throw, `destination` holds what
    /// OpenZFS's decoder leaves.
    public static func decompressZFS(_ source: [UInt8], into destination: inout [UInt8]) throws(FormatError) -> Int {
        try source.withUnsafeBytes { input in
            destination.withUnsafeMutableBytes { output in
                Result { () throws(FormatError) in try decompressZFS(input, into: output) }
            }
        }.get()
    }

    /// Decompresses an OpenZFS LZ4 buffer of `source` into a new array of the decoded bytes.
    ///
    /// - Parameters:
    ///   - source: The stored bytes.
    ///   - capacity: The largest output accepted (OpenZFS passes the logical size).
    /// - Returns: Exactly the decoded bytes.
    /// - Throws: `FormatError` as the buffer-pointer overload does, and `.invalidSize` for a
    ///   negative capacity.
    public static func decompressZFS(_ source: [UInt8], capacity: Int) throws(FormatError) -> [UInt8] {
        guard capacity >= 0 else {
            throw FormatError(.invalidSize, "an LZ4 output capacity cannot be negative (\(capacity))")
        }
        var output = [UInt8](repeating: 0, count: capacity)
        let count = try decompressZFS(source, into: &output)
        return Array(output.prefix(count))
    }

    /// Compresses `source` and frames it as OpenZFS does (`lz4_compress_zfs`).
    ///
    /// - Parameters:
    ///   - source: The data.
    ///   - capacity: The most bytes the framed result may take (OpenZFS asks for 12.5% savings).
    /// - Returns: The length prefix and block, or `nil` when they would not fit in `capacity`
    ///   (OpenZFS then stores the data uncompressed).
    public static func compressZFS(_ source: [UInt8], capacity: Int) -> [UInt8]? {
        let block = compressBlock(source)
        guard block.count <= Int(UInt32.max), headerByteCount + block.count <= capacity else { return nil }
        let length = UInt32(block.count)
        return [UInt8(length >> 24), UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8),
                UInt8(truncatingIfNeeded: length)] + block
    }

    // MARK: - Raw blocks

    /// Decodes one raw LZ4 block into `destination` (`LZ4_uncompress_unknownOutputSize`).
    ///
    /// - Parameters:
    ///   - source: The block (`isize` bytes), nothing before or after it.
    ///   - destination: The output buffer (`maxOutputSize` bytes); see the type's discussion
    ///     for what happens to bytes the decoder does or does not reach.
    /// - Returns: The decoded length.
    /// - Throws: `FormatError` `.invalidValue` where OpenZFS's decoder returns an error: a
    ///   literal run or match that would end past the output, a literal run that does not end
    ///   the input where it must, a back-reference before the start of the output, a block
    ///   whose last sequence fills the output exactly with a match. `offset` is the input
    ///   position at which decoding stopped.
    public static func decompressBlock(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer
    ) throws(FormatError) -> Int {
        let inputEnd = source.count
        let outputEnd = destination.count
        var ip = 0
        var op = 0

        func fail(_ reason: String, _ at: Int) -> FormatError {
            FormatError(.invalidValue, "malformed LZ4 block: \(reason)", offset: at)
        }
        // 8-byte and 4-byte moves within the output, load before store as lz4.c's A64/A32 do.
        func move(from: Int, to: Int, count: Int) {
            if count == 8 {
                let word = destination.loadUnaligned(fromByteOffset: from, as: UInt64.self)
                destination.storeBytes(of: word, toByteOffset: to, as: UInt64.self)
            } else {
                let word = destination.loadUnaligned(fromByteOffset: from, as: UInt32.self)
                destination.storeBytes(of: word, toByteOffset: to, as: UInt32.self)
            }
        }

        while ip < inputEnd {
            let token = Int(source[ip])
            ip += 1

            // Literal run length.
            var length = token >> 4
            if length == 15 {
                var more = 255
                while ip < inputEnd && more == 255 {
                    more = Int(source[ip])
                    ip += 1
                    length += more
                }
            }
            var copyEnd = op + length
            if copyEnd > outputEnd - copyLength || ip + length > inputEnd - copyLength {
                // Only the last sequence may come this close to either end, and it must end
                // the input exactly.
                guard copyEnd <= outputEnd else {
                    throw fail("\(length) literals at output offset \(op) run past the output's \(outputEnd) bytes", ip)
                }
                guard ip + length == inputEnd else {
                    throw fail("the last literal run (\(length) bytes) does not end the input", ip)
                }
                if length > 0 {
                    UnsafeMutableRawBufferPointer(rebasing: destination[op..<copyEnd])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[ip..<(ip + length)]))
                }
                op = copyEnd
                break
            }
            // Literals in 8-byte strides (at least one stride, even for an empty run). Both
            // ends are ≥ 8 bytes away, so the strides stay inside the buffers.
            repeat {
                UnsafeMutableRawBufferPointer(rebasing: destination[op..<(op + 8)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[ip..<(ip + 8)]))
                ip += 8
                op += 8
            } while op < copyEnd
            ip -= op - copyEnd
            op = copyEnd

            // Back-reference (ip ≤ inputEnd − 8 here, so both bytes exist).
            var reference = copyEnd - (Int(source[ip]) | Int(source[ip + 1]) << 8)
            ip += 2
            guard reference >= 0 else {
                throw fail(
                    "a back-reference at output offset \(op) points \(op - reference) bytes back, before the output",
                    ip - 2)
            }

            // Match length (minus the first 4, which the copy below always makes).
            length = token & 15
            if length == 15 {
                while ip < inputEnd {
                    let more = Int(source[ip])
                    ip += 1
                    length += more
                    if more != 255 { break }
                }
            }

            // The first 8 bytes of the match (op ≤ outputEnd − 8 here).
            let distance = op - reference
            if distance < stepSize {
                let adjust64 = shortOffsetAdjust64[distance]
                for k in 0..<4 { destination[op + k] = destination[reference + k] }
                op += 4
                reference += 4
                reference -= shortOffsetAdjust[distance]
                move(from: reference, to: op, count: 4)
                op += stepSize - 4
                reference -= adjust64
            } else {
                move(from: reference, to: op, count: 8)
                op += 8
                reference += 8
            }

            copyEnd = op + length - (stepSize - 4)
            if copyEnd > outputEnd - copyLength {
                guard copyEnd <= outputEnd else {
                    throw fail("a match ending at output offset \(copyEnd) runs past the output's \(outputEnd) bytes", ip)
                }
                guard reference + copyLength <= outputEnd else {
                    throw fail("a match near the end of the output reads past it", ip)
                }
                // 8-byte strides up to 8 bytes before the end, then byte by byte.
                if op < outputEnd - copyLength {
                    repeat {
                        move(from: reference, to: op, count: 8)
                        op += 8
                        reference += 8
                    } while op < outputEnd - copyLength
                }
                while op < copyEnd {
                    destination[op] = destination[reference]
                    op += 1
                    reference += 1
                }
                op = copyEnd
                guard op != outputEnd else {
                    throw fail("the block ends with a match that fills the output (the last bytes must be literals)", ip)
                }
                continue
            }
            if op < copyEnd {
                repeat {
                    move(from: reference, to: op, count: 8)
                    op += 8
                    reference += 8
                } while op < copyEnd
            }
            op = copyEnd
        }
        return op
    }

    /// Encodes `source` as one raw LZ4 block.
    ///
    /// Greedy matching with a 4096-entry hash table of 4-byte prefixes; the block keeps the
    /// format's end rules (the last 5 bytes are literals, no match starts in the last 12).
    public static func compressBlock(_ source: [UInt8]) -> [UInt8] {
        let count = source.count
        var output: [UInt8] = []
        output.reserveCapacity(count + count / 255 + 16)

        func appendLength(_ value: Int) {
            var rest = value
            while rest >= 255 {
                output.append(255)
                rest -= 255
            }
            output.append(UInt8(rest))
        }
        func appendSequence(literals: Range<Int>, match: (offset: Int, length: Int)?) {
            let literalCount = literals.count
            let matchCode = match.map { $0.length - minimumMatch } ?? 0
            output.append(UInt8(min(literalCount, 15) << 4 | min(matchCode, 15)))
            if literalCount >= 15 { appendLength(literalCount - 15) }
            output.append(contentsOf: source[literals])
            guard let match else { return }
            output.append(UInt8(match.offset & 0xFF))
            output.append(UInt8(match.offset >> 8))
            if matchCode >= 15 { appendLength(matchCode - 15) }
        }
        func word(at index: Int) -> UInt32 {
            UInt32(source[index]) | UInt32(source[index + 1]) << 8 | UInt32(source[index + 2]) << 16
                | UInt32(source[index + 3]) << 24
        }

        var anchor = 0
        let matchStartLimit = count - 12  // a match must start at least 12 bytes before the end
        let matchEndLimit = count - 5  // and end at least 5 bytes before it
        if matchStartLimit > 0 {
            var table = [Int](repeating: -1, count: 1 << 12)
            var index = 0
            while index < matchStartLimit {
                let value = word(at: index)
                let hash = Int((value &* 2_654_435_761) >> 20)
                let candidate = table[hash]
                table[hash] = index
                if candidate >= 0, index - candidate <= 65535, word(at: candidate) == value {
                    var length = minimumMatch
                    while index + length < matchEndLimit && source[candidate + length] == source[index + length] {
                        length += 1
                    }
                    appendSequence(literals: anchor..<index, match: (index - candidate, length))
                    index += length
                    anchor = index
                } else {
                    index += 1
                }
            }
        }
        appendSequence(literals: anchor..<count, match: nil)
        return output
    }
}
