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

#define PROG	    "epoll_echo"
#define EXIT_USAGE  2
#define BACKLOG	    1024 /* evringd's default */
#define BUF_SIZE    65536
#define MAX_EVENTS  256
#define ADDRSTR_MAX (INET6_ADDRSTRLEN + 8)

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

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-b ADDR] -p PORT\n"
		"  -b ADDR  numeric IPv4 or IPv6 address (default 127.0.0.1)\n"
		"  -p PORT  TCP port, 0 for an ephemeral one\n",
		PROG);
}

static int addr_parse(const char *host, long port, struct sockaddr_storage *ss,
		      socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*len = sizeof(*in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

/* "127.0.0.1:7" or "[::1]:7" */
static const char *addr_str(const struct sockaddr_storage *ss, char *buf,
			    size_t n)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, n, "%s:%u", host, ntohs(in->sin_port));
	} else {
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, n, "[%s]:%u", host, ntohs(in6->sin6_port));
	}
	return buf;
}

static int parse_args(int argc, char **argv, struct sockaddr_storage *ss,
		      socklen_t *len)
{
	const char *host = "127.0.0.1", *port_arg = NULL;
	char *end;
	long port;
	int c;

	while ((c = getopt(argc, argv, "b:p:h")) != -1) {
		switch (c) {
		case 'b':
			host = optarg;
			break;
		case 'p':
			port_arg = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc || !port_arg) {
		usage(stderr);
		return -EINVAL;
	}
	errno = 0;
	port = strtol(port_arg, &end, 10);
	if (errno || end == port_arg || *end || port < 0 || port > 65535) {
		fprintf(stderr, "%s: bad port \"%s\"\n", PROG, port_arg);
		return -EINVAL;
	}
	if (addr_parse(host, port, ss, len) < 0) {
		fprintf(stderr,
			"%s: bad address \"%s\" (numeric IPv4 or IPv6)\n", PROG,
			host);
		return -EINVAL;
	}
	return 0;
}

/* A benchmark opens many connections: take every descriptor allowed. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int sock_error(const char *call, const struct sockaddr_storage *ss,
		      int err)
{
	char a[ADDRSTR_MAX];

	fprintf(stderr, "%s: %s %s: %s\n", PROG, call,
		addr_str(ss, a, sizeof(a)), strerror(err));
	return -err;
}

/*
 * Returns the listening socket or -errno (reported). Linux copies
 * TCP_NODELAY from the listener to every socket accept() returns, so one
 * setsockopt here covers all connections.
 */
static int listen_tcp(struct sockaddr_storage *ss, socklen_t len)
{
	int one = 1, fd, err;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return sock_error("socket", ss, errno);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		err = sock_error("setsockopt SO_REUSEADDR", ss, errno);
		goto out_close;
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
		err = sock_error("setsockopt TCP_NODELAY", ss, errno);
		goto out_close;
	}
	if (bind(fd, (struct sockaddr *)ss, len) < 0) {
		err = sock_error("bind", ss, errno);
		goto out_close;
	}
	if (listen(fd, BACKLOG) < 0) {
		err = sock_error("listen", ss, errno);
		goto out_close;
	}
	if (getsockname(fd, (struct sockaddr *)ss, &len) < 0) {
		err = sock_error("getsockname", ss, errno);
		goto out_close;
	}
	return fd;

out_close:
	close(fd);
	return err;
}

/* SIGINT and SIGTERM arrive as reads on a descriptor in the epoll set. */
static int signals_open(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

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
				fprintf(stderr, "%s: accept4: %s\n", PROG,
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
			fprintf(stderr, "%s: epoll_ctl: %s\n", PROG,
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
	char a[ADDRSTR_MAX];
	struct server *s;
	socklen_t len;
	int err;

	if (parse_args(argc, argv, &ss, &len) < 0)
		return EXIT_USAGE;
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	s = malloc(sizeof(*s));
	if (!s) {
		fprintf(stderr, "%s: malloc: %s\n", PROG, strerror(ENOMEM));
		return 1;
	}
	s->lfd = s->sfd = -1;
	LIST_INIT(&s->conns);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		fprintf(stderr, "%s: epoll_create1: %s\n", PROG,
			strerror(errno));
		goto out_fini;
	}
	s->sfd = signals_open();
	err = s->sfd;
	if (err >= 0)
		err = epoll_add(s->epfd, s->sfd, EPOLLIN, &s->sfd);
	if (err < 0) {
		fprintf(stderr, "%s: signalfd: %s\n", PROG, strerror(-err));
		goto out_fini;
	}
	s->lfd = listen_tcp(&ss, len);
	if (s->lfd < 0)
		goto out_fini;
	err = epoll_add(s->epfd, s->lfd, EPOLLIN | EPOLLET, &s->lfd);
	if (err < 0) {
		sock_error("epoll_ctl", &ss, -err);
		goto out_fini;
	}
	printf("listen echo tcp %s epoll\n", addr_str(&ss, a, sizeof(a)));
	fflush(stdout);
	err = run(s);
	if (err < 0) {
		fprintf(stderr, "%s: epoll_wait: %s\n", PROG, strerror(-err));
		goto out_fini;
	}
	server_fini(s);
	return 0;

out_fini:
	server_fini(s);
	return 1;
}
