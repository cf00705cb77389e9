import MarkCore
import MarkPolicy
import NIOCore
import NIOPosix
import QueryCore

/// Everything the forwarder needs to run; built by the executable from flags.
public struct ForwarderConfig: Sendable {
    public var listen: [Endpoint]
    /// Who gets which mark, what each mark may do, which pool serves it. Replaced as a
    /// whole on reload.
    public var policy: PolicyEngine
    /// Answer cache entries (0 disables the cache; coalescing stays on).
    public var cacheSize: Int = 10_000
    /// TTL clamps for cached answers (seconds).
    public var cacheMinTTL: UInt32 = 0
    public var cacheMaxTTL: UInt32 = 86_400
    /// Serve-stale (RFC 8767): when every upstream fails, an answer expired less than this
    /// many seconds ago is served (TTL 30) instead of SERVFAIL. 0: off.
    public var serveStale: UInt32 = 0
    /// Look marks up through ctnetlink. Off only for benchmarks of the bare forwarder.
    public var useConntrack: Bool = true
    /// How long one upstream gets to answer before the next is tried.
    public var upstreamTimeout: TimeAmount = .milliseconds(1500)
    /// A query's whole budget upstream: servers that timed out are tried again while it
    /// lasts; when it is spent the client gets SERVFAIL.
    public var queryTimeout: TimeAmount = .seconds(4)
    /// A client TCP connection with no query in flight is closed after this long (RFC 7766).
    public var tcpIdleTimeout: TimeAmount = .seconds(10)
    /// Upstream queries in flight at once; beyond it clients get SERVFAIL (counted).
    public var maxOutstanding: Int = 4096
    /// Client TCP connections at once; beyond it new connections are closed at accept.
    public var maxTCPConnections: Int = 512
    /// Client TCP connections from one address at once: one client holding many idle or
    /// half-written connections cannot starve the others (dnsmasq serves 20 in total).
    public var maxTCPConnectionsPerClient: Int = 32
    /// Upstream queries in flight for one client address; beyond it that client gets
    /// SERVFAIL (counted as overload) while others are served.
    public var maxOutstandingPerClient: Int = 512
    /// Queries in flight on one client TCP connection; beyond it the connection stops reading.
    public var maxQueriesPerTCPConnection: Int = 64
    /// Connected UDP sockets per (mark, upstream).
    public var socketsPerPool: Int = 4
    /// A UDP upstream socket is retired (and a fresh one with a new random port opened)
    /// after this many queries.
    public var queriesPerSocket: Int = 64
    /// An upstream socket with nothing in flight for this long is closed.
    public var upstreamSocketIdle: TimeAmount = .seconds(30)
    /// Told of every query's outcome, upstream attempt and conntrack lookup (metrics,
    /// top clients, query log). Nil: nothing is observed and nothing is spent on it.
    public var observer: (any QueryObserver)?
    /// Counters of the DoT/DoH upstreams (connections, handshakes, reuse, failures), for the metrics.
    public var secureStats = SecureStats()
    /// A DoT/DoH connection with nothing in flight is closed after this long (RFC 7766
    /// 6.2.3; shorter when the server's edns-tcp-keepalive says so).
    public var secureIdleTimeout: Double = 10

    /// Where client marks come from: packet marks (SO_RCVMARK) once they are seen to match
    /// ctnetlink's connmarks (`auto`), or ctnetlink for every query (`conntrack`). Nil: the
    /// policy's `[conntrack] mark-source` (re-read on reload).
    public var markSource: PacketMarkTrust.Mode?

    /// Event loops, each with its own engine, listeners (SO_REUSEPORT), ctnetlink socket,
    /// cache and upstream sockets.
    public var threads: Int = ForwarderConfig.defaultThreads

    /// How UDP clients are steered over the loops: `adaptive` keeps them on the first loop
    /// until it is busy and gathers them again when all are quiet (MarkCore `LoopSpread`);
    /// `always` spreads them by address over every loop from the start.
    public enum LoopSpreadMode: String, Sendable, CaseIterable { case adaptive, always }
    public var loopSpread: LoopSpreadMode = .adaptive

    /// One loop per core, at most 8.
    public static var defaultThreads: Int { min(max(System.coreCount, 1), 8) }

    /// The share of one engine when `threads` engines run: the cache and the outstanding
    /// limits are split (rounded up), so memory and the global limits stay as configured.
    /// TCP limits are enforced across loops (`SharedState`).
    /// How many engines this engine's share was cut for (`perEngine`): each has its own
    /// DoT/DoH/TCP pools and takes this share of a pool's `max-connections`.
    var engines = 1

    func perEngine(threads: Int) -> ForwarderConfig {
        guard threads > 1 else { return self }
        func share(_ n: Int) -> Int { (n + threads - 1) / threads }
        var c = self
        c.cacheSize = cacheSize == 0 ? 0 : share(cacheSize)
        c.maxOutstanding = share(maxOutstanding)
        c.maxOutstandingPerClient = share(maxOutstandingPerClient)
        c.engines = threads
        return c
    }

    /// What the query core of one engine is given.
    var queryLimits: QueryLimits {
        var l = QueryLimits()
        l.cacheSize = cacheSize
        l.cacheMinTTL = cacheMinTTL
        l.cacheMaxTTL = cacheMaxTTL
        l.serveStale = serveStale
        l.maxOutstanding = maxOutstanding
        l.maxOutstandingPerClient = maxOutstandingPerClient
        l.upstreamTimeout = seconds(upstreamTimeout)
        l.queryTimeout = seconds(queryTimeout)
        return l
    }

    public init(listen: [Endpoint], policy: PolicyEngine) {
        self.listen = listen
        self.policy = policy
    }

    /// The policy of a plain forwarder (no policy file): one pool, every connmark bit
    /// propagated, unmarked queries forwarded unmarked, or refused with `requireMark`.
    public static func simplePolicy(upstreams: [Endpoint], requireMark: Bool) -> PolicyConfig {
        simplePolicy(servers: upstreams.map(UpstreamAddress.plain), requireMark: requireMark)
    }

    public static func simplePolicy(servers upstreams: [UpstreamAddress], requireMark: Bool) -> PolicyConfig {
        var pool = Pool(name: "default", servers: [])
        pool.setUpstreams(upstreams)
        return PolicyConfig(conntrack: ConntrackConfig(onMissing: requireMark ? .refuse : .unmarked), pools: [pool])
    }
}
