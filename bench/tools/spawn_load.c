/* SPDX-License-Identifier: MIT */
/*
 * spawn_load.c - does starting programs stall evringd for its other
 * clients? Echo clients measure round trips on connections that stay
 * open (closed loop) while spawners connect to a program service at a
 * fixed rate (open loop: each start is due at its time, late or not) and
 * time each start to the program's first byte.
 *
 *	spawn-load ECHO_PORT SPAWN_PORT RATE SECONDS [ECHO_CLIENTS]
 *
 * On 127.0.0.1. Prints one line of key=value: the echo round trips
 * (p50, p99, p99.9, max, count) and the starts (p50, p99, max, count,
 * late: starts begun more than 5 ms after they were due). RATE 0 gives
 * the echo baseline. bench/spawn.sh runs it against evringd.
 */
#include "../hist.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SPAWNERS 4
#define MSG	 64

static uint16_t echo_port, spawn_port;
static double rate;
static atomic_bool stop;
static uint64_t t_end;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int dial(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct echo_client {
	pthread_t th;
	struct hist h;
	uint64_t errors;
};

static void *echo_main(void *arg)
{
	struct echo_client *c = arg;
	char out[MSG], in[MSG];
	int fd = dial(echo_port);

	memset(out, 'e', sizeof(out));
	while (fd >= 0 && !atomic_load(&stop)) {
		uint64_t t0 = now_ns();
		size_t got = 0;

		if (write(fd, out, sizeof(out)) != (ssize_t)sizeof(out))
			break;
		while (got < sizeof(in)) {
			ssize_t r = read(fd, in + got, sizeof(in) - got);

			if (r <= 0)
				goto out;
			got += (size_t)r;
		}
		hist_add(&c->h, now_ns() - t0);
		usleep(1000); /* a client that talks, not a flood */
	}
out:
	if (fd < 0 || !atomic_load(&stop))
		c->errors++;
	if (fd >= 0)
		close(fd);
	return NULL;
}

struct spawner {
	pthread_t th;
	int index;
	struct hist h;
	uint64_t late, errors;
};

static void *spawn_main(void *arg)
{
	struct spawner *s = arg;
	uint64_t period = (uint64_t)(1e9 * SPAWNERS / rate);
	uint64_t due = now_ns() + period * (uint64_t)s->index / SPAWNERS;

	while (due < t_end) {
		uint64_t t0 = now_ns();
		char c;
		int fd;

		if (t0 < due) {
			struct timespec ts = { .tv_sec = 0,
					       .tv_nsec = (long)(due - t0) };

			nanosleep(&ts, NULL);
			t0 = now_ns();
		}
		if (t0 > due + 5000000)
			s->late++;
		fd = dial(spawn_port);
		if (fd < 0 || read(fd, &c, 1) != 1)
			s->errors++;
		else
			hist_add(&s->h, now_ns() - t0);
		if (fd >= 0) {
			while (read(fd, &c, 1) > 0)
				;
			close(fd);
		}
		due += period;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct echo_client ec[64];
	struct spawner sp[SPAWNERS];
	struct hist e, s;
	int nclients, seconds;
	uint64_t late = 0, serr = 0, eerr = 0;

	if (argc < 5) {
		fprintf(stderr, "usage: spawn-load ECHO_PORT SPAWN_PORT RATE "
				"SECONDS [ECHO_CLIENTS]\n");
		return 2;
	}
	echo_port = (uint16_t)atoi(argv[1]);
	spawn_port = (uint16_t)atoi(argv[2]);
	rate = atof(argv[3]);
	seconds = atoi(argv[4]);
	nclients = argc > 5 ? atoi(argv[5]) : 16;
	if (nclients < 1 || nclients > 64)
		nclients = 16;
	hist_reset(&e);
	hist_reset(&s);
	t_end = now_ns() + (uint64_t)seconds * 1000000000u;
	for (int i = 0; i < nclients; i++) {
		hist_reset(&ec[i].h);
		ec[i].errors = 0;
		pthread_create(&ec[i].th, NULL, echo_main, &ec[i]);
	}
	for (int i = 0; rate > 0 && i < SPAWNERS; i++) {
		memset(&sp[i], 0, sizeof(sp[i]));
		sp[i].index = i;
		hist_reset(&sp[i].h);
		pthread_create(&sp[i].th, NULL, spawn_main, &sp[i]);
	}
	for (int i = 0; rate > 0 && i < SPAWNERS; i++) {
		pthread_join(sp[i].th, NULL);
		hist_merge(&s, &sp[i].h);
		late += sp[i].late;
		serr += sp[i].errors;
	}
	while (now_ns() < t_end)
		usleep(10000);
	atomic_store(&stop, true);
	for (int i = 0; i < nclients; i++) {
		pthread_join(ec[i].th, NULL);
		hist_merge(&e, &ec[i].h);
		eerr += ec[i].errors;
	}
	printf("echo_p50_us=%.1f echo_p99_us=%.1f echo_p999_us=%.1f "
	       "echo_max_us=%.1f echo_n=%llu echo_errors=%llu "
	       "spawn_p50_us=%.1f spawn_p99_us=%.1f spawn_max_us=%.1f "
	       "spawn_n=%llu spawn_late=%llu spawn_errors=%llu\n",
	       hist_quantile(&e, 0.5) / 1e3, hist_quantile(&e, 0.99) / 1e3,
	       hist_quantile(&e, 0.999) / 1e3, e.max / 1e3,
	       (unsigned long long)e.count, (unsigned long long)eerr,
	       s.count ? hist_quantile(&s, 0.5) / 1e3 : 0,
	       s.count ? hist_quantile(&s, 0.99) / 1e3 : 0, s.max / 1e3,
	       (unsigned long long)s.count, (unsigned long long)late,
	       (unsigned long long)serr);
	return eerr || serr ? 1 : 0;
}
