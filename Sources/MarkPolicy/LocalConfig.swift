/// `[local]`: names markdns answers itself and never forwards.
public struct LocalConfig: Sendable, Equatable {
    /// The LAN's own domain (`lan`, `home.arpa`): names under it are answered from local
    /// data or NXDOMAIN, never forwarded. Bare host names of the hosts files are also
    /// answered under it (dnsmasq's `expand-hosts`). Normalised.
    public var domain: String?
    /// Hosts files (`/etc/hosts` format), re-read when they change and on SIGHUP.
    public var hosts: [String]
    /// RFC 6303 (dnsmasq's `bogus-priv`): reverse lookups of private and special-use
    /// ranges are answered NXDOMAIN locally unless local data or a per-domain pool
    /// covers them; they never reach the public upstreams.
    public var privateReverse: Bool
    /// TTL of local answers.
    public var ttl: UInt32
    /// Static records (`name TYPE value`).
    public var records: [LocalRecord]

    public init(domain: String? = nil, hosts: [String] = [], privateReverse: Bool = true, ttl: UInt32 = 60,
                records: [LocalRecord] = []) {
        self.domain = domain; self.hosts = hosts; self.privateReverse = privateReverse
        self.ttl = ttl; self.records = records
    }
}
