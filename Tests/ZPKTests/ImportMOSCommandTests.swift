// `zpk import -d DIR --config POOL --mos [--json]` on the OpenZFS test suite's v2 mirror
// images: zdb's "MOS Configuration" byte for byte, JSON, and a destroyed MOS; and on a fresh
// random dRAID pool (seed printed; ZPK_MOS_SEED replays it).

import Foundation
import Testing
import ZFSFormat
import ZFSImport
import ZFSTestSupport

@testable import ZPKCLI

@Suite(.offTheCooperativePool) struct ImportMOSCommandTests {
    /// The three images of `pool-v2mirror`, decompressed (sparse) into a fresh directory.
    private func withMirrorImages<R>(_ body: (String) throws -> R) throws -> R {
        let directory = try TemporaryDirectory(prefix: "import-mos")
        for n in 1...3 { try FixtureImages.copy("zfs-pool-v2mirror\(n).dat", to: directory.path("m\(n).dat")) }
        return try withExtendedLifetime(directory) { try body(directory.path) }
    }

    private static func run(_ directory: String, json: Bool = false) -> ZPK.Import.Output {
        ZPK.Import.run(searchPaths: [directory], destroyed: false, config: "pool-v2mirror", json: json, environment: [:], mos: true)
    }

    @Test func mosConfigIsZdbsMOSConfiguration() throws {
        try withMirrorImages { directory in
            let output = Self.run(directory)
            #expect(output.status == 0 && output.stderr.isEmpty, "\(output)")
            #expect(output.stdout.hasPrefix("\nMOS Configuration:\n        version: 2\n        name: 'pool-v2mirror'\n"))
            // The MOS keeps the paths the pool had when it was written, not the scanned ones.
            #expect(!output.stdout.contains(directory))
            try OpenZFS.requireInstalled()
            let zdb = try OpenZFS.zdb(["-e", "-p", directory, "-C", "pool-v2mirror"], currentDirectory: directory)
            #expect(ZdbMOSText.extract(fromZdbOutput: zdb.stdout) == output.stdout, "zdb:\n\(zdb.stdout)")

            // The listing reads the MOS too: nothing to add in text, a "mos" member in JSON.
            let listing = ZPK.Import.run(searchPaths: [directory], destroyed: false, config: nil, json: true, environment: [:])
            #expect(listing.stdout.contains("\"mos\": {\n        \"read\": true,\n        \"txg\": "), "\(listing.stdout)")
            let text = ZPK.Import.run(searchPaths: [directory], destroyed: false, config: nil, environment: [:])
            // (zpk's own verdict line, "    zpk: ", may name ZPoolKit's MOS: it is not the MOS footer.)
            let withoutVerdict = text.stdout.split(separator: "\n").filter { !$0.hasPrefix("    zpk: ") }.joined(separator: "\n")
            #expect(!withoutVerdict.contains("MOS") && !withoutVerdict.contains("metadata"), "\(text.stdout)")

            let json = Self.run(directory, json: true)
            #expect(json.status == 0)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(object["version"] as? Int == 2)
            #expect(object["name"] as? String == "pool-v2mirror")
        }
    }

    /// A random dRAID1-3 pool from ztest: zdb's "MOS Configuration" byte for byte.
    @Test func draidMOSConfigIsZdbsMOSConfiguration() throws {
        try OpenZFS.requireInstalled()
        let seed = ProcessInfo.processInfo.environment["ZPK_MOS_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        var rng = SplitMix64(seed: seed)
        let parity = Int.random(in: 1...3, using: &rng)
        let data = Int.random(in: 1...4, using: &rng)
        let spares = Int.random(in: 1...2, using: &rng)
        // ztest turns `-r 4` (its default) into 16 children for a dRAID: ask for 5 instead.
        let children = data + parity + spares + Int.random(in: 0...2, using: &rng)
        let spec = ZTestPoolSpec(
            layout: .draid(parity: parity, data: data, spares: spares, children: children == 4 ? 5 : children),
            ashift: 12, poolName: "dr")
        print("ImportMOSCommandTests: \(spec) from seed \(seed) (ZPK_MOS_SEED=\(seed) replays it)")
        let directory = try TemporaryDirectory(prefix: "import-mos-draid")
        let pool = try OpenZFS.makePool(spec, in: directory.path)
        let files = try #require((pool.deviceFiles.first as NSString?)?.deletingLastPathComponent)
        let output = ZPK.Import.run(searchPaths: [files], destroyed: false, config: "dr", json: false, environment: [:], mos: true)
        #expect(output.status == 0 && output.stderr.isEmpty, "\(output); \(spec)")
        let zdb = try OpenZFS.zdb(["-e", "-p", files, "-C", "dr"], currentDirectory: files)
        let block = try #require(ZdbMOSText.extract(fromZdbOutput: zdb.stdout), "zdb:\n\(zdb.stdout)")
        #expect(block == output.stdout, "\(spec); zdb:\n\(zdb.stdout)")
        #expect(output.stdout.contains("type: 'draid'"))
        withExtendedLifetime(directory) {}
    }

    /// Every device's allocatable space zeroed: the labels still find the pool, its MOS is gone.
    @Test func destroyedMOSSaysMetadataIsDamaged() throws {
        try withMirrorImages { directory in
            for n in 1...3 {
                let file = VdevFile("\(directory)/m\(n).dat")
                let size = try file.size()
                var offset: UInt64 = 4 << 20
                while offset < size - (512 << 10) {
                    let count = Int(min(1 << 20, size - (512 << 10) - offset))
                    try file.write([UInt8](repeating: 0xA5, count: count), at: offset)
                    offset += UInt64(count)
                }
            }
            let output = Self.run(directory)
            #expect(output.status == 1)
            #expect(output.stdout.isEmpty)
            #expect(output.stderr.hasPrefix("cannot read the MOS config of 'pool-v2mirror': the pool metadata is damaged: cannot read the MOS objset"), "\(output.stderr)")
            #expect(output.stderr.contains("\(directory)/m1.dat at offset 0x"), "\(output.stderr)")
            #expect(output.stderr.contains("checksum mismatch"), "\(output.stderr)")
            // The listing says why after zpool's text…
            let text = ZPK.Import.run(searchPaths: [directory], destroyed: false, config: nil, environment: [:])
            #expect(text.status == 0)
            #expect(text.stdout.contains("\n\tThe pool metadata is damaged: cannot read the MOS objset"), "\(text.stdout)")
            // …and, as tryimport, lists it FAULTED "corrupted data" (CORRUPT_POOL), judged from the MOS read.
            #expect(text.stdout.contains("  state: FAULTED\nstatus: The pool metadata is corrupted.\n"), "\(text.stdout)")
            #expect(text.stdout.contains("\tpool-v2mirror                          FAULTED  corrupted data\n"), "\(text.stdout)")
            let json = ZPK.Import.run(searchPaths: [directory], destroyed: false, config: nil, json: true, environment: [:])
            #expect(json.stdout.contains("\"mos\": {\n        \"read\": false,\n        \"metadata_damaged\": true,"), "\(json.stdout)")
            #expect(json.stdout.contains("\"answer\": \"faulted\""), "\(json.stdout)")
            #expect(json.stdout.contains("\"config_source\": \"mos\""), "\(json.stdout)")
        }
    }

    /// The real binary: `--mos` needs `--config`; with it, zdb's block and exit 0.
    @Test func theZpkExecutablePrintsTheMOSConfig() throws {
        try withMirrorImages { directory in
            let zpk = try ZPKExecutable.url()
            let refused = try OpenZFS.run(zpk.path, ["import", "-d", directory, "--mos"], environment: OpenZFS.pinnedEnvironment, timeout: .seconds(60))
            #expect(refused.status == 64, "\(refused)")
            #expect(refused.stderrText.contains("Please use --mos with --config POOL"), "\(refused)")
            let ours = try OpenZFS.run(
                zpk.path, ["import", "-d", directory, "--config", "18099148996036948200", "--mos"], environment: OpenZFS.pinnedEnvironment,
                timeout: .seconds(60))
            #expect(ours.status == 0)
            #expect(ours.stdoutText == Self.run(directory).stdout)
        }
    }
}
