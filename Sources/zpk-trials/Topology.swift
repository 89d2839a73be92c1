// The network of one trial: a storage namespace holding a bridge, one namespace per host, each
// host joined to the bridge by a veth pair (its storage link) and to every other host by a veth
// pair (the host links). Partitions cut these links (`ip link set … down`); latency and loss are
// the relay's (LinkRelay.swift: this machine's kernel has no `tc netem`).
//
//   storage ns  S:  bridge br0 10.231.0.1/24 ── veth sI (storage end of host I's link)
//   host ns     I:  veth s   10.231.0.(10+I)/24 (storage link), veth xJ 10.232.P.(1|2)/24 per host J
//
// Every name starts with the run's prefix (`trials-<pid>`), every address is inside these
// namespaces, and `teardown` deletes the namespaces (their veths go with them).

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The monotonic clock every instant of the evidence is read from (nanoseconds).
func monotonicNow() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

struct CommandFailure: Error, CustomStringConvertible {
    var command: [String]
    var status: Int32
    var output: String
    var description: String { "`\(command.joined(separator: " "))` exited \(status): \(output)" }
}

/// Runs a command to completion; throws with its output when it fails.
@discardableResult
func run(_ arguments: [String], allowFailure: Bool = false) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let output = String(decoding: data, as: UTF8.self)
    if process.terminationStatus != 0 && !allowFailure {
        throw CommandFailure(command: arguments, status: process.terminationStatus, output: output)
    }
    return output
}

/// Where `ip` and `nbd-server` are.
enum Tools {
    static func find(_ name: String) -> String {
        for directory in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
            let path = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return name
    }
    static let ip = find("ip")
    static let nbdServer = find("nbd-server")
}

final class Topology {
    let prefix: String
    let hostCount: Int
    var storageNS: String { "\(prefix)-s" }
    func hostNS(_ i: Int) -> String { "\(prefix)-h\(i)" }
    /// veth names are at most 15 bytes: `zt<id>s<i>` / `zt<id>x<i><j>`.
    let shortID: String
    static let storageAddress = "10.231.0.1"
    static func hostAddress(_ i: Int) -> String { "10.231.0.\(10 + i)" }
    private(set) var created: [String] = []

    init(prefix: String, shortID: String, hostCount: Int) {
        self.prefix = prefix
        self.shortID = shortID
        self.hostCount = hostCount
    }

    private func ip(_ arguments: String...) throws {
        try run([Tools.ip] + arguments)
    }

    /// The storage end (in S) and the host end (in host i) of host i's storage link.
    func storageLink(_ i: Int) -> (storageEnd: String, hostEnd: String) { ("zt\(shortID)s\(i)", "zt\(shortID)h\(i)") }
    /// Host i's end of its link to host j.
    func hostLink(_ i: Int, _ j: Int) -> String { "zt\(shortID)x\(i)\(j)" }

    func setUp() throws {
        for ns in [storageNS] + (0..<hostCount).map(hostNS) {
            try ip("netns", "add", ns)
            created.append(ns)
            try ip("-n", ns, "link", "set", "lo", "up")
        }
        try ip("-n", storageNS, "link", "add", "br0", "type", "bridge")
        try ip("-n", storageNS, "addr", "add", "\(Self.storageAddress)/24", "dev", "br0")
        try ip("-n", storageNS, "link", "set", "br0", "up")
        for i in 0..<hostCount {
            let (s, h) = storageLink(i)
            try ip("-n", storageNS, "link", "add", s, "type", "veth", "peer", "name", h, "netns", hostNS(i))
            try ip("-n", storageNS, "link", "set", s, "master", "br0")
            try ip("-n", storageNS, "link", "set", s, "up")
            try ip("-n", hostNS(i), "addr", "add", "\(Self.hostAddress(i))/24", "dev", h)
            try ip("-n", hostNS(i), "link", "set", h, "up")
        }
        var pair = 0
        for i in 0..<hostCount {
            for j in (i + 1)..<max(i + 1, hostCount) {
                pair += 1
                let a = hostLink(i, j), b = hostLink(j, i)
                try ip("-n", hostNS(i), "link", "add", a, "type", "veth", "peer", "name", b, "netns", hostNS(j))
                try ip("-n", hostNS(i), "addr", "add", "10.232.\(pair).1/24", "dev", a)
                try ip("-n", hostNS(j), "addr", "add", "10.232.\(pair).2/24", "dev", b)
                try ip("-n", hostNS(i), "link", "set", a, "up")
                try ip("-n", hostNS(j), "link", "set", b, "up")
            }
        }
    }

    /// Cuts (or restores) host i's storage link (both ends down: nothing passes either way).
    func setStorageLink(of i: Int, up: Bool) throws {
        let (s, h) = storageLink(i)
        try ip("-n", hostNS(i), "link", "set", h, up ? "up" : "down")
        try ip("-n", storageNS, "link", "set", s, up ? "up" : "down")
    }

    /// Cuts (or restores) every host link of host i; its storage link stays.
    func setHostLinks(of i: Int, up: Bool) throws {
        for j in 0..<hostCount where j != i {
            try ip("-n", hostNS(i), "link", "set", hostLink(i, j), up ? "up" : "down")
        }
    }

    /// Deletes every namespace this topology made (their veths and bridge go with them).
    func tearDown() {
        for ns in created.reversed() {
            _ = try? run([Tools.ip, "netns", "del", ns], allowFailure: true)
        }
        created = []
    }
}
