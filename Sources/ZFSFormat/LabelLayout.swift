/// Where the four labels, the boot region and the allocatable space lie on a leaf device.
///
/// ```
/// 0        256K      512K                      4M                          A-512K    A-256K     A
/// +---------+---------+------------------------+---------------------------+---------+---------+
/// | label 0 | label 1 | boot region (3.5 MiB)  | allocatable space (asize) | label 2 | label 3 |
/// +---------+---------+------------------------+---------------------------+---------+---------+
/// A = device size rounded down to 256 KiB; asize = A - 4.5 MiB
/// ```
///
/// Labels 2 and 3 are placed from the *end*, so they move when a device grows. All label I/O
/// uses absolute device offsets, and every embedded checksum's verifier is one.
///
/// Worked numbers (the 128 MiB fixture leaf): labels at 0x0, 0x40000, 0x7F80000, 0x7FC0000;
/// asize 0x7B80000 = 129 499 136. A 256 KiB file has labels 0 and 3 both at offset 0, and
/// no room for labels 1 and 2 (`zdb -lu` prints "labels = 0 3").
///
/// The corresponding OpenZFS definitions are in `include/sys/vdev_impl.h` and
/// `module/zfs/vdev_label.c:vdev_label_offset`; described in `shared/spec/ondisk.md` §1.2 and §1.5.
public enum LabelLayout {
    /// `VDEV_LABELS`: labels per leaf device.
    public static let labelCount = 4
    /// `VDEV_BOOT_OFFSET`: start of the boot region, after labels 0 and 1.
    public static let bootRegionOffset: UInt64 = 0x80000
    /// `VDEV_BOOT_SIZE`: size of the boot region (3.5 MiB); OpenZFS 2.1.11 never writes it.
    public static let bootRegionByteCount: UInt64 = 0x38_0000
    /// `VDEV_LABEL_START_SIZE`: labels 0, 1 and the boot region; allocatable space starts here.
    public static let startByteCount: UInt64 = 0x40_0000
    /// `VDEV_LABEL_END_SIZE`: labels 2 and 3 at the end of the device.
    public static let endByteCount: UInt64 = 0x80000
    /// `SPA_MINDEVSIZE` (`include/sys/fs/zfs.h`): the smallest leaf OpenZFS accepts, 64 MiB.
    public static let minimumDeviceByteCount: UInt64 = 64 << 20

    /// The device size rounded down to a whole number of labels (256 KiB).
    ///
    /// The corresponding OpenZFS code is `P2ALIGN(osize, sizeof (vdev_label_t))` in `vdev_open`.
    public static func alignedDeviceSize(_ deviceSize: UInt64) -> UInt64 {
        deviceSize - deviceSize % UInt64(VdevLabel.byteCount)
    }

    /// The absolute byte offset of label `index` on a device of `deviceSize` bytes.
    ///
    /// Labels 0 and 1 are at 0 and 256 KiB; labels 2 and 3 at 512 KiB and 256 KiB before the
    /// aligned end.
    ///
    /// The corresponding OpenZFS function is `vdev_label_offset` (`module/zfs/vdev_label.c`).
    /// - Parameters:
    ///   - index: The label number, 0...3.
    ///   - deviceSize: The device size in bytes (not necessarily aligned).
    /// - Returns: The offset, or `nil` when `index` is not 0...3 or the label does not lie
    ///   wholly inside the aligned device (a device smaller than four labels).
    public static func labelOffset(index: Int, deviceSize: UInt64) -> UInt64? {
        guard (0..<labelCount).contains(index) else { return nil }
        let aligned = alignedDeviceSize(deviceSize)
        let label = UInt64(VdevLabel.byteCount)
        let offset: UInt64
        if index < labelCount / 2 {
            offset = UInt64(index) * label
        } else {
            let fromEnd = UInt64(labelCount - index) * label
            guard aligned >= fromEnd else { return nil }
            offset = aligned - fromEnd
        }
        guard offset + label <= aligned else { return nil }
        return offset
    }

    /// The range of absolute offsets that holds pool data: `[4 MiB, A - 512 KiB)`.
    ///
    /// DVA offsets count from its start. `nil` when the device is too small to have any.
    public static func allocatableRange(deviceSize: UInt64) -> Range<UInt64>? {
        let aligned = alignedDeviceSize(deviceSize)
        guard aligned > startByteCount + endByteCount else { return nil }
        return startByteCount..<(aligned - endByteCount)
    }

    /// The leaf's allocatable size: `A - (VDEV_LABEL_START_SIZE + VDEV_LABEL_END_SIZE)`.
    ///
    /// The corresponding OpenZFS code is in `vdev_open` (`module/zfs/vdev.c`). Returns 0 when
    /// the device is too small to have any allocatable space; OpenZFS refuses leaves smaller
    /// than ``minimumDeviceByteCount`` anyway.
    public static func asize(deviceSize: UInt64) -> UInt64 {
        guard let range = allocatableRange(deviceSize: deviceSize) else { return 0 }
        return range.upperBound - range.lowerBound
    }
}
