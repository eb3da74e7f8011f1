/* timeutil.c — see timeutil.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "timeutil.h"

static usec_t timespec_load(const struct timespec *ts) {
	return (usec_t) ts->tv_sec * USEC_PER_SEC + (usec_t) ts->tv_nsec / 1000;
}

usec_t now_realtime(void) {
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return timespec_load(&ts);
}

usec_t now_monotonic(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return timespec_load(&ts);
}

char *format_iso8601(usec_t t, char buf[static ISO8601_MAX]) {
	time_t sec = (time_t) (t / USEC_PER_SEC);
	struct tm tm;

	if (!gmtime_r(&sec, &tm) || strftime(buf, ISO8601_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, ISO8601_MAX, "1970-01-01T00:00:00Z");
	return buf;
}

int parse_iso8601(const char *s, usec_t *ret) {
	struct tm tm = {};
	const char *p;
	usec_t frac = 0;

	if (!s)
		return -EINVAL;
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	if (*p == '.') {
		usec_t scale = 100000;

		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			frac += (usec_t) (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (!(strcmp(p, "Z") == 0 || strcmp(p, "+00:00") == 0))
		return -EINVAL;

	time_t sec = timegm(&tm);
	if (sec < 0)
		return -EINVAL;
	*ret = (usec_t) sec * USEC_PER_SEC + frac;
	return 0;
}
