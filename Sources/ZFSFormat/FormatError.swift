/// The one error type of `ZFSFormat`: every decoder throws it, typed, and never traps on input.
///
/// Shaped like NIOFS's `FileSystemError`: a ``Code`` that can grow without breaking clients,
/// a message that says what was wrong and where, and the byte offset at which decoding gave up
/// (relative to the start of the buffer the caller handed in).
public struct FormatError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of problem was found.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case truncated
            case invalidHeader
            case unsupportedEncoding
            case invalidSize
            case invalidName
            case invalidType
            case invalidValue
            case nestingTooDeep
            case duplicateName
            case tooLarge
            case badMagic
            case checksumMismatch
            case unsupportedVersion
            case invalidLayout
        }
        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The input ended before a structure it started was complete.
        public static let truncated = Code(.truncated)
        /// A stream header (nvlist encoding byte, reserved bytes) is not one OpenZFS writes.
        public static let invalidHeader = Code(.invalidHeader)
        /// The nvlist is NATIVE-encoded in the other byte order, or the encoding byte is unknown.
        public static let unsupportedEncoding = Code(.unsupportedEncoding)
        /// A size or count field is negative, absurd, or disagrees with the bytes that follow.
        public static let invalidSize = Code(.invalidSize)
        /// A pair name is empty, not NUL-terminated, or has an embedded NUL.
        public static let invalidName = Code(.invalidName)
        /// A data type number OpenZFS does not define, or an element count the type forbids.
        public static let invalidType = Code(.invalidType)
        /// A value that its type forbids (a boolean that is neither 0 nor 1, a string with a NUL).
        public static let invalidValue = Code(.invalidValue)
        /// Nested nvlists deeper than ``NVList/maximumNestingDepth``.
        public static let nestingTooDeep = Code(.nestingTooDeep)
        /// Two pairs with the same name in a list that promises unique names.
        public static let duplicateName = Code(.duplicateName)
        /// The encoded form would not fit where it must go (a label's config area, `INT32_MAX`).
        public static let tooLarge = Code(.tooLarge)
        /// A structure's magic number is not the one it must carry.
        public static let badMagic = Code(.badMagic)
        /// An embedded checksum does not match the bytes it covers.
        public static let checksumMismatch = Code(.checksumMismatch)
        /// A well-formed structure of a version this software does not support (not corruption).
        public static let unsupportedVersion = Code(.unsupportedVersion)
        /// Offsets, sizes or shifts that cannot describe a real device layout.
        public static let invalidLayout = Code(.invalidLayout)

        public var description: String {
            switch wrapped {
            case .truncated: "truncated"
            case .invalidHeader: "invalid header"
            case .unsupportedEncoding: "unsupported encoding"
            case .invalidSize: "invalid size"
            case .invalidName: "invalid name"
            case .invalidType: "invalid type"
            case .invalidValue: "invalid value"
            case .nestingTooDeep: "nesting too deep"
            case .duplicateName: "duplicate name"
            case .tooLarge: "too large"
            case .badMagic: "bad magic"
            case .checksumMismatch: "checksum mismatch"
            case .unsupportedVersion: "unsupported version"
            case .invalidLayout: "invalid layout"
            }
        }
    }

    /// What kind of problem was found.
    public var code: Code
    /// A sentence for a person: what was wrong, and where.
    public var message: String
    /// The byte offset at which decoding stopped, when there is one.
    public var offset: Int?

    public init(_ code: Code, _ message: String, offset: Int? = nil) {
        self.code = code
        self.message = message
        self.offset = offset
    }

    public var description: String {
        if let offset {
            return "\(message) (at byte offset \(offset))"
        }
        return message
    }
}

/// The byte order of a multi-byte field on disk.
public enum Endianness: Hashable, Sendable {
    case little
    case big

    /// The byte order of the machine this code runs on.
    public static let host: Endianness = {
        let one: UInt16 = 1
        return one.littleEndian == one ? .little : .big
    }()
}
