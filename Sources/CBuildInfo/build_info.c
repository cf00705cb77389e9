#include "build_info.h"

#if __has_include("build_commit.h")
#include "build_commit.h"
#endif
#ifndef MARKDNS_BUILD_COMMIT
#define MARKDNS_BUILD_COMMIT "unknown"
#endif

const char *markdns_build_commit(void) { return MARKDNS_BUILD_COMMIT; }
