/* SPDX-License-Identifier: MIT */
/*
 * backend.h - the contract between the core and its backends.
 *
 * A backend turns the loop's requests into kernel work (the ops table,
 * calls that flow down) and the kernel's answers into calls of the core's
 * evr__conn_* / evr__listener_* / evr__udp_* functions below (events that
 * flow up). Two backends implement it: io_uring (uring.c) and epoll
 * (epoll.c). Every hook exists in both; there are no NULL checks at call
 * sites. Nothing outside core/backend/ knows which backend runs, except
 * through the ops table and its few data fields.
 *
 * Layout: the ops table, then what backends may call in the core.
 */
#ifndef EVRING_BACKEND_H
#define EVRING_BACKEND_H

#include "evring.h"

struct evr__pool;
struct evr__svc;
struct evr__watch;

struct evr__backend {
	const char *name;
	/* Connection sockets are blocking: io_uring waits by polling itself,
	 * and a nonblocking socket would make a send retried from its
	 * workers fail with -EAGAIN. epoll needs them nonblocking. */
	bool blocking_sockets;
	/* Datagrams queued by udp_send wait for udp_flush (epoll's sendmmsg
	 * batches), which the flush pass calls once per iteration. */
	bool udp_batches;
	/* Can this backend run here? 0, or -errno with words in why. */
	int (*probe)(const struct evr_loop_opts *o, char *why, size_t whylen);
	int (*init)(struct evr_loop *l, const struct evr_loop_opts *o);
	void (*fini)(struct evr_loop *l);
	/* Submit pending work, wait up to timeout_ms (-1: forever), set
	 * l->now to the time after the wait, then dispatch what completed
	 * (handlers stamp connections and start timers with l->now).
	 * Returns 0 or -errno (fatal). */
	int (*poll)(struct evr_loop *l, int timeout_ms);
	/* Hand the kernel what is prepared without waiting (closes prepared
	 * in the last iteration, before evr_loop_run() returns). */
	void (*submit)(struct evr_loop *l);
	/* Start (or restart after a pause) accepting. */
	int (*listener_start)(struct evr_listener *ls);
	/* Stop accepting and close the socket; calls evr__svc_put() for
	 * each kernel reference it drops. */
	void (*listener_stop)(struct evr_listener *ls);
	/* Start (or restart) receiving on a connection. */
	int (*conn_recv)(struct evr_conn *c);
	/* Connect an outbound connection; completion through
	 * evr__conn_connected(). -errno for an immediate failure. */
	int (*conn_connect)(struct evr_conn *c, const struct sockaddr *sa,
			    socklen_t len);
	/* Like conn_connect for a socket connected already. */
	int (*conn_adopt)(struct evr_conn *c);
	/* Stop receiving (backpressure); conn_recv starts again. */
	void (*conn_pause)(struct evr_conn *c);
	/* Stop watching the socket for good, before returning, without
	 * closing it: another owner takes it (evr_conn_detach). Kernel
	 * references may remain (io_uring: the cancelled receive's last
	 * completion); they only drop c->refs. */
	void (*conn_detach)(struct evr_conn *c);
	/* The write queue is not empty and no send is in flight: send. */
	void (*conn_send)(struct evr_conn *c);
	/* Release the connection's kernel work and close its fd. */
	void (*conn_close)(struct evr_conn *c);
	/* A pool buffer's last reference dropped: give it back. */
	void (*buf_recycle)(struct evr_loop *l, struct evr_buf *b);
	/* Watch l->sigfd (the signal pipe) for readability. */
	int (*signal_start)(struct evr_loop *l);
	/* A pool was made: hand its buffers to the kernel (io_uring). */
	int (*pool_start)(struct evr_loop *l, struct evr__pool *p);
	/* UDP: start (or restart) receiving; stop and close the socket
	 * (evr__svc_put() for each kernel reference dropped); send one
	 * datagram (0, or -errno when it cannot even be queued); push out
	 * queued datagrams. */
	int (*udp_start)(struct evr_udp *u);
	void (*udp_stop)(struct evr_udp *u);
	int (*udp_send)(struct evr_udp *u, struct evr_buf *b, char *p,
			uint32_t len, const struct sockaddr *peer,
			socklen_t peerlen);
	void (*udp_flush)(struct evr_udp *u);
	/* Watch l->mb.efd, the mailbox's eventfd, for readability; decide
	 * whether loops of its group may wake it by MSG_RING
	 * (l->mb.msgring). */
	int (*mail_start)(struct evr_loop *l);
	/* Wake the loop to (of from's group) with from's own means, on
	 * from's thread: 0, or -EOPNOTSUPP and the caller writes to's
	 * eventfd. */
	int (*mail_wake)(struct evr_loop *from, struct evr_loop *to);
	/* Watch w->fd once for w->events (EVR__W_FD), or for the exit of
	 * the child of the pidfd w->fd (EVR__W_CHILD: io_uring uses
	 * IORING_OP_WAITID where it can and sets w->waitid; otherwise the
	 * pidfd is watched for readability). Every start is answered by
	 * exactly one evr__watch_done(), a stopped one with -ECANCELED. */
	int (*watch_start)(struct evr__watch *w);
	void (*watch_stop)(struct evr__watch *w);
};

extern const struct evr__backend evr__backend_uring;
extern const struct evr__backend evr__backend_epoll;

/* ---- what backends call in the core ---- */

/* Listeners: an accepted socket (NULL when refused or out of memory: fd
 * closed); a fatal accept error (EMFILE and friends) pauses accepting for
 * a while; an accept succeeded after a pause. */
struct evr_conn *evr__conn_new(struct evr_listener *ls, int fd);
void evr__listener_pause(struct evr_listener *ls, int err);
void evr__listener_resumed(struct evr_listener *ls);

/* Connections. b is lent with the loop's reference, dropped after. */
void evr__conn_connected(struct evr_conn *c, int err);
void evr__conn_data(struct evr_conn *c, struct evr_buf *b);
void evr__conn_eof(struct evr_conn *c);
void evr__conn_sent(struct evr_conn *c, size_t n);
/* A receive or socket error; the send in flight, if any, goes on. */
void evr__conn_error(struct evr_conn *c, int err);
/* The send in flight failed. */
void evr__conn_send_failed(struct evr_conn *c, int err);
/* Receiving stopped because the pool was empty; the core restarts it
 * (conn_recv) when buffers come back. */
void evr__conn_starved(struct evr_conn *c);
/* Drop one kernel reference; the connection is freed later when closed. */
void evr__conn_put(struct evr_conn *c);

/* UDP: a datagram arrived (b lent with one reference); a reply could not
 * be sent or queued; receiving stopped because the UDP pool was empty. */
void evr__udp_datagram(struct evr_udp *u, struct evr_buf *b,
		       const struct sockaddr *peer, socklen_t peerlen,
		       bool truncated);
void evr__udp_tx_drop(struct evr_udp *u);
void evr__udp_starved(struct evr_udp *u);

/* UDP replies in sendmmsg batches, for a backend's udp_send and udp_flush
 * (with udp_batches set): queue one; send what is queued. */
int evr__udp_batch_send(struct evr_udp *u, struct evr_buf *b, char *p,
			uint32_t len, const struct sockaddr *peer,
			socklen_t peerlen);
void evr__udp_batch_flush(struct evr_udp *u);

/* Listeners, connectors and UDP sockets: drop a reference. */
void evr__svc_put(struct evr__svc *svc);

/* Pool buffers: take a free one (epoll; NULL when empty), or hand out the
 * one the kernel chose (io_uring), each with one reference. */
struct evr_buf *evr__pool_get(struct evr__pool *p);
struct evr_buf *evr__pool_take(struct evr__pool *p, uint32_t id);
/* A returned buffer on the free list, to be used first. */
void evr__pool_put(struct evr__pool *p, struct evr_buf *b);

/* The signal pipe is readable. */
void evr__signal_dispatch(struct evr_loop *l);

/* A mailbox wake-up arrived (by the eventfd when efd, else by MSG_RING):
 * run the messages. A MSG_RING wake-up that failed: wake to through its
 * eventfd instead. */
void evr__mail_wakeup(struct evr_loop *l, bool efd);
void evr__mail_kick(struct evr_loop *to);
/* A watch completed: res is the poll events, or -errno; for a child
 * waited for with IORING_OP_WAITID, 0 with w->si filled in. */
void evr__watch_done(struct evr__watch *w, int res);

#endif /* EVRING_BACKEND_H */
