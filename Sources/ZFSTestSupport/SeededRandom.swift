/// A small, fast, repeatable random number generator (SplitMix64) for tests and fuzzing.
///
/// The same seed always gives the same sequence, so a failing case is replayed by its seed.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// The seed of this test run's random choices: `$ZPK_TEST_SEED` when set (to replay a
/// failure), else drawn at random. Print it where a failure would need it.
public enum TestSeed {
    public static let value: UInt64 = {
        if let pinned = getenv("ZPK_TEST_SEED").flatMap({ UInt64(String(cString: $0)) }) {
            return pinned
        }
        return UInt64.random(in: 1 ... .max)
    }()
}

/// Makes `localtime()` in this process use UTC, the zone of `OpenZFS.pinnedEnvironment`, so
/// that in-process renderings of uberblock times compare equal to zdb's.
public func useUTCForLocalTime() {
    setenv("TZ", "UTC", 1)
    tzset()
}
