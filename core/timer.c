/* SPDX-License-Identifier: MIT */
/*
 * timer.c - one-shot timers on a binary min-heap.
 *
 * The heap holds pointers to timers embedded in their owners; each timer
 * knows its heap slot, so stopping is O(log n) without a search. Timers whose
 * deadline moves with activity (idle timeouts) are not re-keyed on every
 * event: their owners record the time of the last activity and re-arm for
 * the remainder when the timer fires, so the per-event cost is O(1).
 *
 * Timers that expire in the same iteration run in deadline order. A timer
 * restarted from a timer callback with 0 ms waits at least 1 ms, so a
 * callback cannot keep the loop in its timer pass forever.
 */
#include "internal.h"

#include <stdlib.h>
#include <time.h>

uint64_t evr__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline bool before(const struct evr_timer *a, const struct evr_timer *b)
{
	return a->expires < b->expires;
}

static void heap_set(struct evr__timers *h, uint32_t i, struct evr_timer *t)
{
	h->heap[i] = t;
	t->slot = i + 1;
}

static void sift_up(struct evr__timers *h, uint32_t i)
{
	struct evr_timer *t = h->heap[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (!before(t, h->heap[parent]))
			break;
		heap_set(h, i, h->heap[parent]);
		i = parent;
	}
	heap_set(h, i, t);
}

static void sift_down(struct evr__timers *h, uint32_t i)
{
	struct evr_timer *t = h->heap[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && before(h->heap[c + 1], h->heap[c]))
			c++;
		if (!before(h->heap[c], t))
			break;
		heap_set(h, i, h->heap[c]);
		i = c;
	}
	heap_set(h, i, t);
}

void evr_timer_init(struct evr_timer *t, evr_timer_cb cb)
{
	t->expires = 0;
	t->slot = 0;
	t->cb = cb;
}

int evr_timer_start(struct evr_loop *l, struct evr_timer *t, uint64_t ms)
{
	struct evr__timers *h = &l->timers;

	if (t->slot)
		evr_timer_stop(l, t);
	if (h->n == h->cap) {
		uint32_t cap = h->cap ? h->cap * 2 : 64;
		struct evr_timer **nh = realloc(h->heap, cap * sizeof(*nh));

		if (!nh)
			return -ENOMEM;
		h->heap = nh;
		h->cap = cap;
	}
	if (ms == 0 && h->running)
		ms = 1;
	t->expires = l->now + ms;
	heap_set(h, h->n++, t);
	sift_up(h, h->n - 1);
	l->st.timers++;
	return 0;
}

void evr_timer_stop(struct evr_loop *l, struct evr_timer *t)
{
	struct evr__timers *h = &l->timers;
	uint32_t i;

	if (!t->slot)
		return;
	i = t->slot - 1;
	t->slot = 0;
	l->st.timers--;
	if (i == --h->n)
		return;
	heap_set(h, i, h->heap[h->n]);
	if (i > 0 && before(h->heap[i], h->heap[(i - 1) / 2]))
		sift_up(h, i);
	else
		sift_down(h, i);
}

int64_t evr__timers_next(struct evr_loop *l)
{
	struct evr__timers *h = &l->timers;

	if (!h->n)
		return -1;
	if (h->heap[0]->expires <= l->now)
		return 0;
	return (int64_t)(h->heap[0]->expires - l->now);
}

void evr__timers_run(struct evr_loop *l)
{
	struct evr__timers *h = &l->timers;
	uint64_t now = l->now;

	h->running = true;
	while (h->n && h->heap[0]->expires <= now) {
		struct evr_timer *t = h->heap[0];

		evr_timer_stop(l, t);
		t->cb(t);
	}
	h->running = false;
}

void evr__timers_fini(struct evr_loop *l)
{
	struct evr__timers *h = &l->timers;

	for (uint32_t i = 0; i < h->n; i++)
		h->heap[i]->slot = 0;
	free(h->heap);
	h->heap = NULL;
	h->n = h->cap = 0;
	l->st.timers = 0;
}
