// Pool discovery: finding every importable pool's config by reading device labels.
//
// Purpose. `zpool import` and `zdb -e` do not trust any cached description of a pool. They
// look at devices: each leaf carries, in four labels, the pool-level keys and the config of its
// own top-level vdev (never the whole tree — see `shared/seeds/spa-open-import-history.txt`).
// Reading every candidate device and piecing the top-level vdevs back together gives the same
// nvlist the cache file would hold, which the kernel then opens. This file reproduces
// libzutil's discovery (`lib/libzutil/zutil_import.c` and `os/linux/zutil_import_os.c`,
// OpenZFS 2.1.11) so that we find exactly the pools, and assemble exactly the configs, that
// `zpool import -d` and `zdb -e -p` do. `spec/import-and-mmp.md` §1 is the reference.
//
// What it does NOT guarantee.
//   * That a pool can be imported. Discovery never reads the MOS: a pool whose top-level vdev
//     is missing from every device looks complete unless the newest label's `vdev_children`
//     says otherwise (pools older than version 19 have no `vdev_children`), and the guid sum
//     is not checked here (the kernel checks it after reading the MOS config, §1.15).
//   * Label integrity. Like `zpool_read_label`, discovery accepts a label whose embedded
//     checksum fails as long as its nvlist unpacks; the verdicts are recorded per label
//     (``LabelProbe``) for the kernel-side validation of a later step (§1.16).
//   * A consistent snapshot. Devices can change while they are read; a pool being written by
//     another host may yield labels from different txgs (the best per top-level wins).
//   * Spare and cache paths in the pool config: those lists live in the MOS, which only the
//     kernel refresh reads; aux labels only feed the guid → path table (§1.11).
//
// Mechanism.
//   1. Candidates. Each search path (default: ``defaultSearchPaths``) at position i gives
//      search order 10 + i. A directory that does not exist is skipped silently; one that
//      exists is resolved (`realpath`) and every entry but `.`/`..` is a candidate, by its own
//      name (a symlink is not resolved). A search path that is not a directory is itself a
//      candidate (parent resolved, base name kept). Candidates go into libzutil's AVL tree
//      (``CandidateOrder``), which removes duplicates.
//   2. Probing, in parallel on ``Options/concurrency`` POSIX threads (libzutil: 2 × CPUs):
//      names `hpet`/`watchdog*` are never opened; directory entries whose type is known not to
//      be a file, link or block device are skipped without a system call; the rest are
//      `stat`ed and only regular files of at least 64 MiB and block devices are opened,
//      read-only, and their labels read (``LabelProbe``). Every skip is a note on the device,
//      never an error, so ten thousand irrelevant files cost ten thousand `stat`s and no reads.
//   3. Grouping, sequentially, in libzutil's order (post-order of the AVL tree): the name or
//      guid filter (aux labels exempt); optionally the exclusive-open test that `zpool import`
//      uses to skip devices in use; then `add_config` (``PoolAssembler``).
//   4. Assembly (``PoolAssembler/assemble(identity:)``): best config per top-level by txg,
//      pool keys, root tree with `hole`/`missing` placeholders, paths refreshed by guid.
//   5. Destroyed pools are kept or dropped by ``Options/destroyedPools``.
//
// Invariants.
//   * Nothing is ever written: devices are opened `O_RDONLY`, and the exclusive-open test
//     opens `O_RDONLY | O_EXCL` and closes at once.
//   * The result depends only on the bytes on the devices, the directory listings and their
//     `readdir` order — not on thread timing: probes land in slots by index, and everything
//     after probing is sequential.
//
// Failure cases. A device that vanishes, cannot be opened or read, or holds garbage gets a
// note and contributes nothing. A search directory that exists but cannot be resolved or
// listed is an ``ImportError`` in ``ScanResult/searchProblems``; libzutil stops the whole
// scan there, we scan the other paths and let the caller decide.
//
// Tunables.
//   * ``Options/concurrency``: probing threads; default 2 × online CPUs; minimum 1.
//   * ``Options/minimumFileSize``: 64 MiB (`SPA_MINDEVSIZE`); regular files below it are not opened.
//
// Worked numbers. A 4-way mirror of files: 4 candidates × 4 labels × 112 KiB = 1.75 MiB read;
// a directory of 10 000 small files and the same 4 pool files: 10 004 `stat`s, the same reads.

import Logging
import Synchronization
import ZFSDevice
import ZFSFormat


/// Finds pools by reading the labels of the devices in a set of search paths.
///
/// ```swift
/// let scanner = ImportScanner(options: .init(searchPaths: ["/tmp/pool"]))
/// let result = scanner.scan()
/// for pool in result.pools {
///     print(pool.name, pool.guid, pool.config.dumpText(indent: 8))
/// }
/// let tank = try result.pool(.name("tank"))
/// ```
///
/// The corresponding OpenZFS function is `zpool_search_import` (`lib/libzutil/zutil_import.c`).
public struct ImportScanner: Sendable {
    /// Where and what to scan.
    public struct Options: Sendable {
        /// Directories and device paths to scan (`zpool import -d`, repeatable); empty means
        /// ``ImportScanner/defaultSearchPaths``.
        public var searchPaths: [String]
        /// Only pools with this name or guid (`zpool import POOL`); spare and cache labels are
        /// always kept, since they carry neither.
        public var selector: PoolSelector?
        /// Which destroyed pools ``ScanResult/pools`` reports.
        public var destroyedPools: DestroyedPoolPolicy
        /// Skip devices that cannot be opened exclusively — block devices in use, such as
        /// multipath components (what `zpool import` does; `zdb -e` does not).
        public var skipDevicesInUse: Bool
        /// How many threads probe devices at once; default 2 × online CPUs (libzutil's width).
        public var concurrency: Int
        /// Regular files smaller than this are never opened (`SPA_MINDEVSIZE`, 64 MiB).
        public var minimumFileSize: UInt64
        /// Recomputes a disk leaf's device ids when its path is refreshed; default: the Linux
        /// udev rule of libzutil.
        public var deviceIdentity: any DeviceIdentityResolver
        /// Verify the embedded SHA-256 of every label read (``LabelProbe/Label/checksum``).
        /// libzutil does not; discovery does not need it; default false.
        public var verifiesLabelChecksums: Bool

        public init(
            searchPaths: [String] = [],
            selector: PoolSelector? = nil,
            destroyedPools: DestroyedPoolPolicy = .exclude,
            skipDevicesInUse: Bool = true,
            concurrency: Int = ImportScanner.defaultConcurrency,
            minimumFileSize: UInt64 = ImportScanner.minimumDeviceSize,
            deviceIdentity: any DeviceIdentityResolver = UdevDiskIdentity.rule(),
            verifiesLabelChecksums: Bool = false
        ) {
            self.searchPaths = searchPaths
            self.selector = selector
            self.destroyedPools = destroyedPools
            self.skipDevicesInUse = skipDevicesInUse
            self.concurrency = concurrency
            self.minimumFileSize = minimumFileSize
            self.deviceIdentity = deviceIdentity
            self.verifiesLabelChecksums = verifiesLabelChecksums
        }

        /// What `zdb -e -p DIR … POOL` scans with: every pool state, no exclusive-open test.
        public static func zdb(searchPaths: [String], selector: PoolSelector? = nil) -> Options {
            Options(searchPaths: searchPaths, selector: selector, destroyedPools: .include, skipDevicesInUse: false)
        }
    }

    /// The Linux search list used when no path is given, in priority order
    /// (`zpool_default_import_path`).
    public static let defaultSearchPaths = [
        "/dev/disk/by-vdev", "/dev/mapper", "/dev/disk/by-partlabel", "/dev/disk/by-partuuid",
        "/dev/disk/by-label", "/dev/disk/by-uuid", "/dev/disk/by-id", "/dev/disk/by-path", "/dev",
    ]

    /// libzutil's probing width: 2 × online CPUs.
    public static var defaultConcurrency: Int { BlockingIO.defaultWidth }

    /// `SPA_MINDEVSIZE`: 64 MiB.
    public static let minimumDeviceSize: UInt64 = 64 << 20

    /// libzutil's `IMPORT_ORDER_SCAN_OFFSET`: search order = this + search-path index.
    public static let scanOrderOffset = 10

    public var options: Options
    private let logger: Logger

    /// - Parameters:
    ///   - options: where and what to scan.
    ///   - logger: receives one debug line per skipped or probed device and a summary.
    public init(options: Options = Options(), logger: Logger = Logger.current) {
        self.options = options
        self.logger = logger
    }

    /// Scans, blocking the calling thread until every device has been probed.
    ///
    /// Probing runs on ``Options/concurrency`` threads of its own; do not call this from the
    /// cooperative pool (use the `async` overload there, which async contexts pick by default).
    /// - Complexity: one `stat` per candidate, four 112 KiB reads per device that may hold a
    ///   pool, then O(*n* log *n*) in the number of candidates.
    public func scan() -> ScanResult {
        let (candidates, problems) = collectCandidates()
        let keys = candidates.keys
        let hints = candidates.hints
        let probes = Mutex([ProbeOutcome?](repeating: nil, count: keys.count))
        let minimumFileSize = options.minimumFileSize
        let verifying = options.verifiesLabelChecksums
        BlockingIO.forEach(count: keys.count, width: options.concurrency) { index in
            let outcome = Self.probe(keys[index].path, hint: hints[index], minimumFileSize: minimumFileSize, verifyingChecksums: verifying)
            probes.withLock { $0[index] = outcome }
        }
        let outcomes = probes.withLock { $0 }
        return group(keys: keys, orders: candidates.orders, outcomes: outcomes, order: candidates.tree, problems: problems)
    }

    /// Scans without blocking the cooperative pool: the work runs on worker threads
    /// (`BlockingIO`) and the task is resumed when it is done.
    public func scan() async -> ScanResult {
        let scanner = self
        return await BlockingIO.run { scanner.scan() }
    }

    // MARK: 3–5. Grouping and assembly (sequential)

    private func group(
        keys: [CandidateKey], orders: [Int], outcomes: [ProbeOutcome?], order: CandidateOrder, problems: [ImportError]
    ) -> ScanResult {
        var assembler = PoolAssembler()
        var devices: [ScannedDevice] = []
        devices.reserveCapacity(keys.count)
        var permissionDenied = false
        var skipped = 0
        for index in order.postOrder() {
            let path = keys[index].path
            var device = ScannedDevice(path: path, searchOrder: orders[index])
            switch outcomes[index] {
            case nil:
                device.note = .vanished
            case .skipped(let note, let denied)?:
                device.note = note
                permissionDenied = permissionDenied || denied
                skipped += 1
            case .probed(let probe)?:
                device.probe = probe
                guard let config = probe.config, probe.labelCount > 0 else {
                    device.note = .noLabel
                    break
                }
                if let selector = options.selector,
                    !PoolState(rawValue: config.uint64("state") ?? 0).isAuxiliary,
                    !selector.matches(name: config.string("name"), guid: config.uint64("pool_guid").map { PoolGUID($0) })
                {
                    device.note = .filteredOut
                    break
                }
                if options.skipDevicesInUse && !Self.opensExclusively(path) {
                    device.note = .inUse
                    break
                }
                let (role, note) = assembler.add(config, path: path, searchOrder: orders[index], labelCount: probe.labelCount)
                device.role = role
                device.note = note
            }
            logger.debug(
                "import scan: device",
                metadata: [
                    "zfs.import.path": "\(path)",
                    "zfs.import.note": "\(device.note.map { "\($0)" } ?? "-")",
                    "zfs.import.labels": "\(device.labelCount)",
                ])
            devices.append(device)
        }
        let all = assembler.assemble(identity: options.deviceIdentity)
        let admitted = all.filter { options.destroyedPools.admits($0.state) }
        logger.debug(
            "import scan: done",
            metadata: [
                "zfs.import.candidates": "\(keys.count)",
                "zfs.import.skipped": "\(skipped)",
                "zfs.import.pools": "\(admitted.count)",
                "zfs.import.pools.hidden": "\(all.count - admitted.count)",
            ])
        return ScanResult(
            pools: admitted, allPools: all, devices: devices, searchProblems: problems,
            permissionDenied: permissionDenied)
    }

}
