// zpk add / destroy / import NEWNAME / get / set, the status tree, and the neighbour lists our
// labels carry — in-process, on in-memory leaves (and sparse files where the scanner reads paths).

import Foundation
import Synchronization
import Testing
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSTestSupport

@testable import ZFSPool

@Suite struct PoolAddTests {
    static let paths = ["/dev/a", "/dev/b", "/dev/c", "/dev/d", "/dev/e", "/dev/f", "/dev/g"]

    @Test func addAMirrorStripesNewBlocksAndKeepsTheDittoRule() async throws {
        let rack = DeviceRack(paths: Self.paths)
        let host = PoolHost(environment: rack.environment())
        let pool = try await host.create(name: "tank", layout: [.mirror(["/dev/a", "/dev/b"]), .mirror(["/dev/c", "/dev/d"])])
        let before = randomObjects(count: 8, maximumSize: 300_000, prefix: "b", seed: 7)
        for (name, bytes) in before { try await pool.put(name, bytes) }
        try await pool.sync()
        let txgBefore = pool.status().lastSyncedTXG

        try await host.add("tank", layout: [.mirror(["/dev/e", "/dev/f"])])
        #expect(pool.status().lastSyncedTXG == TXG(txgBefore.rawValue + 1), "add syncs")
        let tree = pool.status().vdevTree
        #expect(tree.children.map(\.type) == ["mirror", "mirror", "mirror"])
        #expect(tree.children[2].children.map(\.path) == ["/dev/e", "/dev/f"])

        // Every label of every leaf (old and new) says 3 top-levels at the add's txg; the new
        // leaves' labels are valid and name the new top-level.
        for path in Self.paths.prefix(6) {
            let labels = DeviceLabels(reading: try #require(rack.devices[path]))
            for label in labels.labels {
                #expect(label.status == .valid, "\(path)")
                #expect(label.config?.uint64("vdev_children") == 3, "\(path)")
                #expect(label.config?.uint64("txg") == pool.status().lastSyncedTXG.rawValue, "\(path)")
            }
        }
        let newTop = try #require(pool.core.withLock { $0.io.tree.topLevels.last })
        #expect(newTop.id == 2)
        #expect(newTop.createTXG == TXG(txgBefore.rawValue + 1))

        // New data goes to the emptiest top-level (the new one); the MOS keeps DVA[0] on
        // top-level 0 and DVA[1] on another top-level (design §2).
        try await pool.put("fresh", [UInt8](repeating: 0x5A, count: 100_000))
        try await pool.sync()
        let fresh = try #require(pool.core.withLock { $0.objects["fresh"]?.pointer })
        #expect(BlockPointers.extents(of: fresh).map(\.vdev) == [2])
        let mos = try #require(pool.core.withLock { $0.mosPointer })
        let mosVdevs = BlockPointers.extents(of: mos).map(\.vdev)
        #expect(mosVdevs.count == 2)
        #expect(mosVdevs.first == 0)
        #expect(mosVdevs.last == 2, "the second copy on the emptiest other top-level")
        let directory = try #require(pool.core.withLock { $0.directoryPointer })
        #expect(BlockPointers.extents(of: directory).map(\.vdev).first == 0)

        // Export and reopen from the old config (only 2 top-levels): the MOS wins.
        let config = pool.config
        try await host.export("tank")
        let reopened = try await PoolHost(environment: rack.environment()).open(config: config, mode: .import())
        #expect(reopened.status().vdevTree.children.count == 3)
        var all = before
        all["fresh"] = [UInt8](repeating: 0x5A, count: 100_000)
        try await expectObjects(reopened, all)
    }

    @Test func addRefusesBadInputWithoutWriting() async throws {
        let rack = DeviceRack(paths: Self.paths)
        let small = DeviceRack(paths: ["/dev/small"], size: 32 << 20)
        var environment = rack.environment()
        let base = environment.openDevice
        let smallDevice = try #require(small.devices["/dev/small"])
        environment.openDevice = { path in path == "/dev/small" ? smallDevice : try base(path) }
        let host = PoolHost(environment: environment)
        _ = try await host.create(name: "tank", layout: [.mirror(["/dev/a", "/dev/b"])])
        _ = try await host.create(name: "other", layout: [.leaf("/dev/g")])
        let writes = rack.writeCount

        func expectRefused(
            _ layout: [VdevSpec], _ code: PoolError.Code, device: String? = nil, mentioning text: String,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async {
            await #expect(sourceLocation: sourceLocation) {
                try await host.add("tank", layout: layout)
            } throws: { error in
                guard let error = error as? PoolError else { return false }
                #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
                #expect(error.poolName == "tank", sourceLocation: sourceLocation)
                if let device { #expect(error.devicePath == device, sourceLocation: sourceLocation) }
                #expect(error.message.contains(text), "\(error.message)", sourceLocation: sourceLocation)
                return true
            }
        }
        await expectRefused([], .invalidLayout, mentioning: "at least one vdev")
        await expectRefused([.mirror(["/dev/c"])], .invalidLayout, mentioning: "at least 2 devices")
        await expectRefused([.leaf("/dev/c"), .mirror(["/dev/c", "/dev/d"])], .invalidLayout, mentioning: "each device once")
        await expectRefused([.leaf("/dev/a")], .deviceInUse, device: "/dev/a", mentioning: "already part of this pool")
        await expectRefused(
            [.mirror(["/dev/c", "/dev/g"])], .deviceInUse, device: "/dev/g", mentioning: "active pool 'other'")
        await expectRefused([.mirror(["/dev/c", "/dev/small"])], .deviceTooSmall, device: "/dev/small", mentioning: "64 MiB")
        await expectRefused([.leaf("/dev/nope")], .deviceOpenFailed, device: "/dev/nope", mentioning: "cannot open")
        await #expect { try await host.add("lake", layout: [.leaf("/dev/c")]) } throws: {
            ($0 as? PoolError)?.code == .unknownPool
        }
        #expect(rack.writeCount == writes, "nothing written on error")
        #expect(small.writeCount == 0)
        #expect(try host.pool(named: "tank").status().vdevTree.children.count == 1)
    }

    @Test func aDeviceOfADestroyedPoolCanBeAdded() async throws {
        let rack = DeviceRack(paths: Self.paths)
        let host = PoolHost(environment: rack.environment())
        _ = try await host.create(name: "old", layout: [.leaf("/dev/c")])
        try await host.destroy("old")
        _ = try await host.create(name: "tank", layout: [.leaf("/dev/a")])
        try await host.add("tank", layout: [.leaf("/dev/c")])
        #expect(try host.pool(named: "tank").status().vdevTree.children.map(\.path) == ["/dev/a", "/dev/c"])
    }
}

@Suite struct PoolNeighborTests {
    @Test func everyLabelNamesTheOtherTopLevels() async throws {
        let rack = DeviceRack(paths: ["/dev/a", "/dev/b", "/dev/c", "/dev/d"])
        let host = PoolHost(environment: rack.environment())
        let pool = try await host.create(name: "tank", layout: [.leaf("/dev/a"), .mirror(["/dev/b", "/dev/c"])])
        try await host.add("tank", layout: [.leaf("/dev/d")])
        let tops = pool.core.withLock { $0.io.tree.topLevels }
        for path in ["/dev/a", "/dev/b", "/dev/c", "/dev/d"] {
            for label in DeviceLabels(reading: try #require(rack.devices[path])).labels {
                let config = try #require(label.config)
                let records = try #require(NeighborRecord.records(inLabel: config), "\(path)")
                let own = config.uint64("top_guid")
                let expected = tops.filter { $0.guid.rawValue != own }
                #expect(records.map(\.topLevelID) == expected.map(\.id), "\(path)")
                #expect(records.map(\.guid) == expected.map(\.guid), "\(path)")
                #expect(records.map { $0.leaves.map(\.path) } == expected.map { $0.leaves.map(\.path) }, "\(path)")
                #expect(records.map(\.type.rawValue) == expected.map { $0.isMirror ? "mirror" : "file" }, "\(path)")
            }
        }
    }

    @Test func aSingleTopLevelPoolCarriesNoList() async throws {
        let rack = DeviceRack(paths: ["/dev/a"])
        _ = try await PoolHost(environment: rack.environment()).create(name: "tank", layout: [.leaf("/dev/a")])
        let device = try #require(rack.devices["/dev/a"])
        let label = try #require(DeviceLabels(reading: device).labels.first?.config)
        #expect(NeighborRecord.records(inLabel: label) == nil)
    }

    @Test func theListShrinksToFitTheLabel() throws {
        // 300 top-levels of long paths cannot all fit in 112 KiB: the farthest are dropped.
        let long = String(repeating: "x", count: 400)
        let tops = (0..<300).map { index in
            TopLevelVdev(
                id: UInt64(index), guid: VdevGUID(UInt64(index) + 1000), isMirror: false,
                leaves: [LeafVdev(id: 0, guid: VdevGUID(UInt64(index) + 1000), path: "/d/\(long)\(index)", isBlockDevice: false, createTXG: TXG(4))],
                ashift: 12, asize: 1 << 30, metaslabShift: 24, createTXG: TXG(4))
        }
        let tree = VdevTree(topLevels: tops)
        let identity = PoolIdentity(name: "big", guid: PoolGUID(7), state: .active, hostID: 0, hostname: "h")
        let config = identity.labelConfig(leaf: tops[150].leaves[0], top: tops[150], tree: tree, txg: TXG(9))
        #expect(try config.encoded(as: .xdr).count <= VdevLabel.configCapacity)
        let records = try #require(NeighborRecord.records(inLabel: config))
        #expect(!records.isEmpty && records.count < 299)
        let ids = records.map(\.topLevelID)
        #expect(ids.contains(149) && ids.contains(151), "the nearest are kept")
        #expect(!ids.contains(0) && !ids.contains(299), "the farthest are dropped")
    }

    /// `ub_guid_sum` is OpenZFS's `vdev_guid_sum`: every vdev's guid — the root (the pool guid),
    /// a mirror and its leaves, a single-leaf top-level once — added modulo 2^64. ZFSPool takes
    /// it from ZFSImport's vdev model, so the sum our uberblocks carry is the one a scan checks.
    @Test func theGuidSumIsOpenZFSsAndTheScansOwn() async throws {
        let big = UInt64.max - 5
        func leaf(_ id: UInt64, _ guid: UInt64) -> LeafVdev {
            LeafVdev(id: id, guid: VdevGUID(guid), path: "/d/\(guid)", isBlockDevice: false, createTXG: TXG(4))
        }
        let tree = VdevTree(topLevels: [
            TopLevelVdev(
                id: 0, guid: VdevGUID(big), isMirror: true, leaves: [leaf(0, big - 1), leaf(1, 3)], ashift: 12,
                asize: 1 << 30, metaslabShift: 24, createTXG: TXG(4)),
            TopLevelVdev(
                id: 1, guid: VdevGUID(40), isMirror: false, leaves: [leaf(1, 40)], ashift: 12, asize: 1 << 30,
                metaslabShift: 24, createTXG: TXG(4)),
        ])
        let expected = 7 &+ big &+ (big - 1) &+ 3 &+ 40
        #expect(tree.guidSum(poolGUID: PoolGUID(7)) == expected)
        #expect(try VdevTree.parse(root: tree.rootConfig(poolGUID: PoolGUID(7))).guidSum(poolGUID: PoolGUID(7)) == expected)

        let files = try SparseFiles(count: 3, size: 64 << 20)
        let p = files.paths
        let host = PoolHost(environment: .init(hostID: 0x1234, hostname: "h"))
        _ = try await host.create(name: "tank", layout: [.mirror([p[0], p[1]]), .leaf(p[2])])
        try await host.export("tank")
        let scan = await ImportScanner(options: .init(searchPaths: [files.directory], skipDevicesInUse: false)).scan()
        let candidate = try scan.pool(.name("tank"))
        // The uberblock ZFSPool wrote against the tree ZFSImport assembled from the labels.
        let uberblock = try #require(PoolHealth.assess(candidate, in: scan, localHostID: 0x1234).uberblock)
        #expect(uberblock.guidSum == candidate.root.guidSum)
        #expect(candidate.root.leaves.count == 3 && candidate.root.children.count == 2)
    }

    /// `zpk import` names the leaves of a top-level vdev whose devices are all gone.
    @Test func aScanNamesTheLeavesOfAMissingTopLevel() async throws {
        let files = try SparseFiles(count: 4, size: 64 << 20)
        let p = files.paths
        let host = PoolHost(environment: .init(hostID: 0x1234, hostname: "h"))
        _ = try await host.create(name: "tank", layout: [.mirror([p[0], p[1]]), .mirror([p[2], p[3]])])
        try await host.export("tank")
        try FileManager.default.removeItem(atPath: p[2])
        try FileManager.default.removeItem(atPath: p[3])

        let scan = await ImportScanner(options: .init(searchPaths: [files.directory], skipDevicesInUse: false)).scan()
        let candidate = try scan.pool(.name("tank"))
        let records = NeighborRecord.collect(for: candidate, in: scan)
        #expect(records[1]?.leaves.map(\.path) == [p[2], p[3]])
        let health = PoolHealth.assess(candidate, in: scan, localHostID: 0x1234)
        #expect(health.missingTopLevels.map(\.id) == [1])
        let text = health.missingTopLevels.map(\.description).joined()
        #expect(text.contains("mirror of \(p[2]), \(p[3])"), "\(text)")

        // And our open refuses it, naming the missing top-level's devices.
        await #expect { try await host.importPool("tank", searchPaths: [files.directory]) } throws: { error in
            guard let error = error as? PoolError else { return false }
            #expect(error.message.contains("top-level vdev 1 is available (\(p[2]), \(p[3]))"), "\(error.message)")
            return error.code == .missingDevices
        }
    }
}

@Suite struct PoolDestroyRenameTests {
    @Test func destroyMarksEveryLabelDestroyedAndForgetsThePool() async throws {
        let rack = DeviceRack(paths: ["/dev/a", "/dev/b"])
        let host = PoolHost(environment: rack.environment())
        let pool = try await host.create(name: "tank", layout: [.mirror(["/dev/a", "/dev/b"])])
        try await pool.put("k", [1])
        try await host.destroy("tank")
        #expect(throws: PoolError.self) { try host.pool(named: "tank") }
        await #expect { try await pool.get("k") } throws: {
            ($0 as? PoolError)?.code == .poolClosed && "\($0)".contains("destroyed")
        }
        for device in rack.devices.values {
            for label in DeviceLabels(reading: device).labels {
                #expect(label.status == .valid)
                #expect(label.config?.uint64("state") == PoolState.destroyed.rawValue, "\(device.path)")
            }
        }
        await #expect { try await host.destroy("tank") } throws: { ($0 as? PoolError)?.code == .unknownPool }
        // The devices are free for a new pool.
        _ = try await host.create(name: "again", layout: [.mirror(["/dev/a", "/dev/b"])])
    }

    @Test func openUnderANewName() async throws {
        let rack = DeviceRack(paths: ["/dev/a", "/dev/b"])
        let host = PoolHost(environment: rack.environment())
        let pool = try await host.create(name: "tank", layout: [.leaf("/dev/a")])
        try await pool.put("k", [4, 2])
        let config = pool.config
        try await host.export("tank")
        // Bad new names and a clash are refused before anything is written.
        _ = try await host.create(name: "busy", layout: [.leaf("/dev/b")])
        let writes = rack.writeCount
        await #expect { try await host.open(config: config, mode: .import(), newName: "9lives") } throws: {
            ($0 as? PoolError)?.code == .invalidName
        }
        await #expect { try await host.open(config: config, mode: .import(), newName: "busy") } throws: {
            ($0 as? PoolError)?.code == .poolExists && "\($0)".contains("'busy' is already open")
        }
        #expect(rack.writeCount == writes)

        let renamed = try await host.open(config: config, mode: .import(), newName: "lake")
        #expect(renamed.name == "lake" && renamed.guid == pool.guid)
        #expect(try host.pool(named: "lake") === renamed)
        #expect(renamed.config.string("name") == "lake")
        #expect(try renamed.property("name") == "lake")
        for label in DeviceLabels(reading: try #require(rack.devices["/dev/a"])).labels {
            #expect(label.config?.string("name") == "lake")
        }
        // The same pool cannot be opened twice under two names.
        await #expect { try await host.open(config: config, mode: .import(), newName: "pond") } throws: {
            ($0 as? PoolError)?.code == .poolExists
        }
        try await host.export("lake")
        let back = try await PoolHost(environment: rack.environment()).open(config: renamed.config, mode: .import())
        #expect(back.name == "lake")
        #expect(try await back.get("k") == [4, 2])
    }

    @Test func importPoolUnderANewNameFromFiles() async throws {
        let files = try SparseFiles(count: 1, size: 64 << 20)
        let host = PoolHost(environment: .init(hostID: 0x42, hostname: "h"))
        _ = try await host.create(name: "tank", layout: [.leaf(files.paths[0])])
        try await host.export("tank")
        let pool = try await host.importPool("tank", searchPaths: [files.directory], newName: "lake")
        #expect(pool.name == "lake")
        try await host.export("lake")
        let scan = await ImportScanner(options: .init(searchPaths: [files.directory], skipDevicesInUse: false)).scan()
        #expect(scan.pools.map(\.name) == ["lake"])
    }
}

@Suite struct PoolPropertyTests {
    @Test func propertiesPersistAcrossExportAndImport() async throws {
        let rack = DeviceRack(paths: ["/dev/a"])
        let host = PoolHost(environment: rack.environment())
        let pool = try await host.create(name: "tank", layout: [.leaf("/dev/a")], properties: ["comment": "first"])
        #expect(try pool.property("multihost") == "off")
        #expect(try pool.property("comment") == "first")
        #expect(try pool.property("org.example:owner") == "-")
        let txg = pool.status().lastSyncedTXG
        try await pool.setProperty("multihost", "on")
        try await pool.setProperty("comment", "racked in row 7")
        try await pool.setProperty("org.example:owner", "ops team")
        #expect(pool.properties == ["multihost": "on", "comment": "racked in row 7", "org.example:owner": "ops team"])
        #expect(try await pool.sync() == TXG(txg.rawValue + 1), "a property change makes the txg dirty")
        try await pool.setProperty("org.example:owner", "ops team")
        #expect(try await pool.sync() == TXG(txg.rawValue + 1), "setting the same value changes nothing")

        let config = pool.config
        try await host.export("tank")
        let back = try await PoolHost(environment: rack.environment()).open(config: config, mode: .import())
        #expect(back.properties == ["multihost": "on", "comment": "racked in row 7", "org.example:owner": "ops team"])
        // An empty value removes a comment or a user property.
        try await back.setProperty("comment", "")
        try await back.setProperty("org.example:owner", "")
        #expect(back.properties == ["multihost": "on"])
        #expect(try back.property("comment") == "-")
    }

    @Test func derivedProperties() async throws {
        let rack = DeviceRack(paths: ["/dev/a", "/dev/b"])
        let pool = try await PoolHost(environment: rack.environment()).create(
            name: "tank", layout: [.mirror(["/dev/a", "/dev/b"])])
        try await pool.put("x", [UInt8](repeating: 1, count: 10_000))
        let status = pool.status()
        #expect(try pool.property("name") == "tank")
        #expect(try pool.property("guid") == "\(pool.guid.rawValue)")
        #expect(try pool.property("health") == "ONLINE")
        #expect(try pool.property("txg") == "\(status.lastSyncedTXG.rawValue)")
        #expect(try pool.property("allocated") == "\(status.allocatedByteCount)")
        #expect(try pool.property("free") == "\(status.freeByteCount)")
        #expect(UInt64(try pool.property("size")) == status.allocatedByteCount + status.freeByteCount)
    }

    @Test func badPropertiesAreRefusedAndChangeNothing() async throws {
        let rack = DeviceRack(paths: ["/dev/a"])
        let host = PoolHost(environment: rack.environment())
        let pool = try await host.create(name: "tank", layout: [.leaf("/dev/a")])
        let before = pool.properties
        let cases: [(String, String, PoolError.Code)] = [
            ("size", "1", .readOnlyProperty), ("guid", "1", .readOnlyProperty), ("name", "x", .readOnlyProperty),
            ("health", "ONLINE", .readOnlyProperty), ("txg", "9", .readOnlyProperty),
            ("multihost", "maybe", .invalidProperty), ("multihost", "", .invalidProperty),
            ("comment", "tab\there", .invalidProperty),
            ("comment", String(repeating: "c", count: 8193), .invalidProperty),
            ("comment", "café", .invalidProperty),
            ("Org:Upper", "v", .invalidProperty), (":noModule", "v", .invalidProperty),
            ("org.example:big", String(repeating: "v", count: 8193), .invalidProperty),
            ("compression", "on", .unknownProperty), ("", "x", .unknownProperty),
        ]
        for (name, value, code) in cases {
            await #expect("\(name)=\(value.prefix(20))") {
                try await pool.setProperty(name, value)
            } throws: { error in
                guard let error = error as? PoolError else { return false }
                #expect(error.message.contains("'tank'"), "\(error.message)")
                return error.code == code && error.poolName == "tank"
            }
        }
        #expect(pool.properties == before)
        #expect(try pool.property("comment") == "-")
        #expect { try pool.property("compression") } throws: { ($0 as? PoolError)?.code == .unknownProperty }
        // Creating with a bad property writes nothing.
        let fresh = DeviceRack(paths: ["/dev/z"])
        await #expect {
            try await PoolHost(environment: fresh.environment()).create(
                name: "z", layout: [.leaf("/dev/z")], properties: ["multihost": "yes"])
        } throws: { ($0 as? PoolError)?.code == .invalidProperty }
        #expect(fresh.writeCount == 0)
    }
}

@Suite struct PoolStatusTreeTests {
    @Test func aDegradedMirrorNamesTheUnavailableLeaf() async throws {
        let rack = DeviceRack(paths: ["/dev/a", "/dev/b", "/dev/c"])
        let host = PoolHost(environment: rack.environment())
        let pool = try await host.create(name: "m", layout: [.mirror(["/dev/a", "/dev/b"]), .leaf("/dev/c")])
        try await pool.put("k", [9, 9])
        try await pool.sync()
        var cached = pool.config
        try await host.export("m")
        var root = try #require(cached.list("vdev_tree"))
        var children = try #require(root.lists("children"))
        var leaves = try #require(children[0].lists("children"))
        leaves[1].set("path", .string("/dev/gone"))
        children[0].set("children", .nvlistArray(leaves))
        root.set("children", .nvlistArray(children))
        cached.set("vdev_tree", .nvlist(root))
        let reopened = try await PoolHost(environment: rack.environment()).open(config: cached, mode: .import())
        let status = reopened.status()
        #expect(status.state == "ACTIVE")
        #expect(status.health == "DEGRADED")
        let tree = status.vdevTree
        #expect(tree.type == "root" && tree.guid == reopened.guid.rawValue && tree.health == "DEGRADED")
        #expect(tree.children.map(\.type) == ["mirror", "file"])
        #expect(tree.children.map(\.health) == ["DEGRADED", "ONLINE"])
        let mirror = tree.children[0]
        #expect(mirror.path == nil)
        #expect(mirror.children.map(\.path) == ["/dev/a", "/dev/gone"])
        #expect(mirror.children.map(\.health) == ["ONLINE", "UNAVAIL"])
        #expect(mirror.children.map(\.readErrors) == [0, 0])
        #expect(tree.children[1].path == "/dev/c")
        #expect(try reopened.property("health") == "DEGRADED")
    }

    @Test func repairsAndChecksumErrorsAreCountedInTheTree() async throws {
        let rack = DeviceRack(paths: ["/dev/a", "/dev/b"])
        let host = PoolHost(environment: rack.environment())
        let pool = try await host.create(name: "m", layout: [.mirror(["/dev/a", "/dev/b"])])
        let bytes = (0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        try await pool.put("x", bytes)
        try await pool.sync()
        let bp = try #require(pool.core.withLock { $0.objects["x"]?.pointer })
        let offset = VdevIO.dataStart + bp.dva0.byteOffset
        rack.devices["/dev/b"]!.setBytes([UInt8](repeating: 0xEE, count: 512), at: offset)
        for _ in 0..<2 { #expect(try await pool.get("x") == bytes) }
        rack.devices["/dev/a"]!.inject(.readError(offset..<(offset + 1)), times: 1)
        for _ in 0..<2 { #expect(try await pool.get("x") == bytes) }
        let tree = pool.status().vdevTree
        let leaves = tree.children[0].children
        #expect(leaves.map(\.checksumErrors) == [0, 1])
        #expect(leaves.map(\.readErrors) == [1, 0])
        #expect(leaves.map(\.repairs) == [1, 1])
        #expect(tree.children[0].repairs == 2 && tree.repairs == 2)
        #expect(tree.checksumErrors == 1 && tree.readErrors == 1)
        #expect(tree.health == "ONLINE")
    }
}

@Suite struct PoolConfigInputTests {
    /// Two single-leaf top-levels get ids 0 and 1 in every config (the leaf of a single-leaf
    /// top-level is its own top-level), and a config repeating a top-level id is refused.
    @Test func singleLeafTopLevelsKeepTheirIDs() async throws {
        let rack = DeviceRack(paths: ["/dev/a", "/dev/b"])
        let host = PoolHost(environment: rack.environment())
        let pool = try await host.create(name: "s", layout: [.leaf("/dev/a"), .leaf("/dev/b")])
        let config = pool.config
        #expect(config.list("vdev_tree")?.lists("children")?.map { $0.uint64("id") } == [0, 1])
        try await host.export("s")
        var damaged = config
        var root = try #require(damaged.list("vdev_tree"))
        var children = try #require(root.lists("children"))
        children[1].set("id", .uint64(0))
        root.set("children", .nvlistArray(children))
        damaged.set("vdev_tree", .nvlist(root))
        let writes = rack.writeCount
        await #expect { try await host.open(config: damaged, mode: .import()) } throws: {
            ($0 as? PoolError)?.code == .invalidConfig && "\($0)".contains("two top-level vdevs with id 0")
        }
        #expect(rack.writeCount == writes)
        let reopened = try await host.open(config: config, mode: .import())
        #expect(reopened.status().vdevTree.children.map(\.path) == ["/dev/a", "/dev/b"])
    }
}
