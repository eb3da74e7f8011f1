/* fuzz_record.c — the on-disk record decoder (record_from_json) on arbitrary
 * bytes, read the way outbox.c reads a record file (strict JSON, UTF-8, depth
 * 64). Properties: decoding never crashes or leaks; a record that decodes
 * encodes again (record_to_json), and what it encodes — in memory and as the
 * text outbox.c writes — decodes to an equal record; record_to_protocol works
 * on it. A record the daemon can read but not write back would be stuck. */
#include <string.h>

#include "cleanup.h"
#include "fuzz_common.h"
#include "record.h"

#define OUTBOX_JSON_DEPTH 64

static bool json_field_equal(json_object *a, json_object *b) {
	return fuzz_json_equal(a, b);
}

static void check_equal(const Record *a, const Record *b) {
	FUZZ_CHECK(streq(a->id, b->id), "id %s != %s", a->id, b->id);
	FUZZ_CHECK(a->seq == b->seq, "seq");
	FUZZ_CHECK(streq_ptr(a->client_ref, b->client_ref), "client_ref");
	FUZZ_CHECK(a->owner_uid == b->owner_uid, "owner_uid");
	FUZZ_CHECK(a->kind == b->kind, "kind");
	FUZZ_CHECK(a->state == b->state, "state");
	FUZZ_CHECK(a->priority == b->priority, "priority");
	FUZZ_CHECK(streq_ptr(a->loop_id, b->loop_id), "loop_id");
	FUZZ_CHECK(json_field_equal(a->params, b->params), "params");
	FUZZ_CHECK(a->created_at == b->created_at, "created_at");
	FUZZ_CHECK(a->updated_at == b->updated_at, "updated_at");
	FUZZ_CHECK(a->submitted_at == b->submitted_at, "submitted_at");
	FUZZ_CHECK(a->deadline_at == b->deadline_at, "deadline_at");
	FUZZ_CHECK(a->next_attempt_at == b->next_attempt_at, "next_attempt_at");
	FUZZ_CHECK(streq_ptr(a->remote_id, b->remote_id), "remote_id");
	FUZZ_CHECK(streq_ptr(a->remote_status, b->remote_status), "remote_status");
	FUZZ_CHECK(json_field_equal(a->response, b->response), "response");
	FUZZ_CHECK(json_field_equal(a->result, b->result), "result");
	FUZZ_CHECK(a->result_source == b->result_source, "result_source");
	FUZZ_CHECK(a->cancel_requested == b->cancel_requested, "cancel_requested");
	FUZZ_CHECK(a->feedback_state == b->feedback_state, "feedback_state");
	FUZZ_CHECK(json_field_equal(a->feedback, b->feedback), "feedback");
	FUZZ_CHECK(a->attempts == b->attempts, "attempts");
	FUZZ_CHECK(json_field_equal(a->error, b->error), "error");
	FUZZ_CHECK(streq_ptr(a->callback_token, b->callback_token), "callback_token");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
	fuzz_quiet_logs();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	_cleanup_(json_object_putp) json_object *j = NULL, *encoded = NULL, *reread = NULL, *proto = NULL;
	_cleanup_(record_freep) Record *r = NULL, *again = NULL, *from_text = NULL;
	const char *text;
	size_t len;
	int k;

	if (fuzz_parse_json(data, size, OUTBOX_JSON_DEPTH, true, &j) < 0)
		return 0;
	k = record_from_json(j, &r);
	if (k < 0) {
		FUZZ_CHECK(!r, "record_from_json wrote its out-parameter on failure");
		return 0;
	}
	FUZZ_CHECK(r, "record_from_json succeeded without a record");
	FUZZ_CHECK(record_id_is_valid(r->id), "decoded an invalid id %s", r->id);
	FUZZ_CHECK(r->state >= 0 && r->state < _REQUEST_STATE_MAX, "state %d", (int) r->state);
	FUZZ_CHECK(r->priority >= 0 && r->priority < _PRIORITY_MAX, "priority %d", (int) r->priority);
	FUZZ_CHECK(r->loop_id && r->params, "loop_id or params missing");

	/* In memory. */
	k = record_to_json(r, &encoded);
	FUZZ_CHECK(k >= 0, "record_to_json refused a decoded record: %s", strerror(-k));
	k = record_from_json(encoded, &again);
	FUZZ_CHECK(k >= 0, "record_from_json refused what record_to_json wrote: %s", strerror(-k));
	check_equal(r, again);

	/* As text, the way outbox.c writes it and reads it back. */
	text = json_object_to_json_string_length(encoded, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
	                                         &len);
	FUZZ_CHECK(text, "serialising a record failed");
	k = fuzz_parse_json((const uint8_t *) text, len, OUTBOX_JSON_DEPTH, true, &reread);
	FUZZ_CHECK(k >= 0, "the text written for a record is not strict JSON: %.300s", text);
	k = record_from_json(reread, &from_text);
	FUZZ_CHECK(k >= 0, "the text written for a record does not decode: %s: %.300s", strerror(-k), text);
	check_equal(r, from_text);

	k = record_to_protocol(r, &proto);
	FUZZ_CHECK(k >= 0 && proto, "record_to_protocol failed: %s", strerror(-k));
	return 0;
}
