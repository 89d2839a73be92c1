// Reading a pool as its devices hold it, writing nothing: the fault trials' checker reads the
// pool back this way after every host has stopped (no activity check, no claim, no sync).

import ZFSDevice
import ZFSFormat

/// A pool read from its devices without opening it for writing.
public struct PoolInspection: Sendable {
    /// The txg of the uberblock the read started from (the best one whose MOS verifies).
    public var txg: TXG
    /// Every object of that txg: its bytes, or the error reading them.
    public var objects: [String: Result<[UInt8], PoolError>]
}

extension PoolHost {
    /// Reads the pool `config` describes from its devices — labels, best uberblock, MOS, object
    /// directory and every object — and writes nothing. Use an ``Environment/openDevice`` that
    /// opens read-only. The host checks of an import are skipped (the caller only looks).
    ///
    /// - Throws: ``PoolError`` as an open would (`missingDevices`, `noValidUberblock`,
    ///   `corruptMetadata`, …).
    public func inspect(config: NVList) async throws -> PoolInspection {
        try await BlockingIO.run { () throws -> PoolInspection in
            let stage = try self.openStageLeaves(config: config, mode: .import(force: true, rewind: false), newName: nil)
            defer { stage.faults.close() }
            var prepared = try self.openStageLoad(stage)
            var objects: [String: Result<[UInt8], PoolError>] = [:]
            for (name, entry) in prepared.core.objects {
                do throws(PoolError) {
                    let block = try prepared.core.io.read(entry.pointer)
                    objects[name] = .success(Array(block.prefix(Int(entry.byteCount))))
                } catch {
                    objects[name] = .failure(error)
                }
            }
            return PoolInspection(txg: prepared.txg, objects: objects)
        }
    }
}
