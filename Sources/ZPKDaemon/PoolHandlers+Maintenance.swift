// Handlers that need the host's maintenance API (add, destroy, properties, the vdev tree).

import ZFSFormat
import ZFSPool

extension PoolHandlers {
    static func openForImport(_ host: PoolHost, config: NVList, mode: OpenMode, newName: String?) async throws -> Pool {
        if newName != nil {
            throw ControlError(.badRequest, "importing under a new name is not supported by this zpkd yet")
        }
        return try await host.open(config: config, mode: mode)
    }

    static func maintenanceHandlers(host: PoolHost) -> [String: ControlHandler] {
        [:]
    }

    static func statusEntry(_ pool: Pool) -> ControlJSON {
        let status = pool.status()
        var tops: [UInt64: [PoolStatus.Leaf]] = [:]
        for leaf in status.leaves { tops[leaf.topLevelID, default: []].append(leaf) }
        func leafJSON(_ leaf: PoolStatus.Leaf) -> ControlJSON {
            [
                "type": "file", "guid": .unsigned(leaf.guid.rawValue), "path": .string(leaf.path),
                "health": leaf.isPresent ? "ONLINE" : "UNAVAIL",
                "read_errors": .unsigned(UInt64(leaf.counters.readErrors)),
                "write_errors": .unsigned(UInt64(leaf.counters.writeErrors)),
                "checksum_errors": .unsigned(UInt64(leaf.counters.checksumErrors)), "children": [],
            ]
        }
        let children: [ControlJSON] = tops.keys.sorted().map { id in
            let leaves = tops[id]!
            if leaves.count == 1 { return leafJSON(leaves[0]) }
            return [
                "type": "mirror", "guid": 0, "path": .null,
                "health": leaves.allSatisfy(\.isPresent) ? "ONLINE" : "DEGRADED",
                "read_errors": 0, "write_errors": 0, "checksum_errors": 0, "children": .array(leaves.map(leafJSON)),
            ]
        }
        return [
            "name": .string(status.name), "guid": .unsigned(status.guid.rawValue), "state": "ACTIVE",
            "health": .string(status.health), "txg": .unsigned(status.lastSyncedTXG.rawValue),
            "vdev_tree": [
                "type": "root", "guid": .unsigned(status.guid.rawValue), "path": .null, "health": .string(status.health),
                "read_errors": 0, "write_errors": 0, "checksum_errors": 0, "children": .array(children),
            ],
            "objects": .unsigned(UInt64(status.objectCount)), "allocated_bytes": .unsigned(status.allocatedByteCount),
            "free_bytes": .unsigned(status.freeByteCount), "repairs": .unsigned(UInt64(status.repairs)),
        ]
    }
}
