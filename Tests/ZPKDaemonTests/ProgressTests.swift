// A fake server (the real ControlServer with a handler table of our own) sends progress events
// before its reply; the real `zpk` renders them: JSON lines with --json, a countdown bar
// (ZPK_PROGRESS=bar stands in for a terminal), one line per phase otherwise.

import Foundation
import Testing
import ZFSTestSupport
import ZPKDaemon
import ZPKControl

@Suite(.offTheCooperativePool) struct ProgressTests {
    /// Serves `status` with three countdown events (2 s, 1 s, 0 s of 2 s), then an empty reply.
    static func withFakeServer(_ body: @escaping @Sendable (String) throws -> Void) async throws {
        let workspace = try Workspace("zpkd-fake")
        let socket = workspace.socket
        let server = try ControlServer(
            configuration: .init(
                socketPath: socket,
                handlers: [
                    "status": { _, context in
                        for remaining in [2000, 1000, 0] {
                            await context.progress(
                                phase: "activity-check", remaining: .milliseconds(remaining), total: .seconds(2))
                        }
                        return ControlReply(["pools": .array([])])
                    }
                ]))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask(executorPreference: DedicatedThreadExecutor.shared) { try await server.run() }
            defer { group.cancelAll() }
            try await onThread { try body(socket) }
        }
        withExtendedLifetime(workspace) {}
    }

    static func zpk(_ arguments: [String], socket: String, progress: String?) throws -> OpenZFS.ProcessOutput {
        var environment = OpenZFS.pinnedEnvironment
        if let progress { environment["ZPK_PROGRESS"] = progress }
        return try OpenZFS.run(
            try Executable.path("zpk"), arguments + ["--socket", socket], environment: environment, timeout: .seconds(30))
    }

    @Test func jsonLinesWithJSONOutput() async throws {
        try await Self.withFakeServer { socket in
            let output = try Self.zpk(["status", "--zpk-json"], socket: socket, progress: nil)
            #expect(output.status == 0)
            #expect(output.stdoutText == "{\n  \"pools\": []\n}\n")
            #expect(output.stderrText == """
                {"event":"progress","phase":"activity-check","remaining_ms":2000,"total_ms":2000}
                {"event":"progress","phase":"activity-check","remaining_ms":1000,"total_ms":2000}
                {"event":"progress","phase":"activity-check","remaining_ms":0,"total_ms":2000}

                """)
        }
    }

    @Test func countdownBarOnATerminal() async throws {
        try await Self.withFakeServer { socket in
            let output = try Self.zpk(["status"], socket: socket, progress: "bar")
            #expect(output.status == 0)
            #expect(output.stdoutText == "no pools available\n")
            #expect(output.stderrText == """
                \ractivity-check [------------------------------] 2.0 s left\
                \ractivity-check [###############---------------] 1.0 s left\
                \ractivity-check [##############################] 0.0 s left\n
                """)
        }
    }

    @Test func oneLinePerPhaseWhenStderrIsNotATerminal() async throws {
        try await Self.withFakeServer { socket in
            let output = try Self.zpk(["status"], socket: socket, progress: nil)
            #expect(output.status == 0)
            #expect(output.stderrText == "activity-check: 2.0 s\n")
        }
    }
}
