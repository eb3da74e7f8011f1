/* logrl.c — see logrl.h. */
#include <stdio.h>

#include "logrl.h"

/* systemd's ratelimit_below(), with the clock given: a window begins at the
 * first entry after the last one ended and lets burst entries through. */
static bool window_over(const LogRlWindow *w, usec_t interval, usec_t now) {
	return w->begin == 0 || now < w->begin || now - w->begin > interval;
}

static bool window_test(const LogRlWindow *w, usec_t interval, unsigned burst, usec_t now) {
	return window_over(w, interval, now) || w->num < burst;
}

static void window_take(LogRlWindow *w, usec_t interval, usec_t now) {
	if (window_over(w, interval, now)) {
		w->begin = now;
		w->num = 0;
	}
	w->num++;
}

static LogRlKey *find_key(LogRl *rl, uint64_t key, usec_t now) {
	LogRlKey *oldest = &rl->keys[0];

	for (size_t i = 0; i < LOGRL_KEYS; i++) {
		LogRlKey *k = &rl->keys[i];

		if (k->used && k->key == key)
			return k;
		if (!k->used) {
			oldest = k;
			break;
		}
		if (k->seen < oldest->seen)
			oldest = k;
	}
	/* Forgetting the quietest key costs at most its burst again, never memory. */
	*oldest = (LogRlKey) { .key = key, .used = true, .seen = now };
	return oldest;
}

bool logrl_below(LogRl *rl, uint64_t key, usec_t now, unsigned *ret_suppressed) {
	LogRlKey *k = NULL;

	if (rl->interval == 0 || rl->burst == 0) {
		*ret_suppressed = 0;
		return true;
	}
	/* begin == 0 means "no window": the clock's 0 is taken as 1. */
	if (now == 0)
		now = 1;
	if (key != LOGRL_NO_KEY) {
		k = find_key(rl, key, now);
		k->seen = now;
	}
	if ((k && !window_test(&k->window, rl->interval, rl->burst, now)) ||
	    !window_test(&rl->all, rl->interval, k ? rl->burst_all : rl->burst, now)) {
		if (rl->suppressed < UINT32_MAX)
			rl->suppressed++;
		return false;
	}
	if (k)
		window_take(&k->window, rl->interval, now);
	window_take(&rl->all, rl->interval, now);
	*ret_suppressed = rl->suppressed;
	rl->suppressed = 0;
	return true;
}

const char *logrl_suffix(unsigned n, char buf[static LOGRL_SUFFIX_MAX]) {
	if (n == 0)
		buf[0] = 0;
	else
		snprintf(buf, LOGRL_SUFFIX_MAX, " (%u similar message%s suppressed)", n, n == 1 ? "" : "s");
	return buf;
}

uint64_t logrl_key_string(const char *s) {
	uint64_t h = UINT64_C(14695981039346656037);

	for (; s && *s; s++) {
		h ^= (unsigned char) *s;
		h *= UINT64_C(1099511628211);
	}
	/* LOGRL_NO_KEY is not a key. */
	return h == LOGRL_NO_KEY ? 0 : h;
}
