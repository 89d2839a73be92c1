// The shaper of a host's storage link, for kernels without `tc netem` (this machine's has no
// sch_netem): a TCP relay run inside the host's namespace (`zpk-trials relay`), listening on the
// namespace's own loopback and forwarding over the host's veth to nbd-server. Every host then
// names its leaves `nbd://127.0.0.1:10809/dN` — the same paths on every host — and the relay of
// the holder can add latency and loss:
//
//   latency d  every chunk is delivered d after it arrived, in order;
//   loss p     a chunk is "lost" with probability p and arrives one retransmission timeout
//              (200 ms, Linux's minimum RTO) late, holding back what follows — what a TCP
//              stream sees on a lossy link.
//
// Partitions are not the relay's: they cut the veth itself (`ip link set … down`).
// Settings come from a control file ("DELAY_MS LOSS_PERCENT"), read every 20 ms.

import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

final class LinkShape: Sendable {
    private let state = Mutex<(delayNS: UInt64, lossPercent: UInt64)>((0, 0))
    var current: (delayNS: UInt64, lossPercent: UInt64) { state.withLock { $0 } }
    func set(delayMilliseconds: UInt64, lossPercent: UInt64) {
        state.withLock { $0 = (delayMilliseconds * 1_000_000, lossPercent) }
    }

    /// Writes the control file a relay reads.
    static func write(delayMilliseconds: UInt64, lossPercent: UInt64, to path: String) throws {
        try "\(delayMilliseconds) \(lossPercent)\n".write(toFile: path + ".new", atomically: false, encoding: .utf8)
        guard rename(path + ".new", path) == 0 else {
            throw CommandFailure(command: ["rename", path], status: errno, output: String(cString: strerror(errno)))
        }
    }
}

enum LinkRelay {
    static let retransmissionTimeoutNS: UInt64 = 200_000_000

    static func socketAddress(_ host: String, _ port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        inet_pton(AF_INET, host, &address.sin_addr)
        return address
    }

    /// Serves forever: accepts on `listen`, connects each client to `target`.
    static func serve(listenHost: String, listenPort: UInt16, targetHost: String, targetPort: UInt16, control: String) -> Never {
        // A peer that closed its end (an NBD request that timed out closes its connection) must
        // end that relay connection, not the relay.
        signal(SIGPIPE, SIG_IGN)
        let shape = LinkShape()
        Thread.detachNewThread {
            while true {
                if let text = try? String(contentsOfFile: control, encoding: .utf8) {
                    let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { UInt64($0) }
                    if fields.count == 2 { shape.set(delayMilliseconds: fields[0], lossPercent: fields[1]) }
                }
                usleep(20_000)
            }
        }
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = socketAddress(listenHost, listenPort)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 64) == 0 else {
            print("zpk-trials relay: cannot listen on \(listenHost):\(listenPort): \(String(cString: strerror(errno)))")
            Glibc.exit(1)
        }
        FileHandle.standardOutput.write(Data("zpk-trials relay ready\n".utf8))
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            Thread.detachNewThread { connectThrough(client, targetHost: targetHost, targetPort: targetPort, shape: shape) }
        }
    }

    /// Connects `client` to the target (retrying a refused connect for 2 s, as a server that
    /// is just starting would be waited for), then pumps both ways.
    static func connectThrough(_ client: Int32, targetHost: String, targetPort: UInt16, shape: LinkShape) {
        var one: Int32 = 1
        let deadline = monotonicNow() + 2_000_000_000
        while true {
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var target = socketAddress(targetHost, targetPort)
            let connected = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if connected == 0 {
                for fd in [client, server] { setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size)) }
                pump(from: client, to: server, shape: shape)
                pump(from: server, to: client, shape: shape)
                return
            }
            close(server)
            if monotonicNow() > deadline {
                close(client)
                return
            }
            usleep(50_000)
        }
    }

    /// One direction: a reader stamps each chunk with its delivery instant, a writer delivers
    /// them in order at those instants. End of stream or an error closes both sockets' directions.
    static func pump(from source: Int32, to destination: Int32, shape: LinkShape) {
        let queue = Mutex<[(at: UInt64, bytes: [UInt8])]>([])
        let wake = DispatchSemaphore(value: 0)
        let ended = Atomic<Bool>(false)
        Thread.detachNewThread {
            var random = SystemRandomNumberGenerator()
            var last: UInt64 = 0
            var buffer = [UInt8](repeating: 0, count: 256 << 10)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                let (delay, loss) = shape.current
                var at = monotonicNow() + delay
                if loss > 0, UInt64.random(in: 0..<100, using: &random) < loss { at += retransmissionTimeoutNS }
                at = max(at, last)
                last = at
                queue.withLock { $0.append((at, Array(buffer[0..<n]))) }
                wake.signal()
            }
            ended.store(true, ordering: .releasing)
            wake.signal()
        }
        Thread.detachNewThread {
            while true {
                wake.wait()
                while let next = queue.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                    let now = monotonicNow()
                    if next.at > now { sleepNS(next.at - now) }
                    var offset = 0
                    while offset < next.bytes.count {
                        let n = next.bytes[offset...].withUnsafeBytes { write(destination, $0.baseAddress, $0.count) }
                        if n <= 0 {
                            shutdown(source, Int32(SHUT_RDWR))
                            return
                        }
                        offset += n
                    }
                }
                if ended.load(ordering: .acquiring) && queue.withLock({ $0.isEmpty }) {
                    shutdown(destination, Int32(SHUT_WR))
                    return
                }
            }
        }
    }
}
