#!/usr/bin/env bash
# scripts/soak.sh [MINUTES] — long-running load with marked clients and mark changes.
#
# Everything runs inside a private network namespace (mdsoak-$$) on loopback only.
#
#   127.0.0.2:5353   upstream: dnsmasq answering *.example.test itself
#   127.0.0.1:53     markdns --upstream 127.0.0.2:5353 (conntrack on, --cache-size 1000)
#   127.0.0.10..13   clients, one dnsperf each (rate-limited); .13 queries over TCP.
#                    Client k (1..4 for .10...13) has mark 0xk0 or 0xk1 (the map of
#                    conf/nftables.conf), and
#                    every FLIP seconds one client flips between the two: the map entry
#                    and its live conntrack entries (conntrack -U) both change.
#
# Each client asks only names starting with its own label (c10-..., c11-...), so an
# nft counter in output can check every upstream UDP query packet against the marks
# its client may have: packets of client k must carry 0xk0 or 0xk1 (SO_MARK), never another
# client's mark and never none. TCP upstream flows (only client .13 uses TCP) are
# checked in the conntrack table at each sample. Every SAMPLE seconds: fd count and RSS
# of markdns, and that it is still the same process.
#
# Exit status 0 when: markdns never died or restarted, it exited 0 on SIGTERM, no
# upstream query carried a wrong or no mark, every client's marks were both seen
# upstream, the largest fd count of the last quarter of samples is within FD_SLACK of
# that of the first quarter, and the last RSS within 25% + 8 MiB of the largest RSS of the
# first quarter. 1 otherwise; 2 on a setup error.
#
# Environment: QPS=250 (per client), FLIP=5, SAMPLE=10, FD_SLACK=32, KEEP=0,
#              MARKDNS_BIN (default: .build/debug/markdns, built if missing),
#              MARKDNS_ARGS (extra markdns arguments, e.g. "--user nobody --threads 2").
set -euo pipefail

MINUTES=${1:-10}
QPS=${QPS:-250}
FLIP=${FLIP:-5}
SAMPLE=${SAMPLE:-10}
FD_SLACK=${FD_SLACK:-32}
KEEP=${KEEP:-0}
MARKDNS_ARGS=${MARKDNS_ARGS:-}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '%s\n' "$*" >&2; }
die() { log "soak.sh: $*"; exit 2; }

[[ $(id -u) == 0 ]] || die "run as root (network namespaces, nftables, conntrack)"
[[ $MINUTES =~ ^[0-9]+$ && $MINUTES -gt 0 ]] || die "MINUTES must be a positive integer"
for cmd in dnsmasq dnsperf conntrack nft ip; do
    command -v "$cmd" >/dev/null || die "needs $cmd (scripts/install-deps.sh)"
done
if [[ -z ${MARKDNS_BIN:-} ]]; then
    MARKDNS_BIN=$REPO/.build/debug/markdns
    [[ -x $MARKDNS_BIN ]] || (cd "$REPO" && PATH="/opt/swift/usr/bin:$PATH" swift build --product markdns) >&2 \
        || die "swift build failed"
fi
[[ -x $MARKDNS_BIN ]] || die "MARKDNS_BIN=$MARKDNS_BIN is not executable"

NS=mdsoak-$$
WORK=$(mktemp -d /tmp/mdsoak.XXXXXX)
NS_MADE=0
# Every process this script starts runs inside its own namespace: stopping them is
# stopping what runs in the namespace.
# shellcheck disable=SC2329  # invoked through trap
cleanup() {
    local rc=$? pid
    set +e
    trap - EXIT INT TERM
    if ((NS_MADE)); then
        for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null; done
        sleep 1
        for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns delete "$NS" 2>/dev/null
    fi
    wait 2>/dev/null
    [[ $KEEP == 1 ]] && log "work directory kept: $WORK" || rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$NS" || die "cannot create network namespace $NS"
NS_MADE=1
nsx() { ip netns exec "$NS" "$@"; }
nsx ip link set lo up

CLIENTS=(10 11 12 13)
declare -A MARK   # client -> current mark (hex digits)
nsx nft -f "$REPO/conf/nftables.conf"
nsx nft flush map inet markdns client_mark4
for c in "${CLIENTS[@]}"; do
    MARK[$c]=$((c - 9))0
    nsx nft add element inet markdns client_mark4 "{ 127.0.0.$c : 0x${MARK[$c]} }"
done

# Checks on every upstream UDP query: the first label's first three bytes (UDP payload
# offset 13: 12-byte DNS header, 1 length byte) name the client.
{
    echo "table inet soakcheck {"
    for c in "${CLIENTS[@]}"; do
        n=$((c - 9))
        echo "  counter ok$c {}"; echo "  counter bad$c {}"; echo "  counter m${n}0 {}"; echo "  counter m${n}1 {}"
    done
    echo "  counter unmarked {}"
    echo "  chain out { type filter hook output priority 0; policy accept;"
    echo "    udp dport 5353 meta mark 0 counter name unmarked"
    for c in "${CLIENTS[@]}"; do
        n=$((c - 9))
        label=$(printf 'c%s' "$c" | od -An -tx1 | tr -d ' \n')
        echo "    udp dport 5353 @th,168,24 0x$label meta mark { 0x${n}0, 0x${n}1 } counter name ok$c"
        echo "    udp dport 5353 @th,168,24 0x$label meta mark != { 0x${n}0, 0x${n}1 } counter name bad$c"
        echo "    udp dport 5353 @th,168,24 0x$label meta mark 0x${n}0 counter name m${n}0"
        echo "    udp dport 5353 @th,168,24 0x$label meta mark 0x${n}1 counter name m${n}1"
    done
    echo "  }"
    echo "}"
} | nsx nft -f -
counter() { nsx nft list counter inet soakcheck "$1" | awk '/packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") print $(i + 1) }'; }

for c in "${CLIENTS[@]}"; do
    awk -v c="$c" 'BEGIN { for (i = 0; i < 20000; i++) printf "c%s-%05d.example.test A\n", c, i }' >"$WORK/q$c.txt"
done

# Started with ip netns exec directly (not through nsx): $! is then the server itself.
ip netns exec "$NS" dnsmasq -C /dev/null --keep-in-foreground --pid-file= --log-facility=- --no-resolv --no-hosts \
    --bind-interfaces --listen-address=127.0.0.2 --port=5353 --cache-size=0 --dns-forward-max=4096 \
    --address=/example.test/192.0.2.7 >"$WORK/upstream.log" 2>&1 &
# shellcheck disable=SC2086  # MARKDNS_ARGS is a list of words
ip netns exec "$NS" "$MARKDNS_BIN" --listen 127.0.0.1:53 --upstream 127.0.0.2:5353 --cache-size 1000 \
    $MARKDNS_ARGS >"$WORK/markdns.log" 2>&1 &
MD=$!
for _ in $(seq 50); do
    nsx dig +time=1 +tries=1 +short -b 127.0.0.10 @127.0.0.1 probe.example.test 2>/dev/null | grep 192.0.2.7 >/dev/null && break
    kill -0 "$MD" 2>/dev/null || { cat "$WORK/markdns.log" >&2; die "markdns exited at start"; }
    sleep 0.2
done
MD_START=$(awk '{ print $22 }' "/proc/$MD/stat")

SECONDS_TOTAL=$((MINUTES * 60))
DNSPERF=()
for c in "${CLIENTS[@]}"; do
    mode=udp; [[ $c == 13 ]] && mode=tcp
    ip netns exec "$NS" dnsperf -s 127.0.0.1 -a "127.0.0.$c" -m "$mode" -d "$WORK/q$c.txt" -l "$SECONDS_TOTAL" \
        -Q "$QPS" -q 50 -t 5 >"$WORK/dnsperf$c.txt" 2>&1 &
    DNSPERF+=($!)
done

echo "markdns soak: $MINUTES min, ${#CLIENTS[@]} clients x $QPS qps (client .13 over TCP), a mark flip every $FLIP s"
echo "markdns: $MARKDNS_BIN $MARKDNS_ARGS  pid $MD  host: $(nproc) cpu, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%8s %6s %9s %7s %s\n' elapsed fds rss_kib tcp_bad note
FDS=() RSS=() TCP_BAD=0 DIED=0 FLIPS=0
start=$(date +%s) next_sample=0 next_flip=$FLIP i=0
while :; do
    now=$(( $(date +%s) - start ))
    ((now >= SECONDS_TOTAL)) && break
    if ! kill -0 "$MD" 2>/dev/null || [[ $(awk '{ print $22 }' "/proc/$MD/stat" 2>/dev/null) != "$MD_START" ]]; then
        DIED=1; echo "markdns DIED at ${now}s"; break
    fi
    if ((now >= next_flip)); then
        c=${CLIENTS[$((FLIPS % ${#CLIENTS[@]}))]}
        n=$((c - 9))
        if [[ ${MARK[$c]} == "${n}0" ]]; then MARK[$c]=${n}1; else MARK[$c]=${n}0; fi
        nsx nft delete element inet markdns client_mark4 "{ 127.0.0.$c }"
        nsx nft add element inet markdns client_mark4 "{ 127.0.0.$c : 0x${MARK[$c]} }"
        nsx conntrack -U -s "127.0.0.$c" -d 127.0.0.1 -m "0x${MARK[$c]}" >/dev/null 2>&1 || true
        FLIPS=$((FLIPS + 1))
        next_flip=$((next_flip + FLIP))
    fi
    if ((now >= next_sample)); then
        fds=$(find "/proc/$MD/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$MD/status")
        # TCP upstream flows come only from client .13: marks 0x40/0x41 are its own.
        bad=$(nsx conntrack -L -p tcp --orig-port-dst 5353 2>/dev/null \
              | awk '{ m = 0; for (i = 1; i <= NF; i++) if ($i ~ /^mark=/) m = substr($i, 6) } m != 64 && m != 65 { n++ } END { print n + 0 }')
        TCP_BAD=$((TCP_BAD + bad))
        FDS+=("$fds") RSS+=("$rss")
        printf '%7ss %6d %9d %7d\n' "$now" "$fds" "$rss" "$bad"
        next_sample=$((next_sample + SAMPLE))
    fi
    sleep 0.5
done
for pid in "${DNSPERF[@]}"; do wait "$pid" || true; done

# ---------------------------------------------------------------- checks
FAIL=()
((DIED)) && FAIL+=("markdns died or was restarted")
STOP=ok
if ! ((DIED)); then
    kill -TERM "$MD"
    if wait "$MD"; then STOP="markdns exited 0 on SIGTERM"; else STOP="markdns exited $? on SIGTERM"; FAIL+=("$STOP"); fi
fi
n=${#FDS[@]}
q=$(( n / 4 > 0 ? n / 4 : 1 ))
read -r fd_first fd_last fd_max < <(printf '%s\n' "${FDS[@]}" | awk 'NR == 1 { f = $1 } { l = $1; if ($1 > m) m = $1 } END { print f, l, m }')
read -r rss_first rss_last rss_max < <(printf '%s\n' "${RSS[@]}" | awk 'NR == 1 { f = $1 } { l = $1; if ($1 > m) m = $1 } END { print f, l, m }')
rss_q1=$(printf '%s\n' "${RSS[@]}" | sed -n "1,${q}p" | sort -n | tail -1)
fd_q1=$(printf '%s\n' "${FDS[@]}" | sed -n "1,${q}p" | sort -n | tail -1)
fd_q4=$(printf '%s\n' "${FDS[@]}" | tail -n "$q" | sort -n | tail -1)
echo
echo "samples: $n   fds first/last/max: $fd_first/$fd_last/$fd_max (max of first/last quarter $fd_q1/$fd_q4)" \
     "  RSS KiB first/last/max: $rss_first/$rss_last/$rss_max (max of first quarter $rss_q1)"
# Descriptors move with the TCP queries in flight; a leak shows as a rising ceiling.
((fd_q4 <= fd_q1 + FD_SLACK)) || FAIL+=("fd count grew: max $fd_q1 in the first quarter -> $fd_q4 in the last")
((rss_last <= rss_q1 * 125 / 100 + 8192)) || FAIL+=("RSS grew: first-quarter max $rss_q1 KiB -> last $rss_last KiB")

echo "mark flips: $FLIPS"
printf '%-7s %10s %8s %10s %10s\n' client ok bad mark_N0 mark_N1
BAD=0
for c in "${CLIENTS[@]}"; do
    n=$((c - 9))
    ok=$(counter "ok$c") bad=$(counter "bad$c") m0=$(counter "m${n}0") m1=$(counter "m${n}1")
    printf '%-7s %10d %8d %10d %10d\n' "127.0.0.$c" "$ok" "$bad" "$m0" "$m1"
    BAD=$((BAD + bad))
    # client .13 is on TCP: its UDP counters stay 0 (checked through conntrack instead).
    if [[ $c != 13 ]] && ((m0 == 0 || m1 == 0)); then FAIL+=("client .$c: not both of its marks were seen upstream"); fi
done
unmarked=$(counter unmarked)
echo "upstream UDP query packets without a mark: $unmarked   without one of the client's own marks: $BAD   TCP upstream flows with a wrong mark (summed over samples): $TCP_BAD"
((unmarked == 0 && BAD == 0 && TCP_BAD == 0)) || FAIL+=("upstream queries with a wrong or no mark")
for c in "${CLIENTS[@]}"; do
    awk -v c="$c" '/Queries sent:/ { s = $3 } /Queries completed:/ { d = $3 } /Queries lost:/ { l = $3 }
        /Response codes:/ { sub(/^.*Response codes: */, ""); r = $0 }
        END { printf "dnsperf .%s: sent %s completed %s lost %s  %s\n", c, s, d, l, r }' "$WORK/dnsperf$c.txt"
done
echo "$STOP"
grep -o 'stats:.*' "$WORK/markdns.log" | tail -1 | sed 's/^/markdns /' || echo "markdns printed no stats line"
if ((${#FAIL[@]})); then
    printf 'SOAK FAILED: %s\n' "${FAIL[@]}"
    exit 1
fi
echo "SOAK PASSED"
