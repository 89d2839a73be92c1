// Multihost with real processes: two zpkd with different hostids on the same device
// files, short tunables (interval 200 ms, fail intervals 5, import intervals 10), so that the
// activity check after a crash lasts fail × interval × 200 % = 2.0 s plus a random 0-25 %.
//
// Time bounds here are on real processes on a 2-core machine shared with other builds, so each
// is the MMP formula's value with a generous slack on the slow side (``slowSlack``), and exact
// on the side the protocol guarantees (an import after a crash is never earlier than the
// formula allows). How fast things are on time is measured in mmp-bench (BENCHMARKS.md §6) and
// in virtual time (ZFSMultihostTests), not here. The suite is serialized to bound the number
// of daemons running at once, not for its timing.

import Foundation
import Testing
import ZFSTestSupport
import ZPKDaemon
import ZPKControl

#if canImport(Glibc)
import Glibc
#endif

/// The tunables of every test here, as zpkd flags.
let shortMultihostTunables = [
    "--zfs-multihost-interval", "200", "--zfs-multihost-fail-intervals", "5", "--zfs-multihost-import-intervals", "10",
]

/// A pool held by host A, with host B started on the same files.
struct TwoHosts {
    let workspace: Workspace
    var a: DaemonProcess
    var b: DaemonProcess
    static let hostA = (id: "aaaa0001", name: "host-a")
    static let hostB = (id: "bbbb0002", name: "host-b")

    /// Starts both hosts (no pool yet).
    private init(_ name: String) throws {
        workspace = try Workspace(name)
        a = try workspace.startDaemon(
            hostID: Self.hostA.id, hostname: Self.hostA.name, instance: "a", extra: shortMultihostTunables)
        b = try workspace.startDaemon(
            hostID: Self.hostB.id, hostname: Self.hostB.name, instance: "b", extra: shortMultihostTunables)
    }

    /// Both hosts; A creates a multihost mirror `pool` over two new files, puts `object` and syncs.
    static func make(_ name: String, pool: String = "mh", object: String = "hello from host A\n") async throws -> TwoHosts {
        let hosts = try TwoHosts(name)
        let paths = try hosts.workspace.devices([pool + "-d1", pool + "-d2"])
        try await hosts.createPool(pool, paths: paths, object: object)
        return hosts
    }

    func createPool(_ pool: String, paths: [String], object: String) async throws {
        let created = try await onA(["create", "-o", "multihost=on", pool, "mirror"] + paths)
        try #require(created.status == 0, "\(created)")
        let file = workspace.directory.path("\(pool).object")
        try Data(object.utf8).write(to: URL(fileURLWithPath: file))
        try #require(try await onA(["object", "put", pool, "greeting", file]).status == 0)
        try #require(try await onA(["sync", pool]).status == 0)
    }

    func onA(_ arguments: [String], environment: [String: String] = [:]) async throws -> OpenZFS.ProcessOutput {
        try await zpkOffThePool(arguments, socket: workspace.socket(instance: "a"), environment: environment)
    }

    func onB(_ arguments: [String], environment: [String: String] = [:]) async throws -> OpenZFS.ProcessOutput {
        try await zpkOffThePool(arguments, socket: workspace.socket(instance: "b"), environment: environment)
    }
}

/// Runs zpk against `socket` on a thread of its own: these tests wait for seconds on processes,
/// and a synchronous test body would hold one of the cooperative pool's few threads meanwhile
/// (starving the suites whose in-process servers need it).
func zpkOffThePool(
    _ arguments: [String], socket: String, environment extra: [String: String] = [:]
) async throws -> OpenZFS.ProcessOutput {
    try await onThread {
        var environment = OpenZFS.pinnedEnvironment
        environment["ZPK_SOCKET"] = socket
        for (key, value) in extra { environment[key] = value }
        return try OpenZFS.run(try Executable.path("zpk"), arguments, environment: environment, timeout: .seconds(60))
    }
}

/// What a loaded machine may add to a formula's time before a bound here fails.
let slowSlack: Duration = .seconds(20)

/// Polls the state of `pool` on host A until it is `wanted`, for the formula's `expected` time
/// plus ``slowSlack``. Returns the state last seen and how long the polling took.
func pollState(
    _ wanted: String, of pool: String, hosts: TwoHosts, expected: Duration
) async throws -> (state: String, after: Duration) {
    let start = ContinuousClock.now
    var state = ""
    while state != wanted, ContinuousClock.now - start < expected + slowSlack {
        let status = try JSON.decode(try await hosts.onA(["status", pool, "--zpk-json"]).stdout)
        state = status["pools"]?.arrayValue?.first?["state"]?.stringValue ?? ""
    }
    return (state, ContinuousClock.now - start)
}

/// Runs `body` and returns its result with the wall time it took.
func timed<R>(_ body: () async throws -> R) async rethrows -> (R, Duration) {
    let start = ContinuousClock.now
    let result = try await body()
    return (result, ContinuousClock.now - start)
}

/// The JSON progress events (`ZPK_PROGRESS=json`) on a zpk's stderr.
func progressEvents(_ output: OpenZFS.ProcessOutput) -> [JSON] {
    output.stderrText.split(separator: "\n").compactMap { line in
        guard line.hasPrefix("{\"") else { return nil }
        let event = try? JSON.decode(Array(line.utf8))
        return event?["event"]?.stringValue == "progress" ? event : nil
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

@Suite(.offTheCooperativePool, .serialized) struct MultihostDaemonTests {
    @Test func aLiveHolderRefusesImportAndAKilledOneIsImportedAfterTheFormula() async throws {
        let hosts = try await TwoHosts.make("zpkd-mmp-kill")
        let directory = hosts.workspace.path

        // A is alive: B's import -f is refused with exit 3, naming A, soon (A heartbeats every 100 ms).
        let refused = try await hosts.onB(["import", "-d", directory, "-f", "mh"], environment: ["ZPK_PROGRESS": "json"])
        #expect(refused.status == 3, "\(refused)")
        #expect(refused.stderrText.contains("pool is imported on host 'host-a' (hostid=aaaa0001)"), "\(refused)")
        #expect(refused.stderrText.contains("Export the pool on the other system"))
        // Detected before the check's deadline (it would run 2.0-2.5 s): the last countdown event
        // was sent with time still left. (Wall time would include process start-up on a loaded
        // machine; detection latency proper is measured in virtual time in ZFSMultihostTests.)
        let countdown = progressEvents(refused).filter { $0["phase"]?.stringValue == "activity_check" }
        let last = try #require(countdown.last, "\(refused.stderrText)")
        let left = try #require(last["remaining_ms"]?.uint64Value)
        #expect(left > 0, "refused with \(left) ms left: \(countdown)")
        #expect(try await hosts.onB(["list"]).stdoutText == "no pools available\n")

        // A dies: B waits the formula (5 × 200 ms × 2 = 2.0 s, + 0-25 %), then imports.
        #expect(hosts.a.stop(signal: SIGKILL) == 128 + SIGKILL)
        let (imported, importTime) = try await timed {
            try await hosts.onB(["import", "-d", directory, "-f", "mh"], environment: ["ZPK_PROGRESS": "json"])
        }
        #expect(imported.status == 0, "\(imported)")
        let checks = progressEvents(imported).filter { $0["phase"]?.stringValue == "activity_check" }
        let total = try #require(checks.first?["total_ms"]?.uint64Value, "progress events: \(imported.stderrText)")
        #expect((2000...2500).contains(total), "activity check of \(total) ms: the formula says 2000-2500")
        #expect(checks.allSatisfy { $0["pool"]?.stringValue == "mh" })
        #expect(importTime.seconds >= Double(total) / 1000, "never earlier than the check's duration")
        // The check, then the claim (10 import intervals of 200 ms) and the open.
        let formula = Duration.milliseconds(Int64(total)) + .milliseconds(10 * 200)
        #expect(importTime < formula + slowSlack, "check \(total) ms, then the claim (2 s) and the open: \(importTime)")
        let claims = progressEvents(imported).filter { $0["phase"]?.stringValue == "claim" }
        #expect(!claims.isEmpty, "the claim phase reports progress too")
        let read = try await hosts.onB(["object", "get", "mh", "greeting"])
        #expect(read.stdoutText == "hello from host A\n")
        #expect(hosts.b.stop() == 0)
    }

    @Test func aPoolExportedByTheHolderIsImportedAtOnce() async throws {
        let hosts = try await TwoHosts.make("zpkd-mmp-export")
        #expect(try await hosts.onA(["export", "mh"]).status == 0)
        let imported = try await hosts.onB(["import", "-d", hosts.workspace.path, "mh"], environment: ["ZPK_PROGRESS": "json"])
        #expect(imported.status == 0, "\(imported)")
        // No activity-check wait (OpenZFS master would wait fail × interval × 2 = 2.0-2.5 s here,
        // then claim for 10 × 200 ms): only our 0.5 s claim against a racing importer.
        let events = progressEvents(imported)
        #expect(events.allSatisfy { $0["phase"]?.stringValue != "activity_check" }, "\(imported.stderrText)")
        let claims = events.filter { $0["phase"]?.stringValue == "claim" }
        #expect(claims.first?["total_ms"]?.uint64Value == 500, "\(imported.stderrText)")
        #expect(try await hosts.onB(["object", "get", "mh", "greeting"]).stdoutText == "hello from host A\n")
        #expect(hosts.a.stop() == 0)
        #expect(hosts.b.stop() == 0)
    }

    @Test func tunablesAreShownAndAChangeAltersTheHeartbeatCadence() async throws {
        let hosts = try await TwoHosts.make("zpkd-mmp-tunable")
        let shown = try await hosts.onA(["tunable", "get"])
        #expect(shown.triple == (0, """
            NAME                            VALUE  EFFECTIVE  DEFAULT  UNIT
            zfs_multihost_interval          200    200        1000     milliseconds
            zfs_multihost_fail_intervals    5      5          10       intervals
            zfs_multihost_import_intervals  10     10         20       intervals

            """, ""))

        func written() async throws -> UInt64 {
            let status = try JSON.decode(try await hosts.onA(["status", "mh", "--zpk-json"]).stdout)
            return try #require(status["pools"]?.arrayValue?.first?["multihost"]?["heartbeats_written"]?.uint64Value)
        }
        /// Heartbeats per second over at least `window`. The time runs from before the first
        /// count to after the second, so it covers every heartbeat counted (the status calls'
        /// latency only lowers the rate, which the lower bound allows for).
        func rate(over window: Duration) async throws -> Double {
            let start = ContinuousClock.now
            let before = try await written()
            try await Task.sleep(for: window)
            let after = try await written()
            return Double(after - before) / (ContinuousClock.now - start).seconds
        }
        // Two leaves, interval 200 ms: one heartbeat every 100 ms, 10/s. A loaded machine can
        // only slow heartbeats down (never more than one per instant), so the bounds are a
        // quarter of the formula below and the formula plus one heartbeat above.
        let window = Duration.seconds(4)
        let fast = try await rate(over: window)
        #expect(fast >= 10 / 4 && fast <= 10 + 1 / window.seconds, "\(fast) heartbeats/s at 200 ms over 2 leaves (formula 10/s)")
        // Interval 2000 ms: 1/s. The change wakes the loop at once and the next two heartbeats
        // (one per leaf) come 50 ms apart (OpenZFS's skip-wait after a tunable change), so at
        // most the formula plus three heartbeats — still below the fast rate's lower bound.
        let set = try await hosts.onA(["tunable", "set", "zfs_multihost_interval", "2000", "--json"])
        #expect(set.status == 0, "\(set)")
        #expect(set.stdoutText.contains("\"value\": 2000"), "\(set.stdoutText)")
        let slow = try await rate(over: window)
        #expect(slow <= 1 + 3 / window.seconds, "\(slow) heartbeats/s at 2000 ms over 2 leaves (formula 1/s)")

        let unknown = try await hosts.onA(["tunable", "set", "zfs_multihost_intervals", "5"])
        #expect(unknown.status == 1)
        #expect(unknown.stderrText == """
            there is no tunable 'zfs_multihost_intervals'; the tunables are zfs_multihost_interval, \
            zfs_multihost_fail_intervals, zfs_multihost_import_intervals

            """)
        let tooLarge = try await hosts.onA(["tunable", "set", "zfs_multihost_fail_intervals", "70000"])
        #expect(tooLarge.status == 1)
        #expect(tooLarge.stderrText.contains("at most 65535 intervals"))
    }

    @Test func errorsOnEveryLeafSuspendOnTimeAndClearResumesWhenNoOneElseWrote() async throws {
        let hosts = try await TwoHosts.make("zpkd-mmp-suspend")
        let leaves = ["mh-d1", "mh-d2"].map { hosts.workspace.directory.path($0) }
        for leaf in leaves { #expect(try await hosts.onA(["inject", "mh", leaf, "error"]).status == 0) }
        // Deadline: the last heartbeat that landed (≤ 100 ms before the inject) + 5 × 200 ms,
        // reached within one interval: 0.9–1.2 s after the inject; the polling zpk adds its own
        // latency on the slow side only.
        let (state, suspendedAfter) = try await pollState(
            "SUSPENDED", of: "mh", hosts: hosts, expected: .milliseconds(5 * 200 + 200))
        #expect(state == "SUSPENDED", "not suspended after \(suspendedAfter)")
        // Never before the deadline, on the daemon's own clock: the suspension names how long
        // no heartbeat had landed, which must exceed 5 × 200 ms (the client's clock cannot
        // say: the injects themselves may take a second on a loaded machine).
        let status = try JSON.decode(try await hosts.onA(["status", "mh", "--zpk-json"]).stdout)
        let suspension = status["pools"]?.arrayValue?.first?["suspension"]?.stringValue ?? ""
        let silent = suspension.split(separator: "(none for ").dropFirst().first?.prefix { $0.isNumber }
        let silentMilliseconds = try #require(silent.flatMap { Int($0) }, "\(suspension)")
        #expect(silentMilliseconds >= 5 * 200, "\(suspension)")  // whole ms of a time > 1000 ms
        let text = try await hosts.onA(["status", "mh"])
        #expect(text.stdoutText.contains(" state: SUSPENDED\n"), "\(text.stdoutText)")
        #expect(text.stdoutText.contains("run 'zpk clear mh'"))
        let put = try await hosts.onA(["object", "put", "mh", "late", "/dev/null"])
        #expect(put.status == 1)
        #expect(put.stderrText.contains("suspended"), "\(put)")

        // The devices answer again; nobody else wrote the pool: clear resumes it.
        #expect(try await hosts.onA(["inject", "--clear", "mh"]).status == 0)
        let (cleared, clearTime) = try await timed { try await hosts.onA(["clear", "mh"]) }
        #expect(cleared.status == 0, "\(cleared)")
        #expect(cleared.stdoutText == "pool 'mh' resumed: no other host wrote it while it was suspended\n")
        #expect(cleared.stderrText.hasPrefix("activity_check: "), "clear waits out an activity check, with progress")
        #expect(clearTime >= .seconds(2), "the check over the pool's own leaves lasts the formula: \(clearTime)")
        #expect(try await hosts.onA(["object", "put", "mh", "late", "/dev/null"]).status == 0)
        #expect(try await hosts.onA(["sync", "mh"]).status == 0)
        #expect(hosts.a.stop() == 0)
        #expect(hosts.b.stop() == 0)
    }

    @Test func clearIsRefusedWhileAnotherHostHoldsThePool() async throws {
        let hosts = try await TwoHosts.make("zpkd-mmp-clear-refused")
        let leaves = ["mh-d1", "mh-d2"].map { hosts.workspace.directory.path($0) }
        for leaf in leaves { #expect(try await hosts.onA(["inject", "mh", leaf, "hang"]).status == 0) }
        let (state, after) = try await pollState("SUSPENDED", of: "mh", hosts: hosts, expected: .milliseconds(5 * 200 + 200))
        #expect(state == "SUSPENDED", "not suspended after \(after)")
        // A is suspended and writes nothing: B sees no heartbeat and takes the pool over.
        let imported = try await hosts.onB(["import", "-d", hosts.workspace.path, "-f", "mh"])
        #expect(imported.status == 0, "\(imported)")
        #expect(try await hosts.onA(["inject", "--clear", "mh"]).status == 0)
        let refused = try await hosts.onA(["clear", "mh"])
        #expect(refused.status == 3, "\(refused)")
        #expect(refused.stderrText.contains("host 'host-b' (hostid=bbbb0002)"), "\(refused)")
        #expect(refused.stderrText.contains("zpk export mh"))
        #expect(try await hosts.onB(["object", "get", "mh", "greeting"]).stdoutText == "hello from host A\n")
        #expect(hosts.a.stop(signal: SIGKILL) == 128 + SIGKILL)  // no sync of A's stale view
        #expect(hosts.b.stop() == 0)
    }

    @Test func historyShowsWritesAndSkips() async throws {
        let hosts = try await TwoHosts.make("zpkd-mmp-history")
        let leaves = ["mh-d1", "mh-d2"].map { hosts.workspace.directory.path($0) }
        /// Polls the history until `enough` holds of its records, for the formula's `expected`
        /// time (heartbeats every 100 ms) plus ``slowSlack``.
        func waitForRecords(_ what: String, expected: Duration, _ enough: ([JSON]) -> Bool) async throws {
            let start = ContinuousClock.now
            var records: [JSON] = []
            while ContinuousClock.now - start < expected + slowSlack {
                let json = try JSON.decode(try await hosts.onA(["history", "multihost", "mh", "--json"]).stdout)
                records = json["records"]?.arrayValue ?? []
                if enough(records) { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            Issue.record("no \(what) in the history after \(expected + slowSlack): \(records)")
        }
        func isSkip(_ record: JSON) -> Bool { record["skip"]?.boolValue == true }
        try await waitForRecords("4 heartbeats", expected: .milliseconds(400)) { $0.filter { !isSkip($0) }.count >= 4 }
        // Both leaves hang: every heartbeat finds a write pending and is skipped (mask 0x2).
        for leaf in leaves { #expect(try await hosts.onA(["inject", "mh", leaf, "hang"]).status == 0) }
        try await waitForRecords("skip", expected: .milliseconds(300)) { $0.contains(where: isSkip) }
        #expect(try await hosts.onA(["inject", "--clear", "mh"]).status == 0)

        let text = try await hosts.onA(["history", "multihost", "mh"])
        #expect(text.status == 0)
        #expect(text.stdoutText.hasPrefix(
            "id         txg        timestamp  error  duration   mmp_delay    vdev_guid                vdev_label vdev_path\n"))
        let json = try JSON.decode(try await hosts.onA(["history", "multihost", "mh", "--json"]).stdout)
        let records = try #require(json["records"]?.arrayValue)
        let writes = records.filter { $0["skip"]?.boolValue == false }
        let skips = records.filter { $0["skip"]?.boolValue == true }
        #expect(writes.count >= 4, "\(records.count) records")
        #expect(Set(writes.compactMap { $0["vdev_path"]?.stringValue }) == Set(leaves))
        #expect(writes.contains { $0["error"]?.uint64Value == 0 && ($0["duration"].map { "\($0)" } ?? "") != "" })
        #expect(!skips.isEmpty, "hung leaves make heartbeats skip: \(records)")
        #expect(skips.allSatisfy { $0["vdev_path"] == .null })
        let keys = try #require(records.first?.objectValue?.keys)
        #expect(Set(keys) == [
            "id", "txg", "timestamp", "skip", "error", "duration", "mmp_delay", "vdev_guid", "vdev_label", "vdev_path",
        ])
    }

    @Test func importAllRunsTheChecksConcurrently() async throws {
        let hosts = try await TwoHosts.make("zpkd-mmp-import-all", pool: "p1", object: "one\n")
        let second = try hosts.workspace.devices(["p2-d1", "p2-d2"])
        try await hosts.createPool("p2", paths: second, object: "two\n")
        let directory = hosts.workspace.path

        let refused = try await hosts.onB(["import", "-a", "-d", directory, "-f"])
        #expect(refused.status == 3, "\(refused)")
        #expect(Set(refused.stdoutText.split(separator: "\n")) == [
            "p1\tin use on another host (not imported)", "p2\tin use on another host (not imported)",
        ])

        #expect(hosts.a.stop(signal: SIGKILL) == 128 + SIGKILL)
        let imported = try await hosts.onB(["import", "-a", "-d", directory, "-f"], environment: ["ZPK_PROGRESS": "json"])
        #expect(imported.status == 0, "\(imported)")
        #expect(imported.stdoutText.split(separator: "\n").map { $0.split(separator: "\t").first ?? "" }.sorted() == ["p1", "p2"])
        #expect(imported.stdoutText.split(separator: "\n").allSatisfy { $0.contains("\timported at txg ") })
        let events = progressEvents(imported).filter { $0["phase"]?.stringValue == "activity_check" }
        let order = events.compactMap { $0["pool"]?.stringValue }
        #expect(Set(order) == ["p1", "p2"], "progress for each pool")
        // Concurrent checks: each pool's check events start before the other's end (sequential
        // checks would give all of one pool's events, then all of the other's).
        if let firstP1 = order.firstIndex(of: "p1"), let lastP1 = order.lastIndex(of: "p1"),
            let firstP2 = order.firstIndex(of: "p2"), let lastP2 = order.lastIndex(of: "p2")
        {
            #expect(firstP2 < lastP1 && firstP1 < lastP2, "interleaved: \(order)")
        }
        #expect(try await hosts.onB(["object", "get", "p2", "greeting"]).stdoutText == "two\n")
        #expect(hosts.b.stop() == 0)
    }

    @Test func aRestartedHolderReopensFromItsCacheFileAndHeartbeatsAgain() async throws {
        var hosts = try await TwoHosts.make("zpkd-mmp-restart")
        #expect(hosts.a.stop() == 0, "SIGTERM: synced, left imported, in A's cache file")
        hosts.a = try hosts.workspace.startDaemon(
            hostID: TwoHosts.hostA.id, hostname: TwoHosts.hostA.name, instance: "a", extra: shortMultihostTunables)
        let log = hosts.a.logPath
        let reopened = try await onThread {
            // (The log, not the DaemonProcess, crosses to the thread.)
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline {
                if ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("pool opened from cache file") { return true }
                usleep(20_000)
            }
            return false
        }
        #expect(reopened, "reopened after its activity check")
        let status = try JSON.decode(try await hosts.onA(["status", "mh", "--zpk-json"]).stdout)
        let multihost = try #require(status["pools"]?.arrayValue?.first?["multihost"])
        #expect(multihost["running"]?.boolValue == true)
        try await Task.sleep(for: .seconds(0.3))
        let refused = try await hosts.onB(["import", "-d", hosts.workspace.path, "-f", "mh"])
        #expect(refused.status == 3, "the reopened pool heartbeats again: \(refused)")
        #expect(try await hosts.onA(["object", "get", "mh", "greeting"]).stdoutText == "hello from host A\n")
        #expect(hosts.a.stop() == 0)
        #expect(hosts.b.stop() == 0)
    }

    @Test func zpkdRejectsTunablesThatDoNotFitOnDisk() async throws {
        let workspace = try Workspace("zpkd-mmp-flags")
        #expect(throws: DaemonProcess.StartFailure.self) {
            _ = try workspace.startDaemon(extra: ["--zfs-multihost-interval", "16777216"])
        }
    }
}

/// `zpk demo` end to end: it exits 0 only when every step behaved as expected.
@Suite(.offTheCooperativePool) struct DemoTests {
    @Test func theDemoPasses() async throws {
        let workspace = try Workspace("zpk-demo")
        // Bounded by zpkOffThePool's 60 s process timeout (about 8 s on an idle machine).
        let output = try await zpkOffThePool(
            ["demo", "--directory", workspace.path], socket: workspace.socket, environment: ["ZPK_PROGRESS": "lines"])
        #expect(output.status == 0, "\(output)")
        #expect(output.stdoutText.contains("2. host B (demo-host-b) runs import -f while A is alive: it must be refused\n   refused after "))
        #expect(output.stdoutText.contains("pool is imported on host 'demo-host-a' (hostid=a0a0a0a0)"))
        #expect(output.stdoutText.contains("5. every object A wrote is intact on B"))
        #expect(output.stdoutText.hasSuffix("Demo passed: multihost kept A and B from using 'demo' at the same time.\n"))
        let left = try FileManager.default.contentsOfDirectory(atPath: workspace.path).filter { $0.hasPrefix("zpk-demo-") }
        #expect(left.isEmpty, "the demo removes its directory")
    }
}

/// `scripts/soak-multihost` for a few rounds (the soak runs 100 + 100).
@Suite(.offTheCooperativePool) struct SoakScriptTests {
    @Test func aFewSoakRoundsHold() async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/soak-multihost").path
        let bin = URL(fileURLWithPath: try Executable.path("zpk")).deletingLastPathComponent().path
        var environment = OpenZFS.pinnedEnvironment
        environment["ZPK_BIN"] = bin
        let pinned = environment
        let output = try await onThread {
            try OpenZFS.run("/bin/bash", [script, "3"], environment: pinned, timeout: .seconds(120))
        }
        #expect(output.status == 0, "\(output)")
        #expect(output.stdoutText.contains("both imported 0"))
        #expect(output.stdoutText.hasSuffix("soak-multihost: passed\n"))
    }
}
