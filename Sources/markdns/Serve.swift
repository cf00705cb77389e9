import QueryCore
import ArgumentParser
import Dispatch
import Forwarder
import Logging
import MarkCore
import MarkPolicy
import NIOCore
import Observability

#if canImport(Glibc)
import Glibc
#endif

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve DNS on the listen addresses and forward to the upstreams (the default).")

    @Option(name: .long, help: ArgumentHelp("Policy file (TOML): clients, marks, pools. SIGHUP reloads it. --listen/--upstream/--require-mark override it.", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Address to serve on, UDP and TCP: 192.0.2.1:53 or [::1]:53. Repeatable. 0.0.0.0 / [::] mean every local address.", valueName: "addr:port"))
    var listen: [String] = []

    @Option(name: .long, help: ArgumentHelp("Upstream server, tried in order. Repeatable. ADDR[:PORT] (plain DNS, port 53), tls://ADDR[:PORT][#NAME] (DNS over TLS, 853) or https://ADDR[:PORT][/PATH][#NAME] (DNS over HTTPS, 443, /dns-query); NAME is the name the certificate must carry.", valueName: "upstream"))
    var upstream: [String] = []

    @Option(name: .long, help: ArgumentHelp("PEM file of the CAs that sign the certificates of tls:// and https:// upstreams whose pool sets no tls-ca (default: the system store, /etc/ssl/certs).", valueName: "file"))
    var tlsCa: String?

    @Option(name: .long, help: "Answer cache entries (0 disables the cache). Answers are cached per policy view, pool and mark.")
    var cacheSize: Int = 10_000

    @Option(name: .long, help: "Cached answers live at least this many seconds.")
    var cacheMinTtl: UInt32 = 0

    @Option(name: .long, help: "Cached answers live at most this many seconds.")
    var cacheMaxTtl: UInt32 = 86_400

    @Option(name: .long, help: "Serve-stale (RFC 8767): when every upstream fails, answer from cache entries expired less than this many seconds ago (TTL 30). 0: off.")
    var serveStale: UInt32 = 0

    @Flag(name: .long, help: "Refuse (REFUSED) queries whose flow has no non-zero connmark, instead of forwarding them unmarked.")
    var requireMark = false

    @Flag(name: .long, help: "Do not look marks up (forward everything unmarked; for comparisons).")
    var noConntrack = false

    @Option(name: .long, help: "Milliseconds one upstream gets before the next is tried.")
    var upstreamTimeout: Int = 1500

    @Option(name: .long, help: "Milliseconds a query may spend upstream in all; servers that timed out are retried within it.")
    var queryTimeout: Int = 4000

    @Option(name: .long, help: ArgumentHelp("Answer names from this hosts file (repeatable; re-read when it changes).", valueName: "FILE"))
    var hosts: [String] = []

    @Option(name: .long, help: ArgumentHelp("The LAN's domain: names under it are answered locally (or NXDOMAIN), never forwarded.", valueName: "DOMAIN"))
    var localDomain: String?

    @Option(name: .long, help: ArgumentHelp("A static record, as in a zone file (repeatable): 'router.lan A 192.168.1.1'.", valueName: "RECORD"))
    var record: [String] = []

    @Flag(name: .long, help: "Forward reverse lookups of private ranges upstream (by default they are answered NXDOMAIN locally, RFC 6303).")
    var forwardPrivateReverse = false

    @Option(name: .long, help: ArgumentHelp("Send names under DOMAIN to this server (repeatable; dnsmasq's server=/DOMAIN/ADDR).", valueName: "DOMAIN=ADDR[:PORT]"))
    var domainServer: [String] = []

    @Option(name: .long, help: "Order of the default pool's servers: failover (default), round-robin or fastest.")
    var strategy: String?

    @Option(name: .long, help: ArgumentHelp("Where client marks come from (overrides the policy's [conntrack] mark-source): 'auto' (default) uses each query's packet mark (SO_RCVMARK) once it has matched the connmark of 64 lookups, and keeps comparing 1 query in 256; 'conntrack' looks every mark up with ctnetlink.", valueName: "auto|conntrack"))
    var markSource: String?

    @Option(name: .long, help: "Seconds a client TCP connection may stay idle (RFC 7766).")
    var tcpIdleTimeout: Int = 10

    @Option(name: .long, help: "Upstream queries in flight at most; beyond it clients get SERVFAIL.")
    var maxOutstanding: Int = 4096

    @Option(name: .long, help: "Client TCP connections at most.")
    var maxTcpConnections: Int = 512

    @Option(name: .long, help: "Seconds an upstream socket may stay idle before it is closed.")
    var upstreamIdleTimeout: Int = 30

    @Option(name: .long, help: "Client TCP connections from one address at most.")
    var maxTcpPerClient: Int = 32

    @Option(name: .long, help: "Upstream queries in flight for one client address at most; beyond it SERVFAIL.")
    var maxOutstandingPerClient: Int = 512

    @Option(name: .long, help: "Event loops (threads), each with its own listeners (SO_REUSEPORT, one client address per loop), cache share and ctnetlink socket. Default: one per core, at most 8.")
    var threads: Int = ForwarderConfig.defaultThreads

    @Option(name: .long, help: ArgumentHelp("How UDP clients are steered over the event loops: 'adaptive' (default) keeps them on one loop until it uses 70% of a core and gathers them again when all loops together use under 30% for 3 s (one loop wakes and batches for everyone: less CPU per query at a gateway's rates); 'always' spreads them by address over every loop from the start.", valueName: "adaptive|always"))
    var loopSpread: String = "adaptive"

    @Option(name: .long, help: ArgumentHelp("Serve Prometheus metrics on /metrics and the top clients per mark on /clients (HTTP).", valueName: "addr:port"))
    var metrics: String?

    @Option(name: .long, help: ArgumentHelp("Append one JSON line per query to this file (written off the DNS path; lines are dropped, and counted, when the writer cannot keep up). SIGUSR1 reopens it.", valueName: "file"))
    var queryLog: String?

    @Option(name: .long, help: "Query-log lines waiting to be written at most; beyond it lines are dropped.")
    var queryLogQueue: Int = 10_000

    @Flag(name: .long, help: "At start, send one probe query (. NS, unmarked) to each upstream and log whether it answers.")
    var probeUpstreams = false

    @Option(name: .long, help: "Seconds SIGTERM waits for queries in flight before exiting.")
    var drainTimeout: Int = 2

    @Option(name: .long, help: ArgumentHelp("After binding, drop root: switch to this user (name or UID) and keep only CAP_NET_ADMIN.", valueName: "user"))
    var user: String?

    @Option(name: .long, help: ArgumentHelp("With --user: switch to this group (name or GID) instead of the user's primary group.", valueName: "group"))
    var group: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        if config == nil {
            guard !listen.isEmpty else { throw ValidationError("give at least one --listen ADDR:PORT (or --config FILE)") }
            guard !upstream.isEmpty else { throw ValidationError("give at least one --upstream ADDR:PORT (or --config FILE)") }
        }
        guard cacheSize >= 0 else { throw ValidationError("--cache-size must be 0 or more") }
        if let strategy, UpstreamStrategy(rawValue: strategy) == nil {
            throw ValidationError("unknown --strategy '\(strategy)' (failover, round-robin, fastest)")
        }
        if let markSource, PacketMarkTrust.Mode(rawValue: markSource) == nil {
            throw ValidationError("unknown --mark-source '\(markSource)' (auto, conntrack)")
        }
        guard ForwarderConfig.LoopSpreadMode(rawValue: loopSpread) != nil else {
            throw ValidationError("unknown --loop-spread '\(loopSpread)' (adaptive, always)")
        }
        guard (1...64).contains(threads) else { throw ValidationError("--threads must be 1 to 64") }
        guard upstreamTimeout > 0, queryTimeout > 0, tcpIdleTimeout > 0, maxOutstanding > 0, maxTcpConnections > 0,
              maxTcpPerClient > 0, maxOutstandingPerClient > 0, upstreamIdleTimeout > 0 else {
            throw ValidationError("timeouts and limits must be positive")
        }
        if let metrics { _ = try Endpoint.parse(metrics) }
        guard queryLogQueue > 0 else { throw ValidationError("--query-log-queue must be positive") }
        guard drainTimeout >= 0 else { throw ValidationError("--drain-timeout must be 0 or more") }
        guard group == nil || user != nil else { throw ValidationError("--group needs --user") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "markdns")
        let policy: PolicyConfig
        let listenEndpoints: [Endpoint]
        let drop: PrivilegeDrop?
        do {
            drop = try user.map { name throws(PrivilegeDrop.Failure) in try PrivilegeDrop.resolve(user: name, group: group) }
            policy = try effectivePolicy()
            listenEndpoints = listen.isEmpty ? (policy.server.listen ?? []) : try listen.map { try Endpoint.parse($0) }
        } catch let error as PolicyError {
            FileHandleStderr.write("markdns: \(error.description)\n")
            Glibc.exit(1)
        } catch let error as PrivilegeDrop.Failure {
            FileHandleStderr.write("markdns: \(error.description)\n")
            Glibc.exit(1)
        } catch {
            throw ValidationError("\(error)")
        }
        guard !listenEndpoints.isEmpty else { throw ValidationError("no listen address: give --listen or server.listen in the policy") }
        var config = ForwarderConfig(listen: listenEndpoints, policy: PolicyEngine(policy))
        config.cacheSize = cacheSize
        config.cacheMinTTL = cacheMinTtl
        config.cacheMaxTTL = max(cacheMaxTtl, cacheMinTtl)
        config.serveStale = serveStale
        config.useConntrack = !noConntrack
        config.upstreamTimeout = .milliseconds(Int64(upstreamTimeout))
        config.queryTimeout = .milliseconds(Int64(queryTimeout))
        config.threads = threads
        config.loopSpread = ForwarderConfig.LoopSpreadMode(rawValue: loopSpread) ?? .adaptive
        config.markSource = markSource.flatMap(PacketMarkTrust.Mode.init(rawValue:))
        config.tcpIdleTimeout = .seconds(Int64(tcpIdleTimeout))
        config.maxOutstanding = maxOutstanding
        config.maxTCPConnections = maxTcpConnections
        config.maxTCPConnectionsPerClient = maxTcpPerClient
        config.upstreamSocketIdle = .seconds(Int64(upstreamIdleTimeout))
        config.maxOutstandingPerClient = maxOutstandingPerClient
        let observability = ObservabilitySetup(metrics: metrics, queryLog: queryLog, queryLogQueue: queryLogQueue,
                                               conntrack: config.useConntrack, policy: policy, logger: logger)
        config.observer = observability.hub
        config.secureStats = observability.secureStats

        let forwarder: Forwarder
        do {
            forwarder = try Forwarder.start(config: config, logger: logger)
        } catch let error as ForwarderStartError {
            FileHandleStderr.write("markdns: \(error.description)\n")
            Glibc.exit(1)
        }
        // Sessions start while still root (the database and the control socket live in
        // root's directories); their control loop is parked with the forwarder's below.
        let sessions: SessionSetup?
        if policy.hasSessions {
            do { sessions = try SessionSetup.start(policy, logger: logger) } catch {
                FileHandleStderr.write("markdns: \(error.description)\n")
                _ = forwarder.shutdown(drainTimeout: .zero)
                Glibc.exit(1)
            }
        } else {
            sessions = nil
        }
        if let drop {
            let inherit = sessions != nil
            do {
                try forwarder.withLoopsParked(also: sessions?.eventLoops ?? [],
                                              before: { try PrivilegeDrop.prepareThread() }, {
                    try PrivilegeDrop.prepareThread()
                    try drop.switchIdentity()
                    try PrivilegeDrop.finishThread(inheritNetAdmin: inherit)
                }, after: { try PrivilegeDrop.finishThread(inheritNetAdmin: inherit) })
            } catch {
                FileHandleStderr.write("markdns: cannot drop privileges to \(drop.user): \(error)\n")
                Glibc.exit(1)
            }
            logger.info("running as \(drop.user) (uid \(drop.uid), gid \(drop.gid)) with CAP_NET_ADMIN only\(inherit ? " (ambient too: nft for the session sets)" : "")")
        }
        // After the drop: the metrics server's thread is created by this one and inherits
        // CAP_NET_ADMIN, which its conntrack dumps (accounting per mark) need.
        do {
            try observability.startListener(forwarder: forwarder)
        } catch {
            FileHandleStderr.write("markdns: \(error.description)\n")
            Glibc.exit(1)
        }
        // Plain upstreams only: a probe of an encrypted one would be plain DNS.
        if probeUpstreams {
            UpstreamProbe.start(policy.pools.flatMap { p in p.servers.filter { p.secure[$0] == nil } }, logger: logger)
        }
        sessions?.install(into: observability.extensions)
        waitForTermination(onReopen: { observability.reopenLog() }, onReload: {
            guard self.config != nil else {
                forwarder.reloadLocalData()
                logger.notice("SIGHUP: no --config file; hosts files re-read")
                return
            }
            do {
                let policy = try self.effectivePolicy()
                forwarder.reload(PolicyEngine(policy))
                observability.reloaded(policy)
                sessions?.reloaded(policy)
                logger.notice("reloaded policy \(self.config ?? ""): \(policy.marks.count) marks, \(policy.clients.count) clients, \(policy.pools.count) pools")
            } catch {
                logger.error("reload failed, the previous policy stays in force: \(error)")
                observability.reloadFailed()
            }
        })
        logger.info("stopping: draining queries in flight")
        observability.stopListener()
        sessions?.stop()
        let counters = forwarder.shutdown(drainTimeout: .seconds(Int64(drainTimeout)))
        observability.stopLog()
        logger.info("stats: \(counters.summary)")
    }

    /// The policy file with the command-line overrides applied, or the plain forwarder's
    /// policy built from the flags when there is no file.
    func effectivePolicy() throws -> PolicyConfig {
        var policy: PolicyConfig
        let upstreams = try upstream.map { text in
            do { return try UpstreamAddress.parse(text) } catch { throw ValidationError("--upstream '\(text)': \(error)") }
        }
        if let config {
            policy = try PolicyLoading.load(config)
            if !upstreams.isEmpty, let i = policy.pools.firstIndex(where: { $0.name == policy.defaultPool }) {
                policy.pools[i].setUpstreams(upstreams)
            }
            if requireMark { policy.conntrack.onMissing = .refuse }
        } else {
            policy = ForwarderConfig.simplePolicy(servers: upstreams, requireMark: requireMark)
        }
        if let tlsCa {
            guard access(tlsCa, R_OK) == 0 else { throw ValidationError("--tls-ca '\(tlsCa)': cannot read it") }
            for i in policy.pools.indices {
                for (e, var s) in policy.pools[i].secure where s.caFile == nil {
                    s.caFile = tlsCa
                    policy.pools[i].secure[e] = s
                }
            }
        }
        try policy.validate(file: "--upstream")
        try addDomainServers(to: &policy)
        try addLocalData(to: &policy)
        if let s = strategy.flatMap(UpstreamStrategy.init(rawValue:)),
           let i = policy.pools.firstIndex(where: { $0.name == policy.defaultPool }) {
            policy.pools[i].strategy = s
        }
        return policy
    }

    /// `--domain-server corp.example=10.1.1.1`: one pool per domain (named `domain1`, ...),
    /// its servers in the order given.
    func addDomainServers(to policy: inout PolicyConfig) throws {
        var poolOf: [String: Int] = [:]
        for spec in domainServer {
            let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, case .success(let domain) = DomainName.normalize(parts[0]) else {
                throw ValidationError("--domain-server '\(spec)': expected DOMAIN=ADDR[:PORT]")
            }
            let server = try Endpoint.parse(parts[1], defaultPort: 53)
            if let i = poolOf[domain] {
                policy.pools[i].servers.append(server)
            } else {
                var name = "domain\(poolOf.count + 1)"
                while policy.pool(named: name) != nil { name += "x" }
                poolOf[domain] = policy.pools.count
                policy.pools.append(Pool(name: name, servers: [server], domains: [domain]))
            }
        }
        try policy.validate(file: "--domain-server")
    }

    /// `--hosts`, `--local-domain`, `--record`, `--forward-private-reverse`: added to the
    /// policy's `[local]`.
    func addLocalData(to policy: inout PolicyConfig) throws {
        policy.local.hosts += hosts
        if let localDomain {
            switch DomainName.normalize(localDomain) {
            case .success(let d): policy.local.domain = d
            case .failure(let e): throw ValidationError("--local-domain: \(e)")
            }
        }
        for r in record {
            switch LocalRecord.parse(r) {
            case .success(let rr): policy.local.records.append(rr)
            case .failure(let e): throw ValidationError("--record: \(e)")
            }
        }
        if forwardPrivateReverse { policy.local.privateReverse = false }
    }

    /// Blocks until SIGTERM or SIGINT; runs `onReload` for each SIGHUP (serially) and
    /// `onReopen` for each SIGUSR1.
    private func waitForTermination(onReopen: @escaping @Sendable () -> Void, onReload: @escaping @Sendable () -> Void) {
        let done = DispatchSemaphore(value: 0)
        var sources: [any DispatchSourceSignal] = []
        let reloadQueue = DispatchQueue(label: "markdns.reload")
        for sig in [SIGTERM, SIGINT, SIGHUP, SIGUSR1] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: sig == SIGHUP ? reloadQueue : .global())
            source.setEventHandler {
                switch sig {
                case SIGHUP: onReload()
                case SIGUSR1: onReopen()
                default: done.signal()
                }
            }
            source.resume()
            sources.append(source)
        }
        done.wait()
        sources.forEach { $0.cancel() }
    }
}

enum FileHandleStderr {
    static func write(_ s: String) {
        var bytes = Array(s.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
