// zpkd --metrics: a real zpkd serving Prometheus text, scraped with curl (a real HTTP client)
// while a multihost pool is created, synced, suspended by injected errors, exported and
// imported again.

import Foundation
import Testing
import ZFSTestSupport
import ZPKDaemon

#if canImport(Glibc)
import Glibc
#endif

@Suite(.offTheCooperativePool, .serialized) struct MetricsTests {
    /// The sample lines of an exposition, by series (`name{labels}`) → value.
    static func samples(_ text: String) -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }

    static func scrape(_ url: String) async throws -> OpenZFS.ProcessOutput {
        try await onThread {
            try OpenZFS.run("/usr/bin/curl", ["-sS", "-i", "--max-time", "20", url], timeout: .seconds(30))
        }
    }

    @Test func prometheusTextIsServedAndFollowsThePools() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/curl"), "curl is missing: run scripts/install-ha-tools")
        let workspace = try Workspace("cluster-metrics")
        let daemon = try workspace.startDaemon(extra: shortMultihostTunables + ["--metrics", "127.0.0.1:0"])
        // Port 0: zpkd logs the port it got.
        var port: String?
        let deadline = ContinuousClock.now + Patience.hang
        while port == nil, ContinuousClock.now < deadline {
            if let range = daemon.log_.range(of: #"zpkd metrics on http://127\.0\.0\.1:[0-9]+/metrics"#, options: .regularExpression) {
                port = daemon.log_[range].split(separator: ":").last.map { String($0.dropLast("/metrics".count)) }
            } else {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let url = "http://127.0.0.1:\(try #require(port, "\(daemon.log_)"))/metrics"

        let paths = try workspace.devices(["mt-d1", "mt-d2"])
        let zpk = { (arguments: [String]) in try await zpkOffThePool(arguments, socket: workspace.socket) }
        try #require(try await zpk(["create", "-o", "multihost=on", "mt", "mirror"] + paths).status == 0)
        let synced = try await zpk(["sync", "mt"])
        let txg = try #require(Double(synced.stdoutText.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""))
        #expect(try await zpk(["export", "nosuch"]).status == 1)
        try await Task.sleep(for: .milliseconds(600))  // a few heartbeats (interval 200 ms)

        let first = try await Self.scrape(url)
        #expect(first.status == 0, "\(first)")
        #expect(first.stdoutText.hasPrefix("HTTP/1.1 200"), "\(first)")
        #expect(first.stdoutText.contains("Content-Type: text/plain; version=0.0.4"), "\(first)")
        let s = Self.samples(first.stdoutText)
        #expect(s[#"zpk_pool_txg{pool="mt"}"#] == txg, "\(first.stdoutText)")
        #expect(s[#"zpk_pool_suspended{pool="mt"}"#] == 0)
        #expect((s[#"zpk_pool_heartbeat_writes_total{pool="mt"}"#] ?? 0) > 0)
        #expect(s[#"zpk_pool_heartbeat_failures_total{pool="mt"}"#] == 0)
        #expect(s[#"zpk_pool_heartbeat_skips_total{pool="mt"}"#] != nil)
        #expect((s[#"zpk_pool_mmp_delay_seconds{pool="mt"}"#] ?? 0) > 0)
        #expect((s[#"zpk_pool_last_heartbeat_age_seconds{pool="mt"}"#] ?? 99) < 1.0, "interval 200 ms")
        for path in paths {
            #expect(s[#"zpk_leaf_last_heartbeat_age_seconds{pool="mt",leaf="\#(path)"}"#] != nil, "leaf \(path)")
        }
        #expect(s[#"zpk_control_requests_total{op="create",result="ok"}"#] == 1)
        #expect(s[#"zpk_control_requests_total{op="export",result="unknownPool"}"#] == 1)
        #expect((s[#"zpk_pool_sync_duration_seconds_count{pool="mt"}"#] ?? 0) >= 1)

        // Both leaves fail: the pool suspends (5 × 200 ms) and the failures are counted.
        for path in paths { #expect(try await zpk(["inject", "mt", path, "error"]).status == 0) }
        var suspended = [String: Double]()
        let until = ContinuousClock.now + .seconds(20)
        repeat {
            try await Task.sleep(for: .milliseconds(200))
            suspended = Self.samples(try await Self.scrape(url).stdoutText)
        } while suspended[#"zpk_pool_suspended{pool="mt"}"#] != 1 && ContinuousClock.now < until
        #expect(suspended[#"zpk_pool_suspended{pool="mt"}"#] == 1)
        #expect((suspended[#"zpk_pool_heartbeat_failures_total{pool="mt"}"#] ?? 0) > 0)

        // Export: the pool's gauges go; import again: its activity check is counted.
        #expect(try await zpk(["export", "mt"]).status == 0)
        let gone = Self.samples(try await Self.scrape(url).stdoutText)
        #expect(gone[#"zpk_pool_txg{pool="mt"}"#] == nil)
        #expect(try await zpk(["import", "-d", workspace.path, "mt"]).status == 0)
        let back = Self.samples(try await Self.scrape(url).stdoutText)
        #expect(back[#"zpk_pool_txg{pool="mt"}"#] != nil)
        #expect(back.filter { $0.key.hasPrefix("zpk_activity_checks_total{") }.values.reduce(0, +) == 1, "\(back)")
        #expect(back[#"zpk_pool_open_duration_seconds_count{mode="import"}"#] == 1)

        let missing = try await Self.scrape(url.replacingOccurrences(of: "/metrics", with: "/other"))
        #expect(missing.stdoutText.hasPrefix("HTTP/1.1 404"), "\(missing)")
        let stopped = daemon.stop()
        #expect(stopped == 0, "zpkd's log:\n\(daemon.log_)")
    }
}
