// The text form of an nvlist that `zdb -l`, `zdb -C` and `zdb -e -CC` print.
//
// The corresponding OpenZFS function is `dump_nvlist` (`lib/libnvpair/libnvpair.c`, 2.1.11):
// one line per pair, `indent` spaces, then `name: value`; strings in single quotes;
// arrays one line per element as `name[i]: value`; nested lists as `name:` followed by
// the list indented 4 more; `BOOLEAN` as the bare name. `HRTIME`, `DOUBLE` and
// `BOOLEAN_ARRAY` are not handled by `dump_nvlist` and print "bad config type N for NAME".

extension NVList {
    /// The text `dump_nvlist(list, indent)` prints, each line ending in a newline.
    public func dumpText(indent: Int = 0) -> String {
        var out = ""
        appendDump(to: &out, indent: indent)
        return out
    }

    func appendDump(to out: inout String, indent: Int) {
        let pad = String(repeating: " ", count: indent)
        for pair in pairs {
            let name = pair.name
            func line(_ text: String) { out += pad; out += text; out += "\n" }
            func elements<T>(_ values: [T], _ format: (T) -> String) {
                for (i, v) in values.enumerated() { line("\(name)[\(i)]: \(format(v))") }
            }
            switch pair.value {
            case .boolean: line(name)
            case .booleanValue(let v): line("\(name): \(v ? "true" : "false")")
            case .byte(let v), .uint8(let v): line("\(name): \(v)")
            case .int8(let v): line("\(name): \(v)")
            case .int16(let v): line("\(name): \(v)")
            case .uint16(let v): line("\(name): \(v)")
            case .int32(let v): line("\(name): \(v)")
            case .uint32(let v): line("\(name): \(v)")
            case .int64(let v): line("\(name): \(v)")
            case .uint64(let v): line("\(name): \(v)")
            case .string(let v): line("\(name): '\(v)'")
            case .byteArray(let v), .uint8Array(let v): elements(v) { "\($0)" }
            case .int8Array(let v): elements(v) { "\($0)" }
            case .int16Array(let v): elements(v) { "\($0)" }
            case .uint16Array(let v): elements(v) { "\($0)" }
            case .int32Array(let v): elements(v) { "\($0)" }
            case .uint32Array(let v): elements(v) { "\($0)" }
            case .int64Array(let v): elements(v) { "\($0)" }
            case .uint64Array(let v): elements(v) { "\($0)" }
            case .stringArray(let v): elements(v) { "'\($0)'" }
            case .nvlist(let nested):
                line("\(name):")
                nested.appendDump(to: &out, indent: indent + 4)
            case .nvlistArray(let lists):
                for (i, nested) in lists.enumerated() {
                    line("\(name)[\(i)]:")
                    nested.appendDump(to: &out, indent: indent + 4)
                }
            case .hrtime, .double, .booleanArray:
                line("bad config type \(pair.value.dataType.rawValue) for \(name)")
            }
        }
    }
}
