// nvlist-bench: ZFSFormat's packed-nvlist codec against libnvpair (OpenZFS 2.1.11), same run.
//
// The machines are shared and noisy, so no number here is meaningful alone: every speed is a
// ratio against a reference measured in the same run, in interleaved rounds (ours, reference,
// ours, reference, …, alternating which goes first), and the summary is the median ratio with
// its spread. Run from Benchmarks/:
//
//   swift run -c release nvlist-bench [--rounds N] [--passes N] [--min-seconds S] [--no-ztest]
//                                     [--no-instructions]
//
// Corpus: label config nvlists (XDR) of the checked-in fixture plus, when `ztest` is installed,
// label 0 of every leaf of three small pools it makes at run time; and the cache files (NATIVE).
// Reference: Benchmarks/reference/nvlist_ref.c, built here with gcc against Debian's libnvpair.
// Also measured: labels read + verified per second (VdevLabel), against SHA-256 of the same
// bytes; and, when valgrind is installed, instructions per pass of both sides (callgrind),
// which do not depend on the machine's load.
//
// For profiling our side alone: `nvlist-bench --profile xdr-decode [--passes N] [--corpus FILE]`
// under `valgrind --tool=callgrind` (strip debug info first: valgrind 3.19 cannot read DWARF 5).

import BenchSupport
import Crypto
import Foundation
import ZFSFormat

// MARK: - Options

struct Options {
    var rounds = 15
    var passes: Int? = nil
    var minSeconds = 0.2
    var useZtest = true
    /// `--profile xdr-decode|xdr-encode|native-decode|native-encode`: run only our side of one
    /// operation on the fixtures (for `valgrind --tool=callgrind`); no reference, no ratios.
    var profile: String? = nil
    /// `--corpus FILE` (with `--profile`): the corpus file the harness wrote, instead of the fixtures.
    var corpusFile: String? = nil
    /// Count instructions of both sides under callgrind after the timed rounds (if valgrind exists).
    var instructions = true

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        var it = arguments.dropFirst().makeIterator()
        func value(_ flag: String) -> String {
            guard let v = it.next() else { usage("\(flag) needs a value") }
            return v
        }
        while let arg = it.next() {
            switch arg {
            case "--rounds": options.rounds = Int(value(arg)) ?? { usage("--rounds takes a number") }()
            case "--passes": options.passes = Int(value(arg)) ?? { usage("--passes takes a number") }()
            case "--min-seconds": options.minSeconds = Double(value(arg)) ?? { usage("--min-seconds takes a number") }()
            case "--no-ztest": options.useZtest = false
            case "--no-instructions": options.instructions = false
            case "--corpus": options.corpusFile = value(arg)
            case "--profile":
                options.profile = value(arg)
                options.useZtest = false
                guard ["xdr-decode", "xdr-encode", "native-decode", "native-encode"].contains(options.profile!) else {
                    usage("--profile takes xdr-decode, xdr-encode, native-decode or native-encode")
                }
            case "-h", "--help": usage(nil)
            default: usage("unknown argument \(arg)")
            }
        }
        guard options.rounds >= 1 else { usage("--rounds must be at least 1") }
        return options
    }

    static func usage(_ problem: String?) -> Never {
        if let problem { FileHandle.standardError.write(Data("nvlist-bench: \(problem)\n".utf8)) }
        print("usage: nvlist-bench [--rounds N (15)] [--passes N (calibrated)] [--min-seconds S (0.2)] [--no-ztest]")
        print("       [--no-instructions]")
        print("       nvlist-bench --profile xdr-decode|xdr-encode|native-decode|native-encode [--passes N (2000)] [--corpus FILE]")
        exit(problem == nil ? 0 : 64)
    }
}


func shell(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    do { try process.run() } catch { return (-1, "\(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

let options = Options.parse(CommandLine.arguments)
let clock = ContinuousClock()

// MARK: - Machine

func machineDescription() -> String {
    let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let model = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("model name") })
        .map { $0.split(separator: ":", maxSplits: 1).last!.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    return "\(ProcessInfo.processInfo.activeProcessorCount) CPUs, \(model)"
}

print("nvlist-bench: ZFSFormat NVList vs libnvpair (OpenZFS 2.1.11), ratios measured in one run")
print("machine: \(machineDescription())")
print("date: \(Date())")

// MARK: - Corpus

let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("nvlist-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
do { try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: false) } catch {
    fail("cannot create \(scratch.path): \(error)")
}
defer { try? FileManager.default.removeItem(at: scratch) }

var labelSamples: [Sample] = []
var cacheSamples: [Sample] = []
do {
    labelSamples.append(Sample(origin: "fixture label0-raidz-leaf.bin", bytes: try readFile(Checkout.fixture("label0-raidz-leaf.bin"))))
    cacheSamples.append(Sample(origin: "fixture zpool.cache", bytes: try readFile(Checkout.fixture("zpool.cache"))))
} catch {
    fail("cannot read the fixtures under \(Checkout.fixture("").path): \(error)")
}

var corpusSource = "fixtures only"
if !options.useZtest {
    corpusSource = "fixtures only (--no-ztest)"
} else if let ztest = ZtestCorpus.ztestPath() {
    let ztestDir = scratch.appendingPathComponent("ztest")
    try? FileManager.default.createDirectory(at: ztestDir, withIntermediateDirectories: false)
    print("making pools with \(ztest) (about 30 s)…")
    let started = clock.now
    let made = ZtestCorpus.make(ztest: ztest, in: ztestDir)
    for note in made.notes { print("  \(note)") }
    print("  took \(String(format: "%.1f", (clock.now - started).seconds)) s")
    labelSamples += made.labels
    cacheSamples += made.cacheFiles
    corpusSource = made.labels.isEmpty ? "fixtures only (ztest made no pool)" : "fixtures + labels of \(made.cacheFiles.count) pools made by ztest in this run"
} else {
    corpusSource = "fixtures only (ztest not installed)"
}

/// One codec corpus: packed lists, their decoded values, and their encoding.
struct CodecCorpus {
    var name: String
    var encoding: NVList.Encoding
    var packed: [[UInt8]]
    var lists: [NVList]
    var bytesPerPass: Int { packed.reduce(0) { $0 + $1.count } }
    var pairsPerPass: Int { lists.reduce(0) { $0 + $1.pairs.count } }
}

func makeCorpus(name: String, encoding: NVList.Encoding, from samples: [Sample], extract: ([UInt8]) -> [UInt8]?) -> CodecCorpus {
    var corpus = CodecCorpus(name: name, encoding: encoding, packed: [], lists: [])
    var identical = 0
    for sample in samples {
        guard let packed = extract(sample.bytes) else {
            print("  skipped \(sample.origin): no decodable nvlist")
            continue
        }
        let list: NVList
        do { list = try NVList(decoding: packed) } catch { print("  skipped \(sample.origin): \(error)"); continue }
        corpus.packed.append(packed)
        corpus.lists.append(list)
        if (try? list.encoded(as: encoding)) == packed { identical += 1 }
    }
    print("  \(name): \(corpus.packed.count) lists, \(corpus.bytesPerPass) bytes, \(corpus.pairsPerPass) top-level pairs; "
        + "our re-encoding is byte-identical for \(identical) of \(corpus.packed.count)")
    return corpus
}

print("corpus: \(corpusSource)")
let xdrCorpus = makeCorpus(name: "label configs (XDR)", encoding: .xdr, from: labelSamples, extract: packedConfig(ofLabel:))
let nativeCorpus = makeCorpus(name: "cache files (NATIVE)", encoding: .native, from: cacheSamples) { bytes in
    guard let list = try? NVList(decoding: bytes), let size = try? list.encodedSize(as: .native) else { return nil }
    return Array(bytes.prefix(size))
}
guard !xdrCorpus.packed.isEmpty else { fail("no label config decoded; nothing to measure") }

if let profile = options.profile {
    var corpus = profile.hasPrefix("xdr") ? xdrCorpus : nativeCorpus
    if let path = options.corpusFile {
        let records = readCorpusFile(URL(fileURLWithPath: path))
        corpus = CodecCorpus(name: path, encoding: profile.hasPrefix("xdr") ? .xdr : .native, packed: records,
                             lists: records.compactMap { try? NVList(decoding: $0) })
        guard !records.isEmpty, corpus.lists.count == records.count else { fail("\(path) holds no decodable corpus") }
    }
    let passes = options.passes ?? 2000
    let elapsed = profile.hasSuffix("decode") ? ourDecode(corpus, passes: passes) : ourEncode(corpus, passes: passes)
    print("profile \(profile): \(passes) passes in \(fmt(elapsed.seconds, 3)) s (no reference: not a benchmark result)")
    exit(0)
}

// MARK: - Reference program

let referenceSource = Checkout.benchmarks("reference/nvlist_ref.c")
let referenceBinary = scratch.appendingPathComponent("nvlist_ref")
let gccArguments = ["-O2", "-I/usr/include/libspl", "-I/usr/include/libzfs", referenceSource.path, "-lnvpair", "-o", referenceBinary.path]
let gcc = shell("/usr/bin/env", ["gcc"] + gccArguments)
guard gcc.status == 0 else {
    fail("could not build the libnvpair reference (gcc \(gccArguments.joined(separator: " "))):\n\(gcc.output)\n"
        + "install OpenZFS userland first: scripts/install-openzfs")
}
print("reference: gcc \(gccArguments.joined(separator: " ")) (\(shell("/usr/bin/env", ["gcc", "-dumpfullversion"]).output.trimmingCharacters(in: .whitespacesAndNewlines)))")

func writeCorpusFile(_ corpus: CodecCorpus) -> URL {
    var file: [UInt8] = []
    for packed in corpus.packed {
        withUnsafeBytes(of: UInt32(packed.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(contentsOf: packed)
    }
    let url = scratch.appendingPathComponent("\(corpus.encoding).corpus")
    guard FileManager.default.createFile(atPath: url.path, contents: Data(file)) else { fail("cannot write \(url.path)") }
    return url
}

func readCorpusFile(_ url: URL) -> [[UInt8]] {
    guard let bytes = try? readFile(url) else { return [] }
    var records: [[UInt8]] = []
    var at = 0
    while at + 4 <= bytes.count {
        let n = Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
        at += 4
        guard at + n <= bytes.count else { break }
        records.append(Array(bytes[at..<(at + n)]))
        at += n
    }
    return records
}

struct ReferenceResult {
    var decode: Duration
    var encode: Duration
}

func runReference(corpusFile: URL, passes: Int, mode: String, corpus: CodecCorpus, encodedOut: URL? = nil) -> ReferenceResult {
    let result = shell(referenceBinary.path, [corpusFile.path, String(passes), mode] + (encodedOut.map { [$0.path] } ?? []))
    guard result.status == 0 else { fail("the libnvpair reference failed (status \(result.status)):\n\(result.output)") }
    var fields: [String: UInt64] = [:]
    for field in result.output.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
        let kv = field.split(separator: "=")
        if kv.count == 2, let v = UInt64(kv[1]) { fields[String(kv[0])] = v }
    }
    guard let d = fields["decode_ns"], let e = fields["encode_ns"], let bytes = fields["bytes"], let pairs = fields["pairs"] else {
        fail("cannot parse the reference's output: \(result.output)")
    }
    guard bytes == UInt64(corpus.bytesPerPass), pairs == UInt64(corpus.pairsPerPass) else {
        fail("libnvpair saw \(bytes) bytes / \(pairs) pairs per pass, we saw \(corpus.bytesPerPass) / \(corpus.pairsPerPass)")
    }
    return ReferenceResult(decode: .nanoseconds(Int64(d)), encode: .nanoseconds(Int64(e)))
}

// MARK: - Our side

@inline(never)
func ourDecode(_ corpus: CodecCorpus, passes: Int) -> Duration {
    var pairs = 0
    let start = clock.now
    for _ in 0..<passes {
        for packed in corpus.packed {
            do {
                let list = try NVList(decoding: packed)
                pairs &+= list.pairs.count
                blackHole(list)
            } catch {
                fail("decode failed during the benchmark: \(error)")
            }
        }
    }
    let elapsed = clock.now - start
    blackHole(pairs)
    return elapsed
}

@inline(never)
func ourEncode(_ corpus: CodecCorpus, passes: Int) -> Duration {
    var bytes = 0
    let start = clock.now
    for _ in 0..<passes {
        for list in corpus.lists {
            do {
                let packed = try list.encoded(as: corpus.encoding)
                bytes &+= packed.count &+ Int(packed[packed.count - 1])
                blackHole(packed)
            } catch {
                fail("encode failed during the benchmark: \(error)")
            }
        }
    }
    let elapsed = clock.now - start
    blackHole(bytes)
    return elapsed
}

// MARK: - Cross-check with libnvpair's own bytes

let corpora = [xdrCorpus] + (nativeCorpus.packed.isEmpty ? [] : [nativeCorpus])
var corpusFiles: [URL] = []
for corpus in corpora {
    let file = writeCorpusFile(corpus)
    corpusFiles.append(file)
    let theirs = scratch.appendingPathComponent("\(corpus.encoding).libnvpair-encoded")
    _ = runReference(corpusFile: file, passes: 1, mode: "both", corpus: corpus, encodedOut: theirs)
    let reencoded = readCorpusFile(theirs)
    var same = 0
    for (list, theirBytes) in zip(corpus.lists, reencoded) where (try? list.encoded(as: corpus.encoding)) == theirBytes {
        same += 1
    }
    print("  \(corpus.name): our encoding equals libnvpair's nvlist_pack output for \(same) of \(reencoded.count) lists")
}

// MARK: - Calibration

func calibratedPasses(_ corpus: CodecCorpus) -> Int {
    if let passes = options.passes { return passes }
    _ = ourDecode(corpus, passes: 3)  // warm caches and lazy runtime state
    var passes = 8
    while true {
        let t = ourDecode(corpus, passes: passes).seconds
        if t >= options.minSeconds / 4 || passes >= 1 << 30 {
            return max(1, Int((Double(passes) * options.minSeconds / max(t, 1e-9)).rounded(.up)))
        }
        passes *= 4
    }
}

// MARK: - Rounds

/// Columns: a negative width pads on the right (left-aligned), a positive one on the left.
func cols(_ columns: (String, Int)...) -> String {
    columns.map { text, width in
        let pad = String(repeating: " ", count: max(0, abs(width) - text.count))
        return width < 0 ? text + pad : pad + text
    }.joined(separator: " ")
}

func fmt(_ value: Double, _ decimals: Int) -> String {
    String(format: "%.\(decimals)f", value)
}

struct Row {
    var corpus: String
    var op: String
    var ours: [Double] = []    // MB/s
    var theirs: [Double] = []  // MB/s
    var ratios: [Double] { zip(ours, theirs).map { $0 / $1 } }
}

func mbps(_ bytes: Int, _ passes: Int, _ d: Duration) -> Double {
    Double(bytes) * Double(passes) / d.seconds / 1e6
}

var rows: [Row] = []
print("")
print("rounds: \(options.rounds); each op interleaved with its reference (ours, C / C, ours alternating by round)")
print(cols(("round", -5), ("corpus", -22), ("op", -7), ("passes", 8), ("ours MB/s", 12), ("libnvpair MB/s", 16), ("ratio", 8)))
for (corpus, file) in zip(corpora, corpusFiles) {
    let passes = calibratedPasses(corpus)
    var decode = Row(corpus: corpus.name, op: "decode")
    var encode = Row(corpus: corpus.name, op: "encode")
    _ = ourEncode(corpus, passes: max(1, passes / 10))  // warm-up
    for round in 1...options.rounds {
        // Each measurement sits right next to its reference; odd rounds start with ours.
        let oursFirst = round % 2 == 1
        var d = Duration.zero, e = Duration.zero
        var refDecode = Duration.zero, refEncode = Duration.zero
        if oursFirst { d = ourDecode(corpus, passes: passes) }
        refDecode = runReference(corpusFile: file, passes: passes, mode: "decode", corpus: corpus).decode
        if !oursFirst { d = ourDecode(corpus, passes: passes) }
        if oursFirst { e = ourEncode(corpus, passes: passes) }
        refEncode = runReference(corpusFile: file, passes: passes, mode: "encode", corpus: corpus).encode
        if !oursFirst { e = ourEncode(corpus, passes: passes) }
        decode.ours.append(mbps(corpus.bytesPerPass, passes, d))
        decode.theirs.append(mbps(corpus.bytesPerPass, passes, refDecode))
        encode.ours.append(mbps(corpus.bytesPerPass, passes, e))
        encode.theirs.append(mbps(corpus.bytesPerPass, passes, refEncode))
        for row in [decode, encode] {
            print(cols(("\(round)", -5), (row.corpus, -22), (row.op, -7), ("\(passes)", 8), (fmt(row.ours.last!, 1), 12),
                       (fmt(row.theirs.last!, 1), 16), (fmt(row.ratios.last!, 2) + "x", 8)))
        }
    }
    rows += [decode, encode]
}

// MARK: - Labels read + verified

/// Reads and verifies every label of the corpus the way an importer does: decode the 256 KiB
/// (SHA-256 of the boot-env and config blocks), take the config only if its checksum is valid,
/// decode the nvlist.
@inline(never)
func ourLabelReads(_ labels: [[UInt8]], passes: Int) -> Duration {
    var pairs = 0
    let start = clock.now
    for _ in 0..<passes {
        for bytes in labels {
            do {
                let label = try VdevLabel(decoding: bytes, absoluteOffset: 0, index: 0)
                let config = try NVList(decoding: try label.verifiedConfigBytes())
                pairs &+= config.pairs.count
            } catch {
                fail("label read failed during the benchmark: \(error)")
            }
        }
    }
    let elapsed = clock.now - start
    blackHole(pairs)
    return elapsed
}

/// The floor for the same work: SHA-256 (swift-crypto) over the two blocks a label read must
/// hash, 8 KiB boot env + 112 KiB config, with nothing else.
@inline(never)
func sha256Floor(_ labels: [[UInt8]], passes: Int) -> Duration {
    var sink: UInt8 = 0
    let start = clock.now
    for _ in 0..<passes {
        for bytes in labels {
            bytes.withUnsafeBytes { raw in
                let boot = UnsafeRawBufferPointer(rebasing: raw[0x2000..<0x4000])
                let config = UnsafeRawBufferPointer(rebasing: raw[0x4000..<0x20000])
                sink ^= SHA256.hash(data: boot).withUnsafeBytes { $0[0] }
                sink ^= SHA256.hash(data: config).withUnsafeBytes { $0[0] }
            }
        }
    }
    let elapsed = clock.now - start
    blackHole(sink)
    return elapsed
}

var labelRatios: [Double] = []
var labelRates: [(ours: Double, floor: Double)] = []
let labels = labelSamples.map(\.bytes).filter { bytes in
    (try? VdevLabel(decoding: bytes, absoluteOffset: 0, index: 0).verifiedConfigBytes()) != nil
}
print("")
if labels.isEmpty {
    print("labels read+verified: skipped (no label of the corpus verifies at offset 0)")
} else {
    _ = ourLabelReads(labels, passes: 2)
    var passes = 1
    while ourLabelReads(labels, passes: passes).seconds < options.minSeconds / 4 { passes *= 2 }
    passes *= 4
    print("labels read+verified (VdevLabel decode + verifiedConfigBytes + NVList decode), \(labels.count) labels x \(passes) passes")
    print(cols(("round", -5), ("ours labels/s", 16), ("SHA-256 floor labels/s", 24), ("ratio", 8)))
    for round in 1...options.rounds {
        var ours = Duration.zero, floor = Duration.zero
        if round % 2 == 0 { floor = sha256Floor(labels, passes: passes) }
        ours = ourLabelReads(labels, passes: passes)
        if round % 2 == 1 { floor = sha256Floor(labels, passes: passes) }
        let n = Double(labels.count * passes)
        labelRates.append((n / ours.seconds, n / floor.seconds))
        labelRatios.append(floor.seconds / ours.seconds)
        print(cols(("\(round)", -5), (fmt(labelRates.last!.ours, 0), 16), (fmt(labelRates.last!.floor, 0), 24),
                   (fmt(labelRatios.last!, 2) + "x", 8)))
    }
}

// MARK: - Instruction counts

/// Instructions per pass of one side of one op, counted by callgrind: the difference between a
/// run of 1 + `extra` passes and a run of 1 pass, divided by `extra`, so that start-up, corpus
/// loading and the one warm pass cancel out. Deterministic, so it does not suffer from the noise
/// of a shared machine; but instructions are not time (no cache misses, no IPC).
func callgrindInstructions(_ command: [String], passes: (Int) -> [String], extra: Int) -> Double? {
    func count(_ n: Int) -> Double? {
        let run = shell("/usr/bin/env", ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + command + passes(n))
        guard run.status == 0,
              let line = run.output.split(separator: "\n").first(where: { $0.contains("Collected :") }),
              let value = line.split(separator: " ").last.flatMap({ Double($0) })
        else { return nil }
        return value
    }
    guard let one = count(1), let many = count(1 + extra) else { return nil }
    return (many - one) / Double(extra)
}

struct InstructionRow {
    var corpus: String
    var op: String
    var ours: Double
    var theirs: Double
}
var instructionRows: [InstructionRow] = []
var instructionNote = ""
if !options.instructions {
    instructionNote = "instruction counts: skipped (--no-instructions)"
} else if shell("/usr/bin/env", ["valgrind", "--version"]).status != 0 {
    instructionNote = "instruction counts: skipped (valgrind not installed)"
} else {
    // valgrind 3.19 cannot read the DWARF 5 that swiftc emits; a copy without debug info works.
    let selfPath = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let stripped = scratch.appendingPathComponent("nvlist-bench-stripped").path
    if shell("/usr/bin/env", ["strip", "--strip-debug", selfPath, "-o", stripped]).status != 0 {
        instructionNote = "instruction counts: skipped (cannot strip \(selfPath) for valgrind)"
    } else {
        let extra = 20
        print("")
        print("instruction counts (callgrind, per pass of the whole corpus, \(extra) passes)…")
        for (corpus, file) in zip(corpora, corpusFiles) {
            let prefix = corpus.encoding == .xdr ? "xdr" : "native"
            for op in ["decode", "encode"] {
                let ours = callgrindInstructions([stripped, "--profile", "\(prefix)-\(op)", "--corpus", file.path],
                                                 passes: { ["--passes", String($0)] }, extra: extra)
                let theirs = callgrindInstructions([referenceBinary.path, file.path], passes: { [String($0), op] }, extra: extra)
                if let ours, let theirs {
                    instructionRows.append(InstructionRow(corpus: corpus.name, op: op, ours: ours, theirs: theirs))
                } else {
                    instructionNote = "instruction counts: some runs under valgrind failed"
                }
            }
        }
    }
}

// MARK: - Summary

print("")
print("summary (median over \(options.rounds) rounds; ratio = ours / reference, > 1 means we are faster)")
print(cols(("corpus", -22), ("op", -7), ("ours", 12), ("reference", 16), ("median ratio", 14), ("ratio min..max", 16)))
for row in rows {
    let ratios = row.ratios
    print(cols((row.corpus, -22), (row.op, -7), (fmt(median(row.ours), 1) + " MB/s", 12), (fmt(median(row.theirs), 1) + " MB/s", 16),
               (fmt(median(ratios), 2) + "x", 14), (fmt(ratios.min()!, 2) + ".." + fmt(ratios.max()!, 2), 16)) + "  (reference: libnvpair)")
}
if !labelRatios.isEmpty {
    print(cols(("labels read+verified", -22), ("read", -7), (fmt(median(labelRates.map(\.ours)), 0) + "/s", 12),
               (fmt(median(labelRates.map(\.floor)), 0) + "/s", 16), (fmt(median(labelRatios), 2) + "x", 14),
               (fmt(labelRatios.min()!, 2) + ".." + fmt(labelRatios.max()!, 2), 16)) + "  (reference: SHA-256 of the same 120 KiB)")
}

if !instructionRows.isEmpty {
    print("")
    print("instructions per pass (callgrind; ratio = libnvpair / ours, > 1 means we execute fewer instructions)")
    print(cols(("corpus", -22), ("op", -7), ("ours Ir", 12), ("libnvpair Ir", 16), ("ratio", 14)))
    for row in instructionRows {
        print(cols((row.corpus, -22), (row.op, -7), (fmt(row.ours, 0), 12), (fmt(row.theirs, 0), 16), (fmt(row.theirs / row.ours, 2) + "x", 14)))
    }
}
if !instructionNote.isEmpty { print(instructionNote) }
