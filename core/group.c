/* SPDX-License-Identifier: MIT */
/*
 * group.c - loop groups: N loops, one per thread, sharing nothing.
 *
 * Start: loop 0 is made on the calling thread, the others each on a
 * thread of the group; setups run one after another in index order (loop
 * i may use what loop i-1 bound), then every member waits for the word to
 * run. The group's mutex and condition variable serve only this start and
 * the end; nothing takes them while the loops serve.
 *
 * The end, on every member's thread once its loop has returned:
 *   1. wait until every loop has returned: until then a loop may post to
 *      any other, which must still take messages;
 *   2. close its mailbox: run what is queued, refuse what comes later;
 *   3. wait until every mailbox is closed: until then a message being run
 *      may post to any loop, whose memory must still be there;
 *   4. run the program's fini, then free its loop (on its own thread:
 *      rings are SINGLE_ISSUER).
 * A start that fails goes through the same steps, without running.
 *
 * Threads of the group block every signal, so that signals reach the
 * thread of loop 0, the one place that handles them (evr_signal_add on
 * loop 0); stop and drain reach the others through their mailboxes.
 */
#include "internal.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

void evr_group_opts_init(struct evr_group_opts *o)
{
	memset(o, 0, sizeof(*o));
	evr_loop_opts_init(&o->loop);
}

static unsigned cpus_allowed(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 1;
	n = CPU_COUNT(&set);
	return n > 0 ? (unsigned)n : 1;
}

static int pin(const struct evr_group *g, unsigned index)
{
	cpu_set_t set;
	int cpu, err;

	if (!g->cpus)
		return 0;
	cpu = g->cpus[index % g->o.ncpus];
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (err) {
		evr_log_err("loop %u: pin to CPU %d: %s", index, cpu,
			    evr__strerror(err));
		return -err;
	}
	return 0;
}

/* ---- start ---- */

/* Make member m's loop and set it up: 0 or -errno (the loop, if made,
 * stays in m->l to be freed by the end steps). */
static int member_start(struct evr__gmember *m)
{
	struct evr_group *g = m->g;
	struct evr_loop *l;
	int err;

	err = pin(g, m->index);
	if (err < 0)
		return err;
	err = evr_loop_new(&l, &g->o.loop);
	if (err < 0) {
		if (err != -ENOTSUP && err != -EINVAL)
			evr_log_err("loop %u: %s", m->index,
				    evr__strerror(err));
		return err;
	}
	l->group = g;
	l->index = m->index;
	pthread_mutex_lock(&g->mu);
	if (g->abort) {
		/* another failed meanwhile; no one has seen this loop */
		pthread_mutex_unlock(&g->mu);
		evr_loop_free(l);
		return -ECANCELED;
	}
	m->l = l;
	g->nloops++;
	pthread_mutex_unlock(&g->mu);
	return g->o.setup(l, m->index, g->o.arg);
}

/* Record m's start: the next member may set up, or every member gives
 * up. */
static void start_done(struct evr__gmember *m, int err)
{
	struct evr_group *g = m->g;

	pthread_mutex_lock(&g->mu);
	if (err < 0) {
		if (!g->start_err)
			g->start_err = err;
		g->abort = true;
	} else {
		g->started++;
	}
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

/* ---- the end ---- */

static void wait_all(struct evr_group *g, unsigned *count)
{
	(*count)++;
	pthread_cond_broadcast(&g->cv);
	while (*count < g->nloops)
		pthread_cond_wait(&g->cv, &g->mu);
}

/* Steps 1-4 (see the top of the file) for member m, run or not. */
static void member_end(struct evr__gmember *m, int err)
{
	struct evr_group *g = m->g;
	struct evr_loop *l = m->l;

	if (!l)
		return;
	pthread_mutex_lock(&g->mu);
	if (err < 0 && !g->run_err)
		g->run_err = err;
	wait_all(g, &g->ran);
	pthread_mutex_unlock(&g->mu);
	evr__mail_fini(l);
	evr_loop_stats(l, &m->final);
	pthread_mutex_lock(&g->mu);
	wait_all(g, &g->closed);
	g->freeing = true;
	m->l = NULL;
	pthread_mutex_unlock(&g->mu);
	if (g->o.fini)
		g->o.fini(l, m->index, g->o.arg);
	evr_loop_free(l);
}

static void nothing(struct evr_loop *l, void *arg)
{
	(void)l, (void)arg; /* loop 0 looks again whether it is done */
}

/* Run loop l of the group: a loop whose run fails stops the others; the
 * last but loop 0 to return wakes loop 0, which waited for it. */
static int member_run(struct evr__gmember *m)
{
	struct evr_group *g = m->g;
	int err = evr_loop_run(m->l);

	if (err < 0) {
		evr_log_err("loop %u: %s; stopping every loop", m->index,
			    evr__strerror(err));
		evr_group_stop(g);
	}
	if (atomic_fetch_sub_explicit(&g->running, 1, memory_order_acq_rel) ==
		2 &&
	    m->index != 0)
		evr_loop_post(g->m[0].l, nothing, NULL);
	return err;
}

static void *member_main(void *arg)
{
	struct evr__gmember *m = arg;
	struct evr_group *g = m->g;
	bool go;
	int err;

	/* set up after the member before us */
	pthread_mutex_lock(&g->mu);
	while (!g->abort && g->started < m->index)
		pthread_cond_wait(&g->cv, &g->mu);
	go = !g->abort;
	pthread_mutex_unlock(&g->mu);
	if (!go)
		return NULL;
	err = member_start(m);
	start_done(m, err);
	pthread_mutex_lock(&g->mu);
	while (!g->go && !g->abort)
		pthread_cond_wait(&g->cv, &g->mu);
	go = g->go && !err;
	pthread_mutex_unlock(&g->mu);
	member_end(m, go ? member_run(m) : 0);
	return NULL;
}

static int spawn(struct evr__gmember *m)
{
	sigset_t all, old;
	int err;

	/* the thread starts with every signal blocked: they are loop 0's */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&m->th, NULL, member_main, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		evr_log_err("loop %u: pthread_create: %s", m->index,
			    evr__strerror(err));
		return -err;
	}
	m->thread = true;
	return 0;
}

static void join_all(struct evr_group *g)
{
	if (g->joined)
		return;
	for (unsigned i = 1; i < g->n; i++)
		if (g->m[i].thread)
			pthread_join(g->m[i].th, NULL);
	g->joined = true;
	g->ended = true;
}

static int opts_check(const struct evr_group_opts *o, unsigned *n)
{
	*n = o->threads ? o->threads : cpus_allowed();
	if (!o->setup) {
		evr_log_err("loop group: no setup function");
		return -EINVAL;
	}
	if (*n > EVR_GROUP_MAX) {
		evr_log_err("loop group: %u threads: at most %d", *n,
			    EVR_GROUP_MAX);
		return -EINVAL;
	}
	for (unsigned i = 0; o->cpus && i < o->ncpus; i++) {
		if (o->cpus[i] < 0 || o->cpus[i] >= CPU_SETSIZE) {
			evr_log_err("loop group: CPU %d out of range (0..%d)",
				    o->cpus[i], CPU_SETSIZE - 1);
			return -EINVAL;
		}
	}
	if (o->cpus && !o->ncpus) {
		evr_log_err("loop group: an empty CPU list");
		return -EINVAL;
	}
	return 0;
}

static void group_release(struct evr_group *g);

static struct evr_group *group_alloc(const struct evr_group_opts *o, unsigned n)
{
	struct evr_group *g = calloc(1, sizeof(*g) + n * sizeof(g->m[0]));

	if (!g)
		return NULL;
	g->n = n;
	g->o = *o;
	if (o->cpus) {
		g->cpus = malloc(o->ncpus * sizeof(*g->cpus));
		if (!g->cpus) {
			free(g);
			return NULL;
		}
		memcpy(g->cpus, o->cpus, o->ncpus * sizeof(*g->cpus));
	}
	g->o.cpus = g->cpus;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	atomic_init(&g->conns, 0);
	atomic_init(&g->running, 0);
	g->seed = evr__random_seed(g);
	if (evr__group_share_init(g) < 0) {
		group_release(g);
		return NULL;
	}
	for (unsigned i = 0; i < n; i++) {
		g->m[i].g = g;
		g->m[i].index = i;
	}
	return g;
}

static void group_release(struct evr_group *g)
{
	evr__group_share_fini(g);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g->cpus);
	free(g);
}

int evr_group_start(struct evr_group **out, const struct evr_group_opts *o)
{
	struct evr_group *g;
	unsigned n;
	int err;

	err = opts_check(o, &n);
	if (err < 0)
		return err;
	g = group_alloc(o, n);
	if (!g)
		return -ENOMEM;
	err = member_start(&g->m[0]);
	start_done(&g->m[0], err);
	for (unsigned i = 1; !err && i < n; i++) {
		err = spawn(&g->m[i]);
		if (err < 0)
			start_done(&g->m[i], err);
	}
	pthread_mutex_lock(&g->mu);
	while (!g->abort && g->started < n)
		pthread_cond_wait(&g->cv, &g->mu);
	err = g->start_err;
	pthread_mutex_unlock(&g->mu);
	if (err < 0) {
		member_end(&g->m[0], 0);
		join_all(g);
		group_release(g);
		return err;
	}
	*out = g;
	return 0;
}

int evr_group_run(struct evr_group *g)
{
	if (g->ended)
		return -EINVAL;
	atomic_store(&g->running, g->n);
	pthread_mutex_lock(&g->mu);
	g->go = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	member_end(&g->m[0], member_run(&g->m[0]));
	join_all(g);
	return g->run_err;
}

void evr_group_free(struct evr_group *g)
{
	if (!g)
		return;
	if (!g->ended) {
		/* started, never run: every member ends without running */
		pthread_mutex_lock(&g->mu);
		g->abort = true;
		pthread_cond_broadcast(&g->cv);
		pthread_mutex_unlock(&g->mu);
		member_end(&g->m[0], 0);
		join_all(g);
	}
	group_release(g);
}

/* ---- stop, drain: through the mailboxes ---- */

static void stop_msg(struct evr_loop *l, void *arg)
{
	(void)arg;
	evr_loop_stop(l);
}

static void drain_msg(struct evr_loop *l, void *arg)
{
	evr_loop_drain(l, (uint64_t)(uintptr_t)arg);
}

/* Post fn to every loop still taking messages. */
static void post_all(struct evr_group *g, evr_post_fn fn, void *arg)
{
	pthread_mutex_lock(&g->mu);
	for (unsigned i = 0; !g->freeing && i < g->n; i++)
		if (g->m[i].l)
			evr_loop_post(g->m[i].l, fn, arg);
	pthread_mutex_unlock(&g->mu);
}

void evr_group_stop(struct evr_group *g)
{
	post_all(g, stop_msg, NULL);
}

void evr_group_drain(struct evr_group *g, uint64_t timeout_ms)
{
	if (timeout_ms > UINTPTR_MAX)
		timeout_ms = UINTPTR_MAX;
	post_all(g, drain_msg, (void *)(uintptr_t)timeout_ms);
}

unsigned evr_group_size(const struct evr_group *g)
{
	return g->n;
}

struct evr_loop *evr_group_loop(const struct evr_group *g, unsigned i)
{
	return i < g->n ? g->m[i].l : NULL;
}

struct evr_group *evr_loop_group(const struct evr_loop *l)
{
	return l->group;
}

unsigned evr_loop_index(const struct evr_loop *l)
{
	return l->index;
}

/* ---- counters of every loop ---- */

struct stats_req {
	struct evr_group *g;
	struct evr_loop *home;
	evr_group_stats_cb cb;
	void *arg;
	atomic_uint left;
	struct evr_stats st[];
};

void evr_stats_add(struct evr_stats *sum, const struct evr_stats *st)
{
#define EVR__STATS_SUM(name, type, help) sum->name += st->name;
	EVR_STATS(EVR__STATS_SUM)
#undef EVR__STATS_SUM
}

static void stats_deliver(struct stats_req *r)
{
	struct evr_stats total;

	memset(&total, 0, sizeof(total));
	for (unsigned i = 0; i < r->g->n; i++)
		evr_stats_add(&total, &r->st[i]);
	r->cb(r->st, r->g->n, &total, r->arg);
	free(r);
}

static void stats_home(struct evr_loop *l, void *arg)
{
	(void)l;
	stats_deliver(arg);
}

/* One loop's part is in: the last one hands them all over at home. */
static void stats_one_done(struct stats_req *r)
{
	if (atomic_fetch_sub_explicit(&r->left, 1, memory_order_acq_rel) != 1)
		return;
	if (evr__current == r->home)
		stats_deliver(r);
	else if (evr_loop_post(r->home, stats_home, r) < 0)
		free(r); /* home is closing: no one to tell */
}

static void stats_fill(struct evr_loop *l, void *arg)
{
	struct stats_req *r = arg;

	evr_loop_stats(l, &r->st[l->index]);
	stats_one_done(r);
}

int evr_group_stats(struct evr_group *g, struct evr_loop *home,
		    evr_group_stats_cb cb, void *arg)
{
	struct stats_req *r;
	unsigned refused = 0;

	r = calloc(1, sizeof(*r) + g->n * sizeof(r->st[0]));
	if (!r)
		return -ENOMEM;
	r->g = g;
	r->home = home;
	r->cb = cb;
	r->arg = arg;
	if (g->ended) {
		for (unsigned i = 0; i < g->n; i++)
			r->st[i] = g->m[i].final;
		stats_deliver(r);
		return 0;
	}
	if (!home || home->group != g) {
		free(r);
		return -EINVAL;
	}
	atomic_init(&r->left, g->n);
	pthread_mutex_lock(&g->mu);
	for (unsigned i = 0; i < g->n; i++)
		/* a loop that no longer takes messages counts as zero */
		if (g->freeing || !g->m[i].l ||
		    evr_loop_post(g->m[i].l, stats_fill, r) < 0)
			refused++;
	pthread_mutex_unlock(&g->mu);
	/* outside the lock: the last one may run cb, which may stop */
	while (refused--)
		stats_one_done(r);
	return 0;
}
