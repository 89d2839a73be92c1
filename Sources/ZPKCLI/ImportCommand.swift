import ArgumentParser
import ZFSFormat
import ZFSImport
import ZFSPool
import ZPKControl

extension ZPK {
    /// `zpk import [-d DIR]... [-D] [-v] [--json] [--config POOL|GUID]` lists;
    /// `zpk import [-d DIR]... [-c CACHE] [-D] [-f] [-F] POOL|GUID [NEWNAME]` imports one;
    /// `zpk import -a [-d DIR]... [-f]` imports every pool found, concurrently.
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List importable pools, as `zpool import -d` does, or import one into zpkd.",
            discussion: """
                With POOL (a name or a numeric guid), zpk imports it: the scan below runs here, \
                in the zpk process, the one matching pool is chosen (two pools of one name: \
                use the guid), and its config is sent to zpkd, which opens it, checks who last \
                used it, claims it for this host and adds it to its cache file. NEWNAME imports \
                it under another name. -f imports a pool last used by another host that was \
                not exported; -F rewinds to an older transaction group when the newest \
                metadata is damaged. A pool written by OpenZFS cannot be imported (zpk cannot \
                read its MOS), but zpk can still list it here, show its labels \
                (`zpk label -u DEVICE`) and judge its health.

                Every file and block device in the search directories is read (read-only) and \
                its labels are grouped by pool and top-level vdev, exactly as OpenZFS 2.1.11's \
                libzutil does. Each pool found is then judged as the kernel's tryimport would \
                judge it: every leaf is opened and its labels validated (checksums, guids, txg), \
                states roll up through mirrors, raidz, dRAID and the root, the best uberblock is \
                chosen, and then the pool's MOS is read from it and the vdev tree stored there \
                opened (a missing top-level vdev or log named as the MOS records it; a MOS \
                unreadable on every copy is FAULTED "corrupted data"; --json config_source says \
                "mos", or "labels" where the MOS was not read, e.g. dRAID). The listing is `zpool import`'s: pool, id, \
                state, status, action, see, and the vdev tree with each vdev's state. Those are                 OpenZFS's verdict: a pool ZPoolKit created shows UNAVAIL there, since OpenZFS                 cannot read its metadata. The line after the tree, "    zpk: can import (…)" or                 "    zpk: cannot import: REASON", is zpk's own verdict (--json: importable_by_zpk,                 zpk_reason).

                After zpool's text come what zpk knows beyond it: who last used a pool that \
                needs -f, and when; which top-level vdev is missing; why the metadata could \
                not be read; with -c, a cache-file entry that lacks top-level vdevs the MOS has \
                (a stale cache file). zpk does not run the multihost activity check; \
                docs/cli.md lists what that leaves out.

                The import of a pool whose multihost property is on waits for the activity \
                check (zfs_multihost_import_intervals intervals, or twice the last writer's \
                fail_intervals × interval, plus a random 0-25 %): a countdown bar on a terminal, \
                one line per phase otherwise, JSON progress lines on stderr with --json. When \
                another host is writing the pool, the import is refused with exit status 3 and \
                names that host's hostname and hostid; -f does not override it.

                With -a, every pool the scan finds is imported, all at once: one request per \
                pool, so their activity checks run concurrently (N pools take about as long as \
                one). One result line per pool; exit 0 when every pool was imported, 3 when some \
                were refused as in use elsewhere and none failed otherwise, 1 when any failed.

                A device may be an NBD export: -d nbd://HOST[:PORT]/EXPORT (or \
                nbd+unix:///EXPORT?socket=PATH) scans that export; --nbd HOST[:PORT] asks the \
                server for its exports (NBD_OPT_LIST; nbd-server needs allowlist = true) and \
                scans each of them. Labels keep the URI as the leaf's path, so zpkd reopens the \
                leaf over NBD. See docs/nbd.md.

                With --config, prints the assembled config of one pool exactly as \
                `zdb -e -p DIR -CC POOL` prints it under "Configuration for import". With \
                --config POOL --mos, follows the best uberblock into the pool's MOS (read-only: \
                mirrors fall back to a good side, raidz rebuilds from parity; dRAID is not read) \
                and prints the config stored there, as `zdb -e -p DIR -C POOL` prints it under \
                "MOS Configuration"; when the MOS cannot be read, it says which block, vdev and \
                offset, and why, and exits 1.

                POOL is a name, or a numeric guid when it is all decimal digits (the rule of \
                `zpool import`); use the guid when two pools share a name. Destroyed pools are \
                hidden unless -D is given, and then only they are shown. Without -d, the Linux \
                default search list is scanned (/dev/disk/by-vdev, /dev/mapper, …, /dev).

                The local hostid (for "last accessed by another system") is ZFS_HOSTID, else \
                /proc/sys/kernel/spl/hostid, else /etc/hostid, as zpool finds it.

                Exit status: 0 when at least one pool is listed, 1 when none is found.

                Examples:
                  zpk import -d /var/tmp/pool tank
                  zpk import -d /var/tmp/pool 15451357997522795478 tank2
                  zpk import -d /var/tmp/pool -f tank
                  zpk import -a -d /var/tmp/pool -d /var/tmp/pool2
                  zpk import -d /var/tmp/pool
                  zpk import -d /var/tmp/pool -v
                  zpk import -d /dev/disk/by-id --json
                  zpk import -d /var/tmp/pool --config tank
                  zpk import --nbd 192.0.2.7 --nbd 192.0.2.8:10810 tank
                  zpk import -d nbd://192.0.2.7/disk0 -d /var/tmp/pool tank
                  zpk import -d /var/tmp/pool --config tank --mos
                """
        )

        @Option(name: .customShort("d"), help: ArgumentHelp("A directory to scan, or a device; repeatable.", valueName: "dir"))
        var directories: [String] = []

        @Option(
            name: .customLong("nbd"),
            help: ArgumentHelp(
                "An NBD server (HOST[:PORT], or an nbd:// or nbd+unix:// URI) whose exports are listed and scanned like a directory; repeatable.",
                valueName: "server"))
        var nbdServers: [String] = []

        @Flag(name: .customShort("D"), help: "Show only destroyed pools.")
        var destroyed = false

        @Flag(name: .customShort("v"), help: "Also print each device's label problems and what the scan skipped.")
        var verbose = false

        @Flag(help: "Print the pools, their vdev trees and per-device notes as JSON.")
        var json = false

        @Option(help: ArgumentHelp("Print the config of this pool (name or guid), as `zdb -e -p DIR -CC`.", valueName: "pool"))
        var config: String?

        @Flag(help: "With --config: print the config stored in the pool's MOS, as `zdb -e -p DIR -C` prints \"MOS Configuration\".")
        var mos = false

        @Option(name: .customShort("c"), help: ArgumentHelp("List the pools of this cache file, reading the devices it names (no scan).", valueName: "cachefile"))
        var cachefile: String?

        @Flag(name: .customShort("f"), help: "Import a pool last used by another host that did not export it.")
        var force = false

        @Flag(name: .customShort("F"), help: "Rewind to an older txg if the newest metadata is damaged.")
        var rewind = false

        @Flag(name: .customShort("a"), help: "Import every pool found, their activity checks running concurrently.")
        var all = false

        @OptionGroup var daemon: DaemonOptions

        @Argument(help: ArgumentHelp("The pool to import: a name, or a numeric guid.", valueName: "pool"))
        var pool: String?

        @Argument(help: ArgumentHelp("Import the pool under this name.", valueName: "newname"))
        var newName: String?

        func validate() throws {
            if mos, config == nil {
                throw ValidationError("Please use --mos with --config POOL: it chooses which config --config prints.")
            }
            if pool != nil, config != nil {
                throw ValidationError("Please use --config without POOL: --config prints a config, POOL imports the pool.")
            }
            if all {
                if pool != nil || config != nil {
                    throw ValidationError("Please use -a without POOL and --config: -a imports every pool found.")
                }
                if cachefile != nil || rewind {
                    throw ValidationError("Please use -a with -d DIR and -f only (not -c or -F).")
                }
            } else if pool == nil, force || rewind {
                throw ValidationError("Please name the POOL to import with -f or -F.")
            }
        }

        mutating func run() throws {
            directories += try NBDServers.exportURIs(nbdServers)
            if all {
                try importAll()
                return
            }
            if let pool {
                try importPool(pool)
                return
            }
            let output = Self.run(
                searchPaths: directories, destroyed: destroyed, config: config, json: json, verbose: verbose,
                environment: ProcessEnvironment.current, cacheFile: cachefile, mos: mos)
            emit(output.stdout)
            if !output.stderr.isEmpty { emitError(String(output.stderr.dropLast())) }
            if output.status != 0 { throw ExitCode(output.status) }
        }

        /// What `zpk import` prints and exits with (testable without a process).
        struct Output: Hashable, Sendable {
            var stdout: String
            var stderr: String
            var status: Int32
        }

        static func run(
            searchPaths: [String], destroyed: Bool, config: String?, json: Bool = false, verbose: Bool = false,
            environment: [String: String], time: (UInt64) -> String = ZdbLabelDump.localAsctime, cacheFile: String? = nil,
            mos: Bool = false
        ) -> Output {
            let selector = config.map { PoolSelector(zpoolArgument: $0) }
            let scanner = ImportScanner(
                options: .init(
                    searchPaths: searchPaths, selector: selector,
                    destroyedPools: destroyed ? .only : .exclude,
                    deviceIdentity: UdevDiskIdentity.rule(optOut: DiskIdentityRule.optOut(environment: environment))))
            let result: ScanResult
            if let cacheFile {
                // `-c`: the pools come from the cache file (CacheCommand.swift), not from a scan.
                switch Self.scanCacheFile(cacheFile, searchPaths: searchPaths, selector: selector, destroyed: destroyed) {
                case .success(let scanned): result = scanned
                case .failure(let failure): return Output(stdout: "", stderr: failure.message + "\n", status: failure.status)
                }
            } else {
                result = scanner.scan()
            }
            var output = Output(stdout: "", stderr: "", status: 0)
            for problem in result.searchProblems {
                output.stderr += problem.message + "\n"
            }
            if let selector {
                do {
                    let pool = try result.pool(selector)
                    if mos {
                        return Self.mosConfig(pool, result, json: json, environment: environment, output: output)
                    }
                    output.stdout = json ? JSON(pool.config).rendered() : ZdbImportText.render(pool)
                } catch {
                    output.stderr += error.message + "\n"
                    output.status = 1
                }
                return output
            }
            let hostID = SystemHostID.current(environment: environment)
            let healths = result.pools.map { PoolHealth.assess($0, in: result, localHostID: hostID) }
            let verdicts = zip(result.pools, healths).map {
                ZpoolImportListing.zpkVerdict($0, health: $1, in: result, localHostID: hostID)
            }
            let names = VdevNameOptions(environment: environment)
            if json {
                output.stdout = Self.json(healths, result, names: names, verdicts: verdicts).rendered()
            } else {
                output.stdout = healths.indices.map { index in
                    let text = ZpoolImportListing.render(
                        healths[index], names: names, verbose: verbose, time: time, zpk: verdicts[index])
                    let footer = Self.mosFooter(result.pools[index], healths[index])
                    // The MOS sentence joins the footers' paragraph, or opens its own.
                    let last = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).last ?? ""
                    let opens = !footer.isEmpty && (last.hasPrefix(ZpoolImportListing.zpkLinePrefix) || !last.hasPrefix("\t"))
                    return text + (opens ? "\n" : "") + footer
                }.joined(separator: "\n")
                if verbose {
                    let notes = deviceNotes(result)
                    if !notes.isEmpty {
                        if !output.stdout.isEmpty { output.stdout += "\n" }
                        output.stdout += "devices:\n" + notes.map { "\t\($0.path): \($0.note)\n" }.joined()
                    }
                }
            }
            if healths.isEmpty {
                output.stderr +=
                    result.permissionDenied
                    ? "no pools found: some devices require root privileges\n" : "no pools available to import\n"
                output.status = 1
            }
            return output
        }

        /// `--config POOL --mos`: the config stored in the pool's MOS, read from its best uberblock
        /// (MOSReader), as zdb prints it; "metadata is damaged" and exit 1 when it cannot be read.
        static func mosConfig(_ pool: PoolCandidate, _ scan: ScanResult, json: Bool, environment: [String: String], output: Output) -> Output {
            var output = output
            switch MOSReader.read(pool, in: scan, localHostID: SystemHostID.current(environment: environment)) {
            case .success(let mos):
                output.stdout = json ? JSON(mos.config).rendered() : ZdbMOSText.render(mos.config)
            case .failure(let error):
                output.stderr += "cannot read the MOS config of '\(pool.name)': the pool metadata is damaged: \(error)\n"
                output.status = 1
            }
            return output
        }

        /// Scans (or reads the cache file) here, chooses the pool, and has zpkd open its config.
        func importPool(_ argument: String) throws {
            let selector = PoolSelector(zpoolArgument: argument)
            let candidate: PoolCandidate
            switch Self.scanForImport(
                selector: selector, searchPaths: directories, destroyed: destroyed, cacheFile: cachefile,
                environment: ProcessEnvironment.current)
            {
            case .success(let found): candidate = found
            case .failure(let failure):
                emitError(failure.message)
                throw ExitCode(failure.status)
            }
            let packed: [UInt8]
            do { packed = try candidate.config.encoded(as: .xdr) } catch {
                emitError("cannot import '\(candidate.name)': its assembled config does not encode: \(error)")
                throw ExitCode(1)
            }
            var arguments: [String: JSON] = ["force": .bool(force), "rewind": .bool(rewind)]
            if let newName { arguments["new_name"] = .string(newName) }
            var session = try DaemonSession(daemon, json: json)
            let reply = try session.call("import", arguments, payload: packed) { code in
                code == "notOurPool" ? Self.openZFSPoolHint(searchPaths: directories, candidate: candidate) : nil
            }
            if json {
                emit(PoolText.ordered(JSON(reply.result), keys: ["pool", "guid", "txg"]).rendered())
                return
            }
            if let from = reply.result["rewound_from"]?.uint64Value, let txg = reply.result["txg"]?.uint64Value {
                emitError("pool '\(reply.result["pool"]?.stringValue ?? argument)' rewound to txg \(txg); txgs after it up to \(from) were discarded")
            }
            for leaf in reply.result["missing_leaves"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                emitError("pool '\(reply.result["pool"]?.stringValue ?? argument)' imported DEGRADED: \(leaf) could not be opened")
            }
        }

        /// What zpk can still do with a pool OpenZFS wrote, as commands to copy.
        static func openZFSPoolHint(searchPaths: [String], candidate: PoolCandidate) -> String {
            let directories = searchPaths.isEmpty ? "" : searchPaths.map { " -d \($0)" }.joined()
            let device = candidate.memberDevices.first?.path ?? "DEVICE"
            return """
                  zpk import\(directories)    lists it: health, devices, who last used it, whether it needs an activity check
                  zpk label -u \(device)    shows its labels and uberblocks
                  zpk activity\(directories) \(candidate.guid.rawValue)    tells whether another host is using it now (multihost)
                to use its data, import it with OpenZFS (zpool import)
                """
        }

        /// The one pool `selector` names, found as the listing finds pools.
        static func scanForImport(
            selector: PoolSelector, searchPaths: [String], destroyed: Bool, cacheFile: String?,
            environment: [String: String]
        ) -> Result<PoolCandidate, CacheFileFailure> {
            let result: ScanResult
            if let cacheFile {
                switch scanCacheFile(cacheFile, searchPaths: searchPaths, selector: selector, destroyed: destroyed) {
                case .success(let scanned): result = scanned
                case .failure(let failure): return .failure(failure)
                }
            } else {
                let scanner = ImportScanner(
                    options: .init(
                        searchPaths: searchPaths, selector: selector, destroyedPools: destroyed ? .only : .exclude,
                        deviceIdentity: UdevDiskIdentity.rule(optOut: DiskIdentityRule.optOut(environment: environment))))
                result = scanner.scan()
            }
            do {
                return .success(try result.pool(selector))
            } catch {
                var message = error.message
                if error.code == .noSuchPool, !searchPaths.isEmpty {
                    message += " in \(searchPaths.joined(separator: ", "))"
                }
                return .failure(CacheFileFailure(message: message, status: 1))
            }
        }

        /// Every scanned device with a note (skipped, not a vdev, unreadable, …), in scan order.
        static func deviceNotes(_ result: ScanResult) -> [(path: String, note: String)] {
            result.devices.compactMap { device in device.note.map { (device.path, "\($0)") } }
        }

        /// How the lines of ``mosFooter(_:_:)`` start: metadata that could not be read, a stale
        /// cache-file entry, top-level vdevs only the MOS counts.
        static let mosFooterPrefixes = [
            "\tThe pool metadata is damaged: ", "\tThe cache file's entry for ", "\tThe MOS config names top-level vdev",
        ]

        /// What the MOS adds after zpool's text (zpool's listing says neither): why the pool is
        /// FAULTED when its metadata could not be read; and the top-level vdevs the MOS config
        /// has that the listed config lacks altogether — a cache-file entry written before vdevs
        /// were added. A missing top-level vdev is named by the health footers (from the MOS).
        static func mosFooter(_ pool: PoolCandidate, _ health: PoolHealth) -> String {
            switch health.mos {
            case .success(let config)? where !health.mosExtraTopLevels.isEmpty:
                let vdevs = health.mosExtraTopLevels.map { "\($0.id) (\($0))" }.joined(separator: ", ")
                let plural = health.mosExtraTopLevels.count == 1 ? "vdev" : "vdevs"
                let txg = config.config.uint64("txg").map { " (txg \($0))" } ?? ""
                if let file = pool.config.string("cachefile") {
                    return mosFooterPrefixes[1]
                        + "'\(pool.name)' in \(file) (txg \(pool.txg.rawValue)) is stale: the MOS config\(txg) has top-level \(plural) \(vdevs), which the entry lacks.\n"
                }
                return mosFooterPrefixes[2] + "\(health.mosExtraTopLevels.count == 1 ? "" : "s") \(vdevs), which the labels found do not count.\n"
            case .failure(let error)? where error.code != .unsupported:
                return mosFooterPrefixes[0] + "\(error).\n"
            default:
                return ""
            }
        }

        /// The `mos` member of a pool in the JSON listing: what the MOS said, or why it could not
        /// be read (`"answer"`: `"faulted"` when the MOS is damaged and the pool is listed
        /// FAULTED as zpool lists it, `"label-only"` when the rest of the entry comes from the
        /// labels alone).
        static func mosJSON(_ pool: PoolCandidate, _ health: PoolHealth) -> JSON {
            func vdevJSON(_ vdev: MOSConfig.MissingTopLevel) -> JSON {
                .object([
                    ("id", .unsigned(vdev.id)), ("type", .string(vdev.type)), ("guid", .unsigned(vdev.guid)),
                    ("is_log", .bool(vdev.isLog)), ("paths", .array(vdev.paths.map { .string($0) })),
                ])
            }
            switch health.mos {
            case .success(let config)?:
                let extra = Set(health.mosExtraTopLevels.map(\.id))
                return .object([
                    ("read", .bool(true)),
                    ("txg", .unsigned(config.uberblock.txg.rawValue)),
                    ("vdev_children", config.config.uint64("vdev_children").map { .unsigned($0) } ?? .null),
                    ("creation_version", config.creationVersion.map { .unsigned($0) } ?? .null),
                    ("features_for_read", .array(config.featuresForRead.filter { $0.value > 0 }.keys.sorted().map { .string($0) })),
                    (
                        "missing_top_level_vdevs",
                        .array(config.missingTopLevels(in: pool).filter { !extra.contains($0.id) }.map(vdevJSON))
                    ),
                    ("extra_top_level_vdevs", .array(health.mosExtraTopLevels.map(vdevJSON))),
                    ("stale_cache_entry", .bool(pool.config.contains("cachefile") && !extra.isEmpty)),
                    ("repaired_reads", .unsigned(UInt64(config.repairs.mirrorFallbacks + config.repairs.raidzRebuilds + config.repairs.draidRebuilds + config.repairs.dittoFallbacks))),
                ])
            case .failure(let error)?:
                return .object([
                    ("read", .bool(false)),
                    ("metadata_damaged", .bool(error.code != .unsupported)),
                    ("error", .string(error.description)),
                    ("answer", .string(error.code != .unsupported ? "faulted" : "label-only")),
                ])
            case nil:
                return .object([
                    ("read", .bool(false)),
                    ("metadata_damaged", .bool(false)),
                    ("error", .string("not read: the load stopped before it (\(health.stage.rawValue))")),
                    ("answer", .string("label-only")),
                ])
            }
        }

        static func json(
            _ healths: [PoolHealth], _ result: ScanResult, names: VdevNameOptions, verdicts: [ZPKImportCheck.Verdict]
        ) -> JSON {
            // healths and verdicts are per pool of `result`, in its order.
            .object([
                (
                    "pools",
                    .array(
                        healths.indices.map { index in
                            let listing = ZpoolImportListing.json(healths[index], names: names, zpk: verdicts[index])
                            guard case .object(var members) = listing else { return listing }
                            members.append(("mos", mosJSON(result.pools[index], healths[index])))
                            return .object(members)
                        })
                ),
                (
                    "devices",
                    .array(deviceNotes(result).map { .object([("path", .string($0.path)), ("note", .string($0.note))]) })
                ),
                ("search_problems", .array(result.searchProblems.map { .string($0.message) })),
            ])
        }
    }
}


#if canImport(Glibc)
import Glibc
#endif
