/// A bounds-checked reading position in untrusted bytes.
///
/// Follows NIO's `ByteBuffer` habits: `read…` advances the cursor, every multi-byte read
/// names its byte order, and a read past the end throws `.truncated` with the offset of the
/// read instead of trapping. Offsets are relative to the start of the buffer handed in.
struct ByteCursor {
    let base: UnsafeRawBufferPointer
    var position: Int

    init(_ base: UnsafeRawBufferPointer, position: Int = 0) {
        self.base = base
        self.position = position
    }

    var remaining: Int { base.count - position }

    @inline(__always)
    func require(_ count: Int, for what: @autoclosure () -> String) throws(FormatError) {
        guard count >= 0, count <= remaining else {
            throw FormatError(.truncated, "\(what()) needs \(count) bytes but only \(max(remaining, 0)) remain", offset: position)
        }
    }

    @inline(__always)
    mutating func readUInt32(_ order: Endianness, _ what: @autoclosure () -> String) throws(FormatError) -> UInt32 {
        try require(4, for: what())
        let raw = base.loadUnaligned(fromByteOffset: position, as: UInt32.self)
        position += 4
        return order == .big ? UInt32(bigEndian: raw) : UInt32(littleEndian: raw)
    }

    @inline(__always)
    mutating func readInt32(_ order: Endianness, _ what: @autoclosure () -> String) throws(FormatError) -> Int32 {
        Int32(bitPattern: try readUInt32(order, what()))
    }

    @inline(__always)
    mutating func readUInt64(_ order: Endianness, _ what: @autoclosure () -> String) throws(FormatError) -> UInt64 {
        try require(8, for: what())
        let raw = base.loadUnaligned(fromByteOffset: position, as: UInt64.self)
        position += 8
        return order == .big ? UInt64(bigEndian: raw) : UInt64(littleEndian: raw)
    }

    @inline(__always)
    mutating func readUInt16(_ order: Endianness, _ what: @autoclosure () -> String) throws(FormatError) -> UInt16 {
        try require(2, for: what())
        let raw = base.loadUnaligned(fromByteOffset: position, as: UInt16.self)
        position += 2
        return order == .big ? UInt16(bigEndian: raw) : UInt16(littleEndian: raw)
    }

    @inline(__always)
    mutating func readByte(_ what: @autoclosure () -> String) throws(FormatError) -> UInt8 {
        try require(1, for: what())
        defer { position += 1 }
        return base[position]
    }

    /// Returns the next `count` bytes without copying them and advances past them.
    @inline(__always)
    mutating func readSlice(_ count: Int, _ what: @autoclosure () -> String) throws(FormatError) -> UnsafeRawBufferPointer {
        try require(count, for: what())
        let slice = UnsafeRawBufferPointer(rebasing: base[position..<(position + count)])
        position += count
        return slice
    }

    @inline(__always)
    mutating func skip(_ count: Int, _ what: @autoclosure () -> String) throws(FormatError) {
        try require(count, for: what())
        position += count
    }
}

/// An output buffer with explicit byte order, the mirror of ``ByteCursor``.
///
/// Storage is zero-filled ahead of the write position (to the size the writer expects, then
/// doubling), so zero words and padding only advance ``count``; every write is one store into
/// already-allocated memory instead of an `Array.append(contentsOf:)` of a few bytes.
struct ByteSink {
    /// Invariant: `storage[count...]` is all zeros.
    private var storage: [UInt8]
    /// The number of bytes written: the offset of the next write.
    private(set) var count = 0

    init(expectedCount: Int = 0) {
        storage = [UInt8](repeating: 0, count: max(expectedCount, 0))
    }

    /// The bytes written.
    var bytes: [UInt8] {
        count == storage.count ? storage : Array(storage[..<count])
    }

    @inline(__always) private mutating func makeRoom(_ n: Int) {
        if count + n > storage.count {
            storage.append(contentsOf: repeatElement(0, count: max(count + n - storage.count, storage.count)))
        }
    }
    @inline(__always) private mutating func store<T: FixedWidthInteger>(_ v: T) {
        makeRoom(MemoryLayout<T>.size)
        let at = count
        storage.withUnsafeMutableBytes { $0.storeBytes(of: v, toByteOffset: at, as: T.self) }
        count += MemoryLayout<T>.size
    }
    @inline(__always) mutating func writeByte(_ v: UInt8) { store(v) }
    @inline(__always) mutating func writeUInt32(_ v: UInt32, _ order: Endianness) {
        store(order == .big ? v.bigEndian : v.littleEndian)
    }
    @inline(__always) mutating func writeInt32(_ v: Int32, _ order: Endianness) {
        writeUInt32(UInt32(bitPattern: v), order)
    }
    @inline(__always) mutating func writeUInt64(_ v: UInt64, _ order: Endianness) {
        store(order == .big ? v.bigEndian : v.littleEndian)
    }
    @inline(__always) mutating func writeUInt16(_ v: UInt16, _ order: Endianness) {
        store(order == .big ? v.bigEndian : v.littleEndian)
    }
    @inline(__always) mutating func write(_ raw: UnsafeRawBufferPointer) {
        guard raw.count > 0 else { return }
        makeRoom(raw.count)
        let at = count
        storage.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: at).copyMemory(from: raw.baseAddress!, byteCount: raw.count) }
        count += raw.count
    }
    @inline(__always) mutating func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }
    @inline(__always) mutating func write(_ utf8: String.UTF8View) {
        if let done: Void = utf8.withContiguousStorageIfAvailable({ write(UnsafeRawBufferPointer($0)) }) {
            return done
        }
        for b in utf8 { writeByte(b) }
    }
    /// Zero bytes: storage past ``count`` is already zero, so this only advances.
    @inline(__always) mutating func writeZeros(_ n: Int) {
        guard n > 0 else { return }
        makeRoom(n)
        count += n
    }
    @inline(__always) mutating func padTo(multipleOf alignment: Int, from start: Int) {
        let used = count - start
        writeZeros((alignment - used % alignment) % alignment)
    }
    @inline(__always) mutating func setUInt32(_ v: UInt32, _ order: Endianness, at offset: Int) {
        let e = order == .big ? v.bigEndian : v.littleEndian
        storage.withUnsafeMutableBytes { $0.storeBytes(of: e, toByteOffset: offset, as: UInt32.self) }
    }
}

extension String {
    /// Makes a Swift string from C-string bytes (no NUL inside), as OpenZFS hands them out.
    @inline(__always)
    init(cBytes: UnsafeRawBufferPointer) {
        self = String(decoding: cBytes, as: UTF8.self)
    }
}
