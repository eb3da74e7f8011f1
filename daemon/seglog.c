/* seglog.c — see seglog.h.
 *
 * Entry layout (little-endian):
 *   0  "HLE1"      magic
 *   4  u8  kind    1 record, 2 tombstone
 *   5  u8  id_len  1..SEGLOG_ID_MAX
 *   6  u16 0
 *   8  u32 meta_len
 *  12  u32 params_len
 *  16  u32 crc32c of bytes 0..15, then id, meta, params
 *  20  id, meta, params
 * A batch is one write() at the end of the active segment and one fsync.
 * A crash mid-batch leaves a torn tail, which the next open quarantines;
 * nothing in it was acknowledged. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "crc32c.h"
#include "log.h"
#include "msgid.h"
#include "seglog.h"
#include "store.h"

#define MAGIC "HLE1"
#define SEG_NAME_MAX 32
#define SEG_SUFFIX ".log"
#define ENTRY_MAX (64U * 1024U * 1024U)

typedef struct Segment {
	uint32_t num;
	uint64_t size;  /* bytes in the file */
	uint64_t live;  /* bytes of current record entries */
	uint64_t tomb;  /* bytes of tombstones */
	bool damaged;   /* a region was quarantined: rewrite it away */
	bool closed;    /* no more appends */
	bool pinned;    /* holds damaged bytes that could not be copied out: keep it */
	void *map;      /* while scanning */
	size_t map_len;
} Segment;

struct SegLog {
	int dirfd;
	int quarantine_fd;
	Segment *segs; /* sorted by num */
	size_t n_segs, n_segs_allocated;
	int active_fd; /* the last segment, open for appending; -EBADF if none yet */
	uint32_t active_num;

	char *buf;
	size_t buf_len, buf_allocated;
	uint32_t pending_seg;
	uint64_t pending_off;
	bool pending_new;
	uint64_t pending_live, pending_tomb;
	bool scanned;
	SegLoc damage_loc; /* start of the last damaged region that is not a torn tail; 0 = none */
};

static void put32(unsigned char *p, uint32_t v) {
	p[0] = (unsigned char) v;
	p[1] = (unsigned char) (v >> 8);
	p[2] = (unsigned char) (v >> 16);
	p[3] = (unsigned char) (v >> 24);
}

static uint32_t get32(const unsigned char *p) {
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void segment_name(uint32_t num, char buf[static SEG_NAME_MAX]) {
	snprintf(buf, SEG_NAME_MAX, "%016" PRIx32 SEG_SUFFIX, num);
}

static bool parse_segment_name(const char *name, uint32_t *ret) {
	char *end;
	unsigned long long v;

	if (strlen(name) != 16 + strlen(SEG_SUFFIX) || !streq(name + 16, SEG_SUFFIX))
		return false;
	for (size_t i = 0; i < 16; i++)
		if (!strchr("0123456789abcdef", name[i]))
			return false;
	errno = 0;
	v = strtoull(name, &end, 16);
	if (errno != 0 || end != name + 16 || v == 0 || v > UINT32_MAX - 1)
		return false;
	*ret = (uint32_t) v;
	return true;
}

static Segment *find_segment(const SegLog *l, uint32_t num) {
	size_t lo = 0, hi = l->n_segs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->segs[mid].num == num)
			return &l->segs[mid];
		if (l->segs[mid].num < num)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Room for one more segment in the table. */
static int reserve_segment(SegLog *l) {
	size_t n;
	Segment *s;

	if (l->n_segs < l->n_segs_allocated)
		return 0;
	n = l->n_segs_allocated < 16 ? 16 : l->n_segs_allocated * 2;
	s = reallocarray(l->segs, n, sizeof *s);
	if (!s)
		return -ENOMEM;
	l->segs = s;
	l->n_segs_allocated = n;
	return 0;
}

static int add_segment(SegLog *l, uint32_t num, Segment **ret) {
	int k = reserve_segment(l);

	if (k < 0)
		return k;
	/* Callers add in increasing order, except open, which sorts after. */
	l->segs[l->n_segs] = (Segment) { .num = num };
	*ret = &l->segs[l->n_segs++];
	return 0;
}

static Segment *last_segment(const SegLog *l) {
	return l->n_segs > 0 ? &l->segs[l->n_segs - 1] : NULL;
}

static int compare_segments(const void *a, const void *b) {
	const Segment *x = a, *y = b;

	return x->num < y->num ? -1 : x->num > y->num;
}

int seglog_open(int dirfd, const char *dir, int quarantine_fd, SegLog **ret) {
	_cleanup_(seglog_freep) SegLog *l = NULL;
	DIR *d;
	int k;

	if (!dir || !ret)
		return -EINVAL;
	l = calloc(1, sizeof *l);
	if (!l)
		return -ENOMEM;
	l->dirfd = l->active_fd = -EBADF;
	l->quarantine_fd = quarantine_fd;

	k = store_open_dir(dirfd, dir, 0700, &l->dirfd);
	if (k < 0)
		return k;

	k = store_opendir(l->dirfd, &d);
	if (k < 0)
		return k;
	for (;;) {
		struct dirent *de;
		Segment *s;
		uint32_t num;

		errno = 0;
		de = readdir(d);
		if (!de) {
			k = errno != 0 ? negative_errno() : 0;
			break;
		}
		if (!parse_segment_name(de->d_name, &num))
			continue; /* not ours; left alone */
		k = add_segment(l, num, &s);
		if (k < 0)
			break;
	}
	closedir(d);
	if (k < 0)
		return k;
	if (l->n_segs > 0)
		qsort(l->segs, l->n_segs, sizeof *l->segs, compare_segments);

	*ret = TAKE_PTR(l);
	return 0;
}

SegLog *seglog_free(SegLog *l) {
	if (!l)
		return NULL;
	seglog_scan_done(l);
	free(l->segs);
	free(l->buf);
	closep(&l->active_fd);
	closep(&l->dirfd);
	free(l);
	return NULL;
}

/* ---- reading ------------------------------------------------------------------ */

/* Parses the entry at p[off..len). 0 and *ret on a good one, -EBADMSG otherwise. */
static int parse_entry(const char *p, size_t len, size_t off, uint32_t seg, SegEntry *ret) {
	const unsigned char *h = (const unsigned char *) p + off;
	uint32_t meta_len, params_len, crc;
	size_t id_len, total;

	if (len - off < SEGLOG_HEADER_SIZE || memcmp(h, MAGIC, 4) != 0)
		return -EBADMSG;
	if ((h[4] != SEG_RECORD && h[4] != SEG_TOMBSTONE) || h[6] != 0 || h[7] != 0)
		return -EBADMSG;
	id_len = h[5];
	meta_len = get32(h + 8);
	params_len = get32(h + 12);
	if (id_len == 0 || id_len > SEGLOG_ID_MAX || meta_len > ENTRY_MAX || params_len > ENTRY_MAX)
		return -EBADMSG;
	total = SEGLOG_HEADER_SIZE + id_len + meta_len + params_len;
	if (total > ENTRY_MAX || total > len - off)
		return -EBADMSG;
	crc = crc32c(0, h, 16);
	crc = crc32c(crc, h + SEGLOG_HEADER_SIZE, total - SEGLOG_HEADER_SIZE);
	if (crc != get32(h + 16))
		return -EBADMSG;

	*ret = (SegEntry) {
		.loc = (SegLoc) seg << 32 | off,
		.size = (uint32_t) total,
		.kind = h[4],
		.id = p + off + SEGLOG_HEADER_SIZE,
		.id_len = id_len,
		.meta = p + off + SEGLOG_HEADER_SIZE + id_len,
		.meta_len = meta_len,
		.params = p + off + SEGLOG_HEADER_SIZE + id_len + meta_len,
		.params_len = params_len,
		.raw = p + off,
	};
	return 0;
}

/* Keeps the damaged bytes: quarantine/<segment>@<offset>, never replacing an
 * earlier copy (segment numbers start again at 1 once a log was emptied). */
static int quarantine_region(SegLog *l, uint32_t num, const char *p, size_t off, size_t end) {
	char seg[SEG_NAME_MAX], name[SEG_NAME_MAX + 24], kept[NAME_MAX + 1];
	int k;

	segment_name(num, seg);
	snprintf(name, sizeof name, "%s@%zu", seg, off);
	k = store_write_file_new(l->quarantine_fd, name, p + off, end - off, kept, sizeof kept);
	if (k < 0) {
		log_internal(LOG_WARNING, k, MID_RECORD_QUARANTINED,
		             LOG_FIELDS({ "HITL_FILE", seg }, { "HITL_REASON", "damaged log entry" }),
		             "Skipping %zu damaged bytes at offset %zu of outbox log segment %s; "
		             "keeping a copy in quarantine/ failed: %m",
		             end - off, off, seg);
		return k;
	}
	log_event(LOG_WARNING, MID_RECORD_QUARANTINED,
	          LOG_FIELDS({ "HITL_FILE", seg }, { "HITL_REASON", "damaged log entry" }),
	          "Quarantined %zu damaged bytes at offset %zu of outbox log segment %s "
	          "(torn or corrupt entry; kept as quarantine/%s)",
	          end - off, off, seg, kept);
	return 0;
}

static void unmap_segment(Segment *s) {
	if (s->map)
		munmap(s->map, s->map_len);
	s->map = NULL;
	s->map_len = 0;
}

static int map_segment(SegLog *l, Segment *s) {
	_cleanup_(closep) int fd = -EBADF;
	char name[SEG_NAME_MAX];
	struct stat st;
	void *m;

	segment_name(s->num, name);
	fd = openat(l->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	if ((uint64_t) st.st_size > UINT32_MAX)
		return -EFBIG;
	s->size = (uint64_t) st.st_size;
	if (st.st_size == 0)
		return 0;
	m = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		return negative_errno();
	(void) madvise(m, (size_t) st.st_size, MADV_SEQUENTIAL | MADV_WILLNEED);
	s->map = m;
	s->map_len = (size_t) st.st_size;
	return 0;
}

/* Is the damaged region at off, running to the end of the newest segment, a
 * torn tail: an append cut short by a crash (a header cut short, or a whole
 * header whose entry runs past the end of the file)? Such an entry was never
 * committed, so nothing acted on it. Anything else may have been committed. */
static bool torn_tail(const char *p, size_t len, size_t off) {
	const unsigned char *h = (const unsigned char *) p + off;
	uint64_t total;

	if (len - off < SEGLOG_HEADER_SIZE)
		return memcmp(h, MAGIC, len - off < 4 ? len - off : 4) == 0;
	if (memcmp(h, MAGIC, 4) != 0)
		return false;
	total = (uint64_t) SEGLOG_HEADER_SIZE + h[5] + get32(h + 8) + get32(h + 12);
	return total > len - off;
}

/* Walks one mapped segment. quarantine: first visit (count and keep damaged
 * regions); else they are skipped quietly. Returns regions found. */
static int walk_segment(SegLog *l, Segment *s, bool quarantine, seglog_visit_t fn, void *userdata) {
	const char *p = s->map;
	size_t len = s->map_len, off = 0;
	int bad = 0, k;

	while (off < len) {
		SegEntry e;
		size_t next;

		if (parse_entry(p, len, off, s->num, &e) >= 0) {
			if (quarantine) {
				if (e.kind == SEG_RECORD)
					s->live += e.size;
				else
					s->tomb += e.size;
			}
			if (fn) {
				k = fn(&e, userdata);
				if (k < 0)
					return k;
			}
			off += e.size;
			continue;
		}

		/* Resynchronise at the next entry that checks out. */
		for (next = off + 1; next < len; next++) {
			const char *m = memchr(p + next, MAGIC[0], len - next);

			if (!m) {
				next = len;
				break;
			}
			next = (size_t) (m - p);
			if (parse_entry(p, len, next, s->num, &e) >= 0)
				break;
		}
		bad++;
		if (quarantine) {
			SegLoc loc = (SegLoc) s->num << 32 | off;

			if (!(s == last_segment(l) && next == len && torn_tail(p, len, off)) && loc > l->damage_loc)
				l->damage_loc = loc;
			s->damaged = true;
			if (quarantine_region(l, s->num, p, off, next) < 0)
				/* The bytes must stay somewhere: keep the segment. */
				s->pinned = true;
		}
		off = next;
	}
	return bad;
}

int seglog_scan(SegLog *l, seglog_visit_t fn, void *userdata) {
	int bad = 0, k;

	if (!l || l->scanned)
		return -EINVAL;
	l->scanned = true;

	for (size_t i = 0; i < l->n_segs; i++) {
		Segment *s = &l->segs[i];

		k = map_segment(l, s);
		if (k == -ENOMEM)
			return k;
		if (k < 0) {
			/* Not a file we can read (a directory or symlink planted under
			 * a segment's name, an I/O error): left alone, never written
			 * or removed, and the other segments still served. */
			log_warning_errno(k, "Ignoring outbox log segment %016" PRIx32 SEG_SUFFIX ": %m", s->num);
			s->pinned = s->closed = true;
			s->size = 0;
			bad++;
			continue;
		}
		k = walk_segment(l, s, true, fn, userdata);
		if (k < 0)
			return k;
		bad += k;
		/* Only the last segment takes appends, and only if it is whole. */
		s->closed = i + 1 < l->n_segs || s->damaged || s->pinned || s->closed;
	}

	if (l->n_segs > 0 && !last_segment(l)->closed) {
		Segment *a = last_segment(l);
		char name[SEG_NAME_MAX];

		segment_name(a->num, name);
		l->active_fd = store_openat(l->dirfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0);
		if (l->active_fd >= 0)
			l->active_num = a->num;
		else
			a->closed = true;
	}
	return bad;
}

void seglog_scan_done(SegLog *l) {
	if (!l)
		return;
	for (size_t i = 0; i < l->n_segs; i++)
		unmap_segment(&l->segs[i]);
}

SegLoc seglog_damage(const SegLog *l) {
	return l ? l->damage_loc : 0;
}

int seglog_read(SegLog *l, SegLoc loc, uint32_t size, SegEntry *ret_e, char **ret_buf) {
	_cleanup_(closep) int fd = -EBADF;
	_cleanup_(freep) char *buf = NULL;
	char name[SEG_NAME_MAX];
	uint32_t num = seglog_loc_segment(loc);
	off_t off = (off_t) (loc & UINT32_MAX);
	size_t got = 0;
	SegEntry e;

	if (!l || !ret_e || !ret_buf || size < SEGLOG_HEADER_SIZE || size > ENTRY_MAX)
		return -EINVAL;
	if (!find_segment(l, num))
		return -ENOENT;
	segment_name(num, name);
	fd = openat(l->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return negative_errno();
	buf = malloc(size + 1);
	if (!buf)
		return -ENOMEM;
	while (got < size) {
		ssize_t n = pread(fd, buf + got, size - got, off + (off_t) got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (n == 0)
			return -EBADMSG;
		got += (size_t) n;
	}
	buf[size] = '\0';
	if (parse_entry(buf, size, 0, num, &e) < 0 || e.size != size)
		return -EBADMSG;
	e.loc = loc;

	*ret_e = e;
	*ret_buf = TAKE_PTR(buf);
	return 0;
}

/* ---- appending ---------------------------------------------------------------- */

/* The first entry of a batch picks its segment: the active one while it has
 * room, else a new one. */
static void batch_start(SegLog *l) {
	Segment *a = last_segment(l);

	if (l->buf_len > 0)
		return;
	l->pending_live = l->pending_tomb = 0;
	if (a && !a->closed && a->size < SEGLOG_SEGMENT_TARGET && a->num == l->active_num &&
	    l->active_fd >= 0) {
		l->pending_seg = a->num;
		l->pending_off = a->size;
		l->pending_new = false;
		return;
	}
	if (a)
		a->closed = true;
	l->pending_seg = a ? a->num + 1 : 1;
	l->pending_off = 0;
	l->pending_new = true;
}

static int buf_reserve(SegLog *l, size_t more) {
	size_t n;
	char *b;

	if (more > ENTRY_MAX || l->buf_len + more > UINT32_MAX)
		return -EFBIG;
	if (l->buf_len + more <= l->buf_allocated)
		return 0;
	n = l->buf_allocated < 65536 ? 65536 : l->buf_allocated;
	while (n < l->buf_len + more)
		n *= 2;
	b = realloc(l->buf, n);
	if (!b)
		return -ENOMEM;
	l->buf = b;
	l->buf_allocated = n;
	return 0;
}

static int queue_bytes(SegLog *l, const void *data, size_t size, SegKind kind, SegLoc *ret_loc) {
	int k;

	if (!l->scanned)
		return -EINVAL;
	batch_start(l);
	if (l->pending_off + l->buf_len + size > UINT32_MAX)
		return -EFBIG;
	k = buf_reserve(l, size);
	if (k < 0)
		return k;
	*ret_loc = (SegLoc) l->pending_seg << 32 | (l->pending_off + l->buf_len);
	if (data)
		memcpy(l->buf + l->buf_len, data, size);
	l->buf_len += size;
	if (kind == SEG_RECORD)
		l->pending_live += size;
	else
		l->pending_tomb += size;
	return 0;
}

int seglog_append(SegLog *l, SegKind kind, const char *id, const char *meta, size_t meta_len,
                  const char *params, size_t params_len, SegLoc *ret_loc, uint32_t *ret_size) {
	size_t id_len = id ? strlen(id) : 0, total;
	unsigned char *h;
	SegLoc loc;
	uint32_t crc;
	int k;

	if (!l || !ret_loc || (kind != SEG_RECORD && kind != SEG_TOMBSTONE) || id_len == 0 ||
	    id_len > SEGLOG_ID_MAX || (!meta && meta_len > 0) || (!params && params_len > 0))
		return -EINVAL;
	if (meta_len > ENTRY_MAX || params_len > ENTRY_MAX)
		return -EFBIG;
	total = SEGLOG_HEADER_SIZE + id_len + meta_len + params_len;
	if (total > ENTRY_MAX)
		return -EFBIG;

	k = queue_bytes(l, NULL, total, kind, &loc);
	if (k < 0)
		return k;
	h = (unsigned char *) l->buf + l->buf_len - total;
	memcpy(h, MAGIC, 4);
	h[4] = (unsigned char) kind;
	h[5] = (unsigned char) id_len;
	h[6] = h[7] = 0;
	put32(h + 8, (uint32_t) meta_len);
	put32(h + 12, (uint32_t) params_len);
	memcpy(h + SEGLOG_HEADER_SIZE, id, id_len);
	if (meta_len > 0)
		memcpy(h + SEGLOG_HEADER_SIZE + id_len, meta, meta_len);
	if (params_len > 0)
		memcpy(h + SEGLOG_HEADER_SIZE + id_len + meta_len, params, params_len);
	crc = crc32c(0, h, 16);
	crc = crc32c(crc, h + SEGLOG_HEADER_SIZE, total - SEGLOG_HEADER_SIZE);
	put32(h + 16, crc);

	*ret_loc = loc;
	if (ret_size)
		*ret_size = (uint32_t) total;
	return 0;
}

int seglog_copy(SegLog *l, const SegEntry *e, SegLoc *ret_loc) {
	if (!l || !e || !e->raw || !ret_loc)
		return -EINVAL;
	return queue_bytes(l, e->raw, e->size, e->kind, ret_loc);
}

bool seglog_pending(const SegLog *l) {
	return l && l->buf_len > 0;
}

void seglog_abort(SegLog *l) {
	if (!l)
		return;
	l->buf_len = 0;
	l->pending_seg = 0;
}

int seglog_commit(SegLog *l) {
	_cleanup_(closep) int new_fd = -EBADF;
	char name[SEG_NAME_MAX];
	Segment *s;
	int fd, k;

	if (!l)
		return -EINVAL;
	if (l->buf_len == 0)
		return 0;

	segment_name(l->pending_seg, name);
	if (l->pending_new) {
		/* Room in the table first, so that success cannot fail later. */
		k = reserve_segment(l);
		if (k < 0) {
			seglog_abort(l);
			return k;
		}
		new_fd = store_openat(l->dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
		                      0600);
		if (new_fd < 0) {
			k = new_fd;
			seglog_abort(l);
			return k;
		}
		fd = new_fd;
	} else {
		fd = l->active_fd;
		if (lseek(fd, (off_t) l->pending_off, SEEK_SET) < 0) {
			k = negative_errno();
			seglog_abort(l);
			return k;
		}
	}

	k = store_write_all(fd, l->buf, l->buf_len);
	if (k >= 0)
		k = store_fsync(fd);
	if (k >= 0 && l->pending_new)
		k = store_fsync(l->dirfd);
	if (k < 0) {
		/* None of the batch may come back at the next start: its writers
		 * were told it failed. Best effort; the segment takes no more
		 * appends, since after a failed fsync its pages prove nothing. */
		if (l->pending_new) {
			if (store_unlink_nosync(l->dirfd, name) >= 0)
				(void) store_fsync(l->dirfd);
			else {
				/* It stays: empty, closed, and in the table, so that its
				 * number is not used again and compaction removes it. */
				if (ftruncate(new_fd, 0) >= 0)
					(void) store_fsync(new_fd);
				l->segs[l->n_segs++] = (Segment) { .num = l->pending_seg, .closed = true };
			}
		} else {
			s = find_segment(l, l->pending_seg);
			if (ftruncate(fd, (off_t) l->pending_off) >= 0)
				(void) store_fsync(fd);
			if (s)
				s->closed = true;
		}
		seglog_abort(l);
		return k;
	}

	if (l->pending_new) {
		l->segs[l->n_segs++] = (Segment) { .num = l->pending_seg };
		closep(&l->active_fd);
		l->active_fd = TAKE_FD(new_fd);
		l->active_num = l->pending_seg;
	}
	s = find_segment(l, l->pending_seg);
	if (s) {
		s->size = l->pending_off + l->buf_len;
		s->live += l->pending_live;
		s->tomb += l->pending_tomb;
	}
	l->buf_len = 0;
	l->pending_seg = 0;
	/* Keep a big batch's buffer from pinning memory. */
	if (l->buf_allocated > 4U * 1024U * 1024U) {
		free(l->buf);
		l->buf = NULL;
		l->buf_allocated = 0;
	}
	return 0;
}

void seglog_dead(SegLog *l, SegLoc loc, uint32_t size) {
	Segment *s = l ? find_segment(l, seglog_loc_segment(loc)) : NULL;

	if (!s)
		return;
	s->live = s->live > size ? s->live - size : 0;
}

/* ---- compaction ----------------------------------------------------------------- */

bool seglog_is_oldest(const SegLog *l, uint32_t seg) {
	return l && l->n_segs > 0 && l->segs[0].num == seg;
}

uint32_t seglog_victim(const SegLog *l) {
	uint32_t best = 0;
	double best_ratio = 2.0;

	if (!l)
		return 0;
	for (size_t i = 0; i < l->n_segs; i++) {
		const Segment *s = &l->segs[i];
		uint64_t keep;
		double ratio;

		if (!s->closed || s->pinned || s->num == l->pending_seg)
			continue;
		if (s->damaged)
			return s->num;
		/* Tombstones guard against older versions in older segments;
		 * in the oldest there are none left to guard against. */
		keep = s->live + (i == 0 ? 0 : s->tomb);
		if (s->size == 0 || keep == 0)
			return s->num;
		ratio = (double) keep / (double) s->size;
		if ((ratio < 0.5 || s->size < SEGLOG_SEGMENT_TARGET / 16) && ratio < best_ratio) {
			best = s->num;
			best_ratio = ratio;
		}
	}
	return best;
}

int seglog_scan_segment(SegLog *l, uint32_t seg, seglog_visit_t fn, void *userdata) {
	Segment *s = l ? find_segment(l, seg) : NULL;
	int k;

	if (!s)
		return -ENOENT;
	k = map_segment(l, s);
	if (k >= 0)
		k = walk_segment(l, s, false, fn, userdata);
	unmap_segment(s);
	return k < 0 ? k : 0;
}

int seglog_drop(SegLog *l, uint32_t seg) {
	Segment *s = l ? find_segment(l, seg) : NULL;
	char name[SEG_NAME_MAX];
	size_t i;
	int k;

	if (!s || !s->closed || s->pinned || seglog_pending(l))
		return -EINVAL;
	segment_name(seg, name);
	k = store_unlink_nosync(l->dirfd, name);
	if (k < 0 && k != -ENOENT)
		return k;
	/* Gone from the directory: gone from the table, whatever the sync
	 * says. Should the unlink not survive a crash, the segment only comes
	 * back with entries that newer copies supersede. */
	(void) store_fsync(l->dirfd);
	unmap_segment(s);
	if (seg == l->active_num) {
		closep(&l->active_fd);
		l->active_fd = -EBADF;
		l->active_num = 0;
	}
	i = (size_t) (s - l->segs);
	memmove(&l->segs[i], &l->segs[i + 1], (l->n_segs - i - 1) * sizeof *l->segs);
	l->n_segs--;
	return 0;
}

void seglog_pin(SegLog *l, uint32_t seg) {
	Segment *s = l ? find_segment(l, seg) : NULL;

	if (s)
		s->pinned = s->closed = true;
}

int seglog_dirfd(const SegLog *l) {
	return l ? l->dirfd : -EBADF;
}

size_t seglog_segments(const SegLog *l) {
	return l ? l->n_segs : 0;
}
