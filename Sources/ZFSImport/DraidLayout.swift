// Where a block of a dRAID top-level vdev lives on its children (OpenZFS 2.1.11,
// `vdev_draid_init`, `vdev_draid_logical_to_physical`, `vdev_draid_map_alloc_row` and
// `vdev_draid_spare_get_child` in `module/zfs/vdev_draid.c`).
//
//   * A dRAID of C children with S distributed spares has D = C − S "disks" worth of space;
//     a redundancy group is W = ndata + nparity columns; a group holds W × 16 MiB of the
//     vdev's address space (16 MiB, the row height, on each of its W disks). `ngroups` groups
//     fill W × ngroups / D whole rows of every disk: a slice. Slice `p` uses permutation row
//     `p mod (nperms × C)` of the fixed map: base row `⌊…/C⌋`, rotated by `… mod C`.
//   * Group `g` starts at disk position (g × W) mod D of its slice's permutation and runs for W
//     positions (wrapping to position 0 and the next 16 MiB row). Position `c` is child
//     `(perm[c] + rotation) mod C`. Positions D..<C are never part of a group: they are the
//     distributed spares' capacity (spare `s` owns position C − 1 − s).
//   * Inside a group a block is laid out like raidz with W columns (parity first), with two
//     differences: the columns always start at the group's first position (no rotation by
//     offset) and every block takes whole stripes (W sectors per row), so short and empty
//     data columns are zero-filled on disk and count as zeros in the parity. A block that runs
//     past its group's end continues, as a second row, at the start of the next group.

import ZFSFormat

/// The geometry of a dRAID top-level vdev, from its config.
public struct DraidGeometry: Hashable, Sendable, CustomStringConvertible {
    /// `VDEV_DRAID_ROWHEIGHT`: the 16 MiB each disk of a group holds per row.
    public static let rowHeight: UInt64 = 16 << 20
    /// `VDEV_DRAID_MAXPARITY`.
    public static let maximumParity = 3

    /// `nparity`: parity columns per group (1...3).
    public var parity: Int
    /// `draid_ndata`: data columns per group.
    public var data: Int
    /// `draid_nspares`: distributed spares (their space is spread over every child).
    public var spares: Int
    /// The children (physical disks, or spare/replacing vdevs standing for them).
    public var children: Int
    /// `draid_ngroups`: redundancy groups per slice.
    public var groups: Int
    /// `ashift` of the top-level vdev.
    public var ashift: Int

    /// ndata + nparity.
    public var groupWidth: Int { data + parity }
    /// children − spares.
    public var disks: Int { children - spares }
    /// Bytes of the vdev's address space in one group.
    public var groupByteCount: UInt64 { UInt64(groupWidth) * Self.rowHeight }
    /// Bytes of each child in one slice (`vdc_devslicesz`).
    public var sliceByteCountPerDisk: UInt64 { groupByteCount * UInt64(groups) / UInt64(disks) }

    /// `draid<p>:<d>d:<c>c:<s>s`, as `zpool status` names the vdev.
    public var description: String { "draid\(parity):\(data)d:\(children)c:\(spares)s" }

    /// Checks the values as `vdev_draid_init` does, and the invariants it asserts.
    /// - Throws: ``FormatError`` `.invalidLayout` naming the value that cannot be right.
    public init(parity: Int, data: Int, spares: Int, children: Int, groups: Int, ashift: Int) throws(FormatError) {
        func invalid(_ reason: String) -> FormatError {
            FormatError(.invalidLayout, "a dRAID with nparity \(parity), draid_ndata \(data), draid_nspares \(spares), draid_ngroups \(groups), \(children) children and ashift \(ashift): \(reason)")
        }
        guard (1...Self.maximumParity).contains(parity) else { throw invalid("nparity must be 1...3") }
        guard DraidPermutations.childrenRange.contains(children) else { throw invalid("a dRAID has 2...255 children") }
        guard data >= 1, data <= children else { throw invalid("draid_ndata must be 1...children") }
        guard spares >= 0, spares <= 100, spares <= children - min(children, data + parity) else {
            throw invalid("draid_nspares must be 0...100 and leave ndata + nparity children")
        }
        guard (1...255).contains(groups) else { throw invalid("draid_ngroups must be 1...255") }
        guard (9...16).contains(ashift) else { throw invalid("ashift must be 9...16") }
        let width = data + parity
        let disks = children - spares
        guard width >= 2, width <= disks else { throw invalid("a group of \(width) columns does not fit on \(disks) disks") }
        guard (width * groups) % disks == 0 else { throw invalid("\(groups) groups of \(width) do not fill whole rows of \(disks) disks") }
        self.parity = parity
        self.data = data
        self.spares = spares
        self.children = children
        self.groups = groups
        self.ashift = ashift
    }

    /// The geometry of a `draid` vdev config (`nparity`, `draid_ndata`, `draid_nspares`,
    /// `draid_ngroups`, `ashift`) with `children` children.
    public init(config: NVList, children: Int) throws(FormatError) {
        func value(_ key: String) throws(FormatError) -> Int {
            guard let raw = config.uint64(key) else { throw FormatError(.invalidLayout, "a dRAID config without \(key)") }
            return Int(min(raw, 1 << 20))
        }
        try self.init(
            parity: try value("nparity"), data: try value("draid_ndata"), spares: try value("draid_nspares"),
            children: children, groups: try value("draid_ngroups"), ashift: try value("ashift"))
    }

    /// Parses `draid<p>:<d>d:<c>c:<s>s` (the four fields in this order, as ``description``
    /// prints them); `ngroups` is the smallest that fills whole rows, as `zpool create` and
    /// ztest choose it.
    public init(name: String, ashift: Int = 12) throws(FormatError) {
        let fields = name.split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 4, fields[0].hasPrefix("draid"), let parity = Int(fields[0].dropFirst(5)),
            fields[1].hasSuffix("d"), let data = Int(fields[1].dropLast()),
            fields[2].hasSuffix("c"), let children = Int(fields[2].dropLast()),
            fields[3].hasSuffix("s"), let spares = Int(fields[3].dropLast()),
            parity >= 0, data >= 0, children >= 0, spares >= 0, children <= 255
        else { throw FormatError(.invalidName, "'\(name)' is not a dRAID name (draid<p>:<d>d:<c>c:<s>s)") }
        var groups = 1
        let disks = children - spares
        if disks > 0 { while (groups * (data + parity)) % disks != 0 && groups < 255 { groups += 1 } }
        try self.init(parity: parity, data: data, spares: spares, children: children, groups: groups, ashift: ashift)
    }

    /// The child of slice `slice`'s permutation at position `position` (0..<children).
    func child(slice: UInt64, position: Int, map: [UInt8]) -> Int {
        let count = UInt64(children)
        let index = slice % (UInt64(DraidPermutations.rowCount(children: children)) * count)
        let base = Int(index / count) * children
        return (Int(map[base + position]) + Int(index % count)) % children
    }

    /// The child that holds distributed spare `spare`'s space at byte `offset` of a child
    /// (`vdev_draid_spare_get_child`, one level).
    public func spareTarget(spare: Int, offset: UInt64, map: [UInt8]) -> Int? {
        guard (0..<spares).contains(spare) else { return nil }
        return child(slice: offset / sliceByteCountPerDisk, position: children - 1 - spare, map: map)
    }

    /// The layout of `size` bytes at `offset` of the vdev: one raidz-like row, or two when
    /// the block runs into the next group.
    /// - Throws: ``FormatError`` when the offset is not a group-width boundary or the size is
    ///   not whole sectors of at most 16 MiB.
    public func rows(offset: UInt64, size: UInt64, map: [UInt8]) throws(FormatError) -> [DraidRow] {
        let sector = UInt64(1) << UInt64(ashift)
        let stripe = UInt64(groupWidth) << UInt64(ashift)
        guard size > 0, size <= 16 << 20, size % sector == 0 else {
            throw FormatError(.invalidSize, "a dRAID read of \(size) bytes (whole \(sector)-byte sectors, at most 16 MiB)")
        }
        guard offset % stripe == 0 else {
            throw FormatError(.invalidLayout, "offset 0x\(String(offset, radix: 16)) is not a multiple of the \(groupWidth)-sector stripe")
        }
        guard offset < 1 << 60 else { throw FormatError(.invalidLayout, "offset 0x\(String(offset, radix: 16)) is beyond any device") }
        var rows: [DraidRow] = []
        var at = offset
        var dataOffset = 0
        var left = size
        while left > 0 && rows.count < 2 {
            let group = at / groupByteCount
            let groupEnd = (group + 1) * groupByteCount
            var rowSize = left
            if at + allocatedByteCount(left) > groupEnd {
                rowSize = (groupEnd - at) / UInt64(groupWidth) * UInt64(data)
            }
            rows.append(row(offset: at, size: rowSize, dataOffset: dataOffset, map: map))
            at += allocatedByteCount(rowSize)
            dataOffset += Int(rowSize)
            left -= rowSize
        }
        guard left == 0 else { throw FormatError(.invalidLayout, "a block of \(size) bytes spans more than two dRAID groups") }
        return rows
    }

    /// Bytes of address space a block of `size` takes: whole stripes (`vdev_draid_asize`).
    func allocatedByteCount(_ size: UInt64) -> UInt64 {
        let stripes = (size - 1) / (UInt64(data) << UInt64(ashift)) + 1
        return (stripes * UInt64(groupWidth)) << UInt64(ashift)
    }

    private func row(offset: UInt64, size: UInt64, dataOffset: Int, map: [UInt8]) -> DraidRow {
        let shift = UInt64(ashift)
        let width = UInt64(groupWidth)
        let rowSectors = Self.rowHeight >> shift
        let group = offset / groupByteCount
        let start = Int((group * width) % UInt64(disks))
        let slice = group / UInt64(groups)
        let rowInSlice = (UInt64(groups) * width / UInt64(disks)) * slice + ((group % UInt64(groups)) * width) / UInt64(disks)
        let sectorInGroup = (offset >> shift) % (rowSectors * width)
        var physical = (rowSectors * rowInSlice + sectorInGroup / width) << shift
        let wrap = start + groupWidth > disks ? disks - start : groupWidth
        let sectors = size >> shift
        let q = sectors / UInt64(data)
        let r = sectors - q * UInt64(data)
        let big = r == 0 ? 0 : Int(r) + parity
        var columns: [RaidzMap.Column] = []
        for i in 0..<groupWidth {
            if i == wrap { physical += Self.rowHeight }
            let position = (start + i) % disks
            let columnSectors: UInt64 = i < big ? q + 1 : q
            columns.append(.init(child: child(slice: slice, position: position, map: map), offset: physical, size: Int(columnSectors << shift)))
        }
        return DraidRow(map: RaidzMap(columns: columns, parity: parity), dataOffset: dataOffset, dataSize: Int(size))
    }
}

/// One row of a dRAID block: `groupWidth` columns (parity first, then data; a data column
/// may be empty), and where its data falls in the block.
public struct DraidRow: Sendable {
    var map: RaidzMap
    /// The row's first byte within the block.
    public var dataOffset: Int
    /// The row's data bytes.
    public var dataSize: Int

    /// Each column's child index, byte offset on the child (before the 4 MiB label area) and
    /// size (0 for an empty data column).
    public var columns: [(child: Int, offset: UInt64, size: Int)] { map.columns.map { ($0.child, $0.offset, $0.size) } }
    /// How many of the first columns are parity.
    public var parity: Int { map.parity }
}
