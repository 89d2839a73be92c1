import Logging
import Synchronization
import Testing
import ZFSFormat
import ZFSTestSupport
@testable import ZFSMultihost

/// Draws 0 from every `random(in: 0..<n)` (Lemire's method: 1 × n has high word 0 and a low
/// word ≥ n, so nothing is rejected; a generator returning 0 would be rejected forever).
struct ZeroRNG: RandomNumberGenerator, Sendable { mutating func next() -> UInt64 { 1 } }
/// Draws n − 1 from every `random(in: 0..<n)`: the largest extension (249 ‰).
struct MaxRNG: RandomNumberGenerator, Sendable { mutating func next() -> UInt64 { .max } }

/// A probe whose answers are a function of virtual time, recording when it was read.
final class ScriptedProbe: ActivityProbe {
    let clock: ManualClock
    let script: @Sendable (Duration) -> ProbeReading?
    let reads = Mutex<[Duration]>([])
    init(clock: ManualClock, _ script: @escaping @Sendable (Duration) -> ProbeReading?) { self.clock = clock; self.script = script }
    func readBestUberblock() throws -> ProbeReading? {
        let now = clock.now.offset
        reads.withLock { $0.append(now) }
        return script(now)
    }
}

func reading(_ ub: Uberblock, host: String = "nodeA", hostID: UInt32 = 0xA, state: PoolStateValue = .active) -> ProbeReading {
    ProbeReading(uberblock: ub, label: ProbeLabel(host: LabelHost(hostname: host, hostID: hostID), state: state))
}

/// Runs `driver.run` while advancing the clock from deadline to deadline.
func drive(_ clock: ManualClock, _ body: @escaping @Sendable () async throws -> ActivityVerdict) async throws -> ActivityVerdict {
    try await withThrowingTaskGroup(of: ActivityVerdict?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            await clock.advanceWhileRunning()
            return nil
        }
        var result: ActivityVerdict?
        for try await v in group { if let v { result = v; group.cancelAll() } }
        return try #require(result)
    }
}

@Suite(.offTheCooperativePool, .timeLimit(.minutes(5))) struct ActivityCheckDriverTests {
    let ub = mmpUB(txg: 100, ts: 1000, interval: 100, seq: 3, fail: 10, delay: 100_000_000)

    func driver(_ probe: ScriptedProbe, clock: ManualClock, localHostID: UInt32 = 0xB, rng: some RandomNumberGenerator & Sendable = ZeroRNG(), tunables: MultihostTunables = .init()) -> ActivityCheckDriver {
        ActivityCheckDriver(
            configuration: .init(pool: "tank", localHostID: localHostID, tunables: tunables), probe: probe, clock: clock,
            wallClock: WallClock { .seconds(1000) + clock.now.offset }, random: rng, logger: Logger(label: "test"))
    }

    @Test func quietPoolEndsExactlyAtTheDeadlinePollingAtTheWriterInterval() async throws {
        let clock = ManualClock()
        let ub = self.ub
        let probe = ScriptedProbe(clock: clock) { _ in reading(ub) }
        let d = driver(probe, clock: clock)
        let progress = Mutex<[ActivityProgress]>([])
        let verdict = try await drive(clock) { try await d.run { p in progress.withLock { $0.append(p) } } }
        guard case .noActivity(let waited, let plan, _) = verdict else { Issue.record("\(verdict)"); return }
        #expect(plan.durationCase == .failIntervals && plan.duration == .seconds(2) && plan.extendedDuration == .seconds(2))
        #expect(waited == .seconds(2))
        // one read to decide, then a poll every 100 ms from 0 through exactly 2 s
        #expect(probe.reads.withLock { $0 } == [.zero] + (0...20).map { .milliseconds(100 * $0) })
        #expect(progress.withLock { $0.first } == ActivityProgress(phase: .activityCheck, elapsed: .zero, remaining: .seconds(2), total: .seconds(2)))
        #expect(progress.withLock { $0.last?.remaining } == .zero)
        #expect(plan.reason.contains("every 100 ms and suspends itself after 10 intervals"))
    }

    @Test func extensionUpperBound() async throws {
        let clock = ManualClock()
        let ub = self.ub
        let probe = ScriptedProbe(clock: clock) { _ in reading(ub) }
        let plan = driver(probe, clock: clock, rng: MaxRNG()).plan(for: ub)
        #expect(plan.extensionPerMille == 249)
        #expect(plan.extendedDuration == .milliseconds(2498))
    }

    @Test(arguments: [
        ("txg", mmpUB(txg: 101, ts: 1000, interval: 100, seq: 3, fail: 10, delay: 100_000_000)),
        ("timestamp", mmpUB(txg: 100, ts: 1001, interval: 100, seq: 1, fail: 10, delay: 100_000_000)),
        ("sequence", mmpUB(txg: 100, ts: 1000, interval: 100, seq: 4, fail: 10, delay: 100_000_000)),
    ])
    func changeIsSeenAtTheNextPoll(field: String, changed: Uberblock) async throws {
        let clock = ManualClock()
        let ub = self.ub
        let probe = ScriptedProbe(clock: clock) { t in reading(t >= .milliseconds(1050) ? changed : ub) }
        let verdict = try await drive(clock) { try await driver(probe, clock: clock).run() }
        guard case .active(let host, _) = verdict else { Issue.record("\(field): \(verdict)"); return }
        #expect(host.detectedAfter == .milliseconds(1100))
        #expect(host.hostname == "nodeA" && host.hostID == 0xA)
        #expect(host.intervalInMilliseconds == 100 && host.failIntervals == 10)
        #expect(host.changed == changed)
        // Seen by the read at 1.1 s and reported at once; the read before (1.0 s) still showed `ub`.
        #expect(host.lastHeartbeatAge == .zero)
        #expect(host.lastHeartbeatResolution == .milliseconds(100))
    }

    /// The writer heartbeats every 100 ms; its uberblocks carry whole-second stamps. Seen at
    /// 1.7 s of virtual time and reported at 1.707 s (wall clock 1001.707 s), the age from
    /// `ub_timestamp` (1001) would read "707 ms"; the age from this host's reads is the time
    /// since the read that saw the change (a read that takes 7 ms here), within the 100 ms
    /// between two reads.
    @Test func heartbeatAgeComesFromThisHostsReadsNotTheSecondsStamp() async throws {
        let clock = ManualClock()
        let ub = mmpUB(txg: 100, ts: 1001, interval: 100, seq: 3, fail: 10, delay: 100_000_000)
        let changed = mmpUB(txg: 100, ts: 1001, interval: 100, seq: 4, fail: 10, delay: 100_000_000)
        let probe = ScriptedProbe(clock: clock) { t in
            guard t >= .milliseconds(1700) else { return reading(ub) }
            clock.advance(by: .milliseconds(7))  // a slow read: the report comes 7 ms after it began
            return reading(changed)
        }
        let verdict = try await drive(clock) { try await driver(probe, clock: clock).run() }
        guard case .active(let host, _) = verdict else { Issue.record("\(verdict)"); return }
        #expect(host.detectedAfter == .milliseconds(1700))
        #expect(host.lastHeartbeatAge == .milliseconds(7))
        #expect(host.lastHeartbeatResolution == .milliseconds(100))
        #expect(host.lastHeartbeatText == "this host saw its newest heartbeat 7 ms ago (written at most 100 ms before that, between two of this host's reads)")
    }

    @Test func sharedHostIDIsRecognised() {
        let host = ActiveHost(
            hostname: "clone", hostID: 0xB, lastHeartbeatAge: .zero, intervalInMilliseconds: 100, failIntervals: 10,
            mmpDelay: .zero, detectedAfter: .zero, reference: ub, changed: nil)
        #expect(host.sharesHostID(with: 0xB))
        #expect(!host.sharesHostID(with: 0xC))
        #expect(!host.sharesHostID(with: 0))
    }

    @Test func changeJustAfterTheDeadlineIsNotSeen() async throws {
        let clock = ManualClock()
        let ub = self.ub
        let changed = mmpUB(txg: 101, interval: 100)
        let probe = ScriptedProbe(clock: clock) { t in reading(t > .seconds(2) ? changed : ub) }
        let verdict = try await drive(clock) { try await driver(probe, clock: clock).run() }
        guard case .noActivity = verdict else { Issue.record("\(verdict)"); return }
        // …and one at the deadline is
        let probe2 = ScriptedProbe(clock: ManualClock()) { _ in nil }
        _ = probe2
        let clock3 = ManualClock()
        let probe3 = ScriptedProbe(clock: clock3) { t in reading(t >= .seconds(2) ? changed : ub) }
        let verdict3 = try await drive(clock3) { try await driver(probe3, clock: clock3).run() }
        guard case .active(let host, _) = verdict3 else { Issue.record("\(verdict3)"); return }
        #expect(host.detectedAfter == .seconds(2))
    }

    @Test func requiredRulesAndHostIDZero() async throws {
        let clock = ManualClock()
        let off = mmpUB(delay: 0)
        let p1 = ScriptedProbe(clock: clock) { _ in reading(off) }
        guard case .notRequired(.multihostOff, _) = try await driver(p1, clock: clock).run() else { Issue.record("off"); return }
        let ub = self.ub
        let p2 = ScriptedProbe(clock: clock) { _ in reading(ub) }
        guard case .refusedNoHostID = try await driver(p2, clock: clock, localHostID: 0).run() else { Issue.record("hostid 0"); return }
        let p3 = ScriptedProbe(clock: clock) { _ in reading(ub, hostID: 0xB, state: .exported) }
        guard case .notRequired(.exportedBySameHost, _) = try await driver(p3, clock: clock).run() else { Issue.record("exported here"); return }
        let p4 = ScriptedProbe(clock: clock) { _ in nil }
        await #expect(throws: MultihostError.self) { try await driver(p4, clock: clock).run() }
        #expect(p2.reads.withLock { $0.count } == 1)  // no waiting
    }

    @Test func durationCasesReachThePlan() {
        let clock = ManualClock()
        let probe = ScriptedProbe(clock: clock) { _ in nil }
        let local = MultihostTunables(intervalInMilliseconds: 100, importIntervals: 20)
        let d = driver(probe, clock: clock, tunables: local)
        #expect(d.plan(for: mmpUB(interval: 200, fail: 0, delay: 172_000_000)).duration == .milliseconds(7440))
        #expect(d.plan(for: mmpUB(interval: nil, seq: nil, fail: nil, delay: 10_000_000)).durationCase == .legacyWriter)
        #expect(d.plan(for: mmpUB(magic: 0)).duration == .seconds(2))
        #expect(d.plan(for: mmpUB(interval: 5000)).pollInterval == .seconds(1))
    }

    @Test func cancellationInterrupts() async throws {
        let clock = ManualClock()
        let ub = self.ub
        let probe = ScriptedProbe(clock: clock) { _ in reading(ub) }
        let d = driver(probe, clock: clock)
        let task = Task { try await d.run() }
        await clock.waitForSleepers(1)
        task.cancel()
        guard case .interrupted(let elapsed, _) = try await task.value else { Issue.record("not interrupted"); return }
        #expect(elapsed == .zero)
    }
}

/// A claim writer over a shared "disk": the best uberblock is the last one written, unless a
/// rival overwrites it.
final class ClaimDisk: ClaimWriter, ActivityProbe {
    let best: Mutex<Uberblock>
    let written = Mutex<[Uberblock]>([])
    let counts: Mutex<ClaimWriteCounts>
    let rival: Mutex<(round: Int, ub: Uberblock)?> = Mutex(nil)
    init(_ ub: Uberblock, counts: ClaimWriteCounts = .init(required: 2, issued: 2, good: 2)) {
        best = Mutex(ub); self.counts = Mutex(counts)
    }
    func writeClaim(_ uberblock: Uberblock) throws -> ClaimWriteCounts {
        let n = written.withLock { $0.append(uberblock); return $0.count }
        best.withLock { $0 = uberblock }
        if let r = rival.withLock({ $0 }), r.round == n { best.withLock { $0 = r.ub } }
        return counts.withLock { $0 }
    }
    func readBestUberblock() throws -> ProbeReading? { reading(best.withLock { $0 }) }
}

@Suite(.offTheCooperativePool, .timeLimit(.minutes(5))) struct ClaimTests {
    let ub = mmpUB(txg: 100, ts: 1000, interval: 100, seq: 3, fail: 10, delay: 100_000_000)

    func claim(_ disk: ClaimDisk, clock: ManualClock, reference: Uberblock? = nil) async -> ClaimOutcome {
        let d = ActivityCheckDriver(configuration: .init(pool: "tank", localHostID: 0xB), probe: disk, clock: clock, random: SplitMix64(seed: 5), logger: Logger(label: "t"))
        let ref = reference ?? ub
        return await withTaskGroup(of: ClaimOutcome?.self) { group in
            group.addTask { await d.claim(reference: ref, writer: disk) }
            group.addTask {
                await clock.advanceWhileRunning()
                return nil
            }
            var out: ClaimOutcome = .interrupted
            for await o in group { if let o { out = o; group.cancelAll() } }
            return out
        }
    }

    @Test func tenRoundsOfRandomSequencesThenRestore() async {
        let disk = ClaimDisk(ub)
        let clock = ManualClock()
        let outcome = await claim(disk, clock: clock)
        #expect(outcome == .claimed(duration: .seconds(1)))
        let w = disk.written.withLock { $0 }
        #expect(w.count == 11)
        #expect(w.prefix(10).allSatisfy { ($0.mmpSequence ?? 0) > 3 && $0.txg == ub.txg && $0.timestampInSeconds == ub.timestampInSeconds })
        #expect(w.last == ub)   // original restored
    }

    @Test func rivalClaimIsDetected() async {
        let disk = ClaimDisk(ub)
        var theirs = ub
        theirs.mmpConfig = ub.mmpConfig.settingSequence(60_000)
        disk.rival.withLock { $0 = (3, theirs) }
        let outcome = await claim(disk, clock: ManualClock())
        #expect(outcome == .activityDetected(round: 3, found: theirs))
        #expect(disk.written.withLock { $0.last } == ub)
    }

    @Test func writeShortfalls() async {
        #expect(await claim(ClaimDisk(ub, counts: .init(required: 2, issued: 1, good: 1)), clock: ManualClock()) == .devicesMissing(.init(required: 2, issued: 1, good: 1)))
        #expect(await claim(ClaimDisk(ub, counts: .init(required: 2, issued: 2, good: 1)), clock: ManualClock()) == .writeFailed(.init(required: 2, issued: 2, good: 1)))
        #expect(ActivityCheck.claimWriteFailure(.init(required: 0, issued: 0, good: 0)) == .writeFailed(.init(required: 0, issued: 0, good: 0)))
    }

    @Test func changedOnDiskAndNotEnabled() async {
        var other = ub; other.txg = TXG(101)
        #expect(await claim(ClaimDisk(other), clock: ManualClock()) == .changedOnDisk(found: other))
        let legacy = mmpUB(interval: nil, seq: nil, fail: nil)
        #expect(await claim(ClaimDisk(legacy), clock: ManualClock(), reference: legacy) == .notEnabled)
    }

    @Test func claimSequenceBounds() {
        var zero = ZeroRNG()
        #expect(ActivityCheck.claimSequence(base: 3, using: &zero) == 4)
        #expect(ActivityCheck.claimSequence(base: 65535, using: &zero) == 1)   // exhausted: restart at 0
        var max = MaxRNG()
        #expect(ActivityCheck.claimSequence(base: 3, using: &max) == 65535)
        #expect(ActivityCheck.claimSequence(base: 65534, using: &max) == 65535)
        var rng = SplitMix64(seed: 11)
        for _ in 0..<1000 { let s = ActivityCheck.claimSequence(base: 100, using: &rng); #expect(s > 100) }
    }

    @Test func verifyPhase() {
        let ub = mmpUB(txg: 100, ts: 1000, seq: 7)
        #expect(ActivityCheck.verify(.init(txg: TXG(100), timestampInSeconds: 1000, sequence: 7), against: ub))
        #expect(!ActivityCheck.verify(.init(txg: TXG(100), timestampInSeconds: 1000, sequence: 8), against: ub))
        #expect(!ActivityCheck.verify(.init(txg: TXG(100), timestampInSeconds: 1000, sequence: 0), against: mmpUB(seq: nil)))
    }
}

@Suite(.offTheCooperativePool, .timeLimit(.minutes(5))) struct ClearCheckTests {
    let ub = mmpUB(txg: 100, ts: 1000, interval: 100, seq: 3, fail: 10, delay: 100_000_000)

    func clear(_ probe: ScriptedProbe, clock: ManualClock, isOurs: @escaping @Sendable (Uberblock) -> Bool) async throws -> ClearVerdict {
        let d = ActivityCheckDriver(configuration: .init(pool: "tank", localHostID: 0xA), probe: probe, clock: clock, random: ZeroRNG(), logger: Logger(label: "t"))
        return try await withThrowingTaskGroup(of: ClearVerdict?.self) { group in
            group.addTask { try await d.clearCheck(isOurs: isOurs) }
            group.addTask {
                await clock.advanceWhileRunning()
                return nil
            }
            var out: ClearVerdict = .refused(.interrupted)
            for try await v in group { if let v { out = v; group.cancelAll() } }
            return out
        }
    }

    @Test func allowedWhenOursAndQuietForTheWholeDuration() async throws {
        let clock = ManualClock()
        let ub = self.ub
        let probe = ScriptedProbe(clock: clock) { _ in reading(ub, hostID: 0xA) }
        #expect(try await clear(probe, clock: clock) { $0 == ub } == .allowed(waited: .seconds(2)))
    }

    @Test func refusals() async throws {
        let clock = ManualClock()
        let ub = self.ub
        let other = ScriptedProbe(clock: clock) { _ in reading(ub, hostID: 0xB) }
        #expect(try await clear(other, clock: clock) { _ in true } == .refused(.otherHostID(LabelHost(hostname: "nodeA", hostID: 0xB))))
        let noLabel = ScriptedProbe(clock: clock) { _ in ProbeReading(uberblock: ub, label: nil) }
        #expect(try await clear(noLabel, clock: clock) { _ in true } == .refused(.labelMissing))
        let f0 = mmpUB(fail: 0)
        let neverSuspends = ScriptedProbe(clock: clock) { _ in reading(f0, hostID: 0xA) }
        #expect(try await clear(neverSuspends, clock: clock) { _ in true } == .refused(.notProtected))
        let notOurs = ScriptedProbe(clock: clock) { _ in reading(ub, hostID: 0xA) }
        #expect(try await clear(notOurs, clock: clock) { _ in false } == .refused(.changed(ub)))
        let c2 = ManualClock()
        let changed = mmpUB(txg: 100, ts: 1000, interval: 100, seq: 9, fail: 10, delay: 100_000_000)
        let busy = ScriptedProbe(clock: c2) { t in reading(t >= .milliseconds(300) ? changed : ub, hostID: 0xA) }
        guard case .refused(.activity(let host)) = try await clear(busy, clock: c2, isOurs: { $0 == ub }) else { Issue.record("activity not seen"); return }
        #expect(host.detectedAfter == .milliseconds(300))
    }
}
