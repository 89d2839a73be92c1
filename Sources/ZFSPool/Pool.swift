// ZFSPool — the pool host: a transactional, copy-on-write object store on OpenZFS-compatible
// labels. Big theory: docs/design/pool-host.md. In short:
//
// Purpose. Keep named objects (≤ 16 MiB) on a pool of leaves laid out as OpenZFS lays out vdevs:
// labels, uberblock rings and `ub_rootbp` are exact (zdb reads them); the MOS behind the rootbp is
// ours and guarded by the read feature `org.zpoolkit:mos`, so real OpenZFS refuses the pool cleanly.
//
// Not guaranteed. Durability of changes not yet synced (there is no intent log: a crash loses the
// open txg). Protection from another host writing the same leaves holds only with
// `multihost=on` and the host's `multihostService` running, and only as far as MMP goes (see
// docs/design/multihost.md "Multihost in the pool host").
//
// Mechanism. Changes go into the open txg T. `put` writes the data block at once into space that
// no uberblock in the ring references; `sync` writes the object directory and the MOS to fresh
// space, flushes, writes even labels (when the config changed), the uberblock into slot T mod S of
// all four labels of every leaf, flushes, then odd labels. Frees wait S txgs (SpaceAllocator).
//
// Invariants. Nothing an uberblock still in the ring reaches is overwritten. Every block is
// SHA-256-checksummed in its bp. The MOS config is the authority over any input config.
//
// Failure cases: see the crash table in docs/design/pool-host.md §6. A sync that fails part way
// leaves the pool *failed* in memory (every call throws `.poolClosed`); reopening it finds the
// last txg whose uberblock landed.

import Logging
import Synchronization
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSMultihost

/// One object as `list()` shows it.
public struct ObjectInfo: Hashable, Sendable {
    public var name: String
    public var byteCount: UInt64
    /// The txg whose sync made (or will make) it durable.
    public var birthTXG: TXG
}

/// What opening a pool found.
public struct OpenReport: Sendable {
    /// The input config (cache file or scan) disagreed with the MOS config, which won: the
    /// caller should rewrite its cache file from ``Pool/config``.
    public var configWasStale: Bool
    /// The txg of the uberblock the pool was opened at.
    public var openedTXG: TXG
    /// Set when a rewind (`-F`) skipped newer uberblocks: the newest txg found on disk.
    public var rewoundFrom: TXG?
    /// Leaves that could not be opened or carry another identity (the pool is DEGRADED).
    public var missingLeaves: [String]
}

/// A pool's health and counters, as `zpk status` shows them.
public struct PoolStatus: Sendable {
    /// One leaf, flat (see ``vdevTree`` for the tree).
    public struct Leaf: Sendable {
        /// The leaf's path (from the input config when it named this guid, else the MOS config).
        public var path: String
        /// The leaf's vdev guid.
        public var guid: VdevGUID
        /// The `id` of the top-level vdev the leaf belongs to.
        public var topLevelID: UInt64
        /// Whether the leaf is open (a missing leaf is UNAVAIL in ``PoolStatus/vdevTree``).
        public var isPresent: Bool
        /// Its error and repair counters since the pool was opened.
        public var counters: LeafCounters
    }

    /// One vdev of the status tree: the root, a top-level vdev or a leaf, as `zpool status`
    /// prints a row of its config section.
    public struct VdevStatus: Sendable {
        /// `root`, `mirror`, `file` or `disk`.
        public var type: String
        /// The vdev's guid (the pool guid for the root).
        public var guid: UInt64
        /// The leaf's path; `nil` for the root and mirrors.
        public var path: String?
        /// `ONLINE`, `DEGRADED` (a mirror or root with a missing leaf) or `UNAVAIL` (a leaf
        /// that could not be opened, or a top-level vdev with no leaf left).
        public var health: String
        /// Read errors (EIO) on the leaf, or summed over the vdev's leaves.
        public var readErrors: UInt64
        /// Write errors on the leaf, or summed over the vdev's leaves.
        public var writeErrors: UInt64
        /// Checksum mismatches on the leaf, or summed over the vdev's leaves.
        public var checksumErrors: UInt64
        /// Blocks rewritten on the leaf from a good mirror copy (summed for interior vdevs).
        public var repairs: UInt64
        /// The children, in tree order (top-levels under the root, leaves under a mirror).
        public var children: [VdevStatus]
    }

    /// The pool's name.
    public var name: String
    /// The pool guid.
    public var guid: PoolGUID
    /// `ACTIVE` while the pool is open, `SUSPENDED` while multihost has suspended it.
    public var state: String
    /// Why the pool is suspended (`nil` when it is not): its heartbeats failed for too long, or
    /// another host's heartbeat was found in its MMP slots. `zpk clear` or export.
    public var suspension: String?
    /// The heartbeat's state; `nil` when the pool's `multihost` property is off.
    public var multihost: MultihostStatus?
    /// `ONLINE` or `DEGRADED`.
    public var health: String
    /// The txg of the last completed sync.
    public var lastSyncedTXG: TXG
    /// The number of objects, synced or not.
    public var objectCount: Int
    /// Bytes allocated over all top-level vdevs (deferred frees count as allocated).
    public var allocatedByteCount: UInt64
    /// Bytes free now over all top-level vdevs.
    public var freeByteCount: UInt64
    /// Every leaf, flat, in tree order.
    public var leaves: [Leaf]
    /// root → top-level vdevs → leaves, each with its health and error counters.
    public var vdevTree: VdevStatus
    /// Blocks rewritten from a good mirror copy, over all leaves.
    public var repairs: Int { leaves.reduce(0) { $0 + $1.counters.repairs } }
}

/// ``PoolStatus/VdevStatus`` under its short name.
public typealias VdevStatus = PoolStatus.VdevStatus

/// An open pool. Obtain one from ``PoolHost``.
///
/// All methods are safe to call from any task; operations on one pool are serialised. The async
/// methods do their device I/O on a thread of their own, never on the cooperative pool.
public final class Pool: Sendable {
    /// Largest object: `SPA_MAXBLOCKSIZE` minus nothing (one block per object), 16 MiB.
    public static let maximumObjectByteCount = BlockPointers.maximumBlockByteCount
    /// Longest object name in bytes.
    public static let maximumObjectNameByteCount = 255

    /// The pool's name on this host (the new name after an import under `newName`).
    public let name: String
    /// The pool guid (`pool_guid`).
    public let guid: PoolGUID
    /// What opening (or creating) the pool found.
    public let openReport: OpenReport

    let environment: PoolHost.Environment
    let core: Mutex<PoolCore>
    /// Faults injected on this pool's leaves; every device of the pool is wrapped with it.
    let faults: FaultTable
    /// The leaf table and counters the heartbeat uses without the pool lock.
    let multihostShared: MultihostShared
    /// This pool's heartbeat (run by ``PoolHost/multihostService``).
    let heartbeat: HeartbeatService

    init(core: PoolCore, report: OpenReport, environment: PoolHost.Environment, faults: FaultTable) {
        name = core.identity.name
        guid = core.identity.guid
        openReport = report
        self.environment = environment
        self.faults = faults
        let shared = MultihostShared(poolName: core.identity.name, poolGUID: core.identity.guid)
        shared.setLeaves(tree: core.io.tree, devices: core.io.devices)
        multihostShared = shared
        let logger = environment.logger
        let hostID = environment.hostID
        let poolName = core.identity.name
        let service = HeartbeatService(
            configuration: .init(pool: core.identity.name, multihost: core.multihost),
            io: PoolHeartbeatIO(shared: shared),
            lastSynced: core.lastUberblock ?? Uberblock(txg: core.lastSyncedTXG, guidSum: 0, timestampInSeconds: 0),
            tunables: environment.multihostTunables, clock: environment.clock, wallClock: environment.wallClock,
            random: HostRandom(source: environment.multihostRandom), logger: environment.logger,
            onSuspend: { suspension in
                shared.state.withLock { $0.suspension = suspension }
                // Nothing of ours may land from now on: another host may import the pool.
                faults.fence()
                var timings: Logger.Metadata = ["pool.suspension": "\(suspension.description)"]
                if case .heartbeatsFailed(let silent, let failAfter) = suspension.reason {
                    timings["mmp.silent_ms"] = MultihostLogEvent.milliseconds(silent)
                    timings["mmp.fail_after_ms"] = MultihostLogEvent.milliseconds(failAfter)
                    timings["mmp.cause"] = "heartbeats_failed"
                } else {
                    timings["mmp.cause"] = "foreign_heartbeat"
                }
                logger.error(
                    "pool suspended",
                    metadata: MultihostLogEvent.suspend.metadata(pool: poolName, hostID: hostID, timings))
            },
            onEvent: { shared.record($0) })
        heartbeat = service
        var core = core
        core.heartbeat = service
        self.core = Mutex(core)
    }

    // MARK: Objects

    /// Stores `bytes` under `name`, replacing an object of that name. Durable after ``sync()``.
    /// - Throws: ``PoolError`` `.invalidObjectName`, `.objectTooLarge`, `.outOfSpace`, `.ioFailure`, `.poolClosed`.
    public func put(_ name: String, _ bytes: [UInt8]) async throws {
        try await BlockingIO.run { try self.putBlocking(name, bytes) }
    }

    /// The bytes of object `name`, verified against their checksum (a bad mirror copy is repaired).
    /// - Throws: ``PoolError`` `.objectNotFound`, `.corruptBlock`, `.poolClosed`.
    public func get(_ name: String) async throws -> [UInt8] {
        try await BlockingIO.run { try self.getBlocking(name) }
    }

    /// Removes object `name`. Durable after ``sync()``.
    /// - Throws: ``PoolError`` `.objectNotFound`, `.poolClosed`.
    public func remove(_ name: String) async throws {
        try await BlockingIO.run { try self.removeBlocking(name) }
    }

    /// Every object, sorted by name (no I/O).
    public func list() -> [ObjectInfo] {
        core.withLock { core in
            core.objects.map { ObjectInfo(name: $0.key, byteCount: $0.value.byteCount, birthTXG: $0.value.birth) }
                .sorted { $0.name < $1.name }
        }
    }

    /// Writes the open txg in the crash-safe order (design §5) and returns the last synced txg.
    /// A sync with nothing to write writes nothing.
    /// - Throws: ``PoolError`` `.ioFailure` (the pool is then failed: reopen it), `.poolClosed`.
    @discardableResult
    public func sync() async throws -> TXG {
        try await BlockingIO.run { try self.syncBlocking() }
    }

    /// The config nvlist to keep in a cache file (the MOS config: root `vdev_tree`, paths).
    public var config: NVList {
        core.withLock { $0.identity.poolConfig(tree: $0.io.tree, txg: $0.lastSyncedTXG) }
    }

    /// Health and counters.
    public func status() -> PoolStatus {
        core.withLock { core in
            var leaves: [PoolStatus.Leaf] = []
            for top in core.io.tree.topLevels {
                for leaf in top.leaves {
                    leaves.append(
                        PoolStatus.Leaf(
                            path: leaf.path, guid: leaf.guid, topLevelID: top.id,
                            isPresent: core.io.devices[leaf.guid] != nil,
                            counters: core.io.counters[leaf.guid] ?? LeafCounters()))
                }
            }
            let tree = Self.statusTree(core)
            let suspension = multihostShared.state.withLock { $0.suspension }
            return PoolStatus(
                name: core.identity.name, guid: core.identity.guid, state: suspension == nil ? "ACTIVE" : "SUSPENDED",
                suspension: suspension?.description, multihost: multihostStatus(multihostOn: core.multihost),
                health: tree.health == "ONLINE" ? "ONLINE" : "DEGRADED",
                lastSyncedTXG: core.lastSyncedTXG, objectCount: core.objects.count,
                allocatedByteCount: core.allocator.allocatedByteCount, freeByteCount: core.allocator.freeByteCount,
                leaves: leaves, vdevTree: tree)
        }
    }

    /// The status tree of `core`: leaf health from presence, interior health rolled up as
    /// `vdev_propagate_state` does for mirrors (some children unavailable: DEGRADED; all: UNAVAIL).
    static func statusTree(_ core: PoolCore) -> PoolStatus.VdevStatus {
        func leafStatus(_ leaf: LeafVdev) -> PoolStatus.VdevStatus {
            let counters = core.io.counters[leaf.guid] ?? LeafCounters()
            return PoolStatus.VdevStatus(
                type: leaf.isBlockDevice ? "disk" : "file", guid: leaf.guid.rawValue, path: leaf.path,
                health: core.io.devices[leaf.guid] != nil ? "ONLINE" : "UNAVAIL",
                readErrors: UInt64(counters.readErrors), writeErrors: UInt64(counters.writeErrors),
                checksumErrors: UInt64(counters.checksumErrors), repairs: UInt64(counters.repairs), children: [])
        }
        func interior(_ type: String, guid: UInt64, _ children: [PoolStatus.VdevStatus]) -> PoolStatus.VdevStatus {
            let unavailable = children.filter { $0.health == "UNAVAIL" }.count
            let health =
                children.allSatisfy({ $0.health == "ONLINE" })
                ? "ONLINE" : (type != "root" && unavailable == children.count ? "UNAVAIL" : "DEGRADED")
            return PoolStatus.VdevStatus(
                type: type, guid: guid, path: nil, health: health,
                readErrors: children.reduce(0) { $0 + $1.readErrors },
                writeErrors: children.reduce(0) { $0 + $1.writeErrors },
                checksumErrors: children.reduce(0) { $0 + $1.checksumErrors },
                repairs: children.reduce(0) { $0 + $1.repairs }, children: children)
        }
        let tops = core.io.tree.topLevels.map { top in
            top.isMirror
                ? interior("mirror", guid: top.guid.rawValue, top.leaves.map(leafStatus)) : leafStatus(top.leaves[0])
        }
        return interior("root", guid: core.identity.guid.rawValue, tops)
    }

    // MARK: Blocking bodies

    func putBlocking(_ name: String, _ bytes: [UInt8]) throws(PoolError) {
        try Self.validate(objectName: name, pool: self.name)
        guard bytes.count <= Self.maximumObjectByteCount else {
            throw PoolError(
                .objectTooLarge,
                "cannot put '\(name)' in pool '\(self.name)': \(bytes.count) bytes is more than the "
                    + "\(Self.maximumObjectByteCount)-byte maximum object size", pool: self.name)
        }
        try ensureNotSuspended()
        try core.withLock { (core: inout PoolCore) throws(PoolError) in
            try core.ensureOpen()
            let txg = core.openTXG
            let bp = try core.writeBlock(bytes, type: BlockPointers.typePlainFile, copies: 1, preferring: nil)
            if let old = core.objects[name] { core.free(old.pointer) }
            core.objects[name] = ObjectEntry(pointer: bp, byteCount: UInt64(bytes.count), birth: txg)
            core.objectsDirty = true
        }
    }

    func getBlocking(_ name: String) throws(PoolError) -> [UInt8] {
        try core.withLock { (core: inout PoolCore) throws(PoolError) -> [UInt8] in
            try core.ensureOpen()
            guard let entry = core.objects[name] else {
                throw PoolError(.objectNotFound, "pool '\(self.name)' has no object named '\(name)'", pool: self.name)
            }
            let block = try core.io.read(entry.pointer)
            return Array(block[0..<Int(entry.byteCount)])
        }
    }

    func removeBlocking(_ name: String) throws(PoolError) {
        try ensureNotSuspended()
        try core.withLock { (core: inout PoolCore) throws(PoolError) in
            try core.ensureOpen()
            guard let entry = core.objects.removeValue(forKey: name) else {
                throw PoolError(.objectNotFound, "pool '\(self.name)' has no object named '\(name)'", pool: self.name)
            }
            core.free(entry.pointer)
            core.objectsDirty = true
        }
    }

    func syncBlocking() throws(PoolError) -> TXG {
        try ensureNotSuspended()
        let now = environment.wallClockSeconds()
        let started = ContinuousClock.now
        let txg = try core.withLock { (core: inout PoolCore) throws(PoolError) -> TXG in try core.sync(now: now) }
        PoolMetricsRecorder.synced(pool: name, after: ContinuousClock.now - started)
        return txg
    }

    /// Marks the pool `state` (EXPORTED or DESTROYED) in every label, syncs, and closes it (the
    /// host forgets it).
    func closeBlocking(as state: PoolState) throws(PoolError) {
        let now = environment.wallClockSeconds()
        if multihostShared.state.withLock({ $0.suspension }) != nil {
            // A suspended pool may be another host's by now: close it without writing (as
            // `zpool export -F`); its labels stay ACTIVE under this host.
            try core.withLock { (core: inout PoolCore) throws(PoolError) in
                try core.ensureOpen()
                core.closedReason = "it was \(state == .destroyed ? "destroyed" : "exported") while suspended"
                core.io.devices = [:]
            }
            shutDownMultihost()
            return
        }
        try core.withLock { (core: inout PoolCore) throws(PoolError) in
            try core.ensureOpen()
            let previous = core.identity.state
            core.identity.state = state
            core.configDirty = true
            do throws(PoolError) { _ = try core.sync(now: now) } catch {
                core.identity.state = previous
                throw error
            }
            core.closedReason = state == .destroyed ? "it was destroyed" : "it was exported"
            core.io.devices = [:]
        }
        shutDownMultihost()
    }

    /// The pool is closed: no more heartbeats, hung I/O fails, the leaf table empties.
    func shutDownMultihost() {
        multihostShared.state.withLock {
            $0.closed = true
            $0.leaves = []
        }
        heartbeat.stop()
        faults.close()
    }

    /// Forgets the pool without writing (a crashed host): every later call throws `.poolClosed`.
    func abandon() {
        shutDownMultihost()
        core.withLock { core in
            if core.closedReason == nil { core.closedReason = "this host forgot it (as after a crash)" }
            core.io.devices = [:]
        }
    }

    static func validate(objectName name: String, pool: String) throws(PoolError) {
        guard !name.isEmpty, name.utf8.count <= maximumObjectNameByteCount, !name.utf8.contains(0) else {
            throw PoolError(
                .invalidObjectName,
                "'\(name)' is not a valid object name in pool '\(pool)': use 1 to \(maximumObjectNameByteCount) "
                    + "bytes of UTF-8 without NUL", pool: pool)
        }
    }
}

/// The mutable state of a pool, guarded by `Pool.core`.
struct PoolCore: Sendable {
    var identity: PoolIdentity
    var io: VdevIO
    var properties: [String: String]
    var allocator: SpaceAllocator
    var objects: [String: ObjectEntry]
    var lastSyncedTXG: TXG
    var openTXG: TXG
    var mosPointer: BlockPointer?
    var directoryPointer: BlockPointer?
    var objectsDirty = false
    var configDirty = false
    /// A property changed: the MOS must be rewritten at the next sync.
    var propertiesDirty = false
    var closedReason: String?
    /// The uberblock of the last sync.
    var lastUberblock: Uberblock?
    /// The pool's heartbeat, which stamps each synced uberblock and is told about it.
    var heartbeat: HeartbeatService?
    /// The host's multihost tunables (for syncs before the heartbeat exists).
    var multihostTunables: MultihostTunablesStore?

    var multihost: Bool { properties["multihost"] == "on" }

    /// The MMP fields of a txg-sync uberblock (`uberblock_update`): magic always; with
    /// multihost on, `mmp_delay` and the raw tunables with sequence 0.
    func stampMMP(_ ub: Uberblock) -> Uberblock {
        if let heartbeat { return heartbeat.syncFields(of: ub) }
        var u = ub
        let tunables = multihostTunables?.current ?? MultihostTunables()
        u.mmpMagic = MMPConfig.magic
        // Before the heartbeat starts, mmp_delay is its starting value: one interval.
        u.mmpDelayInNanoseconds = multihost ? tunables.effectiveIntervalInNanoseconds : 0
        u.mmpConfig = multihost ? tunables.syncConfig : .none
        return u
    }

    /// How long a free waits (design §4): the slot count of the smallest ring, counting the MMP
    /// slot. With multihost on only S − 1 slots take syncs, so S is one txg more than needed;
    /// using S whatever the property says keeps the rule true when `multihost` is switched
    /// either way while the pool is open.
    static func rewindDepth(tree: VdevTree) -> UInt64 {
        let slots = tree.topLevels.map { UberblockRing(ashift: $0.ashift).slotCount }
        return UInt64(slots.min() ?? 1)
    }

    func ensureOpen() throws(PoolError) {
        if let closedReason {
            throw PoolError(
                .poolClosed, "pool '\(identity.name)' is closed because \(closedReason); open or import it again",
                pool: identity.name)
        }
    }

    mutating func free(_ bp: BlockPointer) {
        for extent in BlockPointers.extents(of: bp) { allocator.free(extent, born: bp.birthTXG, in: openTXG) }
    }

    mutating func writeBlock(_ payload: [UInt8], type: UInt64, copies: Int, preferring: UInt64?) throws(PoolError) -> BlockPointer {
        let physical = BlockPointers.physicalByteCount(forPayload: payload.count)
        var block = payload
        block += [UInt8](repeating: 0, count: Int(physical) - payload.count)
        guard let extents = allocator.allocate(physical, copies: copies, preferring: preferring) else {
            throw PoolError(
                .outOfSpace,
                "pool '\(identity.name)' has no room for a \(physical)-byte block "
                    + "(\(allocator.freeByteCount) bytes free; frees wait \(allocator.rewindDepth) txgs before reuse)",
                pool: identity.name)
        }
        do {
            for extent in extents { try io.write(block, at: extent) }
        } catch {
            for extent in extents { allocator.release(extent) }
            throw error
        }
        return BlockPointers.make(
            extents: extents, physicalByteCount: physical, type: type, birth: openTXG,
            checksum: BlockPointers.sha256(block))
    }

    func directoryList() -> NVList {
        var list = NVList()
        for name in objects.keys.sorted() {
            let entry = objects[name]!
            var item = NVList()
            item.append("bp", BlockPointers.words(entry.pointer))
            item.append("size", .uint64(entry.byteCount))
            item.append("birth", .uint64(entry.birth.rawValue))
            list.append(name, .nvlist(item))
        }
        return list
    }

    /// One txg sync in the order of design §5.
    mutating func sync(now: UInt64) throws(PoolError) -> TXG {
        try ensureOpen()
        guard objectsDirty || configDirty || propertiesDirty || mosPointer == nil else { return lastSyncedTXG }
        let txg = openTXG
        do {
            // 1. Object directory and MOS, copy-on-write; two copies on distinct top-levels,
            //    the first on top-level 0, which every config of the pool knows.
            if objectsDirty || directoryPointer == nil {
                if let old = directoryPointer { free(old) }
                directoryPointer = objects.isEmpty
                    ? nil
                    : try writeBlock(
                        try MOSBlock.encode(directoryList(), magic: MOSBlock.directoryMagic),
                        type: BlockPointers.typeDirectory, copies: 2, preferring: 0)
            }
            if let old = mosPointer { free(old) }
            var mos = NVList()
            mos.append("zpk_mos_version", .uint64(MOSBlock.formatVersion))
            mos.append("txg", .uint64(txg.rawValue))
            mos.append("config", .nvlist(identity.poolConfig(tree: io.tree, txg: txg)))
            var props = NVList()
            for key in properties.keys.sorted() { props.append(key, .string(properties[key]!)) }
            mos.append("properties", .nvlist(props))
            mos.append("space", .nvlist(allocator.encodeSpace()))
            mos.append("deferred", .uint64Array(allocator.encodeDeferred()))
            if let directoryPointer { mos.append("objects_bp", BlockPointers.words(directoryPointer)) }
            mos.append("object_count", .uint64(UInt64(objects.count)))
            mos.append("allocated_bytes", .uint64(allocator.allocatedByteCount))
            let mosBP = try writeBlock(
                try MOSBlock.encode(mos, magic: MOSBlock.mosMagic), type: BlockPointers.typeObjset, copies: 2,
                preferring: 0)
            // 2. Data and MOS durable before anything points at them.
            try io.flushAll()
            // 3. Even labels.
            if configDirty {
                try io.writeLabelConfigs([0, 2], identity: identity, txg: txg)
                try io.flushAll()
            }
            // 4. Uberblocks in all four labels of every leaf.
            var uberblock = Uberblock(
                txg: txg, guidSum: io.tree.guidSum(poolGUID: identity.guid), timestampInSeconds: now,
                rootBlockPointer: mosBP)
            uberblock = stampMMP(uberblock)
            // Heartbeats copy the new uberblock before its first copy lands: an importer ranks
            // by txg, and heartbeats of the previous txg would be invisible to its activity
            // check for as long as these writes take (seconds over a slow link).
            heartbeat?.uberblockWillSync(uberblock)
            try io.writeUberblocks(uberblock, multihost: multihost)
            try io.flushAll()
            // 5. Odd labels.
            if configDirty {
                try io.writeLabelConfigs([1, 3], identity: identity, txg: txg)
                try io.flushAll()
            }
            mosPointer = mosBP
            lastUberblock = uberblock
            heartbeat?.uberblockSynced(uberblock)
        } catch {
            closedReason = "a sync of txg \(txg) failed (\(error.message))"
            throw error
        }
        lastSyncedTXG = txg
        openTXG = TXG(txg.rawValue + 1)
        allocator.releaseDeferred(openTXG: openTXG)
        objectsDirty = false
        configDirty = false
        propertiesDirty = false
        return txg
    }
}
