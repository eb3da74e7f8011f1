/* record.c — see record.h. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cleanup.h"
#include "intern.h"
#include "record.h"

#define ULID_LEN 26
#define ULID_TIME_MAX ((UINT64_C(1) << 48) - 1)
#define ULID_RANDOM_BYTES 10
#define RECORD_ID_PREFIX "r_"

/* Bounds for the free-form strings of the on-disk form. Generous: their real
 * limits are enforced at submit (validate) and by HITL.sh; these only keep a
 * corrupted file from growing memory without bound. */
#define LOOP_ID_MAX 128
#define REMOTE_STATUS_MAX 32

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static const char *const request_state_table[_REQUEST_STATE_MAX] = {
	[REQUEST_QUEUED] = "queued",
	[REQUEST_SUBMITTING] = "submitting",
	[REQUEST_PENDING] = "pending",
	[REQUEST_COMPLETED] = "completed",
	[REQUEST_TIMEOUT] = "timeout",
	[REQUEST_CANCELLED] = "cancelled",
	[REQUEST_FAILED] = "failed",
};

static const char *const record_kind_table[_RECORD_KIND_MAX] = {
	[RECORD_REQUEST] = "request",
	[RECORD_TRIGGER] = "trigger",
};

static const char *const priority_table[_PRIORITY_MAX] = {
	[PRIORITY_LOW] = "low",
	[PRIORITY_MEDIUM] = "medium",
	[PRIORITY_HIGH] = "high",
	[PRIORITY_CRITICAL] = "critical",
};

static const char *const result_source_table[_RESULT_SOURCE_MAX] = {
	[RESULT_NONE] = "none",
	[RESULT_REVIEWER] = "reviewer",
	[RESULT_DEFAULT] = "default",
	[RESULT_UNSENT] = "unsent",
};

static const char *const feedback_state_table[_FEEDBACK_STATE_MAX] = {
	[FEEDBACK_NONE] = "none",
	[FEEDBACK_QUEUED] = "queued",
	[FEEDBACK_SENT] = "sent",
	[FEEDBACK_FAILED] = "failed",
};

static const char *table_to_string(const char *const *table, size_t n, int v) {
	if (v < 0 || (size_t) v >= n)
		return NULL;
	return table[v];
}

static int table_from_string(const char *const *table, size_t n, const char *s) {
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (streq(table[i], s))
			return (int) i;
	return -EINVAL;
}

const char *request_state_to_string(RequestState s) {
	return table_to_string(request_state_table, _REQUEST_STATE_MAX, s);
}

RequestState request_state_from_string(const char *s) {
	return table_from_string(request_state_table, _REQUEST_STATE_MAX, s);
}

const char *record_kind_to_string(RecordKind k) {
	return table_to_string(record_kind_table, _RECORD_KIND_MAX, k);
}

RecordKind record_kind_from_string(const char *s) {
	return table_from_string(record_kind_table, _RECORD_KIND_MAX, s);
}

const char *priority_to_string(Priority p) {
	return table_to_string(priority_table, _PRIORITY_MAX, p);
}

Priority priority_from_string(const char *s) {
	return table_from_string(priority_table, _PRIORITY_MAX, s);
}

const char *result_source_to_string(ResultSource s) {
	return table_to_string(result_source_table, _RESULT_SOURCE_MAX, s);
}

ResultSource result_source_from_string(const char *s) {
	return table_from_string(result_source_table, _RESULT_SOURCE_MAX, s);
}

const char *feedback_state_to_string(FeedbackState s) {
	return table_to_string(feedback_state_table, _FEEDBACK_STATE_MAX, s);
}

FeedbackState feedback_state_from_string(const char *s) {
	return table_from_string(feedback_state_table, _FEEDBACK_STATE_MAX, s);
}

Record *record_new(void) {
	Record *r = calloc(1, sizeof *r);

	if (!r)
		return NULL;
	r->kind = RECORD_REQUEST;
	r->state = REQUEST_QUEUED;
	r->priority = PRIORITY_MEDIUM;
	r->result_source = RESULT_NONE;
	r->feedback_state = FEEDBACK_NONE;
	return r;
}

Record *record_free(Record *r) {
	if (!r)
		return NULL;
	free(r->client_ref);
	intern_unref(r->loop_id);
	free(r->remote_id);
	free(r->remote_status);
	json_object_put(r->params);
	json_object_put(r->response);
	json_object_put(r->result);
	json_object_put(r->feedback);
	json_object_put(r->error);
	free(r->protocol_text);
	if (r->callback_token)
		explicit_bzero(r->callback_token, strlen(r->callback_token));
	free(r->callback_token);
	free(r);
	return NULL;
}

/* ---- ids ---------------------------------------------------------------- */

/* ULID monotonicity state. hitld is single-threaded (one sd-event loop), so
 * plain statics are enough. */
static bool ulid_have_last;
static uint64_t ulid_last_ms;
static uint8_t ulid_last_random[ULID_RANDOM_BYTES];

static int random_bytes(void *buf, size_t len) {
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		p += n;
		len -= (size_t) n;
	}
	return 0;
}

/* Adds one to a big-endian number; false when it wraps around. */
static bool increment_be(uint8_t *v, size_t len) {
	for (size_t i = len; i > 0; i--)
		if (++v[i - 1] != 0)
			return true;
	return false;
}

int record_make_id(usec_t now, char ret[static RECORD_ID_MAX]) {
	uint64_t ms = now / USEC_PER_MSEC;
	uint8_t random[ULID_RANDOM_BYTES];
	uint8_t value[6 + ULID_RANDOM_BYTES];
	char *p;
	int r;

	if (ms > ULID_TIME_MAX)
		return -ERANGE;

	if (ulid_have_last && ms == ulid_last_ms) {
		/* Same millisecond: the ULID spec's monotonic mode, so ids made
		 * within one millisecond still sort in creation order. */
		memcpy(random, ulid_last_random, sizeof random);
		if (!increment_be(random, sizeof random))
			return -EOVERFLOW;
	} else {
		r = random_bytes(random, sizeof random);
		if (r < 0)
			return r;
	}

	for (size_t i = 0; i < 6; i++)
		value[i] = (uint8_t) (ms >> (8 * (5 - i)));
	memcpy(value + 6, random, sizeof random);

	/* 128 bits as 26 base32 digits: the 130-bit string has two leading
	 * zero bits, so the first digit is 0..7. */
	memcpy(ret, RECORD_ID_PREFIX, strlen(RECORD_ID_PREFIX));
	p = ret + strlen(RECORD_ID_PREFIX);
	for (size_t c = 0; c < ULID_LEN; c++) {
		unsigned digit = 0;

		for (size_t b = 0; b < 5; b++) {
			size_t bit = c * 5 + b; /* position in the 130-bit string */
			unsigned v = 0;

			if (bit >= 2) {
				size_t k = bit - 2;
				v = (value[k / 8] >> (7 - k % 8)) & 1;
			}
			digit = (digit << 1) | v;
		}
		p[c] = crockford[digit];
	}
	p[ULID_LEN] = '\0';

	ulid_have_last = true;
	ulid_last_ms = ms;
	memcpy(ulid_last_random, random, sizeof random);
	return 0;
}

bool record_id_is_valid(const char *s) {
	size_t plen = strlen(RECORD_ID_PREFIX);

	if (!s || strncmp(s, RECORD_ID_PREFIX, plen) != 0)
		return false;
	s += plen;
	if (strlen(s) != ULID_LEN)
		return false;
	if (s[0] < '0' || s[0] > '7')
		return false;
	for (size_t i = 0; i < ULID_LEN; i++)
		if (!strchr(crockford, s[i]) || s[i] == '\0')
			return false;
	return true;
}

static bool remote_id_is_valid(const char *s) {
	if (strlen(s) != REMOTE_ID_LEN)
		return false;
	for (size_t i = 0; i < REMOTE_ID_LEN; i++)
		if (!strchr("0123456789abcdefABCDEF", s[i]))
			return false;
	return true;
}

static bool remote_status_is_valid(const char *s) {
	/* Shape only: a status HITL.sh adds later must not make records
	 * unreadable. */
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || *p == '_' || *p == '-'))
			return false;
	return true;
}

/* ---- building JSON -------------------------------------------------------- */

/* Every key here is a string constant, added once to a new object: json-c
 * need neither copy it nor look for an earlier one (both showed in the
 * submit profile). */
#define ADD_FLAGS (JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_KEY_IS_CONSTANT)

/* Adds v (owned; NULL means allocation failed) under key. */
static int add_owned(json_object *o, const char *key, json_object *v) {
	if (!v)
		return -ENOMEM;
	if (json_object_object_add_ex(o, key, v, ADD_FLAGS) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int add_null(json_object *o, const char *key) {
	return json_object_object_add_ex(o, key, NULL, ADD_FLAGS) < 0 ? -ENOMEM : 0;
}

static int add_string(json_object *o, const char *key, const char *s) {
	if (!s)
		return add_null(o, key);
	return add_owned(o, key, json_object_new_string(s));
}

static int add_int(json_object *o, const char *key, int64_t v) {
	return add_owned(o, key, json_object_new_int64(v));
}

static int add_bool(json_object *o, const char *key, bool v) {
	return add_owned(o, key, json_object_new_boolean(v));
}

/* Adds a deep copy of v (NULL: JSON null). */
static int add_copy(json_object *o, const char *key, json_object *v) {
	json_object *copy = NULL;

	if (!v)
		return add_null(o, key);
	if (json_object_deep_copy(v, &copy, NULL) < 0)
		return -ENOMEM;
	return add_owned(o, key, copy);
}

/* Adds v itself (a reference; NULL: JSON null): for a tree that is only
 * serialised and dropped, never changed. */
static int add_shared(json_object *o, const char *key, json_object *v) {
	if (!v)
		return add_null(o, key);
	return add_owned(o, key, json_object_get(v));
}

static int add_usec(json_object *o, const char *key, usec_t t) {
	/* Stored as a JSON integer: must fit int64. */
	if (t > (usec_t) INT64_MAX)
		return -ERANGE;
	return add_int(o, key, (int64_t) t);
}

static int add_iso8601(json_object *o, const char *key, usec_t t) {
	char buf[ISO8601_MAX];

	if (t == 0)
		return add_null(o, key);
	return add_string(o, key, format_iso8601(t, buf));
}

/* Only valid enum values are written: record_from_json must read back
 * everything record_to_json writes. */
static int add_enum(json_object *o, const char *key, const char *s) {
	if (!s)
		return -EINVAL;
	return add_string(o, key, s);
}

/* result_source, cancel_requested and feedback_state, shared by both forms:
 * "none" is written as null. */
static int add_outcome(json_object *o, const Record *r) {
	int k;

	k = r->result_source == RESULT_NONE
	            ? add_null(o, "result_source")
	            : add_enum(o, "result_source", result_source_to_string(r->result_source));
	if (k >= 0)
		k = add_bool(o, "cancel_requested", r->cancel_requested);
	if (k >= 0)
		k = r->feedback_state == FEEDBACK_NONE
		            ? add_null(o, "feedback_state")
		            : add_enum(o, "feedback_state", feedback_state_to_string(r->feedback_state));
	return k;
}

static int to_json(const Record *r, bool with_params, json_object **ret) {
	_cleanup_(json_object_putp) json_object *j = NULL;
	/* The meta form only feeds the outbox log's text: share, not copy. */
	int (*add_tree)(json_object *, const char *, json_object *) = with_params ? add_copy : add_shared;
	int k = 0;

	if (!r || !ret)
		return -EINVAL;
	if (r->seq > (uint64_t) INT64_MAX)
		return -ERANGE;

	j = json_object_new_object();
	if (!j)
		return -ENOMEM;

	if ((k = add_int(j, "version", RECORD_FORMAT_VERSION)) < 0 ||
	    (k = add_string(j, "id", r->id)) < 0 ||
	    (k = add_int(j, "seq", (int64_t) r->seq)) < 0 ||
	    (k = add_string(j, "client_ref", r->client_ref)) < 0 ||
	    (k = add_int(j, "owner_uid", (int64_t) r->owner_uid)) < 0 ||
	    /* Only a trigger says its kind: a request's form stays what every
	     * hitld wrote, and an older one quarantines a trigger rather than
	     * taking it for a request. */
	    (r->kind != RECORD_REQUEST && (k = add_enum(j, "kind", record_kind_to_string(r->kind))) < 0) ||
	    (k = add_enum(j, "state", request_state_to_string(r->state))) < 0 ||
	    (k = add_enum(j, "priority", priority_to_string(r->priority))) < 0 ||
	    (k = add_string(j, "loop_id", r->loop_id)) < 0 ||
	    (with_params && (k = add_copy(j, "params", r->params)) < 0) ||
	    (k = add_usec(j, "created_at", r->created_at)) < 0 ||
	    (k = add_usec(j, "updated_at", r->updated_at)) < 0 ||
	    (k = add_usec(j, "submitted_at", r->submitted_at)) < 0 ||
	    (k = add_usec(j, "deadline_at", r->deadline_at)) < 0 ||
	    (k = add_usec(j, "next_attempt_at", r->next_attempt_at)) < 0 ||
	    (k = add_string(j, "remote_id", r->remote_id)) < 0 ||
	    (k = add_string(j, "remote_status", r->remote_status)) < 0 ||
	    (k = add_tree(j, "response", r->response)) < 0 ||
	    (k = add_tree(j, "result", r->result)) < 0)
		return k;

	k = add_outcome(j, r);
	if (k < 0)
		return k;

	if ((k = add_tree(j, "feedback", r->feedback)) < 0 ||
	    (k = add_int(j, "attempts", (int64_t) r->attempts)) < 0 ||
	    (k = add_tree(j, "error", r->error)) < 0 ||
	    /* Only when set: a record without one is what every hitld wrote. */
	    (r->callback_token && (k = add_string(j, "callback_token", r->callback_token)) < 0))
		return k;

	*ret = TAKE_PTR(j);
	return 0;
}

int record_to_json(const Record *r, json_object **ret) {
	return to_json(r, true, ret);
}

int record_to_json_meta(const Record *r, json_object **ret) {
	return to_json(r, false, ret);
}

/* ---- parsing the on-disk form ---------------------------------------------- */

/* Only counted (from_json), never looked through: a list of what the form
 * holds, besides "kind", which only a trigger has, and "callback_token",
 * which only a request given a callback URL by hitld has. */
static const char *const record_keys[] _unused_ = {
	"version", "id", "seq", "client_ref", "owner_uid", "state", "priority", "loop_id",
	"params", "created_at", "updated_at", "submitted_at", "deadline_at", "next_attempt_at",
	"remote_id", "remote_status", "response", "result", "result_source", "cancel_requested",
	"feedback_state", "feedback", "attempts", "error",
};


/* Looks up a key that must be present, of the given type or (if nullable)
 * null. *ret is NULL for null. */
static int get_field(json_object *j, const char *key, json_type type, bool nullable,
                     json_object **ret) {
	json_object *v;

	if (!json_object_object_get_ex(j, key, &v))
		return -EBADMSG;
	if (!v) {
		if (!nullable)
			return -EBADMSG;
	} else if (!json_object_is_type(v, type))
		return -EBADMSG;
	*ret = v;
	return 0;
}

static int get_int(json_object *j, const char *key, int64_t min, int64_t max, int64_t *ret) {
	json_object *v;
	int64_t i;
	int k;

	k = get_field(j, key, json_type_int, false, &v);
	if (k < 0)
		return k;
	/* json-c saturates numbers outside int64 to INT64_MIN/MAX; they are
	 * never in range here. */
	errno = 0;
	i = json_object_get_int64(v);
	if (errno != 0 || i < min || i > max)
		return -EBADMSG;
	*ret = i;
	return 0;
}

static int get_usec(json_object *j, const char *key, usec_t *ret) {
	int64_t i;
	int k = get_int(j, key, 0, INT64_MAX - 1, &i);

	if (k < 0)
		return k;
	*ret = (usec_t) i;
	return 0;
}

/* A string of min..max bytes without embedded NULs; NULL for null if nullable. */
static int get_string(json_object *j, const char *key, bool nullable, size_t min, size_t max,
                      const char **ret) {
	json_object *v;
	const char *s;
	size_t len;
	int k;

	k = get_field(j, key, json_type_string, nullable, &v);
	if (k < 0)
		return k;
	if (!v) {
		*ret = NULL;
		return 0;
	}
	s = json_object_get_string(v);
	len = (size_t) json_object_get_string_len(v);
	if (!s || strlen(s) != len || len < min || len > max)
		return -EBADMSG;
	*ret = s;
	return 0;
}

static int dup_string(const char *s, char **ret) {
	char *copy;

	if (!s) {
		*ret = NULL;
		return 0;
	}
	copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	*ret = copy;
	return 0;
}

/* A deep copy of a field that must be present and of the given type (or
 * null when nullable). type json_type_null means "any type". */
static int get_copy(json_object *j, const char *key, json_type type, bool nullable,
                    json_object **ret) {
	json_object *v, *copy = NULL;
	int k;

	if (type == json_type_null) {
		if (!json_object_object_get_ex(j, key, &v))
			return -EBADMSG;
	} else {
		k = get_field(j, key, type, nullable, &v);
		if (k < 0)
			return k;
	}
	if (v && json_object_deep_copy(v, &copy, NULL) < 0)
		return -ENOMEM;
	*ret = copy;
	return 0;
}

static int get_enum(json_object *j, const char *key, bool nullable,
                    int (*from_string)(const char *s), int none, int *ret) {
	const char *s;
	int k, v;

	k = get_string(j, key, nullable, 1, 64, &s);
	if (k < 0)
		return k;
	if (!s) {
		*ret = none;
		return 0;
	}
	v = from_string(s);
	if (v < 0)
		return -EBADMSG;
	*ret = v;
	return 0;
}

static int state_from_string(const char *s) {
	return request_state_from_string(s);
}

static int kind_from_string(const char *s) {
	return record_kind_from_string(s);
}

static int prio_from_string(const char *s) {
	return priority_from_string(s);
}

static int source_from_string(const char *s) {
	return result_source_from_string(s);
}

static int feedback_from_string(const char *s) {
	return feedback_state_from_string(s);
}

/* params must be an object carrying at least loop_id, request_text and
 * response_type as strings; loop_id and (when present) priority must agree
 * with the record's copies. */
static int check_params(json_object *params, RecordKind kind, const char *loop_id, Priority priority) {
	const char *s;
	json_object *v;
	int k;

	if (kind == RECORD_TRIGGER) {
		/* A trigger: {workflow_id, data?, priority?}; loop_id holds the workflow. */
		k = get_string(params, "workflow_id", false, 1, LOOP_ID_MAX, &s);
		if (k < 0)
			return k;
		if (!streq(s, loop_id) || json_object_object_get_ex(params, "request_text", NULL))
			return -EBADMSG;
		if (json_object_object_get_ex(params, "data", &v) && !json_object_is_type(v, json_type_object))
			return -EBADMSG;
		goto priority;
	}

	k = get_string(params, "loop_id", false, 1, LOOP_ID_MAX, &s);
	if (k < 0)
		return k;
	if (!streq(s, loop_id))
		return -EBADMSG;
	k = get_string(params, "request_text", false, 0, SIZE_MAX, &s);
	if (k < 0)
		return k;
	k = get_string(params, "response_type", false, 1, SIZE_MAX, &s);
	if (k < 0)
		return k;
priority:
	if (json_object_object_get_ex(params, "priority", &v)) {
		if (!json_object_is_type(v, json_type_string) ||
		    priority_from_string(json_object_get_string(v)) != priority)
			return -EBADMSG;
	}
	return 0;
}

/* callback.h's token: 64 lowercase hex digits (checked here too, so that
 * the record module stands alone). */
#define CALLBACK_TOKEN_LEN 64
static bool token_is_valid(const char *s) {
	return s && strlen(s) == CALLBACK_TOKEN_LEN && strspn(s, "0123456789abcdef") == CALLBACK_TOKEN_LEN;
}

/* from_json()'s first part: what the record is and whose (version, id, seq,
 * client_ref, owner_uid, kind, state, priority, loop_id, params). */
static int from_json_identity(json_object *j, bool with_params, bool has_kind, Record *r) {
	const char *s;
	int64_t i;
	int k, e;
	json_object *v;

	k = get_int(j, "version", 0, INT64_MAX, &i);
	if (k < 0)
		return k;
	if (i != RECORD_FORMAT_VERSION)
		return -EBADMSG;

	k = get_string(j, "id", false, 1, RECORD_ID_MAX - 1, &s);
	if (k < 0)
		return k;
	if (!record_id_is_valid(s))
		return -EBADMSG;
	strcpy(r->id, s);

	k = get_int(j, "seq", 0, INT64_MAX - 1, &i);
	if (k < 0)
		return k;
	r->seq = (uint64_t) i;

	k = get_string(j, "client_ref", true, 1, CLIENT_REF_MAX, &s);
	if (k < 0)
		return k;
	if ((k = dup_string(s, &r->client_ref)) < 0)
		return k;

	k = get_int(j, "owner_uid", 0, (int64_t) UINT32_MAX - 1, &i);
	if (k < 0)
		return k;
	r->owner_uid = (uid_t) i;

	if (has_kind) {
		/* Written only for a trigger: "request" spelled out is not ours. */
		if ((k = get_enum(j, "kind", false, kind_from_string, 0, &e)) < 0)
			return k;
		if (e == RECORD_REQUEST)
			return -EBADMSG;
		r->kind = e;
	}
	if ((k = get_enum(j, "state", false, state_from_string, 0, &e)) < 0)
		return k;
	r->state = e;
	if ((k = get_enum(j, "priority", false, prio_from_string, 0, &e)) < 0)
		return k;
	r->priority = e;

	k = get_string(j, "loop_id", false, 1, LOOP_ID_MAX, &s);
	if (k < 0)
		return k;
	if ((k = intern_string(s, &r->loop_id)) < 0)
		return k;

	if (with_params) {
		k = get_field(j, "params", json_type_object, false, &v);
		if (k < 0)
			return k;
		k = check_params(v, r->kind, r->loop_id, r->priority);
		if (k < 0)
			return k;
		if ((k = get_copy(j, "params", json_type_object, false, &r->params)) < 0)
			return k;
	}
	return 0;
}

/* The callback token, written only when set (absent in every older record). */
static int from_json_token(json_object *j, Record *r) {
	const char *s;
	int k;

	if (!json_object_object_get_ex(j, "callback_token", NULL))
		return 0;
	k = get_string(j, "callback_token", false, CALLBACK_TOKEN_LEN, CALLBACK_TOKEN_LEN, &s);
	if (k < 0)
		return k;
	if (!token_is_valid(s))
		return -EBADMSG;
	return dup_string(s, &r->callback_token);
}

/* from_json()'s second part: its times, what HITL.sh said and what came of it. */
static int from_json_outcome(json_object *j, Record *r) {
	const char *s;
	int64_t i;
	int k, e;
	json_object *v;

	if ((k = get_usec(j, "created_at", &r->created_at)) < 0 ||
	    (k = get_usec(j, "updated_at", &r->updated_at)) < 0 ||
	    (k = get_usec(j, "submitted_at", &r->submitted_at)) < 0 ||
	    (k = get_usec(j, "deadline_at", &r->deadline_at)) < 0 ||
	    (k = get_usec(j, "next_attempt_at", &r->next_attempt_at)) < 0)
		return k;

	k = get_string(j, "remote_id", true, REMOTE_ID_LEN, REMOTE_ID_LEN, &s);
	if (k < 0)
		return k;
	if (s && !remote_id_is_valid(s))
		return -EBADMSG;
	if ((k = dup_string(s, &r->remote_id)) < 0)
		return k;

	k = get_string(j, "remote_status", true, 1, REMOTE_STATUS_MAX, &s);
	if (k < 0)
		return k;
	if (s && !remote_status_is_valid(s))
		return -EBADMSG;
	if ((k = dup_string(s, &r->remote_status)) < 0)
		return k;

	if ((k = get_copy(j, "response", json_type_object, true, &r->response)) < 0 ||
	    (k = get_copy(j, "result", json_type_null, true, &r->result)) < 0)
		return k;

	if ((k = get_enum(j, "result_source", true, source_from_string, RESULT_NONE, &e)) < 0)
		return k;
	r->result_source = e;

	k = get_field(j, "cancel_requested", json_type_boolean, false, &v);
	if (k < 0)
		return k;
	r->cancel_requested = json_object_get_boolean(v);

	if ((k = get_enum(j, "feedback_state", true, feedback_from_string, FEEDBACK_NONE, &e)) < 0)
		return k;
	r->feedback_state = e;

	if ((k = get_copy(j, "feedback", json_type_object, true, &r->feedback)) < 0)
		return k;

	k = get_int(j, "attempts", 0, UINT_MAX, &i);
	if (k < 0)
		return k;
	r->attempts = (unsigned) i;

	if ((k = get_copy(j, "error", json_type_object, true, &r->error)) < 0)
		return k;
	return from_json_token(j, r);
}

static int from_json(json_object *j, bool with_params, Record **ret) {
	_cleanup_(record_freep) Record *r = NULL;
	bool has_kind, has_token;
	int k;

	if (!ret)
		return -EINVAL;
	if (!json_object_is_type(j, json_type_object))
		return -EBADMSG;
	has_kind = json_object_object_get_ex(j, "kind", NULL);
	has_token = json_object_object_get_ex(j, "callback_token", NULL);

	/* Every key known, every key present: a file that is not exactly what
	 * record_to_json writes is not ours to guess about. Each field below
	 * must be present, so the right count means no unknown key (and costs
	 * nothing, where a name check per key showed in start-up profiles). */
	if (json_object_object_length(j) != (int) ELEMENTSOF(record_keys) - (with_params ? 0 : 1) + has_kind + has_token)
		return -EBADMSG;
	if (!with_params && json_object_object_get_ex(j, "params", NULL))
		return -EBADMSG;

	r = record_new();
	if (!r)
		return -ENOMEM;

	k = from_json_identity(j, with_params, has_kind, r);
	if (k < 0)
		return k;
	k = from_json_outcome(j, r);
	if (k < 0)
		return k;

	*ret = TAKE_PTR(r);
	return 0;
}

int record_from_json(json_object *j, Record **ret) {
	return from_json(j, true, ret);
}

int record_from_json_meta(json_object *j, Record **ret) {
	return from_json(j, false, ret);
}

static int copy_json(json_object *v, json_object **ret) {
	*ret = NULL;
	return v && json_object_deep_copy(v, ret, NULL) < 0 ? -ENOMEM : 0;
}

int record_copy(const Record *r, Record **ret) {
	_cleanup_(record_freep) Record *c = NULL;

	if (!r || !ret)
		return -EINVAL;
	c = malloc(sizeof *c);
	if (!c)
		return -ENOMEM;
	*c = *r;
	/* Nothing of r's is shared until every copy below is made, but the interned
	 * loop_id, which holds one more reference (c's free drops it). */
	c->loop_id = intern_ref(r->loop_id);
	c->client_ref = c->remote_id = c->remote_status = c->callback_token = NULL;
	c->protocol_text = NULL;
	c->params = c->response = c->result = c->feedback = c->error = NULL;
	if (dup_string(r->client_ref, &c->client_ref) < 0 || dup_string(r->remote_id, &c->remote_id) < 0 ||
	    dup_string(r->remote_status, &c->remote_status) < 0 ||
	    dup_string(r->callback_token, &c->callback_token) < 0 || copy_json(r->params, &c->params) < 0 ||
	    copy_json(r->response, &c->response) < 0 || copy_json(r->result, &c->result) < 0 ||
	    copy_json(r->feedback, &c->feedback) < 0 || copy_json(r->error, &c->error) < 0)
		return -ENOMEM;
	*ret = TAKE_PTR(c);
	return 0;
}

int record_check(const Record *r) {
	size_t n;

	if (!r || !record_id_is_valid(r->id))
		return -EINVAL;
	if (r->seq > (uint64_t) INT64_MAX - 1 || r->owner_uid == (uid_t) -1)
		return -EINVAL;
	if (r->kind < 0 || r->kind >= _RECORD_KIND_MAX || r->state < 0 || r->state >= _REQUEST_STATE_MAX || r->priority < 0 ||
	    r->priority >= _PRIORITY_MAX || r->result_source < 0 ||
	    r->result_source >= _RESULT_SOURCE_MAX || r->feedback_state < 0 ||
	    r->feedback_state >= _FEEDBACK_STATE_MAX)
		return -EINVAL;
	if (!r->loop_id || (n = strlen(r->loop_id)) < 1 || n > LOOP_ID_MAX)
		return -EINVAL;
	if (r->client_ref && ((n = strlen(r->client_ref)) < 1 || n > CLIENT_REF_MAX))
		return -EINVAL;
	if (r->remote_id && !remote_id_is_valid(r->remote_id))
		return -EINVAL;
	if (r->callback_token && !token_is_valid(r->callback_token))
		return -EINVAL;
	if (r->remote_status && ((n = strlen(r->remote_status)) < 1 || n > REMOTE_STATUS_MAX ||
	                          !remote_status_is_valid(r->remote_status)))
		return -EINVAL;
	if ((r->response && !json_object_is_type(r->response, json_type_object)) ||
	    (r->feedback && !json_object_is_type(r->feedback, json_type_object)) ||
	    (r->error && !json_object_is_type(r->error, json_type_object)))
		return -EINVAL;
	for (size_t i = 0; i < 5; i++) {
		const usec_t t[] = { r->created_at, r->updated_at, r->submitted_at, r->deadline_at,
		                     r->next_attempt_at };

		if (t[i] > (usec_t) INT64_MAX - 1)
			return -EINVAL;
	}
	return record_check_params(r, r->params) < 0 ? -EINVAL : 0;
}

int record_check_params(const Record *r, json_object *params) {
	if (!r || !json_object_is_type(params, json_type_object))
		return -EBADMSG;
	return check_params(params, r->kind, r->loop_id, r->priority);
}

/* ---- client form ------------------------------------------------------------ */

/* The params fields shown flat in the protocol record, besides loop_id and
 * priority which come from the record's own copies. */
static const char *const protocol_param_keys[] = {
	"processing_type", "type", "request_text", "image_url", "file_url", "file_type",
	"file_name", "video_url", "audio_url", "response_type", "response_config",
	"default_response", "timeout_seconds", "context", "callback_url", "platform",
	"platform_version",
};

int record_to_protocol(const Record *r, json_object **ret) {
	_cleanup_(json_object_putp) json_object *j = NULL;
	int k;

	if (!r || !ret)
		return -EINVAL;

	j = json_object_new_object();
	if (!j)
		return -ENOMEM;

	if ((k = add_string(j, "id", r->id)) < 0 ||
	    (k = add_enum(j, "kind", record_kind_to_string(r->kind))) < 0 ||
	    (k = add_string(j, "client_ref", r->client_ref)) < 0 ||
	    (k = add_int(j, "owner_uid", (int64_t) r->owner_uid)) < 0 ||
	    (k = add_enum(j, "state", request_state_to_string(r->state))) < 0 ||
	    (k = add_string(j, "remote_id", r->remote_id)) < 0 ||
	    (k = add_string(j, "remote_status", r->remote_status)) < 0 ||
	    (k = add_string(j, "loop_id", r->kind == RECORD_TRIGGER ? NULL : r->loop_id)) < 0 ||
	    (k = add_enum(j, "priority", priority_to_string(r->priority))) < 0)
		return k;

	if (r->kind == RECORD_TRIGGER) {
		json_object *data = NULL, *exec = NULL;

		if (r->params)
			(void) json_object_object_get_ex(r->params, "data", &data);
		if (r->result)
			(void) json_object_object_get_ex(r->result, "execution_id", &exec);
		if ((k = add_string(j, "workflow_id", r->loop_id)) < 0 ||
		    (k = add_copy(j, "data", data)) < 0 ||
		    (k = add_copy(j, "execution_id", exec)) < 0)
			return k;
	}

	for (size_t i = 0; i < ELEMENTSOF(protocol_param_keys); i++) {
		json_object *v = NULL;

		if (r->params)
			(void) json_object_object_get_ex(r->params, protocol_param_keys[i], &v);
		if ((k = add_copy(j, protocol_param_keys[i], v)) < 0)
			return k;
	}

	if ((k = add_iso8601(j, "created_at", r->created_at)) < 0 ||
	    (k = add_iso8601(j, "submitted_at", r->submitted_at)) < 0 ||
	    (k = add_iso8601(j, "deadline_at", r->deadline_at)) < 0 ||
	    (k = add_iso8601(j, "updated_at", r->updated_at)) < 0 ||
	    (k = add_copy(j, "response", r->response)) < 0 ||
	    (k = add_copy(j, "result", r->result)) < 0)
		return k;

	k = add_outcome(j, r);
	if (k < 0)
		return k;

	if ((k = add_int(j, "attempts", (int64_t) r->attempts)) < 0 ||
	    (k = add_iso8601(j, "next_attempt_at", r->next_attempt_at)) < 0 ||
	    (k = add_copy(j, "error", r->error)) < 0)
		return k;

	*ret = TAKE_PTR(j);
	return 0;
}
