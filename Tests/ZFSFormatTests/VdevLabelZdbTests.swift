import Foundation
import Testing
import ZFSFormat
import ZFSTestSupport

/// End to end with the real OpenZFS 2.1.11 `zdb`: labels we encode, placed at the four offsets of
/// a sparse device file, must read back in `zdb -lu` as one config and the uberblocks we wrote,
/// each found in all four labels.
///
/// zdb does not verify embedded checksums (the other suites do that against OpenZFS's bytes); it
/// checks the placement of the labels, the config area, the slot layout and — because labels 1
/// and 3 are written big-endian here — that a byte-swapped uberblock reads as the same one.
@Suite(.offTheCooperativePool) struct VdevLabelZdbTests {
    static let zdbPath = "/usr/sbin/zdb"

    @Test func zdbReadsLabelsAndUberblocksWeWrote() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.zdbPath) else {
            Issue.record(
                "\(Self.zdbPath) is missing: run scripts/install-openzfs (as root) to install the OpenZFS 2.1.11 userland that this test compares against")
            return
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zpk-zdb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(at: directory) }

        // A 64 MiB sparse leaf (SPA_MINDEVSIZE), holding the fixture's config and ten syncs.
        let deviceSize: UInt64 = 64 << 20
        let device = directory.appendingPathComponent("leaf")
        #expect(FileManager.default.createFile(atPath: device.path, contents: nil))
        let layout = UberblockRing(ashift: LabelFixture.ashift)
        let uberblocks = try (300...309).map { try LabelFixture.sampleUberblock(txg: $0, timestamp: 1_795_300_000 + $0 / 4) }
        let handle = try FileHandle(forWritingTo: device)
        try handle.truncate(atOffset: deviceSize)
        for index in 0..<LabelLayout.labelCount {
            let bytes = try VdevLabel.encode(
                configPacked: LabelFixture.packedConfig(),
                ring: .synced(uberblocks, layout: layout, multihost: false),
                labelIndex: index, deviceSize: deviceSize, byteOrder: index % 2 == 0 ? .little : .big)
            try handle.seek(toOffset: try #require(LabelLayout.labelOffset(index: index, deviceSize: deviceSize)))
            try handle.write(contentsOf: Data(bytes))
        }
        try handle.close()

        let (status, output) = try Self.run(Self.zdbPath, ["-lu", device.path])
        #expect(status == 0, "zdb -lu exited with \(status):\n\(output)")
        #expect(!output.contains("failed"), "\(output)")

        // The config, printed once, found in all four labels, as zdb printed it for the real device.
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        let configEnd = try #require(lines.firstIndex { $0.hasPrefix("    labels = ") }, "\(output)")
        #expect(lines[configEnd] == "    labels = 0 1 2 3 ")
        let reference = try Fixtures.text("label0-raidz-leaf.zdb-lu.txt").split(separator: "\n", omittingEmptySubsequences: false)
        let referenceEnd = try #require(reference.firstIndex { $0.hasPrefix("    labels = ") })
        #expect(Array(lines[..<configEnd]) == Array(reference[..<referenceEnd]))

        // Every uberblock we wrote, in its sync slot, in labels 0 1 2 3, and nothing else.
        let printed = LabelFixture.zdbUberblocks(output)
        #expect(printed.map(\.slot) == uberblocks.map { layout.syncSlotIndex(for: $0.txg, multihost: false) })
        for (entry, ub) in zip(printed, uberblocks) {
            #expect(entry.fields["magic"] == "0000000000bab10c")
            #expect(entry.fields["txg"] == String(ub.txg.rawValue))
            #expect(entry.fields["guid_sum"] == String(ub.guidSum))
            #expect(entry.fields["timestamp"]?.hasPrefix("\(ub.timestampInSeconds) UTC") == true)
            #expect(entry.fields["version"] == "5000")
            #expect(entry.fields["mmp_magic"] == "00000000a11cea11")
            #expect(entry.labels == "0 1 2 3", "Uberblock[\(entry.slot)]")
        }
    }

    /// The kernel import path (libzpool inside `zdb -e`) *does* verify label and slot checksums.
    /// A real pool image's four labels, re-sealed big-endian by us, must still import and yield
    /// the same best uberblock; the same labels sealed for the wrong offsets must not.
    @Test func kernelImportPathAcceptsOurBigEndianLabels() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.zdbPath),
            FileManager.default.isExecutableFile(atPath: Self.bzip2Path)
        else {
            Issue.record(
                "\(Self.zdbPath) or \(Self.bzip2Path) is missing: run scripts/install-openzfs (as root) to install the OpenZFS 2.1.11 userland that this test compares against")
            return
        }
        let pool = "unclean_export"
        let compressed = Fixtures.url("openzfs-images/\(pool).dat.bz2").path
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zpk-import-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(at: directory) }
        let device = directory.appendingPathComponent("\(pool).dat")

        let (unpacked, unpackOutput) = try Self.run(Self.bzip2Path, ["-dk", "-c", compressed], output: device)
        try #require(unpacked == 0, "bzip2 failed: \(unpackOutput)")
        let deviceSize = try #require(try FileManager.default.attributesOfItem(atPath: device.path)[.size] as? NSNumber).uint64Value
        let original = try Self.importedUberblock(pool: pool, directory: directory)
        #expect(original.contains("txg = 5"), "\(original)")

        // Decode the four labels as written by OpenZFS (little-endian).
        let handle = try FileHandle(forUpdating: device)
        defer { try? handle.close() }
        var labels: [(offset: UInt64, label: VdevLabel)] = []
        for index in 0..<LabelLayout.labelCount {
            let offset = try #require(LabelLayout.labelOffset(index: index, deviceSize: deviceSize))
            try handle.seek(toOffset: offset)
            let bytes = [UInt8](try #require(try handle.read(upToCount: VdevLabel.byteCount)))
            let label = try VdevLabel(decoding: bytes, absoluteOffset: offset, index: index)
            #expect(label.configChecksum == .valid(byteOrder: .little))
            #expect(label.bootEnvironmentChecksum == .valid(byteOrder: .little))
            let usable = label.uberblockSlots(ashift: 9).filter(\.isUsable)
            #expect(usable.compactMap(\.uberblock?.txg) == [TXG(4), TXG(5)])
            #expect(usable.allSatisfy { $0.uberblock?.isMMPValid == false })  // written before MMP existed
            labels.append((offset, label))
        }

        func reseal(_ label: VdevLabel, at sealOffset: UInt64, byteOrder: Endianness) throws -> [UInt8] {
            // Keep the ring as found (including the stale slots of its initialisation), and
            // rewrite every usable slot in the requested byte order.
            let layout = UberblockRing(ashift: 9)
            var ring = Array(label.ringBytes)
            for slot in label.uberblockSlots(ring: layout) where slot.isUsable {
                try layout.write(
                    try #require(slot.uberblock), slot: slot.index, into: &ring, labelOffset: sealOffset, byteOrder: byteOrder)
            }
            return try VdevLabel.encode(
                configPacked: Array(label.configBytes), bootEnvironment: label.bootEnvironment, ring: .encoded(ring),
                labelOffset: sealOffset, byteOrder: byteOrder)
        }

        // Resealed little-endian, the labels are exactly what OpenZFS wrote.
        for (offset, label) in labels {
            #expect(try reseal(label, at: offset, byteOrder: .little) == label.bytes)
        }

        // Sealed for the wrong offsets: the kernel must refuse every label and uberblock.
        for (index, (offset, label)) in labels.enumerated() {
            try handle.seek(toOffset: offset)
            try handle.write(contentsOf: Data(try reseal(label, at: labels[(index + 1) % 4].offset, byteOrder: .big)))
        }
        try handle.synchronize()
        let refused = try Self.importedUberblock(pool: pool, directory: directory)
        #expect(refused.contains("can't open 'unclean_export': No such device or address"), "\(refused)")

        // Sealed big-endian at the right offsets: imported, same best uberblock.
        for (offset, label) in labels {
            try handle.seek(toOffset: offset)
            let bytes = try reseal(label, at: offset, byteOrder: .big)
            let reread = try VdevLabel(decoding: bytes, absoluteOffset: offset, index: label.index)
            #expect(reread.configChecksum == .valid(byteOrder: .big))
            #expect(reread.uberblockSlots(ashift: 9).filter(\.isUsable).allSatisfy { $0.uberblock?.byteOrder == .big })
            try handle.write(contentsOf: Data(bytes))
        }
        try handle.synchronize()
        let resealed = try Self.importedUberblock(pool: pool, directory: directory)
        #expect(resealed == original)
    }

    static let bzip2Path = "/usr/bin/bzip2"

    /// The "Uberblock:" section `zdb -e -p DIR -u POOL` prints after importing read-only.
    static func importedUberblock(pool: String, directory: URL) throws -> String {
        let (status, output) = try run(zdbPath, ["-e", "-p", directory.path, "-u", pool])
        guard status == 0, let start = output.range(of: "Uberblock:") else {
            return "zdb -e -u exited with \(status):\n\(output)"
        }
        return String(output[start.lowerBound...])
    }

    /// Runs a program to completion; returns its exit status and stdout + stderr.
    /// With `output`, stdout goes to that file and only stderr is returned.
    static func run(_ path: String, _ arguments: [String], output: URL? = nil) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = ["TZ": "UTC", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        let pipe = Pipe()
        var file: FileHandle?
        if let output {
            guard FileManager.default.createFile(atPath: output.path, contents: nil) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: output.path])
            }
            file = try FileHandle(forWritingTo: output)
            process.standardOutput = file
        } else {
            process.standardOutput = pipe
        }
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try file?.close()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
