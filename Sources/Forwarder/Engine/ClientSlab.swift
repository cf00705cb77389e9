import MarkCore

/// A client waiting for its answer: where it goes, the TCP connection whose in-flight
/// slot it holds, and its pending query event (when observed).
struct ClientContext {
    var reply: ReplyTarget
    var tcpClient: TCPClientToken?
    var event: PendingEvent?
}

/// The waiting clients, by the handle the query core knows each one by. Slots are reused:
/// a handle is valid from `insert` to `remove`, and the core names each exactly once in
/// its deliveries.
struct ClientSlab {
    private var slots: [ClientContext?] = []
    private var free: [Int] = []

    /// The handle the next `insert` will use.
    var nextHandle: Int { free.last ?? slots.count }

    mutating func insert(_ client: ClientContext, at handle: Int) {
        precondition(handle == nextHandle)
        if free.last == handle {
            free.removeLast()
            slots[handle] = client
        } else {
            slots.append(client)
        }
    }

    mutating func remove(_ handle: Int) -> ClientContext? {
        guard handle >= 0, handle < slots.count, let client = slots[handle] else { return nil }
        slots[handle] = nil
        free.append(handle)
        return client
    }
}
