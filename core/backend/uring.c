/* SPDX-License-Identifier: MIT */
/*
 * backend_uring.c - the io_uring backend.
 *
 * Needs kernel 6.0 (multishot receive, provided-buffer rings, multishot
 * accept); uses SINGLE_ISSUER|DEFER_TASKRUN (6.1) where the kernel has it.
 * Whether this kernel can run it is found by probing: a throwaway ring, its
 * features, the opcodes, a provided-buffer ring and a multishot receive on
 * a socketpair. Headers only tell what liburing knew when it was built.
 *
 * Requests carry their owner in user_data: a pointer to a connection,
 * listener or loop (all 16-byte aligned) with the operation in the low four
 * bits. Completions are dispatched through a table indexed by operation.
 *
 * Receiving: one multishot receive per connection selects buffers from the
 * provided-buffer ring that holds a window of the free pool buffers (group
 * 0; see struct buf_ring). Where the kernel has receive bundles (6.10) one
 * completion may fill several buffers, the ring's next ones in order; each
 * is delivered on its own (see struct recv_walk). When the ring is empty
 * the receive ends with -ENOBUFS, the data stays in the socket, and the
 * connection waits on the loop's starved list until buffers return.
 * A multishot request that ends for any other reason (no IORING_CQE_F_MORE)
 * is armed again unless the connection is closing.
 *
 * Sending: one send (or sendmsg over up to SEND_IOV queued slices) in flight
 * per connection. Cancels and closes carry no owner and, where the kernel
 * allows, post no completion on success.
 */
#include "internal.h"
#include "uring_compat.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3 /* waitid(2) by pidfd, kernel 5.4 */
#endif

#define BGID	      0
#define SEND_IOV      64
#define CTX_CACHE_MAX 256

enum uring_op {
	OP_IGNORE,   /* no owner: cancel, close */
	OP_ACCEPT,   /* listener */
	OP_RECV,     /* connection */
	OP_SEND,     /* connection */
	OP_SIGNAL,   /* loop: the signal pipe is readable */
	OP_CONNECT,  /* connection */
	OP_URECV,    /* UDP socket: multishot recvmsg */
	OP_WATCH,    /* evr__watch: a poll, or a child's WAITID */
	OP_MAIL,     /* a MSG_RING wake-up from another loop (no owner) */
	OP_MAILFD,   /* loop: the mailbox's eventfd is readable */
	OP_MAILSENT, /* target loop: a MSG_RING we sent failed */
	OP__COUNT,
};
_Static_assert(OP__COUNT <= 16, "operations must fit in four bits");

#define TAG_MASK 15ULL

struct send_ctx {
	struct send_ctx *next;
	struct msghdr msg;
	struct iovec iov[SEND_IOV];
};

/*
 * The provided-buffer ring of one pool (group = the pool's index).
 *
 * The kernel takes buffers from the ring's head and returned ones go to its
 * tail: with every free buffer in the ring, a buffer comes back into use
 * only after all the others have, and a busy loop sweeps the whole pool
 * (16 MiB by default) through the CPU's caches. So the ring holds a window
 * of the free buffers, sized to what the loop takes between two polls; the
 * rest wait on the pool's free list, most recently used first, and top the
 * window up before each submission. A receive that found the ring empty
 * (-ENOBUFS) doubles the window; every WINDOW_EPOCH polls it shrinks back
 * towards twice the most taken between two polls in that time.
 */
struct buf_ring {
	struct io_uring_buf_ring *br;
	unsigned entries;
	unsigned mask;
	unsigned pending; /* buffers added but not yet published */
	unsigned held;	  /* buffers in the ring, published or not */
	unsigned window;  /* how many the ring should hold */
	unsigned taken;	  /* taken by the kernel since the last poll */
	unsigned peak;	  /* most taken between two polls, this epoch */
	unsigned polls;	  /* polls into this epoch */
	bool nobufs;	  /* a receive found the ring empty */
	bool fixed;	  /* "buf_window" off: every free buffer in the ring */
	/* Bundles: the ring position (tail + pending, 16 bits as the kernel
	 * counts) each buffer was last added at; NULL without bundles. */
	uint16_t *pos;
};

#define WINDOW_MIN   64
#define WINDOW_EPOCH 256

/* Contexts of requests in flight, kept for reuse (at most CTX_CACHE_MAX):
 * objects whose first member is the link. */
struct obj_cache {
	void *head;
	unsigned n;
};

static void *cache_get(struct obj_cache *c, size_t size)
{
	void **o = c->head;

	if (!o)
		return malloc(size);
	c->head = *o;
	c->n--;
	return o;
}

static void cache_put(struct obj_cache *c, void *o)
{
	if (c->n >= CTX_CACHE_MAX) {
		free(o);
		return;
	}
	*(void **)o = c->head;
	c->head = o;
	c->n++;
}

static void cache_fini(struct obj_cache *c)
{
	while (c->head) {
		void **o = c->head;

		c->head = *o;
		free(o);
	}
	c->n = 0;
}

struct uring_be {
	struct io_uring ring;
	struct buf_ring rings[2];
	unsigned setup_flags;
	unsigned skip_flag; /* IOSQE_CQE_SKIP_SUCCESS where supported */
	unsigned cq_batch;  /* max completions dispatched per poll */
	struct obj_cache send_ctxs;
	bool waitid; /* children: IORING_OP_WAITID (else a poll) */
	bool bundle; /* TCP receives fill several buffers (recv_bundle) */
};

static inline struct uring_be *U(struct evr_loop *l)
{
	return l->be;
}

static inline uint64_t tag(const void *p, enum uring_op op)
{
	return (uint64_t)(uintptr_t)p | op;
}

/* ---- probe ---- */

static void explain_setup(int err, char *why, size_t n)
{
	const char *hint = "";

	switch (-err) {
	case ENOSYS:
		hint = " (kernel without io_uring, or blocked by seccomp)";
		break;
	case EPERM:
		hint = " (kernel.io_uring_disabled, or blocked by seccomp)";
		break;
	case ENOMEM:
		hint = " (RLIMIT_MEMLOCK too low for the ring)";
		break;
	}
	snprintf(why, n, "io_uring_setup: %s%s", evr__strerror(err), hint);
}

static int probe_opcodes(struct io_uring *ring, char *why, size_t n)
{
	static const struct {
		int op;
		const char *name;
	} need[] = {
		{ IORING_OP_ACCEPT, "ACCEPT" },
		{ IORING_OP_RECV, "RECV" },
		{ IORING_OP_SEND, "SEND" },
		{ IORING_OP_SENDMSG, "SENDMSG" },
		{ IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL" },
		{ IORING_OP_CLOSE, "CLOSE" },
		{ IORING_OP_POLL_ADD, "POLL_ADD" },
		{ IORING_OP_CONNECT, "CONNECT" },
		{ IORING_OP_RECVMSG, "RECVMSG" },
	};
	struct io_uring_probe *p = io_uring_get_probe_ring(ring);

	if (!p) {
		snprintf(why, n, "IORING_REGISTER_PROBE failed");
		return -ENOTSUP;
	}
	for (size_t i = 0; i < EVR_ARRAY_SIZE(need); i++) {
		if (!io_uring_opcode_supported(p, need[i].op)) {
			snprintf(why, n, "opcode IORING_OP_%s not supported",
				 need[i].name);
			io_uring_free_probe(p);
			return -ENOTSUP;
		}
	}
	io_uring_free_probe(p);
	return 0;
}

/* Arm a multishot receive with buffer selection on a socketpair and see one
 * byte arrive through it, the request still armed afterwards. */
static int probe_multishot_recv(struct io_uring *ring, char *why, size_t n)
{
	struct io_uring_buf_ring *br;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	char buf[16];
	int sv[2], err, ret = -ENOTSUP;

	br = evr__buf_ring_setup(ring, 1, BGID, &err);
	if (!br) {
		snprintf(why, n, "provided buffer ring (5.19): %s",
			 evr__strerror(err));
		return -ENOTSUP;
	}
	io_uring_buf_ring_add(br, buf, sizeof(buf), 0, 0, 0);
	io_uring_buf_ring_advance(br, 1);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(why, n, "socketpair: %s", strerror(errno));
		goto out_ring;
	}
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_recv(sqe, sv[0], NULL, 0, 0);
	sqe->ioprio |= EVR_IORING_RECV_MULTISHOT;
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	sqe->user_data = 1;
	if (write(sv[1], "x", 1) != 1 ||
	    io_uring_submit_and_wait(ring, 1) < 0 ||
	    io_uring_peek_cqe(ring, &cqe) < 0) {
		snprintf(why, n, "multishot receive probe did not complete");
		goto out_sock;
	}
	if (cqe->res == 1 && (cqe->flags & EVR_IORING_CQE_F_BUFFER) &&
	    (cqe->flags & EVR_IORING_CQE_F_MORE))
		ret = 0;
	else if (cqe->res < 0)
		snprintf(why, n, "multishot receive (6.0): %s",
			 evr__strerror(cqe->res));
	else
		snprintf(why, n, "multishot receive (6.0) not supported");
	io_uring_cqe_seen(ring, cqe);
out_sock:
	close(sv[0]);
	close(sv[1]);
out_ring:
	evr__buf_ring_free(ring, br, 1, BGID);
	return ret;
}

/*
 * Receive bundles (6.10): does a multishot receive on a throwaway ring,
 * over a TCP connection on loopback, put 40 waiting bytes into 16-byte
 * buffers in order, at least one completion filling more than one buffer,
 * every byte where struct recv_walk would look for it? TCP, because the
 * kernel sizes a bundle by the bytes the socket said were waiting, which
 * AF_UNIX says only from 6.17. Kernels 6.13.11 to 6.14.8 could hand a
 * bundle's buffers out of order (fixed in 6.14.9): refused by version.
 * Found out once per process.
 */
static bool bundle_works;
static pthread_once_t bundle_once = PTHREAD_ONCE_INIT;

static bool bundle_kernel_ok(void)
{
	struct utsname u;
	unsigned major, minor, patch = 0, v;

	if (uname(&u) < 0 ||
	    sscanf(u.release, "%u.%u.%u", &major, &minor, &patch) < 2)
		return false;
	v = EVR_KVER(major, minor, patch < 255 ? patch : 255);
	return v < EVR_KVER(6, 13, 11) || v >= EVR_KVER(6, 14, 9);
}

/* A connected TCP pair on 127.0.0.1: sv[0] accepted, sv[1] connected. */
static int tcp_pair(int sv[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sv[0] = sv[1] = -1;
	if (ls < 0)
		return -1;
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    listen(ls, 1) == 0 &&
	    getsockname(ls, (struct sockaddr *)&a, &alen) == 0 &&
	    (sv[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0 &&
	    connect(sv[1], (struct sockaddr *)&a, sizeof(a)) == 0)
		sv[0] = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	close(ls);
	if (sv[0] >= 0)
		return 0;
	if (sv[1] >= 0)
		close(sv[1]);
	return -1;
}

static void bundle_probe(void)
{
	struct __kernel_timespec ts = { .tv_nsec = 100 * 1000 * 1000 };
	struct io_uring_params p;
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	char buf[4][16], msg[40];
	unsigned got = 0, next = 0;
	bool multi = false, ok = true;
	int sv[2], err;

	if (!bundle_kernel_ok())
		return;
	memset(&p, 0, sizeof(p));
	if (io_uring_queue_init_params(4, &ring, &p) < 0)
		return;
	if (!(p.features & EVR_IORING_FEAT_RECVSEND_BUNDLE))
		goto out_ring;
	br = evr__buf_ring_setup(&ring, 4, BGID, &err);
	if (!br)
		goto out_ring;
	memset(buf, 0, sizeof(buf));
	for (int i = 0; i < 4; i++)
		io_uring_buf_ring_add(br, buf[i], sizeof(buf[i]),
				      (unsigned short)i, 3, i);
	io_uring_buf_ring_advance(br, 4);
	if (tcp_pair(sv) < 0)
		goto out_br;
	for (unsigned i = 0; i < sizeof(msg); i++)
		msg[i] = (char)('a' + i % 26);
	if (write(sv[1], msg, sizeof(msg)) != (ssize_t)sizeof(msg))
		goto out_sock;
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_recv(sqe, sv[0], NULL, 0, 0);
	sqe->ioprio |= EVR_IORING_RECV_MULTISHOT | EVR_IORING_RECVSEND_BUNDLE;
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	if (io_uring_submit(&ring) != 1)
		goto out_sock;
	/* each completion starts at a fresh buffer, the one after the last
	 * one the completion before it filled */
	while (ok && got < sizeof(msg) &&
	       io_uring_wait_cqe_timeout(&ring, &cqe, &ts) == 0) {
		int res = cqe->res;
		unsigned flags = cqe->flags;

		io_uring_cqe_seen(&ring, cqe);
		ok = res > 0 && (unsigned)res <= sizeof(msg) - got &&
		     (flags & EVR_IORING_CQE_F_BUFFER) &&
		     flags >> EVR_IORING_CQE_BUFFER_SHIFT == next;
		for (unsigned left = ok ? (unsigned)res : 0; left; next++) {
			unsigned n =
			    left < sizeof(buf[0]) ? left : sizeof(buf[0]);

			ok = ok && next < 4 && !memcmp(buf[next], msg + got, n);
			got += n;
			left -= n;
		}
		multi |= res > (int)sizeof(buf[0]);
	}
	bundle_works = ok && multi && got == sizeof(msg);
out_sock:
	close(sv[0]);
	close(sv[1]);
out_br:
	evr__buf_ring_free(&ring, br, 4, BGID);
out_ring:
	io_uring_queue_exit(&ring);
}

static int uring_probe(const struct evr_loop_opts *o, char *why, size_t n)
{
	struct io_uring_params p;
	struct io_uring ring;
	int err;

	(void)o;
	memset(&p, 0, sizeof(p));
	err = io_uring_queue_init_params(8, &ring, &p);
	if (err < 0) {
		explain_setup(err, why, n);
		return err;
	}
	if (!(p.features & EVR_IORING_FEAT_NODROP) ||
	    !(p.features & EVR_IORING_FEAT_EXT_ARG) ||
	    !(p.features & EVR_IORING_FEAT_FAST_POLL)) {
		snprintf(why, n, "kernel lacks IORING_FEAT_%s",
			 !(p.features & EVR_IORING_FEAT_NODROP) ? "NODROP"
			 : !(p.features & EVR_IORING_FEAT_EXT_ARG)
			     ? "EXT_ARG"
			     : "FAST_POLL");
		err = -ENOTSUP;
		goto out;
	}
	err = probe_opcodes(&ring, why, n);
	if (!err)
		err = probe_multishot_recv(&ring, why, n);
out:
	io_uring_queue_exit(&ring);
	return err;
}

/* ---- setup ---- */

static int ring_setup(struct evr_loop *l, struct uring_be *u,
		      const struct evr_loop_opts *o)
{
	/* The best set first; fall back on -EINVAL from older kernels. */
	static const unsigned attempts[] = {
		EVR_IORING_SETUP_SINGLE_ISSUER |
		    EVR_IORING_SETUP_DEFER_TASKRUN |
		    EVR_IORING_SETUP_SUBMIT_ALL,
		EVR_IORING_SETUP_COOP_TASKRUN | EVR_IORING_SETUP_SUBMIT_ALL,
		0,
	};
	int err = -EINVAL;

	for (size_t i = 0; i < EVR_ARRAY_SIZE(attempts); i++) {
		struct io_uring_params p;

		if (((attempts[i] & EVR_IORING_SETUP_DEFER_TASKRUN) &&
		     evr__feature_off(l, "defer_taskrun")) ||
		    ((attempts[i] & EVR_IORING_SETUP_COOP_TASKRUN) &&
		     evr__feature_off(l, "coop_taskrun")))
			continue;
		memset(&p, 0, sizeof(p));
		p.flags = attempts[i] | IORING_SETUP_CQSIZE;
		p.cq_entries = o->cq_entries;
		err = io_uring_queue_init_params(o->sq_entries, &u->ring, &p);
		if (err == -EINVAL)
			continue;
		if (err < 0)
			return err;
		u->setup_flags = attempts[i];
		if (p.features & EVR_IORING_FEAT_CQE_SKIP)
			u->skip_flag = EVR_IOSQE_CQE_SKIP_SUCCESS;
		u->cq_batch = p.cq_entries;
		/* io_uring_enter() by registered index saves looking the ring
		 * file up on every call (5.18); an old kernel just says no */
		bool reg = !evr__feature_off(l, "register_ring") &&
			   io_uring_register_ring_fd(&u->ring) == 1;

		evr__feature_note(l, "single_issuer",
				  attempts[i] & EVR_IORING_SETUP_SINGLE_ISSUER);
		evr__feature_note(l, "defer_taskrun",
				  attempts[i] & EVR_IORING_SETUP_DEFER_TASKRUN);
		evr__feature_note(l, "coop_taskrun",
				  attempts[i] & EVR_IORING_SETUP_COOP_TASKRUN);
		evr__feature_note(l, "register_ring", reg);
		evr__feature_note(l, "cqe_skip", u->skip_flag != 0);
		/* what the probe made sure of */
		evr__feature_note(l, "multishot_accept", true);
		evr__feature_note(l, "multishot_recv", true);
		evr__feature_note(l, "buf_ring", true);
		return 0;
	}
	return err;
}

/* ---- the buffer rings' windows ---- */

/* Published in uring_poll() before the next submission. */
static void ring_add(struct buf_ring *r, const struct evr__pool *p,
		     struct evr_buf *b)
{
	if (r->pos)
		r->pos[b->id] = (uint16_t)(r->br->tail + r->pending);
	io_uring_buf_ring_add(r->br, b->base, p->size, b->id, (int)r->mask,
			      (int)r->pending++);
	r->held++;
}

/* Top the window up from the free list, the most recently used first. */
static void ring_fill(struct buf_ring *r, struct evr__pool *p)
{
	while (r->held < r->window && p->free) {
		struct evr_buf *b = p->free;

		p->free = b->next;
		b->next = NULL;
		ring_add(r, p, b);
	}
}

/* The buffer the kernel filled, named by a completion. */
static struct evr_buf *ring_take(struct evr_loop *l, unsigned pool, unsigned id)
{
	struct buf_ring *r = &U(l)->rings[pool];
	struct evr_buf *b = evr__pool_take(evr__pool_of(l, pool), id);

	if (b) {
		r->held--;
		r->taken++;
	}
	return b;
}

/* Size the window to what the kernel takes between two polls: at least
 * twice that at once, double after an empty ring, and back down to twice
 * the epoch's peak (never under WINDOW_MIN) when the epoch ends. */
static void ring_adapt(struct buf_ring *r, const struct evr__pool *p)
{
	unsigned want = r->window;

	if (r->fixed)
		return;
	if (r->taken > r->peak)
		r->peak = r->taken;
	if (r->nobufs)
		want = 2 * r->window;
	if (2 * r->taken > want)
		want = evr__pow2_roundup(2 * r->taken);
	if (++r->polls == WINDOW_EPOCH) {
		unsigned fit = evr__pow2_roundup(2 * r->peak);

		if (fit < want && !r->nobufs)
			want = fit < WINDOW_MIN ? WINDOW_MIN : fit;
		r->polls = 0;
		r->peak = 0;
	}
	r->window = want > p->count ? p->count : want;
	r->taken = 0;
	r->nobufs = false;
}

/* Register the pool's buffer ring with the first window of buffers. */
static int uring_pool_start(struct evr_loop *l, struct evr__pool *p)
{
	struct uring_be *u = U(l);
	struct buf_ring *r = &u->rings[p->bgid];
	int err;

	r->entries = p->count;
	if (p->bgid == 0 && u->bundle) {
		/* Bundles read a completion's later buffers back from the
		 * ring's slots: twice the pool's slots keep a slot from being
		 * written again before its completion is read (struct
		 * recv_walk). The kernel takes at most 32768. */
		if (p->count <= 16384)
			r->pos = calloc(p->count, sizeof(*r->pos));
		if (r->pos)
			r->entries = 2 * p->count;
		else
			u->bundle = false;
	}
	if (p->bgid == 0)
		evr__feature_note(l, "recv_bundle", u->bundle);
	r->mask = r->entries - 1;
	r->br = evr__buf_ring_setup(&u->ring, r->entries, p->bgid, &err);
	if (!r->br) {
		free(r->pos);
		r->pos = NULL;
		return err;
	}
	r->fixed = evr__feature_off(l, "buf_window");
	r->window = r->fixed || p->count < WINDOW_MIN ? p->count : WINDOW_MIN;
	if (p->bgid == 0)
		evr__feature_note(l, "buf_window", !r->fixed);
	ring_fill(r, p); /* published by the first poll */
	return 0;
}

/*
 * Children are waited for with IORING_OP_WAITID (6.7) where the kernel has
 * it, unless the feature "waitid" is disabled (EVRING_DISABLE=waitid);
 * else their pidfd is polled and the core reaps them with
 * waitid(WNOHANG). The features line says which.
 */
static void waitid_choose(struct evr_loop *l, struct uring_be *u)
{
	struct io_uring_probe *p;

	if (!evr__feature_off(l, "waitid")) {
		p = io_uring_get_probe_ring(&u->ring);
		u->waitid =
		    p && io_uring_opcode_supported(p, EVR_IORING_OP_WAITID);
		if (p)
			io_uring_free_probe(p);
	}
	evr__feature_note(l, "waitid", u->waitid);
}

static int uring_init(struct evr_loop *l, const struct evr_loop_opts *o)
{
	struct uring_be *u = calloc(1, sizeof(*u));
	struct evr__pool *pool = &l->pool;
	int err;

	if (!u)
		return -ENOMEM;
	err = ring_setup(l, u, o);
	if (err < 0)
		goto out_free;
	l->be = u;
	if (!evr__feature_off(l, "recv_bundle")) {
		pthread_once(&bundle_once, bundle_probe);
		u->bundle = bundle_works;
	}
	err = uring_pool_start(l, pool);
	if (err < 0) {
		l->be = NULL;
		goto out_ring;
	}
	waitid_choose(l, u);
	evr_log_debug("io_uring: sq %u cq %u, %s", o->sq_entries, u->cq_batch,
		      (u->setup_flags & EVR_IORING_SETUP_DEFER_TASKRUN)
			  ? "SINGLE_ISSUER|DEFER_TASKRUN"
		      : (u->setup_flags & EVR_IORING_SETUP_COOP_TASKRUN)
			  ? "COOP_TASKRUN"
			  : "no setup flags");
	return 0;

out_ring:
	io_uring_queue_exit(&u->ring);
out_free:
	free(u);
	return err;
}

static void uring_submit(struct evr_loop *l)
{
	io_uring_submit(&U(l)->ring);
}

static void uring_fini(struct evr_loop *l)
{
	struct uring_be *u = U(l);

	if (!u)
		return;
	/* Closes prepared in the last iteration are still in the SQ:
	 * submit them (they run inline), then exiting the ring cancels
	 * whatever is still armed. */
	io_uring_submit(&u->ring);
	io_uring_queue_exit(&u->ring);
	for (int i = 0; i < 2; i++) {
		if (u->rings[i].br)
			munmap(u->rings[i].br, (size_t)u->rings[i].entries *
						   sizeof(struct io_uring_buf));
		free(u->rings[i].pos);
	}
	cache_fini(&u->send_ctxs);
	free(u);
	l->be = NULL;
}

/* ---- submission helpers ---- */

static struct io_uring_sqe *get_sqe(struct uring_be *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (EVR_UNLIKELY(!sqe)) {
		/* SQ full: push what is there to the kernel and go on. */
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
		if (!sqe)
			evr_log_err("io_uring: no submission queue entry "
				    "available");
	}
	return sqe;
}

static void add_cancel(struct uring_be *u, uint64_t target)
{
	struct io_uring_sqe *sqe = get_sqe(u);

	if (!sqe)
		return;
	io_uring_prep_cancel64(sqe, target, 0);
	sqe->flags |= u->skip_flag;
	sqe->user_data = tag(NULL, OP_IGNORE);
}

static void add_close(struct uring_be *u, int fd)
{
	struct io_uring_sqe *sqe = get_sqe(u);

	if (!sqe) {
		close(fd);
		return;
	}
	io_uring_prep_close(sqe, fd);
	sqe->flags |= u->skip_flag;
	sqe->user_data = tag(NULL, OP_IGNORE);
}

/* ---- listeners ---- */

static int uring_listener_start(struct evr_listener *ls)
{
	struct uring_be *u = U(ls->svc.loop);
	struct io_uring_sqe *sqe;

	if (ls->armed)
		return 0; /* a cancelled accept's end has not arrived yet */
	sqe = get_sqe(u);
	if (!sqe)
		return -EBUSY;
	/* accepted sockets blocking: see evr__backend.blocking_sockets */
	io_uring_prep_multishot_accept(sqe, ls->fd, NULL, NULL, SOCK_CLOEXEC);
	sqe->user_data = tag(ls, OP_ACCEPT);
	ls->armed = true;
	ls->svc.refs++;
	return 0;
}

/* The cancel goes to the kernel now, with the task work that completes
 * it (DEFER_TASKRUN runs it only when asked for events): the armed
 * accept holds the socket open, and a closed listener must stop accepting
 * when the call returns, not at the next iteration. Its completion waits
 * in the CQ for the next poll. */
static void uring_listener_stop(struct evr_listener *ls)
{
	struct uring_be *u = U(ls->svc.loop);

	if (ls->armed) {
		add_cancel(u, tag(ls, OP_ACCEPT));
		io_uring_submit_and_get_events(&u->ring);
	}
	close(ls->fd);
}

static bool accept_transient(int err)
{
	/* A client gave up before we accepted it, or a signal: go on. */
	return err == -ECONNABORTED || err == -EINTR || err == -EAGAIN ||
	       err == -EPROTO || err == -EPERM;
}

static void on_accept(struct evr_loop *l, void *p, int res, unsigned flags)
{
	struct evr_listener *ls = p;
	bool more = flags & EVR_IORING_CQE_F_MORE;

	if (!more)
		ls->armed = false;
	if (res >= 0) {
		/* Accepted before the cancel took effect. When the listening
		 * socket is shared (socket activation, a restart), the clients
		 * we did not take wait for the next server; this one is ours
		 * already: serve it, unless the loop is stopping. */
		if (ls->closing && l->stopping) {
			close(res);
		} else {
			if (!ls->closing)
				evr__listener_resumed(ls);
			evr__conn_new(ls, res);
		}
	}
	if (!more && !ls->closing) {
		int err = 0;

		if (res >= 0 || accept_transient(res))
			err = l->be_ops->listener_start(ls);
		else
			err = res;
		if (err < 0)
			evr__listener_pause(ls, err);
	}
	if (!more)
		evr__svc_put(&ls->svc);
}

/* ---- connections ---- */

static int uring_conn_recv(struct evr_conn *c)
{
	struct uring_be *u = U(c->loop);
	struct io_uring_sqe *sqe;

	/* Still armed (a pause's cancel not yet completed): the final
	 * completion arms it again. */
	if (c->flags & (EVR__C_RECV | EVR__C_PAUSED))
		return 0;
	sqe = get_sqe(u);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_recv(sqe, c->fd, NULL, 0, 0);
	sqe->ioprio |= EVR_IORING_RECV_MULTISHOT;
	if (u->bundle)
		sqe->ioprio |= EVR_IORING_RECVSEND_BUNDLE;
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	sqe->user_data = tag(c, OP_RECV);
	c->flags |= EVR__C_RECV;
	c->refs++;
	return 0;
}

/* Should a receive that ended be armed again? */
static bool want_recv(const struct evr_conn *c)
{
	if (c->flags & (EVR__C_RECV | EVR__C_EOF | EVR__C_STARVED |
			EVR__C_PAUSED | EVR__C_ZOMBIE))
		return false;
	return !(c->flags & EVR__C_CLOSING) || (c->flags & EVR__C_LINGER);
}

static void uring_conn_pause(struct evr_conn *c)
{
	/* Bytes already on their way still arrive; then -ECANCELED. */
	if (c->flags & EVR__C_RECV)
		add_cancel(U(c->loop), tag(c, OP_RECV));
}

/* The cancel goes to the kernel now, not at the next iteration: the
 * socket changes hands when evr_conn_detach() returns, and an armed
 * receive must not take the new owner's bytes. */
static void uring_conn_detach(struct evr_conn *c)
{
	struct uring_be *u = U(c->loop);

	if (c->flags & EVR__C_RECV) {
		add_cancel(u, tag(c, OP_RECV));
		io_uring_submit(&u->ring);
	}
}

/*
 * The buffers of one receive completion, in order. Without bundles it is
 * the one the completion names, res bytes. With bundles the kernel filled
 * that one and the ones after it in the ring: each to the length in its
 * slot, as many as res bytes took (the last one maybe in part). Their ids
 * are read back from the ring's slots, which are not written again before
 * the completion is read: a buffer is added to the ring once per time the
 * kernel takes it, and a slot is written again only after as many adds as
 * the ring has slots, twice the pool. Each id is checked against the
 * position it was added at.
 */
struct recv_walk {
	uint32_t left; /* bytes of the completion not yet in a buffer */
	uint16_t pos;  /* ring position of the buffer just taken */
};

static struct evr_buf *walk_fill(struct buf_ring *r, struct recv_walk *w,
				 struct evr_buf *b)
{
	uint32_t room = r->br->bufs[w->pos & r->mask].len;

	b->len = w->left < room ? w->left : room;
	w->left -= b->len;
	return b;
}

static struct evr_buf *walk_first(struct evr_loop *l, struct recv_walk *w,
				  unsigned id, int res)
{
	struct buf_ring *r = &U(l)->rings[0];
	struct evr_buf *b = ring_take(l, 0, id);

	w->left = res > 0 ? (uint32_t)res : 0;
	if (!b) {
		w->left = 0;
		return NULL;
	}
	if (!r->pos) {
		b->len = w->left;
		w->left = 0;
		return b;
	}
	w->pos = r->pos[id];
	return walk_fill(r, w, b);
}

/* The next buffer, or NULL: the end, or (w->left still > 0) a slot that
 * does not hold what it should, and the rest is lost. */
static struct evr_buf *walk_next(struct evr_loop *l, struct recv_walk *w)
{
	struct buf_ring *r = &U(l)->rings[0];
	struct evr_buf *b;
	unsigned id;

	if (!w->left)
		return NULL;
	w->pos++;
	id = r->br->bufs[w->pos & r->mask].bid;
	if (EVR_UNLIKELY(id >= l->pool.count || r->pos[id] != w->pos))
		return NULL;
	b = ring_take(l, 0, id);
	return b ? walk_fill(r, w, b) : NULL;
}

/*
 * Hand the buffers of a receive completion to c in order, or back to the
 * pool when c is NULL or they hold nothing (the kernel may consume a
 * buffer for a zero-byte EOF completion too). cut (fault injection only):
 * the buffer that holds byte offset cut is split there, its first part a
 * copy: a short read.
 */
static void recv_deliver(struct evr_loop *l, struct evr_conn *c, unsigned id,
			 int res, size_t cut)
{
	struct recv_walk w;
	struct evr_buf *b = walk_first(l, &w, id, res);

	if (b && w.left)
		l->st.recv_bundles++;
	for (; b; b = walk_next(l, &w)) {
		if (!c || !b->len) {
			evr_buf_unref(b);
			continue;
		}
		if (EVR_UNLIKELY(cut) && cut >= b->len) {
			cut -= b->len; /* the cut falls in a later buffer */
		} else if (EVR_UNLIKELY(cut)) {
			struct evr_buf *first = evr_buf_new(l, cut);

			if (first) {
				memcpy(first->data, b->data, cut);
				first->len = (uint32_t)cut;
				evr__conn_data(c, first);
				b->data += cut;
				b->len -= (uint32_t)cut;
			}
			cut = 0;
		}
		evr__conn_data(c, b);
	}
	if (EVR_UNLIKELY(w.left)) {
		evr_log_err("io_uring: a receive bundle's buffers are not in "
			    "the ring slots they were put in: %u bytes lost",
			    (unsigned)w.left);
		if (c)
			evr_abort(c, -EIO);
	}
}

static void on_recv(struct evr_loop *l, void *p, int res, unsigned flags)
{
	struct evr_conn *c = p;
	bool more = flags & EVR_IORING_CQE_F_MORE;

	if (!more)
		c->flags &= ~EVR__C_RECV;
	if (flags & EVR_IORING_CQE_F_BUFFER)
		recv_deliver(l, c, flags >> EVR_IORING_CQE_BUFFER_SHIFT, res,
			     0);
	if (res > 0) {
		/* delivered above */
	} else if (res == 0) {
		evr__conn_eof(c);
	} else if (res == -ENOBUFS) {
		U(l)->rings[0].nobufs = true;
		evr__conn_starved(c);
	} else if (res < 0 && res != -ECANCELED) {
		evr__conn_error(c, res);
	}
	if (!more && (res > 0 || res == -ECANCELED) && want_recv(c)) {
		int err = uring_conn_recv(c);

		if (err < 0)
			evr_abort(c, err);
	}
	if (!more)
		evr__conn_put(c);
}

/* No MSG_WAITALL: a send on a socket whose buffer fills completes with
 * what the socket took, so that progress shows while bytes move (the send
 * timeout watches it) instead of only at the end of the whole queue; the
 * core sends the rest. */
#define SEND_FLAGS MSG_NOSIGNAL

static void uring_conn_send(struct evr_conn *c)
{
	struct uring_be *u = U(c->loop);
	struct evr__wq *e = c->wq_head;
	struct io_uring_sqe *sqe;
	struct send_ctx *x = NULL;
	unsigned n = 0;

	if (e->next) {
		x = cache_get(&u->send_ctxs, sizeof(*x));
		if (!x) {
			evr_abort(c, -ENOMEM);
			return;
		}
		size_t total = 0;
		int cnt;

		for (; e && n < SEND_IOV; e = e->next, n++) {
			x->iov[n].iov_base = e->p;
			x->iov[n].iov_len = e->len;
			total += e->len;
		}
		cnt = (int)n;
		evr__iov_cut(x->iov, &cnt,
			     EVR__FAULT_CUT(EVR__F_SEND_SHORT, total));
		n = (unsigned)cnt;
		memset(&x->msg, 0, sizeof(x->msg));
		x->msg.msg_iov = x->iov;
		x->msg.msg_iovlen = n;
	}
	sqe = get_sqe(u);
	if (!sqe) {
		if (x)
			cache_put(&u->send_ctxs, x);
		evr_abort(c, -EBUSY);
		return;
	}
	if (x) {
		io_uring_prep_sendmsg(sqe, c->fd, &x->msg,
				      SEND_FLAGS | evr__conn_send_more(c, n));
	} else {
		n = 1;
		io_uring_prep_send(sqe, c->fd, e->p,
				   EVR__FAULT_CUT(EVR__F_SEND_SHORT, e->len),
				   SEND_FLAGS | evr__conn_send_more(c, n));
	}
	sqe->user_data = tag(c, OP_SEND);
	c->be.req = x;
	c->wq_inflight = n;
	c->flags |= EVR__C_SENDING;
	c->refs++;
}

static void on_send(struct evr_loop *l, void *p, int res, unsigned flags)
{
	struct evr_conn *c = p;

	(void)flags;
	c->flags &= ~EVR__C_SENDING;
	if (c->be.req) {
		cache_put(&U(l)->send_ctxs, c->be.req);
		c->be.req = NULL;
	}
	if (res >= 0)
		evr__conn_sent(c, (size_t)res);
	else
		evr__conn_send_failed(c, res);
	evr__conn_put(c);
}

static int uring_conn_connect(struct evr_conn *c, const struct sockaddr *sa,
			      socklen_t len)
{
	struct uring_be *u = U(c->loop);
	struct io_uring_sqe *sqe;
	struct sockaddr_storage *dst;

	if (len > sizeof(*dst))
		return -EINVAL;
	/* the kernel copies the address when the request is issued; keep
	 * it until the completion to be safe with any kernel */
	dst = malloc(sizeof(*dst));
	if (!dst)
		return -ENOMEM;
	sqe = get_sqe(u);
	if (!sqe) {
		free(dst);
		return -EBUSY;
	}
	memcpy(dst, sa, len);
	io_uring_prep_connect(sqe, c->fd, (struct sockaddr *)dst, len);
	sqe->user_data = tag(c, OP_CONNECT);
	c->be.req = dst;
	c->refs++;
	return 0;
}

/* Connected already: a no-op brings on_connect in the next iteration. */
static int uring_conn_adopt(struct evr_conn *c)
{
	struct io_uring_sqe *sqe = get_sqe(U(c->loop));

	if (!sqe)
		return -EBUSY;
	io_uring_prep_nop(sqe);
	sqe->user_data = tag(c, OP_CONNECT);
	c->be.req = NULL;
	c->refs++;
	return 0;
}

static void on_connect(struct evr_loop *l, void *p, int res, unsigned flags)
{
	struct evr_conn *c = p;

	(void)l, (void)flags;
	free(c->be.req);
	c->be.req = NULL;
	evr__conn_connected(c, res < 0 ? res : 0);
	evr__conn_put(c);
}

static void uring_conn_close(struct evr_conn *c)
{
	struct uring_be *u = U(c->loop);

	if (c->flags & EVR__C_CONNECTING)
		add_cancel(u, tag(c, OP_CONNECT));
	if (c->flags & EVR__C_SENDING) /* an abort: the core set a reset */
		add_cancel(u, tag(c, OP_SEND));
	if (c->flags & EVR__C_RECV)
		add_cancel(u, tag(c, OP_RECV));
	add_close(u, c->fd);
}

/* ---- buffers ---- */

static void uring_buf_recycle(struct evr_loop *l, struct evr_buf *b)
{
	struct uring_be *u = U(l);
	struct buf_ring *r = &u->rings[b->pool];
	struct evr__pool *p = evr__pool_of(l, b->pool);

	if (r->held < r->window)
		ring_add(r, p, b);
	else
		evr__pool_put(p, b);
}

/* ---- UDP ---- */

static int uring_udp_start(struct evr_udp *s)
{
	struct uring_be *u = U(s->svc.loop);
	struct io_uring_sqe *sqe;

	if (s->armed)
		return 0;
	sqe = get_sqe(u);
	if (!sqe)
		return -EBUSY;
	/* Each completion's buffer holds an io_uring_recvmsg_out, the
	 * sender's address (msg_namelen bytes) and the payload. */
	io_uring_prep_recvmsg_multishot(sqe, s->fd, &s->rmsg, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = EVR__POOL_UDP;
	sqe->user_data = tag(s, OP_URECV);
	s->armed = true;
	s->svc.refs++;
	return 0;
}

static void on_urecv(struct evr_loop *l, void *p, int res, unsigned flags)
{
	struct evr_udp *s = p;
	bool more = flags & EVR_IORING_CQE_F_MORE;

	if (!more)
		s->armed = false;
	if (flags & EVR_IORING_CQE_F_BUFFER) {
		struct evr_buf *b =
		    ring_take(l, 1, flags >> EVR_IORING_CQE_BUFFER_SHIFT);
		struct io_uring_recvmsg_out *out =
		    b && res > 0
			? io_uring_recvmsg_validate(b->base, res, &s->rmsg)
			: NULL;

		if (out) {
			socklen_t nl = out->namelen < s->rmsg.msg_namelen
					   ? out->namelen
					   : s->rmsg.msg_namelen;

			b->data = io_uring_recvmsg_payload(out, &s->rmsg);
			b->len =
			    io_uring_recvmsg_payload_length(out, res, &s->rmsg);
			b->cap -= (uint32_t)(b->data - b->base);
			evr__udp_datagram(s, b, io_uring_recvmsg_name(out), nl,
					  out->flags & MSG_TRUNC);
		} else if (b) {
			evr_buf_unref(b);
		}
	}
	if (res == -ENOBUFS) {
		U(l)->rings[1].nobufs = true;
		evr__udp_starved(s);
	} else if (res < 0 && res != -ECANCELED && !s->closing)
		evr_log_warn("udp %s: recvmsg: %s", s->svc.name,
			     evr__strerror(res));
	if (!more && !s->closing && res != -ENOBUFS && uring_udp_start(s) < 0)
		evr__udp_starved(s); /* retried as buffers come back */
	if (!more)
		evr__svc_put(&s->svc);
}

static void uring_udp_stop(struct evr_udp *s)
{
	if (s->armed)
		add_cancel(U(s->svc.loop), tag(s, OP_URECV));
	close(s->fd);
}

/* ---- signals ---- */

static int uring_signal_start(struct evr_loop *l)
{
	struct uring_be *u = U(l);
	struct io_uring_sqe *sqe = get_sqe(u);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_multishot(sqe, l->sigfd, POLLIN);
	sqe->user_data = tag(l, OP_SIGNAL);
	return 0;
}

static void on_signal(struct evr_loop *l, void *p, int res, unsigned flags)
{
	(void)p;
	if (res > 0)
		evr__signal_dispatch(l);
	if (!(flags & EVR_IORING_CQE_F_MORE) && res != -ECANCELED)
		uring_signal_start(l);
}

/* ---- watches ---- */

static int uring_watch_start(struct evr__watch *w)
{
	struct uring_be *u = U(w->loop);
	struct io_uring_sqe *sqe = get_sqe(u);

	if (!sqe)
		return -EBUSY;
	w->waitid = w->kind == EVR__W_CHILD && u->waitid;
	if (w->waitid) {
		/* liburing 2.3 has no io_uring_prep_waitid(): its fields */
		io_uring_prep_rw(EVR_IORING_OP_WAITID, sqe, w->fd, NULL,
				 P_PIDFD, 0);
		sqe->file_index = WEXITED; /* the waitid options */
		sqe->addr2 = (uint64_t)(uintptr_t)&w->si;
	} else {
		io_uring_prep_poll_add(sqe, w->fd, w->events);
	}
	sqe->user_data = tag(w, OP_WATCH);
	return 0;
}

static void uring_watch_stop(struct evr__watch *w)
{
	add_cancel(U(w->loop), tag(w, OP_WATCH));
}

static void on_watch(struct evr_loop *l, void *p, int res, unsigned flags)
{
	(void)l, (void)flags;
	evr__watch_done(p, res);
}

static void on_ignore(struct evr_loop *l, void *p, int res, unsigned flags)
{
	(void)l, (void)p, (void)res, (void)flags;
}

/* ---- mailbox wake-ups ---- */

/*
 * Can a ring wake another by IORING_OP_MSG_RING (5.18), the target set up
 * as ours are (SINGLE_ISSUER|DEFER_TASKRUN: the kernel then posts through
 * the target's task, 6.2+)? Found out once per process by sending one
 * between two throwaway rings.
 */
static bool msgring_works;
static pthread_once_t msgring_once = PTHREAD_ONCE_INIT;

static void msgring_probe(void)
{
	struct io_uring_params p;
	struct io_uring a, b;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = { .tv_nsec = 100 * 1000 * 1000 };

	memset(&p, 0, sizeof(p));
	if (io_uring_queue_init_params(2, &a, &p) < 0)
		return;
	memset(&p, 0, sizeof(p));
	p.flags =
	    EVR_IORING_SETUP_SINGLE_ISSUER | EVR_IORING_SETUP_DEFER_TASKRUN;
	if (io_uring_queue_init_params(2, &b, &p) < 0) {
		memset(&p, 0, sizeof(p));
		if (io_uring_queue_init_params(2, &b, &p) < 0)
			goto out_a;
	}
	sqe = io_uring_get_sqe(&a);
	io_uring_prep_msg_ring(sqe, b.ring_fd, 0, 0x5eed, 0);
	if (io_uring_submit(&a) == 1 &&
	    io_uring_wait_cqe_timeout(&b, &cqe, &ts) == 0) {
		msgring_works = cqe->user_data == 0x5eed;
		io_uring_cqe_seen(&b, cqe);
	}
	io_uring_queue_exit(&b);
out_a:
	io_uring_queue_exit(&a);
}

static void on_mailfd(struct evr_loop *l, void *p, int res, unsigned flags);

static int uring_mail_start(struct evr_loop *l)
{
	struct io_uring_sqe *sqe = get_sqe(U(l));

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_multishot(sqe, l->mb.efd, POLLIN);
	sqe->user_data = tag(l, OP_MAILFD);
	if (!l->mb.eventfd_only) {
		pthread_once(&msgring_once, msgring_probe);
		l->mb.msgring = msgring_works;
	}
	evr__feature_note(l, "msg_ring", l->mb.msgring);
	return 0;
}

/* The wake-up leaves with from's next submission; its completion, posted
 * only when it fails, names the target. */
static int uring_mail_wake(struct evr_loop *from, struct evr_loop *to)
{
	struct uring_be *u = U(from);
	struct io_uring_sqe *sqe;

	if (to->be_ops != &evr__backend_uring || !(sqe = get_sqe(u)))
		return -EOPNOTSUPP;
	io_uring_prep_msg_ring(sqe, U(to)->ring.ring_fd, 0, tag(NULL, OP_MAIL),
			       0);
	sqe->flags |= u->skip_flag;
	sqe->user_data = tag(to, OP_MAILSENT);
	return 0;
}

/* The posted completion names no loop: the ring it arrives on is the one
 * woken, whatever became of the sender. */
static void on_mail(struct evr_loop *l, void *p, int res, unsigned flags)
{
	(void)p, (void)res, (void)flags;
	evr__mail_wakeup(l, false);
}

static void on_mailfd(struct evr_loop *l, void *p, int res, unsigned flags)
{
	(void)p;
	if (res > 0)
		evr__mail_wakeup(l, true);
	if (!(flags & EVR_IORING_CQE_F_MORE) && res != -ECANCELED)
		uring_mail_start(l);
}

/* Kept alive by the group while we run: wake it the other way. */
static void on_mailsent(struct evr_loop *l, void *p, int res, unsigned flags)
{
	(void)l, (void)flags;
	if (res < 0)
		evr__mail_kick(p);
}

/* ---- the poll step ---- */

typedef void (*cqe_handler)(struct evr_loop *l, void *p, int res,
			    unsigned flags);

/* clang-format off */
static const cqe_handler handlers[OP__COUNT] = {
	[OP_IGNORE]  = on_ignore,
	[OP_ACCEPT]  = on_accept,
	[OP_RECV]    = on_recv,
	[OP_SEND]    = on_send,
	[OP_SIGNAL]  = on_signal,
	[OP_CONNECT] = on_connect,
	[OP_URECV]   = on_urecv,
	[OP_WATCH]   = on_watch,
	[OP_MAIL]    = on_mail,
	[OP_MAILFD]  = on_mailfd,
	[OP_MAILSENT] = on_mailsent,
};
/* clang-format on */

/*
 * Fault injection (tests only; core/fault.c): one filter between the CQ
 * and the handlers, so that the handlers are the code that ships. It
 * turns completions into the failures a test asked for, and owns the rule
 * that makes this safe: a provided buffer the kernel filled is returned to
 * the pool (or delivered) here, whatever the handler is then told.
 * Only failures that end the operation are injected into receives and
 * sends: turning delivered bytes into a retryable error would lose them,
 * and io_uring retries EINTR and EAGAIN itself.
 */
static bool fault_ends(int ferr)
{
	return ferr && ferr != -EINTR && ferr != -EAGAIN;
}

static void fault_dispatch(struct evr_loop *l, unsigned op, void *p, int res,
			   unsigned flags)
{
	bool more = flags & EVR_IORING_CQE_F_MORE;
	unsigned id = flags >> EVR_IORING_CQE_BUFFER_SHIFT;
	int ferr;

	switch (op) {
	case OP_ACCEPT:
		if (res < 0 || !(ferr = evr__fault_hit(EVR__F_ACCEPT)))
			break;
		close(res); /* as if the accept had failed */
		res = ferr;
		if (more && accept_transient(ferr))
			return;
		if (more) {
			/* a real error ends a multishot accept: the cancel's
			 * completion comes back to on_accept */
			add_cancel(U(l), tag(p, OP_ACCEPT));
			evr__listener_pause(p, ferr);
			return;
		}
		break;
	case OP_RECV:
		if (res <= 0 || !(flags & EVR_IORING_CQE_F_BUFFER))
			break;
		ferr = evr__fault_hit(EVR__F_RECV);
		if (fault_ends(ferr)) {
			recv_deliver(l, NULL, id, res, 0);
			flags &= ~EVR_IORING_CQE_F_BUFFER;
			res = ferr;
			break;
		}
		size_t cut = evr__fault_cut(EVR__F_RECV_SHORT, (size_t)res);

		if (cut < (size_t)res) {
			/* a short read: the same bytes in two deliveries, the
			 * first a copy (a module may keep either buffer) */
			recv_deliver(l, p, id, res, cut);
			flags &= ~EVR_IORING_CQE_F_BUFFER; /* delivered */
		}
		break;
	case OP_SEND:
		if (res >= 0 && fault_ends(ferr = evr__fault_hit(EVR__F_SEND)))
			res = ferr;
		break;
	}
	handlers[op](l, p, res, flags);
}

static int uring_poll(struct evr_loop *l, int timeout_ms)
{
	struct uring_be *u = U(l);
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	int ret;

	for (int i = 0; i < 2; i++) {
		struct buf_ring *r = &u->rings[i];

		if (!r->br)
			continue;
		ring_adapt(r, evr__pool_of(l, i));
		ring_fill(r, evr__pool_of(l, i));
		/* (a test may hold returned buffers back: the ENOBUFS path) */
		if (r->pending && !EVR__FAULT(EVR__F_POOL)) {
			io_uring_buf_ring_advance(r->br, (int)r->pending);
			r->pending = 0;
		}
	}
	if (timeout_ms == 0) {
		ret = io_uring_submit_and_get_events(&u->ring);
	} else if (timeout_ms < 0) {
		ret = io_uring_submit_and_wait(&u->ring, 1);
	} else {
		struct __kernel_timespec ts = {
			.tv_sec = timeout_ms / 1000,
			.tv_nsec = (timeout_ms % 1000) * 1000000LL,
		};

		ret = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts,
						       NULL);
	}
	if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN &&
	    ret != -EBUSY) {
		evr_log_err("io_uring_enter: %s", evr__strerror(ret));
		return ret;
	}
	/* handlers stamp connections and start timers: with the time of
	 * now, not of before the wait */
	l->now = evr__now_ms();
	/* completions wait in the kernel's overflow list (NODROP): the next
	 * enter flushes them, none is lost; counted */
	if (EVR_UNLIKELY(io_uring_cq_has_overflow(&u->ring)))
		l->st.cq_overflows++;
	/* Copy each completion out and free its slot before dispatching, so
	 * the kernel has room while handlers run. */
	io_uring_for_each_cqe (&u->ring, head, cqe) {
		uint64_t ud = cqe->user_data;
		int res = cqe->res;
		unsigned flags = cqe->flags;

		io_uring_cq_advance(&u->ring, 1);
		if (EVR_UNLIKELY(evr__faults_on))
			fault_dispatch(l, ud & TAG_MASK,
				       (void *)(uintptr_t)(ud & ~TAG_MASK), res,
				       flags);
		else
			handlers[ud & TAG_MASK](
			    l, (void *)(uintptr_t)(ud & ~TAG_MASK), res, flags);
		if (++n == u->cq_batch)
			break;
	}
	return 0;
}

const struct evr__backend evr__backend_uring = {
	.name = "io_uring",
	.blocking_sockets = true,
	/* Replies of one iteration leave in one sendmmsg per socket: cheaper
	 * than a sendmsg request (and its completion) per datagram. */
	.udp_batches = true,
	.probe = uring_probe,
	.init = uring_init,
	.fini = uring_fini,
	.poll = uring_poll,
	.submit = uring_submit,
	.listener_start = uring_listener_start,
	.listener_stop = uring_listener_stop,
	.conn_recv = uring_conn_recv,
	.conn_pause = uring_conn_pause,
	.conn_detach = uring_conn_detach,
	.conn_connect = uring_conn_connect,
	.conn_adopt = uring_conn_adopt,
	.pool_start = uring_pool_start,
	.udp_start = uring_udp_start,
	.udp_stop = uring_udp_stop,
	.udp_send = evr__udp_batch_send,
	.udp_flush = evr__udp_batch_flush,
	.conn_send = uring_conn_send,
	.conn_close = uring_conn_close,
	.buf_recycle = uring_buf_recycle,
	.signal_start = uring_signal_start,
	.watch_start = uring_watch_start,
	.watch_stop = uring_watch_stop,
	.mail_start = uring_mail_start,
	.mail_wake = uring_mail_wake,
};
