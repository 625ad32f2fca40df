/* SPDX-License-Identifier: MIT */
/*
 * hist.h - a log-linear latency histogram (the HDR histogram's layout).
 *
 * Values are nanoseconds. Each power-of-two range [2^k, 2^(k+1)) is cut
 * into HIST_SUB equal sub-buckets, so every recorded value is kept within
 * 1/HIST_SUB (about 1.6 %) of its true value, from 1 ns to about 18 minutes,
 * in a fixed 20 KiB: recording is an increment, no allocation, no sorting.
 * Mean and standard deviation are exact: sums of the values and of their
 * squares, taken from the first value so that the squares stay small.
 */
#ifndef EVRING_BENCH_HIST_H
#define EVRING_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_RANGES   40

struct hist {
	uint64_t count;
	uint64_t max;
	uint64_t min;
	uint64_t shift; /* the first value: sums are of v - shift */
	double sum, sumsq;
	uint64_t b[HIST_RANGES + 1][HIST_SUB];
};

void hist_reset(struct hist *h);
void hist_add(struct hist *h, uint64_t ns);
/* The value at or below which a fraction q (0..1) of the samples lie. */
uint64_t hist_quantile(const struct hist *h, double q);
void hist_merge(struct hist *into, const struct hist *from);
/* Mean and sample standard deviation, in nanoseconds (0 when empty). */
double hist_mean(const struct hist *h);
double hist_stddev(const struct hist *h);

#endif
