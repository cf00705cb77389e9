# bench/lab.sh — sourced by bench/profile.sh, bench/cache-rss.sh and bench/dot.sh: a private network
# namespace on loopback only, conf/nftables.conf with 127.0.0.10 marked 0x10, a dnsmasq
# upstream on 127.0.0.2:5353 answering *.bench.test itself, and helpers. Run as root.
#   lab_start NAME         namespace NAME-$$, rules, upstream; cleanup on exit
#   nsx CMD...             run in the namespace
#   lab_bg VAR CMD...      start CMD in the namespace in the background, its PID in VAR
#   lab_stop PID           SIGTERM a process lab_bg started, wait for it, forget it
#   lab_wait_answer ADDR   until ADDR:53 answers a query from 127.0.0.10 (60 s)
#   lab_queries N FILE     N unique names nNNNNNN.bench.test A
#   lab_markdns_bin        sets MARKDNS_BIN (default .build-release/release/markdns, built)

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="/opt/swift/usr/bin:$PATH"
LAB_PIDS=()

lab_cleanup() {
    set +e
    local pid
    for pid in "${LAB_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${LAB_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    ip netns delete "$NS" 2>/dev/null
    rm -rf "$WORK"
}

nsx() { ip netns exec "$NS" "$@"; }

lab_bg() {
    local var=$1; shift
    ip netns exec "$NS" "$@" &
    LAB_PIDS+=($!)
    printf -v "$var" '%s' "$!"
}

lab_stop() {
    local pid keep=()
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    for pid in "${LAB_PIDS[@]}"; do [[ $pid == "$1" ]] || keep+=("$pid"); done
    LAB_PIDS=("${keep[@]}")
}

lab_start() {
    [[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 2; }
    local cmd
    for cmd in dnsperf dnsmasq nft; do
        command -v "$cmd" >/dev/null || { echo "missing: $cmd" >&2; exit 2; }
    done
    NS=$1-$$
    WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    trap lab_cleanup EXIT
    ip netns add "$NS"
    nsx ip link set lo up
    nsx nft -f "$REPO/conf/nftables.conf"
    nsx nft add element inet markdns client_mark4 '{ 127.0.0.10 : 0x10 }'
    local upstream
    lab_bg upstream dnsmasq -C /dev/null --keep-in-foreground --pid-file= --no-resolv --no-hosts \
        --bind-interfaces --listen-address=127.0.0.2 --port=5353 --cache-size=0 --local-ttl=300 \
        --address=/bench.test/192.0.2.1 2>"$WORK/upstream.log"
}

lab_wait_answer() {
    local _
    for _ in $(seq 120); do
        printf 'probe.bench.test A\n' | nsx dnsperf -s "$1" -a 127.0.0.10 -n 1 -t 1 2>&1 \
            | grep 'Queries completed: *1 ' >/dev/null && return 0
        sleep 0.5
    done
    echo "no answer from $1" >&2
    exit 1
}

lab_queries() {
    awk -v n="$1" 'BEGIN { for (i = 1; i <= n; i++) printf "n%06d.bench.test A\n", i }' >"$2"
}

lab_markdns_bin() {
    if [[ -z ${MARKDNS_BIN:-} ]]; then
        MARKDNS_BIN=$REPO/.build-release/release/markdns
        (cd "$REPO" && swift build -c release --product markdns --scratch-path .build-release) >&2
    fi
}
