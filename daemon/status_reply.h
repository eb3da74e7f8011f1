/* status_reply.h — the reply to `status` (PROTOCOL.md §5.2): every value it
 * shows (StatusFacts, gathered from the engine by the methods layer), its
 * JSON, and its serialised text, kept and reused while the facts stay equal.
 *
 * Why a kept text: status is what monitoring polls, and building its ~40
 * json-c objects, serialising and freeing them per call cost three times a
 * request.get (bench/ANALYSIS.md, session 4). The text is rebuilt only when
 * a fact differs from the ones it was built from. Equality is decided on the
 * facts themselves — numbers compared as bytes, strings by content — not by
 * change notifications, so no writer of the engine's state can forget to
 * invalidate it; and the JSON is built from the facts alone, so nothing can
 * reach the reply without being compared. What depends on the time is
 * decided when the facts are gathered (uptime in whole seconds, a pause or a
 * backoff that is over shows as none), so an idle daemon's text changes at
 * most once a second.
 *
 * Pure: no I/O, no clock, no Manager (tests/unit/test_status_reply.c). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "record.h"
#include "timeutil.h"

/* The strings the reply shows; NULL shows null. */
typedef enum StatusString {
	STATUS_BASE_URL,
	STATUS_LAST_ERROR,
	STATUS_BREAKER_REASON,     /* api.creates_paused.reason (strna'd: never null there) */
	STATUS_API_KEY_ID,
	STATUS_KEY_ERROR,
	STATUS_KEY_SOURCE,         /* key.source */
	STATUS_KEY_SWITCH_REASON,
	STATUS_STANDBY_STATE,      /* key.standby.*: shown when standby is set */
	STATUS_STANDBY_SOURCE,
	STATUS_STANDBY_ERROR,
	STATUS_SOCKET_PATH,
	STATUS_FORECAST_HELD,      /* forecast.held: why creates are held */
	STATUS_WEBHOOK_LISTEN,     /* webhook.listen, webhook.public_url (inbox_status_facts()) */
	STATUS_WEBHOOK_PUBLIC_URL,
	STATUS_POLL_MODE,          /* polling.mode, polling.reason (sweep_status_facts()) */
	STATUS_POLL_REASON,
	_STATUS_STRING_MAX,
} StatusString;

/* Every number, time and flag of the reply. Each field is 64 bits wide, so
 * the struct has no padding and memcmp() compares exactly the values (were
 * padding added, it could only make equal facts look different: a needless
 * rebuild, never a stale text). A time of 0 shows null; a flag is 0 or 1. */
typedef struct StatusNumbers {
	int64_t started_at, uptime_s;
	/* budget */
	int64_t limit, remaining, used, reset_at;
	int64_t paused_until;              /* 0 unless in the future */
	int64_t from_server;
	int64_t interactive_share_null;    /* an admin has no share: null */
	int64_t interactive_share, interactive_used, interactive_total;
	/* queue */
	int64_t counts[_REQUEST_STATE_MAX];
	int64_t oldest_queued_at;
	/* forecast (telemetry_status_facts()) */
	int64_t backlog;
	int64_t drain_at;                  /* 0: null */
	int64_t drain_seconds_null, drain_seconds;
	int64_t creates_per_window, decisions_per_hour;
	/* api */
	int64_t reachable, last_ok_at, last_error_at, last_attempt_at;
	int64_t consecutive_failures;
	int64_t backoff_until;             /* 0 unless in the future */
	int64_t breaker;                   /* ApiErrClass; APIERR_NONE: creates_paused is null */
	int64_t breaker_since, breaker_probe_at;
	/* api.foreign (accounting_status_facts()) */
	int64_t foreign_calls, foreign_own_calls, foreign_server_used;
	int64_t foreign_reset_at;          /* 0: null */
	int64_t foreign_rate_limited, foreign_threshold, foreign_alarm, foreign_total;
	/* key */
	int64_t key_loaded;
	int64_t key_valid;                 /* 1, 0, or -1 for null (not yet known) */
	int64_t key_on_standby;            /* key.active: "standby", else "primary" */
	int64_t key_first_used_at;         /* 0: null */
	int64_t key_age_days_null, key_age_days, key_rotate_after_days;
	int64_t key_switched_at;           /* 0: null */
	int64_t standby;                   /* key.standby is an object (else null) */
	/* socket, queue.pause */
	int64_t socket_activated, socket_replaced, paused;
	/* webhook (inbox_status_facts()) */
	int64_t webhook_enabled, webhook_activated, webhook_received, webhook_rejected;
	int64_t webhook_last_at, webhook_last_rejected_at;   /* 0: null */
	/* polling (sweep_status_facts()) */
	int64_t poll_since, poll_last_callback_at;            /* 0: null */
	int64_t poll_sweep_interval_s, poll_reserve;
} StatusNumbers;

/* One loop whose creates pause (api.loops_paused[]). */
typedef struct StatusLoop {
	const char *loop_id;
	const char *reason;                /* NULL shows "n/a" */
	usec_t next_probe_at;
} StatusLoop;

typedef struct StatusFacts {
	StatusNumbers num;
	const char *str[_STATUS_STRING_MAX];
	const StatusLoop *loops;
	size_t n_loops;
} StatusFacts;

/* The text last built and the facts it was built from (owned copies). */
typedef struct StatusReply {
	StatusNumbers num;
	char *str[_STATUS_STRING_MAX];
	StatusLoop *loops;                 /* strings owned */
	size_t n_loops;
	char *text;                        /* NULL: nothing kept */
	size_t text_len;
	uint64_t builds;                   /* how many times the text was built (tests) */
} StatusReply;

/* The reply as a json-c object, from the facts alone; NULL on ENOMEM. */
json_object *status_reply_json(const StatusFacts *f);

/* The serialised reply for these facts (JSON_C_TO_STRING_PLAIN |
 * NOSLASHESCAPE): the kept text if the facts equal those it was built from,
 * else a new one, kept. Valid until the next call or status_reply_clear().
 * NULL on ENOMEM (nothing is kept then). */
const char *status_reply_text(StatusReply *c, const StatusFacts *f, size_t *ret_len);

/* The same, as a json object whose serializer emits the kept text (for
 * rpc_call_reply(), which serialises at once). NULL on ENOMEM. */
json_object *status_reply_object(StatusReply *c, const StatusFacts *f);

void status_reply_clear(StatusReply *c);
