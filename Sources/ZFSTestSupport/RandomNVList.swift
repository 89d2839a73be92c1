import ZFSFormat

/// Builds random nvlists that use every data type, for round-trip and fuzz tests.
public enum RandomNVList {
    /// A random list, nested at most `depth` levels, with pairs of every type.
    public static func make(using rng: inout SplitMix64, depth: Int = 3, maximumPairs: Int = 8) -> NVList {
        var list = NVList(flags: .uniqueName)
        let count = Int.random(in: 0...maximumPairs, using: &rng)
        for index in 0..<count {
            let name = randomName(using: &rng) + "\(index)"
            list.append(name, value(using: &rng, depth: depth))
        }
        return list
    }

    static func randomName(using rng: inout SplitMix64) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz_.:-0123456789")
        let length = Int.random(in: 0...12, using: &rng)
        return String((0..<length).map { _ in letters[Int.random(in: 0..<letters.count, using: &rng)] })
    }

    static func randomString(using rng: inout SplitMix64) -> String {
        // Any non-NUL bytes that are valid UTF-8, including multi-byte scalars.
        let pieces = ["a", "Z", "/", " ", "é", "ß", "字", "🙂", "'", "\\", "\t", "x"]
        let length = Int.random(in: 0...9, using: &rng)
        return (0..<length).map { _ in pieces[Int.random(in: 0..<pieces.count, using: &rng)] }.joined()
    }

    static func array<T>(_ rng: inout SplitMix64, _ element: (inout SplitMix64) -> T) -> [T] {
        let count = Int.random(in: 0...5, using: &rng)
        var values: [T] = []
        for _ in 0..<count { values.append(element(&rng)) }
        return values
    }

    /// A random value of a random type; nested lists only while `depth > 0`.
    public static func value(using rng: inout SplitMix64, depth: Int) -> NVPair.Value {
        let types = NVPair.DataType.allCases.filter { depth > 0 || ($0 != .nvlist && $0 != .nvlistArray) }
        let type = types[Int.random(in: 0..<types.count, using: &rng)]
        func u64(_ r: inout SplitMix64) -> UInt64 { r.next() }
        switch type {
        case .boolean: return .boolean
        case .byte: return .byte(UInt8.random(in: .min ... .max, using: &rng))
        case .int16: return .int16(Int16.random(in: .min ... .max, using: &rng))
        case .uint16: return .uint16(UInt16.random(in: .min ... .max, using: &rng))
        case .int32: return .int32(Int32.random(in: .min ... .max, using: &rng))
        case .uint32: return .uint32(UInt32.random(in: .min ... .max, using: &rng))
        case .int64: return .int64(Int64(bitPattern: rng.next()))
        case .uint64: return .uint64(rng.next())
        case .string: return .string(randomString(using: &rng))
        case .byteArray: return .byteArray(array(&rng) { UInt8.random(in: .min ... .max, using: &$0) })
        case .int16Array: return .int16Array(array(&rng) { Int16.random(in: .min ... .max, using: &$0) })
        case .uint16Array: return .uint16Array(array(&rng) { UInt16.random(in: .min ... .max, using: &$0) })
        case .int32Array: return .int32Array(array(&rng) { Int32.random(in: .min ... .max, using: &$0) })
        case .uint32Array: return .uint32Array(array(&rng) { UInt32.random(in: .min ... .max, using: &$0) })
        case .int64Array: return .int64Array(array(&rng) { Int64(bitPattern: $0.next()) })
        case .uint64Array: return .uint64Array(array(&rng, u64))
        case .stringArray: return .stringArray(array(&rng) { randomString(using: &$0) })
        case .hrtime: return .hrtime(Int64(bitPattern: rng.next()))
        case .nvlist: return .nvlist(make(using: &rng, depth: depth - 1, maximumPairs: 4))
        case .nvlistArray: return .nvlistArray(array(&rng) { make(using: &$0, depth: depth - 1, maximumPairs: 3) })
        case .booleanValue: return .booleanValue(Bool.random(using: &rng))
        case .int8: return .int8(Int8.random(in: .min ... .max, using: &rng))
        case .uint8: return .uint8(UInt8.random(in: .min ... .max, using: &rng))
        case .booleanArray: return .booleanArray(array(&rng) { Bool.random(using: &$0) })
        case .int8Array: return .int8Array(array(&rng) { Int8.random(in: .min ... .max, using: &$0) })
        case .uint8Array: return .uint8Array(array(&rng) { UInt8.random(in: .min ... .max, using: &$0) })
        // Finite values only: NaN != NaN would make equality-based round trips meaningless.
        case .double: return .double(Double(Int64.random(in: -1_000_000...1_000_000, using: &rng)) / 7)
        }
    }
}
