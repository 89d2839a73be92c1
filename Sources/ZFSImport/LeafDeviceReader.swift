// The I/O half of a health assessment: open each leaf path a pool's tree names (read-only) and
// read its four labels, as the kernel's `vdev_open` + label reads would; then hand the result
// to the pure `PoolHealth.evaluate`.

import Synchronization
import ZFSDevice
import ZFSFormat
import ZFSMultihost

/// Reads the labels of the leaf devices of pools.
public enum LeafDeviceReader {
    /// Opens every path read-only and reads its labels, on up to `concurrency` threads.
    ///
    /// A path that does not open (missing, a directory, no permission) becomes
    /// ``LeafDevice/cannotOpen(_:)`` with the reason. Blocks the calling thread.
    /// - Complexity: four 256 KiB reads per device.
    public static func read(paths: [String], concurrency: Int = ImportScanner.defaultConcurrency) -> [String: LeafDevice] {
        let results = Mutex([LeafDevice?](repeating: nil, count: paths.count))
        BlockingIO.forEach(count: paths.count, width: max(1, concurrency)) { index in
            let outcome = readOne(paths[index])
            results.withLock { $0[index] = outcome }
        }
        let outcomes = results.withLock { $0 }
        var map: [String: LeafDevice] = [:]
        for (path, outcome) in zip(paths, outcomes) {
            map[path] = outcome ?? .cannotOpen("not read")
        }
        return map
    }

    static func readOne(_ path: String) -> LeafDevice {
        let device: any BlockDevice
        do {
            device = try DeviceOpener.open(path: path, mode: .readOnly)
        } catch {
            return .cannotOpen(error.message)
        }
        defer { try? device.close() }
        return .opened(DeviceLabels(reading: device))
    }
}

extension PoolHealth {
    /// Reads the leaf devices `pool` needs and evaluates its health (read-only I/O, blocking).
    ///
    /// With `readingMOS` (the default), a load that gets past the uberblock, version and
    /// features is followed into the MOS, as the kernel's tryimport is: the MOS config is read
    /// from the selected uberblock (``MOSReader``), the leaves it names that the labels do not
    /// are read too, and the pool is evaluated again with it (``ConfigSource``).
    ///
    /// - Parameters:
    ///   - pool: a pool of `scan`.
    ///   - scan: the scan that found it (its labels carry any neighbor lists).
    ///   - localHostID: this host's hostid (``SystemHostID/current(environment:)``).
    ///   - tunables: this host's multihost tunables (the activity check's duration).
    ///   - readingMOS: whether to read the MOS; `false` judges from the labels alone.
    public static func assess(
        _ pool: PoolCandidate, in scan: ScanResult, localHostID: UInt64, tunables: MultihostTunables = MultihostTunables(),
        readingMOS: Bool = true
    ) -> PoolHealth {
        let neighbors = NeighborRecord.collect(for: pool, in: scan)
        var devices = LeafDeviceReader.read(paths: devicePaths(of: pool, neighbors: neighbors))
        let labelsOnly = evaluate(pool, devices: devices, localHostID: localHostID, neighbors: neighbors, tunables: tunables)
        guard readingMOS, labelsOnly.reachedMOS else { return labelsOnly }
        let mos = MOSReader.read(pool, from: labelsOnly.uberblock)
        if case .success(let config) = mos, let tree = config.config.list("vdev_tree") {
            let more = devicePaths(ofMOSTree: tree, labelTree: pool.root).filter { devices[$0] == nil }
            devices.merge(LeafDeviceReader.read(paths: more)) { old, _ in old }
        }
        return evaluate(pool, devices: devices, localHostID: localHostID, neighbors: neighbors, tunables: tunables, mos: mos)
    }
}
