/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014):
/// a seeded generator costing a few arithmetic operations per number. The same seed always
/// gives the same sequence, so a run that chose with it is replayed by its seed.
///
/// The package's one seeded generator: the heartbeat chooses each heartbeat's label with it
/// (spread, not secrecy — the system generator costs a system call per number), and tests,
/// fuzzing and benchmarks draw their inputs from it. It lives here, in the lowest module, so that
/// every module and the Benchmarks package can use it; it does no I/O and holds no global state.
///
/// ```swift
/// var rng = SplitMix64(seed: 42)
/// let label = Int.random(in: 0..<4, using: &rng)
/// ```
public struct SplitMix64: RandomNumberGenerator, Hashable, Sendable {
    private var state: UInt64

    /// A generator whose sequence is fixed by `seed`.
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
