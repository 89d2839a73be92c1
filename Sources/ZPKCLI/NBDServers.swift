// `--nbd HOST[:PORT]` of `zpk import` and `zpk activity`: the server's exports (NBD_OPT_LIST,
// through libnbd) become search paths, one `nbd://HOST[:PORT]/EXPORT` URI each, scanned like
// the files of a directory.

import ArgumentParser
import ZFSDevice

enum NBDServers {
    /// The URIs of every export of every server, in the servers' order.
    ///
    /// - Throws: `ExitCode(1)` after printing which server could not be listed and why.
    static func exportURIs(_ servers: [String]) throws -> [String] {
        var uris: [String] = []
        for server in servers {
            do {
                uris += try NBDBlockDevice.listExports(server: server).map(\.uri)
            } catch {
                emitError("cannot scan NBD server \(server): \(error.message)")
                throw ExitCode(1)
            }
        }
        return uris
    }
}
