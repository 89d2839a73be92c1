// VdevReader on in-memory children: mirrors fall back to the next child when the checksum
// rejects a copy; raidz1-3 read their columns where vdev_raidz_map_alloc puts them (layouts
// worked out by hand below) and rebuild up to nparity damaged or missing data columns.

import Testing
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSTestSupport

@Suite struct VdevReaderTests {
    static let start: UInt64 = 4 << 20

    /// A pool tree: one top-level vdev of `type` over `width` file leaves /m/0, /m/1, ….
    static func tree(_ type: String, width: Int, parity: UInt64 = 0) -> VdevNode {
        var top = NVList()
        top.set("type", .string(type))
        top.set("id", .uint64(0))
        top.set("guid", .uint64(100))
        top.set("ashift", .uint64(9))
        if parity > 0 { top.set("nparity", .uint64(parity)) }
        var presence: [VdevGUID: VdevNode.Presence] = [:]
        top.set(
            "children",
            .nvlistArray(
                (0..<width).map { i in
                    var leaf = NVList()
                    leaf.set("type", .string("file"))
                    leaf.set("id", .uint64(UInt64(i)))
                    leaf.set("guid", .uint64(UInt64(200 + i)))
                    leaf.set("path", .string("/m/\(i)"))
                    presence[VdevGUID(UInt64(200 + i))] = .found(path: "/m/\(i)", labelCount: 4)
                    return leaf
                }))
        var root = NVList()
        root.set("type", .string("root"))
        root.set("id", .uint64(0))
        root.set("guid", .uint64(1))
        root.set("children", .nvlistArray([top]))
        return VdevNode(config: root, presence: presence)
    }

    static func devices(_ width: Int) -> [InMemoryBlockDevice] {
        (0..<width).map { InMemoryBlockDevice.sparse(size: 16 << 20, path: "/m/\($0)") }
    }

    static func reader(_ root: VdevNode, _ devices: [InMemoryBlockDevice], missing: Set<Int> = []) -> VdevReader {
        VdevReader(root: root) { path in
            guard let index = Int(path.dropFirst(3)), !missing.contains(index) else { return nil }
            return devices[index]
        }
    }

    static func payload(_ count: Int, seed: UInt64) -> [UInt8] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }

    /// GF(2^8) doubling as vdev_raidz.c's VDEV_RAIDZ_MUL_2.
    static func double(_ x: UInt8) -> UInt8 { (x << 1) ^ (x & 0x80 != 0 ? 0x1d : 0) }

    /// P, Q, R of `data` columns (shorter columns zero-padded), each `length` bytes.
    static func parity(_ data: [[UInt8]], length: Int, count: Int) -> [[UInt8]] {
        var p = [UInt8](repeating: 0, count: length)
        var q = p
        var r = p
        for column in data {
            for i in 0..<length {
                let d = i < column.count ? column[i] : 0
                p[i] ^= d
                q[i] = double(q[i]) ^ d
                r[i] = double(double(r[i])) ^ d
            }
        }
        return Array([p, q, r].prefix(count))
    }

    /// Lays out `columns` as (child, offset, bytes).
    static func place(_ devices: [InMemoryBlockDevice], _ columns: [(Int, UInt64, [UInt8])]) {
        for (child, offset, bytes) in columns { devices[child].setBytes(bytes, at: start + offset) }
    }

    static func expecting(_ data: [UInt8]) -> ([UInt8]) -> String? {
        { $0 == data ? nil : "checksum mismatch" }
    }

    @Test func mirrorsFallBackToTheNextChildAndNameEveryFailure() throws {
        let devices = Self.devices(3)
        let data = Self.payload(1024, seed: 1)
        for device in devices { device.setBytes(data, at: Self.start + 0x2000) }
        devices[0].setBytes([UInt8](repeating: 0xAA, count: 100), at: Self.start + 0x2000)
        let reader = Self.reader(Self.tree("mirror", width: 3), devices, missing: [1])
        #expect(try reader.read(topLevel: 0, offset: 0x2000, size: 1024, verify: Self.expecting(data)) == data)
        #expect(reader.repairs.mirrorFallbacks == 1)
        devices[2].setBytes([0], at: Self.start + 0x2000 + 1023)
        do {
            _ = try reader.read(topLevel: 0, offset: 0x2000, size: 1024, verify: Self.expecting(data))
            Issue.record("a mirror with no good side was read")
        } catch {
            #expect(error.attempts.map(\.vdev) == ["/m/0", "/m/1", "/m/2"])
            #expect(error.attempts.allSatisfy { $0.offset == Self.start + 0x2000 })
            #expect(error.attempts[1].reason.contains("does not open"))
            #expect(error.attempts[0].reason == "checksum mismatch")
        }
        #expect(throws: BlockReadError.self) { try reader.read(topLevel: 1, offset: 0, size: 512, verify: { _ in nil }) }
    }

    /// raidz2 of 5 at offset 0, 3072 bytes: five columns of 2 sectors, P Q D D D on children 0-4.
    @Test func raidz2RebuildsUpToTwoDamagedOrMissingColumns() throws {
        let data = Self.payload(3072, seed: 2)
        let columns = (0..<3).map { Array(data[($0 * 1024)..<(($0 + 1) * 1024)]) }
        let parity = Self.parity(columns, length: 1024, count: 2)
        for damage in [[], [2], [4], [0, 3], [2, 4], [1, 2]] as [[Int]] {
            for missing in [false, true] {
                let devices = Self.devices(5)
                Self.place(devices, (0..<5).map { ($0, 0, $0 < 2 ? parity[$0] : columns[$0 - 2]) })
                var gone: Set<Int> = []
                for (n, child) in damage.enumerated() {
                    if missing && n == 0 { gone.insert(child) } else { devices[child].setBytes(Self.payload(700, seed: 9), at: Self.start + 100) }
                }
                let reader = Self.reader(Self.tree("raidz", width: 5, parity: 2), devices, missing: gone)
                let read = try reader.read(topLevel: 0, offset: 0, size: 3072, verify: Self.expecting(data))
                #expect(read == data, "damage \(damage), first missing \(missing)")
                // Only damage to data columns needs a rebuild.
                #expect(reader.repairs.raidzRebuilds == (damage.contains { $0 >= 2 } ? 1 : 0), "damage \(damage)")
            }
        }
        // Three damaged columns are more than raidz2 can rebuild: a typed error naming the raidz vdev.
        let devices = Self.devices(5)
        Self.place(devices, (0..<5).map { ($0, 0, $0 < 2 ? parity[$0] : columns[$0 - 2]) })
        for child in [1, 2, 3] { devices[child].setBytes([1, 2, 3], at: Self.start) }
        let reader = Self.reader(Self.tree("raidz", width: 5, parity: 2), devices)
        #expect {
            try reader.read(topLevel: 0, offset: 0, size: 3072, verify: Self.expecting(data))
        } throws: { error in
            let error = error as! BlockReadError
            return error.code == .unreadable && error.attempts.last?.vdev == "raidz2-0" && error.attempts.last?.offset == 0
        }
    }

    /// raidz2 of 5, offset sector 7, 4 sectors: b = 7, f = 2, o = 512; q = 1, r = 1, bc = 3:
    /// P on child 2 and Q on child 3 (2 sectors at 512), D0 on child 4 (2 sectors at 512),
    /// D1 on child 0 and D2 on child 1 (1 sector at 1024: wrapped).
    @Test func raidzColumnsWrapAroundTheChildren() throws {
        let data = Self.payload(2048, seed: 3)
        let d = [Array(data[0..<1024]), Array(data[1024..<1536]), Array(data[1536..<2048])]
        let parity = Self.parity(d, length: 1024, count: 2)
        for damaged in [nil, 4, 0, 1] as [Int?] {
            let devices = Self.devices(5)
            Self.place(devices, [(2, 512, parity[0]), (3, 512, parity[1]), (4, 512, d[0]), (0, 1024, d[1]), (1, 1024, d[2])])
            if let damaged { devices[damaged].setBytes(Self.payload(2048, seed: 4), at: Self.start) }
            let reader = Self.reader(Self.tree("raidz", width: 5, parity: 2), devices)
            #expect(try reader.read(topLevel: 0, offset: 7 * 512, size: 2048, verify: Self.expecting(data)) == data)
        }
    }

    /// raidz3 of 6 at offset 0, 3 data sectors: P Q R D D D, one sector each; three lost columns.
    @Test func raidz3RebuildsThreeColumns() throws {
        let data = Self.payload(1536, seed: 5)
        let d = (0..<3).map { Array(data[($0 * 512)..<(($0 + 1) * 512)]) }
        let parity = Self.parity(d, length: 512, count: 3)
        for lost in [[3, 4, 5], [0, 3, 5], [1, 2, 4]] {
            let devices = Self.devices(6)
            Self.place(devices, (0..<6).map { ($0, 0, $0 < 3 ? parity[$0] : d[$0 - 3]) })
            let reader = Self.reader(Self.tree("raidz", width: 6, parity: 3), devices, missing: Set(lost))
            #expect(try reader.read(topLevel: 0, offset: 0, size: 1536, verify: Self.expecting(data)) == data, "lost \(lost)")
        }
    }

    /// raidz1 at an odd MiB swaps the first two columns (vdev_raidz_map_alloc): 3 children,
    /// offset 1 MiB (b = 2048, f = 2, o = 682 sectors), 2 sectors: P on child 0 at o + 1,
    /// D0 on child 2 at o, D1 on child 1 at o + 1.
    @Test func raidz1SwapsItsFirstColumnsAtOddMegabytes() throws {
        let data = Self.payload(1024, seed: 6)
        let d = [Array(data[0..<512]), Array(data[512..<1024])]
        let p = Self.parity(d, length: 512, count: 1)[0]
        let o: UInt64 = 682 * 512
        for damaged in [nil, 2, 1, 0] as [Int?] {
            let devices = Self.devices(3)
            Self.place(devices, [(0, o + 512, p), (2, o, d[0]), (1, o + 512, d[1])])
            if let damaged { devices[damaged].setBytes(Self.payload(4096, seed: 7), at: Self.start + o - 1024) }
            let reader = Self.reader(Self.tree("raidz", width: 3, parity: 1), devices)
            #expect(try reader.read(topLevel: 0, offset: 1 << 20, size: 1024, verify: Self.expecting(data)) == data)
        }
    }
}
