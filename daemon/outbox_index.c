/* outbox_index.c — the outbox's in-memory index: lookups by id and by (uid,
 * client_ref), the seq-ordered slots, the counts, the params LRU (outbox_internal.h). */
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

Entry *ob_find_entry(const Outbox *o, const char *id) {
	if (!id || o->n_by_id_buckets == 0)
		return NULL;
	for (Entry *e = o->by_id[hash_id(id) & (o->n_by_id_buckets - 1)]; e; e = e->id_next)
		if (streq(e->record->id, id))
			return e;
	return NULL;
}

Entry *ob_find_cref(const Outbox *o, uid_t uid, const char *client_ref) {
	if (!client_ref || o->n_by_cref_buckets == 0)
		return NULL;
	for (Entry *e = o->by_cref[hash_cref(uid, client_ref) & (o->n_by_cref_buckets - 1)]; e;
	     e = e->cref_next)
		if (e->uid == uid && streq(e->record->client_ref, client_ref))
			return e;
	return NULL;
}

/* The entry of r, if r (this very object) is in o. */
Entry *ob_entry_of(const Outbox *o, const Record *r) {
	Entry *e;

	if (!o || !r)
		return NULL;
	/* Iteration asks for every record in turn: the hint saves hashing its id. */
	if (r->outbox_slot < o->n_slots && o->slots[r->outbox_slot].entry &&
	    o->slots[r->outbox_slot].entry->record == r)
		return o->slots[r->outbox_slot].entry;
	e = ob_find_entry(o, r->id);
	return e && e->record == r ? e : NULL;
}

UidCount *ob_find_uid(const Outbox *o, uid_t uid) {
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

/* Needs a free bucket: ob_reserve() makes sure of it. */
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

int ob_resize_by_id(Outbox *o, size_t n) {
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
	o->queued_hint_slot = 0;
}

size_t ob_grown(size_t n, size_t min) {
	return n < min ? min : n * 2;
}

/* Makes room for one more record in every structure, so that indexing it
 * after its file is durable cannot fail. */
int ob_reserve(Outbox *o, const Record *r) {
	int k;

	if (o->n_slots == o->n_slots_allocated) {
		if (o->n_dead > 0)
			compact_slots(o);
		else {
			size_t n = ob_grown(o->n_slots_allocated, TABLE_MIN);
			Slot *s = reallocarray(o->slots, n, sizeof *s);

			if (!s)
				return -ENOMEM;
			o->slots = s;
			o->n_slots_allocated = n;
		}
	}
	if (o->n_records + 1 > o->n_by_id_buckets) {
		k = ob_resize_by_id(o, ob_grown(o->n_by_id_buckets, TABLE_MIN));
		if (k < 0)
			return k;
	}
	if (r->client_ref && o->n_cref + 1 > o->n_by_cref_buckets) {
		k = resize_by_cref(o, ob_grown(o->n_by_cref_buckets, TABLE_MIN));
		if (k < 0)
			return k;
	}
	if (!ob_find_uid(o, r->owner_uid) && (o->n_uids + 1) * 2 > o->n_uid_buckets) {
		k = resize_uids(o, ob_grown(o->n_uid_buckets, UID_TABLE_MIN));
		if (k < 0)
			return k;
	}
	return 0;
}

bool ob_state_is_valid(RequestState s) {
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

void ob_lru_push(Outbox *o, Entry *e) {
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

bool ob_priority_is_valid(Priority p) {
	return p >= 0 && p < _PRIORITY_MAX;
}

/* The queued counts follow the state last written; the priority never changes. */
static void account_queued(Outbox *o, UidCount *u, Entry *e, RequestState s, int delta) {
	Priority p = e->record->priority;

	if (u && ob_state_is_valid(s))
		u->states[s] += (size_t) delta;
	if (s == REQUEST_QUEUED && delta > 0) {
		/* Keep the hints below every queued record. */
		if (e->slot < o->queued_hint_slot)
			o->queued_hint_slot = e->slot;
		if (u && u->queued_hint && u->queued_hint->record->seq > e->record->seq)
			u->queued_hint = e;
	}
	if (s != REQUEST_QUEUED || !ob_priority_is_valid(p))
		return;
	o->queued_by_priority[p] += (size_t) delta;
	if (u)
		u->queued[p] += (size_t) delta;
}

/* Cannot fail once ob_reserve() succeeded for this record. */
void ob_index_entry(Outbox *o, Entry *e, bool with_cref) {
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
	if (ob_state_is_valid(e->state))
		o->state_counts[e->state]++;
	u = ob_find_uid(o, e->uid);
	if (!u)
		u = add_uid(o, e->uid);
	/* Records are indexed in seq order: appending keeps the list sorted. */
	e->uid_next = NULL;
	e->uid_prev = u->tail;
	if (u->tail)
		u->tail->uid_next = e;
	else
		u->head = e;
	u->tail = e;
	if (!request_state_is_terminal(e->state))
		u->live++;
	account_queued(o, u, e, e->state, +1);
	o->n_records++;
}

void ob_unindex_entry(Outbox *o, Entry *e) {
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

	if (ob_state_is_valid(e->state))
		o->state_counts[e->state]--;
	u = ob_find_uid(o, e->uid);
	if (u) {
		if (u->queued_hint == e)
			u->queued_hint = e->uid_next;
		if (e->uid_prev)
			e->uid_prev->uid_next = e->uid_next;
		else
			u->head = e->uid_next;
		if (e->uid_next)
			e->uid_next->uid_prev = e->uid_prev;
		else
			u->tail = e->uid_prev;
		e->uid_prev = e->uid_next = NULL;
	}
	if (u && !request_state_is_terminal(e->state))
		u->live--;
	account_queued(o, u, e, e->state, -1);
	o->n_records--;
}

/* Moves the counts of e from its last written state to s. */
void ob_account_state(Outbox *o, Entry *e, RequestState s) {
	bool was_live = !request_state_is_terminal(e->state);
	bool is_live = !request_state_is_terminal(s);

	if (e->state == s)
		return;
	account_queued(o, ob_find_uid(o, e->uid), e, e->state, -1);
	account_queued(o, ob_find_uid(o, e->uid), e, s, +1);
	if (ob_state_is_valid(e->state))
		o->state_counts[e->state]--;
	if (ob_state_is_valid(s))
		o->state_counts[s]++;
	if (was_live != is_live) {
		UidCount *u = ob_find_uid(o, e->uid);

		if (u) {
			if (is_live)
				u->live++;
			else
				u->live--;
		}
	}
	e->state = s;
}

