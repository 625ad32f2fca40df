/* SPDX-License-Identifier: MIT */
/*
 * epoll_echo.c - benchmark peer: a hand-written epoll echo server (RFC 862).
 *
 *	epoll_echo [-b ADDR] -p PORT
 *
 * The server a competent engineer writes without a framework: one thread,
 * one edge-triggered epoll instance, one shared 64 KiB read buffer. Bytes
 * are read until EAGAIN (or a short read) and written straight back. When
 * the peer does not take them all, the unsent tail is copied into a heap
 * buffer of that connection and the connection is not read again until
 * EPOLLOUT has drained it, so memory is bounded by one read per connection.
 * After the client's FIN everything received goes back, then we close.
 *
 * Prints "listen echo tcp ADDR:PORT epoll" once listening. SIGINT or
 * SIGTERM (through a signalfd) closes everything and exits 0; an error
 * exits 1, bad usage 2.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define PEER_PROG "epoll_echo"
#include "peer.h"

#define BUF_SIZE   65536
#define MAX_EVENTS 256

struct conn {
	int fd;
	bool rdhup; /* the peer's FIN is in: a short read is not the end */
	bool eof;   /* read returned 0 */
	char *tail; /* bytes the peer has not taken yet, or NULL */
	size_t tail_off, tail_len;
	LIST_ENTRY(conn) link;
};

struct server {
	int epfd, lfd, sfd;
	LIST_HEAD(, conn) conns;
	char buf[BUF_SIZE];
};

static int epoll_add(int epfd, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void conn_close(struct conn *c)
{
	LIST_REMOVE(c, link);
	close(c->fd); /* also leaves the epoll set */
	free(c->tail);
	free(c);
}

/*
 * Sends what the peer will take and keeps the rest in c->tail. Returns 0
 * or -errno. Only called with no tail pending, so bytes never reorder.
 */
static int conn_send(struct conn *c, const char *data, size_t len)
{
	ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		n = 0;
	}
	if ((size_t)n == len)
		return 0;
	c->tail_len = len - (size_t)n;
	c->tail_off = 0;
	c->tail = malloc(c->tail_len);
	if (!c->tail)
		return -ENOMEM;
	memcpy(c->tail, data + n, c->tail_len);
	return 0;
}

/* EPOLLOUT: sends more of the tail; frees it once the peer took it all. */
static int conn_flush(struct conn *c)
{
	while (c->tail_off < c->tail_len) {
		ssize_t n = send(c->fd, c->tail + c->tail_off,
				 c->tail_len - c->tail_off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		c->tail_off += (size_t)n;
	}
	free(c->tail);
	c->tail = NULL;
	return 0;
}

/*
 * Reads and echoes until the socket is drained, the peer's window is full
 * (a tail is pending) or EOF. With EPOLLET a short read means drained: data
 * arriving later raises a new edge. The FIN does not, if it came in with
 * the last data, so once EPOLLRDHUP was seen we read on until EOF.
 */
static int conn_read(struct server *s, struct conn *c)
{
	while (!c->tail && !c->eof) {
		ssize_t n = recv(c->fd, s->buf, sizeof(s->buf), 0);
		int err;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		if (n == 0) {
			c->eof = true;
			break;
		}
		err = conn_send(c, s->buf, (size_t)n);
		if (err < 0)
			return err;
		if ((size_t)n < sizeof(s->buf) && !c->rdhup)
			break;
	}
	return 0;
}

static void conn_event(struct server *s, struct conn *c, uint32_t ev)
{
	bool readable = ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP);
	int err = 0;

	if (ev & EPOLLERR) {
		conn_close(c); /* reset: nothing more can be delivered */
		return;
	}
	if (ev & EPOLLRDHUP)
		c->rdhup = true;
	if (c->tail && (ev & EPOLLOUT)) {
		err = conn_flush(c);
		/* Input that came while we were not reading raised no edge. */
		readable = true;
	}
	if (!err && readable)
		err = conn_read(s, c);
	if (err < 0 || (c->eof && !c->tail))
		conn_close(c);
}

/* Accepts until EAGAIN: the listener is edge-triggered too. */
static void accept_all(struct server *s)
{
	for (;;) {
		int fd =
		    accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;
		int err;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			/*
			 * EMFILE and ENFILE leave the rest in the backlog
			 * until the next connection raises a new edge:
			 * a stall, but never a busy loop.
			 */
			if (errno != EAGAIN)
				fprintf(stderr, "%s: accept4: %s\n", PEER_PROG,
					strerror(errno));
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		err = epoll_add(s->epfd, fd,
				EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, c);
		if (err < 0) {
			fprintf(stderr, "%s: epoll_ctl: %s\n", PEER_PROG,
				strerror(-err));
			close(fd);
			free(c);
			continue;
		}
		LIST_INSERT_HEAD(&s->conns, c, link);
	}
}

/* Returns 0 after SIGINT/SIGTERM, -errno if epoll_wait fails. */
static int run(struct server *s)
{
	struct epoll_event evs[MAX_EVENTS];

	for (;;) {
		int n = epoll_wait(s->epfd, evs, MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &s->sfd)
				return 0;
			if (p == &s->lfd)
				accept_all(s);
			else
				conn_event(s, p, evs[i].events);
		}
	}
}

static void server_fini(struct server *s)
{
	while (!LIST_EMPTY(&s->conns))
		conn_close(LIST_FIRST(&s->conns));
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->sfd >= 0)
		close(s->sfd);
	if (s->epfd >= 0)
		close(s->epfd);
	free(s);
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	char a[PEER_ADDRSTR];
	struct server *s;
	socklen_t len;
	int err;

	if (peer_parse_args(argc, argv, &ss, &len) < 0)
		return PEER_EXIT_USAGE;
	signal(SIGPIPE, SIG_IGN);
	peer_raise_nofile();
	s = malloc(sizeof(*s));
	if (!s) {
		fprintf(stderr, "%s: malloc: %s\n", PEER_PROG,
			strerror(ENOMEM));
		return 1;
	}
	s->lfd = s->sfd = -1;
	LIST_INIT(&s->conns);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		fprintf(stderr, "%s: epoll_create1: %s\n", PEER_PROG,
			strerror(errno));
		goto out_fini;
	}
	s->sfd = peer_signalfd();
	err = s->sfd;
	if (err >= 0)
		err = epoll_add(s->epfd, s->sfd, EPOLLIN, &s->sfd);
	if (err < 0) {
		fprintf(stderr, "%s: signalfd: %s\n", PEER_PROG,
			strerror(-err));
		goto out_fini;
	}
	s->lfd = peer_socket(SOCK_STREAM, &ss, len);
	if (s->lfd < 0)
		goto out_fini;
	err = epoll_add(s->epfd, s->lfd, EPOLLIN | EPOLLET, &s->lfd);
	if (err < 0) {
		peer_sock_error("epoll_ctl", &ss, -err);
		goto out_fini;
	}
	printf("listen echo tcp %s epoll\n", peer_addr_str(&ss, a, sizeof(a)));
	fflush(stdout);
	err = run(s);
	if (err < 0) {
		fprintf(stderr, "%s: epoll_wait: %s\n", PEER_PROG,
			strerror(-err));
		goto out_fini;
	}
	server_fini(s);
	return 0;

out_fini:
	server_fini(s);
	return 1;
}
