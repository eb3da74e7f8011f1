/* answer.c — answers and results against a response_config (see answer.h). */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "answer.h"
#include "utf8.h"
#include "vcheck.h"

/* ---- answers ---------------------------------------------------------------------- */

static int check_text_answer(const ResponseSpec *spec, json_object *value, const char *name,
                             json_object **ret, ValidationError *err) {
	const char *s;
	size_t len, count;

	if (!vcheck_get_string(value, &s, &len))
		return vcheck_fail(err, name, "%s must be a string", name);
	while (len > 0 && ascii_is_space(s[0]))
		s++, len--;
	while (len > 0 && ascii_is_space(s[len - 1]))
		len--;
	if (!utf8_count(s, len, &count))
		return vcheck_fail(err, name, "%s must be valid UTF-8", name);
	if (spec->required && count == 0)
		return vcheck_fail(err, name, "%s must be a non-blank string", name);
	if ((int64_t) count < spec->min_length || (int64_t) count > spec->max_length)
		return vcheck_fail(err, name, "%s must be between %" PRId64 " and %" PRId64 " characters", name,
		            spec->min_length, spec->max_length);

	*ret = json_object_new_string_len(json_object_get_string(value), json_object_get_string_len(value));
	return *ret ? 0 : -ENOMEM;
}

static int check_multi_answer(const ResponseSpec *spec, json_object *value, const char *name,
                              json_object **ret, ValidationError *err) {
	_cleanup_(json_object_putp) json_object *values = NULL;
	const SelectOption *chosen[VALIDATE_OPTIONS_MAX];
	size_t n;

	if (!json_object_is_type(value, json_type_array))
		return vcheck_fail(err, name, "%s must be an array of option values", name);
	n = json_object_array_length(value);
	/* max_selections ≤ number of options, so this also bounds chosen[]. */
	if ((int64_t) n < spec->min_selections || (int64_t) n > spec->max_selections)
		return vcheck_fail(err, name, "%s must be an array of between %" PRId64 " and %" PRId64 " option values",
		            name, spec->min_selections, spec->max_selections);

	values = json_object_new_array();
	if (!values)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		chosen[i] = respconfig_option_find_json(spec, json_object_array_get_idx(value, i));
		if (!chosen[i])
			return vcheck_fail(err, name, "%s must be an array of option values", name);
		for (size_t k = 0; k < i; k++)
			if (chosen[k] == chosen[i])
				return vcheck_fail(err, name, "%s must be an array of distinct option values", name);

		json_object *v = respconfig_option_value(chosen[i]);
		if (!v || json_object_array_add(values, v) < 0) {
			json_object_put(v);
			return -ENOMEM;
		}
	}

	*ret = TAKE_PTR(values);
	return 0;
}

static int check_rating_answer(const ResponseSpec *spec, json_object *value, const char *name,
                               json_object **ret, ValidationError *err) {
	char lo[VCHECK_NUMBER_STR_MAX], hi[VCHECK_NUMBER_STR_MAX], step[VCHECK_NUMBER_STR_MAX];
	double x;

	if (!vcheck_get_number(value, &x) || x < spec->scale_min || x > spec->scale_max)
		return vcheck_fail(err, name, "%s must be a number between %s and %s", name,
		            vcheck_number_str(lo, spec->scale_min), vcheck_number_str(hi, spec->scale_max));
	if (!vcheck_is_integral((x - spec->scale_min) / spec->scale_step))
		return vcheck_fail(err, name, "%s must be a number between %s and %s in steps of %s", name,
		            vcheck_number_str(lo, spec->scale_min), vcheck_number_str(hi, spec->scale_max),
		            vcheck_number_str(step, spec->scale_step));

	*ret = json_object_new_double(x);
	return *ret ? 0 : -ENOMEM;
}

static int check_number_answer(const ResponseSpec *spec, json_object *value, const char *name,
                               json_object **ret, ValidationError *err) {
	char lo[VCHECK_NUMBER_STR_MAX], hi[VCHECK_NUMBER_STR_MAX];
	double x, scale = 1;

	if (!vcheck_get_number(value, &x) || x < spec->min_value || x > spec->max_value)
		return vcheck_fail(err, name, "%s must be a number between %s and %s", name,
		            vcheck_number_str(lo, spec->min_value), vcheck_number_str(hi, spec->max_value));
	if (x < 0 && !spec->allow_negative)
		return vcheck_fail(err, name, "%s must be a non-negative number", name);

	for (int64_t i = 0; i < spec->decimal_places; i++)
		scale *= 10;
	/* x·10^places overflows only for |x| > 1e298, which is an integer anyway. */
	if (isfinite(x * scale) && !vcheck_is_integral(x * scale))
		return vcheck_fail(err, name, "%s must be a number with at most %" PRId64 " decimal places", name,
		            spec->decimal_places);

	*ret = json_object_new_double(x);
	return *ret ? 0 : -ENOMEM;
}

/* Checks value as an answer to spec (plain encoding A); name is both the error's
 * field and how its reason names the value. */
int answer_check(const ResponseSpec *spec, json_object *value, const char *name,
                 json_object **ret_normalised, ValidationError *err) {
	const SelectOption *opt;
	json_object *normalised = NULL;
	int r;

	switch (spec->type) {
	case RESPONSE_TEXT:
	case RESPONSE_EDITABLE_TEXT:
		r = check_text_answer(spec, value, name, &normalised, err);
		break;

	case RESPONSE_SINGLE_SELECT:
		opt = respconfig_option_find_json(spec, value);
		if (!opt)
			return vcheck_fail(err, name, "%s must be one of the option values", name);
		normalised = respconfig_option_value(opt);
		r = normalised ? 0 : -ENOMEM;
		break;

	case RESPONSE_MULTI_SELECT:
		r = check_multi_answer(spec, value, name, &normalised, err);
		break;

	case RESPONSE_RATING:
		r = check_rating_answer(spec, value, name, &normalised, err);
		break;

	case RESPONSE_NUMBER:
		r = check_number_answer(spec, value, name, &normalised, err);
		break;

	case RESPONSE_BOOLEAN:
		if (!json_object_is_type(value, json_type_boolean))
			return vcheck_fail(err, name, "%s must be a boolean", name);
		normalised = json_object_new_boolean(json_object_get_boolean(value));
		r = normalised ? 0 : -ENOMEM;
		break;

	default:
		return -EINVAL;
	}
	if (r < 0)
		return r;

	if (ret_normalised)
		*ret_normalised = normalised;
	else
		json_object_put(normalised);
	return 0;
}

int validate_answer(const char *response_type, json_object *config, json_object *value,
                    json_object **ret_normalised, ValidationError *err) {
	ResponseType type = respconfig_type_from_string(response_type);
	ResponseSpec spec;
	char list[160];
	int r;

	if (type < 0)
		return vcheck_fail(err, "response_type", "response_type must be one of: %s",
		            vcheck_join_names(respconfig_type_names, _RESPONSE_TYPE_MAX, list, sizeof list));
	r = respconfig_parse(type, config, &spec, err);
	if (r < 0)
		return r;
	return answer_check(&spec, value, "answer", ret_normalised, err);
}

/* ---- response_data → result ------------------------------------------------------- */

/* The option a reviewer's value (or, failing that, label) names. As a last
 * resort "option_N" names the Nth simple-string option: §5.3 says HITL.sh may
 * generate such values for options given as bare strings. */
static const SelectOption *option_resolve(const ResponseSpec *spec, json_object *value, json_object *label) {
	const SelectOption *o;
	const char *s;
	size_t len;

	o = respconfig_option_find_json(spec, value);
	if (!o)
		o = respconfig_option_find_json(spec, label);
	if (o || !vcheck_get_string(value, &s, &len))
		return o;

	if (len > 7 && strncmp(s, "option_", 7) == 0 && len <= 9) {
		size_t index = 0;

		for (size_t i = 7; i < len; i++) {
			if (s[i] < '0' || s[i] > '9')
				return NULL;
			index = index * 10 + (size_t) (s[i] - '0');
		}
		if (index >= 1 && index <= spec->n_options && spec->options[index - 1].simple)
			return &spec->options[index - 1];
	}
	return NULL;
}

/* value (a string) mapped to its option's value, else kept as given (allow_other). */
static json_object *select_result(const ResponseSpec *spec, json_object *value, json_object *label) {
	const SelectOption *o = option_resolve(spec, value, label);

	if (o)
		return respconfig_option_value(o);
	return json_object_new_string_len(json_object_get_string(value), json_object_get_string_len(value));
}

/* Reads key of a structured (B) response_data: absent or null → NULL with 0;
 * present with another type than want → -EBADMSG. */
static int structured_get(json_object *data, const char *key, json_type want, json_object **ret) {
	json_object *v = json_object_object_get(data, key);

	if (v && !json_object_is_type(v, want))
		return -EBADMSG;
	*ret = v;
	return 0;
}

static int normalise_single(const ResponseSpec *spec, json_object *data, json_object **ret) {
	json_object *value = data, *label = NULL;
	int r;

	if (json_object_is_type(data, json_type_object)) {
		r = structured_get(data, "selected_value", json_type_string, &value);
		if (r < 0)
			return r;
		r = structured_get(data, "selected_label", json_type_string, &label);
		if (r < 0)
			return r;
		if (!value)
			value = TAKE_PTR(label);
	}
	if (!json_object_is_type(value, json_type_string))
		return -EBADMSG;

	*ret = select_result(spec, value, label);
	return *ret ? 0 : -ENOMEM;
}

static int normalise_multi(const ResponseSpec *spec, json_object *data, json_object **ret) {
	_cleanup_(json_object_putp) json_object *result = NULL;
	json_object *values = data, *labels = NULL;
	size_t n;
	int r;

	if (json_object_is_type(data, json_type_object)) {
		r = structured_get(data, "selected_values", json_type_array, &values);
		if (r < 0)
			return r;
		r = structured_get(data, "selected_labels", json_type_array, &labels);
		if (r < 0)
			return r;
		if (!values)
			values = TAKE_PTR(labels);
	}

	result = json_object_new_array();
	if (!result)
		return -ENOMEM;

	/* The n8n node sends a lone string for one choice; read it as [string]. */
	if (json_object_is_type(values, json_type_string)) {
		json_object *v = select_result(spec, values, NULL);
		if (!v || json_object_array_add(result, v) < 0) {
			json_object_put(v);
			return -ENOMEM;
		}
		*ret = TAKE_PTR(result);
		return 0;
	}
	if (!json_object_is_type(values, json_type_array))
		return -EBADMSG;

	n = json_object_array_length(values);
	/* Labels help only when they line up with the values one to one. */
	if (labels && json_object_array_length(labels) != n)
		labels = NULL;

	for (size_t i = 0; i < n; i++) {
		json_object *value = json_object_array_get_idx(values, i);
		json_object *label = labels ? json_object_array_get_idx(labels, i) : NULL;
		json_object *v;

		if (!json_object_is_type(value, json_type_string))
			return -EBADMSG;
		v = select_result(spec, value, label);
		if (!v || json_object_array_add(result, v) < 0) {
			json_object_put(v);
			return -ENOMEM;
		}
	}

	*ret = TAKE_PTR(result);
	return 0;
}

/* Plain scalar, or the one key of encoding B that carries it. */
static int normalise_scalar(json_object *data, const char *key, json_type want, json_object **ret) {
	json_object *v = data;
	double x;

	if (json_object_is_type(data, json_type_object) && !json_object_object_get_ex(data, key, &v))
		return -EBADMSG;

	if (want == json_type_boolean) {
		if (!json_object_is_type(v, json_type_boolean))
			return -EBADMSG;
		*ret = json_object_new_boolean(json_object_get_boolean(v));
	} else {
		if (!vcheck_get_number(v, &x))
			return -EBADMSG;
		*ret = json_object_new_double(x);
	}
	return *ret ? 0 : -ENOMEM;
}

/* editable_text: {revised_text, was_edited} → the revised text; a bare string
 * is read as the text; was_edited false without a text means the draft. */
static int normalise_editable(const ResponseSpec *spec, json_object *data, json_object **ret) {
	json_object *text = data, *edited = NULL;
	int r;

	if (json_object_is_type(data, json_type_object)) {
		r = structured_get(data, "revised_text", json_type_string, &text);
		if (r < 0)
			return r;
		r = structured_get(data, "was_edited", json_type_boolean, &edited);
		if (r < 0)
			return r;
		if (!text && edited && !json_object_get_boolean(edited)) {
			*ret = json_object_new_string(spec->draft_text);
			return *ret ? 0 : -ENOMEM;
		}
	}
	if (!json_object_is_type(text, json_type_string))
		return -EBADMSG;
	*ret = json_object_new_string_len(json_object_get_string(text), json_object_get_string_len(text));
	return *ret ? 0 : -ENOMEM;
}

int validate_normalise_result(const char *response_type, json_object *config,
                              json_object *response_data, json_object **ret_result) {
	ResponseType type = respconfig_type_from_string(response_type);
	json_object *result = NULL;
	ResponseSpec spec;
	int r;

	assert(ret_result);

	if (type < 0)
		return -EINVAL;
	r = respconfig_parse(type, config, &spec, NULL);
	if (r < 0)
		return r;

	switch (type) {
	case RESPONSE_TEXT:
		if (!json_object_is_type(response_data, json_type_string))
			return -EBADMSG;
		result = json_object_new_string_len(json_object_get_string(response_data),
		                                    json_object_get_string_len(response_data));
		r = result ? 0 : -ENOMEM;
		break;
	case RESPONSE_SINGLE_SELECT:
		r = normalise_single(&spec, response_data, &result);
		break;
	case RESPONSE_MULTI_SELECT:
		r = normalise_multi(&spec, response_data, &result);
		break;
	case RESPONSE_RATING:
		r = normalise_scalar(response_data, "rating", json_type_double, &result);
		break;
	case RESPONSE_NUMBER:
		r = normalise_scalar(response_data, "number", json_type_double, &result);
		break;
	case RESPONSE_BOOLEAN:
		r = normalise_scalar(response_data, "boolean", json_type_boolean, &result);
		break;
	case RESPONSE_EDITABLE_TEXT:
		r = normalise_editable(&spec, response_data, &result);
		break;
	default:
		return -EINVAL;
	}
	if (r < 0)
		return r;

	*ret_result = result;
	return 0;
}

