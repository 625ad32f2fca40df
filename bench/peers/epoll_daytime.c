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

#define PEER_PROG "epoll_daytime"
#include "peer.h"

#define MAX_EVENTS 64
#define LINE_FMT   "%A, %B %-d, %Y %H:%M:%S-UTC"

struct daytime {
	time_t sec; /* the second line[] was formatted for */
	size_t len;
	char line[128];
};

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
				fprintf(stderr, "%s: accept4: %s\n", PEER_PROG,
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
	char a[PEER_ADDRSTR];
	socklen_t len;

	if (peer_parse_args(argc, argv, &ss, &len) < 0)
		return PEER_EXIT_USAGE;
	signal(SIGPIPE, SIG_IGN);
	peer_raise_nofile();
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		fprintf(stderr, "%s: epoll_create1: %s\n", PEER_PROG,
			strerror(errno));
		return 1;
	}
	sfd = peer_signalfd();
	err = sfd;
	if (err >= 0)
		err = epoll_add(epfd, sfd, EPOLLIN, sfd);
	if (err < 0) {
		fprintf(stderr, "%s: signalfd: %s\n", PEER_PROG,
			strerror(-err));
		goto out_sfd;
	}
	lfd = peer_socket(SOCK_STREAM, &ss, len);
	if (lfd < 0) {
		err = lfd;
		goto out_sfd;
	}
	err = epoll_add(epfd, lfd, EPOLLIN | EPOLLET, lfd);
	if (err < 0) {
		peer_sock_error("epoll_ctl", &ss, -err);
		goto out_lfd;
	}
	printf("listen daytime tcp %s epoll\n",
	       peer_addr_str(&ss, a, sizeof(a)));
	fflush(stdout);
	err = run(epfd, lfd, sfd);
	if (err < 0)
		fprintf(stderr, "%s: epoll_wait: %s\n", PEER_PROG,
			strerror(-err));

out_lfd:
	close(lfd);
out_sfd:
	if (sfd >= 0)
		close(sfd);
	close(epfd);
	return err < 0 ? 1 : 0;
}
