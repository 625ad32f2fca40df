/* SPDX-License-Identifier: MIT */
/*
 * mailbox.c - messages to a loop from any thread (evr_loop_post).
 *
 * Each loop has a queue of messages (struct evr__mailbox, internal.h): an
 * intrusive multi-producer, single-consumer queue after Dmitry Vyukov. A
 * sender exchanges the queue's tail for its node, then links the old tail
 * to it; the loop takes nodes from the head with plain loads and stores. A
 * sender caught between its two steps leaves a gap the loop cannot see past
 * yet; the loop stops there, and that sender's own wake-up, which comes
 * after its link, brings the loop back.
 *
 * Wake-ups are coalesced by one flag: a sender that sets it (it was clear)
 * wakes the loop; the others rely on that wake-up. The loop clears the flag
 * with an atomic exchange before it takes messages, so a sender that found
 * the flag set has its message seen by the run after that exchange. A
 * wake-up is an IORING_OP_MSG_RING from the sender's ring when both loops
 * of a group run io_uring (it leaves with the sender's next submission: no
 * system call of its own), else a write to the loop's eventfd, which the
 * backend watches. A loop that posts to itself only notes that messages
 * wait.
 *
 * Closing (evr_loop_free): the loop sets `closed`, waits until no post is
 * under way (`senders`, a Dekker handshake: a sender counts itself in, then
 * looks at `closed`; the loop sets `closed`, then looks at `senders`), and
 * runs what is queued. A post either went in before that and runs, or is
 * refused with -ESHUTDOWN: none is lost, none runs after the free.
 *
 * Nodes come from a small cache of the sending thread's loop (refilled by
 * the messages it runs), else from malloc; the loop that runs a message
 * keeps its node for its own posts.
 */
#include "internal.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAIL_BUDGET    1024 /* messages per run: then I/O gets its turn */
#define MAIL_CACHE_MAX 1024 /* free nodes a loop keeps */

_Thread_local struct evr_loop *evr__current;

int evr__mail_init(struct evr_loop *l)
{
	struct evr__mailbox *mb = &l->mb;

	mb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (mb->efd < 0)
		return -errno;
	atomic_init(&mb->stub.next, NULL);
	mb->head = &mb->stub;
	atomic_init(&mb->tail, &mb->stub);
	atomic_init(&mb->senders, 0);
	atomic_init(&mb->closed, false);
	atomic_init(&mb->wake, false);
	mb->eventfd_only = evr__feature_off(l, "msg_ring");
	return 0;
}

static void push(struct evr__mailbox *mb, struct evr__msg *m)
{
	struct evr__msg *prev;

	atomic_store_explicit(&m->next, NULL, memory_order_relaxed);
	prev = atomic_exchange_explicit(&mb->tail, m, memory_order_acq_rel);
	/* the gap: until this store the loop cannot reach m */
	atomic_store_explicit(&prev->next, m, memory_order_release);
}

/* The next message, or NULL when there is none or a sender is between
 * its two steps (it wakes the loop once it has linked its node). */
static struct evr__msg *pop(struct evr__mailbox *mb)
{
	struct evr__msg *head = mb->head, *next, *tail;

	next = atomic_load_explicit(&head->next, memory_order_acquire);
	if (head == &mb->stub) {
		if (!next)
			return NULL;
		mb->head = head = next;
		next = atomic_load_explicit(&head->next, memory_order_acquire);
	}
	if (next) {
		mb->head = next;
		return head;
	}
	tail = atomic_load_explicit(&mb->tail, memory_order_acquire);
	if (head != tail)
		return NULL; /* the gap */
	/* head is the last node: put the stub behind it to take it */
	push(mb, &mb->stub);
	next = atomic_load_explicit(&head->next, memory_order_acquire);
	if (next) {
		mb->head = next;
		return head;
	}
	return NULL;
}

static void node_free(struct evr_loop *l, struct evr__msg *m)
{
	struct evr__mailbox *mb = &l->mb;

	if (mb->ncache < MAIL_CACHE_MAX) {
		atomic_store_explicit(&m->next, mb->cache,
				      memory_order_relaxed);
		mb->cache = m;
		mb->ncache++;
		return;
	}
	free(m);
}

static struct evr__msg *node_alloc(void)
{
	struct evr_loop *cur = evr__current;
	struct evr__msg *m;

	if (cur && cur->mb.cache) {
		m = cur->mb.cache;
		cur->mb.cache =
		    atomic_load_explicit(&m->next, memory_order_relaxed);
		cur->mb.ncache--;
		return m;
	}
	return malloc(sizeof(*m));
}

/* Run up to budget messages; l->mb.more says whether some were left. */
static void run_some(struct evr_loop *l, uint32_t budget)
{
	struct evr__msg *m;

	while (budget-- && (m = pop(&l->mb))) {
		evr_post_fn fn = m->fn;
		void *arg = m->arg;

		node_free(l, m);
		l->st.mail_rx++;
		fn(l, arg);
	}
	if (budget == UINT32_MAX)
		l->mb.more = true; /* the budget ran out first */
}

void evr__mail_run(struct evr_loop *l)
{
	l->mb.more = false;
	run_some(l, MAIL_BUDGET);
}

void evr__mail_wakeup(struct evr_loop *l, bool efd)
{
	uint64_t v;

	l->st.mail_wakes++;
	if (efd) {
		while (read(l->mb.efd, &v, sizeof(v)) < 0 && errno == EINTR)
			;
	} else {
		l->st.mail_msgring++;
	}
	/* before taking messages: a sender that still finds the flag set
	 * linked its node before this exchange */
	atomic_exchange_explicit(&l->mb.wake, false, memory_order_acq_rel);
	evr__mail_run(l);
}

void evr__mail_kick(struct evr_loop *to)
{
	uint64_t one = 1;

	while (write(to->mb.efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void wake(struct evr_loop *to)
{
	struct evr_loop *cur = evr__current;

	if (cur == to) {
		to->mb.more = true; /* our own loop: its next iteration */
		return;
	}
	if (atomic_exchange_explicit(&to->mb.wake, true, memory_order_acq_rel))
		return; /* a wake-up is on its way already */
	/* MSG_RING only within a group: the group keeps the target alive
	 * until the ring has let go of the request */
	if (cur && to->mb.msgring && to->group && cur->group == to->group &&
	    cur->be_ops->mail_wake(cur, to) == 0)
		return;
	evr__mail_kick(to);
}

int evr_loop_post(struct evr_loop *target, evr_post_fn fn, void *arg)
{
	struct evr__mailbox *mb = &target->mb;
	struct evr__msg *m;

	if (!fn)
		return -EINVAL;
	m = node_alloc();
	if (!m)
		return -ENOMEM;
	m->fn = fn;
	m->arg = arg;
	atomic_fetch_add_explicit(&mb->senders, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&mb->closed, memory_order_seq_cst)) {
		atomic_fetch_sub_explicit(&mb->senders, 1,
					  memory_order_release);
		free(m);
		return -ESHUTDOWN;
	}
	push(mb, m);
	wake(target);
	atomic_fetch_sub_explicit(&mb->senders, 1, memory_order_release);
	return 0;
}

void evr__mail_fini(struct evr_loop *l)
{
	struct evr__mailbox *mb = &l->mb;
	struct evr__msg *m;

	if (mb->efd < 0)
		return;
	atomic_store_explicit(&mb->closed, true, memory_order_seq_cst);
	while (atomic_load_explicit(&mb->senders, memory_order_seq_cst))
		sched_yield(); /* a post under way: a few instructions */
	/* no gap is left: every node is linked */
	run_some(l, UINT32_MAX - 1);
	while ((m = mb->cache)) {
		mb->cache =
		    atomic_load_explicit(&m->next, memory_order_relaxed);
		free(m);
	}
	mb->ncache = 0;
	close(mb->efd);
	mb->efd = -1;
}
