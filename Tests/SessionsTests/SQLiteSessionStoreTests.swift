import Foundation
import Testing
import MarkCore
import MarkSessions
import CSQLite
@testable import Sessions

@Suite("SQLite session store")
struct SQLiteSessionStoreTests {
    static func tempPath() -> String {
        NSTemporaryDirectory() + "markdns-sessions-\(getpid())-\(UInt32.random(in: 0 ... .max)).db"
    }

    let a = Session(client: .address(IPAddress("192.0.2.7")!), markName: "guest", mark: 0x20, user: "ann \"q\"",
                    started: 100, expires: 200)
    let b = Session(client: .mac(MACAddress("02:00:00:00:00:09")!), markName: "users", mark: 0x1001, user: nil,
                    started: 5, expires: 9_999_999_999)

    @Test func roundTripAcrossReopen() throws {
        let path = Self.tempPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let store = try SQLiteSessionStore(path: path)
            try store.perform([.storePut(a), .storePut(b), .kernelAdd(KernelElement(set: "x", client: a.client, value: nil, timeout: 1))])
            #expect(try Set(store.load().map(\.client)) == [a.client, b.client])
        }
        let again = try SQLiteSessionStore(path: path)
        let loaded = try again.load()
        #expect(loaded.first { $0.client == a.client } == a)
        #expect(loaded.first { $0.client == b.client } == b)
        var moved = a; moved.markName = "staff"; moved.mark = 0x30
        try again.perform([.storePut(moved), .storeDelete(b.client)])
        #expect(try again.load() == [moved])
    }

    /// A write that cannot happen (another process holds the database's write lock, which
    /// stops root too) throws and leaves the stored sessions as they were.
    @Test func unwritableDatabaseFailsAndChangesNothing() throws {
        let path = Self.tempPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try SQLiteSessionStore(path: path)
        try store.perform([.storePut(a)])
        var other: OpaquePointer?
        #expect(sqlite3_open(path, &other) == SQLITE_OK)
        defer { sqlite3_close(other) }
        #expect(sqlite3_exec(other, "BEGIN EXCLUSIVE", nil, nil, nil) == SQLITE_OK)
        #expect(throws: SessionStoreError.self) { try store.perform([.storePut(b), .storeDelete(a.client)]) }
        #expect(sqlite3_exec(other, "ROLLBACK", nil, nil, nil) == SQLITE_OK)
        #expect(try store.load() == [a])
        #expect(throws: SessionStoreError.self) { try SQLiteSessionStore(path: "/proc/markdns-no-such-dir/s.db") }
    }
}
