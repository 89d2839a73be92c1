// mmp-bench: multihost (MMP) timing and cost with real clocks and real files (BENCHMARKS.md §6).
//
//   swift run -c release mmp-bench [--checks 10] [--detections 20] [--cpu-seconds 20]
//                                  [--cpu-only] [--directory DIR] [--keep]
//
// Short tunables everywhere but part 4: interval 100 ms, fail intervals 10, import intervals 10.
//
//   1. Activity-check overshoot. Host A creates a 2-leaf multihost mirror, heartbeats for 0.5 s
//      and stops (`forget`, as a crash). An `ActivityCheckDriver` for host B (a different hostid,
//      `PoolDevicesProbe` on the files, `ContinuousClock`) runs N checks; each ends `.noActivity`.
//      Reported: wall time of `run()` minus the plan's extended duration D' (median, max).
//      Reference (modelled, not a libzpool run): OpenZFS 2.1.11's loop sleeps 1 s per poll and stops
//      when it wakes past the deadline, so it takes ceil(D' / 1 s) s for the same D'.
//   2. Detection of a live holder. Host A holds a 2-leaf mirror with its `multihostService`
//      running; after a random pause of 0–interval, B's check starts; time until `.active`.
//      Compared with A's heartbeat period (interval / leaves) and with OpenZFS's 1 s poll (its
//      first re-read happens one 1 s sleep after the start).
//   3. Heartbeat cadence. Every write A's devices receive in the label areas during part 2 (and
//      then for --cpu-seconds with A alone, no check of B running in the process) is
//      timed (a recording `BlockDevice` from `openDevice`); gaps between successive writes against
//      interval / leaves: median and p99 absolute error as % of interval / leaves. Reference,
//      same run: a bare thread waking every 50 ms on a condition variable (CLOCK_MONOTONIC,
//      default timer slack) for the same time, its wake-up gaps timed the same way.
//   4. CPU. 10 pools × 10 leaves (sparse 64 MiB files), default interval 1000 ms, the host's
//      `multihostService` running for T s: getrusage(RUSAGE_SELF) user+sys / wall, as % of one
//      core. References, same T: the same layout with multihost off, same service; and bare
//      wake-ups at the heartbeats' rate (10 threads × 10 timed waits a second on a condition
//      variable, doing nothing else), once on a shared 100 ms grid (as our heartbeats wake) and
//      once spread over it (as ten independent pool threads would) — what waking alone costs
//      on this machine.

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

// MARK: - Options

struct Options {
    var checks = 10
    var detections = 20
    var cpuSeconds = 20
    var directory: String?
    var keep = false
    /// Part 4 alone (for profiling the heartbeat's CPU).
    var cpuOnly = false

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        parseOptions(
            arguments, into: &options,
            numbers: ["--checks": \.checks, "--detections": \.detections, "--cpu-seconds": \.cpuSeconds],
            flags: ["--cpu-only": \.cpuOnly], directory: \.directory, keep: \.keep,
            usage: "usage: mmp-bench [--checks N] [--detections N] [--cpu-seconds N] [--cpu-only] [--directory DIR] [--keep]")
        return options
    }
}


// MARK: - Helpers





/// CPU time (user + system) of this process so far.
func processCPUSeconds() -> Double {
    var usage = rusage()
    guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { fail("getrusage failed: \(String(cString: strerror(errno)))") }
    func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return s(usage.ru_utime) + s(usage.ru_stime)
}

let quiet = Logger(label: "mmp-bench") { _ in SwiftLogNoOpLogHandler() }
let shortTunables = MultihostTunables(intervalInMilliseconds: 100, failIntervals: 10, importIntervals: 10)
let leafBytes = 64 << 20
/// A's and B's hostids (B only reads).
let hostA: UInt64 = 0xA11CE
let hostB: UInt32 = 0xB0B

/// The monotonic times of the writes that land in a device's label areas (front and back 512 KiB).
final class WriteLog: Sendable {
    let times = Mutex<[ContinuousClock.Instant]>([])
    var snapshot: [ContinuousClock.Instant] { times.withLock { $0 } }
    func clear() { times.withLock { $0.removeAll() } }
}

/// A file device that timestamps its label-area writes into a `WriteLog` (the heartbeat's).
struct RecordingDevice: BlockDevice {
    let base: any BlockDevice
    let log: WriteLog
    var path: String { base.path }
    var sizeInBytes: UInt64 { base.sizeInBytes }
    var isBlockDevice: Bool { base.isBlockDevice }
    func read(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        try base.read(into: buffer, atAbsoluteOffset: offset)
    }
    func write(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        try base.write(from: buffer, atAbsoluteOffset: offset)
        let labelArea: UInt64 = 512 << 10
        if offset < labelArea || offset >= sizeInBytes &- labelArea {
            let now = ContinuousClock.now
            log.times.withLock { $0.append(now) }
        }
    }
    func flush() throws(DeviceError) { try base.flush() }
}

func makeHost(
    id: UInt64, name: String, tunables: MultihostTunables, log: WriteLog? = nil
) -> PoolHost {
    PoolHost(
        environment: PoolHost.Environment(
            hostID: id, hostname: name, multihostTunables: MultihostTunablesStore(tunables),
            openDevice: { path in
                let file = try FileBlockDevice(path: path, mode: .readWrite)
                guard let log else { return file }
                return RecordingDevice(base: file, log: log)
            },
            logger: quiet))
}

/// B's read-only check of the pool on `paths` (`zpk activity`'s driver), on the real clocks.
func checkDriver(guid: PoolGUID, paths: [String]) -> ActivityCheckDriver {
    var configuration = ActivityCheckDriver.Configuration(pool: "mmp", localHostID: hostB, tunables: shortTunables)
    configuration.exportedPool = .inactive
    return ActivityCheckDriver(
        configuration: configuration, probe: PoolDevicesProbe(poolGUID: guid, paths: paths), logger: quiet)
}

/// Runs `service` until the returned task is cancelled.
func start(_ service: some Service) -> Task<Void, any Error> {
    Task { try await service.run() }
}

// MARK: - 1. Activity-check overshoot

struct CheckResult {
    var wall: Double
    var planned: Double
}

func measureChecks(directory: String, count: Int) async throws -> [CheckResult] {
    let paths = (0..<2).map { "\(directory)/check-\($0).img" }
    for path in paths { makeSparseFile(path, bytes: leafBytes) }
    let a = makeHost(id: hostA, name: "host-a", tunables: shortTunables)
    let pool = try await a.create(name: "mmpcheck", layout: [.mirror(paths)], properties: ["multihost": "on"])
    let runner = start(a.multihostService)
    try await Task.sleep(for: .milliseconds(500))
    a.forget(pool.name)  // A stops as by a crash: no export, no more heartbeats
    runner.cancel()
    _ = try? await runner.value
    try await Task.sleep(for: .milliseconds(200))  // the last write in flight lands
    let clock = ContinuousClock()
    var results: [CheckResult] = []
    for index in 0..<count {
        let driver = checkDriver(guid: pool.guid, paths: paths)
        let begin = clock.now
        let verdict = try await driver.run()
        let wall = seconds(clock.now - begin)
        guard case .noActivity(_, let plan, _) = verdict else { fail("check \(index + 1): expected no activity, got \(verdict)") }
        results.append(CheckResult(wall: wall, planned: seconds(plan.extendedDuration)))
        print(String(format: "  check %2d: D' %.3f s, wall %.3f s, over %+.1f ms", index + 1, results.last!.planned, wall, (wall - results.last!.planned) * 1e3))
    }
    for path in paths { unlink(path) }
    return results
}

// MARK: - 2 and 3. Detection of a live holder; heartbeat cadence

struct LiveResult {
    var detections: [Double]
    var detectedAfter: [Double]
    var gaps: [Double]
    var heartbeats: UInt64
    var period: Double
    /// Gaps while A is alone (no check of B running in this process), over `quietSeconds`.
    var quietGaps: [Double]
}

func measureLive(directory: String, count: Int, quietSeconds: Int) async throws -> LiveResult {
    let leaves = 2
    let paths = (0..<leaves).map { "\(directory)/live-\($0).img" }
    for path in paths { makeSparseFile(path, bytes: leafBytes) }
    let log = WriteLog()
    let a = makeHost(id: hostA, name: "host-a", tunables: shortTunables, log: log)
    let pool = try await a.create(name: "mmplive", layout: [.mirror(paths)], properties: ["multihost": "on"])
    let runner = start(a.multihostService)
    try await Task.sleep(for: .milliseconds(500))  // the heartbeat is in its stride
    log.clear()
    let heartbeatsBefore = pool.status().multihost?.heartbeatsWritten ?? 0
    let clock = ContinuousClock()
    var detections: [Double] = [], detectedAfter: [Double] = []
    for index in 0..<count {
        try await Task.sleep(for: .milliseconds(Int.random(in: 0..<Int(shortTunables.intervalInMilliseconds))))
        let driver = checkDriver(guid: pool.guid, paths: paths)
        let begin = clock.now
        let verdict = try await driver.run()
        let wall = seconds(clock.now - begin)
        guard case .active(let holder, _) = verdict else { fail("detection \(index + 1): expected .active, got \(verdict)") }
        detections.append(wall)
        detectedAfter.append(seconds(holder.detectedAfter))
    }
    let times = log.snapshot
    let heartbeats = (pool.status().multihost?.heartbeatsWritten ?? 0) - heartbeatsBefore
    // The same holder alone: B's checks share this process's two CPUs above.
    log.clear()
    try await Task.sleep(for: .seconds(quietSeconds))
    let quietTimes = log.snapshot
    runner.cancel()
    _ = try? await runner.value
    try await a.export(pool.name)
    for path in paths { unlink(path) }
    let gaps = zip(times.dropFirst(), times).map { seconds($0 - $1) }
    let period = Double(shortTunables.intervalInMilliseconds) / 1000 / Double(leaves)
    let quietGaps = zip(quietTimes.dropFirst(), quietTimes).map { seconds($0 - $1) }
    return LiveResult(
        detections: detections, detectedAfter: detectedAfter, gaps: gaps, heartbeats: heartbeats, period: period,
        quietGaps: quietGaps)
}

// MARK: - 4. CPU

func measureCPU(directory: String, multihost: Bool, pools: Int, leaves: Int, duration: Duration) async throws -> (cpu: Double, wall: Double, heartbeats: UInt64) {
    let tag = multihost ? "on" : "off"
    let host = makeHost(id: hostA, name: "host-a", tunables: MultihostTunables())
    var paths: [String] = []
    var names: [String] = []
    for p in 0..<pools {
        let leafPaths = (0..<leaves).map { "\(directory)/cpu-\(tag)-\(p)-\($0).img" }
        for path in leafPaths { makeSparseFile(path, bytes: leafBytes) }
        paths += leafPaths
        let pool = try await host.create(
            name: "cpu\(tag)\(p)", layout: leafPaths.map { .leaf($0) }, properties: ["multihost": multihost ? "on" : "off"])
        names.append(pool.name)
    }
    let runner = start(host.multihostService)
    try await Task.sleep(for: .seconds(2))  // every heartbeat is running
    let before = host.openPools.reduce(UInt64(0)) { $0 + ($1.status().multihost?.heartbeatsWritten ?? 0) }
    let clock = ContinuousClock()
    let cpuStart = processCPUSeconds()
    let begin = clock.now
    try await Task.sleep(for: duration)
    let cpu = processCPUSeconds() - cpuStart
    let wall = seconds(clock.now - begin)
    let after = host.openPools.reduce(UInt64(0)) { $0 + ($1.status().multihost?.heartbeatsWritten ?? 0) }
    runner.cancel()
    _ = try? await runner.value
    for name in names { try await host.export(name) }
    for path in paths { unlink(path) }
    return (cpu, wall, after - before)
}

/// A condition variable on CLOCK_MONOTONIC that nobody signals: timed waits and nothing else
/// (what `WakeSignal` does between heartbeats), for the references of parts 3 and 4.
final class TimedWaiter {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func sleep(untilMonotonicNanoseconds at: Int) {
        var wakeAt = timespec(tv_sec: at / 1_000_000_000, tv_nsec: at % 1_000_000_000)
        pthread_mutex_lock(mutex)
        while pthread_cond_timedwait(condition, mutex, &wakeAt) == 0 {}
        pthread_mutex_unlock(mutex)
    }
}

/// Gaps between the wake-ups of a bare thread doing timed waits every `period` for `duration`.
func measureBareCadence(period: Duration, duration: Duration) -> [Double] {
    let periodNS = Int(nanoseconds(period))
    let rounds = Int(seconds(duration) / seconds(period))
    let woke = Mutex<[Int]>([])
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        let waiter = TimedWaiter()
        let first = monotonicNanoseconds() + periodNS
        var times: [Int] = []
        for round in 0..<rounds {
            let at = first + round * periodNS
            waiter.sleep(untilMonotonicNanoseconds: at)
            times.append(monotonicNanoseconds())
        }
        woke.withLock { $0 = times }
        done.signal()
    }
    thread.start()
    done.wait()
    let times = woke.withLock { $0 }
    return zip(times.dropFirst(), times).map { Double($0 - $1) / 1e9 }
}

/// CLOCK_MONOTONIC now, in nanoseconds.
func monotonicNanoseconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int(ts.tv_sec) * 1_000_000_000 + Int(ts.tv_nsec)
}

func nanoseconds(_ d: Duration) -> Int64 {
    d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
}

/// CPU of `threads` threads each waking `perSecond` times a second for `duration` and doing
/// nothing else: on a shared grid (`aligned`) or with phases spread over the period.
func measureWakeUps(threads: Int, perSecond: Int, duration: Duration, aligned: Bool) -> (cpu: Double, wall: Double) {
    let period = 1_000_000_000 / perSecond
    let rounds = Int(seconds(duration)) * perSecond
    let first = (monotonicNanoseconds() / period + 2) * period
    let done = DispatchGroup()
    let cpuStart = processCPUSeconds()
    let begin = ContinuousClock.now
    for index in 0..<threads {
        done.enter()
        let thread = Thread {
            let waiter = TimedWaiter()
            let phase = aligned ? 0 : index * period / threads
            for round in 0..<rounds {
                let at = first + phase + round * period
                waiter.sleep(untilMonotonicNanoseconds: at)
            }
            done.leave()
        }
        thread.start()
    }
    done.wait()
    return (processCPUSeconds() - cpuStart, seconds(ContinuousClock.now - begin))
}

// MARK: - Main

let options = Options.parse(CommandLine.arguments)
let directory = options.directory ?? {
    let path = NSTemporaryDirectory() + "mmp-bench-\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}()
defer { if !options.keep && options.directory == nil { try? FileManager.default.removeItem(atPath: directory) } }

print("mmp-bench in \(directory): interval 100 ms, fail 10, import 10 (parts 1-3); \(options.checks) checks, \(options.detections) detections, CPU \(options.cpuSeconds) s")

if options.cpuOnly {
    print("4. CPU, 10 pools x 10 leaves, interval 1000 ms")
    let on = try await measureCPU(directory: directory, multihost: true, pools: 10, leaves: 10, duration: .seconds(options.cpuSeconds))
    let off = try await measureCPU(directory: directory, multihost: false, pools: 10, leaves: 10, duration: .seconds(options.cpuSeconds))
    let wakes = measureWakeUps(threads: 10, perSecond: 10, duration: .seconds(options.cpuSeconds), aligned: true)
    print(String(format: "on %.3f %% of a core (%llu heartbeats in %.2f s), off %.3f %%, difference %.3f %%; bare aligned wake-ups %.3f %%",
                 on.cpu / on.wall * 100, on.heartbeats, on.wall, off.cpu / off.wall * 100, (on.cpu / on.wall - off.cpu / off.wall) * 100,
                 wakes.cpu / wakes.wall * 100))
    exit(0)
}

print("1. activity checks of a stopped holder")
let checks = try await measureChecks(directory: directory, count: options.checks)
print("2. detections of a live holder")
let live = try await measureLive(directory: directory, count: options.detections, quietSeconds: options.cpuSeconds)
print("3. reference: bare timed waits every 50 ms")
let bareGaps = measureBareCadence(period: .milliseconds(50), duration: .seconds(options.cpuSeconds))
print("4. CPU, 10 pools x 10 leaves, interval 1000 ms")
let cpuOn = try await measureCPU(directory: directory, multihost: true, pools: 10, leaves: 10, duration: .seconds(options.cpuSeconds))
let cpuOff = try await measureCPU(directory: directory, multihost: false, pools: 10, leaves: 10, duration: .seconds(options.cpuSeconds))
let wakesAligned = measureWakeUps(threads: 10, perSecond: 10, duration: .seconds(options.cpuSeconds), aligned: true)
let wakesSpread = measureWakeUps(threads: 10, perSecond: 10, duration: .seconds(options.cpuSeconds), aligned: false)

print("")
let over = checks.map { ($0.wall - $0.planned) * 1e3 }
let openZFS = checks.map { ($0.planned).rounded(.up) }
let openZFSOver = zip(openZFS, checks).map { ($0 - $1.planned) * 1e3 }
let ratios = zip(openZFS, checks).map { $0 / $1.wall }
print(String(format: "%-46@ median %+.1f ms, max %+.1f ms (target <= 50 ms); D' %.3f..%.3f s",
             "1. check wall - D' (ours, measured)" as NSString, median(over), over.max()!, checks.map(\.planned).min()!, checks.map(\.planned).max()!))
print(String(format: "%-46@ median %+.1f ms, max %+.1f ms; wall OpenZFS/ours median %.2fx (%.2f..%.2f)",
             "   OpenZFS 2.1.11 ceil(D'/1 s) (modelled)" as NSString, median(openZFSOver), openZFSOver.max()!, median(ratios), ratios.min()!, ratios.max()!))
let det = live.detections.map { $0 * 1e3 }
print(String(format: "%-46@ median %.1f ms, p90 %.1f ms, max %.1f ms (n=%d); = %.2fx / %.2fx heartbeat period %.0f ms (median/max); OpenZFS 1 s poll: ~1000 ms (%.1fx ours median)",
             "2. detection of a live holder (wall)" as NSString, median(det), percentile(det, 0.9), det.max()!, det.count,
             median(det) / (live.period * 1e3), det.max()! / (live.period * 1e3), live.period * 1e3, 1000 / median(det)))
print(String(format: "%-46@ median %.1f ms, max %.1f ms (from the check's first read to the changed one)",
             "   detectedAfter reported by the driver" as NSString, median(live.detectedAfter) * 1e3, live.detectedAfter.max()! * 1e3))
let errors = live.gaps.map { abs($0 - live.period) / live.period * 100 }
print(String(format: "%-46@ %d label-area writes timed, %llu heartbeats counted; median |err| %.3f %%, p99 %.3f %%, max %.3f %% of %.0f ms (target < 1 %%); mean gap %.3f ms",
             "3. heartbeat cadence error" as NSString, live.gaps.count + 1, live.heartbeats, median(errors), percentile(errors, 0.99), errors.max() ?? 0,
             live.period * 1e3, live.gaps.reduce(0, +) / Double(max(live.gaps.count, 1)) * 1e3))
let quietErrors = live.quietGaps.map { abs($0 - live.period) / live.period * 100 }
print(String(format: "%-46@ %d writes in %d s, A alone; median |err| %.3f %%, p99 %.3f %%, max %.3f %% (target < 1 %%); mean gap %.3f ms",
             "   same holder, no check of B running" as NSString, live.quietGaps.count + 1, options.cpuSeconds, median(quietErrors),
             percentile(quietErrors, 0.99), quietErrors.max() ?? 0, live.quietGaps.reduce(0, +) / Double(max(live.quietGaps.count, 1)) * 1e3))
let bareErrors = bareGaps.map { abs($0 - 0.05) / 0.05 * 100 }
print(String(format: "%-46@ %d wake-ups in %d s; median |err| %.3f %%, p99 %.3f %%, max %.3f %%; mean gap %.3f ms",
             "   reference: bare thread, timed waits of 50 ms" as NSString, bareGaps.count + 1, options.cpuSeconds, median(bareErrors),
             percentile(bareErrors, 0.99), bareErrors.max() ?? 0, bareGaps.reduce(0, +) / Double(max(bareGaps.count, 1)) * 1e3))
print(String(format: "%-46@ %.3f %% of a core (%.3f s CPU / %.2f s; %llu heartbeats = %.1f/s)",
             "4. CPU, 10 pools x 10 leaves, multihost on" as NSString, cpuOn.cpu / cpuOn.wall * 100, cpuOn.cpu, cpuOn.wall, cpuOn.heartbeats, Double(cpuOn.heartbeats) / cpuOn.wall))
print(String(format: "%-46@ %.3f %% of a core (%.3f s CPU / %.2f s); difference %.3f %% (target < 1 %%)",
             "   reference: same pools, multihost off" as NSString, cpuOff.cpu / cpuOff.wall * 100, cpuOff.cpu, cpuOff.wall,
             (cpuOn.cpu / cpuOn.wall - cpuOff.cpu / cpuOff.wall) * 100))
print(String(format: "%-46@ %.3f %% of a core aligned on a 100 ms grid, %.3f %% spread over it (%.1fx)",
             "   reference: bare wake-ups, 10 threads x 10/s" as NSString, wakesAligned.cpu / wakesAligned.wall * 100,
             wakesSpread.cpu / wakesSpread.wall * 100, (wakesSpread.cpu / wakesSpread.wall) / (wakesAligned.cpu / wakesAligned.wall)))
print(String(format: "%-46@ ours / bare aligned wake-ups %.2fx; ours / bare spread wake-ups %.2fx",
             "   ratios" as NSString, (cpuOn.cpu / cpuOn.wall) / (wakesAligned.cpu / wakesAligned.wall),
             (cpuOn.cpu / cpuOn.wall) / (wakesSpread.cpu / wakesSpread.wall)))
