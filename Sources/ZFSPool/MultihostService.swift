// The host's multihost runner: one `HeartbeatService` per open pool, as OpenZFS runs one
// `mmp_thread` per imported pool. A pool's service writes heartbeats only while the pool's
// `multihost` property is on (switching it starts or stops them at once, without restarting
// the service, so the pool's history survives the switch); a pool closed by export, destroy or
// forget stops its service.

import Logging
import ServiceLifecycle
import Synchronization
import ZFSMultihost

extension PoolHost {
    /// The service `zpkd` adds to its `ServiceGroup`: runs the heartbeat of every open pool
    /// (pools opened later included) and stops each one when its pool closes. On graceful
    /// shutdown it stops every heartbeat, lets the writes in flight land, and returns.
    ///
    /// Each call returns a new runner; run only one per host (a pool's heartbeat runs once: a
    /// second runner leaves it alone).
    ///
    /// ```swift
    /// let group = ServiceGroup(services: [host.multihostService, SyncService(host: host)], logger: logger)
    /// ```
    /// The corresponding OpenZFS functions are `mmp_thread_start` / `mmp_thread_stop`.
    public var multihostService: some Service { MultihostRunner(host: self) }

    /// Tells every runner that the set of open pools changed.
    func poolSetChanged() {
        let continuations = poolSetObservers.withLock { Array($0.continuations.values) }
        for continuation in continuations { continuation.yield() }
    }

    func observePoolSet() -> (token: UInt64, changes: AsyncStream<Void>) {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let token = poolSetObservers.withLock { observers -> UInt64 in
            observers.next += 1
            observers.continuations[observers.next] = continuation
            return observers.next
        }
        return (token, stream)
    }

    func stopObservingPoolSet(_ token: UInt64) {
        let continuation = poolSetObservers.withLock { $0.continuations.removeValue(forKey: token) }
        continuation?.finish()
    }
}

/// Runs the heartbeat of every open pool of a host (``PoolHost/multihostService``).
struct MultihostRunner: Service {
    let host: PoolHost

    func run() async throws {
        let (token, changes) = host.observePoolSet()
        let started = Mutex<[Pool]>([])
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                var iterator = changes.makeAsyncIterator()
                repeat {
                    for pool in host.openPools where !started.withLock({ $0.contains { $0 === pool } }) {
                        started.withLock { $0.append(pool) }
                        group.addTask { await pool.runHeartbeat() }
                    }
                    started.withLock { $0.removeAll { pool in !host.openPools.contains { $0 === pool } } }
                } while await iterator.next() != nil && !Task.isCancelled
                // Shutdown: no new heartbeats; the group waits for the writes in flight.
                for pool in started.withLock({ $0 }) { pool.heartbeat.stop() }
            }
        } onGracefulShutdown: {
            host.stopObservingPoolSet(token)
        }
        host.stopObservingPoolSet(token)
    }
}
