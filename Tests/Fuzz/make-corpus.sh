#!/usr/bin/env bash
# Regenerates the seed corpus (Tests/Fuzz/corpus) from real traffic: dig queries and dnsmasq
# answers, recorded by record.py in a throwaway network namespace (loopback only). Root only.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/corpus"
ns="md-corpus-$$"
mkdir -p "$out"
ip netns add "$ns"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; ip netns del "$ns"; }
trap cleanup EXIT
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" dnsmasq --keep-in-foreground --no-resolv --no-hosts --port=5353 \
    --listen-address=127.0.0.1 --bind-interfaces --pid-file= --user=root \
    --auth-server=ns.lab,lo --auth-zone=lab --auth-soa=2026112301,admin.lab,1200,180,1209600,600 \
    --host-record=www.lab,192.0.2.10,2001:db8::10 --host-record=ns.lab,192.0.2.53 \
    --host-record=portal.example,10.0.0.1 --host-record=ads.example,192.0.2.66 \
    --cname=alias.lab,www.lab --mx-host=lab,mail.lab,10 --host-record=mail.lab,192.0.2.25 \
    --srv-host=_dns._udp.lab,ns.lab,53 --txt-record=lab,"v=spf1 -all","second string" \
    --ptr-record=10.2.0.192.in-addr.arpa,www.lab \
    --caa-record=lab,0,issue,ca.example 2>/dev/null &
pids+=($!)
ip netns exec "$ns" python3 "$here/record.py" 53 5353 "$out" &
pids+=($!)
sleep 1
q() { ip netns exec "$ns" dig @127.0.0.1 +tries=1 +time=2 "$@" >/dev/null || true; }
q www.lab A; q www.lab AAAA +dnssec; q WwW.LaB A +noedns; q alias.lab A +bufsize=512
q lab MX; q lab TXT +nsid; q lab SOA +cookie; q lab NS; q lab ANY; q lab CAA
q _dns._udp.lab SRV; q -x 192.0.2.10; q nothere.lab A; q nothere.lab AAAA +dnssec +cd
q www.lab A +subnet=192.0.2.0/24; q portal.example A; q ads.example AAAA; q sub.ads.example A
q www.lab TYPE65; q www.lab A +norecurse +adflag; q www.lab A +opcode=2 +noedns
q "$(printf 'a%.0s' {1..63}).lab" A; q www.lab CH TXT; q . NS
