#!/usr/bin/env bash
# Builds dist/markdns_<version>_<arch>.deb: one stripped binary with the Swift runtime linked
# in (--static-swift-stdlib), the default config as a conffile, the examples, the systemd
# unit (installed disabled), the man page generated from the argument parser, and Depends
# computed from what the binary links (dpkg-shlibdeps) plus the tools it runs (nft).
#
#   scripts/package.sh            # prints the .deb's path last
#
# Builds in .build-pkg (release) and .build-gm (swift-argument-parser's generate-manual);
# both, like dist/, are ignored by git. Sizes before and after stripping are printed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/opt/swift/usr/bin:$PATH"
NICE=(nice -n "${NICE_LEVEL:-15}")
MAX_STRIPPED=$((25 * 1000 * 1000))   # the budget: 25 MB stripped (20 MB until TLS: README "Binary size")

for tool in swift dpkg-deb dpkg-shlibdeps objdump strip gzip git; do
    command -v "$tool" >/dev/null || { echo "package: $tool not found (apt-get install dpkg-dev binutils)" >&2; exit 1; }
done

UPSTREAM_VERSION=$(sed -n 's/.*static let version = "\(.*\)".*/\1/p' Sources/markdns/Version.swift)
[ -n "$UPSTREAM_VERSION" ] || { echo "package: no version in Sources/markdns/Version.swift" >&2; exit 1; }
REVISION=${DEB_REVISION:-1}
VERSION="$UPSTREAM_VERSION-$REVISION"
ARCH=$(dpkg --print-architecture)
COMMIT=$(git rev-parse --short=12 HEAD)
git diff --quiet HEAD -- Sources Package.swift || COMMIT="$COMMIT-dirty"
DATE_RFC2822=$(git log -1 --format=%cD)
DATE_DAY=$(git log -1 --format=%cs)
MAINTAINER="markdns maintainers <maintainers@users.noreply.h-seed-17b9a886.example>"

# The commit goes into the binary through CBuildInfo's ignored header, only for this build.
HEADER=Sources/CBuildInfo/build_commit.h
trap 'rm -f "$HEADER"' EXIT
printf '#define MARKDNS_BUILD_COMMIT "%s"\n' "$COMMIT" > "$HEADER.tmp"
mv "$HEADER.tmp" "$HEADER"
# SwiftPM tracks the header only once a compile has seen it: make build_info.c recompile.
touch Sources/CBuildInfo/build_info.c

# Linker: no --export-dynamic (the toolchain's static-stdlib-args.lnk exports every symbol
# of our objects: 15,000 dynamic symbols, 1.4 MB) and packed relative relocations (DT_RELR,
# GNU ld; PIE's 1.3 MB of R_X86_64_RELATIVE entries shrink to 11 KB; needs glibc >= 2.36,
# which dpkg-shlibdeps then puts in Depends).
LINK=(-Xswiftc -use-ld=bfd -Xlinker --no-export-dynamic -Xlinker -z -Xlinker pack-relative-relocs -Xcxx -Os)
echo "== building markdns $UPSTREAM_VERSION (commit $COMMIT), release, --static-swift-stdlib" >&2
"${NICE[@]}" swift build -c release --static-swift-stdlib --product markdns --scratch-path .build-pkg "${LINK[@]}" \
    2>&1 | grep -v "the use of \`mktemp' is dangerous" | tail -3 >&2
BIN=.build-pkg/release/markdns
[[ "$("$BIN" --version)" == *"commit $COMMIT)" ]] || { echo "package: the built binary does not report commit $COMMIT" >&2; exit 1; }

echo "== building generate-manual (swift-argument-parser's, the version markdns links)" >&2
SAP=.build-pkg/checkouts/swift-argument-parser
"${NICE[@]}" swift build -c release --package-path "$SAP" --scratch-path .build-gm --product generate-manual 2>&1 | tail -1 >&2
GENMAN=.build-gm/release/generate-manual

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/markdns-deb.XXXXXX")
trap 'rm -f "$HEADER"; rm -rf "$STAGE"' EXIT
ROOT="$STAGE/markdns_${VERSION}_$ARCH"
DOC="$ROOT/usr/share/doc/markdns"
install -d "$ROOT/DEBIAN" "$ROOT/usr/sbin" "$ROOT/etc/markdns" "$ROOT/lib/systemd/system" \
    "$ROOT/usr/share/man/man8" "$DOC/examples"

install -m 0755 "$BIN" "$ROOT/usr/sbin/markdns"
strip --strip-all "$ROOT/usr/sbin/markdns"
UNSTRIPPED=$(stat -c %s "$BIN")
STRIPPED=$(stat -c %s "$ROOT/usr/sbin/markdns")
echo "== binary: $UNSTRIPPED bytes unstripped, $STRIPPED stripped" >&2
if [ "$STRIPPED" -gt "$MAX_STRIPPED" ]; then
    echo "package: the stripped binary is $STRIPPED bytes, over the $MAX_STRIPPED budget" >&2
    exit 1
fi
# No Foundation (it brings ICU's 30 MB of data): FoundationEssentials only.
if [ "$(objdump -t "$BIN" | grep -c '\$s10Foundation\|ucol_open\|icu_[0-9]' || true)" != 0 ]; then
    echo "package: Foundation or ICU is linked into $BIN (find who: swift build ... -Xlinker -Map=FILE)" >&2
    exit 1
fi

install -m 0644 conf/markdns.toml "$ROOT/etc/markdns/markdns.toml"
install -m 0644 conf/markdns.service "$ROOT/lib/systemd/system/markdns.service"
for f in conf/accounting.toml conf/captive-portal.toml conf/multiwan.toml conf/nftables.conf \
         conf/iptables.rules conf/ip6tables.rules conf/markdns.toml; do
    install -m 0644 "$f" "$DOC/examples/"
done
install -m 0644 README.md "$DOC/README.md"
gzip -9n "$DOC/README.md"

# The man page comes from the binary's own argument parser (--experimental-dump-help), so
# it says what --help says.
mkdir -p "$STAGE/man"
"$GENMAN" "$ROOT/usr/sbin/markdns" --section 8 --date "$DATE_DAY" --authors "$MAINTAINER" \
    --output-directory "$STAGE/man"
[ -s "$STAGE/man/markdns.8" ] || { echo "package: generate-manual wrote no markdns.8" >&2; exit 1; }
gzip -9nc "$STAGE/man/markdns.8" > "$ROOT/usr/share/man/man8/markdns.8.gz"

cat > "$STAGE/changelog" <<EOF
markdns ($VERSION) unstable; urgency=medium

  * Release $UPSTREAM_VERSION, built from commit $COMMIT.

 -- $MAINTAINER  $DATE_RFC2822
EOF
gzip -9nc "$STAGE/changelog" > "$DOC/changelog.Debian.gz"
scripts/deb-copyright.sh .build-pkg/checkouts > "$DOC/copyright"

# Depends: the shared libraries the binary links, as dpkg-shlibdeps maps them to packages
# and minimum versions (symbols/shlibs files), checked against objdump's NEEDED list; then
# the tools markdns runs: nft for `rules --apply` (iptables only with --format iptables).
mkdir -p "$STAGE/shlibs/debian"
printf 'Source: markdns\n\nPackage: markdns\nArchitecture: any\n' > "$STAGE/shlibs/debian/control"
SHLIBS=$(cd "$STAGE/shlibs" && dpkg-shlibdeps -O "$ROOT/usr/sbin/markdns" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$SHLIBS" ] || { echo "package: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
for lib in $(objdump -p "$BIN" | awk '/NEEDED/ {print $2}'); do
    # Readers that stop early (awk exit, head, grep -q) would SIGPIPE the writer: pipefail
    # turns that into exit 141 (the CI failure of 3e03a9e). Read to the end instead.
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && !f {print $NF; f = 1}')
    [ -n "$path" ] || { echo "package: $lib (NEEDED) not found by ldconfig" >&2; exit 1; }
    # dpkg knows a file by the path its package ships (/lib/... or /usr/lib/... under usrmerge).
    pkg=""
    for p in "$path" "$(readlink -f "$path")" "/usr$path" "${path#/usr}"; do
        pkg=$(dpkg -S "$p" 2>/dev/null | sed -n 1p | cut -d: -f1) && [ -n "$pkg" ] && break
    done
    [ -n "$pkg" ] || { echo "package: no Debian package ships $path ($lib)" >&2; exit 1; }
    case ", $SHLIBS," in
        *", $pkg "*|*", $pkg,"*) ;;
        *) echo "package: $lib comes from $pkg, which Depends ($SHLIBS) lacks" >&2; exit 1 ;;
    esac
done
# dpkg-shlibdeps reads imported symbols only, not version references: DT_RELR's
# GLIBC_ABI_DT_RELR (glibc 2.36) has no symbol, so it is added here.
if [ "$(readelf -V "$BIN" | grep -c GLIBC_ABI_DT_RELR || true)" != 0 ]; then
    have=$(sed -n 's/.*libc6 (>= \([^)]*\)).*/\1/p' <<<"$SHLIBS")
    if [ -z "$have" ] || dpkg --compare-versions "$have" lt 2.36; then
        SHLIBS=$(sed 's/libc6 (>= [^)]*)/libc6 (>= 2.36)/' <<<"$SHLIBS")
    fi
    grep -q 'libc6 (>= 2.36)' <<<"$SHLIBS" || { echo "package: cannot require libc6 >= 2.36 in '$SHLIBS'" >&2; exit 1; }
fi
# The session store links SQLite (libsqlite3-0): dpkg-shlibdeps must have found it.
grep -q 'libsqlite3-0' <<<"$SHLIBS" || { echo "package: libsqlite3-0 missing from Depends ($SHLIBS)" >&2; exit 1; }
# [[set]] writes link libnftnl (Debian: libnftnl11); dpkg-shlibdeps must have found it.
grep -q 'libnftnl11' <<<"$SHLIBS" || { echo "package: Depends ($SHLIBS) lacks libnftnl11" >&2; exit 1; }
DEPENDS="$SHLIBS, nftables"

INSTALLED_KB=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat > "$ROOT/DEBIAN/control" <<EOF
Package: markdns
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $INSTALLED_KB
Depends: $DEPENDS
Suggests: iptables, conntrack
Section: net
Priority: optional
Description: DNS forwarder that carries each client's connmark upstream
 markdns serves DNS on a Linux gateway and forwards each query from a socket
 marked (SO_MARK) with the netfilter connection mark of the client's flow, so
 that per-user accounting, captive portals, multi-WAN routing and QoS keep
 working for the DNS traffic a client causes. One policy file says which client
 gets which mark and what each mark may do in DNS (walled garden, block lists,
 per-mark upstream pools); "markdns rules" renders the nftables or iptables
 rules from the same file.
 .
 The service is installed disabled: edit /etc/markdns/markdns.toml, then run
 "systemctl enable --now markdns".
EOF
echo /etc/markdns/markdns.toml > "$ROOT/DEBIAN/conffiles"
(cd "$ROOT" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$ROOT/DEBIAN/md5sums"

mkdir -p dist
DEB="dist/markdns_${VERSION}_$ARCH.deb"
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
echo "== $DEB: $(stat -c %s "$DEB") bytes; Depends: $DEPENDS" >&2
echo "$DEB"
