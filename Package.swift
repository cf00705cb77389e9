// swift-tools-version:6.1
import PackageDescription

// MemberImportVisibility: members of modules a target does not import itself stay invisible, so
// nothing picks up Foundation (and ICU) through TOMLKit, which imports it.
let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility")]
// The NIO shells (Forwarder, Observability) do not have the feature yet (they rely on NIO's
// C modules re-exporting Glibc's types); their objects pull in nothing from Foundation
// (checked in a link map: `-Xlinker -Map=FILE`, see README "Binary size").
let strictShell: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]
// The data-plane shell in release builds: no run-time exclusivity checks. Its loop-owned
// classes are touched by one thread each, and every access to one of their stored
// properties otherwise costs a call into the runtime's access set (~12% of a forwarded
// query's instructions, measured with callgrind: see bench/PROFILE.md). Debug builds, which
// the tests run, keep the checks.
let dataPlane: [SwiftSetting] = strictShell + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
// Code that runs mostly at start-up, on a command or on a control request: the CLI, the
// policy files and renderers, the session store and service. Optimised for size in release
// builds (the package's 20 MB budget, scripts/package.sh); the query path (DNSWire,
// QueryCore, DNSCache, MarkCore, Forwarder, Conntrack) stays at -O.
let cold: [SwiftSetting] = [.unsafeFlags(["-Osize"], .when(configuration: .release))]

let package = Package(
    name: "markdns",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "markdns", targets: ["markdns"]),
        // The pure modules, for the micro-benchmarks in Benchmarks/ (a separate package).
        .library(name: "DNSWire", targets: ["DNSWire"]),
        .library(name: "DNSCache", targets: ["DNSCache"]),
        .library(name: "MarkCore", targets: ["MarkCore"]),
        .library(name: "MarkPolicy", targets: ["MarkPolicy"]),
        .executable(name: "MarkdnsFuzz", targets: ["MarkdnsFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // Encrypted upstreams (DoT, DoH over HTTP/2): BoringSSL and HTTP/2, no Foundation.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        // Base64 and base64url (SPKI pins, DoH GET), pure Swift without Foundation.
        .package(url: "https://github.com/swift-extras/swift-extras-base64.git", from: "1.2.0"),
    ],
    targets: [
        // C: libnetfilter_conntrack + libmnl, found through pkg-config.
        .systemLibrary(
            name: "CNetfilterConntrack",
            pkgConfig: "libnetfilter_conntrack libmnl",
            providers: [.apt(["libnetfilter-conntrack-dev", "libmnl-dev"])]
        ),
        // C: SQLite 3 for the session store. Not GRDB: it imports Foundation, whose ICU would
        // push the daemon far over its 20 MB .deb budget.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // C: the neighbour table (IPv4 and IPv6) through rtnetlink, with libmnl.
        .systemLibrary(name: "CRtnetlink", pkgConfig: "libmnl", providers: [.apt(["libmnl-dev"])]),
        // C: libnftnl + libmnl, for `[[set]]` element writes.
        .systemLibrary(
            name: "CNftnl",
            pkgConfig: "libnftnl libmnl",
            providers: [.apt(["libnftnl-dev", "libmnl-dev"])]
        ),
        // C: per-thread prctl/capset wrappers for dropping root (serve --user).
        .systemLibrary(name: "CPrivileges"),
        .systemLibrary(name: "CBatchIO"),
        // C: prctl(PR_SET_NAME) for naming our own threads.
        .systemLibrary(name: "CThreads"),
        // C: BoringSSL's SHA256() from the copy swift-nio-ssl links (SPKI pins; see its shim.h).
        .systemLibrary(name: "CBoringSSLDigest"),
        // C: the commit markdns was built from (scripts/package.sh writes build_commit.h).
        .target(name: "CBuildInfo"),
        // Threads without Foundation (which would link ICU): named pthreads, a condition.
        .target(name: "Threads", dependencies: ["CThreads"], swiftSettings: strict),
        // Pure: DNS wire format. No I/O, no Foundation, no NIO.
        .target(name: "DNSWire", swiftSettings: strict),
        // Pure: the answer cache (bounded LRU, TTL countdown, keyed by policy view).
        .target(name: "DNSCache", dependencies: ["DNSWire"], swiftSettings: strict),
        // Pure: flow tuples, addresses, upstream plan, mark decisions.
        .target(name: "MarkCore", dependencies: [.product(name: "ExtrasBase64", package: "swift-extras-base64")],
                swiftSettings: strict),
        // Pure: client sessions (captive portal, per-user accounting): durations, mark
        // ranges, the session state machine (login/logout/expiry/re-apply -> store, kernel
        // map, connmark and DNS-path actions), JSON and RFC 8908 documents.
        .target(name: "MarkSessions", dependencies: ["MarkCore"], swiftSettings: strict + cold),
        // Pure: the per-client marking policy (TOML config, mask arithmetic, DNS actions,
        // nftables/iptables rendering). No sockets; files are read through a closure.
        .target(
            name: "MarkPolicy",
            dependencies: ["MarkCore", "MarkSessions", .product(name: "TOMLKit", package: "TOMLKit")],
            // Mostly the TOML reader, the checks and the renderers; per query only the
            // policy decision and the domain and client lookups, a few % of a query's work.
            swiftSettings: strict + cold
        ),
        // Pure: what the observability shell counts and prints: query events, the top-N of
        // clients per mark, the query-log line, conntrack accounting per mark.
        .target(name: "MarkStats", dependencies: ["MarkCore", "MarkPolicy"], swiftSettings: strict),
        // Pure: the query path of one event loop. Intake, the forward plan (cache and
        // coalescing keys, the upstream rewrite), upstream-answer classification and the
        // per-loop state machine (transactions, cache, health, limits, deadlines, drain):
        // events in, actions out. Imports neither NIO nor Glibc.
        .target(
            name: "QueryCore",
            dependencies: ["DNSWire", "DNSCache", "MarkCore", "MarkPolicy",
                           .product(name: "HeapModule", package: "swift-collections")],
            swiftSettings: strict
        ),
        // I/O: ctnetlink lookups over a persistent libmnl socket.
        .target(
            name: "Conntrack",
            dependencies: ["CNetfilterConntrack", "CRtnetlink", "MarkCore"],
            swiftSettings: strict
        ),
        // I/O: sessions. The SQLite store, the kernel side (nft session maps, connmarks of
        // existing flows through ctnetlink), the session service and its control socket.
        .target(
            name: "Sessions",
            dependencies: [
                "MarkSessions", "MarkPolicy", "MarkCore", "Conntrack", "CSQLite", "Observability",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictShell + cold
        ),
        // I/O: `[[set]]` elements into nft sets over a persistent netlink socket (libnftnl).
        .target(name: "NftSets", dependencies: ["CNftnl", "QueryCore"], swiftSettings: strict),
        // I/O: the NIO shell (listeners, upstream pools, transactions).
        .target(
            name: "Forwarder",
            dependencies: [
                "DNSWire", "DNSCache", "MarkCore", "MarkPolicy", "QueryCore", "Conntrack", "NftSets", "MarkStats", "CBatchIO", "Threads", "CBoringSSLDigest",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            swiftSettings: dataPlane
        ),
        // I/O: metrics (swift-metrics + Prometheus), /metrics and /clients over HTTP, the
        // query-log writer thread, conntrack accounting export, start-up health checks.
        .target(
            name: "Observability",
            dependencies: [
                "Forwarder", "QueryCore", "MarkStats", "MarkCore", "MarkPolicy", "Conntrack", "Threads",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictShell
        ),
        .executableTarget(
            name: "markdns",
            dependencies: [
                "Forwarder", "QueryCore", "MarkCore", "MarkPolicy", "MarkStats", "Observability", "Conntrack", "CPrivileges", "CBuildInfo",
                "MarkSessions", "Sessions",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict + cold
        ),
        // libFuzzer target over the pure query-handling core (scripts/fuzz.sh builds it with
        // --sanitize=fuzzer; a plain build only compiles it).
        .executableTarget(
            name: "MarkdnsFuzz",
            dependencies: ["DNSWire", "DNSCache", "MarkCore", "MarkPolicy", "QueryCore"],
            swiftSettings: strict
        ),
        // Fixtures shared by several test targets (the seeded generator).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "DNSWireTests", dependencies: ["DNSWire", "TestSupport"]),
        .testTarget(name: "MarkCoreTests", dependencies: ["MarkCore"]),
        .testTarget(name: "DNSCacheTests", dependencies: ["DNSCache", "DNSWire", "TestSupport"]),
        .testTarget(name: "MarkSessionsTests", dependencies: ["MarkSessions", "MarkCore"]),
        .testTarget(name: "SessionsTests", dependencies: ["Sessions", "MarkSessions", "MarkCore", "MarkPolicy", "CSQLite", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "MarkPolicyTests", dependencies: ["MarkPolicy", "MarkCore"]),
        .testTarget(name: "ForwarderTests", dependencies: [
            "Forwarder", "MarkCore", "MarkPolicy",
            .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOExtras", package: "swift-nio-extras"),
        ]),
        .testTarget(name: "QueryCoreTests",
                    dependencies: ["QueryCore", "DNSWire", "DNSCache", "MarkCore", "MarkPolicy", "TestSupport"]),
        .testTarget(name: "NftSetsTests", dependencies: ["NftSets", "QueryCore"]),
        .testTarget(name: "MarkStatsTests", dependencies: ["MarkStats", "MarkPolicy", "MarkCore"]),
        // Kernel tests: network namespaces, nft, conntrack, dnsmasq, the built binary.
        .testTarget(name: "KernelTests", dependencies: ["markdns", "DNSWire"]),
    ],
    swiftLanguageModes: [.v6]
)
