/* SPDX-License-Identifier: MIT */
/*
 * fault.c - fault injection for tests: make chosen calls fail.
 *
 * A table of injection points, each failing every Nth call after the first
 * `after` calls with a chosen error (or cutting a transfer short). Tests set
 * it through evr__fault_set(); nothing else touches it, and when no point is
 * set the hooks cost one predictable branch. Points, where they act and what
 * they model are listed in docs/reliability.md.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct evr__fault evr__faults[EVR__F__COUNT];
bool evr__faults_on;

void evr__fault_set(enum evr__fault_point p, uint32_t every, uint32_t after,
		    int err)
{
	evr__faults[p] = (struct evr__fault){
		.every = every,
		.after = after,
		.err = err,
	};
	evr__faults_on = false;
	for (int i = 0; i < EVR__F__COUNT; i++)
		if (evr__faults[i].every)
			evr__faults_on = true;
}

void evr__fault_clear(void)
{
	memset(evr__faults, 0, sizeof(evr__faults));
	evr__faults_on = false;
}

int evr__fault_hit(enum evr__fault_point p)
{
	struct evr__fault *f = &evr__faults[p];

	if (!f->every)
		return 0;
	if (++f->calls <= f->after || (f->calls - f->after) % f->every)
		return 0;
	f->hits++;
	return f->err ? f->err : -EIO;
}

size_t evr__fault_cut(enum evr__fault_point p, size_t len)
{
	struct evr__fault *f = &evr__faults[p];

	if (len <= 1 || !evr__fault_hit(p))
		return len;
	/* a deterministic length in 1..len-1 */
	return 1 + (size_t)((f->calls * 2654435761u) % (len - 1));
}

void *evr__malloc(size_t n)
{
	if (EVR_UNLIKELY(evr__faults_on) && evr__fault_hit(EVR__F_ALLOC))
		return NULL;
	return malloc(n);
}

void *evr__calloc(size_t n, size_t size)
{
	if (EVR_UNLIKELY(evr__faults_on) && evr__fault_hit(EVR__F_ALLOC))
		return NULL;
	return calloc(n, size);
}
