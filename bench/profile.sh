#!/usr/bin/env bash
# bench/profile.sh — where markdns spends its instructions under load (valgrind callgrind).
#
# Lab (bench/lab.sh, loopback only): upstream dnsmasq 127.0.0.2:5353, markdns under
# valgrind --tool=callgrind on 127.0.0.1:53, dnsperf from 127.0.0.10 (marked 0x10).
# callgrind counts instructions (repeatable whatever else the machine does) but runs
# markdns some 50x slower, so dnsperf sends at a fixed modest rate.
#
# Environment:
#   DURATION=15     seconds of dnsperf load
#   QPS=50          dnsperf -Q (rate limit): low enough that no query times out
#   OUTSTANDING=20  dnsperf -q
#   MODE=forward    forward: unique names, --cache-size 0; cache: 500 hot names, cache on
#   MARKDNS_BIN     default <repo>/.build-release/release/markdns (built if absent)
#   OUT=<repo>/bench/callgrind.out   callgrind output (not committed)
#   TOP=40          functions listed (inclusive, demangled)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lab.sh"

DURATION=${DURATION:-15}
QPS=${QPS:-50}
OUTSTANDING=${OUTSTANDING:-20}
MODE=${MODE:-forward}
TOP=${TOP:-40}
OUT=${OUT:-$REPO/bench/callgrind.out}
case $MODE in
    forward) CACHE_ARGS=(--cache-size 0); NAMES=50000 ;;
    cache)   CACHE_ARGS=(); NAMES=500 ;;
    *) echo "MODE must be forward or cache" >&2; exit 2 ;;
esac
command -v valgrind >/dev/null || { echo "missing: valgrind" >&2; exit 2; }
lab_markdns_bin
lab_start mdprof
lab_queries "$NAMES" "$WORK/queries.txt"
# valgrind 3.19 gives up on the DWARF 5 debug info Swift 6.3 writes: profile a copy
# without it (the symbol table stays, so functions are still named).
objcopy --strip-debug "$MARKDNS_BIN" "$WORK/markdns"
lab_bg MD_PID valgrind --tool=callgrind --callgrind-out-file="$OUT" "$WORK/markdns" \
    --listen 127.0.0.1:53 --upstream 127.0.0.2:5353 "${CACHE_ARGS[@]}" 2>"$WORK/markdns.log"
lab_wait_answer 127.0.0.1
# Count only the load: forget startup (policy, event loops, first-call symbol binding).
callgrind_control -z "$MD_PID" >/dev/null 2>&1
nsx dnsperf -s 127.0.0.1 -a 127.0.0.10 -d "$WORK/queries.txt" -c 4 -q "$OUTSTANDING" -Q "$QPS" -l "$DURATION" \
    | grep -E 'Queries (sent|completed|lost)|Queries per second'
lab_stop "$MD_PID"   # callgrind writes $OUT when markdns exits

echo
echo "callgrind: $OUT (MODE=$MODE, $DURATION s at $QPS QPS)"
annotate() {  # annotate [--inclusive=yes]: the TOP functions, demangled
    callgrind_annotate --threshold=100 "$@" "$OUT" 2>/dev/null | swift demangle --simplified \
        | awk -v top="$TOP" '/^ *[0-9,]+ \(/ && n++ <= top' | cut -c1-220
}
echo "== inclusive (callgrind_annotate --inclusive=yes; instructions per query = total / queries completed)"
annotate --inclusive=yes
echo "== self (without the thread-entry frames that zeroing leaves holding everything)"
TOP=$((TOP + 8)) annotate | awk '/PROGRAM TOTALS/ || !/\((9[0-9]|100)\.[0-9]+%\)/'
