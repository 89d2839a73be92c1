// A small JSON writer with exact 64-bit integers.
//
// Scripts read pool and vdev guids (full 64-bit values) from `--json` output; a writer that
// goes through `Double` would round them. This one keeps every integer exact and writes keys
// in the order given, so output is stable from run to run.

import ZFSFormat

/// A JSON value whose integers are exact.
enum JSON: Equatable {
    case null
    case bool(Bool)
    case unsigned(UInt64)
    case signed(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    static func == (lhs: JSON, rhs: JSON) -> Bool { lhs.rendered() == rhs.rendered() }

    /// Pretty-printed with two-space indentation, ending in a newline.
    func rendered() -> String {
        var out = ""
        write(to: &out, indent: 0)
        out += "\n"
        return out
    }

    private func write(to out: inout String, indent: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .unsigned(let u): out += String(u)
        case .signed(let i): out += String(i)
        case .double(let d): out += d.isFinite ? "\(d)" : "null"
        case .string(let s): JSON.writeString(s, to: &out)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "[\n"
            for (i, item) in items.enumerated() {
                out += String(repeating: " ", count: indent + 2)
                item.write(to: &out, indent: indent + 2)
                out += i == items.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: " ", count: indent) + "]"
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            out += "{\n"
            for (i, (key, value)) in members.enumerated() {
                out += String(repeating: " ", count: indent + 2)
                JSON.writeString(key, to: &out)
                out += ": "
                value.write(to: &out, indent: indent + 2)
                out += i == members.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: " ", count: indent) + "}"
        }
    }

    private static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20:
                let hex = String(c.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

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
