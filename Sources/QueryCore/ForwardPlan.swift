import DNSCache
import DNSWire
import MarkCore
import MarkPolicy

/// What an answer in the cache belongs to: the policy view, the pool that made it and the
/// mark it was fetched with. Two clients share an answer only when all three agree.
public struct CacheView: Hashable, Sendable {
    public var view: PolicyView
    public var pool: String
    public var upstreamMark: UInt32

    public init(view: PolicyView, pool: String, upstreamMark: UInt32) {
        self.view = view; self.pool = pool; self.upstreamMark = upstreamMark
    }

    /// Hashes the marks, not the names or the kind (equality still compares everything).
    /// Under one policy those follow from what is hashed (a view's name and kind from its
    /// mark; the pool from the view and the question, which the key hashes too), and
    /// hashing two strings (and the kind's raw string) was a third of a cache hit's
    /// instructions.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(view.mark)
        hasher.combine(upstreamMark)
        hasher.combine(pool.utf8.count)
    }
}

public typealias CacheKey = AnswerCache<CacheView>.Key

/// The coalescing key, hashed once: the table of queries in flight is probed up to four
/// times per query (find, insert, find, remove) and hashing the view's names and the
/// question is most of a probe's cost.
public struct InflightKey: Hashable, Sendable {
    public let cache: CacheKey
    public let proto: TransportProtocol
    private let hash: Int

    public init(cache: CacheKey, proto: TransportProtocol) {
        self.init(cache: cache, proto: proto, cacheHash: cache.hashValue)
    }

    /// With the cache key's hash already taken (`ForwardPlan` hashes the key once for
    /// both the cache and this table).
    public init(cache: CacheKey, proto: TransportProtocol, cacheHash: Int) {
        self.cache = cache
        self.proto = proto
        var h = Hasher()
        h.combine(cacheHash)
        h.combine(cache.maxSize)
        h.combine(proto)
        self.hash = h.finalize()
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(hash) }

    public static func == (a: InflightKey, b: InflightKey) -> Bool {
        // The client's size limit too (the cache key leaves it out): followers get the
        // leader's answer as it is, so it must have been asked for their limit.
        a.hash == b.hash && a.proto == b.proto && a.cache.maxSize == b.cache.maxSize && a.cache == b.cache
    }
}

/// How the client's bytes become the upstream query, as offsets into them: nothing is
/// re-encoded. The ID is set per attempt.
public struct UpstreamRewrite: Equatable, Sendable {
    /// Bytes of the client's message to send (the OPT record's options cut off the end).
    public var length: Int
    /// Where the EDNS payload size sits and what it becomes (nil: no EDNS).
    public var payloadSizeOffset: Int?
    public var payloadSize: UInt16
    /// Where the OPT record's RDLENGTH sits when its options were cut off (set to 0).
    public var optionsLengthOffset: Int?

    /// The upstream copy of `bytes` (the client's whole message).
    public func apply(to bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var out = Array(bytes.prefix(length))
        if let offset = payloadSizeOffset {
            out[offset] = UInt8(payloadSize >> 8)
            out[offset + 1] = UInt8(payloadSize & 0xFF)
        }
        if let offset = optionsLengthOffset {
            out[offset] = 0
            out[offset + 1] = 0
        }
        return out
    }
}

/// The forwarding decisions of one query that depend on the query alone: the keys it is
/// cached and coalesced under, whether it may share an answer at all, and its upstream copy.
public struct ForwardPlan: Sendable {
    public var cacheKey: CacheKey
    /// `cacheKey.hashValue`, taken once: the cache lookup, the store of the answer and the
    /// coalescing key all use it (hashing the view's and pool's names and the question is
    /// most of a cache hit's cost).
    public var cacheHash: Int
    public var inflightKey: InflightKey
    /// False when the query carries EDNS options that cannot be cut off (the OPT record is
    /// not the last record): it then goes upstream as it is and shares nothing.
    public var shareable: Bool
    public var rewrite: UpstreamRewrite

    public init(query: DNSMessage, proto: TransportProtocol, view: CacheView) {
        let edns = query.edns
        // The largest answer the client can take: 512, its EDNS size (clamped as sent
        // upstream), or 64 KiB over TCP.
        let maxSize = proto == .tcp ? 65535
            : Int(edns.map { DNSRewrite.upstreamPayloadSize(forClient: $0.payloadSize) } ?? 512)
        cacheKey = CacheKey(view: view, question: query.question, edns: edns != nil,
                            dnssecOK: edns?.dnssecOK ?? false, checkingDisabled: query.header.checkingDisabled,
                            maxSize: maxSize, recursionDesired: query.header.recursionDesired,
                            ednsVersion: edns?.version ?? 0)
        cacheHash = cacheKey.hashValue
        inflightKey = InflightKey(cache: cacheKey, proto: proto, cacheHash: cacheHash)
        // EDNS options (cookies, client subnet) are the client's own: they are not sent
        // upstream, so answers stay shareable, unless the OPT record is not the last one.
        let optionsLength = edns?.optionsLength ?? 0
        let cut = edns.map { $0.optionsLength > 0 && $0.payloadSizeOffset + 8 + $0.optionsLength == query.length } ?? false
        shareable = optionsLength == 0 || cut
        rewrite = UpstreamRewrite(
            length: cut ? query.length - optionsLength : query.length,
            payloadSizeOffset: edns?.payloadSizeOffset,
            payloadSize: edns.map { DNSRewrite.upstreamPayloadSize(forClient: $0.payloadSize) } ?? 0,
            optionsLengthOffset: cut ? edns.map { $0.payloadSizeOffset + 6 } : nil)
    }
}
