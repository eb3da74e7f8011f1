/* webhook.c — see webhook.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <microhttpd.h>

#include "callback.h"
#include "cleanup.h"
#include "log.h"
#include "logrl.h"
#include "msgid.h"
#include "webhook.h"

/* Rejections are logged once per source address and minute, and ten a minute from all
 * sources together (a sender with many addresses), hitld(8) LIMITS, Journal. */
#define REJECT_LOG_INTERVAL (60 * USEC_PER_SEC)
#define REJECT_LOG_BURST_ALL 10U
#define LISTEN_BACKLOG 128
#define WEBHOOK_DISCARD_MAX (4U * CALLBACK_BODY_MAX)

struct WebhookServer {
	struct MHD_Daemon *mhd;
	sd_event_source *io, *timer;
	int fd;
	webhook_handler_t handler;
	void *userdata;
	WebhookStats stats;
	LogRl reject_log;
	struct MHD_Response *responses[6];
};

/* One request's body as it arrives. */
typedef struct Upload {
	char *body;
	size_t size;
	bool too_big;
	size_t discarded;          /* bytes dropped after it grew too big */
} Upload;

typedef enum Answer {
	ANSWER_OK,
	ANSWER_BAD_REQUEST,
	ANSWER_NOT_FOUND,
	ANSWER_METHOD,
	ANSWER_TOO_BIG,
	ANSWER_UNAVAILABLE,
} Answer;

static const struct {
	unsigned status;
	const char *text;
} answers[] = {
	[ANSWER_OK] = { MHD_HTTP_OK, "ok\n" },
	[ANSWER_BAD_REQUEST] = { MHD_HTTP_BAD_REQUEST, "bad request\n" },
	[ANSWER_NOT_FOUND] = { MHD_HTTP_NOT_FOUND, "not found\n" },
	[ANSWER_METHOD] = { MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n" },
	[ANSWER_TOO_BIG] = { MHD_HTTP_CONTENT_TOO_LARGE, "body too large\n" },
	[ANSWER_UNAVAILABLE] = { MHD_HTTP_SERVICE_UNAVAILABLE, "try again later\n" },
};

static Answer answer_of(unsigned status) {
	for (size_t i = 0; i < ELEMENTSOF(answers); i++)
		if (answers[i].status == status)
			return (Answer) i;
	return status >= 500 ? ANSWER_UNAVAILABLE : ANSWER_BAD_REQUEST;
}

int webhook_parse_listen(const char *s, struct sockaddr_storage *ret_addr, socklen_t *ret_len) {
	struct sockaddr_storage ss = {};
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *h, *port_s;
	size_t hlen;
	char *end;
	unsigned long port;
	socklen_t len;

	if (!s)
		return -EINVAL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		h = s + 1;
		hlen = (size_t) (close - h);
		port_s = close + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t) (colon - s)))
			return -EINVAL;
		h = s;
		hlen = (size_t) (colon - s);
		port_s = colon + 1;
	}
	if (hlen == 0 || hlen >= sizeof host || port_s[0] < '1' || port_s[0] > '9')
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	errno = 0;
	port = strtoul(port_s, &end, 10);
	if (errno != 0 || *end != '\0' || port < 1 || port > 65535)
		return -EINVAL;

	if (s[0] == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *) &ss;

		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -EINVAL;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t) port);
		len = sizeof *a;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *) &ss;

		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -EINVAL;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t) port);
		len = sizeof *a;
	}
	if (ret_addr)
		*ret_addr = ss;
	if (ret_len)
		*ret_len = len;
	return 0;
}

int webhook_bind(const char *s, int *ret_fd) {
	_cleanup_(closep) int fd = -EBADF;
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;

	if (webhook_parse_listen(s, &ss, &len) < 0)
		return log_error_errno(EINVAL, "webhook.listen \"%s\" is not a numeric address and port.", s);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_error_errno(errno, "Failed to make the webhook socket for %s: %m", s);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		return log_error_errno(errno, "Failed to set SO_REUSEADDR on the webhook socket: %m");
	if (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
		return log_error_errno(errno, "Failed to set IPV6_V6ONLY on the webhook socket: %m");
	if (bind(fd, (struct sockaddr *) &ss, len) < 0) {
		if (errno == EPERM)
			/* The units' SocketBindDeny=any refuses it with EPERM. */
			return log_error_errno(errno, "Failed to bind the webhook listener to %s: %m (under systemd, use "
			                              "hitld-webhook.socket, or allow the port with SocketBindAllow= in a "
			                              "drop-in for hitld.service)", s);
		return log_error_errno(errno, "Failed to bind the webhook listener to %s: %m", s);
	}
	if (listen(fd, LISTEN_BACKLOG) < 0)
		return log_error_errno(errno, "Failed to listen on %s: %m", s);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int webhook_socket_address(int fd, char *buf, size_t size) {
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char host[INET6_ADDRSTRLEN];

	if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *) &ss;

		if (!inet_ntop(AF_INET, &a->sin_addr, host, sizeof host))
			return -errno;
		snprintf(buf, size, "%s:%u", host, (unsigned) ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *) &ss;

		if (!inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host))
			return -errno;
		snprintf(buf, size, "[%s]:%u", host, (unsigned) ntohs(a->sin6_port));
	} else
		return -EAFNOSUPPORT;
	return 0;
}

/* ---- rejections, logged once per source and minute ---- */

static void peer_address(struct MHD_Connection *c, char buf[static INET6_ADDRSTRLEN]) {
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	strcpy(buf, "?");
	if (!sa)
		return;
	if (sa->sa_family == AF_INET)
		(void) inet_ntop(AF_INET, &((const struct sockaddr_in *) (const void *) sa)->sin_addr, buf,
		                 INET6_ADDRSTRLEN);
	else if (sa->sa_family == AF_INET6)
		(void) inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) (const void *) sa)->sin6_addr, buf,
		                 INET6_ADDRSTRLEN);
}

static void note_rejection(WebhookServer *w, struct MHD_Connection *c, unsigned status, const char *reason) {
	char addr[INET6_ADDRSTRLEN], code[8], more[LOGRL_SUFFIX_MAX];
	unsigned suppressed;

	w->stats.rejected++;
	w->stats.last_rejected_at = now_realtime();
	peer_address(c, addr);
	if (!logrl_below(&w->reject_log, logrl_key_string(addr), now_monotonic(), &suppressed))
		return;
	snprintf(code, sizeof code, "%u", status);
	log_event(LOG_WARNING, MID_CALLBACK_REJECTED,
	          LOG_FIELDS({ "HITL_PEER", addr }, { "HITL_HTTP_STATUS", code }),
	          "Refused a callback from %s with %u: %s%s.", addr, status, reason, logrl_suffix(suppressed, more));
}

/* ---- the access handler ---- */

static enum MHD_Result respond(WebhookServer *w, struct MHD_Connection *c, Answer a, const char *reason) {
	if (a == ANSWER_OK) {
		w->stats.received++;
		w->stats.last_at = now_realtime();
	} else
		note_rejection(w, c, answers[a].status, reason);
	return MHD_queue_response(c, answers[a].status, w->responses[a]);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls) {
	WebhookServer *w = cls;
	Upload *u = *con_cls;
	const char *reason = NULL;
	unsigned status;

	if (!u) {
		const char *cl;

		if (!streq(method, MHD_HTTP_METHOD_POST))
			return respond(w, c, ANSWER_METHOD, "not a POST");
		/* A declared length over the bound is refused before a byte of it is read. */
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && (strlen(cl) > 9 || strtoul(cl, NULL, 10) > CALLBACK_BODY_MAX))
			return respond(w, c, ANSWER_TOO_BIG, "body over 64 KiB");
		u = calloc(1, sizeof *u);
		if (!u)
			return MHD_NO;
		*con_cls = u;
		return MHD_YES;
	}

	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (!u->too_big && n > CALLBACK_BODY_MAX - u->size) {
			/* A body without a length grew past the bound: drop what came. */
			u->too_big = true;
			free(u->body);
			u->body = NULL;
			u->size = 0;
		}
		if (u->too_big) {
			/* libmicrohttpd answers only once the body is read: a little
			 * more is read and dropped for a polite 413, then the
			 * connection is closed without one. */
			u->discarded += n;
			if (u->discarded > WEBHOOK_DISCARD_MAX) {
				note_rejection(w, c, 413, "body over 64 KiB (connection closed)");
				return MHD_NO;
			}
			return MHD_YES;
		}
		char *b = realloc(u->body, u->size + n + 1);
		if (!b)
			return MHD_NO;
		memcpy(b + u->size, upload_data, n);
		u->body = b;
		u->size += n;
		u->body[u->size] = '\0';
		return MHD_YES;
	}

	if (u->too_big)
		return respond(w, c, ANSWER_TOO_BIG, "body over 64 KiB");
	status = w->handler(url, u->body ? u->body : "", u->size, &reason, w->userdata);
	return respond(w, c, answer_of(status), reason ? reason : "refused");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
	Upload *u = *con_cls;

	if (u) {
		free(u->body);
		free(u);
		*con_cls = NULL;
	}
}

_printf_(2, 0)
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
	char buf[256];

	/* libmicrohttpd's own words (a closed connection, a refused accept):
	 * debug only, a hostile peer must not fill the journal. */
	vsnprintf(buf, sizeof buf, fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("webhook: %s", buf);
}

/* ---- the event loop ---- */

static void arm(WebhookServer *w) {
	MHD_UNSIGNED_LONG_LONG ms;

	if (MHD_get_timeout(w->mhd, &ms) == MHD_YES) {
		if (ms > UINT64_MAX / USEC_PER_MSEC)
			ms = UINT64_MAX / USEC_PER_MSEC;
		(void) sd_event_source_set_time_relative(w->timer, (uint64_t) ms * USEC_PER_MSEC);
		(void) sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
	} else
		(void) sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
}

static unsigned connections(WebhookServer *w) {
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

	return info ? info->num_connections : 0;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
	WebhookServer *w = userdata;
	unsigned before = connections(w);

	if (MHD_run(w->mhd) != MHD_YES)
		log_debug("webhook: MHD_run() failed");
	/* At max_connections libmicrohttpd takes the listening socket out of its
	 * epoll set, and puts it back only at the start of a run after one
	 * closed: run once more, or with nothing else to wake it the listener
	 * would stay deaf. */
	if (connections(w) < before && MHD_run(w->mhd) != MHD_YES)
		log_debug("webhook: MHD_run() failed");
	arm(w);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
	return on_io(NULL, -1, 0, userdata);
}

int webhook_server_new(sd_event *e, int fd, unsigned max_connections, unsigned timeout_s,
                       webhook_handler_t handler, void *userdata, WebhookServer **ret) {
	_cleanup_(webhook_server_freep) WebhookServer *w = NULL;
	const union MHD_DaemonInfo *info;
	int k;

	w = calloc(1, sizeof *w);
	if (!w) {
		close(fd);
		return -ENOMEM;
	}
	w->fd = fd;
	w->reject_log = (LogRl) LOGRL(REJECT_LOG_INTERVAL, 1, REJECT_LOG_BURST_ALL);
	w->handler = handler;
	w->userdata = userdata;
	for (size_t i = 0; i < ELEMENTSOF(answers); i++) {
		w->responses[i] = MHD_create_response_from_buffer(strlen(answers[i].text), (void *) answers[i].text,
		                                                  MHD_RESPMEM_PERSISTENT);
		if (!w->responses[i] ||
		    MHD_add_response_header(w->responses[i], MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain") != MHD_YES)
			return -ENOMEM;
	}

	/* No thread of its own: sd-event runs it (MHD_USE_EPOLL, its epoll fd
	 * polled below). The listening socket is ours (bound or inherited). */
	w->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_access, w,
	                          MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, w,
	                          MHD_OPTION_LISTEN_SOCKET, fd,
	                          MHD_OPTION_CONNECTION_LIMIT, max_connections,
	                          MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
	                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) WEBHOOK_HEADER_MEMORY,
	                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, w,
	                          MHD_OPTION_END);
	if (!w->mhd)
		return log_error_errno(EINVAL, "Failed to start the webhook's HTTP server (libmicrohttpd).");
	/* MHD_stop_daemon() closes the listening socket from here on. */
	w->fd = -EBADF;
	info = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info)
		return log_error_errno(EINVAL, "libmicrohttpd gave no epoll descriptor.");

	k = sd_event_add_io(e, &w->io, info->epoll_fd, EPOLLIN, on_io, w);
	if (k < 0)
		return log_error_errno(k, "Failed to watch the webhook's descriptor: %m");
	(void) sd_event_source_set_description(w->io, "webhook-io");
	k = sd_event_add_time_relative(e, &w->timer, CLOCK_MONOTONIC, 0, 0, on_timer, w);
	if (k < 0)
		return log_error_errno(k, "Failed to add the webhook's timer: %m");
	(void) sd_event_source_set_description(w->timer, "webhook-timer");
	arm(w);
	*ret = TAKE_PTR(w);
	return 0;
}

WebhookServer *webhook_server_free(WebhookServer *w) {
	if (!w)
		return NULL;
	sd_event_source_disable_unref(w->io);
	sd_event_source_disable_unref(w->timer);
	if (w->mhd)
		MHD_stop_daemon(w->mhd);
	for (size_t i = 0; i < ELEMENTSOF(w->responses); i++)
		if (w->responses[i])
			MHD_destroy_response(w->responses[i]);
	if (w->fd >= 0)
		close(w->fd);
	free(w);
	return NULL;
}

const WebhookStats *webhook_server_stats(const WebhookServer *w) {
	return &w->stats;
}
