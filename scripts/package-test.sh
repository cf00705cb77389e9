#!/usr/bin/env bash
# Package test: builds the .deb (scripts/package.sh), installs it with apt into a minimal
# Debian chroot (debootstrap bookworm minbase + systemd, cached in .chroot-cache/), then
#  1. inside a network namespace of its own (loopback only) runs the chroot's
#     /usr/sbin/markdns: --version, check on the shipped config and examples, rules --apply
#     (nft from the package's Depends), and served queries whose upstream flows carry each
#     client's mark (nft rules, a dnsmasq upstream and conntrack -L from the host, in the
#     namespace);
#  2. boots the chroot with systemd-nspawn in that namespace and checks the unit: installed
#     disabled, `systemctl enable --now` starts it as a dynamic user with exactly
#     CAP_NET_ADMIN + CAP_NET_BIND_SERVICE, a query is answered with its upstream flow
#     marked, `systemctl reload` re-reads the policy, `systemctl stop` drains and exits;
#  3. reinstall keeps the edited conffile, `apt-get remove` keeps it, `purge` deletes it.
# Prints start-up time to the first answer, idle RSS and the run time. Cleans up after
# itself (namespace, container, mounts, processes). Skips, loudly, without root or tools.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
START=$(date +%s)
skip() { echo "*** package test SKIPPED: $* ***" >&2; exit 0; }
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }
ok() { echo "   ok: $*"; }
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot, network namespaces, systemd-nspawn)"
for t in debootstrap systemd-nspawn nsenter ip nft conntrack dnsmasq dig dpkg-deb; do
    command -v "$t" >/dev/null || skip "needs $t (scripts/install-deps.sh installs it)"
done

ARCH=$(dpkg --print-architecture)
SUITE=bookworm
# The machine's configured Debian mirror (deb822 or one-line sources), else deb.debian.org.
MIRROR=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ && $2 ~ /debian\/?$/ && !f {print $2; f = 1}')
[ -n "$MIRROR" ] || MIRROR=$(cat /etc/apt/sources.list 2>/dev/null | awk '$1 == "deb" && $3 ~ /^'"$SUITE"'$/ && !f {print $2; f = 1}')
MIRROR=${MIRROR:-http://deb.debian.org/debian}

echo "== package"
DEB=$(scripts/package.sh | tail -1)
[ -f "$DEB" ] || fail "scripts/package.sh made no .deb"
VERSION_LINE=$(sed -n 's/.*static let version = "\(.*\)".*/markdns \1/p' Sources/markdns/Version.swift)

CACHE=.chroot-cache/$SUITE-minbase-systemd-$ARCH.tar
mkdir -p .chroot-cache
if [ ! -f "$CACHE" ]; then
    echo "== debootstrap $SUITE (minbase + systemd) from $MIRROR into $CACHE (cached for later runs)"
    BUILD=$(mktemp -d .chroot-cache/debootstrap.XXXXXX)
    if ! nice -n 15 debootstrap --variant=minbase --include=systemd,systemd-sysv "$SUITE" "$BUILD" "$MIRROR" \
            > "$BUILD.log" 2>&1; then
        tail -20 "$BUILD.log" >&2; rm -rf "$BUILD"; fail "debootstrap failed (log above)"
    fi
    chmod 755 "$BUILD"   # mktemp made it 0700: as the chroot's / it would lock out every non-root user
    tar --numeric-owner -C "$BUILD" -cf "$CACHE.tmp" . && mv "$CACHE.tmp" "$CACHE"
    rm -rf "$BUILD" "$BUILD.log"
fi

WORK=$(mktemp -d "$PWD/.chroot-cache/run.XXXXXX")
ROOT=$WORK/root
NS=mdpkg-$$
NSPAWN_PID=""
cleanup() {
    set +e
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill -TERM "$NSPAWN_PID"   # a booted container shuts down on SIGTERM
        for _ in $(seq 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$NSPAWN_PID" 2>/dev/null
    fi
    if ip netns list 2>/dev/null | grep -w "$NS" >/dev/null; then
        ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null; sleep 0.3
        ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns del "$NS"
    fi
    wait 2>/dev/null
    mountpoint -q "$ROOT/proc" && umount "$ROOT/proc"
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
mkdir "$ROOT"
tar --numeric-owner -C "$ROOT" -xf "$CACHE"
chmod 755 "$ROOT"   # the dynamic user must be able to reach / (an older cache may record 0700)

# Runs a command in the (not booted) chroot with nspawn's mounts, on the host's network.
# (nspawn 252 warns at exit, harmlessly, that it will not remove its propagation directory.)
in_chroot() {
    systemd-nspawn -q -D "$ROOT" --register=no --keep-unit --resolv-conf=copy-host --pipe "$@" \
        2> >(grep -v 'nspawn/propagate' >&2)
}

echo "== apt-get install ./$(basename "$DEB") in the chroot (no recommends: only Depends come in)"
cp "$DEB" "$ROOT/var/tmp/"   # nspawn mounts a tmpfs on /tmp
in_chroot dpkg-query -W -f '${Package}\n' | sort > "$WORK/before"
in_chroot env DEBIAN_FRONTEND=noninteractive sh -c "apt-get update -qq && \
    apt-get install -y -qq --no-install-recommends /var/tmp/$(basename "$DEB")" > "$WORK/apt.log" 2>&1 \
    || { cat "$WORK/apt.log" >&2; fail "apt-get install failed"; }
in_chroot dpkg-query -W -f '${Package}\n' | sort > "$WORK/after"
NEW=$(comm -13 "$WORK/before" "$WORK/after" | tr '\n' ' ')
CLOSURE=$(in_chroot apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances markdns | grep -v '^ ' | sed 's/:.*//' | sort -u)
for p in $NEW; do
    grep -qx "$p" <<<"$CLOSURE" || fail "$p was installed but is not in markdns's Depends closure"
done
ok "installed: $NEW(all from Depends)"
in_chroot dpkg-query -W -f '${Conffiles}\n' markdns | grep '/etc/markdns/markdns.toml' >/dev/null || fail "markdns.toml is not a conffile"
in_chroot sh -c 'ldd /usr/sbin/markdns' > "$WORK/ldd" || fail "ldd failed: $(cat "$WORK/ldd")"
! grep -q 'not found' "$WORK/ldd" || fail "libraries missing in the chroot: $(grep 'not found' "$WORK/ldd")"
BIN_SIZE=$(stat -c %s "$ROOT/usr/sbin/markdns")
ok "every linked library is present ($(grep -c '=>' "$WORK/ldd") via Depends)"
for f in /usr/sbin/markdns /lib/systemd/system/markdns.service /usr/share/man/man8/markdns.8.gz \
         /usr/share/doc/markdns/copyright /usr/share/doc/markdns/changelog.Debian.gz \
         /usr/share/doc/markdns/examples/nftables.conf; do
    [ -s "$ROOT$f" ] || fail "$f missing from the package"
done
# The man page comes from the parser: every long option of `serve --help` is in it.
"$ROOT/usr/sbin/markdns" serve --help | grep -o -- '--[a-z][a-z-]*' | sort -u > "$WORK/options"
zcat "$ROOT/usr/share/man/man8/markdns.8.gz" > "$WORK/man"
while read -r o; do grep -q -- "Fl ${o#-}" "$WORK/man" || fail "man page lacks $o"; done < "$WORK/options"
grep -q '^\.It Em reload' "$WORK/man" || fail "man page lacks the reload subcommand"
ok "man page lists all $(wc -l < "$WORK/options") serve options and every subcommand"

echo "== lab: namespace $NS (loopback only), nft rules, dnsmasq upstream 127.0.0.2#5353"
ip netns add "$NS"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
mount -t proc proc "$ROOT/proc"
in_root() { ip netns exec "$NS" chroot "$ROOT" "$@"; }

V=$(in_root /usr/sbin/markdns --version)
[[ "$V" == "$VERSION_LINE (commit "* && "$V" != *unknown* ]] || fail "--version says '$V'"
[ "$(in_root /usr/sbin/markdns version)" = "$V" ] || fail "markdns version differs from --version"
ok "$V"
for f in "$ROOT"/etc/markdns/markdns.toml "$ROOT"/usr/share/doc/markdns/examples/*.toml; do
    f=${f#"$ROOT"}
    in_root /usr/sbin/markdns check --config "$f" > /dev/null || fail "check --config $f"
done
ok "check: the shipped config and every example"
in_root /usr/sbin/markdns rules --config /etc/markdns/markdns.toml --apply > /dev/null || fail "rules --apply (nft)"
in_ns nft list table inet markdns | grep 'ct mark set meta mark' >/dev/null || fail "rules --apply loaded no rules"
ok "rules --apply loaded table inet markdns with the chroot's nft"

in_ns nft -f conf/nftables.conf
in_ns nft flush map inet markdns client_mark4
in_ns nft add element inet markdns client_mark4 '{ 127.0.0.10 : 0x10, 127.0.0.11 : 0x20 }'
in_ns dnsmasq --keep-in-foreground --no-resolv --no-hosts --conf-file=/dev/null --pid-file= --user=root \
    --bind-interfaces --listen-address=127.0.0.2 --port=5353 --address=/example.test/192.0.2.7 \
    --cache-size=0 --log-facility="$WORK/dnsmasq.log" &
# The shipped config, edited as an admin would: the lab's listen address and upstream.
CONF=$ROOT/etc/markdns/markdns.toml
sed -i 's|^listen = \["192.168.1.1:53"\]|listen = ["127.0.0.1:53"]|; s|^servers = \[.*\]|servers = ["127.0.0.2:5353"]|' "$CONF"
grep -q '^listen = \["127.0.0.1:53"\]' "$CONF" && grep -q '^servers = \["127.0.0.2:5353"\]' "$CONF" \
    || fail "could not point the shipped config at the lab"
for _ in $(seq 50); do in_ns dig +short +time=1 +tries=1 -p 5353 @127.0.0.2 up.example.test | grep 192.0.2.7 >/dev/null && break; sleep 0.1; done

# Answered, and each upstream flow carries its client's mark: 0x10, 0x20 and none.
query_marks() {   # $1: label; expects markdns at 127.0.0.1:53
    in_ns conntrack -F 2>/dev/null
    for c in 10 11 12; do
        a=$(in_ns dig +short +time=2 +tries=1 -b "127.0.0.$c" @127.0.0.1 "$1-$c.example.test")
        [ "$a" = 192.0.2.7 ] || fail "$1: client 127.0.0.$c got '$a'"
    done
    flows=$(in_ns conntrack -L -p udp --dport 5353 2>/dev/null)
    for m in 16 32 0; do
        n=$(grep -c " mark=$m " <<<"$flows" || true)
        [ "$n" = 1 ] || fail "$1: $n upstream flows with mark=$m (want 1):"$'\n'"$flows"
    done
    ok "$1: 3 clients answered; upstream flows marked 0x10, 0x20 and unmarked, one each"
}

echo "== the chroot's /usr/sbin/markdns in the namespace"
T0=$(date +%s%N)
ip netns exec "$NS" chroot "$ROOT" /usr/sbin/markdns serve --config /etc/markdns/markdns.toml 2> "$WORK/markdns.log" &
MD=$!
until in_ns dig +short +time=1 +tries=1 @127.0.0.1 first.example.test 2>/dev/null | grep 192.0.2.7 >/dev/null; do
    kill -0 "$MD" 2>/dev/null || fail "markdns exited: $(cat "$WORK/markdns.log")"
    [ $(( ($(date +%s%N) - T0) / 1000000 )) -lt 10000 ] || fail "no answer within 10 s"
    sleep 0.01
done
STARTUP_MS=$(( ($(date +%s%N) - T0) / 1000000 ))
ok "first answer $STARTUP_MS ms after start"
query_marks chroot
[ "$(in_ns dig +short @127.0.0.1 router.lan)" = 192.168.1.1 ] || fail "router.lan (local record) not answered"
sleep 2
RSS=$(awk '/VmRSS/ {print $2 " " $3}' "/proc/$MD/status")
ok "idle RSS $RSS (threads: $(ls "/proc/$MD/task" | wc -l))"
kill -TERM "$MD"; wait "$MD" || fail "markdns did not exit 0 on SIGTERM: $(cat "$WORK/markdns.log")"
grep -q 'stats:' "$WORK/markdns.log" || fail "no stats line at exit"
umount "$ROOT/proc"

echo "== systemd-nspawn --boot in the namespace: the unit"
# CAP_NET_ADMIN: nspawn withholds it unless it makes the network itself; the namespace
# is this test's own, so the container's root (and the unit) may administer only that.
systemd-nspawn -q -D "$ROOT" --boot --register=no --keep-unit --network-namespace-path="/run/netns/$NS" \
    --capability=CAP_NET_ADMIN --console=read-only < /dev/null > "$WORK/boot.log" 2>&1 &
NSPAWN_PID=$!
LEADER=""
for _ in $(seq 100); do   # the container's init
    for p in /proc/[0-9]*; do   # a child of nspawn that is PID 1 in its own PID namespace
        [ "$(awk '/^PPid:/ {print $2}' "$p/status" 2>/dev/null)" = "$NSPAWN_PID" ] || continue
        [ "$(awk '/^NSpid:/ {print $NF}' "$p/status" 2>/dev/null)" = 1 ] && LEADER=${p#/proc/} && break
    done
    [ -n "$LEADER" ] && break
    kill -0 "$NSPAWN_PID" 2>/dev/null || fail "systemd-nspawn exited: $(cat "$WORK/boot.log")"
    sleep 0.2
done
[ -n "$LEADER" ] || fail "no container init found"
in_ct() { nsenter --target "$LEADER" --all "$@"; }
for _ in $(seq 150); do
    s=$(in_ct systemctl is-system-running 2>/dev/null || true)
    [ "$s" = running ] || [ "$s" = degraded ] && break
    sleep 0.2
done
[ "$s" = running ] || [ "$s" = degraded ] || fail "container did not boot ($s): $(tail -20 "$WORK/boot.log")"
ok "booted ($s)"
[ "$(in_ct systemctl is-enabled markdns || true)" = disabled ] || fail "markdns.service is enabled after install"
[ "$(in_ct systemctl is-active markdns || true)" = inactive ] || fail "markdns.service runs after install"
ok "installed disabled and not running"
in_ct systemctl enable --now markdns > /dev/null 2>&1 || fail "systemctl enable --now: $(in_ct journalctl -u markdns --no-pager | tail)"
for _ in $(seq 100); do in_ns dig +short +time=1 +tries=1 @127.0.0.1 unit.example.test 2>/dev/null | grep 192.0.2.7 >/dev/null && break; sleep 0.1; done
[ "$(in_ct systemctl is-active markdns)" = active ] || fail "unit not active: $(in_ct journalctl -u markdns --no-pager | tail)"
MAIN=$(in_ct systemctl show -p MainPID --value markdns)
STATUS=$(in_ct cat "/proc/$MAIN/status")
UID_=$(awk '/^Uid:/ {print $2}' <<<"$STATUS")
[ "$UID_" -ge 61184 ] && [ "$UID_" -le 65519 ] || fail "runs as uid $UID_, not a dynamic user"
for set in CapEff CapPrm CapBnd CapAmb; do
    v=$(awk -v s="$set:" '$1 == s {print $2}' <<<"$STATUS")
    [ "$v" = 0000000000001400 ] || fail "$set is $v, want 0000000000001400 (CAP_NET_ADMIN + CAP_NET_BIND_SERVICE)"
done
ok "active, uid $UID_ (dynamic), CapEff/CapPrm/CapBnd/CapAmb = CAP_NET_ADMIN + CAP_NET_BIND_SERVICE only"
query_marks unit

cat >> "$CONF" <<'EOF'

[[mark]]
value = 0x10
name = "ten"
action = "refuse"
EOF
in_ct systemctl reload markdns || fail "systemctl reload failed: $(in_ct journalctl -u markdns --no-pager | tail)"
for _ in $(seq 50); do in_ct journalctl -u markdns --no-pager | grep 'reloaded policy /etc/markdns/markdns.toml: 1 marks' >/dev/null && break; sleep 0.1; done
in_ct journalctl -u markdns --no-pager | grep 'reloaded policy /etc/markdns/markdns.toml: 1 marks' >/dev/null \
    || fail "no reload in the journal: $(in_ct journalctl -u markdns --no-pager | tail)"
in_ns dig +time=2 +tries=1 -b 127.0.0.10 @127.0.0.1 after-reload.example.test | grep 'status: REFUSED' >/dev/null \
    || fail "mark 0x10 not refused after the reload"
[ "$(in_ns dig +short -b 127.0.0.11 @127.0.0.1 after-reload.example.test)" = 192.0.2.7 ] || fail "mark 0x20 not answered after the reload"
ok "systemctl reload: journal 'reloaded policy', mark 0x10 now REFUSED, 0x20 still answered"
in_ct systemctl stop markdns
in_ct journalctl -u markdns --no-pager | grep 'stats:' >/dev/null || fail "no stats line after systemctl stop"
ok "systemctl stop: drained and exited"
kill -TERM "$NSPAWN_PID"
for _ in $(seq 150); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.2; done
kill -0 "$NSPAWN_PID" 2>/dev/null && fail "container did not shut down"
wait "$NSPAWN_PID" 2>/dev/null || true
NSPAWN_PID=""

echo "== reinstall, remove, purge"
in_chroot dpkg -i "/var/tmp/$(basename "$DEB")" > /dev/null || fail "reinstall failed"
grep -q 'name = "ten"' "$CONF" || fail "reinstall replaced the edited conffile"
in_chroot env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq markdns > /dev/null || fail "apt-get remove"
[ ! -e "$ROOT/usr/sbin/markdns" ] && grep -q 'name = "ten"' "$CONF" || fail "remove: binary left or conffile gone"
in_chroot env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq markdns > /dev/null || fail "apt-get purge"
[ ! -e "$CONF" ] || fail "purge left $CONF"
ok "reinstall keeps the edited conffile; remove keeps it; purge deletes it"

echo "== package test passed: $(basename "$DEB") $(stat -c %s "$DEB") bytes, binary $BIN_SIZE bytes; first answer ${STARTUP_MS} ms; idle RSS $RSS; $(( $(date +%s) - START )) s"
