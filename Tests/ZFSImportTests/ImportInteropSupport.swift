// Helpers for the discovery interop tests, on top of ZFSTestSupport's OpenZFS harness
// (OpenZFS.zdb/run, OpenZFS.makePool, VdevFile, TemporaryDirectory): running zdb without
// holding a cooperative thread, and comparing dump_nvlist text regardless of key order.
//
// Every ztest pool and every damaged copy lives in its own `mktemp -d` directory, because
// `zdb -e -p DIR` scans every file in DIR.

import Foundation
import Synchronization
import Testing
import ZFSFormat
import ZFSImport
import ZFSTestSupport

/// A test-local error with a message.
struct TestFailure: Error, CustomStringConvertible {
    var description: String
}

/// Runs blocking work (ztest, zdb, copies) on a thread of its own and suspends the caller
/// until it is done, so that tests waiting for OpenZFS do not hold the cooperative pool's few
/// threads (two on a two-core machine) and starve every other test.
func offThePool<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<R, any Error>) in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Runs each job on a thread of its own and returns their results in order.
func inParallel<T: Sendable>(_ jobs: [@Sendable () throws -> T]) -> [Result<T, any Error>] {
    let results = Mutex<[Int: Result<T, any Error>]>([:])
    let group = DispatchGroup()
    for (i, job) in jobs.enumerated() {
        group.enter()
        Thread {
            let result = Result { try job() }
            results.withLock { $0[i] = result }
            group.leave()
        }.start()
    }
    group.wait()
    let done = results.withLock { $0 }
    return jobs.indices.map { done[$0]! }
}

/// `zdb -e -p DIR -CC TARGET`, off the cooperative pool: the "Configuration for import" block
/// (nil if zdb printed none) and zdb's whole answer.
func zdbImportBlock(directory: String, target: String) async throws -> (block: String?, answer: String) {
    let (stdout, stderr, status) = try await offThePool {
        try OpenZFS.zdb(["-e", "-p", directory, "-CC", target], currentDirectory: directory)
    }
    return (ZdbImportText.extract(fromZdbOutput: stdout), "exit \(status)\n\(stdout)\n\(stderr)")
}

/// `dump_nvlist` text as a set of `path: value` lines, so that two dumps can be compared key
/// for key and value for value while ignoring the order of keys.
enum NVText {
    /// One line per leaf value: `vdev_tree/children[0]/path: '/x'`; booleans as their path.
    static func canonicalLines(_ text: String) -> [String] {
        var stack: [(indent: Int, key: String)] = []
        var lines: [String] = []
        for raw in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let indent = raw.prefix { $0 == " " }.count
            let body = String(raw.dropFirst(indent))
            if body == "Configuration for import:" { continue }
            while let last = stack.last, last.indent >= indent { stack.removeLast() }
            let prefix = stack.map(\.key).joined(separator: "/")
            if body.hasSuffix(":") && !body.contains(": ") {
                stack.append((indent, String(body.dropLast())))
            } else {
                lines.append(prefix.isEmpty ? body : "\(prefix)/\(body)")
            }
        }
        return lines.sorted()
    }

    /// What one side has that the other lacks (as a multiset), for a readable failure.
    static func difference(ours: String, theirs: String) -> (onlyOurs: [String], onlyTheirs: [String]) {
        var counts: [String: Int] = [:]
        for line in canonicalLines(ours) { counts[line, default: 0] += 1 }
        for line in canonicalLines(theirs) { counts[line, default: 0] -= 1 }
        let onlyOurs = counts.flatMap { key, n in Array(repeating: key, count: max(0, n)) }
        let onlyTheirs = counts.flatMap { key, n in Array(repeating: key, count: max(0, -n)) }
        return (onlyOurs.sorted(), onlyTheirs.sorted())
    }
}

/// Expects our rendering of `pool` to equal zdb's "Configuration for import" block, key for key
/// and value for value.
/// - Returns: whether it is also byte for byte identical (same key order).
@discardableResult
func expectMatchesZdb(
    _ pool: PoolCandidate, directory: String, target: String,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws -> Bool {
    let (block, answer) = try await zdbImportBlock(directory: directory, target: target)
    guard let block else {
        Issue.record("zdb printed no import configuration for \(target) in \(directory): \(answer)", sourceLocation: sourceLocation)
        return false
    }
    let ours = ZdbImportText.render(pool)
    let (onlyOurs, onlyTheirs) = NVText.difference(ours: ours, theirs: block)
    #expect(
        onlyOurs.isEmpty && onlyTheirs.isEmpty,
        "config of \(target) in \(directory) differs from zdb's:\nonly ours:\n  \(onlyOurs.joined(separator: "\n  "))\nonly zdb's:\n  \(onlyTheirs.joined(separator: "\n  "))",
        sourceLocation: sourceLocation)
    return ours == block
}

/// Directories removed at process exit (shared pools outlive every test).
final class ManagedDirectories: Sendable {
    private let directories = Mutex<[TemporaryDirectory]>([])
    func keep(_ directory: TemporaryDirectory) { directories.withLock { $0.append(directory) } }
    /// Drops the references, so each TemporaryDirectory removes itself (unless ZPK_KEEP_TEMPORARY=1).
    func removeAll() { directories.withLock { $0.removeAll() } }
}

/// A fresh directory holding sparse copies of `files` (same base names), removed afterwards.
@discardableResult
func withCopies<R>(
    of files: [String], prefix: String = "import-copy", _ body: (String) async throws -> R
) async throws -> R {
    let directory = try TemporaryDirectory(prefix: prefix)
    try await offThePool {
        for file in files {
            try VdevFile(file).copy(to: directory.path((file as NSString).lastPathComponent))
        }
    }
    let result = try await body(directory.path)
    withExtendedLifetime(directory) {}
    return result
}

/// A scan with zdb's options (every pool state, no exclusive-open test).
func zdbScan(_ directory: String) async -> ScanResult {
    await ImportScanner(options: .zdb(searchPaths: [directory])).scan()
}
