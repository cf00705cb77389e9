import Foundation
import MarkCore
import MarkStats
import Testing

@Suite("Query log lines")
struct QueryLogLineTests {
    func parse(_ line: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(object as? [String: Any])
    }

    @Test("A forwarded query's line has every field with the right value")
    func fields() throws {
        let e = QueryEvent(time: 1_700_000_000.25, client: IPAddress("127.0.0.10")!, proto: .udp, connmark: 0x10,
                           markName: "alice", qname: "example.test.", qtype: 28, rcode: 3,
                           upstream: Endpoint(address: IPAddress("127.0.0.2")!, port: 5353), latency: 0.0123456)
        let line = e.jsonLine
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
        let o = try parse(line)
        #expect(o["time"] as? Double == 1_700_000_000.25)
        #expect(o["client"] as? String == "127.0.0.10")
        #expect(o["connmark"] as? Int == 16)
        #expect(o["mark"] as? String == "alice")
        #expect(o["qname"] as? String == "example.test.")
        #expect(o["qtype"] as? Int == 28)
        #expect(o["rcode"] as? String == "NXDOMAIN")
        #expect(o["upstream"] as? String == "127.0.0.2:5353")
        #expect(o["latency_ms"] as? Double == 12.346)
        #expect(o["cache_hit"] as? Bool == false)
        #expect(o["local"] == nil)
    }

    @Test("An encrypted upstream is named as written")
    func encryptedUpstreamName() throws {
        var e = QueryEvent(time: 1, client: IPAddress("127.0.0.10")!, proto: .udp, connmark: 0x10, markName: "alice",
                           qname: "example.test.", qtype: 1, rcode: 0,
                           upstream: Endpoint(address: IPAddress("127.0.0.2")!, port: 853), latency: 0)
        e.upstreamName = "tls://127.0.0.2:853#dns.test"
        #expect(try parse(e.jsonLine)["upstream"] as? String == "tls://127.0.0.2:853#dns.test")
    }

    @Test("No mark, no upstream and a local answer are written as null and a reason")
    func localAnswer() throws {
        let e = QueryEvent(time: 1, client: IPAddress("::1")!, proto: .tcp, connmark: nil, markName: "none",
                           qname: "blocked.test.", qtype: 1, rcode: 0, latency: 0, cacheHit: true, localReason: "blocked")
        let o = try parse(e.jsonLine)
        #expect(o["connmark"] is NSNull && o["upstream"] is NSNull)
        #expect(o["local"] as? String == "blocked" && o["cache_hit"] as? Bool == true && o["proto"] as? String == "tcp")
    }

    @Test("Any characters in a name still make valid JSON")
    func escaping() throws {
        let nasty = "a\"b\\c\n\u{1}\u{7f}é."
        let e = QueryEvent(time: 0, client: .v4(1, 2, 3, 4), proto: .udp, connmark: 0, markName: "x\"y",
                           qname: nasty, qtype: 1, rcode: 0, latency: 0)
        let o = try parse(e.jsonLine)
        #expect(o["qname"] as? String == nasty)
        #expect(o["mark"] as? String == "x\"y")
    }

    @Test("Rcode names are a bounded set")
    func rcodes() {
        #expect(QueryEvent.rcodeName(2) == "SERVFAIL" && QueryEvent.rcodeName(5) == "REFUSED")
        #expect(QueryEvent.rcodeName(0xF9) == "RCODE9")
    }
}
