import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A fresh, empty directory under /tmp, removed with everything in it when the object goes away.
///
/// Pools and damaged copies live here: `zdb -e -p DIR` scans every file in DIR, so each test
/// gets its own. Set `ZPK_KEEP_TEMPORARY=1` to keep the directories for a post-mortem (their
/// paths are printed on stderr).
///
/// ```swift
/// try withTemporaryDirectory { directory in
///     let pool = try OpenZFS.makePool(spec, in: directory.path)
///     …
/// }
/// ```
public final class TemporaryDirectory: Sendable, CustomStringConvertible {
    /// The directory's absolute path (no trailing slash).
    public let path: String
    private let keep: Bool

    /// Creates `/tmp/zpk-<prefix>.XXXXXX`.
    /// - Throws: ``OpenZFSHarnessError`` `.io` when `mkdtemp` fails.
    public init(prefix: String = "test") throws {
        var template = Array("/tmp/zpk-\(prefix).XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw OpenZFSHarnessError(
                .io, "cannot make a temporary directory /tmp/zpk-\(prefix).XXXXXX: \(String(cString: strerror(errno)))")
        }
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        keep = ProcessInfo.processInfo.environment["ZPK_KEEP_TEMPORARY"] == "1"
        if keep { FileHandle.standardError.write(Data("keeping temporary directory \(path)\n".utf8)) }
    }

    deinit {
        if !keep { try? FileManager.default.removeItem(atPath: path) }
    }

    /// `path/name`.
    public func path(_ name: String) -> String { "\(path)/\(name)" }

    public var description: String { path }
}

/// Runs `body` with a fresh ``TemporaryDirectory`` and removes the directory afterwards.
public func withTemporaryDirectory<Result>(
    prefix: String = "test", _ body: (TemporaryDirectory) throws -> Result
) throws -> Result {
    let directory = try TemporaryDirectory(prefix: prefix)
    return try withExtendedLifetime(directory) { try body(directory) }
}

/// Runs `body` with a fresh ``TemporaryDirectory`` and removes the directory afterwards.
public func withTemporaryDirectory<Result>(
    prefix: String = "test", _ body: (TemporaryDirectory) async throws -> Result
) async throws -> Result {
    let directory = try TemporaryDirectory(prefix: prefix)
    let result = try await body(directory)
    withExtendedLifetime(directory) {}
    return result
}
