/* SPDX-License-Identifier: MIT */
/*
 * epoll_udp_echo.c - benchmark peer: an epoll UDP echo server (RFC 862,
 * "UDP Based Echo Service") on recvmmsg/sendmmsg batches.
 *
 *	epoll_udp_echo [-b ADDR] -p PORT
 *
 * One thread, one nonblocking UDP socket in a level-triggered epoll set.
 * Each readiness receives up to BATCH datagrams with one recvmmsg(2) and
 * sends them back to their senders with sendmmsg(2), then returns to
 * epoll_wait: a flood can then never keep the signalfd from being read,
 * and level triggering brings us straight back if more is queued. Every
 * datagram has a 64 KiB slot, so none is ever truncated.
 *
 * Prints "listen echo udp ADDR:PORT epoll" once bound. SIGINT or SIGTERM
 * (through a signalfd) exits 0; an error exits 1, bad usage 2.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG	    "epoll_udp_echo"
#define EXIT_USAGE  2
#define BATCH	    64
#define DGRAM_MAX   65536 /* more than any UDP payload (65507 on IPv4) */
#define ADDRSTR_MAX (INET6_ADDRSTRLEN + 8)

struct batch {
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_storage from[BATCH];
	char buf[BATCH][DGRAM_MAX];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-b ADDR] -p PORT\n"
		"  -b ADDR  numeric IPv4 or IPv6 address (default 127.0.0.1)\n"
		"  -p PORT  UDP port, 0 for an ephemeral one\n",
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

static int sock_error(const char *call, const struct sockaddr_storage *ss,
		      int err)
{
	char a[ADDRSTR_MAX];

	fprintf(stderr, "%s: %s %s: %s\n", PROG, call,
		addr_str(ss, a, sizeof(a)), strerror(err));
	return -err;
}

/* Returns the bound socket or -errno (reported). */
static int bind_udp(struct sockaddr_storage *ss, socklen_t len)
{
	int fd, err;

	fd =
	    socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sock_error("socket", ss, errno);
	if (bind(fd, (struct sockaddr *)ss, len) < 0) {
		err = sock_error("bind", ss, errno);
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

static int epoll_add(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void batch_init(struct batch *b)
{
	for (int i = 0; i < BATCH; i++) {
		b->iov[i].iov_base = b->buf[i];
		b->msgs[i].msg_hdr = (struct msghdr){
			.msg_name = &b->from[i],
			.msg_iov = &b->iov[i],
			.msg_iovlen = 1,
		};
	}
}

/*
 * One batch in, the same batch out. A datagram the kernel refuses to send
 * is skipped and the rest still go; when the send buffer is full the rest
 * are dropped, as UDP may (blocking here would stall every other sender).
 * Returns the number of datagrams received or -errno.
 */
static int echo_batch(int fd, struct batch *b)
{
	int n;

	for (int i = 0; i < BATCH; i++) {
		b->iov[i].iov_len = DGRAM_MAX;
		b->msgs[i].msg_hdr.msg_namelen = sizeof(b->from[i]);
	}
	n = recvmmsg(fd, b->msgs, BATCH, 0, NULL);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++)
		b->iov[i].iov_len = b->msgs[i].msg_len;
	for (int i = 0; i < n;) {
		int sent = sendmmsg(fd, b->msgs + i, (unsigned int)(n - i), 0);

		if (sent < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			sent = 1;
		}
		i += sent;
	}
	return n;
}

/* Returns 0 after SIGINT/SIGTERM, -errno (reported) on an error. */
static int run(int epfd, int ufd, int sfd, struct batch *b)
{
	struct epoll_event evs[2];

	for (;;) {
		int n = epoll_wait(epfd, evs, 2, -1);

		if (n < 0) {
			int err = -errno;

			if (err == -EINTR)
				continue;
			fprintf(stderr, "%s: epoll_wait: %s\n", PROG,
				strerror(-err));
			return err;
		}
		for (int i = 0; i < n; i++) {
			int err;

			if (evs[i].data.fd == sfd)
				return 0;
			err = echo_batch(ufd, b);
			if (err < 0) {
				fprintf(stderr, "%s: recvmmsg: %s\n", PROG,
					strerror(-err));
				return err;
			}
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	int epfd, sfd, ufd, err;
	char a[ADDRSTR_MAX];
	struct batch *b;
	socklen_t len;

	if (parse_args(argc, argv, &ss, &len) < 0)
		return EXIT_USAGE;
	b = malloc(sizeof(*b)); /* 4 MiB, touched only as far as used */
	if (!b) {
		fprintf(stderr, "%s: malloc: %s\n", PROG, strerror(ENOMEM));
		return 1;
	}
	batch_init(b);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		err = -errno;
		fprintf(stderr, "%s: epoll_create1: %s\n", PROG,
			strerror(-err));
		goto out_free;
	}
	sfd = signals_open();
	err = sfd;
	if (err >= 0)
		err = epoll_add(epfd, sfd);
	if (err < 0) {
		fprintf(stderr, "%s: signalfd: %s\n", PROG, strerror(-err));
		goto out_sfd;
	}
	ufd = bind_udp(&ss, len);
	if (ufd < 0) {
		err = ufd;
		goto out_sfd;
	}
	err = epoll_add(epfd, ufd);
	if (err < 0) {
		sock_error("epoll_ctl", &ss, -err);
		goto out_ufd;
	}
	printf("listen echo udp %s epoll\n", addr_str(&ss, a, sizeof(a)));
	fflush(stdout);
	err = run(epfd, ufd, sfd, b);

out_ufd:
	close(ufd);
out_sfd:
	if (sfd >= 0)
		close(sfd);
	close(epfd);
out_free:
	free(b);
	return err < 0 ? 1 : 0;
}
