// The vdev tree as the kernel's load builds it: open every vdev (`vdev_open` and each type's
// `vdev_op_open`), validate every readable leaf's label (`vdev_validate`), and roll changes up
// (`vdev_propagate_state` and each type's `vdev_op_state_change`). OpenZFS 2.1.11,
// `module/zfs/vdev.c`, `vdev_mirror.c`, `vdev_raidz.c`, `vdev_draid.c`, `vdev_root.c`,
// `vdev_missing.c`; `spec/import-and-mmp.md` §1.16. See PoolHealth.swift for the whole load.
//
// Pure: a leaf "opens" when the caller's device map has a readable device at its path.

import ZFSDevice
import ZFSFormat

/// One vdev during an emulated load.
struct HealthVdev: Sendable {
    enum Kind: Sendable {
        case root
        /// mirror, replacing and spare share `vdev_mirror_ops`' open and state-change rules.
        case mirror
        case raidz(parity: UInt64)
        case draid(parity: UInt64, dataDisks: UInt64)
        case leaf
        case draidSpare
        case missing
        case hole
        case indirect
    }

    var node: VdevNode
    var kind: Kind
    var children: [HealthVdev]
    var state: VdevState = .closed
    var aux: VdevAux = .none
    /// `vdev_open_error != 0`.
    var openFailed = false
    /// A `missing` placeholder standing, in the trusted pass, for a top-level vdev the MOS would
    /// describe and that cannot be opened (no device of it was found).
    var standIn = false
    /// `vdev_min_asize`.
    var minimumAllocatableSize: UInt64 = 0
    /// `vdev_not_present`, cleared when the leaf validates.
    var notPresent: Bool
    /// Label problems seen on this leaf (for reports), and whether it validated.
    var validated = false

    init(_ node: VdevNode) {
        self.node = node
        children = node.children.map(HealthVdev.init)
        notPresent = node.config.uint64("not_present").map { $0 != 0 } ?? false
        switch node.type {
        case .root: kind = .root
        case .missing: kind = .missing
        case .hole: kind = .hole
        case .indirect: kind = .indirect
        case .draidSpare: kind = .draidSpare
        case .mirror, .replacing, .spare: kind = .mirror
        case .raidz: kind = .raidz(parity: node.config.uint64("nparity") ?? 1)
        case .draid:
            let spares = node.config.uint64("draid_nspares") ?? 0
            let count = UInt64(node.children.count)
            kind = .draid(parity: node.config.uint64("nparity") ?? 1, dataDisks: count > spares ? count - spares : 1)
        default: kind = node.children.isEmpty ? .leaf : .mirror
        }
    }

    var isPlaceholder: Bool {
        switch kind {
        case .missing, .hole: true
        default: false
        }
    }

    /// `vdev_is_concrete`: not a hole, missing placeholder, indirect vdev or the root. A stand-in
    /// is concrete: it stands for the real vdev of the MOS.
    var isConcrete: Bool {
        switch kind {
        case .missing: standIn
        case .hole, .indirect, .root: false
        default: true
        }
    }

    /// `vdev_readable`: not dead (state ≥ DEGRADED, not a hole or missing placeholder).
    var isReadable: Bool {
        state >= .degraded && !isPlaceholder
    }

    var isLog: Bool { node.isLog }
}

extension VdevState: Comparable {
    public static func < (lhs: VdevState, rhs: VdevState) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The environment of one pass of an emulated load.
struct HealthPass {
    let devices: [String: LeafDevice]
    let poolGUID: UInt64
    /// `spa_trust_config`.
    let trusted: Bool
    /// `spa_missing_tvds_allowed`.
    let missingTopLevelsAllowed: Int

    /// `VDEV_LABEL_START_SIZE` (two labels and the 3.5 MiB boot area) + `VDEV_LABEL_END_SIZE`.
    static let labelOverhead: UInt64 = (4 << 20) + (512 << 10)
    /// `VDEV_DRAID_REFLOW_RESERVE`: 32 MiB at the end of every dRAID child.
    static let draidReflowReserve: UInt64 = 32 << 20
    static let minimumDeviceSize: UInt64 = ImportScanner.minimumDeviceSize

    // MARK: Open

    /// `vdev_open`: opens `vdev` and everything below it. Returns whether it opened
    /// (`vdev_open_error == 0`).
    @discardableResult
    func open(_ vdev: inout HealthVdev, isTopLevel: Bool) -> Bool {
        vdev.aux = .none
        vdev.openFailed = false
        func fail(_ aux: VdevAux, state: VdevState = .cantOpen) -> Bool {
            vdev.state = state
            vdev.aux = aux
            vdev.openFailed = true
            return false
        }
        if isTopLevel {
            vdev.minimumAllocatableSize = Self.topLevelMinimumSize(vdev.node.config)
        }

        switch vdev.kind {
        case .missing, .hole:
            if vdev.standIn { return fail(.openFailed) }
            vdev.state = .healthy
            return true
        case .indirect, .draidSpare:
            vdev.state = .healthy
            return true
        case .leaf:
            if vdev.node.config.uint64("offline").map({ $0 != 0 }) ?? false {
                return fail(.none, state: .offline)
            }
            // `vdev_disk_open`/`vdev_file_open` refuse a relative path; an NBD URI is our third kind.
            guard let path = vdev.node.path, path.hasPrefix("/") || DeviceOpener.isNetworkPath(path) else {
                return fail(.badLabel)
            }
            guard case .opened(let labels)? = devices[path] else { return fail(.openFailed) }
            let size = labels.sizeInBytes - labels.sizeInBytes % UInt64(VdevLabel.byteCount)
            if size < Self.minimumDeviceSize { return fail(.tooSmall) }
            if size - Self.labelOverhead < vdev.minimumAllocatableSize { return fail(.badLabel) }
            vdev.state = .healthy
            return true
        case .root, .mirror, .raidz, .draid:
            // A top-level vdev takes its minimum from its own config; below it, from the parent.
            let childrenAreTopLevel = vdev.kind.isRootKind
            let childMinimum = Self.childMinimumSize(of: vdev)
            var errors = 0
            for i in vdev.children.indices {
                if !childrenAreTopLevel {
                    vdev.children[i].minimumAllocatableSize = childMinimum
                }
                let opened = open(&vdev.children[i], isTopLevel: childrenAreTopLevel)
                if !opened {
                    // The root counts neither log nor indirect vdevs (`vdev_root_open`).
                    if case .root = vdev.kind, vdev.children[i].isLog { continue }
                    errors += 1
                }
            }
            switch vdev.kind {
            case .root:
                if vdev.children.isEmpty { return fail(.badLabel) }
                if tooManyErrors(vdev, errors) { return fail(.noReplicas) }
            case .mirror:
                if vdev.children.isEmpty { return fail(.badLabel) }
                if errors == vdev.children.count {
                    return vdev.children.allSatisfy({ $0.state == .offline })
                        ? fail(.childrenOffline, state: .offline) : fail(.noReplicas)
                }
            case .raidz(let parity), .draid(let parity, _):
                if parity > 3 || UInt64(vdev.children.count) < parity + 1 { return fail(.badLabel) }
                if UInt64(errors) > parity { return fail(.noReplicas) }
            default: break
            }
            vdev.state = vdev.children.contains { $0.state != .healthy } ? .degraded : .healthy
            return true
        }
    }

    /// `too_many_errors` (`vdev_root.c`): all core top-level vdevs, or more than tolerated.
    func tooManyErrors(_ root: HealthVdev, _ errors: Int) -> Bool {
        guard errors > 0 else { return false }
        let core = root.children.filter {
            switch $0.kind {
            case .hole, .indirect: false
            default: !$0.isLog
            }
        }.count
        return errors == core || errors > missingTopLevelsAllowed
    }

    /// `vdev_get_min_asize` of a top-level vdev: its `asize` rounded down to a metaslab.
    static func topLevelMinimumSize(_ config: NVList) -> UInt64 {
        let asize = config.uint64("asize") ?? 0
        let shift = config.uint64("metaslab_shift") ?? 0
        guard shift > 0, shift < 64 else { return asize }
        return asize & ~((UInt64(1) << shift) - 1)
    }

    /// The minimum each child of `vdev` must provide (`vdev_op_min_asize` of its type).
    static func childMinimumSize(of vdev: HealthVdev) -> UInt64 {
        let count = UInt64(max(vdev.children.count, 1))
        switch vdev.kind {
        case .raidz: return (vdev.minimumAllocatableSize + count - 1) / count
        case .draid(_, let disks):
            return draidReflowReserve + (vdev.minimumAllocatableSize + disks - 1) / max(disks, 1)
        default: return vdev.minimumAllocatableSize
        }
    }

    // MARK: Validate

    /// `vdev_validate` over the tree, then `vdev_propagate_state` from every leaf it changed.
    /// - Returns: whether anything below (or at) `vdev` changed state.
    @discardableResult
    func validate(_ vdev: inout HealthVdev, topLevelGUID: UInt64, isTopLevel: Bool, labelTXGLimit: UInt64) -> Bool {
        var changed = false
        for i in vdev.children.indices {
            let childIsTop = vdev.kind.isRootKind
            let top = childIsTop ? vdev.children[i].node.guid.rawValue : topLevelGUID
            if validate(&vdev.children[i], topLevelGUID: top, isTopLevel: childIsTop, labelTXGLimit: labelTXGLimit) {
                changed = true
            }
        }
        if changed && !vdev.children.isEmpty {
            propagate(&vdev)
            return true
        }
        guard case .leaf = vdev.kind, vdev.isReadable, let path = vdev.node.path,
            case .opened(let labels)? = devices[path]
        else {
            if case .draidSpare = vdev.kind { vdev.validated = true; vdev.notPresent = false }
            return false
        }
        if let aux = labelProblem(vdev, labels: labels, topLevelGUID: topLevelGUID, isTopLevel: isTopLevel, limit: labelTXGLimit) {
            vdev.state = .cantOpen
            vdev.aux = aux
            return true
        }
        vdev.validated = true
        vdev.notPresent = false
        return false
    }

    /// The reason `vdev_validate` rejects a leaf's label, or `nil` when it accepts it.
    func labelProblem(_ vdev: HealthVdev, labels: DeviceLabels, topLevelGUID: UInt64, isTopLevel: Bool, limit: UInt64) -> VdevAux? {
        guard let label = Self.labelConfig(labels, limit: limit) else { return .badLabel }
        if let split = label.uint64("split_guid"), split == poolGUID { return .splitPool }
        guard let labelPool = label.uint64("pool_guid") else { return .corruptData }
        if trusted && labelPool != poolGUID { return .corruptData }
        let auxGUID = label.list("vdev_tree")?.uint64("orig_guid") ?? 0
        guard let guid = label.uint64("guid") else { return .corruptData }
        guard let labelTop = label.uint64("top_guid") else { return .corruptData }
        let ours = vdev.node.guid.rawValue
        if ours != guid && ours != auxGUID {
            let mismatch = trusted ? (!isTopLevel || ours != labelTop) : (ours != labelTop && topLevelGUID != guid)
            if mismatch { return .corruptData }
        }
        guard label.uint64("state") != nil else { return .corruptData }
        return nil
    }

    /// `vdev_label_read_config`: among the labels whose checksum holds, the one with the
    /// largest txg ≤ `limit`; a label without a txg (or txg 0) wins if it comes first.
    static func labelConfig(_ labels: DeviceLabels, limit: UInt64) -> NVList? {
        var best: NVList?
        var bestTXG: UInt64 = 0
        for label in labels.labels where label.status == .valid {
            guard let config = label.config else { continue }
            let txg = config.uint64("txg") ?? 0
            if txg == 0 {
                if best == nil { return config }
                continue
            }
            if txg <= limit && txg > bestTXG {
                best = config
                bestTXG = txg
            }
        }
        return best
    }

    /// `vdev_propagate_state` for one interior vdev: recount its children, apply its type's rule.
    func propagate(_ vdev: inout HealthVdev) {
        var faulted = 0
        var degraded = 0
        var corrupted = 0
        let isRoot = vdev.kind.isRootKind
        for child in vdev.children where child.isConcrete {
            if !child.isReadable {
                if child.isLog && isRoot { degraded += 1 } else { faulted += 1 }
            } else if child.state <= .degraded {
                degraded += 1
            }
            if child.aux == .corruptData { corrupted += 1 }
        }
        func set(_ state: VdevState, _ aux: VdevAux) {
            vdev.state = state
            vdev.aux = aux
        }
        switch vdev.kind {
        case .root:
            if tooManyErrors(vdev, faulted) {
                set(.cantOpen, .noReplicas)
            } else if degraded + faulted > 0 {
                set(.degraded, .none)
            } else {
                set(.healthy, .none)
            }
            if corrupted > 0 && vdev.state == .cantOpen { set(.cantOpen, .corruptData) }
        case .mirror:
            if faulted == vdev.children.count {
                if vdev.children.allSatisfy({ $0.state == .offline }) {
                    set(.offline, .childrenOffline)
                } else {
                    set(.cantOpen, .noReplicas)
                }
            } else if degraded + faulted > 0 {
                set(.degraded, .none)
            } else {
                set(.healthy, .none)
            }
        case .raidz(let parity), .draid(let parity, _):
            if UInt64(faulted) > parity {
                set(.cantOpen, .noReplicas)
            } else if degraded + faulted > 0 {
                set(.degraded, .none)
            } else {
                set(.healthy, .none)
            }
        default: break
        }
    }

    // MARK: Uberblocks

    /// `vdev_uberblock_load`: the best usable uberblock over every readable leaf (dRAID spares
    /// skipped) and the path of the leaf it was found on.
    func bestUberblock(_ vdev: HealthVdev) -> (uberblock: Uberblock, path: String)? {
        var best: (uberblock: Uberblock, path: String)?
        func visit(_ vdev: HealthVdev) {
            for child in vdev.children { visit(child) }
            guard case .leaf = vdev.kind, vdev.isReadable, let path = vdev.node.path,
                case .opened(let labels)? = devices[path]
            else { return }
            for label in labels.labels {
                for slot in label.slots where slot.isUsable {
                    guard let uberblock = slot.uberblock, uberblock.txg > .zero else { continue }
                    if let current = best, Uberblock.compare(uberblock, current.uberblock) <= 0 { continue }
                    best = (uberblock, path)
                }
            }
        }
        visit(vdev)
        return best
    }

    // MARK: Result

    /// The tree as `VdevNode`s with their states; placeholders that stand for nothing get none.
    static func result(_ vdev: HealthVdev) -> VdevNode {
        var node = vdev.node
        node.children = vdev.children.map(result)
        if vdev.isPlaceholder && !vdev.standIn {
            node.state = nil
            node.aux = nil
        } else {
            node.state = vdev.state
            node.aux = vdev.aux
        }
        if !vdev.notPresent { node.config["not_present"] = nil }
        return node
    }
}

extension HealthVdev.Kind {
    var isRootKind: Bool {
        if case .root = self { true } else { false }
    }
}
