// The checker: decides a fault trial from its evidence (TrialEvidence.swift), not from exit codes.
//
// Safety, as multihost protection promises it:
//
//   * no double writer — no two hosts have the pool writable in overlapping intervals. A host
//     holds the pool from its claim (the first `claim` progress event of its import; the request
//     itself for a create) until it is killed or takes a new tenure. Violations, each proven from
//     instants that bound the real ones on the safe side (a request is *sent* before it can
//     write; a claim event *arrives* after the claim started):
//       - overlap: a host's write was sent after another host's later claim, and it synced;
//       - heartbeat after takeover: a host's landed-heartbeat counter grew between two status
//         polls both sent after another host's later claim;
//       - forked history: a sync answered with a txg not above that of a sync answered earlier
//         (by any host) — two writers working from diverging copies of the pool;
//       - write after suspension: a host's write synced although it was sent after a status poll
//         had shown that host's pool suspended in the same tenure;
//       - untenured write: a host's write synced when it held no tenure.
//   * no lost object — every write acknowledged synced is in the pool read back from its devices
//     after the trial, with its exact bytes.
//   * no false takeover — another host's import succeeds only after the holder was killed before
//     that import's claim, or was seen suspended because its own heartbeats stopped landing.

/// One thing the checker proved wrong in a trial.
public struct TrialFinding: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        case overlappingWrite = "overlapping write"
        case heartbeatAfterTakeover = "heartbeat after takeover"
        case forkedHistory = "forked history"
        case writeAfterSuspension = "write after suspension"
        case untenuredWrite = "untenured write"
        case lostObject = "lost object"
        case falseTakeover = "false takeover"

        /// Counted in the table's "double writers" column.
        public var isDoubleWriter: Bool {
            switch self {
            case .overlappingWrite, .heartbeatAfterTakeover, .forkedHistory, .writeAfterSuspension, .untenuredWrite:
                true
            case .lostObject, .falseTakeover: false
            }
        }
    }
    public var kind: Kind
    public var detail: String
    public var description: String { "\(kind.rawValue): \(detail)" }
}

/// The checker's decision on one trial.
public struct TrialVerdict: Hashable, Sendable {
    public var trial: Int
    public var fault: FaultKind
    public var findings: [TrialFinding]
    /// Successful imports by another host than the holder.
    public var takeovers: Int
    /// Fault → import answered, for each takeover that followed the fault, nanoseconds.
    public var takeoverTimes: [UInt64]
    /// The formula's bound for this trial (``TrialEvidence/takeoverBound``).
    public var takeoverBound: UInt64
    /// Takeovers slower than the bound (availability, not safety: reported, not a finding).
    public var slowTakeovers: Int { takeoverTimes.filter { $0 > takeoverBound }.count }
    /// Writes acknowledged synced (what "lost objects" is out of).
    public var syncedWrites: Int

    public var passed: Bool { findings.isEmpty }
    public func count(_ kind: TrialFinding.Kind) -> Int { findings.filter { $0.kind == kind }.count }
    public var doubleWriters: Int { findings.filter(\.kind.isDoubleWriter).count }
}

public enum TrialChecker {
    /// Decides `evidence`.
    public static func check(_ evidence: TrialEvidence) -> TrialVerdict {
        var findings: [TrialFinding] = []
        let tenures = evidence.tenures.filter(\.succeeded).sorted { $0.writableFrom < $1.writableFrom }
        let synced = evidence.writes.filter { $0.syncedTXG != nil }
        func ms(_ ns: UInt64, from base: UInt64) -> String {
            let delta = Int64(bitPattern: ns &- base)
            return "\(delta / 1_000_000) ms"
        }
        let t0 = evidence.faultAt
        func host(_ id: TrialHostID) -> String { String(id, radix: 16) }

        /// The tenure of `host` in force at `instant` (the latest one answered by then).
        func tenure(of host: TrialHostID, at instant: UInt64) -> TenureRecord? {
            tenures.last { $0.host == host && $0.answered <= instant }
        }
        /// The end of `t`: its host's kill or next tenure, whichever comes first.
        func end(of t: TenureRecord) -> UInt64 {
            let kill = evidence.kills.filter { $0.host == t.host && $0.at >= t.sent }.map(\.at).min() ?? .max
            let next = tenures.filter { $0.host == t.host && $0.writableFrom > t.writableFrom }.map(\.sent).min() ?? .max
            return min(kill, next)
        }

        // Writes: tenure, overlap, suspension.
        for write in synced {
            guard let own = tenure(of: write.host, at: write.sent), write.sent < end(of: own) else {
                findings.append(
                    TrialFinding(
                        kind: .untenuredWrite,
                        detail: "host \(host(write.host)) synced '\(write.key)' (sent at \(ms(write.sent, from: t0))) without holding the pool"))
                continue
            }
            if let rival = tenures.first(where: {
                $0.host != write.host && $0.writableFrom > own.writableFrom && write.sent > $0.writableFrom
            }) {
                findings.append(
                    TrialFinding(
                        kind: .overlappingWrite,
                        detail: "host \(host(write.host)) synced '\(write.key)' (txg \(write.syncedTXG ?? 0)) sent at "
                            + "\(ms(write.sent, from: t0)), after host \(host(rival.host)) claimed the pool at \(ms(rival.writableFrom, from: t0))"))
            }
            if let poll = evidence.statuses.first(where: {
                $0.host == write.host && $0.answered >= own.answered && $0.answered < write.sent
                    && { if case .suspended = $0.state { return true } else { return false } }($0)
            }) {
                findings.append(
                    TrialFinding(
                        kind: .writeAfterSuspension,
                        detail: "host \(host(write.host)) synced '\(write.key)' sent at \(ms(write.sent, from: t0)), after its "
                            + "pool was seen suspended at \(ms(poll.answered, from: t0))"))
            }
        }

        // Heartbeats that landed after another host's claim.
        for own in tenures {
            let stop = end(of: own)
            let polls = evidence.statuses.filter {
                $0.host == own.host && $0.heartbeatsWritten != nil && $0.sent >= own.answered && $0.answered <= stop
            }
                .sorted { $0.sent < $1.sent }
            for rival in tenures where rival.host != own.host && rival.writableFrom > own.writableFrom {
                let after = polls.filter { $0.sent > rival.writableFrom }
                guard let first = after.first,
                    let grown = after.first(where: { ($0.heartbeatsWritten ?? 0) > (first.heartbeatsWritten ?? 0) })
                else { continue }
                findings.append(
                    TrialFinding(
                        kind: .heartbeatAfterTakeover,
                        detail: "host \(host(own.host)) landed heartbeats \(first.heartbeatsWritten ?? 0) → \(grown.heartbeatsWritten ?? 0) "
                            + "between \(ms(first.sent, from: t0)) and \(ms(grown.answered, from: t0)), after host "
                            + "\(host(rival.host)) claimed the pool at \(ms(rival.writableFrom, from: t0))"))
            }
        }

        // The pool's own history: txgs grow with time across every host.
        let byAnswer = synced.sorted { $0.answered < $1.answered }
        var forkReported = Set<String>()
        for later in synced {
            guard let txg = later.syncedTXG else { continue }
            if let earlier = byAnswer.last(where: { $0.answered < later.sent && ($0.syncedTXG ?? 0) >= txg }),
                forkReported.insert(later.key).inserted
            {
                findings.append(
                    TrialFinding(
                        kind: .forkedHistory,
                        detail: "host \(host(later.host)) synced '\(later.key)' as txg \(txg) (sent at \(ms(later.sent, from: t0))) "
                            + "after host \(host(earlier.host)) had synced '\(earlier.key)' as txg \(earlier.syncedTXG ?? 0) "
                            + "(answered at \(ms(earlier.answered, from: t0)))"))
            }
        }

        // Lost objects.
        switch evidence.finalPool {
        case .failure(let error):
            for write in synced {
                findings.append(
                    TrialFinding(kind: .lostObject, detail: "'\(write.key)' (txg \(write.syncedTXG ?? 0)): the pool could not be read back: \(error.message)"))
            }
        case .success(let objects):
            for write in synced {
                switch objects[write.key] {
                case nil:
                    findings.append(
                        TrialFinding(
                            kind: .lostObject,
                            detail: "'\(write.key)' synced by host \(host(write.host)) as txg \(write.syncedTXG ?? 0) is not in the pool"))
                case .damaged(let reason)?:
                    findings.append(
                        TrialFinding(kind: .lostObject, detail: "'\(write.key)' synced by host \(host(write.host)) is damaged: \(reason)"))
                case .intact(let bytes)? where bytes != TrialPayload.bytes(for: write.key):
                    findings.append(
                        TrialFinding(
                            kind: .lostObject,
                            detail: "'\(write.key)' synced by host \(host(write.host)) reads back with other bytes "
                                + "(\(String(decoding: bytes.prefix(24), as: UTF8.self))…)"))
                case .intact?:
                    break
                }
            }
        }

        // Takeovers, false ones, and their times.
        var takeovers = 0
        var times: [UInt64] = []
        for (index, taker) in tenures.enumerated() where !taker.isCreate {
            guard let holder = tenures[..<index].last(where: { $0.host != taker.host }) else { continue }
            takeovers += 1
            if taker.sent >= evidence.faultAt { times.append(taker.answered &- evidence.faultAt) }
            let killed = evidence.kills.contains { $0.host == holder.host && $0.at >= holder.sent && $0.at <= taker.writableFrom }
            let suspended = evidence.statuses.contains {
                $0.host == holder.host && $0.answered >= holder.answered && $0.answered <= taker.answered
                    && $0.state == .suspended(heartbeatsFailed: true)
            }
            if !killed && !suspended {
                findings.append(
                    TrialFinding(
                        kind: .falseTakeover,
                        detail: "host \(host(taker.host)) imported the pool (claim at \(ms(taker.writableFrom, from: t0)), answered at "
                            + "\(ms(taker.answered, from: t0))) while holder \(host(holder.host)) was neither killed nor seen suspended "
                            + "for failed heartbeats"))
            }
        }
        return TrialVerdict(
            trial: evidence.trial, fault: evidence.fault, findings: findings, takeovers: takeovers, takeoverTimes: times,
            takeoverBound: evidence.takeoverBound,
            syncedWrites: synced.count)
    }
}
