import Forwarder

extension MarkdnsMetrics {
    /// The encrypted upstreams, labelled by the upstream as written (`tls://...`): TLS
    /// handshakes, connections opened and open, queries and those on a reused connection,
    /// queries re-sent after the server closed their connection, idle closes, and failed
    /// or lost connections by cause (`reason="tls"` sums the certificate and handshake ones).
    public func update(secure: [String: SecureStats.Upstream]) {
        for (upstream, s) in secure {
            mirror("markdns_upstream_handshakes_total", ["upstream", upstream], total: s.handshakes)
            mirror("markdns_upstream_connections_opened_total", ["upstream", upstream], total: s.connectionsOpened)
            set("markdns_upstream_connections_open", ["upstream", upstream], to: Double(s.connectionsOpen))
            mirror("markdns_upstream_connection_queries_total", ["upstream", upstream], total: s.queries)
            mirror("markdns_upstream_reused_connection_queries_total", ["upstream", upstream], total: s.reusedQueries)
            mirror("markdns_upstream_resent_queries_total", ["upstream", upstream], total: s.resent)
            mirror("markdns_upstream_idle_closed_total", ["upstream", upstream], total: s.idleClosed)
            var tls = 0
            for (cause, n) in s.failures {
                mirror("markdns_upstream_connection_failures_total", ["upstream", upstream, "cause", cause], total: n)
                if SecureStats.tlsCauses.contains(cause) { tls += n }
            }
            mirror("markdns_upstream_failures_total", ["upstream", upstream, "reason", "tls"], total: tls)
        }
    }
}
