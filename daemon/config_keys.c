/* config_keys.c — see config_keys.h: the table of hitld.conf's keys, and
 * which of them a reload applies. */
#include <string.h>
#include <sys/types.h>

#include "config_keys.h"
#include "cleanup.h"

/* START: bound at start — the socket and state directory (paths opened
 * once), the HITL.sh client (calls may be in flight with its URL, CA and
 * timeout), the webhook listener (its socket and server). Everything else is
 * read when used or pushed to its user by manager.c's apply_config(). */
#define KEY(g, n, k, field, lo, hi, when) { g, n, g "." n, k, offsetof(Config, field), lo, hi, when }
#define RELOAD true
#define START false

/* In the order of the file and of the dump. */
const KeyDef config_keys[] = {
	KEY("api", "base_url", KEY_URL, api_base_url, 0, 0, START),
	KEY("api", "key_file", KEY_PATH, api_key_file, 0, 0, RELOAD),
	KEY("api", "next_key_file", KEY_PATH, api_next_key_file, 0, 0, RELOAD),
	KEY("api", "rotate_after_days", KEY_UNSIGNED, api_rotate_after_days, 0, 3650, RELOAD),
	KEY("api", "timeout_s", KEY_UNSIGNED, api_timeout_s, 1, 300, START),
	KEY("api", "min_timeout_margin", KEY_UNSIGNED, api_min_timeout_margin_s, 0, 3600, RELOAD),
	KEY("api", "ca_file", KEY_PATH, api_ca_file, 0, 0, START),
	KEY("api", "loop_cache_ttl_s", KEY_UNSIGNED, api_loop_cache_ttl_s, 0, 86400, RELOAD),
	KEY("api", "foreign_threshold", KEY_UNSIGNED, api_foreign_threshold, 1, 1000000, RELOAD),

	KEY("budget", "limit_per_hour", KEY_UNSIGNED, budget_limit_per_hour, 1, 100000, RELOAD),
	KEY("budget", "poll_reserve", KEY_UNSIGNED, budget_poll_reserve, 0, 50000, RELOAD),
	KEY("budget", "min_poll_interval_s", KEY_UNSIGNED, budget_min_poll_interval_s, 1, 3600, RELOAD),
	KEY("budget", "window_s", KEY_UNSIGNED, budget_window_s, 1, 86400, RELOAD),
	KEY("budget", "interactive_per_uid", KEY_UNSIGNED, budget_interactive_per_uid, 0, 100000, RELOAD),
	KEY("budget", "interactive_total", KEY_UNSIGNED, budget_interactive_total, 0, 100000, RELOAD),
	KEY("budget", "warn_drain_hours", KEY_UNSIGNED, budget_warn_drain_hours, 0, 8760, RELOAD),

	KEY("socket", "path", KEY_SOCKET_PATH, socket_path, 0, 0, START),
	KEY("socket", "mode", KEY_MODE, socket_mode, 0, 0777, START),
	KEY("socket", "group", KEY_GROUP_NAME, socket_group, 0, 0, START),
	KEY("socket", "admin_group", KEY_GROUP_NAME, socket_admin_group, 0, 0, RELOAD),
	KEY("socket", "max_connections_per_uid", KEY_UNSIGNED, socket_max_connections_per_uid, 1, 1024, RELOAD),
	KEY("socket", "max_connections", KEY_UNSIGNED, socket_max_connections, 1, 65536, RELOAD),
	KEY("socket", "max_message_bytes", KEY_SIZE, socket_max_message_bytes, 1024, 16777216, RELOAD),
	KEY("socket", "idle_timeout_s", KEY_UNSIGNED, socket_idle_timeout_s, 1, 86400, RELOAD),
	KEY("socket", "max_output_mb_per_uid", KEY_UNSIGNED, socket_max_output_mb_per_uid, 1, 1024, RELOAD),
	KEY("socket", "max_output_mb_total", KEY_UNSIGNED, socket_max_output_mb_total, 1, 65536, RELOAD),
	KEY("socket", "max_input_mb_per_uid", KEY_UNSIGNED, socket_max_input_mb_per_uid, 1, 1024, RELOAD),
	KEY("socket", "max_input_mb_total", KEY_UNSIGNED, socket_max_input_mb_total, 1, 65536, RELOAD),
	KEY("socket", "cpu_percent_per_uid", KEY_UNSIGNED, socket_cpu_percent_per_uid, 1, 100, RELOAD),
	KEY("socket", "loop_writes", KEY_LOOP_WRITES, socket_loop_writes, 0, 0, RELOAD),

	KEY("queue", "precedence_group", KEY_GROUP_NAME, queue_precedence_group, 0, 0, RELOAD),

	KEY("outbox", "state_dir", KEY_PATH, outbox_state_dir, 0, 0, START),
	KEY("outbox", "max_requests", KEY_UNSIGNED, outbox_max_requests, 1, 10000000, RELOAD),
	KEY("outbox", "max_per_uid", KEY_UNSIGNED, outbox_max_per_uid, 1, 10000000, RELOAD),
	KEY("outbox", "min_free_mb", KEY_UNSIGNED, outbox_min_free_mb, 0, 1048576, RELOAD),
	KEY("outbox", "max_lifetime_s", KEY_UNSIGNED, outbox_max_lifetime_s, 60, 31536000, RELOAD),
	KEY("outbox", "retention_days", KEY_UNSIGNED, outbox_retention_days, 0, 3650, RELOAD),

	KEY("metrics", "textfile", KEY_PATH, metrics_textfile, 0, 0, RELOAD),
	KEY("metrics", "interval_s", KEY_UNSIGNED, metrics_interval_s, 1, 86400, RELOAD),

	KEY("log", "level", KEY_LOG_LEVEL, log_level, 0, 0, RELOAD),

	KEY("webhook", "listen", KEY_LISTEN, webhook_listen, 0, 0, START),
	KEY("webhook", "public_url", KEY_URL, webhook_public_url, 0, 0, RELOAD),
	KEY("webhook", "max_connections", KEY_UNSIGNED, webhook_max_connections, 1, 4096, START),
	KEY("webhook", "timeout_s", KEY_UNSIGNED, webhook_timeout_s, 1, 300, START),
	KEY("webhook", "sweep_interval_s", KEY_UNSIGNED, webhook_sweep_interval_s, 1, 86400, RELOAD),
};

_Static_assert(sizeof(config_keys) / sizeof(config_keys[0]) == CONFIG_KEYS_N, "CONFIG_KEYS_N counts the table");

static size_t field_size(KeyKind kind) {
	switch (kind) {
	case KEY_UNSIGNED:
		return sizeof(unsigned);
	case KEY_SIZE:
		return sizeof(size_t);
	case KEY_MODE:
		return sizeof(mode_t);
	case KEY_LOOP_WRITES:
		return sizeof(LoopWrites);
	case KEY_LOG_LEVEL:
		return sizeof(int);
	default:
		return sizeof(char *);
	}
}

bool config_key_equal(const KeyDef *k, const Config *a, const Config *b) {
	const char *fa = (const char *) a + k->offset, *fb = (const char *) b + k->offset;

	switch (k->kind) {
	case KEY_UNSIGNED:
	case KEY_SIZE:
	case KEY_MODE:
	case KEY_LOOP_WRITES:
	case KEY_LOG_LEVEL:
		return memcmp(fa, fb, field_size(k->kind)) == 0;
	default:
		return streq_ptr(*(char *const *) (const void *) fa, *(char *const *) (const void *) fb);
	}
}

size_t config_reload_keep(Config *loaded, Config *running, const char *ret_changed[static CONFIG_KEYS_N]) {
	size_t n = 0;

	for (size_t i = 0; i < CONFIG_KEYS_N; i++) {
		const KeyDef *k = &config_keys[i];
		char *fa = (char *) loaded + k->offset, *fb = (char *) running + k->offset;
		char tmp[sizeof(size_t) + sizeof(char *)];
		size_t size = field_size(k->kind);

		if (k->reload || config_key_equal(k, loaded, running))
			continue;
		ret_changed[n++] = k->key;
		memcpy(tmp, fa, size);
		memcpy(fa, fb, size);
		memcpy(fb, tmp, size);
	}
	return n;
}
