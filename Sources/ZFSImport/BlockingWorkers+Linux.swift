// A fixed set of POSIX threads for blocking I/O.
//
// Label probes block in `stat`, `open` and `pread`. Running them as Swift tasks would park the
// cooperative pool's few threads in system calls (STYLE §2: "nothing calls blocking pread from
// the cooperative pool"); `DispatchQueue.concurrentPerform` is bounded by the CPU count, which
// is too few for I/O-bound work. libzutil uses `2 × online CPUs` threads (`tpool_create` in
// `zpool_find_import_impl`); so do we, by default.
//
// Each worker takes the next index from a shared atomic counter until none remain, so a slow
// device delays only the worker reading it. The calling thread waits with `pthread_join`.

import Synchronization

#if canImport(Glibc)
import Glibc
#endif

enum BlockingWorkers {
    /// `2 × online CPUs`, libzutil's thread-pool width.
    static var defaultWidth: Int {
        let cpus = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return max(1, 2 * (cpus > 0 ? cpus : 1))
    }

    private final class Job: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    /// Runs `body(i)` for every `i` in `0..<count` on at most `width` new threads and returns
    /// when all have finished. With `count` ≤ 1 or `width` 1, runs on the calling thread.
    static func forEach(count: Int, width: Int, _ body: @escaping @Sendable (Int) -> Void) {
        guard count > 0 else { return }
        let threads = min(max(1, width), count)
        let next = Atomic<Int>(0)
        let work: @Sendable () -> Void = {
            while true {
                let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard index < count else { return }
                body(index)
            }
        }
        if threads == 1 {
            work()
            return
        }
        var started: [pthread_t] = []
        for _ in 0..<threads {
            if let thread = spawn(work) {
                started.append(thread)
            }
        }
        // If no thread could be started (resource limits), do the work here.
        if started.isEmpty { work() }
        for thread in started { pthread_join(thread, nil) }
    }

    /// Runs `body` on a new detached thread (for handing a blocking job off the cooperative pool).
    /// - Returns: false when no thread could be started; the caller must then run `body` itself.
    static func detach(_ body: @escaping @Sendable () -> Void) -> Bool {
        guard let thread = spawn(body) else { return false }
        pthread_detach(thread)
        return true
    }

    private static func spawn(_ body: @escaping @Sendable () -> Void) -> pthread_t? {
        let context = Unmanaged.passRetained(Job(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { raw in
                let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
                job.body()
                return nil
            }, context)
        guard result == 0 else {
            Unmanaged<Job>.fromOpaque(context).release()
            return nil
        }
        return thread
    }
}
