/* respconfig.c — response types and their configs (see respconfig.h). */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "respconfig.h"
#include "utf8.h"
#include "vcheck.h"

#define STRV(...) ((const char *const[]) { __VA_ARGS__, NULL })

#define TEXT_MAX_LENGTH_DEFAULT 1000
#define TEXT_MAX_LENGTH_MAX 5000
#define OPTION_VALUE_MAX 100
#define OPTION_LABEL_MAX 200
#define OPTION_DESCRIPTION_MAX 500
#define RATING_SCALE_MAX_MAX 100.0
#define NUMBER_DECIMAL_PLACES_MAX 10
#define NUMBER_DECIMAL_PLACES_DEFAULT 2
#define DISPLAY_STRING_MAX 50          /* number prefix/suffix/placeholder */
#define BOOLEAN_LABEL_MAX 100
#define EDITABLE_MAX_LENGTH_DEFAULT 5000
#define RATING_LABEL_MAX 100

const char *const respconfig_type_names[_RESPONSE_TYPE_MAX] = {
	[RESPONSE_TEXT] = "text",
	[RESPONSE_SINGLE_SELECT] = "single_select",
	[RESPONSE_MULTI_SELECT] = "multi_select",
	[RESPONSE_RATING] = "rating",
	[RESPONSE_NUMBER] = "number",
	[RESPONSE_BOOLEAN] = "boolean",
	[RESPONSE_EDITABLE_TEXT] = "editable_text",
};

/* ---- response_config --------------------------------------------------------------- */

ResponseType respconfig_type_from_string(const char *s) {
	if (!s)
		return _RESPONSE_TYPE_INVALID;
	for (size_t i = 0; i < _RESPONSE_TYPE_MAX; i++)
		if (streq(respconfig_type_names[i], s))
			return (ResponseType) i;
	return _RESPONSE_TYPE_INVALID;
}

static const char *config_field(char buf[static VCHECK_FIELD_MAX], const char *key) {
	snprintf(buf, VCHECK_FIELD_MAX, "response_config.%s", key);
	return buf;
}

/* Reads an optional integer key; *ret = def when absent. */
static int config_int(json_object *config, const char *key, int64_t def, int64_t *ret, ValidationError *err) {
	char field[VCHECK_FIELD_MAX];
	json_object *v;

	if (!json_object_object_get_ex(config, key, &v)) {
		*ret = def;
		return 0;
	}
	if (!vcheck_get_integer(v, ret))
		return vcheck_fail(err, config_field(field, key), "%s must be an integer", key);
	return 0;
}

static int config_bool(json_object *config, const char *key, bool def, bool *ret, ValidationError *err) {
	char field[VCHECK_FIELD_MAX];
	json_object *v;

	if (!json_object_object_get_ex(config, key, &v)) {
		*ret = def;
		return 0;
	}
	if (!json_object_is_type(v, json_type_boolean))
		return vcheck_fail(err, config_field(field, key), "%s must be a boolean", key);
	*ret = json_object_get_boolean(v);
	return 0;
}

/* Reads the first present key of keys (the canonical name first, then aliases).
 * Returns 1 with *ret and *ret_key, 0 if none is present, or -EINVAL. */
static int config_number(json_object *config, const char *const *keys, double *ret, const char **ret_key,
                         ValidationError *err) {
	char field[VCHECK_FIELD_MAX];
	json_object *v;

	for (const char *const *key = keys; *key; key++) {
		if (!json_object_object_get_ex(config, *key, &v))
			continue;
		if (!vcheck_get_number(v, ret))
			return vcheck_fail(err, config_field(field, *key), "%s must be a number", *key);
		*ret_key = *key;
		return 1;
	}
	return 0;
}

static int config_string(json_object *config, const char *key, size_t min, size_t max, ValidationError *err) {
	char field[VCHECK_FIELD_MAX];
	json_object *v;

	if (!json_object_object_get_ex(config, key, &v))
		return 0;
	return vcheck_string(v, config_field(field, key), min, max, err);
}

static int config_color(json_object *config, const char *key, ValidationError *err) {
	char field[VCHECK_FIELD_MAX];
	json_object *v;

	if (!json_object_object_get_ex(config, key, &v))
		return 0;
	return vcheck_color(v, config_field(field, key), err);
}

static int parse_text_config(json_object *config, ResponseSpec *spec, ValidationError *err) {
	int r;

	r = config_int(config, "max_length", TEXT_MAX_LENGTH_DEFAULT, &spec->max_length, err);
	if (r < 0)
		return r;
	if (spec->max_length < 1 || spec->max_length > TEXT_MAX_LENGTH_MAX)
		return vcheck_fail(err, "response_config.max_length", "max_length must be between 1 and %d",
		            TEXT_MAX_LENGTH_MAX);

	r = config_int(config, "min_length", 0, &spec->min_length, err);
	if (r < 0)
		return r;
	if (spec->min_length < 0 || spec->min_length > spec->max_length)
		return vcheck_fail(err, "response_config.min_length", "min_length must be between 0 and max_length (%" PRId64 ")",
		            spec->max_length);

	r = config_string(config, "placeholder", 0, SIZE_MAX, err);
	if (r < 0)
		return r;
	return config_string(config, "guidelines", 0, SIZE_MAX, err);
}

/* editable_text: the reviewer edits draft_text, at most max_length (1–5000)
 * characters; the answer is {revised_text, was_edited}. */
static int parse_editable_config(json_object *config, ResponseSpec *spec, ValidationError *err) {
	json_object *draft;
	size_t len = 0, count = 0;
	int r;

	r = config_int(config, "max_length", EDITABLE_MAX_LENGTH_DEFAULT, &spec->max_length, err);
	if (r < 0)
		return r;
	if (spec->max_length < 1 || spec->max_length > TEXT_MAX_LENGTH_MAX)
		return vcheck_fail(err, "response_config.max_length", "max_length must be between 1 and %d",
		            TEXT_MAX_LENGTH_MAX);

	if (!json_object_object_get_ex(config, "draft_text", &draft))
		return vcheck_fail(err, "response_config.draft_text", "draft_text is required for editable_text");
	r = vcheck_string(draft, "response_config.draft_text", 1, TEXT_MAX_LENGTH_MAX, err);
	if (r < 0)
		return r;
	vcheck_get_string(draft, &spec->draft_text, &len);
	(void) utf8_count(spec->draft_text, len, &count);
	if ((int64_t) count > spec->max_length)
		return vcheck_fail(err, "response_config.draft_text", "draft_text must be at most max_length (%" PRId64 ") characters",
		            spec->max_length);
	return config_string(config, "placeholder", 0, SIZE_MAX, err);
}

static int parse_option(json_object *o, size_t i, SelectOption *ret, ValidationError *err) {
	char field[VCHECK_FIELD_MAX], sub[VCHECK_FIELD_MAX + 16];
	SelectOption opt = { .value = NULL };
	json_object *v;
	int r;

	snprintf(field, sizeof field, "response_config.options[%zu]", i);

	if (json_object_is_type(o, json_type_string)) {
		r = vcheck_string(o, field, 1, OPTION_VALUE_MAX, err);
		if (r < 0)
			return r;
		vcheck_get_string(o, &opt.value, &opt.value_len);
		opt.label = opt.value;
		opt.label_len = opt.value_len;
		opt.simple = true;
		*ret = opt;
		return 0;
	}
	if (!json_object_is_type(o, json_type_object))
		return vcheck_fail(err, field, "%s must be a string or an object", vcheck_short_name(field));

	snprintf(sub, sizeof sub, "%s.value", field);
	if (!json_object_object_get_ex(o, "value", &v))
		return vcheck_fail(err, sub, "%s is required", vcheck_short_name(sub));
	r = vcheck_string(v, sub, 1, OPTION_VALUE_MAX, err);
	if (r < 0)
		return r;
	vcheck_get_string(v, &opt.value, &opt.value_len);

	snprintf(sub, sizeof sub, "%s.label", field);
	if (!json_object_object_get_ex(o, "label", &v))
		return vcheck_fail(err, sub, "%s is required", vcheck_short_name(sub));
	r = vcheck_string(v, sub, 1, OPTION_LABEL_MAX, err);
	if (r < 0)
		return r;
	vcheck_get_string(v, &opt.label, &opt.label_len);

	if (json_object_object_get_ex(o, "description", &v)) {
		snprintf(sub, sizeof sub, "%s.description", field);
		r = vcheck_string(v, sub, 0, OPTION_DESCRIPTION_MAX, err);
		if (r < 0)
			return r;
	}
	if (json_object_object_get_ex(o, "color", &v)) {
		snprintf(sub, sizeof sub, "%s.color", field);
		r = vcheck_color(v, sub, err);
		if (r < 0)
			return r;
	}

	*ret = opt;
	return 0;
}

static int parse_select_config(json_object *config, ResponseSpec *spec, ValidationError *err) {
	json_object *options;
	bool ignored;
	size_t n;
	int r;

	if (!json_object_object_get_ex(config, "options", &options) ||
	    !json_object_is_type(options, json_type_array) ||
	    (n = json_object_array_length(options)) == 0)
		return vcheck_fail(err, "response_config.options", "options array required for select response type");
	if (n > VALIDATE_OPTIONS_MAX)
		return vcheck_fail(err, "response_config.options", "options must contain between 1 and %d items",
		            VALIDATE_OPTIONS_MAX);

	for (size_t i = 0; i < n; i++) {
		SelectOption *opt = &spec->options[i];

		r = parse_option(json_object_array_get_idx(options, i), i, opt, err);
		if (r < 0)
			return r;
		for (size_t k = 0; k < i; k++)
			if (vcheck_bytes_eq(spec->options[k].value, spec->options[k].value_len, opt->value, opt->value_len)) {
				char field[VCHECK_FIELD_MAX];

				snprintf(field, sizeof field, "response_config.options[%zu]%s", i,
				         opt->simple ? "" : ".value");
				return vcheck_fail(err, field, "duplicate option value: %s", opt->value);
			}
	}
	spec->n_options = n;

	r = config_bool(config, "allow_other", false, &ignored, err);
	if (r < 0)
		return r;
	r = config_bool(config, "randomize_order", false, &ignored, err);
	if (r < 0)
		return r;

	if (spec->type != RESPONSE_MULTI_SELECT)
		return 0;

	r = config_int(config, "min_selections", 0, &spec->min_selections, err);
	if (r < 0)
		return r;
	r = config_int(config, "max_selections", (int64_t) n, &spec->max_selections, err);
	if (r < 0)
		return r;
	if (spec->min_selections < 0 || spec->min_selections > (int64_t) n)
		return vcheck_fail(err, "response_config.min_selections", "min_selections must be between 0 and %zu", n);
	if (spec->max_selections < 0 || spec->max_selections > (int64_t) n)
		return vcheck_fail(err, "response_config.max_selections",
		            "max_selections must be between 0 and the number of options (%zu)", n);
	if (spec->max_selections < spec->min_selections)
		return vcheck_fail(err, "response_config.max_selections", "max_selections must be >= min_selections");
	return 0;
}

static int parse_rating_labels(json_object *config, ValidationError *err) {
	char field[VCHECK_FIELD_MAX];
	json_object *labels;
	int r;

	if (!json_object_object_get_ex(config, "labels", &labels))
		return 0;
	if (!json_object_is_type(labels, json_type_object))
		return vcheck_fail(err, "response_config.labels", "labels must be an object");

	json_object_object_foreach(labels, key, value) {
		vcheck_field(field, sizeof field, "response_config.labels.%s", key);
		r = vcheck_string(value, field, 0, RATING_LABEL_MAX, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_rating_config(json_object *config, ResponseSpec *spec, ValidationError *err) {
	const char *max_key = NULL, *min_key = NULL, *step_key = NULL;
	char field[VCHECK_FIELD_MAX];
	int r;

	/* Canonical scale_* first, then the older aliases (docs/HITL-API.md §3). */
	r = config_number(config, STRV("scale_max", "max", "max_value"), &spec->scale_max, &max_key, err);
	if (r < 0)
		return r;
	if (r == 0)
		return vcheck_fail(err, "response_config.scale_max", "scale_max is required");
	if (spec->scale_max > RATING_SCALE_MAX_MAX)
		return vcheck_fail(err, config_field(field, max_key), "%s must be at most 100", max_key);

	r = config_number(config, STRV("scale_min", "min", "min_value"), &spec->scale_min, &min_key, err);
	if (r < 0)
		return r;
	if (r == 0)
		spec->scale_min = 1;
	if (spec->scale_min >= spec->scale_max) {
		if (min_key)
			return vcheck_fail(err, config_field(field, min_key), "%s must be less than %s", min_key, max_key);
		return vcheck_fail(err, config_field(field, max_key), "%s must be greater than scale_min (1)", max_key);
	}

	r = config_number(config, STRV("scale_step", "step"), &spec->scale_step, &step_key, err);
	if (r < 0)
		return r;
	if (r == 0)
		spec->scale_step = 1;
	if (spec->scale_step <= 0)
		return vcheck_fail(err, config_field(field, step_key), "%s must be greater than 0", step_key);

	return parse_rating_labels(config, err);
}

static int parse_number_config(json_object *config, ResponseSpec *spec, ValidationError *err) {
	const char *key;
	int r;

	r = config_number(config, STRV("max_value"), &spec->max_value, &key, err);
	if (r < 0)
		return r;
	if (r == 0)
		return vcheck_fail(err, "response_config.max_value", "max_value is required");

	r = config_number(config, STRV("min_value"), &spec->min_value, &key, err);
	if (r < 0)
		return r;
	if (r == 0)
		spec->min_value = 0;
	if (spec->max_value <= spec->min_value)
		return vcheck_fail(err, "response_config.max_value", "max_value must be greater than min_value");

	r = config_int(config, "decimal_places", NUMBER_DECIMAL_PLACES_DEFAULT, &spec->decimal_places, err);
	if (r < 0)
		return r;
	if (spec->decimal_places < 0 || spec->decimal_places > NUMBER_DECIMAL_PLACES_MAX)
		return vcheck_fail(err, "response_config.decimal_places", "decimal_places must be between 0 and %d",
		            NUMBER_DECIMAL_PLACES_MAX);

	r = config_bool(config, "allow_negative", false, &spec->allow_negative, err);
	if (r < 0)
		return r;

	static const char *const display_keys[] = { "prefix", "suffix", "placeholder" };
	for (size_t i = 0; i < ELEMENTSOF(display_keys); i++) {
		r = config_string(config, display_keys[i], 0, DISPLAY_STRING_MAX, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_boolean_config(json_object *config, ValidationError *err) {
	int r;

	/* An empty label would leave the reviewer a blank button. */
	r = config_string(config, "true_label", 1, BOOLEAN_LABEL_MAX, err);
	if (r < 0)
		return r;
	r = config_string(config, "false_label", 1, BOOLEAN_LABEL_MAX, err);
	if (r < 0)
		return r;
	r = config_color(config, "true_color", err);
	if (r < 0)
		return r;
	return config_color(config, "false_color", err);
}

/* Checks response_config for type and reads it into *ret. Unknown keys are
 * ignored: the guides carry extras (show_numeric_labels, unit, …). */
int respconfig_parse(ResponseType type, json_object *config, ResponseSpec *ret,
                                 ValidationError *err) {
	ResponseSpec spec = { .type = type };
	int r;

	if (!json_object_is_type(config, json_type_object))
		return vcheck_fail(err, "response_config", "response_config must be an object");

	r = config_bool(config, "required", false, &spec.required, err);
	if (r < 0)
		return r;

	switch (type) {
	case RESPONSE_TEXT:
		r = parse_text_config(config, &spec, err);
		break;
	case RESPONSE_SINGLE_SELECT:
	case RESPONSE_MULTI_SELECT:
		r = parse_select_config(config, &spec, err);
		break;
	case RESPONSE_RATING:
		r = parse_rating_config(config, &spec, err);
		break;
	case RESPONSE_NUMBER:
		r = parse_number_config(config, &spec, err);
		break;
	case RESPONSE_BOOLEAN:
		r = parse_boolean_config(config, err);
		break;
	case RESPONSE_EDITABLE_TEXT:
		r = parse_editable_config(config, &spec, err);
		break;
	default:
		return vcheck_fail(err, "response_type", "unknown response_type");
	}
	if (r < 0)
		return r;

	*ret = spec;
	return 0;
}

/* ---- options ---------------------------------------------------------------------- */

/* The option s names: its value, else its label, else its label ignoring ASCII
 * case, else the snake_case of its label; each pass over all options before the
 * next, so an exact value always wins. */
const SelectOption *respconfig_option_find(const ResponseSpec *spec, const char *s, size_t len) {
	for (unsigned pass = 0; pass < 4; pass++)
		for (size_t i = 0; i < spec->n_options; i++) {
			const SelectOption *o = &spec->options[i];
			bool match;

			switch (pass) {
			case 0:
				match = vcheck_bytes_eq(o->value, o->value_len, s, len);
				break;
			case 1:
				match = vcheck_bytes_eq(o->label, o->label_len, s, len);
				break;
			case 2:
				match = vcheck_bytes_eq_ascii_case(o->label, o->label_len, s, len);
				break;
			default:
				match = vcheck_snake_case_eq(o->label, o->label_len, s, len);
				break;
			}
			if (match)
				return o;
		}
	return NULL;
}

const SelectOption *respconfig_option_find_json(const ResponseSpec *spec, json_object *j) {
	const char *s;
	size_t len;

	if (!vcheck_get_string(j, &s, &len))
		return NULL;
	return respconfig_option_find(spec, s, len);
}

json_object *respconfig_option_value(const SelectOption *o) {
	return json_object_new_string_len(o->value, (int) o->value_len);
}
