/* SPDX-License-Identifier: MIT */
/*
 * peer.h - what every benchmark peer does the same way before its loop
 * runs: the command line ([-b ADDR] -p PORT), addresses printed as
 * evringd prints them, the descriptor limit, errors that name the call and
 * the address, the listening socket and the signals; for the clients,
 * their command line and clocks. Only set-up: each peer's loop, the part
 * that is measured, stays in its own file, in its tool's idiom.
 *
 * A peer defines PEER_PROG (its name in messages) and PEER_PROTO ("TCP" or
 * "UDP", for the usage text) before including this header. Everything here
 * is static inline: a peer is still one .c file to compile.
 */
#ifndef EVRING_BENCH_PEER_H
#define EVRING_BENCH_PEER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef PEER_PROG
#error "define PEER_PROG before including peer.h"
#endif
#ifndef PEER_PROTO
#define PEER_PROTO "TCP"
#endif

#define PEER_EXIT_USAGE 2
#define PEER_BACKLOG	1024 /* evringd's default */
#define PEER_ADDRSTR	(INET6_ADDRSTRLEN + 8)

static inline void peer_usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-b ADDR] -p PORT\n"
		"  -b ADDR  numeric IPv4 or IPv6 address (default 127.0.0.1)\n"
		"  -p PORT  " PEER_PROTO " port, 0 for an ephemeral one\n",
		PEER_PROG);
}

static inline int peer_addr_parse(const char *host, long port,
				  struct sockaddr_storage *ss, socklen_t *len)
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
static inline const char *peer_addr_str(const struct sockaddr_storage *ss,
					char *buf, size_t n)
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

/* Returns 0, or -EINVAL after saying why (usage: exit PEER_EXIT_USAGE). */
static inline int peer_parse_args(int argc, char **argv,
				  struct sockaddr_storage *ss, socklen_t *len)
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
			peer_usage(stdout);
			exit(0);
		default:
			peer_usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc || !port_arg) {
		peer_usage(stderr);
		return -EINVAL;
	}
	errno = 0;
	port = strtol(port_arg, &end, 10);
	if (errno || end == port_arg || *end || port < 0 || port > 65535) {
		fprintf(stderr, "%s: bad port \"%s\"\n", PEER_PROG, port_arg);
		return -EINVAL;
	}
	if (peer_addr_parse(host, port, ss, len) < 0) {
		fprintf(stderr,
			"%s: bad address \"%s\" (numeric IPv4 or IPv6)\n",
			PEER_PROG, host);
		return -EINVAL;
	}
	return 0;
}

/* A benchmark opens many connections: take every descriptor allowed. */
static inline void peer_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* "PROG: CALL ADDR: strerror(err)" on stderr; returns -err. */
static inline int peer_sock_error(const char *call,
				  const struct sockaddr_storage *ss, int err)
{
	char a[PEER_ADDRSTR];

	fprintf(stderr, "%s: %s %s: %s\n", PEER_PROG, call,
		peer_addr_str(ss, a, sizeof(a)), strerror(err));
	return -err;
}

/*
 * A nonblocking socket of type (SOCK_STREAM: listening, with TCP_NODELAY,
 * which Linux copies to every socket accept() returns; SOCK_DGRAM: bound)
 * on ss, whose port becomes the one the kernel chose. Returns the socket
 * or -errno (reported).
 */
static inline int peer_socket(int type, struct sockaddr_storage *ss,
			      socklen_t len)
{
	int one = 1, fd, err;

	fd = socket(ss->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return peer_sock_error("socket", ss, errno);
	if (type == SOCK_STREAM) {
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
			       sizeof(one)) < 0) {
			err = peer_sock_error("setsockopt SO_REUSEADDR", ss,
					      errno);
			goto out_close;
		}
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			       sizeof(one)) < 0) {
			err = peer_sock_error("setsockopt TCP_NODELAY", ss,
					      errno);
			goto out_close;
		}
	}
	if (bind(fd, (struct sockaddr *)ss, len) < 0) {
		err = peer_sock_error("bind", ss, errno);
		goto out_close;
	}
	if (type == SOCK_STREAM && listen(fd, PEER_BACKLOG) < 0) {
		err = peer_sock_error("listen", ss, errno);
		goto out_close;
	}
	if (getsockname(fd, (struct sockaddr *)ss, &len) < 0) {
		err = peer_sock_error("getsockname", ss, errno);
		goto out_close;
	}
	return fd;

out_close:
	close(fd);
	return err;
}

/* SIGINT and SIGTERM as reads on a descriptor (for an epoll set); -errno. */
static inline int peer_signalfd(void)
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

/* ---- the clients (epoll_client.c, ../floor/uring_floor.c) ---------------- */

struct peer_client_opts {
	long conns, size;  /* -c, -s: connections, bytes per message */
	double secs, warm; /* -d, -w: seconds measured, warm-up before */
	struct sockaddr_storage to;
	socklen_t tolen;
};

/*
 * -c CONNS -s SIZE -d SECS [-w SECS] HOST:PORT, HOST a numeric loopback
 * address (127.x.y.z, or ::1 written [::1]): a load is never aimed
 * elsewhere. Defaults
 * 50 connections, 64 bytes, 5 s after 1 s. Returns 0, or -EINVAL after
 * printing usage (exit PEER_EXIT_USAGE).
 */
static inline int peer_client_args(int argc, char **argv, const char *usage,
				   long max_size, struct peer_client_opts *o)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)&o->to;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&o->to;
	char *colon, *host;
	int opt;

	o->conns = 50;
	o->size = 64;
	o->secs = 5;
	o->warm = 1;
	while ((opt = getopt(argc, argv, "c:s:d:w:")) != -1) {
		switch (opt) {
		case 'c':
			o->conns = strtol(optarg, NULL, 10);
			break;
		case 's':
			o->size = strtol(optarg, NULL, 10);
			break;
		case 'd':
			o->secs = strtod(optarg, NULL);
			break;
		case 'w':
			o->warm = strtod(optarg, NULL);
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1 || o->conns < 1 || o->conns > 100000 ||
	    o->size < 1 || o->size > max_size || o->secs <= 0 || o->warm < 0)
		goto usage;
	colon = strrchr(argv[optind], ':');
	if (!colon)
		goto usage;
	*colon = '\0';
	host = argv[optind];
	if (*host == '[' && colon[-1] == ']') { /* [::1]:7 */
		host++;
		colon[-1] = '\0';
	}
	if (peer_addr_parse(host, strtol(colon + 1, NULL, 10), &o->to,
			    &o->tolen) < 0)
		goto usage;
	if (o->to.ss_family == AF_INET
		? (ntohl(in->sin_addr.s_addr) >> 24) != 127
		: !IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) {
		fprintf(stderr,
			"%s: a loopback target, please (127.x.y.z or ::1)\n",
			PEER_PROG);
		return -EINVAL;
	}
	return 0;
usage:
	fprintf(stderr, "usage: %s %s\n", PEER_PROG, usage);
	return -EINVAL;
}

static inline double peer_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The process's CPU time, user and system, in seconds. */
static inline double peer_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

#endif
