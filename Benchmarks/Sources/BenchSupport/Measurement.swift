// Small helpers every benchmark executable shares: statistics, time, random payloads, scratch
// files and the one way to give up.

import Foundation
import ZFSFormat

/// Prints `PROGRAM: message` on standard error and exits with status 1.
public func fail(_ message: String) -> Never {
    let program = URL(fileURLWithPath: CommandLine.arguments.first ?? "bench").lastPathComponent
    FileHandle.standardError.write(Data("\(program): \(message)\n".utf8))
    exit(1)
}

/// The value below which a fraction `p` (0…1) of a non-empty list lies (nearest rank).
public func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    let index = min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))
    return sorted[index]
}

/// `duration` in seconds, as a `Double`.
public func seconds(_ duration: Duration) -> Double { duration.seconds }

/// Creates (or empties) `path` as a sparse file of `bytes` bytes; exits on failure.
public func makeSparseFile(_ path: String, bytes: Int) {
    unlink(path)
    let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
    guard fd >= 0, ftruncate(fd, off_t(bytes)) == 0 else { fail("cannot create \(path): \(String(cString: strerror(errno)))") }
    close(fd)
}

extension SplitMix64 {
    /// `count` pseudo-random bytes (whole 64-bit words; `count` a multiple of 8).
    public mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for i in words.indices { words[i] = next() }
        }
        return out
    }
}

/// Parses a benchmark's command line into `options`: each flag of `numbers` takes a positive
/// integer, `--directory DIR` a path, `--keep` sets a flag; `-h` prints `usage` and exits 0; a bad
/// argument prints the problem and `usage` and exits 64.
public func parseOptions<Options>(
    _ arguments: [String], into options: inout Options, numbers: [String: WritableKeyPath<Options, Int>],
    flags: [String: WritableKeyPath<Options, Bool>] = [:],
    directory: WritableKeyPath<Options, String?>, keep: WritableKeyPath<Options, Bool>, usage: String
) {
    func stop(_ problem: String?) -> Never {
        if let problem {
            let program = URL(fileURLWithPath: arguments.first ?? "bench").lastPathComponent
            FileHandle.standardError.write(Data("\(program): \(problem)\n".utf8))
        }
        print(usage)
        exit(problem == nil ? 0 : 64)
    }
    var it = arguments.dropFirst().makeIterator()
    while let argument = it.next() {
        if let field = numbers[argument] {
            guard let text = it.next(), let n = Int(text), n > 0 else { stop("\(argument) takes a positive number") }
            options[keyPath: field] = n
            continue
        }
        if let flag = flags[argument] {
            options[keyPath: flag] = true
            continue
        }
        switch argument {
        case "--directory":
            guard let path = it.next() else { stop("--directory takes a path") }
            options[keyPath: directory] = path
        case "--keep": options[keyPath: keep] = true
        case "-h", "--help": stop(nil)
        default: stop("unknown argument '\(argument)'")
        }
    }
}
