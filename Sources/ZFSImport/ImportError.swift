/// The one error type of `ZFSImport`.
///
/// Shaped like NIOFS's `FileSystemError`: a ``Code`` that can grow without breaking clients, a
/// ``message`` that names the pool, path or device and says what to do, an optional underlying
/// ``cause`` and the source ``location`` that raised it.
public struct ImportError: Error, Sendable, CustomStringConvertible {
    /// What kind of problem was found; a struct wrapping a private enum so codes can be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case cannotResolvePath, cannotOpenDirectory, noSuchPool, moreThanOneMatchingPool
        }
        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// A search path exists but its directory cannot be resolved (`realpath` failed for a
        /// reason other than "does not exist"). libzutil: "cannot resolve path '%s'".
        public static let cannotResolvePath = Code(.cannotResolvePath)
        /// A search directory cannot be listed. libzutil: "cannot open '%s'".
        public static let cannotOpenDirectory = Code(.cannotOpenDirectory)
        /// No pool found matches the name or guid asked for.
        public static let noSuchPool = Code(.noSuchPool)
        /// A name matches several pools; select one by guid.
        public static let moreThanOneMatchingPool = Code(.moreThanOneMatchingPool)

        public var description: String {
            switch wrapped {
            case .cannotResolvePath: "cannot resolve path"
            case .cannotOpenDirectory: "cannot open directory"
            case .noSuchPool: "no such pool"
            case .moreThanOneMatchingPool: "more than one matching pool"
            }
        }
    }

    /// Where the error was raised.
    public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
        public var fileID: String
        public var line: Int
        public var description: String { "\(fileID):\(line)" }
    }

    public var code: Code
    /// A sentence for a person, naming what failed and what to do.
    public var message: String
    /// The underlying error, if any.
    public var cause: (any Error & Sendable)?
    public var location: SourceLocation

    public init(
        _ code: Code, _ message: String, cause: (any Error & Sendable)? = nil,
        fileID: String = #fileID, line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.cause = cause
        self.location = SourceLocation(fileID: fileID, line: line)
    }

    public var description: String { message }
}
