/* fuzz_seglog.c — the outbox log's reader (seglog.c) on arbitrary segment
 * files. The input is segment 1 of a fresh log directory or, split at the
 * first MARKER, segments 1 and 2. Properties: opening and scanning never fail
 * for damaged content, crash or leak (memory or descriptors); every entry
 * visited is what it says it is (sizes add up, pointers inside its own bytes
 * of the file, the checksum right by crc32c_portable) and reads back the same
 * with seglog_read(); the good entries and the quarantined regions
 * (quarantine/<segment>@<offset>, byte for byte) tile each file exactly, so
 * nothing is dropped unseen, and no region hides an entry that checks out by
 * this file's own reading of the format (the scan picks up again at the first
 * one); the next append goes to the end of a whole last
 * segment below the target, else to a new one; a second open visits the same
 * entries plus that one; compacting every victim loses no entry and leaves no
 * damaged region behind. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "crc32c.h"
#include "fuzz_common.h"
#include "seglog.h"

#define MARKER "|SEG|"
#define LOG_DIR "outbox"
#define MAX_PARTS 2
#define MAX_READS 64 /* seglog_read() calls per input: each opens the file */

typedef struct Part {
	const uint8_t *data;
	size_t len;
	bool damaged;
} Part;

typedef struct Seen {
	SegLoc loc;
	uint32_t size;
	char *raw;
} Seen;

typedef struct Scan {
	const Part *parts; /* compare the entries with the files' bytes; NULL: don't */
	size_t n_parts;
	Seen *v;
	size_t n, allocated;
} Scan;

static void scan_done(Scan *s) {
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].raw);
	free(s->v);
	*s = (Scan) {};
}

static uint32_t le32(const char *q) {
	const unsigned char *p = (const unsigned char *) q;

	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static uint32_t loc_offset(SegLoc loc) {
	return (uint32_t) (loc & UINT32_MAX);
}

static void check_entry(const SegEntry *e) {
	uint32_t crc;

	FUZZ_CHECK(e->raw && e->id && e->meta && e->params, "entry with a NULL pointer");
	FUZZ_CHECK(e->kind == SEG_RECORD || e->kind == SEG_TOMBSTONE, "kind %d", (int) e->kind);
	FUZZ_CHECK(e->id_len >= 1 && e->id_len <= SEGLOG_ID_MAX, "id_len %zu", e->id_len);
	FUZZ_CHECK(e->size >= SEGLOG_HEADER_SIZE &&
	                   (size_t) e->size == SEGLOG_HEADER_SIZE + e->id_len + e->meta_len + e->params_len,
	           "size %" PRIu32 " != header + %zu + %zu + %zu", e->size, e->id_len, e->meta_len,
	           e->params_len);
	FUZZ_CHECK(e->id == e->raw + SEGLOG_HEADER_SIZE && e->meta == e->id + e->id_len &&
	                   e->params == e->meta + e->meta_len,
	           "id/meta/params are not where the header says");
	FUZZ_CHECK(memcmp(e->raw, "HLE1", 4) == 0 && (unsigned char) e->raw[4] == e->kind &&
	                   (unsigned char) e->raw[5] == e->id_len && e->raw[6] == 0 && e->raw[7] == 0 &&
	                   le32(e->raw + 8) == e->meta_len && le32(e->raw + 12) == e->params_len,
	           "header does not match the entry");
	crc = crc32c_portable(0, e->raw, 16);
	crc = crc32c_portable(crc, e->raw + SEGLOG_HEADER_SIZE, e->size - SEGLOG_HEADER_SIZE);
	FUZZ_CHECK(crc == le32(e->raw + 16), "entry at %#" PRIx64 " visited with a bad checksum", e->loc);
}

static int visit(const SegEntry *e, void *userdata) {
	Scan *s = userdata;
	uint32_t seg = seglog_loc_segment(e->loc), off = loc_offset(e->loc);
	Seen *n;

	check_entry(e);
	FUZZ_CHECK(seg >= 1, "segment 0");
	if (s->n > 0) {
		const Seen *p = &s->v[s->n - 1];
		uint32_t pseg = seglog_loc_segment(p->loc);

		FUZZ_CHECK(seg > pseg || (seg == pseg && (uint64_t) off >= (uint64_t) loc_offset(p->loc) + p->size),
		           "entries out of order or overlapping: %#" PRIx64 " after %#" PRIx64 "+%" PRIu32, e->loc,
		           p->loc, p->size);
	}
	if (s->parts && seg <= s->n_parts) {
		const Part *part = &s->parts[seg - 1];

		FUZZ_CHECK((uint64_t) off + e->size <= part->len, "entry past the end of segment %" PRIu32, seg);
		FUZZ_CHECK(memcmp(e->raw, part->data + off, e->size) == 0,
		           "entry at %#" PRIx64 " does not hold the file's bytes", e->loc);
	}

	if (s->n == s->allocated) {
		s->allocated = s->allocated ? 2 * s->allocated : 16;
		s->v = reallocarray(s->v, s->allocated, sizeof *s->v);
		FUZZ_CHECK(s->v, "out of memory");
	}
	n = &s->v[s->n++];
	n->loc = e->loc;
	n->size = e->size;
	n->raw = malloc(e->size);
	FUZZ_CHECK(n->raw, "out of memory");
	memcpy(n->raw, e->raw, e->size);
	return 0;
}

static void put_file(int dirfd, const char *name, const void *data, size_t len) {
	_cleanup_(closep) int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	FUZZ_CHECK(fd >= 0, "creating %s: %s", name, strerror(errno));
	FUZZ_CHECK(len == 0 || write(fd, data, len) == (ssize_t) len, "writing %s", name);
}

/* A quarantined region: where it came from and what it holds. */
typedef struct Region {
	uint32_t seg;
	size_t off, len;
	char *data;
} Region;

typedef struct Regions {
	Region *v;
	size_t n, allocated;
} Regions;

static void regions_done(Regions *r) {
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].data);
	free(r->v);
	*r = (Regions) {};
}

/* Every file in quarantine/ is "<segment name>@<offset>" of a segment the
 * input made. */
static void read_regions(int qfd, size_t n_parts, Regions *ret) {
	DIR *d = fdopendir(fcntl(qfd, F_DUPFD_CLOEXEC, 3));
	struct dirent *de;

	FUZZ_CHECK(d, "opening quarantine/");
	rewinddir(d);
	while ((de = readdir(d))) {
		Region *r;
		unsigned long long seg, off;
		int consumed = 0;
		struct stat st;
		_cleanup_(closep) int fd = -EBADF;

		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		FUZZ_CHECK(sscanf(de->d_name, "%16llx.log@%llu%n", &seg, &off, &consumed) == 2 &&
		                   consumed == (int) strlen(de->d_name) && strlen(de->d_name) > 21 &&
		                   de->d_name[20] == '@',
		           "unexpected file quarantine/%s", de->d_name);
		FUZZ_CHECK(seg >= 1 && seg <= n_parts, "quarantine/%s: no such segment", de->d_name);
		if (ret->n == ret->allocated) {
			ret->allocated = ret->allocated ? 2 * ret->allocated : 8;
			ret->v = reallocarray(ret->v, ret->allocated, sizeof *ret->v);
			FUZZ_CHECK(ret->v, "out of memory");
		}
		r = &ret->v[ret->n++];
		r->seg = (uint32_t) seg;
		r->off = (size_t) off;
		fd = openat(qfd, de->d_name, O_RDONLY | O_CLOEXEC);
		FUZZ_CHECK(fd >= 0 && fstat(fd, &st) == 0, "reading quarantine/%s", de->d_name);
		r->len = (size_t) st.st_size;
		r->data = malloc(r->len + 1);
		FUZZ_CHECK(r->data, "out of memory");
		FUZZ_CHECK(pread(fd, r->data, r->len, 0) == (ssize_t) r->len, "reading quarantine/%s", de->d_name);
	}
	closedir(d);
}

/* Is there an entry at p[off..len) by the format in seglog.c's header
 * comment? Written apart from parse_entry(), on purpose. */
static bool entry_at(const uint8_t *p, size_t len, size_t off) {
	const char *h = (const char *) p + off;
	size_t total;
	uint32_t crc;

	if (len - off < SEGLOG_HEADER_SIZE || memcmp(h, "HLE1", 4) != 0 || (h[4] != 1 && h[4] != 2) ||
	    h[5] < 1 || h[5] > SEGLOG_ID_MAX || h[6] != 0 || h[7] != 0)
		return false;
	total = SEGLOG_HEADER_SIZE + (size_t) (unsigned char) h[5] + le32(h + 8) + le32(h + 12);
	if (total > len - off)
		return false;
	crc = crc32c_portable(0, h, 16);
	crc = crc32c_portable(crc, h + SEGLOG_HEADER_SIZE, total - SEGLOG_HEADER_SIZE);
	return crc == le32(h + 16);
}

/* Good entries and quarantined regions cover each file exactly once. */
static void check_tiling(Part *parts, size_t n_parts, const Scan *s, const Regions *q) {
	for (size_t p = 0; p < n_parts; p++) {
		uint32_t seg = (uint32_t) p + 1;
		size_t pos = 0, e = 0;

		/* Entries of this segment, in order. */
		while (e < s->n && seglog_loc_segment(s->v[e].loc) < seg)
			e++;
		for (;;) {
			const Region *r = NULL;

			if (e < s->n && seglog_loc_segment(s->v[e].loc) == seg && loc_offset(s->v[e].loc) == pos) {
				pos += s->v[e].size;
				e++;
				continue;
			}
			for (size_t i = 0; i < q->n; i++)
				if (q->v[i].seg == seg && q->v[i].off == pos)
					r = &q->v[i];
			if (!r)
				break;
			FUZZ_CHECK(r->len > 0, "empty region quarantined at %zu of segment %" PRIu32, pos, seg);
			for (size_t i = pos; i < pos + r->len && i < parts[p].len; i++)
				FUZZ_CHECK(!entry_at(parts[p].data, parts[p].len, i),
				           "a good entry at %zu of segment %" PRIu32 " was quarantined (region %zu+%zu)", i,
				           seg, pos, r->len);
			FUZZ_CHECK(pos + r->len <= parts[p].len && memcmp(r->data, parts[p].data + pos, r->len) == 0,
			           "quarantined region at %zu of segment %" PRIu32 " is not the file's bytes", pos, seg);
			parts[p].damaged = true;
			pos += r->len;
		}
		FUZZ_CHECK(pos == parts[p].len,
		           "segment %" PRIu32 ": bytes %zu.. of %zu neither visited nor quarantined", seg, pos,
		           parts[p].len);
	}
}

static void check_same(const Scan *a, const Scan *b, const char *what) {
	FUZZ_CHECK(a->n == b->n, "%s: %zu entries, then %zu", what, a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		FUZZ_CHECK(a->v[i].loc == b->v[i].loc && a->v[i].size == b->v[i].size &&
		                   memcmp(a->v[i].raw, b->v[i].raw, a->v[i].size) == 0,
		           "%s: entry %zu differs", what, i);
}

static int compare_seen(const void *x, const void *y) {
	const Seen *a = x, *b = y;

	if (a->size != b->size)
		return a->size < b->size ? -1 : 1;
	return memcmp(a->raw, b->raw, a->size);
}

/* Compaction moves entries: the same ones must be there, wherever. */
static void check_same_entries(Scan *a, Scan *b) {
	FUZZ_CHECK(a->n == b->n, "compaction: %zu entries, then %zu", a->n, b->n);
	qsort(a->v, a->n, sizeof *a->v, compare_seen);
	qsort(b->v, b->n, sizeof *b->v, compare_seen);
	for (size_t i = 0; i < a->n; i++)
		FUZZ_CHECK(compare_seen(&a->v[i], &b->v[i]) == 0, "compaction changed or lost an entry");
}

static int copy_all(const SegEntry *e, void *userdata) {
	SegLoc loc;

	check_entry(e);
	return seglog_copy(userdata, e, &loc);
}

static SegLog *open_and_scan(int dirfd, int qfd, Scan *s, int *ret_damaged) {
	SegLog *l = NULL;
	int k;

	k = seglog_open(dirfd, LOG_DIR, qfd, &l);
	FUZZ_CHECK(k >= 0 && l, "seglog_open: %s", strerror(-k));
	k = seglog_scan(l, visit, s);
	FUZZ_CHECK(k >= 0, "seglog_scan failed on damaged content: %s", strerror(-k));
	seglog_scan_done(l);
	*ret_damaged = k;
	return l;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
	fuzz_quiet_logs();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	static unsigned long runs;
	_cleanup_(regions_done) Regions q = {}, q2 = {};
	_cleanup_(closep) int dirfd = -EBADF, qfd = -EBADF, logfd = -EBADF;
	_cleanup_(seglog_freep) SegLog *l = NULL;
	_cleanup_(scan_done) Scan first = {}, second = {}, third = {};
	Part parts[MAX_PARTS] = {};
	size_t n_parts = 1;
	const uint8_t *m;
	char path[PATH_MAX];
	int damaged, damaged2, damaged3, fd_before, fd_after, k;
	SegLoc loc, want;
	uint32_t added_size;
	Seen added;

	/* A descriptor leak shows in the number the next one gets. */
	fd_before = open("/dev/null", O_RDONLY | O_CLOEXEC);
	FUZZ_CHECK(fd_before >= 0, "open /dev/null");
	close(fd_before);

	snprintf(path, sizeof path, "%s/%lu", fuzz_tmpdir(), runs++);
	FUZZ_CHECK(mkdir(path, 0700) == 0, "mkdir %s: %s", path, strerror(errno));
	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	FUZZ_CHECK(dirfd >= 0, "open %s", path);
	FUZZ_CHECK(mkdirat(dirfd, "quarantine", 0700) == 0 && mkdirat(dirfd, LOG_DIR, 0700) == 0, "mkdir");
	qfd = openat(dirfd, "quarantine", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	logfd = openat(dirfd, LOG_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	FUZZ_CHECK(qfd >= 0 && logfd >= 0, "open quarantine/, outbox/");

	parts[0] = (Part) { .data = data, .len = size };
	m = memmem(data, size, MARKER, strlen(MARKER));
	if (m) {
		parts[0].len = (size_t) (m - data);
		parts[1] = (Part) { .data = m + strlen(MARKER), .len = size - parts[0].len - strlen(MARKER) };
		n_parts = 2;
	}
	put_file(logfd, "0000000000000001.log", parts[0].data, parts[0].len);
	if (n_parts > 1)
		put_file(logfd, "0000000000000002.log", parts[1].data, parts[1].len);

	/* First start: every byte is a good entry or quarantined. */
	first.parts = parts;
	first.n_parts = n_parts;
	l = open_and_scan(dirfd, qfd, &first, &damaged);
	read_regions(qfd, n_parts, &q);
	FUZZ_CHECK((size_t) damaged == q.n, "scan reported %d damaged regions, quarantine/ holds %zu", damaged,
	           q.n);
	check_tiling(parts, n_parts, &first, &q);
	FUZZ_CHECK(seglog_segments(l) == n_parts, "segments: %zu", seglog_segments(l));

	for (size_t i = 0; i < first.n && i < MAX_READS; i++) {
		_cleanup_(freep) char *buf = NULL;
		SegEntry e;

		k = seglog_read(l, first.v[i].loc, first.v[i].size, &e, &buf);
		FUZZ_CHECK(k >= 0, "seglog_read of a visited entry: %s", strerror(-k));
		check_entry(&e);
		FUZZ_CHECK(e.loc == first.v[i].loc && e.size == first.v[i].size &&
		                   memcmp(e.raw, first.v[i].raw, e.size) == 0,
		           "seglog_read gave another entry");
	}

	/* The next append: the end of the last segment if it is whole and has
	 * room, else a new segment. */
	k = seglog_append(l, SEG_RECORD, "r_fuzz", "{}", 2, "{\"p\":1}", 7, &loc, &added_size);
	FUZZ_CHECK(k >= 0, "seglog_append: %s", strerror(-k));
	if (!parts[n_parts - 1].damaged && parts[n_parts - 1].len < SEGLOG_SEGMENT_TARGET)
		want = (SegLoc) n_parts << 32 | parts[n_parts - 1].len;
	else
		want = (SegLoc) (n_parts + 1) << 32;
	FUZZ_CHECK(loc == want, "appended at %#" PRIx64 ", not %#" PRIx64, loc, want);
	k = seglog_commit(l);
	FUZZ_CHECK(k >= 0, "seglog_commit: %s", strerror(-k));
	l = seglog_free(l);

	/* Second start (the regions are in quarantine/ already): the same. */
	l = open_and_scan(dirfd, qfd, &second, &damaged2);
	FUZZ_CHECK(damaged2 == damaged, "%d damaged regions at the first open, %d at the second", damaged,
	           damaged2);
	read_regions(qfd, n_parts, &q2);
	FUZZ_CHECK(q2.n == q.n, "quarantine/ went from %zu to %zu files", q.n, q2.n);
	FUZZ_CHECK(second.n == first.n + 1, "second open: %zu entries, first %zu + 1 appended", second.n, first.n);
	added = second.v[--second.n];
	FUZZ_CHECK(added.loc == loc && added.size == added_size, "the appended entry moved");
	check_same(&first, &second, "second open");
	second.v[second.n++] = added;

	/* Compaction until nothing is worth it: every closed segment is small
	 * here, so every one goes, and only the active one stays. */
	for (int round = 0;; round++) {
		uint32_t victim = seglog_victim(l);

		if (victim == 0)
			break;
		FUZZ_CHECK(round < 8, "compaction does not converge (victim %" PRIu32 ")", victim);
		k = seglog_scan_segment(l, victim, copy_all, l);
		FUZZ_CHECK(k >= 0, "seglog_scan_segment(%" PRIu32 "): %s", victim, strerror(-k));
		k = seglog_commit(l);
		FUZZ_CHECK(k >= 0, "seglog_commit of compaction: %s", strerror(-k));
		k = seglog_drop(l, victim);
		FUZZ_CHECK(k >= 0, "seglog_drop(%" PRIu32 "): %s", victim, strerror(-k));
	}
	FUZZ_CHECK(seglog_segments(l) == 1, "%zu segments left after compaction", seglog_segments(l));
	l = seglog_free(l);

	l = open_and_scan(dirfd, qfd, &third, &damaged3);
	FUZZ_CHECK(damaged3 == 0, "damage left after compaction: %d regions", damaged3);
	check_same_entries(&second, &third);
	l = seglog_free(l);

	closep(&qfd);
	closep(&logfd);
	closep(&dirfd);
	qfd = logfd = dirfd = -EBADF;
	fuzz_remove_tree(path);

	fd_after = open("/dev/null", O_RDONLY | O_CLOEXEC);
	FUZZ_CHECK(fd_after >= 0, "open /dev/null");
	close(fd_after);
	FUZZ_CHECK(fd_after == fd_before, "a descriptor leaked (next is %d, was %d)", fd_after, fd_before);
	return 0;
}
