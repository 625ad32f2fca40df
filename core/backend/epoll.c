/* SPDX-License-Identifier: MIT */
/*
 * backend_epoll.c - the epoll backend: completions emulated over readiness.
 *
 * Used where io_uring cannot run (old kernel, kernel.io_uring_disabled, a
 * seccomp profile, a memlock limit) or when forced. Modules see the same
 * events in the same order as under io_uring.
 *
 * Connections are registered once, edge-triggered, for input and output.
 * Receiving: on readability the backend reads into buffers of the same
 * loop-owned pool and hands each to the connection, exactly like a receive
 * completion. A short read means the socket was drained (new data raises a
 * new edge); a full read is followed by another, up to READ_BUDGET per
 * event for fairness, after which the connection goes on the ready list and
 * continues in the next iteration. An empty pool stops reading (the same
 * rule as -ENOBUFS under io_uring) and the connection waits on the starved
 * list; when buffers return it is put on the ready list, since no new edge
 * will come for data already waiting.
 *
 * Sending: the flush pass calls conn_send, which writes the queued slices
 * with one sendmsg (a writev that takes MSG_NOSIGNAL). What a short write
 * left goes again in the same flush pass; only EAGAIN means the socket
 * buffer is full: the connection then waits for EPOLLOUT with
 * EVR__C_SENDING set, which to the core is "a send in flight".
 *
 * System calls that tests make fail go through evr__sys (core/fault.c).
 *
 * Listeners are level-triggered; accepting stops after ACCEPT_BUDGET per
 * event so that one busy listener cannot starve the connections. On EMFILE
 * the listener leaves the epoll set until the pause timer expires.
 */
#include "internal.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS    256
#define READ_BUDGET   16
#define ACCEPT_BUDGET 64
#define SEND_IOV      64

enum epoll_kind {
	K_LISTENER,
	K_CONN,
	K_SIGNAL,
	K_UDP,
	K_WATCH,
	K_MAIL,
	K__COUNT,
};
#define KIND_MASK 15ULL

struct epoll_be {
	int epfd;
	struct evr__list ready; /* connections with data possibly pending */
	struct evr__svc **dead; /* sockets stopped during dispatch */
	unsigned ndead, dead_cap;
	struct evr__watch **wdead; /* watches stopped: answered after */
	unsigned nwdead, wdead_cap;
	struct epoll_event events[MAX_EVENTS];
};

static inline struct epoll_be *E(struct evr_loop *l)
{
	return l->be;
}

static inline uint64_t tag(const void *p, enum epoll_kind k)
{
	return (uint64_t)(uintptr_t)p | k;
}

static int epoll_probe(const struct evr_loop_opts *o, char *why, size_t n)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	(void)o;
	if (fd < 0) {
		int err = -errno;

		snprintf(why, n, "epoll_create1: %s", evr__strerror(err));
		return err;
	}
	close(fd);
	return 0;
}

static int epoll_init(struct evr_loop *l, const struct evr_loop_opts *o)
{
	struct epoll_be *e = calloc(1, sizeof(*e));

	(void)o;
	if (!e)
		return -ENOMEM;
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0) {
		int err = -errno;

		free(e);
		return err;
	}
	evr__list_init(&e->ready);
	l->be = e;
	return 0;
}

static void epoll_fini(struct evr_loop *l)
{
	struct epoll_be *e = E(l);

	if (!e)
		return;
	close(e->epfd);
	free(e->dead);
	free(e->wdead);
	free(e);
	l->be = NULL;
}

static void epoll_submit(struct evr_loop *l)
{
	(void)l; /* system calls were made as the loop went */
}

static int ctl(struct epoll_be *e, int op, int fd, uint32_t events,
	       uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	if (epoll_ctl(e->epfd, op, fd, &ev) < 0)
		return -errno;
	return 0;
}

/* ---- listeners ---- */

static int epoll_listener_start(struct evr_listener *ls)
{
	struct epoll_be *e = E(ls->svc.loop);
	int err;

	err = ctl(e, EPOLL_CTL_ADD, ls->fd, EPOLLIN, tag(ls, K_LISTENER));
	if (err < 0)
		return err;
	ls->armed = true;
	ls->svc.refs++;
	return 0;
}

/* Events for a socket just stopped may follow in this batch: drop the
 * epoll set's reference after it (see epoll_poll). */
static void put_later(struct epoll_be *e, struct evr__svc *svc)
{
	if (e->ndead == e->dead_cap) {
		unsigned cap = e->dead_cap ? 2 * e->dead_cap : 8;
		struct evr__svc **d = realloc(e->dead, cap * sizeof(*d));

		if (!d) {
			/* Keep the reference: a small leak beats a crash. */
			evr_log_err("%s: out of memory", svc->name);
			return;
		}
		e->dead = d;
		e->dead_cap = cap;
	}
	e->dead[e->ndead++] = svc;
}

/*
 * A registration belongs to the open file, not to the descriptor: when
 * another descriptor refers to the same file (a dup, an inherited copy, a
 * fork), close() leaves it in the set and the next event would name freed
 * memory. So every descriptor leaves the set before it is closed.
 */
static void unwatch_close(struct epoll_be *e, int fd, bool registered)
{
	if (registered)
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

static void epoll_listener_stop(struct evr_listener *ls)
{
	struct epoll_be *e = E(ls->svc.loop);

	unwatch_close(e, ls->fd, ls->armed);
	if (!ls->armed)
		return;
	ls->armed = false;
	put_later(e, &ls->svc);
}

static void on_listener(struct evr_loop *l, void *p, uint32_t ev)
{
	struct evr_listener *ls = p;
	struct epoll_be *e = E(l);

	(void)ev;
	for (int i = 0; i < ACCEPT_BUDGET && !ls->closing && ls->armed; i++) {
		int fd = evr__sys.accept4(ls->fd, NULL, NULL,
					  SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			evr__listener_resumed(ls);
			evr__conn_new(ls, fd);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == ECONNABORTED || errno == EINTR ||
		    errno == EPROTO || errno == EPERM)
			continue;
		/* EMFILE and friends: leave the epoll set, retry on a timer */
		int err = -errno;

		epoll_ctl(e->epfd, EPOLL_CTL_DEL, ls->fd, NULL);
		ls->armed = false;
		evr__listener_pause(ls, err);
		evr__svc_put(&ls->svc);
		return;
	}
}

/* ---- connections ---- */

static int epoll_conn_recv(struct evr_conn *c)
{
	struct epoll_be *e = E(c->loop);
	int err;

	if (c->flags & EVR__C_RECV) {
		/* A restart: data may be waiting without a new edge. */
		if (!(c->flags & EVR__C_BE_READY)) {
			c->flags |= EVR__C_BE_READY;
			evr__list_add_tail(&e->ready, &c->be.ready);
		}
		return 0;
	}
	err = ctl(e, EPOLL_CTL_ADD, c->fd,
		  EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, tag(c, K_CONN));
	if (err < 0)
		return err;
	c->flags |= EVR__C_RECV;
	return 0;
}

static void conn_read(struct evr_conn *c)
{
	struct evr_loop *l = c->loop;
	struct epoll_be *e = E(l);

	for (int i = 0; i < READ_BUDGET; i++) {
		struct evr_buf *b;
		ssize_t n;

		if ((c->flags & (EVR__C_CLOSING | EVR__C_PAUSED)) &&
		    !(c->flags & EVR__C_LINGER))
			return;
		if (c->flags & EVR__C_EOF)
			return;
		b = evr__pool_get(&l->pool);
		if (!b) {
			/* already on the ready list (a resume from on_data):
			 * its next turn there finds the pool empty again */
			if (!(c->flags & EVR__C_BE_READY))
				evr__conn_starved(c);
			return;
		}
		n = evr__sys.recv(c->fd, b->data, b->cap, 0);
		if (n > 0) {
			b->len = (uint32_t)n;
			evr__conn_data(c, b);
			/* A short read drained the socket: new data raises
			 * a new edge. Not so a FIN already queued behind the
			 * data: EPOLLRDHUP told us, read on to the EOF. (A
			 * test's fault injection cuts reads short without
			 * draining anything: read on then too.) */
			if ((size_t)n < b->cap &&
			    !(c->flags & EVR__C_BE_RDHUP) && !evr__faults_on)
				return;
			continue;
		}
		evr_buf_unref(b);
		if (n == 0) {
			evr__conn_eof(c);
			return;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EINTR)
			continue;
		evr__conn_error(c, -errno);
		return;
	}
	/* Budget spent with data left: continue next iteration. */
	if (!(c->flags & (EVR__C_BE_READY | EVR__C_PAUSED))) {
		c->flags |= EVR__C_BE_READY;
		evr__list_add_tail(&e->ready, &c->be.ready);
	}
}

static void epoll_conn_send(struct evr_conn *c)
{
	struct iovec iov[SEND_IOV];
	struct msghdr msg;
	struct evr__wq *q;
	ssize_t n;
	int cnt = 0;

	for (q = c->wq_head; q && cnt < SEND_IOV; q = q->next, cnt++) {
		iov[cnt].iov_base = q->p;
		iov[cnt].iov_len = q->len;
	}
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = (size_t)cnt;
	do
		n = evr__sys.sendmsg(c->fd, &msg,
				     MSG_NOSIGNAL |
					 evr__conn_send_more(c, (uint32_t)cnt));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			/* the socket is full: wait for EPOLLOUT (registering
			 * it if it never was: closed from on_accept) */
			if (!(c->flags & EVR__C_RECV)) {
				int err = ctl(E(c->loop), EPOLL_CTL_ADD, c->fd,
					      EPOLLIN | EPOLLOUT | EPOLLRDHUP |
						  EPOLLET,
					      tag(c, K_CONN));
				if (err < 0) {
					evr__conn_send_failed(c, err);
					return;
				}
				c->flags |= EVR__C_RECV;
			}
			c->flags |= EVR__C_SENDING;
			return;
		}
		evr__conn_send_failed(c, -errno);
		return;
	}
	/* A short write is not taken to mean a full socket: what is left
	 * goes again in this flush pass, until the kernel says EAGAIN. */
	evr__conn_sent(c, (size_t)n);
}

static void on_conn(struct evr_loop *l, void *p, uint32_t ev)
{
	struct evr_conn *c = p;

	(void)l;
	if ((c->flags & EVR__C_CLOSED) && !(c->flags & EVR__C_LINGER))
		return;
	if (c->flags & EVR__C_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		evr__conn_connected(c, -err);
		if (err || (c->flags & EVR__C_CLOSING))
			return;
	}
	if (ev & (EPOLLRDHUP | EPOLLHUP))
		c->flags |= EVR__C_BE_RDHUP;
	if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) &&
	    (c->flags & EVR__C_SENDING)) {
		c->flags &= ~EVR__C_SENDING;
		epoll_conn_send(c);
	}
	if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) &&
	    !(c->flags & (EVR__C_STARVED | EVR__C_BE_READY)))
		conn_read(c);
	if ((ev & EPOLLERR) && !(c->flags & EVR__C_CLOSING)) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err)
			evr__conn_error(c, -err);
	}
}

static int epoll_conn_connect(struct evr_conn *c, const struct sockaddr *sa,
			      socklen_t len)
{
	int err;

	if (connect(c->fd, sa, len) < 0 && errno != EINPROGRESS)
		return -errno;
	/* Writability tells that the connection is made (or failed), even
	 * when connect() finished at once: callbacks never run from within
	 * evr_connect(). */
	err = ctl(E(c->loop), EPOLL_CTL_ADD, c->fd,
		  EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, tag(c, K_CONN));
	if (err < 0)
		return err;
	c->flags |= EVR__C_RECV;
	return 0;
}

/* Connected already: writability brings on_connect, as for a connect. */
static int epoll_conn_adopt(struct evr_conn *c)
{
	int err =
	    ctl(E(c->loop), EPOLL_CTL_ADD, c->fd,
		EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, tag(c, K_CONN));

	if (err < 0)
		return err;
	c->flags |= EVR__C_RECV;
	return 0;
}

static void epoll_conn_pause(struct evr_conn *c)
{
	/* conn_read looks at the flag; only the ready list needs care. */
	if (c->flags & EVR__C_BE_READY) {
		evr__list_del(&c->be.ready);
		c->flags &= ~EVR__C_BE_READY;
	}
}

static void epoll_conn_detach(struct evr_conn *c)
{
	/* an event of this batch may still name c: on_conn finds it
	 * closing, and the socket is never read again */
	epoll_conn_pause(c);
	if (c->flags & EVR__C_RECV)
		epoll_ctl(E(c->loop)->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->flags &= ~(EVR__C_RECV | EVR__C_SENDING);
}

static void epoll_conn_close(struct evr_conn *c)
{
	if (c->flags & EVR__C_BE_READY) {
		evr__list_del(&c->be.ready);
		c->flags &= ~EVR__C_BE_READY;
	}
	unwatch_close(E(c->loop), c->fd, c->flags & EVR__C_RECV);
	c->flags &= ~(EVR__C_SENDING | EVR__C_RECV);
}

/* ---- buffers, signals ---- */

static void epoll_buf_recycle(struct evr_loop *l, struct evr_buf *b)
{
	evr__pool_put(evr__pool_of(l, b->pool), b);
}

static int epoll_signal_start(struct evr_loop *l)
{
	return ctl(E(l), EPOLL_CTL_ADD, l->sigfd, EPOLLIN, tag(l, K_SIGNAL));
}

static void on_signal(struct evr_loop *l, void *p, uint32_t ev)
{
	(void)p, (void)ev;
	evr__signal_dispatch(l);
}

/* ---- the mailbox ---- */

static int epoll_mail_start(struct evr_loop *l)
{
	return ctl(E(l), EPOLL_CTL_ADD, l->mb.efd, EPOLLIN, tag(l, K_MAIL));
}

/* Readiness has no MSG_RING: senders write the eventfd. */
static int epoll_mail_wake(struct evr_loop *from, struct evr_loop *to)
{
	(void)from, (void)to;
	return -EOPNOTSUPP;
}

static void on_mail(struct evr_loop *l, void *p, uint32_t ev)
{
	(void)p, (void)ev;
	evr__mail_wakeup(l, true);
}

/* ---- UDP: recvmmsg and sendmmsg batches ---- */

#define UDP_BATCH  32
#define UDP_BUDGET 4 /* batches per event */

static int epoll_pool_start(struct evr_loop *l, struct evr__pool *p)
{
	(void)l, (void)p; /* the free list is ready */
	return 0;
}

static int epoll_udp_start(struct evr_udp *u)
{
	struct epoll_be *e = E(u->svc.loop);
	int err;

	/* Level-triggered: a batch budget can stop early without losing
	 * readiness. While the pool is empty the socket asks for nothing. */
	err = ctl(e, u->armed ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, u->fd, EPOLLIN,
		  tag(u, K_UDP));
	if (err < 0)
		return err;
	if (!u->armed) {
		u->armed = true;
		u->svc.refs++;
	}
	return 0;
}

static void udp_starve(struct evr_udp *u)
{
	ctl(E(u->svc.loop), EPOLL_CTL_MOD, u->fd, 0, tag(u, K_UDP));
	evr__udp_starved(u);
}

static void on_udp(struct evr_loop *l, void *p, uint32_t ev)
{
	struct evr_udp *u = p;
	struct mmsghdr mm[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	struct sockaddr_storage from[UDP_BATCH];
	struct evr_buf *b[UDP_BATCH];

	(void)ev;
	for (int round = 0; round < UDP_BUDGET && !u->closing; round++) {
		uint32_t k = 0;
		int n;

		while (k < UDP_BATCH && (b[k] = evr__pool_get(&l->upool))) {
			iov[k].iov_base = b[k]->data;
			iov[k].iov_len = b[k]->cap;
			memset(&mm[k], 0, sizeof(mm[k]));
			mm[k].msg_hdr.msg_name = &from[k];
			mm[k].msg_hdr.msg_namelen = sizeof(from[k]);
			mm[k].msg_hdr.msg_iov = &iov[k];
			mm[k].msg_hdr.msg_iovlen = 1;
			k++;
		}
		if (!k) {
			udp_starve(u);
			break;
		}
		do {
			n = recvmmsg(u->fd, mm, k, MSG_DONTWAIT, NULL);
		} while (n < 0 && errno == EINTR);
		for (int i = 0; i < n; i++) {
			b[i]->len = mm[i].msg_len;
			evr__udp_datagram(u, b[i], (struct sockaddr *)&from[i],
					  mm[i].msg_hdr.msg_namelen,
					  mm[i].msg_hdr.msg_flags & MSG_TRUNC);
		}
		for (uint32_t i = n > 0 ? (uint32_t)n : 0; i < k; i++)
			evr_buf_unref(b[i]);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			evr_log_warn("udp %s: recvmmsg: %s", u->svc.name,
				     evr__strerror(-errno));
		if (n < (int)k)
			break;
	}
	evr__udp_batch_flush(u);
}

static void epoll_udp_stop(struct evr_udp *u)
{
	unwatch_close(E(u->svc.loop), u->fd, u->armed);
	if (!u->armed)
		return;
	u->armed = false;
	put_later(E(u->svc.loop), &u->svc);
}

/* ---- watches: one-shot, then out of the set (a restart adds again) ---- */

static int epoll_watch_start(struct evr__watch *w)
{
	return ctl(E(w->loop), EPOLL_CTL_ADD, w->fd, w->events | EPOLLONESHOT,
		   tag(w, K_WATCH));
}

static void on_watch(struct evr_loop *l, void *p, uint32_t ev)
{
	struct evr__watch *w = p;

	if (!w->armed || !w->owner)
		return; /* stopped in this batch: answered after it */
	epoll_ctl(E(l)->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	evr__watch_done(w, (int)(ev & 0xffff));
}

static void epoll_watch_stop(struct evr__watch *w)
{
	struct epoll_be *e = E(w->loop);

	epoll_ctl(e->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	if (e->nwdead == e->wdead_cap) {
		unsigned cap = e->wdead_cap ? 2 * e->wdead_cap : 8;
		struct evr__watch **d = realloc(e->wdead, cap * sizeof(*d));

		if (!d) {
			/* freed with the loop instead */
			evr_log_err("watch: out of memory");
			return;
		}
		e->wdead = d;
		e->wdead_cap = cap;
	}
	e->wdead[e->nwdead++] = w;
}

/* Stopped watches get their answer once no event can name them. */
static void watches_reap(struct epoll_be *e)
{
	while (e->nwdead)
		evr__watch_done(e->wdead[--e->nwdead], -ECANCELED);
}

/* ---- the poll step ---- */

typedef void (*event_handler)(struct evr_loop *l, void *p, uint32_t ev);

static const event_handler handlers[K__COUNT] = {
	[K_LISTENER] = on_listener, [K_CONN] = on_conn,
	[K_SIGNAL] = on_signal,	    [K_UDP] = on_udp,
	[K_WATCH] = on_watch,	    [K_MAIL] = on_mail,
};

static void run_ready(struct evr_loop *l)
{
	struct epoll_be *e = E(l);
	struct evr__list batch;

	if (evr__list_empty(&e->ready))
		return;
	/* Take the current list: connections that go back on it now are
	 * served next time. */
	batch = e->ready;
	batch.next->prev = &batch;
	batch.prev->next = &batch;
	evr__list_init(&e->ready);
	while (!evr__list_empty(&batch)) {
		struct evr_conn *c =
		    EVR_CONTAINER_OF(batch.next, struct evr_conn, be.ready);

		evr__list_del(&c->be.ready);
		c->flags &= ~EVR__C_BE_READY;
		conn_read(c);
	}
}

static int epoll_poll(struct evr_loop *l, int timeout_ms)
{
	struct epoll_be *e = E(l);
	int n;

	/* Listeners stopped since the last batch (from a timer, say) are
	 * referred to by no event any more: release them and let the loop
	 * look again at whether it is done before waiting. */
	watches_reap(e);
	if (e->ndead) {
		while (e->ndead)
			evr__svc_put(e->dead[--e->ndead]);
		return 0;
	}
	if (!evr__list_empty(&e->ready))
		timeout_ms = 0;
	n = epoll_wait(e->epfd, e->events, MAX_EVENTS, timeout_ms);
	if (n < 0) {
		int err = -errno;

		if (err == -EINTR)
			return 0;
		evr_log_err("epoll_wait: %s", evr__strerror(err));
		return err;
	}
	/* handlers stamp connections and start timers: with the time of
	 * now, not of before the wait */
	l->now = evr__now_ms();
	for (int i = 0; i < n; i++) {
		uint64_t d = e->events[i].data.u64;

		handlers[d & KIND_MASK](l, (void *)(uintptr_t)(d & ~KIND_MASK),
					e->events[i].events);
	}
	while (e->ndead)
		evr__svc_put(e->dead[--e->ndead]);
	watches_reap(e);
	run_ready(l);
	return 0;
}

const struct evr__backend evr__backend_epoll = {
	.name = "epoll",
	.udp_batches = true,
	.probe = epoll_probe,
	.init = epoll_init,
	.fini = epoll_fini,
	.poll = epoll_poll,
	.submit = epoll_submit,
	.listener_start = epoll_listener_start,
	.listener_stop = epoll_listener_stop,
	.conn_recv = epoll_conn_recv,
	.conn_pause = epoll_conn_pause,
	.conn_detach = epoll_conn_detach,
	.conn_connect = epoll_conn_connect,
	.conn_adopt = epoll_conn_adopt,
	.pool_start = epoll_pool_start,
	.udp_start = epoll_udp_start,
	.udp_stop = epoll_udp_stop,
	.udp_send = evr__udp_batch_send,
	.udp_flush = evr__udp_batch_flush,
	.conn_send = epoll_conn_send,
	.conn_close = epoll_conn_close,
	.buf_recycle = epoll_buf_recycle,
	.signal_start = epoll_signal_start,
	.watch_start = epoll_watch_start,
	.watch_stop = epoll_watch_stop,
	.mail_start = epoll_mail_start,
	.mail_wake = epoll_mail_wake,
};
