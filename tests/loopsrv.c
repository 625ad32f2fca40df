/* SPDX-License-Identifier: MIT */
/*
 * loopsrv.c - an in-process loop for tests; see loopsrv.h.
 */
#include "loopsrv.h"
#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

static void on_tick(struct evr_timer *t)
{
	struct server *s = EVR_CONTAINER_OF(t, struct server, tick);

	pthread_mutex_lock(&s->mu);
	evr_loop_stats(s->l, &s->snap);
	pthread_mutex_unlock(&s->mu);
	if (atomic_load(&s->stop))
		evr_loop_stop(s->l);
	else
		evr_timer_start(s->l, &s->tick, 2);
}

/* The optional UDP socket; its port in s->uport. */
static int udp_start(struct server *s)
{
	struct evr_udp_cfg cfg = { .proto = s->udp_proto, .conf = s->conf };
	struct sockaddr_storage ss;
	struct evr_udp *u;
	socklen_t len;
	int err;

	cfg.guard.rate = EVR_UDP_UNLIMITED;
	cfg.guard.amplification = EVR_UDP_UNLIMITED;
	evr_addr_parse("127.0.0.1", 0, &ss, &len);
	err = evr_udp_bind(s->l, (struct sockaddr *)&ss, len, &cfg, &u);
	if (err < 0)
		return err;
	evr_udp_addr(u, &ss, &len);
	s->uport = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

/* The extra listeners of s->more; their ports in s->more_port. */
static int more_start(struct server *s)
{
	for (int i = 0; i < SERVER_MORE; i++) {
		struct evr_listen_cfg cfg = { .proto = s->more[i].proto,
					      .conf = s->more[i].conf,
					      .lim = s->lim };
		struct sockaddr_storage ss;
		struct evr_listener *ls;
		socklen_t len;
		int err;

		if (!cfg.proto)
			continue;
		evr_addr_parse("127.0.0.1", 0, &ss, &len);
		err = evr_listen(s->l, (struct sockaddr *)&ss, len, &cfg, &ls);
		if (err < 0)
			return err;
		evr_listener_addr(ls, &ss, &len);
		s->more_port[i] = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	return 0;
}

/* The loop is created, run and freed on its own thread (io_uring rings
 * are SINGLE_ISSUER). */
static void *server_main(void *arg)
{
	struct server *s = arg;
	struct evr_listen_cfg cfg = { .proto =
					  s->proto ? s->proto : &evr_proto_echo,
				      .conf = s->conf,
				      .lim = s->lim };
	struct sockaddr_storage ss;
	struct evr_listener *ls;
	socklen_t len;

	if (evr_loop_new(&s->l, &s->o) < 0) {
		atomic_store(&s->state, -1);
		return NULL;
	}
	evr_addr_parse("127.0.0.1", 0, &ss, &len);
	if (evr_listen(s->l, (struct sockaddr *)&ss, len, &cfg, &ls) < 0) {
		evr_loop_free(s->l);
		atomic_store(&s->state, -1);
		return NULL;
	}
	evr_listener_addr(ls, &ss, &len);
	s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if ((s->udp_proto && udp_start(s) < 0) || more_start(s) < 0) {
		evr_loop_free(s->l);
		atomic_store(&s->state, -1);
		return NULL;
	}
	evr_timer_init(&s->tick, on_tick);
	evr_timer_start(s->l, &s->tick, 0);
	atomic_store(&s->state, 1);
	while (atomic_load(&s->hold))
		usleep(1000);
	s->run_err = evr_loop_run(s->l);
	evr_loop_free(s->l);
	return NULL;
}

void server_start(struct server *s, const char *backend)
{
	skip_unless_backend_runs(backend);
	s->o.backend = backend;
	pthread_mutex_init(&s->mu, NULL);
	cr_assert_eq(pthread_create(&s->th, NULL, server_main, s), 0);
	while (atomic_load(&s->state) == 0)
		usleep(1000);
	cr_assert_eq(atomic_load(&s->state), 1, "loop did not start");
}

struct evr_stats server_stats(struct server *s)
{
	struct evr_stats st;

	usleep(5000);
	pthread_mutex_lock(&s->mu);
	st = s->snap;
	pthread_mutex_unlock(&s->mu);
	return st;
}

void server_wait_idle(struct server *s)
{
	struct evr_stats st;
	int64_t deadline = now_ms() + 10000;

	do {
		st = server_stats(s);
		if (!st.conns_open && st.bufs_free == st.bufs_total &&
		    st.udp_bufs_free == st.udp_bufs_total && !st.bufs_heap &&
		    !st.bytes_queued)
			return;
	} while (now_ms() < deadline);
	cr_assert_fail("not idle: conns_open=%llu bufs_free=%u/%u "
		       "udp_bufs_free=%u/%u bufs_heap=%llu bytes_queued=%llu",
		       (unsigned long long)st.conns_open, st.bufs_free,
		       st.bufs_total, st.udp_bufs_free, st.udp_bufs_total,
		       (unsigned long long)st.bufs_heap,
		       (unsigned long long)st.bytes_queued);
}

void server_stop(struct server *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
	cr_assert_eq(s->run_err, 0);
}
