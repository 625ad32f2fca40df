/* SPDX-License-Identifier: MIT */
/*
 * loop.c - the event loop: backend choice, the iteration, stop, signals.
 *
 * One iteration:
 *   flush   start sends for connections with queued bytes; finish closes
 *   refill  restart receives that stopped because the pool ran dry
 *   reap    free connections the kernel no longer refers to
 *   poll    the backend submits, waits (until the next timer) and
 *           dispatches completions to connections and listeners, and
 *           mailbox wake-ups to the messages
 *   mail    messages posted by the loop's own thread, or left over by
 *           a wake-up's budget
 *   timers  run expired timers
 * Every module callback runs inside poll, mail or timers; flush, refill and
 * reap run outside all of them, which is what makes evr_close() safe
 * anywhere.
 *
 * Backends form a preference list (io_uring, then epoll). "auto" takes the
 * first whose probe and init succeed and logs why it refused the others; a
 * forced backend that cannot run is an error.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

static const struct evr__backend *const backends[] = {
	&evr__backend_uring,
	&evr__backend_epoll,
};

#define EVR_BUF_SIZE_MIN  64
#define EVR_BUF_SIZE_MAX  (1u << 20)
#define EVR_BUF_COUNT_MAX 32768 /* buffer ids are 16 bits */

void evr_loop_opts_init(struct evr_loop_opts *o)
{
	memset(o, 0, sizeof(*o));
}

static int opts_resolve(const struct evr_loop_opts *in, struct evr_loop_opts *o)
{
	*o = *in;
	if (!o->backend)
		o->backend = getenv("EVRING_BACKEND");
	if (!o->backend || !*o->backend)
		o->backend = "auto";
	if (!o->disable)
		o->disable = getenv("EVRING_DISABLE");
	if (strcmp(o->backend, "auto") && strcmp(o->backend, "io_uring") &&
	    strcmp(o->backend, "epoll")) {
		evr_log_err("backend \"%s\": unknown (auto, io_uring or epoll)",
			    o->backend);
		return -EINVAL;
	}
	if (!o->buf_size)
		o->buf_size = 16384;
	if (!o->buf_count)
		o->buf_count = 1024;
	if (o->buf_size < EVR_BUF_SIZE_MIN || o->buf_size > EVR_BUF_SIZE_MAX ||
	    o->buf_count > EVR_BUF_COUNT_MAX) {
		evr_log_err("receive pool of %u buffers of %u bytes: out of "
			    "range (%u..%u bytes, at most %u buffers)",
			    o->buf_count, o->buf_size, EVR_BUF_SIZE_MIN,
			    EVR_BUF_SIZE_MAX, EVR_BUF_COUNT_MAX);
		return -EINVAL;
	}
	o->buf_count = evr__pow2_roundup(o->buf_count);
	if (!o->sq_entries)
		o->sq_entries = 256;
	if (!o->cq_entries)
		o->cq_entries = 4 * o->sq_entries;
	if (o->cq_entries < o->sq_entries)
		o->cq_entries = o->sq_entries;
	if (!o->queued_max)
		o->queued_max = 256ULL << 20;
	if (!o->udp_buf_count)
		o->udp_buf_count = 64;
	/* any datagram fits, with the io_uring_recvmsg_out header and the
	 * sender's address in front of it */
	if (!o->udp_buf_size)
		o->udp_buf_size = 65536 + 128;
	if (o->udp_buf_size < 1024 || o->udp_buf_size > (1u << 20) ||
	    o->udp_buf_count > EVR_BUF_COUNT_MAX) {
		evr_log_err("UDP pool of %u buffers of %u bytes: out of range",
			    o->udp_buf_count, o->udp_buf_size);
		return -EINVAL;
	}
	o->udp_buf_count = evr__pow2_roundup(o->udp_buf_count);
	return 0;
}

static int backend_choose(struct evr_loop *l, const struct evr_loop_opts *o)
{
	bool forced = strcmp(o->backend, "auto") != 0;
	char why[sizeof(l->backend_reason)];

	for (size_t i = 0; i < EVR_ARRAY_SIZE(backends); i++) {
		const struct evr__backend *be = backends[i];
		int err;

		if (forced && strcmp(o->backend, be->name))
			continue;
		why[0] = '\0';
		err = be->probe(o, why, sizeof(why));
		if (!err) {
			l->be_ops = be;
			snprintf(l->features, sizeof(l->features),
				 "%s:", be->name);
			err = be->init(l, o);
			if (err < 0) {
				l->be_ops = NULL;
				snprintf(why, sizeof(why), "init: %s",
					 evr__strerror(err));
			}
		}
		if (!err) {
			if (l->backend_reason[0])
				evr_log_info("backend %s (%s)", be->name,
					     l->backend_reason);
			else
				evr_log_debug("backend %s", be->name);
			return 0;
		}
		if (forced) {
			evr_log_err("backend %s cannot run here: %s", be->name,
				    why);
			return -ENOTSUP;
		}
		snprintf(l->backend_reason, sizeof(l->backend_reason),
			 "%s refused: %s", be->name, why);
	}
	evr_log_err("no backend can run here: %s", l->backend_reason);
	return -ENOTSUP;
}

int evr_loop_new(struct evr_loop **out, const struct evr_loop_opts *in)
{
	struct evr_loop_opts def, o;
	struct evr_loop *l;
	int err;

	if (!in) {
		evr_loop_opts_init(&def);
		in = &def;
	}
	err = opts_resolve(in, &o);
	if (err < 0)
		return err;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	evr__list_init(&l->conns);
	evr__list_init(&l->listeners);
	evr__list_init(&l->starved);
	evr__list_init(&l->paused_all);
	evr__list_init(&l->redeliver);
	evr__list_init(&l->udps);
	evr__list_init(&l->udp_starved);
	evr__list_init(&l->watches);
	l->udp_buf_count = o.udp_buf_count;
	l->udp_buf_size = o.udp_buf_size;
	l->flush_tail = &l->flush_head;
	l->queued_max = o.queued_max;
	l->queued_low = o.queued_max / 4 * 3;
	l->max_conns = o.max_conns;
	l->max_per_source = o.max_conns_per_source;
	l->sigfd = l->sigpipe_w = -1;
	l->now = evr__now_ms();
	if (o.disable && strlen(o.disable) + 3 > sizeof(l->disable)) {
		evr_log_err("disable \"%.40s...\": too long", o.disable);
		free(l);
		return -EINVAL;
	}
	snprintf(l->disable, sizeof(l->disable), ",%s,",
		 o.disable ? o.disable : "");
	evr__ratelimits_init(l);
	err = evr__mail_init(l);
	if (err < 0)
		goto out_free;
	err =
	    evr__pool_init(l, &l->pool, EVR__POOL_TCP, o.buf_count, o.buf_size);
	if (err < 0)
		goto out_mail;
	err = backend_choose(l, &o);
	if (err < 0)
		goto out_pool;
	l->send_more = !evr__feature_off(l, "send_more");
	evr__feature_note(l, "send_more", l->send_more);
	evr__feature_note(l, "udp_sendmmsg", true);
	err = l->be_ops->mail_start(l);
	if (err < 0)
		goto out_backend;
	*out = l;
	return 0;

out_backend:
	l->be_ops->fini(l);
out_pool:
	evr__pool_fini(&l->pool);
out_mail:
	evr__mail_fini(l);
out_free:
	free(l);
	return err;
}

static void signals_fini(struct evr_loop *l);

/* Receives wait for buffers and some are free: the next refill pass
 * restarts more of them, so the loop must not sleep meanwhile (no
 * connection with data waiting may wait while free buffers exist). */
static bool refill_pending(const struct evr_loop *l)
{
	return (l->pool.nfree && !evr__list_empty(&l->starved)) ||
	       (l->upool.nfree && !evr__list_empty(&l->udp_starved));
}

/* Children and holds are waited for through a drain, watches and timers
 * only while the loop serves. A loop of a group waits for its mailbox
 * until it is told to stop or drain, whatever it serves; loop 0, where
 * signals are handled, until every other loop has returned too (a second
 * SIGTERM must reach them). */
static bool loop_done(const struct evr_loop *l)
{
	if (!evr__list_empty(&l->conns) || !evr__list_empty(&l->listeners) ||
	    !evr__list_empty(&l->udps) || l->mb.more)
		return false;
	if (l->group && l->index == 0 &&
	    atomic_load_explicit(&l->group->running, memory_order_acquire) > 1)
		return false;
	if ((l->nchildren || l->holds) && !l->stopping)
		return false;
	/* the timer that reports rate-limited events keeps nothing alive:
	 * what it has not reported yet is logged by evr_loop_free() */
	return l->stopping || l->draining ||
	       (l->timers.n == (evr_timer_active(&l->rl_timer) ? 1u : 0u) &&
		l->nwatches == 0 && !l->group);
}

int evr_loop_run(struct evr_loop *l)
{
	int err = 0;

	l->running = true;
	evr__current = l;
	l->now = evr__now_ms();
	for (;;) {
		int64_t timeout;

		evr__conn_flush_all(l);
		evr__udp_flush_all(l);
		evr__conn_resume_all(l);
		evr__conn_redeliver_all(l);
		evr__conn_refill(l);
		evr__udp_refill(l);
		evr__conn_reap(l);
		if (loop_done(l))
			break;
		timeout = evr__timers_next(l);
		if (l->flush_head || refill_pending(l) || l->mb.more)
			timeout = 0;
		else if (timeout > INT32_MAX)
			timeout = INT32_MAX;
		err = l->be_ops->poll(l, (int)timeout);
		if (err < 0)
			break;
		if (l->mb.more)
			evr__mail_run(l);
		evr__timers_run(l);
	}
	l->be_ops->submit(l);
	evr__current = NULL;
	l->running = false;
	return err;
}

static void drain_expired(struct evr_timer *t)
{
	struct evr_loop *l = EVR_CONTAINER_OF(t, struct evr_loop, drain_timer);

	evr_log_warn("drain deadline: closing %llu connections still open",
		     (unsigned long long)l->st.conns_open);
	evr_loop_stop(l);
}

void evr_loop_drain(struct evr_loop *l, uint64_t timeout_ms)
{
	if (l->stopping)
		return;
	if (l->draining) {
		evr_loop_stop(l);
		return;
	}
	l->draining = true;
	evr__listener_drain_all(l);
	evr__udp_close_all(l);
	evr__conn_drain_all(l);
	evr_timer_init(&l->drain_timer, drain_expired);
	evr_timer_start(l, &l->drain_timer, timeout_ms);
}

void evr_loop_stop(struct evr_loop *l)
{
	if (l->stopping)
		return;
	l->stopping = true;
	evr_timer_stop(l, &l->drain_timer);
	evr__listener_close_all(l);
	evr__udp_close_all(l);
	evr__conn_abort_all(l, -ESHUTDOWN);
}

int evr_loop_free(struct evr_loop *l)
{
	if (!l)
		return 0;
	if (l->running)
		return -EBUSY;
	/* messages first: they may refer to what is still open */
	evr__mail_fini(l);
	l->stopping = true; /* no new listener, socket or connection */
	evr__conn_close_all(l);
	evr__ratelimits_flush(l);
	evr__timers_fini(l); /* before the memory its timers live in */
	evr__conn_free_all(l);
	evr__listener_free_all(l);
	evr__udp_free_all(l);
	evr__sources_fini(l);
	if (l->be_ops)
		l->be_ops->fini(l);
	evr__watch_free_all(l); /* after the ring: nothing writes them */
	evr__wq_fini(l);
	evr__pool_fini(&l->upool);
	evr__pool_fini(&l->pool);
	signals_fini(l);
	free(l);
	return 0;
}

void evr_loop_hold(struct evr_loop *l)
{
	l->holds++;
}

void evr_loop_unhold(struct evr_loop *l)
{
	if (l->holds)
		l->holds--;
}

const char *evr_loop_backend(const struct evr_loop *l)
{
	return l->be_ops->name;
}

const char *evr_loop_backend_reason(const struct evr_loop *l)
{
	return l->backend_reason;
}

const char *evr_loop_features(const struct evr_loop *l)
{
	return l->features;
}

bool evr__feature_off(const struct evr_loop *l, const char *name)
{
	char key[40];

	snprintf(key, sizeof(key), ",%s,", name);
	return strstr(l->disable, key) != NULL;
}

void evr__feature_note(struct evr_loop *l, const char *name, bool on)
{
	size_t n = strlen(l->features);

	snprintf(l->features + n, sizeof(l->features) - n, " %s%s",
		 on ? "" : "-", name);
}

uint64_t evr_loop_now(const struct evr_loop *l)
{
	return l->now;
}

void evr_loop_stats(const struct evr_loop *l, struct evr_stats *st)
{
	*st = l->st;
	st->bufs_total = l->pool.count;
	st->bufs_free = l->pool.nfree;
	st->bufs_heap = l->pool.heap_live;
	st->udp_bufs_total = l->upool.count;
	st->udp_bufs_free = l->upool.nfree;
}

/* ---- signals ----
 *
 * A handler installed with sigaction writes the signal's number into the
 * loop's pipe (the self-pipe trick, as in libuv); the backend watches the
 * pipe's read end like any descriptor, so callbacks run on the loop thread.
 * Unlike signalfd this needs no mask kept blocked in every thread, and it
 * works under valgrind.
 */

static volatile int sig_pipe[EVR__NSIG] = { [0 ... EVR__NSIG - 1] = -1 };

static void on_signal_raw(int signo)
{
	int saved = errno;
	unsigned char b = (unsigned char)signo;
	int fd = sig_pipe[signo];

	/* a full pipe already holds a wake-up: dropping this one is fine */
	if (fd >= 0 && write(fd, &b, 1) < 0)
		(void)0;
	errno = saved;
}

int evr_signal_add(struct evr_loop *l, int signo, evr_signal_cb cb, void *arg)
{
	struct sigaction sa;
	int p[2], err;

	if (signo <= 0 || signo >= EVR__NSIG || !cb)
		return -EINVAL;
	if (l->sigfd < 0) {
		if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
			return -errno;
		l->sigfd = p[0];
		l->sigpipe_w = p[1];
		err = l->be_ops->signal_start(l);
		if (err < 0) {
			close(p[0]);
			close(p[1]);
			l->sigfd = l->sigpipe_w = -1;
			return err;
		}
	}
	l->sig[signo].cb = cb;
	l->sig[signo].arg = arg;
	sig_pipe[signo] = l->sigpipe_w;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal_raw;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask);
	if (sigaction(signo, &sa, NULL) < 0) {
		err = -errno;
		sig_pipe[signo] = -1;
		l->sig[signo].cb = NULL;
		return err;
	}
	return 0;
}

/* Loop teardown: the signals it took go back to their default action. */
static void signals_fini(struct evr_loop *l)
{
	for (int s = 1; s < EVR__NSIG; s++) {
		if (!l->sig[s].cb || sig_pipe[s] != l->sigpipe_w)
			continue;
		signal(s, SIG_DFL);
		sig_pipe[s] = -1;
	}
	if (l->sigfd >= 0) {
		close(l->sigfd);
		close(l->sigpipe_w);
	}
}

void evr__signal_dispatch(struct evr_loop *l)
{
	unsigned char b[64];
	ssize_t n;

	for (;;) {
		n = read(l->sigfd, b, sizeof(b));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		for (ssize_t i = 0; i < n; i++)
			if (b[i] < EVR__NSIG && l->sig[b[i]].cb)
				l->sig[b[i]].cb(l, b[i], l->sig[b[i]].arg);
	}
}
