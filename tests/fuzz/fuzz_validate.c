/* fuzz_validate.c — validate.c on arbitrary JSON, read the way rpc.c reads a
 * request (strict UTF-8 on the raw bytes, strict JSON, depth 64).
 * Properties: no crash, no leak; validate_submit() either fills the error
 * (field and reason non-empty) or returns a create body that validates again
 * to the same body, and that can be stored: a Record holding it as
 * method_submit builds one goes through record_to_json, the record file's
 * text and record_from_json unchanged, and through the form the outbox log
 * stores (the meta text by record_to_json_meta and record_from_json_meta,
 * the params text parsed strictly and passed by record_check_params). The
 * outbox acknowledges an insert without reading it back: this target is what
 * guarantees that it reads back at the next start. The other entry points
 * (validate_feedback, validate_loop_create/update, validate_answer,
 * validate_normalise_result) run on the same value or its members. */
#include <string.h>

#include "cleanup.h"
#include "intern.h"
#include "fuzz_common.h"
#include "outbox.h"
#include "record.h"
#include "seglog.h"
#include "validate.h"

#define RPC_JSON_DEPTH 64
#define OUTBOX_JSON_DEPTH 64

/* rpc.c's strict UTF-8 check (RFC 3629), which every request line passes
 * before validate.c sees it. */
static bool utf8_is_valid(const uint8_t *p, size_t n) {
	size_t i = 0;

	while (i < n) {
		uint8_t b = p[i], lo = 0x80, hi = 0xBF;
		size_t need;

		if (b < 0x80) {
			i++;
			continue;
		}
		if (b < 0xC2)
			return false;
		if (b < 0xE0)
			need = 1;
		else if (b < 0xF0) {
			need = 2;
			if (b == 0xE0)
				lo = 0xA0;
			else if (b == 0xED)
				hi = 0x9F;
		} else if (b < 0xF5) {
			need = 3;
			if (b == 0xF0)
				lo = 0x90;
			else if (b == 0xF4)
				hi = 0x8F;
		} else
			return false;
		if (n - i - 1 < need || p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= need; k++)
			if (p[i + k] < 0x80 || p[i + k] > 0xBF)
				return false;
		i += need + 1;
	}
	return true;
}

static void check_error(int k, const ValidationError *err, const char *what) {
	FUZZ_CHECK(k == -EINVAL || k == -ENOMEM, "%s: unexpected error %d", what, k);
	if (k == -EINVAL) {
		/* field may be empty: an unknown key "" is named as it is. */
		FUZZ_CHECK(err->reason[0], "%s failed without a reason (field %s)", what, err->field);
		FUZZ_CHECK(memchr(err->field, '\0', sizeof err->field) && memchr(err->reason, '\0', sizeof err->reason),
		           "%s: unterminated error", what);
	}
}

/* The fields record_to_json_meta() stores, equal after the round trip. */
static void check_meta_equal(const Record *a, const Record *b) {
	FUZZ_CHECK(streq(a->id, b->id), "meta: id %s != %s", a->id, b->id);
	FUZZ_CHECK(a->seq == b->seq && a->owner_uid == b->owner_uid, "meta: seq or owner_uid");
	FUZZ_CHECK(a->state == b->state && a->priority == b->priority, "meta: state or priority");
	FUZZ_CHECK(streq_ptr(a->loop_id, b->loop_id), "meta: loop_id %s != %s", a->loop_id, b->loop_id);
	FUZZ_CHECK(streq_ptr(a->client_ref, b->client_ref), "meta: client_ref");
	FUZZ_CHECK(a->created_at == b->created_at && a->updated_at == b->updated_at &&
	                   a->submitted_at == b->submitted_at && a->deadline_at == b->deadline_at &&
	                   a->next_attempt_at == b->next_attempt_at,
	           "meta: times");
	FUZZ_CHECK(a->attempts == b->attempts && a->cancel_requested == b->cancel_requested &&
	                   a->result_source == b->result_source && a->feedback_state == b->feedback_state,
	           "meta: counters and flags");
}

/* As outbox.c's serialize() writes a log entry (meta text + params text) and
 * outbox_open()/outbox_need_params() read it back: strict JSON (UTF-8, no
 * NUL, depth 64), record_from_json_meta() on the meta, record_check_params()
 * on the params with the record read from the meta. */
static void check_log_form(const Record *r, json_object *create) {
	_cleanup_(json_object_putp) json_object *meta = NULL, *meta_back = NULL, *params_back = NULL;
	_cleanup_(record_freep) Record *back = NULL;
	const char *text, *ptext;
	size_t len, plen;
	int k;

	k = record_to_json_meta(r, &meta);
	FUZZ_CHECK(k >= 0, "record_to_json_meta refused an accepted request: %s", strerror(-k));
	FUZZ_CHECK(!json_object_object_get_ex(meta, "params", NULL), "the meta form holds params");
	text = json_object_to_json_string_length(meta, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
	                                         &len);
	FUZZ_CHECK(text, "serialising the meta failed");
	k = fuzz_parse_json((const uint8_t *) text, len, OUTBOX_JSON_DEPTH, true, &meta_back);
	FUZZ_CHECK(k >= 0, "an accepted request's log meta is not strict UTF-8 JSON: %.400s", text);
	k = record_from_json_meta(meta_back, &back);
	FUZZ_CHECK(k >= 0, "an accepted request's log meta does not decode (%s): %.400s", strerror(-k), text);
	FUZZ_CHECK(!back->params, "record_from_json_meta made params");
	check_meta_equal(r, back);
	/* The entry's id, which outbox_open() checks against the meta's. */
	FUZZ_CHECK(strlen(r->id) <= SEGLOG_ID_MAX && strlen(r->id) < RECORD_ID_MAX && record_id_is_valid(r->id),
	           "the record id %s cannot be a log entry's id", r->id);

	ptext = json_object_to_json_string_length(r->params, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
	                                          &plen);
	FUZZ_CHECK(ptext, "serialising the params failed");
	FUZZ_CHECK(len + plen <= OUTBOX_RECORD_MAX, "an accepted request is too big to store: %zu + %zu bytes",
	           len, plen);
	k = fuzz_parse_json((const uint8_t *) ptext, plen, OUTBOX_JSON_DEPTH, true, &params_back);
	FUZZ_CHECK(k >= 0, "an accepted request's log params are not strict UTF-8 JSON: %.400s", ptext);
	k = record_check_params(back, params_back);
	FUZZ_CHECK(k == 0, "an accepted request's log params fail record_check_params (%s): %.400s", strerror(-k),
	           ptext);
	FUZZ_CHECK(fuzz_json_equal(params_back, create), "params changed on the way to the log and back");
}

/* As method_submit stores an accepted request: its record must survive the
 * outbox's write-then-reread check and a restart. */
static void check_storable(json_object *create) {
	_cleanup_(record_freep) Record *r = record_new(), *back = NULL;
	_cleanup_(json_object_putp) json_object *encoded = NULL, *reread = NULL;
	json_object *timeout;
	const char *text;
	size_t len;
	int k;

	FUZZ_CHECK(r, "out of memory");
	FUZZ_CHECK(record_make_id(1700000000 * USEC_PER_SEC, r->id) >= 0, "record_make_id");
	r->seq = 1;
	r->owner_uid = 1000;
	r->state = REQUEST_QUEUED;
	r->priority = priority_from_string(json_object_get_string(json_object_object_get(create, "priority")));
	FUZZ_CHECK(r->priority >= 0, "validated priority unknown to record.c: %s",
	           json_object_get_string(json_object_object_get(create, "priority")));
	(void) intern_string(json_object_get_string(json_object_object_get(create, "loop_id")), &r->loop_id);   /* NULL: -ENOMEM */
	FUZZ_CHECK(r->loop_id, "out of memory");
	r->created_at = r->updated_at = 1700000000 * USEC_PER_SEC;
	/* As method_submit sets it. */
	timeout = json_object_object_get(create, "timeout_seconds");
	if (timeout)
		r->deadline_at = r->created_at + (usec_t) json_object_get_int64(timeout) * USEC_PER_SEC;
	r->params = json_object_get(create);

	k = record_to_json(r, &encoded);
	FUZZ_CHECK(k >= 0, "record_to_json refused an accepted request: %s", strerror(-k));
	text = json_object_to_json_string_length(encoded, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
	                                         &len);
	FUZZ_CHECK(text, "serialising failed");
	k = fuzz_parse_json((const uint8_t *) text, len, OUTBOX_JSON_DEPTH, true, &reread);
	FUZZ_CHECK(k >= 0, "an accepted request's record file is not strict UTF-8 JSON: %.400s", text);
	k = record_from_json(reread, &back);
	FUZZ_CHECK(k >= 0, "an accepted request's record file does not decode (%s): %.400s", strerror(-k), text);
	FUZZ_CHECK(fuzz_json_equal(back->params, create), "params changed on the way to disk and back");

	check_log_form(r, create);
}

static void check_submit(json_object *params) {
	_cleanup_(json_object_putp) json_object *create = NULL, *again = NULL;
	ValidationError err = {}, err2 = {};
	int k;

	k = validate_submit(params, &create, &err);
	if (k < 0) {
		FUZZ_CHECK(!create, "validate_submit wrote its result on failure");
		check_error(k, &err, "validate_submit");
		return;
	}
	FUZZ_CHECK(json_object_is_type(create, json_type_object), "create body is not an object");
	k = validate_submit(create, &again, &err2);
	FUZZ_CHECK(k >= 0, "the create body validate_submit made does not validate: %s: %s\n%s", err2.field,
	           err2.reason, json_object_to_json_string(create));
	FUZZ_CHECK(fuzz_json_equal(create, again), "validate_submit is not idempotent:\n%s\n%s",
	           json_object_to_json_string(create), json_object_to_json_string(again));
	check_storable(create);
}

static void check_answer_paths(json_object *j) {
	_cleanup_(json_object_putp) json_object *normalised = NULL, *again = NULL, *result = NULL;
	json_object *type, *config, *answer, *data;
	ValidationError err = {}, err2 = {};
	const char *rt;
	int k;

	if (!json_object_is_type(j, json_type_object))
		return;
	type = json_object_object_get(j, "response_type");
	if (!json_object_is_type(type, json_type_string))
		return;
	rt = json_object_get_string(type);
	config = json_object_object_get(j, "response_config");

	answer = json_object_object_get(j, "answer");
	if (!answer)
		answer = json_object_object_get(j, "default_response");
	k = validate_answer(rt, config, answer, &normalised, &err);
	if (k < 0) {
		FUZZ_CHECK(!normalised, "validate_answer wrote its result on failure");
		check_error(k, &err, "validate_answer");
	} else if (normalised) {
		k = validate_answer(rt, config, normalised, &again, &err2);
		FUZZ_CHECK(k >= 0, "a normalised answer does not validate: %s: %s (%s)", err2.field, err2.reason,
		           json_object_to_json_string(normalised));
		FUZZ_CHECK(fuzz_json_equal(normalised, again), "validate_answer is not idempotent: %s -> %s",
		           json_object_to_json_string(normalised), json_object_to_json_string(again));
	}

	data = json_object_object_get(j, "response_data");
	k = validate_normalise_result(rt, config, data ? data : answer, &result);
	if (k < 0)
		FUZZ_CHECK(!result, "validate_normalise_result wrote its result on failure");
	FUZZ_CHECK(k >= 0 || k == -EINVAL || k == -EBADMSG || k == -ENOMEM,
	           "validate_normalise_result: unexpected error %d", k);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
	fuzz_quiet_logs();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	_cleanup_(json_object_putp) json_object *j = NULL;
	ValidationError err = {};
	json_object *fb;
	int k;

	if (!utf8_is_valid(data, size) || memchr(data, '\n', size))
		return 0;
	if (fuzz_parse_json(data, size, RPC_JSON_DEPTH, false, &j) < 0)
		return 0;

	check_submit(j);

	k = validate_feedback(j, &err);
	if (k < 0)
		check_error(k, &err, "validate_feedback");
	if (json_object_object_get_ex(j, "feedback", &fb)) {
		err = (ValidationError) {};
		k = validate_feedback(fb, &err);
		if (k < 0)
			check_error(k, &err, "validate_feedback");
	}
	err = (ValidationError) {};
	k = validate_loop_create(j, &err);
	if (k < 0)
		check_error(k, &err, "validate_loop_create");
	err = (ValidationError) {};
	k = validate_loop_update(j, &err);
	if (k < 0)
		check_error(k, &err, "validate_loop_update");

	check_answer_paths(j);
	return 0;
}
