// The NATIVE encoding of packed nvlists (`NV_ENCODE_NATIVE`), used by `zpool.cache`.
//
// The stream is the writer's in-memory `nvpair_t` images copied out with pointers zeroed,
// every integer in the writer's byte order (`spec/ondisk.md` §3.4):
//
//   stream   := header(4) i32 version u32 nvflag pairlist
//   pairlist := pair* i32 0
//   pair     := image [nested pairlists]
//
//   image, offsets from the pair's start:
//     0   i32 nvp_size         total image bytes = align8(16 + name_sz) + align8(value_sz)
//     4   i16 nvp_name_sz      strlen(name) + 1
//     6   i16 reserved (0)
//     8   i32 nvp_value_elem
//     12  i32 nvp_type
//     16  name, NUL, zero pad to align8(16 + name_sz)
//     ..  value, zero pad to align8(value_sz)
//
// An NVLIST value is a 24-byte `nvlist_t` image {i32 version, u32 nvflag, u64 priv 0,
// u32 flag 0, i32 pad 0}; the nested list's pairs follow *after* the whole pair, ended by
// its own 4-byte zero. An NVLIST_ARRAY value is n zeroed 8-byte pointer slots and n
// images; the n pairlists follow the pair in order. A STRING_ARRAY value is n zeroed
// pointer slots followed by the NUL-terminated strings.

struct NativeReader {
    var cursor: ByteCursor
    let order: Endianness

    init(_ raw: UnsafeRawBufferPointer, position: Int, order: Endianness) {
        cursor = ByteCursor(raw, position: position)
        self.order = order
    }

    mutating func readTopLevelList() throws(FormatError) -> NVList {
        let version = try cursor.readInt32(order, "the nvlist version word")
        let flags = try cursor.readUInt32(order, "the nvlist flag word")
        var list = NVList(flags: NVList.Flags(rawValue: flags))
        list.version = version
        try readPairs(into: &list, depth: 0)
        return list
    }

    /// A nested list seen in a pair's value, whose pairs come later in the stream.
    private enum Pending {
        case one(name: String, list: NVList)
        case many(name: String, lists: [NVList])
    }

    private mutating func readPairs(into list: inout NVList, depth: Int) throws(FormatError) {
        while true {
            let start = cursor.position
            let size = Int(try cursor.readInt32(order, "a pair's size"))
            if size == 0 { return }
            guard size >= 24, size - 4 <= cursor.remaining else {
                throw FormatError(.invalidSize, "pair size \(size) is impossible with \(cursor.remaining + 4) bytes left", offset: start)
            }
            let image = UnsafeRawBufferPointer(rebasing: cursor.base[start..<(start + size)])
            cursor.position = start + size
            let (pair, pending) = try decodeImage(image, at: start)
            switch pending {
            case nil:
                list.pairs.append(pair)
            case .one(let name, var nested)?:
                try descend(depth: depth, name: name, at: start)
                try readPairs(into: &nested, depth: depth + 1)
                list.pairs.append(NVPair(pair.name, .nvlist(nested)))
            case .many(let name, var lists)?:
                try descend(depth: depth, name: name, at: start)
                for i in lists.indices { try readPairs(into: &lists[i], depth: depth + 1) }
                list.pairs.append(NVPair(pair.name, .nvlistArray(lists)))
            }
        }
    }

    private func descend(depth: Int, name: String, at offset: Int) throws(FormatError) {
        guard depth < NVList.maximumNestingDepth else {
            throw FormatError(.nestingTooDeep, "pair '\(name)' nests lists deeper than \(NVList.maximumNestingDepth) levels", offset: offset)
        }
    }

    private func decodeImage(_ image: UnsafeRawBufferPointer, at start: Int) throws(FormatError) -> (NVPair, Pending?) {
        var header = ByteCursor(image, position: 4)
        let nameSize = Int(Int16(bitPattern: try header.readUInt16(order, "a pair's name size")))
        _ = try header.readUInt16(order, "a pair's reserved word")
        let count = Int(try header.readInt32(order, "a pair's element count"))
        let typeNumber = try header.readInt32(order, "a pair's type")
        let valueOffset = NativeLayout.align8(NativeLayout.pairHeaderSize + max(nameSize, 0))
        guard nameSize > 0, valueOffset <= image.count else {
            throw FormatError(.invalidName, "pair name size \(nameSize) does not fit its \(image.count)-byte pair", offset: start + 4)
        }
        let nameBytes = UnsafeRawBufferPointer(rebasing: image[16..<(16 + nameSize)])
        guard nameBytes[nameSize - 1] == 0, nameBytes.firstIndex(of: 0) == nameSize - 1 else {
            throw FormatError(.invalidName, "pair name is not a NUL-terminated string of \(nameSize - 1) bytes", offset: start + 16)
        }
        let name = String(cBytes: UnsafeRawBufferPointer(rebasing: nameBytes[0..<(nameSize - 1)]))
        guard let type = NVPair.DataType(rawValue: typeNumber) else {
            throw FormatError(.invalidType, "pair '\(name)' has data type \(typeNumber), which OpenZFS does not define", offset: start + 12)
        }
        guard type.allows(elementCount: count) else {
            throw FormatError(.invalidType, "pair '\(name)' of type \(type) cannot hold \(count) elements", offset: start + 8)
        }
        let room = image.count - valueOffset
        guard type.nativeElementSize * count <= room else {
            throw FormatError(.invalidSize, "pair '\(name)' holds \(count) elements of type \(type), more than its size \(image.count) allows", offset: start)
        }
        var value = ByteCursor(UnsafeRawBufferPointer(rebasing: image[valueOffset...]))
        func what() -> String { "the value of pair '\(name)'" }
        var pending: Pending?
        let decoded: NVPair.Value
        switch type {
        case .boolean: decoded = .boolean
        case .byte: decoded = .byte(try value.readByte(what()))
        case .int8: decoded = .int8(Int8(bitPattern: try value.readByte(what())))
        case .uint8: decoded = .uint8(try value.readByte(what()))
        case .int16: decoded = .int16(Int16(bitPattern: try value.readUInt16(order, what())))
        case .uint16: decoded = .uint16(try value.readUInt16(order, what()))
        case .int32: decoded = .int32(try value.readInt32(order, what()))
        case .uint32: decoded = .uint32(try value.readUInt32(order, what()))
        case .booleanValue: decoded = .booleanValue(try boolean(try value.readUInt32(order, what()), name, start))
        case .int64: decoded = .int64(Int64(bitPattern: try value.readUInt64(order, what())))
        case .uint64: decoded = .uint64(try value.readUInt64(order, what()))
        case .hrtime: decoded = .hrtime(Int64(bitPattern: try value.readUInt64(order, what())))
        case .double: decoded = .double(Double(bitPattern: try value.readUInt64(order, what())))
        case .string: decoded = .string(try readCString(&value, name))
        case .byteArray: decoded = .byteArray(Array(try value.readSlice(count, what())))
        case .int8Array: decoded = .int8Array(try value.readSlice(count, what()).map { Int8(bitPattern: $0) })
        case .uint8Array: decoded = .uint8Array(Array(try value.readSlice(count, what())))
        case .int16Array:
            decoded = .int16Array(try read(count, &value) { (c) throws(FormatError) in Int16(bitPattern: try c.readUInt16(order, what())) })
        case .uint16Array:
            decoded = .uint16Array(try read(count, &value) { (c) throws(FormatError) in try c.readUInt16(order, what()) })
        case .int32Array:
            decoded = .int32Array(try read(count, &value) { (c) throws(FormatError) in try c.readInt32(order, what()) })
        case .uint32Array:
            decoded = .uint32Array(try read(count, &value) { (c) throws(FormatError) in try c.readUInt32(order, what()) })
        case .booleanArray:
            decoded = .booleanArray(try read(count, &value) { (c) throws(FormatError) in try boolean(try c.readUInt32(order, what()), name, start) })
        case .int64Array:
            decoded = .int64Array(try read(count, &value) { (c) throws(FormatError) in Int64(bitPattern: try c.readUInt64(order, what())) })
        case .uint64Array:
            decoded = .uint64Array(try read(count, &value) { (c) throws(FormatError) in try c.readUInt64(order, what()) })
        case .stringArray:
            try value.skip(8 * count, "the pointer slots of pair '\(name)'")
            decoded = .stringArray(try read(count, &value) { (c) throws(FormatError) in try readCString(&c, name) })
        case .nvlist:
            let nested = try readListImage(&value, name, start)
            pending = .one(name: name, list: nested)
            decoded = .nvlist(nested)
        case .nvlistArray:
            try value.skip(8 * count, "the pointer slots of pair '\(name)'")
            let lists = try read(count, &value) { (c) throws(FormatError) in try readListImage(&c, name, start) }
            pending = .many(name: name, lists: lists)
            decoded = .nvlistArray(lists)
        }
        // Strings are measured as read (their on-disk bytes): bytes that are not valid UTF-8 (a
        // damaged file) become U+FFFD, 3 bytes, in the Swift string.
        let valueSize: Int
        switch type {
        case .string, .stringArray: valueSize = value.position
        default: valueSize = decoded.nativeValueSize
        }
        guard room == NativeLayout.align8(valueSize) else {
            throw FormatError(.invalidSize, "pair '\(name)' is \(image.count) bytes, but its value needs \(valueOffset + NativeLayout.align8(valueSize))", offset: start)
        }
        return (NVPair(name, decoded), pending)
    }

    @inline(__always)
    private func read<T>(_ count: Int, _ cursor: inout ByteCursor, _ element: (inout ByteCursor) throws(FormatError) -> T) throws(FormatError) -> [T] {
        var values: [T] = []
        values.reserveCapacity(count)
        for _ in 0..<count { values.append(try element(&cursor)) }
        return values
    }

    private func boolean(_ word: UInt32, _ name: String, _ start: Int) throws(FormatError) -> Bool {
        switch word {
        case 0: return false
        case 1: return true
        default: throw FormatError(.invalidValue, "boolean pair '\(name)' holds \(word), not 0 or 1", offset: start)
        }
    }

    private func readCString(_ cursor: inout ByteCursor, _ name: String) throws(FormatError) -> String {
        let rest = UnsafeRawBufferPointer(rebasing: cursor.base[cursor.position...])
        guard let end = rest.firstIndex(of: 0) else {
            throw FormatError(.invalidValue, "a string of pair '\(name)' is not NUL-terminated within its pair", offset: cursor.position)
        }
        cursor.position += end + 1
        return String(cBytes: UnsafeRawBufferPointer(rebasing: rest[0..<end]))
    }

    private func readListImage(_ cursor: inout ByteCursor, _ name: String, _ start: Int) throws(FormatError) -> NVList {
        let version = try cursor.readInt32(order, "the nvlist image of pair '\(name)'")
        let flags = try cursor.readUInt32(order, "the nvlist image of pair '\(name)'")
        try cursor.skip(NativeLayout.nvlistImageSize - 8, "the nvlist image of pair '\(name)'")
        guard version == 0 else {
            throw FormatError(.invalidHeader, "the list in pair '\(name)' has version \(version); OpenZFS knows only version 0", offset: start)
        }
        return NVList(flags: NVList.Flags(rawValue: flags))
    }
}

struct NativeWriter {
    let order: Endianness
    var sink = ByteSink()
    var bytes: [UInt8] { sink.bytes }

    init(byteOrder: Endianness) {
        order = byteOrder
    }

    mutating func writeStream(_ list: NVList) throws(FormatError) {
        let total = try NVList.headerSize + 8 + NativeWriter.pairListSize(list, depth: 0)
        guard total <= Int(Int32.max) else {
            throw FormatError(.tooLarge, "the packed list would take \(total) bytes, more than a packed nvlist can hold")
        }
        sink = ByteSink(expectedCount: total)
        sink.write([NVList.Encoding.native.rawValue, order == .little ? 1 : 0, 0, 0])
        sink.writeInt32(list.version, order)
        sink.writeUInt32(list.flags.rawValue, order)
        try writePairs(list, depth: 0)
    }

    private mutating func writePairs(_ list: NVList, depth: Int) throws(FormatError) {
        for pair in list.pairs {
            try writePair(pair, depth: depth)
        }
        sink.writeZeros(4)
    }

    private mutating func writeListImage(_ list: NVList) {
        sink.writeInt32(list.version, order)
        sink.writeUInt32(list.flags.rawValue, order)
        sink.writeZeros(NativeLayout.nvlistImageSize - 8)
    }

    private mutating func writePair(_ pair: NVPair, depth: Int) throws(FormatError) {
        try validateCString(pair.name, what: "pair name '\(pair.name)'", code: .invalidName)
        guard !pair.name.isEmpty else { throw FormatError(.invalidName, "a pair name cannot be empty") }
        let value = pair.value
        let nameSize = pair.name.utf8.count + 1
        guard nameSize <= Int(Int16.max) else {
            throw FormatError(.tooLarge, "pair name '\(pair.name.prefix(40))…' is \(nameSize) bytes; OpenZFS allows fewer than 32 767")
        }
        let size = NVPair.Value.nativePairSize(nameByteCount: nameSize - 1, valueSize: value.nativeValueSize)
        let start = sink.count
        sink.writeInt32(Int32(size), order)
        sink.writeUInt16(UInt16(nameSize), order)
        sink.writeUInt16(0, order)
        sink.writeInt32(Int32(value.elementCount), order)
        sink.writeInt32(value.dataType.rawValue, order)
        sink.write(pair.name.utf8)
        sink.writeZeros(1)
        sink.padTo(multipleOf: 8, from: start)
        let valueStart = sink.count
        switch value {
        case .boolean: break
        case .byte(let v), .uint8(let v): sink.writeByte(v)
        case .int8(let v): sink.writeByte(UInt8(bitPattern: v))
        case .int16(let v): sink.writeUInt16(UInt16(bitPattern: v), order)
        case .uint16(let v): sink.writeUInt16(v, order)
        case .int32(let v): sink.writeInt32(v, order)
        case .uint32(let v): sink.writeUInt32(v, order)
        case .booleanValue(let v): sink.writeUInt32(v ? 1 : 0, order)
        case .int64(let v), .hrtime(let v): sink.writeUInt64(UInt64(bitPattern: v), order)
        case .uint64(let v): sink.writeUInt64(v, order)
        case .double(let v): sink.writeUInt64(v.bitPattern, order)
        case .string(let s):
            try validateCString(s, what: "the string value of pair '\(pair.name)'", code: .invalidValue)
            sink.write(s.utf8)
            sink.writeZeros(1)
        case .byteArray(let v), .uint8Array(let v): sink.write(v)
        case .int8Array(let v): sink.write(v.map { UInt8(bitPattern: $0) })
        case .int16Array(let v): for e in v { sink.writeUInt16(UInt16(bitPattern: e), order) }
        case .uint16Array(let v): for e in v { sink.writeUInt16(e, order) }
        case .int32Array(let v): for e in v { sink.writeInt32(e, order) }
        case .uint32Array(let v): for e in v { sink.writeUInt32(e, order) }
        case .booleanArray(let v): for e in v { sink.writeUInt32(e ? 1 : 0, order) }
        case .int64Array(let v): for e in v { sink.writeUInt64(UInt64(bitPattern: e), order) }
        case .uint64Array(let v): for e in v { sink.writeUInt64(e, order) }
        case .stringArray(let strings):
            sink.writeZeros(8 * strings.count)
            for s in strings {
                try validateCString(s, what: "a string of pair '\(pair.name)'", code: .invalidValue)
                sink.write(s.utf8)
                sink.writeZeros(1)
            }
        case .nvlist(let nested):
            writeListImage(nested)
        case .nvlistArray(let lists):
            sink.writeZeros(8 * lists.count)
            for nested in lists { writeListImage(nested) }
        }
        sink.padTo(multipleOf: 8, from: valueStart)
        switch value {
        case .nvlist(let nested):
            try descend(depth: depth, name: pair.name)
            try writePairs(nested, depth: depth + 1)
        case .nvlistArray(let lists):
            try descend(depth: depth, name: pair.name)
            for nested in lists { try writePairs(nested, depth: depth + 1) }
        default:
            break
        }
    }

    private func descend(depth: Int, name: String) throws(FormatError) {
        guard depth < NVList.maximumNestingDepth else {
            throw FormatError(.nestingTooDeep, "pair '\(name)' nests lists deeper than \(NVList.maximumNestingDepth) levels")
        }
    }

    /// The bytes of a pairlist: every pair image, nested pairlists, and the 4-byte terminator.
    static func pairListSize(_ list: NVList, depth: Int) throws(FormatError) -> Int {
        guard depth <= NVList.maximumNestingDepth else {
            throw FormatError(.nestingTooDeep, "lists nest deeper than \(NVList.maximumNestingDepth) levels")
        }
        var size = 4
        for pair in list.pairs {
            size += NVPair.Value.nativePairSize(nameByteCount: pair.name.utf8.count, valueSize: pair.value.nativeValueSize)
            switch pair.value {
            case .nvlist(let nested): size += try pairListSize(nested, depth: depth + 1)
            case .nvlistArray(let lists):
                for nested in lists { size += try pairListSize(nested, depth: depth + 1) }
            default: break
            }
        }
        return size
    }
}
