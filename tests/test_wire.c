/* SPDX-License-Identifier: MIT */
/*
 * test_wire.c - what crosses the wire, counted on the client's side with
 * TCP_INFO, on both backends: the segments a short-lived connection costs.
 */
#include "harness.h"

#include <netinet/in.h>
#include <linux/tcp.h> /* tcpi_segs_in: newer than glibc's */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The server logs its features line right after its listener lines. */
static bool log_within(struct srv *s, const char *needle, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (!srv_log_has(s, needle) && now_ms() < deadline)
		usleep(10000);
	return srv_log_has(s, needle);
}

/* Segments the client received on fd (the SYN-ACK counts). */
static unsigned segs_in(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	return ti.tcpi_segs_in;
}

/*
 * A reply followed by a close leaves in one segment with the FIN: the
 * last send of a closing connection carries MSG_MORE, and the close that
 * follows pushes the corked bytes out with its FIN. A daytime connection
 * then costs the client two segments in (the SYN-ACK, the line with the
 * FIN) instead of three.
 */
BACKEND_TEST(wire, a_reply_and_its_close_leave_in_one_segment)
{
	const char *argv[] = { "-b", "127.0.0.1", "-s", "daytime/tcp:0", NULL };
	char buf[256];
	struct srv s;

	cr_assert_eq(srv_start(&s, backend, 1, argv), 0);
	for (int i = 0; i < 10; i++) {
		int fd = tcp_connect(AF_INET, srv_port(&s, "daytime", AF_INET));
		ssize_t n = read_to_eof(fd, buf, sizeof(buf) - 1);

		cr_assert_gt(n, 20);
		buf[n] = '\0';
		cr_assert(strstr(buf, "-UTC\r\n"), "%s", buf);
		cr_assert_eq(segs_in(fd), 2,
			     "%u segments in: the line and the FIN apart",
			     segs_in(fd));
		close(fd);
	}
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

/* The switch reaches the path: with send_more off, the FIN follows the
 * line in a segment of its own, and the features line says so. */
BACKEND_TEST(wire, send_more_off_sends_the_fin_apart)
{
	const char *argv[] = { "-b", "127.0.0.1", "-s", "daytime/tcp:0", NULL };
	char buf[256];
	struct srv s;
	int fd;

	setenv("EVRING_DISABLE", "send_more", 1);
	cr_assert_eq(srv_start(&s, backend, 1, argv), 0);
	cr_assert(log_within(&s, "-send_more", 10000), "%s", srv_log(&s));
	fd = tcp_connect(AF_INET, srv_port(&s, "daytime", AF_INET));
	cr_assert_gt(read_to_eof(fd, buf, sizeof(buf)), 20);
	cr_assert_eq(segs_in(fd), 3, "%u segments in", segs_in(fd));
	close(fd);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

/* Every optional io_uring feature can be left off, and the server serves
 * without it (the probe's own requirements aside). */
Test(wire_io_uring, every_optional_feature_can_be_left_off, .timeout = 120)
{
	const char *argv[] = { "-b", "127.0.0.1", "-s", "echo/tcp:0", NULL };
	char buf[6];
	struct srv s;
	int fd;

	skip_unless_backend_runs("io_uring");
	setenv("EVRING_DISABLE",
	       "defer_taskrun,coop_taskrun,register_ring,buf_window,"
	       "recv_bundle",
	       1);
	cr_assert_eq(srv_start(&s, "io_uring", 1, argv), 0);
	cr_assert(log_within(&s, "-register_ring", 10000) &&
		      srv_log_has(&s, "-buf_window") &&
		      srv_log_has(&s, "-recv_bundle") &&
		      srv_log_has(&s, "-defer_taskrun") &&
		      srv_log_has(&s, "-coop_taskrun"),
		  "%s", srv_log(&s));
	fd = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
	cr_assert_eq(write_all(fd, "hello", 5), 0);
	cr_assert_eq(read_exact(fd, buf, 5), 5);
	close(fd);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}
