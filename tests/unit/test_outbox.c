/* The outbox: durable insert/save/remove, reopen, migration of a legacy
 * requests/ directory (and quarantine of its bad files), the append-only log
 * (compaction, tombstones, torn and corrupt entries), lookups, counts and
 * seq-ordered iteration. Real temp directories; the store seam only to make
 * a write or fsync fail, to count fsyncs, or to skip fsync where thousands of
 * saves only exercise compaction. The log files are read back here with a
 * small parser of their own (the layout of seglog.c) so that tests can damage
 * one entry precisely. */
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
#include "intern.h"
#include "outbox.h"
#include "seglog.h"
#include "store.h"
#include "unit_outbox.h"
#include "unit_tmpdir.h"

#define LOOP_ID UNIT_LOOP_ID
#define REQUEST_TEXT "Ship it?"
#define make_record(uid, client_ref) unit_make_record(uid, client_ref, REQUEST_TEXT)
#define open_outbox(f) unit_open_outbox((f)->state_dir)
#define DIR_MAX 512

typedef struct Fixture {
	char path[DIR_MAX];
	char state_dir[DIR_MAX + 16];
	char requests[DIR_MAX + 32];
	char quarantine[DIR_MAX + 32];
	char log[DIR_MAX + 32];
} Fixture;

static int setup(void **state) {
	Fixture *f = calloc(1, sizeof *f);
	const char *tmp = getenv("TMPDIR");

	assert_non_null(f);
	if (!tmp || !*tmp)
		tmp = "/tmp";
	assert_true(strlen(tmp) + 32 < sizeof f->path);
	snprintf(f->path, sizeof f->path, "%s/hitld-test-outbox-XXXXXX", tmp);
	assert_non_null(mkdtemp(f->path));
	/* state_dir itself does not exist yet: outbox_open creates it. */
	snprintf(f->state_dir, sizeof f->state_dir, "%s/state", f->path);
	snprintf(f->requests, sizeof f->requests, "%s/requests", f->state_dir);
	snprintf(f->quarantine, sizeof f->quarantine, "%s/quarantine", f->state_dir);
	snprintf(f->log, sizeof f->log, "%s/outbox", f->state_dir);
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
	if (store_read_file(fd, name, 1 << 26, &data, &len) < 0)
		return NULL;
	if (ret_len)
		*ret_len = len;
	return data;
}

static bool file_exists(const char *dir, const char *name) {
	_cleanup_(freep) char *p = path_in(dir, name);

	return access(p, F_OK) == 0;
}

static bool dir_exists(const char *dir) {
	struct stat st;

	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool has_suffix(const char *s, const char *suffix) {
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && streq(s + n - m, suffix);
}

/* Entries of dir (all, or those ending in suffix). */
static size_t count_files_with(const char *dir, const char *suffix) {
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, "..") &&
		    (!suffix || has_suffix(de->d_name, suffix)))
			n++;
	closedir(d);
	return n;
}

static size_t count_files(const char *dir) {
	return count_files_with(dir, NULL);
}

/* No tmp file anywhere under the state directory. */
static void assert_no_tmp(const Fixture *f) {
	assert_int_equal(count_files_with(f->state_dir, ".tmp"), 0);
	assert_int_equal(count_files_with(f->log, ".tmp"), 0);
	assert_int_equal(count_files_with(f->quarantine, ".tmp"), 0);
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

/* A record as served after a reopen, params read back, in the full form. */
static json_object *served_form(Outbox *o, const char *id) {
	Record *r = outbox_get(o, id);

	if (!r)
		fail_msg("record %s not served", id);
	assert_int_equal(outbox_need_params(o, r), 0);
	return disk_form(r);
}

static void assert_served_as(Outbox *o, const char *id, json_object *expected) {
	_cleanup_(json_object_putp) json_object *got = served_form(o, id);

	if (!json_object_equal(got, expected))
		fail_msg("record %s served as %s, expected %s", id,
		         json_object_to_json_string(got), json_object_to_json_string(expected));
}

/* A valid legacy record file's bytes (the one-file-per-record format). */
static char *valid_record_text(const Record *r) {
	_cleanup_(json_object_putp) json_object *j = disk_form(r);

	return strdup(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
}

static void make_legacy_dirs(const Fixture *f) {
	if (!dir_exists(f->state_dir))
		assert_int_equal(mkdir(f->state_dir, 0700), 0);
	assert_int_equal(mkdir(f->requests, 0700), 0);
}

/* ---- the log as files ---- */

static uint32_t le32(const unsigned char *p) {
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static int segment_filter(const struct dirent *de) {
	return strlen(de->d_name) == 20 && has_suffix(de->d_name, ".log");
}

/* The segment file names, oldest first (fixed-width hex sorts by number). */
static size_t segments(const Fixture *f, struct dirent ***ret) {
	int n = scandir(f->log, ret, segment_filter, alphasort);

	assert_true(n >= 0);
	return (size_t) n;
}

static void free_segments(struct dirent **v, size_t n) {
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static uint64_t log_bytes(const Fixture *f) {
	struct dirent **v;
	size_t n = segments(f, &v);
	uint64_t total = 0;

	for (size_t i = 0; i < n; i++) {
		_cleanup_(freep) char *p = path_in(f->log, v[i]->d_name);
		struct stat st;

		assert_int_equal(stat(p, &st), 0);
		total += (uint64_t) st.st_size;
	}
	free_segments(v, n);
	return total;
}

typedef struct LogEntry {
	char segment[NAME_MAX + 1];
	size_t off;
	size_t size;
	int kind;
	char id[RECORD_ID_MAX];
} LogEntry;

typedef struct LogEntries {
	LogEntry *v;
	size_t n;
} LogEntries;

static void log_entries_done(LogEntries *e) {
	free(e->v);
	*e = (LogEntries) {};
}

/* Every whole entry of every segment, in log order (headers only; a walk
 * stops at the first thing that does not look like an entry). */
static LogEntries log_entries(const Fixture *f) {
	LogEntries e = {};
	struct dirent **v;
	size_t n = segments(f, &v);

	for (size_t i = 0; i < n; i++) {
		size_t len = 0, off = 0;
		_cleanup_(freep) char *data = get_file(f->log, v[i]->d_name, &len);
		const unsigned char *p = (const unsigned char *) data;

		assert_non_null(data);
		while (len - off >= SEGLOG_HEADER_SIZE && memcmp(p + off, "HLE1", 4) == 0) {
			size_t id_len = p[off + 5];
			size_t size = SEGLOG_HEADER_SIZE + id_len + le32(p + off + 8) + le32(p + off + 12);
			LogEntry *x;

			if (size > len - off || id_len >= RECORD_ID_MAX)
				break;
			e.v = reallocarray(e.v, e.n + 1, sizeof *e.v);
			assert_non_null(e.v);
			x = &e.v[e.n++];
			*x = (LogEntry) { .off = off, .size = size, .kind = p[off + 4] };
			snprintf(x->segment, sizeof x->segment, "%s", v[i]->d_name);
			memcpy(x->id, p + off + SEGLOG_HEADER_SIZE, id_len);
			x->id[id_len] = '\0';
			off += size;
		}
	}
	free_segments(v, n);
	return e;
}

/* The last entry of a record (its current version), or NULL. */
static const LogEntry *last_entry_of(const LogEntries *e, const char *id) {
	for (size_t i = e->n; i > 0; i--)
		if (e->v[i - 1].kind == SEG_RECORD && streq(e->v[i - 1].id, id))
			return &e->v[i - 1];
	return NULL;
}

static size_t entries_in(const LogEntries *e, const char *segment, int kind) {
	size_t n = 0;

	for (size_t i = 0; i < e->n; i++)
		if (streq(e->v[i].segment, segment) && e->v[i].kind == kind)
			n++;
	return n;
}

static char *quarantine_name(const LogEntry *x) {
	char *name;

	assert_true(asprintf(&name, "%s@%zu", x->segment, x->off) > 0);
	return name;
}

/* Opens f's outbox with stderr going to a file; returns what was logged. */
static char *open_logged(const Fixture *f, Outbox **ret) {
	char log_path[DIR_MAX + 16];
	int saved, fd, k;

	snprintf(log_path, sizeof log_path, "%s/log", f->path);
	fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	k = outbox_open(f->state_dir, ret);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	assert_int_equal(k, 0);
	return get_file(f->path, "log", NULL);
}

/* ---- store seam ---- */

static int fsync_calls, fail_fsync_at, write_calls;

static int failing_fsync(int fd) {
	if (++fsync_calls == fail_fsync_at) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

static int counting_fsync(int fd) {
	fsync_calls++;
	return fsync(fd);
}

static ssize_t counting_write(int fd, const void *buf, size_t len) {
	write_calls++;
	return write(fd, buf, len);
}

/* Thousands of saves that only exercise compaction: what reaches the disk
 * in the end is not the point there, and a real fsync each costs seconds. */
static int skipped_fsync(int fd) {
	fsync_calls++;
	return 0;
}

static ssize_t failing_write(int fd, const void *buf, size_t len) {
	errno = ENOSPC;
	return -1;
}

/* ---- directories, insert, reopen ---- */

static void test_outbox_open_creates_private_directories(void **state) {
	Fixture *f = *state;
	_cleanup_(outbox_freep) Outbox *o = open_outbox(f);
	struct stat st;

	assert_int_equal(stat(f->state_dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(f->log, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(f->quarantine, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	/* The legacy directory is not made any more. */
	assert_false(dir_exists(f->requests));
	assert_int_equal(outbox_size(o), 0);
	assert_null(outbox_first(o));
	assert_true(outbox_state_dirfd(o) >= 0);
}

static void test_outbox_log_segments_are_private(void **state) {
	Fixture *f = *state;
	_cleanup_(outbox_freep) Outbox *o = open_outbox(f);
	struct dirent **v;
	size_t n;

	(void) insert(o, 1000, NULL);
	n = segments(f, &v);
	assert_int_equal(n, 1);
	{
		_cleanup_(freep) char *p = path_in(f->log, v[0]->d_name);
		struct stat st;

		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
	}
	free_segments(v, n);
}

static void test_outbox_insert_assigns_seq_and_is_durable(void **state) {
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *a = insert(o, 1000, NULL), *b = insert(o, 1000, "ref-b");
	_cleanup_(json_object_putp) json_object *ja = disk_form(a), *jb = disk_form(b);
	_cleanup_(log_entries_done) LogEntries e = {};
	char a_id[RECORD_ID_MAX], b_id[RECORD_ID_MAX];

	assert_int_equal(a->seq, 1);
	assert_int_equal(b->seq, 2);
	assert_int_equal(outbox_size(o), 2);
	assert_ptr_equal(outbox_get(o, a->id), a);
	assert_ptr_equal(outbox_get(o, b->id), b);
	assert_null(outbox_get(o, "r_01ARZ3NDEKTSV4RRFFQ69G5FAV"));
	assert_null(outbox_get(o, NULL));
	strcpy(a_id, a->id);
	strcpy(b_id, b->id);

	/* On disk once insert returned, before anything is closed. */
	e = log_entries(f);
	assert_non_null(last_entry_of(&e, a_id));
	assert_non_null(last_entry_of(&e, b_id));
	assert_int_equal(count_files_with(f->log, ".log"), 1);
	assert_no_tmp(f);
	o = outbox_free(o);

	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 2);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_served_as(o, a_id, ja);
	assert_served_as(o, b_id, jb);
	assert_ptr_equal(outbox_get_client_ref(o, 1000, "ref-b"), outbox_get(o, b_id));
	assert_no_tmp(f);
	outbox_free(o);
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
	a->submitted_at = unit_clock_now;
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

/* ---- legacy requests/ directory: migration and quarantine ---- */

/* Writes good and damaged files into a legacy requests/ directory, opens,
 * and checks that the good ones are served and moved into the log, every
 * bad one kept in quarantine/ unchanged, and requests/ gone. */
static void test_outbox_migrates_legacy_records_and_quarantines_unreadable_files(void **state) {
	Fixture *f = *state;
	_cleanup_(record_freep) Record *good1 = make_record(1000, "g1"), *good2 = make_record(1001, NULL);
	_cleanup_(record_freep) Record *other = make_record(1000, NULL), *mismatch = make_record(1000, NULL);
	_cleanup_(freep) char *good1_name = file_name(good1), *good2_name = file_name(good2);
	_cleanup_(freep) char *good1_text = NULL, *good2_text = NULL, *text = valid_record_text(other);
	_cleanup_(freep) char *truncated_name = NULL, *garbage_name = NULL, *wrong_type_name = NULL,
	                      *mismatch_name = NULL, *wrong_type = NULL;
	_cleanup_(json_object_putp) json_object *j = disk_form(other), *j1 = NULL, *j2 = NULL;
	static const char garbage[] = "\x7f" "ELF\x02\x01\x01\0\0\0garbage";
	struct Damaged {
		const char *name;
		const char *data;
		size_t len;
	} bad[5];
	size_t n = 0;
	Outbox *o;

	good1->seq = 5;
	good2->seq = 9;
	good2->state = REQUEST_PENDING;
	good2->remote_id = strdup("65f1234567890abcdef12348");
	good1_text = valid_record_text(good1);
	good2_text = valid_record_text(good2);
	j1 = disk_form(good1);
	j2 = disk_form(good2);

	/* torn write: the first half of a valid record */
	assert_true(asprintf(&truncated_name, "%s.json", other->id) > 0);
	bad[n++] = (struct Damaged) { truncated_name, text, strlen(text) / 2 };
	/* binary garbage under a valid name */
	assert_true(asprintf(&garbage_name, "%s.json", mismatch->id) > 0);
	/* valid JSON, wrong type for seq */
	json_object_object_add(j, "seq", json_object_new_string("7"));
	wrong_type = strdup(json_object_to_json_string(j));
	unit_clock_now += USEC_PER_MSEC;
	{
		char id[RECORD_ID_MAX];
		assert_int_equal(record_make_id(unit_clock_now, id), 0);
		assert_true(asprintf(&wrong_type_name, "%s.json", id) > 0);
		assert_int_equal(record_make_id(unit_clock_now + USEC_PER_MSEC, id), 0);
		/* a complete valid record whose id is not its file name */
		assert_true(asprintf(&mismatch_name, "%s.json", id) > 0);
	}
	bad[n++] = (struct Damaged) { garbage_name, garbage, sizeof garbage - 1 };
	bad[n++] = (struct Damaged) { wrong_type_name, wrong_type, strlen(wrong_type) };
	bad[n++] = (struct Damaged) { mismatch_name, text, strlen(text) };
	bad[n++] = (struct Damaged) { "notes.txt", "hello", 5 };

	make_legacy_dirs(f);
	put_file(f->requests, good1_name, good1_text, strlen(good1_text));
	put_file(f->requests, good2_name, good2_text, strlen(good2_text));
	for (size_t i = 0; i < n; i++)
		put_file(f->requests, bad[i].name, bad[i].data, bad[i].len);

	o = open_outbox(f);
	assert_int_equal(outbox_quarantined(o), n);
	assert_int_equal(outbox_size(o), 2);
	assert_served_as(o, good1->id, j1);
	assert_served_as(o, good2->id, j2);
	assert_null(outbox_get(o, other->id));
	assert_ptr_equal(outbox_get_client_ref(o, 1000, "g1"), outbox_get(o, good1->id));
	assert_int_equal(outbox_count_state(o, REQUEST_QUEUED), 1);
	assert_int_equal(outbox_count_state(o, REQUEST_PENDING), 1);
	assert_int_equal(outbox_count_live_uid(o, 1000), 1);

	/* Moved: requests/ is gone, the log holds the good ones. */
	assert_false(dir_exists(f->requests));
	{
		_cleanup_(log_entries_done) LogEntries e = log_entries(f);

		assert_non_null(last_entry_of(&e, good1->id));
		assert_non_null(last_entry_of(&e, good2->id));
	}
	assert_int_equal(count_files(f->quarantine), n);
	for (size_t i = 0; i < n; i++) {
		size_t len = 0;
		_cleanup_(freep) char *kept = get_file(f->quarantine, bad[i].name, &len);

		if (!kept)
			fail_msg("%s not in quarantine", bad[i].name);
		assert_int_equal(len, bad[i].len);
		assert_memory_equal(kept, bad[i].data, len);
	}
	/* seq continues after the highest migrated one. */
	{
		Record *r = insert(o, 1002, NULL);

		assert_int_equal(r->seq, 10);
	}
	o = outbox_free(o);

	/* Quarantined and migrated once: the next open serves the same from the
	 * log and finds nothing bad. */
	o = open_outbox(f);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_int_equal(outbox_size(o), 3);
	assert_served_as(o, good1->id, j1);
	assert_served_as(o, good2->id, j2);
	assert_int_equal(count_files(f->quarantine), n);
	assert_false(dir_exists(f->requests));
	outbox_free(o);
}

/* A migration that stopped after its commit but before removing the files:
 * the log's copy counts, nothing is doubled. */
static void test_outbox_legacy_file_already_in_the_log_is_not_doubled(void **state) {
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *a = insert(o, 1000, "a");
	_cleanup_(freep) char *name = file_name(a), *text = valid_record_text(a);
	_cleanup_(json_object_putp) json_object *ja = disk_form(a);
	char a_id[RECORD_ID_MAX];

	strcpy(a_id, a->id);
	o = outbox_free(o);
	make_legacy_dirs(f);
	put_file(f->requests, name, text, strlen(text));

	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 1);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_served_as(o, a_id, ja);
	assert_false(dir_exists(f->requests));
	o = outbox_free(o);

	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 1);
	{
		Record *b = insert(o, 1000, NULL);

		assert_int_equal(b->seq, 2);
	}
	outbox_free(o);
}

static void test_outbox_quarantine_logs_file_and_reason(void **state) {
	Fixture *f = *state;
	_cleanup_(outbox_freep) Outbox *o = NULL;
	_cleanup_(freep) char *logged = NULL;

	make_legacy_dirs(f);
	put_file(f->requests, "r_01ARZ3NDEKTSV4RRFFQ69G5FAV.json", "{\"version\":1,", 13);

	logged = open_logged(f, &o);
	assert_non_null(logged);
	assert_non_null(strstr(logged, "r_01ARZ3NDEKTSV4RRFFQ69G5FAV.json"));
	assert_non_null(strstr(logged, "not valid JSON"));
	assert_true(strncmp(logged, "<4>", 3) == 0); /* LOG_WARNING */
	assert_int_equal(outbox_quarantined(o), 1);
}

static void test_outbox_quarantine_never_overwrites_an_earlier_one(void **state) {
	Fixture *f = *state;
	static const char name[] = "r_01ARZ3NDEKTSV4RRFFQ69G5FAV.json";
	_cleanup_(outbox_freep) Outbox *o = NULL;
	_cleanup_(freep) char *first = NULL, *second = NULL, *third = NULL;

	make_legacy_dirs(f);
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
	o = outbox_free(o);

	/* And again, with both names taken. */
	make_legacy_dirs(f);
	put_file(f->requests, name, "third", 5);
	o = open_outbox(f);
	assert_int_equal(outbox_quarantined(o), 1);
	third = get_file(f->quarantine, "r_01ARZ3NDEKTSV4RRFFQ69G5FAV.json.2", NULL);
	assert_non_null(third);
	assert_string_equal(third, "third");
	assert_int_equal(count_files(f->quarantine), 3);
}

static void test_outbox_removes_stray_legacy_tmp_without_quarantine(void **state) {
	Fixture *f = *state;
	_cleanup_(record_freep) Record *r = make_record(1000, NULL);
	_cleanup_(freep) char *name = file_name(r), *tmp = NULL, *text = valid_record_text(r);
	Outbox *o;

	make_legacy_dirs(f);
	put_file(f->requests, name, text, strlen(text));
	assert_true(asprintf(&tmp, "%s.tmp", name) > 0);
	put_file(f->requests, tmp, "{\"half", 6);
	put_file(f->requests, "r_01ARZ3NDEKTSV4RRFFQ69G5FAV.json.tmp", "", 0);

	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 1);
	assert_non_null(outbox_get(o, r->id));
	assert_int_equal(outbox_quarantined(o), 0);
	assert_int_equal(count_files(f->quarantine), 0);
	/* The tmps went with the directory. */
	assert_false(dir_exists(f->requests));
	assert_no_tmp(f);
	o = outbox_free(o);

	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 1);
	assert_int_equal(outbox_quarantined(o), 0);
	outbox_free(o);
}

/* ---- lookups and refusals ---- */

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
	Outbox *o = open_outbox(f);
	_cleanup_(record_freep) Record *bad_id = make_record(1000, NULL), *no_params = make_record(1000, NULL);

	strcpy(bad_id->id, "r_nope");
	assert_int_equal(outbox_insert(o, bad_id), -EINVAL);
	json_object_put(no_params->params);
	no_params->params = NULL;
	assert_int_equal(outbox_insert(o, no_params), -EINVAL);
	assert_int_equal(no_params->seq, 0);
	assert_int_equal(outbox_size(o), 0);
	assert_int_equal(log_bytes(f), 0);
	o = outbox_free(o);

	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 0);
	assert_int_equal(outbox_quarantined(o), 0);
	outbox_free(o);
}

/* Inserts skip the read-back of their text (fuzz_validate proves it for what
 * validate_submit() accepts), so record_check() must still refuse a record
 * that would not read back: outbox.h promises -EINVAL, and an acknowledged
 * record quarantined at the next open would be a lost request. */
static void test_outbox_insert_refuses_record_without_loop_id(void **state) {
	Fixture *f = *state;
	Outbox *o;
	Record *no_loop;
	int k;

	no_loop = make_record(1000, NULL);
	o = open_outbox(f);
	intern_unref(no_loop->loop_id);
	no_loop->loop_id = NULL;
	k = outbox_insert(o, no_loop);
	if (k == 0)
		no_loop = NULL; /* the outbox owns it now */
	o = outbox_free(o);
	o = open_outbox(f);
	/* What the caller was told on insert must match what a restart serves
	 * and what was quarantined. */
	assert_int_equal(outbox_quarantined(o), 0);
	assert_int_equal(k, -EINVAL);
	assert_int_equal(outbox_size(o), 0);
	record_free(no_loop);
	outbox_free(o);
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

static void test_outbox_per_uid_index_counts_lists_and_oldest_queued(void **state) {
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *a[6], *b[3];

	/* Interleaved: a = uid 1000 (seq 1,3,5,7,9,10), b = uid 1001 (2,4,6). */
	for (size_t i = 0; i < 3; i++) {
		a[i] = insert(o, 1000, NULL);
		b[i] = insert(o, 1001, NULL);
	}
	for (size_t i = 3; i < 6; i++)
		a[i] = insert(o, 1000, NULL);

	assert_int_equal(outbox_count_state_uid(o, 1000, REQUEST_QUEUED), 6);
	assert_int_equal(outbox_count_state_uid(o, 1001, REQUEST_QUEUED), 3);
	assert_int_equal(outbox_count_state_uid(o, 4242, REQUEST_QUEUED), 0);
	assert_ptr_equal(outbox_last_uid(o, 1001), b[2]);
	assert_ptr_equal(outbox_prev_uid(o, b[2]), b[1]);
	assert_ptr_equal(outbox_prev_uid(o, b[1]), b[0]);
	assert_null(outbox_prev_uid(o, b[0]));
	assert_null(outbox_last_uid(o, 4242));
	assert_ptr_equal(outbox_seek_le_uid(o, 1001, 5), b[1]);
	assert_ptr_equal(outbox_seek_le_uid(o, 1000, 5), a[2]);
	assert_null(outbox_seek_le_uid(o, 1001, 1));
	assert_ptr_equal(outbox_oldest_queued(o), a[0]);
	assert_ptr_equal(outbox_oldest_queued_uid(o, 1001), b[0]);

	/* The oldest leave the queue: the hints move on. */
	a[0]->state = REQUEST_COMPLETED;
	assert_int_equal(outbox_save(o, a[0]), 0);
	b[0]->state = REQUEST_SUBMITTING;
	assert_int_equal(outbox_save(o, b[0]), 0);
	assert_ptr_equal(outbox_oldest_queued(o), a[1]);
	assert_ptr_equal(outbox_oldest_queued_uid(o, 1000), a[1]);
	assert_ptr_equal(outbox_oldest_queued_uid(o, 1001), b[1]);
	assert_int_equal(outbox_count_state_uid(o, 1000, REQUEST_COMPLETED), 1);
	assert_int_equal(outbox_count_state_uid(o, 1001, REQUEST_SUBMITTING), 1);

	/* And come back (a retry): the hints move back. */
	b[0]->state = REQUEST_QUEUED;
	assert_int_equal(outbox_save(o, b[0]), 0);
	assert_ptr_equal(outbox_oldest_queued_uid(o, 1001), b[0]);
	assert_ptr_equal(outbox_oldest_queued(o), b[0]);

	/* Removing the hinted record, and the middle of a list. */
	assert_int_equal(outbox_remove(o, a[1]), 0);
	assert_ptr_equal(outbox_oldest_queued_uid(o, 1000), a[2]);
	assert_int_equal(outbox_remove(o, b[1]), 0);
	assert_ptr_equal(outbox_prev_uid(o, b[2]), b[0]);
	assert_int_equal(outbox_count_state_uid(o, 1001, REQUEST_QUEUED), 2);
	for (size_t i = 2; i < 6; i++) {
		a[i]->state = REQUEST_CANCELLED;
		assert_int_equal(outbox_save(o, a[i]), 0);
	}
	assert_null(outbox_oldest_queued_uid(o, 1000));
	assert_ptr_equal(outbox_oldest_queued(o), b[0]);
	o = outbox_free(o);

	/* Reopened: the same index from the log. */
	o = open_outbox(f);
	assert_int_equal(outbox_count_state_uid(o, 1000, REQUEST_CANCELLED), 4);
	assert_int_equal(outbox_count_state_uid(o, 1000, REQUEST_COMPLETED), 1);
	assert_int_equal(outbox_count_state_uid(o, 1001, REQUEST_QUEUED), 2);
	assert_int_equal(outbox_last_uid(o, 1001)->seq, 6);
	assert_int_equal(outbox_prev_uid(o, outbox_last_uid(o, 1001))->seq, 2);
	assert_int_equal(outbox_oldest_queued(o)->seq, 2);
	assert_null(outbox_oldest_queued_uid(o, 1000));
	outbox_free(o);
}

/* ---- failures through the store seam ---- */

static void test_outbox_insert_failure_leaves_nothing_and_caller_owns_record(void **state) {
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *r = make_record(1000, "ref"), *first = insert(o, 1001, NULL), *next;
	char first_id[RECORD_ID_MAX], next_id[RECORD_ID_MAX];

	strcpy(first_id, first->id);
	fsync_calls = 0;
	fail_fsync_at = 1;
	store_set_ops(&(StoreOps) { .fsync = failing_fsync });
	assert_int_equal(outbox_insert(o, r), -EIO);
	store_set_ops(&(StoreOps) { .write = failing_write });
	assert_int_equal(outbox_insert(o, r), -ENOSPC);
	store_set_ops(NULL);

	assert_int_equal(r->seq, 0);
	assert_int_equal(outbox_size(o), 1);
	assert_null(outbox_get(o, r->id));
	assert_null(outbox_get_client_ref(o, 1000, "ref"));
	assert_int_equal(outbox_count_state(o, REQUEST_QUEUED), 1);
	assert_int_equal(outbox_count_live_uid(o, 1000), 0);
	assert_no_tmp(f);
	o = outbox_free(o);

	/* Not there after a restart either. */
	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 1);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_non_null(outbox_get(o, first_id));
	assert_null(outbox_get(o, r->id));
	assert_null(outbox_get_client_ref(o, 1000, "ref"));

	/* Still ours: freeing it must be right (ASan/valgrind would see a
	 * double free otherwise). */
	record_free(r);

	/* The next insert (with the same client_ref) works and lasts. */
	next = insert(o, 1000, "ref");
	assert_int_equal(next->seq, 2);
	strcpy(next_id, next->id);
	o = outbox_free(o);
	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 2);
	assert_non_null(outbox_get(o, next_id));
	assert_int_equal(outbox_quarantined(o), 0);
	outbox_free(o);
}

/* outbox.h: "On error nothing changed (r->seq restored)": a failed commit
 * gives its seqs back, so the acceptance order has no gaps. */
static void test_outbox_failed_insert_consumes_no_seq(void **state) {
	Fixture *f = *state;
	_cleanup_(outbox_freep) Outbox *o = NULL;
	_cleanup_(record_freep) Record *r = NULL;
	Record *next;

	r = make_record(1000, NULL);
	o = open_outbox(f);
	fsync_calls = 0;
	fail_fsync_at = 1;
	store_set_ops(&(StoreOps) { .fsync = failing_fsync });
	assert_int_equal(outbox_insert(o, r), -EIO);
	store_set_ops(NULL);
	next = insert(o, 1000, NULL);
	assert_int_equal(next->seq, 1);
}

static void test_outbox_insert_many_commits_a_batch_in_one_fsync_and_refuses_duplicates(void **state) {
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *first[2] = { make_record(999, NULL), make_record(999, NULL) };
	Record *rs[4] = { make_record(1000, "a"), make_record(1000, "b"), make_record(1000, "a"),
	                  make_record(1001, "a") };
	int results[4];
	char ids[4][RECORD_ID_MAX];

	/* The first batch creates the segment: it and the directory. */
	fsync_calls = write_calls = 0;
	store_set_ops(&(StoreOps) { .fsync = counting_fsync, .write = counting_write });
	assert_int_equal(outbox_insert_many(o, first, 2, results), 0);
	store_set_ops(NULL);
	assert_int_equal(fsync_calls, 2);
	assert_int_equal(write_calls, 1);

	/* The next appends to it: one write, one fsync for the whole batch. */
	fsync_calls = write_calls = 0;
	store_set_ops(&(StoreOps) { .fsync = counting_fsync, .write = counting_write });
	assert_int_equal(outbox_insert_many(o, rs, 4, results), -EEXIST);
	store_set_ops(NULL);
	assert_int_equal(fsync_calls, 1);
	assert_int_equal(write_calls, 1);

	assert_int_equal(results[0], 0);
	assert_int_equal(results[1], 0);
	assert_int_equal(results[2], -EEXIST); /* same uid and client_ref as rs[0] */
	assert_int_equal(results[3], 0);       /* another uid may use "a" */
	assert_int_equal(rs[2]->seq, 0);
	record_free(rs[2]);
	assert_true(rs[0]->seq < rs[1]->seq && rs[1]->seq < rs[3]->seq);
	assert_int_equal(outbox_size(o), 5);
	assert_int_equal(outbox_count_live_uid(o, 1000), 2);
	for (size_t i = 0; i < 4; i++)
		if (i != 2)
			snprintf(ids[i], sizeof ids[i], "%s", rs[i]->id);
	o = outbox_free(o);

	/* What was acknowledged is there after a restart. */
	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 5);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_non_null(outbox_get(o, ids[0]));
	assert_non_null(outbox_get(o, ids[1]));
	assert_non_null(outbox_get(o, ids[3]));
	assert_ptr_equal(outbox_get_client_ref(o, 1000, "a"), outbox_get(o, ids[0]));
	assert_ptr_equal(outbox_get_client_ref(o, 1001, "a"), outbox_get(o, ids[3]));
	outbox_free(o);
}

static void insert_many_failing_fsync(Fixture *f, bool into_existing_segment) {
	Outbox *o = open_outbox(f);
	Record *rs[2] = { make_record(1000, NULL), make_record(1000, "x") };
	char kept_id[RECORD_ID_MAX] = "";
	int results[2];

	if (into_existing_segment)
		snprintf(kept_id, sizeof kept_id, "%s", insert(o, 1001, NULL)->id);
	fsync_calls = 0;
	fail_fsync_at = 1;
	store_set_ops(&(StoreOps) { .fsync = failing_fsync });
	assert_int_equal(outbox_insert_many(o, rs, 2, results), -EIO);
	store_set_ops(NULL);
	assert_int_equal(results[0], -EIO);
	assert_int_equal(results[1], -EIO);
	assert_int_equal(outbox_size(o), into_existing_segment);
	assert_null(outbox_get(o, rs[0]->id));
	assert_null(outbox_get_client_ref(o, 1000, "x"));
	o = outbox_free(o);

	o = open_outbox(f);
	assert_int_equal(outbox_size(o), into_existing_segment);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_null(outbox_get(o, rs[0]->id));
	assert_null(outbox_get(o, rs[1]->id));
	if (into_existing_segment)
		assert_non_null(outbox_get(o, kept_id));
	else
		assert_int_equal(log_bytes(f), 0);
	assert_no_tmp(f);
	outbox_free(o);
	record_free(rs[0]);
	record_free(rs[1]);
}

static void test_outbox_insert_many_fsync_failure_leaves_nothing(void **state) {
	insert_many_failing_fsync(*state, false);
}

static void test_outbox_insert_many_fsync_failure_appending_leaves_nothing(void **state) {
	insert_many_failing_fsync(*state, true);
}

static void test_outbox_keeps_few_params_in_memory_and_reads_the_rest_back(void **state) {
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *rs[5];
	char ids[5][RECORD_ID_MAX];
	size_t in_memory = 0;

	outbox_set_params_cache(o, 2);
	for (size_t i = 0; i < 5; i++) {
		rs[i] = make_record(1000, NULL);
		json_object_object_add(rs[i]->params, "request_text",
		                       json_object_new_string(i % 2 ? "Ship it?" : "Ship it now?"));
		assert_int_equal(outbox_insert(o, rs[i]), 0);
		strcpy(ids[i], rs[i]->id);
	}
	for (size_t i = 0; i < 5; i++)
		in_memory += rs[i]->params != NULL;
	assert_int_equal(in_memory, 2);
	assert_null(rs[0]->params);

	/* Read back from the log, equal to what was submitted. */
	assert_int_equal(outbox_need_params(o, rs[0]), 0);
	assert_non_null(rs[0]->params);
	assert_string_equal(json_object_get_string(json_object_object_get(rs[0]->params, "request_text")),
	                    "Ship it now?");

	/* A save of a record whose params were dropped keeps them whole. */
	assert_null(rs[1]->params);
	rs[1]->state = REQUEST_PENDING;
	assert_int_equal(outbox_save(o, rs[1]), 0);
	o = outbox_free(o);

	/* After a restart nothing is held until asked for, and each reads back
	 * its own params. */
	o = open_outbox(f);
	for (size_t i = 0; i < 5; i++) {
		Record *r = outbox_get(o, ids[i]);

		assert_non_null(r);
		assert_null(r->params);
	}
	assert_int_equal(outbox_get(o, ids[1])->state, REQUEST_PENDING);
	for (size_t i = 0; i < 5; i++) {
		Record *r = outbox_get(o, ids[i]);

		assert_int_equal(outbox_need_params(o, r), 0);
		assert_string_equal(json_object_get_string(json_object_object_get(r->params, "loop_id")), LOOP_ID);
		assert_string_equal(json_object_get_string(json_object_object_get(r->params, "request_text")),
		                    i % 2 ? "Ship it?" : "Ship it now?");
	}
	outbox_free(o);
}

static void save_failure_keeps_old(Fixture *f, const StoreOps *ops, int error) {
	Outbox *o = open_outbox(f);
	Record *r = insert(o, 1000, NULL);
	_cleanup_(json_object_putp) json_object *before = disk_form(r), *after = NULL;
	char id[RECORD_ID_MAX];

	strcpy(id, r->id);
	r->state = REQUEST_COMPLETED;
	r->remote_id = strdup("65f1234567890abcdef12348");
	fsync_calls = 0;
	fail_fsync_at = 1;
	store_set_ops(ops);
	assert_int_equal(outbox_save(o, r), error);
	store_set_ops(NULL);

	/* The counts keep the last saved state. */
	assert_int_equal(outbox_count_state(o, REQUEST_QUEUED), 1);
	assert_int_equal(outbox_count_state(o, REQUEST_COMPLETED), 0);
	assert_int_equal(outbox_count_live_uid(o, 1000), 1);
	o = outbox_free(o);

	/* A restart finds the old content. */
	o = open_outbox(f);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_int_equal(outbox_size(o), 1);
	assert_served_as(o, id, before);
	assert_int_equal(outbox_count_state(o, REQUEST_QUEUED), 1);

	/* The retry succeeds, the counts catch up, and it lasts. */
	r = outbox_get(o, id);
	r->state = REQUEST_COMPLETED;
	r->remote_id = strdup("65f1234567890abcdef12348");
	assert_int_equal(outbox_save(o, r), 0);
	assert_int_equal(outbox_count_state(o, REQUEST_QUEUED), 0);
	assert_int_equal(outbox_count_state(o, REQUEST_COMPLETED), 1);
	assert_int_equal(outbox_count_live_uid(o, 1000), 0);
	after = disk_form(r);
	o = outbox_free(o);
	o = open_outbox(f);
	assert_served_as(o, id, after);
	assert_int_equal(outbox_count_state(o, REQUEST_COMPLETED), 1);
	outbox_free(o);
}

static void test_outbox_save_fsync_failure_keeps_old_content_and_counts(void **state) {
	save_failure_keeps_old(*state, &(StoreOps) { .fsync = failing_fsync }, -EIO);
}

static void test_outbox_save_write_failure_keeps_old_content_and_counts(void **state) {
	save_failure_keeps_old(*state, &(StoreOps) { .write = failing_write }, -ENOSPC);
}

static void test_outbox_remove_failure_keeps_record(void **state) {
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *r = insert(o, 1000, "ref");
	char id[RECORD_ID_MAX];

	strcpy(id, r->id);
	fsync_calls = 0;
	fail_fsync_at = 1;
	store_set_ops(&(StoreOps) { .fsync = failing_fsync });
	assert_int_equal(outbox_remove(o, r), -EIO);
	store_set_ops(&(StoreOps) { .write = failing_write });
	assert_int_equal(outbox_remove(o, r), -ENOSPC);
	store_set_ops(NULL);

	assert_int_equal(outbox_size(o), 1);
	assert_ptr_equal(outbox_get(o, id), r);
	assert_ptr_equal(outbox_get_client_ref(o, 1000, "ref"), r);
	assert_int_equal(outbox_count_live_uid(o, 1000), 1);
	assert_ptr_equal(outbox_first(o), r);
	o = outbox_free(o);

	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 1);
	assert_int_equal(outbox_quarantined(o), 0);
	r = outbox_get(o, id);
	assert_non_null(r);
	assert_int_equal(outbox_remove(o, r), 0);
	assert_int_equal(outbox_size(o), 0);
	o = outbox_free(o);

	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 0);
	assert_null(outbox_get(o, id));
	outbox_free(o);
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
	Outbox *o = open_outbox(f);
	Record *r = make_record(1000, NULL);
	char id[RECORD_ID_MAX];

	strcpy(id, r->id);
	outbox_set_min_free(o, UINT64_MAX);
	assert_int_equal(outbox_insert(o, r), -ENOSPC);
	assert_int_equal(r->seq, 0);
	assert_int_equal(outbox_size(o), 0);
	assert_int_equal(log_bytes(f), 0);

	outbox_set_min_free(o, 1);
	assert_int_equal(outbox_insert(o, r), 0);
	assert_int_equal(outbox_size(o), 1);
	o = outbox_free(o);

	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 1);
	assert_non_null(outbox_get(o, id));
	outbox_free(o);
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
		assert_int_equal(r->state, (r->seq - 1) % 5 == 0 ? REQUEST_PENDING : REQUEST_QUEUED);
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

static void test_outbox_keeps_both_records_sharing_a_client_ref_across_reopen(void **state) {
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
	/* Both acknowledged once (say, by two daemons' worth of history): the
	 * second arrives through the legacy directory. */
	make_legacy_dirs(f);
	put_file(f->requests, name, text, strlen(text));

	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 2);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_string_equal(outbox_get_client_ref(o, 1000, "same")->id, a_id);
	assert_non_null(outbox_get(o, b->id));
	o = outbox_free(o);

	/* Now both come from the log. */
	o = open_outbox(f);
	assert_int_equal(outbox_size(o), 2);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_string_equal(outbox_get_client_ref(o, 1000, "same")->id, a_id);
	assert_non_null(outbox_get(o, b->id));
	assert_int_equal(outbox_count_live_uid(o, 1000), 2);
	outbox_free(o);
}

/* ---- the log: compaction, tombstones, damage ---- */

/* A new version of r, with a field long enough that the log's segments
 * fill: "result" takes any JSON, and reads back as written. */
static void set_version(Record *r, unsigned version, size_t pad) {
	_cleanup_(freep) char *s = malloc(pad + 64);
	int n;

	assert_non_null(s);
	n = snprintf(s, 64, "%s version %u ", r->id, version);
	memset(s + n, 'a' + (int) (version % 26), pad);
	s[(size_t) n + pad] = '\0';
	json_object_put(r->result);
	r->result = json_object_new_string(s);
	r->updated_at = UNIT_T0 + version;
}

/* The bytes the log holds for r's current version (seglog.c's layout). */
static size_t entry_size(const Record *r) {
	_cleanup_(json_object_putp) json_object *meta = NULL;
	size_t meta_len = 0, params_len = 0;

	assert_int_equal(record_to_json_meta(r, &meta), 0);
	assert_non_null(json_object_to_json_string_length(
		meta, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &meta_len));
	assert_non_null(json_object_to_json_string_length(
		r->params, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &params_len));
	return SEGLOG_HEADER_SIZE + strlen(r->id) + meta_len + params_len;
}

/* 300 records, each saved 40 times: without compaction that is 40 times
 * the data. The log must stay within 3x what it holds plus two segments,
 * and a reopen must serve exactly the last version of each. */
static void test_outbox_compaction_keeps_the_log_bounded_and_the_latest_versions(void **state) {
	enum { N = 300, SAVES = 40, PAD = 4000 };
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *rs[N];
	json_object *expected[N];
	char ids[N][RECORD_ID_MAX];
	uint64_t live = 0, written = 0, largest = 0;

	store_set_ops(&(StoreOps) { .fsync = skipped_fsync });
	for (size_t i = 0; i < N; i++) {
		rs[i] = make_record(1000 + (uid_t) (i % 5), NULL);
		set_version(rs[i], 0, PAD);
		assert_int_equal(outbox_insert(o, rs[i]), 0);
		strcpy(ids[i], rs[i]->id);
	}
	for (unsigned v = 1; v <= SAVES; v++) {
		live = 0;
		for (size_t i = 0; i < N; i++) {
			set_version(rs[i], v, PAD);
			if (v == SAVES && i % 3 == 0)
				rs[i]->state = REQUEST_PENDING;
			assert_int_equal(outbox_save(o, rs[i]), 0);
			live += entry_size(rs[i]);
		}
		written += live;
		{
			uint64_t now = log_bytes(f);

			if (now > largest)
				largest = now;
			if (now > 3 * live + 2 * (uint64_t) SEGLOG_SEGMENT_TARGET)
				fail_msg("after round %u the log holds %" PRIu64 " bytes for %" PRIu64
				         " live ones",
				         v, now, live);
		}
	}
	store_set_ops(NULL);
	/* The test means something only if the log had to be compacted. */
	assert_true(written > 3 * live + 2 * (uint64_t) SEGLOG_SEGMENT_TARGET);
	print_message("wrote %" PRIu64 " bytes, %" PRIu64 " live, log at most %" PRIu64 "\n", written,
	              live, largest);
	for (size_t i = 0; i < N; i++)
		expected[i] = disk_form(rs[i]);
	o = outbox_free(o);

	o = open_outbox(f);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_int_equal(outbox_size(o), N);
	assert_int_equal(outbox_count_state(o, REQUEST_PENDING), (N + 2) / 3);
	for (size_t i = 0; i < N; i++) {
		assert_served_as(o, ids[i], expected[i]);
		json_object_put(expected[i]);
	}
	assert_true(log_bytes(f) <= 3 * live + 2 * (uint64_t) SEGLOG_SEGMENT_TARGET);
	outbox_free(o);
}

/* Records removed while their versions sit in an older segment stay
 * removed: the tombstones must outlive compaction of the segment they were
 * written to. The first segment is kept alive by records that never change
 * (mostly live, so never worth compacting); later segments churn. */
static void test_outbox_removed_records_stay_removed_after_compaction(void **state) {
	enum { N = 100, CHURN = 10, ROUNDS = 30, PAD = 42000 };
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *rs[N], *churn[CHURN];
	json_object *expected[N + CHURN] = {};
	char ids[N + CHURN][RECORD_ID_MAX];
	char first_segment[NAME_MAX + 1], tomb_segment[NAME_MAX + 1] = "";
	size_t removed_in_first = 0;

	store_set_ops(&(StoreOps) { .fsync = skipped_fsync });
	for (size_t i = 0; i < N; i++) {
		rs[i] = make_record(1000, NULL);
		set_version(rs[i], 0, PAD);
		assert_int_equal(outbox_insert(o, rs[i]), 0);
		strcpy(ids[i], rs[i]->id);
	}
	{
		_cleanup_(log_entries_done) LogEntries e = log_entries(f);

		strcpy(first_segment, e.v[0].segment);
		/* Every third record goes; those whose only version is in the
		 * first segment are the point. */
		for (size_t i = 0; i < N; i += 3)
			if (streq(last_entry_of(&e, ids[i])->segment, first_segment))
				removed_in_first++;
		assert_true(removed_in_first >= 20);
		assert_true(e.v[e.n - 1].segment[0] && !streq(e.v[e.n - 1].segment, first_segment));
	}
	for (size_t i = 0; i < N; i++)
		if (i % 3 == 0)
			assert_int_equal(outbox_remove(o, rs[i]), 0);
		else
			expected[i] = disk_form(rs[i]);
	{
		_cleanup_(log_entries_done) LogEntries e = log_entries(f);

		strcpy(tomb_segment, e.v[e.n - 1].segment);
		assert_int_equal(e.v[e.n - 1].kind, SEG_TOMBSTONE);
		assert_false(streq(tomb_segment, first_segment));
	}

	/* Churn until the segment with the tombstones has been compacted. */
	for (size_t c = 0; c < CHURN; c++) {
		churn[c] = make_record(1001, NULL);
		set_version(churn[c], 0, PAD);
		assert_int_equal(outbox_insert(o, churn[c]), 0);
		strcpy(ids[N + c], churn[c]->id);
	}
	for (unsigned v = 1; v <= ROUNDS; v++)
		for (size_t c = 0; c < CHURN; c++) {
			set_version(churn[c], v, PAD);
			assert_int_equal(outbox_save(o, churn[c]), 0);
		}
	store_set_ops(NULL);
	for (size_t c = 0; c < CHURN; c++)
		expected[N + c] = disk_form(churn[c]);

	/* The scenario held: the removed records' only versions are still in
	 * the first segment, and the tombstones' first home is gone. */
	assert_true(file_exists(f->log, first_segment));
	assert_false(file_exists(f->log, tomb_segment));
	{
		_cleanup_(log_entries_done) LogEntries e = log_entries(f);

		assert_true(entries_in(&e, first_segment, SEG_RECORD) >= N / 2);
	}
	o = outbox_free(o);

	o = open_outbox(f);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_int_equal(outbox_size(o), N - (N + 2) / 3 + CHURN);
	for (size_t i = 0; i < N + CHURN; i++) {
		if (i < N && i % 3 == 0) {
			if (outbox_get(o, ids[i]))
				fail_msg("removed record %s is back after compaction", ids[i]);
			continue;
		}
		assert_served_as(o, ids[i], expected[i]);
		json_object_put(expected[i]);
	}
	o = outbox_free(o);

	/* And once more, after whatever that open compacted. */
	o = open_outbox(f);
	assert_int_equal(outbox_size(o), N - (N + 2) / 3 + CHURN);
	for (size_t i = 0; i < N; i += 3)
		assert_null(outbox_get(o, ids[i]));
	outbox_free(o);
}

/* A crash in the middle of a batch leaves a torn last entry. */
static void test_outbox_torn_tail_is_quarantined_and_the_rest_served(void **state) {
	enum { N = 10 };
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	json_object *expected[N];
	char ids[N][RECORD_ID_MAX];
	_cleanup_(log_entries_done) LogEntries e = {};
	_cleanup_(freep) char *seg_path = NULL, *qname = NULL, *whole = NULL, *kept = NULL,
	                      *logged = NULL;
	const LogEntry *last;
	size_t torn_len, whole_len = 0, kept_len = 0;

	for (size_t i = 0; i < N; i++) {
		Record *r = insert(o, 1000, NULL);

		expected[i] = disk_form(r);
		strcpy(ids[i], r->id);
	}
	o = outbox_free(o);

	e = log_entries(f);
	assert_int_equal(e.n, N);
	last = &e.v[e.n - 1];
	assert_string_equal(last->id, ids[N - 1]);
	torn_len = last->size / 2;
	whole = get_file(f->log, last->segment, &whole_len);
	assert_non_null(whole);
	seg_path = path_in(f->log, last->segment);
	assert_int_equal(truncate(seg_path, (off_t) (last->off + torn_len)), 0);
	qname = quarantine_name(last);

	logged = open_logged(f, &o);
	assert_int_equal(outbox_quarantined(o), 1);
	assert_int_equal(outbox_size(o), N - 1);
	for (size_t i = 0; i < N - 1; i++)
		assert_served_as(o, ids[i], expected[i]);
	assert_null(outbox_get(o, ids[N - 1]));
	/* The torn bytes are kept, and the log says so, naming the segment. */
	kept = get_file(f->quarantine, qname, &kept_len);
	if (!kept)
		fail_msg("%s not in quarantine", qname);
	assert_int_equal(kept_len, torn_len);
	assert_memory_equal(kept, whole + last->off, torn_len);
	assert_int_equal(count_files(f->quarantine), 1);
	assert_non_null(logged);
	assert_non_null(strstr(logged, last->segment));
	assert_non_null(strstr(logged, "damaged"));

	/* New records go on being stored. */
	{
		Record *r = insert(o, 1000, NULL);

		assert_int_equal(r->seq, N);
	}
	o = outbox_free(o);

	o = open_outbox(f);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_int_equal(outbox_size(o), N);
	for (size_t i = 0; i < N - 1; i++) {
		assert_served_as(o, ids[i], expected[i]);
		json_object_put(expected[i]);
	}
	json_object_put(expected[N - 1]);
	assert_int_equal(count_files(f->quarantine), 1);
	outbox_free(o);
}

/* A flipped bit inside the log: the damaged entries' records fall back to
 * their previous version (r3) or to nothing (r5); everything else is served;
 * the damaged bytes are kept; the segment is rewritten away. */
static void test_outbox_corrupt_entry_is_quarantined_and_its_segment_compacted_away(void **state) {
	enum { N = 10 };
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *rs[N];
	json_object *expected[N] = {}, *r3_before = NULL;
	char ids[N][RECORD_ID_MAX];
	_cleanup_(log_entries_done) LogEntries e = {};
	_cleanup_(freep) char *data = NULL, *q3 = NULL, *q5 = NULL;
	LogEntry d3, d5;
	size_t len = 0;

	for (size_t i = 0; i < N; i++) {
		rs[i] = insert(o, 1000, NULL);
		strcpy(ids[i], rs[i]->id);
	}
	r3_before = disk_form(rs[3]);
	for (size_t i = 0; i < N; i += 3) { /* r0, r3, r6, r9 get a second version */
		rs[i]->state = REQUEST_PENDING;
		rs[i]->attempts = 1;
		assert_int_equal(outbox_save(o, rs[i]), 0);
	}
	for (size_t i = 0; i < N; i++)
		expected[i] = disk_form(rs[i]);
	o = outbox_free(o);

	e = log_entries(f);
	assert_int_equal(e.n, N + 4);
	d3 = *last_entry_of(&e, ids[3]); /* the second version, mid-segment */
	d5 = *last_entry_of(&e, ids[5]); /* the only version */
	assert_string_equal(d3.segment, d5.segment);
	assert_true(d3.off + d3.size < e.v[e.n - 1].off);
	data = get_file(f->log, d3.segment, &len);
	assert_non_null(data);
	data[d3.off + d3.size / 2] ^= 0x20;
	data[d5.off + d5.size / 2] ^= 0x01;
	put_file(f->log, d3.segment, data, len);
	q3 = quarantine_name(&d3);
	q5 = quarantine_name(&d5);

	o = open_outbox(f);
	assert_int_equal(outbox_quarantined(o), 2);
	assert_int_equal(outbox_size(o), N - 1);
	for (size_t i = 0; i < N; i++)
		if (i == 3)
			assert_served_as(o, ids[i], r3_before);
		else if (i == 5)
			assert_null(outbox_get(o, ids[i]));
		else
			assert_served_as(o, ids[i], expected[i]);
	assert_int_equal(count_files(f->quarantine), 2);
	{
		size_t n3 = 0, n5 = 0;
		_cleanup_(freep) char *k3 = get_file(f->quarantine, q3, &n3),
		                      *k5 = get_file(f->quarantine, q5, &n5);

		assert_non_null(k3);
		assert_non_null(k5);
		assert_int_equal(n3, d3.size);
		assert_int_equal(n5, d5.size);
		assert_memory_equal(k3, data + d3.off, d3.size);
		assert_memory_equal(k5, data + d5.off, d5.size);
	}
	/* Compacted away at that open: nothing is quarantined twice. */
	assert_false(file_exists(f->log, d3.segment));
	o = outbox_free(o);

	o = open_outbox(f);
	assert_int_equal(outbox_quarantined(o), 0);
	assert_int_equal(outbox_size(o), N - 1);
	assert_served_as(o, ids[3], r3_before);
	for (size_t i = 0; i < N; i++)
		if (i != 3 && i != 5)
			assert_served_as(o, ids[i], expected[i]);
	assert_int_equal(count_files(f->quarantine), 2);
	outbox_free(o);
	for (size_t i = 0; i < N; i++)
		json_object_put(expected[i]);
	json_object_put(r3_before);
}

/* Segment numbers start at 1 again once compaction emptied the log, so damage
 * at the same offset of a later 0000000000000001.log must not replace the
 * first quarantined copy (legacy files get name.1, name.2, ... too). */
static void test_outbox_log_quarantine_never_overwrites_an_earlier_one(void **state) {
	Fixture *f = *state;
	Outbox *o;

	for (unsigned round = 0; round < 2; round++) {
		_cleanup_(log_entries_done) LogEntries e = {};
		_cleanup_(freep) char *seg_path = NULL;

		/* One record, torn: a crash during the very first batch. */
		o = open_outbox(f);
		(void) insert(o, 1000 + round, NULL);
		o = outbox_free(o);
		e = log_entries(f);
		assert_int_equal(e.n, 1);
		seg_path = path_in(f->log, e.v[0].segment);
		assert_int_equal(truncate(seg_path, (off_t) (e.v[0].size / 2 + round)), 0);
		o = open_outbox(f);
		assert_int_equal(outbox_quarantined(o), 1);
		assert_int_equal(outbox_size(o), 0);
		o = outbox_free(o);
	}
	/* Two damaged regions were found: both copies must still be there. */
	assert_int_equal(count_files(f->quarantine), 2);
}

/* Issue 12 item 3: A's "submitting" and "pending" entries, side by side, are
 * damaged; A falls back to "queued". The outbox must say that A (and every
 * record whose newest entry precedes the damage) may be older than what was
 * written, and keep the damaged segment until the caller has dealt with it.
 * A record written after the damage is not marked. */
static void test_outbox_damage_marks_records_whose_newer_entries_may_be_lost(void **state) {
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *a, *b, *d;
	char a_id[RECORD_ID_MAX], b_id[RECORD_ID_MAX], d_id[RECORD_ID_MAX];
	_cleanup_(log_entries_done) LogEntries e = {};
	_cleanup_(freep) char *data = NULL;
	const LogEntry *sub, *pend;
	size_t len = 0, n_a = 0;

	b = insert(o, 1000, NULL);
	a = insert(o, 1000, NULL);
	strcpy(a_id, a->id);
	strcpy(b_id, b->id);
	a->state = REQUEST_SUBMITTING;
	a->attempts = 1;
	assert_int_equal(outbox_save(o, a), 0);
	a->state = REQUEST_PENDING;
	a->remote_id = strdup("65f1234567890abcdef12348");
	assert_int_equal(outbox_save(o, a), 0);
	d = insert(o, 1000, NULL);
	strcpy(d_id, d->id);
	o = outbox_free(o);

	e = log_entries(f);
	for (size_t i = 0; i < e.n; i++)
		if (streq(e.v[i].id, a_id))
			n_a++;
	assert_int_equal(n_a, 3);
	pend = last_entry_of(&e, a_id);
	sub = pend - 1;
	assert_string_equal(sub->id, a_id);
	assert_int_equal(sub->off + sub->size, pend->off);
	data = get_file(f->log, pend->segment, &len);
	assert_non_null(data);
	data[sub->off + sub->size / 2] ^= 0x40;
	data[pend->off + pend->size / 2] ^= 0x40;
	put_file(f->log, pend->segment, data, len);

	assert_int_equal(outbox_open(f->state_dir, &o), 0);
	assert_int_equal(outbox_quarantined(o), 1);
	assert_int_equal(outbox_get(o, a_id)->state, REQUEST_QUEUED);
	assert_true(outbox_get(o, a_id)->log_damaged_after);
	assert_true(outbox_get(o, b_id)->log_damaged_after);
	assert_false(outbox_get(o, d_id)->log_damaged_after);
	/* The evidence stays until the caller has dealt with the marks. */
	assert_true(file_exists(f->log, pend->segment));
	o = outbox_free(o);
	assert_int_equal(outbox_open(f->state_dir, &o), 0);
	assert_true(outbox_get(o, a_id)->log_damaged_after);
	outbox_release_damaged(o);
	assert_false(outbox_get(o, a_id)->log_damaged_after);
	assert_false(file_exists(f->log, pend->segment));
	outbox_free(o);
}

/* A torn tail is an append a crash cut short: never committed, so nothing
 * acted on it and no record is marked. The same entry whole but corrupt may
 * have been committed: its record is marked. */
static void test_outbox_torn_tail_marks_nothing_but_a_corrupt_tail_does(void **state) {
	Fixture *f = *state;
	Outbox *o = open_outbox(f);
	Record *a;
	char a_id[RECORD_ID_MAX];
	_cleanup_(log_entries_done) LogEntries e = {};
	_cleanup_(freep) char *data = NULL, *seg_path = NULL;
	const LogEntry *last;
	size_t len = 0;

	a = insert(o, 1000, NULL);
	strcpy(a_id, a->id);
	a->state = REQUEST_SUBMITTING;
	assert_int_equal(outbox_save(o, a), 0);
	o = outbox_free(o);

	e = log_entries(f);
	last = last_entry_of(&e, a_id);
	data = get_file(f->log, last->segment, &len);
	assert_non_null(data);

	/* Whole, one bit flipped: marked. */
	data[last->off + last->size - 3] ^= 0x01;
	put_file(f->log, last->segment, data, len);
	assert_int_equal(outbox_open(f->state_dir, &o), 0);
	assert_int_equal(outbox_get(o, a_id)->state, REQUEST_QUEUED);
	assert_true(outbox_get(o, a_id)->log_damaged_after);
	o = outbox_free(o);

	/* Cut short: not marked. */
	data[last->off + last->size - 3] ^= 0x01;
	put_file(f->log, last->segment, data, len);
	seg_path = path_in(f->log, last->segment);
	assert_int_equal(truncate(seg_path, (off_t) (last->off + last->size / 2)), 0);
	assert_int_equal(outbox_open(f->state_dir, &o), 0);
	assert_int_equal(outbox_quarantined(o), 1);
	assert_int_equal(outbox_get(o, a_id)->state, REQUEST_QUEUED);
	assert_false(outbox_get(o, a_id)->log_damaged_after);
	outbox_free(o);
}

int main(void) {
	const struct CMUnitTest tests[] = {
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
		T(test_outbox_open_creates_private_directories),
		T(test_outbox_log_segments_are_private),
		T(test_outbox_insert_assigns_seq_and_is_durable),
		T(test_outbox_reopen_sees_same_records_and_continues_seq),
		T(test_outbox_migrates_legacy_records_and_quarantines_unreadable_files),
		T(test_outbox_legacy_file_already_in_the_log_is_not_doubled),
		T(test_outbox_quarantine_logs_file_and_reason),
		T(test_outbox_quarantine_never_overwrites_an_earlier_one),
		T(test_outbox_removes_stray_legacy_tmp_without_quarantine),
		T(test_outbox_client_ref_lookup_is_per_uid),
		T(test_outbox_insert_refuses_duplicate_id),
		T(test_outbox_insert_refuses_record_that_would_not_read_back),
		T(test_outbox_insert_refuses_record_without_loop_id),
		T(test_outbox_counts_follow_saves_and_removes),
		T(test_outbox_per_uid_index_counts_lists_and_oldest_queued),
		T(test_outbox_insert_failure_leaves_nothing_and_caller_owns_record),
		T(test_outbox_failed_insert_consumes_no_seq),
		T(test_outbox_insert_many_commits_a_batch_in_one_fsync_and_refuses_duplicates),
		T(test_outbox_insert_many_fsync_failure_leaves_nothing),
		T(test_outbox_insert_many_fsync_failure_appending_leaves_nothing),
		T(test_outbox_keeps_few_params_in_memory_and_reads_the_rest_back),
		T(test_outbox_save_fsync_failure_keeps_old_content_and_counts),
		T(test_outbox_save_write_failure_keeps_old_content_and_counts),
		T(test_outbox_remove_failure_keeps_record),
		T(test_outbox_save_refuses_foreign_record),
		T(test_outbox_min_free_refuses_insert_with_enospc),
		T(test_outbox_iteration_and_seek_skip_removed_records),
		T(test_outbox_ten_thousand_records_reopen_in_seq_order),
		T(test_outbox_keeps_both_records_sharing_a_client_ref_across_reopen),
		T(test_outbox_compaction_keeps_the_log_bounded_and_the_latest_versions),
		T(test_outbox_removed_records_stay_removed_after_compaction),
		T(test_outbox_torn_tail_is_quarantined_and_the_rest_served),
		T(test_outbox_corrupt_entry_is_quarantined_and_its_segment_compacted_away),
		T(test_outbox_log_quarantine_never_overwrites_an_earlier_one),
		T(test_outbox_damage_marks_records_whose_newer_entries_may_be_lost),
		T(test_outbox_torn_tail_marks_nothing_but_a_corrupt_tail_does),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
