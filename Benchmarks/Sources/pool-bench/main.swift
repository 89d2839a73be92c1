// pool-bench: the pool host (ZFSPool, in process) against plain POSIX writes of the same bytes to
// the same filesystem, in the same run (BENCHMARKS.md §5).
//
//   swift run -c release pool-bench [--megabytes 512] [--rounds 5] [--small 2048] [--pools 10]
//                                   [--directory DIR] [--keep]
//
// Sides, interleaved in every round (ours first in odd rounds, the reference first in even ones):
//
//   1. Sequential 1 MiB objects. Ours: a fresh single-file pool; `put` of N objects of 1 MiB
//      (random bytes, made before timing) with a `sync` after every 64 MiB and at the end.
//      Reference: `dd if=SRC of=OUT bs=1M count=N conv=fsync` of the same bytes (SRC in the page
//      cache), a separate process. Also a 2-way mirror pool against two dd
//      processes writing the same bytes to two files at once (a mirror writes every byte twice).
//   2. Small objects. Ours: `put` of N 4 KiB objects with a `sync` every 256 objects; puts/s and
//      the latency of each sync. Reference: the same bytes as 4 KiB `pwrite`s to one file with an
//      `fsync` every 256 writes, in this process (the floor: no checksums, no metadata).
//   3. Open and export of 1 and 10 pools (one 128 MiB file each, 16 objects, left ACTIVE as by a
//      host that stopped): `PoolHost.open(config:
//      mode: .cacheFile)` with each pool's cache-file config, then `export`. Reference: the I/O a
//      crash-safe label update needs at least — per leaf, four 4 KiB pwrites each followed by an
//      fsync — on the same files.
//
// Every ratio is ours/reference in throughput (higher is better for us) or reference/ours in time
// (same meaning): > 1 means we are faster. Reported: the median and min..max of the per-round ratio.

import BenchSupport
import Foundation
import Logging
import ZFSFormat
import ZFSPool

// MARK: - Options

struct Options {
    var megabytes = 512
    var rounds = 5
    var small = 2048
    var pools = 10
    var directory: String?
    var keep = false

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        parseOptions(
            arguments, into: &options,
            numbers: ["--megabytes": \.megabytes, "--rounds": \.rounds, "--small": \.small, "--pools": \.pools],
            directory: \.directory, keep: \.keep,
            usage: "usage: pool-bench [--megabytes N] [--rounds N] [--small N] [--pools N] [--directory DIR] [--keep]")
        return options
    }
}


// MARK: - Helpers






func writeAll(_ path: String, _ chunks: [[UInt8]]) {
    let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
    guard fd >= 0 else { fail("cannot create \(path)") }
    for chunk in chunks {
        let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == chunk.count else { fail("short write to \(path)") }
    }
    close(fd)
}

/// Runs a command, returns its wall time; fails the benchmark on a non-zero status.
func timeProcess(_ executable: String, _ arguments: [String]) -> Double {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardError = FileHandle(forWritingAtPath: "/dev/null")
    let clock = ContinuousClock()
    let start = clock.now
    do { try process.run() } catch { fail("cannot run \(executable): \(error)") }
    process.waitUntilExit()
    let elapsed = seconds(clock.now - start)
    guard process.terminationStatus == 0 else { fail("\(executable) \(arguments) exited \(process.terminationStatus)") }
    return elapsed
}

/// Two commands at once; the wall time until both finish.
func timeProcessesTogether(_ commands: [(String, [String])]) -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    var processes: [Process] = []
    for (executable, arguments) in commands {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        do { try process.run() } catch { fail("cannot run \(executable): \(error)") }
        processes.append(process)
    }
    for process in processes { process.waitUntilExit() }
    let elapsed = seconds(clock.now - start)
    for process in processes where process.terminationStatus != 0 { fail("\(commands) failed") }
    return elapsed
}

let environment = PoolHost.Environment(
    hostID: 0x5EED_0001, hostname: "pool-bench", logger: Logger(label: "pool-bench") { _ in SwiftLogNoOpLogHandler() })

func dropPoolFiles(_ paths: [String]) { for path in paths { unlink(path) } }

// MARK: - 1. Sequential 1 MiB

/// Our side: a fresh pool on `leaves` (1 = single file, 2 = mirror), N puts, sync every 64.
func oursSequential(directory: String, objects: [[UInt8]], leaves: Int, round: Int) async throws -> Double {
    let size = objects.count * (1 << 20) + (256 << 20)
    let paths = (0..<leaves).map { "\(directory)/seq-\(round)-\($0).img" }
    for path in paths { makeSparseFile(path, bytes: size) }
    defer { dropPoolFiles(paths) }
    let host = PoolHost(environment: environment)
    let layout: [VdevSpec] = leaves == 1 ? [.leaf(paths[0])] : [.mirror(paths)]
    let pool = try await host.create(name: "bench\(round)", layout: layout)
    let clock = ContinuousClock()
    let start = clock.now
    for (index, object) in objects.enumerated() {
        try await pool.put("object-\(index)", object)
        if (index + 1) % 64 == 0 { try await pool.sync() }
    }
    try await pool.sync()
    let elapsed = seconds(clock.now - start)
    try await host.export(pool.name)
    return elapsed
}

func ddSequential(directory: String, source: String, count: Int, copies: Int, round: Int) -> Double {
    let outputs = (0..<copies).map { "\(directory)/dd-\(round)-\($0).out" }
    defer { dropPoolFiles(outputs) }
    let commands = outputs.map {
        ("/bin/dd", ["if=\(source)", "of=\($0)", "bs=1M", "count=\(count)", "conv=fsync", "status=none"])
    }
    return commands.count == 1 ? timeProcess(commands[0].0, commands[0].1) : timeProcessesTogether(commands)
}

// MARK: - 2. Small objects

struct SmallResult {
    var seconds: Double
    var syncLatencies: [Double]
}

func oursSmall(directory: String, objects: [[UInt8]], round: Int) async throws -> SmallResult {
    let path = "\(directory)/small-\(round).img"
    makeSparseFile(path, bytes: 512 << 20)
    defer { dropPoolFiles([path]) }
    let host = PoolHost(environment: environment)
    let pool = try await host.create(name: "small\(round)", layout: [.leaf(path)])
    let clock = ContinuousClock()
    var latencies: [Double] = []
    let start = clock.now
    for (index, object) in objects.enumerated() {
        try await pool.put("small-\(index)", object)
        if (index + 1) % 256 == 0 {
            let syncStart = clock.now
            try await pool.sync()
            latencies.append(seconds(clock.now - syncStart))
        }
    }
    let syncStart = clock.now
    try await pool.sync()
    latencies.append(seconds(clock.now - syncStart))
    let elapsed = seconds(clock.now - start)
    try await host.export(pool.name)
    return SmallResult(seconds: elapsed, syncLatencies: latencies)
}

func posixSmall(directory: String, objects: [[UInt8]], round: Int) -> SmallResult {
    let path = "\(directory)/small-ref-\(round).out"
    defer { dropPoolFiles([path]) }
    let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
    guard fd >= 0 else { fail("cannot create \(path)") }
    defer { close(fd) }
    let clock = ContinuousClock()
    var latencies: [Double] = []
    let start = clock.now
    for (index, object) in objects.enumerated() {
        let n = object.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(index * object.count)) }
        guard n == object.count else { fail("short pwrite to \(path)") }
        if (index + 1) % 256 == 0 {
            let syncStart = clock.now
            fsync(fd)
            latencies.append(seconds(clock.now - syncStart))
        }
    }
    let syncStart = clock.now
    fsync(fd)
    latencies.append(seconds(clock.now - syncStart))
    return SmallResult(seconds: seconds(clock.now - start), syncLatencies: latencies)
}

// MARK: - 3. Open and export

struct OpenExport {
    var open: Double
    var export: Double
}

/// Makes `count` pools (one 128 MiB file each, 16 small objects) and forgets them without export,
/// as a host that stops leaves them: ACTIVE, owned by this hostid, listed in its cache file.
func makeCachedPools(directory: String, count: Int, round: Int) async throws -> ([NVList], [String]) {
    var configs: [NVList] = []
    var paths: [String] = []
    let host = PoolHost(environment: environment)
    var generator = SplitMix64(seed: UInt64(round))
    for index in 0..<count {
        let path = "\(directory)/open-\(round)-\(index).img"
        makeSparseFile(path, bytes: 128 << 20)
        paths.append(path)
        let pool = try await host.create(name: "open\(round)x\(index)", layout: [.leaf(path)])
        for object in 0..<16 { try await pool.put("o\(object)", generator.bytes(4096)) }
        try await pool.sync()
        configs.append(pool.config)
        host.forget(pool.name)
    }
    return (configs, paths)
}

func oursOpenExport(configs: [NVList]) async throws -> OpenExport {
    let host = PoolHost(environment: environment)
    let clock = ContinuousClock()
    var start = clock.now
    var pools: [Pool] = []
    for config in configs { pools.append(try await host.open(config: config, mode: .cacheFile)) }
    let open = seconds(clock.now - start)
    start = clock.now
    for pool in pools { try await host.export(pool.name) }
    return OpenExport(open: open, export: seconds(clock.now - start))
}

/// The floor of a crash-safe label update per leaf: four 4 KiB pwrites, each made durable.
func posixLabelFloor(paths: [String]) -> Double {
    let block = [UInt8](repeating: 0, count: 4096)
    let clock = ContinuousClock()
    let start = clock.now
    for path in paths {
        let fd = open(path, O_WRONLY)
        guard fd >= 0 else { fail("cannot open \(path)") }
        // Offsets inside the (already written) boot-environment block of label 0: no pool data is touched.
        for step in 0..<4 {
            _ = block.withUnsafeBytes { pwrite(fd, $0.baseAddress, 512, off_t(0x2000 + step * 512)) }
            fsync(fd)
        }
        close(fd)
    }
    return seconds(clock.now - start)
}

// MARK: - Main

func ratioLine(_ name: String, _ ratios: [Double], _ detail: String) {
    let text = String(format: "%-44@ %6.2fx  (%.2f..%.2f)  %@", name as NSString, median(ratios), ratios.min()!, ratios.max()!, detail as NSString)
    print(text)
}

let options = Options.parse(CommandLine.arguments)
let directory = options.directory ?? {
    let path = NSTemporaryDirectory() + "pool-bench-\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}()
defer { if !options.keep && options.directory == nil { try? FileManager.default.removeItem(atPath: directory) } }

var generator = SplitMix64(seed: 0x0BE0_C4)
let bigObjects = (0..<options.megabytes).map { _ in generator.bytes(1 << 20) }
let source = "\(directory)/dd-source.bin"
writeAll(source, bigObjects)
let smallObjects = (0..<options.small).map { _ in generator.bytes(4096) }

print("pool-bench: \(options.rounds) rounds in \(directory); \(options.megabytes) × 1 MiB, \(options.small) × 4 KiB, 1 and \(options.pools) pools")

var seqRatios: [Double] = [], seqOurs: [Double] = [], seqDD: [Double] = []
var mirrorRatios: [Double] = [], mirrorOurs: [Double] = [], mirrorDD: [Double] = []
var smallRatios: [Double] = [], smallPutsPerSecond: [Double] = [], smallReferencePerSecond: [Double] = []
var syncLatencies: [Double] = [], referenceSyncLatencies: [Double] = []
var openRatios: [Int: [Double]] = [:], exportRatios: [Int: [Double]] = [:]
var openTimes: [Int: [Double]] = [:], exportTimes: [Int: [Double]] = [:], floorTimes: [Int: [Double]] = [:]

for round in 0..<options.rounds {
    let oursFirst = round % 2 == 0
    // 1. Sequential, single leaf and mirror.
    var ours = 0.0, reference = 0.0
    for step in 0..<2 {
        if (step == 0) == oursFirst {
            ours = try await oursSequential(directory: directory, objects: bigObjects, leaves: 1, round: round)
        } else {
            reference = ddSequential(directory: directory, source: source, count: options.megabytes, copies: 1, round: round)
        }
    }
    seqOurs.append(ours); seqDD.append(reference); seqRatios.append(reference / ours)
    for step in 0..<2 {
        if (step == 0) == oursFirst {
            ours = try await oursSequential(directory: directory, objects: bigObjects, leaves: 2, round: round)
        } else {
            reference = ddSequential(directory: directory, source: source, count: options.megabytes, copies: 2, round: round)
        }
    }
    mirrorOurs.append(ours); mirrorDD.append(reference); mirrorRatios.append(reference / ours)
    // 2. Small objects.
    var small = SmallResult(seconds: 0, syncLatencies: []), smallReference = small
    for step in 0..<2 {
        if (step == 0) == oursFirst {
            small = try await oursSmall(directory: directory, objects: smallObjects, round: round)
        } else {
            smallReference = posixSmall(directory: directory, objects: smallObjects, round: round)
        }
    }
    smallRatios.append(smallReference.seconds / small.seconds)
    smallPutsPerSecond.append(Double(options.small) / small.seconds)
    smallReferencePerSecond.append(Double(options.small) / smallReference.seconds)
    syncLatencies += small.syncLatencies
    referenceSyncLatencies += smallReference.syncLatencies
    // 3. Open and export of 1 and N pools.
    for count in Set([1, options.pools]).sorted() {
        let (configs, paths) = try await makeCachedPools(directory: directory, count: count, round: round)
        var result = OpenExport(open: 0, export: 0), floor = 0.0
        for step in 0..<2 {
            if (step == 0) == oursFirst { result = try await oursOpenExport(configs: configs) } else { floor = posixLabelFloor(paths: paths) }
        }
        dropPoolFiles(paths)
        openTimes[count, default: []].append(result.open)
        exportTimes[count, default: []].append(result.export)
        floorTimes[count, default: []].append(floor)
        openRatios[count, default: []].append(floor / result.open)
        exportRatios[count, default: []].append(floor / result.export)
    }
    print("  round \(round + 1)/\(options.rounds) done")
}

let megabytes = Double(options.megabytes)
print("")
ratioLine(
    "1 MiB puts, single file vs dd conv=fsync", seqRatios,
    String(format: "ours %.0f MB/s, dd %.0f MB/s", megabytes / median(seqOurs), megabytes / median(seqDD)))
ratioLine(
    "1 MiB puts, 2-way mirror vs 2 dd at once", mirrorRatios,
    String(format: "ours %.0f MB/s, dd %.0f MB/s", megabytes / median(mirrorOurs), megabytes / median(mirrorDD)))
ratioLine(
    "4 KiB puts, sync/256 vs pwrite+fsync/256", smallRatios,
    String(format: "ours %.0f puts/s, reference %.0f writes/s", median(smallPutsPerSecond), median(smallReferencePerSecond)))
print(
    String(
        format: "%-44@ ours p50 %.2f ms p90 %.2f ms; reference fsync p50 %.2f ms p90 %.2f ms", "sync latency (256 × 4 KiB)" as NSString,
        median(syncLatencies) * 1e3, percentile(syncLatencies, 0.9) * 1e3, median(referenceSyncLatencies) * 1e3,
        percentile(referenceSyncLatencies, 0.9) * 1e3))
for count in openTimes.keys.sorted() {
    ratioLine(
        "open \(count) pool(s) from cache vs label floor", openRatios[count]!,
        String(format: "ours %.1f ms, floor %.1f ms", median(openTimes[count]!) * 1e3, median(floorTimes[count]!) * 1e3))
    ratioLine(
        "export \(count) pool(s) vs label floor", exportRatios[count]!,
        String(format: "ours %.1f ms, floor %.1f ms", median(exportTimes[count]!) * 1e3, median(floorTimes[count]!) * 1e3))
}
