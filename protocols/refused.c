/* SPDX-License-Identifier: MIT */
/*
 * refused.c - log lines about refused input, rate-limited (refused.h).
 */
#include "refused.h"

#include <stdio.h>

#define REFUSED_LOG_EVERY_MS 10000

void evr__log_refused(struct evr__refusals *r, struct evr_conn *c,
		      const char *module, const char *fmt, ...)
{
	uint64_t now = evr_loop_now(evr_conn_loop(c));
	char peer[EVR_ADDRSTRLEN] = "?", why[200];
	struct sockaddr_storage ss;
	socklen_t len;
	va_list ap;

	if (now < r->next) {
		r->skipped++;
		return;
	}
	r->next = now + REFUSED_LOG_EVERY_MS;
	if (evr_conn_peer(c, &ss, &len) == 0)
		evr_addr_str((struct sockaddr *)&ss, peer, sizeof(peer));
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (r->skipped)
		evr_log_info("%s: %s: %s (and %lu more in the last %d s)",
			     module, peer, why, r->skipped,
			     REFUSED_LOG_EVERY_MS / 1000);
	else
		evr_log_info("%s: %s: %s", module, peer, why);
	r->skipped = 0;
}
