// scan-bench: pool discovery (ImportScanner) over 100, 1,000 and 5,000 file vdevs, against just
// reading the same label bytes — a C pread loop and `dd` — in the same run.
//
//   swift run -c release scan-bench [--counts 100,1000,5000] [--rounds 7] [--cold-rounds 3]
//                                   [--irrelevant 10000] [--directory DIR] [--keep] [--no-dd]
//   swift run -c release scan-bench --profile DIR [--passes 20]   # only our scan of DIR, for perf
//
// Devices. Pools of 100 leaves each (ten raidz2 vdevs of ten 64 MiB files), labels generated
// with ZFSFormat the way OpenZFS 2.1.11 lays them out (XDR config, embedded SHA-256 trailer, all
// four labels); only the bytes that are not zero are written, so a device takes 32 KiB of disk
// (5,000 devices: ~160 MB) although each is 64 MiB long. Every count gets a directory of its
// own; after the clean measurements `--irrelevant` small files (4 KiB, not devices) are added
// to the same directory, and everything is measured again — what `zpool import -d /dev` meets.
//
// Sides, interleaved in every round (ours, C×1, C×T; the next round reversed):
//   * ours: `ImportScanner(options: .init(searchPaths: [DIR])).scan()` in this process: readdir,
//     a stat per entry, four 112 KiB reads per device on 2 × CPUs threads, nvlist decode and
//     SHA-256 of each label, grouping, assembly, exclusive-open test — everything `zpool import
//     -d DIR` does before the kernel. The result is checked: every pool, every leaf found.
//   * C×1: Benchmarks/reference/label_read_ref.c with one thread, given the device list: open,
//     fstat, the same four 112 KiB preads, close. The floor: the bytes alone, no process per read.
//   * C×T: the same with as many threads as the scanner uses.
//   * dd (warm, counts ≤ 1,000 unless --dd-all): one `dd … skip_bytes` per label, as a shell
//     would do it; dominated by process starts, shown for scale.
// Warm: the page cache holds everything (one untimed pass of each side first). Cold: before
// each measurement `sync; echo 3 > /proc/sys/vm/drop_caches` (root only; skipped otherwise).
// Reported: median time of each side and the median (min..max) of the per-round ratio.

import BenchSupport
import Foundation
import ZFSFormat
import ZFSImport

// MARK: - Options

struct Options {
    var counts = [100, 1000, 5000]
    var rounds = 7
    var coldRounds = 3
    var irrelevant = 10_000
    var directory: String?
    var keep = false
    var dd = true
    var ddAll = false
    /// `--profile DIR`: scan DIR `passes` times and nothing else (for `perf record`).
    var profile: String?
    var passes = 20

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        var it = arguments.dropFirst().makeIterator()
        func value(_ flag: String) -> String {
            guard let v = it.next() else { usage("\(flag) needs a value") }
            return v
        }
        func number(_ flag: String) -> Int {
            guard let n = Int(value(flag)) else { usage("\(flag) takes a number") }
            return n
        }
        while let arg = it.next() {
            switch arg {
            case "--counts":
                options.counts = value(arg).split(separator: ",").map { Int($0) ?? -1 }
                guard options.counts.allSatisfy({ $0 >= 100 && $0 % 100 == 0 }) else { usage("counts are multiples of 100") }
            case "--rounds": options.rounds = number(arg)
            case "--cold-rounds": options.coldRounds = number(arg)
            case "--irrelevant": options.irrelevant = number(arg)
            case "--directory": options.directory = value(arg)
            case "--keep": options.keep = true
            case "--no-dd": options.dd = false
            case "--dd-all": options.ddAll = true
            case "--profile": options.profile = value(arg)
            case "--passes": options.passes = number(arg)
            case "-h", "--help": usage(nil)
            default: usage("unknown argument \(arg)")
            }
        }
        guard options.rounds >= 1 else { usage("--rounds must be at least 1") }
        return options
    }

    static func usage(_ problem: String?) -> Never {
        if let problem { FileHandle.standardError.write(Data("scan-bench: \(problem)\n".utf8)) }
        print("usage: scan-bench [--counts 100,1000,5000] [--rounds 7] [--cold-rounds 3] [--irrelevant 10000]")
        print("                  [--directory DIR] [--keep] [--no-dd] [--dd-all]")
        print("       scan-bench --profile DIR [--passes 20]")
        exit(problem == nil ? 0 : 64)
    }
}


let options = Options.parse(CommandLine.arguments)

if let directory = options.profile {
    let scanner = ImportScanner(options: .init(searchPaths: [directory]))
    var pools = 0
    let start = ContinuousClock.now
    for _ in 0..<options.passes { pools += scanner.scan().pools.count }
    print("\(options.passes) scans of \(directory): \(pools / max(1, options.passes)) pools, \(ContinuousClock.now - start)")
    exit(0)
}

// MARK: - Devices

/// `SPA_MINDEVSIZE`: the smallest file the scanner opens.
let deviceSize: UInt64 = 64 << 20
let labelSize: UInt64 = 256 << 10
let configOffset: UInt64 = 16 << 10
let leavesPerTop = 10
let topsPerPool = 10


/// The four label offsets of a device (`vdev_label_offset`).
func labelOffsets(size: UInt64) -> [UInt64] {
    let aligned = size & ~(labelSize - 1)
    return [0, labelSize, aligned - 2 * labelSize, aligned - labelSize]
}

/// Writes `count` devices (pools of 100 leaves) into `directory`; returns their paths.
func makeDevices(count: Int, in directory: String, seed: UInt64) throws -> [String] {
    var guids = SplitMix64(seed: seed)
    var paths: [String] = []
    for pool in 0..<(count / (leavesPerTop * topsPerPool)) {
        let poolGUID = guids.next()
        for top in 0..<topsPerPool {
            let topGUID = guids.next()
            let leafGUIDs = (0..<leavesPerTop).map { _ in guids.next() }
            let leafPaths = (0..<leavesPerTop).map { "\(directory)/p\(pool)-t\(top)-l\($0)" }
            var tree = NVList()
            tree.set("type", .string("raidz"))
            tree.set("id", .uint64(UInt64(top)))
            tree.set("guid", .uint64(topGUID))
            tree.set("nparity", .uint64(2))
            tree.set("metaslab_array", .uint64(256 + UInt64(top)))
            tree.set("metaslab_shift", .uint64(29))
            tree.set("ashift", .uint64(12))
            tree.set("asize", .uint64(UInt64(leavesPerTop) * (deviceSize - 4 * labelSize - (4 << 20))))
            tree.set("is_log", .uint64(0))
            tree.set("create_txg", .uint64(4))
            tree.set(
                "children",
                .nvlistArray(
                    (0..<leavesPerTop).map { leaf in
                        var child = NVList()
                        child.set("type", .string("file"))
                        child.set("id", .uint64(UInt64(leaf)))
                        child.set("guid", .uint64(leafGUIDs[leaf]))
                        child.set("path", .string(leafPaths[leaf]))
                        child.set("create_txg", .uint64(4))
                        return child
                    }))
            var features = NVList()
            features.set("com.delphix:hole_birth", .boolean)
            features.set("com.delphix:embedded_data", .boolean)
            for leaf in 0..<leavesPerTop {
                var label = NVList()
                label.set("version", .uint64(5000))
                label.set("name", .string("bench\(pool)"))
                label.set("state", .uint64(1))
                label.set("txg", .uint64(100))
                label.set("pool_guid", .uint64(poolGUID))
                label.set("errata", .uint64(0))
                label.set("hostid", .uint64(0x1234_5678))
                label.set("hostname", .string("bench"))
                label.set("top_guid", .uint64(topGUID))
                label.set("guid", .uint64(leafGUIDs[leaf]))
                label.set("vdev_children", .uint64(UInt64(topsPerPool)))
                label.set("vdev_tree", .nvlist(tree))
                label.set("features_for_read", .nvlist(features))
                try writeDevice(leafPaths[leaf], config: label)
                paths.append(leafPaths[leaf])
            }
        }
    }
    return paths
}

/// A sparse 64 MiB file whose four labels hold `config`; only non-zero bytes are written.
func writeDevice(_ path: String, config: NVList) throws {
    let packed = try config.encoded(as: .xdr)
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { fail("cannot create \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    guard ftruncate(fd, off_t(deviceSize)) == 0 else { fail("ftruncate \(path)") }
    for offset in labelOffsets(size: deviceSize) {
        let blockOffset = offset + configOffset
        var block = packed + [UInt8](repeating: 0, count: VdevLabel.configBlockByteCount - packed.count)
        try EmbeddedChecksum.seal(&block, absoluteOffset: blockOffset, byteOrder: .little)
        let trailer = block.count - EmbeddedChecksum.byteCount
        for (start, end) in [(0, packed.count), (trailer, block.count)] {
            let written = block[start..<end].withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(blockOffset) + off_t(start)) }
            guard written == end - start else { fail("pwrite \(path)") }
        }
    }
}

/// `count` small regular files that are not devices.
func makeIrrelevantFiles(count: Int, in directory: String) {
    let bytes = [UInt8](repeating: 0x61, count: 4096)
    for i in 0..<count {
        let fd = open("\(directory)/irrelevant-\(i)", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { fail("cannot create irrelevant file \(i)") }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}

// MARK: - Sides

func shell(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    do { try process.run() } catch { return (127, "\(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

let clock = ContinuousClock()


/// Ours: a full scan of `directory`, checked.
func scanOnce(_ directory: String, expectedPools: Int) -> Double {
    let scanner = ImportScanner(options: .init(searchPaths: [directory]))
    let start = clock.now
    let result = scanner.scan()
    let elapsed = seconds(clock.now - start)
    guard result.pools.count == expectedPools else {
        fail("scan of \(directory) found \(result.pools.count) pools, expected \(expectedPools)")
    }
    for pool in result.pools {
        guard pool.missingTopLevelIDs.isEmpty, pool.root.leaves.count == leavesPerTop * topsPerPool,
            pool.root.leaves.allSatisfy({ if case .found(_, 4)? = $0.presence { true } else { false } })
        else { fail("pool \(pool.name) is incomplete: \(pool.notes)") }
    }
    return elapsed
}

/// The C reference: seconds (its own clock around the reads) and the bytes it read.
func referenceOnce(_ binary: String, list: String, threads: Int, expectedDevices: Int) -> Double {
    let answer = shell(binary, [list, "\(threads)"])
    let fields = answer.output.split(separator: " ").map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
    guard answer.status == 0, fields.count == 4, let ns = Double(fields[0]), Int(fields[1]) == expectedDevices,
        Int(fields[2]) == expectedDevices * 4 * VdevLabel.configBlockByteCount
    else { fail("reference failed: \(answer.output)") }
    return ns * 1e-9
}

/// `dd`, one process per label, as a shell loop; seconds around the whole script.
func ddOnce(script: String) -> Double {
    let start = clock.now
    let answer = shell("/bin/sh", [script])
    guard answer.status == 0 else { fail("dd script failed: \(answer.output)") }
    return seconds(clock.now - start)
}

let canDropCaches = geteuid() == 0 && access("/proc/sys/vm/drop_caches", W_OK) == 0

func dropCaches() {
    sync()
    guard let handle = FileHandle(forWritingAtPath: "/proc/sys/vm/drop_caches") else { fail("cannot open drop_caches") }
    handle.write(Data("3\n".utf8))
    try? handle.close()
}

// MARK: - Statistics


func ms(_ s: Double) -> String { String(format: "%.1f ms", s * 1000) }
func ratio(_ values: [Double]) -> String {
    String(format: "%.2f× (%.2f..%.2f)", median(values), values.min() ?? 0, values.max() ?? 0)
}

// MARK: - Run

let threads = ImportScanner.defaultConcurrency
let base: String = {
    if let directory = options.directory {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }
    var template = Array("/var/tmp/zpk-scan-bench.XXXXXX".utf8CString)
    guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else { fail("mkdtemp") }
    return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}()
defer { if !options.keep { try? FileManager.default.removeItem(atPath: base) } }

let referenceSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("reference/label_read_ref.c")
let referenceBinary = "\(base)/label_read_ref"
let gcc = shell("/usr/bin/env", ["gcc", "-O2", "-pthread", referenceSource.path, "-o", referenceBinary])
guard gcc.status == 0 else { fail("cannot build \(referenceSource.path): \(gcc.output)") }

print("scan-bench: \(ProcessInfo.processInfo.activeProcessorCount) CPUs, scanner threads \(threads), rounds \(options.rounds) warm / \(canDropCaches ? "\(options.coldRounds) cold" : "no cold (cannot drop caches)")")
print("devices: pools of \(leavesPerTop * topsPerPool) leaves (\(topsPerPool) × raidz2 of \(leavesPerTop)), 64 MiB sparse files; directory \(base)")
print("reference: gcc -O2 -pthread \(referenceSource.lastPathComponent) (\(shell("/usr/bin/env", ["gcc", "-dumpfullversion"]).output.trimmingCharacters(in: .whitespacesAndNewlines)))")
print("")

struct Row {
    var count: Int
    var setting: String
    var ours: [Double] = []
    var c1: [Double] = []
    var cT: [Double] = []
    var dd: Double?
}
var rows: [Row] = []

for (n, count) in options.counts.enumerated() {
    let directory = "\(base)/devices-\(count)"
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
    let made = clock.now
    let paths = try makeDevices(count: count, in: directory, seed: UInt64(n + 1))
    let list = "\(base)/list-\(count)"
    try (paths.joined(separator: "\n") + "\n").write(toFile: list, atomically: true, encoding: .utf8)
    let pools = count / (leavesPerTop * topsPerPool)
    print("\(count) devices made in \(ms(seconds(clock.now - made)))")

    for junk in [0, options.irrelevant] where junk == 0 || options.irrelevant > 0 {
        if junk > 0 { makeIrrelevantFiles(count: junk, in: directory) }
        let setting = junk == 0 ? "warm" : "warm, +\(junk) irrelevant files"
        // Untimed passes to fill the page cache.
        _ = scanOnce(directory, expectedPools: pools)
        _ = referenceOnce(referenceBinary, list: list, threads: 1, expectedDevices: count)
        var row = Row(count: count, setting: setting)
        for round in 0..<options.rounds {
            let sides: [() -> Void] = [
                { row.ours.append(scanOnce(directory, expectedPools: pools)) },
                { row.c1.append(referenceOnce(referenceBinary, list: list, threads: 1, expectedDevices: count)) },
                { row.cT.append(referenceOnce(referenceBinary, list: list, threads: threads, expectedDevices: count)) },
            ]
            for side in round % 2 == 0 ? sides : sides.reversed() { side() }
        }
        if options.dd && (count <= 1000 || options.ddAll) && junk == 0 {
            let script = "\(base)/dd-\(count).sh"
            let offsets = labelOffsets(size: deviceSize).map { $0 + configOffset }
            let lines = paths.flatMap { path in
                offsets.map { "dd if='\(path)' of=/dev/null bs=\(VdevLabel.configBlockByteCount) count=1 skip=\($0) iflag=skip_bytes status=none" }
            }
            try (lines.joined(separator: "\n") + "\n").write(toFile: script, atomically: true, encoding: .utf8)
            row.dd = ddOnce(script: script)
        }
        rows.append(row)
        print(
            "\(count) \(setting): ours \(ms(median(row.ours)))  C×1 \(ms(median(row.c1)))  C×\(threads) \(ms(median(row.cT)))"
                + (row.dd.map { "  dd \(ms($0))" } ?? "")
                + "  ours/C×1 \(ratio(zip(row.ours, row.c1).map { $0 / $1 }))  ours/C×\(threads) \(ratio(zip(row.ours, row.cT).map { $0 / $1 }))")
    }

    if canDropCaches && options.coldRounds > 0 {
        var row = Row(count: count, setting: "cold, +\(options.irrelevant) irrelevant files")
        for round in 0..<options.coldRounds {
            let sides: [() -> Void] = [
                { dropCaches(); row.ours.append(scanOnce(directory, expectedPools: pools)) },
                { dropCaches(); row.c1.append(referenceOnce(referenceBinary, list: list, threads: 1, expectedDevices: count)) },
                { dropCaches(); row.cT.append(referenceOnce(referenceBinary, list: list, threads: threads, expectedDevices: count)) },
            ]
            for side in round % 2 == 0 ? sides : sides.reversed() { side() }
        }
        rows.append(row)
        print(
            "\(count) \(row.setting): ours \(ms(median(row.ours)))  C×1 \(ms(median(row.c1)))  C×\(threads) \(ms(median(row.cT)))"
                + "  ours/C×1 \(ratio(zip(row.ours, row.c1).map { $0 / $1 }))  ours/C×\(threads) \(ratio(zip(row.ours, row.cT).map { $0 / $1 }))")
    }
    print("")
}

print("| devices | setting | ours | C pread ×1 | C pread ×\(threads) | dd (process per label) | ours / C×1 | ours / C×\(threads) |")
print("| ---: | --- | ---: | ---: | ---: | ---: | --- | --- |")
for row in rows {
    print(
        "| \(row.count) | \(row.setting) | \(ms(median(row.ours))) | \(ms(median(row.c1))) | \(ms(median(row.cT))) | \(row.dd.map(ms) ?? "—") | "
            + "\(ratio(zip(row.ours, row.c1).map { $0 / $1 })) | \(ratio(zip(row.ours, row.cT).map { $0 / $1 })) |")
}
