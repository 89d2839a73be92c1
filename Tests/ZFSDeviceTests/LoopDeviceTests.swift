import Foundation
import Glibc
import Testing
import ZFSTestSupport
import ZFSDevice

/// A real block device: a temporary file attached to a loop device with `losetup`.
///
/// This needs root, `/dev/loop-control` and losetup (true on the development machines and in CI;
/// scripts/install-openzfs installs losetup's package). It never skips: where one is missing,
/// every test fails with ``LoopDevice/requireUsable()``'s message naming it.
@Suite("FileBlockDevice on a loop device", .offTheCooperativePool, .timeLimit(.minutes(1)))
struct LoopDeviceTests {
    @Test func sizeComesFromTheKernelNotStSize() throws {
        try withTemporaryDirectory { directory in
            let backing = "\(directory)/backing.img"
            // Not a multiple of 512: the loop device rounds down to whole sectors.
            try makeSparseFile(at: backing, size: 5 * 1024 * 1024 + 100)
            let loop = try LoopDevice(attaching: backing)
            defer { loop.detach() }

            let device = try FileBlockDevice(path: loop.path, mode: .readWrite)
            defer { try? device.close() }
            #expect(device.isBlockDevice)
            #expect(device.sizeInBytes == 5 * 1024 * 1024)  // BLKGETSIZE64; st_size of the node is 0
            #expect(try FileManager.default.attributesOfItem(atPath: loop.path)[.size] as? UInt64 == 0)

            let last = patternBytes(count: 512, seed: 9)
            try device.write(last, atAbsoluteOffset: device.sizeInBytes - 512)
            try device.flush()
            #expect(try device.read(count: 512, atAbsoluteOffset: device.sizeInBytes - 512) == last)
            #expect(Array(try contentsOfFile(at: backing)[(5 * 1024 * 1024 - 512)..<(5 * 1024 * 1024)]) == last)

            let error = #expect(throws: DeviceError.self) {
                try device.read(count: 1024, atAbsoluteOffset: device.sizeInBytes - 512)
            }
            #expect(error?.code == .shortRead)
            #expect(
                error?.message
                    == "cannot read 1024 bytes at offset 0x4ffe00 of \(loop.path): only 512 bytes remain (the device is 5242880 bytes)"
            )
            let pastEnd = #expect(throws: DeviceError.self) {
                try device.write(last, atAbsoluteOffset: device.sizeInBytes - 256)
            }
            #expect(pastEnd?.code == .outOfRange)
        }
    }

    /// Two loop devices over one file stand in for two hosts that see one shared disk: each has
    /// its own page cache. Host B caches a block, host A writes a heartbeat there uncached; B's
    /// uncached read must see it (a buffered read may return B's stale copy — the split-brain
    /// bug), and A's write must be on the shared medium at once (no writeback, no flush).
    @Test func uncachedIOSeesTheOtherHostsWritesOnASharedDisk() throws {
        try withSharedDisk { backing, loopA, loopB in

            let hostA = try FileBlockDevice(path: loopA.path, mode: .readWrite)
            defer { try? hostA.close() }
            let hostB = try FileBlockDevice(path: loopB.path, mode: .readOnly)
            defer { try? hostB.close() }
            let slot: UInt64 = 0x3fc00  // label 0's MMP slot at ashift 10
            let before = try hostB.read(count: 1024, atAbsoluteOffset: slot)  // now in B's page cache
            #expect(before == [UInt8](repeating: 0, count: 1024))

            let heartbeat = patternBytes(count: 1024, seed: 42)
            try hostA.uncached.write(heartbeat, atAbsoluteOffset: slot)
            #expect(hostA.uncachedPath == .direct(logicalBlockSize: 512))
            #expect(try hostB.uncached.read(count: 1024, atAbsoluteOffset: slot) == heartbeat)
            #expect(hostB.uncachedPath == .direct(logicalBlockSize: 512))
            #expect(Array(try contentsOfFile(at: backing)[Int(slot)..<Int(slot) + 1024]) == heartbeat)

            // Unaligned uncached I/O on a real block device: read-modify-write of the edges.
            try hostA.uncached.write([1, 2, 3], atAbsoluteOffset: slot + 1)
            var expected = heartbeat
            expected.replaceSubrange(1..<4, with: [1, 2, 3])
            #expect(try hostB.uncached.read(count: 1024, atAbsoluteOffset: slot) == expected)
        }
    }

    /// Opening a block device drops this host's cached pages of it, so that an import's ordinary
    /// (buffered) reads of labels, uberblocks and the MOS see what another host wrote since.
    @Test func openingABlockDeviceDropsItsStaleCachedPages() throws {
        try withSharedDisk { _, loopA, loopB in
            let hostA = try FileBlockDevice(path: loopA.path, mode: .readWrite)
            defer { try? hostA.close() }
            let block: UInt64 = 0x20000
            let earlier = try FileBlockDevice(path: loopB.path, mode: .readOnly)
            #expect(try earlier.read(count: 4096, atAbsoluteOffset: block) == [UInt8](repeating: 0, count: 4096))
            let written = patternBytes(count: 4096, seed: 7)
            try hostA.uncached.write(written, atAbsoluteOffset: block)
            // The premise: B's page cache still holds the old block.
            #expect(try earlier.read(count: 4096, atAbsoluteOffset: block) == [UInt8](repeating: 0, count: 4096))
            // A new open (an import) reads the disk, though B still has the device open (the
            // kernel drops a block device's cache itself only at its last close).
            let reopened = try FileBlockDevice(path: loopB.path, mode: .readOnly)
            defer { try? reopened.close() }
            #expect(try reopened.read(count: 4096, atAbsoluteOffset: block) == written)
            try earlier.close()
        }
    }
}

/// Two loop devices over one 4 MiB file: two hosts that see one shared disk, each with its
/// own page cache. `body` gets the file's path and the two devices.
func withSharedDisk(_ body: (String, LoopDevice, LoopDevice) throws -> Void) throws {
    try withTemporaryDirectory { directory in
        let backing = "\(directory)/shared.img"
        try makeSparseFile(at: backing, size: 4 * 1024 * 1024)
        let loopA = try LoopDevice(attaching: backing)
        defer { loopA.detach() }
        let loopB = try LoopDevice(attaching: backing)
        defer { loopB.detach() }
        try body(backing, loopA, loopB)
    }
}

/// A loop device attached with `losetup --find --show`, detached with `losetup --detach`.
struct LoopDevice {
    let path: String

    static let losetup: String? = ["/usr/sbin/losetup", "/sbin/losetup", "/usr/bin/losetup"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Throws, naming what is missing, unless loop devices can be attached here.
    static func requireUsable() throws {
        var missing: [String] = []
        if geteuid() != 0 { missing.append("root (euid is \(geteuid()))") }
        if losetup == nil { missing.append("losetup (in /usr/sbin, /sbin or /usr/bin; Debian package 'mount')") }
        if !FileManager.default.fileExists(atPath: "/dev/loop-control") { missing.append("/dev/loop-control") }
        guard missing.isEmpty else {
            throw CocoaError(
                .executableLoad,
                userInfo: [NSLocalizedDescriptionKey: "loop-device tests need " + missing.joined(separator: ", ")])
        }
    }

    init(attaching file: String) throws {
        try Self.requireUsable()
        let output = try Self.run(["--find", "--show", file])
        path = output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func detach() {
        _ = try? Self.run(["--detach", path])
    }

    private static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: losetup ?? "/usr/sbin/losetup")
        process.arguments = arguments
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr  // losetup warns about the deliberately odd file size
        try process.run()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        let diagnostics = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let reason = String(decoding: diagnostics, as: UTF8.self)
            throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "losetup \(arguments) failed: \(reason)"])
        }
        return String(decoding: data, as: UTF8.self)
    }
}
