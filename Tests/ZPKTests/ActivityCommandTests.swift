import ArgumentParser
import Foundation
import Testing
import ZFSFormat
import ZFSMultihost
import ZFSTestSupport
@testable import ZPKCLI

/// `zpk activity` without OpenZFS: errors, usage, help, the progress-line shape.
@Suite struct ActivityCommandTests {
    @Test func noSuchPoolIsExitOneWithTheReason() async throws {
        let directory = try TemporaryDirectory(prefix: "activity-empty")
        let out = await ZPK.Activity.run(searchPaths: [directory.path], cacheFile: nil, pool: "tank", json: false, environment: [:])
        #expect(out == .init(stdout: "", stderr: "cannot check 'tank': no such pool available\n", status: 1))
    }

    @Test func cacheFileAndDirectoryTogetherIsAUsageError() async {
        let out = await ZPK.Activity.run(searchPaths: ["/tmp"], cacheFile: "/nonexistent.cache", pool: "tank", json: false, environment: [:])
        #expect(out.status == ExitCode.validationFailure.rawValue)
        #expect(out.stderr == "-c is incompatible with -d: a cache file names its devices\n")
    }

    @Test func helpTeachesTheFormulaTheExitCodesAndTheEventShape() {
        let help = ZPK.helpMessage(for: ZPK.Activity.self, columns: 80).split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(help.contains("OVERVIEW: Tell whether another host is using a multihost pool now (read-only, for HA scripts)."))
        #expect(help.contains("the wait is 2 × F × I — e.g. 20 s for the defaults"))
        #expect(help.contains("0 no other host is active: the pool is importable here"))
        #expect(help.contains("3 in use on another host (its hostname, hostid, heartbeat age)"))
        #expect(help.contains("{\"event\":\"progress\",\"phase\":\"activity_check\",\"pool\":\"tank\", \"elapsed_ms\":500,\"remaining_ms\":1500,\"total_ms\":2000}"))
        #expect(help.contains("USAGE: zpk activity [-d <dir> ...] [--nbd <server> ...] [-c <cachefile>] [--json]"))
    }

    @Test func progressLineShape() {
        let p = ActivityProgress(phase: .activityCheck, elapsed: .milliseconds(500), remaining: .milliseconds(1746), total: .milliseconds(2246))
        #expect(ZPK.Activity.progressLine(p, pool: "ta\"nk") == "{\"event\":\"progress\",\"phase\":\"activity_check\",\"pool\":\"ta\\\"nk\",\"elapsed_ms\":500,\"remaining_ms\":1746,\"total_ms\":2246}")
        let c = ActivityProgress(phase: .claim, elapsed: .zero, remaining: .seconds(1), total: .seconds(1))
        #expect(ZPK.Activity.progressLine(c, pool: "t").contains("\"phase\":\"claim\""))
    }
}
