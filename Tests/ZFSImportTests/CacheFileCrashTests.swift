// Torn writes: a cache-file update interrupted at any step leaves a file that reads as the old
// contents or the new ones, never anything else.
//
// Two models of "interrupted":
//   * Process death (`DyingFileSystem`): the real file system, with the update's system calls
//     cut off at call k (and, for `write`, after half the bytes went out); the open descriptors
//     are closed as the kernel closes a dead process's. What is on disk is exactly what the calls
//     before k did. Every k of the sequence is tried.
//   * Power cut (`PowerCutFileSystem`): an in-memory file system that keeps, for every file, the
//     data it has now and the data last made durable by fsync, and for the directory the names
//     as they are now and the log of name changes since the directory was last synced. After
//     every step of the update it enumerates what a disk could hold after a power cut — each
//     prefix of the pending name changes (journals commit in order), and each file's durable
//     data, its current data or an empty or half-written version of it — and every one of those
//     images must read as the old contents or the new. The same model applied to OpenZFS's
//     in-place rewrite (truncate, write, fsync) finds the image it cannot survive: an empty or
//     partial file — the proof that the model can see the failure we avoid.

import Foundation
import Synchronization
import Testing
import ZFSFormat
import ZFSImport
import ZFSTestSupport

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Process death on the real file system

/// The real file system, until call number `dieAt`: that call (a `write`: after writing half its
/// bytes) and every later one fail, and the open descriptors are closed, as at process death.
final class DyingFileSystem: CacheFileSystem {
    private struct State {
        var calls: [String] = []
        var open: Set<Int32> = []
        var dead = false
    }
    private let real = PosixCacheFileSystem()
    private let state = Mutex(State())
    let dieAt: Int?
    let tearWrites: Bool

    init(dieAt: Int?, tearWrites: Bool = false) {
        self.dieAt = dieAt
        self.tearWrites = tearWrites
    }

    /// The calls made, in order (the fatal one included).
    var calls: [String] { state.withLock { $0.calls } }
    var died: Bool { state.withLock { $0.dead } }

    static let death = SystemCallFailure("killed", errno: EINTR)

    /// Records the call; returns false if the process is (now) dead.
    private func enter(_ name: String) -> Bool {
        state.withLock { state in
            guard !state.dead else { return false }
            state.calls.append(name)
            if let dieAt, state.calls.count - 1 == dieAt {
                state.dead = true
                return false
            }
            return true
        }
    }

    /// The kernel closes a dead process's descriptors (and so releases its flock).
    private func reap() {
        let descriptors = state.withLock { state in
            defer { state.open = [] }
            return state.open
        }
        for fd in descriptors { Glibc.close(fd) }
    }

    private func live<T>(_ name: String, _ body: () throws(SystemCallFailure) -> T) throws(SystemCallFailure) -> T {
        guard enter(name) else {
            reap()
            throw Self.death
        }
        return try body()
    }

    func status(_ path: String) throws(SystemCallFailure) -> CacheFileStatus? { try live("lstat") { () throws(SystemCallFailure) in try real.status(path) } }
    func resolve(_ path: String) throws(SystemCallFailure) -> String { try live("realpath") { () throws(SystemCallFailure) in try real.resolve(path) } }
    func readFile(_ path: String) throws(SystemCallFailure) -> [UInt8] { try live("read") { () throws(SystemCallFailure) in try real.readFile(path) } }
    func listDirectory(_ path: String) throws(SystemCallFailure) -> [String] { try live("readdir") { () throws(SystemCallFailure) in try real.listDirectory(path) } }
    func lockExclusive(_ directory: CacheFileHandle) throws(SystemCallFailure) { try live("flock") { () throws(SystemCallFailure) in try real.lockExclusive(directory) } }
    func sync(_ file: CacheFileHandle) throws(SystemCallFailure) { try live("fsync") { () throws(SystemCallFailure) in try real.sync(file) } }
    func rename(_ from: String, to: String) throws(SystemCallFailure) { try live("rename") { () throws(SystemCallFailure) in try real.rename(from, to: to) } }
    func unlink(_ path: String) throws(SystemCallFailure) { try live("unlink") { () throws(SystemCallFailure) in try real.unlink(path) } }

    func openDirectory(_ path: String) throws(SystemCallFailure) -> CacheFileHandle {
        let handle = try live("open(dir)") { () throws(SystemCallFailure) in try real.openDirectory(path) }
        state.withLock { _ = $0.open.insert(handle.rawValue) }
        return handle
    }

    func createExclusive(_ path: String, permissions: UInt32, owner: (user: UInt32, group: UInt32)?) throws(SystemCallFailure) -> CacheFileHandle {
        let handle = try live("open(create)") { () throws(SystemCallFailure) in try real.createExclusive(path, permissions: permissions, owner: owner) }
        state.withLock { _ = $0.open.insert(handle.rawValue) }
        return handle
    }

    func close(_ file: CacheFileHandle) throws(SystemCallFailure) {
        try live("close") { () throws(SystemCallFailure) in
            state.withLock { _ = $0.open.remove(file.rawValue) }
            try real.close(file)
        }
    }

    func write(_ file: CacheFileHandle, _ bytes: [UInt8]) throws(SystemCallFailure) {
        let alive = enter("write")
        if !alive {
            if tearWrites { try? real.write(file, Array(bytes.prefix(bytes.count / 2))) }
            reap()
            throw Self.death
        }
        try real.write(file, bytes)
    }
}

@Suite struct CacheFileProcessDeathTests {
    /// The three kinds of update: a new file, a change to a file, and the removal of its last pool.
    enum Change: String, CaseIterable, CustomTestStringConvertible {
        case create, replace, removeLast
        var testDescription: String { rawValue }
    }

    static func before(_ change: Change) -> CacheFile? {
        switch change {
        case .create: nil
        case .replace: CacheFile(entries: [cacheEntry("alpha", guid: 1, paths: ["/dev/a"]), cacheEntry("tank", guid: 2, paths: ["/dev/b"])])
        case .removeLast: CacheFile(entries: [cacheEntry("tank", guid: 2)])
        }
    }

    static func edit(_ change: Change) -> (inout CacheFile) throws(CacheFileError) -> Void {
        switch change {
        case .create, .replace:
            return { (cache: inout CacheFile) throws(CacheFileError) in
                try cache.insert(cacheEntry("tank", guid: 2, txg: 77, paths: ["/dev/c", "/dev/d"]))
                try cache.insert(cacheEntry("beta", guid: 3))
            }
        case .removeLast:
            return { (cache: inout CacheFile) throws(CacheFileError) in try cache.remove(.name("tank")) }
        }
    }

    /// Dies at every call of the update (writes torn in half, or not at all): the file reads as
    /// before or after, and the next update succeeds and leaves no temporary file behind.
    @Test(arguments: Change.allCases, [false, true])
    func deathAtEveryCallLeavesOldOrNew(_ change: Change, tearWrites: Bool) throws {
        // The full sequence, once, to know its length and the new contents.
        let (calls, after) = try withTemporaryDirectory(prefix: "cache-death") { directory in
            let path = directory.path("zpool.cache")
            try Self.before(change)?.write(to: path)
            let recorder = DyingFileSystem(dieAt: nil)
            try CacheFile.update(at: path, fileSystem: recorder, Self.edit(change))
            return (recorder.calls, (try? CacheFile.read(at: path))?.entries)
        }
        let expected: [String] =
            change == .removeLast
            ? ["lstat", "open(dir)", "flock", "readdir", "read", "unlink", "fsync", "close"]
            : ["lstat", "open(dir)", "flock", "readdir", "read", "open(create)", "write", "fsync", "close", "rename", "fsync", "close"]
        #expect(calls == expected)
        let beforeEntries = Self.before(change)?.entries
        let commit = calls.firstIndex(of: change == .removeLast ? "unlink" : "rename")!
        for k in calls.indices {
            try withTemporaryDirectory(prefix: "cache-death") { directory in
                let path = directory.path("zpool.cache")
                try Self.before(change)?.write(to: path)
                let dying = DyingFileSystem(dieAt: k, tearWrites: tearWrites)
                if k == calls.count - 1 {
                    // Closing the directory is the last call, after the update is complete and
                    // durable; its failure is not an error.
                    try CacheFile.update(at: path, fileSystem: dying, Self.edit(change))
                } else {
                    #expect(throws: (any Error).self, "death at call \(k) (\(calls[k]))") {
                        try CacheFile.update(at: path, fileSystem: dying, Self.edit(change))
                    }
                }
                #expect(dying.died)
                let now = (try? CacheFile.read(at: path))?.entries
                #expect(now == (k <= commit ? beforeEntries : after), "death at call \(k) (\(calls[k])), torn writes \(tearWrites)")
                #expect(directoryNames(directory.path).filter { !$0.hasPrefix(".zpool.cache.zpk-") }.count <= 1)
                // The next update cleans up and succeeds.
                try CacheFile.update(at: path) { cache throws(CacheFileError) in try cache.insert(cacheEntry("omega", guid: 9)) }
                #expect(directoryNames(directory.path) == ["zpool.cache"], "after death at call \(k)")
                #expect(try CacheFile.read(at: path).entry(.name("omega")) != nil)
            }
        }
    }
}

// MARK: - Power cut, modelled

/// An in-memory single-directory file system that knows what a power cut would keep.
final class PowerCutFileSystem: CacheFileSystem {
    struct Inode: Hashable {
        var current: [UInt8] = []
        var durable: [UInt8] = []
        var permissions: UInt32 = 0o644
    }
    enum NameChange: Hashable {
        case link(String, Int)
        case unlink(String)
    }
    struct State: Hashable {
        var inodes: [Int: Inode] = [:]
        var names: [String: Int] = [:]
        var durableNames: [String: Int] = [:]
        var pendingNames: [NameChange] = []
        var handles: [Int32: Int] = [:]  // file handle → inode; the directory is handle 3
        var nextInode = 1
        var nextHandle: Int32 = 10
    }

    let directory: String
    private let state = Mutex(State())
    /// The state after every call.
    private let history = Mutex<[(call: String, state: State)]>([])

    init(directory: String) { self.directory = directory }

    /// A file that exists durably (written and synced long ago).
    func install(_ name: String, _ bytes: [UInt8]) {
        state.withLock { s in
            let inode = s.nextInode
            s.nextInode += 1
            s.inodes[inode] = Inode(current: bytes, durable: bytes)
            s.names[name] = inode
            s.durableNames[name] = inode
        }
    }

    var steps: [(call: String, state: State)] { history.withLock { $0 } }

    private func name(_ path: String) -> String {
        path.hasPrefix(directory + "/") ? String(path.dropFirst(directory.count + 1)) : path
    }

    private func record<T>(_ call: String, _ body: (inout State) throws(SystemCallFailure) -> T) throws(SystemCallFailure) -> T {
        var copy = state.withLock { $0 }
        let result = try body(&copy)
        let final = copy
        state.withLock { $0 = final }
        history.withLock { $0.append((call, final)) }
        return result
    }

    func status(_ path: String) throws(SystemCallFailure) -> CacheFileStatus? {
        try record("lstat") { s throws(SystemCallFailure) in
            if path == directory { return CacheFileStatus(kind: .directory, permissions: 0o755) }
            guard let inode = s.names[name(path)], let node = s.inodes[inode] else { return nil }
            return CacheFileStatus(kind: .regular, permissions: node.permissions, sizeInBytes: UInt64(node.current.count))
        }
    }
    func resolve(_ path: String) throws(SystemCallFailure) -> String { path }
    func readFile(_ path: String) throws(SystemCallFailure) -> [UInt8] {
        try record("read") { s throws(SystemCallFailure) in
            guard let inode = s.names[name(path)], let node = s.inodes[inode] else { throw SystemCallFailure("open", errno: ENOENT) }
            return node.current
        }
    }
    func openDirectory(_ path: String) throws(SystemCallFailure) -> CacheFileHandle {
        try record("open(dir)") { _ throws(SystemCallFailure) in
            guard path == directory else { throw SystemCallFailure("open", errno: ENOENT) }
            return CacheFileHandle(rawValue: 3)
        }
    }
    func lockExclusive(_ directory: CacheFileHandle) throws(SystemCallFailure) { try record("flock") { _ throws(SystemCallFailure) in } }
    func listDirectory(_ path: String) throws(SystemCallFailure) -> [String] {
        try record("readdir") { s throws(SystemCallFailure) in Array(s.names.keys) }
    }
    func createExclusive(_ path: String, permissions: UInt32, owner: (user: UInt32, group: UInt32)?) throws(SystemCallFailure) -> CacheFileHandle {
        try record("open(create)") { s throws(SystemCallFailure) in
            let n = name(path)
            guard s.names[n] == nil else { throw SystemCallFailure("open", errno: EEXIST) }
            let inode = s.nextInode
            s.nextInode += 1
            s.inodes[inode] = Inode(permissions: permissions)
            s.names[n] = inode
            s.pendingNames.append(.link(n, inode))
            let handle = s.nextHandle
            s.nextHandle += 1
            s.handles[handle] = inode
            return CacheFileHandle(rawValue: handle)
        }
    }
    func write(_ file: CacheFileHandle, _ bytes: [UInt8]) throws(SystemCallFailure) {
        try record("write") { s throws(SystemCallFailure) in
            guard let inode = s.handles[file.rawValue] else { throw SystemCallFailure("write", errno: EBADF) }
            s.inodes[inode]!.current += bytes
        }
    }
    func sync(_ file: CacheFileHandle) throws(SystemCallFailure) {
        try record(file.rawValue == 3 ? "fsync(dir)" : "fsync") { s throws(SystemCallFailure) in
            if file.rawValue == 3 {
                s.durableNames = s.names
                s.pendingNames = []
            } else if let inode = s.handles[file.rawValue] {
                s.inodes[inode]!.durable = s.inodes[inode]!.current
            }
        }
    }
    func close(_ file: CacheFileHandle) throws(SystemCallFailure) {
        try record("close") { s throws(SystemCallFailure) in s.handles[file.rawValue] = nil }
    }
    func rename(_ from: String, to: String) throws(SystemCallFailure) {
        try record("rename") { s throws(SystemCallFailure) in
            let (a, b) = (name(from), name(to))
            guard let inode = s.names[a] else { throw SystemCallFailure("rename", errno: ENOENT) }
            s.names[a] = nil
            s.names[b] = inode
            s.pendingNames += [.link(b, inode), .unlink(a)]
        }
    }
    func unlink(_ path: String) throws(SystemCallFailure) {
        try record("unlink") { s throws(SystemCallFailure) in
            let n = name(path)
            guard s.names[n] != nil else { throw SystemCallFailure("unlink", errno: ENOENT) }
            s.names[n] = nil
            s.pendingNames.append(.unlink(n))
        }
    }

    // OpenZFS's in-place rewrite, for the contrast test: open(O_TRUNC), write, fsync.
    func openZFSRewrite(_ name: String, _ bytes: [UInt8]) {
        try? record("open(O_TRUNC)") { s throws(SystemCallFailure) in
            if let inode = s.names[name] {
                s.inodes[inode]!.current = []
            }
        }
        try? record("write") { s throws(SystemCallFailure) in
            if let inode = s.names[name] { s.inodes[inode]!.current = bytes }
        }
        try? record("fsync") { s throws(SystemCallFailure) in
            if let inode = s.names[name] { s.inodes[inode]!.durable = s.inodes[inode]!.current }
        }
    }

    /// What `name` could read as after a power cut in `state`: `nil` for "no such file".
    static func images(of name: String, in state: State) -> Set<[UInt8]?> {
        var result = Set<[UInt8]?>()
        for prefix in 0...state.pendingNames.count {
            var names = state.durableNames
            for change in state.pendingNames.prefix(prefix) {
                switch change {
                case .link(let n, let inode): names[n] = inode
                case .unlink(let n): names[n] = nil
                }
            }
            guard let inode = names[name], let node = state.inodes[inode] else {
                result.insert(nil)
                continue
            }
            // Unsynced data may have reached the disk whole, in part, or not at all.
            result.insert(node.durable)
            if node.current != node.durable {
                result.insert(node.current)
                result.insert([])
                result.insert(Array(node.current.prefix(node.current.count / 2)))
            }
        }
        return result
    }
}

@Suite struct CacheFilePowerCutTests {
    static let directory = "/model"

    /// After every step of an update, every image a power cut could leave reads as the old
    /// contents or the new ones (for a new file: no file, or the new one).
    @Test(arguments: CacheFileProcessDeathTests.Change.allCases)
    func everyPowerCutImageIsOldOrNew(_ change: CacheFileProcessDeathTests.Change) throws {
        let model = PowerCutFileSystem(directory: Self.directory)
        let before = CacheFileProcessDeathTests.before(change)
        if let before { model.install("zpool.cache", try before.encoded()) }
        let after = try CacheFile.update(at: "\(Self.directory)/zpool.cache", fileSystem: model, CacheFileProcessDeathTests.edit(change))
        let allowed: Set<[CacheFile.Entry]?> = [before?.entries, after.entries.isEmpty ? nil : after.entries]
        var imagesSeen = 0
        for (step, (call, state)) in model.steps.enumerated() {
            for image in PowerCutFileSystem.images(of: "zpool.cache", in: state) {
                imagesSeen += 1
                let entries: [CacheFile.Entry]? = try image.map { try CacheFile(decoding: $0, path: "image").entries }
                #expect(allowed.contains(entries), "power cut after step \(step) (\(call)) leaves \(entries?.map(\.name) ?? ["no file"])")
            }
        }
        #expect(imagesSeen > model.steps.count)
        // Once update returns, the only image is the new one.
        let final = PowerCutFileSystem.images(of: "zpool.cache", in: model.steps.last!.state)
        #expect(final == [after.entries.isEmpty ? nil : try after.encoded()])
    }

    /// The model is able to see a torn cache file: OpenZFS's in-place rewrite has power-cut
    /// images that are empty or cut short (the old pools forgotten, or unreadable).
    @Test func theModelCatchesOpenZFSsInPlaceRewrite() throws {
        let model = PowerCutFileSystem(directory: Self.directory)
        let old = CacheFile(entries: [cacheEntry("alpha", guid: 1), cacheEntry("tank", guid: 2)])
        let new = CacheFile(entries: [cacheEntry("alpha", guid: 1), cacheEntry("tank", guid: 2, txg: 80)])
        model.install("zpool.cache", try old.encoded())
        model.openZFSRewrite("zpool.cache", try new.encoded())
        var bad: [String] = []
        for (call, state) in model.steps {
            for image in PowerCutFileSystem.images(of: "zpool.cache", in: state) {
                let entries = image.flatMap { try? CacheFile(decoding: $0, path: "image").entries }
                if entries != old.entries && entries != new.entries {
                    bad.append("\(call): \(image.map { "\($0.count) bytes" } ?? "no file")")
                }
            }
        }
        #expect(bad.contains { $0.hasSuffix(": 0 bytes") })
        #expect(bad.count >= 2, "\(bad)")
    }
}
