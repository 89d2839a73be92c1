// Test doubles for the pool host: a rack of in-memory leaves addressed by path, a wrapper that
// "loses power" after a number of writes (the last one torn), and temporary directories of
// sparse files for the interop tests.

import Foundation
import Synchronization
import Testing
import ZFSDevice
import ZFSFormat
import ZFSTestSupport

@testable import ZFSPool

/// In-memory leaves by path; optionally each wrapped in a `PowerCutDevice` sharing one budget.
final class DeviceRack: Sendable {
    let devices: [String: InMemoryBlockDevice]
    let power = PowerSupply()

    init(paths: [String], size: UInt64 = 64 << 20) {
        var devices: [String: InMemoryBlockDevice] = [:]
        for path in paths { devices[path] = InMemoryBlockDevice(size: size, path: path) }
        self.devices = devices
    }

    /// An environment whose devices count writes against `power`.
    func environment(hostID: UInt64 = 0x1111_1111, hostname: String = "host-a", clock: UInt64 = 1_700_000_000) -> PoolHost.Environment {
        let devices = self.devices
        let power = self.power
        return PoolHost.Environment(
            hostID: hostID, hostname: hostname, wallClockSeconds: { clock },
            openDevice: { path in
                guard let device = devices[path] else {
                    throw DeviceError(code: .notFound, message: "no such device \(path)", path: path)
                }
                return PowerCutDevice(device, power: power)
            })
    }

    var writeCount: Int {
        devices.values.reduce(0) { $0 + $1.calls.filter(\.isWrite).count }
    }
}

/// A shared write budget: `nil` = unlimited; once spent, the next write is torn (`tornFraction`
/// of it lands) and every later write or flush fails, as after a power cut.
final class PowerSupply: Sendable {
    struct State {
        var budget: Int?
        var writes = 0
        var tornFraction = 0.5
        var isOff = false
    }
    let state = Mutex(State())

    func cut(after writes: Int, tornFraction: Double) {
        state.withLock {
            $0.budget = writes
            $0.writes = 0
            $0.tornFraction = tornFraction
            $0.isOff = false
        }
    }

    var writesSinceArming: Int { state.withLock { $0.writes } }

    /// How many bytes of a `count`-byte write land; nil = all.
    func admit(_ count: Int) -> Int? {
        state.withLock { s in
            if s.isOff { return 0 }
            s.writes += 1
            guard let budget = s.budget, s.writes > budget else { return nil }
            s.isOff = true
            return Int(Double(count) * s.tornFraction)
        }
    }

    var isOff: Bool { state.withLock { $0.isOff } }
}

struct PowerCutDevice: BlockDevice {
    let base: InMemoryBlockDevice
    let power: PowerSupply
    init(_ base: InMemoryBlockDevice, power: PowerSupply) {
        self.base = base
        self.power = power
    }
    var path: String { base.path }
    var sizeInBytes: UInt64 { base.sizeInBytes }
    var isBlockDevice: Bool { false }

    func read(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        try base.read(into: buffer, atAbsoluteOffset: offset)
    }

    func write(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        if let landing = power.admit(buffer.count) {
            if landing > 0 {
                try base.write(from: UnsafeRawBufferPointer(rebasing: buffer[0..<landing]), atAbsoluteOffset: offset)
            }
            throw DeviceError(code: .ioError, message: "power cut while writing \(path)", path: path, offset: offset)
        }
        try base.write(from: buffer, atAbsoluteOffset: offset)
    }

    func flush() throws(DeviceError) {
        if power.isOff { throw DeviceError(code: .ioError, message: "power cut: flush of \(path) failed", path: path) }
        try base.flush()
    }
}

/// Random objects: name → bytes.
func randomObjects(count: Int, maximumSize: Int, prefix: String, seed: UInt64) -> [String: [UInt8]] {
    var random = SplitMix64(seed: seed)
    var result: [String: [UInt8]] = [:]
    for index in 0..<count {
        let size = Int.random(in: 0...maximumSize, using: &random)
        var bytes = [UInt8](repeating: 0, count: size)
        var word = random.next()
        for i in 0..<size {
            if i % 8 == 0 { word = random.next() }
            bytes[i] = UInt8(truncatingIfNeeded: word >> (UInt64(i % 8) * 8))
        }
        result["\(prefix)-\(index)"] = bytes
    }
    return result
}

/// Expects every object of `expected` (and nothing else) in `pool`, byte for byte.
func expectObjects(_ pool: Pool, _ expected: [String: [UInt8]], sourceLocation: SourceLocation = #_sourceLocation) async throws {
    #expect(pool.list().map(\.name) == expected.keys.sorted(), sourceLocation: sourceLocation)
    for (name, bytes) in expected {
        let read = try await pool.get(name)
        #expect(read == bytes, "object \(name)", sourceLocation: sourceLocation)
    }
}

/// A fresh `mktemp -d` directory of sparse files, removed on deinit.
final class SparseFiles {
    let directory: String
    let paths: [String]

    init(count: Int, size: UInt64, prefix: String = "leaf") throws {
        var template = Array((NSTemporaryDirectory() + "zpk-pool-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw PoolError(.ioFailure, "mkdtemp failed") }
        directory = String(cString: made)
        paths = (0..<count).map { "\(String(cString: made))/\(prefix)\($0).img" }
        for path in paths {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            guard truncate(path, off_t(size)) == 0 else { throw PoolError(.ioFailure, "truncate \(path) failed") }
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }
}
