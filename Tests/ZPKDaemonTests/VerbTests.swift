// Every `zpk` pool verb end to end against a real zpkd, with the texts and exit codes of its
// documented errors (docs/cli.md), and SIGTERM → restart → the pools reopen from the cache file.

import Foundation
import Testing
import ZFSTestSupport
import ZPKDaemon
import ZPKControl

#if canImport(Glibc)
import Glibc
#endif

extension OpenZFS.ProcessOutput {
    /// Exit status, stdout and stderr as text, for one #expect.
    var triple: (Int32, String, String) { (status, stdoutText, stderrText) }
}

@Suite(.offTheCooperativePool, .serialized) struct VerbTests {
    @Test func everyVerbEndToEnd() throws {
        let workspace = try Workspace("zpkd-verbs")
        try workspace.devices(["d1", "d2", "d3", "d4"])
        let daemon = try workspace.startDaemon()

        // create: relative paths are made absolute in the client.
        #expect(try workspace.zpk(["create", "-o", "comment=first", "tank", "mirror", "d1", "d2"], currentDirectory: workspace.path).triple == (0, "", ""))
        #expect(try workspace.zpk(["add", "tank", "mirror", "\(workspace.path)/d3", "\(workspace.path)/d4"]).triple == (0, "", ""))

        // objects: from a file, from stdin, binary-safe out to stdout and to a file.
        let binary = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let source = workspace.directory.path("source.bin")
        _ = FileManager.default.createFile(atPath: source, contents: Data(binary))
        #expect(try workspace.zpk(["object", "put", "tank", "bin", source]).status == 0)
        let text = workspace.directory.path("text.txt")
        _ = FileManager.default.createFile(atPath: text, contents: Data("hello\n".utf8))
        #expect(try workspace.zpk(["object", "put", "tank", "greeting", "-"], stdin: text).status == 0)
        #expect(try workspace.zpk(["object", "get", "tank", "bin"]).stdout == binary)
        let copy = workspace.directory.path("copy.bin")
        #expect(try workspace.zpk(["object", "get", "tank", "greeting", "-o", copy]).triple == (0, "", ""))
        #expect(FileManager.default.contents(atPath: copy) == Data("hello\n".utf8))
        let synced = try workspace.zpk(["sync", "tank"])
        #expect(synced.status == 0 && synced.stdoutText.hasPrefix("tank\ttxg "))
        let listed = try workspace.zpk(["object", "ls", "tank"])
        #expect(listed.status == 0)
        #expect(listed.stdoutText.split(separator: "\n").map { $0.split(separator: "\t").first.map(String.init) ?? "" } == ["70000", "6"])
        let lsJSON = try workspace.zpk(["object", "ls", "tank", "--json"]).stdoutText
        #expect(lsJSON.contains("\"key\": \"bin\",\n      \"size\": 70000,"))
        #expect(try workspace.zpk(["object", "rm", "tank", "greeting"]).triple == (0, "", ""))
        #expect(try workspace.zpk(["object", "ls", "tank"]).stdoutText.hasSuffix("\tbin\n"))

        // list, status, get, set.
        let list = try workspace.zpk(["list"])
        #expect(list.status == 0)
        #expect(list.stdoutText.hasPrefix("NAME  SIZE  ALLOC  FREE  HEALTH\ntank  "))
        #expect(list.stdoutText.hasSuffix("  ONLINE\n"))
        let listJSON = try JSON.decode(try workspace.zpk(["list", "--zpk-json"]).stdout)
        let size = try #require(listJSON["pools"]?.arrayValue?.first?["size"]?.uint64Value)
        #expect(size > 200 << 20)
        let status = try workspace.zpk(["status", "tank"]).stdoutText
        #expect(status.hasPrefix("  pool: tank\n state: ONLINE\nconfig:\n\n\tNAME"))
        #expect(status.contains("\t  mirror-1 "))
        #expect(status.contains("\t    \(workspace.path)/d4  ONLINE       0     0     0\n"))
        #expect(try workspace.zpk(["set", "comment=second", "tank"]).triple == (0, "", ""))
        #expect(try workspace.zpk(["get", "comment", "tank"]).stdoutText
            == "NAME  PROPERTY  VALUE   SOURCE\ntank  comment   second  local\n")
        let all = try workspace.zpk(["get", "all", "tank"]).stdoutText
        #expect(all.split(separator: "\n").count == 10)

        // export, import by name under a new name (the scan runs in zpk), destroy.
        #expect(try workspace.zpk(["export", "tank"]).triple == (0, "", ""))
        #expect(try workspace.zpk(["list"]).stdoutText == "no pools available\n")
        let imported = try workspace.zpk(["import", "-d", workspace.path, "tank", "pond", "--json"])
        #expect(imported.status == 0, "\(imported)")
        #expect(imported.stdoutText.hasPrefix("{\n  \"pool\": \"pond\",\n  \"guid\": "))
        #expect(try workspace.zpk(["object", "get", "pond", "bin"]).stdout == binary)
        #expect(try workspace.zpk(["destroy", "pond"]).triple == (0, "", ""))
        #expect(try workspace.zpk(["list"]).stdoutText == "no pools available\n")
        #expect(daemon.stop() == 0)
    }

    @Test func statusJSONShape() throws {
        let workspace = try Workspace("zpkd-status")
        try workspace.devices(["a", "b", "c"])
        let daemon = try workspace.startDaemon()
        #expect(try workspace.zpk(["create", "tank", "mirror", "\(workspace.path)/a", "\(workspace.path)/b", "\(workspace.path)/c"]).status == 0)
        let output = try workspace.zpk(["status", "--zpk-json"])
        #expect(output.status == 0)
        let text = output.stdoutText
        // Key order of a pool and of a vdev, as documented.
        let poolKeys = ["\"name\"", "\"guid\"", "\"state\"", "\"health\"", "\"txg\"", "\"vdev_tree\""]
        let positions = poolKeys.map { text.range(of: $0)?.lowerBound }
        #expect(positions.allSatisfy { $0 != nil })
        #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted())
        #expect(text.contains("\"type\": \"root\",\n        \"guid\": "))
        #expect(text.contains("\"path\": null,\n        \"health\": \"ONLINE\",\n        \"read_errors\": 0,\n        \"write_errors\": 0,\n        \"checksum_errors\": 0,\n        \"children\": ["))
        let json = try JSON.decode(output.stdout)
        let pool = try #require(json["pools"]?.arrayValue?.first)
        #expect(pool["name"] == "tank")
        #expect(pool["state"] == "ACTIVE")
        let guid = try #require(pool["guid"]?.uint64Value)
        #expect(pool["vdev_tree"]?["guid"]?.uint64Value == guid)
        let mirror = try #require(pool["vdev_tree"]?["children"]?.arrayValue?.first)
        #expect(mirror["type"] == "mirror")
        #expect(mirror["children"]?.arrayValue?.compactMap { $0["path"]?.stringValue }
            == ["a", "b", "c"].map { "\(workspace.path)/\($0)" })
        #expect(mirror["children"]?.arrayValue?.allSatisfy { $0["type"] == "file" && $0["children"] == .array([]) } == true)
        #expect(daemon.stop() == 0)
    }

    @Test func errorsNameTheProblemAndExitWithTheirCode() throws {
        let workspace = try Workspace("zpkd-errors")
        try workspace.devices(["d1", "d2"])
        try workspace.devices(["small"], byteCount: 32 << 20)
        let p = workspace.path

        // Daemon not running.
        #expect(try workspace.zpk(["list"]).triple
            == (1, "", "cannot reach zpkd at \(workspace.socket) (No such file or directory): start it with `zpkd --socket \(workspace.socket)`\n"))

        let daemon = try workspace.startDaemon()
        #expect(try workspace.zpk(["create", "tank", "\(p)/d1"]).status == 0)
        // Unknown pool.
        #expect(try workspace.zpk(["status", "nope"]).triple == (1, "", "no pool named 'nope' is open on this host\n"))
        #expect(try workspace.zpk(["object", "ls", "nope"]).status == 1)
        // Object that does not exist.
        #expect(try workspace.zpk(["object", "get", "tank", "missing"]).triple
            == (1, "", "pool 'tank' has no object named 'missing'\n"))
        #expect(try workspace.zpk(["object", "rm", "tank", "missing"]).status == 1)
        // Wrong vdev specs: usage errors, nothing sent.
        let oneWayMirror = try workspace.zpk(["create", "t2", "mirror", "\(p)/d2"])
        #expect(oneWayMirror.status == 64)
        #expect(oneWayMirror.stderrText.hasPrefix("Error: Please give a mirror at least 2 devices: `mirror PATH PATH...` (got 1).\n"))
        let raidz = try workspace.zpk(["create", "t2", "raidz", "\(p)/d2", "\(p)/small"])
        #expect(raidz.status == 64)
        #expect(raidz.stderrText.hasPrefix("Error: 'raidz' vdevs are not supported by zpk; use a path, or `mirror PATH PATH...`.\n"))
        #expect(try workspace.zpk(["create", "t2"]).status == 64)
        #expect(try workspace.zpk(["create", "t2", "\(p)/absent"]).triple
            == (1, "", "cannot create 't2': \(p)/absent does not exist; create the file (truncate -s 1G \(p)/absent) or name an existing device\n"))
        // Files too small: refused by the daemon, nothing written.
        #expect(try workspace.zpk(["create", "t2", "\(p)/small"]).triple
            == (1, "", "cannot create 't2': \(p)/small is 33554432 bytes; a device must be at least 67108864 bytes (64 MiB, SPA_MINDEVSIZE)\n"))
        #expect(try Self.isAllZero(path: "\(p)/small"))
        // A device already in another pool.
        #expect(try workspace.zpk(["create", "t2", "mirror", "\(p)/d2", "\(p)/d1"]).stderrText
            .hasPrefix("cannot create 't2': \(p)/d1 is part of active pool 'tank' (guid "))
        #expect(try Self.isAllZero(path: "\(p)/d2"), "nothing is written to the free device either")
        // Import of a pool no scan finds; a property that does not exist; a read-only one.
        #expect(try workspace.zpk(["import", "-d", p, "ghost"]).triple
            == (1, "", "cannot import 'ghost': no such pool available in \(p)\n"))
        #expect(try workspace.zpk(["set", "size=1", "tank"]).triple
            == (1, "", "cannot set property 'size' of pool 'tank': it is read-only\n"))
        #expect(try workspace.zpk(["set", "size", "tank"]).status == 64)
        #expect(daemon.stop() == 0)
    }

    static func isAllZero(path: String) throws -> Bool {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            if chunk.contains(where: { $0 != 0 }) { return false }
        }
        return true
    }

    @Test func poolsReopenFromTheCacheFileAfterSIGTERM() throws {
        let workspace = try Workspace("zpkd-restart")
        try workspace.devices(["d1", "d2", "d3"])
        var daemon = try workspace.startDaemon()
        #expect(try workspace.zpk(["create", "tank", "mirror", "\(workspace.path)/d1", "\(workspace.path)/d2"]).status == 0)
        #expect(try workspace.zpk(["create", "pond", "\(workspace.path)/d3"]).status == 0)
        var generator = SystemRandomNumberGenerator()
        var objects: [String: [UInt8]] = [:]
        for index in 0..<12 {
            let bytes = (0..<Int.random(in: 0...200_000, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let pool = index % 3 == 0 ? "pond" : "tank"
            let file = workspace.directory.path("object-\(index)")
            _ = FileManager.default.createFile(atPath: file, contents: Data(bytes))
            #expect(try workspace.zpk(["object", "put", pool, "o\(index)", file]).status == 0)
            objects["\(pool)/o\(index)"] = bytes
        }
        // No explicit sync: SIGTERM syncs.
        #expect(daemon.stop() == 0)
        #expect(access(workspace.socket, F_OK) != 0)
        daemon = try workspace.startDaemon()
        #expect(daemon.waitUntilLogged("pool opened from cache file"))
        #expect(try workspace.zpk(["list"]).stdoutText.split(separator: "\n").dropFirst().map { String($0.prefix(4)) } == ["pond", "tank"])
        for (name, bytes) in objects {
            let parts = name.split(separator: "/")
            #expect(try workspace.zpk(["object", "get", String(parts[0]), String(parts[1])]).stdout == bytes, "\(name)")
        }
        #expect(daemon.stop() == 0)
    }

    @Test func aPoolThatFailsToOpenFromTheCacheIsReportedAndTheDaemonRuns() throws {
        let workspace = try Workspace("zpkd-cachefail")
        try workspace.devices(["d1", "d2"])
        var daemon = try workspace.startDaemon()
        #expect(try workspace.zpk(["create", "tank", "\(workspace.path)/d1"]).status == 0)
        #expect(try workspace.zpk(["create", "pond", "\(workspace.path)/d2"]).status == 0)
        #expect(daemon.stop() == 0)
        try FileManager.default.removeItem(atPath: "\(workspace.path)/d1")
        daemon = try workspace.startDaemon()
        #expect(daemon.waitUntilLogged("pool in cache file not opened; zpkd goes on without it"))
        #expect(daemon.log_.contains("pool.name=tank"))
        #expect(try workspace.zpk(["list"]).stdoutText.contains("\npond "))
        #expect(daemon.stop() == 0)
    }

    @Test func aLeafDeletedWhileTheDaemonIsDownShowsDegradedAndIsNamed() throws {
        let workspace = try Workspace("zpkd-degraded")
        let paths = try workspace.devices(["d1", "d2"])
        var daemon = try workspace.startDaemon()
        #expect(try workspace.zpk(["create", "tank", "mirror"] + paths).status == 0)
        #expect(daemon.stop() == 0)
        try FileManager.default.removeItem(atPath: paths[1])
        daemon = try workspace.startDaemon()
        #expect(daemon.waitUntilLogged("pool opened from cache file"))
        let status = try workspace.zpk(["status", "tank"])
        #expect(status.status == 0)
        #expect(status.stdoutText.hasPrefix(
            "  pool: tank\n state: DEGRADED\nstatus: One or more devices could not be opened: \(paths[1]).\n"))
        #expect(status.stdoutText.contains("\t    \(paths[1])  UNAVAIL      0     0     0\n"))
        #expect(try workspace.zpk(["list"]).stdoutText.hasSuffix("  DEGRADED\n"))
        #expect(daemon.stop() == 0)
    }

    /// Every daemon verb's help teaches: an abstract, a discussion with examples, --socket.
    @Test(arguments: [
        ["create"], ["import"], ["export"], ["destroy"], ["add"], ["sync"], ["list"], ["status"], ["get"], ["set"],
        ["object", "put"], ["object", "get"], ["object", "ls"], ["object", "rm"],
        ["tunable", "get"], ["tunable", "set"], ["clear"], ["inject"], ["history", "multihost"],
    ])
    func helpHasExamplesAndTheSocketOption(verb: [String]) throws {
        let workspace = try Workspace("zpkd-help")
        let help = try workspace.zpk(["help"] + verb)
        #expect(help.status == 0)
        #expect(help.stdoutText.contains("OVERVIEW: "))
        #expect(help.stdoutText.contains("Example"))
        #expect(help.stdoutText.contains("--socket <path>"))
    }
}
