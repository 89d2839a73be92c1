// zpkd --metrics ADDR:PORT: Prometheus text at GET /metrics (docs/daemon.md §7).
//
// Two kinds of series. Events are recorded where they happen, through swift-metrics
// (CoreMetrics), into the Prometheus registry zpkd bootstraps: txg sync latency (ZFSPool),
// activity checks and their durations, pool open/import durations (ZFSPool), control-socket
// requests by op and result (``Daemon``'s handler table). State is read at scrape time from
// the open pools (``PoolMetrics``): txg, suspended flag, mmp_delay, heartbeat writes /
// failures / skips, the last heartbeat's age for the pool and for each leaf. A pool that goes
// away (export, destroy) loses its gauges; its counters stay, as Prometheus expects of
// counters.
//
// The HTTP side is FlyingFox (a small HTTP/1.1 server on its own socket pool, no SwiftNIO):
// one route, GET /metrics; anything else is 404. It listens on the address given — bind it to
// loopback or a management network; there is no authentication.

import ZPKControl
import CoreMetrics
import FlyingFox
import FlyingSocks
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization
import ZFSFormat
import ZFSMultihost
import ZFSPool

/// Serves the registry's metrics over HTTP while the daemon runs.
public struct MetricsEndpoint: Service {
    /// Where to listen: an IPv4 or IPv6 literal and a port (0 = any free port).
    public struct Address: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: UInt16

        /// Parses `ADDR:PORT` (`127.0.0.1:9464`, `[::1]:9464`, `:9464` = every IPv4 address).
        public init?(parsing text: String) {
            guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
                return nil
            }
            var host = String(text[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            if host.isEmpty { host = "0.0.0.0" }
            self.host = host
            self.port = port
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    let address: Address
    let registry: PrometheusCollectorRegistry
    let poolMetrics: PoolMetrics
    let logger: Logger

    public init(address: Address, registry: PrometheusCollectorRegistry, host: PoolHost, logger: Logger) {
        self.address = address
        self.registry = registry
        self.poolMetrics = PoolMetrics(registry: registry, host: host)
        self.logger = logger
    }

    public func run() async throws {
        let server: HTTPServer
        if address.host.contains(":") {
            server = HTTPServer(address: try sockaddr_in6.inet6(ip6: address.host, port: address.port), logger: .disabled)
        } else {
            server = HTTPServer(address: try sockaddr_in.inet(ip4: address.host, port: address.port), logger: .disabled)
        }
        let registry = self.registry
        let poolMetrics = self.poolMetrics
        await server.appendRoute("GET /metrics") { _ in
            poolMetrics.collect()
            return HTTPResponse(
                statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: Data(registry.emitToBuffer()))
        }
        // Graceful shutdown cancels the server; whatever it throws then (CancellationError, or
        // FlyingFox's SocketError.disconnected from the closed listening socket) is the normal
        // end, not a failure that would make zpkd exit 1.
        do {
            try await serve(server)
        } catch is CancellationError {
            return
        } catch where Task.isCancelled || Task.isShuttingDownGracefully {
            logger.debug("metrics endpoint closed at shutdown", metadata: ["error": "\(error)"])
            return
        }
    }

    private func serve(_ server: HTTPServer) async throws {
        try await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await server.run() }
                try await server.waitUntilListening(timeout: 30)
                let listening: String
                switch await server.listeningAddress {
                case .some(.ip4(let ip, port: let port)): listening = "\(ip):\(port)"
                case .some(.ip6(let ip, port: let port)): listening = "[\(ip)]:\(port)"
                default: listening = address.description
                }
                logger.notice(
                    "zpkd metrics on http://\(listening)/metrics", metadata: ["metrics.address": "\(listening)"])
                try await group.next()
            }
        }
    }
}

/// The scrape-time series of every open pool.
/// The per-pool series live in a `Mutex`.
final class PoolMetrics: Sendable {
    private struct Series: @unchecked Sendable {  // the registry's metric objects are thread-safe classes
        var gauges: [String: Prometheus.Gauge]
        var leafGauges: [String: Prometheus.Gauge]
        var counted: [String: (counter: Prometheus.Counter, last: UInt64)]
    }

    private let registry: PrometheusCollectorRegistry
    private let host: PoolHost
    private let series = Mutex<[String: Series]>([:])

    init(registry: PrometheusCollectorRegistry, host: PoolHost) {
        self.registry = registry
        self.host = host
    }

    /// A full metric name (the descriptor joins its non-empty parts) with its HELP text.
    static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// Reads every open pool's state into its series; drops the gauges of pools gone.
    func collect() {
        let pools = host.openPools
        let now = UInt64(Date().timeIntervalSince1970)
        series.withLock { all in
            var seen = Set<String>()
            for pool in pools {
                let name = pool.name
                seen.insert(name)
                let status = pool.status()
                let labels = [("pool", name)]
                var entry = all[name] ?? Series(gauges: [:], leafGauges: [:], counted: [:])
                var setNow = Set<String>()
                func gauge(_ metric: String, _ value: Double, _ help: String) {
                    let g = entry.gauges[metric] ?? registry.makeGauge(descriptor: Self.descriptor(metric, help), labels: labels)
                    g.set(value)
                    entry.gauges[metric] = g
                    setNow.insert(metric)
                }
                gauge("zpk_pool_txg", Double(status.lastSyncedTXG.rawValue), "The pool's last synced txg.")
                gauge("zpk_pool_suspended", status.suspension == nil ? 0 : 1, "1 while multihost has suspended the pool.")
                if let multihost = status.multihost {
                    gauge("zpk_pool_mmp_delay_seconds", multihost.mmpDelay.secondsValue, "mmp_delay: the decaying average time between heartbeats landing.")
                    gauge(
                        "zpk_pool_last_heartbeat_age_seconds", multihost.lastHeartbeatAge.secondsValue,
                        "Time since the pool's last completed heartbeat or txg sync.")
                    func count(_ metric: String, _ value: UInt64, _ help: String) {
                        var counted = entry.counted[metric] ?? (registry.makeCounter(descriptor: Self.descriptor(metric, help), labels: labels), 0)
                        // A pool reopened starts its counts again: count the new ones.
                        let delta = value >= counted.last ? value - counted.last : value
                        if delta > 0 { counted.counter.increment(by: Int64(clamping: delta)) }
                        counted.last = value
                        entry.counted[metric] = counted
                    }
                    count("zpk_pool_heartbeat_writes_total", multihost.heartbeatsWritten, "Heartbeats that landed.")
                    count("zpk_pool_heartbeat_failures_total", multihost.heartbeatsFailed, "Heartbeat writes that failed.")
                    count("zpk_pool_heartbeat_skips_total", multihost.skipped, "Heartbeats skipped: no leaf could take one.")
                }
                for (metric, g) in entry.gauges where !setNow.contains(metric) {
                    registry.unregisterGauge(g)
                    entry.gauges[metric] = nil
                }
                // Per leaf: the newest landed heartbeat in the history (ub_timestamp seconds).
                var newest: [String: UInt64] = [:]
                for record in pool.multihostHistory where !record.isSkip && record.error == 0 {
                    let leaf = record.vdevPath ?? "\(record.vdevGUID)"
                    newest[leaf] = max(newest[leaf] ?? 0, record.timestamp)
                }
                for (leaf, gauge) in entry.leafGauges where newest[leaf] == nil {
                    registry.unregisterGauge(gauge)
                    entry.leafGauges[leaf] = nil
                }
                for (leaf, stamp) in newest {
                    let g =
                        entry.leafGauges[leaf]
                        ?? registry.makeGauge(
                            descriptor: Self.descriptor(
                                "zpk_leaf_last_heartbeat_age_seconds",
                                "Age of the newest heartbeat that landed on the leaf (whole-second ub_timestamp)."),
                            labels: [("pool", name), ("leaf", leaf)])
                    g.set(Double(now >= stamp ? now - stamp : 0))
                    entry.leafGauges[leaf] = g
                }
                all[name] = entry
            }
            for (name, entry) in all where !seen.contains(name) {
                for gauge in entry.gauges.values { registry.unregisterGauge(gauge) }
                for gauge in entry.leafGauges.values { registry.unregisterGauge(gauge) }
                all[name] = Series(gauges: [:], leafGauges: [:], counted: entry.counted)
            }
        }
    }
}

extension Duration {
    fileprivate var secondsValue: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// Counts each control request by op and result (`ok` or the error code) into
/// `zpk_control_requests_total`.
enum ControlRequestMetrics {
    static func instrument(_ table: [String: ControlHandler]) -> [String: ControlHandler] {
        table.reduce(into: [:]) { result, entry in
            let (op, handler) = entry
            result[op] = { request, context in
                do {
                    let reply = try await handler(request, context)
                    CoreMetrics.Counter(label: "zpk_control_requests_total", dimensions: [("op", op), ("result", "ok")]).increment()
                    return reply
                } catch {
                    let code = (error as? ControlError).map { "\($0.code)" } ?? (error as? PoolError).map { "\($0.code)" } ?? "internal"
                    CoreMetrics.Counter(label: "zpk_control_requests_total", dimensions: [("op", op), ("result", code)]).increment()
                    throw error
                }
            }
        }
    }
}
