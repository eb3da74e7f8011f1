/* ctl_wait.h — waiting until a request is final (private to hitlctl): ask,
 * wait and trigger share it. On a terminal a live line on stderr shows the
 * state, queue position, time left and budget; when hitld goes away the wait
 * reconnects for RECONNECT_FOR_S and waits on, the request being durable. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <json-c/json.h>

#include "ctl.h"

typedef struct Live {
	bool on;
	bool shown;
	int64_t position;         /* from the submit reply; -1 unknown */
	time_t status_at;
	char budget[96];
} Live;

/* Removes the live line if it is shown. */
void live_clear(Live *l);

/* Connects again after hitld went away (*lost_since: when; 0 the first time)
 * for up to RECONNECT_FOR_S; 0, -EINTR or -ECONNRESET. */
int reconnect(Ctl *ctl, Live *live, time_t *lost_since);

/* Waits until the request is final or timeout_s (negative: none) passes.
 * Returns 0 with *ret_wait (the last request.wait result) when final,
 * EXIT_TIMEOUT with *ret_wait when time ran out, or another exit code
 * (reported). */
int wait_final(Ctl *ctl, const char *id, int64_t timeout_s, Live *live, json_object **ret_wait);
