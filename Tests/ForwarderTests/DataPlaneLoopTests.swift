import Dispatch
import Glibc
import Logging
import MarkCore
import NIOConcurrencyHelpers
import NIOCore
import Testing
@testable import Forwarder

/// The data-plane loop on its own thread: jobs from other threads run in order on it,
/// timers fire in deadline order and can be cancelled, a readable socket is reported
/// to the ready handler on the loop thread (again while it stays readable), and a loop
/// that ends fails what is still pending instead of leaving anyone waiting.
@Suite("Data-plane loop")
struct DataPlaneLoopTests {
    func started() throws -> DataPlaneLoop {
        let loop = try DataPlaneLoop(name: "dp-test", logger: Logger(label: "test"))
        loop.start()
        return loop
    }

    @Test func jobsFromOtherThreadsRunInOrderOnTheLoop() throws {
        let loop = try started()
        defer { try? loop.syncShutdownGracefully() }
        let seen = NIOLockedValueBox<[Int]>([])
        let onLoop = NIOLockedValueBox(true)
        for i in 0..<1000 {
            loop.execute {
                if !loop.inEventLoop { onLoop.withLockedValue { $0 = false } }
                seen.withLockedValue { $0.append(i) }
            }
        }
        try loop.submit {}.wait()
        #expect(seen.withLockedValue { $0 } == Array(0..<1000))
        #expect(onLoop.withLockedValue { $0 })
        #expect(!loop.inEventLoop)
    }

    @Test func jobsQueuedByTheLoopRunAfterTheCurrentOnes() throws {
        let loop = try started()
        defer { try? loop.syncShutdownGracefully() }
        let box = try loop.submit { () -> NIOLoopBoundBox<[String]> in
            let box = NIOLoopBoundBox([String](), eventLoop: loop)
            loop.execute { box.value.append("second") }
            box.value.append("first")
            return box
        }.wait()
        #expect(try loop.submit { box.value }.wait() == ["first", "second"])
    }

    @Test func theTickEndHookRunsOncePerRequestingTickBeforeTheLoopWaits() throws {
        let loop = try started()
        defer { try? loop.syncShutdownGracefully() }
        let seen = NIOLockedValueBox<[String]>([])
        try loop.submit {
            loop.onTickEnd {
                let ends = seen.withLockedValue { $0.append("end"); return $0.filter { $0 == "end" }.count }
                // A hook that asks again (a flush that queued a reply) runs again before
                // the loop sleeps, with nothing else to wake it.
                if ends == 1 { loop.requestTickEnd() }
            }
            loop.requestTickEnd()
            loop.requestTickEnd()  // one run per tick, however often requested
            seen.withLockedValue { $0.append("job") }
        }.wait()
        // Nothing is submitted from here on and no timer is set: a loop that slept with a
        // request pending would never add the second "end".
        for _ in 0..<200 where seen.withLockedValue({ $0.count }) < 3 { usleep(10_000) }
        #expect(seen.withLockedValue { $0 } == ["job", "end", "end"])
    }

    @Test func timersFireInDeadlineOrderAndCancelledOnesDoNot() throws {
        let loop = try started()
        defer { try? loop.syncShutdownGracefully() }
        let fired = NIOLockedValueBox<[Int]>([])
        let late = loop.scheduleTask(in: .milliseconds(60)) { fired.withLockedValue { $0.append(60) } }
        let cancelled = loop.scheduleTask(in: .milliseconds(30)) { fired.withLockedValue { $0.append(30) } }
        let early = loop.scheduleTask(in: .milliseconds(10)) { fired.withLockedValue { $0.append(10) } }
        cancelled.cancel()
        let start = NIODeadline.now()
        try late.futureResult.wait()
        try early.futureResult.wait()
        #expect(NIODeadline.now() - start >= .milliseconds(60))
        #expect(fired.withLockedValue { $0 } == [10, 60])
        #expect(throws: EventLoopError.self) { try cancelled.futureResult.wait() }
    }

    @Test func theOwnersDeadlineFiresOnceWhenDueAndCanBeMovedOrCleared() throws {
        let loop = try started()
        defer { try? loop.syncShutdownGracefully() }
        let fired = NIOLockedValueBox<[UInt64]>([])
        let twice = DispatchSemaphore(value: 0)
        let start = NIODeadline.now().uptimeNanoseconds
        try loop.submit {
            loop.onDeadline {
                precondition(loop.inEventLoop)
                let n = fired.withLockedValue { $0.append(NIODeadline.now().uptimeNanoseconds - start); return $0.count }
                // The handler sets the next one itself, as the engine does.
                if n == 1 { _ = loop.setDeadline(NIODeadline.now().uptimeNanoseconds + 20_000_000) } else { twice.signal() }
            }
            #expect(loop.setDeadline(start + 10_000_000))
            // Moved later before it was due: only the later one counts.
            #expect(loop.setDeadline(start + 50_000_000))
        }.wait()
        #expect(twice.wait(timeout: .now() + 5) == .success)
        let times = fired.withLockedValue { $0 }
        #expect(times.count == 2)
        #expect(times[0] >= 50_000_000, "not before the deadline it was moved to: \(times)")
        #expect(times[1] >= times[0] + 20_000_000, "the one the handler set: \(times)")

        // Cleared: nothing fires, and a timer of the heap still does beside it.
        try loop.submit { _ = loop.setDeadline(NIODeadline.now().uptimeNanoseconds + 20_000_000) }.wait()
        try loop.submit { _ = loop.setDeadline(.max) }.wait()
        try loop.scheduleTask(in: .milliseconds(60)) {}.futureResult.wait()
        #expect(fired.withLockedValue { $0.count } == 2)
    }

    @Test func aReadableSocketIsReportedOnTheLoopUntilDrained() throws {
        let loop = try started()
        defer { try? loop.syncShutdownGracefully() }
        let local = Endpoint(address: .v4(127, 0, 0, 1), port: 0)
        let fd = try DatagramReceiver.udpSocket(for: local)
        defer { close(fd) }
        #expect(DatagramReceiver.withSockAddr(local, { bind(fd, $0, $1) }) == nil)
        let bound = try #require(DatagramReceiver.localEndpoint(of: fd))
        let reads = NIOLockedValueBox(0)
        let done = DispatchSemaphore(value: 0)
        try loop.submit {
            // Reads one datagram per report: the second is reported by the next wait.
            loop.onReady { token in
                precondition(token == 7 && loop.inEventLoop)
                var byte: UInt8 = 0
                if recv(fd, &byte, 1, 0) == 1, reads.withLockedValue({ $0 += 1; return $0 }) == 2 { done.signal() }
            }
            try loop.watch(fd, token: 7)
        }.wait()
        let sender = try DatagramReceiver.udpSocket(for: local)
        defer { close(sender) }
        for _ in 0..<2 {
            var byte: UInt8 = 1
            _ = DatagramReceiver.withSockAddr(bound) { sendto(sender, &byte, 1, 0, $0, $1) < 0 ? -1 : 0 }
        }
        #expect(done.wait(timeout: .now() + 5) == .success)
        try loop.submit { loop.unwatch(fd) }.wait()
    }

    @Test func anEndedLoopFailsPendingTimersAndNewSubmissions() throws {
        let loop = try started()
        let pending = loop.scheduleTask(in: .hours(1)) {}
        try loop.submit {}.wait()  // the timer is in the heap
        try loop.syncShutdownGracefully()
        #expect(throws: EventLoopError.self) { try pending.futureResult.wait() }
        #expect(throws: EventLoopError.self) { try loop.submit {}.wait() }
        // The owner learns that its deadline will never be due (the engine then fails its
        // attempts at once); a job run after the end runs on the caller, as the loop.
        let accepted = NIOLockedValueBox<Bool?>(nil)
        loop.execute { accepted.withLockedValue { $0 = loop.setDeadline(NIODeadline.now().uptimeNanoseconds) } }
        #expect(accepted.withLockedValue { $0 } == false)
    }
}
