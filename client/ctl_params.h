/* ctl_params.h — hitlctl's flags as request params (private to hitlctl).
 *
 * build_submit_params() turns the submit/ask flags (and --params, --config)
 * into request.submit's params and records where each field came from, so
 * flag_for_field() can blame a field the daemon refused on what set it:
 * max_length from --config is not --max's fault. */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "ctl.h"

/* The flags of submit and ask. */
typedef struct SubmitOpts {
	const char *loop, *text, *text_file, *type, *default_value, *priority, *timeout, *context, *image_url,
		*callback_url, *ref, *params_file, *config, *placeholder, *prefix, *suffix, *min, *max, *step,
		*decimals, *expect, *content, *file_url, *file_type, *file_name, *video_url, *audio_url, *draft_text,
		*max_length, *true_label, *false_label;
	char **options;
	size_t n_options;
	bool deferred, required, allow_negative;
	bool ask;
} SubmitOpts;

/* submit's and ask's long options, and their handler (userdata: a SubmitOpts). */
extern const struct option submit_options[];
int submit_option(Ctl *ctl, int opt, const char *arg, void *userdata);

/* Builds the request.submit params from the flags, args[0..n_args) (the
 * text) and --params; returns 0 or an exit code (reported). */
int build_submit_params(const SubmitOpts *o, char **args, int n_args, json_object **ret);

/* The flag (or "--config", "--params") to blame for a field the daemon named
 * in -32602, e.g. "response_config.options[2].value"; NULL when none. */
const char *flag_for_field(const char *field);

/* Reads path ("-": stdin), at most max bytes (-EFBIG), no NUL (-EBADMSG). */
int read_bounded(const char *path, size_t max, char **ret, size_t *ret_len);
/* A JSON text parsed, or NULL. */
json_object *parse_json_text(const char *text);
/* A number as JSON: an integer when it is one, else a double; NULL if not a number. */
json_object *parse_number(const char *s);
/* yes/no, true/false, on/off, 1/0, y/n; -EINVAL for anything else. */
int parse_bool_word(const char *s, bool *ret);
/* A NULL-terminated string vector. */
int strv_push(char ***v, size_t *n, const char *s);
void strv_free(char **v);
