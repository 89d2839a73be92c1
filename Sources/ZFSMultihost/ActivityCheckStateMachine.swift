import ZFSFormat

/// Who the best uberblock's label says last wrote the pool (`mmp_hostname`, `mmp_hostid`).
public struct LabelHost: Hashable, Sendable {
    public var hostname: String?
    public var hostID: UInt32?
    public init(hostname: String?, hostID: UInt32?) { self.hostname = hostname; self.hostID = hostID }
}

/// The read-only activity check's polling loop (spec import-and-mmp §4.5), as a pure state
/// machine. The driver reads the best uberblock whenever told to and sleeps when told to.
///
/// ```
/// var m = ActivityCheckStateMachine(reference: ub, host: h, duration: .seconds(20), pollInterval: .seconds(1), now: t0)
/// m.event(now: t0)                 // .readBestUberblock (first poll is immediate)
/// m.observed(cur, now: t0)         // .sleep(until: t0 + 1 s), or .activeElsewhere(...)
/// ...                              // the last read happens exactly at the deadline
/// ```
public struct ActivityCheckStateMachine: Sendable {
    public enum Action: Hashable, Sendable {
        /// Re-read the best uberblock from every readable leaf and call ``observed(_:now:)``.
        case readBestUberblock
        /// Sleep, then call ``event(now:)``.
        case sleep(until: Duration)
        /// Another host is writing: refuse (EREMOTEIO, `mmp_state` ACTIVE).
        case activeElsewhere(ActivityReport)
        /// Nothing changed for the whole duration.
        case inactive
        /// The check was interrupted (EINTR).
        case interrupted
    }

    /// What a refusal reports.
    public struct ActivityReport: Hashable, Sendable {
        /// Hostname and hostid from the label of the reference uberblock.
        public var host: LabelHost
        /// The uberblock seen at the poll that differed (`nil`: none readable any more).
        public var lastSeen: Uberblock?
        /// When (monotonic) the change was seen, and how long after the start.
        public var seenAt: Duration
        public var elapsed: Duration
        /// When (monotonic) the read before it ran, which still showed the reference: the change
        /// landed on disk after this instant and no later than ``seenAt``.
        public var previousReadAt: Duration
    }

    private enum State: Hashable, Sendable { case waitingForRead, sleeping, done }

    public let reference: Uberblock
    public let host: LabelHost
    public let start: Duration
    /// `start + D'`.
    public let deadline: Duration
    public let pollInterval: Duration
    private var state: State = .waitingForRead
    private var lastAction: Action?
    /// The last read that still showed the reference (the start until the first read).
    private var lastUnchangedReadAt: Duration

    public init(reference: Uberblock, host: LabelHost, duration: Duration, pollInterval: Duration, now: Duration) {
        precondition(pollInterval > .zero, "poll interval must be positive")
        self.reference = reference
        self.host = host
        self.start = now
        self.deadline = now + duration
        self.pollInterval = pollInterval
        self.lastUnchangedReadAt = now
    }

    /// Time passed (start, or a sleep ended).
    public mutating func event(now: Duration) -> Action {
        switch state {
        case .done: return lastAction ?? .inactive
        case .waitingForRead: return .readBestUberblock
        case .sleeping:
            state = .waitingForRead
            return .readBestUberblock
        }
    }

    /// The best uberblock read at `now` (`nil` when nothing readable). Any difference from the
    /// reference by txg, timestamp or valid sequence — higher *or lower* — is activity.
    public mutating func observed(_ current: Uberblock?, now: Duration) -> Action {
        if state == .done { return lastAction ?? .inactive }
        let changed = current.map { Uberblock.compare(reference, $0) != 0 } ?? true
        let action: Action
        if changed {
            action = .activeElsewhere(
                ActivityReport(
                    host: host, lastSeen: current, seenAt: now, elapsed: now - start, previousReadAt: lastUnchangedReadAt))
        } else if now >= deadline {
            action = .inactive
        } else {
            lastUnchangedReadAt = now
            state = .sleeping
            return .sleep(until: min(now + pollInterval, deadline))
        }
        state = .done
        lastAction = action
        return action
    }

    /// The operator interrupted the wait.
    public mutating func interrupt() -> Action {
        if state != .done { state = .done; lastAction = .interrupted }
        return lastAction ?? .interrupted
    }
}
