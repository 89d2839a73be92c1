// MARK: - Theory: vdev labels
//
// PURPOSE. Every leaf device of a pool carries four identical-in-intent 256 KiB labels
// (LabelLayout): two at the start, two at the end, so that a scribble over either end of the
// device leaves two good copies. A label tells an importer which pool the device belongs to and
// where it sits in the vdev tree (the config nvlist), and holds a ring of the most recent
// uberblocks, from which the importer picks the pool's current root.
//
// WHAT THIS CODE DOES NOT GUARANTEE. It decodes and encodes bytes only: no I/O, no nvlist
// decoding (the config area is handed out raw; NVList decodes it), no judgement on which label
// or uberblock to trust beyond the rules OpenZFS itself applies (EmbeddedChecksum, Uberblock.best).
// A label whose checksums are all valid may still belong to another pool, be stale, or describe
// a device that is now elsewhere in the tree; comparing guids and txgs across labels and
// devices is the importer's job. A "valid" status means "the bytes are what their writer wrote
// at this offset", not "this is the right pool".
//
// MECHANISM. Each label block (boot env, config, every uberblock slot) ends in a zio_eck_t
// trailer: SHA-256 over the block with the block's *absolute device offset* as verifier. So a
// label copied to another offset, or to another label position, fails verification — which is
// what lets a reader reject labels 2/3 left behind after a device grew. Byte order is that of
// the writer everywhere except the config nvlist (XDR, big-endian) and vbe_version (big-endian).
//
//   label (256 KiB)
//   0x00000 +-----------------------------+
//           | pad (8 KiB), never written  |  legacy VTOC / disk labels
//   0x02000 +-----------------------------+
//           | boot env (8 KiB)            |  vbe_version u64 BE | payload 8144 B | zio_eck_t
//   0x04000 +-----------------------------+
//           | config (112 KiB)            |  packed XDR nvlist, zero-filled to 0x1BFD8 | zio_eck_t
//   0x20000 +-----------------------------+
//           | uberblock ring (128 KiB)    |  UberblockRing: 16..128 slots, each with its own zio_eck_t
//   0x40000 +-----------------------------+
//
// INVARIANTS. A label is exactly 256 KiB and starts at a multiple of 256 KiB. The packed config
// fits in 0x1BFD8 bytes. A slot's trailer verifier is the slot's absolute offset; an
// initialised ring's single trailer covers the whole ring with the ring's offset as verifier.
//
// FAILURE CASES (OpenZFS's write order, vdev_label.c:vdev_config_sync, spec §1.6):
//   1. flush; 2. write configs to the even labels (0, 2), flush; 3. write the uberblock into slot
//   n of all four labels, flush; 4. write configs to the odd labels (1, 3), flush.
//   - crash during 2: even labels may be torn (checksum mismatch) or new; odd labels and all
//     rings are old and consistent -> import uses the old uberblock with an odd-label config.
//   - crash during 3: some slots hold the new uberblock, some the old; a torn slot fails its
//     checksum and is skipped -> the best usable uberblock is old or new, and a label config
//     with txg <= that uberblock's txg exists (even = new, odd = old).
//   - crash during 4: odd labels may be torn; even labels are new and match the new uberblock.
//   A reader must therefore pick the config with the largest txg <= the chosen uberblock's txg
//   (spec §4.6), and must never trust a config or slot whose checksum fails.
//
// TUNABLES. None here. Sizes are fixed by the on-disk format; the slot size follows the
// top-level vdev's ashift (UberblockRing.shift(ashift:), 1..8 KiB).
//
// WORKED NUMBERS (fixture label0-raidz-leaf.bin, 128 MiB leaf, ashift 9): label 0 config block
// at 0x4000 with trailer at 0x1FFD8, verifier 0x4000; boot env at 0x2000, verifier 0x2000; ring
// of 128 x 1 KiB slots, best uberblock in slot 104 at 0x3A000 (txg 232 = 104 mod 128). Label 1's
// config verifies with 0x44000, label 2's with 0x7F84000, label 3's with 0x7FC4000.

/// One 256 KiB vdev label as read from a leaf device: boot environment, raw config bytes, and
/// uberblock ring, each with the status of its embedded checksum.
///
/// Decoding never fails on bad content: checksum failures are reported per block, so the caller
/// can do what `zdb` does (show everything with a good magic) or what the kernel does (use only
/// blocks whose checksum is valid). The config nvlist is exposed as raw bytes for `NVList`.
///
/// The corresponding OpenZFS type is `vdev_label_t` (`include/sys/vdev_impl.h`); see
/// `module/zfs/vdev_label.c` and `shared/spec/ondisk.md` §1 and §2.
public struct VdevLabel: Sendable {
    /// `sizeof (vdev_label_t)`: 256 KiB.
    public static let byteCount = 0x40000
    /// Offset of `vl_pad1` in a label.
    public static let padOffset = 0
    /// `VDEV_PAD_SIZE`: size of `vl_pad1` (and of the boot-env block), 8 KiB.
    public static let padByteCount = 0x2000
    /// Offset of `vl_be` (the boot-environment block) in a label.
    public static let bootEnvironmentOffset = 0x2000
    /// `sizeof (vdev_boot_envblock_t)` = `VDEV_PAD_SIZE`.
    public static let bootEnvironmentByteCount = 0x2000
    /// `VDEV_SKIP_SIZE`: offset of `vl_vdev_phys` (the config block) in a label.
    public static let configBlockOffset = 0x4000
    /// `VDEV_PHYS_SIZE`: size of the config block, trailer included (112 KiB).
    public static let configBlockByteCount = 0x1C000
    /// `sizeof (vp_nvlist)`: room for the packed config nvlist (114 648 bytes).
    public static let configCapacity = configBlockByteCount - EmbeddedChecksum.byteCount
    /// Offset of `vl_uberblock` (the ring) in a label.
    public static let uberblockRingOffset = UberblockRing.offsetInLabel
    /// `VDEV_UBERBLOCK_RING`: size of the ring (128 KiB).
    public static let uberblockRingByteCount = UberblockRing.byteCount

    /// The slot shift for a top-level vdev's `ashift`: `min(max(ashift, 10), 13)`.
    ///
    /// The corresponding OpenZFS macro is `VDEV_UBERBLOCK_SHIFT`; see ``UberblockRing``.
    public static func uberblockShift(ashift: UInt64) -> Int { UberblockRing.shift(ashift: ashift) }

    /// The label's number on its device, 0...3.
    public let index: Int
    /// The absolute device offset the label was read from (``LabelLayout/labelOffset(index:deviceSize:)``).
    public let absoluteOffset: UInt64
    /// The label's 256 KiB as read.
    public let bytes: [UInt8]
    /// The decoded boot-environment block.
    public let bootEnvironment: BootEnvironment
    /// The embedded checksum of the boot-environment block (verifier: label offset + 0x2000).
    public let bootEnvironmentChecksum: EmbeddedChecksum.Status
    /// The embedded checksum of the config block (verifier: label offset + 0x4000).
    public let configChecksum: EmbeddedChecksum.Status

    /// Decodes a label.
    ///
    /// Computes the boot-env and config checksums; uberblock slots are decoded on demand by
    /// ``uberblockSlots(ashift:)`` because their size depends on the config's `ashift`.
    ///
    /// - Parameters:
    ///   - labelBytes: Exactly 256 KiB.
    ///   - absoluteOffset: The device offset the bytes were read from; every verifier derives from it.
    ///   - index: The label number, 0...3.
    /// - Throws: `FormatError` `.truncated` when fewer than 256 KiB are given, `.invalidSize`
    ///   when more, `.invalidLayout` when `index` is not 0...3.
    /// - Complexity: O(*n*): one SHA-256 pass over 120 KiB.
    public init(decoding labelBytes: [UInt8], absoluteOffset: UInt64, index: Int) throws(FormatError) {
        try Self.checkDecodable(byteCount: labelBytes.count, absoluteOffset: absoluteOffset, index: index)
        self.index = index
        self.absoluteOffset = absoluteOffset
        self.bytes = labelBytes
        (bootEnvironment, bootEnvironmentChecksum, configChecksum) = labelBytes.withUnsafeBytes { label in
            let boot = UnsafeRawBufferPointer(
                rebasing: label[Self.bootEnvironmentOffset..<(Self.bootEnvironmentOffset + Self.bootEnvironmentByteCount)])
            let config = UnsafeRawBufferPointer(
                rebasing: label[Self.configBlockOffset..<(Self.configBlockOffset + Self.configBlockByteCount)])
            return (
                BootEnvironment(decodingBlock: boot),
                EmbeddedChecksum.verifyUnchecked(boot, absoluteOffset: absoluteOffset &+ UInt64(Self.bootEnvironmentOffset)),
                EmbeddedChecksum.verifyUnchecked(config, absoluteOffset: absoluteOffset &+ UInt64(Self.configBlockOffset))
            )
        }
    }

    /// Decodes a label held in an array slice; same as the `[UInt8]` overload (copies 256 KiB once).
    public init(decoding labelBytes: ArraySlice<UInt8>, absoluteOffset: UInt64, index: Int) throws(FormatError) {
        try Self.checkDecodable(byteCount: labelBytes.count, absoluteOffset: absoluteOffset, index: index)
        try self.init(decoding: Array(labelBytes), absoluteOffset: absoluteOffset, index: index)
    }

    /// Decodes a label held in raw memory; same as the `[UInt8]` overload (copies 256 KiB once).
    public init(decoding labelBytes: UnsafeRawBufferPointer, absoluteOffset: UInt64, index: Int) throws(FormatError) {
        try Self.checkDecodable(byteCount: labelBytes.count, absoluteOffset: absoluteOffset, index: index)
        try self.init(decoding: Array(labelBytes), absoluteOffset: absoluteOffset, index: index)
    }

    /// Rejects inputs that cannot be a label before anything is copied.
    private static func checkDecodable(byteCount count: Int, absoluteOffset: UInt64, index: Int) throws(FormatError) {
        let place = "label \(index) at device offset 0x\(String(absoluteOffset, radix: 16))"
        guard count >= byteCount else {
            throw FormatError(
                .truncated,
                "\(place) is \(byteCount) bytes, but only \(count) were read; the device may be shorter than its labels",
                offset: count)
        }
        guard count == byteCount else {
            throw FormatError(
                .invalidSize, "\(place) is \(byteCount) bytes; pass exactly one label, not \(count) bytes",
                offset: byteCount)
        }
        guard (0..<LabelLayout.labelCount).contains(index) else {
            throw FormatError(.invalidLayout, "there is no label \(index): a device has labels 0 to 3")
        }
    }

    /// The config area: the packed XDR nvlist followed by zeros (0x1BFD8 bytes, trailer excluded).
    ///
    /// Returned whatever ``configChecksum`` says, as `zdb -l` would read it; decode it with `NVList`.
    public var configBytes: ArraySlice<UInt8> {
        bytes[Self.configBlockOffset..<(Self.configBlockOffset + Self.configCapacity)]
    }

    /// The config area, only if its embedded checksum is valid (what the kernel's
    /// `vdev_label_read_config` accepts).
    ///
    /// - Throws: `FormatError` `.checksumMismatch` when the trailer's words do not match,
    ///   `.badMagic` when there is no trailer; `offset` is the trailer's offset in the label.
    public func verifiedConfigBytes() throws(FormatError) -> ArraySlice<UInt8> {
        let trailer = Self.configBlockOffset + Self.configCapacity
        let blockOffset = "0x" + String(absoluteOffset &+ UInt64(Self.configBlockOffset), radix: 16)
        switch configChecksum {
        case .valid:
            return configBytes
        case .mismatch(let order):
            throw FormatError(
                .checksumMismatch,
                "label \(index) config at device offset \(blockOffset) fails its embedded SHA-256 checksum "
                    + "(\(order)-endian writer): it is corrupt, torn, or was written for another offset; "
                    + "use another label of this device",
                offset: trailer)
        case .noMagic:
            throw FormatError(
                .badMagic,
                "label \(index) config at device offset \(blockOffset) has no checksum trailer "
                    + "(no ZEC_MAGIC at label offset 0x\(String(trailer, radix: 16))); the label was never written",
                offset: trailer)
        }
    }

    /// The uberblock ring's 128 KiB.
    public var ringBytes: ArraySlice<UInt8> {
        bytes[Self.uberblockRingOffset..<(Self.uberblockRingOffset + Self.uberblockRingByteCount)]
    }

    /// Decodes every slot of the ring for a top-level vdev of the given `ashift`.
    ///
    /// - Parameter ashift: The `ashift` of the label's `vdev_tree` (9 when absent, as `zdb` assumes).
    /// - Returns: One ``UberblockRing/Slot`` per slot, in index order, each with its checksum
    ///   status and its uberblock (or `nil` when the magic is wrong).
    /// - Complexity: O(*n*): one SHA-256 pass over 128 KiB.
    public func uberblockSlots(ashift: UInt64) -> [UberblockRing.Slot] {
        uberblockSlots(ring: UberblockRing(ashift: ashift))
    }

    /// Decodes every slot of the ring with the given layout.
    public func uberblockSlots(ring: UberblockRing) -> [UberblockRing.Slot] {
        ringBytes.withUnsafeBytes { ring.decodeSlotsUnchecked($0, labelOffset: absoluteOffset) }
    }

    /// The checksum of the ring read as the one block `vdev_label_init` writes; `.valid` marks a
    /// freshly initialised label (or an idle spare / cache device) that has no usable uberblock.
    public func initializedRingChecksum() -> EmbeddedChecksum.Status {
        ringBytes.withUnsafeBytes {
            EmbeddedChecksum.verifyUnchecked($0, absoluteOffset: absoluteOffset &+ UInt64(Self.uberblockRingOffset))
        }
    }

    // MARK: - Boot environment

    /// The boot-environment block (`vl_be`): a version word and 8144 bytes for the boot loader.
    ///
    /// ```
    /// 0x0000  8      vbe_version   big-endian always (htonll): 0 VB_RAW (GRUB text), 1 VB_NVLIST (XDR nvlist)
    /// 0x0008  8144   vbe_bootenv   payload, zero-filled
    /// 0x1FD8  40     vbe_zbt       zio_eck_t, verifier = label offset + 0x2000
    /// ```
    ///
    /// Label initialisation writes it all zero (version `VB_RAW`, empty payload) with a valid trailer.
    ///
    /// The corresponding OpenZFS type is `vdev_boot_envblock_t` (`include/sys/vdev_impl.h`);
    /// see `vdev_label_read_bootenv` / `vdev_label_write_bootenv`.
    public struct BootEnvironment: Hashable, Sendable {
        /// `vbe_vers_t`.
        public struct Version: RawRepresentable, Hashable, Sendable {
            public var rawValue: UInt64
            public init(rawValue: UInt64) { self.rawValue = rawValue }
            /// `VB_RAW`: the payload is NUL-terminated text (GRUB's environment block).
            public static let raw = Version(rawValue: 0)
            /// `VB_NVLIST`: the payload is a packed XDR nvlist.
            public static let nvlist = Version(rawValue: 1)
        }

        /// Offset of `vbe_bootenv` in the block.
        public static let payloadOffset = 8
        /// `sizeof (vbe_bootenv)`: 8144 bytes.
        public static let payloadCapacity =
            VdevLabel.bootEnvironmentByteCount - payloadOffset - EmbeddedChecksum.byteCount

        /// `vbe_version`, stored big-endian.
        public var version: Version
        /// `vbe_bootenv`. Decoded: all 8144 bytes. Encoded: zero-padded to 8144 bytes.
        public var payload: [UInt8]

        public init(version: Version, payload: [UInt8]) {
            self.version = version
            self.payload = payload
        }

        /// What `vdev_label_init` writes: version `VB_RAW`, empty payload.
        public static let empty = BootEnvironment(version: .raw, payload: [])

        /// Whether the block is what label initialisation writes (version 0, payload all zero).
        public var isEmpty: Bool { version == .raw && payload.allSatisfy { $0 == 0 } }

        /// `block` is exactly ``VdevLabel/bootEnvironmentByteCount`` bytes.
        init(decodingBlock block: UnsafeRawBufferPointer) {
            version = Version(rawValue: OnDiskWord.load(block, at: 0, .big))
            payload = Array(block[Self.payloadOffset..<(Self.payloadOffset + Self.payloadCapacity)])
        }

        /// Writes the 8 KiB block (version, payload, sealed trailer) into `block`.
        func write(into block: UnsafeMutableRawBufferPointer, absoluteOffset: UInt64, byteOrder: Endianness) {
            block.initializeMemory(as: UInt8.self, repeating: 0)
            OnDiskWord.store(version.rawValue, into: block, at: 0, .big)
            UnsafeMutableRawBufferPointer(rebasing: block[Self.payloadOffset...]).copyBytes(from: payload)
            EmbeddedChecksum.sealUnchecked(block, absoluteOffset: absoluteOffset, byteOrder: byteOrder)
        }
    }

    // MARK: - Encoding

    /// What to put in the uberblock ring of an encoded label.
    public enum RingContents: Sendable {
        /// All zero: no slot has a trailer (not something OpenZFS writes; for tests).
        case zero
        /// The ring `vdev_label_init` writes: `template` with txg 0 in slot 0, one checksum over
        /// the whole ring (``UberblockRing/encodeInitialized(template:labelOffset:byteOrder:)``).
        case initialized(template: Uberblock)
        /// The ring a series of txg syncs leaves: each uberblock in its sync slot, each slot
        /// sealed (``UberblockRing/encode(uberblocks:multihost:labelOffset:byteOrder:)``).
        case synced([Uberblock], layout: UberblockRing, multihost: Bool)
        /// A ring already encoded for *this* label's offset (128 KiB), copied as is.
        case encoded([UInt8])
    }

    /// Encodes a whole label for label position `labelIndex` of a device of `deviceSize` bytes.
    ///
    /// The label offset, and with it every checksum verifier, follows from `labelIndex` and
    /// `deviceSize` (``LabelLayout/labelOffset(index:deviceSize:)``).
    ///
    /// - Parameters:
    ///   - configPacked: The packed XDR config nvlist; zero-padded to 0x1BFD8 bytes.
    ///   - bootEnvironment: The boot-env block; ``BootEnvironment/empty`` as label init writes it.
    ///   - ring: The uberblock ring contents.
    ///   - labelIndex: The label number, 0...3.
    ///   - deviceSize: The leaf device's size in bytes.
    ///   - byteOrder: The writer's byte order for trailers and uberblocks (the nvlist is XDR and
    ///     `vbe_version` big-endian regardless).
    /// - Returns: 256 KiB.
    /// - Throws: `FormatError` `.tooLarge` when the config exceeds 0x1BFD8 bytes or the boot-env
    ///   payload 8144 bytes; `.invalidLayout` when the label does not fit on the device or
    ///   `labelIndex` is not 0...3; `.invalidSize` when an `.encoded` ring is not 128 KiB.
    public static func encode(
        configPacked: [UInt8],
        bootEnvironment: BootEnvironment = .empty,
        ring: RingContents,
        labelIndex: Int,
        deviceSize: UInt64,
        byteOrder: Endianness
    ) throws(FormatError) -> [UInt8] {
        guard let labelOffset = LabelLayout.labelOffset(index: labelIndex, deviceSize: deviceSize) else {
            throw FormatError(
                .invalidLayout,
                "label \(labelIndex) does not fit on a device of \(deviceSize) bytes: a device has labels 0 to 3, "
                    + "and needs at least \(LabelLayout.labelCount * byteCount) bytes for all of them")
        }
        return try encode(
            configPacked: configPacked, bootEnvironment: bootEnvironment, ring: ring,
            labelOffset: labelOffset, byteOrder: byteOrder)
    }

    /// Encodes a whole label to be written at absolute device offset `labelOffset`.
    ///
    /// Same as ``encode(configPacked:bootEnvironment:ring:labelIndex:deviceSize:byteOrder:)``
    /// for callers that already know the offset.
    public static func encode(
        configPacked: [UInt8],
        bootEnvironment: BootEnvironment = .empty,
        ring: RingContents,
        labelOffset: UInt64,
        byteOrder: Endianness
    ) throws(FormatError) -> [UInt8] {
        guard configPacked.count <= configCapacity else {
            throw FormatError(
                .tooLarge,
                "the packed config is \(configPacked.count) bytes, but a label holds at most \(configCapacity) "
                    + "(OpenZFS fails with ENAMETOOLONG); remove properties or vdevs from the config")
        }
        guard bootEnvironment.payload.count <= BootEnvironment.payloadCapacity else {
            throw FormatError(
                .tooLarge,
                "the boot environment is \(bootEnvironment.payload.count) bytes, but a label holds at most "
                    + "\(BootEnvironment.payloadCapacity)")
        }
        let ringBytes: [UInt8]
        switch ring {
        case .zero:
            ringBytes = [UInt8](repeating: 0, count: UberblockRing.byteCount)
        case .initialized(let template):
            ringBytes = UberblockRing.encodeInitialized(template: template, labelOffset: labelOffset, byteOrder: byteOrder)
        case .synced(let uberblocks, let layout, let multihost):
            ringBytes = layout.encode(uberblocks: uberblocks, multihost: multihost, labelOffset: labelOffset, byteOrder: byteOrder)
        case .encoded(let bytes):
            guard bytes.count == UberblockRing.byteCount else {
                throw FormatError(
                    .invalidSize, "an encoded uberblock ring is \(UberblockRing.byteCount) bytes, not \(bytes.count)")
            }
            ringBytes = bytes
        }

        var label = [UInt8](repeating: 0, count: byteCount)
        label.withUnsafeMutableBytes { all in
            let boot = UnsafeMutableRawBufferPointer(
                rebasing: all[bootEnvironmentOffset..<(bootEnvironmentOffset + bootEnvironmentByteCount)])
            bootEnvironment.write(
                into: boot, absoluteOffset: labelOffset &+ UInt64(bootEnvironmentOffset), byteOrder: byteOrder)

            let config = UnsafeMutableRawBufferPointer(
                rebasing: all[configBlockOffset..<(configBlockOffset + configBlockByteCount)])
            config.copyBytes(from: configPacked)
            EmbeddedChecksum.sealUnchecked(
                config, absoluteOffset: labelOffset &+ UInt64(configBlockOffset), byteOrder: byteOrder)

            UnsafeMutableRawBufferPointer(rebasing: all[uberblockRingOffset...]).copyBytes(from: ringBytes)
        }
        return label
    }
}
