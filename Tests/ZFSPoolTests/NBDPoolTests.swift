// Pools with NBD leaves, on real servers (nbd-server over TCP, nbdkit over a Unix socket):
// a mirror of one file and one NBD export is created, written, exported and imported by
// scanning the export; OpenZFS's zdb reads our labels and heartbeat uberblocks from the
// server's backing file; a stalled NBD server does not stop the file leaf's heartbeats, and
// its timed-out writes count as failed heartbeats. Real time, with short tunables and bounds
// far from the formulas.

import Foundation
import ServiceLifecycle
import Synchronization
import Testing
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSMultihost
import ZFSTestSupport

@testable import ZFSPool

@Suite("Pools with NBD leaves (real nbd-server and nbdkit)", .offTheCooperativePool, .serialized)
struct NBDPoolTests {
    static let size: UInt64 = 128 << 20

    func backingFile(_ directory: TemporaryDirectory, _ name: String) throws -> String {
        let path = directory.path(name)
        guard FileManager.default.createFile(atPath: path, contents: nil), truncate(path, off_t(Self.size)) == 0 else {
            throw PoolError(.ioFailure, "cannot make \(path)")
        }
        return path
    }

    /// NBD leaves with test timeouts, files as usual.
    static func open(_ path: String, options: NBDBlockDevice.Options) throws -> any BlockDevice {
        if NBDBlockDevice.isNBDURI(path) { return try NBDBlockDevice(uri: path, mode: .readWrite, options: options) }
        return try FileBlockDevice(path: path, mode: .readWrite)
    }

    func offThePool<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<R, any Error>) in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    /// Waits (a hang detector, `Patience.hang`) until `condition` holds.
    func waitFor(_ what: String, _ condition: () -> Bool) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + Patience.hang
        while !condition() {
            guard clock.now < deadline else {
                Issue.record("timed out after \(Patience.hangText) waiting for \(what)")
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    @Test(
        "mirror of a file and an nbd:// export: objects survive export and an import that scans the export; zdb -lu reads our labels and heartbeats on the server's file")
    func mirrorWithNBDLeafRoundTripsAndZdbReadsIt() async throws {
        try OpenZFS.requireInstalled()
        let directory = try TemporaryDirectory(prefix: "nbd-pool")
        let filePath = try backingFile(directory, "local.img")
        let backing = try backingFile(directory, "served.img")
        let server = try NBDTestServer.nbdServer(exports: [("leaf1", backing)], in: directory)
        let nbdURI = server.uri
        let tunables = MultihostTunablesStore(MultihostTunables(intervalInMilliseconds: 100, failIntervals: 0))
        let host = PoolHost(environment: .init(hostID: 0x0BD0_0001, hostname: "zpk-nbd", multihostTunables: tunables))
        let pool = try await host.create(
            name: "zpknbd", layout: [.mirror([filePath, nbdURI])], properties: ["multihost": "on"])
        var objects: [String: [UInt8]] = [:]
        for i in 0..<20 {
            objects["object\(i)"] = (0..<(1000 + i * 3000)).map { UInt8(truncatingIfNeeded: $0 &* (i + 1)) }
        }
        for (name, bytes) in objects { try await pool.put(name, bytes) }
        try await pool.sync()
        let runner = Task { try await host.multihostService.run() }
        try await waitFor("six heartbeats") { (pool.status().multihost?.heartbeatsWritten ?? 0) >= 6 }
        runner.cancel()
        _ = await runner.result
        try await host.export("zpknbd")

        // OpenZFS reads the export's backing file: our labels (naming the leaf by its URI) and
        // uberblocks. `zdb -lu` hides heartbeats (MMP magic, a delay, in the ring's MMP slots)
        // below four u's; -luuuu shows them: a valid MMP magic and a sequence number.
        let (synced, syncedErrors, syncedStatus) = try await offThePool { try OpenZFS.zdb(["-lu", backing]) }
        #expect(syncedStatus == 0, "zdb -lu \(backing): \(syncedErrors)")
        #expect(synced.contains("name: 'zpknbd'") && synced.contains("Uberblock["), "\(synced)")
        let (stdout, stderr, status) = try await offThePool { try OpenZFS.zdb(["-l", "-uuuu", backing]) }
        #expect(status == 0, "zdb -luuuu \(backing): \(stderr)")
        #expect(stdout.contains("    Uberblock[31]"), "a heartbeat in the MMP slot of the ring (ashift 12)\n\(stdout)")
        #expect(stdout.contains("name: 'zpknbd'"), "\(stdout)")
        #expect(stdout.contains("path: '\(nbdURI)'"), "\(stdout)")
        #expect(stdout.contains("path: '\(filePath)'"), "\(stdout)")
        #expect(stdout.contains("labels = 0 1 2 3"), "\(stdout)")
        #expect(stdout.contains("mmp_magic = 00000000a11cea11"), "\(stdout)")
        let sequences = stdout.split(separator: "\n").compactMap { line -> UInt64? in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("mmp_seq = ") else { return nil }
            return UInt64(trimmed.dropFirst("mmp_seq = ".count))
        }
        #expect(sequences.contains { $0 > 0 }, "a heartbeat's sequence number:\n\(stdout)")
        #expect(!stdout.contains("failed to unpack"))

        // Import by scanning the server's exports (zpk import --nbd): the export is found by
        // listing, the file leg by the label's path; every object reads back.
        let exports = try NBDBlockDevice.listExports(server: server.server)
        #expect(exports.map(\.uri) == [nbdURI])
        let importer = PoolHost(environment: .init(hostID: 0x0BD0_0002, hostname: "zpk-nbd-2", multihostTunables: tunables))
        let imported = try await importer.importPool("zpknbd", searchPaths: exports.map(\.uri))
        for (name, bytes) in objects {
            #expect(try await imported.get(name) == bytes, "\(name)")
        }
        #expect(imported.status().health == "ONLINE")
        try await importer.export("zpknbd")
    }

    @Test("the NBD leg of a mirror goes away: puts and gets go on through the file leg, and the NBD leg is repaired after it returns")
    func mirrorSurvivesALostServer() async throws {
        let directory = try TemporaryDirectory(prefix: "nbd-heal")
        let filePath = try backingFile(directory, "local.img")
        let backing = try backingFile(directory, "served.img")
        let server = try NBDTestServer.nbdkit(file: backing, in: directory)
        let options = NBDBlockDevice.Options(
            requestTimeout: .seconds(2), backoff: .init(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(200)))
        let host = PoolHost(
            environment: .init(
                hostID: 0x0BD0_0003, hostname: "zpk-nbd-heal",
                openDevice: { path in try Self.open(path, options: options) }))
        let pool = try await host.create(name: "zpkheal", layout: [.mirror([filePath, server.uri])])
        try await pool.put("before", Array("written to both".utf8))
        try await pool.sync()
        server.stop()
        try await pool.put("during", Array("written to the file leg only".utf8))
        try await pool.sync()
        #expect(try await pool.get("before") == Array("written to both".utf8))
        try server.start()
        try await Task.sleep(for: .milliseconds(300))  // past the backoff's cap
        #expect(try await pool.get("during") == Array("written to the file leg only".utf8))
        let errors = pool.status().leaves.first { $0.path == server.uri }?.counters
        #expect((errors?.writeErrors ?? 0) > 0, "the lost server's writes were counted")
        try await host.export("zpkheal")
    }

    @Test("a stalled NBD server: the file leaf keeps its heartbeats, the NBD leaf's time out as failed heartbeats, the pool is not suspended")
    func stalledServerDoesNotStopTheOtherLeaf() async throws {
        let directory = try TemporaryDirectory(prefix: "nbd-stall")
        let filePath = try backingFile(directory, "local.img")
        let backing = try backingFile(directory, "served.img")
        let server = try NBDTestServer.nbdkit(file: backing, in: directory)
        let timeout = Duration.seconds(1)
        let options = NBDBlockDevice.Options(requestTimeout: timeout, connectTimeout: timeout)
        let interval: UInt64 = 100
        let tunables = MultihostTunablesStore(MultihostTunables(intervalInMilliseconds: interval, failIntervals: 0))
        let host = PoolHost(
            environment: .init(
                hostID: 0x0BD0_0004, hostname: "zpk-nbd-stall", multihostTunables: tunables,
                openDevice: { path in try Self.open(path, options: options) }))
        let pool = try await host.create(name: "zpkstall", layout: [.mirror([filePath, server.uri])], properties: ["multihost": "on"])
        let runner = Task { try await host.multihostService.run() }
        defer { runner.cancel() }
        try await waitFor("heartbeats on both leaves") { (pool.status().multihost?.heartbeatsWritten ?? 0) >= 6 }

        server.pause()
        let before = pool.status().multihost!
        let window = Duration.seconds(4)
        try await Task.sleep(for: window)
        let after = pool.status().multihost!
        server.resume()

        // 4 s at one heartbeat per 50 ms (100 ms over 2 leaves) is 80 heartbeats; the file leaf
        // gets every one the stalled leaf cannot take. A stopped loop would land none.
        let landed = after.heartbeatsWritten - before.heartbeatsWritten
        #expect(landed >= 20, "file-leaf heartbeats during the stall: \(landed)")
        // Writes to the stalled leaf end as failures after the 1 s request timeout.
        #expect(after.heartbeatsFailed > before.heartbeatsFailed, "timed-out heartbeats counted as failed")
        #expect(pool.status().state != "SUSPENDED")
        // After the stall, the NBD leaf takes heartbeats again (reconnected).
        let failedAtResume = pool.status().multihost!.heartbeatsFailed
        try await Task.sleep(for: timeout * 2)
        let settled = pool.status().multihost!
        try await Task.sleep(for: .seconds(2))
        #expect(pool.status().multihost!.heartbeatsFailed == settled.heartbeatsFailed, "no new failures once the server answers (\(failedAtResume) at resume)")
        runner.cancel()
        _ = await runner.result
        try await host.export("zpkstall")
    }

    @Test("the pool's suspension fences its NBD leaf (connections aborted, writes refused); clear lifts the fence")
    func suspensionFencesTheNBDLeaf() async throws {
        let directory = try TemporaryDirectory(prefix: "nbd-fence-pool")
        let backing = try backingFile(directory, "served.img")
        let server = try NBDTestServer.nbdkitTCP(file: backing, in: directory, name: "fence-pool")
        let options = NBDBlockDevice.Options(requestTimeout: .seconds(1), connectTimeout: .seconds(1))
        let opened = Mutex<[NBDBlockDevice]>([])
        let tunables = MultihostTunablesStore(MultihostTunables(intervalInMilliseconds: 100, failIntervals: 5))
        let host = PoolHost(
            environment: .init(
                hostID: 0x0BD0_0005, hostname: "zpk-nbd-fence", multihostTunables: tunables,
                openDevice: { path in
                    let device = try NBDBlockDevice(uri: path, mode: .readWrite, options: options)
                    opened.withLock { $0.append(device) }
                    return device
                }))
        let pool = try await host.create(name: "zpkfence", layout: [.leaf(server.uri)], properties: ["multihost": "on"])
        let runner = Task { try await host.multihostService.run() }
        defer { runner.cancel() }
        try await waitFor("heartbeats") { (pool.status().multihost?.heartbeatsWritten ?? 0) >= 3 }
        let devices = opened.withLock { $0 }
        #expect(!devices.isEmpty && devices.allSatisfy { !$0.isFenced })

        // The server stalls: heartbeats fail for 5 × 100 ms and the pool suspends.
        server.pause()
        try await waitFor("the suspension") { pool.status().suspension != nil }
        server.resume()
        #expect(pool.status().state == "SUSPENDED")
        let leaf = try #require(devices.last)
        #expect(leaf.isFenced, "the suspended pool's NBD leaf was not fenced")
        let refused = #expect(throws: DeviceError.self) { try leaf.write([1], atAbsoluteOffset: 4 << 20) }
        #expect(refused?.code == .fenced)

        // zpk clear: the check reads the leaf (reads work while fenced), finds no other host,
        // resumes the pool and lifts the fence.
        try await pool.clear()
        #expect(pool.status().suspension == nil)
        #expect(!leaf.isFenced)
        try await pool.put("after", [7])
        try await pool.sync()
        runner.cancel()
        _ = await runner.result
        try await host.export("zpkfence")
    }

    @Test("the activity check's probe keeps its NBD connections open across polls, at most one per label")
    func activityProbeKeepsItsConnection() throws {
        let directory = try TemporaryDirectory(prefix: "nbd-probe")
        let backing = try backingFile(directory, "served.img")
        let requests = directory.path("requests.log")
        let server = try NBDTestServer.nbdkit(
            file: backing, in: directory, name: "probe", filters: ["log"], parameters: ["logfile=\(requests)"])
        let probe = PoolDevicesProbe(poolGUID: PoolGUID(rawValue: 0x1234), paths: [server.uri])
        func count(_ what: String) throws -> Int {
            try String(contentsOfFile: requests, encoding: .utf8).split(separator: "\n")
                .filter { $0.contains(what) && !$0.contains("return") }.count
        }
        _ = try probe.readBestUberblock()
        let afterFirst = try count(" Connect ")
        for _ in 0..<3 { _ = try probe.readBestUberblock() }
        let afterFourth = try count(" Connect ")
        // The four labels are read at once, each on a connected lane when one is free, else on a
        // new connection: how many lanes a poll opens depends on how the reads overlap, but no
        // poll closes one, and there are never more than one per label. A probe that opened the
        // leaf per poll would disconnect after each.
        #expect(afterFirst >= 1, "no connection at the first poll")
        #expect(afterFourth <= 4, "connections: \(afterFirst) after one poll, \(afterFourth) after four")
        #expect(try count(" Disconnect ") == 0, "a poll closed a connection")
        #expect(try count(" Read ") >= 4 * 4, "every poll reads the four labels")
    }
}
