// Our MOS format (`docs/design/pool-host.md` §3): a block = 16-byte header + packed XDR nvlist,
// zero-padded to 512 bytes. The header's magic tells a MOS block from a directory block, and
// the length tells where the nvlist ends.
//
//   0x00  8  magic "ZPKMOS01" (MOS) or "ZPKOBJ01" (user-object directory)
//   0x08  8  nvlist byte count, little-endian
//   0x10  n  packed XDR nvlist

import ZFSFormat

enum MOSBlock {
    static let mosMagic: [UInt8] = Array("ZPKMOS01".utf8)
    static let directoryMagic: [UInt8] = Array("ZPKOBJ01".utf8)
    static let headerByteCount = 16
    /// `zpk_mos_version`.
    static let formatVersion: UInt64 = 1

    static func encode(_ list: NVList, magic: [UInt8]) throws(PoolError) -> [UInt8] {
        let packed: [UInt8]
        do { packed = try list.encoded(as: .xdr) } catch {
            throw PoolError(.invalidConfig, "cannot pack a metadata nvlist: \(error)", cause: error)
        }
        var block = magic
        var count = UInt64(packed.count).littleEndian
        withUnsafeBytes(of: &count) { block.append(contentsOf: $0) }
        block += packed
        let padded = Int(BlockPointers.physicalByteCount(forPayload: block.count))
        block += [UInt8](repeating: 0, count: padded - block.count)
        return block
    }

    /// Decodes a block read (and checksum-verified) from disk; `nil` when it is not ours.
    static func decode(_ block: [UInt8], magic: [UInt8]) -> NVList? {
        guard block.count >= headerByteCount, Array(block[0..<8]) == magic else { return nil }
        var count: UInt64 = 0
        for i in (8..<16).reversed() { count = count << 8 | UInt64(block[i]) }
        guard count <= UInt64(block.count - headerByteCount) else { return nil }
        return try? NVList(decoding: block[headerByteCount..<(headerByteCount + Int(count))])
    }
}

/// One user object, as the directory records it.
struct ObjectEntry: Hashable, Sendable {
    var pointer: BlockPointer
    var byteCount: UInt64
    var birth: TXG
}
