/* webhook.h — the HTTP receiver HITL.sh posts its callbacks to: a
 * libmicrohttpd daemon without threads of its own, driven by sd-event (its
 * epoll descriptor an io source, its timeout a time source, as
 * systemd-journal-remote does), never a hand-written HTTP parser.
 * Owns the listening socket handed to it and its connections. Promises,
 * whatever a peer sends: at most max_connections connections (more wait in
 * the listen backlog, and past it the kernel refuses them), each closed
 * after timeout_s without progress; request
 * headers within WEBHOOK_HEADER_MEMORY; only POST is read (405 otherwise); a
 * body over CALLBACK_BODY_MAX is answered 413 and never kept (a declared
 * length unread; a chunked body is dropped as it comes, and past four times
 * the bound the connection is closed without an answer); a complete body
 * goes to the handler, whose HTTP status is the answer. It counts what it
 * answered (2xx received, anything else rejected) and logs a rejection once
 * per source address and minute, ten a minute from all sources at most
 * (logrl.h). What a callback means is the handler's business
 * (daemon/inbox.h). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "timeutil.h"

#define WEBHOOK_HEADER_MEMORY (16U * 1024U)

typedef struct WebhookServer WebhookServer;

/* A complete POST: path (as received, without the query), its body; returns
 * the HTTP status to answer and sets *ret_reason (static text) when it is not
 * 2xx. Called from the event loop, one at a time. */
typedef unsigned (*webhook_handler_t)(const char *path, const char *body, size_t size, const char **ret_reason,
                                      void *userdata);

typedef struct WebhookStats {
	uint64_t received;        /* answered 2xx */
	uint64_t rejected;        /* answered anything else */
	usec_t last_at;           /* realtime of the last 2xx, 0: none */
	usec_t last_rejected_at;  /* realtime of the last rejection, 0: none */
} WebhookStats;

/* Numeric "a.b.c.d:port" or "[v6]:port", port 1..65535 (no names: a
 * listener must not depend on DNS). ret_addr/ret_len may be NULL (check
 * only). -EINVAL if s is anything else. */
int webhook_parse_listen(const char *s, struct sockaddr_storage *ret_addr, socklen_t *ret_len);
/* Binds and listens on s (SO_REUSEADDR, close-on-exec, non-blocking). Logs
 * its failure once. */
int webhook_bind(const char *s, int *ret_fd);

/* The local address of a listening socket, "a.b.c.d:port" or "[v6]:port". */
int webhook_socket_address(int fd, char *buf, size_t size);

/* Serves the listening socket fd (taken: closed by webhook_server_free()). */
int webhook_server_new(sd_event *e, int fd, unsigned max_connections, unsigned timeout_s,
                       webhook_handler_t handler, void *userdata, WebhookServer **ret);
WebhookServer *webhook_server_free(WebhookServer *w);
static inline void webhook_server_freep(WebhookServer **w) {
	if (*w)
		webhook_server_free(*w);
}
const WebhookStats *webhook_server_stats(const WebhookServer *w);
