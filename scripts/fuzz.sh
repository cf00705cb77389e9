#!/usr/bin/env bash
# Builds the libFuzzer target (Sources/MarkdnsFuzz) with the fuzzer and address sanitizers
# in its own scratch path and runs it for SECONDS (default 60) from the seed corpus in
# Tests/Fuzz/corpus plus the inputs of past findings in Tests/Fuzz/regressions. New interesting inputs go to fuzz-artifacts/corpus, crashes to
# fuzz-artifacts/ (both gitignored). Prints executions and coverage; exits non-zero when
# the fuzzer found a crash or a broken invariant.
#
#   scripts/fuzz.sh [SECONDS]
#   .build-fuzz/release/MarkdnsFuzz fuzz-artifacts/crash-...    # replay one input
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/opt/swift/usr/bin:$PATH"
seconds="${1:-60}"
# SwiftPM hands the two sanitizers to swiftc as two -sanitize= flags in no fixed order, and
# swiftc keeps only the last one for Swift code (coverage or ASan silently missing); the
# combined -Xswiftc flag comes last and keeps both.
swift build --product MarkdnsFuzz -c release --scratch-path .build-fuzz \
    --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address
probe=.build-fuzz/release/DNSWire.build/DNSName.swift.o
if [ "$(objdump -h "$probe" | grep -c __sancov_cntrs)" = 0 ] || [ "$(nm "$probe" | grep -c __asan_report)" = 0 ]; then
    echo "fuzz: $probe lacks coverage or ASan instrumentation; not fuzzing blind" >&2
    exit 1
fi
mkdir -p fuzz-artifacts/corpus
log="fuzz-artifacts/last-run.log"
status=0
export SWIFT_BACKTRACE=enable=no  # libFuzzer reports the crash; the Swift backtracer upsets ASan
export LSAN_OPTIONS="suppressions=$PWD/Tests/Fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
.build-fuzz/release/MarkdnsFuzz -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
    -artifact_prefix=fuzz-artifacts/ fuzz-artifacts/corpus Tests/Fuzz/corpus Tests/Fuzz/regressions >"$log" 2>&1 || status=$?
done_line="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
echo "fuzz: ${seconds}s, executions: ${execs:-?}, last status: ${done_line:-none}"
if [ "$status" -ne 0 ]; then
    echo "fuzz: FAILED (exit $status); the input is in fuzz-artifacts/:" >&2
    grep -E 'invariant violated|ERROR: (Address|Leak)Sanitizer|Fatal error|Test unit written' "$log" >&2 || tail -30 "$log" >&2
    exit "$status"
fi
