/// In-place edits of a message a forwarder relays: only the ID and the EDNS payload
/// size ever change, so nothing is re-encoded.
public enum DNSRewrite {
    /// Writes `id` into the first two bytes. The buffer must hold at least a header.
    public static func setID(_ id: UInt16, in bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count >= 2)
        bytes[0] = UInt8(id >> 8)
        bytes[1] = UInt8(id & 0xFF)
    }

    /// The payload size to advertise upstream for a client that advertised `client`:
    /// never more than markdns's 1232, never less than the 512 every DNS speaker accepts,
    /// and never more than the client can take, so the answer always fits the client.
    public static func upstreamPayloadSize(forClient client: UInt16) -> UInt16 {
        max(512, min(client, DNSResponseBuilder.advertisedPayloadSize))
    }

    public static func setPayloadSize(_ size: UInt16, at offset: Int,
                                      in bytes: UnsafeMutableRawBufferPointer) {
        precondition(offset + 2 <= bytes.count)
        bytes[offset] = UInt8(size >> 8)
        bytes[offset + 1] = UInt8(size & 0xFF)
    }
}
