// One host of a trial: a zpkd started inside the host's namespace (`ip netns exec`), driven
// from the runner through its control socket (a Unix socket on the shared file system, reachable
// from any namespace).

import Foundation
import Synchronization
import ZFSTrials
import ZPKControl

#if canImport(Glibc)
import Glibc
#endif

final class TrialHost: @unchecked Sendable {
    let index: Int
    let hostID: TrialHostID
    let namespace: String
    let socket: String
    let cacheFile: String
    let logPath: String
    private let process = Process()
    private let killed = Mutex<UInt64?>(nil)

    init(index: Int, hostID: TrialHostID, namespace: String, directory: String) {
        self.index = index
        self.hostID = hostID
        self.namespace = namespace
        socket = "\(directory)/h\(index).sock"
        cacheFile = "\(directory)/h\(index).cache"
        logPath = "\(directory)/h\(index).log"
    }

    var pid: Int32 { process.processIdentifier }
    var killedAt: UInt64? { killed.withLock { $0 } }
    var isAlive: Bool { killedAt == nil && process.isRunning }

    /// Starts zpkd in the namespace and waits (≤ 30 s) for its ready line.
    func start(zpkd: String, tunables: TrialTunables) throws {
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: Tools.ip)
        process.arguments = [
            "netns", "exec", namespace, zpkd, "--socket", socket, "--cachefile", cacheFile,
            "--hostid", String(hostID, radix: 16), "--hostname", "\(namespace)",
            "--zfs-multihost-interval", "\(tunables.intervalMilliseconds)",
            "--zfs-multihost-fail-intervals", "\(tunables.failIntervals)",
            "--zfs-multihost-import-intervals", "\(tunables.importIntervals)",
        ]
        var environment = ProcessInfo.processInfo.environment
        // An NBD request that hangs (a partition, a stalled server) must end well within
        // fail_intervals × interval, so that the leaf's failure, not its hang, is what the pool sees.
        environment["ZPK_NBD_TIMEOUT_MS"] = "\(max(100, tunables.failIntervals * tunables.intervalMilliseconds * 4 / 5))"
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: logPath)
        try process.run()
        let deadline = monotonicNow() + 30_000_000_000
        while monotonicNow() < deadline {
            if log.contains("zpkd ready on ") { return }
            if !process.isRunning { break }
            usleep(10_000)
        }
        kill9()
        throw CommandFailure(command: ["zpkd", namespace], status: -1, output: "zpkd did not become ready:\n\(log)")
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGKILL (no export); returns the instant, recorded once.
    @discardableResult
    func kill9() -> UInt64 {
        let at = monotonicNow()
        let first = killed.withLock { k -> Bool in
            guard k == nil else { return false }
            k = at
            return true
        }
        if first, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        if process.isRunning || first { process.waitUntilExit() }
        return at
    }

    /// A new connection to this host's zpkd (each thread of the runner keeps its own).
    func connect() throws -> ControlClient {
        try ControlClient(socketPath: socket)
    }
}

/// The multihost tunables of every zpkd of a run.
struct TrialTunables: Sendable {
    var intervalMilliseconds: UInt64 = 100
    var failIntervals: UInt64 = 10
    var importIntervals: UInt64 = 20

    var intervalNS: UInt64 { intervalMilliseconds * 1_000_000 }
    var failNS: UInt64 { failIntervals * intervalNS }
    /// The longest a takeover may take after the holder's last landed heartbeat: the activity
    /// check (2 × fail_intervals × interval, extended by up to 25 %), then the claim's ten
    /// rounds of one interval.
    var takeoverBoundNS: UInt64 { 2 * failNS * 5 / 4 + 10 * intervalNS }
    var text: String {
        "[stall + 200 ms +] 2 × \(failIntervals) × \(intervalMilliseconds) ms × 1.25 + 10 × \(intervalMilliseconds) ms"
    }
}
