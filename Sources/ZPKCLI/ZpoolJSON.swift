// `zpk status --json` and `zpk list --json` in OpenZFS 2.3's own schema (`zpool status -j`,
// `zpool list -j`; `status_callback_json`, `vdev_stats_nvlist`, `fill_pool_info`,
// `fill_vdev_info` and `collect_pool` in cmd/zpool/zpool_main.c of 2.3), so that tools
// written for zpool (ZFS exporters, monitoring scripts) read ours. docs/cli.md "--json".
//
// What we print is what `zpool … -jp` prints (exact numbers, as strings) or, with
// `--json-int`, `zpool … -j --json-int` (numbers as integers); zpool's human-readable sizes
// (`-j` without `-p`) are not produced. Keys zpool prints that ZPoolKit has no value for
// (scan, removal, checkpoint, per-vdev space of non-root vdevs, …) are left out, as zpool
// leaves them out when they do not apply. ZPoolKit's own facts are added under keys zpool
// does not use (`multihost`, `suspension`); readers of zpool's schema ignore them.

import ZPKControl

enum ZpoolJSON {
    struct Options {
        /// `--json-int`: numbers as JSON integers instead of strings.
        var integers = false
        /// `--json-flat-vdevs`: every vdev under the pool's `vdevs`, with `parent`.
        var flatVdevs = false
        /// `--json-pool-key-guid`: pools keyed by guid instead of name.
        var poolKeyGUID = false
    }

    /// `SPA_VERSION` and `ZPL_VERSION` of OpenZFS 2.3 (`fill_pool_info` prints them).
    static let spaVersion: UInt64 = 5000
    static let zplVersion: UInt64 = 5

    static func outputVersion(_ command: String) -> (String, JSON) {
        let version: [(String, JSON)] = [
            ("command", JSON.string(command)), ("vers_major", JSON.unsigned(0)), ("vers_minor", JSON.unsigned(1)),
        ]
        return ("output_version", JSON.object(version))
    }

    static func number(_ value: UInt64, _ options: Options) -> JSON {
        options.integers ? .unsigned(value) : .string("\(value)")
    }

    /// `zpool_get_state_str`: SUSPENDED for a suspended pool, else the root vdev's state.
    static func state(_ pool: JSON) -> String {
        if pool["state"]?.stringValue == "SUSPENDED" { return "SUSPENDED" }
        return pool["health"]?.stringValue ?? "UNAVAIL"
    }

    /// `fill_pool_info`: name, [type], state, pool_guid, txg, spa_version, zpl_version.
    static func poolInfo(_ pool: JSON, type: Bool, _ options: Options) -> [(String, JSON)] {
        var members: [(String, JSON)] = [("name", .string(pool["name"]?.stringValue ?? "?"))]
        if type { members.append(("type", .string("POOL"))) }
        members.append(("state", .string(state(pool))))
        if let guid = pool["guid"]?.uint64Value, guid != 0 { members.append(("pool_guid", number(guid, options))) }
        if let txg = pool["txg"]?.uint64Value, txg != 0 { members.append(("txg", number(txg, options))) }
        members.append(("spa_version", number(spaVersion, options)))
        members.append(("zpl_version", number(zplVersion, options)))
        return members
    }

    static func key(_ pool: JSON, _ options: Options) -> String {
        options.poolKeyGUID ? "\(pool["guid"]?.uint64Value ?? 0)" : (pool["name"]?.stringValue ?? "?")
    }

    // MARK: status

    /// `zpool status -j` of zpkd's `status` reply pools.
    static func status(_ pools: [JSON], _ options: Options) -> JSON {
        JSON.object([
            outputVersion("zpool status"),
            ("pools", JSON.object(pools.map { pool -> (String, JSON) in (key(pool, options), statusPool(pool, options)) })),
        ])
    }

    static func statusPool(_ pool: JSON, _ options: Options) -> JSON {
        var members = poolInfo(pool, type: false, options)
        if state(pool) == "SUSPENDED" {
            // ZPOOL_STATUS_IO_FAILURE_MMP's texts (print_status_reason), with zpk's verbs.
            members.append(
                ("status", .string("The pool is suspended because multihost writes failed or were delayed;\n\tanother system could import the pool undetected.\n")))
            members.append(
                ("action", .string("Make sure the pool's devices are connected, then run 'zpk clear' to resume the pool\n\t(only when no other host wrote it meanwhile), or 'zpk export'.\n")))
        }
        var vdevs: [(String, JSON)] = []
        if let tree = pool["vdev_tree"] {
            let name = pool["name"]?.stringValue ?? "?"
            let flat = FlatVdevs()
            let root = vdevObject(tree, name: name, parent: nil, pool: pool, isRoot: true, options, flat: flat)
            if options.flatVdevs, case .object(let members) = flat.object { vdevs = members } else { vdevs = [(name, root)] }
        }
        members.append(("vdevs", .object(vdevs)))
        members.append(("error_count", number(0, options)))
        let suspension: JSON = pool["suspension"]?.stringValue.map { JSON.string($0) } ?? JSON.null
        let multihost: JSON = pool["multihost"].map { $0.sortingKeys } ?? JSON.null
        members.append(("suspension", suspension))
        members.append(("multihost", multihost))
        return .object(members)
    }

    /// `vdev_stats_nvlist` for one vdev and its children. In flat mode every vdev is also
    /// appended to `flat` with `parent` (interior vdevs keep their nested `vdevs`, as zpool's do).
    static func vdevObject(
        _ vdev: JSON, name: String, parent: String?, pool: JSON, isRoot: Bool, _ options: Options,
        flat: FlatVdevs
    ) -> JSON {
        let children = vdev["children"]?.arrayValue ?? []
        var members: [(String, JSON)] = [("name", JSON.string(name))]
        members.append(("vdev_type", JSON.string(vdev["type"]?.stringValue ?? "?")))
        if let guid = vdev["guid"]?.uint64Value, guid != 0 { members.append(("guid", number(guid, options))) }
        if let path = vdev["path"]?.stringValue { members.append(("path", JSON.string(path))) }
        members.append(("class", JSON.string("normal")))
        members.append(("state", JSON.string(vdevState(vdev["health"]?.stringValue))))
        if options.flatVdevs, let parent { members.append(("parent", JSON.string(parent))) }
        if isRoot {
            let allocated = pool["allocated_bytes"]?.uint64Value ?? 0
            let free = pool["free_bytes"]?.uint64Value ?? 0
            if allocated != 0 { members.append(("alloc_space", number(allocated, options))) }
            if allocated + free != 0 {
                members.append(("total_space", number(allocated + free, options)))
                members.append(("def_space", number(allocated + free, options)))
            }
        }
        members.append(("read_errors", number(vdev["read_errors"]?.uint64Value ?? 0, options)))
        members.append(("write_errors", number(vdev["write_errors"]?.uint64Value ?? 0, options)))
        members.append(("checksum_errors", number(vdev["checksum_errors"]?.uint64Value ?? 0, options)))
        if children.isEmpty { members.append(("slow_ios", number(0, options))) }
        let health: String? = vdev["health"]?.stringValue
        if health == "UNAVAIL" && children.isEmpty {
            members.append(("aux", JSON.string("OPEN_FAILED")))
        }
        let position = flat.count
        var nested = JSON.object([])
        for (index, child) in children.enumerated() {
            let childName = Self.vdevName(child, index: index)
            nested = nested.appending(
                childName, Self.vdevObject(child, name: childName, parent: name, pool: pool, isRoot: false, options, flat: flat))
        }
        if !children.isEmpty { members.append(("vdevs", nested)) }
        let built = JSON.object(members)
        if options.flatVdevs { flat.insert(name, built, at: position) }
        return built
    }

    /// zpool_vdev_name with VDEV_NAME_TYPE_ID: a leaf by its path, else TYPE-ID.
    static func vdevName(_ vdev: JSON, index: Int) -> String {
        if let path = vdev["path"]?.stringValue, (vdev["children"]?.arrayValue ?? []).isEmpty { return path }
        return (vdev["type"]?.stringValue ?? "?") + "-" + String(index)
    }

    /// The vdevs of `--json-flat-vdevs`, in tree order. (One JSON object rather than an array
    /// of (name, value) pairs: Swift 6.3 reports a circular reference when it checks such an
    /// array's Sendability here.)
    final class FlatVdevs {
        private(set) var object = JSON.object([])
        private(set) var count = 0

        func insert(_ name: String, _ value: JSON, at position: Int) {
            guard case .object(var members) = object else { return }
            members.insert((name, value), at: position)
            object = .object(members)
            count += 1
        }
    }

    /// `vdev_state_str` of zpool_main.c: the JSON says CANT_OPEN where the text says UNAVAIL.
    static func vdevState(_ health: String?) -> String {
        guard let health, health != "UNAVAIL" else { return "CANT_OPEN" }
        return health
    }

    // MARK: list

    /// `zpool list -j` of zpkd's `status` reply pools (it carries txg and state, which the
    /// `list` reply does not).
    static func list(_ pools: [JSON], _ options: Options) -> JSON {
        JSON.object([
            outputVersion("zpool list"),
            ("pools", JSON.object(pools.map { pool -> (String, JSON) in (key(pool, options), listPool(pool, options)) })),
        ])
    }

    static func listPool(_ pool: JSON, _ options: Options) -> JSON {
        let allocated = pool["allocated_bytes"]?.uint64Value ?? 0
        let free = pool["free_bytes"]?.uint64Value ?? 0
        let size = allocated + free
        let capacity = size == 0 ? 0 : allocated * 100 / size
        func property(_ value: JSON) -> JSON {
            let source: [(String, JSON)] = [("type", JSON.string("NONE")), ("data", JSON.string("-"))]
            let members: [(String, JSON)] = [("value", value), ("source", JSON.object(source))]
            return JSON.object(members)
        }
        var members = poolInfo(pool, type: true, options)
        let properties: [(String, JSON)] = [
            ("size", property(number(size, options))),
            ("allocated", property(number(allocated, options))),
            ("free", property(number(free, options))),
            ("capacity", property(number(capacity, options))),
            ("health", property(JSON.string(state(pool)))),
        ]
        members.append(("properties", JSON.object(properties)))
        return .object(members)
    }
}

extension JSON {
    /// This object with one more member (other values are returned unchanged).
    func appending(_ key: String, _ value: JSON) -> JSON {
        guard case .object(var members) = self else { return self }
        members.append((key, value))
        return .object(members)
    }
}
