// The package's one way to run blocking work off the cooperative pool (STYLE §2): device I/O,
// label probes, socket reads and writes, whole subcommands. The caller suspends (`run`), goes
// on (`submit`) or waits on its own thread (`forEach`) while worker threads do the work, as
// NIOFS does with its thread pool. It sits in ZFSDevice, the lowest module every user depends
// on (the pool host, the heartbeat, the activity check, the import scan, the daemon, the CLI),
// hence `package`.
//
// The workers are an elastic pool: a job goes to an idle worker when there is one, otherwise a new
// worker is started, so jobs never wait behind each other (an activity check that waits 20 s on
// one pool must not hold up a put on another; a control connection blocked in `read` must not
// hold up the next one; a `forEach` nested in a job cannot deadlock). A worker that has been
// idle for `WorkerThreads.idleLifetime` exits. Starting a thread per call cost about 0.3 ms on
// the development machine — as much as a whole 4 KiB put — which is what this pool saves.

import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

package enum BlockingIO {
    /// Runs `body` on a worker thread and returns (or throws, with its own error type) what it did.
    package static func run<R: Sendable, Failure: Error>(
        _ body: @escaping @Sendable () throws(Failure) -> R
    ) async throws(Failure) -> R {
        let result: Result<R, Failure> = await withCheckedContinuation { continuation in
            WorkerThreads.shared.submit {
                continuation.resume(returning: Result { () throws(Failure) -> R in try body() })
            }
        }
        return try result.get()
    }

    /// Starts `job` on a worker thread and returns at once (for work whose end the caller learns
    /// of some other way, like a heartbeat write that reports through its own bookkeeping).
    package static func submit(_ job: @escaping @Sendable () -> Void) {
        WorkerThreads.shared.submit(job)
    }

    /// `2 × online CPUs`, libzutil's thread-pool width for label probes (`tpool_create` in
    /// `zpool_find_import_impl`): I/O-bound work wants more threads than cores.
    package static var defaultWidth: Int {
        let cpus = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return max(1, 2 * (cpus > 0 ? cpus : 1))
    }

    /// Runs `body(i)` for every `i` in `0..<count`, at most `width` at a time, and returns when
    /// all have finished. Blocks the calling thread, which takes a share of the work; `width − 1`
    /// workers take the rest. Each takes the next index until none remain, so a slow device
    /// delays only the thread reading it. Call it from a thread that may block (a worker, the
    /// CLI's main thread), never from the cooperative pool.
    package static func forEach(count: Int, width: Int, _ body: @escaping @Sendable (Int) -> Void) {
        guard count > 0 else { return }
        let threads = min(max(1, width), count)
        let next = IndexCounter()
        let work: @Sendable () -> Void = {
            while true {
                let index = next.take()
                guard index < count else { return }
                body(index)
            }
        }
        guard threads > 1 else { return work() }
        let finished = DispatchSemaphore(value: 0)
        for _ in 1..<threads {
            WorkerThreads.shared.submit {
                work()
                finished.signal()
            }
        }
        work()
        for _ in 1..<threads { finished.wait() }
    }

    private final class IndexCounter: Sendable {
        private let value = Atomic<Int>(0)
        func take() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
    }
}

/// An elastic set of worker threads for blocking jobs (``BlockingIO``'s).
///
/// `@unchecked Sendable`: every stored `var` is read and written only with `condition` locked.
final class WorkerThreads: @unchecked Sendable {
    static let shared = WorkerThreads()

    /// How long an idle worker waits for a job before it exits.
    static let idleLifetime: TimeInterval = 10
    /// Stack size of a worker: deep enough for nvlist recursion (100 levels) with room to spare.
    static let stackByteCount = 1 << 22

    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var idleWorkers = 0

    /// Queues `job`; starts a worker when the idle ones cannot take every queued job at once.
    func submit(_ job: @escaping @Sendable () -> Void) {
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
