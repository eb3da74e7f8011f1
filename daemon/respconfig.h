/* respconfig.h — a request's response_type and response_config as HITL.sh
 * documents them (docs/HITL-API.md §3, §5): the seven response types and, for
 * each, the config read into a ResponseSpec with its documented ranges checked
 * and its defaults applied; the select options and the one order in which a
 * value names an option (value, label, label ignoring ASCII case, snake_case
 * of the label). Used by validate (submit) and answer (answers, results).
 * Pure: no I/O, no clock, no logging. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "validate.h"

typedef enum ResponseType {
	RESPONSE_TEXT,
	RESPONSE_SINGLE_SELECT,
	RESPONSE_MULTI_SELECT,
	RESPONSE_RATING,
	RESPONSE_NUMBER,
	RESPONSE_BOOLEAN,
	RESPONSE_EDITABLE_TEXT,
	_RESPONSE_TYPE_MAX,
	_RESPONSE_TYPE_INVALID = -EINVAL,
} ResponseType;


/* One select option, borrowed from the response_config it was read from. */
typedef struct SelectOption {
	const char *value;
	size_t value_len;
	const char *label;
	size_t label_len;
	bool simple;                   /* given as a bare string */
} SelectOption;

/* A response_config read and checked, defaults applied. Borrows the config's strings. */
typedef struct ResponseSpec {
	ResponseType type;
	bool required;

	int64_t min_length, max_length;           /* text, code points after trimming; editable_text */
	const char *draft_text;                   /* editable_text */

	SelectOption options[VALIDATE_OPTIONS_MAX];
	size_t n_options;
	int64_t min_selections, max_selections;   /* multi_select */

	double scale_min, scale_max, scale_step;  /* rating */

	double min_value, max_value;              /* number */
	int64_t decimal_places;
	bool allow_negative;
} ResponseSpec;


/* "text", "single_select", …, indexed by ResponseType. */
extern const char *const respconfig_type_names[_RESPONSE_TYPE_MAX];

/* The type named s, or _RESPONSE_TYPE_INVALID. */
ResponseType respconfig_type_from_string(const char *s);

/* Reads and checks config for type into *ret (borrowing config's strings), as
 * HITL.sh would; a problem is reported on its "response_config.…" field. */
int respconfig_parse(ResponseType type, json_object *config, ResponseSpec *ret, ValidationError *err);

/* The option s[0..len) names (value, then label, then label ignoring ASCII
 * case, then snake_case of the label, each pass over all options), or NULL. */
const SelectOption *respconfig_option_find(const ResponseSpec *spec, const char *s, size_t len);
/* The same for a JSON string; NULL for anything else. */
const SelectOption *respconfig_option_find_json(const ResponseSpec *spec, json_object *j);
/* A new JSON string of the option's value. */
json_object *respconfig_option_value(const SelectOption *o);
