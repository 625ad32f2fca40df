/* SPDX-License-Identifier: MIT */
/*
 * test_wire.c - what crosses the wire, counted on the client's side with
 * TCP_INFO, on both backends: the segments a short-lived connection costs.
 */
#include "harness.h"

#include <netinet/in.h>
#include <linux/tcp.h> /* tcpi_segs_in: newer than glibc's */
#include <signal.h>
#include <string.h>
#include <unistd.h>

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
