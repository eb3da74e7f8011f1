/* The outbox under storage faults, one failing syscall at a time at every step of
 * every durable change (insert, group insert, save, remove — appends to the log,
 * new segments, and the compaction that may follow a commit), through the store
 * seam; after each, the state directory is reopened and must hold exactly what the
 * caller was told: the old record or the whole new one, never half of one, never a
 * record nobody was told about, no tmp file, nothing quarantined that was written
 * whole. And at open: damaged log bytes are never lost, even when keeping a copy
 * of them in quarantine/ fails. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "outbox.h"
#include "seglog.h"
#include "store.h"
#include "unit_outbox.h"
#include "unit_faults.h"
#include "unit_tmpdir.h"

#define LOOP_ID UNIT_LOOP_ID
#define REQUEST_TEXT "Ship build 4812 to production now, or wait for the morning?"
#define make_record(uid, client_ref) unit_make_record(uid, client_ref, REQUEST_TEXT)
#define open_outbox(f) unit_open_outbox((f)->state_dir)
#define DIR_MAX 512

/* renameat and syncfs belong to the old one-file-per-record writes: the log
 * never calls them when it stores a change (asserted below); only the copy of
 * damaged bytes into quarantine/ at open still renames. */
#define op_names unit_op_names

static struct {
	int calls[_OP_MAX];
	Op fail_op;
	int fail_at;
	int fail_errno;
	size_t max_write;
	/* The tmp file that keeps damaged bytes in quarantine/ ("…@<offset>.tmp"). */
	int quarantine_fd;
	bool hit_quarantine_file;
	bool fsync_fake;            /* fsync returns 0 without syncing */
	bool fail_fsync_after_drop; /* fail the fsync that follows unlinking a segment */
	bool unlinked_segment;
	bool hit_drop_fsync;
} fault;

static void fault_reset(void) {
	memset(&fault, 0, sizeof fault);
	fault.fail_op = _OP_MAX;
	fault.quarantine_fd = -1;
}

static bool fault_hit(Op op, bool quarantine_file) {
	fault.calls[op]++;
	if (fault.fail_op == op && fault.calls[op] == fault.fail_at) {
		if (quarantine_file)
			fault.hit_quarantine_file = true;
		errno = fault.fail_errno;
		return true;
	}
	return false;
}

static int fake_openat(int dirfd, const char *path, int flags, mode_t mode) {
	bool q = strchr(path, '@') != NULL;
	int fd;

	if (fault_hit(OP_OPENAT, q))
		return -1;
	fd = openat(dirfd, path, flags, mode);
	if (q && fd >= 0)
		fault.quarantine_fd = fd;
	return fd;
}

static ssize_t fake_write(int fd, const void *buf, size_t len) {
	if (fault_hit(OP_WRITE, fd == fault.quarantine_fd))
		return -1;
	if (fault.max_write > 0 && len > fault.max_write)
		len = fault.max_write;
	return write(fd, buf, len);
}

static int fake_fsync(int fd) {
	if (fault.fail_fsync_after_drop && fault.unlinked_segment) {
		fault.unlinked_segment = false;
		fault.hit_drop_fsync = true;
		errno = EIO;
		return -1;
	}
	if (fault_hit(OP_FSYNC, fd == fault.quarantine_fd))
		return -1;
	return fault.fsync_fake ? 0 : fsync(fd);
}

static int fake_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
	bool q = strchr(oldpath, '@') != NULL;

	fault.quarantine_fd = -1; /* closed by now */
	return fault_hit(OP_RENAMEAT, q) ? -1 : renameat(olddirfd, oldpath, newdirfd, newpath);
}

static int fake_unlinkat(int dirfd, const char *path, int flags) {
	bool q = strchr(path, '@') != NULL;
	size_t len = strlen(path);
	int k;

	fault.quarantine_fd = -1;
	if (fault_hit(OP_UNLINKAT, q))
		return -1;
	k = unlinkat(dirfd, path, flags);
	if (k >= 0 && len > 4 && streq(path + len - 4, ".log"))
		fault.unlinked_segment = true;
	return k;
}

static int fake_syncfs(int fd) {
	return fault_hit(OP_SYNCFS, false) ? -1 : syncfs(fd);
}

static const StoreOps fake_ops = {
	.openat = fake_openat,
	.write = fake_write,
	.fsync = fake_fsync,
	.renameat = fake_renameat,
	.unlinkat = fake_unlinkat,
	.syncfs = fake_syncfs,
};

static const int errnos[] = { EIO, ENOSPC };

typedef struct Fixture {
	char path[DIR_MAX];
	char state_dir[DIR_MAX + 16];
	char quarantine[DIR_MAX + 32];
	char log[DIR_MAX + 32];
} Fixture;

static void wipe_state(Fixture *f) {
	unit_rm_tree(f->state_dir);
}

static int setup(void **state) {
	Fixture *f = calloc(1, sizeof *f);
	const char *tmp = getenv("TMPDIR");

	assert_non_null(f);
	if (!tmp || !*tmp)
		tmp = "/tmp";
	assert_true(strlen(tmp) + 40 < sizeof f->path);
	snprintf(f->path, sizeof f->path, "%s/hitld-test-outbox-faults-XXXXXX", tmp);
	assert_non_null(mkdtemp(f->path));
	snprintf(f->state_dir, sizeof f->state_dir, "%s/state", f->path);
	snprintf(f->quarantine, sizeof f->quarantine, "%s/quarantine", f->state_dir);
	snprintf(f->log, sizeof f->log, "%s/outbox", f->state_dir);
	fault_reset();
	store_set_ops(NULL);
	*state = f;
	return 0;
}

static int teardown(void **state) {
	Fixture *f = *state;

	store_set_ops(NULL);
	unit_rm_tree(f->path);
	free(f);
	return 0;
}

static char *path_in(const char *dir, const char *name) {
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static char *get_file(const char *dir, const char *name, size_t *ret_len) {
	_cleanup_(closep) int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *data = NULL;
	size_t len = 0;

	if (fd < 0)
		return NULL;
	if (store_read_file(fd, name, 1 << 26, &data, &len) < 0)
		return NULL;
	if (ret_len)
		*ret_len = len;
	return data;
}

static void put_file(const char *dir, const char *name, const void *data, size_t len) {
	_cleanup_(freep) char *p = path_in(dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t) len);
	close(fd);
}

static size_t count_entries(const char *dir, const char *suffix) {
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name), m = suffix ? strlen(suffix) : 0;

		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (!suffix || (len >= m && streq(de->d_name + len - m, suffix)))
			n++;
	}
	closedir(d);
	return n;
}

static uint64_t log_bytes(const Fixture *f) {
	DIR *d = opendir(f->log);
	struct dirent *de;
	uint64_t total = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		struct stat st;

		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		assert_int_equal(fstatat(dirfd(d), de->d_name, &st, 0), 0);
		total += (uint64_t) st.st_size;
	}
	closedir(d);
	return total;
}

static json_object *disk_form(const Record *r) {
	json_object *j = NULL;

	assert_int_equal(record_to_json(r, &j), 0);
	return j;
}

/* The record as a reopened outbox serves it, params read back from the log. */
static json_object *served_form(Outbox *o, const char *id) {
	Record *r = outbox_get(o, id);

	if (!r)
		fail_msg("record %s not served", id);
	assert_int_equal(outbox_need_params(o, r), 0);
	return disk_form(r);
}

/* Reopens the state directory with the real syscalls; checks nothing was
 * quarantined and no tmp survived. */
static Outbox *reopen_checked(const Fixture *f) {
	Outbox *o;

	store_set_ops(NULL);
	assert_int_equal(count_entries(f->state_dir, ".tmp"), 0);
	assert_int_equal(count_entries(f->log, ".tmp"), 0);
	o = open_outbox(f);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_int_equal(count_entries(f->quarantine, NULL), 0);
	return o;
}

/* The same, while the outbox that failed stays open to retry: two outboxes
 * on one log is not a thing the daemon does, so this one must not write
 * (no compaction at its open). */
static Outbox *reopen_read_only(const Fixture *f) {
	uint64_t before = log_bytes(f);
	Outbox *o = reopen_checked(f);

	assert_int_equal(log_bytes(f), before);
	return o;
}

/* ---- the state a change starts from ---- */

/* What prepare made: the outbox, and the record changes work on. */
typedef struct Prepared {
	Outbox *o;
	Record *a;            /* NULL for prepare_empty */
	char a_id[RECORD_ID_MAX];
	char c_id[RECORD_ID_MAX]; /* a second record, kept as is ("" if none) */
} Prepared;

typedef void (*prepare_fn)(Fixture *f, Prepared *p);

/* No log yet: the change creates the first segment. */
static void prepare_empty(Fixture *f, Prepared *p) {
	*p = (Prepared) { .o = open_outbox(f) };
}

/* One record in the active segment: the change appends to it. */
static void prepare_one(Fixture *f, Prepared *p) {
	*p = (Prepared) { .o = open_outbox(f) };
	p->a = make_record(1000, "a");
	assert_int_equal(outbox_insert(p->o, p->a), 0);
	strcpy(p->a_id, p->a->id);
}

/* Two records in a segment that a failed commit closed: the change starts a
 * new segment, and compaction then rewrites the closed one (small, so worth
 * it) and removes it, inside the same call. */
static void prepare_closed(Fixture *f, Prepared *p) {
	Record *c = make_record(1005, "kept");

	prepare_one(f, p);
	assert_int_equal(outbox_insert(p->o, c), 0);
	strcpy(p->c_id, c->id);
	fault_reset();
	fault.fail_op = OP_FSYNC;
	fault.fail_at = 1;
	fault.fail_errno = EIO;
	store_set_ops(&fake_ops);
	assert_int_equal(outbox_save(p->o, c), -EIO);
	store_set_ops(NULL);
}

static const struct {
	const char *name;
	prepare_fn fn;
} prepares[] = {
	{ "empty", prepare_empty },
	{ "append", prepare_one },
	{ "new segment + compaction", prepare_closed },
};

/* The records the prepared state holds besides the changed one. */
static void assert_prepared_records(Outbox *o, const Prepared *p, bool with_a) {
	if (with_a && p->a_id[0])
		assert_non_null(outbox_get(o, p->a_id));
	if (p->c_id[0])
		assert_non_null(outbox_get(o, p->c_id));
}

/* How many calls of each kind change makes from a prepared state, on a clean
 * run (writes cut to 64 bytes, so a failure can hit the middle of a batch). */
typedef int (*change_fn)(Prepared *p);

static void learn_calls(Fixture *f, prepare_fn prepare, change_fn change, int ret_calls[_OP_MAX]) {
	Prepared p;

	wipe_state(f);
	prepare(f, &p);
	fault_reset();
	fault.max_write = 64;
	store_set_ops(&fake_ops);
	assert_int_equal(change(&p), 0);
	store_set_ops(NULL);
	memcpy(ret_calls, fault.calls, sizeof fault.calls);
	outbox_free(p.o);
	/* The log's way of storing a change: no rename, no syncfs. */
	assert_int_equal(ret_calls[OP_RENAMEAT], 0);
	assert_int_equal(ret_calls[OP_SYNCFS], 0);
}

static void inject(Op op, int n, int error) {
	fault_reset();
	fault.max_write = 64;
	fault.fail_op = op;
	fault.fail_at = n;
	fault.fail_errno = error;
	store_set_ops(&fake_ops);
}

/* ---- insert ---- */

static Record *pending_insert;

static int change_insert(Prepared *p) {
	int k;

	pending_insert = make_record(1000, "b");
	k = outbox_insert(p->o, pending_insert);
	if (k >= 0)
		pending_insert = NULL; /* the outbox owns it */
	return k;
}

static void test_outbox_insert_failing_at_every_step_stores_exactly_what_it_reports(void **state) {
	Fixture *f = *state;
	int failed = 0;

	for (size_t s = 0; s < ELEMENTSOF(prepares); s++) {
		int calls[_OP_MAX];

		learn_calls(f, prepares[s].fn, change_insert, calls);
		assert_true(calls[OP_WRITE] >= 3);
		assert_true(calls[OP_FSYNC] >= 1);

		for (Op op = 0; op < _OP_MAX; op++)
			for (int n = 1; n <= calls[op]; n++)
				for (size_t e = 0; e < ELEMENTSOF(errnos); e++) {
					_cleanup_(outbox_freep) Outbox *again = NULL, *last = NULL;
					_cleanup_(record_freep) Record *b = NULL;
					char b_id[RECORD_ID_MAX];
					Prepared p;
					size_t before;
					int k;

					wipe_state(f);
					prepares[s].fn(f, &p);
					before = outbox_size(p.o);
					inject(op, n, errnos[e]);
					k = change_insert(&p);
					store_set_ops(NULL);
					b = TAKE_PTR(pending_insert);
					print_message("insert (%s): fail %s #%d with %s -> %d\n", prepares[s].name,
					              op_names[op], n, strerror(errnos[e]), k);

					/* A failure after the commit (compaction) is not the
					 * caller's: the insert stands. */
					assert_true(k == 0 || k == -errnos[e]);
					again = k == 0 ? reopen_checked(f) : reopen_read_only(f);
					assert_prepared_records(again, &p, true);
					if (k == 0) {
						assert_null(b);
						assert_int_equal(outbox_size(p.o), before + 1);
						assert_int_equal(outbox_size(again), before + 1);
						assert_non_null(outbox_get_client_ref(again, 1000, "b"));
						p.o = outbox_free(p.o);
						continue;
					}
					/* Told "not stored": in memory and after a restart. */
					failed++;
					assert_non_null(b);
					assert_int_equal(b->seq, 0);
					assert_int_equal(outbox_size(p.o), before);
					assert_null(outbox_get(p.o, b->id));
					assert_null(outbox_get_client_ref(p.o, 1000, "b"));
					assert_int_equal(outbox_size(again), before);
					assert_null(outbox_get(again, b->id));
					assert_null(outbox_get_client_ref(again, 1000, "b"));
					again = outbox_free(again);

					/* The caller retries, and that one lasts. */
					strcpy(b_id, b->id);
					assert_int_equal(outbox_insert(p.o, b), 0);
					TAKE_PTR(b);
					p.o = outbox_free(p.o);
					last = reopen_checked(f);
					assert_int_equal(outbox_size(last), before + 1);
					assert_non_null(outbox_get(last, b_id));
					assert_prepared_records(last, &p, true);
				}
	}
	assert_true(failed >= 2 * 20);
}

/* ---- group insert (what request.submit uses) ---- */

#define BATCH 3
static Record *batch[BATCH];
static int batch_results[BATCH];

static int change_insert_many(Prepared *p) {
	static const char *const refs[BATCH] = { "b", "c", "d" };

	for (size_t i = 0; i < BATCH; i++)
		batch[i] = make_record(1000 + (uid_t) i, refs[i]);
	return outbox_insert_many(p->o, batch, BATCH, batch_results);
}

static void test_outbox_insert_many_failing_at_every_step_stores_exactly_what_it_reports(void **state) {
	Fixture *f = *state;
	int failed = 0;

	for (size_t s = 0; s < ELEMENTSOF(prepares); s++) {
		int calls[_OP_MAX];

		learn_calls(f, prepares[s].fn, change_insert_many, calls);
		for (size_t i = 0; i < BATCH; i++)
			batch[i] = NULL; /* owned by the outbox, freed with it */
		assert_true(calls[OP_WRITE] >= 3 * BATCH);
		assert_true(calls[OP_FSYNC] >= 1);

		for (Op op = 0; op < _OP_MAX; op++)
			for (int n = 1; n <= calls[op]; n++)
				for (size_t e = 0; e < ELEMENTSOF(errnos); e++) {
					_cleanup_(outbox_freep) Outbox *again = NULL;
					size_t stored = 0, before;
					Prepared p;
					int k;

					wipe_state(f);
					prepares[s].fn(f, &p);
					before = outbox_size(p.o);
					inject(op, n, errnos[e]);
					k = change_insert_many(&p);
					store_set_ops(NULL);
					print_message("insert_many (%s): fail %s #%d with %s -> %d [%d %d %d]\n",
					              prepares[s].name, op_names[op], n, strerror(errnos[e]), k,
					              batch_results[0], batch_results[1], batch_results[2]);
					assert_true(k == 0 || k == -errnos[e]);
					if (k < 0)
						failed++;

					again = reopen_checked(f);
					assert_prepared_records(again, &p, true);
					for (size_t i = 0; i < BATCH; i++) {
						/* One commit: all or nothing, and what the caller
						 * was told is what a restart finds. */
						assert_int_equal(batch_results[i], k);
						if (batch_results[i] == 0) {
							assert_ptr_equal(outbox_get(p.o, batch[i]->id), batch[i]);
							assert_non_null(outbox_get(again, batch[i]->id));
							stored++;
						} else {
							assert_int_equal(batch[i]->seq, 0);
							assert_null(outbox_get(p.o, batch[i]->id));
							assert_null(outbox_get(again, batch[i]->id));
							record_free(batch[i]);
						}
						batch[i] = NULL;
					}
					assert_int_equal(outbox_size(p.o), before + stored);
					assert_int_equal(outbox_size(again), before + stored);
					outbox_free(p.o);
				}
	}
	assert_true(failed >= 2 * 20);
}

/* ---- save ---- */

static int change_save(Prepared *p) {
	Record *a = p->a;

	a->state = REQUEST_PENDING;
	free(a->remote_id);
	a->remote_id = strdup("6b0ae5a796b6e03a6a9b57e3");
	free(a->remote_status);
	a->remote_status = strdup("pending");
	a->attempts = 1;
	return outbox_save(p->o, a);
}

static void test_outbox_save_failing_at_every_step_keeps_old_or_whole_new(void **state) {
	Fixture *f = *state;
	int failed = 0;

	/* From "empty" there is nothing to save. */
	for (size_t s = 1; s < ELEMENTSOF(prepares); s++) {
		int calls[_OP_MAX];

		learn_calls(f, prepares[s].fn, change_save, calls);
		assert_true(calls[OP_WRITE] >= 3);

		for (Op op = 0; op < _OP_MAX; op++)
			for (int n = 1; n <= calls[op]; n++)
				for (size_t e = 0; e < ELEMENTSOF(errnos); e++) {
					_cleanup_(outbox_freep) Outbox *again = NULL, *last = NULL;
					_cleanup_(json_object_putp) json_object *old = NULL, *new = NULL, *got = NULL;
					Prepared p;
					int k;

					wipe_state(f);
					prepares[s].fn(f, &p);
					old = disk_form(p.a);
					inject(op, n, errnos[e]);
					k = change_save(&p);
					store_set_ops(NULL);
					new = disk_form(p.a);
					print_message("save (%s): fail %s #%d with %s -> %d\n", prepares[s].name,
					              op_names[op], n, strerror(errnos[e]), k);
					assert_true(k == 0 || k == -errnos[e]);

					/* Counts follow what was stored (c, if there, stays queued). */
					assert_int_equal(outbox_count_state(p.o, REQUEST_QUEUED),
					                 (p.c_id[0] ? 1 : 0) + (k < 0 ? 1 : 0));
					assert_int_equal(outbox_count_state(p.o, REQUEST_PENDING), k == 0 ? 1 : 0);

					again = k == 0 ? reopen_checked(f) : reopen_read_only(f);
					assert_prepared_records(again, &p, true);
					got = served_form(again, p.a_id);
					/* Told failed: the old content, whole; told done: the new. */
					assert_true(json_object_equal(got, k == 0 ? new : old));
					again = outbox_free(again);
					if (k < 0) {
						failed++;
						assert_int_equal(outbox_save(p.o, p.a), 0);
						json_object_put(got);
						last = reopen_checked(f);
						got = served_form(last, p.a_id);
						assert_true(json_object_equal(got, new));
						assert_prepared_records(last, &p, true);
					}
					outbox_free(p.o);
				}
	}
	assert_true(failed >= 2 * 20);
}

/* ---- remove ---- */

static int change_remove(Prepared *p) {
	int k = outbox_remove(p->o, p->a);

	if (k >= 0)
		p->a = NULL;
	return k;
}

static void test_outbox_remove_failing_at_every_step_keeps_it_or_it_is_gone(void **state) {
	Fixture *f = *state;
	int failed = 0;

	for (size_t s = 1; s < ELEMENTSOF(prepares); s++) {
		int calls[_OP_MAX];

		learn_calls(f, prepares[s].fn, change_remove, calls);
		assert_true(calls[OP_WRITE] >= 1);
		assert_true(calls[OP_FSYNC] >= 1);

		for (Op op = 0; op < _OP_MAX; op++)
			for (int n = 1; n <= calls[op]; n++)
				for (size_t e = 0; e < ELEMENTSOF(errnos); e++) {
					_cleanup_(outbox_freep) Outbox *again = NULL, *last = NULL;
					Prepared p;
					int k;

					wipe_state(f);
					prepares[s].fn(f, &p);
					inject(op, n, errnos[e]);
					k = change_remove(&p);
					store_set_ops(NULL);
					print_message("remove (%s): fail %s #%d with %s -> %d\n", prepares[s].name,
					              op_names[op], n, strerror(errnos[e]), k);
					assert_true(k == 0 || k == -errnos[e]);

					again = k == 0 ? reopen_checked(f) : reopen_read_only(f);
					assert_prepared_records(again, &p, false);
					if (k == 0) {
						assert_null(outbox_get(p.o, p.a_id));
						assert_null(outbox_get(again, p.a_id));
						outbox_free(p.o);
						continue;
					}
					/* Still indexed, still there after a restart; a retry
					 * finishes it. */
					failed++;
					assert_ptr_equal(outbox_get(p.o, p.a_id), p.a);
					assert_non_null(outbox_get(again, p.a_id));
					again = outbox_free(again);
					assert_int_equal(change_remove(&p), 0);
					assert_null(outbox_get(p.o, p.a_id));
					outbox_free(p.o);
					last = reopen_checked(f);
					assert_null(outbox_get(last, p.a_id));
					assert_prepared_records(last, &p, false);
				}
	}
	assert_true(failed >= 2 * 6);
}

/* ---- damaged log at open ---- */

typedef struct Damage {
	char segment[NAME_MAX + 1];
	size_t off;
	char *bytes; /* the damaged entry as it is on disk */
	size_t len;
	char quarantine_name[NAME_MAX + 32];
	char a_id[RECORD_ID_MAX], b_id[RECORD_ID_MAX], c_id[RECORD_ID_MAX];
} Damage;

static void damage_done(Damage *d) {
	free(d->bytes);
	d->bytes = NULL;
}

static uint32_t le32(const unsigned char *p) {
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* Three records in one segment; a flipped bit in the middle one (seglog.c's
 * layout: 20-byte header with id, meta and params lengths, then the bytes). */
static void make_damaged_state(Fixture *f, Damage *d) {
	_cleanup_(freep) char *data = NULL;
	Outbox *o;
	size_t len = 0, off = 0;
	Record *r;

	wipe_state(f);
	damage_done(d);
	*d = (Damage) {};
	o = open_outbox(f);
	r = make_record(1000, "a");
	assert_int_equal(outbox_insert(o, r), 0);
	strcpy(d->a_id, r->id);
	r = make_record(1000, "b");
	assert_int_equal(outbox_insert(o, r), 0);
	strcpy(d->b_id, r->id);
	r = make_record(1000, "c");
	assert_int_equal(outbox_insert(o, r), 0);
	strcpy(d->c_id, r->id);
	outbox_free(o);

	snprintf(d->segment, sizeof d->segment, "%016x.log", 1);
	data = get_file(f->log, d->segment, &len);
	assert_non_null(data);
	for (int i = 0; i < 2; i++) {
		const unsigned char *h = (const unsigned char *) data + off;

		assert_memory_equal(h, "HLE1", 4);
		off += SEGLOG_HEADER_SIZE + h[5] + le32(h + 8) + le32(h + 12);
		if (i == 0)
			d->off = off;
	}
	d->len = off - d->off;
	assert_memory_equal(data + d->off + SEGLOG_HEADER_SIZE, d->b_id, strlen(d->b_id));
	data[d->off + d->len / 2] ^= 0x04;
	put_file(f->log, d->segment, data, len);
	d->bytes = malloc(d->len);
	assert_non_null(d->bytes);
	memcpy(d->bytes, data + d->off, d->len);
	snprintf(d->quarantine_name, sizeof d->quarantine_name, "%s@%zu", d->segment, d->off);
}

static bool bytes_at(const char *dir, const char *name, size_t off, const char *bytes, size_t len) {
	size_t got = 0;
	_cleanup_(freep) char *data = get_file(dir, name, &got);

	return data && got >= off + len && memcmp(data + off, bytes, len) == 0;
}

static bool in_quarantine(const Fixture *f, const Damage *d) {
	size_t got = 0;
	_cleanup_(freep) char *data = get_file(f->quarantine, d->quarantine_name, &got);

	return data && got == d->len && memcmp(data, d->bytes, d->len) == 0;
}

static bool segment_kept(const Fixture *f, const Damage *d) {
	return bytes_at(f->log, d->segment, d->off, d->bytes, d->len);
}

static void assert_served_without_b(Outbox *o, const Damage *d) {
	assert_int_equal(outbox_size(o), 2);
	assert_non_null(outbox_get(o, d->a_id));
	assert_non_null(outbox_get(o, d->c_id));
	assert_null(outbox_get(o, d->b_id));
	assert_non_null(outbox_get_client_ref(o, 1000, "c"));
}

/* A damaged entry whose copy into quarantine/ cannot be made: its segment
 * must stay (not compacted away), so that the bytes are still on disk, and a
 * later open with working storage keeps them in quarantine/. Any other
 * failing step at open (compaction included) must not lose them either. */
static void test_outbox_open_with_failing_quarantine_keeps_the_damaged_bytes(void **state) {
	Fixture *f = *state;
	_cleanup_(damage_done) Damage d = {};
	int calls[_OP_MAX], quarantine_steps = 0;

	make_damaged_state(f, &d);
	fault_reset();
	fault.max_write = 64;
	store_set_ops(&fake_ops);
	{
		_cleanup_(outbox_freep) Outbox *o = open_outbox(f);

		assert_int_equal(outbox_quarantined(o), 1);
		assert_served_without_b(o, &d);
	}
	store_set_ops(NULL);
	memcpy(calls, fault.calls, sizeof calls);
	/* Clean run: copied out, then the segment rewritten away. */
	assert_true(in_quarantine(f, &d));
	assert_false(segment_kept(f, &d));
	assert_int_equal(calls[OP_RENAMEAT], 1);
	assert_true(calls[OP_FSYNC] >= 4);

	for (Op op = 0; op < _OP_MAX; op++)
		for (int n = 1; n <= calls[op]; n++)
			for (size_t e = 0; e < ELEMENTSOF(errnos); e++) {
				_cleanup_(outbox_freep) Outbox *o = NULL, *again = NULL, *last = NULL;
				bool copied, kept;

				make_damaged_state(f, &d);
				inject(op, n, errnos[e]);
				/* A failing quarantine never stops the daemon from starting. */
				assert_int_equal(outbox_open(f->state_dir, &o), 0);
				outbox_release_damaged(o);
				store_set_ops(NULL);
				copied = in_quarantine(f, &d);
				kept = segment_kept(f, &d);
				print_message("open: fail %s #%d with %s%s: copied %d, segment kept %d\n",
				              op_names[op], n, strerror(errnos[e]),
				              fault.hit_quarantine_file ? " (quarantine file)" : "", copied, kept);

				assert_int_equal(outbox_quarantined(o), 1);
				assert_served_without_b(o, &d);
				/* The damaged bytes are somewhere, whole. */
				assert_true(copied || kept);
				if (fault.hit_quarantine_file) {
					quarantine_steps++;
					assert_false(copied);
					assert_true(kept);
				}
				o = outbox_free(o);

				/* Working storage: the copy is made (again, if the segment
				 * stayed), and nothing is served differently. */
				again = open_outbox(f);
				assert_int_equal(outbox_quarantined(again), kept ? 1 : 0);
				assert_served_without_b(again, &d);
				assert_true(in_quarantine(f, &d));
				assert_int_equal(count_entries(f->quarantine, NULL), 1);
				again = outbox_free(again);

				/* And the segment is gone by now: nothing more to find. */
				last = open_outbox(f);
				assert_int_equal(outbox_quarantined(last), 0);
				assert_served_without_b(last, &d);
				assert_false(segment_kept(f, &d));
				assert_true(in_quarantine(f, &d));
				assert_int_equal(count_entries(f->log, ".tmp"), 0);
				assert_int_equal(count_entries(f->quarantine, ".tmp"), 0);
			}
	/* The openat, the writes and the fsync of the quarantine copy, at least. */
	assert_true(quarantine_steps >= 2 * 3);
}

/* seglog_drop() unlinks, then fsyncs the directory; when that fsync fails the
 * file is gone all the same, and the segment must leave the table, or
 * compaction would pick it after every commit and compact nothing else (the
 * log would grow without bound). Shown with a damaged segment whose drop at
 * open meets a failing directory fsync, then thousands of saves. */
static void test_outbox_failed_segment_drop_does_not_stop_compaction(void **state) {
	enum { N = 10, ROUNDS = 60, PAD = 42000 };
	Fixture *f = *state;
	_cleanup_(damage_done) Damage d = {};
	_cleanup_(outbox_freep) Outbox *o = NULL;
	Record *rs[N];
	uint64_t live = 0;

	make_damaged_state(f, &d);
	fault_reset();
	fault.fail_fsync_after_drop = true;
	store_set_ops(&fake_ops);
	o = open_outbox(f);
	assert_true(fault.hit_drop_fsync);
	fault.fail_fsync_after_drop = false;
	fault.fsync_fake = true; /* thousands of saves: keep it fast */

	for (size_t i = 0; i < N; i++) {
		rs[i] = make_record(1001, NULL);
		assert_int_equal(outbox_insert(o, rs[i]), 0);
	}
	for (unsigned v = 1; v <= ROUNDS; v++) {
		live = 0;
		for (size_t i = 0; i < N; i++) {
			_cleanup_(freep) char *s = malloc(PAD + 1);

			assert_non_null(s);
			memset(s, 'a' + (int) (v % 26), PAD);
			s[PAD] = '\0';
			json_object_put(rs[i]->result);
			rs[i]->result = json_object_new_string(s);
			assert_int_equal(outbox_save(o, rs[i]), 0);
			live += PAD + 1024;
		}
	}
	store_set_ops(NULL);
	if (log_bytes(f) > 3 * live + 2 * (uint64_t) SEGLOG_SEGMENT_TARGET)
		fail_msg("log at %" PRIu64 " bytes for about %" PRIu64 " live", log_bytes(f), live);
}

int main(void) {
	const struct CMUnitTest tests[] = {
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
		T(test_outbox_insert_failing_at_every_step_stores_exactly_what_it_reports),
		T(test_outbox_insert_many_failing_at_every_step_stores_exactly_what_it_reports),
		T(test_outbox_save_failing_at_every_step_keeps_old_or_whole_new),
		T(test_outbox_remove_failing_at_every_step_keeps_it_or_it_is_gone),
		T(test_outbox_open_with_failing_quarantine_keeps_the_damaged_bytes),
		T(test_outbox_failed_segment_drop_does_not_stop_compaction),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
