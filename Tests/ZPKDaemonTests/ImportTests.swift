// `zpk import POOL`: the scan runs in zpk and the chosen config goes to zpkd — ambiguous names,
// import by guid, a pool last used by another host (-f), and a real OpenZFS pool (refused with
// what zpk can still do; nothing written).

import Foundation
import Testing
import ZFSTestSupport
import ZPKDaemon
import ZPKControl

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
            let status = try JSON.decode(try workspace.zpk(["status", "tank", "--zpk-json"]).stdout)
            guids.append(try #require(status["pools"]?.arrayValue?.first?["guid"]?.uint64Value))
            #expect(try workspace.zpk(["export", "tank"]).status == 0)
        }
        let ambiguous = try workspace.zpk(["import", "-d", workspace.path, "tank"])
        #expect(ambiguous.status == 1)
        #expect(ambiguous.stderrText.hasPrefix("cannot import 'tank': more than one matching pool (guids "))
        for guid in guids { #expect(ambiguous.stderrText.contains("\(guid)")) }
        #expect(try workspace.zpk(["list"]).stdoutText == "no pools available\n", "nothing was imported")
        #expect(try workspace.zpk(["import", "-d", workspace.path, "\(guids[1])"]).triple == (0, "", ""))
        let status = try JSON.decode(try workspace.zpk(["status", "--zpk-json"]).stdout)
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

    /// The listing keeps OpenZFS's verdict (a ZPoolKit pool is UNAVAIL to OpenZFS) and adds zpk's
    /// own on one "    zpk: " line per pool, and `importable_by_zpk` / `zpk_reason` in JSON;
    /// the verdict is what `zpk import POOL` then does.
    @Test func theListingSaysWhatZpkCanImport() throws {
        let workspace = try Workspace("zpkd-listing")
        try workspace.devices(["d1", "d2"])
        var daemon = try workspace.startDaemon(hostID: "11111111")
        #expect(try workspace.zpk(["create", "quiet", "\(workspace.path)/d1"]).status == 0)
        #expect(try workspace.zpk(["export", "quiet"]).status == 0)
        #expect(try workspace.zpk(["create", "held", "\(workspace.path)/d2"]).status == 0)
        // The holder dies without exporting 'held'; this host has another hostid.
        #expect(daemon.stop(signal: SIGKILL) == 128 + SIGKILL)
        try FileManager.default.removeItem(atPath: workspace.cacheFile)
        let hostB = ["ZFS_HOSTID": "0x22222222"]
        let listing = try workspace.zpk(["import", "-d", workspace.path], environment: hostB)
        #expect(listing.status == 0, "\(listing)")
        let text = listing.stdoutText
        // OpenZFS's verdict stays as OpenZFS says it…
        #expect(text.contains("  state: UNAVAIL\n"), "\(text)")
        // …and zpk's follows zpool's tree, one line per pool, with a fixed prefix.
        let zpkLines = text.split(separator: "\n").filter { $0.hasPrefix("    zpk: ") }
        #expect(zpkLines.count == 2, "\(text)")
        #expect(text.contains("\n    zpk: can import (pool created by ZPoolKit)\n"), "\(text)")
        #expect(
            text.contains(
                "\n    zpk: can import with -f (pool created by ZPoolKit; it was last used by another system (hostid 0x11111111), so import it with -f)\n"),
            "\(text)")
        let json = try JSON.decode(try workspace.zpk(["import", "-d", workspace.path, "--json"], environment: hostB).stdout)
        let pools = try #require(json["pools"]?.arrayValue)
        #expect(pools.count == 2)
        for pool in pools {
            #expect(pool["importable_by_zpk"] == .bool(true), "\(pool)")
            #expect(pool["importable"] == .bool(false), "OpenZFS's verdict: \(pool)")
            let forced = pool["name"]?.stringValue == "held"
            #expect(pool["zpk_needs_force"] == .bool(forced))
            #expect(pool["zpk_reason"]?.stringValue?.hasPrefix("pool created by ZPoolKit") == true)
        }
        // The verdict holds: both import here ('held' with -f).
        daemon = try workspace.startDaemon(hostID: "22222222")
        #expect(try workspace.zpk(["import", "-d", workspace.path, "quiet"]).triple == (0, "", ""))
        #expect(try workspace.zpk(["import", "-d", workspace.path, "held"]).status == 1)
        #expect(try workspace.zpk(["import", "-d", workspace.path, "-f", "held"]).triple == (0, "", ""))
        #expect(daemon.stop() == 0)
    }

    @Test
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
        let listing = try workspace.zpk(["import", "-d", devicesDirectory])
        #expect(listing.stdoutText.contains("\n    zpk: cannot import: it is an OpenZFS pool (version 5000, features "), "\(listing)")
        let json = try JSON.decode(try workspace.zpk(["import", "-d", devicesDirectory, "--json"]).stdout)
        let listed = try #require(json["pools"]?.arrayValue?.first)
        #expect(listed["importable_by_zpk"] == .bool(false))
        #expect(listed["zpk_reason"]?.stringValue?.hasPrefix("it is an OpenZFS pool (version 5000") == true)
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
