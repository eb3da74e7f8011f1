/* The outbox log (seglog.c), for real in a temporary directory: what a commit
 * made durable comes back after a reopen, in order, where append said it
 * would be; nothing a failed commit queued ever comes back, and the next
 * commit starts a new segment file; damage (a torn tail, a corrupt entry,
 * garbage between entries) is skipped, kept byte for byte in quarantine/ as
 * "<segment>@<offset>", and never hides the good entries around it;
 * compaction picks the right segment and loses nothing current. Faults come
 * through the store seam. Segment files written by hand here are built from
 * the entry format in seglog.c's header comment, independently of
 * seglog_append(), so that a change of format shows. */
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "crc32c.h"
#include "log.h"
#include "seglog.h"
#include "store.h"
#include "unit_tmpdir.h"

#define LOG_DIR "outbox"
#define ID_A "r_01ARZ3NDEKTSV4RRFFQ69G5FAA"
#define ID_B "r_01ARZ3NDEKTSV4RRFFQ69G5FAB"
#define ID_C "r_01ARZ3NDEKTSV4RRFFQ69G5FAC"
#define ID_D "r_01ARZ3NDEKTSV4RRFFQ69G5FAD"
#define ID_E "r_01ARZ3NDEKTSV4RRFFQ69G5FAE"
#define ID_F "r_01ARZ3NDEKTSV4RRFFQ69G5FAF"
#define META_A "{\"state\":\"queued\",\"seq\":1}"
#define META_B "{\"state\":\"pending\",\"seq\":2}"
#define META_C "{\"state\":\"completed\",\"seq\":3}"
#define PARAMS_A "{\"loop_id\":\"65f1234567890abcdef12345\",\"request_text\":\"Approve?\"}"
#define PARAMS_B "{\"loop_id\":\"65f1234567890abcdef12345\",\"request_text\":\"Ship it?\"}"

static inline SegLoc loc_of(uint32_t seg, uint32_t off) {
	return (SegLoc) seg << 32 | off;
}

static inline uint32_t loc_offset(SegLoc loc) {
	return (uint32_t) (loc & UINT32_MAX);
}

/* ---- fault seam ------------------------------------------------------------------ */

typedef enum Op {
	OP_OPENAT,
	OP_WRITE,
	OP_FSYNC,
	OP_UNLINKAT,
	_OP_MAX,
} Op;

static const char *const op_names[_OP_MAX] = { "openat", "write", "fsync", "unlinkat" };

typedef struct Fault {
	Op op;
	int at; /* 1-based call number */
	int err;
} Fault;

/* Up to two armed faults (a failure, and one in its clean-up); writes move
 * at most max_write bytes when set. */
static struct {
	int calls[_OP_MAX];
	Fault fail[2];
	size_t max_write;
} fault;

static void fault_reset(void) {
	memset(&fault, 0, sizeof fault);
	fault.fail[0].op = fault.fail[1].op = _OP_MAX;
}

static bool fault_hit(Op op) {
	fault.calls[op]++;
	for (size_t i = 0; i < ELEMENTSOF(fault.fail); i++)
		if (fault.fail[i].op == op && fault.fail[i].at == fault.calls[op]) {
			errno = fault.fail[i].err;
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

static int fake_unlinkat(int dirfd, const char *path, int flags) {
	return fault_hit(OP_UNLINKAT) ? -1 : unlinkat(dirfd, path, flags);
}

static const StoreOps fake_ops = {
	.openat = fake_openat,
	.write = fake_write,
	.fsync = fake_fsync,
	.unlinkat = fake_unlinkat,
};

/* ---- fixture and files --------------------------------------------------------------- */

typedef struct Fixture {
	char path[64];
	int dirfd; /* the state directory: parent of outbox/ and quarantine/ */
	int qfd;   /* quarantine/ */
} Fixture;

static int setup(void **state) {
	Fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	snprintf(f->path, sizeof f->path, "/tmp/hitld-test-seglog-XXXXXX");
	assert_non_null(mkdtemp(f->path));
	f->dirfd = open(f->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->dirfd >= 0);
	assert_int_equal(mkdirat(f->dirfd, "quarantine", 0700), 0);
	f->qfd = openat(f->dirfd, "quarantine", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->qfd >= 0);
	fault_reset();
	store_set_ops(&fake_ops);
	*state = f;
	return 0;
}

static int teardown(void **state) {
	Fixture *f = *state;

	store_set_ops(NULL);
	close(f->qfd);
	close(f->dirfd);
	unit_rm_tree(f->path);
	free(f);
	return 0;
}

/* Removes outbox/ and the quarantined files: a fresh start for a loop's round. */
static void wipe(Fixture *f) {
	char p[128];
	DIR *d;
	struct dirent *de;

	snprintf(p, sizeof p, "%s/" LOG_DIR, f->path);
	unit_rm_tree(p);
	d = fdopendir(dup(f->qfd));
	assert_non_null(d);
	rewinddir(d);
	while ((de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			assert_int_equal(unlinkat(f->qfd, de->d_name, 0), 0);
	closedir(d);
}

static void seg_name(uint32_t num, char buf[static 32]) {
	snprintf(buf, 32, "%016" PRIx32 ".log", num);
}

static int open_log_dir(Fixture *f) {
	int fd;

	if (mkdirat(f->dirfd, LOG_DIR, 0700) < 0)
		assert_int_equal(errno, EEXIST);
	fd = openat(f->dirfd, LOG_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static void put_file(int dirfd, const char *name, const void *data, size_t len) {
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t) len);
	close(fd);
}

/* Content of dirfd/name (NUL-terminated), or NULL if there is none. */
static char *get_file(int dirfd, const char *name, size_t *ret_len) {
	_cleanup_(closep) int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *data;

	if (fd < 0) {
		assert_int_equal(errno, ENOENT);
		return NULL;
	}
	assert_int_equal(fstat(fd, &st), 0);
	data = malloc((size_t) st.st_size + 1);
	assert_non_null(data);
	assert_int_equal(pread(fd, data, (size_t) st.st_size, 0), st.st_size);
	data[st.st_size] = '\0';
	if (ret_len)
		*ret_len = (size_t) st.st_size;
	return data;
}

static void put_segment(Fixture *f, uint32_t num, const void *data, size_t len) {
	_cleanup_(closep) int fd = open_log_dir(f);
	char name[32];

	seg_name(num, name);
	put_file(fd, name, data, len);
}

static char *get_segment(Fixture *f, uint32_t num, size_t *ret_len) {
	_cleanup_(closep) int fd = open_log_dir(f);
	char name[32];

	seg_name(num, name);
	return get_file(fd, name, ret_len);
}

static bool segment_exists(Fixture *f, uint32_t num) {
	_cleanup_(freep) char *data = get_segment(f, num, NULL);

	return data != NULL;
}

static off_t segment_size(Fixture *f, uint32_t num) {
	_cleanup_(closep) int fd = open_log_dir(f);
	char name[32];
	struct stat st;

	seg_name(num, name);
	if (fstatat(fd, name, &st, 0) < 0)
		return -1;
	return st.st_size;
}

static void xor_segment_byte(Fixture *f, uint32_t num, off_t off, unsigned char x) {
	_cleanup_(closep) int dfd = open_log_dir(f), fd = -EBADF;
	char name[32];
	unsigned char c;

	seg_name(num, name);
	fd = openat(dfd, name, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= x;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
}

static void truncate_segment(Fixture *f, uint32_t num, off_t len) {
	_cleanup_(closep) int dfd = open_log_dir(f), fd = -EBADF;
	char name[32];

	seg_name(num, name);
	fd = openat(dfd, name, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, len), 0);
}

static size_t count_files(int dirfd) {
	DIR *d = fdopendir(dup(dirfd));
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	rewinddir(d);
	while ((de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static size_t count_log_files(Fixture *f) {
	_cleanup_(closep) int fd = open_log_dir(f);

	return count_files(fd);
}

/* ---- entries built by hand ------------------------------------------------------------- */

typedef struct Bytes {
	char *p;
	size_t n;
} Bytes;

static void bytes_done(Bytes *b) {
	free(b->p);
	*b = (Bytes) {};
}

static void bytes_add(Bytes *b, const void *data, size_t n) {
	b->p = realloc(b->p, b->n + n + 1);
	assert_non_null(b->p);
	memcpy(b->p + b->n, data, n);
	b->n += n;
}

static void put_le32(unsigned char *p, uint32_t v) {
	p[0] = (unsigned char) v;
	p[1] = (unsigned char) (v >> 8);
	p[2] = (unsigned char) (v >> 16);
	p[3] = (unsigned char) (v >> 24);
}

static uint32_t get_le32(const void *q) {
	const unsigned char *p = q;

	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* One entry as the design says it is stored; returns its size. */
static size_t add_entry_n(Bytes *b, SegKind kind, const char *id, const char *meta, size_t meta_len,
                          const char *params, size_t params_len) {
	unsigned char h[SEGLOG_HEADER_SIZE];
	size_t id_len = strlen(id), start = b->n;
	uint32_t crc;

	memcpy(h, "HLE1", 4);
	h[4] = (unsigned char) kind;
	h[5] = (unsigned char) id_len;
	h[6] = h[7] = 0;
	put_le32(h + 8, (uint32_t) meta_len);
	put_le32(h + 12, (uint32_t) params_len);
	put_le32(h + 16, 0);
	bytes_add(b, h, sizeof h);
	bytes_add(b, id, id_len);
	bytes_add(b, meta, meta_len);
	bytes_add(b, params, params_len);
	crc = crc32c(0, b->p + start, 16);
	crc = crc32c(crc, b->p + start + SEGLOG_HEADER_SIZE, b->n - start - SEGLOG_HEADER_SIZE);
	put_le32((unsigned char *) b->p + start + 16, crc);
	return b->n - start;
}

static size_t add_entry(Bytes *b, SegKind kind, const char *id, const char *meta, const char *params) {
	return add_entry_n(b, kind, id, meta ? meta : "", meta ? strlen(meta) : 0, params ? params : "",
	                   params ? strlen(params) : 0);
}

static size_t entry_size(const char *id, const char *meta, const char *params) {
	return SEGLOG_HEADER_SIZE + strlen(id) + (meta ? strlen(meta) : 0) + (params ? strlen(params) : 0);
}

/* A NUL-terminated string of n copies of c. */
static char *filler(size_t n, char c) {
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* ---- what a scan visits ------------------------------------------------------------ */

typedef struct Seen {
	SegLoc loc;
	uint32_t size;
	SegKind kind;
	char *id, *meta, *params, *raw;
	size_t meta_len, params_len;
} Seen;

typedef struct Seens {
	Seen *v;
	size_t n;
} Seens;

static void seens_done(Seens *s) {
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].id);
		free(s->v[i].meta);
		free(s->v[i].params);
		free(s->v[i].raw);
	}
	free(s->v);
	*s = (Seens) {};
}

static char *dup_n(const char *p, size_t n) {
	char *s = malloc(n + 1);

	assert_non_null(s);
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* Every entry handed out must be what it says it is: sizes that add up,
 * pointers into its own bytes, a checksum that checks out by this test's
 * own computation. */
static void check_entry_shape(const SegEntry *e) {
	uint32_t crc;

	assert_non_null(e->raw);
	assert_int_equal(e->size, SEGLOG_HEADER_SIZE + e->id_len + e->meta_len + e->params_len);
	assert_true(e->id_len >= 1 && e->id_len <= SEGLOG_ID_MAX);
	assert_ptr_equal(e->id, e->raw + SEGLOG_HEADER_SIZE);
	assert_ptr_equal(e->meta, e->id + e->id_len);
	assert_ptr_equal(e->params, e->meta + e->meta_len);
	assert_memory_equal(e->raw, "HLE1", 4);
	assert_int_equal((unsigned char) e->raw[4], e->kind);
	assert_int_equal((unsigned char) e->raw[5], e->id_len);
	assert_int_equal(get_le32(e->raw + 8), e->meta_len);
	assert_int_equal(get_le32(e->raw + 12), e->params_len);
	crc = crc32c_portable(0, e->raw, 16);
	crc = crc32c_portable(crc, e->raw + SEGLOG_HEADER_SIZE, e->size - SEGLOG_HEADER_SIZE);
	assert_int_equal(crc, get_le32(e->raw + 16));
	assert_true(e->kind == SEG_RECORD || e->kind == SEG_TOMBSTONE);
}

static int collect(const SegEntry *e, void *userdata) {
	Seens *s = userdata;
	Seen *n;

	check_entry_shape(e);
	s->v = reallocarray(s->v, s->n + 1, sizeof *s->v);
	assert_non_null(s->v);
	n = &s->v[s->n++];
	*n = (Seen) {
		.loc = e->loc,
		.size = e->size,
		.kind = e->kind,
		.id = dup_n(e->id, e->id_len),
		.meta = dup_n(e->meta, e->meta_len),
		.params = dup_n(e->params, e->params_len),
		.raw = dup_n(e->raw, e->size),
		.meta_len = e->meta_len,
		.params_len = e->params_len,
	};
	return 0;
}

static SegLog *open_log(Fixture *f) {
	SegLog *l = NULL;

	assert_int_equal(seglog_open(f->dirfd, LOG_DIR, f->qfd, &l), 0);
	assert_non_null(l);
	return l;
}

/* Opened and scanned (so that it takes appends); the scan's findings go
 * to *seen when given. Returns the damaged regions. */
static SegLog *open_scanned(Fixture *f, Seens *seen, int *ret_damaged) {
	SegLog *l = open_log(f);
	Seens ignored = {};
	int k;

	k = seglog_scan(l, collect, seen ? seen : &ignored);
	assert_true(k >= 0);
	seglog_scan_done(l);
	seens_done(&ignored);
	if (ret_damaged)
		*ret_damaged = k;
	else
		assert_int_equal(k, 0);
	return l;
}

/* What the next start would see: open, scan, close. */
static int reopen_scan(Fixture *f, Seens *seen) {
	_cleanup_(seglog_freep) SegLog *l = NULL;
	int damaged;

	l = open_scanned(f, seen, &damaged);
	return damaged;
}

static void assert_seen(const Seen *s, SegKind kind, const char *id, const char *meta, const char *params) {
	assert_int_equal(s->kind, kind);
	assert_string_equal(s->id, id);
	assert_string_equal(s->meta, meta ? meta : "");
	assert_int_equal(s->meta_len, meta ? strlen(meta) : 0);
	assert_string_equal(s->params, params ? params : "");
	assert_int_equal(s->params_len, params ? strlen(params) : 0);
	assert_int_equal(s->size, entry_size(id, meta, params));
}

static SegLoc append(SegLog *l, SegKind kind, const char *id, const char *meta, const char *params,
                     uint32_t *ret_size) {
	SegLoc loc = 0;
	uint32_t size = 0;

	assert_int_equal(seglog_append(l, kind, id, meta, meta ? strlen(meta) : 0, params,
	                               params ? strlen(params) : 0, &loc, &size),
	                 0);
	assert_int_equal(size, entry_size(id, meta, params));
	assert_true(seglog_pending(l));
	if (ret_size)
		*ret_size = size;
	return loc;
}

/* ---- basics --------------------------------------------------------------------------- */

static void test_seglog_open_creates_directory_and_an_empty_log(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = NULL;
	Seens seen = {};
	struct stat st;

	l = open_log(f);
	assert_int_equal(fstatat(f->dirfd, LOG_DIR, &st, 0), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(seglog_segments(l), 0);
	assert_int_equal(seglog_scan(l, collect, &seen), 0);
	assert_int_equal(seen.n, 0);
	assert_false(seglog_pending(l));
	assert_int_equal(seglog_victim(l), 0);
	/* A scan is once only. */
	assert_int_equal(seglog_scan(l, collect, &seen), -EINVAL);
	seglog_scan_done(l);
	assert_int_equal(count_log_files(f), 0);
}

static void test_seglog_append_refuses_bad_arguments(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = open_log(f), *scanned = NULL;
	char long_id[SEGLOG_ID_MAX + 2];
	SegLoc loc = 0;

	/* Before the scan: where the log ends is not known yet. */
	assert_int_equal(seglog_append(l, SEG_RECORD, ID_A, "{}", 2, "{}", 2, &loc, NULL), -EINVAL);
	l = seglog_free(l);

	scanned = open_scanned(f, NULL, NULL);
	memset(long_id, 'r', sizeof long_id - 1);
	long_id[sizeof long_id - 1] = '\0';
	assert_int_equal(seglog_append(scanned, SEG_RECORD, long_id, "{}", 2, "{}", 2, &loc, NULL), -EINVAL);
	assert_int_equal(seglog_append(scanned, SEG_RECORD, "", "{}", 2, "{}", 2, &loc, NULL), -EINVAL);
	assert_int_equal(seglog_append(scanned, SEG_RECORD, NULL, "{}", 2, "{}", 2, &loc, NULL), -EINVAL);
	assert_int_equal(seglog_append(scanned, (SegKind) 3, ID_A, "{}", 2, "{}", 2, &loc, NULL), -EINVAL);
	assert_int_equal(seglog_append(scanned, SEG_RECORD, ID_A, NULL, 2, "{}", 2, &loc, NULL), -EINVAL);
	assert_int_equal(seglog_append(scanned, SEG_RECORD, ID_A, "{}", 2, NULL, 2, &loc, NULL), -EINVAL);
	assert_false(seglog_pending(scanned));
	/* The longest id is fine. */
	long_id[SEGLOG_ID_MAX] = '\0';
	assert_int_equal(seglog_append(scanned, SEG_RECORD, long_id, "{}", 2, "{}", 2, &loc, NULL), 0);
	assert_int_equal(loc, loc_of(1, 0));
}

/* Append + commit, reopen + scan: the same entries, in order, where
 * append said they would be, stored exactly in the documented format. */
static void test_seglog_committed_entries_come_back_in_order(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = open_scanned(f, NULL, NULL);
	_cleanup_(bytes_done) Bytes want = {};
	_cleanup_(seens_done) Seens seen = {};
	_cleanup_(freep) char *file = NULL;
	SegLoc loc[6];
	uint32_t size[6];
	size_t len;

	loc[0] = append(l, SEG_RECORD, ID_A, META_A, PARAMS_A, &size[0]);
	loc[1] = append(l, SEG_RECORD, ID_B, META_B, PARAMS_B, &size[1]);
	loc[2] = append(l, SEG_TOMBSTONE, ID_A, NULL, NULL, &size[2]);
	loc[3] = append(l, SEG_RECORD, ID_C, NULL, PARAMS_A, &size[3]);
	/* Nothing is written before the commit. */
	assert_int_equal(count_log_files(f), 0);
	assert_int_equal(seglog_commit(l), 0);
	assert_false(seglog_pending(l));
	/* A second batch continues the same segment. */
	loc[4] = append(l, SEG_RECORD, ID_B, META_C, PARAMS_B, &size[4]);
	loc[5] = append(l, SEG_RECORD, ID_D, META_A, NULL, &size[5]);
	assert_int_equal(seglog_commit(l), 0);
	assert_int_equal(seglog_commit(l), 0); /* nothing queued: nothing to do */
	assert_int_equal(seglog_segments(l), 1);

	/* Segments are numbered from 1; entries follow each other. */
	assert_int_equal(loc[0], loc_of(1, 0));
	for (size_t i = 1; i < 6; i++)
		assert_int_equal(loc[i], loc[i - 1] + size[i - 1]);

	add_entry(&want, SEG_RECORD, ID_A, META_A, PARAMS_A);
	add_entry(&want, SEG_RECORD, ID_B, META_B, PARAMS_B);
	add_entry(&want, SEG_TOMBSTONE, ID_A, NULL, NULL);
	add_entry(&want, SEG_RECORD, ID_C, NULL, PARAMS_A);
	add_entry(&want, SEG_RECORD, ID_B, META_C, PARAMS_B);
	add_entry(&want, SEG_RECORD, ID_D, META_A, NULL);
	file = get_segment(f, 1, &len);
	assert_non_null(file);
	assert_int_equal(len, want.n);
	assert_memory_equal(file, want.p, want.n);

	l = seglog_free(l);
	assert_int_equal(reopen_scan(f, &seen), 0);
	assert_int_equal(seen.n, 6);
	assert_seen(&seen.v[0], SEG_RECORD, ID_A, META_A, PARAMS_A);
	assert_seen(&seen.v[1], SEG_RECORD, ID_B, META_B, PARAMS_B);
	assert_seen(&seen.v[2], SEG_TOMBSTONE, ID_A, NULL, NULL);
	assert_seen(&seen.v[3], SEG_RECORD, ID_C, NULL, PARAMS_A);
	assert_seen(&seen.v[4], SEG_RECORD, ID_B, META_C, PARAMS_B);
	assert_seen(&seen.v[5], SEG_RECORD, ID_D, META_A, NULL);
	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(seen.v[i].loc, loc[i]);
		assert_int_equal(seen.v[i].size, size[i]);
	}
}

static void test_seglog_abort_drops_queued_entries(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = open_scanned(f, NULL, NULL);
	_cleanup_(seens_done) Seens seen = {};
	SegLoc a, b;

	a = append(l, SEG_RECORD, ID_A, META_A, PARAMS_A, NULL);
	assert_int_equal(seglog_commit(l), 0);
	(void) append(l, SEG_RECORD, ID_B, META_B, PARAMS_B, NULL);
	seglog_abort(l);
	assert_false(seglog_pending(l));
	assert_int_equal(seglog_commit(l), 0);
	/* The next entry takes the place the aborted one would have had. */
	b = append(l, SEG_RECORD, ID_C, META_C, PARAMS_A, NULL);
	assert_int_equal(b, a + entry_size(ID_A, META_A, PARAMS_A));
	assert_int_equal(seglog_commit(l), 0);
	l = seglog_free(l);

	assert_int_equal(reopen_scan(f, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_seen(&seen.v[0], SEG_RECORD, ID_A, META_A, PARAMS_A);
	assert_seen(&seen.v[1], SEG_RECORD, ID_C, META_C, PARAMS_A);
}

static int stop_at_second(const SegEntry *e, void *userdata) {
	int *n = userdata;

	return ++*n == 2 ? -ECANCELED : 0;
}

static void test_seglog_scan_stops_when_the_visitor_fails(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = open_scanned(f, NULL, NULL), *again = NULL;
	int n = 0;

	(void) append(l, SEG_RECORD, ID_A, META_A, PARAMS_A, NULL);
	(void) append(l, SEG_RECORD, ID_B, META_B, PARAMS_B, NULL);
	(void) append(l, SEG_RECORD, ID_C, META_C, PARAMS_B, NULL);
	assert_int_equal(seglog_commit(l), 0);
	again = open_log(f);
	assert_int_equal(seglog_scan(again, stop_at_second, &n), -ECANCELED);
	assert_int_equal(n, 2);
}

/* ---- reading back ------------------------------------------------------------------- */

static void check_read(SegLog *l, SegLoc loc, uint32_t size, SegKind kind, const char *id, const char *meta,
                       const char *params) {
	_cleanup_(freep) char *buf = NULL;
	SegEntry e;

	assert_int_equal(seglog_read(l, loc, size, &e, &buf), 0);
	assert_non_null(buf);
	check_entry_shape(&e);
	assert_int_equal(e.loc, loc);
	assert_int_equal(e.size, size);
	assert_int_equal(e.kind, kind);
	assert_int_equal(e.id_len, strlen(id));
	assert_memory_equal(e.id, id, e.id_len);
	assert_int_equal(e.meta_len, meta ? strlen(meta) : 0);
	if (meta)
		assert_memory_equal(e.meta, meta, e.meta_len);
	assert_int_equal(e.params_len, params ? strlen(params) : 0);
	if (params)
		assert_memory_equal(e.params, params, e.params_len);
	assert_true(e.raw >= buf && e.raw + e.size <= buf + size);
}

static void test_seglog_read_returns_the_entry_at_its_location(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = open_scanned(f, NULL, NULL);
	_cleanup_(seens_done) Seens seen = {};
	_cleanup_(freep) char *buf = NULL;
	SegLoc a, b, t;
	uint32_t as, bs, ts;
	SegEntry e;

	a = append(l, SEG_RECORD, ID_A, META_A, PARAMS_A, &as);
	t = append(l, SEG_TOMBSTONE, ID_C, NULL, NULL, &ts);
	b = append(l, SEG_RECORD, ID_B, META_B, PARAMS_B, &bs);
	assert_int_equal(seglog_commit(l), 0);

	/* In the session that wrote them... */
	check_read(l, a, as, SEG_RECORD, ID_A, META_A, PARAMS_A);
	check_read(l, t, ts, SEG_TOMBSTONE, ID_C, NULL, NULL);
	check_read(l, b, bs, SEG_RECORD, ID_B, META_B, PARAMS_B);
	l = seglog_free(l);

	/* ...and after a reopen, at the locations the scan reports. */
	l = open_scanned(f, &seen, NULL);
	assert_int_equal(seen.n, 3);
	assert_int_equal(seen.v[0].loc, a);
	assert_int_equal(seen.v[1].loc, t);
	assert_int_equal(seen.v[2].loc, b);
	for (size_t i = 0; i < seen.n; i++)
		assert_int_equal(seen.v[i].size, i == 0 ? as : i == 1 ? ts : bs);
	check_read(l, a, as, SEG_RECORD, ID_A, META_A, PARAMS_A);
	check_read(l, b, bs, SEG_RECORD, ID_B, META_B, PARAMS_B);

	/* The wrong size, a place between entries, a segment that is not
	 * there: refused, and nothing handed out. */
	assert_int_equal(seglog_read(l, a, as + 1, &e, &buf), -EBADMSG);
	assert_int_equal(seglog_read(l, a, as - 1, &e, &buf), -EBADMSG);
	assert_int_equal(seglog_read(l, a + 1, as, &e, &buf), -EBADMSG);
	assert_int_equal(seglog_read(l, b, bs + 1000, &e, &buf), -EBADMSG); /* past the end */
	assert_int_equal(seglog_read(l, loc_of(7, 0), as, &e, &buf), -ENOENT);
	assert_int_equal(seglog_read(l, a, SEGLOG_HEADER_SIZE - 1, &e, &buf), -EINVAL);
	assert_null(buf);
}

/* Every byte of a stored entry is covered: flip any one and reading it back
 * fails rather than handing out something else. */
static void test_seglog_read_detects_a_flipped_byte(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = open_scanned(f, NULL, NULL);
	static const unsigned char flips[] = { 0x01, 0x80 };
	SegLoc a, b;
	uint32_t as, bs;

	a = append(l, SEG_RECORD, ID_A, META_A, PARAMS_A, &as);
	b = append(l, SEG_RECORD, ID_B, META_B, PARAMS_B, &bs);
	assert_int_equal(seglog_commit(l), 0);

	for (uint32_t i = 0; i < bs; i++)
		for (size_t x = 0; x < ELEMENTSOF(flips); x++) {
			_cleanup_(freep) char *buf = NULL;
			SegEntry e;
			int k;

			xor_segment_byte(f, 1, loc_offset(b) + i, flips[x]);
			k = seglog_read(l, b, bs, &e, &buf);
			if (k != -EBADMSG)
				fail_msg("byte %" PRIu32 " of the entry xor %#x: read gave %d, not -EBADMSG", i,
				         flips[x], k);
			assert_null(buf);
			/* The entry before it is not affected. */
			check_read(l, a, as, SEG_RECORD, ID_A, META_A, PARAMS_A);
			xor_segment_byte(f, 1, loc_offset(b) + i, flips[x]);
		}
	check_read(l, b, bs, SEG_RECORD, ID_B, META_B, PARAMS_B);
}

/* ---- failed commits ------------------------------------------------------------------- */

/* One round: commit a batch (C, D) with the at-th call of op failing (after
 * a first good batch A, B when into_existing). Returns false when the batch
 * made fewer such calls (the step does not exist). */
static bool failed_commit_round(Fixture *f, bool into_existing, Op op, int at, int err, size_t max_write) {
	_cleanup_(seglog_freep) SegLog *l = NULL;
	_cleanup_(seens_done) Seens seen = {};
	_cleanup_(freep) char *file = NULL;
	off_t good_size = 0;
	SegLoc e;
	uint32_t es;
	size_t len;
	int k;

	wipe(f);
	fault_reset();
	l = open_scanned(f, NULL, NULL);
	if (into_existing) {
		(void) append(l, SEG_RECORD, ID_A, META_A, PARAMS_A, NULL);
		(void) append(l, SEG_TOMBSTONE, ID_B, NULL, NULL, NULL);
		assert_int_equal(seglog_commit(l), 0);
		good_size = segment_size(f, 1);
	}

	fault_reset();
	fault.max_write = max_write;
	fault.fail[0] = (Fault) { .op = op, .at = at, .err = err };
	(void) append(l, SEG_RECORD, ID_C, META_C, PARAMS_A, NULL);
	(void) append(l, SEG_RECORD, ID_D, META_B, PARAMS_B, NULL);
	k = seglog_commit(l);
	if (fault.calls[op] < at) {
		assert_int_equal(k, 0);
		return false;
	}
	print_message("%s segment: fail %s #%d (%s)\n", into_existing ? "existing" : "new", op_names[op], at,
	              strerror(err));
	assert_int_equal(k, -err);
	assert_false(seglog_pending(l));
	fault_reset();

	/* Nothing of the batch is left: the segment is cut back, or gone. */
	if (into_existing) {
		assert_int_equal(segment_size(f, 1), good_size);
		assert_int_equal(count_log_files(f), 1);
	} else
		assert_int_equal(count_log_files(f), 0);

	/* The next commit starts a new segment file: after a failed fsync
	 * the old one's pages prove nothing. */
	e = append(l, SEG_RECORD, ID_E, META_A, PARAMS_B, &es);
	assert_int_equal(seglog_commit(l), 0);
	assert_int_equal(e, loc_of(into_existing ? 2 : 1, 0));
	file = get_segment(f, seglog_loc_segment(e), &len);
	assert_non_null(file);
	assert_int_equal(len, es);
	if (into_existing)
		assert_int_equal(segment_size(f, 1), good_size);
	l = seglog_free(l);

	/* What the next start sees: the batch never happened. */
	assert_int_equal(reopen_scan(f, &seen), 0);
	if (into_existing) {
		assert_int_equal(seen.n, 3);
		assert_seen(&seen.v[0], SEG_RECORD, ID_A, META_A, PARAMS_A);
		assert_seen(&seen.v[1], SEG_TOMBSTONE, ID_B, NULL, NULL);
	} else
		assert_int_equal(seen.n, 1);
	assert_seen(&seen.v[seen.n - 1], SEG_RECORD, ID_E, META_A, PARAMS_B);
	assert_int_equal(seen.v[seen.n - 1].loc, e);
	return true;
}

static void failed_commits(Fixture *f, bool into_existing) {
	static const int errnos[] = { EIO, ENOSPC };
	static const Op ops[] = { OP_OPENAT, OP_WRITE, OP_FSYNC };
	int rounds[_OP_MAX] = {};

	for (size_t o = 0; o < ELEMENTSOF(ops); o++)
		for (size_t e = 0; e < ELEMENTSOF(errnos); e++)
			for (int at = 1;; at++) {
				/* Short writes, so that the batch takes several. */
				if (!failed_commit_round(f, into_existing, ops[o], at, errnos[e], 16))
					break;
				rounds[ops[o]]++;
			}
	/* The batch made several writes and the fsyncs the design names:
	 * the segment's, plus the directory's for a new segment. */
	assert_true(rounds[OP_WRITE] >= 2 * 5);
	assert_int_equal(rounds[OP_FSYNC], 2 * (into_existing ? 1 : 2));
	assert_int_equal(rounds[OP_OPENAT], into_existing ? 0 : 2);
}

static void test_seglog_failed_commit_into_existing_segment_leaves_nothing(void **state) {
	failed_commits(*state, true);
}

static void test_seglog_failed_commit_of_new_segment_leaves_nothing(void **state) {
	failed_commits(*state, false);
}

/* A new segment whose batch failed and whose removal failed too: the name
 * is taken and the file may hold the batch. Later commits must still work
 * (a transient error must not fail every later insert until a restart), and
 * the next start must not read the failed batch back (seglog.h's promise):
 * the file is emptied and kept in the table, so its number is not used
 * again. */
static void test_seglog_failed_new_segment_that_cannot_be_removed_does_not_block_later_commits(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = NULL;
	_cleanup_(seens_done) Seens seen = {};
	SegLoc e1, e2;
	int k;

	l = open_scanned(f, NULL, NULL);
	fault_reset();
	fault.fail[0] = (Fault) { .op = OP_FSYNC, .at = 1, .err = EIO };
	fault.fail[1] = (Fault) { .op = OP_UNLINKAT, .at = 1, .err = EIO };
	(void) append(l, SEG_RECORD, ID_C, META_C, PARAMS_A, NULL);
	assert_int_equal(seglog_commit(l), -EIO);
	assert_int_equal(fault.calls[OP_UNLINKAT], 1);
	fault_reset();

	e1 = append(l, SEG_RECORD, ID_E, META_A, PARAMS_B, NULL);
	k = seglog_commit(l);
	if (k < 0)
		fail_msg("the commit after a failed one whose clean-up failed: %s", strerror(-k));
	e2 = append(l, SEG_RECORD, ID_F, META_B, PARAMS_A, NULL);
	assert_int_equal(seglog_commit(l), 0);
	assert_int_equal(seglog_loc_segment(e2), seglog_loc_segment(e1));
	l = seglog_free(l);

	/* C was never acknowledged: it must not come back. */
	assert_int_equal(reopen_scan(f, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_seen(&seen.v[0], SEG_RECORD, ID_E, META_A, PARAMS_B);
	assert_seen(&seen.v[1], SEG_RECORD, ID_F, META_B, PARAMS_A);
}

/* ---- segments ---------------------------------------------------------------------- */

/* A segment takes appends while it is below the target; the batch that
 * reaches it may overshoot; the next batch starts a new segment. */
static void test_seglog_segments_roll_over_at_target(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = open_scanned(f, NULL, NULL);
	_cleanup_(seens_done) Seens seen = {};
	size_t big_len = SEGLOG_SEGMENT_TARGET - 1 - SEGLOG_HEADER_SIZE - strlen(ID_A);
	_cleanup_(freep) char *big = filler(big_len, 'p'), *half = filler(3U * 1024U * 1024U, 'h');
	SegLoc loc;
	uint32_t size;

	/* Segment 1 ends one byte short of the target... */
	assert_int_equal(seglog_append(l, SEG_RECORD, ID_A, NULL, 0, big, big_len, &loc, &size), 0);
	assert_int_equal(size, SEGLOG_SEGMENT_TARGET - 1);
	assert_int_equal(seglog_commit(l), 0);
	assert_int_equal(loc, loc_of(1, 0));
	/* ...so it takes one more batch... */
	loc = append(l, SEG_TOMBSTONE, ID_B, NULL, NULL, &size);
	assert_int_equal(loc, loc_of(1, SEGLOG_SEGMENT_TARGET - 1));
	assert_int_equal(seglog_commit(l), 0);
	assert_int_equal(segment_size(f, 1), SEGLOG_SEGMENT_TARGET - 1 + size);
	/* ...and no more. */
	loc = append(l, SEG_RECORD, ID_C, META_C, PARAMS_A, &size);
	assert_int_equal(loc, loc_of(2, 0));
	assert_int_equal(seglog_commit(l), 0);

	/* One batch stays in one segment, however far past the target. */
	loc = append(l, SEG_RECORD, ID_D, NULL, half, NULL);
	assert_int_equal(loc, loc_of(2, size));
	loc = append(l, SEG_RECORD, ID_E, NULL, half, NULL);
	assert_int_equal(seglog_loc_segment(loc), 2);
	assert_int_equal(seglog_commit(l), 0);
	assert_true(segment_size(f, 2) > SEGLOG_SEGMENT_TARGET);
	loc = append(l, SEG_RECORD, ID_F, META_A, PARAMS_B, NULL);
	assert_int_equal(loc, loc_of(3, 0));
	assert_int_equal(seglog_commit(l), 0);
	assert_int_equal(seglog_segments(l), 3);
	l = seglog_free(l);

	assert_int_equal(reopen_scan(f, &seen), 0);
	assert_int_equal(seen.n, 6);
	assert_string_equal(seen.v[0].id, ID_A);
	assert_int_equal(seen.v[0].params_len, big_len);
	assert_seen(&seen.v[1], SEG_TOMBSTONE, ID_B, NULL, NULL);
	assert_seen(&seen.v[2], SEG_RECORD, ID_C, META_C, PARAMS_A);
	assert_seen(&seen.v[3], SEG_RECORD, ID_D, NULL, half);
	assert_seen(&seen.v[4], SEG_RECORD, ID_E, NULL, half);
	assert_seen(&seen.v[5], SEG_RECORD, ID_F, META_A, PARAMS_B);
	assert_int_equal(seen.v[5].loc, loc_of(3, 0));
}

/* After a restart the last segment goes on taking appends when it is whole
 * and below the target; otherwise a new one starts. */
static void test_seglog_reopened_log_appends_to_its_last_whole_segment(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = NULL;
	_cleanup_(seens_done) Seens seen = {};
	_cleanup_(bytes_done) Bytes full = {}, short_of = {};
	size_t n = SEGLOG_SEGMENT_TARGET - SEGLOG_HEADER_SIZE - strlen(ID_A);
	_cleanup_(freep) char *pad = filler(n, 'x');
	SegLoc a, b, c;
	uint32_t as;

	l = open_scanned(f, NULL, NULL);
	a = append(l, SEG_RECORD, ID_A, META_A, PARAMS_A, &as);
	assert_int_equal(seglog_commit(l), 0);
	l = seglog_free(l);

	l = open_scanned(f, NULL, NULL);
	b = append(l, SEG_RECORD, ID_B, META_B, PARAMS_B, NULL);
	assert_int_equal(b, a + as);
	assert_int_equal(seglog_commit(l), 0);
	l = seglog_free(l);
	assert_int_equal(count_log_files(f), 1);
	l = open_scanned(f, &seen, NULL);
	assert_int_equal(seen.n, 2);
	assert_int_equal(seen.v[1].loc, b);
	assert_seen(&seen.v[1], SEG_RECORD, ID_B, META_B, PARAMS_B);
	l = seglog_free(l);
	seens_done(&seen);

	/* Exactly at the target: full. */
	wipe(f);
	assert_int_equal(add_entry_n(&full, SEG_RECORD, ID_A, "", 0, pad, n), SEGLOG_SEGMENT_TARGET);
	put_segment(f, 1, full.p, full.n);
	l = open_scanned(f, NULL, NULL);
	c = append(l, SEG_RECORD, ID_C, META_C, PARAMS_A, NULL);
	assert_int_equal(c, loc_of(2, 0));
	assert_int_equal(seglog_commit(l), 0);
	l = seglog_free(l);

	/* One byte short: one more batch fits. */
	wipe(f);
	assert_int_equal(add_entry_n(&short_of, SEG_RECORD, ID_A, "", 0, pad, n - 1), SEGLOG_SEGMENT_TARGET - 1);
	put_segment(f, 1, short_of.p, short_of.n);
	l = open_scanned(f, NULL, NULL);
	c = append(l, SEG_RECORD, ID_C, META_C, PARAMS_A, NULL);
	assert_int_equal(c, loc_of(1, SEGLOG_SEGMENT_TARGET - 1));
	assert_int_equal(seglog_commit(l), 0);
	l = seglog_free(l);

	/* Several segments: only the last one takes appends. */
	wipe(f);
	{
		_cleanup_(bytes_done) Bytes s1 = {}, s3 = {};

		add_entry(&s1, SEG_RECORD, ID_A, META_A, PARAMS_A);
		add_entry(&s3, SEG_RECORD, ID_B, META_B, PARAMS_B);
		put_segment(f, 1, s1.p, s1.n);
		put_segment(f, 3, s3.p, s3.n);
		l = open_scanned(f, &seen, NULL);
		assert_int_equal(seen.n, 2);
		assert_int_equal(seen.v[1].loc, loc_of(3, 0));
		c = append(l, SEG_RECORD, ID_C, META_C, PARAMS_A, NULL);
		assert_int_equal(c, loc_of(3, s3.n));
		assert_int_equal(seglog_commit(l), 0);
	}
}

/* ---- damage ---------------------------------------------------------------------------- */

static void assert_quarantined(Fixture *f, uint32_t seg, size_t off, const void *bytes, size_t len) {
	_cleanup_(freep) char *kept = NULL;
	char name[64], sname[32];
	size_t got;

	seg_name(seg, sname);
	snprintf(name, sizeof name, "%s@%zu", sname, off);
	kept = get_file(f->qfd, name, &got);
	if (!kept)
		fail_msg("quarantine/%s is missing", name);
	assert_int_equal(got, len);
	assert_memory_equal(kept, bytes, len);
}

/* Entries to copy in a compaction: all but the dead, tombstones only
 * where they still guard something (outbox.c's rule). */
typedef struct Compact {
	SegLog *l;
	const SegLoc *dead;
	size_t n_dead;
	bool oldest;
	SegLoc from[8], to[8];
	size_t n;
} Compact;

static int compact_visit(const SegEntry *e, void *userdata) {
	Compact *c = userdata;
	int k;

	check_entry_shape(e);
	for (size_t i = 0; i < c->n_dead; i++)
		if (c->dead[i] == e->loc)
			return 0;
	if (e->kind == SEG_TOMBSTONE && c->oldest)
		return 0;
	assert_true(c->n < ELEMENTSOF(c->from));
	c->from[c->n] = e->loc;
	k = seglog_copy(c->l, e, &c->to[c->n]);
	if (k < 0)
		return k;
	c->n++;
	return 0;
}

/* What outbox.c's compact_maybe() does with the victim. */
static void compact(SegLog *l, uint32_t victim, Compact *c) {
	c->l = l;
	c->oldest = seglog_is_oldest(l, victim);
	assert_int_equal(seglog_scan_segment(l, victim, compact_visit, c), 0);
	assert_int_equal(seglog_commit(l), 0);
	assert_int_equal(seglog_drop(l, victim), 0);
}

/* A crash in the middle of a batch: whatever part of the last entry made
 * it to disk is kept in quarantine, the entries before it are served, the
 * segment takes no more appends and compaction rewrites it away. */
static void test_seglog_torn_tail_is_quarantined_and_the_rest_served(void **state) {
	Fixture *f = *state;
	_cleanup_(bytes_done) Bytes seg = {};
	size_t a_size, c_size, c_off;
	size_t cuts[] = { 1, 4, SEGLOG_HEADER_SIZE - 1, SEGLOG_HEADER_SIZE, SEGLOG_HEADER_SIZE + 5, 0, 0 };

	a_size = add_entry(&seg, SEG_RECORD, ID_A, META_A, PARAMS_A);
	add_entry(&seg, SEG_TOMBSTONE, ID_B, NULL, NULL);
	c_off = seg.n;
	c_size = add_entry(&seg, SEG_RECORD, ID_C, META_C, PARAMS_B);
	cuts[5] = c_size / 2;
	cuts[6] = c_size - 1;

	for (size_t i = 0; i < ELEMENTSOF(cuts); i++) {
		_cleanup_(seglog_freep) SegLog *l = NULL;
		_cleanup_(seens_done) Seens seen = {}, again = {};
		Compact c = {};
		SegLoc d;
		int damaged;

		print_message("torn after %zu of %zu bytes of the last entry\n", cuts[i], c_size);
		wipe(f);
		put_segment(f, 1, seg.p, seg.n);
		truncate_segment(f, 1, (off_t) (c_off + cuts[i]));
		l = open_scanned(f, &seen, &damaged);
		assert_int_equal(damaged, 1);
		assert_int_equal(seen.n, 2);
		assert_seen(&seen.v[0], SEG_RECORD, ID_A, META_A, PARAMS_A);
		assert_seen(&seen.v[1], SEG_TOMBSTONE, ID_B, NULL, NULL);
		assert_int_equal(seen.v[1].loc, loc_of(1, a_size));
		assert_int_equal(count_files(f->qfd), 1);
		assert_quarantined(f, 1, c_off, seg.p + c_off, cuts[i]);

		/* No appends after the damage; the segment is offered for
		 * compaction. */
		d = append(l, SEG_RECORD, ID_D, META_A, PARAMS_A, NULL);
		assert_int_equal(d, loc_of(2, 0));
		assert_int_equal(seglog_commit(l), 0);
		assert_int_equal(seglog_victim(l), 1);
		compact(l, 1, &c);
		/* A; not the tombstone, which in the oldest segment guards nothing. */
		assert_int_equal(c.n, 1);
		assert_int_equal(c.from[0], loc_of(1, 0));
		assert_int_equal(seglog_victim(l), 0);
		l = seglog_free(l);
		assert_false(segment_exists(f, 1));

		/* Nothing lost: the good entry now lives in segment 2, the
		 * damaged bytes in quarantine/. */
		assert_int_equal(reopen_scan(f, &again), 0);
		assert_int_equal(again.n, 2);
		assert_seen(&again.v[0], SEG_RECORD, ID_D, META_A, PARAMS_A);
		assert_seen(&again.v[1], SEG_RECORD, ID_A, META_A, PARAMS_A);
		assert_int_equal(again.v[1].loc, c.to[0]);
		assert_int_equal(again.v[1].size, a_size);
		assert_quarantined(f, 1, c_off, seg.p + c_off, cuts[i]);
	}
}

/* Zeros after the last entry (a file extended but never written, as a crash
 * can leave on some file systems): damage like any other. */
static void test_seglog_zero_filled_tail_is_quarantined(void **state) {
	Fixture *f = *state;
	_cleanup_(bytes_done) Bytes seg = {};
	_cleanup_(seens_done) Seens seen = {};
	static const char zeros[4096];
	size_t end;

	add_entry(&seg, SEG_RECORD, ID_A, META_A, PARAMS_A);
	end = seg.n;
	bytes_add(&seg, zeros, sizeof zeros);
	put_segment(f, 1, seg.p, seg.n);
	assert_int_equal(reopen_scan(f, &seen), 1);
	assert_int_equal(seen.n, 1);
	assert_quarantined(f, 1, end, zeros, sizeof zeros);
}

/* A corrupt entry in the middle: it and only it is skipped; the scan picks
 * up again at the next good entry. */
static void test_seglog_corrupt_entry_in_the_middle_does_not_hide_the_rest(void **state) {
	Fixture *f = *state;
	_cleanup_(bytes_done) Bytes seg = {};
	size_t off[4], size[4];
	/* A byte of the payload, the checksum, a length (larger and smaller),
	 * the magic, the kind, the id length. */
	const struct {
		size_t at;
		unsigned char x;
	} hits[] = {
		{ SEGLOG_HEADER_SIZE + 30, 0x20 }, { 16, 0xFF }, { 8, 0x40 }, { 8, 0x01 }, { 13, 0x01 },
		{ 0, 'H' ^ 'X' }, { 4, 0x03 }, { 5, 0x01 }, { 6, 0x01 },
	};

	off[0] = 0;
	size[0] = add_entry(&seg, SEG_RECORD, ID_A, META_A, PARAMS_A);
	off[1] = seg.n;
	size[1] = add_entry(&seg, SEG_RECORD, ID_B, META_B, PARAMS_B);
	off[2] = seg.n;
	size[2] = add_entry(&seg, SEG_TOMBSTONE, ID_C, NULL, NULL);
	off[3] = seg.n;
	size[3] = add_entry(&seg, SEG_RECORD, ID_D, META_C, PARAMS_A);

	for (size_t h = 0; h < ELEMENTSOF(hits); h++)
		for (size_t victim = 0; victim < 4; victim++) {
			_cleanup_(seens_done) Seens seen = {};
			size_t j = 0;

			if (hits[h].at >= size[victim])
				continue;
			wipe(f);
			put_segment(f, 1, seg.p, seg.n);
			xor_segment_byte(f, 1, (off_t) (off[victim] + hits[h].at), hits[h].x);
			assert_int_equal(reopen_scan(f, &seen), 1);
			if (seen.n != 3)
				fail_msg("entry %zu damaged at byte %zu: %zu entries visited, not 3", victim,
				         hits[h].at, seen.n);
			for (size_t i = 0; i < 4; i++) {
				if (i == victim)
					continue;
				assert_int_equal(seen.v[j].loc, loc_of(1, (uint32_t) off[i]));
				assert_int_equal(seen.v[j].size, size[i]);
				assert_memory_equal(seen.v[j].raw, seg.p + off[i], size[i]);
				j++;
			}
			{
				/* Exactly the damaged entry's bytes, as they are now. */
				_cleanup_(freep) char *now = get_segment(f, 1, NULL);

				assert_int_equal(count_files(f->qfd), 1);
				assert_quarantined(f, 1, off[victim], now + off[victim], size[victim]);
			}
		}

	/* Two of them: two regions. */
	{
		_cleanup_(seens_done) Seens seen = {};

		wipe(f);
		put_segment(f, 1, seg.p, seg.n);
		xor_segment_byte(f, 1, (off_t) (off[0] + SEGLOG_HEADER_SIZE + 2), 0x10);
		xor_segment_byte(f, 1, (off_t) (off[2] + 16), 0x10);
		assert_int_equal(reopen_scan(f, &seen), 2);
		assert_int_equal(seen.n, 2);
		assert_int_equal(seen.v[0].loc, loc_of(1, (uint32_t) off[1]));
		assert_int_equal(seen.v[1].loc, loc_of(1, (uint32_t) off[3]));
		assert_int_equal(count_files(f->qfd), 2);
	}
}

/* Garbage between entries, including things that look like the start of
 * one: the scan resynchronises at the next entry that checks out, and the
 * garbage is kept exactly. */
static void test_seglog_garbage_between_entries_is_quarantined(void **state) {
	Fixture *f = *state;
	_cleanup_(bytes_done) Bytes seg = {}, garbage = {}, fake = {};
	_cleanup_(seens_done) Seens seen = {};
	/* A header's start with an id length, then lengths out of range. */
	static const char false_start[] = "\x00\x01\x02 not an entry HLE1\x01\x1c\x00\x00";
	size_t a_size, g_off, b_off, c_off;

	/* A would-be entry whose checksum is wrong, and a few false starts. */
	add_entry(&fake, SEG_RECORD, ID_E, META_A, PARAMS_A);
	fake.p[16] ^= 0x5A;
	bytes_add(&garbage, "HLE1", 4);
	bytes_add(&garbage, "HHLE", 4);
	bytes_add(&garbage, false_start, sizeof false_start - 1);
	bytes_add(&garbage, fake.p, fake.n);
	bytes_add(&garbage, "H", 1);

	a_size = add_entry(&seg, SEG_RECORD, ID_A, META_A, PARAMS_A);
	g_off = seg.n;
	bytes_add(&seg, garbage.p, garbage.n);
	b_off = seg.n;
	add_entry(&seg, SEG_RECORD, ID_B, META_B, PARAMS_B);
	c_off = seg.n;
	add_entry(&seg, SEG_TOMBSTONE, ID_C, NULL, NULL);
	put_segment(f, 1, seg.p, seg.n);

	assert_int_equal(reopen_scan(f, &seen), 1);
	assert_int_equal(seen.n, 3);
	assert_int_equal(seen.v[0].loc, loc_of(1, 0));
	assert_int_equal(seen.v[0].size, a_size);
	assert_seen(&seen.v[1], SEG_RECORD, ID_B, META_B, PARAMS_B);
	assert_int_equal(seen.v[1].loc, loc_of(1, (uint32_t) b_off));
	assert_seen(&seen.v[2], SEG_TOMBSTONE, ID_C, NULL, NULL);
	assert_int_equal(seen.v[2].loc, loc_of(1, (uint32_t) c_off));
	assert_quarantined(f, 1, g_off, garbage.p, garbage.n);
	seens_done(&seen);

	/* Garbage first, then entries. */
	wipe(f);
	bytes_done(&seg);
	bytes_add(&seg, garbage.p, garbage.n);
	b_off = seg.n;
	add_entry(&seg, SEG_RECORD, ID_B, META_B, PARAMS_B);
	put_segment(f, 1, seg.p, seg.n);
	assert_int_equal(reopen_scan(f, &seen), 1);
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.v[0].loc, loc_of(1, (uint32_t) b_off));
	assert_quarantined(f, 1, 0, garbage.p, garbage.n);
}

/* Reopening a damaged log again and again keeps one copy of each region,
 * and logs each one with the segment and offset. */
static void test_seglog_damage_is_logged_and_kept_once_per_region(void **state) {
	Fixture *f = *state;
	_cleanup_(bytes_done) Bytes seg = {};
	_cleanup_(freep) char *logged = NULL;
	char log_name[] = "stderr.log";
	size_t a_size;
	int saved, fd, level = log_get_max_level();

	a_size = add_entry(&seg, SEG_RECORD, ID_A, META_A, PARAMS_A);
	add_entry(&seg, SEG_RECORD, ID_B, META_B, PARAMS_B);
	put_segment(f, 1, seg.p, seg.n - 3);

	fd = openat(f->dirfd, log_name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	log_setup(LOG_TARGET_STDERR);
	log_set_max_level(LOG_INFO);
	for (int i = 0; i < 3; i++) {
		_cleanup_(seens_done) Seens seen = {};

		assert_int_equal(reopen_scan(f, &seen), 1);
		assert_int_equal(seen.n, 1);
	}
	dup2(saved, STDERR_FILENO);
	close(saved);
	log_set_max_level(level);

	assert_int_equal(count_files(f->qfd), 1);
	assert_quarantined(f, 1, a_size, seg.p + a_size, seg.n - 3 - a_size);
	logged = get_file(f->dirfd, log_name, NULL);
	assert_non_null(logged);
	assert_non_null(strstr(logged, "0000000000000001.log"));
	{
		char where[64];

		snprintf(where, sizeof where, "0000000000000001.log@%zu", a_size);
		assert_non_null(strstr(logged, where));
	}
	assert_true(strncmp(logged, "<4>", 3) == 0); /* LOG_WARNING */
}

/* A quarantined file from before (segment numbers start again at 1 once a
 * log was emptied) is never replaced: the new region goes next to it. The
 * same region found again at the next start is not kept twice. */
static void test_seglog_quarantine_never_replaces_an_earlier_copy(void **state) {
	Fixture *f = *state;
	_cleanup_(bytes_done) Bytes seg = {};
	_cleanup_(freep) char *earlier = NULL, *kept = NULL;
	char name[64], name1[72];
	size_t a_size, len;

	a_size = add_entry(&seg, SEG_RECORD, ID_A, META_A, PARAMS_A);
	add_entry(&seg, SEG_RECORD, ID_B, META_B, PARAMS_B);
	put_segment(f, 1, seg.p, seg.n - 1);
	snprintf(name, sizeof name, "0000000000000001.log@%zu", a_size);
	snprintf(name1, sizeof name1, "%s.1", name);
	put_file(f->qfd, name, "from an earlier log", 19);

	for (int i = 0; i < 2; i++) {
		_cleanup_(seens_done) Seens seen = {};

		assert_int_equal(reopen_scan(f, &seen), 1);
		assert_int_equal(seen.n, 1);
		assert_int_equal(count_files(f->qfd), 2);
	}
	earlier = get_file(f->qfd, name, &len);
	assert_non_null(earlier);
	assert_string_equal(earlier, "from an earlier log");
	kept = get_file(f->qfd, name1, &len);
	if (!kept)
		fail_msg("quarantine/%s is missing", name1);
	assert_int_equal(len, seg.n - 1 - a_size);
	assert_memory_equal(kept, seg.p + a_size, len);
}

/* Damaged bytes that cannot be copied to quarantine/ stay where they are:
 * the segment is never offered for compaction nor dropped. */
static void test_seglog_damaged_segment_that_cannot_be_quarantined_is_kept(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = NULL;
	_cleanup_(bytes_done) Bytes seg = {};
	_cleanup_(seens_done) Seens seen = {};
	int damaged;

	add_entry(&seg, SEG_RECORD, ID_A, META_A, PARAMS_A);
	add_entry(&seg, SEG_RECORD, ID_B, META_B, PARAMS_B);
	seg.p[seg.n - 1] ^= 1;
	put_segment(f, 1, seg.p, seg.n);

	fault.fail[0] = (Fault) { .op = OP_OPENAT, .at = 1, .err = ENOSPC };
	l = open_scanned(f, &seen, &damaged);
	assert_true(fault.calls[OP_OPENAT] >= 1);
	fault_reset();
	assert_int_equal(damaged, 1);
	assert_int_equal(seen.n, 1);
	assert_int_equal(count_files(f->qfd), 0);

	(void) append(l, SEG_RECORD, ID_C, META_C, PARAMS_A, NULL);
	assert_int_equal(seglog_commit(l), 0);
	assert_int_equal(seglog_victim(l), 0);
	assert_int_equal(seglog_drop(l, 1), -EINVAL);
	assert_true(segment_exists(f, 1));
	l = seglog_free(l);

	/* The next start gets it out. */
	seens_done(&seen);
	l = open_scanned(f, &seen, &damaged);
	assert_int_equal(damaged, 1);
	assert_int_equal(count_files(f->qfd), 1);
	assert_int_equal(seglog_victim(l), 1);
}

static void test_seglog_zero_length_segment(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = NULL;
	_cleanup_(bytes_done) Bytes s2 = {};
	_cleanup_(seens_done) Seens seen = {};
	SegLoc loc;

	/* The only segment, empty (a crash right after creating it): whole, so
	 * it takes the next batch at offset 0. */
	put_segment(f, 1, "", 0);
	l = open_scanned(f, &seen, NULL);
	assert_int_equal(seen.n, 0);
	assert_int_equal(seglog_segments(l), 1);
	assert_int_equal(seglog_victim(l), 0);
	loc = append(l, SEG_RECORD, ID_A, META_A, PARAMS_A, NULL);
	assert_int_equal(loc, loc_of(1, 0));
	assert_int_equal(seglog_commit(l), 0);
	l = seglog_free(l);
	assert_int_equal(reopen_scan(f, &seen), 0);
	assert_int_equal(seen.n, 1);
	seens_done(&seen);

	/* An empty segment before others: nothing in it, and it goes away at
	 * the first compaction. */
	wipe(f);
	put_segment(f, 1, "", 0);
	add_entry(&s2, SEG_RECORD, ID_B, META_B, PARAMS_B);
	put_segment(f, 2, s2.p, s2.n);
	l = open_scanned(f, &seen, NULL);
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.v[0].loc, loc_of(2, 0));
	assert_int_equal(seglog_victim(l), 1);
	assert_int_equal(seglog_drop(l, 1), 0);
	assert_false(segment_exists(f, 1));
	assert_int_equal(seglog_segments(l), 1);
}

/* Files that are not segments are neither read, nor quarantined, nor removed. */
static void test_seglog_ignores_files_that_are_not_segments(void **state) {
	Fixture *f = *state;
	static const char *const strangers[] = {
		"README",
		"0000000000000001.log.tmp",
		"0000000000000001.LOG",
		"000000000000000A.log",
		"000000000000000g.log",
		"0000000000000000.log",
		"00000000ffffffff.log",
		"ffffffffffffffff.log",
		"1.log",
		"00000000000000001.log",
		".0000000000000001.log",
		"0000000000000001.log~",
		"0000000000000001.log@0",
	};
	_cleanup_(seglog_freep) SegLog *l = NULL;
	_cleanup_(bytes_done) Bytes s2 = {}, junk = {};
	_cleanup_(seens_done) Seens seen = {};
	_cleanup_(closep) int dfd = open_log_dir(f);
	SegLoc loc;

	/* They even hold entries: they must still not be read. */
	add_entry(&junk, SEG_RECORD, ID_F, META_C, PARAMS_B);
	bytes_add(&junk, "trailing junk", 13);
	for (size_t i = 0; i < ELEMENTSOF(strangers); i++)
		put_file(dfd, strangers[i], junk.p, junk.n);
	assert_int_equal(mkdirat(dfd, "subdir", 0700), 0);
	add_entry(&s2, SEG_RECORD, ID_B, META_B, PARAMS_B);
	put_segment(f, 2, s2.p, s2.n);

	l = open_scanned(f, &seen, NULL);
	assert_int_equal(seglog_segments(l), 1);
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.v[0].loc, loc_of(2, 0));
	assert_int_equal(count_files(f->qfd), 0);
	loc = append(l, SEG_RECORD, ID_C, META_C, PARAMS_A, NULL);
	assert_int_equal(loc, loc_of(2, s2.n));
	assert_int_equal(seglog_commit(l), 0);
	l = seglog_free(l);

	for (size_t i = 0; i < ELEMENTSOF(strangers); i++) {
		_cleanup_(freep) char *data = NULL;
		size_t len;

		data = get_file(dfd, strangers[i], &len);
		if (!data)
			fail_msg("%s was removed", strangers[i]);
		assert_int_equal(len, junk.n);
		assert_memory_equal(data, junk.p, junk.n);
	}
	assert_int_equal(count_files(dfd), ELEMENTSOF(strangers) + 2);
}

/* ---- compaction ----------------------------------------------------------------------- */

#define BIG (100U * 1024U) /* three of these make a segment too big to count as tiny */

/* Segments of three big records each: 1 = X1..X3, 2 = Y1..Y3, 3 (the last,
 * active) = Z1. */
static void put_three_segments(Fixture *f, const char *pad, size_t off1[3], size_t off2[3], size_t *ret_size) {
	_cleanup_(bytes_done) Bytes s1 = {}, s2 = {}, s3 = {};
	static const char *const x[] = { "r_X1", "r_X2", "r_X3" }, *const y[] = { "r_Y1", "r_Y2", "r_Y3" };

	for (size_t i = 0; i < 3; i++) {
		off1[i] = s1.n;
		*ret_size = add_entry(&s1, SEG_RECORD, x[i], META_A, pad);
		off2[i] = s2.n;
		add_entry(&s2, SEG_RECORD, y[i], META_A, pad);
	}
	add_entry(&s3, SEG_RECORD, "r_Z1", META_C, PARAMS_A);
	put_segment(f, 1, s1.p, s1.n);
	put_segment(f, 2, s2.p, s2.n);
	put_segment(f, 3, s3.p, s3.n);
	assert_true(s1.n >= SEGLOG_SEGMENT_TARGET / 16);
}

/* A closed segment that is mostly garbage is the victim; a closed one that
 * is mostly current is not; the active one never is, however dead. After
 * its current entries are copied, committed and it is dropped, a reopen
 * sees the copies and not the dropped segment. */
static void test_seglog_compaction_picks_mostly_dead_segment_and_keeps_current_entries(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = NULL;
	_cleanup_(seens_done) Seens seen = {}, after = {};
	_cleanup_(freep) char *pad = filler(BIG, 'b');
	size_t off1[3], off2[3], size, z_size = entry_size("r_Z1", META_C, PARAMS_A);
	SegLoc dead[2];
	Compact c = {};

	put_three_segments(f, pad, off1, off2, &size);
	l = open_scanned(f, &seen, NULL);
	assert_int_equal(seen.n, 7);
	assert_int_equal(seglog_segments(l), 3);

	/* All current: nothing worth rewriting. */
	assert_int_equal(seglog_victim(l), 0);
	/* The active segment, all garbage (and tiny): still not. */
	seglog_dead(l, loc_of(3, 0), (uint32_t) z_size);
	assert_int_equal(seglog_victim(l), 0);
	/* One third garbage: not yet. */
	seglog_dead(l, loc_of(2, (uint32_t) off2[0]), (uint32_t) size);
	assert_int_equal(seglog_victim(l), 0);
	/* Two thirds: yes. */
	seglog_dead(l, loc_of(2, (uint32_t) off2[1]), (uint32_t) size);
	assert_int_equal(seglog_victim(l), 2);
	assert_false(seglog_is_oldest(l, 2));
	assert_true(seglog_is_oldest(l, 1));

	dead[0] = loc_of(2, (uint32_t) off2[0]);
	dead[1] = loc_of(2, (uint32_t) off2[1]);
	c.dead = dead;
	c.n_dead = 2;
	compact(l, 2, &c);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.from[0], loc_of(2, (uint32_t) off2[2]));
	/* Copied to the end of the log: the active segment. */
	assert_int_equal(c.to[0], loc_of(3, (uint32_t) z_size));
	assert_false(segment_exists(f, 2));
	assert_int_equal(seglog_segments(l), 2);
	assert_int_equal(seglog_victim(l), 0);
	{
		_cleanup_(freep) char *buf = NULL;
		SegEntry e;

		assert_int_equal(seglog_read(l, c.to[0], (uint32_t) size, &e, &buf), 0);
		assert_memory_equal(e.id, "r_Y3", 4);
	}
	l = seglog_free(l);

	assert_int_equal(reopen_scan(f, &after), 0);
	assert_int_equal(after.n, 5);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(after.v[i].loc, loc_of(1, (uint32_t) off1[i]));
		assert_memory_equal(after.v[i].raw, seen.v[i].raw, size);
	}
	assert_string_equal(after.v[3].id, "r_Z1");
	assert_string_equal(after.v[4].id, "r_Y3");
	assert_int_equal(after.v[4].loc, c.to[0]);
	/* The copy is verbatim. */
	assert_int_equal(after.v[4].size, seen.v[5].size);
	assert_memory_equal(after.v[4].raw, seen.v[5].raw, size);
}

/* A small closed segment is rewritten even when all of it is current: the
 * log does not keep many little files. */
static void test_seglog_compaction_takes_tiny_closed_segments(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = NULL;
	_cleanup_(bytes_done) Bytes s1 = {}, s2 = {};

	add_entry(&s1, SEG_RECORD, ID_A, META_A, PARAMS_A);
	add_entry(&s2, SEG_RECORD, ID_B, META_B, PARAMS_B);
	put_segment(f, 1, s1.p, s1.n);
	put_segment(f, 2, s2.p, s2.n);
	l = open_scanned(f, NULL, NULL);
	assert_int_equal(seglog_victim(l), 1);
}

/* Tombstones guard against older versions in older segments: they count as
 * kept, except in the oldest segment, where there is nothing left to guard
 * against. */
static void test_seglog_compaction_counts_tombstones_unless_oldest(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = NULL;
	_cleanup_(bytes_done) Bytes s1 = {}, s2 = {}, s3 = {}, s4 = {};
	_cleanup_(seens_done) Seens seen = {};
	size_t x_size = 3 * BIG;
	_cleanup_(freep) char *pad = filler(x_size, 'x');
	uint32_t x_entry;
	SegLoc x_loc;
	Compact c = {};
	size_t n_tomb = 0;

	x_entry = (uint32_t) add_entry(&s1, SEG_RECORD, "r_X", META_A, pad);
	while (s2.n < SEGLOG_SEGMENT_TARGET / 16 + 1000) {
		char id[32];

		snprintf(id, sizeof id, "r_T%06zu", n_tomb++);
		add_entry(&s2, SEG_TOMBSTONE, id, NULL, NULL);
		add_entry(&s3, SEG_TOMBSTONE, id, NULL, NULL);
	}
	add_entry(&s4, SEG_RECORD, ID_A, META_A, PARAMS_A);
	put_segment(f, 1, s1.p, s1.n);
	put_segment(f, 2, s2.p, s2.n);
	put_segment(f, 3, s3.p, s3.n);
	put_segment(f, 4, s4.p, s4.n);

	l = open_scanned(f, &seen, NULL);
	assert_int_equal(seen.n, 2 * n_tomb + 2);
	/* 1 is current, 2 and 3 are all tombstones that still guard. */
	assert_int_equal(seglog_victim(l), 0);

	/* Once 1 is garbage and gone, 2 is the oldest: its tombstones guard
	 * nothing any more. */
	seglog_dead(l, loc_of(1, 0), x_entry);
	assert_int_equal(seglog_victim(l), 1);
	x_loc = loc_of(1, 0);
	c.dead = &x_loc;
	c.n_dead = 1;
	compact(l, 1, &c);
	assert_int_equal(c.n, 0);
	assert_true(seglog_is_oldest(l, 2));
	assert_int_equal(seglog_victim(l), 2);
	compact(l, 2, &c);
	assert_int_equal(c.n, 0); /* tombstones of the oldest are not copied */
	/* 3 is the oldest now. */
	assert_int_equal(seglog_victim(l), 3);
	l = seglog_free(l);

	seens_done(&seen);
	assert_int_equal(reopen_scan(f, &seen), 0);
	assert_int_equal(seen.n, n_tomb + 1);
	assert_false(segment_exists(f, 1));
	assert_false(segment_exists(f, 2));
}

/* A tombstone copied out of a segment that is not the oldest keeps guarding:
 * it comes back after the reopen. */
static void test_seglog_compaction_copies_tombstones_of_younger_segments(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = NULL;
	_cleanup_(bytes_done) Bytes s1 = {}, s2 = {}, s3 = {};
	_cleanup_(seens_done) Seens seen = {};
	_cleanup_(freep) char *pad = filler(3 * BIG, 'x');
	uint32_t b_size;
	Compact c = {};
	SegLoc dead;

	add_entry(&s1, SEG_RECORD, ID_A, META_A, pad);
	b_size = (uint32_t) add_entry(&s2, SEG_RECORD, ID_B, META_B, pad);
	add_entry(&s2, SEG_TOMBSTONE, ID_A, NULL, NULL);
	add_entry(&s3, SEG_RECORD, ID_C, META_C, PARAMS_A);
	put_segment(f, 1, s1.p, s1.n);
	put_segment(f, 2, s2.p, s2.n);
	put_segment(f, 3, s3.p, s3.n);

	l = open_scanned(f, NULL, NULL);
	seglog_dead(l, loc_of(2, 0), b_size);
	assert_int_equal(seglog_victim(l), 2);
	dead = loc_of(2, 0);
	c.dead = &dead;
	c.n_dead = 1;
	compact(l, 2, &c);
	assert_int_equal(c.n, 1);
	l = seglog_free(l);

	assert_int_equal(reopen_scan(f, &seen), 0);
	assert_int_equal(seen.n, 3);
	assert_string_equal(seen.v[0].id, ID_A);
	assert_string_equal(seen.v[1].id, ID_C);
	assert_seen(&seen.v[2], SEG_TOMBSTONE, ID_A, NULL, NULL);
	assert_int_equal(seen.v[2].loc, c.to[0]);
}

/* A pinned segment (it holds bytes the caller could not keep elsewhere) is
 * never offered for compaction nor dropped, however dead. */
static void test_seglog_pinned_segment_is_never_compacted(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = NULL;
	_cleanup_(bytes_done) Bytes s1 = {}, s2 = {};
	uint32_t a_size;

	a_size = (uint32_t) add_entry(&s1, SEG_RECORD, ID_A, META_A, PARAMS_A);
	add_entry(&s2, SEG_RECORD, ID_B, META_B, PARAMS_B);
	put_segment(f, 1, s1.p, s1.n);
	put_segment(f, 2, s2.p, s2.n);
	l = open_scanned(f, NULL, NULL);
	seglog_dead(l, loc_of(1, 0), a_size);
	assert_int_equal(seglog_victim(l), 1);
	seglog_pin(l, 1);
	assert_int_equal(seglog_victim(l), 0);
	assert_int_equal(seglog_drop(l, 1), -EINVAL);
	assert_true(segment_exists(f, 1));
	/* Pinning the active segment closes it: the next batch starts a new one. */
	seglog_pin(l, 2);
	assert_int_equal(append(l, SEG_RECORD, ID_C, META_C, PARAMS_A, NULL), loc_of(3, 0));
	assert_int_equal(seglog_commit(l), 0);
	assert_int_equal(seglog_victim(l), 0);
}

static void test_seglog_drop_refuses_active_segment_and_pending_batch(void **state) {
	Fixture *f = *state;
	_cleanup_(seglog_freep) SegLog *l = NULL;
	_cleanup_(bytes_done) Bytes s1 = {}, s2 = {};

	add_entry(&s1, SEG_RECORD, ID_A, META_A, PARAMS_A);
	add_entry(&s2, SEG_RECORD, ID_B, META_B, PARAMS_B);
	put_segment(f, 1, s1.p, s1.n);
	put_segment(f, 2, s2.p, s2.n);
	l = open_scanned(f, NULL, NULL);
	assert_int_equal(seglog_drop(l, 2), -EINVAL);  /* active */
	assert_int_equal(seglog_drop(l, 9), -EINVAL);  /* not there */
	(void) append(l, SEG_RECORD, ID_C, META_C, PARAMS_A, NULL);
	assert_int_equal(seglog_drop(l, 1), -EINVAL);  /* a batch is pending */
	assert_int_equal(seglog_commit(l), 0);
	assert_int_equal(seglog_drop(l, 1), 0);
	assert_true(segment_exists(f, 2));
	assert_false(segment_exists(f, 1));
}

int main(void) {
	const struct CMUnitTest tests[] = {
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
		T(test_seglog_open_creates_directory_and_an_empty_log),
		T(test_seglog_append_refuses_bad_arguments),
		T(test_seglog_committed_entries_come_back_in_order),
		T(test_seglog_abort_drops_queued_entries),
		T(test_seglog_scan_stops_when_the_visitor_fails),
		T(test_seglog_read_returns_the_entry_at_its_location),
		T(test_seglog_read_detects_a_flipped_byte),
		T(test_seglog_failed_commit_into_existing_segment_leaves_nothing),
		T(test_seglog_failed_commit_of_new_segment_leaves_nothing),
		T(test_seglog_failed_new_segment_that_cannot_be_removed_does_not_block_later_commits),
		T(test_seglog_segments_roll_over_at_target),
		T(test_seglog_reopened_log_appends_to_its_last_whole_segment),
		T(test_seglog_torn_tail_is_quarantined_and_the_rest_served),
		T(test_seglog_zero_filled_tail_is_quarantined),
		T(test_seglog_corrupt_entry_in_the_middle_does_not_hide_the_rest),
		T(test_seglog_garbage_between_entries_is_quarantined),
		T(test_seglog_damage_is_logged_and_kept_once_per_region),
		T(test_seglog_quarantine_never_replaces_an_earlier_copy),
		T(test_seglog_damaged_segment_that_cannot_be_quarantined_is_kept),
		T(test_seglog_zero_length_segment),
		T(test_seglog_ignores_files_that_are_not_segments),
		T(test_seglog_compaction_picks_mostly_dead_segment_and_keeps_current_entries),
		T(test_seglog_compaction_takes_tiny_closed_segments),
		T(test_seglog_compaction_counts_tombstones_unless_oldest),
		T(test_seglog_compaction_copies_tombstones_of_younger_segments),
		T(test_seglog_pinned_segment_is_never_compacted),
		T(test_seglog_drop_refuses_active_segment_and_pending_batch),
#undef T
	};

	/* The quarantine warnings are expected by the dozen; errors still show. */
	log_set_max_level(LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
