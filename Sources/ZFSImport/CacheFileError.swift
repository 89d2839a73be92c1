// The error of reading, editing and writing zpool.cache files (see CacheFile.swift).

#if canImport(Glibc)
import Glibc
#endif

/// What went wrong with a `zpool.cache` file: which file, which step, and why.
///
/// Shaped like ``ImportError`` (and NIOFS's `FileSystemError`): a ``Code`` that can grow without
/// breaking clients, a ``message`` for a person that names the file and the reason and says what
/// to do, the failed system call as ``cause`` when there was one, and the source ``location``.
///
/// ```swift
/// do {
///     let cache = try CacheFile.read(at: "/etc/zpk/zpool.cache")
/// } catch let error where error.code == .notFound {
///     print(error)   // cannot open cache file '/etc/zpk/zpool.cache': No such file or directory
/// }
/// ```
///
/// It is a type of its own rather than more ``ImportError`` codes because those live in a
/// private enum of another file; the two have the same shape.
public struct CacheFileError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of problem was found.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case notFound, cannotOpen, cannotRead, corrupt, invalidEntry, cannotWrite, directoryMissing
            case noSuchPool, nameInUse, poolNotCacheable
        }
        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The cache file does not exist (`ENOENT`). libzutil: "failed to open cache file".
        public static let notFound = Code(.notFound)
        /// The file exists but cannot be opened or is not a regular file.
        public static let cannotOpen = Code(.cannotOpen)
        /// Reading it failed part-way. libzutil: "failed to read cache file contents".
        public static let cannotRead = Code(.cannotRead)
        /// The bytes are not a packed nvlist. libzutil: "invalid or corrupt cache file contents".
        public static let corrupt = Code(.corrupt)
        /// An entry (or a config to be stored) lacks what every pool config has: `name`,
        /// `pool_guid`, a `vdev_tree`.
        public static let invalidEntry = Code(.invalidEntry)
        /// A step of the atomic replacement (lock, create, write, fsync, rename, fsync of the
        /// directory, unlink) failed; the old file is unchanged.
        public static let cannotWrite = Code(.cannotWrite)
        /// The directory the cache file should go in does not exist.
        public static let directoryMissing = Code(.directoryMissing)
        /// No entry of the file names the pool asked for.
        public static let noSuchPool = Code(.noSuchPool)
        /// Another pool (another guid) already has this name in the file; entries are keyed by
        /// name, so one would replace the other.
        public static let nameInUse = Code(.nameInUse)
        /// The pool found on the devices should not be written to a cache file: destroyed, an
        /// unsupported version, top-level vdevs missing.
        public static let poolNotCacheable = Code(.poolNotCacheable)

        public var description: String {
            switch wrapped {
            case .notFound: "not found"
            case .cannotOpen: "cannot open"
            case .cannotRead: "cannot read"
            case .corrupt: "corrupt"
            case .invalidEntry: "invalid entry"
            case .cannotWrite: "cannot write"
            case .directoryMissing: "directory missing"
            case .noSuchPool: "no such pool"
            case .nameInUse: "name in use"
            case .poolNotCacheable: "pool not cacheable"
            }
        }
    }

    /// Where the error was raised.
    public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
        public var fileID: String
        public var line: Int
        public var description: String { "\(fileID):\(line)" }
    }

    public var code: Code
    /// A sentence for a person: the file, the step, the reason, and what to do.
    public var message: String
    /// The cache file the error is about.
    public var path: String
    /// The system call that failed, if one did.
    public var cause: SystemCallFailure?
    public var location: SourceLocation

    public init(
        _ code: Code, _ message: String, path: String, cause: SystemCallFailure? = nil,
        fileID: String = #fileID, line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.path = path
        self.cause = cause
        self.location = SourceLocation(fileID: fileID, line: line)
    }

    public var description: String { message }

    /// Every field on its own line, for logs and bug reports.
    public func detailedDescription() -> String {
        var text = "CacheFileError: \(code)\n├─ message: \(message)\n├─ path: \(path)\n"
        if let cause { text += "├─ cause: \(cause.systemCall): \(cause.reason) (errno \(cause.errno))\n" }
        return text + "└─ location: \(location)"
    }
}

/// A system call that failed: its name and its `errno`.
public struct SystemCallFailure: Error, Hashable, Sendable, CustomStringConvertible {
    /// `"open"`, `"write"`, `"fsync"`, `"rename"`, …
    public var systemCall: String
    /// The `errno` it returned.
    public var errno: Int32

    public init(_ systemCall: String, errno: Int32) {
        self.systemCall = systemCall
        self.errno = errno
    }

    /// `strerror(errno)`: "No such file or directory".
    public var reason: String { String(cString: strerror(errno)) }

    public var description: String { "\(systemCall): \(reason)" }
}
