/// Fletcher-4, the checksum OpenZFS uses for most blocks and for persistent-L2ARC log blocks.
///
/// The input is read as 32-bit words; four 64-bit running sums are kept, each adding the one
/// before it, all wrapping modulo 2^64:
///
/// ```
/// for each 32-bit word w:  a += w;  b += a;  c += b;  d += c
/// checksum = (a, b, c, d)        (zio_cksum_t word 0 ... word 3)
/// ```
///
/// *Native* reads the words in the byte order of the machine that computes the checksum;
/// *byteswap* reads them in the other order. OpenZFS records which one a writer used only
/// implicitly (a foreign pool's blocks verify with the byteswapped form), so this type takes
/// the word order explicitly.
///
/// The "varsize" form (`fletcher_4_native_varsize`) accepts any length and ignores the last
/// `count % 4` bytes; the fixed form (`fletcher_4_native`) is only ever called with a multiple
/// of 4 (of 64, in fact). `checksum(_:wordOrder:)` is the varsize form, which equals the
/// fixed one on every length the fixed one accepts.
///
/// The corresponding OpenZFS code is `fletcher_4_scalar_native`, `fletcher_4_scalar_byteswap`
/// and `fletcher_4_native_varsize` (`module/zcommon/zfs_fletcher.c`); the vectorised variants
/// compute the same four words.
public enum Fletcher4 {
    /// The four checksum words, in `zio_cksum_t` order.
    public struct Checksum: Hashable, Sendable, CustomStringConvertible {
        /// Word 0: the sum of the words.
        public var a: UInt64
        /// Word 1: the sum of the running `a`.
        public var b: UInt64
        /// Word 2: the sum of the running `b`.
        public var c: UInt64
        /// Word 3: the sum of the running `c`.
        public var d: UInt64

        public init(_ a: UInt64, _ b: UInt64, _ c: UInt64, _ d: UInt64) {
            self.a = a
            self.b = b
            self.c = c
            self.d = d
        }

        /// Builds a checksum from a `zio_cksum_t` read as four words.
        /// - Returns: `nil` unless `array` has exactly four elements.
        public init?(_ array: [UInt64]) {
            guard array.count == 4 else { return nil }
            self.init(array[0], array[1], array[2], array[3])
        }

        /// The words as an array, word 0 first.
        public var array: [UInt64] { [a, b, c, d] }

        /// `zio_cksum_t` as zdb prints checksums: four hex words joined by colons.
        public var description: String { array.map { String($0, radix: 16) }.joined(separator: ":") }
    }

    /// Fletcher-4 of `bytes`, reading 32-bit words in `wordOrder` and ignoring a trailing
    /// partial word.
    ///
    /// - Parameters:
    ///   - bytes: The data; any length.
    ///   - wordOrder: `.host` for `fletcher_4_native`, the other order for the byteswap form.
    /// - Returns: The four running sums.
    /// - Complexity: O(*n*).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, wordOrder: Endianness) -> Checksum {
        var a: UInt64 = 0
        var b: UInt64 = 0
        var c: UInt64 = 0
        var d: UInt64 = 0
        let wordCount = bytes.count / 4
        let big = wordOrder == .big
        for index in 0..<wordCount {
            let raw = bytes.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)
            let word = UInt64(big ? UInt32(bigEndian: raw) : UInt32(littleEndian: raw))
            a &+= word
            b &+= a
            c &+= b
            d &+= c
        }
        return Checksum(a, b, c, d)
    }

    /// Fletcher-4 of an array; same as the `UnsafeRawBufferPointer` overload.
    public static func checksum(_ bytes: [UInt8], wordOrder: Endianness) -> Checksum {
        bytes.withUnsafeBytes { checksum($0, wordOrder: wordOrder) }
    }

    /// Fletcher-4 of an array slice; same as the `UnsafeRawBufferPointer` overload.
    public static func checksum(_ bytes: ArraySlice<UInt8>, wordOrder: Endianness) -> Checksum {
        bytes.withUnsafeBytes { checksum($0, wordOrder: wordOrder) }
    }

    /// `fletcher_4_native_varsize`: Fletcher-4 in the byte order of this machine.
    public static func native(_ bytes: [UInt8]) -> Checksum {
        checksum(bytes, wordOrder: .host)
    }

    /// `fletcher_4_native_varsize` of a slice.
    public static func native(_ bytes: ArraySlice<UInt8>) -> Checksum {
        checksum(bytes, wordOrder: .host)
    }
}
