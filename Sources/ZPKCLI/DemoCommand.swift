// `zpk demo`: multihost protection shown end to end in one process, with no daemon and no root:
// two in-process pool hosts A and B (different hostids, short multihost tunables) share a
// mirror of two file vdevs in a temporary directory.
//
//   1. A creates a multihost pool, puts objects and syncs; its heartbeat runs.
//   2. B imports with -f: refused, naming A's hostname and hostid (the activity check saw A).
//   3. A "crashes": its heartbeat stops and it forgets the pool without export.
//   4. B imports again: it waits the activity check's full duration (live countdown), finds
//      no heartbeat, claims the pool and opens it.
//   5. B reads every object A wrote and compares the bytes; then exports the pool.
//
// Each step says what it expects and what happened; the exit status is 0 only when every step
// behaved as expected (a test runs this). The directory is removed at the end unless --keep.

import ZFSImport
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import ZFSFormat
import ZFSMultihost
import ZFSPool
import ZPKControl

#if canImport(Glibc)
import Glibc
#endif

extension ZPK {
    /// `zpk demo [--keep] [--directory DIR]`
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show multihost protection at work: two hosts, one pool, a crash (about 10 s).",
            discussion: """
                Runs in this process, with no zpkd and no root: two pool hosts A (hostid \
                0xa0a0a0a0) and B (hostid 0xb0b0b0b0) share a mirror of two 128 MiB sparse files \
                in a temporary directory, with short multihost tunables (interval 200 ms, fail \
                intervals 10, import intervals 10).

                  1. A creates pool 'demo' with multihost=on, puts three objects and syncs.
                  2. B tries `import -f`: refused, naming A's hostname and hostid, because A's \
                heartbeats are on the disks.
                  3. A crashes: its heartbeat stops, nothing more is written, no export.
                  4. B imports again: the activity check waits out its full duration (a live \
                countdown), sees no heartbeat, claims the pool and opens it.
                  5. B reads A's objects back and compares them byte for byte, then exports.

                Exit status: 0 when every step behaved as expected, 1 otherwise (the failed \
                step says what it expected).

                Examples:
                  zpk demo
                  swift run -c release zpk demo
                """)

        @Flag(help: "Keep the temporary directory (its path is printed).")
        var keep = false

        @Option(help: ArgumentHelp("Where to create the demo's directory (default: $TMPDIR, else /tmp).", valueName: "dir"))
        var directory: String?

        func run() throws {
            let parent = directory ?? ProcessEnvironment.current["TMPDIR"] ?? "/tmp"
            let keep = self.keep
            let passed = blockingAwait { await DemoScript(parent: parent, keep: keep).run() }
            if !passed { throw ExitCode(1) }
        }
    }
}

/// The demo's steps; `run()` returns whether every step behaved as expected.
struct DemoScript: Sendable {
    static let poolName = "demo"
    static let hostA = (id: UInt64(0xa0a0_a0a0), name: "demo-host-a")
    static let hostB = (id: UInt64(0xb0b0_b0b0), name: "demo-host-b")
    static let tunables = MultihostTunables(intervalInMilliseconds: 200, failIntervals: 10, importIntervals: 10)
    static let objects: [(String, [UInt8])] = [
        ("greeting", Array("written by host A before it crashed\n".utf8)),
        ("numbers", (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7) }),
        ("empty", []),
    ]

    let parent: String
    let keep: Bool

    func say(_ text: String) {
        emit(text + "\n")
        fflush(nil)  // each step shows at once, also when stdout is a pipe
    }

    func run() async -> Bool {
        let template = parent + "/zpk-demo-XXXXXX"
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else {
            say("FAILED: cannot create a directory under \(parent): \(String(cString: strerror(errno)))")
            return false
        }
        let directory = String(cString: made)
        defer {
            if keep {
                say("kept \(directory)")
            } else {
                try? FileManager.default.removeItem(atPath: directory)
            }
        }
        do {
            return try await steps(in: directory)
        } catch {
            say("FAILED: \(error)")
            return false
        }
    }

    func makeHost(_ who: (id: UInt64, name: String)) -> PoolHost {
        var logger = Logger(label: "zpk.demo.\(who.name)")
        logger.logLevel = .critical  // the demo speaks for itself; library logs would interleave
        return PoolHost(
            environment: PoolHost.Environment(
                hostID: who.id, hostname: who.name, multihostTunables: MultihostTunablesStore(Self.tunables),
                logger: logger, cacheFilePath: nil))
    }

    func steps(in directory: String) async throws -> Bool {
        let paths = [directory + "/disk0", directory + "/disk1"]
        for path in paths {
            let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
            guard fd >= 0, ftruncate(fd, 128 << 20) == 0 else {
                say("FAILED: cannot create \(path): \(String(cString: strerror(errno)))")
                return false
            }
            close(fd)
        }
        let t = Self.tunables
        say("ZPoolKit multihost demo in \(directory)")
        say("  two hosts share a mirror of \(paths.map { ($0 as NSString).lastPathComponent }.joined(separator: " and "))")
        say("  tunables: zfs_multihost_interval=\(t.intervalInMilliseconds) ms, fail_intervals=\(t.failIntervals), import_intervals=\(t.importIntervals)")
        say("")

        let a = makeHost(Self.hostA)
        let b = makeHost(Self.hostB)
        return try await withThrowingTaskGroup(of: Void.self, returning: Bool.self) { group in
            group.addTask { try await a.multihostService.run() }
            group.addTask { try await b.multihostService.run() }
            defer { group.cancelAll() }
            let result = try await script(a: a, b: b, paths: paths, directory: directory)
            group.cancelAll()
            return result
        }
    }

    func script(a: PoolHost, b: PoolHost, paths: [String], directory: String) async throws -> Bool {
        let name = Self.poolName
        let t = Self.tunables
        let hexA = String(Self.hostA.id, radix: 16)

        // 1. A creates and writes.
        say("1. host A (\(Self.hostA.name), hostid \(hexA)) creates pool '\(name)' with multihost=on")
        let poolA = try await a.create(name: name, layout: [.mirror(paths)], properties: ["multihost": "on"])
        for (key, value) in Self.objects { try await poolA.put(key, value) }
        let txg = try await poolA.sync()
        say("   put \(Self.objects.count) objects and synced txg \(txg.rawValue); A's heartbeat is running")
        // Let A land a few heartbeats, as a pool in service would have.
        try await Task.sleep(for: .milliseconds(Int64(Self.tunables.intervalInMilliseconds) * 3))

        // 2. B is refused.
        say("2. host B (\(Self.hostB.name)) runs import -f while A is alive: it must be refused")
        let refusedStart = ContinuousClock.now
        do {
            _ = try await b.importPool(name, searchPaths: [directory], force: true)
            say("   FAILED: B imported the pool while A was writing it (expected a refusal naming A)")
            return false
        } catch let error as PoolError where error.code == .poolInUse {
            let elapsed = ContinuousClock.now - refusedStart
            guard error.message.contains(Self.hostA.name), error.message.lowercased().contains(hexA) else {
                say("   FAILED: refused, but the message does not name A's hostname and hostid: \(error.message)")
                return false
            }
            let indented = error.message.replacingOccurrences(of: "\n", with: "\n   ")
            say("   refused after \(Self.format(elapsed)) (exit status 3 in zpk): \(indented)")
        }

        // 3. A crashes.
        say("3. host A crashes: its heartbeat stops and it writes nothing more (no export)")
        a.forget(name)
        let crashed = ContinuousClock.now

        // 4. B waits and imports.
        let failWindow = Duration.milliseconds(Int64(t.intervalInMilliseconds * t.failIntervals))
        let minimumWait = failWindow * 2
        say("4. host B imports again: the activity check must wait at least \(Self.format(minimumWait)) (2 × \(t.failIntervals) intervals × \(t.intervalInMilliseconds) ms), plus a random 0-25 %")
        let renderer = Mutex(ProgressRenderer(mode: .choose(json: false, environment: ProcessEnvironment.current)))
        let started = ContinuousClock.now
        let poolB: Pool
        do {
            poolB = try await b.importPool(name, searchPaths: [directory], force: true, progress: { progress in
                let event: [String: JSON] = [
                    "event": "progress", "phase": .string(progress.phase.rawValue),
                    "remaining_ms": .unsigned(UInt64(max(0, progress.remaining / .milliseconds(1)))),
                    "total_ms": .unsigned(UInt64(max(0, progress.total / .milliseconds(1)))),
                ]
                if let text = renderer.withLock({ $0.render(event) }) { writeStandardError(text) }
            })
        } catch {
            if let tail = renderer.withLock({ $0.finish() }) { writeStandardError(tail) }
            say("   FAILED: B's import after A's crash failed: \(error)")
            return false
        }
        if let tail = renderer.withLock({ $0.finish() }) { writeStandardError(tail) }
        let waited = ContinuousClock.now - started
        let sinceCrash = ContinuousClock.now - crashed
        guard waited >= minimumWait else {
            say("   FAILED: B imported after \(Self.format(waited)), sooner than the formula allows (\(Self.format(minimumWait)))")
            return false
        }
        say("   imported after \(Self.format(waited)) (\(Self.format(sinceCrash)) after the crash), at txg \(poolB.openReport.openedTXG.rawValue)")

        // 5. The objects are intact.
        for (key, expected) in Self.objects {
            let found = try await poolB.get(key)
            guard found == expected else {
                say("5. FAILED: object '\(key)' differs: \(found.count) bytes read, \(expected.count) written by A")
                return false
            }
        }
        say("5. every object A wrote is intact on B (\(Self.objects.map(\.0).joined(separator: ", ")))")
        try await b.export(name)
        say("   B exported the pool. Demo passed: multihost kept A and B from using '\(name)' at the same time.")
        return true
    }

    static func format(_ duration: Duration) -> String {
        let ms = duration / .milliseconds(1)
        return "\(Int(ms) / 1000).\(String(format: "%02d", Int(ms) % 1000 / 10)) s"
    }
}
