// systemd integration: the unit files as Tools/install writes them pass `systemd-analyze
// verify` (which needs no running systemd, only binaries at the ExecStart paths), zpkd tells
// $NOTIFY_SOCKET "READY=1" once its socket serves (Type=notify), and `zpkd --check-hostid`
// (ExecStartPre) refuses a host without a hostid.

import Foundation
import Testing
import ZFSTestSupport
import ZPKDaemon

#if canImport(Glibc)
import Glibc
#endif

@Suite(.offTheCooperativePool) struct SystemdTests {
    static var checkout: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func verify(_ units: [String], in directory: String) throws -> OpenZFS.ProcessOutput {
        try OpenZFS.run(
            "/usr/bin/systemd-analyze", ["verify", "--man=no"] + units.map { "./" + $0 }, currentDirectory: directory,
            timeout: .seconds(60))
    }

    @Test func installedUnitsPassSystemdAnalyzeVerify() throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze"),
            "systemd-analyze is missing: run scripts/install-ha-tools")
        let root = try TemporaryDirectory(prefix: "cluster-units")
        let bindir = URL(fileURLWithPath: try Executable.path("zpkd")).deletingLastPathComponent().path
        let installed = try OpenZFS.run(
            Self.checkout.appendingPathComponent("Tools/install").path,
            ["--prefix", root.path, "--bindir", bindir, "--unitdir", root.path("units"), "--ocfdir", root.path("ocf")],
            timeout: .seconds(60))
        try #require(installed.status == 0, "\(installed)")
        for program in ["sbin/zpk", "sbin/zpkd", "libexec/zpoolkit/zpk-wait-cache", "ocf/zpoolkit/zpk-pool"] {
            #expect(FileManager.default.isExecutableFile(atPath: root.path(program)), "\(program)")
        }
        let units = ["zpkd.service", "zpk-import-cache.service", "zpk.target"]
        let verified = try Self.verify(units, in: root.path("units"))
        #expect(verified.status == 0, "\(verified)")
        #expect(verified.stderrText.isEmpty, "no warning either: \(verified)")
        let service = try String(contentsOfFile: root.path("units/zpkd.service"), encoding: .utf8)
        #expect(service.contains("Type=notify\n"))
        #expect(service.contains("ExecStartPre=\(root.path)/sbin/zpkd --check-hostid\n"))
        #expect(service.contains("ExecStart=\(root.path)/sbin/zpkd --socket /run/zpk.sock --cachefile /etc/zpk/zpool.cache"))
        #expect(service.contains("KillSignal=SIGTERM\n"))
        let importCache = try String(contentsOfFile: root.path("units/zpk-import-cache.service"), encoding: .utf8)
        #expect(importCache.contains("Requires=zpkd.service\nAfter=zpkd.service\n"))

        // The check is real: a unit whose ExecStart binary is missing fails it.
        let broken = service.replacingOccurrences(of: "/sbin/zpkd --socket", with: "/sbin/zpkd-missing --socket")
        try broken.write(toFile: root.path("units/zpkd.service"), atomically: true, encoding: .utf8)
        let refused = try Self.verify(["zpkd.service"], in: root.path("units"))
        #expect(refused.status != 0, "\(refused)")
        #expect(refused.stderrText.contains("zpkd-missing"), "\(refused)")
    }

    @Test func zpkdNotifiesReadyOnceTheSocketServes() async throws {
        let workspace = try Workspace("cluster-notify")
        let notifyPath = workspace.directory.path("notify")
        let listener = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(listener >= 0)
        defer { close(listener) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in notifyPath.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0)
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        let daemon = try DaemonProcess(
            arguments: ["--socket", workspace.socket, "--cachefile", workspace.cacheFile, "--hostid", "1a2b3c4d"],
            log: workspace.directory.path("zpkd.log"), environment: ["NOTIFY_SOCKET": notifyPath])
        var buffer = [UInt8](repeating: 0, count: 4096)
        let received = recv(listener, &buffer, buffer.count, 0)
        try #require(received > 0, "no notification within 30 s")
        let message = String(decoding: buffer[..<received], as: UTF8.self)
        #expect(message.split(separator: "\n").contains("READY=1"), "\(message)")
        #expect(message.contains("MAINPID=\(daemon.process.processIdentifier)"), "\(message)")
        #expect(message.contains("STATUS=serving on \(workspace.socket)"), "\(message)")
        // Ready means serving.
        #expect(try workspace.zpk(["list"]).stdoutText == "no pools available\n")
        #expect(daemon.stop() == 0)
    }

    @Test func checkHostidAcceptsAHostidAndRefusesNone() throws {
        let zpkd = try Executable.path("zpkd")
        let given = try OpenZFS.run(zpkd, ["--check-hostid", "--hostid", "1a2b3c4d"], timeout: .seconds(30))
        #expect(given.status == 0, "\(given)")
        #expect(given.stdoutText == "hostid 1a2b3c4d (from --hostid)\n")
        var environment = OpenZFS.pinnedEnvironment
        environment["ZFS_HOSTID"] = "0xdeadbeef"  // strtoull(…, 0), as zpool reads it
        let fromEnvironment = try OpenZFS.run(zpkd, ["--check-hostid"], environment: environment, timeout: .seconds(30))
        #expect(fromEnvironment.stdoutText == "hostid deadbeef (from ZFS_HOSTID)\n", "\(fromEnvironment)")
        let none = try OpenZFS.run(zpkd, ["--check-hostid", "--hostid", "0"], timeout: .seconds(30))
        #expect(none.status == 1, "\(none)")
        #expect(none.stderrText.contains("this host has no hostid"), "\(none)")
        #expect(none.stderrText.contains("zgenhostid"), "\(none)")
    }
}
