/* curl_glue.c — see curl_glue.h. The shape follows systemd's
 * src/import/curl-util.c: curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION) and when to wake it (CURLMOPT_TIMERFUNCTION); we
 * hand each wakeup back with curl_multi_socket_action() and then collect
 * finished transfers with curl_multi_info_read(). */
#include <dlfcn.h>
#include <malloc.h>
#include <sys/epoll.h>

#include "cleanup.h"
#include "curl_glue.h"
#include "log.h"
#include "timeutil.h"

/* One socket curl asked us to watch; curl keeps the pointer (curl_multi_assign). */
typedef struct GlueSocket {
	curl_socket_t fd;
	sd_event_source *source;
	struct GlueSocket *prev, *next;
} GlueSocket;

/* One running transfer. */
typedef struct GlueEntry {
	CURL *easy;
	curl_glue_done_t done;
	void *userdata;
	struct GlueEntry *prev, *next;
} GlueEntry;

struct CurlGlue {
	sd_event *event;
	CURLM *multi;
	sd_event_source *timer;
	GlueSocket *sockets;
	GlueEntry *entries;
	unsigned n_entries;
	bool curl_initialised;
};

#define LIST_PREPEND(head, item)                 \
	do {                                     \
		(item)->prev = NULL;             \
		(item)->next = (head);           \
		if (head)                        \
			(head)->prev = (item);   \
		(head) = (item);                 \
	} while (0)

#define LIST_REMOVE(head, item)                          \
	do {                                             \
		if ((item)->next)                        \
			(item)->next->prev = (item)->prev; \
		if ((item)->prev)                        \
			(item)->prev->next = (item)->next; \
		else                                     \
			(head) = (item)->next;           \
		(item)->prev = (item)->next = NULL;      \
	} while (0)

/* libcurl's memory goes through these: every block is wiped before it is freed
 * (or moved by realloc), so the request buffers that held the Authorization
 * line keep no copy of the key once a call is over. A few hundred calls an
 * hour make the cost of wiping nothing. */
static void wipe_free(void *p) {
	if (!p)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

static void *wipe_realloc(void *p, size_t size) {
	size_t old;
	void *q;

	if (!p)
		return malloc(size);
	if (size == 0) {
		wipe_free(p);
		return NULL;
	}
	old = malloc_usable_size(p);
	if (size <= old)
		return p; /* shrinking in place leaves the tail to the final wipe_free() */
	q = malloc(size);
	if (!q)
		return NULL;
	memcpy(q, p, old);
	wipe_free(p);
	return q;
}

static char *wipe_strdup(const char *s) {
	return strdup(s);
}

/* OpenSSL's allocator hooks (file and line arguments). */
static void *ossl_malloc(size_t size, const char *file, int line) {
	return malloc(size);
}

static void *ossl_realloc(void *p, size_t size, const char *file, int line) {
	return wipe_realloc(p, size);
}

static void ossl_free(void *p, const char *file, int line) {
	wipe_free(p);
}

typedef int (*crypto_set_mem_functions_t)(void *(*)(size_t, const char *, int),
                                          void *(*)(void *, size_t, const char *, int),
                                          void (*)(void *, const char *, int));

/* OpenSSL keeps TLS records (the encrypted request's plaintext among them) in
 * buffers of its own. When libcurl is built on OpenSSL, libcrypto is loaded
 * with it: hook its allocator too, which it allows only before its first
 * allocation, i.e. before curl_global_init(). Looked up at run time, so that
 * hitld does not link libcrypto itself and a libcurl on GnuTLS still works. */
static void glue_hook_openssl(void) {
	static bool tried;
	crypto_set_mem_functions_t set;

	if (tried)
		return;
	tried = true;
	set = (crypto_set_mem_functions_t) dlsym(RTLD_DEFAULT, "CRYPTO_set_mem_functions");
	if (!set)
		log_debug("libcurl does not use OpenSSL: TLS buffers are not wiped on free.");
	else if (set(ossl_malloc, ossl_realloc, ossl_free) != 1)
		log_warning("OpenSSL was used before hitld could hook its allocator: TLS buffers are not wiped on free.");
	else
		log_debug("libcurl uses OpenSSL: its buffers are wiped on free too.");
}

static GlueEntry *glue_find(CurlGlue *g, CURL *easy) {
	for (GlueEntry *e = g->entries; e; e = e->next)
		if (e->easy == easy)
			return e;
	return NULL;
}

static void glue_socket_free(CurlGlue *g, GlueSocket *s) {
	LIST_REMOVE(g->sockets, s);
	sd_event_source_disable_unref(s->source);
	free(s);
}

static void glue_check_finished(CurlGlue *g) {
	CURLMsg *msg;
	int queued = 0;

	/* Several transfers can finish on one wakeup; take every message. */
	while ((msg = curl_multi_info_read(g->multi, &queued))) {
		CURL *easy = msg->easy_handle;
		CURLcode result = msg->data.result;
		GlueEntry *e;

		if (msg->msg != CURLMSG_DONE)
			continue;
		e = glue_find(g, easy);
		if (!e) /* not ours: leave it to whoever added it */
			continue;

		/* Out of the multi handle before done(), so that done() may add or
		 * remove other handles and curl_glue_remove(easy) is a no-op. */
		LIST_REMOVE(g->entries, e);
		g->n_entries--;
		(void) curl_multi_remove_handle(g->multi, easy);
		if (e->done)
			e->done(g, easy, result, e->userdata);
		curl_easy_cleanup(easy);
		free(e);
	}
}

static int glue_on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
	CurlGlue *g = userdata;
	int action = 0, running = 0;

	if (revents & (EPOLLIN | EPOLLHUP))
		action |= CURL_CSELECT_IN;
	if (revents & EPOLLOUT)
		action |= CURL_CSELECT_OUT;
	if (revents & EPOLLERR)
		action |= CURL_CSELECT_ERR;

	if (curl_multi_socket_action(g->multi, fd, action, &running) != CURLM_OK)
		log_debug("curl_multi_socket_action() failed on fd %d.", fd);

	glue_check_finished(g);
	return 0;
}

static int glue_socket_callback(CURL *easy, curl_socket_t fd, int what, void *userdata,
                                void *socketp) {
	CurlGlue *g = userdata;
	GlueSocket *s = socketp;
	uint32_t events = 0;
	int r;

	if (what == CURL_POLL_REMOVE) {
		/* curl forgets socketp itself after this call. */
		if (s)
			glue_socket_free(g, s);
		return 0;
	}

	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= EPOLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= EPOLLOUT;

	if (s) {
		if (sd_event_source_set_io_events(s->source, events) < 0 ||
		    sd_event_source_set_enabled(s->source, SD_EVENT_ON) < 0)
			return -1;
		return 0;
	}

	s = calloc(1, sizeof(GlueSocket));
	if (!s)
		return -1;
	s->fd = fd;
	r = sd_event_add_io(g->event, &s->source, fd, events, glue_on_io, g);
	if (r < 0) {
		log_debug_errno(r, "Failed to watch curl socket %d: %m", fd);
		free(s);
		return -1;
	}
	(void) sd_event_source_set_description(s->source, "curl-io");
	if (curl_multi_assign(g->multi, fd, s) != CURLM_OK) {
		sd_event_source_unref(s->source);
		free(s);
		return -1;
	}
	LIST_PREPEND(g->sockets, s);
	return 0;
}

static int glue_on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
	CurlGlue *g = userdata;
	int running = 0;

	if (curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &running) != CURLM_OK)
		log_debug("curl_multi_socket_action() failed on timeout.");

	glue_check_finished(g);
	return 0;
}

static int glue_timer_callback(CURLM *multi, long timeout_ms, void *userdata) {
	CurlGlue *g = userdata;
	usec_t when;

	if (timeout_ms < 0) {
		if (g->timer && sd_event_source_set_enabled(g->timer, SD_EVENT_OFF) < 0)
			return -1;
		return 0;
	}

	/* Round up to the next millisecond so curl never wakes up early. */
	when = usec_add(now_monotonic(),
	                (usec_t) timeout_ms * USEC_PER_MSEC + USEC_PER_MSEC - 1);
	if (g->timer) {
		if (sd_event_source_set_time(g->timer, when) < 0 ||
		    sd_event_source_set_enabled(g->timer, SD_EVENT_ONESHOT) < 0)
			return -1;
		return 0;
	}
	/* Accuracy 1 ms: sd-event's default (250 ms) would blur curl's timeouts. */
	if (sd_event_add_time(g->event, &g->timer, CLOCK_MONOTONIC, when, USEC_PER_MSEC,
	                      glue_on_timer, g) < 0)
		return -1;
	(void) sd_event_source_set_description(g->timer, "curl-timer");
	return 0;
}

CurlGlue *curl_glue_free(CurlGlue *g) {
	GlueEntry *e;

	if (!g)
		return NULL;

	while ((e = g->entries)) {
		LIST_REMOVE(g->entries, e);
		if (g->multi)
			(void) curl_multi_remove_handle(g->multi, e->easy);
		curl_easy_cleanup(e->easy);
		free(e);
	}
	g->n_entries = 0;

	/* Closing the connection cache may still call glue_socket_callback(). */
	if (g->multi)
		curl_multi_cleanup(g->multi);
	while (g->sockets)
		glue_socket_free(g, g->sockets);

	sd_event_source_disable_unref(g->timer);
	sd_event_unref(g->event);
	if (g->curl_initialised)
		curl_global_cleanup();
	free(g);
	return NULL;
}

int curl_glue_new(sd_event *e, CurlGlue **ret) {
	_cleanup_(curl_glue_freep) CurlGlue *g = NULL;

	if (!e || !ret)
		return -EINVAL;

	g = calloc(1, sizeof(CurlGlue));
	if (!g)
		return -ENOMEM;
	g->event = sd_event_ref(e);

	/* Reference-counted inside libcurl; paired with curl_global_cleanup().
	 * The allocator given the first time stays for the process's life. */
	glue_hook_openssl();
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, wipe_free, wipe_realloc, wipe_strdup,
	                         calloc) != CURLE_OK)
		return -EIO;
	g->curl_initialised = true;

	g->multi = curl_multi_init();
	if (!g->multi)
		return -ENOMEM;

	if (curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, glue_socket_callback) != CURLM_OK ||
	    curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g) != CURLM_OK ||
	    curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, glue_timer_callback) != CURLM_OK ||
	    curl_multi_setopt(g->multi, CURLMOPT_TIMERDATA, g) != CURLM_OK)
		return -EIO;

	*ret = TAKE_PTR(g);
	return 0;
}

int curl_glue_add(CurlGlue *g, CURL *easy, curl_glue_done_t done, void *userdata) {
	GlueEntry *e;

	if (!easy)
		return -EINVAL;
	if (!g) {
		curl_easy_cleanup(easy);
		return -EINVAL;
	}

	e = calloc(1, sizeof(GlueEntry));
	if (!e) {
		curl_easy_cleanup(easy);
		return -ENOMEM;
	}
	*e = (GlueEntry) { .easy = easy, .done = done, .userdata = userdata };

	/* Adding arms curl's timer (timeout 0); the transfer starts from the loop. */
	if (curl_multi_add_handle(g->multi, easy) != CURLM_OK) {
		curl_easy_cleanup(easy);
		free(e);
		return -EIO;
	}
	LIST_PREPEND(g->entries, e);
	g->n_entries++;
	return 0;
}

void curl_glue_remove(CurlGlue *g, CURL *easy) {
	GlueEntry *e;

	if (!g || !easy)
		return;
	e = glue_find(g, easy);
	if (!e)
		return;

	LIST_REMOVE(g->entries, e);
	g->n_entries--;
	(void) curl_multi_remove_handle(g->multi, easy);
	curl_easy_cleanup(easy);
	free(e);
}

unsigned curl_glue_running(const CurlGlue *g) {
	return g ? g->n_entries : 0;
}
