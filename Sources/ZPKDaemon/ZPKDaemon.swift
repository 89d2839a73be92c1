// ZPKDaemon — the library behind `zpkd`: the control-socket protocol shared with the `zpk`
// client, the server, and the request handlers over a `ZFSPool.PoolHost`. docs/daemon.md.
//
// Purpose. One process per host owns the pools (as the kernel does for `zpool`): it opens the
// pools of its cache file at start, keeps them open, syncs them every few seconds, and serves
// `zpk` over a Unix socket. Discovery (the import scan) runs in the `zpk` process; only the
// chosen config travels to the daemon, which opens it at face value (design/pool-host.md §7).
//
// Not guaranteed. Requests are not journalled: a request whose reply was not received may or may
// not have happened (object puts are idempotent; retry them). Changes are durable after a sync
// (every `--sync-interval`, `zpk sync`, or shutdown), not when a put returns.
//
// Mechanism. `Daemon.run` binds the socket first (a live daemon there → refuse, before touching
// any pool), starts the multihost heartbeat runner (PoolHost.multihostService), reads the cache
// file and registers its pools as opening, then runs a ServiceGroup — the ControlServer and the
// txg SyncService, with SIGTERM/SIGINT as graceful shutdown — while the cache file's pools open
// beside it (each may wait for its multihost activity check; meanwhile `zpk list` shows it as
// opening with the time left, and a verb that names it gets `poolOpening` at once). After the
// group ends it interrupts the opens still waiting, syncs every pool, leaves them imported
// (state ACTIVE, so they reopen from the cache file next start) and the server has removed its
// socket; then the heartbeat runner stops.
//
// Failure cases. A pool that fails to open at start is logged and skipped; the daemon still
// serves the others. A client that sends garbage gets an error reply and loses its connection;
// the daemon goes on. Killed with SIGKILL: the pools lose their open txg (design §6 crash table),
// the socket file stays and is replaced as stale by the next start.

import Logging
import Prometheus
import ServiceLifecycle
import UnixSignals
import ZFSMultihost
import ZFSPool
import ZPKControl

#if canImport(Glibc)
import Glibc
#endif

/// Runs a host daemon: the cache file's pools, the control socket and the txg sync.
public struct Daemon: Sendable {
    /// zpkd's command-line settings.
    public struct Options: Sendable {
        /// This host's hostid (labels' `hostid`).
        public var hostID: UInt64
        /// This host's name (labels' `hostname`).
        public var hostname: String
        /// The cache file that lists the pools to open at start and is kept in step.
        public var cacheFilePath: String
        /// The control socket's path.
        public var socketPath: String
        /// How often open pools are synced.
        public var syncInterval: Duration
        /// The multihost module parameters at start (`--zfs-multihost-interval`,
        /// `--zfs-multihost-fail-intervals`, `--zfs-multihost-import-intervals`), stored raw and
        /// clamped where used, as OpenZFS does; `zpk tunable set` changes them at run time.
        public var multihostTunables: MultihostTunables
        /// `--metrics ADDR:PORT`: serve the registry (into which zpkd bootstrapped swift-metrics)
        /// at GET /metrics; `nil` = no endpoint.
        public var metrics: (address: MetricsEndpoint.Address, registry: PrometheusCollectorRegistry)?

        public init(
            hostID: UInt64, hostname: String, cacheFilePath: String, socketPath: String, syncInterval: Duration,
            multihostTunables: MultihostTunables = MultihostTunables()
        ) {
            self.hostID = hostID
            self.hostname = hostname
            self.cacheFilePath = cacheFilePath
            self.socketPath = socketPath
            self.syncInterval = syncInterval
            self.multihostTunables = multihostTunables
        }
    }

    /// The defaults of `zpkd`'s options.
    public enum Defaults {
        public static let cacheFilePath = "/etc/zpk/zpool.cache"
        public static let socketPath = "/run/zpk.sock"
        public static let syncInterval = Duration.seconds(5)
    }

    public var options: Options
    public var logger: Logger

    public init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    /// Binds the socket, opens the cache file's pools, serves until SIGTERM/SIGINT, then syncs
    /// every pool and returns.
    ///
    /// - Parameter onReady: called with the socket path once requests are being served.
    /// - Throws: `ControlError` `.daemonAlreadyRunning`, `.socketSetupFailed` before any pool
    ///   is touched; errors of the `ServiceGroup`.
    public func run(onReady: @escaping @Sendable (String) -> Void = { _ in }) async throws {
        let identity = DaemonIdentity(hostID: options.hostID, hostname: options.hostname)
        let tunables = MultihostTunablesStore(options.multihostTunables)
        let host = PoolHost(environment: hostEnvironment(tunables: tunables))
        let server = try ControlServer(
            configuration: .init(
                socketPath: options.socketPath,
                handlers: ControlRequestMetrics.instrument(PoolHandlers.table(host: host, identity: identity)),
                onReady: onReady, logger: logger))
        // The heartbeats run from before the first pool opens: opening the cache file's pools
        // takes an activity check each (concurrent, up to 2 × fail_intervals × interval plus
        // 25 % apiece), and a pool already open must not go silent meanwhile — another host
        // would see it free. The runner outlives the ServiceGroup so that the final sync is
        // heartbeat-covered.
        try await withThrowingTaskGroup(of: Void.self) { heartbeats in
            let multihost = host.multihostService
            heartbeats.addTask { try await multihost.run() }
            defer { heartbeats.cancelAll() }
            // Read and register the cache file's pools as opening, then serve at once: the
            // opens run beside the server, and `zpk list` shows those pools with their countdown.
            let opening = await host.prepareCacheFileOpen()
            let group = ServiceGroup(
                configuration: .init(
                    services: services(host: host, server: server), gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger))
            var failure: (any Error)?
            await withTaskGroup(of: Void.self) { background in
                background.addTask { await self.openCachedPools(host, opening) }
                do { try await group.run() } catch { failure = error }
                // Shutdown: interrupt the activity checks still waiting, and let an open that is
                // past them finish, so that the final sync covers it.
                background.cancelAll()
                await background.waitForAll()
            }
            await syncAll(host)
            if let failure { throw failure }
        }
        logger.info("zpkd stopped; pools stay imported and reopen from the cache file")
    }
}
