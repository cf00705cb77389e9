#!/usr/bin/env bash
# bench/sets.sh — forwarding with every answer filling an nft set ([[set]], issue 15):
# markdns against dnsmasq 2.90 --nftset, each with and without its set, cache off.
#
# Everything runs in a private network namespace (bench/lab.sh) on loopback only. Run as root.
#
#   127.0.0.2:5354  upstream: dnsmasq --synth-domain: h-10-A-B-C.bench.test -> 10.A.B.C (TTL 300),
#                   so every unique name has its own address (every answer a new set element)
#   127.0.0.1:53    markdns-sets    policy with [[set]] "bench" (domains bench.test, timeout-min 300):
#                   fills bench_v4 of table inet markdns before each answer leaves (netlink batch per tick)
#   127.0.0.4:53    markdns-nosets  the same policy without the [[set]]
#   127.0.0.3:53    dnsmasq-sets    --nftset=/bench.test/4#inet#dmbench#bench_v4 (libnftables per answer)
#   127.0.0.6:53    dnsmasq-nosets  the same without --nftset
#   127.0.0.10      the client (dnsperf -a), marked 0x100 by markdns's rules
#
# Phase 1 (as fast as answered): dnsperf qps of each target, ratio markdns-sets/dnsmasq-sets.
# Phase 2 (RATE q/s, default 4000): p50/p99 latency (dnsperf -v) and CPU µs per answer
# (utime+stime from /proc/PID/stat) of each target, with and without sets.
# Both sets are flushed before every run and counted after it: the elements must be there.
#
# Environment: DURATION=10 (s per run), ROUNDS=1, QUERIES=50000 (unique names), CLIENTS=10,
# OUTSTANDING=200, RATE=4000, MARKDNS_BIN (default: release build, see bench/lab.sh), KEEP=0.
# Exit status: 0 when every run completed and each sets target filled its set; 1 otherwise.
set -euo pipefail

DURATION=${DURATION:-10} ROUNDS=${ROUNDS:-1} QUERIES=${QUERIES:-50000}
CLIENTS=${CLIENTS:-10} OUTSTANDING=${OUTSTANDING:-200} RATE=${RATE:-4000} KEEP=${KEEP:-0}
# shellcheck source=bench/lab.sh
source "$(dirname "${BASH_SOURCE[0]}")/lab.sh"
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 2; }
for cmd in dnsperf dnsmasq nft; do command -v "$cmd" >/dev/null || { echo "missing: $cmd" >&2; exit 2; }; done
lab_markdns_bin

NS=mdsets-$$
WORK=$(mktemp -d /tmp/mdsets.XXXXXX)
trap 'if ((KEEP)); then echo "work directory kept: $WORK" >&2; WORK=/nonexistent; fi; lab_cleanup' EXIT
ip netns add "$NS"
nsx ip link set lo up
# dnsmasq --bind-interfaces listens only on addresses of an interface.
for a in 127.0.0.3 127.0.0.6; do nsx ip addr add "$a/8" dev lo; done

TARGETS=(markdns-sets markdns-nosets dnsmasq-sets dnsmasq-nosets)
declare -A ADDR=([markdns-sets]=127.0.0.1 [markdns-nosets]=127.0.0.4 [dnsmasq-sets]=127.0.0.3 [dnsmasq-nosets]=127.0.0.6)
declare -A PID

# ---------------------------------------------------------------- policy, rules, servers
policy() {   # policy LISTEN WITH_SET
    printf '[server]\nlisten = ["%s:53"]\n[conntrack]\nmask = 0xff00\n' "$1"
    printf '[[pool]]\nname = "up"\nservers = ["127.0.0.2:5354"]\n'
    printf '[[mark]]\nvalue = 0x100\nname = "lan"\n[[client]]\nname = "lan"\nmatch = ["127.0.0.10"]\nmark = "lan"\n'
    (($2)) && printf '[[set]]\nname = "bench"\ndomains = ["bench.test"]\ntimeout-min = 300\n'
    return 0
}
policy 127.0.0.1 1 >"$WORK/sets.toml"
policy 127.0.0.4 0 >"$WORK/nosets.toml"
nsx "$MARKDNS_BIN" check --config "$WORK/sets.toml" >/dev/null
nsx "$MARKDNS_BIN" rules --config "$WORK/sets.toml" --apply
nsx nft -f - <<'EOF'
table inet dmbench {
    set bench_v4 {
        type ipv4_addr
        flags timeout
        timeout 5m
    }
}
EOF

DM=(-C /dev/null --keep-in-foreground --pid-file= --log-facility=- --no-resolv --no-hosts --bind-interfaces)
lab_bg up dnsmasq "${DM[@]}" --listen-address=127.0.0.2 --port=5354 --cache-size=0 --local-ttl=300 \
    --synth-domain=bench.test,10.0.0.0/8,h- --address=/probe.bench.test/192.0.2.1 2>"$WORK/upstream.log"
lab_bg "PID[markdns-sets]" "$MARKDNS_BIN" --config "$WORK/sets.toml" --cache-size 0 2>"$WORK/markdns-sets.log"
lab_bg "PID[markdns-nosets]" "$MARKDNS_BIN" --config "$WORK/nosets.toml" --cache-size 0 2>"$WORK/markdns-nosets.log"
for t in dnsmasq-sets dnsmasq-nosets; do
    extra=(); [[ $t == dnsmasq-sets ]] && extra=(--nftset=/bench.test/4#inet#dmbench#bench_v4)
    lab_bg "PID[$t]" dnsmasq "${DM[@]}" --listen-address="${ADDR[$t]}" --port=53 --cache-size=0 \
        --dns-forward-max=4096 --server=127.0.0.2#5354 "${extra[@]}" 2>"$WORK/$t.log"
done
for t in "${TARGETS[@]}"; do lab_wait_answer "${ADDR[$t]}"; done

awk -v n="$QUERIES" 'BEGIN { for (i = 0; i < n; i++) printf "h-10-%d-%d-%d.bench.test A\n", int(i / 65536) % 256, int(i / 256) % 256, i % 256 }' \
    >"$WORK/queries.txt"

# ---------------------------------------------------------------- one run
set_of() {   # set_of TARGET: "table set" it fills, or nothing
    case $1 in markdns-sets) echo "markdns bench_v4" ;; dnsmasq-sets) echo "dmbench bench_v4" ;; esac
}
elements() {  # elements TABLE SET: members now
    nsx nft -j list set inet "$1" "$2" | python3 -c 'import json,sys
print(sum(len(o["set"].get("elem", [])) for o in json.load(sys.stdin)["nftables"] if "set" in o))'
}
ticks() { local st; st=$(cat "/proc/$1/stat"); st=${st##*) }; read -r -a st <<<"$st"; echo $((st[11] + st[12])); }
TCK=$(getconf CLK_TCK)
RESULTS=$WORK/results.tsv
FAILED=()

run() {   # run PHASE ROUND TARGET RATE: appends "phase round target qps lost% p50 p99 cpu_us elements"
    local phase=$1 round=$2 t=$3 rate=() out=$WORK/dnsperf-$1-$2-$3.txt c0 c1 p50 p99 n=- s
    (($4)) && rate=(-Q "$4")
    s=$(set_of "$t")
    nsx nft flush set inet markdns bench_v4; nsx nft flush set inet dmbench bench_v4
    nsx conntrack -F >/dev/null 2>&1 || true
    c0=$(ticks "${PID[$t]}")
    timeout $((DURATION + 60)) ip netns exec "$NS" dnsperf -s "${ADDR[$t]}" -a 127.0.0.10 -d "$WORK/queries.txt" \
        -c "$CLIENTS" -q "$OUTSTANDING" -l "$DURATION" "${rate[@]}" -v >"$out" 2>&1 || FAILED+=("dnsperf $phase $t")
    c1=$(ticks "${PID[$t]}")
    [[ -n $s ]] && n=$(elements $s)
    read -r p50 p99 < <(awk '$1 == ">" && NF == 5 { print $5 }' "$out" | LC_ALL=C sort -g |
        awk '{ a[NR] = $1 } END { if (!NR) { print "- -"; exit }
              printf "%.3f %.3f\n", a[int(NR * 0.50 + 0.999999)] * 1000, a[int(NR * 0.99 + 0.999999)] * 1000 }')
    awk -v ph="$phase" -v r="$round" -v t="$t" -v p50="$p50" -v p99="$p99" -v cpu=$((c1 - c0)) -v tck="$TCK" -v n="$n" '
        /Queries sent:/ { sent = $3 } /Queries completed:/ { comp = $3 } /Queries lost:/ { lost = $3 }
        /Queries per second:/ { qps = $4 }
        END { printf "%s\t%s\t%s\t%.1f\t%.3f\t%s\t%s\t%s\t%s\n", ph, r, t, qps, sent ? 100 * lost / sent : 100, p50, p99,
                     comp ? sprintf("%.1f", cpu * 1e6 / tck / comp) : "-", n }' "$out" | tee -a "$RESULTS"
    if [[ -n $s && $n == 0 ]]; then FAILED+=("$t filled no set elements ($phase round $round)"); fi
}

# ---------------------------------------------------------------- rounds
echo "markdns [[set]] benchmark ($(date -u '+%Y-%m-%d %H:%M:%SZ')), host $(nproc) cpu, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "markdns $MARKDNS_BIN git $(git -C "$REPO" rev-parse --short HEAD); dnsmasq $(dnsmasq --version | awk 'NR == 1 { print $3 }')"
echo "dnsperf -c $CLIENTS -q $OUTSTANDING -l $DURATION, $QUERIES unique names (unique addresses), cache off everywhere, $ROUNDS round(s)"
printf 'phase\tround\ttarget\tqps\tlost%%\tp50_ms\tp99_ms\tcpu_us\telements\n'
for round in $(seq "$ROUNDS"); do
    for t in "${TARGETS[@]}"; do run peak "$round" "$t" 0; done
    for t in "${TARGETS[@]}"; do run "rate$RATE" "$round" "$t" "$RATE"; done
done

# ---------------------------------------------------------------- summary
echo
awk -F'\t' -v rate="rate$RATE" '
    function med(list,   n, a, i, j, x) { n = split(list, a, " "); if (!n) return "-"
        for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > x + 0; j--) a[j + 1] = a[j]; a[j + 1] = x }
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    $1 == "peak" { q[$3] = q[$3] " " $4 }
    $1 == rate { p50[$3] = p50[$3] " " $6; p99[$3] = p99[$3] " " $7; cpu[$3] = cpu[$3] " " $8 }
    END {
        printf "peak qps (median): markdns-sets %s  dnsmasq-sets %s  ratio %.2f   (without sets: markdns %s  dnsmasq %s)\n",
            med(q["markdns-sets"]), med(q["dnsmasq-sets"]), med(q["markdns-sets"]) / med(q["dnsmasq-sets"]),
            med(q["markdns-nosets"]), med(q["dnsmasq-nosets"])
        split("markdns dnsmasq", s, " ")
        for (k = 1; k <= 2; k++) { a = s[k] "-sets"; b = s[k] "-nosets"
            printf "at %s q/s, %s: p50 %s ms -> %s ms with sets, p99 %s -> %s ms; CPU %s -> %s us per answer\n",
                substr(rate, 5), s[k], med(p50[b]), med(p50[a]), med(p99[b]), med(p99[a]), med(cpu[b]), med(cpu[a]) }
    }' "$RESULTS"
lab_stop "${PID[markdns-sets]}"   # prints its stats line
grep -o 'stats:.*' "$WORK/markdns-sets.log" | grep -o 'set_[a-z_]*=[0-9]*' | tr '\n' ' ' | sed 's/^/markdns-sets: /'; echo
grep -v 'compile time options' "$WORK/dnsmasq-sets.log" | grep -ciE 'fail|error' | sed 's/^/dnsmasq-sets log lines with fail|error: /' || true
STATUS=0
for f in "${FAILED[@]}"; do echo "FAIL: $f"; STATUS=1; done
exit "$STATUS"
