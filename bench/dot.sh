#!/usr/bin/env bash
# bench/dot.sh — forwarding over DNS over TLS: markdns vs Unbound vs dnsdist, cache off.
#
# Everything runs in the private namespace of bench/lab.sh (loopback addresses only, its
# conf/nftables.conf marks 127.0.0.10 0x10; this script adds 127.0.0.11 0x20). Run as root.
#
#   127.0.0.5:853   the DoT upstream: unbound (tls-port 853) answering *.bench.test from a
#                   local zone; its certificate (DNS:dot.bench.test) from a CA this script
#                   makes with openssl in the lab's temp directory
#   127.0.0.1:53    markdns --upstream tls://127.0.0.5#dot.bench.test --tls-ca CA --cache-size 0
#   127.0.0.3:53    unbound as a forwarder: forward-tls-upstream, caches at their minimum,
#                   outgoing-interface 127.0.0.3
#   127.0.0.4:53    dnsdist 1.7, newServer{tls="openssl", subjectName, caStore}, no packet
#                   cache, source 127.0.0.4
#   127.0.0.10/11   clients (dnsperf -a), marked 0x10 / 0x20 by nft, asking aRNNNNNNN /
#                   bRNNNNNNN.bench.test (R = round: every name is new to every forwarder)
#
# Each round runs dnsperf against the DoT server directly (dnsperf -m dot, a yardstick),
# markdns, unbound and dnsdist in turn, one dnsperf per client address at the same time
# (half the clients and outstanding queries each; q/s summed). After the markdns run the
# TCP flows to :853 from markdns's address are listed from conntrack and counted by mark.
# nft counters on the OUTPUT hook count every packet to the DoT server's address that is
# not TCP to 853 (plain DNS would show there: must be 0) and every packet of markdns's
# connections to :853 without a client's mark (must be 0).
#
# Environment:
#   DURATION=10 ROUNDS=3 CLIENTS=10 OUTSTANDING=200   as bench/forward.sh
#   RATE=0        total q/s (dnsperf -Q, split over the two clients); 0 = as fast as answered
#   CPU=0         1 = CPU µs per answered query of each forwarder (utime+stime of the
#                 process from /proc/PID/stat around each run); meant with RATE:
#                 RATE=4000 CPU=1 bench/dot.sh
#   QUERIES=300000  names per client and round (a run that sends more repeats names)
#   MARKDNS_BIN   default <repo>/.build-release/release/markdns (built when unset)
#   MARKDNS_ARGS  extra markdns arguments
#   UNBOUND_THREADS=2  num-threads of the unbound forwarder (markdns: one loop per core)
#   KEEP=0        1 = print the servers' logs' last lines at the end
#
# Exit status: 0 when every run was answered and markdns's upstream traffic was all DoT
# with a client's mark; 1 otherwise; 2 on a setup error.

set -euo pipefail
# shellcheck source=bench/lab.sh
source "$(dirname "${BASH_SOURCE[0]}")/lab.sh"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-10}
OUTSTANDING=${OUTSTANDING:-200}
RATE=${RATE:-0}
CPU=${CPU:-0}
QUERIES=${QUERIES:-300000}
MARKDNS_ARGS=${MARKDNS_ARGS:-}
UNBOUND_THREADS=${UNBOUND_THREADS:-2}
KEEP=${KEEP:-0}

DOT_ADDR=127.0.0.5 DOT_NAME=dot.bench.test
MD_ADDR=127.0.0.1 UB_ADDR=127.0.0.3 DD_ADDR=127.0.0.4
CLIENT_ADDRS=(127.0.0.10 127.0.0.11)
CLIENT_LETTERS=(a b)
TARGETS=(direct markdns unbound dnsdist)

die() { echo "dot.sh: $*" >&2; exit 2; }
for c in unbound dnsdist openssl conntrack; do
    command -v "$c" >/dev/null || die "missing: $c (scripts/install-deps.sh installs it)"
done
for v in DURATION ROUNDS CLIENTS OUTSTANDING RATE QUERIES; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number"
done

lab_markdns_bin
[[ -x $MARKDNS_BIN ]] || die "MARKDNS_BIN=$MARKDNS_BIN is not executable"
lab_start dotbench
nsx nft add element inet markdns client_mark4 '{ 127.0.0.11 : 0x20 }'
nsx nft -f - <<EOF
table inet dotreferee {
    counter plain {}
    counter marked {}
    counter unmarked {}
    chain out {
        type filter hook output priority 10; policy accept;
        ip daddr $DOT_ADDR tcp dport != 853 counter name plain
        ip daddr $DOT_ADDR meta l4proto != tcp counter name plain
        ip saddr $MD_ADDR ip daddr $DOT_ADDR tcp dport 853 meta mark { 0x10, 0x20 } counter name marked
        ip saddr $MD_ADDR ip daddr $DOT_ADDR tcp dport 853 meta mark != { 0x10, 0x20 } counter name unmarked
    }
}
EOF

# ---------------------------------------------------------------- PKI, servers
cat >"$WORK/ext.cnf" <<EOF
subjectAltName=DNS:$DOT_NAME,IP:$DOT_ADDR
EOF
{
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/ca.key" \
        -out "$WORK/ca.pem" -days 2 -subj "/CN=markdns bench CA"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/server.key" \
        -out "$WORK/server.csr" -subj "/CN=$DOT_NAME"
    openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
        -out "$WORK/server.pem" -days 2 -extfile "$WORK/ext.cnf"
} >"$WORK/openssl.log" 2>&1 || { cat "$WORK/openssl.log" >&2; die "openssl failed"; }
chmod 644 "$WORK"/*.key

unbound_common() {   # DIR: the settings both unbound instances share
    cat <<EOF
    verbosity: 1
    chroot: ""
    username: ""
    directory: "$1"
    pidfile: ""
    use-syslog: no
    logfile: ""
    do-daemonize: no
    access-control: 0.0.0.0/0 allow
    module-config: "iterator"
EOF
}
cat >"$WORK/dot-server.conf" <<EOF
server:
$(unbound_common "$WORK")
    interface: $DOT_ADDR@853
    tls-port: 853
    tls-service-key: "$WORK/server.key"
    tls-service-pem: "$WORK/server.pem"
    num-threads: 1
    incoming-num-tcp: 1000
    local-zone: "bench.test." redirect
    local-data: "bench.test. 300 A 192.0.2.1"
remote-control:
    control-enable: no
EOF
cat >"$WORK/unbound-fwd.conf" <<EOF
server:
$(unbound_common "$WORK")
    interface: $UB_ADDR@53
    outgoing-interface: $UB_ADDR
    num-threads: $UNBOUND_THREADS
    so-reuseport: yes
    do-not-query-localhost: no
    local-zone: "test." nodefault
    msg-cache-size: 0
    rrset-cache-size: 0
    key-cache-size: 0
    neg-cache-size: 0
    prefetch: no
    tls-cert-bundle: "$WORK/ca.pem"
forward-zone:
    name: "."
    forward-addr: $DOT_ADDR@853#$DOT_NAME
    forward-tls-upstream: yes
remote-control:
    control-enable: no
EOF
cat >"$WORK/dnsdist.conf" <<EOF
setSecurityPollSuffix('')
setLocal('$DD_ADDR:53')
newServer({address='$DOT_ADDR:853', tls='openssl', subjectName='$DOT_NAME', caStore='$WORK/ca.pem',
           validateCertificates=true, source='$DD_ADDR', checkName='probe.bench.test'})
EOF

wait_listen() {   # ADDR PORT PID LOG
    local _
    for _ in $(seq 60); do
        kill -0 "$3" 2>/dev/null || { cat "$4" >&2; die "server for $1:$2 exited"; }
        nsx ss -Hltn "src $1 sport = :$2" | grep LISTEN >/dev/null && return 0
        sleep 0.25
    done
    cat "$4" >&2; die "nothing listens on $1:$2"
}
lab_bg PID_dotserver unbound -d -c "$WORK/dot-server.conf" >"$WORK/dot-server.log" 2>&1
wait_listen "$DOT_ADDR" 853 "$PID_dotserver" "$WORK/dot-server.log"
# shellcheck disable=SC2086
lab_bg PID_markdns "$MARKDNS_BIN" --listen "$MD_ADDR:53" --upstream "tls://$DOT_ADDR#$DOT_NAME" \
    --tls-ca "$WORK/ca.pem" --cache-size 0 $MARKDNS_ARGS >"$WORK/markdns.log" 2>&1
lab_bg PID_unbound unbound -d -c "$WORK/unbound-fwd.conf" >"$WORK/unbound.log" 2>&1
lab_bg PID_dnsdist dnsdist --supervised --disable-syslog -C "$WORK/dnsdist.conf" >"$WORK/dnsdist.log" 2>&1
for a in "$MD_ADDR" "$UB_ADDR" "$DD_ADDR"; do lab_wait_answer "$a"; done

# ---------------------------------------------------------------- runs
for r in $(seq "$ROUNDS"); do
    for l in "${CLIENT_LETTERS[@]}"; do
        awk -v n="$QUERIES" -v p="$l$r" 'BEGIN { for (i = 1; i <= n; i++) printf "%s%07d.bench.test A\n", p, i }' \
            >"$WORK/queries-$l$r.txt"
    done
done

cpu_ticks() {   # PID: utime + stime of the process, all threads
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    st=${st##*) }
    read -r -a st <<<"$st"
    echo $((st[11] + st[12]))
}
CLK_TCK=$(getconf CLK_TCK)
ctx_switches() {   # PID: voluntary + involuntary context switches of all its threads
    cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches:/ { s += $2 } END { print s + 0 }'
}
counter() { nsx nft list counter inet dotreferee "$1" | awk '/packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") print $(i + 1) }'; }

RESULTS=$WORK/results.tsv
: >"$RESULTS"
FAILED=()
CONN_LINES=()
run() {   # ROUND TARGET
    local round=$1 target=$2 addr pid mode=() n=${#CLIENT_ADDRS[@]} i pids=() rate=() c0 c1 s0 s1 out
    case $target in
        direct)  addr=$DOT_ADDR; pid=$PID_dotserver; mode=(-m dot -p 853) ;;
        markdns) addr=$MD_ADDR; pid=$PID_markdns ;;
        unbound) addr=$UB_ADDR; pid=$PID_unbound ;;
        dnsdist) addr=$DD_ADDR; pid=$PID_dnsdist ;;
    esac
    ((RATE > 0)) && rate=(-Q $(( (RATE + n - 1) / n )))
    out=$WORK/dnsperf-$target-$round.txt
    nsx conntrack -F >/dev/null 2>&1 || true
    nsx nft reset counters table inet dotreferee >/dev/null
    c0=$(cpu_ticks "$pid"); s0=$(ctx_switches "$pid")
    for i in "${!CLIENT_ADDRS[@]}"; do
        timeout $((DURATION + 60)) ip netns exec "$NS" dnsperf -s "$addr" "${mode[@]}" -a "${CLIENT_ADDRS[$i]}" \
            -d "$WORK/queries-${CLIENT_LETTERS[$i]}$round.txt" -c $(( (CLIENTS + n - 1) / n )) \
            -q $(( (OUTSTANDING + n - 1) / n )) -l "$DURATION" "${rate[@]}" >"$out.$i" 2>&1 &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || FAILED+=("round $round: dnsperf ${CLIENT_ADDRS[$i]} against $target exited with $?")
    done
    c1=$(cpu_ticks "$pid"); s1=$(ctx_switches "$pid")
    cat "$out".* >"$out"
    awk -v r="$round" -v t="$target" -v cpu=$((c1 - c0)) -v cs=$((s1 - s0)) -v tck="$CLK_TCK" '
        /Queries sent:/ { sent += $3 } /Queries completed:/ { comp += $3 } /Queries lost:/ { lost += $3 }
        /Queries per second:/ { qps += $4 } /Average Latency \(s\):/ { avg += $4; navg++ }
        END { printf "%s\t%s\t%d\t%d\t%d\t%.3f\t%.1f\t%s\t%s\t%s\n", r, t, sent, comp, lost, sent ? 100 * lost / sent : 100,
                     qps, navg ? sprintf("%.3f", avg / navg * 1000) : "-", comp ? sprintf("%.1f", cpu * 1e6 / tck / comp) : "-",
                     comp ? sprintf("%.2f", cs / comp) : "-" }' \
        "$out" >>"$RESULTS"
    if [[ $target == markdns ]]; then
        local plain marked unmarked
        plain=$(counter plain); marked=$(counter marked); unmarked=$(counter unmarked)
        nsx conntrack -L -p tcp --dport 853 2>/dev/null >"$WORK/ct-$round.txt" || true
        echo "  conntrack -L -p tcp --dport 853 after markdns round $round (markdns's flows, src $MD_ADDR):"
        awk -v s="$MD_ADDR" '$0 ~ "src=" s " dst=" { print "    " $0 }' "$WORK/ct-$round.txt"
        CONN_LINES+=("$(awk -v s="$MD_ADDR" -v r="$round" -v pl="$plain" -v mk="$marked" -v um="$unmarked" '
            $0 ~ "src=" s " dst=" { m = "0"; for (i = 1; i <= NF; i++) if ($i ~ /^mark=/) m = substr($i, 6)
                                    n[m]++; if ($4 == "ESTABLISHED") e[m]++ }
            END { printf "round %s connections per mark (all / established):", r
                  for (k in n) printf " mark %#x: %d/%d", k, n[k], e[k] + 0
                  printf "; packets to :853 with a client mark %d, without %d; plain packets to the upstream %d", mk, um, pl }' \
            "$WORK/ct-$round.txt")")
        ((plain == 0 && unmarked == 0 && marked > 0)) || FAILED+=("round $round: markdns upstream traffic: $plain plain, $unmarked unmarked, $marked marked packets")
        grep -E "mark=(16|32) " "$WORK/ct-$round.txt" >/dev/null || FAILED+=("round $round: no marked markdns flow to :853 in conntrack")
    fi
}

echo "markdns DNS-over-TLS forwarding benchmark  ($(date -u '+%Y-%m-%d %H:%M:%SZ'))"
echo "host: $(nproc) cpu, kernel $(uname -r), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "markdns: $MARKDNS_BIN ($(date -u -r "$MARKDNS_BIN" '+%Y-%m-%d %H:%M'))" \
     "git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')  $MARKDNS_ARGS"
echo "unbound $(unbound -V | awk 'NR == 1 { print $2 }') (DoT server; forwarder num-threads $UNBOUND_THREADS)" \
     " dnsdist $(dnsdist --version | awk 'NR == 1 { print $2 }')  dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ { print $2 }')"
echo "dnsperf -c $CLIENTS -q $OUTSTANDING -l $DURATION$( ((RATE)) && echo " -Q $RATE") in all, split over -a ${CLIENT_ADDRS[*]}," \
     "new names every round; $ROUNDS round(s)"
echo
HDR='%-5s %-8s %10s %8s %8s %9s %8s %6s\n'
for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS"
    # shellcheck disable=SC2059
    printf "$HDR" rnd target qps lost% avg_ms sent cpu_us cs/q
    for target in "${TARGETS[@]}"; do
        run "$round" "$target"
        tail -n 1 "$RESULTS" | awk -F'\t' -v f="$HDR" '{ printf f, $1, $2, $7, $6, $8, $3, $9, $10 }'
    done
    echo
done

# ---------------------------------------------------------------- summary
echo "markdns upstream connections (conntrack) and traffic (nft counters on OUTPUT):"
printf '  %s\n' "${CONN_LINES[@]}"
echo
lab_stop "$PID_markdns"
grep -o 'stats:.*' "$WORK/markdns.log" | tail -n 1 | sed 's/^/markdns /' || true
LOGPAT='(^|[] :])(warning|error|critical|fatal)[]: ]'
for s in markdns unbound dnsdist dot-server; do
    n=$(grep -v 'stats:' "$WORK/$s.log" | grep -ciE "$LOGPAT" || true)
    if ((n > 0 || KEEP)); then
        echo "$s log: $n warning/error lines, last ones:"
        grep -v 'stats:' "$WORK/$s.log" | grep -iE "$LOGPAT" | tail -n 5 | cut -c1-200 | sed 's/^/  /' || true
    fi
done
echo
echo "medians over $ROUNDS round(s):"
MEDIANS=$(awk -F'\t' '
    function median(list,   n, a, i, j, t) {
        n = split(list, a, " "); if (!n) return "-"
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    { q[$2] = q[$2] " " $7; l[$2] = l[$2] " " $6; m[$2] = m[$2] " " $8; if ($9 != "-") c[$2] = c[$2] " " $9; if ($10 != "-") w[$2] = w[$2] " " $10 }
    END { split("direct markdns unbound dnsdist", o, " ")
          for (k = 1; k <= 4; k++) printf "%s\t%s\t%s\t%s\t%s\t%s\n", o[k], median(q[o[k]]), median(l[o[k]]), median(m[o[k]]), median(c[o[k]]), median(w[o[k]]) }' \
    "$RESULTS")
printf '  %-8s %10s %8s %8s %8s %6s\n' target qps lost% avg_ms cpu_us cs/q
awk -F'\t' '{ printf "  %-8s %10.1f %8.3f %8s %8s %6s\n", $1, $2, $3, $4, $5, $6 }' <<<"$MEDIANS"
awk -F'\t' '{ q[$1] = $2; c[$1] = $5 }
    function rt(a, b) { return (a != "-" && b != "-" && b + 0 > 0) ? sprintf("%.2f", a / b) : "n/a" }
    END { printf "q/s ratios: markdns/unbound %s  markdns/dnsdist %s  markdns/direct %s\n",
                 rt(q["markdns"], q["unbound"]), rt(q["markdns"], q["dnsdist"]), rt(q["markdns"], q["direct"])
          printf "CPU µs per query (median): markdns %s  unbound %s  dnsdist %s  (DoT server, direct run: %s)\n",
                 c["markdns"], c["unbound"], c["dnsdist"], c["direct"] }' <<<"$MEDIANS"
((ROUNDS > 1)) && awk -F'\t' '
    function med(x, n,   i, j, t) { for (i = 2; i <= n; i++) { t = x[i]; for (j = i - 1; j >= 1 && x[j] + 0 > t + 0; j--) x[j + 1] = x[j]; x[j + 1] = t }
                                   return (n % 2) ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2 }
    { q[$1, $2] = $7; n = $1 }
    END { for (r = 1; r <= n; r++) { u[r] = q[r, "unbound"] ? q[r, "markdns"] / q[r, "unbound"] : 0
                                     d[r] = q[r, "dnsdist"] ? q[r, "markdns"] / q[r, "dnsdist"] : 0 }
          printf "median of per-round ratios: markdns/unbound %.2f  markdns/dnsdist %.2f\n", med(u, n), med(d, n) }' "$RESULTS"
awk -F'\t' '$2 == "unbound" && $3 > '"$QUERIES"' * 2 { print "WARN: round " $1 ": unbound was sent more than " '"$QUERIES"' " names per client: some repeated (raise QUERIES)" }' "$RESULTS"
awk -F'\t' '$6 > 1 { printf "WARN: round %s: %s lost %.2f%% of its queries\n", $1, $2, $6 }' "$RESULTS"
echo "load avg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
STATUS=0
for f in "${FAILED[@]}"; do echo "FAIL: $f"; STATUS=1; done
exit "$STATUS"
