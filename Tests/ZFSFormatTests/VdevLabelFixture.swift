import Testing
import ZFSFormat
import ZFSTestSupport

/// Facts and helpers shared by the label, uberblock and checksum suites.
///
/// The fixture is label 0 of leaf `ztest.0a` of a 4 x 128 MiB raidz1 written by OpenZFS 2.1.11
/// (`Tests/Fixtures/README.md`, `shared/spec/ondisk.md` Appendix A).
enum LabelFixture {
    /// The size of the device the fixture label came from.
    static let deviceSize: UInt64 = 128 << 20
    /// The top-level raidz's ashift (1 KiB uberblock slots, 128 per ring).
    static let ashift: UInt64 = 9
    /// The packed length of the config nvlist in the label (Appendix A.1).
    static let packedConfigByteCount = 1960
    /// Slots that hold no uberblock (txgs that changed nothing; Appendix A.3).
    static let emptySlots: Set<Int> = [59, 61, 62, 64, 65, 66, 67, 69]

    /// The 256 KiB of label 0.
    static func label0() throws -> [UInt8] { try Fixtures.bytes("label0-raidz-leaf.bin") }

    /// The packed config nvlist of label 0 (1960 bytes).
    static func packedConfig() throws -> [UInt8] {
        Array(try label0()[0x4000..<(0x4000 + packedConfigByteCount)])
    }

    /// Bytes from a hex dump: every hex digit counts, everything else is ignored.
    static func hex(_ text: String) -> [UInt8] {
        let digits = text.compactMap(\.hexDigitValue)
        return stride(from: 0, to: digits.count - 1, by: 2).map { UInt8(digits[$0] << 4 | digits[$0 + 1]) }
    }

    /// Bytes from `xxd`-style rows ("0003a000: 0cb1 ba00 ...  comment"): the address and the
    /// comment after two spaces are dropped.
    static func xxdRows(_ rows: String) -> [UInt8] {
        rows.split(separator: "\n").flatMap { row -> [UInt8] in
            guard let colon = row.firstIndex(of: ":") else { return [] }
            let rest = row[row.index(after: colon)...].drop(while: { $0 == " " })
            let data = rest.split(separator: "  ", maxSplits: 1).first ?? ""
            return hex(String(data))
        }
    }

    /// One `Uberblock[N]` entry of `zdb -lu` output.
    struct ZdbUberblock: Equatable {
        var slot: Int
        var fields: [String: String] = [:]
        var labels: String = ""
    }

    /// Every `Uberblock[N]` entry in `zdb -lu` output, in order.
    static func zdbUberblocks(_ text: String) -> [ZdbUberblock] {
        var result: [ZdbUberblock] = []
        for line in text.split(separator: "\n") {
            let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
            if trimmed.hasPrefix("Uberblock["), let close = trimmed.firstIndex(of: "]"),
                let slot = Int(trimmed[trimmed.index(trimmed.startIndex, offsetBy: 10)..<close])
            {
                result.append(ZdbUberblock(slot: slot))
            } else if !result.isEmpty, line.hasPrefix("\t"), let equals = trimmed.firstIndex(of: "=") {
                let key = trimmed[..<equals].trimmingSpaces
                let value = trimmed[trimmed.index(after: equals)...].trimmingSpaces
                result[result.count - 1].fields[key] = value
            } else if !result.isEmpty, trimmed.hasPrefix("labels = "), result[result.count - 1].labels.isEmpty {
                result[result.count - 1].labels = trimmed.dropFirst("labels = ".count).trimmingSpaces
            }
        }
        return result
    }

    /// A typical 2.1.11 uberblock for tests that need one (the fixture's best, re-stamped).
    static func sampleUberblock(txg: UInt64, timestamp: UInt64, byteOrder: Endianness = .little) throws -> Uberblock {
        let label = try label0()
        var uberblock = try Uberblock(decoding: label[0x3A000..<0x3A400])
        uberblock.txg = TXG(txg)
        uberblock.timestampInSeconds = timestamp
        uberblock.byteOrder = byteOrder
        return uberblock
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
