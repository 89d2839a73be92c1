import Foundation
import Testing
import ZFSTestSupport

@testable import ZPKCLI

/// `zpk import -d DIR [-D] [--config POOL|GUID]` on the OpenZFS test suite's v2 mirror images.
@Suite struct ImportCommandTests {
    /// The three images of `pool-v2mirror`, decompressed (sparse) into a fresh directory.
    private func withMirrorImages<R>(_ body: (String) throws -> R) throws -> R {
        let directory = try TemporaryDirectory(prefix: "import-command")
        for n in 1...3 {
            let image = Fixtures.url("openzfs-images/zfs-pool-v2mirror\(n).dat.bz2").path
            let output = try OpenZFS.run(
                "/bin/sh", ["-c", "bunzip2 -c \"$0\" | cp --sparse=always /dev/stdin \"$1\"", image, directory.path("m\(n).dat")],
                timeout: .seconds(60))
            try #require(output.status == 0, "\(output)")
        }
        return try withExtendedLifetime(directory) { try body(directory.path) }
    }

    @Test func configIsZdbsConfigurationForImport() throws {
        try withMirrorImages { directory in
            let byName = ZPK.Import.run(searchPaths: [directory], destroyed: false, config: "pool-v2mirror", environment: [:])
            #expect(byName.status == 0 && byName.stderr.isEmpty)
            #expect(byName.stdout.hasPrefix("\nConfiguration for import:\n        version: 2\n        pool_guid: 18099148996036948200\n"))
            #expect(byName.stdout.contains("                    path: '\(directory)/m2.dat'\n"))
            let byGUID = ZPK.Import.run(searchPaths: [directory], destroyed: false, config: "18099148996036948200", environment: [:])
            #expect(byGUID == byName)
            if OpenZFS.isInstalled {
                let zdb = try OpenZFS.zdb(["-e", "-p", directory, "-CC", "pool-v2mirror"], currentDirectory: directory)
                let start = try #require(zdb.stdout.firstRange(of: "\nConfiguration for import:\n"))
                #expect(zdb.stdout[start.lowerBound...].hasPrefix(byName.stdout))
            }
        }
    }

    @Test func listingAndErrors() throws {
        try withMirrorImages { directory in
            let listing = ZPK.Import.run(searchPaths: [directory], destroyed: false, config: nil, environment: [:])
            #expect(listing.status == 0)
            #expect(listing.stdout.hasPrefix("   pool: pool-v2mirror\n     id: 18099148996036948200\n  label: EXPORTED, txg 12, version 2\ndevices: 3 of 3 leaves found\n"))
            let missing = ZPK.Import.run(searchPaths: [directory], destroyed: false, config: "tank", environment: [:])
            #expect(missing == .init(stdout: "", stderr: "cannot import 'tank': no such pool available\n", status: 1))
            let destroyed = ZPK.Import.run(searchPaths: [directory], destroyed: true, config: nil, environment: [:])
            #expect(destroyed == .init(stdout: "", stderr: "no pools available to import\n", status: 1))
        }
    }
}
