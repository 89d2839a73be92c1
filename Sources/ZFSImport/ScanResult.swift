// What a discovery scan hands back: every device it looked at with what became of it, and
// the candidate pools assembled from their labels (`spec/import-and-mmp.md` §1).

import ZFSFormat

/// The outcome of one ``ImportScanner`` run.
public struct ScanResult: Sendable {
    /// Every pool found whose state the scan's ``DestroyedPoolPolicy`` admits, in libzutil's
    /// order (the reverse of first discovery). Two pools may share a name; their guids differ.
    public var pools: [PoolCandidate]
    /// Every pool found, destroyed or not, in the same order.
    public var allPools: [PoolCandidate]
    /// Every candidate path the scan considered, in processing order, with its outcome.
    public var devices: [ScannedDevice]
    /// Idle hot spares and cache devices: their labels carry a vdev guid but no pool, so they
    /// belong to no candidate; a later refresh matches them to the pool's MOS spare and cache
    /// lists by guid (§1.11).
    public var auxiliaryDevices: [AuxiliaryDevice] {
        devices.compactMap { device in
            switch device.role {
            case .spare(let guid): AuxiliaryDevice(kind: .spare, guid: guid, path: device.path, labelCount: device.labelCount, searchOrder: device.searchOrder)
            case .l2cache(let guid): AuxiliaryDevice(kind: .l2cache, guid: guid, path: device.path, labelCount: device.labelCount, searchOrder: device.searchOrder)
            default: nil
            }
        }
    }
    /// Search paths that could not be used (not ones that do not exist: those are skipped
    /// silently, as libzutil does).
    public var searchProblems: [ImportError]
    /// Whether some device could not be opened for lack of permission; with no pools found, a
    /// caller that is not root should say "no pools found: some devices require root privileges".
    public var permissionDenied: Bool

    public init(
        pools: [PoolCandidate], allPools: [PoolCandidate], devices: [ScannedDevice],
        searchProblems: [ImportError] = [], permissionDenied: Bool = false
    ) {
        self.pools = pools
        self.allPools = allPools
        self.devices = devices
        self.searchProblems = searchProblems
        self.permissionDenied = permissionDenied
    }

    /// The one pool `selector` names among ``pools``.
    ///
    /// - Throws: ``ImportError`` `.noSuchPool` when none matches, `.moreThanOneMatchingPool`
    ///   when a name matches several pools (select by guid instead).
    public func pool(_ selector: PoolSelector) throws(ImportError) -> PoolCandidate {
        let matches = pools.filter { selector.matches(name: $0.name, guid: $0.guid) }
        switch matches.count {
        case 1:
            return matches[0]
        case 0:
            throw ImportError(.noSuchPool, "cannot import \(selector.argument): no such pool available")
        default:
            let guids = matches.map { "\($0.guid)" }.joined(separator: ", ")
            throw ImportError(
                .moreThanOneMatchingPool,
                "cannot import \(selector.argument): more than one matching pool (guids \(guids)); import by numeric ID instead")
        }
    }
}

extension PoolSelector {
    /// The argument as zpool quotes it in messages.
    var argument: String {
        switch self {
        case .name(let name): "'\(name)'"
        case .guid(let guid): "'\(guid)'"
        }
    }
}

/// One candidate path and what the scan made of it.
public struct ScannedDevice: Sendable {
    /// What the device contributed.
    public enum Role: Hashable, Sendable {
        /// Nothing; ``ScannedDevice/note`` says why.
        case none
        /// A leaf of a pool: its label (the first accepted one) names the pool, the top-level
        /// vdev and the txg it was written in.
        case poolMember(pool: PoolGUID, topLevel: VdevGUID, vdev: VdevGUID, txg: TXG)
        /// An idle hot spare (aux label, state 3).
        case spare(VdevGUID)
        /// An L2ARC cache device (aux label, state 4).
        case l2cache(VdevGUID)
    }

    /// Why a device contributes nothing, or less than it might.
    public enum Note: Hashable, Sendable, CustomStringConvertible {
        /// Named `hpet` or `watchdog…`: opening those has side effects, so they are never opened.
        case skippedByName
        /// It disappeared between listing and looking.
        case vanished
        /// `stat` failed for another reason.
        case statFailed(String)
        /// A directory, FIFO, socket, character device or dangling link: never opened.
        case notADevice(String)
        /// A regular file smaller than 64 MiB (`SPA_MINDEVSIZE`): never opened.
        case tooSmall(sizeInBytes: UInt64)
        /// Opening it failed (the scan goes on).
        case cannotOpen(String)
        /// The device is open exclusively elsewhere (only checked when asked to skip devices in use).
        case inUse
        /// No label passed the userland checks: not a ZFS device (or one wiped clean).
        case noLabel
        /// A label was accepted but lacks `pool_guid`, `top_guid` or a non-zero `txg`, so
        /// `add_config` ignores it.
        case incompleteLabel(missing: [String])
        /// The label names another pool than the one asked for.
        case filteredOut

        public var description: String {
            switch self {
            case .skippedByName: "skipped: opening hpet and watchdog devices has side effects"
            case .vanished: "vanished while scanning"
            case .statFailed(let why): "cannot stat: \(why)"
            case .notADevice(let what): "not a device: \(what)"
            case .tooSmall(let size): "too small: \(size) bytes, less than the 64 MiB a pool device needs"
            case .cannotOpen(let why): "cannot open: \(why)"
            case .inUse: "in use: it cannot be opened exclusively"
            case .noLabel: "not a ZFS device: no label passes the import checks"
            case .incompleteLabel(let missing): "label lacks \(missing.joined(separator: ", ")); ignored as a half-initialised label"
            case .filteredOut: "belongs to another pool than the one asked for"
            }
        }
    }

    /// The path as the scan built it (search directory resolved, entry name kept).
    public var path: String
    /// libzutil's `order`: 10 + the position of the search path it came from (lower wins when
    /// two paths lead to the same vdev).
    public var searchOrder: Int
    /// The labels, when the device was read.
    public var probe: LabelProbe?
    public var role: Role
    public var note: Note?

    /// Accepted labels carrying the device's guid (`num_labels`).
    public var labelCount: Int { probe?.labelCount ?? 0 }

    public init(path: String, searchOrder: Int, probe: LabelProbe? = nil, role: Role = .none, note: Note? = nil) {
        self.path = path
        self.searchOrder = searchOrder
        self.probe = probe
        self.role = role
        self.note = note
    }
}

/// An idle hot spare or cache device found by the scan.
public struct AuxiliaryDevice: Hashable, Sendable {
    public enum Kind: Hashable, Sendable { case spare, l2cache }
    public var kind: Kind
    public var guid: VdevGUID
    public var path: String
    public var labelCount: Int
    public var searchOrder: Int
}
