#ifndef MARKDNS_BUILD_INFO_H
#define MARKDNS_BUILD_INFO_H

/// The git commit markdns was built from: written into build_commit.h by scripts/package.sh
/// (ignored by git, removed after the build), "unknown" for a plain `swift build`.
const char *markdns_build_commit(void);

#endif
