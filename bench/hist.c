/* SPDX-License-Identifier: MIT */
/*
 * hist.c - the log-linear latency histogram; see hist.h.
 *
 * Range 0 holds values below HIST_SUB exactly (one bucket per value);
 * range r >= 1 holds [HIST_SUB << (r - 1), HIST_SUB << r) in HIST_SUB
 * buckets of width 2^(r - 1).
 */
#include "hist.h"

#include <math.h>
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
	double d;

	locate(ns, &r, &s);
	h->b[r][s]++;
	if (!h->count++)
		h->shift = ns;
	d = (double)ns - (double)h->shift;
	h->sum += d;
	h->sumsq += d * d;
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
	/* from's sums, re-based on into's shift: sum (x - a)^2 =
	 * sum (x - b)^2 + 2 (b - a) sum (x - b) + n (b - a)^2 */
	double k, n = (double)from->count;

	if (!from->count)
		return;
	if (!into->count)
		into->shift = from->shift;
	k = (double)from->shift - (double)into->shift;
	for (unsigned r = 0; r <= HIST_RANGES; r++)
		for (unsigned s = 0; s < HIST_SUB; s++)
			into->b[r][s] += from->b[r][s];
	into->count += from->count;
	into->sumsq += from->sumsq + 2 * k * from->sum + n * k * k;
	into->sum += from->sum + n * k;
	if (from->max > into->max)
		into->max = from->max;
	if (from->min < into->min)
		into->min = from->min;
}

double hist_mean(const struct hist *h)
{
	if (!h->count)
		return 0;
	return (double)h->shift + h->sum / (double)h->count;
}

double hist_stddev(const struct hist *h)
{
	double n = (double)h->count, var;

	if (h->count < 2)
		return 0;
	var = (h->sumsq - h->sum * h->sum / n) / (n - 1);
	return var > 0 ? sqrt(var) : 0;
}
