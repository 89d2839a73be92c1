import ArgumentParser
import CoreMetrics
import Logging
import Prometheus
import ZFSImport
import ZFSMultihost
import ZPKDaemon
import ZPKControl

#if canImport(Glibc)
import Glibc
#endif

struct ZPKD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zpkd",
        abstract: "The ZPoolKit pool host daemon: owns pools for the zpk command line.",
        discussion: """
            zpkd opens every pool of its cache file, keeps them open, syncs them every \
            --sync-interval seconds and serves `zpk` on a Unix socket that only its own user and \
            root may use. It prints "zpkd ready on SOCKET" on stderr once it serves requests. \
            SIGTERM or SIGINT syncs every pool and stops; the pools stay imported and reopen from \
            the cache file at the next start. A second zpkd on the same socket refuses to start.

            The --zfs-multihost-* options are OpenZFS's multihost (MMP) module parameters, \
            with their names, units, defaults and clamping; values are kept as given and \
            clamped where used. `zpk tunable set` changes them at run time for every pool.

            Examples:
              zpkd
              zpkd --socket /tmp/zpk.sock --cachefile /tmp/zpool.cache --hostid 1a2b3c4d
              zpkd --zfs-multihost-interval 200 --zfs-multihost-fail-intervals 5
              zpkd --log-format json      (one JSON object per line on stderr)
            """
    )

    @Option(help: ArgumentHelp("This host's hostid, in hex (default: as zpool finds it: /etc/hostid).", valueName: "hex"))
    var hostid: String?

    @Option(help: ArgumentHelp("This host's name (default: the system hostname).", valueName: "name"))
    var hostname: String?

    @Option(help: ArgumentHelp("The cache file of pools to open at start.", valueName: "path"))
    var cachefile: String = Daemon.Defaults.cacheFilePath

    @Option(help: ArgumentHelp("The control socket.", valueName: "path"))
    var socket: String = Daemon.Defaults.socketPath

    @Option(help: ArgumentHelp("Seconds between txg syncs of every open pool.", valueName: "seconds"))
    var syncInterval: Double = 5

    @Option(help: ArgumentHelp("Serve Prometheus metrics at http://ADDR:PORT/metrics (e.g. 127.0.0.1:9464; port 0 = any free port, logged).", valueName: "addr:port"))
    var metrics: String?

    @Flag(help: "Only check that this host has a hostid (multihost needs a unique one): print it and exit 0, or explain and exit 1.")
    var checkHostid = false

    @Option(help: ArgumentHelp("Log lines as text, or as one JSON object per line (json).", valueName: "text|json"))
    var logFormat: LogFormat = .text

    enum LogFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @Option(help: ArgumentHelp("zfs_multihost_interval: milliseconds between heartbeats of each leaf; used as at least 100.", valueName: "ms"))
    var zfsMultihostInterval: UInt64 = MultihostTunables.defaultIntervalInMilliseconds

    @Option(help: ArgumentHelp("zfs_multihost_fail_intervals: suspend a pool after this many intervals without a heartbeat; 0 = never, else used as at least 2.", valueName: "n"))
    var zfsMultihostFailIntervals: UInt64 = MultihostTunables.defaultFailIntervals

    @Option(help: ArgumentHelp("zfs_multihost_import_intervals: an importer's activity check lasts this many intervals; used as at least 1.", valueName: "n"))
    var zfsMultihostImportIntervals: UInt64 = MultihostTunables.defaultImportIntervals

    /// Parses the arguments and runs, exiting with ArgumentParser's status on error (the async
    /// `main` of AsyncParsableCommand, spelled out because top-level code picks the sync one).
    static func runFromCommandLine() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    func validate() throws {
        if let hostid {
            let digits = hostid.hasPrefix("0x") ? String(hostid.dropFirst(2)) : hostid
            guard let value = UInt64(digits, radix: 16), value <= 0xffff_ffff else {
                throw ValidationError("Please give --hostid as up to 8 hex digits (e.g. 1a2b3c4d), not '\(hostid)'.")
            }
        }
        if let metrics, MetricsEndpoint.Address(parsing: metrics) == nil {
            throw ValidationError("Please give --metrics as ADDR:PORT (e.g. 127.0.0.1:9464 or [::1]:9464), not '\(metrics)'.")
        }
        guard syncInterval > 0, syncInterval <= 86_400 else {
            throw ValidationError("Please give --sync-interval as seconds between 0 and 86400, not \(syncInterval).")
        }
        // The widths of ub_mmp_config's fields (OpenZFS truncates silently; we refuse).
        guard zfsMultihostInterval <= 0xff_ffff else {
            throw ValidationError("Please give --zfs-multihost-interval as at most 16777215 milliseconds, not \(zfsMultihostInterval).")
        }
        guard zfsMultihostFailIntervals <= 0xffff else {
            throw ValidationError("Please give --zfs-multihost-fail-intervals as at most 65535, not \(zfsMultihostFailIntervals).")
        }
        guard zfsMultihostImportIntervals <= 0xffff else {
            throw ValidationError("Please give --zfs-multihost-import-intervals as at most 65535, not \(zfsMultihostImportIntervals).")
        }
    }

    func run() async throws {
        if checkHostid {
            try checkHostID()
            return
        }
        switch logFormat {
        case .text: LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        case .json: LoggingSystem.bootstrap { JSONLogHandler.standardError(label: $0) }
        }
        var logger = Logger(label: "zpkd")
        logger.logLevel = .info
        let hostID: UInt64
        if let hostid {
            hostID = UInt64(hostid.hasPrefix("0x") ? String(hostid.dropFirst(2)) : hostid, radix: 16) ?? 0
        } else {
            hostID = SystemHostID.current(environment: ProcessEnvironment.current)
        }
        var options = Daemon.Options(
            hostID: hostID, hostname: hostname ?? Self.systemHostname(), cacheFilePath: cachefile,
            socketPath: socket, syncInterval: .milliseconds(Int64(syncInterval * 1000)),
            multihostTunables: MultihostTunables(
                intervalInMilliseconds: zfsMultihostInterval, failIntervals: zfsMultihostFailIntervals,
                importIntervals: zfsMultihostImportIntervals))
        if let metrics, let address = MetricsEndpoint.Address(parsing: metrics) {
            let registry = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: registry)
            // Activity checks last tens of seconds (import_intervals × interval, 20 s by default).
            let long: [Duration] = [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300].map { .milliseconds(Int64($0 * 1000)) }
            factory.durationHistogramBuckets["zpk_activity_check_duration_seconds"] = long
            factory.durationHistogramBuckets["zpk_pool_open_duration_seconds"] = long
            factory.durationHistogramBuckets["zpk_pool_sync_duration_seconds"] =
                [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10].map { .microseconds(Int64($0 * 1_000_000)) }
            MetricsSystem.bootstrap(factory)
            options.metrics = (address, registry)
        }
        do {
            let format = logFormat
            let readyHostname = options.hostname
            let notifySocket = ProcessEnvironment.current["NOTIFY_SOCKET"]
            try await Daemon(options: options, logger: logger).run { [logger] path in
                SystemdNotifier.notify("READY=1\nMAINPID=\(getpid())\nSTATUS=serving on \(path)", socketPath: notifySocket)
                switch format {
                case .text: writeStandardError("zpkd ready on \(path)\n")
                // The ready line is a log event too, so that every line of stderr is JSON.
                case .json:
                    logger.notice(
                        "zpkd ready on \(path)",
                        metadata: ["zpkd.socket": "\(path)", "host.id": "\(String(hostID, radix: 16))", "host.name": "\(readyHostname)"])
                }
            }
        } catch let error as ControlError {
            writeStandardError("zpkd: \(error.message)\n")
            throw ExitCode(1)
        }
    }

    /// `--check-hostid` (zpkd.service's ExecStartPre): a multihost pool is only safe with a
    /// unique, non-zero hostid on every host.
    func checkHostID() throws {
        let environment = ProcessEnvironment.current
        let found: UInt64
        let source: String
        if let hostid {
            found = UInt64(hostid.hasPrefix("0x") ? String(hostid.dropFirst(2)) : hostid, radix: 16) ?? 0
            source = "--hostid"
        } else {
            found = SystemHostID.current(environment: environment)
            source = environment["ZFS_HOSTID"] != nil ? "ZFS_HOSTID" : "/proc/sys/kernel/spl/hostid or /etc/hostid"
        }
        guard found != 0 else {
            writeStandardError(
                "zpkd: this host has no hostid (\(source) gives none or 0); multihost pools need a unique one on every "
                    + "host: run `zgenhostid` (writes /etc/hostid), or give zpkd --hostid HEX\n")
            throw ExitCode(1)
        }
        print("hostid \(String(found, radix: 16)) (from \(source))")
    }

    static func systemHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Writes text to standard error, unbuffered (tests wait for the "ready" line).
func writeStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
        if written <= 0 { return }
        bytes.removeFirst(written)
    }
}

