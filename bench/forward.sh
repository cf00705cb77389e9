#!/usr/bin/env bash
# bench/forward.sh — forwarding throughput of markdns vs dnsmasq --conntrack.
#
# Everything runs inside a private network namespace (mdbench-$$) on loopback
# addresses only (127.0.0.0/8); nothing is sent anywhere else. Run as root.
#
#   127.0.0.2:5353  upstream: dnsmasq answering *.bench.test itself (--address)
#   127.0.0.1:53    markdns  --upstream 127.0.0.2:5353 (conntrack on)
#   127.0.0.3:53    dnsmasq  --conntrack --cache-size=0 --server=127.0.0.2#5353
#   127.0.0.10      client A (dnsperf -a), nft marks it 0x10, asks aNNNNNN.bench.test
#   127.0.0.11      client B, nft marks it 0x20, asks bNNNNNN.bench.test
#
# Each round runs dnsperf against upstream, markdns and dnsmasq-conntrack in
# turn, one dnsperf per client address at the same time (half the clients and
# outstanding queries each; QPS summed). Two addresses because markdns keeps one
# client address on one event loop (--threads), as a LAN of many clients does.
# The conntrack table is flushed before every run. A referee in the kernel
# (nft counters on the OUTPUT hook, keyed by the qname's first letter and the
# packet mark) counts every forwarded query that leaves with the wrong client's
# mark or none: it must stay 0 for markdns.
#
# Environment:
#   DURATION=10      seconds per dnsperf run (dnsperf -l)
#   ROUNDS=3         rounds (each round runs all three targets)
#   CLIENTS=10       dnsperf -c
#   OUTSTANDING=200  dnsperf -q
#   MODE=forward     forward: every query a cache miss (markdns --cache-size 0,
#                    dnsmasq --cache-size=0, 50000 unique names);
#                    cache: 500 hot names repeated, caches on (markdns default,
#                    dnsmasq --cache-size=10000): cache-hit throughput
#   RATE=0           total queries per second to send (dnsperf -Q, split over the
#                    clients); 0 = as fast as the servers answer. For latency at a
#                    fixed load, e.g. half of dnsmasq --conntrack's peak rate.
#   QUERIES=50000    lines in the query file (unique names nNNNNNN.bench.test A)
#   PERCENTILES=1    run dnsperf -v and compute p50/p99 from per-query latencies
#                    (costs dnsperf some CPU; 0 = average latency only)
#   MARKDNS_BIN      markdns binary (default: <repo>/.build/release/markdns,
#                    built with swift build -c release if absent)
#   MARKDNS_ARGS     extra markdns arguments (e.g. "--log-level warning")
#   DNSMASQ_FORWARD_MAX=4096  --dns-forward-max of the dnsmasq --conntrack
#                    instance (dnsmasq's own default is 150)
#   DNSMASQ_CT_ARGS  extra arguments for the dnsmasq --conntrack instance
#                    (dnsmasq rejects a repeated option)
#   CEILING=0        1 = also run bench/ceiling.c (built with cc) at 127.0.0.4:53: the
#                    least work a marking forwarder can do (one C thread, recvmmsg/sendmmsg,
#                    SO_RCVMARK -> SO_MARK, no validation); in cache mode a responder that
#                    answers every query itself, i.e. the load generator's own ceiling
#   CPU=0            1 = also report each server's CPU time per answered query (utime +
#                    stime of the process, all threads, from /proc/PID/stat before and
#                    after each run, divided by the queries completed) and context
#                    switches per query (every thread's, /proc/PID/task/*/status), plus
#                    markdns's CPU while idle for 10 s. Meant with RATE (a fixed load):
#                    RATE=8000 CPU=1 CEILING=1 bench/forward.sh
#   KEEP=0           1 = keep the work directory (logs, dnsperf output)
#
# Exit status: 0 when all runs completed and every markdns upstream flow had
# mark 0x10; 1 on a wrong/missing mark, a server that failed to start or stopped
# answering, or markdns not exiting on SIGTERM; 2 on a setup error.

set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-10}
OUTSTANDING=${OUTSTANDING:-200}
MODE=${MODE:-forward}
QUERIES=${QUERIES:-50000}
RATE=${RATE:-0}
case $MODE in
    forward) MD_CACHE=(--cache-size 0); DM_CACHE=--cache-size=0 ;;
    cache)   MD_CACHE=(); DM_CACHE=--cache-size=10000; QUERIES=500 ;;
    *) echo "MODE must be forward or cache" >&2; exit 2 ;;
esac
PERCENTILES=${PERCENTILES:-1}
KEEP=${KEEP:-0}
CEILING=${CEILING:-0}
CPU=${CPU:-0}
MARKDNS_ARGS=${MARKDNS_ARGS:-}
DNSMASQ_CT_ARGS=${DNSMASQ_CT_ARGS:-}
DNSMASQ_FORWARD_MAX=${DNSMASQ_FORWARD_MAX:-4096}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

UP_ADDR=127.0.0.2 UP_PORT=5353
MD_ADDR=127.0.0.1 MD_PORT=53
DM_ADDR=127.0.0.3 DM_PORT=53
CE_ADDR=127.0.0.4 CE_PORT=53
TARGETS=(upstream markdns dnsmasq-ct)
((CEILING)) && TARGETS+=(ceiling)
CLIENT=127.0.0.10   # probes
CLIENT_ADDRS=(127.0.0.10 127.0.0.11)
CLIENT_LETTERS=(a b)

log()  { printf '%s\n' "$*" >&2; }
die()  { log "forward.sh: $*"; exit 2; }

[[ $(id -u) == 0 ]] || die "run as root (network namespaces, nftables, conntrack)"
[[ $DURATION =~ ^[0-9]+$ && $DURATION -gt 0 ]] || die "DURATION must be a positive integer"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -gt 0 ]] || die "ROUNDS must be a positive integer"
[[ $RATE =~ ^[0-9]+$ ]] || die "RATE must be a number (queries per second, 0 = unlimited)"

# ---------------------------------------------------------------- packages
# Checked by command so that e.g. dnsmasq-base alone (no system service) counts.
# dnsmasq-base ships /usr/sbin/dnsmasq without the init script/system service
# that the "dnsmasq" package would start on the host.
declare -A PKG_FOR=([dnsmasq]=dnsmasq-base [dnsperf]=dnsperf [conntrack]=conntrack
                    [nft]=nftables [ip]=iproute2)
missing=()
for cmd in dnsmasq dnsperf conntrack nft ip; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${PKG_FOR[$cmd]}")
done
if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq "${missing[@]}" >&2
fi

# ---------------------------------------------------------------- markdns binary
if [[ -n ${MARKDNS_BIN:-} ]]; then
    [[ -x $MARKDNS_BIN ]] || die "MARKDNS_BIN=$MARKDNS_BIN is not executable"
else
    MARKDNS_BIN=$REPO/.build/release/markdns
    # Always build (incremental): a stale binary would measure old code.
    log "building markdns (release)..."
    (cd "$REPO" && PATH="/opt/swift/usr/bin:$PATH" swift build -c release --product markdns --scratch-path .build) >&2 \
        || die "swift build failed"
fi

# ---------------------------------------------------------------- namespace, cleanup
NS=mdbench-$$
WORK=$(mktemp -d /tmp/mdbench.XXXXXX)
PIDS=()          # every background process this script started
PID_markdns=''   # start() sets PID_<name> for each server
NS_MADE=0

# ours PID: PID is a live (not zombie) child of this script; guards every kill
# against PID reuse after bash has reaped a child.
ours() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }                       # drop "pid (comm) "
    read -r -a st <<<"$st"              # state ppid ...
    [[ ${st[0]} != Z && ${st[1]} == "$$" ]]
}

# shellcheck disable=SC2329  # invoked through trap
cleanup() {
    local rc=$? pid _ alive
    set +e
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do ours "$pid" && kill -TERM "$pid" 2>/dev/null; done
    for _ in $(seq 50); do
        alive=0
        for pid in "${PIDS[@]}"; do ours "$pid" && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do ours "$pid" && kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    if ((NS_MADE)); then
        # Anything still inside our own namespace was started by us.
        for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns delete "$NS" 2>/dev/null
    fi
    if [[ $KEEP == 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$NS" || die "cannot create network namespace $NS"
NS_MADE=1
nsx() { ip netns exec "$NS" "$@"; }
nsx ip link set lo up
# dnsmasq --bind-interfaces only knows the destination address of a query (and
# so can only look its conntrack entry up) when the listen address belongs to an
# interface; 127.0.0.1 is lo's, give lo 127.0.0.3 too. Loopback only.
nsx ip addr add "$DM_ADDR/8" dev lo

nsx nft -f - <<EOF
table inet mdbench {
    chain prerouting {
        type filter hook prerouting priority mangle; policy accept;
        meta mark set ct mark
        meta mark 0 ip saddr 127.0.0.10 meta mark set 0x10
        meta mark 0 ip saddr 127.0.0.11 meta mark set 0x20
        ct mark set meta mark
    }
    chain output {
        type route hook output priority mangle; policy accept;
        meta mark != 0 ct mark set meta mark
    }
}
table inet referee {
    counter a_ok {}
    counter a_bad {}
    counter b_ok {}
    counter b_bad {}
    chain out {
        type filter hook output priority 10; policy accept;
        ip saddr != { 127.0.0.10, 127.0.0.11 } ip daddr $UP_ADDR udp dport $UP_PORT @th,168,8 0x61 meta mark 0x10 counter name a_ok
        ip saddr != { 127.0.0.10, 127.0.0.11 } ip daddr $UP_ADDR udp dport $UP_PORT @th,168,8 0x61 meta mark != 0x10 counter name a_bad
        ip saddr != { 127.0.0.10, 127.0.0.11 } ip daddr $UP_ADDR udp dport $UP_PORT @th,168,8 0x62 meta mark 0x20 counter name b_ok
        ip saddr != { 127.0.0.10, 127.0.0.11 } ip daddr $UP_ADDR udp dport $UP_PORT @th,168,8 0x62 meta mark != 0x20 counter name b_bad
    }
}
EOF

# ---------------------------------------------------------------- helpers
# probe ADDR PORT: one query, 2 s timeout; succeeds when it was answered.
probe() {
    local out
    out=$(printf 'probe.bench.test A\n' \
        | timeout 15 ip netns exec "$NS" dnsperf -s "$1" -p "$2" -a "$CLIENT" -n 1 -t 2 2>&1) || true
    awk '/Queries completed:/ { ok = ($3 >= 1) } END { exit !ok }' <<<"$out"
}

# start NAME ADDR PORT CMD...: start in the namespace, wait until it answers.
start() {
    local name=$1 addr=$2 port=$3 pid _; shift 3
    ip netns exec "$NS" "$@" >>"$WORK/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    printf -v "PID_${name//-/_}" '%s' "$pid"
    for _ in $(seq 20); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited during startup:"; sed 's/^/  /' "$WORK/$name.log" >&2; exit 2
        fi
        probe "$addr" "$port" && return 0
        sleep 0.25
    done
    log "$name does not answer on $addr:$port:"; sed 's/^/  /' "$WORK/$name.log" >&2; exit 2
}

# counters: Udp RcvbufErrors (namespace) and conntrack drop+early_drop+insert_failed.
udp_rcvbuf_errors() {
    nsx cat /proc/net/snmp | awk '$1 == "Udp:" { if (!h) { for (i = 2; i <= NF; i++) c[$i] = i; h = 1 } else print $(c["RcvbufErrors"]) }'
}
ct_drops() {
    nsx conntrack -S 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^(drop|early_drop|insert_failed)=/) { split($i, a, "="); s += a[2] } } END { print s + 0 }'
}

# cpu_ticks PID: utime + stime of the whole process (all threads), in clock ticks.
cpu_ticks() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    st=${st##*) }
    read -r -a st <<<"$st"     # state is field 3; utime 14, stime 15 => indexes 11, 12
    echo $((st[11] + st[12]))
}
# ctx_switches PID: voluntary + involuntary context switches summed over its threads.
ctx_switches() {
    cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches:/ { s += $2 } END { print s + 0 }'
}
CLK_TCK=$(getconf CLK_TCK)

# referee: "ok bad" upstream queries counted since the last reset (both clients).
referee() {
    nsx nft list counters table inet referee | awk '
        /counter / { name = $2 } /packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") v[name] = $(i + 1) }
        END { printf "%d %d\n", v["a_ok"] + v["b_ok"], v["a_bad"] + v["b_bad"] }'
}

# check_marks LABEL: UDP flows 127.0.0.1 -> 127.0.0.2:5353 by mark: "total 0x10/0x20 other".
check_marks() {
    nsx conntrack -L -p udp 2>/dev/null >"$WORK/ct-$1.txt" || true
    awk -v src="$MD_ADDR" -v dst="$UP_ADDR" -v dport="$UP_PORT" '
        { s = d = p = m = ""
          for (i = 1; i <= NF; i++) {
              split($i, kv, "=")
              if (kv[1] == "src" && s == "") s = kv[2]
              else if (kv[1] == "dst" && d == "") d = kv[2]
              else if (kv[1] == "dport" && p == "") p = kv[2]
              else if (kv[1] == "mark") m = kv[2]
          }
          if (s == src && d == dst && p == dport) { n++; if (m == 16 || m == 32) g++; else w++ } }
        END { printf "%d %d %d\n", n, g, w }' "$WORK/ct-$1.txt"
}

# run_dnsperf ROUND TARGET ADDR PORT: one dnsperf run; appends to results.tsv.
RESULTS=$WORK/results.tsv
FAILED=()
run_dnsperf() {
    local round=$1 target=$2 addr=$3 port=$4 out=$WORK/dnsperf-$2-$1.txt
    local vflag=() rb0 rb1 ct0 ct1 p50=- p99=- pidvar="PID_${2//-/_}" cpu0=0 cpu1=0 cs0=0 cs1=0
    ((PERCENTILES)) && vflag=(-v)
    if ! probe "$addr" "$port"; then
        log "round $round: $target does not answer a probe query; run skipped"
        FAILED+=("$target round $round: not answering")
        printf '%s\t%s\t0\t0\t0\t100\t0\t-\t-\t-\t-\t-\t-\t-\n' "$round" "$target" >>"$RESULTS"
        return 0
    fi
    nsx conntrack -F >/dev/null 2>&1 || true
    nsx nft reset counters table inet referee >/dev/null
    rb0=$(udp_rcvbuf_errors); ct0=$(ct_drops)
    cpu0=$(cpu_ticks "${!pidvar}"); cs0=$(ctx_switches "${!pidvar}")
    local n=${#CLIENT_ADDRS[@]} i pids=()
    local per_c=$(( (CLIENTS + n - 1) / n )) per_q=$(( (OUTSTANDING + n - 1) / n )) rate=()
    ((RATE > 0)) && rate=(-Q $(( (RATE + n - 1) / n )))
    for i in "${!CLIENT_ADDRS[@]}"; do
        timeout $((DURATION + 60)) ip netns exec "$NS" dnsperf -s "$addr" -p "$port" -a "${CLIENT_ADDRS[$i]}" \
            -d "$WORK/queries-${CLIENT_LETTERS[$i]}.txt" -c "$per_c" -q "$per_q" -l "$DURATION" "${rate[@]}" "${vflag[@]}" \
            >"$out.$i" 2>&1 &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || log "round $round: dnsperf ${CLIENT_ADDRS[$i]} against $target exited with $?"
    done
    cpu1=$(cpu_ticks "${!pidvar}"); cs1=$(ctx_switches "${!pidvar}")
    cat "$out".* >"$out"
    rb1=$(udp_rcvbuf_errors); ct1=$(ct_drops)
    read -r REF_OK REF_BAD < <(referee)
    if ((PERCENTILES)); then
        read -r p50 p99 < <(awk '$1 == ">" && NF == 5 { print $5 }' "$out" | LC_ALL=C sort -g |
            awk '{ a[NR] = $1 } END {
                if (!NR) { print "- -"; exit }
                i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999)
                printf "%.3f %.3f\n", a[i50] * 1000, a[i99] * 1000 }')
    fi
    awk -v r="$round" -v t="$target" -v p50="$p50" -v p99="$p99" -v rb=$((rb1 - rb0)) -v ct=$((ct1 - ct0)) \
        -v cpu=$((cpu1 - cpu0)) -v cs=$((cs1 - cs0)) -v tck="$CLK_TCK" '
        /Queries sent:/ { sent += $3 } /Queries completed:/ { comp += $3 } /Queries lost:/ { lost += $3 }
        /Queries per second:/ { qps += $4 } /Average Latency \(s\):/ { avg += $4; navg++ }
        END { avg = navg ? avg / navg : ""; lp = sent ? 100 * lost / sent : 100
              us = comp ? sprintf("%.1f", cpu * 1e6 / tck / comp) : "-"; csq = comp ? sprintf("%.2f", cs / comp) : "-"
              printf "%s\t%s\t%d\t%d\t%d\t%.3f\t%.1f\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", r, t, sent, comp, lost, lp, qps,
                     (avg == "" ? "-" : sprintf("%.3f", avg * 1000)), p50, p99, rb, ct, us, csq }' "$out" >>"$RESULTS"
}

HDR_FMT='%-5s %-17s %10s %8s %8s %8s %8s %10s %7s %7s %8s %6s\n'
print_row() {   # a results.tsv line
    awk -F'\t' -v fmt="$HDR_FMT" '{ printf fmt, $1, $2, $7, $6, $8, $9, $10, $3, $11, $12, $13, $14 }'
}

# ---------------------------------------------------------------- setup
for letter in "${CLIENT_LETTERS[@]}"; do
    awk -v n="$QUERIES" -v l="$letter" 'BEGIN { for (i = 1; i <= n; i++) printf "%s%06d.bench.test A\n", l, i }' \
        >"$WORK/queries-$letter.txt"
done

DNSMASQ_COMMON=(-C /dev/null --keep-in-foreground --pid-file= --log-facility=-
                --no-resolv --no-hosts --bind-interfaces)

start upstream "$UP_ADDR" "$UP_PORT" dnsmasq "${DNSMASQ_COMMON[@]}" \
    --listen-address="$UP_ADDR" --port="$UP_PORT" --cache-size=0 --local-ttl=300 --address=/bench.test/192.0.2.1
start_markdns() {
    MD_STARTS=$((MD_STARTS + 1))
    # shellcheck disable=SC2086
    start markdns "$MD_ADDR" "$MD_PORT" "$MARKDNS_BIN" --listen "$MD_ADDR:$MD_PORT" \
        --upstream "$UP_ADDR:$UP_PORT" "${MD_CACHE[@]}" $MARKDNS_ARGS
}
# stop_markdns: SIGTERM, 10 s grace, then SIGKILL. Sets MD_STOP; MD_STOP_BAD=1 on a hang.
# (while markdns is our unreaped child its PID cannot be reused)
MD_STOP_BAD=0 MD_STARTS=0
stop_markdns() {
    local _
    kill -TERM "$PID_markdns" 2>/dev/null || true
    for _ in $(seq 100); do ours "$PID_markdns" || break; sleep 0.1; done
    if ours "$PID_markdns"; then
        MD_STOP_BAD=1
        kill -KILL "$PID_markdns" 2>/dev/null || true
        wait "$PID_markdns" 2>/dev/null || true
        MD_STOP="markdns did NOT exit within 10 s of SIGTERM (killed)"
    else
        wait "$PID_markdns" 2>/dev/null && MD_STOP="markdns exited 0 on SIGTERM" \
            || MD_STOP="markdns exited with status $? on SIGTERM"
    fi
}
start_markdns
# --dns-forward-max raised from its default 150 to markdns's default
# --max-outstanding (4096) so that dnsperf's 200 outstanding queries never meet
# dnsmasq's limit ("Maximum number of concurrent DNS queries reached").
# shellcheck disable=SC2086
start dnsmasq-ct "$DM_ADDR" "$DM_PORT" dnsmasq "${DNSMASQ_COMMON[@]}" \
    --listen-address="$DM_ADDR" --port="$DM_PORT" --conntrack --dns-forward-max="$DNSMASQ_FORWARD_MAX" "$DM_CACHE" \
    --server="$UP_ADDR#$UP_PORT" $DNSMASQ_CT_ARGS

if ((CEILING)); then
    command -v cc >/dev/null || die "CEILING=1 needs a C compiler (cc)"
    cc -O2 -o "$WORK/ceiling" "$REPO/bench/ceiling.c" || die "cannot build bench/ceiling.c"
    if [[ $MODE == cache ]]; then
        start ceiling "$CE_ADDR" "$CE_PORT" "$WORK/ceiling" "$CE_ADDR" "$CE_PORT" - - answer
    else
        start ceiling "$CE_ADDR" "$CE_PORT" "$WORK/ceiling" "$CE_ADDR" "$CE_PORT" "$UP_ADDR" "$UP_PORT" relay
    fi
fi

echo "markdns $MODE benchmark  ($(date -u '+%Y-%m-%d %H:%M:%SZ'))"
echo "host: $(nproc) cpu, kernel $(uname -r), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "markdns: $MARKDNS_BIN ($(date -u -r "$MARKDNS_BIN" '+%Y-%m-%d %H:%M'))" \
     "git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD -- Sources 2>/dev/null || echo '+dirty')"
echo "dnsmasq: $(dnsmasq --version | awk 'NR == 1 { print $3 }')  dnsperf: $(dnsperf -h 2>&1 | awk '/^Version/{print $2}')"
echo "dnsperf -c $CLIENTS -q $OUTSTANDING -l $DURATION$( ((RATE)) && echo " -Q $RATE") in all, split over -a ${CLIENT_ADDRS[*]}, $QUERIES unique names each," \
     "$ROUNDS round(s); percentiles: $( ((PERCENTILES)) && echo 'dnsperf -v' || echo off)"
echo "markdns: ${MD_CACHE[*]:-default cache}  dnsmasq-ct: --conntrack $DM_CACHE --dns-forward-max=$DNSMASQ_FORWARD_MAX $DNSMASQ_CT_ARGS"
echo "targets: upstream $UP_ADDR:$UP_PORT | markdns $MD_ADDR:$MD_PORT | dnsmasq-ct $DM_ADDR:$DM_PORT$( ((CEILING)) && echo " | ceiling $CE_ADDR:$CE_PORT (bench/ceiling.c $([[ $MODE == cache ]] && echo answer || echo relay))")"
echo

if ((CPU)); then
    # Idle cost: no queries at all for 10 s (timers, sweeps, spinning would show here).
    i0=$(cpu_ticks "$PID_markdns"); c0=$(ctx_switches "$PID_markdns"); sleep 10
    i1=$(cpu_ticks "$PID_markdns"); c1=$(ctx_switches "$PID_markdns")
    echo "markdns idle 10 s: $(( (i1 - i0) * 1000 / CLK_TCK )) ms CPU, $((c1 - c0)) context switches"
    echo
fi

# ---------------------------------------------------------------- rounds
MARK_BAD=0
MARK_LINES=()
for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS"
    # shellcheck disable=SC2059
    printf "$HDR_FMT" rnd target qps lost% avg_ms p50_ms p99_ms sent rcvbuf ct_drop cpu_us cs/q
    for target in "${TARGETS[@]}"; do
        case $target in
            upstream)   run_dnsperf "$round" "$target" "$UP_ADDR" "$UP_PORT" ;;
            markdns)    run_dnsperf "$round" "$target" "$MD_ADDR" "$MD_PORT" ;;
            dnsmasq-ct) run_dnsperf "$round" "$target" "$DM_ADDR" "$DM_PORT" ;;
            ceiling)    run_dnsperf "$round" "$target" "$CE_ADDR" "$CE_PORT" ;;
        esac
        tail -n 1 "$RESULTS" | print_row
        if [[ $target != upstream && $target != ceiling ]]; then
            read -r n good wrong < <(check_marks "$target-$round")
            MARK_LINES+=("$(printf 'round %s %-10s upstream flows %5d (0x10/0x20 %5d, other %5d); queries leaving with their client'"'"'s mark %7d, with another or none %5d' \
                "$round" "$target" "$n" "$good" "$wrong" "$REF_OK" "$REF_BAD")")
            [[ $target == markdns ]] && ((REF_BAD > 0)) && MARK_BAD=1
            if [[ $target == markdns ]] && ! probe "$MD_ADDR" "$MD_PORT"; then
                # A wedged markdns would also skew the next runs (CPU); restart it.
                stop_markdns
                log "round $round: markdns stopped answering after the run; $MD_STOP; restarting it"
                FAILED+=("markdns stopped answering in round $round ($MD_STOP)")
                start_markdns
            fi
            # In cache mode every query after the first round is a hit: no flows is right.
            if [[ $target == markdns ]] && ((wrong > 0)) || { [[ $target == markdns && $MODE == forward ]] && ((n == 0)); }; then
                MARK_BAD=1
                ((n == 0)) && log "round $round: no markdns upstream flows in conntrack"
                awk '/src=127.0.0.1 dst=127.0.0.2 .*dport=5353 / && !/mark=(16|32) / && n++ < 3 { print "  wrong: " $0 }' \
                    "$WORK/ct-$target-$round.txt" >&2
            fi
        fi
    done
    awk -F'\t' -v r="$round" '
        $1 == r { q[$2] = $7 }
        function rt(a, b) { return (b > 0 && a != "") ? sprintf("%.2f", a / b) : "n/a" }
        END { printf "round %s ratio markdns/dnsmasq-ct %s  markdns/upstream %s", r,
                     rt(q["markdns"], q["dnsmasq-ct"]), rt(q["markdns"], q["upstream"])
              if ("ceiling" in q) printf "  ceiling/upstream %s  markdns/ceiling %s", rt(q["ceiling"], q["upstream"]), rt(q["markdns"], q["ceiling"])
              printf "\n" }' "$RESULTS" \
        | tee -a "$WORK/ratios.txt"
    echo
done

# ---------------------------------------------------------------- markdns shutdown
stop_markdns

# ---------------------------------------------------------------- summary
echo "marks (conntrack: UDP flows $MD_ADDR -> $UP_ADDR:$UP_PORT after each run; referee: every forwarded query; markdns must have none wrong):"
printf '  %s\n' "${MARK_LINES[@]}"
echo
echo "$MD_STOP"
((MD_STARTS > 1)) && echo "(markdns was started $MD_STARTS times; the stats line is the last instance's)"
grep -q 'stats:' "$WORK/markdns.log" && grep -o 'stats:.*' "$WORK/markdns.log" | tail -1 | sed 's/^/markdns /' \
    || echo "markdns printed no stats line"
if grep -qiE ' (warning|error|critical) ' "$WORK/markdns.log"; then
    echo "markdns log warnings/errors ($(grep -ciE ' (warning|error|critical) ' "$WORK/markdns.log")), first lines:"
    awk 'tolower($0) ~ / (warning|error|critical) / && n++ < 5 { print "  " substr($0, 1, 200) }' "$WORK/markdns.log"
fi
for d in upstream dnsmasq-ct; do
    # (the upstream has no servers by design)
    if grep -iE 'warning|failed|maximum number' "$WORK/$d.log" | grep -vq 'no upstream servers configured'; then
        echo "$d log:"
        grep -iE 'warning|failed|maximum number' "$WORK/$d.log" | grep -v 'no upstream servers configured' \
            | sed 's/^dnsmasq\[[0-9]*\]: //' | sort | uniq -c | awk 'NR <= 5 { print "  " $0 }'
    fi
done
echo

echo "medians over $ROUNDS round(s):"
printf '      %-17s %10s %8s %8s %8s %8s %8s %6s\n' target qps lost% avg_ms p50_ms p99_ms cpu_us cs/q
MEDIANS=$(awk -F'\t' '
    function median(list,   n, a, i, j, t) {
        n = split(list, a, " "); if (!n) return "-"
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    { for (c = 6; c <= 14; c++) if ($c != "-" && (c <= 10 || c >= 13)) v[$2, c] = v[$2, c] " " $c; seen[$2] = 1 }
    END { split("upstream markdns dnsmasq-ct ceiling", order, " ")
          for (k = 1; k <= 4; k++) { t = order[k]; if (!(t in seen)) continue
              printf "%s", t; for (c = 6; c <= 10; c++) printf "\t%s", median(v[t, c])
              printf "\t%s\t%s\n", median(v[t, 13]), median(v[t, 14]) } }' "$RESULTS")
awk -F'\t' '{ f = "%.3f"; printf "      %-17s %10.1f %8.3f %8s %8s %8s %8s %6s\n", $1, $3, $2,
              ($4 == "-" ? "-" : sprintf(f, $4)), ($5 == "-" ? "-" : sprintf(f, $5)), ($6 == "-" ? "-" : sprintf(f, $6)),
              $7, $8 }' <<<"$MEDIANS"
if ((CPU)); then
    awk -F'\t' '{ c[$1] = $7 }
        function rt(a, b) { return (a != "-" && b != "-" && b + 0 > 0) ? sprintf("%.2f", a / b) : "n/a" }
        END { printf "CPU per query (median µs): markdns %s  dnsmasq-ct %s", c["markdns"], c["dnsmasq-ct"]
              if ("ceiling" in c) printf "  ceiling %s", c["ceiling"]
              printf "\nCPU ratios: markdns/dnsmasq-ct %s", rt(c["markdns"], c["dnsmasq-ct"])
              if ("ceiling" in c) printf "  markdns/ceiling %s", rt(c["markdns"], c["ceiling"])
              printf "\n" }' <<<"$MEDIANS"
fi
echo

qps_of() { awk -F'\t' -v t="$1" '$1 == t { print $3 }' <<<"$MEDIANS"; }
ratio()  { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
Q_UP=$(qps_of upstream); Q_MD=$(qps_of markdns); Q_DM=$(qps_of dnsmasq-ct); Q_CE=$(qps_of ceiling)
if ((ROUNDS > 1)); then
    # Less sensitive to load drifting between rounds than the ratio of medians.
    awk '{ a[NR] = $5; b[NR] = $7; if (NF >= 11) { c[NR] = $9; d[NR] = $11 } }
         function med(x, n,   i, j, t) { for (i = 2; i <= n; i++) { t = x[i]; for (j = i - 1; j >= 1 && x[j] + 0 > t + 0; j--) x[j + 1] = x[j]; x[j + 1] = t }
                                         return (n % 2) ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2 }
         END { printf "median of per-round ratios: markdns/dnsmasq-ct %.2f  markdns/upstream %.2f", med(a, NR), med(b, NR)
               if (length(c)) printf "  ceiling/upstream %.2f  markdns/ceiling %.2f", med(c, NR), med(d, NR)
               printf "\n" }' \
        "$WORK/ratios.txt"
fi

STATUS=0
if ((MARK_BAD)); then echo "FAIL: markdns upstream queries or flows without their client's mark (or none seen)"; STATUS=1; fi
if ((MD_STOP_BAD)); then echo "FAIL: markdns did not stop on SIGTERM"; STATUS=1; fi
for f in "${FAILED[@]}"; do echo "FAIL: $f"; STATUS=1; done
awk -F'\t' '$2 + 0 > 1 { printf "WARN: %s lost %.2f%% of its queries (median)\n", $1, $2 }' <<<"$MEDIANS"
echo "load avg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ratio markdns/dnsmasq-conntrack: $(ratio "$Q_MD" "$Q_DM")  markdns/upstream: $(ratio "$Q_MD" "$Q_UP")$( ((CEILING)) && echo "  ceiling/upstream: $(ratio "$Q_CE" "$Q_UP")  markdns/ceiling: $(ratio "$Q_MD" "$Q_CE")")"
exit "$STATUS"
