import Testing
import ZFSFormat
@testable import ZFSMultihost

func mmpUB(txg: UInt64 = 100, ts: UInt64 = 1000, interval: UInt64? = 1000, seq: UInt16? = 0, fail: UInt16? = 10, delay: UInt64 = 1_000_000_000, magic: UInt64 = MMPConfig.magic) -> Uberblock {
    Uberblock(txg: TXG(txg), guidSum: 1, timestampInSeconds: ts, mmpMagic: magic, mmpDelayInNanoseconds: delay,
              mmpConfig: MMPConfig(writeIntervalInMilliseconds: interval, sequence: seq, failIntervals: fail))
}

func isSuspend(_ a: HeartbeatStateMachine.Action) -> Bool {
    if case .suspend = a { return true }
    return false
}

@Suite struct TunablesTests {
    @Test func defaultsAndClamps() {
        let t = MultihostTunables()
        #expect(t.intervalInMilliseconds == 1000 && t.failIntervals == 10 && t.importIntervals == 20)
        let s = MultihostTunables(intervalInMilliseconds: 50, failIntervals: 1, importIntervals: 0)
        #expect(s.effectiveIntervalInMilliseconds == 100)
        #expect(s.effectiveFailIntervals == 2)
        #expect(s.effectiveImportIntervals == 1)
        #expect(MultihostTunables(failIntervals: 0).effectiveFailIntervals == 0)
        // heartbeat carries clamped values, sync raw (spec §0.5, 50/1 → 100/2 vs 50/1)
        #expect(s.heartbeatConfig(sequence: 3).writeIntervalInMilliseconds == 100)
        #expect(s.heartbeatConfig(sequence: 3).failIntervals == 2)
        #expect(s.syncConfig.writeIntervalInMilliseconds == 50 && s.syncConfig.failIntervals == 1)
        #expect(MultihostTunables().syncConfig.rawValue == 0xA_0000_0003_E807)
        // ondisk §5.4 observed values
        #expect(MultihostTunables(failIntervals: 0).syncConfig.rawValue == 0x3E807)
        #expect(MultihostTunables(failIntervals: 0).heartbeatConfig(sequence: 3).rawValue == 0x3_0003_E807)
    }
}

@Suite struct DurationTests {
    let t = MultihostTunables()
    @Test func case1() {
        let r = ActivityCheck.duration(for: mmpUB(), tunables: t)
        #expect(r.case == .failIntervals && r.nanoseconds == 20_000_000_000)  // 10 × 1000 ms × 200 %
        #expect(ActivityCheck.duration(for: mmpUB(interval: 200), tunables: t).nanoseconds == 4_000_000_000)
        // minimum remote values: 0.4 s, no base floor
        #expect(ActivityCheck.duration(for: mmpUB(interval: 100, fail: 2), tunables: t).nanoseconds == 400_000_000)
    }
    @Test func case2() {
        let ub = mmpUB(interval: 200, fail: 0, delay: 172_000_000)
        let local = MultihostTunables(intervalInMilliseconds: 100)
        let r = ActivityCheck.duration(for: ub, tunables: local)
        #expect(r.case == .neverSuspends && r.nanoseconds == 7_440_000_000)     // max(2 s, 0.372 × 20)
        #expect(ActivityCheck.duration(for: ub, tunables: t).nanoseconds == 20_000_000_000) // base wins
    }
    @Test func case3() {
        let ub = mmpUB(interval: nil, seq: nil, fail: nil, delay: 10_000_000)
        let r = ActivityCheck.duration(for: ub, tunables: t)
        #expect(r.case == .legacyWriter && r.nanoseconds == 20_200_000_000)
        #expect(ActivityCheck.duration(for: mmpUB(interval: nil, seq: nil, fail: nil, delay: 10_000_000_000), tunables: t).nanoseconds == 220_000_000_000)
    }
    @Test func case4() {
        let r = ActivityCheck.duration(for: mmpUB(magic: 0), tunables: t)
        #expect(r.case == .preMMP && r.nanoseconds == 20_000_000_000)
        #expect(ActivityCheck.duration(for: mmpUB(magic: 0), tunables: MultihostTunables(intervalInMilliseconds: 10, importIntervals: 1)).nanoseconds == 1_000_000_000)
    }
    @Test func extensionBounds() {
        #expect(ActivityCheck.extended(nanoseconds: 20_000_000_000, randomPerMille: 0) == 20_000_000_000)
        #expect(ActivityCheck.extended(nanoseconds: 20_000_000_000, randomPerMille: 249) == 24_980_000_000)
        var rng = SplitMix64(seed: 7)
        for _ in 0..<100 {
            let e = ActivityCheck.extended(nanoseconds: 4_000_000_000, using: &rng)
            #expect(e >= 4_000_000_000 && e <= 4_996_000_000)
        }
        #expect(ActivityCheck.announcedSeconds(extendedNanoseconds: 20_000_000_000, for: mmpUB()) == 30)
    }
}

@Suite struct RequirementTests {
    let ub = mmpUB()
    @Test func master() {
        let p = ActivityCheck.Policy.openZFSMaster
        #expect(ActivityCheck.requirement(policy: p, uberblock: ub, labelHostID: 1, configState: .active, localHostID: 1, skipMMP: true) == .notRequired(.skipMMPFlag))
        #expect(ActivityCheck.requirement(policy: p, uberblock: mmpUB(magic: 0), labelHostID: 2, configState: .active, localHostID: 1) == .notRequired(.noMMPMagic))
        #expect(ActivityCheck.requirement(policy: p, uberblock: mmpUB(delay: 0), labelHostID: 2, configState: .active, localHostID: 1) == .notRequired(.multihostOff))
        #expect(ActivityCheck.requirement(policy: p, uberblock: ub, labelHostID: 1, configState: .exported, localHostID: 1) == .notRequired(.exportedBySameHost))
        #expect(ActivityCheck.requirement(policy: p, uberblock: ub, labelHostID: 1, configState: .active, localHostID: 1) == .required)
        #expect(ActivityCheck.requirement(policy: p, uberblock: ub, labelHostID: 2, configState: .exported, localHostID: 1) == .required)
        #expect(ActivityCheck.requirement(policy: p, uberblock: ub, labelHostID: 2, configState: .destroyed, localHostID: 1) == .notRequired(.destroyed))
        #expect(ActivityCheck.requirement(policy: p, uberblock: ub, labelPresent: false, labelHostID: nil, configState: nil, localHostID: 1) == .required)
        #expect(ActivityCheck.requirement(policy: p, uberblock: ub, labelHostID: nil, configState: .exported, localHostID: 0) == .refusedNoHostID)
    }
    @Test func v2_1_11() {
        let p = ActivityCheck.Policy.openZFS2_1_11
        #expect(ActivityCheck.requirement(policy: p, uberblock: mmpUB(magic: 0), labelHostID: 2, configState: .active, localHostID: 1) == .required)
        #expect(ActivityCheck.requirement(policy: p, uberblock: ub, labelHostID: 1, configState: .active, localHostID: 1) == .notRequired(.sameHost))
        #expect(ActivityCheck.requirement(policy: p, uberblock: ub, labelHostID: 2, configState: .exported, localHostID: 1) == .notRequired(.notActive))
        #expect(ActivityCheck.requirement(policy: p, uberblock: ub, labelHostID: nil, configState: .active, localHostID: 0) == .notRequired(.sameHost))
        #expect(ActivityCheck.requirement(policy: p, uberblock: ub, labelHostID: 2, configState: .active, localHostID: 0) == .refusedNoHostID)
        let seqUB = mmpUB(seq: 5)
        #expect(ActivityCheck.requirement(policy: p, uberblock: seqUB, labelHostID: 2, configState: .active, localHostID: 1, tryImport: .init(txg: TXG(100), timestampInSeconds: 1000, sequence: 5)) == .notRequired(.tryImportMatches))
        #expect(ActivityCheck.requirement(policy: p, uberblock: ub, labelHostID: 2, configState: .active, localHostID: 1, tryImport: .init(txg: TXG(100), timestampInSeconds: 1000, sequence: 0)) == .required)
    }
}

@Suite struct ActivityCheckStateMachineTests {
    let ub = mmpUB(interval: 200)
    let host = LabelHost(hostname: "nodeA", hostID: 0x1a2b)
    @Test func inactiveExactlyAtDeadline() {
        var m = ActivityCheckStateMachine(reference: ub, host: host, duration: .milliseconds(450), pollInterval: .milliseconds(200), now: .zero)
        #expect(m.event(now: .zero) == .readBestUberblock)
        #expect(m.observed(ub, now: .zero) == .sleep(until: .milliseconds(200)))
        #expect(m.event(now: .milliseconds(200)) == .readBestUberblock)
        #expect(m.observed(ub, now: .milliseconds(200)) == .sleep(until: .milliseconds(400)))
        _ = m.event(now: .milliseconds(400))
        #expect(m.observed(ub, now: .milliseconds(400)) == .sleep(until: .milliseconds(450)))
        _ = m.event(now: .milliseconds(450) - .nanoseconds(1))
        #expect(m.observed(ub, now: .milliseconds(450) - .nanoseconds(1)) == .sleep(until: .milliseconds(450)))
        _ = m.event(now: .milliseconds(450))
        #expect(m.observed(ub, now: .milliseconds(450)) == .inactive)
    }
    @Test func anyChangeIsActivity() {
        for changed in [mmpUB(txg: 101, interval: 200), mmpUB(ts: 1001, interval: 200), mmpUB(interval: 200, seq: 1), mmpUB(txg: 99, interval: 200)] {
            var m = ActivityCheckStateMachine(reference: ub, host: host, duration: .seconds(4), pollInterval: .milliseconds(200), now: .zero)
            _ = m.event(now: .zero)
            _ = m.observed(ub, now: .zero)
            let a = m.observed(changed, now: .milliseconds(200))
            guard case .activeElsewhere(let r) = a else { Issue.record("expected activity"); continue }
            #expect(r.host == host && r.lastSeen == changed && r.elapsed == .milliseconds(200))
        }
        var m = ActivityCheckStateMachine(reference: ub, host: host, duration: .seconds(4), pollInterval: .seconds(1), now: .zero)
        if case .activeElsewhere = m.observed(nil, now: .zero) {} else { Issue.record("vanished device is activity") }
        var i = ActivityCheckStateMachine(reference: ub, host: host, duration: .seconds(4), pollInterval: .seconds(1), now: .zero)
        let interrupted = i.interrupt()
        #expect(interrupted == .interrupted)
        #expect(ActivityCheck.pollInterval(for: ub, tunables: .init()) == .milliseconds(200))
        #expect(ActivityCheck.pollInterval(for: mmpUB(interval: 5000), tunables: .init()) == .seconds(1))
    }
}

@Suite struct HeartbeatTests {
    let synced = Uberblock(txg: TXG(50), guidSum: 9, timestampInSeconds: 990, mmpDelayInNanoseconds: 0)
    func machine(_ t: MultihostTunables = .init(intervalInMilliseconds: 200), leaves: Int = 2) -> HeartbeatStateMachine {
        HeartbeatStateMachine(tunables: t, multihost: true, leaves: Array(repeating: .init(isWritable: true), count: leaves), lastSynced: synced, now: .zero)
    }
    @Test func cadenceRoundRobinAndUberblock() throws {
        var m = machine()
        var rng = SplitMix64(seed: 1)
        var a = m.event(now: .zero, wallClockSeconds: 1000, using: &rng)
        guard case .write(let l0, let label, let u) = a[0] else { Issue.record("no write"); return }
        #expect(l0 == 1 && (0..<4).contains(label))
        #expect(a[1] == .sleep(until: .milliseconds(100)))
        #expect(u.txg == TXG(50) && u.timestampInSeconds == 1000 && u.mmpDelayInNanoseconds == 200_000_000)
        #expect(u.mmpSequence == 1 && u.mmpWriteIntervalInMilliseconds == 200 && u.mmpFailIntervals == 10)
        let decoded = try Uberblock(decoding: u.encode())
        #expect(decoded.mmpConfig == u.mmpConfig && decoded.mmpConfig.validBits == 0x07)
        m.writeCompleted(leaf: 1, success: true, now: .milliseconds(10))
        a = m.event(now: .milliseconds(100), wallClockSeconds: 1000, using: &rng)
        guard case .write(let l1, _, let u1) = a[0] else { Issue.record("no write"); return }
        #expect(l1 == 0 && u1.mmpSequence == 2)
        // leaf 0 pending, leaf 1 done → leaf 1; new second → seq 1
        a = m.event(now: .milliseconds(200), wallClockSeconds: 1001, using: &rng)
        guard case .write(let l2, _, let u2) = a[0] else { Issue.record("no write"); return }
        #expect(l2 == 1 && u2.mmpSequence == 1 && u2.timestampInSeconds == 1001)
        // both pending → skip with mask 0x2
        a = m.event(now: .milliseconds(300), wallClockSeconds: 1001, using: &rng)
        #expect(a[0] == .skipped(.writePending))
        #expect(HeartbeatStateMachine.slotIndex(slotCount: 128) == 127)
    }
    /// The instant a machine's actions ask to be woken at.
    func sleep(_ actions: [HeartbeatStateMachine.Action]) -> Duration? {
        for case .sleep(let until) in actions { return until }
        return nil
    }
    @Test("the period runs from the scheduled instant: wake-up latency does not add up; early or very late wakes restart from now")
    func scheduleIsAnchored() {
        var m = machine()  // period 200 ms / 2 leaves = 100 ms
        var rng = SplitMix64(seed: 3)
        #expect(sleep(m.event(now: .zero, wallClockSeconds: 1, using: &rng)) == .milliseconds(100))
        m.writeCompleted(leaf: 1, success: true, now: .milliseconds(1))
        // Woken 3 ms late: the next heartbeat is still due at 200 ms, not 203 ms (mmp.c: 203 ms).
        #expect(sleep(m.event(now: .milliseconds(103), wallClockSeconds: 1, using: &rng)) == .milliseconds(200))
        m.writeCompleted(leaf: 0, success: true, now: .milliseconds(104))
        // Woken early (a tunable change at 150 ms): the period runs from now.
        #expect(sleep(m.event(now: .milliseconds(150), wallClockSeconds: 1, using: &rng)) == .milliseconds(250))
        m.writeCompleted(leaf: 1, success: true, now: .milliseconds(151))
        // Late by a whole period or more (a stalled host): no burst to catch up, from now.
        #expect(sleep(m.event(now: .milliseconds(400), wallClockSeconds: 1, using: &rng)) == .milliseconds(500))
    }
    @Test func scheduleOnTheSharedGrid() {
        // This machine's zero lies 1,234 ms after the process's common instant: with a 100 ms
        // period, grid points are at 66, 166, 266 … ms of its own time.
        var m = HeartbeatStateMachine(
            tunables: .init(intervalInMilliseconds: 200), multihost: true,
            leaves: Array(repeating: .init(isWritable: true), count: 2), lastSynced: synced, now: .zero,
            gridOrigin: .milliseconds(1_234))
        var rng = SplitMix64(seed: 3)
        // The first heartbeat at once, the next on the grid: a shorter gap, never a longer one.
        #expect(sleep(m.event(now: .zero, wallClockSeconds: 1, using: &rng)) == .milliseconds(66))
        m.writeCompleted(leaf: 1, success: true, now: .milliseconds(1))
        // On the grid, the period as before; woken 3 ms late, still the next grid point.
        #expect(sleep(m.event(now: .milliseconds(66), wallClockSeconds: 1, using: &rng)) == .milliseconds(166))
        m.writeCompleted(leaf: 0, success: true, now: .milliseconds(67))
        #expect(sleep(m.event(now: .milliseconds(169), wallClockSeconds: 1, using: &rng)) == .milliseconds(266))
        m.writeCompleted(leaf: 1, success: true, now: .milliseconds(170))
        // Late by more than a period: back onto the grid, within a period of now.
        #expect(sleep(m.event(now: .milliseconds(480), wallClockSeconds: 1, using: &rng)) == .milliseconds(566))
        // Without a grid (the default), the plain schedule.
        #expect(machine().onGrid(.milliseconds(480), period: .milliseconds(100)) == .milliseconds(480))
        #expect(m.onGrid(.milliseconds(566), period: .milliseconds(100)) == .milliseconds(566))
        #expect(m.onGrid(.milliseconds(565), period: .milliseconds(100)) == .milliseconds(466))
    }
    @Test func labelsSpread() {
        var m = machine(leaves: 1)
        var rng = SplitMix64(seed: 9)
        var seen = Set<Int>()
        for i in 0..<64 {
            let now = Duration.milliseconds(200 * i)
            if case .write(let l, let label, _) = m.event(now: now, wallClockSeconds: 1, using: &rng)[0] {
                seen.insert(label); m.writeCompleted(leaf: l, success: true, now: now)
            }
        }
        #expect(seen == [0, 1, 2, 3])
    }
    @Test func skipsUnwritable() {
        var m = HeartbeatStateMachine(tunables: .init(), multihost: true, leaves: [.init(isWritable: false), .init(isWritable: true)], lastSynced: synced, now: .zero)
        var rng = SplitMix64(seed: 2)
        for _ in 0..<3 {
            let a = m.event(now: .zero, wallClockSeconds: 1, using: &rng)
            if case .write(let l, _, _) = a[0] { #expect(l == 1); m.writeCompleted(leaf: l, success: true, now: .zero) } else { Issue.record("no write") }
        }
        m.setLeaves([.init(isWritable: false)])
        #expect(m.event(now: .zero, wallClockSeconds: 1, using: &rng)[0] == .skipped(.notWritable))
    }
    @Test func delayAveraging() {
        var m = machine(leaves: 2)  // floor 100 ms
        m.updateDelay(completed: true, now: .milliseconds(100))
        // d = 100 ms < 200 ms: (100 + 127 × 200) / 128 ms
        #expect(m.delayNanoseconds == (100_000_000 + 127 * 200_000_000) / 128)
        m.updateDelay(completed: false, now: .milliseconds(5100))        // stall adopted at once
        #expect(m.delayNanoseconds == 5_000_000_000)
        m.updateDelay(completed: true, now: .milliseconds(5200))
        #expect(m.delayNanoseconds == 5_100_000_000)                    // d = 5.1 s > delay
        var t = Duration.milliseconds(5200)
        for _ in 0..<3000 { t += .milliseconds(100); m.updateDelay(completed: true, now: t) }
        #expect(m.delayNanoseconds == 100_000_000)                      // floor I/leaves
    }
    @Test func syncResetsSequence() {
        var m = machine()
        var rng = SplitMix64(seed: 3)
        _ = m.event(now: .zero, wallClockSeconds: 1000, using: &rng)
        m.uberblockSynced(Uberblock(txg: TXG(51), guidSum: 9, timestampInSeconds: 1000), now: .milliseconds(50), wallClockSeconds: 1000)
        #expect(m.sequence == 1 && m.lastWrite == .milliseconds(50))
        let s = m.syncFields(of: Uberblock(txg: TXG(52), guidSum: 9, timestampInSeconds: 1000))
        #expect(s.mmpSequence == 0 && s.mmpDelayInNanoseconds == m.delayNanoseconds)
    }
    /// A sync about to write its uberblocks: heartbeats copy the new txg at once (an importer
    /// ranks by txg), but nothing counts as a completed write until the sync is done.
    @Test func heartbeatsCopyTheTxgBeingSyncedWithoutCountingIt() {
        var m = machine(.init(intervalInMilliseconds: 100, failIntervals: 10), leaves: 1)
        var rng = SplitMix64(seed: 5)
        _ = m.event(now: .zero, wallClockSeconds: 1000, using: &rng)  // a write of txg 50, never completed
        m.writeCompleted(leaf: 0, success: true, now: .milliseconds(10))
        m.uberblockWillSync(Uberblock(txg: TXG(51), guidSum: 9, timestampInSeconds: 1000), wallClockSeconds: 1000)
        #expect(m.lastWrite == .milliseconds(10))
        var a = m.event(now: .milliseconds(100), wallClockSeconds: 1000, using: &rng)
        guard case .write(_, _, let ub) = a.first else { Issue.record("no write: \(a)"); return }
        #expect(ub.txg == TXG(51) && ub.mmpSequence == 1)
        // That write never completes and the sync hangs: suspended one tick past last write + F × I.
        a = m.event(now: .milliseconds(1010) + .nanoseconds(1), wallClockSeconds: 1001, using: &rng)
        #expect(a.contains(where: isSuspend))
        // The sync completing counts as a write and keeps the sequence where heartbeats took it.
        var n = machine(.init(intervalInMilliseconds: 100, failIntervals: 10), leaves: 1)
        let next = Uberblock(txg: TXG(51), guidSum: 9, timestampInSeconds: 1000)
        n.uberblockWillSync(next, wallClockSeconds: 1000)
        guard case .write(let leaf, _, let first) = n.event(now: .zero, wallClockSeconds: 1000, using: &rng).first else {
            Issue.record("no write"); return
        }
        n.writeCompleted(leaf: leaf, success: true, now: .milliseconds(1))
        n.uberblockSynced(next, now: .milliseconds(50), wallClockSeconds: 1000)
        #expect(n.lastWrite == .milliseconds(50))
        guard case .write(_, _, let second) = n.event(now: .milliseconds(100), wallClockSeconds: 1000, using: &rng).first else {
            Issue.record("no write"); return
        }
        #expect(first.txg == TXG(51) && second.txg == TXG(51) && second.mmpSequence == 2)
    }
    @Test func suspensionDeadlinePlusMinusOneTick() {
        var m = machine(.init(intervalInMilliseconds: 1000, failIntervals: 10), leaves: 1)
        var rng = SplitMix64(seed: 4)
        let a0 = m.event(now: .zero, wallClockSeconds: 1, using: &rng)
        #expect(a0.last == .sleep(until: .seconds(1)))
        // no completion ever: at 10 s exactly no suspension (strictly greater), at 10 s + 1 ns yes
        var a = m.event(now: .seconds(10), wallClockSeconds: 11, using: &rng)
        #expect(!a.contains(where: isSuspend))
        #expect(a.last == .sleep(until: .seconds(10) + .nanoseconds(1)))
        a = m.event(now: .seconds(10) + .nanoseconds(1), wallClockSeconds: 11, using: &rng)
        #expect(a.first == .suspend(reason: .heartbeatsFailed(silentFor: .seconds(10) + .nanoseconds(1), failAfter: .seconds(10))))
        #expect(a.count == 2)  // no write while suspended
        a = m.event(now: .seconds(11), wallClockSeconds: 12, using: &rng)
        #expect(a == [.sleep(until: .seconds(12))])
        m.resume()
        _ = m.event(now: .seconds(20), wallClockSeconds: 21, using: &rng)
        #expect(m.lastWrite == .seconds(20) && m.delayNanoseconds == 1_000_000_000)
        // never suspends with F = 0
        var z = machine(.init(failIntervals: 0), leaves: 1)
        let az = z.event(now: .seconds(1000), wallClockSeconds: 1, using: &rng)
        #expect(!az.contains(where: isSuspend))
    }
    @Test func tunableChanges() {
        var m = machine(.init(intervalInMilliseconds: 1000, failIntervals: 10), leaves: 2)
        var rng = SplitMix64(seed: 5)
        let first = m.event(now: .zero, wallClockSeconds: 1, using: &rng)
        #expect(first.last == .sleep(until: .milliseconds(500)))
        let wake = m.setTunables(.init(intervalInMilliseconds: 400, failIntervals: 10))
        #expect(wake)
        var t = Duration.zero
        for i in 0..<3 {
            t += .milliseconds(10)
            m.writeCompleted(leaf: 0, success: true, now: t); m.writeCompleted(leaf: 1, success: true, now: t)
            let a = m.event(now: t, wallClockSeconds: 1, using: &rng)
            // `leaves` fast iterations at 100 ms / leaves, then I / leaves
            #expect(a.last == .sleep(until: t + (i < 2 ? .milliseconds(50) : .milliseconds(200))))
        }
        // lowered F × I: 10 s → 4 s shrinks by 31/32 per iteration, not at once
        #expect(m.failNanoseconds < 10_000_000_000 && m.failNanoseconds > 9_000_000_000)
        _ = m.setTunables(.init(intervalInMilliseconds: 400, failIntervals: 1000))
        _ = m.event(now: t, wallClockSeconds: 1, using: &rng)
        #expect(m.failNanoseconds == 400_000_000_000)                  // raised: at once
    }
    @Test func onOff() {
        var m = machine()
        var rng = SplitMix64(seed: 6)
        m.setMultihost(false)
        var a = m.event(now: .seconds(1), wallClockSeconds: 1, using: &rng)
        #expect(a == [.sleep(until: .seconds(2))] && m.delayNanoseconds == 0)
        #expect(m.syncFields(of: synced).mmpConfig == .none && m.syncFields(of: synced).mmpDelayInNanoseconds == 0)
        m.setMultihost(true)
        a = m.event(now: .seconds(5), wallClockSeconds: 5, using: &rng)
        #expect(m.delayNanoseconds == 200_000_000 && m.lastWrite == .seconds(5))
        if case .write = a[0] {} else { Issue.record("heartbeats resume") }
    }
}
