import ZFSFormat

/// The bounded record of heartbeat writes and skips of one pool — OpenZFS's multihost kstat
/// (`/proc/spl/kstat/zfs/<pool>/multihost`, `spa_mmp_history_*` in `module/zfs/spa_stats.c`;
/// spec import-and-mmp §5.10).
///
/// OpenZFS keeps it only when `zfs_multihost_history` > 0; that parameter's default is **0**
/// (off), and OpenZFS's own MMP tests set it to 100 (`MMP_HISTORY` in
/// `tests/zfs-tests/tests/functional/mmp/mmp.cfg`). We keep it on by default with
/// ``defaultCapacity`` = 100 records (a few kilobytes per pool); capacity 0 turns it off.
///
/// Columns: id, txg, timestamp, error, duration, mmp_delay, vdev_guid, vdev_label, vdev_path.
/// An issued write has error 0 until it completes, then the errno; its duration is issue to
/// completion. A skip row is one *run* of skipped heartbeats with the same mask: error is the
/// mask (0x1 not writable, 0x2 write pending), vdev_guid the number of skips in the run,
/// duration the time since the run's first skip, timestamp the wall time of that first skip.
public struct MultihostHistory: Sendable {
    /// Records kept when history is on (OpenZFS test suite's `MMP_HISTORY`).
    public static let defaultCapacity = 100

    /// One row.
    public struct Record: Hashable, Sendable {
        /// Unique id, shared between writes and skip runs (`mmp_kstat_id`).
        public var id: UInt64
        public var txg: TXG
        /// Seconds: the heartbeat's `ub_timestamp`, or the wall time of a skip run's first skip.
        public var timestamp: UInt64
        /// Whether this row is a skip run (error is then a ``HeartbeatStateMachine/SkipMask``).
        public var isSkip: Bool
        /// Write: 0 until completion, then the errno (5 = EIO for a failed write, 121 = EREMOTEIO
        /// for a write withheld because a foreign heartbeat was found). Skip: the mask.
        public var error: UInt64
        /// Write: issue to completion (zero until then). Skip: since the run's first skip.
        public var duration: Duration
        /// `mmp_delay` written (or at the run's first skip), nanoseconds.
        public var mmpDelayInNanoseconds: UInt64
        /// Write: the leaf's guid. Skip: how many heartbeats the run skipped.
        public var vdevGUID: UInt64
        /// Label 0–3 (0 for skips).
        public var vdevLabel: Int
        /// The leaf's path (`nil`, printed `-`, for skips).
        public var vdevPath: String?
    }

    /// Maximum number of records; older ones are dropped. 0: history off.
    public var capacity: Int {
        didSet {
            let kept = records.suffix(max(0, capacity))
            ring = Array(kept)
            oldest = 0
        }
    }
    /// The records in a ring (a heartbeat adds one and drops the oldest in O(1)); once the ring
    /// is full, `oldest` is the index of the oldest.
    private var ring: [Record] = []
    private var oldest = 0

    /// Oldest first.
    public var records: [Record] { Array(ring[oldest...] + ring[..<oldest]) }

    public init(capacity: Int = MultihostHistory.defaultCapacity) {
        self.capacity = max(0, capacity)
    }

    /// Adds a record (dropped at once when history is off).
    public mutating func append(_ record: Record) {
        guard capacity > 0 else { return }
        if ring.count < capacity {
            ring.append(record)
        } else {
            ring[oldest] = record
            oldest = (oldest + 1) % capacity
        }
    }

    /// Changes the record with `id`, if it is still kept (searched newest first: it is usually
    /// the newest or close to it).
    public mutating func update(id: UInt64, _ change: (inout Record) -> Void) {
        for age in 0..<ring.count {
            let index = (oldest + ring.count - 1 - age) % ring.count
            if ring[index].id == id {
                change(&ring[index])
                return
            }
        }
    }

    /// Empties the history (OpenZFS: writing to the kstat file).
    public mutating func clear() {
        ring.removeAll()
        oldest = 0
    }

    /// The kstat file's text: header `%-10s %-10s %-10s %-6s %-10s %-12s %-24s %-10s %s`, rows
    /// `%-10llu %-10llu %10llu %6lld %10lld %12llu %-24llu %-10lld %s` (skips: error `%#6llx`).
    public func render() -> String {
        var out = left("id", 10) + " " + left("txg", 10) + " " + left("timestamp", 10) + " " + left("error", 6) + " "
            + left("duration", 10) + " " + left("mmp_delay", 12) + " " + left("vdev_guid", 24) + " "
            + left("vdev_label", 10) + " vdev_path\n"
        for r in records {
            let error = r.isSkip ? right(r.error == 0 ? "0" : "0x" + String(r.error, radix: 16), 6) : right(String(Int64(bitPattern: r.error)), 6)
            out += left(String(r.id), 10) + " " + left(String(r.txg.rawValue), 10) + " " + right(String(r.timestamp), 10) + " "
                + error + " " + right(String(nanoseconds(r.duration)), 10) + " " + right(String(r.mmpDelayInNanoseconds), 12) + " "
                + left(String(r.vdevGUID), 24) + " " + left(String(r.vdevLabel), 10) + " " + (r.vdevPath ?? "-") + "\n"
        }
        return out
    }

    private func left(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }
    private func right(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }
}
