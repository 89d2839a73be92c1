import Foundation
import Logging
import Testing
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSMultihost
import ZFSTestSupport

// Our heartbeat, on disk, as real OpenZFS 2.1.11 sees it. A libzpool host ("A") crashes while
// holding a multihost pool; our `HeartbeatService` then heartbeats into the same files through a
// file-backed `HeartbeatIO` (what the ZFSPool wiring will implement), copying the best
// uberblock. Another libzpool host ("B") must find the pool ACTIVE — i.e. OpenZFS accepts our
// MMP slots (offsets, checksums, mmp_config bits, sequence/timestamp) as a live writer — and
// `zpk`'s own read-only verdict must agree. The split-brain alarm must stay quiet throughout
// (it reads every slot back before overwriting it).

/// A `HeartbeatIO` over file vdevs: label offsets from the device size, the ring geometry from
/// the label's ashift, the MMP slot = the ring's last slot, embedded checksum verified by offset.
final class FileHeartbeatIO: HeartbeatIO {
    struct Device: Sendable { var leaf: HeartbeatLeaf; var ring: UberblockRing }
    let devices: [Device]

    init(pool: PoolCandidate) throws {
        var devices: [Device] = []
        for member in pool.memberDevices {
            let device = try FileBlockDevice(path: member.path, mode: .readOnly)
            defer { try? device.close() }
            let labels = DeviceLabels(reading: device)
            let ashift = labels.labels.compactMap { $0.config?.list("vdev_tree")?.uint64("ashift") }.first ?? 9
            devices.append(Device(
                leaf: HeartbeatLeaf(guid: member.guid, path: member.path, isWritable: true),
                ring: UberblockRing(ashift: ashift)))
        }
        self.devices = devices
    }

    func heartbeatLeaves() -> [HeartbeatLeaf] { devices.map(\.leaf) }

    private func slot(_ leaf: HeartbeatLeaf, _ label: Int, _ device: FileBlockDevice) throws -> (UberblockRing, UInt64) {
        guard let d = devices.first(where: { $0.leaf.guid == leaf.guid }),
            let labelOffset = DeviceLabels.labelOffsets(deviceSize: device.sizeInBytes)[label]
        else { throw MultihostError(.ioFailed, "no label \(label) on \(leaf.path ?? "?")") }
        return (d.ring, d.ring.slotOffset(d.ring.mmpSlotIndex, labelOffset: labelOffset))
    }

    func write(uberblock: Uberblock, leaf: HeartbeatLeaf, label: Int) throws {
        let device = try FileBlockDevice(path: leaf.path ?? "", mode: .readWrite)
        defer { try? device.close() }
        let (ring, offset) = try slot(leaf, label, device)
        try device.write(uberblock.encodeSlot(in: ring, absoluteOffset: offset), atAbsoluteOffset: offset)
    }

    func readMMPSlot(leaf: HeartbeatLeaf, label: Int) throws -> MMPSlotReading? {
        let device = try FileBlockDevice(path: leaf.path ?? "", mode: .readOnly)
        defer { try? device.close() }
        let (ring, offset) = try slot(leaf, label, device)
        let bytes = try device.read(count: ring.slotByteCount, atAbsoluteOffset: offset)
        let slots = try ring.decodeSlots(bytes + [UInt8](repeating: 0, count: UberblockRing.byteCount - ring.slotByteCount), labelOffset: offset &- UInt64(ring.slotOffsetInLabel(0)))
        return MMPSlotReading(uberblock: slots.first.flatMap { $0.isUsable ? $0.uberblock : nil }, host: nil)
    }
}

@Suite(
    "our heartbeats seen by OpenZFS 2.1.11", .offTheCooperativePool, .serialized)
struct MultihostActivityHeartbeatInteropTests {
    /// OpenZFS 2.1.11 is this suite's oracle: without it every test fails, naming the missing tool.
    init() throws { try OpenZFS.requireInstalled() }

    @Test func openZFSFindsThePoolActiveWhileOurServiceHeartbeats() async throws {
        let dir = try ZPKOracle.makeTemporaryDirectory("zpk-heartbeat")
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try ZPKOracle.run(["create", "tank", "-d", dir.path, "--hostid", "11111111", "mirror", "a.img", "b.img"], timeout: .seconds(60))
        let crashed = try ZPKOracle.run([
            "hold", "tank", "-d", dir.path, "--seconds", "1", "--no-export", "--multihost", "on",
            "--interval-ms", "100", "--fail-intervals", "10", "--hostid", "11111111", "--hostname", "holder-a",
        ], timeout: .seconds(60))
        #expect(ZPKOracle.records(crashed.stdout).suffix(2).map(\.description) == ["crashed pool=tank", "result outcome=ok"], "\(crashed.stdout)")

        let scan = await ImportScanner(options: .init(searchPaths: [dir.path])).scan()
        let pool = try #require(scan.pools.first)
        let best = try #require(try PoolDevicesProbe(candidate: pool).readBestUberblock())
        let io = try FileHeartbeatIO(pool: pool)
        #expect(io.devices.count == 2)
        let service = HeartbeatService(
            configuration: .init(pool: "tank", multihost: true), io: io, lastSynced: best.uberblock,
            tunables: MultihostTunablesStore(MultihostTunables(intervalInMilliseconds: 100, failIntervals: 50)),  // 5 s: room for a loaded 2-core machine
            logger: Logger(label: "heartbeat-interop"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await service.run() }
            var landed = 0
            while landed < 4 {
                try await Task.sleep(for: .milliseconds(50))
                landed = service.history.filter { !$0.isSkip && $0.duration > .zero && $0.error == 0 }.count
            }
            // OpenZFS as host B: the tryimport's activity check sees our heartbeats.
            let tried = try ZPKOracle.run(["tryimport", "-d", dir.path, "--hostid", "22222222"], timeout: .seconds(60))
            let listed = try ZPKOracle.parseTryImport(tried.stdout)
            #expect(listed.first?.mmpState == "ACTIVE", "\(tried.stdout)\n\(tried.stderr)")
            #expect(listed.first?.action == "blocked-active")
            let forced = try ZPKOracle.run(["import", "tank", "-d", dir.path, "--hostid", "22222222", "--force"], timeout: .seconds(60))
            #expect(forced.status == 3, "\(forced.stdout)")
            // and zpk's verdict agrees
            let report = try await MultihostActivity.check(pool, localHostID: 0x2222_2222)
            #expect(report.exitStatus == 3, "\(report.lines)")
            service.stop()
            try await group.waitForAll()
        }
        #expect(service.status.suspension == nil)
        let rows = service.history
        #expect(rows.filter { !$0.isSkip }.allSatisfy { $0.error == 0 }, "\(service.renderHistory())")
        // Both leaves took heartbeats (a skip row's guid column holds its skip count, as in
        // OpenZFS's kstat, so only write rows name leaves).
        #expect(Set(rows.filter { !$0.isSkip }.map(\.vdevGUID)).count == 2, "\(service.renderHistory())")
    }
}
