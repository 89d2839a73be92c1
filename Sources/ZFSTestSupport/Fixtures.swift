import Foundation
import Synchronization
import ZFSDevice

#if canImport(Glibc)
import Glibc
#endif

/// Locates the checked-in fixtures under `Tests/Fixtures/` (see its README for their sources).
public enum Fixtures {
    /// The `Tests/Fixtures` directory of this checkout.
    public static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // ZFSTestSupport
        .deletingLastPathComponent()  // Sources
        .deletingLastPathComponent()  // package root
        .appendingPathComponent("Tests/Fixtures")

    /// The URL of fixture `name`.
    public static func url(_ name: String) -> URL {
        directory.appendingPathComponent(name)
    }

    /// The bytes of fixture `name`.
    public static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: url(name)))
    }

    /// The text of fixture `name`.
    public static func text(_ name: String) throws -> String {
        try String(contentsOf: url(name), encoding: .utf8)
    }
}

/// OpenZFS's test-suite pool images (`Tests/Fixtures/openzfs-images/*.dat.bz2`, 64 MiB each,
/// mostly zeros), decompressed once per test process and copied sparsely for each test that
/// may change them. Decompressing them cost about 0.2 s of CPU each, and five suites used to
/// run sixteen `bunzip2` at once, each for itself, at the start of the test run.
public enum FixtureImages {
    /// The image names without `.bz2` (`zfs-pool-v2mirror1.dat`, …), sorted.
    public static func names() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: Fixtures.url("openzfs-images").path)
            .filter { $0.hasSuffix(".dat.bz2") }.map { String($0.dropLast(4)) }.sorted()
    }

    /// A directory holding every image, decompressed (sparse) on first use; callers wait for it.
    /// Shared by the whole process and removed at exit: read it, never write into it
    /// (``copy(_:to:)`` gives a test its own file).
    public static func sharedDirectory() throws -> String {
        try shared.withLock { made in
            if let made { return try made.get().path }
            let result = Result { try decompressAll() }
            made = result
            // Dropping the directory at exit removes it (``TemporaryDirectory``'s deinit).
            atexit { FixtureImages.shared.withLock { $0 = nil } }
            return try result.get().path
        }
    }

    /// Copies image `name` (from ``names()``) to `destination`, data extents only.
    public static func copy(_ name: String, to destination: String) throws {
        try VdevFile("\(try sharedDirectory())/\(name)").copy(to: destination)
    }

    private static let shared = Mutex<Result<TemporaryDirectory, any Error>?>(nil)

    private static func decompressAll() throws -> TemporaryDirectory {
        let made = try TemporaryDirectory(prefix: "fixture-images")
        let names = try names()
        let failures = Mutex<[String]>([])
        // Two at a time: the machine's cores, not the sixteen images, bound the useful width.
        BlockingIO.forEach(count: names.count, width: 2) { index in
            let name = names[index]
            do {
                // `cp --sparse=always` turns the zero runs into holes: 1 GiB of images, 12 MiB written.
                let output = try OpenZFS.run(
                    "/bin/sh", ["-c", "bunzip2 -c \"$0\" | cp --sparse=always /dev/stdin \"$1\"",
                                Fixtures.url("openzfs-images/\(name).bz2").path, made.path(name)],
                    timeout: .seconds(60))
                if output.status != 0 { failures.withLock { $0.append("\(name): \(output)") } }
            } catch {
                failures.withLock { $0.append("\(name): \(error)") }
            }
        }
        let failed = failures.withLock { $0 }
        guard failed.isEmpty else {
            throw OpenZFSHarnessError(.io, "cannot decompress the fixture images: \(failed.joined(separator: "; "))")
        }
        return made
    }
}
