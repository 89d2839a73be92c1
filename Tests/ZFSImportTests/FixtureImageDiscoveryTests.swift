// Discovery of the OpenZFS test suite's pool images (Tests/Fixtures/openzfs-images, see its
// README): pools written by Solaris ZFS and OpenZFS releases from version 1 to 5000, a pool
// from the future (version 999), a damaged mirror and a pool with a hot spare in use.

import Foundation
import Testing
import ZFSFormat
import ZFSImport
import ZFSTestSupport

/// What each image pool must look like.
struct ExpectedImagePool: Sendable, CustomStringConvertible {
    var name: String
    var guid: UInt64
    var version: UInt64
    var state: PoolState
    /// The top-level vdev's type and its children's types (empty for a leaf).
    var topLevelType: VdevType
    var leafCount: Int
    /// Leaves whose device is absent (or not usable) in the image set.
    var leavesNotFound: Int
    var hostID: UInt64?
    var description: String { "\(name) (\(guid))" }

    static let all: [ExpectedImagePool] = [
        .init(name: "unclean_export", guid: 7180307423654184295, version: 5000, state: .active, topLevelType: .file, leafCount: 1, leavesNotFound: 0, hostID: 13240505),
        // zfs-broken-mirror1.dat is 66 985 984 bytes, under the 64 MiB minimum: never opened.
        .init(name: "zfs-broken-mirror", guid: 4795821076444488636, version: 2, state: .exported, topLevelType: .mirror, leafCount: 2, leavesNotFound: 1),
        .init(name: "v1-pool", guid: 453684623696461653, version: 1, state: .exported, topLevelType: .file, leafCount: 1, leavesNotFound: 0),
        .init(name: "v15-pool", guid: 11096571302591355909, version: 15, state: .exported, topLevelType: .file, leafCount: 1, leavesNotFound: 0, hostID: 2198307934),
        .init(name: "pool-v2mirror", guid: 18099148996036948200, version: 2, state: .exported, topLevelType: .mirror, leafCount: 3, leavesNotFound: 0),
        .init(name: "pool-v3hotspare", guid: 17597105050916041508, version: 3, state: .exported, topLevelType: .spare, leafCount: 2, leavesNotFound: 0),
        .init(name: "pool-v3raidz", guid: 1778991053412405647, version: 3, state: .exported, topLevelType: .raidz, leafCount: 3, leavesNotFound: 0),
        .init(name: "v999-pool", guid: 3320584530116608319, version: 999, state: .exported, topLevelType: .file, leafCount: 1, leavesNotFound: 0, hostID: 195113991),
        .init(name: "v3-pool.dat", guid: 2436691777953182892, version: 3, state: .exported, topLevelType: .file, leafCount: 1, leavesNotFound: 0),
    ]
}

/// The images, decompressed once per test process into one directory (removed at exit).
enum DecompressedImages {
    static func get() async throws -> String { try await offThePool { try FixtureImages.sharedDirectory() } }
}

@Suite(.offTheCooperativePool) struct FixtureImageDiscoveryTests {
    /// All sixteen images in one directory: nine pools, each with its name, guid, version,
    /// state and layout; the idle spare of the v3 pool is an aux device.
    @Test func everyImagePoolIsFound() async throws {
        let directory = try await DecompressedImages.get()
        let result = await ImportScanner(options: .zdb(searchPaths: [directory])).scan()
        #expect(result.pools.count == ExpectedImagePool.all.count)
        for expected in ExpectedImagePool.all {
            let pool = try result.pool(.guid(PoolGUID(expected.guid)))
            #expect(pool.name == expected.name)
            #expect(pool.version == expected.version, "\(expected)")
            #expect(pool.state == expected.state, "\(expected)")
            #expect(pool.hostID == expected.hostID, "\(expected)")
            #expect(pool.root.type == .root)
            #expect(pool.root.children.count == 1, "\(expected)")
            #expect(pool.root.children.first?.type == expected.topLevelType, "\(expected)")
            #expect(pool.root.leaves.count == expected.leafCount, "\(expected)")
            #expect(pool.root.leaves.filter { $0.presence == .notFound }.count == expected.leavesNotFound, "\(expected)")
            #expect(pool.isVersionSupported == (expected.version != 999), "\(expected)")
        }
        let small = try #require(result.devices.first { $0.path.hasSuffix("/zfs-broken-mirror1.dat") })
        #expect(small.note == .tooSmall(sizeInBytes: 66_985_984))
        let spare = try #require(result.devices.first { $0.path.hasSuffix("/zfs-pool-v3hotspare3.dat") })
        #expect(spare.role == .spare(VdevGUID(16823953747593073890)))
        #expect(result.auxiliaryDevices.map(\.guid) == [VdevGUID(16823953747593073890)])
    }

    /// Version 999 is a newer format, not damage: every label is accepted, the pool is
    /// assembled, and it is flagged unsupported with a note that says so.
    @Test func version999IsUnsupportedNotCorrupt() async throws {
        let directory = try await DecompressedImages.get()
        let result = await ImportScanner(options: .init(searchPaths: ["\(directory)/zfs-pool-v999.dat"], verifiesLabelChecksums: true)).scan()
        let pool = try result.pool(.name("v999-pool"))
        #expect(!pool.isVersionSupported)
        #expect(pool.notes.contains { $0.contains("version 999 is not supported") && $0.contains("not corrupt") })
        let device = try #require(result.devices.first)
        #expect(device.labelCount == 4)
        #expect(device.probe?.labels.allSatisfy { $0.verdict == .accepted && $0.checksum?.isValid == true } == true)
    }

    /// Each pool's assembled config equals zdb's "Configuration for import" for the same
    /// directory (zdb prints it even for v999, before refusing to open the pool).
    @Test(arguments: ExpectedImagePool.all)
    func imagePoolMatchesZdb(_ expected: ExpectedImagePool) async throws {
        try OpenZFS.requireInstalled()
        let directory = try await DecompressedImages.get()
        let result = await ImportScanner(options: .zdb(searchPaths: [directory])).scan()
        let pool = try result.pool(.guid(PoolGUID(expected.guid)))
        let identical = try await expectMatchesZdb(pool, directory: directory, target: "\(expected.guid)")
        #expect(identical, "same keys and values as zdb, but in another order")
    }
}
