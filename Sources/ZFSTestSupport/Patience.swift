// How long a test waits for something to happen before it calls it a hang.
//
// These waits are hang detectors, not timing assertions: a test that passes never waits this
// long. `scripts/test` runs every suite at once on a 2-core machine, with ztest, zdb, zpkd and
// nbd-server processes beside them, so a thread that needs a few milliseconds of CPU can wait
// tens of seconds for it. Speed is measured in the Benchmarks package, never here.

/// Test waits that detect hangs.
public enum Patience {
    /// The longest a test waits for progress (a settle, a heartbeat, a process line) before it
    /// records a hang.
    public static let hang: Duration = .seconds(120)
    /// The same, as text for failure messages.
    public static let hangText = "120 s"
}
