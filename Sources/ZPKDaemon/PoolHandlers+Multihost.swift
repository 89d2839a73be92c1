// Handlers of the multihost operations: the host's tunables, `clear` of a suspended
// pool, fault injection, the heartbeat history, and the bridge that turns the host's activity-
// check progress callbacks into progress event frames (docs/daemon.md §3).

import ZFSFormat
import ZFSMultihost
import ZFSPool
import ZPKControl

extension PoolHandlers {
    /// The largest value each tunable accepts. OpenZFS takes any `ulong` and truncates it silently
    /// when it packs `ub_mmp_config` (interval: 24 bits of milliseconds, fail intervals: 16 bits);
    /// we refuse what would not fit instead. Import intervals are never written to disk: capped
    /// at 16 bits too, which is already a wait of 65535 intervals.
    static let tunableMaximum: [MultihostTunablesStore.Name: UInt64] = [
        .interval: 0xff_ffff, .failIntervals: 0xffff, .importIntervals: 0xffff,
    ]

    static func multihostHandlers(host: PoolHost) -> [String: ControlHandler] {
        let tunables = host.environment.multihostTunables
        return [
            "tunable.get": { request, _ in
                let names: [MultihostTunablesStore.Name]
                if let given = try request.optionalString("name") {
                    names = [try tunableName(given, operation: request.operation)]
                } else {
                    names = MultihostTunablesStore.Name.allCases
                }
                return ControlReply(["tunables": .array(names.map { tunableJSON($0, tunables) })])
            },
            "tunable.set": { request, _ in
                let name = try tunableName(try request.string("name"), operation: request.operation)
                guard let value = request.arguments["value"]?.uint64Value else {
                    throw ControlError(
                        .badRequest, "request 'tunable.set' needs \"value\", a non-negative integer (\(name.unit))")
                }
                let maximum = tunableMaximum[name] ?? .max
                guard value <= maximum else {
                    throw ControlError(
                        .badRequest,
                        "\(name.rawValue) cannot be \(value): at most \(maximum) \(name.unit) fit in the uberblock's "
                            + "mmp_config; choose a smaller value")
                }
                tunables.set(name, to: value)
                return ControlReply(["tunables": .array([tunableJSON(name, tunables)])])
            },
            "clear": { request, context in
                let pool = try host.pool(named: try request.string("pool"))
                let wasSuspended = pool.status().suspension != nil
                try await forwardingProgress(to: context, pool: pool.name) { progress in
                    try await pool.clear(progress: progress)
                }
                return ControlReply(["pool": .string(pool.name), "resumed": .bool(wasSuspended)])
            },
            "inject": { request, _ in
                let pool = try host.pool(named: try request.string("pool"))
                let leaf = try request.string("leaf")
                let fault = try deviceFault(try request.string("fault"), operation: request.operation)
                try pool.inject(fault, leaf: leaf)
                return ControlReply(["pool": .string(pool.name), "leaf": .string(leaf), "fault": .string(try request.string("fault"))])
            },
            "inject.clear": { request, _ in
                let pool = try host.pool(named: try request.string("pool"))
                pool.clearInjectedFaults()
                return ControlReply(["pool": .string(pool.name)])
            },
            "history.multihost": { request, _ in
                let pool = try host.pool(named: try request.string("pool"))
                return ControlReply([
                    "pool": .string(pool.name),
                    "records": .array(pool.multihostHistory.map(historyJSON)),
                    "text": .string(pool.renderMultihostHistory()),
                ])
            },
        ]
    }

    static func tunableName(_ text: String, operation: String) throws(ControlError) -> MultihostTunablesStore.Name {
        guard let name = MultihostTunablesStore.Name(rawValue: text) else {
            let known = MultihostTunablesStore.Name.allCases.map(\.rawValue).joined(separator: ", ")
            throw ControlError(.badRequest, "there is no tunable '\(text)'; the tunables are \(known)")
        }
        return name
    }

    static func tunableJSON(_ name: MultihostTunablesStore.Name, _ store: MultihostTunablesStore) -> JSON {
        let current = store.current
        let effective: UInt64
        switch name {
        case .interval: effective = current.effectiveIntervalInMilliseconds
        case .failIntervals: effective = current.effectiveFailIntervals
        case .importIntervals: effective = current.effectiveImportIntervals
        }
        return [
            "name": .string(name.rawValue), "value": .unsigned(store.value(of: name)),
            "effective": .unsigned(effective), "default": .unsigned(name.defaultValue), "unit": .string(name.unit),
        ]
    }

    /// `delay=MS`, `error` or `hang`.
    static func deviceFault(_ text: String, operation: String) throws(ControlError) -> DeviceFault {
        switch text {
        case "error": return .error
        case "hang": return .hang
        default:
            if text.hasPrefix("delay="), let ms = UInt64(text.dropFirst("delay=".count)), ms <= 3_600_000 {
                return .delay(.milliseconds(Int64(ms)))
            }
            throw ControlError(
                .badRequest,
                "request '\(operation)': the fault is delay=MS (0 to 3600000 milliseconds), error or hang, not '\(text)'")
        }
    }

    /// One row of OpenZFS's multihost kstat, by its column names.
    static func historyJSON(_ record: MultihostHistory.Record) -> JSON {
        [
            "id": .unsigned(record.id), "txg": .unsigned(record.txg.rawValue), "timestamp": .unsigned(record.timestamp),
            "skip": .bool(record.isSkip), "error": .unsigned(record.error),
            "duration": .signed(nanosecondCount(record.duration)), "mmp_delay": .unsigned(record.mmpDelayInNanoseconds),
            "vdev_guid": .unsigned(record.vdevGUID), "vdev_label": .signed(Int64(record.vdevLabel)),
            "vdev_path": record.vdevPath.map { .string($0) } ?? .null,
        ]
    }

    /// The status `multihost` block (`null` when the pool's multihost property is off).
    static func multihostJSON(_ status: MultihostStatus) -> JSON {
        [
            "last_heartbeat_age_ms": .signed(nanosecondCount(status.lastHeartbeatAge) / 1_000_000),
            "mmp_delay_ns": .signed(nanosecondCount(status.mmpDelay)),
            "interval_ms": .signed(nanosecondCount(status.interval) / 1_000_000),
            "fail_intervals": .unsigned(status.failIntervals),
            "heartbeats_written": .unsigned(status.heartbeatsWritten),
            "heartbeats_failed": .unsigned(status.heartbeatsFailed), "skipped": .unsigned(status.skipped),
            "running": .bool(status.isRunning),
        ]
    }

    static func nanosecondCount(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return scaled &+ attoseconds / 1_000_000_000
    }

    /// Runs `body` with a progress callback that becomes progress event frames on the request's
    /// connection (`{"event":"progress","phase":"activity_check"|"claim","pool",…}`), in order,
    /// all sent before the reply. The callback is synchronous (the host calls it from its
    /// check); the frames are written by a child task, keeping only the newest few when the
    /// client reads slowly.
    static func forwardingProgress<R: Sendable>(
        to context: ControlRequestContext, pool: String,
        _ body: (@escaping @Sendable (ActivityProgress) -> Void) async throws -> R
    ) async throws -> R {
        let (events, continuation) = AsyncStream.makeStream(
            of: ActivityProgress.self, bufferingPolicy: .bufferingNewest(4))
        return try await withThrowingTaskGroup(of: Void.self, returning: R.self) { group in
            group.addTask {
                for await progress in events {
                    await context.progress(
                        phase: progress.phase.rawValue, remaining: progress.remaining, total: progress.total,
                        extra: [
                            "pool": .string(pool),
                            "elapsed_ms": .signed(nanosecondCount(progress.elapsed) / 1_000_000),
                        ])
                }
            }
            let result: Result<R, any Error>
            do {
                result = .success(try await body { continuation.yield($0) })
            } catch {
                result = .failure(error)
            }
            continuation.finish()
            try await group.waitForAll()
            return try result.get()
        }
    }
}

extension MultihostTunablesStore.Name {
    /// OpenZFS's default (`MMP_DEFAULT_*`).
    var defaultValue: UInt64 {
        switch self {
        case .interval: MultihostTunables.defaultIntervalInMilliseconds
        case .failIntervals: MultihostTunables.defaultFailIntervals
        case .importIntervals: MultihostTunables.defaultImportIntervals
        }
    }

    var unit: String {
        switch self {
        case .interval: "milliseconds"
        case .failIntervals, .importIntervals: "intervals"
        }
    }
}
