// Hand-made label configs and devices for unit tests of discovery, shaped like OpenZFS 2.1.11's
// (key order of `spa_config_generate` + `vdev_config_generate`, `spec/ondisk.md` §4.2–4.3).

import Foundation
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSTestSupport

#if canImport(Glibc)
import Glibc
#endif

enum Synthetic {
    /// A leaf vdev config (`file` unless told otherwise).
    static func leaf(id: UInt64, guid: UInt64, path: String?, type: String = "file", extra: [(String, NVPair.Value)] = []) -> NVList {
        var list = NVList()
        list.set("type", .string(type))
        list.set("id", .uint64(id))
        list.set("guid", .uint64(guid))
        if let path { list.set("path", .string(path)) }
        for (key, value) in extra { list.set(key, value) }
        list.set("create_txg", .uint64(4))
        return list
    }

    /// An interior top-level vdev config (mirror, raidz) over `children`.
    static func interior(type: String, id: UInt64, guid: UInt64, children: [NVList], isLog: Bool = false) -> NVList {
        var list = NVList()
        list.set("type", .string(type))
        list.set("id", .uint64(id))
        list.set("guid", .uint64(guid))
        if type == "raidz" { list.set("nparity", .uint64(1)) }
        list.set("metaslab_array", .uint64(64))
        list.set("metaslab_shift", .uint64(24))
        list.set("ashift", .uint64(9))
        list.set("asize", .uint64(1 << 30))
        list.set("is_log", .uint64(isLog ? 1 : 0))
        list.set("create_txg", .uint64(4))
        list.set("children", .nvlistArray(children))
        return list
    }

    /// The label config of leaf `leafGUID` under top-level `tree`.
    static func label(
        pool: String = "tank", poolGUID: UInt64 = 1000, txg: UInt64 = 50, state: PoolState = .exported,
        hostID: UInt64? = 0x1234, hostname: String = "nodeA", vdevChildren: UInt64? = 1, holes: [UInt64]? = nil,
        leafGUID: UInt64, tree: NVList, version: UInt64 = 5000
    ) -> NVList {
        var list = NVList()
        list.set("version", .uint64(version))
        list.set("name", .string(pool))
        list.set("state", .uint64(state.rawValue))
        list.set("txg", .uint64(txg))
        list.set("pool_guid", .uint64(poolGUID))
        list.set("errata", .uint64(0))
        if let hostID { list.set("hostid", .uint64(hostID)) }
        list.set("hostname", .string(hostname))
        list.set("top_guid", .uint64(tree.uint64("guid")!))
        list.set("guid", .uint64(leafGUID))
        if let holes { list.set("hole_array", .uint64Array(holes)) }
        if let vdevChildren { list.set("vdev_children", .uint64(vdevChildren)) }
        list.set("vdev_tree", .nvlist(tree))
        var features = NVList()
        features.set("com.delphix:hole_birth", .boolean)
        list.set("features_for_read", .nvlist(features))
        return list
    }

    /// An aux (spare or cache) label, as 2.1.11 writes it.
    static func auxLabel(state: PoolState, guid: UInt64) -> NVList {
        var list = NVList()
        list.set("version", .uint64(5000))
        list.set("state", .uint64(state.rawValue))
        list.set("guid", .uint64(guid))
        return list
    }

    /// The 112 KiB config block of a label holding `config`, sealed for `labelOffset`.
    static func configBlock(_ config: NVList, labelOffset: UInt64) throws -> [UInt8] {
        let packed = try config.encoded(as: .xdr)
        var block = packed + [UInt8](repeating: 0, count: VdevLabel.configBlockByteCount - packed.count)
        try EmbeddedChecksum.seal(&block, absoluteOffset: labelOffset + UInt64(VdevLabel.configBlockOffset), byteOrder: .little)
        return block
    }

    /// A sparse in-memory device whose labels hold the given configs (`nil`: label left empty).
    static func device(size: UInt64 = 64 << 20, path: String, labels: [NVList?]) throws -> InMemoryBlockDevice {
        let device = InMemoryBlockDevice.sparse(size: size, path: path)
        for (index, offset) in DeviceLabels.labelOffsets(deviceSize: size).enumerated() {
            guard let offset, index < labels.count, let config = labels[index] else { continue }
            device.setBytes(try configBlock(config, labelOffset: offset), at: offset + UInt64(VdevLabel.configBlockOffset))
        }
        return device
    }

    /// A sparse file of `size` bytes whose four labels hold `config` (or `labels` per label).
    static func writeDevice(at path: String, size: UInt64 = 64 << 20, config: NVList) throws {
        try writeDevice(at: path, size: size, labels: [config, config, config, config])
    }

    static func writeDevice(at path: String, size: UInt64 = 64 << 20, labels: [NVList?]) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestFailure(description: "cannot create \(path)") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(size)) == 0 else { throw TestFailure(description: "ftruncate \(path)") }
        for (index, offset) in DeviceLabels.labelOffsets(deviceSize: size).enumerated() {
            guard let offset, index < labels.count, let config = labels[index] else { continue }
            let block = try configBlock(config, labelOffset: offset)
            let written = block.withUnsafeBytes {
                pwrite(fd, $0.baseAddress, $0.count, off_t(offset) + off_t(VdevLabel.configBlockOffset))
            }
            guard written == block.count else { throw TestFailure(description: "pwrite \(path)") }
        }
    }
}
