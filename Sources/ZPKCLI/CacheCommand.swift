import ArgumentParser
import ZFSFormat
import ZFSImport
import ZPKControl

#if canImport(Glibc)
import Glibc
#endif

extension ZPK {
    /// `zpk cache …`: the `zpool.cache` files that let a host open its pools at start.
    struct Cache: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show and edit zpool.cache files.",
            discussion: """
                A cache file lists the pools a host opens at start, each with its full config \
                (a NATIVE-encoded nvlist; OpenZFS keeps one at /etc/zfs/zpool.cache, zpkd at \
                /etc/zpk/zpool.cache).

                show only reads. add and remove replace the file atomically: the new contents \
                go to a temporary file in the same directory, which is synced and renamed over \
                the old one, so a crash leaves the old file or the new one, never a mix. They \
                never write to a device.
                """,
            subcommands: [Show.self, Add.self, Remove.self]
        )
    }
}

extension ZPK.Cache {
    /// The cache file zpk uses when none is named: `$ZPK_CACHEFILE`, else zpkd's default.
    static var defaultPath: String {
        if let value = getenv("ZPK_CACHEFILE") { return String(cString: value) }
        return "/etc/zpk/zpool.cache"
    }

    /// `zpk cache show [--json] [FILE]`
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a zpool.cache file, as `zdb -C -U FILE` does.",
            discussion: """
                Without --json the output is exactly that of OpenZFS 2.1.11's `zdb -C -U FILE`: \
                the file's nvlist as stored, one pool per top-level entry, not refreshed from \
                the devices. Unlike zdb, a cache file written on a host of the other byte order \
                is read too.

                FILE defaults to $ZPK_CACHEFILE, else /etc/zpk/zpool.cache.

                Examples:
                  zpk cache show /etc/zfs/zpool.cache
                  zpk cache show --json
                """
        )

        @Flag(help: "Print JSON: the file's encoding and each pool's config.")
        var json = false

        @Argument(help: "The cache file to read.")
        var file: String = ZPK.Cache.defaultPath

        func run() throws {
            let output = CacheShow.run(path: file, json: json)
            emit(output.stdout)
            if !output.stderr.isEmpty { emitError(output.stderr) }
            if output.status != 0 { throw ExitCode(output.status) }
        }
    }
}

extension ZPK.Cache {
    /// `zpk cache add [--cachefile FILE] POOL|GUID [-d DIR]...`
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find a pool on its devices and add it to a cache file.",
            discussion: """
                Scans the directories given with -d (default: the Linux search list, as zpool \
                import does), assembles the pool from its labels, and stores its config as \
                OpenZFS stores an imported pool's: the root vdev tree with every top-level vdev, \
                leaf paths as found, state ACTIVE. An entry for the same pool guid is replaced; \
                another pool of the same name is an error. OpenZFS's entry would also hold the \
                per-vdev ZAP object numbers, which only the MOS records; OpenZFS reads them from \
                the MOS when it opens the pool.

                POOL is a name, or a numeric guid when it is all decimal digits.

                FILE defaults to $ZPK_CACHEFILE, else /etc/zpk/zpool.cache; its directory must \
                exist. The file is replaced atomically (see zpk cache --help).

                Examples:
                  zpk cache add tank -d /dev/disk/by-id
                  zpk cache add --cachefile /etc/zfs/zpool.cache 15451357997522795478 -d /var/tmp/pool
                """
        )

        @Option(help: ArgumentHelp("The cache file to change.", valueName: "file"))
        var cachefile: String = ZPK.Cache.defaultPath

        @Argument(help: ArgumentHelp("The pool to add: its name or guid.", valueName: "pool"))
        var pool: String

        @Option(name: .customShort("d"), help: ArgumentHelp("A directory to scan, or a device; repeatable.", valueName: "dir"))
        var directories: [String] = []

        func run() throws {
            let output = CacheEdit.add(pool: pool, searchPaths: directories, cacheFile: cachefile, environment: ProcessEnvironment.current)
            try output.emitAndThrow()
        }
    }

    /// `zpk cache remove [--cachefile FILE] POOL|GUID`
    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a pool from a cache file.",
            discussion: """
                Removes the entry of the pool named (by name, or by guid when all decimal \
                digits). When no pool remains the file is removed, as OpenZFS removes a cache \
                file that no pool uses. The file is replaced atomically (see zpk cache --help); \
                devices are not touched.

                Examples:
                  zpk cache remove tank
                  zpk cache remove --cachefile /etc/zfs/zpool.cache 15451357997522795478
                """
        )

        @Option(help: ArgumentHelp("The cache file to change.", valueName: "file"))
        var cachefile: String = ZPK.Cache.defaultPath

        @Argument(help: ArgumentHelp("The pool to remove: its name or guid.", valueName: "pool"))
        var pool: String

        func run() throws {
            try CacheEdit.remove(pool: pool, cacheFile: cachefile).emitAndThrow()
        }
    }
}

/// The logic of `zpk cache add` and `zpk cache remove`, callable from tests.
enum CacheEdit {
    /// The `zpk cache add` step by step: scan, pick the pool, build its entry, update the file.
    static func add(
        pool: String, searchPaths: [String], cacheFile: String, environment: [String: String],
        fileSystem: some CacheFileSystem = PosixCacheFileSystem()
    ) -> CacheShow.Output {
        let selector = PoolSelector(zpoolArgument: pool)
        let scanner = ImportScanner(
            options: .init(
                searchPaths: searchPaths, selector: selector,
                deviceIdentity: UdevDiskIdentity.rule(optOut: DiskIdentityRule.optOut(environment: environment))))
        let result = scanner.scan()
        var output = CacheShow.Output(stdout: "", stderr: "", status: 0)
        for problem in result.searchProblems {
            output.stderr += problem.message + "\n"
        }
        let candidate: PoolCandidate
        do {
            candidate = try result.pool(selector)
        } catch {
            output.stderr += error.message
                + (result.permissionDenied ? " (some devices require root privileges)" : "") + "\n"
            output.status = 1
            return output
        }
        let replaced: CacheFile.Entry?
        let entry: CacheFile.Entry
        do {
            entry = try CacheFile.entry(for: candidate, in: result)
            var previous: CacheFile.Entry?
            try CacheFile.update(at: cacheFile, fileSystem: fileSystem) { (cache: inout CacheFile) throws(CacheFileError) in
                previous = try cache.insert(entry, path: cacheFile)
            }
            replaced = previous
        } catch {
            output.stderr += "cannot add pool '\(candidate.name)' to cache file: \(error.message)\n"
            output.status = 1
            return output
        }
        for leaf in candidate.root.leaves where leaf.presence == .notFound {
            output.stderr += "warning: leaf vdev \(leaf.guid) (\(leaf.path ?? "no path")) is on no scanned device; the pool would open degraded or not at all\n"
        }
        if let replaced {
            output.stdout += "replaced pool '\(entry.name)' (guid \(candidate.guid)) in \(cacheFile): txg \(replaced.config.uint64("txg").map(String.init) ?? "?") -> \(candidate.txg)\n"
        } else {
            output.stdout += "added pool '\(entry.name)' (guid \(candidate.guid)) to \(cacheFile)\n"
        }
        return output
    }

    static func remove(pool: String, cacheFile: String, fileSystem: some CacheFileSystem = PosixCacheFileSystem()) -> CacheShow.Output {
        let selector = PoolSelector(zpoolArgument: pool)
        var removed: CacheFile.Entry?
        let remaining: CacheFile
        do {
            remaining = try CacheFile.update(at: cacheFile, fileSystem: fileSystem) { (cache: inout CacheFile) throws(CacheFileError) in
                removed = try cache.remove(selector, path: cacheFile)
            }
        } catch {
            return .init(stdout: "", stderr: "cannot remove pool \(selector) from cache file: \(error.message)\n", status: 1)
        }
        let guid = removed?.poolGUID.map { " (guid \($0))" } ?? ""
        var text = "removed pool '\(removed?.name ?? pool)'\(guid) from \(cacheFile)"
        if remaining.entries.isEmpty { text += "; no pool remains, so the file was removed" }
        return .init(stdout: text + "\n", stderr: "", status: 0)
    }
}

extension ZPK.Import {
    /// Why `zpk import -c` printed no listing.
    struct CacheFileFailure: Error {
        var message: String
        var status: Int32
    }

    /// `zpk import -c CACHEFILE`: the pools the cache file lists, with the labels of the devices
    /// their configs name (`zpool_find_import_cached`). The seam for the import listing: the
    /// result has the same shape as a directory scan's.
    static func scanCacheFile(
        _ path: String, searchPaths: [String], selector: PoolSelector?, destroyed: Bool
    ) -> Result<ScanResult, CacheFileFailure> {
        guard searchPaths.isEmpty else {
            return .failure(CacheFileFailure(message: "-c is incompatible with -d: a cache file names its devices", status: ExitCode.validationFailure.rawValue))
        }
        let cache: CacheFile
        do {
            cache = try CacheFile.read(at: path)
        } catch {
            return .failure(CacheFileFailure(message: error.message, status: 1))
        }
        var result = cache.scanDevices(path: path, selector: selector)
        result.pools = result.allPools.filter { destroyed ? $0.isDestroyed : !$0.isDestroyed }
        return .success(result)
    }
}

extension CacheShow.Output {
    /// Prints both streams; throws the exit status when it is not 0.
    func emitAndThrow() throws {
        emit(stdout)
        if !stderr.isEmpty { emitError(String(stderr.dropLast())) }
        if status != 0 { throw ExitCode(status) }
    }
}

/// The logic of `zpk cache show`, separate from argument parsing so tests can call it.
enum CacheShow {
    struct Output: Equatable {
        var stdout: String
        var stderr: String
        var status: Int32
    }

    static func run(path: String, json: Bool) -> Output {
        let bytes: [UInt8]
        switch readWholeFile(path) {
        case .success(let read): bytes = read
        case .failure(let failure):
            let reason = failure.message
            if json {
                return Output(stdout: JSON.object([("file", .string(path)), ("error", .string("cannot open '\(path)': \(reason)"))]).rendered(), stderr: "", status: 1)
            }
            // zdb prints this one on standard output.
            return Output(stdout: "cannot open '\(path)': \(reason)\n", stderr: "", status: 1)
        }
        let config: NVList
        do {
            config = try NVList(decoding: bytes, acceptingForeignNative: true)
        } catch {
            let detail = bytes.isEmpty ? "the file is empty (OpenZFS leaves an empty cache file when no pool uses it)" : error.description
            if json {
                return Output(stdout: JSON.object([("file", .string(path)), ("error", .string("\(path) is not a packed nvlist: \(detail)"))]).rendered(), stderr: "", status: 1)
            }
            return Output(stdout: "", stderr: "failed to unpack nvlist", status: 1)
        }
        if !json {
            return Output(stdout: config.dumpText(indent: 0), stderr: "", status: 0)
        }
        let encoding = bytes[0] == NVList.Encoding.native.rawValue ? "native" : "xdr"
        let order = bytes[1] == 1 ? "little" : "big"
        let pools: [JSON] = config.pairs.map { pair in
            var members: [(String, JSON)] = [("name", .string(pair.name))]
            if case .nvlist(let poolConfig) = pair.value {
                members.append(("pool_guid", poolConfig.uint64("pool_guid").map { .unsigned($0) } ?? .null))
                members.append(("config", JSON(poolConfig)))
            } else {
                members.append(("config", JSON(pair.value)))
            }
            return .object(members)
        }
        let report = JSON.object([
            ("file", .string(path)), ("encoding", .string(encoding)), ("byte_order", .string(order)),
            ("pools", .array(pools)),
        ])
        return Output(stdout: report.rendered(), stderr: "", status: 0)
    }

    /// Reads a whole regular file, or returns the errno of the failure.
    static func readWholeFile(_ path: String) -> Result<[UInt8], SystemErrno> {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return .failure(SystemErrno(errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(SystemErrno(errno)) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return .failure(SystemErrno((info.st_mode & S_IFMT) == S_IFDIR ? EISDIR : EINVAL)) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(SystemErrno(errno))
            }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return .success(bytes)
    }
}

/// An `errno` value from a system call, with its `strerror` text.
struct SystemErrno: Error {
    var code: Int32
    init(_ code: Int32) { self.code = code }
    var message: String { String(cString: strerror(code)) }
}
