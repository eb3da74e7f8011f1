/* apierr.h — what a failed HITL.sh call is about: one request, one loop, or
 * the key, the account or the endpoint as a whole (docs/hitld.8, "When
 * HITL.sh refuses"). Pure: decides from the call kind and what the server
 * said (status, msg, data, whether rate headers came), no I/O, no clock. The
 * work engine (outcome.c) acts on the answer: a request-level error fails
 * its request; a loop-level one pauses that loop's creates; a key-, account-
 * or endpoint-level one pauses every create (the circuit breaker) and keeps
 * the queue as it is. */
#pragma once

#include <stdbool.h>
#include <json-c/json.h>

#include "budget.h"

typedef enum ApiErrClass {
	APIERR_NONE,          /* a 2xx with a readable envelope: not an error */
	APIERR_TRANSIENT,     /* no reply, 5xx, unreadable body, unhandled status: back off and retry */
	APIERR_RATE,          /* 429 with rate headers: the budget pauses */
	APIERR_KEY_INVALID,   /* 401: the key is refused (probing with GET /test) */
	APIERR_REQUEST,       /* about this one request (validation, a loop that does not exist) */
	APIERR_LOOP,          /* about the loop: no active members; pause creates in it */
	APIERR_KEY,           /* the key is inactive (403) */
	APIERR_ACCOUNT,       /* quota, plan, billing */
	APIERR_ENDPOINT,      /* a redirect, the endpoint gone (410, 404 route) */
	_APIERR_CLASS_MAX,
	_APIERR_CLASS_INVALID = -1,
} ApiErrClass;

typedef struct ApiErrInput {
	CallKind kind;            /* CALL_CREATE, CALL_RECONCILE, … */
	long http_status;         /* 0: no complete reply */
	bool body_invalid;        /* a reply came but is no {error,msg,data} envelope */
	bool envelope_error;      /* a 2xx whose envelope says error:true */
	bool has_rate_headers;    /* X-RateLimit-* or Retry-After came with it */
	const char *msg;          /* envelope msg or NULL */
	json_object *data;        /* envelope data or NULL (a string is read for words) */
	bool loop_known;          /* a create in this loop has worked before */
} ApiErrInput;

ApiErrClass apierr_classify(const ApiErrInput *in);

/* Does this class pause creates for everyone (the breaker)? */
static inline bool apierr_is_global(ApiErrClass c) {
	return c == APIERR_KEY || c == APIERR_ACCOUNT || c == APIERR_ENDPOINT;
}

const char *apierr_class_to_string(ApiErrClass c);

/* A one-line description of what the server said, for logs and status:
 * "HTTP 403: API key is inactive". Writes at most size bytes. */
void apierr_describe(long http_status, const char *msg, json_object *data, char *buf, size_t size);

/* Repeated identical 4xx for different requests: the same status and msg
 * this many times in a row on creates is about the account, not the
 * requests. */
#define APIERR_REPEAT_THRESHOLD 3U
