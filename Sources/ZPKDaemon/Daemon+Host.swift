// The host side of `Daemon`: the PoolHost's environment, the pools of the cache file, the
// services of the group and the final sync.

import Logging
import ServiceLifecycle
import ZFSMultihost
import ZFSPool

extension Daemon {
    func hostEnvironment(tunables: MultihostTunablesStore) -> PoolHost.Environment {
        PoolHost.Environment(
            hostID: options.hostID, hostname: options.hostname, multihostTunables: tunables, logger: logger,
            cacheFilePath: options.cacheFilePath)
    }

    /// Opens the pools `opening` registered (concurrently; they show as opening until then); a
    /// pool that fails is logged and skipped.
    func openCachedPools(_ host: PoolHost, _ opening: PoolHost.CacheFileOpening) async {
        for outcome in await host.open(opening) {
            var metadata: Logger.Metadata = ["pool.name": "\(outcome.name)"]
            if let guid = outcome.guid { metadata["pool.guid"] = "\(guid)" }
            switch outcome.result {
            case .success(let pool):
                metadata["pool.txg"] = "\(pool.openReport.openedTXG)"
                if !pool.openReport.missingLeaves.isEmpty {
                    metadata["pool.missing"] = "\(pool.openReport.missingLeaves.joined(separator: ", "))"
                }
                logger.info("pool opened from cache file", metadata: metadata)
            case .failure(let error):
                metadata["error.code"] = "\(error.code)"
                metadata["error.message"] = "\(error.message)"
                logger.error("pool in cache file not opened; zpkd goes on without it", metadata: metadata)
            }
        }
    }

    func services(host: PoolHost, server: ControlServer) -> [any Service] {
        // host.multihostService runs outside the group, from before the cache file's pools open (Daemon.run).
        var services: [any Service] = [server, SyncService(host: host, interval: options.syncInterval)]
        if let metrics = options.metrics {
            services.append(MetricsEndpoint(address: metrics.address, registry: metrics.registry, host: host, logger: logger))
        }
        return services
    }

    /// Syncs every open pool (shutdown); the pools stay imported.
    func syncAll(_ host: PoolHost) async {
        for (pool, result) in await host.syncAll() {
            switch result {
            case .success(let txg):
                logger.info("pool synced at shutdown", metadata: ["pool.name": "\(pool)", "pool.txg": "\(txg)"])
            case .failure(let error):
                logger.error(
                    "pool sync at shutdown failed", metadata: ["pool.name": "\(pool)", "error.message": "\(error.message)"])
            }
        }
    }
}
