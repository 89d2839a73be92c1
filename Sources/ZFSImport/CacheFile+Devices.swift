// From a cache file to import candidates: what `zpool import -c FILE` starts from
// (`zutil_import.c:zpool_find_import_cached`, `spec/import-and-mmp.md` §1.12).
//
// libzutil does not scan in this mode. For each entry (after the name/guid filter) it adds
// `cachefile` = FILE to the config and hands it to the kernel's tryimport, which opens every
// leaf at the path the entry names and validates its label (`vdev_validate`: the label's
// `guid` and `pool_guid` must be the leaf's and the pool's). We do the userland half: read the
// labels of exactly the devices the entry names, in parallel, and mark each leaf found or not,
// with a note saying why not. The result is a ``ScanResult`` like a directory scan's, so a
// listing or health pass works on either. If a device moved, zpool retries in scan mode over
// the directories of the entry's leaf paths (`discover_cached_paths`):
// ``CacheFile/Entry/searchDirectories`` gives them, to scan with ``ImportScanner`` and a guid
// selector.
//
// Invariants: only the devices named by the selected entries are opened, read-only; the cache
// file's config is not merged with the labels (that is the kernel's job after it reads the MOS).

import Logging
import Synchronization
import ZFSDevice
import ZFSFormat

extension CacheFile.Entry {
    /// Every leaf path of the entry's vdev tree, depth first, each once.
    public var leafPaths: [String] {
        guard let tree = vdevTree else { return [] }
        var paths: [String] = []
        var seen = Set<String>()
        for leaf in VdevNode(config: tree).leaves {
            if let path = leaf.path, seen.insert(path).inserted { paths.append(path) }
        }
        return paths
    }

    /// The directories of the leaf paths, in order, each once: where `zpool import -c` looks
    /// for the pool's devices when opening them by path failed (`discover_cached_paths`).
    public var searchDirectories: [String] {
        var directories: [String] = []
        for path in leafPaths {
            let directory = CacheFile.split(path).directory
            if !directories.contains(directory) { directories.append(directory) }
        }
        return directories
    }
}

extension CacheFile {
    /// Reads the labels of the devices the entries name and returns the pools as import
    /// candidates, as `zpool import -c FILE` sees them before the kernel refresh.
    ///
    /// Each candidate's ``PoolCandidate/config`` is the entry's config plus `cachefile` =
    /// `path` (what libzutil hands to the kernel); ``PoolCandidate/root`` marks each leaf
    /// ``VdevNode/Presence/found(path:labelCount:)`` when the device at its path carries a label
    /// with the leaf's guid and the pool's guid; ``PoolCandidate/notes`` say what is wrong with
    /// every other leaf, and whether the labels are newer than the entry (a stale cache file).
    ///
    /// - Parameters:
    ///   - path: the cache file's path, recorded in each config as `cachefile`.
    ///   - selector: only the pool with this name or guid (`zpool import -c FILE POOL`).
    ///   - concurrency: threads reading labels; default 2 × online CPUs.
    ///   - minimumFileSize: regular files smaller than this are not opened (64 MiB).
    ///   - logger: one debug line per device.
    /// - Returns: one ``ScanResult/pools`` entry per selected cache entry, in file order;
    ///   ``ScanResult/devices`` lists every device opened, with its labels.
    /// - Complexity: one `stat` and four 112 KiB reads per distinct leaf path.
    public func scanDevices(
        path: String, selector: PoolSelector? = nil, concurrency: Int = ImportScanner.defaultConcurrency,
        minimumFileSize: UInt64 = ImportScanner.minimumDeviceSize, logger: Logger = Logger.current
    ) -> ScanResult {
        let selected = entries.filter { entry in selector.map { entry.matches($0) } ?? true }
        var paths: [String] = []
        var index: [String: Int] = [:]
        for entry in selected {
            for leafPath in entry.leafPaths where index[leafPath] == nil {
                index[leafPath] = paths.count
                paths.append(leafPath)
            }
        }
        let outcomes = Mutex([ImportScanner.ProbeOutcome?](repeating: nil, count: paths.count))
        let jobs = paths
        BlockingIO.forEach(count: jobs.count, width: concurrency) { i in
            let outcome = ImportScanner.probe(jobs[i], hint: .unknown, minimumFileSize: minimumFileSize)
            outcomes.withLock { $0[i] = outcome }
        }
        let probed = outcomes.withLock { $0 }

        var devices = paths.map { ScannedDevice(path: $0, searchOrder: 0) }
        var permissionDenied = false
        for (i, outcome) in probed.enumerated() {
            switch outcome {
            case nil: devices[i].note = .vanished
            case .skipped(let note, let denied)?:
                devices[i].note = note
                permissionDenied = permissionDenied || denied
            case .probed(let probe)?:
                devices[i].probe = probe
                if probe.config == nil || probe.labelCount == 0 { devices[i].note = .noLabel }
            }
        }
        var pools: [PoolCandidate] = []
        for entry in selected {
            pools.append(candidate(entry, cacheFile: path, devices: &devices, index: index))
        }
        for device in devices {
            logger.debug(
                "cache file scan: device",
                metadata: [
                    "zfs.cache.file": "\(path)", "zfs.import.path": "\(device.path)",
                    "zfs.import.note": "\(device.note.map { "\($0)" } ?? "-")",
                    "zfs.import.labels": "\(device.labelCount)",
                ])
        }
        return ScanResult(pools: pools, allPools: pools, devices: devices, permissionDenied: permissionDenied)
    }

    private func candidate(
        _ entry: Entry, cacheFile: String, devices: inout [ScannedDevice], index: [String: Int]
    ) -> PoolCandidate {
        var config = entry.config
        config.set("cachefile", .string(cacheFile))
        let poolGUID = entry.poolGUID ?? PoolGUID(0)
        let configTXG = entry.config.uint64("txg") ?? 0
        var notes: [String] = []
        if entry.poolGUID == nil { notes.append("the cache file's entry '\(entry.name)' has no pool_guid") }
        if let inner = entry.poolName, inner != entry.name {
            notes.append("the entry is named '\(entry.name)' but its config names the pool '\(inner)' (imported under a temporary name?)")
        }
        guard let tree = entry.vdevTree else {
            notes.append("the cache file's entry '\(entry.name)' has no vdev_tree; nothing to open")
            return PoolCandidate(
                name: entry.poolName ?? entry.name, guid: poolGUID, version: entry.config.uint64("version") ?? SPAVersion.initial,
                state: PoolState(rawValue: entry.config.uint64("state") ?? 0), txg: TXG(configTXG),
                hostID: entry.config.uint64("hostid"), hostname: entry.config.string("hostname"),
                comment: entry.config.string("comment"), config: config, root: VdevNode(config: NVList()),
                topLevelVdevs: [], memberDevices: [], notes: notes)
        }

        var presence: [VdevGUID: VdevNode.Presence] = [:]
        var members: [PoolCandidate.MemberDevice] = []
        var topLevels: [PoolCandidate.TopLevelVdev] = []
        var newestLabelTXG: UInt64 = 0
        let root = VdevNode(config: tree)
        for top in root.children {
            var txgs: [TXG] = []
            var topPaths: [String] = []
            for leaf in top.leaves {
                guard let leafPath = leaf.path else {
                    if leaf.type != .draidSpare && !leaf.type.isPlaceholder {
                        notes.append("leaf vdev \(leaf.guid) has no path in the cache file; it cannot be opened")
                    }
                    continue
                }
                guard let i = index[leafPath] else { continue }
                let device = devices[i]
                guard let probe = device.probe, let label = probe.config, probe.labelCount > 0 else {
                    let why = device.note == .vanished ? "nothing is at that path" : device.note.map { "\($0)" } ?? "no label"
                    notes.append("leaf vdev \(leaf.guid) at \(leafPath): \(why)")
                    continue
                }
                let labelGUID = label.uint64("guid")
                let labelPool = label.uint64("pool_guid")
                guard labelGUID == leaf.guid.rawValue, labelPool == poolGUID.rawValue else {
                    let owner = label.string("name").map { "pool '\($0)'" } ?? "no pool"
                    notes.append(
                        "leaf vdev \(leaf.guid) at \(leafPath): the device carries vdev \(labelGUID.map(String.init) ?? "?") of \(owner) (guid \(labelPool.map(String.init) ?? "none")); the cache file is stale or the device was reused")
                    if labelPool != poolGUID.rawValue && devices[i].note == nil { devices[i].note = .filteredOut }
                    continue
                }
                let labelTXG = label.uint64("txg") ?? 0
                let topGUID = VdevGUID(label.uint64("top_guid") ?? top.guid.rawValue)
                presence[leaf.guid] = .found(path: leafPath, labelCount: probe.labelCount)
                devices[i].role = .poolMember(pool: poolGUID, topLevel: topGUID, vdev: leaf.guid, txg: TXG(labelTXG))
                members.append(
                    PoolCandidate.MemberDevice(
                        path: leafPath, guid: leaf.guid, topLevelGUID: topGUID, txg: TXG(labelTXG),
                        labelCount: probe.labelCount, searchOrder: 0))
                if !txgs.contains(TXG(labelTXG)) { txgs.append(TXG(labelTXG)) }
                topPaths.append(leafPath)
                // A label older than the cache entry is normal: OpenZFS rewrites a leaf's label
                // only when that vdev's config is dirty, but rewrites the cache on any pool
                // config change (an aux device added or removed, say). Only newer is a problem.
                newestLabelTXG = max(newestLabelTXG, labelTXG)
            }
            topLevels.append(
                PoolCandidate.TopLevelVdev(
                    guid: top.guid, id: top.id, bestTXG: txgs.max() ?? TXG(configTXG), txgs: txgs, devicePaths: topPaths))
        }
        if newestLabelTXG > configTXG {
            notes.append("the devices' labels are from txg \(newestLabelTXG), newer than the cache file's txg \(configTXG): the cache file is stale; the pool's config may have changed since it was written")
        }
        if let version = entry.config.uint64("version"), !SPAVersion.isSupported(version) {
            notes.append("the pool's on-disk version \(version) is not supported by this software (1–28 and 5000 are)")
        }
        let hostID = entry.config.uint64("hostid")
        return PoolCandidate(
            name: entry.poolName ?? entry.name, guid: poolGUID, version: entry.config.uint64("version") ?? SPAVersion.initial,
            state: PoolState(rawValue: entry.config.uint64("state") ?? 0), txg: TXG(configTXG),
            hostID: hostID, hostname: entry.config.string("hostname"), comment: entry.config.string("comment"),
            config: config, root: VdevNode(config: tree, presence: presence), topLevelVdevs: topLevels,
            memberDevices: members, notes: notes)
    }
}
