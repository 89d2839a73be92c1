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

@Suite(.offTheCooperativePool) struct SyncServiceTests {
    @Test func syncsEveryOpenPoolAtEachInterval() async throws {
        let rack = DeviceRack(paths: ["/dev/a", "/dev/b"])
        let host = PoolHost(environment: rack.environment())
        let one = try await host.create(name: "one", layout: [.leaf("/dev/a")])
        let two = try await host.create(name: "two", layout: [.leaf("/dev/b")])
        let clock = ManualClock()
        let service = SyncService(host: host, interval: .seconds(5), clock: clock)
        let task = Task { try await service.run() }

        try await one.put("k", [1])
        try await two.put("k", [2])
        await clock.waitForSleepers(1)
        clock.advance(by: .seconds(5) - .nanoseconds(1))
        #expect(clock.sleeperCount == 1, "not yet")
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
        #expect(clock.sleeperCount == 0)
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

        let clock = ManualClock()
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
        let clock = ManualClock()
        let group = ServiceGroup(
            services: [SyncService(host: host, interval: .seconds(5), clock: clock)],
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let task = Task { try await group.run() }
        await clock.waitForSleepers(1)
        await group.triggerGracefulShutdown()
        try await task.value
        #expect(clock.sleeperCount == 0)
        #expect(pool.status().lastSyncedTXG == TXG(4), "the final sync is zpkd's job (syncAll)")
    }

    @Test func aNonPositiveIntervalMeansTheDefault() {
        let host = PoolHost(environment: DeviceRack(paths: []).environment())
        #expect(SyncService(host: host, interval: .zero).interval == SyncService.defaultInterval)
        #expect(SyncService(host: host, interval: .milliseconds(250)).interval == .milliseconds(250))
    }
}
