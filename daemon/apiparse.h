/* apiparse.h — reading what HITL.sh sends back: rate-limit headers, the {error,msg,data}
 * envelope, request objects and list pages (docs/HITL-API.md). Strict on what it
 * cannot check (ids, numbers, paging), tolerant of what the service is known to vary
 * (status words, flat or nested GET, request_id or id). Pure and untrusting: bad input
 * is an error return, never an assert; the one piece of state is the set of unknown
 * status words already reported (apiparse_unknown_status_first_seen). Used by api.c
 * and the work engine. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "budget.h"

#define APIPARSE_ID_LEN 24
/* Bounds beyond which a header value is not believed. */
#define APIPARSE_COUNT_MAX 1000000000U          /* X-RateLimit-Limit / -Remaining */
#define APIPARSE_EPOCH_MAX INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define APIPARSE_RETRY_AFTER_MAX (7U * 86400U)  /* one week */
#define APIPARSE_HEADER_VALUE_MAX 256
#define APIPARSE_STATUS_WORD_MAX 32             /* raw status words kept for logs, NUL included */

/* Parses one response header line ("X-RateLimit-Remaining: 99\r\n", not
 * necessarily NUL-terminated) into ri. Recognises X-RateLimit-Limit,
 * X-RateLimit-Remaining, X-RateLimit-Reset (decimal, bounded), Date (HTTP date
 * via curl_getdate) and Retry-After (seconds, or an HTTP date turned into
 * seconds after ri->date_epoch, 0 if already past; the date form needs Date
 * parsed first, apiparse_header_block() takes care of that). Names are
 * case-insensitive. Returns 1 if recognised and stored, 0 if not a header we
 * read, -EINVAL if recognised but malformed (ri unchanged; callers ignore it). */
int apiparse_header_line(const char *line, size_t len, RateInfo *ri);

/* True if the line is one apiparse_header_line() recognises (by name only). */
bool apiparse_header_wanted(const char *line, size_t len);

/* Parses a block of header lines separated by "\n" (or "\r\n"), Date lines
 * first so that a Retry-After date can be read whatever the order. Malformed
 * lines are skipped. Returns the number of lines stored. */
int apiparse_header_block(const char *block, size_t len, RateInfo *ri);

/* One strict JSON object (RFC 8259 syntax, valid UTF-8, no NUL bytes, at
 * most depth levels, nothing after it but whitespace) into *ret (owned by the
 * caller); anything else -EBADMSG. The envelope's and a callback's reader. */
int apiparse_json_object(const char *body, size_t len, int depth, json_object **ret);

/* Parses the {error,msg,data} envelope. body may be NULL, empty, not JSON, not
 * an object, or contain NUL bytes: -EBADMSG. "error" must be a boolean; "msg"
 * a string or null or absent; "data" anything (JSON null -> NULL). On success
 * returns the parsed root (owned by the caller) and borrowed pointers into it. */
int apiparse_envelope(const char *body, size_t len, json_object **ret_root, bool *ret_error,
                      const char **ret_msg, json_object **ret_data);

typedef struct RemoteRequest {
	char id[APIPARSE_ID_LEN + 1]; /* request_id, falling back to id */
	char status[16];              /* pending|claimed|completed|timeout|cancelled|failed: the meaning */
	char raw_status[APIPARSE_STATUS_WORD_MAX]; /* the server's word, printable, "(none)" if absent */
	bool status_unknown;          /* the word means nothing to us: status is "pending" (or
	                               * "completed" with response_data) */
	json_object *response_data;   /* borrowed, may be NULL (JSON null -> NULL) */
	const char *response_by;      /* borrowed: user id string; or response_by.user_id when it is an object */
	const char *response_at;      /* borrowed ISO string or NULL */
	double response_time_seconds;
	bool has_response_time;
	const char *timeout_at;       /* borrowed */
	json_object *context;         /* borrowed, may be NULL (list summaries lack it) */
} RemoteRequest;

/* Is s a 24-hex-digit HITL.sh ObjectID? */
bool apiparse_id_is_valid(const char *s);

/* From a request object (GET data.request, a list item, or create data).
 * -EBADMSG if it is not an object, or the id (request_id, else id) is not 24
 * hex. The status word is read by apiparse_status_from_word(); a missing or
 * unknown one sets status_unknown and reads as "pending"; a non-null
 * response_data makes any status that is not final "completed". Optional
 * fields of the wrong type read as absent. */
int apiparse_remote_request(json_object *obj, RemoteRequest *ret);

/* From GET /api/requests/{id} data: {"request": {...}} (status and
 * response_data may also sit beside "request", in data), or flat: data is the
 * request object itself. */
int apiparse_get_request(json_object *data, RemoteRequest *ret);

/* The meaning of a status word: the five documented ones, timed_out →
 * timeout, answered and resolved → completed, canceled → cancelled, failed
 * (final at HITL.sh: the request will not be answered). NULL if unknown. */
const char *apiparse_status_from_word(const char *word);

/* completed, timeout, cancelled, failed. */
bool apiparse_status_is_final(const char *status);

/* True the first time word is passed (per process, for up to 16 words; past
 * that always true), so each unknown status word is logged once. */
bool apiparse_unknown_status_first_seen(const char *word);

/* From list data (§3.11): the array of request objects (borrowed), total,
 * has_more and next_offset. Fields missing in older variants are derived:
 * total from count or the array length, has_more from total and the page,
 * next_offset from pagination.offset + items. -EBADMSG if data is not an
 * object, requests is not an array, a number is negative or absurd, or
 * has_more is true but next_offset would not move forward. next_offset is 0
 * when has_more is false. */
int apiparse_list(json_object *data, json_object **ret_requests, unsigned *ret_total,
                  bool *ret_has_more, unsigned *ret_next_offset);
