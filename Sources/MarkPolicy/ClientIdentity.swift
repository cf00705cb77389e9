import MarkCore

/// Who sent a query, as far as the forwarder knows: the address always, the MAC address
/// (from the neighbour table) and the input interface when it could find them.
public struct ClientIdentity: Sendable, Hashable {
    public var address: IPAddress
    /// 6 bytes, or nil when unknown.
    public var mac: [UInt8]?
    /// The input interface name, or nil when unknown.
    public var interface: String?

    public init(address: IPAddress, mac: [UInt8]? = nil, interface: String? = nil) {
        self.address = address; self.mac = mac; self.interface = interface
    }
}
