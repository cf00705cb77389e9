import MarkCore
/// The local data in force: static records, hosts files, the local domain and the
/// private reverse zones, ready to answer a question. Pure and immutable; the daemon
/// rebuilds it when a hosts file changes.
public struct LocalZone: Sendable {
    private var byName: [[UInt8]: [LocalRecord]] = [:]
    private let localDomain: DomainSet
    private let privateReverse: DomainSet
    public let ttl: UInt32
    public private(set) var recordCount = 0

    /// RFC 6303 zones (plus RFC 6598 shared address space, RFC 7793): private, loopback,
    /// link-local, documentation and unique-local ranges.
    public static let privateReverseZones: [String] = {
        var z = ["10.in-addr.arpa", "168.192.in-addr.arpa", "0.in-addr.arpa", "127.in-addr.arpa",
                 "254.169.in-addr.arpa", "2.0.192.in-addr.arpa", "100.51.198.in-addr.arpa",
                 "113.0.203.in-addr.arpa", "255.255.255.255.in-addr.arpa",
                 "d.f.ip6.arpa", "8.e.f.ip6.arpa", "9.e.f.ip6.arpa", "a.e.f.ip6.arpa", "b.e.f.ip6.arpa",
                 "8.b.d.0.1.0.0.2.ip6.arpa",
                 Array(repeating: "0", count: 32).joined(separator: ".") + ".ip6.arpa",
                 "1." + Array(repeating: "0", count: 31).joined(separator: ".") + ".ip6.arpa"]
        z += (16...31).map { "\($0).172.in-addr.arpa" }
        z += (64...127).map { "\($0).100.in-addr.arpa" }
        return z
    }()

    public init(config: LocalConfig, hosts: [HostsFile] = []) {
        ttl = config.ttl
        localDomain = DomainSet(config.domain.map { [$0] } ?? [])
        privateReverse = config.privateReverse ? DomainSet(Self.privateReverseZones) : DomainSet()
        for r in config.records { add(r) }
        var reverseDone = Set<[UInt8]>()
        for file in hosts {
            for entry in file.entries {
                var names = entry.names
                if let d = config.domain {
                    names += entry.names.filter { !$0.contains(".") }.map { "\($0).\(d)" }
                }
                for name in names {
                    guard let owner = DomainSet.wire(fromText: name) else { continue }
                    add(LocalRecord(owner: owner, type: entry.address.isV4 ? 1 : 28, rdata: entry.address.bytes))
                }
                // PTR to the canonical name (qualified when it can be), first entry wins.
                let canonical = names.first { $0.contains(".") } ?? names[0]
                if let rev = DomainSet.wire(fromText: entry.address.reverseName), reverseDone.insert(rev).inserted,
                   let target = DomainSet.wire(fromText: canonical) {
                    add(LocalRecord(owner: rev, type: LocalRecord.typePTR, rdata: target))
                }
            }
        }
    }

    private mutating func add(_ r: LocalRecord) {
        guard !(byName[r.owner]?.contains(r) ?? false) else { return }
        byName[r.owner, default: []].append(r)
        recordCount += 1
    }

    public var isEmpty: Bool { byName.isEmpty && localDomain.isEmpty && privateReverse.isEmpty }

    /// The local answer for a question (uncompressed wire name, any case), or nil when the
    /// name is not local. A CNAME is followed through local data (8 steps at most).
    public func answer(wireName: [UInt8], qtype: UInt16) -> LocalAnswer? {
        guard !byName.isEmpty || !localDomain.isEmpty, var name = DomainSet.lowercased(wireName: wireName) else { return nil }
        var out: [LocalRecord] = []
        for _ in 0..<8 {
            guard let records = byName[name] else { break }
            let matching = records.filter { $0.type == qtype || qtype == 255 }
            if !matching.isEmpty { out += matching; break }
            guard let cname = records.first(where: { $0.type == LocalRecord.typeCNAME }) else { break }
            out.append(cname)
            name = cname.rdata
        }
        if !out.isEmpty { return LocalAnswer(kind: .records(out), ttl: ttl, reason: .local) }
        guard let own = DomainSet.lowercased(wireName: wireName) else { return nil }
        if byName[own] != nil { return LocalAnswer(kind: .noData, ttl: ttl, reason: .local) }
        if localDomain.contains(wireName: own) { return LocalAnswer(kind: .nxDomain, ttl: ttl, reason: .local) }
        return nil
    }

    /// True for names under a private reverse zone (when `private-reverse` is on).
    /// `\u{4}arpa\u{0}`: the last label of every reverse name.
    static let arpaSuffix: [UInt8] = [4, 0x61, 0x72, 0x70, 0x61, 0]

    public func isPrivateReverse(wireName: [UInt8]) -> Bool {
        // Every private zone ends in .arpa: most names are ruled out without lower-casing.
        // (Concrete array, not a generic collection: this runs for every forwarded query,
        // and unspecialised generic suffix/compare cost ~4% of the forwarding CPU.)
        let n = wireName.count
        guard !privateReverse.isEmpty, n >= 6 else { return false }
        for i in 0..<6 {
            let b = wireName[n - 6 + i], want = Self.arpaSuffix[i]
            guard b == want || (want >= 0x61 && b | 0x20 == want) else { return false }
        }
        return privateReverse.contains(wireName: wireName)
    }

    /// NXDOMAIN for a private reverse name nothing local answers.
    public var privateReverseAnswer: LocalAnswer { LocalAnswer(kind: .nxDomain, ttl: ttl, reason: .privateReverse) }
}
