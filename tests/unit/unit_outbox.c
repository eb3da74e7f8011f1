/* unit_outbox.c — see unit_outbox.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intern.h"
#include "unit_outbox.h"

usec_t unit_clock_now = UNIT_T0;

Record *unit_make_record(uid_t uid, const char *client_ref, const char *request_text) {
	Record *r = record_new();
	json_object *params;

	assert_non_null(r);
	unit_clock_now += USEC_PER_MSEC;
	assert_int_equal(record_make_id(unit_clock_now, r->id), 0);
	r->owner_uid = uid;
	r->client_ref = client_ref ? strdup(client_ref) : NULL;
	assert_int_equal(intern_string(UNIT_LOOP_ID, &r->loop_id), 0);
	params = json_object_new_object();
	assert_non_null(params);
	assert_int_equal(json_object_object_add(params, "loop_id", json_object_new_string(UNIT_LOOP_ID)), 0);
	assert_int_equal(json_object_object_add(params, "request_text", json_object_new_string(request_text)), 0);
	assert_int_equal(json_object_object_add(params, "response_type", json_object_new_string("text")), 0);
	assert_int_equal(json_object_object_add(params, "priority", json_object_new_string("medium")), 0);
	r->params = params;
	r->created_at = r->updated_at = unit_clock_now;
	return r;
}

Outbox *unit_open_outbox(const char *state_dir) {
	Outbox *o = NULL;

	assert_int_equal(outbox_open(state_dir, &o), 0);
	assert_non_null(o);
	outbox_release_damaged(o);
	return o;
}
