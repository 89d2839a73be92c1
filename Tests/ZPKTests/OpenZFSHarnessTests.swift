import Foundation
import Testing
import ZFSFormat
import ZFSTestSupport

#if canImport(Glibc)
import Glibc
#endif

// Proves the OpenZFS oracle harness (ZFSTestSupport/OpenZFS*.swift): ztest makes the pools it
// claims, zdb answers as docs/zdb-label-output.md says, and each damage helper changes zdb's
// answer the documented way. These run in CI every time; they fail (never skip) when OpenZFS
// is missing.
//
// Serialized: each ztest run keeps this 2-core machine busy for 2–15 s. Directories are
// `TemporaryDirectory` objects, not `withTemporaryDirectory { }`: this target has its own
// URL-based `withTemporaryDirectory` (LabelCommandFixtureTests.swift), which shadows ours.

/// zdb's answer as one comparable value (tuples are not Equatable, so `#expect` cannot diff them).
private struct Answer: Equatable, CustomStringConvertible {
    var stdout: String
    var stderr: String
    var status: Int32
    var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
}

private func zdb(_ args: [String], currentDirectory: String? = nil) throws -> Answer {
    let (stdout, stderr, status) = try OpenZFS.zdb(args, currentDirectory: currentDirectory)
    return Answer(stdout: stdout, stderr: stderr, status: status)
}

/// The lines of `text` that start with `prefix`.
private func lines(_ text: String, startingWith prefix: String) -> [Substring] {
    text.split(separator: "\n").filter { $0.hasPrefix(prefix) }
}

/// The indices N of the `    Uberblock[N]` headers zdb printed, in order.
private func uberblockIndices(_ text: String) -> [Int] {
    lines(text, startingWith: "    Uberblock[").compactMap { Int($0.dropFirst(14).dropLast()) }
}

@Suite(
    "OpenZFS oracle harness", .offTheCooperativePool, .serialized)
struct OpenZFSHarnessTests {
    @Test func openZFSIsInstalled() throws {
        try OpenZFS.requireInstalled()
        #expect(OpenZFS.isInstalled)
    }

    /// A program the harness starts (a server may outlive the test that started it) inherits
    /// none of the runner's descriptors: the write end of another test's pipe (Foundation's
    /// `Pipe` sets no FD_CLOEXEC) left open in it kept that test's reader waiting for EOF.
    @Test func startedProgramsInheritNoneOfOurDescriptors() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in 0...2 { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_RDWR, 0) }
        let started = OpenZFS.spawnInOwnProcessGroup("/bin/sleep", ["30"], environment: [:], actions: &actions)
        close(ends[1])
        let pid = try started.get()
        defer {
            kill(-pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        }
        // Not "only 0, 1 and 2": sleep's own start-up (setlocale) may hold a descriptor briefly.
        let ours = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(ends[0])")
        let theirs = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").map {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) ?? "?"
        }
        #expect(ours.hasPrefix("pipe:"))
        #expect(!theirs.contains(ours), "the started program holds our pipe \(ours): \(theirs)")
        // Our write end was the pipe's last: the reader sees EOF now, not when sleep exits.
        var ready = pollfd(fd: ends[0], events: Int16(POLLIN), revents: 0)
        #expect(poll(&ready, 1, 5_000) == 1 && ready.revents & Int16(POLLHUP) != 0, "no EOF on the pipe")
    }

    /// A 2-way mirror (exact mode): both leaves carry four identical labels, the cache file
    /// holds the tree, and every damage helper changes `zdb -l`/`-lu` as catalogued.
    @Test func mirrorPoolAndLabelDamage() throws {
        let directory = try TemporaryDirectory(prefix: "harness-mirror")
        defer { withExtendedLifetime(directory) {} }  // removed here, not after its last use
        let spec = ZTestPoolSpec(layout: .mirror(width: 2), poolName: "harness", hostID: 0x1234_5678)
        let pool = try OpenZFS.makePool(spec, in: directory.path)
        #expect(pool.leafDevices.map { URL(fileURLWithPath: $0).lastPathComponent } == ["harness.0a", "harness.1a"])
        #expect(pool.spareDevices.isEmpty && pool.l2cacheDevices.isEmpty)
        #expect(pool.topLevelVdevs.map(\.type) == ["mirror"])
        #expect(pool.topLevelVdevs.first?.leafPaths == pool.leafDevices)
        #expect(pool.topLevelVdevs.first?.ashift == 9)
        #expect(try VdevFile(pool.leafDevices[0]).size() == 64 << 20)

        for leaf in pool.leafDevices {
            let l = try OpenZFS.zdb(["-l", leaf])
            #expect(l.status == 0 && l.stderr.isEmpty, "\(l)")
            #expect(l.stdout.hasPrefix("------------------------------------\nLABEL 0\n------------------------------------\n"))
            #expect(l.stdout.hasSuffix("    labels = 0 1 2 3 \n"))  // one config for all four, trailing space
            #expect(l.stdout.contains("\n    name: 'harness'\n    state: 0\n"))  // ACTIVE: never exported
            #expect(l.stdout.contains("\n    hostid: 305419896\n"))  // ZFS_HOSTID=0x12345678
            #expect(l.stdout.contains("\n            path: '\(leaf)'\n"))
            let lu = try OpenZFS.zdb(["-lu", leaf])
            #expect(lu.status == 0 && lu.stderr.isEmpty)
            #expect(lu.stdout.hasPrefix(l.stdout))  // -lu = -l, then uberblocks of label 0
            let slots = uberblockIndices(lu.stdout)
            #expect(!slots.isEmpty && slots.allSatisfy { (0..<128).contains($0) } && slots == slots.sorted())
            #expect(lines(lu.stdout, startingWith: "LABEL ").count == 1)  // all identical → label 0 only
        }

        let cache = try OpenZFS.zdb(["-C", "-U", pool.cacheFile])
        #expect(cache.status == 0 && cache.stderr.isEmpty)
        #expect(cache.stdout.hasPrefix("harness:\n    version: 5000\n    name: 'harness'\n"))

        // The timestamp line is the only thing TZ changes.
        let utc = try OpenZFS.zdb(["-lu", pool.leafDevices[0]])
        var newYork = OpenZFS.pinnedEnvironment
        newYork["TZ"] = "America/New_York"
        let local = try OpenZFS.zdb(["-lu", pool.leafDevices[0]], environment: newYork)
        let utcLines = utc.stdout.split(separator: "\n"), localLines = local.stdout.split(separator: "\n")
        #expect(utcLines.count == localLines.count)
        let differing = zip(utcLines, localLines).filter { $0 != $1 }
        #expect(!differing.isEmpty && differing.allSatisfy { $0.0.hasPrefix("\ttimestamp = ") })

        let leaf = VdevFile(pool.leafDevices[0])

        // Labels 0 and 1 zeroed: "failed to unpack" for each, config from label 2.
        let front = try leaf.copy(to: directory.path("front-zeroed"))
        try front.zeroLabel(0)
        try front.zeroLabel(1)
        let frontAnswer = try OpenZFS.zdb(["-l", front.path])
        #expect(frontAnswer.status == 1)
        #expect(frontAnswer.stdout.hasPrefix("failed to unpack label 0\nfailed to unpack label 1\n------------------------------------\nLABEL 2\n"))
        #expect(frontAnswer.stdout.hasSuffix("    labels = 2 3 \n"))

        // Label 2's config replaced by random bytes: unpack fails, its uberblocks survive.
        let garbled = try leaf.copy(to: directory.path("label2-garbled"))
        var generator = OpenZFS.SeededGenerator(seed: 2)
        try garbled.fillConfig(ofLabel: 2, using: &generator)
        let garbledAnswer = try OpenZFS.zdb(["-l", garbled.path])
        #expect(garbledAnswer.status == 1)
        #expect(garbledAnswer.stdout.hasSuffix("    labels = 0 1 3 \nfailed to unpack label 2\n"))
        #expect(try leaf.read(count: 0x4000, at: try leaf.labelOffset(2) + VdevFile.uberblockRingOffset)
            == garbled.read(count: 0x4000, at: try garbled.labelOffset(2) + VdevFile.uberblockRingOffset))

        // One bit of one uberblock's txg in label 1: that copy is now unique to label 1.
        let flipped = try leaf.copy(to: directory.path("ub-flipped"))
        let slot = try #require(uberblockIndices(utc.stdout).first)
        try flipped.flipBit(0, inLabel: 1, atOffset: VdevFile.uberblockOffset(slot: slot, ashift: 9) + 16 + 3)
        let flippedAnswer = try OpenZFS.zdb(["-lu", flipped.path])
        #expect(flippedAnswer.status == 0)
        #expect(flippedAnswer.stdout.contains("------------------------------------\nLABEL 1\n------------------------------------\n    Uberblock[\(slot)]\n"))
        #expect(flippedAnswer.stdout.hasSuffix("        labels = 1 \n"))

        // Cut to its first 256 KiB: labels 1 and 2 cannot be read, label 3 is label 0 again.
        let cut = try leaf.copy(to: directory.path("first-256k"))
        try cut.truncate(to: VdevFile.labelSize)
        let cutAnswer = try OpenZFS.zdb(["-l", cut.path])
        #expect(cutAnswer.status == 1)
        #expect(cutAnswer.stdout.hasPrefix("failed to read label 1\nfailed to read label 2\n------------------------------------\nLABEL 0\n"))
        #expect(cutAnswer.stdout.hasSuffix("    labels = 0 3 \n"))

        // Every label zeroed: no config anywhere is exit status 2.
        let blank = try leaf.copy(to: directory.path("all-zeroed"))
        for label in 0..<VdevFile.labelCount { try blank.zeroLabel(label) }
        for args in [["-l"], ["-lu"]] {
            let blankAnswer = try OpenZFS.zdb(args + [blank.path])
            #expect(blankAnswer.status == 2)
            #expect(blankAnswer.stdout == (0..<4).map { "failed to unpack label \($0)\n" }.joined())
        }

        // The copies are sparse: 64 MiB files, a few MiB on disk.
        var info = stat()
        #expect(stat(blank.path, &info) == 0 && Int(info.st_blocks) * 512 < 32 << 20)
    }

    /// A dRAID leaf (ashift forced to 12, 256 MiB files): 32 uberblock slots of 4 KiB, and the
    /// catalogued quirk when label 0's config does not unpack on an ashift-12 device.
    @Test func draidPoolAndTheAshiftQuirk() throws {
        let directory = try TemporaryDirectory(prefix: "harness-draid")
        defer { withExtendedLifetime(directory) {} }  // removed here, not after its last use
        let spec = ZTestPoolSpec(layout: .draid(parity: 1, data: 3, spares: 1, children: 6), ashift: 9)
        #expect(spec.ashift == 12)
        let pool = try OpenZFS.makePool(spec, in: directory.path)
        #expect(pool.leafDevices.count == 6)
        #expect(pool.topLevelVdevs.map(\.type) == ["draid"] && pool.topLevelVdevs[0].ashift == 12)
        #expect(try VdevFile(pool.leafDevices[0]).size() == 256 << 20)

        let lu = try OpenZFS.zdb(["-lu", pool.leafDevices[0]])
        #expect(lu.status == 0)
        #expect(lu.stdout.contains("\n        type: 'draid'\n        id: 0\n"))
        #expect(lu.stdout.contains("\n        draid_ndata: 3\n        draid_nspares: 1\n"))
        let slots = uberblockIndices(lu.stdout)
        #expect(!slots.isEmpty && slots.allSatisfy { (0..<32).contains($0) })

        // Label 0's config garbled: zdb scans label 0's ring with 1 KiB slots (ashift 9, as
        // no config has been seen yet), so 4 KiB slot k is recorded as index 4k; it then
        // prints with ashift 12, so only indices 4k < 32 (k < 8) appear — showing the 4 KiB
        // slot 4k's bytes — and every other uberblock, "first seen in label 0", nowhere.
        let garbled = try VdevFile(pool.leafDevices[0]).copy(to: directory.path("draid-label0-garbled"))
        try garbled.fillConfig(ofLabel: 0)
        let quirk = try OpenZFS.zdb(["-lu", garbled.path])
        #expect(quirk.status == 1)
        let expected = slots.filter { $0 < 8 }.map { $0 * 4 }
        let firstHeader = expected.isEmpty ? "LABEL 1" : "LABEL 0"  // no slot k < 8 in use: nothing for label 0
        #expect(quirk.stdout.hasPrefix("failed to unpack label 0\n------------------------------------\n\(firstHeader)\n"))
        #expect(uberblockIndices(quirk.stdout) == expected)
        #expect(quirk.stdout.contains("------------------------------------\nLABEL 1\n"))
        #expect(quirk.stdout.hasSuffix("    labels = 1 2 3 \n"))
    }

    /// Hot spares and l2cache devices exist only in churn mode; their labels have no pool name,
    /// and an l2cache device adds the L2ARC header section.
    @Test func spareAndL2CacheDevices() throws {
        let directory = try TemporaryDirectory(prefix: "harness-aux")
        defer { withExtendedLifetime(directory) {} }  // removed here, not after its last use
        var spec = ZTestPoolSpec(layout: .single, poolName: "aux")
        spec.minimumSpares = 1
        spec.minimumL2CacheDevices = 1
        #expect(spec.needsChurn)
        let pool = try OpenZFS.makePool(spec, in: directory.path)
        #expect(pool.spareDevices.count >= 1 && pool.l2cacheDevices.count >= 1, "\(pool)")
        // The cache file never lists aux devices.
        let cache = try OpenZFS.zdb(["-C", "-U", pool.cacheFile])
        #expect(!cache.stdout.contains("spares") && !cache.stdout.contains("l2cache"))

        let spare = try OpenZFS.zdb(["-l", pool.spareDevices[0]])
        #expect(spare.status == 0)
        let spareLines = spare.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(spareLines.count == 8, "\(spare)")
        #expect(Array(spareLines.prefix(5)) == ["------------------------------------", "LABEL 0", "------------------------------------", "    version: 5000", "    state: 3"])
        #expect(spareLines.dropLast().last == "    labels = 0 1 2 3 ")
        #expect(try VdevFile(pool.spareDevices[0]).size() == 80 << 20)  // 5/4 of -s

        let l2 = try OpenZFS.zdb(["-lu", pool.l2cacheDevices[0]])
        #expect(l2.status == 0)
        #expect(l2.stdout.contains("\n    state: 4\n"))
        #expect(l2.stdout.contains("\n\ttxg = 0\n"))  // aux labels carry one txg-0 uberblock
        #expect(l2.stdout.contains("        labels = 0 1 2 3 \n------------------------------------\nL2ARC device header\n------------------------------------\n    magic: 6504978260106102853\n    version: 1\n"))

        // Header zeroed: one line, still exit 0 ("for backward compatibility").
        let noHeader = try VdevFile(pool.l2cacheDevices[0]).copy(to: directory.path("l2-no-header"))
        try noHeader.write([UInt8](repeating: 0, count: 512), at: VdevFile.l2arcHeaderOffset)
        let noHeaderAnswer = try OpenZFS.zdb(["-l", noHeader.path])
        #expect(noHeaderAnswer.status == 0)
        #expect(noHeaderAnswer.stdout.hasSuffix("    labels = 0 1 2 3 \nL2ARC device header not found\n\n"))

        // dh_lb_count (offset 208) above what the log chain holds: exit 1.
        let overCount = try VdevFile(pool.l2cacheDevices[0]).copy(to: directory.path("l2-over-count"))
        try overCount.write([5, 0, 0, 0, 0, 0, 0, 0], at: VdevFile.l2arcHeaderOffset + 208)
        let overCountAnswer = try OpenZFS.zdb(["-l", overCount.path])
        #expect(overCountAnswer.status == 1)
        #expect(overCountAnswer.stdout.contains("    lb_count_refcount: 5\n"))
    }

    /// When a churn run leaves too few spares or l2cache devices, OpenZFS's `spa_vdev_add` adds
    /// them after ztest (the pool stays as ztest left it: ACTIVE, ztest's host id). Shown here
    /// on an exact-mode pool, so the path runs every time, not only when ztest's dice say so.
    @Test func auxiliaryDevicesAddedAfterZTest() throws {
        let directory = try TemporaryDirectory(prefix: "harness-aux-add")
        defer { withExtendedLifetime(directory) {} }  // removed here, not after its last use
        let spec = ZTestPoolSpec(layout: .mirror(width: 2), poolName: "auxadd", hostID: 0x5eed_a0a0)
        let pool = try OpenZFS.makePool(spec, in: directory.path)
        #expect(pool.spareDevices.isEmpty && pool.l2cacheDevices.isEmpty && pool.devicesAddedAfterZTest.isEmpty)
        let leafBefore = try zdb(["-l", pool.memberLeafDevices[0]])

        let topped = try OpenZFS.addAuxiliaryDevices(spares: 1, l2cache: 2, to: pool)
        let expected = ["auxadd.spares.0", "auxadd.l2cache.0", "auxadd.l2cache.1"].map { "\(pool.directory)/\($0)" }
        #expect(topped.devicesAddedAfterZTest == expected)
        #expect(topped.spareDevices == [expected[0]] && topped.l2cacheDevices == Array(expected[1...]))
        #expect(try VdevFile(expected[0]).size() == 80 << 20)  // 5/4 of -s, as ztest makes them

        // The pool is still ztest's: ACTIVE, its host id, and a later txg in the leaf's labels.
        let leafAfter = try zdb(["-l", pool.memberLeafDevices[0]])
        func value(_ key: String, _ answer: Answer) -> String? { OpenZFS.labelField(key, inZdbOutput: answer.stdout) }
        #expect(value("state", leafAfter) == "0")
        #expect(value("hostid", leafAfter) == String(0x5eed_a0a0))
        #expect(value("hostid", leafAfter) == value("hostid", leafBefore))
        #expect(UInt64(value("txg", leafAfter) ?? "") ?? 0 > UInt64(value("txg", leafBefore) ?? "") ?? .max)
        // The cache devices belong to this pool, and OpenZFS still opens it.
        for cache in topped.l2cacheDevices {
            #expect(value("pool_guid", try zdb(["-l", cache])) == value("pool_guid", leafAfter))
        }
        let opened = try zdb(["-e", "-p", pool.directory, "-C", pool.name])
        #expect(opened.status == 0, "\(opened)")

        // Nothing to add: the same pool back, no oracle run.
        let again = try OpenZFS.addAuxiliaryDevices(spares: 0, l2cache: 0, to: topped)
        #expect(again.devicesAddedAfterZTest == expected && again.elapsed == topped.elapsed)
    }

    /// Things that are not devices: no ztest needed.
    @Test func oddFilesAndPaths() throws {
        let directory = try TemporaryDirectory(prefix: "harness-odd")
        defer { withExtendedLifetime(directory) {} }  // removed here, not after its last use
        let failedToRead = (0..<4).map { "failed to read label \($0)\n" }.joined()

        #expect(FileManager.default.createFile(atPath: directory.path("empty"), contents: nil))
        #expect(try zdb(["-l", directory.path("empty")]) == Answer(stdout: failedToRead, stderr: "", status: 2))
        #expect(try zdb(["-lu", directory.path]) == Answer(stdout: failedToRead, stderr: "", status: 2))  // a directory

        var generator = OpenZFS.SeededGenerator(seed: 7)
        let random = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        #expect(FileManager.default.createFile(atPath: directory.path("random"), contents: Data(random)))
        #expect(try zdb(["-l", directory.path("random")]) == Answer(stdout: (0..<4).map { "failed to unpack label \($0)\n" }.joined(), stderr: "", status: 2))

        let missing = directory.path("missing")
        #expect(try zdb(["-l", missing]) == Answer(stdout: "cannot open '\(missing)': No such file or directory\n", stderr: "", status: 1))
        #expect(try zdb(["-l", "missing"], currentDirectory: directory.path) == Answer(stdout: "failed to find device missing, try specifying absolute path instead\n", stderr: "", status: 1))

        // A relative name that exists is used as is.
        #expect(try zdb(["-l", "empty"], currentDirectory: directory.path) == Answer(stdout: failedToRead, stderr: "", status: 2))

        // zdb blocks for ever opening a FIFO nobody writes: the harness kills it.
        #expect(mkfifo(directory.path("fifo"), 0o600) == 0)
        let clock = ContinuousClock()
        let start = clock.now
        let error = #expect(throws: OpenZFSHarnessError.self) {
            try OpenZFS.zdb(["-l", directory.path("fifo")], timeout: .milliseconds(500))
        }
        #expect(error?.code == .timedOut)
        #expect(clock.now - start < .seconds(10))
    }

    /// A pool from a random spec (exact mode): every leaf has four agreeing labels. The seed is
    /// ZPK_ORACLE_SEED when set (to replay or explore), else a fixed one; it is in the comment.
    @Test func randomSpecPool() throws {
        let seed = ProcessInfo.processInfo.environment["ZPK_ORACLE_SEED"].flatMap { UInt64($0) } ?? 6  // 6: mirror2-of-raidz1x2, ashift 12
        var generator = OpenZFS.SeededGenerator(seed: seed)
        let spec = ZTestPoolSpec.random(using: &generator)
        let directory = try TemporaryDirectory(prefix: "harness-random")
        defer { withExtendedLifetime(directory) {} }
        let pool = try OpenZFS.makePool(spec, in: directory.path)
        #expect(pool.leafDevices.count == spec.layout.fileCount, "seed \(seed): \(spec)")
        #expect(pool.topLevelVdevs.map(\.type) == [spec.layout.vdevType], "seed \(seed): \(spec)")
        #expect(pool.topLevelVdevs.first?.ashift == spec.ashift, "seed \(seed): \(spec)")
        for leaf in pool.leafDevices {
            let lu = try OpenZFS.zdb(["-lu", leaf])
            #expect(lu.status == 0, "seed \(seed): \(spec): \(leaf)")
            #expect(lu.stdout.contains("\n    labels = 0 1 2 3 \n"), "seed \(seed): \(spec): \(leaf)")
            #expect(lu.stdout.contains("\n        ashift: \(spec.ashift)\n"), "seed \(seed): \(spec): \(leaf)")
        }
    }

    @Test func cacheFileOddities() throws {
        let directory = try TemporaryDirectory(prefix: "harness-cache")
        defer { withExtendedLifetime(directory) {} }  // removed here, not after its last use
        #expect(FileManager.default.createFile(atPath: directory.path("empty"), contents: nil))
        #expect(try zdb(["-C", "-U", directory.path("empty")]) == Answer(stdout: "", stderr: "failed to unpack nvlist\n", status: 1))
        let missing = directory.path("missing")
        #expect(try zdb(["-C", "-U", missing]) == Answer(stdout: "cannot open '\(missing)': No such file or directory\n", stderr: "", status: 1))
        let relative = try OpenZFS.zdb(["-C", "-U", "zpool.cache"])
        #expect(relative.status == 1 && relative.stdout.isEmpty)
        #expect(relative.stderr.hasPrefix("cachefile must be an absolute path (i.e. start with a slash)\nUsage:\tzdb "))
        // The checked-in fixture prints as saved.
        let fixture = try zdb(["-C", "-U", Fixtures.url("zpool.cache").path])
        #expect(fixture == Answer(stdout: try Fixtures.text("zpool.cache.zdb-C-U.txt"), stderr: "", status: 0))
    }
}

/// Pure parts of the harness: no OpenZFS needed.
@Suite("OpenZFS harness: specs and geometry", .offTheCooperativePool)
struct OpenZFSHarnessPureTests {
    @Test func randomSpecsAreReproducibleAndValid() throws {
        var first = OpenZFS.SeededGenerator(seed: 0x5EED)
        var second = OpenZFS.SeededGenerator(seed: 0x5EED)
        let specs = (0..<200).map { _ in ZTestPoolSpec.random(using: &first, churnProbability: 0.3) }
        #expect(specs == (0..<200).map { _ in ZTestPoolSpec.random(using: &second, churnProbability: 0.3) })
        for spec in specs {
            try spec.validate()
            let args = spec.ztestArguments(directory: "/tmp/x")
            #expect(args.contains("-M") == !spec.needsChurn, "\(spec)")
            #expect(spec.ztestEnvironment["ZDB_PATH"] == (spec.needsChurn ? "/bin/true" : nil))
        }
        #expect(Set(specs.map(\.layout.vdevType)) == ["file", "mirror", "raidz", "draid"])
        #expect(specs.contains { $0.needsChurn } && specs.contains { !$0.needsChurn })
    }

    @Test func specArgumentsFollowZtestsSyntax() throws {
        let mirrorOfRaidz = ZTestPoolSpec(layout: .mirroredRaidz(copies: 1, parity: 1, width: 3), ashift: 12)
        #expect(mirrorOfRaidz.ztestArguments(directory: "/d") == [
            "-T", "1", "-k", "0", "-f", "/d", "-p", "ztest", "-s", "67108864", "-a", "12", "-t", "1", "-d", "1",
            "-C", "special=off", "-m", "1", "-r", "3", "-R", "1", "-K", "raidz", "-v", "1", "-M",
        ])
        for bad in [
            ZTestPoolSpec(layout: .mirror(width: 1)), ZTestPoolSpec(layout: .raidz(parity: 3, width: 3)),
            ZTestPoolSpec(layout: .draid(parity: 2, data: 3, spares: 1, children: 5)),
            ZTestPoolSpec(layout: .single, vdevSizeInBytes: 32 << 20), ZTestPoolSpec(layout: .single, poolName: "1x"),
        ] {
            #expect(throws: OpenZFSHarnessError.self, "\(bad)") { try bad.validate() }
        }
    }

    @Test func topLevelVdevsOfTheFixtureCache() throws {
        let tops = OpenZFS.parseTopLevelVdevs(zdbCacheOutput: try Fixtures.text("zpool.cache.zdb-C-U.txt"))
        #expect(tops.count == 1)
        #expect(tops.first?.type == "raidz" && tops.first?.isLog == false && tops.first?.ashift == 9)
        #expect(tops.first?.leafPaths == (0..<4).map { "/tmp/specpool/ztest.\($0)a" })

        // A churned 3-way-mirror run leaves two pools in one cache file (abridged `zdb -C -U`).
        let twoPools = """
            splitp:
                version: 5000
                vdev_tree:
                    type: 'root'
                    children[0]:
                        type: 'file'
                        path: '/d/tank.0a'
                        is_log: 0
            tank:
                vdev_tree:
                    type: 'root'
                    children[0]:
                        type: 'mirror'
                        is_log: 0
                        children[0]:
                            type: 'file'
                            path: '/d/tank.1a'
                    children[1]:
                        type: 'hole'
                        is_log: 0
                    children[2]:
                        type: 'mirror'
                        alloc_bias: 'special'
                        is_log: 0
                features_for_read:
                    com.delphix:hole_birth

            """
        let tank = OpenZFS.parseTopLevelVdevs(zdbCacheOutput: twoPools, poolName: "tank")
        #expect(tank.map(\.type) == ["mirror", "hole", "mirror"])
        #expect(tank.map(\.allocationBias) == [nil, nil, "special"])
        #expect(tank.first?.leafPaths == ["/d/tank.1a"])
        #expect(OpenZFS.parseTopLevelVdevs(zdbCacheOutput: twoPools).map(\.leafPaths) == [["/d/tank.0a"]])
    }

    @Test func labelOffsetsAsZdbComputesThem() {
        let k256: UInt64 = 256 << 10
        #expect((0..<4).map { VdevFile.labelOffset($0, deviceSize: 64 << 20) }
            == [0, k256, (64 << 20) - 2 * k256, (64 << 20) - k256])
        // Rounded down to 256 KiB first.
        #expect(VdevFile.labelOffset(3, deviceSize: (64 << 20) + 300 << 10) == 64 << 20)
        // A 256 KiB file: label 2 wraps to a huge offset, label 3 is label 0.
        #expect(VdevFile.labelOffset(2, deviceSize: k256) == UInt64.max - k256 + 1)
        #expect(VdevFile.labelOffset(3, deviceSize: k256) == 0)
        // A 512 KiB file: labels 2 and 3 are labels 0 and 1.
        #expect((0..<4).map { VdevFile.labelOffset($0, deviceSize: 2 * k256) } == [0, k256, 0, k256])
        #expect(VdevFile.uberblockOffset(slot: 3, ashift: 9) == 0x20000 + 3 * 1024)
        #expect(VdevFile.uberblockOffset(slot: 3, ashift: 12) == 0x20000 + 3 * 4096)
        #expect(VdevFile.uberblockOffset(slot: 3, ashift: 16) == 0x20000 + 3 * 8192)
    }
}
