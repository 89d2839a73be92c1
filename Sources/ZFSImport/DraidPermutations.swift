// dRAID permutation maps, as OpenZFS 2.1.11 generates them (`vdev_draid_generate_perms` in
// `module/zfs/vdev_draid.c`).
//
// Every dRAID of C children (2...255) uses one fixed map: `nperms` rows (256 below 32
// children, 512 from 32), each a permutation of 0..<C. Row 0 is the identity shuffled, each
// later row is the previous row shuffled again, by a Fisher–Yates pass from the last position
// down (position j swaps with `next() % (j + 1)`), where `next()` is xoroshiro128++ seeded
// with (0xd7a1d5eed, the map's seed). OpenZFS records, for each C, the seed and the first
// word of the fletcher-4 checksum of the whole map (its bytes read as native 32-bit words:
// that word is their sum modulo 2^64); a generated map whose word differs is refused. The
// seeds and checksums below are on-disk format constants (pools depend on them forever); they
// are the only thing taken from OpenZFS here.

import Synchronization
import ZFSFormat

/// The permutation maps of dRAID vdevs.
public enum DraidPermutations {
    /// `VDEV_DRAID_SEED`: the first word of every map's generator state.
    public static let baseSeed: UInt64 = 0xd7a1d5eed

    /// The children counts that have a map (`VDEV_DRAID_MIN_CHILDREN...VDEV_DRAID_MAX_CHILDREN`).
    public static let childrenRange = 2...255

    /// How many permutation rows the map for `children` has.
    public static func rowCount(children: Int) -> Int { children < 32 ? 256 : 512 }

    /// The map's seed (second word of the generator state) and recorded checksum word.
    public static func recorded(children: Int) -> (seed: UInt64, checksum: UInt64)? {
        guard childrenRange.contains(children) else { return nil }
        return table[children - childrenRange.lowerBound]
    }

    /// xoroshiro128++ 1.0 (Blackman and Vigna), the generator OpenZFS calls `vdev_draid_rand`.
    public struct Generator: Sendable {
        /// The two state words.
        public var state: (UInt64, UInt64)

        /// The generator OpenZFS starts for a map: state (``DraidPermutations/baseSeed``, `seed`).
        public init(seed: UInt64) { state = (DraidPermutations.baseSeed, seed) }

        /// The next value; advances the state.
        public mutating func next() -> UInt64 {
            let (a, b) = state
            let result = rotate(a &+ b, 17) &+ a
            let mixed = b ^ a
            state = (rotate(a, 49) ^ mixed ^ (mixed << 21), rotate(mixed, 28))
            return result
        }

        private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
    }

    /// The map for `children`, generated from its seed: `rowCount × children` bytes, row
    /// after row. No check is made here; see ``checksum(of:)`` and ``map(children:)``.
    public static func generate(children: Int, seed: UInt64) -> [UInt8] {
        precondition(childrenRange.contains(children))
        let rows = rowCount(children: children)
        var generator = Generator(seed: seed)
        var map = [UInt8](repeating: 0, count: rows * children)
        var row = (0..<children).map { UInt8($0) }
        for r in 0..<rows {
            var j = children - 1
            while j > 0 {
                let k = Int(generator.next() % UInt64(j + 1))
                row.swapAt(j, k)
                j -= 1
            }
            map.replaceSubrange(r * children..<(r + 1) * children, with: row)
        }
        return map
    }

    /// The first fletcher-4 word of `map` read as little-endian 32-bit words (what OpenZFS
    /// computes natively on x86 and arm64): their sum modulo 2^64. Trailing bytes that do not
    /// fill a word are ignored (every map is a multiple of 256 bytes).
    public static func checksum(of map: [UInt8]) -> UInt64 {
        var sum: UInt64 = 0
        var i = 0
        while i + 4 <= map.count {
            let word = UInt32(map[i]) | UInt32(map[i + 1]) << 8 | UInt32(map[i + 2]) << 16 | UInt32(map[i + 3]) << 24
            sum &+= UInt64(word)
            i += 4
        }
        return sum
    }

    /// Why a map is not valid: a row that is not a permutation, or the checksum word.
    public static func problem(in map: [UInt8], children: Int) -> String? {
        guard let recorded = recorded(children: children) else { return "no dRAID map exists for \(children) children (2...255)" }
        guard map.count == rowCount(children: children) * children else { return "the map has \(map.count) bytes" }
        for r in 0..<rowCount(children: children) {
            var seen = [Bool](repeating: false, count: children)
            for value in map[r * children..<(r + 1) * children] {
                guard Int(value) < children, !seen[Int(value)] else { return "row \(r) is not a permutation of 0..<\(children)" }
                seen[Int(value)] = true
            }
        }
        let sum = checksum(of: map)
        guard sum == recorded.checksum else {
            return "the generated map's checksum word is 0x\(String(sum, radix: 16)), OpenZFS records 0x\(String(recorded.checksum, radix: 16))"
        }
        return nil
    }

    /// The verified map for `children`, generated once per children count and kept.
    /// - Throws: ``FormatError`` `.invalidLayout` when no map exists for `children`, or the
    ///   generated map fails its check (which would be a bug here, never a pool's fault).
    public static func map(children: Int) throws(FormatError) -> [UInt8] {
        if let cached = cache.withLock({ $0[children] }) { return cached }
        guard let recorded = recorded(children: children) else {
            throw FormatError(.invalidLayout, "no dRAID permutation map exists for \(children) children (OpenZFS has maps for 2...255)")
        }
        let map = generate(children: children, seed: recorded.seed)
        if let problem = problem(in: map, children: children) {
            throw FormatError(.checksumMismatch, "the dRAID permutation map for \(children) children fails its check: \(problem)")
        }
        cache.withLock { $0[children] = map }
        return map
    }

    private static let cache = Mutex<[Int: [UInt8]]>([:])

    /// `draid_maps[]`: (seed, checksum word) for 2, 3, …, 255 children.
    static let table: [(seed: UInt64, checksum: UInt64)] = [
        (0x89ef3dabbcc7de37, 0x00000000433d433d),  // 2
        (0x89a57f3de98121b4, 0x00000000bcd8b7b5),  // 3
        (0xc9ea9ec82340c885, 0x00000001819d7c69),  // 4
        (0xf46733b7f4d47dfd, 0x00000002a1648d74),  // 5
        (0x88c3c62d8585b362, 0x00000003d3b0c2c4),  // 6
        (0x3a65d809b4d1b9d5, 0x000000055c4183ee),  // 7
        (0xe98930e3c5d2e90a, 0x00000006edfb0329),  // 8
        (0x5a5430036b982ccb, 0x00000008ceaf6934),  // 9
        (0x92bf389e9eadac74, 0x0000000b26668c09),  // 10
        (0x74ccebf1dcf3ae80, 0x0000000dd691358c),  // 11
        (0x8847e41a1a9f5671, 0x00000010a0c63c8e),  // 12
        (0x7481b56debf0e637, 0x0000001424121fe4),  // 13
        (0x559b8c44065f8967, 0x00000016ab2ff079),  // 14
        (0x34c49545a2ee7f01, 0x0000001a6028efd6),  // 15
        (0xb85f4fa81a7698f7, 0x0000001e95ff5e66),  // 16
        (0x6353e47b7e47aba0, 0x00000021a81fa0fe),  // 17
        (0xaa549746b1cbb81c, 0x00000026f02494c9),  // 18
        (0x892e343f2f31d690, 0x00000029eb392835),  // 19
        (0x76914824db98cc3f, 0x0000003004f31a7c),  // 20
        (0x4b3cbabf9cfb1d0f, 0x00000036363a2408),  // 21
        (0xf45c77abb4f035d4, 0x00000038dd0f3e84),  // 22
        (0x5e18bd7f3fd4baf4, 0x0000003f0660391f),  // 23
        (0xa7b3a4d285d6503b, 0x000000443dfc9ff6),  // 24
        (0x56ac7dd967521f5a, 0x0000004b03a87eb7),  // 25
        (0x3a42dfda4eb880f7, 0x000000522c719bba),  // 26
        (0xd200d2fc6b54bf60, 0x0000005760b4fdf5),  // 27
        (0xc52605bbd486c546, 0x0000005e00d8f74c),  // 28
        (0xc761779e63cd762f, 0x00000067be3cd85c),  // 29
        (0xca577b1e07f85ca5, 0x0000006f5517f3e4),  // 30
        (0xfd50a593c518b3d4, 0x0000007370e7778f),  // 31
        (0xc6c87ba5b042650b, 0x000000f7eb08a156),  // 32
        (0xc3880d0c9d458304, 0x0000010734b5d160),  // 33
        (0xe920927e4d8b2c97, 0x00000118c1edbce0),  // 34
        (0x8da7fcda87bde316, 0x0000012a3e9f9110),  // 35
        (0xcf09937491514a29, 0x0000013bd6a24bef),  // 36
        (0x9b5abbf345cbd7cc, 0x0000014b9d90fac3),  // 37
        (0x506312a44668d6a9, 0x0000015e1b5f6148),  // 38
        (0x71659ede62b4755f, 0x00000173ef029bcd),  // 39
        (0xa7fde73fb74cf2d7, 0x000001866fb72748),  // 40
        (0x19e8b461a1dea1d3, 0x000001a046f76b23),  // 41
        (0x031c9b868cc3e976, 0x000001afa64c49d3),  // 42
        (0xbaa5125faa781854, 0x000001c76789e278),  // 43
        (0x4ed55052550d721b, 0x000001d800ccd8eb),  // 44
        (0x0fd63ddbdff90677, 0x000001f08ad59ed2),  // 45
        (0x36d66546de7fdd6f, 0x000002016f09574b),  // 46
        (0x99f997e7eafb69d7, 0x0000021e42e47cb6),  // 47
        (0xbecd9c2571312c5d, 0x000002320fe2872b),  // 48
        (0xd97371329e488a32, 0x0000024cd73f2ca7),  // 49
        (0x30e9b136670749ee, 0x000002681c83b0e0),  // 50
        (0x11ad6bc8f47aaeb4, 0x0000027e9261b5d5),  // 51
        (0x68e445300af432c1, 0x0000029aa0eb7dbf),  // 52
        (0x910fb561657ea98c, 0x000002b3dca04853),  // 53
        (0xd619693d8ce5e7a5, 0x000002cc280e9c97),  // 54
        (0x24e281f564dbb60a, 0x000002e9fa842713),  // 55
        (0x947a7d3bdaab44c5, 0x000003046680f72e),  // 56
        (0x2d44fec9c093e0de, 0x00000324198ba810),  // 57
        (0x87743c272d29bb4c, 0x0000033ec48c9ac9),  // 58
        (0x96aa3b6f67f5d923, 0x0000034faead902c),  // 59
        (0x94a4f1faf520b0d3, 0x0000037d713ab005),  // 60
        (0xb13ed3a272f711a2, 0x00000397368f3cbd),  // 61
        (0x3b1b11805fa4a64a, 0x000003b8a5e2840c),  // 62
        (0x4c74caad9172ba71, 0x000003d4be280290),  // 63
        (0x035ff643923dd29e, 0x000003fad6c355e1),  // 64
        (0x768e9171b11abd3c, 0x0000040eb07fed20),  // 65
        (0x75880e6f78a13ddd, 0x000004433d6acf14),  // 66
        (0x910b9714f698a877, 0x00000451ea65d5db),  // 67
        (0x87f5db6f9fdcf5c7, 0x000004732169e3f7),  // 68
        (0x836d4968fbaa3706, 0x000004954068a380),  // 69
        (0xc567d73a036421ab, 0x000004bd7cb7bd3d),  // 70
        (0x619df40f240b8fed, 0x000004e376c2e972),  // 71
        (0x42763a680d5bed8e, 0x000005084275c680),  // 72
        (0x5866f064b3230431, 0x0000052906f2c9ab),  // 73
        (0x9fa08548b1621a44, 0x0000054708019247),  // 74
        (0xb6053078ce0fc303, 0x00000572cc5c72b0),  // 75
        (0x4a7aad7bf3890923, 0x0000058e987bc8e9),  // 76
        (0xe165613fd75b5a53, 0x000005c20473a211),  // 77
        (0x3ff154ac878163a6, 0x000005d659194bf3),  // 78
        (0x24b93ade0aa8a532, 0x0000060a201c4f8e),  // 79
        (0xc18e2d14cd9bb554, 0x0000062c55cfe48c),  // 80
        (0x98cc78302feb58b6, 0x0000066656a07194),  // 81
        (0xc6c5fd5a2abc0543, 0x0000067cff94fbf8),  // 82
        (0xa7962f514acbba21, 0x000006ab7b5afa2e),  // 83
        (0xba02545069ddc6dc, 0x000006d19861364f),  // 84
        (0x447c73192c35073e, 0x000006fce315ce35),  // 85
        (0x48beef9e2d42b0c2, 0x00000720a8e38b6b),  // 86
        (0x4874cf98541a35e0, 0x00000758382a2273),  // 87
        (0xad4cf8333a31127a, 0x00000781e1651b1b),  // 88
        (0x47ae4859d57888c1, 0x000007b27edbe5bc),  // 89
        (0x06f7723cfe5d1891, 0x000007dc2a96d8eb),  // 90
        (0xd4e44218d660576d, 0x0000080ac46f02d5),  // 91
        (0x7066702b0d5be1f2, 0x00000832c96d154e),  // 92
        (0x011209b4f9e11fb9, 0x0000085eefda104c),  // 93
        (0x47ffba30a0b35708, 0x00000899badc32dc),  // 94
        (0x1a95a6ac4538aaa8, 0x000008b6b69a42b2),  // 95
        (0xbda2b239bb2008eb, 0x000008f22d2de38a),  // 96
        (0x7ffa0bea90355c6c, 0x0000092e5b23b816),  // 97
        (0x1d56ba34be426795, 0x0000094f482e5d1b),  // 98
        (0x0aa89d45c502e93d, 0x00000977d94a98ce),  // 99
        (0x54369449f6857774, 0x000009c06c9b34cc),  // 100
        (0xf7d4dd8445b46765, 0x000009e5dc542259),  // 101
        (0xfa8866312f169469, 0x00000a16b54eae93),  // 102
        (0xd8a5aea08aef3ff9, 0x00000a381d2cbfe7),  // 103
        (0x66bcd2c3d5f9ef0e, 0x00000a8191817be7),  // 104
        (0x3fb13a47a012ec81, 0x00000ab562b9a254),  // 105
        (0x43100f01c9e5e3ca, 0x00000aeee84c185f),  // 106
        (0xca09c50ccee2d054, 0x00000b1c359c047d),  // 107
        (0xd7176732ac503f9b, 0x00000b578bc52a73),  // 108
        (0xed206e51f8d9422d, 0x00000b8083e0d960),  // 109
        (0x17ead5dc6ba0dcd6, 0x00000bcfb1a32ca8),  // 110
        (0x5f1dc21e38a969eb, 0x00000c0171becdd6),  // 111
        (0xddaa973de33ec528, 0x00000c3edaba4b95),  // 112
        (0x2a5eccd7735a3630, 0x00000c630664e7df),  // 113
        (0xafcccee5c0b71446, 0x00000cb65392f6e4),  // 114
        (0x8fa30c5e7b147e27, 0x00000cd4db391e55),  // 115
        (0x5afe0711fdfafd82, 0x00000d08cb4ec35d),  // 116
        (0x533a6090238afd4c, 0x00000d336f115d1b),  // 117
        (0x90cf11b595e39a84, 0x00000d8e041c2048),  // 118
        (0x0d61a3b809444009, 0x00000dcb798afe35),  // 119
        (0x7f34da0f54b0d114, 0x00000df3922664e1),  // 120
        (0xa52258d5b72f6551, 0x00000e4d37a9872d),  // 121
        (0xc1de54d7672878db, 0x00000e6583a94cf6),  // 122
        (0x1d03354316a414ab, 0x00000ebffc50308d),  // 123
        (0xcebdcc377665412c, 0x00000edee1997cea),  // 124
        (0x4ddd4c04b1a12344, 0x00000f21d64b373f),  // 125
        (0x64fc8f94e3973658, 0x00000f8f87a8896b),  // 126
        (0x68765f78034a334e, 0x00000fb8fe62197e),  // 127
        (0xaf36b871a303e816, 0x00000fec6f3afb1e),  // 128
        (0x2a4cbf73866c3a28, 0x00001027febfe4e5),  // 129
        (0x9cb128aacdcd3b2f, 0x0000106aa8ac569d),  // 130
        (0x5511d41c55869124, 0x000010bbd755ddf1),  // 131
        (0x42f92461937f284a, 0x000010fb8bceb3b5),  // 132
        (0xe2d89a1cf6f1f287, 0x0000114cf5331e34),  // 133
        (0xdc631a038956200e, 0x0000116428d2adc5),  // 134
        (0xb2e5ac222cd236be, 0x000011ca88e4d4d2),  // 135
        (0xbc7d8236655d88e7, 0x000011e39cb94e66),  // 136
        (0x073e02d88d2d8e75, 0x0000123136c7933c),  // 137
        (0x3ddb9c3873166be0, 0x00001280e4ec6d52),  // 138
        (0x7d3b1a845420e1b5, 0x000012c2e7cd6a44),  // 139
        (0x60102308aa7b2a6c, 0x000012fc490e6c7d),  // 140
        (0xdb22bb2f9eb894aa, 0x00001343f5a85a1a),  // 141
        (0xd853f879a13b1606, 0x000013bb7d5f9048),  // 142
        (0x001620a03f804b1d, 0x000013e74cc794fd),  // 143
        (0xfdb52dda76fbf667, 0x00001442d2f22480),  // 144
        (0xa9160110f66e24ff, 0x0000144b899f9dbb),  // 145
        (0x77306a30379ae03b, 0x000014cb98eb1f81),  // 146
        (0x14f5985d2752319d, 0x000014feab821fc9),  // 147
        (0xa4b8ff11de7863f8, 0x0000154a0e60b9c9),  // 148
        (0x44b345426455c1b3, 0x000015999c3c569c),  // 149
        (0x272677826049b46c, 0x000015c9697f4b92),  // 150
        (0x2f9216e2cd74fe40, 0x0000162b1f7bbd39),  // 151
        (0x706ae3e763ad8771, 0x00001661371c55e1),  // 152
        (0xf7fd345307c2480e, 0x000016e251f28b6a),  // 153
        (0x6e94e3d26b3139eb, 0x000016f2429bb8c6),  // 154
        (0x5458bbfbb781fcba, 0x0000173efdeca1b9),  // 155
        (0xa80e2afeccd93b33, 0x000017bfdcb78adc),  // 156
        (0x1e4ccbb22796cf9d, 0x00001826fdcc39c9),  // 157
        (0x8fba4b676aaa3663, 0x00001841a1379480),  // 158
        (0xf82b843814b315fa, 0x000018886e19b8a3),  // 159
        (0x7f21e920ecf753a3, 0x0000191812ca0ea7),  // 160
        (0x48bb8ea2c4caa620, 0x0000192f310faccf),  // 161
        (0x5cdb652b4952c91b, 0x0000199e1d7437c7),  // 162
        (0x6ac1ba6f78c06cd4, 0x000019cd11f82c70),  // 163
        (0x9faf5f9ca2669a56, 0x00001a18d5431f6a),  // 164
        (0xaa57e9383eb01194, 0x00001a9e7d253d85),  // 165
        (0x896967bf495c34d2, 0x00001afb8319b9fc),  // 166
        (0xdfad5f05de225f1b, 0x00001b3a59c3093b),  // 167
        (0xfd299a99f9f2abdd, 0x00001bb6f1a10799),  // 168
        (0xdda239e798fe9fd4, 0x00001bfae0c9692d),  // 169
        (0x5fca670414a32c3e, 0x00001c22129dbcff),  // 170
        (0x1bb8934314b087de, 0x00001c955db36cd0),  // 171
        (0xd96394b4b082200d, 0x00001cfc8619b7e6),  // 172
        (0xb612a7735b1c8cbc, 0x00001d303acdd585),  // 173
        (0x28e7430fe5875fe1, 0x00001d7ed5b3697d),  // 174
        (0x5038e89efdd981b9, 0x00001dc40ec35c59),  // 175
        (0x075fd78f1d14db7c, 0x00001e31c83b4a2b),  // 176
        (0xc50fafdb5021be15, 0x00001e7cdac82fbc),  // 177
        (0xe6dc7572ce7b91c7, 0x00001edd8bb454fc),  // 178
        (0x21f7843e7beda537, 0x00001f3a8e019d6c),  // 179
        (0xc83385e20b43ec82, 0x00001f70735ec137),  // 180
        (0xca818217dddb21fd, 0x0000201ca44c5a3c),  // 181
        (0xe6035defea48f933, 0x00002038e3346658),  // 182
        (0x47262a4f953dac5a, 0x000020c2e554314e),  // 183
        (0xe24c7246260873ea, 0x000021197e618d64),  // 184
        (0xeef6b57c9b58e9e1, 0x0000217ea48ecddc),  // 185
        (0x2becd3346e386142, 0x000021c496d4a5f9),  // 186
        (0x63c6207bdf3b40a3, 0x0000220e0f2eec0c),  // 187
        (0x3056ce8989767d4b, 0x0000228eb76cd137),  // 188
        (0x91af61c307cee780, 0x000022e17e2ea501),  // 189
        (0xda359da225f6d54f, 0x00002358a2debc19),  // 190
        (0x0a5f7a2a55607ba0, 0x0000238a79dac18c),  // 191
        (0x27bb75bf5224638a, 0x00002403a58e2351),  // 192
        (0x1ebfdb94630f5d0f, 0x00002492a10cb339),  // 193
        (0x6eae5e51d9c5f6fb, 0x000024ce4bf98715),  // 194
        (0x08d903b4daedc2e0, 0x0000250d1e15886c),  // 195
        (0xc722a2f7fa7cd686, 0x0000258a99ed0c9e),  // 196
        (0x8f71faf0e54e361d, 0x000025dee11976f5),  // 197
        (0x87f64695c91a54e7, 0x0000264e00a43da0),  // 198
        (0xc719cbac2c336b92, 0x000026d327277ac1),  // 199
        (0xe7e647afaf771ade, 0x000027523a5c44bf),  // 200
        (0x12d4b5c38ce8c946, 0x0000273898432545),  // 201
        (0xf2e0cd4067bdc94a, 0x000027e47bb2c935),  // 202
        (0x21b79f14d6d947d3, 0x0000281e64977f0d),  // 203
        (0x515093f952f18cd6, 0x0000289691a473fd),  // 204
        (0xd47b160a1b1022c8, 0x00002903e8b52411),  // 205
        (0xc02fc96684715a16, 0x0000297515608601),  // 206
        (0xef51e68efba72ed0, 0x000029ef73604804),  // 207
        (0x9e3be6e5448b4f33, 0x00002a2846ed074b),  // 208
        (0x81d446c6d5fec063, 0x00002a92ca693455),  // 209
        (0xff215de8224e57d5, 0x00002b2271fe3729),  // 210
        (0xe2524d9ba8f69796, 0x00002b64b99c3ba2),  // 211
        (0xf6b28e26097b7e4b, 0x00002bd768b6e068),  // 212
        (0x893a487f30ce1644, 0x00002c67f722b4b2),  // 213
        (0x386566c3fc9871df, 0x00002cc1cf8b4037),  // 214
        (0x1e0ed78edf1f558a, 0x00002d3948d36c7f),  // 215
        (0xe3bc20c31e61f113, 0x00002d6d6b12e025),  // 216
        (0xd6c3ad2e23021882, 0x00002deff7572241),  // 217
        (0xb4a9f95cf0f69c5a, 0x00002e67d537aa36),  // 218
        (0x6e98ed6f6c38e82f, 0x00002e9720626789),  // 219
        (0x2e01edba33fddac7, 0x00002f407c6b0198),  // 220
        (0x559d02e1f5f57ccc, 0x00002fb6a5ab4f24),  // 221
        (0xac18f5a916adcd8e, 0x0000304ae1c5c57e),  // 222
        (0x15789fbaddb86f4b, 0x0000306f6e019c78),  // 223
        (0xf4a9c36d5bc4c408, 0x000030da40434213),  // 224
        (0xf640f90fd2727f44, 0x00003189ed37b90c),  // 225
        (0xb5313d390d61884a, 0x000031e152616b37),  // 226
        (0x4bae6b3ce9160939, 0x0000321f40aeac42),  // 227
        (0x838c34480f1a66a1, 0x000032f389c0f78e),  // 228
        (0xb1c4a52c8e3d6060, 0x0000330062a40284),  // 229
        (0xe0f1110c6d0ed822, 0x0000338be435644f),  // 230
        (0x9f1a8ccdcea68d4b, 0x000034045a4e97e1),  // 231
        (0x3261ed62223f3099, 0x000034702cfc401c),  // 232
        (0xf2191e2311022d65, 0x00003509dd19c9fc),  // 233
        (0xf102a395c2033abc, 0x000035654dc96fae),  // 234
        (0x11fe378f027906b6, 0x000035b5193b0264),  // 235
        (0xf777f2c026b337aa, 0x000036704f5d9297),  // 236
        (0x1b04e9c2ee143f32, 0x000036dfbb7af218),  // 237
        (0x2fcec95266f9352c, 0x00003785c8df24a9),  // 238
        (0xfe2b0e47e427dd85, 0x000037cbdf5da729),  // 239
        (0x72b49bf2225f6c6d, 0x0000382227c15855),  // 240
        (0x50486b43df7df9c7, 0x0000389b88be6453),  // 241
        (0x5192a3e53181c8ab, 0x000038ddf3d67263),  // 242
        (0xe9f5d8365296fd5e, 0x0000399f1c6c9e9c),  // 243
        (0xc740263f0301efa8, 0x00003a147146512d),  // 244
        (0x23cd0f2b5671e67d, 0x00003ab10bcc0d9d),  // 245
        (0x002ccc7e5cd41390, 0x00003ad6cd14a6c0),  // 246
        (0x9aafb3c02544b31b, 0x00003b8cb8779fb0),  // 247
        (0x72ba07a78b121999, 0x00003c24142a5a3f),  // 248
        (0x3d784aa58edfc7b4, 0x00003cd084817d99),  // 249
        (0xaab750424d8004af, 0x00003d506a8e098e),  // 250
        (0x84403fcf8e6b5ca2, 0x00003d4c54c2aec4),  // 251
        (0x71eb7455ec98e207, 0x00003e655715cf2c),  // 252
        (0xd752b4f19301595b, 0x00003ecd7b2ca5ac),  // 253
        (0xc4674129750499de, 0x00003e99e86d3e95),  // 254
        (0x9772baff5cd12ef5, 0x00003f895c019841),  // 255
    ]
}
