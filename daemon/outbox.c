/* outbox.c — see outbox.h.
 *
 * Index: every record has a small private Entry. Entries hang in two chained
 * hash tables (by id; by (uid, client_ref)) and in a seq-ordered array of
 * slots. New records always get the highest seq, so insertion appends;
 * removal leaves a dead slot that a later compaction squeezes out, which keeps
 * the array sorted and lets outbox_seek_le() binary-search it. The Entry also
 * remembers the state last written, because callers change r->state before
 * outbox_save(): the per-state and per-uid counts move only on a save that
 * succeeded. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "cleanup.h"
#include "log.h"
#include "msgid.h"
#include "outbox.h"
#include "seglog.h"
#include "store.h"

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
struct Entry {
	Record *record;
	Entry *id_next;
	Entry *cref_next;
	size_t slot;           /* index in Outbox.slots */
	uid_t uid;             /* owner_uid at insert */
	RequestState state;    /* state as last written */
	bool cref_indexed;     /* in the (uid, client_ref) table */
	bool loaded;           /* record->params in memory, on the LRU list */
	SegLoc loc;            /* the record's current entry in the log */
	uint32_t size;
	Entry *lru_prev, *lru_next;
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

/* ---- hashing ------------------------------------------------------------------- */

static uint64_t hash_bytes(uint64_t h, const void *data, size_t len) {
	const unsigned char *p = data;

	/* FNV-1a. */
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

static uint64_t hash_finish(uint64_t h) {
	/* splitmix64 finaliser: spreads FNV's weak low bits over the mask. */
	h ^= h >> 30;
	h *= UINT64_C(0xbf58476d1ce4e5b9);
	h ^= h >> 27;
	h *= UINT64_C(0x94d049bb133111eb);
	h ^= h >> 31;
	return h;
}

#define HASH_SEED UINT64_C(0xcbf29ce484222325)

static uint64_t hash_id(const char *id) {
	return hash_finish(hash_bytes(HASH_SEED, id, strlen(id)));
}

static uint64_t hash_cref(uid_t uid, const char *client_ref) {
	uint64_t h = hash_bytes(HASH_SEED, &uid, sizeof uid);

	return hash_finish(hash_bytes(h, client_ref, strlen(client_ref)));
}

static uint64_t hash_uid(uid_t uid) {
	return hash_finish((uint64_t) uid + 1);
}

/* ---- index --------------------------------------------------------------------- */

static Entry *find_entry(const Outbox *o, const char *id) {
	if (!id || o->n_by_id_buckets == 0)
		return NULL;
	for (Entry *e = o->by_id[hash_id(id) & (o->n_by_id_buckets - 1)]; e; e = e->id_next)
		if (streq(e->record->id, id))
			return e;
	return NULL;
}

static Entry *find_cref(const Outbox *o, uid_t uid, const char *client_ref) {
	if (!client_ref || o->n_by_cref_buckets == 0)
		return NULL;
	for (Entry *e = o->by_cref[hash_cref(uid, client_ref) & (o->n_by_cref_buckets - 1)]; e;
	     e = e->cref_next)
		if (e->uid == uid && streq(e->record->client_ref, client_ref))
			return e;
	return NULL;
}

/* The entry of r, if r (this very object) is in o. */
static Entry *entry_of(const Outbox *o, const Record *r) {
	Entry *e;

	if (!o || !r)
		return NULL;
	/* Iteration asks for every record in turn: the hint saves hashing its id. */
	if (r->outbox_slot < o->n_slots && o->slots[r->outbox_slot].entry &&
	    o->slots[r->outbox_slot].entry->record == r)
		return o->slots[r->outbox_slot].entry;
	e = find_entry(o, r->id);
	return e && e->record == r ? e : NULL;
}

static UidCount *find_uid(const Outbox *o, uid_t uid) {
	size_t mask = o->n_uid_buckets - 1;

	if (o->n_uid_buckets == 0)
		return NULL;
	for (size_t i = hash_uid(uid) & mask;; i = (i + 1) & mask) {
		if (!o->uids[i].used)
			return NULL;
		if (o->uids[i].uid == uid)
			return &o->uids[i];
	}
}

/* Needs a free bucket: reserve() makes sure of it. */
static UidCount *add_uid(Outbox *o, uid_t uid) {
	size_t mask = o->n_uid_buckets - 1;
	size_t i = hash_uid(uid) & mask;

	while (o->uids[i].used)
		i = (i + 1) & mask;
	o->uids[i] = (UidCount) { .uid = uid, .used = true };
	o->n_uids++;
	return &o->uids[i];
}

static int resize_uids(Outbox *o, size_t n) {
	UidCount *old = o->uids;
	size_t n_old = o->n_uid_buckets;

	o->uids = calloc(n, sizeof *o->uids);
	if (!o->uids) {
		o->uids = old;
		return -ENOMEM;
	}
	o->n_uid_buckets = n;
	o->n_uids = 0;
	for (size_t i = 0; i < n_old; i++)
		if (old[i].used)
			*add_uid(o, old[i].uid) = old[i];
	free(old);
	return 0;
}

static int resize_by_id(Outbox *o, size_t n) {
	Entry **buckets = calloc(n, sizeof *buckets);

	if (!buckets)
		return -ENOMEM;
	for (size_t i = 0; i < o->n_by_id_buckets; i++)
		for (Entry *e = o->by_id[i], *next; e; e = next) {
			size_t h = hash_id(e->record->id) & (n - 1);

			next = e->id_next;
			e->id_next = buckets[h];
			buckets[h] = e;
		}
	free(o->by_id);
	o->by_id = buckets;
	o->n_by_id_buckets = n;
	return 0;
}

static int resize_by_cref(Outbox *o, size_t n) {
	Entry **buckets = calloc(n, sizeof *buckets);

	if (!buckets)
		return -ENOMEM;
	for (size_t i = 0; i < o->n_by_cref_buckets; i++)
		for (Entry *e = o->by_cref[i], *next; e; e = next) {
			size_t h = hash_cref(e->uid, e->record->client_ref) & (n - 1);

			next = e->cref_next;
			e->cref_next = buckets[h];
			buckets[h] = e;
		}
	free(o->by_cref);
	o->by_cref = buckets;
	o->n_by_cref_buckets = n;
	return 0;
}

static void compact_slots(Outbox *o) {
	size_t j = 0;

	for (size_t i = 0; i < o->n_slots; i++)
		if (o->slots[i].entry) {
			o->slots[j] = o->slots[i];
			o->slots[j].entry->slot = j;
			o->slots[j].entry->record->outbox_slot = j;
			j++;
		}
	o->n_slots = j;
	o->n_dead = 0;
}

static size_t grown(size_t n, size_t min) {
	return n < min ? min : n * 2;
}

/* Makes room for one more record in every structure, so that indexing it
 * after its file is durable cannot fail. */
static int reserve(Outbox *o, const Record *r) {
	int k;

	if (o->n_slots == o->n_slots_allocated) {
		if (o->n_dead > 0)
			compact_slots(o);
		else {
			size_t n = grown(o->n_slots_allocated, TABLE_MIN);
			Slot *s = reallocarray(o->slots, n, sizeof *s);

			if (!s)
				return -ENOMEM;
			o->slots = s;
			o->n_slots_allocated = n;
		}
	}
	if (o->n_records + 1 > o->n_by_id_buckets) {
		k = resize_by_id(o, grown(o->n_by_id_buckets, TABLE_MIN));
		if (k < 0)
			return k;
	}
	if (r->client_ref && o->n_cref + 1 > o->n_by_cref_buckets) {
		k = resize_by_cref(o, grown(o->n_by_cref_buckets, TABLE_MIN));
		if (k < 0)
			return k;
	}
	if (!find_uid(o, r->owner_uid) && (o->n_uids + 1) * 2 > o->n_uid_buckets) {
		k = resize_uids(o, grown(o->n_uid_buckets, UID_TABLE_MIN));
		if (k < 0)
			return k;
	}
	return 0;
}

static bool state_is_valid(RequestState s) {
	return s >= 0 && s < _REQUEST_STATE_MAX;
}

/* ---- params cache ----------------------------------------------------------------- */

static void lru_unlink(Outbox *o, Entry *e) {
	if (!e->loaded)
		return;
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		o->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		o->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
	e->loaded = false;
	o->n_loaded--;
}

static void lru_push(Outbox *o, Entry *e) {
	lru_unlink(o, e);
	e->lru_next = o->lru_head;
	if (o->lru_head)
		o->lru_head->lru_prev = e;
	o->lru_head = e;
	if (!o->lru_tail)
		o->lru_tail = e;
	e->loaded = true;
	o->n_loaded++;

	while (o->n_loaded > o->max_loaded && o->lru_tail && o->lru_tail != e) {
		Entry *old = o->lru_tail;

		lru_unlink(o, old);
		json_object_put(old->record->params);
		old->record->params = NULL;
	}
}

static bool priority_is_valid(Priority p) {
	return p >= 0 && p < _PRIORITY_MAX;
}

/* The queued counts follow the state last written; the priority never changes. */
static void account_queued(Outbox *o, UidCount *u, const Entry *e, RequestState s, int delta) {
	Priority p = e->record->priority;

	if (s != REQUEST_QUEUED || !priority_is_valid(p))
		return;
	o->queued_by_priority[p] += (size_t) delta;
	if (u)
		u->queued[p] += (size_t) delta;
}

/* Cannot fail once reserve() succeeded for this record. */
static void index_entry(Outbox *o, Entry *e, bool with_cref) {
	Record *r = e->record;
	size_t h = hash_id(r->id) & (o->n_by_id_buckets - 1);
	UidCount *u;

	e->id_next = o->by_id[h];
	o->by_id[h] = e;

	e->uid = r->owner_uid;
	e->cref_indexed = with_cref && r->client_ref;
	if (e->cref_indexed) {
		h = hash_cref(e->uid, r->client_ref) & (o->n_by_cref_buckets - 1);
		e->cref_next = o->by_cref[h];
		o->by_cref[h] = e;
		o->n_cref++;
	}

	e->slot = o->n_slots;
	r->outbox_slot = e->slot;
	o->slots[o->n_slots++] = (Slot) { .seq = r->seq, .entry = e };

	e->state = r->state;
	if (state_is_valid(e->state))
		o->state_counts[e->state]++;
	u = find_uid(o, e->uid);
	if (!u)
		u = add_uid(o, e->uid);
	if (!request_state_is_terminal(e->state))
		u->live++;
	account_queued(o, u, e, e->state, +1);
	o->n_records++;
}

static void unindex_entry(Outbox *o, Entry *e) {
	Entry **p;
	UidCount *u;

	lru_unlink(o, e);
	for (p = &o->by_id[hash_id(e->record->id) & (o->n_by_id_buckets - 1)]; *p != e;
	     p = &(*p)->id_next)
		;
	*p = e->id_next;

	if (e->cref_indexed) {
		for (p = &o->by_cref[hash_cref(e->uid, e->record->client_ref) &
		                     (o->n_by_cref_buckets - 1)];
		     *p != e; p = &(*p)->cref_next)
			;
		*p = e->cref_next;
		o->n_cref--;
	}

	o->slots[e->slot].entry = NULL;
	o->n_dead++;
	/* Dead slots at the end can go at once. */
	while (o->n_slots > 0 && !o->slots[o->n_slots - 1].entry) {
		o->n_slots--;
		o->n_dead--;
	}
	if (o->n_dead >= COMPACT_MIN && o->n_dead * 2 > o->n_slots)
		compact_slots(o);

	if (state_is_valid(e->state))
		o->state_counts[e->state]--;
	u = find_uid(o, e->uid);
	if (u && !request_state_is_terminal(e->state))
		u->live--;
	account_queued(o, u, e, e->state, -1);
	o->n_records--;
}

/* Moves the counts of e from its last written state to s. */
static void account_state(Outbox *o, Entry *e, RequestState s) {
	bool was_live = !request_state_is_terminal(e->state);
	bool is_live = !request_state_is_terminal(s);

	if (e->state == s)
		return;
	account_queued(o, find_uid(o, e->uid), e, e->state, -1);
	account_queued(o, find_uid(o, e->uid), e, s, +1);
	if (state_is_valid(e->state))
		o->state_counts[e->state]--;
	if (state_is_valid(s))
		o->state_counts[s]++;
	if (was_live != is_live) {
		UidCount *u = find_uid(o, e->uid);

		if (u) {
			if (is_live)
				u->live++;
			else
				u->live--;
		}
	}
	e->state = s;
}

/* ---- files ---------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix) {
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && streq(s + n - m, suffix);
}

/* Strict JSON: RFC 8259 syntax, valid UTF-8, no NUL bytes, one value with
 * nothing but whitespace after it. tok is reused: a new tokener per record
 * showed in start-up and submit profiles. */
static int parse_json_with(json_tokener *tok, const char *text, size_t len, json_object **ret) {
	_cleanup_(json_object_putp) json_object *j = NULL;

	if (len > INT_MAX || memchr(text, '\0', len))
		return -EBADMSG;
	json_tokener_reset(tok);
	j = json_tokener_parse_ex(tok, text, (int) len);
	if (!j || json_tokener_get_error(tok) != json_tokener_success)
		return -EBADMSG;
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
		if (!strchr(" \t\r\n", text[i]))
			return -EBADMSG;
	*ret = TAKE_PTR(j);
	return 0;
}

static int new_tokener(json_tokener **ret) {
	json_tokener *tok = json_tokener_new_ex(JSON_DEPTH_MAX);

	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
	                                    JSON_TOKENER_VALIDATE_UTF8);
	*ret = tok;
	return 0;
}

/* A record as the log stores it: its changing fields (meta) and the request
 * as submitted (params), each JSON text. *meta owns meta_text; params_text
 * lives in r->params. */
typedef struct Serialized {
	json_object *meta;
	const char *meta_text;
	size_t meta_len;
	const char *params_text;
	size_t params_len;
} Serialized;

static void serialized_done(Serialized *x) {
	json_object_put(x->meta);
	*x = (Serialized) {};
}

/* Serialises r. With check, reads the meta text back the way outbox_open()
 * will: a record acknowledged now and unreadable at the next start would be a
 * lost request. Saves check, since meta then carries what HITL.sh sent;
 * inserts need not: a new record holds only what validate_submit() accepted,
 * and tests/fuzz/fuzz_validate.c proves that every such request reads back.
 * params never change after insert, so their text is not re-checked. */
static int serialize(Outbox *o, const Record *r, bool check, Serialized *ret) {
	_cleanup_(json_object_putp) json_object *meta = NULL, *reread = NULL;
	_cleanup_(record_freep) Record *back = NULL;
	const char *text, *ptext;
	size_t len, plen;
	int k;

	if (!r->params)
		return -EINVAL;
	k = record_to_json_meta(r, &meta);
	if (k < 0)
		return k == -ENOMEM ? k : -EINVAL;
	text = json_object_to_json_string_length(
		meta, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	ptext = json_object_to_json_string_length(
		r->params, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &plen);
	if (!text || !ptext)
		return -ENOMEM;
	if (len > OUTBOX_RECORD_MAX || plen > OUTBOX_RECORD_MAX || len + plen > OUTBOX_RECORD_MAX)
		return -EFBIG;

	if (check) {
		k = parse_json_with(o->tok, text, len, &reread);
		if (k == -ENOMEM)
			return k;
		if (k >= 0)
			k = record_from_json_meta(reread, &back);
		if (k == -ENOMEM)
			return k;
		if (k < 0 || !streq(back->id, r->id))
			return -EINVAL;
	}

	*ret = (Serialized) {
		.meta = TAKE_PTR(meta),
		.meta_text = text,
		.meta_len = len,
		.params_text = ptext,
		.params_len = plen,
	};
	return 0;
}

/* Queues r's current content for the next commit. */
static int append_record(Outbox *o, const Record *r, bool check, SegLoc *ret_loc, uint32_t *ret_size) {
	_cleanup_(serialized_done) Serialized x = {};
	int k;

	/* Unchecked text still needs checked fields (outbox.h's -EINVAL). */
	if (!check && record_check(r) < 0)
		return -EINVAL;
	k = serialize(o, r, check, &x);
	if (k < 0)
		return k;
	return seglog_append(o->log, SEG_RECORD, r->id, x.meta_text, x.meta_len, x.params_text,
	                     x.params_len, ret_loc, ret_size);
}

static void compact_maybe(Outbox *o);

int outbox_need_params(Outbox *o, Record *r) {
	_cleanup_(freep) char *buf = NULL;
	_cleanup_(json_object_putp) json_object *params = NULL;
	SegEntry se;
	Entry *e;
	int k;

	if (!o || !r)
		return -EINVAL;
	e = find_entry(o, r->id);
	if (!e || e->record != r)
		return r->params ? 0 : -ENOENT;
	if (r->params) {
		lru_push(o, e);
		return 0;
	}

	/* params never change after insert, so the current entry's copy is
	 * the one submitted. */
	k = seglog_read(o->log, e->loc, e->size, &se, &buf);
	if (k < 0)
		return k;
	k = parse_json_with(o->tok, se.params, se.params_len, &params);
	if (k < 0)
		return k;
	k = record_check_params(r, params);
	if (k < 0)
		return k;
	r->params = TAKE_PTR(params);
	lru_push(o, e);
	return 0;
}

void outbox_set_params_cache(Outbox *o, size_t max_loaded) {
	o->max_loaded = max_loaded > 0 ? max_loaded : 1;
}

static int check_free_space(const Outbox *o) {
	struct statvfs sv;
	uint64_t avail;

	if (o->min_free == 0)
		return 0;
	if (fstatvfs(seglog_dirfd(o->log), &sv) < 0)
		return negative_errno();
	if (sv.f_frsize > 0 && (uint64_t) sv.f_bavail > UINT64_MAX / sv.f_frsize)
		avail = UINT64_MAX;
	else
		avail = (uint64_t) sv.f_bavail * sv.f_frsize;
	return avail < o->min_free ? -ENOSPC : 0;
}

/* ---- open ----------------------------------------------------------------------- */

typedef struct Loaded {
	Record *record;
	SegLoc loc;
	uint32_t size;
} Loaded;

typedef struct BadFile {
	char *name;
	char reason[REASON_MAX];
} BadFile;

typedef struct LoadState {
	Loaded *records;
	size_t n_records;
	size_t n_records_allocated;
	/* Log entries seen by the scan, in log order. */
	SegEntry *refs;
	size_t n_refs;
	size_t n_refs_allocated;
	/* Legacy requests/ directory. */
	BadFile *bad;
	size_t n_bad;
	size_t n_bad_allocated;
	char **tmps;
	size_t n_tmps;
	size_t n_tmps_allocated;
	char **migrated; /* legacy file names now in the log */
	size_t n_migrated;
	size_t n_migrated_allocated;
} LoadState;

static void load_state_done(LoadState *s) {
	for (size_t i = 0; i < s->n_records; i++)
		record_free(s->records[i].record);
	free(s->records);
	free(s->refs);
	for (size_t i = 0; i < s->n_bad; i++)
		free(s->bad[i].name);
	free(s->bad);
	for (size_t i = 0; i < s->n_tmps; i++)
		free(s->tmps[i]);
	free(s->tmps);
	for (size_t i = 0; i < s->n_migrated; i++)
		free(s->migrated[i]);
	free(s->migrated);
}

static int grow_array(void **array, size_t *allocated, size_t need, size_t size) {
	void *p;
	size_t n;

	if (need <= *allocated)
		return 0;
	n = grown(*allocated, 64);
	if (n < need)
		n = need;
	p = reallocarray(*array, n, size);
	if (!p)
		return -ENOMEM;
	*array = p;
	*allocated = n;
	return 0;
}

static int add_name(char ***v, size_t *n, size_t *allocated, const char *name) {
	int k = grow_array((void **) v, allocated, *n + 1, sizeof **v);

	if (k < 0)
		return k;
	(*v)[*n] = strdup(name);
	if (!(*v)[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int add_bad(LoadState *s, const char *name, const char *reason) {
	int k = grow_array((void **) &s->bad, &s->n_bad_allocated, s->n_bad + 1, sizeof *s->bad);

	if (k < 0)
		return k;
	s->bad[s->n_bad].name = strdup(name);
	if (!s->bad[s->n_bad].name)
		return -ENOMEM;
	snprintf(s->bad[s->n_bad].reason, REASON_MAX, "%s", reason);
	s->n_bad++;
	return 0;
}

static int add_loaded(LoadState *s, Record *r, SegLoc loc, uint32_t size) {
	int k = grow_array((void **) &s->records, &s->n_records_allocated, s->n_records + 1,
	                   sizeof *s->records);

	if (k < 0)
		return k;
	s->records[s->n_records++] = (Loaded) { .record = r, .loc = loc, .size = size };
	return 0;
}

/* Keeps a copy of a log entry that checks out but is not a record we can
 * serve: quarantine/<id>@<segment>-<offset>. */
static void quarantine_entry(Outbox *o, const SegEntry *e, const char *id, const char *reason) {
	char name[NAME_MAX + 1], kept[NAME_MAX + 1];
	int k;

	snprintf(name, sizeof name, "%s@%016" PRIx32 "-%" PRIu32, id, seglog_loc_segment(e->loc),
	         (uint32_t) (e->loc & UINT32_MAX));
	k = store_write_file_new(o->quarantine_fd, name, e->raw, e->size, kept, sizeof kept);
	o->quarantined++;
	if (k < 0) {
		/* The bytes must stay somewhere: in their segment, then. */
		seglog_pin(o->log, seglog_loc_segment(e->loc));
		log_internal(LOG_WARNING, k, MID_RECORD_QUARANTINED,
		             LOG_FIELDS({ "HITL_FILE", name }, { "HITL_REASON", reason }),
		             "Ignoring unreadable outbox log entry %s (%s); keeping a copy in %s/ "
		             "failed: %m",
		             name, reason, QUARANTINE_DIR);
	} else
		log_event(LOG_WARNING, MID_RECORD_QUARANTINED,
		          LOG_FIELDS({ "HITL_FILE", name }, { "HITL_REASON", reason }),
		          "Quarantined outbox log entry %s: %s (kept as %s/%s)", name, reason,
		          QUARANTINE_DIR, kept);
}

static int collect_ref(const SegEntry *e, void *userdata) {
	LoadState *s = userdata;
	int k = grow_array((void **) &s->refs, &s->n_refs_allocated, s->n_refs + 1, sizeof *s->refs);

	if (k < 0)
		return k;
	s->refs[s->n_refs++] = *e;
	return 0;
}

static int compare_refs(const void *a, const void *b) {
	const SegEntry *x = a, *y = b;
	size_t n = x->id_len < y->id_len ? x->id_len : y->id_len;
	int c = memcmp(x->id, y->id, n);

	if (c != 0)
		return c;
	if (x->id_len != y->id_len)
		return x->id_len < y->id_len ? -1 : 1;
	return x->loc < y->loc ? -1 : x->loc > y->loc;
}

static void copy_id(const SegEntry *e, char id[static RECORD_ID_MAX]) {
	size_t n = e->id_len < RECORD_ID_MAX - 1 ? e->id_len : RECORD_ID_MAX - 1;

	memcpy(id, e->id, n);
	id[n] = '\0';
}

/* Parses the meta of one current log entry. -EINVAL: the id is not a record
 * id; -EBADMSG: not a valid record of that id. */
static int parse_meta(json_tokener *tok, const SegEntry *e, Record **ret) {
	_cleanup_(json_object_putp) json_object *j = NULL;
	_cleanup_(record_freep) Record *r = NULL;
	char id[RECORD_ID_MAX];
	int k;

	copy_id(e, id);
	if (e->id_len >= RECORD_ID_MAX || !record_id_is_valid(id))
		return -EINVAL;
	k = parse_json_with(tok, e->meta, e->meta_len, &j);
	if (k >= 0)
		k = record_from_json_meta(j, &r);
	if (k == -ENOMEM)
		return k;
	if (k < 0 || !streq(r->id, id))
		return -EBADMSG;
	*ret = TAKE_PTR(r);
	return 0;
}

typedef struct ParseJob {
	const SegEntry **entries;
	size_t lo, hi;
	Record **records;
	int *results;
} ParseJob;

static void *parse_job(void *userdata) {
	ParseJob *job = userdata;
	json_tokener *tok = NULL;
	int k = new_tokener(&tok);

	for (size_t i = job->lo; i < job->hi; i++)
		job->results[i] = k < 0 ? k : parse_meta(tok, job->entries[i], &job->records[i]);
	if (tok)
		json_tokener_free(tok);
	return NULL;
}

/* The log's current entry of every record: the last one of each id (later
 * segments, and later in a segment, are newer). Only those are parsed, and
 * only their meta: a start with 100,000 records must not parse 100,000
 * request texts. Parsing is most of a start's work and each record stands
 * alone, so a second thread takes half of a big outbox; nothing else in
 * hitld runs beside it, and it is joined before anything is logged. */
static int load_log(Outbox *o, LoadState *s) {
	_cleanup_(freep) const SegEntry **cur = NULL;
	_cleanup_(freep) Record **records = NULL;
	_cleanup_(freep) int *results = NULL;
	size_t n = 0;
	int k, first = 0;

	k = seglog_scan(o->log, collect_ref, s);
	if (k < 0)
		return k;
	o->quarantined += (unsigned) k;

	if (s->n_refs > 1)
		qsort(s->refs, s->n_refs, sizeof *s->refs, compare_refs);

	cur = calloc(s->n_refs + 1, sizeof *cur);
	if (!cur)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_refs; i++) {
		const SegEntry *e = &s->refs[i];

		if (i + 1 < s->n_refs && e->id_len == s->refs[i + 1].id_len &&
		    memcmp(e->id, s->refs[i + 1].id, e->id_len) == 0) {
			/* Superseded. */
			if (e->kind == SEG_RECORD)
				seglog_dead(o->log, e->loc, e->size);
			continue;
		}
		if (e->kind == SEG_RECORD)
			cur[n++] = e;
	}

	records = calloc(n + 1, sizeof *records);
	results = calloc(n + 1, sizeof *results);
	if (!records || !results)
		return -ENOMEM;
	{
		ParseJob jobs[2] = {
			{ .entries = cur, .lo = 0, .hi = n, .records = records, .results = results },
			{ .entries = cur, .lo = n, .hi = n, .records = records, .results = results },
		};
		pthread_t thread;
		bool threaded = false;

		if (n >= PARSE_THREAD_MIN) {
			jobs[0].hi = jobs[1].lo = n / 2;
			threaded = pthread_create(&thread, NULL, parse_job, &jobs[1]) == 0;
			if (!threaded)
				jobs[0].hi = n;
		}
		parse_job(&jobs[0]);
		if (threaded)
			(void) pthread_join(thread, NULL);
	}

	for (size_t i = 0; i < n; i++) {
		const SegEntry *e = cur[i];
		char id[RECORD_ID_MAX];

		if (results[i] == -ENOMEM || first < 0) {
			record_free(records[i]);
			if (first == 0)
				first = -ENOMEM;
			continue;
		}
		if (results[i] < 0) {
			copy_id(e, id);
			seglog_dead(o->log, e->loc, e->size);
			quarantine_entry(o, e, results[i] == -EINVAL ? "bad-id" : id,
			                 results[i] == -EINVAL ? "entry with an invalid record id"
			                                       : "not a valid hitld record");
			continue;
		}
		k = add_loaded(s, records[i], e->loc, e->size);
		if (k < 0) {
			record_free(records[i]);
			first = k;
		}
	}
	if (first < 0)
		return first;
	free(s->refs);
	s->refs = NULL;
	s->n_refs = s->n_refs_allocated = 0;
	seglog_scan_done(o->log);
	return 0;
}

static int compare_loaded_id(const void *key, const void *item) {
	return strcmp(key, ((const Loaded *) item)->record->id);
}

/* The records from the log are in id order (load_log() walks them sorted). */
static bool loaded_has(const LoadState *s, size_t n, const char *id) {
	return n > 0 && bsearch(id, s->records, n, sizeof *s->records, compare_loaded_id);
}

/* Reads one legacy requests/ entry (hitld before the log kept a file per
 * record) and queues it for the log. A bad file is noted in s, not an error;
 * only lack of memory fails. */
static int load_legacy_one(Outbox *o, LoadState *s, size_t n_from_log, const char *name) {
	_cleanup_(freep) char *text = NULL;
	_cleanup_(json_object_putp) json_object *j = NULL;
	_cleanup_(record_freep) Record *r = NULL;
	char id[RECORD_ID_MAX] = "";
	char reason[REASON_MAX];
	size_t len, stem;
	SegLoc loc;
	uint32_t size;
	int k;

	if (ends_with(name, TMP_SUFFIX))
		return add_name(&s->tmps, &s->n_tmps, &s->n_tmps_allocated, name);

	stem = strlen(name) - (ends_with(name, RECORD_SUFFIX) ? strlen(RECORD_SUFFIX) : 0);
	if (ends_with(name, RECORD_SUFFIX) && stem < sizeof id) {
		memcpy(id, name, stem);
		id[stem] = '\0';
	}
	if (!record_id_is_valid(id))
		return add_bad(s, name, "unexpected file name");

	k = store_read_file(o->requests_fd, name, OUTBOX_RECORD_MAX, &text, &len);
	if (k == -ENOMEM)
		return k;
	if (k < 0) {
		snprintf(reason, sizeof reason, "cannot read: %s", strerror(-k));
		return add_bad(s, name, reason);
	}

	k = parse_json_with(o->tok, text, len, &j);
	if (k == -ENOMEM)
		return k;
	if (k < 0)
		return add_bad(s, name, len == 0 ? "empty file" : "not valid JSON (torn or corrupt)");

	k = record_from_json(j, &r);
	if (k == -ENOMEM)
		return k;
	if (k < 0)
		return add_bad(s, name, "not a valid hitld record");

	if (!streq(r->id, id))
		return add_bad(s, name, "record id does not match the file name");

	/* Moved already by a migration that stopped before removing the file. */
	if (loaded_has(s, n_from_log, id))
		return add_name(&s->migrated, &s->n_migrated, &s->n_migrated_allocated, name);

	k = append_record(o, r, true, &loc, &size);
	if (k == -ENOMEM)
		return k;
	if (k < 0)
		return add_bad(s, name, "cannot be stored in the log");
	json_object_put(r->params);
	r->params = NULL;
	k = add_loaded(s, r, loc, size);
	if (k < 0)
		return k;
	TAKE_PTR(r);
	return add_name(&s->migrated, &s->n_migrated, &s->n_migrated_allocated, name);
}

static void closedirp(DIR **d) {
	if (*d)
		closedir(*d);
}

static int scan_legacy(Outbox *o, LoadState *s) {
	_cleanup_(closedirp) DIR *d = NULL;
	size_t n_from_log = s->n_records;
	int k;

	k = store_opendir(o->requests_fd, &d);
	if (k < 0)
		return k;

	for (;;) {
		struct dirent *de;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno != 0)
				return negative_errno();
			return 0;
		}
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		k = load_legacy_one(o, s, n_from_log, de->d_name);
		if (k < 0)
			return k;
	}
}

static void quarantine(Outbox *o, const char *name, const char *reason) {
	char target[NAME_MAX + 1];
	int k = -EEXIST;

	/* Never overwrite an earlier quarantined file of the same name. */
	for (unsigned i = 0; i < QUARANTINE_TRIES && k == -EEXIST; i++) {
		int n = i == 0 ? snprintf(target, sizeof target, "%s", name)
		               : snprintf(target, sizeof target, "%s.%u", name, i);

		if (n < 0 || (size_t) n >= sizeof target) {
			k = -ENAMETOOLONG;
			break;
		}
		k = store_move(o->requests_fd, name, o->quarantine_fd, target);
	}

	o->quarantined++;
	if (k < 0) {
		log_internal(LOG_WARNING, k, MID_RECORD_QUARANTINED,
		             LOG_FIELDS({ "HITL_FILE", name }, { "HITL_REASON", reason }),
		             "Ignoring unreadable record file %s/%s (%s); moving it to %s/ failed: %m",
		             REQUESTS_DIR, name, reason, QUARANTINE_DIR);
		return;
	}
	log_event(LOG_WARNING, MID_RECORD_QUARANTINED,
	          LOG_FIELDS({ "HITL_FILE", name }, { "HITL_REASON", reason }),
	          "Quarantined record file %s/%s: %s (kept as %s/%s)", REQUESTS_DIR, name, reason,
	          QUARANTINE_DIR, target);
}

/* A requests/ directory from before the log: its records move into the log
 * (one commit), then its files go. Unreadable files are quarantined as they
 * always were. Until the directory is gone, every start retries. */
static int migrate_legacy(Outbox *o, LoadState *s) {
	size_t n_from_log = s->n_records;
	int k;

	k = openat(o->state_fd, REQUESTS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (k < 0)
		return errno == ENOENT ? 0 : negative_errno();
	o->requests_fd = k;

	k = scan_legacy(o, s);
	if (k < 0) {
		seglog_abort(o->log);
		return k;
	}
	k = seglog_commit(o->log);
	if (k < 0) {
		/* The files stay; the next start tries again. */
		for (size_t i = n_from_log; i < s->n_records; i++)
			record_free(s->records[i].record);
		s->n_records = n_from_log;
		return log_error_errno(k, "Failed to move %s/ into the outbox log: %m", REQUESTS_DIR);
	}
	if (s->n_records > n_from_log)
		log_info("Moved %zu record%s from %s/ into the outbox log.", s->n_records - n_from_log,
		         s->n_records - n_from_log == 1 ? "" : "s", REQUESTS_DIR);

	for (size_t i = 0; i < s->n_tmps; i++)
		(void) store_unlink_nosync(o->requests_fd, s->tmps[i]);
	for (size_t i = 0; i < s->n_bad; i++)
		quarantine(o, s->bad[i].name, s->bad[i].reason);
	for (size_t i = 0; i < s->n_migrated; i++)
		(void) store_unlink_nosync(o->requests_fd, s->migrated[i]);
	(void) store_fsync(o->requests_fd);
	closep(&o->requests_fd);
	o->requests_fd = -EBADF;
	if (unlinkat(o->state_fd, REQUESTS_DIR, AT_REMOVEDIR) < 0)
		log_warning_errno(negative_errno(), "Failed to remove %s/ after moving it into the log: %m",
		                  REQUESTS_DIR);
	else
		(void) store_fsync(o->state_fd);
	return 0;
}

static int compare_loaded(const void *a, const void *b) {
	const Record *x = ((const Loaded *) a)->record, *y = ((const Loaded *) b)->record;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return strcmp(x->id, y->id);
}

static int load(Outbox *o) {
	_cleanup_(load_state_done) LoadState s = {};
	uint64_t max_seq = 0;
	int k;

	k = load_log(o, &s);
	if (k < 0)
		return k;
	k = migrate_legacy(o, &s);
	if (k < 0)
		return k;

	if (s.n_records > 0)
		qsort(s.records, s.n_records, sizeof *s.records, compare_loaded);
	/* Every table at its final size at once, not doubling 100,000 times. */
	if (s.n_records > 0) {
		Slot *slots = reallocarray(o->slots, s.n_records, sizeof *slots);
		size_t n = TABLE_MIN;

		if (!slots)
			return -ENOMEM;
		o->slots = slots;
		o->n_slots_allocated = s.n_records;
		while (n < s.n_records)
			n *= 2;
		k = resize_by_id(o, n);
		if (k < 0)
			return k;
	}
	for (size_t i = 0; i < s.n_records; i++) {
		Record *r = s.records[i].record;
		Entry *e, *clash;

		k = reserve(o, r);
		if (k < 0)
			return k;
		e = calloc(1, sizeof *e);
		if (!e)
			return -ENOMEM;

		clash = find_cref(o, r->owner_uid, r->client_ref);
		if (clash)
			/* Both are acknowledged requests: keep serving both,
			 * the older one answers for the client_ref. */
			log_warning("Record %s repeats client_ref of %s for uid %u; only %s answers "
			            "lookups by client_ref.",
			            r->id, clash->record->id, (unsigned) r->owner_uid,
			            clash->record->id);

		e->record = TAKE_PTR(s.records[i].record);
		e->loc = s.records[i].loc;
		e->size = s.records[i].size;
		/* Damaged bytes after its newest entry may have held a newer one. */
		e->record->log_damaged_after = e->loc < seglog_damage(o->log);
		if (e->record->log_damaged_after && !request_state_is_terminal(e->record->state))
			o->hold_damaged = true;
		index_entry(o, e, !clash);
		if (r->seq > max_seq)
			max_seq = r->seq;
	}
	s.n_records = 0; /* every record is owned by o now */

	o->next_seq = max_seq + 1;
	/* The parse trees came and went: give the memory back. */
	malloc_trim(0);
	/* A damaged segment goes first, while nothing else waits. */
	compact_maybe(o);
	return 0;
}

int outbox_open(const char *state_dir, Outbox **ret) {
	_cleanup_(outbox_freep) Outbox *o = NULL;
	int k;

	if (!state_dir || !ret)
		return -EINVAL;

	o = calloc(1, sizeof *o);
	if (!o)
		return -ENOMEM;
	o->state_fd = o->requests_fd = o->quarantine_fd = -EBADF;
	o->next_seq = 1;
	o->max_loaded = PARAMS_CACHED_DEFAULT;

	k = new_tokener(&o->tok);
	if (k < 0)
		return k;
	k = store_open_dir(AT_FDCWD, state_dir, 0700, &o->state_fd);
	if (k < 0)
		return k;
	k = store_open_dir(o->state_fd, QUARANTINE_DIR, 0700, &o->quarantine_fd);
	if (k < 0)
		return k;
	k = seglog_open(o->state_fd, LOG_DIR, o->quarantine_fd, &o->log);
	if (k < 0)
		return k;

	k = load(o);
	if (k < 0)
		return k;

	*ret = TAKE_PTR(o);
	return 0;
}

Outbox *outbox_free(Outbox *o) {
	if (!o)
		return NULL;
	for (size_t i = 0; i < o->n_slots; i++)
		if (o->slots[i].entry) {
			record_free(o->slots[i].entry->record);
			free(o->slots[i].entry);
		}
	free(o->slots);
	free(o->by_id);
	free(o->by_cref);
	free(o->uids);
	seglog_free(o->log);
	if (o->tok)
		json_tokener_free(o->tok);
	closep(&o->state_fd);
	closep(&o->requests_fd);
	closep(&o->quarantine_fd);
	free(o);
	return NULL;
}

/* ---- compaction ------------------------------------------------------------------ */

typedef struct Move {
	Entry *entry;
	SegLoc loc;
} Move;

typedef struct CompactState {
	Outbox *o;
	bool oldest;
	Move *moves;
	size_t n_moves, n_moves_allocated;
} CompactState;

static int compact_visit(const SegEntry *se, void *userdata) {
	CompactState *c = userdata;
	char id[RECORD_ID_MAX];
	SegLoc loc;
	Entry *e;
	int k;

	copy_id(se, id);
	e = se->id_len < RECORD_ID_MAX ? find_entry(c->o, id) : NULL;
	if (se->kind == SEG_TOMBSTONE) {
		/* It hides older versions in older segments; the oldest has none. */
		if (c->oldest || e)
			return 0;
		return seglog_copy(c->o->log, se, &loc);
	}
	if (!e || e->loc != se->loc)
		return 0; /* superseded */
	k = grow_array((void **) &c->moves, &c->n_moves_allocated, c->n_moves + 1, sizeof *c->moves);
	if (k < 0)
		return k;
	k = seglog_copy(c->o->log, se, &loc);
	if (k < 0)
		return k;
	c->moves[c->n_moves++] = (Move) { .entry = e, .loc = loc };
	return 0;
}

/* Rewrites the current entries of the segment most worth it at the log's
 * end, then removes it: the log stays within about twice the size of what
 * it holds. One segment (a few MiB) per call, after a commit, so the work
 * follows the writes that made the garbage and idle stays idle. */
static void compact_maybe(Outbox *o) {
	_cleanup_(freep) Move *moves = NULL;
	CompactState c = { .o = o };
	uint32_t victim;
	int k;

	if (seglog_pending(o->log) || o->hold_damaged)
		return;
	victim = seglog_victim(o->log);
	if (victim == 0)
		return;
	c.oldest = seglog_is_oldest(o->log, victim);
	k = seglog_scan_segment(o->log, victim, compact_visit, &c);
	moves = c.moves;
	if (k >= 0)
		k = seglog_commit(o->log);
	else
		seglog_abort(o->log);
	if (k < 0) {
		log_warning_errno(k, "Failed to compact outbox log segment %016" PRIx32 ": %m", victim);
		return;
	}
	for (size_t i = 0; i < c.n_moves; i++)
		c.moves[i].entry->loc = c.moves[i].loc;
	k = seglog_drop(o->log, victim);
	if (k < 0)
		log_warning_errno(k, "Failed to remove compacted outbox log segment %016" PRIx32 ": %m",
		                  victim);
}

/* ---- changes -------------------------------------------------------------------- */

int outbox_insert(Outbox *o, Record *r) {
	int result = 0, k;

	if (!o || !r)
		return -EINVAL;
	k = outbox_insert_many(o, &r, 1, &result);
	return k < 0 ? k : result;
}

int outbox_insert_many(Outbox *o, Record *const *records, size_t n, int *results) {
	_cleanup_(freep) Entry **entries = NULL;
	_cleanup_(freep) SegLoc *locs = NULL;
	_cleanup_(freep) uint32_t *sizes = NULL;
	_cleanup_(freep) uint64_t *old_seqs = NULL;
	uint64_t next_seq = o ? o->next_seq : 0;
	size_t m = 0;
	int first = 0, k;

	if (!o || (n > 0 && (!records || !results)))
		return -EINVAL;
	if (n == 0)
		return 0;

	k = check_free_space(o);
	if (k < 0) {
		for (size_t i = 0; i < n; i++)
			results[i] = k;
		return k;
	}

	entries = calloc(n, sizeof *entries);
	locs = calloc(n, sizeof *locs);
	sizes = calloc(n, sizeof *sizes);
	old_seqs = calloc(n, sizeof *old_seqs);
	if (!entries || !locs || !sizes || !old_seqs)
		return -ENOMEM;

	/* Index first, in memory: nothing else runs until the batch is written,
	 * and indexing the batch as it goes also catches duplicates within it. */
	for (size_t i = 0; i < n; i++) {
		Record *r = records[i];
		Entry *e;

		results[i] = 0;
		if (!r || !record_id_is_valid(r->id)) {
			results[i] = -EINVAL;
			continue;
		}
		if (find_entry(o, r->id) || find_cref(o, r->owner_uid, r->client_ref)) {
			results[i] = -EEXIST;
			continue;
		}
		e = calloc(1, sizeof *e);
		if (!e) {
			results[i] = -ENOMEM;
			continue;
		}
		old_seqs[i] = r->seq;
		k = reserve(o, r);
		if (k >= 0) {
			r->seq = o->next_seq;
			k = append_record(o, r, false, &locs[i], &sizes[i]);
		}
		if (k < 0) {
			free(e);
			r->seq = old_seqs[i];
			results[i] = k;
			continue;
		}
		o->next_seq++;
		e->record = r;
		index_entry(o, e, true);
		entries[i] = e;
		m++;
	}

	k = m > 0 ? seglog_commit(o->log) : 0;

	for (size_t i = 0; i < n; i++) {
		if (entries[i]) {
			if (k < 0) {
				results[i] = k;
				unindex_entry(o, entries[i]);
				free(entries[i]);
				records[i]->seq = old_seqs[i];
			} else {
				entries[i]->loc = locs[i];
				entries[i]->size = sizes[i];
				lru_push(o, entries[i]);
			}
		}
		if (results[i] < 0 && first == 0)
			first = results[i];
	}
	if (k < 0)
		o->next_seq = next_seq; /* nothing of the batch was stored */
	else if (m > 0)
		compact_maybe(o);
	return first;
}

int outbox_save(Outbox *o, Record *r) {
	/* The record changed: what was served from it is stale. */
	if (r) {
		free(r->protocol_text);
		r->protocol_text = NULL;
	}

	Entry *e = entry_of(o, r);
	SegLoc loc;
	uint32_t size;
	int k;

	if (!e)
		return -ENOENT;
	/* The keys of the index must not have moved under it. */
	if (r->owner_uid != e->uid || r->seq != o->slots[e->slot].seq ||
	    (e->cref_indexed && find_cref(o, e->uid, r->client_ref) != e))
		return -EINVAL;

	k = outbox_need_params(o, r);
	if (k < 0)
		return k;
	k = append_record(o, r, true, &loc, &size);
	if (k < 0)
		return k;
	k = seglog_commit(o->log);
	if (k < 0)
		return k;
	seglog_dead(o->log, e->loc, e->size);
	e->loc = loc;
	e->size = size;
	account_state(o, e, r->state);
	compact_maybe(o);
	return 0;
}

int outbox_remove(Outbox *o, Record *r) {
	Entry *e = entry_of(o, r);
	SegLoc loc;
	int k;

	if (!e)
		return -ENOENT;

	k = seglog_append(o->log, SEG_TOMBSTONE, r->id, NULL, 0, NULL, 0, &loc, NULL);
	if (k >= 0)
		k = seglog_commit(o->log);
	if (k < 0)
		return k;
	seglog_dead(o->log, e->loc, e->size);

	unindex_entry(o, e);
	free(e);
	record_free(r);
	compact_maybe(o);
	return 0;
}

/* ---- queries -------------------------------------------------------------------- */

Record *outbox_get(const Outbox *o, const char *id) {
	Entry *e = o ? find_entry(o, id) : NULL;

	return e ? e->record : NULL;
}

Record *outbox_get_client_ref(const Outbox *o, uid_t uid, const char *client_ref) {
	Entry *e = o ? find_cref(o, uid, client_ref) : NULL;

	return e ? e->record : NULL;
}

size_t outbox_size(const Outbox *o) {
	return o ? o->n_records : 0;
}

size_t outbox_count_state(const Outbox *o, RequestState s) {
	if (!o || !state_is_valid(s))
		return 0;
	return o->state_counts[s];
}

size_t outbox_count_live_uid(const Outbox *o, uid_t uid) {
	UidCount *u = o ? find_uid(o, uid) : NULL;

	return u ? u->live : 0;
}

size_t outbox_count_queued(const Outbox *o, Priority p) {
	return o && priority_is_valid(p) ? o->queued_by_priority[p] : 0;
}

size_t outbox_count_queued_uid(const Outbox *o, uid_t uid, Priority p) {
	UidCount *u = o && priority_is_valid(p) ? find_uid(o, uid) : NULL;

	return u ? u->queued[p] : 0;
}

size_t outbox_queued_uids(const Outbox *o, Priority p, uid_t *uids, size_t *counts, size_t max) {
	size_t n = 0;

	if (!o || !priority_is_valid(p))
		return 0;
	for (size_t i = 0; i < o->n_uid_buckets && n < max; i++)
		if (o->uids[i].used && o->uids[i].queued[p] > 0) {
			uids[n] = o->uids[i].uid;
			counts[n] = o->uids[i].queued[p];
			n++;
		}
	return n;
}

void outbox_release_damaged(Outbox *o) {
	if (!o || !o->hold_damaged)
		return;
	o->hold_damaged = false;
	for (size_t i = 0; i < o->n_slots; i++)
		if (o->slots[i].entry)
			o->slots[i].entry->record->log_damaged_after = false;
	compact_maybe(o);
}

unsigned outbox_quarantined(const Outbox *o) {
	return o ? o->quarantined : 0;
}

void outbox_set_min_free(Outbox *o, uint64_t bytes) {
	if (o)
		o->min_free = bytes;
}

int outbox_state_dirfd(const Outbox *o) {
	return o ? o->state_fd : -EBADF;
}

static Record *scan_forward(const Outbox *o, size_t i) {
	for (; i < o->n_slots; i++)
		if (o->slots[i].entry)
			return o->slots[i].entry->record;
	return NULL;
}

/* The last live record in slots [0, end). */
static Record *scan_backward(const Outbox *o, size_t end) {
	while (end > 0) {
		end--;
		if (o->slots[end].entry)
			return o->slots[end].entry->record;
	}
	return NULL;
}

Record *outbox_first(const Outbox *o) {
	return o ? scan_forward(o, 0) : NULL;
}

Record *outbox_last(const Outbox *o) {
	return o ? scan_backward(o, o->n_slots) : NULL;
}

Record *outbox_next(const Outbox *o, const Record *r) {
	Entry *e = entry_of(o, r);

	return e ? scan_forward(o, e->slot + 1) : NULL;
}

Record *outbox_prev(const Outbox *o, const Record *r) {
	Entry *e = entry_of(o, r);

	return e ? scan_backward(o, e->slot) : NULL;
}

Record *outbox_seek_le(const Outbox *o, uint64_t max_seq) {
	size_t lo = 0, hi;

	if (!o)
		return NULL;
	/* Slots (dead ones too) are sorted by seq: find how many have
	 * seq <= max_seq. */
	hi = o->n_slots;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (o->slots[mid].seq <= max_seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return scan_backward(o, lo);
}
