// The multihost verbs that talk to zpkd (issue 5): tunable get|set, clear, inject, history
// multihost. Thin clients, as PoolCommands.swift: arguments → one request (docs/daemon.md §3) →
// text or --json.

import ArgumentParser
import ZFSDevice
import ZPKDaemon

extension ZPK {
    /// `zpk tunable get [NAME]` / `zpk tunable set NAME VALUE`
    struct Tunable: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or change zpkd's multihost parameters, for every pool at once.",
            discussion: """
                The parameters are OpenZFS's module parameters, with their names, units, \
                defaults and clamping. zfs_multihost_interval: milliseconds between heartbeats \
                of each leaf (default 1000; used as at least 100). zfs_multihost_fail_intervals: \
                a pool is suspended after this many intervals without a landed heartbeat \
                (default 10; 0 = never suspend; else used as at least 2). \
                zfs_multihost_import_intervals: an importer's activity check lasts this many \
                intervals (default 20; used as at least 1).

                A change applies at once to every open pool (a new interval wakes every \
                heartbeat, as OpenZFS does) and to later imports; it lasts until zpkd stops \
                (start zpkd with --zfs-multihost-interval etc. to keep it). VALUE is stored as \
                given; the EFFECTIVE column shows the clamped value in use.

                Examples:
                  zpk tunable get
                  zpk tunable get zfs_multihost_interval
                  zpk tunable set zfs_multihost_interval 200
                """,
            subcommands: [Get.self, Set.self]
        )

        struct Get: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Show one multihost parameter, or all.",
                discussion: """
                    Prints NAME VALUE EFFECTIVE DEFAULT UNIT. --json prints \
                    {"tunables":[{"name","value","effective","default","unit"}]}.

                    Examples:
                      zpk tunable get
                      zpk tunable get zfs_multihost_fail_intervals --json
                    """)

            @OptionGroup var daemon: DaemonOptions

            @Flag(help: "Print the parameters as JSON.")
            var json = false

            @Argument(help: "zfs_multihost_interval, zfs_multihost_fail_intervals or zfs_multihost_import_intervals (default: all).")
            var name: String?

            func run() throws {
                var session = try DaemonSession(daemon, json: json)
                var arguments: [String: ControlJSON] = [:]
                if let name { arguments["name"] = .string(name) }
                let reply = try session.call("tunable.get", arguments)
                emit(MultihostText.tunables(reply.result["tunables"]?.arrayValue ?? [], json: json))
            }
        }

        struct Set: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Change one multihost parameter of zpkd at run time.",
                discussion: """
                    Prints the parameter's new row as `zpk tunable get` does.

                    Example:
                      zpk tunable set zfs_multihost_interval 200
                    """)

            @OptionGroup var daemon: DaemonOptions

            @Flag(help: "Print the new value as JSON.")
            var json = false

            @Argument(help: "The parameter's name.")
            var name: String

            @Argument(help: "The new value: milliseconds for the interval, a count of intervals for the others.")
            var value: UInt64

            func run() throws {
                var session = try DaemonSession(daemon, json: json)
                let reply = try session.call("tunable.set", ["name": .string(name), "value": .unsigned(value)])
                emit(MultihostText.tunables(reply.result["tunables"]?.arrayValue ?? [], json: json))
            }
        }
    }

    /// `zpk clear POOL`
    struct Clear: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resume a pool that multihost suspended, when no other host is using it.",
            discussion: """
                A multihost pool is suspended when its heartbeats fail for \
                zfs_multihost_fail_intervals × zfs_multihost_interval: another host may then \
                have imported it, so writing again could corrupt it. `zpk clear` first runs the \
                activity check over the pool's own devices, as an importer would (a countdown \
                on a terminal, JSON progress lines with --json): when no other host wrote the \
                pool, it resumes; when one did, it refuses and exits 3 — the pool cannot be \
                safely resumed, export it (`zpk export POOL`). This is OpenZFS master's rule \
                (2.1.11 resumes without looking). On a pool that is not suspended it does nothing.

                Exit status: 0 resumed (or nothing to do), 3 another host is active, 1 error.

                Example:
                  zpk clear tank
                """)

        @OptionGroup var daemon: DaemonOptions

        @Flag(help: "Print the result as JSON and progress as JSON lines on stderr.")
        var json = false

        @Argument(help: "The suspended pool.")
        var pool: String

        func run() throws {
            var session = try DaemonSession(daemon, json: json)
            let reply = try session.call("clear", ["pool": .string(pool)])
            if json {
                emit(PoolText.ordered(.object(reply.result), keys: ["pool", "resumed"]).rendered())
            } else if reply.result["resumed"]?.boolValue == true {
                emit("pool '\(pool)' resumed: no other host wrote it while it was suspended\n")
            } else {
                emit("pool '\(pool)' is not suspended; nothing to clear\n")
            }
        }
    }

    /// `zpk inject POOL LEAF delay=MS|error|hang` / `zpk inject --clear POOL`
    struct Inject: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Inject a fault into one device of an open pool (as zinject -d), or clear all.",
            discussion: """
                The fault is injected in zpkd's device layer, under the pool: every later read, \
                write and flush of that device — txg syncs, object puts and gets, heartbeats, \
                activity checks — meets it, until `zpk inject --clear POOL`. Nothing is written \
                to the device by injecting. Faults last until cleared, the pool is closed or \
                zpkd stops.

                  delay=MS  each I/O waits MS milliseconds (0-3600000), then proceeds
                  error     each I/O fails with EIO
                  hang      each I/O blocks until the fault is cleared (or the pool is closed)

                LEAF is the device's path as `zpk status` shows it, or its numeric guid. For \
                tests and for rehearsing failures: an `error` on every leaf of a multihost pool \
                suspends it after fail_intervals × interval; a delay raises its mmp_delay.

                Examples:
                  zpk inject tank /var/tmp/d1 delay=150
                  zpk inject tank /var/tmp/d2 error
                  zpk inject --clear tank
                """)

        @OptionGroup var daemon: DaemonOptions

        @Flag(help: "Remove every fault injected into POOL.")
        var clear = false

        @Argument(help: "The pool.")
        var pool: String

        @Argument(help: "The device: its path or guid.")
        var leaf: String?

        @Argument(help: ArgumentHelp("delay=MS, error or hang.", valueName: "fault"))
        var fault: String?

        func validate() throws {
            if clear {
                guard leaf == nil, fault == nil else {
                    throw ValidationError("Please give only the POOL with --clear: zpk inject --clear POOL.")
                }
                return
            }
            guard leaf != nil, let fault else {
                throw ValidationError("Please give a POOL, a LEAF and a fault: zpk inject POOL LEAF delay=MS|error|hang.")
            }
            guard Self.isFault(fault) else {
                throw ValidationError("Please give the fault as delay=MS (0 to 3600000), error or hang, not '\(fault)'.")
            }
        }

        static func isFault(_ text: String) -> Bool {
            if text == "error" || text == "hang" { return true }
            guard text.hasPrefix("delay="), let ms = UInt64(text.dropFirst(6)) else { return false }
            return ms <= 3_600_000
        }

        func run() throws {
            var session = try DaemonSession(daemon)
            if clear {
                _ = try session.call("inject.clear", ["pool": .string(pool)])
                emit("pool '\(pool)': every injected fault cleared\n")
                return
            }
            let leaf = absolutePath(leaf ?? "")
            _ = try session.call(
                "inject", ["pool": .string(pool), "leaf": .string(leaf), "fault": .string(fault ?? "")])
            emit("pool '\(pool)': \(fault ?? "") injected on \(leaf)\n")
        }

        /// A relative path is made absolute (zpkd's working directory is not ours); a guid stays.
        func absolutePath(_ text: String) -> String {
            if text.hasPrefix("/") || text.allSatisfy(\.isNumber) || DeviceOpener.isNetworkPath(text) { return text }
            return VdevArguments.absolute(text, in: VdevArguments.currentDirectory())
        }
    }

    /// `zpk history multihost POOL [--json]`
    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a pool's recent history (today: its multihost heartbeats).",
            subcommands: [Multihost.self]
        )

        struct Multihost: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Show a pool's recent heartbeat writes and skips, as OpenZFS's multihost kstat.",
                discussion: """
                    The columns and layout are OpenZFS's /proc/spl/kstat/zfs/POOL/multihost: \
                    id, txg, timestamp (seconds since the epoch), error (0 or the errno of a \
                    write; for a skip the mask 0x1 no writable leaf, 0x2 write pending), \
                    duration (ns: issue to completion; for a skip, since the first skip of the \
                    run), mmp_delay (ns), vdev_guid (for a skip: how many heartbeats the run \
                    skipped), vdev_label and vdev_path (`-` for a skip). The last 100 rows are \
                    kept, oldest first.

                    --json prints {"pool", "records":[{"id","txg","timestamp","skip","error", \
                    "duration","mmp_delay","vdev_guid","vdev_label","vdev_path"}]} with exact \
                    integers.

                    Examples:
                      zpk history multihost tank
                      zpk history multihost tank --json
                    """)

            @OptionGroup var daemon: DaemonOptions

            @Flag(help: "Print the rows as JSON.")
            var json = false

            @Argument(help: "The pool.")
            var pool: String

            func run() throws {
                var session = try DaemonSession(daemon, json: json)
                let reply = try session.call("history.multihost", ["pool": .string(pool)])
                if json {
                    let records = (reply.result["records"]?.arrayValue ?? []).map {
                        PoolText.ordered($0, keys: MultihostText.historyKeys)
                    }
                    emit(JSON.object([("pool", .string(pool)), ("records", .array(records))]).rendered())
                } else {
                    emit(reply.result["text"]?.stringValue ?? "")
                }
            }
        }
    }
}

/// Text layouts of the multihost verbs.
enum MultihostText {
    static let historyKeys = [
        "id", "txg", "timestamp", "skip", "error", "duration", "mmp_delay", "vdev_guid", "vdev_label", "vdev_path",
    ]
    static let tunableKeys = ["name", "value", "effective", "default", "unit"]

    static func tunables(_ rows: [ControlJSON], json: Bool) -> String {
        if json {
            return JSON.object([("tunables", .array(rows.map { PoolText.ordered($0, keys: tunableKeys) }))]).rendered()
        }
        return PoolText.table(
            header: ["NAME", "VALUE", "EFFECTIVE", "DEFAULT", "UNIT"],
            rows: rows.map { row in
                [
                    row["name"]?.stringValue ?? "?", String(row["value"]?.uint64Value ?? 0),
                    String(row["effective"]?.uint64Value ?? 0), String(row["default"]?.uint64Value ?? 0),
                    row["unit"]?.stringValue ?? "",
                ]
            })
    }
}
