/* ctl_options.c — a verb's options: getopt_long over its arguments, the
 * options every verb has (--json, --socket, --instance, --help) and the
 * socket they choose (see ctl.h). */
#include <getopt.h>
#include <stdlib.h>

#include "cleanup.h"
#include "ctl.h"
#include "ctl_output.h"

int common_option(Ctl *ctl, int opt, const char *arg) {
	switch (opt) {
	case OPT_JSON:
		ctl->json = true;
		return 1;
	case OPT_SOCKET:
		ctl->socket_arg = arg;
		return 1;
	case OPT_INSTANCE: {
		char *p = NULL;

		if (hitl_socket_path_for_instance(arg, &p) < 0)
			return -usage_error("--instance %s: an instance name is 1-%d characters of letters, digits and _.:@- (e.g. --instance prod for hitld@prod.service)",
			                    arg, HITL_INSTANCE_NAME_MAX);
		free(ctl->instance_path);
		ctl->instance_path = p;
		ctl->instance = arg;
		return 1;
	}
	case OPT_HELP:
		ctl->help(ctl->verb, stdout);
		return -256; /* "exit 0 now" */
	default:
		return 0;
	}
}

void resolve_path(Ctl *ctl) {
	if (ctl->socket_arg && ctl->socket_arg[0])
		ctl->path = ctl->socket_arg;
	else if (ctl->instance_path)
		ctl->path = ctl->instance_path;
	else
		ctl->path = hitl_socket_path(NULL);
}

int parse_options(Ctl *ctl, int argc, char **argv, const char *shortopts, const struct option *longopts,
                  option_handler_t handle, void *userdata) {
	int opt;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		int k;

		if (opt == '?' || opt == ':') {
			if (optopt && optopt < 256 && optopt != '?')
				return usage_error("%s: unknown or incomplete option -%c — see 'hitlctl %s --help'.", ctl->verb,
				                   optopt, ctl->verb);
			return usage_error("%s: unknown option or missing value in '%s' — see 'hitlctl %s --help'.", ctl->verb,
			                   argv[optind - 1], ctl->verb);
		}
		k = common_option(ctl, opt, optarg);
		if (k == -256)
			return -1;
		if (k < 0)
			return -k;
		if (k > 0)
			continue;
		k = handle ? handle(ctl, opt, optarg, userdata) : EXIT_USAGE;
		if (k != 0)
			return k;
	}
	resolve_path(ctl);
	return 0;
}
