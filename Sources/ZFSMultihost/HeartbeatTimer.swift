// The heartbeat loop's view of time: how it waits between heartbeats, and the timer that hands
// the loop to a new thread when a write outlives the next heartbeat instant. One seam, two
// implementations, so that `HeartbeatService.loop` — the wait, the inline write, the rescue
// hand-over — is the same code under the real clock and under a virtual test clock:
//
// - `MonotonicHeartbeatTimer` (`HeartbeatTimer+Linux.swift`, production, `ContinuousClock`): a
//   condition variable bound to `CLOCK_MONOTONIC` for the wait, a `timerfd` and a thread of its
//   own for the rescue.
// - `VirtualHeartbeatTimer` (below, any other injected clock): the wait and the rescue are tasks
//   asleep on the injected clock, so a test that moves its clock moves both.

import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How the heartbeat loop waits, and the rescue timer that takes the loop over from a write that
/// is still under way at the loop's next instant (OpenZFS's `mmp_thread` never waits for its
/// writes; a thread writing synchronously needs a rescue instead).
///
/// Deadlines are offsets on the driver's ``MonotonicTime``. The loop calls, per heartbeat it
/// writes itself: ``armRescue(at:)``, the blocking write, ``disarmRescue()`` (only while it still
/// holds the loop), then ``sleep(until:)``.
protocol HeartbeatTimer: AnyObject, Sendable {
    /// Blocks the calling thread until `deadline` or ``signal()``. A signal that arrives while no
    /// thread sleeps is kept, so the next sleep returns at once.
    func sleep(until deadline: Duration)
    /// Ends the current sleep, or the next one at once.
    func signal()
    /// Makes the rescue available: from now on, an armed deadline that passes before
    /// ``disarmRescue()`` or the next ``armRescue(at:)`` calls `handler`, on a thread that is not
    /// the loop's. False when no rescue can be had (the caller then hands writes to workers).
    func startRescue(name: String, handler: @escaping @Sendable () -> Void) -> Bool
    /// Arms the rescue for `deadline`, replacing an earlier arm. False when the rescue is not
    /// running (never started, stopped, or the kernel failed it): nothing will rescue the caller.
    func armRescue(at deadline: Duration) -> Bool
    /// The write the last arm covered has returned. The handler may still be called once for it
    /// (it raced with this call), so the handler checks that a write is under way.
    func disarmRescue()
    /// Ends the rescue; the handler is not called for arms made after this.
    func stopRescue()
}

/// The timer for `time`: the real one on `ContinuousClock`, the virtual one on any other clock.
func makeHeartbeatTimer(_ time: MonotonicTime) -> any HeartbeatTimer {
    time.isRealTime ? MonotonicHeartbeatTimer(time) : VirtualHeartbeatTimer(time)
}

/// A ``HeartbeatTimer`` driven by an injected (test) clock: each sleep and each armed rescue is a
/// task asleep on that clock until its deadline. A rescue that is re-armed or disarmed has its
/// task cancelled, so the clock's sleepers are exactly the loop's sleep and, while a write is
/// under way, its rescue — a test that steps from deadline to deadline sees the loop's instants
/// and, when a write hangs, the rescue's.
///
/// `@unchecked Sendable`: `pending`, `fired` and `generation` are read and written only with
/// `mutex` locked; the pthread objects live at fixed addresses from `init` to `deinit`.
final class VirtualHeartbeatTimer: HeartbeatTimer, @unchecked Sendable {
    private let time: MonotonicTime
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var pending = false
    private var fired = false
    private var generation: UInt64 = 0

    private struct Rescue {
        var handler: (@Sendable () -> Void)?
        /// Bumped by every arm, disarm and stop: a rescue task fires only for the arm it was made for.
        var generation: UInt64 = 0
        var task: Task<Void, Never>?
    }
    private let rescue = Mutex(Rescue())

    init(_ time: MonotonicTime) {
        self.time = time
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func signal() {
        pthread_mutex_lock(mutex)
        pending = true
        pthread_mutex_unlock(mutex)
        pthread_cond_signal(condition)
    }

    func sleep(until deadline: Duration) {
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

    func startRescue(name: String, handler: @escaping @Sendable () -> Void) -> Bool {
        rescue.withLock { $0.handler = handler }
        return true
    }

    func armRescue(at deadline: Duration) -> Bool {
        let time = self.time
        let (armed, replaced) = rescue.withLock { r -> (Bool, Task<Void, Never>?) in
            guard let handler = r.handler else { return (false, nil) }
            r.generation &+= 1
            let mine = r.generation
            let replaced = r.task
            r.task = Task { [weak self] in
                // Cancelled (re-armed, disarmed, stopped): the sleep throws and nothing fires.
                guard (try? await time.sleepUntil(deadline)) != nil, let self else { return }
                guard self.rescue.withLock({ $0.generation == mine && $0.handler != nil }) else { return }
                handler()
            }
            return (true, replaced)
        }
        // Outside the lock: cancelling runs the clock's cancellation handler at once.
        replaced?.cancel()
        return armed
    }

    func disarmRescue() {
        let replaced = rescue.withLock { r -> Task<Void, Never>? in
            r.generation &+= 1
            defer { r.task = nil }
            return r.task
        }
        replaced?.cancel()
    }

    func stopRescue() {
        let replaced = rescue.withLock { r -> Task<Void, Never>? in
            r.generation &+= 1
            r.handler = nil
            defer { r.task = nil }
            return r.task
        }
        replaced?.cancel()
    }
}
