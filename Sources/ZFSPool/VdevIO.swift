// Block I/O over the vdev tree: writes go to every present child of the top-level a DVA names;
// reads verify the bp checksum, fall back to the other children (and the other DVAs), and write
// the good copy back over each bad child (mirror self-healing, `vdev_mirror.c` behaviour).
// Labels and uberblocks are written here too, in the phases `Pool.sync` orders, with Force Unit
// Access on a device that has it (`writeMetadata`: NBD), else with the ordinary write that the
// phase's flush makes durable.

import ZFSDevice
import ZFSFormat

/// Error counters of one leaf, as `zpool status` shows them.
public struct LeafCounters: Hashable, Sendable {
    public var readErrors = 0
    public var writeErrors = 0
    public var checksumErrors = 0
    /// Blocks rewritten on this leaf from a good copy on another child.
    public var repairs = 0
    public init() {}
}

struct VdevIO: Sendable {
    var poolName: String
    var tree: VdevTree
    var devices: [VdevGUID: any BlockDevice]
    var counters: [VdevGUID: LeafCounters] = [:]
    var rotor = 0

    /// Physical offset of DVA offset 0 on a plain or mirror child (`VDEV_LABEL_START_SIZE`).
    static let dataStart = LabelLayout.startByteCount

    func top(_ id: UInt64) -> TopLevelVdev? { tree.topLevels.first { $0.id == id } }

    // MARK: Blocks

    /// Writes `block` at `extent` on every present child; throws when no child took it.
    mutating func write(_ block: [UInt8], at extent: Extent) throws(PoolError) {
        guard let top = top(extent.vdev) else {
            throw PoolError(.invalidConfig, "pool '\(poolName)' has no top-level vdev \(extent.vdev)", pool: poolName)
        }
        var landed = 0
        var lastError: DeviceError?
        for leaf in top.leaves {
            guard let device = devices[leaf.guid] else { continue }
            do {
                try device.write(block, atAbsoluteOffset: Self.dataStart + extent.offset)
                landed += 1
            } catch {
                counters[leaf.guid, default: .init()].writeErrors += 1
                lastError = error
            }
        }
        guard landed > 0 else {
            throw PoolError(
                .ioFailure,
                "pool '\(poolName)': no device of top-level vdev \(extent.vdev) took a write at offset "
                    + "0x\(String(Self.dataStart + extent.offset, radix: 16)); \(lastError.map { "\($0)" } ?? "no device present")",
                pool: poolName, device: lastError?.path, cause: lastError)
        }
    }

    /// Reads and verifies the block `bp` points at, repairing bad mirror copies.
    mutating func read(_ bp: BlockPointer) throws(PoolError) -> [UInt8] {
        let count = Int(bp.properties.physicalByteCount)
        var problems: [String] = []
        var bad: [(VdevGUID, any BlockDevice, UInt64)] = []
        for extent in BlockPointers.extents(of: bp) {
            guard let top = top(extent.vdev) else {
                problems.append("DVA names top-level vdev \(extent.vdev), which the config lacks")
                continue
            }
            let offset = Self.dataStart + extent.offset
            let start = rotor % top.leaves.count
            rotor &+= 1
            let ordered = Array(top.leaves[start...] + top.leaves[..<start])
            for leaf in ordered {
                guard let device = devices[leaf.guid] else { continue }
                let bytes: [UInt8]
                do {
                    bytes = try device.read(count: count, atAbsoluteOffset: offset)
                } catch {
                    counters[leaf.guid, default: .init()].readErrors += 1
                    problems.append("\(device.path): \(error)")
                    bad.append((leaf.guid, device, offset))
                    continue
                }
                if BlockPointers.sha256(bytes) == bp.checksum {
                    for (guid, badDevice, badOffset) in bad where badOffset == offset {
                        if (try? badDevice.write(bytes, atAbsoluteOffset: badOffset)) != nil {
                            counters[guid, default: .init()].repairs += 1
                        }
                    }
                    return bytes
                }
                counters[leaf.guid, default: .init()].checksumErrors += 1
                problems.append("\(device.path) at offset 0x\(String(offset, radix: 16)): checksum mismatch")
                bad.append((leaf.guid, device, offset))
            }
        }
        throw PoolError(
            .corruptBlock,
            "pool '\(poolName)': every copy of a block born in txg \(bp.birthTXG) is unreadable or fails its "
                + "SHA-256 checksum (\(problems.joined(separator: "; ")))",
            pool: poolName)
    }

    // MARK: Labels and uberblocks

    /// Runs `body` on each present leaf (of the top-levels `only` names, or all); throws unless
    /// every such top-level has a leaf where it succeeded (`vdev_config_sync` needs one good
    /// write per top-level).
    mutating func eachLeaf(
        _ what: String, only: Set<UInt64>? = nil,
        _ body: (LeafVdev, TopLevelVdev, any BlockDevice) throws(DeviceError) -> Void
    ) throws(PoolError) {
        for top in tree.topLevels where only?.contains(top.id) ?? true {
            var good = 0
            var lastError: DeviceError?
            for leaf in top.leaves {
                guard let device = devices[leaf.guid] else { continue }
                do {
                    try body(leaf, top, device)
                    good += 1
                } catch {
                    counters[leaf.guid, default: .init()].writeErrors += 1
                    lastError = error
                }
            }
            guard good > 0 else {
                throw PoolError(
                    .ioFailure,
                    "pool '\(poolName)': \(what) failed on every device of top-level vdev \(top.id)"
                        + (lastError.map { ": \($0)" } ?? ": no device present"),
                    pool: poolName, device: lastError?.path, cause: lastError)
            }
        }
    }

    mutating func flushAll() throws(PoolError) {
        try eachLeaf("flush") { _, _, device throws(DeviceError) in try device.flush() }
    }

    /// `vdev_label_init`: whole labels (txg 0 + `create_txg`, an initialised uberblock ring) on
    /// every leaf of the top-levels `topLevels` (create: all; add: the new ones).
    mutating func writeInitialLabels(
        topLevels: Set<UInt64>, identity: PoolIdentity, createTXG: TXG, timestampInSeconds: UInt64
    ) throws(PoolError) {
        let tree = self.tree
        let template = Uberblock(
            txg: .zero, guidSum: tree.guidSum(poolGUID: identity.guid), timestampInSeconds: timestampInSeconds)
        try eachLeaf("writing initial labels", only: topLevels) { leaf, top, device throws(DeviceError) in
            let config = identity.labelConfig(leaf: leaf, top: top, tree: tree, txg: .zero, createTXG: createTXG)
            let packed = (try? config.encoded(as: .xdr)) ?? []
            for index in 0..<LabelLayout.labelCount {
                guard
                    let label = try? VdevLabel.encode(
                        configPacked: packed, ring: .initialized(template: template), labelIndex: index,
                        deviceSize: device.sizeInBytes, byteOrder: .host),
                    let offset = LabelLayout.labelOffset(index: index, deviceSize: device.sizeInBytes)
                else { continue }
                try device.writeMetadata(label, atAbsoluteOffset: offset)
            }
        }
    }

    /// Rewrites the `vdev_phys` block (config + trailer) of labels `indices` on every leaf.
    mutating func writeLabelConfigs(_ indices: [Int], identity: PoolIdentity, txg: TXG) throws(PoolError) {
        let tree = self.tree
        try eachLeaf("writing labels \(indices)") { leaf, top, device throws(DeviceError) in
            let config = identity.labelConfig(leaf: leaf, top: top, tree: tree, txg: txg)
            let packed = (try? config.encoded(as: .xdr)) ?? []
            for index in indices {
                guard let labelOffset = LabelLayout.labelOffset(index: index, deviceSize: device.sizeInBytes) else { continue }
                let blockOffset = labelOffset + UInt64(VdevLabel.configBlockOffset)
                var block = [UInt8](repeating: 0, count: VdevLabel.configBlockByteCount)
                // labelConfig keeps the packed config within the label (it drops neighbours first).
                let count = min(packed.count, VdevLabel.configCapacity)
                block.replaceSubrange(0..<count, with: packed[0..<count])
                try? EmbeddedChecksum.seal(&block, absoluteOffset: blockOffset, byteOrder: .host)
                try device.writeMetadata(block, atAbsoluteOffset: blockOffset)
            }
        }
    }

    /// Writes `uberblock` into its sync slot of all four labels of every leaf.
    mutating func writeUberblocks(_ uberblock: Uberblock, multihost: Bool) throws(PoolError) {
        try eachLeaf("writing uberblock txg \(uberblock.txg)") { _, top, device throws(DeviceError) in
            let ring = UberblockRing(ashift: top.ashift)
            let slot = ring.syncSlotIndex(for: uberblock.txg, multihost: multihost)
            for index in 0..<LabelLayout.labelCount {
                guard let labelOffset = LabelLayout.labelOffset(index: index, deviceSize: device.sizeInBytes) else { continue }
                let offset = ring.slotOffset(slot, labelOffset: labelOffset)
                try device.writeMetadata(uberblock.encodeSlot(in: ring, absoluteOffset: offset), atAbsoluteOffset: offset)
            }
        }
    }
}
