// The periodic txg sync of a host (`zfs_txg_timeout`, 5 s by default) as a ServiceLifecycle
// service: `zpkd` puts it in its ServiceGroup. A final sync on shutdown is not its job — the
// daemon calls `PoolHost.syncAll()` on SIGTERM — so graceful shutdown just ends the loop.

import Logging
import ServiceLifecycle
import ZFSImport

/// Syncs every open pool of a ``PoolHost`` every ``interval``.
///
/// A pool whose sync fails is logged (a warning the first time, when the sync itself failed;
/// later attempts on the failed pool report `.poolClosed` at debug level, as do attempts on a
/// suspended pool, whose suspension was logged once by its heartbeat) and the other pools
/// go on. ``run()`` returns when its task is cancelled or on graceful shutdown; an in-flight
/// sync is finished first.
///
/// ```swift
/// let group = ServiceGroup(services: [SyncService(host: host)], logger: logger)
/// try await group.run()
/// ```
/// The corresponding OpenZFS thread is `txg_sync_thread` (timeout `zfs_txg_timeout`).
public struct SyncService: Service {
    /// The default interval: `zfs_txg_timeout` = 5 s.
    public static let defaultInterval: Duration = .seconds(5)

    /// The host whose pools are synced.
    public let host: PoolHost
    /// Time between the end of one round of syncs and the start of the next.
    public let interval: Duration
    let clock: any Clock<Duration>

    /// - Parameters:
    ///   - host: the host whose open pools are synced (the set is read at every round).
    ///   - interval: the time between rounds; a value ≤ 0 means ``defaultInterval``.
    ///   - clock: the monotonic clock to sleep on (tests inject a manual clock).
    public init(host: PoolHost, interval: Duration = .seconds(5), clock: any Clock<Duration> = ContinuousClock()) {
        self.host = host
        self.interval = interval > .zero ? interval : Self.defaultInterval
        self.clock = clock
    }

    /// Sleeps `interval`, syncs every open pool, and repeats, until cancelled or shut down.
    public func run() async throws {
        let logger = host.environment.logger
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await clock.sleep(for: interval)
                } catch {
                    return  // cancelled (graceful shutdown or task cancellation)
                }
                await syncRound(logger: logger)
            }
        }
    }

    /// One round: every open pool, failures logged.
    func syncRound(logger: Logger) async {
        for (pool, result) in await host.syncAll() {
            guard case .failure(let error) = result else { continue }
            if error.code == .poolClosed || error.code == .poolSuspended {
                logger.debug("pool not synced", metadata: ["pool.name": "\(pool)", "error.message": "\(error.message)"])
            } else {
                logger.warning("pool sync failed", metadata: ["pool.name": "\(pool)", "error.message": "\(error.message)"])
            }
        }
    }
}
