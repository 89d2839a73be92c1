// The process's environment variables, for callers that pass them on explicitly (SystemHostID,
// cache-file and socket defaults) instead of reading globals deep inside the library.

#if canImport(Glibc)
import Glibc
#endif

/// The environment of this process.
public enum ProcessEnvironment {
    /// Every `NAME=value` entry of `environ`, read at the time of the call.
    public static var current: [String: String] {
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
