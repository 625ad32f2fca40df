/* SPDX-License-Identifier: MIT */
/*
 * hist.c - the log-linear latency histogram; see hist.h.
 *
 * Range 0 holds values below HIST_SUB exactly (one bucket per value);
 * range r >= 1 holds [HIST_SUB << (r - 1), HIST_SUB << r) in HIST_SUB
 * buckets of width 2^(r - 1).
 */
#include "hist.h"

#include <string.h>

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static void locate(uint64_t v, unsigned *r, unsigned *s)
{
	unsigned msb;

	if (v < HIST_SUB) {
		*r = 0;
		*s = (unsigned)v;
		return;
	}
	msb = 63u - (unsigned)__builtin_clzll(v);
	*r = msb - HIST_SUB_BITS + 1;
	if (*r > HIST_RANGES) {
		*r = HIST_RANGES;
		*s = HIST_SUB - 1;
		return;
	}
	*s = (unsigned)(v >> (*r - 1)) - HIST_SUB;
}

/* The highest value that lands in bucket (r, s). */
static uint64_t bucket_top(unsigned r, unsigned s)
{
	if (r == 0)
		return s;
	return ((uint64_t)(HIST_SUB + s + 1) << (r - 1)) - 1;
}

void hist_add(struct hist *h, uint64_t ns)
{
	unsigned r, s;

	locate(ns, &r, &s);
	h->b[r][s]++;
	h->count++;
	h->sum += (double)ns;
	if (ns > h->max)
		h->max = ns;
	if (ns < h->min)
		h->min = ns;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t want, seen = 0;

	if (!h->count)
		return 0;
	want = (uint64_t)(q * (double)h->count + 0.5);
	if (want < 1)
		want = 1;
	if (want > h->count)
		want = h->count;
	for (unsigned r = 0; r <= HIST_RANGES; r++) {
		for (unsigned s = 0; s < HIST_SUB; s++) {
			seen += h->b[r][s];
			if (seen >= want) {
				uint64_t top = bucket_top(r, s);

				return top < h->max ? top : h->max;
			}
		}
	}
	return h->max;
}

void hist_merge(struct hist *into, const struct hist *from)
{
	for (unsigned r = 0; r <= HIST_RANGES; r++)
		for (unsigned s = 0; s < HIST_SUB; s++)
			into->b[r][s] += from->b[r][s];
	into->count += from->count;
	into->sum += from->sum;
	if (from->max > into->max)
		into->max = from->max;
	if (from->min < into->min)
		into->min = from->min;
}
