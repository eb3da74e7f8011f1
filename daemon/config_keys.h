/* config_keys.h — the keys of hitld.conf, one table: each key's group and
 * name, its kind and range, its field of Config, and whether a reload
 * applies it (KeyDef.reload). config.c reads and dumps the file by it; the
 * reload (manager.c) names by it the changed keys that wait for the next
 * start; tests/unit/test_config.c checks hitld.conf(5) against it.
 * A key marked reload is one that every user reads from the Manager's
 * current Config when it acts, or that manager.c's apply_config() pushes to
 * its user: marking one so promises that. Pure: no I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define CONFIG_KEYS_N 45

typedef enum KeyKind {
	KEY_UNSIGNED,    /* unsigned, min..max */
	KEY_SIZE,        /* size_t, min..max */
	KEY_MODE,        /* mode_t: octal string or integer, 0..0777 */
	KEY_URL,         /* char *, http:// or https:// */
	KEY_PATH,        /* char *, absolute */
	KEY_SOCKET_PATH, /* char *, absolute, fits sun_path */
	KEY_GROUP_NAME,  /* char *, a group name or "" */
	KEY_LOOP_WRITES, /* LoopWrites */
	KEY_LOG_LEVEL,   /* int, LOG_EMERG..LOG_DEBUG */
	KEY_LISTEN,      /* char *, numeric "host:port" (webhook_parse_listen) */
} KeyKind;

typedef struct KeyDef {
	const char *group;
	const char *name;
	const char *key;    /* "group.name" */
	KeyKind kind;
	size_t offset;
	long long min, max;
	bool reload;        /* a reload applies it; else it takes effect at the next start */
} KeyDef;

/* In the order of the file and of the dump. */
extern const KeyDef config_keys[CONFIG_KEYS_N];

/* Does the key have the same value in a and b? */
bool config_key_equal(const KeyDef *k, const Config *a, const Config *b);

/* For each key a reload does not apply whose value differs between the
 * configuration just read (loaded) and the one in effect (running): names it
 * in ret_changed ("group.name", static strings, in the table's order) and
 * swaps the two values, so that loaded holds what stays in effect until the
 * next start and running (freed next) the value that waits for it. Returns
 * how many keys it named. */
size_t config_reload_keep(Config *loaded, Config *running, const char *ret_changed[static CONFIG_KEYS_N]);
