import Testing
@testable import ZFSPool
