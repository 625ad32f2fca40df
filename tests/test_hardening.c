/* SPDX-License-Identifier: MIT */
/*
 * test_hardening.c - evringd under clients that misbehave, on both
 * backends: a client that sends and never reads (backpressure, bounded
 * memory, send timeout), idle clients (idle timeout), too many clients
 * (global, per-service and per-source limits, logged once), and SIGTERM
 * with clients connected (graceful drain, its deadline, a second SIGTERM).
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int start(struct srv *s, const char *backend, const char *const *opts)
{
	const char *argv[32];
	int n = 0;

	argv[n++] = "-b";
	argv[n++] = "127.0.0.1";
	argv[n++] = "-s";
	argv[n++] = "echo/tcp:0";
	for (; *opts; opts++)
		argv[n++] = *opts;
	argv[n] = NULL;
	return srv_start(s, backend, 1, argv);
}

#define OPTS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* Push bytes without reading until the server stops taking them for
 * stall_ms; returns how many went out. */
static size_t push_until_stalled(int fd, int stall_ms, size_t limit)
{
	static char chunk[65536];
	size_t total = 0;
	int64_t last = now_ms();

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while (total < limit && now_ms() - last < stall_ms) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		ssize_t w;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		w = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);
		if (w > 0) {
			total += (size_t)w;
			last = now_ms();
		} else if (w < 0 && errno != EAGAIN) {
			break;
		}
	}
	return total;
}

static int64_t echo_rtt_ms(uint16_t port)
{
	char out[512], in[512];
	int64_t t0 = now_ms();
	int fd = tcp_connect(AF_INET, port);

	cr_assert_geq(fd, 0);
	fill_pattern(out, sizeof(out), 77);
	cr_assert_eq(xfer(fd, out, sizeof(out), in, sizeof(in), false, 5000),
		     0);
	cr_assert_eq(memcmp(in, out, sizeof(in)), 0);
	close(fd);
	return now_ms() - t0;
}

BACKEND_TEST(hardening, client_that_never_reads_is_bounded)
{
	struct srv_stats st;
	struct srv s;
	long rss0, rss1;
	size_t pushed;
	int fd;

	cr_assert_eq(start(&s, backend, OPTS("--send-timeout", "0")), 0);
	echo_rtt_ms(srv_port(&s, "echo", AF_INET));
	rss0 = rss_kib(s.pid);
	fd = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
	cr_assert_geq(fd, 0);
	pushed = push_until_stalled(fd, 1000, (size_t)1 << 30);
	cr_assert_lt(pushed, (size_t)64 << 20,
		     "the server took %zu bytes from a client that never "
		     "reads",
		     pushed);
	cr_assert_eq(srv_stats(&s, &st), 0);
	cr_assert_leq(st.bytes_queued, 4u << 20, "queued %llu",
		      st.bytes_queued);
	cr_assert_geq(st.read_pauses, 1);
	rss1 = rss_kib(s.pid);
	cr_assert_lt(rss1 - rss0, 16 * 1024, "RSS grew %ld KiB", rss1 - rss0);
	/* Everyone else is served at normal speed meanwhile. */
	for (int i = 0; i < 20; i++)
		cr_assert_lt(echo_rtt_ms(srv_port(&s, "echo", AF_INET)), 200);
	/* Once the client reads, every byte it sent comes back. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	shutdown(fd, SHUT_WR);
	ssize_t back = read_to_eof(fd, NULL, 0);
	cr_assert_eq((size_t)back, pushed);
	close(fd);
	cr_assert_eq(srv_wait_idle(&s, &st, 10000), 0);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

BACKEND_TEST(hardening, send_timeout_closes_a_peer_that_stopped_reading)
{
	struct srv_stats st;
	struct srv s;
	int fd;

	cr_assert_eq(start(&s, backend, OPTS("--send-timeout", "300ms")), 0);
	/* a small receive buffer, set before the handshake: the kernel
	 * buffers cannot absorb the echo, bytes stay queued in the server
	 * (otherwise it may hand everything to the kernel and have no
	 * reason to time out) */
	fd = tcp_connect_rcvbuf(AF_INET, srv_port(&s, "echo", AF_INET), 4096);
	cr_assert_geq(fd, 0);
	push_until_stalled(fd, 300, (size_t)1 << 30);
	cr_assert(wait_closed(fd, 3000), "not closed by the send timeout");
	close(fd);
	cr_assert_eq(srv_wait_idle(&s, &st, 5000), 0);
	cr_assert_eq(st.send_timeouts, 1);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

BACKEND_TEST(hardening, idle_timeout_closes_only_idle_connections)
{
	struct srv_stats st;
	struct srv s;
	int idle, busy;
	char c;

	/* a round trip every 50 ms for 3 s against an idle timeout of 2 s:
	 * only a client stalled for nearly 2 s could lose the busy one */
	cr_assert_eq(start(&s, backend, OPTS("--idle-timeout", "2s")), 0);
	idle = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
	busy = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
	cr_assert(idle >= 0 && busy >= 0);
	for (int i = 0; i < 60; i++) {
		cr_assert_eq(write_all(busy, "x", 1), 0);
		cr_assert_eq(read_exact(busy, &c, 1), 1,
			     "an active connection was closed");
		usleep(50 * 1000);
	}
	cr_assert(wait_closed(idle, 5000), "the idle connection is open");
	close(idle);
	close(busy);
	cr_assert_eq(srv_wait_idle(&s, &st, 5000), 0);
	cr_assert_eq(st.idle_timeouts, 1);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

/* Refused connections are closed at once: the client sees EOF or a
 * reset instead of its echo. */
static bool refused(int fd)
{
	char c;

	if (write_all(fd, "r", 1) < 0)
		return true;
	return read_exact(fd, &c, 1) != 1;
}

/* One loop: refusals are logged once per interval per loop (test_group.c
 * shows the limits holding across loops). */
BACKEND_TEST(hardening, global_and_service_connection_limits)
{
	int fds[12];
	struct srv_stats st;
	struct srv s;

	cr_assert_eq(
	    start(&s, backend, OPTS("--max-conns", "5", "--threads", "1")), 0);
	for (int i = 0; i < 12; i++) {
		fds[i] = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
		cr_assert_geq(fds[i], 0);
		if (i < 5)
			cr_assert_not(refused(fds[i]), "conn %d refused", i);
		else
			cr_assert(refused(fds[i]), "conn %d accepted", i);
	}
	cr_assert_eq(srv_stats(&s, &st), 0);
	cr_assert_eq(st.conns_refused, 7);
	cr_assert_eq(count_substr(srv_log(&s), "refused a connection"), 1,
		     "one line per interval: %s", srv_log(&s));
	cr_assert(srv_log_has(&s, "global limit of 5"));
	/* room again once some close */
	for (int i = 0; i < 12; i++)
		close(fds[i]);
	cr_assert_eq(srv_wait_idle(&s, &st, 5000), 0);
	fds[0] = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
	cr_assert_not(refused(fds[0]));
	close(fds[0]);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);

	cr_assert_eq(start(&s, backend,
			   OPTS("-o", "echo.max_conns=2", "--threads", "1")),
		     0);
	for (int i = 0; i < 3; i++)
		fds[i] = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
	cr_assert_not(refused(fds[0]));
	cr_assert_not(refused(fds[1]));
	cr_assert(refused(fds[2]));
	cr_assert(srv_log_has(&s, "service limit of 2"), "%s", srv_log(&s));
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

/* One loop: the sources gauge counts a source once per loop it has
 * connections on (test_group.c shows the limit across loops). */
BACKEND_TEST(hardening, per_source_limit)
{
	int a[3], b;
	struct srv_stats st;
	struct srv s;
	uint16_t port;

	cr_assert_eq(
	    start(&s, backend,
		  OPTS("--max-conns-per-source", "2", "--threads", "1")),
	    0);
	port = srv_port(&s, "echo", AF_INET);
	for (int i = 0; i < 3; i++)
		a[i] = tcp_connect_from("127.0.0.3", port);
	b = tcp_connect_from("127.0.0.4", port);
	cr_assert_not(refused(a[0]));
	cr_assert_not(refused(a[1]));
	cr_assert(refused(a[2]), "a third connection from one source");
	cr_assert_not(refused(b), "another source has its own count");
	cr_assert_eq(srv_stats(&s, &st), 0);
	cr_assert_eq(st.sources, 2);
	cr_assert(srv_log_has(&s, "per-source limit of 2"), "%s", srv_log(&s));
	for (int i = 0; i < 3; i++)
		close(a[i]);
	close(b);
	cr_assert_eq(srv_wait_idle(&s, &st, 5000), 0);
	cr_assert_eq(st.sources, 0, "the table forgets closed sources");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

BACKEND_TEST(hardening, sigterm_drains_open_connections)
{
	struct srv s;
	int fd, late;
	char buf[4];
	int64_t t0;

	cr_assert_eq(start(&s, backend, OPTS("--drain-timeout", "10s")), 0);
	fd = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
	cr_assert_geq(fd, 0);
	cr_assert_eq(xfer(fd, "ab", 2, buf, 2, false, 5000), 0);
	kill(s.pid, SIGTERM);
	usleep(200 * 1000);
	/* no new connections, the open one is still served */
	late = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
	cr_assert_lt(late, 0, "accepted a connection while draining");
	cr_assert_eq(xfer(fd, "cd", 2, buf, 2, false, 5000), 0);
	cr_assert_eq(memcmp(buf, "cd", 2), 0);
	/* it ends when the client does */
	t0 = now_ms();
	close(fd);
	cr_assert_eq(srv_stop(&s, 0, 5000), 0, "%s", srv_log(&s));
	cr_assert_lt(now_ms() - t0, 2000);
	cr_assert(srv_log_has(&s, "draining"));
}

BACKEND_TEST(hardening, drain_deadline_and_second_sigterm)
{
	struct srv s;
	char buf[2];
	int fd;
	int64_t t0;

	cr_assert_eq(start(&s, backend, OPTS("--drain-timeout", "500ms")), 0);
	fd = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
	cr_assert_geq(fd, 0);
	cr_assert_eq(xfer(fd, "ab", 2, buf, 2, false, 5000), 0); /* accepted */
	t0 = now_ms();
	kill(s.pid, SIGTERM);
	cr_assert(wait_closed(fd, 5000), "the deadline did not close it");
	cr_assert_geq(now_ms() - t0, 400);
	cr_assert_eq(srv_stop(&s, 0, 5000), 0);
	cr_assert(srv_log_has(&s, "drain deadline"), "%s", srv_log(&s));
	close(fd);

	cr_assert_eq(start(&s, backend, OPTS("--drain-timeout", "60s")), 0);
	fd = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
	cr_assert_geq(fd, 0);
	cr_assert_eq(xfer(fd, "ab", 2, buf, 2, false, 5000), 0);
	kill(s.pid, SIGTERM);
	usleep(200 * 1000);
	t0 = now_ms();
	cr_assert_eq(srv_stop(&s, SIGTERM, 5000), 0);
	cr_assert_lt(now_ms() - t0, 2000, "a second SIGTERM exits at once");
	cr_assert(wait_closed(fd, 1000));
	close(fd);
}
