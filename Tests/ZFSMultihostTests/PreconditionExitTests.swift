import Testing
import ZFSFormat

@testable import ZFSMultihost

/// Programmer errors trap (STYLE §4): each `precondition` of this module has an exit test.
@Suite struct PreconditionExitTests {
    @Test func extensionOutsideItsRangeTraps() async {
        await #expect(processExitsWith: .failure) {
            _ = ActivityCheck.extended(nanoseconds: 1_000, randomPerMille: 250)
        }
    }

    @Test func zeroPollIntervalTraps() async {
        await #expect(processExitsWith: .failure) {
            let reference = Uberblock(txg: TXG(10), guidSum: 1, timestampInSeconds: 1)
            _ = ActivityCheckStateMachine(
                reference: reference, host: LabelHost(hostname: "a", hostID: 1), duration: .seconds(1),
                pollInterval: .zero, now: .zero)
        }
    }
}
