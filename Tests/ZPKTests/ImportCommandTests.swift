import Foundation
import Testing
import ZFSFormat
import ZFSTestSupport

@testable import ZFSImport
@testable import ZPKCLI

/// `zpk import -d DIR [-D] [-v] [--json] [--config POOL|GUID]` on the OpenZFS test suite's v2
/// mirror images, and the `zpool import` layout on hand-made health reports.
@Suite(.offTheCooperativePool) struct ImportCommandTests {
    /// The three images of `pool-v2mirror`, decompressed (sparse) into a fresh directory.
    private func withMirrorImages<R>(_ body: (String) throws -> R) throws -> R {
        let directory = try TemporaryDirectory(prefix: "import-command")
        for n in 1...3 { try FixtureImages.copy("zfs-pool-v2mirror\(n).dat", to: directory.path("m\(n).dat")) }
        return try withExtendedLifetime(directory) { try body(directory.path) }
    }

    /// A fixed clock for "last accessed … at".
    private static let time: @Sendable (UInt64) -> String = { "<\($0)>\n" }

    private static func run(_ directory: String, json: Bool = false, verbose: Bool = false, destroyed: Bool = false) -> ZPK.Import.Output {
        ZPK.Import.run(
            searchPaths: [directory], destroyed: destroyed, config: nil, json: json, verbose: verbose,
            environment: ["ZFS_HOSTID": "0x22222222"], time: time)
    }

    @Test func configIsZdbsConfigurationForImport() throws {
        try withMirrorImages { directory in
            let byName = ZPK.Import.run(searchPaths: [directory], destroyed: false, config: "pool-v2mirror", environment: [:])
            #expect(byName.status == 0 && byName.stderr.isEmpty)
            #expect(byName.stdout.hasPrefix("\nConfiguration for import:\n        version: 2\n        pool_guid: 18099148996036948200\n"))
            #expect(byName.stdout.contains("                    path: '\(directory)/m2.dat'\n"))
            let byGUID = ZPK.Import.run(searchPaths: [directory], destroyed: false, config: "18099148996036948200", environment: [:])
            #expect(byGUID == byName)
            // zdb is the oracle: without it this fails (requireInstalled names the missing tool).
            try OpenZFS.requireInstalled()
            let zdb = try OpenZFS.zdb(["-e", "-p", directory, "-CC", "pool-v2mirror"], currentDirectory: directory)
            let start = try #require(zdb.stdout.firstRange(of: "\nConfiguration for import:\n"))
            #expect(zdb.stdout[start.lowerBound...].hasPrefix(byName.stdout))
        }
    }

    /// The listing is `zpool import`'s, byte for byte: a version-2 pool is ONLINE with the
    /// VERSION_OLDER status, its tree as wide as its longest path plus depth.
    @Test func listingIsZpoolImports() throws {
        try withMirrorImages { directory in
            let listing = Self.run(directory)
            #expect(listing.status == 0 && listing.stderr.isEmpty)
            let width = max(10, "\(directory)/m1.dat".count + 4)
            func line(_ name: String, depth: Int, _ state: String) -> String {
                "\t" + String(repeating: " ", count: depth) + name + String(repeating: " ", count: width - depth - name.count) + "  " + state + "\n"
            }
            let expected = """
                   pool: pool-v2mirror
                     id: 18099148996036948200
                  state: ONLINE
                status: The pool is formatted using a legacy on-disk version.
                 action: The pool can be imported using its name or numeric identifier, though
                \tsome features will not be available without an explicit 'zpool upgrade'.
                 config:


                """
                + line("pool-v2mirror", depth: 0, "ONLINE") + line("mirror-0", depth: 2, "ONLINE")
                + (1...3).map { line("\(directory)/m\($0).dat", depth: 4, "ONLINE") }.joined()
                + "    zpk: cannot import: it is an OpenZFS pool (version 2), whose MOS zpk cannot read\n"
            #expect(listing.stdout == expected)
        }
    }

    /// One image gone: DEGRADED; the leaf keeps the path its label recorded and cannot be opened.
    @Test func degradedListingAndVerboseNotes() throws {
        try withMirrorImages { directory in
            try FileManager.default.removeItem(atPath: "\(directory)/m3.dat")
            try Data(count: 4096).write(to: URL(fileURLWithPath: "\(directory)/junk"))
            let listing = Self.run(directory, verbose: true)
            #expect(listing.status == 0)
            #expect(listing.stdout.contains("  state: DEGRADED\nstatus: One or more devices are missing from the system.\n"))
            #expect(listing.stdout.contains(" action: The pool can be imported despite missing or damaged devices.  The\n\tfault tolerance of the pool may be compromised if imported.\n   see: https://openzfs.github.io/openzfs-docs/msg/ZFS-8000-2Q\n config:\n\n"))
            #expect(listing.stdout.contains("  UNAVAIL  cannot open\n"))
            #expect(listing.stdout.contains("\n\tnotes:\n\t  cannot open "))
            #expect(listing.stdout.hasSuffix("devices:\n\t\(directory)/junk: too small: 4096 bytes, less than the 64 MiB a pool device needs\n"))
            // Without -v, no notes and no device list.
            let quiet = Self.run(directory)
            #expect(!quiet.stdout.contains("notes:") && !quiet.stdout.contains("devices:"))
        }
    }

    /// `--json`: the brief's keys first, exact 64-bit guids, per-device notes.
    @Test func jsonListing() throws {
        try withMirrorImages { directory in
            try Data(count: 4096).write(to: URL(fileURLWithPath: "\(directory)/junk"))
            let output = Self.run(directory, json: true)
            #expect(output.status == 0)
            let text = output.stdout
            #expect(text.hasPrefix("{\n  \"pools\": [\n    {\n      \"name\": \"pool-v2mirror\",\n      \"guid\": 18099148996036948200,\n      \"state\": \"EXPORTED\",\n      \"health\": \"ONLINE\",\n      \"status\": \"The pool is formatted using a legacy on-disk version.\",\n      \"action\": \"The pool can be imported using its name or numeric identifier, though some features will not be available without an explicit 'zpool upgrade'.\",\n      \"hostid\": null,\n      \"hostname\": null,\n      \"txg\": 12,\n      \"vdev_tree\": {\n        \"type\": \"root\",\n        \"guid\": 18099148996036948200,\n        \"path\": null,\n        \"health\": \"ONLINE\",\n        \"reason\": null,\n"))
            #expect(text.contains("\"status_code\": \"VERSION_OLDER\""))
            #expect(text.contains("\"guid\": 10962865033293137845,\n"))
            #expect(text.contains("\"path\": \"\(directory)/junk\",\n      \"note\": \"too small: 4096 bytes, less than the 64 MiB a pool device needs\""))
            let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
            let pools = try #require(parsed?["pools"] as? [[String: Any]])
            #expect(pools.count == 1)
            let tree = try #require(pools[0]["vdev_tree"] as? [String: Any])
            let mirror = try #require((tree["children"] as? [[String: Any]])?.first)
            #expect(mirror["name"] as? String == "mirror-0")
            #expect((mirror["children"] as? [[String: Any]])?.count == 3)
        }
    }

    @Test func exitStatusAndErrors() throws {
        try withMirrorImages { directory in
            let missing = ZPK.Import.run(searchPaths: [directory], destroyed: false, config: "tank", environment: [:])
            #expect(missing == .init(stdout: "", stderr: "cannot import 'tank': no such pool available\n", status: 1))
            let destroyed = Self.run(directory, destroyed: true)
            #expect(destroyed == .init(stdout: "", stderr: "no pools available to import\n", status: 1))
            let none = Self.run(directory, json: true, destroyed: true)
            #expect(none.status == 1)
            #expect(none.stdout.hasPrefix("{\n  \"pools\": [],\n"))
        }
    }

    // MARK: Layout on hand-made reports

    private static func vdev(_ config: NVList, _ state: VdevState, _ aux: VdevAux = .none, _ children: [VdevNode] = []) -> VdevNode {
        var node = VdevNode(config: config)
        node.children = children
        node.state = state
        node.aux = aux
        return node
    }

    private static func config(_ type: String, id: UInt64, guid: UInt64, path: String? = nil, extra: [(String, NVPair.Value)] = []) -> NVList {
        var list = NVList()
        list.set("type", .string(type))
        list.set("id", .uint64(id))
        list.set("guid", .uint64(guid))
        if let path { list.set("path", .string(path)) }
        for (key, value) in extra { list.set(key, value) }
        return list
    }

    private static func report(_ root: VdevNode, status: ImportStatus, state: PoolState = .exported) -> PoolHealth {
        PoolHealth(
            name: "tank", guid: PoolGUID(15451357997522795478), poolState: state, version: 5000, hostID: nil, hostname: nil,
            comment: nil, root: root, status: status, unsupportedFeatures: [], uberblock: nil, uberblockDevicePath: nil,
            activityCheck: .notRequired, missingTopLevels: [], forceRequirement: nil, stage: .complete, deviceNotes: [:],
            notes: [])
    }

    /// spec §2.6, "Mirror with one leg missing": W = len("/tmp/d1") + 4 = 11.
    @Test func degradedMirrorExampleOfTheSpec() {
        let root = Self.vdev(
            Self.config("root", id: 0, guid: 15451357997522795478), .degraded, .none,
            [
                Self.vdev(
                    Self.config("mirror", id: 0, guid: 1), .degraded, .none,
                    [
                        Self.vdev(Self.config("file", id: 0, guid: 2, path: "/tmp/d1"), .healthy),
                        Self.vdev(Self.config("file", id: 1, guid: 3, path: "/tmp/d2"), .cantOpen, .openFailed),
                    ])
            ])
        let text = ZpoolImportListing.render(Self.report(root, status: .missingDeviceReplicated))
        #expect(
            text == """
                   pool: tank
                     id: 15451357997522795478
                  state: DEGRADED
                status: One or more devices are missing from the system.
                 action: The pool can be imported despite missing or damaged devices.  The
                \tfault tolerance of the pool may be compromised if imported.
                   see: https://openzfs.github.io/openzfs-docs/msg/ZFS-8000-2Q
                 config:

                \ttank         DEGRADED
                \t  mirror-0   DEGRADED
                \t    /tmp/d1  ONLINE
                \t    /tmp/d2  UNAVAIL  cannot open

                """)
    }

    /// Logs after the main tree under "\tlogs\t"; holes count for the width but are not printed;
    /// a destroyed pool says so; BAD_GUID_SUM has zpool's footer.
    @Test func logsHolesAndBadGUIDSum() {
        let root = Self.vdev(
            Self.config("root", id: 0, guid: 7), .cantOpen, .badGUIDSum,
            [
                Self.vdev(Self.config("file", id: 0, guid: 2, path: "/p/a"), .healthy),
                Self.vdev(Self.config("hole", id: 1, guid: 0), .healthy),
                Self.vdev(Self.config("file", id: 2, guid: 3, path: "/p/log", extra: [("is_log", .uint64(1))]), .cantOpen, .openFailed),
            ])
        let text = ZpoolImportListing.render(Self.report(root, status: .badGUIDSum, state: .destroyed))
        #expect(
            text == """
                   pool: tank
                     id: 15451357997522795478
                  state: UNAVAIL (DESTROYED)
                status: One or more devices are missing from the system.
                 action: The pool cannot be imported. Attach the missing
                \tdevices and try again.
                   see: https://openzfs.github.io/openzfs-docs/msg/ZFS-8000-6X
                 config:

                \ttank        UNAVAIL  missing device
                \t  /p/a      ONLINE
                \tlogs\t
                \t  /p/log    UNAVAIL  cannot open

                \tAdditional devices are known to be part of this pool, though their
                \texact configuration cannot be determined.

                """)
    }

    /// Corrupted pool metadata on a pool that was not exported: zpool's extra line; a pool that
    /// needs -f gets our footer naming the host, its hostid and when.
    @Test func corruptPoolAndForceFooter() {
        let leaf = Self.vdev(Self.config("file", id: 0, guid: 2, path: "/p/a"), .healthy)
        let corrupt = Self.vdev(Self.config("root", id: 0, guid: 7), .cantOpen, .corruptData, [leaf])
        let text = ZpoolImportListing.render(Self.report(corrupt, status: .corruptPool, state: .active))
        #expect(text.contains(" action: The pool cannot be imported due to damaged devices or data.\n\tThe pool may be active on another system, but can be imported using\n\tthe '-f' flag.\n   see: https://openzfs.github.io/openzfs-docs/msg/ZFS-8000-72\n"))
        #expect(text.contains("\ttank        FAULTED  corrupted data\n"))

        var elsewhere = Self.report(Self.vdev(Self.config("root", id: 0, guid: 7), .healthy, .none, [leaf]), status: .hostIDMismatch, state: .active)
        elsewhere.forceRequirement = .init(hostname: "host-a", hostID: 0x1111_1111, timestamp: 1_795_288_790)
        elsewhere.missingTopLevels = [.init(id: 1, record: NeighborRecord(
            topLevelID: 1, guid: VdevGUID(9), type: .mirror,
            leaves: [.init(guid: VdevGUID(10), path: "/dev/sdc"), .init(guid: VdevGUID(11), path: "/dev/sdd")]))]
        let footer = ZpoolImportListing.render(elsewhere, time: { "Sat Nov 21 19:19:50 2026 (\($0))\n" })
        #expect(footer.hasSuffix("""
            \t  /p/a      ONLINE

            \tLast accessed by host-a (hostid=11111111) at Sat Nov 21 19:19:50 2026 (1795288790); import with -f.
            \tTop-level vdev 1 (mirror of /dev/sdc, /dev/sdd, guid 9) is missing.

            """))
        #expect(footer.contains(" action: The pool can be imported using its name or numeric identifier and\n\tthe '-f' flag.\n"))
    }

    @Test func unsupportedFeaturesPrintActionFlushLeft() {
        let root = Self.vdev(
            Self.config("root", id: 0, guid: 7), .cantOpen, .unsupportedFeature,
            [Self.vdev(Self.config("file", id: 0, guid: 2, path: "/p/a"), .healthy)])
        var report = Self.report(root, status: .unsupportedFeaturesRead)
        report.unsupportedFeatures = ["com.example:a", "com.example:b"]
        let text = ZpoolImportListing.render(report)
        #expect(text.contains("""
            status: The pool uses the following feature(s) not supported on this system:
            \tcom.example:a
            \tcom.example:b
            action: The pool cannot be imported. Access the pool on a system that supports
            \tthe required feature(s), or recreate the pool from backup.
             config:
            """))
        #expect(text.contains("\ttank        UNAVAIL  unsupported feature(s)\n"))
    }

    /// `zpool_vdev_name`: disks by base name, whole disks without their partition, raidz with
    /// its parity, dRAID in long form, not-present leaves by guid; the environment's flags.
    @Test func vdevNames() {
        let names = VdevNameOptions()
        let disk = VdevNode(config: Self.config("disk", id: 0, guid: 5, path: "/dev/disk/by-id/ata-X-part1", extra: [("whole_disk", .uint64(1))]))
        #expect(names.name(of: disk, typeID: true) == "ata-X")
        #expect(VdevNameOptions(environment: ["ZPOOL_VDEV_NAME_PATH": "1"]).name(of: disk, typeID: true) == "/dev/disk/by-id/ata-X-part1")
        #expect(VdevNameOptions(environment: ["ZPOOL_VDEV_NAME_GUID": "yes"]).name(of: disk, typeID: true) == "5")
        let gone = VdevNode(config: Self.config("file", id: 0, guid: 6, path: "/p/a", extra: [("not_present", .uint64(1))]))
        #expect(names.name(of: gone, typeID: true) == "6")
        let raidz = VdevNode(config: Self.config("raidz", id: 3, guid: 7, extra: [("nparity", .uint64(2))]))
        #expect(names.name(of: raidz, typeID: true) == "raidz2-3")
        var draid = Self.config("draid", id: 0, guid: 8, extra: [("nparity", .uint64(1)), ("draid_ndata", .uint64(3)), ("draid_nspares", .uint64(1))])
        draid.set("children", .nvlistArray((0..<7).map { Self.config("file", id: UInt64($0), guid: 100 + UInt64($0), path: "/p/\($0)") }))
        #expect(names.name(of: VdevNode(config: draid), typeID: true) == "draid1:3d:7c:1s-0")
        for (path, stripped) in [
            ("sda1", "sda"), ("sda", "sda"), ("nvme0n1p2", "nvme0n1"), ("ata-X-part1", "ata-X"), ("xvdb3", "xvdb"),
            ("mmcblk0p1", "mmcblk0"), ("sdz", "sdz"), ("dm-0", "dm-0"), ("loop0", "loop0"),
        ] {
            #expect(VdevNameOptions.stripPartition(path) == stripped, "\(path)")
        }
    }
}
