/* SPDX-License-Identifier: MIT */
/*
 * stats.c - the counters of every loop, summed without stopping them
 * (evr_group_stats), on the log as SIGUSR1 asks.
 *
 * One line of every counter, name=value in the order of EVR_STATS, after
 * "loops=N". A log line holds about a thousand bytes, and forty counters
 * with large values need more: the rest goes on lines that start
 * "stats+:", each one whole fields.
 */
#include "evringd.h"

#include <stdio.h>
#include <string.h>

#define STATS_LINE_MAX 900

static void log_totals(const struct evr_stats *per_loop, unsigned n,
		       const struct evr_stats *total, void *arg)
{
	char line[STATS_LINE_MAX + 64];
	const char *tag = "stats";
	size_t off;

	(void)per_loop, (void)arg;
	off = (size_t)snprintf(line, sizeof(line), "loops=%u", n);
#define STAT_FIELD(name, type, help)                                           \
	{                                                                      \
		char f[64];                                                    \
		int k = snprintf(f, sizeof(f), " " #name "=%llu",              \
				 (unsigned long long)total->name);             \
		if (off + (size_t)k > STATS_LINE_MAX) {                        \
			evr_log_info("%s: %s", tag, line);                     \
			tag = "stats+";                                        \
			off = 0;                                               \
			k = snprintf(f, sizeof(f), #name "=%llu",              \
				     (unsigned long long)total->name);         \
		}                                                              \
		memcpy(line + off, f, (size_t)k + 1);                          \
		off += (size_t)k;                                              \
	}
	EVR_STATS(STAT_FIELD)
#undef STAT_FIELD
	evr_log_info("%s: %s", tag, line);
}

void evd_log_stats(struct daemon *d, struct evr_loop *l)
{
	int err = evr_group_stats(d->loops, l, log_totals, d);

	if (err < 0)
		evr_log_warn("stats: %s", strerror(-err));
}
