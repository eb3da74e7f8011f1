/* config.h — hitld's configuration: the libconfig file /etc/hitld/hitld.conf.
 * Owns the defaults, the strict reading of the file (one file, no @include,
 * at most 1 MiB; unknown groups and keys, wrong types and out-of-range values
 * are errors that name file, line and key) and the dump of the effective
 * configuration. Called by main at startup, on SIGHUP and for --check-config. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define CONFIG_FILE_DEFAULT "/etc/hitld/hitld.conf"
#define CONFIG_FILE_SIZE_MAX (1024U * 1024U)
#define CONFIG_SOCKET_PATH_MAX 107 /* bytes, without the NUL: sizeof(sun_path) - 1 */

/* Who may change loops through the socket (loop.* write methods). */
typedef enum LoopWrites {
	LOOP_WRITES_ADMIN,
	LOOP_WRITES_ALL,
	_LOOP_WRITES_MAX,
	_LOOP_WRITES_INVALID = -EINVAL,
} LoopWrites;

typedef struct Config {
	char *path;                        /* file read, NULL if none was read */
	/* api */
	char *api_base_url;                /* "https://api.hitl.sh/v1" */
	char *api_key_file;                /* NULL (no default) */
	char *api_next_key_file;           /* NULL: the standby key's file (after the credential hitl-api-key.next) */
	unsigned api_rotate_after_days;    /* 90, 0..3650 (0: never): a key older than this is noticed in the journal */
	unsigned api_timeout_s;            /* 30, 1..300 */
	unsigned api_foreign_threshold;    /* 3, 1..1000000: foreign calls in a window before the journal warns */
	char *api_ca_file;                 /* NULL */
	unsigned api_loop_cache_ttl_s;     /* 300, 0..86400 */
	unsigned api_min_timeout_margin_s; /* 30, 0..3600: a submit must leave HITL.sh's 60 s plus this */
	/* budget */
	unsigned budget_limit_per_hour;    /* 100, 1..100000: assumed until the server's headers say */
	unsigned budget_poll_reserve;      /* 10, 0..limit/2 (an unset reserve is clamped to limit/2) */
	unsigned budget_min_poll_interval_s; /* 30, 1..3600 */
	unsigned budget_window_s;          /* 3600, 1..86400: window assumed before the server speaks */
	unsigned budget_interactive_per_uid; /* limit/20 (5), 0..interactive_total: one non-admin uid's loop.* calls per window */
	unsigned budget_interactive_total; /* limit/5 (20), 0..limit - poll_reserve: all non-admins' loop.* calls per window */
	unsigned budget_warn_drain_hours;  /* 24, 0..8760: warn when the backlog takes longer to create; 0 = never */
	/* socket */
	char *socket_path;                 /* "/run/hitld.sock", absolute, <= 107 bytes */
	mode_t socket_mode;                /* 0660, <= 0777; octal string "0660" or an int in the file */
	char *socket_group;                /* "hitl"; "" = leave as is */
	char *socket_admin_group;          /* "" = none */
	unsigned socket_max_connections_per_uid; /* 32, 1..1024 */
	unsigned socket_max_connections;   /* 1024, 1..65536 */
	size_t socket_max_message_bytes;   /* 1048576, 1024..16777216 */
	unsigned socket_idle_timeout_s;    /* 300, 1..86400 */
	unsigned socket_max_output_mb_per_uid; /* 8, 1..1024: buffered output of one uid's connections */
	unsigned socket_max_output_mb_total;   /* 64, 1..65536: of every connection */
	unsigned socket_max_input_mb_per_uid;  /* 8, 1..1024: unhandled input of one uid's
	                                        * connections (raised to 2 x (max_message + 64 KiB)) */
	unsigned socket_max_input_mb_total;    /* 64, 1..65536: of every connection */
	unsigned socket_cpu_percent_per_uid;   /* 25, 1..100 (100: no limit); admins exempt */
	LoopWrites socket_loop_writes;     /* "admin" | "all" */
	/* queue */
	char *queue_precedence_group;      /* "" = nobody: whose requests are created before everyone else's */
	/* outbox */
	char *outbox_state_dir;            /* "/var/lib/hitld" */
	unsigned outbox_max_requests;      /* 100000, 1..10000000 (live requests, all uids) */
	unsigned outbox_max_per_uid;       /* 1000, 1..10000000 */
	unsigned outbox_min_free_mb;       /* 16, 0..1048576 */
	unsigned outbox_max_lifetime_s;    /* 604800 (7 days), 60..31536000 */
	unsigned outbox_retention_days;    /* 30, 0..3650 */
	/* metrics */
	char *metrics_textfile;            /* NULL: none; the node_exporter textfile (absolute, *.prom) */
	unsigned metrics_interval_s;       /* 60, 1..86400: how often the textfile is rewritten */
	/* webhook: HITL.sh's callbacks (daemon/inbox.h); off unless configured */
	char *webhook_listen;              /* NULL; "127.0.0.1:8089", "[::1]:8089" (numeric host and port) */
	char *webhook_public_url;          /* NULL; the URL HITL.sh posts to (a reverse proxy forwards it) */
	unsigned webhook_max_connections;  /* 64, 1..4096 */
	unsigned webhook_timeout_s;        /* 10, 1..300: an idle or slow connection is closed */
	unsigned webhook_sweep_interval_s; /* 1800, 1..86400: one list call per this while callbacks arrive */
	/* log */
	int log_level;                     /* LOG_INFO; "emerg".."debug" in the file */
} Config;

/* A Config holding every default. Returns 0 or -ENOMEM. */
int config_new_default(Config **ret);
/* Frees c (NULL is fine) and returns NULL. */
Config *config_free(Config *c);

/* Loads path over the defaults. must_exist=false: a missing file (ENOENT)
 * gives the defaults with path NULL. On error returns a negative errno
 * (-ENOENT, -EACCES, … from opening; -EFBIG for a file over 1 MiB; -EINVAL
 * for anything wrong inside the file; -ENOMEM) and sets *ret_error (if
 * ret_error is not NULL) to a malloc'd one-line message
 * "FILE:LINE: KEY: reason" ("FILE:LINE: reason" for syntax errors, "FILE:
 * reason" for errors about the file as a whole). *ret_error may be NULL after
 * -ENOMEM. *ret is written only on success. */
int config_load(const char *path, bool must_exist, Config **ret, char **ret_error);

/* Writes the effective configuration in libconfig syntax to f (for
 * hitld --check-config --dump). Reading the output back gives the same
 * configuration; unset optional paths are written as comments. */
void config_dump(const Config *c, FILE *f);

const char *config_loop_writes_to_string(LoopWrites w);
LoopWrites config_loop_writes_from_string(const char *s);
/* "emerg".."debug" for LOG_EMERG..LOG_DEBUG, NULL for anything else. */
const char *config_log_level_to_string(int level);
