// `zpk import POOL`: the scan runs in zpk and the chosen config goes to zpkd — ambiguous names,
// import by guid, a pool last used by another host (-f), and a real OpenZFS pool (refused with
// what zpk can still do; nothing written).

import Foundation
import Testing
import ZFSTestSupport
import ZPKDaemon

#if canImport(Glibc)
import Glibc
#endif

@Suite(.offTheCooperativePool, .serialized) struct ImportTests {
    @Test func ambiguousNamesListTheGuidsAndImportByGuidWorks() throws {
        let workspace = try Workspace("zpkd-ambiguous")
        try workspace.devices(["d1", "d2"])
        let daemon = try workspace.startDaemon()
        var guids: [UInt64] = []
        for device in ["d1", "d2"] {
            #expect(try workspace.zpk(["create", "tank", "\(workspace.path)/\(device)"]).status == 0)
            let status = try ControlJSON.decode(try workspace.zpk(["status", "tank", "--json"]).stdout)
            guids.append(try #require(status["pools"]?.arrayValue?.first?["guid"]?.uint64Value))
            #expect(try workspace.zpk(["export", "tank"]).status == 0)
        }
        let ambiguous = try workspace.zpk(["import", "-d", workspace.path, "tank"])
        #expect(ambiguous.status == 1)
        #expect(ambiguous.stderrText.hasPrefix("cannot import 'tank': more than one matching pool (guids "))
        for guid in guids { #expect(ambiguous.stderrText.contains("\(guid)")) }
        #expect(try workspace.zpk(["list"]).stdoutText == "no pools available\n", "nothing was imported")
        #expect(try workspace.zpk(["import", "-d", workspace.path, "\(guids[1])"]).triple == (0, "", ""))
        let status = try ControlJSON.decode(try workspace.zpk(["status", "--json"]).stdout)
        #expect(status["pools"]?.arrayValue?.map { $0["guid"]?.uint64Value } == [guids[1]])
        #expect(daemon.stop() == 0)
    }

    @Test func aPoolLastUsedByAnotherHostNeedsForce() throws {
        let workspace = try Workspace("zpkd-force")
        try workspace.devices(["d1"])
        var daemon = try workspace.startDaemon(hostID: "11111111")
        #expect(try workspace.zpk(["create", "tank", "\(workspace.path)/d1"]).status == 0)
        // Host A dies without exporting; host B (another hostid, no cache file) takes over.
        #expect(daemon.stop(signal: SIGKILL) == 128 + SIGKILL)
        try FileManager.default.removeItem(atPath: workspace.cacheFile)
        daemon = try workspace.startDaemon(hostID: "22222222")
        let refused = try workspace.zpk(["import", "-d", workspace.path, "tank"])
        #expect(refused.status == 1)
        #expect(refused.stderrText.hasPrefix(
            "cannot import 'tank': pool was previously in use from another system.\nLast accessed by test-host (hostid=11111111) at "))
        #expect(refused.stderrText.contains("use 'zpool import -f' to import the pool."))
        #expect(try workspace.zpk(["import", "-d", workspace.path, "-f", "tank"]).triple == (0, "", ""))
        #expect(try workspace.zpk(["list"]).stdoutText.contains("\ntank "))
        #expect(daemon.stop() == 0)
    }

    @Test(.enabled(if: OpenZFS.interopTestsEnabled, "needs OpenZFS 2.1.11's ztest (REQUIRE_OPENZFS=0 skips)"))
    func anOpenZFSPoolIsRefusedWithWhatZpkCanStillDo() throws {
        try OpenZFS.requireInstalled()
        let workspace = try Workspace("zpkd-openzfs")
        let devices = workspace.directory.path("devices")
        try FileManager.default.createDirectory(atPath: devices, withIntermediateDirectories: false)
        let pool = try OpenZFS.makePool(ZTestPoolSpec(layout: .mirror(width: 2), poolName: "ozfs"), in: devices)
        let devicesDirectory = pool.directory
        try FileManager.default.removeItem(atPath: pool.cacheFile)  // only the leaves in the scan directory
        let before = try pool.leafDevices.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        let daemon = try workspace.startDaemon()
        let refused = try workspace.zpk(["import", "-d", devicesDirectory, "ozfs"])
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stderrText.hasPrefix("cannot open 'ozfs': it is an OpenZFS pool (version 5000"))
        #expect(refused.stderrText.contains("\n  zpk import -d \(devicesDirectory)    lists it: "))
        #expect(refused.stderrText.contains("\n  zpk label -u \(devicesDirectory)/"))
        #expect(refused.stderrText.hasSuffix("to use its data, import it with OpenZFS (zpool import)\n"))
        let after = try pool.leafDevices.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        #expect(before == after, "nothing is written to an OpenZFS pool's devices")
        #expect(daemon.stop() == 0)
    }
}
