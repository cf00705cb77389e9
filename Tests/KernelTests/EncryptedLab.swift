import Foundation

/// A test PKI made with openssl in the lab's directory and real unbound 1.17 servers as
/// DoT (`tls-port`) and DoH (`https-port`) upstreams, answering from local data:
/// `*.example.test` A 192.0.2.7 / AAAA 2001:db8::7 and `big.test` TXT (12 records of 100
/// bytes: too large for a 512-byte UDP client).
struct TestPKI {
    /// The CA markdns trusts, and one it does not.
    let ca: String, rogueCA: String
    /// `dns.test` + the lab's upstream addresses, signed by `ca`; the same names signed by
    /// `rogueCA`.
    let cert: String, key: String, rogueCert: String, rogueKey: String
    /// `sha256/...` of the good server key, and of the rogue one.
    let pin: String, roguePin: String

    static let name = "dns.test"

    init(lab: Lab) throws {
        func run(_ args: [String]) throws -> String {
            let r = Lab.shell(args)
            guard r.status == 0 else { throw LabError("\(args.joined(separator: " ")): \(r.stderr)") }
            return r.stdout
        }
        let ext = lab.path("ext.cnf")
        try "subjectAltName=DNS:\(Self.name),IP:127.0.0.2,IP:127.0.0.3,IP:127.0.0.4,IP:fd6d::2\n"
            .write(toFile: ext, atomically: true, encoding: .utf8)
        func makeCA(_ n: String) throws {
            _ = try run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                         "-keyout", lab.path("\(n).key"), "-out", lab.path("\(n).pem"), "-days", "2",
                         "-subj", "/CN=markdns test \(n)"])
        }
        func makeServer(_ n: String, signedBy ca: String) throws -> String {
            _ = try run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                         "-keyout", lab.path("\(n).key"), "-out", lab.path("\(n).csr"), "-subj", "/CN=\(Self.name)"])
            _ = try run(["openssl", "x509", "-req", "-in", lab.path("\(n).csr"), "-CA", lab.path("\(ca).pem"),
                         "-CAkey", lab.path("\(ca).key"), "-CAcreateserial", "-out", lab.path("\(n).pem"),
                         "-days", "2", "-extfile", ext])
            let b64 = try run(["bash", "-c", "openssl pkey -in '\(lab.path("\(n).key"))' -pubout -outform DER"
                                  + " | openssl dgst -sha256 -binary | base64"])
            return "sha256/" + b64.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        try makeCA("ca")
        try makeCA("rogue-ca")
        pin = try makeServer("server", signedBy: "ca")
        roguePin = try makeServer("rogue", signedBy: "rogue-ca")
        ca = lab.path("ca.pem"); rogueCA = lab.path("rogue-ca.pem")
        cert = lab.path("server.pem"); key = lab.path("server.key")
        rogueCert = lab.path("rogue.pem"); rogueKey = lab.path("rogue.key")
    }
}

extension Lab {
    /// unbound in the foreground with its own config: DoT on ADDR@853 and DoH on ADDR@443
    /// for each address. `idleTimeoutMs`: its tcp-idle-timeout (it closes idle connections
    /// after it); `keepalive`: whether it sends edns-tcp-keepalive.
    @discardableResult
    func startUnbound(_ label: String, addresses: [String], cert: String, key: String, idleTimeoutMs: Int = 30_000,
                      keepalive: Bool = false) throws -> ChildProcess {
        let big = (0..<12).map { i in
            "    local-data: \"big.test. TXT \(String(repeating: String(UnicodeScalar(UInt8(97 + i))), count: 100))\""
        }.joined(separator: "\n")
        let interfaces = addresses.flatMap { ["    interface: \($0)@853", "    interface: \($0)@443"] }.joined(separator: "\n")
        let conf = """
        server:
            verbosity: 1
        \(interfaces)
            tls-port: 853
            https-port: 443
            tls-service-key: "\(key)"
            tls-service-pem: "\(cert)"
            chroot: ""
            username: ""
            directory: "\(path(""))"
            pidfile: ""
            use-syslog: no
            logfile: ""
            do-daemonize: no
            access-control: 0.0.0.0/0 allow
            access-control: ::/0 allow
            module-config: "iterator"
            tcp-idle-timeout: \(idleTimeoutMs)
            edns-tcp-keepalive: \(keepalive ? "yes" : "no")
            local-zone: "example.test." redirect
            local-data: "example.test. A 192.0.2.7"
            local-data: "example.test. AAAA 2001:db8::7"
            local-zone: "big.test." static
        \(big)
        remote-control:
            control-enable: no
        """
        let file = path("unbound-\(label).conf")
        try conf.write(toFile: file, atomically: true, encoding: .utf8)
        let p = try spawn(["unbound", "-d", "-c", file], log: "unbound-\(label).log")
        for a in addresses {
            try waitForListener(a, port: 853, process: p, log: "unbound-\(label).log")
            try waitForListener(a, port: 443, process: p, log: "unbound-\(label).log")
        }
        return p
    }

    /// dnsdist 1.7 in the foreground as a DoH server on ADDRESS@443 (HTTP/2, path
    /// /dns-query) that tells the methods apart: it answers every A query itself with
    /// `postAddress` when the request had no query string (POST carries the message in
    /// its body) and `getAddress` when the query string carries `dns=` (GET); REFUSED
    /// otherwise. dnsdist 1.7 exposes no request method to Lua, only the query string.
    @discardableResult
    func startDnsdist(address: String, cert: String, key: String, postAddress: String, getAddress: String) throws -> ChildProcess {
        let conf = """
        setSecurityPollSuffix('')
        addDOHLocal('\(address):443', '\(cert)', '\(key)', '/dns-query')
        function byMethod(dq)
          local query = dq:getHTTPQueryString()
          if query == '' then return DNSAction.Spoof, '\(postAddress)' end
          if string.find(query, 'dns=', 1, true) then return DNSAction.Spoof, '\(getAddress)' end
          return DNSAction.Refused
        end
        addAction(AllRule(), LuaAction(byMethod))
        """
        let file = path("dnsdist.conf")
        try conf.write(toFile: file, atomically: true, encoding: .utf8)
        let p = try spawn(["dnsdist", "--supervised", "--disable-syslog", "-C", file], log: "dnsdist.log")
        try waitForListener(address, port: 443, process: p, log: "dnsdist.log")
        return p
    }

    /// Upstream TCP connections to `port` (853 DoT, 443 DoH) in the conntrack table, by mark.
    func connectionsByMark(port: Int, to address: String? = nil) -> [UInt32: [Flow]] {
        Dictionary(grouping: flows().filter { $0.proto == "tcp" && $0.dport == port && (address == nil || $0.dst == address) },
                   by: \.mark)
    }

    /// Flows from markdns to the upstream addresses on any port but the encrypted ones: a
    /// query in plain DNS would show here.
    func plainFlows(to addresses: [String]) -> [Flow] {
        flows().filter { addresses.contains($0.dst) && $0.dport != 853 && $0.dport != 443 }
    }

    /// Sends `count` queries at once from `client` (dig, +notcp or +tcp); returns the
    /// answers that were not NOERROR with `expect`. Over UDP each dig gets its own source
    /// port: dig picks a random port with SO_REUSEPORT itself, so concurrent digs from one
    /// address sometimes share one and the kernel gives both answers to one of them (about
    /// one burst in six of 100 lost a query that way: a NoPorts datagram, markdns had answered).
    func burst(_ count: Int, client: String, prefix: String, tcp: Bool = false, expect: String = "192.0.2.7") -> Int {
        let script = """
        for i in $(seq 1 \(count)); do dig +time=5 +tries=1 +short \(tcp ? "+tcp" : "+notcp") -b \(client)\(tcp ? "" : "#$((30000 + i))") @127.0.0.1 \(prefix)$i.example.test A > \(path("burst"))-$i & done; wait
        cat \(path("burst"))-* | grep -c '^\(expect)$'; grep -L '^\(expect)$' \(path("burst"))-* | while read f; do echo "$f: $(cat "$f")" >&2; done
        """
        let r = run(["bash", "-c", script])
        let bad = count - (Int(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0)
        if bad > 0 {
            // Where it went: the kernel's UDP drops in the lab and markdns's own counts.
            let why = run(["sh", "-c", "grep Udp: /proc/net/snmp; curl -sf http://127.0.0.1:9153/metrics | grep -E '^markdns_(queries|dropped|refusals|outstanding|upstream_failures|upstream_connection_failures|upstream_resent)'"]).stdout
            print("burst \(client) \(prefix): \(bad) unanswered: \(r.stderr.prefix(2000))\n\(why)")
            print(run(["sh", "-c", "for f in $(grep -L '^\(expect)$' \(path("burst"))-*); do n=${f##*-}; grep \"\\\"\(prefix)$n\\.\" \(path("queries.log")); done; grep -v ' info ' \(path("markdns.log"))"]).stdout)
        }
        _ = run(["sh", "-c", "rm -f \(path("burst"))-*"])
        return bad
    }

    /// A sample of markdns's /metrics (127.0.0.1:9153): the value of the first line that
    /// starts with `name` and contains every one of `labels`; nil when there is none.
    func metric(_ name: String, _ labels: [String] = []) -> Double? {
        let text = run(["curl", "-sf", "http://127.0.0.1:9153/metrics"]).stdout
        for line in text.split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
            guard labels.allSatisfy({ line.contains($0) }), let v = line.split(separator: " ").last else { continue }
            return Double(v)
        }
        return nil
    }
}
