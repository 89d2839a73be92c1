// The JSON values of control-protocol headers (docs/daemon.md §2).
//
// Headers are small JSON objects whose integers are pool and vdev guids — full 64-bit values
// that a `Double` would round. `ControlJSON` keeps every integer exact: it is decoded and encoded
// through Foundation's JSONDecoder/JSONEncoder, which read and write integer literals digit for
// digit when the Swift type is `UInt64`/`Int64`.

import Foundation

/// A JSON value with exact 64-bit integers, as carried in control-protocol headers.
public enum ControlJSON: Hashable, Sendable, Codable {
    case null
    case bool(Bool)
    /// A non-negative integer (guids, byte counts, txgs).
    case unsigned(UInt64)
    /// A negative integer.
    case signed(Int64)
    case double(Double)
    case string(String)
    case array([ControlJSON])
    case object([String: ControlJSON])

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
        } else if let value = try? container.decode([ControlJSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: ControlJSON].self))
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
        case .object(let value): try container.encode(value)
        }
    }

    /// The member `key` of an object, or nil.
    public subscript(key: String) -> ControlJSON? {
        if case .object(let members) = self { return members[key] }
        return nil
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

    public var arrayValue: [ControlJSON]? {
        if case .array(let value) = self { return value }
        return nil
    }

    public var objectValue: [String: ControlJSON]? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// Compact UTF-8 JSON with sorted keys (stable bytes for the same value).
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a ControlJSON cannot fail: every case maps to a JSON value (non-finite doubles
        // are written as null beforehand).
        return (try? Array(encoder.encode(self.finite))) ?? Array("null".utf8)
    }

    /// Decodes one JSON value.
    /// - Throws: `DecodingError` when the bytes are not JSON.
    public static func decode(_ bytes: some Collection<UInt8>) throws -> ControlJSON {
        try JSONDecoder().decode(ControlJSON.self, from: Data(bytes))
    }

    private var finite: ControlJSON {
        switch self {
        case .double(let value) where !value.isFinite: .null
        case .array(let items): .array(items.map(\.finite))
        case .object(let members): .object(members.mapValues(\.finite))
        default: self
        }
    }
}

extension ControlJSON: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: UInt64) { self = .unsigned(value) }
    public init(arrayLiteral elements: ControlJSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, ControlJSON)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
