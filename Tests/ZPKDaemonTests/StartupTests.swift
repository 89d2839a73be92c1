// A restarted zpkd serves at once while the pools of its cache file open: a multihost pool needs
// an activity check first (here 2 × 10 × 500 ms = 10 s, plus up to 25 %, then a 10-round claim
// of 500 ms each). Meanwhile `zpk list` and `zpk status` show it as opening with the time left,
// and a verb that names it is refused at once with a message that says so.
//
// Nothing here asserts wall time: "before the check ends" is read from the daemon's own state
// (the pool is still listed as opening, with time left), and the waits are bounded by the
// formula with generous slack.

import Foundation
import Testing
import ZFSTestSupport
import ZPKControl
import ZPKDaemon

#if canImport(Glibc)
import Glibc
#endif

@Suite(.offTheCooperativePool, .serialized) struct StartupTests {
    static let tunables = [
        "--zfs-multihost-interval", "500", "--zfs-multihost-fail-intervals", "10", "--zfs-multihost-import-intervals", "10",
    ]

    @Test func aRestartedDaemonServesWhileItsCacheFilePoolsOpen() async throws {
        let workspace = try Workspace("zpkd-startup")
        let paths = try workspace.devices(["s1", "s2"])
        var daemon = try workspace.startDaemon(hostID: "5a5a0001", hostname: "host-s", extra: Self.tunables)
        let socket = workspace.socket(instance: nil)
        func zpk(_ arguments: [String]) async throws -> OpenZFS.ProcessOutput {
            try await zpkOffThePool(arguments, socket: socket)
        }
        func listed() async throws -> JSON? {
            let reply = try await zpk(["list", "--zpk-json"])
            return try JSON.decode(reply.stdout)["pools"]?.arrayValue?.first { $0["name"]?.stringValue == "mh" }
        }
        try #require(try await zpk(["create", "-o", "multihost=on", "mh", "mirror"] + paths).status == 0)
        let file = workspace.directory.path("object")
        try Data("kept\n".utf8).write(to: URL(fileURLWithPath: file))
        try #require(try await zpk(["object", "put", "mh", "greeting", file]).status == 0)
        try #require(try await zpk(["sync", "mh"]).status == 0)
        // A crash: the pool stays ACTIVE in the labels and in the cache file.
        #expect(daemon.stop(signal: SIGKILL) == 128 + SIGKILL)

        daemon = try workspace.startDaemon(hostID: "5a5a0001", hostname: "host-s", extra: Self.tunables)
        // The first answer after "ready": the pool is there, opening (not missing, not open).
        let first = try #require(try await listed(), "the cache file's pool is listed at once")
        #expect(first["state"]?.stringValue == "opening", "\(first)")
        #expect(first["health"]?.stringValue == "OPENING")

        // Wait (bounded) for the activity check's countdown; it is reported with time left.
        var during: JSON?
        for _ in 0..<200 {
            let entry = try await listed()
            if entry?["phase"]?.stringValue == "activity_check", (entry?["remaining_ms"]?.uint64Value ?? 0) > 0 {
                during = entry
                break
            }
            if entry?["state"]?.stringValue != "opening" { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let counting = try #require(during, "no countdown while opening")
        let total = try #require(counting["total_ms"]?.uint64Value)
        #expect(total >= 10_000 && total <= 12_500, "2 × 10 × 500 ms plus up to 25 %: \(counting)")

        // A verb on it answers at once: still opening, with the time left; the text list and
        // status say the same. (The state only goes from opening to open, so a list taken after
        // them that still says opening proves they were answered during the check.)
        let refused = try await zpk(["object", "ls", "mh"])
        let text = try await zpk(["list"]).stdoutText
        let status = try await zpk(["status", "mh"]).stdoutText
        let after = try #require(try await listed())
        if after["state"]?.stringValue == "opening" {
            #expect(refused.status == 1, "\(refused)")
            #expect(refused.stderrText.contains("pool 'mh' is still opening: multihost activity check, "), "\(refused)")
            #expect(refused.stderrText.contains(" s left; try again when it is open"), "\(refused)")
            #expect(text.hasPrefix("NAME  SIZE  ALLOC  FREE  HEALTH\nmh       -      -     -  OPENING (activity check, "), "\(text)")
            #expect(text.hasSuffix(" s left)\n"), "\(text)")
            #expect(status.hasPrefix("  pool: mh\n state: OPENING\nstatus: zpkd is reopening the pool from its cache file: "), "\(status)")
        } else {
            Issue.record("the pool opened before three zpk calls were answered (a 10 s check): \(after)")
        }

        // Then it opens: the check (≤ 12.5 s) and the claim (5 s), with slack for a loaded machine.
        var opened = false
        for _ in 0..<900 {
            if try await listed()?["state"]?.stringValue == "open" {
                opened = true
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(opened, "the pool did not open within 90 s")
        let got = workspace.directory.path("got")
        #expect(try await zpk(["object", "get", "mh", "greeting", "-o", got]).status == 0)
        #expect(try String(contentsOfFile: got, encoding: .utf8) == "kept\n")
        #expect(daemon.stop() == 0)
    }
}
