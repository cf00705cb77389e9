#!/usr/bin/env bash
# Writes the Debian copyright file (plain text, Debian Policy 12.5) of the markdns package to
# stdout: markdns itself and everything its static binary embeds (the Swift runtime,
# FoundationEssentials and Dispatch from the toolchain, and the SwiftPM dependencies in
# CHECKOUTS, each with the version checked out). Used by scripts/package.sh.
set -euo pipefail
CHECKOUTS=${1:?usage: deb-copyright.sh CHECKOUTS_DIR}

# The packages whose modules are linked into markdns (see the product's Objects.LinkFileList).
APACHE=(swift-nio swift-nio-extras swift-atomics swift-collections swift-log swift-argument-parser
        swift-metrics swift-prometheus)
version() { git -C "$CHECKOUTS/$1" describe --tags 2>/dev/null || echo unknown; }
for p in "${APACHE[@]}" TOMLKit; do
    [ -d "$CHECKOUTS/$p" ] || { echo "deb-copyright: $CHECKOUTS/$p missing" >&2; exit 1; }
done

cat <<'EOF'
markdns

/usr/sbin/markdns is linked statically against the Swift runtime and the Swift packages
listed below; their copyright and licence terms follow markdns's own.

Component: markdns
Copyright: the markdns maintainers
License: not-stated
 The markdns sources do not state a licence yet. Until they do, ask the
 maintainers before redistributing this package.

Component: Swift standard library, FoundationEssentials, Dispatch
Copyright: Apple Inc. and the Swift project authors
License: Apache-2.0 with Runtime Library Exception
EOF
echo " Embedded from the Swift $(swift --version 2>/dev/null | sed -n 's/.*Swift version \([^ ]*\).*/\1/p' | sed -n 1p) toolchain."
cat <<'EOF'
 .
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0. Runtime Library Exception:
 .
 As an exception, if you use this Software to compile your source code and
 portions of this Software are embedded into the binary product as a result,
 you may redistribute such product without providing attribution as would
 otherwise be required by Sections 4(a), 4(b) and 4(d) of the License.
EOF
for p in "${APACHE[@]}"; do
    owner="Apple Inc. and the SwiftNIO project authors"
    case "$p" in
        swift-argument-parser|swift-collections|swift-atomics) owner="Apple Inc. and the Swift project authors" ;;
        swift-log|swift-metrics) owner="Apple Inc. and the Swift Server Workgroup project authors" ;;
        swift-prometheus) owner="the SwiftPrometheus project authors" ;;
    esac
    rle=""
    grep -q "Runtime Library Exception" "$CHECKOUTS/$p/LICENSE.txt" && rle=" with Runtime Library Exception"
    printf '\nComponent: %s %s\nCopyright: %s\nLicense: Apache-2.0%s\n' "$p" "$(version "$p")" "$owner" "$rle"
    echo " On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0."
done
printf '\nComponent: TOMLKit %s\nCopyright: %s\nLicense: MIT\n' "$(version TOMLKit)" \
    "$(grep -m1 -i '^copyright' "$CHECKOUTS/TOMLKit/LICENSE" | sed 's/^Copyright (c) //I')"
printf '\nComponent: toml++ (vendored by TOMLKit)\nCopyright: Mark Gillard <mark.gillard@outlook.com.au>\nLicense: MIT\n'
printf '\nThe MIT License:\n'
# The MIT text from TOMLKit's LICENSE, after its title and copyright lines.
sed -n '/^Permission is hereby granted/,$p' "$CHECKOUTS/TOMLKit/LICENSE" | sed 's/^$/./; s/^/ /'
