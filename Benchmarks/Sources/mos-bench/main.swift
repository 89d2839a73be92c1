// mos-bench: reading a pool's MOS config, `zpk import -d DIR --config POOL --mos` against
// `zdb -e -p DIR -C POOL`, both whole processes, alternating, in the same run.
//
//   swift run -c release mos-bench [--rounds N (7)] [--zpk PATH] [--directory DIR --pool NAME] [--keep]
//
// Without --directory, three pools are made with ztest in a fresh directory under /var/tmp
// (a raidz2 of 4 files at ashift 9, a 3-way mirror at ashift 12 and a dRAID2 of 7 files with 3
// data columns and 1 distributed spare at ashift 12 (ztest makes those files 256 MiB), 1 s of
// ztest each).
// --zpk defaults to ../.build/release/zpk, else ../.build/debug/zpk (build it first:
// `swift build -c release --product zpk` at the root). Each round runs zdb then zpk on the
// same pool; both must print a "MOS Configuration" block (and zpk's must equal zdb's, key for
// key), else the run fails. Reported: median and p90 wall time of each, and the ratio of the
// medians (zdb / zpk: the target is ≥ 5).

import Foundation

#if canImport(Glibc)
import Glibc
#endif

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("mos-bench: \(message)\n".utf8))
    exit(1)
}

struct Options {
    var rounds = 7
    var zpk: String?
    var directory: String?
    var pool: String?
    var keep = false
}

var options = Options()
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--rounds":
        guard let rounds = arguments.next().flatMap({ Int($0) }), rounds > 0 else { fail("--rounds takes a number") }
        options.rounds = rounds
    case "--zpk": options.zpk = arguments.next()
    case "--directory": options.directory = arguments.next()
    case "--pool": options.pool = arguments.next()
    case "--keep": options.keep = true
    default: fail("unknown argument \(argument); usage: mos-bench [--rounds N] [--zpk PATH] [--directory DIR --pool NAME] [--keep]")
    }
}

struct Run {
    var stdout: String
    var status: Int32
    var seconds: Double
}

func run(_ path: String, _ args: [String], environment: [String: String] = [:]) -> Run {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = args
    var env = ProcessInfo.processInfo.environment
    env["TZ"] = "UTC"
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    let clock = ContinuousClock()
    let start = clock.now
    do { try process.run() } catch { fail("cannot run \(path): \(error)") }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return Run(stdout: String(decoding: data, as: UTF8.self), status: process.terminationStatus, seconds: seconds)
}

/// `dump_nvlist` text as sorted `path: value` lines (key order ignored).
func canonical(_ text: String) -> [String] {
    var stack: [(Int, String)] = []
    var lines: [String] = []
    for raw in text.split(separator: "\n") {
        let indent = raw.prefix { $0 == " " }.count
        let body = String(raw.dropFirst(indent))
        if body == "MOS Configuration:" { continue }
        while let last = stack.last, last.0 >= indent { stack.removeLast() }
        let prefix = stack.map(\.1).joined(separator: "/")
        if body.hasSuffix(":") && !body.contains(": ") { stack.append((indent, String(body.dropLast()))) } else { lines.append(prefix + "/" + body) }
    }
    return lines.sorted()
}

func mosBlock(_ output: String) -> String? {
    guard let start = output.range(of: "\nMOS Configuration:\n") else { return nil }
    var block = ""
    for line in output[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
        guard line.hasPrefix(" ") else { break }
        block += line + "\n"
    }
    return block
}

let here = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
let candidates = [options.zpk].compactMap { $0 }
    + ["release", "debug"].map { here.appendingPathComponent("../.build/\($0)/zpk").standardized.path }
guard let zpk = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
    fail("no zpk binary at \(candidates); build one or pass --zpk PATH")
}

var pools: [(directory: String, name: String, what: String)] = []
var made: String?
if let directory = options.directory {
    guard let pool = options.pool else { fail("--directory needs --pool NAME") }
    pools.append((directory, pool, "given"))
} else {
    var template = Array("/var/tmp/mos-bench.XXXXXX".utf8CString)
    guard let dir = mkdtemp(&template) else { fail("mkdtemp failed") }
    let root = String(cString: dir)
    made = root
    let layouts: [(String, [String])] = [
        ("raidz2 of 4, ashift 9", ["-a", "9", "-m", "0", "-r", "4", "-R", "2", "-K", "raidz"]),
        ("3-way mirror, ashift 12", ["-a", "12", "-m", "3", "-r", "1", "-K", "raidz"]),
        ("draid2:3d:7c:1s, ashift 12", ["-a", "12", "-m", "0", "-r", "7", "-R", "2", "-D", "3", "-S", "1", "-K", "draid"]),
    ]
    for (index, (what, args)) in layouts.enumerated() {
        let directory = "\(root)/p\(index)"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ztest = run(
            "/usr/sbin/ztest",
            ["-T", "1", "-k", "0", "-f", directory, "-p", "bench\(index)", "-s", "134217728", "-t", "1", "-d", "7", "-C", "special=off", "-v", "1", "-M"] + args)
        guard ztest.status == 0 else { fail("ztest failed for \(what) (status \(ztest.status))") }
        try? FileManager.default.removeItem(atPath: "\(directory)/zpool.cache")
        pools.append((directory, "bench\(index)", what))
    }
}

print("mos-bench: zpk \(zpk), zdb /usr/sbin/zdb, \(options.rounds) rounds per pool, alternating")
func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
func p90(_ values: [Double]) -> Double { values.sorted()[min(values.count - 1, Int(Double(values.count) * 0.9))] }
var failed = false
for pool in pools {
    var zdbTimes: [Double] = []
    var zpkTimes: [Double] = []
    for _ in 0..<options.rounds {
        let zdb = run("/usr/sbin/zdb", ["-e", "-p", pool.directory, "-C", pool.name])
        let ours = run(zpk, ["import", "-d", pool.directory, "--config", pool.name, "--mos"])
        guard let theirs = mosBlock(zdb.stdout), zdb.status == 0 else { fail("zdb printed no MOS config for \(pool.name)") }
        guard let mine = mosBlock(ours.stdout), ours.status == 0 else { fail("zpk printed no MOS config for \(pool.name) (status \(ours.status))") }
        if canonical(theirs) != canonical(mine) {
            print("MISMATCH on \(pool.name): zpk's MOS config differs from zdb's")
            failed = true
        }
        zdbTimes.append(zdb.seconds)
        zpkTimes.append(ours.seconds)
    }
    let ratio = median(zdbTimes) / median(zpkTimes)
    print(
        String(
            format: "%@ (%@): zdb -e -C median %.3f s (p90 %.3f), zpk --config --mos median %.3f s (p90 %.3f): %.1fx",
            pool.name, pool.what, median(zdbTimes), p90(zdbTimes), median(zpkTimes), p90(zpkTimes), ratio))
}
if let made, !options.keep { try? FileManager.default.removeItem(atPath: made) }
exit(failed ? 1 : 0)
