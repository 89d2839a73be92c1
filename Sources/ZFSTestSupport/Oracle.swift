// zpk-oracle from Swift: real OpenZFS 2.1.11 (libzpool) acting as another host.
//
// Purpose. ZPoolKit's import scan, pool host and MMP code must agree with OpenZFS itself.
// `Tools/zpk-oracle` is a small C program linked against Debian's libzpool; it lists importable
// pools exactly as `zpool import` would see them (spa_tryimport), creates pools on plain files,
// imports them with the real MMP activity check, and holds them imported (or "crashes" while
// holding them). Each process claims its own host id, so two processes act as two hosts sharing
// the same files. `zpoolImport` runs the real `zpool import` over the same libzpool (through
// Tools/zpk-oracle's libzpk-zfsdev.so). The output contract is in Tools/zpk-oracle/README.md.
//
// Mechanism. `ZPKOracle.build()` runs `scripts/build-oracle` once per test process (cached,
// thread-safe) into `.build-oracle/`. `run` and `start` spawn the binary with `posix_spawn` in
// its own process group, stdin from /dev/null, stdout and stderr into files in a private
// temporary directory (no pipe can fill up), and a polling `waitpid` that kills the group when
// the deadline passes. `records`/`result` read its JSON-lines output; `parseTryImport` turns
// `tryimport` output into `Pool`/`Vdev` values.
//
// Invariants. The child never inherits the test runner's environment: it gets
// `ZPKOracle.baseEnvironment` (PATH, LC_ALL=C, TZ=UTC) plus what the caller passes, so a stray
// ZFS_HOSTID or ZFS_DEBUG in the shell cannot change its answers. Pass `--hostid` explicitly.
//
// Failure cases. A failed build throws (never skips) with the advice to run
// scripts/install-openzfs; a run that outlives its timeout is killed and throws with whatever
// it printed.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Namespace for zpk-oracle, the libzpool-based OpenZFS host used by interop tests.
public enum ZPKOracle {
    /// The error every oracle helper throws.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var stdout: String
        public var stderr: String

        public init(_ message: String, stdout: String = "", stderr: String = "") {
            self.message = message
            self.stdout = stdout
            self.stderr = stderr
        }

        public var description: String {
            var text = "zpk-oracle: \(message)"
            if !stdout.isEmpty { text += "\n--- stdout\n\(stdout)" }
            if !stderr.isEmpty { text += "\n--- stderr\n\(stderr)" }
            return text
        }
    }

    /// The checkout this file belongs to (Sources/ZFSTestSupport/Oracle.swift → root).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // ZFSTestSupport
        .deletingLastPathComponent()  // Sources
        .deletingLastPathComponent()  // package root

    /// Where `build()` puts the binary (ignored by git through `.build*`).
    public static let buildDirectory: URL = packageRoot.appendingPathComponent(".build-oracle")

    /// The environment every child starts from; `run`/`start` add the caller's entries on top.
    public static let baseEnvironment: [String: String] = [
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LC_ALL": "C",
        "TZ": "UTC",
    ]

    // MARK: Building

    private final class BuildCache: @unchecked Sendable {
        let lock = NSLock()
        var outcome: Result<URL, Failure>?
    }

    private static let buildCache = BuildCache()

    /// Builds zpk-oracle (once per process; later calls return the cached answer) and returns
    /// the binary's URL. Throws when OpenZFS's development files are missing.
    public static func build() throws -> URL {
        buildCache.lock.lock()
        defer { buildCache.lock.unlock() }
        if let outcome = buildCache.outcome { return try outcome.get() }
        let outcome: Result<URL, Failure>
        do {
            outcome = .success(try runBuildScript())
        } catch let failure as Failure {
            outcome = .failure(failure)
        } catch {
            outcome = .failure(Failure("building zpk-oracle failed: \(error)"))
        }
        buildCache.outcome = outcome
        return try outcome.get()
    }

    private static func runBuildScript() throws -> URL {
        let script = packageRoot.appendingPathComponent("scripts/build-oracle").path
        let output = try spawnAndWait(
            executable: "/bin/bash", arguments: [script, buildDirectory.path],
            environment: baseEnvironment, timeout: .seconds(300))
        let binary = buildDirectory.appendingPathComponent("zpk-oracle")
        guard output.status == 0, FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw Failure(
                "scripts/build-oracle exited \(output.status): zpk-oracle could not be built. "
                    + "Run scripts/install-openzfs (OpenZFS 2.1.11 libzpool and headers, gcc, make; "
                    + "needs root or sudo), then run the tests again.",
                stdout: output.stdout, stderr: output.stderr)
        }
        return binary
    }

    // MARK: Running

    /// Runs `zpk-oracle ARGS...` to completion. `status` is the exit status (0 ok, 1 error,
    /// 2 usage, 3 pool active on another host); a run that outlives `timeout` is killed and
    /// throws, as does death by a signal.
    public static func run(
        _ args: [String], environment: [String: String] = [:], timeout: Duration
    ) throws -> (stdout: String, stderr: String, status: Int32) {
        let binary = try build()
        let output = try spawnAndWait(
            executable: binary.path, arguments: args,
            environment: baseEnvironment.merging(environment) { $1 }, timeout: timeout)
        return (output.stdout, output.stderr, output.status)
    }

    /// Starts `zpk-oracle ARGS...` in the background (for `hold`). Stop it with `terminate()`
    /// or `kill()`; it is killed when the handle is deallocated.
    public static func start(_ args: [String], environment: [String: String] = [:]) throws -> Background {
        let binary = try build()
        return try Background(
            executable: binary.path, arguments: args,
            environment: baseEnvironment.merging(environment) { $1 })
    }

    /// A zpk-oracle process running in the background.
    public final class Background: @unchecked Sendable {
        /// Its process id (also its process group id).
        public let pid: pid_t
        public let commandLine: String
        private let files: OutputFiles
        private let lock = NSLock()
        private var exitStatus: Int32?

        fileprivate init(executable: String, arguments: [String], environment: [String: String]) throws {
            commandLine = ([executable] + arguments).joined(separator: " ")
            files = try OutputFiles()
            do {
                pid = try ZPKOracle.spawn(executable, arguments, environment, files)
            } catch {
                files.remove()
                throw error
            }
        }

        deinit {
            if reap(blocking: false) == nil {
                Glibc.kill(-pid, SIGKILL)
                _ = reap(blocking: true)
            }
            files.remove()
        }

        /// What it has printed so far.
        public var stdout: String { files.stdout() }
        public var stderr: String { files.stderr() }

        /// Waits until stdout has a record of `event` (e.g. `ready`, `tick`) and returns it.
        /// Throws if the process exits first or `timeout` passes (the process keeps running then).
        @discardableResult
        public func waitForRecord(_ event: String, timeout: Duration) throws -> Record {
            let deadline = ContinuousClock.now.advanced(by: timeout)
            while true {
                let text = stdout
                // Complete lines only: the child may be in the middle of writing the last one.
                let complete = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
                if let record = complete.lazy.compactMap({ Record(line: $0) }).first(where: { $0.event == event }) {
                    return record
                }
                if let status = reap(blocking: false) {
                    throw Failure(
                        "\(commandLine) exited \(status) before a '\(event)' record", stdout: text, stderr: stderr)
                }
                if ContinuousClock.now >= deadline {
                    throw Failure(
                        "\(commandLine) printed no '\(event)' record within \(timeout)", stdout: text,
                        stderr: stderr)
                }
                usleep(20_000)
            }
        }

        /// Sends `signal` to the process (not its group).
        public func send(_ signal: Int32) {
            if reap(blocking: false) == nil { Glibc.kill(pid, signal) }
        }

        /// SIGTERM (hold exports and exits 0), then waits up to `timeout`.
        public func terminate(timeout: Duration = .seconds(30)) throws -> (stdout: String, stderr: String, status: Int32) {
            send(SIGTERM)
            return try wait(timeout: timeout)
        }

        /// SIGKILL to the whole group: a host that dies without exporting.
        public func kill() {
            if reap(blocking: false) == nil {
                Glibc.kill(-pid, SIGKILL)
                _ = reap(blocking: true)
            }
        }

        /// Waits for the process to exit; kills it and throws after `timeout`.
        public func wait(timeout: Duration) throws -> (stdout: String, stderr: String, status: Int32) {
            let deadline = ContinuousClock.now.advanced(by: timeout)
            while true {
                if let status = reap(blocking: false) {
                    if status < 0 {
                        throw Failure("\(commandLine) was killed by signal \(-status)", stdout: stdout, stderr: stderr)
                    }
                    return (stdout, stderr, status)
                }
                if ContinuousClock.now >= deadline {
                    kill()
                    throw Failure(
                        "\(commandLine) did not exit within \(timeout); killed it", stdout: stdout, stderr: stderr)
                }
                usleep(10_000)
            }
        }

        /// The exit status once the process has ended (negative: killed by that signal).
        private func reap(blocking: Bool) -> Int32? {
            lock.lock()
            defer { lock.unlock() }
            if let exitStatus { return exitStatus }
            var raw: Int32 = 0
            while true {
                let reaped = waitpid(pid, &raw, blocking ? 0 : WNOHANG)
                if reaped == pid {
                    let status = decodeWaitStatus(raw)
                    exitStatus = status
                    return status
                }
                if reaped == -1 && errno == EINTR { continue }
                return nil
            }
        }
    }

    // MARK: Process plumbing

    /// A private directory holding a child's stdout and stderr files.
    private final class OutputFiles: @unchecked Sendable {
        let directory: String
        var stdoutPath: String { directory + "/stdout" }
        var stderrPath: String { directory + "/stderr" }

        init() throws {
            var template = Array((temporaryBase + "/zpk-oracle-run.XXXXXX").utf8CString)
            guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
                throw Failure("mkdtemp failed: \(String(cString: strerror(errno)))")
            }
            directory = String(cString: made)
        }

        func stdout() -> String { read(stdoutPath) }
        func stderr() -> String { read(stderrPath) }

        private func read(_ path: String) -> String {
            guard let data = FileManager.default.contents(atPath: path) else { return "" }
            return String(decoding: data, as: UTF8.self)
        }

        func remove() { try? FileManager.default.removeItem(atPath: directory) }
    }

    private struct Output {
        var stdout: String
        var stderr: String
        var status: Int32
    }

    /// Exit status, or minus the signal number that killed it.
    private static func decodeWaitStatus(_ raw: Int32) -> Int32 {
        let signal = raw & 0x7F
        return signal == 0 ? (raw >> 8) & 0xFF : -signal
    }

    private static func spawn(
        _ executable: String, _ arguments: [String], _ environment: [String: String], _ files: OutputFiles
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, files.stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, files.stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)

        // hold relies on receiving SIGTERM: the runner gives the child default dispositions.
        switch OpenZFS.spawnInOwnProcessGroup(executable, arguments, environment: environment, actions: &actions) {
        case .success(let pid): return pid
        case .failure(let failure): throw Failure("cannot start \(executable): \(failure.reason)")
        }
    }

    /// Runs a program to completion through the harness's one process runner
    /// (``OpenZFS/run(_:_:environment:currentDirectory:timeout:)``), with this file's errors.
    private static func spawnAndWait(
        executable: String, arguments: [String], environment: [String: String], timeout: Duration
    ) throws -> Output {
        do {
            let output = try OpenZFS.run(executable, arguments, environment: environment, timeout: timeout)
            return Output(stdout: output.stdoutText, stderr: output.stderrText, status: output.status)
        } catch let error as OpenZFSHarnessError {
            throw Failure(error.message, stdout: error.output?.stdoutText ?? "", stderr: error.output?.stderrText ?? "")
        }
    }

    // MARK: Output parsing

    /// One line of zpk-oracle's stdout: a JSON object with an `event` and string values. Nested
    /// values (a pool's `root`) are left out of `fields`; `parseTryImport` reads them.
    public struct Record: Hashable, Sendable, CustomStringConvertible {
        public var event: String
        /// Every other top-level string value.
        public var fields: [String: String]

        public subscript(_ key: String) -> String? { fields[key] }

        /// Parses one line; nil for anything that is not an object with a string `event`.
        public init?(line: some StringProtocol) {
            guard let object = ZPKOracle.jsonObject(line), let event = object["event"] as? String else { return nil }
            self.event = event
            self.fields = object.compactMapValues { $0 as? String }
            fields["event"] = nil
        }

        public var description: String {
            ([event] + fields.keys.sorted().map { "\($0)=\(fields[$0]!)" }).joined(separator: " ")
        }
    }

    static func jsonObject(_ line: some StringProtocol) -> [String: Any]? {
        guard line.first == "{", let data = String(line).data(using: .utf8) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    /// Every record of `stdout`, in order (lines that are not records are skipped).
    public static func records(_ stdout: String) -> [Record] {
        stdout.split(separator: "\n").compactMap { Record(line: $0) }
    }

    /// The final `result` record: `outcome` is ok, error (with `errno`, `message`) or active
    /// (with the `hostid` and `hostname` of the host using the pool). Nil if there is none.
    public static func result(_ stdout: String) -> Record? {
        records(stdout).last { $0.event == "result" }
    }

    /// One vdev of a `tryimport` pool.
    public struct Vdev: Hashable, Sendable, CustomStringConvertible {
        /// `root`, `mirror`, `raidz`, `file`, `disk`, `missing`, `hole`, ...
        public var type: String
        public var guid: UInt64
        public var path: String?
        /// zpool's state name: ONLINE, DEGRADED, FAULTED, OFFLINE, UNAVAIL, REMOVED, SPLIT, UNKNOWN.
        public var state: String
        /// The vdev_aux_t name in lower case: none, open_failed, corrupt_data, no_replicas, ...
        public var aux: String
        public var children: [Vdev]
        /// Every string value of the vdev's object (also id, nparity, class, not_present).
        public var fields: [String: String]

        /// This vdev and all below it, depth first.
        public var allVdevs: [Vdev] { [self] + children.flatMap(\.allVdevs) }
        /// The vdevs without children below (and including) this one.
        public var leaves: [Vdev] { children.isEmpty ? [self] : children.flatMap(\.leaves) }
        /// The first vdev at or below this one whose path is `path`.
        public func vdev(path: String) -> Vdev? { allVdevs.first { $0.path == path } }

        public var description: String {
            "\(type) \(path ?? String(guid)) \(state)/\(aux)"
                + (children.isEmpty ? "" : " [" + children.map(\.description).joined(separator: ", ") + "]")
        }
    }

    /// One pool of `tryimport`, with its vdev tree.
    public struct Pool: Hashable, Sendable, CustomStringConvertible {
        public var name: String
        public var guid: UInt64
        /// Label pool state: ACTIVE, EXPORTED, DESTROYED, ...
        public var state: String
        /// The root vdev's state name (what `zpool import` prints after `state:`).
        public var health: String
        public var hostID: UInt64
        public var hostname: String?
        /// Txg of the uberblock the load selected (nil if the load never got that far).
        public var txg: UInt64?
        /// `none` when no activity check ran, else ACTIVE, INACTIVE or NO_HOSTID.
        public var mmpState: String
        /// What `zpk-oracle import` would do: import, needs-force, blocked-active,
        /// blocked-no-hostid or unavailable.
        public var action: String
        /// libzfs's `zpool_import_status()`: OK, MISSING_DEV_R, HOSTID_MISMATCH, ...
        public var status: String
        /// Its message id (the "see:" link), e.g. ZFS-8000-2Q; nil when the status has none.
        public var messageID: String?
        /// Its `zpool_errata_t` (0: none).
        public var errata: UInt64
        public var root: Vdev
        /// Every top-level string value of the pool record.
        public var fields: [String: String]

        public var description: String {
            "\(name) \(guid) \(state) \(health) action=\(action) status=\(status) \(root)"
        }
    }

    /// Parses `tryimport`'s stdout. Throws on a pool record it cannot read.
    public static func parseTryImport(_ stdout: String) throws -> [Pool] {
        try stdout.split(separator: "\n").compactMap { line -> Pool? in
            guard let object = jsonObject(line), object["event"] as? String == "pool" else { return nil }
            let fields = object.compactMapValues { $0 as? String }
            let name = fields["name"] ?? "?"
            func number(_ key: String, hex: Bool = false) throws -> UInt64 {
                let text = fields[key] ?? ""
                let digits = hex && text.hasPrefix("0x") ? text.dropFirst(2) : Substring(text)
                guard let value = UInt64(digits, radix: hex ? 16 : 10) else {
                    throw Failure("tryimport: pool \(name) has no valid \(key) ('\(text)')", stdout: stdout)
                }
                return value
            }
            guard let rootObject = object["root"] as? [String: Any], let root = vdev(from: rootObject) else {
                throw Failure("tryimport: pool \(name) has a malformed vdev tree", stdout: stdout)
            }
            return Pool(
                name: name, guid: try number("guid"), state: fields["state"] ?? "UNKNOWN",
                health: fields["health"] ?? "UNKNOWN", hostID: try number("hostid", hex: true),
                hostname: fields["hostname"], txg: fields["txg"].flatMap { UInt64($0) },
                mmpState: fields["mmp_state"] ?? "none", action: fields["action"] ?? "",
                status: fields["status"] ?? "?", messageID: fields["msgid"],
                errata: try number("errata"), root: root, fields: fields)
        }
    }

    private static func vdev(from object: [String: Any]) -> Vdev? {
        let fields = object.compactMapValues { $0 as? String }
        guard let type = fields["type"], let guid = fields["guid"].flatMap({ UInt64($0) }) else { return nil }
        var children: [Vdev] = []
        for child in object["children"] as? [[String: Any]] ?? [] {
            guard let parsed = vdev(from: child) else { return nil }
            children.append(parsed)
        }
        return Vdev(
            type: type, guid: guid, path: fields["path"], state: fields["state"] ?? "UNKNOWN",
            aux: fields["aux"] ?? "none", children: children, fields: fields)
    }

    // MARK: Conveniences

    /// Runs `tryimport` over `directories` as `hostID` and parses the answer.
    public static func tryImport(
        directories: [String], hostID: UInt32, timeout: Duration = .seconds(120)
    ) throws -> [Pool] {
        let args = ["tryimport"] + directories.flatMap { ["-d", $0] } + ["--hostid", String(hostID, radix: 16)]
        let out = try run(args, timeout: timeout)
        guard out.status == 0, result(out.stdout)?["outcome"] == "ok" else {
            throw Failure("tryimport exited \(out.status)", stdout: out.stdout, stderr: out.stderr)
        }
        return try parseTryImport(out.stdout)
    }

    /// Runs the real, unmodified `/usr/sbin/zpool import ARGS` (e.g. `["-d", dir]`) as host
    /// `hostID`, with no kernel module: libzpk-zfsdev.so (preloaded) answers zpool's /dev/zfs
    /// requests, running each ZFS_IOC_POOL_TRYIMPORT through `zpk-oracle tryimport-packed`
    /// (libzpool's spa_tryimport, MMP activity check included) as the same host.
    /// `oracleOptions` go to that zpk-oracle (e.g. `--interval-ms`). zpool sees host id
    /// `hostID` only: /etc/hostid is hidden from it (0 means "no host id").
    /// - Parameters:
    ///   - args: what follows `zpool import`, e.g. `["-D", "-d", directory]`.
    ///   - hostID: the host id zpool and the activity check act as.
    ///   - oracleOptions: extra zpk-oracle options for each tryimport (MMP tunables).
    ///   - timeout: the whole run's limit; zpool is killed after it.
    /// - Returns: zpool's stdout, stderr and exit status.
    /// - Throws: ``Failure`` when zpk-oracle cannot be built, zpool cannot start, is killed by a
    ///   signal or outlives `timeout`.
    public static func zpoolImport(
        _ args: [String], hostID: UInt32, oracleOptions: [String] = [], timeout: Duration = .seconds(120)
    ) throws -> (stdout: String, stderr: String, status: Int32) {
        let oracle = try build()
        let directory = oracle.deletingLastPathComponent()
        let hex = String(hostID, radix: 16)
        var environment = baseEnvironment
        environment["ZFS_MODULE_LOADING"] = "no"
        environment["LD_PRELOAD"] = directory.appendingPathComponent("libzpk-zfsdev.so").path
        environment["ZPK_ORACLE"] = oracle.path
        environment["ZPK_ORACLE_ARGS"] = (["--hostid", hex] + oracleOptions).joined(separator: " ")
        environment["ZPK_HIDE_HOSTID"] = "1"
        // libzfs reads ZFS_HOSTID with strtoull(…, 0): without "0x" it would be decimal.
        if hostID != 0 { environment["ZFS_HOSTID"] = "0x" + hex }
        let zpool = ["/usr/sbin/zpool", "/sbin/zpool"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/zpool"
        let output = try spawnAndWait(
            executable: zpool, arguments: ["import"] + args, environment: environment, timeout: timeout)
        return (output.stdout, output.stderr, output.status)
    }

    /// A fresh, empty directory under the system's temporary directory (`mktemp -d`). The
    /// caller removes it.
    public static func makeTemporaryDirectory(_ label: String = "zpk-oracle") throws -> URL {
        var template = Array((temporaryBase + "/\(label).XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw Failure("mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        return URL(fileURLWithPath: String(cString: made), isDirectory: true)
    }

    /// The system's temporary directory without a trailing slash and with symbolic links
    /// resolved, so paths built here match the absolute paths zpk-oracle writes into labels.
    static var temporaryBase: String {
        let base = URL(fileURLWithPath: NSTemporaryDirectory()).resolvingSymlinksInPath().path
        return base.count > 1 && base.hasSuffix("/") ? String(base.dropLast()) : base
    }
}
