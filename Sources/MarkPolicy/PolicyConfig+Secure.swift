import MarkCore
import TOMLKit

/// A pool's settings for its `tls://` and `https://` servers.
extension TOMLPolicyReader {
    func readSecureSettings(_ t: TOMLTable, path p: String, into pool: inout Pool,
                            readFile: (String) throws -> String) throws(PolicyError) {
        // Relative to the policy file's directory, like block lists and hosts files.
        let caFile = try string(t, "tls-ca", path: "\(p).tls-ca").map { BlockList.resolve($0, relativeTo: file) }
        let pinTexts = try strings(t, "tls-pin", path: "\(p).tls-pin")
        let maxConnections = try uint32(t, "max-connections", path: "\(p).max-connections", max: 64)
        let method = try string(t, "https-method", path: "\(p).https-method")
        // max-connections also bounds a plain server's TCP connections (pooled the same way).
        let given = [("tls-ca", caFile != nil), ("tls-pin", pinTexts != nil), ("https-method", method != nil)]
        if pool.secure.isEmpty, let (key, _) = given.first(where: { $0.1 }) {
            throw error("\(p).\(key)", "the pool has no tls:// or https:// server for it to apply to")
        }
        if let caFile {
            do {
                let pem = try readFile(caFile)
                guard pem.contains("-----BEGIN CERTIFICATE-----") else {
                    throw error("\(p).tls-ca", "'\(caFile)' holds no PEM certificate")
                }
            } catch let e as PolicyError {
                throw e
            } catch {
                throw self.error("\(p).tls-ca", "cannot read '\(caFile)': \(error)")
            }
        }
        var pins: [[UInt8]] = []
        for (j, text) in (pinTexts ?? []).enumerated() {
            guard let pin = SPKIPin.parse(text) else {
                throw error("\(p).tls-pin[\(j + 1)]", "'\(text)' is not sha256/BASE64 of a 32-byte SPKI digest")
            }
            pins.append(pin)
        }
        if pinTexts?.isEmpty == true { throw error("\(p).tls-pin", "is empty (leave it out for no pinning)") }
        if maxConnections == 0 { throw error("\(p).max-connections", "must be at least 1") }
        var httpsMethod = StreamUpstream.Method.post
        if let method {
            guard let m = StreamUpstream.Method(rawValue: method) else {
                throw error("\(p).https-method", "'\(method)' is not one of \"post\", \"get\"")
            }
            httpsMethod = m
        }
        if let maxConnections { pool.maxConnections = Int(maxConnections) }
        for (endpoint, var s) in pool.secure {
            s.caFile = caFile
            s.pins = pins
            if let maxConnections { s.maxConnections = Int(maxConnections) }
            s.method = httpsMethod
            pool.secure[endpoint] = s
        }
    }
}

extension PolicyConfig {
    /// Every encrypted upstream of every pool, by address. One address is one upstream
    /// (health, connections): two pools naming it must agree on how it is reached.
    public var secureUpstreams: [Endpoint: StreamUpstream] {
        var all: [Endpoint: StreamUpstream] = [:]
        for p in pools { all.merge(p.secure) { a, _ in a } }
        return all
    }

    /// The TCP side of every plain server of every pool, by address, with its pool's
    /// `max-connections` (the first pool naming the address wins, as for health).
    public var tcpUpstreams: [Endpoint: StreamUpstream] {
        var all: [Endpoint: StreamUpstream] = [:]
        for p in pools {
            for e in p.servers where p.secure[e] == nil && all[e] == nil {
                var u = StreamUpstream(kind: .tcp, endpoint: e)
                u.maxConnections = p.maxConnections
                all[e] = u
            }
        }
        return all
    }

    func validateSecure(fail: (String, String) -> PolicyError) throws(PolicyError) {
        var seen: [Endpoint: (pool: String, how: UpstreamAddress)] = [:]
        for (i, p) in pools.enumerated() {
            for (j, u) in p.upstreams.enumerated() {
                if let (other, how) = seen[u.endpoint], how != u {
                    throw fail("pool[\(i + 1)].servers[\(j + 1)]",
                               "\(u) is \(how) in pool '\(other)': one address is one upstream, reached one way with one set of TLS settings")
                }
                seen[u.endpoint] = (p.name, u)
            }
        }
    }
}
