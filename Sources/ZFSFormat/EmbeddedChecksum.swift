import Crypto

/// The self-checksum that OpenZFS embeds in the last 40 bytes of every label block.
///
/// The boot-environment block, the config (`vdev_phys_t`) block and every uberblock slot end
/// in a `zio_eck_t` trailer. OpenZFS checksums them with checksum type `ZIO_CHECKSUM_LABEL`
/// ("label", enum value 3): plain SHA-256 over the whole block, computed while the trailer
/// holds the magic and a *verifier* — the absolute byte offset of the block on the leaf device.
/// A block copied to another offset therefore fails its checksum, which is how a reader tells a
/// misplaced label from a good one.
///
/// ```
/// block (size n)                                   trailer = last 40 bytes (zio_eck_t)
/// +----------------------------------------------+---------+---------+---------+---------+---------+
/// | payload                                      | magic   | word 0  | word 1  | word 2  | word 3  |
/// +----------------------------------------------+---------+---------+---------+---------+---------+
///  0                                          n-40      n-32      n-24      n-16       n-8        n
/// magic = ZEC_MAGIC 0x0210DA7AB10C7A11 in the writer's byte order
/// while hashing: words = (absolute offset, 0, 0, 0) in the writer's byte order
/// stored:        word i = SHA-256 digest bytes [8i, 8i+8) read big-endian, stored in the writer's order
/// ```
///
/// The writer's byte order is detected from the magic, so a label written by a big-endian host
/// verifies on a little-endian one and vice versa.
///
/// Only the kernel import path verifies these checksums; `zdb -l`, `zdb -lu` and
/// `zpool import` listing do not (`shared/spec/ondisk.md` §2.2).
///
/// The corresponding OpenZFS type is `zio_eck_t` (`include/sys/zio.h`); the algorithm is
/// `zio_checksum_compute` / `zio_checksum_error_impl` with `zio_checksum_label_verifier`
/// (`module/zfs/zio_checksum.c`). Described in `shared/spec/ondisk.md` §2.
public enum EmbeddedChecksum {
    /// `ZEC_MAGIC` (`include/sys/zio.h`): marks a trailer and tells its byte order.
    public static let magic: UInt64 = 0x0210_DA7A_B10C_7A11

    /// `sizeof (zio_eck_t)`: 8 bytes of magic and four 8-byte checksum words.
    public static let byteCount = 40

    /// The number of 64-bit words in `zec_cksum` (`zio_cksum_t`).
    public static let wordCount = 4

    /// The outcome of verifying one block.
    public enum Status: Hashable, Sendable, CustomStringConvertible {
        /// The trailer carries the magic and the stored words equal SHA-256 of the block.
        case valid(byteOrder: Endianness)
        /// The trailer carries the magic, but the words do not match: the block is corrupt,
        /// torn, or was written for another device offset.
        case mismatch(byteOrder: Endianness)
        /// The trailer does not carry `ZEC_MAGIC` in either byte order (an all-zero slot, or a
        /// block that was never written). OpenZFS treats this as a checksum failure too.
        case noMagic

        /// Whether the kernel would accept the block.
        public var isValid: Bool {
            if case .valid = self { return true }
            return false
        }

        /// The byte order of the writer, read from the magic; `nil` when there is no magic.
        public var byteOrder: Endianness? {
            switch self {
            case .valid(let order), .mismatch(let order): order
            case .noMagic: nil
            }
        }

        public var description: String {
            switch self {
            case .valid(let order): "valid (\(order)-endian writer)"
            case .mismatch(let order): "checksum mismatch (\(order)-endian writer)"
            case .noMagic: "no checksum trailer"
            }
        }
    }

    /// Verifies the embedded checksum of one block.
    ///
    /// The block is hashed in place: the bytes before the checksum words go to SHA-256
    /// directly and the verifier words are fed from a 32-byte scratch buffer, so nothing is copied.
    ///
    /// - Parameters:
    ///   - block: The whole block, trailer included (e.g. 0x1C000 bytes for a config block).
    ///   - absoluteOffset: The byte offset of the block's first byte on the leaf device.
    /// - Returns: `.valid`, `.mismatch` (both with the writer's byte order) or `.noMagic`.
    /// - Throws: `FormatError` `.truncated` when the block is shorter than a trailer (40 bytes).
    /// - Complexity: O(*n*) in the block size.
    public static func verify(_ block: UnsafeRawBufferPointer, absoluteOffset: UInt64) throws(FormatError) -> Status {
        guard block.count >= byteCount else {
            throw FormatError(
                .truncated,
                "a block with an embedded checksum needs at least \(byteCount) bytes for its trailer, but has \(block.count)",
                offset: block.count)
        }
        return verifyUnchecked(block, absoluteOffset: absoluteOffset)
    }

    /// Verifies the embedded checksum of one block held in an array.
    ///
    /// Same as the `UnsafeRawBufferPointer` overload; the array is hashed in place.
    public static func verify(_ block: [UInt8], absoluteOffset: UInt64) throws(FormatError) -> Status {
        try OnDiskWord.withBytes(of: block) { (buffer) throws(FormatError) in
            try verify(buffer, absoluteOffset: absoluteOffset)
        }
    }

    /// Verifies the embedded checksum of one block held in an array slice.
    ///
    /// Same as the `UnsafeRawBufferPointer` overload; the array is hashed in place.
    public static func verify(_ block: ArraySlice<UInt8>, absoluteOffset: UInt64) throws(FormatError) -> Status {
        try OnDiskWord.withBytes(of: block) { (buffer) throws(FormatError) in
            try verify(buffer, absoluteOffset: absoluteOffset)
        }
    }

    /// Writes the trailer of one block: magic, then the SHA-256 words, in `byteOrder`.
    ///
    /// Everything before the last 40 bytes is the payload and is not changed.
    ///
    /// - Parameters:
    ///   - block: The whole block; its last 40 bytes are overwritten.
    ///   - absoluteOffset: The byte offset at which the block will be written on the leaf device.
    ///   - byteOrder: The byte order of the writer to imitate (`.host` for OpenZFS on this machine).
    /// - Throws: `FormatError` `.truncated` when the block is shorter than a trailer.
    /// - Complexity: O(*n*) in the block size.
    public static func seal(
        _ block: UnsafeMutableRawBufferPointer, absoluteOffset: UInt64, byteOrder: Endianness
    ) throws(FormatError) {
        guard block.count >= byteCount else {
            throw FormatError(
                .truncated,
                "cannot seal a \(block.count)-byte block: the checksum trailer alone needs \(byteCount) bytes",
                offset: block.count)
        }
        sealUnchecked(block, absoluteOffset: absoluteOffset, byteOrder: byteOrder)
    }

    /// Writes the trailer of one block held in an array; same as the `UnsafeMutableRawBufferPointer` overload.
    public static func seal(_ block: inout [UInt8], absoluteOffset: UInt64, byteOrder: Endianness) throws(FormatError) {
        try OnDiskWord.withMutableBytes(of: &block) { (buffer) throws(FormatError) in
            try seal(buffer, absoluteOffset: absoluteOffset, byteOrder: byteOrder)
        }
    }

    /// Writes the trailer of one block held in an array slice; same as the `UnsafeMutableRawBufferPointer` overload.
    public static func seal(_ block: inout ArraySlice<UInt8>, absoluteOffset: UInt64, byteOrder: Endianness) throws(FormatError) {
        try OnDiskWord.withMutableBytes(of: &block) { (buffer) throws(FormatError) in
            try seal(buffer, absoluteOffset: absoluteOffset, byteOrder: byteOrder)
        }
    }

    // MARK: - Internals (callers guarantee block.count >= byteCount)

    static func verifyUnchecked(_ block: UnsafeRawBufferPointer, absoluteOffset: UInt64) -> Status {
        let trailer = block.count - byteCount
        let storedMagic = OnDiskWord.load(block, at: trailer, .little)
        let order: Endianness
        if storedMagic == magic {
            order = .little
        } else if storedMagic.byteSwapped == magic {
            order = .big
        } else {
            return .noMagic
        }
        let wordsStart = trailer + 8
        var hasher = SHA256()
        hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: block[..<wordsStart]))
        withUnsafeTemporaryAllocation(byteCount: wordCount * 8, alignment: 8) { verifier in
            verifier.initializeMemory(as: UInt8.self, repeating: 0)
            OnDiskWord.store(absoluteOffset, into: verifier, at: 0, order)
            hasher.update(bufferPointer: UnsafeRawBufferPointer(verifier))
        }
        let digest = hasher.finalize()
        let matches = digest.withUnsafeBytes { digestBytes in
            (0..<wordCount).allSatisfy { i in
                OnDiskWord.load(block, at: wordsStart + 8 * i, order) == OnDiskWord.load(digestBytes, at: 8 * i, .big)
            }
        }
        return matches ? .valid(byteOrder: order) : .mismatch(byteOrder: order)
    }

    static func sealUnchecked(_ block: UnsafeMutableRawBufferPointer, absoluteOffset: UInt64, byteOrder: Endianness) {
        let trailer = block.count - byteCount
        OnDiskWord.store(magic, into: block, at: trailer, byteOrder)
        OnDiskWord.store(absoluteOffset, into: block, at: trailer + 8, byteOrder)
        for i in 1..<wordCount {
            OnDiskWord.store(0, into: block, at: trailer + 8 + 8 * i, byteOrder)
        }
        var hasher = SHA256()
        hasher.update(bufferPointer: UnsafeRawBufferPointer(block))
        let digest = hasher.finalize()
        digest.withUnsafeBytes { digestBytes in
            for i in 0..<wordCount {
                let word = OnDiskWord.load(digestBytes, at: 8 * i, .big)
                OnDiskWord.store(word, into: block, at: trailer + 8 + 8 * i, byteOrder)
            }
        }
    }
}

/// Unaligned 64-bit loads and stores in a named byte order, for the label and uberblock codecs.
///
/// Callers check bounds first; these helpers are the only place that touches raw words.
enum OnDiskWord {
    @inline(__always)
    static func load(_ buffer: UnsafeRawBufferPointer, at offset: Int, _ order: Endianness) -> UInt64 {
        let raw = buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        return order == .little ? UInt64(littleEndian: raw) : UInt64(bigEndian: raw)
    }

    @inline(__always)
    static func store(_ value: UInt64, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, _ order: Endianness) {
        let raw = order == .little ? value.littleEndian : value.bigEndian
        buffer.storeBytes(of: raw, toByteOffset: offset, as: UInt64.self)
    }

    // The standard library's `withUnsafeBytes` is `rethrows`, which erases a typed error to
    // `any Error`; these carry `FormatError` through a `Result` instead.

    @inline(__always)
    static func withBytes<T>(
        of bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(FormatError) -> T
    ) throws(FormatError) -> T {
        try bytes.withUnsafeBytes { buffer in Result { () throws(FormatError) in try body(buffer) } }.get()
    }

    @inline(__always)
    static func withBytes<T>(
        of bytes: ArraySlice<UInt8>, _ body: (UnsafeRawBufferPointer) throws(FormatError) -> T
    ) throws(FormatError) -> T {
        try bytes.withUnsafeBytes { buffer in Result { () throws(FormatError) in try body(buffer) } }.get()
    }

    @inline(__always)
    static func withMutableBytes<T>(
        of bytes: inout [UInt8], _ body: (UnsafeMutableRawBufferPointer) throws(FormatError) -> T
    ) throws(FormatError) -> T {
        try bytes.withUnsafeMutableBytes { buffer in Result { () throws(FormatError) in try body(buffer) } }.get()
    }

    @inline(__always)
    static func withMutableBytes<T>(
        of bytes: inout ArraySlice<UInt8>, _ body: (UnsafeMutableRawBufferPointer) throws(FormatError) -> T
    ) throws(FormatError) -> T {
        try bytes.withUnsafeMutableBytes { buffer in Result { () throws(FormatError) in try body(buffer) } }.get()
    }
}
