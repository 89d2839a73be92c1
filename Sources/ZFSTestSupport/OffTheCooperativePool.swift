// A Swift Testing trait that runs a suite's tests on worker threads instead of the cooperative
// pool. The pool has one thread per core (two on CI and on this machine), and Swift Testing runs
// even a synchronous test function on it: an interop test that waits seconds for a zdb, ztest
// or zpk process holds one of those threads all that time. Two of them starve every other test
// of the run — virtual-time drivers cannot settle, real-time heartbeat tests cannot even start
// their service — which is why the test script once needed a serial phase. Suites whose tests
// block put `.offTheCooperativePool` on their `@Suite`; then the whole run can be parallel.

import Testing
import ZFSDevice

/// Runs each test of the suite (and the tasks it starts in structured concurrency) on
/// `BlockingIO`'s worker threads, which grow when all are busy, so a test that blocks holds a
/// worker of its own and never a thread of the cooperative pool.
public struct OffTheCooperativePool: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await withTaskExecutorPreference(WorkerThreadExecutor.shared) { try await function() }
    }
}

extension Trait where Self == OffTheCooperativePool {
    /// Runs the tests on worker threads instead of the cooperative pool (for tests that block).
    public static var offTheCooperativePool: Self { Self() }
}

/// A task executor that runs every job on a ``ZFSDevice/BlockingIO`` worker thread.
final class WorkerThreadExecutor: TaskExecutor {
    static let shared = WorkerThreadExecutor()

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        BlockingIO.submit { job.runSynchronously(on: executor) }
    }
}
