/* SPDX-License-Identifier: MIT */
/*
 * line.c - the line framer (the API is in line.h).
 *
 * Layout: evr__line_split() is the framer itself, a pure function of the
 * bytes fed to it (the fuzz target drives it directly); evr_line_feed()
 * wraps it for a connection: it turns framing errors into an "ERR" line
 * and a close, and keeps the whole-line deadline.
 *
 * A line that lies inside the buffer being fed is handed over in place.
 * Only the start of a line whose end has not arrived yet is copied, into
 * lf->acc, which grows by doubling up to max_line (plus a CR) and is freed
 * as soon as the line completes: an idle connection holds no buffer.
 */
#include "line_split.h"

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
	if (len && p[len - 1] == '\r')
		len--;
	if (len > lf->max_line)
		return EVR__LINE_TOO_LONG;
	if (!lf->allow_nul && memchr(p, '\0', len))
		return EVR__LINE_NUL;
	return emit(arg, b, p, len) < 0 ? EVR__LINE_STOP : 0;
}

int evr__line_split(struct evr_line *lf, struct evr_loop *l, struct evr_buf *b,
		    evr__line_emit emit, void *arg)
{
	char *p = b->data;
	size_t n = b->len;

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
		if (r)
			return r;
		p = nl + 1;
		n -= take + 1;
	}
	return 0;
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
}

/* ---- on a connection ---- */

static void line_fail(struct evr_line *lf, const char *why)
{
	struct evr_loop *l = evr_conn_loop(lf->c);

	lf->failed = true;
	acc_drop(lf);
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

void evr_line_feed(struct evr_line *lf, struct evr_buf *b)
{
	struct evr_loop *l = evr_conn_loop(lf->c);
	char why[64];
	int r;

	if (lf->failed)
		return;
	/* a line ends in b: the one held afterwards, if any, is a new one
	 * and gets a deadline of its own */
	if (memchr(b->data, '\n', b->len))
		evr_timer_stop(l, &lf->timer);
	r = evr__line_split(lf, l, b, emit_to_handler, lf);
	if (r == EVR__LINE_TOO_LONG) {
		snprintf(why, sizeof(why), "line too long (more than %u bytes)",
			 lf->max_line);
		line_fail(lf, why);
		return;
	}
	if (r == EVR__LINE_NUL) {
		line_fail(lf, "line contains a NUL byte");
		return;
	}
	if (r == -ENOMEM) {
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

void evr_line_fini(struct evr_line *lf)
{
	if (lf->c)
		evr_timer_stop(evr_conn_loop(lf->c), &lf->timer);
	acc_drop(lf);
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
