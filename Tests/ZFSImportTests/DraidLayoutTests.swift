// dRAID: the permutation maps against OpenZFS's recorded checksums (every children count),
// the geometry checks on damaged config values, the group/row/offset layout against the
// worked example in vdev_draid.c's comment, and VdevReader on in-memory children: plain
// reads, rebuilds from parity (missing and damaged children, blocks across a group
// boundary), reads through a distributed spare, and typed errors.

import Testing
import ZFSDevice
import ZFSFormat
import ZFSTestSupport

@testable import ZFSImport

@Suite struct DraidLayoutTests {
    // MARK: Permutation maps

    /// Each generated map is a set of permutations whose checksum word is the one OpenZFS
    /// records for that children count; a map from any other seed is refused.
    @Test(arguments: DraidPermutations.childrenRange)
    func permutationMapMatchesTheRecordedChecksum(_ children: Int) throws {
        let map = try DraidPermutations.map(children: children)
        #expect(map.count == DraidPermutations.rowCount(children: children) * children)
        #expect(DraidPermutations.problem(in: map, children: children) == nil)
        let recorded = try #require(DraidPermutations.recorded(children: children))
        let wrong = DraidPermutations.generate(children: children, seed: recorded.seed ^ 1)
        #expect(DraidPermutations.problem(in: wrong, children: children) != nil, "a map from the wrong seed passes for \(children) children")
    }

    /// A generator that differs from xoroshiro128++ in one rotation is caught by the checksums.
    @Test func aWrongGeneratorIsCaught() throws {
        var generator = DraidPermutations.Generator(seed: 1)
        let first = generator.next()
        // xoroshiro128++ from (0xd7a1d5eed, 1): rotl(s0 + s1, 17) + s0.
        let s0: UInt64 = 0xd7a1d5eed
        let sum = s0 &+ 1
        #expect(first == ((sum << 17) | (sum >> 47)) &+ s0)
        // Shuffle the identity of 7 children with a swapped step order: the checksum rejects it.
        let recorded = try #require(DraidPermutations.recorded(children: 7))
        var bad = DraidPermutations.generate(children: 7, seed: recorded.seed)
        bad.swapAt(0, 2)
        #expect(DraidPermutations.problem(in: bad, children: 7) != nil)
        #expect(throws: FormatError.self) { try DraidPermutations.map(children: 1) }
        #expect(throws: FormatError.self) { try DraidPermutations.map(children: 256) }
    }

    // MARK: Geometry

    @Test func absurdConfigValuesAreTypedErrors() {
        let cases: [(parity: Int, data: Int, spares: Int, children: Int, groups: Int, ashift: Int)] = [
            (0, 2, 0, 4, 2, 12), (4, 2, 0, 8, 4, 12), (1, 2, 0, 1, 1, 12), (1, 2, 0, 256, 3, 12), (1, 2, 0, 100_000, 3, 12),
            (1, 0, 0, 4, 1, 12), (1, 1 << 40, 0, 4, 1, 12), (1, 2, 2, 4, 1, 12), (1, 2, 101, 255, 1, 12),
            (1, 2, 0, 6, 0, 12), (1, 2, 0, 6, 256, 12), (1, 2, 0, 6, 1 << 40, 12), (1, 3, 0, 6, 1, 12),
            (1, 2, 0, 6, 2, 8), (1, 2, 0, 6, 2, 40),
        ]
        for c in cases {
            #expect(throws: FormatError.self, "\(c)") {
                try DraidGeometry(parity: c.parity, data: c.data, spares: c.spares, children: c.children, groups: c.groups, ashift: c.ashift)
            }
        }
        var config = NVList()
        config.set("nparity", .uint64(1))
        config.set("draid_ndata", .uint64(2))
        config.set("draid_nspares", .uint64(1))
        config.set("ashift", .uint64(12))
        #expect(throws: FormatError.self) { try DraidGeometry(config: config, children: 4) }  // no draid_ngroups
        config.set("draid_ngroups", .uint64(.max))
        #expect(throws: FormatError.self) { try DraidGeometry(config: config, children: 4) }
        config.set("draid_ngroups", .uint64(1))
        #expect((try? DraidGeometry(config: config, children: 4))?.description == "draid1:2d:4c:1s")
    }

    @Test func namesParseAndPrint() throws {
        for name in ["draid1:3d:7c:1s", "draid2:4d:11c:2s", "draid3:8d:14c:2s", "draid1:1d:2c:0s"] {
            #expect(try DraidGeometry(name: name).description == name)
        }
        #expect(try DraidGeometry(name: "draid1:8d:14c:2s").groups == 4)
        for bad in ["draid", "raidz1:3d:7c:1s", "draid1:3d:7c", "draid1:xd:7c:1s", "draid1:3d:999c:1s", "draid1:3d:4c:1s"] {
            #expect(throws: FormatError.self, "\(bad)") { try DraidGeometry(name: bad) }
        }
    }

    /// The example of vdev_draid.c's comment: 14 children, 2 spares, groups of 9 (8 + 1),
    /// 4 groups in 3 rows per slice. Group 1 starts at disk position 9 of row 0 and wraps to
    /// position 0 of row 1; group 2 starts at position 6 of row 1; group 4 is the first of
    /// slice 1 (rows 3–5), which uses permutation 1: base row 0 rotated by 1.
    @Test func groupsRowsAndSlicesFollowTheWorkedExample() throws {
        let geometry = try DraidGeometry(name: "draid1:8d:14c:2s", ashift: 12)
        let map = try DraidPermutations.map(children: 14)
        let row: UInt64 = 16 << 20
        func child(_ slice: UInt64, _ position: Int) -> Int { (Int(map[position]) + Int(slice)) % 14 }
        #expect(geometry.groupByteCount == 144 << 20)
        #expect(geometry.sliceByteCountPerDisk == 3 * row)
        // One full stripe (8 data sectors + parity) at the start of each group.
        for (group, slice, start, firstOffset, wrapAt) in [
            (0, 0 as UInt64, 0, 0 as UInt64, 9), (1, 0, 9, 0, 3), (2, 0, 6, row, 6), (3, 0, 3, 2 * row, 9), (4, 1, 0, 3 * row, 9),
        ] {
            let offset = UInt64(group) * geometry.groupByteCount
            let rows = try geometry.rows(offset: offset, size: 8 << 12, map: map)
            try #require(rows.count == 1)
            let columns = rows[0].columns
            #expect(columns.count == 9)
            for (i, column) in columns.enumerated() {
                #expect(column.child == child(slice, (start + i) % 12), "group \(group) column \(i)")
                #expect(column.offset == firstOffset + (i >= wrapAt ? row : 0), "group \(group) column \(i)")
                #expect(column.size == 4096)
            }
        }
        // Stripe 5 of group 0: 5 sectors down every column.
        let fifth = try geometry.rows(offset: 5 * 9 << 12, size: 4096, map: map)
        #expect(fifth[0].columns.map(\.offset) == [UInt64](repeating: 5 << 12, count: 9))
        // One data sector: parity and the first data column hold a sector, the rest are empty.
        #expect(fifth[0].columns.map(\.size) == [4096, 4096] + [Int](repeating: 0, count: 7))
        // The spare positions 12 and 13 are never in a group; spare 0 owns position 13.
        #expect(geometry.spareTarget(spare: 0, offset: 0, map: map) == child(0, 13))
        #expect(geometry.spareTarget(spare: 1, offset: 3 * row + 5, map: map) == child(1, 12))
        #expect(geometry.spareTarget(spare: 2, offset: 0, map: map) == nil)
        // Misaligned offsets and odd sizes are refused.
        #expect(throws: FormatError.self) { try geometry.rows(offset: 4096, size: 4096, map: map) }
        #expect(throws: FormatError.self) { try geometry.rows(offset: 0, size: 1000, map: map) }
        #expect(throws: FormatError.self) { try geometry.rows(offset: 0, size: 32 << 20, map: map) }
        #expect(throws: FormatError.self) { try geometry.rows(offset: 9 << 60, size: 4096, map: map) }
    }

    /// A block that runs past its group's end: the first row takes the whole stripes left in
    /// the group, the second starts the next group.
    @Test func aBlockAcrossAGroupBoundaryTakesTwoRows() throws {
        let geometry = try DraidGeometry(name: "draid2:3d:7c:1s", ashift: 12)
        let map = try DraidPermutations.map(children: 7)
        let stripe = UInt64(geometry.groupWidth) << 12
        let offset = geometry.groupByteCount - 2 * stripe
        let rows = try geometry.rows(offset: offset, size: 8 * 3 << 12, map: map)
        try #require(rows.count == 2)
        #expect(rows[0].dataOffset == 0 && rows[0].dataSize == 6 << 12)
        #expect(rows[1].dataOffset == 6 << 12 && rows[1].dataSize == 18 << 12)
        #expect(Set(rows[0].columns.map(\.child)).count == 5)
        #expect(rows[1].columns.allSatisfy { $0.size == 6 * 4096 })
    }

    // MARK: Reading

    static let start: UInt64 = 4 << 20

    /// A pool tree of one dRAID named `name`; child `spared` (if any) is a spare vdev of its
    /// leaf and distributed spare `draid<p>-0-0`.
    static func tree(_ geometry: DraidGeometry, spared: Int? = nil, spareID: UInt64? = 0) -> VdevNode {
        var top = NVList()
        top.set("type", .string("draid"))
        top.set("id", .uint64(0))
        top.set("guid", .uint64(100))
        top.set("ashift", .uint64(UInt64(geometry.ashift)))
        top.set("nparity", .uint64(UInt64(geometry.parity)))
        top.set("draid_ndata", .uint64(UInt64(geometry.data)))
        top.set("draid_nspares", .uint64(UInt64(geometry.spares)))
        top.set("draid_ngroups", .uint64(UInt64(geometry.groups)))
        var presence: [VdevGUID: VdevNode.Presence] = [:]
        top.set(
            "children",
            .nvlistArray(
                (0..<geometry.children).map { i in
                    var leaf = NVList()
                    leaf.set("type", .string("file"))
                    leaf.set("id", .uint64(UInt64(i)))
                    leaf.set("guid", .uint64(UInt64(200 + i)))
                    leaf.set("path", .string("/m/\(i)"))
                    presence[VdevGUID(UInt64(200 + i))] = .found(path: "/m/\(i)", labelCount: 4)
                    guard i == spared else { return leaf }
                    leaf.set("id", .uint64(0))
                    var spare = NVList()
                    spare.set("type", .string("dspare"))
                    spare.set("id", .uint64(1))
                    spare.set("guid", .uint64(900))
                    spare.set("path", .string("draid\(geometry.parity)-0-\(spareID ?? 99)"))
                    if let spareID { spare.set("spare_id", .uint64(spareID)) }
                    spare.set("top_guid", .uint64(100))
                    var parent = NVList()
                    parent.set("type", .string("spare"))
                    parent.set("id", .uint64(UInt64(i)))
                    parent.set("guid", .uint64(800))
                    parent.set("children", .nvlistArray([leaf, spare]))
                    return parent
                }))
        var root = NVList()
        root.set("type", .string("root"))
        root.set("guid", .uint64(1))
        root.set("children", .nvlistArray([top]))
        return VdevNode(config: root, presence: presence)
    }

    /// Writes `data` at `offset` as OpenZFS would: each row's data columns (short and empty
    /// ones zero-filled to the parity size) and its parity. Returns the rows.
    @discardableResult
    static func write(_ data: [UInt8], at offset: UInt64, _ geometry: DraidGeometry, _ devices: [InMemoryBlockDevice]) throws -> [DraidRow] {
        let map = try DraidPermutations.map(children: geometry.children)
        let rows = try geometry.rows(offset: offset, size: UInt64(data.count), map: map)
        for row in rows {
            let columns = row.columns
            var at = row.dataOffset
            var dataColumns: [[UInt8]] = []
            for column in columns.dropFirst(row.parity) {
                dataColumns.append(Array(data[at..<at + column.size]))
                at += column.size
            }
            let parity = VdevReaderTests.parity(dataColumns, length: columns[0].size, count: row.parity)
            for (i, column) in columns.enumerated() {
                var bytes = i < row.parity ? parity[i] : dataColumns[i - row.parity]
                bytes += [UInt8](repeating: 0, count: columns[0].size - bytes.count)
                devices[column.child].setBytes(bytes, at: start + column.offset)
            }
        }
        return rows
    }

    static func devices(_ count: Int) -> [InMemoryBlockDevice] {
        (0..<count).map { InMemoryBlockDevice.sparse(size: 512 << 20, path: "/m/\($0)") }
    }

    /// draid2:3d:7c:1s, ashift 12: blocks of 1, 5 and 24 sectors (the last across a group
    /// boundary), each read plainly, then with every single child and every pair of children
    /// missing or damaged; three lost children are a typed error naming the vdev.
    @Test(arguments: [(0 as UInt64, 1), (15, 5), (4094, 24)])
    func draid2ReadsAndRebuilds(_ stripe: UInt64, _ sectors: Int) throws {
        let geometry = try DraidGeometry(name: "draid2:3d:7c:1s", ashift: 12)
        let offset = stripe * (UInt64(geometry.groupWidth) << 12)
        let data = VdevReaderTests.payload(sectors << 12, seed: stripe)
        let clean = Self.devices(7)
        let rows = try Self.write(data, at: offset, geometry, clean)
        #expect(rows.count == (sectors == 24 ? 2 : 1))
        let used = Set(rows.flatMap { $0.columns.filter { $0.size > 0 }.map(\.child) })
        let plain = VdevReader(root: Self.tree(geometry)) { clean[Int($0.dropFirst(3))!] }
        #expect(try plain.read(topLevel: 0, offset: offset, size: data.count, verify: VdevReaderTests.expecting(data)) == data)
        #expect(plain.repairs.draidRebuilds == 0)
        let pairs = (0..<7).flatMap { a in (a..<7).map { b in Set([a, b]) } }
        for lost in pairs {
            for missing in [false, true] {
                let devices = Self.devices(7)
                try Self.write(data, at: offset, geometry, devices)
                if !missing {
                    for child in lost { for row in rows { for column in row.columns where column.child == child && column.size > 0 {
                        devices[child].setBytes(VdevReaderTests.payload(column.size, seed: 7), at: Self.start + column.offset)
                    } } }
                }
                let reader = VdevReader(root: Self.tree(geometry)) { path in
                    let index = Int(path.dropFirst(3))!
                    return missing && lost.contains(index) ? nil : devices[index]
                }
                let read = try reader.read(topLevel: 0, offset: offset, size: data.count, verify: VdevReaderTests.expecting(data))
                #expect(read == data, "lost \(lost), missing \(missing)")
                let touchesData = rows.contains { row in row.columns.dropFirst(2).contains { $0.size > 0 && lost.contains($0.child) } }
                #expect(reader.repairs.draidRebuilds == (touchesData ? 1 : 0), "lost \(lost), missing \(missing), used \(used)")
            }
        }
        // Three missing children: more than draid2 stands; the vdev does not open.
        let reader = VdevReader(root: Self.tree(geometry)) { path in [0, 3, 5].contains(Int(path.dropFirst(3))!) ? nil : clean[Int(path.dropFirst(3))!] }
        #expect {
            try reader.read(topLevel: 0, offset: offset, size: data.count, verify: VdevReaderTests.expecting(data))
        } throws: { error in
            let error = error as! BlockReadError
            return error.code == .unreadable && error.attempts.last?.vdev == "draid2:3d:7c:1s-0" && error.attempts.last!.reason.contains("3 of its 7 children are missing")
        }
        // Three damaged children of the block: no rebuild verifies.
        let damaged = Self.devices(7)
        try Self.write(data, at: offset, geometry, damaged)
        for child in used.sorted().prefix(3) { for row in rows { for column in row.columns where column.child == child && column.size > 0 {
            damaged[child].setBytes(VdevReaderTests.payload(column.size, seed: 8), at: Self.start + column.offset)
        } } }
        let broken = VdevReader(root: Self.tree(geometry)) { damaged[Int($0.dropFirst(3))!] }
        #expect {
            try broken.read(topLevel: 0, offset: offset, size: data.count, verify: VdevReaderTests.expecting(data))
        } throws: { error in
            let error = error as! BlockReadError
            return error.code == .unreadable && error.attempts.last?.vdev == "draid2:3d:7c:1s-0" && error.attempts.last?.offset == offset
        }
    }

    /// Absurd config values on the vdev a DVA points at: a typed `damaged` error naming the
    /// vdev, the offset and the value, no trap and no long loop.
    @Test func damagedDraidConfigIsATypedError() throws {
        let geometry = try DraidGeometry(name: "draid1:3d:7c:1s", ashift: 12)
        for (key, value) in [("draid_ngroups", UInt64(1) << 40), ("draid_ngroups", 0), ("draid_ndata", .max), ("nparity", 9), ("draid_nspares", 6), ("ashift", 63)] {
            let tree = Self.tree(geometry)
            var top = tree.children[0].config
            top.set(key, .uint64(value))
            var node = tree
            node.children[0].config = top
            let devices = Self.devices(7)
            let reader = VdevReader(root: node) { devices[Int($0.dropFirst(3))!] }
            #expect {
                try reader.read(topLevel: 0, offset: 0x5000, size: 4096, verify: { _ in nil })
            } throws: { error in
                let error = error as! BlockReadError
                return error.code == .damaged && error.attempts.first?.vdev == "draid-0" && error.attempts.first?.offset == 0x5000
                    && error.attempts.first!.reason.contains("dRAID")
            }
        }
        // A misaligned offset (not a whole stripe of 4 sectors).
        let devices = Self.devices(7)
        let reader = VdevReader(root: Self.tree(geometry)) { devices[Int($0.dropFirst(3))!] }
        #expect {
            try reader.read(topLevel: 0, offset: 0x1000, size: 4096, verify: { _ in nil })
        } throws: { error in
            let error = error as! BlockReadError
            return error.code == .damaged && error.attempts.first?.vdev == "draid1:3d:7c:1s-0" && error.attempts.first!.reason.contains("stripe")
        }
    }

    /// A child rebuilt onto distributed spare 0 and then gone: its columns are read where the
    /// spare keeps its space. Without a usable spare id that is a typed "unsupported" error.
    @Test func aChildReplacedByADistributedSpareIsReadThroughIt() throws {
        let geometry = try DraidGeometry(name: "draid1:3d:7c:1s", ashift: 12)
        let map = try DraidPermutations.map(children: 7)
        let data = VdevReaderTests.payload(3 << 12, seed: 11)
        let offset = UInt64(7 * geometry.groupWidth) << 12
        let devices = Self.devices(7)
        let rows = try Self.write(data, at: offset, geometry, devices)
        let victim = rows[0].columns[1]  // the first data column
        let target = try #require(geometry.spareTarget(spare: 0, offset: victim.offset, map: map))
        #expect(!rows[0].columns.map(\.child).contains(target))
        devices[target].setBytes(devices[victim.child].bytes(in: Self.start + victim.offset..<Self.start + victim.offset + 4096), at: Self.start + victim.offset)
        // The parity child is gone too, so only the spare can answer.
        let gone: Set<Int> = [victim.child, rows[0].columns[0].child]
        let open: (String) -> (any BlockDevice)? = { path in
            let index = Int(path.dropFirst(3))!
            return gone.contains(index) ? nil : devices[index]
        }
        let reader = VdevReader(root: Self.tree(geometry, spared: victim.child), open: open)
        #expect(try reader.read(topLevel: 0, offset: offset, size: data.count, verify: VdevReaderTests.expecting(data)) == data)
        #expect(reader.repairs.distributedSpareReads == 1)
        #expect(reader.repairs.draidRebuilds == 0)
        let unknown = VdevReader(root: Self.tree(geometry, spared: victim.child, spareID: nil), open: open)
        #expect {
            try unknown.read(topLevel: 0, offset: offset, size: data.count, verify: VdevReaderTests.expecting(data))
        } throws: { error in
            let error = error as! BlockReadError
            return error.code == .unsupported && error.attempts.contains { $0.vdev == "draid1-0-99" && $0.reason.contains("spare_id") }
        }
    }
}

#if canImport(Glibc)
import Glibc

/// The permutation maps against OpenZFS's own generator: libzpool (installed with OpenZFS
/// 2.1.11) exports `vdev_draid_lookup_map` and `vdev_draid_generate_perms`; for every children
/// count, the map it generates equals ours byte for byte.
@Suite struct DraidPermutationInteropTests {
    init() throws { try OpenZFS.requireInstalled() }

    @Test func mapsEqualLibzpoolsForEveryChildrenCount() throws {
        let library = try #require(dlopen("libzpool.so.5", RTLD_NOW | RTLD_LOCAL), "dlopen libzpool.so.5: \(String(cString: dlerror()))")
        typealias LookupMap = @convention(c) (UInt64, UnsafeMutablePointer<UnsafeRawPointer?>) -> Int32
        typealias GeneratePerms = @convention(c) (UnsafeRawPointer, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>) -> Int32
        let lookup = unsafeBitCast(try #require(dlsym(library, "vdev_draid_lookup_map")), to: LookupMap.self)
        let generate = unsafeBitCast(try #require(dlsym(library, "vdev_draid_generate_perms")), to: GeneratePerms.self)
        for children in DraidPermutations.childrenRange {
            var entry: UnsafeRawPointer?
            try #require(lookup(UInt64(children), &entry) == 0, "no libzpool map for \(children)")
            var perms: UnsafeMutablePointer<UInt8>?
            try #require(generate(try #require(entry), &perms) == 0, "libzpool's generator refused \(children)")
            let count = DraidPermutations.rowCount(children: children) * children
            // (libzpool's buffer is left allocated: its allocator is libzpool's own.)
            let theirs = Array(UnsafeBufferPointer(start: try #require(perms), count: count))
            #expect(try DraidPermutations.map(children: children) == theirs, "\(children) children")
        }
    }
}
#endif
