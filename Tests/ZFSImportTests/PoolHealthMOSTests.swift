// PoolHealth.evaluate given what reading the MOS gave, without I/O: the trusted pass opens the
// MOS's vdev tree (spa_ld_trusted_config), a damaged MOS fails the load as spa_ld_open_rootbp
// does, the MOS's features_for_read are checked (spa_ld_check_features), and a layout ZPoolKit
// does not read leaves the labels' answer. The same against real zpool: ZpoolImportTextInteropTests.

import Testing
import ZFSFormat

@testable import ZFSImport

@Suite struct PoolHealthMOSTests {
    /// The MOS config of `pool`: its whole tree, and `features` with reference counts.
    static func mos(_ pool: SyntheticPool, features: [String: UInt64] = ["com.delphix:hole_birth": 1]) -> Result<MOSConfig, MOSError> {
        var root = Synthetic.interior(type: "root", id: 0, guid: SyntheticPool.poolGUID, children: pool.topLevels)
        root["is_log"] = nil
        var config = NVList()
        config.set("version", .uint64(5000))
        config.set("txg", .uint64(pool.txg))
        config.set("vdev_children", .uint64(UInt64(pool.topLevels.count)))
        config.set("vdev_tree", .nvlist(root))
        return .success(
            MOSConfig(
                config: config, featuresForRead: features, creationVersion: 5000, directory: [:], vdevZAPs: [:],
                uberblock: pool.uberblock, repairs: VdevReader.Repairs()))
    }

    static func evaluate(_ pool: SyntheticPool, present: Set<UInt64>, gone: [String], mos: Result<MOSConfig, MOSError>?) throws -> PoolHealth {
        var devices = try pool.devices()
        for path in gone { devices[path] = .cannotOpen("gone") }
        return PoolHealth.evaluate(pool.candidate(present: present), devices: devices, localHostID: 0x1234, mos: mos)
    }

    /// The labels leave a `missing` placeholder; the MOS says it was mirror-1 of /d/c and /d/d,
    /// and that is the tree the listing prints, its leaves "cannot open".
    @Test func theMOSTreeReplacesTheMissingPlaceholder() throws {
        let pool = PoolHealthTests.twoTopLevels()
        let labelsOnly = try Self.evaluate(pool, present: [11, 12], gone: ["/d/c", "/d/d"], mos: nil)
        #expect(labelsOnly.configSource == .labels)
        #expect(labelsOnly.root.children[1].type == .missing)
        let health = try Self.evaluate(pool, present: [11, 12], gone: ["/d/c", "/d/d"], mos: Self.mos(pool))
        #expect(health.configSource == .mos)
        #expect(
            health.root.stateSummary
                == "root CANT_OPEN/NO_REPLICAS [mirror HEALTHY/NONE [file HEALTHY/NONE, file HEALTHY/NONE], mirror CANT_OPEN/NO_REPLICAS [file CANT_OPEN/OPEN_FAILED, file CANT_OPEN/OPEN_FAILED]]")
        #expect(health.root.children[1].leaves.map(\.path) == ["/d/c", "/d/d"])
        #expect(health.status == .missingDeviceNoReplicas)
        #expect(health.missingTopLevels.map(\.mosVdev?.type) == ["mirror"])
        #expect(health.missingTopLevels.first?.description == "top-level vdev 1 (mirror of /d/c, /d/d, guid 20) is missing")
        #expect(health.mosExtraTopLevels.isEmpty)
    }

    /// Only the MOS knows the missing top-level vdev was a log: BAD_GUID_SUM, "missing device".
    @Test func aLogOnlyTheMOSKnowsIsBadGUIDSum() throws {
        let pool = PoolHealthTests.twoTopLevels(secondIsLog: true)
        let health = try Self.evaluate(pool, present: [11, 12], gone: ["/d/c", "/d/d"], mos: Self.mos(pool))
        #expect(health.root.stateSummary.hasPrefix("root CANT_OPEN/BAD_GUID_SUM"))
        #expect(health.status == .badGUIDSum)
        #expect(health.root.children[1].isLog)
    }

    /// Vdevs the given config lacks altogether (a stale cache-file entry) are opened from the
    /// MOS, and reported as extra.
    @Test func theMOSCompletesAConfigThatLacksTopLevels() throws {
        let pool = PoolHealthTests.twoTopLevels()
        var short = pool.candidate()
        short.root.children.removeLast()
        let health = PoolHealth.evaluate(short, devices: try pool.devices(), localHostID: 0x1234, mos: Self.mos(pool))
        #expect(health.healthName == "ONLINE", "\(health.root.stateSummary)")
        #expect(health.root.children.count == 2)
        #expect(health.mosExtraTopLevels.map(\.id) == [1])
        #expect(health.missingTopLevels.isEmpty)
    }

    @Test func aDamagedMOSIsACorruptPool() throws {
        let pool = SyntheticPool.mirror()
        let damaged = MOSError(object: "the MOS objset", code: .damaged, reason: "checksum mismatch")
        let health = try Self.evaluate(pool, present: [11, 12], gone: [], mos: .failure(damaged))
        #expect(health.root.stateSummary == "root CANT_OPEN/CORRUPT_DATA [mirror HEALTHY/NONE [file HEALTHY/NONE, file HEALTHY/NONE]]")
        #expect(health.status == .corruptPool)
        #expect(health.healthName == "FAULTED")
        #expect(health.configSource == .mos)
    }

    /// A MOS of a layout ZPoolKit does not read (dRAID): the labels' answer, marked as such.
    @Test func anUnreadLayoutKeepsTheLabelsAnswer() throws {
        let pool = SyntheticPool.mirror()
        let unsupported = MOSError(object: "the MOS objset", code: .unsupported, reason: "draid")
        let health = try Self.evaluate(pool, present: [11, 12], gone: [], mos: .failure(unsupported))
        #expect(health.healthName == "ONLINE")
        #expect(health.configSource == .labels)
    }

    /// features_for_read of the MOS: an unknown feature in use (reference count > 0) stops the
    /// load; one enabled but unused does not.
    @Test func theMOSFeaturesForReadAreChecked() throws {
        let pool = SyntheticPool.mirror()
        let used = try Self.evaluate(
            pool, present: [11, 12], gone: [], mos: Self.mos(pool, features: ["com.delphix:hole_birth": 1, "com.example:teleport": 2]))
        #expect(used.root.stateSummary.hasPrefix("root CANT_OPEN/UNSUP_FEAT"))
        #expect(used.status == .unsupportedFeaturesRead)
        #expect(used.unsupportedFeatures == ["com.example:teleport"])
        let unused = try Self.evaluate(
            pool, present: [11, 12], gone: [], mos: Self.mos(pool, features: ["com.delphix:hole_birth": 1, "com.example:teleport": 0]))
        #expect(unused.healthName == "ONLINE")
    }
}
