import CSQLite
import MarkCore
import MarkSessions

/// Sessions in a SQLite file, through the C library (Debian's libsqlite3). Not GRDB: GRDB
/// imports Foundation, and Foundation's ICU would push the daemon far over its 20 MB .deb
/// budget (README "Binary size"); three statements do not need an ORM.
///
/// One table, one row per client: `sessions(client, mark, value, user, started, expires)`.
public final class SQLiteSessionStore: SessionStore {
    private let db: OpaquePointer
    public let path: String

    public init(path: String) throws(SessionStoreError) {
        self.path = path
        var handle: OpaquePointer?
        let rc = sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nil)
        guard rc == SQLITE_OK, let handle else {
            let why = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            if let handle { sqlite3_close(handle) }
            throw SessionStoreError("cannot open session database \(path): \(why)")
        }
        db = handle
        sqlite3_busy_timeout(db, 2000)
        do throws(SessionStoreError) {
            // WAL: its two side files are made now and stay open with the connection, so
            // the daemon keeps writing after `serve --user` has dropped root, without write
            // access to the directory (a rollback journal is created and deleted per write).
            try exec("PRAGMA journal_mode=WAL")
            try exec("""
                CREATE TABLE IF NOT EXISTS sessions (
                    client TEXT PRIMARY KEY NOT NULL, mark TEXT NOT NULL, value INTEGER NOT NULL,
                    user TEXT, started INTEGER NOT NULL, expires INTEGER NOT NULL)
                """)
        } catch {
            sqlite3_close(db)
            throw error
        }
    }

    deinit { sqlite3_close(db) }

    public func load() throws(SessionStoreError) -> [Session] {
        let st = try prepare("SELECT client, mark, value, user, started, expires FROM sessions ORDER BY client")
        defer { sqlite3_finalize(st) }
        var out: [Session] = []
        while true {
            let rc = sqlite3_step(st)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw failure("read sessions") }
            // A row this code did not write (edited by hand) is skipped, never trusted.
            guard let c = text(st, 0), case .success(let client) = SessionClient.parse(c), let mark = text(st, 1) else { continue }
            let value = sqlite3_column_int64(st, 2)
            guard value > 0, value <= Int64(UInt32.max) else { continue }
            out.append(Session(client: client, markName: mark, mark: UInt32(value), user: text(st, 3),
                               started: sqlite3_column_int64(st, 4), expires: sqlite3_column_int64(st, 5)))
        }
        return out
    }

    public func commit(put: [Session], delete: [SessionClient]) throws(SessionStoreError) {
        try exec("BEGIN IMMEDIATE")
        do throws(SessionStoreError) {
            let ins = try prepare("INSERT OR REPLACE INTO sessions (client, mark, value, user, started, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            defer { sqlite3_finalize(ins) }
            for s in put {
                sqlite3_reset(ins)
                markdns_sqlite_bind_text(ins, 1, s.client.description)
                markdns_sqlite_bind_text(ins, 2, s.markName)
                sqlite3_bind_int64(ins, 3, Int64(s.mark))
                if let u = s.user { markdns_sqlite_bind_text(ins, 4, u) } else { sqlite3_bind_null(ins, 4) }
                sqlite3_bind_int64(ins, 5, s.started)
                sqlite3_bind_int64(ins, 6, s.expires)
                guard sqlite3_step(ins) == SQLITE_DONE else { throw failure("write session of \(s.client)") }
            }
            let del = try prepare("DELETE FROM sessions WHERE client = ?1")
            defer { sqlite3_finalize(del) }
            for c in delete {
                sqlite3_reset(del)
                markdns_sqlite_bind_text(del, 1, c.description)
                guard sqlite3_step(del) == SQLITE_DONE else { throw failure("delete session of \(c)") }
            }
            try exec("COMMIT")
        } catch {
            _ = sqlite3_exec(db, "ROLLBACK", nil, nil, nil)
            throw error
        }
    }

    private func exec(_ sql: String) throws(SessionStoreError) {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else { throw failure(sql.split(separator: " ").first.map(String.init) ?? sql) }
    }

    private func prepare(_ sql: String) throws(SessionStoreError) -> OpaquePointer {
        var st: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &st, nil) == SQLITE_OK, let st else { throw failure("prepare") }
        return st
    }

    private func text(_ st: OpaquePointer, _ i: Int32) -> String? {
        guard let p = sqlite3_column_text(st, i) else { return nil }
        return String(cString: p)
    }

    private func failure(_ what: String) -> SessionStoreError {
        SessionStoreError("session database \(path): \(what): \(String(cString: sqlite3_errmsg(db)))")
    }
}
