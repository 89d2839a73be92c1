// ZFSMultihost — Multi-Modifier Protection (OpenZFS `module/zfs/mmp.c`), pure logic.
//
// THEORY
// ======
// What MMP protects against: two hosts that can both see a pool's devices importing it at the
// same time (shared JBOD, SAN, failover pair). ZFS has no cluster lock; two writers destroy the
// pool. What it does NOT protect against: a host that imports with SKIP_MMP (zdb), a pool whose
// writer predates MMP, a clock-less partition where the importer cannot see all devices the
// writer writes (master's claim phase narrows this), or a writer that has stopped heartbeating
// but is not suspended (F = 0 makes the importer wait longer instead).
//
// Mechanism. A host that has imported a pool with multihost=on copies its last synced uberblock
// and rewrites it, every interval/leaves, into the last ("MMP") slot of one random label of one
// leaf (round robin). The copy keeps the txg but refreshes `ub_timestamp` (wall seconds) and a
// 16-bit sequence (restarts at 1 each new second and after every sync) in `ub_mmp_config`, so
// it compares *better* than every earlier copy (txg, then timestamp, then sequence). The
// importer therefore only needs to watch the best uberblock: any change means a live writer.
//
// Importer (``ActivityCheck``, ``ActivityCheckStateMachine``). If the best uberblock says MMP
// was on (magic, non-zero `mmp_delay`) and the pool is not known to be ours, read the best
// uberblock for a duration D (four cases from what the writer recorded):
//   1. INTERVAL+FAIL valid, FAIL > 0:  D = FAIL × INTERVAL × 200 %     (writer suspends itself)
//   2. INTERVAL+FAIL valid, FAIL == 0: D = max(base, (INTERVAL + mmp_delay) × K)
//   3. MMP magic only (0.7 writer):    D = max(base, (I_local + mmp_delay) × K)
//   4. otherwise (pre-MMP):            D = base = max(1 s, K × I_local)
// e.g. defaults: 10 × 1000 ms × 2 = 20 s. D is extended by 0–24.9 % from an injected random
// value so that two simultaneous importers rarely finish together. OpenZFS polls once a
// second and finishes up to ~1 s late; we poll at the writer's heartbeat interval (≤ 1 s) and
// always take a final read exactly at the deadline, so the check ends at D' and sees a live
// holder within about one of its heartbeat periods.
//
// Holder (``HeartbeatStateMachine``). One iteration every interval/leaves: re-read tunables
// (a change makes the next `leaves` iterations sleep only 100 ms/leaves, so every leaf carries
// the new values quickly; a lower fail deadline shrinks by 31/32 per iteration, a higher one
// applies at once), handle multihost on/off and resume-after-clear, suspend the pool if no
// heartbeat (or sync) completed for more than fail_ns = F × I, then pick the next writable leaf
// without a pending write and emit the uberblock to write. `mmp_delay` — what importers add in
// cases 2/3 — is a decaying average of the time between completed writes: a longer gap is
// adopted at once (spike hold), shorter gaps pull it down by 1/128 per completion, never below
// interval/leaves (floor).
//
// Time: every state machine takes monotonic `Duration` instants (`now:`) for delays and
// deadlines and, where an uberblock is stamped, wall-clock seconds — OpenZFS uses
// `gethrtime()` and `gethrestime_sec()` for these and so do we. The state machines read no
// clock, do no I/O, and draw no randomness from a global source: random values come in as
// arguments.
//
// Drivers. ``HeartbeatService`` (a ServiceLifecycle `Service`, one per imported pool) and
// ``ActivityCheckDriver`` run the machines against an injected `any Clock<Duration>`, a
// ``WallClock``, an injected random generator and device protocols the pool implements
// (``HeartbeatIO``, ``ActivityProbe``, ``ClaimWriter``); blocking device calls run on worker
// threads (`ZFSDevice.BlockingIO`), never on the cooperative pool. Tunables come from a host-wide
// ``MultihostTunablesStore``. What is NOT guaranteed by the drivers: a device write hung in the
// kernel keeps its leaf pending forever (the pool then suspends on time, since other leaves are
// still tried) and keeps graceful shutdown waiting, as in OpenZFS. Failure between steps: a
// crash after a claim write and before its restore leaves a random sequence in label 0's MMP
// slot — it compares like any heartbeat of that txg and is overwritten by the next import's
// claim or the holder's heartbeats. The split-brain alarm (ours) and the design choices:
// docs/design/multihost.md.
//
// Where OpenZFS 2.1.11 and master differ, and what we chose: docs/design/multihost.md.

import ZFSFormat

/// Pool states an activity-check decision looks at (`pool_state_t`, spec import-and-mmp §0.7).
public struct PoolStateValue: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// `POOL_STATE_ACTIVE` (0).
    public static let active = PoolStateValue(rawValue: 0)
    /// `POOL_STATE_EXPORTED` (1).
    public static let exported = PoolStateValue(rawValue: 1)
    /// `POOL_STATE_DESTROYED` (2).
    public static let destroyed = PoolStateValue(rawValue: 2)
}

/// Activity-check math of the importing host (`spa.c`: `spa_activity_check_required`,
/// `spa_activity_check_duration`).
public enum ActivityCheck {
    /// `MMP_IMPORT_SAFETY_FACTOR`: 200 %.
    public static let importSafetyFactorPercent: UInt64 = 200
    /// The extension is `D × r / 1000` with `r` drawn from `0 ..< 250` (`random_in_range(250)`).
    public static let extensionRandomRange: UInt64 = 250

    /// Which OpenZFS rules decide whether a check is required.
    public enum Policy: Hashable, Sendable {
        /// OpenZFS 2.1.11 (our interop oracle): hostid equality or a non-ACTIVE state skips it;
        /// an uberblock without MMP magic still requires it (case 4 wait).
        case openZFS2_1_11
        /// OpenZFS master: no MMP magic → not required; only "exported by this (non-zero) host"
        /// and "destroyed" skip it. Our default.
        case openZFSMaster
    }

    /// What a tryimport recorded in `load_info` (`mmp_txg`, timestamp, `mmp_seq`).
    public struct TryImportRecord: Hashable, Sendable {
        public var txg: TXG
        public var timestampInSeconds: UInt64
        public var sequence: UInt16
        public init(txg: TXG, timestampInSeconds: UInt64, sequence: UInt16) {
            self.txg = txg; self.timestampInSeconds = timestampInSeconds; self.sequence = sequence
        }
    }

    /// The decision.
    public enum Requirement: Hashable, Sendable {
        /// Run the read-only check (and, with the master policy, the claim).
        case required
        /// A check is required but this host has hostid 0: refuse at once (`mmp_state`
        /// NO_HOSTID, `mmp_result` ENXIO, reported as EREMOTEIO).
        case refusedNoHostID
        /// No check.
        case notRequired(NotRequiredReason)
    }

    /// Why no check is needed (`mmp_result` ESRCH in `load_info`).
    public enum NotRequiredReason: Hashable, Sendable {
        case skipMMPFlag
        case noMMPMagic
        case multihostOff
        case tryImportMatches
        case sameHost
        case exportedBySameHost
        case destroyed
        case notActive
        /// Ours (``ActivityCheckDriver/ExportedPool/claimOnly``): the newest label says another
        /// host exported the pool; no wait, but an importer claims before it writes.
        case exportedByAnotherHost
    }

    /// Whether the importing host must run an activity check.
    ///
    /// - Parameters:
    ///   - policy: whose rules decide (master by default in the drivers).
    ///   - ub: the best uberblock.
    ///   - labelPresent: false when no label accompanies the best uberblock.
    ///   - labelHostID: `hostid` of the label that accompanies it (`nil` when the key is absent,
    ///     i.e. 0).
    ///   - configState: `state` of the config being imported (`nil` = absent = ACTIVE).
    ///   - localHostID: this host's hostid (0 = none).
    ///   - skipMMP: zdb's SKIP_MMP flag: never a check.
    ///   - tryImport: 2.1.11 only: the tryimport record to take its shortcut (ignored by master,
    ///     which verifies it later, after the check decision).
    public static func requirement(
        policy: Policy,
        uberblock ub: Uberblock,
        labelPresent: Bool = true,
        labelHostID: UInt32?,
        configState: PoolStateValue?,
        localHostID: UInt32,
        skipMMP: Bool = false,
        tryImport: TryImportRecord? = nil
    ) -> Requirement {
        if skipMMP { return .notRequired(.skipMMPFlag) }
        let state = configState ?? .active
        let hostL = labelHostID ?? 0
        switch policy {
        case .openZFSMaster:
            if ub.mmpMagic != MMPConfig.magic { return .notRequired(.noMMPMagic) }
            if ub.mmpDelayInNanoseconds == 0 { return .notRequired(.multihostOff) }
            if labelPresent {
                if localHostID != 0 && hostL == localHostID && state == .exported {
                    return .notRequired(.exportedBySameHost)
                }
                if state == .destroyed { return .notRequired(.destroyed) }
            }
        case .openZFS2_1_11:
            if ub.mmpMagic == MMPConfig.magic && ub.mmpDelayInNanoseconds == 0 {
                return .notRequired(.multihostOff)
            }
            if let t = tryImport, t.sequence != 0, t.txg == ub.txg,
               t.timestampInSeconds == ub.timestampInSeconds, ub.mmpSequence == t.sequence {
                return .notRequired(.tryImportMatches)
            }
            if labelPresent {
                if hostL == localHostID { return .notRequired(.sameHost) }
                if state != .active { return .notRequired(.notActive) }
            }
        }
        // Hostid 0 refusal applies when the uberblock says multihost was on (§4.2).
        if localHostID == 0 && ub.isMMPValid && ub.mmpDelayInNanoseconds != 0 {
            return .refusedNoHostID
        }
        return .required
    }

    /// Which of the four duration formulas applies.
    public enum DurationCase: Hashable, Sendable {
        /// 1: writer ≥ 0.8 that suspends itself (INTERVAL and FAIL valid, FAIL > 0).
        case failIntervals
        /// 2: writer ≥ 0.8 that never suspends (FAIL == 0).
        case neverSuspends
        /// 3: ZoL 0.7 writer (MMP magic, config bits missing).
        case legacyWriter
        /// 4: pre-MMP writer.
        case preMMP
    }

    /// The read-only check's duration `D`, in nanoseconds, exactly as `spa_activity_check_duration`
    /// computes it (unsigned 64-bit nanosecond arithmetic).
    public static func duration(for ub: Uberblock, tunables: MultihostTunables) -> (case: DurationCase, nanoseconds: UInt64) {
        let k = tunables.effectiveImportIntervals
        let localIntervalNS = tunables.effectiveIntervalInNanoseconds
        let base = max(1_000_000_000, k &* localIntervalNS)
        if let interval = ub.mmpWriteIntervalInMilliseconds, let fail = ub.mmpFailIntervals {
            let intervalNS = UInt64(interval) &* 1_000_000
            if fail > 0 {
                return (.failIntervals, UInt64(fail) &* intervalNS &* importSafetyFactorPercent / 100)
            }
            return (.neverSuspends, max(base, (intervalNS &+ ub.mmpDelayInNanoseconds) &* k))
        }
        if ub.isMMPValid {
            return (.legacyWriter, max(base, (localIntervalNS &+ ub.mmpDelayInNanoseconds) &* k))
        }
        return (.preMMP, base)
    }

    /// `D + D × randomPerMille / 1000` — `randomPerMille` must be in `0 ..< 250`, giving 0–24.9 %.
    public static func extended(nanoseconds d: UInt64, randomPerMille r: UInt64) -> UInt64 {
        precondition(r < extensionRandomRange, "random extension must be drawn from 0..<250")
        return d &+ d &* r / 1000
    }

    /// ``extended(nanoseconds:randomPerMille:)`` with `r` drawn from `rng`.
    public static func extended(nanoseconds d: UInt64, using rng: inout some RandomNumberGenerator) -> UInt64 {
        extended(nanoseconds: d, randomPerMille: UInt64.random(in: 0..<extensionRandomRange, using: &rng))
    }

    /// The seconds OpenZFS announces on the console ("activity check required, %llu seconds
    /// remaining"): `max((D' + 10 × INTERVAL(ub) ms, or 10 × 100 ms) / 1 s, 1)`.
    public static func announcedSeconds(extendedNanoseconds d: UInt64, for ub: Uberblock) -> UInt64 {
        let intervalMS = ub.mmpWriteIntervalInMilliseconds.map(UInt64.init) ?? MultihostTunables.minimumIntervalInMilliseconds
        return max((d &+ 10 &* intervalMS &* 1_000_000) / 1_000_000_000, 1)
    }

    /// The poll period we use: the writer's recorded interval (else the local one), at least
    /// 100 ms and at most 1 s (never slower than OpenZFS's 1 s polling).
    public static func pollInterval(for ub: Uberblock, tunables: MultihostTunables) -> Duration {
        let ms = ub.mmpWriteIntervalInMilliseconds.map(UInt64.init) ?? tunables.effectiveIntervalInMilliseconds
        return .milliseconds(Int64(min(max(ms, MultihostTunables.minimumIntervalInMilliseconds), 1000)))
    }
}
