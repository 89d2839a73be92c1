// `zpk activity`: the read-only multihost verdict for HA scripts — is another host writing this
// pool right now? Scans like `zpk import -d` (or reads a cache file), runs the activity check
// OpenZFS master would run before importing (same required-rules, same wait formula, a poll at
// the writer's heartbeat rate and a final read exactly at the deadline), and answers with an
// exit status. Opens every device read-only; writes nothing anywhere.

import ArgumentParser
import Dispatch
import Synchronization
import ZFSFormat
import ZFSImport
import ZFSMultihost

#if canImport(Glibc)
import Glibc
#endif

extension ZPK {
    /// `zpk activity [-d DIR]... [-c CACHE] [--json] POOL|GUID`
    struct Activity: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Tell whether another host is using a multihost pool now (read-only, for HA scripts).",
            discussion: """
                A host that imports a pool with multihost=on rewrites a copy of its newest \
                uberblock into the pool's labels many times a second (a "heartbeat"). Before \
                importing, OpenZFS watches the best uberblock for a while: if it changes, \
                another host is alive and the import is refused. zpk activity runs that same \
                watch and tells you the answer, without importing and without writing a byte.

                How long it watches comes from what the last writer recorded: with its \
                heartbeat interval I and fail intervals F (it suspends itself after F × I \
                without a heartbeat), the wait is 2 × F × I — e.g. 20 s for the defaults \
                (1000 ms × 10), 2 s for 100 ms × 10 — plus a random 0-25 % so two hosts rarely \
                finish together. A writer with F = 0 never suspends itself, so the wait is \
                longer: max(K × local interval, K × (I + its mmp_delay)), K = \
                zfs_multihost_import_intervals (20). A live holder is usually seen within one \
                of its heartbeat intervals. No wait at all is needed when multihost was \
                off, or when the pool is exported or destroyed.

                Exit status:
                  0  no other host is active: the pool is importable here
                  3  in use on another host (its hostname, hostid, heartbeat age)
                  1  error, or no verdict (no such pool; this host has no hostid)
                  64 usage error

                While it waits, a countdown bar is drawn on stderr when stderr is a terminal. \
                With --json the verdict goes to stdout as one JSON object, and progress goes \
                to stderr as JSON lines (docs/cli.md), e.g.
                  {"event":"progress","phase":"activity_check","pool":"tank",
                   "elapsed_ms":500,"remaining_ms":1500,"total_ms":2000}

                The local hostid is ZFS_HOSTID, else /proc/sys/kernel/spl/hostid, else \
                /etc/hostid, as zpool finds it.

                Examples:
                  zpk activity -d /var/tmp/pool tank && zpk import ... tank
                  zpk activity -d /dev/disk/by-id --json 1234567890123456789
                  zpk activity -c /etc/zfs/zpool.cache tank
                """
        )

        @Option(name: .customShort("d"), help: ArgumentHelp("A directory to scan, or a device; repeatable.", valueName: "dir"))
        var directories: [String] = []

        @Option(
            name: .customLong("nbd"),
            help: ArgumentHelp(
                "An NBD server (HOST[:PORT] or an NBD URI) whose exports are scanned too; repeatable.", valueName: "server"))
        var nbdServers: [String] = []

        @Option(name: .customShort("c"), help: ArgumentHelp("Find the pool in this cache file instead of scanning.", valueName: "cachefile"))
        var cachefile: String?

        @Flag(help: "Print the verdict as JSON on stdout and progress as JSON lines on stderr.")
        var json = false

        @Option(help: ArgumentHelp("This host's zfs_multihost_interval in ms (used only when the writer did not record its own).", valueName: "ms"))
        var zfsMultihostInterval: UInt64 = MultihostTunables.defaultIntervalInMilliseconds

        @Option(help: ArgumentHelp("This host's zfs_multihost_import_intervals (the K of the longer waits).", valueName: "n"))
        var zfsMultihostImportIntervals: UInt64 = MultihostTunables.defaultImportIntervals

        @Argument(help: ArgumentHelp("The pool: a name, or its numeric guid.", valueName: "pool"))
        var pool: String

        mutating func run() throws {
            directories += try NBDServers.exportURIs(nbdServers)
            let interactive = isatty(2) == 1 && !json
            let bar = CountdownBar(enabled: interactive)
            let tunables = MultihostTunables(
                intervalInMilliseconds: zfsMultihostInterval, importIntervals: zfsMultihostImportIntervals)
            let (searchPaths, cacheFile, pool, json) = (directories, cachefile, self.pool, self.json)
            let environment = ProcessEnvironment.current
            let output = blockingAwait {
                await Self.run(
                    searchPaths: searchPaths, cacheFile: cacheFile, pool: pool, json: json, tunables: tunables,
                    environment: environment,
                    progress: { line in emitError(line) },
                    progressEvent: { event in if interactive { bar.draw(event) } })
            }
            bar.finish()
            emit(output.stdout)
            if !output.stderr.isEmpty { emitError(String(output.stderr.dropLast())) }
            if output.status != 0 { throw ExitCode(output.status) }
        }

        /// What `zpk activity` prints and exits with (testable without a process).
        struct Output: Hashable, Sendable {
            var stdout: String
            var stderr: String
            var status: Int32
        }

        /// Runs the verdict. `progress` receives JSON progress lines (with `json`); `progressEvent`
        /// every progress value (for the countdown bar).
        static func run(
            searchPaths: [String], cacheFile: String?, pool: String, json: Bool,
            tunables: MultihostTunables = MultihostTunables(), environment: [String: String],
            clock: any Clock<Duration> = ContinuousClock(), wallClock: WallClock = .system,
            progress: @escaping @Sendable (String) -> Void = { _ in },
            progressEvent: @escaping @Sendable (ActivityProgress) -> Void = { _ in }
        ) async -> Output {
            let selector = PoolSelector(zpoolArgument: pool)
            let result: ScanResult
            if let cacheFile {
                switch ZPK.Import.scanCacheFile(cacheFile, searchPaths: searchPaths, selector: selector, destroyed: false) {
                case .success(let scanned): result = scanned
                case .failure(let failure): return Output(stdout: "", stderr: failure.message + "\n", status: failure.status == 0 ? 1 : failure.status)
                }
            } else {
                let scanner = ImportScanner(
                    options: .init(
                        searchPaths: searchPaths, selector: selector, destroyedPools: .exclude,
                        deviceIdentity: UdevDiskIdentity.rule(optOut: DiskIdentityRule.optOut(environment: environment))))
                result = await scanner.scan()
            }
            var output = Output(stdout: "", stderr: "", status: 0)
            let candidate: PoolCandidate
            do {
                candidate = try result.pool(selector)
            } catch {
                for problem in result.searchProblems { output.stderr += problem.message + "\n" }
                let message = error.message.hasPrefix("cannot import ") ? "cannot check " + error.message.dropFirst("cannot import ".count) : error.message
                output.stderr += message + "\n"
                output.status = 1
                return output
            }
            let hostID = SystemHostID.current(environment: environment)
            let name = candidate.name
            let report: MultihostActivityReport
            do {
                report = try await MultihostActivity.check(
                    candidate, localHostID: hostID, tunables: tunables, clock: clock, wallClock: wallClock,
                    progress: { p in
                        progressEvent(p)
                        if json { progress(progressLine(p, pool: name)) }
                    })
            } catch {
                output.stderr += error.message + "\n"
                output.status = 1
                return output
            }
            output.status = report.exitStatus
            if json {
                output.stdout = Self.json(report).rendered()
            } else {
                output.stdout = report.lines.map { $0 + "\n" }.joined()
            }
            return output
        }

        /// One progress event as a JSON line (docs/cli.md "zpk activity").
        static func progressLine(_ p: ActivityProgress, pool: String) -> String {
            "{\"event\":\"progress\",\"phase\":\"\(p.phase.rawValue)\",\"pool\":\(jsonString(pool)),\"elapsed_ms\":\(ms(p.elapsed)),\"remaining_ms\":\(ms(p.remaining)),\"total_ms\":\(ms(p.total))}"
        }

        static func ms(_ d: Duration) -> Int64 {
            let c = d.components
            return c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000
        }

        static func jsonString(_ s: String) -> String {
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\t": out += "\\t"
                case "\r": out += "\\r"
                default:
                    if scalar.value < 0x20 {
                        let hex = String(scalar.value, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            return out + "\""
        }

        static func planJSON(_ plan: ActivityPlan) -> JSON {
            let caseName: String
            switch plan.durationCase {
            case .failIntervals: caseName = "fail_intervals"
            case .neverSuspends: caseName = "never_suspends"
            case .legacyWriter: caseName = "legacy_writer"
            case .preMMP: caseName = "pre_mmp"
            }
            return .object([
                ("case", .string(caseName)),
                ("duration_ms", .signed(ms(plan.duration))),
                ("extension_permille", .unsigned(plan.extensionPerMille)),
                ("total_ms", .signed(ms(plan.extendedDuration))),
                ("poll_ms", .signed(ms(plan.pollInterval))),
                ("reason", .string(plan.reason)),
            ])
        }

        static func uberblockJSON(_ ub: Uberblock) -> JSON {
            .object([
                ("txg", .unsigned(ub.txg.rawValue)),
                ("timestamp", .unsigned(ub.timestampInSeconds)),
                ("mmp_sequence", ub.mmpSequence.map { .unsigned(UInt64($0)) } ?? .null),
                ("mmp_interval_ms", ub.mmpWriteIntervalInMilliseconds.map { .unsigned(UInt64($0)) } ?? .null),
                ("mmp_fail_intervals", ub.mmpFailIntervals.map { .unsigned(UInt64($0)) } ?? .null),
                ("mmp_delay_ns", .unsigned(ub.mmpDelayInNanoseconds)),
            ])
        }

        static func hostJSON(_ hostname: String?, _ hostID: UInt32?) -> JSON {
            .object([
                ("hostname", hostname.map { .string($0) } ?? .null),
                ("hostid", hostID.map { .unsigned(UInt64($0)) } ?? .null),
            ])
        }

        static func json(_ report: MultihostActivityReport) -> JSON {
            var members: [(String, JSON)] = [
                ("pool", .string(report.pool)),
                ("guid", .unsigned(report.guid.rawValue)),
                ("result", .string(report.result)),
                ("exit_status", .signed(Int64(report.exitStatus))),
                ("importable_here", .bool(report.exitStatus == 0)),
                ("local_hostid", .unsigned(UInt64(report.localHostID))),
            ]
            switch report.verdict {
            case .notRequired(let reason, let reading):
                members.append(("not_required_reason", .string(MultihostActivityReport.describe(reason))))
                members.append(("last_writer", hostJSON(reading.label?.host.hostname, reading.label?.host.hostID)))
                members.append(("uberblock", uberblockJSON(reading.uberblock)))
            case .noActivity(let waited, let plan, let reading):
                members.append(("waited_ms", .signed(ms(waited))))
                members.append(("wait", planJSON(plan)))
                members.append(("last_writer", hostJSON(reading.label?.host.hostname, reading.label?.host.hostID)))
                members.append(("uberblock", uberblockJSON(reading.uberblock)))
            case .active(let active, let plan):
                members.append(("active_host", hostJSON(active.hostname, active.hostID)))
                members.append(("last_heartbeat_ms_ago", .signed(ms(active.lastHeartbeatAge))))
                members.append(("peer_interval_ms", active.intervalInMilliseconds.map { .unsigned(UInt64($0)) } ?? .null))
                members.append(("peer_fail_intervals", active.failIntervals.map { .unsigned(UInt64($0)) } ?? .null))
                members.append(("peer_mmp_delay_ns", .signed(Int64(active.mmpDelay.components.seconds) * 1_000_000_000 + active.mmpDelay.components.attoseconds / 1_000_000_000)))
                members.append(("detected_after_ms", .signed(ms(active.detectedAfter))))
                members.append(("wait", planJSON(plan)))
                members.append(("uberblock", uberblockJSON(active.changed ?? active.reference)))
            case .refusedNoHostID(let reading):
                members.append(("last_writer", hostJSON(reading.label?.host.hostname, reading.label?.host.hostID)))
                members.append(("uberblock", uberblockJSON(reading.uberblock)))
            case .interrupted(let elapsed, let plan):
                members.append(("waited_ms", .signed(ms(elapsed))))
                members.append(("wait", planJSON(plan)))
            }
            members.append(("message", .array(report.lines.map { .string($0.trimmingLeadingSpaces) })))
            return .object(members)
        }
    }
}

extension String {
    fileprivate var trimmingLeadingSpaces: String { String(drop { $0 == " " }) }
}

/// Runs `body` to completion from synchronous code (the CLI's main thread is not part of the
/// cooperative pool, so blocking it while the task runs is safe).
func blockingAwait<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let box = Mutex<T?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        let value = await body()
        box.withLock { $0 = value }
        done.signal()
    }
    done.wait()
    while true {
        if let value = box.withLock({ $0 }) { return value }
    }
}

/// The live countdown on a terminal's stderr: `[#######-------]  1.3 s left of 2.4 s`.
final class CountdownBar: Sendable {
    private let enabled: Bool
    private let drawn = Mutex(false)
    static let width = 30

    init(enabled: Bool) { self.enabled = enabled }

    func draw(_ p: ActivityProgress) {
        guard enabled else { return }
        let total = max(1, ZPK.Activity.ms(p.total))
        let filled = Int(min(total, ZPK.Activity.ms(p.elapsed)) * Int64(Self.width) / total)
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: Self.width - filled)
        let label = p.phase == .claim ? "claim" : "activity check"
        let text = "\r\(label) [\(bar)] \(seconds(p.remaining)) s left of \(seconds(p.total)) s\u{1B}[K"
        drawn.withLock { $0 = true }
        var stream = StandardError()
        stream.write(text)
    }

    func finish() {
        guard enabled, drawn.withLock({ $0 }) else { return }
        var stream = StandardError()
        stream.write("\r\u{1B}[K")
    }

    private func seconds(_ d: Duration) -> String {
        let ms = ZPK.Activity.ms(d)
        return "\(ms / 1000).\(ms % 1000 / 100)"
    }
}
