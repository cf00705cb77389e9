import Testing
import MarkCore

@Suite("Connection pool per (mark, upstream)")
struct ConnectionPoolStateTests {
    @Test func packsQueriesOntoOneConnectionUntilFull() {
        var p = ConnectionPoolState(limits: .init(maxConnections: 2, maxInFlight: 3))
        #expect(p.route(now: 0) == .open(1))
        #expect(p.route(now: 0) == .use(1, reused: true), "an opening connection takes queries too")
        #expect(p.route(now: 0) == .use(1, reused: true))
        #expect(p.route(now: 0) == .open(2), "full: a second connection")
        #expect(p.route(now: 0) == .use(2, reused: true))
        #expect(p.route(now: 0) == .use(2, reused: true))
        // Both full, no more allowed: the least loaded takes it (TCP queues it).
        p.finished(1, now: 1)
        #expect(p.route(now: 1) == .use(1, reused: true))
        #expect(p.route(now: 1) == .use(1, reused: true))
        #expect(p.connections.count == 2, "never more than maxConnections")
        #expect(p.connections.map(\.inFlight) == [4, 3])
    }

    @Test func reuseAfterAnswers() {
        var p = ConnectionPoolState(limits: .init(maxConnections: 4, maxInFlight: 100))
        #expect(p.route(now: 0) == .open(1))
        p.opened(1, now: 0)
        p.finished(1, now: 0.1)
        for i in 0..<100 {
            #expect(p.route(now: Double(i)) == .use(1, reused: true))
            p.finished(1, now: Double(i))
        }
        #expect(p.connections.count == 1)
        #expect(p.connection(1)?.carried == 101)
    }

    @Test func idleCloseHonoursKeepalive() {
        var p = ConnectionPoolState(limits: .init(maxConnections: 2, maxInFlight: 1, idleTimeout: 10))
        _ = p.route(now: 0)
        _ = p.route(now: 0)
        p.opened(1, now: 0); p.opened(2, now: 0)
        p.finished(1, now: 1)
        #expect(p.idle(now: 10.5).isEmpty, "10 s after its last answer, not before")
        #expect(p.idle(now: 11) == [1], "connection 2 still has a query outstanding")
        p.keepalive(2, seconds: 3)
        p.finished(2, now: 11)
        #expect(p.idle(now: 12.5) == [1])
        #expect(p.idle(now: 13) == [1, 2], "a sweep interval (1 s) before the server's edns-tcp-keepalive of 3 s")
        p.keepalive(2, seconds: 0.5)
        #expect(p.connection(2)?.idleTimeout == 0, "a keepalive shorter than the margin: closed once idle")
        p.keepalive(2, seconds: 600)
        #expect(p.connection(2)?.idleTimeout == 10, "never longer than ours")
        let first = p.closed(1, failedToOpen: false, now: 13)
        let again = p.closed(1, failedToOpen: false, now: 13)
        #expect(first)
        #expect(!again, "already gone")
        #expect(p.failures == 0, "an orderly close is no failure")
    }

    @Test func backoffDoublesAndResets() {
        var p = ConnectionPoolState(limits: .init(maxConnections: 1, backoffBase: 0.5, backoffMax: 2))
        #expect(p.route(now: 0) == .open(1))
        p.closed(1, failedToOpen: true, now: 0)
        #expect(p.route(now: 0.4) == .backedOff(until: 0.5))
        #expect(p.route(now: 0.5) == .open(2))
        p.closed(2, failedToOpen: true, now: 1)
        #expect(p.route(now: 1.9) == .backedOff(until: 2))
        #expect(p.route(now: 2) == .open(3))
        p.closed(3, failedToOpen: true, now: 2)
        #expect(p.retryAt == 4)
        #expect(p.route(now: 4) == .open(4))
        p.closed(4, failedToOpen: true, now: 4)
        #expect(p.retryAt == 6, "at most backoffMax")
        #expect(p.route(now: 6) == .open(5))
        p.opened(5, now: 6)
        #expect(p.failures == 0)
        p.closed(5, failedToOpen: false, now: 7)
        #expect(p.route(now: 7) == .open(6), "no backoff after a connection that worked")
    }

    @Test func backedOffPoolStillUsesLiveConnections() {
        var p = ConnectionPoolState(limits: .init(maxConnections: 2, maxInFlight: 1))
        _ = p.route(now: 0)
        p.opened(1, now: 0)
        #expect(p.route(now: 0) == .open(2))
        p.closed(2, failedToOpen: true, now: 0)
        #expect(p.route(now: 0.1) == .use(1, reused: true), "backed off: the live connection, over its limit")
    }
}

@Suite("DoH request and response mapping")
struct DoHExchangeTests {
    let query: [UInt8] = [0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x77, 0x77, 0x77, 0, 0, 1, 0, 1]

    @Test func post() throws {
        var u = StreamUpstream(kind: .https(path: "/dns-query"), endpoint: try Endpoint.parse("192.0.2.1:443"),
                               serverName: "doh.example")
        u.method = .post
        let r = DoHExchange.request(for: query, upstream: u)
        #expect(r.headers.map(\.0) == [":method", ":scheme", ":authority", ":path", "accept", "content-type", "content-length"])
        #expect(r.headers.map(\.1) == ["POST", "https", "doh.example", "/dns-query", "application/dns-message",
                                       "application/dns-message", "21"])
        #expect(r.body == query)
    }

    @Test func get() throws {
        var u = StreamUpstream(kind: .https(path: "/q"), endpoint: try Endpoint.parse("192.0.2.1:8443"))
        u.method = .get
        let r = DoHExchange.request(for: query, upstream: u)
        #expect(r.headers.first { $0.0 == ":path" }?.1 == "/q?dns=" + Base64URL.encode(query))
        #expect(r.headers.first { $0.0 == ":authority" }?.1 == "192.0.2.1:8443")
        #expect(r.body.isEmpty)
    }

    @Test func responses() {
        let answer = [UInt8](repeating: 0, count: 12)
        #expect(DoHExchange.outcome(status: "200", contentType: "application/dns-message", body: answer) == .answer(answer))
        #expect(DoHExchange.outcome(status: "200", contentType: "Application/DNS-Message; charset=x", body: answer) == .answer(answer))
        for (status, type, body) in [("404", "application/dns-message", answer), ("200", "text/html", answer),
                                     ("200", "application/dns-message", [UInt8](repeating: 0, count: 5)),
                                     ("200", nil, answer)] as [(String, String?, [UInt8])] {
            guard case .httpError = DoHExchange.outcome(status: status, contentType: type, body: body) else {
                Issue.record("\(status) \(type ?? "-") \(body.count) bytes should be an HTTP error")
                continue
            }
        }
    }
}
