// The devices half of the read-only activity check: a probe that reads a scanned pool's leaves
// (read-only, every label, ring and MMP slots) and picks the best uberblock, and the one call
// `zpk activity` and the import path make to get a verdict with a report for humans.
//
// Writes nothing: every device is opened `O_RDONLY` for each poll and closed again (a reopened
// descriptor also sees a device that was replaced under the same path) — except an NBD export,
// opened once per probe (a connection per label) and kept for the whole check, its four labels
// read at once at each poll: every round trip of the last poll pushes the verdict past the
// check's deadline, and an `NBDBlockDevice` reconnects by itself (checking the export's size)
// when its server restarts. Every label is read
// uncached (`O_DIRECT` on a block device): on a device shared with the host that may be writing
// heartbeats, this host's page cache can hold blocks older than the disk's, and a poll that reads
// them would miss the other host's heartbeats (docs/design/multihost.md, "Shared block devices").

import Logging
import Synchronization
import ZFSDevice
import ZFSFormat
import ZFSMultihost

/// Reads the best uberblock of one pool from the devices a scan found (read-only).
///
/// The corresponding OpenZFS function is `vdev_uberblock_load` (`module/zfs/vdev_label.c`):
/// every valid label of every leaf, every slot of its ring — the MMP slot included — and the
/// label config that goes with the winner.
public struct PoolDevicesProbe: ActivityProbe {
    public let poolGUID: PoolGUID
    /// The leaf device paths read at each poll.
    public let paths: [String]
    /// The network devices this probe keeps open across polls.
    private let network = NetworkDevices()

    public init(poolGUID: PoolGUID, paths: [String]) {
        self.poolGUID = poolGUID
        self.paths = paths
    }

    /// The member devices of a scanned pool.
    public init(candidate: PoolCandidate) {
        var seen = Set<String>()
        self.init(poolGUID: candidate.guid, paths: candidate.memberDevices.map(\.path).filter { seen.insert($0).inserted })
    }

    public func readBestUberblock() throws -> ProbeReading? {
        var best: ProbeReading?
        for path in paths {
            if DeviceOpener.isNetworkPath(path) {
                guard let device = network.device(path) else { continue }
                // The four labels at once: one round trip per poll instead of four.
                best = Self.bestUberblock(of: poolGUID, on: PrefetchedLabels(device), betterThan: best)
                continue
            }
            guard let device = try? DeviceOpener.open(path: path, mode: .readOnly) else { continue }
            defer { try? device.close() }
            best = Self.bestUberblock(of: poolGUID, on: device, betterThan: best)
        }
        return best
    }

    /// Network devices opened (read-only) at their first poll and kept until the probe goes
    /// away; one that did not open is tried again at the next poll.
    final class NetworkDevices: Sendable {
        private let open = Mutex<[String: any BlockDevice]>([:])

        func device(_ path: String) -> (any BlockDevice)? {
            if let device = open.withLock({ $0[path] }) { return device }
            let opened: (any BlockDevice)?
            if NBDBlockDevice.isNBDURI(path) {
                // A connection per label, so that a poll's four reads run at once.
                var options = NBDBlockDevice.Options.environmentDefault
                options.connections = max(options.connections, LabelLayout.labelCount)
                opened = try? NBDBlockDevice(uri: path, mode: .readOnly, options: options)
            } else {
                opened = try? DeviceOpener.open(path: path, mode: .readOnly)
            }
            guard let device = opened else { return nil }
            return open.withLock { devices in
                if let raced = devices[path] { return raced }
                devices[path] = device
                return device
            }
        }

        deinit {
            for device in open.withLock({ $0.values }) { try? device.close() }
        }
    }

    /// The best uberblock of pool `poolGUID` on `device` (every valid label, every slot, read
    /// uncached), or `best` when `device` holds none better.
    public static func bestUberblock(
        of poolGUID: PoolGUID, on device: any BlockDevice, betterThan best: ProbeReading?
    ) -> ProbeReading? {
        var best = best
        for label in DeviceLabels(reading: device.uncached).labels where label.status == .valid {
            guard let config = label.config, config.uint64("pool_guid") == poolGUID.rawValue else { continue }
            for slot in label.slots where slot.isUsable {
                guard let ub = slot.uberblock else { continue }
                if let current = best, !ub.isBetter(than: current.uberblock) { continue }
                best = ProbeReading(uberblock: ub, label: labelFacts(config), devicePath: device.path)
            }
        }
        return best
    }

    static func labelFacts(_ config: NVList) -> ProbeLabel {
        let hostID = config.uint64("hostid").map { UInt32(truncatingIfNeeded: $0) }
        return ProbeLabel(
            host: LabelHost(hostname: config.string("hostname"), hostID: hostID),
            state: config.uint64("state").map(PoolStateValue.init(rawValue:)))
    }
}

/// A read-only view of a device whose four label areas were read (uncached) in parallel when
/// it was made; reads of exactly a label area are served from those bytes, any other read from
/// the device (uncached). For a network device, where each read costs a round trip.
struct PrefetchedLabels: BlockDevice {
    let base: any BlockDevice
    private let labels: [UInt64: [UInt8]]

    init(_ base: any BlockDevice) {
        self.base = base
        let offsets = DeviceLabels.labelOffsets(deviceSize: base.sizeInBytes).compactMap { $0 }
        let read = Mutex<[UInt64: [UInt8]]>([:])
        BlockingIO.forEach(count: offsets.count, width: offsets.count) { index in
            if let bytes = try? base.uncached.read(count: VdevLabel.byteCount, atAbsoluteOffset: offsets[index]) {
                read.withLock { $0[offsets[index]] = bytes }
            }
        }
        labels = read.withLock { $0 }
    }

    var path: String { base.path }
    var sizeInBytes: UInt64 { base.sizeInBytes }
    var isBlockDevice: Bool { base.isBlockDevice }

    func read(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        if let bytes = labels[offset], bytes.count == buffer.count {
            bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
            return
        }
        try base.readUncached(into: buffer, atAbsoluteOffset: offset)
    }

    func readUncached(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        try read(into: buffer, atAbsoluteOffset: offset)
    }

    func write(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        throw DeviceError(
            code: .readOnly, message: "cannot write \(buffer.count) bytes of \(path): the activity check only reads",
            path: path, offset: offset)
    }

    func flush() throws(DeviceError) {}
}

/// A verdict of `zpk activity`, with everything a human or a script needs.
public struct MultihostActivityReport: Sendable {
    public var pool: String
    public var guid: PoolGUID
    public var localHostID: UInt32
    public var verdict: ActivityVerdict

    public init(pool: String, guid: PoolGUID, localHostID: UInt32, verdict: ActivityVerdict) {
        self.pool = pool; self.guid = guid; self.localHostID = localHostID; self.verdict = verdict
    }

    /// 0 — no other host active (importable here); 3 — active on another host; 1 — cannot tell
    /// (this host has no hostid, or the check was interrupted).
    public var exitStatus: Int32 {
        switch verdict {
        case .notRequired, .noActivity: 0
        case .active: 3
        case .refusedNoHostID, .interrupted: 1
        }
    }

    /// One-word result for scripts: `not-required`, `inactive`, `active`, `no-hostid`, `interrupted`.
    public var result: String {
        switch verdict {
        case .notRequired: "not-required"
        case .noActivity: "inactive"
        case .active: "active"
        case .refusedNoHostID: "no-hostid"
        case .interrupted: "interrupted"
        }
    }

    /// The report for humans: a first line with the verdict, then indented details.
    public var lines: [String] {
        let name = "pool '\(pool)' (guid \(guid.rawValue))"
        func host(_ hostname: String?, _ hostID: UInt32?) -> String {
            "host '\(hostname ?? "<unknown>")' (hostid 0x\(String(hostID ?? 0, radix: 16)))"
        }
        switch verdict {
        case .notRequired(let reason, let reading):
            var out = ["\(name): no activity check is needed — \(Self.describe(reason)); importable here."]
            if let label = reading.label {
                out.append("  last written by \(host(label.host.hostname, label.host.hostID)) at txg \(reading.uberblock.txg.rawValue).")
            }
            if reason == .multihostOff || reason == .noMMPMagic {
                out.append("  Without multihost, nothing on disk shows whether another host has the pool imported now; zpool import -f would import it regardless.")
            }
            return out
        case .noActivity(let waited, let plan, let reading):
            var out = [
                "\(name): no other host is writing it; importable here.",
                "  waited \(formatDuration(waited)); the best uberblock (txg \(reading.uberblock.txg.rawValue), timestamp \(reading.uberblock.timestampInSeconds)) did not change.",
                "  why this wait: \(plan.reason).",
            ]
            if let label = reading.label {
                out.append("  last written by \(host(label.host.hostname, label.host.hostID)).")
            }
            return out
        case .active(let active, let plan):
            var out = [
                "\(name) is in use on \(host(active.hostname, active.hostID)); \(active.lastHeartbeatText).",
            ]
            if active.sharesHostID(with: UInt64(localHostID)) {
                out.append(
                    "  that host and this one share hostid 0x\(String(localHostID, radix: 16)), so hostid checks cannot tell them apart; run zgenhostid on one of them to give it its own.")
            }
            var peer = "  the writer heartbeats every \(active.intervalInMilliseconds.map { "\($0) ms" } ?? "<unrecorded interval>")"
            if let f = active.failIntervals {
                peer += f == 0 ? " and never suspends itself (fail intervals 0)" : " and suspends itself after \(f) intervals without one"
            }
            out.append(peer + "; mmp_delay \(formatDuration(active.mmpDelay)).")
            out.append("  detected \(formatDuration(active.detectedAfter)) into a wait of \(formatDuration(plan.extendedDuration)): \(plan.reason).")
            out.append("  Do not import it here. Stop or export it on that host; if that host is down, `zpk activity` answers 0 once its heartbeats have stopped for a whole wait.")
            return out
        case .refusedNoHostID(let reading):
            var out = [
                "\(name): multihost is on and this host has no hostid, so OpenZFS refuses to import it here without a check; set one (zgenhostid) and run zpk activity again."
            ]
            if let label = reading.label {
                out.append("  last written by \(host(label.host.hostname, label.host.hostID)).")
            }
            return out
        case .interrupted(let elapsed, let plan):
            return ["\(name): the activity check was interrupted after \(formatDuration(elapsed)) of \(formatDuration(plan.extendedDuration)); no verdict."]
        }
    }

    /// Why no check is needed, in words.
    public static func describe(_ reason: ActivityCheck.NotRequiredReason) -> String {
        switch reason {
        case .skipMMPFlag: "the check was skipped on request"
        case .noMMPMagic: "the pool was last written by software without MMP (no MMP magic in its best uberblock)"
        case .multihostOff: "multihost was off when the pool was last written (mmp_delay 0)"
        case .tryImportMatches: "nothing changed since the tryimport"
        case .sameHost: "this host wrote it last"
        case .exportedBySameHost: "this host exported it"
        case .destroyed: "the pool was destroyed"
        case .notActive: "the pool was exported, so no host has it imported"
        case .exportedByAnotherHost: "another host exported it; an import claims it before writing"
        }
    }
}

/// Runs activity checks for scanned pools.
public enum MultihostActivity {
    /// Runs the read-only activity check for `pool` and returns the verdict with its report.
    /// Writes nothing.
    ///
    /// OpenZFS master's rules decide whether a wait is needed, with one addition for a verdict
    /// that imports nothing: a pool whose newest label says EXPORTED is imported nowhere and is
    /// answered at once (master's import would still wait and claim when another host exported it).
    ///
    /// - Parameters:
    ///   - pool: a pool of an `ImportScanner` (or cache-file) result.
    ///   - localHostID: this host's hostid (``SystemHostID/current(environment:)``); 0 = none.
    ///   - tunables: this host's MMP tunables (cases 2–4).
    ///   - policy: the rules deciding whether a check is required (master by default).
    ///   - clock: monotonic time for the wait.
    ///   - progress: called before every sleep.
    /// - Throws: `MultihostError` with code `noUberblock` when no device holds a valid uberblock.
    public static func check(
        _ pool: PoolCandidate,
        localHostID: UInt64,
        tunables: MultihostTunables = MultihostTunables(),
        policy: ActivityCheck.Policy = .openZFSMaster,
        clock: any Clock<Duration> = ContinuousClock(),
        wallClock: WallClock = .system,
        probe: (any ActivityProbe)? = nil,
        logger: Logger = Logger.current,
        progress: @escaping @Sendable (ActivityProgress) -> Void = { _ in }
    ) async throws(MultihostError) -> MultihostActivityReport {
        let hostID = UInt32(truncatingIfNeeded: localHostID & PoolHealth.hostIDMask)
        var configuration = ActivityCheckDriver.Configuration(
            pool: pool.name, localHostID: hostID, tunables: tunables, policy: policy,
            configState: PoolStateValue(rawValue: pool.state.rawValue))
        configuration.exportedPool = .inactive
        let driver = ActivityCheckDriver(
            configuration: configuration,
            probe: probe ?? PoolDevicesProbe(candidate: pool), clock: clock, wallClock: wallClock, logger: logger)
        let verdict = try await driver.run(progress: progress)
        return MultihostActivityReport(pool: pool.name, guid: pool.guid, localHostID: hostID, verdict: verdict)
    }
}

func nanosecondsOf(_ d: Duration) -> Int64 {
    let c = d.components
    return c.seconds &* 1_000_000_000 &+ c.attoseconds / 1_000_000_000
}

/// "312 ms", "2.346 s".
func formatDuration(_ d: Duration) -> String {
    let ms = nanosecondsOf(d) / 1_000_000
    if ms < 1000 { return "\(ms) ms" }
    let frac = String(ms % 1000)
    return "\(ms / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac) s"
}
