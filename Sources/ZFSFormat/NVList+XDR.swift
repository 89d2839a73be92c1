// The XDR encoding of packed nvlists (`NV_ENCODE_XDR`), used by every vdev label.
//
// Layout (`spec/ondisk.md` §3.3; `module/nvpair/nvpair.c`, the comment above the XDR
// functions). All words are 4-byte big-endian, whatever the writer's byte order:
//
//   stream     := header(4) list
//   list       := i32 version, u32 nvflag, pair*, i32 0, i32 0
//   pair       := i32 encoded_size, i32 decoded_size, string name,
//                 i32 type, i32 nelem, value            (no value when nelem == 0)
//   string     := u32 length, bytes, zero pad to 4      (no NUL)
//
// `encoded_size` is the pair's size in this stream (nested lists included), except that
// OpenZFS counts a 4-byte array count word for *empty* fixed-width arrays although it
// writes none; we reproduce that quirk so that our output is byte-identical. Readers
// never use `encoded_size`. `decoded_size` is the pair's in-memory (`nvp_size`) size; the
// decoder holds it to the exact value, as OpenZFS's `i_validate_nvpair` does.

struct XDRReader {
    var cursor: ByteCursor
    /// For the pair being read: how many more bytes its string values take as Swift UTF-8 than
    /// on disk (invalid UTF-8 decoded as U+FFFD); size checks subtract it.
    private var stringBytesNotInUTF8 = 0
    /// For the pair being read: the on-disk bytes of each of its string values, and whether one
    /// of them is not valid UTF-8 (then the pair keeps them all, see `NVPair.rawStrings`).
    private var rawStrings: [[UInt8]] = []
    private var anyRawString = false

    init(_ raw: UnsafeRawBufferPointer, position: Int) {
        cursor = ByteCursor(raw, position: position)
    }

    /// `NVS_XDR_MAX_LEN`: the largest in-memory pair that `available` stream bytes could
    /// describe. OpenZFS rejects a larger `decoded_size` before allocating it.
    static func maximumDecodedSize(available: Int) -> Int {
        let data = available <= 20 ? 0 : available - 20
        return 24 + data * 2 + NativeLayout.align4(data / 4)
    }

    mutating func readList(depth: Int) throws(FormatError) -> NVList {
        let version = try cursor.readInt32(.big, "the nvlist version word")
        let flags = try cursor.readUInt32(.big, "the nvlist flag word")
        var list = NVList(flags: NVList.Flags(rawValue: flags))
        list.version = version
        while true {
            let pairStart = cursor.position
            _ = try cursor.readInt32(.big, "a pair's encoded size")
            let decodedSize = Int(try cursor.readInt32(.big, "a pair's decoded size"))
            if decodedSize == 0 { break }
            guard decodedSize >= 24, decodedSize <= XDRReader.maximumDecodedSize(available: cursor.remaining) else {
                throw FormatError(.invalidSize, "pair decoded size \(decodedSize) is impossible with \(cursor.remaining) bytes left", offset: pairStart + 4)
            }
            list.pairs.append(try readPair(decodedSize: decodedSize, depth: depth, start: pairStart))
        }
        return list
    }

    /// A string, its length in bytes on disk, and those bytes when they are not valid UTF-8 (a
    /// damaged label). The string then holds U+FFFD for each bad sequence, so its UTF-8 length
    /// differs: every size check must use the on-disk length, and printing (zdb prints the raw
    /// bytes with `%s`) and re-encoding use `raw`.
    private mutating func readStringAndLength(
        maximumLength: Int, what: @autoclosure () -> String
    ) throws(FormatError) -> (string: String, byteCount: Int, raw: [UInt8]?) {
        let at = cursor.position
        let length = Int(try cursor.readUInt32(.big, what()))
        guard length <= maximumLength else {
            throw FormatError(.invalidSize, "\(what()) claims \(length) bytes, more than the \(maximumLength) its pair has room for", offset: at)
        }
        let bytes = try cursor.readSlice(length, what())
        try cursor.skip(NativeLayout.align4(length) - length, "the padding of \(what())")
        if bytes.contains(0) {
            throw FormatError(.invalidValue, "\(what()) contains a NUL byte", offset: at + 4)
        }
        let string = String(cBytes: bytes)
        // ASCII (nearly every label string) decodes exactly; only other bytes need the compare.
        let exact = !bytes.contains(where: { $0 >= 0x80 })
            || (string.utf8.count == length && string.utf8.elementsEqual(bytes))
        return (string, length, exact ? nil : Array(bytes))
    }

    private mutating func readPair(decodedSize: Int, depth: Int, start: Int) throws(FormatError) -> NVPair {
        // The name must leave room for its NUL inside the pair's in-memory image.
        let (name, nameByteCount, rawName) = try readStringAndLength(
            maximumLength: decodedSize - NativeLayout.pairHeaderSize - 1, what: "a pair name")
        guard !name.isEmpty else {
            throw FormatError(.invalidName, "a pair has an empty name", offset: start + 8)
        }
        let typeAt = cursor.position
        let typeNumber = try cursor.readInt32(.big, "the type of pair '\(name)'")
        let count = Int(try cursor.readInt32(.big, "the element count of pair '\(name)'"))
        guard let type = NVPair.DataType(rawValue: typeNumber) else {
            throw FormatError(.invalidType, "pair '\(name)' has data type \(typeNumber), which OpenZFS does not define", offset: typeAt)
        }
        guard type.allows(elementCount: count) else {
            throw FormatError(.invalidType, "pair '\(name)' of type \(type) cannot hold \(count) elements", offset: typeAt + 4)
        }
        let valueOffset = NativeLayout.align8(NativeLayout.pairHeaderSize + nameByteCount + 1)
        let room = decodedSize - valueOffset
        guard room >= type.nativeElementSize * count else {
            throw FormatError(.invalidSize, "pair '\(name)' holds \(count) elements of type \(type), more than its decoded size \(decodedSize) allows", offset: start + 4)
        }
        stringBytesNotInUTF8 = 0
        rawStrings = []
        anyRawString = false
        let value = try readValue(type: type, count: count, room: room, name: name, depth: depth)
        // Nested lists read pairs of their own, which reset the per-pair string state: only a
        // string or string array pair may use it.
        let isStrings = type == .string || type == .stringArray
        let valueSize = value.nativeValueSize - (isStrings ? stringBytesNotInUTF8 : 0)
        guard room == NativeLayout.align8(valueSize) else {
            throw FormatError(.invalidSize, "pair '\(name)' has decoded size \(decodedSize), but its value needs \(valueOffset + NativeLayout.align8(valueSize))", offset: start + 4)
        }
        return NVPair(decodedName: name, rawName: rawName, value: value, rawStrings: isStrings && anyRawString ? rawStrings : nil)
    }

    @inline(__always)
    private mutating func readWords<T>(_ count: Int, _ name: String, _ transform: (UInt32) throws(FormatError) -> T) throws(FormatError) -> [T] {
        try cursor.require(count * 4, for: "the \(count) elements of pair '\(name)'")
        var values: [T] = []
        values.reserveCapacity(count)
        for _ in 0..<count {
            values.append(try transform(try cursor.readUInt32(.big, "an element of pair '\(name)'")))
        }
        return values
    }

    private mutating func readArrayCount(_ count: Int, _ name: String) throws(FormatError) {
        let at = cursor.position
        let stored = Int(try cursor.readUInt32(.big, "the array count of pair '\(name)'"))
        guard stored == count else {
            throw FormatError(.invalidSize, "pair '\(name)' says \(count) elements but its array holds \(stored)", offset: at)
        }
    }

    private static func boolean(_ word: UInt32, _ name: String, at offset: Int) throws(FormatError) -> Bool {
        switch word {
        case 0: return false
        case 1: return true
        default: throw FormatError(.invalidValue, "boolean pair '\(name)' holds \(word), not 0 or 1", offset: offset)
        }
    }

    private mutating func readValue(type: NVPair.DataType, count: Int, room: Int, name: String, depth: Int) throws(FormatError) -> NVPair.Value {
        if count == 0 {
            // OpenZFS writes no value bytes at all for empty arrays (and for BOOLEAN).
            switch type {
            case .boolean: return .boolean
            case .byteArray: return .byteArray([])
            case .int16Array: return .int16Array([])
            case .uint16Array: return .uint16Array([])
            case .int32Array: return .int32Array([])
            case .uint32Array: return .uint32Array([])
            case .int64Array: return .int64Array([])
            case .uint64Array: return .uint64Array([])
            case .stringArray: return .stringArray([])
            case .nvlistArray: return .nvlistArray([])
            case .booleanArray: return .booleanArray([])
            case .int8Array: return .int8Array([])
            case .uint8Array: return .uint8Array([])
            default: break  // unreachable: allows(elementCount:) admits 0 only for these
            }
        }
        // Built only when an error message needs it: interpolating it for every pair cost ~35% of decode.
        func what() -> String { "the value of pair '\(name)'" }
        switch type {
        case .boolean:
            return .boolean
        // Userland libnvpair sign-extends small integers and the kernel zero-extends them;
        // the low bits are the value either way (spec §3.6).
        case .byte: return .byte(UInt8(truncatingIfNeeded: try cursor.readUInt32(.big, what())))
        case .int8: return .int8(Int8(truncatingIfNeeded: try cursor.readUInt32(.big, what())))
        case .uint8: return .uint8(UInt8(truncatingIfNeeded: try cursor.readUInt32(.big, what())))
        case .int16: return .int16(Int16(truncatingIfNeeded: try cursor.readUInt32(.big, what())))
        case .uint16: return .uint16(UInt16(truncatingIfNeeded: try cursor.readUInt32(.big, what())))
        case .int32: return .int32(try cursor.readInt32(.big, what()))
        case .uint32: return .uint32(try cursor.readUInt32(.big, what()))
        case .booleanValue:
            let at = cursor.position
            return .booleanValue(try XDRReader.boolean(try cursor.readUInt32(.big, what()), name, at: at))
        case .int64: return .int64(Int64(bitPattern: try cursor.readUInt64(.big, what())))
        case .uint64: return .uint64(try cursor.readUInt64(.big, what()))
        case .hrtime: return .hrtime(Int64(bitPattern: try cursor.readUInt64(.big, what())))
        case .double: return .double(Double(bitPattern: try cursor.readUInt64(.big, what())))
        case .string:
            let (string, byteCount, raw) = try readStringAndLength(maximumLength: room - 1, what: what())
            stringBytesNotInUTF8 += string.utf8.count - byteCount
            if let raw {
                rawStrings = [raw]
                anyRawString = true
            }
            return .string(string)
        case .byteArray:
            let bytes = try cursor.readSlice(count, what())
            try cursor.skip(NativeLayout.align4(count) - count, "the padding of \(what())")
            return .byteArray(Array(bytes))
        case .int8Array:
            try readArrayCount(count, name)
            return .int8Array(try readWords(count, name) { Int8(truncatingIfNeeded: $0) })
        case .uint8Array:
            try readArrayCount(count, name)
            return .uint8Array(try readWords(count, name) { UInt8(truncatingIfNeeded: $0) })
        case .int16Array:
            try readArrayCount(count, name)
            return .int16Array(try readWords(count, name) { Int16(truncatingIfNeeded: $0) })
        case .uint16Array:
            try readArrayCount(count, name)
            return .uint16Array(try readWords(count, name) { UInt16(truncatingIfNeeded: $0) })
        case .int32Array:
            try readArrayCount(count, name)
            return .int32Array(try readWords(count, name) { Int32(bitPattern: $0) })
        case .uint32Array:
            try readArrayCount(count, name)
            return .uint32Array(try readWords(count, name) { $0 })
        case .booleanArray:
            try readArrayCount(count, name)
            let at = cursor.position
            return .booleanArray(try readWords(count, name) { (word) throws(FormatError) -> Bool in
                try XDRReader.boolean(word, name, at: at)
            })
        case .int64Array, .uint64Array:
            try readArrayCount(count, name)
            try cursor.require(count * 8, for: "the \(count) elements of pair '\(name)'")
            var values: [UInt64] = []
            values.reserveCapacity(count)
            for _ in 0..<count { values.append(try cursor.readUInt64(.big, what())) }
            return type == .uint64Array ? .uint64Array(values) : .int64Array(values.map { Int64(bitPattern: $0) })
        case .stringArray:
            // Each string is at least its 4-byte length word: bound the count before allocating.
            try cursor.require(count * 4, for: "the \(count) strings of pair '\(name)'")
            var strings: [String] = []
            strings.reserveCapacity(count)
            var left = room - 8 * count
            for _ in 0..<count {
                let (s, byteCount, raw) = try readStringAndLength(maximumLength: left - 1, what: what())
                left -= byteCount + 1
                stringBytesNotInUTF8 += s.utf8.count - byteCount
                strings.append(s)
                rawStrings.append(raw ?? Array(s.utf8))
                if raw != nil { anyRawString = true }
            }
            return .stringArray(strings)
        case .nvlist:
            return .nvlist(try readNested(depth: depth, name: name))
        case .nvlistArray:
            // Each embedded list is at least 16 bytes (version, flags, terminator).
            try cursor.require(count * 16, for: "the \(count) lists of pair '\(name)'")
            var lists: [NVList] = []
            lists.reserveCapacity(count)
            for _ in 0..<count { lists.append(try readNested(depth: depth, name: name)) }
            return .nvlistArray(lists)
        }
    }

    private mutating func readNested(depth: Int, name: String) throws(FormatError) -> NVList {
        guard depth < NVList.maximumNestingDepth else {
            throw FormatError(.nestingTooDeep, "pair '\(name)' nests lists deeper than \(NVList.maximumNestingDepth) levels", offset: cursor.position)
        }
        return try readList(depth: depth + 1)
    }
}

struct XDRWriter {
    let byteOrder: Endianness
    var sink = ByteSink()
    var bytes: [UInt8] { sink.bytes }

    init(byteOrder: Endianness) {
        self.byteOrder = byteOrder
    }

    mutating func writeStream(_ list: NVList) throws(FormatError) {
        sink = ByteSink(expectedCount: try NVList.headerSize + XDRWriter.listSize(list, depth: 0))
        sink.write([NVList.Encoding.xdr.rawValue, byteOrder == .little ? 1 : 0, 0, 0])
        _ = try writeList(list, depth: 0)
    }

    /// Writes a list; returns the phantom bytes (see the file comment) that its pairs' and
    /// nested pairs' `encoded_size` fields count beyond what is written.
    private mutating func writeList(_ list: NVList, depth: Int) throws(FormatError) -> Int {
        sink.writeInt32(list.version, .big)
        sink.writeUInt32(list.flags.rawValue, .big)
        var phantom = 0
        for pair in list.pairs {
            phantom += try writePair(pair, depth: depth)
        }
        sink.writeZeros(8)
        return phantom
    }

    private mutating func writeString(_ s: String) {
        let start = sink.count
        sink.writeUInt32(UInt32(s.utf8.count), .big)
        sink.write(s.utf8)
        sink.padTo(multipleOf: 4, from: start)
    }

    /// A string kept as raw bytes (not valid UTF-8, see `NVPair.rawName`).
    private mutating func writeStringBytes(_ bytes: [UInt8]) {
        let start = sink.count
        sink.writeUInt32(UInt32(bytes.count), .big)
        sink.write(bytes)
        sink.padTo(multipleOf: 4, from: start)
    }

    private mutating func writePair(_ pair: NVPair, depth: Int) throws(FormatError) -> Int {
        try validateCString(pair.name, what: "pair name '\(pair.name)'", code: .invalidName)
        guard !pair.name.isEmpty else { throw FormatError(.invalidName, "a pair name cannot be empty") }
        let value = pair.value
        let start = sink.count
        sink.writeZeros(4)  // encoded_size, patched below
        let decodedSize = NVPair.Value.nativePairSize(
            nameByteCount: pair.rawName?.count ?? pair.name.utf8.count, valueSize: pair.nativeValueSizeOfHeldBytes)
        sink.writeInt32(Int32(clamping: decodedSize), .big)
        if let raw = pair.rawName { writeStringBytes(raw) } else { writeString(pair.name) }
        sink.writeInt32(value.dataType.rawValue, .big)
        sink.writeInt32(Int32(clamping: value.elementCount), .big)
        var phantom = 0
        switch value {
        case .boolean: break
        case .byte(let v): sink.writeUInt32(UInt32(v), .big)
        case .int8(let v): sink.writeUInt32(UInt32(UInt8(bitPattern: v)), .big)
        case .uint8(let v): sink.writeUInt32(UInt32(v), .big)
        case .int16(let v): sink.writeUInt32(UInt32(UInt16(bitPattern: v)), .big)
        case .uint16(let v): sink.writeUInt32(UInt32(v), .big)
        case .int32(let v): sink.writeInt32(v, .big)
        case .uint32(let v): sink.writeUInt32(v, .big)
        case .booleanValue(let v): sink.writeUInt32(v ? 1 : 0, .big)
        case .int64(let v), .hrtime(let v): sink.writeUInt64(UInt64(bitPattern: v), .big)
        case .uint64(let v): sink.writeUInt64(v, .big)
        case .double(let v): sink.writeUInt64(v.bitPattern, .big)
        case .string(let s):
            try validateCString(s, what: "the string value of pair '\(pair.name)'", code: .invalidValue)
            if let raw = pair.rawStrings?.first { writeStringBytes(raw) } else { writeString(s) }
        case .byteArray(let v):
            let at = sink.count
            sink.write(v)
            sink.padTo(multipleOf: 4, from: at)
        case .int8Array(let v): phantom = writeWords(v.map { UInt32(UInt8(bitPattern: $0)) })
        case .uint8Array(let v): phantom = writeWords(v.map { UInt32($0) })
        case .int16Array(let v): phantom = writeWords(v.map { UInt32(UInt16(bitPattern: $0)) })
        case .uint16Array(let v): phantom = writeWords(v.map { UInt32($0) })
        case .int32Array(let v): phantom = writeWords(v.map { UInt32(bitPattern: $0) })
        case .uint32Array(let v): phantom = writeWords(v)
        case .booleanArray(let v): phantom = writeWords(v.map { $0 ? 1 : 0 })
        case .int64Array(let v): phantom = writeDoubleWords(v.map { UInt64(bitPattern: $0) })
        case .uint64Array(let v): phantom = writeDoubleWords(v)
        case .stringArray(let strings):
            for (i, s) in strings.enumerated() {
                try validateCString(s, what: "a string of pair '\(pair.name)'", code: .invalidValue)
                if let raw = pair.rawStrings, i < raw.count { writeStringBytes(raw[i]) } else { writeString(s) }
            }
        case .nvlist(let nested):
            phantom = try writeNested(nested, depth: depth, name: pair.name)
        case .nvlistArray(let lists):
            for nested in lists { phantom += try writeNested(nested, depth: depth, name: pair.name) }
        }
        let encodedSize = sink.count - start + phantom
        guard encodedSize <= Int(Int32.max), decodedSize <= Int(Int32.max) else {
            throw FormatError(.tooLarge, "pair '\(pair.name)' would take \(encodedSize) bytes, more than a packed nvlist can hold")
        }
        sink.setUInt32(UInt32(encodedSize), .big, at: start)
        return phantom
    }

    /// Writes a counted array of 4-byte words; an empty array writes nothing but is counted
    /// as 4 bytes by OpenZFS's `encoded_size` (the returned phantom).
    private mutating func writeWords(_ words: [UInt32]) -> Int {
        if words.isEmpty { return 4 }
        sink.writeUInt32(UInt32(words.count), .big)
        for w in words { sink.writeUInt32(w, .big) }
        return 0
    }

    private mutating func writeDoubleWords(_ words: [UInt64]) -> Int {
        if words.isEmpty { return 4 }
        sink.writeUInt32(UInt32(words.count), .big)
        for w in words { sink.writeUInt64(w, .big) }
        return 0
    }

    private mutating func writeNested(_ list: NVList, depth: Int, name: String) throws(FormatError) -> Int {
        guard depth < NVList.maximumNestingDepth else {
            throw FormatError(.nestingTooDeep, "pair '\(name)' nests lists deeper than \(NVList.maximumNestingDepth) levels")
        }
        return try writeList(list, depth: depth + 1)
    }

    /// The XDR size of a list: version and flag words, pairs, terminator.
    /// With `countingPhantomWords`, adds the 4 bytes OpenZFS's `nvlist_size` counts for each
    /// empty fixed-width array although no encoder writes them.
    static func listSize(_ list: NVList, depth: Int, countingPhantomWords: Bool = false) throws(FormatError) -> Int {
        guard depth <= NVList.maximumNestingDepth else {
            throw FormatError(.nestingTooDeep, "lists nest deeper than \(NVList.maximumNestingDepth) levels")
        }
        var size = 16
        let phantom = countingPhantomWords ? 4 : 0
        for pair in list.pairs {
            size += 4 + 4 + 4 + NativeLayout.align4(pair.rawName?.count ?? pair.name.utf8.count) + 4 + 4
            if let raw = pair.rawStrings {
                // Strings kept as raw bytes (not valid UTF-8): their on-disk lengths.
                size += raw.reduce(0) { $0 + 4 + NativeLayout.align4($1.count) }
                continue
            }
            switch pair.value {
            case .boolean: break
            case .byte, .int8, .uint8, .int16, .uint16, .int32, .uint32, .booleanValue: size += 4
            case .int64, .uint64, .hrtime, .double: size += 8
            case .string(let s): size += 4 + NativeLayout.align4(s.utf8.count)
            case .byteArray(let v): size += NativeLayout.align4(v.count)
            case .int8Array(let v): size += v.isEmpty ? phantom : 4 + 4 * v.count
            case .uint8Array(let v): size += v.isEmpty ? phantom : 4 + 4 * v.count
            case .int16Array(let v): size += v.isEmpty ? phantom : 4 + 4 * v.count
            case .uint16Array(let v): size += v.isEmpty ? phantom : 4 + 4 * v.count
            case .int32Array(let v): size += v.isEmpty ? phantom : 4 + 4 * v.count
            case .uint32Array(let v): size += v.isEmpty ? phantom : 4 + 4 * v.count
            case .booleanArray(let v): size += v.isEmpty ? phantom : 4 + 4 * v.count
            case .int64Array(let v): size += v.isEmpty ? phantom : 4 + 8 * v.count
            case .uint64Array(let v): size += v.isEmpty ? phantom : 4 + 8 * v.count
            case .stringArray(let v): size += v.reduce(0) { $0 + 4 + NativeLayout.align4($1.utf8.count) }
            case .nvlist(let nested):
                size += try listSize(nested, depth: depth + 1, countingPhantomWords: countingPhantomWords)
            case .nvlistArray(let lists):
                for nested in lists {
                    size += try listSize(nested, depth: depth + 1, countingPhantomWords: countingPhantomWords)
                }
            }
        }
        return size
    }
}
