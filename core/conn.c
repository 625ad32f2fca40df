/* SPDX-License-Identifier: MIT */
/*
 * conn.c - connections: lifetime, write queue, close.
 *
 * Lifetime. A connection is allocated when its socket is accepted, together
 * with the module's per-connection state. evr_close() and evr_abort() only
 * mark it and put it on the loop's flush list; the flush pass, run once per
 * loop iteration outside every module callback, "finishes" it: on_close
 * runs, the backend releases the kernel's work on it and closes the fd. Its
 * memory is freed in the reap pass once no kernel operation refers to it
 * any more (c->refs == 0): no callback ever sees freed memory, and no
 * completion ever arrives for a freed connection.
 *
 * Write queue. evr_send() appends a reference to a buffer slice; nothing is
 * copied. At most one send is in flight per socket (the first wq_inflight
 * entries), so bytes never reorder; the flush pass starts a send for every
 * connection that has queued bytes and none in flight, which lets many
 * evr_send() calls of one iteration leave in one system call.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WQ_CHUNK 64

struct wq_chunk {
	struct wq_chunk *next;
	struct evr__wq e[WQ_CHUNK];
};

static struct evr__wq *wq_alloc(struct evr_loop *l)
{
	struct evr__wq *e = l->wq_free;

	if (EVR_UNLIKELY(!e)) {
		struct wq_chunk *ch = malloc(sizeof(*ch));

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
		c->wq_bytes -= e->len;
		l->st.bytes_queued -= e->len;
		wq_release(l, e);
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

struct evr_conn *evr__conn_new(struct evr_listener *ls, int fd)
{
	struct evr_loop *l = ls->loop;
	struct evr_conn *c;
	int err;

	c = calloc(1, sizeof(*c) + ls->proto.p->state_size);
	if (EVR_UNLIKELY(!c)) {
		if (!l->st.conn_alloc_fail++)
			evr_log_err(
			    "accept %s: out of memory for a connection; "
			    "closing it",
			    ls->name);
		close(fd);
		return NULL;
	}
	c->loop = l;
	c->proto = &ls->proto;
	c->ls = ls;
	ls->refs++;
	c->conf = ls->conf;
	c->fd = fd;
	evr__list_init(&c->starve);
	evr__list_add_tail(&l->conns, &c->link);
	l->st.conns_open++;
	l->st.conns_accepted++;

	err = c->proto->on_accept(c);
	if (err < 0) {
		evr_abort(c, err);
		return c;
	}
	if (c->flags & EVR__C_CLOSING)
		return c;
	err = l->be_ops->conn_recv(c);
	if (err < 0)
		evr_abort(c, err);
	return c;
}

void evr__conn_data(struct evr_conn *c, struct evr_buf *b)
{
	if (EVR_LIKELY(!(c->flags & EVR__C_CLOSING)))
		c->proto->on_data(c, b);
	evr_buf_unref(b);
}

void evr__conn_eof(struct evr_conn *c)
{
	c->flags |= EVR__C_EOF;
	if (!(c->flags & EVR__C_CLOSING))
		c->proto->on_eof(c);
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
	}
	c->wq_inflight = 0;
	c->wq_bytes -= sent;
	l->st.bytes_queued -= sent;
	if (c->flags & EVR__C_CLOSED) {
		wq_drop(c);
		return;
	}
	if (sent)
		c->proto->on_sent(c, sent);
	if (c->wq_head || (c->flags & EVR__C_CLOSING))
		schedule_flush(c);
}

void evr__conn_error(struct evr_conn *c, int err)
{
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

void evr__conn_starved(struct evr_conn *c)
{
	struct evr_loop *l = c->loop;

	l->st.recv_nobufs++;
	if (c->flags & (EVR__C_STARVED | EVR__C_CLOSING))
		return;
	c->flags |= EVR__C_STARVED;
	evr__list_add_tail(&l->starved, &c->starve);
}

void evr__conn_put(struct evr_conn *c)
{
	struct evr_loop *l = c->loop;

	if (--c->refs || !(c->flags & EVR__C_CLOSED) ||
	    (c->flags & EVR__C_ZOMBIE))
		return;
	c->flags |= EVR__C_ZOMBIE;
	c->next = l->zombies;
	l->zombies = c;
}

/*
 * The end of a connection: the module hears of it, the backend lets go of
 * the socket. Memory goes in the reap pass once refs reaches zero.
 */
static void conn_finish(struct evr_conn *c)
{
	struct evr_loop *l = c->loop;

	c->flags |= EVR__C_CLOSED | EVR__C_CLOSING;
	if (c->flags & EVR__C_STARVED) {
		evr__list_del(&c->starve);
		c->flags &= ~EVR__C_STARVED;
	}
	wq_drop(c);
	c->proto->on_close(c, c->err);
	l->be_ops->conn_close(c);
	if (c->refs == 0) {
		c->flags |= EVR__C_ZOMBIE;
		c->next = l->zombies;
		l->zombies = c;
	}
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
		if (c->flags & EVR__C_CLOSING)
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
	if (c->ls)
		evr__listener_put(c->ls);
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

		evr_abort(c, err);
	}
}

/* Loop teardown: no callbacks, no kernel work left (the ring is gone). */
void evr__conn_free_all(struct evr_loop *l)
{
	evr__conn_reap(l);
	while (!evr__list_empty(&l->conns)) {
		struct evr_conn *c =
		    EVR_CONTAINER_OF(l->conns.next, struct evr_conn, link);

		c->wq_inflight = 0;
		wq_drop(c);
		if (!(c->flags & EVR__C_CLOSED))
			close(c->fd);
		conn_free(c);
	}
}

/* ---- public API ---- */

int evr_send_ref(struct evr_conn *c, struct evr_buf *b, size_t off, size_t len)
{
	struct evr__wq *e;

	if (EVR_UNLIKELY(c->flags & EVR__C_CLOSING))
		return -EPIPE;
	if (EVR_UNLIKELY(off > b->len || len > b->len - off))
		return -EINVAL;
	if (!len)
		return 0;
	e = wq_alloc(c->loop);
	if (EVR_UNLIKELY(!e))
		return -ENOMEM;
	e->buf = evr_buf_ref(b);
	e->p = b->data + off;
	e->len = (uint32_t)len;
	if (c->wq_tail)
		c->wq_tail->next = e;
	else
		c->wq_head = e;
	c->wq_tail = e;
	c->wq_bytes += len;
	c->loop->st.bytes_queued += len;
	if (!(c->flags & EVR__C_SENDING))
		schedule_flush(c);
	return 0;
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
	b = evr_buf_new(c->loop, len);
	if (!b)
		return -ENOMEM;
	memcpy(b->data, p, len);
	b->len = (uint32_t)len;
	err = evr_send(c, b);
	evr_buf_unref(b);
	return err;
}

int evr_sendf(struct evr_conn *c, const char *fmt, ...)
{
	char small[EVR__BUF_SMALL_CAP];
	struct evr_buf *b;
	va_list ap;
	int n, err;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n < sizeof(small))
		return evr_send_copy(c, small, (size_t)n);
	if (c->flags & EVR__C_CLOSING)
		return -EPIPE;
	b = evr_buf_new(c->loop, (size_t)n + 1);
	if (!b)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(b->data, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len = (uint32_t)n;
	err = evr_send(c, b);
	evr_buf_unref(b);
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
	wq_drop(c);
	schedule_flush(c);
}

void *evr_conn_state(struct evr_conn *c)
{
	return c->state;
}

void *evr_conn_conf(const struct evr_conn *c)
{
	return c->conf;
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
	*len = sizeof(*ss);
	if (getpeername(c->fd, (struct sockaddr *)ss, len) < 0)
		return -errno;
	return 0;
}
