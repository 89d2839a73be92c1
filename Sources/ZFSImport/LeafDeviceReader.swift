// The I/O half of a health assessment: open each leaf path a pool's tree names (read-only) and
// read its four labels, as the kernel's `vdev_open` + label reads would; then hand the result
// to the pure `PoolHealth.evaluate`.

import Synchronization
import ZFSDevice
import ZFSFormat

/// Reads the labels of the leaf devices of pools.
public enum LeafDeviceReader {
    /// Opens every path read-only and reads its labels, on up to `concurrency` threads.
    ///
    /// A path that does not open (missing, a directory, no permission) becomes
    /// ``LeafDevice/cannotOpen(_:)`` with the reason. Blocks the calling thread.
    /// - Complexity: four 256 KiB reads per device.
    public static func read(paths: [String], concurrency: Int = ImportScanner.defaultConcurrency) -> [String: LeafDevice] {
        let results = Mutex([LeafDevice?](repeating: nil, count: paths.count))
        BlockingWorkers.forEach(count: paths.count, width: max(1, concurrency)) { index in
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
    /// - Parameters:
    ///   - pool: a pool of `scan`.
    ///   - scan: the scan that found it (its labels carry any neighbor lists).
    ///   - localHostID: this host's hostid (``SystemHostID/current(environment:)``).
    public static func assess(_ pool: PoolCandidate, in scan: ScanResult, localHostID: UInt64) -> PoolHealth {
        let neighbors = NeighborRecord.collect(for: pool, in: scan)
        let devices = LeafDeviceReader.read(paths: devicePaths(of: pool, neighbors: neighbors))
        return evaluate(pool, devices: devices, localHostID: localHostID, neighbors: neighbors)
    }
}
