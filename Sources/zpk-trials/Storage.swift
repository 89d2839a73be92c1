// The trial's storage: sparse files in the run's directory, served by nbd-server in the storage
// namespace (leaves `nbd://127.0.0.1:10809/dN`: each host's relay on its own loopback forwards
// to 10.231.0.1:10809 over its veth), or shared directly as file leaves (every
// namespace sees the same file system) when the NBD leaf is not used.

import CZFSLinux
import Foundation

#if canImport(Glibc)
import Glibc
#endif

enum LeafKind: String, Sendable {
    case nbd
    case file
}

/// `@unchecked Sendable`: `serverPID` is set by `start` and `stop`, on the runner's main thread,
/// before and after the threads that signal the server.
final class TrialStorage: @unchecked Sendable {
    let kind: LeafKind
    let directory: String
    let files: [String]
    private var serverPID: Int32?

    init(kind: LeafKind, directory: String, leafCount: Int = 2, byteCount: Int64 = 64 << 20) throws {
        self.kind = kind
        self.directory = directory
        try FileManager.default.createDirectory(atPath: "\(directory)/dev", withIntermediateDirectories: true)
        files = (0..<leafCount).map { "\(directory)/dev/d\($0)" }
        for file in files {
            let fd = open(file, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
            guard fd >= 0, ftruncate(fd, off_t(byteCount)) == 0 else {
                throw CommandFailure(command: ["truncate", file], status: errno, output: String(cString: strerror(errno)))
            }
            close(fd)
        }
    }

    /// The leaf paths the hosts give zpkd.
    var leaves: [String] {
        switch kind {
        case .file: files
        case .nbd: files.indices.map { "nbd://127.0.0.1:10809/d\($0)" }
        }
    }

    /// The backing file of a leaf path (the checker reads these after the trial).
    func backingFile(of leaf: String) -> String? {
        if let index = leaves.firstIndex(of: leaf) { return files[index] }
        return nil
    }

    /// Starts nbd-server in `namespace` (nothing for file leaves).
    func start(in namespace: String) throws {
        guard kind == .nbd else { return }
        let config = "\(directory)/nbd-server.conf"
        var text = """
            [generic]
                user = root
                group = root
                listenaddr = \(Topology.storageAddress)
                port = 10809
                allowlist = false

            """
        for (i, file) in files.enumerated() { text += "[d\(i)]\n    exportname = \(file)\n" }
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        // nbd-server daemonizes: its output goes to a file (a pipe would stay open in the daemon).
        let log = "\(directory)/nbd-server.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let status = try spawnAndWait([Tools.ip, "netns", "exec", namespace, Tools.nbdServer, "-C", config, "-p", pidFile], output: log)
        let deadline = monotonicNow() + 5_000_000_000
        while monotonicNow() < deadline {
            if let pid = pidFromFile() {
                serverPID = pid
                return
            }
            usleep(10_000)
        }
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        throw CommandFailure(command: ["nbd-server"], status: status, output: "no pid file after 5 s: \(output)")
    }

    /// posix_spawn + waitpid (Foundation's Process did not see this daemonizing child exit).
    private func spawnAndWait(_ arguments: [String], output: String) throws -> Int32 {
        var actions: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_APPEND, 0)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // The daemon keeps nothing else of ours (an inherited pipe would outlive the trial).
        let closing = czfs_spawn_file_actions_close_inherited(&actions)
        guard closing == 0 else {
            throw CommandFailure(command: arguments, status: closing, output: String(cString: strerror(closing)))
        }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], &actions, nil, &argv, environ)
        guard rc == 0 else {
            throw CommandFailure(command: arguments, status: rc, output: String(cString: strerror(rc)))
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    private var pidFile: String { "\(directory)/nbd-server.pid" }

    private func pidFromFile() -> Int32? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0
        else { return nil }
        return pid
    }

    /// nbd-server and the children it forked for its connections.
    private func serverProcesses() -> [Int32] {
        guard let root = serverPID else { return [] }
        var family: Set<Int32> = [root]
        var parents: [Int32: Int32] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let ppid = Int32(fields[1]) { parents[pid] = ppid }
        }
        var grew = true
        while grew {
            grew = false
            for (pid, ppid) in parents where family.contains(ppid) && !family.contains(pid) {
                family.insert(pid)
                grew = true
            }
        }
        return Array(family)
    }

    /// SIGSTOP / SIGCONT to the server and its connection children.
    func signalServer(_ signal: Int32) {
        for pid in serverProcesses() { kill(pid, signal) }
    }

    func stop() {
        if serverPID == nil, kind == .nbd { serverPID = pidFromFile() }
        guard serverPID != nil else { return }
        let all = serverProcesses()
        for pid in all { kill(pid, SIGCONT); kill(pid, SIGKILL) }
        serverPID = nil
    }
}
