// Create → objects → sync → export → reopen, on in-memory leaves; mirror self-healing; rewind;
// the import host check; bad input.

import Foundation
import Synchronization
import Testing
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSTestSupport

@testable import ZFSPool

@Suite struct PoolLifecycleTests {
    static let mirrors: [VdevSpec] = [.mirror(["/dev/a", "/dev/b"]), .mirror(["/dev/c", "/dev/d"])]

    @Test func createSyncExportReopen() async throws {
        let rack = DeviceRack(paths: ["/dev/a", "/dev/b", "/dev/c", "/dev/d"])
        let host = PoolHost(environment: rack.environment())
        let pool = try await host.create(name: "tank", layout: Self.mirrors)
        #expect(pool.status().lastSyncedTXG == TXG(4))
        let objects = randomObjects(count: 20, maximumSize: 200_000, prefix: "obj", seed: 1)
        for (name, bytes) in objects { try await pool.put(name, bytes) }
        try await pool.remove("obj-3")
        var expected = objects
        expected["obj-3"] = nil
        #expect(try await pool.sync() == TXG(5))
        #expect(try await pool.sync() == TXG(5), "an empty sync writes nothing")
        let cached = pool.config
        try await host.export("tank")
        #expect(throws: PoolError.self) { try host.pool(named: "tank") }

        // Every label of every leaf verifies; state EXPORTED; our feature is the only read feature.
        for device in rack.devices.values {
            let labels = DeviceLabels(reading: device)
            #expect(labels.labels.allSatisfy { $0.status == .valid }, "\(device.path)")
            for label in labels.labels {
                #expect(label.config?.uint64("state") == 1)
                #expect(label.config?.list("features_for_read")?.pairs.map(\.name) == ["org.zpoolkit:mos"])
                #expect(label.slots.contains { $0.isUsable && $0.uberblock?.txg == TXG(6) })
            }
        }

        let host2 = PoolHost(environment: rack.environment(hostID: 0x2222_2222, hostname: "host-b"))
        let reopened = try await host2.open(config: cached, mode: .import())
        #expect(reopened.openReport.openedTXG == TXG(6))
        #expect(!reopened.openReport.configWasStale)
        try await expectObjects(reopened, expected)
        await #expect(throws: PoolError.self) { try await reopened.get("obj-3") }
    }

    @Test func mosConfigWinsOverStaleCache() async throws {
        let rack = DeviceRack(paths: ["/dev/a", "/dev/b", "/dev/c", "/dev/d"])
        let host = PoolHost(environment: rack.environment())
        let pool = try await host.create(name: "tank", layout: Self.mirrors)
        let objects = randomObjects(count: 10, maximumSize: 50_000, prefix: "o", seed: 3)
        for (name, bytes) in objects { try await pool.put(name, bytes) }
        try await pool.sync()
        let current = pool.config
        host.forget("tank")
        // A cache file from before top-level 1 existed: only the first mirror.
        var stale = current
        var root = try #require(stale.list("vdev_tree"))
        let first = try #require(root.lists("children")?.first)
        root.set("children", .nvlistArray([first]))
        stale.set("vdev_tree", .nvlist(root))
        stale.set("vdev_children", .uint64(1))
        let reopened = try await PoolHost(environment: rack.environment()).open(config: stale, mode: .cacheFile)
        #expect(reopened.openReport.configWasStale, "the caller must rewrite its cache")
        #expect(reopened.config.list("vdev_tree")?.lists("children")?.count == 2)
        #expect(reopened.status().leaves.allSatisfy { $0.isPresent })
        try await expectObjects(reopened, objects)
    }

    @Test func mirrorReadFallsBackAndRepairs() async throws {
        let rack = DeviceRack(paths: ["/dev/a", "/dev/b"])
        let host = PoolHost(environment: rack.environment())
        let pool = try await host.create(name: "m", layout: [.mirror(["/dev/a", "/dev/b"])])
        let bytes = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try await pool.put("x", bytes)
        try await pool.sync()
        let bp = try #require(pool.core.withLock { $0.objects["x"]?.pointer })
        let offset = VdevIO.dataStart + bp.dva0.byteOffset
        // Corrupt side a, then side b separately: each read succeeds and repairs the other.
        for bad in ["/dev/a", "/dev/b"] {
            rack.devices[bad]!.setBytes([UInt8](repeating: 0xEE, count: 4096), at: offset)
            for _ in 0..<2 { #expect(try await pool.get("x") == bytes) }
            #expect(rack.devices[bad]!.bytes(in: offset..<(offset + 4096)) == Array(bytes[0..<4096]), "repaired \(bad)")
        }
        let status = pool.status()
        #expect(status.repairs == 2)
        #expect(status.leaves.map(\.counters.checksumErrors) == [1, 1])
        // Both sides bad: a typed error, not wrong bytes.
        for side in ["/dev/a", "/dev/b"] { rack.devices[side]!.setBytes([1, 2, 3], at: offset) }
        await #expect { try await pool.get("x") } throws: { ($0 as? PoolError)?.code == .corruptBlock }
    }

    @Test func rewindPastDamagedMOS() async throws {
        let rack = DeviceRack(paths: ["/dev/a", "/dev/b", "/dev/c", "/dev/d"])
        let host = PoolHost(environment: rack.environment())
        let pool = try await host.create(name: "tank", layout: Self.mirrors)
        try await pool.put("old", [1, 2, 3])
        #expect(try await pool.sync() == TXG(5))
        try await pool.put("new", [4, 5, 6])
        #expect(try await pool.sync() == TXG(6))
        let cached = pool.config
        let mos = try #require(pool.core.withLock { $0.mosPointer })
        host.forget("tank")
        for extent in BlockPointers.extents(of: mos) {
            for device in rack.devices.values {
                device.setBytes([UInt8](repeating: 0, count: 512), at: VdevIO.dataStart + extent.offset)
            }
        }
        let host2 = PoolHost(environment: rack.environment())
        await #expect {
            try await host2.open(config: cached, mode: .import())
        } throws: { error in
            let error = error as? PoolError
            return error?.code == .corruptMetadata && error?.message.contains("txg 6") == true
                && error?.message.contains("rewind (-F) would return the pool to txg 5") == true
        }
        let rewound = try await host2.open(config: cached, mode: .import(rewind: true))
        #expect(rewound.openReport.openedTXG == TXG(5))
        #expect(rewound.openReport.rewoundFrom == TXG(6))
        try await expectObjects(rewound, ["old": [1, 2, 3]])
        // The next txg outranks the damaged one, so a reopen does not fall back into it.
        try await rewound.put("after", [7])
        #expect(try await rewound.sync() == TXG(8))
        host2.forget("tank")
        let again = try await PoolHost(environment: rack.environment()).open(config: cached, mode: .cacheFile)
        try await expectObjects(again, ["old": [1, 2, 3], "after": [7]])
    }

    @Test func importOfPoolInUseElsewhereNeedsForce() async throws {
        let rack = DeviceRack(paths: ["/dev/a"])
        let hostA = PoolHost(environment: rack.environment(hostID: 0x1a2b, hostname: "nodeA", clock: 0))
        let pool = try await hostA.create(name: "tank", layout: [.leaf("/dev/a")])
        let cached = pool.config
        hostA.forget("tank")  // crashed, never exported
        let hostB = PoolHost(environment: rack.environment(hostID: 0x3c4d, hostname: "nodeB"))
        await #expect {
            try await hostB.open(config: cached, mode: .import())
        } throws: { error in
            guard let error = error as? PoolError, error.code == .importRequiresForce else { return false }
            let expected = "cannot import 'tank': pool was previously in use from another system.\n"
                + "Last accessed by nodeA (hostid=1a2b) at \(PoolHost.ctimeText(0))"
                + "The pool can be imported, use 'zpool import -f' to import the pool."
            #expect(error.message == expected)
            return true
        }
        await #expect { try await hostB.open(config: cached, mode: .cacheFile) } throws: {
            ($0 as? PoolError)?.code == .hostMismatch
        }
        let forced = try await hostB.open(config: cached, mode: .import(force: true))
        #expect(forced.status().health == "ONLINE")
    }

    @Test func degradedMirrorOpensAndNamesTheMissingLeaf() async throws {
        let rack = DeviceRack(paths: ["/dev/a", "/dev/b"])
        let host = PoolHost(environment: rack.environment())
        let pool = try await host.create(name: "m", layout: [.mirror(["/dev/a", "/dev/b"])])
        try await pool.put("k", [9, 9])
        try await pool.sync()
        var cached = pool.config
        try await host.export("m")
        // The cache names a leaf that is gone.
        let text = "\(cached)"
        #expect(text.contains("/dev/b"))
        var root = try #require(cached.list("vdev_tree"))
        var mirror = try #require(root.lists("children")?.first)
        var children = try #require(mirror.lists("children"))
        children[1].set("path", .string("/dev/gone"))
        mirror.set("children", .nvlistArray(children))
        root.set("children", .nvlistArray([mirror]))
        cached.set("vdev_tree", .nvlist(root))
        let reopened = try await PoolHost(environment: rack.environment()).open(config: cached, mode: .import())
        #expect(reopened.openReport.missingLeaves == ["/dev/gone"])
        #expect(reopened.status().health == "DEGRADED")
        #expect(try await reopened.get("k") == [9, 9])
    }
}

@Suite struct PoolBadInputTests {
    @Test func unknownPool() async throws {
        let host = PoolHost(environment: DeviceRack(paths: []).environment())
        #expect { try host.pool(named: "nope") } throws: { ($0 as? PoolError)?.code == .unknownPool }
        let empty = try SparseFiles(count: 0, size: 0)
        await #expect { try await host.importPool("nope", searchPaths: [empty.directory]) } throws: {
            ($0 as? PoolError)?.code == .unknownPool
        }
    }

    @Test func devicesTooSmallAreRefusedBeforeAnyWrite() async throws {
        let rack = DeviceRack(paths: ["/dev/a"])
        let small = DeviceRack(paths: ["/dev/s"], size: 32 << 20)
        let devices = rack.devices.merging(small.devices) { a, _ in a }
        let env = PoolHost.Environment(
            hostID: 1, hostname: "h", openDevice: { path in devices[path]! })
        let host = PoolHost(environment: env)
        await #expect {
            try await host.create(name: "tank", layout: [.mirror(["/dev/a", "/dev/s"])])
        } throws: { error in
            let error = error as? PoolError
            return error?.code == .deviceTooSmall && error?.devicePath == "/dev/s"
                && error?.message.contains("64 MiB") == true
        }
        #expect(rack.writeCount == 0 && small.writeCount == 0)
    }

    @Test func deviceOfAnotherPoolIsRefusedBeforeAnyWrite() async throws {
        let rack = DeviceRack(paths: ["/dev/a", "/dev/b"])
        let host = PoolHost(environment: rack.environment())
        _ = try await host.create(name: "first", layout: [.leaf("/dev/a")])
        try await host.export("first")
        let before = rack.devices["/dev/b"]!.calls.count
        await #expect {
            try await host.create(name: "second", layout: [.leaf("/dev/b"), .leaf("/dev/a")])
        } throws: { error in
            let error = error as? PoolError
            return error?.code == .deviceInUse && error?.message.contains("exported pool 'first'") == true
        }
        #expect(!rack.devices["/dev/b"]!.calls.dropFirst(before).contains { $0.isWrite })
    }

    @Test func badLayoutsAndNamesAndObjects() async throws {
        let rack = DeviceRack(paths: ["/dev/a", "/dev/b"])
        let host = PoolHost(environment: rack.environment())
        for layout: [VdevSpec] in [[], [.mirror(["/dev/a"])], [.leaf("/dev/a"), .leaf("/dev/a")]] {
            await #expect { try await host.create(name: "t", layout: layout) } throws: {
                ($0 as? PoolError)?.code == .invalidLayout
            }
        }
        for name in ["", "1abc", "mirror1", "a b"] {
            await #expect { try await host.create(name: name, layout: [.leaf("/dev/a")]) } throws: {
                ($0 as? PoolError)?.code == .invalidName
            }
        }
        #expect(rack.writeCount == 0)
        let pool = try await host.create(name: "t", layout: [.leaf("/dev/a")])
        await #expect { try await pool.get("missing") } throws: {
            ($0 as? PoolError)?.code == .objectNotFound && "\($0)".contains("pool 't' has no object named 'missing'")
        }
        await #expect { try await pool.remove("missing") } throws: { ($0 as? PoolError)?.code == .objectNotFound }
        await #expect { try await pool.put("", [1]) } throws: { ($0 as? PoolError)?.code == .invalidObjectName }
        await #expect { try await pool.put("big", [UInt8](repeating: 0, count: (16 << 20) + 1)) } throws: {
            ($0 as? PoolError)?.code == .objectTooLarge
        }
    }
}
