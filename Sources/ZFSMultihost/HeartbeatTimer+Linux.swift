// The production `HeartbeatTimer` (`ContinuousClock`): the loop thread waits on a condition
// variable bound to `CLOCK_MONOTONIC`, and the rescue is a `timerfd` read by a thread of its own.
//
// Cost is what matters here: a host with 10 pools of 10 leaves heartbeats 100 times a second,
// and on a virtual machine a thread wake-up is most of a heartbeat's cost (BENCHMARKS.md §6).
// So a heartbeat costs one wake-up of the loop thread (the timed wait) and one
// `timerfd_settime` (the arm); disarming is a store under a lock, and the rescue thread wakes
// only when a write really is under way at the next instant (or once when the loop goes idle).

import CZFSLinux
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The real-clock ``HeartbeatTimer``.
///
/// `@unchecked Sendable`: `pending` is read and written only with `mutex` locked; the pthread
/// objects live at fixed addresses from `init` to `deinit`; `rescue` is behind its `Mutex`.
final class MonotonicHeartbeatTimer: HeartbeatTimer, @unchecked Sendable {
    private let time: MonotonicTime
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var pending = false
    private let rescue = Mutex<TimerFDRescue?>(nil)

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

    func signal() {
        pthread_mutex_lock(mutex)
        pending = true
        pthread_mutex_unlock(mutex)
        // After unlocking, so that the woken thread does not block on the mutex at once.
        pthread_cond_signal(condition)
    }

    func sleep(until deadline: Duration) {
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

    func startRescue(name: String, handler: @escaping @Sendable () -> Void) -> Bool {
        guard let made = TimerFDRescue(time: time, name: name, handler: handler) else { return false }
        let previous = rescue.withLock { r -> TimerFDRescue? in
            defer { r = made }
            return r
        }
        previous?.close()
        return true
    }

    func armRescue(at deadline: Duration) -> Bool {
        rescue.withLock { $0 }?.arm(at: deadline) ?? false
    }

    func disarmRescue() {
        rescue.withLock { $0 }?.disarm()
    }

    func stopRescue() {
        let stopped = rescue.withLock { r -> TimerFDRescue? in
            defer { r = nil }
            return r
        }
        stopped?.close()
    }
}

/// A kernel timer that runs `handler` on a thread of its own when an armed deadline passes.
/// Re-arming is one `timerfd_settime` and no thread wake-up (at 100 heartbeats a second a
/// wake-up per write was a third of the heartbeat's CPU time); disarming only forgets the
/// deadline, so a timer that then expires wakes its thread for nothing, once.
///
/// `@unchecked Sendable`: `fd` is used only with `state` locked and while not closed (the
/// waiting thread closes it last); `time` is immutable.
private final class TimerFDRescue: @unchecked Sendable {
    private struct State {
        /// The instant (on `time`) the armed timer stands for, `nil` when disarmed.
        var deadline: Duration?
        var closed = false
    }
    private let fd: Int32
    private let time: MonotonicTime
    private let state = Mutex(State())

    /// Starts the waiting thread; `nil` when the kernel gives no timer.
    init?(time: MonotonicTime, name: String, handler: @escaping @Sendable () -> Void) {
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

    func disarm() {
        state.withLock { $0.deadline = nil }
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

    private func wait(_ handler: @Sendable () -> Void) {
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
            case .fire: handler()
            case .ignore: continue
            case .exit:
                Glibc.close(fd)
                return
            }
        }
    }
}
