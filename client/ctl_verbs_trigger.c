/* ctl_verbs_trigger.c — hitlctl trigger: queue a HITL.sh workflow trigger,
 * wait until hitld has sent it, print the execution id. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "ctl.h"
#include "ctl_input.h"
#include "ctl_output.h"
#include "ctl_params.h"
#include "ctl_wait.h"

/* Bigger than hitld accepts (50 KiB of data): its -32602 says why. */
#define TRIGGER_DATA_FILE_MAX (1024 * 1024)

typedef struct TriggerOpts {
	const char *data, *data_file, *ref, *priority, *timeout;
	bool no_wait;
} TriggerOpts;

static int trigger_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
	TriggerOpts *o = userdata;

	switch (opt) {
	case OPT_DATA: o->data = arg; break;
	case OPT_DATA_FILE: o->data_file = arg; break;
	case OPT_REF: o->ref = arg; break;
	case 'p': case OPT_PRIORITY: o->priority = arg; break;
	case 't': case OPT_TIMEOUT: o->timeout = arg; break;
	case OPT_NO_WAIT: o->no_wait = true; break;
	default: return usage_error("%s: unexpected option.", ctl->verb);
	}
	return 0;
}

/* The --data object (inline or from a file); NULL when none was given. */
static int trigger_data(const TriggerOpts *o, json_object **ret) {
	_cleanup_(freep) char *text = NULL;
	const char *src = o->data;
	json_object *j;
	int k;

	*ret = NULL;
	if (o->data && o->data_file)
		return usage_error("trigger: give --data or --data-file, not both.");
	if (o->data_file) {
		k = read_bounded(o->data_file, TRIGGER_DATA_FILE_MAX, &text, NULL);
		if (k < 0)
			return usage_error("--data-file %s: %s", o->data_file,
			                   k == -EFBIG ? "larger than 1 MiB" : strerror(-k));
		src = text;
	}
	if (!src)
		return 0;
	j = parse_json_text(src);
	if (!j || !json_object_is_type(j, json_type_object)) {
		json_object_put(j);
		return usage_error("%s: not a JSON object (e.g. --data '{\"ticket\": 4812}').",
		                   o->data_file ? "--data-file" : "--data");
	}
	*ret = j;
	return 0;
}

/* The final record's outcome: the execution id printed, or why there is none. */
static int trigger_outcome(const Ctl *ctl, const char *id, json_object *final) {
	json_object *rec = json_object_object_get(final, "request"), *err = json_object_object_get(rec, "error");

	if (ctl->json)
		print_json(final);
	if (streq_ptr(jstr(rec, "state"), "completed")) {
		if (jstr(rec, "execution_id")) {
			if (!ctl->json)
				puts(jstr(rec, "execution_id"));
		} else
			errorf("workflow %s was triggered (%s), but HITL.sh's reply named no execution id.",
			       strna(jstr(rec, "workflow_id")), id);
		return 0;
	}
	if (streq_ptr(jstr(err, "code"), "outcome_unknown"))
		errorf("trigger %s: %s Check the workflow's executions at HITL.sh before triggering it again.", id,
		       strna(jstr(err, "message")));
	else
		errorf("trigger %s %s: %s", id, strna(jstr(rec, "state")), err ? strna(jstr(err, "message")) : "");
	return EXIT_REMOTE;
}

/* Acknowledged means durable: waits on it, across a restart of hitld too. */
static int trigger_wait(Ctl *ctl, json_object *res, int64_t timeout_s) {
	_cleanup_(json_object_putp) json_object *final = NULL;
	_cleanup_(freep) char *id = strdup(strna(jstr(res, "id")));
	Live live = { .on = ctl->tty_err, .position = -1 };
	int k;

	if (!id)
		return EXIT_REMOTE;
	jint(res, "position", &live.position);
	k = wait_final(ctl, id, timeout_s, &live, &final);
	if (k == EXIT_TIMEOUT) {
		if (ctl->json)
			print_json(final);
		errorf("trigger %s is still %s — 'hitlctl wait %s' waits on.", id,
		       strna(jstr(json_object_object_get(final, "request"), "state")), id);
		return EXIT_TIMEOUT;
	}
	if (k)
		return k;
	return trigger_outcome(ctl, id, final);
}

int verb_trigger(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{ "data", required_argument, NULL, OPT_DATA },
		{ "data-file", required_argument, NULL, OPT_DATA_FILE },
		{ "ref", required_argument, NULL, OPT_REF },
		{ "priority", required_argument, NULL, OPT_PRIORITY },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "no-wait", no_argument, NULL, OPT_NO_WAIT },
		{},
	};
	_cleanup_(json_object_putp) json_object *params = json_object_new_object(), *res = NULL, *data = NULL;
	TriggerOpts o = {};
	int64_t timeout_s = -1;
	int k;

	k = parse_options(ctl, argc, argv, "p:t:", opts, trigger_option, &o);
	if (k)
		return k < 0 ? 0 : k;
	if (argc - optind != 1)
		return usage_error("trigger: give one workflow id — e.g. 'hitlctl trigger wf_abc123 --data '{\"x\": 1}''.");
	if (o.timeout) {
		uint64_t sec;

		if (hitl_duration_parse(o.timeout, &sec) < 0)
			return usage_error("--timeout %s: not a duration (e.g. 30, 90s, 15m, 2h).", o.timeout);
		timeout_s = (int64_t) sec;
	}
	k = trigger_data(&o, &data);
	if (k)
		return k;
	json_object_object_add(params, "workflow_id", json_object_new_string(argv[optind]));
	if (data)
		json_object_object_add(params, "data", TAKE_PTR(data));
	if (o.ref)
		json_object_object_add(params, "client_ref", json_object_new_string(o.ref));
	if (o.priority)
		json_object_object_add(params, "priority", json_object_new_string(o.priority));

	k = ctl_connect(ctl);
	if (!k)
		k = ctl_call(ctl, "workflow.trigger", params, &res, "trigger");
	if (k)
		return k;
	if (jbool(res, "duplicate"))
		errorf("--ref %s was already used for this same trigger: that trigger is shown, nothing new was queued.",
		       strna(o.ref));
	if (!o.no_wait)
		return trigger_wait(ctl, res, timeout_s);
	if (ctl->json)
		print_json(res);
	else
		puts(strna(jstr(res, "id")));
	return 0;
}
