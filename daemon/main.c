/* main.c — command line, process hardening, and the manager's life. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "config.h"
#include "log.h"
#include "manager.h"
#include "methods.h"
#include "secret.h"

#define DEFAULT_CONFIG "/etc/hitld/hitld.conf"

static void help(void) {
	printf("Usage: hitld [OPTIONS]\n"
	       "\n"
	       "Holds a HITL.sh API key, keeps a durable outbox of human-review requests,\n"
	       "and serves local programs on a Unix socket (see hitld(8)).\n"
	       "\n"
	       "  -c, --config FILE     configuration file (default " DEFAULT_CONFIG ")\n"
	       "  -s, --socket PATH     listen on PATH instead of socket.path\n"
	       "  -d, --state-dir DIR   keep the outbox in DIR instead of outbox.state_dir\n"
	       "  -f, --foreground      log to stderr even when started by systemd\n"
	       "      --log-target=T    auto (journal when stderr is the journal), journal, stderr\n"
	       "      --check-config    validate the configuration (as the daemon would) and exit\n"
	       "      --dump            with --check-config (or alone): print the configuration\n"
	       "                        in effect, defaults and -s/-d included, in the file's syntax\n"
	       "  -h, --help            show this help\n"
	       "      --version         show the version\n");
}

/* --check-config [--dump]: config_load applies every rule the daemon applies to the file
 * (the base URL's included); no lock, no state directory, no socket are touched. */
static int check_configuration(const ManagerOptions *mo, bool dump) {
	_cleanup_(freep) char *error = NULL;
	Config *cfg = NULL;
	char *p;
	int k;

	k = config_load(mo->config_path, mo->config_must_exist, &cfg, &error);
	if (k < 0) {
		fprintf(stderr, "%s\n", error ? error : "hitld: invalid configuration");
		return EXIT_FAILURE;
	}
	/* What the daemon would use: the command line wins over the file. */
	if (mo->socket_path) {
		k = (p = strdup(mo->socket_path)) ? 0 : -ENOMEM;
		if (k == 0) {
			free(cfg->socket_path);
			cfg->socket_path = p;
		}
	}
	if (k == 0 && mo->state_dir) {
		k = (p = strdup(mo->state_dir)) ? 0 : -ENOMEM;
		if (k == 0) {
			free(cfg->outbox_state_dir);
			cfg->outbox_state_dir = p;
		}
	}
	if (k < 0) {
		config_free(cfg);
		fprintf(stderr, "hitld: out of memory\n");
		return EXIT_FAILURE;
	}
	if (dump)
		config_dump(cfg, stdout);
	else if (cfg->path)
		printf("%s: the configuration is valid.\n", cfg->path);
	else
		printf("%s does not exist: the built-in defaults are valid.\n", mo->config_path);
	config_free(cfg);
	return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* What the command line asked for. */
typedef struct Args {
	ManagerOptions mo;
	bool check_config, dump, foreground;
	LogTarget target;
} Args;

/* systemd's parse_argv() convention: > 0 go on, 0 done (--help, --version),
 * < 0 a usage error (already said on stderr). */
static int parse_argv(int argc, char **argv, Args *args) {
	enum { ARG_CHECK_CONFIG = 0x100, ARG_DUMP, ARG_VERSION, ARG_LOG_TARGET };
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, ARG_CHECK_CONFIG },
		{ "dump", no_argument, NULL, ARG_DUMP },
		{ "log-target", required_argument, NULL, ARG_LOG_TARGET },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{}
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:s:d:fh", options, NULL)) >= 0)
		switch (c) {
		case 'c':
			args->mo.config_path = optarg;
			args->mo.config_must_exist = true;
			break;
		case 's':
			args->mo.socket_path = optarg;
			break;
		case 'd':
			args->mo.state_dir = optarg;
			break;
		case 'f':
			args->foreground = true;
			break;
		case ARG_LOG_TARGET:
			if (streq(optarg, "auto"))
				args->target = LOG_TARGET_AUTO;
			else if (streq(optarg, "journal"))
				args->target = LOG_TARGET_JOURNAL;
			else if (streq(optarg, "stderr"))
				args->target = LOG_TARGET_STDERR;
			else {
				fprintf(stderr, "hitld: --log-target takes auto, journal or stderr, not '%s'.\n", optarg);
				return -EINVAL;
			}
			break;
		case ARG_CHECK_CONFIG:
			args->check_config = true;
			break;
		case ARG_DUMP:
			args->check_config = args->dump = true;
			break;
		case 'h':
			help();
			return 0;
		case ARG_VERSION:
			printf("hitld %s\n", HITLD_VERSION);
			return 0;
		default:
			fprintf(stderr, "Try 'hitld --help'.\n");
			return -EINVAL;
		}
	if (optind < argc) {
		fprintf(stderr, "hitld: unexpected argument '%s'. Try 'hitld --help'.\n", argv[optind]);
		return -EINVAL;
	}
	return 1;
}

int main(int argc, char **argv) {
	/* Freed in reverse order: the manager (and its socket server) first, then
	 * the methods layer that served its calls. */
	_cleanup_(methods_freep) Methods *ms = NULL;
	_cleanup_(manager_freep) Manager *m = NULL;
	Args args = { .mo.config_path = DEFAULT_CONFIG, .target = LOG_TARGET_AUTO };
	int k;

	k = parse_argv(argc, argv, &args);
	if (k <= 0)
		return k < 0 ? 2 : EXIT_SUCCESS;

	log_setup(args.foreground && args.target == LOG_TARGET_AUTO ? LOG_TARGET_STDERR : args.target);

	if (args.check_config)
		return check_configuration(&args.mo, args.dump);

	/* Before anything reads the key: no core dumps, no ptrace by others. */
	k = secret_protect_process();
	if (k < 0) {
		log_error_errno(k, "Failed to make the process non-dumpable: %m");
		return EXIT_FAILURE;
	}
	umask(0077);

	k = manager_new(&args.mo, &m);
	if (k >= 0)
		k = methods_new(m, &ms);
	if (k < 0) {
		log_error_errno(k, "Failed to set up: %m");
		return EXIT_FAILURE;
	}
	k = manager_startup(m);
	if (k < 0)
		return EXIT_FAILURE;
	k = manager_run(m);
	if (k < 0) {
		log_error_errno(k, "Event loop failed: %m");
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}
