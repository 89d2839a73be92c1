import Testing
@testable import ZFSMultihost
