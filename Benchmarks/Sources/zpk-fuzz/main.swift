// zpk-fuzz: seeded mutation fuzzing of the nvlist decoder on real OpenZFS bytes.
//
//   swift run -c release zpk-fuzz [--iterations N (1000000)] [--seed S (1)] [--from I]
//   swift run -c release zpk-fuzz --mos …     # the MOS object decoders instead (MOSFuzz.swift)
//
// Inputs (all from Tests/Fixtures, so a seed replays exactly on any machine):
//   label   the whole 256 KiB of label0-raidz-leaf.bin, mutated in place (mostly inside the
//           config area, sometimes anywhere), then its config area decoded with NVList;
//   packed  seeds of the packed nvlist itself: the label's XDR config, the cache file (NATIVE,
//           little-endian), and our re-encodings of each in the other encoding and in
//           big-endian NATIVE (decoded with acceptingForeignNative), mutated as copies.
// Mutations (1 to 4 per iteration): bit flip, random byte, interesting byte (0, 0xFF, 0x7F, 0x80,
// 1), interesting 32/64-bit word at an aligned offset in either byte order (length and count
// fields: 0, 1, 24, INT32_MAX, 0x80000000, all ones, the old value ± 1, …), truncation, splice
// of two inputs, insertion and deletion of bytes, and copying a chunk over another.
//
// Oracle: whatever decodes must re-encode (as XDR and as NATIVE) and decode to an equal list,
// and re-encoding that must give the same bytes. Any mismatch, or an encoder error on a decoded
// list, exits 1. A crash is a failure by itself: a fatal-signal handler prints the iteration,
// and `--from I --iterations 1` replays it (every iteration has its own generator, seeded from
// the run's seed and the iteration number).
//
// One label iteration in 16 also runs the whole label through
// `VdevLabel(decoding:)`, `verifiedConfigBytes()` and `uberblockSlots(ashift:)`, and checks that
// a label whose mutations all missed the config block still verifies.

import BenchSupport
import Foundation
import ZFSFormat

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Options

struct Options {
    var iterations = 1_000_000
    var seed: UInt64 = 1
    var from = 0
    var mos = false

    static func usage(_ problem: String?) -> Never {
        if let problem { FileHandle.standardError.write(Data("zpk-fuzz: \(problem)\n".utf8)) }
        print("usage: zpk-fuzz [--mos] [--iterations N (1000000)] [--seed S (1)] [--from I (0)]")
        exit(problem == nil ? 0 : 64)
    }

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        var it = arguments.dropFirst().makeIterator()
        while let arg = it.next() {
            if arg == "--mos" {
                options.mos = true
                continue
            }
            let value = it.next()
            switch arg {
            case "--iterations":
                guard let n = value.flatMap({ Int($0) }), n >= 0 else { usage("--iterations takes a number") }
                options.iterations = n
            case "--seed":
                guard let n = value.flatMap({ UInt64($0) }) else { usage("--seed takes a number") }
                options.seed = n
            case "--from":
                guard let n = value.flatMap({ Int($0) }), n >= 0 else { usage("--from takes an iteration number") }
                options.from = n
            case "-h", "--help": usage(nil)
            default: usage("unknown argument \(arg)")
            }
        }
        return options
    }
}

let options = Options.parse(CommandLine.arguments)
let iterations = options.iterations
let seed = options.seed
let from = options.from

// MARK: - Crash reporting

/// The iteration in progress, for the fatal-signal handler (written by the one fuzzing thread).
nonisolated(unsafe) let currentIteration = UnsafeMutablePointer<Int>.allocate(capacity: 1)
currentIteration.pointee = -1
/// The handler's text, prepared before any signal can arrive: the handler must not allocate.
nonisolated(unsafe) let crashPrefix = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 64)
nonisolated(unsafe) let crashSuffix = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 96)
nonisolated(unsafe) let crashDigits = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 24)
nonisolated(unsafe) let crashLengths = UnsafeMutablePointer<Int>.allocate(capacity: 2)

/// On a fatal signal, writes "zpk-fuzz: fatal signal in iteration N …" with async-signal-safe
/// calls only, then dies of the same signal (so the exit status still says "crashed").
func installCrashReporter() {
    let prefix = Array("\nzpk-fuzz: fatal signal in iteration ".utf8)
    let suffix = Array(" (replay it: the same --seed, --from N --iterations 1)\n".utf8)
    _ = crashPrefix.initialize(from: prefix)
    _ = crashSuffix.initialize(from: suffix)
    crashLengths[0] = prefix.count
    crashLengths[1] = suffix.count
    let handler: @convention(c) (Int32) -> Void = { signal in
        var n = currentIteration.pointee
        var count = 0
        if n <= 0 { crashDigits[23] = UInt8(ascii: "0"); count = 1; n = 0 }
        while n > 0 && count < 24 {
            crashDigits[23 - count] = UInt8(ascii: "0") + UInt8(n % 10)
            n /= 10
            count += 1
        }
        _ = write(2, crashPrefix.baseAddress, crashLengths[0])
        _ = write(2, crashDigits.baseAddress! + (24 - count), count)
        _ = write(2, crashSuffix.baseAddress, crashLengths[1])
        Glibc.signal(signal, SIG_DFL)
        raise(signal)
    }
    for sig in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT] { signal(sig, handler) }
}

// MARK: - Inputs


let labelBase: [UInt8]
let cacheBase: [UInt8]
do {
    labelBase = try readFile(Checkout.fixture("label0-raidz-leaf.bin"))
    cacheBase = try readFile(Checkout.fixture("zpool.cache"))
} catch {
    fail("cannot read the fixtures under \(Checkout.fixture("").path): \(error)")
}
guard labelBase.count == LabelFacts.labelByteCount, let configBase = packedConfig(ofLabel: labelBase) else {
    fail("label0-raidz-leaf.bin is not a 256 KiB label with a decodable config")
}

struct Seed {
    var name: String
    var bytes: [UInt8]
    var foreignNative: Bool
}

var seeds: [Seed] = [
    Seed(name: "label config (XDR)", bytes: configBase, foreignNative: false),
    Seed(name: "zpool.cache (NATIVE LE)", bytes: cacheBase, foreignNative: false),
]
do {
    let config = try NVList(decoding: configBase)
    let cache = try NVList(decoding: cacheBase)
    seeds.append(Seed(name: "label config as NATIVE host", bytes: try config.encoded(as: .native), foreignNative: false))
    seeds.append(Seed(name: "label config as NATIVE BE", bytes: try config.encoded(as: .native, byteOrder: .big), foreignNative: true))
    seeds.append(Seed(name: "zpool.cache as XDR", bytes: try cache.encoded(as: .xdr), foreignNative: false))
} catch {
    fail("the fixtures do not decode and re-encode: \(error)")
}
let spliceSources = seeds.map(\.bytes)

// MARK: - Mutations

let interestingBytes: [UInt8] = [0, 0xFF, 0x7F, 0x80, 1]
let interestingWords: [UInt32] = [0, 1, 2, 3, 4, 7, 8, 16, 24, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
                                  0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFFE, 27, 28, 100, 101]

enum Target: String, CaseIterable {
    case label, packed
}

struct Fuzzer {
    var rng: SplitMix64

    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(rng.next() % UInt64(n)) }
    mutating func chance(_ oneIn: Int) -> Bool { below(oneIn) == 0 }

    /// A position in `0..<count`, biased towards `hot` (where the nvlist bytes are).
    mutating func position(count: Int, hot: Range<Int>) -> Int {
        guard count > 0 else { return 0 }
        if !hot.isEmpty, !chance(8) {
            return min(count - 1, hot.lowerBound + below(hot.count))
        }
        return below(count)
    }

    /// Overwrites bytes in place; records what was there into `undo` (for the label buffer).
    mutating func overwrite(_ buffer: inout [UInt8], hot: Range<Int>, undo: inout [(Int, UInt8)]) {
        let count = buffer.count
        guard count > 0 else { return }
        func set(_ i: Int, _ v: UInt8, _ buffer: inout [UInt8], _ undo: inout [(Int, UInt8)]) {
            guard i >= 0, i < buffer.count else { return }
            undo.append((i, buffer[i]))
            buffer[i] = v
        }
        switch below(6) {
        case 0:  // bit flip
            let i = position(count: count, hot: hot)
            set(i, buffer[i] ^ (1 << UInt8(below(8))), &buffer, &undo)
        case 1:  // random byte
            set(position(count: count, hot: hot), UInt8(truncatingIfNeeded: rng.next()), &buffer, &undo)
        case 2:  // interesting byte
            set(position(count: count, hot: hot), interestingBytes[below(interestingBytes.count)], &buffer, &undo)
        case 3, 4:  // interesting word at an aligned offset: sizes, counts, types, lengths
            let width = chance(4) ? 8 : 4
            let i = position(count: count, hot: hot) & ~(width - 1)
            guard i + width <= count else { return }
            var old: UInt64 = 0
            let big = !chance(3)
            for k in 0..<width { old = old << 8 | UInt64(buffer[big ? i + k : i + width - 1 - k]) }
            var value: UInt64
            switch below(4) {
            case 0: value = old &+ 1
            case 1: value = old &- 1
            case 2: value = UInt64(below(64))
            default: value = UInt64(interestingWords[below(interestingWords.count)])
            }
            if width == 8, chance(2) { value = value << 32 | value >> 32 }
            for k in 0..<width {
                let shift = UInt64(8 * (width - 1 - k))
                set(big ? i + k : i + width - 1 - k, UInt8(truncatingIfNeeded: value >> shift), &buffer, &undo)
            }
        default:  // copy a chunk of another input (or this one) over this one
            let source = spliceSources[below(spliceSources.count)]
            let length = 1 + below(64)
            let from = below(max(1, source.count - length))
            let to = position(count: count, hot: hot)
            for k in 0..<length where from + k < source.count { set(to + k, source[from + k], &buffer, &undo) }
        }
    }

    /// Mutations that may change the length; for copies of packed lists.
    mutating func reshape(_ buffer: inout [UInt8]) {
        let count = buffer.count
        switch below(4) {
        case 0:  // truncation
            buffer.removeLast(count == 0 ? 0 : below(count) + 1)
        case 1:  // splice: a prefix of this one and a suffix of another
            let other = spliceSources[below(spliceSources.count)]
            let cut = below(count + 1)
            let otherCut = below(other.count + 1)
            buffer = Array(buffer[..<cut]) + other[otherCut...]
        case 2:  // insertion of 1…16 random bytes (often shifts the 4-byte alignment)
            let at = below(count + 1)
            let n = 1 + below(16)
            buffer.insert(contentsOf: (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
        default:  // deletion of a range
            guard count > 0 else { return }
            let at = below(count)
            buffer.removeSubrange(at..<min(count, at + 1 + below(32)))
        }
    }
}

// MARK: - Oracle

func containsNaN(_ list: NVList) -> Bool {
    list.pairs.contains { pair in
        switch pair.value {
        case .double(let d): d.isNaN
        case .nvlist(let l): containsNaN(l)
        case .nvlistArray(let ls): ls.contains(where: containsNaN)
        default: false
        }
    }
}

/// Whether a nested list has a version other than 0. OpenZFS's NATIVE decoder rejects such a
/// list (`nvs_embedded` checks the copied `nvl_version`) while its XDR decoder accepts it (it
/// checks before reading the version), and our decoders do the same; so such a list decoded
/// from XDR has no NATIVE encoding that decodes, and the cross-encoding check skips it.
func hasNestedVersion(_ list: NVList) -> Bool {
    list.pairs.contains { pair in
        switch pair.value {
        case .nvlist(let l): l.version != 0 || hasNestedVersion(l)
        case .nvlistArray(let ls): ls.contains { $0.version != 0 || hasNestedVersion($0) }
        default: false
        }
    }
}

nonisolated(unsafe) var crossChecksSkipped = 0

/// Returns a description of the first way `list` fails to round-trip, or `nil`: first in the
/// encoding it was decoded from (the contract), then in the other one.
func roundTripFailure(_ list: NVList, decodedFrom encoding: NVList.Encoding) -> String? {
    let other: NVList.Encoding = encoding == .xdr ? .native : .xdr
    var encodings = [encoding]
    if other == .native && hasNestedVersion(list) { crossChecksSkipped += 1 } else { encodings.append(other) }
    for encoding in encodings {
        let first: [UInt8]
        do { first = try list.encoded(as: encoding) } catch { return "a decoded list does not encode as \(encoding): \(error)" }
        let again: NVList
        do { again = try NVList(decoding: first) } catch { return "our \(encoding) encoding of a decoded list does not decode: \(error)" }
        let second: [UInt8]
        do { second = try again.encoded(as: encoding) } catch { return "re-decoded list does not encode as \(encoding): \(error)" }
        guard second == first else { return "\(encoding) re-encoding is not stable (\(first.count) then \(second.count) bytes)" }
        guard again == list || containsNaN(list) else { return "\(encoding) round trip changed the list" }
    }
    return nil
}

// MARK: - Run

// --mos: the MOS object decoders instead (MOSFuzz.swift). Here, after the inputs above, because
// Fuzzer's splice mutation copies from `spliceSources` (the nvlist seeds: foreign bytes).
if options.mos {
    installCrashReporter()
    exit(MOSFuzz.run(iterations: iterations, seed: seed, from: from))
}


installCrashReporter()

var label = labelBase  // mutated in place and restored from `undo` after every iteration
let configHot = LabelFacts.configOffset..<(LabelFacts.configOffset + configBase.count + 64)
let configArea = LabelFacts.configOffset..<(LabelFacts.configOffset + LabelFacts.configCapacity)
var undo: [(Int, UInt8)] = []
undo.reserveCapacity(512)

var decoded: [Target: Int] = [.label: 0, .packed: 0]
var threw: [Target: Int] = [.label: 0, .packed: 0]
var errorCodes: [String: Int] = [:]
var labelAPIChecks = 0
var failures = 0

@MainActor
func report(_ iteration: Int, _ what: String, _ detail: String) {
    failures += 1
    print("FAILURE iteration \(iteration) (\(what)): \(detail)  [replay: --seed \(seed) --from \(iteration) --iterations 1]")
}

print("zpk-fuzz: \(iterations) iterations from \(from), seed \(seed)")
print("inputs: label0-raidz-leaf.bin (256 KiB, config \(configBase.count) bytes), " + seeds.map { "\($0.name) \($0.bytes.count) B" }.joined(separator: ", "))
print("label API: 1 label iteration in 16 also runs VdevLabel decode, verifiedConfigBytes, uberblockSlots")

let clock = ContinuousClock()
let started = clock.now
for iteration in from..<(from + iterations) {
    currentIteration.pointee = iteration
    var fuzz = Fuzzer(rng: SplitMix64(seed: seed &* 0x2545_F491_4F6C_DD1D ^ UInt64(iteration) &* 0x9E37_79B9_7F4A_7C15))
    let mutations = 1 + fuzz.below(4)
    let target: Target = fuzz.chance(2) ? .label : .packed
    var result: NVList? = nil
    var encoding = NVList.Encoding.xdr
    var what = ""
    switch target {
    case .label:
        undo.removeAll(keepingCapacity: true)
        for _ in 0..<mutations { fuzz.overwrite(&label, hot: configHot, undo: &undo) }
        // Truncate the view of the config area sometimes (a short read).
        let end = fuzz.chance(8) ? configArea.lowerBound + fuzz.below(configBase.count + 8) : configArea.upperBound
        what = "label, \(mutations) mutations, config area ..< 0x\(String(end, radix: 16))"
        do {
            result = try NVList(decoding: label[configArea.lowerBound..<end])
        } catch {
            errorCodes["\(error.code)", default: 0] += 1
        }
        if fuzz.chance(16) {
            labelAPIChecks += 1
            do {
                let vdevLabel = try VdevLabel(decoding: label, absoluteOffset: 0, index: 0)
                let missedConfigBlock = !undo.contains { $0.0 >= LabelFacts.configOffset && $0.0 < LabelFacts.configOffset + 0x1C000 }
                let unchanged = undo.allSatisfy { labelBase[$0.0] == label[$0.0] }
                do {
                    let config = try vdevLabel.verifiedConfigBytes()
                    _ = try? NVList(decoding: config)
                } catch {
                    if missedConfigBlock || unchanged {
                        report(iteration, what, "the config block was not mutated but does not verify: \(error)")
                    }
                }
                blackHole(vdevLabel.uberblockSlots(ashift: 9))
            } catch {
                report(iteration, what, "a 256 KiB label at offset 0 does not decode: \(error)")
            }
        }
        for (i, old) in undo.reversed() { label[i] = old }
    case .packed:
        let source = seeds[fuzz.below(seeds.count)]
        var bytes = source.bytes
        var unused: [(Int, UInt8)] = []
        for _ in 0..<mutations {
            if fuzz.chance(4) {
                fuzz.reshape(&bytes)
            } else {
                fuzz.overwrite(&bytes, hot: 0..<bytes.count, undo: &unused)
                unused.removeAll(keepingCapacity: true)
            }
        }
        what = "\(source.name), \(mutations) mutations, \(bytes.count) bytes"
        do {
            result = try NVList(decoding: bytes, acceptingForeignNative: source.foreignNative || fuzz.chance(2))
            encoding = bytes[0] == NVList.Encoding.native.rawValue ? .native : .xdr
        } catch {
            errorCodes["\(error.code)", default: 0] += 1
        }
    }
    if let result {
        decoded[target, default: 0] += 1
        if let failure = roundTripFailure(result, decodedFrom: encoding) { report(iteration, what, failure) }
    } else {
        threw[target, default: 0] += 1
    }
    if failures >= 20 { print("stopping after 20 failures"); break }
}
let elapsed = clock.now - started
currentIteration.pointee = -1

// The label buffer must be back to the fixture: a check on the fuzzer itself.
if label != labelBase { report(-1, "fuzzer", "the label buffer was not restored") }

let total = decoded.values.reduce(0, +) + threw.values.reduce(0, +)
print("")
for target in Target.allCases {
    print("\(target.rawValue): \(decoded[target]!) decoded (all re-encoded and decoded to themselves), \(threw[target]!) threw FormatError")
}
print("XDR-decoded lists with a nested version != 0 (NATIVE cross-check skipped, see hasNestedVersion): \(crossChecksSkipped)")
print("errors by code: " + errorCodes.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
print("VdevLabel checks: \(labelAPIChecks)")
print("iterations: \(total) in \(String(format: "%.1f", elapsed.seconds)) s = \(String(format: "%.0f", Double(total) / elapsed.seconds)) iterations/s")
print(failures == 0 ? "result: PASS (no crash, no round-trip mismatch)" : "result: FAIL (\(failures) failures)")
exit(failures == 0 ? 0 : 1)
