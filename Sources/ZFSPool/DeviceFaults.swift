// Fault injection for a pool's leaves (`zpk inject`, OpenZFS `zinject -d`): every device of an
// open pool is wrapped in a `FaultInjectingDevice`, so every read, write and flush of the pool —
// block writes of a put, the phases of a sync, heartbeats and the activity check's reads — meets
// the faults injected on that leaf.
//
//   delay(d)  each I/O waits `d` on the host's monotonic clock, then proceeds
//   error     each I/O fails with EIO (nothing is written)
//   hang      each I/O blocks until the fault is cleared (then proceeds) or the pool is closed
//             (then fails with EIO) — so a test can always end a hang
//
// Once the pool is closed (export, destroy, forget), every I/O through its table fails with EIO.
//
// Fence: when multihost suspends the pool, every write and flush through its table fails with
// EIO — those held by a hang (a device that stopped answering) included — until `zpk clear`
// resumes it. Another host may import the pool once it is suspended; a write of ours that was
// held while our storage link was down and landed when it came back would overwrite that
// host's blocks (found by the fault trials: a put held by a partition landed on the new
// holder's object after the partition healed). Reads are not fenced (a stale read writes nothing).
// The table also fences every device it wraps (`BlockDevice.fence()`): a write that passed the
// table just before the fence, or was already handed to a network device's transport, is stopped
// there — an NBD leaf aborts its connections so that nothing queued reaches the server later.
//
// Waiting happens on the thread doing the I/O (never the cooperative pool): pool I/O runs on
// `BlockingIO` workers, heartbeats on threads of their own.

import Dispatch
import Foundation
import Synchronization
import ZFSDevice
import ZFSFormat

/// A fault injected on one leaf of an open pool (``Pool/inject(_:leaf:)``).
///
/// The corresponding OpenZFS tool is `zinject -d` (`-D latency`, `-e io`); `hang` stands for a
/// device that stops answering.
public enum DeviceFault: Hashable, Sendable {
    /// Every I/O to the leaf waits this long (on the host's monotonic clock) before it is done.
    case delay(Duration)
    /// Every I/O to the leaf fails with EIO.
    case error
    /// Every I/O to the leaf blocks until the fault is cleared or the pool is closed.
    case hang
}

/// The faults of one pool's leaves, shared by its wrapped devices.
///
/// `@unchecked Sendable`: `faults` and `closed` are read and written only with `condition` locked.
final class FaultTable: @unchecked Sendable {
    private let condition = NSCondition()
    private var faults: [VdevGUID: DeviceFault] = [:]
    private var closed = false
    private var fenced = false
    /// The devices the table's `FaultInjectingDevice`s wrap, fenced and unfenced with it.
    private var devices: [any BlockDevice] = []
    private var delaying = 0
    let clock: any Clock<Duration>

    /// I/Os now waiting out an injected delay (each one sleeps on the clock).
    var delayedIOCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return delaying
    }

    init(clock: any Clock<Duration>) { self.clock = clock }

    func set(_ fault: DeviceFault, on guid: VdevGUID) {
        condition.lock()
        faults[guid] = fault
        condition.broadcast()
        condition.unlock()
    }

    func clearAll() {
        condition.lock()
        faults = [:]
        condition.broadcast()
        condition.unlock()
    }

    /// The pool is closed: hung I/O fails, and so does any later I/O through this table (a
    /// closed or forgotten pool never touches its devices again).
    func close() {
        condition.lock()
        closed = true
        faults = [:]
        condition.broadcast()
        condition.unlock()
    }

    /// The pool was suspended: every write and flush fails, held ones at once, until ``unfence()``;
    /// and every wrapped device is fenced (``BlockDevice/fence()``).
    func fence() {
        condition.lock()
        fenced = true
        let devices = self.devices
        condition.broadcast()
        condition.unlock()
        for device in devices { device.fence() }
    }

    /// The pool was resumed (`zpk clear` found no other host): writes go through again.
    func unfence() {
        condition.lock()
        fenced = false
        let devices = self.devices
        condition.unlock()
        for device in devices { device.unfence() }
    }

    /// Remembers a device a `FaultInjectingDevice` of this table wraps; fenced at once when the
    /// table is.
    func register(_ device: any BlockDevice) {
        condition.lock()
        devices.append(device)
        let fencedNow = fenced
        condition.unlock()
        if fencedNow { device.fence() }
    }

    var isFenced: Bool {
        condition.lock()
        defer { condition.unlock() }
        return fenced
    }

    var injected: [VdevGUID: DeviceFault] {
        condition.lock()
        defer { condition.unlock() }
        return faults
    }

    /// Applies the fault on `guid` to one I/O; returns normally when the I/O may go ahead.
    func admit(_ guid: VdevGUID, path: String, verb: String, offset: UInt64) throws(DeviceError) {
        let isWrite = verb != "read"
        condition.lock()
        var fault = faults[guid]
        while fault == .hang && !closed && !(fenced && isWrite) {
            condition.wait()
            fault = faults[guid]
        }
        let isClosed = closed
        let isFenced = fenced && isWrite
        condition.unlock()
        if isFenced {
            throw DeviceError(
                code: .ioError,
                message: "\(verb) of \(path) at offset 0x\(String(offset, radix: 16)) failed: EIO (the pool is "
                    + "suspended; no write reaches its devices until zpk clear resumes it)",
                path: path)
        }
        if isClosed || fault == .error {
            throw DeviceError(
                code: .ioError,
                message: "\(verb) of \(path) at offset 0x\(String(offset, radix: 16)) failed: EIO (injected fault"
                    + "\(isClosed ? ", pool closed" : ""); zpk inject --clear removes it)",
                path: path)
        }
        if case .delay(let duration) = fault { wait(duration) }
    }

    /// Blocks this (non-cooperative) thread for `duration` of the host's clock.
    private func wait(_ duration: Duration) {
        guard duration > .zero else { return }
        condition.lock()
        delaying += 1
        condition.unlock()
        defer {
            condition.lock()
            delaying -= 1
            condition.unlock()
        }
        if clock is ContinuousClock {
            // The host's own clock: the thread sleeps. (A task sleeping on it instead needs a
            // thread of the cooperative pool, and when the I/O itself runs on that pool — a
            // request handler — every pool thread can end up waiting here for that task.)
            let (seconds, attoseconds) = duration.components
            var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
            var remaining = timespec()
            while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
            return
        }
        let done = DispatchSemaphore(value: 0)
        let clock = self.clock
        // An injected clock is async-only; a child task sleeps on it while this thread waits.
        Task { try? await clock.sleep(for: duration); done.signal() }
        done.wait()
    }
}

/// A leaf device whose I/O goes through the pool's ``FaultTable`` first.
struct FaultInjectingDevice: BlockDevice {
    let inner: any BlockDevice
    let guid: VdevGUID
    let faults: FaultTable

    /// Wraps `inner`, which `faults` then fences and unfences with the pool.
    init(inner: any BlockDevice, guid: VdevGUID, faults: FaultTable) {
        self.inner = inner
        self.guid = guid
        self.faults = faults
        faults.register(inner)
    }

    var path: String { inner.path }
    var sizeInBytes: UInt64 { inner.sizeInBytes }
    var isBlockDevice: Bool { inner.isBlockDevice }

    func read(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        try faults.admit(guid, path: path, verb: "read", offset: offset)
        try inner.read(into: buffer, atAbsoluteOffset: offset)
    }

    func write(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        try faults.admit(guid, path: path, verb: "write", offset: offset)
        try inner.write(from: buffer, atAbsoluteOffset: offset)
    }

    /// The heartbeat's and the activity check's uncached reads meet the same faults as any read.
    func readUncached(into buffer: UnsafeMutableRawBufferPointer, atAbsoluteOffset offset: UInt64)
        throws(DeviceError)
    {
        try faults.admit(guid, path: path, verb: "read", offset: offset)
        try inner.readUncached(into: buffer, atAbsoluteOffset: offset)
    }

    /// Heartbeat and claim writes (uncached) meet the same faults as any write.
    func writeUncached(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64) throws(DeviceError) {
        try faults.admit(guid, path: path, verb: "write", offset: offset)
        try inner.writeUncached(from: buffer, atAbsoluteOffset: offset)
    }

    var forcesUnitAccess: Bool { inner.forcesUnitAccess }

    /// Label, uberblock and heartbeat writes (Force Unit Access) meet the same faults as any write.
    func writeForcingUnitAccess(from buffer: UnsafeRawBufferPointer, atAbsoluteOffset offset: UInt64)
        throws(DeviceError)
    {
        try faults.admit(guid, path: path, verb: "write", offset: offset)
        try inner.writeForcingUnitAccess(from: buffer, atAbsoluteOffset: offset)
    }

    func flush() throws(DeviceError) {
        try faults.admit(guid, path: path, verb: "flush", offset: 0)
        try inner.flush()
    }

    func close() throws(DeviceError) { try inner.close() }

    func fence() { inner.fence() }

    func unfence() { inner.unfence() }
}
