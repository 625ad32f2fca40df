/* SPDX-License-Identifier: MIT */
/*
 * mailbox_bench.c - what a message between the two loops of a group costs,
 * woken by IORING_OP_MSG_RING or by an eventfd.
 *
 *	mailbox-bench io_uring|epoll auto|eventfd pingpong|stream N
 *
 * pingpong: one message in flight. Loop 0 posts to loop 1, which posts
 * back, N round trips (2N messages): every message finds its target
 * asleep, so each costs a wake-up; this is a wake-up's latency and CPU.
 * stream: loop 0 posts N messages to loop 1 in bursts of 64 (posting
 * itself the next burst); loop 1 counts them. Wake-ups coalesce: this is
 * a message's own cost.
 *
 * Loops run on CPUs 0 and 1 where there are two. Prints one JSON object:
 * wall and CPU (both threads, getrusage) nanoseconds per message, and the
 * wake-ups the loops counted (of them by MSG_RING). A benchmark, never a
 * test: it asserts nothing.
 */
#include "evring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BURST 64

static struct {
	bool stream;
	uint64_t n, sent, got;
	uint64_t t0, t1; /* ns */
	struct evr_group *g;
} B;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void done(void)
{
	B.t1 = now_ns();
	evr_group_stop(B.g);
}

static void ping(struct evr_loop *l, void *arg);

/* On loop 1: back to loop 0 (pingpong), or counted (stream). */
static void pong(struct evr_loop *l, void *arg)
{
	(void)arg;
	if (B.stream) {
		if (++B.got == B.n)
			done();
		return;
	}
	evr_loop_post(evr_group_loop(evr_loop_group(l), 0), ping, NULL);
}

/* On loop 0: the next message (pingpong), or the next burst (stream). */
static void ping(struct evr_loop *l, void *arg)
{
	struct evr_loop *to = evr_group_loop(evr_loop_group(l), 1);

	(void)arg;
	if (!B.stream) {
		if (B.sent++ == B.n) {
			done();
			return;
		}
		evr_loop_post(to, pong, NULL);
		return;
	}
	for (int i = 0; i < BURST && B.sent < B.n; i++, B.sent++)
		evr_loop_post(to, pong, NULL);
	if (B.sent < B.n)
		evr_loop_post(l, ping, NULL);
}

static int setup(struct evr_loop *l, unsigned index, void *arg)
{
	(void)arg;
	if (index != 0)
		return 0;
	B.t0 = now_ns();
	return evr_loop_post(l, ping, NULL);
}

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) *
		   1000000000u +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) *
		   1000u;
}

static void report(const struct evr_stats *per_loop, unsigned n,
		   const struct evr_stats *total, void *arg)
{
	uint64_t cpu = *(uint64_t *)arg, msgs = B.stream ? B.n : 2 * B.n;

	(void)per_loop, (void)n;

	printf("{\"mode\":\"%s\",\"wake\":\"%s\",\"n\":%llu,"
	       "\"ns_per_msg\":%.1f,\"cpu_ns_per_msg\":%.1f,"
	       "\"wakes\":%llu,\"msgring\":%llu}\n",
	       B.stream ? "stream" : "pingpong",
	       total->mail_msgring ? "msg_ring" : "eventfd",
	       (unsigned long long)msgs, (double)(B.t1 - B.t0) / (double)msgs,
	       (double)cpu / (double)msgs,
	       (unsigned long long)total->mail_wakes,
	       (unsigned long long)total->mail_msgring);
}

int main(int argc, char **argv)
{
	static const int cpus[] = { 0, 1 };
	struct evr_group_opts o;
	uint64_t c0, cpu;
	int err;

	if (argc != 5) {
		fprintf(stderr, "usage: mailbox-bench io_uring|epoll "
				"auto|eventfd pingpong|stream N\n");
		return 2;
	}
	B.stream = !strcmp(argv[3], "stream");
	B.n = strtoull(argv[4], NULL, 10);
	evr_group_opts_init(&o);
	o.loop.backend = argv[1];
	o.loop.disable = strcmp(argv[2], "eventfd") ? "" : "msg_ring";
	o.threads = 2;
	if (sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
		o.cpus = cpus;
		o.ncpus = 2;
	}
	o.setup = setup;
	c0 = cpu_ns();
	err = evr_group_start(&B.g, &o);
	if (err < 0) {
		fprintf(stderr, "mailbox-bench: %s\n", strerror(-err));
		return 1;
	}
	err = evr_group_run(B.g);
	cpu = cpu_ns() - c0;
	evr_group_stats(B.g, NULL, report, &cpu);
	evr_group_free(B.g);
	return err < 0;
}
