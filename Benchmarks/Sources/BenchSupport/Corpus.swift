// Real OpenZFS bytes for the benchmarks and the fuzzer: the checked-in fixtures, plus labels
// of pools that `ztest` (OpenZFS 2.1.11 userland) creates at run time when it is installed.

import Foundation
import ZFSFormat

/// Paths of this checkout, found from this source file (Benchmarks/Sources/BenchSupport/…).
public enum Checkout {
    /// The repository root.
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // BenchSupport
        .deletingLastPathComponent()  // Sources
        .deletingLastPathComponent()  // Benchmarks
        .deletingLastPathComponent()  // repository root

    /// `Tests/Fixtures/<name>`.
    public static func fixture(_ name: String) -> URL {
        root.appendingPathComponent("Tests/Fixtures").appendingPathComponent(name)
    }

    /// `Benchmarks/<relative>`.
    public static func benchmarks(_ relative: String) -> URL {
        root.appendingPathComponent("Benchmarks").appendingPathComponent(relative)
    }
}

/// On-disk facts used here (`include/sys/vdev_impl.h`), so the harness does not depend on
/// the label API being present.
public enum LabelFacts {
    /// `sizeof (vdev_label_t)`.
    public static let labelByteCount = 256 * 1024
    /// `VDEV_SKIP_SIZE`: offset of the config block in a label.
    public static let configOffset = 0x4000
    /// `sizeof (vp_nvlist)`: the config area, excluding its 40-byte `zio_eck_t` trailer.
    public static let configCapacity = 0x1C000 - 40
}

/// One real input: where it came from and its bytes.
public struct Sample: Sendable {
    public var origin: String
    public var bytes: [UInt8]

    public init(origin: String, bytes: [UInt8]) {
        self.origin = origin
        self.bytes = bytes
    }
}

public func readFile(_ url: URL) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: url))
}

/// The packed config nvlist of a 256 KiB label, trimmed to its packed length (the rest of
/// the config area is zero fill). Returns `nil` if the label holds no decodable config.
public func packedConfig(ofLabel label: [UInt8]) -> [UInt8]? {
    guard label.count >= LabelFacts.configOffset + LabelFacts.configCapacity else { return nil }
    let area = label[LabelFacts.configOffset..<(LabelFacts.configOffset + LabelFacts.configCapacity)]
    guard let list = try? NVList(decoding: area), let size = try? list.encodedSize(as: .xdr) else { return nil }
    return Array(area.prefix(size))
}

/// Labels of pools made by `ztest` in fresh temporary directories.
public struct ZtestCorpus {
    /// Label 0 (256 KiB) of every leaf file of every pool that was made.
    public var labels: [Sample] = []
    /// The `zpool.cache` of every pool that was made.
    public var cacheFiles: [Sample] = []
    /// What was run and how it went, for the report.
    public var notes: [String] = []

    /// The pool layouts made: different vdev trees give configs of different shapes and sizes.
    public static let layouts: [(name: String, arguments: [String])] = [
        ("raidz1 x4", ["-v", "1", "-m", "0", "-r", "4", "-R", "1", "-K", "raidz"]),
        ("2 mirrors x2 + spare", ["-v", "2", "-m", "2", "-r", "1", "-R", "1", "-K", "raidz"]),
        ("draid1 x7 + l2cache + spare", ["-v", "1", "-m", "0", "-r", "7", "-R", "1", "-K", "draid", "-D", "4", "-S", "1"]),
    ]

    /// The path of `ztest`, if installed.
    public static func ztestPath() -> String? {
        for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
            let path = dir + "/ztest"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// Runs one short `ztest` per layout, all at once, each in its own empty temporary
    /// directory, then reads label 0 of every vdev file and the cache file.
    public static func make(ztest: String, in scratch: URL) -> ZtestCorpus {
        var corpus = ZtestCorpus()
        var running: [(name: String, dir: URL, process: Process, log: URL)] = []
        for (index, layout) in layouts.enumerated() {
            let dir = scratch.appendingPathComponent("pool\(index)")
            let log = scratch.appendingPathComponent("pool\(index).log")
            do {
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: false)
                _ = FileManager.default.createFile(atPath: log.path, contents: nil)
                let process = Process()
                process.executableURL = URL(fileURLWithPath: ztest)
                process.arguments = ["-T", "1", "-P", "1", "-k", "0", "-t", "2", "-d", "1", "-s", "128m",
                                     "-C", "special=off", "-f", dir.path] + layout.arguments
                let handle = try FileHandle(forWritingTo: log)
                process.standardOutput = handle
                process.standardError = handle
                try process.run()
                running.append((layout.name, dir, process, log))
            } catch {
                corpus.notes.append("ztest \(layout.name): could not start (\(error))")
            }
        }
        for run in running {
            run.process.waitUntilExit()
            guard run.process.terminationStatus == 0 else {
                corpus.notes.append("ztest \(run.name): exit status \(run.process.terminationStatus), see \(run.log.path); skipped")
                continue
            }
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: run.dir.path)) ?? []).sorted()
            var leaves = 0
            for file in files {
                let url = run.dir.appendingPathComponent(file)
                if file == "zpool.cache" {
                    if let bytes = try? readFile(url) {
                        corpus.cacheFiles.append(Sample(origin: "ztest \(run.name): zpool.cache", bytes: bytes))
                    }
                    continue
                }
                guard let handle = try? FileHandle(forReadingFrom: url),
                      let data = try? handle.read(upToCount: LabelFacts.labelByteCount),
                      data.count == LabelFacts.labelByteCount
                else { continue }
                try? handle.close()
                corpus.labels.append(Sample(origin: "ztest \(run.name): \(file) label 0", bytes: [UInt8](data)))
                leaves += 1
            }
            corpus.notes.append("ztest \(run.name): \(leaves) leaf labels")
        }
        return corpus
    }
}

/// Keeps a value alive so the optimiser cannot delete the work that made it.
@inline(never)
public func blackHole<T>(_ value: T) {
    withExtendedLifetime(value) {}
}

/// Median of a non-empty list.
public func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    let mid = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) * 1e-18
    }
}
