// A `Clock` whose time moves only when a test says so (STYLE §6 "virtual time"), in the shape of
// swift-clocks' `TestClock` and NIO's `EmbeddedEventLoop`: time starts at zero, `advance(by:)`
// moves it and wakes every sleeper whose deadline has been reached, in deadline order.
//
// Unlike `TestClock.advance`, which yields a heuristic number of times, `advance` here only
// resumes continuations; a test that must know the code under test is asleep again calls
// ``ManualClock/waitForSleepers(_:)`` (or reads ``ManualClock/sleeperCount``) — a real sync
// point rather than a guess.

import Synchronization

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

    private struct State {
        var now = Instant(offset: .zero)
        var nextID: UInt64 = 0
        var sleepers: [Sleeper] = []
        var cancelled: Set<UInt64> = []
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
                let resumeNow: Result<Void, any Error>? = state.withLock { s in
                    if s.cancelled.remove(id) != nil { return .failure(CancellationError()) }
                    if deadline <= s.now { return .success(()) }
                    s.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return nil
                }
                if let resumeNow { continuation.resume(with: resumeNow) }
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

    /// Waits (yielding) until at least `count` tasks sleep on this clock, for at most `timeout`
    /// of real time. Returns false if that never happened.
    @discardableResult
    public func waitForSleepers(_ count: Int = 1, timeout: Duration = .seconds(10)) async -> Bool {
        let start = ContinuousClock.now
        while sleeperCount < count {
            if ContinuousClock.now - start > timeout { return false }
            await Task.yield()
        }
        return true
    }
}
