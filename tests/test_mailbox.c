/* SPDX-License-Identifier: MIT */
/*
 * test_mailbox.c - loop groups and their mailboxes: millions of messages
 * between two loops and from a thread outside them, none lost, each
 * sender's in order (tests/tools/mailbox_stress.c); the wake-up
 * off-switch; a group whose start fails frees what it made; threads and
 * CPUs.
 */
#include "harness.h"

#include "evring.h"

#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * The stress is tests/tools/mailbox_stress.c, a program of its own so that
 * `make check` can run a ThreadSanitizer build of it (EVRING_BUILD names
 * the build it comes from). Under ThreadSanitizer it is 5-15 times
 * slower: fewer messages prove the same there.
 */
static void stress(const char *backend, const char *wake,
		   unsigned long long *rx, unsigned long long *wakes,
		   unsigned long long *msgring)
{
	const char *t = getenv("EVRING_TSAN");
	const char *count = t && *t == '1' ? "100000" : "1000000";
	const char *argv[] = { tool_path("mailbox-stress"), backend, wake,
			       count, NULL };
	char out[4096];
	int rc;

	skip_unless_backend_runs(backend);
	rc = run_capture(argv, out, sizeof(out), 300000);
	cr_assert_eq(rc, 0, "mailbox-stress: %s", out);
	cr_assert_eq(
	    sscanf(strstr(out, "mail_rx=") ? strstr(out, "mail_rx=") : "",
		   "mail_rx=%llu mail_wakes=%llu mail_msgring=%llu", rx, wakes,
		   msgring),
	    3, "%s", out);
	/* each loop runs 2 * COUNT messages from the others, plus its
	 * own batches */
	cr_assert_geq(*rx, 4 * strtoull(count, NULL, 10));
}

BACKEND_TEST(mailbox, millions_of_messages_none_lost_each_sender_in_order)
{
	unsigned long long rx, wakes, msgring;

	stress(backend, "auto", &rx, &wakes, &msgring);
	cr_assert_gt(wakes, 0);
	if (!strcmp(backend, "io_uring"))
		cr_assert_gt(msgring, 0,
			     "loops of a group wake each other by MSG_RING");
	else
		cr_assert_eq(msgring, 0);
}

/* The off-switch reaches every wake-up: with "eventfd" no MSG_RING is
 * sent, and nothing is lost either. */
Test(mailbox, eventfd_wake_ups_only_when_asked)
{
	unsigned long long rx, wakes, msgring;

	stress("io_uring", "eventfd", &rx, &wakes, &msgring);
	cr_assert_eq(msgring, 0);
	cr_assert_gt(wakes, 0);
}

/* ---- start-up ---- */

static atomic_int setups;

static int fail_second(struct evr_loop *l, unsigned index, void *arg)
{
	(void)l, (void)arg;
	atomic_fetch_add(&setups, 1);
	return index == 1 ? -EADDRINUSE : 0;
}

BACKEND_TEST(group, a_setup_that_fails_stops_the_start_with_its_error)
{
	struct evr_group_opts o;
	struct evr_group *g = NULL;

	skip_unless_backend_runs(backend);
	atomic_store(&setups, 0);
	evr_group_opts_init(&o);
	o.loop.backend = backend;
	o.threads = 4;
	o.setup = fail_second;
	cr_assert_eq(evr_group_start(&g, &o), -EADDRINUSE);
	/* in index order: the loops after the failed one never set up */
	cr_assert_eq(atomic_load(&setups), 2);
}

static int nothing(struct evr_loop *l, unsigned index, void *arg)
{
	(void)l, (void)index, (void)arg;
	return 0;
}

Test(group, threads_default_to_the_cpus_we_may_run_on)
{
	struct evr_group_opts o;
	struct evr_group *g;
	cpu_set_t set;

	cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
	evr_group_opts_init(&o);
	o.loop.backend = "epoll";
	o.setup = nothing;
	cr_assert_eq(evr_group_start(&g, &o), 0);
	cr_assert_eq(evr_group_size(g), (unsigned)CPU_COUNT(&set));
	for (unsigned i = 0; i < evr_group_size(g); i++) {
		cr_assert_eq(evr_loop_group(evr_group_loop(g, i)), g);
		cr_assert_eq(evr_loop_index(evr_group_loop(g, i)), i);
	}
	/* started, never run: freeing ends every loop */
	evr_group_free(g);
}

/* fini: once per loop, on the loop's own thread, after every loop ran,
 * with the loop still there (a timer added then is freed with it). */
static atomic_int finis;
static pthread_t setup_thread[3];

static int note_thread(struct evr_loop *l, unsigned index, void *arg)
{
	(void)l, (void)arg;
	setup_thread[index] = pthread_self();
	return 0;
}

static void stop_all(struct evr_loop *l, void *arg)
{
	(void)l;
	evr_group_stop(arg);
}

static atomic_int finis_elsewhere;

/* (asserts stay on the test's thread) */
static void count_fini(struct evr_loop *l, unsigned index, void *arg)
{
	(void)arg;
	if (!pthread_equal(setup_thread[index], pthread_self()) ||
	    evr_loop_index(l) != index)
		atomic_fetch_add(&finis_elsewhere, 1);
	atomic_fetch_add(&finis, 1);
}

static void just_count(struct evr_loop *l, unsigned index, void *arg)
{
	(void)l, (void)index, (void)arg;
	atomic_fetch_add(&finis, 1);
}

BACKEND_TEST(group, fini_runs_once_per_loop_on_its_thread)
{
	struct evr_group_opts o;
	struct evr_group *g;

	skip_unless_backend_runs(backend);
	atomic_store(&finis, 0);
	atomic_store(&finis_elsewhere, 0);
	evr_group_opts_init(&o);
	o.loop.backend = backend;
	o.threads = 3;
	o.setup = note_thread;
	o.fini = count_fini;
	cr_assert_eq(evr_group_start(&g, &o), 0);
	cr_assert_eq(atomic_load(&finis), 0);
	cr_assert_eq(evr_loop_post(evr_group_loop(g, 2), stop_all, g), 0);
	cr_assert_eq(evr_group_run(g), 0);
	cr_assert_eq(atomic_load(&finis), 3);
	cr_assert_eq(atomic_load(&finis_elsewhere), 0,
		     "a fini ran on another loop's thread");
	evr_group_free(g);
	cr_assert_eq(atomic_load(&finis), 3);
	/* a start that gives up: the loops made so far hear it too */
	atomic_store(&finis, 0);
	atomic_store(&setups, 0);
	o.setup = fail_second;
	o.fini = just_count;
	cr_assert_eq(evr_group_start(&g, &o), -EADDRINUSE);
	cr_assert_eq(atomic_load(&finis), 2);
}

Test(group, bad_options_are_refused)
{
	struct evr_group_opts o;
	struct evr_group *g;
	int cpus[] = { -1 };

	evr_group_opts_init(&o);
	cr_assert_eq(evr_group_start(&g, &o), -EINVAL, "no setup");
	o.setup = nothing;
	o.cpus = cpus;
	o.ncpus = 1;
	cr_assert_eq(evr_group_start(&g, &o), -EINVAL);
	o.cpus = NULL;
	o.threads = EVR_GROUP_MAX + 1;
	cr_assert_eq(evr_group_start(&g, &o), -EINVAL);
}

/* Loop i pinned to CPU cpus[i]: it runs there. */
static atomic_int pinned_ok;

static void check_cpu(struct evr_loop *l, void *arg)
{
	(void)arg;
	if (sched_getcpu() == 0 && evr_loop_index(l) == 1)
		atomic_fetch_add(&pinned_ok, 1);
	evr_group_stop(evr_loop_group(l));
}

static int post_check(struct evr_loop *l, unsigned index, void *arg)
{
	(void)arg;
	return index == 1 ? evr_loop_post(l, check_cpu, NULL) : 0;
}

Test(group, loops_run_on_the_cpus_given)
{
	struct evr_group_opts o;
	struct evr_group *g;
	int cpus[] = { 0, 0 };
	cpu_set_t mine;

	/* loop 0 pins the calling thread: do it in a child process */
	evr_group_opts_init(&o);
	o.loop.backend = "epoll";
	o.threads = 2;
	o.cpus = cpus;
	o.ncpus = 2;
	o.setup = post_check;
	cr_assert_eq(sched_getaffinity(0, sizeof(mine), &mine), 0);
	if (!CPU_ISSET(0, &mine))
		cr_skip_test("CPU 0 is not ours");
	cr_assert_eq(evr_group_start(&g, &o), 0);
	cr_assert_eq(evr_group_run(g), 0);
	evr_group_free(g);
	cr_assert_eq(atomic_load(&pinned_ok), 1);
}
