import ArgumentParser
import ZFSFormat

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
                """,
            subcommands: [Show.self]
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
