// `zpk import` listings: the text of OpenZFS 2.1.11's `zpool import` (`show_import`,
// `print_import_config`, `print_class_vdevs`, `max_width`, `zpool_vdev_name` in
// `cmd/zpool/zpool_main.c` and `lib/libzfs/libzfs_pool.c`), fed with ZFSImport's health, and
// the `--json` form of the same facts.
//
// 2.1.11's layout (not master's): labels right-aligned to column 7 — "   pool:", "     id:",
// "  state:", " action:", "   see:", " config:" — except "status:" and "comment:", which
// 2.1.11 prints flush left, and the "action:" of the unsupported-feature cases (printed with
// `printf_color`, no leading space). Continuation lines start with a tab.
//
// What we add after zpool's own text, each as a tab-indented sentence after a blank line
// (zpool's BAD_GUID_SUM footer has the same shape): who last used a pool that needs -f and
// when, which top-level vdev is missing (named from the MOS, or from a neighbor list when the
// MOS was not read), and that an MMP activity check was skipped. (ImportCommand adds the MOS's
// own sentences: damaged metadata, a stale cache-file entry.) With -v, each leaf's label problems follow.
//
// And one line right after zpool's own text of each pool (before those sentences), always
// starting "    zpk: ": what zpk's own import would do with it (ZFSPool's ZPKImportCheck). zpool's
// "state:" and "action:" are OpenZFS's verdict — a pool ZPoolKit created is UNAVAIL there,
// because OpenZFS cannot read its MOS — while zpk may well import it.

import ZFSDevice
import ZFSFormat
import ZFSImport
import ZFSMultihost
import ZFSPool
import ZPKControl

/// How vdev names are spelled: `zpool_vdev_name`'s flags, set by `ZPOOL_VDEV_NAME_PATH` and
/// `ZPOOL_VDEV_NAME_GUID` as in zpool.
struct VdevNameOptions: Hashable, Sendable {
    /// Full paths, also for disks, and no partition stripping (`VDEV_NAME_PATH`).
    var fullPath = false
    /// Every leaf by its guid (`VDEV_NAME_GUID`).
    var guid = false

    /// The options the environment asks for (a value > 0, or starting "yes"/"on").
    init(environment: [String: String] = [:]) {
        func enabled(_ key: String) -> Bool {
            guard let value = environment[key] else { return false }
            let lower = value.lowercased()
            return (UInt64(value.prefix { $0.isNumber }) ?? 0) > 0 || lower.hasPrefix("yes") || lower.hasPrefix("on")
        }
        fullPath = enabled("ZPOOL_VDEV_NAME_PATH")
        guid = enabled("ZPOOL_VDEV_NAME_GUID")
    }

    /// The name zpool prints for `vdev`; `typeID` appends `-<id>` to interior vdevs
    /// (`VDEV_NAME_TYPE_ID`). The corresponding OpenZFS function is `zpool_vdev_name`.
    func name(of vdev: VdevNode, typeID: Bool) -> String {
        if vdev.config.contains("not_present") || guid {
            return String(vdev.guid.rawValue)
        }
        if var path = vdev.path {
            // A URI's last component alone would lose its server: NBD leaves keep the whole URI.
            if vdev.type == .disk && !fullPath && !DeviceOpener.isNetworkPath(path) {
                path = String(path.split(separator: "/", omittingEmptySubsequences: false).last ?? Substring(path))
            }
            if vdev.type != .draidSpare, vdev.config.uint64("whole_disk").map({ $0 != 0 }) ?? false, !fullPath {
                return Self.stripPartition(path)
            }
            return path
        }
        var name = vdev.type.rawValue
        if vdev.type == .raidz {
            name += String(vdev.config.uint64("nparity") ?? 0)
        } else if vdev.type == .draid {
            let parity = vdev.config.uint64("nparity") ?? 0
            let data = vdev.config.uint64("draid_ndata") ?? 0
            let spares = vdev.config.uint64("draid_nspares") ?? 0
            name = "draid\(parity):\(data)d:\(vdev.children.count)c:\(spares)s"
        }
        if typeID {
            name += "-\(vdev.id ?? 0)"
        }
        return name
    }

    /// `zfs_strip_partition` (`lib/libzutil/os/linux/zutil_device_path_os.c`): "sda1" → "sda",
    /// "nvme0n1p2" → "nvme0n1", "ata-X-part1" → "ata-X".
    static func stripPartition(_ path: String) -> String {
        let bytes = Array(path.utf8)
        func isDigit(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) }
        func isAlpha(_ b: UInt8) -> Bool { (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b) }
        var part: Int?
        var d: Int?
        if let range = path.utf8.firstRange(of: "-part".utf8), range.lowerBound != path.utf8.startIndex {
            let start = path.utf8.distance(from: path.utf8.startIndex, to: range.lowerBound)
            part = start
            d = start + 5
        } else if let p = bytes.lastIndex(of: UInt8(ascii: "p")), p > 1, isDigit(bytes[p - 1]) {
            part = p
            d = p + 1
        } else if bytes.count >= 2, [UInt8(ascii: "h"), UInt8(ascii: "s"), UInt8(ascii: "v")].contains(bytes[0]),
            bytes[1] == UInt8(ascii: "d")
        {
            var i = 2
            while i < bytes.count, isAlpha(bytes[i]) {
                i += 1
                part = i
            }
            d = i
        } else if path.hasPrefix("xvd") {
            var i = 3
            while i < bytes.count, isAlpha(bytes[i]) {
                i += 1
                part = i
            }
            d = i
        }
        guard let part, var index = d, index < bytes.count else { return path }
        while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        guard index == bytes.count else { return path }
        return String(decoding: bytes[..<part], as: UTF8.self)
    }
}

enum ZpoolImportListing {
    /// The allocation classes printed after the main tree, in zpool's order.
    static let classes = ["dedup", "special", "logs"]

    /// One pool, as `zpool import` shows it, plus our footers (and, `verbose`, the label
    /// problems of its devices). `time` formats a timestamp like `ctime` (newline included).
    static func render(
        _ health: PoolHealth, names: VdevNameOptions = VdevNameOptions(), verbose: Bool = false,
        time: (UInt64) -> String = ZdbLabelDump.localAsctime,
        wallClockSeconds: () -> UInt64 = { WallClock.system.seconds },
        zpk: ZPKImportCheck.Verdict? = nil
    ) -> String {
        var out = ""
        let root = health.root
        out += "   pool: \(health.name)\n"
        out += "     id: \(health.guid)\n"
        out += "  state: \(health.healthName)\(health.poolState == .destroyed ? " (DESTROYED)" : "")\n"
        if let status = health.statusText {
            out += "status: \(status)\n"
        }
        out += (health.status.actionLabelIsUnindented(rootState: health.health) ? "action: " : " action: ")
        out += health.actionText + "\n"
        if let comment = health.comment {
            out += "comment: \(comment)\n"
        }
        if (health.health == .cantOpen || health.health == .closed) && health.reason == .corruptData {
            if health.poolState == .destroyed {
                out += "\tThe pool was destroyed, but can be imported using the '-Df' flags.\n"
            } else if health.poolState != .exported {
                out += "\tThe pool may be active on another system, but can be imported using\n\tthe '-f' flag.\n"
            }
        }
        if let url = health.status.messageURL {
            out += "   see: \(url)\n"
        }
        out += " config:\n\n"

        let width = max(10, maxWidth(root, depth: 0, current: health.name.utf8.count, names: names))
        printConfig(root, name: health.name, depth: 0, width: width, names: names, into: &out)
        for name in classes {
            var printed = false
            for child in root.children where className(child) == name {
                if !child.isLog && child.type == .indirect { continue }
                if !printed {
                    out += "\t\(name)\t\n"
                    printed = true
                }
                printConfig(child, name: names.name(of: child, typeID: true), depth: 2, width: width, names: names, into: &out)
            }
        }
        if health.status == .badGUIDSum {
            out += "\n\tAdditional devices are known to be part of this pool, though their\n\texact configuration cannot be determined.\n"
        }
        if let zpk { out += zpkLine(zpk) }
        var footers = self.footers(health, time: time)
        if let heartbeat = heartbeatFooter(health, wallClockSeconds: wallClockSeconds()) { footers.append(heartbeat) }
        if !footers.isEmpty {
            out += "\n" + footers.map { "\t\($0)\n" }.joined()
        }
        if verbose {
            let problems = health.deviceNotes.sorted { $0.key < $1.key }.flatMap(\.value) + health.notes
            if !problems.isEmpty {
                out += "\n\tnotes:\n" + problems.map { "\t  \($0)\n" }.joined()
            }
        }
        return out
    }

    /// The line that ends zpool's own text of a pool: what zpk's import would do with it. It
    /// always starts with ``zpkLinePrefix`` (zpool prints no such line), so a script comparing
    /// with `zpool import` can drop it by that prefix.
    static func zpkLine(_ verdict: ZPKImportCheck.Verdict) -> String {
        zpkLinePrefix + (verdict.importable ? "can import" + (verdict.needsForce ? " with -f" : "") : "cannot import")
            + (verdict.importable ? " (\(verdict.reason))" : ": \(verdict.reason)") + "\n"
    }

    /// Where the zpk line starts: "zpk:" right-aligned with zpool's labels ("   pool:", " action:").
    static let zpkLinePrefix = "    zpk: "

    /// What zpk's own import would do with `pool` (ZFSPool's rules, ``ZPKImportCheck``), from
    /// what the scan read from its devices.
    static func zpkVerdict(_ pool: PoolCandidate, health: PoolHealth, in scan: ScanResult, localHostID: UInt64) -> ZPKImportCheck.Verdict {
        let members = Set(pool.memberDevices.map(\.path))
        var configs: [NVList] = []
        for device in scan.devices where members.contains(device.path) {
            for label in device.probe?.labels ?? [] {
                guard label.verdict == .accepted, let config = label.config,
                    config.uint64("pool_guid") == pool.guid.rawValue
                else { continue }
                // A checksum the scan verified must pass (the open reads only valid labels);
                // one it did not read counts, as the labels' configs are what the open reads.
                switch label.checksum {
                case .valid?, nil: configs.append(config)
                default: continue
                }
            }
        }
        return ZPKImportCheck.verdict(
            labelConfigs: configs, hasUsableUberblock: health.uberblock != nil,
            missingTopLevels: pool.missingTopLevelIDs, lastState: pool.state.rawValue, lastHostID: pool.hostID ?? 0,
            localHostID: localHostID & PoolHealth.hostIDMask)
    }

    /// What we know beyond zpool: who last used a pool that needs -f, which top-level vdev is
    /// missing, whether an activity check was skipped.
    static func footers(_ health: PoolHealth, time: (UInt64) -> String) -> [String] {
        var lines: [String] = []
        if let force = health.forceRequirement {
            var line = "Last accessed by \(force.hostname ?? "<unknown>") (hostid=\(String(force.hostID, radix: 16)))"
            if let timestamp = force.timestamp {
                var when = time(timestamp)
                if when.hasSuffix("\n") { when.removeLast() }
                line += " at \(when)"
            }
            lines.append(line + "; import with -f.")
        }
        for missing in health.missingTopLevels {
            let text = missing.description
            lines.append(text.prefix(1).uppercased() + text.dropFirst() + ".")
        }
        if case .required(let minimum, _, _) = health.activityCheck {
            lines.append(
                "zpool import would first run a \(minimum.components.seconds) s activity check; zpk did not, so it cannot tell whether the pool is in use now.")
        }
        return lines
    }

    /// Heartbeat health of a pool whose newest uberblock says multihost was on, read from what
    /// is on disk now (no waiting): how old the newest heartbeat is (whole-second timestamps),
    /// who wrote it and its MMP settings. `zpk activity` gives the verdict that waits.
    static func heartbeatFooter(_ health: PoolHealth, wallClockSeconds now: UInt64) -> String? {
        guard let ub = health.uberblock, ub.isMMPValid, ub.mmpDelayInNanoseconds != 0,
            health.poolState != .exported, health.poolState != .destroyed
        else { return nil }
        let age = now >= ub.timestampInSeconds ? "\(now - ub.timestampInSeconds) s ago" : "\(ub.timestampInSeconds - now) s in the future (clock skew)"
        var line = "Multihost: newest heartbeat \(age) (txg \(ub.txg.rawValue))"
        if let hostID = health.hostID {
            line += " by \(health.hostname ?? "<unknown>") (hostid=\(String(hostID, radix: 16)))"
        }
        if let interval = ub.mmpWriteIntervalInMilliseconds {
            line += ", every \(interval) ms"
            if let fail = ub.mmpFailIntervals {
                line += fail == 0 ? ", never suspends" : ", suspends after \(fail) missed"
            }
        }
        return line + "; `zpk activity \(health.name)` watches it and gives a verdict."
    }

    /// `max_width`: the widest `name + depth` over the whole tree (every child, logs, holes and
    /// placeholders included), starting from the pool name's length.
    static func maxWidth(_ vdev: VdevNode, depth: Int, current: Int, names: VdevNameOptions) -> Int {
        var widest = max(current, names.name(of: vdev, typeID: true).utf8.count + depth)
        for child in vdev.children {
            widest = max(widest, maxWidth(child, depth: depth + 2, current: widest, names: names))
        }
        return widest
    }

    /// `print_import_config`: one line per vdev, children indented by two, log and
    /// allocation-class top-level vdevs left for `print_class_vdevs`.
    static func printConfig(_ vdev: VdevNode, name: String, depth: Int, width: Int, names: VdevNameOptions, into out: inout String) {
        if vdev.type == .hole { return }
        guard let state = vdev.state else { return }
        let aux = vdev.aux ?? .none
        let pad = max(0, width - depth - name.utf8.count)
        out += "\t" + String(repeating: " ", count: depth) + name + String(repeating: " ", count: pad)
        out += "  " + state.zpoolName(aux: aux)
        if let note = aux.zpoolImportNote {
            out += "  " + note
        }
        out += "\n"
        for child in vdev.children where !child.isLog && !child.config.contains("alloc_bias") {
            printConfig(child, name: names.name(of: child, typeID: true), depth: depth + 2, width: width, names: names, into: &out)
        }
    }

    static func className(_ vdev: VdevNode) -> String? {
        vdev.isLog ? "logs" : vdev.config.string("alloc_bias")
    }

    // MARK: JSON

    static func json(_ health: PoolHealth, names: VdevNameOptions = VdevNameOptions(), zpk: ZPKImportCheck.Verdict? = nil) -> JSON {
        func flat(_ text: String?) -> JSON {
            guard let text else { return .null }
            // One line: continuation breaks ("\n\t") become spaces.
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            return .string(lines.map { $0.drop { $0 == "\t" } }.joined(separator: " "))
        }
        var members: [(String, JSON)] = [
            ("name", .string(health.name)),
            ("guid", .unsigned(health.guid.rawValue)),
            ("state", .string("\(health.poolState)")),
            ("health", .string(health.healthName)),
            ("status", flat(health.statusText)),
            ("action", flat(health.actionText)),
            ("hostid", health.hostID.map { .unsigned($0) } ?? .null),
            ("hostname", health.hostname.map { .string($0) } ?? .null),
            ("txg", health.uberblock.map { .unsigned($0.txg.rawValue) } ?? .null),
            ("vdev_tree", vdevJSON(health.root, name: health.name, health: health, names: names)),
        ]
        members += [
            ("status_code", .string(health.status.rawValue)),
            ("see", health.status.messageURL.map { .string($0) } ?? .null),
            ("reason", health.reason == .none ? .null : .string(health.reason.description)),
            ("version", .unsigned(health.version)),
            ("timestamp", health.uberblock.map { .unsigned($0.timestampInSeconds) } ?? .null),
            ("comment", health.comment.map { .string($0) } ?? .null),
            ("load_stage", .string(health.stage.rawValue)),
            ("config_source", .string(health.configSource.rawValue)),
            ("importable", .bool(health.isImportable)),
            ("force_required", forceJSON(health.forceRequirement)),
            ("activity_check", activityJSON(health.activityCheck)),
            ("unsupported_features", .array(health.unsupportedFeatures.map { .string($0) })),
            ("missing_top_levels", .array(health.missingTopLevels.map(missingJSON))),
            ("notes", .array(health.notes.map { .string($0) })),
        ]
        if let zpk {
            members += [
                ("importable_by_zpk", .bool(zpk.importable)),
                ("zpk_needs_force", .bool(zpk.needsForce)),
                ("zpk_reason", .string(zpk.reason)),
            ]
        }
        return .object(members)
    }

    static func vdevJSON(_ vdev: VdevNode, name: String, health: PoolHealth, names: VdevNameOptions) -> JSON {
        var members: [(String, JSON)] = [
            ("type", .string(vdev.type.rawValue)),
            ("guid", .unsigned(vdev.guid.rawValue)),
            ("path", vdev.path.map { .string($0) } ?? .null),
            ("health", vdev.state.map { .string($0.zpoolName(aux: vdev.aux ?? .none)) } ?? .null),
            ("reason", (vdev.aux?.zpoolImportNote).map { .string($0) } ?? .null),
            ("name", .string(name)),
            ("id", vdev.id.map { .unsigned($0) } ?? .null),
            ("state", vdev.state.map { .string($0.description) } ?? .null),
            ("aux", vdev.aux.map { .string($0.description) } ?? .null),
        ]
        if vdev.isLog { members.append(("class", .string("logs"))) }
        if let bias = vdev.config.string("alloc_bias") { members.append(("class", .string(bias))) }
        if let path = vdev.path, vdev.children.isEmpty, let notes = health.deviceNotes[path] {
            members.append(("notes", .array(notes.map { .string($0) })))
        }
        members.append(
            ("children", .array(vdev.children.map { vdevJSON($0, name: names.name(of: $0, typeID: true), health: health, names: names) })))
        return .object(members)
    }

    static func forceJSON(_ force: PoolHealth.ForceRequirement?) -> JSON {
        guard let force else { return .null }
        return .object([
            ("hostname", force.hostname.map { .string($0) } ?? .null),
            ("hostid", .unsigned(force.hostID)),
            ("timestamp", force.timestamp.map { .unsigned($0) } ?? .null),
        ])
    }

    static func activityJSON(_ check: PoolHealth.ActivityCheck) -> JSON {
        switch check {
        case .notRequired: return .null
        case .noHostID: return .object([("result", .string("no-hostid"))])
        case .required(let minimum, let hostID, let hostname):
            return .object([
                ("result", .string("skipped")),
                ("minimum_seconds", .unsigned(UInt64(max(0, minimum.components.seconds)))),
                ("last_hostid", .unsigned(hostID)),
                ("last_hostname", hostname.map { .string($0) } ?? .null),
            ])
        }
    }

    static func missingJSON(_ missing: PoolHealth.MissingTopLevel) -> JSON {
        var members: [(String, JSON)] = [("id", .unsigned(missing.id)), ("description", .string(missing.description))]
        if let vdev = missing.mosVdev {
            members.append(("guid", .unsigned(vdev.guid)))
            members.append(("type", .string(vdev.type)))
            members.append(("is_log", .bool(vdev.isLog)))
            members.append(("paths", .array(vdev.paths.map { .string($0) })))
        } else if let record = missing.record {
            members.append(("guid", .unsigned(record.guid.rawValue)))
            members.append(("type", .string(record.type.rawValue)))
            members.append(("is_log", .bool(record.isLog)))
            members.append(
                ("leaves", .array(record.leaves.map { .object([("guid", .unsigned($0.guid.rawValue)), ("path", $0.path.map { .string($0) } ?? .null)]) })))
        }
        return .object(members)
    }
}
