/* ctl.h — what the parts of hitlctl share (private to client/hitlctl.c and
 * client/ctl_*.c): the invocation's state (Ctl), the exit codes of
 * hitlctl(1), the option ids and the common options of every verb, talking
 * to hitld (ctl_call.c) and the verbs (ctl_verbs_*.c), which hitlctl.c
 * dispatches to.
 *
 * Layers, each file using only those below it (and libhitlclient; the table
 * in docs/ARCHITECTURE.md, which tests/layers/run-check enforces):
 *   hitlctl.c        main, the options before the verb, the verb table, dispatch
 *   ctl_verbs_*.c    the verbs (requests, admin, watch, trigger, usage)
 *   ctl_wait.c       waiting until a request is final
 *   ctl_call.c       connecting, calls, failures as messages and exit codes
 *   ctl_options.c    a verb's options (--help goes up through Ctl.help)
 *   ctl_params.c     flags as request params
 *   ctl_input.c      reading files, stdin, JSON, numbers
 *   ctl_output.c     everything printed */
#pragma once

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "hitlclient.h"

#ifndef HITLD_VERSION
#define HITLD_VERSION "0"
#endif

/* Exit codes, documented in hitlctl(1). */
enum {
	EXIT_MISMATCH = 1,     /* ask --expect: the answer was something else */
	EXIT_USAGE = 2,        /* bad flags or arguments (also parameters the daemon refused) */
	EXIT_UNREACHABLE = 3,  /* cannot talk to hitld */
	EXIT_NOT_FOUND = 4,    /* no such request, or not allowed */
	EXIT_TIMEOUT = 5,      /* waiting timed out */
	EXIT_REMOTE = 6,       /* HITL.sh, budget, queue, or the daemon refused or failed */
	EXIT_INTERRUPTED = 130,
};

#define USER_INPUT_MAX ((size_t) 1024 * 1024)   /* --params, --text-file, stdin */
#define CTL_MAX_MESSAGE ((size_t) 8 * 1024 * 1024)
#define WAIT_CHUNK_MS 3600000                   /* the protocol's request.wait maximum */
#define LIVE_TICK_MS 1000
#define LIVE_STATUS_EVERY_S 5
#define RECONNECT_FOR_S 60
#define LIST_PAGE 100
#define LIST_DEFAULT_LIMIT 50
#define TEXT_COLUMN_MAX 50
#define RESULT_COLUMN_MAX 20      /* an answer in list and watch lines (a free text may be long) */

typedef struct Ctl {
	const char *socket_arg;      /* --socket */
	char *instance_path;         /* --instance, resolved */
	const char *instance;        /* --instance NAME */
	const char *path;            /* what we connect to */
	bool json;
	bool tty_out, tty_err;
	HitlClient *client;
	HitlError error;
	const char *verb;
	/* Prints a verb's help (hitlctl.c's verb table), for --help. */
	void (*help)(const char *verb, FILE *f);
} Ctl;

/* ------------------------------------------------------------------ options */

enum {
	OPT_JSON = 1000,
	OPT_SOCKET,
	OPT_INSTANCE,
	OPT_HELP,
	/* submit / ask */
	OPT_LOOP,
	OPT_TEXT,
	OPT_TEXT_FILE,
	OPT_TYPE,
	OPT_OPTION,
	OPT_MIN,
	OPT_MAX,
	OPT_STEP,
	OPT_DECIMALS,
	OPT_PLACEHOLDER,
	OPT_PREFIX,
	OPT_SUFFIX,
	OPT_ALLOW_NEGATIVE,
	OPT_REQUIRED,
	OPT_CONFIG,
	OPT_DEFAULT,
	OPT_PRIORITY,
	OPT_TIMEOUT,
	OPT_DEFERRED,
	OPT_CONTEXT,
	OPT_IMAGE_URL,
	OPT_CONTENT,
	OPT_FILE_URL,
	OPT_FILE_TYPE,
	OPT_FILE_NAME,
	OPT_VIDEO_URL,
	OPT_AUDIO_URL,
	OPT_DRAFT_TEXT,
	OPT_MAX_LENGTH,
	OPT_TRUE_LABEL,
	OPT_FALSE_LABEL,
	OPT_CALLBACK_URL,
	OPT_REF,
	OPT_PARAMS,
	OPT_EXPECT,
	/* list */
	OPT_STATE,
	OPT_ALL,
	OPT_LIMIT,
	OPT_USER,
	OPT_QUIET,
	/* feedback */
	OPT_RATING,
	OPT_COMMENT,
	OPT_ACCURACY,
	OPT_TIMELINESS,
	OPT_HELPFULNESS,
	OPT_RECOMMEND,
	OPT_FOLLOW_UP,
	OPT_TAG,
	OPT_CATEGORY,
	/* loops */
	OPT_NAME,
	OPT_DESCRIPTION,
	OPT_ICON,
	OPT_YES,
	/* trigger */
	OPT_DATA,
	OPT_DATA_FILE,
	OPT_NO_WAIT,
};

#define COMMON_OPTIONS                                              \
	{ "json", no_argument, NULL, OPT_JSON },                    \
	{ "socket", required_argument, NULL, OPT_SOCKET },          \
	{ "instance", required_argument, NULL, OPT_INSTANCE },      \
	{ "help", no_argument, NULL, OPT_HELP }

/* getopt_long over a verb's arguments; unknown options are usage errors.
 * Calls handle(opt, optarg) for verb options. Returns 0, or an exit code
 * (-1 means "help printed, exit 0"). */
typedef int (*option_handler_t)(Ctl *ctl, int opt, const char *arg, void *userdata);
/* Also resolves the socket path (resolve_path()). */
int parse_options(Ctl *ctl, int argc, char **argv, const char *shortopts, const struct option *longopts,
                  option_handler_t handle, void *userdata);
/* Handles a common option; returns 1 if it was one, 0 if not, <0 exit code negated. */
int common_option(Ctl *ctl, int opt, const char *arg);
/* ctl->path: --socket > --instance > HITLD_SOCKET > /run/hitld.sock. */
void resolve_path(Ctl *ctl);

/* ------------------------------------------------------------------ verbs (ctl_verbs_*.c) */

int verb_status(Ctl *ctl, int argc, char **argv);
int verb_submit(Ctl *ctl, int argc, char **argv);
int verb_ask(Ctl *ctl, int argc, char **argv);
int verb_get(Ctl *ctl, int argc, char **argv);
int verb_wait(Ctl *ctl, int argc, char **argv);
int verb_list(Ctl *ctl, int argc, char **argv);
int verb_cancel(Ctl *ctl, int argc, char **argv);
int verb_feedback(Ctl *ctl, int argc, char **argv);
int verb_trigger(Ctl *ctl, int argc, char **argv);
int verb_watch(Ctl *ctl, int argc, char **argv);
int verb_loops(Ctl *ctl, int argc, char **argv);
int verb_key(Ctl *ctl, int argc, char **argv);
int verb_pause(Ctl *ctl, int argc, char **argv);
int verb_resume(Ctl *ctl, int argc, char **argv);
int verb_reload(Ctl *ctl, int argc, char **argv);
int verb_metrics(Ctl *ctl, int argc, char **argv);
int verb_usage(Ctl *ctl, int argc, char **argv);

/* ------------------------------------------------------------------ talking to hitld (ctl_call.c) */

/* Set by SIGINT/SIGTERM once catch_signals() ran. */
extern volatile sig_atomic_t interrupted;
void catch_signals(void);

/* (Re)connects ctl->client to ctl->path; reports a failure, returns 0 or an exit code. */
int ctl_connect(Ctl *ctl);
bool is_connection_loss(int r);
/* The daemon went away (restart, shutdown) rather than refused something. */
bool daemon_went_away(const Ctl *ctl, int r);
/* Reports a failed call r (transport or ctl->error) naming what failed; returns the exit code. */
int report_call_error(Ctl *ctl, int r, const char *what);
/* One call on the connection; returns 0, or the exit code of the reported failure. */
int ctl_call(Ctl *ctl, const char *method, json_object *params, json_object **ret_result, const char *what);
