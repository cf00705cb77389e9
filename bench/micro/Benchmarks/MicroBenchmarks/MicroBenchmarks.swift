import Benchmark
import DNSCache
import DNSWire
import MarkCore
import MarkPolicy

/// Per-operation CPU time and mallocs of the forwarder's pure hot-path steps. Every
/// benchmark runs its operation a million times per iteration (`.mega`: the CPU clock
/// ticks in 10 ms), and the reported figures are per operation.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.cpuTotal, .wallClock, .mallocCountTotal, .throughput],
        warmupIterations: 1,
        scalingFactor: .mega,
        maxDuration: .seconds(3),
        maxIterations: 100
    )

    let query = Fixtures.query("www.example.com")
    let answer = Fixtures.answer("www.example.com")

    Benchmark("DNSMessage.parse query") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try DNSMessage.parse(query))
        }
    }

    // Longer than 32 bytes, as CDN and tracking names often are.
    let longQuery = Fixtures.query("e1234.dscb.akamaiedge-staging.example-cdn.net")
    Benchmark("DNSMessage.parse query (46-byte name)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try DNSMessage.parse(longQuery))
        }
    }

    Benchmark("DNSMessage.parse answer") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try DNSMessage.parse(answer))
        }
    }

    let policy = Fixtures.accountingPolicy()
    let kidsClient = ClientIdentity(address: IPAddress("192.168.2.5")!)
    let queryName = try! DNSMessage.parse(query).question.name.wire
    Benchmark("PolicyEngine.decide + block check (connmark)") { benchmark in
        for _ in benchmark.scaledIterations {
            let d = policy.decide(connmark: .found(0x0300), client: kidsClient)
            blackHole(d.answer(wireName: queryName, qtype: DNSType.a))
        }
    }
    let laptop = ClientIdentity(address: IPAddress("192.168.1.99")!, mac: [0xAA, 0xBB, 0xCC, 0, 0, 0x10])
    Benchmark("PolicyEngine.decide (no connmark, selectors)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(policy.decide(connmark: nil, client: laptop))
        }
    }

    // Cache: 10,000 names answered for one view, as a warm forwarder holds them.
    let view = View(view: PolicyView(mark: 0x100, kind: .forward, name: "alice"), pool: "isp", upstreamMark: 0x100)
    let names = (0..<10_000).map { "n\($0).bench.test" }
    func key(_ message: DNSMessage) -> AnswerCache<View>.Key {
        AnswerCache<View>.Key(view: view, question: message.question, edns: message.edns != nil,
                              dnssecOK: false, maxSize: 1232)
    }
    let queries = names.map { try! DNSMessage.parse(Fixtures.query($0)) }
    let answers = names.map { Fixtures.answer($0) }
    let keys = queries.map(key)

    var filled = AnswerCache<View>(limits: .init(capacity: 20_000))
    for (k, a) in zip(keys, answers) { filled.store(k, answer: a, now: 0) }
    let warm = filled
    Benchmark("AnswerCache.lookup hit (10k entries)") { benchmark in
        var cache = warm
        var i = 0
        for _ in benchmark.scaledIterations {
            let q = queries[i]
            blackHole(cache.lookup(keys[i], id: 0x4321, questionName: q.question.name.wire, now: 10))
            i = i == keys.count - 1 ? 0 : i + 1
        }
    }

    Benchmark("AnswerCache.store (full, evicting)") { benchmark in
        var cache = AnswerCache<View>(limits: .init(capacity: 5_000))
        var i = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            cache.store(keys[i], answer: answers[i], now: 0)
            i = i == keys.count - 1 ? 0 : i + 1
        }
        blackHole(cache.count)
    }

    // Memory of a full cache: 100,000 distinct names stored (the RSS target).
    let manyNames = (0..<100_000).map { "n\($0).bench.test" }
    let manyKeys = manyNames.map { key(try! DNSMessage.parse(Fixtures.query($0))) }
    let manyAnswers = manyNames.map { Fixtures.answer($0) }
    Benchmark("AnswerCache fill 100k entries",
              configuration: .init(metrics: [.wallClock, .peakMemoryResidentDelta, .mallocCountTotal, .mallocBytesCount],
                                   warmupIterations: 0, scalingFactor: .one, maxIterations: 5)) { benchmark in
        var cache = AnswerCache<View>(limits: .init(capacity: 100_000))
        benchmark.startMeasurement()
        for (k, a) in zip(manyKeys, manyAnswers) { cache.store(k, answer: a, now: 0) }
        benchmark.stopMeasurement()
        blackHole(cache.count)
    }

    let parsedQuery = try! DNSMessage.parse(query)
    Benchmark("DNSResponseBuilder.errorResponse") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(DNSResponseBuilder.errorResponse(to: parsedQuery, rcode: .refused))
        }
    }
    let blockAddress: [[UInt8]] = [[0, 0, 0, 0]]
    Benchmark("DNSResponseBuilder.localAnswer") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(DNSResponseBuilder.localAnswer(to: parsedQuery, addresses: blockAddress, ttl: 600))
        }
    }
}
