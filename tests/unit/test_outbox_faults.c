/* The outbox under storage faults, one failing syscall at a time at every step of
 * every durable change (insert, save, remove, and the quarantine at open), through the
 * store seam; after each, the state directory is reopened and must hold exactly what
 * the caller was told: the old record or the whole new one, never half of one, never
 * a record nobody was told about, no tmp file, nothing quarantined that was written
 * whole. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "outbox.h"
#include "store.h"

#define LOOP_ID "65f1234567890abcdef12345"
#define T0 ((usec_t) 1795874531000000ULL)

typedef enum Op {
	OP_UNLINKAT,
	OP_OPENAT,
	OP_WRITE,
	OP_FSYNC,
	OP_RENAMEAT,
	OP_SYNCFS,
	_OP_MAX,
} Op;

static const char *const op_names[_OP_MAX] = { "unlinkat", "openat", "write", "fsync", "renameat", "syncfs" };

static struct {
	int calls[_OP_MAX];
	Op fail_op;
	int fail_at;
	int fail_errno;
	size_t max_write;
} fault;

static void fault_reset(void) {
	memset(&fault, 0, sizeof fault);
	fault.fail_op = _OP_MAX;
}

static bool fault_hit(Op op) {
	fault.calls[op]++;
	if (fault.fail_op == op && fault.calls[op] == fault.fail_at) {
		errno = fault.fail_errno;
		return true;
	}
	return false;
}

static int fake_openat(int dirfd, const char *path, int flags, mode_t mode) {
	return fault_hit(OP_OPENAT) ? -1 : openat(dirfd, path, flags, mode);
}

static ssize_t fake_write(int fd, const void *buf, size_t len) {
	if (fault_hit(OP_WRITE))
		return -1;
	if (fault.max_write > 0 && len > fault.max_write)
		len = fault.max_write;
	return write(fd, buf, len);
}

static int fake_fsync(int fd) {
	return fault_hit(OP_FSYNC) ? -1 : fsync(fd);
}

static int fake_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
	return fault_hit(OP_RENAMEAT) ? -1 : renameat(olddirfd, oldpath, newdirfd, newpath);
}

static int fake_unlinkat(int dirfd, const char *path, int flags) {
	return fault_hit(OP_UNLINKAT) ? -1 : unlinkat(dirfd, path, flags);
}

static int fake_syncfs(int fd) {
	return fault_hit(OP_SYNCFS) ? -1 : syncfs(fd);
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
	char path[64];
	char state_dir[96];
	char requests[128];
	char quarantine[128];
} Fixture;

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
	return remove(path);
}

static void wipe_state(Fixture *f) {
	nftw(f->state_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state) {
	Fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	snprintf(f->path, sizeof f->path, "/tmp/hitld-test-outbox-faults-XXXXXX");
	assert_non_null(mkdtemp(f->path));
	snprintf(f->state_dir, sizeof f->state_dir, "%s/state", f->path);
	snprintf(f->requests, sizeof f->requests, "%s/requests", f->state_dir);
	snprintf(f->quarantine, sizeof f->quarantine, "%s/quarantine", f->state_dir);
	fault_reset();
	store_set_ops(NULL);
	*state = f;
	return 0;
}

static int teardown(void **state) {
	Fixture *f = *state;

	store_set_ops(NULL);
	nftw(f->path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static usec_t clock_now = T0;

static Record *make_record(uid_t uid, const char *client_ref) {
	Record *r = record_new();

	assert_non_null(r);
	clock_now += USEC_PER_MSEC;
	assert_int_equal(record_make_id(clock_now, r->id), 0);
	r->owner_uid = uid;
	r->client_ref = client_ref ? strdup(client_ref) : NULL;
	r->loop_id = strdup(LOOP_ID);
	r->params = json_tokener_parse("{\"loop_id\":\"" LOOP_ID "\",\"request_text\":\"Ship build 4812 to production "
	                               "now, or wait for the morning?\",\"response_type\":\"text\",\"priority\":\"medium\"}");
	assert_non_null(r->params);
	r->created_at = r->updated_at = clock_now;
	return r;
}

static Outbox *open_outbox(const Fixture *f) {
	Outbox *o = NULL;

	assert_int_equal(outbox_open(f->state_dir, &o), 0);
	return o;
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

static json_object *disk_form(const Record *r) {
	json_object *j = NULL;

	assert_int_equal(record_to_json(r, &j), 0);
	return j;
}

/* The record's file as JSON (not through the outbox, which may keep params
 * on disk only). */
static json_object *file_form(const Fixture *f, const Record *r) {
	_cleanup_(closep) int fd = open(f->requests, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_(freep) char *name = NULL, *text = NULL;
	json_object *j;
	size_t len;

	assert_true(fd >= 0);
	assert_true(asprintf(&name, "%s.json", r->id) > 0);
	assert_int_equal(store_read_file(fd, name, OUTBOX_RECORD_MAX, &text, &len), 0);
	j = json_tokener_parse(text);
	assert_non_null(j);
	return j;
}

/* Reopens the state directory with the real syscalls; checks nothing was
 * quarantined and no tmp survived. */
static Outbox *reopen_checked(const Fixture *f) {
	Outbox *o;

	store_set_ops(NULL);
	assert_int_equal(count_entries(f->requests, ".tmp"), 0);
	o = open_outbox(f);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_int_equal(count_entries(f->quarantine, NULL), 0);
	return o;
}

/* How many calls of each kind op_fn makes on a clean run. */
typedef int (*change_fn)(Fixture *f, Outbox *o, Record **io);

static void learn_calls(Fixture *f, Record *(*prepare)(Fixture *, Outbox **), change_fn change, int ret_calls[_OP_MAX]) {
	_cleanup_(outbox_freep) Outbox *o = NULL;
	Record *r;

	wipe_state(f);
	r = prepare(f, &o);
	fault_reset();
	fault.max_write = 64;
	store_set_ops(&fake_ops);
	assert_int_equal(change(f, o, &r), 0);
	store_set_ops(NULL);
	memcpy(ret_calls, fault.calls, sizeof fault.calls);
}

/* ---- insert ---- */

static Record *prepare_one(Fixture *f, Outbox **ret) {
	Outbox *o = open_outbox(f);
	Record *a = make_record(1000, "a");

	assert_int_equal(outbox_insert(o, a), 0);
	*ret = o;
	return a;
}

static Record *pending_insert;

static int change_insert(Fixture *f, Outbox *o, Record **io) {
	int k;

	pending_insert = make_record(1000, "b");
	k = outbox_insert(o, pending_insert);
	if (k >= 0)
		pending_insert = NULL;   /* the outbox owns it */
	return k;
}

static void test_outbox_insert_failing_at_every_step_stores_nothing(void **state) {
	Fixture *f = *state;
	int calls[_OP_MAX];
	int steps = 0;

	learn_calls(f, prepare_one, change_insert, calls);
	assert_true(calls[OP_WRITE] >= 3);
	assert_int_equal(calls[OP_RENAMEAT], 1);
	assert_int_equal(calls[OP_FSYNC], 2);

	for (Op op = 0; op < _OP_MAX; op++)
		for (int n = 1; n <= calls[op]; n++)
			for (size_t e = 0; e < ELEMENTSOF(errnos); e++) {
				_cleanup_(outbox_freep) Outbox *o = NULL, *again = NULL;
				_cleanup_(record_freep) Record *b = NULL;
				Record *a;
				int k;

				wipe_state(f);
				a = prepare_one(f, &o);
				fault_reset();
				fault.max_write = 64;
				fault.fail_op = op;
				fault.fail_at = n;
				fault.fail_errno = errnos[e];
				store_set_ops(&fake_ops);
				k = change_insert(f, o, NULL);
				store_set_ops(NULL);
				b = TAKE_PTR(pending_insert);
				print_message("insert: fail %s #%d with %s -> %d\n", op_names[op], n, strerror(errnos[e]), k);

				/* Told "not stored": in memory and on disk, after a restart. */
				assert_int_equal(k, -errnos[e]);
				assert_non_null(b);
				assert_int_equal(outbox_size(o), 1);
				assert_null(outbox_get(o, b->id));
				assert_null(outbox_get_client_ref(o, 1000, "b"));
				again = reopen_checked(f);
				assert_int_equal(outbox_size(again), 1);
				assert_non_null(outbox_get(again, a->id));
				assert_null(outbox_get(again, b->id));
				assert_int_equal(count_entries(f->requests, NULL), 1);
				steps++;
			}
	assert_true(steps >= 2 * 8);
}

/* ---- group insert (what request.submit uses) ---- */

#define BATCH 3
static Record *batch[BATCH];
static int batch_results[BATCH];

static int change_insert_many(Fixture *f, Outbox *o, Record **io) {
	static const char *const refs[BATCH] = { "b", "c", "d" };

	for (size_t i = 0; i < BATCH; i++)
		batch[i] = make_record(1000 + (uid_t) i, refs[i]);
	return outbox_insert_many(o, batch, BATCH, batch_results);
}

static void test_outbox_insert_many_failing_at_every_step_stores_exactly_what_it_reports(void **state) {
	Fixture *f = *state;
	int calls[_OP_MAX];
	int steps = 0;

	learn_calls(f, prepare_one, change_insert_many, calls);
	assert_true(calls[OP_WRITE] >= 3 * BATCH);
	assert_int_equal(calls[OP_RENAMEAT], BATCH);

	for (Op op = 0; op < _OP_MAX; op++)
		for (int n = 1; n <= calls[op]; n++)
			for (size_t e = 0; e < ELEMENTSOF(errnos); e++) {
				_cleanup_(outbox_freep) Outbox *o = NULL, *again = NULL;
				size_t stored = 0;
				Record *a;
				int k;

				wipe_state(f);
				a = prepare_one(f, &o);
				fault_reset();
				fault.max_write = 64;
				fault.fail_op = op;
				fault.fail_at = n;
				fault.fail_errno = errnos[e];
				store_set_ops(&fake_ops);
				k = change_insert_many(f, o, NULL);
				store_set_ops(NULL);
				print_message("insert_many: fail %s #%d with %s -> %d [%d %d %d]\n", op_names[op], n,
				              strerror(errnos[e]), k, batch_results[0], batch_results[1], batch_results[2]);
				assert_true(k < 0);

				again = reopen_checked(f);
				assert_non_null(outbox_get(again, a->id));
				for (size_t i = 0; i < BATCH; i++) {
					/* What the caller was told is what a restart finds. */
					if (batch_results[i] == 0) {
						assert_ptr_equal(outbox_get(o, batch[i]->id), batch[i]);
						assert_non_null(outbox_get(again, batch[i]->id));
						stored++;
					} else {
						assert_null(outbox_get(o, batch[i]->id));
						assert_null(outbox_get(again, batch[i]->id));
						record_free(batch[i]);
					}
					batch[i] = NULL;
				}
				assert_int_equal(outbox_size(o), 1 + stored);
				assert_int_equal(outbox_size(again), 1 + stored);
				assert_int_equal(count_entries(f->requests, NULL), 1 + stored);
				steps++;
			}
	assert_true(steps >= 2 * 10);
}

/* ---- save ---- */

static int change_save(Fixture *f, Outbox *o, Record **io) {
	Record *a = *io;

	a->state = REQUEST_PENDING;
	a->remote_id = strdup("6b0ae5a796b6e03a6a9b57e3");
	a->remote_status = strdup("pending");
	a->attempts = 1;
	return outbox_save(o, a);
}

static void test_outbox_save_failing_at_every_step_keeps_old_or_whole_new(void **state) {
	Fixture *f = *state;
	int calls[_OP_MAX];
	int steps = 0;

	learn_calls(f, prepare_one, change_save, calls);

	for (Op op = 0; op < _OP_MAX; op++)
		for (int n = 1; n <= calls[op]; n++)
			for (size_t e = 0; e < ELEMENTSOF(errnos); e++) {
				_cleanup_(outbox_freep) Outbox *o = NULL, *again = NULL;
				_cleanup_(json_object_putp) json_object *old = NULL, *new = NULL, *got = NULL;
				bool after_rename = op == OP_FSYNC && n == calls[OP_FSYNC];
				Record *a, *b;
				int k;

				wipe_state(f);
				a = prepare_one(f, &o);
				old = disk_form(a);
				fault_reset();
				fault.max_write = 64;
				fault.fail_op = op;
				fault.fail_at = n;
				fault.fail_errno = errnos[e];
				store_set_ops(&fake_ops);
				k = change_save(f, o, &a);
				store_set_ops(NULL);
				new = disk_form(a);
				print_message("save: fail %s #%d with %s -> %d\n", op_names[op], n, strerror(errnos[e]), k);

				assert_int_equal(k, -errnos[e]);
				/* Counts stay with the last saved state. */
				assert_int_equal(outbox_count_state(o, REQUEST_QUEUED), 1);
				assert_int_equal(outbox_count_state(o, REQUEST_PENDING), 0);

				again = reopen_checked(f);
				assert_int_equal(outbox_size(again), 1);
				b = outbox_get(again, a->id);
				assert_non_null(b);
				got = file_form(f, a);
				/* Only a failed directory fsync may leave the new content,
				 * and then whole. */
				if (after_rename)
					assert_true(json_object_equal(got, new) || json_object_equal(got, old));
				else
					assert_true(json_object_equal(got, old));
				steps++;
			}
	assert_true(steps >= 2 * 8);
}

/* ---- remove ---- */

static int change_remove(Fixture *f, Outbox *o, Record **io) {
	int k = outbox_remove(o, *io);

	if (k >= 0)
		*io = NULL;
	return k;
}

static void test_outbox_remove_failing_at_every_step_keeps_it_or_it_is_gone(void **state) {
	Fixture *f = *state;
	int calls[_OP_MAX];

	learn_calls(f, prepare_one, change_remove, calls);
	assert_int_equal(calls[OP_UNLINKAT], 1);
	assert_int_equal(calls[OP_FSYNC], 1);

	for (Op op = 0; op < _OP_MAX; op++)
		for (int n = 1; n <= calls[op]; n++)
			for (size_t e = 0; e < ELEMENTSOF(errnos); e++) {
				_cleanup_(outbox_freep) Outbox *o = NULL, *again = NULL;
				char id[RECORD_ID_MAX];
				Record *a;
				int k;

				wipe_state(f);
				a = prepare_one(f, &o);
				snprintf(id, sizeof id, "%s", a->id);
				fault_reset();
				fault.fail_op = op;
				fault.fail_at = n;
				fault.fail_errno = errnos[e];
				store_set_ops(&fake_ops);
				k = change_remove(f, o, &a);
				store_set_ops(NULL);

				assert_int_equal(k, -errnos[e]);
				/* Still indexed; a retry finishes it. */
				assert_ptr_equal(outbox_get(o, id), a);
				again = reopen_checked(f);
				assert_true(outbox_size(again) <= 1);
				assert_int_equal(change_remove(f, o, &a), 0);
				assert_null(outbox_get(o, id));
			}
}

/* ---- quarantine at open ---- */

static const char torn[] = "{\"version\":1,\"id\":\"r_01JD";

/* One good record, one torn file, one stray tmp. */
static void make_dirty_state(Fixture *f) {
	_cleanup_(outbox_freep) Outbox *o = NULL;
	char path[192];
	int fd;

	wipe_state(f);
	(void) prepare_one(f, &o);
	snprintf(path, sizeof path, "%s/r_01JDX3Q8M6ABCDEFGHJKMNPQRS.json", f->requests);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, torn, strlen(torn)), (ssize_t) strlen(torn));
	close(fd);
	snprintf(path, sizeof path, "%s/r_01JDX3Q8M6ABCDEFGHJKMNPQRT.json.tmp", f->requests);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
}

static size_t json_files(const Fixture *f) {
	return count_entries(f->requests, ".json") + count_entries(f->quarantine, ".json");
}

static void test_outbox_open_with_failing_quarantine_loses_no_file(void **state) {
	Fixture *f = *state;
	int calls[_OP_MAX];

	make_dirty_state(f);
	fault_reset();
	store_set_ops(&fake_ops);
	{
		_cleanup_(outbox_freep) Outbox *o = open_outbox(f);

		assert_int_equal(outbox_quarantined(o), 1);
	}
	store_set_ops(NULL);
	memcpy(calls, fault.calls, sizeof calls);
	assert_true(calls[OP_FSYNC] >= 2);   /* the move: both directories */

	for (Op op = 0; op < _OP_MAX; op++)
		for (int n = 1; n <= calls[op]; n++) {
			_cleanup_(outbox_freep) Outbox *o = NULL, *again = NULL;

			make_dirty_state(f);
			fault_reset();
			fault.fail_op = op;
			fault.fail_at = n;
			fault.fail_errno = EIO;
			store_set_ops(&fake_ops);
			/* A failing quarantine never stops the daemon from starting. */
			assert_int_equal(outbox_open(f->state_dir, &o), 0);
			store_set_ops(NULL);
			print_message("open: fail %s #%d\n", op_names[op], n);

			/* The good record is served; the torn file is kept in one
			 * place or the other, never gone. */
			assert_int_equal(outbox_size(o), 1);
			assert_int_equal(outbox_quarantined(o), 1);
			assert_int_equal(json_files(f), 2);
			o = outbox_free(o);
			assert_int_equal(outbox_open(f->state_dir, &again), 0);
			assert_int_equal(outbox_size(again), 1);
			assert_int_equal(json_files(f), 2);
		}
}

int main(void) {
	const struct CMUnitTest tests[] = {
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
		T(test_outbox_insert_failing_at_every_step_stores_nothing),
		T(test_outbox_insert_many_failing_at_every_step_stores_exactly_what_it_reports),
		T(test_outbox_save_failing_at_every_step_keeps_old_or_whole_new),
		T(test_outbox_remove_failing_at_every_step_keeps_it_or_it_is_gone),
		T(test_outbox_open_with_failing_quarantine_loses_no_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
