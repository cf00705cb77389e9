#!/usr/bin/env bash
# markdns lab demo: two clients with different connmarks and one without query markdns;
# the conntrack table then shows each client's mark on the upstream flow its query caused.
#
# Everything happens in a private network namespace on loopback addresses; nothing leaves
# the machine. Run as root:  sudo scripts/demo.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates a network namespace)" >&2; exit 1; }

scripts/install-deps.sh
export PATH="/opt/swift/usr/bin:$PATH"
echo "== building markdns (swift build)"
swift build --product markdns 2>&1 | tail -1
BIN="$(swift build --product markdns --show-bin-path)/markdns"

NS="markdns-demo-$$"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    # Everything started inside the namespace, whatever started it.
    if ip netns list 2>/dev/null | grep -w "$NS" >/dev/null; then
        ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true
        sleep 0.3
        ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    fi
    wait 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
in_ns() { ip netns exec "$NS" "$@"; }

echo "== lab: namespace $NS, loopback only"
ip netns add "$NS"
in_ns ip link set lo up
echo "== loading conf/nftables.conf (restore / mark by client / save / save in output)"
in_ns nft -f conf/nftables.conf
in_ns nft flush map inet markdns client_mark4
in_ns nft add element inet markdns client_mark4 '{ 127.0.0.10 : 0x10, 127.0.0.11 : 0x20 }'
echo "   client 127.0.0.10 -> mark 0x10 (16), client 127.0.0.11 -> mark 0x20 (32), client 127.0.0.12 -> no mark"

echo "== upstream: dnsmasq at 127.0.0.2#5353 answering *.example.test"
ip netns exec "$NS" dnsmasq --keep-in-foreground --no-resolv --no-hosts --conf-file=/dev/null --pid-file= --user=root \
    --bind-interfaces --listen-address=127.0.0.2 --port=5353 --address=/example.test/192.0.2.7 \
    --log-facility="$WORK/dnsmasq.log" &
PIDS+=($!)
echo "== markdns at 127.0.0.1:53 -> 127.0.0.2:5353"
ip netns exec "$NS" "$BIN" --listen 127.0.0.1:53 --upstream 127.0.0.2:5353 2>"$WORK/markdns.log" &
PIDS+=($!)
for _ in $(seq 50); do
    in_ns dig +short +time=1 +tries=1 @127.0.0.1 ready.example.test 2>/dev/null | grep 192.0.2.7 >/dev/null && break
    sleep 0.2
done
in_ns conntrack -F 2>/dev/null

echo "== queries"
for c in 127.0.0.10 127.0.0.11 127.0.0.12; do
    for proto in udp tcp; do
        flag=+notcp; [ "$proto" = tcp ] && flag=+tcp
        ans=$(in_ns dig +short "$flag" -b "$c" @127.0.0.1 "host-${c##*.}.example.test")
        printf '   from %-11s over %s: host-%s.example.test -> %s\n' "$c" "$proto" "${c##*.}" "$ans"
    done
done
echo
echo "== conntrack: client flows to markdns (mark set by the rules)"
in_ns conntrack -L 2>/dev/null | grep 'dport=53 ' | grep -v 'dport=5353' | sort || true
echo
echo "== conntrack: markdns's upstream flows (mark carried by markdns via SO_MARK)"
in_ns conntrack -L 2>/dev/null | grep 'dport=5353 ' | sort || true
echo
for m in 16 32 0; do
    n=$(in_ns conntrack -L 2>/dev/null | grep 'dport=5353 ' | grep -c " mark=$m " || true)
    echo "   upstream flows with mark=$m: $n"
done
kill "${PIDS[1]}" 2>/dev/null; wait "${PIDS[1]}" 2>/dev/null || true
echo
echo "== markdns log"
sed 's/^/   /' "$WORK/markdns.log"
