// The `zpk` command line: the root command and the table of exit codes.
//
// Exit codes (one table for every verb; `docs/cli.md` repeats it):
//
//   0   success
//   1   an error (the message names the device or file and the reason)
//   2   `zpk label`: no label on the device could be unpacked (zdb's status)
//   3   refused because the pool is in use on another host (zpkd's error reply says `exit: 3`)
//   64  usage error (bad arguments; usage is printed; ArgumentParser's ValidationError)
//
// The verbs that talk to zpkd print zpkd's error message on stderr and exit with the status of
// its reply (1 or 3); "cannot reach zpkd at PATH (…)" when no daemon answers is 1.

import ArgumentParser

/// `zpk`: find, inspect, import and protect OpenZFS storage pools.
public struct ZPK: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "zpk",
        abstract: "Find, inspect, import and protect OpenZFS storage pools.",
        discussion: """
            zpk reads OpenZFS's on-disk formats directly: vdev labels, uberblocks and \
            zpool.cache files. Its text output matches OpenZFS 2.1.11's own tools byte for \
            byte where they overlap (zdb -l, zdb -C); --json gives the same facts, with \
            checksum verdicts, for scripts. Reading commands never write to any device.

            The pool verbs (create, import POOL, import -a, export, destroy, add, sync, list, \
            status, get, set, object, tunable, clear, inject, history) talk to the pool host daemon zpkd over its socket: --socket PATH, else \
            $ZPK_SOCKET, else /run/zpk.sock.

            Exit status: 0 success, 1 error, 2 `zpk label` found no label, 3 the pool is in use \
            on another host, 64 usage error.

            To see multihost protection at work in one process, with no daemon: zpk demo.
            """,
        subcommands: [
            Label.self, Cache.self, Import.self, Create.self, Export.self, Destroy.self, Add.self, Sync.self,
            ListPools.self, Activity.self, StatusCommand.self, GetProperty.self, SetProperty.self, Object.self,
            Tunable.self, Clear.self, Inject.self, History.self, Demo.self,
        ]
    )

    public init() {}

    /// Parses the process's arguments, runs the command and exits with its status.
    public static func runFromCommandLine() {
        main()
    }
}

/// Writes text to standard output exactly as given (no added newline).
func emit(_ text: String) {
    print(text, terminator: "")
}

/// Writes bytes to standard output exactly as given, valid UTF-8 or not (zdb's `%s` output of a
/// damaged label). What ``emit(_:)`` buffered is flushed first, so the order is kept.
func emit(bytes: [UInt8]) {
    fflush(nil)
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
        if written < 0 && errno == EINTR { continue }
        if written <= 0 { return }
        offset += written
    }
}

/// Writes a line to standard error.
func emitError(_ text: String) {
    var stream = StandardError()
    print(text, to: &stream)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var bytes = Array(string.utf8)
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
            if written <= 0 { return }
            bytes.removeFirst(written)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
