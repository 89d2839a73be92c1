// Running blocking device work off the cooperative pool (STYLE §2): the caller suspends while a
// worker thread does the work, as NIOFS does with its thread pool. Shared by every module of the
// package that touches devices (the pool host, the heartbeat, the activity check), hence `package`.
//
// The workers are an elastic pool: a job goes to an idle worker when there is one, otherwise a new
// worker is started, so jobs never wait behind each other (an activity check that waits 20 s on
// one pool must not hold up a put on another). A worker that has been idle for
// `WorkerThreads.idleLifetime` exits. Starting a thread per call cost about 0.3 ms on the
// development machine — as much as a whole 4 KiB put — which is what this pool saves.

import Foundation

package enum BlockingIO {
    /// Runs `body` on a worker thread and returns (or throws) what it did.
    package static func run<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<R, any Error>) in
            WorkerThreads.shared.submit { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// An elastic set of worker threads for blocking jobs.
///
/// `@unchecked Sendable`: every stored `var` is read and written only with `condition` locked.
package final class WorkerThreads: @unchecked Sendable {
    package static let shared = WorkerThreads()

    /// How long an idle worker waits for a job before it exits.
    static let idleLifetime: TimeInterval = 10
    /// Stack size of a worker: deep enough for nvlist recursion (100 levels) with room to spare.
    static let stackByteCount = 1 << 22

    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var idleWorkers = 0

    /// Queues `job`; starts a worker when the idle ones cannot take every queued job at once.
    package func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        let needsWorker = idleWorkers < jobs.count
        condition.unlock()
        // Signalled after unlocking: a worker woken while the lock is still held would block on
        // it at once — a second context switch for every job (glibc does not move waiters from
        // the condition to the mutex).
        if !needsWorker { condition.signal() }
        if needsWorker {
            let thread = Thread { [self] in work() }
            thread.stackSize = Self.stackByteCount
            thread.start()
        }
    }

    private func work() {
        condition.lock()
        while true {
            while jobs.isEmpty {
                idleWorkers += 1
                let signalled = condition.wait(until: Date(timeIntervalSinceNow: Self.idleLifetime))
                idleWorkers -= 1
                if !signalled && jobs.isEmpty {
                    condition.unlock()
                    return
                }
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
            condition.lock()
        }
    }
}
