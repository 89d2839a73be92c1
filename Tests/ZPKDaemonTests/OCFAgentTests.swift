// The OCF resource agent Tools/ocf/zpk-pool against real zpkd processes: Debian's ocf-tester
// (resource-agents) drives every action the way its compliance check does, and a two-node
// simulation runs the agent as Pacemaker would on two zpkd hosts sharing the pool's files.
//
// Tunables as in MultihostDaemonTests (interval 200 ms, fail intervals 5, import intervals 10),
// so a start after a crash waits 2 × 5 × 200 ms = 2.0 s plus a random 0-25 % before the claim.

import Foundation
import Testing
import ZFSTestSupport
import ZPKControl
import ZPKDaemon

#if canImport(Glibc)
import Glibc
#endif

/// OCF exit codes (the resource agent API).
enum OCF {
    static let success: Int32 = 0
    static let errGeneric: Int32 = 1
    static let errUnimplemented: Int32 = 3
    static let errConfigured: Int32 = 6
    static let notRunning: Int32 = 7
}

/// Runs Tools/ocf/zpk-pool (from this checkout) with the environment Pacemaker gives an agent.
struct ZPKPoolAgent {
    var pool: String
    var dirs: String
    var socket: String
    var instance = "zpk-test"
    /// More OCF_RESKEY_ parameters.
    var extra: [String: String] = [:]

    /// Tools/ocf/zpk-pool of the checkout this test file is in.
    static var path: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tools/ocf/zpk-pool").path
    }

    /// The system directories first, then the caller's PATH (xmllint, ocf-tester's needs).
    static var searchPath: String {
        let inherited = ProcessInfo.processInfo.environment["PATH"] ?? ""
        return OpenZFS.pinnedEnvironment["PATH"]! + (inherited.isEmpty ? "" : ":" + inherited)
    }

    /// Throws (never skips) when resource-agents is not installed.
    static func requireResourceAgents() throws {
        for file in ["/usr/sbin/ocf-tester", "/usr/lib/ocf/lib/heartbeat/ocf-shellfuncs"] {
            try #require(
                FileManager.default.fileExists(atPath: file),
                "\(file) is missing: run scripts/install-ha-tools (Debian's resource-agents)")
        }
    }

    /// `max_heartbeat_age` 900 ms: just under the suspension (5 × 200 ms), so that a heartbeat
    /// delayed by a loaded CI machine does not fail a monitor that expects a healthy pool (the
    /// default, half the suspension window, is 500 ms with these tunables).
    var parameters: [String: String] {
        get throws {
            ["pool": pool, "dirs": dirs, "socket": socket, "zpk": try Executable.path("zpk"), "max_heartbeat_age": "900"]
                .merging(extra) { _, new in new }
        }
    }

    /// Runs `action`; `interval` 0 = a probe (OCF_RESKEY_CRM_meta_interval), as Pacemaker sets it.
    func run(_ action: String, interval: Int = 10_000, timeout: Int = 60_000) async throws -> OpenZFS.ProcessOutput {
        var environment = OpenZFS.pinnedEnvironment
        environment["PATH"] = Self.searchPath
        environment["OCF_ROOT"] = "/usr/lib/ocf"
        environment["OCF_RESOURCE_INSTANCE"] = instance
        environment["OCF_RESOURCE_TYPE"] = "zpk-pool"
        environment["OCF_RA_VERSION_MAJOR"] = "1"
        environment["OCF_RA_VERSION_MINOR"] = "0"
        environment["OCF_RESKEY_CRM_meta_interval"] = "\(interval)"
        environment["OCF_RESKEY_CRM_meta_timeout"] = "\(timeout)"
        for (key, value) in try parameters { environment["OCF_RESKEY_" + key] = value }
        let finalEnvironment = environment
        return try await onThread {
            try OpenZFS.run(Self.path, [action], environment: finalEnvironment, timeout: .seconds(120))
        }
    }
}

@Suite(.offTheCooperativePool, .serialized) struct OCFAgentTests {
    /// Creates a multihost mirror `pool` on host A (socket `a`), puts an object, syncs.
    static func createPool(_ workspace: Workspace, pool: String) async throws {
        let paths = try workspace.devices([pool + "-d1", pool + "-d2"])
        let created = try await zpkOffThePool(
            ["create", "-o", "multihost=on", pool, "mirror"] + paths, socket: workspace.socket(instance: "a"))
        try #require(created.status == 0, "\(created)")
        let file = workspace.directory.path("\(pool).object")
        try Data("written on host A\n".utf8).write(to: URL(fileURLWithPath: file))
        let put = try await zpkOffThePool(["object", "put", pool, "greeting", file], socket: workspace.socket(instance: "a"))
        try #require(put.status == 0, "\(put)")
    }

    @Test func ocfTesterPassesAgainstARealZpkd() async throws {
        try ZPKPoolAgent.requireResourceAgents()
        let workspace = try Workspace("cluster-ocf-tester")
        let daemon = try workspace.startDaemon(
            hostID: "aaaa0001", hostname: "host-a", instance: "a", extra: shortMultihostTunables)
        try await Self.createPool(workspace, pool: "ocftank")
        let listed = try await zpkOffThePool(["list", "--zpk-json"], socket: workspace.socket(instance: "a"))
        let guid = try #require(try JSON.decode(listed.stdout)["pools"]?.arrayValue?.first?["guid"]?.uint64Value)
        // Pacemaker starts from an exported pool.
        let exported = try await zpkOffThePool(["export", "ocftank"], socket: workspace.socket(instance: "a"))
        try #require(exported.status == 0, "\(exported)")

        // By name, then by guid (the agent finds the open pool's name from its guid).
        for selector in ["ocftank", "\(guid)"] {
            let agent = ZPKPoolAgent(pool: selector, dirs: workspace.path, socket: workspace.socket(instance: "a"))
            var arguments = ["-v", "-n", "zpk-test"]
            for (key, value) in try agent.parameters.sorted(by: { $0.key < $1.key }) { arguments += ["-o", "\(key)=\(value)"] }
            var environment = OpenZFS.pinnedEnvironment
            environment["PATH"] = ZPKPoolAgent.searchPath
            environment["OCF_ROOT"] = "/usr/lib/ocf"
            let testerArguments = arguments + [ZPKPoolAgent.path]
            let testerEnvironment = environment
            let tester = try await onThread {
                try OpenZFS.run(
                    "/usr/sbin/ocf-tester", testerArguments, environment: testerEnvironment,
                    timeout: .seconds(300))
            }
            #expect(tester.status == 0, "pool=\(selector): \(tester)")
            #expect(tester.stdoutText.contains("passed all tests"), "\(tester)")
            #expect(!tester.stdoutText.contains("* rc="), "\(tester)")
            // ocf-tester left the pool stopped: exported, not open in zpkd.
            let list = try await zpkOffThePool(["list"], socket: workspace.socket(instance: "a"))
            #expect(list.stdoutText == "no pools available\n", "\(list)")
        }
        #expect(daemon.stop() == 0)
    }

    @Test func metaDataValidateAndUnknownActions() async throws {
        try ZPKPoolAgent.requireResourceAgents()
        let workspace = try Workspace("cluster-ocf-meta")
        let agent = ZPKPoolAgent(pool: "tank", dirs: workspace.path, socket: workspace.socket)
        let meta = try await agent.run("meta-data")
        #expect(meta.status == OCF.success)
        for parameter in ["pool", "dirs", "socket"] {
            #expect(meta.stdoutText.contains("<parameter name=\"\(parameter)\""), "\(parameter)")
        }
        #expect(meta.stdoutText.contains("/dev/disk/by-id:"), "the default dirs are the Linux device directories")
        #expect(meta.stdoutText.contains("default=\"/run/zpk.sock\""))

        var unnamed = agent
        unnamed.pool = ""
        #expect(try await unnamed.run("validate-all").status == OCF.errConfigured)
        var badSocket = agent
        badSocket.socket = "relative.sock"
        #expect(try await badSocket.run("validate-all").status == OCF.errConfigured)
        #expect(try await agent.run("validate-all").status == OCF.success)
        #expect(try await agent.run("promote").status == OCF.errUnimplemented)
        // No zpkd on the socket: the pool is not running here (probe and recurring monitor),
        // and stopping it is a success.
        #expect(try await agent.run("monitor", interval: 0).status == OCF.notRunning)
        #expect(try await agent.run("monitor").status == OCF.notRunning)
        #expect(try await agent.run("stop").status == OCF.success)
        let start = try await agent.run("start")
        #expect(start.status == OCF.errGeneric, "\(start)")
        #expect(start.stderrText.contains("cannot reach zpkd"), "\(start)")
    }

    /// Stop escalation: an export that hangs on its devices fails the stop after the stop
    /// timeout less 10 s (Pacemaker then fences), or with kill_zpkd_on_stop_failure kills zpkd.
    @Test func stopEscalationWhenTheExportHangs() async throws {
        try ZPKPoolAgent.requireResourceAgents()
        let workspace = try Workspace("cluster-ocf-escalation")
        // Fail intervals 50: the pool would suspend only after 10 s, so the export's sync hangs.
        let tunables = ["--zfs-multihost-interval", "200", "--zfs-multihost-fail-intervals", "50"]
        let daemon = try workspace.startDaemon(hostID: "aaaa0001", hostname: "host-a", instance: "a", extra: tunables)
        try await Self.createPool(workspace, pool: "hung")
        var agent = ZPKPoolAgent(pool: "hung", dirs: workspace.path, socket: workspace.socket(instance: "a"))
        agent.extra["max_heartbeat_age"] = "10000"
        #expect(try await agent.run("monitor").status == OCF.success)
        for leaf in [workspace.directory.path("hung-d1"), workspace.directory.path("hung-d2")] {
            let injected = try await zpkOffThePool(["inject", "hung", leaf, "hang"], socket: workspace.socket(instance: "a"))
            try #require(injected.status == 0, "\(injected)")
        }
        // Stop timeout 20 s: the export gets 10 s, the re-check (zpk list, which the hung
        // export blocks) 5 s.
        let (failed, failedAfter) = try await timed { try await agent.run("stop", timeout: 20_000) }
        #expect(failed.status == OCF.errGeneric, "\(failed)")
        // The export either hangs on the held writes, or — once multihost suspends the pool and
        // fences its writes — fails at once; or zpkd's own txg sync (every 5 s) hung on the
        // writes first, holding the pool, and the agent's opening `zpk list` gets no answer in
        // 5 s. Each fails the stop.
        #expect(
            failed.stderrText.contains("did not finish in 10 s") || failed.stderrText.contains("zpk export hung failed")
                || failed.stderrText.contains("did not answer within 5 s"),
            "\(failed)")
        #expect(failed.stderrText.contains("ocf-exit-reason:pool hung could not be exported"), "\(failed)")
        #expect(failedAfter < .seconds(20), "within the stop timeout: \(failedAfter)")
        #expect(daemon.process.isRunning, "without the escalation parameter zpkd lives")

        // Now zpkd does not even answer (the export still hangs): straight to the kill.
        agent.extra["kill_zpkd_on_stop_failure"] = "true"
        let (killed, killedAfter) = try await timed { try await agent.run("stop", timeout: 20_000) }
        #expect(killed.status == OCF.success, "\(killed)")
        #expect(
            killed.stderrText.contains("did not answer within 5 s") || killed.stderrText.contains("zpk export hung failed"),
            "\(killed)")
        #expect(killed.stderrText.contains("killing zpkd (pid \(daemon.process.processIdentifier))"), "\(killed)")
        #expect(killedAfter < .seconds(20), "within the stop timeout: \(killedAfter)")
        #expect(daemon.stop() == 128 + SIGKILL, "zpkd was killed")
        #expect(try await agent.run("monitor").status == OCF.notRunning)
    }

    /// Two nodes as Pacemaker drives them: start on A; B's start fails while A lives, naming A;
    /// A crashes; B's start waits the activity check and succeeds; a suspended pool fails its
    /// monitor and still stops.
    @Test func twoNodeFailover() async throws {
        try ZPKPoolAgent.requireResourceAgents()
        let workspace = try Workspace("cluster-ocf-two-nodes")
        let a = try workspace.startDaemon(hostID: "aaaa0001", hostname: "host-a", instance: "a", extra: shortMultihostTunables)
        let b = try workspace.startDaemon(hostID: "bbbb0002", hostname: "host-b", instance: "b", extra: shortMultihostTunables)
        try await Self.createPool(workspace, pool: "hapool")
        try #require(try await zpkOffThePool(["export", "hapool"], socket: workspace.socket(instance: "a")).status == 0)
        let onA = ZPKPoolAgent(pool: "hapool", dirs: workspace.path, socket: workspace.socket(instance: "a"))
        let onB = ZPKPoolAgent(pool: "hapool", dirs: workspace.path, socket: workspace.socket(instance: "b"))

        // Probes: stopped everywhere. Start on A.
        #expect(try await onA.run("monitor", interval: 0).status == OCF.notRunning)
        #expect(try await onB.run("monitor", interval: 0).status == OCF.notRunning)
        let startA = try await onA.run("start")
        #expect(startA.status == OCF.success, "\(startA)")
        #expect(try await onA.run("monitor").status == OCF.success)
        #expect(try await onB.run("monitor").status == OCF.notRunning)

        // B's start while A lives: OCF_ERR_GENERIC, the holder named in the exit reason and log.
        let refused = try await onB.run("start")
        #expect(refused.status == OCF.errGeneric, "\(refused)")
        #expect(refused.stderrText.contains("ocf-exit-reason:pool hapool is in use on another node"), "\(refused)")
        #expect(refused.stderrText.contains("host 'host-a' (hostid=aaaa0001)"), "\(refused)")
        #expect(try await onB.run("monitor").status == OCF.notRunning)
        #expect(try await onA.run("monitor").status == OCF.success, "A keeps the pool")

        // A crashes (zpkd SIGKILLed, no export). A's monitor: not running there.
        #expect(a.stop(signal: SIGKILL) == 128 + SIGKILL)
        #expect(try await onA.run("monitor").status == OCF.notRunning)
        let (startB, took) = try await timed { try await onB.run("start") }
        #expect(startB.status == OCF.success, "\(startB)")
        #expect(took >= .seconds(2), "the activity check lasts at least 2 × 5 × 200 ms; took \(took)")
        #expect(took < .seconds(30), "check ≤ 2.5 s, claim 10 × 200 ms, the open; took \(took)")
        #expect(startB.stderrText.contains("activity_check"), "the wait is logged: \(startB)")
        #expect(try await onB.run("monitor").status == OCF.success)
        let read = try await zpkOffThePool(["object", "get", "hapool", "greeting"], socket: workspace.socket(instance: "b"))
        #expect(read.stdoutText == "written on host A\n", "\(read)")
        #expect(try await onB.run("start").status == OCF.success, "a second start is a success")

        // Every leaf fails: the heartbeats fail, the pool suspends after 5 × 200 ms; the monitor
        // says OCF_ERR_GENERIC with the reason, and stop (an export closes a suspended pool
        // without writing) succeeds.
        for leaf in [workspace.directory.path("hapool-d1"), workspace.directory.path("hapool-d2")] {
            let injected = try await zpkOffThePool(["inject", "hapool", leaf, "error"], socket: workspace.socket(instance: "b"))
            try #require(injected.status == 0, "\(injected)")
        }
        // On the way the heartbeats may be late (older than max_heartbeat_age): that fails
        // the monitor too, before the suspension does.
        var monitor = try await onB.run("monitor")
        let deadline = ContinuousClock.now + .seconds(20)
        while !monitor.stderrText.contains("is suspended"), ContinuousClock.now < deadline {
            #expect(
                monitor.status == OCF.success
                    || (monitor.status == OCF.errGeneric && monitor.stderrText.contains("last heartbeat landed")),
                "\(monitor)")
            try await Task.sleep(for: .milliseconds(100))
            monitor = try await onB.run("monitor")
        }
        #expect(monitor.status == OCF.errGeneric, "\(monitor)")
        #expect(monitor.stderrText.contains("ocf-exit-reason:pool hapool is suspended"), "\(monitor)")
        let stopB = try await onB.run("stop")
        #expect(stopB.status == OCF.success, "\(stopB)")
        #expect(try await onB.run("monitor").status == OCF.notRunning)
        #expect(try await onB.run("stop").status == OCF.success, "a second stop is a success")
        #expect(b.stop() == 0)
    }
}
