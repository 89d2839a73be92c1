import Crypto
import Foundation
import Testing
import ZFSFormat
import ZFSImport
import ZFSMultihost
import ZFSTestSupport
@testable import ZPKCLI

#if canImport(Glibc)
import Glibc
#endif

// `zpk activity` against real OpenZFS 2.1.11 (libzpool through Tools/zpk-oracle as "host A",
// zpk as "host B"): a live holder is reported active with its hostid and hostname (exit 3),
// an exported pool is answered at once (exit 0), a crashed holder's pool after the wait the
// formula gives (exit 0), and nothing is written to the device files.
//
// Holder tunables: interval 100 ms × fail 10 → D = 10 × 100 ms × 2 = 2 s, D' ∈ [2, 2.5) s.
// Time is asserted only where the formula fixes it, from zpk's own monotonic measurements (its
// JSON), with slack for a loaded machine; never the wall time of a process, which includes its
// start-up. How fast detection is lives in mmp-bench (BENCHMARKS.md §6, part 2).

private let hostA = "11111111"
private let hostB = "22222222"

private func zpkActivity(_ args: [String]) throws -> (stdout: String, stderr: String, status: Int32, wall: Duration) {
    let zpk = try ZPKExecutable.url().path
    var environment = OpenZFS.pinnedEnvironment
    environment["ZFS_HOSTID"] = hostB
    let clock = ContinuousClock()
    let start = clock.now
    let out = try OpenZFS.run(zpk, ["activity"] + args, environment: environment, timeout: .seconds(60))
    return (out.stdoutText, out.stderrText, out.status, clock.now - start)
}

/// SHA-256 of every file in `directory`, by name.
private func digests(_ directory: URL) throws -> [String: String] {
    var out: [String: String] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        out[name] = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
    return out
}

@Suite(
    "zpk activity against OpenZFS 2.1.11", .offTheCooperativePool)
struct ActivityInteropTests {
    /// OpenZFS 2.1.11 is this suite's oracle: without it every test fails, naming the missing tool.
    init() throws { try OpenZFS.requireInstalled() }

    @Test func liveHolderIsActiveThenExportedPoolIsFreeAtOnce() throws {
        let dir = try ZPKOracle.makeTemporaryDirectory("zpk-activity-live")
        defer { try? FileManager.default.removeItem(at: dir) }
        let created = try ZPKOracle.run(["create", "tank", "-d", dir.path, "--hostid", hostA, "mirror", "a.img", "b.img"], timeout: .seconds(60))
        #expect(created.status == 0, "\(created)")
        let holder = try ZPKOracle.start([
            "hold", "tank", "-d", dir.path, "--seconds", "0", "--multihost", "on", "--interval-ms", "100",
            "--fail-intervals", "10", "--hostid", hostA, "--hostname", "holder-a",
        ])
        defer { holder.kill() }
        _ = try holder.waitForRecord("ready", timeout: .seconds(30))
        _ = try holder.waitForRecord("tick", timeout: .seconds(10))

        let text = try zpkActivity(["-d", dir.path, "tank"])
        #expect(text.status == 3, "\(text)")
        #expect(text.stdout.contains("is in use on host 'holder-a' (hostid 0x11111111); this host saw its newest heartbeat "), "\(text.stdout)")
        #expect(text.stdout.contains("the writer heartbeats every 100 ms and suspends itself after 10 intervals without one"))

        let json = try zpkActivity(["-d", dir.path, "--json", "tank"])
        #expect(json.status == 3)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["result"] as? String == "active")
        let active = try #require(object["active_host"] as? [String: Any])
        #expect(active["hostname"] as? String == "holder-a")
        #expect((active["hostid"] as? NSNumber)?.uint64Value == 0x1111_1111)
        #expect((object["peer_interval_ms"] as? NSNumber)?.intValue == 100)
        #expect((object["peer_fail_intervals"] as? NSNumber)?.intValue == 10)
        // measured from this host's reads (monotonic), reported right after the read that saw it
        #expect((object["last_heartbeat_ms_ago"] as? NSNumber).map { $0.intValue >= 0 && $0.intValue < 500 } == true, "\(object)")
        // the reads are one poll interval (the writer's 100 ms) apart, plus scheduling slack; 0
        // when the check's first read already differed from the scan's (no earlier read timed)
        #expect((object["last_heartbeat_resolution_ms"] as? NSNumber).map { $0.intValue >= 0 && $0.intValue < 1000 } == true, "\(object)")
        #expect(object["shares_local_hostid"] as? Bool == false)
        let wait = try #require(object["wait"] as? [String: Any])
        #expect((wait["duration_ms"] as? NSNumber)?.intValue == 2000)
        // Seen before the check's wait (D = 2 s) was over: the holder heartbeats every 50 ms.
        let detected = try #require((object["detected_after_ms"] as? NSNumber)?.intValue)
        #expect(detected >= 0 && detected < 2000, "detected after \(detected) ms")
        // progress lines on stderr, one JSON object each
        let progress = json.stderr.split(separator: "\n").filter { $0.hasPrefix("{\"event\":\"progress\"") }
        #expect(!progress.isEmpty, "\(json.stderr)")
        #expect(progress.first?.hasPrefix("{\"event\":\"progress\",\"phase\":\"activity_check\",\"pool\":\"tank\",\"elapsed_ms\":") == true, "\(progress)")
        #expect(progress.allSatisfy { $0.hasSuffix(",\"total_ms\":\(wait["total_ms"] as? Int ?? -1)}") }, "\(progress)")

        let stopped = try holder.terminate()
        #expect(stopped.status == 0, "\(stopped)")
        let before = try digests(dir)
        let exported = try zpkActivity(["-d", dir.path, "tank"])
        #expect(exported.status == 0, "\(exported)")
        #expect(exported.stdout.contains("no activity check is needed — the pool was exported"), "\(exported.stdout)")
        // Answered without a wait: a verdict that needs no check, and no time waited.
        let exportedJSON = try zpkActivity(["-d", dir.path, "--json", "tank"])
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(exportedJSON.stdout.utf8)) as? [String: Any])
        #expect(answer["not_required_reason"] != nil && answer["waited_ms"] == nil && answer["wait"] == nil, "\(answer)")
        #expect(try digests(dir) == before)
    }

    @Test func crashedHolderIsFreeAfterTheFormulasWaitAndNothingIsWritten() async throws {
        let dir = try ZPKOracle.makeTemporaryDirectory("zpk-activity-crash")
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try ZPKOracle.run(["create", "tank", "-d", dir.path, "--hostid", hostA, "mirror", "a.img", "b.img"], timeout: .seconds(60))
        let crashed = try ZPKOracle.run([
            "hold", "tank", "-d", dir.path, "--seconds", "1", "--no-export", "--multihost", "on",
            "--interval-ms", "100", "--fail-intervals", "10", "--hostid", hostA, "--hostname", "holder-a",
        ], timeout: .seconds(60))
        #expect(ZPKOracle.records(crashed.stdout).suffix(2).map(\.description) == ["crashed pool=tank", "result outcome=ok"], "\(crashed.stdout)")
        let before = try digests(dir)

        let out = try zpkActivity(["-d", dir.path, "--json", "tank"])
        #expect(out.status == 0, "\(out)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
        #expect(object["result"] as? String == "inactive")
        let wait = try #require(object["wait"] as? [String: Any])
        let total = try #require((wait["total_ms"] as? NSNumber)?.intValue)
        let waited = try #require((object["waited_ms"] as? NSNumber)?.intValue)
        #expect((wait["duration_ms"] as? NSNumber)?.intValue == 2000)
        #expect(total >= 2000 && total < 2500)
        // Never before the deadline; after it, by the last read of the leaves (a few ms on an
        // idle machine, mmp-bench part 1), here with a slack of 5 s for a loaded one.
        #expect(waited >= total && waited < total + 5000, "waited \(waited) ms of \(total)")
        #expect(out.wall >= .milliseconds(total), "took \(out.wall)")
        let last = try #require(object["last_writer"] as? [String: Any])
        #expect(last["hostname"] as? String == "holder-a")

        // The same verdict in process, in virtual time: the CLI's text, no real waiting.
        let scan = await ImportScanner(options: .init(searchPaths: [dir.path])).scan()
        let health = PoolHealth.assess(try #require(scan.pools.first), in: scan, localHostID: 0x2222_2222)
        let ub = try #require(health.uberblock)
        let clock = ManualClock()
        let run = Task {
            await ZPK.Activity.run(
                searchPaths: [dir.path], cacheFile: nil, pool: "tank", json: false, environment: ["ZFS_HOSTID": hostB],
                clock: clock, wallClock: .fixed(seconds: ub.timestampInSeconds + 5))
        }
        let advancing = Task {
            await clock.advanceWhileRunning()
        }
        let output = await run.value
        advancing.cancel()
        #expect(output.status == 0 && output.stderr.isEmpty, "\(output)")
        let lines = output.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(output.stdout)")
        #expect(lines.first?.hasPrefix("pool 'tank' (guid ") == true && lines.first?.hasSuffix("): no other host is writing it; importable here.") == true)
        #expect(lines.dropFirst().first?.hasPrefix("  waited 2.") == true)
        #expect(lines.dropFirst(2).first?.hasPrefix("  why this wait: the last writer heartbeats every 100 ms and suspends itself after 10 intervals without one (1000 ms); OpenZFS waits twice that: 2.000 s; plus a random ") == true, "\(lines)")
        #expect(lines.last == "  last written by host 'holder-a' (hostid 0x11111111).")
        #expect(clock.now.offset >= .seconds(2) && clock.now.offset < .milliseconds(2500))

        // `zpk import` listing: heartbeat health without waiting.
        let listed = ZpoolImportListing.render(health, time: { _ in "T\n" }, wallClockSeconds: { ub.timestampInSeconds + 3 })
        #expect(listed.contains("\tMultihost: newest heartbeat 3 s ago (txg \(ub.txg.rawValue)) by holder-a (hostid=11111111), every 100 ms, suspends after 10 missed; `zpk activity tank` watches it and gives a verdict.\n"), "\(listed)")
        #expect(try digests(dir) == before)
    }
}
