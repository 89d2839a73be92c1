import Foundation
import Testing
import ZFSFormat
@testable import ZFSImport
import ZFSTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The scanner on real directories: what it reads, what it skips, and how fast.
@Suite struct ImportScannerTests {
    static let mirror = Synthetic.interior(
        type: "mirror", id: 0, guid: 10,
        children: [Synthetic.leaf(id: 0, guid: 11, path: "/old/a"), Synthetic.leaf(id: 1, guid: 12, path: "/old/b")])

    /// Makes a directory with a two-way mirror pool "tank" (files a, b) and removes it after.
    private func withPoolDirectory<R>(_ body: (String) throws -> R) throws -> R {
        let temporary = try TemporaryDirectory(prefix: "scan")
        let directory = temporary.path
        try Synthetic.writeDevice(at: "\(directory)/a", config: Synthetic.label(leafGUID: 11, tree: Self.mirror))
        try Synthetic.writeDevice(at: "\(directory)/b", config: Synthetic.label(leafGUID: 12, tree: Self.mirror))
        return try withExtendedLifetime(temporary) { try body(directory) }
    }

    @Test func findsAPoolAndNotesEverythingElse() throws {
        try withPoolDirectory { directory in
            // Things that are not pool devices, each with its own note.
            _ = FileManager.default.createFile(atPath: "\(directory)/small", contents: Data(repeating: 1, count: 4096))
            try Synthetic.writeDevice(at: "\(directory)/blank", labels: [nil, nil, nil, nil])
            #expect(mkfifo("\(directory)/fifo", 0o644) == 0)
            try FileManager.default.createDirectory(atPath: "\(directory)/subdir", withIntermediateDirectories: false)
            try FileManager.default.createSymbolicLink(atPath: "\(directory)/dangling", withDestinationPath: "\(directory)/nowhere")
            try FileManager.default.createSymbolicLink(atPath: "\(directory)/link-to-a", withDestinationPath: "\(directory)/a")
            _ = FileManager.default.createFile(atPath: "\(directory)/watchdog0", contents: nil)
            let spare = Synthetic.auxLabel(state: .spare, guid: 77)
            try Synthetic.writeDevice(at: "\(directory)/spare", config: spare)

            let result = ImportScanner(options: .init(searchPaths: [directory])).scan()
            let notes = Dictionary(uniqueKeysWithValues: result.devices.map { ($0.path.split(separator: "/").last.map(String.init)!, $0) })
            #expect(notes["small"]?.note == .tooSmall(sizeInBytes: 4096))
            #expect(notes["blank"]?.note == .noLabel)
            #expect(notes["fifo"]?.note == .notADevice("a FIFO"))
            #expect(notes["subdir"]?.note == .notADevice("a directory"))
            #expect(notes["dangling"]?.note == .notADevice("a dangling symbolic link"))
            #expect(notes["watchdog0"]?.note == .skippedByName)
            #expect(notes["spare"]?.role == .spare(VdevGUID(77)))
            #expect(result.auxiliaryDevices.map(\.path) == ["\(directory)/spare"])
            #expect(result.devices.count == 10)

            #expect(result.pools.count == 1)
            let pool = try result.pool(.name("tank"))
            // The file and the symlink both carry guid 11 with four labels and order 10: the
            // tie goes to the name entry fix_paths meets first, the one processed last.
            let leafA = try #require(pool.root.leaves.first)
            let twins = ["\(directory)/a", "\(directory)/link-to-a"]
            let processedLast = result.devices.last { twins.contains($0.path) }?.path
            #expect(leafA.path == processedLast)
            #expect(pool.root.leaves[1].path == "\(directory)/b")
            #expect(pool.memberDevices.count == 3)
        }
    }

    /// The scan never writes: contents and modification times are unchanged, and it works
    /// on read-only files.
    @Test func scanningNeverWrites() throws {
        try withPoolDirectory { directory in
            let before = try ["a", "b"].map { try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\($0)")) }
            chmod("\(directory)/a", 0o444)
            var statBefore = stat()
            stat("\(directory)/a", &statBefore)
            let result = ImportScanner(options: .init(searchPaths: [directory])).scan()
            #expect(result.pools.count == 1)
            let after = try ["a", "b"].map { try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\($0)")) }
            #expect(before == after)
            var statAfter = stat()
            stat("\(directory)/a", &statAfter)
            #expect(statBefore.st_mtim.tv_sec == statAfter.st_mtim.tv_sec && statBefore.st_mtim.tv_nsec == statAfter.st_mtim.tv_nsec)
        }
    }

    @Test func searchPathsMayBeDevicesOrMissing() throws {
        try withPoolDirectory { directory in
            let result = ImportScanner(options: .init(searchPaths: ["\(directory)/a", "/nonexistent/zpk", "\(directory)/missing-file"])).scan()
            #expect(result.searchProblems.isEmpty)
            #expect(result.devices.map(\.path).contains("\(directory)/a"))
            // A search path that does not exist is skipped silently, as libzutil does.
            #expect(!result.devices.contains { $0.path.hasSuffix("missing-file") })
            let pool = try result.pool(.name("tank"))
            #expect(pool.root.leaves.map(\.presence) == [.found(path: "\(directory)/a", labelCount: 4), .notFound])
            // Search order 10 + position.
            #expect(result.devices.first { $0.path == "\(directory)/a" }?.searchOrder == 10)
        }
    }

    @Test func selectorsFilterButKeepAuxDevices() throws {
        try withPoolDirectory { directory in
            var other = Self.mirror
            other.set("guid", .uint64(50))
            try Synthetic.writeDevice(at: "\(directory)/c", config: Synthetic.label(pool: "other", poolGUID: 2000, leafGUID: 11, tree: other))
            try Synthetic.writeDevice(at: "\(directory)/spare", config: Synthetic.auxLabel(state: .spare, guid: 77))
            let byName = ImportScanner(options: .init(searchPaths: [directory], selector: .name("other"))).scan()
            #expect(byName.pools.map(\.name) == ["other"])
            #expect(byName.devices.filter { $0.note == .filteredOut }.count == 2)
            #expect(byName.auxiliaryDevices.count == 1)
            let byGUID = ImportScanner(options: .init(searchPaths: [directory], selector: .guid(PoolGUID(1000)))).scan()
            #expect(byGUID.pools.map(\.name) == ["tank"])
            let all = ImportScanner(options: .init(searchPaths: [directory])).scan()
            #expect(all.pools.count == 2)
        }
    }

    @Test func destroyedPoolsFollowThePolicy() throws {
        try withPoolDirectory { directory in
            try Synthetic.writeDevice(at: "\(directory)/d", config: Synthetic.label(pool: "gone", poolGUID: 3000, state: .destroyed, leafGUID: 30, tree: Synthetic.leaf(id: 0, guid: 30, path: "/old/d")))
            func names(_ policy: DestroyedPoolPolicy) -> [String] {
                ImportScanner(options: .init(searchPaths: [directory], destroyedPools: policy)).scan().pools.map(\.name).sorted()
            }
            #expect(names(.exclude) == ["tank"])
            #expect(names(.only) == ["gone"])
            #expect(names(.include) == ["gone", "tank"])
            #expect(ImportScanner(options: .init(searchPaths: [directory])).scan().allPools.count == 2)
        }
    }

    @Test func resultsDoNotDependOnConcurrency() async throws {
        let temporary = try TemporaryDirectory(prefix: "scan-many")
        let directory = temporary.path
        defer { withExtendedLifetime(temporary) {} }
        // 8 single-file pools and a mirror split over 2 files.
        for i in 0..<8 {
            let leaf = Synthetic.leaf(id: 0, guid: UInt64(100 + i), path: "/old/p\(i)")
            try Synthetic.writeDevice(at: "\(directory)/p\(i)", config: Synthetic.label(pool: "p\(i)", poolGUID: UInt64(10 + i), leafGUID: UInt64(100 + i), tree: leaf))
        }
        try Synthetic.writeDevice(at: "\(directory)/a", config: Synthetic.label(leafGUID: 11, tree: Self.mirror))
        try Synthetic.writeDevice(at: "\(directory)/b", config: Synthetic.label(leafGUID: 12, tree: Self.mirror))
        // In an async context `scan()` is the async overload; the blocking one runs here on
        // purpose, from a synchronous helper.
        func blockingScan(_ options: ImportScanner.Options) -> ScanResult { ImportScanner(options: options).scan() }
        let serial = blockingScan(.init(searchPaths: [directory], concurrency: 1))
        let parallel = blockingScan(.init(searchPaths: [directory], concurrency: 16))
        let asynchronous = await ImportScanner(options: .init(searchPaths: [directory])).scan()
        #expect(serial.pools.count == 9)
        for other in [parallel, asynchronous] {
            #expect(other.pools.map(\.guid) == serial.pools.map(\.guid))
            #expect(other.pools.map(\.config) == serial.pools.map(\.config))
            #expect(other.devices.map(\.path) == serial.devices.map(\.path))
        }
    }

    /// 10 000 irrelevant files next to a pool: each costs one `stat`, none is opened.
    @Test func tenThousandIrrelevantFilesAreCheap() throws {
        try withPoolDirectory { directory in
            for i in 0..<10_000 {
                let fd = open("\(directory)/junk\(i)", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
                if fd >= 0 { close(fd) }
            }
            let clock = ContinuousClock()
            var result: ScanResult?
            let elapsed = clock.measure { result = ImportScanner(options: .init(searchPaths: [directory])).scan() }
            #expect(result?.pools.count == 1)
            #expect(result?.devices.count == 10_002)
            #expect(result?.devices.filter { $0.probe != nil }.count == 2)
            // What makes it cheap: none of them is opened or read (probe == nil above). The scan
            // takes ~0.1 s here when the machine is idle; the bound only catches gross
            // regressions on a loaded CI machine.
            #expect(elapsed < .seconds(20), "10 000 small files took \(elapsed)")
        }
    }

    @Test func pathHelpers() {
        #expect(ImportScanner.split("/a/b/c").directory == "/a/b")
        #expect(ImportScanner.split("/a/b/c").name == "c")
        #expect(ImportScanner.split("/c") == ("/", "c"))
        #expect(ImportScanner.split("c") == (".", "c"))
        #expect(ImportScanner.isWatchdog("watchdog") && ImportScanner.isWatchdog("watchdog1"))
        #expect(!ImportScanner.isWatchdog("watchdogs") && !ImportScanner.isWatchdog("mywatchdog"))
        #expect(ImportScanner.defaultSearchPaths.first == "/dev/disk/by-vdev")
        #expect(ImportScanner.defaultSearchPaths.last == "/dev")
    }
}
