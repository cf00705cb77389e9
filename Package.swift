// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "markdns",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "markdns", targets: ["markdns"]),
        .executable(name: "MarkdnsFuzz", targets: ["MarkdnsFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
    ],
    targets: [
        // C: libnetfilter_conntrack + libmnl, found through pkg-config.
        .systemLibrary(
            name: "CNetfilterConntrack",
            pkgConfig: "libnetfilter_conntrack libmnl",
            providers: [.apt(["libnetfilter-conntrack-dev", "libmnl-dev"])]
        ),
        // Pure: DNS wire format. No I/O, no Foundation, no NIO.
        .target(name: "DNSWire", swiftSettings: strict),
        // Pure: the answer cache (bounded LRU, TTL countdown, keyed by policy view).
        .target(name: "DNSCache", dependencies: ["DNSWire"], swiftSettings: strict),
        // Pure: flow tuples, addresses, upstream plan, mark decisions.
        .target(name: "MarkCore", swiftSettings: strict),
        // Pure: the per-client marking policy (TOML config, mask arithmetic, DNS actions,
        // nftables/iptables rendering). No sockets; files are read through a closure.
        .target(
            name: "MarkPolicy",
            dependencies: ["MarkCore", .product(name: "TOMLKit", package: "TOMLKit")],
            swiftSettings: strict
        ),
        // I/O: ctnetlink lookups over a persistent libmnl socket.
        .target(
            name: "Conntrack",
            dependencies: ["CNetfilterConntrack", "MarkCore"],
            swiftSettings: strict
        ),
        // I/O: the NIO shell (listeners, upstream pools, transactions).
        .target(
            name: "Forwarder",
            dependencies: [
                "DNSWire", "DNSCache", "MarkCore", "MarkPolicy", "Conntrack",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "markdns",
            dependencies: [
                "Forwarder", "MarkCore", "MarkPolicy",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // libFuzzer target over the pure query-handling core (scripts/fuzz.sh builds it with
        // --sanitize=fuzzer; a plain build only compiles it).
        .executableTarget(
            name: "MarkdnsFuzz",
            dependencies: ["DNSWire", "DNSCache", "MarkCore", "MarkPolicy"],
            swiftSettings: strict
        ),
        .testTarget(name: "DNSWireTests", dependencies: ["DNSWire"]),
        .testTarget(name: "MarkCoreTests", dependencies: ["MarkCore"]),
        .testTarget(name: "DNSCacheTests", dependencies: ["DNSCache", "DNSWire"]),
        .testTarget(name: "MarkPolicyTests", dependencies: ["MarkPolicy", "MarkCore"]),
        // Kernel tests: network namespaces, nft, conntrack, dnsmasq, the built binary.
        .testTarget(name: "KernelTests", dependencies: ["markdns", "DNSWire"]),
    ],
    swiftLanguageModes: [.v6]
)
