// The text form of an nvlist that `zdb -l`, `zdb -C` and `zdb -e -CC` print.
//
// The corresponding OpenZFS function is `dump_nvlist` (`lib/libnvpair/libnvpair.c`, 2.1.11):
// one line per pair, `indent` spaces, then `name: value`; strings in single quotes;
// arrays one line per element as `name[i]: value`; nested lists as `name:` followed by
// the list indented 4 more; `BOOLEAN` as the bare name. `HRTIME`, `DOUBLE` and
// `BOOLEAN_ARRAY` are not handled by `dump_nvlist` and print "bad config type N for NAME".
//
// zdb prints names and strings with `%s`: their bytes as they are, valid UTF-8 or not (a
// damaged label). ``NVList/dumpBytes(indent:)`` does the same from `NVPair.rawName` and
// `NVPair.rawStrings`; ``NVList/dumpText(indent:)`` is that text as a Swift string (a byte that
// is not valid UTF-8 becomes U+FFFD there).

extension NVList {
    /// The text `dump_nvlist(list, indent)` prints, each line ending in a newline. Bytes that are
    /// not valid UTF-8 become U+FFFD; ``dumpBytes(indent:)`` keeps them.
    public func dumpText(indent: Int = 0) -> String {
        String(decoding: dumpBytes(indent: indent), as: UTF8.self)
    }

    /// The bytes `dump_nvlist(list, indent)` prints: names and strings exactly as they were in the
    /// packed list (zdb prints them with `%s`), each line ending in a newline.
    public func dumpBytes(indent: Int = 0) -> [UInt8] {
        var out: [UInt8] = []
        appendDump(to: &out, indent: indent)
        return out
    }

    func appendDump(to out: inout [UInt8], indent: Int) {
        for pair in pairs {
            let name = pair.nameBytes
            func line(_ parts: [UInt8]...) {
                out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent))
                for part in parts { out.append(contentsOf: part) }
                out.append(UInt8(ascii: "\n"))
            }
            func text(_ s: String) -> [UInt8] { Array(s.utf8) }
            func elements<T>(_ values: [T], _ format: (T) -> String) {
                for (i, v) in values.enumerated() { line(name, text("[\(i)]: \(format(v))")) }
            }
            func scalar(_ v: some CustomStringConvertible) { line(name, text(": \(v)")) }
            let quote = [UInt8(ascii: "'")]
            switch pair.value {
            case .boolean: line(name)
            case .booleanValue(let v): line(name, text(": \(v ? "true" : "false")"))
            case .byte(let v), .uint8(let v): scalar(v)
            case .int8(let v): scalar(v)
            case .int16(let v): scalar(v)
            case .uint16(let v): scalar(v)
            case .int32(let v): scalar(v)
            case .uint32(let v): scalar(v)
            case .int64(let v): scalar(v)
            case .uint64(let v): scalar(v)
            case .string:
                line(name, text(": '"), pair.stringBytes?.first ?? [], quote)
            case .byteArray(let v), .uint8Array(let v): elements(v) { "\($0)" }
            case .int8Array(let v): elements(v) { "\($0)" }
            case .int16Array(let v): elements(v) { "\($0)" }
            case .uint16Array(let v): elements(v) { "\($0)" }
            case .int32Array(let v): elements(v) { "\($0)" }
            case .uint32Array(let v): elements(v) { "\($0)" }
            case .int64Array(let v): elements(v) { "\($0)" }
            case .uint64Array(let v): elements(v) { "\($0)" }
            case .stringArray:
                for (i, s) in (pair.stringBytes ?? []).enumerated() { line(name, text("[\(i)]: '"), s, quote) }
            case .nvlist(let nested):
                line(name, text(":"))
                nested.appendDump(to: &out, indent: indent + 4)
            case .nvlistArray(let lists):
                for (i, nested) in lists.enumerated() {
                    line(name, text("[\(i)]:"))
                    nested.appendDump(to: &out, indent: indent + 4)
                }
            case .hrtime, .double, .booleanArray:
                line(text("bad config type \(pair.value.dataType.rawValue) for "), name)
            }
        }
    }
}
