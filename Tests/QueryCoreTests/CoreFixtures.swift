@testable import DNSWire
import MarkCore
import MarkPolicy
@testable import QueryCore

/// A query state machine with a small policy (every connmark bit ours, unmarked queries
/// forwarded), its clock, and helpers to drive it like the shell does.
final class CoreHarness {
    static let upstreamA = Endpoint(address: .v4(127, 0, 0, 53), port: 53)
    static let upstreamB = Endpoint(address: .v4(127, 0, 0, 54), port: 53)

    var core: QueryStateMachine
    var now = 100.0
    var nextHandle = 0

    init(servers: [Endpoint] = [CoreHarness.upstreamA], limits: QueryLimits = QueryLimits()) {
        let config = PolicyConfig(conntrack: ConntrackConfig(onMissing: .unmarked),
                                  pools: [Pool(name: "default", servers: servers)])
        core = QueryStateMachine(policy: PolicyEngine(config), limits: limits)
    }

    /// Sends `bytes` from `client` with connmark `mark` (nil: no mark source) through
    /// intake and arrival; the handle used is returned with the arrival (nil on intake's
    /// own reply or drop, which is in `intake`).
    func ask(_ bytes: [UInt8], from client: IPAddress = .v4(192, 0, 2, 10), mark: UInt32? = 0x10,
                      proto: TransportProtocol = .udp) -> (intake: Intake, arrival: Arrival?, handle: Int) {
        let handle = nextHandle
        nextHandle += 1
        let intake = bytes.withUnsafeBytes { core.intake($0, proto: proto) }
        guard case .query(let message) = intake else { return (intake, nil, handle) }
        let q = ArrivingQuery(message: message, proto: proto, lookup: mark.map { .found($0) },
                              identity: ClientIdentity(address: client), handle: handle)
        let now = self.now
        let arrival = bytes.withUnsafeBytes { core.queryArrived(q, bytes: $0, now: now) }
        return (intake, arrival, handle)
    }

    func answer(_ start: StartAttempt, with bytes: [UInt8], id: UInt16? = nil) -> AttemptResult {
        let now = self.now
        return bytes.withUnsafeBytes { core.answerArrived(start.ref, expectedID: id ?? 0x4242, bytes: $0, now: now) }
    }
}

enum Wire {
    /// A standard query: RD as given, optional EDNS (version, DO), question `name` type A.
    static func query(_ name: String, id: UInt16 = 0x1234, type: UInt16 = DNSType.a, rd: Bool = true,
                      edns: (version: UInt8, payload: UInt16)? = nil, opcode: UInt8 = 0) -> [UInt8] {
        var out: [UInt8] = []
        let flags: UInt16 = (rd ? 0x0100 : 0) | UInt16(opcode) << 11
        DNSHeader(id: id, flags: flags, qdcount: 1, arcount: edns == nil ? 0 : 1).write(into: &out)
        DNSQuestion(name: DNSName(name)!, type: type).write(into: &out)
        if let edns {
            out.append(0)
            out.appendBE(DNSType.opt)
            out.appendBE(edns.payload)
            out.appendBE(UInt32(edns.version) << 16)
            out.appendBE(UInt16(0))
        }
        return out
    }

    /// An upstream's answer to `query` (as sent upstream) with ID `id`: one A record.
    static func answer(to query: [UInt8], id: UInt16 = 0x4242, rcode: DNSRcode = .noError, ttl: UInt32 = 300,
                       truncated: Bool = false) -> [UInt8] {
        let message = try! DNSMessage.parse(query)
        var out = DNSResponseBuilder.localAnswer(to: message, rcode: rcode,
                                                 addresses: rcode == .noError ? [[192, 0, 2, 1]] : [], ttl: ttl)
        out[0] = UInt8(id >> 8); out[1] = UInt8(id & 0xFF)
        out[2] &= ~0x04  // not authoritative: a forwarder's upstream
        if truncated { out[2] |= 0x02 }
        return out
    }

    static func id(_ bytes: [UInt8]) -> UInt16 { UInt16(bytes[0]) << 8 | UInt16(bytes[1]) }
    static func rd(_ bytes: [UInt8]) -> Bool { bytes[2] & 0x01 != 0 }
    static func rcode(_ bytes: [UInt8]) -> UInt8 { bytes[3] & 0x0F }
}

extension Arrival.Action {
    var start: StartAttempt? { if case .start(let s) = self { return s }; return nil }
    var answer: (bytes: [UInt8], source: AnswerSource)? {
        if case .answer(let b, let s) = self { return (b, s) }
        return nil
    }
    var isJoined: Bool { if case .joined = self { return true }; return false }
}

extension AttemptResult.Action {
    var retry: StartAttempt? { if case .retry(let s) = self { return s }; return nil }
    var finish: Finish? { if case .finish(let f) = self { return f }; return nil }
    var isIgnored: Bool { if case .ignored = self { return true }; return false }
}

extension Delivery {
    /// The bytes this client receives (the shell's work: the answer with its rewrite).
    func bytes(answer: [UInt8], finish: Finish) -> [UInt8] {
        if let bytes { return bytes }
        var out = finish.replacement ?? Array(answer.prefix(finish.answerLength ?? 0))
        out.withUnsafeMutableBytes { rewrite.apply(to: $0) }
        return out
    }
}
