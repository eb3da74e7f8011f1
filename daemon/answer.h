/* answer.h — a reviewer's answer and HITL.sh's response_data against the
 * request's response_type and response_config: implements validate_answer()
 * and validate_normalise_result() (declared, with their rules, in validate.h,
 * the validators' public face), and answer_check(), which validate_submit()
 * applies to default_response. Pure: no I/O, no clock, no logging. */
#pragma once

#include <json-c/json.h>

#include "respconfig.h"
#include "validate.h"

/* Checks value (plain encoding) against spec as HITL.sh would; name is the field
 * a problem is reported on ("answer", "default_response"). On success
 * *ret_normalised (may be NULL) gets the canonical value (validate_answer()). */
int answer_check(const ResponseSpec *spec, json_object *value, const char *name, json_object **ret_normalised,
                 ValidationError *err);
