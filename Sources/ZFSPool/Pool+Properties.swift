// Pool properties (`zpk get` / `zpk set`): the stored ones live in the MOS `properties` nvlist
// and become durable at the next sync; the derived ones are computed from the in-core pool.
//
//   name        read-only   the pool's name
//   guid        read-only   the pool guid, decimal
//   health      read-only   ONLINE / DEGRADED
//   size        read-only   allocatable bytes over all top-level vdevs
//   allocated   read-only   bytes allocated (deferred frees count as allocated)
//   free        read-only   bytes free now
//   txg         read-only   the last synced txg
//   multihost   settable    on | off (default off)
//   comment     settable    printable ASCII, at most 8192 bytes (empty = none)
//   module:prop settable    user property: a name with a ':', value at most 8192 bytes
//                           (ZAP_MAXVALUELEN); an empty value removes it

import Synchronization
import ZFSFormat
import ZFSImport
import ZFSMultihost

extension Pool {
    /// Longest `comment` and user property value in bytes (`ZAP_MAXVALUELEN`).
    public static let maximumPropertyValueByteCount = 8192
    /// Longest user property name in bytes (`ZAP_MAXNAMELEN` − 1).
    public static let maximumPropertyNameByteCount = 255

    static let readOnlyProperties: Set<String> = ["name", "guid", "health", "size", "allocated", "free", "txg"]

    /// The stored properties: `multihost`, `comment` when set, and user properties (`module:prop`).
    public var properties: [String: String] {
        core.withLock { $0.properties }
    }

    /// The value of a stored or derived property.
    ///
    /// Derived: `name`, `guid`, `health`, `size`, `allocated`, `free`, `txg` (last synced).
    /// Stored: `multihost` (`off` unless set), `comment` (`-` when unset, as `zpool get` prints
    /// it), user properties `module:prop` (`-` when unset).
    /// - Throws: ``PoolError`` `.unknownProperty` for any other name.
    public func property(_ name: String) throws -> String {
        try core.withLock { (core: inout PoolCore) throws(PoolError) -> String in
            switch name {
            case "name": return core.identity.name
            case "guid": return "\(core.identity.guid.rawValue)"
            case "health": return Pool.statusTree(core).health == "ONLINE" ? "ONLINE" : "DEGRADED"
            case "size": return "\(core.io.tree.topLevels.reduce(0) { $0 + $1.allocatableByteCount })"
            case "allocated": return "\(core.allocator.allocatedByteCount)"
            case "free": return "\(core.allocator.freeByteCount)"
            case "txg": return "\(core.lastSyncedTXG.rawValue)"
            case "multihost": return core.properties["multihost"] ?? "off"
            case "comment": return core.properties["comment"] ?? "-"
            default:
                guard Pool.isUserPropertyName(name) else {
                    throw Pool.unknownProperty(name, pool: core.identity.name)
                }
                return core.properties[name] ?? "-"
            }
        }
    }

    /// Sets a stored property; durable at the next ``sync()``.
    ///
    /// - Parameters:
    ///   - name: `multihost`, `comment`, or a user property `module:prop`.
    ///   - value: `on`/`off` for multihost; printable ASCII of at most 8192 bytes for comment
    ///     (empty removes it); at most 8192 bytes for a user property (empty removes it).
    /// - Throws: ``PoolError`` `.readOnlyProperty`, `.unknownProperty`, `.invalidProperty`,
    ///   `.poolSuspended`, `.poolClosed`. Nothing changes on error.
    public func setProperty(_ name: String, _ value: String) async throws {
        let poolName = self.name
        let normalised = try Pool.validatedProperty(name, value, pool: poolName)
        try ensureNotSuspended()
        try core.withLock { (core: inout PoolCore) throws(PoolError) in
            try core.ensureOpen()
            if core.properties[name] == normalised { return }
            core.properties[name] = normalised
            core.propertiesDirty = true
        }
        // The heartbeat starts or stops now; the next sync records the change on disk.
        if name == "multihost" { heartbeat.setMultihost(normalised == "on") }
    }

    // MARK: Validation

    static func isUserPropertyName(_ name: String) -> Bool {
        // zfs_prop_user: a ':' somewhere, only [a-z0-9_.:-] (lowercase, as zpool_prop_user checks).
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789_-.:")
        return name.contains(":") && !name.hasPrefix(":") && name.utf8.count <= maximumPropertyNameByteCount
            && name.allSatisfy(allowed.contains)
    }

    static func unknownProperty(_ name: String, pool: String) -> PoolError {
        PoolError(
            .unknownProperty,
            "pool '\(pool)' has no property '\(name)'; pool properties are name, guid, health, size, allocated, "
                + "free, txg, multihost, comment, and user properties named 'module:property'", pool: pool)
    }

    /// The value to store for `name` = `value` (`nil`: remove it).
    /// - Throws: ``PoolError`` `.readOnlyProperty`, `.unknownProperty`, `.invalidProperty`.
    static func validatedProperty(_ name: String, _ value: String, pool: String) throws(PoolError) -> String? {
        if readOnlyProperties.contains(name) {
            throw PoolError(
                .readOnlyProperty, "cannot set property '\(name)' of pool '\(pool)': it is read-only", pool: pool)
        }
        switch name {
        case "multihost":
            guard value == "on" || value == "off" else {
                throw PoolError(
                    .invalidProperty,
                    "cannot set property 'multihost' of pool '\(pool)' to '\(value)': use 'on' or 'off'", pool: pool)
            }
            return value
        case "comment":
            guard value.utf8.count <= maximumPropertyValueByteCount,
                value.utf8.allSatisfy({ (0x20...0x7E).contains($0) })
            else {
                throw PoolError(
                    .invalidProperty,
                    "cannot set property 'comment' of pool '\(pool)': a comment is printable ASCII of at most "
                        + "\(maximumPropertyValueByteCount) bytes (this one is \(value.utf8.count) bytes"
                        + (value.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) ? ")" : " and has a non-printable character)"),
                    pool: pool)
            }
            return value.isEmpty ? nil : value
        default:
            guard name.contains(":") else { throw unknownProperty(name, pool: pool) }
            guard isUserPropertyName(name) else {
                throw PoolError(
                    .invalidProperty,
                    "cannot set user property '\(name)' of pool '\(pool)': a user property name is 'module:property', "
                        + "lowercase letters, digits and '_-.:' only, at most \(maximumPropertyNameByteCount) bytes",
                    pool: pool)
            }
            guard value.utf8.count <= maximumPropertyValueByteCount, !value.utf8.contains(0) else {
                throw PoolError(
                    .invalidProperty,
                    "cannot set user property '\(name)' of pool '\(pool)': a value is at most "
                        + "\(maximumPropertyValueByteCount) bytes without NUL (this one is \(value.utf8.count) bytes)",
                    pool: pool)
            }
            return value.isEmpty ? nil : value
        }
    }
}
