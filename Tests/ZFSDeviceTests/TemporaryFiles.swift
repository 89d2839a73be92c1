import Foundation

/// Runs `body` with the path of a fresh, empty directory under the system temporary directory,
/// and removes the directory and everything in it afterwards.
func withTemporaryDirectory<Result>(_ body: (String) throws -> Result) throws -> Result {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("ZFSDeviceTests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url.path)
}

/// Creates a regular file holding `bytes`.
func makeFile(at path: String, bytes: [UInt8]) throws {
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
    }
}

/// Creates a sparse regular file of `size` zero bytes.
func makeSparseFile(at path: String, size: UInt64) throws {
    try makeFile(at: path, bytes: [])
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.truncate(atOffset: size)
}

/// The current contents of the file at `path`.
func contentsOfFile(at path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// `count` bytes of a pattern that differs at every offset within 251 bytes, so a read from
/// the wrong place shows up.
func patternBytes(count: Int, seed: UInt8 = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: ($0 % 251) &+ Int(seed)) }
}
