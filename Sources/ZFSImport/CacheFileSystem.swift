// The system calls a cache-file update makes, behind a protocol so that tests can stop the
// sequence at any step (a simulated crash) or replay it against a model of what a disk keeps
// after a power cut. `PosixCacheFileSystem` (CacheFile+Linux.swift) is the real one.

/// An open file or directory of a ``CacheFileSystem``.
public struct CacheFileHandle: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
}

/// What `lstat` says about a path.
public struct CacheFileStatus: Hashable, Sendable {
    public enum Kind: Hashable, Sendable { case regular, directory, symbolicLink, other }
    public var kind: Kind
    /// The permission bits (`st_mode & 07777`).
    public var permissions: UInt32
    public var ownerID: UInt32
    public var groupID: UInt32
    public var sizeInBytes: UInt64

    public init(kind: Kind, permissions: UInt32, ownerID: UInt32 = 0, groupID: UInt32 = 0, sizeInBytes: UInt64 = 0) {
        self.kind = kind
        self.permissions = permissions
        self.ownerID = ownerID
        self.groupID = groupID
        self.sizeInBytes = sizeInBytes
    }
}

/// The file-system operations ``CacheFile`` reads and replaces cache files with.
///
/// Each requirement is one system call (or a loop of one, like `write` until done) and throws
/// the call's name and `errno`. ``CacheFile/update(at:fileSystem:_:)`` calls them in this order:
/// `status` → (`resolve`) → `openDirectory` → `lockExclusive` → `listDirectory` (+ `unlink` of
/// stale temporary files) → `readFile` → `createExclusive` → `write` → `sync` → `close` →
/// `rename` → `sync` (directory) → `close` (directory).
public protocol CacheFileSystem: Sendable {
    /// `lstat(path)`; `nil` when nothing is there (`ENOENT`).
    func status(_ path: String) throws(SystemCallFailure) -> CacheFileStatus?
    /// `realpath(path)`.
    func resolve(_ path: String) throws(SystemCallFailure) -> String
    /// The whole contents of a regular file: `open(O_RDONLY)`, `read` until end of file, `close`.
    func readFile(_ path: String) throws(SystemCallFailure) -> [UInt8]
    /// `open(path, O_RDONLY | O_DIRECTORY)`.
    func openDirectory(_ path: String) throws(SystemCallFailure) -> CacheFileHandle
    /// `flock(directory, LOCK_EX)`: waits for other writers of cache files in the directory;
    /// released by closing the handle.
    func lockExclusive(_ directory: CacheFileHandle) throws(SystemCallFailure)
    /// The names in a directory (`.` and `..` left out).
    func listDirectory(_ path: String) throws(SystemCallFailure) -> [String]
    /// `open(path, O_WRONLY | O_CREAT | O_EXCL)`, then `fchmod` to exactly `permissions` (no
    /// umask) and, when `owner` is given, `fchown` (a failure of `fchown` is ignored).
    func createExclusive(
        _ path: String, permissions: UInt32, owner: (user: UInt32, group: UInt32)?
    ) throws(SystemCallFailure) -> CacheFileHandle
    /// `write` until every byte is written.
    func write(_ file: CacheFileHandle, _ bytes: [UInt8]) throws(SystemCallFailure)
    /// `fsync`.
    func sync(_ file: CacheFileHandle) throws(SystemCallFailure)
    /// `close`.
    func close(_ file: CacheFileHandle) throws(SystemCallFailure)
    /// `rename(from, to)`: atomically replaces `to`.
    func rename(_ from: String, to: String) throws(SystemCallFailure)
    /// `unlink(path)`.
    func unlink(_ path: String) throws(SystemCallFailure)
}
