import DNSWire

/// What the parser, the response builder and the in-place rewrites guarantee for any input.
enum WireInvariants {
    static func check(_ raw: UnsafeRawBufferPointer) {
        let parsed = Result { () throws(DNSWireError) -> DNSMessage in try DNSMessage.parse(raw) }
        switch parsed {
        case .failure(let error):
            checkRejected(raw, error: error)
        case .success(let m):
            checkAccepted(raw, m)
            let p = InputParameters(raw)
            checkResponses(to: m, p)
            checkRewrites(raw, m, p)
            checkTTLs(raw, m)
            CacheInvariants.check(raw, m, p)
            PolicyInvariants.check(m)
        }
    }

    // MARK: Rejected input

    /// A message shorter than a header is dropped; anything longer has a header the engine
    /// answers FORMERR or NOTIMP to, and those header-only answers are well formed.
    static func checkRejected(_ raw: UnsafeRawBufferPointer, error: DNSWireError) {
        guard raw.count >= DNSHeader.size else {
            require(error == .truncatedHeader, "short input rejected as \(error)")
            return
        }
        require(error != .truncatedHeader, "\(raw.count) bytes rejected as truncatedHeader")
        guard let h = try? DNSMessage.header(raw) else {
            require(false, "header of \(raw.count) bytes does not parse")
            return
        }
        for (bytes, rcode) in [(DNSResponseBuilder.formErr(toHeader: h), DNSRcode.formErr),
                               (DNSResponseBuilder.headerOnly(toHeader: h, rcode: .notImp), .notImp)] {
            require(bytes.count == DNSHeader.size, "header-only answer is \(bytes.count) bytes")
            let r = bytes.withUnsafeBytes { try? DNSMessage.header($0) }
            require(r?.id == h.id && r?.isResponse == true && r?.rcode == rcode.rawValue
                    && r?.opcode == h.opcode && r?.qdcount == 0 && r?.ancount == 0,
                    "bad header-only answer \(bytes) to \(h)")
            let full = bytes.withUnsafeBytes { p in Result { () throws(DNSWireError) in try DNSMessage.parse(p) } }
            if case .failure(let e) = full {
                require(e == .badQuestionCount, "header-only answer rejected as \(e)")
            } else {
                require(false, "a message without a question parsed")
            }
        }
    }

    // MARK: Accepted input

    static func checkAccepted(_ raw: UnsafeRawBufferPointer, _ m: DNSMessage) {
        require(m.length <= raw.count, "length \(m.length) past \(raw.count) bytes")
        require(m.questionEnd >= DNSHeader.size + 5 && m.questionEnd <= m.length,
                "questionEnd \(m.questionEnd), length \(m.length)")
        require(m.header.qdcount == 1, "qdcount \(m.header.qdcount)")
        require(isWellFormed(m.question.name.wire), "malformed name wire \(m.question.name.wire)")
        require((try? DNSMessage.header(raw)) == m.header, "header differs from parse")
        if let e = m.edns {
            let o = e.payloadSizeOffset
            require(o > m.questionEnd && o + 8 + e.optionsLength <= m.length, "OPT at \(o) outside the message")
            require(raw[o - 3] == 0 && readU16(raw, at: o - 2) == DNSType.opt, "OPT offset \(o) not at an OPT record")
            require(readU16(raw, at: o) == e.payloadSize, "payload size differs from the bytes")
            require(readU16(raw, at: o + 6) == UInt16(e.optionsLength), "options length differs from RDLENGTH")
            require(m.header.arcount >= 1, "OPT without additional records")
        }
        // The first `length` bytes are what the forwarder relays: they parse on their own, the same.
        let again = try? DNSMessage.parse(UnsafeRawBufferPointer(rebasing: raw[0..<m.length]))
        require(again.map(\.length) == m.length && again?.question.name.wire == m.question.name.wire
                && again?.question == m.question && again?.edns == m.edns,
                "the message's own \(m.length) bytes parse differently")
    }

    /// Length-prefixed labels of at most 63 bytes, ending with the root label exactly at the
    /// end, at most 255 bytes.
    static func isWellFormed(_ wire: [UInt8]) -> Bool {
        guard wire.count <= DNSName.maxWireLength else { return false }
        var i = 0
        while i < wire.count {
            let len = Int(wire[i])
            if len == 0 { return i == wire.count - 1 }
            guard len <= DNSName.maxLabelLength else { return false }
            i += len + 1
        }
        return false
    }

    // MARK: Responses built by markdns

    static func checkResponses(to m: DNSMessage, _ p: InputParameters) {
        for rcode in [DNSRcode.noError, .formErr, .servFail, .nxDomain, .notImp, .refused] {
            let resp = DNSResponseBuilder.errorResponse(to: m, rcode: rcode)
            let r = checkBuiltResponse(resp, to: m, rcode: rcode, what: "errorResponse(\(rcode))")
            require(r.header.ancount == 0 && r.header.nscount == 0, "error response with records")
        }
        let count = Int(p.bits(0, 3))
        let addresses: [[UInt8]] = (0..<count).map { i in
            let n = p.bits(2 + UInt64(i), 1) == 0 ? 4 : 16
            return (0..<n).map { UInt8(truncatingIfNeeded: p.seed >> UInt64((i * 7 + $0) % 57)) }
        }
        let ttl = UInt32(truncatingIfNeeded: p.seed >> 20)
        checkLocalAnswer(to: m, rcode: .noError, addresses: addresses, ttl: ttl)
        checkLocalAnswer(to: m, rcode: .nxDomain, addresses: [], ttl: ttl)
    }

    /// A locally made answer re-parses with the query's question, one record per address
    /// carrying the given TTL and address bytes, and OPT exactly when the query had EDNS.
    @discardableResult
    static func checkLocalAnswer(to m: DNSMessage, rcode: DNSRcode, addresses: [[UInt8]], ttl: UInt32) -> [UInt8] {
        let resp = DNSResponseBuilder.localAnswer(to: m, rcode: rcode, addresses: addresses, ttl: ttl)
        let r = checkBuiltResponse(resp, to: m, rcode: rcode, what: "localAnswer")
        require(r.header.flags & 0x0400 != 0, "local answer without AA")
        require(Int(r.header.ancount) == addresses.count, "\(r.header.ancount) records for \(addresses.count) addresses")
        let ttls = resp.withUnsafeBytes { try? DNSRecordTTLs.read($0, message: r) }
        require(ttls?.offsets.count == addresses.count, "TTL offsets \(String(describing: ttls))")
        var o = r.questionEnd
        for (i, a) in addresses.enumerated() {
            require(ttls?.offsets[i] == o + 6, "record \(i) TTL not at \(o + 6)")
            require(readU16(resp, at: o + 2) == (a.count == 4 ? DNSType.a : DNSType.aaaa), "record \(i) type")
            require(readU32(resp, at: o + 6) == ttl, "record \(i) TTL")
            require(Array(resp[(o + 12)..<(o + 12 + a.count)]) == a, "record \(i) address bytes")
            o += 12 + a.count
        }
        require(ttls?.minimum == (addresses.isEmpty ? nil : ttl), "minimum TTL \(String(describing: ttls?.minimum))")
        return resp
    }

    /// What every response markdns builds itself satisfies.
    static func checkBuiltResponse(_ resp: [UInt8], to m: DNSMessage, rcode: DNSRcode, what: String) -> DNSMessage {
        guard let r = try? DNSMessage.parse(resp) else {
            fatalError("\(what) does not parse: \(resp)")
        }
        require(r.length == resp.count, "\(what): \(resp.count - r.length) trailing bytes")
        require(r.header.id == m.header.id && r.header.isResponse && r.header.rcode == rcode.rawValue
                && r.header.opcode == m.header.opcode
                && r.header.recursionDesired == m.header.recursionDesired, "\(what): header \(r.header)")
        require(!r.header.isTruncated, "\(what): TC set")
        require(r.question.name.wire == m.question.name.wire && r.question == m.question,
                "\(what): question \(r.question) for \(m.question)")
        require((r.edns != nil) == (m.edns != nil), "\(what): OPT presence differs from the query")
        if let e = r.edns {
            require(e.payloadSize == DNSResponseBuilder.advertisedPayloadSize && e.optionsLength == 0 && !e.dnssecOK,
                    "\(what): OPT \(e)")
        }
        return r
    }

    // MARK: In-place rewrites

    /// Setting the ID or the payload size changes exactly those bytes and nothing the parser sees.
    static func checkRewrites(_ raw: UnsafeRawBufferPointer, _ m: DNSMessage, _ p: InputParameters) {
        let original = Array(raw[0..<m.length])
        var copy = original
        let id = UInt16(truncatingIfNeeded: p.seed >> 40)
        copy.withUnsafeMutableBytes { DNSRewrite.setID(id, in: $0) }
        require(copy[2...] == original[2...], "setID touched more than the ID")
        let withID = try? DNSMessage.parse(copy)
        require(withID?.header.id == id && withID?.header.flags == m.header.flags
                && withID?.question == m.question && withID?.edns == m.edns, "setID changed the parse")
        guard let e = m.edns else { return }
        let size = DNSRewrite.upstreamPayloadSize(forClient: e.payloadSize)
        require(size >= 512 && size <= DNSResponseBuilder.advertisedPayloadSize
                && (e.payloadSize < 512 || size <= e.payloadSize), "upstream size \(size) for client \(e.payloadSize)")
        copy.withUnsafeMutableBytes { DNSRewrite.setPayloadSize(size, at: e.payloadSizeOffset, in: $0) }
        let resized = try? DNSMessage.parse(copy)
        var expected = e
        expected.payloadSize = size
        require(resized?.edns == expected && resized?.question == m.question && resized?.length == m.length,
                "setPayloadSize changed the parse")
        for (i, b) in copy.enumerated() where i >= 2 && (i < e.payloadSizeOffset || i >= e.payloadSizeOffset + 2) {
            require(b == original[i], "setPayloadSize touched byte \(i)")
        }
    }

    // MARK: TTLs

    /// The TTL walk agrees with the parser: one offset per non-OPT record, answer and
    /// authority first, and the minimum is the smallest of theirs.
    static func checkTTLs(_ raw: UnsafeRawBufferPointer, _ m: DNSMessage) {
        let h = m.header
        let counted = Int(h.ancount) + Int(h.nscount)
        let result = Result { () throws(DNSWireError) -> DNSRecordTTLs in try DNSRecordTTLs.read(raw, message: m) }
        let t: DNSRecordTTLs
        switch result {
        case .success(let ttls):
            t = ttls
        case .failure(let error):
            // Beyond what the parser validated, the walk reads an authority SOA's RDATA and
            // refuses names read from TTL bytes.
            require(h.nscount > 0 || error == .badPointer, "TTL walk failed: \(error)")
            return
        }
        let records = counted + Int(h.arcount) - (m.edns == nil ? 0 : 1)
        require(t.offsets.count == records, "\(t.offsets.count) TTL offsets for \(records) records")
        require(zip(t.offsets, t.offsets.dropFirst()).allSatisfy { $0 + 4 < $1 }, "TTL offsets out of order")
        require(t.offsets.allSatisfy { $0 > m.questionEnd && $0 + 6 <= m.length }, "TTL offset outside the records")
        let countedTTLs = t.offsets.prefix(counted).map { readU32(raw, at: $0) }
        require(t.minimum == countedTTLs.min(), "minimum \(String(describing: t.minimum)) of \(countedTTLs)")
        if let n = t.negative {
            require(h.nscount > 0 && countedTTLs.contains { $0 >= n }, "negative TTL \(n) without a larger SOA TTL")
        }
    }
}
