// Handlers over the host's maintenance API: add, destroy, properties, the status tree.

import ZFSFormat
import ZFSPool
import ZPKControl

extension PoolHandlers {
    /// The properties `get all` lists, in this order (then user properties, sorted).
    static let listedProperties = ["name", "guid", "health", "size", "allocated", "free", "txg", "multihost", "comment"]
    static let readOnlyProperties: Set<String> = ["name", "guid", "health", "size", "allocated", "free", "txg"]

    static func maintenanceHandlers(host: PoolHost) -> [String: ControlHandler] {
        [
            "destroy": { request, _ in
                let name = try request.string("pool")
                try await host.destroy(name)
                return ControlReply(["pool": .string(name)])
            },
            "add": { request, _ in
                let name = try request.string("pool")
                try await host.add(name, layout: try vdevSpecs(request))
                return ControlReply(["pool": .string(name)])
            },
            "get": { request, _ in
                let property = try request.string("property")
                var rows: [JSON] = []
                for pool in try selectedPools(host, request) {
                    let names = property == "all"
                        ? listedProperties + pool.properties.keys.filter { $0.contains(":") }.sorted() : [property]
                    for name in names {
                        let value = try pool.property(name)
                        let source: String
                        if readOnlyProperties.contains(name) {
                            source = "-"
                        } else if name == "multihost", value == "off" {
                            source = "default"  // create stores the default explicitly
                        } else if pool.properties[name] != nil {
                            source = "local"
                        } else {
                            source = name.contains(":") ? "-" : "default"
                        }
                        rows.append([
                            "pool": .string(pool.name), "property": .string(name), "value": .string(value),
                            "source": .string(source),
                        ])
                    }
                }
                return ControlReply(["properties": .array(rows)])
            },
            "set": { request, _ in
                let pool = try host.pool(named: try request.string("pool"))
                let name = try request.string("property")
                let value = try request.string("value")
                try await pool.setProperty(name, value)
                return ControlReply(["pool": .string(pool.name), "property": .string(name), "value": .string(value)])
            },
        ]
    }

    static func statusEntry(_ pool: Pool) -> JSON {
        let status = pool.status()
        return [
            "name": .string(status.name), "guid": .unsigned(status.guid.rawValue), "state": .string(status.state),
            "health": .string(status.health), "txg": .unsigned(status.lastSyncedTXG.rawValue),
            "vdev_tree": vdevJSON(status.vdevTree),
            "objects": .unsigned(UInt64(status.objectCount)), "allocated_bytes": .unsigned(status.allocatedByteCount),
            "free_bytes": .unsigned(status.freeByteCount), "repairs": .unsigned(UInt64(status.repairs)),
            "missing_leaves": .array(pool.openReport.missingLeaves.map { .string($0) }),
            "suspension": status.suspension.map { .string($0) } ?? .null,
            "multihost": status.multihost.map(multihostJSON) ?? .null,
        ]
    }

    static func vdevJSON(_ vdev: PoolStatus.VdevStatus) -> JSON {
        [
            "type": .string(vdev.type), "guid": .unsigned(vdev.guid), "path": vdev.path.map { .string($0) } ?? .null,
            "health": .string(vdev.health), "read_errors": .unsigned(vdev.readErrors),
            "write_errors": .unsigned(vdev.writeErrors), "checksum_errors": .unsigned(vdev.checksumErrors),
            "repairs": .unsigned(vdev.repairs), "children": .array(vdev.children.map(vdevJSON)),
        ]
    }
}
