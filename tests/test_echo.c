/* SPDX-License-Identifier: MIT */
/*
 * test_echo.c - echo (RFC 862) over TCP against the real evringd, on both
 * backends, IPv4 and IPv6 loopback. Every test ends with the server back at
 * its baseline: no connection, every pool buffer free, nothing queued.
 */
#include "harness.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const echo_only[] = { "echo", NULL };

static void start_echo(struct srv *s, const char *backend)
{
	cr_assert_eq(srv_start_services(s, backend, echo_only), 0);
	cr_assert_str_eq(s->backend, backend);
}

static void assert_baseline(struct srv *s)
{
	struct srv_stats st;

	cr_assert_eq(srv_wait_idle(s, &st, 10000), 0,
		     "server not back at baseline: conns_open=%llu "
		     "bufs_free=%llu/%llu bufs_heap=%llu bytes_queued=%llu",
		     st.conns_open, st.bufs_free, st.bufs_total, st.bufs_heap,
		     st.bytes_queued);
}

static void stop_clean(struct srv *s)
{
	int rc = srv_stop(s, SIGTERM, 10000);

	cr_assert_eq(rc, 0, "evringd exit status %d; log:\n%s", rc, srv_log(s));
}

static void echo_roundtrip(int family, uint16_t port, size_t n, uint32_t seed)
{
	char *out = malloc(n), *in = malloc(n);
	int fd = tcp_connect(family, port);

	cr_assert_geq(fd, 0, "connect: %s", strerror(errno));
	fill_pattern(out, n, seed);
	cr_assert_eq(xfer(fd, out, n, in, n, false, 30000), 0,
		     "echo of %zu bytes did not come back whole", n);
	cr_assert_eq(memcmp(in, out, n), 0, "echoed bytes differ");
	close(fd);
	free(out);
	free(in);
}

BACKEND_TEST(echo, sizes_ipv4_and_ipv6)
{
	static const size_t sizes[] = { 1, 64 * 1024, 16 * 1024 * 1024 };
	static const int families[] = { AF_INET, AF_INET6 };
	struct srv s;

	start_echo(&s, backend);
	for (size_t f = 0; f < 2; f++) {
		uint16_t port = srv_port(&s, "echo", families[f]);

		cr_assert_neq(port, 0);
		for (size_t i = 0; i < 3; i++)
			echo_roundtrip(families[f], port, sizes[i],
				       (uint32_t)(f * 10 + i));
	}
	assert_baseline(&s);
	stop_clean(&s);
}

BACKEND_TEST(echo, thousand_concurrent_connections)
{
	enum { N = 1000, LEN = 1500 };
	static int fds[N];
	static char out[LEN], in[LEN];
	uint16_t port;
	struct srv s;

	start_echo(&s, backend);
	port = srv_port(&s, "echo", AF_INET);
	for (int i = 0; i < N; i++) {
		fds[i] = tcp_connect(AF_INET, port);
		cr_assert_geq(fds[i], 0, "connect #%d: %s", i, strerror(errno));
	}
	/* Every connection sends its own bytes before any reads. */
	for (int i = 0; i < N; i++) {
		fill_pattern(out, LEN, (uint32_t)i);
		cr_assert_eq(write_all(fds[i], out, LEN), 0);
	}
	for (int i = N - 1; i >= 0; i--) {
		fill_pattern(out, LEN, (uint32_t)i);
		cr_assert_eq(read_exact(fds[i], in, LEN), LEN, "conn #%d", i);
		cr_assert_eq(memcmp(in, out, LEN), 0,
			     "conn #%d got another's "
			     "bytes",
			     i);
		close(fds[i]);
	}
	assert_baseline(&s);
	stop_clean(&s);
}

BACKEND_TEST(echo, half_close_gets_everything_then_eof)
{
	enum { LEN = 300 * 1024 };
	char *out = malloc(LEN), *in = malloc(LEN + 1);
	struct srv s;
	int fd;

	start_echo(&s, backend);
	fd = tcp_connect(AF_INET6, srv_port(&s, "echo", AF_INET6));
	cr_assert_geq(fd, 0);
	fill_pattern(out, LEN, 7);
	/* Send everything, shut down the sending side, read to EOF. */
	cr_assert_eq(xfer(fd, out, LEN, in, LEN, true, 30000), 0);
	cr_assert_eq(memcmp(in, out, LEN), 0);
	cr_assert_eq(read_to_eof(fd, in, 1), 0, "no EOF after the echo");
	close(fd);
	free(out);
	free(in);
	assert_baseline(&s);
	stop_clean(&s);
}

static void reset_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

BACKEND_TEST(echo, clients_reset_mid_stream)
{
	enum { N = 20, LEN = 4 << 20 };
	char *out = malloc(LEN);
	uint16_t port;
	struct srv s;

	start_echo(&s, backend);
	port = srv_port(&s, "echo", AF_INET);
	fill_pattern(out, LEN, 3);
	for (int i = 0; i < N; i++) {
		int fd = tcp_connect(AF_INET, port);
		char tmp[1000];

		cr_assert_geq(fd, 0, "connect #%d: %s", i, strerror(errno));
		/* Push data without reading much, so the server has bytes
		 * queued and sends in flight, then reset the connection. */
		int fl = 1 + i % 3;
		for (int k = 0; k < fl; k++)
			send(fd, out, 256 * 1024, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (i % 2)
			read_exact(fd, tmp, sizeof(tmp));
		reset_close(fd);
	}
	/* The server is unharmed: a normal echo still works. */
	echo_roundtrip(AF_INET, port, 100000, 99);
	assert_baseline(&s);
	stop_clean(&s);
	free(out);
}

BACKEND_TEST(echo, ten_thousand_connections_leave_no_trace)
{
	enum { N = 10000 };
	struct srv_stats st;
	uint16_t port;
	struct srv s;
	int base_fds;

	start_echo(&s, backend);
	port = srv_port(&s, "echo", AF_INET);
	echo_roundtrip(AF_INET, port, 10, 1); /* warm up caches */
	assert_baseline(&s);
	base_fds = fd_count(s.pid);
	cr_assert_gt(base_fds, 0);
	for (int i = 0; i < N; i++) {
		int fd = tcp_connect(AF_INET, port);
		char c = (char)i, r = 0;

		cr_assert_geq(fd, 0, "connect #%d: %s", i, strerror(errno));
		cr_assert_eq(write_all(fd, &c, 1), 0);
		cr_assert_eq(read_exact(fd, &r, 1), 1, "conn #%d", i);
		cr_assert_eq(r, c);
		if (i % 3 == 0)
			reset_close(fd);
		else
			close(fd);
	}
	assert_baseline(&s);
	cr_assert_eq(srv_stats(&s, &st), 0);
	cr_assert_geq(st.conns_accepted, N);
	/* The close of the last connection may still be in flight. */
	for (int i = 0; i < 100 && fd_count(s.pid) != base_fds; i++)
		usleep(10000);
	cr_assert_eq(fd_count(s.pid), base_fds, "fds %d, baseline %d",
		     fd_count(s.pid), base_fds);
	stop_clean(&s);
}

struct load {
	uint16_t port;
	atomic_bool stop;
	atomic_long msgs;
};

static void *load_thread(void *arg)
{
	struct load *ld = arg;
	char out[512], in[512];

	fill_pattern(out, sizeof(out), 5);
	while (!atomic_load(&ld->stop)) {
		int fd = tcp_connect(AF_INET, ld->port);

		if (fd < 0)
			break;
		for (int i = 0; i < 50 && !atomic_load(&ld->stop); i++) {
			if (write_all(fd, out, sizeof(out)) ||
			    read_exact(fd, in, sizeof(in)) != sizeof(in))
				break;
			atomic_fetch_add(&ld->msgs, 1);
		}
		close(fd);
	}
	return NULL;
}

BACKEND_TEST(echo, sigterm_under_load_exits_zero)
{
	enum { THREADS = 8 };
	pthread_t th[THREADS];
	struct load ld = { 0 };
	struct srv s;
	int rc;

	start_echo(&s, backend);
	ld.port = srv_port(&s, "echo", AF_INET);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, load_thread, &ld);
	while (atomic_load(&ld.msgs) < 2000)
		usleep(1000);
	rc = srv_stop(&s, SIGTERM, 10000);
	atomic_store(&ld.stop, true);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(rc, 0, "exit status %d under load; log:\n%s", rc,
		     srv_log(&s));
}
