// One fault trial: topology, storage, a zpkd per host, the pool created by host 0, the workload,
// one fault drawn at random (seeded), importers racing, then every host stopped and the pool read
// back from the storage's backing files. Returns the evidence; TrialChecker decides it.

import Foundation
import Synchronization
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSPool
import ZFSTrials
import ZPKControl

#if canImport(Glibc)
import Glibc
#endif

/// What a trial drew from its seed.
struct TrialPlan: Sendable, CustomStringConvertible {
    var index: Int
    var seed: UInt64
    var fault: FaultKind
    var hostCount: Int
    /// From the pool's creation to the fault.
    var preFaultNS: UInt64
    /// The latency or loss a fault puts on the holder's storage link.
    var delayMilliseconds: UInt64 = 0
    var lossPercent: UInt64 = 0
    /// How long a stall (SIGSTOP of the server, or a hang of the holder's leaves) lasts.
    var stallNS: UInt64 = 0
    var detail: String = ""

    var description: String {
        "trial \(index) seed \(seed) \(fault.rawValue)\(detail.isEmpty ? "" : " \(detail)") hosts \(hostCount) "
            + "at \(preFaultNS / 1_000_000) ms"
    }

    /// The seed of trial `index` of a run seeded `runSeed` (replay one with `--seed S --first I --trials 1`).
    static func seed(run runSeed: UInt64, index: Int) -> UInt64 {
        var random = TrialRandom(seed: runSeed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        return random.next()
    }

    /// `cycle`: the fault kinds are taken in turn (trial 1 the first, …) instead of drawn, so
    /// that a short sample covers every kind; everything else is still drawn from the seed.
    static func draw(
        index: Int, seed: UInt64, tunables: TrialTunables, kinds: [FaultKind] = FaultKind.allCases, cycle: Bool = false
    ) -> TrialPlan {
        var random = TrialRandom(seed: seed)
        let drawn = kinds.randomElement(using: &random)!
        let fault = cycle ? kinds[(index - 1) % kinds.count] : drawn
        // Two or three hosts; a killed holder always has two importers racing.
        let hostCount = fault == .killHolder ? 3 : Int.random(in: 2...3, using: &random)
        var plan = TrialPlan(
            index: index, seed: seed, fault: fault, hostCount: hostCount,
            preFaultNS: UInt64.random(in: 300...1500, using: &random) * 1_000_000)
        switch fault {
        case .latency:
            plan.delayMilliseconds = [5, 50, 200].randomElement(using: &random)!
            plan.detail = "\(plan.delayMilliseconds) ms"
        case .loss:
            plan.lossPercent = UInt64.random(in: 1...20, using: &random)
            plan.detail = "\(plan.lossPercent) %"
        case .stallLong:
            plan.stallNS = tunables.failNS * UInt64.random(in: 150...300, using: &random) / 100
            plan.detail = "\(plan.stallNS / 1_000_000) ms"
        case .stallShort:
            plan.stallNS = tunables.failNS * UInt64.random(in: 10...50, using: &random) / 100
            plan.detail = "\(plan.stallNS / 1_000_000) ms"
        case .partitionStorage, .partitionHosts, .killHolder:
            break
        }
        return plan
    }
}

/// The evidence, as the threads of a trial record it.
final class Recorder: Sendable {
    let tenures = Mutex<[TenureRecord]>([])
    let writes = Mutex<[WriteRecord]>([])
    let statuses = Mutex<[StatusRecord]>([])
}

/// A flag the trial's threads poll.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}

final class WorkerList: Sendable {
    let list = Mutex<[Worker]>([])
}

/// Runs `body` on a thread of its own; `join` waits for it.
final class Worker: Sendable {
    private let done = DispatchSemaphore(value: 0)
    init(_ body: @escaping @Sendable () -> Void) {
        let done = self.done
        let thread = Thread {
            body()
            done.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    func join() { done.wait() }
}

func sleepNS(_ ns: UInt64) {
    var request = timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

struct TrialOptions: Sendable {
    var zpkd: String
    var leaves: LeafKind
    var tunables: TrialTunables
    var prefix: String
    var shortID: String
    var workDirectory: String
    var verbose: Bool
    /// This executable (the relays are `zpk-trials relay`).
    var selfExecutable: String
}

final class Trial: @unchecked Sendable {
    static let pool = "tp"
    let plan: TrialPlan
    let options: TrialOptions
    let recorder = Recorder()
    let directory: String
    var topology: Topology
    var storage: TrialStorage?
    var hosts: [TrialHost] = []
    var relays: [Process] = []
    var faultAt: UInt64 = 0
    var importConfig: NVList?

    init(plan: TrialPlan, options: TrialOptions) {
        self.plan = plan
        self.options = options
        directory = "\(options.workDirectory)/t\(plan.index)"
        topology = Topology(prefix: options.prefix, shortID: options.shortID, hostCount: plan.hostCount)
    }

    /// Host ids: distinct per trial, recognisable in the pool (`h5a7e0NNN-…` object names).
    func hostID(_ i: Int) -> TrialHostID { 0x5A7E_0000 | TrialHostID(plan.index % 0x1000) << 4 | TrialHostID(i) }

    /// Runs the trial and tears everything down on every path.
    func run() throws -> TrialEvidence {
        defer { tearDown() }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try topology.setUp()
        let storage = try TrialStorage(kind: options.leaves, directory: directory)
        self.storage = storage
        try storage.start(in: topology.storageNS)
        if storage.kind == .nbd {
            for i in 0..<plan.hostCount { try startRelay(i) }
        }
        for i in 0..<plan.hostCount {
            let host = TrialHost(index: i, hostID: hostID(i), namespace: topology.hostNS(i), directory: directory)
            hosts.append(host)
            try host.start(zpkd: options.zpkd, tunables: options.tunables)
        }
        return try drive(storage: storage)
    }

    /// Tears the trial down at once (SIGINT/SIGTERM of the runner).
    func abort() { tearDown() }

    func relayControl(_ i: Int) -> String { "\(directory)/h\(i).link" }

    /// The storage-link shaper of host i, in its namespace (LinkRelay.swift).
    private func startRelay(_ i: Int) throws {
        try LinkShape.write(delayMilliseconds: 0, lossPercent: 0, to: relayControl(i))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Tools.ip)
        process.arguments = [
            "netns", "exec", topology.hostNS(i), options.selfExecutable, "relay", "--listen", "127.0.0.1:10809",
            "--target", "\(Topology.storageAddress):10809", "--control", relayControl(i),
        ]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        relays.append(process)
        let line = pipe.fileHandleForReading.availableData
        guard String(decoding: line, as: UTF8.self).contains("ready") else {
            throw CommandFailure(command: ["zpk-trials relay"], status: -1, output: String(decoding: line, as: UTF8.self))
        }
    }

    private func tearDown() {
        for host in hosts { host.kill9() }
        for relay in relays where relay.isRunning {
            kill(relay.processIdentifier, SIGKILL)
            relay.waitUntilExit()
        }
        relays = []
        storage?.stop()
        topology.tearDown()
        if !options.verbose { try? FileManager.default.removeItem(atPath: directory) }
    }

    // MARK: The workload

    /// Put + sync, again and again, on `host` until `stop` (or the host dies).
    private func writer(_ host: TrialHost, stop: StopFlag) -> Worker {
        let recorder = self.recorder
        return Worker {
            guard let client = try? host.connect() else { return }
            defer { client.close() }
            var sequence: UInt64 = 0
            while !stop.isSet {
                sequence += 1
                let key = TrialPayload.key(host: host.hostID, sequence: sequence)
                let sent = monotonicNow()
                var outcome: WriteRecord.Outcome
                do {
                    _ = try client.call(
                        "object.put", ["pool": .string(Self.pool), "key": .string(key)], payload: TrialPayload.bytes(for: key))
                    let reply = try client.call("sync", ["pool": .string(Self.pool)])
                    let txg = reply.result["pools"]?.arrayValue?.first?["txg"]?.uint64Value ?? 0
                    outcome = .synced(txg: txg)
                } catch let error as ControlError where error.code == .remote {
                    outcome = .refused(code: error.remoteCode ?? "internal")
                } catch {
                    outcome = .unknown
                }
                recorder.writes.withLock {
                    $0.append(WriteRecord(host: host.hostID, key: key, sent: sent, answered: monotonicNow(), outcome: outcome))
                }
                if case .unknown = outcome { return }
                sleepNS(outcome.isSynced ? 40_000_000 : 100_000_000)
            }
        }
    }

    /// Status of `host`'s pool every 100 ms: its state and landed heartbeats. Status waits for
    /// the pool lock, which a hung write holds, so suspension is also watched in the log.
    private func poller(_ host: TrialHost, stop: StopFlag) -> Worker {
        let recorder = self.recorder
        return Worker {
            var client = try? host.connect()
            defer { client?.close() }
            while !stop.isSet && host.isAlive {
                let sent = monotonicNow()
                if let connection = client {
                    do {
                        let reply = try connection.call("status", ["pool": .string(Self.pool)])
                        let pool = reply.result["pools"]?.arrayValue?.first
                        let suspension = pool?["suspension"]?.stringValue
                        let state: StatusRecord.State =
                            pool?["state"]?.stringValue == "SUSPENDED"
                            ? .suspended(heartbeatsFailed: suspension?.contains("MMP writes to pool") ?? false) : .active
                        let written = pool?["multihost"]?["heartbeats_written"]?.uint64Value
                        recorder.statuses.withLock {
                            $0.append(StatusRecord(host: host.hostID, sent: sent, answered: monotonicNow(), state: state, heartbeatsWritten: written))
                        }
                    } catch let error as ControlError where error.code == .remote {
                        // unknownPool: not (yet) imported here.
                    } catch {
                        client = nil
                    }
                }
                sleepNS(100_000_000)
            }
        }
    }

    /// The "pool suspended" line of `host`'s zpkd log, looked for every 20 ms; recorded (as a
    /// status without a heartbeat count) when it first appears.
    private func logWatcher(_ host: TrialHost, stop: StopFlag) -> Worker {
        let recorder = self.recorder
        return Worker {
            guard let file = FileHandle(forReadingAtPath: host.logPath) else { return }
            defer { try? file.close() }
            var pending = ""
            while !stop.isSet {
                let sent = monotonicNow()
                let data = (try? file.readToEnd()) ?? Data()
                pending += String(decoding: data, as: UTF8.self)
                var lines = pending.split(separator: "\n", omittingEmptySubsequences: false)
                pending = String(lines.removeLast())
                if let line = lines.first(where: { $0.contains("pool suspended") }) {
                    let now = monotonicNow()
                    recorder.statuses.withLock {
                        $0.append(
                            StatusRecord(
                                host: host.hostID, sent: sent, answered: now,
                                state: .suspended(heartbeatsFailed: line.contains("MMP writes to pool")), heartbeatsWritten: nil))
                    }
                    return
                }
                if !host.isAlive { return }
                sleepNS(20_000_000)
            }
        }
    }

    /// `import -f` on `host`, again and again until it succeeds or `stop`; then the host writes.
    private func importer(_ host: TrialHost, config: [UInt8], stop: StopFlag, writerStop: StopFlag, writers: WorkerList) -> Worker {
        let recorder = self.recorder
        return Worker { [self] in
            while !stop.isSet && host.isAlive {
                guard let client = try? host.connect() else { return }
                let sent = monotonicNow()
                let claim = Mutex<UInt64?>(nil)
                var outcome: TenureRecord.Outcome
                do {
                    let reply = try client.call("import", ["force": .bool(true)], payload: config) { event in
                        if event["phase"]?.stringValue == "claim" {
                            let now = monotonicNow()
                            claim.withLock { if $0 == nil { $0 = now } }
                        }
                    }
                    outcome = .imported(txg: reply.result["txg"]?.uint64Value ?? 0)
                } catch let error as ControlError where error.code == .remote {
                    outcome = .refused(code: error.remoteCode ?? "internal")
                } catch {
                    client.close()
                    return
                }
                client.close()
                let record = TenureRecord(
                    host: host.hostID, isCreate: false, sent: sent, claimSeen: claim.withLock { $0 }, answered: monotonicNow(),
                    outcome: outcome)
                recorder.tenures.withLock { $0.append(record) }
                if record.succeeded {
                    if options.verbose { print("  host \(host.index) imported after \((record.answered &- faultAt) / 1_000_000) ms") }
                    let w = writer(host, stop: writerStop)
                    writers.list.withLock { $0.append(w) }
                    return
                }
                sleepNS(200_000_000)
            }
        }
    }

    // MARK: The trial

    private func drive(storage: TrialStorage) throws -> TrialEvidence {
        let tunables = options.tunables
        let holder = hosts[0]
        let pollStop = StopFlag(), writerStop = StopFlag(), importStop = StopFlag()
        let pollers = hosts.map { poller($0, stop: pollStop) } + hosts.map { logWatcher($0, stop: pollStop) }
        let writers = WorkerList()

        // Host 0 creates the pool (multihost on) and starts writing.
        // (Retried: on a loaded machine the first NBD handshakes may miss the request timeout.)
        let vdevs: JSON = .array([JSON(["type": "mirror", "paths": .array(storage.leaves.map { .string($0) })])])
        let arguments: [String: JSON] = ["pool": .string(Self.pool), "vdevs": vdevs, "properties": JSON(["multihost": "on"])]
        var sent = monotonicNow()
        var attempt = 0
        while true {
            attempt += 1
            let createClient = try holder.connect()
            sent = monotonicNow()
            let result = Result { () throws(ControlError) -> ControlReply in try createClient.call("create", arguments) }
            createClient.close()
            switch result {
            case .success: break
            case .failure(let error) where error.remoteCode == "deviceOpenFailed" && attempt < 4:
                sleepNS(500_000_000)
                continue
            case .failure(let error): throw error
            }
            break
        }
        recorder.tenures.withLock {
            $0.append(TenureRecord(host: holder.hostID, isCreate: true, sent: sent, claimSeen: nil, answered: monotonicNow(), outcome: .imported(txg: 4)))
        }
        let cache = try CacheFile(decoding: try Array(Data(contentsOf: URL(fileURLWithPath: holder.cacheFile))), path: holder.cacheFile)
        guard let entry = cache.entries.first(where: { $0.name == Self.pool }) else {
            throw CommandFailure(command: ["read", holder.cacheFile], status: -1, output: "no entry for the pool")
        }
        importConfig = entry.config
        let packed = try entry.config.encoded(as: .xdr)
        writers.list.withLock { $0.append(writer(holder, stop: writerStop)) }

        sleepNS(plan.preFaultNS)

        // The fault.
        faultAt = monotonicNow()
        var heal: () -> Void = {}
        var stallThread: Worker?
        switch plan.fault {
        case .killHolder:
            holder.kill9()
        case .partitionStorage:
            switch storage.kind {
            case .nbd:
                try topology.setStorageLink(of: 0, up: false)
                heal = { [topology] in try? topology.setStorageLink(of: 0, up: true) }
            case .file:
                try inject(holder, "hang")
                heal = { [self] in try? self.clearInjection(holder) }
            }
        case .partitionHosts:
            try topology.setHostLinks(of: 0, up: false)
            heal = { [topology] in try? topology.setHostLinks(of: 0, up: true) }
        case .latency, .loss:
            switch storage.kind {
            case .nbd:
                let control = relayControl(0)
                try LinkShape.write(delayMilliseconds: plan.delayMilliseconds, lossPercent: plan.lossPercent, to: control)
                heal = { try? LinkShape.write(delayMilliseconds: 0, lossPercent: 0, to: control) }
            case .file:
                // File leaves have no link: the holder's leaves get the latency as an injected delay
                // (loss as the delay of a retransmission, 200 ms per lost percent, capped).
                let delay = plan.fault == .latency ? plan.delayMilliseconds : min(200, 10 * plan.lossPercent)
                try inject(holder, "delay=\(delay)")
                heal = { [self] in try? self.clearInjection(holder) }
            }
        case .stallLong, .stallShort:
            let stall = plan.stallNS
            switch storage.kind {
            case .nbd:
                storage.signalServer(SIGSTOP)
                stallThread = Worker { sleepNS(stall); storage.signalServer(SIGCONT) }
                heal = { storage.signalServer(SIGCONT) }
            case .file:
                try inject(holder, "hang")
                stallThread = Worker { [self] in sleepNS(stall); try? self.clearInjection(holder) }
            }
        }

        // Every other host tries to import, from the fault on, until the window closes.
        let importers = hosts.dropFirst().map { importer($0, config: packed, stop: importStop, writerStop: writerStop, writers: writers) }
        let window = tunables.takeoverBoundNS + 1_500_000_000
        sleepNS(window)
        importStop.set()
        for worker in importers { worker.join() }
        stallThread?.join()
        heal()
        // Writes held by the fault land now, if they are going to.
        sleepNS(500_000_000)
        writerStop.set()
        for worker in writers.list.withLock({ $0 }) { worker.join() }
        pollStop.set()
        for worker in pollers { worker.join() }
        var kills: [KillRecord] = []
        if let at = holder.killedAt, plan.fault == .killHolder { kills.append(KillRecord(host: holder.hostID, at: at)) }
        for host in hosts where host.killedAt == nil { kills.append(KillRecord(host: host.hostID, at: host.kill9())) }

        let finalPool = try readBack(storage: storage, config: entry.config)
        if options.verbose { writeTimeline() }
        return TrialEvidence(
            trial: plan.index, seed: plan.seed, fault: plan.fault, faultDetail: plan.detail, faultAt: faultAt,
            hosts: hosts.map(\.hostID), tenures: recorder.tenures.withLock { $0 }, writes: recorder.writes.withLock { $0 },
            statuses: recorder.statuses.withLock { $0 }, kills: kills, finalPool: finalPool,
            takeoverBound: tunables.takeoverBoundNS + (plan.stallNS > 0 ? plan.stallNS + 200_000_000 : 0))
    }

    /// The evidence as a timeline (ms from the fault), kept with the trial's files (--verbose).
    private func writeTimeline() {
        func t(_ ns: UInt64) -> String { "\(Int64(bitPattern: ns &- faultAt) / 1_000_000)" }
        var lines: [String] = []
        for r in recorder.tenures.withLock({ $0 }) {
            lines.append("\(t(r.sent)) tenure host \(String(r.host, radix: 16)) create=\(r.isCreate) claim=\(r.claimSeen.map(t) ?? "-") answered=\(t(r.answered)) \(r.outcome)")
        }
        for r in recorder.writes.withLock({ $0 }) {
            lines.append("\(t(r.sent)) write host \(String(r.host, radix: 16)) \(r.key) answered=\(t(r.answered)) \(r.outcome)")
        }
        for r in recorder.statuses.withLock({ $0 }) {
            lines.append("\(t(r.sent)) status host \(String(r.host, radix: 16)) answered=\(t(r.answered)) \(r.state) hb=\(r.heartbeatsWritten.map(String.init) ?? "-")")
        }
        lines.sort { (Int($0.split(separator: " ")[0]) ?? 0) < (Int($1.split(separator: " ")[0]) ?? 0) }
        try? lines.joined(separator: "\n").write(toFile: "\(directory)/timeline.txt", atomically: true, encoding: .utf8)
    }

    private func inject(_ host: TrialHost, _ fault: String) throws {
        let client = try host.connect()
        defer { client.close() }
        for leaf in storage?.leaves ?? [] {
            _ = try client.call("inject", ["pool": .string(Self.pool), "leaf": .string(leaf), "fault": .string(fault)])
        }
    }

    private func clearInjection(_ host: TrialHost) throws {
        let client = try host.connect()
        defer { client.close() }
        _ = try client.call("inject.clear", ["pool": .string(Self.pool)])
    }

    /// The pool as the storage's backing files hold it, read with ZFSPool's own reader.
    private func readBack(storage: TrialStorage, config: NVList) throws -> Result<[String: ObjectReading], FinalPoolError> {
        let environment = PoolHost.Environment(
            hostID: 0, hostname: "checker",
            openDevice: { path in
                try FileBlockDevice(path: storage.backingFile(of: path) ?? path, mode: .readOnly)
            })
        let host = PoolHost(environment: environment)
        let box = Mutex<Result<[String: ObjectReading], FinalPoolError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                let inspection = try await host.inspect(config: config)
                var objects: [String: ObjectReading] = [:]
                for (name, result) in inspection.objects {
                    switch result {
                    case .success(let bytes): objects[name] = .intact(bytes)
                    case .failure(let error): objects[name] = .damaged(error.message)
                    }
                }
                box.withLock { $0 = .success(objects) }
            } catch {
                box.withLock { $0 = .failure(FinalPoolError("\(error)")) }
            }
            done.signal()
        }
        done.wait()
        return box.withLock { $0 } ?? .failure(FinalPoolError("no answer"))
    }
}

extension WriteRecord.Outcome {
    var isSynced: Bool {
        if case .synced = self { return true }
        return false
    }
}
