/* SPDX-License-Identifier: MIT */
/*
 * test_services.c - the small services of inetd against the real evringd,
 * on both backends, over IPv4 and IPv6: discard (RFC 863), chargen (RFC
 * 864: the pattern, checked against a generator written from the RFC, and
 * a server that writes only as fast as its client reads), time (RFC 868:
 * the value, rdate as the client, and the 2036 wrap on a clock the test
 * sets with libfaketime).
 */
#include "harness.h"

#include <errno.h>
#include <glob.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define RFC868_OFFSET 2208988800LL

static const int families[] = { AF_INET, AF_INET6 };

/* RFC 864: line n is the 72 characters from the n-th of the 95 printable
 * ones (' ' to '~'), wrapping, then CR LF. Byte at stream offset off. */
static char chargen_byte(size_t off)
{
	size_t line = off / 74, col = off % 74;

	if (col == 72)
		return '\r';
	if (col == 73)
		return '\n';
	return (char)(' ' + (line + col) % 95);
}

/* Read n bytes of chargen from fd, which has delivered *off bytes so far,
 * and check every one. */
static void chargen_check(int fd, size_t *off, size_t n)
{
	static char buf[65536];

	while (n) {
		size_t want = n < sizeof(buf) ? n : sizeof(buf);
		size_t got = read_exact(fd, buf, want);

		cr_assert_eq(got, want, "chargen stream ended at %zu", *off);
		for (size_t i = 0; i < got; i++)
			cr_assert_eq(buf[i], chargen_byte(*off + i),
				     "byte %zu: 0x%02x, expected 0x%02x",
				     *off + i, (unsigned char)buf[i],
				     (unsigned char)chargen_byte(*off + i));
		*off += got;
		n -= got;
	}
}

static void stop_idle(struct srv *s)
{
	struct srv_stats st;

	cr_assert_eq(srv_wait_idle(s, &st, 10000), 0,
		     "not idle: %llu conns, %llu bufs free of %llu, %llu "
		     "queued, %llu heap",
		     st.conns_open, st.bufs_free, st.bufs_total,
		     st.bytes_queued, st.bufs_heap);
	cr_assert_eq(srv_stop(s, SIGTERM, 10000), 0, "%s", srv_log(s));
}

/* ---- discard ---- */

BACKEND_TEST(discard, tcp_reads_everything_and_answers_nothing)
{
	static const char *const svc[] = { "discard", NULL };
	static char data[256 * 1024];
	struct timeval tv = { .tv_usec = 200 * 1000 };
	struct srv s;
	char c;

	fill_pattern(data, sizeof(data), 863);
	cr_assert_eq(srv_start_services(&s, backend, svc), 0);
	for (int f = 0; f < 2; f++) {
		int fd = tcp_connect(families[f],
				     srv_port(&s, "discard", families[f]));

		cr_assert_geq(fd, 0);
		cr_assert_eq(write_all(fd, data, sizeof(data)), 0);
		/* nothing comes back, and the connection stays open */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		cr_assert_eq(recv(fd, &c, 1, 0), -1, "discard answered");
		cr_assert_eq(write_all(fd, data, 1000), 0);
		/* our end of file: the server closes */
		shutdown(fd, SHUT_WR);
		cr_assert_eq(wait_closed(fd, 5000), 1);
		close(fd);
	}
	stop_idle(&s);
}

BACKEND_TEST(discard, udp_datagrams_get_no_reply)
{
	static const char *const svc[] = { "discard/udp", NULL };
	struct timeval tv = { .tv_usec = 300 * 1000 };
	struct srv_stats st;
	struct srv s;
	char c;

	cr_assert_eq(srv_start_services(&s, backend, svc), 0);
	for (int f = 0; f < 2; f++) {
		struct sockaddr_storage ss;
		socklen_t len = loopback_addr(
		    families[f], srv_uport(&s, "discard", families[f]), &ss);
		int fd = socket(families[f], SOCK_DGRAM | SOCK_CLOEXEC, 0);

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		cr_assert_eq(connect(fd, (struct sockaddr *)&ss, len), 0);
		for (int i = 0; i < 5; i++)
			cr_assert_eq(send(fd, "discard me", 10, 0), 10);
		cr_assert_eq(recv(fd, &c, 1, 0), -1, "discard answered");
		close(fd);
	}
	cr_assert_eq(srv_stats(&s, &st), 0);
	cr_assert_eq(st.udp_rx, 10);
	cr_assert_eq(st.udp_tx, 0);
	stop_idle(&s);
}

/* ---- chargen ---- */

BACKEND_TEST(chargen, tcp_pattern_is_rfc864_over_several_periods)
{
	static const char *const svc[] = { "chargen", NULL };
	struct srv s;

	cr_assert_eq(srv_start_services(&s, backend, svc), 0);
	for (int f = 0; f < 2; f++) {
		int fd = tcp_connect(families[f],
				     srv_port(&s, "chargen", families[f]));
		size_t off = 0;

		cr_assert_geq(fd, 0);
		/* 95 lines of 74 bytes make one period: read 150 of them */
		chargen_check(fd, &off, 150 * 95 * 74 + 1234);
		close(fd);
	}
	stop_idle(&s);
}

/*
 * A client that does not read: the server must not queue more than a
 * bounded amount for it (the bytes wait in the kernel's socket buffers,
 * where TCP flow control holds them), and the stream must go on intact
 * when the client reads again.
 */
BACKEND_TEST(chargen, tcp_writes_only_as_fast_as_the_client_reads)
{
	static const char *const svc[] = { "chargen", NULL };
	enum { NCLIENTS = 8, BOUND = 64 * 1024 };
	int fds[NCLIENTS], small = 4096;
	size_t off[NCLIENTS] = { 0 };
	struct srv_stats st;
	struct srv s;

	cr_assert_eq(srv_start_services(&s, backend, svc), 0);
	for (int i = 0; i < NCLIENTS; i++) {
		struct sockaddr_storage ss;
		socklen_t len = loopback_addr(
		    AF_INET, srv_port(&s, "chargen", AF_INET), &ss);
		struct timeval tv = { .tv_sec = 10 };

		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &small,
			   sizeof(small));
		setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		cr_assert_eq(connect(fds[i], (struct sockaddr *)&ss, len), 0);
		chargen_check(fds[i], &off[i], 100);
	}
	/* Nobody reads for a while: whatever the timing, the queues hold
	 * no more than the bound at any moment. */
	for (int k = 0; k < 10; k++) {
		cr_assert_eq(srv_stats(&s, &st), 0);
		cr_assert_eq(st.conns_open, NCLIENTS);
		cr_assert_leq(st.bytes_queued,
			      (unsigned long long)NCLIENTS * BOUND,
			      "%llu bytes queued for %d clients that do not "
			      "read",
			      st.bytes_queued, NCLIENTS);
		usleep(50 * 1000);
	}
	cr_assert_eq(st.wq_overflows, 0);
	for (int i = 0; i < NCLIENTS; i++) {
		chargen_check(fds[i], &off[i], 512 * 1024);
		close(fds[i]);
	}
	stop_idle(&s);
}

BACKEND_TEST(chargen, tcp_client_eof_does_not_stop_the_stream)
{
	static const char *const svc[] = { "chargen", NULL };
	struct srv s;
	size_t off = 0;
	int fd;

	cr_assert_eq(srv_start_services(&s, backend, svc), 0);
	fd = tcp_connect(AF_INET6, srv_port(&s, "chargen", AF_INET6));
	cr_assert_geq(fd, 0);
	cr_assert_eq(write_all(fd, "ignored\r\n", 9), 0);
	shutdown(fd, SHUT_WR);
	chargen_check(fd, &off, 300 * 1024);
	close(fd);
	stop_idle(&s);
}

BACKEND_TEST(chargen, tcp_drain_ends_the_stream_and_the_server_exits)
{
	static const char *const svc[] = { "chargen", NULL };
	char buf[65536];
	struct srv s;
	size_t off = 0;
	ssize_t n;
	int fd;

	cr_assert_eq(srv_start_services(&s, backend, svc), 0);
	fd = tcp_connect(AF_INET, srv_port(&s, "chargen", AF_INET));
	cr_assert_geq(fd, 0);
	chargen_check(fd, &off, 10000);
	kill(s.pid, SIGTERM);
	/* what was queued arrives, then the end of file */
	n = read_to_eof(fd, buf, sizeof(buf));
	cr_assert_geq(n, 0);
	close(fd);
	/* it exits by itself (signal 0: none sent) */
	cr_assert_eq(srv_stop(&s, 0, 10000), 0, "%s", srv_log(&s));
	cr_assert(srv_log_has(&s, "draining"));
}

/* ---- time ---- */

static uint32_t time_tcp(int family, uint16_t port)
{
	unsigned char b[8];
	int fd = tcp_connect(family, port);
	ssize_t n;

	cr_assert_geq(fd, 0);
	n = read_to_eof(fd, b, sizeof(b));
	close(fd);
	cr_assert_eq(n, 4, "time sent %zd bytes", n);
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	       (uint32_t)b[2] << 8 | b[3];
}

static uint32_t rfc868_now(void)
{
	return (uint32_t)((int64_t)time(NULL) + RFC868_OFFSET);
}

BACKEND_TEST(time, tcp_sends_four_bytes_of_seconds_since_1900)
{
	static const char *const svc[] = { "time", NULL };
	struct srv s;

	cr_assert_eq(srv_start_services(&s, backend, svc), 0);
	for (int f = 0; f < 2; f++) {
		uint32_t v =
		    time_tcp(families[f], srv_port(&s, "time", families[f]));
		int32_t d = (int32_t)(v - rfc868_now());

		cr_assert_leq(abs(d), 5, "time off by %d s", d);
	}
	stop_idle(&s);
}

BACKEND_TEST(time, rdate_reads_it_over_tcp)
{
	static const char *const svc[] = { "time", NULL };
	char port[16], out[512];
	struct srv s;
	struct tm tm;
	time_t t;

	cr_assert_eq(srv_start_services(&s, backend, svc), 0);
	snprintf(port, sizeof(port), "%u", srv_port(&s, "time", AF_INET));
	const char *argv[] = { "rdate", "-p", "-o", port, "127.0.0.1", NULL };
	cr_assert_eq(run_capture(argv, out, sizeof(out), 10000), 0, "%s", out);
	/* "Sun Dec  6 15:39:02 UTC 2026" */
	memset(&tm, 0, sizeof(tm));
	cr_assert_not_null(strptime(out, "%a %b %d %H:%M:%S UTC %Y", &tm),
			   "rdate printed \"%s\"", out);
	t = timegm(&tm);
	cr_assert_leq(labs((long)(t - time(NULL))), 5, "rdate: \"%s\"", out);
	stop_idle(&s);
}

/* libfaketime's preload library, wherever the architecture put it. */
static const char *faketime_lib(void)
{
	static char path[256];
	glob_t g;

	if (glob("/usr/lib/*/faketime/libfaketime.so.1", 0, NULL, &g) != 0)
		cr_assert_fail("libfaketime is not installed (make deps)");
	snprintf(path, sizeof(path), "%s", g.gl_pathv[0]);
	globfree(&g);
	return path;
}

/* evringd serving time on a clock stopped at `at` (UTC). */
static void start_at(struct srv *s, const char *backend, const char *at)
{
	char preload[300], faketime[64], be[32];
	const char *argv[] = { "env", preload, faketime,
			       /* ASan wants to be the first library: with
				  libfaketime preloaded it is not */
			       "ASAN_OPTIONS=verify_asan_link_order=0",
			       "TZ=UTC", "DONT_FAKE_MONOTONIC=1",
			       evringd_path(), be, "-b", "127.0.0.1", "-s",
			       "time/tcp:0", NULL };

	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", faketime_lib());
	/* without '@' the clock stands still at that moment */
	snprintf(faketime, sizeof(faketime), "FAKETIME=%s", at);
	snprintf(be, sizeof(be), "--backend=%s", backend);
	cr_assert_eq(srv_spawn(s, 1, argv), 0);
}

/*
 * 2036-02-07 06:28:16 UTC is 2^32 seconds after 1900-01-01: the 32-bit
 * count wraps to 0 there and goes on from 0.
 */
BACKEND_TEST(time, wraps_to_zero_on_2036_02_07_at_06_28_16)
{
	static const struct {
		const char *at;
		uint32_t want;
	} cases[] = {
		{ "2036-02-07 06:28:14", 0xfffffffe },
		{ "2036-02-07 06:28:15", 0xffffffff },
		{ "2036-02-07 06:28:16", 0 },
		{ "2036-02-07 06:28:17", 1 },
		{ "2036-02-08 06:28:16", 86400 },
		{ "1970-01-01 00:00:00", 2208988800u },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct srv s;
		uint32_t v;

		start_at(&s, backend, cases[i].at);
		v = time_tcp(AF_INET, srv_port(&s, "time", AF_INET));
		cr_assert_eq(v, cases[i].want, "at %s: %u, expected %u",
			     cases[i].at, v, cases[i].want);
		cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s",
			     srv_log(&s));
	}
}

/* ---- over UDP ---- */

/* A datagram of n bytes to service's UDP port on family; the reply, or
 * -1 when none came within 2 s. */
static ssize_t udp_ask(const struct srv *s, const char *service, int family,
		       size_t n, char *reply, size_t cap)
{
	struct timeval tv = { .tv_sec = 2 };
	struct sockaddr_storage ss;
	socklen_t len =
	    loopback_addr(family, srv_uport(s, service, family), &ss);
	char req[2048];
	ssize_t r;
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_leq(n, sizeof(req));
	memset(req, 'x', n);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *)&ss, len), 0);
	cr_assert_eq(send(fd, req, n, 0), (ssize_t)n);
	do /* a signal to the test process is not the end of the wait */
		r = recv(fd, reply, cap, 0);
	while (r < 0 && errno == EINTR);
	close(fd);
	return r;
}

/* The default cap: 3 times the request's bytes on the wire (evring.h). */
static size_t reply_cap(int family, size_t req)
{
	size_t hdr = family == AF_INET ? 28 : 48;

	return (req + hdr) * 3 - hdr;
}

BACKEND_TEST(time, udp_answers_the_empty_datagram_with_four_bytes)
{
	static const char *const svc[] = { "time/udp", NULL };
	unsigned char b[16];
	struct srv s;

	cr_assert_eq(srv_start_services(&s, backend, svc), 0);
	for (int f = 0; f < 2; f++) {
		ssize_t n =
		    udp_ask(&s, "time", families[f], 0, (char *)b, sizeof(b));
		uint32_t v;

		cr_assert_eq(n, 4, "time over UDP sent %zd bytes", n);
		v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
		    (uint32_t)b[2] << 8 | b[3];
		cr_assert_leq(abs((int32_t)(v - rfc868_now())), 5);
	}
	stop_idle(&s);
}

BACKEND_TEST(time, rdate_reads_it_over_udp)
{
	static const char *const svc[] = { "time/udp", NULL };
	char port[16], out[512];
	struct srv s;
	struct tm tm;

	cr_assert_eq(srv_start_services(&s, backend, svc), 0);
	snprintf(port, sizeof(port), "%u", srv_uport(&s, "time", AF_INET));
	const char *argv[] = { "rdate", "-p",	     "-u", "-o",
			       port,	"127.0.0.1", NULL };
	cr_assert_eq(run_capture(argv, out, sizeof(out), 10000), 0, "%s", out);
	memset(&tm, 0, sizeof(tm));
	cr_assert_not_null(strptime(out, "%a %b %d %H:%M:%S UTC %Y", &tm),
			   "rdate printed \"%s\"", out);
	cr_assert_leq(labs((long)(timegm(&tm) - time(NULL))), 5, "rdate: %s",
		      out);
	stop_idle(&s);
}

/*
 * RFC 864 over UDP: one datagram of 0 to 512 characters of the pattern.
 * Its length is the most the amplification guard lets through: the reply
 * is never cut by the core, nor dropped.
 */
BACKEND_TEST(chargen, udp_reply_is_the_pattern_within_the_cap)
{
	static const char *const svc[] = { "chargen/udp", NULL };
	static const size_t reqs[] = { 0, 1, 10, 100, 170, 171, 600 };
	struct srv_stats st;
	struct srv s;
	char b[2048];

	cr_assert_eq(srv_start_services(&s, backend, svc), 0);
	for (int f = 0; f < 2; f++) {
		for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
			size_t want = reply_cap(families[f], reqs[i]);
			ssize_t n = udp_ask(&s, "chargen", families[f], reqs[i],
					    b, sizeof(b));
			size_t line;

			if (want > 512)
				want = 512;
			cr_assert_eq(n, (ssize_t)want,
				     "request of %zu: %zd characters, "
				     "expected %zu",
				     reqs[i], n, want);
			/* the pattern from the start of some line */
			line = (size_t)(b[0] - ' ');
			for (ssize_t k = 0; k < n; k++)
				cr_assert_eq(
				    b[k], chargen_byte(line * 74 + (size_t)k),
				    "byte %zd", k);
		}
	}
	cr_assert_eq(srv_stats(&s, &st), 0);
	cr_assert_eq(st.udp_capped, 0);
	stop_idle(&s);
}

BACKEND_TEST(chargen, udp_amplification_option_holds_the_reply)
{
	const char *argv[] = {
		"-b", "127.0.0.1", "-s", "chargen/udp:0", "--udp-amplification",
		"1",  NULL
	};
	char b[2048];
	struct srv s;

	cr_assert_eq(srv_start(&s, backend, 1, argv), 0);
	/* at 1x the reply is no longer than the request */
	cr_assert_eq(udp_ask(&s, "chargen", AF_INET, 40, b, sizeof(b)), 40);
	cr_assert_eq(udp_ask(&s, "chargen", AF_INET, 0, b, sizeof(b)), 0);
	stop_idle(&s);
}
