// Reading one device's labels the way the import scanner does (`zpool_read_label`).
//
// Userland discovery is deliberately lenient (`spec/import-and-mmp.md` §1.3): it reads only the
// 112 KiB config area of each of the four labels, does NOT verify the embedded checksum, and
// takes the FIRST label (L0…L3) that unpacks and has a non-zero `guid`, a `state` ≤ 4 and —
// unless it is a spare or cache label — a non-zero `txg`. The number of labels that pass and
// carry that same guid is the device's `num_labels`, used only to rank two paths to one vdev.
// One good label is enough.
//
// We do the same, so that we find exactly the pools `zpool import` and `zdb -e` find, and we
// also record each label's checksum verdict (the kernel's `vdev_validate` uses only labels
// whose checksum holds, §1.16) and why each rejected label was rejected.
//
// Reading never writes: the device is whatever `BlockDevice` the caller opened, and the scanner
// opens devices read-only.

import ZFSDevice
import ZFSFormat

/// What the import scanner learns from one device's four labels.
public struct LabelProbe: Sendable {
    /// The verdict on one label's config area.
    public enum Verdict: Hashable, Sendable, CustomStringConvertible {
        /// The label passes the userland checks (it unpacks; `guid` ≠ 0; `state` ≤ 4; `txg` ≠ 0
        /// unless it is an aux label).
        case accepted
        /// The device cannot hold this label, or reading it failed.
        case unreadable(String)
        /// The config area is all zeros (never written, or cleared).
        case empty
        /// The bytes are not a packed nvlist.
        case notAnNVList(String)
        /// The nvlist unpacks but has no non-zero `guid`.
        case noGUID
        /// `state` is missing or larger than 4.
        case badState(UInt64?)
        /// A pool label with no `txg` or txg 0: a half-written label from a failed create.
        case uninitialized

        public var description: String {
            switch self {
            case .accepted: "accepted"
            case .unreadable(let why): "unreadable (\(why))"
            case .empty: "empty"
            case .notAnNVList(let why): "not an nvlist (\(why))"
            case .noGUID: "no guid"
            case .badState(let state?): "state \(state) is not a label state"
            case .badState(nil): "no state"
            case .uninitialized: "txg 0 (half-initialised label)"
            }
        }
    }

    /// One of the four labels.
    public struct Label: Sendable {
        /// 0…3.
        public var index: Int
        /// Absolute offset of the label on the device, `nil` when the device cannot hold it.
        public var absoluteOffset: UInt64?
        public var verdict: Verdict
        /// The decoded config, when it unpacked (also for labels rejected after unpacking).
        public var config: NVList?
        /// The embedded checksum's verdict on the config block; `nil` when unread. Userland
        /// discovery ignores it; the kernel would not use a label whose checksum fails.
        public var checksum: EmbeddedChecksum.Status?
    }

    /// The device's path as the scanner named it.
    public var path: String
    /// The device size in bytes (`st_size`, or the block device's size).
    public var sizeInBytes: UInt64
    /// The four labels.
    public var labels: [Label]
    /// The config of the first accepted label, as `zpool_read_label` returns it.
    public var config: NVList?
    /// Accepted labels whose `guid` equals `config`'s (`num_labels`); 0 when there is no config.
    public var labelCount: Int

    /// The byte count of a label's config block (`sizeof (vdev_phys_t)`, 112 KiB).
    public static let configBlockByteCount = VdevLabel.configBlockByteCount
    /// The bytes handed to `nvlist_unpack` (`sizeof (vp_nvlist)`: the block minus its checksum).
    public static let configNVListByteCount = VdevLabel.configCapacity

    /// Reads the config area of each label of `device` and judges it as `zpool_read_label` does.
    ///
    /// Never throws: a read error is recorded on the label it concerns.
    /// - Parameters:
    ///   - device: the device, opened read-only.
    ///   - verifyingChecksums: whether to verify each block's embedded SHA-256 (``Label/checksum``
    ///     stays `nil` otherwise). `zpool_read_label` does not; it is most of the CPU a scan costs.
    /// - Complexity: four reads of 112 KiB, four nvlist decodes and four SHA-256 checks.
    public init(reading device: any BlockDevice, verifyingChecksums: Bool = true) {
        var labels: [Label] = []
        // One buffer for the four blocks: each is judged (decoded) before the next is read.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.configBlockByteCount, alignment: 16)
        defer { buffer.deallocate() }
        for (index, offset) in DeviceLabels.labelOffsets(deviceSize: device.sizeInBytes).enumerated() {
            guard let offset else {
                labels.append(Label(index: index, absoluteOffset: nil, verdict: .unreadable("the device is too small to hold it")))
                continue
            }
            let blockOffset = offset + UInt64(VdevLabel.configBlockOffset)
            do {
                try device.read(into: buffer, atAbsoluteOffset: blockOffset)
            } catch {
                labels.append(Label(index: index, absoluteOffset: offset, verdict: .unreadable(error.message)))
                continue
            }
            labels.append(Self.judge(UnsafeRawBufferPointer(buffer), index: index, labelOffset: offset, verifyingChecksum: verifyingChecksums))
        }
        self.init(path: device.path, sizeInBytes: device.sizeInBytes, labels: labels)
    }

    /// Assembles a probe from already judged labels (tests, and callers that read labels
    /// another way). Picks `config` and `labelCount` as `zpool_read_label` does.
    public init(path: String, sizeInBytes: UInt64, labels: [Label]) {
        self.path = path
        self.sizeInBytes = sizeInBytes
        self.labels = labels
        let accepted = labels.filter { $0.verdict == .accepted }
        if let first = accepted.first, let config = first.config {
            self.config = config
            let guid = config.uint64("guid")
            labelCount = accepted.filter { $0.config?.uint64("guid") == guid }.count
        } else {
            config = nil
            labelCount = 0
        }
    }

    /// Judges one label's 112 KiB config block read at `labelOffset + 16 KiB`.
    static func judge(_ block: [UInt8], index: Int, labelOffset: UInt64, verifyingChecksum: Bool = true) -> Label {
        block.withUnsafeBytes { judge($0, index: index, labelOffset: labelOffset, verifyingChecksum: verifyingChecksum) }
    }

    static func judge(_ block: UnsafeRawBufferPointer, index: Int, labelOffset: UInt64, verifyingChecksum: Bool) -> Label {
        let blockOffset = labelOffset + UInt64(VdevLabel.configBlockOffset)
        let checksum = verifyingChecksum ? try? EmbeddedChecksum.verify(block, absoluteOffset: blockOffset) : nil
        var label = Label(index: index, absoluteOffset: labelOffset, verdict: .empty, checksum: checksum)
        let nvlistBytes = UnsafeRawBufferPointer(rebasing: block[0..<min(block.count, configNVListByteCount)])
        if nvlistBytes.allSatisfy({ $0 == 0 }) { return label }
        let config: NVList
        do {
            config = try NVList(decoding: nvlistBytes)
        } catch {
            label.verdict = .notAnNVList(error.message)
            return label
        }
        label.config = config
        label.verdict = verdict(of: config)
        return label
    }

    /// The userland acceptance rule for a decoded label config.
    static func verdict(of config: NVList) -> Verdict {
        guard let guid = config.uint64("guid"), guid != 0 else { return .noGUID }
        guard let rawState = config.uint64("state"), rawState <= PoolState.largestOnDisk.rawValue else {
            return .badState(config.uint64("state"))
        }
        if !PoolState(rawValue: rawState).isAuxiliary {
            guard let txg = config.uint64("txg"), txg != 0 else { return .uninitialized }
        }
        return .accepted
    }
}
