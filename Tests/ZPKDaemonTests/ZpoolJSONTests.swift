// `zpk status --json` / `zpk list --json` in OpenZFS 2.3's `zpool status -j` / `zpool list -j`
// layout (cmd/zpool/zpool_main.c of 2.3: status_callback_json, vdev_stats_nvlist,
// fill_pool_info, fill_vdev_info, collect_pool), read back the way a zpool tool reads it.

import Foundation
import Testing
import ZFSTestSupport
import ZPKControl
import ZPKDaemon

@Suite(.offTheCooperativePool, .serialized) struct ZpoolJSONTests {
    static func object(_ output: OpenZFS.ProcessOutput) throws -> [String: Any] {
        try #require(output.status == 0, "\(output)")
        return try #require(try JSONSerialization.jsonObject(with: Data(output.stdout)) as? [String: Any], "\(output)")
    }

    @Test func statusAndListFollowOpenZFS23() throws {
        let workspace = try Workspace("cluster-zpool-json")
        let daemon = try workspace.startDaemon()
        let paths = try workspace.devices(["zj-d1", "zj-d2"])
        try #require(try workspace.zpk(["create", "tank", "mirror"] + paths).status == 0)
        let guid = try #require(
            try JSON.decode(try workspace.zpk(["list", "--zpk-json"]).stdout)["pools"]?.arrayValue?.first?["guid"]?.uint64Value)

        // Strings by default (zpool status -jp), keyed by pool name, vdevs nested by name.
        let status = try Self.object(try workspace.zpk(["status", "--json"]))
        let version = try #require(status["output_version"] as? [String: Any])
        #expect(version["command"] as? String == "zpool status")
        #expect(version["vers_major"] as? Int == 0 && version["vers_minor"] as? Int == 1)
        let pools = try #require(status["pools"] as? [String: Any])
        #expect(Array(pools.keys) == ["tank"])
        let tank = try #require(pools["tank"] as? [String: Any])
        #expect(tank["name"] as? String == "tank")
        #expect(tank["state"] as? String == "ONLINE")
        #expect(tank["pool_guid"] as? String == "\(guid)", "exact, as a string")
        #expect(tank["spa_version"] as? String == "5000")
        #expect(tank["error_count"] as? String == "0")
        let root = try #require((tank["vdevs"] as? [String: Any])?["tank"] as? [String: Any])
        #expect(root["vdev_type"] as? String == "root")
        #expect(root["state"] as? String == "ONLINE")
        let mirror = try #require((root["vdevs"] as? [String: Any])?["mirror-0"] as? [String: Any])
        #expect(mirror["vdev_type"] as? String == "mirror")
        let leaves = try #require(mirror["vdevs"] as? [String: Any])
        #expect(Set(leaves.keys) == Set(paths))
        let leaf = try #require(leaves[paths[0]] as? [String: Any])
        #expect(leaf["path"] as? String == paths[0])
        #expect(leaf["vdev_type"] as? String == "file")
        for counter in ["read_errors", "write_errors", "checksum_errors", "slow_ios"] {
            #expect(leaf[counter] as? String == "0", "\(counter)")
        }
        #expect(leaf["parent"] == nil, "parent only with --json-flat-vdevs")

        // --json-int: integers, exact (a guid above 2^53 survives as text in the output).
        let integers = try workspace.zpk(["status", "--json", "--json-int"])
        #expect(integers.stdoutText.contains("\"pool_guid\": \(guid),"), "\(integers.stdoutText)")
        let intTank = try #require((try Self.object(integers)["pools"] as? [String: Any])?["tank"] as? [String: Any])
        #expect(intTank["txg"] as? Int != nil)

        // --json-flat-vdevs: every vdev under the pool, leaves and mirror with their parent.
        let flat = try Self.object(try workspace.zpk(["status", "-j", "--json-flat-vdevs"]))
        let flatVdevs = try #require(((flat["pools"] as? [String: Any])?["tank"] as? [String: Any])?["vdevs"] as? [String: Any])
        #expect(Set(flatVdevs.keys) == Set(["tank", "mirror-0"] + paths))
        #expect((flatVdevs["mirror-0"] as? [String: Any])?["parent"] as? String == "tank")
        #expect((flatVdevs[paths[1]] as? [String: Any])?["parent"] as? String == "mirror-0")

        // --json-pool-key-guid
        let byGUID = try Self.object(try workspace.zpk(["status", "--json", "--json-pool-key-guid"]))
        #expect((byGUID["pools"] as? [String: Any])?.keys.first == "\(guid)")

        // zpool list -j: properties as {value, source}.
        let list = try Self.object(try workspace.zpk(["list", "--json", "--json-int"]))
        #expect((list["output_version"] as? [String: Any])?["command"] as? String == "zpool list")
        let listed = try #require((list["pools"] as? [String: Any])?["tank"] as? [String: Any])
        #expect(listed["type"] as? String == "POOL")
        let properties = try #require(listed["properties"] as? [String: Any])
        let size = try #require((properties["size"] as? [String: Any])?["value"] as? Int)
        let allocated = try #require((properties["allocated"] as? [String: Any])?["value"] as? Int)
        let free = try #require((properties["free"] as? [String: Any])?["value"] as? Int)
        #expect(size == allocated + free && size > 100 << 20)
        #expect((properties["health"] as? [String: Any])?["value"] as? String == "ONLINE")
        #expect(((properties["health"] as? [String: Any])?["source"] as? [String: Any])?["type"] as? String == "NONE")

        // The flags that only modify --json need it.
        let misuse = try workspace.zpk(["status", "--json-int"])
        #expect(misuse.status == 64, "\(misuse)")
        #expect(daemon.stop() == 0)
    }
}
