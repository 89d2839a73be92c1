// What a fault trial leaves behind for the checker: every request the runner made to every
// host, when it was sent and when its answer came back, what the holders' status polls showed,
// which process was killed when, and what the pool held when it was read back from its devices.
//
// Every instant is in nanoseconds of one monotonic clock: the runner's process observes all of
// them itself (all namespaces share this machine's clock), so instants of different hosts compare.

/// A host of a trial: the hostid its zpkd writes into the pool's labels.
public typealias TrialHostID = UInt32

/// The faults a trial draws from (one per trial).
public enum FaultKind: String, CaseIterable, Hashable, Sendable {
    /// The holder loses its storage link (it must suspend; another host then imports).
    case partitionStorage = "partition-storage"
    /// The hosts lose the link between them, not their storage (nothing may change hands).
    case partitionHosts = "partition-hosts"
    /// Latency (5/50/200 ms) on the holder's storage link (no takeover while it heartbeats in time).
    case latency
    /// Packet loss (1–20 %) on the holder's storage link.
    case loss
    /// The storage server stops (SIGSTOP) for longer than fail_intervals × interval.
    case stallLong = "stall-long"
    /// The storage server stops for shorter than fail_intervals × interval.
    case stallShort = "stall-short"
    /// The holder's zpkd is killed (SIGKILL); the other hosts race to import.
    case killHolder = "kill-holder"

    /// Whether the fault leaves the holder heartbeating in time, so that a takeover is false.
    public var holderKeepsHeartbeating: Bool {
        switch self {
        case .partitionHosts, .latency, .loss, .stallShort: true
        case .partitionStorage, .stallLong, .killHolder: false
        }
    }
}

/// One request of the workload: a put of object `key` then a sync, on `host`.
public struct WriteRecord: Hashable, Sendable {
    public enum Outcome: Hashable, Sendable {
        /// The sync answered with `txg`: the object is durable (acknowledged synced).
        case synced(txg: UInt64)
        /// The put or the sync was refused with this error code (`poolSuspended`, `unknownPool`, …).
        case refused(code: String)
        /// No answer: the connection broke (the host was killed) — the write may or may not have landed.
        case unknown
    }
    public var host: TrialHostID
    public var key: String
    /// The put request was sent (nothing of this write can have reached a device before).
    public var sent: UInt64
    /// The sync's answer came back (every byte of it is on the devices by then), or the refusal.
    public var answered: UInt64
    public var outcome: Outcome

    public init(host: TrialHostID, key: String, sent: UInt64, answered: UInt64, outcome: Outcome) {
        self.host = host
        self.key = key
        self.sent = sent
        self.answered = answered
        self.outcome = outcome
    }

    public var syncedTXG: UInt64? {
        if case .synced(let txg) = outcome { return txg }
        return nil
    }
}

/// One attempt of a host to get the pool: `create` (the trial's first holder) or `import -f`.
public struct TenureRecord: Hashable, Sendable {
    public enum Outcome: Hashable, Sendable {
        /// The host has the pool, opened at this txg.
        case imported(txg: UInt64)
        /// Refused with this error code (`poolInUse`: another host is active; …).
        case refused(code: String)
    }
    public var host: TrialHostID
    public var isCreate: Bool
    public var sent: UInt64
    /// The first `claim` progress event arrived (the claim writes the pool from then on); nil when
    /// none came (a create, or an import refused before its claim).
    public var claimSeen: UInt64?
    public var answered: UInt64
    public var outcome: Outcome

    public init(
        host: TrialHostID, isCreate: Bool, sent: UInt64, claimSeen: UInt64?, answered: UInt64, outcome: Outcome
    ) {
        self.host = host
        self.isCreate = isCreate
        self.sent = sent
        self.claimSeen = claimSeen
        self.answered = answered
        self.outcome = outcome
    }

    public var succeeded: Bool {
        if case .imported = outcome { return true }
        return false
    }

    /// From when this host may write the pool: its claim (or the request, for a create).
    /// Observed at or after the real instant, so a write sent later is surely after it.
    public var writableFrom: UInt64 { claimSeen ?? (isCreate ? sent : answered) }
}

/// One status poll of a host's pool.
public struct StatusRecord: Hashable, Sendable {
    public enum State: Hashable, Sendable {
        case active
        /// Suspended; `heartbeatsFailed` says whether its own heartbeats stopped landing (the
        /// reason a holder is allowed to lose its pool) rather than anything else.
        case suspended(heartbeatsFailed: Bool)
        /// The host has no such pool (not imported, or exported).
        case absent
    }
    public var host: TrialHostID
    public var sent: UInt64
    public var answered: UInt64
    public var state: State
    /// Heartbeats this host's pool has landed so far (multihost status); nil when the record
    /// comes from elsewhere (the daemon's log) and carries no count.
    public var heartbeatsWritten: UInt64?

    public init(host: TrialHostID, sent: UInt64, answered: UInt64, state: State, heartbeatsWritten: UInt64?) {
        self.host = host
        self.sent = sent
        self.answered = answered
        self.state = state
        self.heartbeatsWritten = heartbeatsWritten
    }
}

/// A host's zpkd was killed (SIGKILL) at `at` (it writes nothing after).
public struct KillRecord: Hashable, Sendable {
    public var host: TrialHostID
    public var at: UInt64
    public init(host: TrialHostID, at: UInt64) {
        self.host = host
        self.at = at
    }
}

/// One object as the pool read back from its devices holds it.
public enum ObjectReading: Hashable, Sendable {
    case intact([UInt8])
    /// Listed in the directory but unreadable (checksum, I/O): the reason.
    case damaged(String)
}

/// Everything one trial recorded.
public struct TrialEvidence: Hashable, Sendable {
    public var trial: Int
    public var seed: UInt64
    public var fault: FaultKind
    /// The fault's parameter, for the report (`latency 50 ms`, `loss 7 %`, `stall 1500 ms`).
    public var faultDetail: String
    /// When the fault was applied.
    public var faultAt: UInt64
    public var hosts: [TrialHostID]
    public var tenures: [TenureRecord]
    public var writes: [WriteRecord]
    public var statuses: [StatusRecord]
    public var kills: [KillRecord]
    /// The pool read back from its devices after every host stopped: object name → content,
    /// or the reason it could not be read at all.
    public var finalPool: Result<[String: ObjectReading], FinalPoolError>
    /// The longest a takeover may take after the fault (the formula for the trial's tunables,
    /// plus the stall of a stall fault), nanoseconds.
    public var takeoverBound: UInt64

    public init(
        trial: Int, seed: UInt64, fault: FaultKind, faultDetail: String, faultAt: UInt64, hosts: [TrialHostID],
        tenures: [TenureRecord], writes: [WriteRecord], statuses: [StatusRecord], kills: [KillRecord],
        finalPool: Result<[String: ObjectReading], FinalPoolError>, takeoverBound: UInt64
    ) {
        self.trial = trial
        self.seed = seed
        self.fault = fault
        self.faultDetail = faultDetail
        self.faultAt = faultAt
        self.hosts = hosts
        self.tenures = tenures
        self.writes = writes
        self.statuses = statuses
        self.kills = kills
        self.finalPool = finalPool
        self.takeoverBound = takeoverBound
    }
}

/// Why the pool could not be read back after a trial.
public struct FinalPoolError: Error, Hashable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// The bytes the workload writes under `key`: the key itself, repeated to `byteCount` bytes, so
/// that the checker can tell a right object from a block another write landed on.
public enum TrialPayload {
    public static let byteCount = 512

    public static func bytes(for key: String) -> [UInt8] {
        let unit = Array("\(key);".utf8)
        return (0..<byteCount).map { unit[$0 % unit.count] }
    }

    /// The object name of a host's `sequence`-th write: `h<hostid hex>-<sequence>`.
    public static func key(host: TrialHostID, sequence: UInt64) -> String {
        "h\(String(host, radix: 16))-\(sequence)"
    }
}
