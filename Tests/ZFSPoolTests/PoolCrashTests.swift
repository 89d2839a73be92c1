// Power cut at every write of a sync, an export or an add (lost, and torn in half): after
// "reboot" the pool opens at the last txg whose uberblock landed, with the top-level vdevs of
// that txg, and every object of that txg reads back intact.

import Testing
import ZFSDevice
import ZFSFormat
import ZFSTestSupport

@testable import ZFSPool

@Suite struct PoolCrashTests {
    enum Step: String, CaseIterable { case sync, export, add }
    static let paths = ["/dev/a", "/dev/b", "/dev/c", "/dev/d", "/dev/e", "/dev/f"]

    /// Builds a pool at txg 5 with `before`, stages `after` in txg 6, and returns what is needed
    /// to cut power during the txg-6 sync.
    static func stage(_ rack: DeviceRack) async throws -> (Pool, PoolHost, [String: [UInt8]], [String: [UInt8]]) {
        let host = PoolHost(environment: rack.environment())
        let pool = try await host.create(
            name: "tank", layout: [.mirror(["/dev/a", "/dev/b"]), .mirror(["/dev/c", "/dev/d"])])
        let before = randomObjects(count: 6, maximumSize: 30_000, prefix: "a", seed: 7)
        for (name, bytes) in before { try await pool.put(name, bytes) }
        #expect(try await pool.sync() == TXG(5))
        var after = before
        for (name, bytes) in randomObjects(count: 3, maximumSize: 30_000, prefix: "b", seed: 8) {
            try await pool.put(name, bytes)
            after[name] = bytes
        }
        try await pool.put("a-0", [42])
        after["a-0"] = [42]
        try await pool.remove("a-1")
        after["a-1"] = nil
        return (pool, host, before, after)
    }

    static func run(_ step: Step, pool: Pool, host: PoolHost) async throws {
        switch step {
        case .sync: try await pool.sync()
        case .export: try await host.export("tank")
        case .add: try await host.add("tank", layout: [.mirror(["/dev/e", "/dev/f"])])
        }
    }

    @Test(arguments: Step.allCases)
    func powerCutAtEveryWrite(step: Step) async throws {
        // Count the writes of an uninterrupted run.
        let probe = DeviceRack(paths: Self.paths)
        let (probePool, probeHost, _, _) = try await Self.stage(probe)
        probe.power.cut(after: .max, tornFraction: 0)
        try await Self.run(step, pool: probePool, host: probeHost)
        let total = probe.power.writesSinceArming
        #expect(total >= 24)

        var openedAt: [TXG: Int] = [:]
        for torn in [0.0, 0.5] {
            for cutoff in 0...total {
                let rack = DeviceRack(paths: Self.paths)
                let (pool, host, before, after) = try await Self.stage(rack)
                let cached = pool.config
                rack.power.cut(after: cutoff, tornFraction: torn)
                let completed: Bool
                do {
                    try await Self.run(step, pool: pool, host: host)
                    completed = true
                } catch {
                    completed = false
                }
                #expect(completed == (cutoff >= total), "cutoff \(cutoff) torn \(torn)")
                // Reboot: new host, healthy power, same bytes.
                rack.power.cut(after: .max, tornFraction: 0)
                let rebooted = PoolHost(environment: rack.environment())
                let reopened = try await rebooted.open(config: cached, mode: .import())
                let txg = reopened.openReport.openedTXG
                openedAt[txg, default: 0] += 1
                #expect(txg == TXG(5) || txg == TXG(6), "cutoff \(cutoff) torn \(torn): opened at \(txg)")
                try await expectObjects(reopened, txg == TXG(6) ? after : before)
                let topLevels = reopened.status().vdevTree.children.count
                #expect(topLevels == (step == .add && txg == TXG(6) ? 3 : 2), "cutoff \(cutoff) torn \(torn)")
                #expect(reopened.status().health == "ONLINE", "cutoff \(cutoff) torn \(torn)")
                if completed { #expect(txg == TXG(6)) }
                // The pool keeps working after the crash.
                try await reopened.put("post", [1, 2, 3])
                try await reopened.sync()
                #expect(try await reopened.get("post") == [1, 2, 3])
            }
        }
        #expect(openedAt[TXG(5), default: 0] > 0 && openedAt[TXG(6), default: 0] > 0)
    }
}
