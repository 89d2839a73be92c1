import SystemPackage
import Testing
@testable import ZFSDevice

@Suite("DeviceError")
struct DeviceErrorTests {
    @Test(
        arguments: [
            (Errno.noSuchFileOrDirectory, DeviceError.Code.notFound),
            (.notDirectory, .notFound),
            (.noSuchAddressOrDevice, .notFound),
            (.operationNotSupportedByDevice, .notFound),
            (.permissionDenied, .permissionDenied),
            (.notPermitted, .permissionDenied),
            (.readOnlyFileSystem, .permissionDenied),
            (.ioError, .ioError),
            (.invalidArgument, .invalidArgument),
            (.tooManySymbolicLinkLevels, .invalidArgument),
            (.fileNameTooLong, .invalidArgument),
            (.noSpace, .unknown),
            (.tooManyOpenFiles, .unknown),
            (.resourceBusy, .unknown),
        ]
    )
    func errnoMapsToCode(errno: Errno, code: DeviceError.Code) {
        #expect(DeviceError.Code(errno: errno) == code)
    }

    @Test func descriptionIsTheMessage() {
        let error = DeviceError(code: .ioError, message: "cannot read 1 bytes at offset 0x0 of /dev/x: boom", path: "/dev/x")
        #expect(error.description == "cannot read 1 bytes at offset 0x0 of /dev/x: boom")
        #expect("\(error)" == error.message)
    }

    @Test func detailedDescriptionListsEveryField() {
        let error = DeviceError(
            code: .ioError,
            message: "cannot read 512 bytes at offset 0x400 of /dev/sdb: pread failed after 0 bytes: Input/output error",
            path: "/dev/sdb",
            offset: 0x400,
            systemCall: "pread",
            cause: .ioError,
            fileID: "ZFSDevice/FileBlockDevice.swift",
            line: 42
        )
        #expect(
            error.detailedDescription() == """
                DeviceError: I/O error
                ├─ message: cannot read 512 bytes at offset 0x400 of /dev/sdb: pread failed after 0 bytes: Input/output error
                ├─ path: /dev/sdb
                ├─ offset: 0x400
                ├─ system call: pread
                ├─ cause: Input/output error (errno 5)
                └─ location: ZFSDevice/FileBlockDevice.swift:42
                """
        )
    }

    @Test func errorsRecordWhereTheyWereRaised() {
        let error = DeviceError(code: .closed, message: "m", path: "/p")
        #expect(error.location.fileID == "ZFSDeviceTests/DeviceErrorTests.swift")
        #expect(error.location.line == #line - 2)
    }

    @Test func shortReadAndWritePastEndMessages() {
        #expect(
            DeviceError.shortRead(path: "/tmp/a.img", offset: 0x7fc_0000, requested: 262_144, available: 131_072, deviceSize: 134_086_656)
                .message
                == "cannot read 262144 bytes at offset 0x7fc0000 of /tmp/a.img: only 131072 bytes remain (the device is 134086656 bytes)"
        )
        let pastEnd = DeviceError.writePastEnd(path: "/dev/sdb", offset: 0x1000, count: 8192, deviceSize: 8192)
        #expect(pastEnd.code == .outOfRange)
        #expect(pastEnd.offset == 0x1000)
    }
}

/// The bookkeeping that lets `close()` wait for in-flight operations instead of closing a
/// descriptor under them. Each test is a sequence of events and what each returned.
@Suite("FileBlockDevice close bookkeeping")
struct UsageTests {
    @Test func closeWithNothingInFlightClosesNow() {
        var usage = FileBlockDevice.Usage()
        let steps = [
            "close: \(usage.beginClose())",
            "close: \(usage.beginClose())",
            "begin: \(usage.beginOperation())",
        ]
        #expect(steps == ["close: closeNow", "close: alreadyClosing", "begin: false"])
    }

    @Test func closeDuringOperationsIsDeferredToTheLastOne() {
        var usage = FileBlockDevice.Usage()
        let steps = [
            "begin: \(usage.beginOperation())",
            "begin: \(usage.beginOperation())",
            "close: \(usage.beginClose())",
            "begin: \(usage.beginOperation())",  // no new operations once closing
            "end: \(usage.endOperation())",  // one still in flight
            "end: \(usage.endOperation())",  // the last one closes the descriptor
            "close: \(usage.beginClose())",
        ]
        #expect(
            steps == [
                "begin: true", "begin: true", "close: deferred", "begin: false", "end: false", "end: true",
                "close: alreadyClosing",
            ]
        )
    }

    @Test func operationsWithoutCloseNeverClose() {
        var usage = FileBlockDevice.Usage()
        let steps = [
            "begin: \(usage.beginOperation())",
            "end: \(usage.endOperation())",
            "close: \(usage.beginClose())",
        ]
        #expect(steps == ["begin: true", "end: false", "close: closeNow"])
    }
}
