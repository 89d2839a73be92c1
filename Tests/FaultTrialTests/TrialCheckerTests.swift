// The checker on synthetic evidence: a clean takeover passes, and each kind of violation is
// flagged — so the fault trials cannot pass vacuously.

import Testing
import ZFSTrials

private let a: TrialHostID = 0xA1
private let b: TrialHostID = 0xB2
private let ms: UInt64 = 1_000_000

/// Host a creates the pool at 0, writes twice, is killed at 1000 ms; b imports (claim at
/// 3500 ms, answered 4500 ms) and writes once. The pool holds all three objects.
private func cleanTakeover() -> TrialEvidence {
    let k1 = TrialPayload.key(host: a, sequence: 1)
    let k2 = TrialPayload.key(host: a, sequence: 2)
    let k3 = TrialPayload.key(host: b, sequence: 1)
    return TrialEvidence(
        trial: 1, seed: 7, fault: .killHolder, faultDetail: "", faultAt: 1000 * ms, hosts: [a, b],
        tenures: [
            TenureRecord(host: a, isCreate: true, sent: 0, claimSeen: nil, answered: 10 * ms, outcome: .imported(txg: 4)),
            TenureRecord(host: b, isCreate: false, sent: 1000 * ms, claimSeen: 3500 * ms, answered: 4500 * ms, outcome: .imported(txg: 6)),
        ],
        writes: [
            WriteRecord(host: a, key: k1, sent: 100 * ms, answered: 110 * ms, outcome: .synced(txg: 5)),
            WriteRecord(host: a, key: k2, sent: 200 * ms, answered: 210 * ms, outcome: .synced(txg: 6)),
            WriteRecord(host: a, key: "ha1-3", sent: 990 * ms, answered: 1000 * ms, outcome: .unknown),
            WriteRecord(host: b, key: k3, sent: 4600 * ms, answered: 4610 * ms, outcome: .synced(txg: 8)),
        ],
        statuses: [
            StatusRecord(host: a, sent: 500 * ms, answered: 501 * ms, state: .active, heartbeatsWritten: 5),
            StatusRecord(host: b, sent: 4700 * ms, answered: 4701 * ms, state: .active, heartbeatsWritten: 1),
            StatusRecord(host: b, sent: 4800 * ms, answered: 4801 * ms, state: .active, heartbeatsWritten: 2),
        ],
        kills: [KillRecord(host: a, at: 1000 * ms)],
        finalPool: .success([
            k1: .intact(TrialPayload.bytes(for: k1)), k2: .intact(TrialPayload.bytes(for: k2)),
            k3: .intact(TrialPayload.bytes(for: k3)),
        ]),
        takeoverBound: 3500 * ms)
}

@Suite("Fault-trial checker on synthetic evidence")
struct TrialCheckerTests {
    @Test("a clean takeover after a kill passes and is timed from the fault")
    func cleanTakeoverPasses() {
        let verdict = TrialChecker.check(cleanTakeover())
        #expect(verdict.findings == [])
        #expect(verdict.takeovers == 1)
        #expect(verdict.takeoverTimes == [3500 * ms])
        #expect(verdict.slowTakeovers == 0)
        var slow = cleanTakeover()
        slow.takeoverBound = 3000 * ms
        #expect(TrialChecker.check(slow).slowTakeovers == 1)
        #expect(verdict.syncedWrites == 3)
    }

    @Test("the old holder syncing after the new holder's claim is a double writer")
    func overlappingWriteIsFlagged() {
        var evidence = cleanTakeover()
        evidence.kills = []
        // a was not killed but suspended (so the takeover itself is legitimate) — and still wrote.
        evidence.statuses.append(StatusRecord(host: a, sent: 2000 * ms, answered: 2001 * ms, state: .suspended(heartbeatsFailed: true), heartbeatsWritten: 9))
        evidence.writes.append(WriteRecord(host: a, key: "ha1-9", sent: 3600 * ms, answered: 3610 * ms, outcome: .synced(txg: 7)))
        evidence.finalPool = evidence.finalPool.map { var o = $0; o["ha1-9"] = .intact(TrialPayload.bytes(for: "ha1-9")); return o }
        let verdict = TrialChecker.check(evidence)
        #expect(verdict.count(.overlappingWrite) == 1)
        #expect(verdict.count(.writeAfterSuspension) == 1)
        #expect(verdict.count(.falseTakeover) == 0)
        #expect(verdict.doubleWriters >= 2)
    }

    @Test("a refused write sent after the claim is no double writer")
    func refusedWriteIsNotFlagged() {
        var evidence = cleanTakeover()
        evidence.writes.append(WriteRecord(host: a, key: "ha1-9", sent: 3600 * ms, answered: 3610 * ms, outcome: .refused(code: "poolSuspended")))
        #expect(TrialChecker.check(evidence).findings == [])
    }

    @Test("heartbeats landing after another host's claim are a double writer")
    func heartbeatAfterTakeoverIsFlagged() {
        var evidence = cleanTakeover()
        evidence.kills = []  // a stayed alive, and its heartbeats kept landing after b's claim
        evidence.statuses += [
            StatusRecord(host: a, sent: 3600 * ms, answered: 3601 * ms, state: .active, heartbeatsWritten: 30),
            StatusRecord(host: a, sent: 3700 * ms, answered: 3701 * ms, state: .active, heartbeatsWritten: 31),
        ]
        let verdict = TrialChecker.check(evidence)
        #expect(verdict.count(.heartbeatAfterTakeover) == 1)
        // The same counter standing still after the claim is fine.
        evidence.statuses[evidence.statuses.count - 1].heartbeatsWritten = 30
        #expect(TrialChecker.check(evidence).count(.heartbeatAfterTakeover) == 0)
        // A record without a count (from the log) proves nothing either way.
        evidence.statuses[evidence.statuses.count - 2].heartbeatsWritten = nil
        evidence.statuses[evidence.statuses.count - 1].heartbeatsWritten = 31
        #expect(TrialChecker.check(evidence).count(.heartbeatAfterTakeover) == 0)
    }

    @Test("a txg that does not grow across hosts is a forked history")
    func forkedHistoryIsFlagged() {
        var evidence = cleanTakeover()
        evidence.writes[3].outcome = .synced(txg: 6)
        let verdict = TrialChecker.check(evidence)
        #expect(verdict.count(.forkedHistory) == 1)
        #expect(verdict.doubleWriters == 1)
    }

    @Test("a synced object missing, damaged or with other bytes is lost; an unacknowledged one is not")
    func lostObjectsAreFlagged() {
        var evidence = cleanTakeover()
        guard case .success(var objects) = evidence.finalPool else { Issue.record("fixture"); return }
        objects.removeValue(forKey: "ha1-1")
        objects["ha1-2"] = .damaged("checksum mismatch")
        objects["hb2-1"] = .intact(TrialPayload.bytes(for: "ha1-1"))
        evidence.finalPool = .success(objects)
        let verdict = TrialChecker.check(evidence)
        #expect(verdict.count(.lostObject) == 3)
        #expect(verdict.doubleWriters == 0)

        evidence.finalPool = .failure(FinalPoolError("no valid uberblock"))
        #expect(TrialChecker.check(evidence).count(.lostObject) == 3)
    }

    @Test("an import while the holder was neither killed nor suspended for failed heartbeats is a false takeover")
    func falseTakeoverIsFlagged() {
        var evidence = cleanTakeover()
        evidence.fault = .latency
        evidence.kills = []
        #expect(TrialChecker.check(evidence).count(.falseTakeover) == 1)
        // Killed only after the taker's claim: still false (the holder was alive during the check).
        evidence.kills = [KillRecord(host: a, at: 3600 * ms)]
        #expect(TrialChecker.check(evidence).count(.falseTakeover) == 1)
        // Suspended by a foreign heartbeat (the taker's claim) does not excuse it either.
        evidence.kills = []
        evidence.statuses.append(StatusRecord(host: a, sent: 4000 * ms, answered: 4001 * ms, state: .suspended(heartbeatsFailed: false), heartbeatsWritten: 9))
        #expect(TrialChecker.check(evidence).count(.falseTakeover) == 1)
        // Suspended for failed heartbeats before the import answered: a takeover, not a false one.
        evidence.statuses.append(StatusRecord(host: a, sent: 2000 * ms, answered: 2001 * ms, state: .suspended(heartbeatsFailed: true), heartbeatsWritten: 9))
        #expect(TrialChecker.check(evidence).count(.falseTakeover) == 0)
    }

    @Test("a write synced by a host that never imported is untenured")
    func untenuredWriteIsFlagged() {
        var evidence = cleanTakeover()
        evidence.writes.append(WriteRecord(host: b, key: "hb2-0", sent: 2000 * ms, answered: 2010 * ms, outcome: .synced(txg: 7)))
        let verdict = TrialChecker.check(evidence)
        #expect(verdict.count(.untenuredWrite) == 1)
    }

    @Test("the table counts findings and fails on any")
    func tableCounts() {
        var table = TrialTable(formulaText: "interval 100 ms × fail 10")
        table.add(TrialChecker.check(cleanTakeover()), duration: 8000 * ms)
        #expect(table.passed)
        var bad = cleanTakeover()
        bad.writes[3].outcome = .synced(txg: 6)
        table.add(TrialChecker.check(bad), duration: 9000 * ms)
        #expect(!table.passed)
        #expect(table.doubleWriters == 1)
        let text = table.rendered()
        #expect(text.contains("double writers"))
        #expect(text.hasSuffix("FAILED"))
        #expect(text.contains("3.50 s (formula 3.50 s: interval 100 ms × fail 10)"))
        #expect(tableValue(text, "over the formula") == "0 of 2 takeovers")
    }

    @Test("the seeded generator repeats")
    func seededRandomRepeats() {
        var x = TrialRandom(seed: 42), y = TrialRandom(seed: 42)
        #expect((0..<8).map { _ in x.next() } == (0..<8).map { _ in y.next() })
    }
}
