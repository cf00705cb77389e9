#!/usr/bin/env bash
# bench/micro.sh — micro-benchmarks of markdns's pure modules: wire parsing, the policy
# decision, the answer cache and response building (ordo-one/benchmark, package in
# bench/micro/). Reports CPU time, wall clock and mallocs per operation.
#
#   bench/micro.sh                          # all benchmarks
#   bench/micro.sh --filter 'AnswerCache.*' # some (any `swift package benchmark` option)
#
# The first run builds the benchmark package in release mode (several minutes).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="/opt/swift/usr/bin:$PATH"
exec swift package --package-path "$REPO/bench/micro" benchmark "$@"
