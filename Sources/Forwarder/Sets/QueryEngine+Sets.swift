import Logging
import MarkCore
import NIOCore
import NftSets
import QueryCore

#if canImport(Glibc)
import Glibc
#endif

/// `[[set]]`: an answer whose addresses fill sets is held until the kernel acknowledged the
/// elements (or `SetWriter.deadline` passed), so the client's first connection is already
/// routed. The elements of a loop tick go out together at its end (one netlink batch per
/// nft set), before the tick's replies are flushed; the kernel handles a batch while we
/// send it, so the acks are usually read at once and the answers leave in the same tick.
extension QueryEngine {
    /// Holds `reply` (if any: the caller may add its own to `sets.tickReplies`) until
    /// `fills` are written; false when it must go now (no socket: counted as failures).
    func holdForSets(_ fills: [SetFill], _ reply: HeldReply?) -> Bool {
        guard setSocket() != nil else {
            count(fills.map(\.set), \.failures, by: 1)
            return false
        }
        sets.batch.add(fills)
        if let reply { sets.tickReplies.append(reply) }
        batcher.scheduleFlush()
        return true
    }

    /// The bytes one client of a finished transaction gets, copied out of the receive
    /// buffer (which is only valid during the call) so they can wait.
    func heldBytes(_ d: Delivery, _ finish: Finish, answer: UnsafeRawBufferPointer?) -> [UInt8] {
        var out: [UInt8]
        if let bytes = d.bytes { return bytes }
        if let replacement = finish.replacement {
            out = replacement
        } else {
            let length = min(finish.answerLength ?? 0, answer?.count ?? 0)
            out = answer.map { Array(UnsafeRawBufferPointer(rebasing: $0[0..<length])) } ?? []
        }
        out.withUnsafeMutableBytes { d.rewrite.apply(to: $0) }
        return out
    }

    /// The loop's socket, opened on first use (logged once when it cannot be).
    private func setSocket() -> NftSetSocket? {
        if let s = sets.socket { return s }
        guard !sets.openFailed else { return nil }
        do {
            let s = try NftSetSocket()
            try loop.watch(s.fd, token: SetWriter.token)
            sets.socket = s
            return s
        } catch {
            sets.openFailed = true
            logger.warning("[[set]]: \(error); answers are not held and fill no sets (counted as set failures)")
            return nil
        }
    }

    /// Tick end: sends this tick's elements, reads the acks the kernel queued meanwhile
    /// and releases what they complete.
    func flushSets() {
        guard !sets.tickReplies.isEmpty || !sets.batch.isEmpty else { return }
        let group = sets.nextGroup
        sets.nextGroup += 1
        var waiting = SetWriter.Waiting(replies: sets.tickReplies, outstanding: 0, deadline: now + SetWriter.deadline,
                                        sets: [])
        sets.tickReplies = []
        if let socket = sets.socket {
            for write in sets.batch.take() {
                waiting.sets.insert(write.set)
                switch socket.send(write) {
                case .success(let sent):
                    sets.inflight[sent.lastSeq] = .init(firstSeq: sent.firstSeq, write: write, group: group)
                    waiting.outstanding += 1
                case .failure(let e):
                    setFailed(write, errno: e.errno)
                }
            }
        } else {
            _ = sets.batch.take()
        }
        sets.waiting[group] = waiting
        if waiting.outstanding == 0 { release(group) } else { readSetAcks() }
        if !sets.waiting.isEmpty { armSetDeadline() }
    }

    /// The socket is readable (acks that were not queued when the batch went out).
    func setSocketReady() { readSetAcks() }

    private func readSetAcks() {
        guard let socket = sets.socket else { return }
        switch socket.readAcks() {
        case .failure(let e):
            logOnce("read", "[[set]]: reading netlink acks failed: \(errnoText(e.errno))")
        case .success(let acks):
            for ack in acks {
                guard let key = sets.writeKey(for: ack.seq) else { continue }
                if ack.error != 0, sets.inflight[key]?.error == 0 { sets.inflight[key]?.error = ack.error }
                // The last message's ack ends a batch; an error on BEGIN (EPERM: no
                // CAP_NET_ADMIN) means the kernel read none of it.
                let refusedWhole = ack.error != 0 && ack.seq == sets.inflight[key]?.firstSeq
                guard ack.seq == key || refusedWhole, let done = sets.inflight.removeValue(forKey: key) else { continue }
                if done.error != 0 {
                    setFailed(done.write, errno: done.error)
                } else {
                    let t = now
                    for i in 0..<done.write.count {
                        let timeout = UInt32(done.write.timeoutsMs[i] / 1000)
                        if sets.membership.note(set: done.write.nftSet, address: done.write.key(i), timeout: timeout, now: t) {
                            count([done.write.set], \.refreshed, by: 1)
                        } else {
                            count([done.write.set], \.added, by: 1)
                        }
                    }
                }
                if var w = sets.waiting[done.group] {
                    w.outstanding -= 1
                    sets.waiting[done.group] = w
                    if w.outstanding <= 0 { release(done.group) }
                }
            }
        }
    }

    private func setFailed(_ write: SetWrite, errno e: Int32) {
        count([write.set], \.failures, by: write.count)
        let hint = e == ENOENT ? " (set or table missing: load the rules with `markdns rules --apply`)" : ""
        logOnce("\(write.nftSet) \(e)", "[[set]] \(write.set): the kernel refused elements of \(write.nftSet): "
                + "\(errnoText(e))\(hint); answers are released anyway. Logged once; see the set failure counters.")
    }

    /// Sends a group's answers.
    private func release(_ group: UInt64) {
        guard let w = sets.waiting.removeValue(forKey: group) else { return }
        for held in w.replies {
            if let d = held.delivery { complete(held.event, delivery: d) } else { complete(held.event, response: held.bytes) }
            held.bytes.withUnsafeBytes { held.reply.send($0, batcher: batcher, allocator: allocator) }
            held.tcpClient?.queryDone()
        }
    }

    private func armSetDeadline() {
        guard !sets.deadlineArmed else { return }
        sets.deadlineArmed = true
        let bound = NIOLoopBound(self, eventLoop: loop)
        _ = loop.scheduleTask(in: .milliseconds(Int64(SetWriter.deadline * 1000) + 1)) {
            bound.value.setDeadlinePassed()
        }
    }

    private func setDeadlinePassed() {
        sets.deadlineArmed = false
        readSetAcks()
        let t = now
        for (group, w) in sets.waiting where w.deadline <= t {
            count(Array(w.sets), \.deadlineMisses, by: w.replies.count)
            logOnce("deadline", "[[set]]: the kernel did not acknowledge set elements within "
                    + "\(Int(SetWriter.deadline * 1000)) ms; the answers were released anyway. Logged once; see the deadline-miss counters.")
            release(group)
        }
        batcher.scheduleFlush()
        if !sets.waiting.isEmpty { armSetDeadline() }
    }

    private func count(_ names: [String], _ field: WritableKeyPath<SetCounts, Int>, by n: Int) {
        for name in names { core.counters.sets[name, default: SetCounts()][keyPath: field] += n }
    }

    private func logOnce(_ key: String, _ message: String) {
        guard sets.firstTime(key) else { return }
        logger.warning("\(message)")
    }
}
