// The file-system side of discovery on Linux: listing search directories (`readdir`, with
// `d_type` to skip obvious non-devices), `stat`, `realpath`, opening read-only, and the
// exclusive-open test. See ImportScanner.swift for the mechanism.

import ZFSDevice
import ZFSFormat

#if canImport(Glibc)
import Glibc
#endif

extension ImportScanner {
    // MARK: 1. Candidates

    /// The file type a directory entry announced (`d_type`), to skip obvious non-devices
    /// without a `stat`.
    enum EntryHint: Sendable {
        case unknown
        case notADevice(String)
    }

    struct Candidates {
        var tree = CandidateOrder()
        var keys: [CandidateKey] = []
        var orders: [Int] = []
        var hints: [EntryHint] = []

        mutating func add(_ path: String, order: Int, hint: EntryHint) {
            let key = CandidateKey(path: path, expectedGUID: 0)
            if tree.insert(key) {
                keys.append(key)
                orders.append(order)
                hints.append(hint)
            }
        }
    }

    func collectCandidates() -> (Candidates, [ImportError]) {
        var candidates = Candidates()
        var problems: [ImportError] = []
        let paths = options.searchPaths.isEmpty ? Self.defaultSearchPaths : options.searchPaths
        for (i, searchPath) in paths.enumerated() {
            let order = Self.scanOrderOffset + i
            if DeviceOpener.isNetworkPath(searchPath) {
                // An NBD export is a device, not a directory, and nothing resolves its URI.
                candidates.add(searchPath, order: order, hint: .unknown)
                continue
            }
            var info = stat()
            guard stat(searchPath, &info) == 0 else {
                let error = errno
                if error != ENOENT {
                    problems.append(ImportError(.cannotResolvePath, "cannot resolve path '\(searchPath)': \(Self.errorText(error))"))
                }
                continue
            }
            if info.st_mode & S_IFMT == S_IFDIR {
                scanDirectory(searchPath, order: order, into: &candidates, problems: &problems)
            } else {
                // Resolve the directory, keep the name: a symlink stays a symlink.
                let (directory, name) = Self.split(searchPath)
                guard let resolved = UdevDiskIdentity.realPath(directory) else {
                    let error = errno
                    if error != ENOENT {
                        problems.append(ImportError(.cannotResolvePath, "cannot resolve path '\(searchPath)': \(Self.errorText(error))"))
                    }
                    continue
                }
                candidates.add(Self.join(resolved, name), order: order, hint: .unknown)
            }
        }
        return (candidates, problems)
    }

    private func scanDirectory(_ directory: String, order: Int, into candidates: inout Candidates, problems: inout [ImportError]) {
        guard let resolved = UdevDiskIdentity.realPath(directory) else {
            let error = errno
            if error != ENOENT {
                problems.append(ImportError(.cannotResolvePath, "cannot resolve path '\(directory)': \(Self.errorText(error))"))
            }
            return
        }
        guard let stream = opendir(resolved) else {
            problems.append(ImportError(.cannotOpenDirectory, "cannot open '\(resolved)': \(Self.errorText(errno))"))
            return
        }
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            let hint: EntryHint
            switch Int32(entry.pointee.d_type) {
            case Int32(DT_DIR): hint = .notADevice("a directory")
            case Int32(DT_FIFO): hint = .notADevice("a FIFO")
            case Int32(DT_SOCK): hint = .notADevice("a socket")
            case Int32(DT_CHR): hint = .notADevice("a character device")
            default: hint = .unknown
            }
            candidates.add(Self.join(resolved, name), order: order, hint: hint)
        }
    }

    // MARK: 2. Probing (any thread)

    enum ProbeOutcome: Sendable {
        case skipped(ScannedDevice.Note, permissionDenied: Bool)
        case probed(LabelProbe)
    }

    static func probe(_ path: String, hint: EntryHint, minimumFileSize: UInt64, verifyingChecksums: Bool = true) -> ProbeOutcome {
        if DeviceOpener.isNetworkPath(path) {
            return probeNetwork(path, minimumFileSize: minimumFileSize, verifyingChecksums: verifyingChecksums)
        }
        let base = split(path).name
        if base == "hpet" || isWatchdog(base) {
            return .skipped(.skippedByName, permissionDenied: false)
        }
        if case .notADevice(let what) = hint {
            return .skipped(.notADevice(what), permissionDenied: false)
        }
        var info = stat()
        guard stat(path, &info) == 0 else {
            let error = errno
            if error == ENOENT {
                // A dangling symlink also lands here.
                var link = stat()
                if lstat(path, &link) == 0 { return .skipped(.notADevice("a dangling symbolic link"), permissionDenied: false) }
                return .skipped(.vanished, permissionDenied: false)
            }
            return .skipped(.statFailed(errorText(error)), permissionDenied: error == EACCES)
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            if UInt64(max(0, info.st_size)) < minimumFileSize {
                return .skipped(.tooSmall(sizeInBytes: UInt64(max(0, info.st_size))), permissionDenied: false)
            }
        case S_IFBLK:
            break
        case S_IFDIR: return .skipped(.notADevice("a directory"), permissionDenied: false)
        case S_IFIFO: return .skipped(.notADevice("a FIFO"), permissionDenied: false)
        case S_IFSOCK: return .skipped(.notADevice("a socket"), permissionDenied: false)
        case S_IFCHR: return .skipped(.notADevice("a character device"), permissionDenied: false)
        default: return .skipped(.notADevice("an unknown file type"), permissionDenied: false)
        }
        let device: any BlockDevice
        do {
            device = try DeviceOpener.open(path: path, mode: .readOnly)
        } catch {
            return .skipped(.cannotOpen(error.message), permissionDenied: error.code == .permissionDenied)
        }
        defer { try? device.close() }
        return .probed(LabelProbe(reading: device, verifyingChecksums: verifyingChecksums))
    }

    /// An NBD export named as a search path (`-d nbd://…`, or listed by `--nbd`): opened like a
    /// file, skipped when smaller than a file would have to be.
    static func probeNetwork(_ path: String, minimumFileSize: UInt64, verifyingChecksums: Bool) -> ProbeOutcome {
        let device: any BlockDevice
        do {
            device = try DeviceOpener.open(path: path, mode: .readOnly)
        } catch {
            return .skipped(.cannotOpen(error.message), permissionDenied: error.code == .permissionDenied)
        }
        defer { try? device.close() }
        if device.sizeInBytes < minimumFileSize {
            return .skipped(.tooSmall(sizeInBytes: device.sizeInBytes), permissionDenied: false)
        }
        return .probed(LabelProbe(reading: device, verifyingChecksums: verifyingChecksums))
    }

    /// `is_watchdog_dev`: `watchdog`, or `watchdog` followed by a digit.
    static func isWatchdog(_ name: String) -> Bool {
        if name == "watchdog" { return true }
        guard name.hasPrefix("watchdog") else { return false }
        let next = name.utf8.dropFirst(8).first
        return next.map { (0x30...0x39).contains($0) } ?? false
    }

    /// The exclusive-open test of `zpool_find_import_impl`: `open(O_RDONLY | O_EXCL)`. On Linux
    /// it fails (`EBUSY`) only for a block device someone holds open exclusively.
    static func opensExclusively(_ path: String) -> Bool {
        // An NBD export has no local holder to ask; MMP is what guards it.
        if DeviceOpener.isNetworkPath(path) { return true }
        let fd = open(path, O_RDONLY | O_EXCL | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    // MARK: Helpers

    static func split(_ path: String) -> (directory: String, name: String) {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return (".", String(trimmed)) }
        let directory = trimmed[..<slash]
        return (directory.isEmpty ? "/" : String(directory), String(trimmed[trimmed.index(after: slash)...]))
    }

    static func join(_ directory: String, _ name: String) -> String {
        "\(directory)/\(name)"
    }

    static func errorText(_ error: Int32) -> String {
        String(cString: strerror(error))
    }
}
