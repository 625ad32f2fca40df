/* SPDX-License-Identifier: MIT */
/*
 * conn.c - connections: lifetime, write queue, backpressure, timeouts,
 * limits, close.
 *
 * Lifetime. A connection is allocated when its socket is accepted, together
 * with the module's per-connection state. evr_close() and evr_abort() only
 * mark it and put it on the loop's flush list; the flush pass, run once per
 * loop iteration outside every module callback, "finishes" it: on_close
 * runs, then the socket is released (after a lingering close when input is
 * waiting unread). Its memory is freed in the reap pass once no kernel
 * operation refers to it any more (c->refs == 0): no callback ever sees
 * freed memory, and no completion ever arrives for a freed connection.
 *
 * Write queue. evr_send() appends a reference to a buffer slice; nothing is
 * copied. At most one send is in flight per socket (the first wq_inflight
 * entries), so bytes never reorder; the flush pass starts a send for every
 * connection that has queued bytes and none in flight, which lets many
 * evr_send() calls of one iteration leave in one system call.
 *
 * Backpressure. Above its listener's wq_high queued bytes a connection stops
 * reading, and resumes at wq_low; above wq_max it is aborted. Above the
 * loop's budget of queued bytes every connection that has bytes of its own
 * queued stops reading once the buffer in hand is handled; each resumes
 * when its own queue is empty, all of them below three quarters of the
 * budget. So peers that do not read hold up only themselves.
 *
 * Timeouts. One timer per connection serves the idle and the send timeout.
 * Activity only stores a timestamp; the timer fires at the earliest time a
 * timeout could expire, checks, and re-arms for the remainder, so an event
 * costs O(1) and a connection costs one timer operation per period.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define WQ_CHUNK	 64
#define REFUSE_LOG_MS	 10000
#define ALLOC_BACKOFF_MS 100

struct wq_chunk {
	struct wq_chunk *next;
	struct evr__wq e[WQ_CHUNK];
};

static void conn_release(struct evr_conn *c);

/* Memory goes in the next reap pass. */
static void zombie_push(struct evr_conn *c)
{
	struct evr_loop *l = c->loop;

	c->flags |= EVR__C_ZOMBIE;
	c->next = l->zombies;
	l->zombies = c;
}

/* ---- write queue entries ---- */

static struct evr__wq *wq_alloc(struct evr_loop *l)
{
	struct evr__wq *e = l->wq_free;

	if (EVR_UNLIKELY(!e)) {
		struct wq_chunk *ch = evr__malloc(sizeof(*ch));

		if (!ch)
			return NULL;
		ch->next = l->wq_chunks;
		l->wq_chunks = ch;
		for (int i = WQ_CHUNK - 1; i >= 0; i--) {
			ch->e[i].next = l->wq_free;
			l->wq_free = &ch->e[i];
		}
		e = l->wq_free;
	}
	l->wq_free = e->next;
	e->next = NULL;
	return e;
}

static void wq_release(struct evr_loop *l, struct evr__wq *e)
{
	evr_buf_unref(e->buf);
	e->buf = NULL;
	e->next = l->wq_free;
	l->wq_free = e;
}

void evr__wq_fini(struct evr_loop *l)
{
	struct wq_chunk *ch = l->wq_chunks;

	while (ch) {
		struct wq_chunk *next = ch->next;

		free(ch);
		ch = next;
	}
	l->wq_chunks = NULL;
	l->wq_free = NULL;
}

static void queued_sub(struct evr_conn *c, size_t n)
{
	struct evr_loop *l = c->loop;

	c->wq_bytes -= n;
	l->st.bytes_queued -= n;
	if (EVR_UNLIKELY(l->over_budget) && l->st.bytes_queued <= l->queued_low)
		l->over_budget = false; /* the resume pass wakes the paused */
}

/* Drop queued entries that are not part of the send in flight. */
static void wq_drop(struct evr_conn *c)
{
	struct evr_loop *l = c->loop;
	struct evr__wq **pp = &c->wq_head;
	struct evr__wq *e;

	c->wq_tail = NULL;
	for (uint32_t i = 0; i < c->wq_inflight && *pp; i++) {
		c->wq_tail = *pp;
		pp = &(*pp)->next;
	}
	while ((e = *pp)) {
		*pp = e->next;
		queued_sub(c, e->len);
		wq_release(l, e);
		c->wq_n--;
	}
}

static void schedule_flush(struct evr_conn *c)
{
	struct evr_loop *l = c->loop;

	if (c->flags & (EVR__C_FLUSH | EVR__C_CLOSED))
		return;
	c->flags |= EVR__C_FLUSH;
	c->next = NULL;
	*l->flush_tail = c;
	l->flush_tail = &c->next;
}

/* ---- reading paused and resumed ---- */

static void read_pause(struct evr_conn *c, uint32_t why)
{
	struct evr_loop *l = c->loop;
	bool was = c->flags & EVR__C_PAUSED;

	c->flags |= why;
	if (was || (c->flags & EVR__C_CLOSING))
		return;
	if (c->flags & EVR__C_STARVED) {
		evr__list_del(&c->starve);
		c->flags &= ~EVR__C_STARVED;
	}
	l->st.read_pauses++;
	l->be_ops->conn_pause(c);
}

static void held_deliver(struct evr_conn *c);

static void read_resume(struct evr_conn *c, uint32_t why)
{
	int err;

	if (!(c->flags & why))
		return;
	c->flags &= ~why;
	if (c->flags & (EVR__C_PAUSED | EVR__C_CLOSING))
		return;
	if (c->held_head) {
		/* not from within the caller (evr_conn_resume from a module
		 * that is in the middle of something): the resume pass hands
		 * them over, then reading restarts */
		if (!(c->flags & EVR__C_REDELIVER)) {
			c->flags |= EVR__C_REDELIVER;
			evr__list_add_tail(&c->loop->redeliver, &c->redeliver);
		}
		return;
	}
	if (c->flags & EVR__C_EOF)
		return;
	err = c->loop->be_ops->conn_recv(c);
	if (err < 0)
		evr_abort(c, err);
}

/* The resume pass: bytes held while reading was paused go to the modules
 * of connections resumed since, then their reading restarts. */
void evr__conn_redeliver_all(struct evr_loop *l)
{
	while (!evr__list_empty(&l->redeliver)) {
		struct evr_conn *c = EVR_CONTAINER_OF(
		    l->redeliver.next, struct evr_conn, redeliver);
		int err;

		evr__list_del(&c->redeliver);
		c->flags &= ~EVR__C_REDELIVER;
		if (c->flags & (EVR__C_PAUSED | EVR__C_CLOSING))
			continue; /* paused again: the next resume */
		held_deliver(c);
		if (c->flags & (EVR__C_PAUSED | EVR__C_CLOSING | EVR__C_EOF))
			continue;
		err = l->be_ops->conn_recv(c);
		if (err < 0)
			evr_abort(c, err);
	}
}

void evr__conn_resume_all(struct evr_loop *l)
{
	/* (held bytes delivered here may push the loop over its budget
	 * again: those connections wait for the next pass) */
	while (!l->over_budget && !evr__list_empty(&l->paused_all)) {
		struct evr_conn *c = EVR_CONTAINER_OF(l->paused_all.next,
						      struct evr_conn, paused);

		evr__list_del(&c->paused);
		read_resume(c, EVR__C_PAUSED_ALL);
	}
}

/* ---- timeouts ---- */

static uint64_t timeout_period(const struct evr_conn *c)
{
	const struct evr_conn_limits *lim = &c->svc->lim;
	uint32_t a = lim->idle_timeout_ms, b = lim->send_timeout_ms;

	if (!a || (b && b < a))
		return b;
	return a;
}

static void conn_timeout(struct evr_timer *t)
{
	struct evr_conn *c = EVR_CONTAINER_OF(t, struct evr_conn, timer);
	const struct evr_conn_limits *lim = &c->svc->lim;
	struct evr_loop *l = c->loop;
	uint64_t now = l->now, next = UINT64_MAX;

	if (c->flags & EVR__C_CLOSED)
		return;
	if (lim->idle_timeout_ms) {
		uint64_t due = c->last_active + lim->idle_timeout_ms;

		if (now >= due) {
			l->st.idle_timeouts++;
			evr_log_debug("%s: connection idle for %u ms: closing",
				      c->svc->name, lim->idle_timeout_ms);
			evr_abort(c, -ETIMEDOUT);
			return;
		}
		next = due - now;
	}
	if (lim->send_timeout_ms) {
		uint64_t due = c->last_progress + lim->send_timeout_ms;

		if (c->wq_bytes && now >= due) {
			l->st.send_timeouts++;
			evr_log_debug("%s: %zu bytes not taken by the peer for "
				      "%u ms: closing",
				      c->svc->name, c->wq_bytes,
				      lim->send_timeout_ms);
			evr_abort(c, -ETIMEDOUT);
			return;
		}
		if (!c->wq_bytes)
			due = now + lim->send_timeout_ms;
		if (due - now < next)
			next = due - now;
	}
	evr_timer_start(l, &c->timer, next);
}

/* ---- accept ---- */

static bool refuse(struct evr_listener *ls, int fd, const char *why,
		   uint32_t limit)
{
	struct evr_loop *l = ls->svc.loop;

	l->st.conns_refused++;
	if (evr__ratelimit(l, &l->rl_refuse, REFUSE_LOG_MS,
			   "accept: connections refused by a limit"))
		evr_log_warn("accept (%s): refused a connection: %s limit of "
			     "%u reached (more are summed up in %d s)",
			     ls->cur->name, why, limit, REFUSE_LOG_MS / 1000);
	close(fd);
	return true;
}

/* A connection of source s goes: from the loop's table, and from the
 * group's sketch where it counted (flags EVR__C_GSRC). */
static void source_put(struct evr_loop *l, struct evr__source *s,
		       uint32_t flags)
{
	if (flags & EVR__C_GSRC)
		evr__gsource_put(l->group, s->gslot);
	evr__source_put(l, s);
}

/* Undo the counts of the limits taken so far (flags EVR__C_GLOBAL,
 * EVR__C_GSVC): at a refusal, and when the connection is freed. */
static void limits_put(struct evr_loop *l, struct evr__svc *svc, uint32_t flags)
{
	if (flags & EVR__C_GLOBAL)
		atomic_fetch_sub_explicit(&l->group->conns, 1,
					  memory_order_relaxed);
	if (flags & EVR__C_GSVC)
		atomic_fetch_sub_explicit(svc->gconns, 1, memory_order_relaxed);
}

/* Count one more in c, a counter of every loop, unless that passes max. */
static bool count_take(atomic_uint *c, uint32_t max)
{
	if (atomic_fetch_add_explicit(c, 1, memory_order_relaxed) < max)
		return true;
	atomic_fetch_sub_explicit(c, 1, memory_order_relaxed);
	return false;
}

/*
 * The loop's and the service's limits; the source's, which needs the
 * peer's address, only when one is set. In a group the global and the
 * service's limits are counters of every loop, the source's the group's
 * sketch (gshare.c); they are touched only when the limit is set. *flags
 * gets what was counted.
 */
static bool over_limits(struct evr_listener *ls, int fd,
			struct evr__source **src, uint32_t *flags)
{
	struct evr_loop *l = ls->svc.loop;
	struct evr__svc *svc = ls->cur;
	uint32_t f = 0, max;
	int err;

	if ((max = l->max_conns)) {
		if (l->group ? !count_take(&l->group->conns, max)
			     : l->st.conns_open >= max)
			return refuse(ls, fd, "global", max);
		f |= l->group ? EVR__C_GLOBAL : 0;
	}
	if ((max = svc->lim.max_conns)) {
		if (svc->gconns ? !count_take(svc->gconns, max)
				: svc->nconns >= max) {
			limits_put(l, svc, f);
			return refuse(ls, fd, "service", max);
		}
		f |= svc->gconns ? EVR__C_GSVC : 0;
	}
	*flags = f;
	/* behind a PROXY header the source is known only later (proxy.c) */
	if (!(max = l->max_per_source) || svc->proxy)
		return false;
	*src = evr__source_get(l, fd, &err);
	if (!*src) {
		limits_put(l, svc, f);
		if (err == -ENOTCONN) { /* reset before we saw it */
			close(fd);
			return true;
		}
		return refuse(ls, fd, "memory for the per-source", 0);
	}
	if (evr__source_over(l, *src)) {
		evr__source_put(l, *src);
		limits_put(l, svc, f);
		return refuse(ls, fd, "per-source", max);
	}
	*flags = f | (l->group ? EVR__C_GSRC : 0);
	return false;
}

/* Memory and bookkeeping of a new connection of svc; NULL when out of
 * memory (nothing else done). */
static struct evr_conn *conn_alloc(struct evr__svc *svc, int fd,
				   struct evr__source *src)
{
	struct evr_loop *l = svc->loop;
	struct evr_conn *c;

	c = evr__calloc(1, sizeof(*c) + svc->proto.p->state_size +
			       evr__conn_ext_size(svc));
	if (EVR_UNLIKELY(!c))
		return NULL;
	c->loop = l;
	c->svc = svc;
	svc->refs++;
	svc->nconns++;
	c->fd = fd;
	c->src = src;
	evr__conn_ext_init(c);
	c->last_active = c->last_progress = l->now;
	evr__list_init(&c->starve);
	evr__list_init(&c->paused);
	evr__list_init(&c->redeliver);
	evr__list_init(&c->be.ready);
	evr__list_add_tail(&l->conns, &c->link);
	l->st.conns_open++;
	evr_timer_init(&c->timer, conn_timeout);
	if (timeout_period(c))
		evr_timer_start(l, &c->timer, timeout_period(c));
	return c;
}

struct evr_conn *evr__conn_new(struct evr_listener *ls, int fd)
{
	struct evr_loop *l = ls->svc.loop;
	struct evr__source *src = NULL;
	struct evr_conn *c;
	uint32_t counted = 0;
	int err;

	if (EVR_UNLIKELY(ls->draining))
		ls->drain_last = l->now; /* it closes once quiet */
	if (over_limits(ls, fd, &src, &counted))
		return NULL;
	/* Out of memory a moment ago: refuse at once rather than ask the
	 * allocator again for every client of a flood (a failing allocator
	 * can be slow: mimalloc tries to map a new arena each time), so that
	 * the connections already open keep the loop. */
	c = EVR_UNLIKELY(l->now < l->alloc_backoff_until)
		? NULL
		: conn_alloc(ls->cur, fd, src);
	if (EVR_UNLIKELY(!c)) {
		if (l->now >= l->alloc_backoff_until)
			l->alloc_backoff_until = l->now + ALLOC_BACKOFF_MS;
		l->st.alloc_fails++;
		if (evr__ratelimit(l, &l->rl_alloc, REFUSE_LOG_MS,
				   "accept: connections closed for want of "
				   "memory"))
			evr_log_err("accept (%s): out of memory for a "
				    "connection; closed it (more are summed "
				    "up in %d s)",
				    ls->cur->name, REFUSE_LOG_MS / 1000);
		if (src)
			source_put(l, src, counted);
		limits_put(l, ls->cur, counted);
		close(fd);
		return NULL;
	}
	c->flags |= counted;
	l->st.conns_accepted++;
	/* a PROXY header first: on_accept once it is in (proxy.c) */
	err = evr__proxy_start(c) ? 0 : c->svc->proto.on_accept(c);
	if (err < 0) {
		evr_abort(c, err);
		return c;
	}
	if (l->draining && !(c->ext && c->ext->proxy_pending))
		c->svc->proto.on_drain(c);
	if (c->flags & EVR__C_CLOSING)
		return c;
	err = l->be_ops->conn_recv(c);
	if (err < 0)
		evr_abort(c, err);
	return c;
}

/* ---- outbound connections ---- */

static void connector_release(struct evr__svc *svc)
{
	evr__svc_cfg_done(svc);
	free(EVR_CONTAINER_OF(svc, struct evr_connector, svc));
}

int evr_connector_new(struct evr_loop *l, const struct evr_listen_cfg *cfg,
		      struct evr_connector **out)
{
	struct evr_connector *cn;
	char why[160];

	if (!cfg || !cfg->proto)
		return -EINVAL;
	if (evr_proto_validate(cfg->proto, why, sizeof(why)) < 0) {
		evr_log_err("connector: %s", why);
		return -EINVAL;
	}
	cn = calloc(1, sizeof(*cn));
	if (!cn)
		return -ENOMEM;
	evr__svc_init(&cn->svc, l, cfg, connector_release);
	*out = cn;
	return 0;
}

void evr_connector_free(struct evr_connector *cn)
{
	if (!cn || cn->closed)
		return;
	cn->closed = true;
	evr__svc_put(&cn->svc);
}

int evr_connect(struct evr_connector *cn, const struct sockaddr *dst,
		socklen_t dstlen, const struct sockaddr *src, socklen_t srclen,
		struct evr_conn **out)
{
	struct evr_loop *l = cn->svc.loop;
	struct evr_conn *c;
	int fd, err, one = 1;

	if (cn->closed || l->stopping || l->draining)
		return -ESHUTDOWN;
	fd = socket(dst->sa_family,
		    SOCK_STREAM | SOCK_CLOEXEC |
			(l->be_ops->blocking_sockets ? 0 : SOCK_NONBLOCK),
		    IPPROTO_TCP);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (src) {
		/* many sources, one port range each: do not reserve a port
		 * at bind time, let connect pick one per destination */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
			   sizeof(one));
		if (bind(fd, src, srclen) < 0) {
			err = -errno;
			goto out_close;
		}
	}
	c = conn_alloc(&cn->svc, fd, NULL);
	if (!c) {
		err = -ENOMEM;
		goto out_close;
	}
	c->flags |= EVR__C_CONNECTING;
	err = l->be_ops->conn_connect(c, dst, dstlen);
	if (err < 0) {
		/* nothing was told of c: undo it quietly */
		evr_timer_stop(l, &c->timer);
		c->flags |= EVR__C_CLOSED;
		zombie_push(c);
		c->fd = -1;
		goto out_close;
	}
	l->st.conns_connected++;
	*out = c;
	return 0;

out_close:
	close(fd);
	return err;
}

int evr_adopt(struct evr_connector *cn, int fd, struct evr_conn **out)
{
	struct evr_loop *l = cn->svc.loop;
	struct evr_conn *c;
	int fl, err;

	if (cn->closed || l->stopping || l->draining)
		return -ESHUTDOWN;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	fl = l->be_ops->blocking_sockets ? fl & ~O_NONBLOCK : fl | O_NONBLOCK;
	if (fcntl(fd, F_SETFL, fl) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	c = conn_alloc(&cn->svc, fd, NULL);
	if (!c)
		return -ENOMEM;
	c->flags |= EVR__C_CONNECTING;
	err = l->be_ops->conn_adopt(c);
	if (err < 0) {
		evr_timer_stop(l, &c->timer);
		c->flags |= EVR__C_CLOSED;
		zombie_push(c);
		return err;
	}
	*out = c;
	return 0;
}

void evr__conn_connected(struct evr_conn *c, int err)
{
	c->flags &= ~EVR__C_CONNECTING;
	if (c->flags & EVR__C_CLOSING) {
		/* closed meanwhile: finish it now, with the connect's error */
		if (err < 0 && !c->err)
			c->err = err;
		schedule_flush(c);
		return;
	}
	if (err < 0) {
		evr_abort(c, err);
		return;
	}
	c->last_active = c->last_progress = c->loop->now;
	c->svc->proto.on_connect(c);
	if (c->flags & EVR__C_CLOSING)
		return;
	err = c->loop->be_ops->conn_recv(c);
	if (err < 0) {
		evr_abort(c, err);
		return;
	}
	if (c->wq_head)
		schedule_flush(c);
}

/* ---- events from the backends ---- */

/* Hand b to the module (lent for the call). */
static void deliver(struct evr_conn *c, struct evr_buf *b)
{
	struct evr_loop *l = c->loop;

	if (c->ext)
		c->ext->bytes_in += b->len;
	c->last_active = l->now;
	c->svc->proto.on_data(c, b);
	/* Over the loop's budget, a connection with bytes of its own queued
	 * reads no more until they are sent: the ones that fill the budget
	 * wait, the others go on. */
	if (EVR_UNLIKELY(l->over_budget) && c->wq_bytes &&
	    !(c->flags & (EVR__C_CLOSING | EVR__C_PAUSED_ALL))) {
		read_pause(c, EVR__C_PAUSED_ALL);
		evr__list_add_tail(&l->paused_all, &c->paused);
	}
}

/*
 * Bytes that arrive while reading is paused are held, not handed over: a
 * pause must stop the module from making more replies at once, not only
 * after every receive already under way (io_uring's receive stops only
 * when its cancel completes; each buffer of pipelined requests may grow
 * into several times its size of replies). They go to the module, in
 * order, when reading resumes. A held buffer that uses little of its pool
 * buffer is copied into one of its size, so that paused connections do not
 * pin the pool.
 */
static void hold(struct evr_conn *c, struct evr_buf *b)
{
	struct evr_loop *l = c->loop;

	if (b->kind == EVR__BUF_POOL &&
	    (b->len < b->cap / 2 || l->pool.nfree < l->pool.count / 4)) {
		struct evr_buf *copy = evr_buf_new(l, b->len);

		if (copy) {
			memcpy(copy->data, b->data, b->len);
			copy->len = b->len;
			b = copy;
		} else {
			evr_buf_ref(b);
		}
	} else {
		evr_buf_ref(b);
	}
	b->next = NULL;
	if (c->held_tail)
		c->held_tail->next = b;
	else
		c->held_head = b;
	c->held_tail = b;
}

static void held_drop(struct evr_conn *c)
{
	struct evr_buf *b;

	while ((b = c->held_head)) {
		c->held_head = b->next;
		b->next = NULL;
		evr_buf_unref(b);
	}
	c->held_tail = NULL;
}

static void held_deliver(struct evr_conn *c)
{
	struct evr_buf *b;

	while ((b = c->held_head) &&
	       !(c->flags & (EVR__C_PAUSED | EVR__C_CLOSING))) {
		c->held_head = b->next;
		if (!c->held_head)
			c->held_tail = NULL;
		b->next = NULL;
		deliver(c, b);
		evr_buf_unref(b);
	}
	if (!c->held_head && (c->flags & EVR__C_EOF_HELD)) {
		c->flags &= ~EVR__C_EOF_HELD;
		if (!(c->flags & EVR__C_CLOSING))
			c->svc->proto.on_eof(c);
	}
}

void evr__conn_data(struct evr_conn *c, struct evr_buf *b)
{
	c->loop->st.bytes_in += b->len;
	c->flags |= EVR__C_GOT_DATA;
	if (EVR_UNLIKELY(c->ext && c->ext->proxy_pending) &&
	    ((c->flags & EVR__C_CLOSING) || !evr__proxy_feed(c, b)))
		; /* the PROXY header first (proxy.c); what follows is data */
	else if (EVR_UNLIKELY(c->flags & EVR__C_CLOSING))
		; /* closing: later input is discarded */
	else if (EVR_UNLIKELY((c->flags & EVR__C_PAUSED) || c->held_head))
		hold(c, b); /* behind what is held already, in order */
	else
		deliver(c, b);
	evr_buf_unref(b);
}

void evr__conn_eof(struct evr_conn *c)
{
	c->flags |= EVR__C_EOF;
	if (c->flags & EVR__C_LINGER) {
		conn_release(c);
		return;
	}
	if (EVR_UNLIKELY(c->ext) && evr__proxy_eof(c))
		return;
	if (c->flags & EVR__C_CLOSING)
		return;
	if (c->held_head) /* after the bytes that came before it */
		c->flags |= EVR__C_EOF_HELD;
	else
		c->svc->proto.on_eof(c);
}

void evr__conn_sent(struct evr_conn *c, size_t n)
{
	struct evr_loop *l = c->loop;
	size_t sent = n;

	while (n && c->wq_head) {
		struct evr__wq *e = c->wq_head;

		if (n < e->len) {
			e->p += n;
			e->len -= (uint32_t)n;
			n = 0;
			break;
		}
		n -= e->len;
		c->wq_head = e->next;
		if (!c->wq_head)
			c->wq_tail = NULL;
		wq_release(l, e);
		c->wq_n--;
	}
	c->wq_inflight = 0;
	queued_sub(c, sent);
	l->st.bytes_out += sent;
	if (c->ext)
		c->ext->bytes_out += sent;
	if (c->flags & EVR__C_CLOSED) {
		wq_drop(c);
		return;
	}
	if (sent) {
		c->last_active = c->last_progress = l->now;
		if ((c->flags & EVR__C_PAUSED_WQ) &&
		    c->wq_bytes <= c->svc->lim.wq_low)
			read_resume(c, EVR__C_PAUSED_WQ);
		if ((c->flags & EVR__C_PAUSED_ALL) && !c->wq_bytes) {
			evr__list_del(&c->paused);
			read_resume(c, EVR__C_PAUSED_ALL);
		}
		c->svc->proto.on_sent(c, sent);
	}
	if (c->wq_head || (c->flags & EVR__C_CLOSING))
		schedule_flush(c);
}

void evr__conn_error(struct evr_conn *c, int err)
{
	if (c->flags & EVR__C_LINGER) {
		conn_release(c);
		return;
	}
	evr_abort(c, err);
}

void evr__conn_send_failed(struct evr_conn *c, int err)
{
	/* The send in flight is over: its entries may be dropped now. */
	c->wq_inflight = 0;
	if (c->flags & EVR__C_CLOSED) {
		wq_drop(c);
		return;
	}
	evr_abort(c, err);
}

/* Does c still read: open, or closed and lingering (it reads and throws
 * away until the peer's EOF, lest unread bytes turn its close into a
 * reset)? */
static bool reads_on(const struct evr_conn *c)
{
	return !(c->flags & EVR__C_CLOSING) || (c->flags & EVR__C_LINGER);
}

void evr__conn_starved(struct evr_conn *c)
{
	struct evr_loop *l = c->loop;

	l->st.recv_nobufs++;
	if (c->flags & (EVR__C_STARVED | EVR__C_PAUSED) || !reads_on(c))
		return;
	c->flags |= EVR__C_STARVED;
	evr__list_add_tail(&l->starved, &c->starve);
}

void evr__conn_put(struct evr_conn *c)
{
	if (--c->refs || !(c->flags & EVR__C_CLOSED) ||
	    (c->flags & (EVR__C_ZOMBIE | EVR__C_LINGER)))
		return;
	zombie_push(c);
}

/* ---- the end ---- */

/* The backend lets go of the socket; memory goes in the reap pass once no
 * kernel operation refers to the connection. */
static void conn_release(struct evr_conn *c)
{
	struct evr_loop *l = c->loop;

	evr_timer_stop(l, &c->timer);
	if (c->flags & EVR__C_DETACHED) {
		/* the socket is another owner's: nothing to close */
		if (c->refs == 0 && !(c->flags & EVR__C_ZOMBIE))
			zombie_push(c);
		return;
	}
	c->flags &= ~EVR__C_LINGER;
	if (c->flags & EVR__C_RESET) {
		/* bytes were thrown away: end with a reset, not a FIN the
		 * peer would take for the end of a whole stream */
		struct linger lin = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
	}
	l->be_ops->conn_close(c);
	if (c->refs == 0 && !(c->flags & EVR__C_ZOMBIE))
		zombie_push(c);
}

static void linger_expired(struct evr_timer *t)
{
	conn_release(EVR_CONTAINER_OF(t, struct evr_conn, timer));
}

/*
 * Closing a socket whose receive queue holds unread bytes, or that
 * receives bytes after the close, makes the kernel send a reset instead of
 * a FIN, and a reset can destroy what the peer has not read yet: the reply
 * we just sent. So when input is pending, or the peer has talked and not
 * yet shut down its side, send our FIN with shutdown(SHUT_WR), read and
 * discard until the peer's EOF or for at most EVR__LINGER_MS, then close
 * (a "lingering close", as in nginx).
 */
static bool conn_linger(struct evr_conn *c)
{
	struct evr_loop *l = c->loop;
	int pending = 0;

	if (c->err || (c->flags & (EVR__C_EOF | EVR__C_DETACHED)) ||
	    l->stopping)
		return false;
	/* A peer that has sent us something and not yet shut down its side
	 * may still be sending (a request body a module answered without
	 * reading, the rest of a pipeline): bytes arriving after the close
	 * would bring the same reset. Only a peer that sent nothing (a
	 * daytime client) closes without lingering when nothing waits. */
	if (!(c->flags & EVR__C_GOT_DATA) &&
	    (ioctl(c->fd, FIONREAD, &pending) < 0 || pending <= 0))
		return false;
	if (shutdown(c->fd, SHUT_WR) < 0)
		return false;
	c->flags &= ~EVR__C_PAUSED;
	if (l->be_ops->conn_recv(c) < 0)
		return false;
	c->flags |= EVR__C_LINGER;
	evr_timer_stop(l, &c->timer);
	evr_timer_init(&c->timer, linger_expired);
	evr_timer_start(l, &c->timer, EVR__LINGER_MS);
	return true;
}

/* Closes by reason, as on_close hears it. */
static void count_close(struct evr_loop *l, int err)
{
	switch (err) {
	case 0:
		l->st.closes_ok++;
		break;
	case -ETIMEDOUT:
		l->st.closes_timeout++;
		break;
	case -ESHUTDOWN:
		l->st.closes_shutdown++;
		break;
	default:
		l->st.closes_error++;
	}
}

/*
 * The end of a connection: the module hears of it, then the socket goes
 * (at once, or after a lingering close).
 */
static void conn_finish(struct evr_conn *c)
{
	c->flags |= EVR__C_CLOSED | EVR__C_CLOSING;
	if (c->flags & EVR__C_STARVED)
		evr__list_del(&c->starve);
	if (c->flags & EVR__C_PAUSED_ALL)
		evr__list_del(&c->paused);
	if (c->flags & EVR__C_REDELIVER)
		evr__list_del(&c->redeliver);
	c->flags &= ~(EVR__C_STARVED | EVR__C_PAUSED_ALL | EVR__C_REDELIVER);
	wq_drop(c);
	held_drop(c);
	count_close(c->loop, c->err);
	if (EVR_LIKELY(!c->ext) || evr__conn_ext_accepted(c))
		c->svc->proto.on_close(c, c->err);
	if (c->ext)
		evr__conn_ext_finish(c);
	if (!conn_linger(c))
		conn_release(c);
}

void evr__conn_flush_all(struct evr_loop *l)
{
	struct evr_conn *c;

	while ((c = l->flush_head)) {
		l->flush_head = c->next;
		if (!l->flush_head)
			l->flush_tail = &l->flush_head;
		c->next = NULL;
		c->flags &= ~EVR__C_FLUSH;
		if (c->flags & EVR__C_CLOSED)
			continue;
		if ((c->flags & EVR__C_CONNECTING) && !c->err)
			continue; /* sends start once connected */
		if (c->flags & EVR__C_CLOSING) {
			if (c->err ||
			    (!c->wq_head && !(c->flags & EVR__C_SENDING))) {
				conn_finish(c);
				continue;
			}
		}
		if (c->wq_head && !(c->flags & EVR__C_SENDING))
			l->be_ops->conn_send(c);
	}
}

void evr__conn_refill(struct evr_loop *l)
{
	/* Each restarted receive takes at least one buffer: restart no more
	 * connections than there are buffers, the oldest first. */
	uint32_t budget = l->pool.nfree;

	while (budget-- && !evr__list_empty(&l->starved)) {
		struct evr_conn *c =
		    EVR_CONTAINER_OF(l->starved.next, struct evr_conn, starve);
		int err;

		evr__list_del(&c->starve);
		c->flags &= ~EVR__C_STARVED;
		if ((c->flags & EVR__C_PAUSED) || !reads_on(c))
			continue;
		err = l->be_ops->conn_recv(c);
		if (err < 0)
			evr_abort(c, err);
	}
}

static void conn_free(struct evr_conn *c)
{
	struct evr_loop *l = c->loop;

	evr__list_del(&c->link);
	l->st.conns_open--;
	if (c->src)
		source_put(l, c->src, c->flags);
	if (c->svc) {
		limits_put(l, c->svc, c->flags);
		if (--c->svc->nconns == 0 && c->svc->retired)
			evr__svc_cfg_done(c->svc);
		evr__svc_put(c->svc);
	}
	free(c->state_ext);
	free(c);
}

void evr__conn_reap(struct evr_loop *l)
{
	struct evr_conn *c;

	while ((c = l->zombies)) {
		l->zombies = c->next;
		conn_free(c);
	}
}

void evr__conn_abort_all(struct evr_loop *l, int err)
{
	struct evr__list *it;

	for (it = l->conns.next; it != &l->conns; it = it->next) {
		struct evr_conn *c =
		    EVR_CONTAINER_OF(it, struct evr_conn, link);

		if (c->flags & EVR__C_LINGER)
			conn_release(c);
		else
			evr_abort(c, err);
	}
}

void evr__conn_drain_all(struct evr_loop *l)
{
	struct evr__list *it;

	for (it = l->conns.next; it != &l->conns; it = it->next) {
		struct evr_conn *c =
		    EVR_CONTAINER_OF(it, struct evr_conn, link);

		if (!(c->flags & EVR__C_CLOSING))
			c->svc->proto.on_drain(c);
	}
}

/*
 * Loop teardown, first step: the module hears of every connection still
 * open (on_close with -ESHUTDOWN), so that it can free what it keeps; the
 * socket is closed without lingering. Nothing is sent any more.
 */
void evr__conn_close_all(struct evr_loop *l)
{
	struct evr__list *it;

	for (it = l->conns.next; it != &l->conns; it = it->next) {
		struct evr_conn *c =
		    EVR_CONTAINER_OF(it, struct evr_conn, link);

		if (c->flags & EVR__C_CLOSED)
			continue;
		c->flags |= EVR__C_CLOSING | EVR__C_CLOSED;
		c->wq_inflight = 0;
		wq_drop(c);
		held_drop(c);
		evr_timer_stop(l, &c->timer);
		count_close(l, c->err ? c->err : -ESHUTDOWN);
		c->svc->proto.on_close(c, c->err ? c->err : -ESHUTDOWN);
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
	}
}

/* Loop teardown, last step: no callbacks, no kernel work left (the ring is
 * gone). */
void evr__conn_free_all(struct evr_loop *l)
{
	evr__conn_reap(l);
	while (!evr__list_empty(&l->conns)) {
		struct evr_conn *c =
		    EVR_CONTAINER_OF(l->conns.next, struct evr_conn, link);

		c->wq_inflight = 0;
		wq_drop(c);
		held_drop(c);
		evr_timer_stop(l, &c->timer);
		if (c->fd >= 0 && (c->flags & EVR__C_LINGER))
			close(c->fd);
		conn_free(c);
	}
}

/* ---- public API ---- */

/*
 * The buffer a queue entry holds, with a reference taken. A receive buffer
 * queued behind bytes that wait already may wait long (the peer is slow)
 * and every receive buffer it pins is one the loop cannot receive into: a
 * few peers that never read could empty the pool and stall everyone. So
 * such an entry gets a copy in a buffer of its own size when the payload
 * uses less than half of the receive buffer, or when the pool is down to a
 * quarter. An entry on an empty queue, the common case, leaves at once and
 * keeps the zero-copy path.
 */
static struct evr_buf *pool_spare(struct evr_conn *c, struct evr_buf *b,
				  size_t off, size_t len)
{
	struct evr_loop *l = c->loop;
	struct evr_buf *copy;

	if (EVR_LIKELY(b->kind != EVR__BUF_POOL || !c->wq_head))
		return evr_buf_ref(b);
	if (len >= b->cap / 2 && l->pool.nfree >= l->pool.count / 4)
		return evr_buf_ref(b);
	copy = evr_buf_new(l, len);
	if (!copy)
		return evr_buf_ref(b);
	memcpy(copy->data, b->data + off, len);
	copy->len = (uint32_t)len;
	return copy;
}

/* A reply that cannot be queued (out of memory) would leave the stream
 * going on with a hole in it: the connection is aborted instead. */
static int send_failed(struct evr_conn *c, int err)
{
	evr_abort(c, err);
	return err;
}

/* Room for len more bytes in c's queue? Past wq_max the connection is
 * aborted (a peer that does not read). */
static int wq_admit(struct evr_conn *c, size_t len)
{
	struct evr_loop *l = c->loop;
	const struct evr_conn_limits *lim = &c->svc->lim;

	if (EVR_LIKELY(c->wq_bytes + len <= lim->wq_max))
		return 0;
	l->st.wq_overflows++;
	if (evr__ratelimit(l, &l->rl_overflow, REFUSE_LOG_MS,
			   "connections closed: write queue over max"))
		evr_log_warn("%s: write queue over %u bytes (the peer does "
			     "not read): closing (more are summed up in %d s)",
			     c->svc->name, lim->wq_max, REFUSE_LOG_MS / 1000);
	evr_abort(c, -ENOBUFS);
	return -ENOBUFS;
}

/* len bytes joined c's queue: backpressure, the budget, a send. */
static void wq_account(struct evr_conn *c, size_t len)
{
	struct evr_loop *l = c->loop;

	c->wq_bytes += len;
	l->st.bytes_queued += len;
	if (EVR_UNLIKELY(c->wq_bytes > c->svc->lim.wq_high))
		read_pause(c, EVR__C_PAUSED_WQ);
	if (EVR_UNLIKELY(l->st.bytes_queued > l->queued_max))
		l->over_budget = true;
	if (!(c->flags & EVR__C_SENDING))
		schedule_flush(c);
}

int evr_send_ref(struct evr_conn *c, struct evr_buf *b, size_t off, size_t len)
{
	struct evr_loop *l = c->loop;
	struct evr__wq *e;
	int err;

	if (EVR_UNLIKELY(c->flags & EVR__C_CLOSING))
		return -EPIPE;
	if (EVR_UNLIKELY(off > b->len || len > b->len - off))
		return -EINVAL;
	if (!len)
		return 0;
	err = wq_admit(c, len);
	if (EVR_UNLIKELY(err))
		return err;
	e = wq_alloc(l);
	if (EVR_UNLIKELY(!e))
		return send_failed(c, -ENOMEM);
	e->buf = pool_spare(c, b, off, len);
	e->p = e->buf == b ? b->data + off : e->buf->data;
	e->len = (uint32_t)len;
	if (c->wq_tail) {
		c->wq_tail->next = e;
	} else {
		c->wq_head = e;
		c->last_progress = l->now; /* the send timeout starts */
	}
	c->wq_tail = e;
	c->wq_n++;
	wq_account(c, len);
	return 0;
}

/*
 * The queue's last entry can take len more copied bytes: a reply buffer
 * of our own (a copy nobody else holds), whose slice ends where its data
 * ends, with room after it, and not part of the send in flight. Small
 * replies (a line of a line protocol, a CRLF after it) then share one
 * buffer and one entry instead of costing a buffer each.
 */
static bool tail_takes(const struct evr_conn *c, size_t len)
{
	const struct evr__wq *t = c->wq_tail;
	const struct evr_buf *b = t ? t->buf : NULL;

	return b && b->kind != EVR__BUF_POOL && b->refs == 1 &&
	       t->p + t->len == b->data + b->len && b->cap - b->len >= len &&
	       !(c->wq_inflight && c->wq_n <= c->wq_inflight);
}

int evr_send(struct evr_conn *c, struct evr_buf *b)
{
	return evr_send_ref(c, b, 0, b->len);
}

int evr_send_copy(struct evr_conn *c, const void *p, size_t len)
{
	struct evr_buf *b;
	int err;

	if (EVR_UNLIKELY(c->flags & EVR__C_CLOSING))
		return -EPIPE;
	if (!len)
		return 0;
	if (tail_takes(c, len)) {
		struct evr__wq *t = c->wq_tail;

		err = wq_admit(c, len);
		if (err)
			return err;
		memcpy(t->buf->data + t->buf->len, p, len);
		t->buf->len += (uint32_t)len;
		t->len += (uint32_t)len;
		wq_account(c, len);
		return 0;
	}
	b = evr_buf_new(c->loop, len);
	if (!b)
		return send_failed(c, -ENOMEM);
	memcpy(b->data, p, len);
	b->len = (uint32_t)len;
	err = evr_send(c, b);
	evr_buf_unref(b);
	return err;
}

int evr_vsendf(struct evr_conn *c, const char *fmt, va_list ap)
{
	char small[EVR__BUF_SMALL_CAP];
	struct evr_buf *b;
	va_list ap2;
	int n, err;

	va_copy(ap2, ap);
	n = vsnprintf(small, sizeof(small), fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n < sizeof(small))
		return evr_send_copy(c, small, (size_t)n);
	/* longer than the stack buffer: format into a buffer of its size */
	if (c->flags & EVR__C_CLOSING)
		return -EPIPE;
	b = evr_buf_new(c->loop, (size_t)n + 1);
	if (!b)
		return send_failed(c, -ENOMEM);
	vsnprintf(b->data, (size_t)n + 1, fmt, ap);
	b->len = (uint32_t)n;
	err = evr_send(c, b);
	evr_buf_unref(b);
	return err;
}

int evr_sendf(struct evr_conn *c, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = evr_vsendf(c, fmt, ap);
	va_end(ap);
	return err;
}

void evr_close(struct evr_conn *c)
{
	if (c->flags & EVR__C_CLOSING)
		return;
	c->flags |= EVR__C_CLOSING;
	schedule_flush(c);
}

void evr_abort(struct evr_conn *c, int err)
{
	if (c->flags & EVR__C_CLOSED)
		return;
	c->flags |= EVR__C_CLOSING;
	/* err marks an abort for the flush pass; keep the first reason */
	if (!c->err)
		c->err = err ? err : -ECONNABORTED;
	if (c->wq_bytes || (c->flags & EVR__C_SENDING))
		c->flags |= EVR__C_RESET;
	wq_drop(c);
	schedule_flush(c);
}

/* Counted: a module and the line framer under it may each hold a
 * connection for reasons of their own. */
void evr_conn_pause(struct evr_conn *c)
{
	if (c->user_pauses++ == 0)
		read_pause(c, EVR__C_PAUSED_USER);
}

void evr_conn_resume(struct evr_conn *c)
{
	if (c->user_pauses && --c->user_pauses == 0)
		read_resume(c, EVR__C_PAUSED_USER);
}

void *evr_conn_state(struct evr_conn *c)
{
	if (!c->svc->proto.p->state_size)
		return NULL;
	return EVR_UNLIKELY(c->state_ext) ? c->state_ext : c->state;
}

void *evr_conn_conf(const struct evr_conn *c)
{
	return c->svc->conf;
}

void *evr_conn_udata(const struct evr_conn *c)
{
	return c->udata;
}

void evr_conn_set_udata(struct evr_conn *c, void *udata)
{
	c->udata = udata;
}

struct evr_loop *evr_conn_loop(const struct evr_conn *c)
{
	return c->loop;
}

int evr_conn_fd(const struct evr_conn *c)
{
	return c->fd;
}

size_t evr_conn_queued(const struct evr_conn *c)
{
	return c->wq_bytes;
}

bool evr_conn_closing(const struct evr_conn *c)
{
	return c->flags & EVR__C_CLOSING;
}

int evr_conn_peer(const struct evr_conn *c, struct sockaddr_storage *ss,
		  socklen_t *len)
{
	if (c->ext && c->ext->peerlen) {
		memcpy(ss, &c->ext->peer, c->ext->peerlen);
		*len = c->ext->peerlen;
		return 0;
	}
	*len = sizeof(*ss);
	if (getpeername(c->fd, (struct sockaddr *)ss, len) < 0)
		return -errno;
	return 0;
}

/* ---- hand-over: to another owner, to another module ---- */

int evr_conn_detach(struct evr_conn *c)
{
	int fd = c->fd;

	if (c->flags & EVR__C_CLOSING)
		return -EPIPE;
	if (c->wq_head || (c->flags & (EVR__C_SENDING | EVR__C_CONNECTING)))
		return -EBUSY;
	c->loop->be_ops->conn_detach(c);
	c->fd = -1;
	c->flags |= EVR__C_DETACHED;
	held_drop(c);
	evr_close(c);
	return fd;
}

/* Room for the state of the module c switches to: the state c has when
 * it is large enough (the current module's state_size), else a new one.
 * Zeroed either way. */
static int state_make_room(struct evr_conn *c, size_t need)
{
	void *ext;

	if (need <= c->svc->proto.p->state_size) {
		memset(c->state_ext ? c->state_ext : c->state, 0, need);
		return 0;
	}
	ext = evr__calloc(1, need);
	if (!ext)
		return -ENOMEM;
	free(c->state_ext);
	c->state_ext = ext;
	return 0;
}

int evr_conn_switch(struct evr_conn *c, struct evr_connector *cn, const void *p,
		    size_t len)
{
	struct evr__svc *old = c->svc, *svc = &cn->svc;
	struct evr_loop *l = c->loop;
	struct evr_buf *b = NULL;
	int err;

	if (c->flags & EVR__C_CLOSING)
		return -EPIPE;
	if (cn->closed || svc->loop != l)
		return -EINVAL;
	if (c->flags & EVR__C_CONNECTING)
		return -EBUSY;
	if (svc->lim.max_conns && svc->nconns >= svc->lim.max_conns)
		return -EAGAIN;
	if (len) {
		b = evr_buf_new(l, len);
		if (!b)
			return -ENOMEM;
		memcpy(b->data, p, len);
		b->len = (uint32_t)len;
	}
	err = state_make_room(c, svc->proto.p->state_size);
	if (err < 0) {
		if (b)
			evr_buf_unref(b);
		return err;
	}
	svc->refs++;
	svc->nconns++;
	c->svc = svc;
	if (--old->nconns == 0 && old->retired)
		evr__svc_cfg_done(old);
	evr__svc_put(old);
	/* the new module's limits and pauses: the old one's are over */
	c->last_active = c->last_progress = l->now;
	if (timeout_period(c))
		evr_timer_start(l, &c->timer, timeout_period(c));
	else
		evr_timer_stop(l, &c->timer);
	if (c->user_pauses) {
		c->user_pauses = 0;
		read_resume(c, EVR__C_PAUSED_USER);
	}
	err = c->svc->proto.on_accept(c);
	if (err < 0) {
		if (b)
			evr_buf_unref(b);
		evr_abort(c, err);
		return 0;
	}
	if (l->draining)
		c->svc->proto.on_drain(c);
	if (b && c->held_head) {
		/* before what arrived after it; the resume pass hands over */
		b->next = c->held_head;
		c->held_head = b;
	} else if (b) {
		evr__conn_data(c, b); /* held if paused; drops the reference */
	}
	return 0;
}
