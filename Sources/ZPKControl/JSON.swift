// The one JSON value of ZPoolKit: control-protocol headers on the wire (docs/daemon.md §2) and
// the `--json` output of `zpk`.
//
// Pool and vdev guids are full 64-bit values that a `Double` would round, so integers stay
// exact on both paths. Objects keep their members in order: `zpk` prints keys in a documented
// order, while the wire sorts them (stable bytes for the same value). Two objects are equal when
// they have the same members, whatever the order, so a header decoded from the wire equals the
// literal that made it.
//
// Wire: ``JSON/encoded()`` and ``JSON/decode(_:)`` go through Foundation's JSONEncoder and
// JSONDecoder, which read and write integer literals digit for digit when the Swift type is
// `UInt64`/`Int64`. Output: ``JSON/rendered()`` is our own pretty printer (two-space indent,
// members in order).

import Foundation

/// A JSON value with exact 64-bit integers and ordered object members.
public enum JSON: Sendable {
    case null
    case bool(Bool)
    /// A non-negative integer (guids, byte counts, txgs).
    case unsigned(UInt64)
    /// A negative integer (or any signed value a caller chose to keep signed).
    case signed(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    /// Members in order. A key should appear once; if it appears again, the last one counts.
    case object([(String, JSON)])

    /// An object of `members`, keys sorted (the order the wire uses).
    public init(_ members: [String: JSON]) {
        self = .object(members.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    /// The member `key` of an object (the last, if it repeats), or nil.
    public subscript(key: String) -> JSON? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.0 == key }?.1
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var uint64Value: UInt64? {
        switch self {
        case .unsigned(let value): value
        case .signed(let value) where value >= 0: UInt64(value)
        default: nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSON]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// An object's members by key (the last of a repeated key), or nil.
    public var objectValue: [String: JSON]? {
        guard case .object(let members) = self else { return nil }
        return Self.dictionary(members)
    }

    /// The same value with every object's keys sorted (and repeated keys collapsed).
    public var sortingKeys: JSON {
        switch self {
        case .array(let items): .array(items.map(\.sortingKeys))
        case .object(let members): JSON(Self.dictionary(members).mapValues(\.sortingKeys))
        default: self
        }
    }

    private static func dictionary(_ members: [(String, JSON)]) -> [String: JSON] {
        Dictionary(members, uniquingKeysWith: { _, last in last })
    }
}

// MARK: Equality

extension JSON: Hashable {
    /// Objects compare by their members, not their order; doubles as Swift compares them.
    public static func == (lhs: JSON, rhs: JSON) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.unsigned(let a), .unsigned(let b)): a == b
        case (.signed(let a), .signed(let b)): a == b
        case (.double(let a), .double(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): dictionary(a) == dictionary(b)
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let value): hasher.combine(1); hasher.combine(value)
        case .unsigned(let value): hasher.combine(2); hasher.combine(value)
        case .signed(let value): hasher.combine(3); hasher.combine(value)
        case .double(let value): hasher.combine(4); hasher.combine(value)
        case .string(let value): hasher.combine(5); hasher.combine(value)
        case .array(let value): hasher.combine(6); hasher.combine(value)
        case .object(let members): hasher.combine(7); hasher.combine(Self.dictionary(members))
        }
    }
}

// MARK: The wire

extension JSON: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(UInt64.self) {
            self = .unsigned(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .signed(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSON].self) {
            self = .array(value)
        } else {
            self = JSON(try container.decode([String: JSON].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .unsigned(let value): try container.encode(value)
        case .signed(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let members): try container.encode(Self.dictionary(members))
        }
    }

    /// Compact UTF-8 JSON with sorted keys (stable bytes for the same value): the wire form.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a JSON value cannot fail: every case maps to a JSON value (non-finite doubles
        // are written as null beforehand).
        return (try? Array(encoder.encode(self.finite))) ?? Array("null".utf8)
    }

    /// Decodes one JSON value; object members come out sorted by key.
    /// - Throws: `DecodingError` when the bytes are not JSON.
    public static func decode(_ bytes: some Collection<UInt8>) throws -> JSON {
        try JSONDecoder().decode(JSON.self, from: Data(bytes))
    }

    private var finite: JSON {
        switch self {
        case .double(let value) where !value.isFinite: .null
        case .array(let items): .array(items.map(\.finite))
        case .object(let members): .object(members.map { ($0.0, $0.1.finite) })
        default: self
        }
    }
}

// MARK: Output for people and scripts

extension JSON {
    /// Pretty-printed with two-space indentation, members in order, ending in a newline: the
    /// `--json` output of `zpk`.
    public func rendered() -> String {
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

extension JSON: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: UInt64) { self = .unsigned(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    /// Members in the literal's order.
    public init(dictionaryLiteral elements: (String, JSON)...) { self = .object(elements) }
}
