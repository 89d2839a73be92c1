// Reading a block of a dRAID top-level vdev (`vdev_draid_io_start` and `vdev_raidz_io_done`
// for reads): the data columns first; when a child does not answer or the checksum rejects
// the block, the parity columns too, and then rebuilds over sets of up to `nparity` children
// taken as bad (the unreadable ones always among them), fewest first. A child is bad in
// every row of the block at once (a block at a group boundary has two rows, each its own
// raidz stripe), so the sets are of children, not of columns.

import ZFSFormat

extension VdevReader {
    /// At most this many rebuild hypotheses are checked per block (the search is over the
    /// children of one or two groups of ≤ 255 columns, up to 3 at a time).
    static let draidRebuildLimit = 4096

    func readDraid(
        _ node: VdevNode, name here: String, offset: UInt64, size: Int, verify: ([UInt8]) -> String?
    ) throws(BlockReadError) -> [UInt8] {
        let geometry: DraidGeometry
        let map: [UInt8]
        let rows: [DraidRow]
        do {
            geometry = try DraidGeometry(config: node.config, children: node.children.count)
            map = try DraidPermutations.map(children: geometry.children)
            rows = try geometry.rows(offset: offset, size: UInt64(size), map: map)
        } catch {
            throw BlockReadError(.damaged, vdev: here, offset: offset, reason: error.message)
        }
        let parity = geometry.parity
        // `vdev_draid_open`: more children that do not open than parity columns, and the
        // vdev does not open at all (distributed spares open: they are the other children).
        let absent = node.children.indices.filter { isAbsent(node.children[$0]) }
        guard absent.count <= parity else {
            let names = absent.prefix(8).map { node.children[$0].path ?? "child \($0)" }.joined(separator: ", ")
            throw BlockReadError(
                .unreadable, vdev: here, offset: offset,
                reason: "\(absent.count) of its \(node.children.count) children are missing (\(names)\(absent.count > 8 ? ", …" : "")), more than its \(parity) parity columns can stand in for, so the vdev does not open")
        }
        var columns: [[[UInt8]?]] = rows.map { [[UInt8]?](repeating: nil, count: $0.map.columns.count) }
        var failed: [Int] = []
        var attempts: [BlockReadError.Attempt] = []
        var unsupported = false
        func load(_ r: Int, _ c: Int) {
            let column = rows[r].map.columns[c]
            guard column.size > 0 else {
                columns[r][c] = []
                return
            }
            guard !failed.contains(column.child) else { return }
            do {
                columns[r][c] = try readDraidColumn(
                    node.children[column.child], offset: column.offset, size: column.size, draid: node, geometry: geometry, map: map, depth: 0)
            } catch {
                attempts += error.attempts
                if error.code == .unsupported { unsupported = true }
                failed.append(column.child)
            }
        }
        func assemble(_ candidate: [[[UInt8]?]]) -> [UInt8] {
            var data: [UInt8] = []
            data.reserveCapacity(size)
            for (r, row) in rows.enumerated() { data += row.map.assemble(candidate[r]) }
            return data
        }

        // The data columns alone: the normal read.
        for r in rows.indices { for c in parity..<rows[r].map.columns.count { load(r, c) } }
        var rejections: [String] = []
        if failed.isEmpty {
            let data = assemble(columns)
            guard let reason = verify(data) else { return data }
            rejections.append(reason)
        }

        // The parity columns, then the rebuilds.
        for r in rows.indices { for c in 0..<parity { load(r, c) } }
        guard failed.count <= parity else {
            throw BlockReadError(
                unsupported ? .unsupported : .unreadable,
                attempts + [.init(vdev: here, offset: offset, reason: "\(failed.count) children of the redundancy group are unreadable, more than the \(parity) parity columns can rebuild")])
        }
        var candidates: [Int] = []
        for row in rows {
            for column in row.map.columns where column.size > 0 && !failed.contains(column.child) && !candidates.contains(column.child) {
                candidates.append(column.child)
            }
        }
        var tried = 0
        var found: [UInt8]?
        search: for extra in 0...(parity - failed.count) {
            Self.forEachCombination(of: candidates, size: extra) { chosen in
                let bad = failed + chosen
                var candidate = columns
                var rebuilt = false
                var feasible = true
                for (r, row) in rows.enumerated() {
                    let rebuild = (parity..<row.map.columns.count).filter { row.map.columns[$0].size > 0 && bad.contains(row.map.columns[$0].child) }
                    let usable = (0..<parity).filter { !bad.contains(row.map.columns[$0].child) && candidate[r][$0] != nil }
                    guard rebuild.count <= usable.count else {
                        feasible = false
                        break
                    }
                    if !rebuild.isEmpty {
                        RaidzMath.reconstruct(&candidate[r], rebuild: rebuild, using: Array(usable.prefix(rebuild.count)), parity: parity, map: row.map)
                        rebuilt = true
                    }
                }
                // Only parity children taken as bad: the data is the normal read's.
                guard feasible, rebuilt else { return true }
                tried += 1
                guard tried <= Self.draidRebuildLimit else { return false }
                let data = assemble(candidate)
                guard let reason = verify(data) else {
                    found = data
                    return false
                }
                rejections.append(reason)
                return true
            }
            if found != nil || tried > Self.draidRebuildLimit { break search }
        }
        if let found {
            repairs.draidRebuilds += 1
            return found
        }
        let firstReason = rejections.first ?? "no combination of columns verifies"
        throw BlockReadError(
            unsupported ? .unsupported : .unreadable,
            attempts + [.init(vdev: here, offset: offset, reason: "\(firstReason), and no rebuild from parity of up to \(parity) children verifies")])
    }

    /// Whether a child of a dRAID vdev does not open: a leaf not found or whose device does
    /// not open; a spare or replacing vdev none of whose children opens. A distributed spare
    /// always opens.
    private func isAbsent(_ node: VdevNode) -> Bool {
        if node.type == .draidSpare { return false }
        if node.isLeaf {
            guard let path = leafPath(node) else { return true }
            return openDevice(path) == nil
        }
        if node.type == .spare || node.type == .replacing { return node.children.allSatisfy(isAbsent) }
        return false
    }

    /// Reads one column from a child of a dRAID vdev, without verification: a leaf; the
    /// first readable child of a spare or replacing vdev; a distributed spare, where it keeps
    /// its space at this offset (another child, by the permutation map).
    private func readDraidColumn(
        _ node: VdevNode, offset: UInt64, size: Int, draid: VdevNode, geometry: DraidGeometry, map: [UInt8], depth: Int
    ) throws(BlockReadError) -> [UInt8] {
        if node.type == .draidSpare {
            let spareName = node.path ?? "distributed spare \(node.guid.rawValue)"
            let physical = offset &+ Self.labelStartByteCount
            guard depth <= geometry.spares else {
                throw BlockReadError(.damaged, vdev: spareName, offset: physical, reason: "distributed spares stand in for each other in a loop")
            }
            if let top = node.config.uint64("top_guid"), top != draid.guid.rawValue {
                throw BlockReadError(
                    .unsupported, vdev: spareName, offset: physical,
                    reason: "this distributed spare belongs to another dRAID vdev (top guid \(top)); ZPoolKit reads a distributed spare only inside its own dRAID")
            }
            guard let spare = node.config.uint64("spare_id").map(Int.init) ?? Self.spareID(fromPath: node.path),
                let target = geometry.spareTarget(spare: spare, offset: offset, map: map), target < draid.children.count
            else {
                throw BlockReadError(
                    .unsupported, vdev: spareName, offset: physical,
                    reason: "the child rebuilt onto this distributed spare cannot be read: its config has no usable spare_id (0..<\(geometry.spares)), so the child holding its space is unknown")
            }
            let bytes = try readDraidColumn(draid.children[target], offset: offset, size: size, draid: draid, geometry: geometry, map: map, depth: depth + 1)
            repairs.distributedSpareReads += 1
            return bytes
        }
        if node.isLeaf { return try readLeaf(node, offset: offset, size: size) }
        var attempts: [BlockReadError.Attempt] = []
        var code = BlockReadError.Code.unreadable
        for child in node.children {
            do {
                return try readDraidColumn(child, offset: offset, size: size, draid: draid, geometry: geometry, map: map, depth: depth)
            } catch {
                attempts += error.attempts
                if error.code != .unreadable { code = error.code }
            }
        }
        throw BlockReadError(code, attempts.isEmpty ? [.init(vdev: name(node, nil), offset: offset, reason: "no children")] : attempts)
    }

    /// Calls `body` with each `size`-element combination of `items`, in lexicographic order of
    /// positions, until it returns false (lazily: nothing is built ahead).
    static func forEachCombination(of items: [Int], size: Int, _ body: ([Int]) -> Bool) {
        guard size <= items.count else { return }
        var positions = Array(0..<size)
        while true {
            guard body(positions.map { items[$0] }) else { return }
            var i = size - 1
            while i >= 0 && positions[i] == items.count - size + i { i -= 1 }
            guard i >= 0 else { return }
            positions[i] += 1
            for j in (i + 1)..<size { positions[j] = positions[j - 1] + 1 }
        }
    }

    /// The spare id in a distributed spare's path, `draid<parity>-<top id>-<spare id>`.
    static func spareID(fromPath path: String?) -> Int? {
        guard let path, path.hasPrefix("draid") else { return nil }
        let fields = path.split(separator: "-")
        guard fields.count == 3 else { return nil }
        return Int(fields[2])
    }
}
