import Testing
import ZFSFormat
import ZFSImport
import ZFSMultihost

/// The human report and exit status of each verdict (`zpk activity`'s text).
@Suite struct MultihostActivityReportTests {
    let ub = Uberblock(
        txg: TXG(42), guidSum: 1, timestampInSeconds: 1000, mmpDelayInNanoseconds: 98_000_000,
        mmpConfig: MMPConfig(writeIntervalInMilliseconds: 100, sequence: 3, failIntervals: 10))
    var reading: ProbeReading { ProbeReading(uberblock: ub, label: ProbeLabel(host: LabelHost(hostname: "holder-a", hostID: 0x1111_1111), state: .active)) }
    var plan: ActivityPlan {
        ActivityPlan(
            durationCase: .failIntervals, duration: .seconds(2), extensionPerMille: 123, extendedDuration: .milliseconds(2246),
            pollInterval: .milliseconds(100), peerIntervalInMilliseconds: 100, peerFailIntervals: 10, peerDelay: .milliseconds(98),
            localTunables: MultihostTunables())
    }
    func report(_ v: ActivityVerdict) -> MultihostActivityReport {
        MultihostActivityReport(pool: "tank", guid: PoolGUID(rawValue: 77), localHostID: 0x2222_2222, verdict: v)
    }

    @Test func active() {
        let host = ActiveHost(
            hostname: "holder-a", hostID: 0x1111_1111, lastHeartbeatAge: .milliseconds(4),
            lastHeartbeatResolution: .milliseconds(100), intervalInMilliseconds: 100,
            failIntervals: 10, mmpDelay: .milliseconds(98), detectedAfter: .milliseconds(103), reference: ub, changed: ub)
        let r = report(.active(host, plan: plan))
        #expect(r.exitStatus == 3 && r.result == "active")
        #expect(r.lines == [
            "pool 'tank' (guid 77) is in use on host 'holder-a' (hostid 0x11111111); this host saw its newest heartbeat 4 ms ago (written at most 100 ms before that, between two of this host's reads).",
            "  the writer heartbeats every 100 ms and suspends itself after 10 intervals without one; mmp_delay 98 ms.",
            "  detected 103 ms into a wait of 2.246 s: the last writer heartbeats every 100 ms and suspends itself after 10 intervals without one (1000 ms); OpenZFS waits twice that: 2.000 s; plus a random 12.3 % so that two importers rarely finish together: 2.246 s.",
            "  Do not import it here. Stop or export it on that host; if that host is down, `zpk activity` answers 0 once its heartbeats have stopped for a whole wait.",
        ])
    }

    @Test func activeHostWithThisHostsHostIDIsNamedAsAShare() {
        let host = ActiveHost(
            hostname: "clone-b", hostID: 0x2222_2222, lastHeartbeatAge: .zero, lastHeartbeatResolution: .milliseconds(100),
            intervalInMilliseconds: 100, failIntervals: 10, mmpDelay: .milliseconds(98), detectedAfter: .milliseconds(100),
            reference: ub, changed: ub)
        let r = report(.active(host, plan: plan))
        #expect(r.exitStatus == 3)
        #expect(r.lines.dropFirst().first == "  that host and this one share hostid 0x22222222, so hostid checks cannot tell them apart; run zgenhostid on one of them to give it its own.")
    }

    @Test func inactiveNotRequiredNoHostIDInterrupted() {
        let quiet = report(.noActivity(waited: .milliseconds(2246), plan: plan, reading: reading))
        #expect(quiet.exitStatus == 0 && quiet.result == "inactive")
        #expect(quiet.lines.first == "pool 'tank' (guid 77): no other host is writing it; importable here.")
        #expect(quiet.lines.dropFirst().first == "  waited 2.246 s; the best uberblock (txg 42, timestamp 1000) did not change.")
        let off = report(.notRequired(.multihostOff, reading))
        #expect(off.exitStatus == 0 && off.result == "not-required")
        #expect(off.lines.first == "pool 'tank' (guid 77): no activity check is needed — multihost was off when the pool was last written (mmp_delay 0); importable here.")
        #expect(off.lines.last?.hasPrefix("  Without multihost, nothing on disk shows") == true)
        let none = report(.refusedNoHostID(reading))
        #expect(none.exitStatus == 1 && none.result == "no-hostid")
        #expect(none.lines.first?.contains("this host has no hostid") == true)
        let stopped = report(.interrupted(elapsed: .milliseconds(500), plan: plan))
        #expect(stopped.exitStatus == 1)
        #expect(stopped.lines == ["pool 'tank' (guid 77): the activity check was interrupted after 500 ms of 2.246 s; no verdict."])
    }
}
