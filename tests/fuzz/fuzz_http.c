/* SPDX-License-Identifier: MIT */
/*
 * fuzz_http.c - libFuzzer target for the HTTP request parser
 * (evr__http_parse, protocols/http.h).
 *
 * The input is the bytes a client sent. The parser is run on the whole of
 * it, then on the requests that follow a complete one (pipelining, as the
 * module does), and each answer is held to what http.h promises:
 *
 * - a result is a head length, 0, -400, -431 or -505;
 * - a head length is at most the input and at most EVR__HTTP_HEAD_MAX, and
 *   the head ends in an empty line; the request's pointers lie in the head;
 *   nfields is the number of field lines in it, at most
 *   EVR__HTTP_FIELDS_MAX; 0 means fewer than EVR__HTTP_HEAD_MAX bytes;
 * - prefixes: the parser is consistent when fed more bytes of the same
 *   request, so over the prefixes p[0..k) the answer is 0 up to some k and
 *   the whole input's answer from there on; for a head of length r, that k
 *   is r, and every prefix from r on parses to the same request.
 *
 * The answer can change only where a line ends or at EVR__HTTP_HEAD_MAX, so
 * the prefixes tried are those ends and their neighbours, every prefix of
 * a short input, and a few picked by a hash of the input. Each prefix is
 * parsed from a copy of exactly its size, so ASan sees a read past p + n.
 */
#include "../../protocols/http.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ALL_PREFIXES_UPTO 256 /* every prefix of an input this short */
#define MAX_PREFIXES	  1024
#define MAX_PIPELINED	  64

static void fail(const char *what, size_t k, int r)
{
	fprintf(stderr, "fuzz_http: %s (prefix %zu, result %d)\n", what, k, r);
	abort();
}

static bool in_range(const char *x, size_t xlen, const char *p, size_t n)
{
	return x >= p && x + xlen <= p + n;
}

/* Field lines in the head p[0..r): lines after the request line, before
 * the empty one, not counting empty lines before the request line. */
static size_t count_fields(const char *p, size_t r)
{
	size_t pos = 0, lines = 0, leading = 0;
	bool seen = false;

	while (pos < r) {
		const char *lf = memchr(p + pos, '\n', r - pos);
		size_t end = (size_t)(lf - p);
		size_t len = end - pos;

		if (len && p[end - 1] == '\r')
			len--;
		if (!seen && !len)
			leading++;
		else
			seen = true;
		lines++;
		pos = end + 1;
	}
	return lines - leading - 2;
}

/* What http.h promises of one answer r for the n bytes at p. */
static void check_answer(const char *p, size_t n, int r,
			 const struct evr__http_req *q)
{
	if (r < 0) {
		if (r != -400 && r != -431 && r != -505)
			fail("not a status the parser may return", n, r);
		if (r == -431 && n < EVR__HTTP_HEAD_MAX &&
		    q->nfields <= EVR__HTTP_FIELDS_MAX)
			fail("431 within the limits", n, r);
		return;
	}
	if (r == 0) {
		if (n >= EVR__HTTP_HEAD_MAX)
			fail("more bytes asked past the head limit", n, r);
		return;
	}
	if ((size_t)r > n || r > EVR__HTTP_HEAD_MAX)
		fail("head longer than the input or the limit", n, r);
	if (p[r - 1] != '\n' ||
	    !(r >= 2 && (p[r - 2] == '\n' ||
			 (r >= 3 && p[r - 2] == '\r' && p[r - 3] == '\n'))))
		fail("head does not end in an empty line", n, r);
	if (!q->target || !q->target_len ||
	    !in_range(q->target, q->target_len, p, (size_t)r))
		fail("target outside the head", n, r);
	if (!q->path || !q->path_len ||
	    (!in_range(q->path, q->path_len, q->target, q->target_len) &&
	     !(q->path_len == 1 && q->path[0] == '/')))
		fail("path outside the target", n, r);
	if (q->method > EVR__HTTP_HEAD || q->minor > 1)
		fail("method or version out of range", n, r);
	if (q->flags &
	    ~(EVR__HTTP_CLOSE | EVR__HTTP_KEEP_ALIVE | EVR__HTTP_BODY))
		fail("unknown flags", n, r);
	if (q->nfields > EVR__HTTP_FIELDS_MAX ||
	    q->nfields != count_fields(p, (size_t)r))
		fail("nfields is not the number of field lines", n, r);
}

/* The same request parsed from two copies of the bytes (at a and b). */
static bool same_req(const struct evr__http_req *x, const char *a,
		     const struct evr__http_req *y, const char *b)
{
	bool xin = x->path >= a && x->path < x->target + x->target_len;
	bool yin = y->path >= b && y->path < y->target + y->target_len;

	if (x->method != y->method || x->minor != y->minor ||
	    x->flags != y->flags || x->nfields != y->nfields ||
	    x->target - a != y->target - b || x->target_len != y->target_len ||
	    x->path_len != y->path_len || xin != yin)
		return false;
	return xin ? x->path - a == y->path - b : true;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/* The prefix lengths to try, sorted, without repeats; returns how many. */
static size_t pick_prefixes(const char *p, size_t n, size_t *ks)
{
	size_t m = 0, out = 1;
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
	if (n <= ALL_PREFIXES_UPTO) {
		for (size_t k = 0; k <= n; k++)
			ks[m++] = k;
		return m;
	}
	ks[m++] = 0;
	ks[m++] = n;
	if (n > EVR__HTTP_HEAD_MAX) {
		ks[m++] = EVR__HTTP_HEAD_MAX - 1;
		ks[m++] = EVR__HTTP_HEAD_MAX;
		ks[m++] = EVR__HTTP_HEAD_MAX + 1;
	}
	for (int i = 0; i < 16; i++) {
		h = h * 6364136223846793005ull + 1442695040888963407ull;
		ks[m++] = (size_t)(h >> 33) % (n + 1);
	}
	for (size_t i = 0; i < n && m + 2 <= MAX_PREFIXES; i++)
		if (p[i] == '\n') {
			ks[m++] = i; /* just before the line ends */
			ks[m++] = i + 1;
		}
	qsort(ks, m, sizeof(*ks), cmp_size);
	for (size_t i = 1; i < m; i++)
		if (ks[i] != ks[out - 1])
			ks[out++] = ks[i];
	return out;
}

/*
 * The parser on prefixes of p[0..n), whose whole answer is r (q): 0 up to
 * some length, then r; from r on, for a complete head, the same request.
 */
static void check_prefixes(const char *p, size_t n, int r,
			   const struct evr__http_req *q)
{
	static size_t ks[MAX_PREFIXES];
	size_t m = pick_prefixes(p, n, ks);
	bool answered = false;

	for (size_t i = 0; i < m; i++) {
		size_t k = ks[i];
		char *copy = malloc(k ? k : 1);
		struct evr__http_req qk;
		int rk;

		if (!copy)
			abort();
		memcpy(copy, p, k);
		rk = evr__http_parse(copy, k, &qk);
		check_answer(copy, k, rk, &qk);
		if (rk != 0 && rk != r)
			fail("a prefix answers differently", k, rk);
		if (answered && rk == 0)
			fail("more bytes undid an answer", k, rk);
		answered = rk != 0;
		if (r > 0 && (k >= (size_t)r) != answered)
			fail("a prefix answers before the head ends", k, rk);
		if (r > 0 && answered && !same_req(&qk, copy, q, p))
			fail("a prefix parses to another request", k, rk);
		free(copy);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct evr__http_req q, q2;
	size_t n = size;
	int r;

	if (!size) {
		/* p may be NULL when n is 0 (http.h: any input) */
		if (evr__http_parse(NULL, 0, &q) != 0)
			fail("no bytes, yet an answer", 0, -1);
		return 0;
	}
	/* the whole input, then the requests pipelined after it */
	for (int i = 0; i < MAX_PIPELINED && n; i++) {
		r = evr__http_parse(p, n, &q);
		check_answer(p, n, r, &q);
		if (evr__http_parse(p, n, &q2) != r ||
		    (r > 0 && !same_req(&q, p, &q2, p)))
			fail("the same bytes parse differently", n, r);
		check_prefixes(p, n, r, &q);
		if (r <= 0)
			break;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}
