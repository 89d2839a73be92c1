// Cache-file pools that are still opening. At start, zpkd reopens the pools of its cache file,
// and a multihost pool needs an activity check first (2 × fail_intervals × interval plus up to
// 25 %: ~22 s with the defaults). The daemon serves its socket meanwhile: each such pool is
// registered here from the moment the cache file is read until its open ends, with the phase it
// is in and how long that phase has left, so that `zpk list` / `status` show it as opening with
// a countdown and every verb that names it gets `.poolOpening` at once instead of waiting.
//
// Not guaranteed: the countdown is the activity check's (or the claim's) own plan as of its
// last progress report, counted down on the host's monotonic clock; the MOS load and the claim
// that follow the check take a little longer. A pool whose open fails leaves the registry (the
// failure is logged), as a pool that failed to open at start always did.

import Logging
import Synchronization
import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSMultihost

/// A cache-file pool this host is still opening (zpkd start).
public struct OpeningPool: Hashable, Sendable {
    /// Where the open is.
    public enum Phase: String, Hashable, Sendable {
        /// Queued: reading labels and uberblocks, before any wait.
        case starting
        /// The multihost activity check (read-only wait).
        case activityCheck = "activity_check"
        /// The multihost claim rounds.
        case claim
    }

    public var name: String
    public var guid: PoolGUID?
    public var phase: Phase
    /// What is left of the phase's wait (`nil` when the phase has no wait, or none reported yet).
    public var remaining: Duration?
    /// The phase's whole wait (`nil` likewise).
    public var total: Duration?

    public init(name: String, guid: PoolGUID?, phase: Phase, remaining: Duration?, total: Duration?) {
        self.name = name; self.guid = guid; self.phase = phase; self.remaining = remaining; self.total = total
    }

    /// "pool 'tank' is still opening: activity check, 12 s left; try again then (zpk list shows it)"
    public var message: String {
        var text = "pool '\(name)' is still opening: "
        switch phase {
        case .starting: text += "reading its labels"
        case .activityCheck: text += "multihost activity check"
        case .claim: text += "multihost claim"
        }
        if let remaining {
            let c = remaining.components
            let seconds = c.seconds + (c.attoseconds > 0 ? 1 : 0)  // rounded up: "0 s left" only at the end
            text += ", \(seconds) s left"
        }
        return text + "; try again when it is open (zpk list shows its countdown)"
    }
}

/// What the registry holds for one pool: the last progress report and when it came.
struct OpeningEntry: Sendable {
    var guid: PoolGUID?
    var phase: OpeningPool.Phase
    var reported: ActivityProgress?
    var reportedAt: Duration
}

extension PoolHost {
    /// `clock`'s time since now, as a closure (the clock is an existential; its instants are not
    /// Durations).
    static func stopwatch(_ clock: any Clock<Duration>) -> @Sendable () -> Duration {
        func make<C: Clock>(_ clock: C) -> @Sendable () -> Duration where C.Duration == Duration {
            let start = clock.now
            return { start.duration(to: clock.now) }
        }
        return make(clock)
    }

    /// The cache-file pools still opening, by name, with their countdowns as of now.
    public var openingPools: [OpeningPool] {
        let now = monotonicNow()
        return opening.withLock { entries in
            entries.map { name, entry in Self.snapshot(name: name, entry, now: now) }
        }.sorted { $0.name < $1.name }
    }

    /// The pool `name` if it is still opening.
    public func openingPool(named name: String) -> OpeningPool? {
        let now = monotonicNow()
        return opening.withLock { entries in entries[name].map { Self.snapshot(name: name, $0, now: now) } }
    }

    static func snapshot(name: String, _ entry: OpeningEntry, now: Duration) -> OpeningPool {
        guard let progress = entry.reported else {
            return OpeningPool(name: name, guid: entry.guid, phase: entry.phase, remaining: nil, total: nil)
        }
        let left = max(.zero, progress.remaining - (now - entry.reportedAt))
        return OpeningPool(name: name, guid: entry.guid, phase: entry.phase, remaining: left, total: progress.total)
    }

    /// The pools of the cache file, read and registered as opening; ``open(_:)`` opens them.
    public struct CacheFileOpening: Sendable {
        /// The entries to open; empty when there is no cache file.
        var entries: [CacheFile.Entry]
        /// Set when the cache file could not be read: the one outcome.
        var failure: CacheFileOpenOutcome?
    }

    /// Reads the cache file and registers each of its pools that is not open yet as opening
    /// (``openingPools``), without opening any: zpkd calls this before it serves its socket, so
    /// that its first `zpk list` already shows them.
    public func prepareCacheFileOpen() async -> CacheFileOpening {
        guard let path = environment.cacheFilePath else { return CacheFileOpening(entries: []) }
        let cache: CacheFile
        do {
            cache = try await BlockingIO.run { try CacheFile.read(at: path) }
        } catch let error as CacheFileError where error.code == .notFound {
            return CacheFileOpening(entries: [])
        } catch {
            return CacheFileOpening(
                entries: [],
                failure: CacheFileOpenOutcome(
                    name: path, guid: nil,
                    result: .failure(
                        PoolError(
                            .cacheFileFailure,
                            "cannot open the pools of cache file '\(path)': \(error); fix or remove the file, then "
                                + "import the pools (zpk import)", cause: error as? CacheFileError))))
        }
        let now = monotonicNow()
        let open = openPools
        opening.withLock { entries in
            for entry in cache.entries where !open.contains(where: { $0.guid == entry.poolGUID || $0.name == entry.name }) {
                entries[entry.name] = OpeningEntry(guid: entry.poolGUID, phase: .starting, reported: nil, reportedAt: now)
            }
        }
        return CacheFileOpening(entries: cache.entries)
    }

    /// Opens the pools `opening` registered, all at once (their activity checks run
    /// concurrently), mode ``OpenMode/cacheFile``; each leaves the registry when its open ends.
    ///
    /// One outcome per entry, in the file's order; an entry whose pool is already open here
    /// succeeds with that pool. Never throws. Cancelling interrupts the activity checks: those
    /// pools fail with `.poolInUse` ("interrupted") and leave the registry.
    public func open(_ opening: CacheFileOpening) async -> [CacheFileOpenOutcome] {
        if let failure = opening.failure { return [failure] }
        let entries = opening.entries
        return await withTaskGroup(of: (Int, CacheFileOpenOutcome).self) { group in
            for (index, entry) in entries.enumerated() {
                group.addTask { (index, await self.openCacheFileEntry(entry)) }
            }
            var outcomes: [(Int, CacheFileOpenOutcome)] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    private func openCacheFileEntry(_ entry: CacheFile.Entry) async -> CacheFileOpenOutcome {
        defer { opening.withLock { _ = $0.removeValue(forKey: entry.name) } }
        if let guid = entry.poolGUID, let open = openPools.first(where: { $0.guid == guid }) {
            return CacheFileOpenOutcome(name: entry.name, guid: guid, result: .success(open))
        }
        let name = entry.name
        do {
            let pool = try await open(config: entry.config, mode: .cacheFile) { [self] progress in
                let at = self.monotonicNow()
                self.opening.withLock { entries in
                    entries[name]?.phase = progress.phase == .claim ? .claim : .activityCheck
                    entries[name]?.reported = progress
                    entries[name]?.reportedAt = at
                }
            }
            return CacheFileOpenOutcome(name: entry.name, guid: entry.poolGUID, result: .success(pool))
        } catch {
            environment.logger.info(
                "pool from cache file not opened",
                metadata: ["pool.name": "\(entry.name)", "error.message": "\(error)"])
            return CacheFileOpenOutcome(
                name: entry.name, guid: entry.poolGUID, result: .failure(Self.poolError(error, pool: entry.name)))
        }
    }
}
