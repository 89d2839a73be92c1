import Foundation
import Glibc
import SystemPackage
import Testing
import ZFSDevice

/// What `FileBlockDevice(path:mode:)` refuses, with which code and message. Refusals must not
/// block: opening a FIFO for reading would wait for a writer forever, so the suite has a time
/// limit that turns a hang into a failure.
@Suite("Opening FileBlockDevice", .timeLimit(.minutes(1)))
struct OpeningTests {
    static let modes: [FileBlockDevice.Mode] = [.readOnly, .readWrite]

    @Test(arguments: modes)
    func missingFileIsNotFoundAndIsNotCreated(mode: FileBlockDevice.Mode) throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/missing.img"
            let error = #expect(throws: DeviceError.self) { try FileBlockDevice(path: path, mode: mode) }
            #expect(error?.code == .notFound)
            #expect(error?.message == "cannot open \(path): no such file or directory")
            #expect(error?.path == path)
            #expect(error?.systemCall == "stat")
            #expect(error?.cause == .noSuchFileOrDirectory)
            #expect(!FileManager.default.fileExists(atPath: path))
        }
    }

    @Test func missingDirectoryInThePathIsNotFound() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/no/such/dir.img"
            let error = #expect(throws: DeviceError.self) { try FileBlockDevice(path: path) }
            #expect(error?.code == .notFound)
        }
    }

    @Test(arguments: modes)
    func directoryIsNotADevice(mode: FileBlockDevice.Mode) throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/sub"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            let error = #expect(throws: DeviceError.self) { try FileBlockDevice(path: path, mode: mode) }
            #expect(error?.code == .notADevice)
            #expect(error?.message == "cannot open \(path): it is a directory, not a block device or a regular file")
            #expect(error?.systemCall == nil)
        }
    }

    @Test(arguments: modes)
    func fifoIsNotADeviceAndDoesNotBlock(mode: FileBlockDevice.Mode) throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/pipe"
            #expect(mkfifo(path, 0o600) == 0)
            let error = #expect(throws: DeviceError.self) { try FileBlockDevice(path: path, mode: mode) }
            #expect(error?.code == .notADevice)
            #expect(error?.message == "cannot open \(path): it is a FIFO (named pipe), not a block device or a regular file")
        }
    }

    @Test func socketIsNotADevice() throws {
        try withTemporaryDirectory { directory in
            let path = "\(directory)/sock"
            let socketDescriptor = try bindUnixSocket(at: path)
            defer { Glibc.close(socketDescriptor) }
            let error = #expect(throws: DeviceError.self) { try FileBlockDevice(path: path) }
            #expect(error?.code == .notADevice)
            #expect(error?.message == "cannot open \(path): it is a socket, not a block device or a regular file")
        }
    }

    @Test func characterDeviceIsNotADevice() throws {
        let error = #expect(throws: DeviceError.self) { try FileBlockDevice(path: "/dev/null", mode: .readWrite) }
        #expect(error?.code == .notADevice)
        #expect(error?.message == "cannot open /dev/null: it is a character device, not a block device or a regular file")
    }

    @Test func danglingSymbolicLinkIsNotFound() throws {
        try withTemporaryDirectory { directory in
            let link = "\(directory)/dangling.img"
            let target = "\(directory)/gone.img"
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
            let error = #expect(throws: DeviceError.self) { try FileBlockDevice(path: link) }
            #expect(error?.code == .notFound)
            #expect(error?.message == "cannot open \(link): it is a symbolic link to '\(target)', which does not exist")
            #expect(error?.cause == .noSuchFileOrDirectory)
        }
    }

    @Test func symbolicLinkToAFifoIsNotADevice() throws {
        try withTemporaryDirectory { directory in
            let fifo = "\(directory)/pipe"
            let link = "\(directory)/link"
            #expect(mkfifo(fifo, 0o600) == 0)
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: fifo)
            let error = #expect(throws: DeviceError.self) { try FileBlockDevice(path: link) }
            #expect(error?.code == .notADevice)
        }
    }

    /// The import scan's situation: open everything in a directory; only the regular file opens,
    /// and nothing hangs.
    @Test func scanningADirectoryOfOddFilesNeverHangs() throws {
        try withTemporaryDirectory { directory in
            try makeFile(at: "\(directory)/disk.img", bytes: patternBytes(count: 4096))
            #expect(mkfifo("\(directory)/fifo1", 0o600) == 0)
            #expect(mkfifo("\(directory)/fifo2", 0o644) == 0)
            try FileManager.default.createDirectory(atPath: "\(directory)/subdir", withIntermediateDirectories: false)
            try FileManager.default.createSymbolicLink(atPath: "\(directory)/dangling", withDestinationPath: "nowhere")
            try FileManager.default.createSymbolicLink(atPath: "\(directory)/null", withDestinationPath: "/dev/null")
            let socketDescriptor = try bindUnixSocket(at: "\(directory)/sock")
            defer { Glibc.close(socketDescriptor) }

            var outcomes: [String: String] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
                do throws(DeviceError) {
                    let device = try FileBlockDevice(path: "\(directory)/\(name)", mode: .readWrite)
                    outcomes[name] = "opened \(device.sizeInBytes)"
                } catch {
                    outcomes[name] = "\(error.code)"
                }
            }
            #expect(
                outcomes == [
                    "disk.img": "opened 4096",
                    "fifo1": "not a device",
                    "fifo2": "not a device",
                    "subdir": "not a device",
                    "dangling": "not found",
                    "null": "not a device",
                    "sock": "not a device",
                ]
            )
        }
    }

    // Permission errors are not tested through the file system: these tests run as root, which
    // bypasses file modes. The errno-to-code mapping is tested in DeviceErrorTests instead.
}

/// Creates a listening-capable Unix-domain socket bound at `path`; returns its descriptor.
private func bindUnixSocket(at path: String) throws -> CInt {
    let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw Errno(rawValue: errno) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let pathBytes = Array(path.utf8)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard pathBytes.count < capacity else {
        Glibc.close(descriptor)
        throw Errno.fileNameTooLong
    }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: pathBytes)
        raw[pathBytes.count] = 0
    }
    let status = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(descriptor, socketAddress, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    guard status == 0 else {
        let error = Errno(rawValue: errno)
        Glibc.close(descriptor)
        throw error
    }
    return descriptor
}
