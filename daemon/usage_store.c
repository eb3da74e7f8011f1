/* usage_store.c — see usage_store.h. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "cleanup.h"
#include "crc32c.h"
#include "log.h"
#include "store.h"
#include "usage_store.h"

#define JOURNAL_FILE "journal"
#define STATE_FILE "state"
#define ENTRY_SIZE 96U
#define DAY_MAGIC "HITLUSGD"
#define STATE_MAGIC "HITLUSGS"
/* Version 2 adds workflow keys to the tags (TAG_WORKFLOW*). A day file or
 * state that holds none is still written as version 1, which an older hitld
 * reads; version 1 is read as it always was. */
#define FORMAT_VERSION_LOOPS 1U
#define FORMAT_VERSION_WORKFLOWS 2U
#define DAY_HEADER_SIZE 32U
#define OPEN_DISK_SIZE 36U
#define WINDOW_DISK_SIZE 32U
#define STATE_SIZE_MAX (8U + 4U + 4U + 8U + 8U + WINDOW_DISK_SIZE + sizeof(UsageTotals) + \
                        USAGE_OPEN_MAX * OPEN_DISK_SIZE + 4U)
/* The fold rows come on top of USAGE_ROWS_PER_HOUR_MAX (usage.c). */
#define ROWS_PER_HOUR_BOUND (USAGE_ROWS_PER_HOUR_MAX + _USAGE_KIND_MAX * _USAGE_OUTCOME_MAX)
#define DAY_FILE_MAX (DAY_HEADER_SIZE + 24U * ROWS_PER_HOUR_BOUND * USAGE_DISK_ROW_SIZE)
#define DIRTY_DAYS_MAX 8U
#define JOURNAL_ENTRIES_HARD_MAX (16U * USAGE_JOURNAL_ENTRIES_MAX)

typedef enum EntryType {
	ENTRY_START = 1,
	ENTRY_END = 2,
	ENTRY_UNSENT = 3,
	ENTRY_DECISION = 4,
	ENTRY_DEFAULT = 5,
} EntryType;

/* One journal entry, decoded. */
typedef struct Entry {
	EntryType type;
	UsageTag tag;
	UsageOutcome outcome;
	uint64_t seq;
	usec_t at;          /* when the call was sent (the hour it counts in) or the event happened */
	uint64_t start_seq; /* END */
	usec_t end_at;      /* END: the hour foreign calls it found count in */
	uint32_t foreign_new;
	UsageWindow window; /* END: the estimate after it */
} Entry;

typedef struct OpenCall {
	uint64_t seq;
	usec_t at;
	UsageTag tag;
} OpenCall;

typedef struct DaySeq {
	uint32_t day;
	uint64_t applied_seq;
} DaySeq;

struct UsageStore {
	int dirfd;
	int journal_fd;
	UsageHistory history;
	UsageTotals totals;
	UsageWindow window;
	uint64_t next_seq;
	OpenCall open[USAGE_OPEN_MAX];
	size_t n_open;
	uint32_t dirty_days[DIRTY_DAYS_MAX];
	size_t n_dirty;
	bool dirty, all_dirty;
	usec_t last_checkpoint;
	uint32_t journal_entries;
	uint32_t cleaned_day;
	bool journal_error_logged;
};

static void closedirp(DIR **d) {
	if (*d)
		closedir(*d);
}

/* ------------------------------------------------------------------ encoding */

static void put32(uint8_t *p, uint32_t v) {
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v) {
	for (unsigned i = 0; i < 8; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static uint32_t get32(const uint8_t *p) {
	uint32_t v = 0;

	for (unsigned i = 0; i < 4; i++)
		v |= (uint32_t) p[i] << (8 * i);
	return v;
}

static uint64_t get64(const uint8_t *p) {
	uint64_t v = 0;

	for (unsigned i = 0; i < 8; i++)
		v |= (uint64_t) p[i] << (8 * i);
	return v;
}

static int unhex(char c) {
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A loop id as 12 bytes; false (and zeros) when it is not 24 hex digits. */
static bool loop_pack(const char *id, uint8_t out[static 12]) {
	memset(out, 0, 12);
	if (strlen(id) != 24)
		return false;
	for (unsigned i = 0; i < 12; i++) {
		int hi = unhex(id[2 * i]), lo = unhex(id[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			memset(out, 0, 12);
			return false;
		}
		out[i] = (uint8_t) (hi << 4 | lo);
	}
	return true;
}

static void loop_unpack(const uint8_t in[static 12], bool has, char out[static USAGE_LOOP_ID_MAX]) {
	out[0] = '\0';
	if (has)
		for (unsigned i = 0; i < 12; i++)
			snprintf(out + 2 * i, 3, "%02x", in[i]);
}

/* A tag's flags byte: what its 12 id bytes hold. */
#define TAG_NONE 0x00U
#define TAG_LOOP 0x01U               /* a loop id, 24 hex digits as 12 bytes */
#define TAG_WORKFLOW 0x20U           /* | n: "wf_" and n (1..16) symbols, 6 bits each */
#define TAG_WORKFLOW_SHORT 0x40U     /* "wf_", 12 symbols, '~', 4 symbols: 16 symbols */
#define WORKFLOW_SYMBOLS_MAX (USAGE_WORKFLOW_HEAD + USAGE_WORKFLOW_HASH)

static bool tag_flags_valid(uint8_t flags, uint32_t version) {
	if (flags == TAG_NONE || flags == TAG_LOOP)
		return true;
	if (version < FORMAT_VERSION_WORKFLOWS)
		return false;
	return flags == TAG_WORKFLOW_SHORT ||
	       (flags > TAG_WORKFLOW && flags <= (TAG_WORKFLOW | USAGE_WORKFLOW_KEPT));
}

static bool tag_is_workflow(uint8_t flags) {
	return flags != TAG_NONE && flags != TAG_LOOP;
}

/* 16 symbols of 6 bits in 12 bytes, 4 symbols in each 3. */
static void symbols_pack(const uint8_t sym[static 16], uint8_t out[static 12]) {
	for (unsigned g = 0; g < 4; g++) {
		uint32_t v = (uint32_t) sym[4 * g] << 18 | (uint32_t) sym[4 * g + 1] << 12 |
		             (uint32_t) sym[4 * g + 2] << 6 | sym[4 * g + 3];

		out[3 * g] = (uint8_t) (v >> 16);
		out[3 * g + 1] = (uint8_t) (v >> 8);
		out[3 * g + 2] = (uint8_t) v;
	}
}

static void symbols_unpack(const uint8_t in[static 12], uint8_t sym[static 16]) {
	for (unsigned g = 0; g < 4; g++) {
		uint32_t v = (uint32_t) in[3 * g] << 16 | (uint32_t) in[3 * g + 1] << 8 | in[3 * g + 2];

		for (unsigned i = 0; i < 4; i++)
			sym[4 * g + i] = (uint8_t) (v >> (18 - 6 * i)) & 63;
	}
}

/* A workflow key (usage_workflow_key()) as 12 bytes and its flags; false
 * (and zeros) when id is none. */
static bool workflow_pack(const char *id, uint8_t out[static 12], uint8_t *ret_flags) {
	char chars[WORKFLOW_SYMBOLS_MAX + 1];
	uint8_t sym[16] = {};
	size_t n;

	memset(out, 0, 12);
	if (!usage_id_is_workflow(id))
		return false;
	id += strlen(USAGE_WORKFLOW_PREFIX);
	n = strlen(id);
	if (n == USAGE_WORKFLOW_HEAD + 1 + USAGE_WORKFLOW_HASH && id[USAGE_WORKFLOW_HEAD] == '~') {
		snprintf(chars, sizeof chars, "%.*s%s", (int) USAGE_WORKFLOW_HEAD, id, id + USAGE_WORKFLOW_HEAD + 1);
		*ret_flags = TAG_WORKFLOW_SHORT;
	} else if (n >= 1 && n <= USAGE_WORKFLOW_KEPT) {
		snprintf(chars, sizeof chars, "%s", id);
		*ret_flags = (uint8_t) (TAG_WORKFLOW | n);
	} else
		return false;
	n = strlen(chars);
	if (strspn(chars, USAGE_WORKFLOW_SYMBOLS) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		sym[i] = (uint8_t) (strchr(USAGE_WORKFLOW_SYMBOLS, chars[i]) - USAGE_WORKFLOW_SYMBOLS);
	symbols_pack(sym, out);
	return true;
}

static void workflow_unpack(const uint8_t in[static 12], uint8_t flags, char out[static USAGE_LOOP_ID_MAX]) {
	char *p = stpcpy(out, USAGE_WORKFLOW_PREFIX);
	uint8_t sym[16];
	size_t n = flags == TAG_WORKFLOW_SHORT ? WORKFLOW_SYMBOLS_MAX : (size_t) (flags & ~TAG_WORKFLOW);

	symbols_unpack(in, sym);
	for (size_t i = 0; i < n; i++) {
		if (flags == TAG_WORKFLOW_SHORT && i == USAGE_WORKFLOW_HEAD)
			*p++ = '~';
		*p++ = USAGE_WORKFLOW_SYMBOLS[sym[i]];
	}
	*p = '\0';
}

/* Tag as kind, flags, uid, id at p (18 bytes: 1 + 1 + 4 + 12). */
static void tag_put(uint8_t *p, const UsageTag *t) {
	uint8_t flags = TAG_NONE;

	p[0] = (uint8_t) t->kind;
	if (loop_pack(t->loop_id, p + 6))
		flags = TAG_LOOP;
	else if (!workflow_pack(t->loop_id, p + 6, &flags))
		flags = TAG_NONE;
	p[1] = flags;
	put32(p + 2, t->uid);
}

static bool tag_get(const uint8_t *p, uint32_t version, UsageTag *t) {
	if (p[0] >= _USAGE_KIND_MAX || !tag_flags_valid(p[1], version))
		return false;
	t->kind = p[0];
	t->uid = get32(p + 2);
	if (tag_is_workflow(p[1]))
		workflow_unpack(p + 6, p[1], t->loop_id);
	else
		loop_unpack(p + 6, p[1] == TAG_LOOP, t->loop_id);
	return true;
}

/* The id as the files keep it (a loop id in lower case, a workflow key as
 * it is), or "": the same before and after a restart. */
static void tag_normalise(UsageTag *t) {
	uint8_t p[18];

	tag_put(p, t);
	(void) tag_get(p, FORMAT_VERSION_WORKFLOWS, t);
}

static void window_put(uint8_t *p, const UsageWindow *w) {
	put64(p, (uint64_t) w->reset_epoch);
	put32(p + 8, w->limit);
	put32(p + 12, w->server_used);
	put32(p + 16, w->own);
	put32(p + 20, w->foreign);
	p[24] = w->foreign_429;
}

static void window_get(const uint8_t *p, UsageWindow *w) {
	*w = (UsageWindow) {
		.reset_epoch = (int64_t) get64(p), .limit = get32(p + 8), .server_used = get32(p + 12),
		.own = get32(p + 16), .foreign = get32(p + 20), .foreign_429 = p[24] != 0,
	};
}

/* Layout: crc 0, type 4, outcome 5, tag 6..23, seq 24, at 32, start_seq 40,
 * end_at 48, foreign_new 56, window 60..91, zeros to 96. */
static void entry_encode(const Entry *e, uint8_t out[static ENTRY_SIZE]) {
	memset(out, 0, ENTRY_SIZE);
	out[4] = (uint8_t) e->type;
	out[5] = (uint8_t) e->outcome;
	tag_put(out + 6, &e->tag);
	put64(out + 24, e->seq);
	put64(out + 32, e->at);
	put64(out + 40, e->start_seq);
	put64(out + 48, e->end_at);
	put32(out + 56, e->foreign_new);
	window_put(out + 60, &e->window);
	put32(out, crc32c(0, out + 4, ENTRY_SIZE - 4));
}

static bool entry_decode(const uint8_t in[static ENTRY_SIZE], Entry *e) {
	if (get32(in) != crc32c(0, in + 4, ENTRY_SIZE - 4))
		return false;
	*e = (Entry) { .type = in[4], .outcome = in[5] };
	if (e->type < ENTRY_START || e->type > ENTRY_DEFAULT || in[5] >= _USAGE_OUTCOME_MAX ||
	    !tag_get(in + 6, FORMAT_VERSION_WORKFLOWS, &e->tag))
		return false;
	e->seq = get64(in + 24);
	e->at = get64(in + 32);
	e->start_seq = get64(in + 40);
	e->end_at = get64(in + 48);
	e->foreign_new = get32(in + 56);
	window_get(in + 60, &e->window);
	return e->seq != 0;
}

static void day_name(uint32_t day, char buf[static 16]) {
	time_t t = (time_t) day * 86400;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 16, "%Y-%m-%d", &tm);
}

static bool day_from_name(const char *name, uint32_t *ret) {
	struct tm tm = {};
	const char *end;

	if (strlen(name) != 10)
		return false;
	end = strptime(name, "%Y-%m-%d", &tm);
	if (!end || *end)
		return false;
	*ret = (uint32_t) (timegm(&tm) / 86400);
	return true;
}

/* ------------------------------------------------------------------ applying */

static void mark_dirty(UsageStore *s, uint32_t day) {
	s->dirty = true;
	for (size_t i = 0; i < s->n_dirty; i++)
		if (s->dirty_days[i] == day)
			return;
	if (s->n_dirty < DIRTY_DAYS_MAX)
		s->dirty_days[s->n_dirty++] = day;
	else
		s->all_dirty = true;
}

static uint64_t day_seq(const DaySeq *days, size_t n, uint32_t day) {
	for (size_t i = 0; i < n; i++)
		if (days[i].day == day)
			return days[i].applied_seq;
	return 0;
}

static void bucket_add(UsageStore *s, const DaySeq *days, size_t n_days, uint64_t seq, usec_t at, UsageKind kind,
                       UsageOutcome outcome, uint32_t uid, const char *loop_id, uint32_t n) {
	uint32_t hour = usage_hour(at);

	if (seq <= day_seq(days, n_days, hour / 24))
		return; /* that day's file has it already */
	if (usage_history_add(&s->history, hour, kind, outcome, uid, loop_id, n) < 0)
		log_warning("Out of memory for the usage history; a call is not counted.");
	mark_dirty(s, hour / 24);
}

static void open_remove(UsageStore *s, uint64_t seq) {
	for (size_t i = 0; i < s->n_open; i++)
		if (s->open[i].seq == seq) {
			s->open[i] = s->open[--s->n_open];
			return;
		}
}

/* What entry e means for the buckets (unless the day file of its hour has it,
 * days), the totals, window and calls in flight (unless state_seq has it). */
static void apply(UsageStore *s, const Entry *e, uint64_t state_seq, const DaySeq *days, size_t n_days) {
	bool state = e->seq > state_seq;

	switch (e->type) {
	case ENTRY_START:
		if (state && s->n_open < USAGE_OPEN_MAX)
			s->open[s->n_open++] = (OpenCall) { .seq = e->seq, .at = e->at, .tag = e->tag };
		break;
	case ENTRY_END:
		bucket_add(s, days, n_days, e->seq, e->at, e->tag.kind, e->outcome, e->tag.uid, e->tag.loop_id, 1);
		if (e->foreign_new > 0)
			bucket_add(s, days, n_days, e->seq, e->end_at, USAGE_FOREIGN, USAGE_NONE, USAGE_UID_FOREIGN, "",
			           e->foreign_new);
		if (state) {
			open_remove(s, e->start_seq);
			s->totals.calls[e->tag.kind][e->outcome]++;
			s->totals.calls[USAGE_FOREIGN][USAGE_NONE] += e->foreign_new;
			if (e->window.reset_epoch != 0)
				s->window = e->window;
		}
		break;
	default: {
		UsageKind kind = e->type == ENTRY_DECISION ? USAGE_DECISION
		                 : e->type == ENTRY_DEFAULT ? USAGE_DEFAULT
		                                            : e->tag.kind;
		UsageOutcome outcome = e->type == ENTRY_UNSENT ? USAGE_UNSENT : USAGE_NONE;

		bucket_add(s, days, n_days, e->seq, e->at, kind, outcome, e->tag.uid, e->tag.loop_id, 1);
		if (state)
			s->totals.calls[kind][outcome]++;
		break;
	}
	}
}

/* Journals e (durably) and applies it. The count is kept in memory even when
 * the journal cannot be written; the next checkpoint saves it. */
static int record(UsageStore *s, Entry *e, usec_t now) {
	uint8_t buf[ENTRY_SIZE];
	int k;

	e->seq = s->next_seq++;
	entry_encode(e, buf);
	/* While checkpoints fail the journal grows, but not without bound. */
	if (s->journal_entries >= JOURNAL_ENTRIES_HARD_MAX)
		k = -ENOSPC;
	else {
		k = store_write_all(s->journal_fd, buf, sizeof buf);
		if (k >= 0)
			k = store_fsync(s->journal_fd);
	}
	if (k < 0 && !s->journal_error_logged) {
		log_warning_errno(k, "Failed to write the usage journal (calls are counted in memory until a checkpoint works): %m");
		s->journal_error_logged = true;
	} else if (k >= 0)
		s->journal_error_logged = false;
	s->journal_entries++;
	apply(s, e, 0, NULL, 0);
	(void) usage_store_checkpoint(s, now, s->journal_entries >= USAGE_JOURNAL_ENTRIES_MAX);
	return k;
}

int usage_store_sent(UsageStore *s, const UsageTag *tag, usec_t now, uint64_t *ret_seq) {
	Entry e = { .type = ENTRY_START, .tag = *tag, .outcome = USAGE_NONE, .at = now };
	int k;

	if (tag->kind < 0 || tag->kind >= _USAGE_CALL_KIND_MAX)
		return -EINVAL;
	tag_normalise(&e.tag);
	k = record(s, &e, now);
	*ret_seq = e.seq;
	return k;
}

int usage_store_ended(UsageStore *s, uint64_t seq, long http_status, const RateInfo *rate, usec_t now,
                      uint32_t *ret_foreign_new) {
	const OpenCall *c = NULL;
	Entry e;

	for (size_t i = 0; i < s->n_open && !c; i++)
		if (s->open[i].seq == seq)
			c = &s->open[i];
	if (!c)
		return -ENOENT;
	e = (Entry) {
		.type = ENTRY_END, .tag = c->tag, .at = c->at, .start_seq = seq, .end_at = now,
		.outcome = usage_outcome_from_status(http_status, true),
	};
	/* The others in flight: every open call but this one. */
	e.foreign_new = usage_window_observe(&s->window, http_status, rate, (uint32_t) s->n_open - 1);
	e.window = s->window;
	if (ret_foreign_new)
		*ret_foreign_new = e.foreign_new;
	return record(s, &e, now);
}

int usage_store_unsent(UsageStore *s, const UsageTag *tag, usec_t now) {
	Entry e = { .type = ENTRY_UNSENT, .tag = *tag, .outcome = USAGE_UNSENT, .at = now };

	if (tag->kind < 0 || tag->kind >= _USAGE_CALL_KIND_MAX)
		return -EINVAL;
	tag_normalise(&e.tag);
	return record(s, &e, now);
}

int usage_store_finished(UsageStore *s, bool decision, uint32_t uid, const char *loop_id, usec_t now) {
	Entry e = { .type = decision ? ENTRY_DECISION : ENTRY_DEFAULT, .outcome = USAGE_NONE, .at = now,
	            .tag = { .kind = decision ? USAGE_DECISION : USAGE_DEFAULT, .uid = uid } };

	snprintf(e.tag.loop_id, sizeof e.tag.loop_id, "%s", loop_id && strlen(loop_id) == 24 ? loop_id : "");
	tag_normalise(&e.tag);
	return record(s, &e, now);
}

/* ------------------------------------------------------------------ checkpoints */

static uint32_t first_kept_hour(usec_t now) {
	uint32_t h = usage_hour(now);

	return h >= USAGE_HOURS_KEPT ? h - (USAGE_HOURS_KEPT - 1) : 0;
}

static int day_encode(const UsageStore *s, uint32_t day, uint64_t applied_seq, uint8_t **ret, size_t *ret_len) {
	size_t n = 0, len;
	uint8_t *buf, *p;

	for (uint32_t h = day * 24; h < day * 24 + 24; h++) {
		const UsageHour *hr = usage_history_get(&s->history, h);

		n += hr ? hr->n_rows : 0;
	}
	len = DAY_HEADER_SIZE + n * USAGE_DISK_ROW_SIZE;
	buf = calloc(1, len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, DAY_MAGIC, 8);
	put32(buf + 8, FORMAT_VERSION_LOOPS);
	put32(buf + 12, day);
	put64(buf + 16, applied_seq);
	put32(buf + 24, (uint32_t) n);
	p = buf + DAY_HEADER_SIZE;
	for (uint32_t h = day * 24; h < day * 24 + 24; h++) {
		const UsageHour *hr = usage_history_get(&s->history, h);

		for (size_t i = 0; hr && i < hr->n_rows; i++, p += USAGE_DISK_ROW_SIZE) {
			const UsageRow *r = &hr->rows[i];
			UsageTag t = { .kind = r->kind, .uid = r->uid };

			memcpy(t.loop_id, r->loop_id, sizeof t.loop_id);
			p[0] = (uint8_t) (h - day * 24);
			p[1] = r->outcome;
			tag_put(p + 2, &t);
			if (tag_is_workflow(p[3]))
				put32(buf + 8, FORMAT_VERSION_WORKFLOWS);
			put32(p + 20, r->count);
		}
	}
	put32(buf + 28, crc32c(crc32c(0, buf, 28), buf + DAY_HEADER_SIZE, len - DAY_HEADER_SIZE));
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int day_decode(UsageStore *s, const uint8_t *buf, size_t len, uint32_t day, uint64_t *ret_seq) {
	uint32_t n, version;

	if (len < DAY_HEADER_SIZE || memcmp(buf, DAY_MAGIC, 8) != 0)
		return -EBADMSG;
	version = get32(buf + 8);
	if (version < FORMAT_VERSION_LOOPS || version > FORMAT_VERSION_WORKFLOWS ||
	    get32(buf + 12) != day)
		return -EBADMSG;
	n = get32(buf + 24);
	if (len != DAY_HEADER_SIZE + (size_t) n * USAGE_DISK_ROW_SIZE ||
	    get32(buf + 28) != crc32c(crc32c(0, buf, 28), buf + DAY_HEADER_SIZE, len - DAY_HEADER_SIZE))
		return -EBADMSG;
	for (const uint8_t *p = buf + DAY_HEADER_SIZE; p < buf + len; p += USAGE_DISK_ROW_SIZE) {
		UsageTag t;

		if (p[0] >= 24 || p[1] >= _USAGE_OUTCOME_MAX || !tag_get(p + 2, version, &t))
			return -EBADMSG;
	}
	for (const uint8_t *p = buf + DAY_HEADER_SIZE; p < buf + len; p += USAGE_DISK_ROW_SIZE) {
		UsageTag t;

		(void) tag_get(p + 2, version, &t);
		if (usage_history_add(&s->history, day * 24 + p[0], t.kind, p[1], t.uid, t.loop_id, get32(p + 20)) < 0)
			return -ENOMEM;
	}
	*ret_seq = get64(buf + 16);
	return 0;
}

static int state_encode(const UsageStore *s, uint8_t **ret, size_t *ret_len) {
	size_t len = 8 + 4 + 4 + 8 + 8 + WINDOW_DISK_SIZE + sizeof s->totals + s->n_open * OPEN_DISK_SIZE + 4;
	uint8_t *buf = calloc(1, len), *p;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, STATE_MAGIC, 8);
	put32(buf + 8, FORMAT_VERSION_LOOPS);
	put32(buf + 12, (uint32_t) s->n_open);
	put64(buf + 16, s->next_seq - 1);
	put64(buf + 24, s->next_seq);
	window_put(buf + 32, &s->window);
	p = buf + 32 + WINDOW_DISK_SIZE;
	for (unsigned k = 0; k < _USAGE_KIND_MAX; k++)
		for (unsigned o = 0; o < _USAGE_OUTCOME_MAX; o++, p += 8)
			put64(p, s->totals.calls[k][o]);
	for (size_t i = 0; i < s->n_open; i++, p += OPEN_DISK_SIZE) {
		put64(p, s->open[i].seq);
		put64(p + 8, s->open[i].at);
		tag_put(p + 16, &s->open[i].tag);
		if (tag_is_workflow(p[17]))
			put32(buf + 8, FORMAT_VERSION_WORKFLOWS);
	}
	put32(p, crc32c(0, buf, len - 4));
	*ret = buf;
	*ret_len = len;
	return 0;
}

static int state_decode(UsageStore *s, const uint8_t *buf, size_t len, uint64_t *ret_applied) {
	uint32_t n_open, version;
	const uint8_t *p;

	if (len < 8 + 4 + 4 + 8 + 8 + WINDOW_DISK_SIZE + sizeof s->totals + 4 || memcmp(buf, STATE_MAGIC, 8) != 0)
		return -EBADMSG;
	version = get32(buf + 8);
	if (version < FORMAT_VERSION_LOOPS || version > FORMAT_VERSION_WORKFLOWS)
		return -EBADMSG;
	n_open = get32(buf + 12);
	if (n_open > USAGE_OPEN_MAX ||
	    len != 8 + 4 + 4 + 8 + 8 + WINDOW_DISK_SIZE + sizeof s->totals + n_open * OPEN_DISK_SIZE + 4 ||
	    get32(buf + len - 4) != crc32c(0, buf, len - 4))
		return -EBADMSG;
	*ret_applied = get64(buf + 16);
	s->next_seq = get64(buf + 24);
	window_get(buf + 32, &s->window);
	p = buf + 32 + WINDOW_DISK_SIZE;
	for (unsigned k = 0; k < _USAGE_KIND_MAX; k++)
		for (unsigned o = 0; o < _USAGE_OUTCOME_MAX; o++, p += 8)
			s->totals.calls[k][o] = get64(p);
	s->n_open = 0;
	for (uint32_t i = 0; i < n_open; i++, p += OPEN_DISK_SIZE) {
		OpenCall c = { .seq = get64(p), .at = get64(p + 8) };

		if (tag_get(p + 16, version, &c.tag))
			s->open[s->n_open++] = c;
	}
	return 0;
}

/* Removes day files before the kept days (once a day). */
static void cleanup_days(UsageStore *s, usec_t now) {
	_cleanup_(closedirp) DIR *d = NULL;
	uint32_t first_day = first_kept_hour(now) / 24, day;
	struct dirent *de;

	if (s->cleaned_day == usage_hour(now) / 24 || store_opendir(s->dirfd, &d) < 0)
		return;
	s->cleaned_day = usage_hour(now) / 24;
	while ((de = readdir(d)))
		if (day_from_name(de->d_name, &day) && day < first_day)
			(void) store_unlink(s->dirfd, de->d_name);
}

int usage_store_checkpoint(UsageStore *s, usec_t now, bool force) {
	enum { FILES_MAX = USAGE_DAYS_KEPT + 3 };
	uint8_t *data[FILES_MAX] = {};
	char names[FILES_MAX][16];
	const char *name_ptrs[FILES_MAX];
	size_t lens[FILES_MAX], n = 0;
	int results[FILES_MAX], k = 0;
	uint32_t first = first_kept_hour(now), today = usage_hour(now) / 24, days[FILES_MAX];
	size_t n_days = 0;

	if (!s->dirty || (!force && s->last_checkpoint != 0 && now >= s->last_checkpoint &&
	                  now < usec_add(s->last_checkpoint, USAGE_CHECKPOINT_INTERVAL)))
		return 0;
	usage_history_expire(&s->history, first);
	if (s->all_dirty)
		for (uint32_t d = first / 24; d <= today && n_days < FILES_MAX - 1; d++)
			days[n_days++] = d;
	else
		for (size_t i = 0; i < s->n_dirty; i++)
			if (s->dirty_days[i] >= first / 24)
				days[n_days++] = s->dirty_days[i];
	for (; n < n_days && k >= 0; n++) {
		day_name(days[n], names[n]);
		k = day_encode(s, days[n], s->next_seq - 1, &data[n], &lens[n]);
	}
	/* The state goes last (store_write_files renames in order). Each file
	 * says up to which entry it holds (applied_seq), so a crash between
	 * the renames leaves every file replaying just what it lacks. */
	if (k >= 0) {
		snprintf(names[n], sizeof names[n], "%s", STATE_FILE);
		k = state_encode(s, &data[n], &lens[n]);
		n++;
	}
	for (size_t i = 0; i < n; i++)
		name_ptrs[i] = names[i];
	if (k >= 0)
		k = store_write_files(s->dirfd, n, name_ptrs, (const char *const *) data, lens, results);
	for (size_t i = 0; i < n; i++)
		free(data[i]);
	s->last_checkpoint = now;
	if (k < 0)
		return log_warning_errno(k, "Failed to write the usage history (kept in the journal, tried again later): %m");
	/* Everything up to here is in the files: the journal starts over. */
	if (ftruncate(s->journal_fd, 0) < 0 || store_fsync(s->journal_fd) < 0)
		log_warning_errno(errno, "Failed to cut back the usage journal: %m");
	s->dirty = s->all_dirty = false;
	s->n_dirty = 0;
	s->journal_entries = 0;
	cleanup_days(s, now);
	return 0;
}

/* ------------------------------------------------------------------ opening */

static void set_aside(UsageStore *s, const char *name, int error) {
	char bad[32];

	snprintf(bad, sizeof bad, "%s.bad", name);
	(void) store_unlink_nosync(s->dirfd, bad);
	log_warning_errno(error, "The usage history file %s/%s is damaged (%m); it is set aside as %s.", USAGE_DIR, name,
	                  bad);
	(void) store_move(s->dirfd, name, s->dirfd, bad);
}

static int load_days(UsageStore *s, usec_t now, DaySeq *days, size_t *ret_n) {
	_cleanup_(closedirp) DIR *d = NULL;
	uint32_t first_day = first_kept_hour(now) / 24, day;
	struct dirent *de;
	size_t n = 0;
	int k;

	k = store_opendir(s->dirfd, &d);
	if (k < 0)
		return k;
	while ((de = readdir(d))) {
		_cleanup_(freep) char *buf = NULL;
		size_t len;
		uint64_t seq;

		if (!day_from_name(de->d_name, &day))
			continue;
		if (day < first_day || n >= USAGE_DAYS_KEPT + 2) {
			(void) store_unlink(s->dirfd, de->d_name);
			continue;
		}
		k = store_read_file(s->dirfd, de->d_name, DAY_FILE_MAX, &buf, &len);
		if (k >= 0)
			k = day_decode(s, (const uint8_t *) buf, len, day, &seq);
		if (k == -ENOMEM)
			return k;
		if (k < 0) {
			set_aside(s, de->d_name, k);
			continue;
		}
		days[n++] = (DaySeq) { .day = day, .applied_seq = seq };
	}
	*ret_n = n;
	return 0;
}

static int replay(UsageStore *s, uint64_t state_seq, const DaySeq *days, size_t n_days) {
	_cleanup_(freep) char *buf = NULL;
	size_t len, bad = 0, good;
	uint64_t max_seq = 0;
	int k;

	k = store_read_file(s->dirfd, JOURNAL_FILE, (size_t) JOURNAL_ENTRIES_HARD_MAX * ENTRY_SIZE + ENTRY_SIZE, &buf, &len);
	if (k == -ENOENT)
		return 0;
	if (k == -EFBIG) {
		set_aside(s, JOURNAL_FILE, k);
		return 0;
	}
	if (k < 0)
		return k;
	good = len - len % ENTRY_SIZE;
	for (size_t off = 0; off < good; off += ENTRY_SIZE) {
		Entry e;

		if (!entry_decode((const uint8_t *) buf + off, &e)) {
			bad++;
			continue;
		}
		apply(s, &e, state_seq, days, n_days);
		if (e.seq > max_seq)
			max_seq = e.seq;
	}
	if (bad > 0 || good != len)
		log_warning("The usage journal had %zu damaged entries and %zu bytes of a torn last one; they are skipped.",
		            bad, len - good);
	if (max_seq >= s->next_seq)
		s->next_seq = max_seq + 1;
	s->journal_entries = (uint32_t) (good / ENTRY_SIZE);
	return (int) good;
}

int usage_store_open(int state_dirfd, usec_t now, UsageStore **ret) {
	_cleanup_(freep) char *buf = NULL;
	_cleanup_(usage_store_freep) UsageStore *s = NULL;
	DaySeq days[USAGE_DAYS_KEPT + 2];
	size_t n_days = 0, len;
	uint64_t state_seq = 0;
	int k, good;

	s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->dirfd = s->journal_fd = -EBADF;
	s->next_seq = 1;
	k = store_open_dir(state_dirfd, USAGE_DIR, 0700, &s->dirfd);
	if (k < 0)
		return log_error_errno(k, "Failed to open the usage history directory: %m");

	k = store_read_file(s->dirfd, STATE_FILE, STATE_SIZE_MAX, &buf, &len);
	if (k >= 0)
		k = state_decode(s, (const uint8_t *) buf, len, &state_seq);
	if (k < 0 && k != -ENOENT) {
		set_aside(s, STATE_FILE, k);
		s->next_seq = 1;
		s->n_open = 0;
		s->window = (UsageWindow) {};
		s->totals = (UsageTotals) {};
	}
	k = load_days(s, now, days, &n_days);
	if (k < 0)
		return log_error_errno(k, "Failed to read the usage history: %m");
	for (size_t i = 0; i < n_days; i++)
		if (days[i].applied_seq >= s->next_seq)
			s->next_seq = days[i].applied_seq + 1;
	good = replay(s, state_seq, days, n_days);
	if (good < 0)
		return log_error_errno(good, "Failed to read the usage journal: %m");

	s->journal_fd = store_openat(s->dirfd, JOURNAL_FILE, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->journal_fd < 0)
		return log_error_errno(s->journal_fd, "Failed to open the usage journal: %m");
	/* A torn tail goes, so that new entries stay aligned. */
	if (ftruncate(s->journal_fd, good) < 0)
		return log_error_errno(errno, "Failed to cut the usage journal's torn tail: %m");

	/* Calls a crash left in flight: the server may have seen them. */
	s->last_checkpoint = now;
	while (s->n_open > 0)
		(void) usage_store_ended(s, s->open[0].seq, 0, NULL, now, NULL);
	s->dirty = true;
	(void) usage_store_checkpoint(s, now, true);
	*ret = TAKE_PTR(s);
	return 0;
}

UsageStore *usage_store_free(UsageStore *s, usec_t now) {
	if (!s)
		return NULL;
	if (s->journal_fd >= 0)
		(void) usage_store_checkpoint(s, now, true);
	usage_history_done(&s->history);
	if (s->journal_fd >= 0)
		close(s->journal_fd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s);
	return NULL;
}

/* ------------------------------------------------------------------ reading */

int usage_store_query(const UsageStore *s, usec_t since, usec_t now, uint32_t uid, UsageGroup by, UsageSum **ret,
                      size_t *ret_n) {
	UsageHistory copy = {};
	uint32_t from = usage_hour(since), to = usage_hour(now);
	int k = 0;

	if (from < first_kept_hour(now))
		from = first_kept_hour(now);
	if (from > to)
		from = to;
	if (s->n_open == 0)
		return usage_history_query(&s->history, from, to, uid, by, ret, ret_n);

	/* Calls in flight count as no reply until they end: a copy of the
	 * hours asked for, plus them. Queries are rare, the hours few. */
	for (size_t i = 0; i < s->history.n_hours && k >= 0; i++) {
		const UsageHour *hr = &s->history.hours[i];

		if (hr->hour < from || hr->hour > to)
			continue;
		for (size_t j = 0; j < hr->n_rows && k >= 0; j++)
			k = usage_history_add(&copy, hr->hour, hr->rows[j].kind, hr->rows[j].outcome, hr->rows[j].uid,
			                      hr->rows[j].loop_id, hr->rows[j].count);
	}
	for (size_t i = 0; i < s->n_open && k >= 0; i++)
		k = usage_history_add(&copy, usage_hour(s->open[i].at), s->open[i].tag.kind, USAGE_NO_REPLY,
		                      s->open[i].tag.uid, s->open[i].tag.loop_id, 1);
	if (k >= 0)
		k = usage_history_query(&copy, from, to, uid, by, ret, ret_n);
	usage_history_done(&copy);
	return k;
}

void usage_store_totals(const UsageStore *s, UsageTotals *ret) {
	*ret = s->totals;
}

void usage_store_window(const UsageStore *s, UsageWindow *ret) {
	*ret = s->window;
}

uint32_t usage_store_in_flight(const UsageStore *s) {
	return (uint32_t) s->n_open;
}
