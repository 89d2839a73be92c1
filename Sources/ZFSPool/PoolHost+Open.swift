// Opening a pool from a config at face value (design §7). The config is a hint for where the
// leaves are; the best uberblock leads to the MOS, whose config is the authority.

#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization
import ZFSDevice
import ZFSFormat
import ZFSImport

extension PoolHost {
    /// `ctime(3)` text of `seconds`, newline included (as `zpool import` prints it).
    static func ctimeText(_ seconds: UInt64) -> String {
        var time = time_t(seconds)
        var buffer = [CChar](repeating: 0, count: 64)
        guard ctime_r(&time, &buffer) != nil else { return "\(seconds)\n" }
        return String(cString: buffer)
    }

    private struct Loaded {
        var uberblock: Uberblock
        var mos: NVList
        var objects: [String: ObjectEntry]
    }

    func openBlocking(config: NVList, mode: OpenMode, newName: String? = nil) throws -> Pool {
        guard let guidValue = config.uint64("pool_guid"), let name = config.string("name"),
            let rootConfig = config.list("vdev_tree")
        else {
            throw PoolError(.invalidConfig, "invalid config provided: 'pool_guid', 'name' or 'vdev_tree' missing")
        }
        let poolGUID = PoolGUID(guidValue)
        if let newName { try Self.validate(poolName: newName) }
        let openName = newName ?? name
        guard pools.withLock({ $0[openName] == nil }) else {
            throw PoolError(
                .poolExists,
                "cannot open '\(name)'\(newName.map { " as '\($0)'" } ?? ""): a pool named '\(openName)' is already open"
                    + (newName == nil ? "; import it under another name (zpk import \(name) NEWNAME)" : ""),
                pool: openName)
        }
        if let open = pools.withLock({ $0.values.first { $0.guid == poolGUID } }) {
            throw PoolError(
                .poolExists, "cannot open '\(name)': it is already open on this host as '\(open.name)' (guid \(poolGUID))",
                pool: name)
        }
        let inputTree = try VdevTree.parse(root: rootConfig)

        // 1–2. Open the leaves named by the input config and read their labels.
        var devices: [VdevGUID: any BlockDevice] = [:]
        var missing: [String] = []
        var labelConfigs: [NVList] = []
        var uberblocks: [Uberblock] = []
        func attach(_ leaf: LeafVdev) {
            guard let device = try? environment.openDevice(leaf.path) else {
                missing.append(leaf.path)
                return
            }
            let labels = DeviceLabels(reading: device)
            let valid = labels.labels.filter {
                $0.status == .valid && $0.config?.uint64("pool_guid") == guidValue
                    && $0.config?.uint64("guid") == leaf.guid.rawValue
            }
            guard !valid.isEmpty else {
                missing.append(leaf.path)
                return
            }
            devices[leaf.guid] = device
            labelConfigs += valid.compactMap(\.config)
            for label in labels.labels {
                uberblocks += label.slots.filter(\.isUsable).compactMap(\.uberblock)
            }
        }
        for leaf in inputTree.leaves { attach(leaf) }

        // Features: a pool whose MOS needs anything but ours is an OpenZFS pool.
        if let label = labelConfigs.max(by: { ($0.uint64("txg") ?? 0) < ($1.uint64("txg") ?? 0) }) {
            let version = label.uint64("version") ?? 1
            let features = label.list("features_for_read")?.pairs.map(\.name) ?? []
            if version != PoolIdentity.version || features != [PoolIdentity.mosFeature] {
                let needs = features.filter { $0 != PoolIdentity.mosFeature }
                throw PoolError(
                    .notOurPool,
                    "cannot open '\(name)': it is an OpenZFS pool (version \(version)"
                        + (needs.isEmpty ? "" : ", features \(needs.joined(separator: ", "))")
                        + "), whose MOS zpk cannot read; zpk can still list it (zpk import), show its labels "
                        + "(zpk label) and check whether another host is using it", pool: name)
            }
        }
        guard !devices.isEmpty else {
            throw PoolError(
                .missingDevices,
                "cannot open '\(name)': none of its devices could be opened with a matching label (\(missing.joined(separator: ", ")))",
                pool: name)
        }

        // 3. Uberblock candidates, newest first (one per txg).
        var byTXG: [TXG: Uberblock] = [:]
        for ub in uberblocks where ub.txg > .zero {
            if let current = byTXG[ub.txg], !ub.isBetter(than: current) { continue }
            byTXG[ub.txg] = ub
        }
        let candidates = byTXG.values.sorted { $0.isBetter(than: $1) }
        guard let newest = candidates.first else {
            throw PoolError(.noValidUberblock, "cannot open '\(name)': no valid uberblock found on its devices", pool: name)
        }

        // 4. Read the MOS (and directory), rewinding if allowed.
        var io = VdevIO(poolName: name, tree: inputTree, devices: devices)
        var rewind = false
        if case .import(_, let wantRewind) = mode { rewind = wantRewind }
        var loaded: Loaded?
        var failures: [String] = []
        for candidate in candidates {
            do {
                loaded = try Self.loadMOS(candidate, io: &io, pool: name)
                break
            } catch {
                failures.append("txg \(candidate.txg): \(error.message)")
                if !rewind {
                    let older = candidates.dropFirst().first.map {
                        "; importing with rewind (-F) would return the pool to txg \($0.txg), discarding about "
                            + "\(newest.timestampInSeconds &- $0.timestampInSeconds) s of changes"
                    } ?? "; no older uberblock is available to rewind to"
                    throw PoolError(
                        .corruptMetadata,
                        "cannot open '\(name)': the MOS of txg \(candidate.txg) is damaged (\(error.message))\(older)",
                        pool: name, cause: error)
                }
            }
        }
        guard let loaded else {
            throw PoolError(
                .corruptMetadata,
                "cannot open '\(name)': no uberblock leads to an intact MOS (\(failures.joined(separator: "; ")))",
                pool: name)
        }

        // 5. The MOS config wins; locations come from the input config where the guid matches.
        guard let mosConfig = loaded.mos.list("config"), let mosRoot = mosConfig.list("vdev_tree") else {
            throw PoolError(.corruptMetadata, "cannot open '\(name)': the MOS holds no config", pool: name)
        }
        var trusted = try VdevTree.parse(root: mosRoot)
        let inputPaths = Dictionary(inputTree.leaves.map { ($0.guid, $0.path) }, uniquingKeysWith: { a, _ in a })
        for t in trusted.topLevels.indices {
            for l in trusted.topLevels[t].leaves.indices {
                let leaf = trusted.topLevels[t].leaves[l]
                if let path = inputPaths[leaf.guid] {
                    trusted.topLevels[t].leaves[l].path = path
                } else if devices[leaf.guid] == nil {
                    attach(leaf)
                }
            }
        }
        missing = trusted.leaves.filter { devices[$0.guid] == nil }.map(\.path)
        for top in trusted.topLevels where !top.leaves.contains(where: { devices[$0.guid] != nil }) {
            throw PoolError(
                .missingDevices,
                "cannot open '\(name)': no device of top-level vdev \(top.id) is available "
                    + "(\(top.leaves.map(\.path).joined(separator: ", ")))", pool: name)
        }
        func shape(_ tree: VdevTree) -> [[String]] {
            tree.topLevels.map { top in ["\(top.id):\(top.guid)"] + top.leaves.map { "\($0.guid)@\($0.path)" } }
        }
        let stale = shape(trusted) != shape(inputTree)
        let guidSum = trusted.guidSum(poolGUID: poolGUID)
        guard guidSum == loaded.uberblock.guidSum else {
            throw PoolError(
                .badGuidSum,
                "cannot open '\(name)': the uberblock's vdev guid sum \(loaded.uberblock.guidSum) does not match the "
                    + "MOS config's \(guidSum); a top-level vdev is missing", pool: name)
        }

        // 6. Host checks.
        let lastHostID = mosConfig.uint64("hostid") ?? 0
        let lastHost = mosConfig.string("hostname") ?? "<unknown>"
        let lastState = mosConfig.uint64("state") ?? 0
        switch mode {
        case .cacheFile:
            if lastHostID != 0, environment.hostID != 0, lastHostID != environment.hostID {
                throw PoolError(
                    .hostMismatch,
                    "pool '\(name)' could not be loaded as it was last accessed by another system (host: \(lastHost) "
                        + "hostid: 0x\(String(lastHostID, radix: 16))). See: https://openzfs.github.io/openzfs-docs/msg/ZFS-8000-EY",
                    pool: name)
            }
        case .import(let force, _):
            if !force, lastState != PoolState.exported.rawValue, lastHostID != environment.hostID {
                throw PoolError(
                    .importRequiresForce,
                    "cannot import '\(name)': pool was previously in use from another system.\nLast accessed by "
                        + "\(lastHost) (hostid=\(String(lastHostID, radix: 16))) at "
                        + Self.ctimeText(loaded.uberblock.timestampInSeconds)
                        + "The pool can be imported, use 'zpool import -f' to import the pool.", pool: name)
            }
        }

        // Rebuild the in-core pool.
        var properties: [String: String] = [:]
        for pair in loaded.mos.list("properties")?.pairs ?? [] {
            if case .string(let value) = pair.value { properties[pair.name] = value }
        }
        let capacity = Dictionary(uniqueKeysWithValues: trusted.topLevels.map { ($0.id, $0.allocatableByteCount) })
        var allocator = SpaceAllocator(
            capacity: capacity, unit: 1 << (trusted.topLevels.map(\.ashift).max() ?? 12),
            rewindDepth: PoolCore.rewindDepth(tree: trusted))
        allocator.load(space: loaded.mos.list("space") ?? NVList(), deferred: loaded.mos.uint64Array("deferred") ?? [])
        for extent in BlockPointers.extents(of: loaded.uberblock.rootBlockPointer) { allocator.markAllocated(extent) }
        let maxSeen = candidates.map(\.txg).max() ?? loaded.uberblock.txg
        let openTXG = TXG(maxSeen.rawValue + 1)
        allocator.releaseDeferred(openTXG: openTXG)
        io.tree = trusted
        io.devices = devices
        io.poolName = openName
        var core = PoolCore(
            identity: PoolIdentity(
                name: openName, guid: poolGUID, state: .active, hostID: environment.hostID, hostname: environment.hostname),
            io: io, properties: properties, allocator: allocator, objects: loaded.objects,
            lastSyncedTXG: loaded.uberblock.txg, openTXG: openTXG)
        core.mosPointer = loaded.uberblock.rootBlockPointer
        core.directoryPointer = BlockPointers.decode(loaded.mos.uint64Array("objects_bp"))
        // 7. Claim: this host, ACTIVE, every label rewritten.
        core.configDirty = true
        _ = try core.sync(now: environment.wallClockSeconds())
        let report = OpenReport(
            configWasStale: stale, openedTXG: loaded.uberblock.txg,
            rewoundFrom: loaded.uberblock.txg < newest.txg ? newest.txg : nil, missingLeaves: missing)
        let pool = Pool(core: core, report: report, environment: environment)
        let inserted = pools.withLock { pools -> Bool in
            guard pools[openName] == nil else { return false }
            pools[openName] = pool
            return true
        }
        guard inserted else {
            throw PoolError(.poolExists, "a pool named '\(openName)' is already open on this host", pool: openName)
        }
        environment.logger.info(
            "pool opened",
            metadata: [
                "pool.name": "\(openName)", "pool.previous_name": "\(name)", "pool.txg": "\(loaded.uberblock.txg)", "pool.config_stale": "\(stale)",
            ])
        return pool
    }

    private static func loadMOS(_ uberblock: Uberblock, io: inout VdevIO, pool: String) throws(PoolError) -> Loaded {
        let rootbp = uberblock.rootBlockPointer
        guard rootbp.properties.checksumAlgorithm == UInt8(BlockPointers.checksumSHA256) else {
            throw PoolError(
                .notOurPool, "the rootbp of txg \(uberblock.txg) is not a ZPoolKit MOS (checksum type "
                    + "\(rootbp.properties.checksumAlgorithm))", pool: pool)
        }
        let block = try io.read(rootbp)
        guard let mos = MOSBlock.decode(block, magic: MOSBlock.mosMagic) else {
            throw PoolError(.corruptMetadata, "the MOS block of txg \(uberblock.txg) does not decode", pool: pool)
        }
        var objects: [String: ObjectEntry] = [:]
        if let directoryBP = BlockPointers.decode(mos.uint64Array("objects_bp")) {
            let directoryBlock = try io.read(directoryBP)
            guard let directory = MOSBlock.decode(directoryBlock, magic: MOSBlock.directoryMagic) else {
                throw PoolError(.corruptMetadata, "the object directory of txg \(uberblock.txg) does not decode", pool: pool)
            }
            for pair in directory.pairs {
                guard case .nvlist(let item) = pair.value, let bp = BlockPointers.decode(item.uint64Array("bp")),
                    let size = item.uint64("size")
                else {
                    throw PoolError(.corruptMetadata, "object '\(pair.name)' of txg \(uberblock.txg) is malformed", pool: pool)
                }
                objects[pair.name] = ObjectEntry(pointer: bp, byteCount: size, birth: TXG(item.uint64("birth") ?? 0))
            }
        }
        return Loaded(uberblock: uberblock, mos: mos, objects: objects)
    }
}
