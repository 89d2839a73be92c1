// The host's other verbs: add top-level vdevs, destroy, sync every pool, and the cache file it
// keeps in step with its open pools (docs/design/pool-host.md §9–§11).

import Logging
import Synchronization
import ZFSDevice
import ZFSFormat
import ZFSImport

/// What opening one cache-file entry gave (``PoolHost/openPoolsFromCacheFile()``).
public struct CacheFileOpenOutcome: Sendable {
    /// The entry's pool name; the cache file's path when the file itself could not be read.
    public var name: String
    /// The entry's `pool_guid`; `nil` when the entry has none or the file could not be read.
    public var guid: PoolGUID?
    /// The open pool, or why it could not be opened.
    public var result: Result<Pool, PoolError>

    /// An outcome (tests and callers that merge outcomes build them).
    public init(name: String, guid: PoolGUID?, result: Result<Pool, PoolError>) {
        self.name = name
        self.guid = guid
        self.result = result
    }
}

extension PoolHost {
    // MARK: - add

    /// Adds top-level vdevs to pool `name` (`zpk add`), striped with the existing ones.
    ///
    /// Everything is validated before anything is written, as for ``create(name:layout:properties:)``:
    /// the layout (non-empty, each device once, mirrors of at least 2), every device opens, is at
    /// least 64 MiB, is not already a leaf of this pool and carries no label of another live pool.
    /// Then the new leaves get their labels (txg 0), the MOS config gains the top-levels, and a
    /// sync rewrites every label of the pool (the config is dirty) and writes an uberblock whose
    /// guid sum covers the new vdevs. A crash before that uberblock lands leaves the pool as it
    /// was. The cache-file entry, if any, is then rewritten.
    ///
    /// The corresponding OpenZFS function is `spa_vdev_add`.
    /// - Parameters:
    ///   - name: an open pool.
    ///   - layout: the new top-level vdevs.
    /// - Throws: ``PoolError`` `.unknownPool`, `.invalidLayout`, `.deviceOpenFailed`,
    ///   `.deviceTooSmall`, `.deviceInUse`, `.poolClosed`, `.ioFailure`.
    public func add(_ name: String, layout: [VdevSpec]) async throws {
        let pool = try pool(named: name)
        try await BlockingIO.run {
            try self.addBlocking(pool, layout: layout)
            self.recordInCacheFile(pool)
        }
    }

    func addBlocking(_ pool: Pool, layout: [VdevSpec]) throws(PoolError) {
        let name = pool.name
        let allPaths = try Self.validate(layout: layout, verb: "add to", pool: name)
        let (currentTree, poolGUID) = pool.core.withLock { ($0.io.tree, $0.identity.guid) }
        // Validate every device before writing anything.
        var devices: [String: any BlockDevice] = [:]
        for path in allPaths {
            if let error = alreadyInPoolNow(path, currentTree, pool: name) { throw error }
            let device: any BlockDevice
            do { device = try environment.openDevice(path) } catch {
                throw PoolError(
                    .deviceOpenFailed, "cannot add \(path) to '\(name)': cannot open it: \(error)", pool: name,
                    device: path, cause: error as? DeviceError)
            }
            guard device.sizeInBytes >= LabelLayout.minimumDeviceByteCount else {
                throw PoolError(
                    .deviceTooSmall,
                    "cannot add \(path) to '\(name)': it is \(device.sizeInBytes) bytes; a device must be at least "
                        + "\(LabelLayout.minimumDeviceByteCount) bytes (64 MiB, SPA_MINDEVSIZE)", pool: name, device: path)
            }
            let labels = DeviceLabels(reading: device)
            if let config = labels.labels.first(where: { $0.status == .valid && $0.config?.uint64("pool_guid") != nil })?
                .config, let otherGUID = config.uint64("pool_guid")
            {
                let state = config.uint64("state") ?? PoolState.active.rawValue
                let leafGUID = VdevGUID(config.uint64("guid") ?? 0)
                if otherGUID == poolGUID.rawValue {
                    // A label of this pool: a leaf of it under another path, or left over from
                    // an add that failed before its sync (its guid is in no config: reusable).
                    if currentTree.leaves.contains(where: { $0.guid == leafGUID }) {
                        throw PoolError(
                            .deviceInUse,
                            "cannot add \(path) to '\(name)': it is already part of this pool (leaf guid \(leafGUID))",
                            pool: name, device: path)
                    }
                } else if state == PoolState.active.rawValue || state == PoolState.exported.rawValue {
                    let other = config.string("name") ?? "?"
                    throw PoolError(
                        .deviceInUse,
                        "cannot add \(path) to '\(name)': it is part of \(state == PoolState.exported.rawValue ? "exported" : "active") "
                            + "pool '\(other)' (guid \(otherGUID)); destroy that pool or clear the device's labels first",
                        pool: name, device: path)
                }
            }
            devices[path] = device
        }

        let now = environment.wallClockSeconds()
        try pool.ensureNotSuspended()
        try pool.core.withLock { (core: inout PoolCore) throws(PoolError) in
            try core.ensureOpen()
            for path in allPaths {
                if let error = alreadyInPoolNow(path, core.io.tree, pool: name) { throw error }
            }
            var used = Set(core.io.tree.leaves.map(\.guid.rawValue) + core.io.tree.topLevels.map(\.guid.rawValue))
            used.insert(core.identity.guid.rawValue)
            func newGUID() -> UInt64 {
                while true {
                    let value = UInt64.random(in: 1...UInt64.max)
                    if used.insert(value).inserted { return value }
                }
            }
            let txg = core.openTXG
            let firstID = UInt64(core.io.tree.topLevels.count)
            let ashift = core.io.tree.topLevels.first?.ashift ?? 12
            var newTops: [TopLevelVdev] = []
            for (index, spec) in layout.enumerated() {
                let leaves = spec.paths.enumerated().map { childIndex, path in
                    LeafVdev(
                        id: UInt64(childIndex), guid: VdevGUID(newGUID()), path: path,
                        isBlockDevice: devices[path]?.isBlockDevice ?? false, createTXG: txg)
                }
                let asize = spec.paths.map { LabelLayout.asize(deviceSize: devices[$0]?.sizeInBytes ?? 0) }.min() ?? 0
                let isMirror: Bool
                if case .mirror = spec { isMirror = true } else { isMirror = false }
                newTops.append(
                    TopLevelVdev(
                        id: firstID + UInt64(index), guid: isMirror ? VdevGUID(newGUID()) : leaves[0].guid,
                        isMirror: isMirror, leaves: leaves, ashift: ashift, asize: asize,
                        metaslabShift: TopLevelVdev.metaslabShift(asize: asize), createTXG: txg))
            }
            var tree = core.io.tree
            tree.topLevels += newTops
            // vdev_label_init of the new leaves, on a scratch VdevIO so a failure changes nothing.
            var scratch = VdevIO(poolName: name, tree: tree, devices: [:])
            for top in newTops {
                for leaf in top.leaves {
                    scratch.devices[leaf.guid] = devices[leaf.path].map {
                        FaultInjectingDevice(inner: $0, guid: leaf.guid, faults: pool.faults)
                    }
                }
            }
            try scratch.writeInitialLabels(
                topLevels: Set(newTops.map(\.id)), identity: core.identity, createTXG: txg, timestampInSeconds: now)
            core.io.tree = tree
            for (guid, device) in scratch.devices { core.io.devices[guid] = device }
            for top in newTops { core.allocator.addTopLevel(top.id, byteCount: top.allocatableByteCount) }
            core.configDirty = true
            pool.multihostShared.setLeaves(tree: core.io.tree, devices: core.io.devices)
            _ = try core.sync(now: now)
        }
        environment.logger.info(
            "vdevs added",
            metadata: ["pool.name": "\(name)", "pool.vdev_paths": "\(allPaths.joined(separator: ","))"])
    }

    private func alreadyInPoolNow(_ path: String, _ tree: VdevTree, pool: String) -> PoolError? {
        guard let top = tree.topLevels.first(where: { $0.leaves.contains { $0.path == path } }) else { return nil }
        return PoolError(
            .deviceInUse, "cannot add \(path) to '\(pool)': it is already part of this pool (top-level vdev \(top.id))",
            pool: pool, device: path)
    }

    // MARK: - destroy

    /// Destroys pool `name` (`zpk destroy`): state DESTROYED in every label and a final sync,
    /// then its devices are closed, the host forgets it and its cache-file entry is removed.
    ///
    /// The data stays on the devices: `zpk import -D` lists a destroyed pool, and its devices
    /// may be reused by ``create(name:layout:properties:)`` or ``add(_:layout:)``.
    /// The corresponding OpenZFS function is `spa_destroy`.
    /// - Throws: ``PoolError`` `.unknownPool`, `.poolClosed`, `.ioFailure`.
    public func destroy(_ name: String) async throws {
        let pool = try pool(named: name)
        try await BlockingIO.run {
            try pool.closeBlocking(as: .destroyed)
            self.pools.withLock { _ = $0.removeValue(forKey: name) }
            self.poolSetChanged()
            self.removeFromCacheFile(pool)
        }
        environment.logger.info("pool destroyed", metadata: ["pool.name": "\(name)", "pool.guid": "\(pool.guid)"])
    }

    // MARK: - sync

    /// Syncs every open pool, one after the other (the `SIGTERM` path of `zpkd`).
    ///
    /// Never throws: each pool's outcome is in the result, in name order.
    /// - Returns: per pool, the last synced txg or the error of its sync.
    public func syncAll() async -> [(pool: String, result: Result<TXG, PoolError>)] {
        var results: [(pool: String, result: Result<TXG, PoolError>)] = []
        for pool in openPools {
            do {
                results.append((pool.name, .success(try await pool.sync())))
            } catch {
                results.append((pool.name, .failure(Self.poolError(error, pool: pool.name))))
            }
        }
        return results
    }

    static func poolError(_ error: any Error, pool: String) -> PoolError {
        if let error = error as? PoolError { return error }
        return PoolError(.ioFailure, "pool '\(pool)': \(error)", pool: pool)
    }

    // MARK: - Cache file

    /// Opens every pool of ``Environment/cacheFilePath`` (`zpkd` start), mode ``OpenMode/cacheFile``:
    /// ``prepareCacheFileOpen()`` then ``open(_:)``, so the pools open concurrently and show in
    /// ``openingPools`` meanwhile.
    ///
    /// One outcome per entry, in the file's order; an entry whose pool is already open here
    /// succeeds with that pool. Each pool opened rewrites its entry from its MOS config, so a
    /// stale entry is fixed. Never throws: no cache path or no file = no pools; a file that
    /// cannot be read or decoded = one outcome, named by the file's path, whose error is
    /// `.cacheFileFailure`. Entries that fail to open are left in the file.
    public func openPoolsFromCacheFile() async -> [CacheFileOpenOutcome] {
        await open(await prepareCacheFileOpen())
    }

    /// Writes (or replaces) `pool`'s entry in the cache file from its MOS config. An entry of
    /// another pool with the same name is dropped: this host's namespace is the truth, as
    /// `spa_write_cachefile` writes the whole namespace. Failures are logged, not thrown.
    func recordInCacheFile(_ pool: Pool) {
        guard let path = environment.cacheFilePath else { return }
        let entry = CacheFile.Entry(name: pool.name, config: pool.config)
        let guid = pool.guid
        updateCacheFile(path, pool: pool.name) { (cache: inout CacheFile) throws(CacheFileError) in
            cache.entries.removeAll { $0.name == entry.name && $0.poolGUID != guid }
            try cache.insert(entry, path: path)
        }
    }

    /// Removes `pool`'s entry (by guid) from the cache file, if it has one.
    func removeFromCacheFile(_ pool: Pool) {
        guard let path = environment.cacheFilePath else { return }
        let guid = pool.guid
        updateCacheFile(path, pool: pool.name) { (cache: inout CacheFile) throws(CacheFileError) in
            cache.entries.removeAll { $0.poolGUID == guid }
        }
    }

    private func updateCacheFile(
        _ path: String, pool: String, _ edit: (inout CacheFile) throws(CacheFileError) -> Void
    ) {
        cacheFileLock.withLock { _ in
            do throws(CacheFileError) {
                try CacheFile.update(at: path, edit)
            } catch {
                environment.logger.warning(
                    "cache file not updated",
                    metadata: ["pool.name": "\(pool)", "cachefile.path": "\(path)", "error.message": "\(error.message)"])
            }
        }
    }
}
