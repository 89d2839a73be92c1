// zpk-trials: multi-host fault trials in network namespaces — the safety proof of multihost
// protection. Each trial builds a storage namespace (nbd-server) and two or three host
// namespaces (zpkd each), draws one fault and its instant from the seed, and hands the evidence
// to TrialChecker. `scripts/fault-trials` is the one-line entry.

import ArgumentParser
import Dispatch
import Foundation
import Synchronization
import ZFSTrials

#if canImport(Glibc)
import Glibc
#endif

@main
struct ZPKTrials: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zpk-trials",
        abstract: "Multi-host fault trials: proves that no two hosts write a multihost pool at once.",
        subcommands: [RunTrials.self, Relay.self], defaultSubcommand: RunTrials.self)
}

/// `zpk-trials relay`: the storage-link shaper of one host namespace (LinkRelay.swift); the
/// runner starts one per host with `ip netns exec`.
struct Relay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Relay a host namespace's loopback port to the storage server, with latency and loss from a control file.")
    @Option(help: "Address to listen on (inside the namespace).") var listen = "127.0.0.1:10809"
    @Option(help: "The storage server.") var target = "\(Topology.storageAddress):10809"
    @Option(help: "Control file: \"DELAY_MS LOSS_PERCENT\".") var control: String

    func run() throws {
        func split(_ text: String) throws -> (String, UInt16) {
            let parts = text.split(separator: ":")
            guard parts.count == 2, let port = UInt16(parts[1]) else { throw ValidationError("Please give HOST:PORT, not \(text).") }
            return (String(parts[0]), port)
        }
        let (lh, lp) = try split(listen), (th, tp) = try split(target)
        LinkRelay.serve(listenHost: lh, listenPort: lp, targetHost: th, targetPort: tp, control: control)
    }
}

struct RunTrials: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Multi-host fault trials: proves that no two hosts write a multihost pool at once.",
        discussion: """
            Each trial runs a zpkd in each of two or three network namespaces, host 0 creates a
            pool (multihost=on, a mirror of two leaves in a storage namespace) and writes objects
            tagged with its hostid and a sequence number, syncing each one. Then one fault, drawn
            from the seed: the holder partitioned from storage, the hosts partitioned from each
            other, latency or loss on the holder's storage link, the storage server stopped for
            longer or shorter than fail_intervals × interval, or the holder killed. The other
            hosts race to import all along. Afterwards the pool is read back from the storage's
            files and the checker proves from the evidence that no two hosts had the pool
            writable at once, that no synced object was lost, and that no host took the pool
            from a holder that was still heartbeating.

            Needs root (ip netns). Exit status: 0 when every trial passed, 1 when the checker
            found a violation, 2 when a trial could not be set up.
            Replay one trial: --seed S --first I --trials 1 (its seed line is printed).
            """)

    @Option(help: "Number of trials.") var trials = 20
    @Option(help: "Seed of the run (every fault and instant follows from it).") var seed: UInt64 = 1
    @Option(help: "Index of the first trial (to replay one).") var first = 1
    @Option(help: "Leaves: nbd (nbd-server in the storage namespace) or file (shared files; faults on the storage link become injected device faults).")
    var leaves: String = "nbd"
    @Option(name: .customLong("interval-ms"), help: "zfs_multihost_interval of every zpkd, ms.") var intervalMilliseconds: UInt64 = 100
    @Option(name: .customLong("fail-intervals"), help: "zfs_multihost_fail_intervals.") var failIntervals: UInt64 = 10
    @Option(name: .customLong("import-intervals"), help: "zfs_multihost_import_intervals.") var importIntervals: UInt64 = 20
    @Option(help: "The zpkd executable (default: next to zpk-trials).") var zpkd: String?
    @Option(help: "Directory for the run's files (default: a new one under $TMPDIR).") var workDirectory: String?
    @Option(help: "Prefix of namespace names (default: trials-<pid>).") var prefix: String?
    @Option(name: .customLong("fault"), help: "Draw only these fault kinds (repeatable): \(FaultKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var faults: [String] = []
    @Flag(help: "Take the fault kinds in turn (trial 1 the first kind, …) instead of drawing them: a short sample covers every kind.")
    var cycleFaults = false
    @Flag(help: "Print each trial's findings and keep its files.") var verbose = false
    @Flag(help: "Stop at the first trial with a violation.") var stopOnFailure = false

    func validate() throws {
        guard trials > 0 else { throw ValidationError("Please give --trials a positive number.") }
        for fault in faults where FaultKind(rawValue: fault) == nil {
            throw ValidationError("Please name a fault kind (\(FaultKind.allCases.map(\.rawValue).joined(separator: ", "))), not \(fault).")
        }
        guard LeafKind(rawValue: leaves) != nil else { throw ValidationError("Please use --leaves nbd or --leaves file.") }
    }

    func run() throws {
        guard getuid() == 0 else {
            print("zpk-trials: needs root to create network namespaces (ip netns); run it with sudo")
            throw ExitCode(2)
        }
        let pid = getpid()
        let zpkdPath = zpkd ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("zpkd").path
        guard FileManager.default.isExecutableFile(atPath: zpkdPath) else {
            print("zpk-trials: zpkd not found at \(zpkdPath); build it (swift build) or pass --zpkd")
            throw ExitCode(2)
        }
        let work = workDirectory ?? "\(ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp")/zpk-trials-\(pid)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let tunables = TrialTunables(
            intervalMilliseconds: intervalMilliseconds, failIntervals: failIntervals, importIntervals: importIntervals)
        let options = TrialOptions(
            zpkd: zpkdPath, leaves: LeafKind(rawValue: leaves)!, tunables: tunables, prefix: prefix ?? "trials-\(pid)",
            shortID: String(pid % 100_000), workDirectory: work, verbose: verbose,
            selfExecutable: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        Self.installSignalHandlers()
        print("zpk-trials: \(trials) trials, seed \(seed), \(leaves) leaves, interval \(intervalMilliseconds) ms × fail \(failIntervals), in \(work)")
        var table = TrialTable(formulaText: tunables.text)
        var setupFailures = 0
        for index in first..<(first + trials) {
            let plan = TrialPlan.draw(
                index: index, seed: TrialPlan.seed(run: seed, index: index), tunables: tunables,
                kinds: faults.isEmpty ? FaultKind.allCases : faults.compactMap(FaultKind.init(rawValue:)), cycle: cycleFaults)
            let trial = Trial(plan: plan, options: options)
            Self.current.withLock { $0 = trial }
            let start = monotonicNow()
            let evidence: TrialEvidence
            do {
                evidence = try trial.run()
            } catch {
                Self.current.withLock { $0 = nil }
                setupFailures += 1
                print("\(plan): could not run: \(error)")
                if setupFailures >= 3 { break }
                continue
            }
            Self.current.withLock { $0 = nil }
            let verdict = TrialChecker.check(evidence)
            table.add(verdict, duration: monotonicNow() - start)
            let times = verdict.takeoverTimes.map { "\($0 / 1_000_000) ms" }.joined(separator: ", ")
            let writes = evidence.writes.filter(\.outcome.isSynced).count
            print(
                "\(plan): \(writes) synced, takeovers \(verdict.takeovers)\(times.isEmpty ? "" : " (\(times))"), "
                    + (verdict.passed ? "ok" : "\(verdict.findings.count) FINDINGS"))
            for finding in verdict.findings.prefix(verbose ? 100 : 5) { print("    \(finding)") }
            fflush(nil)  // one line per trial as it ends, also into a file
            if !verdict.passed, stopOnFailure { break }
        }
        print(table.rendered())
        if workDirectory == nil && !verbose { try? FileManager.default.removeItem(atPath: work) }
        if !table.passed { throw ExitCode(1) }
        if setupFailures > 0 || table.verdicts.isEmpty { throw ExitCode(2) }
    }

    /// The trial under way, torn down by SIGINT/SIGTERM before the process exits.
    static let current = Mutex<Trial?>(nil)
    nonisolated(unsafe) static var signalSources: [any DispatchSourceSignal] = []

    static func installSignalHandlers() {
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                let trial = current.withLock { $0 }
                trial?.abort()
                print("zpk-trials: interrupted; namespaces and processes removed")
                Glibc.exit(130)
            }
            source.resume()
            signalSources.append(source)
        }
    }
}
