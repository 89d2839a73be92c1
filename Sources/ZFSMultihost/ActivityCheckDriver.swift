// The importer's side of MMP, driven: decide whether a check is required, run the read-only
// polling loop (`ActivityCheckStateMachine`) against an injected clock and a device probe, and
// — for an importer that will write — master's claim phase.
//
// Timing (our deliberate difference, docs/design/multihost.md): OpenZFS polls once a second
// and finishes up to ~1 s late; we poll at the last writer's heartbeat interval (100 ms … 1 s)
// and take the final read exactly at `start + D'`, so `.noActivity` comes at the deadline and a
// live holder is seen within about one of its heartbeat periods.
//
// Claim (OpenZFS master `spa_activity_check_claim`, spec import-and-mmp §4.7): re-read the best
// uberblock and require it unchanged and fully MMP-valid; then 10 rounds of: write a copy with
// a random sequence in (s0, 65535] into label 0's MMP slot of every expected leaf, sleep one
// writer interval, re-read the best uberblock and require exactly our copy back. Finally the
// original uberblock is written back (its failure is only logged).

import Logging
import Synchronization
import ZFSDevice
import ZFSFormat

/// The label facts that go with a best uberblock (`vdev_uberblock_load`'s label config).
public struct ProbeLabel: Hashable, Sendable {
    /// `hostname` / `hostid` of the label.
    public var host: LabelHost
    /// `state` of the label's config (`nil`: absent).
    public var state: PoolStateValue?
    public init(host: LabelHost, state: PoolStateValue?) { self.host = host; self.state = state }
}

/// One reading of a pool's devices: the best uberblock over every readable leaf, all four labels,
/// ring and MMP slots alike, and the label that holds it.
public struct ProbeReading: Hashable, Sendable {
    public var uberblock: Uberblock
    /// `nil` when no valid label of the pool accompanies it.
    public var label: ProbeLabel?
    /// The device the best uberblock was read from (messages only).
    public var devicePath: String?
    public init(uberblock: Uberblock, label: ProbeLabel?, devicePath: String? = nil) {
        self.uberblock = uberblock; self.label = label; self.devicePath = devicePath
    }
}

/// Reads a pool's best uberblock (read-only). Blocking; drivers call it off the cooperative pool.
public protocol ActivityProbe: Sendable {
    /// The best uberblock now, or `nil` when no leaf holds a valid one.
    func readBestUberblock() throws -> ProbeReading?
}

/// What the claim's writes achieved (`mmp_claim_uberblock`'s counters).
public struct ClaimWriteCounts: Hashable, Sendable {
    /// Writes the config expects: per data top-level, raidz/dRAID nparity + 1, mirror its legs
    /// not offline/faulted/removed (at least 1), a single leaf 1.
    public var required: Int
    /// Writes issued to writable leaves.
    public var issued: Int
    /// Issued writes that completed without error.
    public var good: Int
    public init(required: Int, issued: Int, good: Int) { self.required = required; self.issued = issued; self.good = good }
}

/// Writes the claim (the importing pool implements it).
public protocol ClaimWriter: Sendable {
    /// Writes `uberblock` into the MMP slot of **label 0** of every writable leaf beneath
    /// top-levels that are not log, spare, cache, hole or indirect; flushes; returns the counts.
    /// Blocking.
    func writeClaim(_ uberblock: Uberblock) throws -> ClaimWriteCounts
}

/// Progress of a wait, for countdown bars and JSON progress events.
public struct ActivityProgress: Hashable, Sendable {
    public enum Phase: String, Hashable, Sendable {
        /// The read-only check (`activity_check`).
        case activityCheck = "activity_check"
        /// The claim rounds (`claim`).
        case claim
    }
    public var phase: Phase
    public var elapsed: Duration
    public var remaining: Duration
    public var total: Duration

    public init(phase: Phase, elapsed: Duration, remaining: Duration, total: Duration) {
        self.phase = phase; self.elapsed = elapsed; self.remaining = remaining; self.total = total
    }
}

/// How long a check waits, and why.
public struct ActivityPlan: Hashable, Sendable {
    public var durationCase: ActivityCheck.DurationCase
    /// `D`.
    public var duration: Duration
    /// The random extension drawn, per mille (0–249).
    public var extensionPerMille: UInt64
    /// `D'` = D + D × r / 1000: the wait.
    public var extendedDuration: Duration
    /// The poll period.
    public var pollInterval: Duration
    /// What the last writer recorded (`nil` when its uberblock does not say).
    public var peerIntervalInMilliseconds: UInt32?
    public var peerFailIntervals: UInt16?
    public var peerDelay: Duration
    /// The local tunables used for cases 2–4.
    public var localTunables: MultihostTunables

    public init(
        durationCase: ActivityCheck.DurationCase, duration: Duration, extensionPerMille: UInt64, extendedDuration: Duration,
        pollInterval: Duration, peerIntervalInMilliseconds: UInt32?, peerFailIntervals: UInt16?, peerDelay: Duration,
        localTunables: MultihostTunables
    ) {
        self.durationCase = durationCase; self.duration = duration; self.extensionPerMille = extensionPerMille
        self.extendedDuration = extendedDuration; self.pollInterval = pollInterval
        self.peerIntervalInMilliseconds = peerIntervalInMilliseconds; self.peerFailIntervals = peerFailIntervals
        self.peerDelay = peerDelay; self.localTunables = localTunables
    }

    /// One sentence: the formula with its numbers.
    public var reason: String {
        let ms = { (d: Duration) in formatMilliseconds(d) }
        let ext = "; plus a random \(extensionPerMille / 10).\(extensionPerMille % 10) % so that two importers rarely finish together: \(ms(extendedDuration))"
        let k = localTunables.effectiveImportIntervals
        switch durationCase {
        case .failIntervals:
            let i = UInt64(peerIntervalInMilliseconds ?? 0), f = UInt64(peerFailIntervals ?? 0)
            return "the last writer heartbeats every \(i) ms and suspends itself after \(f) intervals without one (\(i * f) ms); OpenZFS waits twice that: \(ms(duration))" + ext
        case .neverSuspends:
            return "the last writer heartbeats every \(peerIntervalInMilliseconds ?? 0) ms and never suspends (fail intervals 0); the wait is max(\(k) × local interval \(localTunables.effectiveIntervalInMilliseconds) ms, 1 s, \(k) × (\(peerIntervalInMilliseconds ?? 0) ms + its mmp_delay \(ms(peerDelay)))) = \(ms(duration))" + ext
        case .legacyWriter:
            return "the last writer (ZFS 0.7) did not record its interval; the wait is max(\(k) × \(localTunables.effectiveIntervalInMilliseconds) ms, 1 s, \(k) × (local interval + its mmp_delay \(ms(peerDelay)))) = \(ms(duration))" + ext
        case .preMMP:
            return "the last writer did not record MMP settings; the wait is max(\(k) × local interval \(localTunables.effectiveIntervalInMilliseconds) ms, 1 s) = \(ms(duration))" + ext
        }
    }
}

/// Who is active, as a refusal reports it.
public struct ActiveHost: Hashable, Sendable {
    /// From the label of the best uberblock (`mmp_hostname`, `mmp_hostid`).
    public var hostname: String?
    public var hostID: UInt32?
    /// How long ago (monotonic, this host's clock) this host's read first saw the newest
    /// heartbeat: a lower bound on the heartbeat's age. Not `now − ub_timestamp`: that stamp has
    /// whole seconds and the writer's wall clock, so it cannot tell 10 ms from 990 ms.
    public var lastHeartbeatAge: Duration
    /// The heartbeat landed at most this long before it was seen: the time between the read
    /// that still showed the older uberblock and the read that saw the change.
    public var lastHeartbeatResolution: Duration
    /// What the writer recorded in the newest uberblock seen.
    public var intervalInMilliseconds: UInt32?
    public var failIntervals: UInt16?
    public var mmpDelay: Duration
    /// How long into the check the change was seen.
    public var detectedAfter: Duration
    /// The uberblock at the start, and the one that differed (`nil`: none readable any more).
    public var reference: Uberblock
    public var changed: Uberblock?

    public init(
        hostname: String?, hostID: UInt32?, lastHeartbeatAge: Duration, lastHeartbeatResolution: Duration = .zero,
        intervalInMilliseconds: UInt32?, failIntervals: UInt16?, mmpDelay: Duration, detectedAfter: Duration,
        reference: Uberblock, changed: Uberblock?
    ) {
        self.hostname = hostname; self.hostID = hostID; self.lastHeartbeatAge = lastHeartbeatAge
        self.lastHeartbeatResolution = lastHeartbeatResolution
        self.intervalInMilliseconds = intervalInMilliseconds; self.failIntervals = failIntervals; self.mmpDelay = mmpDelay
        self.detectedAfter = detectedAfter; self.reference = reference; self.changed = changed
    }
}

extension ActiveHost {
    /// How old the newest heartbeat is, in words, with its resolution: "this host saw its newest
    /// heartbeat 3 ms ago (written at most 250 ms before that, between two of this host's reads)".
    public var lastHeartbeatText: String {
        func ms(_ d: Duration) -> Int64 {
            let c = d.components
            return c.seconds &* 1000 &+ c.attoseconds / 1_000_000_000_000_000
        }
        return "this host saw its newest heartbeat \(ms(lastHeartbeatAge)) ms ago (written at most "
            + "\(ms(lastHeartbeatResolution)) ms before that, between two of this host's reads)"
    }

    /// Whether the active host's hostid is this host's own (non-zero) hostid: two hosts share a
    /// hostid, and OpenZFS's hostid checks cannot tell them apart.
    public func sharesHostID(with localHostID: UInt64) -> Bool {
        guard let hostID, hostID != 0 else { return false }
        return UInt64(hostID) == localHostID & 0xFFFF_FFFF
    }
}

/// The verdict of a read-only activity check.
public enum ActivityVerdict: Hashable, Sendable {
    /// No check needed (no other host can be writing, per the policy's rules).
    case notRequired(ActivityCheck.NotRequiredReason, ProbeReading)
    /// Waited the whole plan; nothing changed.
    case noActivity(waited: Duration, plan: ActivityPlan, reading: ProbeReading)
    /// Another host is writing the pool.
    case active(ActiveHost, plan: ActivityPlan)
    /// A check is required but this host has no hostid: OpenZFS refuses without waiting.
    case refusedNoHostID(ProbeReading)
    /// Cancelled during the wait.
    case interrupted(elapsed: Duration, plan: ActivityPlan)
}

/// The outcome of the claim phase (`spa_activity_check_claim`).
public enum ClaimOutcome: Hashable, Sendable {
    /// Ten rounds read back our own claim: the pool is ours to import.
    case claimed(duration: Duration)
    /// The best uberblock is not the one the check approved (EREMOTEIO, "uberblock changed on disk").
    case changedOnDisk(found: Uberblock?)
    /// The best uberblock lacks one of the MMP valid bits (EREMOTEIO, "is not enabled in spa uberblock").
    case notEnabled
    /// Another writer overwrote the claim in `round` (1–10) (EREMOTEIO).
    case activityDetected(round: Int, found: Uberblock?)
    /// A leaf the config expects could not be written (ENODEV).
    case devicesMissing(ClaimWriteCounts)
    /// Claim writes failed (EIO).
    case writeFailed(ClaimWriteCounts?)
    /// Cancelled (EINTR).
    case interrupted
}

/// Whether `zpk clear` may resume an MMP-suspended pool (`spa_mmp_remote_host_activity`).
public enum ClearVerdict: Hashable, Sendable {
    /// No evidence of another host: resume the heartbeat.
    case allowed(waited: Duration)
    /// Another host may have the pool: refuse (EREMOTEIO); export is the way out.
    case refused(Reason)

    public enum Reason: Hashable, Sendable {
        /// No valid label accompanies the best uberblock.
        case labelMissing
        /// The best label names another hostid.
        case otherHostID(LabelHost)
        /// The best uberblock lacks MMP / fail-interval bits, or F = 0 (no self-suspension to rely on).
        case notProtected
        /// The best uberblock is neither our last sync nor one of our heartbeats.
        case changed(Uberblock)
        /// The activity check saw the best uberblock change.
        case activity(ActiveHost)
        /// Cancelled.
        case interrupted
    }
}

extension ActivityCheck {
    /// `MMP_IMPORT_VERIFY_ITERS`: claim rounds.
    public static let claimRounds = 10

    /// The claim round of an import of a pool another host exported (ours; master claims at the
    /// pool's heartbeat interval after a full wait). Ten rounds, 0.5 s: long enough that a racing
    /// importer's claim, or its claiming sync that follows within milliseconds, is seen.
    public static let exportedClaimRound = Duration.milliseconds(50)

    /// The claim's random sequence: `s0 + 1 + random`, `random` in `0 ..< 65535 − s0`, where
    /// `s0` is the found sequence or 0 when it is 65535 (the range is exhausted). ∈ [s0+1, 65535].
    public static func claimSequence(base: UInt16, using rng: inout some RandomNumberGenerator) -> UInt16 {
        let s0 = base == MMPConfig.maximumSequence ? 0 : UInt64(base)
        let r = UInt64.random(in: 0..<(UInt64(MMPConfig.maximumSequence) - s0), using: &rng)
        return UInt16(s0 + 1 + r)
    }

    /// `mmp_claim_uberblock`'s verdict on its counters: `nil` = success; ENODEV when fewer writes
    /// were issued than required (a device the config expects is unreachable); EIO when none is
    /// required or fewer than required succeeded.
    public static func claimWriteFailure(_ counts: ClaimWriteCounts) -> ClaimOutcome? {
        if counts.required == 0 { return .writeFailed(counts) }
        if counts.issued < counts.required { return .devicesMissing(counts) }
        if counts.good < counts.required { return .writeFailed(counts) }
        return nil
    }

    /// Master's import-time **verify** (spec §4.7): the tryimport's record still matches the
    /// best uberblock: same txg and timestamp, and a valid sequence equal to the recorded one.
    /// `false` → EREMOTEIO (something wrote since the tryimport).
    public static func verify(_ record: TryImportRecord, against ub: Uberblock) -> Bool {
        guard let seq = ub.mmpSequence else { return false }
        return record.txg == ub.txg && record.timestampInSeconds == ub.timestampInSeconds && record.sequence == seq
    }
}

/// Runs the importer's activity check and claim against devices, in virtual or real time.
///
/// The corresponding OpenZFS functions are `spa_activity_check_required`,
/// `spa_activity_check_duration`, `spa_activity_check` and `spa_activity_check_claim` (`spa.c`).
public final class ActivityCheckDriver: Sendable {
    /// What the check needs to know about the importing host and the config.
    public struct Configuration: Sendable {
        /// The pool's name (messages, logs).
        public var pool: String
        /// This host's hostid (0 = none).
        public var localHostID: UInt32
        /// This host's tunables (cases 2–4 and the default poll period).
        public var tunables: MultihostTunables
        /// Which OpenZFS rules decide whether a check is required (master by default).
        public var policy: ActivityCheck.Policy
        /// `state` of the config being imported; `nil` takes the probed label's.
        public var configState: PoolStateValue?
        /// zdb's SKIP_MMP.
        public var skipMMP: Bool
        /// 2.1.11 only: the tryimport shortcut.
        public var tryImport: ActivityCheck.TryImportRecord?
        /// What to do with a pool whose newest label says EXPORTED by another hostid (master
        /// requires the whole check for it).
        public var exportedPool: ExportedPool = .waitAndClaim

        public init(
            pool: String, localHostID: UInt32, tunables: MultihostTunables = MultihostTunables(),
            policy: ActivityCheck.Policy = .openZFSMaster, configState: PoolStateValue? = nil, skipMMP: Bool = false,
            tryImport: ActivityCheck.TryImportRecord? = nil
        ) {
            self.pool = pool; self.localHostID = localHostID; self.tunables = tunables; self.policy = policy
            self.configState = configState; self.skipMMP = skipMMP; self.tryImport = tryImport
        }
    }

    /// The rule for a pool another host exported (spec §4.1: master requires the check, 2.1.11
    /// skips it). See docs/design/multihost.md, "A pool exported by another host".
    public enum ExportedPool: Hashable, Sendable {
        /// OpenZFS master: the whole wait, then the claim.
        case waitAndClaim
        /// ZPoolKit's imports: no wait (the pool is imported nowhere, as 2.1.11 decides), but the
        /// importer still claims, in rounds of ``ActivityCheck/exportedClaimRound``, so that two
        /// hosts racing for the same exported pool cannot both get it:
        /// `.notRequired(.exportedByAnotherHost)`, then ``claim(reference:writer:roundPeriod:progress:)``.
        case claimOnly
        /// A read-only verdict (`zpk activity`): imported nowhere, `.notRequired(.notActive)` at once.
        case inactive
    }

    public let configuration: Configuration
    private let probe: any ActivityProbe
    private let time: MonotonicTime
    private let wallClock: WallClock
    private let rng: Mutex<any RandomNumberGenerator & Sendable>
    private let logger: Logger

    /// - Parameters:
    ///   - configuration: the importing host and the config.
    ///   - probe: reads the pool's best uberblock (blocking; called off the cooperative pool).
    ///   - clock: monotonic time for the wait (`ContinuousClock` in production).
    ///   - wallClock: this host's wall clock. Heartbeat ages do not use it: they come from `clock`
    ///     (see ``ActiveHost/lastHeartbeatAge``).
    ///   - random: draws the 0–24.9 % extension and the claim sequences.
    ///   - logger: where the check's debug and claim messages go.
    public init(
        configuration: Configuration,
        probe: any ActivityProbe,
        clock: any Clock<Duration> = ContinuousClock(),
        wallClock: WallClock = .system,
        random: some RandomNumberGenerator & Sendable = SystemRandomNumberGenerator(),
        logger: Logger
    ) {
        self.configuration = configuration
        self.probe = probe
        self.time = MonotonicTime(clock)
        self.wallClock = wallClock
        self.rng = Mutex(random)
        self.logger = logger
    }

    /// The plan for `ub` with the random extension drawn now.
    public func plan(for ub: Uberblock) -> ActivityPlan {
        let t = configuration.tunables
        let (durationCase, d) = ActivityCheck.duration(for: ub, tunables: t)
        let r = rng.withLock { UInt64.random(in: 0..<ActivityCheck.extensionRandomRange, using: &$0) }
        let extended = ActivityCheck.extended(nanoseconds: d, randomPerMille: r)
        return ActivityPlan(
            durationCase: durationCase, duration: .nanoseconds(Int64(clamping: d)), extensionPerMille: r,
            extendedDuration: .nanoseconds(Int64(clamping: extended)),
            pollInterval: ActivityCheck.pollInterval(for: ub, tunables: t),
            peerIntervalInMilliseconds: ub.mmpWriteIntervalInMilliseconds, peerFailIntervals: ub.mmpFailIntervals,
            peerDelay: .nanoseconds(Int64(clamping: ub.mmpDelayInNanoseconds)), localTunables: t)
    }

    private func read() async throws(MultihostError) -> ProbeReading? {
        let probe = self.probe
        do {
            return try await BlockingIO.run { try probe.readBestUberblock() }
        } catch let error as MultihostError {
            throw error
        } catch {
            throw MultihostError(.ioFailed, "pool '\(configuration.pool)': reading the uberblocks failed: \(error)", cause: error)
        }
    }

    /// Decides whether a check is required and runs it.
    ///
    /// - Parameter progress: called before every sleep and once at the end (phase `activity_check`).
    /// - Returns: the verdict; a check that cannot start (no uberblock) throws.
    /// - Throws: ``MultihostError/Code/noUberblock`` when no leaf holds a valid uberblock,
    ///   ``MultihostError/Code/ioFailed`` when the first read fails.
    public func run(progress: @escaping @Sendable (ActivityProgress) -> Void = { _ in }) async throws(MultihostError) -> ActivityVerdict {
        guard let first = try await read() else {
            throw MultihostError(
                .noUberblock,
                "pool '\(configuration.pool)': no leaf holds a valid uberblock, so there is nothing to watch; check that the devices are the pool's and readable")
        }
        let c = configuration
        if c.exportedPool == .inactive, first.label?.state == .exported {
            return .notRequired(.notActive, first)
        }
        let requirement = ActivityCheck.requirement(
            policy: c.policy, uberblock: first.uberblock, labelPresent: first.label != nil,
            labelHostID: first.label?.host.hostID, configState: c.configState ?? first.label?.state,
            localHostID: c.localHostID, skipMMP: c.skipMMP, tryImport: c.tryImport)
        switch requirement {
        case .notRequired(let reason): return .notRequired(reason, first)
        case .refusedNoHostID: return .refusedNoHostID(first)
        case .required: break
        }
        // The newest label, read now (not the scan's), says EXPORTED: imported nowhere.
        if c.exportedPool == .claimOnly, first.label?.state == .exported {
            return .notRequired(.exportedByAnotherHost, first)
        }
        let plan = self.plan(for: first.uberblock)
        let host = first.label?.host ?? LabelHost(hostname: nil, hostID: nil)
        let start = time.now()
        var machine = ActivityCheckStateMachine(
            reference: first.uberblock, host: host, duration: plan.extendedDuration, pollInterval: plan.pollInterval, now: start)
        logger.debug(
            "multihost activity check required",
            metadata: ["zfs.pool": "\(c.pool)", "zfs.mmp.wait_ms": "\(nanoseconds(plan.extendedDuration) / 1_000_000)"])
        func report(_ now: Duration) {
            let elapsed = min(now - start, plan.extendedDuration)
            progress(ActivityProgress(phase: .activityCheck, elapsed: elapsed, remaining: plan.extendedDuration - elapsed, total: plan.extendedDuration))
        }
        var latest = first
        var action = machine.event(now: start)
        while true {
            switch action {
            case .readBestUberblock:
                let now = time.now()
                let reading = try? await read()
                if let reading { latest = reading }
                action = machine.observed(reading?.uberblock, now: now)
            case .sleep(let until):
                report(time.now())
                do {
                    try await time.sleepUntil(until)
                } catch {
                    action = machine.interrupt()
                    continue
                }
                action = machine.event(now: time.now())
            case .activeElsewhere(let found):
                report(time.now())
                let ub = found.lastSeen ?? first.uberblock
                let label = latest.label?.host ?? host
                return .active(
                    ActiveHost(
                        hostname: label.hostname ?? host.hostname, hostID: label.hostID ?? host.hostID,
                        lastHeartbeatAge: max(.zero, time.now() - found.seenAt),
                        lastHeartbeatResolution: found.seenAt - found.previousReadAt,
                        intervalInMilliseconds: ub.mmpWriteIntervalInMilliseconds ?? plan.peerIntervalInMilliseconds,
                        failIntervals: ub.mmpFailIntervals ?? plan.peerFailIntervals,
                        mmpDelay: .nanoseconds(Int64(clamping: ub.mmpDelayInNanoseconds)), detectedAfter: found.elapsed,
                        reference: first.uberblock, changed: found.lastSeen),
                    plan: plan)
            case .inactive:
                report(time.now())
                return .noActivity(waited: time.now() - start, plan: plan, reading: first)
            case .interrupted:
                return .interrupted(elapsed: time.now() - start, plan: plan)
            }
        }
    }

    /// Master's claim phase for an importer that will write, after a check that ended
    /// `.noActivity` with `reference` as the best uberblock.
    ///
    /// - Parameters:
    ///   - reference: the best uberblock the check approved (compared byte for byte).
    ///   - writer: writes label 0's MMP slot of the expected leaves.
    ///   - roundPeriod: the wait between a round's write and its read-back; `nil` = the pool's
    ///     heartbeat interval (master).
    ///   - progress: phase `claim`, before each sleep.
    public func claim(
        reference: Uberblock, writer: any ClaimWriter, roundPeriod: Duration? = nil,
        progress: @escaping @Sendable (ActivityProgress) -> Void = { _ in }
    ) async -> ClaimOutcome {
        let start = time.now()
        let current = try? await read()
        guard let cur = current?.uberblock, cur == reference else {
            logger.info("mmp: uberblock changed on disk", metadata: ["zfs.pool": "\(configuration.pool)"])
            return .changedOnDisk(found: current?.uberblock)
        }
        guard cur.isMMPValid, cur.mmpConfig.isIntervalValid, cur.mmpConfig.isSequenceValid, cur.mmpConfig.isFailIntervalsValid
        else { return .notEnabled }
        let interval = roundPeriod ?? Duration.milliseconds(Int64(cur.mmpConfig.writeIntervalInMilliseconds))
        let total = interval * ActivityCheck.claimRounds
        let base = cur.mmpConfig.sequence
        var outcome: ClaimOutcome = .interrupted
        rounds: for round in 1...ActivityCheck.claimRounds {
            var set = cur
            let seq = rng.withLock { ActivityCheck.claimSequence(base: base, using: &$0) }
            set.mmpConfig = cur.mmpConfig.settingSequence(seq)
            let failure = await writeClaim(set, writer: writer)
            if let failure { outcome = failure; break rounds }
            let now = time.now()
            let elapsed = now - start
            progress(ActivityProgress(phase: .claim, elapsed: min(elapsed, total), remaining: max(.zero, total - elapsed), total: total))
            do {
                try await time.sleepUntil(now + interval)
            } catch {
                outcome = .interrupted
                break rounds
            }
            let back = try? await read()
            guard let found = back?.uberblock, Uberblock.compare(set, found) == 0 else {
                logger.info("mmp: activity detected during claim", metadata: ["zfs.pool": "\(configuration.pool)", "zfs.mmp.round": "\(round)"])
                outcome = .activityDetected(round: round, found: back?.uberblock)
                break rounds
            }
            if round == ActivityCheck.claimRounds { outcome = .claimed(duration: time.now() - start) }
        }
        // Restore the original sequence so a retry has the whole range (failure only logged).
        if let failure = await writeClaim(cur, writer: writer) {
            logger.info("mmp: uberblock restore failed", metadata: ["zfs.pool": "\(configuration.pool)", "outcome": "\(failure)"])
        }
        return outcome
    }

    /// The test `zpool clear` runs before resuming an MMP-suspended pool (spec §4.8, master's
    /// `spa_mmp_remote_host_activity`): refuse when the best label is missing or names another
    /// hostid, when the best uberblock carries no fail intervals (or 0), or when it is not ours;
    /// else run the read-only check for that uberblock's duration, no console message.
    ///
    /// Our difference: OpenZFS compares the best uberblock's txg and timestamp with its last
    /// *synced* uberblock only, so a heartbeat written in a later second than the last sync makes
    /// it refuse; we accept any uberblock this host wrote (`isOurs`, e.g.
    /// ``HeartbeatService/wrote(_:)``).
    /// - Parameter isOurs: whether this host wrote `ub` (its last sync or one of its heartbeats).
    /// - Throws: ``MultihostError/Code/noUberblock`` when nothing is readable.
    public func clearCheck(
        isOurs: @escaping @Sendable (Uberblock) -> Bool,
        progress: @escaping @Sendable (ActivityProgress) -> Void = { _ in }
    ) async throws(MultihostError) -> ClearVerdict {
        guard let first = try await read() else {
            throw MultihostError(.noUberblock, "pool '\(configuration.pool)': no leaf holds a valid uberblock; the pool cannot be resumed")
        }
        guard let label = first.label else { return .refused(.labelMissing) }
        if let hostID = label.host.hostID, hostID != configuration.localHostID { return .refused(.otherHostID(label.host)) }
        let ub = first.uberblock
        guard ub.isMMPValid, let fail = ub.mmpFailIntervals, fail != 0 else { return .refused(.notProtected) }
        guard isOurs(ub) else { return .refused(.changed(ub)) }
        // Run the polling loop directly (the required-rules do not apply to a clear).
        let plan = self.plan(for: ub)
        let start = time.now()
        var machine = ActivityCheckStateMachine(
            reference: ub, host: label.host, duration: plan.extendedDuration, pollInterval: plan.pollInterval, now: start)
        var action = machine.event(now: start)
        while true {
            switch action {
            case .readBestUberblock:
                let now = time.now()
                let reading = try? await read()
                action = machine.observed(reading?.uberblock, now: now)
            case .sleep(let until):
                let elapsed = min(time.now() - start, plan.extendedDuration)
                progress(ActivityProgress(phase: .activityCheck, elapsed: elapsed, remaining: plan.extendedDuration - elapsed, total: plan.extendedDuration))
                do { try await time.sleepUntil(until) } catch { action = machine.interrupt(); continue }
                action = machine.event(now: time.now())
            case .activeElsewhere(let found):
                let seen = found.lastSeen ?? ub
                return .refused(.activity(ActiveHost(
                    hostname: label.host.hostname, hostID: label.host.hostID,
                    lastHeartbeatAge: max(.zero, time.now() - found.seenAt),
                    lastHeartbeatResolution: found.seenAt - found.previousReadAt,
                    intervalInMilliseconds: seen.mmpWriteIntervalInMilliseconds, failIntervals: seen.mmpFailIntervals,
                    mmpDelay: .nanoseconds(Int64(clamping: seen.mmpDelayInNanoseconds)), detectedAfter: found.elapsed,
                    reference: ub, changed: found.lastSeen)))
            case .inactive:
                return .allowed(waited: time.now() - start)
            case .interrupted:
                return .refused(.interrupted)
            }
        }
    }

    private func writeClaim(_ ub: Uberblock, writer: any ClaimWriter) async -> ClaimOutcome? {
        do {
            let counts = try await BlockingIO.run { try writer.writeClaim(ub) }
            return ActivityCheck.claimWriteFailure(counts)
        } catch {
            return .writeFailed(nil)
        }
    }
}

func formatMilliseconds(_ d: Duration) -> String {
    let ms = nanoseconds(d) / 1_000_000
    if ms >= 1000 { return "\(ms / 1000).\(String(format3(ms % 1000))) s" }
    return "\(ms) ms"
}

private func format3(_ v: Int64) -> String {
    let s = String(v)
    return String(repeating: "0", count: max(0, 3 - s.count)) + s
}
