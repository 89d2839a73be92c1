// The parts of `Daemon` that depend on the host's cache-file and sync API.

import Logging
import ServiceLifecycle
import ZFSPool

extension Daemon {
    func hostEnvironment() -> PoolHost.Environment {
        PoolHost.Environment(hostID: options.hostID, hostname: options.hostname, logger: logger)
    }

    func openCachedPools(_ host: PoolHost) async {
    }

    func services(host: PoolHost, server: ControlServer) -> [any Service] {
        [server]
    }

    func syncAll(_ host: PoolHost) async {
        for pool in host.openPools {
            do {
                let txg = try await pool.sync()
                logger.info("pool synced at shutdown", metadata: ["pool.name": "\(pool.name)", "pool.txg": "\(txg)"])
            } catch {
                logger.error("pool sync at shutdown failed", metadata: ["pool.name": "\(pool.name)", "error": "\(error)"])
            }
        }
    }
}
