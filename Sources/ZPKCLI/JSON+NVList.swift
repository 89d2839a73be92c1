// nvlists as JSON for `zpk --json` output: names to values in order, integers exact (the JSON
// value type is ZPKControl's, the same one the control protocol carries).

import ZFSFormat
import ZPKControl

extension JSON {
    /// An nvlist as a JSON object: names to values, nested lists as objects, arrays as arrays,
    /// valueless `BOOLEAN` pairs as `true`. Integers stay exact.
    init(_ list: NVList) {
        self = .object(list.pairs.map { ($0.name, JSON($0.value)) })
    }

    init(_ value: NVPair.Value) {
        switch value {
        case .boolean: self = .bool(true)
        case .booleanValue(let b): self = .bool(b)
        case .byte(let v), .uint8(let v): self = .unsigned(UInt64(v))
        case .uint16(let v): self = .unsigned(UInt64(v))
        case .uint32(let v): self = .unsigned(UInt64(v))
        case .uint64(let v): self = .unsigned(v)
        case .int8(let v): self = .signed(Int64(v))
        case .int16(let v): self = .signed(Int64(v))
        case .int32(let v): self = .signed(Int64(v))
        case .int64(let v), .hrtime(let v): self = .signed(v)
        case .double(let v): self = .double(v)
        case .string(let s): self = .string(s)
        case .byteArray(let v), .uint8Array(let v): self = .array(v.map { .unsigned(UInt64($0)) })
        case .uint16Array(let v): self = .array(v.map { .unsigned(UInt64($0)) })
        case .uint32Array(let v): self = .array(v.map { .unsigned(UInt64($0)) })
        case .uint64Array(let v): self = .array(v.map { .unsigned($0) })
        case .int8Array(let v): self = .array(v.map { .signed(Int64($0)) })
        case .int16Array(let v): self = .array(v.map { .signed(Int64($0)) })
        case .int32Array(let v): self = .array(v.map { .signed(Int64($0)) })
        case .int64Array(let v): self = .array(v.map { .signed($0) })
        case .booleanArray(let v): self = .array(v.map { .bool($0) })
        case .stringArray(let v): self = .array(v.map { .string($0) })
        case .nvlist(let list): self = JSON(list)
        case .nvlistArray(let lists): self = .array(lists.map { JSON($0) })
        }
    }
}
