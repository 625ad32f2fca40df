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
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct client {
	int fd;
	size_t sent, got; /* of the current message */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "epoll_client: %s: %s\n", what, strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	long conns = 50, size = 64;
	double secs = 5, warm = 1;
	struct sockaddr_in to = { .sin_family = AF_INET };
	struct epoll_event ev, evs[256];
	struct client *cl;
	char *msg, *buf;
	int opt, ep, one = 1;

	while ((opt = getopt(argc, argv, "c:s:d:w:")) != -1) {
		switch (opt) {
		case 'c':
			conns = strtol(optarg, NULL, 10);
			break;
		case 's':
			size = strtol(optarg, NULL, 10);
			break;
		case 'd':
			secs = strtod(optarg, NULL);
			break;
		case 'w':
			warm = strtod(optarg, NULL);
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1 || conns < 1 || size < 1 || secs <= 0)
		goto usage;
	char *colon = strrchr(argv[optind], ':');
	if (!colon)
		goto usage;
	*colon = '\0';
	to.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, argv[optind], &to.sin_addr) != 1 ||
	    (ntohl(to.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "epoll_client: a 127.x.y.z target, please\n");
		return 2;
	}

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
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof(to)))
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

	double t0 = now_s(), tm = t0 + warm, tend = tm + secs, c0 = 0;
	unsigned long long ops = 0;
	int measuring = 0;

	for (;;) {
		double t = now_s();

		if (!measuring && t >= tm) {
			measuring = 1;
			ops = 0;
			c0 = cpu_s();
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
	double used = cpu_s() - c0;
	printf("{\"mode\":\"epoll_client\",\"ops\":%llu,\"ops_per_s\":%.1f,"
	       "\"client_cpu_us_per_op\":%.3f}\n",
	       ops, (double)ops / secs, ops ? used * 1e6 / (double)ops : 0);
	for (long i = 0; i < conns; i++)
		close(cl[i].fd);
	close(ep);
	free(cl);
	free(msg);
	free(buf);
	return 0;
usage:
	fprintf(stderr,
		"usage: epoll_client -c CONNS -s SIZE -d SECS [-w SECS] "
		"HOST:PORT\n");
	return 2;
}
