/// Why a DNS message was rejected. Every case is a reason to drop or answer FORMERR;
/// none is ever a crash.
public enum DNSWireError: Error, Equatable, Sendable {
    /// Shorter than the 12-byte header: nothing can be answered, drop.
    case truncatedHeader
    /// A field ran past the end of the message.
    case truncated
    /// A label longer than 63 bytes, or a reserved label type (0x40, 0x80).
    case badLabel
    /// A name longer than 255 bytes on the wire (after decompression).
    case nameTooLong
    /// A compression pointer into the header or not strictly backwards, or too many hops.
    case badPointer
    /// The question count is not 1 (a query we can forward has exactly one question).
    case badQuestionCount
    /// More than one OPT record, or an OPT record whose owner is not the root.
    case badOPT
}
