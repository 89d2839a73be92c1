// Real zpkd and zpk processes for the daemon tests: executables found next to the test bundle
// (as ZPKTests finds zpk), a temporary directory per test with sparse device files, a daemon
// that is always killed when its handle goes away, and zpk runs with a pinned environment.

import Foundation
import Testing
import ZFSTestSupport
import ZPKDaemon

#if canImport(Glibc)
import Glibc
#endif

enum Executable {
    /// The built `name` (zpk or zpkd) near the test bundle.
    static func path(_ name: String) throws -> String {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
            directory = directory.deletingLastPathComponent()
        }
        throw NotFound(name: name, searchedFrom: CommandLine.arguments[0])
    }

    struct NotFound: Error, CustomStringConvertible {
        var name: String
        var searchedFrom: String
        var description: String { "the \(name) executable was not found near \(searchedFrom); build it with `swift build`" }
    }
}

/// A temporary directory with a socket path, a cache-file path and device files.
final class Workspace {
    let directory: TemporaryDirectory
    var path: String { directory.path }
    var socket: String { directory.path("zpk.sock") }
    var cacheFile: String { directory.path("zpool.cache") }

    init(_ name: String) throws {
        directory = try TemporaryDirectory(prefix: name)
    }

    /// Creates sparse files `names` of `byteCount` bytes; returns their absolute paths.
    @discardableResult
    func devices(_ names: [String], byteCount: Int64 = 128 << 20) throws -> [String] {
        try names.map { name in
            let file = directory.path(name)
            let fd = open(file, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
            guard fd >= 0, ftruncate(fd, off_t(byteCount)) == 0 else { throw POSIXError(.EIO) }
            close(fd)
            return file
        }
    }

    /// Runs zpk with `arguments` (`--socket` from $ZPK_SOCKET = this workspace's socket).
    func zpk(
        _ arguments: [String], stdin: String? = nil, environment extra: [String: String] = [:],
        currentDirectory: String? = nil
    ) throws -> OpenZFS.ProcessOutput {
        var environment = OpenZFS.pinnedEnvironment
        environment["ZPK_SOCKET"] = socket
        for (key, value) in extra { environment[key] = value }
        let zpk = try Executable.path("zpk")
        if let stdin {
            // OpenZFS.run gives stdin /dev/null; a shell redirects it from the file.
            return try OpenZFS.run(
                "/bin/sh", ["-c", "f=\"$1\"; shift; exec \"$0\" \"$@\" < \"$f\"", zpk, stdin] + arguments,
                environment: environment, currentDirectory: currentDirectory, timeout: .seconds(60))
        }
        return try OpenZFS.run(
            zpk, arguments, environment: environment, currentDirectory: currentDirectory, timeout: .seconds(60))
    }

    /// Starts zpkd on this workspace's socket and cache file and waits for "zpkd ready on".
    /// With `instance`, a second host on the same device files: its own socket
    /// (``socket(instance:)``) and cache file.
    func startDaemon(
        hostID: String = "1a2b3c4d", hostname: String = "test-host", instance: String? = nil, extra: [String] = []
    ) throws -> DaemonProcess {
        let cache = instance.map { directory.path("zpool-\($0).cache") } ?? cacheFile
        return try DaemonProcess(
            arguments: ["--socket", socket(instance: instance), "--cachefile", cache, "--hostid", hostID, "--hostname", hostname]
                + extra,
            log: directory.path("zpkd-\(UInt32.random(in: 0...UInt32.max)).log"))
    }

    /// The socket of daemon `instance` (nil: the workspace's own).
    func socket(instance: String?) -> String {
        instance.map { directory.path("zpk-\($0).sock") } ?? socket
    }

    /// Runs zpk against daemon `instance`.
    func zpk(_ arguments: [String], instance: String?, environment extra: [String: String] = [:]) throws -> OpenZFS.ProcessOutput {
        var environment = extra
        environment["ZPK_SOCKET"] = socket(instance: instance)
        return try zpk(arguments, environment: environment)
    }
}

/// A running zpkd. SIGKILLed in deinit if it is still running, so no test leaves one behind.
final class DaemonProcess {
    let process = Process()
    let logPath: String
    private(set) var exitStatus: Int32?

    /// Starts zpkd; waits (≤ 30 s) for its ready line, or for it to exit (then throws with its log).
    init(arguments: [String], log: String, environment extra: [String: String] = [:]) throws {
        logPath = log
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: try Executable.path("zpkd"))
        process.arguments = arguments
        process.environment = OpenZFS.pinnedEnvironment.merging(extra) { _, new in new }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        let deadline = ContinuousClock.now + Patience.hang
        while ContinuousClock.now < deadline {
            if log_.contains("zpkd ready on ") { return }
            if !process.isRunning { break }
            usleep(10_000)
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        exitStatus = process.terminationStatus
        throw StartFailure(status: process.terminationStatus, log: log_)
    }

    struct StartFailure: Error, CustomStringConvertible {
        var status: Int32
        var log: String
        var description: String { "zpkd did not become ready (exit \(status)); its log:\n\(log)" }
    }

    /// zpkd's stderr so far.
    var log_: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits (≤ `timeout`) until zpkd's log contains `text`: zpkd serves from the moment it is
    /// ready, while the pools of its cache file are still opening ("pool opened from cache
    /// file" is logged once they all are).
    func waitUntilLogged(_ text: String, timeout: Duration = .seconds(60)) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if log_.contains(text) { return true }
            if !process.isRunning { return log_.contains(text) }
            usleep(20_000)
        }
        return false
    }

    /// Sends `signal` and waits for the exit status (128 + signal when the signal killed it).
    @discardableResult
    func stop(signal: Int32 = SIGTERM) -> Int32 {
        if let exitStatus { return exitStatus }
        kill(process.processIdentifier, signal)
        process.waitUntilExit()
        exitStatus = process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
        return exitStatus!
    }

    deinit {
        if exitStatus == nil, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// Runs a blocking body on a thread of its own (a zpk process while an in-process server runs).
func onThread<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

// In-process servers in tests run on `DedicatedThreadExecutor.shared`
// (`group.addTask(executorPreference:)`): the task that runs the server, its accept loop's tasks
// and every handler then never need the cooperative pool. That pool has one thread per core — two
// here — and other suites running at the same time block those threads while they wait for
// `zpk`/`zpkd` processes; a server on the pool could not even start, and its client timed out
// (seen: 4 tests failing after 30 s under load).

/// A `TaskExecutor` with one thread that runs the jobs enqueued on it, in order.
///
/// `@unchecked Sendable`: `jobs` is read and written only with `condition` locked.
final class DedicatedThreadExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = DedicatedThreadExecutor()

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    private init() {
        let thread = Thread { [self] in runJobs() }
        thread.name = "test-server-executor"
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func runJobs() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
