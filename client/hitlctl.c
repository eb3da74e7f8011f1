/* hitlctl.c — the command-line client of hitld, built on libhitlclient.
 * One verb per invocation: status, submit, ask, get, wait, list, cancel, feedback, watch,
 * loops …, key test, pause, resume, reload. Human output by default, the daemon's JSON
 * unchanged with --json; documented exit codes (see usage() and hitlctl(1)). Every error
 * names its cause and, where one exists, the fix.
 *
 * This file holds main(), the options before the verb, the verb table with
 * its help texts and the dispatch; ctl.h says where the rest lives. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "ctl.h"
#include "ctl_output.h"
#include "mcp.h"

/* ------------------------------------------------------------------ verbs, help */

typedef struct Verb {
	const char *name;
	int (*run)(Ctl *ctl, int argc, char **argv);
	const char *synopsis;
	const char *summary;
	const char *help;
} Verb;

static const Verb *verb_find(const char *name);
static void verb_help(const Verb *v, FILE *f);
static int verb_help_cmd(Ctl *ctl, int argc, char **argv);
static int verb_version(Ctl *ctl, int argc, char **argv);

static int verb_mcp(Ctl *ctl, int argc, char **argv) {
	return mcp_main(ctl->path, argc, argv);
}

static const Verb verbs[] = {
	{ "status", verb_status, "status", "budget, queue, HITL.sh reachability and key state",
	  "Shows hitld's state: API budget used and left this hour and when it resets (local time),\n"
	  "request counts by state (your own unless you are an admin), when the queued requests\n"
	  "will have been created at the budget's pace and how many decisions an hour the budget\n"
	  "yields, whether HITL.sh answers, whether the API key is loaded and valid, and whether\n"
	  "the queue is paused.\n" },
	{ "usage", verb_usage, "usage [--since 1h|24h|7d|30d] [--by kind|uid|loop|hour]",
	  "where the API calls went: by kind, user, loop or hour",
	  "Shows the HITL.sh calls made with hitld's key (your own unless you are an admin)\n"
	  "since a time, summed by call kind, uid, loop or hour, with their outcomes (2xx,\n"
	  "4xx, 429, 5xx, no reply), and the decisions and defaults. Calls another program\n"
	  "made with the same key show as uid (and kind) \"foreign\". History: 31 days.\n"
	  "  -s, --since DURATION     1h, 24h (default), 7d, 30d, 90m: whole hours back from now\n"
	  "  -b, --by WHAT            kind (default), uid, loop, or hour: calls per hour as a bar\n"
	  "                           chart with the hourly limit marked '|'\n"
	  "With --json, the usage method's reply.\n" },
	{ "submit", verb_submit, "submit --loop ID --default VALUE [options] [TEXT]",
	  "queue a request for a human; prints its id",
	  "Queues a request and prints its local id (r_…) at once; the daemon sends it to HITL.sh\n"
	  "when budget allows. The text comes from TEXT, --text, --text-file FILE or stdin.\n"
	  "\n"
	  "  -l, --loop ID            the loop (group of reviewers) to ask ('hitlctl loops list')\n"
	  "      --type TYPE          single_select, multi_select, rating, number, text, boolean,\n"
	  "                           editable_text\n"
	  "                           (default: single_select with --option, else text)\n"
	  "  -o, --option VALUE[=Label]  a choice (repeat; for single_select and multi_select)\n"
	  "      --min N, --max N     rating scale (default 1-5), number range, text length,\n"
	  "                           or number of choices for multi_select\n"
	  "      --step N             rating step (e.g. 0.5)\n"
	  "      --decimals N         number: decimal places allowed\n"
	  "      --max-length N       text, editable_text: longest answer (1-5000)\n"
	  "      --draft-text TEXT    editable_text: the text the reviewer edits (also the\n"
	  "                           default answer unless --default is given)\n"
	  "      --true-label S, --false-label S   boolean: the two buttons' words\n"
	  "      --prefix S, --suffix S, --allow-negative, --placeholder S   number/text display\n"
	  "      --required           the reviewer must answer (no empty answer)\n"
	  "      --config JSON        extra response_config keys, e.g. '{\"max_length\":200}'\n"
	  "  -d, --default VALUE      the answer used if nobody replies in time (required);\n"
	  "                           multi_select: a,b or a JSON array\n"
	  "  -p, --priority P         low, medium (default), high, critical\n"
	  "      --timeout DURATION   answer within this long: 900, 90s, 15m, 2h, 1d; makes the\n"
	  "                           request time-sensitive (60s-1d) unless --deferred\n"
	  "      --deferred           no hurry (default when --timeout is not given); without\n"
	  "                           --timeout HITL.sh waits up to 30 days\n"
	  "      --context JSON       a JSON object shown to reviewers\n"
	  "      --image-url URL      an image to review (makes the request an image request)\n"
	  "      --file-url URL --file-type T --file-name N   a document to review (a file request)\n"
	  "      --video-url URL, --audio-url URL   a video or a recording to review\n"
	  "      --content TYPE       markdown (default), image, file, video, audio\n"
	  "      --callback-url URL   HITL.sh POSTs the outcome there\n"
	  "      --ref REF            your idempotency key: submitting the same REF again\n"
	  "                           returns the first request instead of a new one\n"
	  "      --text TEXT, --text-file FILE ('-': stdin)\n"
	  "      --params FILE        request.submit fields as raw JSON ('-': stdin); flags override\n"
	  "\n"
	  "Example:\n"
	  "  hitlctl submit --loop 65f1234567890abcdef12345 --option approve --option reject \\\n"
	  "      --default reject --timeout 15m \"Deploy build 4812?\"\n" },
	{ "ask", verb_ask, "ask --loop ID --default VALUE [submit options] [--expect VALUE] [TEXT]",
	  "submit, wait for the answer and print it",
	  "Submits like 'submit' (same options; --default is required), waits until the request\n"
	  "is answered or times out, and prints the answer (on timeout: the --default value).\n"
	  "On a terminal a live line on stderr shows state, queue position, budget and time left.\n"
	  "With no --type, --option means single_select; --type single_select without --option\n"
	  "is an error.\n"
	  "\n"
	  "  -e, --expect VALUE       exit 0 if the answer equals VALUE, 1 if it is anything else\n"
	  "                           (also when the default was used); 6 if cancelled or failed\n"
	  "\n"
	  "Example:\n"
	  "  hitlctl ask --loop L --option approve --option reject --default reject \\\n"
	  "      --timeout 15m --expect approve \"Deploy build 4812?\" && ./deploy\n" },
	{ "get", verb_get, "get ID | get --ref REF", "show one request",
	  "Shows a request: state, answer, text, options, times, HITL.sh id, feedback, error.\n"
	  "      --ref REF            find it by the --ref it was submitted with\n" },
	{ "wait", verb_wait, "wait ID [--timeout DURATION]", "wait until a request is answered or final",
	  "Waits until the request is final and prints 'ID STATE RESULT'. Exit 0 when final\n"
	  "(6 if it failed), 5 if --timeout passes first. Without --timeout it waits as long as\n"
	  "it takes (the request's own deadline ends it).\n"
	  "  -t, --timeout DURATION   stop waiting after 30, 90s, 15m, 2h …\n" },
	{ "list", verb_list, "list [--state S[,S]] [--loop ID] [--all] [--limit N] [-q]",
	  "list requests, newest first",
	  "Lists your requests (an admin sees everyone's), newest first: open ones\n"
	  "(queued, submitting, pending) unless --all or --state says otherwise.\n"
	  "  -s, --state S[,S]        only these states (repeatable)\n"
	  "  -l, --loop ID            only this loop's requests\n"
	  "  -a, --all                every state, finished ones too\n"
	  "  -n, --limit N            at most N requests (default 50)\n"
	  "  -u, --user UID           only this uid's requests (admins)\n"
	  "  -q, --quiet              print only the ids\n" },
	{ "cancel", verb_cancel, "cancel ID…", "withdraw requests",
	  "Cancels requests. A queued one is cancelled at once without any API call; one already\n"
	  "at HITL.sh is cancelled there when budget allows (a reviewer may answer first).\n" },
	{ "feedback", verb_feedback, "feedback ID --rating N [--comment TEXT] [more]",
	  "rate the reviewer's answer of a completed request",
	  "Queues feedback on a completed request; hitld sends it to HITL.sh when budget allows.\n"
	  "  -r, --rating N           1-5, overall quality\n"
	  "  -c, --comment TEXT       up to 1000 characters\n"
	  "      --accuracy N, --timeliness N, --helpfulness N   1-5 each\n"
	  "      --would-recommend yes|no, --follow-up, --tag TAG (repeat),\n"
	  "      --category positive|constructive|issue\n" },
	{ "trigger", verb_trigger, "trigger WORKFLOW_ID [--data JSON | --data-file FILE] [options]",
	  "start a HITL.sh workflow once; prints its execution id",
	  "Queues a trigger of a HITL.sh workflow (POST /v1/workflows/ID/trigger), waits until\n"
	  "hitld has sent it, and prints the execution id HITL.sh returned. The trigger is stored\n"
	  "before it is acknowledged and is sent at most once: if hitld cannot learn whether\n"
	  "HITL.sh took it (no reply, or hitld stopped while sending), it fails with error code\n"
	  "outcome_unknown and is not sent again. HITL.sh offers no way to read an execution's\n"
	  "status, so hitlctl's part ends with the execution id.\n"
	  "\n"
	  "      --data JSON          the JSON object sent as the body (default {}; at most 50 KiB)\n"
	  "      --data-file FILE     the same, read from FILE ('-': stdin)\n"
	  "      --ref REF            your idempotency key: the same REF and data again is the same trigger\n"
	  "  -p, --priority P         low, medium (default), high, critical: its place in the queue\n"
	  "  -t, --timeout DURATION   stop waiting after this long (exit 5; the trigger stays queued)\n"
	  "      --no-wait            print the local id (r_…) at once; 'hitlctl get ID' shows the outcome\n"
	  "\n"
	  "Example:\n"
	  "  hitlctl trigger wf_abc123 --data '{\"ticket\": 4812}'\n" },
	{ "watch", verb_watch, "watch [ID…]", "print one line per request change until interrupted",
	  "Prints a line each time a request changes state (all you may see, or only the IDs\n"
	  "given), until Ctrl-C. With --json: the daemon's notifications, one per line.\n" },
	{ "loops", verb_loops, "loops list|get ID|members ID|create|update ID|delete ID|remove-member ID USER",
	  "manage HITL.sh loops (calls HITL.sh; may cost budget)",
	  "Loops are HITL.sh's groups of reviewers. Reads are cached by hitld for a few minutes.\n"
	  "  loops list [-q]                          all loops (-q: ids only)\n"
	  "  loops get ID                             one loop and its members\n"
	  "  loops members ID                         its members\n"
	  "  loops create --name N --icon I [--description D]   prints the new loop's id\n"
	  "  loops update ID [--name N] [--description D] [--icon I]\n"
	  "  loops delete ID [--yes]                  deletes it and all its requests at HITL.sh\n"
	  "  loops remove-member ID USER_ID\n"
	  "Changes are for admins unless hitld's socket.loop_writes is \"all\".\n" },
	{ "key", verb_key, "key test|rotate", "check the API key, or switch to the standby key (admin)",
	  "  key test     asks HITL.sh whether hitld's API key is valid and shows its id, account and\n"
	  "               rate limit (costs one call)\n"
	  "  key rotate   tests the standby key (credential hitl-api-key.next or api.next_key_file)\n"
	  "               with HITL.sh and, if it works, makes it the key hitld uses; nothing queued\n"
	  "               is lost or sent twice. A refused standby leaves the current key in use.\n" },
	{ "pause", verb_pause, "pause", "stop all HITL.sh traffic (admin; survives restarts)",
	  "Pauses the queue: hitld makes no HITL.sh calls until 'hitlctl resume'. Requests can\n"
	  "still be submitted; they wait.\n" },
	{ "resume", verb_resume, "resume", "resume HITL.sh traffic (admin)", "Undoes 'hitlctl pause'.\n" },
	{ "reload", verb_reload, "reload", "re-read configuration and API key (admin)",
	  "Same as 'systemctl reload hitld' (SIGHUP): re-reads the configuration and the API key;\n"
	  "nothing queued is lost. A configuration with errors is refused and the old one stays.\n" },
	{ "metrics", verb_metrics, "metrics", "hitld's figures in the Prometheus text format",
	  "Prints hitld's metrics in the Prometheus text exposition format (hitld(8) METRICS):\n"
	  "the budget, requests by state, the backlog forecast, calls by kind and outcome.\n"
	  "An admin gets the whole daemon, anyone else the budget and their own requests.\n"
	  "--json prints the method's reply (content_type, text).\n" },
	{ "mcp", verb_mcp, MCP_SYNOPSIS, MCP_SUMMARY, MCP_HELP },
	{ "help", verb_help_cmd, "help [VERB]", "show help for a verb", "Shows the help of VERB, or this overview.\n" },
	{ "version", verb_version, "version", "print hitlctl's version and the daemon's",
	  "Prints hitlctl's version and, if it can connect, hitld's.\n" },
};

static const Verb *verb_find(const char *name) {
	for (size_t i = 0; name && i < ELEMENTSOF(verbs); i++)
		if (streq(verbs[i].name, name))
			return &verbs[i];
	return NULL;
}

static const char common_help[] =
	"Options for every verb:\n"
	"      --json               print hitld's JSON replies unchanged, one object per line\n"
	"      --socket PATH        hitld's socket (default: $HITLD_SOCKET, else /run/hitld.sock)\n"
	"      --instance NAME      the socket of hitld@NAME: /run/hitld-NAME.sock\n"
	"  -h, --help               help\n";

static const char exit_help[] =
	"Exit status:\n"
	"  0  success          1  ask --expect: the answer was something else\n"
	"  2  usage error      3  hitld unreachable\n"
	"  4  not found (request, or loop at HITL.sh) or permission denied\n"
	"  5  timed out waiting\n"
	"  6  HITL.sh, budget or queue error (or the request was cancelled/failed)\n";

static void usage(FILE *f) {
	fprintf(f,
	        "hitlctl — ask humans through hitld and HITL.sh, and manage hitld\n"
	        "\n"
	        "Usage: hitlctl [--json] [--socket PATH | --instance NAME] VERB [ARGS…]\n"
	        "\n"
	        "Verbs:\n");
	for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
		fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
	fprintf(f,
	        "\n%s\n%s\n"
	        "Getting started:\n"
	        "  hitlctl status                      is hitld running, how much budget is left?\n"
	        "  hitlctl loops list                  which loops of reviewers exist?\n"
	        "  hitlctl ask --loop ID --option approve --option reject --default reject \\\n"
	        "      --expect approve \"Deploy build 4812?\" && ./deploy\n"
	        "  hitlctl VERB --help                 the options of a verb\n"
	        "\n"
	        "See hitlctl(1) and docs/PROTOCOL.md.\n",
	        common_help, exit_help);
}

static void verb_help(const Verb *v, FILE *f) {
	if (!v) {
		usage(f);
		return;
	}
	fprintf(f, "Usage: hitlctl %s\n\n%s\n%s\n%s", v->synopsis, v->help, common_help, exit_help);
}

/* Ctl.help: what --help shows for a verb. */
static void help_for(const char *verb, FILE *f) {
	verb_help(verb_find(verb), f);
}

static int verb_help_cmd(Ctl *ctl, int argc, char **argv) {
	const Verb *v;

	if (argc < 2) {
		usage(stdout);
		return 0;
	}
	v = verb_find(argv[1]);
	if (!v)
		return usage_error("help %s: no such verb — 'hitlctl --help' lists them.", argv[1]);
	verb_help(v, stdout);
	return 0;
}

static int verb_version(Ctl *ctl, int argc, char **argv) {
	static const struct option opts[] = { COMMON_OPTIONS, {} };
	_cleanup_(json_object_putp) json_object *hello = NULL;
	int k;

	k = parse_options(ctl, argc, argv, "", opts, NULL, NULL);
	if (k)
		return k < 0 ? 0 : k;
	if (hitl_client_connect(ctl->path, &ctl->client) >= 0)
		(void) hitl_hello(ctl->client, "hitlctl/" HITLD_VERSION, &hello, NULL);
	if (ctl->json) {
		if (hello)
			print_json(hello);
		else
			puts("null");
		return 0;
	}
	printf("hitlctl %s\n", HITLD_VERSION);
	if (hello)
		printf("hitld %s (protocol %" PRId64 ") at %s\n", strna(jstr(hello, "version")),
		       json_object_get_int64(json_object_object_get(hello, "protocol")), ctl->path);
	else
		printf("hitld: not reachable at %s\n", ctl->path);
	return 0;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
	Ctl ctl = { .tty_out = isatty(STDOUT_FILENO), .tty_err = isatty(STDERR_FILENO), .help = help_for };
	const Verb *v;
	int i, r;

	term_filter_install();

	/* Options before the verb: the common ones only. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (streq(a, "--")) {
			i++;
			break;
		}
		if (streq(a, "-h") || streq(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (streq(a, "--version")) {
			printf("hitlctl %s\n", HITLD_VERSION);
			return 0;
		}
		if (streq(a, "--json"))
			ctl.json = true;
		else if (streq(a, "--socket") || streq(a, "--instance")) {
			if (i + 1 >= argc)
				return usage_error("%s needs a value.", a);
			r = common_option(&ctl, streq(a, "--socket") ? OPT_SOCKET : OPT_INSTANCE, argv[++i]);
			if (r < 0)
				return -r;
		} else if (strncmp(a, "--socket=", 9) == 0)
			ctl.socket_arg = a + 9;
		else if (strncmp(a, "--instance=", 11) == 0) {
			r = common_option(&ctl, OPT_INSTANCE, a + 11);
			if (r < 0)
				return -r;
		} else
			return usage_error("unknown option %s before the verb — see 'hitlctl --help'.", a);
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	v = verb_find(argv[i]);
	if (!v)
		return usage_error("unknown verb '%s' — 'hitlctl --help' lists the verbs.", argv[i]);
	ctl.verb = v->name;
	resolve_path(&ctl);
	ctl.error = HITL_ERROR_INIT;

	r = v->run(&ctl, argc - i, argv + i);

	hitl_error_clear(&ctl.error);
	hitl_client_free(ctl.client);
	free(ctl.instance_path);
	term_filter_finish();
	return r;
}

