// Reading a cache file from disk and replacing it atomically; the mechanism and the crash
// analysis are in CacheFile.swift.

import ZFSFormat

#if canImport(Glibc)
import Glibc
#endif

extension CacheFile {
    /// Reads and decodes a cache file.
    ///
    /// A zero-length file is a file without pools.
    /// - Parameters:
    ///   - path: the file.
    ///   - fileSystem: the system calls to use; tests inject faults here.
    /// - Throws: ``CacheFileError`` `.notFound` (`ENOENT`), `.cannotOpen` (other open errors, a
    ///   directory or device), `.cannotRead`, `.corrupt`.
    public static func read(
        at path: String, fileSystem: some CacheFileSystem = PosixCacheFileSystem()
    ) throws(CacheFileError) -> CacheFile {
        let bytes: [UInt8]
        do {
            bytes = try fileSystem.readFile(path)
        } catch {
            throw readError(error, path: path)
        }
        return try CacheFile(decoding: bytes, path: path)
    }

    /// Reads the cache file at `path` (none there: no pools), lets `edit` change it, and
    /// replaces the file atomically and durably with the result.
    ///
    /// The steps and what a crash between any two of them leaves are in the comment at the top
    /// of `CacheFile.swift`. Other zpk processes updating a cache file in the same directory
    /// wait for this one (`flock` on the directory). When `edit` leaves no pool, the file is
    /// removed, as OpenZFS removes a cache file no pool uses. When `edit` throws, nothing is
    /// written.
    ///
    /// - Parameters:
    ///   - path: the cache file; a symbolic link is followed.
    ///   - fileSystem: the system calls to use; tests inject faults here.
    ///   - edit: changes the file's contents; may throw to abandon the update.
    /// - Returns: the contents now on disk.
    /// - Throws: ``CacheFileError``: `.directoryMissing`, `.cannotOpen`, `.cannotRead`,
    ///   `.corrupt` (the current file cannot be decoded: it is left alone), `.cannotWrite` (a step
    ///   of the replacement failed; the message names it), or whatever `edit` throws.
    @discardableResult
    public static func update(
        at path: String, fileSystem: some CacheFileSystem = PosixCacheFileSystem(),
        _ edit: (inout CacheFile) throws(CacheFileError) -> Void
    ) throws(CacheFileError) -> CacheFile {
        var target = path
        var existing: CacheFileStatus?
        do {
            existing = try fileSystem.status(path)
            if existing?.kind == .symbolicLink {
                target = try fileSystem.resolve(path)
                existing = try fileSystem.status(target)
            }
        } catch {
            throw readError(error, path: path)
        }
        let (directory, base) = split(target)
        let directoryHandle: CacheFileHandle
        do {
            directoryHandle = try fileSystem.openDirectory(directory)
        } catch {
            if error.errno == ENOENT || error.errno == ENOTDIR {
                throw CacheFileError(
                    .directoryMissing,
                    "cannot write cache file '\(path)': directory '\(directory)' does not exist; create it (mkdir -p \(directory)) or choose another file",
                    path: path, cause: error)
            }
            throw CacheFileError(.cannotOpen, "cannot open directory '\(directory)' of cache file '\(path)': \(error.reason)", path: path, cause: error)
        }
        var directoryClosed = false
        defer { if !directoryClosed { try? fileSystem.close(directoryHandle) } }
        do {
            try fileSystem.lockExclusive(directoryHandle)
        } catch {
            throw CacheFileError(.cannotWrite, "cannot lock directory '\(directory)' to update cache file '\(path)': \(error.reason)", path: path, cause: error)
        }

        // Under the lock, any temporary file of ours belongs to a writer that died.
        let prefix = temporaryPrefix(base)
        if let names = try? fileSystem.listDirectory(directory) {
            for name in names where name.hasPrefix(prefix) && name.hasSuffix(temporarySuffix) {
                try? fileSystem.unlink(join(directory, name))
            }
        }

        let current: [UInt8]?
        do {
            current = try fileSystem.readFile(target)
        } catch let error where error.errno == ENOENT {
            current = nil
        } catch {
            throw readError(error, path: path)
        }
        let fileExists = current != nil
        var cache = try current.map { (bytes) throws(CacheFileError) in try CacheFile(decoding: bytes, path: path) } ?? CacheFile()
        try edit(&cache)

        func failed(_ step: String, _ error: SystemCallFailure, unchanged: Bool = true) -> CacheFileError {
            CacheFileError(
                .cannotWrite,
                "cannot update cache file '\(path)': \(step) failed: \(error.reason)"
                    + (unchanged ? "; the file is unchanged" : ""),
                path: path, cause: error)
        }

        if cache.entries.isEmpty {
            if fileExists {
                do { try fileSystem.unlink(target) } catch { throw failed("unlink('\(target)')", error) }
                do { try fileSystem.sync(directoryHandle) } catch {
                    throw failed("fsync of directory '\(directory)' after removing the file", error, unchanged: false)
                }
            }
            return cache
        }

        let bytes = try cache.encoded(path: path)
        let temporary = join(directory, prefix + "\(getpid())-\(String(UInt64.random(in: 0 ... .max), radix: 16))" + temporarySuffix)
        var permissions = newFilePermissions
        if let existing, existing.kind == .regular { permissions = existing.permissions }
        let owner = existing.map { (user: $0.ownerID, group: $0.groupID) }
        let file: CacheFileHandle
        do {
            file = try fileSystem.createExclusive(temporary, permissions: permissions, owner: owner)
        } catch {
            throw failed("creating '\(temporary)'", error)
        }
        var fileOpen = true
        do {
            try fileSystem.write(file, bytes)
            try fileSystem.sync(file)
            fileOpen = false
            try fileSystem.close(file)
            try fileSystem.rename(temporary, to: target)
        } catch {
            if fileOpen { try? fileSystem.close(file) }
            try? fileSystem.unlink(temporary)
            throw failed("\(error.systemCall) of '\(temporary)'", error)
        }
        do {
            try fileSystem.sync(directoryHandle)
        } catch {
            throw CacheFileError(
                .cannotWrite,
                "cache file '\(path)' was replaced, but fsync of directory '\(directory)' failed: \(error.reason); the change may not survive a power cut",
                path: path, cause: error)
        }
        directoryClosed = true
        try? fileSystem.close(directoryHandle)
        cache.sourceEncoding = .native
        cache.sourceByteOrder = .host
        cache.skippedPairs = []
        return cache
    }

    /// Writes these contents over the cache file at `path` (see ``update(at:fileSystem:_:)``;
    /// no pools: the file is removed).
    public func write(to path: String, fileSystem: some CacheFileSystem = PosixCacheFileSystem()) throws(CacheFileError) {
        let contents = self
        try Self.update(at: path, fileSystem: fileSystem) { (cache: inout CacheFile) throws(CacheFileError) in
            cache = contents
        }
    }

    /// The names of our temporary files for cache file `base`: `.BASE.zpk-PID-RANDOM.tmp`.
    static func temporaryPrefix(_ base: String) -> String { ".\(base).zpk-" }
    static let temporarySuffix = ".tmp"

    static func readError(_ error: SystemCallFailure, path: String) -> CacheFileError {
        switch (error.systemCall, error.errno) {
        case (_, ENOENT):
            CacheFileError(.notFound, "cannot open cache file '\(path)': \(error.reason)", path: path, cause: error)
        case ("read", _):
            CacheFileError(.cannotRead, "failed to read cache file '\(path)': \(error.reason)", path: path, cause: error)
        default:
            CacheFileError(.cannotOpen, "cannot open cache file '\(path)': \(error.systemCall): \(error.reason)", path: path, cause: error)
        }
    }

    static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = path[..<slash]
        return (directory.isEmpty ? "/" : String(directory), String(path[path.index(after: slash)...]))
    }

    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : "\(directory)/\(name)"
    }
}
