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
