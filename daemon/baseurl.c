/* baseurl.c — see baseurl.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "baseurl.h"
#include "cleanup.h"
#include "curl_cleanup.h"

static bool has_control_chars(const char *s) {
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

bool baseurl_is_loopback_host(const char *host) {
	struct in_addr a4;
	struct in6_addr a6;
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	n = strlen(host);
	if (n < 3 || n >= sizeof buf || host[0] != '[' || host[n - 1] != ']')
		return false;
	memcpy(buf, host + 1, n - 2);
	buf[n - 2] = '\0';
	return inet_pton(AF_INET6, buf, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static const char *check(const char *url, bool *ret_plain_loopback, int *ret_errno) {
	_cleanup_(curl_urlp) CURLU *u = NULL;
	_cleanup_(curl_freep) char *scheme = NULL, *host = NULL, *part = NULL;

	if (!url || !*url)
		return "URL is empty";
	if (strlen(url) > BASEURL_MAX)
		return "URL is longer than 2048 bytes";
	if (has_control_chars(url) || strchr(url, ' '))
		return "URL contains spaces or control characters";
	if (strncasecmp(url, "https://", 8) != 0 && strncasecmp(url, "http://", 7) != 0) {
		/* Another scheme is refused as such; no scheme at all is no URL. */
		if (strstr(url, "://"))
			*ret_errno = -EPROTONOSUPPORT;
		return "URL must start with https:// or http://";
	}
	if (!url[strchr(url, ':') - url + 3])
		return "URL has no host";
	u = curl_url();
	if (!u)
		return "out of memory";
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		return "URL does not parse";
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
		return "URL has no host";
	/* User info would carry a secret into logs; a query or fragment cannot take a path. */
	if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK)
		return "URL must not contain user information";
	if (curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK)
		return "URL must not contain a query or fragment";
	if (strcasecmp(scheme, "http") == 0 && !baseurl_is_loopback_host(host)) {
		*ret_errno = -EPROTONOSUPPORT;
		return "plain http:// is only allowed to a loopback host (127.0.0.0/8, ::1, localhost); use https://";
	}
	if (ret_plain_loopback)
		*ret_plain_loopback = strcasecmp(scheme, "http") == 0;
	return NULL;
}


int baseurl_check(const char *url, bool *ret_plain_loopback, const char **ret_reason) {
	int r = -EINVAL;
	const char *reason = check(url, ret_plain_loopback, &r);

	if (ret_reason)
		*ret_reason = reason;
	return reason ? r : 0;
}
