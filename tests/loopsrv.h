/* SPDX-License-Identifier: MIT */
/*
 * loopsrv.h - a loop serving one listener on 127.0.0.1 in a thread of the
 * test process, for tests that need options or modules evringd does not
 * have, and optionally a UDP socket on 127.0.0.1 too. The loop is created,
 * run and freed on that thread; the test reads a snapshot of its counters,
 * refreshed every 2 ms.
 */
#ifndef EVRING_TEST_LOOPSRV_H
#define EVRING_TEST_LOOPSRV_H

#include "evring.h"
#include "evring/daytime.h"
#include "evring/line.h"
#include "evring/modules.h"

#include <pthread.h>
#include <stdatomic.h>

#define SERVER_MORE 8

struct server {
	struct evr_loop_opts o;	       /* set before server_start */
	const struct evr_proto *proto; /* default: echo */
	void *conf;		       /* the module's configuration */
	struct evr_conn_limits lim;
	/* When set, also bind a UDP socket served by this module (with
	 * conf), with the guard's rate limit and amplification cap off; its
	 * port in uport. */
	const struct evr_proto *udp_proto;
	/* More TCP listeners on 127.0.0.1 in the same loop, with the limits
	 * of lim: each serves its module (proto NULL: none) with its conf;
	 * their ports in more_port. */
	struct {
		const struct evr_proto *proto;
		void *conf;
	} more[SERVER_MORE];
	uint16_t more_port[SERVER_MORE];
	atomic_bool hold; /* listen, but run the loop only when cleared */
	/* private: */
	pthread_t th;
	pthread_mutex_t mu;
	struct evr_stats snap;
	struct evr_loop *l;
	struct evr_timer tick;
	uint16_t port;
	uint16_t uport;
	atomic_int state; /* 0 starting, 1 serving, -1 failed */
	atomic_bool stop;
	int run_err;
};

/* Skips the test, with the reason, where backend is "io_uring" and
 * io_uring cannot run here. */
void server_start(struct server *s, const char *backend);
struct evr_stats server_stats(struct server *s);
/* Asserts that connections, buffers (UDP ones too) and queues get back to
 * zero. */
void server_wait_idle(struct server *s);
void server_stop(struct server *s);

#endif
