// kill -9 of zpkd at random moments while a writer puts and syncs: after every restart the
// pool reopens from the cache file, every object covered by a completed `zpk sync` reads back
// intact, and an object that reads back at all has exactly the bytes put (none half-written).
// ZPK_SOAK_ITERATIONS=200 makes it the full soak (scripts/soak-zpkd-kill9); CI runs a few.

import Foundation
import Synchronization
import Testing
import ZFSTestSupport
import ZPKDaemon
import ZPKControl

#if canImport(Glibc)
import Glibc
#endif

@Suite(.offTheCooperativePool, .serialized) struct KillTests {
    static var iterations: Int {
        ProcessInfo.processInfo.environment["ZPK_SOAK_ITERATIONS"].flatMap(Int.init) ?? 4
    }

    @Test func killedDaemonLosesNothingThatWasSynced() throws {
        let workspace = try Workspace("zpkd-kill")
        try workspace.devices(["d1", "d2"])
        var daemon = try workspace.startDaemon()
        #expect(try workspace.zpk(["create", "tank", "mirror", "\(workspace.path)/d1", "\(workspace.path)/d2"]).status == 0)
        var generator = SystemRandomNumberGenerator()
        var synced: [String: [UInt8]] = [:]  // covered by a completed sync
        var written: [String: [UInt8]] = [:]  // every put that was sent
        var kills = 0
        for iteration in 0..<Self.iterations {
            let pid = daemon.process.processIdentifier
            let delay = UInt32.random(in: 20_000...400_000, using: &generator)
            let killer = Thread {
                usleep(delay)
                kill(pid, SIGKILL)
            }
            killer.start()
            var pending: [String: [UInt8]] = [:]
            writing: for step in 0..<1_000 {
                let key = "i\(iteration)-\(step)"
                let bytes = (0..<Int.random(in: 1...150_000, using: &generator)).map { _ in
                    UInt8.random(in: 0...255, using: &generator)
                }
                let file = workspace.directory.path("payload")
                _ = FileManager.default.createFile(atPath: file, contents: Data(bytes))
                written[key] = bytes
                guard try workspace.zpk(["object", "put", "tank", key, file]).status == 0 else { break writing }
                pending[key] = bytes
                if step % 3 == 2 {
                    guard try workspace.zpk(["sync", "tank"]).status == 0 else { break writing }
                    synced.merge(pending) { _, new in new }
                    pending = [:]
                }
            }
            #expect(daemon.stop() == 128 + SIGKILL, "iteration \(iteration): the killer thread ends the daemon")
            kills += 1
            daemon = try workspace.startDaemon()
            #expect(daemon.waitUntilLogged("pool opened from cache file"), "iteration \(iteration)")
            let listing = try workspace.zpk(["object", "ls", "tank", "--json"])
            #expect(listing.status == 0, "iteration \(iteration): \(listing)")
            let present = try JSON.decode(listing.stdout)["objects"]?.arrayValue?.compactMap { $0["key"]?.stringValue } ?? []
            for key in synced.keys {
                #expect(present.contains(key), "iteration \(iteration): synced object \(key) is missing")
            }
            for key in present {
                let got = try workspace.zpk(["object", "get", "tank", key]).stdout
                #expect(got == written[key], "iteration \(iteration): object \(key) does not read back as put")
            }
        }
        #expect(kills == Self.iterations)
        #expect(daemon.stop() == 0)
    }
}
