// What the MMP drivers need from the world, injected (STYLE §5): a monotonic clock for delays
// and deadlines, a wall clock for `ub_timestamp`, an interruptible sleep, the shared tunables
// store, and this module's error. Blocking device I/O runs on `ZFSDevice.BlockingIO`.

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

// MARK: - A cheap seeded generator

/// SplitMix64 (Steele, Lea and Flood 2014): a few arithmetic operations per number, for choices
/// that need spread, not secrecy (a heartbeat's label).
struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - Monotonic time over any clock

/// An `any Clock<Duration>` opened once, so drivers can speak in `Duration` offsets from the
/// driver's start (the unit every state machine here uses).
struct MonotonicTime: Sendable {
    let now: @Sendable () -> Duration
    let sleepUntil: @Sendable (Duration) async throws -> Void
    /// The clock is `ContinuousClock`: a thread may wait on `CLOCK_MONOTONIC` instead of a task.
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

// MARK: - Interruptible sleep

/// The sleep of the heartbeat's own thread, which ``signal()`` ends early. A signal that arrives
/// while the thread does not sleep is kept, so the next ``sleep(until:)`` returns at once.
///
/// With the real clock (`ContinuousClock`, production) the thread waits on a condition variable
/// bound to `CLOCK_MONOTONIC` (a wall-clock step cannot move the deadline) — one thread wake-up
/// per heartbeat, no task and no dispatch timer: the heartbeat sleeps ~100 times a second on a
/// host with 10 pools of 10 leaves, and every wake-up shows in the CPU time. With any other
/// (injected) clock, a task sleeps on that clock and wakes the thread, so virtual-time tests drive
/// the same loop.
///
/// `@unchecked Sendable`: `pending`, `fired` and `generation` are read and written only with
/// `mutex` locked; the pthread objects live at fixed addresses from `init` to `deinit`.
final class WakeSignal: @unchecked Sendable {
    private let time: MonotonicTime
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var pending = false
    private var fired = false
    private var generation: UInt64 = 0

    init(_ time: MonotonicTime) {
        self.time = time
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Ends the current sleep, or the next one at once.
    func signal() {
        pthread_mutex_lock(mutex)
        pending = true
        pthread_mutex_unlock(mutex)
        // After unlocking, so that the woken thread does not block on the mutex at once.
        pthread_cond_signal(condition)
    }

    /// Blocks the calling thread until `deadline` (an offset on `time`) or ``signal()``.
    func sleep(until deadline: Duration) {
        if time.isRealTime {
            sleepOnMonotonicClock(until: deadline)
        } else {
            sleepOnInjectedClock(until: deadline)
        }
    }

    private func sleepOnMonotonicClock(until deadline: Duration) {
        pthread_mutex_lock(mutex)
        while !pending {
            let remaining = deadline - time.now()
            if remaining <= .zero { break }
            var wakeAt = timespec()
            clock_gettime(CLOCK_MONOTONIC, &wakeAt)
            let (seconds, attoseconds) = remaining.components
            let nanoseconds = Int(wakeAt.tv_nsec) + Int(attoseconds / 1_000_000_000)
            wakeAt.tv_sec += Int(seconds) + nanoseconds / 1_000_000_000
            wakeAt.tv_nsec = nanoseconds % 1_000_000_000
            _ = pthread_cond_timedwait(condition, mutex, &wakeAt)
        }
        pending = false
        pthread_mutex_unlock(mutex)
    }

    private func sleepOnInjectedClock(until deadline: Duration) {
        pthread_mutex_lock(mutex)
        if pending {
            pending = false
            pthread_mutex_unlock(mutex)
            return
        }
        generation &+= 1
        let mine = generation
        fired = false
        pthread_mutex_unlock(mutex)
        let time = self.time
        let timer = Task {
            _ = try? await time.sleepUntil(deadline)
            pthread_mutex_lock(self.mutex)
            if self.generation == mine {
                self.fired = true
                pthread_cond_signal(self.condition)
            }
            pthread_mutex_unlock(self.mutex)
        }
        pthread_mutex_lock(mutex)
        while !pending && !fired { pthread_cond_wait(condition, mutex) }
        pending = false
        pthread_mutex_unlock(mutex)
        timer.cancel()
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

// MARK: - Loop rescue

/// A kernel timer that runs `handler` on a thread of its own when it expires: the heartbeat
/// loop arms it before writing a heartbeat itself, for a little after its next instant, and
/// re-arms it at every heartbeat, so the thread wakes only when a write is still under way then
/// (OpenZFS's `mmp_thread` never waits for its writes; ours hands the loop to a new thread).
///
/// Arming is one `timerfd_settime`, no thread wake-up: at 100 heartbeats a second a wake-up per
/// write was a third of the heartbeat's CPU time. `handler` must itself check that a write is
/// under way (the timer also expires once after the loop stops writing).
///
/// `@unchecked Sendable`: `fd` is used only with `state` locked and while not closed (the
/// waiting thread closes it last); `time` and `handler` are immutable.
final class LoopRescue: @unchecked Sendable {
    private struct State {
        /// The instant (on `time`) the armed timer stands for, `nil` when disarmed.
        var deadline: Duration?
        var closed = false
    }
    private let fd: Int32
    private let time: MonotonicTime
    private let state = Mutex(State())

    /// Starts the waiting thread, `nil` when the kernel gives no timer (the caller then hands
    /// every write to a worker thread instead of writing it itself).
    /// `handler` is given the timer itself, to hand to the thread it starts.
    init?(time: MonotonicTime, name: String, handler: @escaping @Sendable (LoopRescue) -> Void) {
        let fd = czfs_timerfd_create_monotonic()
        guard fd >= 0 else { return nil }
        self.fd = fd
        self.time = time
        let thread = Thread { [self] in
            nameCurrentThread(name)
            wait(handler)
        }
        thread.stackSize = 1 << 18
        thread.start()
    }

    /// Runs `handler` at `deadline` unless another `arm` comes first. False
    /// when the timer is gone (closed, or the kernel failed it): nothing will rescue the caller.
    func arm(at deadline: Duration) -> Bool {
        state.withLock { s in
            guard !s.closed else { return false }
            s.deadline = deadline
            let remaining = max(1, nanoseconds(deadline - time.now()))
            if czfs_timerfd_set_relative(fd, remaining) != 0 {
                s.deadline = nil
                return false
            }
            return true
        }
    }

    /// Ends the waiting thread (which closes the timer); later calls do nothing.
    func close() {
        state.withLock { s in
            guard !s.closed else { return }
            s.closed = true
            s.deadline = nil
            _ = czfs_timerfd_set_relative(fd, 1)
        }
    }

    private func wait(_ handler: @Sendable (LoopRescue) -> Void) {
        enum Next { case fire, ignore, exit }
        while true {
            var expirations: UInt64 = 0
            let count = read(fd, &expirations, MemoryLayout<UInt64>.size)
            if count < 0 && errno != EINTR {
                // The timer is unusable: from now on `arm` says so and the loop hands its writes
                // to worker threads.
                state.withLock { $0.closed = true }
                Glibc.close(fd)
                return
            }
            let next = state.withLock { s -> Next in
                if s.closed { return .exit }
                guard let deadline = s.deadline, time.now() >= deadline else { return .ignore }
                s.deadline = nil
                return .fire
            }
            switch next {
            case .fire: handler(self)
            case .ignore: continue
            case .exit:
                Glibc.close(fd)
                return
            }
        }
    }
}
