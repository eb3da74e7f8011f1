/* baseurl.h — the one rule for HITL.sh's base URL (api.base_url): https://,
 * or plain http:// to a loopback host only (the emulator, a local proxy); a
 * host; no user information (a secret in logs), query or fragment (no path
 * can follow them); at most BASEURL_MAX bytes, no spaces or control
 * characters. Pure: libcurl's URL parser, no I/O. config.c (the file,
 * --check-config) and api.c (the client) both ask it, so the daemon and
 * --check-config refuse the same URLs. */
#pragma once

#include <stdbool.h>

#define BASEURL_MAX 2048

/* 0 if url is acceptable (then *ret_plain_loopback, if given, tells whether
 * it is http:// to loopback: never through a proxy); else -EPROTONOSUPPORT
 * (a scheme other than https://, or http:// elsewhere than loopback) or
 * -EINVAL, and *ret_reason (if given) completes "base URL: …". */
int baseurl_check(const char *url, bool *ret_plain_loopback, const char **ret_reason);

/* localhost, 127.0.0.0/8 or [::1] (the host as libcurl's URL parser gives it). */
bool baseurl_is_loopback_host(const char *host);
