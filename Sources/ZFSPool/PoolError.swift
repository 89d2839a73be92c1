// The one public error of ZFSPool (STYLE §4): a code that can grow without breaking clients, a
// message that names the pool, the device and the reason and says what to do, the underlying
// cause (a `DeviceError`, a `FormatError`) and where it was thrown.

/// An error from the pool host: creating, opening, importing, syncing or reading a pool.
///
/// ```swift
/// do { try await host.open(config: cached, mode: .import(force: false, rewind: false)) }
/// catch let error as PoolError where error.code == .importRequiresForce { … }
/// ```
public struct PoolError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as a value clients can switch on.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: String, Hashable, Sendable {
            case unknownPool, poolExists, invalidName, invalidLayout, deviceTooSmall, deviceInUse
            case deviceOpenFailed, missingDevices, noValidUberblock, corruptMetadata, notOurPool
            case unsupportedVersion, badGuidSum, importRequiresForce, hostMismatch, ioFailure
            case corruptBlock, objectNotFound, invalidObjectName, objectTooLarge, outOfSpace
            case poolClosed, invalidConfig
            case readOnlyProperty, invalidProperty, unknownProperty, cacheFileFailure
            case poolInUse, poolSuspended, unknownDevice, poolOpening
        }
        fileprivate let value: Value
        fileprivate init(_ value: Value) { self.value = value }

        /// No pool of that name or guid is open on this host, or none was found by a scan.
        public static let unknownPool = Code(.unknownPool)
        /// The pool is in this host's cache file and still opening (its activity check or claim
        /// runs); the message says how long is left. Try again when it is open.
        public static let poolOpening = Code(.poolOpening)
        /// A pool of that name is already open on this host.
        public static let poolExists = Code(.poolExists)
        /// A pool name OpenZFS would reject (empty, too long, bad characters, reserved).
        public static let invalidName = Code(.invalidName)
        /// The vdev layout is empty, repeats a device, or has a mirror of fewer than 2 leaves.
        public static let invalidLayout = Code(.invalidLayout)
        /// A leaf is smaller than `SPA_MINDEVSIZE` (64 MiB).
        public static let deviceTooSmall = Code(.deviceTooSmall)
        /// A leaf carries a valid label of another live pool.
        public static let deviceInUse = Code(.deviceInUse)
        /// A leaf could not be opened.
        public static let deviceOpenFailed = Code(.deviceOpenFailed)
        /// A top-level vdev has no usable leaf.
        public static let missingDevices = Code(.missingDevices)
        /// No label holds a valid uberblock (`spa_ld_select_uberblock`: "no valid uberblock found").
        public static let noValidUberblock = Code(.noValidUberblock)
        /// The newest MOS (or its object directory) fails its checksum; rewind may recover.
        public static let corruptMetadata = Code(.corruptMetadata)
        /// The pool is an OpenZFS pool (its MOS needs features other than `org.zpoolkit:mos`).
        public static let notOurPool = Code(.notOurPool)
        /// The pool's SPA version is not 5000.
        public static let unsupportedVersion = Code(.unsupportedVersion)
        /// The uberblock's guid sum disagrees with the MOS vdev tree: a top-level vdev is missing.
        public static let badGuidSum = Code(.badGuidSum)
        /// The pool was last used by another host and not exported: import needs `force`.
        public static let importRequiresForce = Code(.importRequiresForce)
        /// Opening from a cache file found the pool owned by another host (ZFS-8000-EY).
        public static let hostMismatch = Code(.hostMismatch)
        /// A device failed a read, write or flush the pool could not do without.
        public static let ioFailure = Code(.ioFailure)
        /// Every copy of a block fails its checksum.
        public static let corruptBlock = Code(.corruptBlock)
        /// No object has that name.
        public static let objectNotFound = Code(.objectNotFound)
        /// An object name that is empty, longer than 255 bytes, or contains NUL.
        public static let invalidObjectName = Code(.invalidObjectName)
        /// An object larger than ``Pool/maximumObjectByteCount``.
        public static let objectTooLarge = Code(.objectTooLarge)
        /// No top-level vdev has room for the block.
        public static let outOfSpace = Code(.outOfSpace)
        /// The pool was exported or failed; open it again.
        public static let poolClosed = Code(.poolClosed)
        /// The config nvlist lacks `pool_guid`, `name` or `vdev_tree`, or its tree is malformed.
        public static let invalidConfig = Code(.invalidConfig)
        /// A property that can be read but not set (`name`, `guid`, `health`, `size`, ...).
        public static let readOnlyProperty = Code(.readOnlyProperty)
        /// A value a settable property does not accept (`multihost=maybe`, a comment with a
        /// control character, a user property name without a `:`).
        public static let invalidProperty = Code(.invalidProperty)
        /// A property name the pool does not know.
        public static let unknownProperty = Code(.unknownProperty)
        /// The host's cache file could not be read (``PoolHost/openPoolsFromCacheFile()``); the
        /// cause is the `ZFSImport.CacheFileError`.
        public static let cacheFileFailure = Code(.cacheFileFailure)

        /// Another host is writing the pool (multihost activity check, or the claim saw its
        /// writes): the message names its hostname and hostid. `zpk` exits 3. Export the pool
        /// there first; `force` does not override this.
        public static let poolInUse = Code(.poolInUse)
        /// The pool is suspended (its heartbeats failed, or another host's heartbeat was found
        /// in its MMP slots): writes are refused until `zpk clear` shows no other host is
        /// active, or the pool is exported.
        public static let poolSuspended = Code(.poolSuspended)
        /// No leaf of the pool has that path or guid (``Pool/inject(_:leaf:)``).
        public static let unknownDevice = Code(.unknownDevice)

        public var description: String { value.rawValue }
    }

    /// Where an error was thrown.
    public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
        public var fileID: String
        public var line: Int
        public var description: String { "\(fileID):\(line)" }
    }

    public var code: Code
    /// What went wrong and what to do, naming the pool and device.
    public var message: String
    /// The pool the error concerns, when there is one.
    public var poolName: String?
    /// The device the error concerns, when there is one.
    public var devicePath: String?
    /// The underlying error (`DeviceError`, `FormatError`), if any.
    public var cause: (any Error & Sendable)?
    public var location: SourceLocation

    public init(
        _ code: Code, _ message: String, pool: String? = nil, device: String? = nil,
        cause: (any Error & Sendable)? = nil, fileID: String = #fileID, line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.poolName = pool
        self.devicePath = device
        self.cause = cause
        self.location = SourceLocation(fileID: fileID, line: line)
    }

    public var description: String { message }

    /// The message, the cause and the location, as a tree (NIOFS `detailedDescription`).
    public func detailedDescription() -> String {
        var lines = ["PoolError: \(code)", "├─ message: \(message)"]
        if let poolName { lines.append("├─ pool: \(poolName)") }
        if let devicePath { lines.append("├─ device: \(devicePath)") }
        if let cause { lines.append("├─ cause: \(cause)") }
        lines.append("└─ location: \(location)")
        return lines.joined(separator: "\n")
    }
}
