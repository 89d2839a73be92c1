// NBDBlockDevice against real servers: nbdkit (file plugin, on a Unix socket; its `delay`
// filter for a stalled server, `log` for what reached it) and nbd-server (TCP on a free loopback
// port, export listing). Real time only where a timeout is the point; bounds are the timeout
// plus generous slack for a loaded 2-core machine.

import Dispatch
import Foundation
import Synchronization
import Testing
import ZFSDevice
import ZFSTestSupport

@Suite("NBD block device (real nbdkit and nbd-server)", .offTheCooperativePool, .serialized)
struct NBDBlockDeviceTests {
    static let size: UInt64 = 8 << 20

    func backingFile(_ directory: TemporaryDirectory, _ name: String = "export.img", size: UInt64 = size) throws -> String {
        let path = directory.path(name)
        guard FileManager.default.createFile(atPath: path, contents: nil), truncate(path, off_t(size)) == 0 else {
            throw DeviceError(code: .ioError, message: "cannot make \(path)", path: path)
        }
        return path
    }

    func fileBytes(_ path: String, at offset: Int, count: Int) throws -> [UInt8] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return [UInt8](data[offset..<(offset + count)])
    }

    @Test("nbdkit over a Unix socket: size, write, FUA write, flush, read back; the bytes are in the backing file")
    func roundTripOverUnixSocket() throws {
        let directory = try TemporaryDirectory(prefix: "nbd-rt")
        let file = try backingFile(directory)
        let server = try NBDTestServer.nbdkit(file: file, in: directory)
        let device = try NBDBlockDevice(uri: server.uri, mode: .readWrite)
        defer { try? device.close() }
        #expect(device.sizeInBytes == Self.size)
        #expect(device.path == server.uri)
        #expect(device.forcesUnitAccess)

        let first = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try device.write(first, atAbsoluteOffset: 12_345)
        let second = [UInt8](repeating: 0xA5, count: 4096)
        try device.writeForcingUnitAccess(second, atAbsoluteOffset: Self.size - 4096)
        try device.flush()
        #expect(try device.read(count: first.count, atAbsoluteOffset: 12_345) == first)
        #expect(try device.readUncached(into: 4096, at: Self.size - 4096) == second)
        #expect(try fileBytes(file, at: 12_345, count: first.count) == first)
        #expect(try fileBytes(file, at: Int(Self.size) - 4096, count: 4096) == second)

        // Bigger than one NBD request: split and reassembled.
        let big = (0..<(5 << 20)).map { UInt8(truncatingIfNeeded: $0 % 251) }
        try device.write(big, atAbsoluteOffset: 1 << 20)
        #expect(try device.read(count: big.count, atAbsoluteOffset: 1 << 20) == big)
    }

    @Test("a FUA write reaches the server with the FUA flag; a plain write without it (nbdkit log filter)")
    func fuaFlagReachesTheServer() throws {
        let directory = try TemporaryDirectory(prefix: "nbd-fua")
        let file = try backingFile(directory)
        let log = directory.path("requests.log")
        let server = try NBDTestServer.nbdkit(file: file, in: directory, filters: ["log"], parameters: ["logfile=\(log)"])
        let device = try NBDBlockDevice(uri: server.uri, mode: .readWrite)
        try device.write([1, 2, 3], atAbsoluteOffset: 8192)
        try device.writeForcingUnitAccess([4, 5, 6], atAbsoluteOffset: 16384)
        try device.close()
        let text = try String(contentsOfFile: log, encoding: .utf8)
        let writes = text.split(separator: "\n").filter { $0.contains(" Write id=") }
        #expect(writes.count == 2, "\(text)")
        #expect(writes.first { $0.contains("offset=0x2000") }?.contains("fua=0") == true, "\(text)")
        #expect(writes.first { $0.contains("offset=0x4000") }?.contains("fua=1") == true, "\(text)")
    }

    @Test("nbd-server over TCP: exports listed (NBD_OPT_LIST) with URIs that open them")
    func nbdServerListsAndServes() throws {
        let directory = try TemporaryDirectory(prefix: "nbd-list")
        let a = try backingFile(directory, "a.img")
        let b = try backingFile(directory, "b.img", size: 4 << 20)
        let server = try NBDTestServer.nbdServer(exports: [("alpha", a), ("beta", b)], in: directory)
        let exports = try NBDBlockDevice.listExports(server: server.server)
        #expect(exports.map(\.name).sorted() == ["alpha", "beta"])
        let beta = try #require(exports.first { $0.name == "beta" })
        #expect(beta.uri == "nbd://\(server.server)/beta")
        let device = try NBDBlockDevice(uri: beta.uri, mode: .readWrite)
        #expect(device.sizeInBytes == 4 << 20)
        try device.write([9, 8, 7, 6], atAbsoluteOffset: 100)
        try device.flush()
        #expect(try fileBytes(b, at: 100, count: 4) == [9, 8, 7, 6])
    }

    @Test("short read at the end, write past the end, write to a read-only open: typed errors naming the URI")
    func boundsAndModes() throws {
        let directory = try TemporaryDirectory(prefix: "nbd-bounds")
        let file = try backingFile(directory)
        let server = try NBDTestServer.nbdkit(file: file, in: directory)
        let device = try NBDBlockDevice(uri: server.uri, mode: .readWrite)
        let short = #expect(throws: DeviceError.self) { _ = try device.read(count: 8192, atAbsoluteOffset: Self.size - 4096) }
        #expect(short?.code == .shortRead)
        #expect(short?.message.contains(server.uri) == true)
        let past = #expect(throws: DeviceError.self) { try device.write([0], atAbsoluteOffset: Self.size) }
        #expect(past?.code == .outOfRange)
        let readOnly = try NBDBlockDevice(uri: server.uri, mode: .readOnly)
        let refused = #expect(throws: DeviceError.self) { try readOnly.write([0], atAbsoluteOffset: 0) }
        #expect(refused?.code == .readOnly)
        try device.close()
        let closed = #expect(throws: DeviceError.self) { _ = try device.read(count: 1, atAbsoluteOffset: 0) }
        #expect(closed?.code == .closed)
    }

    @Test("nothing listening: open fails with .notFound naming the URI, at once")
    func nothingListening() throws {
        let directory = try TemporaryDirectory(prefix: "nbd-none")
        let uri = "nbd+unix:///disk?socket=\(directory.path("absent.sock"))"
        let error = #expect(throws: DeviceError.self) { _ = try NBDBlockDevice(uri: uri) }
        #expect(error?.code == .notFound)
        #expect(error?.message.contains(uri) == true)
        let port = try NBDTestServer.freeLoopbackPort()
        let tcp = #expect(throws: DeviceError.self) { _ = try NBDBlockDevice(uri: "nbd://127.0.0.1:\(port)/x") }
        #expect(tcp?.code == .notFound)
    }

    @Test("a stalled server (nbdkit delay filter): the request throws .timedOut within its timeout, not a hang")
    func requestTimesOut() throws {
        let directory = try TemporaryDirectory(prefix: "nbd-delay")
        let file = try backingFile(directory)
        // Reads stall 30 s; writes do not.
        let server = try NBDTestServer.nbdkit(file: file, in: directory, filters: ["delay"], parameters: ["rdelay=30"])
        let timeout = Duration.milliseconds(500)
        let device = try NBDBlockDevice(
            uri: server.uri, mode: .readWrite, options: .init(requestTimeout: timeout, connectTimeout: .seconds(5)))
        let clock = ContinuousClock()
        let start = clock.now
        let error = #expect(throws: DeviceError.self) { _ = try device.read(count: 4096, atAbsoluteOffset: 0x3000) }
        let took = clock.now - start
        #expect(error?.code == .timedOut)
        #expect(error?.offset == 0x3000)
        #expect(error?.message.contains(server.uri) == true && error?.message.contains("0x3000") == true, "\(String(describing: error))")
        // The timeout plus slack for a loaded machine; far below the 30 s stall.
        #expect(took >= timeout && took < timeout + .seconds(5), "took \(took)")
        // The device is still usable: a write (not delayed) reconnects and lands.
        try device.write([42], atAbsoluteOffset: 0)
        #expect(try fileBytes(file, at: 0, count: 1) == [42])
    }

    @Test("server restart: requests fail while it is down, then reconnect (after the backoff) and see the data")
    func reconnectsAfterRestart() throws {
        let directory = try TemporaryDirectory(prefix: "nbd-restart")
        let file = try backingFile(directory)
        let server = try NBDTestServer.nbdkit(file: file, in: directory)
        let device = try NBDBlockDevice(
            uri: server.uri, mode: .readWrite,
            options: .init(requestTimeout: .seconds(5), backoff: .init(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(400))))
        try device.write([1, 2, 3, 4], atAbsoluteOffset: 4096)
        server.stop()
        let down = #expect(throws: DeviceError.self) { _ = try device.read(count: 4, atAbsoluteOffset: 4096) }
        #expect(down?.code == .disconnected || down?.code == .notFound, "\(String(describing: down))")
        #expect(down?.message.contains(server.uri) == true)
        try server.start()
        // The first request after the restart may meet the backoff; one of the next ones within
        // a few backoff periods reconnects.
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        var bytes: [UInt8]?
        while bytes == nil && clock.now < deadline {
            bytes = try? device.read(count: 4, atAbsoluteOffset: 4096)
            if bytes == nil { Thread.sleep(forTimeInterval: 0.05) }
        }
        #expect(bytes == [1, 2, 3, 4])
    }

    @Test("an idle connection whose server restarted is replaced within the same request")
    func idleConnectionReplacedTransparently() throws {
        let directory = try TemporaryDirectory(prefix: "nbd-idle")
        let file = try backingFile(directory)
        let server = try NBDTestServer.nbdkit(file: file, in: directory)
        let device = try NBDBlockDevice(uri: server.uri, mode: .readWrite, options: .init(connections: 1))
        try device.write([7, 7], atAbsoluteOffset: 0)
        server.stop()
        try server.start()
        // No request while it was down: the one lane's connection is dead but the backoff clean.
        #expect(try device.read(count: 2, atAbsoluteOffset: 0) == [7, 7])
    }

    /// Waits (real time, at most `seconds`) until `condition` holds; false if it never did.
    func waitUntil(seconds: Double = 20, _ condition: () -> Bool) -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int64(seconds * 1000))
        while !condition() {
            guard clock.now < deadline else { return false }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return true
    }

    @Test(
        "fence: a write handed to libnbd while the server is stalled fails at once and never lands, even after the server resumes",
        arguments: ["tcp", "unix"])
    func fenceDiscardsQueuedWrite(transport: String) throws {
        let directory = try TemporaryDirectory(prefix: "nbd-fence-\(transport)")
        let file = try backingFile(directory)
        let requests = directory.path("requests.log")
        // The log filter records each request as the server takes it (after its payload arrived),
        // and each connection's end.
        let server =
            transport == "tcp"
            ? try NBDTestServer.nbdkitTCP(file: file, in: directory, filters: ["log"], parameters: ["logfile=\(requests)"])
            : try NBDTestServer.nbdkit(file: file, in: directory, filters: ["log"], parameters: ["logfile=\(requests)"])
        let device = try NBDBlockDevice(
            uri: server.uri, mode: .readWrite, options: .init(requestTimeout: .seconds(60), connections: 1))
        defer { try? device.close() }
        server.pause()
        defer { server.resume() }
        // 4 MiB, one NBD request: far more than the server's socket can have taken in while it
        // is stopped; the rest waits in our send queue (and in libnbd).
        let payload = [UInt8](repeating: 0xAB, count: 4 << 20)
        let outcome = Mutex<DeviceError?>(nil)
        let finished = DispatchSemaphore(value: 0)
        Thread {
            do { try device.write(payload, atAbsoluteOffset: 0) } catch let error as DeviceError { outcome.withLock { $0 = error } } catch {}
            finished.signal()
        }.start()
        #expect(waitUntil { device.requestsInFlight == 1 }, "the write never reached libnbd")

        device.fence()
        #expect(device.isFenced)
        // The fence aborts the connection under the request: it fails now, not at its 60 s timeout.
        #expect(finished.wait(timeout: .now() + 20) == .success, "the write under way did not fail at the fence")
        let error = outcome.withLock { $0 }
        #expect(error?.code == .fenced, "\(String(describing: error))")
        #expect(error?.message.contains(server.uri) == true)
        // New writes and flushes are refused before anything is sent.
        let refused = #expect(throws: DeviceError.self) { try device.write([1], atAbsoluteOffset: 8192) }
        #expect(refused?.code == .fenced)
        #expect(refused?.message.contains("fenced") == true && refused?.message.contains("0x2000") == true)
        #expect(throws: DeviceError.self) { try device.flush() }

        // The server comes back: it reads whatever its socket had received, then finds the
        // connection reset or shut (the log's "Disconnect"); the write never reaches it.
        server.resume()
        #expect(
            waitUntil { ((try? String(contentsOfFile: requests, encoding: .utf8)) ?? "").contains("Disconnect") },
            "the server never saw the aborted connection end")
        let log = (try? String(contentsOfFile: requests, encoding: .utf8)) ?? ""
        #expect(!log.contains(" Write "), "the fenced write reached the server:\n\(log)")
        let landed = try fileBytes(file, at: 0, count: payload.count).filter { $0 != 0 }.count
        #expect(landed == 0, "\(landed) bytes of the fenced write landed in the backing file")

        // Reads still work while fenced (on a new connection); writes after unfence land.
        #expect(try device.read(count: 4, atAbsoluteOffset: 0) == [0, 0, 0, 0])
        device.unfence()
        try device.write([5, 6], atAbsoluteOffset: 8192)
        #expect(try fileBytes(file, at: 8192, count: 2) == [5, 6])
    }
}

extension BlockDevice {
    fileprivate func readUncached(into count: Int, at offset: UInt64) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try readUncached(into: $0, atAbsoluteOffset: offset) }
        return bytes
    }
}

@Suite("NBD reconnect backoff (virtual time)")
struct NBDReconnectBackoffTests {
    @Test("first attempt at once; each failure doubles the wait from 100 ms to the 5 s cap; success resets")
    func doublesAndCaps() {
        var backoff = NBDReconnectBackoff()
        #expect(backoff.waitBeforeAttempt(at: .seconds(7)) == .zero)
        var now = Duration.seconds(7)
        var waits: [Duration] = []
        for _ in 0..<9 {
            backoff.attemptFailed(startedAt: now)
            let wait = backoff.waitBeforeAttempt(at: now)
            waits.append(wait)
            // One tick before the end: still waiting; at the end: may attempt.
            #expect(backoff.waitBeforeAttempt(at: now + wait - .nanoseconds(1)) == .nanoseconds(1))
            now += wait
            #expect(backoff.waitBeforeAttempt(at: now) == .zero)
        }
        #expect(
            waits == [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000].map { Duration.milliseconds($0) })
        backoff.connected()
        #expect(backoff.consecutiveFailures == 0)
        #expect(backoff.waitBeforeAttempt(at: now) == .zero)
        backoff.attemptFailed(startedAt: now)
        #expect(backoff.waitBeforeAttempt(at: now) == .milliseconds(100))
    }

    @Test("a slow failure counts from when the attempt started")
    func slowFailureCountsFromItsStart() {
        var backoff = NBDReconnectBackoff(policy: .init(initialDelay: .seconds(1), maximumDelay: .seconds(8)))
        backoff.attemptFailed(startedAt: .seconds(10))
        #expect(backoff.waitBeforeAttempt(at: .seconds(10) + .milliseconds(999)) == .milliseconds(1))
        #expect(backoff.waitBeforeAttempt(at: .seconds(11)) == .zero)
    }
}

@Suite("NBD URIs")
struct NBDURITests {
    @Test func recognisedSchemes() {
        #expect(NBDBlockDevice.isNBDURI("nbd://host/export"))
        #expect(NBDBlockDevice.isNBDURI("nbd+unix:///e?socket=/tmp/s"))
        #expect(!NBDBlockDevice.isNBDURI("/dev/nbd0"))
        #expect(!NBDBlockDevice.isNBDURI("nbd.img"))
        #expect(DeviceOpener.isNetworkPath("nbds://h/e"))
    }

    @Test func exportURIs() {
        #expect(NBDBlockDevice.exportURI(server: "10.0.0.1", name: "disk0") == "nbd://10.0.0.1/disk0")
        #expect(NBDBlockDevice.exportURI(server: "h:10810", name: "a b") == "nbd://h:10810/a%20b")
        #expect(NBDBlockDevice.exportURI(server: "[::1]:10809", name: "x") == "nbd://[::1]:10809/x")
        #expect(
            NBDBlockDevice.exportURI(server: "nbd+unix:///old?socket=/tmp/s.sock", name: "new")
                == "nbd+unix:///new?socket=/tmp/s.sock")
        #expect(NBDBlockDevice.exportURI(server: "nbd://h:1/old", name: "new") == "nbd://h:1/new")
    }
}
