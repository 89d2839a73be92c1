// Blocking socket calls off the cooperative pool (STYLE §2): each call runs on a thread of its
// own and the calling task suspends until it returns, as ZFSPool's BlockingIO does for devices.

import Foundation

enum BlockingThread {
    static func run<R: Sendable, Failure: Error>(
        _ body: @escaping @Sendable () throws(Failure) -> R
    ) async throws(Failure) -> R {
        let result: Result<R, Failure> = await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: Result { () throws(Failure) -> R in try body() })
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        return try result.get()
    }
}
