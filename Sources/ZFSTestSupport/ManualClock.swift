// A `Clock` whose time moves only when a test says so (STYLE §6 "virtual time"), in the shape of
// swift-clocks' `TestClock` and NIO's `EmbeddedEventLoop`: time starts at zero, `advance(by:)`
// moves it and wakes every sleeper whose deadline has been reached, in deadline order.
//
// Unlike `TestClock.advance`, which yields a heuristic number of times, `advance` here only
// resumes continuations; a test that must know the code under test is asleep again calls
// ``ManualClock/waitForSleepers(_:timeout:sourceLocation:)`` (or reads
// ``ManualClock/sleeperCount``) — a real sync point rather than a guess. The wait is woken by
// the sleep that completes the count (no polling: parallel tests on a loaded machine share its
// cores), and it fails the test, saying what it waited for, when the count is not reached.
//
// The package's one test clock: every virtual-time test uses it.

import Synchronization
import Testing

/// A manually driven clock with `Duration` instants.
///
/// ```swift
/// let clock = ManualClock()
/// async let woke: Void = clock.sleep(until: .init(offset: .seconds(1)))
/// await clock.waitForSleepers(1)
/// clock.advance(by: .seconds(1) - .nanoseconds(1))   // still asleep
/// clock.advance(by: .nanoseconds(1))                 // wakes
/// ```
public final class ManualClock: Clock, Sendable {
    /// A point in virtual time: the offset from the clock's start.
    public struct Instant: InstantProtocol, Hashable, Sendable, CustomStringConvertible {
        /// Time since the clock started.
        public var offset: Duration
        public init(offset: Duration) { self.offset = offset }
        public func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        public func duration(to other: Instant) -> Duration { other.offset - offset }
        public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
        public var description: String { "t+\(offset)" }
    }

    private struct Sleeper {
        var id: UInt64
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    /// A ``waitForSleepers(_:timeout:sourceLocation:)`` in progress.
    private struct Waiter {
        var id: UInt64
        var count: Int
        var continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var nextID: UInt64 = 0
        var sleepers: [Sleeper] = []
        var cancelled: Set<UInt64> = []
        var waiters: [Waiter] = []

        /// Removes and returns the waiters whose count the sleepers now reach.
        mutating func satisfiedWaiters() -> [CheckedContinuation<Bool, Never>] {
            let count = sleepers.count
            let ready = waiters.filter { $0.count <= count }.map(\.continuation)
            waiters.removeAll { $0.count <= count }
            return ready
        }
    }

    private let state = Mutex(State())

    public init(now: Duration = .zero) {
        state.withLock { $0.now = Instant(offset: now) }
    }

    public var now: Instant { state.withLock { $0.now } }
    /// The smallest step: this clock resolves nanoseconds.
    public var minimumResolution: Duration { .nanoseconds(1) }

    /// Tasks currently asleep on this clock.
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    /// The deadlines of the current sleepers, earliest first.
    public var sleeperDeadlines: [Duration] {
        state.withLock { $0.sleepers.map(\.deadline.offset).sorted() }
    }

    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        try Task.checkCancellation()
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let (resumeNow, ready) = state.withLock { s -> (Result<Void, any Error>?, [CheckedContinuation<Bool, Never>]) in
                    if s.cancelled.remove(id) != nil { return (.failure(CancellationError()), []) }
                    if deadline <= s.now { return (.success(()), []) }
                    s.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return (nil, s.satisfiedWaiters())
                }
                if let resumeNow { continuation.resume(with: resumeNow) }
                for waiter in ready { waiter.resume(returning: true) }
            }
        } onCancel: {
            let sleeper: Sleeper? = state.withLock { s in
                if let index = s.sleepers.firstIndex(where: { $0.id == id }) {
                    return s.sleepers.remove(at: index)
                }
                s.cancelled.insert(id)
                return nil
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward by `duration` and wakes every sleeper whose deadline is reached.
    public func advance(by duration: Duration) {
        advance(to: state.withLock { $0.now.offset } + duration)
    }

    /// Moves time to `offset` (never backwards) and wakes every sleeper whose deadline is reached,
    /// earliest deadline first.
    public func advance(to offset: Duration) {
        let woken: [Sleeper] = state.withLock { s in
            if offset > s.now.offset { s.now = Instant(offset: offset) }
            let due = s.sleepers.filter { $0.deadline <= s.now }.sorted { $0.deadline < $1.deadline }
            s.sleepers.removeAll { $0.deadline <= s.now }
            return due
        }
        for sleeper in woken { sleeper.continuation.resume() }
    }

    /// Advances to the earliest sleeper's deadline (if any) and returns it.
    @discardableResult
    public func advanceToNextDeadline() -> Duration? {
        guard let next = sleeperDeadlines.first else { return nil }
        advance(to: next)
        return next
    }

    /// Waits until at least `count` tasks sleep on this clock. When that has not happened after
    /// `timeout` of real time, records an issue (the test fails) saying so, with the clock's
    /// time and sleepers, and returns false.
    @discardableResult
    public func waitForSleepers(
        _ count: Int = 1, timeout: Duration = Patience.hang, sourceLocation: SourceLocation = #_sourceLocation
    ) async -> Bool {
        if await sleepersArrive(count, within: timeout) { return true }
        Issue.record(
            "timed out after \(timeout) waiting for \(count) sleepers on the clock (t+\(now.offset), sleepers at \(sleeperDeadlines))",
            sourceLocation: sourceLocation)
        return false
    }

    /// Whether at least `count` tasks sleep on this clock within `timeout` of real time (false
    /// is an answer, not a failure: for loops that advance the clock whenever someone sleeps).
    public func sleepersArrive(_ count: Int = 1, within timeout: Duration) async -> Bool {
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let reached = state.withLock { s -> Bool in
                if s.sleepers.count >= count { return true }
                s.waiters.append(Waiter(id: id, count: count, continuation: continuation))
                return false
            }
            if reached {
                continuation.resume(returning: true)
                return
            }
            Task {
                try? await Task.sleep(for: timeout)
                let expired = self.state.withLock { s -> CheckedContinuation<Bool, Never>? in
                    guard let index = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return s.waiters.remove(at: index).continuation
                }
                expired?.resume(returning: false)
            }
        }
    }

    /// Until the calling task is cancelled: whenever a task sleeps on this clock, advances to
    /// the earliest deadline (for code under test whose every wait should simply elapse).
    public func advanceWhileRunning() async {
        while !Task.isCancelled {
            if await sleepersArrive(1, within: .milliseconds(100)) { advanceToNextDeadline() }
        }
    }
}
