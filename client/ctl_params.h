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
