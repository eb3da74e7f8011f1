/* echo_server.c — the baselines for the control-socket benchmark: the least a
 * server on an AF_UNIX stream socket can do per request.
 *   echo_server SOCKET                       one epoll loop, one thread, every
 *                                            byte read is sent straight back
 *   echo_server --blocking BYTES SOCKET      a thread per connection in blocking
 *                                            read()/write(): for every line read,
 *                                            one line of BYTES bytes (newline
 *                                            included) back — the machine's real
 *                                            limit for a reply as long as hitld's
 * Benchmark tool only. */
#include <errno.h>
#include <pthread.h>
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

/* ---- --blocking: one thread per connection, read() and write() that wait ---- */

typedef struct BlockingConn {
	int fd;
	const char *reply;
	size_t reply_len;
} BlockingConn;

static bool write_all(int fd, const char *p, size_t n) {
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t) k;
	}
	return true;
}

static void *blocking_conn(void *userdata) {
	BlockingConn *c = userdata;
	char buf[ECHO_BUFFER];

	for (;;) {
		ssize_t n = read(c->fd, buf, sizeof buf);
		bool ok = true;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		/* One reply per line ended in this read (loadgen sends whole lines). */
		for (const char *p = buf; ok && (p = memchr(p, '\n', (size_t) (buf + n - p))); p++)
			ok = write_all(c->fd, c->reply, c->reply_len);
		if (!ok)
			break;
	}
	close(c->fd);
	free(c);
	return NULL;
}

static int run_blocking(int listen_fd, size_t reply_len) {
	char *reply = malloc(reply_len);
	pthread_attr_t attr;

	if (!reply || reply_len < 1)
		return 1;
	/* Any bytes will do for loadgen --echo; a JSON-looking line reads better in strace. */
	memset(reply, 'x', reply_len);
	reply[reply_len - 1] = '\n';
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	while (!stop) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		BlockingConn *c;
		pthread_t t;

		if (fd < 0)
			continue;   /* EINTR from SIGTERM ends the loop */
		c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		*c = (BlockingConn) { .fd = fd, .reply = reply, .reply_len = reply_len };
		if (pthread_create(&t, &attr, blocking_conn, c) != 0) {
			close(fd);
			free(c);
		}
	}
	return 0;
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
	const char *path = argc == 2 ? argv[1] : argc == 4 ? argv[3] : NULL;
	size_t reply_len = 0;

	if (argc == 4 && strcmp(argv[1], "--blocking") == 0)
		reply_len = strtoul(argv[2], NULL, 10);
	if (!path || (argc == 4 && (reply_len < 1 || reply_len > ECHO_BACKLOG_MAX)) || strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "usage: echo_server [--blocking REPLY_BYTES] SOCKET_PATH\n");
		return 2;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	signal(SIGPIPE, SIG_IGN);

	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (reply_len ? 0 : SOCK_NONBLOCK), 0);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (listen_fd < 0 || ep < 0)
		return 1;
	unlink(path);
	if (bind(listen_fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(listen_fd, 512) < 0) {
		perror("echo_server: bind/listen");
		return 1;
	}
	if (reply_len) {
		int k = run_blocking(listen_fd, reply_len);

		unlink(path);
		return k;
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
	unlink(path);
	return 0;
}
