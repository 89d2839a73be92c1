// The trial's storage: sparse files in the run's directory, served by nbd-server in the storage
// namespace (leaves `nbd://127.0.0.1:10809/dN`: each host's relay on its own loopback forwards
// to 10.231.0.1:10809 over its veth), or shared directly as file leaves (every
// namespace sees the same file system) when the NBD leaf is not used.

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
        let pidFile = "\(directory)/nbd-server.pid"
        try run([Tools.ip, "netns", "exec", namespace, Tools.nbdServer, "-C", config, "-p", pidFile])
        let deadline = monotonicNow() + 5_000_000_000
        while monotonicNow() < deadline {
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0
            {
                serverPID = pid
                return
            }
            usleep(10_000)
        }
        throw CommandFailure(command: ["nbd-server"], status: -1, output: "no pid file after 5 s")
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
        guard serverPID != nil else { return }
        let all = serverProcesses()
        for pid in all { kill(pid, SIGCONT); kill(pid, SIGKILL) }
        serverPID = nil
    }
}
