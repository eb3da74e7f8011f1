/* outbox_internal.h — the outbox's insides, shared by its three files and by
 * nobody else: outbox_index.c (the in-memory index: hash tables by id and by
 * (uid, client_ref), the seq-ordered slots, per-uid and per-state counts, the
 * params LRU), outbox_load.c (opening: reading the log, the legacy
 * requests/ directory and its migration, quarantine) and outbox.c (writing
 * records, compaction, the queries). One module, outbox (docs/ARCHITECTURE.md
 * layer 4); its promises are outbox.h's. Internal functions carry ob_.
 *
 * Index: every record has a small private Entry. Entries hang in two chained
 * hash tables (by id; by (uid, client_ref)) and in a seq-ordered array of
 * slots. New records always get the highest seq, so insertion appends;
 * removal leaves a dead slot that a later compaction squeezes out, which keeps
 * the array sorted and lets outbox_seek_le() binary-search it. The Entry also
 * remembers the state last written, because callers change r->state before
 * outbox_save(): the per-state and per-uid counts move only on a save that
 * succeeded. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "outbox.h"
#include "seglog.h"

#define LOG_DIR "outbox"
#define REQUESTS_DIR "requests"
#define QUARANTINE_DIR "quarantine"
#define RECORD_SUFFIX ".json"
#define TMP_SUFFIX ".tmp"
#define JSON_DEPTH_MAX 64
#define QUARANTINE_TRIES 1000
#define REASON_MAX 128
#define TABLE_MIN 64
#define UID_TABLE_MIN 16
#define COMPACT_MIN 64
#define PARAMS_CACHED_DEFAULT 1024
#define PARSE_THREAD_MIN 4096

typedef struct Entry Entry;
/* One per record: ordered without holes, 88 bytes, so its malloc chunk is 96
 * bytes and not 112 (1.6 MB at 100,000 records; test_outbox_memory.c). */
struct Entry {
	Record *record;
	Entry *id_next;
	Entry *cref_next;
	size_t slot;           /* index in Outbox.slots */
	uid_t uid;             /* owner_uid at insert */
	RequestState state;    /* state as last written */
	SegLoc loc;            /* the record's current entry in the log */
	uint32_t size;
	bool cref_indexed;     /* in the (uid, client_ref) table */
	bool loaded;           /* record->params in memory, on the LRU list */
	Entry *lru_prev, *lru_next;
	Entry *uid_prev, *uid_next; /* the uid's records, in seq order */
};

typedef struct Slot {
	uint64_t seq;
	Entry *entry; /* NULL: removed, waiting for compaction */
} Slot;

typedef struct UidCount {
	uid_t uid;
	bool used;
	size_t live;
	size_t queued[_PRIORITY_MAX];
	size_t states[_REQUEST_STATE_MAX]; /* as last written */
	Entry *head, *tail;                 /* the uid's records, in seq order */
	/* No record of the uid before this one is queued (NULL: start at head),
	 * so finding the oldest queued one is amortised O(1). */
	Entry *queued_hint;
} UidCount;

struct Outbox {
	int state_fd;
	int requests_fd; /* legacy one-file-per-record directory, only while migrating */
	int quarantine_fd;
	SegLog *log;
	json_tokener *tok;

	Slot *slots;
	size_t n_slots;
	size_t n_slots_allocated;
	size_t n_dead;

	Entry **by_id;
	size_t n_by_id_buckets;
	Entry **by_cref;
	size_t n_by_cref_buckets;
	size_t n_cref;

	/* Open addressing; entries are never removed (uids are few). */
	UidCount *uids;
	size_t n_uid_buckets;
	size_t n_uids;

	size_t n_records;
	size_t state_counts[_REQUEST_STATE_MAX];
	size_t queued_by_priority[_PRIORITY_MAX];
	/* No live slot below this one holds a queued record (see outbox_oldest_queued()). */
	size_t queued_hint_slot;
	uint64_t next_seq;
	uint64_t min_free;
	unsigned quarantined;
	/* Records with log_damaged_after are not yet handled by the caller:
	 * the damaged segment (the evidence) stays until they are. */
	bool hold_damaged;

	/* Records keep their params (the request as submitted, most of their
	 * size) in memory only while recently used; the rest is read back from
	 * the record's file on demand. */
	Entry *lru_head, *lru_tail;
	size_t n_loaded;
	size_t max_loaded;
};

/* outbox_index.c: the index, the counts, the params LRU. */
Entry *ob_find_entry(const Outbox *o, const char *id);
Entry *ob_find_cref(const Outbox *o, uid_t uid, const char *client_ref);
Entry *ob_entry_of(const Outbox *o, const Record *r);
UidCount *ob_find_uid(const Outbox *o, uid_t uid);
int ob_resize_by_id(Outbox *o, size_t n);
size_t ob_grown(size_t n, size_t min);
int ob_reserve(Outbox *o, const Record *r);
bool ob_state_is_valid(RequestState s);
void ob_lru_push(Outbox *o, Entry *e);
bool ob_priority_is_valid(Priority p);
void ob_index_entry(Outbox *o, Entry *e, bool with_cref);
void ob_unindex_entry(Outbox *o, Entry *e);
void ob_account_state(Outbox *o, Entry *e, RequestState s);

/* outbox.c: the record files and the log. */
bool ob_ends_with(const char *s, const char *suffix);
int ob_parse_json_with(json_tokener *tok, const char *text, size_t len, json_object **ret);
int ob_new_tokener(json_tokener **ret);
int ob_append_record(Outbox *o, const Record *r, bool check, SegLoc *ret_loc, uint32_t *ret_size);
void ob_compact_maybe(Outbox *o);

/* outbox_load.c: opening. */
int ob_grow_array(void **array, size_t *allocated, size_t need, size_t size);
void ob_copy_id(const SegEntry *e, char id[static RECORD_ID_MAX]);
