// Running blocking device work off the cooperative pool (STYLE §2): each call gets a thread of
// its own and the caller suspends until it is done, as NIOFS does with its thread pool.

import Foundation

enum BlockingIO {
    static func run<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<R, any Error>) in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.stackSize = 1 << 22
            thread.start()
        }
    }
}
