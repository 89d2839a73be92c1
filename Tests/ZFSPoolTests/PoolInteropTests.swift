// The issue-4 acceptance check against real OpenZFS 2.1.11: two 2-way mirrors of files, 100
// random objects up to 1 MiB, sync, export; zdb -lu reads every label and uberblock; our own
// DeviceLabels verifies every checksum; OpenZFS refuses the import for the unsupported feature
// (not as corrupt) without changing a byte; our import (ImportScanner → open) brings every
// object back.

import Foundation
import Testing
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSTestSupport

@testable import ZFSPool

@Suite(.offTheCooperativePool)
struct PoolInteropTests {
    /// OpenZFS 2.1.11 is this suite's oracle: without it every test fails, naming the missing tool.
    init() throws { try OpenZFS.requireInstalled() }

    func offThePool<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<R, any Error>) in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    /// A digest of a whole file (SipHash, seeded per process: compare only within one run).
    static func digest(_ path: String) throws -> Int {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var hasher = Hasher()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            chunk.withUnsafeBytes { hasher.combine(bytes: $0) }
        }
        return hasher.finalize()
    }

    @Test func twoMirrorsOfFilesRoundTripAndOpenZFSRefusesCleanly() async throws {
        try OpenZFS.requireInstalled()
        let files = try SparseFiles(count: 4, size: 128 << 20)
        let p = files.paths
        let directory = files.directory
        let host = PoolHost(environment: .init(hostID: 0x1234_5678, hostname: "zpk-test"))
        let pool = try await host.create(name: "zpktank", layout: [.mirror([p[0], p[1]]), .mirror([p[2], p[3]])])
        let objects = randomObjects(count: 100, maximumSize: 1 << 20, prefix: "object", seed: 2024)
        for (name, bytes) in objects { try await pool.put(name, bytes) }
        try await pool.sync()
        try await host.export("zpktank")

        // zdb reads all four labels and the uberblocks of each leaf.
        for path in p {
            let (stdout, stderr, status) = try await offThePool { try OpenZFS.zdb(["-lu", path]) }
            #expect(status == 0, "zdb -lu \(path): \(stderr)")
            // zdb prints a config or uberblock once with the labels that hold it: all four here.
            let inAllFour = stdout.components(separatedBy: "labels = 0 1 2 3").count - 1
            #expect(inAllFour >= 2, "\(path): config and newest uberblock in all four labels\n\(stdout)")
            #expect(stdout.contains("txg = 6"), "\(path): the export's uberblock")
            #expect(stdout.contains("name: 'zpktank'"))
            #expect(stdout.contains("org.zpoolkit:mos"))
            // The neighbour list (the other mirror's leaves) is an nvlist array zdb prints.
            #expect(stdout.contains("org.zpoolkit:neighbors"), "\(path): neighbour list\n\(stdout)")
            let others = path == p[0] || path == p[1] ? [p[2], p[3]] : [p[0], p[1]]
            #expect(others.allSatisfy { stdout.contains("path: '\($0)'") }, "\(path): neighbours named")
            #expect(stdout.contains("Uberblock["))
            #expect(!stdout.contains("failed to unpack"))
            let device = try FileBlockDevice(path: path)
            let labels = DeviceLabels(reading: device)
            #expect(labels.labels.allSatisfy { $0.status == .valid })
            #expect(labels.labels.allSatisfy { $0.slots.contains { $0.isUsable } })
        }

        // Real OpenZFS: refused for the feature, nothing written.
        let digests = try p.map(Self.digest)
        let tryimport = try await offThePool { try ZPKOracle.run(["tryimport", "-d", directory], timeout: .seconds(120)) }
        let listed = try ZPKOracle.parseTryImport(tryimport.stdout)
        #expect(listed.map(\.status) == ["UNSUP_FEAT_READ"], "\(tryimport.stdout)\n\(tryimport.stderr)")
        #expect(!tryimport.stdout.contains("CORRUPT"))
        let imported = try await offThePool {
            try ZPKOracle.run(["import", "zpktank", "-d", directory], timeout: .seconds(120))
        }
        #expect(imported.status == 1)
        #expect(ZPKOracle.result(imported.stdout)?["errno"] == "ENOTSUP", "\(imported.stdout)\n\(imported.stderr)")
        #expect(try p.map(Self.digest) == digests, "OpenZFS changed a byte of the leaves")

        // Our import: scan → config → open, every object intact.
        let host2 = PoolHost(environment: .init(hostID: 0x1234_5678, hostname: "zpk-test"))
        let back = try await host2.importPool("zpktank", searchPaths: [directory])
        #expect(back.status().health == "ONLINE")
        try await expectObjects(back, objects)

        // zpk add: zdb reads the new leaf's labels (three top-levels, neighbours named).
        let extra = try SparseFiles(count: 1, size: 128 << 20, prefix: "added")
        let addedPath = extra.paths[0]
        try await host2.add("zpktank", layout: [.leaf(addedPath)])
        try await host2.export("zpktank")
        let (added, addedErrors, addedStatus) = try await offThePool { try OpenZFS.zdb(["-lu", addedPath]) }
        #expect(addedStatus == 0, "zdb -lu \(addedPath): \(addedErrors)")
        #expect(added.components(separatedBy: "labels = 0 1 2 3").count - 1 >= 2, "\(added)")
        #expect(added.contains("vdev_children: 3"), "\(added)")
        #expect(p.allSatisfy { added.contains("path: '\($0)'") }, "the added leaf names the mirrors' leaves")
        #expect(!added.contains("failed to unpack"))
    }
}
