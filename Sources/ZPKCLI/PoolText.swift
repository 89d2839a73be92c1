// Text and JSON layouts of `zpk list`, `zpk status` and `zpk get`, from zpkd's replies.

import ZPKControl

enum PoolText {
    static let listKeys = ["name", "guid", "size", "alloc", "free", "health"]
    static let statusKeys = ["name", "guid", "state", "suspension", "health", "txg", "multihost", "vdev_tree"]
    static let multihostKeys = [
        "interval_ms", "fail_intervals", "last_heartbeat_age_ms", "mmp_delay_ns", "heartbeats_written",
        "heartbeats_failed", "skipped", "running",
    ]
    static let vdevKeys = ["type", "guid", "path", "health", "read_errors", "write_errors", "checksum_errors", "children"]

    /// `zpool list`'s columns: NAME SIZE ALLOC FREE HEALTH.
    static func list(_ pools: [JSON]) -> String {
        if pools.isEmpty { return "no pools available\n" }
        return table(
            header: ["NAME", "SIZE", "ALLOC", "FREE", "HEALTH"],
            rows: pools.map { pool in
                if pool["state"]?.stringValue == "opening" {
                    return [pool["name"]?.stringValue ?? "-", "-", "-", "-", openingHealth(pool)]
                }
                return [
                    pool["name"]?.stringValue ?? "-", nicenum(pool["size"]?.uint64Value ?? 0),
                    nicenum(pool["alloc"]?.uint64Value ?? 0), nicenum(pool["free"]?.uint64Value ?? 0),
                    pool["health"]?.stringValue ?? "-",
                ]
            })
    }

    /// Columns separated by two spaces, each as wide as its widest cell; numbers are not
    /// right-aligned here (zpool aligns sizes right: so do we, for the size columns).
    static func table(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        let rightAligned: Set<String> = ["SIZE", "ALLOC", "FREE"]
        return all.map { row in
            row.indices.map { column in
                let cell = row[column]
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                if column == row.count - 1 { return cell }
                return rightAligned.contains(header[column]) ? pad + cell : cell + pad
            }.joined(separator: "  ") + "\n"
        }.joined()
    }

    /// `zfs_nicenum`: 1024-based, at most 5 characters ("95.5M", "1.88G", "512").
    static func nicenum(_ value: UInt64) -> String {
        let units: [Character] = ["B", "K", "M", "G", "T", "P", "E"]
        var index = 0
        var divisor: UInt64 = 1
        while index + 1 < units.count, value / divisor >= 1024 {
            divisor *= 1024
            index += 1
        }
        if index == 0 { return String(value) }
        let unit = units[index]
        if value % divisor == 0 { return "\(value / divisor)\(unit)" }
        let scaled = Double(value) / Double(divisor)
        for decimals in [2, 1, 0] {
            let text = format(scaled, decimals: decimals) + String(unit)
            if text.count <= 5 { return text }
        }
        return "\(value / divisor)\(unit)"
    }

    static func format(_ value: Double, decimals: Int) -> String {
        var factor = 1.0
        for _ in 0..<decimals { factor *= 10 }
        let rounded = (value * factor).rounded() / factor
        let whole = Int(rounded)
        guard decimals > 0 else { return String(whole) }
        let fraction = Int(((rounded - Double(whole)) * factor).rounded())
        let digits = String(fraction)
        return "\(whole)." + String(repeating: "0", count: decimals - digits.count) + digits
    }

    /// A reply object with `keys` first, in that order, then the rest sorted by name.
    static func ordered(_ value: JSON, keys: [String]) -> JSON {
        guard let members = value.objectValue else { return value.sortingKeys }
        return JSON.object(orderedMembers(members, keys: keys, convert: { _, member in member.sortingKeys }))
    }

    // (The element type is spelled out everywhere: Swift 6.3 loops inferring Sendable for a
    // local `[(String, JSON)]` whose type is inferred.)
    static func orderedMembers(
        _ members: [String: JSON], keys: [String], convert: (String, JSON) -> JSON
    ) -> [(String, JSON)] {
        var result: [(String, JSON)] = []
        for key in keys {
            if let member = members[key] { result.append((key, convert(key, member))) }
        }
        for key in members.keys.sorted() where !keys.contains(key) {
            result.append((key, convert(key, members[key]!)))
        }
        return result
    }

    /// A status pool object in the documented key order, vdevs included.
    static func statusJSON(_ pool: JSON) -> JSON {
        guard let members = pool.objectValue else { return pool.sortingKeys }
        let result: [(String, JSON)] = orderedMembers(members, keys: statusKeys) { key, member in
            switch key {
            case "vdev_tree": vdevJSON(member)
            case "multihost": member == .null ? JSON.null : ordered(member, keys: multihostKeys)
            default: member.sortingKeys
            }
        }
        return JSON.object(result)
    }

    static func vdevJSON(_ vdev: JSON) -> JSON {
        guard let members = vdev.objectValue else { return vdev.sortingKeys }
        let result: [(String, JSON)] = orderedMembers(members, keys: vdevKeys) { key, member in
            key == "children" ? JSON.array((member.arrayValue ?? []).map { vdevJSON($0) }) : member.sortingKeys
        }
        return JSON.object(result)
    }

    /// The HEALTH cell of a pool zpkd is still opening from its cache file:
    /// "OPENING (activity check, 12 s left)".
    static func openingHealth(_ pool: JSON) -> String {
        var what: String
        switch pool["phase"]?.stringValue {
        case "activity_check": what = "activity check"
        case "claim": what = "claim"
        default: what = "reading labels"
        }
        if let ms = pool["remaining_ms"]?.uint64Value { what += ", \((ms + 999) / 1000) s left" }
        return "OPENING (\(what))"
    }

    /// `zpool status`'s layout for one pool.
    static func status(_ pool: JSON) -> String {
        let name = pool["name"]?.stringValue ?? "?"
        if pool["state"]?.stringValue == "opening" {
            return "  pool: \(name)\n state: OPENING\nstatus: zpkd is reopening the pool from its cache file: "
                + openingHealth(pool).dropFirst("OPENING (".count).dropLast() + ".\n"
                + "action: Wait; the pool's verbs answer once it is open (zpk list shows the countdown).\n"
        }
        var rows: [(indent: Int, name: String, vdev: JSON)] = []
        func walk(_ vdev: JSON, indent: Int, label: String) {
            rows.append((indent, label, vdev))
            for (index, child) in (vdev["children"]?.arrayValue ?? []).enumerated() {
                let type = child["type"]?.stringValue ?? "?"
                let childLabel: String
                if let path = child["path"]?.stringValue, (child["children"]?.arrayValue ?? []).isEmpty {
                    childLabel = path
                } else {
                    childLabel = "\(type)-\(index)"
                }
                walk(child, indent: indent + 2, label: childLabel)
            }
        }
        if let tree = pool["vdev_tree"] { walk(tree, indent: 0, label: name) }
        let width = max(10, rows.map { $0.indent + $0.name.count }.max() ?? 0)
        var text = "  pool: \(name)\n"
        if pool["state"]?.stringValue == "SUSPENDED" {
            text += " state: SUSPENDED\n"
            // The host's reason is a whole sentence with what to do (PoolStatus.suspension).
            var reason = pool["suspension"]?.stringValue ?? "its multihost heartbeats failed"
            if !reason.hasSuffix(".") { reason += "." }
            text += "status: The pool is suspended; writes are refused. \(reason)\n"
            text += "action: Make sure the pool's devices are connected and answering, then run 'zpk clear \(name)'\n"
                + "\t(it resumes only when no other host wrote the pool meanwhile), or 'zpk export \(name)'.\n"
        } else {
            text += " state: \(pool["health"]?.stringValue ?? "?")\n"
        }
        if let missing = pool["missing_leaves"]?.arrayValue, !missing.isEmpty {
            text += "status: One or more devices could not be opened: "
                + missing.compactMap(\.stringValue).joined(separator: ", ") + ".\n"
        }
        text += "config:\n\n"
        text += "\t" + pad("NAME", width) + "  " + pad("STATE", 8) + " " + right("READ", 5) + " " + right("WRITE", 5) + " "
            + right("CKSUM", 5) + "\n"
        for row in rows {
            let count = { (key: String) in String(row.vdev[key]?.uint64Value ?? 0) }
            text += "\t" + pad(String(repeating: " ", count: row.indent) + row.name, width) + "  "
                + pad(row.vdev["health"]?.stringValue ?? "-", 8) + " " + right(count("read_errors"), 5) + " "
                + right(count("write_errors"), 5) + " " + right(count("checksum_errors"), 5) + "\n"
        }
        let repairs = pool["repairs"]?.uint64Value ?? 0
        text += "\nerrors: No known data errors\n"
        if repairs > 0 { text += "repairs: \(repairs) blocks rewritten from a good mirror copy\n" }
        if let multihost = pool["multihost"], multihost != .null { text += multihostStatus(multihost) }
        return text
    }

    /// The multihost lines of `zpk status` (only for a pool with multihost=on).
    static func multihostStatus(_ block: JSON) -> String {
        let value = { (key: String) in block[key]?.uint64Value ?? 0 }
        let signed = { (key: String) -> Int64 in
            if case .signed(let v)? = block[key] { return v }
            return Int64(clamping: block[key]?.uint64Value ?? 0)
        }
        let fail = value("fail_intervals")
        let delayTenths = max(0, signed("mmp_delay_ns")) / 100_000
        var text = "multihost: on, a heartbeat every \(signed("interval_ms")) ms per leaf; "
        text += fail == 0 ? "never suspends\n" : "suspends after \(fail) intervals without one\n"
        text += "\tlast heartbeat \(signed("last_heartbeat_age_ms")) ms ago, mmp_delay \(delayTenths / 10).\(delayTenths % 10) ms; "
        text += "\(value("heartbeats_written")) written, \(value("heartbeats_failed")) failed, \(value("skipped")) skipped"
        if block["running"]?.boolValue == false { text += " (heartbeat not running)" }
        return text + "\n"
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }

    static func right(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }
}
