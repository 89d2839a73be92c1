// Multihost in the pool host, in virtual time: two PoolHosts with different hostids on the same
// in-memory leaves, one ManualClock, wall clock = epoch + virtual time. Heartbeats, activity
// checks and claims run on their real drivers; the test moves time in 10 ms steps and waits for
// every actor to be asleep (and no heartbeat I/O in flight) before each step.

import Foundation
import ServiceLifecycle
import Synchronization
import Testing
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSMultihost
import ZFSTestSupport

@testable import ZFSPool

/// Two (or more) hosts sharing leaves and one virtual clock.
final class MultihostRig: Sendable {
    static let epoch: Int64 = 1_700_000_000
    static let step: Duration = .milliseconds(10)

    let clock = ManualClock()
    let devices: [String: InMemoryBlockDevice]
    let paths: [String]

    init(paths: [String] = ["/dev/mh0", "/dev/mh1"]) {
        self.paths = paths
        var devices: [String: InMemoryBlockDevice] = [:]
        for path in paths { devices[path] = InMemoryBlockDevice(size: 64 << 20, path: path) }
        self.devices = devices
    }

    /// Short tunables, as the OpenZFS MMP tests use: 100 ms × 10 fail intervals, 20 import intervals.
    static func tunables(interval: UInt64 = 100, fail: UInt64 = 10) -> MultihostTunablesStore {
        MultihostTunablesStore(MultihostTunables(intervalInMilliseconds: interval, failIntervals: fail, importIntervals: 20))
    }

    /// - Parameter wrap: what the host opens instead of a rig device (`nil`: the device itself).
    func host(
        id: UInt64, name: String, tunables: MultihostTunablesStore = MultihostRig.tunables(), cacheFilePath: String? = nil,
        wrap: (@Sendable (InMemoryBlockDevice) -> any BlockDevice)? = nil
    ) -> PoolHost {
        let devices = self.devices
        let clock = self.clock
        let random = Mutex(SplitMix64(seed: id))
        return PoolHost(
            environment: PoolHost.Environment(
                hostID: id, hostname: name,
                wallClock: WallClock { .seconds(Self.epoch) + clock.now.offset },
                clock: clock, multihostTunables: tunables,
                multihostRandom: { random.withLock { $0.next() } },
                openDevice: { path in
                    guard let device = devices[path] else {
                        throw DeviceError(code: .notFound, message: "no such device \(path)", path: path)
                    }
                    return wrap?(device) ?? device
                }, cacheFilePath: cacheFilePath))
    }

    var now: Duration { clock.now.offset }

    /// Waits (real time, bounded) until `sleepers` tasks sleep on the clock and no heartbeat
    /// I/O of `pools` is in flight, then lets the dust settle. Records an issue saying what it
    /// waited for when that has not happened after `Patience.hang`.
    func settle(
        sleepers: Int, pools: [Pool] = [], delayed: [Pool] = [], until done: () -> Bool = { false },
        sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        let start = ContinuousClock.now
        var quietRounds = 0
        var expected = sleepers
        while ContinuousClock.now - start < Patience.hang {
            if done() { return }
            expected = sleepers + delayed.reduce(0) { $0 + $1.faults.delayedIOCount }
            let quiet = clock.sleeperCount >= expected
                && pools.allSatisfy { $0.heartbeatsSettled }
                && delayed.allSatisfy { Self.onlyDelayedHeartbeatsPending($0) }
            quietRounds = quiet ? quietRounds + 1 : 0
            if quietRounds >= 20 { return }
            await Task.yield()
        }
        Issue.record(
            """
            did not settle in \(Patience.hangText) at virtual t=\(now): \(clock.sleeperCount) of \(expected) sleepers \
            (deadlines \(clock.sleeperDeadlines)); heartbeats settled: \(pools.map(\.heartbeatsSettled)); \
            only delayed heartbeats pending: \(delayed.map(Self.onlyDelayedHeartbeatsPending))
            """, sourceLocation: sourceLocation)
    }

    /// Every heartbeat not yet reported complete is inside its I/O and asleep in an injected
    /// delay (so moving time cannot outrun a write that has not reached its delay yet).
    static func onlyDelayedHeartbeatsPending(_ pool: Pool) -> Bool {
        let issued = pool.heartbeat.history.filter { !$0.isSkip }.map(\.id)
        let (pending, inFlight) = pool.multihostShared.state.withLock { s in
            (issued.filter { !s.landedIDs.contains($0) }.count, s.inFlight)
        }
        return pending == inFlight && inFlight == pool.faults.delayedIOCount
    }

    /// Moves virtual time by `duration` in ``step``s, settling before each step.
    func run(
        for duration: Duration, sleepers: Int, pools: [Pool] = [], delayed: [Pool] = [],
        until done: () -> Bool = { false }, sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        let end = now + duration
        while now < end {
            await settle(sleepers: sleepers, pools: pools, delayed: delayed, until: done, sourceLocation: sourceLocation)
            if done() { return }
            clock.advance(by: Self.step)
        }
        await settle(sleepers: sleepers, pools: pools, delayed: delayed, until: done, sourceLocation: sourceLocation)
    }

    /// Every heartbeat (MMP slot) uberblock on `path`, label by label.
    func mmpSlots(_ path: String) -> [Uberblock?] {
        let device = devices[path]!
        let ring = UberblockRing(ashift: 12)
        return (0..<4).map { label in
            let labelOffset = LabelLayout.labelOffset(index: label, deviceSize: device.sizeInBytes)!
            let offset = ring.slotOffset(ring.mmpSlotIndex, labelOffset: labelOffset)
            let bytes = device.bytes(in: offset..<(offset + UInt64(ring.slotByteCount)))
            return PoolHeartbeatIO.decodeSlot(bytes, ring: ring, absoluteOffset: offset)
        }
    }
}

/// A rig device whose writes at held offsets wait (real time) until released: a sync's write
/// held up on a slow storage link while everything else goes through.
final class GatedDevice: BlockDevice {
    let base: InMemoryBlockDevice
    private let gate = Mutex<(held: Set<UInt64>, waiting: Int)>(([], 0))
    init(_ base: InMemoryBlockDevice) { self.base = base }

    var path: String { base.path }
    var sizeInBytes: UInt64 { base.sizeInBytes }
    var isBlockDevice: Bool { base.isBlockDevice }
    /// Writes now waiting at a held offset.
    var waiting: Int { gate.withLock { $0.waiting } }
    func hold(_ offset: UInt64) { gate.withLock { _ = $0.held.insert(offset) } }
    func releaseAll() { gate.withLock { $0.held = [] } }

    func read(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        try base.read(into: buffer, atAbsoluteOffset: offset)
    }
    func write(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        waitWhileHeld(offset)
        try base.write(from: buffer, atAbsoluteOffset: offset)
    }
    func writeUncached(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        waitWhileHeld(offset)
        try base.writeUncached(from: buffer, atAbsoluteOffset: offset)
    }
    func flush() throws(DeviceError) { try base.flush() }

    private func waitWhileHeld(_ offset: UInt64) {
        guard gate.withLock({ g -> Bool in
            guard g.held.contains(offset) else { return false }
            g.waiting += 1
            return true
        }) else { return }
        while gate.withLock({ $0.held.contains(offset) }) { usleep(1000) }
        gate.withLock { $0.waiting -= 1 }
    }
}

/// The outcome of an async call started in the background, readable without awaiting.
final class Outcome<T: Sendable>: Sendable {
    let value = Mutex<Result<T, any Error>?>(nil)
    var isDone: Bool { value.withLock { $0 != nil } }
    func get() throws -> T? { try value.withLock { $0 }?.get() }
    var error: PoolError? { value.withLock { if case .failure(let e) = $0 { e as? PoolError } else { nil } } }

    static func start(_ body: @escaping @Sendable () async throws -> T) -> (Outcome<T>, Task<Void, Never>) {
        let outcome = Outcome<T>()
        let task = Task {
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            outcome.value.withLock { $0 = result }
        }
        return (outcome, task)
    }
}

/// Progress callbacks with the virtual instant they came at.
final class ProgressLog: Sendable {
    let entries = Mutex<[(ActivityProgress, Duration)]>([])
    let clock: ManualClock
    init(clock: ManualClock) { self.clock = clock }
    var callback: @Sendable (ActivityProgress) -> Void {
        { progress in self.entries.withLock { $0.append((progress, self.clock.now.offset)) } }
    }
    func first(_ phase: ActivityProgress.Phase) -> (ActivityProgress, Duration)? {
        entries.withLock { $0.first { $0.0.phase == phase } }
    }
}

@Suite("Pool multihost (virtual time)", .offTheCooperativePool, .serialized)
struct PoolMultihostTests {
    /// Host A creates a mirror with multihost on and runs its heartbeat.
    /// `a` creates and holds `tank` (see ``holdPool(_:_:)``), then crashes: it forgets the pool
    /// (labels ACTIVE) and its heartbeat stops. Returns the pool's config.
    func crashedHolder(_ rig: MultihostRig, _ a: PoolHost) async throws -> NVList {
        let (pool, runner) = try await holdPool(rig, a)
        let config = pool.config
        a.forget("tank")
        runner.cancel()
        // Wait until the heartbeat has stopped: its loop's sleep would otherwise count as a
        // sleeper for `settle` below while it winds down.
        _ = await runner.result
        return config
    }

    func holdPool(_ rig: MultihostRig, _ a: PoolHost) async throws -> (Pool, Task<Void, any Error>) {
        let pool = try await a.create(
            name: "tank", layout: [.mirror(rig.paths)], properties: ["multihost": "on"])
        try await pool.put("precious", Array("A's data".utf8))
        try await pool.sync()
        let service = a.multihostService
        let runner = Task { try await service.run() }
        await rig.run(for: .milliseconds(500), sleepers: 1, pools: [pool])
        return (pool, runner)
    }

    @Test("heartbeats land in the MMP slots, readable by the ring decoder, with the last synced txg")
    func heartbeatsLand() async throws {
        let rig = MultihostRig()
        let a = rig.host(id: 0xA11CE, name: "host-a")
        let (pool, runner) = try await holdPool(rig, a)
        defer { runner.cancel() }
        let synced = pool.status().lastSyncedTXG
        let status = try #require(pool.status().multihost)
        #expect(status.heartbeatsWritten >= 8)  // 500 ms at one write per 50 ms (100 ms / 2 leaves)
        #expect(status.interval == .milliseconds(100) && status.failIntervals == 10)
        for path in rig.paths {
            let found = rig.mmpSlots(path).compactMap { $0 }
            #expect(!found.isEmpty, "no heartbeat in the MMP slots of \(path)")
            for ub in found {
                #expect(ub.txg == synced)
                #expect(ub.mmpSequence != nil && ub.mmpSequence! >= 1)
                #expect(ub.mmpWriteIntervalInMilliseconds == 100 && ub.mmpFailIntervals == 10)
            }
        }
        // The zdb-compatible decoder of a whole label reads the same slot.
        let device = rig.devices[rig.paths[0]]!
        let labels = DeviceLabels(reading: device)
        let mmp = labels.labels.flatMap(\.slots).filter { $0.index == UberblockRing(ashift: 12).mmpSlotIndex && $0.isUsable }
        #expect(!mmp.isEmpty)
        #expect(pool.multihostHistory.contains { !$0.isSkip && $0.error == 0 })
        #expect(pool.renderMultihostHistory().hasPrefix("id "))
        #expect(pool.renderMultihostHistory().contains("mmp_delay"))
    }

    @Test("heartbeats while a sync's uberblock writes are under way carry the txg being synced (an importer ranks by txg)")
    func heartbeatsCarryTheTxgBeingSynced() async throws {
        let rig = MultihostRig()
        let gates = Dictionary(uniqueKeysWithValues: rig.devices.map { ($0.key, GatedDevice($0.value)) })
        let a = rig.host(id: 0xA11CE, name: "host-a", wrap: { gates[$0.path]! })
        let (pool, runner) = try await holdPool(rig, a)
        defer { runner.cancel() }
        let next = TXG(pool.status().lastSyncedTXG.rawValue + 1)
        // The sync's last uberblock write on the second leaf hangs (a slow link): by then the
        // new txg's uberblock is on disk in other labels, and an importer's best uberblock.
        let gate = gates[rig.paths[1]]!
        let ring = UberblockRing(ashift: 12)
        let label3 = try #require(LabelLayout.labelOffset(index: 3, deviceSize: gate.sizeInBytes))
        gate.hold(ring.slotOffset(ring.syncSlotIndex(for: next, multihost: true), labelOffset: label3))
        try await pool.put("during", Array("a slow sync".utf8))
        let (sync, _) = Outcome<TXG>.start { try await pool.sync() }
        let start = ContinuousClock.now
        while gate.waiting == 0 && !sync.isDone && ContinuousClock.now - start < .seconds(20) { await Task.yield() }
        #expect(gate.waiting == 1, "the sync never reached its held uberblock write")
        await rig.run(for: .milliseconds(300), sleepers: 1, pools: [pool])
        // Heartbeats of the previous txg would rank below that uberblock: an importer's activity
        // check would see nothing change while A heartbeats, and take the pool.
        let written = rig.paths.flatMap { rig.mmpSlots($0).compactMap { $0 } }
        #expect(
            written.contains { $0.txg == next },
            "heartbeats during the uberblock writes of txg \(next.rawValue) carry txgs \(written.map(\.txg.rawValue))")
        gate.releaseAll()
        while !sync.isDone && ContinuousClock.now - start < .seconds(40) { await Task.yield() }
        #expect(try sync.get() == next)
        await rig.run(for: .milliseconds(200), sleepers: 1, pools: [pool])
        #expect(pool.heartbeat.status.suspension == nil)
    }

    @Test("B's import is refused with .poolInUse naming A while A heartbeats; force does not help")
    func importRefusedWhileActive() async throws {
        let rig = MultihostRig()
        let a = rig.host(id: 0xA11CE, name: "host-a")
        let b = rig.host(id: 0xB0B, name: "host-b")
        let (pool, runner) = try await holdPool(rig, a)
        defer { runner.cancel() }
        let config = pool.config
        let (outcome, _) = Outcome<Pool>.start { try await b.open(config: config, mode: .import(force: true)) }
        await rig.run(for: .seconds(4), sleepers: 2, pools: [pool], until: { outcome.isDone })
        let error = try #require(outcome.error)
        #expect(error.code == .poolInUse)
        #expect(error.message.contains("host 'host-a'") && error.message.contains("hostid=a11ce"))
        #expect(b.openPools.isEmpty)
        #expect(pool.status().state == "ACTIVE")
        #expect(try await pool.get("precious") == Array("A's data".utf8))
    }

    @Test("a host with the holder's hostid is refused, and the message says two hosts share that hostid")
    func importRefusedForSharedHostIDSaysSo() async throws {
        let rig = MultihostRig()
        let a = rig.host(id: 0xA11CE, name: "host-a")
        let clone = rig.host(id: 0xA11CE, name: "host-clone")
        let (pool, runner) = try await holdPool(rig, a)
        defer { runner.cancel() }
        let config = pool.config
        let (outcome, _) = Outcome<Pool>.start { try await clone.open(config: config, mode: .import(force: true)) }
        await rig.run(for: .seconds(4), sleepers: 2, pools: [pool], until: { outcome.isDone })
        let error = try #require(outcome.error)
        #expect(error.code == .poolInUse)
        #expect(
            error.message.contains(
                "Two hosts share hostid 0xa11ce: this host ('host-clone') and 'host-a'. Multihost protection tells hosts "
                    + "apart by hostid, so give each host its own: run zgenhostid on one of them (it writes /etc/hostid) "
                    + "and restart zpkd there."), "\(error.message)")
        #expect(error.message.contains("pool is imported on host 'host-a' (hostid=a11ce)"))
        #expect(clone.openPools.isEmpty)
        #expect(pool.status().state == "ACTIVE")
    }

    @Test("a host with another hostid is not told about a shared hostid")
    func importRefusedForOtherHostIDSaysNothingOfSharing() async throws {
        let rig = MultihostRig()
        let a = rig.host(id: 0xA11CE, name: "host-a")
        let b = rig.host(id: 0xB0B, name: "host-b")
        let (pool, runner) = try await holdPool(rig, a)
        defer { runner.cancel() }
        let config = pool.config
        let (outcome, _) = Outcome<Pool>.start { try await b.open(config: config, mode: .import(force: true)) }
        await rig.run(for: .seconds(4), sleepers: 2, pools: [pool], until: { outcome.isDone })
        let error = try #require(outcome.error)
        #expect(error.code == .poolInUse)
        #expect(!error.message.contains("share hostid"))
        #expect(error.message.contains("This host saw its newest heartbeat "), "\(error.message)")
    }

    @Test("a cache-file pool is listed as opening with its countdown while its check runs; verbs are refused until it opens")
    func cacheFilePoolOpensInTheBackgroundWithACountdown() async throws {
        let rig = MultihostRig()
        let directory = try TemporaryDirectory(prefix: "opening")
        let cache = directory.path("zpool.cache")
        let a = rig.host(id: 0xA11CE, name: "host-a", cacheFilePath: cache)
        let (pool, runner) = try await holdPool(rig, a)
        a.forget("tank")  // a crash: ACTIVE in the labels and in the cache file
        await rig.settle(sleepers: 0, pools: [pool])
        runner.cancel()

        let restarted = rig.host(id: 0xA11CE, name: "host-a", cacheFilePath: cache)
        let opening = await restarted.prepareCacheFileOpen()
        #expect(restarted.openingPools.map(\.name) == ["tank"])
        #expect(restarted.openingPools.first?.phase == .starting)
        #expect(throws: PoolError.self) { _ = try restarted.pool(named: "tank") }
        #expect((try? restarted.pool(named: "tank")) == nil)
        do {
            _ = try restarted.pool(named: "tank")
        } catch let error as PoolError {
            #expect(error.code == .poolOpening)
            #expect(error.message == "pool 'tank' is still opening: reading its labels; try again when it is open (zpk list shows its countdown)")
        }
        let (outcome, _) = Outcome<[CacheFileOpenOutcome]>.start { await restarted.open(opening) }
        // Into the check: its countdown is the plan (2 s + the drawn extension) minus the time since.
        await rig.run(for: .milliseconds(300), sleepers: 1, until: { outcome.isDone })
        let counting = try #require(restarted.openingPools.first)
        #expect(counting.phase == .activityCheck)
        let total = try #require(counting.total)
        #expect(total >= .seconds(2) && total < .milliseconds(2500))
        let remaining = try #require(counting.remaining)
        #expect(remaining > .zero && remaining <= total - .milliseconds(200), "\(remaining) of \(total)")
        // The countdown runs on the host's clock between reports (one per poll): half-way to
        // the next wake-up, exactly that much less is left.
        let nextWakeUp = try #require(rig.clock.sleeperDeadlines.min())
        let half = (nextWakeUp - rig.now) / 2
        #expect(half > .zero)
        rig.clock.advance(by: half)
        #expect(restarted.openingPools.first?.remaining == remaining - half)
        do {
            _ = try restarted.pool(named: "tank")
            Issue.record("a verb on an opening pool must be refused")
        } catch let error as PoolError {
            #expect(error.code == .poolOpening)
            #expect(error.message.hasPrefix("pool 'tank' is still opening: multihost activity check, "), "\(error.message)")
            #expect(error.message.contains(" s left; try again when it is open"))
        }
        // An import of the same pool meanwhile is refused the same way.
        let config = pool.config
        await #expect(throws: PoolError.self) { _ = try await restarted.open(config: config, mode: .import(force: true)) }
        // Then the check passes, the claim runs and the pool opens; the registry empties.
        await rig.run(for: .seconds(5), sleepers: 1, until: { outcome.isDone })
        let outcomes = try #require(try outcome.get())
        #expect(outcomes.count == 1)
        let opened = try outcomes[0].result.get()
        #expect(restarted.openingPools.isEmpty)
        #expect(try restarted.pool(named: "tank") === opened)
        #expect(try await opened.get("precious") == Array("A's data".utf8))
        withExtendedLifetime(directory) {}
    }

    @Test("A crashes (forgotten, heartbeat stopped): B waits the formula's 2 s, claims for 1 s, imports A's objects")
    func importAfterCrashWaits() async throws {
        let rig = MultihostRig()
        let a = rig.host(id: 0xA11CE, name: "host-a")
        let b = rig.host(id: 0xB0B, name: "host-b")
        let (pool, runner) = try await holdPool(rig, a)
        let config = pool.config
        a.forget("tank")
        await rig.settle(sleepers: 0, pools: [pool])
        runner.cancel()
        // Wait until the heartbeat has stopped: its loop's sleep would otherwise count as a
        // sleeper for `settle` below while it winds down.
        _ = await runner.result
        let log = ProgressLog(clock: rig.clock)
        let start = rig.now
        let (outcome, _) = Outcome<Pool>.start {
            try await b.open(config: config, mode: .import(force: true), progress: log.callback)
        }
        await rig.run(for: .seconds(5), sleepers: 1, until: { outcome.isDone })
        let imported = try #require(try outcome.get())
        // D = fail_intervals × interval × 200 % = 10 × 100 ms × 2 = 2 s (+ 0–24.9 % drawn).
        let check = try #require(log.first(.activityCheck))
        let claim = try #require(log.first(.claim))
        let waited = claim.1 - start
        let planned = check.0.total
        #expect(planned >= .seconds(2) && planned < .milliseconds(2500))
        #expect(waited >= planned && waited <= planned + MultihostRig.step)
        #expect(claim.0.total == .seconds(1))
        #expect(try await imported.get("precious") == Array("A's data".utf8))
        #expect(imported.config.string("hostname") == "host-b")
    }

    @Test("A exported: A reimports at once; B (another hostid) imports without the wait, after a 0.5 s claim")
    func importAfterExport() async throws {
        let rig = MultihostRig()
        let a = rig.host(id: 0xA11CE, name: "host-a")
        let b = rig.host(id: 0xB0B, name: "host-b")
        let (pool, runner) = try await holdPool(rig, a)
        let config = pool.config
        try await a.export("tank")
        runner.cancel()
        // Wait until the heartbeat has stopped: its loop's sleep would otherwise count as a
        // sleeper for `settle` below while it winds down.
        _ = await runner.result
        // Same host: "exported by this host" skips the check — no virtual time passes.
        let start = rig.now
        let again = try await a.open(config: config, mode: .import())
        #expect(rig.now == start)
        try await a.export("tank")
        // Another host: no --force needed (exported) and no wait (master would wait ≥ 2 s plus
        // 10 claim rounds of 100 ms); only ten claim rounds of 50 ms.
        let claimed = Mutex<[ActivityProgress]>([])
        let (outcome, _) = Outcome<Pool>.start {
            try await b.open(config: config, mode: .import(), progress: { p in claimed.withLock { $0.append(p) } })
        }
        await rig.run(for: .seconds(5), sleepers: 1, until: { outcome.isDone })
        let imported = try #require(try outcome.get())
        let took = rig.now - start
        #expect(took >= ActivityCheck.exportedClaimRound * 10 && took <= ActivityCheck.exportedClaimRound * 10 + MultihostRig.step * 2)
        let phases = Set(claimed.withLock { $0.map(\.phase) })
        #expect(phases == [.claim], "no activity-check wait, only the claim")
        #expect(try await imported.get("precious") == Array("A's data".utf8))
        _ = again
    }

    @Test("two hosts import a pool a third exported at the same instant: never both (the claims see each other)")
    func racingImportsOfAnExportedPool() async throws {
        let rig = MultihostRig()
        let a = rig.host(id: 0xA11CE, name: "host-a")
        let b = rig.host(id: 0xB0B, name: "host-b")
        let c = rig.host(id: 0xC0C, name: "host-c")
        let (pool, runner) = try await holdPool(rig, a)
        let config = pool.config
        try await a.export("tank")
        runner.cancel()
        // Wait until the heartbeat has stopped: its loop's sleep would otherwise count as a
        // sleeper for `settle` below while it winds down.
        _ = await runner.result
        let (fromB, _) = Outcome<Pool>.start { try await b.open(config: config, mode: .import()) }
        let (fromC, _) = Outcome<Pool>.start { try await c.open(config: config, mode: .import()) }
        await rig.run(for: .seconds(5), sleepers: 1, until: { fromB.isDone && fromC.isDone })
        #expect(fromB.isDone && fromC.isDone)
        let winners = [fromB, fromC].filter { (try? $0.get()) != nil }
        #expect(winners.count <= 1, "both hosts imported the pool")
        for loser in [fromB, fromC] where (try? loser.get()) == nil {
            #expect(loser.error?.code == .poolInUse, "\(String(describing: loser.error))")
        }
    }

    @Test("all leaves failing: A suspends within one tick of fail_intervals × interval; writes throw .poolSuspended")
    func suspendsWhenHeartbeatsFail() async throws {
        let rig = MultihostRig()
        let a = rig.host(id: 0xA11CE, name: "host-a")
        let (pool, runner) = try await holdPool(rig, a)
        defer { runner.cancel() }
        for path in rig.paths { try pool.inject(.error, leaf: path) }
        await rig.run(for: .milliseconds(1500), sleepers: 1, pools: [pool], until: { pool.status().suspension != nil })
        let suspension = try #require(pool.heartbeat.status.suspension)
        let deadline = try #require(suspension.deadline)
        #expect(suspension.at >= deadline && suspension.at <= deadline + MultihostRig.step)
        #expect(deadline - pool.heartbeat.status.lastWrite == .seconds(1))
        let status = pool.status()
        #expect(status.state == "SUSPENDED")
        #expect(status.suspension?.contains("have not succeeded") == true)
        await #expect(throws: PoolError.self) { try await pool.put("x", [1]) }
        do { try await pool.put("x", [1]) } catch let error as PoolError {
            #expect(error.code == .poolSuspended)
            #expect(error.message.contains("zpk clear tank"))
        }
        do { try await pool.sync() } catch let error as PoolError { #expect(error.code == .poolSuspended) }
        do { try await pool.setProperty("comment", "x") } catch let error as PoolError { #expect(error.code == .poolSuspended) }
        // No heartbeat is issued while suspended.
        let issued = pool.multihostHistory.filter { !$0.isSkip }.count
        pool.clearInjectedFaults()
        await rig.run(for: .milliseconds(500), sleepers: 1, pools: [pool])
        #expect(pool.multihostHistory.filter { !$0.isSkip }.count == issued)
    }

    @Test("clear after a suspension: resumes when the pool is quiet for the check's duration")
    func clearWhenQuiet() async throws {
        let rig = MultihostRig()
        let a = rig.host(id: 0xA11CE, name: "host-a")
        let (pool, runner) = try await holdPool(rig, a)
        defer { runner.cancel() }
        for path in rig.paths { try pool.inject(.error, leaf: path) }
        await rig.run(for: .milliseconds(1500), sleepers: 1, pools: [pool], until: { pool.status().suspension != nil })
        #expect(pool.status().state == "SUSPENDED")
        pool.clearInjectedFaults()
        let start = rig.now
        let (outcome, _) = Outcome<Void>.start { try await pool.clear() }
        await rig.run(for: .seconds(4), sleepers: 2, pools: [pool], until: { outcome.isDone })
        _ = try #require(try outcome.get())
        #expect(rig.now - start >= .seconds(2))
        #expect(pool.status().state == "ACTIVE" && pool.status().suspension == nil)
        let written = pool.status().multihost?.heartbeatsWritten ?? 0
        await rig.run(for: .milliseconds(300), sleepers: 1, pools: [pool])
        #expect((pool.status().multihost?.heartbeatsWritten ?? 0) > written)
        try await pool.put("after", [7])
        try await pool.sync()
    }

    @Test("clear is refused with .poolInUse while another host writes the pool")
    func clearRefusedWhileAnotherHostWrites() async throws {
        let rig = MultihostRig()
        let a = rig.host(id: 0xA11CE, name: "host-a")
        let (pool, runner) = try await holdPool(rig, a)
        defer { runner.cancel() }
        for path in rig.paths { try pool.inject(.error, leaf: path) }
        await rig.run(for: .milliseconds(1500), sleepers: 1, pools: [pool], until: { pool.status().suspension != nil })
        pool.clearInjectedFaults()
        // Another writer: heartbeat-shaped uberblocks with a rising sequence in label 1's MMP slot.
        let base = try #require(pool.core.withLock { $0.lastUberblock })
        let device = rig.devices[rig.paths[1]]!
        let ring = UberblockRing(ashift: 12)
        let offset = ring.slotOffset(ring.mmpSlotIndex, labelOffset: LabelLayout.labelOffset(index: 1, deviceSize: device.sizeInBytes)!)
        let (outcome, _) = Outcome<Void>.start { try await pool.clear() }
        var sequence: UInt16 = 1
        let end = rig.now + .seconds(4)
        while !outcome.isDone && rig.now < end {
            await rig.settle(sleepers: 2, pools: [pool], until: { outcome.isDone })
            var ub = base
            ub.timestampInSeconds = UInt64(MultihostRig.epoch) + UInt64(rig.now.components.seconds)
            ub.mmpConfig = MultihostTunables(intervalInMilliseconds: 100).heartbeatConfig(sequence: UInt64(sequence))
            sequence &+= 1
            device.setBytes(ub.encodeSlot(in: ring, absoluteOffset: offset), at: offset)
            rig.clock.advance(by: MultihostRig.step)
        }
        let error = try #require(outcome.error)
        #expect(error.code == .poolInUse)
        #expect(error.message.contains("export"))
        #expect(pool.status().state == "SUSPENDED")
    }

    @Test("a slow leaf raises mmp_delay")
    func slowLeafRaisesDelay() async throws {
        let rig = MultihostRig()
        let a = rig.host(id: 0xA11CE, name: "host-a")
        let (pool, runner) = try await holdPool(rig, a)
        defer { runner.cancel() }
        let before = try #require(pool.status().multihost).mmpDelay
        #expect(before <= .milliseconds(100))
        for path in rig.paths { try pool.inject(.delay(.milliseconds(300)), leaf: path) }
        // Delayed writes sleep on the clock too: more sleepers than the heartbeat loop.
        await rig.run(for: .seconds(1), sleepers: 1, delayed: [pool])
        pool.clearInjectedFaults()
        // Writes already waiting finish when their delay has passed on the clock.
        await rig.run(for: .milliseconds(400), sleepers: 1, delayed: [pool])
        await rig.settle(sleepers: 1, pools: [pool])
        let after = try #require(pool.status().multihost).mmpDelay
        #expect(after > before, "mmp_delay \(after) did not rise above \(before)")
        #expect(pool.status().state == "ACTIVE")
    }

    @Test("multihost off at run time stops heartbeats, on starts them; a tunable change shortens the cadence")
    func runtimeSwitches() async throws {
        let rig = MultihostRig()
        let tunables = MultihostRig.tunables(interval: 400)
        let a = rig.host(id: 0xA11CE, name: "host-a", tunables: tunables)
        let (pool, runner) = try await holdPool(rig, a)
        defer { runner.cancel() }
        func writes() -> Int { pool.multihostHistory.filter { !$0.isSkip }.count }
        // 400 ms / 2 leaves: one write per 200 ms.
        var count = writes()
        await rig.run(for: .seconds(1), sleepers: 1, pools: [pool])
        let slow = writes() - count
        #expect((4...6).contains(slow))
        tunables.set(.interval, to: 100)
        count = writes()
        await rig.run(for: .seconds(1), sleepers: 1, pools: [pool])
        let fast = writes() - count
        #expect((18...22).contains(fast), "\(fast) heartbeats in 1 s at 100 ms / 2 leaves")

        try await pool.setProperty("multihost", "off")
        #expect(pool.status().multihost == nil)
        count = writes()
        await rig.run(for: .seconds(1), sleepers: 1, pools: [pool])
        #expect(writes() == count)
        try await pool.sync()
        let off = try #require(pool.core.withLock { $0.lastUberblock })
        #expect(off.mmpDelayInNanoseconds == 0 && off.mmpMagic == MMPConfig.magic)

        try await pool.setProperty("multihost", "on")
        await rig.run(for: .milliseconds(500), sleepers: 1, pools: [pool])
        #expect(writes() > count)
        try await pool.sync()
        let on = try #require(pool.core.withLock { $0.lastUberblock })
        #expect(on.mmpDelayInNanoseconds > 0 && on.mmpWriteIntervalInMilliseconds == 100)
    }

    @Test("split brain: B's heartbeats in A's MMP slots suspend A, naming B")
    func splitBrain() async throws {
        let rig = MultihostRig()
        // A never suspends (fail intervals 0), so a hang leaves it silent but alive.
        let a = rig.host(id: 0xA11CE, name: "host-a", tunables: MultihostRig.tunables(fail: 0))
        let b = rig.host(id: 0xB0B, name: "host-b")
        let (pool, runner) = try await holdPool(rig, a)
        defer { runner.cancel() }
        for path in rig.paths { try pool.inject(.hang, leaf: path) }
        await rig.run(for: .milliseconds(200), sleepers: 1)
        // B sees no change for the whole check, claims and imports (with force: A never exported).
        let config = pool.config
        let serviceB = b.multihostService
        let runnerB = Task { try await serviceB.run() }
        defer { runnerB.cancel() }
        let (outcome, _) = Outcome<Pool>.start { try await b.open(config: config, mode: .import(force: true)) }
        await rig.run(for: .seconds(8), sleepers: 2, until: { outcome.isDone })
        let imported = try #require(try outcome.get())
        await rig.run(for: .milliseconds(500), sleepers: 2, pools: [imported])
        // A's devices answer again: its next heartbeat finds B's.
        pool.clearInjectedFaults()
        await rig.run(for: .seconds(1), sleepers: 2, pools: [pool, imported], until: { pool.status().suspension != nil })
        let suspension = try #require(pool.status().suspension)
        #expect(suspension.contains("host 'host-b'") && suspension.contains("0xb0b"))
        #expect(pool.status().state == "SUSPENDED")
        #expect(imported.status().state == "ACTIVE", "\(imported.status().suspension ?? "")")
    }

    @Test("our own crashed multihost pool reopened from the cache file waits the check too (master: only 'exported by us' skips it)")
    func cacheFileOpenAfterCrashWaits() async throws {
        let rig = MultihostRig()
        let a = rig.host(id: 0xA11CE, name: "host-a")
        let config = try await crashedHolder(rig, a)
        let a2 = rig.host(id: 0xA11CE, name: "host-a")
        let log = ProgressLog(clock: rig.clock)
        let start = rig.now
        let (outcome, _) = Outcome<Pool>.start { try await a2.open(config: config, mode: .cacheFile, progress: log.callback) }
        await rig.run(for: .seconds(5), sleepers: 1, until: { outcome.isDone })
        let reopened = try #require(try outcome.get())
        #expect(rig.now - start >= .seconds(3))  // 2 s check + 1 s claim
        #expect(log.first(.claim) != nil)
        #expect(try await reopened.get("precious") == Array("A's data".utf8))
    }

    @Test("a host without a hostid cannot import a multihost pool")
    func noHostIDRefused() async throws {
        let rig = MultihostRig()
        let a = rig.host(id: 0xA11CE, name: "host-a")
        let config = try await crashedHolder(rig, a)
        let nobody = rig.host(id: 0, name: "nobody")
        let error = await #expect(throws: PoolError.self) { try await nobody.open(config: config, mode: .import(force: true)) }
        #expect(error?.code == .poolInUse)
        #expect(error?.message.contains("hostid is not set") == true)
    }

    @Test("inject: an unknown leaf is .unknownDevice; a put hung on every leaf ends when the pool is forgotten")
    func injectErrorsAndHangRelease() async throws {
        let rig = MultihostRig()
        let a = rig.host(id: 0xA11CE, name: "host-a")
        let pool = try await a.create(name: "tank", layout: [.mirror(rig.paths)])
        let error = #expect(throws: PoolError.self) { try pool.inject(.error, leaf: "/dev/nope") }
        #expect(error?.code == .unknownDevice && error?.message.contains("/dev/mh0") == true)
        // By guid: EIO on one leg of the mirror, the put still lands on the other.
        try pool.inject(.error, leaf: "\(pool.status().leaves[1].guid.rawValue)")
        try await pool.put("one-leg", [1, 2, 3])
        #expect(pool.status().leaves[1].counters.writeErrors == 1)
        pool.clearInjectedFaults()
        for path in rig.paths { try pool.inject(.hang, leaf: path) }
        let (outcome, _) = Outcome<Void>.start { try await pool.put("stuck", [4, 5, 6]) }
        let before = ContinuousClock.now
        while !outcome.isDone && ContinuousClock.now - before < .milliseconds(200) { await Task.yield() }
        #expect(!outcome.isDone, "a put on hung leaves returned")
        a.forget("tank")
        let start = ContinuousClock.now
        while !outcome.isDone && ContinuousClock.now - start < Patience.hang { await Task.yield() }
        let failure = try #require(outcome.error, "the hung put did not end with the pool")
        #expect(failure.code == .ioFailure || failure.code == .poolClosed)
        await #expect(throws: PoolError.self) { try await pool.get("one-leg") }
    }

    @Test("a put held by hung leaves when A suspends fails at once and never lands, even after the leaves come back and B took the pool")
    func heldWriteIsFencedAtSuspension() async throws {
        let rig = MultihostRig()
        let a = rig.host(id: 0xA11CE, name: "host-a")
        let b = rig.host(id: 0xB0B, name: "host-b")
        let (pool, runner) = try await holdPool(rig, a)
        defer { runner.cancel() }
        let config = pool.config
        // A's storage stops answering with a put under way (a partition, a stalled server).
        for path in rig.paths { try pool.inject(.hang, leaf: path) }
        let marker = [UInt8](repeating: 0xA5, count: 4096)
        let (held, _) = Outcome<Void>.start { try await pool.put("a-late", marker) }
        await rig.run(for: .milliseconds(1500), sleepers: 1, until: { pool.heartbeat.status.suspension != nil })
        #expect(pool.heartbeat.status.suspension != nil)
        // Suspended: the held put fails now instead of waiting for the devices.
        let start = ContinuousClock.now
        while !held.isDone && ContinuousClock.now - start < Patience.hang { await Task.yield() }
        #expect(held.isDone && held.error != nil, "the put held by the hang did not fail at the suspension")
        // B takes the pool and writes.
        let (outcome, _) = Outcome<Pool>.start { try await b.open(config: config, mode: .import(force: true)) }
        await rig.run(for: .seconds(5), sleepers: 2, until: { outcome.isDone })
        let taken = try #require(try outcome.get())
        try await taken.put("b-object", [UInt8](repeating: 0xB0, count: 4096))
        try await taken.sync()
        // A's devices answer again: nothing A held may land on what is now B's pool.
        pool.clearInjectedFaults()
        await rig.run(for: .milliseconds(500), sleepers: 1)
        for path in rig.paths {
            let device = rig.devices[path]!
            var landed: [UInt64] = []
            var offset: UInt64 = 0
            while offset + 4096 <= device.sizeInBytes {
                if device.bytes(in: offset..<(offset + 1)) == [0xA5], device.bytes(in: offset..<(offset + 4096)) == marker {
                    landed.append(offset)
                }
                offset += 4096
            }
            #expect(landed.isEmpty, "A's held block landed on \(path) at \(landed) after B took the pool")
        }
        #expect(try await taken.get("b-object") == [UInt8](repeating: 0xB0, count: 4096))
        #expect(pool.heartbeat.status.suspension != nil)
    }

    @Test("clear is refused at once when another host imported the pool while it was suspended, even if it is quiet now")
    func clearRefusedAfterTakeover() async throws {
        let rig = MultihostRig()
        let a = rig.host(id: 0xA11CE, name: "host-a")
        let b = rig.host(id: 0xB0B, name: "host-b")
        let (pool, runner) = try await holdPool(rig, a)
        defer { runner.cancel() }
        for path in rig.paths { try pool.inject(.error, leaf: path) }
        await rig.run(for: .milliseconds(1500), sleepers: 1, pools: [pool], until: { pool.status().suspension != nil })
        let config = pool.config
        let (outcome, _) = Outcome<Pool>.start { try await b.open(config: config, mode: .import(force: true)) }
        await rig.run(for: .seconds(5), sleepers: 2, until: { outcome.isDone })
        let taken = try #require(try outcome.get())
        try await taken.put("b-was-here", [1])
        try await taken.sync()
        b.forget("tank")  // B is quiet now
        pool.clearInjectedFaults()
        let start = rig.now
        let error = await #expect(throws: PoolError.self) { try await pool.clear() }
        #expect(rig.now == start, "refused without waiting")
        #expect(error?.code == .poolInUse)
        #expect(error?.message.contains("host-b") == true && error?.message.contains("b0b") == true)
        #expect(pool.status().state == "SUSPENDED")
        // Export writes nothing: B's txg stays the newest on disk.
        try await a.export("tank")
        let device = rig.devices[rig.paths[0]]!
        let uberblocks: [Uberblock] = DeviceLabels(reading: device).labels.flatMap { $0.slots.compactMap(\.uberblock) }
        let newest = uberblocks.map(\.txg.rawValue).max() ?? 0
        #expect(newest > pool.openReport.openedTXG.rawValue + 1, "B's syncs are still the newest on disk")
        #expect(taken.guid == pool.guid)
    }
}
