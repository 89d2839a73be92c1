// How the daemon verbs of `zpk` reach zpkd: the --socket option, one connection per command,
// error replies turned into messages and exit statuses (ZPK.swift's table), and progress events
// rendered on stderr while a request runs.

import ZFSImport
import ArgumentParser
import ZPKControl

#if canImport(Glibc)
import Glibc
#endif

/// `--socket PATH`, shared by every verb that talks to zpkd.
struct DaemonOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "zpkd's control socket (default: $ZPK_SOCKET, else \(DaemonOptions.defaultSocketPath)).",
            valueName: "path"))
    var socket: String?

    static let defaultSocketPath = "/run/zpk.sock"

    /// --socket, else `$ZPK_SOCKET`, else /run/zpk.sock.
    func socketPath(environment: [String: String] = ProcessEnvironment.current) -> String {
        if let socket { return socket }
        if let fromEnvironment = environment["ZPK_SOCKET"], !fromEnvironment.isEmpty { return fromEnvironment }
        return Self.defaultSocketPath
    }
}

/// One connection to zpkd for the life of a command.
struct DaemonSession {
    let client: ControlClient
    var progress: ProgressRenderer

    /// Connects, or prints "cannot reach zpkd at PATH (…)" and exits 1.
    init(_ options: DaemonOptions, json: Bool = false) throws {
        let path = options.socketPath()
        do {
            client = try ControlClient(socketPath: path)
        } catch {
            emitError(error.message)
            throw ExitCode(error.exitStatus)
        }
        progress = ProgressRenderer(mode: ProgressRenderer.Mode.choose(json: json, environment: ProcessEnvironment.current))
    }

    /// Sends a request; renders its progress events; on an error reply prints the message
    /// (with `hint` for its code, when given) and exits with the reply's status.
    mutating func call(
        _ operation: String, _ arguments: [String: JSON] = [:], payload: [UInt8] = [],
        hint: (String) -> String? = { _ in nil }
    ) throws -> ControlReply {
        defer {
            if let tail = progress.finish() { writeStandardError(tail) }
        }
        var renderer = progress
        do {
            let reply = try client.call(operation, arguments, payload: payload) { event in
                if let text = renderer.render(event) { writeStandardError(text) }
            }
            progress = renderer
            return reply
        } catch {
            progress = renderer
            if let tail = progress.finish() { writeStandardError(tail) }
            progress = ProgressRenderer(mode: .silent)
            var message = error.message
            if let code = error.remoteCode, let extra = hint(code) { message += "\n" + extra }
            emitError(message)
            throw ExitCode(error.exitStatus)
        }
    }
}

/// Writes text to standard error as is (no newline added).
func writeStandardError(_ text: String) {
    var stream = StandardError()
    stream.write(text)
}
