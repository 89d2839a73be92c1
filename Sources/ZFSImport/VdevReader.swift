// Reading a DVA from an OpenZFS pool's vdev tree, read-only: the physical half of
// `zio_read` for plain disks and files, mirrors (and replacing/spare, which read like
// mirrors) and raidz1-3, with the caller's checksum deciding which copy is good.
//
//   * A leaf reads `size` bytes at `offset + 4 MiB` (the two front labels and the boot area,
//     `VDEV_LABEL_START_SIZE`).
//   * A mirror tries its children in order and returns the first copy the checksum accepts
//     (`vdev_mirror_io_done` retries the other children the same way).
//   * A raidz vdev lays the block out as `vdev_raidz_map_alloc` does (columns of whole sectors
//     across the children, parity first, the raidz1 column swap at odd MiB offsets), reads the
//     columns, and when a child cannot be read or the checksum fails, rebuilds up to `nparity`
//     data columns from P, Q and R over GF(2^8) (generator 2, polynomial 0x11d), trying the
//     combinations in order of size, as `vdev_raidz_combrec` does.
//   * A dRAID vdev lays the block out as `vdev_draid_map_alloc` does (DraidLayout.swift: the
//     fixed permutation map picks the children of the block's redundancy group, and a block
//     may take two rows at a group boundary), reads the data columns, and when a child cannot
//     be read or the checksum fails, reads the parity and rebuilds with the raidz arithmetic
//     below, treating up to `nparity` children as bad, fewest first. A child that was
//     replaced by a distributed spare is read where the spare keeps its space (another
//     child, by the same map).
//
// The top-level vdev's size rounding (an I/O is padded to a whole `ashift` sector) is done
// by the caller (MOSReader), as `zio_vdev_io_start` does for the top-level vdev.

import ZFSDevice
import ZFSFormat

/// Why a block could not be read: every copy and column tried, each with its vdev, offset and
/// reason.
public struct BlockReadError: Error, Hashable, Sendable, CustomStringConvertible {
    /// One attempt that failed.
    public struct Attempt: Hashable, Sendable, CustomStringConvertible {
        /// The vdev: a leaf's path, or the interior vdev's name (`mirror-0`, `raidz2-1`).
        public var vdev: String
        /// The byte offset on that vdev (for a leaf, on the device: the 4 MiB label area included).
        public var offset: UInt64
        public var reason: String
        public var description: String { "\(vdev) at offset 0x\(String(offset, radix: 16)): \(reason)" }
    }

    public enum Code: String, Hashable, Sendable {
        /// No copy could be read, or none verified.
        case unreadable
        /// The block's pointer or layout cannot be right.
        case damaged
        /// A layout or algorithm ZPoolKit does not read (an unknown checksum, a distributed spare
        /// of another vdev).
        case unsupported
    }

    public var code: Code
    public var attempts: [Attempt]

    public init(_ code: Code, _ attempts: [Attempt]) {
        self.code = code
        self.attempts = attempts
    }

    public init(_ code: Code, vdev: String, offset: UInt64, reason: String) {
        self.init(code, [Attempt(vdev: vdev, offset: offset, reason: reason)])
    }

    public var description: String { attempts.map(\.description).joined(separator: "; ") }
}

/// Reads DVAs of one pool through its vdev tree (read-only; it never writes).
public final class VdevReader: @unchecked Sendable {
    /// `VDEV_LABEL_START_SIZE`: two labels and the boot block before a leaf's allocatable space.
    public static let labelStartByteCount: UInt64 = 4 << 20

    /// How often a read was answered only through redundancy.
    public struct Repairs: Hashable, Sendable {
        /// Reads a mirror (or replacing/spare vdev) answered from a child after the first.
        public var mirrorFallbacks = 0
        /// Reads a raidz vdev answered by rebuilding data columns from parity.
        public var raidzRebuilds = 0
        /// Reads a dRAID vdev answered by rebuilding columns of its redundancy group from parity.
        public var draidRebuilds = 0
        /// Columns a dRAID vdev read through a distributed spare (the space of a replaced child).
        public var distributedSpareReads = 0
        /// Block reads answered by a DVA after the first (a ditto copy).
        public var dittoFallbacks = 0
        public init() {}
    }

    /// What redundancy has repaired so far (in memory only: nothing is written back).
    public internal(set) var repairs = Repairs()

    /// The pool's top-level vdevs by `id`.
    let topLevel: [UInt64: VdevNode]
    /// Open devices by path; `nil` when the path did not open.
    private var devices: [String: (any BlockDevice)?] = [:]
    private let open: (String) -> (any BlockDevice)?

    /// - Parameters:
    ///   - root: the pool's vdev tree (leaves carry their found paths).
    ///   - open: opens a leaf read-only; `nil` when it cannot (the leaf then counts as missing).
    public init(root: VdevNode, open: @escaping (String) -> (any BlockDevice)? = VdevReader.openReadOnly) {
        var map: [UInt64: VdevNode] = [:]
        for (index, child) in root.children.enumerated() {
            map[child.id ?? UInt64(index)] = child
        }
        topLevel = map
        self.open = open
    }

    /// Opens a file or block device read-only.
    public static func openReadOnly(_ path: String) -> (any BlockDevice)? {
        try? FileBlockDevice(path: path, mode: .readOnly)
    }

    /// The top-level vdev `id`, or `nil`.
    public func topLevelVdev(_ id: UInt64) -> VdevNode? { topLevel[id] }

    /// The `ashift` of top-level vdev `id` (9 when the config has none).
    public func ashift(ofTopLevel id: UInt64) -> Int {
        Int(min(topLevel[id]?.config.uint64("ashift") ?? 9, 17))
    }

    /// Reads `size` bytes at `offset` of top-level vdev `id`, returning the first version of
    /// them that `verify` accepts (`verify` returns `nil` to accept, or why it rejects).
    public func read(
        topLevel id: UInt64, offset: UInt64, size: Int, verify: ([UInt8]) -> String?
    ) throws(BlockReadError) -> [UInt8] {
        guard let vdev = topLevel[id] else {
            throw BlockReadError(.damaged, vdev: "top-level vdev \(id)", offset: offset, reason: "the pool has no top-level vdev \(id)")
        }
        return try read(vdev, offset: offset, size: size, topLevelID: id, ashift: ashift(ofTopLevel: id), verify: verify)
    }

    func name(_ node: VdevNode, _ fallbackID: UInt64?) -> String {
        if node.isLeaf { return leafPath(node) ?? "leaf \(node.guid.rawValue)" }
        if node.type == .draid, let geometry = try? DraidGeometry(config: node.config, children: node.children.count) {
            return "\(geometry)-\(node.id ?? fallbackID ?? 0)"
        }
        let type = node.type == .raidz ? "raidz\(node.config.uint64("nparity") ?? 1)" : node.type.rawValue
        return "\(type)-\(node.id ?? fallbackID ?? 0)"
    }

    func leafPath(_ node: VdevNode) -> String? {
        if case .found(let path, _) = node.presence { return path }
        return nil
    }

    /// `ashift` is the top-level vdev's: a raidz below a mirror has none of its own in the
    /// config, and `vdev_raidz_io_start` lays its columns out with `vdev_top->vdev_ashift`.
    private func read(
        _ node: VdevNode, offset: UInt64, size: Int, topLevelID: UInt64?, ashift: Int, verify: ([UInt8]) -> String?
    ) throws(BlockReadError) -> [UInt8] {
        let here = name(node, topLevelID)
        switch node.type {
        case .mirror, .replacing, .spare:
            var attempts: [BlockReadError.Attempt] = []
            for (index, child) in node.children.enumerated() {
                do {
                    let bytes = try read(child, offset: offset, size: size, topLevelID: nil, ashift: ashift, verify: verify)
                    if index > 0 { repairs.mirrorFallbacks += 1 }
                    return bytes
                } catch {
                    attempts += error.attempts
                }
            }
            if node.children.isEmpty {
                attempts.append(.init(vdev: here, offset: offset, reason: "the \(node.type) vdev has no children"))
            }
            throw BlockReadError(.unreadable, attempts)
        case .raidz:
            return try readRaidz(node, name: here, offset: offset, size: size, ashift: ashift, verify: verify)
        case .draid:
            return try readDraid(node, name: here, offset: offset, size: size, verify: verify)
        case .hole, .missing, .indirect:
            throw BlockReadError(.damaged, vdev: here, offset: offset, reason: "a block points into a \(node.type) vdev")
        default:
            guard node.isLeaf else {
                throw BlockReadError(.unsupported, vdev: here, offset: offset, reason: "ZPoolKit does not read \(node.type) vdevs")
            }
            let bytes = try readLeaf(node, offset: offset, size: size)
            if let reason = verify(bytes) {
                throw BlockReadError(.unreadable, vdev: here, offset: offset &+ Self.labelStartByteCount, reason: reason)
            }
            return bytes
        }
    }

    /// The device at `path`, opened once and kept; `nil` when it does not open.
    func openDevice(_ path: String) -> (any BlockDevice)? {
        if let known = devices[path] { return known }
        let device = open(path)
        devices[path] = device
        return device
    }

    /// Reads a leaf's bytes (no verification).
    func readLeaf(_ node: VdevNode, offset: UInt64, size: Int) throws(BlockReadError) -> [UInt8] {
        let physical = offset &+ Self.labelStartByteCount
        guard let path = leafPath(node) else {
            throw BlockReadError(.unreadable, vdev: node.path ?? "leaf \(node.guid.rawValue)", offset: physical, reason: "the device was not found")
        }
        guard let device = openDevice(path) else {
            throw BlockReadError(.unreadable, vdev: path, offset: physical, reason: "the device does not open")
        }
        guard offset < physical, physical <= device.sizeInBytes, UInt64(size) <= device.sizeInBytes - physical else {
            throw BlockReadError(.damaged, vdev: path, offset: physical, reason: "\(size) bytes here lie past the end of the device")
        }
        var bytes = [UInt8](repeating: 0, count: size)
        var failure: DeviceError?
        bytes.withUnsafeMutableBytes { buffer in
            do throws(DeviceError) { try device.read(into: buffer, atAbsoluteOffset: physical) } catch { failure = error }
        }
        if let failure {
            throw BlockReadError(.unreadable, vdev: path, offset: physical, reason: "\(failure)")
        }
        return bytes
    }

    /// Reads a child of a raidz vdev without verification (a leaf, or the first readable
    /// child of a replacing/spare vdev).
    private func readColumn(_ node: VdevNode, offset: UInt64, size: Int) throws(BlockReadError) -> [UInt8] {
        if node.isLeaf { return try readLeaf(node, offset: offset, size: size) }
        var attempts: [BlockReadError.Attempt] = []
        for child in node.children {
            do { return try readColumn(child, offset: offset, size: size) } catch { attempts += error.attempts }
        }
        throw BlockReadError(.unreadable, attempts.isEmpty ? [.init(vdev: name(node, nil), offset: offset, reason: "no children")] : attempts)
    }

    private func readRaidz(
        _ node: VdevNode, name here: String, offset: UInt64, size: Int, ashift: Int, verify: ([UInt8]) -> String?
    ) throws(BlockReadError) -> [UInt8] {
        let parity = Int(node.config.uint64("nparity") ?? 1)
        let map: RaidzMap
        do {
            map = try RaidzMap(offset: offset, size: UInt64(size), ashift: ashift, children: node.children.count, parity: parity)
        } catch {
            throw BlockReadError(.damaged, vdev: here, offset: offset, reason: error.message)
        }
        var columns: [[UInt8]?] = []
        var attempts: [BlockReadError.Attempt] = []
        for column in map.columns {
            if column.size == 0 {
                columns.append([])
                continue
            }
            do {
                columns.append(try readColumn(node.children[column.child], offset: column.offset, size: column.size))
            } catch {
                attempts += error.attempts
                columns.append(nil)
            }
        }
        let missing = Set(columns.indices.filter { columns[$0] == nil })
        guard missing.count <= parity else {
            throw BlockReadError(
                .unreadable, attempts + [.init(vdev: here, offset: offset, reason: "\(missing.count) columns are unreadable, more than the \(parity) parity columns can rebuild")])
        }
        let dataColumns = Array(parity..<map.columns.count)
        let missingData = dataColumns.filter { missing.contains($0) }
        let availableParity = (0..<parity).filter { !missing.contains($0) && $0 < map.columns.count }
        var rejections: [String] = []
        // Sets of data columns to rebuild, smallest first; each must include the unreadable ones.
        for extra in 0...max(0, availableParity.count - missingData.count) {
            let others = dataColumns.filter { !missing.contains($0) }
            for chosen in RaidzMath.combinations(of: others, size: extra) {
                let rebuild = missingData + chosen
                for parityRows in RaidzMath.combinations(of: availableParity, size: rebuild.count) {
                    var candidate = columns
                    if !rebuild.isEmpty {
                        RaidzMath.reconstruct(&candidate, rebuild: rebuild, using: parityRows, parity: parity, map: map)
                    }
                    let data = map.assemble(candidate)
                    guard let reason = verify(data) else {
                        if !rebuild.isEmpty { repairs.raidzRebuilds += 1 }
                        return data
                    }
                    rejections.append(reason)
                    if rebuild.isEmpty { break }
                }
            }
        }
        let firstReason = rejections.first ?? "no combination of columns verifies"
        throw BlockReadError(
            .unreadable,
            attempts + [.init(vdev: here, offset: offset, reason: "\(firstReason), and no rebuild from parity of up to \(parity) columns verifies")])
    }
}

/// The layout of one block on a raidz vdev (`vdev_raidz_map_alloc`, no expansion).
struct RaidzMap {
    struct Column {
        var child: Int
        /// Byte offset on the child (before the 4 MiB label area).
        var offset: UInt64
        var size: Int
    }

    var columns: [Column]
    var parity: Int

    /// A layout worked out elsewhere (a dRAID row).
    init(columns: [Column], parity: Int) {
        self.columns = columns
        self.parity = parity
    }

    init(offset: UInt64, size: UInt64, ashift: Int, children: Int, parity: Int) throws(FormatError) {
        guard (1...3).contains(parity), children > parity, (9...16).contains(ashift) else {
            throw FormatError(.invalidLayout, "a raidz\(parity) of \(children) children with ashift \(ashift)")
        }
        guard size > 0, size <= 16 << 20 else {
            throw FormatError(.invalidSize, "a raidz read of \(size) bytes")
        }
        let sector = UInt64(1) << UInt64(ashift)
        let b = offset >> UInt64(ashift)
        let s = size >> UInt64(ashift)
        let dcols = UInt64(children)
        let np = UInt64(parity)
        let f = b % dcols
        let o = (b / dcols) << UInt64(ashift)
        let q = s / (dcols - np)
        let r = s - q * (dcols - np)
        let bc = r == 0 ? 0 : r + np
        let acols: UInt64
        let scols: UInt64
        if q == 0 {
            acols = bc
            scols = min(dcols, (bc + np) / (np + 1) * (np + 1))
        } else {
            acols = dcols
            scols = dcols
        }
        var columns: [Column] = []
        for c in 0..<scols {
            var col = f + c
            var coff = o
            if col >= dcols {
                col -= dcols
                coff += sector
            }
            let columnSize: UInt64 = c >= acols ? 0 : (c < bc ? (q + 1) : q) << UInt64(ashift)
            columns.append(Column(child: Int(col), offset: coff, size: Int(columnSize)))
        }
        // Skip sectors beyond acols carry no data; keep only the allocated columns.
        columns = Array(columns.prefix(Int(acols)))
        if parity == 1 && columns.count > 1 && offset & (1 << 20) != 0 {
            let first = columns[0]
            columns[0].child = columns[1].child
            columns[0].offset = columns[1].offset
            columns[1].child = first.child
            columns[1].offset = first.offset
        }
        self.columns = columns
        self.parity = parity
    }

    /// The data columns, concatenated.
    func assemble(_ columns: [[UInt8]?]) -> [UInt8] {
        var data: [UInt8] = []
        for index in parity..<columns.count { data += columns[index] ?? [] }
        return data
    }
}

/// GF(2^8) arithmetic for raidz parity (`vdev_raidz_math`): P = Σ d, Q = Σ 2^(n−1−i) d_i,
/// R = Σ 4^(n−1−i) d_i over the n data columns (shorter columns count as zero-padded).
enum RaidzMath {
    static let tables: (exp: [UInt8], log: [Int]) = {
        var exp = [UInt8](repeating: 0, count: 512)
        var log = [Int](repeating: 0, count: 256)
        var x = 1
        for i in 0..<255 {
            exp[i] = UInt8(x)
            log[x] = i
            x <<= 1
            if x & 0x100 != 0 { x ^= 0x11d }
        }
        for i in 255..<512 { exp[i] = exp[i - 255] }
        return (exp, log)
    }()

    static func multiply(_ a: UInt8, _ b: UInt8) -> UInt8 {
        if a == 0 || b == 0 { return 0 }
        return tables.exp[tables.log[Int(a)] + tables.log[Int(b)]]
    }

    static func inverse(_ a: UInt8) -> UInt8 { tables.exp[255 - tables.log[Int(a)]] }

    /// g^e for generator g of parity row `row` (1, 2, 4).
    static func coefficient(row: Int, power: Int) -> UInt8 {
        if row == 0 { return 1 }
        return tables.exp[(row * power) % 255]
    }

    static func combinations(of items: [Int], size: Int) -> [[Int]] {
        if size == 0 { return [[]] }
        guard size <= items.count else { return [] }
        var result: [[Int]] = []
        for (i, item) in items.enumerated() {
            for rest in combinations(of: Array(items[(i + 1)...]), size: size - 1) { result.append([item] + rest) }
        }
        return result
    }

    /// Rebuilds the columns `rebuild` (data column indices) from the parity columns `rows`.
    static func reconstruct(_ columns: inout [[UInt8]?], rebuild: [Int], using rows: [Int], parity: Int, map: RaidzMap) {
        let n = map.columns.count - parity
        let k = rebuild.count
        // Matrix A[j][t] = coefficient(row_j, n-1-(rebuild_t - parity)); invert over GF(256).
        var a = rows.map { row in rebuild.map { coefficient(row: row, power: n - 1 - ($0 - parity)) } }
        var inv = (0..<k).map { i in (0..<k).map { $0 == i ? UInt8(1) : 0 } }
        for col in 0..<k {
            guard let pivot = (col..<k).first(where: { a[$0][col] != 0 }) else { return }
            a.swapAt(col, pivot)
            inv.swapAt(col, pivot)
            let scale = inverse(a[col][col])
            for c in 0..<k {
                a[col][c] = multiply(a[col][c], scale)
                inv[col][c] = multiply(inv[col][c], scale)
            }
            for r in 0..<k where r != col && a[r][col] != 0 {
                let factor = a[r][col]
                for c in 0..<k {
                    a[r][c] ^= multiply(factor, a[col][c])
                    inv[r][c] ^= multiply(factor, inv[col][c])
                }
            }
        }
        let length = map.columns[0].size
        var syndromes = rows.map { row in columns[row] ?? [UInt8](repeating: 0, count: length) }
        for (j, row) in rows.enumerated() {
            for d in parity..<map.columns.count where !rebuild.contains(d) {
                let coefficient = coefficient(row: row, power: n - 1 - (d - parity))
                guard let data = columns[d] else { continue }
                for i in 0..<min(data.count, length) { syndromes[j][i] ^= multiply(coefficient, data[i]) }
            }
        }
        for (t, d) in rebuild.enumerated() {
            var out = [UInt8](repeating: 0, count: map.columns[d].size)
            for i in 0..<out.count {
                var value: UInt8 = 0
                for j in 0..<k { value ^= multiply(inv[t][j], syndromes[j][i]) }
                out[i] = value
            }
            columns[d] = out
        }
    }
}
