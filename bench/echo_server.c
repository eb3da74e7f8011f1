/* echo_server.c — the baseline for the control-socket benchmark: the least a
 * server on an AF_UNIX stream socket can do per request (one epoll loop, one
 * thread, every byte read is sent straight back). Benchmark tool only. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"

#define ECHO_CONNS_MAX 4096
#define ECHO_BUFFER (64 * 1024)
#define ECHO_BACKLOG_MAX (4 * 1024 * 1024)   /* unsent bytes past which a client is dropped */

typedef struct Conn {
	int fd;
	char *out;        /* bytes read but not yet written back */
	size_t out_len, out_alloc;
} Conn;

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
	stop = 1;
}

static void conn_close(int ep, Conn *c) {
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	free(c);
}

/* Writes back what is pending; returns -errno when the connection is dead. */
static int conn_flush(int ep, Conn *c) {
	struct epoll_event ev = { .data.ptr = c };

	while (c->out_len > 0) {
		ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			break;
		}
		memmove(c->out, c->out + n, c->out_len - (size_t) n);
		c->out_len -= (size_t) n;
	}
	ev.events = c->out_len > 0 ? EPOLLIN | EPOLLOUT : EPOLLIN;
	return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0 ? -errno : 0;
}

static int conn_read(int ep, Conn *c) {
	char buf[ECHO_BUFFER];

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		if (c->out_len + (size_t) n > ECHO_BACKLOG_MAX)
			return -ENOBUFS;
		if (c->out_len + (size_t) n > c->out_alloc) {
			size_t alloc = c->out_len + (size_t) n + ECHO_BUFFER;
			char *p = realloc(c->out, alloc);

			if (!p)
				return -ENOMEM;
			c->out = p;
			c->out_alloc = alloc;
		}
		memcpy(c->out + c->out_len, buf, (size_t) n);
		c->out_len += (size_t) n;
		if ((size_t) n < sizeof buf)
			break;
	}
	return conn_flush(ep, c);
}

int main(int argc, char **argv) {
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN }, events[64];
	_cleanup_(closep) int listen_fd = -EBADF, ep = -EBADF;
	struct sigaction act = { .sa_handler = on_signal };

	if (argc != 2 || strlen(argv[1]) >= sizeof sa.sun_path) {
		fprintf(stderr, "usage: echo_server SOCKET_PATH\n");
		return 2;
	}
	memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1);
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	signal(SIGPIPE, SIG_IGN);

	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (listen_fd < 0 || ep < 0)
		return 1;
	unlink(argv[1]);
	if (bind(listen_fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(listen_fd, 512) < 0) {
		perror("echo_server: bind/listen");
		return 1;
	}
	ev.data.ptr = NULL;   /* NULL marks the listening socket */
	if (epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) < 0)
		return 1;

	while (!stop) {
		int n = epoll_wait(ep, events, (int) ELEMENTSOF(events), 200);

		for (int i = 0; i < n; i++) {
			Conn *c = events[i].data.ptr;

			if (!c) {
				int fd;

				while ((fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
					struct epoll_event cev = { .events = EPOLLIN };

					c = calloc(1, sizeof *c);
					if (!c) {
						close(fd);
						continue;
					}
					c->fd = fd;
					cev.data.ptr = c;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0)
						conn_close(ep, c);
				}
				continue;
			}
			if (events[i].events & EPOLLOUT && conn_flush(ep, c) < 0) {
				conn_close(ep, c);
				continue;
			}
			if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR) && conn_read(ep, c) < 0)
				conn_close(ep, c);
		}
	}
	unlink(argv[1]);
	return 0;
}
