// The heartbeat driver: runs `HeartbeatStateMachine` against real time and real devices.
//
// One `HeartbeatService` per imported pool (OpenZFS: one `mmp_thread` per pool). The pool
// plugs in through `HeartbeatIO` (its leaves, a blocking write of one MMP slot, optionally a
// blocking read of one), tells the service about txg syncs (`uberblockSynced`) and property
// changes (`setMultihost`), and learns of what happens through the `onEvent` and `onSuspend`
// callbacks (synchronous, on the service's threads) or the `events` stream. Tunables come from
// a `MultihostTunablesStore` shared by every pool of the host.
//
// Mechanism: the loop runs on a thread of its own (`mmp_thread`). It asks the state machine
// what to do at monotonic `now` (injected clock) and wall-clock seconds (injected `WallClock`),
// writes the heartbeat, records history, then sleeps until the machine's next instant or until
// woken (interval change, multihost on/off, resume, shutdown).
//
// Writes never hold the loop up, as in mmp.c (whose writes are asynchronous zios); a hung leaf
// stays "pending" and is skipped while the other leaves get their heartbeats. The loop writes
// each heartbeat itself, with a rescue timer armed for a little after its next instant; a write
// still under way then makes the timer start a new loop thread, and the old one finishes its
// write's bookkeeping and ends. A thread wake-up per heartbeat saved is about a third of the
// heartbeat's CPU time (BENCHMARKS.md §6).
//
// The sleep and the rescue timer are one seam, `HeartbeatTimer`: on `ContinuousClock` a
// condition variable on `CLOCK_MONOTONIC` and a `timerfd` (`MonotonicHeartbeatTimer`), on an
// injected test clock tasks asleep on that clock (`VirtualHeartbeatTimer`). Everything else —
// the loop, the inline write, the hand-over — is the same code in production and in
// virtual-time tests.
//
// Split-brain alarm (OpenZFS has none): before a write, the service can read back the MMP slot
// it is about to overwrite. A valid heartbeat there that this service never wrote, and that is
// not older than what it last wrote to that slot (or, for a slot it never wrote, than the
// pool's last synced uberblock), means another writer: the service logs at `critical`,
// withholds the write, suspends the pool with `.foreignHeartbeat` naming the writer's hostname
// and hostid when the label says, and waits for `resume()`.
//
// Shutdown (ServiceLifecycle graceful shutdown, or cancellation): no new heartbeat is issued,
// writes already issued are awaited (mmp_thread_stop waits for outstanding zios too), then
// `run()` returns. A write hung in the device keeps shutdown waiting, as in OpenZFS.

import CZFSLinux
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import ZFSDevice
import ZFSFormat

/// One leaf vdev as the heartbeat sees it.
public struct HeartbeatLeaf: Hashable, Sendable {
    public var guid: VdevGUID
    /// Printed in history and messages (`nil` for holes / missing placeholders).
    public var path: String?
    /// False for holes, missing, offline, detached or faulted leaves (history mask 0x1).
    public var isWritable: Bool
    public init(guid: VdevGUID, path: String?, isWritable: Bool) {
        self.guid = guid; self.path = path; self.isWritable = isWritable
    }
}

/// What one MMP slot holds, read back for the split-brain alarm.
public struct MMPSlotReading: Hashable, Sendable {
    /// The slot's uberblock, `nil` when the slot is empty or fails its checksum.
    public var uberblock: Uberblock?
    /// Hostname and hostid from the config of the label holding the slot, when known.
    public var host: LabelHost?
    public init(uberblock: Uberblock?, host: LabelHost?) { self.uberblock = uberblock; self.host = host }
}

/// The pool's side of the heartbeat: what a `ZFSPool` host implements.
///
/// `write` and `readMMPSlot` block; the service calls them on worker threads, never on the
/// cooperative pool. `heartbeatLeaves` is called at every iteration and must not block.
public protocol HeartbeatIO: Sendable {
    /// The pool's leaves in a stable order (holes and missing placeholders included, unwritable).
    func heartbeatLeaves() -> [HeartbeatLeaf]
    /// Writes `uberblock` (zero-padded to the slot, with its embedded checksum) into the MMP slot
    /// (the last slot of the ring, `UberblockRing.mmpSlotIndex`) of `label` (0–3) of `leaf`. No
    /// cache flush. Blocking.
    func write(uberblock: Uberblock, leaf: HeartbeatLeaf, label: Int) throws
    /// Reads that same slot (for the split-brain alarm). `nil`: not supported. Blocking.
    func readMMPSlot(leaf: HeartbeatLeaf, label: Int) throws -> MMPSlotReading?
}

extension HeartbeatIO {
    /// No read-back: the split-brain alarm is off for this pool.
    public func readMMPSlot(leaf: HeartbeatLeaf, label: Int) throws -> MMPSlotReading? { nil }
}

/// A heartbeat found in one of our MMP slots that this host did not write.
public struct ForeignHeartbeat: Hashable, Sendable, CustomStringConvertible {
    public var leaf: HeartbeatLeaf
    public var label: Int
    /// What was found.
    public var uberblock: Uberblock
    /// The writer according to the label holding the slot (`nil` when the label did not say).
    public var host: LabelHost?
    /// What this host last wrote to that slot (`nil`: never, then the last synced uberblock was
    /// the reference).
    public var ourLast: Uberblock?

    public var description: String {
        let who: String
        if let host, host.hostname != nil || host.hostID != nil {
            who = "host '\(host.hostname ?? "<unknown>")' (hostid 0x\(String(host.hostID ?? 0, radix: 16)))"
        } else {
            who = "another host"
        }
        let seq = uberblock.mmpSequence.map(String.init) ?? "-"
        return "a heartbeat this host did not write (txg \(uberblock.txg.rawValue), timestamp \(uberblock.timestampInSeconds), sequence \(seq)) in label \(label) of \(leaf.path ?? "leaf \(leaf.guid.rawValue)"); \(who) may be writing the pool too"
    }
}

/// Why and when a pool was suspended by its heartbeat.
public struct HeartbeatSuspension: Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        /// No heartbeat (or sync) completed for more than fail_intervals × interval.
        case heartbeatsFailed(silentFor: Duration, failAfter: Duration)
        /// The split-brain alarm: another writer's heartbeat was found.
        case foreignHeartbeat(ForeignHeartbeat)
    }
    public var pool: String
    public var reason: Reason
    /// Monotonic instant (offset from the service's start) of the suspension.
    public var at: Duration
    /// The suspension deadline in force: last completed write + fail_ns (`nil` when F = 0).
    public var deadline: Duration?

    public var description: String {
        switch reason {
        case .heartbeatsFailed(let silent, let failAfter):
            return "MMP writes to pool '\(pool)' have not succeeded in over \(nanoseconds(failAfter) / 1_000_000) ms (none for \(nanoseconds(silent) / 1_000_000) ms); suspending pool. Another system could import the pool undetected; make sure the pool's devices are connected, then run 'zpk clear \(pool)'"
        case .foreignHeartbeat(let foreign):
            return "pool '\(pool)': found \(foreign); suspending pool to avoid a split brain. Find out which host should own the pool and stop it on the other one"
        }
    }
}

/// What the heartbeat did, in order (``HeartbeatService/events``).
public enum HeartbeatEvent: Hashable, Sendable {
    /// A write was issued (history id, leaf, label, the uberblock written, monotonic instant).
    case issued(id: UInt64, leaf: HeartbeatLeaf, label: Int, uberblock: Uberblock, at: Duration)
    /// That write completed (or, `success` false, failed or was withheld).
    case landed(id: UInt64, leaf: HeartbeatLeaf, label: Int, success: Bool, at: Duration)
    /// No leaf could take the heartbeat.
    case skipped(HeartbeatStateMachine.SkipMask, at: Duration)
    case suspended(HeartbeatSuspension)
    /// ``HeartbeatService/resume()`` was called.
    case resumed(at: Duration)
    /// `run()` is returning.
    case stopped
}

/// A snapshot of the heartbeat's state (`zpk status`).
public struct HeartbeatStatus: Hashable, Sendable {
    public var multihost: Bool
    public var suspension: HeartbeatSuspension?
    /// Monotonic instant of the last completed heartbeat or sync (`mmp_last_write`).
    public var lastWrite: Duration
    /// `mmp_delay`.
    public var mmpDelay: Duration
    /// `mmp_fail_ns`.
    public var failAfter: Duration
    /// `lastWrite + failAfter` while multihost is on, F ≠ 0 and not suspended.
    public var suspensionDeadline: Duration?
    /// The service's monotonic now when the snapshot was taken.
    public var now: Duration
}

/// The MMP heartbeat of one imported pool, as a ServiceLifecycle `Service`.
///
/// The corresponding OpenZFS functions are `mmp_thread`, `mmp_write_uberblock`,
/// `mmp_write_done` and `mmp_update_uberblock` (`module/zfs/mmp.c`).
public final class HeartbeatService: Service, Sendable {
    /// Per-pool settings.
    public struct Configuration: Sendable {
        /// The pool's name, for messages and logs.
        public var pool: String
        /// The `multihost` property at start.
        public var multihost: Bool
        /// History records kept (0: off). Default ``MultihostHistory/defaultCapacity``.
        public var historyCapacity: Int
        /// Read each MMP slot back before overwriting it (split-brain alarm).
        public var detectsForeignHeartbeats: Bool

        public init(pool: String, multihost: Bool, historyCapacity: Int = MultihostHistory.defaultCapacity, detectsForeignHeartbeats: Bool = true) {
            self.pool = pool
            self.multihost = multihost
            self.historyCapacity = historyCapacity
            self.detectsForeignHeartbeats = detectsForeignHeartbeats
        }
    }

    struct SlotKey: Hashable { var guid: VdevGUID; var label: Int }
    struct HeartbeatKey: Hashable { var txg: TXG; var timestamp: UInt64; var sequence: UInt16? }

    private struct State {
        var machine: HeartbeatStateMachine
        /// Chooses each heartbeat's label (seeded once from the caller's generator: the system
        /// generator costs a system call per number).
        var rng: SplitMix64
        var history: MultihostHistory
        var nextID: UInt64 = 1
        var skipRun: (id: UInt64, mask: HeartbeatStateMachine.SkipMask, start: Duration, count: UInt64)?
        var leaves: [HeartbeatLeaf] = []
        var syncedBase: Uberblock
        var lastWritten: [SlotKey: Uberblock] = [:]
        var ours = RecentSet<HeartbeatKey>(capacity: HeartbeatService.rememberedHeartbeats)
        var suspension: HeartbeatSuspension?
        var stopping = false
        var iterations = 0
        /// Which loop thread holds the loop: only it may go on after a write (``HeartbeatTimer``'s rescue).
        var loopGeneration: UInt64 = 0
        /// The holder is inside a heartbeat write of its own.
        var loopWriting = false
        /// Resumed by the holder that sees `stopping`.
        var loopEnded: CheckedContinuation<Void, Never>?

        /// Adds `ub` to the heartbeats the split-brain alarm treats as ours (the synced
        /// uberblock counts too: it may sit in an MMP slot when the import reused a heartbeat copy).
        mutating func remember(_ ub: Uberblock) {
            ours.insert(HeartbeatKey(txg: ub.txg, timestamp: ub.timestampInSeconds, sequence: ub.mmpSequence))
        }
    }

    /// Heartbeat keys remembered as "ours" for the split-brain alarm.
    static let rememberedHeartbeats = 4096

    public let configuration: Configuration
    private let io: any HeartbeatIO
    private let tunables: MultihostTunablesStore
    private let time: MonotonicTime
    private let wallClock: WallClock
    private let logger: Logger
    private let onSuspend: @Sendable (HeartbeatSuspension) -> Void
    private let onEvent: @Sendable (HeartbeatEvent) -> Void
    private let state: Mutex<State>
    /// The loop's sleep and its rescue timer.
    private let timer: any HeartbeatTimer
    private let inFlight = InFlightCount()
    private let eventStream = Mutex<(stream: AsyncStream<HeartbeatEvent>, continuation: AsyncStream<HeartbeatEvent>.Continuation)?>(nil)

    /// Everything the service does from the first use of this property on, in order (one
    /// consumer; the newest 4096 are buffered). Made on first use: a stream nobody reads still
    /// costs a buffered copy of every event, and one that is read wakes its reader twice per
    /// heartbeat — the pool host counts through `onEvent` instead.
    public var events: AsyncStream<HeartbeatEvent> {
        eventStream.withLock { pair in
            if let pair { return pair.stream }
            let made = AsyncStream.makeStream(of: HeartbeatEvent.self, bufferingPolicy: .bufferingNewest(4096))
            pair = made
            return made.stream
        }
    }

    /// - Parameters:
    ///   - configuration: pool name, multihost, history size, split-brain alarm.
    ///   - io: the pool's leaves and MMP slot I/O.
    ///   - lastSynced: the uberblock of the import's last txg sync (heartbeats copy it).
    ///   - tunables: the host's shared MMP parameters.
    ///   - clock: monotonic time for delays and deadlines (`ContinuousClock` in production).
    ///   - wallClock: seconds for `ub_timestamp`.
    ///   - random: seeds the generator that chooses the label of each heartbeat.
    ///   - logger: where warnings (skips, suspension) go.
    ///   - onSuspend: called (on the service's threads) when the pool is suspended.
    ///   - onEvent: called with every ``HeartbeatEvent`` as it happens, on the thread that
    ///     caused it (the loop's or a write's worker; two calls may overlap). Must not block.
    public init(
        configuration: Configuration,
        io: any HeartbeatIO,
        lastSynced: Uberblock,
        tunables: MultihostTunablesStore,
        clock: any Clock<Duration> = ContinuousClock(),
        wallClock: WallClock = .system,
        random: some RandomNumberGenerator & Sendable = SystemRandomNumberGenerator(),
        logger: Logger,
        onSuspend: @escaping @Sendable (HeartbeatSuspension) -> Void = { _ in },
        onEvent: @escaping @Sendable (HeartbeatEvent) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.io = io
        self.tunables = tunables
        self.time = MonotonicTime(clock)
        self.timer = makeHeartbeatTimer(time)
        self.wallClock = wallClock
        self.logger = logger
        self.onSuspend = onSuspend
        self.onEvent = onEvent
        let leaves = io.heartbeatLeaves()
        let machine = HeartbeatStateMachine(
            tunables: tunables.current, multihost: configuration.multihost,
            leaves: leaves.map { .init(isWritable: $0.isWritable) }, lastSynced: lastSynced, now: time.now(),
            gridOrigin: time.gridOrigin)
        var seedSource = random
        var initial = State(machine: machine, rng: SplitMix64(seed: seedSource.next()), history: MultihostHistory(capacity: configuration.historyCapacity), syncedBase: lastSynced)
        initial.leaves = leaves
        initial.remember(lastSynced)
        self.state = Mutex(initial)
    }

    // MARK: inputs from the pool

    /// A txg sync wrote `synced` to the labels (`mmp_update_uberblock`): heartbeats copy it from now on.
    public func uberblockSynced(_ synced: Uberblock) {
        let now = time.now(), wall = wallClock.seconds
        state.withLock { s in
            s.machine.uberblockSynced(synced, now: now, wallClockSeconds: wall)
            s.syncedBase = synced
            s.remember(synced)
        }
    }

    /// A txg sync is about to write `next` into the uberblock slots (after its MOS and even
    /// labels are durable): heartbeats copy it from now on, so that an importer, which ranks
    /// uberblocks by txg, sees them change once the first copy of `next` is on disk. Not a
    /// completed write; call ``uberblockSynced(_:)`` when the sync is done.
    public func uberblockWillSync(_ next: Uberblock) {
        let wall = wallClock.seconds
        state.withLock { s in
            s.machine.uberblockWillSync(next, wallClockSeconds: wall)
            s.remember(next)
        }
    }

    /// The uberblock a txg sync should write for the pool's current MMP settings (magic, delay,
    /// raw tunables, sequence 0).
    public func syncFields(of ub: Uberblock) -> Uberblock {
        state.withLock { $0.machine.syncFields(of: ub) }
    }

    /// The `multihost` property changed (wakes the loop).
    public func setMultihost(_ on: Bool) {
        state.withLock { $0.machine.setMultihost(on) }
        timer.signal()
    }

    /// Resumes heartbeats after a suspension. The caller (`zpk clear`) must first have shown
    /// that no other host is active (spec import-and-mmp §4.8, ``ActivityCheckDriver``).
    public func resume() {
        let now = time.now()
        let wasSuspended = state.withLock { s -> Bool in
            let was = s.suspension != nil || s.machine.suspended
            s.machine.resume()
            s.suspension = nil
            return was
        }
        if wasSuspended {
            logger.info("multihost heartbeats resumed", metadata: ["zfs.pool": "\(configuration.pool)"])
            emit(.resumed(at: now))
        }
        timer.signal()
    }

    /// Stops issuing heartbeats; `run()` returns once the writes in flight have landed.
    public func stop() {
        state.withLock { $0.stopping = true }
        timer.signal()
    }

    // MARK: observation

    /// A snapshot of the heartbeat state.
    public var status: HeartbeatStatus {
        let now = time.now()
        return state.withLock { s in
            let m = s.machine
            let fail = Duration.nanoseconds(Int64(clamping: m.failNanoseconds))
            let deadline = (m.multihost && !m.suspended && m.tunables.effectiveFailIntervals != 0) ? m.lastWrite + fail : nil
            return HeartbeatStatus(
                multihost: m.multihost, suspension: s.suspension, lastWrite: m.lastWrite,
                mmpDelay: .nanoseconds(Int64(clamping: m.delayNanoseconds)), failAfter: fail,
                suspensionDeadline: deadline, now: now)
        }
    }

    /// Whether this service wrote `ub` (its last synced uberblock or one of its last 4096
    /// heartbeats) — the `isOurs` test of ``ActivityCheckDriver/clearCheck(isOurs:progress:)``.
    public func wrote(_ ub: Uberblock) -> Bool {
        let key = HeartbeatKey(txg: ub.txg, timestamp: ub.timestampInSeconds, sequence: ub.mmpSequence)
        return state.withLock { $0.ours.contains(key) }
    }

    /// Loop iterations so far (tests synchronise on it).
    var iterationCount: Int { state.withLock { $0.iterations } }

    /// The multihost history, oldest first.
    public var history: [MultihostHistory.Record] { state.withLock { $0.history.records } }

    /// The history as OpenZFS's kstat file prints it.
    public func renderHistory() -> String { state.withLock { $0.history.render() } }

    /// Empties the history.
    public func clearHistory() { state.withLock { $0.history.clear() } }

    // MARK: run

    public func run() async throws {
        let token = tunables.addObserver { [weak self] new in self?.tunablesChanged(new) }
        defer {
            tunables.removeObserver(token)
            emit(.stopped)
            eventStream.withLock { $0?.continuation }?.finish()
        }
        // Pick up a change made between init and run.
        tunablesChanged(tunables.current)
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await self.runLoopThread()
            } onCancel: {
                self.stop()
            }
            // mmp_thread_stop waits for outstanding zios too.
            await self.inFlight.drained()
        } onGracefulShutdown: {
            self.stop()
        }
    }

    private func tunablesChanged(_ new: MultihostTunables) {
        let wakeNow = state.withLock { $0.machine.setTunables(new) }
        if wakeNow { timer.signal() }
    }

    private struct PendingWrite: Sendable {
        var id: UInt64
        var index: Int
        var leaf: HeartbeatLeaf
        var label: Int
        var uberblock: Uberblock
        var issuedAt: Duration
    }

    /// Runs ``loop(generation:)`` on a thread of its own (OpenZFS: `mmp_thread`) and returns
    /// when the loop ends (on whichever thread holds it then).
    private func runLoopThread() async {
        // Without a rescue (the kernel gave no timer) every write goes to a worker thread.
        _ = timer.startRescue(name: "zpk-mmp-r-\(configuration.pool)") { [weak self] in self?.rescueLoop() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let generation = state.withLock { s -> UInt64 in
                s.loopEnded = continuation
                return s.loopGeneration
            }
            startLoopThread(generation: generation)
        }
        timer.stopRescue()
    }

    private func startLoopThread(generation: UInt64) {
        let name = "zpk-mmp-\(configuration.pool)"
        let thread = Thread {
            nameCurrentThread(name)
            // Heartbeats are due at exact instants (cadence target < 1 % of interval / leaves);
            // the default slack lets each wait end up to 50 µs late. Pools sharing the grid are
            // woken together anyway.
            _ = czfs_set_current_thread_timer_slack(1)
            self.loop(generation: generation)
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// The rescue timer fired: the loop's write is still under way at the loop's next instant.
    /// A new thread takes the loop over; the writing one ends when its write returns.
    private func rescueLoop() {
        let generation = state.withLock { s -> UInt64? in
            guard s.loopWriting else { return nil }
            s.loopWriting = false
            s.loopGeneration += 1
            return s.loopGeneration
        }
        guard let generation else { return }
        logger.debug(
            "multihost heartbeat write still under way at the next heartbeat; the loop goes on on a new thread",
            metadata: ["zfs.pool": "\(configuration.pool)"])
        startLoopThread(generation: generation)
    }

    /// The heartbeat loop (blocking; on the service's own thread) while it holds `generation`.
    private func loop(generation: UInt64) {
        while true {
            let (stopping, ended) = state.withLock { s -> (Bool, CheckedContinuation<Void, Never>?) in
                guard s.stopping else { return (false, nil) }
                defer { s.loopEnded = nil }
                return (true, s.loopEnded)
            }
            if stopping {
                ended?.resume()  // `run()` goes on
                return
            }
            let now = time.now()
            let wall = wallClock.seconds
            let leaves = io.heartbeatLeaves()
            var writes: [PendingWrite] = []
            var events: [HeartbeatEvent] = []
            var suspension: HeartbeatSuspension?
            var newSkip: HeartbeatStateMachine.SkipMask?
            var sleepUntil = now + .seconds(1)
            state.withLock { s in
                // Usually the very same array (a pointer comparison).
                if leaves != s.leaves {
                    if !leaves.elementsEqual(s.leaves, by: { $0.guid == $1.guid }) {
                        s.machine.setLeaves(leaves.map { .init(isWritable: $0.isWritable) })
                    } else {
                        s.machine.setWritability(leaves.map { .init(isWritable: $0.isWritable) })
                    }
                    s.leaves = leaves
                }
                s.iterations += 1
                let actions = s.machine.event(now: now, wallClockSeconds: wall, using: &s.rng)
                for action in actions {
                    switch action {
                    case .write(let index, let label, let ub):
                        let id = s.nextID
                        s.nextID += 1
                        s.skipRun = nil
                        let leaf = s.leaves[index]
                        s.history.append(.init(
                            id: id, txg: ub.txg, timestamp: ub.timestampInSeconds, isSkip: false, error: 0, duration: .zero,
                            mmpDelayInNanoseconds: ub.mmpDelayInNanoseconds, vdevGUID: leaf.guid.rawValue, vdevLabel: label,
                            vdevPath: leaf.path))
                        s.remember(ub)
                        writes.append(PendingWrite(id: id, index: index, leaf: leaf, label: label, uberblock: ub, issuedAt: now))
                        events.append(.issued(id: id, leaf: leaf, label: label, uberblock: ub, at: now))
                    case .skipped(let mask):
                        if var run = s.skipRun, run.mask == mask {
                            run.count += 1
                            s.skipRun = run
                            s.history.update(id: run.id) { r in
                                r.vdevGUID = run.count
                                r.duration = now - run.start
                            }
                        } else {
                            let id = s.nextID
                            s.nextID += 1
                            s.skipRun = (id, mask, now, 1)
                            s.history.append(.init(
                                id: id, txg: s.machine.uberblock.txg, timestamp: wall, isSkip: true, error: mask.rawValue,
                                duration: .zero, mmpDelayInNanoseconds: s.machine.delayNanoseconds, vdevGUID: 1, vdevLabel: 0,
                                vdevPath: nil))
                            newSkip = mask
                        }
                        events.append(.skipped(mask, at: now))
                    case .suspend(let reason):
                        switch reason {
                        case .heartbeatsFailed(let silent, let failAfter):
                            let notice = HeartbeatSuspension(
                                pool: configuration.pool, reason: .heartbeatsFailed(silentFor: silent, failAfter: failAfter),
                                at: now, deadline: s.machine.lastWrite + failAfter)
                            s.suspension = notice
                            suspension = notice
                        }
                    case .sleep(let until):
                        sleepUntil = until
                    }
                }
            }
            if let newSkip {
                logger.info(
                    "multihost heartbeat skipped: no leaf can take it",
                    metadata: ["zfs.pool": "\(configuration.pool)", "zfs.mmp.skip_mask": "0x\(String(newSkip.rawValue, radix: 16))"])
            }
            for event in events { emit(event) }
            if let suspension { announce(suspension) }
            var holdsLoop = true
            for write in writes {
                if holdsLoop {
                    holdsLoop = writeItself(write, rescueAt: sleepUntil, generation: generation)
                } else {
                    issue(write)
                }
            }
            if !holdsLoop { return }
            timer.sleep(until: sleepUntil)
        }
    }

    /// Writes one heartbeat on the loop's thread, with the rescue timer armed for a little after
    /// `deadline` (the loop's next instant). Returns whether this thread still holds the loop
    /// (false: the write outlived the deadline and a new thread took over). Without a rescue,
    /// hands the write to a worker.
    ///
    /// The slack (a quarter of the time to `deadline`, 1–10 ms) is what a loop waking late may
    /// take before the timer fires for nothing (the rescue then sees no write under way and does
    /// nothing). Only the holder disarms: a thread whose write was rescued must not disarm the
    /// new holder's arm.
    private func writeItself(_ write: PendingWrite, rescueAt deadline: Duration, generation: UInt64) -> Bool {
        state.withLock { $0.loopWriting = true }
        let slack = min(max((deadline - write.issuedAt) / 4, .milliseconds(1)), .milliseconds(10))
        guard timer.armRescue(at: deadline + slack) else {
            state.withLock { $0.loopWriting = false }
            issue(write)
            return true
        }
        inFlight.begin()
        let landing = land(write)
        let holdsLoop = state.withLock { s -> Bool in
            guard s.loopGeneration == generation else { return false }
            s.loopWriting = false
            return true
        }
        if holdsLoop { timer.disarmRescue() }
        finish(write, landing)
        inFlight.end()
        return holdsLoop
    }

    private func emit(_ event: HeartbeatEvent) {
        onEvent(event)
        eventStream.withLock { $0?.continuation }?.yield(event)
    }

    private func announce(_ suspension: HeartbeatSuspension) {
        switch suspension.reason {
        case .heartbeatsFailed:
            logger.error("\(suspension.description)", metadata: ["zfs.pool": "\(configuration.pool)"])
        case .foreignHeartbeat(let foreign):
            logger.critical(
                "\(suspension.description)",
                metadata: [
                    "zfs.pool": "\(configuration.pool)",
                    "zfs.mmp.foreign.hostname": "\(foreign.host?.hostname ?? "-")",
                    "zfs.mmp.foreign.hostid": "0x\(String(foreign.host?.hostID ?? 0, radix: 16))",
                    "zfs.mmp.foreign.txg": "\(foreign.uberblock.txg.rawValue)",
                ])
        }
        emit(.suspended(suspension))
        onSuspend(suspension)
    }

    /// The split-brain rule: `found` is a valid heartbeat (MMP magic, sequence valid) that is
    /// not one of `ours`, and not older than `reference` (what we last wrote to that slot, or the
    /// last synced uberblock for a slot we never wrote).
    static func isForeign(_ found: Uberblock, reference: Uberblock, ours: RecentSet<HeartbeatKey>) -> Bool {
        guard found.isMMPValid, found.mmpConfig.isSequenceValid, found != reference else { return false }
        let key = HeartbeatKey(txg: found.txg, timestamp: found.timestampInSeconds, sequence: found.mmpSequence)
        if ours.contains(key) { return false }
        return Uberblock.compare(found, reference) >= 0
    }

    /// What the blocking half of a heartbeat did.
    private enum Landing: Sendable {
        /// The slot held another writer's heartbeat; ours was withheld.
        case withheld(MMPSlotReading, found: Uberblock, ourLast: Uberblock?)
        case written(success: Bool, error: String?)
    }

    /// Issues one heartbeat on a worker thread (`BlockingIO.submit`): the
    /// split-brain read-back of the slot, then (unless the slot holds another writer's heartbeat)
    /// the write, then the bookkeeping — all there, without a hop back to the cooperative pool:
    /// at 100 heartbeats a second every thread wake-up saved shows in the CPU time.
    private func issue(_ write: PendingWrite) {
        inFlight.begin()
        BlockingIO.submit {
            self.finish(write, self.land(write))
            self.inFlight.end()
        }
    }

    /// Records what became of a heartbeat (any thread).
    private func finish(_ write: PendingWrite, _ landing: Landing) {
        let now = time.now()
        let slot = SlotKey(guid: write.leaf.guid, label: write.label)
        switch landing {
        case .withheld(let reading, let found, let ourLast):
            let notice = state.withLock { s -> HeartbeatSuspension in
                s.machine.suspend()
                s.machine.writeCompleted(leaf: write.index, success: false, now: now)
                s.history.update(id: write.id) { r in
                    r.error = 121
                    r.duration = now - write.issuedAt
                }
                let notice = HeartbeatSuspension(
                    pool: configuration.pool,
                    reason: .foreignHeartbeat(ForeignHeartbeat(
                        leaf: write.leaf, label: write.label, uberblock: found, host: reading.host, ourLast: ourLast)),
                    at: now, deadline: nil)
                s.suspension = notice
                return notice
            }
            announce(notice)
            emit(.landed(id: write.id, leaf: write.leaf, label: write.label, success: false, at: now))
        case .written(let success, let error):
            state.withLock { s in
                s.machine.writeCompleted(leaf: write.index, success: success, now: now)
                s.lastWritten[slot] = write.uberblock
                s.history.update(id: write.id) { r in
                    r.error = success ? 0 : 5
                    r.duration = now - write.issuedAt
                }
            }
            if let error {
                logger.debug(
                    "multihost heartbeat write failed",
                    metadata: ["zfs.pool": "\(configuration.pool)", "zfs.vdev.path": "\(write.leaf.path ?? "-")", "error": "\(error)"])
            }
            emit(.landed(id: write.id, leaf: write.leaf, label: write.label, success: success, at: now))
        }
    }

    /// The blocking half of a heartbeat (runs on a worker thread).
    private func land(_ write: PendingWrite) -> Landing {
        if configuration.detectsForeignHeartbeats,
            let reading = try? io.readMMPSlot(leaf: write.leaf, label: write.label),
            let found = reading.uberblock
        {
            let slot = SlotKey(guid: write.leaf.guid, label: write.label)
            let verdict = state.withLock { s -> (isForeign: Bool, ourLast: Uberblock?) in
                let last = s.lastWritten[slot]
                return (Self.isForeign(found, reference: last ?? s.syncedBase, ours: s.ours), last)
            }
            if verdict.isForeign { return .withheld(reading, found: found, ourLast: verdict.ourLast) }
        }
        do {
            try io.write(uberblock: write.uberblock, leaf: write.leaf, label: write.label)
            return .written(success: true, error: nil)
        } catch {
            return .written(success: false, error: "\(error)")
        }
    }
}
