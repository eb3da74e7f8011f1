/* The outbox: durable insert/save/remove, reopen, quarantine of bad files,
 * lookups, counts and seq-ordered iteration. Real temp directories; the
 * store seam only to make a write fail. */
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

typedef struct Fixture {
	char path[64];
	char state_dir[96];
	char requests[128];
	char quarantine[128];
} Fixture;

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
	return remove(path);
}

static int setup(void **state) {
	Fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	snprintf(f->path, sizeof f->path, "/tmp/hitld-test-outbox-XXXXXX");
	assert_non_null(mkdtemp(f->path));
	/* state_dir itself does not exist yet: outbox_open creates it. */
	snprintf(f->state_dir, sizeof f->state_dir, "%s/state", f->path);
	snprintf(f->requests, sizeof f->requests, "%s/requests", f->state_dir);
	snprintf(f->quarantine, sizeof f->quarantine, "%s/quarantine", f->state_dir);
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
	r->params = json_tokener_parse("{\"loop_id\":\"" LOOP_ID "\",\"request_text\":\"Ship it?\","
	                               "\"response_type\":\"text\",\"priority\":\"medium\"}");
	assert_non_null(r->params);
	r->created_at = r->updated_at = clock_now;
	return r;
}

static Outbox *open_outbox(const Fixture *f) {
	Outbox *o = NULL;

	assert_int_equal(outbox_open(f->state_dir, &o), 0);
	assert_non_null(o);
	return o;
}

static Record *insert(Outbox *o, uid_t uid, const char *client_ref) {
	Record *r = make_record(uid, client_ref);

	assert_int_equal(outbox_insert(o, r), 0);
	return r;
}

static char *path_in(const char *dir, const char *name) {
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static void put_file(const char *dir, const char *name, const void *data, size_t len) {
	_cleanup_(freep) char *p = path_in(dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t) len);
	close(fd);
}

static char *get_file(const char *dir, const char *name, size_t *ret_len) {
	_cleanup_(closep) int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *data = NULL;
	size_t len = 0;

	assert_true(fd >= 0);
	if (store_read_file(fd, name, 1 << 24, &data, &len) < 0)
		return NULL;
	if (ret_len)
		*ret_len = len;
	return data;
}

static bool file_exists(const char *dir, const char *name) {
	_cleanup_(freep) char *p = path_in(dir, name);

	return access(p, F_OK) == 0;
}

static size_t count_files(const char *dir) {
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static char *file_name(const Record *r) {
	char *name;

	assert_true(asprintf(&name, "%s.json", r->id) > 0);
	return name;
}

static json_object *disk_form(const Record *r) {
	json_object *j = NULL;

	assert_int_equal(record_to_json(r, &j), 0);
	return j;
}

/* A valid record file's bytes, for the tests that damage one. */
static char *valid_record_text(const Record *r) {
	_cleanup_(json_object_putp) json_object *j = disk_form(r);

	return strdup(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
}

static void test_outbox_open_creates_private_directories(void **state) {
	Fixture *f = *state;
	_cleanup_(outbox_freep) Outbox *o = open_outbox(f);
	struct stat st;

	assert_int_equal(stat(f->state_dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(f->requests, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(f->quarantine, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(outbox_size(o), 0);
	assert_null(outbox_first(o));
	assert_true(outbox_state_dirfd(o) >= 0);
}

static void test_outbox_insert_assigns_seq_and_writes_the_file(void **state) {
	Fixture *f = *state;
	_cleanup_(outbox_freep) Outbox *o = open_outbox(f);
	Record *a = insert(o, 1000, NULL), *b = insert(o, 1000, NULL);
	_cleanup_(freep) char *name = file_name(b), *text = NULL;
	_cleanup_(json_object_putp) json_object *on_disk = NULL, *expected = disk_form(b);

	assert_int_equal(a->seq, 1);
	assert_int_equal(b->seq, 2);
	assert_int_equal(outbox_size(o), 2);
	assert_ptr_equal(outbox_get(o, a->id), a);
	assert_ptr_equal(outbox_get(o, b->id), b);
	assert_null(outbox_get(o, "r_01ARZ3NDEKTSV4RRFFQ69G5FAV"));
	assert_null(outbox_get(o, NULL));

	text = get_file(f->requests, name, NULL);
	assert_non_null(text);
	on_disk = json_tokener_parse(text);
	assert_true(json_object_equal(on_disk, expected));
	assert_false(file_exists(f->requests, "*.tmp"));
	assert_int_equal(count_files(f->requests), 2);
}

static void test_outbox_reopen_sees_same_records_and_continues_seq(void **state) {
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *a = insert(o, 1000, "ref-a"), *b = insert(o, 1001, NULL), *c = insert(o, 1000, NULL);
	_cleanup_(json_object_putp) json_object *ja = NULL, *jc = NULL;
	char b_id[RECORD_ID_MAX];
	Record *r;

	a->state = REQUEST_PENDING;
	a->remote_id = strdup("65f1234567890abcdef12348");
	a->remote_status = strdup("pending");
	a->submitted_at = clock_now;
	a->attempts = 1;
	assert_int_equal(outbox_save(o, a), 0);
	strcpy(b_id, b->id);
	assert_int_equal(outbox_remove(o, b), 0);
	ja = disk_form(a);
	jc = disk_form(c);
	o = outbox_free(o);

	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 2);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_null(outbox_get(o, b_id));
	r = outbox_first(o);
	assert_non_null(r);
	{
		assert_int_equal(outbox_need_params(o, r), 0);
		_cleanup_(json_object_putp) json_object *j = disk_form(r);
		assert_true(json_object_equal(j, ja));
	}
	r = outbox_next(o, r);
	assert_non_null(r);
	{
		assert_int_equal(outbox_need_params(o, r), 0);
		_cleanup_(json_object_putp) json_object *j = disk_form(r);
		assert_true(json_object_equal(j, jc));
	}
	assert_null(outbox_next(o, r));
	assert_non_null(outbox_get_client_ref(o, 1000, "ref-a"));
	assert_int_equal(outbox_count_state(o, REQUEST_PENDING), 1);
	assert_int_equal(outbox_count_state(o, REQUEST_QUEUED), 1);

	/* seq goes on from the highest one on disk (3), not from the count. */
	r = insert(o, 1000, NULL);
	assert_int_equal(r->seq, 4);
	outbox_free(o);
}

/* Writes damaged files next to one good record, reopens, and checks that
 * the good one is served and every bad one kept in quarantine/ unchanged. */
static void test_outbox_quarantines_unreadable_files_and_still_opens(void **state) {
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *good = insert(o, 1000, NULL);
	_cleanup_(record_freep) Record *other = make_record(1000, NULL), *mismatch = make_record(1000, NULL);
	_cleanup_(freep) char *good_name = file_name(good), *text = valid_record_text(other);
	_cleanup_(freep) char *truncated_name = NULL, *garbage_name = NULL, *wrong_type_name = NULL,
	                      *mismatch_name = NULL, *wrong_type = NULL;
	_cleanup_(json_object_putp) json_object *j = disk_form(other);
	static const char garbage[] = "\x7f" "ELF\x02\x01\x01\0\0\0garbage";
	struct Damaged {
		const char *name;
		const char *data;
		size_t len;
	} bad[5];
	char good_id[RECORD_ID_MAX];
	size_t n = 0;

	strcpy(good_id, good->id);
	o = outbox_free(o);

	/* torn write: the first half of a valid record */
	assert_true(asprintf(&truncated_name, "%s.json", other->id) > 0);
	bad[n++] = (struct Damaged) { truncated_name, text, strlen(text) / 2 };
	/* binary garbage under a valid name */
	assert_true(asprintf(&garbage_name, "%s.json", mismatch->id) > 0);
	/* valid JSON, wrong type for seq */
	json_object_object_add(j, "seq", json_object_new_string("7"));
	wrong_type = strdup(json_object_to_json_string(j));
	clock_now += USEC_PER_MSEC;
	{
		char id[RECORD_ID_MAX];
		assert_int_equal(record_make_id(clock_now, id), 0);
		assert_true(asprintf(&wrong_type_name, "%s.json", id) > 0);
		assert_int_equal(record_make_id(clock_now + USEC_PER_MSEC, id), 0);
		/* a complete valid record whose id is not its file name */
		assert_true(asprintf(&mismatch_name, "%s.json", id) > 0);
	}
	bad[n++] = (struct Damaged) { garbage_name, garbage, sizeof garbage - 1 };
	bad[n++] = (struct Damaged) { wrong_type_name, wrong_type, strlen(wrong_type) };
	bad[n++] = (struct Damaged) { mismatch_name, text, strlen(text) };
	bad[n++] = (struct Damaged) { "notes.txt", "hello", 5 };
	for (size_t i = 0; i < n; i++)
		put_file(f->requests, bad[i].name, bad[i].data, bad[i].len);

	o = open_outbox(f);
	assert_int_equal(outbox_quarantined(o), n);
	assert_int_equal(outbox_size(o), 1);
	assert_non_null(outbox_get(o, good_id));
	assert_null(outbox_get(o, other->id));
	assert_int_equal(outbox_count_state(o, REQUEST_QUEUED), 1);
	assert_int_equal(outbox_count_live_uid(o, 1000), 1);

	assert_int_equal(count_files(f->requests), 1);
	assert_true(file_exists(f->requests, good_name));
	assert_int_equal(count_files(f->quarantine), n);
	for (size_t i = 0; i < n; i++) {
		size_t len = 0;
		_cleanup_(freep) char *kept = get_file(f->quarantine, bad[i].name, &len);

		if (!kept)
			fail_msg("%s not in quarantine", bad[i].name);
		assert_int_equal(len, bad[i].len);
		assert_memory_equal(kept, bad[i].data, len);
	}
	o = outbox_free(o);

	/* Quarantined once: the next open finds nothing bad. */
	o = open_outbox(f);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_int_equal(outbox_size(o), 1);
	assert_int_equal(count_files(f->quarantine), n);
	outbox_free(o);
}

static void test_outbox_quarantine_logs_file_and_reason(void **state) {
	Fixture *f = *state;
	_cleanup_(outbox_freep) Outbox *o = NULL;
	char log_path[128];
	_cleanup_(freep) char *logged = NULL;
	int saved, fd;

	assert_int_equal(mkdir(f->state_dir, 0700), 0);
	assert_int_equal(mkdir(f->requests, 0700), 0);
	put_file(f->requests, "r_01ARZ3NDEKTSV4RRFFQ69G5FAV.json", "{\"version\":1,", 13);

	snprintf(log_path, sizeof log_path, "%s/log", f->path);
	fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	o = open_outbox(f);
	dup2(saved, STDERR_FILENO);
	close(saved);

	logged = get_file(f->path, "log", NULL);
	assert_non_null(logged);
	assert_non_null(strstr(logged, "r_01ARZ3NDEKTSV4RRFFQ69G5FAV.json"));
	assert_non_null(strstr(logged, "not valid JSON"));
	assert_true(strncmp(logged, "<4>", 3) == 0); /* LOG_WARNING */
}

static void test_outbox_quarantine_never_overwrites_an_earlier_one(void **state) {
	Fixture *f = *state;
	static const char name[] = "r_01ARZ3NDEKTSV4RRFFQ69G5FAV.json";
	_cleanup_(outbox_freep) Outbox *o = NULL;
	_cleanup_(freep) char *first = NULL, *second = NULL;

	assert_int_equal(mkdir(f->state_dir, 0700), 0);
	assert_int_equal(mkdir(f->requests, 0700), 0);
	assert_int_equal(mkdir(f->quarantine, 0700), 0);
	put_file(f->quarantine, name, "first", 5);
	put_file(f->requests, name, "second", 6);

	o = open_outbox(f);
	assert_int_equal(outbox_quarantined(o), 1);
	first = get_file(f->quarantine, name, NULL);
	assert_string_equal(first, "first");
	second = get_file(f->quarantine, "r_01ARZ3NDEKTSV4RRFFQ69G5FAV.json.1", NULL);
	assert_non_null(second);
	assert_string_equal(second, "second");
}

static void test_outbox_removes_stray_tmp_without_quarantine(void **state) {
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *r = insert(o, 1000, NULL);
	_cleanup_(freep) char *name = file_name(r), *tmp = NULL;

	o = outbox_free(o);
	assert_true(asprintf(&tmp, "%s.tmp", name) > 0);
	put_file(f->requests, tmp, "{\"half", 6);
	put_file(f->requests, "r_01ARZ3NDEKTSV4RRFFQ69G5FAV.json.tmp", "", 0);

	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 1);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_false(file_exists(f->requests, tmp));
	assert_false(file_exists(f->requests, "r_01ARZ3NDEKTSV4RRFFQ69G5FAV.json.tmp"));
	assert_true(file_exists(f->requests, name));
	assert_int_equal(count_files(f->quarantine), 0);
	outbox_free(o);
}

static void test_outbox_client_ref_lookup_is_per_uid(void **state) {
	Fixture *f = *state;
	_cleanup_(outbox_freep) Outbox *o = open_outbox(f);
	Record *a = insert(o, 1000, "deploy-1"), *b = insert(o, 1001, "deploy-1");
	_cleanup_(record_freep) Record *again = make_record(1000, "deploy-1");

	assert_ptr_equal(outbox_get_client_ref(o, 1000, "deploy-1"), a);
	assert_ptr_equal(outbox_get_client_ref(o, 1001, "deploy-1"), b);
	assert_null(outbox_get_client_ref(o, 1002, "deploy-1"));
	assert_null(outbox_get_client_ref(o, 1000, "deploy-2"));
	assert_null(outbox_get_client_ref(o, 1000, NULL));

	assert_int_equal(outbox_insert(o, again), -EEXIST);
	assert_int_equal(again->seq, 0);
	assert_int_equal(outbox_size(o), 2);

	assert_int_equal(outbox_remove(o, a), 0);
	assert_null(outbox_get_client_ref(o, 1000, "deploy-1"));
	assert_ptr_equal(outbox_get_client_ref(o, 1001, "deploy-1"), b);
	assert_int_equal(outbox_insert(o, again), 0);
	assert_ptr_equal(outbox_get_client_ref(o, 1000, "deploy-1"), TAKE_PTR(again));
}

static void test_outbox_insert_refuses_duplicate_id(void **state) {
	Fixture *f = *state;
	_cleanup_(outbox_freep) Outbox *o = open_outbox(f);
	Record *a = insert(o, 1000, NULL);
	_cleanup_(record_freep) Record *twin = make_record(1000, NULL);

	strcpy(twin->id, a->id);
	assert_int_equal(outbox_insert(o, twin), -EEXIST);
	assert_int_equal(outbox_size(o), 1);
	assert_ptr_equal(outbox_get(o, a->id), a);
}

static void test_outbox_insert_refuses_record_that_would_not_read_back(void **state) {
	Fixture *f = *state;
	_cleanup_(outbox_freep) Outbox *o = open_outbox(f);
	_cleanup_(record_freep) Record *no_loop = make_record(1000, NULL), *bad_id = make_record(1000, NULL);

	free(no_loop->loop_id);
	no_loop->loop_id = NULL;
	assert_int_equal(outbox_insert(o, no_loop), -EINVAL);
	strcpy(bad_id->id, "r_nope");
	assert_int_equal(outbox_insert(o, bad_id), -EINVAL);
	assert_int_equal(outbox_size(o), 0);
	assert_int_equal(count_files(f->requests), 0);
}

static void test_outbox_counts_follow_saves_and_removes(void **state) {
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *a = insert(o, 1000, NULL), *b = insert(o, 1000, NULL), *c = insert(o, 1000, NULL);
	Record *d = insert(o, 1001, NULL);

	assert_int_equal(outbox_count_state(o, REQUEST_QUEUED), 4);
	assert_int_equal(outbox_count_live_uid(o, 1000), 3);
	assert_int_equal(outbox_count_live_uid(o, 1001), 1);
	assert_int_equal(outbox_count_live_uid(o, 4242), 0);

	a->state = REQUEST_SUBMITTING;
	assert_int_equal(outbox_save(o, a), 0);
	assert_int_equal(outbox_count_state(o, REQUEST_QUEUED), 3);
	assert_int_equal(outbox_count_state(o, REQUEST_SUBMITTING), 1);
	assert_int_equal(outbox_count_live_uid(o, 1000), 3);

	/* Changed but not saved: counts stay with what is on disk. */
	b->state = REQUEST_CANCELLED;
	assert_int_equal(outbox_count_state(o, REQUEST_CANCELLED), 0);
	assert_int_equal(outbox_count_live_uid(o, 1000), 3);
	assert_int_equal(outbox_save(o, b), 0);
	assert_int_equal(outbox_count_state(o, REQUEST_CANCELLED), 1);
	assert_int_equal(outbox_count_state(o, REQUEST_QUEUED), 2);
	assert_int_equal(outbox_count_live_uid(o, 1000), 2);

	/* Saving the same state again changes nothing. */
	assert_int_equal(outbox_save(o, b), 0);
	assert_int_equal(outbox_count_state(o, REQUEST_CANCELLED), 1);
	assert_int_equal(outbox_count_live_uid(o, 1000), 2);

	a->state = REQUEST_COMPLETED;
	assert_int_equal(outbox_save(o, a), 0);
	assert_int_equal(outbox_count_state(o, REQUEST_SUBMITTING), 0);
	assert_int_equal(outbox_count_state(o, REQUEST_COMPLETED), 1);
	assert_int_equal(outbox_count_live_uid(o, 1000), 1);

	assert_int_equal(outbox_remove(o, a), 0); /* terminal: live unchanged */
	assert_int_equal(outbox_count_state(o, REQUEST_COMPLETED), 0);
	assert_int_equal(outbox_count_live_uid(o, 1000), 1);
	assert_int_equal(outbox_remove(o, c), 0); /* live */
	assert_int_equal(outbox_count_live_uid(o, 1000), 0);
	assert_int_equal(outbox_count_state(o, REQUEST_QUEUED), 1);
	(void) d;
	o = outbox_free(o);

	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 2);
	assert_int_equal(outbox_count_state(o, REQUEST_QUEUED), 1);
	assert_int_equal(outbox_count_state(o, REQUEST_CANCELLED), 1);
	assert_int_equal(outbox_count_live_uid(o, 1000), 0);
	assert_int_equal(outbox_count_live_uid(o, 1001), 1);
	assert_int_equal(outbox_count_state(o, _REQUEST_STATE_INVALID), 0);
	outbox_free(o);
}

/* ---- failures through the store seam ---- */

static int fsync_calls, fail_fsync_at;

static int failing_fsync(int fd) {
	if (++fsync_calls == fail_fsync_at) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

static int failing_renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
	errno = ENOSPC;
	return -1;
}

static void test_outbox_insert_failure_leaves_nothing_and_caller_owns_record(void **state) {
	Fixture *f = *state;
	_cleanup_(outbox_freep) Outbox *o = open_outbox(f);
	Record *r = make_record(1000, "ref"), *next;

	fsync_calls = 0;
	fail_fsync_at = 1;
	store_set_ops(&(StoreOps) { .fsync = failing_fsync });
	assert_int_equal(outbox_insert(o, r), -EIO);
	store_set_ops(&(StoreOps) { .renameat = failing_renameat });
	assert_int_equal(outbox_insert(o, r), -ENOSPC);
	store_set_ops(NULL);

	assert_int_equal(r->seq, 0);
	assert_int_equal(outbox_size(o), 0);
	assert_null(outbox_get(o, r->id));
	assert_null(outbox_get_client_ref(o, 1000, "ref"));
	assert_int_equal(outbox_count_state(o, REQUEST_QUEUED), 0);
	assert_int_equal(outbox_count_live_uid(o, 1000), 0);
	assert_int_equal(count_files(f->requests), 0);
	/* Still ours: freeing it must be right (ASan/valgrind would see a
	 * double free otherwise). */
	record_free(r);

	/* Nothing was consumed: the next insert gets seq 1. */
	next = insert(o, 1000, "ref");
	assert_int_equal(next->seq, 1);
}

static int failing_syncfs(int fd) {
	errno = EIO;
	return -1;
}

static void test_outbox_insert_many_commits_a_batch_and_refuses_duplicates_in_it(void **state) {
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *rs[4] = { make_record(1000, "a"), make_record(1000, "b"), make_record(1000, "a"),
	                  make_record(1001, "a") };
	int results[4];

	assert_int_equal(outbox_insert_many(o, rs, 4, results), -EEXIST);
	assert_int_equal(results[0], 0);
	assert_int_equal(results[1], 0);
	assert_int_equal(results[2], -EEXIST);   /* same uid and client_ref as rs[0] */
	assert_int_equal(results[3], 0);         /* another uid may use "a" */
	assert_int_equal(rs[2]->seq, 0);
	record_free(rs[2]);
	assert_true(rs[0]->seq < rs[1]->seq && rs[1]->seq < rs[3]->seq);
	assert_int_equal(outbox_size(o), 3);
	assert_int_equal(outbox_count_live_uid(o, 1000), 2);
	assert_int_equal(count_files(f->requests), 3);
	char id0[RECORD_ID_MAX];
	snprintf(id0, sizeof id0, "%s", rs[0]->id);
	outbox_free(o);

	/* What was acknowledged is there after a restart. */
	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 3);
	assert_non_null(outbox_get(o, id0));
	assert_non_null(outbox_get_client_ref(o, 1001, "a"));
	outbox_free(o);
}

static void test_outbox_insert_many_sync_failure_leaves_nothing(void **state) {
	Fixture *f = *state;
	_cleanup_(outbox_freep) Outbox *o = open_outbox(f);
	Record *rs[2] = { make_record(1000, NULL), make_record(1000, "x") };
	int results[2];

	store_set_ops(&(StoreOps) { .syncfs = failing_syncfs });
	assert_int_equal(outbox_insert_many(o, rs, 2, results), -EIO);
	store_set_ops(NULL);
	assert_int_equal(results[0], -EIO);
	assert_int_equal(results[1], -EIO);
	assert_int_equal(outbox_size(o), 0);
	assert_null(outbox_get_client_ref(o, 1000, "x"));
	assert_int_equal(count_files(f->requests), 0);
	record_free(rs[0]);
	record_free(rs[1]);
}

static void test_outbox_keeps_few_params_in_memory_and_reads_the_rest_back(void **state) {
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *rs[5];
	size_t in_memory = 0;

	outbox_set_params_cache(o, 2);
	for (size_t i = 0; i < 5; i++)
		rs[i] = insert(o, 1000, NULL);
	for (size_t i = 0; i < 5; i++)
		in_memory += rs[i]->params != NULL;
	assert_int_equal(in_memory, 2);
	assert_null(rs[0]->params);

	/* Read back from the file, equal to what was submitted. */
	assert_int_equal(outbox_need_params(o, rs[0]), 0);
	assert_non_null(rs[0]->params);
	assert_string_equal(json_object_get_string(json_object_object_get(rs[0]->params, "request_text")),
	                    "Ship it?");

	/* A save of a record whose params were dropped writes them whole. */
	assert_null(rs[1]->params);
	rs[1]->state = REQUEST_PENDING;
	assert_int_equal(outbox_save(o, rs[1]), 0);
	char id1[RECORD_ID_MAX];
	snprintf(id1, sizeof id1, "%s", rs[1]->id);
	outbox_free(o);

	/* After a restart nothing is held until asked for. */
	o = open_outbox(f);
	Record *r1 = outbox_get(o, id1);
	assert_non_null(r1);
	assert_null(r1->params);
	assert_int_equal(r1->state, REQUEST_PENDING);
	assert_int_equal(outbox_need_params(o, r1), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(r1->params, "loop_id")), LOOP_ID);
	outbox_free(o);
}

static void test_outbox_save_failure_keeps_old_file_and_counts(void **state) {
	Fixture *f = *state;
	_cleanup_(outbox_freep) Outbox *o = open_outbox(f);
	Record *r = insert(o, 1000, NULL);
	_cleanup_(freep) char *name = file_name(r), *text = NULL;
	_cleanup_(json_object_putp) json_object *before = disk_form(r), *after = NULL;

	r->state = REQUEST_COMPLETED;
	fsync_calls = 0;
	fail_fsync_at = 1;
	store_set_ops(&(StoreOps) { .fsync = failing_fsync });
	assert_int_equal(outbox_save(o, r), -EIO);
	store_set_ops(NULL);

	text = get_file(f->requests, name, NULL);
	after = json_tokener_parse(text);
	assert_true(json_object_equal(before, after));
	assert_int_equal(outbox_count_state(o, REQUEST_QUEUED), 1);
	assert_int_equal(outbox_count_state(o, REQUEST_COMPLETED), 0);
	assert_int_equal(outbox_count_live_uid(o, 1000), 1);
	assert_int_equal(count_files(f->requests), 1);

	/* The retry succeeds and the counts catch up. */
	assert_int_equal(outbox_save(o, r), 0);
	assert_int_equal(outbox_count_state(o, REQUEST_QUEUED), 0);
	assert_int_equal(outbox_count_state(o, REQUEST_COMPLETED), 1);
	assert_int_equal(outbox_count_live_uid(o, 1000), 0);
}

static int failing_unlinkat(int dirfd, const char *path, int flags) {
	errno = EIO;
	return -1;
}

static void test_outbox_remove_failure_keeps_record(void **state) {
	Fixture *f = *state;
	_cleanup_(outbox_freep) Outbox *o = open_outbox(f);
	Record *r = insert(o, 1000, "ref");
	_cleanup_(freep) char *name = file_name(r);

	store_set_ops(&(StoreOps) { .unlinkat = failing_unlinkat });
	assert_int_equal(outbox_remove(o, r), -EIO);
	store_set_ops(NULL);

	assert_true(file_exists(f->requests, name));
	assert_int_equal(outbox_size(o), 1);
	assert_ptr_equal(outbox_get(o, r->id), r);
	assert_ptr_equal(outbox_get_client_ref(o, 1000, "ref"), r);
	assert_int_equal(outbox_count_live_uid(o, 1000), 1);
	assert_ptr_equal(outbox_first(o), r);

	assert_int_equal(outbox_remove(o, r), 0);
	assert_false(file_exists(f->requests, name));
	assert_int_equal(outbox_size(o), 0);
}

static void test_outbox_save_refuses_foreign_record(void **state) {
	Fixture *f = *state;
	_cleanup_(outbox_freep) Outbox *o = open_outbox(f);
	Record *r = insert(o, 1000, NULL);
	_cleanup_(record_freep) Record *stranger = make_record(1000, NULL), *copy = make_record(1000, NULL);

	assert_int_equal(outbox_save(o, stranger), -ENOENT);
	assert_int_equal(outbox_remove(o, stranger), -ENOENT);
	/* Same id, different object. */
	strcpy(copy->id, r->id);
	assert_int_equal(outbox_save(o, copy), -ENOENT);
	assert_null(outbox_next(o, copy));
	/* Index keys must not move. */
	r->owner_uid = 1001;
	assert_int_equal(outbox_save(o, r), -EINVAL);
	r->owner_uid = 1000;
	assert_int_equal(outbox_save(o, r), 0);
}

static void test_outbox_min_free_refuses_insert_with_enospc(void **state) {
	Fixture *f = *state;
	_cleanup_(outbox_freep) Outbox *o = open_outbox(f);
	Record *r = make_record(1000, NULL);

	outbox_set_min_free(o, UINT64_MAX);
	assert_int_equal(outbox_insert(o, r), -ENOSPC);
	assert_int_equal(outbox_size(o), 0);
	assert_int_equal(count_files(f->requests), 0);

	outbox_set_min_free(o, 1);
	assert_int_equal(outbox_insert(o, r), 0);
	assert_int_equal(outbox_size(o), 1);
}

/* ---- order ---- */

static void test_outbox_iteration_and_seek_skip_removed_records(void **state) {
	Fixture *f = *state;
	_cleanup_(outbox_freep) Outbox *o = open_outbox(f);
	Record *r[10];
	Record *p;

	for (size_t i = 0; i < ELEMENTSOF(r); i++)
		r[i] = insert(o, 1000, NULL); /* seq i+1 */
	assert_int_equal(outbox_remove(o, r[4]), 0); /* seq 5 */
	assert_int_equal(outbox_remove(o, r[9]), 0); /* seq 10, the last */
	assert_int_equal(outbox_remove(o, r[0]), 0); /* seq 1, the first */

	assert_ptr_equal(outbox_first(o), r[1]);
	assert_ptr_equal(outbox_last(o), r[8]);
	assert_ptr_equal(outbox_next(o, r[3]), r[5]);
	assert_ptr_equal(outbox_prev(o, r[5]), r[3]);
	assert_null(outbox_prev(o, r[1]));
	assert_null(outbox_next(o, r[8]));

	assert_ptr_equal(outbox_seek_le(o, 5), r[3]);
	assert_ptr_equal(outbox_seek_le(o, 6), r[5]);
	assert_ptr_equal(outbox_seek_le(o, 1000), r[8]);
	assert_null(outbox_seek_le(o, 1));
	assert_null(outbox_seek_le(o, 0));

	/* Removing while walking, next fetched first. */
	for (p = outbox_first(o); p;) {
		Record *next = outbox_next(o, p);

		if (p->seq % 2 == 0)
			assert_int_equal(outbox_remove(o, p), 0);
		p = next;
	}
	assert_int_equal(outbox_size(o), 3);
	assert_int_equal(outbox_first(o)->seq, 3);
	assert_int_equal(outbox_last(o)->seq, 9);
}

static void test_outbox_ten_thousand_records_reopen_in_seq_order(void **state) {
	enum { N = 10000 };
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	uint64_t prev = 0;
	size_t n = 0;
	Record *r;

	for (size_t i = 0; i < N; i++) {
		char ref[32];

		snprintf(ref, sizeof ref, "ref-%zu", i);
		r = insert(o, 1000 + (uid_t) (i % 7), i % 3 == 0 ? ref : NULL);
		if (i % 5 == 0) {
			r->state = REQUEST_PENDING;
			assert_int_equal(outbox_save(o, r), 0);
		}
	}
	/* Remove every 4th so that the index has holes. */
	for (r = outbox_first(o); r;) {
		Record *next = outbox_next(o, r);

		if (r->seq % 4 == 0)
			assert_int_equal(outbox_remove(o, r), 0);
		r = next;
	}
	assert_int_equal(outbox_size(o), N - N / 4);
	o = outbox_free(o);

	o = open_outbox(f);
	assert_int_equal(outbox_size(o), N - N / 4);
	assert_int_equal(outbox_quarantined(o), 0);
	for (r = outbox_first(o); r; r = outbox_next(o, r), n++) {
		assert_true(r->seq > prev);
		assert_true(r->seq % 4 != 0);
		assert_ptr_equal(outbox_get(o, r->id), r);
		if (r->client_ref)
			assert_ptr_equal(outbox_get_client_ref(o, r->owner_uid, r->client_ref), r);
		prev = r->seq;
	}
	assert_int_equal(n, N - N / 4);
	assert_int_equal(prev, N - 1);

	n = 0;
	for (r = outbox_last(o); r; r = outbox_prev(o, r))
		n++;
	assert_int_equal(n, N - N / 4);

	assert_int_equal(outbox_seek_le(o, 4000)->seq, 3999);
	assert_int_equal(outbox_count_state(o, REQUEST_PENDING) + outbox_count_state(o, REQUEST_QUEUED),
	                 N - N / 4);
	{
		size_t live = 0;

		for (uid_t u = 1000; u < 1007; u++)
			live += outbox_count_live_uid(o, u);
		assert_int_equal(live, N - N / 4);
	}

	r = insert(o, 1000, NULL);
	assert_int_equal(r->seq, N);
	outbox_free(o);
}

static void test_outbox_keeps_both_records_sharing_a_client_ref_on_disk(void **state) {
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *a = insert(o, 1000, "same");
	_cleanup_(record_freep) Record *b = make_record(1000, "same");
	_cleanup_(freep) char *text = NULL, *name = NULL;
	char a_id[RECORD_ID_MAX];

	strcpy(a_id, a->id);
	b->seq = 99;
	text = valid_record_text(b);
	name = file_name(b);
	o = outbox_free(o);
	put_file(f->requests, name, text, strlen(text));

	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 2);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_string_equal(outbox_get_client_ref(o, 1000, "same")->id, a_id);
	assert_non_null(outbox_get(o, b->id));
	outbox_free(o);
}

int main(void) {
	const struct CMUnitTest tests[] = {
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
		T(test_outbox_open_creates_private_directories),
		T(test_outbox_insert_assigns_seq_and_writes_the_file),
		T(test_outbox_reopen_sees_same_records_and_continues_seq),
		T(test_outbox_quarantines_unreadable_files_and_still_opens),
		T(test_outbox_quarantine_logs_file_and_reason),
		T(test_outbox_quarantine_never_overwrites_an_earlier_one),
		T(test_outbox_removes_stray_tmp_without_quarantine),
		T(test_outbox_client_ref_lookup_is_per_uid),
		T(test_outbox_insert_refuses_duplicate_id),
		T(test_outbox_insert_refuses_record_that_would_not_read_back),
		T(test_outbox_counts_follow_saves_and_removes),
		T(test_outbox_insert_failure_leaves_nothing_and_caller_owns_record),
		T(test_outbox_insert_many_commits_a_batch_and_refuses_duplicates_in_it),
		T(test_outbox_insert_many_sync_failure_leaves_nothing),
		T(test_outbox_keeps_few_params_in_memory_and_reads_the_rest_back),
		T(test_outbox_save_failure_keeps_old_file_and_counts),
		T(test_outbox_remove_failure_keeps_record),
		T(test_outbox_save_refuses_foreign_record),
		T(test_outbox_min_free_refuses_insert_with_enospc),
		T(test_outbox_iteration_and_seek_skip_removed_records),
		T(test_outbox_ten_thousand_records_reopen_in_seq_order),
		T(test_outbox_keeps_both_records_sharing_a_client_ref_on_disk),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
