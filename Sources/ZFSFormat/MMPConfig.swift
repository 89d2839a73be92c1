/// The multihost (MMP) word of an uberblock: write interval, sequence, fail intervals, valid bits.
///
/// ```
///  63            48 47            32 31                             8 7      3 2 1 0
/// +----------------+----------------+--------------------------------+--------+-+-+-+
/// | fail intervals |    sequence    |   write interval (ms, 24 bit)  |reserved|F|S|I|
/// +----------------+----------------+--------------------------------+--------+-+-+-+
/// I = MMP_INTERVAL_VALID_BIT 0x01, S = MMP_SEQ_VALID_BIT 0x02, F = MMP_FAIL_INT_VALID_BIT 0x04
/// ```
///
/// The fields here are raw bits. Whether OpenZFS *trusts* a field also depends on the
/// uberblock (`MMP_VALID`: uberblock magic and `ub_mmp_magic` == ``MMPConfig/magic``); use
/// ``Uberblock/mmpWriteIntervalInMilliseconds``, ``Uberblock/mmpSequence`` and
/// ``Uberblock/mmpFailIntervals`` for the values OpenZFS would use.
///
/// Observed values: `0x3E807` (a txg sync of a multihost pool: interval 1000 ms, sequence 0,
/// fail intervals 0, all three valid), `0x30003E807` (an MMP heartbeat with sequence 3), `0`
/// (multihost off).
///
/// The corresponding OpenZFS field is `ub_mmp_config` (`include/sys/uberblock_impl.h`);
/// described in `shared/spec/ondisk.md` §5.4.
public struct MMPConfig: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The word as stored in the uberblock (after byte-order correction).
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// `MMP_MAGIC` (0xA11CEA11): the value of `ub_mmp_magic` when the MMP fields are meaningful.
    public static let magic: UInt64 = 0xA11C_EA11

    /// `MMP_INTERVAL_VALID_BIT`: the write interval field is set.
    public static let intervalValidBit: UInt64 = 0x01
    /// `MMP_SEQ_VALID_BIT`: the sequence field is set.
    public static let sequenceValidBit: UInt64 = 0x02
    /// `MMP_FAIL_INT_VALID_BIT`: the fail intervals field is set.
    public static let failIntervalsValidBit: UInt64 = 0x04
    /// Bits 3..7, reserved (zero in every writer so far).
    public static let reservedBits: UInt64 = 0xF8
    /// Bits 8..31: the write interval in milliseconds (`MMP_INTERVAL`).
    public static let intervalMask: UInt64 = 0x0000_0000_FFFF_FF00
    /// Bits 32..47: the heartbeat sequence within one second (`MMP_SEQ`).
    public static let sequenceMask: UInt64 = 0x0000_FFFF_0000_0000
    /// Bits 48..63: the fail intervals (`MMP_FAIL_INT`).
    public static let failIntervalsMask: UInt64 = 0xFFFF_0000_0000_0000
    /// `MMP_SEQ_MAX`: the largest sequence number.
    public static let maximumSequence: UInt16 = 0xFFFF
    /// The largest write interval the 24-bit field holds, in milliseconds (about 4.66 h).
    public static let maximumWriteIntervalInMilliseconds: UInt32 = 0xFF_FFFF

    /// All zero: what a sync writes when multihost is off.
    public static let none = MMPConfig(rawValue: 0)

    /// Builds a word the way `uberblock_update` and `mmp_write_uberblock` do, OR-ing the
    /// `MMP_*_SET` macros of the fields that are given.
    ///
    /// Each given field sets its valid bit; a field left `nil` stays zero and invalid.
    /// Values wider than their field are truncated, as the C macros do.
    ///
    /// - Parameters:
    ///   - writeIntervalInMilliseconds: `MMP_INTERVAL_SET(write)` (low 24 bits kept).
    ///   - sequence: `MMP_SEQ_SET(seq)`.
    ///   - failIntervals: `MMP_FAIL_INT_SET(fail)`.
    public init(writeIntervalInMilliseconds: UInt64? = nil, sequence: UInt16? = nil, failIntervals: UInt16? = nil) {
        var raw: UInt64 = 0
        if let writeIntervalInMilliseconds { raw |= Self.intervalField(writeIntervalInMilliseconds) }
        if let sequence { raw |= Self.sequenceField(sequence) }
        if let failIntervals { raw |= Self.failIntervalsField(failIntervals) }
        self.rawValue = raw
    }

    /// `MMP_INTERVAL_SET(write)`: `((write & 0xFFFFFF) << 8) | MMP_INTERVAL_VALID_BIT`.
    public static func intervalField(_ writeIntervalInMilliseconds: UInt64) -> UInt64 {
        ((writeIntervalInMilliseconds & 0xFF_FFFF) << 8) | intervalValidBit
    }

    /// `MMP_SEQ_SET(seq)`: `((seq & 0xFFFF) << 32) | MMP_SEQ_VALID_BIT`.
    public static func sequenceField(_ sequence: UInt16) -> UInt64 {
        (UInt64(sequence) << 32) | sequenceValidBit
    }

    /// `MMP_FAIL_INT_SET(fail)`: `((fail & 0xFFFF) << 48) | MMP_FAIL_INT_VALID_BIT`.
    public static func failIntervalsField(_ failIntervals: UInt16) -> UInt64 {
        (UInt64(failIntervals) << 48) | failIntervalsValidBit
    }

    /// Whether bit 0 (`MMP_INTERVAL_VALID_BIT`) is set.
    public var isIntervalValid: Bool { rawValue & Self.intervalValidBit != 0 }
    /// Whether bit 1 (`MMP_SEQ_VALID_BIT`) is set.
    public var isSequenceValid: Bool { rawValue & Self.sequenceValidBit != 0 }
    /// Whether bit 2 (`MMP_FAIL_INT_VALID_BIT`) is set.
    public var isFailIntervalsValid: Bool { rawValue & Self.failIntervalsValidBit != 0 }

    /// The low byte: the valid bits and the reserved bits (`zdb` prints it as `mmp_valid`).
    public var validBits: UInt8 { UInt8(truncatingIfNeeded: rawValue) }

    /// The raw write interval field in milliseconds (`MMP_INTERVAL`), valid bit not consulted.
    public var writeIntervalInMilliseconds: UInt32 {
        UInt32(truncatingIfNeeded: (rawValue & Self.intervalMask) >> 8)
    }

    /// The raw sequence field (`MMP_SEQ`), valid bit not consulted.
    public var sequence: UInt16 { UInt16(truncatingIfNeeded: (rawValue & Self.sequenceMask) >> 32) }

    /// The raw fail intervals field (`MMP_FAIL_INT`), valid bit not consulted.
    public var failIntervals: UInt16 { UInt16(truncatingIfNeeded: (rawValue & Self.failIntervalsMask) >> 48) }

    /// The same word with the sequence field and its valid bit cleared.
    ///
    /// The corresponding OpenZFS macro is `MMP_SEQ_CLEAR` (master only; 2.1.11 does not have it).
    public func clearingSequence() -> MMPConfig {
        MMPConfig(rawValue: rawValue & ~(Self.sequenceMask | Self.sequenceValidBit))
    }

    /// The same word with the sequence field replaced and marked valid (`MMP_SEQ_SET`).
    public func settingSequence(_ sequence: UInt16) -> MMPConfig {
        MMPConfig(rawValue: clearingSequence().rawValue | Self.sequenceField(sequence))
    }

    public var description: String {
        let hex = String(rawValue, radix: 16, uppercase: true)
        var parts: [String] = []
        if isIntervalValid { parts.append("interval \(writeIntervalInMilliseconds) ms") }
        if isSequenceValid { parts.append("seq \(sequence)") }
        if isFailIntervalsValid { parts.append("fail intervals \(failIntervals)") }
        return parts.isEmpty ? "0x\(hex)" : "0x\(hex) (\(parts.joined(separator: ", ")))"
    }
}
