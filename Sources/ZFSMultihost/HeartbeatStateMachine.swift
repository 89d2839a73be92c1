import ZFSFormat

/// The MMP heartbeat of a host that has a pool imported (`mmp_thread`, `mmp_write_uberblock`,
/// `mmp_delay_update`, `mmp_update_uberblock` in `mmp.c`; spec import-and-mmp §5), as a pure
/// state machine. The driver calls ``event(now:wallClockSeconds:using:)`` when a sleep ends (or
/// when woken by a tunable change), performs the returned actions in order, and reports write
/// completions and txg syncs.
public struct HeartbeatStateMachine: Sendable {
    /// Why a leaf search found nothing (history "error" column of a skip row).
    public struct SkipMask: OptionSet, Hashable, Sendable {
        public var rawValue: UInt64
        public init(rawValue: UInt64) { self.rawValue = rawValue }
        /// `MMP_FAIL_NOT_WRITABLE` (0x1): leaf not writable, offline, detached or a hole.
        public static let notWritable = SkipMask(rawValue: 1)
        /// `MMP_FAIL_WRITE_PENDING` (0x2): the leaf's previous heartbeat has not completed.
        public static let writePending = SkipMask(rawValue: 2)
    }

    public enum SuspendReason: Hashable, Sendable {
        /// No heartbeat or sync completed for more than fail_intervals × interval.
        case heartbeatsFailed(silentFor: Duration, failAfter: Duration)
    }

    public enum Action: Hashable, Sendable {
        /// Write `uberblock` (zero-padded, with its embedded checksum) to the MMP slot (the last
        /// slot, `slotCount − MMP_BLOCKS_PER_LABEL`) of `label` (0–3) of leaf `leaf`; then call
        /// ``writeCompleted(leaf:success:now:)``. No cache flush; errors do not propagate.
        case write(leaf: Int, label: Int, uberblock: Uberblock)
        /// No leaf could take a heartbeat (history skip row).
        case skipped(SkipMask)
        /// Suspend the pool (reason MMP); no heartbeats until ``resume()``.
        case suspend(reason: SuspendReason)
        /// Sleep until this monotonic instant (or until woken), then call `event` again.
        case sleep(until: Duration)
    }

    /// One leaf of the pool's vdev tree (holes and missing placeholders are unwritable leaves).
    public struct Leaf: Hashable, Sendable {
        public var isWritable: Bool
        public init(isWritable: Bool) { self.isWritable = isWritable }
    }

    /// `MMP_BLOCKS_PER_LABEL`: MMP slots at the end of each uberblock ring.
    public static let blocksPerLabel = 1
    /// The slot index heartbeats use in a ring of `slotCount` slots.
    public static func slotIndex(slotCount: Int) -> Int { slotCount - blocksPerLabel }
    /// Labels per leaf (`VDEV_LABELS`).
    public static let labelCount = 4

    // Inputs (what the pool says now; read at the top of each iteration).
    public private(set) var tunables: MultihostTunables
    public private(set) var multihost: Bool
    public private(set) var suspended: Bool
    public private(set) var leaves: [Leaf]

    // Values seen at the previous iteration.
    private var seenTunables: MultihostTunables
    private var seenMultihost: Bool
    private var seenSuspended: Bool
    private var intervalNS: UInt64
    private var failIntervals: UInt64
    /// `mmp_fail_ns`.
    public private(set) var failNanoseconds: UInt64
    private var skipWait = 0

    /// `mmp_last_write`: monotonic instant of the last completed heartbeat or sync.
    public private(set) var lastWrite: Duration
    /// `mmp_delay`, nanoseconds.
    public private(set) var delayNanoseconds: UInt64
    /// `mmp_ub`: the last synced uberblock, as heartbeats rewrite it.
    public private(set) var uberblock: Uberblock
    /// `mmp_seq`.
    public private(set) var sequence: UInt64 = 1
    private var lastLeaf: Int?
    private var pending: [Duration?]
    private var skipError: SkipMask = []
    /// The instant the previous iteration asked to be woken at.
    private var scheduled: Duration?
    /// Where this machine's time zero lies on a grid shared by every pool of the process, or
    /// `nil` (no grid). See ``init(tunables:multihost:leaves:lastSynced:now:gridOrigin:)``.
    private let gridOrigin: Duration?

    /// Thread start (`mmp_thread_start`): `last_write = now`, `delay = I`, `fail_ns = F × I`.
    ///
    /// - Parameter gridOrigin: ours, not OpenZFS's: when given (the offset of this machine's time
    ///   zero from an instant common to every heartbeat of the process), each next heartbeat falls
    ///   on a multiple of the period counted from that common instant — the latest one no later
    ///   than the plain schedule, so no gap grows. Pools with the same period then wake together:
    ///   a virtual machine leaves its idle state once for all of them, which measured 3.4 times
    ///   cheaper than one wake-up each (BENCHMARKS.md §6). The cadence of each pool is unchanged;
    ///   only its phase moves, once, at start or after a change.
    public init(
        tunables: MultihostTunables, multihost: Bool, leaves: [Leaf], lastSynced: Uberblock, now: Duration,
        gridOrigin: Duration? = nil
    ) {
        self.gridOrigin = gridOrigin
        self.tunables = tunables
        self.seenTunables = tunables
        self.multihost = multihost
        self.seenMultihost = multihost
        self.suspended = false
        self.seenSuspended = false
        self.leaves = leaves
        self.pending = Array(repeating: nil, count: leaves.count)
        self.intervalNS = tunables.effectiveIntervalInNanoseconds
        self.failIntervals = tunables.effectiveFailIntervals
        self.failNanoseconds = failIntervals &* intervalNS
        self.lastWrite = now
        self.delayNanoseconds = tunables.effectiveIntervalInNanoseconds
        self.uberblock = lastSynced
    }

    // MARK: inputs

    /// New tunables (`zpk tunable set`). Returns whether the driver should wake the loop now
    /// (OpenZFS wakes every pool's thread when `zfs_multihost_interval` changes).
    public mutating func setTunables(_ new: MultihostTunables) -> Bool {
        let wake = new.intervalInMilliseconds != tunables.intervalInMilliseconds
        tunables = new
        return wake
    }

    /// The `multihost` pool property changed.
    public mutating func setMultihost(_ on: Bool) { multihost = on }

    /// `zpool clear` passed its activity check: the next iteration resets `last_write` and `delay`.
    public mutating func resume() { suspended = false }

    /// Suspends the pool for a reason found outside the machine (the driver's split-brain
    /// alarm): no heartbeats until ``resume()``. OpenZFS has no such input.
    public mutating func suspend() { suspended = true }

    /// The writability of the same leaves changed (offline, online, faulted): unlike
    /// ``setLeaves(_:)`` the round robin continues where it was.
    public mutating func setWritability(_ new: [Leaf]) {
        guard new.count == leaves.count else { setLeaves(new); return }
        leaves = new
    }

    /// Leaves were added or removed (`leaf_gen` bumped): the round robin restarts at the head.
    public mutating func setLeaves(_ new: [Leaf]) {
        if new.count != leaves.count { pending = Array(repeating: nil, count: new.count) }
        leaves = new
        lastLeaf = nil
    }

    // MARK: events

    /// One loop iteration at monotonic `now`, wall clock `wallClockSeconds`.
    public mutating func event(
        now: Duration, wallClockSeconds: UInt64, using rng: inout some RandomNumberGenerator
    ) -> [Action] {
        var actions: [Action] = []
        let leafCount = max(leaves.count, 1)
        var next = now + .milliseconds(1000)
        let prevSuspended = seenSuspended, prevMultihost = seenMultihost
        seenSuspended = suspended; seenMultihost = multihost
        let prevInterval = intervalNS, prevFail = failIntervals
        seenTunables = tunables
        intervalNS = tunables.effectiveIntervalInNanoseconds
        failIntervals = tunables.effectiveFailIntervals
        let target = failIntervals &* intervalNS
        if target < failNanoseconds {
            failNanoseconds = (failNanoseconds &* 31 &+ target) / 32
        } else {
            failNanoseconds = target
        }
        if intervalNS != prevInterval || failIntervals != prevFail { skipWait += leafCount }
        if multihost {
            // Ours: the period runs from the instant this iteration was scheduled for, not from
            // `now` (mmp.c), so the loop's wake-up latency does not add to every gap. Woken
            // early (a tunable change), or late by a whole period, it runs from `now`.
            let period = Duration.nanoseconds(Int64(clamping: intervalNS / UInt64(leafCount)))
            var anchor = now
            if let scheduled, now >= scheduled, now - scheduled < period { anchor = scheduled }
            next = onGrid(anchor + period, period: period)
        }
        if (!prevMultihost && multihost) || (prevSuspended && !suspended) {
            lastWrite = now
            delayNanoseconds = intervalNS
        }
        if prevMultihost && !multihost { delayNanoseconds = 0 }
        var suspendedNow = suspended
        if multihost && !suspended && failIntervals != 0 {
            let silent = now - lastWrite
            if nanoseconds(silent) > Int64(clamping: failNanoseconds) {
                suspended = true
                seenSuspended = true
                suspendedNow = true
                actions.append(.suspend(reason: .heartbeatsFailed(
                    silentFor: silent, failAfter: .nanoseconds(Int64(clamping: failNanoseconds)))))
            }
        }
        if multihost && !suspendedNow {
            actions.append(writeHeartbeat(now: now, wallClockSeconds: wallClockSeconds, using: &rng))
        }
        if skipWait > 0 {
            next = now + .nanoseconds(Int64(MultihostTunables.minimumIntervalInMilliseconds * 1_000_000 / UInt64(leafCount)))
            skipWait -= 1
        }
        // Our improvement: wake no later than one tick past the suspension deadline.
        if multihost && !suspended && failIntervals != 0 {
            let deadline = lastWrite + .nanoseconds(Int64(clamping: failNanoseconds)) + .nanoseconds(1)
            if deadline > now { next = min(next, deadline) }
        }
        scheduled = next
        actions.append(.sleep(until: next))
        return actions
    }

    /// The latest point of the shared grid of spacing `period` not after `instant` (after
    /// `instant - period`, so the gap before it never exceeds a period); `instant` without a grid.
    func onGrid(_ instant: Duration, period: Duration) -> Duration {
        guard let gridOrigin else { return instant }
        let spacing = nanoseconds(period)
        guard spacing > 0 else { return instant }
        let position = nanoseconds(instant + gridOrigin) % spacing
        return instant - .nanoseconds(position < 0 ? position + spacing : position)
    }

    /// A heartbeat write to `leaf` finished (`mmp_write_done`).
    public mutating func writeCompleted(leaf: Int, success: Bool, now: Duration) {
        updateDelay(completed: success, now: now)
        if pending.indices.contains(leaf) { pending[leaf] = nil }
    }

    /// A txg sync is about to write `next` into the uberblock slots (its MOS and even labels are
    /// durable already): heartbeats copy it from now on, the sequence restarting at 1. Not a
    /// completed write — ``uberblockSynced(_:now:wallClockSeconds:)`` counts that.
    ///
    /// Ours, earlier than OpenZFS (which switches after the uberblock writes): an importer ranks
    /// uberblocks by txg first, so once one copy of `next` is on disk, heartbeats still copying
    /// the previous txg are invisible to its activity check however many land. Over a slow link
    /// the uberblock writes take seconds, long enough for a whole check to see nothing change
    /// while this host heartbeats and keeps the pool.
    public mutating func uberblockWillSync(_ next: Uberblock, wallClockSeconds: UInt64) {
        adopt(next, wallClockSeconds: wallClockSeconds)
    }

    /// A txg sync wrote `synced` (`mmp_update_uberblock`): heartbeats now copy it, the sequence
    /// restarts at 1 (unless ``uberblockWillSync(_:wallClockSeconds:)`` already switched to it)
    /// and the sync counts as a completed write. Only when multihost is on.
    public mutating func uberblockSynced(_ synced: Uberblock, now: Duration, wallClockSeconds: UInt64) {
        if uberblock.txg != synced.txg || uberblock.rootBlockPointer != synced.rootBlockPointer {
            adopt(synced, wallClockSeconds: wallClockSeconds)
        }
        guard multihost else { return }
        updateDelay(completed: true, now: now)
    }

    private mutating func adopt(_ synced: Uberblock, wallClockSeconds: UInt64) {
        uberblock = synced
        guard multihost else { return }
        sequence = 1
        uberblock.timestampInSeconds = wallClockSeconds
    }

    /// The uberblock a txg sync writes for this pool's current settings (spec §0.5): MMP magic,
    /// and with multihost on the current delay and the raw tunables with sequence 0.
    public func syncFields(of ub: Uberblock) -> Uberblock {
        var u = ub
        u.mmpMagic = MMPConfig.magic
        u.mmpDelayInNanoseconds = multihost ? delayNanoseconds : 0
        u.mmpConfig = multihost ? tunables.syncConfig : .none
        return u
    }

    // MARK: internals

    /// `mmp_delay_update`.
    mutating func updateDelay(completed: Bool, now: Duration) {
        guard multihost else { delayNanoseconds = 0; return }
        let d = UInt64(max(0, nanoseconds(now - lastWrite)))
        if d > delayNanoseconds { delayNanoseconds = d }
        guard completed else { return }
        lastWrite = now
        if d < delayNanoseconds {
            let floor = tunables.effectiveIntervalInNanoseconds / UInt64(max(1, leaves.count))
            delayNanoseconds = max((d &+ delayNanoseconds &* 127) / 128, floor)
        }
    }

    /// `mmp_next_leaf`: round robin from the leaf after the last one used; the start is tried last.
    mutating func nextLeaf() -> Result<Int, SkipMaskError> {
        guard !leaves.isEmpty else { return .failure(SkipMaskError(mask: .notWritable)) }
        let start = lastLeaf ?? 0
        var i = start
        var mask: SkipMask = []
        repeat {
            i = (i + 1) % leaves.count
            if !leaves[i].isWritable {
                mask.insert(.notWritable)
            } else if pending[i] != nil {
                mask.insert(.writePending)
            } else {
                lastLeaf = i
                return .success(i)
            }
        } while i != start
        return .failure(SkipMaskError(mask: mask))
    }

    struct SkipMaskError: Error { var mask: SkipMask }

    /// `mmp_write_uberblock`.
    mutating func writeHeartbeat(now: Duration, wallClockSeconds: UInt64, using rng: inout some RandomNumberGenerator) -> Action {
        let leaf: Int
        switch nextLeaf() {
        case .failure(let e):
            updateDelay(completed: false, now: now)
            skipError = e.mask
            return .skipped(e.mask)
        case .success(let l):
            leaf = l
        }
        skipError = []
        if uberblock.timestampInSeconds != wallClockSeconds {
            uberblock.timestampInSeconds = wallClockSeconds
            sequence = 1
        }
        uberblock.mmpMagic = MMPConfig.magic
        uberblock.mmpDelayInNanoseconds = delayNanoseconds
        uberblock.mmpConfig = tunables.heartbeatConfig(sequence: sequence)
        pending[leaf] = now
        let written = uberblock
        sequence &+= 1
        let label = Int.random(in: 0..<Self.labelCount, using: &rng)
        return .write(leaf: leaf, label: label, uberblock: written)
    }
}
