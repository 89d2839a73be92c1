// The loop's rescue: the loop writes each heartbeat itself, with a rescue timer armed for a
// little after its next instant; a write still under way then hands the loop to a new thread
// (`HeartbeatTimer`). `HeartbeatVirtualRescueTests` runs that code in virtual time
// (`VirtualHeartbeatTimer` on a `ManualClock`), instant by instant; `HeartbeatRescueTests` runs
// it on the real clock (`MonotonicHeartbeatTimer`: condition variable + timerfd), with bounds
// derived from the cadence and generous slack (interval 100 ms, two leaves: one heartbeat every
// 50 ms).

import Foundation
import Logging
import Synchronization
import Testing
import ZFSFormat
import ZFSTestSupport
@testable import ZFSMultihost

#if canImport(Glibc)
import Glibc
#endif

/// Threads of this process whose name (`/proc/self/task/*/comm`) is `name`.
func threadsNamed(_ name: String) -> Int {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    return tasks.filter { tid in
        (try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) == name
    }.count
}

@Suite(.offTheCooperativePool, .timeLimit(.minutes(5))) struct HeartbeatVirtualRescueTests {
    let hung = VdevGUID(rawValue: 100)
    let other = VdevGUID(rawValue: 101)

    /// Interval 1000 ms over two leaves: a heartbeat every 500 ms; the rescue is armed for the
    /// next instant + 10 ms (a quarter of the wait, at most 10 ms).
    @Test func aHungWriteHandsTheLoopToANewThreadAndTheOtherLeafKeepsItsCadence() async throws {
        let h = HeartbeatHarness(leaves: 2, tunables: .init(intervalInMilliseconds: 1000, failIntervals: 0), pool: "vrescue")
        h.io.gated.withLock { $0 = [hung] }
        try await withThrowingTaskGroup(of: Void.self) { group in
            await h.start(&group)  // t = 0: leaf 101, landed
            #expect(h.clock.sleeperDeadlines == [.milliseconds(500)], "the loop sleeps; no rescue armed between writes")

            // t = 500 ms: leaf 100's write hangs on the loop's own thread. The only sleeper is the
            // rescue, armed for the next instant (1000 ms) + 10 ms.
            h.clock.advanceToNextDeadline()
            await h.waitUntil("leaf 100's write is under way and the rescue is armed") {
                h.io.writers.withLock { $0.last?.guid } == hung && h.clock.sleeperDeadlines == [.milliseconds(1010)]
            }
            let loopThread = try #require(h.io.writers.withLock { $0.first?.thread })
            #expect(h.io.writers.withLock { $0.map(\.thread) } == [loopThread, loopThread], "both writes on the loop thread")

            // t = 1010 ms: the rescue hands the loop to a new thread, which writes leaf 101 at once
            // (for the instant at 1000 ms) and sleeps until the next instant of the schedule.
            #expect(h.clock.advanceToNextDeadline() == .milliseconds(1010))
            await h.waitUntil("a new loop thread wrote leaf 101 and sleeps") {
                h.io.writes.count == 2 && h.clock.sleeperDeadlines == [.milliseconds(1500)]
                    && h.newestWriteIsCollected && h.outstanding == 1
            }
            let rescuer = try #require(h.io.writers.withLock { $0.last?.thread })
            #expect(rescuer != loopThread, "the write after the rescue runs on a new thread")
            #expect(threadsNamed("zpk-mmp-vrescue") == 2, "the old loop thread is still in its write")

            // Leaf 101 keeps the cadence (every 500 ms, on the schedule from before the hang);
            // leaf 100 stays pending and is passed over.
            for instant in [1500, 2000, 2500] {
                let written = h.io.writes.count
                #expect(h.clock.advanceToNextDeadline() == .milliseconds(instant))
                // (The events reach the collector a little after the write: wait for them too.)
                await h.waitUntil("the loop wrote leaf 101 at \(instant) ms and sleeps again") {
                    h.io.writes.count == written + 1 && h.clock.sleeperDeadlines == [.milliseconds(instant + 500)]
                        && h.newestWriteIsCollected && h.outstanding == 1
                }
            }
            let w = writes(h.events)
            #expect(w.map(\.at) == [0, 500, 1010, 1500, 2000, 2500].map { Duration.milliseconds($0) })
            #expect(w.map(\.leaf) == [101, 100, 101, 101, 101, 101])
            #expect(h.io.writers.withLock { $0.dropFirst(2).allSatisfy { $0.thread == rescuer } })
            #expect(h.service.status.suspension == nil)

            // Released, the hung write lands on its thread, which then ends; leaf 100 rejoins.
            h.io.gated.withLock { $0 = [] }
            h.io.gate.signal()
            await h.waitUntil("the released write lands and its thread ends") {
                h.outstanding == 0 && threadsNamed("zpk-mmp-vrescue") == 1
            }
            await h.step()  // 3000 ms
            await h.step()  // 3500 ms
            #expect(writes(h.events).suffix(2).map(\.leaf).sorted() == [100, 101])
            #expect(h.io.writers.withLock { $0.suffix(2).allSatisfy { $0.thread == rescuer } })
            h.service.stop()
            try await group.waitForAll()
        }
    }
}

@Suite(.offTheCooperativePool, .timeLimit(.minutes(5))) struct HeartbeatRescueTests {
    let hung = VdevGUID(rawValue: 100)

    /// Fail intervals 100 (10 s), not the default 10 (1 s): the silence is counted from the
    /// service's creation, as mmp.c counts it from `mmp_init`, and on a loaded machine `run()`
    /// began 2.1 s after it in a full test run, so the pool suspended before its first heartbeat
    /// (OpenZFS's behaviour, and the safe one) and these tests, which are about the rescue, saw
    /// no write at all.
    func makeService(_ io: FakeHeartbeatIO, events: Locked<[HeartbeatEvent]>, pool: String = "tank") -> HeartbeatService {
        HeartbeatService(
            configuration: .init(pool: pool, multihost: true, detectsForeignHeartbeats: false),
            io: io, lastSynced: Uberblock(txg: TXG(50), guidSum: 9, timestampInSeconds: 1_800_000_000),
            tunables: MultihostTunablesStore(MultihostTunables(intervalInMilliseconds: 100, failIntervals: 100)),
            logger: Logger(label: "test"), onEvent: { e in events.withLock { $0.append(e) } })
    }

    /// Polls `condition` every 5 ms; records an issue naming `what` when it has not held after
    /// `Patience.hang` (a hang detector: on a quiet machine it holds within a few heartbeat
    /// periods of 50 ms).
    func waitUntil(
        _ what: String, of service: HeartbeatService, sourceLocation: SourceLocation = #_sourceLocation,
        _ condition: () -> Bool
    ) async throws {
        let start = ContinuousClock.now
        while !condition() {
            if ContinuousClock.now - start > Patience.hang {
                let status = service.status
                Issue.record(
                    """
                    timed out after \(Patience.hangText) waiting until \(what); the service: \(service.iterationCount) \
                    iterations, multihost \(status.multihost), suspension \(status.suspension.map { "\($0)" } ?? "none"), \
                    last write \(status.lastWrite), now \(status.now), history:
                    \(service.renderHistory().split(separator: "\n").suffix(8).joined(separator: "\n"))
                    """, sourceLocation: sourceLocation)
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    func issuedIDs(_ events: [HeartbeatEvent], to guid: VdevGUID) -> [UInt64] {
        events.compactMap { if case .issued(let id, let leaf, _, _, _) = $0, leaf.guid == guid { id } else { nil } }
    }

    func landed(_ events: [HeartbeatEvent], _ id: UInt64) -> Bool {
        events.contains { if case .landed(id, _, _, _, _) = $0 { true } else { false } }
    }

    @Test func aHungWriteDoesNotHoldUpTheOtherLeaves() async throws {
        let io = FakeHeartbeatIO(leafCount: 2)
        io.gated.withLock { $0 = [hung] }
        let events = Locked<[HeartbeatEvent]>([])
        let service = makeService(io, events: events)
        let run = Task { try await service.run() }

        try await waitUntil("the hung leaf's write is issued", of: service) { !issuedIDs(events.withLock { $0 }, to: hung).isEmpty }
        let before = io.writes.count
        // Six take 300 ms on time; without the rescue, none ever come (the loop is stuck in the
        // write). How long they take is not asserted: the cadence in virtual time is
        // HeartbeatVirtualRescueTests', on the real clock mmp-bench's (BENCHMARKS.md §6).
        try await waitUntil("six heartbeats reach the other leaf while the hung write is held", of: service) {
            io.writes.count >= before + 6
        }
        let during = io.writes.dropFirst(before)
        #expect(during.allSatisfy { $0.guid != hung })
        // The loop wrote them itself: the real-clock path, not the workers' (unnamed threads).
        let threads = io.writerThreads.withLock { $0 }.suffix(during.count)
        #expect(threads.allSatisfy { $0 == "zpk-mmp-tank" }, "\(Set(threads))")
        #expect(service.status.suspension == nil)

        // Released, the write lands, and the leaf rejoins the round robin.
        let hungID = try #require(issuedIDs(events.withLock { $0 }, to: hung).first)
        io.gated.withLock { $0 = [] }
        io.gate.signal()
        try await waitUntil("the released write lands", of: service) { landed(events.withLock { $0 }, hungID) }
        try await waitUntil("the leaf gets a heartbeat again", of: service) {
            io.writes.dropFirst(before).contains { $0.guid == hung }
        }
        service.stop()
        try await run.value
    }

    /// The loop thread is named for `top -H` and its timed waits have no slack (the default
    /// 50 µs is a tenth of the 1 % cadence budget of a 50 ms period).
    @Test func theLoopThreadIsNamedAndWakesOnTime() async throws {
        let io = FakeHeartbeatIO(leafCount: 2)
        let events = Locked<[HeartbeatEvent]>([])
        let service = makeService(io, events: events, pool: "slackless")
        let run = Task { try await service.run() }
        try await waitUntil("a heartbeat is written", of: service) { !io.writes.isEmpty }
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")
        let loops = tasks.filter { tid in
            (try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8))?.hasPrefix("zpk-mmp-slackle") == true
        }
        #expect(loops.count == 1, "threads named zpk-mmp-slackle(ss): \(loops)")
        for tid in loops {
            // Per thread at /proc/TID (not under /proc/self/task).
            let slack = try String(contentsOfFile: "/proc/\(tid)/timerslack_ns", encoding: .utf8)
            #expect(slack.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        }
        service.stop()
        try await run.value
    }

    @Test func stopWaitsForAHungWriteToReturn() async throws {
        let io = FakeHeartbeatIO(leafCount: 2)
        io.gated.withLock { $0 = [hung] }
        let events = Locked<[HeartbeatEvent]>([])
        let service = makeService(io, events: events)
        let returned = Locked(false)
        let run = Task {
            try await service.run()
            returned.withLock { $0 = true }
        }
        try await waitUntil("the hung leaf's write is issued", of: service) { !issuedIDs(events.withLock { $0 }, to: hung).isEmpty }
        service.stop()
        try await Task.sleep(for: .milliseconds(300))
        #expect(!returned.withLock { $0 }, "run() returned with a write still under way")
        io.gated.withLock { $0 = [] }
        io.gate.signal()
        try await run.value
        let hungID = try #require(issuedIDs(events.withLock { $0 }, to: hung).first)
        #expect(landed(events.withLock { $0 }, hungID))
        #expect(events.withLock { $0 }.last == .stopped)
    }
}
