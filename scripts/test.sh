#!/usr/bin/env bash
# The whole test suite: unit tests (pure DNS wire / mark core) and kernel tests (network
# namespaces, nft, conntrack, dnsmasq). Kernel tests skip with a printed reason when not
# root. Leaves no namespace or process behind.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/opt/swift/usr/bin:$PATH"
swift build --build-tests
swift test --skip-build
