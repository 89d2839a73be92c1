import Dispatch
import Foundation
import Logging
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing
import ZFSFormat
import ZFSTestSupport
@testable import ZFSMultihost

/// A pool's heartbeat I/O in memory: records every write, can fail or hold writes per leaf,
/// and serves MMP slot read-backs.
final class FakeHeartbeatIO: HeartbeatIO {
    struct Write: Hashable, Sendable { var guid: VdevGUID; var label: Int; var uberblock: Uberblock }
    struct State {
        var leaves: [HeartbeatLeaf]
        var writes: [Write] = []
        var failing: Set<VdevGUID> = []
        var slots: [HeartbeatService.SlotKey: MMPSlotReading] = [:]
    }
    let state: Mutex<State>
    /// Writes to a leaf in `gated` block until the gate is signalled.
    let gate = DispatchSemaphore(value: 0)
    let gated: Mutex<Set<VdevGUID>> = Mutex([])

    init(leafCount: Int) {
        state = Mutex(State(leaves: (0..<leafCount).map {
            HeartbeatLeaf(guid: VdevGUID(rawValue: UInt64(100 + $0)), path: "/dev/fake\($0)", isWritable: true)
        }))
    }
    var writes: [Write] { state.withLock { $0.writes } }
    func heartbeatLeaves() -> [HeartbeatLeaf] { state.withLock { $0.leaves } }
    /// The name of the thread each write ran on, in order.
    let writerThreads = Mutex<[String]>([])
    /// The thread (`pthread_self`) each write ran on, with the leaf written, in order.
    let writers = Mutex<[(thread: UInt, guid: VdevGUID)]>([])
    func write(uberblock: Uberblock, leaf: HeartbeatLeaf, label: Int) throws {
        let thread = Thread.current.name ?? ""
        writerThreads.withLock { $0.append(thread) }
        writers.withLock { $0.append((UInt(bitPattern: Int(bitPattern: UInt(pthread_self()))), leaf.guid)) }
        if gated.withLock({ $0.contains(leaf.guid) }) { gate.wait() }
        try state.withLock { s in
            if s.failing.contains(leaf.guid) { throw MultihostError(.ioFailed, "EIO on \(leaf.path ?? "-")") }
            s.writes.append(Write(guid: leaf.guid, label: label, uberblock: uberblock))
            s.slots[.init(guid: leaf.guid, label: label)] = MMPSlotReading(uberblock: uberblock, host: LabelHost(hostname: "us", hostID: 1))
        }
    }
    func readMMPSlot(leaf: HeartbeatLeaf, label: Int) throws -> MMPSlotReading? {
        state.withLock { $0.slots[.init(guid: leaf.guid, label: label)] }
    }
}

/// A lock-protected value that closures can capture (a `Mutex` cannot be captured).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}

/// Drives a HeartbeatService in virtual time and collects its events.
final class HeartbeatHarness: Sendable {
    let clock = ManualClock()
    let io: FakeHeartbeatIO
    let store: MultihostTunablesStore
    let service: HeartbeatService
    let suspensions = Locked<[HeartbeatSuspension]>([])
    /// Taken before the service runs: the stream holds events from its first use on.
    let stream: AsyncStream<HeartbeatEvent>
    static let epoch: Duration = .seconds(1_800_000_000)

    init(leaves: Int = 2, tunables: MultihostTunables = .init(), multihost: Bool = true, detect: Bool = true, pool: String = "tank") {
        io = FakeHeartbeatIO(leafCount: leaves)
        store = MultihostTunablesStore(tunables)
        let clock = self.clock
        let suspensions = self.suspensions
        service = HeartbeatService(
            configuration: .init(pool: pool, multihost: multihost, detectsForeignHeartbeats: detect),
            io: io,
            lastSynced: Uberblock(txg: TXG(50), guidSum: 9, timestampInSeconds: 1_800_000_000),
            tunables: store, clock: clock,
            wallClock: WallClock { HeartbeatHarness.epoch + clock.now.offset },
            random: SplitMix64(seed: 3), logger: Logger(label: "test"),
            onSuspend: { s in suspensions.withLock { $0.append(s) } })
        stream = service.events
    }

    let log = Locked<[HeartbeatEvent]>([])
    var events: [HeartbeatEvent] { log.withLock { $0 } }

    /// Collects the service's events until it stops (run it in the test's task group).
    func collect() async {
        for await e in stream { log.withLock { $0.append(e) } }
    }

    /// Waits until the loop has run past iteration `after`, sleeps again, every write it issued
    /// (per its history) has reached the collected events, and every issued write has landed.
    /// (The loop runs on a thread of its own, so its events reach `collect()` a little later.)
    func settle(after: Int, sourceLocation: SourceLocation = #_sourceLocation) async {
        await waitUntil(
            "the loop ran past iteration \(after), every write it issued landed, and it sleeps again",
            sourceLocation: sourceLocation
        ) {
            service.iterationCount > after && clock.sleeperCount > 0 && newestWriteIsCollected && outstanding == 0
        }
    }

    /// Yields until `condition` holds; records an issue naming `what` (with the clock's time,
    /// its sleepers and the loop's iterations) when it has not held after `Patience.hang` of real time.
    func waitUntil(
        _ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () -> Bool
    ) async {
        let start = ContinuousClock.now
        while !condition() {
            if ContinuousClock.now - start > Patience.hang {
                Issue.record(
                    "timed out after \(Patience.hangText) waiting until \(what) (virtual t=\(clock.now.offset), sleepers at \(clock.sleeperDeadlines), \(service.iterationCount) iterations, \(outstanding) writes outstanding)",
                    sourceLocation: sourceLocation)
                return
            }
            await Task.yield()
        }
    }

    /// The newest write in the service's history has reached the collected events.
    var newestWriteIsCollected: Bool {
        guard let newest = service.history.last(where: { !$0.isSkip })?.id else { return true }
        return events.contains { if case .issued(let id, _, _, _, _) = $0 { id == newest } else { false } }
    }

    var outstanding: Int {
        var ids = Set<UInt64>()
        for e in events {
            if case .issued(let id, _, _, _, _) = e { ids.insert(id) }
            if case .landed(let id, _, _, _, _) = e { ids.remove(id) }
        }
        return ids.count
    }

    /// Advances to the next deadline and settles.
    func step() async {
        let n = service.iterationCount
        clock.advanceToNextDeadline()
        await settle(after: n)
    }

    /// Starts the service (and the event collector) in `group` and settles after the first iteration.
    func start(_ group: inout ThrowingTaskGroup<Void, any Error>) async {
        group.addTask { try await self.service.run() }
        group.addTask { await self.collect() }
        await settle(after: 0)
    }
}

func writes(_ events: [HeartbeatEvent]) -> [(at: Duration, leaf: UInt64, label: Int, ub: Uberblock)] {
    events.compactMap { if case .issued(_, let l, let label, let ub, let at) = $0 { (at, l.guid.rawValue, label, ub) } else { nil } }
}

@Suite(.offTheCooperativePool, .timeLimit(.minutes(5))) struct HeartbeatServiceTests {
    @Test func cadenceIsIntervalOverLeavesRoundRobinWithWallClockStamps() async throws {
        let h = HeartbeatHarness(leaves: 2, tunables: .init(intervalInMilliseconds: 1000))
        try await withThrowingTaskGroup(of: Void.self) { group in
            await h.start(&group)
            for _ in 0..<9 {
                await h.step()
            }
            let w = writes(h.events)
            #expect(w.map(\.at) == (0..<10).map { Duration.milliseconds(500 * $0) })
            #expect(w.map(\.leaf) == [101, 100, 101, 100, 101, 100, 101, 100, 101, 100])
            #expect(w.allSatisfy { (0..<4).contains($0.label) })
            #expect(Set(w.map(\.label)).count > 1)
            #expect(w.map(\.ub.timestampInSeconds) == (0..<10).map { 1_800_000_000 + UInt64($0 / 2) })
            // sequence restarts at 1 each new second
            #expect(w.map { $0.ub.mmpSequence } == [1, 2, 1, 2, 1, 2, 1, 2, 1, 2])
            #expect(w.allSatisfy { $0.ub.txg == TXG(50) && $0.ub.mmpConfig.validBits == 7 })
            #expect(h.io.writes.count == 10)
            h.service.stop()
            try await group.waitForAll()
        }
        let history = h.service.history
        #expect(history.count == 10 && history.allSatisfy { !$0.isSkip && $0.error == 0 })
        #expect(h.service.renderHistory().hasPrefix("id         txg        timestamp  error  duration   mmp_delay    vdev_guid                vdev_label vdev_path\n"))
    }

    @Test func suspendsOneTickAfterFailIntervalsTimesIntervalWithoutALandedWrite() async throws {
        let h = HeartbeatHarness(leaves: 1, tunables: .init(intervalInMilliseconds: 1000, failIntervals: 10))
        h.io.state.withLock { $0.failing = [VdevGUID(rawValue: 100)] }
        try await withThrowingTaskGroup(of: Void.self) { group in
            await h.start(&group)
            while h.clock.now.offset < .seconds(10) {
                await h.step()
            }
            #expect(h.clock.now.offset == .seconds(10))
            #expect(h.suspensions.withLock { $0.isEmpty })
            #expect(h.service.status.suspensionDeadline == .seconds(10))
            // the next wake-up is exactly one tick past the deadline
            #expect(h.clock.sleeperDeadlines.first == .seconds(10) + .nanoseconds(1))
            await h.step()
            let s = try #require(h.suspensions.withLock { $0.first })
            #expect(s.at == .seconds(10) + .nanoseconds(1))
            #expect(s.deadline == .seconds(10))
            #expect(s.description.contains("have not succeeded in over 10000 ms"))
            // no heartbeat while suspended
            let before = writes(h.events).count
            for _ in 0..<5 { await h.step() }
            #expect(writes(h.events).count == before)
            #expect(h.service.status.suspension != nil)
            // resume: writes again, deadline restarts from now
            h.io.state.withLock { $0.failing = [] }
            let n = h.service.iterationCount
            h.service.resume()
            await h.settle(after: n)
            #expect(writes(h.events).count == before + 1)
            #expect(h.service.status.suspension == nil)
            h.service.stop()
            try await group.waitForAll()
        }
    }

    @Test func neverSuspendsWithFailIntervalsZero() async throws {
        let h = HeartbeatHarness(leaves: 1, tunables: .init(intervalInMilliseconds: 100, failIntervals: 0))
        h.io.state.withLock { $0.failing = [VdevGUID(rawValue: 100)] }
        try await withThrowingTaskGroup(of: Void.self) { group in
            await h.start(&group)
            for _ in 0..<100 { await h.step() }
            #expect(h.suspensions.withLock { $0.isEmpty })
            #expect(h.service.status.mmpDelay == .seconds(10))  // spike hold: no success for 10 s
            h.service.stop()
            try await group.waitForAll()
        }
        let rows = h.service.history
        #expect(!rows.isEmpty && rows.allSatisfy { $0.isSkip || $0.error == 5 })
    }

    @Test func intervalChangeWakesAtOnceAndBurstsAtHundredMillisecondsOverLeaves() async throws {
        let h = HeartbeatHarness(leaves: 2, tunables: .init(intervalInMilliseconds: 1000))
        try await withThrowingTaskGroup(of: Void.self) { group in
            await h.start(&group)
            h.clock.advance(by: .milliseconds(200))  // asleep until 500 ms
            let n = h.service.iterationCount
            h.store.set(.interval, to: 400)
            // woken at 200 ms, not 500 ms
            await h.settle(after: n)
            #expect(writes(h.events).map(\.at) == [.zero, .milliseconds(200)])
            #expect(writes(h.events).last?.ub.mmpWriteIntervalInMilliseconds == 400)
            // next `leaves` sleeps are 100 ms / 2 leaves, then 400 / 2
            #expect(h.clock.sleeperDeadlines.first == .milliseconds(250))
            await h.step()
            #expect(h.clock.sleeperDeadlines.first == .milliseconds(300))
            await h.step()
            #expect(h.clock.sleeperDeadlines.first == .milliseconds(500))
            // fail / import intervals do not wake
            h.store.set(.importIntervals, to: 5)
            #expect(h.store.value(of: .importIntervals) == 5)
            await Task.yield()
            #expect(h.clock.sleeperDeadlines.first == .milliseconds(500))
            h.service.stop()
            try await group.waitForAll()
        }
    }

    @Test func multihostOffStopsHeartbeatsAndOnRestartsThem() async throws {
        let h = HeartbeatHarness(leaves: 1, tunables: .init(intervalInMilliseconds: 100), multihost: false)
        try await withThrowingTaskGroup(of: Void.self) { group in
            await h.start(&group)
            #expect(h.clock.sleeperDeadlines.first == .seconds(1))  // idle cadence
            await h.step()
            #expect(writes(h.events).isEmpty)
            #expect(h.service.syncFields(of: Uberblock(txg: TXG(9), guidSum: 0, timestampInSeconds: 0)).mmpDelayInNanoseconds == 0)
            var n = h.service.iterationCount
            h.service.setMultihost(true)
            await h.settle(after: n)
            #expect(writes(h.events).map(\.at) == [.seconds(1)])
            #expect(h.service.status.mmpDelay == .milliseconds(100))  // delay = I on off → on
            n = h.service.iterationCount
            h.service.setMultihost(false)
            await h.settle(after: n)
            await h.step()
            #expect(writes(h.events).count == 1)
            #expect(h.service.status.mmpDelay == .zero)
            h.service.stop()
            try await group.waitForAll()
        }
    }

    @Test func pendingAndUnwritableLeavesAreSkippedAndRecordedAsOneRun() async throws {
        let h = HeartbeatHarness(leaves: 2, tunables: .init(intervalInMilliseconds: 1000, failIntervals: 0))
        h.io.state.withLock { $0.leaves[1].isWritable = false }
        h.io.gated.withLock { $0 = [VdevGUID(rawValue: 100)] }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await h.service.run() }
            group.addTask { await h.collect() }
            // the first write, to leaf 0, hangs in the device: the leaf stays pending
            await h.clock.waitForSleepers(1)
            for _ in 0..<3 {
                let n = h.service.iterationCount
                h.clock.advanceToNextDeadline()
                await h.clock.waitForSleepers(1)
                while h.service.iterationCount <= n { await Task.yield() }
                await h.clock.waitForSleepers(1)
            }
            #expect(writes(h.events).count == 1)
            let skips = h.service.history.filter(\.isSkip)
            #expect(skips.count == 1)
            #expect(skips.first?.error == 0x3 && skips.first?.vdevGUID == 3)
            // The write at 0 hangs on the loop thread; the rescue (next instant 500 ms + 10 ms)
            // starts a new loop thread, which skips at 510, 1000 and 1500 ms: one run of 990 ms.
            #expect(skips.first?.duration == .milliseconds(990))
            #expect(h.service.renderHistory().contains("   0x3"))
            h.io.gate.signal()
            h.service.stop()
            try await group.waitForAll()
        }
    }

    @Test func foreignHeartbeatInOurSlotSuspendsAndNamesTheWriter() async throws {
        let h = HeartbeatHarness(leaves: 1, tunables: .init(intervalInMilliseconds: 1000))
        try await withThrowingTaskGroup(of: Void.self) { group in
            await h.start(&group)
            // our own copies read back are not an alarm
            for _ in 0..<8 { await h.step() }
            #expect(h.suspensions.withLock { $0.isEmpty })
            // another host writes a newer heartbeat into every label of our leaf
            var theirs = Uberblock(txg: TXG(51), guidSum: 9, timestampInSeconds: 1_800_000_008)
            theirs.mmpDelayInNanoseconds = 1
            theirs.mmpConfig = MMPConfig(writeIntervalInMilliseconds: 1000, sequence: 4, failIntervals: 10)
            let stranger = MMPSlotReading(uberblock: theirs, host: LabelHost(hostname: "nodeB", hostID: 0xB0B))
            h.io.state.withLock { s in for l in 0..<4 { s.slots[.init(guid: VdevGUID(rawValue: 100), label: l)] = stranger } }
            let written = h.io.writes.count
            await h.step()
            let s = try #require(h.suspensions.withLock { $0.first })
            guard case .foreignHeartbeat(let f) = s.reason else { Issue.record("wrong reason \(s.reason)"); return }
            #expect(f.host?.hostname == "nodeB" && f.host?.hostID == 0xB0B)
            #expect(s.description.contains("host 'nodeB' (hostid 0xb0b)"))
            #expect(h.io.writes.count == written)   // the write was withheld
            #expect(h.service.history.last?.error == 121)
            h.service.stop()
            try await group.waitForAll()
        }
    }

    @Test func splitBrainRule() {
        let ours = Uberblock(txg: TXG(50), guidSum: 1, timestampInSeconds: 100, mmpConfig: MMPConfig(writeIntervalInMilliseconds: 100, sequence: 3, failIntervals: 10))
        let key = HeartbeatService.HeartbeatKey(txg: TXG(50), timestamp: 100, sequence: 3)
        var older = ours; older.txg = TXG(49)
        var newer = ours; newer.mmpConfig = ours.mmpConfig.settingSequence(4)
        var noSeq = newer; noSeq.mmpConfig = MMPConfig(writeIntervalInMilliseconds: 100)
        #expect(!HeartbeatService.isForeign(ours, reference: ours, ours: [key]))
        #expect(!HeartbeatService.isForeign(older, reference: ours, ours: [key]))
        #expect(HeartbeatService.isForeign(newer, reference: ours, ours: [key]))
        #expect(!HeartbeatService.isForeign(noSeq, reference: ours, ours: [key]))
        // not in our set and not older than the reference: foreign
        var sameKeyOtherWriter = ours; sameKeyOtherWriter.guidSum = 2
        #expect(HeartbeatService.isForeign(sameKeyOtherWriter, reference: ours, ours: []))
        #expect(HeartbeatService.isForeign(newer, reference: ours, ours: []))
        // exactly what we last wrote to the slot (the reference) is ours, even once the set forgot it
        #expect(!HeartbeatService.isForeign(ours, reference: ours, ours: []))
    }

    @Test func gracefulShutdownLetsTheInFlightWriteLand() async throws {
        let h = HeartbeatHarness(leaves: 1, tunables: .init(intervalInMilliseconds: 1000))
        h.io.gated.withLock { $0 = [VdevGUID(rawValue: 100)] }
        let returned = Locked(false)
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await h.service.run()
                    returned.withLock { $0 = true }
                }
                await h.clock.waitForSleepers(1)
                #expect(h.io.writes.isEmpty)
                trigger.triggerGracefulShutdown()
                for _ in 0..<1000 { await Task.yield() }
                #expect(!returned.withLock { $0 })   // the write is still in the device
                #expect(h.io.writes.isEmpty)
                h.io.gate.signal()
                try await group.waitForAll()
                #expect(returned.withLock { $0 })
                #expect(h.io.writes.count == 1)
            }
        }
    }

    @Test func tunablesStoreNamesAndClamping() {
        let store = MultihostTunablesStore()
        #expect(MultihostTunablesStore.Name.allCases.map(\.rawValue) == ["zfs_multihost_interval", "zfs_multihost_fail_intervals", "zfs_multihost_import_intervals"])
        store.set(.interval, to: 50)
        store.set(.failIntervals, to: 1)
        #expect(store.value(of: .interval) == 50 && store.current.effectiveIntervalInMilliseconds == 100)
        #expect(store.current.effectiveFailIntervals == 2)
        let seen = Mutex<[UInt64]>([])
        let token = store.addObserver { t in seen.withLock { $0.append(t.intervalInMilliseconds) } }
        store.set(.interval, to: 300)
        store.removeObserver(token)
        store.set(.interval, to: 400)
        #expect(seen.withLock { $0 } == [300])
    }

    @Test func recentSetForgetsItsOldestMembers() {
        var set = RecentSet<Int>(capacity: 3)
        for n in [1, 2, 3, 3, 4, 5] { set.insert(n) }
        #expect(set.elements == [3, 4, 5])
        #expect(!set.contains(1) && !set.contains(2))
        #expect(set.contains(3) && set.contains(4) && set.contains(5))
    }

    @Test func historyIsBoundedAndOffAtZero() {
        var h = MultihostHistory(capacity: 3)
        for i in 1...5 {
            h.append(.init(id: UInt64(i), txg: TXG(1), timestamp: 2, isSkip: false, error: 0, duration: .zero, mmpDelayInNanoseconds: 3, vdevGUID: 4, vdevLabel: 1, vdevPath: "/d"))
        }
        #expect(h.records.map(\.id) == [3, 4, 5])
        h.update(id: 4) { $0.error = 5 }
        h.update(id: 1) { $0.error = 9 }  // dropped already: nothing changes
        #expect(h.records.map(\.error) == [0, 5, 0])
        var resized = h
        resized.capacity = 2
        #expect(resized.records.map(\.id) == [4, 5])
        resized.capacity = 4
        for i in 6...9 {
            resized.append(.init(id: UInt64(i), txg: TXG(1), timestamp: 2, isSkip: false, error: 0, duration: .zero, mmpDelayInNanoseconds: 3, vdevGUID: 4, vdevLabel: 1, vdevPath: "/d"))
        }
        #expect(resized.records.map(\.id) == [6, 7, 8, 9])
        resized.clear()
        #expect(resized.records.isEmpty)
        var off = MultihostHistory(capacity: 0)
        off.append(h.records[0])
        #expect(off.records.isEmpty)
        #expect(MultihostHistory.defaultCapacity == 100)
        let row = h.render().split(separator: "\n")[1]
        #expect(row == "3          1                   2      0          0            3 4                        1          /d")
    }
}
