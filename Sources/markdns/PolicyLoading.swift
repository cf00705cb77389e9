import MarkCore
import MarkPolicy
import Sessions

#if canImport(Glibc)
import Glibc
#endif

/// Reading policy files: the only place the policy module's injected file reader is real.
enum PolicyLoading {
    struct ReadError: Error, CustomStringConvertible {
        let description: String
    }

    /// Reads a whole file (policy or block list); errors name the file and the reason.
    static func readFile(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ReadError(description: "\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buf, buf.count)
            if n < 0 { throw ReadError(description: "\(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            data += buf[0..<n]
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Loads and validates a policy file; the error text is `file:line: key: reason`.
    static func load(_ path: String) throws(PolicyError) -> PolicyConfig {
        let text: String
        do {
            text = try readFile(path)
        } catch {
            throw PolicyError(file: path, line: nil, key: nil, reason: "cannot read: \(error)")
        }
        return try PolicyConfig.load(text: text, file: path, readFile: { try readFile($0) },
                                     checkPEM: PortalTLS.check)
    }
}
