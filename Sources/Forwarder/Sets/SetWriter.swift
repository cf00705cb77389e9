import NftSets
import QueryCore
import Synchronization

/// An answer waiting for its set elements to be in the kernel.
struct HeldReply {
    var reply: ReplyTarget
    /// The bytes this client gets (its ID, case and RD already written).
    var bytes: [UInt8]
    var tcpClient: TCPClientToken?
    var event: PendingEvent?
    /// The core's delivery (nil: an answer made during `receive`: cache, local data).
    var delivery: Delivery?
}

/// The `[[set]]` writes of one engine: the elements and held answers of the current tick,
/// the batches sent and the answers waiting for their acks. Touched on the loop only.
final class SetWriter {
    /// How long an answer waits for the kernel at most.
    static let deadline = 0.05
    /// The epoll token of the socket (below the upstream sockets', above the listeners').
    static let token = QueryEngine.firstSocketToken - 1

    var socket: NftSetSocket?
    var openFailed = false
    var batch = SetBatch()
    var membership = SetMembership()
    /// Answers of this tick, released once this tick's batches are acknowledged.
    var tickReplies: [HeldReply] = []
    /// Batches sent and not yet fully acknowledged, by their last sequence number.
    var inflight: [UInt32: InflightWrite] = [:]
    /// Groups of answers waiting, by group number.
    var waiting: [UInt64: Waiting] = [:]
    var nextGroup: UInt64 = 0
    /// Whether a deadline check is scheduled.
    var deadlineArmed = false
    /// Keys this engine has seen (no lock on the fast path).
    var logged: Set<String> = []
    /// Keys logged by any engine: a refusal is logged once per process, not once per loop.
    static let loggedByProcess = Mutex<Set<String>>([])

    /// Whether `key` is new to the process (true once, across every engine).
    func firstTime(_ key: String) -> Bool {
        guard logged.insert(key).inserted else { return false }
        return Self.loggedByProcess.withLock { $0.insert(key).inserted }
    }

    struct InflightWrite {
        var firstSeq: UInt32
        var write: SetWrite
        var group: UInt64
        var error: Int32 = 0
    }

    struct Waiting {
        var replies: [HeldReply]
        var outstanding: Int
        var deadline: Double
        var sets: Set<String>
    }

    /// The in-flight write an ack's sequence number belongs to.
    func writeKey(for seq: UInt32) -> UInt32? {
        inflight.first { seq >= $0.value.firstSeq && seq <= $0.key }?.key
    }
}
