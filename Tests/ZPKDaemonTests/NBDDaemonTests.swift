// zpk and zpkd with an NBD leaf on a real nbd-server: `zpk create` takes an nbd:// path,
// `zpk label` reads the export, `zpk import --nbd HOST:PORT` lists the server's exports and
// scans them, and the imported pool serves what was put before the export.

import Foundation
import Testing
import ZFSTestSupport
import ZPKDaemon

#if canImport(Glibc)
import Glibc
#endif

@Suite(.offTheCooperativePool, .serialized) struct NBDDaemonTests {
    @Test func createLabelExportAndImportThroughTheServersExportList() throws {
        let workspace = try Workspace("zpkd-nbd")
        let local = try workspace.devices(["local"])[0]
        // The served file lives outside the workspace, so only the NBD export can find it.
        let served = try TemporaryDirectory(prefix: "zpkd-nbd-served")
        let backing = served.path("disk0.img")
        guard FileManager.default.createFile(atPath: backing, contents: nil), truncate(backing, 128 << 20) == 0 else {
            throw POSIXError(.EIO)
        }
        let server = try NBDTestServer.nbdServer(exports: [("disk0", backing)], in: served)
        let uri = server.uri
        let daemon = try workspace.startDaemon()

        #expect(try workspace.zpk(["create", "tank", "mirror", local, uri]).triple == (0, "", ""))
        let payload = workspace.directory.path("payload")
        let bytes = Data((0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try bytes.write(to: URL(fileURLWithPath: payload))
        #expect(try workspace.zpk(["object", "put", "tank", "blob", payload]).status == 0)
        let status = try workspace.zpk(["status", "tank"])
        #expect(status.stdoutText.contains(uri), "\(status.stdoutText)")
        #expect(try workspace.zpk(["export", "tank"]).status == 0)

        let label = try workspace.zpk(["label", "-u", uri])
        #expect(label.status == 0, "\(label.stderrText)")
        #expect(label.stdoutText.contains("name: 'tank'") && label.stdoutText.contains("path: '\(uri)'"))

        // The listing scans every export of the server.
        let listing = try workspace.zpk(["import", "--nbd", server.server])
        #expect(listing.status == 0, "\(listing.stderrText)")
        #expect(listing.stdoutText.contains("pool: tank"), "\(listing.stdoutText)")
        #expect(listing.stdoutText.contains(uri), "\(listing.stdoutText)")

        #expect(try workspace.zpk(["import", "--nbd", server.server, "tank"]).triple == (0, "", ""))
        #expect(try workspace.zpk(["object", "get", "tank", "blob"]).stdout == [UInt8](bytes))
        #expect(daemon.stop() == 0)

        // A server that does not answer: a clear error naming it, exit 1.
        let port = try NBDTestServer.freeLoopbackPort()
        let refused = try workspace.zpk(["import", "--nbd", "127.0.0.1:\(port)"])
        #expect(refused.status == 1)
        #expect(refused.stderrText.hasPrefix("cannot scan NBD server 127.0.0.1:\(port): "), "\(refused.stderrText)")
    }
}
