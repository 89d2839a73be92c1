import ZFSFormat

/// The three OpenZFS module parameters that drive Multi-Modifier Protection, with OpenZFS's
/// names, defaults and clamping (`module/zfs/mmp.c`, `include/sys/mmp.h`).
///
/// The stored values are **raw** (what an operator set); the `effective…` accessors apply the
/// clamps the heartbeat and the importer apply (`MMP_INTERVAL_OK`, `MMP_FAIL_INTVS_OK`, `MAX(x, 1)`).
/// txg-sync uberblocks record the raw values, heartbeats the clamped ones (spec import-and-mmp §0.5).
public struct MultihostTunables: Hashable, Sendable {
    /// `MMP_MIN_INTERVAL`: floor of the write interval, 100 ms.
    public static let minimumIntervalInMilliseconds: UInt64 = 100
    /// `MMP_DEFAULT_INTERVAL`: 1000 ms.
    public static let defaultIntervalInMilliseconds: UInt64 = 1000
    /// `MMP_DEFAULT_IMPORT_INTERVALS`: 20.
    public static let defaultImportIntervals: UInt64 = 20
    /// `MMP_DEFAULT_FAIL_INTERVALS`: 10.
    public static let defaultFailIntervals: UInt64 = 10
    /// `MMP_MIN_FAIL_INTERVALS`: 2 (when non-zero).
    public static let minimumFailIntervals: UInt64 = 2

    /// `zfs_multihost_interval` — unit: milliseconds; default 1000; used as `max(value, 100)`.
    /// The pool as a whole gets one heartbeat every interval / leaves, each leaf one per interval.
    public var intervalInMilliseconds: UInt64
    /// `zfs_multihost_fail_intervals` — unit: intervals; default 10; 0 = never suspend (failures
    /// only reported), any other value used as `max(value, 2)`. The pool suspends when no heartbeat
    /// has completed for fail_intervals × interval.
    public var failIntervals: UInt64
    /// `zfs_multihost_import_intervals` — unit: intervals; default 20; used as `max(value, 1)`.
    /// Multiplier of the importer's activity-check duration (cases 2–4).
    public var importIntervals: UInt64

    public init(
        intervalInMilliseconds: UInt64 = MultihostTunables.defaultIntervalInMilliseconds,
        failIntervals: UInt64 = MultihostTunables.defaultFailIntervals,
        importIntervals: UInt64 = MultihostTunables.defaultImportIntervals
    ) {
        self.intervalInMilliseconds = intervalInMilliseconds
        self.failIntervals = failIntervals
        self.importIntervals = importIntervals
    }

    /// `MMP_INTERVAL_OK(zfs_multihost_interval)`, milliseconds.
    public var effectiveIntervalInMilliseconds: UInt64 {
        max(intervalInMilliseconds, Self.minimumIntervalInMilliseconds)
    }
    /// `MSEC2NSEC(MMP_INTERVAL_OK(zfs_multihost_interval))`, nanoseconds.
    public var effectiveIntervalInNanoseconds: UInt64 { effectiveIntervalInMilliseconds &* 1_000_000 }
    /// The effective interval as a `Duration`.
    public var effectiveInterval: Duration { .nanoseconds(Int64(clamping: effectiveIntervalInNanoseconds)) }
    /// `MMP_FAIL_INTVS_OK(zfs_multihost_fail_intervals)`: 0 stays 0, else at least 2.
    public var effectiveFailIntervals: UInt64 {
        failIntervals == 0 ? 0 : max(failIntervals, Self.minimumFailIntervals)
    }
    /// `MAX(zfs_multihost_import_intervals, 1)`.
    public var effectiveImportIntervals: UInt64 { max(importIntervals, 1) }

    /// The `ub_mmp_config` a heartbeat carries: clamped interval and fail intervals, and `sequence`
    /// (`MMP_SEQ_SET(seq) | MMP_INTERVAL_SET(MMP_INTERVAL_OK(i)) | MMP_FAIL_INT_SET(MMP_FAIL_INTVS_OK(f))`).
    /// Fields are truncated to their widths (24 / 16 / 16 bits) as the C macros do.
    public func heartbeatConfig(sequence: UInt64) -> MMPConfig {
        MMPConfig(
            writeIntervalInMilliseconds: effectiveIntervalInMilliseconds,
            sequence: UInt16(truncatingIfNeeded: sequence),
            failIntervals: UInt16(truncatingIfNeeded: effectiveFailIntervals))
    }

    /// The `ub_mmp_config` a txg sync of a multihost pool records: sequence 0 (valid) and the
    /// **raw**, unclamped tunables (`vdev_config_sync`; verified on 2.1.11: 50 ms / 1 stay 50 / 1).
    public var syncConfig: MMPConfig {
        MMPConfig(
            writeIntervalInMilliseconds: intervalInMilliseconds,
            sequence: 0,
            failIntervals: UInt16(truncatingIfNeeded: failIntervals))
    }
}

/// Nanoseconds of a `Duration` (saturating; negative durations give negative values).
@inlinable
func nanoseconds(_ d: Duration) -> Int64 {
    let c = d.components
    let (s, o) = c.seconds.multipliedReportingOverflow(by: 1_000_000_000)
    if o { return c.seconds < 0 ? .min : .max }
    return s &+ c.attoseconds / 1_000_000_000
}
