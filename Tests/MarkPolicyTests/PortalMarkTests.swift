import MarkCore
import MarkPolicy
import Testing

@Suite("Captive Portal API: the client's mark")
struct PortalMarkTests {
    typealias F = Fixtures
    static let policy = """
        [conntrack]
        mask = 0xff00

        [[pool]]
        name = "wan"
        servers = ["127.0.0.2:53"]

        [[mark]]
        value = 0x0100
        name = "authenticated"
        sessions = true

        [[mark]]
        value = 0x0300
        name = "garden"
        action = "walled-garden"
        portal = ["192.0.2.99"]

        [[client]]
        name = "guests"
        match = ["10.0.0.0/24"]
        mark = "garden"
        """

    @Test("session first, then the connection's connmark (our bits), then the client rules")
    func evidenceOrder() throws {
        let c = try F.load(Self.policy)
        let guest = ClientIdentity(address: try #require(IPAddress("10.0.0.5")))
        let other = ClientIdentity(address: try #require(IPAddress("10.9.0.5")))
        #expect(c.portalMark(session: "authenticated", connmark: 0x300, client: guest)?.name == "authenticated")
        // The kernel marked this connection (a MAC set, another rule): that wins over the address.
        #expect(c.portalMark(session: nil, connmark: 0x100, client: guest)?.name == "authenticated")
        #expect(c.portalMark(session: nil, connmark: 0x301, client: other)?.name == "garden", "bits outside the mask ignored")
        // No connmark in our bits, or one no [[mark]] has: the client rules decide.
        #expect(c.portalMark(session: nil, connmark: 0x0001, client: guest)?.name == "garden")
        #expect(c.portalMark(session: nil, connmark: 0x0700, client: guest)?.name == "garden")
        #expect(c.portalMark(session: nil, connmark: nil, client: guest)?.name == "garden")
        #expect(c.portalMark(session: nil, connmark: nil, client: other) == nil)
        #expect(c.portalMark(session: "gone", connmark: nil, client: other) == nil, "a session of a removed mark")
    }
}
