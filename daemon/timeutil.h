/* timeutil.h — microsecond time values and their ISO-8601 wire form.
 * All times inside hitld are usec_t: microseconds since the Unix epoch on the
 * realtime clock (CLOCK_REALTIME), or durations in microseconds. Pure helpers,
 * except now() which reads the clock. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef uint64_t usec_t;

#define USEC_INFINITY ((usec_t) UINT64_MAX)
#define USEC_PER_MSEC ((usec_t) 1000ULL)
#define USEC_PER_SEC  ((usec_t) 1000000ULL)
#define USEC_PER_MINUTE (60ULL * USEC_PER_SEC)
#define USEC_PER_HOUR (3600ULL * USEC_PER_SEC)
#define USEC_PER_DAY  (86400ULL * USEC_PER_SEC)

/* "2026-11-28T14:02:11Z" plus NUL. */
#define ISO8601_MAX 21

usec_t now_realtime(void);
usec_t now_monotonic(void);

/* Writes the UTC ISO-8601 form of t (second precision, 'Z') into buf and
 * returns buf. */
char *format_iso8601(usec_t t, char buf[static ISO8601_MAX]);

/* Parses "YYYY-MM-DDTHH:MM:SS[.fff]Z" (also "+00:00"). Returns 0 or -EINVAL. */
int parse_iso8601(const char *s, usec_t *ret);

static inline usec_t usec_add(usec_t a, usec_t b) {
	return a > USEC_INFINITY - b ? USEC_INFINITY : a + b;
}

static inline usec_t usec_sub(usec_t a, usec_t b) {
	return a > b ? a - b : 0;
}
