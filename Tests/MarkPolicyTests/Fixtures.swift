import Foundation
import Testing
import MarkCore
@testable import MarkPolicy

enum Fixtures {
    /// The package root (Tests/MarkPolicyTests/Fixtures.swift is three levels down).
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func confPath(_ name: String) -> String { packageRoot.appendingPathComponent("conf/\(name)").path }

    /// The real file reader the daemon would inject.
    static func readFile(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    static func loadExample(_ name: String) throws -> PolicyConfig {
        let path = confPath(name)
        return try PolicyConfig.load(text: try readFile(path), file: path, readFile: readFile)
    }

    /// Loads TOML text with an in-memory file system for `file:` block lists.
    static func load(_ text: String, file: String = "/etc/markdns/policy.toml",
                     files: [String: String] = [:]) throws(PolicyError) -> PolicyConfig {
        try PolicyConfig.load(text: text, file: file) { path in
            guard let t = files[path] else { throw NoSuchFile(path: path) }
            return t
        }
    }

    /// The PolicyError a load throws (fails the test when it loads).
    static func loadError(_ text: String, files: [String: String] = [:],
                          sourceLocation: SourceLocation = #_sourceLocation) -> PolicyError? {
        do {
            _ = try load(text, files: files)
            Issue.record("expected an error, the policy loaded", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    struct NoSuchFile: Error, CustomStringConvertible {
        let path: String
        var description: String { "no such file" }
    }

    static func ip(_ s: String) -> IPAddress { IPAddress(s)! }
    static func client(_ s: String, mac: String? = nil, iface: String? = nil) -> ClientIdentity {
        ClientIdentity(address: ip(s), mac: mac.map { MACAddress($0)!.bytes }, interface: iface)
    }

    /// A small policy used by several suites (mask 0xff00, base 0x5): guests walled garden
    /// (0x100), staff forward to "office" with a block list (0x200), quarantine refuse (0x300).
    static let basic = """
    [conntrack]
    mask = 0xff00
    base = 0x5
    on-missing = "policy"

    [[pool]]
    name = "main"
    servers = ["192.0.2.1", "192.0.2.2:5353"]

    [[pool]]
    name = "office"
    servers = ["[2001:db8::53]:53"]

    [[mark]]
    value = 0x100
    name = "guests"
    action = "walled-garden"
    portal = ["10.0.0.1", "fd00::1"]
    allow = ["portal.example", "Pay.Example.COM."]
    ttl = 20

    [[mark]]
    value = 0x200
    name = "staff"
    pool = "office"
    block = ["ads.example", "tracker.example.net"]
    block-answer = "null"

    [[mark]]
    value = 0x300
    name = "quarantine"
    action = "refuse"

    [[client]]
    name = "boss"
    match = ["192.168.1.10", "iface:wlan-guest"]
    mark = "staff"

    [[client]]
    name = "guests"
    match = ["192.168.1.0/24", "fd00:1::/64", "iface:wlan*"]
    mark = 0x100

    [[client]]
    name = "bad"
    match = ["02:00:00:00:00:bd"]
    mark = "quarantine"
    """
}
