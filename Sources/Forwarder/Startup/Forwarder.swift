import CBatchIO
import Conntrack
import Dispatch
import Logging
import MarkCore
import MarkPolicy
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOPosix
import QueryCore

#if canImport(Glibc)
import Glibc
#endif

/// A start-up failure, worded for the operator: one line, what and why.
public struct ForwarderStartError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// The running forwarder: `threads` data-plane loops, each with an engine of its own (its
/// own ctnetlink socket, cache and upstream sockets) behind its own UDP listeners on every
/// configured address, and, on a NIO loop paired with it, its TCP listeners; bound with
/// SO_REUSEPORT so the kernel spreads clients over them (one client address always reaches
/// the same engine, over UDP or TCP). What must hold across loops is shared behind a lock:
/// the port quarantine (a 5-tuple never carries two marks) and the TCP connection limits.
public final class Forwarder: Sendable {
    /// NIO's loops: TCP connections (clients and upstreams), one per data-plane loop.
    private let group: MultiThreadedEventLoopGroup
    /// The data-plane loops (UDP, the query engines), stopped after the engines.
    private let dataPlanes: [DataPlaneLoop]
    private let engines: [NIOLoopBound<QueryEngine>]
    /// The DoT, DoH and TCP upstream connections (`Pools/`), closed at shutdown.
    private let channels: [any Channel]
    private let localData: LocalDataLoader
    /// The TCP listening sockets (also in `channels`): closed first on shutdown.
    private let tcpListeners: [any Channel]
    public let boundAddresses: [String]
    private let logger: Logger

    public static func start(config: ForwarderConfig, logger: Logger) throws -> Forwarder {
        guard config.policy.config.pools.contains(where: { !$0.servers.isEmpty }) else {
            throw ForwarderStartError(description: "no upstream given (--upstream ADDR:PORT or a [[pool]] in the policy)")
        }
        let failClosed = config.policy.config.conntrack.onMissing == .refuse
        try checkMarkCapability(config)
        let threads = max(1, config.threads)
        var dataPlanes: [DataPlaneLoop] = []
        do {
            for index in 0..<threads {
                let loop = try DataPlaneLoop(name: "markdns-dp-\(index)", logger: logger)
                loop.start()
                dataPlanes.append(loop)
            }
        } catch {
            stopLoops(dataPlanes)
            throw ForwarderStartError(description: "cannot start the data-plane threads: \(error)")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let tcpLoops = Array(group.makeIterator())
        let shared = SharedState(config: config)
        let engineConfig = config.perEngine(threads: threads)
        var engines: [NIOLoopBound<QueryEngine>] = []
        var loopsWithMarkSource = 0
        for (loop, tcpLoop) in zip(dataPlanes, tcpLoops) {
            // The mark source is created on the loop that will use it (it is not thread-safe).
            let made: Result<(NIOLoopBound<QueryEngine>, Bool), ForwarderStartError> = try loop.submit {
                var markSource: (any MarkSource)? = nil
                if config.useConntrack {
                    do {
                        markSource = try NetlinkMarkSource()
                    } catch {
                        if failClosed {
                            return .failure(ForwarderStartError(description: "\(error); refusing unmarked queries (--require-mark / on-missing = \"refuse\") cannot be honoured"))
                        }
                        logger.warning("\(error); every query will be forwarded unmarked")
                    }
                }
                let engine = QueryEngine(loop: loop, tcpLoop: tcpLoop, config: engineConfig, markSource: markSource,
                                         shared: shared, neighbours: NeighbourTable(), logger: logger)
                let bound = NIOLoopBound(engine, eventLoop: loop)
                loop.onReady { [unowned engine] token in engine.ready(token) }
                loop.onDeadline { [unowned engine] in engine.timerFired() }
                engine.startSweeping()
                return .success((bound, markSource != nil))
            }.wait()
            switch made {
            case .success(let (e, has)):
                engines.append(e)
                if has { loopsWithMarkSource += 1 }
            case .failure(let error):
                stopEngines(engines)
                stopLoops(dataPlanes)
                try? group.syncShutdownGracefully()
                throw error
            }
        }
        let allEngines = engines
        let localData = LocalDataLoader(config: config.policy.config.local, logger: logger) { zone in
            for engine in allEngines { engine.eventLoop.execute { engine.value.setLocalZone(zone) } }
        }
        localData.start()
        var channels: [any Channel] = []
        var tcpListeners: [any Channel] = []
        var names: [String] = []
        var udpGroups: [(fd: Int32, ipv6: Bool)] = []
        do {
            for endpoint in try expandWildcards(config.listen, logger: logger) {
                let address = endpoint.socketAddress
                // With several loops the listeners share the port (SO_REUSEPORT); make sure
                // nobody else holds it first, or we would silently split its traffic.
                if threads > 1 { try checkPortFree(address, local: endpoint) }
                var udp: [Int32] = [], tcp: [any Channel] = []
                for (engine, tcpLoop) in zip(engines, tcpLoops) {
                    udp.append(try bindUDP(endpoint, engine: engine, reusePort: threads > 1))
                    tcp.append(try bindTCP(address, engine: engine, on: tcpLoop, shared: shared, config: config,
                                           reusePort: threads > 1))
                }
                channels += tcp
                tcpListeners += tcp
                // One client address, one loop (socket i of the group belongs to loop i).
                if config.loopSpread == .adaptive && threads > 1 {
                    udpGroups.append((udp[0], endpoint.address.isIPv6))
                } else {
                    ClientSteering.attach(fd: udp[0], ipv6: endpoint.address.isIPv6, loops: threads, logger: logger)
                }
                ClientSteering.attach(to: tcp[0], ipv6: endpoint.address.isIPv6, loops: threads, logger: logger)
                names.append(endpoint.description)
            }
        } catch {
            for c in channels { try? c.close().wait() }
            stopEngines(engines)
            stopLoops(dataPlanes)
            localData.stop()
            try? group.syncShutdownGracefully()
            throw error
        }
        if !udpGroups.isEmpty {
            let first = engines[0], loops = dataPlanes, groups = udpGroups
            try? first.eventLoop.submit { first.value.spread = UDPSpread(loops: loops, groups: groups, logger: logger) }.wait()
        }
        let spreadNote = udpGroups.isEmpty ? "" : " (UDP clients on one of them until it is busy: --loop-spread)"
        let packetMarks = engines.allSatisfy { engine in
            (try? engine.eventLoop.submit { engine.value.listeners.allSatisfy(\.receivesMarks) }.wait()) ?? false
        }
        let marksFrom: String
        // Every loop's own ctnetlink socket counts, not the last one's.
        let hasMarkSource = loopsWithMarkSource > 0
        switch (hasMarkSource, config.markSource ?? config.policy.config.conntrack.markSource, packetMarks) {
        case (false, _, _): marksFrom = "nowhere (unmarked)"
        case (true, .conntrack, _): marksFrom = "ctnetlink (mark source: conntrack)"
        case (true, .auto, false): marksFrom = "ctnetlink (this kernel has no SO_RCVMARK: Linux 5.19+ reads packet marks)"
        case (true, .auto, true): marksFrom = "UDP packet marks (SO_RCVMARK) once they match ctnetlink's connmarks, else ctnetlink"
        }
        let partial = hasMarkSource && loopsWithMarkSource < threads
            ? " (\(threads - loopsWithMarkSource) of \(threads) event loops have no ctnetlink socket: their queries go unmarked)" : ""
        logger.info("listening on \(names.joined(separator: ", ")) (udp+tcp); pools \(config.policy.config.pools.map { "\($0.name)=\($0.servers.map(\.description).joined(separator: ","))" }.joined(separator: " ")); marks from \(marksFrom)\(partial), mask \(hex(config.policy.mask)), on-missing \(config.policy.config.conntrack.onMissing.rawValue); \(threads) event loop(s)\(spreadNote)")
        return Forwarder(group: group, dataPlanes: dataPlanes, engines: engines,
                         channels: channels, tcpListeners: tcpListeners, localData: localData, boundAddresses: names, logger: logger)
    }

    private init(group: MultiThreadedEventLoopGroup, dataPlanes: [DataPlaneLoop], engines: [NIOLoopBound<QueryEngine>],
                 channels: [any Channel], tcpListeners: [any Channel], localData: LocalDataLoader, boundAddresses: [String], logger: Logger) {
        self.group = group
        self.dataPlanes = dataPlanes
        self.engines = engines
        self.channels = channels
        self.localData = localData
        self.tcpListeners = tcpListeners
        self.boundAddresses = boundAddresses
        self.logger = logger
    }

    /// Stops accepting queries, waits up to `drainTimeout` for those in flight, and
    /// returns the final counters.
    ///
    /// At once: the TCP listeners close (new connections are refused), and queries that
    /// still arrive (UDP, or on open TCP connections) are not forwarded (UDP: SERVFAIL;
    /// cache hits are still answered). Queries in flight are answered as their upstream
    /// answers; at the deadline the rest are dropped (logged). Then every socket closes.
    public func shutdown(drainTimeout: TimeAmount = .seconds(2)) -> Counters {
        // New TCP connections are refused at once.
        let stopAccepting = tcpListeners.map { channel in channel.eventLoop.flatSubmit { channel.close() } }
        // Every engine stops taking queries and drains (in parallel) up to the deadline;
        // then the listeners close (answers in flight leave through them).
        let logger = self.logger
        let drained = engines.map { engine in
            engine.eventLoop.flatSubmit {
                let loop = engine.eventLoop
                let done = loop.makePromise(of: Void.self)
                engine.value.drain().cascade(to: done)
                let deadline = loop.scheduleTask(in: drainTimeout) {
                    let left = engine.value.inFlight
                    if left > 0 {
                        logger.warning("drain deadline (\(drainTimeout.nanoseconds / 1_000_000) ms) reached: \(left) queries still in flight are dropped")
                    }
                    done.succeed(())
                }
                return done.futureResult.map { deadline.cancel() }
            }
        }
        for f in stopAccepting { try? f.wait() }
        for f in drained { try? f.wait() }
        let closing = channels.map { channel in channel.eventLoop.flatSubmit { channel.close() } }
        for c in closing { try? c.wait() }
        for engine in engines { try? engine.eventLoop.submit { engine.value.closePools() }.wait() }
        Self.stopEngines(engines)
        let total = counters()
        localData.stop()
        Self.stopLoops(dataPlanes)
        try? group.syncShutdownGracefully()
        return total
    }

    /// Runs `before` on every event loop thread, then `body` on the calling thread while
    /// every loop is parked (blocked: it handles no I/O), then, if both succeeded, `after`
    /// on every loop thread before it serves again. For a process-wide change whose
    /// per-thread parts must land on the loop threads with no query handled in between
    /// (dropping root: the keep-caps flag and capabilities are per thread). Every thread
    /// that sends is one of them: the data-plane loops (UDP, SO_MARK on new upstream
    /// sockets) and NIO's (TCP connects with SO_MARK). `also`: other loops parked the same
    /// way (the session control loop, which runs nft and ctnetlink updates).
    public func withLoopsParked(also extra: [any EventLoop] = [],
                                before: @escaping @Sendable () throws -> Void,
                                _ body: () throws -> Void,
                                after: @escaping @Sendable () throws -> Void) throws {
        var loops: [any EventLoop] = dataPlanes + extra
        for loop in group.makeIterator() { loops.append(loop) }
        let parked = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let beforeError = NIOLockedValueBox<(any Error)?>(nil)
        let proceed = NIOLockedValueBox(false)
        let finished = loops.map { loop in
            loop.submit {
                do { try before() } catch { beforeError.withLockedValue { $0 = $0 ?? error } }
                parked.signal()
                release.wait()
                if proceed.withLockedValue({ $0 }) { try after() }
            }
        }
        for _ in loops { parked.wait() }
        let result = Result<Void, any Error> {
            if let error = beforeError.withLockedValue({ $0 }) { throw error }
            try body()
        }
        if case .success = result { proceed.withLockedValue { $0 = true } }
        for _ in loops { release.signal() }
        for f in finished { try f.wait() }
        try result.get()
    }

    /// Puts a new policy in force for every query that arrives from now on.
    public func reload(_ policy: PolicyEngine) {
        for engine in engines { engine.eventLoop.execute { engine.value.reload(policy) } }
        localData.update(policy.config.local)
    }

    /// Re-reads the hosts files (SIGHUP without a policy file).
    public func reloadLocalData() {
        localData.reload()
    }

    /// The counters now, summed over the event loops (for periodic stats).
    public func counters() -> Counters { snapshot().counters }

    /// The counters and the number of queries in flight now (for /metrics). Blocks on the
    /// DNS loop: call it from another thread.
    public func snapshot() -> (counters: Counters, outstanding: Int) {
        var total = Counters()
        var outstanding = 0
        for engine in engines {
            let (c, o) = (try? engine.eventLoop.submit { (engine.value.countersNow, engine.value.inFlight) }.wait()) ?? (Counters(), 0)
            total.add(c)
            outstanding += o
        }
        return (total, outstanding)
    }
}
