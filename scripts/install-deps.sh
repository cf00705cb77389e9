#!/usr/bin/env bash
# Installs the Debian packages markdns needs to build, test, demo and benchmark, only
# those that are missing. Swift itself is expected at /opt/swift or on PATH.
set -euo pipefail
pkgs=(pkg-config libnetfilter-conntrack-dev libmnl-dev libnftnl-dev libsqlite3-dev iproute2 nftables iptables conntrack
      dnsmasq-base dnsutils dnsperf python3 util-linux procps curl
      dpkg-dev binutils debootstrap systemd-container
      unbound openssl dnsdist)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
