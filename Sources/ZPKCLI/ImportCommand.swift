import ArgumentParser
import ZFSFormat
import ZFSImport

extension ZPK {
    /// `zpk import [-d DIR]... [-D] [--config POOL|GUID]`
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find importable pools by reading device labels, as `zpool import -d` does.",
            discussion: """
                Every file and block device in the search directories is read (read-only) and \
                its labels are grouped by pool and top-level vdev, exactly as OpenZFS 2.1.11's \
                libzutil does: the newest label of each top-level vdev wins, top-level vdevs \
                that no device describes become 'missing', and leaf paths are refreshed by guid, \
                so pools whose devices were moved or renamed are found.

                Without --config, lists the pools found (name, guid, label state, and what is \
                missing). With --config, prints the assembled config of one pool exactly as \
                `zdb -e -p DIR -CC POOL` prints it under "Configuration for import".

                POOL is a name, or a numeric guid when it is all decimal digits (the rule of \
                `zpool import`); use the guid when two pools share a name. Destroyed pools are \
                hidden unless -D is given, and then only they are shown.

                Without -d, the Linux default search list is scanned (/dev/disk/by-vdev, \
                /dev/mapper, …, /dev).

                Examples:
                  zpk import -d /var/tmp/pool
                  zpk import -d /var/tmp/pool --config tank
                  zpk import -d /dev/disk/by-id -D --config 15451357997522795478
                """
        )

        @Option(name: .customShort("d"), help: ArgumentHelp("A directory to scan, or a device; repeatable.", valueName: "dir"))
        var directories: [String] = []

        @Flag(name: .customShort("D"), help: "Show only destroyed pools.")
        var destroyed = false

        @Option(help: ArgumentHelp("Print the config of this pool (name or guid), as `zdb -e -p DIR -CC`.", valueName: "pool"))
        var config: String?

        func run() throws {
            let output = Self.run(searchPaths: directories, destroyed: destroyed, config: config, environment: Environment.current)
            emit(output.stdout)
            if !output.stderr.isEmpty { emitError(String(output.stderr.dropLast())) }
            if output.status != 0 { throw ExitCode(output.status) }
        }

        /// What `zpk import` prints and exits with (testable without a process).
        struct Output: Hashable, Sendable {
            var stdout: String
            var stderr: String
            var status: Int32
        }

        static func run(searchPaths: [String], destroyed: Bool, config: String?, environment: [String: String]) -> Output {
            let selector = config.map { PoolSelector(zpoolArgument: $0) }
            let scanner = ImportScanner(
                options: .init(
                    searchPaths: searchPaths, selector: selector,
                    destroyedPools: destroyed ? .only : .exclude,
                    deviceIdentity: UdevDiskIdentity.rule(optOut: DiskIdentityRule.optOut(environment: environment))))
            let result = scanner.scan()
            var output = Output(stdout: "", stderr: "", status: 0)
            for problem in result.searchProblems {
                output.stderr += problem.message + "\n"
            }
            if let selector {
                do {
                    output.stdout = ZdbImportText.render(try result.pool(selector))
                } catch {
                    output.stderr += error.message + "\n"
                    output.status = 1
                }
                return output
            }
            guard !result.pools.isEmpty else {
                output.stderr +=
                    result.permissionDenied
                    ? "no pools found: some devices require root privileges\n" : "no pools available to import\n"
                output.status = 1
                return output
            }
            output.stdout = listing(result.pools)
            return output
        }

        /// One block per pool: what the labels say, before any health check.
        static func listing(_ pools: [PoolCandidate]) -> String {
            var text = ""
            for (i, pool) in pools.enumerated() {
                if i > 0 { text += "\n" }
                text += "   pool: \(pool.name)\n"
                text += "     id: \(pool.guid)\n"
                text += "  label: \(pool.state)\(pool.isDestroyed ? " (DESTROYED)" : ""), txg \(pool.txg), version \(pool.version)\n"
                let leaves = pool.root.leaves
                let found = leaves.filter { if case .found = $0.presence { true } else { false } }.count
                text += "devices: \(found) of \(leaves.count) leaves found"
                if !pool.missingTopLevelIDs.isEmpty {
                    text += "; top-level vdevs \(pool.missingTopLevelIDs.map(String.init).joined(separator: ", ")) missing"
                }
                text += "\n"
                for note in pool.notes {
                    text += "   note: \(note)\n"
                }
            }
            return text
        }
    }
}

/// The process environment, read once.
enum Environment {
    static var current: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}

#if canImport(Glibc)
import Glibc
#endif
