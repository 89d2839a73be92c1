// A vdev leaf over the network: an export of an NBD server, reached through libnbd.
//
// Purpose. `nbd://HOST[:PORT]/EXPORT` (and `nbd+unix:///EXPORT?socket=PATH`, or any other URI
// libnbd's `nbd_connect_uri` takes) names a leaf like a path does: labels store the URI as given,
// import finds the leaf by it. The NBD protocol is libnbd's; this file adds what a vdev needs on
// top: a deadline on every request, reconnects with backoff, Force Unit Access for labels,
// uberblocks and heartbeats, and errors that name the URI, the offset and the reason.
//
// What it does NOT guarantee.
//   - That a request which timed out did not happen. The connection it used is reset (its send
//     queue discarded) and closed, but the server may already have received, carried out (or may
//     still carry out) a write. The same holds for a fence (below). Positioned writes are
//     idempotent, so a mirror's repair or the next txg simply writes again.
//   - Exclusive access: other clients of the same export write freely (MMP is for that).
//   - Durability of a plain `write` before `flush()` (NBD_CMD_FLUSH), as for any device.
//
// Mechanism. Up to `Options.connections` libnbd handles ("lanes"), each used by one request at
// a time (libnbd serialises calls on a handle anyway); a request waits for a free lane up to its
// own deadline. Each request is issued with the asynchronous API (`nbd_aio_pread`/`pwrite`/
// `flush`) and driven with `nbd_poll` until it completes or the deadline (start + timeout) passes
// (`zpk_nbd_await`, module CZPKNBD). On a timeout the handle is closed at once — after which libnbd
// never touches the caller's buffer again — and the request throws `.timedOut`. A lane without a
// connection (never connected, timed out, or found dead) connects on its next use, subject to
// `NBDReconnectBackoff`; a request that finds its idle connection dead (the server restarted) or
// loses it mid-request reconnects once and retries within its deadline.
//
// MMP. A heartbeat write to a stalled server returns `.timedOut` after at most the request
// timeout: a failed heartbeat write, never a hang. Until then the heartbeat service's rescue
// (`LoopRescue`) has already moved its loop on to the other leaves; see docs/nbd.md.
//
// Fence. When multihost suspends the pool it calls `fence()`: writes and flushes are refused
// (`.fenced`) until `unfence()`, and every connection the device holds — idle or carrying a
// request — is aborted on the spot (`zpk_nbd_abort_socket`: a TCP reset that empties the send
// queue), so no byte handed to libnbd before the fence is sent afterwards, whenever the network
// heals. Every socket is known by a descriptor of our own (`zpk_nbd_dup_socket`) from connect to
// `retire`, and the fence acts only on registered ones, under the lanes' lock; a write checks the
// fence on a registered connection, so it is either refused or its connection is aborted. What
// the server already received cannot be recalled (docs/nbd.md, "Fencing"). Reads still work,
// on new connections: `zpk clear`'s activity check reads the leaves of the suspended pool.
//
// Invariants.
//   - A read returns exactly `count` bytes or throws; a read that meets the end of the export
//     throws `.shortRead`, as for a file. A write never extends the export.
//   - No request outlives its deadline by more than one `nbd_poll` wake-up (plus `nbd_close`).
//   - The export's size is read at open and checked at every reconnect: a server that comes back
//     with a different size is refused (`.ioError`), as a replaced disk would be.
//
// Tunables (`NBDBlockDevice.Options`): request timeout (default 10 s, `ZPK_NBD_TIMEOUT_MS`),
// connect timeout (default 5 s, and never past the request's deadline), lanes (default 2),
// reconnect backoff (100 ms doubling to 5 s).

import CZPKNBD
import Dispatch
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// An NBD export used as a block device, through libnbd.
///
/// ```swift
/// let device = try NBDBlockDevice(uri: "nbd://127.0.0.1:10809/disk0", mode: .readWrite)
/// try device.write([1, 2, 3], atAbsoluteOffset: 4096)
/// try device.flush()
/// ```
///
/// Thread-safe: up to ``Options/connections`` requests run at once, each on its own connection.
public final class NBDBlockDevice: BlockDevice {
    /// How requests are bounded and connections kept.
    public struct Options: Hashable, Sendable {
        /// The longest a request (read, write, flush — including waiting for a connection and
        /// reconnecting) may take before it throws ``DeviceError/Code/timedOut``.
        public var requestTimeout: Duration
        /// The longest a connect (TCP or Unix socket, then the NBD handshake) may take; a connect
        /// made for a request also ends at that request's deadline.
        public var connectTimeout: Duration
        /// Connections (libnbd handles) the device may hold, hence requests in flight at once.
        public var connections: Int
        /// When reconnects may be attempted after failed ones.
        public var backoff: NBDReconnectBackoff.Policy

        /// - Parameters:
        ///   - requestTimeout: per-request deadline (default 10 s).
        ///   - connectTimeout: per-connect deadline (default 5 s).
        ///   - connections: connections held at most (default 2, at least 1).
        ///   - backoff: reconnect delays (default 100 ms doubling to 5 s).
        public init(
            requestTimeout: Duration = .seconds(10), connectTimeout: Duration = .seconds(5), connections: Int = 2,
            backoff: NBDReconnectBackoff.Policy = .init()
        ) {
            self.requestTimeout = max(requestTimeout, .milliseconds(1))
            self.connectTimeout = max(connectTimeout, .milliseconds(1))
            self.connections = max(1, connections)
            self.backoff = backoff
        }

        /// The process's defaults: ``init(requestTimeout:connectTimeout:connections:backoff:)``'s,
        /// with the request timeout (and the connect timeout, if longer) taken from the
        /// environment variable `ZPK_NBD_TIMEOUT_MS` when it holds a positive number of
        /// milliseconds.
        public static var environmentDefault: Options {
            var options = Options()
            if let text = getenv("ZPK_NBD_TIMEOUT_MS").map({ String(cString: $0) }), let ms = Int64(text), ms > 0 {
                options.requestTimeout = .milliseconds(ms)
                options.connectTimeout = min(options.connectTimeout, options.requestTimeout)
            }
            return options
        }
    }

    /// The URI the device was opened with, as given.
    public let path: String
    /// The export's size, as the server announced it at open.
    public let sizeInBytes: UInt64
    /// `true`: an NBD export is a block device (a leaf of type `disk`).
    public var isBlockDevice: Bool { true }
    /// Whether writes are allowed.
    public let mode: FileBlockDevice.Mode
    /// Whether the server offers Force Unit Access (`NBD_FLAG_SEND_FUA`).
    public let forcesUnitAccess: Bool
    /// Whether the server accepts NBD_CMD_FLUSH (`NBD_FLAG_SEND_FLUSH`); when it does not, it
    /// announces that it has no volatile cache and ``flush()`` does nothing.
    public let canFlush: Bool
    /// The bounds in force.
    public let options: Options

    /// Idle lanes (a lane without a connection is `nil`), whether the device is closed or fenced,
    /// and the sockets of every connection it holds.
    private let lanes: Mutex<LaneState>
    /// Counts idle lanes, so that a request can wait for one with a deadline.
    private let idleLanes: DispatchSemaphore
    private let backoff: Mutex<NBDReconnectBackoff>

    /// Largest single NBD request: well under every server's limit (nbd-server: 32 MiB, libnbd:
    /// 64 MiB).
    static let maximumRequestByteCount = 4 << 20

    /// Opens an export: connects once, to learn its size and what the server offers.
    ///
    /// - Parameters:
    ///   - uri: `nbd://HOST[:PORT]/EXPORT`, `nbd+unix:///EXPORT?socket=PATH`, or another URI
    ///     libnbd accepts.
    ///   - mode: `.readOnly` refuses writes here; `.readWrite` also refuses an export the server
    ///     offers read-only.
    ///   - options: timeouts, connections, backoff.
    /// - Throws: ``DeviceError``: `.invalidArgument` for a URI libnbd rejects, `.notFound` when
    ///   nothing listens or the export does not exist, `.timedOut`, `.permissionDenied` for a
    ///   read-only export opened `.readWrite`, `.ioError` otherwise — each naming the URI.
    public init(uri: String, mode: FileBlockDevice.Mode = .readOnly, options: Options = .environmentDefault)
        throws(DeviceError)
    {
        self.path = uri
        self.mode = mode
        self.options = options
        let deadline = Self.now() + Self.nanoseconds(min(options.connectTimeout, options.requestTimeout))
        let handle = try Self.connect(uri: uri, deadline: deadline, verb: "open")
        let size = nbd_get_size(handle.pointer)
        guard size >= 0 else {
            let error = Self.libnbdError(
                .ioError, path: uri, offset: nil, call: "nbd_get_size", what: "cannot open \(uri)")
            handle.close()
            throw error
        }
        if mode == .readWrite && nbd_is_read_only(handle.pointer) == 1 {
            handle.close()
            throw DeviceError(
                code: .permissionDenied,
                message: "cannot open \(uri) for writing: the server exports it read-only; open it read-only",
                path: uri)
        }
        self.sizeInBytes = UInt64(size)
        self.forcesUnitAccess = nbd_can_fua(handle.pointer) == 1
        self.canFlush = nbd_can_flush(handle.pointer) == 1
        var idle = [Handle?](repeating: nil, count: options.connections)
        idle[0] = handle
        var state = LaneState(idle: idle)
        state.sockets[handle.key] = handle.socket
        self.lanes = Mutex(state)
        self.idleLanes = DispatchSemaphore(value: options.connections)
        self.backoff = Mutex(NBDReconnectBackoff(policy: options.backoff))
    }

    deinit {
        let handles = lanes.withLock { state -> [Handle?] in
            defer { state.idle = [] }
            return state.idle
        }
        for case let handle? in handles { handle.close() }
    }

    // MARK: BlockDevice

    public func read(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        guard buffer.count > 0 else { return }
        let available = offset >= sizeInBytes ? 0 : Int(min(UInt64(buffer.count), sizeInBytes - offset))
        var done = 0
        while done < available {
            let count = min(available - done, Self.maximumRequestByteCount)
            let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + count)])
            let at = offset + UInt64(done)
            try perform("read", count: count, offset: at, call: "nbd_aio_pread") { h in
                nbd_aio_pread(h, chunk.baseAddress, chunk.count, at, Self.noCompletion, 0)
            }
            done += count
        }
        if available < buffer.count {
            throw DeviceError.shortRead(
                path: path, offset: offset, requested: buffer.count, available: available, deviceSize: sizeInBytes)
        }
    }

    public func write(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        try write(buffer, at: offset, flags: 0)
    }

    /// NBD has no page cache on this host to bypass: the same as ``read(into:atAbsoluteOffset:)``.
    public func readUncached(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64)
        throws(DeviceError)
    {
        try read(into: buffer, atAbsoluteOffset: offset)
    }

    /// NBD has no page cache on this host to bypass: the same as ``write(from:atAbsoluteOffset:)``.
    public func writeUncached(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64)
        throws(DeviceError)
    {
        try write(buffer, at: offset, flags: 0)
    }

    /// A write with `NBD_CMD_FLAG_FUA`: the server replies once the bytes are on stable storage.
    /// A server without FUA gets a write then, when it takes one, a flush.
    public func writeForcingUnitAccess(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64)
        throws(DeviceError)
    {
        if forcesUnitAccess {
            try write(buffer, at: offset, flags: UInt32(LIBNBD_CMD_FLAG_FUA))
        } else {
            try write(buffer, at: offset, flags: 0)
            try flush()
        }
    }

    /// NBD_CMD_FLUSH; nothing when the server announced it needs none.
    public func flush() throws(DeviceError) {
        guard canFlush else {
            try checkOpen(verb: "flush", count: 0, offset: 0)
            return
        }
        try perform("flush", count: 0, offset: 0, call: "nbd_aio_flush") { h in
            nbd_aio_flush(h, Self.noCompletion, 0)
        }
    }

    /// Closes every connection (politely, with NBD_CMD_DISC, when idle). Requests under way
    /// finish; their connections close when they do. Later requests throw `.closed`.
    public func close() throws(DeviceError) {
        let handles = lanes.withLock { state -> [Handle] in
            guard !state.closed else { return [] }
            state.closed = true
            defer { state.idle = state.idle.map { _ in nil } }
            let handles = state.idle.compactMap { $0 }
            for handle in handles { state.unregister(handle) }
            return handles
        }
        for handle in handles {
            if nbd_aio_is_ready(handle.pointer) == 1 { _ = nbd_shutdown(handle.pointer, 0) }
            handle.close()
        }
    }

    // MARK: Fence

    /// Fences the device: from now until ``unfence()``, writes and flushes throw
    /// ``DeviceError/Code/fenced`` without being sent, and every connection is aborted at once —
    /// idle ones, and those carrying a request (which then throws `.fenced`). A TCP connection is
    /// reset and the bytes still in its send queue are discarded; no connection made before the
    /// fence is used again. Reads still work, on new connections.
    ///
    /// What it cannot do: recall bytes the server's kernel already received (see docs/nbd.md,
    /// "Fencing"). Returns at once; never waits for the server.
    public func fence() {
        let idle = lanes.withLock { state -> [Handle] in
            state.fenced = true
            for (key, socket) in state.sockets {
                _ = zpk_nbd_abort_socket(socket)
                state.aborted.insert(key)
            }
            let handles = state.idle.compactMap { $0 }
            state.idle = state.idle.map { _ in nil }
            for handle in handles { state.unregister(handle) }
            return handles
        }
        for handle in idle { handle.close() }
    }

    /// Lifts the fence: writes go through again, on new connections.
    public func unfence() {
        lanes.withLock { $0.fenced = false }
    }

    /// Whether the device is fenced (``fence()``).
    public var isFenced: Bool { lanes.withLock { $0.fenced } }

    /// Requests handed to libnbd and not yet finished (completed, failed or timed out).
    public var requestsInFlight: Int { lanes.withLock { $0.inFlight } }

    // MARK: Requests

    private func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64, flags: UInt32) throws(DeviceError) {
        guard mode == .readWrite else {
            throw DeviceError(
                code: .readOnly,
                message: "cannot write \(buffer.count) bytes at offset \(hexadecimal(offset)) of \(path): "
                    + "it was opened read-only; open it with mode .readWrite to write",
                path: path, offset: offset)
        }
        guard offset <= sizeInBytes, UInt64(buffer.count) <= sizeInBytes - offset else {
            throw DeviceError.writePastEnd(path: path, offset: offset, count: buffer.count, deviceSize: sizeInBytes)
        }
        var done = 0
        while done < buffer.count {
            let count = min(buffer.count - done, Self.maximumRequestByteCount)
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[done..<(done + count)])
            let at = offset + UInt64(done)
            // FUA on every chunk: each must be durable when the call returns.
            try perform("write", count: count, offset: at, call: "nbd_aio_pwrite") { h in
                nbd_aio_pwrite(h, chunk.baseAddress, chunk.count, at, Self.noCompletion, flags)
            }
            done += count
        }
    }

    private func checkOpen(verb: String, count: Int, offset: UInt64) throws(DeviceError) {
        let (closed, fenced) = lanes.withLock { ($0.closed, $0.fenced) }
        if closed {
            throw DeviceError(
                code: .closed, message: "cannot \(verb) \(describe(count: count, offset: offset)) of \(path): the device is closed",
                path: path, offset: offset)
        }
        if fenced && verb != "read" {
            try checkFence(writes: true, what: "cannot \(verb) \(describe(count: count, offset: offset)) of \(path)", offset: offset)
        }
    }

    /// Throws `.fenced` for a write or flush while the device is fenced.
    private func checkFence(writes: Bool, what: String, offset: UInt64) throws(DeviceError) {
        guard writes, lanes.withLock({ $0.fenced }) else { return }
        throw DeviceError(
            code: .fenced,
            message: "\(what): the device is fenced (its pool was suspended: another host may import it); "
                + "nothing is written until the pool is resumed (zpk clear) or imported again",
            path: path, offset: offset)
    }

    /// Registers a new connection, so that a fence from now on aborts it; a write does not get
    /// one while fenced, and nobody gets one once the device is closed.
    private func adopt(_ handle: Handle, writes: Bool, what: String, offset: UInt64) throws(DeviceError) {
        let refusal = lanes.withLock { state -> DeviceError.Code? in
            if state.closed { return .closed }
            if writes && state.fenced { return .fenced }
            state.sockets[handle.key] = handle.socket
            return nil
        }
        guard let refusal else { return }
        handle.close()
        if refusal == .closed {
            throw DeviceError(code: .closed, message: "\(what): the device is closed", path: path, offset: offset)
        }
        try checkFence(writes: true, what: what, offset: offset)
    }

    /// Whether a fence aborted this connection.
    private func wasAborted(_ handle: Handle) -> Bool {
        lanes.withLock { $0.aborted.contains(handle.key) }
    }

    /// Forgets a connection (a fence no longer touches its socket), then closes it.
    private func retire(_ handle: Handle) {
        lanes.withLock { $0.unregister(handle) }
        handle.close()
    }

    /// Issues one command (`issue` returns its cookie, or -1) on a lane and waits for it, within
    /// the request timeout, reconnecting as the backoff allows.
    private func perform(
        _ verb: String, count: Int, offset: UInt64, call: String, _ issue: (OpaquePointer) -> Int64
    ) throws(DeviceError) {
        let start = Self.now()
        let deadline = start + Self.nanoseconds(options.requestTimeout)
        let what = "cannot \(verb) \(describe(count: count, offset: offset)) of \(path)"
        let writes = verb != "read"
        try checkFence(writes: writes, what: what, offset: offset)
        var handle = try acquireLane(deadline: deadline, what: what, offset: offset)
        defer { releaseLane(handle) }
        var retried = false
        while true {
            var fresh = false
            if let current = handle, nbd_aio_is_ready(current.pointer) != 1 || wasAborted(current) {
                retire(current)
                handle = nil
            }
            if handle == nil {
                try checkFence(writes: writes, what: what, offset: offset)
                let connected = try reconnect(deadline: deadline, what: what, offset: offset)
                try adopt(connected, writes: writes, what: what, offset: offset)
                handle = connected
                fresh = true
            }
            let current = handle!
            let h = current.pointer
            // The connection is registered: from here a fence either shows here or aborts it.
            try checkFence(writes: writes, what: what, offset: offset)
            let cookie = issue(h)
            if cookie != -1 { lanes.withLock { $0.inFlight += 1 } }
            let outcome: Int32 = cookie == -1 ? ZPK_NBD_FAILED : zpk_nbd_await(h, cookie, deadline)
            if cookie != -1 { lanes.withLock { $0.inFlight -= 1 } }
            if outcome == ZPK_NBD_DONE { return }
            if wasAborted(current) {
                retire(current)
                handle = nil
                throw DeviceError(
                    code: .fenced,
                    message: "\(what): the device was fenced (its pool was suspended) while the request was under way; "
                        + "its connection was aborted, and what the server had not received is discarded",
                    path: path, offset: offset, systemCall: call)
            }
            if outcome == ZPK_NBD_TIMED_OUT {
                // Reset, not a graceful close: what is still queued is never sent, so a write
                // that timed out cannot land later over a newer one.
                _ = zpk_nbd_abort_socket(current.socket)
                retire(current)
                handle = nil
                throw DeviceError(
                    code: .timedOut,
                    message: "\(what): the server did not answer within \(options.requestTimeout) "
                        + "(request timeout); the connection was closed and the next request reconnects",
                    path: path, offset: offset, systemCall: call, cause: .timedOut)
            }
            // Failed: a server error leaves the connection usable; a lost connection does not.
            let error = Self.libnbdError(.ioError, path: path, offset: offset, call: call, what: what)
            guard nbd_aio_is_ready(h) != 1 else { throw error }
            retire(current)
            handle = nil
            // An idle connection found dead (the server restarted): reconnect once and retry.
            if !fresh && !retried && Self.now() < deadline {
                retried = true
                continue
            }
            throw DeviceError(
                code: .disconnected,
                message: "\(what): the connection to the server was lost (\(error.cause.map { "\($0)" } ?? error.message)); "
                    + "the next request reconnects",
                path: path, offset: offset, systemCall: call, cause: error.cause)
        }
    }

    /// Takes an idle lane (its connection, or `nil`), waiting for one until `deadline`.
    private func acquireLane(deadline: Int64, what: String, offset: UInt64) throws(DeviceError) -> Handle? {
        let left = max(0, deadline - Self.now())
        guard idleLanes.wait(timeout: .now() + .nanoseconds(Int(left))) == .success else {
            throw DeviceError(
                code: .timedOut,
                message: "\(what): all \(options.connections) connections stayed busy for the whole request timeout "
                    + "(\(options.requestTimeout))",
                path: path, offset: offset, cause: .timedOut)
        }
        let taken = lanes.withLock { state -> Handle?? in
            guard !state.closed else { return .none }
            // A connected lane first: a request never connects while a connection sits idle.
            let index = state.idle.lastIndex { $0 != nil } ?? state.idle.count - 1
            return .some(state.idle.remove(at: index))
        }
        guard let taken else {
            idleLanes.signal()
            throw DeviceError(code: .closed, message: "\(what): the device is closed", path: path, offset: offset)
        }
        return taken
    }

    private func releaseLane(_ handle: Handle?) {
        let keep = lanes.withLock { state -> Bool in
            // A connection the fence aborted is never used again.
            guard !state.closed, !(handle.map { state.aborted.contains($0.key) } ?? false) else {
                if let handle { state.unregister(handle) }
                state.idle.append(nil)
                return false
            }
            state.idle.append(handle)
            return true
        }
        if !keep, let handle { handle.close() }
        idleLanes.signal()
    }

    /// A new connection for a request, unless the backoff says not yet.
    private func reconnect(deadline: Int64, what: String, offset: UInt64) throws(DeviceError) -> Handle {
        let startedAt = Self.now()
        let wait = backoff.withLock { $0.waitBeforeAttempt(at: .nanoseconds(startedAt)) }
        if wait > .zero {
            let failures = backoff.withLock { $0.consecutiveFailures }
            throw DeviceError(
                code: .disconnected,
                message: "\(what): the server is unreachable (\(failures) reconnect attempt\(failures == 1 ? "" : "s") "
                    + "failed); the next attempt may start in \(wait)",
                path: path, offset: offset)
        }
        let connectDeadline = min(deadline, startedAt + Self.nanoseconds(options.connectTimeout))
        let handle: Handle
        do {
            handle = try Self.connect(uri: path, deadline: connectDeadline, verb: "reconnect")
        } catch {
            backoff.withLock { $0.attemptFailed(startedAt: .nanoseconds(startedAt)) }
            var error = error
            error.offset = offset
            error.message = "\(what): \(error.message)"
            if error.code != .timedOut { error.code = .disconnected }
            throw error
        }
        let size = nbd_get_size(handle.pointer)
        guard size == Int64(clamping: sizeInBytes) else {
            handle.close()
            backoff.withLock { $0.attemptFailed(startedAt: .nanoseconds(startedAt)) }
            throw DeviceError(
                code: .ioError,
                message: "\(what): after reconnecting, the server exports \(size) bytes where it exported "
                    + "\(sizeInBytes) at open; refusing a changed device",
                path: path, offset: offset)
        }
        backoff.withLock { $0.connected() }
        return handle
    }

    // MARK: Helpers

    /// A libnbd handle, and a descriptor of our own for its socket.
    /// `@unchecked Sendable`: a handle is used by one request at a time (it is taken out of
    /// `lanes`, under its Mutex, for the request), and libnbd handles are thread-safe anyway.
    struct Handle: @unchecked Sendable {
        let pointer: OpaquePointer
        let socket: Int32

        /// Identifies the handle in ``LaneState``.
        var key: Int { Int(bitPattern: UnsafeRawPointer(pointer)) }

        /// Closes the handle, then our descriptor of its socket.
        func close() {
            nbd_close(pointer)
            if socket >= 0 { _ = Glibc.close(socket) }
        }
    }

    /// What the lanes' Mutex guards.
    struct LaneState {
        var idle: [Handle?]
        var closed = false
        var fenced = false
        /// Our descriptor of the socket of every connection the device holds (idle or in use),
        /// by ``Handle/key``, from connect until ``NBDBlockDevice/retire(_:)``: what a fence aborts.
        var sockets: [Int: Int32] = [:]
        /// Connections a fence aborted (still held by their requests).
        var aborted: Set<Int> = []
        var inFlight = 0

        init(idle: [Handle?]) { self.idle = idle }

        mutating func unregister(_ handle: Handle) {
            sockets[handle.key] = nil
            aborted.remove(handle.key)
        }
    }

    /// Connects a new handle to `uri` by `deadline` (CLOCK_MONOTONIC nanoseconds).
    static func connect(uri: String, deadline: Int64, verb: String) throws(DeviceError) -> Handle {
        guard let h = nbd_create() else {
            throw libnbdError(.ioError, path: uri, offset: nil, call: "nbd_create", what: "cannot \(verb) \(uri)")
        }
        // Refuse URIs that would run a program or read a local file: a vdev path is data.
        _ = nbd_set_uri_allow_local_file(h, false)
        let result = zpk_nbd_connect(h, uri, deadline)
        if result == ZPK_NBD_DONE {
            let socket = zpk_nbd_dup_socket(h)
            if socket >= 0 { return Handle(pointer: h, socket: socket) }
            // A connection a fence could not abort is not used.
            let number = errno
            nbd_close(h)
            throw DeviceError(
                code: .ioError, message: "cannot \(verb) \(uri): cannot keep a descriptor of the connection's socket "
                    + "(\(String(cString: strerror(number)))), which fencing needs",
                path: uri, systemCall: "fcntl", cause: Errno(rawValue: number))
        }
        let error: DeviceError
        if result == ZPK_NBD_TIMED_OUT {
            error = DeviceError(
                code: .timedOut, message: "cannot \(verb) \(uri): the server did not complete the NBD handshake in time",
                path: uri, systemCall: "nbd_aio_connect_uri", cause: .timedOut)
        } else {
            error = libnbdError(nil, path: uri, offset: nil, call: "nbd_aio_connect_uri", what: "cannot \(verb) \(uri)")
        }
        nbd_close(h)
        throw error
    }

    /// The error libnbd reported last on this thread. With `code` nil, the code follows errno:
    /// nothing there (`ENOENT`, `ECONNREFUSED`: no server, no such export, no socket) is
    /// `.notFound`, a rejected URI `.invalidArgument`, a refused login `.permissionDenied`.
    static func libnbdError(
        _ code: DeviceError.Code?, path: String, offset: UInt64?, call: String, what: String
    ) -> DeviceError {
        let number = nbd_get_errno()
        let text = String(cString: zpk_nbd_error_message())
        let cause = number > 0 ? Errno(rawValue: number) : nil
        let resolved: DeviceError.Code =
            code
            ?? {
                switch number {
                case ENOENT, ECONNREFUSED, ENXIO, EHOSTUNREACH, ENETUNREACH: return .notFound
                case EINVAL, EPROTONOSUPPORT: return .invalidArgument
                case EACCES, EPERM: return .permissionDenied
                case ETIMEDOUT: return .timedOut
                case ENOTCONN, ECONNRESET, EPIPE, ESHUTDOWN: return .disconnected
                default: return .ioError
                }
            }()
        return DeviceError(
            code: resolved, message: "\(what): \(text)", path: path, offset: offset, systemCall: call, cause: cause)
    }

    private func describe(count: Int, offset: UInt64) -> String {
        count == 0 ? "the write cache" : "\(count) bytes at offset \(hexadecimal(offset))"
    }

    static func now() -> Int64 { zpk_nbd_monotonic_ns() }

    /// libnbd's `NBD_NULL_COMPLETION` (a macro Swift does not import): the command is retired
    /// by `nbd_aio_command_completed`.
    static var noCompletion: nbd_completion_callback { nbd_completion_callback(callback: nil, user_data: nil, free: nil) }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

// MARK: - URIs and export lists

extension NBDBlockDevice {
    /// The URI schemes that name an NBD export (libnbd's).
    public static let uriSchemes = ["nbd://", "nbds://", "nbd+unix://", "nbds+unix://", "nbd+vsock://", "nbds+vsock://"]

    /// Whether `path` is an NBD URI rather than a file-system path.
    public static func isNBDURI(_ path: String) -> Bool {
        uriSchemes.contains { path.hasPrefix($0) }
    }

    /// One export a server lists.
    public struct Export: Hashable, Sendable {
        /// The export's name.
        public var name: String
        /// The server's description of it (often empty).
        public var description: String
        /// The URI that opens it.
        public var uri: String
    }

    /// The URI of export `name` on `server` — `HOST`, `HOST:PORT`, `[IPV6]:PORT`, or an NBD URI
    /// (whose export name is replaced; a `nbd+unix` URI keeps its `?socket=`).
    public static func exportURI(server: String, name: String) -> String {
        let encoded = percentEncoded(name)
        guard let scheme = uriSchemes.first(where: { server.hasPrefix($0) }) else {
            return "nbd://\(server)/\(encoded)"
        }
        let rest = server.dropFirst(scheme.count)
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        let query = rest.firstIndex(of: "?").map { String(rest[$0...]) } ?? ""
        return "\(scheme)\(authority)/\(encoded)\(query)"
    }

    /// Asks the server for its exports (NBD_OPT_LIST).
    ///
    /// - Parameters:
    ///   - server: `HOST`, `HOST:PORT` (default port 10809) or an NBD URI.
    ///   - timeout: the deadline for connecting and listing.
    /// - Returns: every export, in the server's order, with the URI that opens it.
    /// - Throws: ``DeviceError`` naming the server: `.notFound` when nothing listens,
    ///   `.timedOut`, `.ioError` when the server refuses to list (nbd-server needs
    ///   `allowlist = true`).
    public static func listExports(server: String, timeout: Duration = .seconds(10)) throws(DeviceError) -> [Export] {
        let uri = exportURI(server: server, name: "")
        var exports: UnsafeMutablePointer<zpk_nbd_export>?
        var count = 0
        var message: UnsafeMutablePointer<CChar>?
        let deadline = now() + nanoseconds(timeout)
        let result = zpk_nbd_list_exports(uri, deadline, &exports, &count, &message)
        defer {
            zpk_nbd_free_exports(exports, count)
            free(message)
        }
        guard result == ZPK_NBD_DONE else {
            let text = message.map { String(cString: $0) } ?? "unknown error"
            let number = nbd_get_errno()
            let code: DeviceError.Code =
                result == ZPK_NBD_TIMED_OUT
                ? .timedOut : (number == ECONNREFUSED || number == ENOENT ? .notFound : .ioError)
            throw DeviceError(
                code: code, message: "cannot list the exports of NBD server \(server): \(text)", path: uri,
                systemCall: "nbd_aio_opt_list", cause: number > 0 ? Errno(rawValue: number) : nil)
        }
        return (0..<count).map { i in
            let name = String(cString: exports![i].name)
            return Export(name: name, description: String(cString: exports![i].description), uri: exportURI(server: server, name: name))
        }
    }

    /// `name` with every byte outside RFC 3986's unreserved set (and `/`) percent-encoded.
    static func percentEncoded(_ name: String) -> String {
        var out = ""
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"), UInt8(ascii: "/"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
