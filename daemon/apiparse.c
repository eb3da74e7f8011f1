/* apiparse.c — see apiparse.h. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>

#include "apiparse.h"
#include "cleanup.h"

#define APIPARSE_JSON_DEPTH 32

typedef enum RateHeader {
	RATE_HEADER_LIMIT,
	RATE_HEADER_REMAINING,
	RATE_HEADER_RESET,
	RATE_HEADER_DATE,
	RATE_HEADER_RETRY_AFTER,
	_RATE_HEADER_MAX,
	_RATE_HEADER_INVALID = -EINVAL,
} RateHeader;

static const char *const rate_header_names[_RATE_HEADER_MAX] = {
	[RATE_HEADER_LIMIT] = "X-RateLimit-Limit",
	[RATE_HEADER_REMAINING] = "X-RateLimit-Remaining",
	[RATE_HEADER_RESET] = "X-RateLimit-Reset",
	[RATE_HEADER_DATE] = "Date",
	[RATE_HEADER_RETRY_AFTER] = "Retry-After",
};

static bool is_ows(char c) {
	return c == ' ' || c == '\t';
}

/* Which of our headers the line carries (by name), and where its value is,
 * trimmed of surrounding whitespace and the line ending. */
static RateHeader header_split(const char *line, size_t len, const char **ret_value,
                               size_t *ret_value_len) {
	const char *colon, *v, *end;

	if (!line)
		return _RATE_HEADER_INVALID;
	colon = memchr(line, ':', len);
	if (!colon)
		return _RATE_HEADER_INVALID;

	size_t name_len = (size_t) (colon - line);
	RateHeader which = _RATE_HEADER_INVALID;
	for (RateHeader h = 0; h < _RATE_HEADER_MAX; h++)
		if (strlen(rate_header_names[h]) == name_len &&
		    strncasecmp(line, rate_header_names[h], name_len) == 0) {
			which = h;
			break;
		}
	if (which < 0)
		return _RATE_HEADER_INVALID;

	v = colon + 1;
	end = line + len;
	while (v < end && is_ows(*v))
		v++;
	while (end > v && (is_ows(end[-1]) || end[-1] == '\r' || end[-1] == '\n'))
		end--;

	*ret_value = v;
	*ret_value_len = (size_t) (end - v);
	return which;
}

/* A plain decimal: digits only, no sign, no spaces, at most max. */
static int parse_decimal(const char *s, uint64_t max, uint64_t *ret) {
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		unsigned d = (unsigned) (*s - '0');
		if (v > (max - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

static int parse_http_date(const char *s, int64_t *ret) {
	time_t t;

	/* curl_getdate() reads RFC 7231 IMF-fixdate and the two obsolete forms
	 * (and is lenient beyond them); a bare number is not a date here. */
	if (!*s || strspn(s, "0123456789") == strlen(s))
		return -EINVAL;
	t = curl_getdate(s, NULL);
	if (t < 0 || (int64_t) t > APIPARSE_EPOCH_MAX)
		return -EINVAL;
	*ret = (int64_t) t;
	return 0;
}

bool apiparse_header_wanted(const char *line, size_t len) {
	const char *v;
	size_t vlen;

	return header_split(line, len, &v, &vlen) >= 0;
}

int apiparse_header_line(const char *line, size_t len, RateInfo *ri) {
	char value[APIPARSE_HEADER_VALUE_MAX + 1];
	const char *v;
	size_t vlen;
	uint64_t n;
	int64_t t;
	RateHeader which;

	if (!ri)
		return -EINVAL;
	which = header_split(line, len, &v, &vlen);
	if (which < 0)
		return 0;
	if (vlen == 0 || vlen > APIPARSE_HEADER_VALUE_MAX || memchr(v, '\0', vlen))
		return -EINVAL;
	memcpy(value, v, vlen);
	value[vlen] = '\0';

	switch (which) {
	case RATE_HEADER_LIMIT:
		if (parse_decimal(value, APIPARSE_COUNT_MAX, &n) < 0)
			return -EINVAL;
		ri->limit = (unsigned) n;
		ri->has_limit = true;
		return 1;

	case RATE_HEADER_REMAINING:
		if (parse_decimal(value, APIPARSE_COUNT_MAX, &n) < 0)
			return -EINVAL;
		ri->remaining = (unsigned) n;
		ri->has_remaining = true;
		return 1;

	case RATE_HEADER_RESET:
		if (parse_decimal(value, (uint64_t) APIPARSE_EPOCH_MAX, &n) < 0)
			return -EINVAL;
		ri->reset_epoch = (int64_t) n;
		ri->has_reset = true;
		return 1;

	case RATE_HEADER_DATE:
		if (parse_http_date(value, &t) < 0)
			return -EINVAL;
		ri->date_epoch = t;
		ri->has_date = true;
		return 1;

	case RATE_HEADER_RETRY_AFTER:
		if (value[0] >= '0' && value[0] <= '9') {
			if (parse_decimal(value, APIPARSE_RETRY_AFTER_MAX, &n) < 0)
				return -EINVAL;
		} else {
			/* An HTTP date means nothing without the server's "now". */
			if (!ri->has_date || parse_http_date(value, &t) < 0)
				return -EINVAL;
			if (t <= ri->date_epoch)
				n = 0;
			else if (t - ri->date_epoch > (int64_t) APIPARSE_RETRY_AFTER_MAX)
				return -EINVAL;
			else
				n = (uint64_t) (t - ri->date_epoch);
		}
		ri->retry_after_s = (unsigned) n;
		ri->has_retry_after = true;
		return 1;

	default:
		return 0;
	}
}

int apiparse_header_block(const char *block, size_t len, RateInfo *ri) {
	int stored = 0;

	if (!block || !ri)
		return 0;

	/* Pass 0 reads Date only, pass 1 everything else. */
	for (int pass = 0; pass < 2; pass++) {
		const char *p = block, *end = block + len;

		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t) (end - p));
			size_t line_len = nl ? (size_t) (nl - p) + 1 : (size_t) (end - p);
			const char *v;
			size_t vlen;
			RateHeader which = header_split(p, line_len, &v, &vlen);

			if (which >= 0 && (which == RATE_HEADER_DATE) == (pass == 0) &&
			    apiparse_header_line(p, line_len, ri) > 0)
				stored++;
			p += line_len;
		}
	}
	return stored;
}

int apiparse_json_object(const char *body, size_t len, int depth, json_object **ret) {
	_cleanup_(json_tokener_freep) json_tokener *tok = NULL;
	_cleanup_(json_object_putp) json_object *root = NULL;

	if (!body || len == 0 || len > INT_MAX || memchr(body, '\0', len))
		return -EBADMSG;
	tok = json_tokener_new_ex(depth);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, body, (int) len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success)
		return -EBADMSG;
	/* One document and nothing after it but whitespace. */
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
		if (!strchr(" \t\r\n", body[i]))
			return -EBADMSG;
	if (!json_object_is_type(root, json_type_object))
		return -EBADMSG;
	*ret = TAKE_PTR(root);
	return 0;
}

int apiparse_envelope(const char *body, size_t len, json_object **ret_root, bool *ret_error,
                      const char **ret_msg, json_object **ret_data) {
	_cleanup_(json_object_putp) json_object *root = NULL;
	json_object *error = NULL, *msg = NULL, *data = NULL;
	int k;

	k = apiparse_json_object(body, len, APIPARSE_JSON_DEPTH, &root);
	if (k < 0)
		return k;
	if (!json_object_object_get_ex(root, "error", &error) ||
	    !json_object_is_type(error, json_type_boolean))
		return -EBADMSG;
	if (json_object_object_get_ex(root, "msg", &msg) && msg &&
	    !json_object_is_type(msg, json_type_string))
		return -EBADMSG;
	(void) json_object_object_get_ex(root, "data", &data);

	*ret_error = json_object_get_boolean(error);
	*ret_msg = msg ? json_object_get_string(msg) : NULL;
	*ret_data = data;
	*ret_root = TAKE_PTR(root);
	return 0;
}

bool apiparse_id_is_valid(const char *s) {
	if (!s || strlen(s) != APIPARSE_ID_LEN)
		return false;
	return strspn(s, "0123456789abcdefABCDEF") == APIPARSE_ID_LEN;
}

/* The member as a string, or NULL if absent, null or of another type. */
static const char *member_string(json_object *obj, const char *key) {
	json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The words HITL.sh and its vendor material use, and what each means
 * (docs/HITL-API.md "Request status"). */
static const struct {
	const char *word, *status;
} status_words[] = {
	{ "pending", "pending" },     { "claimed", "claimed" },     { "completed", "completed" },
	{ "answered", "completed" },  { "resolved", "completed" },  { "timeout", "timeout" },
	{ "timed_out", "timeout" },   { "cancelled", "cancelled" }, { "canceled", "cancelled" },
	{ "failed", "failed" },
};

const char *apiparse_status_from_word(const char *word) {
	for (size_t i = 0; word && i < ELEMENTSOF(status_words); i++)
		if (streq(word, status_words[i].word))
			return status_words[i].status;
	return NULL;
}

bool apiparse_status_is_final(const char *status) {
	return streq_ptr(status, "completed") || streq_ptr(status, "timeout") || streq_ptr(status, "cancelled") ||
	       streq_ptr(status, "failed");
}

/* Copies the server's word for logs: printable ASCII, bounded, never empty. */
static void copy_raw_word(char *dst, size_t size, json_object *v) {
	const char *s;
	size_t n = 0;

	if (!v) {
		snprintf(dst, size, "(none)");
		return;
	}
	if (!json_object_is_type(v, json_type_string)) {
		snprintf(dst, size, "(%s)", json_type_to_name(json_object_get_type(v)));
		return;
	}
	s = json_object_get_string(v);
	for (size_t i = 0; s[i] && n + 1 < size; i++)
		dst[n++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	dst[n] = '\0';
	if (n == 0)
		snprintf(dst, size, "(empty)");
}

#define UNKNOWN_WORDS_MAX 16

bool apiparse_unknown_status_first_seen(const char *word) {
	static char seen[UNKNOWN_WORDS_MAX][APIPARSE_STATUS_WORD_MAX];
	static size_t n_seen;

	for (size_t i = 0; i < n_seen; i++)
		if (streq(seen[i], word))
			return false;
	/* Past the bound every further word is reported: a server inventing
	 * words without end deserves to be noticed, not hidden. */
	if (n_seen < UNKNOWN_WORDS_MAX)
		snprintf(seen[n_seen++], APIPARSE_STATUS_WORD_MAX, "%s", word);
	return true;
}

/* obj's own member wins; outer's (outer may be NULL) fills in. */
static json_object *member_or_outer(json_object *obj, json_object *outer, const char *key) {
	json_object *v = NULL;

	if (json_object_object_get_ex(obj, key, &v) || !outer)
		return v;
	(void) json_object_object_get_ex(outer, key, &v);
	return v;
}

static int parse_request(json_object *obj, json_object *outer, RemoteRequest *ret) {
	RemoteRequest rr = {};
	json_object *id = NULL, *v, *status_v;
	const char *status;

	if (!ret || !json_object_is_type(obj, json_type_object))
		return -EBADMSG;

	/* Create answers carry request_id (docs, n8n) or id (MCP script); request
	 * objects carry id. A request_id that is present but wrong is wrong. */
	if (!json_object_object_get_ex(obj, "request_id", &id) || !id)
		(void) json_object_object_get_ex(obj, "id", &id);
	if (!json_object_is_type(id, json_type_string) ||
	    !apiparse_id_is_valid(json_object_get_string(id)))
		return -EBADMSG;
	memcpy(rr.id, json_object_get_string(id), APIPARSE_ID_LEN + 1);

	rr.response_data = member_or_outer(obj, outer, "response_data"); /* JSON null is NULL already */

	/* Never drop an object over its status: an unknown word (or none) keeps
	 * the request pending, and an answer finishes one that is not final. */
	status_v = member_or_outer(obj, outer, "status");
	copy_raw_word(rr.raw_status, sizeof rr.raw_status, status_v);
	status = apiparse_status_from_word(json_object_is_type(status_v, json_type_string)
	                                           ? json_object_get_string(status_v) : NULL);
	if (!status) {
		rr.status_unknown = true;
		status = "pending";
	}
	if (rr.response_data && !apiparse_status_is_final(status))
		status = "completed";
	snprintf(rr.status, sizeof rr.status, "%s", status);

	if (json_object_object_get_ex(obj, "response_by", &v)) {
		if (json_object_is_type(v, json_type_string))
			rr.response_by = json_object_get_string(v);
		else if (json_object_is_type(v, json_type_object))
			rr.response_by = member_string(v, "user_id");
	}
	rr.response_at = member_string(obj, "response_at");
	rr.timeout_at = member_string(obj, "timeout_at");

	if (json_object_object_get_ex(obj, "response_time_seconds", &v) &&
	    (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int))) {
		double d = json_object_get_double(v);
		if (isfinite(d) && d >= 0) {
			rr.response_time_seconds = d;
			rr.has_response_time = true;
		}
	}

	if (json_object_object_get_ex(obj, "context", &v) && json_object_is_type(v, json_type_object))
		rr.context = v;

	*ret = rr;
	return 0;
}

int apiparse_remote_request(json_object *obj, RemoteRequest *ret) {
	return parse_request(obj, NULL, ret);
}

int apiparse_get_request(json_object *data, RemoteRequest *ret) {
	json_object *request;

	if (!json_object_is_type(data, json_type_object))
		return -EBADMSG;
	/* Nested as documented, with data's own status and response_data as a
	 * fallback (some examples read data.status); or flat: data is the request. */
	if (json_object_object_get_ex(data, "request", &request) && json_object_is_type(request, json_type_object))
		return parse_request(request, data, ret);
	return parse_request(data, NULL, ret);
}

/* 1 and *ret if key holds an integer in [0, APIPARSE_COUNT_MAX]; 0 if absent
 * or null; -EBADMSG for anything else. */
static int member_count(json_object *obj, const char *key, unsigned *ret) {
	json_object *v;
	int64_t n;

	if (!obj || !json_object_object_get_ex(obj, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return -EBADMSG;
	errno = 0;
	n = json_object_get_int64(v);
	if (errno != 0 || n < 0 || n > (int64_t) APIPARSE_COUNT_MAX)
		return -EBADMSG;
	*ret = (unsigned) n;
	return 1;
}

int apiparse_list(json_object *data, json_object **ret_requests, unsigned *ret_total,
                  bool *ret_has_more, unsigned *ret_next_offset) {
	json_object *requests, *pagination = NULL, *v;
	unsigned n_items, total = 0, offset = 0, next_offset = 0;
	bool has_more;
	int r;

	if (!json_object_is_type(data, json_type_object) ||
	    !json_object_object_get_ex(data, "requests", &requests) ||
	    !json_object_is_type(requests, json_type_array))
		return -EBADMSG;
	if (json_object_array_length(requests) > APIPARSE_COUNT_MAX)
		return -EBADMSG;
	n_items = (unsigned) json_object_array_length(requests);

	if (json_object_object_get_ex(data, "pagination", &pagination) && pagination &&
	    !json_object_is_type(pagination, json_type_object))
		return -EBADMSG;

	r = member_count(data, "total", &total);
	if (r == 0)
		r = member_count(data, "count", &total);
	if (r < 0)
		return r;
	if (r == 0)
		total = n_items;

	r = member_count(pagination, "offset", &offset);
	if (r < 0)
		return r;

	if (json_object_object_get_ex(data, "has_more", &v) && v) {
		if (!json_object_is_type(v, json_type_boolean))
			return -EBADMSG;
		has_more = json_object_get_boolean(v);
	} else
		has_more = (uint64_t) offset + n_items < total;

	if (has_more) {
		r = member_count(pagination, "next_offset", &next_offset);
		if (r < 0)
			return r;
		if (r == 0) {
			if ((uint64_t) offset + n_items > APIPARSE_COUNT_MAX)
				return -EBADMSG;
			next_offset = offset + n_items;
		}
		/* A page that does not move forward would be fetched forever. */
		if (next_offset <= offset)
			return -EBADMSG;
	}

	*ret_requests = requests;
	*ret_total = total;
	*ret_has_more = has_more;
	*ret_next_offset = has_more ? next_offset : 0;
	return 0;
}
