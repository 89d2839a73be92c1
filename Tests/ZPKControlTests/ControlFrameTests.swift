// Framing of the control protocol without processes: round trips with exact 64-bit integers,
// every prefix of a frame asks for more bytes, and malformed frames throw the right code.

import Testing
@testable import ZPKControl

@Suite struct ControlFrameTests {
    static let header: [String: JSON] = [
        "op": "object.put", "args": ["pool": "tank", "guid": .unsigned(UInt64.max), "delta": .signed(-7)],
    ]

    @Test func roundTripKeepsExactIntegersAndPayload() throws {
        let payload = (0..<300).map { UInt8($0 % 256) }
        let bytes = ControlFrame(header: Self.header, payload: payload).encode()
        let decoded = try #require(try ControlFrame.decode(bytes[...]))
        #expect(decoded.byteCount == bytes.count)
        #expect(decoded.frame.payload == payload)
        #expect(decoded.frame.header["args"]?["guid"] == .unsigned(18_446_744_073_709_551_615))
        #expect(decoded.frame.header["args"]?["delta"] == .signed(-7))
        #expect(decoded.frame.header["payload_bytes"] == .unsigned(300))
        // The length prefix is big-endian and counts the header only.
        let headerLength = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        #expect(headerLength == bytes.count - 4 - payload.count)
    }

    @Test func everyPrefixAsksForMoreBytes() throws {
        let bytes = ControlFrame(header: Self.header, payload: [1, 2, 3]).encode()
        for length in 0..<bytes.count {
            #expect(try ControlFrame.decode(bytes[0..<length]) == nil, "prefix of \(length) bytes")
        }
        // Two frames back to back: the first is decoded, the rest left alone.
        let two = bytes + ControlFrame(header: ["op": "ping"]).encode()
        #expect(try ControlFrame.decode(two[...])?.byteCount == bytes.count)
    }

    static func frame(header text: String) -> [UInt8] {
        let json = Array(text.utf8)
        let n = UInt32(json.count)
        return [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + json
    }

    @Test(arguments: [
        ([0, 0, 0, 0], "frameTooLarge"),
        ([0x00, 0x10, 0x00, 0x01], "frameTooLarge"),
        ([0xff, 0xff, 0xff, 0xff], "frameTooLarge"),
        (frame(header: "{not json"), "badHeader"),
        (frame(header: "[1,2]"), "badHeader"),
        (frame(header: "{\"op\":\"ping\",\"payload_bytes\":-1}"), "badHeader"),
        (frame(header: "{\"op\":\"ping\",\"payload_bytes\":\"12\"}"), "badHeader"),
        (frame(header: "{\"op\":\"ping\",\"payload_bytes\":16777217}"), "payloadTooLarge"),
    ] as [([UInt8], String)])
    func malformedFramesThrow(bytes: [UInt8], code: String) {
        #expect {
            _ = try ControlFrame.decode(bytes[...])
        } throws: { error in
            (error as? ControlError)?.code.description == code
        }
    }

    @Test func largestPayloadIsAccepted() throws {
        let parsed = try ControlFrame.parseHeader(Array("{\"payload_bytes\":16777216}".utf8))
        #expect(parsed.payloadByteCount == 16 << 20)
        #expect(ControlFrame.maximumHeaderByteCount == 1_048_576)
        #expect(ControlFrame.maximumPayloadByteCount == 16_777_216)
    }

    @Test func errorReplyShape() throws {
        let reply = ControlErrorReply(code: "unknownPool", message: "no pool named 'x'", exit: 1)
        let text = String(decoding: JSON(reply.frame.header).encoded(), as: UTF8.self)
        #expect(text == #"{"error":{"code":"unknownPool","exit":1,"message":"no pool named 'x'"}}"#)
    }
}
