// zpkd and zpk against real OpenZFS 2.1.11 (libzpool through Tools/zpk-oracle):
// (b) zpkd holds a multihost zpk pool → OpenZFS's import reports the pool active with
// zpkd's hostid and hostname; (a) OpenZFS holds its own multihost pool → `zpk import -f` through
// zpkd exits 3 naming the holder (the activity check runs before the OpenZFS pool is refused for
// its MOS), `zpk activity` agrees, and once the holder exported, the refusal says what zpk can
// still do (the crashed-holder wait is ZPKTests/ActivityInteropTests).

import Foundation
import Testing
import ZFSTestSupport
import ZPKDaemon
import ZPKControl

#if canImport(Glibc)
import Glibc
#endif

@Suite(
    "zpkd multihost against OpenZFS 2.1.11", .offTheCooperativePool, .serialized)
struct MultihostInteropTests {
    /// OpenZFS 2.1.11 is this suite's oracle: without it every test fails, naming the missing tool.
    init() throws { try OpenZFS.requireInstalled() }

    static let openZFSHost = (id: "11111111", name: "holder-a")

    @Test func anOpenZFSHolderIsReportedInUseThenRefusedAsAnOpenZFSPool() async throws {
        _ = try ZPKOracle.build()
        let dir = try ZPKOracle.makeTemporaryDirectory("zpkd-mmp-ozfs-live")
        defer { try? FileManager.default.removeItem(at: dir) }
        let created = try await onThread {
            try ZPKOracle.run(
                ["create", "tank", "-d", dir.path, "--hostid", Self.openZFSHost.id, "mirror", "a.img", "b.img"],
                timeout: .seconds(60))
        }
        try #require(created.status == 0, "\(created)")
        let holder = try ZPKOracle.start([
            "hold", "tank", "-d", dir.path, "--seconds", "0", "--multihost", "on", "--interval-ms", "100",
            "--fail-intervals", "10", "--hostid", Self.openZFSHost.id, "--hostname", Self.openZFSHost.name,
        ])
        defer { holder.kill() }
        _ = try holder.waitForRecord("ready", timeout: .seconds(30))
        _ = try holder.waitForRecord("tick", timeout: .seconds(10))

        let workspace = try Workspace("zpkd-mmp-ozfs-live")
        let daemon = try workspace.startDaemon(hostID: "22222222", extra: shortMultihostTunables)
        // Live: the activity check runs before zpk's MOS is even looked for, so the answer is
        // "in use on holder-a" (exit 3), as OpenZFS's own import would say, not "an OpenZFS pool".
        let inUse = try await zpkOffThePool(["import", "-d", dir.path, "-f", "tank"], socket: workspace.socket)
        #expect(inUse.status == 3, "\(inUse)")
        #expect(inUse.stderrText.contains("pool is imported on host 'holder-a' (hostid=11111111)"), "\(inUse)")
        #expect(try workspace.zpk(["list"]).stdoutText == "no pools available\n")
        let verdict = try await zpkOffThePool(["activity", "-d", dir.path, "tank"], socket: workspace.socket)
        #expect(verdict.status == 3, "\(verdict)")
        #expect(verdict.stdoutText.contains("is in use on host 'holder-a' (hostid 0x11111111)"), "\(verdict)")
        let stopped = try holder.terminate()
        #expect(stopped.status == 0, "\(stopped)")
        // Exported by its holder: imported nowhere, so no wait (ours; master would wait here) and
        // no claim either (zpk never writes an OpenZFS pool): zpk says at once what it is and
        // what zpk can still do with it.
        let refused = try await zpkOffThePool(["import", "-d", dir.path, "-f", "tank"], socket: workspace.socket)
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stderrText.hasPrefix("cannot open 'tank': it is an OpenZFS pool"), "\(refused)")
        #expect(refused.stderrText.contains("\n  zpk activity -d \(dir.path) "), "\(refused)")
        #expect(try workspace.zpk(["list"]).stdoutText == "no pools available\n")
        #expect(daemon.stop() == 0)
    }

    @Test func openZFSSeesAPoolZpkdHoldsAsActive() async throws {
        _ = try ZPKOracle.build()
        let workspace = try Workspace("zpkd-mmp-ozfs-held")
        let directory = workspace.directory.path("devices")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        let paths = try workspace.devices(["devices/a.img", "devices/b.img"])
        let daemon = try workspace.startDaemon(
            hostID: "33333333", hostname: "zpkd-holder", extra: ["--zfs-multihost-interval", "100"])
        #expect(try workspace.zpk(["create", "-o", "multihost=on", "zpkmh", "mirror"] + paths).status == 0)
        try await Task.sleep(for: .milliseconds(500))  // a few heartbeats land
        let refused = try await onThread {
            try ZPKOracle.run(["import", "zpkmh", "-d", directory, "--hostid", "44444444"], timeout: .seconds(120))
        }
        #expect(refused.status == 3, "\(refused.stdout)\n\(refused.stderr)")
        #expect(
            ZPKOracle.result(refused.stdout)?.fields == ["outcome": "active", "hostid": "0x33333333", "hostname": "zpkd-holder"],
            "\(refused.stdout)")
        let status = try JSON.decode(try workspace.zpk(["status", "zpkmh", "--zpk-json"]).stdout)
        #expect(status["pools"]?.arrayValue?.first?["state"]?.stringValue == "ACTIVE")
        #expect(daemon.stop() == 0)
    }
}
