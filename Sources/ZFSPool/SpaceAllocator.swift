// Space accounting and allocation for a pool: one free list per top-level vdev, and the
// deferred-free list that implements the reuse rule of `docs/design/pool-host.md` §4.
//
// Invariant: a block freed in txg N (it was referenced by the MOS of txg N−1 and older) is
// handed out again only while writing txg T ≥ N + `rewindDepth`, where `rewindDepth` is the
// number of uberblock sync slots; so every uberblock still in the ring reaches an intact tree.
// A block allocated and freed within the same open txg was never referenced and is freed at once.

import ZFSFormat

struct SpaceAllocator: Sendable {
    /// Allocation unit (1 << ashift).
    let unit: UInt64
    /// Free ranges per top-level id, sorted, coalesced.
    private(set) var free: [UInt64: [Range<UInt64>]]
    /// Usable bytes per top-level id.
    private(set) var capacity: [UInt64: UInt64]
    /// Frees waiting for the ring to forget the txgs that reference them: (freed in txg, extent).
    private(set) var deferred: [(txg: TXG, extent: Extent)] = []
    /// How many txgs a free waits (the ring's sync slot count).
    let rewindDepth: UInt64

    /// A pool with nothing allocated.
    init(capacity: [UInt64: UInt64], unit: UInt64, rewindDepth: UInt64) {
        self.unit = unit
        self.capacity = capacity
        self.rewindDepth = rewindDepth
        free = capacity.mapValues { $0 > 0 ? [0..<$0] : [] }
    }

    var allocatedByteCount: UInt64 {
        capacity.reduce(0) { sum, entry in
            sum + entry.value - (free[entry.key] ?? []).reduce(0) { $0 + UInt64($1.count) }
        }
    }

    var freeByteCount: UInt64 { free.values.reduce(0) { $0 + $1.reduce(0) { $0 + UInt64($1.count) } } }

    /// Allocated extents (everything not free; deferred frees count as allocated), sorted.
    var allocatedExtents: [Extent] {
        var result: [Extent] = []
        for vdev in capacity.keys.sorted() {
            var cursor: UInt64 = 0
            for range in free[vdev] ?? [] {
                if range.lowerBound > cursor { result.append(Extent(vdev: vdev, offset: cursor, length: range.lowerBound - cursor)) }
                cursor = range.upperBound
            }
            let end = capacity[vdev] ?? 0
            if end > cursor { result.append(Extent(vdev: vdev, offset: cursor, length: end - cursor)) }
        }
        return result
    }

    /// A new, empty top-level vdev (`zpk add`).
    mutating func addTopLevel(_ vdev: UInt64, byteCount: UInt64) {
        guard capacity[vdev] == nil else { return }
        capacity[vdev] = byteCount
        free[vdev] = byteCount > 0 ? [0..<byteCount] : []
    }

    func rounded(_ byteCount: UInt64) -> UInt64 { (byteCount + unit - 1) / unit * unit }

    /// First fit on `vdev`.
    mutating func allocate(_ byteCount: UInt64, on vdev: UInt64) -> Extent? {
        let length = rounded(byteCount)
        guard var ranges = free[vdev], let index = ranges.firstIndex(where: { UInt64($0.count) >= length }) else {
            return nil
        }
        let range = ranges[index]
        if UInt64(range.count) == length {
            ranges.remove(at: index)
        } else {
            ranges[index] = (range.lowerBound + length)..<range.upperBound
        }
        free[vdev] = ranges
        return Extent(vdev: vdev, offset: range.lowerBound, length: length)
    }

    /// Allocates `copies` copies on distinct top-levels, preferring `preferred` first, then the
    /// top-levels with most free space.
    mutating func allocate(_ byteCount: UInt64, copies: Int, preferring preferred: UInt64?) -> [Extent]? {
        var order = capacity.keys.sorted { (freeBytes($0), $1) > (freeBytes($1), $0) }
        if let preferred, let at = order.firstIndex(of: preferred) {
            order.remove(at: at)
            order.insert(preferred, at: 0)
        }
        var result: [Extent] = []
        for vdev in order where result.count < copies {
            if let extent = allocate(byteCount, on: vdev) { result.append(extent) }
        }
        guard !result.isEmpty else { return nil }
        return result
    }

    func freeBytes(_ vdev: UInt64) -> UInt64 { (free[vdev] ?? []).reduce(0) { $0 + UInt64($1.count) } }

    /// Returns `extent` to the free list now.
    mutating func release(_ extent: Extent) {
        var ranges = free[extent.vdev] ?? []
        let new = extent.offset..<extent.end
        let index = ranges.firstIndex { $0.lowerBound > new.lowerBound } ?? ranges.endIndex
        ranges.insert(new, at: index)
        // Coalesce with neighbours.
        var merged: [Range<UInt64>] = []
        for range in ranges {
            if let last = merged.last, last.upperBound >= range.lowerBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        free[extent.vdev] = merged
    }

    /// Frees `extent` in txg `txg`: at once if it was born in `txg` (never referenced by an
    /// uberblock), else deferred.
    mutating func free(_ extent: Extent, born: TXG, in txg: TXG) {
        if born >= txg {
            release(extent)
        } else {
            deferred.append((txg, extent))
        }
    }

    /// Makes allocatable the deferred frees that txg `openTXG` may reuse (N + depth ≤ T).
    mutating func releaseDeferred(openTXG: TXG) {
        var keep: [(txg: TXG, extent: Extent)] = []
        for entry in deferred {
            if entry.txg.rawValue &+ rewindDepth <= openTXG.rawValue { release(entry.extent) } else { keep.append(entry) }
        }
        deferred = keep
    }

    /// Marks an extent allocated (loading).
    mutating func markAllocated(_ extent: Extent) {
        guard var ranges = free[extent.vdev] else { return }
        var result: [Range<UInt64>] = []
        for range in ranges {
            if range.upperBound <= extent.offset || range.lowerBound >= extent.end {
                result.append(range)
                continue
            }
            if range.lowerBound < extent.offset { result.append(range.lowerBound..<extent.offset) }
            if range.upperBound > extent.end { result.append(extent.end..<range.upperBound) }
        }
        ranges = result
        free[extent.vdev] = ranges
    }

    // MARK: Persistence (the MOS `space` and `deferred` entries)

    func encodeSpace() -> NVList {
        var list = NVList()
        var byVdev: [UInt64: [UInt64]] = [:]
        for extent in allocatedExtents { byVdev[extent.vdev, default: []] += [extent.offset, extent.length] }
        for vdev in capacity.keys.sorted() { list.append(String(vdev), .uint64Array(byVdev[vdev] ?? [])) }
        return list
    }

    func encodeDeferred() -> [UInt64] {
        deferred.flatMap { [$0.txg.rawValue, $0.extent.vdev, $0.extent.offset, $0.extent.length] }
    }

    mutating func load(space: NVList, deferred words: [UInt64]) {
        for pair in space.pairs {
            guard let vdev = UInt64(pair.name), case .uint64Array(let words) = pair.value else { continue }
            var i = 0
            while i + 1 < words.count {
                markAllocated(Extent(vdev: vdev, offset: words[i], length: words[i + 1]))
                i += 2
            }
        }
        var i = 0
        deferred = []
        while i + 3 < words.count {
            deferred.append((TXG(words[i]), Extent(vdev: words[i + 1], offset: words[i + 2], length: words[i + 3])))
            i += 4
        }
    }
}
