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
import ZFSMultihost

extension PoolHost {
    /// `ctime(3)` text of `seconds`, newline included (as `zpool import` prints it).
    static func ctimeText(_ seconds: UInt64) -> String {
        var time = time_t(seconds)
        var buffer = [CChar](repeating: 0, count: 64)
        guard ctime_r(&time, &buffer) != nil else { return "\(seconds)\n" }
        let text = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: text, as: UTF8.self)
    }

    struct Loaded: Sendable {
        var uberblock: Uberblock
        var mos: NVList
        var objects: [String: ObjectEntry]
    }

    /// What the first stage of an open found: the leaves, their labels and the uberblocks.
    struct OpenStage: Sendable {
        var config: NVList
        var mode: OpenMode
        var newName: String?
        var name: String
        var openName: String
        var poolGUID: PoolGUID
        var inputTree: VdevTree
        var devices: [VdevGUID: any BlockDevice] = [:]
        var missing: [String] = []
        var labelConfigs: [NVList] = []
        var uberblocks: [Uberblock] = []
        var candidates: [Uberblock] = []
        var faults: FaultTable
        /// Set when the claim must run: what the check approved, and the claim's round period.
        var pendingClaim: PendingClaim?
        /// Set for an OpenZFS pool (a MOS zpk cannot read): thrown after the activity check, so
        /// that a pool in use on another host is reported as in use (exit 3) first.
        var foreignPoolRefusal: PoolError?
    }

    /// Opens `leaf` (through the pool's fault layer) and keeps it when a label of it belongs to
    /// the pool with the leaf's guid.
    private func attach(_ leaf: LeafVdev, to stage: inout OpenStage) {
        guard let raw = try? environment.openDevice(leaf.path) else {
            stage.missing.append(leaf.path)
            return
        }
        let device = FaultInjectingDevice(inner: raw, guid: leaf.guid, faults: stage.faults)
        let labels = DeviceLabels(reading: device)
        let valid = labels.labels.filter {
            $0.status == .valid && $0.config?.uint64("pool_guid") == stage.poolGUID.rawValue
                && $0.config?.uint64("guid") == leaf.guid.rawValue
        }
        guard !valid.isEmpty else {
            stage.missing.append(leaf.path)
            return
        }
        stage.devices[leaf.guid] = device
        stage.labelConfigs += valid.compactMap(\.config)
        for label in labels.labels {
            stage.uberblocks += label.slots.filter(\.isUsable).compactMap(\.uberblock)
        }
    }

    /// Stage 1 (blocking): the leaves named by the config, their labels, the uberblock candidates.
    func openStageLeaves(config: NVList, mode: OpenMode, newName: String?) throws -> OpenStage {
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
        if mode != .cacheFile, let still = openingPools.first(where: { $0.name == openName || $0.guid == poolGUID }) {
            throw PoolError(.poolOpening, "cannot open '\(name)': \(still.message)", pool: name)
        }
        if let open = pools.withLock({ $0.values.first { $0.guid == poolGUID } }) {
            throw PoolError(
                .poolExists, "cannot open '\(name)': it is already open on this host as '\(open.name)' (guid \(poolGUID))",
                pool: name)
        }
        let inputTree = try VdevTree.parse(root: rootConfig)
        var stage = OpenStage(
            config: config, mode: mode, newName: newName, name: name, openName: openName, poolGUID: poolGUID,
            inputTree: inputTree, faults: FaultTable(clock: environment.clock))

        // 1–2. Open the leaves named by the input config and read their labels.
        for leaf in inputTree.leaves { attach(leaf, to: &stage) }

        // Features: a pool whose MOS needs anything but ours is an OpenZFS pool.
        if let foreign = ZPKImportCheck.foreignPool(labelConfigs: stage.labelConfigs) {
            stage.foreignPoolRefusal = PoolError(
                .notOurPool,
                "cannot open '\(name)': \(foreign); zpk can still list it (zpk import), show its labels "
                    + "(zpk label) and check whether another host is using it", pool: name)
        }
        guard !stage.devices.isEmpty else {
            throw stage.foreignPoolRefusal ?? PoolError(
                .missingDevices,
                "cannot open '\(name)': none of its devices could be opened with a matching label (\(stage.missing.joined(separator: ", ")))",
                pool: name)
        }

        // 3. Uberblock candidates, newest first (one per txg).
        var byTXG: [TXG: Uberblock] = [:]
        for ub in stage.uberblocks where ub.txg > .zero {
            if let current = byTXG[ub.txg], !ub.isBetter(than: current) { continue }
            byTXG[ub.txg] = ub
        }
        stage.candidates = byTXG.values.sorted { $0.isBetter(than: $1) }
        guard !stage.candidates.isEmpty else {
            throw stage.foreignPoolRefusal ?? PoolError(.noValidUberblock, "cannot open '\(name)': no valid uberblock found on its devices", pool: name)
        }
        return stage
    }

    /// What the claim phase starts from.
    struct PendingClaim: Sendable {
        /// The best uberblock the check approved (the claim compares it byte for byte).
        var reference: Uberblock
        /// `nil`: the pool's heartbeat interval (master); shorter for a pool another host exported.
        var roundPeriod: Duration?
    }

    /// Stage 2 (async): the multihost activity check (`spa_ld_select_uberblock` →
    /// `spa_activity_check_required` / `spa_ld_activity_check`, OpenZFS master rules), for an
    /// import and for an open from the cache file alike. A pool another host exported is not
    /// waited for (ours, `ExportedPool.claimOnly`). Returns what the claim phase must start
    /// from when one must follow, `nil` when none is required.
    func activityCheck(
        _ stage: OpenStage, progress: (@Sendable (ActivityProgress) -> Void)?
    ) async throws -> PendingClaim? {
        let devices = Array(stage.devices.values)
        let probe = PoolLeavesProbe(poolGUID: stage.poolGUID, devices: { devices })
        let driver = makeActivityDriver(pool: stage.name, probe: probe)
        let verdict: ActivityVerdict
        do {
            verdict = try await driver.run(progress: progress ?? { _ in })
        } catch {
            throw PoolError(
                .noValidUberblock, "cannot open '\(stage.name)': \(error.message)", pool: stage.name, cause: error)
        }
        PoolMetricsRecorder.activityCheck(verdict)
        let verb = stage.mode == .cacheFile ? "open" : "import"
        switch verdict {
        case .notRequired(.exportedByAnotherHost, let reading):
            return PendingClaim(reference: reading.uberblock, roundPeriod: ActivityCheck.exportedClaimRound)
        case .notRequired:
            return nil
        case .noActivity(let waited, let plan, let reading):
            var timings = MultihostLogEvent.plan(plan)
            timings["mmp.waited_ms"] = MultihostLogEvent.milliseconds(waited)
            timings["mmp.result"] = "inactive"
            environment.logger.info(
                "multihost activity check passed",
                metadata: MultihostLogEvent.activityCheck.metadata(pool: stage.name, hostID: environment.hostID, timings))
            return PendingClaim(reference: reading.uberblock, roundPeriod: nil)
        case .active(let host, let plan):
            var details = MultihostLogEvent.plan(plan)
            details["mmp.result"] = "active"
            details["mmp.holder.hostname"] = "\(host.hostname ?? "unknown")"
            details["mmp.holder.hostid"] = "\(String(host.hostID ?? 0, radix: 16))"
            details["mmp.last_heartbeat_age_ms"] = MultihostLogEvent.milliseconds(host.lastHeartbeatAge)
            details["mmp.detected_after_ms"] = MultihostLogEvent.milliseconds(host.detectedAfter)
            environment.logger.warning(
                "multihost takeover refused: the pool is in use on another host",
                metadata: MultihostLogEvent.takeoverRefused.metadata(pool: stage.name, hostID: environment.hostID, details))
            var message =
                "cannot \(verb) '\(stage.name)': pool is imported on host '\(host.hostname ?? "unknown")' "
                + "(hostid=\(String(host.hostID ?? 0, radix: 16))).\n"
            if let shared = Pool.sharedHostIDText(host, localHostID: environment.hostID, localHostname: environment.hostname) {
                message += shared + "\n"
            }
            message += "Export the pool on the other system, then run "
                + "'zpk import'. (\(Pool.lastHeartbeatText(host)); "
                + "--force does not override this.)"
            throw PoolError(.poolInUse, message, pool: stage.name)
        case .refusedNoHostID:
            throw PoolError(
                .poolInUse,
                "cannot \(verb) '\(stage.name)': pool has the multihost property on and the\nsystem's hostid is not set. "
                    + "Set a unique system hostid with the zgenhostid(8) command.", pool: stage.name)
        case .interrupted:
            throw PoolError(
                .poolInUse, "cannot \(verb) '\(stage.name)': the multihost activity check was interrupted", pool: stage.name)
        }
    }

    func makeActivityDriver(pool: String, probe: any ActivityProbe) -> ActivityCheckDriver {
        var configuration = ActivityCheckDriver.Configuration(
            pool: pool, localHostID: UInt32(truncatingIfNeeded: environment.hostID),
            tunables: environment.multihostTunables.current, policy: .openZFSMaster)
        configuration.exportedPool = .claimOnly
        return ActivityCheckDriver(
            configuration: configuration,
            probe: probe, clock: environment.clock, wallClock: environment.wallClock,
            random: HostRandom(source: environment.multihostRandom), logger: environment.logger)
    }

    /// Stage 4 (async): master's claim (`spa_activity_check_claim`): ten rounds of a random
    /// sequence written into label 0's MMP slot of every leaf, each read back after one
    /// interval. Any other writer makes it fail with `.poolInUse`.
    func claim(
        _ stage: OpenStage, _ pending: PendingClaim, tree: VdevTree,
        progress: (@Sendable (ActivityProgress) -> Void)?
    ) async throws {
        let devices = Array(stage.devices.values)
        let probe = PoolLeavesProbe(poolGUID: stage.poolGUID, devices: { devices })
        let driver = makeActivityDriver(pool: stage.name, probe: probe)
        let leaves = tree.topLevels.flatMap { top in
            top.leaves.map { MultihostLeaf(guid: $0.guid, path: $0.path, ashift: top.ashift, device: stage.devices[$0.guid]) }
        }
        let outcome = await driver.claim(
            reference: pending.reference, writer: PoolClaimWriter(leaves: leaves), roundPeriod: pending.roundPeriod,
            progress: progress ?? { _ in })
        let verb = stage.mode == .cacheFile ? "open" : "import"
        switch outcome {
        case .claimed:
            return
        case .changedOnDisk, .activityDetected:
            environment.logger.warning(
                "multihost takeover refused: another host wrote the pool during the claim",
                metadata: MultihostLogEvent.takeoverRefused.metadata(
                    pool: stage.name, hostID: environment.hostID, ["mmp.result": "claim_lost", "mmp.outcome": "\(outcome)"]))
            throw PoolError(
                .poolInUse,
                "cannot \(verb) '\(stage.name)': the multihost claim saw another host write the pool (\(outcome)); "
                    + "it is in use elsewhere. Export the pool on the other system, then run 'zpk import'.",
                pool: stage.name)
        case .notEnabled:
            throw PoolError(
                .poolInUse, "cannot \(verb) '\(stage.name)': multihost is not enabled in the pool's uberblock any more; "
                    + "another host changed it", pool: stage.name)
        case .devicesMissing(let counts):
            throw PoolError(
                .missingDevices,
                "cannot \(verb) '\(stage.name)': the multihost claim could not be written to a device\nthe pool "
                    + "configuration expects to be present (\(counts.issued) of \(counts.required) leaves open: "
                    + "\(stage.missing.joined(separator: ", "))).", pool: stage.name)
        case .writeFailed:
            throw PoolError(
                .ioFailure,
                "cannot \(verb) '\(stage.name)': I/O errors occurred while writing the multihost claim.\nClear the "
                    + "device errors, then run 'zpk import'.", pool: stage.name)
        case .interrupted:
            throw PoolError(.poolInUse, "cannot \(verb) '\(stage.name)': the multihost claim was interrupted", pool: stage.name)
        }
    }

    /// The whole open: leaves and uberblocks, activity check, MOS and host checks, claim, sync.
    func openStaged(
        config: NVList, mode: OpenMode, newName: String?, progress: (@Sendable (ActivityProgress) -> Void)?
    ) async throws -> Pool {
        var stage = try await BlockingIO.run { try self.openStageLeaves(config: config, mode: mode, newName: newName) }
        do {
            do {
                stage.pendingClaim = try await activityCheck(stage, progress: progress)
            } catch let error as PoolError where error.code != .poolInUse {
                throw stage.foreignPoolRefusal ?? error
            }
            // An OpenZFS pool: in use elsewhere was reported above; otherwise refuse it now.
            if let refusal = stage.foreignPoolRefusal { throw refusal }
            let frozen = stage
            let prepared = try await BlockingIO.run { try self.openStageLoad(frozen) }
            if let pending = frozen.pendingClaim {
                try await claim(frozen, pending, tree: prepared.core.io.tree, progress: progress)
            }
            return try await BlockingIO.run {
                let pool = try self.openStageClaim(prepared, faults: frozen.faults)
                self.recordInCacheFile(pool)
                return pool
            }
        } catch {
            stage.faults.close()
            throw error
        }
    }

    /// What stage 3 built: the in-core pool, not yet claimed.
    struct PreparedOpen: Sendable {
        var core: PoolCore
        var report: OpenReport
        var name: String
        var openName: String
        var stale: Bool
        var txg: TXG
    }

    /// Stage 3 (blocking): MOS, the trusted config, host checks; builds the in-core pool.
    func openStageLoad(_ stageIn: OpenStage) throws -> PreparedOpen {
        var stage = stageIn
        let name = stage.name, openName = stage.openName, poolGUID = stage.poolGUID, mode = stage.mode
        let inputTree = stage.inputTree
        let candidates = stage.candidates
        let newest = candidates[0]

        // 4. Read the MOS (and directory), rewinding if allowed.
        var io = VdevIO(poolName: name, tree: inputTree, devices: stage.devices)
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
                } else if stage.devices[leaf.guid] == nil {
                    attach(leaf, to: &stage)
                }
            }
        }
        let devices = stage.devices
        let missing = trusted.leaves.filter { devices[$0.guid] == nil }.map(\.path)
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
            if !force, ZPKImportCheck.forceRequired(lastState: lastState, lastHostID: lastHostID, localHostID: environment.hostID) {
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
        core.multihostTunables = environment.multihostTunables
        core.mosPointer = loaded.uberblock.rootBlockPointer
        core.directoryPointer = BlockPointers.decode(loaded.mos.uint64Array("objects_bp"))
        let report = OpenReport(
            configWasStale: stale, openedTXG: loaded.uberblock.txg,
            rewoundFrom: loaded.uberblock.txg < newest.txg ? newest.txg : nil, missingLeaves: missing)
        return PreparedOpen(core: core, report: report, name: name, openName: openName, stale: stale, txg: loaded.uberblock.txg)
    }

    /// Stage 5 (blocking): claim — this host, ACTIVE, every label rewritten — and register.
    func openStageClaim(_ prepared: PreparedOpen, faults: FaultTable) throws -> Pool {
        var core = prepared.core
        let openName = prepared.openName
        guard pools.withLock({ $0[openName] == nil }) else {
            throw PoolError(.poolExists, "a pool named '\(openName)' is already open on this host", pool: openName)
        }
        core.configDirty = true
        _ = try core.sync(now: environment.wallClockSeconds())
        let pool = Pool(core: core, report: prepared.report, environment: environment, faults: faults)
        let inserted = pools.withLock { pools -> Bool in
            guard pools[openName] == nil else { return false }
            pools[openName] = pool
            return true
        }
        guard inserted else {
            pool.shutDownMultihost()
            throw PoolError(.poolExists, "a pool named '\(openName)' is already open on this host", pool: openName)
        }
        poolSetChanged()
        environment.logger.info(
            "pool opened",
            metadata: [
                "pool.name": "\(openName)", "pool.previous_name": "\(prepared.name)", "pool.txg": "\(prepared.txg)",
                "pool.config_stale": "\(prepared.stale)",
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
