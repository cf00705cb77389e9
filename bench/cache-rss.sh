#!/usr/bin/env bash
# bench/cache-rss.sh — markdns's resident memory with a full answer cache (issue target:
# RSS <= 64 MiB with 100,000 cached entries).
#
# Lab (bench/lab.sh, loopback only): upstream dnsmasq 127.0.0.2:5353 answering every
# *.bench.test name, markdns on 127.0.0.1:53 with --cache-size ENTRIES. dnsperf from
# 127.0.0.10 asks ENTRIES distinct names once each (the cache fills), then asks them all
# again (hits). VmRSS / VmHWM of markdns are printed empty, after the fill and after the
# second pass.
#
# Environment: ENTRIES=100000, MARKDNS_BIN (default .build-release/release/markdns, built).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lab.sh"

ENTRIES=${ENTRIES:-100000}
lab_markdns_bin
lab_start mdrss
lab_queries "$ENTRIES" "$WORK/queries.txt"
# One event loop: the single client address would meet only one loop, and each loop
# holds cache-size/threads entries. --cache-min-ttl keeps every entry alive for the run.
lab_bg MD_PID "$MARKDNS_BIN" --listen 127.0.0.1:53 --upstream 127.0.0.2:5353 --threads 1 \
    --cache-size "$ENTRIES" --cache-min-ttl 3600 2>"$WORK/markdns.log"
lab_wait_answer 127.0.0.1
rss() {
    awk -v what="$1" '/^VmRSS|^VmHWM/ { v[$1] = $2 } END {
        printf "%-22s VmRSS %6.1f MiB  VmHWM %6.1f MiB\n", what, v["VmRSS:"] / 1024, v["VmHWM:"] / 1024 }' \
        "/proc/$MD_PID/status"
}
rss "empty"
pass() {
    nsx dnsperf -s 127.0.0.1 -a 127.0.0.10 -d "$WORK/queries.txt" -c 10 -q 200 -n 1 -t 5 \
        | awk '/Queries (completed|lost)|Queries per second/ { printf "  %s", $0 } END { print "" }'
}
pass
rss "after $ENTRIES names"
pass
rss "after a second pass"
kill -TERM "$MD_PID"
wait "$MD_PID" 2>/dev/null || true
grep -o 'cache_hits=[0-9]*' "$WORK/markdns.log" | sed 's/^/second pass: /'
