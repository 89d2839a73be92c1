// Packed name-value lists: the one data model of OpenZFS's on-disk configs.
//
// Every vdev label, every `zpool.cache` and every import request carries its
// configuration as an *nvlist*: an ordered list of named, typed values in which
// a value may itself be an nvlist (or an array of them). OpenZFS stores it in
// two byte formats (`spec/ondisk.md` §3):
//
//   * XDR (encoding 1): big-endian 4-byte words, used in vdev labels whatever
//     the writer's byte order (see `NVList+XDR.swift`);
//   * NATIVE (encoding 0): the writer's in-memory `nvpair_t` images, used in
//     `zpool.cache` (see `NVList+Native.swift`).
//
// Both start with the same 4-byte stream header:
//
//   byte 0   encoding        0 = NV_ENCODE_NATIVE, 1 = NV_ENCODE_XDR
//   byte 1   writer order    1 = little-endian, 0 = big-endian
//   byte 2,3 reserved (0)
//
// What this file guarantees: the model keeps pairs in stream order, keeps the
// list flags and version, and keeps every data type OpenZFS defines, so that
// `encode(decode(bytes)) == bytes` for every stream OpenZFS writes. What it does
// not: it does not resolve duplicate names (OpenZFS's decoder keeps both pairs in
// iteration order too), and it does not keep bytes that a canonical writer
// zeroes (padding, the pointer slots of native arrays, sign-extension of small
// XDR integers written by userland libnvpair).
//
// Decoding never trusts the input (the rule of `module/nvpair/nvpair.c`): every
// count is checked against the bytes that remain before anything is allocated,
// nesting is capped at `NVList.maximumNestingDepth` (OpenZFS userland's
// `nvpair_max_recursion`), and every failure is a `FormatError` naming the offset.

/// An ordered list of named, typed values, as OpenZFS packs it into labels and cache files.
///
/// ```swift
/// var config = NVList()
/// config.append("name", .string("tank"))
/// config.append("pool_guid", .uint64(8073999673132614431))
/// let packed = config.encoded(as: .xdr)          // what a vdev label holds
/// let back = try NVList(decoding: packed)
/// #expect(back.uint64("pool_guid") == 8073999673132614431)
/// ```
///
/// The corresponding OpenZFS type is `nvlist_t` (`include/sys/nvpair.h`).
public struct NVList: Hashable, Sendable {
    /// The flag word of a list (`nvl_nvflag`).
    public struct Flags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// Names are unique: adding a pair replaces one of the same name. The corresponding
        /// OpenZFS constant is `NV_UNIQUE_NAME`. Every list OpenZFS writes on disk has it.
        public static let uniqueName = Flags(rawValue: 0x1)
        /// Name and type together are unique. The corresponding constant is `NV_UNIQUE_NAME_TYPE`.
        public static let uniqueNameAndType = Flags(rawValue: 0x2)
    }

    /// The two byte formats of a packed list.
    public enum Encoding: UInt8, Hashable, Sendable {
        /// `NV_ENCODE_NATIVE`: the writer's memory images; used by `zpool.cache`.
        case native = 0
        /// `NV_ENCODE_XDR`: big-endian words; used by vdev labels.
        case xdr = 1
    }

    /// The deepest nesting of lists a decoder accepts or an encoder writes.
    ///
    /// OpenZFS userland allows 100 (`nvpair_max_recursion`), the kernel 20; labels and cache
    /// files nest at most a handful of levels.
    public static let maximumNestingDepth = 100

    /// `nvl_version`; OpenZFS writes 0 (`NV_VERSION`) and rejects any other value in nested lists.
    public var version: Int32
    /// `nvl_nvflag`.
    public var flags: Flags
    /// The pairs, in stream order.
    public var pairs: [NVPair]

    /// Creates a list; OpenZFS's on-disk lists all carry ``Flags/uniqueName``.
    public init(flags: Flags = .uniqueName, pairs: [NVPair] = []) {
        self.version = 0
        self.flags = flags
        self.pairs = pairs
    }

    /// The value of the last pair named `name`, or `nil`.
    ///
    /// - Complexity: O(*n*) in the number of pairs.
    public subscript(name: String) -> NVPair.Value? {
        get { pairs.last(where: { $0.name == name })?.value }
        set {
            if let newValue {
                set(name, newValue)
            } else {
                pairs.removeAll(where: { $0.name == name })
            }
        }
    }

    /// Adds a pair at the end, first removing any pair the list's flags say it replaces
    /// (the behaviour of `nvlist_add_*`).
    public mutating func set(_ name: String, _ value: NVPair.Value) {
        if flags.contains(.uniqueName) {
            pairs.removeAll(where: { $0.name == name })
        } else if flags.contains(.uniqueNameAndType) {
            pairs.removeAll(where: { $0.name == name && $0.value.dataType == value.dataType })
        }
        pairs.append(NVPair(name, value))
    }

    /// Adds a pair at the end without looking for others of the same name.
    public mutating func append(_ name: String, _ value: NVPair.Value) {
        pairs.append(NVPair(name, value))
    }

    /// Whether a pair named `name` exists (of any type; a valueless `BOOLEAN` counts).
    public func contains(_ name: String) -> Bool {
        pairs.contains(where: { $0.name == name })
    }

    /// The value of `name` if it is a `UINT64`.
    public func uint64(_ name: String) -> UInt64? {
        if case .uint64(let value)? = self[name] { return value }
        return nil
    }

    /// The value of `name` if it is a `STRING`.
    public func string(_ name: String) -> String? {
        if case .string(let value)? = self[name] { return value }
        return nil
    }

    /// The value of `name` if it is an `NVLIST`.
    public func list(_ name: String) -> NVList? {
        if case .nvlist(let value)? = self[name] { return value }
        return nil
    }

    /// The value of `name` if it is an `NVLIST_ARRAY`.
    public func lists(_ name: String) -> [NVList]? {
        if case .nvlistArray(let value)? = self[name] { return value }
        return nil
    }

    /// The value of `name` if it is a `UINT64_ARRAY`.
    public func uint64Array(_ name: String) -> [UInt64]? {
        if case .uint64Array(let value)? = self[name] { return value }
        return nil
    }
}

/// One named value of an ``NVList``. The corresponding OpenZFS type is `nvpair_t`.
public struct NVPair: Hashable, Sendable {
    /// The pair's name; OpenZFS limits it to fewer than 32 767 bytes. A name decoded from bytes
    /// that are not valid UTF-8 (a damaged label) holds U+FFFD for each bad sequence here and
    /// its bytes in ``rawName``.
    public var name: String { didSet { rawName = nil } }
    /// The typed value.
    public var value: Value { didSet { rawStrings = nil } }

    /// The name's bytes as they were in the packed list, kept only when they are not valid UTF-8
    /// (`name` then holds U+FFFD instead); `nil` otherwise, and after `name` is set. zdb prints
    /// names with `%s`, so `zpk label` prints these bytes, and the encoders write them back.
    public internal(set) var rawName: [UInt8]?
    /// The bytes of a `.string` value (one element) or a `.stringArray` (one per string) as they
    /// were in the packed list, kept only when one of them is not valid UTF-8; `nil` otherwise,
    /// and after `value` is set.
    public internal(set) var rawStrings: [[UInt8]]?

    public init(_ name: String, _ value: Value) {
        self.name = name
        self.value = value
    }

    /// A decoded pair: `rawName`/`rawStrings` are kept only where they differ from the strings.
    init(decodedName name: String, rawName: [UInt8]?, value: Value, rawStrings: [[UInt8]]?) {
        self.name = name
        self.value = value
        self.rawName = rawName
        self.rawStrings = rawStrings
    }

    /// The name's bytes as OpenZFS holds them: ``rawName`` when kept, else the UTF-8 of `name`.
    public var nameBytes: [UInt8] { rawName ?? Array(name.utf8) }

    /// The bytes of the string value(s) as OpenZFS holds them (``rawStrings`` when kept), or
    /// `nil` when the value is not a string or string array.
    public var stringBytes: [[UInt8]]? {
        if let rawStrings { return rawStrings }
        switch value {
        case .string(let s): return [Array(s.utf8)]
        case .stringArray(let v): return v.map { Array($0.utf8) }
        default: return nil
        }
    }

    /// `nativeValueSize` counted with the bytes OpenZFS holds (raw bytes when kept).
    var nativeValueSizeOfHeldBytes: Int {
        guard let rawStrings else { return value.nativeValueSize }
        switch value {
        case .string: return (rawStrings.first?.count ?? 0) + 1
        case .stringArray: return rawStrings.reduce(8 * rawStrings.count) { $0 + $1.count + 1 }
        default: return value.nativeValueSize
        }
    }

    /// A typed value. Each case is one `data_type_t` of `include/sys/nvpair.h`.
    public enum Value: Hashable, Sendable {
        /// `DATA_TYPE_BOOLEAN`: a flag that is present, with no value.
        case boolean
        case byte(UInt8)
        case int16(Int16)
        case uint16(UInt16)
        case int32(Int32)
        case uint32(UInt32)
        case int64(Int64)
        case uint64(UInt64)
        case string(String)
        case byteArray([UInt8])
        case int16Array([Int16])
        case uint16Array([UInt16])
        case int32Array([Int32])
        case uint32Array([UInt32])
        case int64Array([Int64])
        case uint64Array([UInt64])
        case stringArray([String])
        /// `DATA_TYPE_HRTIME`: nanoseconds of a monotonic clock.
        case hrtime(Int64)
        case nvlist(NVList)
        case nvlistArray([NVList])
        /// `DATA_TYPE_BOOLEAN_VALUE`: a boolean stored as a 32-bit 0 or 1.
        case booleanValue(Bool)
        case int8(Int8)
        case uint8(UInt8)
        case booleanArray([Bool])
        case int8Array([Int8])
        case uint8Array([UInt8])
        /// `DATA_TYPE_DOUBLE` (userland only).
        case double(Double)

        /// The on-disk type number of this value.
        public var dataType: DataType {
            switch self {
            case .boolean: .boolean
            case .byte: .byte
            case .int16: .int16
            case .uint16: .uint16
            case .int32: .int32
            case .uint32: .uint32
            case .int64: .int64
            case .uint64: .uint64
            case .string: .string
            case .byteArray: .byteArray
            case .int16Array: .int16Array
            case .uint16Array: .uint16Array
            case .int32Array: .int32Array
            case .uint32Array: .uint32Array
            case .int64Array: .int64Array
            case .uint64Array: .uint64Array
            case .stringArray: .stringArray
            case .hrtime: .hrtime
            case .nvlist: .nvlist
            case .nvlistArray: .nvlistArray
            case .booleanValue: .booleanValue
            case .int8: .int8
            case .uint8: .uint8
            case .booleanArray: .booleanArray
            case .int8Array: .int8Array
            case .uint8Array: .uint8Array
            case .double: .double
            }
        }

        /// `nvp_value_elem`: 0 for `BOOLEAN`, the element count for arrays, 1 otherwise.
        public var elementCount: Int {
            switch self {
            case .boolean: 0
            case .byteArray(let v): v.count
            case .int16Array(let v): v.count
            case .uint16Array(let v): v.count
            case .int32Array(let v): v.count
            case .uint32Array(let v): v.count
            case .int64Array(let v): v.count
            case .uint64Array(let v): v.count
            case .stringArray(let v): v.count
            case .nvlistArray(let v): v.count
            case .booleanArray(let v): v.count
            case .int8Array(let v): v.count
            case .uint8Array(let v): v.count
            default: 1
            }
        }
    }

    /// The type numbers of `data_type_t` (`include/sys/nvpair.h`).
    public enum DataType: Int32, Hashable, Sendable, CaseIterable {
        case boolean = 1, byte, int16, uint16, int32, uint32, int64, uint64, string
        case byteArray, int16Array, uint16Array, int32Array, uint32Array, int64Array, uint64Array
        case stringArray, hrtime, nvlist, nvlistArray, booleanValue, int8, uint8
        case booleanArray, int8Array, uint8Array, double

        /// Whether the type holds a counted array (any element count, 0 included).
        public var isArray: Bool {
            switch self {
            case .byteArray, .int16Array, .uint16Array, .int32Array, .uint32Array, .int64Array,
                .uint64Array, .stringArray, .nvlistArray, .booleanArray, .int8Array, .uint8Array:
                true
            default:
                false
            }
        }

        /// The element count the type allows when it is not an array: 0 for `BOOLEAN`, else 1.
        /// The corresponding OpenZFS function is `i_validate_type_nelem`.
        func allows(elementCount: Int) -> Bool {
            if isArray { return elementCount >= 0 }
            return elementCount == (self == .boolean ? 0 : 1)
        }

        /// The size of one fixed-width element in a native (in-memory) image.
        var nativeElementSize: Int {
            switch self {
            case .boolean: 0
            case .byte, .int8, .uint8, .byteArray, .int8Array, .uint8Array: 1
            case .int16, .uint16, .int16Array, .uint16Array: 2
            case .int32, .uint32, .booleanValue, .int32Array, .uint32Array, .booleanArray: 4
            case .int64, .uint64, .hrtime, .double, .int64Array, .uint64Array: 8
            // Strings have a variable size; nvlists are 24-byte `nvlist_t` images.
            case .string: 0
            case .stringArray: 8
            case .nvlist: NativeLayout.nvlistImageSize
            case .nvlistArray: 8 + NativeLayout.nvlistImageSize
            }
        }
    }
}

extension NVPair.Value {
    /// The native value size (`i_get_value_size`), from which `nvp_size` and the XDR
    /// `decoded_size` follow. Strings count their NUL.
    var nativeValueSize: Int {
        switch self {
        case .string(let s): return s.utf8.count + 1
        case .stringArray(let strings):
            return strings.reduce(8 * strings.count) { $0 + $1.utf8.count + 1 }
        default: return dataType.nativeElementSize * elementCount
        }
    }

    /// `nvp_size`: the size of the pair's in-memory image.
    static func nativePairSize(nameByteCount: Int, valueSize: Int) -> Int {
        NativeLayout.align8(NativeLayout.pairHeaderSize + nameByteCount + 1) + NativeLayout.align8(valueSize)
    }
}

/// Sizes of the in-memory images that the NATIVE encoding copies out, and that the XDR
/// `decoded_size` field describes.
enum NativeLayout {
    /// `nvp_size`, `nvp_name_sz`, `nvp_reserve`, `nvp_value_elem`, `nvp_type`.
    static let pairHeaderSize = 16
    /// `NV_ALIGN(sizeof (nvlist_t))`.
    static let nvlistImageSize = 24

    @inline(__always) static func align8(_ n: Int) -> Int { (n + 7) & ~7 }
    @inline(__always) static func align4(_ n: Int) -> Int { (n + 3) & ~3 }
}

extension NVList {
    /// The 4-byte header that starts every packed list (`nvs_header_t`).
    static let headerSize = 4

    /// Decodes a packed list in either encoding, as `nvlist_unpack` does.
    ///
    /// Trailing bytes after the list's terminator are ignored (a label's config area is
    /// zero-filled after the list). A NATIVE stream must be in the host's byte order unless
    /// `acceptingForeignNative` is true (OpenZFS never byte-swaps a native stream; we can).
    ///
    /// - Parameters:
    ///   - bytes: the packed list, starting with its 4-byte header.
    ///   - acceptingForeignNative: whether to byte-swap a NATIVE list written on a host of the
    ///     other byte order instead of refusing it as OpenZFS does.
    /// - Throws: ``FormatError`` with the offset of the first byte that makes no sense:
    ///   `.truncated`, `.invalidHeader`, `.unsupportedEncoding`, `.invalidSize`, `.invalidName`,
    ///   `.invalidType`, `.invalidValue`, `.nestingTooDeep`.
    public init(decoding bytes: some Collection<UInt8>, acceptingForeignNative: Bool = false) throws(FormatError) {
        let attempt: Result<NVList, FormatError>? = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(FormatError) in
                try NVList(decoding: UnsafeRawBufferPointer(buffer), acceptingForeignNative: acceptingForeignNative)
            }
        }
        if let attempt {
            self = try attempt.get()
        } else {
            self = try NVList(decoding: Array(bytes), acceptingForeignNative: acceptingForeignNative)
        }
    }

    /// Decodes a packed list from raw memory; see
    /// ``init(decoding:acceptingForeignNative:)-(Collection<UInt8>,_)``.
    ///
    /// - Parameters:
    ///   - raw: the packed list, starting with its 4-byte header.
    ///   - acceptingForeignNative: whether to read a NATIVE list of the other byte order.
    /// - Throws: ``FormatError``, as the collection overload.
    public init(decoding raw: UnsafeRawBufferPointer, acceptingForeignNative: Bool = false) throws(FormatError) {
        guard raw.count >= NVList.headerSize else {
            throw FormatError(.truncated, "a packed nvlist needs a 4-byte header, but only \(raw.count) bytes are there", offset: 0)
        }
        let encodingByte = raw[0]
        let writerLittleEndian = raw[1]
        switch encodingByte {
        case Encoding.xdr.rawValue:
            var reader = XDRReader(raw, position: NVList.headerSize)
            self = try reader.readList(depth: 0)
        case Encoding.native.rawValue:
            guard writerLittleEndian <= 1 else {
                throw FormatError(.invalidHeader, "native nvlist header names byte order \(writerLittleEndian); only 0 (big) and 1 (little) exist", offset: 1)
            }
            let order: Endianness = writerLittleEndian == 1 ? .little : .big
            guard order == .host || acceptingForeignNative else {
                throw FormatError(.unsupportedEncoding, "native nvlist was written by a \(order == .little ? "little" : "big")-endian host; OpenZFS reads native lists only in the host's byte order", offset: 1)
            }
            var reader = NativeReader(raw, position: NVList.headerSize, order: order)
            self = try reader.readTopLevelList()
        default:
            throw FormatError(.unsupportedEncoding, "nvlist encoding byte is \(encodingByte); only 0 (native) and 1 (XDR) exist", offset: 0)
        }
    }

    /// Packs the list, as `nvlist_pack` does.
    ///
    /// - Parameters:
    ///   - encoding: `.xdr` for vdev labels, `.native` for `zpool.cache`.
    ///   - byteOrder: the writer byte order recorded in the header, and, for `.native`,
    ///     the order of every integer. OpenZFS always writes its host's order.
    /// - Returns: the packed bytes, header included.
    /// - Throws: `.nestingTooDeep` beyond ``maximumNestingDepth``, `.tooLarge` when a pair
    ///   or the list exceeds `INT32_MAX` bytes, `.invalidName`/`.invalidValue` for names or
    ///   strings containing NUL, or an empty name.
    public func encoded(as encoding: Encoding, byteOrder: Endianness = .host) throws(FormatError) -> [UInt8] {
        switch encoding {
        case .xdr:
            var writer = XDRWriter(byteOrder: byteOrder)
            try writer.writeStream(self)
            return writer.bytes
        case .native:
            var writer = NativeWriter(byteOrder: byteOrder)
            try writer.writeStream(self)
            return writer.bytes
        }
    }

    /// The size OpenZFS's `nvlist_size` reports for the XDR encoding. It exceeds
    /// ``encodedSize(as:)`` by 4 bytes for every empty fixed-width array, whose count word
    /// OpenZFS counts but never writes (`spec/ondisk.md` §3.3). `zdb -l` checksums this many
    /// bytes of a label's config area to tell identical labels apart.
    public func openZFSXDRSize() throws(FormatError) -> Int {
        try NVList.headerSize + XDRWriter.listSize(self, depth: 0, countingPhantomWords: true)
    }

    /// The number of bytes ``encoded(as:byteOrder:)`` produces.
    public func encodedSize(as encoding: Encoding) throws(FormatError) -> Int {
        switch encoding {
        case .xdr: try NVList.headerSize + XDRWriter.listSize(self, depth: 0)
        case .native: try NVList.headerSize + 8 + NativeWriter.pairListSize(self, depth: 0)
        }
    }
}

/// Checks a name or string value the way the encoders need it: no NUL inside.
@inline(__always)
func validateCString(_ s: String, what: @autoclosure () -> String, code: FormatError.Code) throws(FormatError) {
    // Scan the contiguous UTF-8 (native and small strings have it) rather than the generic
    // UTF8View iterator, which cost ~10% of encode.
    let hasNUL = s.utf8.withContiguousStorageIfAvailable { $0.contains(0) } ?? s.utf8.contains(0)
    if hasNUL {
        throw FormatError(code, "\(what()) contains a NUL byte, which a packed nvlist cannot hold")
    }
}
