// `zpk object put|get|ls|rm`: named objects (≤ 16 MiB each) in a pool held by zpkd.

import ArgumentParser
import ZPKControl

#if canImport(Glibc)
import Glibc
#endif

extension ZPK {
    /// `zpk object put|get|ls|rm`
    struct Object: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store, read, list and remove a pool's objects.",
            discussion: """
                A pool holds named objects of up to 16 MiB each (one checksummed block). A put \
                replaces an object of the same name and is durable after the next sync (every \
                few seconds, or `zpk sync`). Names are 1 to 255 bytes of UTF-8.

                Examples:
                  zpk object put tank photos/cat.jpg ~/cat.jpg
                  tar c notes | zpk object put tank notes.tar -
                  zpk object get tank photos/cat.jpg -o /tmp/cat.jpg
                  zpk object ls tank
                  zpk object rm tank notes.tar
                """,
            subcommands: [Put.self, GetObject.self, ListObjects.self, Remove.self]
        )

        /// `zpk object put POOL KEY FILE|-`
        struct Put: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Store a file (or standard input, `-`) as an object.",
                discussion: """
                    The whole file is read and sent to zpkd; at most 16 MiB. An object of the same \
                    name is replaced. Durable after the next sync.

                    Examples:
                      zpk object put tank report.pdf ./report.pdf
                      echo hello | zpk object put tank greeting -
                    """
            )

            @OptionGroup var daemon: DaemonOptions

            @Argument(help: "The pool.")
            var pool: String

            @Argument(help: "The object's name.")
            var key: String

            @Argument(help: ArgumentHelp("The file to store, or `-` for standard input.", valueName: "file"))
            var file: String

            func run() throws {
                let bytes: [UInt8]
                do {
                    bytes = try LocalFile.read(file, limit: ControlFrame.maximumPayloadByteCount)
                } catch let failure as LocalFile.Failure {
                    emitError("cannot put '\(key)' in pool '\(pool)': \(failure.message)")
                    throw ExitCode(1)
                }
                var session = try DaemonSession(daemon)
                _ = try session.call("object.put", ["pool": .string(pool), "key": .string(key)], payload: bytes)
            }
        }

        /// `zpk object get POOL KEY [-o FILE]`
        struct GetObject: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "get",
                abstract: "Write an object's bytes to standard output or a file.",
                discussion: """
                    The bytes are verified against their checksum (a bad mirror copy is read from \
                    the other side and repaired) and written unchanged: binary-safe.

                    Examples:
                      zpk object get tank report.pdf > report.pdf
                      zpk object get tank report.pdf -o /tmp/report.pdf
                    """
            )

            @OptionGroup var daemon: DaemonOptions

            @Option(name: .customShort("o"), help: ArgumentHelp("Write to this file instead of standard output.", valueName: "file"))
            var output: String?

            @Argument(help: "The pool.")
            var pool: String

            @Argument(help: "The object's name.")
            var key: String

            func run() throws {
                var session = try DaemonSession(daemon)
                let reply = try session.call("object.get", ["pool": .string(pool), "key": .string(key)])
                do {
                    try LocalFile.write(reply.payload, to: output)
                } catch let failure as LocalFile.Failure {
                    emitError("cannot write object '\(key)' of pool '\(pool)': \(failure.message)")
                    throw ExitCode(1)
                }
            }
        }

        /// `zpk object ls POOL [--json]`
        struct ListObjects: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "ls",
                abstract: "List a pool's objects with their sizes.",
                discussion: """
                    One line per object, sorted by name: SIZE (bytes), BIRTH (the txg that made or \
                    will make it durable) and NAME. --json: {"objects":[{"key","size","birth_txg"}]}.

                    Example:
                      zpk object ls tank
                    """
            )

            @OptionGroup var daemon: DaemonOptions

            @Flag(help: "Print the objects as JSON.")
            var json = false

            @Argument(help: "The pool.")
            var pool: String

            func run() throws {
                var session = try DaemonSession(daemon, json: json)
                let reply = try session.call("object.ls", ["pool": .string(pool)])
                let objects = reply.result["objects"]?.arrayValue ?? []
                if json {
                    emit(JSON.object([("objects", .array(objects.map { PoolText.ordered($0, keys: ["key", "size", "birth_txg"]) }))]).rendered())
                    return
                }
                var text = ""
                for object in objects {
                    text += "\(object["size"]?.uint64Value ?? 0)\t\(object["birth_txg"]?.uint64Value ?? 0)\t\(object["key"]?.stringValue ?? "")\n"
                }
                emit(text)
            }
        }

        /// `zpk object rm POOL KEY`
        struct Remove: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "rm",
                abstract: "Remove an object.",
                discussion: """
                    The space is reused once no uberblock in the ring can still reach it. Durable \
                    after the next sync.

                    Example:
                      zpk object rm tank notes.tar
                    """
            )

            @OptionGroup var daemon: DaemonOptions

            @Argument(help: "The pool.")
            var pool: String

            @Argument(help: "The object's name.")
            var key: String

            func run() throws {
                var session = try DaemonSession(daemon)
                _ = try session.call("object.rm", ["pool": .string(pool), "key": .string(key)])
            }
        }
    }
}

/// Whole-file reads and writes for object bytes (stdin/stdout when the path is `-`/absent).
enum LocalFile {
    struct Failure: Error {
        var message: String
    }

    static func read(_ path: String, limit: Int) throws -> [UInt8] {
        let fd: Int32 = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(message: "cannot open '\(path)': \(String(cString: strerror(errno)))") }
        defer { if path != "-" { close(fd) } }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(message: "cannot read '\(path)': \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            bytes += chunk[0..<count]
            if bytes.count > limit {
                throw Failure(message: "'\(path)' is larger than \(limit) bytes (16 MiB), the largest object")
            }
        }
        return bytes
    }

    static func write(_ bytes: [UInt8], to path: String?) throws {
        let fd: Int32 = path.map { open($0, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) } ?? 1
        guard fd >= 0 else { throw Failure(message: "cannot create '\(path ?? "-")': \(String(cString: strerror(errno)))") }
        defer { if path != nil { close(fd) } }
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(message: "cannot write '\(path ?? "standard output")': \(String(cString: strerror(errno)))")
            }
            offset += count
        }
    }
}
