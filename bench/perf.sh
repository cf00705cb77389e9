#!/usr/bin/env bash
# bench/perf.sh — markdns under full dnsperf load in the lab (bench/lab.sh: own namespace,
# loopback only, 127.0.0.10 marked 0x10), sampled by `perf record -g` for SECONDS (8) and
# summarised: kernel vs user space, top symbols, syscalls. Run as root.
#   MARKDNS_ARGS   extra markdns arguments (default "--threads 1")
#   OUT            perf data file (default bench/perf.data)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
command -v perf >/dev/null || { echo "needs perf (apt-get install linux-perf)" >&2; exit 2; }
SECONDS_=${SECONDS_SAMPLED:-8}
OUT=${OUT:-$REPO/bench/perf.data}
lab_start mdperf
lab_markdns_bin
lab_queries 50000 "$WORK/q.txt"
# shellcheck disable=SC2086
lab_bg MD "$MARKDNS_BIN" --listen 127.0.0.1:53 --upstream 127.0.0.2:5353 --cache-size 0 --log-level warning \
    ${MARKDNS_ARGS:---threads 1}
lab_wait_answer 127.0.0.1
nsx dnsperf -s 127.0.0.1 -a 127.0.0.10 -d "$WORK/q.txt" -c 10 -q 200 -l $((SECONDS_ + 4)) >"$WORK/dnsperf.txt" 2>&1 &
DP=$!
sleep 2
perf record -F 2000 -g -p "$MD" -o "$OUT" -- sleep "$SECONDS_" >/dev/null 2>&1 || true
wait "$DP"
grep -E 'Queries per second' "$WORK/dnsperf.txt"
echo "--- by object (kernel vs user space)"
perf report -i "$OUT" --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -8
echo "--- syscalls and kernel paths (inclusive)"
perf report -i "$OUT" --children --sort sym -g none 2>/dev/null | grep -v '^#' \
    | grep -E '\[k\] (__x64_sys_[a-z]+|udp_sendmsg|handle_softirqs|nf_conntrack_in|nft_do_chain)$' | head -15
echo "--- top user-space symbols (self)"
perf report -i "$OUT" --no-children --sort dso,sym -g none 2>/dev/null | grep -v '^#' | grep -v '^$' \
    | grep -v kernel | head -20 | swift demangle --simplified | cut -c1-160
