/* SPDX-License-Identifier: MIT */
/*
 * mailbox_stress.c - millions of messages between the two loops of a
 * group and from a thread outside it; none may be lost, each sender's must
 * arrive in order.
 *
 *	mailbox-stress BACKEND auto|eventfd COUNT
 *
 * Each of three senders (loop 0, loop 1, this program's main thread)
 * posts COUNT numbered messages to each loop but itself; loops post in
 * batches and post themselves the next batch, so messages to one's own
 * loop are exercised too. Once every message has arrived the group is
 * stopped from the main thread. Prints the summed counters as one line,
 * "mail_rx=N mail_wakes=N mail_msgring=N", and exits 0; 1 with the reason
 * on stderr when a message was lost, late or out of order; 77 when the
 * backend cannot run here.
 *
 * A program of its own, not a Criterion test, so that it can be built
 * with ThreadSanitizer (Criterion cannot run under it) and run by
 * tests/test_mailbox.c either way.
 */
#include "evring.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SENDERS 3 /* loop 0, loop 1, the main thread */
#define BATCH	4096

static uint64_t per_sender;
static struct evr_group *group;
static atomic_int started;
static int run_err;
/* per receiving loop: the next number due from each sender */
static uint64_t next_seq[2][SENDERS];
static atomic_ullong got[2];
static atomic_int bad;
static uint64_t sent[2];

static void *arg_of(unsigned sender, uint64_t seq)
{
	return (void *)(uintptr_t)(((uint64_t)sender << 56) | seq);
}

static void on_msg(struct evr_loop *l, void *arg)
{
	unsigned me = evr_loop_index(l);
	uint64_t v = (uint64_t)(uintptr_t)arg;
	unsigned sender = (unsigned)(v >> 56);
	uint64_t seq = v & ((1ULL << 56) - 1);

	if (sender >= SENDERS || seq != next_seq[me][sender]) {
		if (!atomic_fetch_add(&bad, 1))
			fprintf(stderr,
				"loop %u: from sender %u got message %llu, "
				"expected %llu\n",
				me, sender, (unsigned long long)seq,
				(unsigned long long)next_seq[me][sender]);
		return;
	}
	next_seq[me][sender]++;
	atomic_fetch_add_explicit(&got[me], 1, memory_order_relaxed);
}

/* A batch to the other loop, then the next batch through our own
 * mailbox. */
static void pump(struct evr_loop *l, void *arg)
{
	unsigned me = evr_loop_index(l);
	struct evr_loop *to = evr_group_loop(group, 1 - me);

	for (int i = 0; i < BATCH && sent[me] < per_sender; i++) {
		if (evr_loop_post(to, on_msg, arg_of(me, sent[me])) < 0) {
			atomic_fetch_add(&bad, 1);
			return;
		}
		sent[me]++;
	}
	if (sent[me] < per_sender && evr_loop_post(l, pump, arg) < 0)
		atomic_fetch_add(&bad, 1);
}

static int setup(struct evr_loop *l, unsigned index, void *arg)
{
	(void)index;
	return evr_loop_post(l, pump, arg);
}

/* Loop 0 is made and run by the thread that starts the group. */
static void *group_main(void *arg)
{
	struct evr_group *g;
	int err = evr_group_start(&g, arg);

	if (err < 0) {
		run_err = err;
		atomic_store(&started, -1);
		return NULL;
	}
	group = g;
	atomic_store(&started, 1);
	run_err = evr_group_run(g);
	return NULL;
}

static void print_total(const struct evr_stats *per_loop, unsigned n,
			const struct evr_stats *total, void *arg)
{
	(void)per_loop, (void)n, (void)arg;
	printf("mail_rx=%llu mail_wakes=%llu mail_msgring=%llu\n",
	       (unsigned long long)total->mail_rx,
	       (unsigned long long)total->mail_wakes,
	       (unsigned long long)total->mail_msgring);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	struct evr_group_opts o;
	pthread_t th;
	uint64_t want;
	int64_t deadline;

	if (argc != 4) {
		fprintf(stderr, "usage: mailbox-stress BACKEND auto|eventfd "
				"COUNT\n");
		return 2;
	}
	evr_log_set_ident("mailbox-stress");
	per_sender = strtoull(argv[3], NULL, 10);
	evr_group_opts_init(&o);
	o.loop.backend = argv[1];
	/* the off-switch: eventfd wake-ups only */
	o.loop.disable = strcmp(argv[2], "eventfd") ? "" : "msg_ring";
	o.threads = 2;
	o.setup = setup;
	if (pthread_create(&th, NULL, group_main, &o))
		return 1;
	while (!atomic_load(&started))
		usleep(1000);
	if (atomic_load(&started) < 0) {
		pthread_join(th, NULL);
		fprintf(stderr, "group: %s\n", strerror(-run_err));
		return run_err == -ENOTSUP ? 77 : 1;
	}
	for (uint64_t seq = 0; seq < per_sender; seq++)
		for (unsigned to = 0; to < 2; to++)
			if (evr_loop_post(evr_group_loop(group, to), on_msg,
					  arg_of(2, seq)) < 0)
				atomic_fetch_add(&bad, 1);
	want = 2 * per_sender; /* from the other loop and from us */
	deadline = now_ms() + 300000;
	while ((atomic_load(&got[0]) < want || atomic_load(&got[1]) < want) &&
	       !atomic_load(&bad) && now_ms() < deadline)
		usleep(1000);
	evr_group_stop(group);
	pthread_join(th, NULL);
	if (run_err || atomic_load(&bad) || atomic_load(&got[0]) != want ||
	    atomic_load(&got[1]) != want) {
		fprintf(stderr,
			"run %d, %d bad, loop 0 got %llu and loop 1 %llu of "
			"%llu\n",
			run_err, atomic_load(&bad),
			(unsigned long long)atomic_load(&got[0]),
			(unsigned long long)atomic_load(&got[1]),
			(unsigned long long)want);
		return 1;
	}
	evr_group_stats(group, NULL, print_total, NULL);
	evr_group_free(group);
	return 0;
}
