// What the MMP drivers need from the world, injected (STYLE §5): a monotonic clock for delays
// and deadlines, a wall clock for `ub_timestamp`, the shared tunables store, and this module's
// error. The heartbeat loop's waits and rescue timer are in `HeartbeatTimer.swift`; blocking
// device I/O runs on `ZFSDevice.BlockingIO`.

import CZFSLinux
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Wall clock

/// The wall clock heartbeats stamp into `ub_timestamp` (OpenZFS: `gethrestime_sec()`), and the
/// clock a verdict measures heartbeat ages with. Deadlines never use it (they use the injected
/// monotonic `Clock`), so a stepped wall clock cannot shorten a wait.
public struct WallClock: Sendable {
    private let read: @Sendable () -> Duration

    /// A wall clock reading `sinceEpoch()`: the time since 1970-01-01 00:00:00 UTC.
    public init(sinceEpoch: @escaping @Sendable () -> Duration) { self.read = sinceEpoch }

    /// `CLOCK_REALTIME`.
    public static let system = WallClock {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return .seconds(Int64(ts.tv_sec)) + .nanoseconds(Int64(ts.tv_nsec))
    }

    /// A wall clock that stays at `seconds` (tests).
    public static func fixed(seconds: UInt64) -> WallClock {
        WallClock { .seconds(Int64(clamping: seconds)) }
    }

    /// Time since the Unix epoch.
    public var sinceEpoch: Duration { read() }
    /// Whole seconds since the Unix epoch, as `ub_timestamp` stores them.
    public var seconds: UInt64 { UInt64(max(0, sinceEpoch.components.seconds)) }
}

// MARK: - Thread names

/// Names the calling thread for `top -H`, `perf` and debuggers (Linux keeps 15 bytes).
/// Foundation's `Thread.name`, set before `start()`, does not reach the kernel on Linux.
func nameCurrentThread(_ name: String) {
    var bytes = Array(name.utf8.prefix(15))
    while !bytes.isEmpty, String(validating: bytes, as: UTF8.self) == nil { bytes.removeLast() }
    _ = String(decoding: bytes, as: UTF8.self).withCString { czfs_set_current_thread_name($0) }
}

// MARK: - A bounded set

/// A set that keeps only its `capacity` newest members, in a ring: adding costs a store (no
/// hashing, no shifting), `contains` a linear search — for sets that grow at every heartbeat
/// and are searched rarely (the split-brain alarm's "is this ours", a test's "has it landed").
package struct RecentSet<Element: Equatable & Sendable>: Sendable {
    package let capacity: Int
    private var ring: [Element] = []
    /// Index in `ring` of the oldest member once `ring` is full.
    private var oldest = 0

    package init(capacity: Int) {
        self.capacity = max(1, capacity)
        ring.reserveCapacity(self.capacity)
    }

    /// Newest first: a recent member is found soonest.
    package func contains(_ element: Element) -> Bool {
        for age in 0..<ring.count where ring[(oldest + ring.count - 1 - age) % ring.count] == element { return true }
        return false
    }

    /// The members, oldest first.
    package var elements: [Element] { Array(ring[oldest...] + ring[..<oldest]) }

    /// Adds `element` unless it is the newest member already, forgetting the oldest when full.
    package mutating func insert(_ element: Element) {
        if let newest = ring.isEmpty ? nil : ring[(oldest + ring.count - 1) % ring.count], newest == element { return }
        if ring.count < capacity {
            ring.append(element)
        } else {
            ring[oldest] = element
            oldest = (oldest + 1) % capacity
        }
    }
}

extension RecentSet: ExpressibleByArrayLiteral {
    /// A set as big as the literal.
    package init(arrayLiteral elements: Element...) {
        self.init(capacity: elements.count)
        for element in elements { insert(element) }
    }
}

// MARK: - Monotonic time over any clock

/// An `any Clock<Duration>` opened once, so drivers can speak in `Duration` offsets from the
/// driver's start (the unit every state machine here uses).
struct MonotonicTime: Sendable {
    let now: @Sendable () -> Duration
    let sleepUntil: @Sendable (Duration) async throws -> Void
    /// The clock is `ContinuousClock`: the heartbeat waits on `CLOCK_MONOTONIC` and its rescue
    /// is a kernel timer (``MonotonicHeartbeatTimer``); on any other clock both are tasks asleep
    /// on it (``VirtualHeartbeatTimer``).
    let isRealTime: Bool
    /// With `ContinuousClock`: the offset of this time's zero from ``processEpoch``, shared by
    /// every heartbeat of the process (``HeartbeatStateMachine``'s grid). `nil` otherwise.
    let gridOrigin: Duration?

    /// An instant common to every `MonotonicTime` of the process on `ContinuousClock`.
    static let processEpoch = ContinuousClock.now

    init(_ clock: any Clock<Duration>) {
        self.init(opening: clock)
    }

    private init<C: Clock>(opening clock: C) where C.Duration == Duration {
        let epoch = Self.processEpoch  // taken no later than `start`
        let start = clock.now
        isRealTime = C.self == ContinuousClock.self
        gridOrigin = (start as? ContinuousClock.Instant).map { epoch.duration(to: $0) }
        if let start = start as? ContinuousClock.Instant {
            // Read ~200 times a second by the heartbeats of a busy host: a concrete clock, not
            // generic code that looks up `C`'s witnesses at every call.
            now = { start.duration(to: ContinuousClock.now) }
        } else {
            now = { start.duration(to: clock.now) }
        }
        // An explicit tolerance: with `nil` the runtime lets the timer fire up to 10 % late
        // (Dispatch's default leeway), which was the heartbeat's cadence tail.
        sleepUntil = { offset in try await clock.sleep(until: start.advanced(by: offset), tolerance: .zero) }
    }
}

// MARK: - Writes in flight

/// Counts work started outside structured concurrency (heartbeats on worker threads) so that a
/// driver can wait, when it stops, until all of it has finished.
final class InFlightCount: Sendable {
    private struct State {
        var count = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func begin() { state.withLock { $0.count += 1 } }

    func end() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.count -= 1
            guard s.count == 0 else { return [] }
            defer { s.waiters = [] }
            return s.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once nothing is in flight.
    func drained() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = state.withLock { s -> Bool in
                if s.count == 0 { return true }
                s.waiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }
}

// MARK: - Tunables store

/// The MMP module parameters shared by every pool of a host (OpenZFS: global module
/// parameters). `zpk tunable set` changes them here; every heartbeat driver observing the store
/// picks the change up — a change of `zfs_multihost_interval` wakes each driver at once, as
/// OpenZFS's `mmp_signal_all_threads` does; the others are read at the next iteration.
///
/// Values are stored raw (as an operator set them) and clamped where used
/// (``MultihostTunables``), exactly as OpenZFS does.
public final class MultihostTunablesStore: Sendable {
    /// The OpenZFS names `zpk tunable get|set` accepts.
    public enum Name: String, CaseIterable, Hashable, Sendable {
        /// `zfs_multihost_interval`, milliseconds (default 1000, used as ≥ 100).
        case interval = "zfs_multihost_interval"
        /// `zfs_multihost_fail_intervals` (default 10; 0 = never suspend; else used as ≥ 2).
        case failIntervals = "zfs_multihost_fail_intervals"
        /// `zfs_multihost_import_intervals` (default 20, used as ≥ 1).
        case importIntervals = "zfs_multihost_import_intervals"
    }

    private struct State {
        var tunables: MultihostTunables
        var nextToken: UInt64 = 0
        var observers: [UInt64: @Sendable (MultihostTunables) -> Void] = [:]
    }
    private let state: Mutex<State>

    public init(_ tunables: MultihostTunables = MultihostTunables()) {
        state = Mutex(State(tunables: tunables))
    }

    /// The current values.
    public var current: MultihostTunables { state.withLock { $0.tunables } }

    /// The raw value of one parameter.
    public func value(of name: Name) -> UInt64 {
        let t = current
        switch name {
        case .interval: return t.intervalInMilliseconds
        case .failIntervals: return t.failIntervals
        case .importIntervals: return t.importIntervals
        }
    }

    /// Sets one parameter (raw; clamped where used) and notifies every observer.
    public func set(_ name: Name, to value: UInt64) {
        var t = current
        switch name {
        case .interval: t.intervalInMilliseconds = value
        case .failIntervals: t.failIntervals = value
        case .importIntervals: t.importIntervals = value
        }
        set(t)
    }

    /// Replaces all values and notifies every observer.
    public func set(_ tunables: MultihostTunables) {
        let observers = state.withLock { s -> [@Sendable (MultihostTunables) -> Void] in
            s.tunables = tunables
            return Array(s.observers.values)
        }
        for observer in observers { observer(tunables) }
    }

    /// Calls `observer` after every change until ``removeObserver(_:)``. Returns its token.
    public func addObserver(_ observer: @escaping @Sendable (MultihostTunables) -> Void) -> UInt64 {
        state.withLock { s in
            s.nextToken += 1
            s.observers[s.nextToken] = observer
            return s.nextToken
        }
    }

    /// Stops notifying the observer with `token`.
    public func removeObserver(_ token: UInt64) {
        _ = state.withLock { $0.observers.removeValue(forKey: token) }
    }
}

// MARK: - Errors

/// The one error type of `ZFSMultihost` (STYLE §4): a code, a message naming the pool, device
/// and reason with what to do, an optional cause and where it was thrown.
public struct MultihostError: Error, Sendable, CustomStringConvertible {
    /// What went wrong; new codes can be added without breaking clients.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable { case noUberblock, ioFailed, interrupted }
        private let value: Value
        private init(_ value: Value) { self.value = value }
        /// No leaf of the pool holds a valid uberblock: nothing to watch.
        public static let noUberblock = Code(.noUberblock)
        /// A device read or write failed.
        public static let ioFailed = Code(.ioFailed)
        /// The task was cancelled while waiting.
        public static let interrupted = Code(.interrupted)
        public var description: String {
            switch value {
            case .noUberblock: "no uberblock"
            case .ioFailed: "I/O failed"
            case .interrupted: "interrupted"
            }
        }
    }

    public var code: Code
    /// What went wrong and what to do, naming the pool and device.
    public var message: String
    public var cause: (any Error & Sendable)?
    /// Where it was thrown (`fileID:line`).
    public var location: String

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil, fileID: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.cause = cause
        self.location = "\(fileID):\(line)"
    }

    public var description: String {
        if let cause { return "\(message) (\(cause))" }
        return message
    }
}
