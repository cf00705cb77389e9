import CThreads

#if canImport(Glibc)
import Glibc
#endif

/// A detached POSIX thread that runs one closure, named as the kernel shows it.
///
/// Foundation's `Thread` would do, but importing Foundation links all of ICU (about 30 MB
/// in a `--static-swift-stdlib` binary) for nothing else.
public enum NamedThread {
    private final class Body {
        let name: String
        let run: @Sendable () -> Void
        init(name: String, run: @escaping @Sendable () -> Void) { self.name = name; self.run = run }
    }

    /// Starts `body` on a new thread named `name` (set from the thread itself, so the
    /// kernel's name changes too). Stops the process if the thread cannot be created: the
    /// callers cannot serve without it.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(Body(name: name, run: body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
            _ = markdns_set_thread_name(body.name)
            body.run()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            fatalError("pthread_create(\(name)): \(String(cString: strerror(rc)))")
        }
        pthread_detach(thread)
    }
}
