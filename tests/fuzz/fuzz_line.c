/* SPDX-License-Identifier: MIT */
/*
 * fuzz_line.c - libFuzzer target for the line framer's pure core
 * (evr__line_split, protocols/line.h).
 *
 * An input is a header and a byte stream:
 *
 *	byte 0	max_line: below 128, 1 + byte % 64 (small, so the limit is hit
 *		often); from 128, 255 + (byte - 128) * 31, up to 4192 (so that
 *		a line spanning buffers makes the framer grow its buffer)
 *	byte 1	bit 0: allow_nul; bit 1: the handler asks to stop at line
 *		number byte >> 2 (counted from 0); without bit 1, it holds
 *		(EVR_LINE_HOLD) after every line whose number is a multiple
 *		of (byte >> 2) + 1, and the feeder resumes where the framer
 *		stopped, which must change nothing in what is delivered
 *	byte 2	k = byte % 16, the number of cut bytes that follow
 *	k bytes	chunk lengths (0-255), used in turn until the stream ends;
 *		k = 0, or all of them 0, feeds the stream in one buffer
 *	rest	the stream
 *
 * Each chunk goes to the framer in its own evr_buf, at the very end of its
 * allocation so that ASan sees a read past the payload. The lines it emits
 * and how it ends (0 with an unfinished line kept, or an error) must be
 * exactly what reference() says for the whole stream: it is written from
 * the rules in evring.h ("Line framing"), not from line.c. Any difference,
 * or a buffer not given back (bufs_heap), aborts.
 */
#include "../../protocols/line_split.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINES 65536

/* What the framer did, or what it must do. */
struct outcome {
	size_t nlines;
	size_t *off; /* offset of each line in the stream */
	size_t *len;
	int end;	    /* 0 or an EVR__LINE_* error */
	size_t pending_off; /* the unfinished line kept at the end (end 0) */
	size_t pending_len;
};

struct params {
	uint32_t max_line;
	bool allow_nul;
	bool stop;
	size_t stop_at;
};

static struct evr_loop *loop;

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_line: %s\n", what);
	abort();
}

/*
 * The rules, applied to the whole stream: lines end at LF, one CR before
 * the LF is dropped; a line over max_line is TOO_LONG, else one holding a
 * NUL (unless allowed) is NUL; the handler's stop ends after its line. An
 * unfinished last line may still get a CR, so it is TOO_LONG only when it
 * is over max_line + 1 already; otherwise it is kept.
 */
static void reference(const uint8_t *s, size_t n, const struct params *pr,
		      struct outcome *o)
{
	size_t pos = 0;

	o->nlines = 0;
	o->end = 0;
	o->pending_off = o->pending_len = 0;
	while (pos < n) {
		size_t e = pos, len;

		while (e < n && s[e] != '\n')
			e++;
		if (e == n) {
			if (n - pos > (size_t)pr->max_line + 1) {
				o->end = EVR__LINE_TOO_LONG;
				return;
			}
			o->pending_off = pos;
			o->pending_len = n - pos;
			return;
		}
		len = e - pos;
		if (len > 0 && s[e - 1] == '\r')
			len--;
		if (len > pr->max_line) {
			o->end = EVR__LINE_TOO_LONG;
			return;
		}
		for (size_t i = 0; i < len && !pr->allow_nul; i++)
			if (s[pos + i] == '\0') {
				o->end = EVR__LINE_NUL;
				return;
			}
		o->off[o->nlines] = pos;
		o->len[o->nlines] = len;
		if (pr->stop && o->nlines == pr->stop_at) {
			o->nlines++;
			o->end = EVR__LINE_STOP;
			return;
		}
		o->nlines++;
		pos = e + 1;
	}
}

/* The framer's side: every emitted line is compared with the stream. */
struct run {
	const uint8_t *s;
	const struct params *pr;
	struct outcome *ref;
	size_t nlines;
};

static int on_line(void *arg, struct evr_buf *b, char *line, size_t len)
{
	struct run *r = arg;
	size_t i = r->nlines;

	/* the line lies in b, with a byte of room after it (evring.h) */
	if (line < b->data || line + len > b->data + b->len ||
	    line + len >= b->data + b->cap)
		fail("line outside its buffer");
	line[len] = '\0';
	if (i >= r->ref->nlines)
		fail("a line the reference does not have");
	if (len != r->ref->len[i] || memcmp(line, r->s + r->ref->off[i], len))
		fail("a line differs from the reference");
	r->nlines++;
	if (r->pr->stop)
		return i == r->pr->stop_at ? -1 : 0;
	return i % (r->pr->stop_at + 1) == 0 ? EVR_LINE_HOLD : 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct evr_loop_opts o;
	int err;

	(void)argc, (void)argv;
	evr_log_set_level(EVR_LOG_WARN);
	evr_loop_opts_init(&o);
	o.backend = "epoll";
	err = evr_loop_new(&loop, &o);
	if (err < 0) {
		fprintf(stderr, "fuzz_line: evr_loop_new: %s\n",
			strerror(-err));
		exit(1);
	}
	return 0;
}

/* Feed s[0..n) in chunks cut by cuts[0..k), in turn. */
static int feed(struct evr_line *lf, struct run *r, const uint8_t *s, size_t n,
		const uint8_t *cuts, size_t k)
{
	size_t pos = 0, ci = 0, sum = 0;
	int err;

	for (size_t i = 0; i < k; i++)
		sum += cuts[i];
	do { /* an empty stream is one empty buffer */
		size_t len = sum ? cuts[ci++ % k] : n;
		struct evr_buf *b;

		if (len > n - pos)
			len = n - pos;
		b = evr_buf_new(loop, len);
		if (!b)
			fail("evr_buf_new");
		/* the payload ends where the allocation does */
		b->data += b->cap - len;
		b->cap = (uint32_t)len;
		memcpy(b->data, s + pos, len);
		b->len = (uint32_t)len;
		size_t off = 0;
		do { /* a hold: resume just past the line held at */
			size_t was = off;

			err = evr__line_split_at(lf, loop, b, &off, on_line, r);
			/* (the handler wrote a NUL over the LF: look at s) */
			if (err == EVR__LINE_HELD && (off <= was || off > len ||
						      s[pos + off - 1] != '\n'))
				fail("a hold that does not end after a line");
		} while (err == EVR__LINE_HELD);
		evr_buf_unref(b);
		pos += len;
	} while (!err && pos < n);
	return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static size_t off[MAX_LINES], len[MAX_LINES];
	struct outcome ref = { .off = off, .len = len };
	struct evr_line_cfg cfg = { 0 };
	struct params pr;
	struct evr_line lf;
	struct evr_stats st0, st1;
	struct run r;
	size_t k;
	int end;

	if (size < 3)
		return 0;
	pr.max_line = data[0] < 128 ? 1 + data[0] % 64
				    : 255 + (uint32_t)(data[0] - 128) * 31;
	pr.allow_nul = data[1] & 1;
	pr.stop = data[1] & 2;
	pr.stop_at = data[1] >> 2;
	k = data[2] % 16;
	if (size < 3 + k)
		return 0;
	const uint8_t *cuts = data + 3, *s = data + 3 + k;
	size_t n = size - 3 - k;

	if (n >= MAX_LINES)
		return 0;
	reference(s, n, &pr, &ref);

	evr_loop_stats(loop, &st0);
	cfg.max_line = pr.max_line;
	cfg.allow_nul = pr.allow_nul;
	evr__line_setup(&lf, &cfg);
	r = (struct run){ .s = s, .pr = &pr, .ref = &ref };
	end = feed(&lf, &r, s, n, cuts, k);

	if (end != ref.end) {
		fprintf(stderr,
			"fuzz_line: framer ended with %d, reference %d\n", end,
			ref.end);
		fail("the framer's end differs from the reference");
	}
	if (r.nlines != ref.nlines)
		fail("the framer emitted fewer lines than the reference");
	if (!end) {
		size_t kept = lf.acc ? lf.acc->len : 0;

		if (kept != ref.pending_len ||
		    (kept && memcmp(lf.acc->data, s + ref.pending_off, kept)))
			fail("the unfinished line kept differs");
	}
	evr__line_reset(&lf);
	if (lf.acc)
		fail("evr__line_reset kept a buffer");
	evr_loop_stats(loop, &st1);
	if (st1.bufs_heap != st0.bufs_heap)
		fail("a buffer was not given back (bufs_heap)");
	return 0;
}
