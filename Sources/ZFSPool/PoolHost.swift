// The host that owns pools (the SPA of the essay): creates them, opens them from a config at face
// value — one code path whether the config came from a cache file or an import scan — and keeps
// the set of open pools. See docs/design/pool-host.md §7.

#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSMultihost

/// One top-level vdev of a layout to create.
public enum VdevSpec: Hashable, Sendable {
    /// A single file or block device.
    case leaf(String)
    /// An N-way mirror (N ≥ 2).
    case mirror([String])

    var paths: [String] {
        switch self {
        case .leaf(let path): [path]
        case .mirror(let paths): paths
        }
    }
}

/// How ``PoolHost/open(config:mode:newName:progress:)`` treats the pool's owner.
public enum OpenMode: Hashable, Sendable {
    /// From this host's cache file: a pool owned by another hostid is refused (ZFS-8000-EY).
    case cacheFile
    /// From an import scan (`zpk import`): a pool not exported and last used by another host
    /// needs `force` (`-f`); `rewind` (`-F`) falls back to older uberblocks when the newest
    /// MOS is damaged.
    case `import`(force: Bool = false, rewind: Bool = false)
}

/// Owns open pools on behalf of one host identity.
public final class PoolHost: Sendable {
    /// Everything the host takes from its surroundings.
    public struct Environment: Sendable {
        /// This host's 32-bit hostid (written to labels as `hostid`; 0 = none).
        public var hostID: UInt64
        /// This host's name (labels' `hostname`).
        public var hostname: String
        /// The wall clock whose seconds go into `ub_timestamp` (txg syncs and heartbeats).
        /// OpenZFS stamps `ub_timestamp` with `gethrestime_sec()`, never with the monotonic clock.
        public var wallClock: WallClock
        /// Wall-clock seconds since the Unix epoch, for `ub_timestamp` (``wallClock`` in seconds).
        public var wallClockSeconds: @Sendable () -> UInt64 {
            get { let wall = wallClock; return { wall.seconds } }
            set { let read = newValue; wallClock = WallClock { .seconds(Int64(clamping: read())) } }
        }
        /// The monotonic clock of delays and deadlines: heartbeat cadence, suspension deadlines,
        /// activity-check waits, injected delays (tests inject a manual clock).
        public var clock: any Clock<Duration>
        /// The multihost module parameters, shared by every pool of the host (`zpk tunable`).
        public var multihostTunables: MultihostTunablesStore
        /// Random numbers for multihost: the heartbeat label choice, the activity check's
        /// extension and the claim sequences (tests inject a seeded source).
        public var multihostRandom: @Sendable () -> UInt64
        /// Opens a leaf for reading and writing.
        public var openDevice: @Sendable (String) throws -> any BlockDevice
        /// Where the host logs (libraries never bootstrap logging).
        public var logger: Logger
        /// The cache file this host keeps in step with its open pools, or `nil` for none.
        ///
        /// When set, every create, open, import, add and rename writes the pool's entry (the
        /// MOS config, atomically, with `CacheFile.update`); export and destroy remove it. An
        /// open whose input config was stale therefore rewrites ("fixes") the entry.
        /// ``PoolHost/openPoolsFromCacheFile()`` opens every pool it lists. A failure to update
        /// the file is logged and does not fail the pool operation (as `spa_write_cachefile`).
        public var cacheFilePath: String?

        /// - Parameters:
        ///   - hostID: this host's hostid (0 = none).
        ///   - hostname: this host's name.
        ///   - wallClockSeconds: a wall clock in whole seconds for `ub_timestamp`; when given it
        ///     replaces `wallClock`.
        ///   - wallClock: the wall clock for `ub_timestamp` (default `CLOCK_REALTIME`).
        ///   - clock: the monotonic clock (default `ContinuousClock`).
        ///   - multihostTunables: the host's shared multihost parameters.
        ///   - multihostRandom: random numbers for multihost (default the system generator).
        ///   - openDevice: opens a leaf by path, read-write.
        ///   - logger: where the host logs.
        ///   - cacheFilePath: the cache file to keep in step with the open pools, or `nil`.
        public init(
            hostID: UInt64, hostname: String,
            wallClockSeconds: (@Sendable () -> UInt64)? = nil,
            wallClock: WallClock = .system,
            clock: any Clock<Duration> = ContinuousClock(),
            multihostTunables: MultihostTunablesStore = MultihostTunablesStore(),
            multihostRandom: @escaping @Sendable () -> UInt64 = { UInt64.random(in: 0...UInt64.max) },
            openDevice: @escaping @Sendable (String) throws -> any BlockDevice = {
                try DeviceOpener.open(path: $0, mode: .readWrite)
            },
            logger: Logger = Logger.current,
            cacheFilePath: String? = nil
        ) {
            self.hostID = hostID
            self.hostname = hostname
            self.wallClock = wallClock
            self.clock = clock
            self.multihostTunables = multihostTunables
            self.multihostRandom = multihostRandom
            self.openDevice = openDevice
            self.logger = logger
            self.cacheFilePath = cacheFilePath
            if let wallClockSeconds { self.wallClockSeconds = wallClockSeconds }
        }
    }

    /// The identity, clocks, device opener, logger and cache file this host was made with.
    public let environment: Environment
    let pools = Mutex<[String: Pool]>([:])
    /// Serialises this host's cache-file updates (other processes wait on the directory `flock`).
    let cacheFileLock = Mutex<Void>(())
    /// Who wants to hear that the set of open pools changed (``multihostService`` instances).
    let poolSetObservers = Mutex<(next: UInt64, continuations: [UInt64: AsyncStream<Void>.Continuation])>((0, [:]))

    /// A host with no pools open.
    public init(environment: Environment) {
        self.environment = environment
    }

    /// The open pools, by name.
    public var openPools: [Pool] { pools.withLock { Array($0.values) }.sorted { $0.name < $1.name } }

    /// The open pool called `name`.
    /// - Throws: ``PoolError`` `.unknownPool`.
    public func pool(named name: String) throws -> Pool {
        guard let pool = pools.withLock({ $0[name] }) else {
            throw PoolError(.unknownPool, "no pool named '\(name)' is open on this host", pool: name)
        }
        return pool
    }

    /// Creates a pool: validates everything first (nothing is written on error), labels every
    /// leaf (txg 0), then syncs txg 4.
    /// - Throws: ``PoolError`` `.poolExists`, `.invalidName`, `.invalidLayout`,
    ///   `.deviceOpenFailed`, `.deviceTooSmall`, `.deviceInUse`, `.ioFailure`.
    public func create(name: String, layout: [VdevSpec], properties: [String: String] = [:]) async throws -> Pool {
        try await BlockingIO.run {
            let pool = try self.createBlocking(name: name, layout: layout, properties: properties)
            self.recordInCacheFile(pool)
            return pool
        }
    }

    /// Opens a pool from a complete config at face value, then lets the MOS config win.
    ///
    /// `config` is a cache-file entry or an `ZFSImport.PoolCandidate.config` from a scan: the
    /// same path. See docs/design/pool-host.md §7 for the steps. With a cache file configured
    /// (``Environment/cacheFilePath``) the pool's entry is then rewritten from the MOS config.
    ///
    /// A pool whose best uberblock says multihost was on gets OpenZFS master's activity check
    /// (in both modes; only "exported by this host" and "destroyed" skip it): the open waits
    /// the check's duration watching for another host's writes, then claims the pool with ten
    /// rounds of writes to label 0's MMP slot (design: docs/design/multihost.md).
    /// - Parameters:
    ///   - config: the pool config (root `vdev_tree`); it only says where the leaves are.
    ///   - mode: ``OpenMode/cacheFile`` or ``OpenMode/import(force:rewind:)``.
    ///   - newName: open the pool under this name (`zpool import POOL NEWNAME`): the MOS config
    ///     and every label get the new name at the open's sync.
    ///   - progress: called during the activity check and the claim (countdown).
    /// - Throws: ``PoolError`` `.poolExists`, `.invalidName`, `.invalidConfig`, `.missingDevices`,
    ///   `.notOurPool`, `.noValidUberblock`, `.corruptMetadata`, `.badGuidSum`,
    ///   `.importRequiresForce`, `.hostMismatch`, `.poolInUse` (another host is active; `force`
    ///   does not override it), `.ioFailure`.
    public func open(
        config: NVList, mode: OpenMode, newName: String? = nil,
        progress: (@Sendable (ActivityProgress) -> Void)? = nil
    ) async throws -> Pool {
        try await openStaged(config: config, mode: mode, newName: newName, progress: progress)
    }

    /// Scans `searchPaths` (`zpk import -d`) for pool `selector` (name or guid) and opens it with
    /// ``open(config:mode:newName:progress:)``.
    /// - Parameters:
    ///   - selector: the pool's name or decimal guid.
    ///   - searchPaths: directories or devices to scan.
    ///   - force: import a pool last used by another host and not exported (`-f`); never
    ///     overrides the multihost activity check.
    ///   - rewind: fall back to older uberblocks when the newest MOS is damaged (`-F`).
    ///   - newName: import under this name (`zpool import POOL NEWNAME`).
    ///   - progress: called during the activity check and the claim.
    /// - Throws: ``PoolError`` `.unknownPool` when the scan finds no such pool, and what `open` throws.
    public func importPool(
        _ selector: String, searchPaths: [String], force: Bool = false, rewind: Bool = false,
        newName: String? = nil, progress: (@Sendable (ActivityProgress) -> Void)? = nil
    ) async throws -> Pool {
        let candidate = try await BlockingIO.run { () throws -> PoolCandidate in
            let chosen = PoolSelector(zpoolArgument: selector)
            var options = ImportScanner.Options(searchPaths: searchPaths, selector: chosen)
            options.skipDevicesInUse = false
            let result = ImportScanner(options: options, logger: self.environment.logger).scan()
            do { return try result.pool(chosen) } catch {
                throw PoolError(
                    .unknownPool,
                    "cannot import '\(selector)': no such pool available in \(searchPaths.joined(separator: ", "))",
                    pool: selector, cause: error)
            }
        }
        return try await openStaged(
            config: candidate.config, mode: .import(force: force, rewind: rewind), newName: newName, progress: progress)
    }

    /// Exports pool `name`: state EXPORTED in every label, a final sync, devices closed.
    /// - Throws: ``PoolError`` `.unknownPool`, `.ioFailure`.
    public func export(_ name: String) async throws {
        let pool = try pool(named: name)
        try await BlockingIO.run {
            try pool.closeBlocking(as: .exported)
            self.pools.withLock { _ = $0.removeValue(forKey: name) }
            self.poolSetChanged()
            self.removeFromCacheFile(pool)
        }
    }

    /// Forgets a pool without writing anything (the in-memory state of a crashed host): its
    /// heartbeat stops, injected hangs end, and the ``Pool`` object throws `.poolClosed` from then on.
    public func forget(_ name: String) {
        let pool = pools.withLock { $0.removeValue(forKey: name) }
        pool?.abandon()
        poolSetChanged()
    }

    // MARK: - Create

    /// Checks the shape of a layout for `create` or `add`: at least one vdev, each device once,
    /// every mirror of two or more. Returns every path, in layout order.
    static func validate(layout: [VdevSpec], verb: String, pool name: String) throws(PoolError) -> [String] {
        let allPaths = layout.flatMap(\.paths)
        guard !layout.isEmpty, Set(allPaths).count == allPaths.count,
            layout.allSatisfy({ if case .mirror(let p) = $0 { p.count >= 2 } else { true } })
        else {
            throw PoolError(
                .invalidLayout,
                "cannot \(verb) '\(name)': the layout must name at least one vdev, each device once, and every "
                    + "mirror needs at least 2 devices", pool: name)
        }
        return allPaths
    }

    static func validate(poolName name: String) throws(PoolError) {
        let reserved = ["mirror", "raidz", "draid", "spare", "log", "cache", "special", "dedup"]
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:")
        guard let first = name.first, first.isLetter, name.utf8.count < 256, name.allSatisfy(allowed.contains),
            !reserved.contains(where: { name.hasPrefix($0) }) || name == "cache_"
        else {
            throw PoolError(
                .invalidName,
                "invalid pool name '\(name)': a name starts with a letter, uses only letters, digits and '_-.:', "
                    + "is shorter than 256 bytes and does not begin with a vdev type (mirror, raidz, ...)",
                pool: name)
        }
    }

    private func openLeaf(_ path: String, pool: String) throws(PoolError) -> any BlockDevice {
        do { return try environment.openDevice(path) } catch {
            throw PoolError(
                .deviceOpenFailed, "cannot open '\(path)' for pool '\(pool)': \(error)", pool: pool, device: path,
                cause: error as? DeviceError)
        }
    }

    func createBlocking(name: String, layout: [VdevSpec], properties: [String: String]) throws -> Pool {
        try Self.validate(poolName: name)
        guard pools.withLock({ $0[name] == nil }) else {
            throw PoolError(.poolExists, "cannot create '\(name)': a pool of that name is already open", pool: name)
        }
        var validatedProperties: [String: String] = [:]
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            validatedProperties[key] = try Pool.validatedProperty(key, value, pool: name)
        }
        let allPaths = try Self.validate(layout: layout, verb: "create", pool: name)
        // Validate every device before writing anything.
        var devices: [String: any BlockDevice] = [:]
        for path in allPaths {
            let device = try openLeaf(path, pool: name)
            guard device.sizeInBytes >= LabelLayout.minimumDeviceByteCount else {
                throw PoolError(
                    .deviceTooSmall,
                    "cannot create '\(name)': \(path) is \(device.sizeInBytes) bytes; a device must be at least "
                        + "\(LabelLayout.minimumDeviceByteCount) bytes (64 MiB, SPA_MINDEVSIZE)", pool: name, device: path)
            }
            let labels = DeviceLabels(reading: device)
            if let label = labels.labels.first(where: { $0.status == .valid && $0.config?.uint64("pool_guid") != nil }),
                let config = label.config,
                let state = config.uint64("state"), state == PoolState.active.rawValue || state == PoolState.exported.rawValue
            {
                let other = config.string("name") ?? "?"
                throw PoolError(
                    .deviceInUse,
                    "cannot create '\(name)': \(path) is part of \(state == 1 ? "exported" : "active") pool '\(other)' "
                        + "(guid \(config.uint64("pool_guid") ?? 0)); destroy that pool or clear the device's labels first",
                    pool: name, device: path)
            }
            devices[path] = device
        }
        // Build the tree.
        var used = Set<UInt64>()
        func newGUID() -> UInt64 {
            while true {
                let value = UInt64.random(in: 1...UInt64.max)
                if used.insert(value).inserted { return value }
            }
        }
        let poolGUID = PoolGUID(newGUID())
        let faults = FaultTable(clock: environment.clock)
        let initial = PoolIdentity.initialTXG
        let ashift: UInt64 = 12
        var tops: [TopLevelVdev] = []
        for (index, spec) in layout.enumerated() {
            let leaves = spec.paths.enumerated().map { childIndex, path in
                LeafVdev(
                    id: UInt64(childIndex), guid: VdevGUID(newGUID()), path: path,
                    isBlockDevice: devices[path]!.isBlockDevice, createTXG: initial)
            }
            let asize = spec.paths.map { LabelLayout.asize(deviceSize: devices[$0]!.sizeInBytes) }.min()!
            let isMirror: Bool
            if case .mirror = spec { isMirror = true } else { isMirror = false }
            tops.append(
                TopLevelVdev(
                    id: UInt64(index), guid: isMirror ? VdevGUID(newGUID()) : leaves[0].guid, isMirror: isMirror,
                    leaves: leaves, ashift: ashift, asize: asize, metaslabShift: TopLevelVdev.metaslabShift(asize: asize),
                    createTXG: initial))
        }
        let tree = VdevTree(topLevels: tops)
        let identity = PoolIdentity(
            name: name, guid: poolGUID, state: .active, hostID: environment.hostID, hostname: environment.hostname)
        var leafDevices: [VdevGUID: any BlockDevice] = [:]
        for leaf in tree.leaves {
            leafDevices[leaf.guid] = devices[leaf.path].map { FaultInjectingDevice(inner: $0, guid: leaf.guid, faults: faults) }
        }

        // vdev_label_init: whole labels, txg 0 + create_txg, initialised ring.
        var io = VdevIO(poolName: name, tree: tree, devices: leafDevices)
        try io.writeInitialLabels(
            topLevels: Set(tree.topLevels.map(\.id)), identity: identity, createTXG: initial,
            timestampInSeconds: environment.wallClockSeconds())
        var props = validatedProperties
        if props["multihost"] == nil { props["multihost"] = "off" }
        let capacity = Dictionary(uniqueKeysWithValues: tops.map { ($0.id, $0.allocatableByteCount) })
        var core = PoolCore(
            identity: identity, io: io, properties: props,
            allocator: SpaceAllocator(
                capacity: capacity, unit: 1 << ashift,
                rewindDepth: PoolCore.rewindDepth(tree: tree)),
            objects: [:], lastSyncedTXG: .zero, openTXG: initial)
        core.multihostTunables = environment.multihostTunables
        core.configDirty = true
        core.objectsDirty = true
        _ = try core.sync(now: environment.wallClockSeconds())
        let pool = Pool(
            core: core,
            report: OpenReport(configWasStale: false, openedTXG: initial, rewoundFrom: nil, missingLeaves: []),
            environment: environment, faults: faults)
        do { try register(pool) } catch {
            pool.shutDownMultihost()
            throw error
        }
        poolSetChanged()
        environment.logger.info("pool created", metadata: ["pool.name": "\(name)", "pool.guid": "\(poolGUID)"])
        return pool
    }

    private func register(_ pool: Pool) throws(PoolError) {
        let inserted = pools.withLock { pools -> Bool in
            guard pools[pool.name] == nil else { return false }
            pools[pool.name] = pool
            return true
        }
        guard inserted else {
            throw PoolError(.poolExists, "a pool named '\(pool.name)' is already open on this host", pool: pool.name)
        }
    }
}
