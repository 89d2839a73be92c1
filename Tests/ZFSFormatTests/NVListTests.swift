import PropertyBased
import Testing
import ZFSFormat
import ZFSTestSupport

/// The packed-nvlist codecs, judged against bytes and text written by OpenZFS 2.1.11.
@Suite(.offTheCooperativePool) struct NVListFixtureTests {
    /// Label 0's config area of the fixture leaf (spec Appendix A.1: XDR, 1 960 bytes packed).
    static func labelConfigArea() throws -> [UInt8] {
        let label = try Fixtures.bytes("label0-raidz-leaf.bin")
        return Array(label[0x4000..<(0x4000 + 0x1BFD8)])
    }

    /// The lines `zdb -l` printed for label 0's config, between the header and "labels =".
    static func zdbConfigText() throws -> String {
        let lines = try Fixtures.text("label0-raidz-leaf.zdb-lu.txt").split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex(of: "LABEL 0")) + 2
        let end = try #require(lines.firstIndex(where: { $0.hasPrefix("    labels = ") }))
        return lines[start..<end].map { $0 + "\n" }.joined()
    }

    @Test func labelConfigDecodesToWhatZdbPrints() throws {
        let config = try NVList(decoding: Self.labelConfigArea())
        #expect(config.dumpText(indent: 4) == (try Self.zdbConfigText()))
        #expect(config.uint64("pool_guid") == 8_073_999_673_132_614_431)
        #expect(config.string("name") == "ztest")
        #expect(config.list("vdev_tree")?.lists("children")?.count == 4)
        #expect(config.pairs.map(\.name) == [
            "version", "name", "state", "txg", "pool_guid", "errata", "hostid", "hostname",
            "top_guid", "guid", "vdev_children", "vdev_tree", "features_for_read",
        ])
    }

    @Test func labelConfigReencodesByteForByte() throws {
        let area = try Self.labelConfigArea()
        let config = try NVList(decoding: area)
        let packed = try config.encoded(as: .xdr, byteOrder: .little)
        #expect(packed.count == 1960)
        #expect(try config.encodedSize(as: .xdr) == 1960)
        #expect(packed == Array(area[0..<1960]))
        // A big-endian writer differs only in header byte 1.
        let bigEndian = try config.encoded(as: .xdr, byteOrder: .big)
        #expect(bigEndian[1] == 0)
        #expect(Array(bigEndian[2...]) == Array(packed[2...]))
        #expect(try NVList(decoding: bigEndian) == config)
    }

    @Test func cacheFileDecodesToWhatZdbPrintsAndReencodes() throws {
        let cache = try Fixtures.bytes("zpool.cache")
        let decoded = try NVList(decoding: cache)
        #expect(decoded.dumpText() == (try Fixtures.text("zpool.cache.zdb-C-U.txt")))
        let packed = try decoded.encoded(as: .native, byteOrder: .little)
        #expect(packed == cache)
        #expect(try decoded.encodedSize(as: .native) == cache.count)
    }

    @Test func everyPrefixOfARealLabelThrowsInsteadOfTrapping() throws {
        let packed = Array(try Self.labelConfigArea()[0..<1960])
        for length in 0..<packed.count {
            #expect(throws: FormatError.self, "prefix of \(length) bytes") {
                try NVList(decoding: packed[0..<length])
            }
        }
        let cache = try Fixtures.bytes("zpool.cache")
        for length in 0..<cache.count {
            #expect(throws: FormatError.self, "prefix of \(length) bytes") {
                try NVList(decoding: cache[0..<length])
            }
        }
    }

    /// Mutated real labels and caches must decode or throw — never trap, hang or blow up.
    /// (The million-case run is `swift run -c release zpk-fuzz`; see BENCHMARKS.md.)
    @Test func mutatedRealInputsNeverTrap() throws {
        let inputs = [Array(try Self.labelConfigArea()[0..<1960]), try Fixtures.bytes("zpool.cache")]
        var rng = SplitMix64(seed: 0x5EED)
        var decodedCount = 0
        for round in 0..<20_000 {
            var bytes = inputs[round % 2]
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
                case 1: bytes[i] = UInt8.random(in: 0...255, using: &rng)
                default: bytes[i] = [0x00, 0xFF, 0x7F, 0x80][Int.random(in: 0..<4, using: &rng)]
                }
            }
            if let list = try? NVList(decoding: bytes, acceptingForeignNative: true) {
                decodedCount += 1
                // Whatever decodes must re-encode and decode to itself.
                let encoding: NVList.Encoding = bytes[0] == 1 ? .xdr : .native
                if let again = try? list.encoded(as: encoding) {
                    #expect(try NVList(decoding: again, acceptingForeignNative: true) == list)
                }
            }
        }
        // Most single-byte changes hit values, not structure: plenty must still decode.
        #expect(decodedCount > 1_000)
    }
}

/// Byte vectors from `spec/ondisk.md` §3.5 (libnvpair 2.1.11), pair "b" after the list prologue.
@Suite(.offTheCooperativePool) struct NVListVectorTests {
    static func xdrWords(_ value: NVPair.Value) throws -> [UInt32] {
        let bytes = try NVList(pairs: [NVPair("b", value)]).encoded(as: .xdr, byteOrder: .little)
        // Skip header (4), version and flag words (8); drop the 8-byte terminator.
        let body = Array(bytes[12..<(bytes.count - 8)])
        return stride(from: 0, to: body.count, by: 4).map {
            UInt32(body[$0]) << 24 | UInt32(body[$0 + 1]) << 16 | UInt32(body[$0 + 2]) << 8 | UInt32(body[$0 + 3])
        }
    }

    @Test(arguments: [
        (NVPair.Value.boolean, [0x18, 0x18, 1, 0x6200_0000, 1, 0] as [UInt32]),
        (.booleanValue(true), [0x1c, 0x20, 1, 0x6200_0000, 0x15, 1, 1]),
        (.uint64(1), [0x20, 0x20, 1, 0x6200_0000, 8, 1, 0, 1]),
        (.string("abcd"), [0x20, 0x20, 1, 0x6200_0000, 9, 1, 4, 0x6162_6364]),
        (.string(""), [0x1c, 0x20, 1, 0x6200_0000, 9, 1, 0]),
        (.byteArray([1, 2, 3]), [0x1c, 0x20, 1, 0x6200_0000, 0x0a, 3, 0x0102_0300]),
        (.uint64Array([7]), [0x24, 0x20, 1, 0x6200_0000, 0x10, 1, 1, 0, 7]),
        (.uint64Array([]), [0x1c, 0x18, 1, 0x6200_0000, 0x10, 0]),
        (.stringArray(["x", "yz"]), [0x28, 0x30, 1, 0x6200_0000, 0x11, 2, 1, 0x7800_0000, 2, 0x797a_0000]),
        (.double(1.5), [0x20, 0x20, 1, 0x6200_0000, 0x1b, 1, 0x3ff8_0000, 0]),
        (.nvlist(NVList(pairs: [NVPair("u", .uint64(3))])),
         [0x48, 0x30, 1, 0x6200_0000, 0x13, 1, 0, 1, 0x20, 0x20, 1, 0x7500_0000, 8, 1, 0, 3, 0, 0]),
    ])
    func xdrPairMatchesLibnvpair(value: NVPair.Value, words: [UInt32]) throws {
        #expect(try Self.xdrWords(value) == words)
        let packed = try NVList(pairs: [NVPair("b", value)]).encoded(as: .xdr)
        #expect(try NVList(decoding: packed).pairs == [NVPair("b", value)])
    }

    @Test func nativeBooleanAndEmptyArrayMatchLibnvpair() throws {
        let boolean = try NVList(pairs: [NVPair("b", .boolean)]).encoded(as: .native, byteOrder: .little)
        #expect(Array(boolean[12..<36]) == [0x18, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x62, 0, 0, 0, 0, 0, 0, 0])
        let empty = try NVList(pairs: [NVPair("b", .uint64Array([]))]).encoded(as: .native, byteOrder: .little)
        #expect(Array(empty[12..<28]) == [0x18, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0])
        let double = try NVList(pairs: [NVPair("b", .double(1.5))]).encoded(as: .native, byteOrder: .little)
        #expect(Array(double[36..<44]) == [0, 0, 0, 0, 0, 0, 0xf8, 0x3f])
    }

    @Test func smallIntegersDecodeFromSignExtendedWords() throws {
        // Userland libnvpair writes UINT8 0xFE as FFFFFFFE (spec §3.6); the low byte is the value.
        var packed = try NVList(pairs: [NVPair("b", .uint8(0xFE))]).encoded(as: .xdr)
        #expect(Array(packed[(packed.count - 12)..<(packed.count - 8)]) == [0, 0, 0, 0xFE])
        packed.replaceSubrange((packed.count - 12)..<(packed.count - 8), with: [0xFF, 0xFF, 0xFF, 0xFE])
        #expect(try NVList(decoding: packed)["b"] == .uint8(0xFE))
    }

    @Test("a damaged byte that makes a name or string invalid UTF-8 still decodes, as zdb prints it (sizes use the on-disk length)",
          arguments: [NVList.Encoding.xdr, .native])
    func invalidUTF8InNamesAndStringsDecodes(encoding: NVList.Encoding) throws {
        let list = NVList(pairs: [
            NVPair("errata", .uint64(0)), NVPair("hostname", .string("nodeabc")),
            NVPair("paths", .stringArray(["/dev/sda", "/dev/sdb"])), NVPair("txg", .uint64(4)),
        ])
        var packed = try list.encoded(as: encoding)
        func flip(_ text: String, at index: Int) throws {
            let needle = Array(text.utf8)
            let at = try #require((0...(packed.count - needle.count)).first { Array(packed[$0..<($0 + needle.count)]) == needle })
            packed[at + index] = 0xE1  // a lead byte with no continuation: invalid UTF-8
        }
        try flip("errata", at: 3)
        try flip("nodeabc", at: 1)  // 7 bytes + NUL: one more byte would cross an 8-byte boundary
        try flip("/dev/sda", at: 5)
        let decoded = try NVList(decoding: packed)
        #expect(decoded.pairs.map(\.name) == ["err\u{FFFD}ta", "hostname", "paths", "txg"])
        #expect(decoded["hostname"] == .string("n\u{FFFD}deabc"))
        #expect(decoded["paths"] == .stringArray(["/dev/\u{FFFD}da", "/dev/sdb"]))
        #expect(decoded["txg"] == .uint64(4))
    }

    @Test("names and strings that are not valid UTF-8 keep their bytes: zdb's text byte for byte, and a byte-identical re-encode")
    func invalidUTF8KeepsItsBytes() throws {
        let list = NVList(pairs: [
            NVPair("version", .uint64(5000)), NVPair("name", .string("tank")), NVPair("state", .uint64(0)),
            NVPair("vdev_tree", .nvlist(NVList(pairs: [NVPair("path", .string("/dev/sda")), NVPair("id", .uint64(0))]))),
            NVPair("paths", .stringArray(["/dev/sda", "/dev/sdb"])),
        ])
        var packed = try list.encoded(as: .xdr)
        func flipBit7(in text: String, at index: Int) throws {
            let needle = Array(text.utf8)
            let at = try #require((0...(packed.count - needle.count)).first { Array(packed[$0..<($0 + needle.count)]) == needle })
            packed[at + index] ^= 0x80  // one flipped bit: 's' (0x73) becomes 0xF3, a lead byte without continuation
        }
        try flipBit7(in: "state", at: 0)
        try flipBit7(in: "/dev/sda", at: 5)  // the first occurrence: vdev_tree's path
        try flipBit7(in: "/dev/sdb", at: 5)
        let decoded = try NVList(decoding: packed)
        let state = decoded.pairs[2]
        #expect(state.name == "\u{FFFD}tate")
        #expect(state.rawName == [0xF3] + Array("tate".utf8))
        #expect(decoded.pairs[0].rawName == nil && decoded.pairs[0].rawStrings == nil)
        // zdb prints `%s`: the raw byte, in the name and in strings, nested lists included.
        let expected: [UInt8] =
            Array("    version: 5000\n    name: 'tank'\n    ".utf8) + [0xF3] + Array("tate: 0\n    vdev_tree:\n        path: '/dev/".utf8)
            + [0xF3] + Array("da'\n        id: 0\n    paths[0]: '/dev/sda'\n    paths[1]: '/dev/".utf8) + [0xF3] + Array("db'\n".utf8)
        let dumped = decoded.dumpBytes(indent: 4)
        #expect(dumped == expected, "\(String(decoding: dumped, as: UTF8.self).debugDescription)")
        // The bytes go back as they came.
        #expect(try decoded.encoded(as: .xdr) == packed)
        #expect(try decoded.openZFSXDRSize() == (try list.openZFSXDRSize()))
        // Setting a name or value drops the kept bytes.
        var renamed = state
        renamed.name = "state"
        #expect(renamed.rawName == nil && renamed.nameBytes == Array("state".utf8))
    }
}

/// Round trips and refusals on generated input.
@Suite(.offTheCooperativePool) struct NVListPropertyTests {
    @Test func randomListsRoundTripInEveryEncodingAndOrder() async {
        await propertyCheck(count: 300, input: Gen.uint64()) { seed in
            var rng = SplitMix64(seed: seed)
            let list = RandomNVList.make(using: &rng)
            for encoding in [NVList.Encoding.xdr, .native] {
                for order in [Endianness.little, .big] {
                    let packed = try #require(try? list.encoded(as: encoding, byteOrder: order))
                    #expect(packed.count == (try? list.encodedSize(as: encoding)))
                    let back = try? NVList(decoding: packed, acceptingForeignNative: true)
                    #expect(back == list, "seed \(seed), \(encoding), \(order)")
                    #expect((try? back?.encoded(as: encoding, byteOrder: order)) == packed)
                }
            }
        }
    }

    @Test func scalarsRoundTrip() async {
        await propertyCheck(input: Gen.uint64(), Gen.int64()) { u, i in
            let list = NVList(pairs: [NVPair("u", .uint64(u)), NVPair("i", .int64(i)), NVPair("h", .hrtime(i))])
            for encoding in [NVList.Encoding.xdr, .native] {
                #expect((try? NVList(decoding: list.encoded(as: encoding))) == list)
            }
        }
    }

    @Test func foreignNativeIsRefusedUnlessAsked() throws {
        let foreign: Endianness = Endianness.host == .little ? .big : .little
        let packed = try NVList(pairs: [NVPair("a", .uint64(5))]).encoded(as: .native, byteOrder: foreign)
        #expect(throws: FormatError.self) { try NVList(decoding: packed) }
        #expect(try NVList(decoding: packed, acceptingForeignNative: true).uint64("a") == 5)
    }

    static func nested(_ levels: Int) -> NVList {
        var list = NVList(pairs: [NVPair("leaf", .uint64(1))])
        for _ in 0..<levels { list = NVList(pairs: [NVPair("n", .nvlist(list))]) }
        return list
    }

    @Test func nestingIsCappedAtOpenZFSUserlandLimit() throws {
        for encoding in [NVList.Encoding.xdr, .native] {
            let deepest = Self.nested(NVList.maximumNestingDepth)
            #expect(try NVList(decoding: deepest.encoded(as: encoding)) == deepest)
            let tooDeep = Self.nested(NVList.maximumNestingDepth + 1)
            let error = #expect(throws: FormatError.self) { try tooDeep.encoded(as: encoding) }
            #expect(error?.code == .nestingTooDeep)
        }
        // A hand-made XDR stream nesting 10 000 levels is refused without deep recursion.
        var stream: [UInt8] = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        let pair: [UInt8] = [0, 0, 0, 0x30, 0, 0, 0, 0x30, 0, 0, 0, 1, 0x6e, 0, 0, 0, 0, 0, 0, 0x13, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
        for _ in 0..<10_000 { stream += pair }
        let error = #expect(throws: FormatError.self) { try NVList(decoding: stream) }
        #expect(error?.code == .nestingTooDeep)
    }

    @Test func absurdCountsAreRefusedBeforeAllocating() throws {
        // A UINT64_ARRAY claiming 2^31-1 elements in a 60-byte stream.
        var packed = try NVList(pairs: [NVPair("a", .uint64Array([1]))]).encoded(as: .xdr)
        let nelemAt = 12 + 4 + 4 + 8 + 4
        packed.replaceSubrange(nelemAt..<(nelemAt + 4), with: [0x7F, 0xFF, 0xFF, 0xFF])
        let error = #expect(throws: FormatError.self) { try NVList(decoding: packed) }
        #expect(error?.code == .invalidSize)
        #expect(error?.offset != nil)
        // The same in native form.
        var native = try NVList(pairs: [NVPair("a", .uint64Array([1]))]).encoded(as: .native, byteOrder: .host)
        withUnsafeBytes(of: Int32(0x7FFF_FFFF).littleEndian) { native.replaceSubrange(20..<24, with: $0) }
        #expect(throws: FormatError.self) { try NVList(decoding: native) }
    }

    @Test func malformedStreamsNameTheProblem() throws {
        #expect(throws: FormatError.self) { try NVList(decoding: [UInt8]()) }
        let unknownEncoding = #expect(throws: FormatError.self) { try NVList(decoding: [7, 1, 0, 0, 0, 0, 0, 0]) }
        #expect(unknownEncoding?.code == .unsupportedEncoding)
        // A native string without its NUL.
        var native = try NVList(pairs: [NVPair("s", .string("abcdefg"))]).encoded(as: .native, byteOrder: .host)
        native[12 + 24 + 7] = 0x41
        let unterminated = #expect(throws: FormatError.self) { try NVList(decoding: native) }
        #expect(unterminated?.code == .invalidValue)
        // A boolean_value of 2.
        var boolean = try NVList(pairs: [NVPair("b", .booleanValue(true))]).encoded(as: .xdr)
        boolean[boolean.count - 9] = 2
        let notBoolean = #expect(throws: FormatError.self) { try NVList(decoding: boolean) }
        #expect(notBoolean?.code == .invalidValue)
        // Names with NUL cannot be encoded.
        #expect(throws: FormatError.self) { try NVList(pairs: [NVPair("a\u{0}b", .boolean)]).encoded(as: .xdr) }
    }
}
