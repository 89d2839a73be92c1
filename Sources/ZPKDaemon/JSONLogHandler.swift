// zpkd's `--log-format json`: a swift-log handler that writes one JSON object per line, for
// log shippers (journald's JSON, Loki, Elasticsearch). docs/daemon.md §0 "Logs".
//
// Shape: {"time":"2026-12-04T16:50:01.123Z","level":"info","label":"zpkd","source":"ZFSPool",
// "message":"…", then every metadata key at the top level ("pool.name":"tank", …)}. Keys
// keep the dotted names the code logs with; the five fixed keys come first, then metadata
// sorted by key, so lines diff cleanly. Metadata given as a string stays a JSON string;
// integers, doubles and booleans given as `.stringConvertible` become JSON numbers and
// booleans (the MMP events log their timings that way); nested dictionaries and arrays nest.
// A line is written with a single write(2), so lines of concurrent tasks never interleave
// (stderr is unbuffered; writes of less than PIPE_BUF to a pipe are atomic, and journald
// reads zpkd's stderr through a stream socket, one write at a time).

import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Writes each log event as one line of JSON.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    private let label: String
    private let write: @Sendable (String) -> Void
    private let now: @Sendable () -> (seconds: Int, nanoseconds: Int)

    /// A handler that writes to standard error.
    public static func standardError(label: String) -> JSONLogHandler {
        JSONLogHandler(label: label, write: { line in Self.writeAll(line, to: 2) })
    }

    /// - Parameters:
    ///   - label: the logger's label (`"label"` of every line).
    ///   - write: receives each line, newline included.
    ///   - now: the wall clock (seconds and nanoseconds since the epoch); injected by tests.
    public init(
        label: String, write: @escaping @Sendable (String) -> Void,
        now: @escaping @Sendable () -> (seconds: Int, nanoseconds: Int) = JSONLogHandler.realtime
    ) {
        self.label = label
        self.write = write
        self.now = now
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        let time = now()
        var line = "{\"time\":\"\(Self.iso8601(seconds: time.seconds, nanoseconds: time.nanoseconds))\""
        line += ",\"level\":\"\(event.level.rawValue)\",\"label\":"
        Self.appendString(label, to: &line)
        line += ",\"source\":"
        Self.appendString(event.source, to: &line)
        line += ",\"message\":"
        Self.appendString(event.message.description, to: &line)
        for key in merged.keys.sorted() where !["time", "level", "label", "source", "message"].contains(key) {
            line += ","
            Self.appendString(key, to: &line)
            line += ":"
            Self.append(merged[key]!, to: &line)
        }
        line += "}\n"
        write(line)
    }

    // MARK: Rendering

    static func append(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let text):
            appendString(text, to: &out)
        case .stringConvertible(let convertible):
            switch convertible {
            case let number as any BinaryInteger: out += "\(number)"
            case let number as Double where number.isFinite: out += "\(number)"
            case let flag as Bool: out += flag ? "true" : "false"
            default: appendString(convertible.description, to: &out)
            }
        case .dictionary(let members):
            out += "{"
            for (index, key) in members.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                appendString(key, to: &out)
                out += ":"
                append(members[key]!, to: &out)
            }
            out += "}"
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                append(item, to: &out)
            }
            out += "]"
        }
    }

    /// A JSON string literal (RFC 8259 §7): quote, backslash and control characters escaped.
    static func appendString(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// `2026-12-04T16:50:01.123Z` (UTC, milliseconds).
    public static func iso8601(seconds: Int, nanoseconds: Int) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let millis = nanoseconds / 1_000_000
        let fraction = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):"
            + "\(two(parts.tm_min)):\(two(parts.tm_sec)).\(fraction)Z"
    }

    @Sendable public static func realtime() -> (seconds: Int, nanoseconds: Int) {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return (Int(spec.tv_sec), Int(spec.tv_nsec))
    }

    /// Writes `line` with as few write(2) calls as the kernel allows (one, for a log line).
    static func writeAll(_ line: String, to descriptor: Int32) {
        var bytes = Array(line.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            if written <= 0 { return }
            bytes = bytes.dropFirst(written)
        }
    }
}
