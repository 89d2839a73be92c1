// `zpk cache add` and `zpk cache remove`: in process on the OpenZFS test suite's v2 mirror
// images, and against real OpenZFS 2.1.11 on fresh ztest pools — a file zpk writes prints
// identically under `zdb -C -U` and `zpk cache show`, and zdb opens the pool from it.

import Foundation
import Testing
import ZFSFormat
import ZFSImport
import ZFSTestSupport

@testable import ZPKCLI

#if canImport(Glibc)
import Glibc
#endif

@Suite(.offTheCooperativePool) struct CacheCommandTests {
    /// The three images of `pool-v2mirror` (sparse) in `DIR/devices`, and `DIR` for cache files.
    private func withMirrorImages<R>(_ body: (_ devices: String, _ directory: String) throws -> R) throws -> R {
        let directory = try TemporaryDirectory(prefix: "cache-command")
        let devices = directory.path("devices")
        try FileManager.default.createDirectory(atPath: devices, withIntermediateDirectories: false)
        for n in 1...3 { try FixtureImages.copy("zfs-pool-v2mirror\(n).dat", to: "\(devices)/m\(n).dat") }
        return try withExtendedLifetime(directory) { try body(devices, directory.path) }
    }

    @Test func addReplaceAndRemove() throws {
        try withMirrorImages { devices, directory in
            let file = "\(directory)/zpool.cache"
            let added = CacheEdit.add(pool: "pool-v2mirror", searchPaths: [devices], cacheFile: file, environment: [:])
            #expect(added == .init(stdout: "added pool 'pool-v2mirror' (guid 18099148996036948200) to \(file)\n", stderr: "", status: 0))
            let cache = try CacheFile.read(at: file)
            #expect(cache.entries.map(\.name) == ["pool-v2mirror"])
            let config = cache.entries[0].config
            #expect(config.uint64("version") == 2)
            #expect(config.uint64("state") == 0)
            #expect(config.list("vdev_tree")?.lists("children")?.first?.lists("children")?.compactMap { $0.string("path") }
                == ["m1.dat", "m2.dat", "m3.dat"].map { "\(devices)/\($0)" })

            // By guid, again: replaced, same txg.
            let again = CacheEdit.add(pool: "18099148996036948200", searchPaths: [devices], cacheFile: file, environment: [:])
            #expect(again == .init(stdout: "replaced pool 'pool-v2mirror' (guid 18099148996036948200) in \(file): txg 12 -> 12\n", stderr: "", status: 0))
            #expect(try CacheFile.read(at: file) == cache)

            // What show prints is the file's nvlist.
            #expect(CacheShow.run(path: file, json: false).stdout == cache.nvlist.dumpText(indent: 0))

            let removed = CacheEdit.remove(pool: "pool-v2mirror", cacheFile: file)
            #expect(removed == .init(stdout: "removed pool 'pool-v2mirror' (guid 18099148996036948200) from \(file); no pool remains, so the file was removed\n", stderr: "", status: 0))
            #expect(access(file, F_OK) != 0)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["devices"])
        }
    }

    @Test func errorsNameTheFileAndTheReason() throws {
        try withMirrorImages { devices, directory in
            let file = "\(directory)/zpool.cache"
            #expect(
                CacheEdit.add(pool: "tank", searchPaths: [devices], cacheFile: file, environment: [:])
                    == .init(stdout: "", stderr: "cannot import 'tank': no such pool available\n", status: 1))
            #expect(
                CacheEdit.add(pool: "pool-v2mirror", searchPaths: [devices], cacheFile: "/nonexistent-zpk/zpool.cache", environment: [:])
                    == .init(
                        stdout: "",
                        stderr: "cannot add pool 'pool-v2mirror' to cache file: cannot write cache file '/nonexistent-zpk/zpool.cache': directory '/nonexistent-zpk' does not exist; create it (mkdir -p /nonexistent-zpk) or choose another file\n",
                        status: 1))
            #expect(
                CacheEdit.remove(pool: "tank", cacheFile: file)
                    == .init(stdout: "", stderr: "cannot remove pool 'tank' from cache file: cache file '\(file)' has no pool 'tank'; it lists no pools\n", status: 1))
            #expect(FileManager.default.createFile(atPath: file, contents: Data("junk".utf8)))
            let corrupt = CacheEdit.remove(pool: "tank", cacheFile: file)
            #expect(corrupt.status == 1)
            #expect(corrupt.stderr.hasPrefix("cannot remove pool 'tank' from cache file: invalid or corrupt cache file contents in '\(file)': "))
            #expect(FileManager.default.contents(atPath: file) == Data("junk".utf8))
            #expect(access(file, F_OK) == 0)
        }
    }

    /// `zpk import -c`: the pools of the file with their devices' labels; `-d` is refused.
    @Test func importFromACacheFile() throws {
        try withMirrorImages { devices, directory in
            let file = "\(directory)/zpool.cache"
            #expect(CacheEdit.add(pool: "pool-v2mirror", searchPaths: [devices], cacheFile: file, environment: [:]).status == 0)
            let result = try ZPK.Import.scanCacheFile(file, searchPaths: [], selector: nil, destroyed: false).get()
            let pool = try #require(result.pools.first)
            #expect(result.pools.count == 1)
            #expect(pool.guid == PoolGUID(18_099_148_996_036_948_200))
            #expect(pool.memberDevices.count == 3)
            #expect(pool.notes == [])
            // The command: the listing of the colleague's health pass, over the cache file's pools.
            let listed = ZPK.Import.run(searchPaths: [], destroyed: false, config: nil, environment: [:], cacheFile: file)
            #expect(listed.status == 0, "\(listed)")
            #expect(listed.stdout.hasPrefix("   pool: pool-v2mirror\n     id: 18099148996036948200\n"), "\(listed)")
            for n in 1...3 { #expect(listed.stdout.contains("\(devices)/m\(n).dat")) }
            #expect(
                ZPK.Import.run(searchPaths: [devices], destroyed: false, config: nil, environment: [:], cacheFile: file)
                    == .init(stdout: "", stderr: "-c is incompatible with -d: a cache file names its devices\n", status: 64))
            #expect(ZPK.Import.scanCacheFile(file, searchPaths: ["/dev"], selector: nil, destroyed: false).failureMessage
                == "-c is incompatible with -d: a cache file names its devices")
            #expect(ZPK.Import.scanCacheFile("\(directory)/none", searchPaths: [], selector: nil, destroyed: false).failureMessage
                == "cannot open cache file '\(directory)/none': No such file or directory")
        }
    }
}

/// Real processes killed with SIGKILL at random moments while they rewrite the file.
@Suite(.offTheCooperativePool) struct CacheCommandKillTests {
    /// `zpk cache add` and `zpk cache remove` alternate on one file, each process killed after a
    /// random delay (often mid-scan, sometimes mid-write): after every kill the file is absent
    /// or holds the whole pool, and never anything else. The deterministic version of this —
    /// death at every system call of an update — is CacheFileProcessDeathTests (ZFSImportTests).
    @Test func killedWritersLeaveOldOrNew() throws {
        let zpk = try ZPKExecutable.url().path
        let directory = try TemporaryDirectory(prefix: "cache-kill")
        let devices = directory.path("devices")
        try FileManager.default.createDirectory(atPath: devices, withIntermediateDirectories: false)
        try FixtureImages.copy("zfs-pool-v2mirror1.dat", to: "\(devices)/m1.dat")
        let file = directory.path("zpool.cache")
        var generator = SystemRandomNumberGenerator()
        var killed = 0
        var outcomes: [String: Int] = [:]
        for i in 0..<40 {
            let arguments = i % 2 == 0
                ? ["cache", "add", "--cachefile", file, "pool-v2mirror", "-d", devices]
                : ["cache", "remove", "--cachefile", file, "pool-v2mirror"]
            let process = Process()
            process.executableURL = URL(fileURLWithPath: zpk)
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            usleep(UInt32.random(in: 0...30_000, using: &generator))
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                killed += 1
            }
            process.waitUntilExit()
            let state: String
            do {
                let cache = try CacheFile.read(at: file)
                state = cache.entries.map(\.name) == ["pool-v2mirror"] && cache.entries[0].config.list("vdev_tree") != nil
                    ? "pool" : "unexpected \(cache.entries.map(\.name))"
            } catch let error where error.code == .notFound {
                state = "no file"
            } catch {
                state = "unreadable: \(error.message)"
            }
            #expect(state == "pool" || state == "no file", "after \(arguments[1]) #\(i)")
            outcomes[state, default: 0] += 1
        }
        // The next writer cleans up whatever a killed one left.
        _ = CacheEdit.remove(pool: "pool-v2mirror", cacheFile: file)
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(left == ["devices"] || left == ["devices", "zpool.cache"], "\(left)")
        #expect(killed > 0, "no process was killed; outcomes \(outcomes)")
        withExtendedLifetime(directory) {}
    }
}

extension Result where Failure == ZPK.Import.CacheFileFailure {
    var failureMessage: String? {
        if case .failure(let failure) = self { return failure.message }
        return nil
    }
}

@Suite(
    "zpk cache add/remove against zdb on fresh pools", .offTheCooperativePool, .serialized)
struct CacheCommandInteropTests {
    /// OpenZFS 2.1.11 is this suite's oracle: without it every test fails, naming the missing tool.
    init() throws { try OpenZFS.requireInstalled() }

    /// The real executable writes the file; zdb -C -U and zpk cache show print it identically
    /// (stdout and status), zdb opens the pool from it, and after remove both say the same.
    @Test(arguments: [
        ZTestPoolSpec(layout: .mirror(width: 3), poolName: "tank"),
        ZTestPoolSpec(layout: .raidz(parity: 2, width: 5), ashift: 12, poolName: "rz"),
    ])
    func aFileZpkWritesPrintsTheSameUnderZdb(_ spec: ZTestPoolSpec) throws {
        let directory = try TemporaryDirectory(prefix: "cache-cli")
        let pool = try OpenZFS.makePool(spec, in: directory.path)
        let zpk = try ZPKExecutable.url().path
        let file = directory.path("zpk.cache")
        func zpkRun(_ args: [String]) throws -> OpenZFS.ProcessOutput {
            try OpenZFS.run(zpk, args, environment: OpenZFS.pinnedEnvironment, timeout: .seconds(60))
        }
        let add = try zpkRun(["cache", "add", "--cachefile", file, pool.name, "-d", pool.directory])
        #expect(add.status == 0, "\(add)")
        #expect(add.stdoutText.hasPrefix("added pool '\(pool.name)' (guid "))

        let shown = try zpkRun(["cache", "show", file])
        let zdbShown = try OpenZFS.zdb(["-C", "-U", file])
        #expect(Printed(text: shown.stdoutText, status: shown.status) == Printed(text: zdbShown.stdout, status: zdbShown.status), "\(pool)")
        // OpenZFS's own file for the same pool differs only by the MOS-only ZAP keys.
        let theirs = try OpenZFS.zdb(["-C", "-U", pool.cacheFile]).stdout.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.contains("com.delphix:vdev_zap_") }.joined(separator: "\n")
        #expect(zdbShown.stdout == theirs, "\(pool)")
        let opened = try OpenZFS.zdb(["-U", file, "-C", pool.name])
        #expect(opened.status == 0 && opened.stdout.contains("MOS Configuration:"), "\(opened.stderr)")

        let remove = try zpkRun(["cache", "remove", "--cachefile", file, pool.name])
        #expect(remove.status == 0, "\(remove)")
        let goneZpk = try zpkRun(["cache", "show", file])
        let goneZdb = try OpenZFS.zdb(["-C", "-U", file])
        #expect(Printed(text: goneZpk.stdoutText, status: goneZpk.status) == Printed(text: goneZdb.stdout, status: goneZdb.status))
        #expect(goneZdb.stdout == "cannot open '\(file)': No such file or directory\n")

        let usage = try zpkRun(["cache", "remove", "--cachefile", file])
        #expect(usage.status == 64)
        #expect(usage.stderrText.hasPrefix("Error: Missing expected argument '<pool>'\n"))
        withExtendedLifetime(directory) {}
    }
}
