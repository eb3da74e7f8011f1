/* fuzz_apiparse.c — everything apiparse.c reads from HITL.sh, on arbitrary
 * bytes. The input is a header block, then a blank line, then a body (no blank
 * line: all of it is the body). Headers go through apiparse_header_block() and
 * line by line through apiparse_header_line(); the body through
 * apiparse_envelope() and, when that succeeds, its data through
 * apiparse_get_request(), apiparse_list() (and every list item) and
 * apiparse_remote_request(). Properties: no crash, no leak, bounds promised
 * by apiparse.h hold, out-parameters untouched on failure; every status word
 * (docs/HITL-API.md "Request status") gives one of six meanings, an unknown one
 * is flagged and reads as pending (or completed with an answer), and the
 * server's word is kept printable and bounded. */
#include <math.h>
#include <string.h>

#include "apiparse.h"
#include "cleanup.h"
#include "fuzz_common.h"

static const char *const statuses[] = { "pending", "claimed", "completed", "timeout", "cancelled", "failed" };

static void check_rate(const RateInfo *ri) {
	if (ri->has_limit)
		FUZZ_CHECK(ri->limit <= APIPARSE_COUNT_MAX, "limit %u", ri->limit);
	if (ri->has_remaining)
		FUZZ_CHECK(ri->remaining <= APIPARSE_COUNT_MAX, "remaining %u", ri->remaining);
	if (ri->has_reset)
		FUZZ_CHECK(ri->reset_epoch >= 0 && ri->reset_epoch <= APIPARSE_EPOCH_MAX, "reset %lld",
		           (long long) ri->reset_epoch);
	if (ri->has_date)
		FUZZ_CHECK(ri->date_epoch >= 0 && ri->date_epoch <= APIPARSE_EPOCH_MAX, "date %lld",
		           (long long) ri->date_epoch);
	if (ri->has_retry_after)
		FUZZ_CHECK(ri->retry_after_s <= APIPARSE_RETRY_AFTER_MAX, "retry_after %u", ri->retry_after_s);
	/* Fields without their has_ flag stay zero (the caller's RateInfo starts zeroed). */
	FUZZ_CHECK(ri->has_limit || ri->limit == 0, "limit set without has_limit");
	FUZZ_CHECK(ri->has_remaining || ri->remaining == 0, "remaining set without has_remaining");
	FUZZ_CHECK(ri->has_retry_after || ri->retry_after_s == 0, "retry_after set without has_retry_after");
}

static void check_request(json_object *obj) {
	RemoteRequest rr, untouched;
	bool status_ok = false;
	int k;

	memset(&rr, 0xA5, sizeof rr);
	untouched = rr;
	k = apiparse_remote_request(obj, &rr);
	if (k < 0) {
		FUZZ_CHECK(k == -EBADMSG, "apiparse_remote_request: unexpected error %d", k);
		FUZZ_CHECK(memcmp(&rr, &untouched, sizeof rr) == 0, "apiparse_remote_request wrote on failure");
		return;
	}
	FUZZ_CHECK(apiparse_id_is_valid(rr.id), "accepted id %.30s", rr.id);
	for (size_t i = 0; i < ELEMENTSOF(statuses); i++)
		if (streq(rr.status, statuses[i]))
			status_ok = true;
	FUZZ_CHECK(status_ok, "accepted status %.16s", rr.status);
	FUZZ_CHECK(strnlen(rr.raw_status, sizeof rr.raw_status) > 0 &&
	           strnlen(rr.raw_status, sizeof rr.raw_status) < sizeof rr.raw_status, "raw status not a bounded word");
	for (const char *c = rr.raw_status; *c; c++)
		FUZZ_CHECK(*c >= 0x20 && *c < 0x7f, "raw status not printable");
	if (rr.status_unknown)
		FUZZ_CHECK(streq(rr.status, rr.response_data ? "completed" : "pending"), "unknown word read as %s",
		           rr.status);
	else
		FUZZ_CHECK(streq_ptr(apiparse_status_from_word(rr.raw_status), rr.status) ||
		           (rr.response_data && streq(rr.status, "completed")), "word %s read as %s", rr.raw_status,
		           rr.status);
	if (rr.has_response_time)
		FUZZ_CHECK(isfinite(rr.response_time_seconds) && rr.response_time_seconds >= 0,
		           "response_time_seconds %g", rr.response_time_seconds);
	/* Borrowed strings must be readable. */
	if (rr.response_by)
		(void) strlen(rr.response_by);
	if (rr.response_at)
		(void) strlen(rr.response_at);
	if (rr.timeout_at)
		(void) strlen(rr.timeout_at);
	if (rr.context)
		FUZZ_CHECK(json_object_is_type(rr.context, json_type_object), "context not an object");
}

static void check_list(json_object *data) {
	json_object *requests = (json_object *) 0x1;
	unsigned total = 77, next_offset = 77;
	bool has_more = true;
	int k;

	k = apiparse_list(data, &requests, &total, &has_more, &next_offset);
	if (k < 0) {
		FUZZ_CHECK(k == -EBADMSG, "apiparse_list: unexpected error %d", k);
		FUZZ_CHECK(requests == (json_object *) 0x1 && total == 77 && next_offset == 77 && has_more,
		           "apiparse_list wrote on failure");
		return;
	}
	FUZZ_CHECK(json_object_is_type(requests, json_type_array), "requests not an array");
	FUZZ_CHECK(total <= APIPARSE_COUNT_MAX, "total %u", total);
	if (has_more)
		FUZZ_CHECK(next_offset > 0 && next_offset <= APIPARSE_COUNT_MAX, "next_offset %u", next_offset);
	else
		FUZZ_CHECK(next_offset == 0, "next_offset %u without has_more", next_offset);
	for (size_t i = 0; i < json_object_array_length(requests); i++)
		check_request(json_object_array_get_idx(requests, i));
}

static void check_body(const char *body, size_t len) {
	_cleanup_(json_object_putp) json_object *root = NULL;
	json_object *data = NULL, *request;
	const char *msg = NULL;
	bool error = false;
	RemoteRequest rr;
	int k;

	k = apiparse_envelope(body, len, &root, &error, &msg, &data);
	if (k < 0) {
		FUZZ_CHECK(k == -EBADMSG || k == -ENOMEM, "apiparse_envelope: unexpected error %d", k);
		FUZZ_CHECK(!root && !msg && !data && !error, "apiparse_envelope wrote on failure");
		return;
	}
	FUZZ_CHECK(json_object_is_type(root, json_type_object), "envelope root not an object");
	if (msg)
		(void) strlen(msg);
	if (!data)
		return;

	check_list(data);
	check_request(data);
	if (apiparse_get_request(data, &rr) >= 0) {
		/* Nested or flat, the id comes from the request object. */
		if (!json_object_object_get_ex(data, "request", &request) || !json_object_is_type(request, json_type_object))
			request = data;
		FUZZ_CHECK(apiparse_id_is_valid(rr.id), "get_request accepted id %.30s", rr.id);
		check_request(request);
	}
}

static void check_headers(const char *block, size_t len) {
	RateInfo whole = {}, by_line = {};
	const char *p = block, *end = block + len;
	int n;

	n = apiparse_header_block(block, len, &whole);
	FUZZ_CHECK(n >= 0, "apiparse_header_block returned %d", n);
	check_rate(&whole);

	/* Line by line, in input order: each call's own promises hold too. */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t) (end - p));
		size_t line_len = nl ? (size_t) (nl - p) + 1 : (size_t) (end - p);
		RateInfo before = by_line;
		int k = apiparse_header_line(p, line_len, &by_line);

		FUZZ_CHECK(k == 0 || k == 1 || k == -EINVAL, "apiparse_header_line returned %d", k);
		if (k <= 0)
			FUZZ_CHECK(memcmp(&before, &by_line, sizeof before) == 0, "apiparse_header_line wrote on %d", k);
		if (k != 0)
			FUZZ_CHECK(apiparse_header_wanted(p, line_len), "a line was parsed that is not wanted");
		check_rate(&by_line);
		p += line_len;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
	fuzz_quiet_logs();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	const char *text = (const char *) data, *body = text;
	size_t body_len = size;

	for (size_t i = 0; i + 1 < size; i++) {
		size_t skip = 0;

		if (text[i] == '\n' && text[i + 1] == '\n')
			skip = 2;
		else if (i + 3 < size && memcmp(text + i, "\r\n\r\n", 4) == 0)
			skip = 4;
		if (skip) {
			check_headers(text, i + skip / 2);
			body = text + i + skip;
			body_len = size - i - skip;
			break;
		}
	}
	check_body(body, body_len);
	return 0;
}
