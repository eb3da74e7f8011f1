/* ctl_verbs_admin.c — hitlctl's verbs on hitld and HITL.sh rather than on
 * requests: status, loops, key test, pause, resume, reload. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "ctl.h"
#include "ctl_output.h"

/* ------------------------------------------------------------------ status */

/* What holds calls back beyond the budget: creates paused by an error about
 * the key, account or endpoint, loops without members, a failing HITL.sh in
 * backoff, a replaced socket, and the caller's share of interactive calls. */
static void print_status_holds(json_object *st) {
	json_object *api = json_object_object_get(st, "api"), *paused = json_object_object_get(api, "creates_paused");
	json_object *loops = json_object_object_get(api, "loops_paused");
	json_object *share = json_object_object_get(json_object_object_get(st, "budget"), "interactive");
	json_object *sock = json_object_object_get(st, "socket");
	int64_t failures = 0, used = 0, n = 0;
	char a[96], b[96];

	if (paused && json_object_is_type(paused, json_type_object))
		printf("%-9s PAUSED (%s): %s; since %s, next try %s; queued requests wait, none fails\n", "Creates:",
		       strna(jstr(paused, "class")), strna(jstr(paused, "reason")),
		       format_when(jstr(paused, "since"), a, sizeof a) ? a : "?",
		       format_when(jstr(paused, "next_probe_at"), b, sizeof b) ? b : "soon");
	for (size_t i = 0; loops && json_object_is_type(loops, json_type_array) && i < json_object_array_length(loops); i++) {
		json_object *l = json_object_array_get_idx(loops, i);

		printf("%-9s loop %s paused: %s; next try %s\n", "Creates:", strna(jstr(l, "loop_id")),
		       strna(jstr(l, "reason")), format_when(jstr(l, "next_probe_at"), a, sizeof a) ? a : "soon");
	}
	jint(api, "consecutive_failures", &failures);
	if (failures > 0 && format_when(jstr(api, "backoff_until"), a, sizeof a))
		printf("%-9s %" PRId64 " failed call%s in a row, next try %s\n", "", failures, failures == 1 ? "" : "s", a);
	if (share && jint(share, "share", &n) && jint(share, "used", &used))
		printf("%-9s you used %" PRId64 " of your %" PRId64 " interactive calls (loops, key test) this window\n",
		       "", used, n);
	{
		json_object *foreign = json_object_object_get(api, "foreign");
		int64_t calls = 0, own = 0;

		if (jint(foreign, "calls", &calls) && calls > 0 && jint(foreign, "own_calls", &own))
			printf("%-9s %" PRId64 " call%s this window with this key were not hitld's (its own: %" PRId64
			       ")%s — someone else uses the key; see 'hitlctl usage --by uid'\n",
			       "Foreign:", calls, calls == 1 ? "" : "s", own, jbool(foreign, "rate_limited") ? ", and ran it out" : "");
	}
	if (jbool(sock, "replaced"))
		printf("%-9s REPLACED: %s is no longer hitld's socket; fix its directory and restart hitld (hitld(8))\n",
		       "Socket:", strna(jstr(sock, "path")));
}

/* The key's age and the standby key (PROTOCOL.md, status "key"). */
static void print_key_lifecycle(json_object *key) {
	json_object *standby = json_object_object_get(key, "standby");
	int64_t age = 0, rotate = 0;

	if (jstr(key, "first_used_at") && jint(key, "age_days", &age) && jint(key, "rotate_after_days", &rotate))
		printf("%-9s first used %s, %" PRId64 " days ago%s\n", "", jstr(key, "first_used_at"), age,
		       rotate > 0 && age >= rotate ? " — due for rotation ('hitlctl key rotate')" : "");
	if (jstr(key, "switched_at"))
		printf("%-9s switched to the standby key %s: %s\n", "", jstr(key, "switched_at"),
		       strna(jstr(key, "switch_reason")));
	if (standby)
		printf("%-9s %s (%s)%s%s\n", "Standby:", strna(jstr(standby, "state")), strna(jstr(standby, "source")),
		       jstr(standby, "error") ? ": " : "", jstr(standby, "error") ? jstr(standby, "error") : "");
}

/* When the queued requests will all have been created at the budget's pace,
 * and what the budget yields an hour. */
static void print_status_forecast(json_object *st) {
	json_object *f = json_object_object_get(st, "forecast");
	int64_t backlog = 0, per_hour = 0;
	const char *held = jstr(f, "held");
	char a[96];

	if (!f || !json_object_is_type(f, json_type_object))
		return;
	jint(f, "backlog", &backlog);
	jint(f, "decisions_per_hour", &per_hour);
	printf("%-9s the budget yields at most %" PRId64 " decision%s an hour", "Forecast:", per_hour,
	       per_hour == 1 ? "" : "s");
	if (backlog == 0)
		printf("; nothing queued\n");
	else if (held)
		printf("; %" PRId64 " queued wait: creates are held (%s)\n", backlog, held);
	else if (format_when(jstr(f, "drain_at"), a, sizeof a))
		printf("; %" PRId64 " queued, all created by %s\n", backlog, a);
	else
		printf("; %" PRId64 " of yours queued\n", backlog);
}

/* HITL.sh's callbacks, when hitld receives them (hitld(8), CALLBACKS). */
static void print_status_webhook(json_object *st) {
	json_object *w = json_object_object_get(st, "webhook");
	int64_t received = 0, rejected = 0;
	char a[96];

	if (!jbool(w, "enabled"))
		return;
	jint(w, "received", &received);
	jint(w, "rejected", &rejected);
	printf("%-9s callbacks on %s%s for %s: %" PRId64 " received (last %s), %" PRId64 " refused\n", "Webhook:",
	       strna(jstr(w, "listen")), jbool(w, "activated") ? " (socket activation)" : "", strna(jstr(w, "public_url")),
	       received, format_ago(jstr(w, "last_at"), a, sizeof a) ? a : "never", rejected);
}

int verb_status(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = { COMMON_OPTIONS, {} };
	_cleanup_(json_object_putp) json_object *st = NULL, *hello = NULL;
	json_object *budget, *queue, *api, *key;
	char a[96], b[96], c[96];
	int64_t used = 0, limit = 0, remaining = 0, uptime = 0;
	int k;

	k = parse_options(ctl, argc, argv, "", opts, NULL, NULL);
	if (k)
		return k < 0 ? 0 : k;
	if (optind < argc)
		return usage_error("status takes no arguments.");
	k = ctl_connect(ctl);
	if (k)
		return k;
	k = ctl_call(ctl, "status", NULL, &st, "status");
	if (k)
		return k;
	if (ctl->json) {
		print_json(st);
		return 0;
	}
	(void) hitl_hello(ctl->client, "hitlctl/" HITLD_VERSION, &hello, NULL);

	budget = json_object_object_get(st, "budget");
	queue = json_object_object_get(st, "queue");
	api = json_object_object_get(st, "api");
	key = json_object_object_get(st, "key");
	jint(budget, "used", &used);
	jint(budget, "limit", &limit);
	jint(budget, "remaining", &remaining);
	jint(st, "uptime_s", &uptime);

	printf("%-9s hitld %s, up %s, socket %s\n", "Daemon:", strna(jstr(st, "version")),
	       format_duration((uint64_t) (uptime > 0 ? uptime : 0), a, sizeof a), ctl->path);
	/* The count is hitld's own ledger: HITL.sh's last report plus the calls
	 * hitld made since (and it cannot see other users of the key). Only the
	 * window and the limit can be as HITL.sh reported them. */
	printf("%-9s %" PRId64 "/%" PRId64 " calls used this hour, %" PRId64 " left (estimated)", "Budget:", used,
	       limit, remaining);
	if (format_when(jstr(budget, "reset_at"), b, sizeof b))
		printf("; resets %s", b);
	printf(" [%s]\n", streq_ptr(jstr(budget, "source"), "server") ? "window and limit as HITL.sh reported"
	                                                               : "nothing heard from HITL.sh yet");
	if (format_when(jstr(budget, "paused_until"), b, sizeof b))
		printf("%-9s HITL.sh rate-limited this key: no calls until %s\n", "", b);

	printf("%-9s%s", "Queue:", jbool(hello, "admin") || !hello ? "" : " (your requests)");
	for (size_t i = 0; i < ELEMENTSOF(state_names); i++) {
		int64_t n = 0;

		jint(queue, state_names[i], &n);
		printf(" %s %" PRId64 "%s", state_names[i], n, i + 1 < ELEMENTSOF(state_names) ? "," : "\n");
	}
	if (format_ago(jstr(queue, "oldest_queued_at"), b, sizeof b))
		printf("%-9s oldest queued request waiting since %s\n", "", b);

	print_status_forecast(st);

	if (jbool(api, "reachable"))
		printf("%-9s reachable (last answer %s) at %s\n", "HITL.sh:",
		       format_ago(jstr(api, "last_ok_at"), b, sizeof b) ? b : "recently", strna(jstr(api, "base_url")));
	else if (!jstr(api, "last_ok_at") && !jstr(api, "last_error"))
		printf("%-9s not contacted yet (no calls needed so far) at %s\n", "HITL.sh:", strna(jstr(api, "base_url")));
	else
		printf("%-9s UNREACHABLE: %s (last answer %s) at %s\n", "HITL.sh:", strna(jstr(api, "last_error")),
		       format_ago(jstr(api, "last_ok_at"), b, sizeof b) ? b : "never", strna(jstr(api, "base_url")));

	print_status_holds(st);
	print_status_webhook(st);
	if (!jbool(key, "loaded"))
		printf("%-9s MISSING — give hitld a key (LoadCredential=hitl-api-key, api.key_file or HITL_API_KEY), then 'hitlctl reload'\n",
		       "Key:");
	else {
		json_object *valid = json_object_object_get(key, "valid");

		if (!valid)
			snprintf(c, sizeof c, "loaded, not checked yet ('hitlctl key test' checks it)");
		else if (json_object_get_boolean(valid))
			snprintf(c, sizeof c, "valid%s%s%s%s", jstr(key, "api_key_id") ? " (id " : "",
			         jstr(key, "api_key_id") ? jstr(key, "api_key_id") : "", jstr(key, "api_key_id") ? ")" : "",
			         streq_ptr(jstr(key, "active"), "standby") ? ", the standby key since a switch" : "");
		else
			snprintf(c, sizeof c, "REFUSED by HITL.sh%s%s — replace it and run 'hitlctl reload'",
			         jstr(key, "error") ? ": " : "", jstr(key, "error") ? jstr(key, "error") : "");
		printf("%-9s %s\n", "Key:", c);
		print_key_lifecycle(key);
	}
	printf("%-9s %s\n", "Paused:",
	       jbool(st, "paused") ? "YES — no HITL.sh calls until 'hitlctl resume'" : "no");
	return 0;
}

/* ------------------------------------------------------------------ loops */

typedef struct LoopOpts {
	const char *name, *description, *icon;
	bool yes, quiet;
} LoopOpts;

static int loop_option(Ctl *ctl, int opt, const char *arg, void *userdata) {
	LoopOpts *o = userdata;

	switch (opt) {
	case OPT_NAME: o->name = arg; break;
	case OPT_DESCRIPTION: o->description = arg; break;
	case OPT_ICON: o->icon = arg; break;
	case 'y': case OPT_YES: o->yes = true; break;
	case 'q': case OPT_QUIET: o->quiet = true; break;
	default:
		return usage_error("loops: unexpected option.");
	}
	return 0;
}

static void print_cache_note(Ctl *ctl, json_object *res) {
	char ago[64];

	if (ctl->tty_err && jbool(res, "cached") && format_ago(jstr(res, "fetched_at"), ago, sizeof ago))
		fprintf(stderr, "(from hitld's cache, fetched %s; no budget spent)\n", ago);
}

static int loops_list(Ctl *ctl, json_object *res, const LoopOpts *o) {
	static const char *const headers[] = { "ID", "NAME", "MEMBERS", "DESCRIPTION" };
	json_object *loops = json_object_object_get(res, "loops");
	Table t = { .n_columns = 4 };

	memcpy(t.headers, headers, sizeof headers);
	for (size_t i = 0; loops && i < json_object_array_length(loops); i++) {
		json_object *l = json_object_array_get_idx(loops, i);
		_cleanup_(freep) char *desc = shorten(jstr(l, "description"), TEXT_COLUMN_MAX);
		int64_t members = 0, pending = 0;
		char m[96];
		const char *row[4];

		if (o->quiet) {
			puts(strna(jstr(l, "id")));
			continue;
		}
		jint(l, "member_count", &members);
		jint(l, "pending_count", &pending);
		if (pending > 0)
			snprintf(m, sizeof m, "%" PRId64 " (%" PRId64 " invited)", members - pending, pending);
		else
			snprintf(m, sizeof m, "%" PRId64, members);
		row[0] = jstr(l, "id");
		row[1] = jstr(l, "name");
		row[2] = m;
		row[3] = desc;
		if (table_add(&t, row) < 0) {
			table_free(&t);
			return EXIT_REMOTE;
		}
	}
	if (t.n_rows > 0)
		table_print(&t);
	else if (!o->quiet)
		printf("no loops — create one with 'hitlctl loops create --name NAME --icon ICON'\n");
	table_free(&t);
	print_cache_note(ctl, res);
	return 0;
}

static int loops_members(Ctl *ctl, json_object *res) {
	static const char *const headers[] = { "USER_ID", "EMAIL", "STATUS", "ROLE", "JOINED" };
	json_object *members = json_object_object_get(res, "members");
	Table t = { .n_columns = 5 };

	memcpy(t.headers, headers, sizeof headers);
	for (size_t i = 0; members && i < json_object_array_length(members); i++) {
		json_object *m = json_object_array_get_idx(members, i);
		char joined[64];
		const char *row[5] = { jstr(m, "user_id"), jstr(m, "email"), jstr(m, "status"), jstr(m, "role"),
			               format_ago(jstr(m, "joined_at"), joined, sizeof joined) };

		if (table_add(&t, row) < 0) {
			table_free(&t);
			return EXIT_REMOTE;
		}
	}
	table_print(&t);
	table_free(&t);
	print_cache_note(ctl, res);
	return 0;
}

static void loops_show(Ctl *ctl, json_object *res) {
	json_object *l = json_object_object_get(res, "loop"), *members = json_object_object_get(l, "members");
	char a[128];
	int64_t count = 0, pending = 0;

	print_field("id:", jstr(l, "id"));
	print_field("name:", jstr(l, "name"));
	print_field("description:", jstr(l, "description"));
	print_field("icon:", jstr(l, "icon"));
	jint(l, "member_count", &count);
	jint(l, "pending_count", &pending);
	snprintf(a, sizeof a, "%" PRId64 " active, %" PRId64 " invited", count - pending, pending);
	print_field("members:", a);
	for (size_t i = 0; members && i < json_object_array_length(members); i++) {
		json_object *m = json_object_array_get_idx(members, i);

		printf("%-12s %s (%s)\n", "", strna(jstr(m, "email")), strna(jstr(m, "status")));
	}
	print_field("created:", format_when(jstr(l, "created_at"), a, sizeof a));
	print_field("updated:", format_when(jstr(l, "updated_at"), a, sizeof a));
	print_cache_note(ctl, res);
}

static bool confirm(const char *question) {
	char answer[16];

	fprintf(stderr, "%s [y/N] ", question);
	fflush(stderr);
	if (!fgets(answer, sizeof answer, stdin))
		return false;
	return answer[0] == 'y' || answer[0] == 'Y';
}

/* The subcommand's params: the positional ids (args) and --name,
 * --description, --icon where the subcommand takes them. */
static int loops_params(const char *sub, int n_args, const LoopOpts *o, char **args, json_object *params) {
	if (n_args >= 1)
		json_object_object_add(params, "id", json_object_new_string(args[0]));
	if (n_args >= 2)
		json_object_object_add(params, "user_id", json_object_new_string(args[1]));

	if (streq(sub, "create")) {
		if (!o->name || !o->icon)
			return usage_error("loops create needs --name NAME and --icon ICON (e.g. --icon rocket); --description is optional.");
	} else if (streq(sub, "update")) {
		if (!o->name && !o->icon && !o->description)
			return usage_error("loops update ID: say what changes with --name, --description or --icon.");
	} else if (o->name || o->icon || o->description)
		return usage_error("--name, --description and --icon are for 'loops create' and 'loops update'.");
	if (o->name)
		json_object_object_add(params, "name", json_object_new_string(o->name));
	if (o->description)
		json_object_object_add(params, "description", json_object_new_string(o->description));
	if (o->icon)
		json_object_object_add(params, "icon", json_object_new_string(o->icon));
	return 0;
}

/* loops delete without --yes: asks on a terminal, refuses elsewhere. */
static int loops_confirm_delete(const char *id) {
	char q[160];

	if (!isatty(STDIN_FILENO))
		return usage_error("loops delete removes the loop and all its requests at HITL.sh for good: add --yes to confirm.");
	snprintf(q, sizeof q, "Delete loop %s and every request in it at HITL.sh?", id);
	if (!confirm(q))
		return usage_error("not deleted.");
	return 0;
}

/* The human output of a subcommand that succeeded. */
static int loops_print(Ctl *ctl, const char *sub, json_object *res, const LoopOpts *o, char **args) {
	if (streq(sub, "list"))
		return loops_list(ctl, res, o);
	if (streq(sub, "members"))
		return loops_members(ctl, res);
	if (streq(sub, "get") || streq(sub, "show"))
		loops_show(ctl, res);
	else if (streq(sub, "create")) {
		json_object *l = json_object_object_get(res, "loop");

		puts(strna(jstr(l, "id")));
		if (jstr(res, "invite_code") || jstr(res, "join_url"))
			fprintf(stderr, "loop \"%s\" created; reviewers join in the HITL app with code %s%s%s\n",
			        strna(jstr(l, "name")), strna(jstr(res, "invite_code")), jstr(res, "join_url") ? " or at " : "",
			        jstr(res, "join_url") ? jstr(res, "join_url") : "");
	} else if (streq(sub, "update"))
		printf("loop %s updated\n", args[0]);
	else if (streq(sub, "delete"))
		printf("loop %s deleted\n", args[0]);
	else if (streq(sub, "remove-member"))
		printf("user %s removed from loop %s\n", args[1], args[0]);
	return 0;
}

int verb_loops(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{ "name", required_argument, NULL, OPT_NAME },
		{ "description", required_argument, NULL, OPT_DESCRIPTION },
		{ "icon", required_argument, NULL, OPT_ICON },
		{ "yes", no_argument, NULL, OPT_YES },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{},
	};
	static const struct {
		const char *sub, *method;
		int n_args; /* positional arguments after the subcommand */
	} subs[] = {
		{ "list", "loop.list", 0 },       { "get", "loop.get", 1 },         { "show", "loop.get", 1 },
		{ "members", "loop.members", 1 }, { "create", "loop.create", 0 },   { "update", "loop.update", 1 },
		{ "delete", "loop.delete", 1 },   { "remove-member", "loop.remove_member", 2 },
	};
	_cleanup_(json_object_putp) json_object *params = json_object_new_object(), *res = NULL;
	LoopOpts o = {};
	const char *sub, *method = NULL;
	int n_args = 0, k;
	char what[64];

	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
			ctl->help("loops", stdout);
			return 0;
		}
		return usage_error("loops: say what to do: list, get ID, members ID, create, update ID, delete ID, remove-member ID USER_ID.");
	}
	sub = argv[1];
	for (size_t i = 0; i < ELEMENTSOF(subs); i++)
		if (streq(sub, subs[i].sub)) {
			method = subs[i].method;
			n_args = subs[i].n_args;
		}
	if (!method)
		return usage_error("loops %s: unknown — use list, get, members, create, update, delete or remove-member.", sub);
	k = parse_options(ctl, argc - 1, argv + 1, "yq", opts, loop_option, &o);
	if (k)
		return k < 0 ? 0 : k;
	argc--;
	argv++;
	if (argc - optind != n_args)
		return usage_error("loops %s takes %s — see 'hitlctl loops --help'.", sub,
		                   n_args == 0   ? "no arguments"
		                   : n_args == 1 ? "one loop id"
		                                 : "a loop id and a user id");
	k = loops_params(sub, n_args, &o, argv + optind, params);
	if (k == 0 && streq(sub, "delete") && !o.yes)
		k = loops_confirm_delete(argv[optind]);
	if (k == 0)
		k = ctl_connect(ctl);
	if (k)
		return k;
	snprintf(what, sizeof what, "loops %s", sub);
	k = ctl_call(ctl, method, params, &res, what);
	if (k)
		return k;
	if (ctl->json) {
		print_json(res);
		return 0;
	}
	return loops_print(ctl, sub, res, &o, argv + optind);
}

/* ------------------------------------------------------------------ key, admin */

/* key rotate: the daemon tests the standby key and switches to it. */
static int key_rotate(Ctl *ctl) {
	_cleanup_(json_object_putp) json_object *res = NULL;
	int k;

	k = ctl_connect(ctl);
	if (k)
		return k;
	k = hitl_key_rotate(ctl->client, &res, &ctl->error);
	if (k < 0)
		return report_call_error(ctl, k, "key rotate");
	if (ctl->json) {
		print_json(res);
		return 0;
	}
	printf("switched to the standby key: id %s\n", strna(jstr(res, "api_key_id")));
	return 0;
}

int verb_key(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = { COMMON_OPTIONS, {} };
	_cleanup_(json_object_putp) json_object *res = NULL;
	json_object *rl;
	char when[96];
	int64_t limit = 0, remaining = 0;
	int k;

	if (argc < 2 || (!streq(argv[1], "test") && !streq(argv[1], "rotate"))) {
		if (argc >= 2 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
			ctl->help("key", stdout);
			return 0;
		}
		return usage_error("key: the subcommands are 'key test' (checks the API key with HITL.sh; costs one call) "
		                   "and 'key rotate' (switches to the standby key).");
	}
	k = parse_options(ctl, argc - 1, argv + 1, "", opts, NULL, NULL);
	if (k)
		return k < 0 ? 0 : k;
	if (optind < argc - 1)
		return usage_error("key %s takes no arguments.", argv[1]);
	if (streq(argv[1], "rotate"))
		return key_rotate(ctl);
	k = ctl_connect(ctl);
	if (!k)
		k = ctl_call(ctl, "key.test", NULL, &res, "key test");
	if (k)
		return k;
	if (ctl->json) {
		print_json(res);
		return 0;
	}
	rl = json_object_object_get(res, "rate_limit");
	jint(rl, "limit", &limit);
	jint(rl, "remaining", &remaining);
	printf("key valid: id %s, account %s (%s)\n", strna(jstr(res, "api_key_id")), strna(jstr(res, "email")),
	       strna(jstr(res, "account_status")));
	printf("rate limit: %" PRId64 "/%" PRId64 " calls left%s%s\n", remaining, limit,
	       format_when(jstr(rl, "reset_at"), when, sizeof when) ? ", resets " : "",
	       format_when(jstr(rl, "reset_at"), when, sizeof when) ? when : "");
	return 0;
}

/* daemon.reload's "key" (PROTOCOL.md §5.11): a refused new key, or none at
 * all, fails the reload (exit 6) although the configuration was read again; a
 * key with nothing to read it from again (the environment, read once at
 * start) that stays in use does not. An older hitld says nothing: success. */
static bool reload_key_ok(json_object *res) {
	json_object *key = json_object_object_get(res, "key");

	return !key || jbool(key, "loaded") || (jbool(key, "kept") && streq_ptr(jstr(key, "reason"), "no_key"));
}

/* daemon.reload's "restart_needed": changed keys a reload does not apply. */
static void reload_restart_needed(json_object *res) {
	json_object *keys = json_object_object_get(res, "restart_needed");
	size_t n = json_object_is_type(keys, json_type_array) ? json_object_array_length(keys) : 0;

	if (n == 0)
		return;
	fputs("not in effect until hitld restarts (systemctl restart hitld):", stdout);
	for (size_t i = 0; i < n; i++)
		printf("%s %s", i > 0 ? "," : "", strna(json_object_get_string(json_object_array_get_idx(keys, i))));
	putchar('\n');
}

static int reload_outcome(json_object *res) {
	json_object *key = json_object_object_get(res, "key");

	reload_restart_needed(res);

	if (!key)
		puts("reloaded: configuration and API key read again");
	else if (jbool(key, "loaded"))
		printf("reloaded: configuration read again, API key loaded from the %s\n",
		       streq_ptr(jstr(key, "source"), "key_file") ? "key file" : strna(jstr(key, "source")));
	else if (reload_key_ok(res))
		printf("reloaded: configuration read again; the previous key stays (%s)\n", strna(jstr(key, "error")));
	else if (jbool(key, "kept"))
		errorf("reload: configuration read again, but the new API key was refused: %s — the previous key stays in use; "
		       "see 'journalctl -u hitld'.", strna(jstr(key, "error")));
	else
		errorf("reload: configuration read again, but hitld has no API key: %s — see 'journalctl -u hitld'.",
		       strna(jstr(key, "error")));
	return reload_key_ok(res) ? 0 : EXIT_REMOTE;
}

static int simple_admin(Ctl *ctl, int argc, char **argv, const char *method, const char *done) {
	static const struct option opts[] = { COMMON_OPTIONS, {} };
	_cleanup_(json_object_putp) json_object *res = NULL;
	int k;

	k = parse_options(ctl, argc, argv, "", opts, NULL, NULL);
	if (k)
		return k < 0 ? 0 : k;
	if (optind < argc)
		return usage_error("%s takes no arguments.", ctl->verb);
	k = ctl_connect(ctl);
	if (!k)
		k = ctl_call(ctl, method, NULL, &res, ctl->verb);
	if (k)
		return k;
	if (ctl->json) {
		print_json(res);
		/* The exit status tells a script what the reply says. */
		return done || reload_key_ok(res) ? 0 : EXIT_REMOTE;
	}
	if (!done)
		return reload_outcome(res);
	puts(done);
	return 0;
}

int verb_pause(Ctl *ctl, int argc, char **argv) {
	return simple_admin(ctl, argc, argv, "queue.pause",
	                    "paused: hitld makes no HITL.sh calls (also across restarts) until 'hitlctl resume'");
}

int verb_resume(Ctl *ctl, int argc, char **argv) {
	return simple_admin(ctl, argc, argv, "queue.resume", "resumed: hitld sends and polls requests again");
}

/* ------------------------------------------------------------------ metrics */

int verb_metrics(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = { COMMON_OPTIONS, {} };
	_cleanup_(json_object_putp) json_object *res = NULL;
	const char *text;
	int k;

	k = parse_options(ctl, argc, argv, "", opts, NULL, NULL);
	if (k)
		return k < 0 ? 0 : k;
	if (optind < argc)
		return usage_error("metrics takes no arguments.");
	k = ctl_connect(ctl);
	if (k)
		return k;
	k = hitl_metrics(ctl->client, &res, &ctl->error);
	if (k < 0)
		return report_call_error(ctl, k, "metrics");
	if (ctl->json) {
		print_json(res);
		return 0;
	}
	/* Already in the exposition format, newline-terminated: as it is. */
	text = jstr(res, "text");
	if (text)
		fputs(text, stdout);
	return 0;
}

int verb_reload(Ctl *ctl, int argc, char **argv) {
	return simple_admin(ctl, argc, argv, "daemon.reload", NULL);
}
