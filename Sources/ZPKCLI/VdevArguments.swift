// VDEV arguments of `zpk create` and `zpk add`: `PATH` or `mirror PATH PATH...`, as zpool
// reads them. Paths are made absolute here, in the client, because zpkd resolves nothing
// against its own working directory.

import ArgumentParser
import ZFSDevice
import ZPKDaemon

#if canImport(Glibc)
import Glibc
#endif

enum VdevArguments {
    /// One top-level vdev as the protocol sends it.
    enum Spec: Equatable {
        case leaf(String)
        case mirror([String])

        var json: ControlJSON {
            switch self {
            case .leaf(let path): ["type": "leaf", "path": .string(path)]
            case .mirror(let paths): ["type": "mirror", "paths": .array(paths.map { .string($0) })]
            }
        }

        var paths: [String] {
            switch self {
            case .leaf(let path): [path]
            case .mirror(let paths): paths
            }
        }
    }

    static let unsupportedTypes = ["raidz", "raidz1", "raidz2", "raidz3", "draid", "spare", "log", "cache", "special", "dedup"]

    /// Parses `VDEV...` (usage errors as `ValidationError`, exit 64).
    static func parse(_ words: [String], workingDirectory: String = currentDirectory()) throws -> [Spec] {
        guard !words.isEmpty else {
            throw ValidationError("Please name at least one vdev: a file or device path, or `mirror PATH PATH...`.")
        }
        var specs: [Spec] = []
        var mirror: [String]?
        func closeMirror() throws {
            guard let members = mirror else { return }
            guard members.count >= 2 else {
                throw ValidationError(
                    "Please give a mirror at least 2 devices: `mirror PATH PATH...` (got \(members.count)).")
            }
            specs.append(.mirror(members))
            mirror = nil
        }
        for word in words {
            if word == "mirror" {
                try closeMirror()
                mirror = []
            } else if unsupportedTypes.contains(word) {
                throw ValidationError(
                    "'\(word)' vdevs are not supported by zpk; use a path, or `mirror PATH PATH...`.")
            } else if mirror != nil {
                mirror!.append(absolute(word, in: workingDirectory))
            } else {
                specs.append(.leaf(absolute(word, in: workingDirectory)))
            }
        }
        try closeMirror()
        return specs
    }

    /// Every path must exist (a typo must not become a question for the daemon).
    static func checkExistence(_ specs: [Spec], verb: String, pool: String) throws {
        for path in specs.flatMap(\.paths) where !DeviceOpener.isNetworkPath(path) {
            var info = stat()
            if stat(path, &info) != 0 {
                emitError("cannot \(verb) '\(pool)': \(path) does not exist; create the file (truncate -s 1G \(path)) or name an existing device")
                throw ExitCode(1)
            }
        }
    }

    static func absolute(_ path: String, in directory: String) -> String {
        if path.hasPrefix("/") || DeviceOpener.isNetworkPath(path) { return path }
        return (directory.hasSuffix("/") ? directory : directory + "/") + path
    }

    static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
