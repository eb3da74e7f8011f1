/* ctl_params.c — hitlctl's flags turned into request params: reading user
 * input (files, stdin, numbers, yes/no words), request.submit's params built
 * from the submit/ask flags, and the blame table that maps a field the daemon
 * refused back to the flag (or --config/--params) that set it (see ctl_params.h). */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cleanup.h"
#include "ctl_input.h"
#include "ctl_output.h"
#include "ctl_params.h"

/* Where build_submit_params() took each field from: a flag, --config or
 * --params. An error on a field is blamed on what set it, not on the flag that
 * usually sets it (max_length from --config is not --max's fault). */
#define ORIGINS_MAX 64
static struct {
	char field[64];
	const char *flag;
} origins[ORIGINS_MAX];
static size_t n_origins;

static void origin_set(const char *field, const char *flag) {
	for (size_t i = 0; i < n_origins; i++)
		if (streq(origins[i].field, field)) {
			origins[i].flag = flag;
			return;
		}
	if (n_origins < ORIGINS_MAX && strlen(field) < sizeof origins[0].field) {
		snprintf(origins[n_origins].field, sizeof origins[0].field, "%s", field);
		origins[n_origins++].flag = flag;
	}
}

static void origin_set_config(const char *key, const char *flag) {
	char field[64];

	snprintf(field, sizeof field, "response_config.%s", key);
	origin_set(field, flag);
}

/* The origin recorded for the longest leading part of field ("response_config"
 * covers "response_config.options[2].value"). */
static const char *origin_of(const char *field) {
	const char *best = NULL;
	size_t best_len = 0;

	for (size_t i = 0; i < n_origins; i++) {
		size_t n = strlen(origins[i].field);

		/* strchr() finds the terminator too: an exact match counts. */
		if (n > best_len && strncmp(field, origins[i].field, n) == 0 && strchr(".[", field[n])) {
			best = origins[i].flag;
			best_len = n;
		}
	}
	return best;
}

/* Maps a field the daemon named in -32602 to the flag that sets it. */
const char *flag_for_field(const char *field) {
	static const struct {
		const char *prefix, *flag;
	} map[] = {
		{ "loop_id", "--loop" },
		{ "request_text", "--text" },
		{ "response_type", "--type" },
		{ "response_config.options", "--option" },
		{ "response_config.max_selections", "--max" },
		{ "response_config.min_selections", "--min" },
		{ "response_config.max_length", "--max" },
		{ "response_config.min_length", "--min" },
		{ "response_config.scale_max", "--max" },
		{ "response_config.scale_min", "--min" },
		{ "response_config.scale_step", "--step" },
		{ "response_config.max_value", "--max" },
		{ "response_config.min_value", "--min" },
		{ "response_config.decimal_places", "--decimals" },
		{ "response_config.placeholder", "--placeholder" },
		{ "response_config.prefix", "--prefix" },
		{ "response_config.suffix", "--suffix" },
		{ "response_config", "--config" },
		{ "default_response", "--default" },
		{ "priority", "--priority" },
		{ "processing_type", "--deferred" },
		{ "timeout_seconds", "--timeout" },
		{ "context", "--context" },
		{ "image_url", "--image-url" },
		{ "file_url", "--file-url" },
		{ "file_type", "--file-type" },
		{ "file_name", "--file-name" },
		{ "video_url", "--video-url" },
		{ "audio_url", "--audio-url" },
		{ "type", "--content" },
		{ "response_config.draft_text", "--draft-text" },
		{ "response_config.true_label", "--true-label" },
		{ "response_config.false_label", "--false-label" },
		{ "callback_url", "--callback-url" },
		{ "client_ref", "--ref" },
		{ "feedback.rating", "--rating" },
		{ "feedback.comment", "--comment" },
		{ "feedback.accuracy", "--accuracy" },
		{ "feedback.timeliness", "--timeliness" },
		{ "feedback.helpfulness", "--helpfulness" },
		{ "feedback.category", "--category" },
		{ "feedback.tags", "--tag" },
		{ "feedback.would_recommend", "--would-recommend" },
		{ "feedback.follow_up_needed", "--follow-up" },
		{ "feedback", "--rating/--comment" },
		{ "name", "--name" },
		{ "description", "--description" },
		{ "icon", "--icon" },
		{ "state", "--state" },
		{ "timeout_ms", "--timeout" },
		{ "data", "--data" },
	};

	const char *origin;

	if (!field)
		return NULL;
	origin = origin_of(field);
	if (origin)
		return origin;
	for (size_t i = 0; i < ELEMENTSOF(map); i++)
		if (strncmp(field, map[i].prefix, strlen(map[i].prefix)) == 0)
			return map[i].flag;
	return NULL;
}

/* ------------------------------------------------------------------ request.submit */

int submit_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
	SubmitOpts *o = userdata;

	switch (opt) {
	case 'l': case OPT_LOOP: o->loop = arg; break;
	case 't': case OPT_TEXT: o->text = arg; break;
	case OPT_TEXT_FILE: o->text_file = arg; break;
	case OPT_TYPE: o->type = arg; break;
	case 'o': case OPT_OPTION:
		if (strv_push(&o->options, &o->n_options, arg) < 0)
			return usage_error("out of memory");
		break;
	case OPT_MIN: o->min = arg; break;
	case OPT_MAX: o->max = arg; break;
	case OPT_STEP: o->step = arg; break;
	case OPT_DECIMALS: o->decimals = arg; break;
	case OPT_PLACEHOLDER: o->placeholder = arg; break;
	case OPT_PREFIX: o->prefix = arg; break;
	case OPT_SUFFIX: o->suffix = arg; break;
	case OPT_ALLOW_NEGATIVE: o->allow_negative = true; break;
	case OPT_REQUIRED: o->required = true; break;
	case OPT_CONFIG: o->config = arg; break;
	case 'd': case OPT_DEFAULT: o->default_value = arg; break;
	case 'p': case OPT_PRIORITY: o->priority = arg; break;
	case OPT_TIMEOUT: o->timeout = arg; break;
	case OPT_DEFERRED: o->deferred = true; break;
	case OPT_CONTEXT: o->context = arg; break;
	case OPT_IMAGE_URL: o->image_url = arg; break;
	case OPT_CONTENT: o->content = arg; break;
	case OPT_FILE_URL: o->file_url = arg; break;
	case OPT_FILE_TYPE: o->file_type = arg; break;
	case OPT_FILE_NAME: o->file_name = arg; break;
	case OPT_VIDEO_URL: o->video_url = arg; break;
	case OPT_AUDIO_URL: o->audio_url = arg; break;
	case OPT_DRAFT_TEXT: o->draft_text = arg; break;
	case OPT_MAX_LENGTH: o->max_length = arg; break;
	case OPT_TRUE_LABEL: o->true_label = arg; break;
	case OPT_FALSE_LABEL: o->false_label = arg; break;
	case OPT_CALLBACK_URL: o->callback_url = arg; break;
	case OPT_REF: o->ref = arg; break;
	case OPT_PARAMS: o->params_file = arg; break;
	case 'e': case OPT_EXPECT:
		if (!o->ask)
			return usage_error("--expect is for 'hitlctl ask'.");
		o->expect = arg;
		break;
	default:
		return usage_error("%s: unexpected option — see 'hitlctl %s --help'.", ctl->verb, ctl->verb);
	}
	return 0;
}

/* The canonical response type for what a user typed ("single-select" too). */
static const char *canonical_type(const char *s) {
	static const struct {
		const char *alias, *name;
	} types[] = {
		{ "single_select", "single_select" }, { "single-select", "single_select" }, { "select", "single_select" },
		{ "multi_select", "multi_select" },   { "multi-select", "multi_select" },   { "multi", "multi_select" },
		{ "rating", "rating" },               { "number", "number" },               { "text", "text" },
		{ "boolean", "boolean" },
		{ "editable_text", "editable_text" }, { "editable-text", "editable_text" }, { "editable", "editable_text" },
	};

	for (size_t i = 0; i < ELEMENTSOF(types); i++)
		if (strcasecmp(s, types[i].alias) == 0)
			return types[i].name;
	return NULL;
}

static int set_number(json_object *config, const char *key, const char *flag, const char *value) {
	json_object *n = parse_number(value);

	if (!n)
		return usage_error("%s %s: not a number.", flag, value);
	json_object_object_add(config, key, n);
	origin_set_config(key, flag);
	return 0;
}

static int set_integer(json_object *config, const char *key, const char *flag, const char *value) {
	char *end;
	long long v;

	errno = 0;
	v = strtoll(value, &end, 10);
	if (!*value || *end || errno)
		return usage_error("%s %s: not a whole number.", flag, value);
	json_object_object_add(config, key, json_object_new_int64(v));
	origin_set_config(key, flag);
	return 0;
}

/* ------------------------------------------------------------------ response types */

/* A config builder puts the flags that only its response type has into
 * response_config; a default parser reads --default as the JSON its type
 * answers with. */
typedef int (*config_builder_t)(const SubmitOpts *o, json_object *config);
typedef int (*default_parser_t)(const char *type, const char *value, json_object **ret);

static int config_nothing(const SubmitOpts *o, json_object *config) {
	return 0;
}

/* rating: --min/--max/--step are the scale; none given: the usual 1–5. */
static int config_rating(const SubmitOpts *o, json_object *config) {
	int k = 0;

	if (o->min)
		k = set_number(config, "scale_min", "--min", o->min);
	if (k == 0 && o->max)
		k = set_number(config, "scale_max", "--max", o->max);
	if (k == 0 && o->step)
		k = set_number(config, "scale_step", "--step", o->step);
	if (k == 0 && !json_object_object_get_ex(config, "scale_max", NULL) &&
	    !json_object_object_get_ex(config, "max", NULL) && !json_object_object_get_ex(config, "max_value", NULL))
		json_object_object_add(config, "scale_max", json_object_new_int(5));
	return k;
}

/* number: --min/--max are the range, --decimals the decimal places. */
static int config_number(const SubmitOpts *o, json_object *config) {
	int k = 0;

	if (o->min)
		k = set_number(config, "min_value", "--min", o->min);
	if (k == 0 && o->max)
		k = set_number(config, "max_value", "--max", o->max);
	if (k == 0 && o->decimals)
		k = set_integer(config, "decimal_places", "--decimals", o->decimals);
	return k;
}

/* text: --min/--max are the answer's length (--max after --max-length wins). */
static int config_text(const SubmitOpts *o, json_object *config) {
	int k = 0;

	if (o->min)
		k = set_integer(config, "min_length", "--min", o->min);
	if (k == 0 && o->max)
		k = set_integer(config, "max_length", "--max", o->max);
	return k;
}

/* multi_select: --min/--max are how many choices. */
static int config_multi_select(const SubmitOpts *o, json_object *config) {
	int k = 0;

	if (o->min)
		k = set_integer(config, "min_selections", "--min", o->min);
	if (k == 0 && o->max)
		k = set_integer(config, "max_selections", "--max", o->max);
	return k;
}

static int default_string(const char *type, const char *value, json_object **ret) {
	*ret = json_object_new_string(value);
	return 0;
}

/* multi_select: "a,b" or a JSON array. */
static int default_list(const char *type, const char *value, json_object **ret) {
	_cleanup_(freep) char *copy = NULL;
	json_object *v;
	char *save = NULL;

	if (value[0] == '[') {
		v = parse_json_text(value);
		if (!v || !json_object_is_type(v, json_type_array)) {
			json_object_put(v);
			return usage_error("--default %s: not a JSON array of option values.", value);
		}
		*ret = v;
		return 0;
	}
	copy = strdup(value);
	v = json_object_new_array();
	if (!copy || !v) {
		json_object_put(v);
		return usage_error("out of memory");
	}
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		json_object_array_add(v, json_object_new_string(tok));
	*ret = v;
	return 0;
}

static int default_number(const char *type, const char *value, json_object **ret) {
	json_object *v = parse_number(value);

	if (!v)
		return usage_error("--default %s: a %s request needs a number.", value, type);
	*ret = v;
	return 0;
}

static int default_boolean(const char *type, const char *value, json_object **ret) {
	bool b;

	if (parse_bool_word(value, &b) < 0)
		return usage_error("--default %s: a boolean request needs true or false.", value);
	*ret = json_object_new_boolean(b);
	return 0;
}

typedef struct ResponseType {
	const char *name;
	config_builder_t config;
	default_parser_t parse_default;
	bool choices; /* answered by picking among response_config.options (--option) */
} ResponseType;

static const ResponseType response_types[] = {
	{ "single_select", config_nothing, default_string, true },
	{ "multi_select", config_multi_select, default_list, true },
	{ "rating", config_rating, default_number, false },
	{ "number", config_number, default_number, false },
	{ "text", config_text, default_string, false },
	{ "boolean", config_nothing, default_boolean, false },
	{ "editable_text", config_nothing, default_string, false },
};

/* A type only --params names and hitld will refuse: its --default is text. */
static const ResponseType response_type_unknown = { NULL, config_nothing, default_string, false };

static const ResponseType *response_type_find(const char *name) {
	for (size_t i = 0; i < ELEMENTSOF(response_types); i++)
		if (streq(response_types[i].name, name))
			return &response_types[i];
	return &response_type_unknown;
}

/* String flags that go into response_config as they are. */
typedef struct StringFlag {
	size_t offset; /* of the value in SubmitOpts */
	const char *key, *flag;
} StringFlag;

static void set_strings(const SubmitOpts *o, const StringFlag *flags, size_t n, json_object *config) {
	for (size_t i = 0; i < n; i++) {
		const char *v = *(const char *const *) ((const char *) o + flags[i].offset);

		if (v) {
			json_object_object_add(config, flags[i].key, json_object_new_string(v));
			origin_set_config(flags[i].key, flags[i].flag);
		}
	}
}

static void set_true(json_object *config, const char *key, const char *flag) {
	json_object_object_add(config, key, json_object_new_boolean(true));
	origin_set_config(key, flag);
}

/* The flags of some types only, checked against this type before any is
 * read: --max-length, --draft-text, the boolean labels first, then (after
 * --max-length is read) the range and display flags. */
static int check_label_flags(const SubmitOpts *o, const char *type) {
	if (o->max_length && !streq(type, "text") && !streq(type, "editable_text"))
		return usage_error("--max-length applies to --type text and editable_text only.");
	if (o->draft_text && !streq(type, "editable_text"))
		return usage_error("--draft-text applies to --type editable_text only.");
	if ((o->true_label || o->false_label) && !streq(type, "boolean"))
		return usage_error("--true-label and --false-label apply to --type boolean only.");
	return 0;
}

static int check_range_flags(const SubmitOpts *o, const char *type) {
	bool rating = streq(type, "rating"), number = streq(type, "number"), text = streq(type, "text");

	if ((o->min || o->max) && !(rating || number || text || streq(type, "multi_select")))
		return usage_error("--min/--max apply to rating, number, text and multi_select, not %s.", type);
	if (o->step && !rating)
		return usage_error("--step applies to --type rating only.");
	if ((o->decimals || o->prefix || o->suffix || o->allow_negative) && !number)
		return usage_error("--decimals, --prefix, --suffix and --allow-negative apply to --type number only.");
	if (o->placeholder && !(text || number))
		return usage_error("--placeholder applies to --type text and number only.");
	return 0;
}

/* The type-specific flags into response_config: --max-length and the labels,
 * the type's own builder, then the display flags and --required. */
static int apply_type_flags(const SubmitOpts *o, const ResponseType *t, const char *type, json_object *config) {
	static const StringFlag labels[] = {
		{ offsetof(SubmitOpts, draft_text), "draft_text", "--draft-text" },
		{ offsetof(SubmitOpts, true_label), "true_label", "--true-label" },
		{ offsetof(SubmitOpts, false_label), "false_label", "--false-label" },
	};
	static const StringFlag display[] = {
		{ offsetof(SubmitOpts, placeholder), "placeholder", "--placeholder" },
		{ offsetof(SubmitOpts, prefix), "prefix", "--prefix" },
		{ offsetof(SubmitOpts, suffix), "suffix", "--suffix" },
	};
	int k;

	k = check_label_flags(o, type);
	if (k == 0 && o->max_length)
		k = set_integer(config, "max_length", "--max-length", o->max_length);
	if (k)
		return k;
	set_strings(o, labels, ELEMENTSOF(labels), config);
	k = check_range_flags(o, type);
	if (k == 0)
		k = t->config(o, config);
	if (k)
		return k;
	set_strings(o, display, ELEMENTSOF(display), config);
	if (o->allow_negative)
		set_true(config, "allow_negative", "--allow-negative");
	if (o->required)
		set_true(config, "required", "--required");
	return 0;
}

static int read_text_arg(const char *path, char **ret) {
	_cleanup_(freep) char *text = NULL;
	size_t len;
	int k;

	k = read_bounded(path, USER_INPUT_MAX, &text, &len);
	if (k == -EFBIG)
		return usage_error("%s: the request text is too long (HITL.sh allows 2000 characters).",
		                   streq(path, "-") ? "stdin" : path);
	if (k < 0)
		return usage_error("cannot read the request text from %s: %s", streq(path, "-") ? "stdin" : path,
		                   strerror(-k));
	/* A file usually ends in a newline the author did not mean as text. */
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = 0;
	*ret = TAKE_PTR(text);
	return 0;
}

/* --content and the content flags: each URL flag names its type (--image-url
 * an image request, …); --content says it outright and must agree. */
static int apply_content_flags(const SubmitOpts *o, json_object *p) {
	const struct {
		const char *value, *field, *flag, *type;
	} flags[] = {
		{ o->image_url, "image_url", "--image-url", "image" },
		{ o->file_url, "file_url", "--file-url", "file" },
		{ o->file_type, "file_type", "--file-type", "file" },
		{ o->file_name, "file_name", "--file-name", "file" },
		{ o->video_url, "video_url", "--video-url", "video" },
		{ o->audio_url, "audio_url", "--audio-url", "audio" },
	};
	static const char *const types[] = { "markdown", "image", "file", "video", "audio" };
	const char *type = NULL, *type_flag = NULL;

	if (o->content) {
		for (size_t i = 0; i < ELEMENTSOF(types); i++)
			if (strcasecmp(o->content, types[i]) == 0)
				type = types[i];
		if (!type)
			return usage_error("--content %s: not a content type (markdown, image, file, video, audio).",
			                   o->content);
		type_flag = "--content";
	}
	for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
		if (!flags[i].value)
			continue;
		if (type && !streq(type, flags[i].type))
			return usage_error("%s is for %s requests, but %s makes this one %s.", flags[i].flag, flags[i].type,
			                   type_flag, type);
		if (!type) {
			type = flags[i].type;
			type_flag = flags[i].flag;
		}
		json_object_object_add(p, flags[i].field, json_object_new_string(flags[i].value));
		origin_set(flags[i].field, flags[i].flag);
	}
	if (type) {
		json_object_object_add(p, "type", json_object_new_string(type));
		origin_set("type", type_flag);
	}
	return 0;
}

/* ------------------------------------------------------------------ request.submit's params */

/* --params FILE, whose every field is blamed on it, else {}. */
static int submit_params_base(const SubmitOpts *o, json_object **ret) {
	_cleanup_(json_object_putp) json_object *p = NULL;
	_cleanup_(freep) char *raw = NULL;
	int k;

	if (!o->params_file) {
		*ret = json_object_new_object();
		return *ret ? 0 : usage_error("out of memory");
	}
	k = read_bounded(o->params_file, USER_INPUT_MAX, &raw, NULL);
	if (k < 0)
		return usage_error("--params %s: %s", o->params_file, k == -EFBIG ? "larger than 1 MiB" : strerror(-k));
	p = parse_json_text(raw);
	if (!p || !json_object_is_type(p, json_type_object))
		return usage_error("--params %s: not a JSON object of request.submit fields.", o->params_file);
	json_object_object_foreach(p, pkey, pval) {
		(void) pval;
		origin_set(pkey, "--params");
	}
	*ret = TAKE_PTR(p);
	return 0;
}

/* The TEXT arguments joined by spaces. */
static char *join_words(char **args, int n_args) {
	size_t len = 0;
	char *text;

	for (int i = 0; i < n_args; i++)
		len += strlen(args[i]) + 1;
	text = malloc(len + 1);
	if (!text)
		return NULL;
	text[0] = 0;
	for (int i = 0; i < n_args; i++) {
		if (i)
			strcat(text, " ");
		strcat(text, args[i]);
	}
	return text;
}

/* request_text: one of an argument, --text, --text-file, --params, stdin. */
static int submit_params_text(const SubmitOpts *o, char **args, int n_args, json_object *p) {
	_cleanup_(freep) char *text = NULL;
	int k;

	if (!!o->text + !!o->text_file + (n_args > 0) > 1)
		return usage_error("give the request text once: as an argument, --text or --text-file.");
	if (o->text || o->text_file || n_args > 0)
		origin_set("request_text", o->text ? "--text" : o->text_file ? "--text-file" : "TEXT");
	if (o->text) {
		json_object_object_add(p, "request_text", json_object_new_string(o->text));
		return 0;
	}
	if (o->text_file) {
		k = read_text_arg(o->text_file, &text);
	} else if (n_args > 0) {
		text = join_words(args, n_args);
		k = text ? 0 : usage_error("out of memory");
	} else if (json_object_object_get_ex(p, "request_text", NULL))
		return 0;
	else {
		if (isatty(STDIN_FILENO) || (o->params_file && streq(o->params_file, "-")))
			return usage_error("no request text: give it as an argument, with --text or --text-file, or on stdin.");
		k = read_text_arg("-", &text);
		if (k)
			return k;
		assert(text); /* read_text_arg() succeeded */
		if (!text[0])
			return usage_error("no request text: stdin was empty; give the text as an argument, with --text or --text-file.");
	}
	if (k)
		return k;
	json_object_object_add(p, "request_text", json_object_new_string(text));
	return 0;
}

static int submit_params_loop(const SubmitOpts *o, json_object *p) {
	if (o->loop) {
		json_object_object_add(p, "loop_id", json_object_new_string(o->loop));
		origin_set("loop_id", "--loop");
	}
	if (!json_object_object_get_ex(p, "loop_id", NULL))
		return usage_error("no loop: say which loop of reviewers gets the request with --loop ID ('hitlctl loops list' shows them).");
	return 0;
}

/* response_type: --type, else single_select when there are options, else
 * what --params says, else text. *ret_type points into p. */
static int submit_params_type(const SubmitOpts *o, json_object *p, const char **ret_type) {
	const char *type;

	if (o->type) {
		type = canonical_type(o->type);
		if (!type)
			return usage_error("--type %s: not a response type (single_select, multi_select, rating, number, text, boolean, editable_text).",
			                   o->type);
	} else if (o->n_options > 0)
		type = "single_select";
	else if (jstr(p, "response_type"))
		type = jstr(p, "response_type");
	else
		type = "text";
	json_object_object_add(p, "response_type", json_object_new_string(type));
	if (o->type)
		origin_set("response_type", "--type");
	*ret_type = jstr(p, "response_type");
	if (!*ret_type) /* its copy could not be made */
		return usage_error("out of memory");
	return 0;
}

/* response_config as --params has it (a copy), with --config's keys over it. */
static int config_base(const SubmitOpts *o, json_object *p, json_object **ret) {
	_cleanup_(json_object_putp) json_object *config = NULL, *extra = NULL;
	json_object *v = json_object_object_get(p, "response_config");

	if (v) {
		if (!json_object_is_type(v, json_type_object))
			return usage_error("--params: response_config must be an object.");
		if (json_object_deep_copy(v, &config, NULL) < 0)
			return usage_error("out of memory");
	} else
		config = json_object_new_object();
	if (!config)
		return usage_error("out of memory");
	if (o->config) {
		extra = parse_json_text(o->config);
		if (!extra || !json_object_is_type(extra, json_type_object))
			return usage_error("--config %s: not a JSON object (e.g. '{\"max_length\": 200}').", o->config);
		json_object_object_foreach(extra, key, val) {
			json_object_object_add(config, key, json_object_get(val));
			origin_set_config(key, "--config");
		}
	}
	*ret = TAKE_PTR(config);
	return 0;
}

/* --option VALUE[=Label]… as response_config.options. */
static int config_options(const SubmitOpts *o, const ResponseType *t, const char *type, json_object *config) {
	json_object *options;

	if (o->n_options == 0)
		return 0;
	if (!t->choices)
		return usage_error("--option is for --type single_select or multi_select, not %s.", type);
	options = json_object_new_array();
	json_object_object_add(config, "options", options);
	for (size_t i = 0; i < o->n_options; i++) {
		json_object *opt = json_object_new_object();
		const char *eq = strchr(o->options[i], '=');
		_cleanup_(freep) char *value = eq ? strndup(o->options[i], (size_t) (eq - o->options[i]))
		                                  : strdup(o->options[i]);

		json_object_array_add(options, opt);
		if (!value || !value[0])
			return usage_error("--option %s: the value before '=' is empty.", o->options[i]);
		json_object_object_add(opt, "value", json_object_new_string(value));
		json_object_object_add(opt, "label", json_object_new_string(eq ? eq + 1 : value));
	}
	origin_set_config("options", "--option");
	return 0;
}

static int submit_params_config(const SubmitOpts *o, const ResponseType *t, const char *type, json_object *p) {
	_cleanup_(json_object_putp) json_object *config = NULL;
	int k;

	k = config_base(o, p, &config);
	if (k == 0)
		k = config_options(o, t, type, config);
	if (k)
		return k;
	if (t->choices && !json_object_object_get_ex(config, "options", NULL))
		return usage_error("--type %s needs choices: give each with --option VALUE[=Label].", type);
	k = apply_type_flags(o, t, type, config);
	if (k)
		return k;
	json_object_object_add(p, "response_config", TAKE_PTR(config));
	return 0;
}

/* default_response: --default, else (editable_text) --draft-text, else what
 * --params says; one is required. */
static int submit_params_default(const SubmitOpts *o, const ResponseType *t, const char *type, json_object *p) {
	if (o->default_value) {
		json_object *d = NULL;
		int k = t->parse_default(type, o->default_value, &d);

		if (k)
			return k;
		json_object_object_add(p, "default_response", d);
		origin_set("default_response", "--default");
	} else if (streq(type, "editable_text") && o->draft_text &&
	           !json_object_object_get_ex(p, "default_response", NULL)) {
		/* Nobody edited it: the draft stands. */
		json_object_object_add(p, "default_response", json_object_new_string(o->draft_text));
		origin_set("default_response", "--draft-text");
	}
	if (!json_object_object_get_ex(p, "default_response", NULL))
		return usage_error("--default VALUE is required: the answer used if nobody replies before the deadline (e.g. --default reject%s).",
		                   streq(type, "editable_text") ? "; for editable_text --draft-text also serves" : "");
	return 0;
}

/* priority, timeout_seconds and processing_type: --deferred, else
 * time-sensitive when --timeout was given, else what --params says, else the
 * daemon's default (deferred). */
static int submit_params_timing(const SubmitOpts *o, json_object *p) {
	if (o->priority) {
		json_object_object_add(p, "priority", json_object_new_string(o->priority));
		origin_set("priority", "--priority");
	}
	if (o->timeout) {
		uint64_t s;

		if (hitl_duration_parse(o->timeout, &s) < 0)
			return usage_error("--timeout %s: not a duration (e.g. 900, 90s, 15m, 2h, 1d).", o->timeout);
		json_object_object_add(p, "timeout_seconds", json_object_new_int64((int64_t) s));
		origin_set("timeout_seconds", "--timeout");
	}
	if (o->deferred)
		json_object_object_add(p, "processing_type", json_object_new_string("deferred"));
	else if (o->timeout)
		json_object_object_add(p, "processing_type", json_object_new_string("time-sensitive"));
	return 0;
}

/* context, the content (apply_content_flags), callback_url, client_ref. */
static int submit_params_extras(const SubmitOpts *o, json_object *p) {
	int k;

	if (o->context) {
		json_object *ctx = parse_json_text(o->context);

		if (!ctx || !json_object_is_type(ctx, json_type_object)) {
			json_object_put(ctx);
			return usage_error("--context %s: not a JSON object (e.g. '{\"build\": 4812}').", o->context);
		}
		json_object_object_add(p, "context", ctx);
		origin_set("context", "--context");
	}
	k = apply_content_flags(o, p);
	if (k)
		return k;
	if (o->callback_url) {
		json_object_object_add(p, "callback_url", json_object_new_string(o->callback_url));
		origin_set("callback_url", "--callback-url");
	}
	if (o->ref)
		json_object_object_add(p, "client_ref", json_object_new_string(o->ref));
	return 0;
}

/* Builds the request.submit params from the flags (and --params), field by
 * field in the order the checks have always run. */
int build_submit_params(const SubmitOpts *o, char **args, int n_args, json_object **ret) {
	_cleanup_(json_object_putp) json_object *p = NULL;
	const ResponseType *t = NULL;
	const char *type = NULL;
	int k;

	n_origins = 0; /* a new request: nothing set yet */
	k = submit_params_base(o, &p);
	if (k == 0)
		k = submit_params_text(o, args, n_args, p);
	if (k == 0)
		k = submit_params_loop(o, p);
	if (k == 0)
		k = submit_params_type(o, p, &type);
	if (k)
		return k;
	assert(type); /* submit_params_type() succeeded */
	t = response_type_find(type);
	k = submit_params_config(o, t, type, p);
	if (k == 0)
		k = submit_params_default(o, t, type, p);
	if (k == 0)
		k = submit_params_timing(o, p);
	if (k == 0)
		k = submit_params_extras(o, p);
	if (k)
		return k;
	*ret = TAKE_PTR(p);
	return 0;
}

const struct option submit_options[] = {
	COMMON_OPTIONS,
	{ "loop", required_argument, NULL, OPT_LOOP },
	{ "text", required_argument, NULL, OPT_TEXT },
	{ "text-file", required_argument, NULL, OPT_TEXT_FILE },
	{ "type", required_argument, NULL, OPT_TYPE },
	{ "option", required_argument, NULL, OPT_OPTION },
	{ "min", required_argument, NULL, OPT_MIN },
	{ "max", required_argument, NULL, OPT_MAX },
	{ "step", required_argument, NULL, OPT_STEP },
	{ "decimals", required_argument, NULL, OPT_DECIMALS },
	{ "placeholder", required_argument, NULL, OPT_PLACEHOLDER },
	{ "prefix", required_argument, NULL, OPT_PREFIX },
	{ "suffix", required_argument, NULL, OPT_SUFFIX },
	{ "allow-negative", no_argument, NULL, OPT_ALLOW_NEGATIVE },
	{ "required", no_argument, NULL, OPT_REQUIRED },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "default", required_argument, NULL, OPT_DEFAULT },
	{ "priority", required_argument, NULL, OPT_PRIORITY },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "deferred", no_argument, NULL, OPT_DEFERRED },
	{ "context", required_argument, NULL, OPT_CONTEXT },
	{ "image-url", required_argument, NULL, OPT_IMAGE_URL },
	{ "content", required_argument, NULL, OPT_CONTENT },
	{ "file-url", required_argument, NULL, OPT_FILE_URL },
	{ "file-type", required_argument, NULL, OPT_FILE_TYPE },
	{ "file-name", required_argument, NULL, OPT_FILE_NAME },
	{ "video-url", required_argument, NULL, OPT_VIDEO_URL },
	{ "audio-url", required_argument, NULL, OPT_AUDIO_URL },
	{ "draft-text", required_argument, NULL, OPT_DRAFT_TEXT },
	{ "max-length", required_argument, NULL, OPT_MAX_LENGTH },
	{ "true-label", required_argument, NULL, OPT_TRUE_LABEL },
	{ "false-label", required_argument, NULL, OPT_FALSE_LABEL },
	{ "callback-url", required_argument, NULL, OPT_CALLBACK_URL },
	{ "ref", required_argument, NULL, OPT_REF },
	{ "params", required_argument, NULL, OPT_PARAMS },
	{ "expect", required_argument, NULL, OPT_EXPECT },
	{},
};
