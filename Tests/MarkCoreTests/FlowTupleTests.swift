import Testing
import MarkCore

@Suite("FlowTuple")
struct FlowTupleTests {
    @Test func replyTupleIsLocalToClient() throws {
        let client = try Endpoint.parse("10.0.0.7:40000")
        let local = try Endpoint.parse("10.0.0.1:53")
        let f = FlowTuple(proto: .udp, client: client, local: local)
        let r = f.replyTuple
        #expect(r.source == local)
        #expect(r.destination == client)
        #expect(r.source != r.destination)
    }

    @Test func replyTupleV6() throws {
        let client = try Endpoint.parse("[2001:db8::7]:40000")
        let local = try Endpoint.parse("[2001:db8::1]:5353")
        let r = FlowTuple(proto: .tcp, client: client, local: local).replyTuple
        #expect(r.source.address == local.address && r.source.port == 5353)
        #expect(r.destination.address == client.address && r.destination.port == 40000)
    }

    @Test func isConsistent() throws {
        let v4a = try Endpoint.parse("1.1.1.1:1")
        let v4b = try Endpoint.parse("2.2.2.2:2")
        let v6a = try Endpoint.parse("[::1]:1")
        let v6b = try Endpoint.parse("[::2]:2")
        let mapped = try Endpoint.parse("[::ffff:2.2.2.2]:2")
        #expect(FlowTuple(proto: .udp, client: v4a, local: v4b).isConsistent)
        #expect(FlowTuple(proto: .udp, client: v6a, local: v6b).isConsistent)
        #expect(!FlowTuple(proto: .udp, client: v4a, local: v6b).isConsistent)
        #expect(!FlowTuple(proto: .tcp, client: v6a, local: v4b).isConsistent)
        #expect(!FlowTuple(proto: .udp, client: v4a, local: mapped).isConsistent)
    }

    @Test func protocolNumbersAndDescriptions() throws {
        #expect(TransportProtocol.tcp.rawValue == 6)
        #expect(TransportProtocol.udp.rawValue == 17)
        #expect(TransportProtocol.tcp.description == "tcp")
        #expect(TransportProtocol.udp.description == "udp")
        let f = FlowTuple(proto: .udp, client: try Endpoint.parse("[::1]:999"),
                          local: try Endpoint.parse("[::1]:53"))
        #expect(f.description == "udp [::1]:999 -> [::1]:53")
    }

    @Test func hashableDistinguishesProtocolAndDirection() throws {
        let a = try Endpoint.parse("1.1.1.1:1000")
        let b = try Endpoint.parse("2.2.2.2:53")
        let flows: Set<FlowTuple> = [
            FlowTuple(proto: .udp, client: a, local: b),
            FlowTuple(proto: .udp, client: a, local: b),
            FlowTuple(proto: .tcp, client: a, local: b),
            FlowTuple(proto: .udp, client: b, local: a),
        ]
        #expect(flows.count == 3)
    }
}
