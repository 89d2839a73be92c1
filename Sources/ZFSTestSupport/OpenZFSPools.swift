// Fresh OpenZFS pools for tests, made by ztest (real libzpool, no kernel module).
//
// How ztest builds a pool (cmd/ztest/ztest.c in 2.1.11, `ztest_init` / `make_vdev_root`):
// it always creates ONE top-level vdev from `-m` (mirror copies), `-r` (raid children),
// `-R` (parity) and `-K` (raidz|draid): `-m 0 -r 1` is a plain file, `-m 0 -r N` a raidz
// (or draid), `-m M -r 1` an M-way mirror of files, and `-m M -r N` (N ≥ 2) a mirror whose M
// children are raidz vdevs — so `-m 1 -r N` is a one-child mirror holding a raidz. Files are
// `DIR/NAME.<n>a`, `-s` bytes each, sparse. Everything else — more top-level vdevs, slogs,
// hot spares (`DIR/NAME.spares.<n>`, 1.25 × `-s`), l2cache devices (`DIR/NAME.l2cache.<n>`) —
// is added at random while the workload runs, by `ztest_vdev_add_remove` and
// `ztest_vdev_aux_add_remove`, about `-v` times per run each.
//
// So there are two modes (`ZTestPoolSpec.needsChurn`):
//
// * exact (`-M`): ztest's "multihost test" mode skips every vdev change, the zdb verification
//   passes and the export/import round trip, so the pool is exactly the one top-level vdev of
//   the spec. About 2–3 s at `-T 1` on this 2-core machine.
// * churn (`-T 3 -t 4 -v 12`, `ZDB_PATH=/bin/true`): vdev and aux changes run; the spec's
//   counts are *minimums*, checked after the run, and ztest is re-run from scratch (at most
//   `maxAttempts` times) until they hold. ZDB_PATH=/bin/true replaces the `zdb -bcc` pass
//   ztest runs after each pass (~25 s saved; the pools are still consistent — verified with
//   that very zdb command). About 8–17 s per attempt on this loaded 2-core machine.
//   Spares and l2cache devices are the exception: when a run reached every other minimum but
//   left too few of them, `OpenZFS.addAuxiliaryDevices` has libzpool's `spa_vdev_add` (through
//   zpk-oracle) add the rest, as `zpool add` would, instead of another run by chance.
//
// Both modes keep `-T` short: below 10 s, ztest's "sometimes" operations (attach/detach,
// device removal, scrub, fault injection, multihost on/off) never start, so no replacing or
// indirect vdevs appear. ztest exits without exporting: every label says state 0 (ACTIVE),
// hostid = $ZFS_HOSTID or /etc/hostid, hostname = uname -n; all four labels of each device
// agree, and `zdb -e -p DIR POOL` opens the pool.
//
// zpool.cache (DIR/zpool.cache) holds the root vdev tree only: spares and l2cache devices are
// never in it (they live in the MOS), so they are found by file name and checked with zdb -l.

import Foundation
import ZFSFormat

#if canImport(Glibc)
import Glibc
#endif

/// What pool to ask ztest for.
///
/// ```swift
/// let spec = ZTestPoolSpec(layout: .raidz(parity: 2, width: 5), ashift: 12)
/// let pool = try OpenZFS.makePool(spec, in: directory.path)
/// ```
public struct ZTestPoolSpec: Hashable, Sendable, CustomStringConvertible {
    /// The first (in exact mode: the only) top-level vdev.
    public enum Layout: Hashable, Sendable, CustomStringConvertible {
        /// One file vdev (`-m 0 -r 1`).
        case single
        /// A mirror of `width` files (`-m width -r 1`), width ≥ 2.
        case mirror(width: Int)
        /// A raidz of `width` files with `parity` 1...3 (`-m 0 -r width -R parity -K raidz`).
        case raidz(parity: Int, width: Int)
        /// ztest's mirror of raidz vdevs (`-m copies -r width -R parity -K raidz`): a `mirror`
        /// whose `copies` children are each a raidz of `width` files. `copies: 1` is the quirk
        /// of `-m 1`, a one-child mirror.
        case mirroredRaidz(copies: Int, parity: Int, width: Int)
        /// A dRAID (`-m 0 -r children -R parity -D data -S spares -K draid`). ztest raises the
        /// ashift to ≥ 12 and files to ≥ 256 MiB (< 16 children); `data + parity ≤ children −
        /// spares`, spares ≥ 1. ztest takes `-r 4` (its default) to mean "not given" and makes
        /// 16 children instead: ask for 4 and the pool has 16.
        case draid(parity: Int, data: Int, spares: Int, children: Int)

        /// The vdev `type` zdb prints for this top-level vdev.
        public var vdevType: String {
            switch self {
            case .single: "file"
            case .mirror, .mirroredRaidz: "mirror"
            case .raidz: "raidz"
            case .draid: "draid"
            }
        }

        /// How many files one such top-level vdev uses.
        public var fileCount: Int {
            switch self {
            case .single: 1
            case .mirror(let width): width
            case .raidz(_, let width): width
            case .mirroredRaidz(let copies, _, let width): copies * width
            case .draid(_, _, _, let children): children
            }
        }

        public var description: String {
            switch self {
            case .single: "single"
            case .mirror(let width): "mirror\(width)"
            case .raidz(let parity, let width): "raidz\(parity)x\(width)"
            case .mirroredRaidz(let copies, let parity, let width): "mirror\(copies)-of-raidz\(parity)x\(width)"
            case .draid(let p, let d, let s, let c): "draid\(p):\(d)d:\(c)c:\(s)s"
            }
        }
    }

    public var layout: Layout
    /// `-a`: 9...16. ztest forces ≥ 12 for dRAID; ``init(layout:ashift:seconds:)`` does too.
    public var ashift: Int
    /// `-T`: seconds of random workload. Keep it below 10 (see the file's comment).
    public var seconds: Int
    /// `-T` as passed to ztest: churn mode runs at least 3 s.
    public var effectiveSeconds: Int { needsChurn ? max(seconds, 3) : seconds }
    /// `-s`: bytes per file; 64 MiB is ztest's minimum (SPA_MINDEVSIZE).
    public var vdevSizeInBytes: Int
    /// `-p`: the pool name.
    public var poolName: String
    /// `ZFS_HOSTID` for ztest (the `hostid` in every label); `nil`: /etc/hostid.
    public var hostID: UInt32?
    /// `-t`: ztest's worker threads; `nil` means 1 in exact mode and 4 in churn mode. Each
    /// thread picks one of ztest's 36 operations at random per turn, so with one thread the
    /// vdev-changing ones come up too rarely in a 3 s run: `-t 4` reached ≥ 1 spare and ≥ 1
    /// l2cache device in the first run 6 times in 6 here, `-t 1` 8 times in 12. ztest's default
    /// (23, with 7 datasets) makes even a `-T 3 -M` run take ~20 s.
    public var threads: Int?
    /// `-d`: ztest's datasets (its default is 7).
    public var datasets: Int

    /// At least this many top-level vdevs (logs included, holes not). > 1 needs churn.
    public var minimumTopLevelVdevs: Int
    /// At least this many log top-level vdevs (`is_log: 1`). > 0 needs churn.
    public var minimumLogVdevs: Int
    /// At least this many hot-spare files with a valid spare label. > 0 needs churn.
    public var minimumSpares: Int
    /// At least this many l2cache files with a valid cache label. > 0 needs churn.
    public var minimumL2CacheDevices: Int
    /// Let ztest add special/dedup allocation-class mirrors (`-C special=on`; churn, mirrors only).
    public var allocationClasses: Bool
    /// `-v` in churn mode: the vdev-changing operations run every `-T`/`-v` seconds on average,
    /// a few times each per run (docs/zdb-label-output.md §1 has the measurements).
    public var churn: Int
    /// How many fresh ztest runs churn mode may take to reach the minimums.
    public var maxAttempts: Int

    public init(
        layout: Layout, ashift: Int = 9, seconds: Int = 1, vdevSizeInBytes: Int = 64 << 20,
        poolName: String = "ztest", hostID: UInt32? = nil
    ) {
        self.layout = layout
        if case .draid = layout { self.ashift = max(ashift, 12) } else { self.ashift = ashift }
        self.seconds = seconds
        self.vdevSizeInBytes = vdevSizeInBytes
        self.poolName = poolName
        self.hostID = hostID
        threads = nil
        datasets = 1
        minimumTopLevelVdevs = 1
        minimumLogVdevs = 0
        minimumSpares = 0
        minimumL2CacheDevices = 0
        allocationClasses = false
        churn = 12
        // Six: under load (two busy loops beside a full test run) four runs in a row left too
        // few vdev changes. Spares and l2cache devices no longer need a new run (they are added
        // after ztest), but more top-level and log vdevs still come only from ztest's workload.
        maxAttempts = 6
    }

    /// Whether ztest must be let loose on the vdev tree (slower, random, retried).
    public var needsChurn: Bool {
        minimumTopLevelVdevs > 1 || minimumLogVdevs > 0 || minimumSpares > 0
            || minimumL2CacheDevices > 0 || allocationClasses
    }

    /// Checks what ztest would refuse, or what this harness cannot deliver.
    /// - Throws: ``OpenZFSHarnessError`` `.invalidSpec`.
    public func validate() throws {
        func invalid(_ reason: String) -> OpenZFSHarnessError {
            OpenZFSHarnessError(.invalidSpec, "ztest pool spec \(self) is invalid: \(reason)")
        }
        switch layout {
        case .single: break
        case .mirror(let width):
            guard width >= 2 else { throw invalid("a mirror needs width ≥ 2 (use .single)") }
        case .raidz(let parity, let width), .mirroredRaidz(_, let parity, let width):
            guard (1...3).contains(parity) else { throw invalid("raidz parity must be 1...3") }
            guard width >= parity + 1 else { throw invalid("raidz\(parity) needs width ≥ \(parity + 1)") }
            if case .mirroredRaidz(let copies, _, _) = layout, copies < 1 {
                throw invalid("a mirror of raidz needs copies ≥ 1")
            }
        case .draid(let parity, let data, let spares, let children):
            guard (1...3).contains(parity) else { throw invalid("draid parity must be 1...3") }
            guard data >= 1, spares >= 1 else { throw invalid("draid needs data ≥ 1 and spares ≥ 1 (ztest)") }
            guard data + parity <= children - spares else {
                throw invalid("draid needs data + parity ≤ children − spares")
            }
        }
        guard (9...16).contains(ashift) else { throw invalid("ashift must be 9...16") }
        if case .draid = layout, ashift < 12 { throw invalid("ztest forces ashift ≥ 12 for draid") }
        guard vdevSizeInBytes >= 64 << 20 else { throw invalid("files must be ≥ 64 MiB (SPA_MINDEVSIZE)") }
        guard seconds >= 1 else { throw invalid("seconds must be ≥ 1") }
        guard effectiveThreads >= 1, datasets >= 1, churn >= 1, maxAttempts >= 1 else {
            throw invalid("threads, datasets, churn and maxAttempts must be ≥ 1")
        }
        guard !poolName.isEmpty, poolName.allSatisfy({ $0.isLetter || $0.isNumber || "_-.:".contains($0) }),
            poolName.first!.isLetter
        else { throw invalid("pool names start with a letter and use letters, digits, _-.:") }
        if allocationClasses {
            switch layout {
            case .mirror, .mirroredRaidz(2..., _, _): break
            default: throw invalid("ztest adds allocation classes only to pools of mirrors (-m ≥ 2)")
            }
        }
    }

    /// `-t` as passed to ztest.
    public var effectiveThreads: Int { threads ?? (needsChurn ? 4 : 1) }

    /// The files ztest makes for the first top-level vdev are this big (draid: ≥ 256 MiB).
    public var effectiveVdevSizeInBytes: Int {
        if case .draid(_, _, _, let children) = layout, children < 16 { return max(vdevSizeInBytes, 256 << 20) }
        return vdevSizeInBytes
    }

    /// ztest's arguments for a pool in `directory`.
    public func ztestArguments(directory: String) -> [String] {
        var args = [
            "-T", "\(effectiveSeconds)", "-k", "0", "-f", directory,
            "-p", poolName, "-s", "\(vdevSizeInBytes)", "-a", "\(ashift)",
            "-t", "\(effectiveThreads)", "-d", "\(datasets)",
            "-C", allocationClasses ? "special=on" : "special=off",
        ]
        switch layout {
        case .single: args += ["-m", "0", "-r", "1", "-K", "raidz"]
        case .mirror(let width): args += ["-m", "\(width)", "-r", "1", "-K", "raidz"]
        case .raidz(let parity, let width):
            args += ["-m", "0", "-r", "\(width)", "-R", "\(parity)", "-K", "raidz"]
        case .mirroredRaidz(let copies, let parity, let width):
            args += ["-m", "\(copies)", "-r", "\(width)", "-R", "\(parity)", "-K", "raidz"]
        case .draid(let parity, let data, let spares, let children):
            args += [
                "-m", "0", "-r", "\(children)", "-R", "\(parity)", "-D", "\(data)", "-S", "\(spares)", "-K",
                "draid",
            ]
        }
        args += needsChurn ? ["-v", "\(churn)"] : ["-v", "1", "-M"]
        return args
    }

    /// ztest's environment: the pinned one, plus ZDB_PATH=/bin/true in churn mode and ZFS_HOSTID.
    public var ztestEnvironment: [String: String] {
        var environment = OpenZFS.pinnedEnvironment
        if needsChurn { environment["ZDB_PATH"] = "/bin/true" }
        if let hostID { environment["ZFS_HOSTID"] = "0x" + String(hostID, radix: 16) }
        return environment
    }

    public var description: String {
        var parts = ["\(layout)", "ashift \(ashift)", "\(seconds) s", "\(vdevSizeInBytes >> 20) MiB", "'\(poolName)'"]
        if minimumTopLevelVdevs > 1 { parts.append("≥\(minimumTopLevelVdevs) top-level") }
        if minimumLogVdevs > 0 { parts.append("≥\(minimumLogVdevs) log") }
        if minimumSpares > 0 { parts.append("≥\(minimumSpares) spare") }
        if minimumL2CacheDevices > 0 { parts.append("≥\(minimumL2CacheDevices) l2cache") }
        if allocationClasses { parts.append("allocation classes") }
        if let hostID { parts.append("hostid 0x\(String(hostID, radix: 16))") }
        return parts.joined(separator: ", ")
    }

    /// A random spec that ztest accepts, kept small and fast.
    ///
    /// Layouts: single, 2–3-way mirrors, raidz1–3 of parity+1…parity+3 files, a mirror of
    /// raidz (25 % of them the `-m 1` quirk), dRAID1–2; ashift 9 or 12 (sometimes 13);
    /// 1–2 seconds. With probability `churnProbability` the spec also asks for spares,
    /// l2cache devices, logs or more top-level vdevs, which makes ``OpenZFS/makePool(_:in:)``
    /// several times slower.
    public static func random(
        using generator: inout some RandomNumberGenerator, churnProbability: Double = 0
    ) -> ZTestPoolSpec {
        let layout: Layout
        switch Int.random(in: 0..<10, using: &generator) {
        case 0: layout = .single
        case 1...3: layout = .mirror(width: Int.random(in: 2...3, using: &generator))
        case 4...6:
            let parity = Int.random(in: 1...3, using: &generator)
            layout = .raidz(parity: parity, width: parity + Int.random(in: 1...3, using: &generator))
        case 7:
            let parity = Int.random(in: 1...2, using: &generator)
            layout = .mirroredRaidz(
                copies: Bool.random(using: &generator) ? 1 : 2, parity: parity,
                width: parity + Int.random(in: 1...2, using: &generator))
        default:
            let parity = Int.random(in: 1...2, using: &generator)
            let data = Int.random(in: 2...4, using: &generator)
            let spares = 1
            layout = .draid(
                parity: parity, data: data, spares: spares,
                children: data + parity + spares + Int.random(in: 0...2, using: &generator))
        }
        let ashift = [9, 9, 12, 12, 13].randomElement(using: &generator)!
        var spec = ZTestPoolSpec(
            layout: layout, ashift: ashift, seconds: Int.random(in: 1...2, using: &generator),
            poolName: ["ztest", "tank", "pool_\(Int.random(in: 0...99, using: &generator))"]
                .randomElement(using: &generator)!)
        if Double.random(in: 0..<1, using: &generator) < churnProbability {
            switch Int.random(in: 0..<4, using: &generator) {
            case 0: spec.minimumSpares = 1
            case 1: spec.minimumL2CacheDevices = 1
            case 2: spec.minimumTopLevelVdevs = 2
            default: spec.minimumSpares = 1; spec.minimumL2CacheDevices = 1
            }
        }
        return spec
    }
}

/// A pool that ztest made and left on disk (ACTIVE, not exported).
public struct ZTestPool: Sendable, CustomStringConvertible {
    /// One top-level vdev as `zdb -C -U zpool.cache` shows it.
    public struct TopLevelVdev: Hashable, Sendable {
        /// `type`: `file`, `mirror`, `raidz`, `draid`, or `hole` (a removed slog's place).
        public var type: String
        /// `is_log: 1`.
        public var isLog: Bool
        /// `alloc_bias` (`special`, `dedup`, `log`), if any.
        public var allocationBias: String?
        /// `ashift`.
        public var ashift: Int?
        /// Every `path` below it, in config order.
        public var leafPaths: [String]
    }

    public let spec: ZTestPoolSpec
    /// `-p`.
    public let name: String
    /// The directory holding the device files and zpool.cache, and nothing else.
    public let directory: String
    /// `DIR/zpool.cache` (`spa_config_path`): the root vdev tree, without spares and l2cache.
    public let cacheFile: String
    /// Every leaf file `DIR/NAME.<n>a` ztest made, by n. In churn mode some may have left the
    /// pool and still carry labels: a removed slog's leaves (`txg: 0`, `removing: 1`,
    /// `hole_array`), or — with 3+-way mirrors of files — a leaf split off into pool `splitp`
    /// (`split_guid`). ``memberLeafDevices`` are the ones in the pool's config.
    public let leafDevices: [String]
    /// Hot-spare files `DIR/NAME.spares.<n>` whose label zdb reads (state 3), by n.
    public let spareDevices: [String]
    /// Cache files `DIR/NAME.l2cache.<n>` whose label zdb reads (state 4), by n.
    public let l2cacheDevices: [String]
    /// The top-level vdevs in the cache file, holes included.
    public let topLevelVdevs: [TopLevelVdev]
    /// The ztest command line that made the pool, and its environment.
    public let commandLine: [String]
    public let environment: [String: String]
    /// How many ztest runs it took (churn mode may retry) and how long they took in all.
    public let attempts: Int
    public let elapsed: Duration
    /// Why the earlier runs were thrown away (empty when the first run made it).
    public let failedAttempts: [String]
    /// The spare and l2cache files that OpenZFS's `spa_vdev_add` added after ztest exited,
    /// because ztest's run left fewer than the spec asks for (see
    /// ``OpenZFS/addAuxiliaryDevices(spares:l2cache:to:)``); empty when ztest made them all.
    public let devicesAddedAfterZTest: [String]

    /// The leaf files that zpool.cache lists under this pool's top-level vdevs, by n.
    public var memberLeafDevices: [String] {
        let members = Set(topLevelVdevs.flatMap(\.leafPaths))
        return leafDevices.filter(members.contains)
    }
    /// Every device file: leaves, then spares, then l2cache devices.
    public var deviceFiles: [String] { leafDevices + spareDevices + l2cacheDevices }
    /// Top-level vdevs that are not holes.
    public var concreteTopLevelVdevs: [TopLevelVdev] { topLevelVdevs.filter { $0.type != "hole" } }

    public var description: String {
        let tops = concreteTopLevelVdevs.map { $0.isLog ? "\($0.type)(log)" : $0.type }.joined(separator: "+")
        return "pool '\(name)' in \(directory): \(tops); \(leafDevices.count) leaves, "
            + "\(spareDevices.count) spares, \(l2cacheDevices.count) l2cache; \(attempts) run(s), \(elapsed)"
            + (devicesAddedAfterZTest.isEmpty ? "" : "; added after ztest: \(devicesAddedAfterZTest.count) aux")
    }
}

extension OpenZFS {
    /// Runs ztest to make a fresh pool for `spec` in a new subdirectory of `directory`.
    ///
    /// The subdirectory (`DIR/NAME.XXXXXX`) holds only this pool's files, so `zdb -e -p` can
    /// scan it. A run that fails (ztest is a stress test and can trip over itself) or, in churn
    /// mode, misses the spec's minimums is deleted and ztest runs again from scratch, up to
    /// `spec.maxAttempts` times.
    /// - Parameters:
    ///   - spec: the pool to make; see ``ZTestPoolSpec``.
    ///   - directory: an existing directory, e.g. a ``TemporaryDirectory``'s path.
    /// - Returns: the pool, with its files and vdev tree read back from disk.
    /// - Throws: ``OpenZFSHarnessError``: `.notInstalled`, `.invalidSpec`, `.ztestFailed` (ztest
    ///   exited non-zero on every attempt; its output is attached), `.layoutNotReached`, `.timedOut`.
    public static func makePool(_ spec: ZTestPoolSpec, in directory: String) throws -> ZTestPool {
        try requireInstalled()
        try spec.validate()
        let clock = ContinuousClock()
        let start = clock.now
        var failures: [String] = []
        var onlyShortfalls = true  // every failed run ran fine but missed the minimums
        var lastOutput: ProcessOutput?
        // After a run that missed the minimums, the next runs twice as long (up to 8 s: below
        // 10 s, see the file's comment) with twice the vdev changes: on a loaded machine ztest,
        // niced, got through too few to leave a spare and an l2cache device (four runs in a row,
        // two busy loops beside).
        var attemptSpec = spec
        for attempt in 1...spec.maxAttempts {
            // ztest overruns -T by a few seconds (pool creation, import, final txg syncs); more
            // under load. Anything beyond this is a hang.
            let timeout = Duration.seconds(120 + 10 * attemptSpec.effectiveSeconds)
            let poolDirectory = try makeUniqueDirectory(in: directory, prefix: spec.poolName)
            let args = attemptSpec.ztestArguments(directory: poolDirectory)
            // At nice 10: ztest keeps dozens of threads runnable for seconds, and several run at
            // once at the start of a test run. At the default priority they starved the real-time
            // tests beside them on a 2-core machine (an NBD handshake took over 5 s); niced, they
            // only use what those tests leave.
            let output = try run(
                nicePath, ["-n", "10", ztestPath] + args, environment: spec.ztestEnvironment,
                currentDirectory: poolDirectory, timeout: timeout)
            lastOutput = output
            do {
                guard output.status == 0 else {
                    throw OpenZFSHarnessError(.ztestFailed, "ztest exited with status \(output.status)")
                }
                var pool = try inspect(
                    spec: attemptSpec, directory: poolDirectory, commandLine: [ztestPath] + args,
                    failures: failures, elapsed: clock.now - start)
                // Spares and l2cache devices come from ztest only by chance (two random operations
                // among 36; under load a run gets through few), so when the run reached every
                // other minimum, OpenZFS adds the missing ones now instead of a whole new run.
                if shortfall(of: pool, countingAuxiliaryDevices: false) == nil {
                    pool = try addAuxiliaryDevices(
                        spares: max(0, spec.minimumSpares - pool.spareDevices.count),
                        l2cache: max(0, spec.minimumL2CacheDevices - pool.l2cacheDevices.count), to: pool)
                }
                if let shortfall = shortfall(of: pool) {
                    throw OpenZFSHarnessError(.layoutNotReached, shortfall)
                }
                return pool
            } catch let error as OpenZFSHarnessError {
                failures.append("run \(attempt) (-T \(attemptSpec.effectiveSeconds)): \(error.message)")
                onlyShortfalls = onlyShortfalls && error.code == .layoutNotReached
                if error.code == .layoutNotReached {
                    // In churn mode twice `-v` too: ztest spaces the vdev changes -T/-v apart,
                    // so a longer run with the same -v makes no more of them.
                    attemptSpec.seconds = min(attemptSpec.effectiveSeconds * 2, 8)
                    if spec.needsChurn { attemptSpec.churn = min(attemptSpec.churn * 2, 48) }
                }
                try? FileManager.default.removeItem(atPath: poolDirectory)
            }
        }
        throw OpenZFSHarnessError(
            onlyShortfalls ? .layoutNotReached : .ztestFailed,
            "ztest could not make a pool for \(spec) (env \(spec.ztestEnvironment)):\n  "
                + failures.joined(separator: "\n  "),
            output: lastOutput)
    }

    private static func shortfall(of pool: ZTestPool, countingAuxiliaryDevices: Bool = true) -> String? {
        let spec = pool.spec
        var missing: [String] = []
        let tops = pool.concreteTopLevelVdevs
        if tops.count < spec.minimumTopLevelVdevs { missing.append("\(tops.count) top-level vdevs") }
        if tops.filter(\.isLog).count < spec.minimumLogVdevs { missing.append("\(tops.filter(\.isLog).count) logs") }
        if countingAuxiliaryDevices, pool.spareDevices.count < spec.minimumSpares {
            missing.append("\(pool.spareDevices.count) spares")
        }
        if countingAuxiliaryDevices, pool.l2cacheDevices.count < spec.minimumL2CacheDevices {
            missing.append("\(pool.l2cacheDevices.count) l2cache devices")
        }
        return missing.isEmpty ? nil : "minimums not reached: got only \(missing.joined(separator: ", "))"
    }

    /// Adds `spares` hot spares and `l2cache` cache devices to a pool ztest left, as
    /// `zpool add POOL spare F... cache F...` would: zpk-oracle imports the pool in libzpool as
    /// the host ztest was (the hostid in the leaves' labels), calls `spa_vdev_add`, and leaves
    /// without exporting, so every label still says ACTIVE, as ztest left them. The new files are
    /// named as ztest names its own (`NAME.spares.<n>`, `NAME.l2cache.<n>`, n after every such
    /// file in the directory) and are 5/4 of `-s`, as ztest makes them. zpool.cache is not
    /// written (the oracle imports with cachefile=none): it never lists aux devices, but its txg
    /// is now older than the labels'.
    /// - Returns: the pool read back from disk, with the new files in
    ///   ``ZTestPool/devicesAddedAfterZTest``; `pool` itself when there is nothing to add.
    /// - Throws: ``OpenZFSHarnessError`` `.ztestFailed` when zdb cannot read a leaf's label, the
    ///   oracle fails, or a new file's label does not read back with its aux state.
    public static func addAuxiliaryDevices(spares: Int, l2cache: Int, to pool: ZTestPool) throws -> ZTestPool {
        guard spares > 0 || l2cache > 0 else { return pool }
        let clock = ContinuousClock()
        let start = clock.now
        guard let leaf = pool.memberLeafDevices.first ?? pool.leafDevices.first else {
            throw OpenZFSHarnessError(.ztestFailed, "\(pool) has no leaf device to read the host id from")
        }
        let label = try zdb(["-l", leaf])
        guard label.status == 0 else {
            throw OpenZFSHarnessError(.ztestFailed, "zdb -l \(leaf) failed: exit \(label.status) \(label.stderr)")
        }
        // Labels carry `hostid` only when it is not 0.
        let hostID = labelField("hostid", inZdbOutput: label.stdout).flatMap { UInt64($0) } ?? 0

        let names = try FileManager.default.contentsOfDirectory(atPath: pool.directory)
        func newFiles(_ kind: String, count: Int) -> [String] {
            let prefix = "\(pool.name).\(kind)."
            let used = names.compactMap { $0.hasPrefix(prefix) ? Int($0.dropFirst(prefix.count)) : nil }
            let first = (used.max() ?? -1) + 1
            return (first..<first + count).map { "\(pool.directory)/\(prefix)\($0)" }
        }
        let spareFiles = newFiles("spares", count: spares)
        let cacheFiles = newFiles("l2cache", count: l2cache)
        var layout: [String] = []
        if !spareFiles.isEmpty { layout += ["spare"] + spareFiles }
        if !cacheFiles.isEmpty { layout += ["cache"] + cacheFiles }
        let arguments =
            [
                "add", pool.name, "-d", pool.directory, "--hostid", String(hostID, radix: 16),
                "--size", "\(pool.spec.vdevSizeInBytes / 4 * 5)", "--no-export",
            ] + layout
        let answer = try ZPKOracle.run(arguments, timeout: .seconds(120))
        guard answer.status == 0 else {
            throw OpenZFSHarnessError(
                .ztestFailed,
                "zpk-oracle \(arguments.joined(separator: " ")) exited \(answer.status):\n\(answer.stdout)\(answer.stderr)")
        }
        let added = spareFiles + cacheFiles
        let result = try inspect(
            spec: pool.spec, directory: pool.directory, commandLine: pool.commandLine, failures: pool.failedAttempts,
            elapsed: pool.elapsed + (clock.now - start), addedAfterZTest: pool.devicesAddedAfterZTest + added)
        let readable = Set(result.spareDevices + result.l2cacheDevices)
        if let unreadable = added.first(where: { !readable.contains($0) }) {
            throw OpenZFSHarnessError(
                .ztestFailed, "zpk-oracle added \(unreadable) to \(pool.name), but zdb -l does not read its aux label")
        }
        return result
    }

    /// The first pool-level field `key` (indented four spaces, `    key: value`) in `zdb -l`
    /// output, as zdb prints it (strings keep their quotes); `nil` when no label has it.
    public static func labelField(_ key: String, inZdbOutput output: String) -> String? {
        let prefix = "    \(key): "
        return output.split(separator: "\n").first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }

    /// Reads back what ztest left in `directory`.
    private static func inspect(
        spec: ZTestPoolSpec, directory: String, commandLine: [String], failures: [String], elapsed: Duration,
        addedAfterZTest: [String] = []
    ) throws -> ZTestPool {
        let cacheFile = "\(directory)/zpool.cache"
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        func numbered(_ prefix: String, _ suffix: String) -> [String] {
            names.compactMap { name -> (Int, String)? in
                guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
                let middle = name.dropFirst(prefix.count).dropLast(suffix.count)
                guard let n = Int(middle) else { return nil }
                return (n, "\(directory)/\(name)")
            }.sorted { $0.0 < $1.0 }.map(\.1)
        }
        let leaves = numbered("\(spec.poolName).", "a")
        guard !leaves.isEmpty, names.contains("zpool.cache") else {
            throw OpenZFSHarnessError(.ztestFailed, "ztest left no device files or no zpool.cache in \(directory)")
        }
        let cache = try zdb(["-C", "-U", cacheFile])
        guard cache.status == 0 else {
            throw OpenZFSHarnessError(.ztestFailed, "zdb -C -U \(cacheFile) failed: exit \(cache.status) \(cache.stderr)")
        }
        let tops = parseTopLevelVdevs(zdbCacheOutput: cache.stdout, poolName: spec.poolName)
        guard let first = tops.first, first.type == spec.layout.vdevType, spec.needsChurn || tops.count == 1 else {
            throw OpenZFSHarnessError(
                .ztestFailed,
                "zpool.cache in \(directory) shows top-level vdevs \(tops.map(\.type)), but \(spec.layout) "
                    + "should give one '\(spec.layout.vdevType)'\(spec.needsChurn ? " first" : "")")
        }
        /// An aux file counts only if zdb reads its label and finds the aux state in it.
        func readableAux(_ paths: [String], state: Int) throws -> [String] {
            try paths.filter { path in
                let answer = try zdb(["-l", path])
                return answer.status == 0 && answer.stdout.contains("\n    state: \(state)\n")
            }
        }
        return ZTestPool(
            spec: spec, name: spec.poolName, directory: directory, cacheFile: cacheFile,
            leafDevices: leaves,
            spareDevices: try readableAux(numbered("\(spec.poolName).spares.", ""), state: 3),
            l2cacheDevices: try readableAux(numbered("\(spec.poolName).l2cache.", ""), state: 4),
            topLevelVdevs: tops, commandLine: commandLine, environment: spec.ztestEnvironment,
            attempts: failures.count + 1, elapsed: elapsed, failedAttempts: failures,
            devicesAddedAfterZTest: addedAfterZTest)
    }

    /// The top-level vdevs of pool `poolName` (default: the first pool) in `zdb -C` output.
    ///
    /// A cache file can hold several pools, each a block headed `NAME:` at column 0 (ztest's
    /// split test adds `splitp`). Within it, top-level vdevs are blocks headed
    /// `        children[N]:` (8 spaces, inside `    vdev_tree:`), with their own properties at
    /// 12 spaces and their leaves' `path:` anywhere below.
    public static func parseTopLevelVdevs(
        zdbCacheOutput text: String, poolName: String? = nil
    ) -> [ZTestPool.TopLevelVdev] {
        var result: [ZTestPool.TopLevelVdev] = []
        var inPool = false
        var inTree = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let indent = line.prefix { $0 == " " }.count
            let body = line.dropFirst(indent)
            if indent == 0 && body.hasSuffix(":") {
                if inPool { break }  // the next pool
                inPool = poolName.map { body == "\($0):" } ?? true
                continue
            }
            guard inPool else { continue }
            if indent == 4 { inTree = body == "vdev_tree:"; continue }
            guard inTree else { continue }
            if indent == 8 && body.hasPrefix("children[") {
                result.append(.init(type: "", isLog: false, allocationBias: nil, ashift: nil, leafPaths: []))
                continue
            }
            guard !result.isEmpty, indent > 8 else { continue }
            guard let colon = body.firstIndex(of: ":") else { continue }
            let key = body[..<colon]
            var value = body[body.index(after: colon)...].drop { $0 == " " }
            if value.hasPrefix("'") && value.hasSuffix("'") && value.count >= 2 { value = value.dropFirst().dropLast() }
            if key == "path" { result[result.count - 1].leafPaths.append(String(value)) }
            guard indent == 12 else { continue }
            switch key {
            case "type": result[result.count - 1].type = String(value)
            case "is_log": result[result.count - 1].isLog = value == "1"
            case "alloc_bias": result[result.count - 1].allocationBias = String(value)
            case "ashift": result[result.count - 1].ashift = Int(value)
            default: break
            }
        }
        return result
    }

    private static func makeUniqueDirectory(in parent: String, prefix: String) throws -> String {
        var template = Array("\(parent)/\(prefix).XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else {
            throw OpenZFSHarnessError(
                .io, "cannot make a pool directory in \(parent): mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// The seeded generator for reproducible specs: the package's one, ``SplitMix64``.
    ///
    /// ```swift
    /// var rng = OpenZFS.SeededGenerator(seed: 42)
    /// let spec = ZTestPoolSpec.random(using: &rng)
    /// ```
    public typealias SeededGenerator = SplitMix64
}
