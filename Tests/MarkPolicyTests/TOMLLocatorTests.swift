import Testing
@testable import MarkPolicy

@Suite("TOML line locator")
struct TOMLLocatorTests {
    @Test func tablesKeysAndElements() {
        let l = TOMLLocator("""
        # comment [not a table]
        top = 1
        [server]
        listen = ["a", # one
                  "b"]
        [[client]]
        name = "x#y"
        [[client]]
          "match" = [
            'c]',
            { a = [1, 2] }, "d",
          ]
        mark = 3
        text = \"\"\"
        fake = 1
        \"\"\"
        after = 2
        conntrack.mask = 5
        """)
        #expect(l.line(of: "top") == 2)
        #expect(l.line(of: "server") == 3)
        #expect(l.line(of: "server.listen") == 4)
        #expect(l.line(of: "server.listen[1]") == 4)
        #expect(l.line(of: "server.listen[2]") == 5)
        #expect(l.line(of: "client[1].name") == 7)
        #expect(l.line(of: "client[2]") == 8)
        #expect(l.line(of: "client[2].match") == 9)
        #expect(l.line(of: "client[2].match[1]") == 10)
        #expect(l.line(of: "client[2].match[2]") == 11)
        #expect(l.line(of: "client[2].match[3]") == 11)
        #expect(l.line(of: "client[2].mark") == 13)
        #expect(l.line(of: "client[2].after") == 17)
        #expect(l.line(of: "client[2].fake") == 8, "keys inside multi-line strings are not keys; falls back to the table")
        #expect(l.line(of: "client[2].conntrack.mask") == 18)
        #expect(l.line(of: "client[3].mark") == nil)
        #expect(l.line(of: "client[2].match[9]") == 9, "unknown element: the key's line")
    }
}

@Suite("TOML line endings")
struct TOMLLineEndingTests {
    @Test func crlfFilesReportTheSameLines() throws {
        let text = "[[pool]]\r\nname = \"p\"\r\nservers = [\"192.0.2.1\"]\r\n\r\n[conntrack]\r\nmask = 0xff00\r\nbase = 0x1ff\r\n"
        let e = try #require(Fixtures.loadError(text))
        #expect(e.key == "conntrack.base")
        #expect(e.line == 7)
        let syntax = try #require(Fixtures.loadError("[[pool]]\r\nname = \"p\"\r\nservers = [\r\n"))
        #expect(syntax.line != nil)
    }
}

@Suite("Key suggestions")
struct KeySuggestionTests {
    @Test func suggestsCloseKeysOnly() {
        #expect(TOMLPolicyReader.suggestion(for: "sever", among: TOMLPolicyReader.rootKeys) == "server")
        #expect(TOMLPolicyReader.suggestion(for: "Marks", among: TOMLPolicyReader.rootKeys) == "mark")
        #expect(TOMLPolicyReader.suggestion(for: "block_answer", among: TOMLPolicyReader.markKeys) == "block-answer")
        #expect(TOMLPolicyReader.suggestion(for: "upstream", among: TOMLPolicyReader.rootKeys) == nil)
        #expect(TOMLPolicyReader.editDistance(Array("kitten"), Array("sitting")) == 3)
        #expect(TOMLPolicyReader.editDistance([], Array("ab")) == 2)
    }
}
