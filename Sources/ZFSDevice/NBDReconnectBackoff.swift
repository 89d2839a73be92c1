/// When an ``NBDBlockDevice`` may try to reconnect to its server: a pure state machine on
/// plain `Duration` instants (no clock inside), so its rules are tested in virtual time.
///
/// A lost connection is not a failure of the server: the first reconnect after it is attempted
/// at once. Each reconnect attempt that fails doubles the wait before the next one may start,
/// from ``Policy/initialDelay`` up to ``Policy/maximumDelay``; a successful connect forgets
/// every failure. While a wait runs, requests fail at once with
/// ``DeviceError/Code/disconnected`` instead of each waiting out a connect timeout — a mirror
/// then reads and writes its other legs, and MMP counts the leaf's heartbeat as failed, without
/// either being held up by a server that is down.
///
/// Worked numbers (defaults 100 ms, 5 s): attempts may start at 0, then 0.1, 0.3, 0.7, 1.5, 3.1,
/// 6.3, 11.3, 16.3 s … after the connection was lost, if every attempt fails at once.
public struct NBDReconnectBackoff: Hashable, Sendable {
    /// The delays between failed attempts.
    public struct Policy: Hashable, Sendable {
        /// The wait after the first failed attempt. Must be positive.
        public var initialDelay: Duration
        /// The longest wait between attempts. At least `initialDelay`.
        public var maximumDelay: Duration

        /// - Parameters:
        ///   - initialDelay: the wait after the first failed attempt (default 100 ms).
        ///   - maximumDelay: the cap on the wait (default 5 s).
        public init(initialDelay: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(5)) {
            self.initialDelay = max(initialDelay, .nanoseconds(1))
            self.maximumDelay = max(maximumDelay, self.initialDelay)
        }
    }

    /// The delays in force.
    public let policy: Policy
    /// Reconnect attempts that failed in a row.
    public private(set) var consecutiveFailures = 0
    /// No attempt may start before this instant (`nil`: any time).
    public private(set) var notBefore: Duration?

    public init(policy: Policy = Policy()) {
        self.policy = policy
    }

    /// How long a request at `now` must wait before it may attempt a connect; `.zero` when it may
    /// attempt one now.
    public func waitBeforeAttempt(at now: Duration) -> Duration {
        guard let notBefore, notBefore > now else { return .zero }
        return notBefore - now
    }

    /// An attempt that started at `now` failed (it may have failed later; `now` is when it began,
    /// so that a slow failure does not stretch the next wait).
    public mutating func attemptFailed(startedAt now: Duration) {
        consecutiveFailures += 1
        notBefore = now + delay(afterFailures: consecutiveFailures)
    }

    /// An attempt connected: the next loss of the connection starts over at once.
    public mutating func connected() {
        consecutiveFailures = 0
        notBefore = nil
    }

    /// The wait after `failures` failed attempts in a row: initial × 2^(failures − 1), capped.
    public func delay(afterFailures failures: Int) -> Duration {
        guard failures > 0 else { return .zero }
        var delay = policy.initialDelay
        for _ in 1..<failures {
            if delay >= policy.maximumDelay { break }
            delay = delay * 2
        }
        return min(delay, policy.maximumDelay)
    }
}
