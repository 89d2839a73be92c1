// The heartbeat on the real clock: the loop writes each heartbeat itself, and a kernel timer
// hands the loop to a new thread when a write is still under way at the next instant
// (`LoopRescue`). Interval 100 ms, two leaves: one heartbeat every 50 ms.

import Foundation
import Logging
import Synchronization
import Testing
import ZFSFormat
@testable import ZFSMultihost

@Suite(.timeLimit(.minutes(1))) struct HeartbeatRescueTests {
    let hung = VdevGUID(rawValue: 100)

    func makeService(_ io: FakeHeartbeatIO, events: Locked<[HeartbeatEvent]>, pool: String = "tank") -> HeartbeatService {
        HeartbeatService(
            configuration: .init(pool: pool, multihost: true, detectsForeignHeartbeats: false),
            io: io, lastSynced: Uberblock(txg: TXG(50), guidSum: 9, timestampInSeconds: 1_800_000_000),
            tunables: MultihostTunablesStore(MultihostTunables(intervalInMilliseconds: 100)),
            logger: Logger(label: "test"), onEvent: { e in events.withLock { $0.append(e) } })
    }

    /// Polls `condition` every 5 ms for up to 10 s.
    func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        let start = ContinuousClock.now
        while !condition() {
            if ContinuousClock.now - start > .seconds(10) {
                Issue.record("timed out waiting until \(what)")
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

        try await waitUntil("the hung leaf's write is issued") { !issuedIDs(events.withLock { $0 }, to: hung).isEmpty }
        let before = io.writes.count
        try await Task.sleep(for: .milliseconds(600))
        let during = io.writes.dropFirst(before)
        // Twelve in an ideal 600 ms; without the rescue, none (the loop would be stuck in the write).
        #expect(during.count >= 6, "\(during.count) heartbeats to the other leaf in 600 ms")
        #expect(during.allSatisfy { $0.guid != hung })
        // The loop wrote them itself: the real-clock path, not the workers' (unnamed threads).
        let threads = io.writerThreads.withLock { $0 }.suffix(during.count)
        #expect(threads.allSatisfy { $0 == "zpk-mmp-tank" }, "\(Set(threads))")
        #expect(service.status.suspension == nil)

        // Released, the write lands, and the leaf rejoins the round robin.
        let hungID = try #require(issuedIDs(events.withLock { $0 }, to: hung).first)
        io.gated.withLock { $0 = [] }
        io.gate.signal()
        try await waitUntil("the released write lands") { landed(events.withLock { $0 }, hungID) }
        try await waitUntil("the leaf gets a heartbeat again") {
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
        try await waitUntil("a heartbeat is written") { !io.writes.isEmpty }
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
        try await waitUntil("the hung leaf's write is issued") { !issuedIDs(events.withLock { $0 }, to: hung).isEmpty }
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
