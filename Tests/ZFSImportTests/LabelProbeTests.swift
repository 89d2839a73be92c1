import Testing
import ZFSDevice
import ZFSFormat
@testable import ZFSImport
import ZFSTestSupport

/// `zpool_read_label`'s rules: first accepted label wins, same-guid labels are counted,
/// checksums are recorded but not required.
@Suite struct LabelProbeTests {
    static let tree = Synthetic.leaf(id: 0, guid: 11, path: "/old/a")
    static let good = Synthetic.label(vdevChildren: 1, leafGUID: 11, tree: tree)

    @Test func fourGoodLabels() throws {
        let device = try Synthetic.device(path: "/dev/t0", labels: [Self.good, Self.good, Self.good, Self.good])
        let probe = LabelProbe(reading: device)
        #expect(probe.labelCount == 4)
        #expect(probe.config?.uint64("guid") == 11)
        #expect(probe.labels.map(\.verdict) == [.accepted, .accepted, .accepted, .accepted])
        #expect(probe.labels.allSatisfy { $0.checksum?.isValid == true })
        // Only the 112 KiB config blocks are read, once each.
        #expect(device.calls == [0, 0x40000, 0x3F8_0000, 0x3FC_0000].map { .read(offset: $0 + 0x4000, count: 0x1C000) })
    }

    @Test func halfInitialisedAndForeignLabelsAreSkipped() throws {
        var txgZero = Self.good
        txgZero.set("txg", .uint64(0))
        var badState = Self.good
        badState.set("state", .uint64(5))
        var other = Self.good
        other.set("guid", .uint64(99))
        let device = try Synthetic.device(path: "/dev/t1", labels: [txgZero, badState, other, Self.good])
        let probe = LabelProbe(reading: device)
        #expect(probe.labels.map(\.verdict) == [.uninitialized, .badState(5), .accepted, .accepted])
        // The first accepted label decides; the other guid is not counted.
        #expect(probe.config?.uint64("guid") == 99)
        #expect(probe.labelCount == 1)
    }

    @Test func auxLabelsNeedNoTXG() throws {
        let spare = Synthetic.auxLabel(state: .spare, guid: 77)
        let probe = LabelProbe(reading: try Synthetic.device(path: "/dev/t2", labels: [spare, spare, nil, nil]))
        #expect(probe.labelCount == 2)
        #expect(probe.labels.map(\.verdict) == [.accepted, .accepted, .empty, .empty])
    }

    @Test func aBadChecksumDoesNotStopUserland() throws {
        let device = try Synthetic.device(path: "/dev/t3", labels: [Self.good, nil, nil, nil])
        // Change a byte inside the packed nvlist's padding-free area without breaking it: the
        // hostname 'nodeA' → 'nodeB'.
        let block = device.bytes(in: 0x4000..<(0x4000 + 0x1C000))
        let needle = Array("nodeA".utf8)
        let at = try #require((0..<(block.count - needle.count)).first { Array(block[$0..<($0 + needle.count)]) == needle })
        device.setBytes(Array("nodeB".utf8), at: 0x4000 + UInt64(at))
        let probe = LabelProbe(reading: device)
        #expect(probe.labels[0].verdict == .accepted)
        guard case .mismatch? = probe.labels[0].checksum else {
            Issue.record("checksum: \(String(describing: probe.labels[0].checksum))")
            return
        }
        #expect(probe.config?.string("hostname") == "nodeB")
    }

    @Test func readErrorsAndGarbageAreRecordedPerLabel() throws {
        let device = try Synthetic.device(path: "/dev/t4", labels: [Self.good, Self.good, Self.good, Self.good])
        device.inject(.readError(0x40000..<0x80000))
        device.setBytes([UInt8](repeating: 0xAB, count: 4096), at: 0x3F8_0000 + 0x4000)
        let probe = LabelProbe(reading: device)
        guard case .unreadable = probe.labels[1].verdict else {
            Issue.record("label 1: \(probe.labels[1].verdict)")
            return
        }
        guard case .notAnNVList = probe.labels[2].verdict else {
            Issue.record("label 2: \(probe.labels[2].verdict)")
            return
        }
        #expect(probe.labelCount == 2)
    }

    @Test func tinyDevicesHaveNoBackLabels() throws {
        let device = try Synthetic.device(size: 512 << 10, path: "/dev/t5", labels: [Self.good, Self.good])
        let probe = LabelProbe(reading: device)
        #expect(probe.labels.map(\.absoluteOffset) == [0, 0x40000, nil, nil])
        #expect(probe.labelCount == 2)
        let empty = LabelProbe(reading: InMemoryBlockDevice.sparse(size: 0, path: "/dev/t6"))
        #expect(empty.labelCount == 0)
        #expect(empty.config == nil)
    }
}
