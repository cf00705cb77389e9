import Testing
@testable import DNSWire
import MarkCore
@testable import QueryCore

/// Answers from TCP, TLS and HTTPS upstreams can be larger than a UDP client takes.
@Suite("Answers fitted to UDP clients")
struct AnswerFitTests {
    /// An answer to `query` (as sent upstream) with `count` A records.
    func big(to query: [UInt8], count: Int) -> [UInt8] {
        let message = try! DNSMessage.parse(query)
        var out = DNSResponseBuilder.localAnswer(to: message, rcode: .noError,
                                                 addresses: (0..<count).map { [192, 0, 2, UInt8($0)] }, ttl: 300)
        out[0] = 0x42; out[1] = 0x42
        return out
    }

    @Test func tooLargeForUDPIsTruncatedAndTheCacheKeepsTheWholeAnswer() throws {
        let h = CoreHarness()
        let start = try #require(h.ask(Wire.query("big.example", id: 77)).arrival?.action.start)
        let answer = big(to: start.query, count: 40)
        #expect(answer.count > 512)
        let finish = try #require(h.answer(start, with: answer).action.finish)
        let bytes = finish.deliveries[0].bytes(answer: answer, finish: finish)
        #expect(bytes.count <= 512)
        let m = try DNSMessage.parse(bytes)
        #expect(m.header.isTruncated && m.header.isResponse && Wire.id(bytes) == 77)
        #expect(m.question.name == DNSName("big.example")!, "with the question, so the client retries over TCP")
        #expect(h.core.counters.truncatedRelayed == 1)
        // The TCP retry is a cache hit with every record; a UDP query is not served from it.
        let hit = try #require(h.ask(Wire.query("big.example", id: 78), proto: .tcp).arrival?.action.answer)
        #expect(hit.bytes.count == answer.count && hit.source == .cache)
        #expect(h.ask(Wire.query("big.example", id: 79)).arrival?.action.start != nil)
    }

    @Test func ednsSizeIsTheLimitAndFittingAnswersPassUntouched() throws {
        let h = CoreHarness()
        let start = try #require(h.ask(Wire.query("mid.example", edns: (0, 1232))).arrival?.action.start)
        let answer = big(to: start.query, count: 40)
        #expect(answer.count > 512 && answer.count <= 1232)
        let finish = try #require(h.answer(start, with: answer).action.finish)
        #expect(finish.replacement == nil && finish.answerLength == answer.count)
        let tcp = try #require(h.ask(Wire.query("tcp.example"), proto: .tcp).arrival?.action.start)
        let large = big(to: tcp.query, count: 200)
        let f2 = try #require(h.answer(tcp, with: large).action.finish)
        #expect(f2.replacement == nil && f2.answerLength == large.count, "TCP clients take 64 KiB")
    }

    @Test func limits() throws {
        let plain = try DNSMessage.parse(Wire.query("a.example"))
        let edns = try DNSMessage.parse(Wire.query("a.example", edns: (0, 4096)))
        let small = try DNSMessage.parse(Wire.query("a.example", edns: (0, 100)))
        #expect(AnswerFit.limit(for: plain, proto: .udp) == 512)
        #expect(AnswerFit.limit(for: edns, proto: .udp) == 1232, "clamped as sent upstream")
        #expect(AnswerFit.limit(for: small, proto: .udp) == 512)
        #expect(AnswerFit.limit(for: plain, proto: .tcp) == 65535)
        #expect(AnswerFit.truncated(for: plain, proto: .udp, length: 512, rcode: 0) == nil)
        let tc = try #require(AnswerFit.truncated(for: plain, proto: .udp, length: 513, rcode: 3))
        #expect(tc[3] & 0x0F == 3 && tc[2] & 0x02 != 0)
    }
}
