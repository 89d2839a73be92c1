// The request handlers of zpkd: one entry per operation of the control protocol, each a thin
// translation between JSON arguments and the async PoolHost / Pool API (docs/daemon.md §3).
// The multihost verbs (tunable, clear, inject, history) are in PoolHandlers+Multihost.swift.

import ZFSFormat
import ZFSPool
import ZPKControl

#if canImport(Glibc)
import Glibc
#endif

/// Who the daemon is, as `ping` reports it.
public struct DaemonIdentity: Sendable {
    /// The ZPoolKit version of the daemon.
    public static let version = "0.1.0"
    public var hostID: UInt64
    public var hostname: String
    public var processID: Int32

    public init(hostID: UInt64, hostname: String, processID: Int32 = getpid()) {
        self.hostID = hostID
        self.hostname = hostname
        self.processID = processID
    }
}

/// The handlers zpkd serves, by operation name.
public enum PoolHandlers {
    /// Every operation of docs/daemon.md §3 over `host`.
    public static func table(host: PoolHost, identity: DaemonIdentity) -> [String: ControlHandler] {
        let handlers: [String: ControlHandler] = [
            "ping": { _, _ in
                ControlReply([
                    "version": .string(DaemonIdentity.version), "hostid": .unsigned(identity.hostID),
                    "hostname": .string(identity.hostname), "pid": .unsigned(UInt64(identity.processID)),
                ])
            },
            "create": { request, _ in
                let name = try request.string("pool")
                let layout = try vdevSpecs(request)
                var properties: [String: String] = [:]
                if let given = request.arguments["properties"] {
                    guard let members = given.objectValue else {
                        throw ControlError(.badRequest, "request 'create': \"properties\" must be an object of strings")
                    }
                    for (key, value) in members {
                        guard let text = value.stringValue else {
                            throw ControlError(.badRequest, "request 'create': property '\(key)' must be a string")
                        }
                        properties[key] = text
                    }
                }
                let pool = try await host.create(name: name, layout: layout, properties: properties)
                return ControlReply(["pool": .string(pool.name), "guid": .unsigned(pool.guid.rawValue)])
            },
            "import": { request, context in
                guard !request.payload.isEmpty else {
                    throw ControlError(.badRequest, "request 'import' needs the pool's config as a packed nvlist payload")
                }
                let config: NVList
                do { config = try NVList(decoding: request.payload) } catch {
                    throw ControlError(.badRequest, "request 'import': the config payload is not a packed nvlist: \(error)")
                }
                let mode = OpenMode.import(force: try request.flag("force"), rewind: try request.flag("rewind"))
                let newName = try request.optionalString("new_name")
                let label = newName ?? config.string("name") ?? "?"
                let pool = try await forwardingProgress(to: context, pool: label) { progress in
                    try await host.open(config: config, mode: mode, newName: newName, progress: progress)
                }
                return ControlReply(openResult(pool))
            },
            "export": { request, _ in
                let name = try request.string("pool")
                try await host.export(name)
                return ControlReply(["pool": .string(name)])
            },
            "sync": { request, _ in
                let pools: [Pool]
                if let name = try request.optionalString("pool") {
                    pools = [try host.pool(named: name)]
                } else {
                    pools = host.openPools
                }
                var synced: [JSON] = []
                for pool in pools {
                    let txg = try await pool.sync()
                    synced.append(["pool": .string(pool.name), "txg": .unsigned(txg.rawValue)])
                }
                return ControlReply(["pools": .array(synced)])
            },
            "list": { _, _ in
                let open = host.openPools.map { (name: $0.name, entry: listEntry($0)) }
                let opening = host.openingPools.filter { still in !open.contains { $0.name == still.name } }
                    .map { (name: $0.name, entry: openingEntry($0)) }
                return ControlReply(["pools": .array((open + opening).sorted { $0.name < $1.name }.map(\.entry))])
            },
            "status": { request, _ in
                if let name = try request.optionalString("pool"), let still = host.openingPool(named: name),
                    (try? host.pool(named: name)) == nil
                {
                    return ControlReply(["pools": .array([openingEntry(still)])])
                }
                let pools = try selectedPools(host, request)
                let opening = request.arguments["pool"] == nil
                    ? host.openingPools.filter { still in !pools.contains { $0.name == still.name } } : []
                let entries = pools.map { (name: $0.name, entry: statusEntry($0)) }
                    + opening.map { (name: $0.name, entry: openingEntry($0)) }
                return ControlReply(["pools": .array(entries.sorted { $0.name < $1.name }.map(\.entry))])
            },
            "object.put": { request, _ in
                let pool = try host.pool(named: try request.string("pool"))
                let key = try request.string("key")
                try await pool.put(key, request.payload)
                return ControlReply(["pool": .string(pool.name), "key": .string(key), "size": .unsigned(UInt64(request.payload.count))])
            },
            "object.get": { request, _ in
                let pool = try host.pool(named: try request.string("pool"))
                let key = try request.string("key")
                let bytes = try await pool.get(key)
                return ControlReply(["pool": .string(pool.name), "key": .string(key), "size": .unsigned(UInt64(bytes.count))], payload: bytes)
            },
            "object.ls": { request, _ in
                let pool = try host.pool(named: try request.string("pool"))
                let objects: [JSON] = pool.list().map {
                    ["key": .string($0.name), "size": .unsigned($0.byteCount), "birth_txg": .unsigned($0.birthTXG.rawValue)]
                }
                return ControlReply(["pool": .string(pool.name), "objects": .array(objects)])
            },
            "object.rm": { request, _ in
                let pool = try host.pool(named: try request.string("pool"))
                let key = try request.string("key")
                try await pool.remove(key)
                return ControlReply(["pool": .string(pool.name), "key": .string(key)])
            },
        ]
        return handlers.merging(maintenanceHandlers(host: host), uniquingKeysWith: { first, _ in first })
            .merging(multihostHandlers(host: host), uniquingKeysWith: { first, _ in first })
    }

    /// The pools a request names with its optional `pool` argument (all open pools when absent).
    static func selectedPools(_ host: PoolHost, _ request: ControlRequest) throws -> [Pool] {
        if let name = try request.optionalString("pool") { return [try host.pool(named: name)] }
        return host.openPools
    }

    /// `vdevs`: `[{"type":"leaf","path":P} | {"type":"mirror","paths":[P,…]}]`.
    static func vdevSpecs(_ request: ControlRequest) throws(ControlError) -> [VdevSpec] {
        guard let items = request.arguments["vdevs"]?.arrayValue else {
            throw ControlError(.badRequest, "request '\(request.operation)' needs \"vdevs\", an array of vdev objects")
        }
        var specs: [VdevSpec] = []
        for item in items {
            switch item["type"]?.stringValue {
            case "leaf":
                guard let path = item["path"]?.stringValue else {
                    throw ControlError(.badRequest, "request '\(request.operation)': a leaf vdev needs a \"path\" string")
                }
                specs.append(.leaf(path))
            case "mirror":
                guard let paths = item["paths"]?.arrayValue?.compactMap(\.stringValue), paths.count == item["paths"]?.arrayValue?.count
                else {
                    throw ControlError(.badRequest, "request '\(request.operation)': a mirror vdev needs \"paths\", an array of strings")
                }
                specs.append(.mirror(paths))
            default:
                throw ControlError(.badRequest, "request '\(request.operation)': a vdev's \"type\" is \"leaf\" or \"mirror\"")
            }
        }
        return specs
    }

    static func openResult(_ pool: Pool) -> [String: JSON] {
        let report = pool.openReport
        return [
            "pool": .string(pool.name), "guid": .unsigned(pool.guid.rawValue),
            "txg": .unsigned(report.openedTXG.rawValue),
            "rewound_from": report.rewoundFrom.map { .unsigned($0.rawValue) } ?? .null,
            "missing_leaves": .array(report.missingLeaves.map { .string($0) }),
            "config_was_stale": .bool(report.configWasStale),
        ]
    }

    /// A cache-file pool still opening, in `list` and `status`: `state` "opening", the phase,
    /// and the phase's countdown (`remaining_ms`, `total_ms`; null before the wait starts).
    static func openingEntry(_ pool: OpeningPool) -> JSON {
        func ms(_ d: Duration?) -> JSON {
            guard let d else { return .null }
            let c = d.components
            return .unsigned(UInt64(max(0, c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000)))
        }
        return [
            "name": .string(pool.name), "guid": pool.guid.map { .unsigned($0.rawValue) } ?? .null,
            "state": .string("opening"), "health": .string("OPENING"), "phase": .string(pool.phase.rawValue),
            "remaining_ms": ms(pool.remaining), "total_ms": ms(pool.total), "message": .string(pool.message),
        ]
    }

    static func listEntry(_ pool: Pool) -> JSON {
        let status = pool.status()
        return [
            "state": .string("open"),
            "name": .string(status.name), "guid": .unsigned(status.guid.rawValue),
            "size": .unsigned(status.allocatedByteCount &+ status.freeByteCount),
            "alloc": .unsigned(status.allocatedByteCount), "free": .unsigned(status.freeByteCount),
            "health": .string(status.health),
        ]
    }
}
