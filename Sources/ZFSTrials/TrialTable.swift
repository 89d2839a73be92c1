// The summary of a run of trials: the table `zpk-trials` prints at the end.

/// Verdicts of many trials, summed.
public struct TrialTable: Sendable {
    public var verdicts: [TrialVerdict] = []
    /// Wall time of each trial (setup to teardown), nanoseconds.
    public var trialDurations: [UInt64] = []
    /// The formula of the takeover bound, with the run's tunables.
    public var formulaText: String

    public init(formulaText: String) {
        self.formulaText = formulaText
    }

    public mutating func add(_ verdict: TrialVerdict, duration: UInt64) {
        verdicts.append(verdict)
        trialDurations.append(duration)
    }

    public var doubleWriters: Int { verdicts.map(\.doubleWriters).reduce(0, +) }
    public var lostObjects: Int { verdicts.map { $0.count(.lostObject) }.reduce(0, +) }
    public var falseTakeovers: Int { verdicts.map { $0.count(.falseTakeover) }.reduce(0, +) }
    public var takeovers: Int { verdicts.map(\.takeovers).reduce(0, +) }
    public var syncedWrites: Int { verdicts.map(\.syncedWrites).reduce(0, +) }
    /// The slowest takeover and its trial's bound.
    public var longestTakeover: (time: UInt64, bound: UInt64)? {
        verdicts.flatMap { v in v.takeoverTimes.map { ($0, v.takeoverBound) } }.max { $0.0 < $1.0 }
    }
    public var slowTakeovers: Int { verdicts.map(\.slowTakeovers).reduce(0, +) }
    public var passed: Bool { doubleWriters == 0 && lostObjects == 0 && falseTakeovers == 0 }

    static func seconds(_ ns: UInt64) -> String {
        let tenths = (ns + 5_000_000) / 10_000_000
        return "\(tenths / 100).\(tenths % 100 < 10 ? "0" : "")\(tenths % 100) s"
    }

    /// The table, one row per line.
    public func rendered() -> String {
        var rows: [(String, String)] = []
        rows.append(("trials", "\(verdicts.count)"))
        for kind in FaultKind.allCases {
            let mine = verdicts.filter { $0.fault == kind }
            rows.append(("  \(kind.rawValue)", "\(mine.count) (takeovers \(mine.map(\.takeovers).reduce(0, +)))"))
        }
        rows.append(("takeovers", "\(takeovers)"))
        rows.append(("false takeovers", "\(falseTakeovers)"))
        rows.append(("double writers", "\(doubleWriters)"))
        rows.append(("lost objects", "\(lostObjects) of \(syncedWrites) synced"))
        rows.append((
            "longest takeover",
            longestTakeover.map { "\(Self.seconds($0.time)) (formula \(Self.seconds($0.bound)): \(formulaText))" } ?? "-"
        ))
        rows.append(("over the formula", "\(slowTakeovers) of \(verdicts.map(\.takeoverTimes.count).reduce(0, +)) takeovers"))
        if !trialDurations.isEmpty {
            let sorted = trialDurations.sorted()
            let mean = trialDurations.reduce(0, +) / UInt64(trialDurations.count)
            rows.append(("time per trial", "mean \(Self.seconds(mean)), max \(Self.seconds(sorted.last ?? 0))"))
        }
        let width = rows.map(\.0.count).max() ?? 0
        let body = rows.map { $0.0 + String(repeating: " ", count: width - $0.0.count) + "  " + $0.1 }
        return (body + [passed ? "PASSED" : "FAILED"]).joined(separator: "\n")
    }
}

/// A seeded generator (SplitMix64): the same seed draws the same faults and instants.
public struct TrialRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
