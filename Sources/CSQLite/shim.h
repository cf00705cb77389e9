// SQLite 3 from Debian (libsqlite3-dev; the .deb depends on libsqlite3-0).
#ifndef MARKDNS_CSQLITE_SHIM_H
#define MARKDNS_CSQLITE_SHIM_H
#include <sqlite3.h>

// SQLITE_TRANSIENT is a cast of -1 to a function pointer, which Swift cannot import.
static inline int markdns_sqlite_bind_text(sqlite3_stmt *s, int i, const char *text) {
    return sqlite3_bind_text(s, i, text, -1, SQLITE_TRANSIENT);
}
#endif
