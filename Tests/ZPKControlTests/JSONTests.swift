// The one JSON value type, on both of its paths: the wire (compact, keys sorted, decoded by
// Foundation) and `zpk --json` output (pretty, members in order). The two must agree on every
// value — exact 64-bit integers above all — so a guid a script reads from `zpk --json` is the
// guid zpkd sent.

import Foundation
import Testing
import ZPKControl

@Suite struct JSONTests {
    /// A value with every case, integers at their limits, and keys out of order.
    static let sample: JSON = [
        "zeta": .unsigned(UInt64.max),
        "alpha": .signed(Int64.min),
        "guid": .unsigned(18_099_148_996_036_948_200),
        "nested": ["b": .array([.null, true, false, .double(1.5), "tab\there \"quoted\" /slash"]), "a": [:]],
        "empty": [],
    ]

    @Test func theWireAndTheOutputCarryTheSameValue() throws {
        let wire = try JSON.decode(Self.sample.encoded())
        let output = try JSON.decode(Array(Self.sample.rendered().utf8))
        #expect(wire == Self.sample)
        #expect(output == Self.sample)
        #expect(wire["zeta"] == .unsigned(18_446_744_073_709_551_615))
        #expect(output["alpha"] == .signed(-9_223_372_036_854_775_808))
        #expect(output["guid"]?.uint64Value == 18_099_148_996_036_948_200)
    }

    @Test func theWireSortsKeysAndTheOutputKeepsTheirOrder() throws {
        let value: JSON = ["b": 2, "a": 1, "c": ["y": true, "x": false]]
        #expect(String(decoding: value.encoded(), as: UTF8.self) == #"{"a":1,"b":2,"c":{"x":false,"y":true}}"#)
        #expect(value.rendered() == "{\n  \"b\": 2,\n  \"a\": 1,\n  \"c\": {\n    \"y\": true,\n    \"x\": false\n  }\n}\n")
        #expect(value.sortingKeys.rendered() == "{\n  \"a\": 1,\n  \"b\": 2,\n  \"c\": {\n    \"x\": false,\n    \"y\": true\n  }\n}\n")
        // Decoded members come out sorted; equality ignores member order.
        let decoded = try JSON.decode(value.encoded())
        #expect(decoded == value)
        #expect(decoded.rendered() == value.sortingKeys.rendered())
        #expect(Set([decoded, value]).count == 1)
    }

    @Test func dictionariesAndRepeatedKeys() {
        let members: [String: JSON] = ["pool": "tank", "guid": 7]
        #expect(JSON(members) == ["guid": 7, "pool": "tank"])
        #expect(JSON(members).objectValue == members)
        let repeated = JSON.object([("k", 1), ("k", 2)])
        #expect(repeated["k"] == 2)
        #expect(String(decoding: repeated.encoded(), as: UTF8.self) == #"{"k":2}"#)
        #expect(JSON.double(.infinity).encoded() == Array("null".utf8))
        #expect(JSON.double(.nan).rendered() == "null\n")
    }
}
