/* keylife.h — what hitld remembers of each API key it has used, by HITL.sh's
 * api_key_id (GET /v1/test; never the key itself): when hitld first used it,
 * and when hitld switched away from it (retired: a key left on purpose by
 * `hitlctl key rotate`, or refused, is not taken back by a restart that finds
 * it in the old credential while a standby is there). Kept in
 * STATE_DIR/keys.json, bounded to KEYLIFE_MAX keys (the one first used
 * longest ago is forgotten first). Also the pure rule of the age notice
 * (api.rotate_after_days): due once the key is that old, at most once a day;
 * the clock is the caller's (tests/unit/test_keylife.c). */
#pragma once

#include <stdbool.h>
#include <json-c/json.h>

#include "timeutil.h"

#define KEYLIFE_MAX 32U
#define KEYLIFE_ID_MAX 64U
#define KEYLIFE_FILE "keys.json"
/* The age notice repeats at most this often while the key stays in use. */
#define KEYLIFE_NOTICE_INTERVAL (24 * USEC_PER_HOUR)

typedef struct KeyLifeEntry {
	char id[KEYLIFE_ID_MAX];
	usec_t first_used;
	usec_t retired_at;      /* 0: not retired */
} KeyLifeEntry;

typedef struct KeyLife {
	KeyLifeEntry e[KEYLIFE_MAX];
	size_t n;
} KeyLife;

/* Printable ASCII without spaces, 1..KEYLIFE_ID_MAX-1 bytes. */
bool keylife_id_is_valid(const char *id);

const KeyLifeEntry *keylife_get(const KeyLife *kl, const char *id);
/* id is in use at now: 1 if this is its first use (recorded), 0 if it was
 * known (a retired key in use again is no longer retired: 0 too); -EINVAL for
 * a bad id. A full table forgets the key first used longest ago. */
int keylife_note_used(KeyLife *kl, const char *id, usec_t now);
/* hitld switched away from id at now; -ENOENT when id is unknown (it is
 * recorded then, first used now). */
int keylife_retire(KeyLife *kl, const char *id, usec_t now);
bool keylife_is_retired(const KeyLife *kl, const char *id);

/* Whole days since id was first used (0 when unknown or in the future). */
unsigned keylife_age_days(const KeyLife *kl, const char *id, usec_t now);
/* Is the age notice due now? rotate_after_days 0: never; last_notice: when
 * it was given last in this process (0: not yet). */
bool keylife_notice_due(const KeyLife *kl, const char *id, unsigned rotate_after_days, usec_t last_notice, usec_t now);

int keylife_to_json(const KeyLife *kl, json_object **ret);
/* -EBADMSG on anything malformed (kl untouched). */
int keylife_from_json(KeyLife *kl, json_object *j);

/* STATE_DIR/keys.json through store.h. load: -ENOENT when there is none
 * (kl empty), -EBADMSG when malformed (kl empty). */
int keylife_load(int dirfd, KeyLife *kl);
int keylife_save(int dirfd, const KeyLife *kl);
