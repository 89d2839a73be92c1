// zpkd's `--log-format json`: the handler's exact lines (fixed clock), and real zpkd processes
// whose every stderr line is a JSON object, with the multihost events — takeover refused,
// activity check, suspend, resume — carrying pool, hostid and timings.

import Foundation
import Logging
import Synchronization
import Testing
import ZFSTestSupport
import ZPKDaemon

#if canImport(Glibc)
import Glibc
#endif

@Suite struct JSONLogHandlerTests {
    final class Sink: Sendable {
        let lines = Mutex<[String]>([])
    }

    func logger(_ sink: Sink) -> Logger {
        Logger(label: "zpkd") { label in
            JSONLogHandler(label: label, write: { line in sink.lines.withLock { $0.append(line) } }, now: { (1_764_866_701, 123_456_789) })
        }
    }

    @Test func oneObjectPerLineWithTypedMetadata() throws {
        let sink = Sink()
        var log = logger(sink)
        log[metadataKey: "host.id"] = "aaaa0001"
        log.warning(
            "quote \" backslash \\ newline \n tab \t bell \u{7}",
            metadata: [
                "pool.name": "tank", "mmp.waited_ms": .stringConvertible(2047), "mmp.running": .stringConvertible(true),
                "nested": ["b": "2", "a": .array(["x", .stringConvertible(1.5)])],
            ], source: "ZFSPool")
        let lines = sink.lines.withLock { $0 }
        #expect(lines.count == 1)
        #expect(
            lines[0]
                == #"{"time":"2025-12-04T16:45:01.123Z","level":"warning","label":"zpkd","source":"ZFSPool","#
                + #""message":"quote \" backslash \\ newline \n tab \t bell \u0007","host.id":"aaaa0001","#
                + #""mmp.running":true,"mmp.waited_ms":2047,"nested":{"a":["x",1.5],"b":"2"},"pool.name":"tank"}"#
                + "\n")
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(object["mmp.waited_ms"] as? Int == 2047)
        #expect(object["message"] as? String == "quote \" backslash \\ newline \n tab \t bell \u{7}")
    }

    @Test func levelsAndTimestamps() {
        #expect(JSONLogHandler.iso8601(seconds: 0, nanoseconds: 5_000_000) == "1970-01-01T00:00:00.005Z")
        #expect(JSONLogHandler.iso8601(seconds: 951_782_400, nanoseconds: 999_999_999) == "2000-02-29T00:00:00.999Z")
        let sink = Sink()
        let log = logger(sink)
        log.critical("c")
        log.debug("not at info level")
        #expect(sink.lines.withLock { $0.count } == 1)
        #expect(sink.lines.withLock { $0[0] }.contains(#""level":"critical""#))
    }
}

@Suite(.offTheCooperativePool, .serialized) struct JSONLogDaemonTests {
    /// The JSON objects of a log; every line must be one.
    static func objects(_ log: String) throws -> [[String: Any]] {
        try log.split(separator: "\n").map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return try #require(object, "not a JSON object: \(line)")
        }
    }

    static func events(_ log: String, _ name: String) throws -> [[String: Any]] {
        try objects(log).filter { $0["mmp.event"] as? String == name }
    }

    @Test func multihostEventsAreJSONLinesWithPoolHostidAndTimings() async throws {
        let workspace = try Workspace("cluster-json-log")
        let json = shortMultihostTunables + ["--log-format", "json"]
        let a = try workspace.startDaemon(hostID: "aaaa0001", hostname: "host-a", instance: "a", extra: json)
        let b = try workspace.startDaemon(hostID: "bbbb0002", hostname: "host-b", instance: "b", extra: json)
        let paths = try workspace.devices(["jl-d1", "jl-d2"])
        let onA = { (arguments: [String]) in try await zpkOffThePool(arguments, socket: workspace.socket(instance: "a")) }
        let onB = { (arguments: [String]) in try await zpkOffThePool(arguments, socket: workspace.socket(instance: "b")) }
        try #require(try await onA(["create", "-o", "multihost=on", "jl", "mirror"] + paths).status == 0)

        // B's import while A heartbeats: refused, logged by B with the holder and the timings.
        #expect(try await onB(["import", "-d", workspace.path, "-f", "jl"]).status == 3)
        let refused = try #require(try Self.events(b.log_, "takeover_refused").first, "\(b.log_)")
        #expect(refused["pool.name"] as? String == "jl")
        #expect(refused["host.id"] as? String == "bbbb0002")
        #expect(refused["mmp.holder.hostname"] as? String == "host-a")
        #expect(refused["mmp.holder.hostid"] as? String == "aaaa0001")
        #expect(refused["mmp.result"] as? String == "active")
        #expect(refused["level"] as? String == "warning")
        let detected = try #require(refused["mmp.detected_after_ms"] as? Int)
        let total = try #require(refused["mmp.total_ms"] as? Int)
        #expect(detected <= total && (2000...2500).contains(total), "\(refused)")

        // A crashes; B's import waits the check: an activity_check event with what it waited.
        #expect(a.stop(signal: SIGKILL) == 128 + SIGKILL)
        #expect(try await onB(["import", "-d", workspace.path, "-f", "jl"]).status == 0)
        let check = try #require(try Self.events(b.log_, "activity_check").first, "\(b.log_)")
        #expect(check["mmp.result"] as? String == "inactive")
        #expect(check["host.id"] as? String == "bbbb0002")
        let waited = try #require(check["mmp.waited_ms"] as? Int)
        #expect(waited >= 2000 && waited >= (check["mmp.total_ms"] as? Int ?? .max), "\(check)")

        // Every leaf fails: suspend, with how long the heartbeats were silent.
        for path in paths { #expect(try await onB(["inject", "jl", path, "error"]).status == 0) }
        let deadline = ContinuousClock.now + .seconds(20)
        while try Self.events(b.log_, "suspend").isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        let suspend = try #require(try Self.events(b.log_, "suspend").first, "\(b.log_)")
        #expect(suspend["pool.name"] as? String == "jl")
        #expect(suspend["host.id"] as? String == "bbbb0002")
        #expect(suspend["mmp.cause"] as? String == "heartbeats_failed")
        #expect(suspend["mmp.fail_after_ms"] as? Int == 1000, "5 × 200 ms: \(suspend)")
        #expect((suspend["mmp.silent_ms"] as? Int ?? 0) >= 1000, "\(suspend)")

        // The devices come back; clear resumes after its own check.
        #expect(try await onB(["inject", "--clear", "jl"]).status == 0)
        let cleared = try await onB(["clear", "jl"])
        #expect(cleared.status == 0, "\(cleared)")
        let resume = try #require(try Self.events(b.log_, "resume").first, "\(b.log_)")
        #expect(resume["pool.name"] as? String == "jl")
        #expect((resume["mmp.waited_ms"] as? Int ?? 0) >= 2000, "\(resume)")

        #expect(b.stop() == 0)
        // Every line of both logs is a JSON object, the ready line included.
        let lines = try Self.objects(b.log_)
        #expect(lines.contains { ($0["message"] as? String)?.hasPrefix("zpkd ready on ") == true })
        _ = try Self.objects(a.log_)
    }
}
