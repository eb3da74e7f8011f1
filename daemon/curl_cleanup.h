/* curl_cleanup.h — _cleanup_() helpers for libcurl's URL API (CURLU and the
 * strings curl_url_get() returns), for baseurl.c and api.c, which both take a
 * URL apart. Header only: nothing here holds state or belongs to a layer. */
#pragma once

#include <curl/curl.h>

static inline void curl_urlp(CURLU **u) {
	if (*u)
		curl_url_cleanup(*u);
}

static inline void curl_freep(char **p) {
	if (*p)
		curl_free(*p);
}
