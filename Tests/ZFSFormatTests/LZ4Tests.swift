import Foundation
import PropertyBased
import Testing
import ZFSFormat
import ZFSTestSupport

/// LZ4 as OpenZFS stores it. The decoder must leave exactly what OpenZFS's decoder
/// (`lz4_decompress_zfs`, `module/zfs/lz4.c`) leaves, on good and on malformed input, since
/// zdb reads the output buffer even when decompression fails; the expected buffers below were
/// produced by that function (libzpool 2.1.11, x86-64) from the same input and prefill.
@Suite(.offTheCooperativePool) struct LZ4Tests {
    /// Decodes `source` into `count` bytes of 0xEE; the buffer and whether it succeeded.
    static func decode(_ source: [UInt8], capacity: Int, fill: UInt8 = 0xEE) -> ([UInt8], Bool) {
        var buffer = [UInt8](repeating: fill, count: capacity)
        do {
            _ = try LZ4.decompressZFS(source, into: &buffer)
            return (buffer, true)
        } catch {
            return (buffer, false)
        }
    }

    static func framed(_ block: [UInt8]) -> [UInt8] {
        [0, 0, 0, UInt8(block.count)] + block
    }

    static let e: UInt8 = 0xEE

    @Test func offsetZeroLeavesTheBufferAsItWas() {
        let literals = (1...13).map { UInt8($0) }
        let block = [0x8F] + literals[0..<8] + [0, 0, 40, 0x50] + literals[8..<13]
        let (out, ok) = Self.decode(Self.framed(block), capacity: 100)
        #expect(ok)
        #expect(out == Array(literals[0..<8]) + Array(repeating: Self.e, count: 59) + Array(literals[8..<13])
            + Array(repeating: Self.e, count: 28))
    }

    /// The literal copy moves 8 bytes at a time: the 5 source bytes after "abc" land in the
    /// output before the bad offset is seen.
    @Test func failedDecodeKeepsTheOverrunOfTheLiteralCopy() {
        let block: [UInt8] = [0x34, 97, 98, 99, 9, 0, 0x50, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
        let (out, ok) = Self.decode(Self.framed(block), capacity: 40)
        #expect(!ok)
        #expect(out == [97, 98, 99, 9, 0, 80, 1, 2] + Array(repeating: Self.e, count: 32))
    }

    @Test func overlappingMatches() {
        let run: [UInt8] = [0x1F, 97, 1, 0, 10, 0x50, 98, 99, 100, 101, 102]
        let (out, ok) = Self.decode(Self.framed(run), capacity: 60)
        #expect(ok)
        #expect(out == Array(repeating: 97, count: 30) + [98, 99, 100, 101, 102] + Array(repeating: Self.e, count: 25))

        let three: [UInt8] = [0x3F, 97, 98, 99, 3, 0, 2, 0x50, 1, 2, 3, 4, 5]
        let (out3, ok3) = Self.decode(Self.framed(three), capacity: 40)
        #expect(ok3)
        #expect(out3 == Array([[UInt8]](repeating: [97, 98, 99], count: 8).joined()) + [1, 2, 3, 4, 5]
            + Array(repeating: Self.e, count: 11))

        // The same run into 27 bytes: the match would pass the end; 9 bytes are written.
        let (short, okShort) = Self.decode(Self.framed(run), capacity: 27)
        #expect(!okShort)
        #expect(short == Array(repeating: 97, count: 9) + Array(repeating: Self.e, count: 18))
    }

    @Test func malformedStreamsWriteNothing() throws {
        // The last literals must end the input exactly.
        #expect(Self.decode(Self.framed([0x30, 1, 2, 3, 9, 9]), capacity: 16) == (Array(repeating: Self.e, count: 16), false))
        // Literals past the output.
        #expect(Self.decode(Self.framed([0x50, 1, 2, 3, 4, 5]), capacity: 4) == (Array(repeating: Self.e, count: 4), false))
        // A length prefix longer than what follows.
        var buffer = [UInt8](repeating: Self.e, count: 16)
        #expect {
            try LZ4.decompressZFS([0, 0, 0, 3, 16, 1], into: &buffer)
        } throws: { ($0 as? FormatError)?.code == .invalidSize }
        #expect(buffer == Array(repeating: Self.e, count: 16))
        #expect {
            try LZ4.decompressZFS([0, 0, 0], into: &buffer)
        } throws: { ($0 as? FormatError)?.code == .truncated }
        #expect {
            try LZ4.decompressZFS([0, 0, 0, 1, 0], capacity: -1)
        } throws: { ($0 as? FormatError)?.code == .invalidSize }
        #expect(try LZ4.decompressZFS([0, 0, 0, 1, 0], capacity: 0) == [])
    }

    /// Data of the kinds L2ARC log blocks and other blocks hold.
    static func sample(_ kind: Int, _ count: Int, _ rng: inout SplitMix64) -> [UInt8] {
        switch kind {
        case 0: return (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
        case 1: return [UInt8](repeating: 0, count: count)
        case 2: return (0..<count).map { _ in [0, 0, 0, 7, 97, 98][Int.random(in: 0..<6, using: &rng)] }
        default:
            var out: [UInt8] = []
            while out.count < count {
                if !out.isEmpty && Bool.random(using: &rng) {
                    let offset = Int.random(in: 1...min(out.count, 70), using: &rng)
                    for _ in 0..<Int.random(in: 1...300, using: &rng) { out.append(out[out.count - offset]) }
                } else {
                    for _ in 0..<Int.random(in: 1...20, using: &rng) { out.append(UInt8.random(in: 0...255, using: &rng)) }
                }
            }
            return Array(out.prefix(count))
        }
    }

    /// A plain reading of the block format, independent of the decoder under test.
    static func referenceDecode(_ block: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var i = 0
        func length(_ start: Int) -> Int? {
            var value = start
            guard start == 15 else { return value }
            while i < block.count {
                let more = Int(block[i])
                i += 1
                value += more
                if more != 255 { return value }
            }
            return nil
        }
        while i < block.count {
            let token = Int(block[i])
            i += 1
            guard let literalCount = length(token >> 4), i + literalCount <= block.count else { return nil }
            out += block[i..<(i + literalCount)]
            i += literalCount
            if i == block.count { return out }
            guard i + 2 <= block.count else { return nil }
            let offset = Int(block[i]) | Int(block[i + 1]) << 8
            i += 2
            guard offset > 0, offset <= out.count, let matchCount = length(token & 15) else { return nil }
            for _ in 0..<(matchCount + 4) { out.append(out[out.count - offset]) }
        }
        return out
    }

    @Test func roundTrips() throws {
        var rng = SplitMix64(seed: 0x4C5A_3421)
        for round in 0..<120 {
            let count = [0, 1, 12, 13, 100, 4096, 65536, Int.random(in: 0...70000, using: &rng)][round % 8]
            let data = Self.sample(round % 4, count, &rng)
            let block = LZ4.compressBlock(data)
            #expect(Self.referenceDecode(block) == data, "round \(round)")
            guard let framed = LZ4.compressZFS(data, capacity: Int.max) else {
                Issue.record("round \(round): no room")
                continue
            }
            #expect(framed.count == block.count + 4)
            // Decodes into exactly its size, and into a larger buffer, which keeps its tail past
            // the 7 bytes an 8-byte stride may overrun.
            #expect(try LZ4.decompressZFS(framed, capacity: data.count) == data, "round \(round)")
            var larger = [UInt8](repeating: 0x5A, count: data.count + 100)
            #expect(try LZ4.decompressZFS(framed, into: &larger) == data.count)
            #expect(Array(larger.prefix(data.count)) == data)
            #expect(larger.suffix(93).allSatisfy { $0 == 0x5A })
        }
        // OpenZFS stores data uncompressed unless it saves 12.5%.
        var random = SplitMix64(seed: 7)
        let noise = Self.sample(0, 4096, &random)
        #expect(LZ4.compressZFS(noise, capacity: 4096 - 512) == nil)
        #expect(LZ4.compressZFS([UInt8](repeating: 0, count: 4096), capacity: 4096 - 512)!.count < 64)
    }

    /// Whatever the input, the decoder returns or throws; it never traps, and never claims more
    /// output than the buffer holds.
    @Test func arbitraryInputNeverTraps() async {
        await propertyCheck(count: 400, input: Gen.uint8().array(of: 0...300), Gen.int(in: 0...400)) { bytes, capacity in
            var buffer = [UInt8](repeating: 0, count: capacity)
            if let count = try? LZ4.decompressZFS(bytes, into: &buffer) {
                #expect(count <= capacity)
            }
            #expect(buffer.count == capacity)
            if let count = try? LZ4.decompressBlock(bytes, capacity: capacity) {
                #expect(count <= capacity)
            }
        }
    }

    /// Blocks made by the reference LZ4 tool (frame format; a frame of one block holds a raw
    /// block). scripts/install-openzfs installs the tool; without it the test fails, naming it.
    @Test func decodesBlocksOfTheLZ4Tool() throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: "/usr/bin/lz4"),
            "needs /usr/bin/lz4 (Debian package 'lz4'; scripts/install-openzfs installs it)")
        var rng = SplitMix64(seed: 0x1234)
        for round in 0..<12 {
            let data = Self.sample(round % 4, [100, 5000, 65536][round % 3], &rng)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/lz4")
            process.arguments = ["-c", "-q", "--no-frame-crc", "-B4", round % 2 == 0 ? "-1" : "-12"]
            let input = Pipe()
            let output = Pipe()
            process.standardInput = input
            process.standardOutput = output
            try process.run()
            try input.fileHandleForWriting.write(contentsOf: Data(data))
            try input.fileHandleForWriting.close()
            let frame = Array(output.fileHandleForReading.readDataToEndOfFile())
            process.waitUntilExit()
            // magic (4), FLG, BD, HC, then the block size (u32 LE; high bit: stored raw).
            try #require(frame.count >= 11 && frame[0..<4] == [0x04, 0x22, 0x4D, 0x18] && frame[4] & 0x08 == 0)
            let size = Int(frame[7]) | Int(frame[8]) << 8 | Int(frame[9]) << 16 | Int(frame[10]) << 24
            guard size & (1 << 31) == 0 else { continue }  // incompressible: stored raw
            let block = Array(frame[11..<(11 + size)])
            #expect(try LZ4.decompressBlock(block, capacity: data.count) == data.count, "round \(round)")
            let framed = [UInt8(size >> 24), UInt8(size >> 16 & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size & 0xFF)] + block
            #expect(try LZ4.decompressZFS(framed, capacity: 65536) == data, "round \(round)")
        }
    }
}

extension LZ4 {
    /// Test helper: decodes a raw block into a fresh buffer and returns the decoded length.
    static func decompressBlock(_ block: [UInt8], capacity: Int) throws -> Int {
        var buffer = [UInt8](repeating: 0, count: capacity)
        return try block.withUnsafeBytes { input in
            try buffer.withUnsafeMutableBytes { output in try LZ4.decompressBlock(input, into: output) }
        }
    }
}
