// nbd-bench: ZPoolKit's NBD leaves against a plain libnbd C loop (Benchmarks/reference/nbd_ref.c)
// doing the same I/O, in the same run, at 0, 5 and 50 ms of added round-trip time.
//
// Round-trip time. tc netem in a network namespace is the natural way; this machine's kernel has
// no netem qdisc ("Specified qdisc kind is unknown"), so the RTT is added by the server instead:
// nbdkit's delay filter holds every read and write for RTT before answering (flushes are not
// delayed: its version here has no flush delay). With one
// request in flight per connection (how both sides issue them here) that is the same latency a
// link of that RTT adds. Both sides talk to the same nbdkit over a Unix socket.
//
//   1. heartbeat cadence: a one-leaf multihost pool (PoolHost, interval 200 ms: one heartbeat
//      every 200 ms) on the export; gaps between the issue instants of its label-area writes.
//      Reference: the C loop issuing one 4 KiB FUA write every 200 ms on an absolute schedule.
//   2. put throughput: 64 puts of 16 KiB and a sync, multihost off. Every NBD request we make
//      is recorded; the reference replays that exact trace with synchronous libnbd calls.
//   3. activity check over NBD: an importer's check of a crashed holder's pool on the export,
//      wall time against the formula's D' (no reference needed: the target is the formula).

import BenchSupport
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSMultihost
import ZFSPool

let quiet = Logger(label: "nbd-bench") { _ in SwiftLogNoOpLogHandler() }

func shell(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    do { try process.run() } catch { return (-1, "\(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// nbdkit serving `file` on `socket`, with `rtt` milliseconds added to every request.
final class Server {
    let process = Process()
    let uri: String
    init(file: String, socket: String, rtt: Int) throws {
        var arguments = ["-f", "--exit-with-parent", "-U", socket]
        if rtt > 0 { arguments += ["--filter=delay"] }
        arguments += ["file", "file=\(file)"]
        // nbdkit 1.32's delay filter delays reads and writes (and zero, trim, extents), not flushes.
        if rtt > 0 { arguments += ["rdelay=\(rtt)ms", "wdelay=\(rtt)ms"] }
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nbdkit")
        if !FileManager.default.isExecutableFile(atPath: "/usr/sbin/nbdkit") {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/nbdkit")
        }
        process.arguments = arguments
        try process.run()
        uri = "nbd+unix:///?socket=\(socket)"
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: socket) { usleep(10_000) }
        usleep(50_000)
    }
    /// SIGTERM, then SIGKILL after 1 s: nbdkit waits for its clients to hang up, and a crashed
    /// holder's connections are never hung up.
    func stop() {
        process.terminate()
        for _ in 0..<100 where process.isRunning { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// An NBD device that records its requests (a replay trace) and the issue instants of its
/// label-area writes (the heartbeat's).
final class Recorder: Sendable {
    let trace = Mutex<[String]>([])
    let tracing = Mutex(false)
    let labelWrites = Mutex<[ContinuousClock.Instant]>([])
    /// Nanoseconds spent inside the NBD device's calls while tracing, summed over requests.
    let deviceNanoseconds = Atomic<Int64>(0)
    func note(_ line: String) { if tracing.withLock({ $0 }) { trace.withLock { $0.append(line) } } }

    /// Runs one device call, adding its duration to ``deviceNanoseconds`` while tracing.
    func timed(_ body: () throws(DeviceError) -> Void) throws(DeviceError) {
        let start = ContinuousClock.now
        defer {
            if tracing.withLock({ $0 }) {
                let (seconds, attoseconds) = (ContinuousClock.now - start).components
                deviceNanoseconds.add(seconds * 1_000_000_000 + attoseconds / 1_000_000_000, ordering: .relaxed)
            }
        }
        try body()
    }
}

struct RecordingDevice: BlockDevice {
    let base: NBDBlockDevice
    let recorder: Recorder
    var path: String { base.path }
    var sizeInBytes: UInt64 { base.sizeInBytes }
    var isBlockDevice: Bool { base.isBlockDevice }
    var forcesUnitAccess: Bool { base.forcesUnitAccess }
    func read(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        recorder.note("R \(offset) \(buffer.count)")
        try recorder.timed { () throws(DeviceError) in try base.read(into: buffer, atAbsoluteOffset: offset) }
    }
    func write(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        recorder.note("W \(offset) \(buffer.count) 0")
        try recorder.timed { () throws(DeviceError) in try base.write(from: buffer, atAbsoluteOffset: offset) }
    }
    func writeForcingUnitAccess(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        let labelArea: UInt64 = 512 << 10
        if offset < labelArea || offset >= sizeInBytes &- labelArea {
            let now = ContinuousClock.now
            recorder.labelWrites.withLock { $0.append(now) }
        }
        recorder.note("W \(offset) \(buffer.count) \(base.forcesUnitAccess ? 1 : 0)")
        try recorder.timed { () throws(DeviceError) in try base.writeForcingUnitAccess(from: buffer, atAbsoluteOffset: offset) }
    }
    func flush() throws(DeviceError) {
        recorder.note("F")
        try recorder.timed { () throws(DeviceError) in try base.flush() }
    }
}

func host(_ id: UInt64, _ recorder: Recorder, tunables: MultihostTunables) -> PoolHost {
    PoolHost(
        environment: .init(
            hostID: id, hostname: "nbd-bench-\(id)", multihostTunables: MultihostTunablesStore(tunables),
            openDevice: { path in
                RecordingDevice(base: try NBDBlockDevice(uri: path, mode: .readWrite), recorder: recorder)
            }, logger: quiet))
}

/// Prints a line at once, even into a pipe (print's stdout is block-buffered there).
func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

func median(_ values: [Double]) -> Double { percentile(values, 0.5) }

// MARK: - Run

var rtts = [0, 5, 50]
var heartbeats = 25
var puts = 64
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--rtt": rtts = (arguments.next() ?? "").split(separator: ",").compactMap { Int($0) }
    case "--heartbeats": heartbeats = Int(arguments.next() ?? "") ?? heartbeats
    case "--puts": puts = Int(arguments.next() ?? "") ?? puts
    default: fail("usage: nbd-bench [--rtt 0,5,50] [--heartbeats 25] [--puts 64]")
    }
}

let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("nbd-bench-\(getpid())")
try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: scratch) }
let referenceBinary = scratch.appendingPathComponent("nbd_ref").path
let gcc = shell("/usr/bin/env", ["gcc", "-O2", Checkout.benchmarks("reference/nbd_ref.c").path, "-lnbd", "-o", referenceBinary])
guard gcc.status == 0 else { fail("cannot build the libnbd reference: \(gcc.output)") }

let interval: UInt64 = 200
say("nbd-bench: RTT added by nbdkit's delay filter; heartbeat interval \(interval) ms (one leaf); \(puts) puts of 16 KiB + sync")
say(String(format: "%-6@ %-34@ %-34@ %-28@ %@", "RTT", "heartbeat |err| median/p99 (ours)", "reference C loop median/p99", "puts+sync ours / C replay (time in NBD calls)", "activity check wall - D'"))
for rtt in rtts {
    let file = scratch.appendingPathComponent("leaf-\(rtt).img").path
    makeSparseFile(file, bytes: 128 << 20)
    let server = try Server(file: file, socket: scratch.appendingPathComponent("s\(rtt).sock").path, rtt: rtt)
    defer { server.stop() }
    let period = Double(interval) / 1000

    // 1. Heartbeat cadence (ours).
    let recorder = Recorder()
    let tunables = MultihostTunables(intervalInMilliseconds: interval, failIntervals: 0, importIntervals: 10)
    let a = host(0xA, recorder, tunables: tunables)
    let pool = try await a.create(name: "nbdhb\(rtt)", layout: [.leaf(server.uri)], properties: ["multihost": "on"])
    let runner = Task { try await a.multihostService.run() }
    try await Task.sleep(for: .milliseconds(Int(interval) * 3))
    recorder.labelWrites.withLock { $0.removeAll() }
    try await Task.sleep(for: .milliseconds(Int(interval) * (heartbeats + 1)))
    let times = recorder.labelWrites.withLock { $0 }
    let gaps = zip(times.dropFirst(), times).map { seconds($0 - $1) }
    let ours = gaps.map { abs($0 - period) / period * 100 }

    // 3. Activity check over NBD: the holder crashes, an importer's check waits D'.
    a.forget(pool.name)
    runner.cancel()
    _ = try? await runner.value
    try await Task.sleep(for: .milliseconds(Int(interval) + 2 * rtt))
    var check = ActivityCheckDriver.Configuration(pool: pool.name, localHostID: 0xB, tunables: tunables)
    check.exportedPool = .inactive
    let driver = ActivityCheckDriver(
        configuration: check, probe: PoolDevicesProbe(poolGUID: pool.guid, paths: [server.uri]), logger: quiet)
    let begin = ContinuousClock.now
    let verdict = try await driver.run()
    let wall = seconds(ContinuousClock.now - begin)
    guard case .noActivity(_, let plan, _) = verdict else { fail("RTT \(rtt): expected no activity, got \(verdict)") }
    let overshoot = (wall - seconds(plan.extendedDuration)) * 1e3

    // Reference heartbeat loop, same export, same period.
    let ring = UberblockRing(ashift: 12)
    let mmpOffset = ring.slotOffset(ring.mmpSlotIndex, labelOffset: 0)
    let reference = shell(referenceBinary, ["heartbeat", server.uri, String(interval), String(heartbeats + 1), String(mmpOffset)])
    guard reference.status == 0 else { fail("reference heartbeat loop failed: \(reference.output)") }
    let refErrors = reference.output.split(separator: "\n").compactMap { Double($0) }.map { abs($0 / 1e9 - period) / period * 100 }

    // 2. Put throughput (multihost off), traced; the reference replays the trace.
    let b = host(0xC, recorder, tunables: tunables)
    let imported = try await b.importPool(pool.name, searchPaths: [server.uri], force: true)
    try await imported.setProperty("multihost", "off")
    _ = try await imported.sync()
    var random = SplitMix64(seed: UInt64(rtt) + 1)
    let objects = (0..<puts).map { _ in random.bytes(16 << 10) }
    recorder.trace.withLock { $0.removeAll() }
    recorder.deviceNanoseconds.store(0, ordering: .relaxed)
    recorder.tracing.withLock { $0 = true }
    let putStart = ContinuousClock.now
    for (index, bytes) in objects.enumerated() { try await imported.put("o\(index)", bytes) }
    _ = try await imported.sync()
    let putWall = seconds(ContinuousClock.now - putStart)
    recorder.tracing.withLock { $0 = false }
    let traceFile = scratch.appendingPathComponent("trace-\(rtt).txt").path
    try recorder.trace.withLock { $0.joined(separator: "\n") + "\n" }.write(toFile: traceFile, atomically: true, encoding: .utf8)
    let replay = shell(referenceBinary, ["replay", server.uri, traceFile])
    guard replay.status == 0, let replayNanoseconds = Double(replay.output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
        fail("reference replay failed: \(replay.output)")
    }
    let requests = recorder.trace.withLock { $0.count }
    let inDevice = Double(recorder.deviceNanoseconds.load(ordering: .relaxed)) / 1e9
    try await b.export(imported.name)

    say(String(format: "%-6@ %-34@ %-34@ %-28@ %@",
                 "\(rtt) ms" as NSString,
                 String(format: "%.3f %% / %.3f %% (%d gaps)", median(ours), percentile(ours, 0.99), ours.count) as NSString,
                 String(format: "%.3f %% / %.3f %% (%d gaps)", median(refErrors), percentile(refErrors, 0.99), refErrors.count) as NSString,
                 String(format: "%.3f / %.3f s = %.2fx (%d req, %.3f s in the device)", putWall, replayNanoseconds / 1e9,
                        putWall / (replayNanoseconds / 1e9), requests, inDevice) as NSString,
                 String(format: "%+.1f ms (D' %.3f s)", overshoot, seconds(plan.extendedDuration)) as NSString))
    unlink(file)
}
