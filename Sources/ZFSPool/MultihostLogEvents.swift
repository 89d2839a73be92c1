// The metadata of the multihost (MMP) log events, one vocabulary for every event so that a
// log shipper can select them: `mmp.event` (`suspend`, `resume`, `takeover_refused`,
// `activity_check`), `pool.name`, `host.id` (this host, hex) and timings in milliseconds as
// integers (`.stringConvertible`, which zpkd's JSON log handler writes as numbers).
// docs/daemon.md §0 "Logs".

import Logging
import ZFSMultihost

enum MultihostLogEvent: String {
    case suspend, resume
    case takeoverRefused = "takeover_refused"
    case activityCheck = "activity_check"

    /// `mmp.event`, `pool.name` and `host.id`, plus `extra`.
    func metadata(pool: String, hostID: UInt64, _ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "mmp.event": "\(rawValue)", "pool.name": "\(pool)", "host.id": "\(String(hostID, radix: 16))",
        ]
        metadata.merge(extra) { _, new in new }
        return metadata
    }

    /// A duration as whole milliseconds, for the metadata.
    static func milliseconds(_ duration: Duration) -> Logger.Metadata.Value {
        let (seconds, attoseconds) = duration.components
        return .stringConvertible(seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }

    /// The plan of an activity check: its case, base duration and total with the random extension.
    static func plan(_ plan: ActivityPlan) -> Logger.Metadata {
        [
            "mmp.case": "\(plan.durationCase)", "mmp.duration_ms": milliseconds(plan.duration),
            "mmp.total_ms": milliseconds(plan.extendedDuration),
        ]
    }
}
