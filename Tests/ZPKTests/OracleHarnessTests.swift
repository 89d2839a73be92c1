import Foundation
import Testing
import ZFSTestSupport

#if canImport(Glibc)
import Glibc
#endif

// Proves the zpk-oracle harness (Tools/zpk-oracle, ZFSTestSupport/Oracle.swift) against real
// OpenZFS 2.1.11: pools it creates list as `zpool import` would list them, missing leaves and
// missing top-level vdevs give OpenZFS's states and aux codes, and a pool held with multihost on
// by one host id cannot be imported by another (the real MMP activity check). These run in CI
// every time and never skip: if the oracle cannot be built, `ZPKOracle.build()` throws and says
// to run scripts/install-openzfs. About 10 s in all.
//
// Serialized: the MMP cases time activity checks that last seconds; parallel runs on a small
// machine would only blur those timings.

/// Host ids the tests claim (each process claims its own; /etc/hostid is never used).
private let hostA = "11111111"
private let hostB = "22222222"

/// Runs zpk-oracle, failing the test with its output when `status` is not `expected`.
private func oracle(
    _ args: [String], expect expected: Int32 = 0, timeout: Duration = .seconds(60),
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> (stdout: String, stderr: String, status: Int32) {
    let out = try ZPKOracle.run(args, timeout: timeout)
    #expect(
        out.status == expected,
        "zpk-oracle \(args.joined(separator: " ")) exited \(out.status)\n--- stdout\n\(out.stdout)--- stderr\n\(out.stderr)",
        sourceLocation: sourceLocation)
    return out
}

/// The one pool `tryimport` lists in `directory`, as host `hostID`.
private func onlyPool(in directory: URL, as hostID: String) throws -> ZPKOracle.Pool {
    let out = try oracle(["tryimport", "-d", directory.path, "--hostid", hostID])
    #expect(ZPKOracle.result(out.stdout)?.fields == ["outcome": "ok", "pools": "1"], "\(out.stdout)")
    let pools = try ZPKOracle.parseTryImport(out.stdout)
    guard pools.count == 1 else {
        throw ZPKOracle.Failure("expected one pool, got \(pools.count)", stdout: out.stdout, stderr: out.stderr)
    }
    return pools[0]
}

/// A fresh directory for one test, removed when the closure returns.
private func inOracleScratchDirectory<T>(_ label: String, _ body: (URL) throws -> T) throws -> T {
    let directory = try ZPKOracle.makeTemporaryDirectory("zpk-oracle-\(label)")
    defer { try? FileManager.default.removeItem(at: directory) }
    return try body(directory)
}

@Suite("zpk-oracle harness (libzpool as another host)", .offTheCooperativePool, .serialized)
struct OracleHarnessTests {
    @Test func buildsAndParsesItsOwnOutput() throws {
        let binary = try ZPKOracle.build()
        #expect(FileManager.default.isExecutableFile(atPath: binary.path))
        #expect(try ZPKOracle.build() == binary)  // cached
        let usage = try ZPKOracle.run(["frobnicate"], timeout: .seconds(10))
        #expect(usage.status == 2 && usage.stdout.isEmpty && usage.stderr.contains("unknown verb"))

        let record = try #require(ZPKOracle.Record(line: #"{"event":"result","outcome":"active","hostid":"0x1","hostname":"a \"b\"","root":{}}"#))
        #expect(record.event == "result" && record.fields == ["outcome": "active", "hostid": "0x1", "hostname": "a \"b\""])
        #expect(ZPKOracle.Record(line: "RESULT ok") == nil && ZPKOracle.Record(line: #"{"outcome":"ok"}"#) == nil)
    }

    /// A two-way mirror lists ONLINE; without one of its files it lists DEGRADED with that leaf
    /// UNAVAIL/open_failed, and still importable (status MISSING_DEV_R, ZFS-8000-2Q).
    @Test func mirrorOnlineThenDegraded() throws {
        try inOracleScratchDirectory("mirror") { dir in
            let created = try oracle([
                "create", "tank", "-d", dir.path, "--hostid", hostA, "--hostname", "host-a", "mirror", "a.img", "b.img",
            ])
            let createdRecord = try #require(ZPKOracle.records(created.stdout).first { $0.event == "created" })
            let guid = try #require(createdRecord["guid"].flatMap { UInt64($0) })
            #expect(ZPKOracle.records(created.stdout).suffix(2).map(\.description) == ["exported pool=tank", "result outcome=ok"])

            let a = dir.appendingPathComponent("a.img").path
            let b = dir.appendingPathComponent("b.img").path
            let pool = try onlyPool(in: dir, as: hostB)
            #expect(pool.name == "tank" && pool.guid == guid)
            #expect(pool.state == "EXPORTED" && pool.health == "ONLINE")
            #expect(pool.hostID == 0x1111_1111 && pool.hostname == "host-a")
            #expect(pool.mmpState == "none" && pool.action == "import" && pool.status == "OK")
            #expect(pool.txg ?? 0 > 4)
            #expect(pool.root.type == "root" && pool.root.guid == guid && pool.root.state == "ONLINE")
            #expect(pool.root.children.map(\.type) == ["mirror"])
            #expect(pool.root.leaves.map(\.path) == [a, b])
            #expect(pool.root.allVdevs.allSatisfy { $0.state == "ONLINE" && $0.aux == "none" }, "\(pool)")

            try FileManager.default.removeItem(atPath: b)
            let degraded = try onlyPool(in: dir, as: hostB)
            #expect(degraded.guid == guid && degraded.health == "DEGRADED", "\(degraded)")
            #expect(degraded.root.children.first?.state == "DEGRADED")
            #expect(degraded.root.vdev(path: a).map { [$0.state, $0.aux] } == ["ONLINE", "none"])
            #expect(degraded.root.vdev(path: b).map { [$0.state, $0.aux] } == ["UNAVAIL", "open_failed"])
            #expect(degraded.status == "MISSING_DEV_R" && degraded.messageID == "ZFS-8000-2Q")
            #expect(degraded.action == "import")
        }
    }

    /// Two top-level vdevs, one deleted: the pool lists UNAVAIL (root no_replicas), the
    /// missing vdev UNAVAIL/open_failed with its path from the MOS, status MISSING_DEV_NR, and
    /// a real import fails.
    @Test func missingTopLevelVdevMakesThePoolUnavailable() throws {
        try inOracleScratchDirectory("stripe") { dir in
            _ = try oracle(["create", "duo", "-d", dir.path, "--hostid", hostA, "x.img", "y.img"])
            let y = dir.appendingPathComponent("y.img").path
            try FileManager.default.removeItem(atPath: y)

            let pool = try onlyPool(in: dir, as: hostA)
            #expect(pool.name == "duo" && pool.health == "UNAVAIL", "\(pool)")
            #expect(pool.root.state == "UNAVAIL" && pool.root.aux == "no_replicas")
            #expect(pool.root.children.count == 2)
            #expect(pool.root.vdev(path: y).map { [$0.type, $0.state, $0.aux] } == ["file", "UNAVAIL", "open_failed"])
            #expect(pool.status == "MISSING_DEV_NR" && pool.messageID == "ZFS-8000-3C")
            #expect(pool.action == "unavailable")

            let imported = try oracle(["import", "duo", "-d", dir.path, "--hostid", hostA], expect: 1)
            #expect(ZPKOracle.result(imported.stdout)?["outcome"] == "error", "\(imported.stdout)")
        }
    }

    /// Host A holds a multihost pool; host B's import runs the activity check, sees A's
    /// uberblocks change and is refused with exit 3 naming A. Once A exports, B imports it.
    ///
    /// Holder tunables: interval 100 ms, fail_intervals 10, so the importer's check lasts
    /// 10 × 100 ms × 2 = 2 s (+0–25 %) and re-reads the uberblocks at 1 s. With fail_intervals
    /// 2 the check would last 0.4 s, and OpenZFS 2.1.11 reads only once (at its start), so it
    /// usually misses a live holder (measured: 4 of 6 imports wrongly found it inactive).
    @Test func heldMultihostPoolIsActiveForAnotherHost() throws {
        try inOracleScratchDirectory("mmp") { dir in
            _ = try oracle(["create", "tank", "-d", dir.path, "--hostid", hostA, "mirror", "a.img", "b.img"])
            let holder = try ZPKOracle.start([
                "hold", "tank", "-d", dir.path, "--seconds", "0", "--multihost", "on", "--interval-ms", "100",
                "--fail-intervals", "10", "--hostid", hostA, "--hostname", "holder-a",
            ])
            defer { holder.kill() }
            let ready = try holder.waitForRecord("ready", timeout: .seconds(30))
            #expect(ready["multihost"] == "on" && ready["hostid"] == "0x11111111" && ready["hostname"] == "holder-a")
            _ = try holder.waitForRecord("tick", timeout: .seconds(10))

            let clock = ContinuousClock()
            let start = clock.now
            let refused = try oracle(
                ["import", "tank", "-d", dir.path, "--hostid", hostB, "--hostname", "host-b"], expect: 3)
            let waited = clock.now - start
            #expect(ZPKOracle.result(refused.stdout)?.fields == ["outcome": "active", "hostid": "0x11111111", "hostname": "holder-a"])
            #expect(waited < .seconds(10), "activity check took \(waited)")

            let listed = try onlyPool(in: dir, as: hostB)
            #expect(listed.state == "ACTIVE" && listed.mmpState == "ACTIVE" && listed.action == "blocked-active")
            #expect(listed.status == "HOSTID_ACTIVE" && listed.fields["mmp_hostname"] == "holder-a", "\(listed)")

            let stopped = try holder.terminate()
            #expect(stopped.status == 0 && ZPKOracle.records(stopped.stdout).suffix(2).map(\.description) == ["exported pool=tank", "result outcome=ok"], "\(stopped)")
            let imported = try oracle(["import", "tank", "-d", dir.path, "--hostid", hostB])
            #expect(ZPKOracle.result(imported.stdout)?.fields == ["outcome": "ok"])
        }
    }

    /// Host A "crashes" while holding the pool (no export). Host B's check finds no activity,
    /// but the pool was last used by A, so B needs --force, which then succeeds.
    @Test func crashedHolderNeedsForceAfterTheActivityCheck() throws {
        try inOracleScratchDirectory("crash") { dir in
            _ = try oracle(["create", "tank", "-d", dir.path, "--hostid", hostA, "mirror", "a.img", "b.img"])
            let crashed = try oracle([
                "hold", "tank", "-d", dir.path, "--seconds", "1", "--no-export", "--multihost", "on",
                "--interval-ms", "100", "--fail-intervals", "10", "--hostid", hostA,
            ])
            #expect(ZPKOracle.records(crashed.stdout).suffix(2).map(\.description) == ["crashed pool=tank", "result outcome=ok"], "\(crashed.stdout)")

            let unforced = try oracle(["import", "tank", "-d", dir.path, "--hostid", hostB], expect: 1)
            #expect(ZPKOracle.result(unforced.stdout)?["errno"] == "EBUSY", "\(unforced.stdout)")
            let clock = ContinuousClock()
            let start = clock.now
            let forced = try oracle(["import", "tank", "-d", dir.path, "--hostid", hostB, "--force"])
            let waited = clock.now - start
            #expect(ZPKOracle.result(forced.stdout)?.fields == ["outcome": "ok"])
            // Activity check: 2 s computed, +0–25 %, rounded up by the once-a-second polling.
            #expect(waited >= .seconds(2) && waited < .seconds(10), "import took \(waited)")
        }
    }
}
