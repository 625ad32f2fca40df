/* SPDX-License-Identifier: MIT */
/*
 * test_unit.c - units without sockets: the buffer pool and reference
 * counts, timers, the module registry and its validation, daytime lines.
 */
#include "harness.h"

#include "../core/internal.h"
#include "evring/daytime.h"
#include "evring/line.h"
#include "evring/modules.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct evr_loop *new_loop(const char *backend, uint32_t count)
{
	struct evr_loop_opts o;
	struct evr_loop *l = NULL;

	evr_loop_opts_init(&o);
	o.backend = backend;
	o.buf_count = count;
	o.buf_size = 4096;
	cr_assert_eq(evr_loop_new(&l, &o), 0);
	return l;
}

/* ---- buffers ---- */

BACKEND_TEST(buf, heap_buffers_refcount_and_return)
{
	struct evr_loop *l = new_loop(backend, 16);
	struct evr_stats st;
	struct evr_buf *small, *mid, *big;

	small = evr_buf_new(l, 10);
	mid = evr_buf_new(l, 3000);
	big = evr_buf_new(l, 1 << 20);
	cr_assert(small && mid && big);
	cr_assert_geq(small->cap, 10);
	cr_assert_geq(mid->cap, 3000);
	cr_assert_geq(big->cap, 1u << 20);
	cr_assert_eq(small->refs, 1);
	memset(big->data, 0xab, big->cap);
	evr_loop_stats(l, &st);
	cr_assert_eq(st.bufs_heap, 3);

	evr_buf_ref(mid);
	evr_buf_unref(mid);
	evr_loop_stats(l, &st);
	cr_assert_eq(st.bufs_heap, 3, "a reference is still held");
	evr_buf_unref(mid);
	evr_buf_unref(small);
	evr_buf_unref(big);
	evr_loop_stats(l, &st);
	cr_assert_eq(st.bufs_heap, 0);

	/* The small class is cached: the next one reuses it. */
	struct evr_buf *again = evr_buf_new(l, 5);
	cr_assert_eq(again, small);
	cr_assert_eq(again->len, 0);
	evr_buf_unref(again);
	evr_loop_free(l);
}

Test(buf, pool_buffers_all_return_to_the_pool)
{
	struct evr_loop *l = new_loop("epoll", 8);
	struct evr_buf *b[8];
	struct evr_stats st;

	evr_loop_stats(l, &st);
	cr_assert_eq(st.bufs_total, 8);
	cr_assert_eq(st.bufs_free, 8);
	for (int i = 0; i < 8; i++) {
		b[i] = evr__pool_get(&l->pool);
		cr_assert_not_null(b[i]);
		for (int j = 0; j < i; j++)
			cr_assert_neq(b[i], b[j]);
		b[i]->len = 100;
	}
	cr_assert_null(evr__pool_get(&l->pool), "the pool has only 8");
	evr_loop_stats(l, &st);
	cr_assert_eq(st.bufs_free, 0);
	/* A module keeps a reference to one: it stays out of the pool. */
	evr_buf_ref(b[3]);
	for (int i = 0; i < 8; i++)
		evr_buf_unref(b[i]);
	evr_loop_stats(l, &st);
	cr_assert_eq(st.bufs_free, 7);
	evr_buf_unref(b[3]);
	evr_loop_stats(l, &st);
	cr_assert_eq(st.bufs_free, 8);
	/* A returned buffer comes back reset. */
	struct evr_buf *x = evr__pool_get(&l->pool);
	cr_assert_eq(x->len, 0);
	cr_assert_eq(x->refs, 1);
	cr_assert_eq(x->data, x->base);
	evr_buf_unref(x);
	evr_loop_free(l);
}

Test(buf, pool_count_rounds_up_to_a_power_of_two)
{
	struct evr_loop *l = new_loop("epoll", 100);
	struct evr_stats st;

	evr_loop_stats(l, &st);
	cr_assert_eq(st.bufs_total, 128);
	evr_loop_free(l);
}

/* ---- timers ---- */

static int order[16], norder;
static uint64_t fired_at[16];
static struct evr_loop *tl;

struct tmr {
	struct evr_timer t;
	int id;
	int repeat;
};

static void on_timer(struct evr_timer *t)
{
	struct tmr *x = EVR_CONTAINER_OF(t, struct tmr, t);

	fired_at[norder] = evr_loop_now(tl);
	order[norder++] = x->id;
	if (x->repeat-- > 0)
		evr_timer_start(tl, t, 0);
}

BACKEND_TEST(timer, fire_in_deadline_order_not_early)
{
	struct tmr t[5];
	static const int ms[5] = { 50, 10, 30, 20, 40 };
	uint64_t start;

	tl = new_loop(backend, 4);
	norder = 0;
	start = evr_loop_now(tl);
	for (int i = 0; i < 5; i++) {
		t[i].id = i;
		t[i].repeat = 0;
		evr_timer_init(&t[i].t, on_timer);
		cr_assert_eq(evr_timer_start(tl, &t[i].t, (uint64_t)ms[i]), 0);
	}
	evr_timer_stop(tl, &t[4].t); /* stopped: never fires */
	cr_assert_not(evr_timer_active(&t[4].t));
	cr_assert_eq(evr_loop_run(tl), 0, "returns when no timer is left");
	cr_assert_eq(norder, 4);
	cr_assert_eq(order[0], 1);
	cr_assert_eq(order[1], 3);
	cr_assert_eq(order[2], 2);
	cr_assert_eq(order[3], 0);
	for (int i = 0; i < 4; i++)
		cr_assert_geq(fired_at[i] - start, (uint64_t)ms[order[i]],
			      "timer %d fired early", order[i]);
	evr_loop_free(tl);
}

BACKEND_TEST(timer, restart_from_callback_and_zero_delay)
{
	struct tmr a = { .id = 7, .repeat = 5 };
	struct evr_stats st;

	tl = new_loop(backend, 4);
	norder = 0;
	evr_timer_init(&a.t, on_timer);
	evr_timer_start(tl, &a.t, 0);
	cr_assert_eq(evr_loop_run(tl), 0);
	cr_assert_eq(norder, 6, "fired once and restarted five times");
	evr_loop_stats(tl, &st);
	cr_assert_eq(st.timers, 0);
	evr_loop_free(tl);
}

Test(timer, many_timers_heap_order)
{
	enum { N = 2000 };
	static struct tmr t[N];
	uint64_t last = 0;

	tl = new_loop("epoll", 4);
	srand(42);
	for (int i = 0; i < N; i++) {
		evr_timer_init(&t[i].t, on_timer);
		evr_timer_start(tl, &t[i].t, (uint64_t)(rand() % 10000));
	}
	for (int i = 0; i < N; i += 2)
		evr_timer_stop(tl, &t[i].t);
	/* Pop in order by hand through the internal heap. */
	tl->now += 20000;
	while (tl->timers.n) {
		struct evr_timer *top = tl->timers.heap[0];

		cr_assert_geq(top->expires, last);
		last = top->expires;
		evr_timer_stop(tl, top);
	}
	evr_loop_free(tl);
}

/* ---- registry ---- */

static void nop_data(struct evr_conn *c, struct evr_buf *b)
{
	(void)c, (void)b;
}

static int nop_set(void *conf, const char *k, const char *v)
{
	(void)conf, (void)k, (void)v;
	return 0;
}

Test(proto, validation_names_the_problem)
{
	char why[200];
	struct evr_proto p;

	memset(&p, 0, sizeof(p));
	cr_assert_eq(evr_proto_validate(&p, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "no name"));

	p.name = "Bad Name";
	p.on_data = nop_data;
	cr_assert_eq(evr_proto_validate(&p, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "a-z"), "%s", why);

	p.name = "quiet";
	p.on_data = NULL;
	cr_assert_eq(evr_proto_validate(&p, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "on_accept, on_connect, on_data or on_datagram"),
		  "%s", why);

	p.on_data = nop_data;
	p.state_size = 1 << 20;
	cr_assert_eq(evr_proto_validate(&p, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "state_size"), "%s", why);

	p.state_size = 64;
	p.conf_set = nop_set;
	cr_assert_eq(evr_proto_validate(&p, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "conf_size"), "%s", why);

	p.conf_size = 8;
	cr_assert_eq(evr_proto_validate(&p, why, sizeof(why)), 0);
}

Test(proto, builtins_and_user_modules_by_name)
{
	static const struct evr_proto mine = { .name = "mine",
					       .on_data = nop_data };
	static const struct evr_proto bad = { .name = "BAD",
					      .on_data = nop_data };

	cr_assert_eq(evr_proto_find("echo"), &evr_proto_echo);
	cr_assert_eq(evr_proto_find("daytime"), &evr_proto_daytime);
	cr_assert_null(evr_proto_find("mine"));
	cr_assert_eq(evr_proto_register(&mine), 0);
	cr_assert_eq(evr_proto_find("mine"), &mine);
	cr_assert_eq(evr_proto_register(&mine), -EEXIST);
	cr_assert_eq(evr_proto_register(&bad), -EINVAL);
	cr_assert_eq(evr_proto_register(&evr_proto_echo), -EEXIST);
	/* Every built-in module is valid. */
	const struct evr_proto *p;
	char why[200];
	for (size_t i = 0; (p = evr_proto_at(i)); i++)
		cr_assert_eq(evr_proto_validate(p, why, sizeof(why)), 0,
			     "%s: %s", p->name, why);
}

Test(proto, missing_handlers_get_defaults)
{
	static const struct evr_proto p = { .name = "x", .on_data = nop_data };
	struct evr__proto_rt rt;

	evr__proto_resolve(&p, &rt);
	cr_assert_not_null(rt.on_accept);
	cr_assert_eq(rt.on_data, nop_data);
	cr_assert_eq(rt.on_eof, evr_close, "EOF closes by default");
	cr_assert_not_null(rt.on_sent);
	cr_assert_not_null(rt.on_close);
}

/* ---- daytime lines ---- */

Test(daytime_format, default_is_rfc867_style_utc)
{
	char buf[128];
	/* 2026-11-25 03:35:50 UTC was a Wednesday */
	int n = evr_daytime_format(buf, sizeof(buf), NULL, true, 1795577750);

	cr_assert_str_eq(buf, "Wednesday, November 25, 2026 03:35:50-UTC\r\n");
	cr_assert_eq(n, (int)strlen(buf));
	evr_daytime_format(buf, sizeof(buf), NULL, true, 1772700000);
	cr_assert_str_eq(buf, "Thursday, March 5, 2026 08:40:00-UTC\r\n",
			 "days have no leading zero");
}

Test(daytime_format, custom_format_and_limits)
{
	char buf[64];

	cr_assert_eq(evr_daytime_format(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ",
					true, 1795577750),
		     22);
	cr_assert_str_eq(buf, "2026-11-25T03:35:50Z\r\n");
	cr_assert_eq(evr_daytime_format(buf, 10, NULL, true, 1795577750),
		     -ENOSPC);
	cr_assert_eq(evr_daytime_format(buf, sizeof(buf), "", true, 0), -ENOSPC,
		     "an empty format gives no line");
}

Test(daytime_format, local_time)
{
	char buf[128];

	setenv("TZ", "Asia/Kolkata", 1);
	tzset();
	evr_daytime_format(buf, sizeof(buf), NULL, false, 1795577750);
	cr_assert_str_eq(buf, "Wednesday, November 25, 2026 09:05:50-IST\r\n");
}
