// The OpenZFS oracle: real OpenZFS 2.1.11 userland (`zdb`, `ztest`) driven from Swift tests.
//
// Purpose. `zpk label`, `zpk label -u` and `zpk cache show` must print exactly what
// `zdb -l`, `zdb -lu` and `zdb -C -U` print, exit status included. The only trustworthy
// reference is zdb itself, run on pools that real OpenZFS wrote. This file runs zdb (and any
// other program) with a pinned environment and a timeout; `OpenZFSPools.swift` makes fresh
// pools with ztest; `OpenZFSDamage.swift` damages their labels; docs/zdb-label-output.md
// catalogues what zdb prints for every kind of device, with the commands that showed it.
//
// What it does not guarantee. ztest is a randomised stress test: the same `ZTestPoolSpec`
// never gives byte-identical pools (guids, txgs, timestamps and the block layout differ from
// run to run), and in "churn" mode even the vdev tree differs. Tests therefore compare zpk
// with zdb on the *same* files, never with remembered text.
//
// Mechanism. Every program runs through `OpenZFS.run`: `posix_spawn` into its own process
// group (so a timeout also kills ztest's forked children), stdin from /dev/null, stdout and
// stderr into unlinked temporary files (no pipe can fill up and deadlock, however much zdb
// prints), and a polling `waitpid` that kills the group when the deadline passes (zdb blocks
// for ever on a FIFO that has no writer).
//
// Invariants. zdb's text depends on the TZ variable (`timestamp = N UTC = <local time>`) and
// on ZPOOL_IMPORT_PATH, SPA_CONFIG_PATH and ZFS_HOSTID. `OpenZFS.pinnedEnvironment`
// (TZ=UTC, LC_ALL=C, a fixed PATH, nothing else) is the default for every call, so the
// oracle's answers never depend on the shell that started `swift test`.
//
// Failure cases. Missing tools are an error, never a skip: `requireInstalled()` throws, naming
// the missing tool, and every interop suite calls it (in its `init`, or first thing in a test).

import CZFSLinux
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Namespace for the OpenZFS 2.1.11 userland that ZPoolKit's interop tests use as their oracle.
public enum OpenZFS {
    /// The OpenZFS release whose output zpk reproduces.
    public static let expectedVersion = "2.1.11"
    /// Where Debian's `zfsutils-linux` installs zdb.
    public static let zdbPath = "/usr/sbin/zdb"
    /// Where Debian's `zfs-test` installs ztest.
    public static let ztestPath = "/usr/sbin/ztest"
    /// coreutils' `nice`, which runs ztest at a lower priority.
    static let nicePath = "/usr/bin/nice"

    /// The environment every oracle call gets unless the caller passes another one.
    ///
    /// `TZ=UTC` because zdb prints each uberblock's timestamp as `asctime(localtime())`;
    /// `LC_ALL=C` for `strerror` texts. Nothing else is inherited: `ZPOOL_IMPORT_PATH`,
    /// `SPA_CONFIG_PATH` and `ZFS_HOSTID` all change what zdb and ztest do.
    public static let pinnedEnvironment: [String: String] = [
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "TZ": "UTC",
        "LC_ALL": "C",
    ]

    // MARK: Installation

    /// Throws unless OpenZFS 2.1.11's zdb and ztest are installed.
    ///
    /// Call it at the start of every interop test: a missing oracle must fail the test, not
    /// skip it. The check runs once per process.
    /// - Throws: ``OpenZFSHarnessError`` with code `.notInstalled` (a tool is missing) or
    ///   `.wrongVersion` (dpkg reports another `zfsutils-linux` version).
    public static func requireInstalled() throws {
        if let problem = installationProblem { throw problem }
    }

    /// Whether zdb and ztest 2.1.11 are present.
    public static var isInstalled: Bool { installationProblem == nil }

    private static let installationProblem: OpenZFSHarnessError? = {
        let remedy = "run scripts/install-openzfs (scripts/test does)"
        for tool in [zdbPath, ztestPath] where access(tool, X_OK) != 0 {
            return OpenZFSHarnessError(
                .notInstalled,
                "OpenZFS \(expectedVersion) userland not found: \(tool) is missing; \(remedy)")
        }
        // dpkg is the only place the version is written down (zdb and ztest have no --version).
        guard access("/usr/bin/dpkg-query", X_OK) == 0,
            let output = try? run(
                "/usr/bin/dpkg-query", ["-W", "-f=${Version}", "zfsutils-linux"],
                timeout: .seconds(30)),
            output.status == 0
        else { return nil }
        let version = output.stdoutText
        guard version.hasPrefix(expectedVersion) else {
            return OpenZFSHarnessError(
                .wrongVersion,
                "OpenZFS \(expectedVersion) userland not found: zfsutils-linux is \(version); \(remedy)")
        }
        return nil
    }()

    // MARK: zdb

    /// Runs `zdb` with `args` and returns its output as text and its exit status.
    ///
    /// ```swift
    /// let (stdout, stderr, status) = try OpenZFS.zdb(["-lu", pool.leafDevices[0]])
    /// ```
    /// Invalid UTF-8 (zdb prints label strings byte for byte) becomes U+FFFD; compare
    /// ``zdbRaw(_:environment:currentDirectory:timeout:)`` bytes when that matters.
    /// - Parameters:
    ///   - args: zdb's arguments, e.g. `["-l", path]`, `["-C", "-U", cacheFile]`.
    ///   - environment: the complete environment; defaults to ``pinnedEnvironment``.
    ///   - currentDirectory: where zdb runs (relative device names resolve from here).
    ///   - timeout: zdb is killed after this long (it blocks for ever on a FIFO).
    /// - Throws: ``OpenZFSHarnessError`` `.timedOut`, `.killedBySignal` or `.spawnFailed`.
    public static func zdb(
        _ args: [String],
        environment: [String: String] = pinnedEnvironment,
        currentDirectory: String? = nil,
        timeout: Duration = .seconds(60)
    ) throws -> (stdout: String, stderr: String, status: Int32) {
        let output = try zdbRaw(
            args, environment: environment, currentDirectory: currentDirectory, timeout: timeout)
        return (output.stdoutText, output.stderrText, output.status)
    }

    /// Runs `zdb` with `args` and returns its exact bytes and exit status.
    /// - Throws: as ``zdb(_:environment:currentDirectory:timeout:)``.
    public static func zdbRaw(
        _ args: [String],
        environment: [String: String] = pinnedEnvironment,
        currentDirectory: String? = nil,
        timeout: Duration = .seconds(60)
    ) throws -> ProcessOutput {
        try run(
            zdbPath, args, environment: environment, currentDirectory: currentDirectory,
            timeout: timeout)
    }

    // MARK: Processes

    /// What a finished program wrote and how it exited.
    public struct ProcessOutput: Hashable, Sendable, CustomStringConvertible {
        /// Everything written to standard output.
        public var stdout: [UInt8]
        /// Everything written to standard error.
        public var stderr: [UInt8]
        /// The exit status (0...255).
        public var status: Int32

        public init(stdout: [UInt8], stderr: [UInt8], status: Int32) {
            self.stdout = stdout
            self.stderr = stderr
            self.status = status
        }

        /// Standard output decoded as UTF-8 (invalid bytes become U+FFFD).
        public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
        /// Standard error decoded as UTF-8 (invalid bytes become U+FFFD).
        public var stderrText: String { String(decoding: stderr, as: UTF8.self) }

        public var description: String {
            "exit \(status); stdout \(stdout.count) bytes:\n\(stdoutText)\nstderr \(stderr.count) bytes:\n\(stderrText)"
        }
    }

    /// Runs `executable` with `arguments`, waits for it, and returns its output.
    ///
    /// The program gets its own process group, stdin from /dev/null, and exactly `environment`.
    /// Output goes to unlinked temporary files, so any amount of it is safe.
    /// - Parameters:
    ///   - executable: an absolute path (no PATH search).
    ///   - arguments: the arguments after `argv[0]`.
    ///   - environment: the complete environment; defaults to ``pinnedEnvironment``.
    ///   - currentDirectory: the working directory, or `nil` to inherit ours.
    ///   - timeout: after this long the whole process group gets SIGKILL.
    /// - Throws: ``OpenZFSHarnessError``: `.spawnFailed` when the program cannot start,
    ///   `.timedOut` when it outlives `timeout`, `.killedBySignal` when a signal ends it.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String] = pinnedEnvironment,
        currentDirectory: String? = nil,
        timeout: Duration
    ) throws -> ProcessOutput {
        let commandLine = ([executable] + arguments).joined(separator: " ")
        let stdoutFile = try UnlinkedTemporaryFile(for: commandLine)
        let stderrFile = try UnlinkedTemporaryFile(for: commandLine)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutFile.descriptor, 1)
        posix_spawn_file_actions_adddup2(&actions, stderrFile.descriptor, 2)
        if let currentDirectory {
            guard let addChdir = spawnAddChdir else {
                throw OpenZFSHarnessError(
                    .spawnFailed,
                    "cannot run \(commandLine) in \(currentDirectory): this C library lacks posix_spawn_file_actions_addchdir_np")
            }
            let rc = currentDirectory.withCString { addChdir(&actions, $0) }
            guard rc == 0 else {
                throw OpenZFSHarnessError(
                    .spawnFailed, "cannot run \(commandLine) in \(currentDirectory): error \(rc)")
            }
        }

        let pid: pid_t
        switch spawnInOwnProcessGroup(executable, arguments, environment: environment, actions: &actions) {
        case .success(let started): pid = started
        case .failure(let failure):
            throw OpenZFSHarnessError(.spawnFailed, "cannot start \(commandLine): \(failure.reason)")
        }

        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var pauseMicroseconds: UInt32 = 1_000
        var waitStatus: Int32 = 0
        while true {
            let reaped = waitpid(pid, &waitStatus, WNOHANG)
            if reaped == pid { break }
            if reaped == -1 && errno != EINTR {
                throw OpenZFSHarnessError(
                    .spawnFailed, "waitpid(\(pid)) for \(commandLine) failed: \(String(cString: strerror(errno)))")
            }
            if clock.now >= deadline {
                kill(-pid, SIGKILL)
                while waitpid(pid, &waitStatus, 0) == -1 && errno == EINTR {}
                let partial = ProcessOutput(
                    stdout: (try? stdoutFile.contents()) ?? [], stderr: (try? stderrFile.contents()) ?? [],
                    status: -1)
                throw OpenZFSHarnessError(
                    .timedOut, "\(commandLine) did not finish within \(timeout); killed its process group",
                    output: partial)
            }
            // Poll quickly at first (zdb -l takes ~20 ms), then back off to 25 ms.
            usleep(pauseMicroseconds)
            pauseMicroseconds = min(pauseMicroseconds * 2, 25_000)
        }

        let output = ProcessOutput(
            stdout: try stdoutFile.contents(), stderr: try stderrFile.contents(),
            status: (waitStatus >> 8) & 0xFF)
        let signal = waitStatus & 0x7F
        if signal != 0 {
            throw OpenZFSHarnessError(
                .killedBySignal, "\(commandLine) was killed by signal \(signal)", output: output)
        }
        return output
    }

    /// A `posix_spawn` failure, with its `strerror` text.
    public struct SpawnFailure: Error, Sendable {
        public var code: Int32
        public var reason: String { String(cString: strerror(code)) }
    }

    /// Starts `executable` in a process group of its own (so a timeout can kill everything it
    /// started), with default signal dispositions and an empty signal mask whatever the test
    /// runner uses for itself. `actions` sets up its standard descriptors; no other descriptor
    /// of this process reaches it.
    public static func spawnInOwnProcessGroup(
        _ executable: String, _ arguments: [String], environment: [String: String],
        actions: inout posix_spawn_file_actions_t
    ) -> Result<pid_t, SpawnFailure> {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) }
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") }
        defer { (argv + envp).forEach { free($0) } }

        // Last: the child keeps only what the caller's actions set up as 0, 1 and 2.
        let closing = czfs_spawn_file_actions_close_inherited(&actions)
        guard closing == 0 else { return .failure(SpawnFailure(code: closing)) }
        var pid: pid_t = 0
        let code = posix_spawn(&pid, executable, &actions, &attributes, argv + [nil], envp + [nil])
        return code == 0 ? .success(pid) : .failure(SpawnFailure(code: code))
    }

    /// glibc ≥ 2.29 has `posix_spawn_file_actions_addchdir_np`, but Swift's Glibc module does
    /// not import it; look it up at run time.
    private typealias AddChdir =
        @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    private static let spawnAddChdir: AddChdir? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: AddChdir.self)
    }()
}

/// The one error type of the OpenZFS harness.
///
/// The ``message`` names the program or file and says what to do; when a program ran, its
/// ``output`` is attached so a failing test shows what zdb or ztest printed.
public struct OpenZFSHarnessError: Error, Sendable, CustomStringConvertible {
    /// What went wrong; a struct wrapping a private enum so codes can be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case notInstalled, wrongVersion, spawnFailed, timedOut, killedBySignal, ztestFailed
            case layoutNotReached, invalidSpec, io
        }
        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// zdb or ztest is missing: run `scripts/install-openzfs`.
        public static let notInstalled = Code(.notInstalled)
        /// The installed OpenZFS is not 2.1.11.
        public static let wrongVersion = Code(.wrongVersion)
        /// A program could not be started.
        public static let spawnFailed = Code(.spawnFailed)
        /// A program outlived its timeout and was killed.
        public static let timedOut = Code(.timedOut)
        /// A program was ended by a signal (zdb or ztest crashed).
        public static let killedBySignal = Code(.killedBySignal)
        /// ztest exited non-zero or left no pool behind.
        public static let ztestFailed = Code(.ztestFailed)
        /// ztest ran, but its random vdev changes never reached the spec's minimums.
        public static let layoutNotReached = Code(.layoutNotReached)
        /// A ``ZTestPoolSpec`` that ztest would refuse.
        public static let invalidSpec = Code(.invalidSpec)
        /// A file operation of the harness failed (the message names the file and call).
        public static let io = Code(.io)

        public var description: String { "\(wrapped)" }
    }

    public var code: Code
    public var message: String
    /// What the program printed, when one ran.
    public var output: OpenZFS.ProcessOutput?

    public init(_ code: Code, _ message: String, output: OpenZFS.ProcessOutput? = nil) {
        self.code = code
        self.message = message
        self.output = output
    }

    public var description: String {
        guard let output else { return message }
        return "\(message)\n\(output)"
    }
}

/// A temporary file unlinked at once, whose descriptor a child inherits as stdout or stderr.
private final class UnlinkedTemporaryFile {
    let descriptor: Int32

    init(for commandLine: String) throws {
        var template = Array("/tmp/zpk-oracle-output.XXXXXX".utf8CString)
        // mkostemp(O_CLOEXEC) is not imported; a child spawned by another thread between these
        // two calls would merely hold the (unlinked) file open.
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw OpenZFSHarnessError(
                .io, "cannot capture the output of \(commandLine): mkstemp in /tmp failed: \(String(cString: strerror(errno)))")
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        descriptor = fd
    }

    deinit { close(descriptor) }

    func contents() throws -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var offset: off_t = 0
        while true {
            let count = chunk.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, offset) }
            if count == 0 { return bytes }
            if count < 0 {
                if errno == EINTR { continue }
                throw OpenZFSHarnessError(.io, "cannot read captured output: \(String(cString: strerror(errno)))")
            }
            bytes += chunk[0..<count]
            offset += off_t(count)
        }
    }
}
