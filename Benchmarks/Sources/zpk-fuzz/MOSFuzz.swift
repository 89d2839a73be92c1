// zpk-fuzz --mos: seeded mutation fuzzing of the MOS object decoders — block pointers
// (embedded payloads), gang headers, dnodes, objset blocks, micro and fat ZAP blocks — and
// the decompressors a block read runs (lzjb, zle, lz4, gzip, zstd).
//
//   swift run -c release zpk-fuzz --mos [--iterations N] [--seed S] [--from I]
//
// Seeds are well-formed structures built here from the OpenZFS layouts (a 16 KiB dnode block
// with a meta-dnode-like dnode and a packed-nvlist dnode with a bonus, a micro ZAP directory,
// a fat ZAP header and leaf with multi-chunk names, a gang header with a valid embedded
// checksum, an embedded block pointer); each iteration mutates one with the same mutations as
// the nvlist fuzzing (Fuzzer.overwrite / reshape) and runs every decoder on it in both byte
// orders. Oracle: no trap (the crash reporter names the iteration), and each decoder either
// throws FormatError or returns a value within its stated bounds (dnode pointer counts ≤ 3,
// ZAP names no longer than their field (in scalars: bad UTF-8 becomes U+FFFD), decompressed sizes equal to the requested size).
//
// dRAID geometry: a 64-byte record of eight little-endian words (nparity, draid_ndata,
// draid_nspares, draid_ngroups, ashift, children, offset, size), seeded with a valid draid2 read
// across a group boundary, goes through DraidGeometry (directly, through a config nvlist with
// that many children, and by its `draid<p>:<d>d:<c>c:<s>s` name) and, when accepted, through
// the row layout and the distributed-spare targets. Oracle: a typed error or at most two rows
// of exactly groupwidth columns on real children, holding `size` data bytes between them.

import BenchSupport
import Foundation
import ZFSFormat
import ZFSImport

#if canImport(Glibc)
import Glibc
#endif

enum MOSFuzz {
    struct Layout {
        var bytes: [UInt8]
        let order: Endianness = .little
        init(count: Int) { bytes = [UInt8](repeating: 0, count: count) }
        mutating func put(_ value: UInt64, at offset: Int, width: Int = 8) {
            for i in 0..<width { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        }
    }

    static func dnodeBlock() -> [UInt8] {
        var l = Layout(count: 16384)
        for (slot, (type, levels, pointers, bonus)) in [(UInt8(10), UInt8(2), 3, 0), (21, 1, 1, 8), (12, 1, 1, 8), (196, 3, 1, 192)].enumerated() {
            let at = 512 * (slot + 1)
            l.bytes[at] = type
            l.bytes[at + 1] = 17
            l.bytes[at + 2] = levels
            l.bytes[at + 3] = UInt8(pointers)
            l.put(32, at: at + 8, width: 2)
            l.put(UInt64(bonus), at: at + 10, width: 2)
            l.put(UInt64(slot * 3), at: at + 16)
            for p in 0..<pointers {
                l.put(1 << 32 | 8, at: at + 64 + 128 * p)
                l.put(UInt64(100 + p), at: at + 72 + 128 * p)
                l.put(31 | 3 << 16 | 15 << 32 | 7 << 40 | 10 << 48 | 1 << 63, at: at + 112 + 128 * p)
                l.put(77, at: at + 144 + 128 * p)
            }
            if bonus >= 8 { l.put(1234, at: at + 64 + 128 * pointers) }
        }
        return l.bytes
    }

    static func microZAP() -> [UInt8] {
        var l = Layout(count: 512)
        l.put(ZAP.microBlockType, at: 0)
        for (i, name) in ["root_dataset", "config", "sync_bplist", "creation_version", "features_for_read"].enumerated() {
            l.put(UInt64(30 + i), at: 64 * (i + 1))
            for (j, b) in name.utf8.enumerated() { l.bytes[64 * (i + 1) + 14 + j] = b }
        }
        return l.bytes
    }

    static func fatHeader() -> [UInt8] {
        var l = Layout(count: 16384)
        l.put(ZAP.headerBlockType, at: 0)
        l.put(ZAP.magic, at: 8)
        l.put(3, at: 32)
        l.put(2, at: 64)
        for i in 0..<8 { l.put(UInt64(1 + i % 2), at: 8192 + 8 * i) }
        return l.bytes
    }

    static func leaf() -> [UInt8] {
        var l = Layout(count: 4096)
        l.put(ZAP.leafBlockType, at: 0)
        l.put(UInt64(ZAP.leafMagic), at: 24, width: 4)
        let start = 48 + 2 * 128
        var next = 0
        func array(_ bytes: [UInt8]) -> Int {
            let first = next
            var rest = bytes[...]
            repeat {
                let at = start + 24 * next
                l.bytes[at] = 251
                for (j, b) in rest.prefix(21).enumerated() { l.bytes[at + 1 + j] = b }
                rest = rest.dropFirst(21)
                next += 1
                l.put(rest.isEmpty ? 0xFFFF : UInt64(next), at: at + 22, width: 2)
            } while !rest.isEmpty
            return first
        }
        for name in ["com.delphix:hole_birth", "com.delphix:embedded_data", "org.open-zfs:large_blocks"] {
            let entry = next
            next += 1
            let nameBytes = Array(name.utf8) + [0]
            let nameChunk = array(nameBytes)
            let valueChunk = array([0, 0, 0, 0, 0, 0, 0, 1])
            let at = start + 24 * entry
            l.bytes[at] = 252
            l.bytes[at + 1] = 8
            l.put(0xFFFF, at: at + 2, width: 2)
            l.put(UInt64(nameChunk), at: at + 4, width: 2)
            l.put(UInt64(nameBytes.count), at: at + 6, width: 2)
            l.put(UInt64(valueChunk), at: at + 8, width: 2)
            l.put(1, at: at + 10, width: 2)
        }
        return l.bytes
    }

    static let gangPointer: BlockPointer = {
        try! BlockPointer(decodingWords: [1 << 32 | 2, 1 << 63 | 100, 0, 0, 0, 0, 7 << 40 | 2 << 32, 0, 0, 0, 9, 1, 0, 0, 0, 0])
    }()

    static func gangHeader() -> [UInt8] {
        var l = Layout(count: 512)
        l.put(1 << 32 | 8, at: 0)
        l.put(500, at: 8)
        l.put(0 | 0 << 16 | 2 << 32 | 7 << 40, at: 48)
        l.put(EmbeddedChecksum.magic, at: 472)
        for (i, w) in [1, 100 << 9, 9, 0].enumerated() { l.put(UInt64(w), at: 480 + 8 * i) }
        let sum = Fletcher4.checksum(l.bytes, wordOrder: .little)
        for (i, w) in sum.array.enumerated() { l.put(w, at: 480 + 8 * i) }
        return l.bytes
    }

    static func embeddedPointer() -> [UInt8] {
        var l = Layout(count: 128)
        for i in 0..<16 { l.put(0x0102_0304_0506_0708 &* UInt64(i + 1), at: 8 * i) }
        l.put(99 | 50 << 25 | 2 << 32 | 1 << 39 | 11 << 48, at: 48)
        return l.bytes
    }

    /// draid2:3d:7c:1s (6 groups of 5 fill 5 rows of 6 disks), ashift 12, 24 sectors two
    /// stripes before the end of group 0.
    static func draidRecord() -> [UInt8] {
        var l = Layout(count: 64)
        for (i, w) in [2, 3, 1, 6, 12, 7, (16 << 20) * 5 - 2 * 5 * 4096, 24 * 4096].enumerated() { l.put(UInt64(w), at: 8 * i) }
        return l.bytes
    }

    static func word(_ bytes: [UInt8], _ index: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[8 * index + $1]) << (8 * UInt64($1)) }
    }

    /// The dRAID geometry and layout on the first 64 bytes; returns a broken promise, if any.
    static func checkDraid(_ bytes: [UInt8]) -> String? {
        let w = (0..<8).map { word(bytes, $0) }
        let small = w.prefix(6).map { Int(truncatingIfNeeded: $0) }
        var candidates: [DraidGeometry] = []
        if let g = try? DraidGeometry(parity: small[0], data: small[1], spares: small[2], children: small[5], groups: small[3], ashift: small[4]) {
            candidates.append(g)
        }
        var config = NVList()
        for (key, value) in zip(["nparity", "draid_ndata", "draid_nspares", "draid_ngroups", "ashift"], w) { config.set(key, .uint64(value)) }
        if let g = try? DraidGeometry(config: config, children: Int(w[5] % 300)) { candidates.append(g) }
        let name = String(decoding: bytes.prefix(24), as: UTF8.self)
        if let g = try? DraidGeometry(name: name) { candidates.append(g) }
        for geometry in candidates {
            guard (2...255).contains(geometry.children), geometry.groupWidth <= geometry.disks else { return "accepted \(geometry)" }
            guard let map = try? DraidPermutations.map(children: geometry.children) else { return "no map for accepted \(geometry)" }
            guard let rows = try? geometry.rows(offset: w[6], size: w[7], map: map) else { continue }
            guard (1...2).contains(rows.count) else { return "\(rows.count) rows" }
            var data = 0
            for row in rows {
                guard row.columns.count == geometry.groupWidth else { return "a row of \(row.columns.count) columns in \(geometry)" }
                guard row.columns.allSatisfy({ (0..<geometry.children).contains($0.child) }) else { return "a column on no child of \(geometry)" }
                guard Set(row.columns.map(\.child)).count == row.columns.count else { return "two columns of a row on one child of \(geometry)" }
                guard row.dataOffset == data else { return "rows out of order" }
                data += row.dataSize
            }
            guard UInt64(data) == w[7] else { return "rows hold \(data) bytes of \(w[7])" }
            for spare in 0..<geometry.spares {
                guard let target = geometry.spareTarget(spare: spare, offset: w[6] % (1 << 50), map: map), target < geometry.children else {
                    return "spare \(spare) of \(geometry) has no child"
                }
            }
        }
        return nil
    }

    /// Runs every decoder on `bytes`; returns a broken promise, if any.
    static func check(_ bytes: [UInt8]) -> String? {
        if bytes.count >= 64, let broken = checkDraid(bytes) { return broken }
        for order in [Endianness.little, .big] {
            if bytes.count >= 512 {
                for slot in 0..<min(bytes.count / 512, 8) {
                    if let dnode = try? Dnode(decoding: bytes, at: slot * 512, byteOrder: order), dnode.type != 0 {
                        if dnode.blockPointers.count > 3 { return "a dnode with \(dnode.blockPointers.count) block pointers" }
                        for id: UInt64 in [0, 1, 127, 128, 1 << 20, .max] { blackHole(dnode.path(toBlock: id)) }
                    }
                }
                blackHole(try? ObjsetPhys(decoding: bytes + [UInt8](repeating: 0, count: max(0, 1024 - bytes.count)), byteOrder: order))
                blackHole(try? GangHeader(decoding: bytes, for: gangPointer))
            }
            if let kind = try? ZAP.kind(ofFirstBlock: bytes, byteOrder: order) {
                if case .fat(let header) = kind, header.embeddedTable.count > bytes.count / 16 { return "an embedded table larger than half the block" }
            }
            if let entries = try? ZAP.microEntries(bytes, byteOrder: order), entries.contains(where: { $0.name.unicodeScalars.count > 49 }) {
                // (Invalid UTF-8 becomes U+FFFD, 3 bytes: count scalars, one per source byte at most.)
                return "a micro ZAP name longer than 49 bytes"
            }
            if let entries = try? ZAP.leafEntries(bytes, byteOrder: order), entries.contains(where: { $0.name.unicodeScalars.count > bytes.count }) {
                return "a leaf name longer than the leaf"
            }
            if bytes.count >= 128, let pointer = try? BlockPointer(decoding: bytes, at: 0, byteOrder: order) {
                if let payload = try? pointer.embeddedPayload(), payload.count > 112 { return "an embedded payload of \(payload.count) bytes" }
            }
        }
        let source = Array(bytes.prefix(600))
        for compression: UInt8 in [2, 3, 5, 14, 15, 16] {
            if let out = try? BlockCompression(rawValue: compression).decompress(source, logicalByteCount: 2048), out.count != 2048 {
                return "\(BlockCompression(rawValue: compression)) returned \(out.count) bytes, not 2048"
            }
        }
        return nil
    }

    static func run(iterations: Int, seed: UInt64, from: Int) -> Int32 {
        let seeds: [(String, [UInt8])] = [
            ("dnode block", dnodeBlock()), ("micro ZAP", microZAP()), ("fat ZAP header", fatHeader()), ("fat ZAP leaf", leaf()),
            ("gang header", gangHeader()), ("embedded block pointer", embeddedPointer()), ("dRAID record", draidRecord()),
        ]
        // The seeds themselves must decode.
        guard (try? GangHeader(decoding: seeds[4].1, for: gangPointer)) != nil,
            (try? ZAP.leafEntries(seeds[3].1, byteOrder: .little))?.count == 3,
            (try? ZAP.microEntries(seeds[1].1, byteOrder: .little))?.count == 5,
            let draid = try? DraidGeometry(parity: 2, data: 3, spares: 1, children: 7, groups: 6, ashift: 12),
            (try? draid.rows(offset: word(seeds[6].1, 6), size: word(seeds[6].1, 7), map: DraidPermutations.map(children: 7)))?.count == 2
        else {
            print("zpk-fuzz --mos: a seed does not decode; the fuzzer itself is broken")
            return 1
        }
        print("zpk-fuzz --mos: \(iterations) iterations from \(from), seed \(seed); seeds: " + seeds.map { "\($0.0) \($0.1.count) B" }.joined(separator: ", "))
        var failures = 0
        let clock = ContinuousClock()
        let started = clock.now
        for iteration in from..<(from + iterations) {
            currentIteration.pointee = iteration
            var fuzz = Fuzzer(rng: SplitMix64(seed: seed &* 0x2545_F491_4F6C_DD1D ^ UInt64(iteration) &* 0x9E37_79B9_7F4A_7C15))
            let (name, base) = seeds[fuzz.below(seeds.count)]
            var bytes = base
            var unused: [(Int, UInt8)] = []
            for _ in 0..<(1 + fuzz.below(6)) {
                if fuzz.chance(6) {
                    fuzz.reshape(&bytes)
                } else {
                    fuzz.overwrite(&bytes, hot: 0..<max(1, bytes.count), undo: &unused)
                    unused.removeAll(keepingCapacity: true)
                }
            }
            if let broken = check(bytes) {
                failures += 1
                print("FAILURE iteration \(iteration) (\(name), \(bytes.count) bytes): \(broken)  [replay: --mos --seed \(seed) --from \(iteration) --iterations 1]")
                if failures >= 20 { break }
            }
        }
        currentIteration.pointee = -1
        let seconds = Double((clock.now - started).components.seconds) + Double((clock.now - started).components.attoseconds) / 1e18
        print("iterations: \(iterations) in \(String(format: "%.1f", seconds)) s")
        print(failures == 0 ? "result: PASS (no crash, no broken bound)" : "result: FAIL (\(failures) failures)")
        return failures == 0 ? 0 : 1
    }
}
