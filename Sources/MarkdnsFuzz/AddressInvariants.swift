import DNSWire

/// What address extraction for `[[set]]`s guarantees for any input: it never crashes or
/// reads past the end (AddressSanitizer), gives only 4- or 16-byte addresses, each once,
/// never more than the answer section has records, and nothing for messages that are not
/// parseable NOERROR responses; it answers the same for the same bytes.
enum AddressInvariants {
    static func check(_ raw: UnsafeRawBufferPointer) {
        let found = AnswerAddresses.extract(raw)
        require(found.allSatisfy { $0.bytes.count == 4 || $0.bytes.count == 16 }, "address of a bad length")
        require(Set(found.map(\.bytes)).count == found.count, "an address extracted twice")
        guard !found.isEmpty else { return }
        guard let h = try? DNSMessage.header(raw) else {
            require(false, "addresses from a message without a header")
            return
        }
        require(h.isResponse && h.rcode == 0 && h.qdcount == 1, "addresses from a non-NOERROR or non-response")
        require(found.count <= Int(h.ancount), "\(found.count) addresses from \(h.ancount) answer records")
        require(AnswerAddresses.extract(raw) == found, "extraction is not deterministic")
    }
}
