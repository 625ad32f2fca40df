/* SPDX-License-Identifier: MIT */
/*
 * line.c - the line framer (the API is in line.h).
 *
 * Layout: evr__line_split_at() is the framer itself, a pure function of
 * the bytes fed to it (the fuzz target drives it directly); then the input
 * held by EVR_LINE_HOLD; then evr_line_feed() and evr_line_resume(), which
 * wrap it for a connection: they turn framing errors into an "ERR" line
 * and a close, keep the whole-line deadline, and pause reading while input
 * is held.
 *
 * A line that lies inside the buffer being fed is handed over in place.
 * Only the start of a line whose end has not arrived yet is copied, into
 * lf->acc, which grows by doubling up to max_line (plus a CR) and is freed
 * as soon as the line completes: an idle connection holds no buffer.
 */
#include "line_split.h"
#include "refused.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_DEFAULT      8192
#define LINE_DEADLINE_DEFAULT 30000
#define ACC_MIN		      256

/* Room for at least need bytes in lf->acc, keeping what it holds. */
static int acc_reserve(struct evr_line *lf, struct evr_loop *l, size_t need)
{
	struct evr_buf *nb;
	size_t cap;

	if (lf->acc && lf->acc->cap >= need)
		return 0;
	cap = lf->acc ? (size_t)lf->acc->cap * 2 : ACC_MIN;
	while (cap < need)
		cap *= 2;
	if (cap > (size_t)lf->max_line + 2)
		cap = (size_t)lf->max_line + 2;
	if (cap < need)
		return -ENOBUFS;
	nb = evr_buf_new(l, cap);
	if (!nb)
		return -ENOMEM;
	if (lf->acc) {
		memcpy(nb->data, lf->acc->data, lf->acc->len);
		nb->len = lf->acc->len;
		evr_buf_unref(lf->acc);
	}
	lf->acc = nb;
	return 0;
}

static void acc_drop(struct evr_line *lf)
{
	if (lf->acc) {
		evr_buf_unref(lf->acc);
		lf->acc = NULL;
	}
}

/* A complete line at p (len bytes before its LF): strip the CR, check
 * it, hand it over. */
static int deliver(struct evr_line *lf, struct evr_buf *b, char *p, size_t len,
		   evr__line_emit emit, void *arg)
{
	int r;

	if (len && p[len - 1] == '\r')
		len--;
	if (len > lf->max_line)
		return EVR__LINE_TOO_LONG;
	if (!lf->allow_nul && memchr(p, '\0', len))
		return EVR__LINE_NUL;
	r = emit(arg, b, p, len);
	if (r < 0)
		return EVR__LINE_STOP;
	return r == EVR_LINE_HOLD ? EVR__LINE_HELD : 0;
}

int evr__line_split_at(struct evr_line *lf, struct evr_loop *l,
		       struct evr_buf *b, size_t *off, evr__line_emit emit,
		       void *arg)
{
	char *p = b->data + *off;
	size_t n = b->len - *off;

	while (n) {
		char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		int r;

		if (lf->acc) {
			/* the end of a line begun in an earlier buffer */
			if (lf->acc->len + take > (size_t)lf->max_line + 1)
				return EVR__LINE_TOO_LONG;
			/* one byte of room after the line, for the handler */
			r = acc_reserve(lf, l, lf->acc->len + take + 1);
			if (r < 0)
				return r == -ENOBUFS ? EVR__LINE_TOO_LONG : r;
			memcpy(lf->acc->data + lf->acc->len, p, take);
			lf->acc->len += (uint32_t)take;
			if (!nl)
				return 0;
			struct evr_buf *line = lf->acc;

			lf->acc = NULL; /* the handler may keep a reference */
			r = deliver(lf, line, line->data, line->len, emit, arg);
			evr_buf_unref(line);
		} else if (!nl) {
			/* the start of a line: keep it for the next buffer */
			if (take > (size_t)lf->max_line + 1)
				return EVR__LINE_TOO_LONG;
			r = acc_reserve(lf, l, take + 1);
			if (r < 0)
				return r == -ENOBUFS ? EVR__LINE_TOO_LONG : r;
			memcpy(lf->acc->data, p, take);
			lf->acc->len = (uint32_t)take;
			return 0;
		} else {
			r = deliver(lf, b, p, take, emit, arg);
		}
		p = nl + 1;
		n -= take + 1;
		if (r == EVR__LINE_HELD)
			*off = (size_t)(p - b->data);
		if (r)
			return r;
	}
	return 0;
}

int evr__line_split(struct evr_line *lf, struct evr_loop *l, struct evr_buf *b,
		    evr__line_emit emit, void *arg)
{
	size_t off = 0;

	return evr__line_split_at(lf, l, b, &off, emit, arg);
}

/* ---- held input ---- */

/*
 * Buffers of input held since a handler returned EVR_LINE_HOLD, oldest
 * first, each with a reference: bufs[first .. first + n). Delivery resumes
 * at off in the first one. Allocated at the first hold, freed when it is
 * over, so a framer that never holds costs nothing.
 */
struct evr__line_held {
	uint32_t first, n, cap;
	uint32_t off;
	struct evr_buf *bufs[];
};

/* Room for one more buffer at the front (or the back). */
static int held_reserve(struct evr_line *lf, bool front)
{
	struct evr__line_held *h = lf->held, *nh;
	uint32_t cap;

	if (h && (front ? h->first > 0 : h->first + h->n < h->cap))
		return 0;
	cap = h ? h->n * 2 + 2 : 4; /* room for one at the front and more */
	nh = malloc(sizeof(*nh) + cap * sizeof(nh->bufs[0]));
	if (!nh)
		return -ENOMEM;
	nh->first = 1;
	nh->n = h ? h->n : 0;
	nh->cap = cap;
	nh->off = h ? h->off : 0;
	if (h)
		memcpy(nh->bufs + 1, h->bufs + h->first,
		       h->n * sizeof(h->bufs[0]));
	free(h);
	lf->held = nh;
	return 0;
}

/* The oldest held buffer, with its reference, and where to resume in it. */
static struct evr_buf *held_pop(struct evr_line *lf, size_t *off)
{
	struct evr__line_held *h = lf->held;

	*off = h->off;
	h->off = 0;
	h->n--;
	return h->bufs[h->first++];
}

static void held_drop(struct evr_line *lf)
{
	struct evr__line_held *h = lf->held;

	if (!h)
		return;
	for (uint32_t i = 0; i < h->n; i++)
		evr_buf_unref(h->bufs[h->first + i]);
	free(h);
	lf->held = NULL;
}

void evr__line_setup(struct evr_line *lf, const struct evr_line_cfg *cfg)
{
	memset(lf, 0, sizeof(*lf));
	lf->max_line = cfg && cfg->max_line ? cfg->max_line : LINE_MAX_DEFAULT;
	lf->deadline_ms =
	    cfg && cfg->deadline_ms ? cfg->deadline_ms : LINE_DEADLINE_DEFAULT;
	lf->allow_nul = cfg && cfg->allow_nul;
}

void evr__line_reset(struct evr_line *lf)
{
	acc_drop(lf);
	held_drop(lf);
}

/* ---- on a connection ---- */

static __thread struct evr__refusals refusals;

/* A framing error: say why to the peer and in the log, and close. */
static void line_fail(struct evr_line *lf, const char *why)
{
	struct evr_loop *l = evr_conn_loop(lf->c);

	evr__log_refused(&refusals, lf->c, "line", "%s; closing", why);
	lf->failed = true;
	acc_drop(lf);
	held_drop(lf);
	evr_timer_stop(l, &lf->timer);
	evr_line_sendf(lf->c, "ERR %s", why);
	evr_close(lf->c);
}

static void deadline_expired(struct evr_timer *t)
{
	struct evr_line *lf = EVR_CONTAINER_OF(t, struct evr_line, timer);
	char why[64];

	snprintf(why, sizeof(why), "line not finished within %u ms",
		 lf->deadline_ms);
	line_fail(lf, why);
}

void evr_line_init(struct evr_line *lf, struct evr_conn *c,
		   const struct evr_line_cfg *cfg, evr_line_cb cb)
{
	evr__line_setup(lf, cfg);
	lf->c = c;
	lf->cb = cb;
	evr_timer_init(&lf->timer, deadline_expired);
}

static int emit_to_handler(void *arg, struct evr_buf *b, char *line, size_t len)
{
	struct evr_line *lf = arg;

	if (evr_conn_closing(lf->c))
		return -1;
	return lf->cb(lf->c, b, line, len);
}

/*
 * A handler returned EVR_LINE_HOLD with the rest of b from off undelivered:
 * keep that (in front of what is held already: it came first) and stop
 * reading. No line is unfinished now, so no deadline runs.
 */
static void hold(struct evr_line *lf, struct evr_buf *b, size_t off)
{
	if (off < b->len) {
		if (held_reserve(lf, true) < 0) {
			line_fail(lf, "out of memory");
			return;
		}
		lf->held->bufs[--lf->held->first] = evr_buf_ref(b);
		lf->held->n++;
		lf->held->off = (uint32_t)off;
	}
	lf->holding = true;
	evr_timer_stop(evr_conn_loop(lf->c), &lf->timer);
	if (!lf->paused) { /* pauses are counted: one of ours at a time */
		lf->paused = true;
		evr_conn_pause(lf->c);
	}
}

/* Split b from off into lines for the handler; report framing errors. */
static void feed_from(struct evr_line *lf, struct evr_buf *b, size_t off)
{
	struct evr_loop *l = evr_conn_loop(lf->c);
	char why[64];
	int r;

	/* a line ends in b: the one held afterwards, if any, is a new one
	 * and gets a deadline of its own */
	if (memchr(b->data + off, '\n', b->len - off))
		evr_timer_stop(l, &lf->timer);
	lf->delivering = true;
	r = evr__line_split_at(lf, l, b, &off, emit_to_handler, lf);
	lf->delivering = false;
	switch (r) {
	case 0:
		break;
	case EVR__LINE_HELD:
		hold(lf, b, off);
		return;
	case EVR__LINE_STOP: /* for good: the handler has closed */
		lf->failed = true;
		acc_drop(lf);
		held_drop(lf);
		evr_timer_stop(l, &lf->timer);
		return;
	case EVR__LINE_TOO_LONG:
		snprintf(why, sizeof(why), "line too long (more than %u bytes)",
			 lf->max_line);
		line_fail(lf, why);
		return;
	case EVR__LINE_NUL:
		line_fail(lf, "line contains a NUL byte");
		return;
	default:
		line_fail(lf, "out of memory");
		return;
	}
	/* The deadline runs from the first byte of an unfinished line; it
	 * is not restarted by more bytes of the same line. */
	if (!lf->acc)
		evr_timer_stop(l, &lf->timer);
	else if (!evr_timer_active(&lf->timer) &&
		 lf->deadline_ms != EVR_LINE_NO_DEADLINE)
		evr_timer_start(l, &lf->timer, lf->deadline_ms);
}

void evr_line_feed(struct evr_line *lf, struct evr_buf *b)
{
	if (lf->failed)
		return;
	if (!lf->holding) {
		feed_from(lf, b, 0);
		return;
	}
	/* bytes already on their way when reading paused (io_uring): after
	 * the rest, in order */
	if (held_reserve(lf, false) < 0) {
		line_fail(lf, "out of memory");
		return;
	}
	lf->held->bufs[lf->held->first + lf->held->n++] = evr_buf_ref(b);
}

void evr_line_resume(struct evr_line *lf)
{
	if (!lf->holding || lf->delivering || lf->failed)
		return;
	lf->holding = false;
	while (!lf->holding && !lf->failed && lf->held && lf->held->n) {
		size_t off;
		struct evr_buf *b = held_pop(lf, &off);

		feed_from(lf, b, off);
		evr_buf_unref(b);
	}
	if (lf->holding || lf->failed)
		return;
	held_drop(lf);
	if (lf->paused) {
		lf->paused = false;
		evr_conn_resume(lf->c);
	}
	if (lf->eof)
		evr_close(lf->c);
}

bool evr_line_held(const struct evr_line *lf)
{
	return lf->holding;
}

void evr_line_eof(struct evr_line *lf)
{
	if (lf->holding && !lf->failed)
		lf->eof = true;
	else
		evr_close(lf->c);
}

void evr_line_fini(struct evr_line *lf)
{
	if (lf->c)
		evr_timer_stop(evr_conn_loop(lf->c), &lf->timer);
	acc_drop(lf);
	held_drop(lf);
	lf->holding = false;
	lf->failed = true;
}

int evr_line_sendf(struct evr_conn *c, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = evr_vsendf(c, fmt, ap);
	va_end(ap);
	if (err < 0)
		return err;
	/* appended to the line's buffer: small copies are coalesced */
	return evr_send_copy(c, "\r\n", 2);
}
