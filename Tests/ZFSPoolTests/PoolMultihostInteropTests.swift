// Our multihost pool against real OpenZFS 2.1.11 (libzpool through Tools/zpk-oracle): while a
// PoolHost in this process holds the pool with heartbeats every 100 ms, the oracle's import
// runs 2.1.11's activity check, sees our heartbeats and refuses with exit 3 naming our hostid
// and hostname; after we export, 2.1.11 skips the check (state EXPORTED) and refuses only for
// our MOS feature.
//
// Real time. fail_intervals is 0 (never suspend) rather than 10: with the whole suite running
// in parallel on two shared cores, a 1 s real-time suspension window was missed once, which
// suspended the holder and made the export write nothing. With 0, 2.1.11's wait is case 2
// (up to 20 s), but it reports our activity at its first poll after a heartbeat.

import Foundation
import ServiceLifecycle
import Testing
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSMultihost
import ZFSTestSupport

@testable import ZFSPool

@Suite(
    "Pool multihost against OpenZFS 2.1.11", .offTheCooperativePool, .serialized)
struct PoolMultihostInteropTests {
    /// OpenZFS 2.1.11 is this suite's oracle: without it every test fails, naming the missing tool.
    init() throws { try OpenZFS.requireInstalled() }

    func offThePool<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<R, any Error>) in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    @Test func openZFSSeesOurHeartbeatsThenOnlyOurFeature() async throws {
        _ = try ZPKOracle.build()
        let files = try SparseFiles(count: 2, size: 128 << 20, prefix: "mh")
        let directory = files.directory
        let tunables = MultihostTunablesStore(MultihostTunables(intervalInMilliseconds: 100, failIntervals: 0))
        let host = PoolHost(
            environment: .init(hostID: 0x3333_3333, hostname: "zpk-holder", multihostTunables: tunables))
        let pool = try await host.create(name: "zpkmh", layout: [.mirror(files.paths)], properties: ["multihost": "on"])
        try await pool.put("kept", Array("held by zpk".utf8))
        try await pool.sync()
        let service = host.multihostService
        let runner = Task { try await service.run() }
        defer { runner.cancel() }
        // Real time: wait (a hang detector) until a few heartbeats have landed.
        let clock = ContinuousClock()
        let deadline = clock.now + Patience.hang
        while (pool.status().multihost?.heartbeatsWritten ?? 0) < 3 && clock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect((pool.status().multihost?.heartbeatsWritten ?? 0) >= 3)

        let refused = try await offThePool {
            try ZPKOracle.run(["import", "zpkmh", "-d", directory, "--hostid", "44444444"], timeout: .seconds(120))
        }
        #expect(refused.status == 3, "\(refused.stdout)\n\(refused.stderr)")
        #expect(
            ZPKOracle.result(refused.stdout)?.fields == ["outcome": "active", "hostid": "0x33333333", "hostname": "zpk-holder"],
            "\(refused.stdout)")
        #expect(pool.status().state == "ACTIVE")

        try await host.export("zpkmh")
        let after = try await offThePool {
            try ZPKOracle.run(["import", "zpkmh", "-d", directory, "--hostid", "44444444"], timeout: .seconds(120))
        }
        #expect(after.status == 1, "\(after.stdout)\n\(after.stderr)")
        #expect(ZPKOracle.result(after.stdout)?["errno"] == "ENOTSUP", "\(after.stdout)")
    }

    /// Real time, real files: a holder that crashes (forgotten, heartbeat stopped) is taken over
    /// by another PoolHost after D' (2–2.5 s at 100 ms × 10) plus the 1 s claim.
    @Test func takeoverAfterCrashTakesTheFormulasTime() async throws {
        let files = try SparseFiles(count: 2, size: 128 << 20, prefix: "mhcrash")
        let tunables = MultihostTunablesStore(MultihostTunables(intervalInMilliseconds: 100, failIntervals: 10))
        let holder = PoolHost(environment: .init(hostID: 0x5555_5555, hostname: "crashes", multihostTunables: tunables))
        let pool = try await holder.create(name: "zpkcrash", layout: [.mirror(files.paths)], properties: ["multihost": "on"])
        try await pool.put("kept", Array("survives".utf8))
        try await pool.sync()
        holder.forget("zpkcrash")
        let taker = PoolHost(environment: .init(hostID: 0x6666_6666, hostname: "taker", multihostTunables: tunables))
        let clock = ContinuousClock()
        let start = clock.now
        let taken = try await taker.importPool("zpkcrash", searchPaths: [files.directory], force: true)
        let waited = clock.now - start
        print("takeover after crash: \(waited)")
        #expect(waited >= .seconds(3) && waited < .seconds(10), "took \(waited)")
        #expect(try await taken.get("kept") == Array("survives".utf8))
        try await taker.export("zpkcrash")
    }
}
