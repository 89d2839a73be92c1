// Framing of the control protocol (docs/daemon.md §1):
//
//   0      4                4 + H                  4 + H + P
//   ┌──────┬────────────────┬──────────────────────┐
//   │  H   │ header (JSON)  │ payload (P bytes)    │   H: UInt32 big-endian, 1 … 1 MiB
//   └──────┴────────────────┴──────────────────────┘   P: header "payload_bytes", 0 … 16 MiB
//
// The header is one UTF-8 JSON object. A payload (object bytes, a packed XDR config nvlist)
// follows only when the header's `payload_bytes` says so. Nothing in a frame is trusted: the
// lengths are checked before anything is allocated, so a hostile or broken peer costs at most
// one header's worth of memory before it is refused.

/// One message of the control protocol: a JSON header and an optional binary payload.
public struct ControlFrame: Hashable, Sendable {
    /// Largest header, in bytes (1 MiB).
    public static let maximumHeaderByteCount = 1 << 20
    /// Largest payload, in bytes (16 MiB: one object of `SPA_MAXBLOCKSIZE`).
    public static let maximumPayloadByteCount = 16 << 20
    /// Bytes of the big-endian header length in front of every frame.
    public static let lengthPrefixByteCount = 4
    /// The header key that gives the payload length.
    public static let payloadLengthKey = "payload_bytes"

    /// The JSON header (an object). ``encode()`` sets `payload_bytes` from ``payload``.
    public var header: [String: JSON]
    public var payload: [UInt8]

    public init(header: [String: JSON], payload: [UInt8] = []) {
        self.header = header
        self.payload = payload
    }

    /// The frame's bytes on the wire.
    public func encode() -> [UInt8] {
        var members = header
        if payload.isEmpty {
            members.removeValue(forKey: Self.payloadLengthKey)
        } else {
            members[Self.payloadLengthKey] = .unsigned(UInt64(payload.count))
        }
        let json = JSON(members).encoded()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.lengthPrefixByteCount + json.count + payload.count)
        let length = UInt32(json.count)
        bytes += [UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff), UInt8(length & 0xff)]
        bytes += json
        bytes += payload
        return bytes
    }

    /// The header length a 4-byte prefix announces.
    /// - Throws: ``ControlError`` `.truncatedFrame` when `prefix` is not 4 bytes,
    ///   `.frameTooLarge` for 0 or more than ``maximumHeaderByteCount``.
    public static func headerByteCount(prefix: some Collection<UInt8>) throws(ControlError) -> Int {
        guard prefix.count == lengthPrefixByteCount else {
            throw ControlError(.truncatedFrame, "a control frame's length prefix is 4 bytes, not \(prefix.count)")
        }
        let length = prefix.reduce(0) { ($0 << 8) | Int($1) }
        guard length > 0, length <= maximumHeaderByteCount else {
            throw ControlError(
                .frameTooLarge,
                "control frame header of \(length) bytes refused: a header is 1 to \(maximumHeaderByteCount) bytes "
                    + "of JSON after a 4-byte big-endian length (docs/daemon.md)")
        }
        return length
    }

    /// Parses a header and returns it with the payload length it announces.
    /// - Throws: ``ControlError`` `.badHeader`, `.payloadTooLarge`.
    public static func parseHeader(_ bytes: some Collection<UInt8>) throws(ControlError) -> (
        header: [String: JSON], payloadByteCount: Int
    ) {
        let value: JSON
        do { value = try JSON.decode(bytes) } catch {
            throw ControlError(
                .badHeader, "control frame header is not valid JSON: \(error)", cause: error)
        }
        guard let header = value.objectValue else {
            throw ControlError(.badHeader, "control frame header must be a JSON object")
        }
        var payload = 0
        if let announced = header[payloadLengthKey] {
            guard let count = announced.uint64Value else {
                throw ControlError(.badHeader, "control frame header: \(payloadLengthKey) must be a non-negative integer")
            }
            guard count <= UInt64(maximumPayloadByteCount) else {
                throw ControlError(
                    .payloadTooLarge,
                    "control frame payload of \(count) bytes refused: at most \(maximumPayloadByteCount) bytes (16 MiB)")
            }
            payload = Int(count)
        }
        return (header, payload)
    }

    /// Decodes the first frame of `bytes`, or returns nil when `bytes` holds only part of one.
    ///
    /// - Returns: the frame and the number of bytes it took.
    /// - Throws: ``ControlError`` `.frameTooLarge`, `.badHeader`, `.payloadTooLarge` as soon as
    ///   the bytes seen prove the frame bad.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(ControlError) -> (frame: ControlFrame, byteCount: Int)? {
        guard bytes.count >= lengthPrefixByteCount else { return nil }
        let start = bytes.startIndex
        let headerCount = try headerByteCount(prefix: bytes[start..<start + lengthPrefixByteCount])
        let headerEnd = start + lengthPrefixByteCount + headerCount
        guard bytes.endIndex >= headerEnd else { return nil }
        let (header, payloadCount) = try parseHeader(bytes[(start + lengthPrefixByteCount)..<headerEnd])
        guard bytes.endIndex >= headerEnd + payloadCount else { return nil }
        let frame = ControlFrame(header: header, payload: Array(bytes[headerEnd..<headerEnd + payloadCount]))
        return (frame, lengthPrefixByteCount + headerCount + payloadCount)
    }
}
