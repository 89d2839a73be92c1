// SyncService on virtual time: nothing is synced one nanosecond before the interval, every open
// pool at it; a failing pool does not stop the others; cancellation and graceful shutdown end
// `run()` promptly without a final sync (zpkd calls syncAll for that).

import Synchronization
import Testing
import ServiceLifecycle
import Logging
import ZFSDevice
import ZFSFormat
import ZFSTestSupport

@testable import ZFSPool

/// A manual clock: time moves only in `advance(by:)`; sleepers wake when their deadline passes
/// and on cancellation. `waitForSleepers(_:)` suspends until that many sleeps are pending.
private final class VirtualClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private struct Sleeper {
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }
    private struct State {
        var now = Instant(offset: .zero)
        var nextID = 0
        var sleepers: [Int: Sleeper] = [:]
        /// Sleeps cancelled before they registered.
        var cancelled: Set<Int> = []
        var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }
    private let state = Mutex(State())

    var now: Instant { state.withLock { $0.now } }
    var minimumResolution: Duration { .nanoseconds(1) }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let (resumeNow, ready) = state.withLock { state -> (Bool?, [CheckedContinuation<Void, Never>]) in
                    if state.cancelled.remove(id) != nil { return (nil, []) }
                    if deadline <= state.now { return (true, []) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    let count = state.sleepers.count
                    let ready = state.waiters.filter { $0.count <= count }.map(\.continuation)
                    state.waiters.removeAll { $0.count <= count }
                    return (false, ready)
                }
                switch resumeNow {
                case nil: continuation.resume(throwing: CancellationError())
                case true?: continuation.resume()
                case false?: break
                }
                for waiter in ready { waiter.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let sleeper = state.sleepers.removeValue(forKey: id) else {
                    state.cancelled.insert(id)
                    return nil
                }
                return sleeper
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline has come.
    func advance(by duration: Duration) {
        let due = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let ids = state.sleepers.filter { $0.value.deadline <= now }.map(\.key)
            return ids.compactMap { state.sleepers.removeValue(forKey: $0)?.continuation }
        }
        for continuation in due { continuation.resume() }
    }

    var pendingSleeps: Int { state.withLock { $0.sleepers.count } }

    func waitForSleepers(_ count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state -> Bool in
                if state.sleepers.count >= count { return true }
                state.waiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }
}

@Suite struct SyncServiceTests {
    @Test func syncsEveryOpenPoolAtEachInterval() async throws {
        let rack = DeviceRack(paths: ["/dev/a", "/dev/b"])
        let host = PoolHost(environment: rack.environment())
        let one = try await host.create(name: "one", layout: [.leaf("/dev/a")])
        let two = try await host.create(name: "two", layout: [.leaf("/dev/b")])
        let clock = VirtualClock()
        let service = SyncService(host: host, interval: .seconds(5), clock: clock)
        let task = Task { try await service.run() }

        try await one.put("k", [1])
        try await two.put("k", [2])
        await clock.waitForSleepers(1)
        clock.advance(by: .seconds(5) - .nanoseconds(1))
        #expect(clock.pendingSleeps == 1, "not yet")
        #expect(one.status().lastSyncedTXG == TXG(4) && two.status().lastSyncedTXG == TXG(4))

        clock.advance(by: .nanoseconds(1))
        await clock.waitForSleepers(1)  // the next round's sleep: this round is done
        #expect(one.status().lastSyncedTXG == TXG(5))
        #expect(two.status().lastSyncedTXG == TXG(5))

        // Nothing dirty: the next round writes nothing.
        let writes = rack.writeCount
        clock.advance(by: .seconds(5))
        await clock.waitForSleepers(1)
        #expect(rack.writeCount == writes)

        task.cancel()
        try await task.value
        #expect(clock.pendingSleeps == 0)
    }

    @Test func aFailingPoolDoesNotStopTheOthers() async throws {
        let good = DeviceRack(paths: ["/dev/g"])
        let bad = DeviceRack(paths: ["/dev/x"])
        var environment = good.environment()
        let goodOpen = environment.openDevice
        let badDevice = try #require(bad.devices["/dev/x"])
        environment.openDevice = { path in path == "/dev/x" ? badDevice : try goodOpen(path) }
        let host = PoolHost(environment: environment)
        let healthy = try await host.create(name: "healthy", layout: [.leaf("/dev/g")])
        let failing = try await host.create(name: "failing", layout: [.leaf("/dev/x")])
        badDevice.inject(.flushError)

        let clock = VirtualClock()
        let task = Task { try await SyncService(host: host, interval: .seconds(1), clock: clock).run() }
        for round in 1...2 {
            try await healthy.put("r\(round)", [UInt8(round)])
            try? await failing.put("r\(round)", [UInt8(round)])
            await clock.waitForSleepers(1)
            clock.advance(by: .seconds(1))
            await clock.waitForSleepers(1)
            #expect(healthy.status().lastSyncedTXG == TXG(4 + UInt64(round)), "round \(round)")
        }
        await #expect { try await failing.get("r1") } throws: { ($0 as? PoolError)?.code == .poolClosed }
        let results = await host.syncAll()
        #expect(results.map(\.pool) == ["failing", "healthy"])
        if case .failure(let error) = results[0].result { #expect(error.code == .poolClosed) } else {
            Issue.record("the failed pool must report its failure")
        }
        task.cancel()
        try await task.value
    }

    @Test func gracefulShutdownEndsRunWithoutASync() async throws {
        let rack = DeviceRack(paths: ["/dev/a"])
        let host = PoolHost(environment: rack.environment())
        let pool = try await host.create(name: "one", layout: [.leaf("/dev/a")])
        try await pool.put("k", [1])
        let clock = VirtualClock()
        let group = ServiceGroup(
            services: [SyncService(host: host, interval: .seconds(5), clock: clock)],
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let task = Task { try await group.run() }
        await clock.waitForSleepers(1)
        await group.triggerGracefulShutdown()
        try await task.value
        #expect(clock.pendingSleeps == 0)
        #expect(pool.status().lastSyncedTXG == TXG(4), "the final sync is zpkd's job (syncAll)")
    }

    @Test func aNonPositiveIntervalMeansTheDefault() {
        let host = PoolHost(environment: DeviceRack(paths: []).environment())
        #expect(SyncService(host: host, interval: .zero).interval == SyncService.defaultInterval)
        #expect(SyncService(host: host, interval: .milliseconds(250)).interval == .milliseconds(250))
    }
}
