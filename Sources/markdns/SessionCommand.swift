import ArgumentParser
import MarkPolicy
import MarkSessions

/// `markdns session login|logout|list|show`: clients of the control socket of a running
/// `markdns serve`. Arguments are checked here first (nothing is sent on a bad one); the
/// daemon checks them again against its policy. Every refusal: a message, exit 1, nothing
/// changed.
struct SessionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session",
        abstract: "Log clients in and out of session marks (captive portal, per-user accounting).",
        subcommands: [Login.self, Logout.self, List.self, Show.self])

    struct Target: ParsableArguments {
        @Option(name: .long, help: ArgumentHelp("Policy file: its [sessions] control socket.", valueName: "file"))
        var config: String?
        @Option(name: .long, help: ArgumentHelp("The control socket (default: the policy's, else \(SessionsConfig.defaultControl)).", valueName: "path"))
        var socket: String?

        func socketPath() throws -> String {
            if let socket { return socket }
            guard let config else { return SessionsConfig.defaultControl }
            do { return try PolicyLoading.load(config).sessions.control } catch {
                FileHandleStderr.write("\(error.description)\n")
                throw ExitCode(1)
            }
        }

        /// Sends the request; prints the body (or the error) and fails with exit 1 unless 200.
        func send(_ method: String, _ uri: String, print out: (String) -> Void) throws {
            let answer: (status: Int, body: String)
            do { answer = try ControlClient.request(socket: try socketPath(), method: method, uri: uri) } catch let e as ControlClient.Failure {
                FileHandleStderr.write("markdns: \(e.description)\n")
                throw ExitCode(1)
            }
            guard answer.status == 200 else {
                FileHandleStderr.write("markdns: \(Self.errorText(answer.body))\n")
                throw ExitCode(1)
            }
            out(answer.body)
        }

        /// The message of an `{"error":"..."}` body.
        static func errorText(_ body: String) -> String {
            let prefix = "{\"error\":\""
            var inner = body
            while inner.last == "\n" { inner.removeLast() }
            guard inner.hasPrefix(prefix), inner.hasSuffix("\"}") else { return body }
            var out = "", escaped = false
            for c in inner.dropFirst(prefix.count).dropLast(2) {
                if escaped { out.append(c == "n" ? "\n" : c); escaped = false } else if c == "\\" { escaped = true } else { out.append(c) }
            }
            return out
        }
    }

    /// A refused argument: the message, exit 1 (the contract for every refusal;
    /// ArgumentParser's ValidationError would exit 64).
    static func refuse(_ message: String) -> ExitCode {
        FileHandleStderr.write("markdns: \(message)\n")
        return ExitCode(1)
    }

    static func client(_ text: String) throws -> SessionClient {
        switch SessionClient.parse(text) {
        case .success(let c): return c
        case .failure(let e): throw refuse(e.description)
        }
    }

    struct Login: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give a client a session mark now (its open connections switch in place).")
        @Argument(help: "The client: an IPv4 or IPv6 address or a MAC address.") var client: String
        @Option(name: .long, help: "The [[mark]] (with sessions = true).") var mark: String
        @Option(name: .long, help: "The user (required for a mark with a range).") var user: String?
        @Option(name: .customLong("for"), help: ArgumentHelp("How long: 90s, 15m, 2h, 7d (default: the mark's session-timeout).", valueName: "duration"))
        var duration: String?
        @OptionGroup var target: Target

        func validate() throws {
            _ = try SessionCommand.client(client)
            if let duration, case .failure(let e) = SessionDuration.parse(duration) { throw SessionCommand.refuse(e.description) }
            if let user, !SessionError.isValidUser(user) { throw SessionCommand.refuse(SessionError.badUser(user).description) }
        }

        func run() throws {
            let uri = ControlRequest.uri("/login", [("client", client), ("mark", mark), ("user", user), ("for", duration)])
            try target.send("POST", uri) { print($0, terminator: "") }
        }
    }

    struct Logout: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a client's session now (its flows go back to the static marks).")
        @Argument(help: "The client: an IPv4 or IPv6 address or a MAC address.") var client: String
        @OptionGroup var target: Target
        func validate() throws { _ = try SessionCommand.client(client) }
        func run() throws { try target.send("POST", ControlRequest.uri("/logout", [("client", client)])) { print($0, terminator: "") } }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The live sessions.")
        @Flag(name: .long, help: "JSON instead of a table.") var json = false
        @OptionGroup var target: Target
        func run() throws {
            try target.send("GET", json ? "/sessions" : "/sessions?format=text") { print($0, terminator: "") }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One client's session (JSON); exit 1 when it has none.")
        @Argument(help: "The client: an IPv4 or IPv6 address or a MAC address.") var client: String
        @OptionGroup var target: Target
        func validate() throws { _ = try SessionCommand.client(client) }
        func run() throws { try target.send("GET", ControlRequest.uri("/session", [("client", client)])) { print($0, terminator: "") } }
    }
}
