import Testing
@testable import MarkPolicy

@Suite("Block lists")
struct BlockListTests {
    typealias F = Fixtures

    @Test func hostsAndPlainFormats() throws {
        let text = """
        # StevenBlack-style header
        127.0.0.1 localhost
        127.0.0.1 localhost.localdomain
        255.255.255.255 broadcasthost
        ::1 localhost ip6-localhost ip6-loopback
        0.0.0.0 0.0.0.0
        0.0.0.0 Ads.Example\tTracker.Example.  # two names, inline comment
        :: v6only.example
        plain.example
          indented.example.\r
        \r

        """
        let names = try BlockList.parse(text).get()
        #expect(names == ["ads.example", "tracker.example", "v6only.example", "plain.example", "indented.example"])
    }

    @Test func badLinesAreReportedWithTheirNumber() {
        #expect(BlockList.parse("ok.example\n||ads.example^\n") == .failure(.init(line: 2,
            reason: "'||ads.example^' is not a domain name (letters, digits, '-', '_' and dots only)")))
        #expect(BlockList.parse("a.example\n\nads.example tracker.example\n")
                == .failure(.init(line: 3, reason: "expected 'ADDRESS NAME...' (hosts format) or one domain per line")))
    }

    @Test func relativePaths() {
        #expect(BlockList.resolve("/abs/list.txt", relativeTo: "/etc/markdns/p.toml") == "/abs/list.txt")
        #expect(BlockList.resolve("lists/ads.txt", relativeTo: "/etc/markdns/p.toml") == "/etc/markdns/lists/ads.txt")
        #expect(BlockList.resolve("ads.txt", relativeTo: "p.toml") == "ads.txt")
    }

    static let policy = """
    [[pool]]
    name = "p"
    servers = ["192.0.2.1"]
    [[mark]]
    value = 1
    name = "kids"
    block = [
        "inline.example",
        "file:lists/ads.hosts",
        "file:/srv/more.txt",
    ]
    """

    @Test func filesAreReadThroughTheInjectedReaderAndMerged() throws {
        let c = try F.load(Self.policy, files: [
            "/etc/markdns/lists/ads.hosts": "0.0.0.0 ads.example\n0.0.0.0 inline.example\n",
            "/srv/more.txt": "# one per line\nmore.example\nADS.example\n",
        ])
        #expect(c.marks[0].block == ["inline.example", "ads.example", "more.example"], "normalised, duplicates dropped")
        #expect(c.marks[0].blockFiles == ["lists/ads.hosts", "/srv/more.txt"])
        let d = PolicyEngine(c).decide(connmark: .found(1), client: F.client("10.0.0.1"))
        #expect(d.answer(name: "x.more.example", qtype: 1)?.kind == .nxDomain)
        #expect(d.answer(name: "www.ads.example", qtype: 28)?.kind == .nxDomain)
        #expect(d.answer(name: "example", qtype: 1) == nil)
    }

    @Test func unreadableFileIsAnErrorAtTheEntry() throws {
        let e = try #require(F.loadError(Self.policy, files: ["/etc/markdns/lists/ads.hosts": "a.example\n"]))
        #expect(e.description == "/etc/markdns/policy.toml:10: mark[1].block[3]: cannot read '/srv/more.txt': no such file")
    }

    @Test func badLineInAFileIsReportedInThatFile() throws {
        let e = try #require(F.loadError(Self.policy, files: [
            "/etc/markdns/lists/ads.hosts": "0.0.0.0 a.example\n0.0.0.0 bad_name!.example\n",
            "/srv/more.txt": "",
        ]))
        #expect(e.file == "/etc/markdns/lists/ads.hosts")
        #expect(e.line == 2)
        #expect(e.key == "mark[1].block[2]")
        #expect(e.description.hasPrefix("/etc/markdns/lists/ads.hosts:2: mark[1].block[2]: 'bad_name!.example' is not a domain name"))
    }
}
