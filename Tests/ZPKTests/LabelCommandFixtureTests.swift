import Foundation
import Testing
import ZFSFormat
import ZFSTestSupport

@testable import ZPKCLI

/// `zpk label` on devices built from the real 2.1.11 fixture label, against zdb's saved output.
@Suite(.offTheCooperativePool, .serialized) struct LabelCommandFixtureTests {
    init() {
        // zdb prints uberblock times with localtime(); the saved outputs were made in UTC.
        useUTCForLocalTime()
    }

    /// A 128 MiB sparse file with the fixture label at all four label offsets: the same bytes
    /// zdb saw on the original device, whose four labels were identical.
    static func rebuiltDevice(in directory: URL) throws -> String {
        let label = try Fixtures.bytes("label0-raidz-leaf.bin")
        let path = directory.appendingPathComponent("leaf.img").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.truncate(atOffset: 128 << 20)
        for offset in DeviceLabelsOffsets.fullSize {
            try handle.seek(toOffset: offset)
            try handle.write(contentsOf: Data(label))
        }
        return path
    }

    enum DeviceLabelsOffsets {
        static let fullSize: [UInt64] = [0, 0x40000, 0x7F8_0000, 0x7FC_0000]
    }

    @Test func uberblocksOfRebuiltDeviceMatchSavedZdbOutput() throws {
        try withScratchDirectory { directory in
            let path = try Self.rebuiltDevice(in: directory)
            let output = ZdbLabelDump.run(path: path, uberblocks: true)
            #expect(output.text == (try Fixtures.text("label0-raidz-leaf.zdb-lu.txt")))
            #expect(output.status == 0)
        }
    }

    @Test func quarterMegabyteFileMatchesSavedZdbOutput() throws {
        try withScratchDirectory { directory in
            let path = directory.appendingPathComponent("label0.bin").path
            try Data(Fixtures.bytes("label0-raidz-leaf.bin")).write(to: URL(fileURLWithPath: path))
            let output = ZdbLabelDump.run(path: path, uberblocks: true)
            // Labels 1 and 2 fall outside a 256 KiB file; label 3 wraps to offset 0 ("labels = 0 3").
            #expect(output.text == (try Fixtures.text("label0-raidz-leaf.zdb-lu-on-256k-file.txt")))
            #expect(output.status == 1)
        }
    }

    @Test func missingAbsolutePathIsReportedAsZdbDoes() {
        let output = ZdbLabelDump.run(path: "/nonexistent/zpk-test/device", uberblocks: false)
        #expect(output == .init(text: "cannot open '/nonexistent/zpk-test/device': No such file or directory\n", status: 1))
    }

    @Test func missingShortNameIsReportedAsZdbDoes() {
        let output = ZdbLabelDump.run(path: "zpk-no-such-device-name", uberblocks: false)
        #expect(output == .init(text: "failed to find device zpk-no-such-device-name, try specifying absolute path instead\n", status: 1))
    }

    @Test func fifoIsRefusedInsteadOfBlocking() throws {
        try withScratchDirectory { directory in
            let path = directory.appendingPathComponent("fifo").path
            #expect(mkfifo(path, 0o600) == 0)
            let output = ZdbLabelDump.run(path: path, uberblocks: false)
            #expect(output.status == 1)
            #expect(output.text.contains(path))
        }
    }

    @Test func jsonVerdictsTellCopiedLabelsFromGenuineOnes() throws {
        try withScratchDirectory { directory in
            let path = try Self.rebuiltDevice(in: directory)
            let output = LabelJSONReport.run(path: path)
            // Only label 0 sits at the offset its checksums were computed for.
            let statuses = output.text.split(separator: "\n").filter { $0.contains("\"status\"") }
            #expect(statuses.map { $0.trimmingCharacters(in: .whitespaces) } == [
                "\"status\": \"valid\",", "\"status\": \"bad-checksum\",",
                "\"status\": \"bad-checksum\",", "\"status\": \"bad-checksum\",",
            ])
            #expect(output.text.contains("\"pool_guid\": 8073999673132614431"))
            #expect(output.text.contains("\"txg\": 232"))
            #expect(output.status == 1)
        }
    }

    @Test func cacheShowMatchesSavedZdbOutput() throws {
        let output = CacheShow.run(path: Fixtures.url("zpool.cache").path, json: false)
        #expect(output == .init(stdout: try Fixtures.text("zpool.cache.zdb-C-U.txt"), stderr: "", status: 0))
        let json = CacheShow.run(path: Fixtures.url("zpool.cache").path, json: true)
        #expect(json.stdout.contains("\"pool_guid\": 8073999673132614431"))
        #expect(json.stdout.contains("\"encoding\": \"native\""))
    }

    @Test func cacheShowErrorsMatchZdb() throws {
        let missing = CacheShow.run(path: "/nonexistent/zpool.cache", json: false)
        #expect(missing == .init(stdout: "cannot open '/nonexistent/zpool.cache': No such file or directory\n", stderr: "", status: 1))
        try withScratchDirectory { directory in
            let empty = directory.appendingPathComponent("empty.cache")
            try Data().write(to: empty)
            #expect(CacheShow.run(path: empty.path, json: false) == .init(stdout: "", stderr: "failed to unpack nvlist", status: 1))
        }
    }
}

/// Runs `body` with a fresh directory under /tmp, removed afterwards.
func withScratchDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("zpk-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}

/// Uberblock times as glibc's `asctime` prints them, including the years `asctime_r` refuses.
@Suite(.offTheCooperativePool, .serialized) struct AsctimeTests {
    init() {
        useUTCForLocalTime()
    }

    @Test(arguments: [
        (UInt64(1_795_280_868), "Sat Nov 21 17:07:48 2026\n"),
        (0, "Thu Jan  1 00:00:00 1970\n"),
        // Seen in a damaged uberblock: zdb prints the five-digit year.
        (551_551_101_113, "Fri Dec 17 07:11:53 19447\n"),
        // localtime() cannot represent it: printf("%s", NULL) prints "(null)", no newline.
        (UInt64(Int64.max), "(null)"),
    ])
    func formatsLikeGlibcAsctime(seconds: UInt64, expected: String) {
        #expect(ZdbLabelDump.localAsctime(seconds) == expected)
    }
}
