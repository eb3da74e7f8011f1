/* loadgen.c — closed-loop load for hitld's control socket (or any NDJSON line
 * server): N AF_UNIX connections, D requests in flight on each, driven either by
 * a thread per connection (the default) or by T threads with epoll
 * (--threads T: on 2 cores, 64 threads would take the CPU the server needs).
 * Measures the round trip of every reply and prints one JSON line.
 * Benchmark tool only (bench/run drives it); never part of the daemon. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

#define LOADGEN_CONNS_MAX 1024
#define LOADGEN_DEPTH_MAX 256
#define LOADGEN_LINE_MAX (8U * 1024U * 1024U)   /* a reply longer than this is an error */
#define LOADGEN_SAMPLES_MAX (16U * 1024U * 1024U)
#define LOADGEN_UNIQ "@UNIQ@"

typedef enum Phase {
	PHASE_WARMUP,
	PHASE_MEASURE,
	PHASE_STOP,
} Phase;

typedef struct Options {
	const char *socket_path;
	const char *method;
	const char *params;        /* JSON text; LOADGEN_UNIQ is replaced per request */
	const char *ids_out;       /* file for the "id" of every successful submit */
	unsigned conns;
	unsigned depth;
	double duration_s;
	double warmup_s;
	uint64_t max_requests;     /* per connection; 0 = until the duration ends */
	bool echo;                 /* any line is a success (echo server baseline) */
	unsigned threads;          /* 0: one per connection (blocking); else epoll threads */
} Options;

typedef struct Worker {
	pthread_t thread;
	unsigned index;
	const Options *options;
	int fd;
	uint64_t sent, received, ok, errors;
	uint32_t *samples;         /* round trips in ns/64, measured phase only */
	size_t n_samples, alloc_samples;
	FILE *ids;                 /* private tmp file, merged at the end */
	char *failure;
	/* the connection's buffers (conn_setup) */
	uint64_t *sent_at;
	char *out, *in;
	size_t out_cap, in_len, in_cap;
} Worker;

typedef struct Poller {
	pthread_t thread;
	Worker **workers;
	size_t n_workers;
	char *failure;
} Poller;

static _Atomic int phase = PHASE_WARMUP;

static uint64_t now_ns(void) {
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static int connect_unix(const char *path) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
		int k = -errno;

		close(fd);
		return k;
	}
	return fd;
}

static int write_all(int fd, const char *p, size_t len) {
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t) n;
	}
	return 0;
}

/* Appends one request line to buf (size cap) for request number seq of worker w. */
static int format_request(const Worker *w, uint64_t seq, char *buf, size_t cap, size_t *len) {
	const Options *o = w->options;
	char uniq[48];
	const char *params = o->params, *mark;
	int n;

	snprintf(uniq, sizeof uniq, "c%un%" PRIu64, w->index, seq);
	n = snprintf(buf + *len, cap - *len, "{\"jsonrpc\":\"2.0\",\"id\":%" PRIu64 ",\"method\":\"%s\"",
	             seq, o->method);
	if (n < 0 || (size_t) n >= cap - *len)
		return -ENOBUFS;
	*len += (size_t) n;
	if (params) {
		mark = strstr(params, LOADGEN_UNIQ);
		if (mark)
			n = snprintf(buf + *len, cap - *len, ",\"params\":%.*s%s%s}\n", (int) (mark - params),
			             params, uniq, mark + strlen(LOADGEN_UNIQ));
		else
			n = snprintf(buf + *len, cap - *len, ",\"params\":%s}\n", params);
	} else
		n = snprintf(buf + *len, cap - *len, "}\n");
	if (n < 0 || (size_t) n >= cap - *len)
		return -ENOBUFS;
	*len += (size_t) n;
	return 0;
}

static void record_sample(Worker *w, uint64_t rtt_ns) {
	if (w->n_samples == w->alloc_samples) {
		size_t alloc = w->alloc_samples ? w->alloc_samples * 2 : 65536;
		uint32_t *p;

		if (alloc > LOADGEN_SAMPLES_MAX)
			return;
		p = realloc(w->samples, alloc * sizeof *p);
		if (!p)
			return;
		w->samples = p;
		w->alloc_samples = alloc;
	}
	/* 64 ns units: 32 bits hold 4.5 minutes. */
	w->samples[w->n_samples++] = (uint32_t) (rtt_ns / 64 > UINT32_MAX ? UINT32_MAX : rtt_ns / 64);
}

/* A reply is a success when it carries "result" (echo mode: any line). A
 * submit's local id is the first "id" inside the result. */
static void handle_reply(Worker *w, const char *line, size_t len, uint64_t rtt_ns, bool measuring) {
	const char *result = memmem(line, len, "\"result\"", 8);
	bool ok = w->options->echo || result;

	w->received++;
	if (!measuring)
		return;
	if (ok)
		w->ok++;
	else
		w->errors++;
	record_sample(w, rtt_ns);
	if (ok && w->ids && result) {
		const char *id = memmem(result, len - (size_t) (result - line), "\"id\":\"", 6);

		if (id) {
			const char *start = id + 6, *end = memchr(start, '"', len - (size_t) (start - line));

			if (end)
				fprintf(w->ids, "%.*s\n", (int) (end - start), start);
		}
	}
}

/* ---- one connection: its buffers live in its Worker ---- */

static const char *conn_setup(Worker *w) {
	const Options *o = w->options;

	w->sent_at = calloc(o->depth, sizeof *w->sent_at);
	w->out_cap = (size_t) o->depth * (strlen(o->params ? o->params : "") + 256);
	w->out = malloc(w->out_cap);
	w->in_cap = 64 * 1024;
	w->in = malloc(w->in_cap);
	return w->sent_at && w->out && w->in ? NULL : "out of memory";
}

/* Tops the connection up to depth requests in flight (closed loop, as a
 * thread per connection does). The send blocks: depth requests must fit the
 * socket buffer (bench/run sends at most 8 of about 1 KiB), or a server that
 * stops reading until its replies are read would stall this thread. */
static const char *conn_fill(Worker *w) {
	const Options *o = w->options;
	uint64_t first_new = w->sent, t;
	size_t out_len = 0;
	int k;

	while (atomic_load(&phase) != PHASE_STOP && w->sent - w->received < o->depth &&
	       (o->max_requests == 0 || w->sent < o->max_requests)) {
		if (format_request(w, w->sent + 1, w->out, w->out_cap, &out_len) < 0)
			return "request too long";
		w->sent++;
	}
	if (out_len == 0)
		return NULL;
	t = now_ns();
	for (uint64_t s = first_new; s < w->sent; s++)
		w->sent_at[s % o->depth] = t;
	k = write_all(w->fd, w->out, out_len);
	return k < 0 ? strerror(-k) : NULL;
}

/* Makes room to read into w->in. */
static const char *in_room(Worker *w) {
	char *p;

	if (w->in_cap - w->in_len >= 4096)
		return NULL;
	if (w->in_cap >= LOADGEN_LINE_MAX)
		return "reply line too long";
	p = realloc(w->in, w->in_cap * 2);
	if (!p)
		return "out of memory";
	w->in = p;
	w->in_cap *= 2;
	return NULL;
}

/* Handles every complete reply in w->in; replies come back in request order
 * (PROTOCOL.md §1). */
static void handle_lines(Worker *w) {
	const Options *o = w->options;
	uint64_t t = now_ns();
	int ph = atomic_load(&phase);
	size_t pos = 0;

	for (char *nl; w->received < w->sent && (nl = memchr(w->in + pos, '\n', w->in_len - pos));) {
		uint64_t rtt = t - w->sent_at[w->received % o->depth];

		handle_reply(w, w->in + pos, (size_t) (nl - (w->in + pos)), rtt, ph == PHASE_MEASURE);
		pos = (size_t) (nl - w->in) + 1;
	}
	memmove(w->in, w->in + pos, w->in_len - pos);
	w->in_len -= pos;
}

/* Reads once: blocking (a thread per connection) or not (epoll). */
static const char *conn_recv(Worker *w, int flags) {
	const char *failure = in_room(w);
	ssize_t n;

	if (failure)
		return failure;
	n = recv(w->fd, w->in + w->in_len, w->in_cap - w->in_len, flags);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? NULL : strerror(errno);
	if (n == 0)
		return "server closed the connection";
	w->in_len += (size_t) n;
	return NULL;
}

/* A thread per connection: keeps depth requests in flight until told to
 * stop, then collects what is still owed so the server is left quiet.
 * Returns NULL or what failed. */
static const char *worker_loop(Worker *w) {
	const char *failure = conn_setup(w);

	if (failure)
		return failure;
	for (;;) {
		failure = conn_fill(w);
		if (failure)
			return failure;
		if (w->sent == w->received)
			return NULL;
		while (!memchr(w->in, '\n', w->in_len)) {
			failure = conn_recv(w, 0);
			if (failure)
				return failure;
		}
		handle_lines(w);
	}
}

static void *worker_run(void *userdata) {
	Worker *w = userdata;
	const char *failure = worker_loop(w);

	if (failure) {
		w->failure = strdup(failure);
		atomic_store(&phase, PHASE_STOP);
	}
	return NULL;
}

/* ---- epoll mode: one thread drives many connections ---- */

static bool conn_done(const Worker *w) {
	const Options *o = w->options;
	bool stopped = atomic_load(&phase) == PHASE_STOP || (o->max_requests > 0 && w->sent >= o->max_requests);

	return stopped && w->sent == w->received;
}

/* Reads what the socket has, handles every complete reply, tops up. */
static const char *conn_readable(Worker *w) {
	const char *failure = conn_recv(w, MSG_DONTWAIT);

	if (failure)
		return failure;
	handle_lines(w);
	return conn_fill(w);
}

static const char *poller_loop(Poller *p) {
	_cleanup_(closep) int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event events[64];

	if (ep < 0)
		return strerror(errno);
	for (size_t i = 0; i < p->n_workers; i++) {
		Worker *w = p->workers[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = w };
		const char *failure = conn_setup(w);

		if (failure)
			return failure;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, w->fd, &ev) < 0)
			return strerror(errno);
		failure = conn_fill(w);
		if (failure)
			return failure;
	}
	for (;;) {
		bool all_done = true;
		int n;

		for (size_t i = 0; i < p->n_workers && all_done; i++)
			all_done = conn_done(p->workers[i]);
		if (all_done)
			return NULL;
		/* A bounded wait: the phase may change while nothing arrives. */
		n = epoll_wait(ep, events, (int) ELEMENTSOF(events), 50);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return strerror(errno);
		}
		for (int i = 0; i < n; i++) {
			const char *failure = conn_readable(events[i].data.ptr);

			if (failure)
				return failure;
		}
	}
}

static void *poller_run(void *userdata) {
	Poller *p = userdata;
	const char *failure = poller_loop(p);

	if (failure) {
		p->failure = strdup(failure);
		atomic_store(&phase, PHASE_STOP);
	}
	return NULL;
}

static int cmp_u32(const void *a, const void *b) {
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

	return x < y ? -1 : x > y;
}

static double percentile_us(const uint32_t *sorted, size_t n, double p) {
	size_t i;

	if (n == 0)
		return 0.0;
	i = (size_t) (p / 100.0 * (double) (n - 1) + 0.5);
	return (double) sorted[i] * 64.0 / 1000.0;
}

static void sleep_s(double s) {
	struct timespec ts = { .tv_sec = (time_t) s, .tv_nsec = (long) ((s - (double) (time_t) s) * 1e9) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void usage(FILE *f) {
	fprintf(f,
	        "usage: loadgen --socket PATH --method NAME [--params JSON] [--conns N] [--depth D]\n"
	        "               [--duration S] [--warmup S] [--requests N] [--echo] [--ids-out FILE]\n"
	        "               [--threads T]\n"
	        "  --params JSON   request params; every " LOADGEN_UNIQ " is replaced by a unique token\n"
	        "  --requests N    per connection, then stop (default: run for --duration)\n"
	        "  --echo          count any reply line as a success (echo server baseline)\n"
	        "  --threads T     drive the connections from T threads with epoll\n"
	        "                  (default: one blocking thread per connection)\n"
	        "Prints one JSON line: count (measured), total (warm-up included), ok, errors, rps\n"
	        "and round-trip percentiles in us.\n");
}

int main(int argc, char **argv) {
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },  { "method", required_argument, NULL, 'm' },
		{ "params", required_argument, NULL, 'p' },  { "conns", required_argument, NULL, 'c' },
		{ "depth", required_argument, NULL, 'd' },   { "duration", required_argument, NULL, 't' },
		{ "warmup", required_argument, NULL, 'w' },  { "requests", required_argument, NULL, 'n' },
		{ "echo", no_argument, NULL, 'e' },          { "ids-out", required_argument, NULL, 'i' },
		{ "threads", required_argument, NULL, 'T' }, { "help", no_argument, NULL, 'h' },
		{},
	};
	Options o = { .method = "status", .conns = 1, .depth = 1, .duration_s = 3.0, .warmup_s = 0.5 };
	Worker *workers, **worker_ptrs = NULL;
	Poller *pollers = NULL;
	uint64_t t0, t1 = 0, count = 0, ok = 0, errors = 0, total = 0;
	size_t n_samples = 0;
	uint32_t *all;
	int opt;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) >= 0)
		switch (opt) {
		case 's': o.socket_path = optarg; break;
		case 'm': o.method = optarg; break;
		case 'p': o.params = optarg; break;
		case 'c': o.conns = (unsigned) strtoul(optarg, NULL, 10); break;
		case 'd': o.depth = (unsigned) strtoul(optarg, NULL, 10); break;
		case 't': o.duration_s = strtod(optarg, NULL); break;
		case 'w': o.warmup_s = strtod(optarg, NULL); break;
		case 'n': o.max_requests = strtoull(optarg, NULL, 10); break;
		case 'e': o.echo = true; break;
		case 'i': o.ids_out = optarg; break;
		case 'T': o.threads = (unsigned) strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	if (!o.socket_path || o.conns == 0 || o.conns > LOADGEN_CONNS_MAX || o.depth == 0 ||
	    o.depth > LOADGEN_DEPTH_MAX || !(o.duration_s > 0) || !(o.warmup_s >= 0) ||
	    o.threads > o.conns) {
		usage(stderr);
		return 2;
	}

	workers = calloc(o.conns, sizeof *workers);
	if (!workers)
		return 1;
	for (unsigned i = 0; i < o.conns; i++) {
		Worker *w = &workers[i];

		w->index = i;
		w->options = &o;
		w->fd = connect_unix(o.socket_path);
		if (w->fd < 0) {
			fprintf(stderr, "loadgen: connect %s (connection %u): %s\n", o.socket_path, i, strerror(-w->fd));
			return 1;
		}
		if (o.ids_out) {
			w->ids = tmpfile();
			if (!w->ids)
				return 1;
		}
	}
	/* Bounded runs (--requests) measure from the first request. */
	if (o.max_requests > 0)
		atomic_store(&phase, PHASE_MEASURE);
	if (o.threads > 0) {
		pollers = calloc(o.threads, sizeof *pollers);
		worker_ptrs = calloc(o.conns, sizeof *worker_ptrs);
		if (!pollers || !worker_ptrs)
			return 1;
		/* Connection i goes to thread i % T. */
		for (unsigned t = 0, next = 0; t < o.threads; t++) {
			pollers[t].workers = worker_ptrs + next;
			for (unsigned i = t; i < o.conns; i += o.threads)
				worker_ptrs[next++] = &workers[i];
			pollers[t].n_workers = (size_t) (worker_ptrs + next - pollers[t].workers);
		}
		for (unsigned t = 0; t < o.threads; t++)
			if (pthread_create(&pollers[t].thread, NULL, poller_run, &pollers[t]) != 0) {
				fprintf(stderr, "loadgen: cannot start thread %u\n", t);
				return 1;
			}
	} else
		for (unsigned i = 0; i < o.conns; i++)
			if (pthread_create(&workers[i].thread, NULL, worker_run, &workers[i]) != 0) {
				fprintf(stderr, "loadgen: cannot start thread %u\n", i);
				return 1;
			}

	t0 = now_ns();
	if (o.max_requests == 0) {
		sleep_s(o.warmup_s);
		if (atomic_load(&phase) != PHASE_STOP)
			atomic_store(&phase, PHASE_MEASURE);
		t0 = now_ns();
		sleep_s(o.duration_s);
		t1 = now_ns();
		if (atomic_load(&phase) != PHASE_STOP)
			atomic_store(&phase, PHASE_STOP);
	}
	if (o.threads > 0) {
		for (unsigned t = 0; t < o.threads; t++) {
			pthread_join(pollers[t].thread, NULL);
			if (pollers[t].failure) {
				fprintf(stderr, "loadgen: thread %u: %s\n", t, pollers[t].failure);
				return 1;
			}
		}
	} else
		for (unsigned i = 0; i < o.conns; i++)
			pthread_join(workers[i].thread, NULL);
	if (o.max_requests > 0)
		t1 = now_ns();

	for (unsigned i = 0; i < o.conns; i++) {
		if (workers[i].failure) {
			fprintf(stderr, "loadgen: connection %u: %s\n", i, workers[i].failure);
			return 1;
		}
		ok += workers[i].ok;
		errors += workers[i].errors;
		total += workers[i].received;
		n_samples += workers[i].n_samples;
	}
	count = ok + errors;
	all = malloc((n_samples ? n_samples : 1) * sizeof *all);
	if (!all)
		return 1;
	n_samples = 0;
	for (unsigned i = 0; i < o.conns; i++) {
		memcpy(all + n_samples, workers[i].samples, workers[i].n_samples * sizeof *all);
		n_samples += workers[i].n_samples;
	}
	qsort(all, n_samples, sizeof *all, cmp_u32);

	if (o.ids_out) {
		FILE *f = fopen(o.ids_out, "we");
		char line[256];

		if (!f) {
			fprintf(stderr, "loadgen: %s: %s\n", o.ids_out, strerror(errno));
			return 1;
		}
		for (unsigned i = 0; i < o.conns; i++) {
			rewind(workers[i].ids);
			while (fgets(line, sizeof line, workers[i].ids))
				fputs(line, f);
			fclose(workers[i].ids);
		}
		if (fclose(f) != 0)
			return 1;
	}

	double secs = (double) (t1 - t0) / 1e9, sum = 0.0;
	for (size_t i = 0; i < n_samples; i++)
		sum += (double) all[i] * 64.0 / 1000.0;
	printf("{\"method\":\"%s\",\"conns\":%u,\"depth\":%u,\"seconds\":%.3f,\"count\":%" PRIu64
	       ",\"total\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"rps\":%.1f,"
	       "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f}\n",
	       o.method, o.conns, o.depth, secs, count, total, ok, errors, secs > 0 ? (double) count / secs : 0.0,
	       percentile_us(all, n_samples, 50), percentile_us(all, n_samples, 90),
	       percentile_us(all, n_samples, 99), percentile_us(all, n_samples, 100),
	       n_samples ? sum / (double) n_samples : 0.0);
	for (unsigned i = 0; i < o.conns; i++) {
		close(workers[i].fd);
		free(workers[i].samples);
		free(workers[i].sent_at);
		free(workers[i].out);
		free(workers[i].in);
	}
	free(workers);
	free(worker_ptrs);
	free(pollers);
	free(all);
	return 0;
}
