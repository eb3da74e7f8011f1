/* outbox_load.c — opening the outbox: the log read back (in parallel past a few
 * thousand entries), the legacy requests/ directory migrated, damage quarantined
 * (outbox_internal.h). */
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

int ob_grow_array(void **array, size_t *allocated, size_t need, size_t size) {
	void *p;
	size_t n;

	if (need <= *allocated)
		return 0;
	n = ob_grown(*allocated, 64);
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
	int k = ob_grow_array((void **) v, allocated, *n + 1, sizeof **v);

	if (k < 0)
		return k;
	(*v)[*n] = strdup(name);
	if (!(*v)[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int add_bad(LoadState *s, const char *name, const char *reason) {
	int k = ob_grow_array((void **) &s->bad, &s->n_bad_allocated, s->n_bad + 1, sizeof *s->bad);

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
	int k = ob_grow_array((void **) &s->records, &s->n_records_allocated, s->n_records + 1,
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
	int k = ob_grow_array((void **) &s->refs, &s->n_refs_allocated, s->n_refs + 1, sizeof *s->refs);

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

void ob_copy_id(const SegEntry *e, char id[static RECORD_ID_MAX]) {
	size_t n = e->id_len < RECORD_ID_MAX - 1 ? e->id_len : RECORD_ID_MAX - 1;

	memcpy(id, e->id, n);
	id[n] = '\0';
}

/* Parses the meta of one current log entry. -EINVAL: the id is not a record
 * id; -EBADMSG: not a valid record of that id.
 * The record returned is a copy made once the parse tree is freed: the
 * record made from the tree was allocated while the tree lived, among its
 * chunks, and the tree's chunks freed around it left one or two holes of
 * ~100-220 bytes per record that nothing of that size came to fill (malloc
 * cannot give back part of a page): 12.6 MB over 100,000 records, ~20 % of
 * hitld's RSS. With the copy, a start with 100,000 records leaves 0.9 MB
 * free in the heap (bench/ANALYSIS.md, "RSS at 100,000 records"); the first
 * version's chunks serve the next record's parse. test_outbox_memory.c
 * holds the bound. */
/* glibc's default M_MXFAST (64 * sizeof(size_t) / 4), restored after the parse. */
#define GLIBC_DEFAULT_MXFAST ((int) (64 * sizeof(size_t) / 4))

static int parse_meta(json_tokener *tok, const SegEntry *e, Record **ret) {
	_cleanup_(json_object_putp) json_object *j = NULL;
	_cleanup_(record_freep) Record *r = NULL;
	char id[RECORD_ID_MAX];
	int k;

	ob_copy_id(e, id);
	if (e->id_len >= RECORD_ID_MAX || !record_id_is_valid(id))
		return -EINVAL;
	k = ob_parse_json_with(tok, e->meta, e->meta_len, &j);
	if (k >= 0)
		k = record_from_json_meta(j, &r);
	if (k == -ENOMEM)
		return k;
	if (k < 0 || !streq(r->id, id))
		return -EBADMSG;
	json_object_put(TAKE_PTR(j));
	return record_copy(r, ret);
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
	int k = ob_new_tokener(&tok);

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
	/* No fast bins while the trees come and go: their small chunks, freed into fast
	 * bins (which never coalesce), split the trees' space, and each kept record then
	 * came from the top instead (60 bytes a record more once the records stopped
	 * allocating a loop_id each; bench/ANALYSIS.md). The per-thread caches still
	 * serve the small allocations. */
	mallopt(M_MXFAST, 0);
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
		mallopt(M_MXFAST, GLIBC_DEFAULT_MXFAST);
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
			ob_copy_id(e, id);
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

	if (ob_ends_with(name, TMP_SUFFIX))
		return add_name(&s->tmps, &s->n_tmps, &s->n_tmps_allocated, name);

	stem = strlen(name) - (ob_ends_with(name, RECORD_SUFFIX) ? strlen(RECORD_SUFFIX) : 0);
	if (ob_ends_with(name, RECORD_SUFFIX) && stem < sizeof id) {
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

	k = ob_parse_json_with(o->tok, text, len, &j);
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

	k = ob_append_record(o, r, true, &loc, &size);
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
		k = ob_resize_by_id(o, n);
		if (k < 0)
			return k;
	}
	for (size_t i = 0; i < s.n_records; i++) {
		Record *r = s.records[i].record;
		Entry *e, *clash;

		k = ob_reserve(o, r);
		if (k < 0)
			return k;
		e = calloc(1, sizeof *e);
		if (!e)
			return -ENOMEM;

		clash = ob_find_cref(o, r->owner_uid, r->client_ref);
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
		ob_index_entry(o, e, !clash);
		if (r->seq > max_seq)
			max_seq = r->seq;
	}
	s.n_records = 0; /* every record is owned by o now */

	o->next_seq = max_seq + 1;
	/* The parse trees came and went: give the memory back. */
	malloc_trim(0);
	/* A damaged segment goes first, while nothing else waits. */
	ob_compact_maybe(o);
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

	k = ob_new_tokener(&o->tok);
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

