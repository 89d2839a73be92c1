// `zpk import -a`: every pool the scan finds is imported by zpkd, one connection and one request
// per pool, all sent at once, so the daemon runs their multihost activity checks concurrently
// (N pools take about as long as one). Each request runs on a thread of its own (the control
// client blocks); progress events of every pool go to one renderer.

import ArgumentParser
import Foundation
import Synchronization
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZPKControl

extension ZPK.Import {
    /// How one pool's import ended.
    struct ImportAllOutcome: Sendable {
        enum Kind: String, Sendable { case imported, inUse = "in_use", failed }
        var pool: String
        var guid: UInt64
        var kind: Kind
        var message: String?
        var result: [String: JSON]
    }

    /// The exit status of `import -a`: 0 all imported (or nothing found: 1, as the listing),
    /// 3 some in use elsewhere and no other failure, 1 any other failure.
    static func exitStatus(_ outcomes: [ImportAllOutcome]) -> Int32 {
        if outcomes.contains(where: { $0.kind == .failed }) { return 1 }
        if outcomes.contains(where: { $0.kind == .inUse }) { return 3 }
        return 0
    }

    func importAll() throws {
        let environment = ProcessEnvironment.current
        let scanner = ImportScanner(
            options: .init(
                searchPaths: directories, selector: nil, destroyedPools: destroyed ? .only : .exclude,
                deviceIdentity: UdevDiskIdentity.rule(optOut: DiskIdentityRule.optOut(environment: environment))))
        let result = scanner.scan()
        for problem in result.searchProblems { emitError(problem.message) }
        guard !result.pools.isEmpty else {
            emitError(
                result.permissionDenied
                    ? "no pools found: some devices require root privileges" : "no pools available to import")
            throw ExitCode(1)
        }
        let socket = daemon.socketPath()
        let progress = MultiPoolProgress(
            mode: ProgressRenderer.Mode.choose(json: json, environment: environment),
            pools: result.pools.map(\.name))
        let force = self.force
        let outcomes = Mutex<[Int: ImportAllOutcome]>([:])
        let candidates = result.pools
        // Every pool at once: each import may wait out its own activity check.
        BlockingIO.forEach(count: candidates.count, width: candidates.count) { index in
            let candidate = candidates[index]
            let outcome = Self.importOne(
                name: candidate.name, guid: candidate.guid.rawValue, config: candidate.config, force: force,
                socket: socket, progress: progress)
            outcomes.withLock { $0[index] = outcome }
        }
        progress.finish()
        let ordered = outcomes.withLock { all in (0..<result.pools.count).compactMap { all[$0] } }
        if json {
            let rows: [JSON] = ordered.map { outcome in
                var members: [(String, JSON)] = [
                    ("pool", .string(outcome.pool)), ("guid", .unsigned(outcome.guid)),
                    ("result", .string(outcome.kind.rawValue)),
                ]
                if let message = outcome.message { members.append(("message", .string(message))) }
                if let txg = outcome.result["txg"]?.uint64Value { members.append(("txg", .unsigned(txg))) }
                return JSON.object(members)
            }
            emit(JSON.object([("pools", .array(rows))]).rendered())
        } else {
            for outcome in ordered {
                switch outcome.kind {
                case .imported:
                    emit("\(outcome.pool)\timported at txg \(outcome.result["txg"]?.uint64Value ?? 0)\n")
                case .inUse:
                    emit("\(outcome.pool)\tin use on another host (not imported)\n")
                case .failed:
                    emit("\(outcome.pool)\tnot imported\n")
                }
                if let message = outcome.message { emitError(message) }
            }
        }
        let status = Self.exitStatus(ordered)
        if status != 0 { throw ExitCode(status) }
    }

    /// One pool's request on its own connection (runs on its own thread).
    static func importOne(
        name: String, guid: UInt64, config: NVList, force: Bool, socket: String, progress: MultiPoolProgress
    ) -> ImportAllOutcome {
        var outcome = ImportAllOutcome(pool: name, guid: guid, kind: .failed, message: nil, result: [:])
        let packed: [UInt8]
        do { packed = try config.encoded(as: .xdr) } catch {
            outcome.message = "cannot import '\(name)': its assembled config does not encode: \(error)"
            return outcome
        }
        do {
            let client = try ControlClient(socketPath: socket)
            defer { client.close() }
            let reply = try client.call("import", ["force": .bool(force)], payload: packed) { event in
                progress.render(event, pool: name)
            }
            outcome.kind = .imported
            outcome.result = reply.result
            for leaf in reply.result["missing_leaves"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                outcome.message = "pool '\(name)' imported DEGRADED: \(leaf) could not be opened"
            }
        } catch {
            outcome.kind = error.exitStatus == 3 ? .inUse : .failed
            outcome.message = error.message
        }
        return outcome
    }
}

/// Progress of several pools' requests at once on stderr: JSON lines as they come (each event
/// names its pool), one line per pool and phase in lines mode, and on a terminal one line
/// redrawn in place with every pool's remaining time.
final class MultiPoolProgress: Sendable {
    private struct State {
        var remaining: [String: (phase: String, milliseconds: UInt64)] = [:]
        var announced: Set<String> = []
        var lineIsOpen = false
    }
    let mode: ProgressRenderer.Mode
    let pools: [String]
    private let state = Mutex(State())

    init(mode: ProgressRenderer.Mode, pools: [String]) {
        self.mode = mode
        self.pools = pools
    }

    func render(_ event: [String: JSON], pool: String) {
        var event = event
        if event["pool"] == nil { event["pool"] = .string(pool) }
        let text: String? = state.withLock { state in
            switch mode {
            case .silent:
                return nil
            case .json:
                return String(decoding: JSON(event).encoded(), as: UTF8.self) + "\n"
            case .lines, .bar:
                guard event["event"]?.stringValue == "progress" else { return nil }
                let phase = event["phase"]?.stringValue ?? "working"
                let remaining = event["remaining_ms"]?.uint64Value ?? 0
                if mode == .lines {
                    guard state.announced.insert("\(pool)\u{0}\(phase)").inserted else { return nil }
                    return "\(pool): \(phase): \(ProgressRenderer.seconds(event["total_ms"]?.uint64Value ?? 0))\n"
                }
                state.remaining[pool] = (phase, remaining)
                state.lineIsOpen = true
                let parts = pools.compactMap { name in
                    state.remaining[name].map { "\(name) \($0.phase) \(ProgressRenderer.seconds($0.milliseconds))" }
                }
                return "\r" + parts.joined(separator: ", ") + " left\u{1B}[K"
            }
        }
        if let text { writeStandardError(text) }
    }

    func finish() {
        let open = state.withLock { state in
            defer { state.lineIsOpen = false }
            return state.lineIsOpen
        }
        if open { writeStandardError("\n") }
    }
}
