/* outbox.c — see outbox.h; its insides are described in outbox_internal.h.
 * Here: writing records to the log, compaction, the changes and queries. */
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
#include "outbox_internal.h"
#include "seglog.h"
#include "store.h"

/* ---- files ---------------------------------------------------------------------- */

bool ob_ends_with(const char *s, const char *suffix) {
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && streq(s + n - m, suffix);
}

/* Strict JSON: RFC 8259 syntax, valid UTF-8, no NUL bytes, one value with
 * nothing but whitespace after it. tok is reused: a new tokener per record
 * showed in start-up and submit profiles. */
int ob_parse_json_with(json_tokener *tok, const char *text, size_t len, json_object **ret) {
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

int ob_new_tokener(json_tokener **ret) {
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
		k = ob_parse_json_with(o->tok, text, len, &reread);
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
int ob_append_record(Outbox *o, const Record *r, bool check, SegLoc *ret_loc, uint32_t *ret_size) {
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

int outbox_need_params(Outbox *o, Record *r) {
	_cleanup_(freep) char *buf = NULL;
	_cleanup_(json_object_putp) json_object *params = NULL;
	SegEntry se;
	Entry *e;
	int k;

	if (!o || !r)
		return -EINVAL;
	e = ob_find_entry(o, r->id);
	if (!e || e->record != r)
		return r->params ? 0 : -ENOENT;
	if (r->params) {
		ob_lru_push(o, e);
		return 0;
	}

	/* params never change after insert, so the current entry's copy is
	 * the one submitted. */
	k = seglog_read(o->log, e->loc, e->size, &se, &buf);
	if (k < 0)
		return k;
	k = ob_parse_json_with(o->tok, se.params, se.params_len, &params);
	if (k < 0)
		return k;
	k = record_check_params(r, params);
	if (k < 0)
		return k;
	r->params = TAKE_PTR(params);
	ob_lru_push(o, e);
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

	ob_copy_id(se, id);
	e = se->id_len < RECORD_ID_MAX ? ob_find_entry(c->o, id) : NULL;
	if (se->kind == SEG_TOMBSTONE) {
		/* It hides older versions in older segments; the oldest has none. */
		if (c->oldest || e)
			return 0;
		return seglog_copy(c->o->log, se, &loc);
	}
	if (!e || e->loc != se->loc)
		return 0; /* superseded */
	k = ob_grow_array((void **) &c->moves, &c->n_moves_allocated, c->n_moves + 1, sizeof *c->moves);
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
void ob_compact_maybe(Outbox *o) {
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
		if (ob_find_entry(o, r->id) || ob_find_cref(o, r->owner_uid, r->client_ref)) {
			results[i] = -EEXIST;
			continue;
		}
		e = calloc(1, sizeof *e);
		if (!e) {
			results[i] = -ENOMEM;
			continue;
		}
		old_seqs[i] = r->seq;
		k = ob_reserve(o, r);
		if (k >= 0) {
			r->seq = o->next_seq;
			k = ob_append_record(o, r, false, &locs[i], &sizes[i]);
		}
		if (k < 0) {
			free(e);
			r->seq = old_seqs[i];
			results[i] = k;
			continue;
		}
		o->next_seq++;
		e->record = r;
		ob_index_entry(o, e, true);
		entries[i] = e;
		m++;
	}

	k = m > 0 ? seglog_commit(o->log) : 0;

	for (size_t i = 0; i < n; i++) {
		if (entries[i]) {
			if (k < 0) {
				results[i] = k;
				ob_unindex_entry(o, entries[i]);
				free(entries[i]);
				records[i]->seq = old_seqs[i];
			} else {
				entries[i]->loc = locs[i];
				entries[i]->size = sizes[i];
				ob_lru_push(o, entries[i]);
			}
		}
		if (results[i] < 0 && first == 0)
			first = results[i];
	}
	if (k < 0)
		o->next_seq = next_seq; /* nothing of the batch was stored */
	else if (m > 0)
		ob_compact_maybe(o);
	return first;
}

int outbox_save(Outbox *o, Record *r) {
	/* The record changed: what was served from it is stale. */
	if (r) {
		free(r->protocol_text);
		r->protocol_text = NULL;
	}

	Entry *e = ob_entry_of(o, r);
	SegLoc loc;
	uint32_t size;
	int k;

	if (!e)
		return -ENOENT;
	/* The keys of the index must not have moved under it. */
	if (r->owner_uid != e->uid || r->seq != o->slots[e->slot].seq ||
	    (e->cref_indexed && ob_find_cref(o, e->uid, r->client_ref) != e))
		return -EINVAL;

	k = outbox_need_params(o, r);
	if (k < 0)
		return k;
	k = ob_append_record(o, r, true, &loc, &size);
	if (k < 0)
		return k;
	k = seglog_commit(o->log);
	if (k < 0)
		return k;
	seglog_dead(o->log, e->loc, e->size);
	e->loc = loc;
	e->size = size;
	ob_account_state(o, e, r->state);
	ob_compact_maybe(o);
	return 0;
}

int outbox_remove(Outbox *o, Record *r) {
	Entry *e = ob_entry_of(o, r);
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

	ob_unindex_entry(o, e);
	free(e);
	record_free(r);
	ob_compact_maybe(o);
	return 0;
}

/* ---- queries -------------------------------------------------------------------- */

Record *outbox_get(const Outbox *o, const char *id) {
	Entry *e = o ? ob_find_entry(o, id) : NULL;

	return e ? e->record : NULL;
}

Record *outbox_get_client_ref(const Outbox *o, uid_t uid, const char *client_ref) {
	Entry *e = o ? ob_find_cref(o, uid, client_ref) : NULL;

	return e ? e->record : NULL;
}

size_t outbox_size(const Outbox *o) {
	return o ? o->n_records : 0;
}

size_t outbox_count_state(const Outbox *o, RequestState s) {
	if (!o || !ob_state_is_valid(s))
		return 0;
	return o->state_counts[s];
}

size_t outbox_count_live_uid(const Outbox *o, uid_t uid) {
	UidCount *u = o ? ob_find_uid(o, uid) : NULL;

	return u ? u->live : 0;
}

size_t outbox_count_queued(const Outbox *o, Priority p) {
	return o && ob_priority_is_valid(p) ? o->queued_by_priority[p] : 0;
}

size_t outbox_count_queued_uid(const Outbox *o, uid_t uid, Priority p) {
	UidCount *u = o && ob_priority_is_valid(p) ? ob_find_uid(o, uid) : NULL;

	return u ? u->queued[p] : 0;
}

size_t outbox_queued_uids(const Outbox *o, Priority p, uid_t *uids, size_t *counts, size_t max) {
	size_t n = 0;

	if (!o || !ob_priority_is_valid(p))
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
	ob_compact_maybe(o);
}

size_t outbox_count_state_uid(const Outbox *o, uid_t uid, RequestState s) {
	UidCount *u = o && ob_state_is_valid(s) ? ob_find_uid(o, uid) : NULL;

	return u ? u->states[s] : 0;
}

Record *outbox_oldest_queued(Outbox *o) {
	if (!o || o->state_counts[REQUEST_QUEUED] == 0)
		return NULL;
	for (size_t i = o->queued_hint_slot; i < o->n_slots; i++) {
		Entry *e = o->slots[i].entry;

		if (e && e->state == REQUEST_QUEUED) {
			o->queued_hint_slot = i;
			return e->record;
		}
	}
	return NULL;
}

Record *outbox_oldest_queued_uid(Outbox *o, uid_t uid) {
	UidCount *u = o ? ob_find_uid(o, uid) : NULL;

	if (!u || u->states[REQUEST_QUEUED] == 0)
		return NULL;
	for (Entry *e = u->queued_hint ? u->queued_hint : u->head; e; e = e->uid_next)
		if (e->state == REQUEST_QUEUED) {
			u->queued_hint = e;
			return e->record;
		}
	return NULL;
}

Record *outbox_last_uid(const Outbox *o, uid_t uid) {
	UidCount *u = o ? ob_find_uid(o, uid) : NULL;

	return u && u->tail ? u->tail->record : NULL;
}

Record *outbox_prev_uid(const Outbox *o, const Record *r) {
	Entry *e = ob_entry_of(o, r);

	return e && e->uid_prev ? e->uid_prev->record : NULL;
}

Record *outbox_seek_le_uid(const Outbox *o, uid_t uid, uint64_t max_seq) {
	UidCount *u = o ? ob_find_uid(o, uid) : NULL;
	Entry *e = u ? u->tail : NULL;

	while (e && e->record->seq > max_seq)
		e = e->uid_prev;
	return e ? e->record : NULL;
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
	Entry *e = ob_entry_of(o, r);

	return e ? scan_forward(o, e->slot + 1) : NULL;
}

Record *outbox_prev(const Outbox *o, const Record *r) {
	Entry *e = ob_entry_of(o, r);

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

