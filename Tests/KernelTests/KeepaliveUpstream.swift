import Foundation

extension Lab {
    /// A DoT server on ADDRESS@853 (python3 ssl, the test PKI's certificate) that answers
    /// every query `A 192.0.2.7`, logs per query whether it carried an OPT record and the
    /// edns-tcp-keepalive option (`query edns=1 keepalive=1`), and never closes a
    /// connection itself: it logs `closed by client after S s idle` when the client does.
    /// With `keepaliveMs` it answers a query that asked for keepalive with that timeout,
    /// as RFC 7828 3.3.2 says a server does (and only then); nil: it never sends the option.
    ///
    /// Not unbound: unbound 1.17 with `edns-tcp-keepalive: yes` also makes
    /// `edns-tcp-keepalive-timeout` its own idle timeout on every TCP and TLS connection,
    /// asked or not, so it always closes first and the client's side cannot be seen.
    @discardableResult
    func startKeepaliveUpstream(address: String, pki: TestPKI, keepaliveMs: Int?) throws -> ChildProcess {
        let p = try spawnPython("keepalive-\(address)", Self.keepaliveServer,
                                args: [address, pki.cert, pki.key, String(keepaliveMs ?? -1)])
        try waitForListener(address, port: 853, process: p, log: "keepalive-\(address).log")
        return p
    }

    /// The queries the server logged: (carried an OPT record, asked for keepalive).
    func keepaliveQueries(_ address: String) -> [(edns: Bool, asked: Bool)] {
        readLog("keepalive-\(address).log").split(separator: "\n").compactMap { line in
            guard line.hasPrefix("query ") else { return nil }
            return (line.contains("edns=1"), line.contains("keepalive=1"))
        }
    }

    static let keepaliveServer = #"""
    import socket, ssl, struct, sys, threading, time
    address, cert, key, keepalive = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, 853))
    listener.listen(16)

    def skip_name(m, i):
        while m[i] != 0:
            if m[i] & 0xC0 == 0xC0:
                return i + 2
            i += 1 + m[i]
        return i + 1

    def edns_options(m):
        """The option codes of the query's OPT record, None without one."""
        an, ns, ar = struct.unpack('!HHH', m[6:12])
        i = skip_name(m, 12) + 4
        for _ in range(an + ns + ar):
            i = skip_name(m, i)
            rtype, rdlength = struct.unpack('!H', m[i:i + 2])[0], struct.unpack('!H', m[i + 8:i + 10])[0]
            rdata, i = i + 10, i + 10 + rdlength
            if rtype == 41:
                codes, o = [], rdata
                while o + 4 <= i:
                    code, length = struct.unpack('!HH', m[o:o + 4])
                    codes.append(code)
                    o += 4 + length
                return codes
        return None

    def read_exact(s, n):
        data = b''
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def serve(raw):
        try:
            s = context.wrap_socket(raw, server_side=True)
        except Exception as e:
            print('handshake failed', e, flush=True)
            return
        last = time.monotonic()
        while True:
            head = read_exact(s, 2)
            query = head and read_exact(s, struct.unpack('!H', head)[0])
            if not query:
                print('closed by client after %.1f s idle' % (time.monotonic() - last), flush=True)
                return
            options = edns_options(query)
            asked = options is not None and 11 in options
            print('query edns=%d keepalive=%d' % (options is not None, asked), flush=True)
            question_end = skip_name(query, 12) + 4
            answer = query[:2] + bytes([0x80 | (query[2] & 0x01), 0x80]) + struct.pack('!HHHH', 1, 1, 0, 0 if options is None else 1)
            answer += query[12:question_end] + bytes.fromhex('c00c000100010000003c0004c0000207')
            if options is not None:
                value = struct.pack('!HHH', 11, 2, keepalive // 100) if asked and keepalive >= 0 else b''
                answer += bytes.fromhex('00002904d000000000') + struct.pack('!H', len(value)) + value
            s.sendall(struct.pack('!H', len(answer)) + answer)
            last = time.monotonic()

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
    """#
}
