/* curl_glue.h — one libcurl multi handle driven by an sd-event loop: an io
 * source per socket curl wants watched, one monotonic time source for curl's
 * timer. Owns the easy handles added to it and calls done() exactly once per
 * handle that finishes (never for one removed or still running at free).
 * Used by api.c. The first curl_glue_new() gives libcurl (and OpenSSL, when
 * libcurl uses it) an allocator that wipes every block before freeing it. */
#pragma once

#include <curl/curl.h>
#include <systemd/sd-event.h>

typedef struct CurlGlue CurlGlue;

/* Called from the event loop when easy has finished (result CURLE_OK or the
 * transfer error). easy is already out of the multi handle; the glue cleans
 * it up after done() returns. done() may add and remove other handles; it
 * must not free the glue. */
typedef void (*curl_glue_done_t)(CurlGlue *g, CURL *easy, CURLcode result, void *userdata);

int curl_glue_new(sd_event *e, CurlGlue **ret);
/* Removes and frees any easy handles still running, without callbacks. */
CurlGlue *curl_glue_free(CurlGlue *g);
static inline void curl_glue_freep(CurlGlue **g) {
	if (*g)
		curl_glue_free(*g);
}

/* Starts easy. The glue owns easy from now on (also on failure, when it is
 * cleaned up at once) and cleans it up after done() returns. */
int curl_glue_add(CurlGlue *g, CURL *easy, curl_glue_done_t done, void *userdata);
/* Aborts easy without callback and cleans it up. Unknown handles are ignored
 * (so it is harmless for a handle whose done() is running). */
void curl_glue_remove(CurlGlue *g, CURL *easy);
/* Number of handles running. */
unsigned curl_glue_running(const CurlGlue *g);
