// What zpk's own import path accepts, as rules that both the open (PoolHost+Open.swift) and
// `zpk import`'s listing call, so that the listing's "zpk: can import" / "zpk: cannot import"
// line is the open's verdict and not a second copy of its rules.
//
// The rules, in the order the open applies them:
//   1. A device of the pool opens with a label of the pool (stage 1).
//   2. The newest of those labels has version 5000 and `features_for_read` = {org.zpoolkit:mos}:
//      anything else is an OpenZFS pool, whose MOS zpk cannot read (stage 1, reported after the
//      activity check so that a pool in use elsewhere is reported as in use first).
//   3. Some label holds a usable uberblock (stage 1).
//   4. Every top-level vdev has a device (stage 3, on the MOS config; the listing uses the
//      labels' tree, which the MOS config mirrors).
//   5. A pool last used by another host and not exported needs -f (stage 3).
// Not decidable from labels: whether the MOS is intact (stage 3 reads it), and whether another
// host is writing a multihost pool right now (the activity check waits for that).

import ZFSFormat
import ZFSImport

/// Rules of zpk's import path that can be judged from a pool's labels.
public enum ZPKImportCheck {
    /// A pool another implementation wrote: its label version and the features it needs.
    public struct ForeignPool: Hashable, Sendable, CustomStringConvertible {
        public var version: UInt64
        /// `features_for_read` other than ours.
        public var features: [String]

        /// "it is an OpenZFS pool (version 5000, features com.delphix:hole_birth), whose MOS zpk cannot read"
        public var description: String {
            "it is an OpenZFS pool (version \(version)" + (features.isEmpty ? "" : ", features \(features.joined(separator: ", "))")
                + "), whose MOS zpk cannot read"
        }
    }

    /// Rule 2: the newest (highest `txg`) of `labelConfigs` says whether ZPoolKit wrote the pool.
    /// - Parameter labelConfigs: the configs of the pool's valid labels.
    /// - Returns: `nil` for a ZPoolKit pool (or no label), else what the label needs.
    public static func foreignPool(labelConfigs: [NVList]) -> ForeignPool? {
        guard let label = labelConfigs.max(by: { ($0.uint64("txg") ?? 0) < ($1.uint64("txg") ?? 0) }) else { return nil }
        let version = label.uint64("version") ?? 1
        let features = label.list("features_for_read")?.pairs.map(\.name) ?? []
        guard version != PoolIdentity.version || features != [PoolIdentity.mosFeature] else { return nil }
        return ForeignPool(version: version, features: features.filter { $0 != PoolIdentity.mosFeature })
    }

    /// Rule 5: an import without -f is refused when the pool was not exported and another
    /// hostid (or none) last wrote it.
    /// - Parameters:
    ///   - lastState: the pool's `state` (labels or MOS config).
    ///   - lastHostID: the `hostid` that last wrote it (0 when absent).
    ///   - localHostID: this host's hostid.
    /// - Returns: whether the import needs `-f`.
    public static func forceRequired(lastState: UInt64, lastHostID: UInt64, localHostID: UInt64) -> Bool {
        lastState != PoolState.exported.rawValue && lastHostID != localHostID
    }

    /// What zpk's import would do with a pool, for the listing.
    public struct Verdict: Hashable, Sendable {
        /// Whether `zpk import` can import it (with -f when ``needsForce``).
        public var importable: Bool
        public var needsForce: Bool
        /// Why not, or what to know: one line of plain words.
        public var reason: String
    }

    /// Rules 1–5 on what a scan read from a pool's devices (read-only).
    ///
    /// - Parameters:
    ///   - labelConfigs: the configs of the valid labels of the pool's devices.
    ///   - hasUsableUberblock: whether some label holds a usable uberblock.
    ///   - missingTopLevels: ids of top-level vdevs no device describes.
    ///   - lastState: the labels' `state`.
    ///   - lastHostID: the labels' `hostid` (0 when absent).
    ///   - localHostID: this host's hostid.
    /// - Returns: whether zpk's import would take the pool (with `-f` or not), and why.
    public static func verdict(
        labelConfigs: [NVList], hasUsableUberblock: Bool, missingTopLevels: [UInt64], lastState: UInt64,
        lastHostID: UInt64, localHostID: UInt64
    ) -> Verdict {
        func no(_ reason: String) -> Verdict { Verdict(importable: false, needsForce: false, reason: reason) }
        guard !labelConfigs.isEmpty else { return no("no device of the pool has a valid label") }
        if let foreign = foreignPool(labelConfigs: labelConfigs) { return no(foreign.description) }
        guard hasUsableUberblock else { return no("no valid uberblock found on its devices") }
        if !missingTopLevels.isEmpty {
            return no("no device of top-level vdev \(missingTopLevels.map(String.init).joined(separator: ", ")) is available")
        }
        if forceRequired(lastState: lastState, lastHostID: lastHostID, localHostID: localHostID) {
            return Verdict(
                importable: true, needsForce: true,
                reason: "pool created by ZPoolKit; it was last used by another system (hostid 0x\(String(lastHostID, radix: 16))), so import it with -f")
        }
        return Verdict(importable: true, needsForce: false, reason: "pool created by ZPoolKit")
    }
}
