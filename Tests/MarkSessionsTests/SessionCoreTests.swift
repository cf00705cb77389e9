import Testing
import MarkCore
@testable import MarkSessions

@Suite("Session durations, ranges and clients")
struct SessionValueTests {
    @Test func durations() {
        #expect(SessionDuration.parse("90s") == .success(90))
        #expect(SessionDuration.parse("15m") == .success(900))
        #expect(SessionDuration.parse("2h") == .success(7200))
        #expect(SessionDuration.parse("7d") == .success(604_800))
        #expect(SessionDuration.parse("365d") == .success(SessionDuration.maxSeconds))
        for bad in ["", "s", "90", "0s", "1.5h", "-3s", "1h30m", "366d", "99999999999999s", " 2h", "2H"] {
            guard case .failure = SessionDuration.parse(bad) else { Issue.record("accepted '\(bad)'"); continue }
        }
        #expect(SessionDuration.format(604_800) == "7d")
        #expect(SessionDuration.format(5400) == "90m")
        #expect(SessionDuration.format(61) == "61s")
    }

    @Test func ranges() {
        #expect(MarkRange.parse("0x1000-0x1fff") == .success(MarkRange(lower: 0x1000, upper: 0x1fff)!))
        #expect(MarkRange.parse("10-12").map(\.count) == .success(3))
        for bad in ["0x1000", "0-5", "9-3", "0x10-zz", "1-2-3", ""] {
            guard case .failure = MarkRange.parse(bad) else { Issue.record("accepted '\(bad)'"); continue }
        }
    }

    @Test func clients() throws {
        #expect(try SessionClient.parse("192.0.2.7").get().family == .v4)
        #expect(try SessionClient.parse("2001:db8::7").get().family == .v6)
        #expect(try SessionClient.parse("AA:bb:cc:00:11:22").get() == .mac(MACAddress("aa:bb:cc:00:11:22")!))
        #expect(try SessionClient.parse("aa:bb:cc:00:11:22").get().description == "aa:bb:cc:00:11:22")
        for bad in ["0.0.0.0", "::", "192.0.2.300", "guest", "aa:bb:cc:00:11"] {
            guard case .failure = SessionClient.parse(bad) else { Issue.record("accepted '\(bad)'"); continue }
        }
    }

    @Test func jsonEscaping() {
        #expect(JSONText.string("a\"b\\c\n\u{1}") == "\"a\\\"b\\\\c\\n\\u0001\"")
    }
}

@Suite("Session state machine")
struct SessionStateMachineTests {
    static let rules = SessionRules(mask: 0xffff, marks: [
        SessionMark(name: "guest", value: 0x20, timeout: 3600),
        SessionMark(name: "staff", value: 0x30, timeout: 600),
        SessionMark(name: "users", value: 0x1000, range: MarkRange(lower: 0x1000, upper: 0x1002), timeout: 7200),
    ], otherMarks: ["garden"])
    static let a = SessionClient.address(IPAddress("192.0.2.7")!)
    static let b = SessionClient.address(IPAddress("2001:db8::8")!)
    static let c = SessionClient.mac(MACAddress("02:00:00:00:00:09")!)

    @Test func loginActionsInOrder() throws {
        var m = SessionStateMachine(rules: Self.rules)
        let actions = try m.login(.init(client: Self.a, mark: "guest", user: "ann", duration: 90), now: 1000).get()
        let s = Session(client: Self.a, markName: "guest", mark: 0x20, user: "ann", started: 1000, expires: 1090)
        #expect(actions == [
            .storePut(s),
            .kernelAdd(KernelElement(set: "session_guest_v4", client: Self.a, value: nil, timeout: 90)),
            .connmark(client: Self.a, mark: 0x20, mask: 0xffff),
            .markChanged(client: Self.a, mark: 0x20),
        ])
        #expect(m.session(of: Self.a, at: 1089) == s)
        #expect(m.session(of: Self.a, at: 1090) == nil)
    }

    @Test func defaultTimeoutAndRelogin() throws {
        var m = SessionStateMachine(rules: Self.rules)
        _ = try m.login(.init(client: Self.b, mark: "guest"), now: 0).get()
        #expect(m.session(of: Self.b, at: 0)?.expires == 3600)
        let again = try m.login(.init(client: Self.b, mark: "staff"), now: 10).get()
        #expect(again[1] == .kernelDelete(set: "session_guest_v6", client: Self.b))
        #expect(again[2] == .kernelAdd(KernelElement(set: "session_staff_v6", client: Self.b, value: nil, timeout: 600)))
    }

    @Test func refusalsChangeNothing() {
        var m = SessionStateMachine(rules: Self.rules)
        _ = m.login(.init(client: Self.a, mark: "guest", duration: 5), now: 0)
        let before = m.sessions
        #expect(m.login(.init(client: Self.b, mark: "nope"), now: 100) == .failure(.unknownMark("nope", known: ["guest", "staff", "users"])))
        #expect(m.login(.init(client: Self.b, mark: "users"), now: 100) == .failure(.userRequired("users")))
        #expect(m.login(.init(client: Self.b, mark: "garden"), now: 100) == .failure(.sessionsNotAllowed("garden")))
        #expect(m.login(.init(client: Self.b, mark: "guest", user: "a b"), now: 100) == .failure(.badUser("a b")))
        #expect(m.logout(Self.c, now: 100) == .failure(.noSession(Self.c)))
        // The expired session is still held: a refused event does not even expire.
        #expect(m.sessions == before)
    }

    @Test func logoutAndExpiry() throws {
        var m = SessionStateMachine(rules: Self.rules)
        _ = try m.login(.init(client: Self.a, mark: "guest", duration: 5), now: 0).get()
        _ = try m.login(.init(client: Self.c, mark: "staff"), now: 0).get()
        #expect(try m.logout(Self.c, now: 1).get() == [
            .storeDelete(Self.c), .kernelDelete(set: "session_staff_mac", client: Self.c),
            .connmark(client: Self.c, mark: 0, mask: 0xffff), .markChanged(client: Self.c, mark: 0),
        ])
        #expect(m.expire(now: 4) == [])
        let expiry = m.expire(now: 5)
        #expect(expiry == [.storeDelete(Self.a),
                           .kernelAdd(KernelElement(set: "session_guest_v4", client: Self.a, value: nil, timeout: 1)),
                           .kernelDelete(set: "session_guest_v4", client: Self.a),
                           .connmark(client: Self.a, mark: 0, mask: 0xffff), .markChanged(client: Self.a, mark: 0)])
        // One transaction that holds whether the kernel still has the element or not.
        #expect(SessionMaps.script(expiry, sets: [], maps: []) == """
            add element inet markdns session_guest_v4 { \(Self.a) timeout 1s }
            delete element inet markdns session_guest_v4 { \(Self.a) }

            """)
        #expect(m.sessions.isEmpty)
        #expect(m.logout(Self.a, now: 6) == .failure(.noSession(Self.a)))
    }

    @Test func rangeValuesPerUser() throws {
        var m = SessionStateMachine(rules: Self.rules)
        func value(_ c: SessionClient, _ u: String, _ now: Int64 = 0) throws -> UInt32 {
            _ = try m.login(.init(client: c, mark: "users", user: u, duration: 100), now: now).get()
            return m.session(of: c, at: now)!.mark
        }
        #expect(try value(Self.a, "ann") == 0x1000)
        #expect(try value(Self.b, "bob") == 0x1001)
        #expect(try value(Self.c, "ann") == 0x1000)    // ann's second device: ann's value
        let d = SessionClient.address(IPAddress("192.0.2.10")!)
        let e = SessionClient.address(IPAddress("192.0.2.11")!)
        #expect(try value(d, "cy") == 0x1002)
        #expect(m.login(.init(client: e, mark: "users", user: "dee"), now: 0) ==
                .failure(.rangeExhausted("users", MarkRange(lower: 0x1000, upper: 0x1002)!)))
        // bob's value is free only once bob's session has ended.
        _ = try m.logout(Self.b, now: 1).get()
        #expect(try value(e, "dee", 1) == 0x1001)
        let add = try m.login(.init(client: e, mark: "users", user: "dee", duration: 50), now: 2).get()
        #expect(add.contains(.kernelAdd(KernelElement(set: "session_users_v4", client: e, value: 0x1001, timeout: 50))))
    }

    @Test func reapplyPrunesAndRefills() {
        var m = SessionStateMachine(rules: Self.rules)
        let stored = [
            Session(client: Self.a, markName: "guest", mark: 0x20, user: nil, started: 0, expires: 500),
            Session(client: Self.b, markName: "guest", mark: 0x20, user: nil, started: 0, expires: 50),   // expired
            Session(client: Self.c, markName: "gone", mark: 0x40, user: nil, started: 0, expires: 500),   // mark removed
        ]
        let actions = m.reapply(stored: stored, rules: Self.rules, now: 100)
        // Sorted by client: the MAC first, then IPv4, then IPv6.
        #expect(actions == [
            .storeDelete(Self.c), .connmark(client: Self.c, mark: 0, mask: 0xffff),
            .storeDelete(Self.b), .connmark(client: Self.b, mark: 0, mask: 0xffff),
            .kernelReplaceAll([KernelElement(set: "session_guest_v4", client: Self.a, value: nil, timeout: 400)]),
            .connmark(client: Self.a, mark: 0x20, mask: 0xffff), .markChanged(client: Self.a, mark: 0x20),
        ])
        #expect(m.live(at: 100).map(\.client) == [Self.a])
    }

    @Test func nftScript() {
        let e = KernelElement(set: "session_users_v4", client: Self.a, value: 0x1001, timeout: 30)
        let text = SessionMaps.script([.storePut(Session(client: Self.a, markName: "x", mark: 1, user: nil, started: 0, expires: 1)),
                                       .kernelDelete(set: "session_guest_v4", client: Self.a), .kernelAdd(e)],
                                      sets: [], maps: [])
        #expect(text == "delete element inet markdns session_guest_v4 { 192.0.2.7 }\n"
                + "add element inet markdns session_users_v4 { 192.0.2.7 timeout 30s : 0x1001 }\n")
        #expect(SessionMaps.script([.kernelReplaceAll([])], sets: ["s1"], maps: ["m1"])
                == "flush set inet markdns s1\nflush map inet markdns m1\n")
    }

    @Test func captiveDocuments() {
        let s = Session(client: Self.a, markName: "guest", mark: 0x20, user: nil, started: 0, expires: 300)
        #expect(CaptiveAPI.document(captive: true, portalURL: "https://portal.example/", session: nil, now: 0)
                == "{\"captive\":true,\"user-portal-url\":\"https://portal.example/\"}\n")
        #expect(CaptiveAPI.document(captive: false, portalURL: nil, session: s, now: 100)
                == "{\"captive\":false,\"seconds-remaining\":200,\"can-extend-session\":false}\n")
        #expect(JSONText.session(s, now: 100, traffic: .init(bytes: 5, packets: 1))
                == "{\"client\":\"192.0.2.7\",\"mark\":\"guest\",\"value\":\"0x20\",\"user\":null,\"started\":0,\"expires\":300,\"seconds-remaining\":200,\"bytes\":5,\"packets\":1}")
    }
}

@Suite("Control requests")
struct ControlRequestTests {
    func status(method: String, uri: String) -> Int? {
        if case .failure(let r) = ControlRequest.parse(method: method, uri: uri) { return r.status }
        return nil
    }

    @Test func parsesRequests() {
        let a = SessionClient.address(IPAddress("2001:db8::7")!)
        let uri = ControlRequest.uri("/login", [("client", "2001:db8::7"), ("mark", "guest"), ("user", "ann b&c"), ("for", "2h")])
        #expect(uri == "/login?client=2001:db8::7&mark=guest&user=ann%20b%26c&for=2h")
        #expect(ControlRequest.parse(method: "POST", uri: uri) == .success(.login(client: a, mark: "guest", user: "ann b&c", duration: 7200)))
        #expect(ControlRequest.parse(method: "POST", uri: "/logout?client=2001:db8::7") == .success(.logout(a)))
        #expect(ControlRequest.parse(method: "GET", uri: "/sessions?format=text") == .success(.list(text: true)))
        #expect(ControlRequest.parse(method: "GET", uri: "/session?client=2001:db8::7") == .success(.show(a)))
        #expect(status(method: "GET", uri: "/login?client=1.2.3.4&mark=x") == 405)
        #expect(status(method: "GET", uri: "/nope") == 404)
        #expect(ControlRequest.parse(method: "POST", uri: "/login?client=1.2.3.400&mark=x")
                == .failure(.init(status: 400, description: "'1.2.3.400' is not an IPv4 or IPv6 address or a MAC address (aa:bb:cc:dd:ee:ff)")))
        #expect(status(method: "POST", uri: "/login?client=1.2.3.4&mark=x&for=9y") == 400)
        #expect(status(method: "POST", uri: "/login?client=1.2.3.4") == 400)
        #expect(status(method: "POST", uri: "/logout?client=%zz") == 400)
    }

    @Test func table() {
        let s = Session(client: .address(IPAddress("192.0.2.7")!), markName: "guest", mark: 0x20, user: nil, started: 0, expires: 7200)
        #expect(SessionTable.render([s], now: 0).hasSuffix("192.0.2.7" + String(repeating: " ", count: 32) + "guest            0x20        -                2h\n"))
        #expect(SessionTable.render([], now: 0) == "no sessions\n")
    }
}

@Suite("Per-user traffic")
struct PerUserTrafficTests {
    @Test func onlyRangeSessionsCountTheirOwnValue() {
        let a = Session(client: .address(IPAddress("192.0.2.1")!), markName: "users", mark: 0x1000, user: "ann", started: 0, expires: 9)
        let b = Session(client: .address(IPAddress("192.0.2.2")!), markName: "users", mark: 0x1001, user: "bob", started: 0, expires: 9)
        let g = Session(client: .address(IPAddress("192.0.2.3")!), markName: "guest", mark: 0x20, user: nil, started: 0, expires: 9)
        let flows: [(mark: UInt32, bytes: UInt64, packets: UInt64)] = [(0x1000, 100, 2), (0x1000, 50, 1), (0x1001, 7, 1), (0x20, 999, 9), (0x1002, 5, 5)]
        let t = JSONText.perUser([a, b, g], rangeMarks: ["users"], flows: flows)
        #expect(t == ["192.0.2.1": .init(bytes: 150, packets: 3), "192.0.2.2": .init(bytes: 7, packets: 1)])
        #expect(SessionTable.render([a], now: 0, traffic: t).contains("150          3\n"))
    }
}
