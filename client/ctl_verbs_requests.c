/* ctl_verbs_requests.c — hitlctl's verbs on requests: submit, ask, get, wait,
 * list, cancel, feedback. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "ctl.h"
#include "ctl_input.h"
#include "ctl_output.h"
#include "ctl_params.h"
#include "ctl_wait.h"

/* ------------------------------------------------------------------ submit / ask */

static int do_submit(Ctl *ctl, SubmitOpts *o, int argc, char **argv, json_object **ret_submitted) {
	_cleanup_(json_object_putp) json_object *params = NULL, *res = NULL;
	int k;

	k = parse_options(ctl, argc, argv, "l:t:o:d:p:e:", submit_options, submit_option, o);
	if (k)
		return k < 0 ? -1 : k;
	k = build_submit_params(o, argv + optind, argc - optind, &params);
	if (k)
		return k;
	k = ctl_connect(ctl);
	if (k)
		return k;
	k = ctl_call(ctl, "request.submit", params, &res, ctl->verb);
	if (k)
		return k;
	*ret_submitted = TAKE_PTR(res);
	return 0;
}

int verb_submit(Ctl *ctl, int argc, char **argv) {
	_cleanup_(json_object_putp) json_object *res = NULL;
	SubmitOpts o = {};
	int k;

	k = do_submit(ctl, &o, argc, argv, &res);
	strv_free(o.options);
	if (k)
		return k < 0 ? 0 : k;
	if (ctl->json)
		print_json(res);
	else {
		int64_t pos = 0;

		puts(strna(jstr(res, "id")));
		if (jbool(res, "duplicate"))
			errorf("--ref %s was already used for this same request: that request's id is printed, nothing new was queued.",
			       strna(o.ref));
		else if (ctl->tty_err && jint(res, "position", &pos) && pos > 0)
			fprintf(stderr, "queued, position %" PRId64 "; 'hitlctl wait %s' waits for the answer.\n", pos,
			        strna(jstr(res, "id")));
	}
	return 0;
}

/* Does the answer equal what --expect says? Strings compare as text, other
 * values as JSON (numbers by value). */
static bool result_matches(json_object *result, const char *expect) {
	_cleanup_(json_object_putp) json_object *want = NULL;

	if (!result)
		return false;
	if (json_object_is_type(result, json_type_string))
		return streq(json_object_get_string(result), expect);
	if (json_object_is_type(result, json_type_int) || json_object_is_type(result, json_type_double)) {
		char *end;
		double d;

		errno = 0;
		d = strtod(expect, &end);
		return *expect && !*end && errno == 0 && d == json_object_get_double(result);
	}
	if (json_object_is_type(result, json_type_array) && expect[0] != '[') {
		/* "a,b" for a multi_select answer ["a","b"]. */
		_cleanup_(freep) char *copy = strdup(expect);
		char *save = NULL;
		size_t i = 0;

		if (!copy)
			return false;
		for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save), i++) {
			json_object *item = json_object_array_get_idx(result, i);

			if (!item || !json_object_is_type(item, json_type_string) || !streq(json_object_get_string(item), tok))
				return false;
		}
		return i == json_object_array_length(result);
	}
	if (json_object_is_type(result, json_type_boolean)) {
		bool b;

		return parse_bool_word(expect, &b) == 0 && b == json_object_get_boolean(result);
	}
	want = parse_json_text(expect);
	return want && json_object_equal(want, result);
}

/* The outcome of a final record as an exit code, printing the result. */
static int print_outcome(Ctl *ctl, json_object *wait_result, const char *expect, bool ask) {
	json_object *rec = json_object_object_get(wait_result, "request");
	json_object *result = json_object_object_get(rec, "result");
	const char *state = jstr(rec, "state"), *id = jstr(rec, "id");

	if (ctl->json)
		print_json(wait_result);

	/* Never shown to a reviewer: there is no answer, not even a default
	 * anyone had the chance to beat. */
	if (streq_ptr(jstr(rec, "result_source"), "unsent") && !streq_ptr(state, "failed")) {
		if (!ctl->json && !ask)
			printf("%s  %s  %s  (never sent to HITL.sh: nobody saw it)\n", strna(id), strna(state),
			       value_text(result));
		if (ask || expect)
			errorf("request %s ended (%s) but was never sent to HITL.sh: no one saw it, there is no answer.",
			       strna(id), strna(state));
		return ask ? EXIT_TIMEOUT : 0;
	}

	if (streq_ptr(state, "completed") || streq_ptr(state, "timeout")) {
		if (!ctl->json) {
			if (ask)
				puts(value_text(result));
			else
				printf("%s  %s  %s%s\n", strna(id), state, value_text(result),
				       streq_ptr(state, "timeout") ? "  (default: nobody answered in time)" : "");
			if (ask && streq_ptr(state, "timeout") && ctl->tty_err)
				fprintf(stderr, "(nobody answered before the deadline: this is the default answer)\n");
		}
		if (expect)
			return result_matches(result, expect) ? 0 : EXIT_MISMATCH;
		return 0;
	}
	/* Cancelled or failed: no answer, for wait as for ask (hitlctl(1)). */
	if (streq_ptr(state, "cancelled")) {
		if (!ctl->json && !ask)
			printf("%s  cancelled\n", strna(id));
		errorf("request %s was cancelled before anyone answered.", strna(id));
		return EXIT_REMOTE;
	}
	/* failed */
	{
		json_object *err = json_object_object_get(rec, "error");

		if (!ctl->json && !ask)
			printf("%s  failed\n", strna(id));
		errorf("request %s failed: %s%s%s", strna(id), strna(jstr(err, "message")), jstr(err, "code") ? " — " : "",
		       jstr(err, "code") ? jstr(err, "code") : "");
	}
	return EXIT_REMOTE;
}

int verb_ask(Ctl *ctl, int argc, char **argv) {
	_cleanup_(json_object_putp) json_object *res = NULL, *final = NULL;
	_cleanup_(freep) char *id = NULL, *expect = NULL;
	SubmitOpts o = { .ask = true };
	Live live = {};
	int k;

	k = do_submit(ctl, &o, argc, argv, &res);
	strv_free(o.options);
	if (k)
		return k < 0 ? 0 : k;
	id = strdup(strna(jstr(res, "id")));
	expect = o.expect ? strdup(o.expect) : NULL;
	if (!id || (o.expect && !expect))
		return EXIT_REMOTE;

	live.on = ctl->tty_err;
	live.position = -1;
	jint(res, "position", &live.position);
	k = wait_final(ctl, id, -1, &live, &final);
	if (k)
		return k;
	return print_outcome(ctl, final, expect, true);
}

/* ------------------------------------------------------------------ get, wait */

typedef struct GetOpts {
	const char *ref;
	const char *timeout;
} GetOpts;

static int get_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
	GetOpts *o = userdata;

	if (opt == OPT_REF)
		o->ref = arg;
	else if (opt == OPT_TIMEOUT || opt == 't')
		o->timeout = arg;
	else
		return usage_error("%s: unexpected option.", ctl->verb);
	return 0;
}

int verb_get(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = { COMMON_OPTIONS, { "ref", required_argument, NULL, OPT_REF }, {} };
	_cleanup_(json_object_putp) json_object *rec = NULL, *params = json_object_new_object();
	GetOpts o = {};
	int k;

	k = parse_options(ctl, argc, argv, "", opts, get_option, &o);
	if (k)
		return k < 0 ? 0 : k;
	if ((optind < argc) == !!o.ref || argc - optind > 1)
		return usage_error("get: give one request id, or --ref REF — e.g. 'hitlctl get r_01JD…'.");
	if (o.ref)
		json_object_object_add(params, "client_ref", json_object_new_string(o.ref));
	else
		json_object_object_add(params, "id", json_object_new_string(argv[optind]));
	k = ctl_connect(ctl);
	if (!k)
		k = ctl_call(ctl, "request.get", params, &rec, "get");
	if (k)
		return k;
	if (ctl->json)
		print_json(rec);
	else
		print_record(rec);
	return 0;
}

int verb_wait(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = { COMMON_OPTIONS, { "timeout", required_argument, NULL, OPT_TIMEOUT }, {} };
	_cleanup_(json_object_putp) json_object *final = NULL;
	GetOpts o = {};
	Live live = {};
	int64_t timeout_s = -1;
	int k;

	k = parse_options(ctl, argc, argv, "t:", opts, get_option, &o);
	if (k)
		return k < 0 ? 0 : k;
	if (argc - optind != 1)
		return usage_error("wait: give one request id — e.g. 'hitlctl wait r_01JD… --timeout 10m'.");
	if (o.timeout) {
		uint64_t s;

		if (hitl_duration_parse(o.timeout, &s) < 0)
			return usage_error("--timeout %s: not a duration (e.g. 30, 90s, 15m, 2h).", o.timeout);
		timeout_s = (int64_t) s;
	}
	k = ctl_connect(ctl);
	if (k)
		return k;
	live.on = ctl->tty_err;
	live.position = -1;
	k = wait_final(ctl, argv[optind], timeout_s, &live, &final);
	if (k == EXIT_TIMEOUT) {
		json_object *rec = json_object_object_get(final, "request");
		char d[32];

		if (ctl->json)
			print_json(final);
		errorf("request %s is still %s after %s — wait longer with --timeout, or 'hitlctl get %s'.", argv[optind],
		       strna(jstr(rec, "state")), format_duration((uint64_t) timeout_s, d, sizeof d), argv[optind]);
		return EXIT_TIMEOUT;
	}
	if (k)
		return k;
	return print_outcome(ctl, final, NULL, false);
}

/* ------------------------------------------------------------------ list */

/* ID, STATE, PRIORITY, CREATED, RESULT, TEXT, OWNER */
#define LIST_COLUMNS 7

typedef struct ListOpts {
	char **states;
	size_t n_states;
	const char *loop, *user;
	unsigned limit;
	bool all, quiet;
} ListOpts;

static int list_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
	ListOpts *o = userdata;

	switch (opt) {
	case 's': case OPT_STATE: {
		_cleanup_(freep) char *copy = strdup(arg);
		char *save = NULL;

		if (!copy)
			return usage_error("out of memory");
		for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			bool known = false;

			for (size_t i = 0; i < ELEMENTSOF(state_names); i++)
				known = known || streq(tok, state_names[i]);
			if (!known)
				return usage_error("--state %s: not a state (queued, submitting, pending, completed, timeout, cancelled, failed).",
				                   tok);
			if (strv_push(&o->states, &o->n_states, tok) < 0)
				return usage_error("out of memory");
		}
		break;
	}
	case 'l': case OPT_LOOP: o->loop = arg; break;
	case 'a': case OPT_ALL: o->all = true; break;
	case 'q': case OPT_QUIET: o->quiet = true; break;
	case 'u': case OPT_USER: o->user = arg; break;
	case 'n': case OPT_LIMIT: {
		char *end;
		unsigned long n;

		errno = 0;
		n = strtoul(arg, &end, 10);
		if (!*arg || *end || errno || n == 0 || n > 100000)
			return usage_error("--limit %s: a number of requests, 1-100000.", arg);
		o->limit = (unsigned) n;
		break;
	}
	default:
		return usage_error("list: unexpected option.");
	}
	return 0;
}

/* --user UID into the filter. */
static int list_user(const ListOpts *o, HitlListFilter *filter) {
	char *end;
	unsigned long uid;

	if (!o->user)
		return 0;
	errno = 0;
	uid = strtoul(o->user, &end, 10);
	if (!*o->user || *end || errno || uid > UINT32_MAX)
		return usage_error("--user %s: a numeric uid.", o->user);
	filter->owner_uid_set = true;
	filter->owner_uid = (uint32_t) uid;
	return 0;
}

/* One record: its id (--quiet) or a row of the table; notes in *others
 * whether it is someone else's. */
static int list_row(const Ctl *ctl, const ListOpts *o, Table *table, json_object *rec, bool *others) {
	char label[160];
	_cleanup_(freep) char *text = shorten(record_text(rec, label, sizeof label), TEXT_COLUMN_MAX),
	                      *result = shorten(json_object_object_get(rec, "result")
	                                                ? value_text(json_object_object_get(rec, "result"))
	                                                : "",
	                                        RESULT_COLUMN_MAX);
	char created[64], owner[24];
	int64_t uid = 0;
	const char *row[LIST_COLUMNS];

	jint(rec, "owner_uid", &uid);
	snprintf(owner, sizeof owner, "%" PRId64, uid);
	if (uid != (int64_t) getuid())
		*others = true;
	row[0] = jstr(rec, "id");
	row[1] = jstr(rec, "state");
	row[2] = jstr(rec, "priority");
	row[3] = format_ago(jstr(rec, "created_at"), created, sizeof created);
	row[4] = result;
	row[5] = text;
	row[6] = owner;
	if (o->quiet && !ctl->json) {
		puts(strna(row[0]));
		return 0;
	}
	return table_add(table, row) < 0 ? EXIT_REMOTE : 0;
}

/* The table, without the OWNER column when only the caller's requests are listed. */
static void list_print(const Ctl *ctl, const ListOpts *o, Table *table, bool others, bool more) {
	if (!others) {
		for (size_t r = 0; r < table->n_rows; r++) {
			free(table->cells[r * LIST_COLUMNS + LIST_COLUMNS - 1]);
			for (size_t c = 0; c < LIST_COLUMNS - 1; c++)
				table->cells[r * (LIST_COLUMNS - 1) + c] = table->cells[r * LIST_COLUMNS + c];
		}
		table->n_columns = LIST_COLUMNS - 1;
	}
	if (table->n_rows > 0)
		table_print(table);
	else if (ctl->tty_out)
		printf(o->all || o->states ? "no requests\n"
		                           : "no open requests ('hitlctl list --all' also shows finished ones)\n");
	if (more && ctl->tty_err)
		fprintf(stderr, "(first %u shown; --limit N shows more)\n", o->limit);
}

/* Pages through request.list until o->limit records are shown or none are left. */
static int list_pages(Ctl *ctl, const ListOpts *o, HitlListFilter *filter, Table *table, bool *others, bool *more) {
	_cleanup_(freep) char *cursor = NULL;
	unsigned shown = 0;

	while (shown < o->limit) {
		_cleanup_(json_object_putp) json_object *page = NULL;
		json_object *reqs;
		int r;

		filter->cursor = cursor;
		filter->limit = o->limit - shown < LIST_PAGE ? o->limit - shown : LIST_PAGE;
		r = hitl_request_list(ctl->client, filter, &page, &ctl->error);
		if (r < 0)
			return report_call_error(ctl, r, "list");
		if (ctl->json)
			print_json(page);
		reqs = json_object_object_get(page, "requests");
		for (size_t i = 0; reqs && i < json_object_array_length(reqs); i++) {
			r = list_row(ctl, o, table, json_object_array_get_idx(reqs, i), others);
			if (r)
				return r;
			shown++;
		}
		free(cursor);
		cursor = jstr(page, "next_cursor") ? strdup(jstr(page, "next_cursor")) : NULL;
		if (!cursor)
			break;
		*more = shown >= o->limit;
	}
	return 0;
}

int verb_list(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{ "state", required_argument, NULL, OPT_STATE },
		{ "loop", required_argument, NULL, OPT_LOOP },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "user", required_argument, NULL, OPT_USER },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{},
	};
	static const char *const open_states[] = { "queued", "submitting", "pending", NULL };
	static const char *const headers[LIST_COLUMNS] = { "ID", "STATE", "PRIORITY", "CREATED", "RESULT", "TEXT", "OWNER" };
	ListOpts o = { .limit = LIST_DEFAULT_LIMIT };
	HitlListFilter filter = {};
	Table table = { .n_columns = LIST_COLUMNS };
	bool others = false, more = false;
	int k;

	k = parse_options(ctl, argc, argv, "s:l:aqu:n:", opts, list_option, &o);
	if (k == 0 && optind < argc)
		k = usage_error("list takes no arguments (filter with --state, --loop, --all).");
	if (k == 0)
		k = list_user(&o, &filter);
	if (k) {
		strv_free(o.states);
		return k < 0 ? 0 : k;
	}
	filter.states = o.states ? (const char *const *) o.states : o.all ? NULL : open_states;
	filter.loop_id = o.loop;
	memcpy(table.headers, headers, sizeof headers);

	k = ctl_connect(ctl);
	if (k == 0)
		k = list_pages(ctl, &o, &filter, &table, &others, &more);
	if (k == 0 && !ctl->json && !o.quiet)
		list_print(ctl, &o, &table, others, more);
	table_free(&table);
	strv_free(o.states);
	return k;
}

/* ------------------------------------------------------------------ cancel, feedback */

int verb_cancel(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = { COMMON_OPTIONS, {} };
	int k, worst = 0;

	k = parse_options(ctl, argc, argv, "", opts, NULL, NULL);
	if (k)
		return k < 0 ? 0 : k;
	if (optind >= argc)
		return usage_error("cancel: give the id of the request(s) to cancel — 'hitlctl list' shows them.");
	k = ctl_connect(ctl);
	if (k)
		return k;
	for (int i = optind; i < argc; i++) {
		_cleanup_(json_object_putp) json_object *rec = NULL, *params = json_object_new_object();
		char what[160];

		snprintf(what, sizeof what, "cancel %s", argv[i]);
		json_object_object_add(params, "id", json_object_new_string(argv[i]));
		k = ctl_call(ctl, "request.cancel", params, &rec, what);
		if (k) {
			if (!worst)
				worst = k;
			if (k == EXIT_UNREACHABLE)
				break;
			continue;
		}
		if (ctl->json)
			print_json(rec);
		else if (streq_ptr(jstr(rec, "state"), "cancelled"))
			printf("%s  cancelled\n", argv[i]);
		else
			printf("%s  cancel requested: HITL.sh is told when budget allows (it may still be answered first)\n",
			       argv[i]);
	}
	return worst;
}

typedef struct FeedbackOpts {
	json_object *fb;
	int error;
} FeedbackOpts;

static int feedback_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
	FeedbackOpts *o = userdata;
	static const struct {
		int opt;
		const char *key, *flag;
	} numbers[] = {
		{ OPT_RATING, "rating", "--rating" },
		{ 'r', "rating", "--rating" },
		{ OPT_ACCURACY, "accuracy", "--accuracy" },
		{ OPT_TIMELINESS, "timeliness", "--timeliness" },
		{ OPT_HELPFULNESS, "helpfulness", "--helpfulness" },
	};

	for (size_t i = 0; i < ELEMENTSOF(numbers); i++)
		if (opt == numbers[i].opt) {
			json_object *n = parse_number(arg);

			if (!n)
				return usage_error("%s %s: a number from 1 to 5.", numbers[i].flag, arg);
			json_object_object_add(o->fb, numbers[i].key, n);
			return 0;
		}
	switch (opt) {
	case 'c': case OPT_COMMENT:
		json_object_object_add(o->fb, "comment", json_object_new_string(arg));
		break;
	case OPT_RECOMMEND: {
		bool b;

		if (parse_bool_word(arg, &b) < 0)
			return usage_error("--would-recommend %s: yes or no.", arg);
		json_object_object_add(o->fb, "would_recommend", json_object_new_boolean(b));
		break;
	}
	case OPT_FOLLOW_UP:
		json_object_object_add(o->fb, "follow_up_needed", json_object_new_boolean(true));
		break;
	case OPT_TAG: {
		json_object *tags = json_object_object_get(o->fb, "tags");

		if (!tags) {
			tags = json_object_new_array();
			json_object_object_add(o->fb, "tags", tags);
		}
		json_object_array_add(tags, json_object_new_string(arg));
		break;
	}
	case OPT_CATEGORY:
		json_object_object_add(o->fb, "category", json_object_new_string(arg));
		break;
	default:
		return usage_error("feedback: unexpected option.");
	}
	return 0;
}

int verb_feedback(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{ "rating", required_argument, NULL, OPT_RATING },
		{ "comment", required_argument, NULL, OPT_COMMENT },
		{ "accuracy", required_argument, NULL, OPT_ACCURACY },
		{ "timeliness", required_argument, NULL, OPT_TIMELINESS },
		{ "helpfulness", required_argument, NULL, OPT_HELPFULNESS },
		{ "would-recommend", required_argument, NULL, OPT_RECOMMEND },
		{ "follow-up", no_argument, NULL, OPT_FOLLOW_UP },
		{ "tag", required_argument, NULL, OPT_TAG },
		{ "category", required_argument, NULL, OPT_CATEGORY },
		{},
	};
	_cleanup_(json_object_putp) json_object *fb = json_object_new_object(), *params = json_object_new_object(),
	                                        *rec = NULL;
	FeedbackOpts o = { .fb = fb };
	int k;

	k = parse_options(ctl, argc, argv, "r:c:", opts, feedback_option, &o);
	if (k)
		return k < 0 ? 0 : k;
	if (argc - optind != 1)
		return usage_error("feedback: give one request id — e.g. 'hitlctl feedback r_01JD… --rating 5 --comment \"quick\"'.");
	if (json_object_object_length(fb) == 0)
		return usage_error("feedback: say something — at least --rating 1-5 or --comment TEXT.");
	json_object_object_add(params, "id", json_object_new_string(argv[optind]));
	json_object_object_add(params, "feedback", json_object_get(fb));
	k = ctl_connect(ctl);
	if (!k)
		k = ctl_call(ctl, "request.feedback", params, &rec, "feedback");
	if (k)
		return k;
	if (ctl->json)
		print_json(rec);
	else
		printf("%s  feedback %s: it is sent to HITL.sh when budget allows\n", argv[optind],
		       strna(jstr(rec, "feedback_state")));
	return 0;
}
