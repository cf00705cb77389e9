import Foundation
import Logging
import Testing
import MarkCore
import MarkPolicy
import MarkSessions
@testable import Sessions

/// The service's ordering and rollback, with a recording kernel and an in-memory store.
@Suite("Session service")
struct SessionServiceTests {
    final class Kernel: SessionKernel, @unchecked Sendable {
        var scripts: [String] = []
        var connmarks: [(SessionClient, UInt32)] = []
        var failNft = false
        struct Failed: Error {}
        func nft(_ script: String) throws {
            if failNft { throw Failed() }
            scripts.append(script)
        }
        func setConnmark(_ client: SessionClient, mark: UInt32, mask: UInt32) throws -> Int {
            connmarks.append((client, mark)); return 1
        }
    }

    final class Store: SessionStore, @unchecked Sendable {
        var rows: [SessionClient: Session] = [:]
        var fail = false
        func load() throws(SessionStoreError) -> [Session] { Array(rows.values) }
        func commit(put: [Session], delete: [SessionClient]) throws(SessionStoreError) {
            if fail { throw SessionStoreError("database is locked") }
            for c in delete { rows[c] = nil }
            for s in put { rows[s.client] = s }
        }
    }

    static let policy = try! PolicyConfig.load(text: """
        [[pool]]
        name = "p"
        servers = ["192.0.2.1"]
        [[mark]]
        value = 0x100
        name = "auth"
        sessions = true
        session-timeout = "1h"
        """, file: "t.toml", readFile: { _ in "" })

    let a = SessionClient.address(IPAddress("192.0.2.7")!)

    func service(_ store: Store, _ kernel: Kernel) -> SessionService {
        SessionService(policy: Self.policy, store: store, kernel: kernel, logger: Logger(label: "t"), clock: { 1000 })
    }

    @Test func loginWritesStoreThenKernelThenConnmarks() throws {
        let store = Store(), kernel = Kernel()
        let s = service(store, kernel)
        let session = try s.login(.init(client: a, mark: "auth")).get()
        #expect(store.rows[a] == session)
        #expect(kernel.scripts == ["add element inet markdns session_auth_v4 { 192.0.2.7 timeout 3600s }\n"])
        #expect(kernel.connmarks.map(\.1) == [0x100])
        try s.logout(a).get()
        #expect(store.rows.isEmpty)
        #expect(kernel.scripts.last == "delete element inet markdns session_auth_v4 { 192.0.2.7 }\n")
        #expect(kernel.connmarks.map(\.1) == [0x100, 0])
    }

    @Test func storeFailureChangesNothing() {
        let store = Store(), kernel = Kernel()
        let s = service(store, kernel)
        store.fail = true
        guard case .failure(.store) = s.login(.init(client: a, mark: "auth")) else { Issue.record("login did not fail"); return }
        #expect(kernel.scripts.isEmpty && kernel.connmarks.isEmpty)
        #expect(s.live().isEmpty)
    }

    @Test func nftFailureRollsTheStoreBack() throws {
        let store = Store(), kernel = Kernel()
        let s = service(store, kernel)
        let first = try s.login(.init(client: a, mark: "auth", duration: 60)).get()
        kernel.failNft = true
        guard case .failure(.kernel) = s.login(.init(client: a, mark: "auth", duration: 600)) else { Issue.record("no failure"); return }
        #expect(store.rows[a] == first, "the earlier session is back in the store")
        #expect(s.session(of: a) == first)
        #expect(kernel.connmarks.count == 1)
        guard case .failure(.refused(.unknownMark)) = s.login(.init(client: a, mark: "x")) else { Issue.record("no refusal"); return }
    }

    @Test func reapplyWithoutTheKernelTableKeepsTheStore() throws {
        let store = Store(), kernel = Kernel()
        let kept = Session(client: a, markName: "auth", mark: 0x999, user: nil, started: 0, expires: 1500)   // value to fix
        store.rows[a] = kept
        kernel.failNft = true
        let s = service(store, kernel)
        guard case .failure(.kernel) = s.reapply(Self.policy) else { Issue.record("no failure"); return }
        #expect(store.rows[a] == kept, "the row is back as it was loaded")
        #expect(s.session(of: a)?.mark == 0x100, "the service keeps the session for a later rules --apply")
    }

    @Test func reapplyFromTheStore() throws {
        let store = Store(), kernel = Kernel()
        store.rows[a] = Session(client: a, markName: "auth", mark: 0x100, user: nil, started: 0, expires: 1500)
        let gone = SessionClient.address(IPAddress("192.0.2.8")!)
        store.rows[gone] = Session(client: gone, markName: "auth", mark: 0x100, user: nil, started: 0, expires: 999)
        let s = service(store, kernel)
        #expect(try s.reapply(Self.policy).get() == 1)
        #expect(store.rows.keys.sorted() == [a])
        #expect(kernel.scripts == ["flush set inet markdns session_auth_v4\nflush set inet markdns session_auth_v6\n"
                                   + "flush set inet markdns session_auth_mac\n"
                                   + "add element inet markdns session_auth_v4 { 192.0.2.7 timeout 500s }\n"])
    }
}
