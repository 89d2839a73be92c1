// Multihost inside the pool host. Big theory: docs/design/multihost.md, section
// "Multihost in the pool host". In short:
//
// Every open pool owns one `HeartbeatService` (OpenZFS: every imported pool has an
// `mmp_thread`, whatever its `multihost` property); `PoolHost.multihostService` runs them. The
// service writes heartbeats only while `multihost=on`; switching the property starts or stops
// them at once. Txg syncs stamp each uberblock with the service's MMP fields
// (`syncFields(of:)`: magic, mmp_delay, the raw tunables) and hand it over
// (`uberblockSynced`).
//
// The pool implements `HeartbeatIO` over its own leaf table (not the pool lock, so a long or
// hung sync never stops heartbeats), and every device of the pool is wrapped in the fault
// layer (`DeviceFaults.swift`).
//
// Suspension: the service's `onSuspend` marks the pool SUSPENDED; puts, removes, syncs and
// property changes then throw `.poolSuspended`. `clear()` runs the activity check over the
// pool's own leaves — with the service suspended nothing of ours is written, so any change of
// the best uberblock is another host — and resumes, or refuses with `.poolInUse`.

import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSMultihost

/// A pool's multihost state, as `zpk status` shows it (`nil` in ``PoolStatus/multihost`` when
/// the pool's `multihost` property is off).
public struct MultihostStatus: Hashable, Sendable {
    /// Time since the last completed heartbeat or txg sync (`mmp_last_write`), on the host's
    /// monotonic clock.
    public var lastHeartbeatAge: Duration
    /// `mmp_delay`: the decaying average time between heartbeats landing.
    public var mmpDelay: Duration
    /// The heartbeat interval in force (`zfs_multihost_interval`, clamped to ≥ 100 ms).
    public var interval: Duration
    /// `zfs_multihost_fail_intervals` in force (0 = never suspend).
    public var failIntervals: UInt64
    /// Heartbeats that landed since the pool was opened.
    public var heartbeatsWritten: UInt64
    /// Heartbeats that failed (EIO) since the pool was opened.
    public var heartbeatsFailed: UInt64
    /// Heartbeats skipped because no leaf could take them.
    public var skipped: UInt64
    /// Whether a ``PoolHost/multihostService`` is running this pool's heartbeat.
    public var isRunning: Bool
}

/// A `RandomNumberGenerator` over the host's ``PoolHost/Environment/multihostRandom``.
struct HostRandom: RandomNumberGenerator, Sendable {
    let source: @Sendable () -> UInt64
    mutating func next() -> UInt64 { source() }
}

/// One leaf of a pool as the heartbeat and the activity check reach it.
struct MultihostLeaf: Sendable {
    var guid: VdevGUID
    var path: String
    var ashift: UInt64
    var device: (any BlockDevice)?
}

/// The part of a pool the heartbeat uses without taking the pool lock.
final class MultihostShared: Sendable {
    struct State {
        var leaves: [MultihostLeaf] = []
        /// `leaves` as the heartbeat sees them, made when they change (the heartbeat asks at
        /// every iteration; the same array back lets it see at once that nothing changed).
        var heartbeatLeaves: [HeartbeatLeaf] = []
        var suspension: HeartbeatSuspension?
        var written: UInt64 = 0
        var failed: UInt64 = 0
        var skipped: UInt64 = 0
        var running = false
        var closed = false
        /// Heartbeat slot reads and writes under way.
        var inFlight = 0
        /// Ids of the recent heartbeats whose completion the service has reported.
        var landedIDs = RecentSet<UInt64>(capacity: 4 * MultihostHistory.defaultCapacity)
        /// What this pool last wrote into each MMP slot (leaf guid, label), and its bytes.
        var lastWritten: [SlotKey: (uberblock: Uberblock, bytes: [UInt8])] = [:]
    }
    struct SlotKey: Hashable { var guid: VdevGUID; var label: Int }
    let poolName: String
    let poolGUID: PoolGUID
    let state = Mutex(State())

    init(poolName: String, poolGUID: PoolGUID) {
        self.poolName = poolName
        self.poolGUID = poolGUID
    }

    func setLeaves(tree: VdevTree, devices: [VdevGUID: any BlockDevice]) {
        let leaves = tree.topLevels.flatMap { top in
            top.leaves.map { MultihostLeaf(guid: $0.guid, path: $0.path, ashift: top.ashift, device: devices[$0.guid]) }
        }
        let heartbeatLeaves = leaves.map { HeartbeatLeaf(guid: $0.guid, path: $0.path, isWritable: $0.device != nil) }
        state.withLock {
            $0.leaves = leaves
            $0.heartbeatLeaves = heartbeatLeaves
        }
    }

    var leaves: [MultihostLeaf] { state.withLock { $0.leaves } }

    func record(_ event: HeartbeatEvent) {
        state.withLock { s in
            switch event {
            case .landed(let id, _, _, let success, _):
                if success { s.written += 1 } else { s.failed += 1 }
                s.landedIDs.insert(id)
            case .skipped:
                s.skipped += 1
            default:
                break
            }
        }
    }
}

/// The heartbeat's view of a pool's leaves: MMP slot writes and read-backs.
///
/// Every byte goes through the uncached calls (`O_DIRECT` on a block device; writes with Force
/// Unit Access where the device has it, as on NBD): on a device that
/// another host shares, a heartbeat must reach the disk now, not at writeback, and the read-back
/// must see what the disk holds, not what this host cached (docs/design/multihost.md, "Shared
/// block devices").
struct PoolHeartbeatIO: HeartbeatIO {
    let shared: MultihostShared

    func heartbeatLeaves() -> [HeartbeatLeaf] {
        shared.state.withLock { $0.heartbeatLeaves }
    }

    private func slot(_ leaf: HeartbeatLeaf, label: Int) throws -> (any BlockDevice, UberblockRing, UInt64) {
        let entry = shared.state.withLock { s in s.leaves.first { $0.guid == leaf.guid } }
        guard let entry, let device = entry.device else {
            throw PoolError(
                .ioFailure, "pool '\(shared.poolName)': leaf \(leaf.path ?? "\(leaf.guid)") is not open",
                pool: shared.poolName, device: leaf.path)
        }
        let ring = UberblockRing(ashift: entry.ashift)
        guard let labelOffset = LabelLayout.labelOffset(index: label, deviceSize: device.sizeInBytes) else {
            throw PoolError(
                .ioFailure, "pool '\(shared.poolName)': \(device.path) is too small to hold label \(label)",
                pool: shared.poolName, device: device.path)
        }
        return (device, ring, ring.slotOffset(ring.mmpSlotIndex, labelOffset: labelOffset))
    }

    func write(uberblock: Uberblock, leaf: HeartbeatLeaf, label: Int) throws {
        shared.state.withLock { $0.inFlight += 1 }
        defer { shared.state.withLock { $0.inFlight -= 1 } }
        let (device, ring, offset) = try slot(leaf, label: label)
        let bytes = uberblock.encodeSlot(in: ring, absoluteOffset: offset)
        // Uncached, and with Force Unit Access where the device has it (NBD): a heartbeat that
        // the server acknowledged survives the server's crash.
        try device.writeForcingUnitAccess(bytes, atAbsoluteOffset: offset)
        shared.state.withLock { $0.lastWritten[.init(guid: leaf.guid, label: label)] = (uberblock, bytes) }
    }

    func readMMPSlot(leaf: HeartbeatLeaf, label: Int) throws -> MMPSlotReading? {
        shared.state.withLock { $0.inFlight += 1 }
        defer { shared.state.withLock { $0.inFlight -= 1 } }
        let (device, ring, offset) = try slot(leaf, label: label)
        let bytes = try device.uncached.read(count: ring.slotByteCount, atAbsoluteOffset: offset)
        // The slot as we last wrote it (the usual case) needs no checksum, decoding or label read.
        let ours = shared.state.withLock { $0.lastWritten[.init(guid: leaf.guid, label: label)] }
        if let ours, Self.sameBytes(ours.bytes, bytes) {
            return MMPSlotReading(uberblock: ours.uberblock, host: nil)
        }
        guard let found = Self.decodeSlot(bytes, ring: ring, absoluteOffset: offset) else {
            return MMPSlotReading(uberblock: nil, host: nil)
        }
        // Anything else may be another host's, so read who the label says wrote it (one config
        // block, not the whole label).
        if ours?.uberblock == found {
            return MMPSlotReading(uberblock: found, host: nil)
        }
        return MMPSlotReading(uberblock: found, host: Self.labelHost(device, label: label))
    }

    /// `a == b`, with `memcmp` (the generic `==` compares a slot byte by byte).
    static func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 } }
    }

    /// `hostname` / `hostid` of label `label`'s config, `nil` when it does not verify.
    static func labelHost(_ device: any BlockDevice, label: Int) -> LabelHost? {
        guard let labelOffset = LabelLayout.labelOffset(index: label, deviceSize: device.sizeInBytes) else { return nil }
        let blockOffset = labelOffset + UInt64(VdevLabel.configBlockOffset)
        guard let block = try? device.uncached.read(count: VdevLabel.configBlockByteCount, atAbsoluteOffset: blockOffset),
            (try? EmbeddedChecksum.verify(block, absoluteOffset: blockOffset))?.isValid == true,
            let config = try? NVList(decoding: block[0..<VdevLabel.configCapacity])
        else { return nil }
        return LabelHost(
            hostname: config.string("hostname"), hostID: config.uint64("hostid").map { UInt32(truncatingIfNeeded: $0) })
    }

    /// The uberblock in one slot, `nil` when the slot is empty or fails its embedded checksum.
    static func decodeSlot(_ bytes: [UInt8], ring: UberblockRing, absoluteOffset: UInt64) -> Uberblock? {
        guard (try? EmbeddedChecksum.verify(bytes, absoluteOffset: absoluteOffset))?.isValid == true else { return nil }
        return try? Uberblock(decoding: bytes)
    }
}

/// Reads the best uberblock of an open (or opening) pool from its own leaves, through the
/// pool's fault layer (`vdev_uberblock_load` over the pool's vdevs).
struct PoolLeavesProbe: ActivityProbe {
    let poolGUID: PoolGUID
    let devices: @Sendable () -> [any BlockDevice]

    func readBestUberblock() throws -> ProbeReading? {
        devices().reduce(nil) { best, device in PoolDevicesProbe.bestUberblock(of: poolGUID, on: device, betterThan: best) }
    }
}

/// Master's claim writes: label 0's MMP slot of every leaf of every top-level vdev, uncached
/// (`O_DIRECT` on a block device) and flushed, so that another host's activity check sees them.
struct PoolClaimWriter: ClaimWriter {
    let leaves: [MultihostLeaf]

    func writeClaim(_ uberblock: Uberblock) throws -> ClaimWriteCounts {
        var issued = 0, good = 0
        for leaf in leaves {
            guard let device = leaf.device else { continue }
            issued += 1
            let ring = UberblockRing(ashift: leaf.ashift)
            guard let labelOffset = LabelLayout.labelOffset(index: 0, deviceSize: device.sizeInBytes) else { continue }
            let offset = ring.slotOffset(ring.mmpSlotIndex, labelOffset: labelOffset)
            do {
                try device.writeForcingUnitAccess(
                    uberblock.encodeSlot(in: ring, absoluteOffset: offset), atAbsoluteOffset: offset)
                try device.flush()
                good += 1
            } catch {
                continue
            }
        }
        // Our top-levels are single leaves or mirrors: every leg not offline is expected
        // (missing legs count: OpenZFS counts CANT_OPEN legs too).
        return ClaimWriteCounts(required: leaves.count, issued: issued, good: good)
    }
}

extension Pool {
    // MARK: Public API

    /// Resumes a SUSPENDED pool when an activity check over its own leaves shows no other host.
    ///
    /// The best uberblock on the leaves must still be this host's (its label names our hostid, its
    /// txg is our last synced one); then the check waits as an importer would (the formula of
    /// `spa_activity_check_duration` for that uberblock) and watches for **any** change: this
    /// pool's heartbeats are stopped while it is suspended, so a change is another writer. On a
    /// pool that is not suspended, `clear` does nothing.
    ///
    /// The corresponding OpenZFS function is `spa_mmp_remote_host_activity` (`zfs_ioc_clear`).
    /// - Parameter progress: called during the wait (phase `activity_check`).
    /// - Throws: ``PoolError`` `.poolInUse` when another host wrote the pool (export is the way
    ///   out), `.ioFailure` when no leaf could be read, `.poolClosed`.
    public func clear(progress: (@Sendable (ActivityProgress) -> Void)? = nil) async throws {
        try core.withLock { (core: inout PoolCore) throws(PoolError) in try core.ensureOpen() }
        guard multihostShared.state.withLock({ $0.suspension }) != nil else { return }
        let shared = multihostShared
        let probe = PoolLeavesProbe(poolGUID: guid, devices: { shared.leaves.compactMap(\.device) })
        // As spa_mmp_remote_host_activity: the best uberblock must still be ours — our hostid
        // in its label and our last synced txg — before the wait even starts.
        let lastSynced = core.withLock { $0.lastSyncedTXG }
        let localHostID = UInt32(truncatingIfNeeded: environment.hostID)
        let first = try? await BlockingIO.run { try probe.readBestUberblock() }
        if let first = first ?? nil {
            let labelHost = first.label?.host
            if let hostID = labelHost?.hostID, hostID != localHostID {
                throw PoolError(
                    .poolInUse,
                    "cannot clear pool '\(name)': its labels now name host '\(labelHost?.hostname ?? "unknown")' "
                        + "(hostid=\(String(hostID, radix: 16))), which imported it while it was suspended. Export the "
                        + "pool here (zpk export \(name)); it cannot safely be resumed", pool: name)
            }
            if first.uberblock.txg != lastSynced {
                throw PoolError(
                    .poolInUse,
                    "cannot clear pool '\(name)': its newest uberblock is txg \(first.uberblock.txg), not this host's "
                        + "last synced txg \(lastSynced); another host wrote the pool while it was suspended. Export the "
                        + "pool here (zpk export \(name)); it cannot safely be resumed", pool: name)
            }
        }
        let driver = ActivityCheckDriver(
            configuration: .init(
                pool: name, localHostID: UInt32(truncatingIfNeeded: environment.hostID),
                tunables: environment.multihostTunables.current, policy: .openZFSMaster),
            probe: probe, clock: environment.clock, wallClock: environment.wallClock,
            random: HostRandom(source: environment.multihostRandom), logger: environment.logger)
        let verdict: ActivityVerdict
        do {
            verdict = try await driver.run(progress: progress ?? { _ in })
        } catch {
            throw PoolError(
                .ioFailure,
                "cannot clear pool '\(name)': its uberblocks could not be read (\(error)); check that its devices are "
                    + "connected, then run 'zpk clear \(name)' again, or export it", pool: name, cause: error)
        }
        switch verdict {
        case .active(let host, _):
            throw PoolError(
                .poolInUse,
                "cannot clear pool '\(name)': another host wrote it while it was suspended: "
                    + Self.activeHostText(host) + ". Export the pool here (zpk export \(name)); "
                    + "it cannot safely be resumed", pool: name)
        case .interrupted:
            throw PoolError(.poolSuspended, "clearing pool '\(name)' was interrupted; it stays suspended", pool: name)
        case .refusedNoHostID:
            throw PoolError(
                .poolSuspended,
                "cannot clear pool '\(name)': multihost is on and this system's hostid is not set; set a unique hostid",
                pool: name)
        case .notRequired, .noActivity:
            multihostShared.state.withLock { $0.suspension = nil }
            faults.unfence()
            heartbeat.resume()
            var timings: Logger.Metadata = [:]
            if case .noActivity(let waited, let plan, _) = verdict {
                timings = MultihostLogEvent.plan(plan)
                timings["mmp.waited_ms"] = MultihostLogEvent.milliseconds(waited)
            }
            environment.logger.info(
                "pool resumed", metadata: MultihostLogEvent.resume.metadata(pool: name, hostID: environment.hostID, timings))
        }
    }

    /// The heartbeat history, oldest first (OpenZFS's multihost kstat).
    public var multihostHistory: [MultihostHistory.Record] { heartbeat.history }

    /// The heartbeat history as OpenZFS prints `/proc/spl/kstat/zfs/<pool>/multihost`.
    public func renderMultihostHistory() -> String { heartbeat.renderHistory() }

    /// Injects `fault` on one leaf: every later read, write and flush of it (txg syncs, puts,
    /// heartbeats, activity checks) meets the fault, until ``clearInjectedFaults()``.
    ///
    /// - Parameters:
    ///   - fault: ``DeviceFault/delay(_:)``, ``DeviceFault/error`` or ``DeviceFault/hang``.
    ///   - leaf: the leaf's path or decimal guid.
    /// - Throws: ``PoolError`` `.unknownDevice` when no leaf of the pool matches, `.poolClosed`.
    ///
    /// The corresponding OpenZFS tool is `zinject -d`.
    public func inject(_ fault: DeviceFault, leaf: String) throws {
        // Not behind the pool lock: a write held by a hung leaf holds that lock, and injecting
        // the same fault on the other leaves (a storage partition) must not wait for it. When
        // the lock is busy the pool is in use, so open; a fault set on a pool closing meanwhile
        // meets no I/O.
        if let checked = core.withLockIfAvailable({ (core: inout PoolCore) -> PoolError? in
            do throws(PoolError) { try core.ensureOpen() } catch { return error }
            return nil
        }), let error = checked {
            throw error
        }
        let leaves = multihostShared.leaves
        guard let match = leaves.first(where: { $0.path == leaf || "\($0.guid.rawValue)" == leaf }) else {
            throw PoolError(
                .unknownDevice,
                "pool '\(name)' has no leaf '\(leaf)'; its leaves are \(leaves.map { "\($0.path) (\($0.guid.rawValue))" }.joined(separator: ", "))",
                pool: name, device: leaf)
        }
        faults.set(fault, on: match.guid)
        environment.logger.info(
            "fault injected", metadata: ["pool.name": "\(name)", "vdev.path": "\(match.path)", "fault": "\(fault)"])
    }

    /// Removes every injected fault; hung I/O proceeds.
    public func clearInjectedFaults() {
        faults.clearAll()
    }

    // MARK: Internals

    static func activeHostText(_ host: ActiveHost) -> String {
        "host '\(host.hostname ?? "unknown")' (hostid=\(String(host.hostID ?? 0, radix: 16))) wrote it; "
            + host.lastHeartbeatText
    }

    /// "Its last heartbeat …" for a refusal, from this host's reads (monotonic), with its resolution.
    static func lastHeartbeatText(_ host: ActiveHost) -> String {
        host.lastHeartbeatText.prefix(1).uppercased() + host.lastHeartbeatText.dropFirst()
    }

    /// When the active host has this host's hostid: the cause in plain words and the remedy;
    /// `nil` when the hostids differ.
    static func sharedHostIDText(_ host: ActiveHost, localHostID: UInt64, localHostname: String) -> String? {
        guard host.sharesHostID(with: localHostID) else { return nil }
        let other = host.hostname ?? "unknown"
        let hex = "0x" + String(localHostID & 0xFFFF_FFFF, radix: 16)
        let sameName = other == localHostname ? " (and the same hostname)" : ""
        return "Two hosts share hostid \(hex): this host ('\(localHostname)') and '\(other)'\(sameName). "
            + "Multihost protection tells hosts apart by hostid, so give each host its own: run zgenhostid "
            + "on one of them (it writes /etc/hostid) and restart zpkd there."
    }

    static func formatSeconds(_ d: Duration) -> String {
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        return ms >= 1000 ? "\(ms / 1000).\(ms % 1000 / 100) s" : "\(ms) ms"
    }

    /// Refuses writes while the pool is suspended.
    func ensureNotSuspended() throws(PoolError) {
        if let suspension = multihostShared.state.withLock({ $0.suspension }) {
            throw PoolError(
                .poolSuspended,
                "pool '\(name)' is suspended: \(suspension.description). Run 'zpk clear \(name)' once the devices "
                    + "are back (it checks that no other host is using the pool), or export it", pool: name)
        }
    }

    /// Runs this pool's heartbeat until the pool closes or the service is stopped; returns at
    /// once when another runner has it or the pool is closed.
    func runHeartbeat() async {
        let start = multihostShared.state.withLock { s -> Bool in
            guard !s.running, !s.closed else { return false }
            s.running = true
            return true
        }
        guard start else { return }
        try? await heartbeat.run()
    }

    /// Whether every heartbeat in the history has been reported complete (none in flight).
    var heartbeatsSettled: Bool {
        let issued = heartbeat.history.filter { !$0.isSkip }.map(\.id)
        return multihostShared.state.withLock { s in s.inFlight == 0 && issued.allSatisfy(s.landedIDs.contains) }
    }

    /// The multihost part of ``status()``.
    func multihostStatus(multihostOn: Bool) -> MultihostStatus? {
        guard multihostOn else { return nil }
        let hb = heartbeat.status
        let tunables = environment.multihostTunables.current
        return multihostShared.state.withLock { s in
            MultihostStatus(
                lastHeartbeatAge: max(.zero, hb.now - hb.lastWrite), mmpDelay: hb.mmpDelay,
                interval: tunables.effectiveInterval, failIntervals: tunables.effectiveFailIntervals,
                heartbeatsWritten: s.written, heartbeatsFailed: s.failed, skipped: s.skipped, isRunning: s.running)
        }
    }
}
