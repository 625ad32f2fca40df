/* SPDX-License-Identifier: MIT */
/*
 * gshare.c - what the loops of a group share: the few counters of limits
 * that must hold across loops, and the reuseport sockets by address.
 */
#include "internal.h"

#include <stdlib.h>

void evr__group_share_fini(struct evr_group *g)
{
	(void)g;
}
