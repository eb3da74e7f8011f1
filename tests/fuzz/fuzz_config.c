/* fuzz_config.c — config_load() on a file holding the fuzz input. Properties:
 * no crash, no leak; on failure an error message of one line and no Config;
 * on success every value within the bounds config.h documents, and
 * config_dump() of it read back by config_load() gives the same
 * configuration (config.h promises that for --check-config --dump). */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"
#include "fuzz_common.h"

/* libconfig 1.5 leaks the text of a string token when a syntax error follows
 * it: bison drops the token's value (hyperrealm/libconfig#142, fixed by a
 * %destructor in 1.7). Not ours to fix; the daemon loses at most one string
 * per failed load. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

static char input_path[PATH_MAX];
static char dump_path[PATH_MAX];

static void write_file(const char *path, const void *data, size_t size) {
	_cleanup_(closep) int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	const char *p = data;

	FUZZ_CHECK(fd >= 0, "cannot open %s: %m", path);
	while (size > 0) {
		ssize_t n = write(fd, p, size);

		FUZZ_CHECK(n > 0, "cannot write %s: %m", path);
		p += n;
		size -= (size_t) n;
	}
}

static void check_bounds(const Config *c) {
	FUZZ_CHECK(c->api_base_url && (strncmp(c->api_base_url, "https://", 8) == 0 ||
	                               strncmp(c->api_base_url, "http://", 7) == 0),
	           "base_url %s", strna(c->api_base_url));
	FUZZ_CHECK(c->api_timeout_s >= 1 && c->api_timeout_s <= 300, "timeout_s %u", c->api_timeout_s);
	FUZZ_CHECK(c->api_loop_cache_ttl_s <= 86400, "loop_cache_ttl_s %u", c->api_loop_cache_ttl_s);
	FUZZ_CHECK(!c->api_key_file || c->api_key_file[0] == '/', "key_file %s", c->api_key_file);
	FUZZ_CHECK(!c->api_ca_file || c->api_ca_file[0] == '/', "ca_file %s", c->api_ca_file);
	FUZZ_CHECK(c->budget_limit_per_hour >= 1 && c->budget_limit_per_hour <= 100000, "limit_per_hour %u",
	           c->budget_limit_per_hour);
	FUZZ_CHECK(c->budget_poll_reserve <= c->budget_limit_per_hour / 2, "poll_reserve %u of %u",
	           c->budget_poll_reserve, c->budget_limit_per_hour);
	FUZZ_CHECK(c->budget_min_poll_interval_s >= 1 && c->budget_min_poll_interval_s <= 3600,
	           "min_poll_interval_s %u", c->budget_min_poll_interval_s);
	FUZZ_CHECK(c->budget_window_s >= 1 && c->budget_window_s <= 86400, "window_s %u", c->budget_window_s);
	FUZZ_CHECK(c->socket_path && c->socket_path[0] == '/' && strlen(c->socket_path) <= CONFIG_SOCKET_PATH_MAX,
	           "socket path %s", strna(c->socket_path));
	FUZZ_CHECK(c->socket_mode <= 0777, "mode %o", (unsigned) c->socket_mode);
	FUZZ_CHECK(c->socket_group && c->socket_admin_group, "groups");
	FUZZ_CHECK(c->socket_max_connections_per_uid >= 1 && c->socket_max_connections_per_uid <= 1024,
	           "max_connections_per_uid %u", c->socket_max_connections_per_uid);
	FUZZ_CHECK(c->socket_max_connections >= 1 && c->socket_max_connections <= 65536, "max_connections %u",
	           c->socket_max_connections);
	FUZZ_CHECK(c->socket_max_message_bytes >= 1024 && c->socket_max_message_bytes <= 16777216,
	           "max_message_bytes %zu", c->socket_max_message_bytes);
	FUZZ_CHECK(c->socket_idle_timeout_s >= 1 && c->socket_idle_timeout_s <= 86400, "idle_timeout_s %u",
	           c->socket_idle_timeout_s);
	FUZZ_CHECK(config_loop_writes_to_string(c->socket_loop_writes), "loop_writes %d", (int) c->socket_loop_writes);
	FUZZ_CHECK(c->outbox_state_dir && c->outbox_state_dir[0] == '/', "state_dir %s", strna(c->outbox_state_dir));
	FUZZ_CHECK(c->outbox_max_requests >= 1 && c->outbox_max_requests <= 10000000, "max_requests %u",
	           c->outbox_max_requests);
	FUZZ_CHECK(c->outbox_max_per_uid >= 1 && c->outbox_max_per_uid <= 10000000, "max_per_uid %u",
	           c->outbox_max_per_uid);
	FUZZ_CHECK(c->outbox_min_free_mb <= 1048576, "min_free_mb %u", c->outbox_min_free_mb);
	FUZZ_CHECK(c->outbox_max_lifetime_s >= 60 && c->outbox_max_lifetime_s <= 31536000, "max_lifetime_s %u",
	           c->outbox_max_lifetime_s);
	FUZZ_CHECK(c->outbox_retention_days <= 3650, "retention_days %u", c->outbox_retention_days);
	FUZZ_CHECK(config_log_level_to_string(c->log_level), "log level %d", c->log_level);
}

static void check_same(const Config *a, const Config *b) {
	FUZZ_CHECK(streq_ptr(a->api_base_url, b->api_base_url), "base_url");
	FUZZ_CHECK(streq_ptr(a->api_key_file, b->api_key_file), "key_file");
	FUZZ_CHECK(a->api_timeout_s == b->api_timeout_s, "timeout_s");
	FUZZ_CHECK(streq_ptr(a->api_ca_file, b->api_ca_file), "ca_file");
	FUZZ_CHECK(a->api_loop_cache_ttl_s == b->api_loop_cache_ttl_s, "loop_cache_ttl_s");
	FUZZ_CHECK(a->budget_limit_per_hour == b->budget_limit_per_hour, "limit_per_hour");
	FUZZ_CHECK(a->budget_poll_reserve == b->budget_poll_reserve, "poll_reserve");
	FUZZ_CHECK(a->budget_min_poll_interval_s == b->budget_min_poll_interval_s, "min_poll_interval_s");
	FUZZ_CHECK(a->budget_window_s == b->budget_window_s, "window_s");
	FUZZ_CHECK(streq_ptr(a->socket_path, b->socket_path), "socket.path");
	FUZZ_CHECK(a->socket_mode == b->socket_mode, "socket.mode");
	FUZZ_CHECK(streq_ptr(a->socket_group, b->socket_group), "socket.group");
	FUZZ_CHECK(streq_ptr(a->socket_admin_group, b->socket_admin_group), "socket.admin_group");
	FUZZ_CHECK(a->socket_max_connections_per_uid == b->socket_max_connections_per_uid, "max_connections_per_uid");
	FUZZ_CHECK(a->socket_max_connections == b->socket_max_connections, "max_connections");
	FUZZ_CHECK(a->socket_max_message_bytes == b->socket_max_message_bytes, "max_message_bytes");
	FUZZ_CHECK(a->socket_idle_timeout_s == b->socket_idle_timeout_s, "idle_timeout_s");
	FUZZ_CHECK(a->socket_loop_writes == b->socket_loop_writes, "loop_writes");
	FUZZ_CHECK(streq_ptr(a->outbox_state_dir, b->outbox_state_dir), "state_dir");
	FUZZ_CHECK(a->outbox_max_requests == b->outbox_max_requests, "max_requests");
	FUZZ_CHECK(a->outbox_max_per_uid == b->outbox_max_per_uid, "max_per_uid");
	FUZZ_CHECK(a->outbox_min_free_mb == b->outbox_min_free_mb, "min_free_mb");
	FUZZ_CHECK(a->outbox_max_lifetime_s == b->outbox_max_lifetime_s, "max_lifetime_s");
	FUZZ_CHECK(a->outbox_retention_days == b->outbox_retention_days, "retention_days");
	FUZZ_CHECK(a->log_level == b->log_level, "log.level");
}

static void check_dump_reads_back(const Config *c) {
	_cleanup_(freep) char *text = NULL, *error = NULL;
	_cleanup_(fclosep) FILE *f = NULL;
	Config *again = NULL;
	size_t len = 0;
	int k;

	f = open_memstream(&text, &len);
	FUZZ_CHECK(f, "open_memstream: %m");
	config_dump(c, f);
	FUZZ_CHECK(fflush(f) == 0, "fflush");
	write_file(dump_path, text, len);

	k = config_load(dump_path, true, &again, &error);
	FUZZ_CHECK(k >= 0, "the dump does not read back: %s\n--- dump:\n%s", strna(error), text);
	check_same(c, again);
	config_free(again);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
	fuzz_quiet_logs();
	snprintf(input_path, sizeof input_path, "%s/hitld.conf", fuzz_tmpdir());
	snprintf(dump_path, sizeof dump_path, "%s/dump.conf", fuzz_tmpdir());
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	_cleanup_(freep) char *error = NULL;
	Config *c = NULL;
	int k;

	if (size > CONFIG_FILE_SIZE_MAX)
		return 0;
	write_file(input_path, data, size);
	k = config_load(input_path, true, &c, &error);
	if (k < 0) {
		FUZZ_CHECK(!c, "config_load wrote a Config on failure");
		FUZZ_CHECK(k == -EINVAL || k == -ENOMEM, "config_load: unexpected error %d (%s)", k, strna(error));
		FUZZ_CHECK(error || k == -ENOMEM, "config_load failed without a message");
		FUZZ_CHECK(!error || !strchr(error, '\n'), "the error message is not one line: %s", error);
		return 0;
	}
	FUZZ_CHECK(c, "config_load succeeded without a Config");
	FUZZ_CHECK(!error, "config_load set an error on success: %s", error);
	FUZZ_CHECK(streq_ptr(c->path, input_path), "path %s", strna(c->path));
	check_bounds(c);
	check_dump_reads_back(c);
	config_free(c);
	return 0;
}
