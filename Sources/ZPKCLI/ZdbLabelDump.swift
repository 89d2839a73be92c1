// `zpk label`: the labels of one device, printed exactly as OpenZFS 2.1.11's `zdb -l`/`-lu`.
//
// The corresponding OpenZFS function is `dump_label` (`cmd/zdb/zdb.c`). Its behaviour is
// reproduced step by step, quirks included, because scripts compare its output:
//
//   1. The device size is rounded down to 256 KiB; label offsets follow `vdev_label_offset`
//      with unsigned arithmetic, so on a device smaller than 1 MiB labels 2 and 3 land at
//      wrapped offsets (a 256 KiB file shows "labels = 0 3").
//   2. Each label is read whole; a failed read prints "failed to read label N".
//   3. The config area is unpacked as an nvlist; labels with byte-identical configs (zdb
//      compares a fletcher-4 of `nvlist_size` bytes; we compare those bytes) are printed once,
//      under the first label that has it, followed by "labels = " and their numbers.
//   4. Every uberblock slot whose magic is valid (after byte-swapping a foreign one) is
//      grouped the same way by its 208 bytes. The ring's slot count comes from the `ashift`
//      of the most recently unpacked label, a variable zdb never resets between labels, and
//      the print loop uses its final value for every label.
//   5. zdb never verifies embedded checksums. Neither does this text form; `--json` does.
//   6. Exit status: 2 when no label unpacked, 1 when any label failed to read or unpack,
//      else 0.
//
// Deliberate differences: a FIFO or socket is refused at once (zdb opens a FIFO and blocks
// forever waiting for a writer); a directory or character device prints zdb's four "failed
// to read" lines without being opened; an L2ARC log-block chain that loops back on itself is
// reported and left (zdb walks it forever; see L2ARCLogBlocks.swift). Everything else
// matches byte for byte.

import SystemPackage
import ZFSDevice
import ZFSFormat

#if canImport(Glibc)
import Glibc
#endif

/// The four labels of one device as zdb reads them (no checksum verification).
struct ZdbLabelScan {
    /// One of the four 256 KiB label reads.
    struct Label {
        var index: Int
        var absoluteOffset: UInt64
        /// `nil` when the read failed ("failed to read label N").
        var bytes: [UInt8]?
        /// The unpacked config, or the reason it did not unpack.
        var config: Result<NVList, FormatError>?
        /// The record key zdb checksums to tell identical configs apart.
        var configKey: [UInt8]?
        /// Per ring slot (as indexed when the label was read): the 208-byte host-order image
        /// of an uberblock whose magic was valid.
        var uberblockKeys: [Int: [UInt8]] = [:]
        /// Per ring slot: the decoded uberblock.
        var uberblocks: [Int: Uberblock] = [:]
        /// Label offsets of the slots whose magic was byte-swapped: zdb's `uberblock_verify`
        /// swapped them in place, so whatever later reads those bytes reads them swapped.
        var swappedInPlace: Set<Int> = []
    }

    var path: String
    var deviceSize: UInt64
    var alignedSize: UInt64
    var labels: [Label]
    /// `ashift` after the last label was read (zdb's variable; see the file comment).
    var finalAshift: UInt64
    /// Whether a label said this is an L2ARC device (state 4).
    var isL2ARCDevice: Bool
    var device: any BlockDevice

    /// Reads the labels of an open device the way `dump_label` does.
    init(device: any BlockDevice) {
        self.device = device
        path = device.path
        deviceSize = device.sizeInBytes
        alignedSize = deviceSize & ~UInt64(VdevLabel.byteCount - 1)
        labels = []
        var ashift: UInt64 = 9  // SPA_MINBLOCKSHIFT
        isL2ARCDevice = false
        for index in 0..<LabelLayout.labelCount {
            let offset = ZdbLabelScan.zdbLabelOffset(alignedSize: alignedSize, index: index)
            var label = Label(index: index, absoluteOffset: offset)
            guard let bytes = try? device.read(count: VdevLabel.byteCount, atAbsoluteOffset: offset) else {
                labels.append(label)
                continue
            }
            label.bytes = bytes
            let area = bytes[VdevLabel.configBlockOffset..<(VdevLabel.configBlockOffset + VdevLabel.configCapacity)]
            do {
                let config = try NVList(decoding: area)
                label.config = .success(config)
                if let tree = config.list("vdev_tree"), let value = tree.uint64("ashift") {
                    ashift = value
                } else {
                    ashift = 9
                }
                let size = (try? config.openZFSXDRSize()) ?? VdevLabel.configCapacity
                label.configKey = Array(area.prefix(size))
                if config.uint64("state") == 4 { isL2ARCDevice = true }
            } catch {
                label.config = .failure(error)
            }
            let ring = UberblockRing(ashift: ashift)
            for slot in ring.slotIndices {
                let start = ring.slotOffsetInLabel(slot)
                let image = bytes[start..<(start + Uberblock.byteCount)]
                guard let uberblock = try? Uberblock(decoding: image) else { continue }
                label.uberblocks[slot] = uberblock
                label.uberblockKeys[slot] = Array(uberblock.encode(byteOrder: .host).prefix(Uberblock.byteCount))
                if uberblock.byteOrder != .host { label.swappedInPlace.insert(start) }
            }
            labels.append(label)
        }
        finalAshift = ashift
    }

    /// `vdev_label_offset(psize, l, 0)` in zdb's unsigned arithmetic.
    static func zdbLabelOffset(alignedSize: UInt64, index: Int) -> UInt64 {
        let size = UInt64(VdevLabel.byteCount)
        let index = UInt64(index)
        return index < 2 ? index * size : alignedSize &- 4 &* size &+ index &* size
    }

    /// The labels (by index) whose config bytes equal those of `label`.
    func labelsSharingConfig(with label: Label) -> [Int] {
        labels.filter { $0.configKey != nil && $0.configKey == label.configKey }.map(\.index)
    }

    func labelsSharingUberblock(_ key: [UInt8]) -> [Int] {
        labels.filter { $0.uberblockKeys.values.contains(key) }.map(\.index)
    }
}

/// Renders `zdb -l` / `zdb -lu` text and exit status.
enum ZdbLabelDump {
    struct Output: Equatable {
        /// What is printed, byte for byte: names and strings of a damaged label keep bytes that
        /// are not valid UTF-8, as zdb prints them (`%s`).
        var bytes: [UInt8]
        var status: Int32

        init(bytes: [UInt8], status: Int32) {
            self.bytes = bytes
            self.status = status
        }

        init(text: String, status: Int32) {
            self.init(bytes: Array(text.utf8), status: status)
        }

        /// The output as a Swift string (bytes that are not valid UTF-8 become U+FFFD).
        var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    /// What `zdb -l[u] path` prints, without opening anything zdb would block on.
    static func run(path: String, uberblocks: Bool) -> Output {
        let resolved: String
        if !path.hasPrefix("/") && !DeviceOpener.isNetworkPath(path) && !fileExists(path) {
            guard let found = resolveShortName(path) else {
                return Output(text: "failed to find device \(path), try specifying absolute path instead\n", status: 1)
            }
            resolved = found
        } else {
            resolved = path
        }
        let device: any BlockDevice
        do {
            device = try DeviceOpener.open(path: resolved)
        } catch {
            if error.code == .notADevice, isDirectory(resolved) || isCharacterDevice(resolved) {
                // zdb opens a directory or a character device (/dev/null), reads nothing, and
                // finds no config. We do not open them: a character device can have side
                // effects on open (a tape rewinds), and the answer is the same.
                let text = (0..<LabelLayout.labelCount).map { "failed to read label \($0)\n" }.joined()
                return Output(text: text, status: 2)
            }
            if error.code == .notADevice {
                return Output(text: "cannot open '\(resolved)': not a regular file or block device\n", status: 1)
            }
            return Output(text: "cannot open '\(resolved)': \(systemMessage(error))\n", status: 1)
        }
        defer { try? device.close() }
        return render(ZdbLabelScan(device: device), uberblocks: uberblocks)
    }

    static func render(_ scan: ZdbLabelScan, uberblocks: Bool) -> Output {
        var out: [UInt8] = []
        var error = false
        var configFound = false
        for label in scan.labels where label.bytes == nil {
            out.append(contentsOf: "failed to read label \(label.index)\n".utf8)
            error = true
        }
        for label in scan.labels {
            if case .success = label.config { configFound = true }
            if case .failure = label.config { error = true }
        }
        for label in scan.labels where label.bytes != nil {
            var headerPrinted = false
            func header() {
                guard !headerPrinted else { return }
                out.append(contentsOf: "------------------------------------\nLABEL \(label.index)\n------------------------------------\n".utf8)
                headerPrinted = true
            }
            switch label.config {
            case .success(let config)?:
                let sharing = scan.labelsSharingConfig(with: label)
                if sharing.first == label.index {
                    header()
                    out += config.dumpBytes(indent: 4)
                    out.append(contentsOf: ("    labels = " + sharing.map { "\($0) " }.joined() + "\n").utf8)
                }
            default:
                out.append(contentsOf: "failed to unpack label \(label.index)\n".utf8)
            }
            guard uberblocks else { continue }
            let ring = UberblockRing(ashift: scan.finalAshift)
            guard let bytes = label.bytes else { continue }
            for slot in ring.slotIndices {
                guard let key = label.uberblockKeys[slot] else { continue }
                let sharing = scan.labelsSharingUberblock(key)
                guard sharing.first == label.index else { continue }
                // zdb prints the 208 bytes at this slot's offset under the *final* ashift,
                // whatever they are: where a label was scanned with a smaller ashift (its own
                // config did not unpack), the slot the record came from and the bytes printed
                // differ, and the printed ones may not be an uberblock at all.
                let start = ring.slotOffsetInLabel(slot)
                let (magic, uberblock) = Self.asPrinted(
                    bytes[start..<(start + Uberblock.byteCount)], swappedInPlace: label.swappedInPlace.contains(start))
                if uberblock.mmpMagic == MMPConfig.magic, uberblock.mmpDelayInNanoseconds != 0,
                    slot >= ring.slotCount - UberblockRing.mmpSlotsPerLabel
                {
                    continue
                }
                header()
                out.append(contentsOf: "    Uberblock[\(slot)]\n".utf8)
                out.append(contentsOf: uberblockText(uberblock, magic: magic).utf8)
                out.append(contentsOf: ("        labels = " + sharing.map { "\($0) " }.joined() + "\n").utf8)
            }
        }
        if scan.isL2ARCDevice {
            let l2arc = L2ARCHeaderDump.render(device: scan.device)
            out.append(contentsOf: l2arc.text.utf8)
            error = error || l2arc.failed
        }
        return Output(bytes: out, status: !configFound ? 2 : (error ? 1 : 0))
    }

    /// The fields `dump_uberblock` prints from `image`, read in host order as its struct
    /// access reads them (byte-swapped only when zdb's scan swapped these bytes in place), and
    /// the magic word as read.
    static func asPrinted(_ image: ArraySlice<UInt8>, swappedInPlace: Bool) -> (magic: UInt64, uberblock: Uberblock) {
        if swappedInPlace, let swapped = try? Uberblock(decoding: image) { return (Uberblock.magic, swapped) }
        // Decode with the magic word replaced by the host-order magic: every other field is
        // then read in host order, as it lies.
        var patched = Array(image)
        let rawMagic = patched.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        withUnsafeBytes(of: Uberblock.magic) { patched.replaceSubrange(0..<8, with: $0) }
        // Cannot fail: 208 bytes with a valid magic.
        let uberblock = (try? Uberblock(decoding: patched)) ?? Uberblock(txg: TXG(0), guidSum: 0, timestampInSeconds: 0)
        return (rawMagic, uberblock)
    }

    /// `dump_uberblock(ub, header, "")` without its header line; `magic` is the word as read.
    static func uberblockText(_ ub: Uberblock, magic: UInt64 = Uberblock.magic) -> String {
        var out = ""
        out += "\tmagic = \(hex16(magic))\n"
        out += "\tversion = \(ub.version)\n"
        out += "\ttxg = \(ub.txg.rawValue)\n"
        out += "\tguid_sum = \(ub.guidSum)\n"
        out += "\ttimestamp = \(ub.timestampInSeconds) UTC = \(localAsctime(ub.timestampInSeconds))"
        out += "\tmmp_magic = \(hex16(ub.mmpMagic))\n"
        if ub.isMMPValid {
            out += "\tmmp_delay = \(ub.mmpDelayInNanoseconds)\n"
            if let seq = ub.mmpSequence { out += "\tmmp_seq = \(seq)\n" }
            if let fail = ub.mmpFailIntervals { out += "\tmmp_fail = \(fail)\n" }
            if let interval = ub.mmpWriteIntervalInMilliseconds { out += "\tmmp_write = \(interval)\n" }
            out += "\tmmp_valid = \(String(ub.mmpConfig.validBits, radix: 16))\n"
        }
        out += "\tcheckpoint_txg = \(ub.checkpointTXG.rawValue)\n"
        return out
    }

    static func hex16(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }

    /// `asctime(localtime(&t))`, newline included, as glibc formats it: "(null)" (with no
    /// newline, as printf prints a NULL string) where `localtime` gives up, and years past
    /// 9999 printed in full (glibc's `asctime` does; `asctime_r` refuses them).
    static func localAsctime(_ seconds: UInt64) -> String {
        var time = time_t(truncatingIfNeeded: Int64(bitPattern: seconds))
        var parts = tm()
        guard localtime_r(&time, &parts) != nil, parts.tm_year <= Int32.max - 1900 else { return "(null)" }
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let day = days.indices.contains(Int(parts.tm_wday)) ? days[Int(parts.tm_wday)] : "???"
        let month = months.indices.contains(Int(parts.tm_mon)) ? months[Int(parts.tm_mon)] : "???"
        func two(_ n: Int32) -> String { n < 10 && n >= 0 ? "0\(n)" : "\(n)" }
        let mday = String(parts.tm_mday)
        let paddedDay = String(repeating: " ", count: max(0, 3 - mday.count)) + mday
        return "\(day) \(month)\(paddedDay) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) \(Int(parts.tm_year) + 1900)\n"
    }

    static func systemMessage(_ error: DeviceError) -> String {
        if let cause = error.cause {
            return String(cString: strerror(cause.rawValue))
        }
        return error.message
    }

    static func fileExists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    static func isCharacterDevice(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFCHR
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// `zfs_resolve_shortname`: a bare name is looked up in the directories OpenZFS searches
    /// for devices (`zpool_default_search_paths`, or `$ZPOOL_IMPORT_PATH`).
    static func resolveShortName(_ name: String) -> String? {
        let directories: [String]
        if let custom = getenv("ZPOOL_IMPORT_PATH").map({ String(cString: $0) }) {
            directories = custom.split(separator: ":").map(String.init)
        } else {
            directories = [
                "/dev/disk/by-vdev", "/dev/mapper", "/dev/disk/by-partlabel", "/dev/disk/by-partuuid",
                "/dev/disk/by-label", "/dev/disk/by-uuid", "/dev/disk/by-id", "/dev/disk/by-path", "/dev",
            ]
        }
        for directory in directories {
            let candidate = directory + "/" + name
            if fileExists(candidate) { return candidate }
        }
        return nil
    }
}
