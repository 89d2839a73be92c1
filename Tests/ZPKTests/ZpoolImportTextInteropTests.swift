// `zpk import -d DIR` against the real `zpool import -d DIR` of OpenZFS 2.1.11, byte for byte.
//
// The real, unmodified /usr/sbin/zpool runs with Tools/zpk-oracle's libzpk-zfsdev.so preloaded:
// it answers zpool's few /dev/zfs requests, and each ZFS_IOC_POOL_TRYIMPORT with libzpool's
// spa_tryimport (the kernel module's code) in a zpk-oracle process acting as the same host. So
// everything zpool prints -- state, status, action, message id, the vdev tree and its column
// widths -- comes from zpool and libzfs themselves (`ZPKOracle.zpoolImport`).
//
// Pools are made fresh by zpk-oracle (libzpool) as host-a (0x11111111) and listed by both sides
// as 0x22222222 unless the scenario says otherwise; the OpenZFS test suite's images are listed
// too, all in one directory.
//
// The one normalisation: zpk prints zpool's text and then, after a blank line, sentences of its
// own (ZpoolImportListing.footers and heartbeatFooter: who last used a pool that needs -f,
// which top-level vdev is missing, that zpool would run an activity check, heartbeat age). The
// test removes exactly those lines -- recomputed from our PoolHealth, the heartbeat line by its
// fixed prefix because it names the current time -- and the blank line before them, and
// nothing else. Any other difference fails.
//
// What only the MOS knows is compared too: zpk's listing reads the MOS where tryimport does
// (PoolHealth's ConfigSource), so a missing top-level vdev is printed as the MOS records it, a
// missing log device is BAD_GUID_SUM "missing device", and a pool whose MOS is destroyed on
// every copy is FAULTED "corrupted data" (CORRUPT_POOL). The MOS footers
// (ZPK.Import.mosFooterPrefixes) are zpk's own lines and are removed like the others. And
// `zpk import -c` against `zpool import -c` on a cache file written before two top-level vdevs
// were added: both complete the entry from the MOS.

import Foundation
import Testing
import ZFSDevice
import ZFSFormat
import ZFSTestSupport

@testable import ZFSImport
@testable import ZPKCLI

private let hostA = "11111111"
private let hostB: UInt32 = 0x2222_2222

/// What both sides printed for one directory.
private struct Listings: CustomStringConvertible {
    var zpool: (stdout: String, stderr: String, status: Int32)
    var zpk: ZPK.Import.Output
    /// zpk's stdout without the lines zpk adds.
    var zpkNormalised: String
    var removed: [String]

    var description: String {
        "--- zpool import (exit \(zpool.status))\n\(zpool.stdout)--- zpool stderr\n\(zpool.stderr)"
            + "--- zpk import (exit \(zpk.status)), normalised\n\(zpkNormalised)--- lines removed\n"
            + removed.joined(separator: "\n") + "\n--- zpk stderr\n\(zpk.stderr)"
    }
}

/// Lists `directory` with the real zpool and with zpk, both as host `hostID` (`destroyed`: the
/// destroyed pools, `-D`).
private func listBoth(
    _ directory: String, as hostID: UInt32, destroyed: Bool = false, oracleOptions: [String] = []
) throws -> Listings {
    let zpool = try ZPKOracle.zpoolImport(
        (destroyed ? ["-D"] : []) + ["-d", directory], hostID: hostID, oracleOptions: oracleOptions)
    let environment = ["ZFS_HOSTID": "0x" + String(hostID, radix: 16)]
    var zpk = ZPK.Import.run(searchPaths: [directory], destroyed: destroyed, config: nil, environment: environment)
    let scan = ImportScanner(
        options: .init(searchPaths: [directory], destroyedPools: destroyed ? .only : .exclude)).scan()
    let healths = scan.pools.map { PoolHealth.assess($0, in: scan, localHostID: UInt64(hostID)) }
    if hostID == 0 {
        // zpk, like zpool, falls back to /etc/hostid when ZFS_HOSTID is 0, and this machine's
        // /etc/hostid cannot be hidden from the test process. So host id 0 takes the step
        // below ZPK.Import.run: the same assessment and rendering, with the local host id
        // given as 0.
        zpk = ZPK.Import.Output(
            stdout: healths.map { ZpoolImportListing.render($0) }.joined(separator: "\n"), stderr: "", status: 0)
    }
    let (normalised, removed) = withoutZPKAdditions(zpk.stdout, healths)
    return Listings(zpool: zpool, zpk: zpk, zpkNormalised: normalised, removed: removed)
}

/// `text` without the footer lines zpk adds to `healths`' listings (and the blank line that
/// opens each run of them), plus the lines removed.
private func withoutZPKAdditions(_ text: String, _ healths: [PoolHealth]) -> (String, [String]) {
    let ours = Set(healths.flatMap { ZpoolImportListing.footers($0, time: ZdbLabelDump.localAsctime) }.map { "\t" + $0 })
    // …and what zpk read from the MOS (ZPK.Import.mosFooter), which zpool's listing does not say.
    func isOurs(_ line: Substring) -> Bool {
        ours.contains(String(line)) || line.hasPrefix("\tMultihost: newest heartbeat ")
            || ZPK.Import.mosFooterPrefixes.contains { line.hasPrefix($0) }
    }
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    // The line that says what zpk itself can do with the pool: one per pool, right after
    // zpool's own text for it, always with this prefix.
    let prefixes = [ZpoolImportListing.zpkLinePrefix]
    func isLineOfOurs(_ line: Substring) -> Bool { prefixes.contains { line.hasPrefix($0) } }
    var removed = lines.filter(isLineOfOurs).map(String.init)
    lines.removeAll(where: isLineOfOurs)
    var index = 0
    while index < lines.count {
        // A blank line followed by one or more of our lines: drop them all.
        if lines[index].isEmpty, index + 1 < lines.count, isOurs(lines[index + 1]) {
            var end = index + 1
            while end < lines.count, isOurs(lines[end]) { end += 1 }
            removed += lines[(index + 1)..<end].map(String.init)
            lines.removeSubrange(index..<end)
            continue
        }
        index += 1
    }
    return (lines.joined(separator: "\n"), removed)
}

/// Runs zpk-oracle (libzpool), requiring success.
@discardableResult
private func oracle(_ args: [String]) throws -> String {
    let out = try ZPKOracle.run(args, timeout: .seconds(120))
    guard out.status == 0 else {
        throw ZPKOracle.Failure("zpk-oracle \(args.joined(separator: " ")) exited \(out.status)", stdout: out.stdout, stderr: out.stderr)
    }
    return out.stdout
}

/// Zeroes (punches out) every leaf's allocatable space, between the front labels and boot area
/// (4 MiB) and the back labels: every copy of every MOS block is gone, the labels and their
/// uberblocks stay.
private func destroyMetadata(in directory: String) throws {
    for file in try FileManager.default.contentsOfDirectory(atPath: directory) where file.hasSuffix(".img") {
        let path = "\(directory)/\(file)"
        let size = try VdevFile(path).size()
        let output = try OpenZFS.run(
            "/usr/bin/fallocate", ["--punch-hole", "--offset", "\(4 << 20)", "--length", "\(size - (4 << 20) - (512 << 10))", path],
            timeout: .seconds(60))
        guard output.status == 0 else { throw ZPKOracle.Failure("fallocate --punch-hole \(path): \(output)") }
    }
}

private func create(_ pool: String, in directory: String, _ layout: [String], extra: [String] = []) throws {
    try oracle(["create", pool, "-d", directory, "--hostid", hostA, "--hostname", "host-a"] + extra + layout)
}

/// Rewrites the four labels of `path` with a neighbor list describing the other top-level vdevs
/// of its pool (as scanned in `directory` now), keeping each label's uberblock ring.
private func addNeighborList(to path: String, scanning directory: String) throws {
    let scan = ImportScanner(options: .init(searchPaths: [directory])).scan()
    guard let pool = scan.pools.first, scan.pools.count == 1 else {
        throw ZPKOracle.Failure("expected one pool in \(directory), found \(scan.pools.count)")
    }
    let device = try FileBlockDevice(path: path, mode: .readWrite)
    defer { try? device.close() }
    for (index, offset) in DeviceLabels.labelOffsets(deviceSize: device.sizeInBytes).enumerated() {
        guard let offset else { continue }
        let bytes = try device.read(count: VdevLabel.byteCount, atAbsoluteOffset: offset)
        let label = try VdevLabel(decoding: bytes, absoluteOffset: offset, index: index)
        let config = try NVList(decoding: try label.verifiedConfigBytes())
        let updated = NeighborRecord.label(config, withNeighborsFrom: pool.root)
        let encoded = try VdevLabel.encode(
            configPacked: try updated.encoded(as: .xdr), bootEnvironment: label.bootEnvironment,
            ring: .encoded(Array(bytes[VdevLabel.uberblockRingOffset...])), labelOffset: offset, byteOrder: .little)
        try device.write(encoded, atAbsoluteOffset: offset)
    }
    try device.flush()
}

@Suite(.offTheCooperativePool) struct ZpoolImportTextInteropTests {
    init() throws { try OpenZFS.requireInstalled() }

    /// A scenario: builds its pools in `directory` and says which host lists them.
    struct Scenario: Sendable, CustomTestStringConvertible {
        var name: String
        var pools: Int
        var listedAs: UInt32 = hostB
        var destroyed = false
        var build: @Sendable (String) throws -> Void
        var testDescription: String { name }

        static let all: [Scenario] = [
            Scenario(name: "healthy mirror", pools: 1) { dir in
                try create("healthy", in: dir, ["mirror", "a.img", "b.img"])
            },
            Scenario(name: "degraded mirror (a file gone)", pools: 1) { dir in
                try create("degraded", in: dir, ["mirror", "a.img", "b.img"])
                try FileManager.default.removeItem(atPath: "\(dir)/b.img")
            },
            // Without the MOS, zpk shows a missing top-level vdev as `missing-N` unless a
            // neighbor list in the surviving labels describes it (ZFSImport's
            // TopLevelNeighbors); zpool reads it from the MOS. With the list, the texts agree.
            Scenario(name: "missing top-level vdev named by a neighbor list", pools: 1) { dir in
                try create("stripe", in: dir, ["a.img", "mirror", "b.img", "c.img"])
                try addNeighborList(to: "\(dir)/a.img", scanning: dir)
                try FileManager.default.removeItem(atPath: "\(dir)/b.img")
                try FileManager.default.removeItem(atPath: "\(dir)/c.img")
            },
            // zpool names the vdev from the MOS: "mirror-1" and its two leaves, "cannot open".
            Scenario(name: "missing top-level vdev named from the MOS", pools: 1) { dir in
                try create("stripe", in: dir, ["a.img", "mirror", "b.img", "c.img"])
                try FileManager.default.removeItem(atPath: "\(dir)/b.img")
                try FileManager.default.removeItem(atPath: "\(dir)/c.img")
            },
            // The MOS says top-level 1 was a log: BAD_GUID_SUM "missing device" (ZFS-8000-6X),
            // the log listed under "logs", and zpool's "Additional devices" note.
            Scenario(name: "missing log device", pools: 1) { dir in
                try create("withlog", in: dir, ["mirror", "a.img", "b.img", "log", "c.img"])
                try FileManager.default.removeItem(atPath: "\(dir)/c.img")
            },
            // Labels and uberblocks intact, every MOS block gone: FAULTED "corrupted data",
            // CORRUPT_POOL (ZFS-8000-72), the tree as the labels give it.
            Scenario(name: "MOS destroyed on every copy", pools: 1) { dir in
                try create("nomos", in: dir, ["mirror", "a.img", "b.img"])
                try destroyMetadata(in: dir)
            },
            Scenario(name: "raidz1 with two files gone", pools: 1) { dir in
                try create("rz", in: dir, ["raidz", "a.img", "b.img", "c.img"])
                try FileManager.default.removeItem(atPath: "\(dir)/b.img")
                try FileManager.default.removeItem(atPath: "\(dir)/c.img")
            },
            Scenario(name: "labels 0 and 1 of a leaf damaged", pools: 1) { dir in
                try create("scarred", in: dir, ["mirror", "a.img", "b.img"])
                let leaf = VdevFile("\(dir)/a.img")
                try leaf.zeroLabel(0)
                try leaf.flipBit(3, inLabel: 1, atOffset: VdevFile.configOffset + 100)
            },
            Scenario(name: "a leaf with no valid label", pools: 1) { dir in
                try create("blank", in: dir, ["mirror", "a.img", "b.img"])
                for label in 0..<4 { try VdevFile("\(dir)/b.img").zeroLabel(label) }
            },
            Scenario(name: "log, cache and spare", pools: 1) { dir in
                try create("classes", in: dir, ["mirror", "a.img", "b.img", "log", "c.img", "cache", "d.img", "spare", "e.img"])
            },
            Scenario(name: "two pools in one directory", pools: 2) { dir in
                try create("first", in: dir, ["mirror", "a.img", "b.img"])
                try create("second", in: dir, ["raidz2", "c.img", "d.img", "e.img", "f.img"])
            },
            Scenario(name: "left imported by another host", pools: 1) { dir in
                try create("elsewhere", in: dir, ["mirror", "a.img", "b.img"])
                try oracle(["import", "elsewhere", "-d", dir, "--hostid", hostA, "--hostname", "host-a", "--no-export"])
            },
            Scenario(name: "left imported, listed by that host", pools: 1, listedAs: 0x1111_1111) { dir in
                try create("athome", in: dir, ["mirror", "a.img", "b.img"])
                try oracle(["import", "athome", "-d", dir, "--hostid", hostA, "--hostname", "host-a", "--no-export"])
            },
            // zpool's listing runs the MMP activity check (in tryimport) and finds no heartbeat.
            Scenario(name: "multihost holder crashed", pools: 1) { dir in
                try create("mmp", in: dir, ["mirror", "a.img", "b.img"])
                try oracle([
                    "hold", "mmp", "-d", dir, "--seconds", "1", "--no-export", "--multihost", "on",
                    "--interval-ms", "100", "--fail-intervals", "10", "--hostid", hostA, "--hostname", "host-a",
                ])
            },
            // A destroyed pool is listed only with -D ("state: ONLINE (DESTROYED)"); the
            // live pool beside it only without.
            Scenario(name: "destroyed pool, -D", pools: 1, destroyed: true) { dir in
                try create("gone", in: dir, ["mirror", "a.img", "b.img"])
                try create("kept", in: dir, ["c.img"])
                try oracle(["destroy", "gone", "-d", dir, "--hostid", hostA, "--hostname", "host-a"])
            },
            Scenario(name: "destroyed pool, without -D", pools: 1) { dir in
                try create("gone", in: dir, ["mirror", "a.img", "b.img"])
                try create("kept", in: dir, ["c.img"])
                try oracle(["destroy", "gone", "-d", dir, "--hostid", hostA, "--hostname", "host-a"])
            },
            Scenario(name: "multihost pool exported", pools: 1) { dir in
                try create("mmpoff", in: dir, ["mirror", "a.img", "b.img"], extra: ["--multihost", "on"])
            },
            // tryimport refuses a multihost pool to a host without a host id (HOSTID_REQUIRED).
            Scenario(name: "multihost pool, listed by a host without a host id", pools: 1, listedAs: 0) { dir in
                try create("nohostid", in: dir, ["mirror", "a.img", "b.img"], extra: ["--multihost", "on"])
            },
        ]
    }

    @Test(arguments: Scenario.all)
    func listingIsZpoolImportsByteForByte(_ scenario: Scenario) throws {
        try OpenZFS.requireInstalled()
        let directory = try TemporaryDirectory(prefix: "zpool-text")
        try scenario.build(directory.path)
        let listings = try listBoth(directory.path, as: scenario.listedAs, destroyed: scenario.destroyed)
        #expect(listings.zpool.status == 0 && listings.zpk.status == 0, "\(listings)")
        #expect(listings.zpool.stdout.components(separatedBy: "   pool: ").count - 1 == scenario.pools, "\(listings)")
        #expect(listings.zpkNormalised == listings.zpool.stdout, "\(scenario.name)\n\(listings)")
        #expect(listings.zpk.stderr.isEmpty, "\(listings)")
        withExtendedLifetime(directory) {}
    }

    /// Pools written by ztest (OpenZFS's own stress test, host id 0x11111111): a mirror, a
    /// raidz3 at ashift 12, a dRAID with a distributed spare (zpool's `draid1:2d:5c:1s-0`
    /// naming) and a mirror whose tree ztest changed while it ran (spares, cache devices, often
    /// logs; 2.1.11's `zpool import` lists the logs but neither spares nor cache devices).
    @Test(arguments: ["mirror", "raidz3", "draid", "churned"])
    func ztestPoolListingIsZpoolImportsByteForByte(_ kind: String) throws {
        var spec: ZTestPoolSpec
        switch kind {
        case "mirror": spec = ZTestPoolSpec(layout: .mirror(width: 3), poolName: "zmirror")
        case "raidz3": spec = ZTestPoolSpec(layout: .raidz(parity: 3, width: 5), ashift: 12, poolName: "zraidz")
        case "draid": spec = ZTestPoolSpec(layout: .draid(parity: 1, data: 2, spares: 1, children: 5), poolName: "zdraid")
        default:
            spec = ZTestPoolSpec(layout: .mirror(width: 2), poolName: "zchurn")
            spec.minimumSpares = 1
            spec.minimumL2CacheDevices = 1
        }
        spec.hostID = 0x1111_1111
        let directory = try TemporaryDirectory(prefix: "zpool-text-ztest")
        let pool = try OpenZFS.makePool(spec, in: directory.path)
        let listings = try listBoth(pool.directory, as: hostB)
        #expect(listings.zpool.status == 0 && listings.zpk.status == 0, "\(listings)")
        #expect(listings.zpool.stdout.hasPrefix("   pool: \(spec.poolName)\n"), "\(listings)")
        #expect(listings.zpkNormalised == listings.zpool.stdout, "\(kind) \(pool)\n\(listings)")
        // --json says where the answer came from: the MOS, or (a MOS zpk does not read, dRAID
        // today) the labels alone, with the reason.
        let json = ZPK.Import.run(
            searchPaths: [pool.directory], destroyed: false, config: nil, json: true,
            environment: ["ZFS_HOSTID": "0x" + String(hostB, radix: 16)])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let entry = try #require((object["pools"] as? [[String: Any]])?.first, "\(json.stdout)")
        let mos = try #require(entry["mos"] as? [String: Any], "\(json.stdout)")
        if mos["read"] as? Bool == true {
            #expect(entry["config_source"] as? String == "mos", "\(json.stdout)")
        } else {
            #expect(kind == "draid", "only dRAID's MOS is left unread: \(json.stdout)")
            #expect(entry["config_source"] as? String == "labels", "\(json.stdout)")
            #expect(mos["answer"] as? String == "label-only" && mos["metadata_damaged"] as? Bool == false, "\(json.stdout)")
        }
        withExtendedLifetime(directory) {}
    }

    /// A ztest pool with two or more top-level vdevs, one top-level vdev's files removed: zpool
    /// (and zpk) name it from the MOS, as ztest's churn left it (a mirror, a raidz, or a log).
    @Test func ztestPoolWithAMissingTopLevelVdevIsZpoolImportsByteForByte() throws {
        var spec = ZTestPoolSpec(layout: .mirror(width: 2), poolName: "zmissing")
        spec.minimumTopLevelVdevs = 2
        spec.hostID = 0x1111_1111
        let directory = try TemporaryDirectory(prefix: "zpool-text-ztest-missing")
        let pool = try OpenZFS.makePool(spec, in: directory.path)
        let victim = try #require(pool.concreteTopLevelVdevs.last { !$0.leafPaths.isEmpty }, "\(pool)")
        try #require(pool.concreteTopLevelVdevs.count >= 2, "\(pool)")
        for path in victim.leafPaths { try FileManager.default.removeItem(atPath: path) }
        let listings = try listBoth(pool.directory, as: hostB)
        #expect(listings.zpool.status == 0 && listings.zpk.status == 0, "\(listings)")
        #expect(listings.zpool.stdout.contains(victim.leafPaths[0]), "zpool did not name the missing vdev's leaf\n\(listings)")
        #expect(!listings.zpk.stdout.contains("missing-"), "\(listings)")
        #expect(listings.zpkNormalised == listings.zpool.stdout, "\(pool)\n\(listings)")
        withExtendedLifetime(directory) {}
    }

    /// The essay's footnote: a cache file written while the pool had one top-level vdev, then
    /// two more added (the cache file not told). `zpool import -c` hands the stale entry to
    /// tryimport, which opens the MOS and lists all three; zpk does the same, byte for byte,
    /// and names the stale entry and the MOS's extra vdevs (text and --json).
    @Test func staleCacheFileIsCompletedFromTheMOS() throws {
        try OpenZFS.requireInstalled()
        let directory = try TemporaryDirectory(prefix: "zpool-text-stale-cache")
        let dir = directory.path
        let live = "\(dir)/zpool.cache"
        let stale = "\(dir)/before-add.cache"
        // OpenZFS writes the entry (cachefile property); --no-export keeps it there.
        try create("grown", in: dir, ["mirror", "a.img", "b.img"], extra: ["--cachefile", live, "--no-export"])
        try FileManager.default.copyItem(atPath: live, toPath: stale)
        try oracle(["add", "grown", "-d", dir, "--hostid", hostA, "--hostname", "host-a", "c.img", "mirror", "d.img", "e.img"])
        let cache = try CacheFile.read(at: stale)
        try #require(cache.entries.first?.vdevTree.flatMap { VdevNode(config: $0).children.count } == 1, "the cache file already knows the new vdevs")

        let zpool = try ZPKOracle.zpoolImport(["-c", stale], hostID: hostB)
        let environment = ["ZFS_HOSTID": "0x" + String(hostB, radix: 16)]
        let zpk = ZPK.Import.run(searchPaths: [], destroyed: false, config: nil, environment: environment, cacheFile: stale)
        let scan = cache.scanDevices(path: stale)
        let healths = scan.pools.map { PoolHealth.assess($0, in: scan, localHostID: UInt64(hostB)) }
        let (normalised, removed) = withoutZPKAdditions(zpk.stdout, healths)
        let listings = Listings(zpool: zpool, zpk: zpk, zpkNormalised: normalised, removed: removed)
        #expect(zpool.status == 0 && zpk.status == 0, "\(listings)")
        #expect(zpool.stdout.contains("\(dir)/e.img"), "zpool did not list the added vdevs\n\(listings)")
        #expect(normalised == zpool.stdout, "\(listings)")
        let staleLine = "\tThe cache file's entry for 'grown' in \(stale) (txg "
        #expect(zpk.stdout.contains(staleLine), "\(listings)")
        #expect(zpk.stdout.contains("top-level vdevs 1 (\(dir)/c.img, guid "), "\(listings)")
        #expect(zpk.stdout.contains(", 2 (mirror of \(dir)/d.img, \(dir)/e.img, guid "), "\(listings)")

        let json = ZPK.Import.run(searchPaths: [], destroyed: false, config: nil, json: true, environment: environment, cacheFile: stale)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let pool = try #require((object["pools"] as? [[String: Any]])?.first, "\(json.stdout)")
        #expect(pool["config_source"] as? String == "mos", "\(json.stdout)")
        #expect(pool["health"] as? String == "ONLINE", "\(json.stdout)")
        let mos = try #require(pool["mos"] as? [String: Any], "\(json.stdout)")
        #expect(mos["stale_cache_entry"] as? Bool == true, "\(json.stdout)")
        let extra = try #require(mos["extra_top_level_vdevs"] as? [[String: Any]], "\(json.stdout)")
        #expect(extra.compactMap { $0["id"] as? Int } == [1, 2], "\(json.stdout)")
        #expect(extra.last?["paths"] as? [String] == ["\(dir)/d.img", "\(dir)/e.img"], "\(json.stdout)")
        withExtendedLifetime(directory) {}
    }

    /// The OpenZFS test suite's images (nine pools: versions 1 to 28 and 5000, a newer-than-
    /// supported v999, mirrors, raidz, a hot spare, an unclean multihost export) in one
    /// directory: one `zpool import` listing, the same order, the same text. The activity
    /// check of unclean_export runs with short tunables (about 1 s).
    @Test func imagePoolsListingIsZpoolImportsByteForByte() throws {
        try OpenZFS.requireInstalled()
        let directory = try TemporaryDirectory(prefix: "zpool-text-images")
        for image in try FixtureImages.names() { try FixtureImages.copy(image, to: directory.path(image)) }
        let listings = try listBoth(
            directory.path, as: hostB, oracleOptions: ["--interval-ms", "100", "--import-intervals", "1"])
        #expect(listings.zpool.status == 0 && listings.zpk.status == 0, "\(listings)")
        #expect(listings.zpool.stdout.components(separatedBy: "   pool: ").count - 1 == 9, "\(listings)")
        #expect(listings.zpkNormalised == listings.zpool.stdout, "\(listings)")
        withExtendedLifetime(directory) {}
    }

    /// The normalisation removes our footers and nothing of zpool's: the BAD_GUID_SUM note
    /// (zpool's own, same shape) stays.
    @Test func normalisationRemovesOnlyOurLines() {
        let text = "x\n config:\n\n\tp  ONLINE\n\n\tAdditional devices are known to be part of this pool, though their\n"
            + "\n\tMultihost: newest heartbeat 3 s ago (txg 9); `zpk activity p` watches it and gives a verdict.\n"
        let (normalised, removed) = withoutZPKAdditions(text, [])
        #expect(normalised == "x\n config:\n\n\tp  ONLINE\n\n\tAdditional devices are known to be part of this pool, though their\n")
        #expect(removed.count == 1)
    }
}
