import Dispatch
import Logging
import MarkPolicy

#if canImport(Glibc)
import Glibc
#endif

/// Reads the hosts files of `[local]`, builds the `LocalZone` and hands it to the engine;
/// re-reads when a file changes (checked every 2 s) and when the policy is reloaded.
/// All state lives on its own queue, so file I/O never runs on the event loop.
final class LocalDataLoader: @unchecked Sendable {
    private let queue = DispatchQueue(label: "markdns.local-data")
    private let apply: @Sendable (LocalZone) -> Void
    private let logger: Logger
    private let interval: DispatchTimeInterval
    private var config: LocalConfig
    private var stamps: [String: FileStamp] = [:]
    private var timer: (any DispatchSourceTimer)?

    struct FileStamp: Equatable {
        var mtime: timespec
        var size: Int
        var inode: UInt

        static func == (a: FileStamp, b: FileStamp) -> Bool {
            a.mtime.tv_sec == b.mtime.tv_sec && a.mtime.tv_nsec == b.mtime.tv_nsec && a.size == b.size && a.inode == b.inode
        }
    }

    init(config: LocalConfig, logger: Logger, interval: DispatchTimeInterval = .seconds(2),
         apply: @escaping @Sendable (LocalZone) -> Void) {
        self.config = config
        self.logger = logger
        self.interval = interval
        self.apply = apply
    }

    /// Loads once (synchronously, so the first query sees the hosts files) and starts
    /// watching.
    func start() {
        queue.sync { load() }
        let t = DispatchSource.makeTimerSource(queue: queue)
        t.schedule(deadline: .now() + interval, repeating: interval)
        t.setEventHandler { [weak self] in self?.checkForChanges() }
        t.resume()
        timer = t
    }

    /// A reloaded policy: new `[local]` settings, every file re-read.
    func update(_ config: LocalConfig) {
        queue.async {
            self.config = config
            self.load()
        }
    }

    /// Re-reads every file now (SIGHUP).
    func reload() {
        queue.async { self.load() }
    }

    func stop() {
        queue.sync {
            timer?.cancel()
            timer = nil
        }
    }

    private func checkForChanges() {
        for path in config.hosts where Self.stamp(path) != stamps[path] {
            load()
            return
        }
    }

    private func load() {
        var files: [HostsFile] = []
        var newStamps: [String: FileStamp] = [:]
        for path in config.hosts {
            newStamps[path] = Self.stamp(path)
            switch Self.readText(path) {
            case .success(let text):
                let file = HostsFile(text: text)
                if !file.badLines.isEmpty {
                    let lines = file.badLines.prefix(5).map(String.init).joined(separator: ", ")
                    logger.warning("\(path): \(file.badLines.count) line(s) skipped (not an address and names): line \(lines)")
                }
                files.append(file)
            case .failure(let reason):
                logger.warning("\(path): cannot read hosts file: \(reason); its names are not answered until it can be read")
            }
        }
        stamps = newStamps
        let zone = LocalZone(config: config, hosts: files)
        if !config.hosts.isEmpty || !config.records.isEmpty {
            logger.info("local data: \(zone.recordCount) record(s) from \(config.records.count) static record(s) and \(files.count) hosts file(s)")
        }
        apply(zone)
    }

    static func stamp(_ path: String) -> FileStamp? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileStamp(mtime: st.st_mtim, size: Int(st.st_size), inode: UInt(st.st_ino))
    }

    /// The whole file as UTF-8 text (at most 64 MiB), or why not.
    struct ReadError: Error, CustomStringConvertible { let description: String }

    static func readText(_ path: String) -> Result<String, ReadError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(ReadError(description: errnoText(errno))) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(ReadError(description: errnoText(errno)))
            }
            if n == 0 { break }
            bytes += chunk[..<n]
            if bytes.count > 64 << 20 { return .failure(ReadError(description: "larger than 64 MiB")) }
        }
        return .success(String(decoding: bytes, as: UTF8.self))
    }
}
