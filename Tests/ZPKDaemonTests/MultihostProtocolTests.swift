// The multihost operations in-process (no sockets, no pools): the tunables through the handler
// table, exit status 3 for `poolInUse`, and the usage errors of the new verbs, verbatim.

import Foundation
import Testing
import ZFSMultihost
import ZFSPool
import ZFSTestSupport
import ZPKDaemon
import ZPKControl

@Suite struct MultihostProtocolTests {
    static func handlers() -> (table: [String: ControlHandler], store: MultihostTunablesStore) {
        let store = MultihostTunablesStore(MultihostTunables(intervalInMilliseconds: 50, failIntervals: 1))
        let host = PoolHost(
            environment: PoolHost.Environment(hostID: 0x1234, hostname: "unit", multihostTunables: store, cacheFilePath: nil))
        return (PoolHandlers.table(host: host, identity: DaemonIdentity(hostID: 0x1234, hostname: "unit")), store)
    }

    static let noEvents = ControlRequestContext { _ in }

    @Test func tunableGetShowsRawAndClampedValues() async throws {
        let (table, _) = Self.handlers()
        let reply = try await table["tunable.get"]!(ControlRequest(operation: "tunable.get"), Self.noEvents)
        let rows = try #require(reply.result["tunables"]?.arrayValue)
        #expect(rows.map { $0["name"]?.stringValue } == [
            "zfs_multihost_interval", "zfs_multihost_fail_intervals", "zfs_multihost_import_intervals",
        ])
        // Raw 50 ms is used as MMP_MIN_INTERVAL (100); fail intervals 1 as MMP_MIN_FAIL_INTERVALS (2).
        #expect(rows.map { $0["value"]?.uint64Value } == [50, 1, 20])
        #expect(rows.map { $0["effective"]?.uint64Value } == [100, 2, 20])
        #expect(rows.map { $0["default"]?.uint64Value } == [1000, 10, 20])
    }

    @Test func tunableSetChangesTheHostsStoreAndRefusesWhatDoesNotFit() async throws {
        let (table, store) = Self.handlers()
        let set = table["tunable.set"]!
        _ = try await set(
            ControlRequest(operation: "tunable.set", arguments: ["name": "zfs_multihost_fail_intervals", "value": .unsigned(0)]),
            Self.noEvents)
        #expect(store.current.failIntervals == 0, "0 = never suspend is a legal value")
        _ = try await set(
            ControlRequest(operation: "tunable.set", arguments: ["name": "zfs_multihost_interval", "value": .unsigned(0xff_ffff)]),
            Self.noEvents)
        #expect(store.current.intervalInMilliseconds == 0xff_ffff)
        let tooLarge = await #expect(throws: ControlError.self) {
            try await set(
                ControlRequest(operation: "tunable.set", arguments: ["name": "zfs_multihost_interval", "value": .unsigned(0x100_0000)]),
                Self.noEvents)
        }
        #expect(tooLarge?.message == "zfs_multihost_interval cannot be 16777216: at most 16777215 milliseconds fit in the uberblock's mmp_config; choose a smaller value")
        #expect(store.current.intervalInMilliseconds == 0xff_ffff, "a refused value changes nothing")
        let notANumber = await #expect(throws: ControlError.self) {
            try await set(
                ControlRequest(operation: "tunable.set", arguments: ["name": "zfs_multihost_interval", "value": "fast"]),
                Self.noEvents)
        }
        #expect(notANumber?.code == .badRequest)
    }

    @Test func poolInUseExitsThreeAndOtherPoolErrorsOne() {
        #expect(ControlErrorReply(describing: PoolError(.poolInUse, "in use", pool: "tank")).exit == 3)
        #expect(ControlErrorReply(describing: PoolError(.poolInUse, "in use", pool: "tank")).code == "poolInUse")
        #expect(ControlErrorReply(describing: PoolError(.importRequiresForce, "use -f", pool: "tank")).exit == 1)
        #expect(ControlErrorReply(describing: PoolError(.poolSuspended, "suspended", pool: "tank")).exit == 1)
    }

    @Test(arguments: [
        (["inject", "tank", "/dev/sdb", "delay=soon"], "Error: Please give the fault as delay=MS (0 to 3600000), error or hang, not 'delay=soon'.\n"),
        (["inject", "tank", "/dev/sdb"], "Error: Please give a POOL, a LEAF and a fault: zpk inject POOL LEAF delay=MS|error|hang.\n"),
        (["inject", "--clear", "tank", "/dev/sdb"], "Error: Please give only the POOL with --clear: zpk inject --clear POOL.\n"),
        (["import", "-a", "tank"], "Error: Please use -a without POOL and --config: -a imports every pool found.\n"),
        (["import", "-a", "-F"], "Error: Please use -a with -d DIR and -f only (not -c or -F).\n"),
    ])
    func usageErrorsOfTheMultihostVerbs(arguments: [String], firstLine: String) throws {
        let workspace = try Workspace("zpk-mmp-usage")
        let output = try workspace.zpk(arguments)
        #expect(output.status == 64)
        #expect(output.stderrText.hasPrefix(firstLine), "\(output.stderrText)")
    }
}
