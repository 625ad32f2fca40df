/* SPDX-License-Identifier: MIT */
/*
 * refused.h - one log line about input a module refused, for the modules
 * of protocols/. Not installed.
 *
 * Bad input must say why in the log, but a client that sends nothing else
 * must not fill it: each module keeps one struct evr__refusals per thread
 * (loops are per thread) and logs at most one line per 10 s through it,
 * counting the lines left out meanwhile.
 */
#ifndef EVRING_PROTOCOLS_REFUSED_H
#define EVRING_PROTOCOLS_REFUSED_H

#include "evring.h"

struct evr__refusals {
	uint64_t next; /* loop time before which lines are left out */
	unsigned long skipped;
};

/* "MODULE: PEER: message", at info level, when r allows. */
void evr__log_refused(struct evr__refusals *r, struct evr_conn *c,
		      const char *module, const char *fmt, ...)
    EVR_PRINTF(4, 5);

#endif
