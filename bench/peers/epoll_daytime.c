/* SPDX-License-Identifier: MIT */
/*
 * epoll_daytime.c - benchmark peer: a hand-written epoll daytime server
 * (RFC 867).
 *
 *	epoll_daytime [-b ADDR] -p PORT
 *
 * One thread, one epoll instance. Each readiness of the listener accepts
 * until EAGAIN; each connection gets one line, sent at once (a fresh
 * socket's send buffer is empty, so it never blocks), and is closed. The
 * connection never enters the epoll set. The line is evringd's default,
 *
 *	Wednesday, November 25, 2026 03:35:50-UTC
 *
 * plus CRLF, formatted again only when the second changes.
 *
 * Prints "listen daytime tcp ADDR:PORT epoll" once listening. SIGINT or
 * SIGTERM (through a signalfd) exits 0; an error exits 1, bad usage 2.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROG	    "epoll_daytime"
#define EXIT_USAGE  2
#define BACKLOG	    1024 /* evringd's default */
#define MAX_EVENTS  64
#define ADDRSTR_MAX (INET6_ADDRSTRLEN + 8)
#define LINE_FMT    "%A, %B %-d, %Y %H:%M:%S-UTC"

struct daytime {
	time_t sec; /* the second line[] was formatted for */
	size_t len;
	char line[128];
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

/* "127.0.0.1:13" or "[::1]:13" */
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
 * TCP_NODELAY from the listener to every socket accept() returns.
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

static int epoll_add(int epfd, int fd, uint32_t events, int tag)
{
	struct epoll_event ev = { .events = events, .data.fd = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* The line for now; time(2) is a vDSO call, strftime(3) is not. */
static void daytime_update(struct daytime *d)
{
	time_t now = time(NULL);
	struct tm tm;
	size_t n;

	if (now == d->sec && d->len)
		return;
	gmtime_r(&now, &tm);
	n = strftime(d->line, sizeof(d->line) - 2, LINE_FMT, &tm);
	d->line[n++] = '\r';
	d->line[n++] = '\n';
	d->len = n;
	d->sec = now;
}

/* Accepts until EAGAIN: the listener is edge-triggered. */
static void accept_all(int lfd, struct daytime *d)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

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
		daytime_update(d);
		/* A reset peer or a failed send: nothing to do but close. */
		send(fd, d->line, d->len, MSG_NOSIGNAL);
		close(fd);
	}
}

/* Returns 0 after SIGINT/SIGTERM, -errno if epoll_wait fails. */
static int run(int epfd, int lfd, int sfd)
{
	struct epoll_event evs[MAX_EVENTS];
	struct daytime d = { .len = 0 };

	for (;;) {
		int n = epoll_wait(epfd, evs, MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == sfd)
				return 0;
			accept_all(lfd, &d);
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	int epfd, sfd, lfd, err;
	char a[ADDRSTR_MAX];
	socklen_t len;

	if (parse_args(argc, argv, &ss, &len) < 0)
		return EXIT_USAGE;
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		fprintf(stderr, "%s: epoll_create1: %s\n", PROG,
			strerror(errno));
		return 1;
	}
	sfd = signals_open();
	err = sfd;
	if (err >= 0)
		err = epoll_add(epfd, sfd, EPOLLIN, sfd);
	if (err < 0) {
		fprintf(stderr, "%s: signalfd: %s\n", PROG, strerror(-err));
		goto out_sfd;
	}
	lfd = listen_tcp(&ss, len);
	if (lfd < 0) {
		err = lfd;
		goto out_sfd;
	}
	err = epoll_add(epfd, lfd, EPOLLIN | EPOLLET, lfd);
	if (err < 0) {
		sock_error("epoll_ctl", &ss, -err);
		goto out_lfd;
	}
	printf("listen daytime tcp %s epoll\n", addr_str(&ss, a, sizeof(a)));
	fflush(stdout);
	err = run(epfd, lfd, sfd);
	if (err < 0)
		fprintf(stderr, "%s: epoll_wait: %s\n", PROG, strerror(-err));

out_lfd:
	close(lfd);
out_sfd:
	if (sfd >= 0)
		close(sfd);
	close(epfd);
	return err < 0 ? 1 : 0;
}
