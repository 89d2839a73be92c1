// Reading and judging the four labels of one device, the way the kernel does on import.
//
// Unlike `zdb -l` (see ZPKCLI's ZdbLabelDump), this reader verifies every embedded checksum
// (`spec/ondisk.md` §2) and never trusts a block whose checksum fails. It is the first step of
// an import scan (`spec/import-and-mmp.md` §1) and the data behind `zpk label --json`.
//
// Label offsets follow `vdev_label_offset` on the device size rounded down to 256 KiB. A device
// too small to hold four labels (less than 1 MiB) has no labels 2 and 3: they are reported as
// unreadable rather than read at wrapped offsets, as zdb does.
//
// The uberblock ring's slot size follows the top-level vdev's ashift (§1.4). Each label's ring
// is read with the ashift of its own config when that config is valid, else with that of the
// first valid config on the device, else with the minimum (9, 1 KiB slots).

import ZFSDevice
import ZFSFormat

/// The four labels of one device, each with its checksum verdicts.
public struct DeviceLabels: Sendable {
    /// How a label's config area fared.
    public enum Status: String, Hashable, Sendable {
        /// The config checksum verifies and the nvlist decodes.
        case valid
        /// The config area holds data but its checksum trailer is missing or wrong.
        case badChecksum = "bad-checksum"
        /// The checksum verifies but the nvlist does not decode (a writer bug, never seen).
        case corrupt
        /// The label could not be read (I/O error, or the device is too small to hold it).
        case unreadable
        /// The config area is all zeros: never written, or wiped (`zpool labelclear`).
        case empty
    }

    /// One label.
    public struct Label: Sendable {
        /// 0 to 3.
        public var index: Int
        /// Where the label starts on the device; `nil` when the device cannot hold it.
        public var absoluteOffset: UInt64?
        public var status: Status
        /// The decoded config, also for a `badChecksum` label whose nvlist still decodes.
        public var config: NVList?
        /// Why the label is not `valid`, in words that name the device and offset.
        public var problem: String?
        /// The config block's checksum verdict; `nil` when unread.
        public var configChecksum: EmbeddedChecksum.Status?
        /// The ring's slots that hold anything (an uberblock magic, or a checksum trailer).
        public var slots: [UberblockRing.Slot]
        /// The ring geometry the slots were read with.
        public var ring: UberblockRing?
    }

    public var path: String
    public var sizeInBytes: UInt64
    public var labels: [Label]

    /// The four label offsets of a device of `sizeInBytes`, `nil` where it cannot hold one.
    ///
    /// The corresponding OpenZFS function is `vdev_label_offset`.
    public static func labelOffsets(deviceSize sizeInBytes: UInt64) -> [UInt64?] {
        let labelSize = UInt64(VdevLabel.byteCount)
        let aligned = sizeInBytes - sizeInBytes % labelSize
        return (0..<LabelLayout.labelCount).map { index -> UInt64? in
            let index = UInt64(index)
            guard aligned >= UInt64(LabelLayout.labelCount) * labelSize else {
                return index < 2 && (index + 1) * labelSize <= aligned ? index * labelSize : nil
            }
            return index < 2 ? index * labelSize : aligned - (4 - index) * labelSize
        }
    }

    /// Reads and verifies the four labels of `device`. Never throws: every failure is recorded
    /// on the label it concerns.
    public init(reading device: any BlockDevice) {
        path = device.path
        sizeInBytes = device.sizeInBytes
        var labels: [Label] = []
        var decoded: [Int: VdevLabel] = [:]
        for (index, offset) in Self.labelOffsets(deviceSize: sizeInBytes).enumerated() {
            var label = Label(index: index, absoluteOffset: offset, status: .unreadable, slots: [])
            defer { labels.append(label) }
            guard let offset else {
                label.problem = "label \(index) does not fit on \(device.path): the device is \(sizeInBytes) bytes, less than four 256 KiB labels"
                continue
            }
            let bytes: [UInt8]
            do {
                bytes = try device.read(count: VdevLabel.byteCount, atAbsoluteOffset: offset)
            } catch {
                label.problem = "label \(index) of \(device.path) could not be read: \(error.message)"
                continue
            }
            guard let vdevLabel = try? VdevLabel(decoding: bytes, absoluteOffset: offset, index: index) else {
                label.problem = "label \(index) of \(device.path) could not be decoded"
                continue
            }
            decoded[index] = vdevLabel
            label.configChecksum = vdevLabel.configChecksum
            Self.judgeConfig(&label, vdevLabel, path: device.path)
        }
        let fallbackAshift = labels.lazy.filter { $0.status == .valid }
            .compactMap { $0.config?.list("vdev_tree")?.uint64("ashift") }.first ?? 9
        for i in labels.indices {
            guard let vdevLabel = decoded[labels[i].index], let offset = labels[i].absoluteOffset else { continue }
            let ownAshift = labels[i].status == .valid ? labels[i].config?.list("vdev_tree")?.uint64("ashift") : nil
            let ring = UberblockRing(ashift: ownAshift ?? fallbackAshift)
            labels[i].ring = ring
            let ringBytes = vdevLabel.bytes[VdevLabel.uberblockRingOffset..<(VdevLabel.uberblockRingOffset + VdevLabel.uberblockRingByteCount)]
            let slots = (try? ring.decodeSlots(ringBytes, labelOffset: offset)) ?? []
            labels[i].slots = slots.filter { $0.uberblock != nil || $0.checksum != .noMagic }
        }
        self.labels = labels
    }

    private static func judgeConfig(_ label: inout Label, _ vdevLabel: VdevLabel, path: String) {
        let area = vdevLabel.configBytes
        let offset = "0x" + String(vdevLabel.absoluteOffset + UInt64(VdevLabel.configBlockOffset), radix: 16)
        let config = try? NVList(decoding: area)
        label.config = config
        switch vdevLabel.configChecksum {
        case .valid:
            if config != nil {
                label.status = .valid
            } else {
                label.status = .corrupt
                label.problem = "label \(label.index) of \(path): the config at offset \(offset) passes its checksum but is not a valid nvlist"
            }
        case .mismatch:
            label.status = .badChecksum
            label.problem = "label \(label.index) of \(path): the config at offset \(offset) fails its SHA-256 checksum (corrupt, torn, or written for another offset)"
        case .noMagic:
            if area.allSatisfy({ $0 == 0 }) {
                label.status = .empty
                label.problem = "label \(label.index) of \(path) is empty (all zeros at offset \(offset))"
            } else {
                label.status = .badChecksum
                label.problem = "label \(label.index) of \(path): the config at offset \(offset) has no checksum trailer; it was not written by ZFS"
            }
        }
    }
}
