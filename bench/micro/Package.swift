// swift-tools-version:6.1
// Micro-benchmarks of markdns's pure modules (wire parser, answer cache, policy decision).
// A package of its own so the main build never pulls in the benchmark harness.
//   swift package --package-path bench/micro benchmark        (or bench/micro.sh)
import PackageDescription

let package = Package(
    name: "MarkdnsBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        // Named so the product references work whatever the checkout directory is called.
        .package(name: "markdns", path: "../.."),
        // The default traits pull in jemalloc, which is not available here.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "MicroBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "DNSWire", package: "markdns"),
                .product(name: "DNSCache", package: "markdns"),
                .product(name: "MarkCore", package: "markdns"),
                .product(name: "MarkPolicy", package: "markdns"),
            ],
            path: "Benchmarks/MicroBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
