// `zpk import -d DIR --config POOL --mos [--json]` on the OpenZFS test suite's v2 mirror
// images: zdb's "MOS Configuration" byte for byte, JSON, and a destroyed MOS.

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
        for n in 1...3 {
            let image = Fixtures.url("openzfs-images/zfs-pool-v2mirror\(n).dat.bz2").path
            let output = try OpenZFS.run(
                "/bin/sh", ["-c", "bunzip2 -c \"$0\" | cp --sparse=always /dev/stdin \"$1\"", image, directory.path("m\(n).dat")],
                timeout: .seconds(60))
            try #require(output.status == 0, "\(output)")
        }
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
