// The pool verbs that talk to zpkd: create, export, destroy, add, sync, list, status, get, set.
// Each is a thin client: arguments → one request (docs/daemon.md §3) → text or --json.

import ArgumentParser
import ZPKControl

extension ZPK {
    /// `zpk create [-o prop=val]... POOL VDEV...`
    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a pool on files or devices (zpkd writes it).",
            discussion: """
                A VDEV is a path (a file or block device of at least 64 MiB), or `mirror PATH \
                PATH...` for an N-way mirror; several VDEVs are striped. Relative paths are made \
                absolute here. zpkd checks everything before writing anything: the name, the \
                layout, every device's size, and that no device belongs to another pool \
                (active or exported); then it labels every device and syncs the first txg. \
                The pool is added to zpkd's cache file and stays open.

                Properties (-o) are stored in the pool: `multihost=on|off`, `comment=TEXT`, and \
                user properties named `module:property`.

                Examples:
                  truncate -s 256M /var/tmp/d1 /var/tmp/d2 /var/tmp/d3 /var/tmp/d4
                  zpk create tank /var/tmp/d1
                  zpk create tank mirror /var/tmp/d1 /var/tmp/d2 mirror /var/tmp/d3 /var/tmp/d4
                  zpk create -o comment="scratch" -o multihost=on tank /dev/sdb /dev/sdc
                """
        )

        @OptionGroup var daemon: DaemonOptions

        @Option(name: .customShort("o"), help: ArgumentHelp("A pool property; repeatable.", valueName: "prop=val"))
        var properties: [String] = []

        @Argument(help: "The new pool's name.")
        var pool: String

        @Argument(parsing: .allUnrecognized, help: ArgumentHelp("PATH, or `mirror PATH PATH...`; repeatable.", valueName: "vdev"))
        var vdevs: [String] = []

        func validate() throws {
            _ = try VdevArguments.parse(vdevs)
            _ = try PropertyArgument.parseAll(properties)
        }

        func run() throws {
            let specs = try VdevArguments.parse(vdevs)
            try VdevArguments.checkExistence(specs, verb: "create", pool: pool)
            let props = try PropertyArgument.parseAll(properties)
            var session = try DaemonSession(daemon)
            _ = try session.call(
                "create",
                [
                    "pool": .string(pool), "vdevs": .array(specs.map(\.json)),
                    "properties": JSON(props.mapValues { .string($0) }),
                ])
        }
    }

    /// `zpk export POOL`
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a pool: sync it, mark it exported and close it.",
            discussion: """
                zpkd writes the last txg with the pool's state set to EXPORTED, closes its devices \
                and removes it from its cache file. The devices can then be moved to another host \
                and imported there (`zpk import POOL`) without -f.

                Example:
                  zpk export tank
                """
        )

        @OptionGroup var daemon: DaemonOptions

        @Argument(help: "The pool to export.")
        var pool: String

        func run() throws {
            var session = try DaemonSession(daemon)
            _ = try session.call("export", ["pool": .string(pool)])
        }
    }

    /// `zpk destroy POOL`
    struct Destroy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Destroy a pool: mark its devices destroyed and forget it.",
            discussion: """
                The pool's labels are marked DESTROYED (as `zpool destroy` does), its devices \
                closed, and it is removed from zpkd's cache file. Its devices can then be used \
                for a new pool; `zpk import -D` still lists it. There is no confirmation prompt.

                Example:
                  zpk destroy tank
                """
        )

        @OptionGroup var daemon: DaemonOptions

        @Argument(help: "The pool to destroy.")
        var pool: String

        func run() throws {
            var session = try DaemonSession(daemon)
            _ = try session.call("destroy", ["pool": .string(pool)])
        }
    }

    /// `zpk add POOL VDEV...`
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add top-level vdevs to a pool (more space, striped).",
            discussion: """
                VDEVs are written as for `zpk create`. New data is spread over every top-level \
                vdev. A top-level vdev cannot be removed again. The MOS config and zpkd's cache \
                file record the new layout.

                Example:
                  zpk add tank mirror /var/tmp/d5 /var/tmp/d6
                """
        )

        @OptionGroup var daemon: DaemonOptions

        @Argument(help: "The pool to grow.")
        var pool: String

        @Argument(parsing: .allUnrecognized, help: ArgumentHelp("PATH, or `mirror PATH PATH...`; repeatable.", valueName: "vdev"))
        var vdevs: [String] = []

        func validate() throws {
            _ = try VdevArguments.parse(vdevs)
        }

        func run() throws {
            let specs = try VdevArguments.parse(vdevs)
            try VdevArguments.checkExistence(specs, verb: "add to", pool: pool)
            var session = try DaemonSession(daemon)
            _ = try session.call("add", ["pool": .string(pool), "vdevs": .array(specs.map(\.json))])
        }
    }

    /// `zpk sync [POOL]`
    struct Sync: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the open transaction group of one pool, or of all, now.",
            discussion: """
                zpkd syncs every pool every few seconds (`zpkd --sync-interval`); `zpk sync` does \
                it at once and returns when the txg is on disk. Objects put before it are then \
                durable. Prints each pool's last synced txg.

                Examples:
                  zpk sync
                  zpk sync tank
                """
        )

        @OptionGroup var daemon: DaemonOptions

        @Argument(help: "The pool to sync (default: every open pool).")
        var pool: String?

        func run() throws {
            var session = try DaemonSession(daemon)
            var arguments: [String: JSON] = [:]
            if let pool { arguments["pool"] = .string(pool) }
            let reply = try session.call("sync", arguments)
            for entry in reply.result["pools"]?.arrayValue ?? [] {
                emit("\(entry["pool"]?.stringValue ?? "?")\ttxg \(entry["txg"]?.uint64Value ?? 0)\n")
            }
        }
    }

    /// `zpk list [--json]`
    struct ListPools: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List the pools zpkd has open, with size and health.",
            discussion: """
                The columns are zpool list's: NAME SIZE ALLOC FREE HEALTH, sizes in powers of \
                1024 with zpool's rounding. -j/--json prints OpenZFS 2.3's `zpool list -j` layout \
                (output_version, pools keyed by name, each with its properties size, allocated, \
                free, capacity, health as {value, source}; numbers exact, as strings; --json-int: \
                integers). --zpk-json prints {"pools":[{"name","guid","size","alloc","free", \
                "health"}]}.

                Examples:
                  zpk list
                  zpk list --json --json-int
                """
        )

        @OptionGroup var daemon: DaemonOptions

        @Flag(name: [.customShort("j"), .long], help: "Print the pools in OpenZFS 2.3's `zpool list -j` layout.")
        var json = false

        @Flag(help: "With --json: numbers as JSON integers (zpool's --json-int).")
        var jsonInt = false

        @Flag(help: "With --json: key pools by guid (zpool's --json-pool-key-guid).")
        var jsonPoolKeyGuid = false

        @Flag(help: "Print {\"pools\":[{\"name\",\"guid\",\"size\",\"alloc\",\"free\",\"health\"}]} with exact integers.")
        var zpkJson = false

        func validate() throws {
            if (jsonInt || jsonPoolKeyGuid) && !json {
                throw ValidationError("Please give --json with --json-int or --json-pool-key-guid.")
            }
            if json && zpkJson { throw ValidationError("Please give either --json or --zpk-json, not both.") }
        }

        func run() throws {
            var session = try DaemonSession(daemon, json: json || zpkJson)
            if json {
                // The status reply carries txg and state, which zpool list -j prints.
                let reply = try session.call("status")
                let options = ZpoolJSON.Options(integers: jsonInt, poolKeyGUID: jsonPoolKeyGuid)
                emit(ZpoolJSON.list(reply.result["pools"]?.arrayValue ?? [], options).rendered())
                return
            }
            let reply = try session.call("list")
            let pools = reply.result["pools"]?.arrayValue ?? []
            if zpkJson {
                emit(JSON.object([("pools", .array(pools.map { PoolText.ordered($0, keys: PoolText.listKeys) }))]).rendered())
            } else {
                emit(PoolText.list(pools))
            }
        }
    }

    /// `zpk status [POOL] [--json]`
    struct StatusCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Show the health and vdev tree of open pools, as zpool status does.",
            discussion: """
                For each pool: its state, and its vdev tree with each vdev's health and its \
                READ, WRITE and CKSUM error counts (a checksum error on one side of a mirror is \
                repaired from the other side and counted here).

                -j/--json prints OpenZFS 2.3's `zpool status -j` layout (output_version, pools \
                keyed by name, nested vdevs keyed by name; numbers exact, as strings), so tools \
                written for zpool read it; --json-int prints numbers as integers, \
                --json-flat-vdevs lists every vdev under the pool with its parent, \
                --json-pool-key-guid keys pools by guid. Pools also carry zpk's `multihost` and \
                `suspension`. --zpk-json prints zpk's own shape: {"pools":[{"name","guid", \
                "state","suspension","health","txg","multihost","vdev_tree":{...}, ...}]}.

                Examples:
                  zpk status
                  zpk status tank --json --json-int
                """
        )

        @OptionGroup var daemon: DaemonOptions

        @Flag(name: [.customShort("j"), .long], help: "Print the pools in OpenZFS 2.3's `zpool status -j` layout.")
        var json = false

        @Flag(help: "With --json: numbers as JSON integers (zpool's --json-int).")
        var jsonInt = false

        @Flag(help: "With --json: every vdev under the pool's vdevs, with its parent (zpool's --json-flat-vdevs).")
        var jsonFlatVdevs = false

        @Flag(help: "With --json: key pools by guid (zpool's --json-pool-key-guid).")
        var jsonPoolKeyGuid = false

        @Flag(help: "Print zpk's own JSON shape (pools as an array, vdev_tree, exact integers).")
        var zpkJson = false

        func validate() throws {
            if (jsonInt || jsonFlatVdevs || jsonPoolKeyGuid) && !json {
                throw ValidationError("Please give --json with --json-int, --json-flat-vdevs or --json-pool-key-guid.")
            }
            if json && zpkJson { throw ValidationError("Please give either --json or --zpk-json, not both.") }
        }

        @Argument(help: "The pool to show (default: every open pool).")
        var pool: String?

        func run() throws {
            var session = try DaemonSession(daemon, json: json || zpkJson)
            var arguments: [String: JSON] = [:]
            if let pool { arguments["pool"] = .string(pool) }
            let reply = try session.call("status", arguments)
            let pools = reply.result["pools"]?.arrayValue ?? []
            if json {
                let options = ZpoolJSON.Options(integers: jsonInt, flatVdevs: jsonFlatVdevs, poolKeyGUID: jsonPoolKeyGuid)
                emit(ZpoolJSON.status(pools, options).rendered())
            } else if zpkJson {
                emit(JSON.object([("pools", .array(pools.map(PoolText.statusJSON)))]).rendered())
            } else if pools.isEmpty {
                emit("no pools available\n")
            } else {
                emit(pools.map(PoolText.status).joined(separator: "\n"))
            }
        }
    }

    /// `zpk get PROP|all [POOL]`
    struct GetProperty: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "get",
            abstract: "Show pool properties.",
            discussion: """
                Prints NAME PROPERTY VALUE SOURCE for one property or `all`, of one pool or of \
                every open pool. SOURCE is `local` for a value set with -o or `zpk set`, \
                `default` for a default, `-` for a read-only fact (size, free, health, guid).

                Examples:
                  zpk get all tank
                  zpk get multihost
                """
        )

        @OptionGroup var daemon: DaemonOptions

        @Flag(help: "Print {\"properties\":[{\"pool\",\"property\",\"value\",\"source\"}]}.")
        var json = false

        @Argument(help: "A property name, or `all`.")
        var property: String

        @Argument(help: "The pool (default: every open pool).")
        var pool: String?

        func run() throws {
            var session = try DaemonSession(daemon, json: json)
            var arguments: [String: JSON] = ["property": .string(property)]
            if let pool { arguments["pool"] = .string(pool) }
            let reply = try session.call("get", arguments)
            let rows = reply.result["properties"]?.arrayValue ?? []
            if json {
                emit(JSON.object([("properties", .array(rows.map { PoolText.ordered($0, keys: ["pool", "property", "value", "source"]) }))]).rendered())
            } else {
                emit(PoolText.table(
                    header: ["NAME", "PROPERTY", "VALUE", "SOURCE"],
                    rows: rows.map { row in ["pool", "property", "value", "source"].map { row[$0]?.stringValue ?? "-" } }))
            }
        }
    }

    /// `zpk set PROP=VALUE POOL`
    struct SetProperty: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Set a pool property.",
            discussion: """
                The value is stored in the pool's MOS at the next sync. Settable: \
                `multihost=on|off`, `comment=TEXT`, and user properties `module:property=TEXT`.

                Examples:
                  zpk set comment="backup target" tank
                  zpk set multihost=on tank
                """
        )

        @OptionGroup var daemon: DaemonOptions

        @Argument(help: ArgumentHelp("The property and its new value.", valueName: "prop=value"))
        var assignment: String

        @Argument(help: "The pool.")
        var pool: String

        func validate() throws {
            _ = try PropertyArgument.parse(assignment)
        }

        func run() throws {
            let (name, value) = try PropertyArgument.parse(assignment)
            var session = try DaemonSession(daemon)
            _ = try session.call("set", ["pool": .string(pool), "property": .string(name), "value": .string(value)])
        }
    }
}

/// `prop=value` arguments.
enum PropertyArgument {
    static func parse(_ text: String) throws -> (String, String) {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            throw ValidationError("Please write a property as prop=value, not '\(text)'.")
        }
        return (String(text[..<equals]), String(text[text.index(after: equals)...]))
    }

    static func parseAll(_ texts: [String]) throws -> [String: String] {
        var result: [String: String] = [:]
        for text in texts {
            let (name, value) = try parse(text)
            guard result.updateValue(value, forKey: name) == nil else {
                throw ValidationError("Please set property '\(name)' only once.")
            }
        }
        return result
    }
}
