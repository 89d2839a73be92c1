// Progress events from zpkd (`{"event":"progress","phase","remaining_ms","total_ms"}`, e.g. the
// multihost activity check's countdown before an import) rendered on stderr:
//
//   bar    (stderr is a terminal)  one line redrawn in place:
//          "activity-check [##########----------]  12.3 s left"
//   json   (--json)                each event as one line of compact JSON
//   lines  (stderr is not a terminal) one line when a phase starts: "activity-check: 20.0 s"
//   silent
//
// `ZPK_PROGRESS=bar|json|lines|none` overrides the choice (tests, scripts).

import ZPKControl

#if canImport(Glibc)
import Glibc
#endif

/// Turns progress events into stderr text. Pure: returns the text, the caller writes it.
struct ProgressRenderer: Sendable {
    enum Mode: Sendable {
        case bar, json, lines, silent

        /// `ZPK_PROGRESS`, else json with --json, else a bar on a terminal, else lines.
        static func choose(json: Bool, environment: [String: String], stderrIsTerminal: Bool = isatty(2) == 1) -> Mode {
            switch environment["ZPK_PROGRESS"] {
            case "bar": return .bar
            case "json": return .json
            case "lines": return .lines
            case "none": return .silent
            default: break
            }
            if json { return .json }
            return stderrIsTerminal ? .bar : .lines
        }
    }

    /// Width of the bar between the brackets.
    static let barWidth = 30

    let mode: Mode
    private var lastPhase: String?
    private var lineIsOpen = false
    private var lastLineLength = 0

    init(mode: Mode) {
        self.mode = mode
    }

    /// The text to write for one event frame header (nil: nothing).
    mutating func render(_ event: [String: JSON]) -> String? {
        switch mode {
        case .silent:
            return nil
        case .json:
            return String(decoding: JSON(event).encoded(), as: UTF8.self) + "\n"
        case .lines, .bar:
            guard event["event"]?.stringValue == "progress" else { return nil }
            let phase = event["phase"]?.stringValue ?? "working"
            let remaining = event["remaining_ms"]?.uint64Value ?? 0
            let total = event["total_ms"]?.uint64Value ?? 0
            if mode == .lines {
                defer { lastPhase = phase }
                guard phase != lastPhase else { return nil }
                return "\(phase): \(Self.seconds(total))\n"
            }
            var text = ""
            if let lastPhase, lastPhase != phase, lineIsOpen {
                text += "\n"  // keep the finished phase's last line
            }
            lastPhase = phase
            let line = Self.barLine(phase: phase, remainingMilliseconds: remaining, totalMilliseconds: total)
            let padding = max(0, lastLineLength - line.count)
            text += "\r" + line + String(repeating: " ", count: padding)
            lastLineLength = line.count
            lineIsOpen = true
            return text
        }
    }

    /// What to write when the request ends: the newline that closes an open bar.
    mutating func finish() -> String? {
        guard lineIsOpen else { return nil }
        lineIsOpen = false
        return "\n"
    }

    /// `phase [#####-----]  12.3 s left`: the filled part is the time elapsed.
    static func barLine(phase: String, remainingMilliseconds: UInt64, totalMilliseconds: UInt64) -> String {
        let remaining = min(remainingMilliseconds, totalMilliseconds)
        let filled = totalMilliseconds == 0
            ? barWidth : Int((totalMilliseconds - remaining) * UInt64(barWidth) / totalMilliseconds)
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: barWidth - filled)
        return "\(phase) [\(bar)] \(seconds(remaining)) left"
    }

    /// Milliseconds as seconds with one decimal: "12.3 s".
    static func seconds(_ milliseconds: UInt64) -> String {
        let tenths = (milliseconds + 50) / 100
        return "\(tenths / 10).\(tenths % 10) s"
    }
}
