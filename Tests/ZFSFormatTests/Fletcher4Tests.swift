import PropertyBased
import Testing
import ZFSFormat

/// Fletcher-4 (`fletcher_4_native_varsize`), judged against values OpenZFS 2.1.11's libzpool
/// computed and against a direct reading of the definition.
@Suite struct Fletcher4Tests {
    /// The definition, one word at a time, little-endian words.
    static func reference(_ bytes: [UInt8]) -> [UInt64] {
        var sums: [UInt64] = [0, 0, 0, 0]
        var index = 0
        while index + 4 <= bytes.count {
            let word = UInt64(bytes[index]) | UInt64(bytes[index + 1]) << 8 | UInt64(bytes[index + 2]) << 16
                | UInt64(bytes[index + 3]) << 24
            sums[0] &+= word
            sums[1] &+= sums[0]
            sums[2] &+= sums[1]
            sums[3] &+= sums[2]
            index += 4
        }
        return sums
    }

    /// Computed by `fletcher_4_native_varsize` in libzpool (x86-64).
    @Test func valuesFromOpenZFS() {
        let ramp = (0..<64).map { UInt8($0) }
        #expect(Fletcher4.checksum(ramp, wordOrder: .little) == Fletcher4.Checksum(
            0x2_1201_F1E0, 0xC_43BB_32A0, 0x39_9663_2FD0, 0xE3_F0BD_89B0))
        // 4099 bytes: the last 3 are ignored.
        let pattern = (0..<4099).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }
        #expect(Fletcher4.checksum(pattern, wordOrder: .little) == Fletcher4.Checksum(
            0x1F9_FE02_0400, 0x3_F351_1B23_5E00, 0x545_FD14_58C9_3000, 0x48DF_841D_C7FB_3700))
        // 64 KiB of 0xFF: the higher sums wrap.
        let ones = [UInt8](repeating: 0xFF, count: 65536)
        #expect(Fletcher4.checksum(ones, wordOrder: .little) == Fletcher4.Checksum(
            0x3FFF_FFFF_C000, 0x800_1FFF_F7FF_E000, 0xB2AA_BF55_4D55_4000, 0xB1F5_6455_4DFF_F000))
        #expect(Fletcher4.checksum([1, 2, 3], wordOrder: .little) == Fletcher4.Checksum(0, 0, 0, 0))
        #expect(Fletcher4.checksum([], wordOrder: .big).array == [0, 0, 0, 0])
    }

    @Test func matchesTheDefinition() async {
        await propertyCheck(count: 200, input: Gen.uint8().array(of: 0...3000)) { bytes in
            #expect(Fletcher4.checksum(bytes, wordOrder: .little).array == Self.reference(bytes))
        }
    }

    /// Big-endian words are little-endian words of the bytes reversed within each word; the
    /// slice and native overloads agree with the array one.
    @Test func wordOrderAndOverloads() async {
        await propertyCheck(count: 200, input: Gen.uint8().array(of: 0...600)) { bytes in
            var swapped = bytes
            for start in stride(from: 0, to: bytes.count - bytes.count % 4, by: 4) {
                swapped[start..<(start + 4)].reverse()
            }
            #expect(Fletcher4.checksum(bytes, wordOrder: .big) == Fletcher4.checksum(swapped, wordOrder: .little))
            #expect(Fletcher4.native(bytes) == Fletcher4.checksum(bytes, wordOrder: .host))
            let padded = [9, 9] + bytes
            #expect(Fletcher4.native(padded[2...]) == Fletcher4.native(bytes))
        }
    }

    @Test func checksumWords() {
        let sum = Fletcher4.Checksum(1, 0x20, 0x300, 0xABC)
        #expect(Fletcher4.Checksum([1, 0x20, 0x300, 0xABC]) == sum)
        #expect(Fletcher4.Checksum([1, 2, 3]) == nil)
        #expect(sum.description == "1:20:300:abc")
    }
}
