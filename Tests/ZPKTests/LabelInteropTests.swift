import Foundation
import Testing
import ZFSFormat
import ZFSTestSupport

@testable import ZPKCLI

#if canImport(Glibc)
import Glibc
#endif

// `zpk label`, `zpk label -u` and `zpk cache show` against real OpenZFS 2.1.11 on pools that
// ztest makes fresh for each run: every device of every pool (leaves, hot spares, cache
// devices), then the same devices with labels damaged on purpose. The output must be byte for
// byte what zdb prints, with the same exit status.
//
// The layouts are drawn at random; the seed is printed and can be pinned with ZPK_TEST_SEED
// to replay a failure. A fixed set of layouts (draid, ashift 12, raidz3, spares and cache
// devices) is always included so that every kind of device is covered on every run.

/// What a command printed and how it exited, comparable as one value.
struct Printed: Equatable, CustomStringConvertible {
    var text: String
    var status: Int32
    var description: String { "exit \(status)\n\(text)" }
}

func zdbPrinted(_ args: [String]) throws -> Printed {
    let answer = try OpenZFS.zdb(args)
    return Printed(text: answer.stdout, status: answer.status)
}

func zpkLabelPrinted(_ path: String, uberblocks: Bool) -> Printed {
    let output = ZdbLabelDump.run(path: path, uberblocks: uberblocks)
    return Printed(text: output.text, status: output.status)
}

/// Where two outputs first differ (for failure messages); the shorter length when one is a prefix.
func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
    (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
}

/// Compares `zpk label` and `zpk label -u` with zdb on one device.
func expectLabelsMatchZdb(_ path: String, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    for uberblocks in [false, true] {
        let zdb = try zdbPrinted([uberblocks ? "-lu" : "-l", path])
        let ours = zpkLabelPrinted(path, uberblocks: uberblocks)
        #expect(ours == zdb, "\(context): zpk label\(uberblocks ? " -u" : "") \(path)", sourceLocation: sourceLocation)
    }
}

@Suite(
    "zpk label and cache show against zdb on fresh pools", .offTheCooperativePool, .serialized)
struct LabelInteropTests {
    /// OpenZFS 2.1.11 is this suite's oracle: without it every test fails, naming the missing tool.
    init() throws {
        try OpenZFS.requireInstalled()
        // zdb's pinned environment runs in UTC; our in-process rendering must use the same zone.
        useUTCForLocalTime()
    }

    static let seed = TestSeed.value

    /// The layouts of this run: fixed ones that cover every device kind, plus random ones.
    static func specs() -> [ZTestPoolSpec] {
        var rng = SplitMix64(seed: seed)
        var specs = [
            ZTestPoolSpec(layout: .mirror(width: 2), poolName: "mirror"),
            ZTestPoolSpec(layout: .raidz(parity: 3, width: 5), ashift: 12, poolName: "rz3"),
            ZTestPoolSpec(layout: .draid(parity: 1, data: 2, spares: 1, children: 5), poolName: "dr"),
            ZTestPoolSpec(layout: .single, ashift: 13, poolName: "single"),
        ]
        var aux = ZTestPoolSpec(layout: .mirror(width: 2), poolName: "aux")
        aux.minimumSpares = 1
        aux.minimumL2CacheDevices = 1
        specs.append(aux)
        for _ in 0..<2 {
            specs.append(ZTestPoolSpec.random(using: &rng))
        }
        return specs
    }

    @Test func everyDeviceOfFreshPoolsPrintsAsZdbDoes() throws {
        print("LabelInteropTests seed \(Self.seed) (replay with ZPK_TEST_SEED=\(Self.seed))")
        var kinds: Set<String> = []
        for spec in Self.specs() {
            let directory = try TemporaryDirectory(prefix: "label-interop")
            let pool = try OpenZFS.makePool(spec, in: directory.path)
            for device in pool.deviceFiles {
                try expectLabelsMatchZdb(device, "\(spec) seed \(Self.seed)")
            }
            let cache = try OpenZFS.zdb(["-C", "-U", pool.cacheFile])
            let ours = CacheShow.run(path: pool.cacheFile, json: false)
            #expect(Printed(text: ours.stdout, status: ours.status) == Printed(text: cache.stdout, status: cache.status), "\(spec)")
            if !pool.spareDevices.isEmpty { kinds.insert("spare") }
            if !pool.l2cacheDevices.isEmpty { kinds.insert("l2cache") }
            kinds.insert(spec.layout.vdevType)
            kinds.insert("ashift\(spec.ashift)")
            withExtendedLifetime(directory) {}
        }
        #expect(kinds.isSuperset(of: ["mirror", "raidz", "draid", "file", "spare", "l2cache", "ashift9", "ashift12", "ashift13"]))
    }

    @Test func damagedLabelsPrintAsZdbDoes() throws {
        var rng = SplitMix64(seed: Self.seed &+ 1)
        for spec in [ZTestPoolSpec(layout: .mirror(width: 2), poolName: "dmg"),
                     ZTestPoolSpec(layout: .raidz(parity: 1, width: 3), ashift: 12, poolName: "dmg12")] {
            let directory = try TemporaryDirectory(prefix: "label-damage")
            let pool = try OpenZFS.makePool(spec, in: directory.path)
            let original = VdevFile(pool.leafDevices[0])
            func variant(_ name: String, _ damage: (VdevFile) throws -> Void) throws {
                let copy = try original.copy(to: directory.path + "/" + name)
                try damage(copy)
                try expectLabelsMatchZdb(copy.path, "\(spec) \(name)")
            }
            try variant("zero-0-1") { try $0.zeroLabel(0); try $0.zeroLabel(1) }
            try variant("zero-all") { for l in 0..<4 { try $0.zeroLabel(l) } }
            try variant("garbage-config-2") { try $0.fillConfig(ofLabel: 2, using: &rng) }
            try variant("garbage-config-0") { try $0.fillConfig(ofLabel: 0, using: &rng) }
            try variant("flip-uberblock") { file in
                let ring = try file.labelOffset(1) + VdevFile.uberblockRingOffset
                try file.flipBit(Int.random(in: 0..<8, using: &rng), atOffset: ring + UInt64(Int.random(in: 8..<200, using: &rng)))
                try file.flipBit(3, atOffset: ring + 0x10 + UInt64(1 << (spec.ashift < 10 ? 10 : min(spec.ashift, 13))))
            }
            try variant("flip-config") { file in
                try file.flipBit(Int.random(in: 0..<8, using: &rng), inLabel: 3, atOffset: VdevFile.configOffset + UInt64(Int.random(in: 16..<1500, using: &rng)))
            }
            if spec.ashift == 12 {
                // Label 0's config does not unpack, so zdb scans its ring with the ashift it had
                // (9: 1 KiB slots) and prints it with the final one (12: 4 KiB slots). With only
                // 4 KiB slots 1-3 left, their records sit at 1 KiB indices 4, 8 and 12, and zdb
                // prints the zeroed 4 KiB slots 4, 8 and 12 under them (magic 0, labels = 0 1 2 3).
                try variant("cross-ashift-ring") { file in
                    try file.fillConfig(ofLabel: 0, using: &rng)
                    let ring = try file.labelOffset(0) + VdevFile.uberblockRingOffset
                    for slot in 0..<32 where !(1...3).contains(slot) {
                        try file.write([UInt8](repeating: 0, count: 4096), at: ring + UInt64(slot * 4096))
                    }
                }
            }
            try variant("truncated-256k") { try $0.truncate(to: 256 << 10) }
            try variant("truncated-512k") { try $0.truncate(to: 512 << 10) }
            try variant("truncated-odd") { try $0.truncate(to: (64 << 20) - 12345) }
            try variant("truncated-small") { try $0.truncate(to: 100_000) }
            withExtendedLifetime(directory) {}
        }
    }

    @Test func filesThatAreNotVdevsPrintAsZdbDoes() throws {
        let directory = try TemporaryDirectory(prefix: "label-odd")
        var rng = SplitMix64(seed: Self.seed &+ 2)
        let random = directory.path + "/random.bin"
        var bytes = [UInt8](repeating: 0, count: 2 << 20)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &rng) }
        try Data(bytes).write(to: URL(fileURLWithPath: random))
        let empty = directory.path + "/empty"
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        let sub = directory.path + "/subdir"
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
        for path in [random, empty, sub, "/dev/null", directory.path + "/missing"] {
            try expectLabelsMatchZdb(path, "odd file")
        }
        withExtendedLifetime(directory) {}
    }

    /// A dRAID leaf whose label 1 has one bit flipped in byte 100 of its config nvlist, which is
    /// inside a pair *name* (the third pair's, "state", for a pool name of 5 to 8 bytes): the
    /// byte is no longer UTF-8 and zdb prints it raw (`%s`). zpk must print the same bytes, both
    /// the in-process renderer and the real binary (the comparison is on bytes, not on text
    /// decoded with U+FFFD).
    @Test func aNonUTF8ByteInAPairNamePrintsAsZdbsRawByte() throws {
        let directory = try TemporaryDirectory(prefix: "label-name-flip")
        let spec = ZTestPoolSpec(layout: .draid(parity: 1, data: 2, spares: 1, children: 5), poolName: "ztest")
        let pool = try OpenZFS.makePool(spec, in: directory.path)
        let victim = try VdevFile(pool.leafDevices[0]).copy(to: directory.path + "/name-flipped")
        let byteOffset = VdevFile.configOffset + 100
        try victim.flipBit(7, inLabel: 1, atOffset: byteOffset)
        let flipped = try victim.read(count: 1, at: try victim.labelOffset(1) + byteOffset)[0]
        #expect(flipped >= 0x80, "the flipped byte must not be ASCII")
        let zpk = try ZPKExecutable.url()
        for uberblocks in [false, true] {
            let zdb = try OpenZFS.zdbRaw([uberblocks ? "-lu" : "-l", victim.path])
            // zdb did print the label, raw byte included (so the case is the one in question)
            #expect(zdb.stdout.contains(flipped) && zdb.status == 0, "\(zdb)")
            let ours = ZdbLabelDump.run(path: victim.path, uberblocks: uberblocks)
            let same = ours.bytes == zdb.stdout  // (not inside #expect: it would print both outputs as numbers)
            #expect(same, "zpk label\(uberblocks ? " -u" : ""): first difference at byte \(firstDifference(ours.bytes, zdb.stdout))")
            #expect(ours.status == zdb.status)
            let binary = try OpenZFS.run(
                zpk.path, ["label"] + (uberblocks ? ["-u"] : []) + [victim.path], environment: OpenZFS.pinnedEnvironment,
                timeout: .seconds(60))
            let sameFromBinary = binary.stdout == zdb.stdout
            #expect(sameFromBinary, "zpk binary: first difference at byte \(firstDifference(binary.stdout, zdb.stdout))")
            #expect(binary.status == zdb.status)
        }
        withExtendedLifetime(directory) {}
    }

    /// The real binary, not just the in-process renderer: stdout and exit status.
    @Test func theZpkExecutableMatchesZdb() throws {
        let directory = try TemporaryDirectory(prefix: "label-exe")
        let pool = try OpenZFS.makePool(ZTestPoolSpec(layout: .mirror(width: 2), poolName: "exe"), in: directory.path)
        let zpk = try ZPKExecutable.url()
        let leaf = VdevFile(pool.leafDevices[1])
        let damaged = try leaf.copy(to: directory.path + "/damaged")
        try damaged.zeroLabel(0)
        let cases: [(zpk: [String], zdb: [String])] = [
            (["label", pool.leafDevices[1]], ["-l", pool.leafDevices[1]]),
            (["label", "-u", pool.leafDevices[1]], ["-lu", pool.leafDevices[1]]),
            (["label", "-u", damaged.path], ["-lu", damaged.path]),
        ]
        for (zpkArguments, zdbArguments) in cases {
            let ours = try OpenZFS.run(zpk.path, zpkArguments, environment: OpenZFS.pinnedEnvironment, timeout: .seconds(60))
            let zdb = try OpenZFS.zdb(zdbArguments)
            #expect(Printed(text: ours.stdoutText, status: ours.status) == Printed(text: zdb.stdout, status: zdb.status), "\(zpkArguments)")
        }
        let cache = try OpenZFS.run(zpk.path, ["cache", "show", pool.cacheFile], environment: OpenZFS.pinnedEnvironment, timeout: .seconds(60))
        let zdbCache = try OpenZFS.zdb(["-C", "-U", pool.cacheFile])
        #expect(Printed(text: cache.stdoutText, status: cache.status) == Printed(text: zdbCache.stdout, status: zdbCache.status))
        withExtendedLifetime(directory) {}
    }
}

/// Finds the `zpk` executable that SwiftPM built next to the test bundle.
enum ZPKExecutable {
    static func url() throws -> URL {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("zpk")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        throw ZPKExecutableNotFound(searchedFrom: CommandLine.arguments[0])
    }

    struct ZPKExecutableNotFound: Error, CustomStringConvertible {
        var searchedFrom: String
        var description: String { "the zpk executable was not found near \(searchedFrom); build it with `swift build`" }
    }
}
