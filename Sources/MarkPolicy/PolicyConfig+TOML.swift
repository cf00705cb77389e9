import MarkCore
import MarkSessions
import TOMLKit

extension PolicyConfig {
    /// Parses and validates a TOML policy. `file` names the text in errors (and is the
    /// directory relative `file:` block lists are resolved against); `readFile` reads those
    /// block lists (the module does no I/O of its own).
    ///
    /// Every error is a `PolicyError` (`file:line: key: reason`): syntax errors with
    /// TOMLKit's line, unknown keys (typos are never ignored), wrong types, bad values and
    /// broken references with the line of the offending key.
    /// `checkPEM` parses the Captive Portal API's certificate and key (the shell's TLS
    /// library; the default only checks the PEM markers).
    public static func load(text: String, file: String,
                            readFile: (String) throws -> String,
                            checkPEM: @escaping PEMCheck = PEMChecks.markersOnly) throws(PolicyError) -> PolicyConfig {
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw PolicyError(file: file, line: e.source.begin.line, key: nil,
                              reason: "syntax error: \(e.description) (column \(e.source.begin.column))")
        } catch {
            throw PolicyError(file: file, line: nil, key: nil, reason: "syntax error: \(error)")
        }
        // TOMLKit never frees a parsed document; clearing it frees everything but the root.
        defer { root.clear() }
        let reader = TOMLPolicyReader(file: file, locator: TOMLLocator(text), checkPEM: checkPEM)
        let config = try reader.read(root, readFile: readFile)
        try config.validate(file: file, locator: reader.locator)
        return config
    }
}

/// Turns a parsed TOML document into a `PolicyConfig`: shapes, types, keys and values.
/// Cross-references (pools, marks, masks) are checked by `PolicyConfig.validate`.
struct TOMLPolicyReader {
    let file: String
    let locator: TOMLLocator
    var checkPEM: PEMCheck = PEMChecks.markersOnly

    static let rootKeys = ["server", "conntrack", "pool", "client", "mark", "local", "sessions", "set"]
    static let sessionsKeys = ["database", "control", "portal-api", "portal-tls-cert", "portal-tls-key"]
    static let localKeys = ["domain", "hosts", "private-reverse", "ttl", "records"]
    static let serverKeys = ["listen"]
    static let conntrackKeys = ["mask", "base", "on-missing", "mark-source"]
    static let poolKeys = ["name", "servers", "strategy", "default", "domains",
                           "tls-ca", "tls-pin", "max-connections", "https-method"]
    static let clientKeys = ["name", "match", "mark"]
    static let markKeys = ["value", "name", "action", "pool", "portal", "allow", "ttl",
                           "block", "block-answer", "block-ttl", "table",
                           "sessions", "session-timeout", "range", "user-portal-url"]
    static let walledGardenOnly = ["portal", "allow", "ttl"]

    func error(_ key: String, _ reason: String) -> PolicyError {
        PolicyError(file: file, line: locator.line(of: key), key: key, reason: reason)
    }

    func read(_ root: TOMLTable, readFile: (String) throws -> String) throws(PolicyError) -> PolicyConfig {
        try checkKeys(root, "", Self.rootKeys)

        var server = ServerConfig()
        if let t = try table(root, "server") {
            try checkKeys(t, "server", Self.serverKeys)
            if let list = try strings(t, "listen", path: "server.listen") {
                guard !list.isEmpty else { throw error("server.listen", "is empty (leave it out to use the command line's)") }
                server.listen = try list.enumerated().map { (i, s) throws(PolicyError) in
                    try endpoint(s, path: "server.listen[\(i + 1)]")
                }
            }
        }

        var conntrack = ConntrackConfig()
        if let t = try table(root, "conntrack") {
            try checkKeys(t, "conntrack", Self.conntrackKeys)
            if let m = try uint32(t, "mask", path: "conntrack.mask") { conntrack.mask = m }
            if let b = try uint32(t, "base", path: "conntrack.base") { conntrack.base = b }
            if let s = try string(t, "on-missing", path: "conntrack.on-missing") {
                conntrack.onMissing = try choice(s, OnMissing.self, path: "conntrack.on-missing")
            }
            if let s = try string(t, "mark-source", path: "conntrack.mark-source") {
                conntrack.markSource = try choice(s, PacketMarkTrust.Mode.self, path: "conntrack.mark-source")
            }
        }

        var pools: [Pool] = []
        var defaultPool: String? = nil
        for (i, t) in try tables(root, "pool").enumerated() {
            let p = "pool[\(i + 1)]"
            try checkKeys(t, p, Self.poolKeys)
            let name = try required(string(t, "name", path: "\(p).name"), "\(p).name", in: p)
            let list = try required(strings(t, "servers", path: "\(p).servers"), "\(p).servers", in: p)
            var pool = Pool(name: name, servers: [])
            pool.setUpstreams(try list.enumerated().map { (j, s) throws(PolicyError) in
                try upstream(s, path: "\(p).servers[\(j + 1)]")
            })
            try readSecureSettings(t, path: p, into: &pool, readFile: readFile)
            if let s = try string(t, "strategy", path: "\(p).strategy") {
                pool.strategy = try choice(s, PoolStrategy.self, path: "\(p).strategy")
            }
            if let list = try strings(t, "domains", path: "\(p).domains") {
                pool.domains = try list.enumerated().map { (j, d) throws(PolicyError) in
                    switch DomainName.normalize(d) {
                    case .success(let n): return n
                    case .failure(let e): throw error("\(p).domains[\(j + 1)]", e.description)
                    }
                }
            }
            if try bool(t, "default", path: "\(p).default") == true {
                if let d = defaultPool { throw error("\(p).default", "pool '\(d)' is already the default") }
                defaultPool = name
            }
            pools.append(pool)
        }
        let fallbackPool = defaultPool ?? pools.first?.name ?? ""

        var marks: [MarkRule] = []
        for (i, t) in try tables(root, "mark").enumerated() {
            marks.append(try mark(t, path: "mark[\(i + 1)]", defaultPool: fallbackPool, readFile: readFile))
        }

        var clients: [ClientRule] = []
        for (i, t) in try tables(root, "client").enumerated() {
            let p = "client[\(i + 1)]"
            try checkKeys(t, p, Self.clientKeys)
            let name = try required(string(t, "name", path: "\(p).name"), "\(p).name", in: p)
            let list = try required(strings(t, "match", path: "\(p).match"), "\(p).match", in: p)
            let selectors = try list.enumerated().map { (j, s) throws(PolicyError) in
                try selector(s, path: "\(p).match[\(j + 1)]")
            }
            guard let v = t["mark"] else { throw missing("\(p).mark", in: p) }
            let value: UInt32
            if let s = v.string {
                guard let m = marks.first(where: { $0.name == s }) else {
                    throw error("\(p).mark", "no [[mark]] is named '\(s)'")
                }
                value = m.value
            } else {
                value = try uint32(v, path: "\(p).mark")
            }
            clients.append(ClientRule(name: name, match: selectors, mark: value))
        }

        return PolicyConfig(server: server, conntrack: conntrack, pools: pools, clients: clients,
                            marks: marks, defaultPool: fallbackPool, local: try local(root),
                            sessions: try sessions(root, readFile: readFile), sets: try sets(root, marks: marks))
    }

    private func sessions(_ root: TOMLTable, readFile: (String) throws -> String) throws(PolicyError) -> SessionsConfig {
        var s = SessionsConfig()
        guard let t = try table(root, "sessions") else { return s }
        try checkKeys(t, "sessions", Self.sessionsKeys)
        for (key, path) in [("database", "sessions.database"), ("control", "sessions.control")] {
            guard let v = try string(t, key, path: path) else { continue }
            guard v.hasPrefix("/"), v.count > 1 else { throw error(path, "'\(v)' is not an absolute path") }
            if key == "database" { s.database = v } else { s.control = v }
        }
        if let a = try string(t, "portal-api", path: "sessions.portal-api") {
            do { s.portalAPI = try Endpoint.parse(a, defaultPort: 8908) } catch { throw self.error("sessions.portal-api", error.description) }
        }
        s.portalTLS = try portalTLS(t, api: s.portalAPI != nil, readFile: readFile)
        return s
    }

    /// `portal-tls-cert` and `portal-tls-key`: both or neither, only with `portal-api`, each
    /// file readable and parsable (relative paths: from the policy file's directory).
    private func portalTLS(_ t: TOMLTable, api: Bool, readFile: (String) throws -> String) throws(PolicyError) -> PortalTLSFiles? {
        let cert = try string(t, "portal-tls-cert", path: "sessions.portal-tls-cert")
        let key = try string(t, "portal-tls-key", path: "sessions.portal-tls-key")
        switch (cert, key) {
        case (nil, nil): return nil
        case (_?, nil): throw error("sessions.portal-tls-cert", "needs portal-tls-key too (the certificate's private key)")
        case (nil, _?): throw error("sessions.portal-tls-key", "needs portal-tls-cert too (the certificate it is the key of)")
        case let (cert?, key?):
            guard api else { throw error("sessions.portal-tls-cert", "there is no portal-api for it to serve") }
            let certFile = BlockList.resolve(cert, relativeTo: file), keyFile = BlockList.resolve(key, relativeTo: file)
            let certPEM = try readPEM(certFile, .certificateChain, key: "sessions.portal-tls-cert", readFile: readFile)
            let keyPEM = try readPEM(keyFile, .privateKey, key: "sessions.portal-tls-key", readFile: readFile)
            return PortalTLSFiles(certFile: certFile, keyFile: keyFile, certPEM: certPEM, keyPEM: keyPEM)
        }
    }

    private func readPEM(_ path: String, _ kind: PortalTLSFiles.Kind, key: String,
                         readFile: (String) throws -> String) throws(PolicyError) -> String {
        let pem: String
        do { pem = try readFile(path) } catch { throw self.error(key, "cannot read '\(path)': \(error)") }
        if let reason = PEMChecks.markersOnly(kind, pem) ?? checkPEM(kind, pem) {
            throw self.error(key, "'\(path)' \(reason)")
        }
        return pem
    }

    private func local(_ root: TOMLTable) throws(PolicyError) -> LocalConfig {
        var local = LocalConfig()
        guard let t = try table(root, "local") else { return local }
        try checkKeys(t, "local", Self.localKeys)
        if let d = try string(t, "domain", path: "local.domain") {
            switch DomainName.normalize(d) {
            case .success(let n): local.domain = n
            case .failure(let e): throw error("local.domain", e.description)
            }
        }
        if let h = try strings(t, "hosts", path: "local.hosts") {
            local.hosts = h.map { BlockList.resolve($0, relativeTo: file) }
        }
        if let b = try bool(t, "private-reverse", path: "local.private-reverse") { local.privateReverse = b }
        if let ttl = try uint32(t, "ttl", path: "local.ttl", max: 604_800) { local.ttl = ttl }
        if let list = try strings(t, "records", path: "local.records") {
            local.records = try list.enumerated().map { (i, line) throws(PolicyError) in
                switch LocalRecord.parse(line) {
                case .success(let r): return r
                case .failure(let e): throw error("local.records[\(i + 1)]", e.description)
                }
            }
        }
        return local
    }

    private func mark(_ t: TOMLTable, path p: String, defaultPool: String,
                      readFile: (String) throws -> String) throws(PolicyError) -> MarkRule {
        try checkKeys(t, p, Self.markKeys)
        let range: MarkRange?
        if let r = try string(t, "range", path: "\(p).range") {
            switch MarkRange.parse(r) {
            case .success(let v): range = v
            case .failure(let e): throw error("\(p).range", e.description)
            }
            if t["value"] != nil { throw error("\(p).value", "a mark with a range takes its values from the range; leave value out") }
        } else {
            range = nil
        }
        let value: UInt32
        if let range { value = range.lower } else {
            value = try required(uint32(t, "value", path: "\(p).value"), "\(p).value", in: p)
        }
        let name = try required(string(t, "name", path: "\(p).name"), "\(p).name", in: p)
        let kind = try string(t, "action", path: "\(p).action").map { s throws(PolicyError) in
            try choice(s, ActionKind.self, path: "\(p).action")
        } ?? .forward
        let poolName = try string(t, "pool", path: "\(p).pool")
        if kind != .walledGarden, let k = Self.walledGardenOnly.first(where: { t[$0] != nil }) {
            throw error("\(p).\(k)", "only applies to action = \"walled-garden\"")
        }
        let action: MarkAction
        switch kind {
        case .forward:
            action = .forward(pool: poolName ?? defaultPool)
        case .refuse:
            for k in ["pool", "block", "block-answer", "block-ttl"] where t[k] != nil {
                throw error("\(p).\(k)", "has no effect with action = \"refuse\"")
            }
            action = .refuse
        case .walledGarden:
            let portalText = try required(strings(t, "portal", path: "\(p).portal"), "\(p).portal", in: p)
            let portal = try portalText.enumerated().map { (j, s) throws(PolicyError) -> IPAddress in
                guard let a = IPAddress(s), !a.isUnspecified else {
                    throw error("\(p).portal[\(j + 1)]", "'\(s)' is not an IPv4 or IPv6 address")
                }
                return a
            }
            let allow = try (strings(t, "allow", path: "\(p).allow") ?? []).enumerated().map { (j, s) throws(PolicyError) in
                try domain(s, path: "\(p).allow[\(j + 1)]")
            }
            let ttl = try uint32(t, "ttl", path: "\(p).ttl", max: 86_400) ?? WalledGarden.defaultTTL
            action = .walledGarden(WalledGarden(portal: portal, allow: allow, ttl: ttl, pool: poolName ?? defaultPool))
        }

        var rule = MarkRule(value: value, name: name, action: action)
        var seen = Set<String>()
        for (j, entry) in (try strings(t, "block", path: "\(p).block") ?? []).enumerated() {
            let ep = "\(p).block[\(j + 1)]"
            if entry.hasPrefix(BlockList.filePrefix) {
                let given = String(entry.dropFirst(BlockList.filePrefix.count))
                guard !given.isEmpty else { throw error(ep, "'file:' needs a path") }
                let path = BlockList.resolve(given, relativeTo: file)
                let text: String
                do { text = try readFile(path) } catch { throw self.error(ep, "cannot read '\(path)': \(error)") }
                switch BlockList.parse(text) {
                case .success(let names):
                    for n in names where seen.insert(n).inserted { rule.block.append(n) }
                case .failure(let e):
                    throw PolicyError(file: path, line: e.line, key: ep, reason: e.reason)
                }
                rule.blockFiles.append(given)
            } else {
                let n = try domain(entry, path: ep)
                if seen.insert(n).inserted { rule.block.append(n) }
            }
        }
        if let s = try string(t, "block-answer", path: "\(p).block-answer") {
            rule.blockAnswer = try choice(s, BlockAnswer.self, path: "\(p).block-answer")
        }
        if let ttl = try uint32(t, "block-ttl", path: "\(p).block-ttl", max: 604_800) { rule.blockTTL = ttl }
        rule.table = try uint32(t, "table", path: "\(p).table")
        rule.sessions = try bool(t, "sessions", path: "\(p).sessions") ?? false
        rule.range = range
        if let d = try string(t, "session-timeout", path: "\(p).session-timeout") {
            switch SessionDuration.parse(d) {
            case .success(let s): rule.sessionTimeout = s
            case .failure(let e): throw error("\(p).session-timeout", e.description)
            }
        }
        if !rule.sessions, let k = ["session-timeout", "range"].first(where: { t[$0] != nil }) {
            throw error("\(p).\(k)", "only applies with sessions = true")
        }
        if let u = try string(t, "user-portal-url", path: "\(p).user-portal-url") {
            guard u.hasPrefix("https://") || u.hasPrefix("http://"), u.count > 8,
                  !u.unicodeScalars.contains(where: { $0.value <= 0x20 || $0 == "\"" }) else {
                throw error("\(p).user-portal-url", "'\(u)' is not an http:// or https:// URL")
            }
            rule.userPortalURL = u
        }
        return rule
    }

    // MARK: - Values

    private func endpoint(_ s: String, path: String) throws(PolicyError) -> Endpoint {
        do { return try Endpoint.parse(s, defaultPort: 53) } catch { throw self.error(path, error.description) }
    }

    private func upstream(_ s: String, path: String) throws(PolicyError) -> UpstreamAddress {
        do { return try UpstreamAddress.parse(s) } catch { throw self.error(path, error.description) }
    }

    private func selector(_ s: String, path: String) throws(PolicyError) -> ClientSelector {
        do { return try ClientSelector(parsing: s) } catch { throw self.error(path, error.description) }
    }

    private func domain(_ s: String, path: String) throws(PolicyError) -> String {
        switch DomainName.normalize(s) {
        case .success(let n): return n
        case .failure(let e): throw error(path, e.description)
        }
    }

    private func choice<E: RawRepresentable & CaseIterable>(_ s: String, _: E.Type, path: String) throws(PolicyError) -> E
    where E.RawValue == String {
        guard let v = E(rawValue: s) else {
            throw error(path, "'\(s)' is not one of " + E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))
        }
        return v
    }
}
