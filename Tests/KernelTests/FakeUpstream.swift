import Foundation

/// A scripted UDP upstream (python3) for fault tests. It answers every A question with
/// `192.0.2.99` (TTL 60), misbehaving as `behaviour` says, logs one `query` line per
/// datagram, and prints `ready` once bound.
enum FakeBehaviour: String {
    /// A correct answer.
    case normal
    /// Reads and never answers.
    case silent
    /// A correct answer after `delay` seconds.
    case slow
    /// SERVFAIL (question echoed).
    case servfail
    /// A TC answer with the question and no records.
    case truncated
    /// A TC answer without the question (qdcount 0), as some servers send.
    case truncatedNoQuestion = "truncated-noq"
    /// FORMERR without the question (qdcount 0).
    case formerrNoQuestion = "formerr-noq"
    /// A correct answer with the ID changed.
    case wrongID = "wrong-id"
    /// An answer with the right ID for another name.
    case wrongQuestion = "wrong-question"
    /// A correct answer sent from another socket (same address, another port).
    case wrongSource = "wrong-source"
}

extension Lab {
    static let fakeUpstreamScript = #"""
import socket, sys, time, struct
addr, port, mode, delay = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM); s.bind((addr, port))
other = socket.socket(fam, socket.SOCK_DGRAM); other.bind((addr, 0))
print("ready", flush=True)
def qend(q):
    i = 12
    while q[i] != 0: i += 1 + q[i]
    return i + 5
while True:
    q, peer = s.recvfrom(4096)
    print("query", flush=True)
    if mode == "silent" or len(q) < 17: continue
    qid, flags = struct.unpack("!HH", q[:4])
    end = qend(q); question = q[12:end]
    rflags = 0x8180 | (flags & 0x0100)
    rcode, an, qd = 0, b"", 1
    if mode == "servfail": rcode = 2
    elif mode == "truncated": rflags |= 0x0200
    elif mode == "truncated-noq": rflags |= 0x0200; qd = 0
    elif mode == "formerr-noq": rcode = 1; qd = 0
    else: an = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x63"
    if mode == "wrong-id": qid ^= 0x5a5a
    if mode == "wrong-question": question = b"\x05other\x04test\x00\x00\x01\x00\x01"
    header = struct.pack("!HHHHHH", qid, rflags | rcode, qd, 1 if an else 0, 0, 0)
    msg = header + (question if qd else b"") + an
    if mode == "slow": time.sleep(delay)
    (other if mode == "wrong-source" else s).sendto(msg, peer)
"""#

    /// Starts the scripted upstream and waits until it is bound.
    @discardableResult
    func startFakeUpstream(address: String, port: Int = 5353, _ behaviour: FakeBehaviour, delay: Double = 0,
                           log: String? = nil) throws -> ChildProcess {
        let log = log ?? "fake-\(address)-\(port).log"
        let p = try spawn(["python3", "-u", "-c", Lab.fakeUpstreamScript, address, "\(port)", behaviour.rawValue,
                           "\(delay)"], log: log)
        try waitForLog(log, contains: "ready", process: p)
        return p
    }

    /// Datagrams the scripted upstream logged.
    func fakeQueries(_ log: String) -> Int { readLog(log).components(separatedBy: "query\n").count - 1 }

    /// Waits (up to 20 s, the machine may be loaded) until `log` contains `text`.
    func waitForLog(_ log: String, contains text: String, process: ChildProcess? = nil) throws {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if readLog(log).contains(text) { return }
            if let process, !process.isRunning { throw LabError("process exited early: \(readLog(log))") }
            usleep(50_000)
        }
        throw LabError("'\(text)' not in \(log) within 20 s: \(readLog(log))")
    }
}

extension Lab {
    /// The counters of the `stats:` line markdns logs when it stops (empty if none).
    func stats(_ log: String = "markdns.log") -> [String: Int] {
        guard let line = readLog(log).split(separator: "\n").last(where: { $0.contains("stats: ") }),
              let start = line.range(of: "stats: ") else { return [:] }
        var out: [String: Int] = [:]
        for pair in line[start.upperBound...].split(separator: " ") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2, let v = Int(kv[1]) { out[String(kv[0])] = v }
        }
        return out
    }
}
