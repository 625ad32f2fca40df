/* SPDX-License-Identifier: MIT */
/*
 * epoll_client.c - a simple epoll echo client: the baseline evring-bench's
 * own cost is compared with.
 *
 *	epoll_client -c CONNS -s SIZE -d SECS [-w SECS] HOST:PORT
 *
 * CONNS nonblocking connections each keep one SIZE-byte message in flight
 * (closed loop, as `evring-bench echo -p 1`): write it, read until the
 * whole echo is back, check it, write the next. Level-triggered epoll, one
 * read and one write system call per message, the way a competent engineer
 * writes a simple client. Prints one JSON object: messages per second and
 * the client's CPU time per message (getrusage), measured after the
 * warm-up.
 */
#define PEER_PROG "epoll_client"
#include "peer.h"

#include <stdint.h>
#include <sys/epoll.h>

struct client {
	int fd;
	size_t sent, got; /* of the current message */
};

static void die(const char *what)
{
	fprintf(stderr, "epoll_client: %s: %s\n", what, strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	struct peer_client_opts o;
	struct epoll_event ev, evs[256];
	struct client *cl;
	char *msg, *buf;
	long conns, size;
	int ep, one = 1;

	if (peer_client_args(argc, argv,
			     "-c CONNS -s SIZE -d SECS [-w SECS] HOST:PORT",
			     1 << 30, &o) < 0)
		return PEER_EXIT_USAGE;
	conns = o.conns;
	size = o.size;
	msg = malloc((size_t)size);
	buf = malloc((size_t)size);
	cl = calloc((size_t)conns, sizeof(*cl));
	if (!msg || !buf || !cl)
		die("malloc");
	for (long i = 0; i < size; i++)
		msg[i] = (char)('a' + i % 26);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	for (long i = 0; i < conns; i++) {
		int fd = socket(o.to.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0 || connect(fd, (struct sockaddr *)&o.to, o.tolen))
			die("connect");
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		cl[i].fd = fd;
		if (write(fd, msg, (size_t)size) != size)
			die("write");
		cl[i].sent = (size_t)size;
		ev.events = EPOLLIN;
		ev.data.ptr = &cl[i];
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			die("epoll_ctl");
	}

	double t0 = peer_now_s(), tm = t0 + o.warm, tend = tm + o.secs, c0 = 0;
	unsigned long long ops = 0;
	int measuring = 0;

	for (;;) {
		double t = peer_now_s();

		if (!measuring && t >= tm) {
			measuring = 1;
			ops = 0;
			c0 = peer_cpu_s();
		}
		if (t >= tend)
			break;
		int n = epoll_wait(ep, evs, 256, 100);
		for (int k = 0; k < n; k++) {
			struct client *c = evs[k].data.ptr;
			ssize_t r =
			    read(c->fd, buf + c->got, (size_t)size - c->got);

			if (r <= 0) {
				if (r < 0 && errno == EINTR)
					continue;
				die("read");
			}
			if (memcmp(buf + c->got, msg + c->got, (size_t)r)) {
				fprintf(stderr, "epoll_client: echo differs\n");
				return 1;
			}
			c->got += (size_t)r;
			if (c->got < (size_t)size)
				continue;
			c->got = 0;
			ops++;
			if (write(c->fd, msg, (size_t)size) != size)
				die("write");
		}
	}
	double used = peer_cpu_s() - c0;
	printf("{\"mode\":\"epoll_client\",\"ops\":%llu,\"ops_per_s\":%.1f,"
	       "\"client_cpu_us_per_op\":%.3f}\n",
	       ops, (double)ops / o.secs, ops ? used * 1e6 / (double)ops : 0);
	for (long i = 0; i < conns; i++)
		close(cl[i].fd);
	close(ep);
	free(cl);
	free(msg);
	free(buf);
	return 0;
}
