// The metadata of the multihost (MMP) log events, one vocabulary for every event so that a
// log shipper can select them: `mmp.event` (`suspend`, `resume`, `takeover_refused`,
// `activity_check`), `pool.name`, `host.id` (this host, hex) and timings in milliseconds as
// integers (`.stringConvertible`, which zpkd's JSON log handler writes as numbers).
// docs/daemon.md §0 "Logs".

import CoreMetrics
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

/// The metrics of opens and activity checks (swift-metrics; zpkd bootstraps a Prometheus
/// backend with `--metrics`, otherwise these are no-ops). docs/daemon.md §7.
enum PoolMetricsRecorder {
    /// `zpk_activity_checks_total{result}` and `zpk_activity_check_duration_seconds{result}`
    /// (the wait: all of it when no activity was seen, up to the detection when some was).
    static func activityCheck(_ verdict: ActivityVerdict) {
        let result: String
        var duration: Duration?
        switch verdict {
        case .notRequired: result = "not_required"
        case .noActivity(let waited, _, _): result = "inactive"; duration = waited
        case .active(let host, _): result = "active"; duration = host.detectedAfter
        case .refusedNoHostID: result = "no_hostid"
        case .interrupted(let elapsed, _): result = "interrupted"; duration = elapsed
        }
        Counter(label: "zpk_activity_checks_total", dimensions: [("result", result)]).increment()
        if let duration {
            Timer(label: "zpk_activity_check_duration_seconds", dimensions: [("result", result)]).recordNanoseconds(nanoseconds(duration))
        }
    }

    /// `zpk_pool_open_duration_seconds{mode}`: an open from the cache file or an import, from
    /// the first device read to the claimed pool (activity check and claim included).
    static func opened(mode: OpenMode, after duration: Duration) {
        let label: String
        switch mode {
        case .cacheFile: label = "cachefile"
        case .import: label = "import"
        }
        Timer(label: "zpk_pool_open_duration_seconds", dimensions: [("mode", label)]).recordNanoseconds(nanoseconds(duration))
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds.multipliedReportingOverflow(by: 1_000_000_000).overflow
            ? .max : seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// `zpk_pool_sync_duration_seconds{pool}`: one txg sync.
    static func synced(pool: String, after duration: Duration) {
        Timer(label: "zpk_pool_sync_duration_seconds", dimensions: [("pool", pool)]).recordNanoseconds(nanoseconds(duration))
    }
}
