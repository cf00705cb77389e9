import CBatchIO
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A stream socket the data-plane loop drives for its owner (a `LoopStreamChannel`): told
/// what the socket is ready for, and asked to write once at the end of a tick.
protocol LoopStreamSource: AnyObject {
    /// The socket is ready: `flags` holds `MARKDNS_EV_READ`, `_WRITE`, `_ERROR` bits.
    func streamReady(_ flags: UInt8)
    /// The end of a tick in which the source asked for it (`flushAtTickEnd`).
    func streamTickEnd()
}

/// Stream sockets on the loop's own epoll set, so that pooled upstream connections (DoT,
/// DoH, plain TCP) run on the data-plane thread that asks the queries and takes the
/// answers: no hop to another thread either way. Tokens are from `firstStreamToken` up,
/// above every token of the engine's UDP sockets, and never reused. All on the loop.
extension DataPlaneLoop {
    /// Watches `fd` for reading, and for writing while `writable`; returns its token.
    func watchStream(_ fd: Int32, source: any LoopStreamSource, writable: Bool) throws -> UInt64 {
        let token = nextStreamToken
        guard markdns_epoll_watch_stream(epollFD, fd, token, writable ? 1 : 0) == 0 else {
            throw IOError(errnoCode: errno, reason: "epoll_ctl(ADD)")
        }
        nextStreamToken += 1
        streamSources[token] = source
        return token
    }

    /// Turns write interest on or off (a connect under way, a send buffer that was full).
    func rewatchStream(_ fd: Int32, token: UInt64, writable: Bool) {
        guard !ended.load(ordering: .relaxed) else { return }
        _ = markdns_epoll_rewatch_stream(epollFD, fd, token, writable ? 1 : 0)
    }

    /// Stops watching `fd` (before it is closed) and forgets its source.
    func unwatchStream(_ fd: Int32, token: UInt64) {
        streamSources[token] = nil
        // After the loop ended its epoll descriptor is closed and its number may be reused.
        guard !ended.load(ordering: .relaxed) else { return }
        _ = markdns_epoll_unwatch(epollFD, fd)
    }

    /// `source.streamTickEnd()` runs once the tick's work is done, after the UDP writes:
    /// the queries of one tick leave in one write.
    func flushAtTickEnd(_ source: any LoopStreamSource) {
        streamFlushes.append(source)
        requestTickEnd()
    }
}
