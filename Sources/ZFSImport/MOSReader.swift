// From an OpenZFS pool's best uberblock to its MOS config, read-only:
//
//   uberblock.ub_rootbp → objset_phys (the MOS) → meta-dnode → dnode 1, the object directory
//   (a ZAP) → "config" → a packed-nvlist object (size in the bonus) → the MOS config;
//   and from the same directory "creation_version", "features_for_read" (a ZAP of feature
//   name → reference count), and the vdev ZAP objects the config names.
//
// A block is read as `zio_read` would: holes are zeros, embedded pointers carry their data,
// otherwise each DVA in turn (gang DVAs through their gang header) until one copy verifies
// with the pointer's checksum and decompresses. Everything here is bounded: every block
// pointer's sizes are checked before anything is allocated, the indirection depth comes from
// a validated dnode, and object counts from the block sizes.
//
// The corresponding OpenZFS code is `spa_load_impl` (through `spa_ld_open_rootbp`,
// `spa_ld_trusted_config` and `load_nvlist`), `dmu_objset_open_impl`, `dbuf_read` and
// `zap_lookup`.

import ZFSDevice
import ZFSFormat

/// Why the MOS config could not be read: which object, and the block read's own answer.
public struct MOSError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was being read ("the MOS objset", "object 1 (object directory)", …).
    public var object: String
    /// Whether a block was unreadable, damaged, or of a kind ZPoolKit does not read.
    public var code: BlockReadError.Code
    /// The vdev, offset and reason of each failed attempt (empty for a decoding error).
    public var attempts: [BlockReadError.Attempt]
    /// The reason, when the failure was not a device read.
    public var reason: String?

    public init(object: String, code: BlockReadError.Code, attempts: [BlockReadError.Attempt] = [], reason: String? = nil) {
        self.object = object
        self.code = code
        self.attempts = attempts
        self.reason = reason
    }

    public var description: String {
        var parts: [String] = []
        if let reason { parts.append(reason) }
        parts += attempts.map(\.description)
        return "cannot read \(object): " + parts.joined(separator: "; ")
    }
}

/// What the MOS says about the pool.
public struct MOSConfig: Sendable {
    /// The `config` packed nvlist: the pool config the kernel trusts at import.
    public var config: NVList
    /// `features_for_read`: feature guid → reference count (empty before version 5000).
    public var featuresForRead: [String: UInt64]
    /// `creation_version`, when the directory has it.
    public var creationVersion: UInt64?
    /// The object directory's entries, name → first value.
    public var directory: [String: UInt64]
    /// Each vdev ZAP object the config names (`com.delphix:vdev_zap_leaf`/`_top`), and
    /// whether that object exists in the MOS.
    public var vdevZAPs: [UInt64: Bool]
    /// The uberblock the read started from.
    public var uberblock: Uberblock
    /// The reads that succeeded only through redundancy (a mirror's other side, raidz parity,
    /// a ditto copy): the pool is damaged there, though its MOS config was read.
    public var repairs: VdevReader.Repairs
}

/// Reads the MOS of one pool through a ``VdevReader``.
public struct MOSReader {
    /// `DMU_POOL_DIRECTORY_OBJECT`.
    public static let directoryObject: UInt64 = 1
    /// The largest logical block size accepted (`SPA_MAXBLOCKSIZE`, 16 MiB).
    public static let maximumBlockByteCount = 16 << 20
    /// The largest packed config accepted (the kernel's `spa_config` limit is far below).
    public static let maximumConfigByteCount = 64 << 20

    public let vdevs: VdevReader

    public init(vdevs: VdevReader) { self.vdevs = vdevs }

    /// Reads the pool's MOS config from `uberblock`.
    public func readConfig(from uberblock: Uberblock) throws(MOSError) -> MOSConfig {
        let objsetBytes = try readBlock(uberblock.rootBlockPointer, what: "the MOS objset (uberblock txg \(uberblock.txg.rawValue))")
        let objset: ObjsetPhys
        do {
            objset = try ObjsetPhys(decoding: objsetBytes.bytes, byteOrder: objsetBytes.byteOrder)
        } catch {
            throw MOSError(object: "the MOS objset", code: .damaged, reason: error.description)
        }
        let mos = ObjectSet(reader: self, metaDnode: objset.metaDnode)
        let directory = try mos.zapEntries(Self.directoryObject, what: "object 1 (the object directory)")
        var values: [String: UInt64] = [:]
        for entry in directory { values[entry.name] = entry.values.first }
        guard let configObject = values["config"] else {
            throw MOSError(object: "object 1 (the object directory)", code: .damaged, reason: "it has no \"config\" entry")
        }
        let config = try mos.packedNVList(configObject, what: "object \(configObject) (the config)")
        var features: [String: UInt64] = [:]
        if let featuresObject = values["features_for_read"] {
            for entry in try mos.zapEntries(featuresObject, what: "object \(featuresObject) (features_for_read)") {
                features[entry.name] = entry.values.first ?? 0
            }
        }
        var vdevZAPs: [UInt64: Bool] = [:]
        for object in Self.vdevZAPObjects(config.list("vdev_tree")) {
            vdevZAPs[object] = (try? mos.dnode(object).type != 0) ?? false
        }
        return MOSConfig(
            config: config, featuresForRead: features, creationVersion: values["creation_version"], directory: values,
            vdevZAPs: vdevZAPs, uberblock: uberblock, repairs: vdevs.repairs)
    }

    static func vdevZAPObjects(_ tree: NVList?) -> [UInt64] {
        guard let tree else { return [] }
        var objects: [UInt64] = []
        for key in ["com.delphix:vdev_zap_leaf", "com.delphix:vdev_zap_top"] {
            if let object = tree.uint64(key) { objects.append(object) }
        }
        for child in tree.lists("children") ?? [] { objects += vdevZAPObjects(child) }
        return objects
    }

    /// A block's logical bytes and their byte order.
    public struct Block {
        public var bytes: [UInt8]
        public var byteOrder: Endianness
    }

    /// Reads the block `pointer` points at: verified, decompressed, `lsize` bytes.
    public func readBlock(_ pointer: BlockPointer, what: String) throws(MOSError) -> Block {
        do {
            return try readBlock(pointer, depth: 0)
        } catch let error as BlockReadError {
            throw MOSError(object: what, code: error.code, attempts: error.attempts)
        } catch {
            throw MOSError(object: what, code: .damaged, reason: "\(error)")
        }
    }

    private func readBlock(_ pointer: BlockPointer, depth: Int) throws -> Block {
        let properties = pointer.properties
        let order = properties.dataByteOrder
        let logical = Int(properties.logicalByteCount)
        guard logical <= Self.maximumBlockByteCount else {
            throw BlockReadError(.damaged, vdev: "block pointer", offset: 0, reason: "a logical size of \(logical) bytes")
        }
        if pointer.isHole {
            return Block(bytes: [UInt8](repeating: 0, count: logical), byteOrder: order)
        }
        if properties.isEmbedded {
            let payload = try pointer.embeddedPayload()
            return Block(bytes: try BlockCompression(rawValue: properties.compression).decompress(payload, logicalByteCount: logical), byteOrder: order)
        }
        guard properties.usesEncryption == false else {
            throw BlockReadError(.unsupported, vdev: "block pointer", offset: 0, reason: "the block is encrypted")
        }
        let physical = Int(properties.physicalByteCount)
        let checksum = BlockChecksum(rawValue: properties.checksumAlgorithm)
        if case .cannotVerify = checksum.verify([], byteOrder: order, expected: pointer.checksum) {
            throw BlockReadError(
                .unsupported, vdev: "block pointer", offset: 0, reason: "cannot verify a \(checksum) checksum (ZPoolKit computes fletcher2, fletcher4 and sha256)")
        }
        let compression = BlockCompression(rawValue: properties.compression)
        var attempts: [BlockReadError.Attempt] = []
        var code = BlockReadError.Code.unreadable
        for (index, dva) in pointer.dvas.enumerated() where !dva.isEmpty {
            do {
                let raw = try readPhysical(dva, pointer: pointer, size: physical, depth: depth) { bytes in
                    switch checksum.verify(bytes, byteOrder: order, expected: pointer.checksum) {
                    case .valid, .notChecksummed: return nil
                    case .mismatch: return "checksum mismatch (\(checksum))"
                    case .cannotVerify: return "cannot verify \(checksum)"
                    }
                }
                do {
                    let block = Block(bytes: try compression.decompress(raw, logicalByteCount: logical), byteOrder: order)
                    if index > 0 { vdevs.repairs.dittoFallbacks += 1 }
                    return block
                } catch {
                    attempts.append(.init(vdev: "top-level vdev \(dva.vdevID)", offset: dva.byteOffset, reason: "\(error)"))
                }
            } catch let error as BlockReadError {
                attempts += error.attempts
                if error.code != .unreadable { code = error.code }
            }
        }
        if attempts.isEmpty {
            attempts.append(.init(vdev: "block pointer", offset: 0, reason: "it has no DVA"))
            code = .damaged
        }
        throw BlockReadError(code, attempts)
    }

    /// The physical bytes of one DVA (a gang DVA: its members, concatenated), accepted by `verify`.
    private func readPhysical(
        _ dva: DVA, pointer: BlockPointer, size: Int, depth: Int, verify: ([UInt8]) -> String?
    ) throws -> [UInt8] {
        let ashift = vdevs.ashift(ofTopLevel: dva.vdevID)
        let sector = 1 << ashift
        if !dva.isGang {
            let rounded = (size + sector - 1) / sector * sector
            let bytes = try vdevs.read(topLevel: dva.vdevID, offset: dva.byteOffset, size: rounded) { bytes in
                verify(Array(bytes.prefix(size)))
            }
            return Array(bytes.prefix(size))
        }
        guard depth < 8 else {
            throw BlockReadError(.damaged, vdev: "top-level vdev \(dva.vdevID)", offset: dva.byteOffset, reason: "gang blocks nest deeper than 8 levels")
        }
        let headerSize = (GangHeader.byteCount + sector - 1) / sector * sector
        var header: GangHeader?
        _ = try vdevs.read(topLevel: dva.vdevID, offset: dva.byteOffset, size: headerSize) { bytes in
            do {
                header = try GangHeader(decoding: Array(bytes.prefix(GangHeader.byteCount)), for: pointer)
                return nil
            } catch {
                return "gang header: \(error)"
            }
        }
        var data: [UInt8] = []
        for member in header?.members ?? [] {
            let piece = try readMemberPhysical(member, depth: depth + 1)
            data += piece
            guard data.count <= size else { break }
        }
        guard data.count >= size else {
            throw BlockReadError(.damaged, vdev: "top-level vdev \(dva.vdevID)", offset: dva.byteOffset, reason: "the gang members hold \(data.count) bytes, not \(size)")
        }
        let whole = Array(data.prefix(size))
        if let reason = verify(whole) {
            throw BlockReadError(.unreadable, vdev: "top-level vdev \(dva.vdevID)", offset: dva.byteOffset, reason: "gang block: \(reason)")
        }
        return whole
    }

    /// A gang member's physical bytes, verified by its own checksum (members are not compressed
    /// separately: the parent's compression applies to the concatenation).
    private func readMemberPhysical(_ member: BlockPointer, depth: Int) throws -> [UInt8] {
        let size = Int(member.properties.physicalByteCount)
        let checksum = BlockChecksum(rawValue: member.properties.checksumAlgorithm)
        let order = member.properties.dataByteOrder
        var attempts: [BlockReadError.Attempt] = []
        for dva in member.dvas where !dva.isEmpty {
            do {
                return try readPhysical(dva, pointer: member, size: size, depth: depth) { bytes in
                    switch checksum.verify(bytes, byteOrder: order, expected: member.checksum) {
                    case .valid, .notChecksummed: nil
                    case .mismatch: "gang member checksum mismatch"
                    case .cannotVerify: "cannot verify \(checksum)"
                    }
                }
            } catch let error as BlockReadError {
                attempts += error.attempts
            }
        }
        throw BlockReadError(.unreadable, attempts)
    }
}

/// An objset being read: its meta-dnode and the objects it holds.
struct ObjectSet {
    let reader: MOSReader
    let metaDnode: Dnode

    /// Level-0 block `blockID` of the object `dnode` describes.
    func block(of dnode: Dnode, _ blockID: UInt64, what: String) throws(MOSError) -> MOSReader.Block {
        guard let path = dnode.path(toBlock: blockID) else {
            return MOSReader.Block(bytes: [UInt8](repeating: 0, count: dnode.dataBlockByteCount), byteOrder: dnode.byteOrder)
        }
        var pointer = dnode.blockPointers[path.top]
        for index in path.indirect {
            if pointer.isHole {
                return MOSReader.Block(bytes: [UInt8](repeating: 0, count: dnode.dataBlockByteCount), byteOrder: dnode.byteOrder)
            }
            let indirect = try reader.readBlock(pointer, what: "\(what), an indirect block")
            do {
                pointer = try BlockPointer(decoding: indirect.bytes, at: index * BlockPointer.byteCount, byteOrder: indirect.byteOrder)
            } catch {
                throw MOSError(object: what, code: .damaged, reason: "an indirect block is too short: \(error)")
            }
        }
        if pointer.isHole {
            return MOSReader.Block(bytes: [UInt8](repeating: 0, count: dnode.dataBlockByteCount), byteOrder: dnode.byteOrder)
        }
        return try reader.readBlock(pointer, what: what)
    }

    /// The dnode of `object`.
    func dnode(_ object: UInt64) throws(MOSError) -> Dnode {
        let what = "object \(object)'s dnode"
        let perBlock = UInt64(max(metaDnode.dataBlockByteCount / Dnode.slotByteCount, 1))
        guard object / perBlock <= metaDnode.maximumBlockID else {
            throw MOSError(object: what, code: .damaged, reason: "the MOS has no object \(object) (its meta-dnode ends at block \(metaDnode.maximumBlockID))")
        }
        let block = try self.block(of: metaDnode, object / perBlock, what: what)
        do {
            return try Dnode(decoding: block.bytes, at: Int(object % perBlock) * Dnode.slotByteCount, byteOrder: block.byteOrder)
        } catch {
            throw MOSError(object: what, code: .damaged, reason: error.description)
        }
    }

    /// Every entry of the ZAP object `object`.
    func zapEntries(_ object: UInt64, what: String) throws(MOSError) -> [ZAP.Entry] {
        let dnode = try self.dnode(object)
        guard dnode.type != 0 else { throw MOSError(object: what, code: .damaged, reason: "the object is free") }
        let first = try block(of: dnode, 0, what: what)
        do {
            switch try ZAP.kind(ofFirstBlock: first.bytes, byteOrder: first.byteOrder) {
            case .micro:
                return try ZAP.microEntries(first.bytes, byteOrder: first.byteOrder)
            case .fat(let header):
                var table = header.embeddedTable
                if header.tableBlockCount > 0 {
                    table = []
                    var blockID = header.tableBlock
                    for _ in 0..<header.tableBlockCount {
                        guard blockID <= dnode.maximumBlockID else {
                            throw FormatError(.invalidLayout, "the pointer table's block \(blockID) lies past the object's last block")
                        }
                        let tableBlock = try block(of: dnode, blockID, what: what)
                        table += ZAP.tableEntries(tableBlock.bytes, byteOrder: tableBlock.byteOrder)
                        blockID &+= 1
                    }
                }
                var seen = Set<UInt64>()
                var entries: [ZAP.Entry] = []
                for leafID in table where leafID != 0 && seen.insert(leafID).inserted {
                    guard leafID <= dnode.maximumBlockID, seen.count <= 1 << 16 else {
                        throw FormatError(.invalidLayout, "the pointer table names leaf block \(leafID), past the object's last block")
                    }
                    let leaf = try block(of: dnode, leafID, what: what)
                    entries += try ZAP.leafEntries(leaf.bytes, byteOrder: leaf.byteOrder)
                }
                return entries
            }
        } catch let error as MOSError {
            throw error
        } catch let error as FormatError {
            throw MOSError(object: what, code: .damaged, reason: error.description)
        } catch {
            throw MOSError(object: what, code: .damaged, reason: "\(error)")
        }
    }

    /// The packed nvlist object `object` (size in the first word of its bonus buffer).
    func packedNVList(_ object: UInt64, what: String) throws(MOSError) -> NVList {
        let dnode = try self.dnode(object)
        guard let size = dnode.bonusWord, size > 0, size <= UInt64(MOSReader.maximumConfigByteCount) else {
            throw MOSError(object: what, code: .damaged, reason: "its bonus buffer gives no sensible packed size")
        }
        var bytes: [UInt8] = []
        var blockID: UInt64 = 0
        while bytes.count < Int(size) {
            guard blockID <= dnode.maximumBlockID else {
                throw MOSError(object: what, code: .damaged, reason: "the object ends at \(bytes.count) bytes, before its packed size \(size)")
            }
            bytes += try block(of: dnode, blockID, what: what).bytes
            blockID += 1
        }
        do {
            return try NVList(decoding: bytes.prefix(Int(size)))
        } catch {
            throw MOSError(object: what, code: .damaged, reason: "the packed nvlist does not decode: \(error)")
        }
    }
}

extension MOSConfig {
    /// A top-level vdev that the MOS config names but no scanned device describes.
    public struct MissingTopLevel: Hashable, Sendable {
        public var id: UInt64
        public var type: String
        public var guid: UInt64
        /// The paths of its leaves, as the MOS recorded them.
        public var paths: [String]
        public var isLog: Bool
    }

    /// The top-level vdevs of the MOS config whose slot in the scanned pool's tree is a
    /// `missing` placeholder (or absent): what the kernel's tryimport names from the MOS.
    public func missingTopLevels(in pool: PoolCandidate) -> [MissingTopLevel] {
        let scanned = Dictionary(pool.root.children.compactMap { child in child.id.map { ($0, child) } }, uniquingKeysWith: { a, _ in a })
        return (config.list("vdev_tree")?.lists("children") ?? []).compactMap { child in
            guard let id = child.uint64("id"), child.string("type") != "hole" else { return nil }
            if let present = scanned[id], present.type != .missing { return nil }
            let node = VdevNode(config: child)
            return MissingTopLevel(
                id: id, type: child.string("type") ?? "?", guid: child.uint64("guid") ?? 0,
                paths: node.leaves.compactMap(\.path), isLog: child.uint64("is_log") == 1)
        }
    }
}

extension MOSReader {
    /// Reads the MOS config of a scanned pool from `uberblock` (the one its health pass selected).
    public static func read(_ pool: PoolCandidate, from uberblock: Uberblock?) -> Result<MOSConfig, MOSError> {
        guard let uberblock else {
            return .failure(MOSError(object: "the uberblock", code: .unreadable, reason: "no device of pool '\(pool.name)' holds a valid uberblock"))
        }
        let reader = MOSReader(vdevs: VdevReader(root: pool.root))
        return Result { () throws(MOSError) in try reader.readConfig(from: uberblock) }
    }

    /// Reads the MOS config of a scanned pool from the uberblock its load would select
    /// (``PoolHealth/assess(_:in:localHostID:tunables:readingMOS:)``), through the devices the scan found.
    /// Read-only; blocks the calling thread.
    public static func read(_ pool: PoolCandidate, in scan: ScanResult, localHostID: UInt64 = 0) -> Result<MOSConfig, MOSError> {
        read(pool, from: PoolHealth.assess(pool, in: scan, localHostID: localHostID, readingMOS: false).uberblock)
    }
}
