/* SPDX-License-Identifier: MIT */
/*
 * test_proxy.c - the PROXY protocol on evringd's listeners
 * (-o NAME.proxy=v1|v2), with a raw client that writes the headers itself.
 *
 * The client's address a header names is what the connection log and the
 * per-source limit see; bytes after the header in the same write are
 * data; v2 LOCAL (health checks) and v1 UNKNOWN use the connection's own
 * address; anything else, or nothing within the deadline, closes the
 * connection. The parser's edge cases are the fuzz target's
 * (tests/fuzz/fuzz_proxy.c); haproxy in front of evringd is
 * test_haproxy.c.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const uint8_t v2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

/* A v2 header for TCP over IPv4 (src:sport -> 10.0.0.1:7) with tlv bytes
 * of TLVs after the addresses; LOCAL when local. Returns its length. */
static size_t v2_ipv4(uint8_t *out, const char *src, uint16_t sport, size_t tlv,
		      bool local)
{
	size_t len = 12 + tlv;

	memcpy(out, v2_sig, 12);
	out[12] = local ? 0x20 : 0x21;
	out[13] = 0x11;
	out[14] = (uint8_t)(len >> 8);
	out[15] = (uint8_t)len;
	inet_pton(AF_INET, src, out + 16);
	inet_pton(AF_INET, "10.0.0.1", out + 20);
	out[24] = (uint8_t)(sport >> 8);
	out[25] = (uint8_t)sport;
	out[26] = 0;
	out[27] = 7;
	/* one TLV of type 0x04 (NOOP) filling the rest */
	if (tlv >= 3) {
		out[28] = 0x04;
		out[29] = (uint8_t)((tlv - 3) >> 8);
		out[30] = (uint8_t)(tlv - 3);
		memset(out + 31, 'x', tlv - 3);
	}
	return 16 + len;
}

static size_t v2_ipv6(uint8_t *out, const char *src, uint16_t sport)
{
	memcpy(out, v2_sig, 12);
	out[12] = 0x21;
	out[13] = 0x21;
	out[14] = 0;
	out[15] = 36;
	inet_pton(AF_INET6, src, out + 16);
	inet_pton(AF_INET6, "::1", out + 32);
	out[48] = (uint8_t)(sport >> 8);
	out[49] = (uint8_t)sport;
	out[50] = 0;
	out[51] = 7;
	return 52;
}

static void start(struct srv *s, const char *backend, const char *version,
		  const char *const *extra)
{
	static char opt[32];
	const char *args[24] = { "-b", "127.0.0.1", "-s",	  "echo/tcp:0",
				 "-o", opt,	    "--log-conns" };
	int n = 7;

	snprintf(opt, sizeof(opt), "echo.proxy=%s", version);
	for (; extra && *extra && n < 23; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	cr_assert_eq(srv_start(s, backend, 1, args), 0);
}

static int connect_echo(struct srv *s)
{
	int fd = tcp_connect(AF_INET, srv_port(s, "echo", AF_INET));
	int one = 1;

	cr_assert_geq(fd, 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	getsockname(fd, (struct sockaddr *)&sin, &len);
	return ntohs(sin.sin_port);
}

static void wait_log(struct srv *s, const char *needle)
{
	int64_t deadline = now_ms() + 10000;

	while (!srv_log_has(s, needle) && now_ms() < deadline)
		usleep(5000);
	cr_assert(srv_log_has(s, needle), "no \"%s\" in:\n%s", needle,
		  srv_log(s));
}

/* header and data in one write: the data comes back, and the log names
 * the client of the header */
static void header_then_echo(struct srv *s, const void *hdr, size_t hlen,
			     const char *peer)
{
	uint8_t buf[2048];
	char want[128];
	int fd = connect_echo(s);

	cr_assert_leq(hlen + 5, sizeof(buf));
	memcpy(buf, hdr, hlen);
	memcpy(buf + hlen, "hello", 5);
	cr_assert_eq(xfer(fd, buf, hlen + 5, buf, 5, true, 10000), 0,
		     "no echo; log:\n%s", srv_log(s));
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	close(fd);
	snprintf(want, sizeof(want), "conn echo peer=%s duration=", peer);
	wait_log(s, want);
	cr_assert(strstr(strstr(srv_log(s), want), " in=5 out=5 "), "%s",
		  srv_log(s));
}

BACKEND_TEST(proxy, v1_names_the_client_and_data_follows)
{
	static const char h4[] = "PROXY TCP4 192.0.2.7 127.0.0.1 4444 7\r\n";
	static const char h6[] = "PROXY TCP6 2001:db8::7 ::1 4446 7\r\n";
	struct srv s;

	start(&s, backend, "v1", NULL);
	header_then_echo(&s, h4, sizeof(h4) - 1, "192.0.2.7:4444");
	header_then_echo(&s, h6, sizeof(h6) - 1, "[2001:db8::7]:4446");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

BACKEND_TEST(proxy, v2_names_the_client_tlvs_are_skipped)
{
	uint8_t h[1024];
	struct srv s;

	start(&s, backend, "v2", NULL);
	header_then_echo(&s, h, v2_ipv4(h, "192.0.2.7", 4444, 0, false),
			 "192.0.2.7:4444");
	/* TLVs longer than what is kept of a header */
	header_then_echo(&s, h, v2_ipv4(h, "192.0.2.8", 4445, 700, false),
			 "192.0.2.8:4445");
	header_then_echo(&s, h, v2_ipv6(h, "2001:db8::7", 4446),
			 "[2001:db8::7]:4446");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

/* LOCAL (haproxy's health checks) and UNKNOWN: the connection's own peer */
BACKEND_TEST(proxy, v2_local_and_v1_unknown_use_the_connection)
{
	static const char unknown[] = "PROXY UNKNOWN\r\n";
	uint8_t h[64], buf[8];
	char want[64];
	struct srv s, s1;
	int fd;

	start(&s, backend, "v2", NULL);
	fd = connect_echo(&s);
	memcpy(buf, "x", 1);
	{
		size_t n = v2_ipv4(h, "192.0.2.9", 9999, 0, true);

		memcpy(h + n, "hello", 5);
		cr_assert_eq(xfer(fd, h, n + 5, buf, 5, true, 10000), 0);
	}
	snprintf(want, sizeof(want), "conn echo peer=127.0.0.1:%u ",
		 local_port(fd));
	close(fd);
	wait_log(&s, want);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);

	start(&s1, backend, "v1", NULL);
	fd = connect_echo(&s1);
	memcpy(h, unknown, sizeof(unknown) - 1);
	memcpy(h + sizeof(unknown) - 1, "hello", 5);
	cr_assert_eq(xfer(fd, h, sizeof(unknown) - 1 + 5, buf, 5, true, 10000),
		     0);
	snprintf(want, sizeof(want), "conn echo peer=127.0.0.1:%u ",
		 local_port(fd));
	close(fd);
	wait_log(&s1, want);
	cr_assert_eq(srv_stop(&s1, SIGTERM, 10000), 0);
}

/* The header one byte per write: nothing is lost, nothing is early. */
BACKEND_TEST(proxy, header_across_many_reads)
{
	uint8_t h[1024], buf[8];
	size_t n;
	struct srv s;
	int fd;

	start(&s, backend, "v2", NULL);
	n = v2_ipv4(h, "192.0.2.10", 5000, 40, false);
	fd = connect_echo(&s);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(write_all(fd, h + i, 1), 0);
		usleep(i % 8 ? 0 : 1000);
	}
	cr_assert_eq(xfer(fd, "hello", 5, buf, 5, true, 10000), 0);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	close(fd);
	wait_log(&s, "conn echo peer=192.0.2.10:5000 ");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

/* No header, a wrong one, the other version: closed, nothing echoed,
 * counted and logged. The spec forbids guessing. */
BACKEND_TEST(proxy, anything_but_a_valid_header_is_refused)
{
	static const char *const sends[] = {
		"hello\r\n",
		"PROXY TCP4 192.0.2.7 127.0.0.1 4444 7\r\nhello",
		"PROXY TCP4 192.0.2.07 127.0.0.1 4444 7\r\n",
	};
	uint8_t v2[64];
	struct srv s, s1;
	struct srv_stats st;
	char buf[64];
	int fd;

	start(&s, backend, "v2", NULL);
	for (size_t i = 0; i < 2; i++) {
		fd = connect_echo(&s);
		write_all(fd, sends[i], strlen(sends[i]));
		cr_assert_eq(read_to_eof(fd, buf, sizeof(buf)), 0,
			     "%s: answered", sends[i]);
		close(fd);
	}
	cr_assert_eq(srv_stats(&s, &st), 0);
	cr_assert_eq(st.proxy_refused, 2);
	wait_log(&s, "not a valid PROXY header (PROXY protocol v2 expected)");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);

	start(&s1, backend, "v1", NULL);
	fd = connect_echo(&s1);
	write_all(fd, v2, v2_ipv4(v2, "192.0.2.7", 1, 0, false));
	cr_assert_eq(read_to_eof(fd, buf, sizeof(buf)), 0);
	close(fd);
	fd = connect_echo(&s1);
	write_all(fd, sends[2], strlen(sends[2]));
	cr_assert_eq(read_to_eof(fd, buf, sizeof(buf)), 0, "leading zero");
	close(fd);
	cr_assert_eq(srv_stats(&s1, &st), 0);
	cr_assert_eq(st.proxy_refused, 2);
	cr_assert_eq(srv_stop(&s1, SIGTERM, 10000), 0);
}

/* No header within proxy_timeout: closed; a client that connects and
 * closes without a byte (a plain health check) is closed without a word. */
BACKEND_TEST(proxy, header_deadline)
{
	static const char *const extra[] = { "-o", "echo.proxy_timeout=300ms",
					     NULL };
	struct srv s;
	struct srv_stats st;
	char buf[8];
	int64_t t0;
	int fd;

	start(&s, backend, "v1", extra);
	fd = connect_echo(&s);
	write_all(fd, "PROXY TCP4 192.0", 16);
	t0 = now_ms();
	cr_assert_eq(read_to_eof(fd, buf, sizeof(buf)), 0);
	cr_assert_geq(now_ms() - t0, 250, "closed before the deadline");
	close(fd);
	wait_log(&s, "no complete header in time");

	fd = connect_echo(&s);
	close(fd);
	cr_assert_eq(srv_wait_idle(&s, &st, 10000), 0);
	cr_assert_eq(st.proxy_refused, 1, "the silent close was counted");
	cr_assert_eq(count_substr(srv_log(&s), "proxy (echo)"), 1, "%s",
		     srv_log(&s));
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

/* The per-source limit counts the client a header names, not the load
 * balancer every connection comes from. */
/* One loop: the sources gauge counts a source once per loop it has
 * connections on (the limit itself holds across loops: test_group.c). */
BACKEND_TEST(proxy, per_source_limit_counts_the_real_client)
{
	static const char *const extra[] = { "--max-conns-per-source", "2",
					     "--threads", "1", NULL };
	static const char *const clients[] = { "192.0.2.1", "192.0.2.1",
					       "192.0.2.2", "192.0.2.2",
					       "192.0.2.3" };
	uint8_t h[64], buf[8];
	struct srv s;
	struct srv_stats st;
	int fds[5], extra_fd;

	start(&s, backend, "v2", extra);
	/* five connections from 127.0.0.1, two per client at most: all
	 * served */
	for (int i = 0; i < 5; i++) {
		size_t n =
		    v2_ipv4(h, clients[i], (uint16_t)(1000 + i), 0, false);

		fds[i] = connect_echo(&s);
		memcpy(h + n, "ping", 4);
		cr_assert_eq(xfer(fds[i], h, n + 4, buf, 4, false, 10000), 0,
			     "client %d (%s) not served", i, clients[i]);
	}
	/* a third from 192.0.2.1: refused */
	extra_fd = connect_echo(&s);
	{
		size_t n = v2_ipv4(h, "192.0.2.1", 2000, 0, false);

		memcpy(h + n, "ping", 4);
		write_all(extra_fd, h, n + 4);
	}
	cr_assert_eq(read_to_eof(extra_fd, buf, sizeof(buf)), 0,
		     "the third connection of 192.0.2.1 was served");
	close(extra_fd);
	wait_log(&s, "per-source limit of 2");
	cr_assert_eq(srv_stats(&s, &st), 0);
	cr_assert_eq(st.conns_refused, 1);
	cr_assert_eq(st.sources, 3, "sources: %llu", st.sources);
	for (int i = 0; i < 5; i++)
		close(fds[i]);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

Test(proxy_cli, bad_proxy_options_are_usage_errors)
{
	static const char *const cases[][3] = {
		{ "echo/tcp:0", "echo.proxy=v3", "expected v1, v2 or off" },
		{ "echo/udp:0", "echo.proxy=v2", "not served over TCP" },
		{ "echo/tcp:0", "echo.proxy_timeout=soon",
		  "expected a duration" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[] = { "-b", "127.0.0.1", "-s", cases[i][0],
				       "-o", cases[i][1], NULL };

		assert_usage_error(args, cases[i][2]);
	}
}

/* The same keys in the configuration file, on a "#@" line. */
BACKEND_TEST(proxy, configured_in_the_file)
{
	char path[] = "/tmp/evring-proxy-conf-XXXXXX";
	static const char conf[] = "127.0.0.1:\n"
				   "#@ proxy=v1 proxy_timeout=2s log_conns=on\n"
				   "0\tstream\ttcp\tnowait\troot\techo\n";
	static const char h[] = "PROXY TCP4 192.0.2.77 127.0.0.1 4477 7\r\n";
	const char *args[] = { "-f", path, NULL };
	struct srv s;
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, conf, sizeof(conf) - 1),
		     (ssize_t)sizeof(conf) - 1);
	close(fd);
	cr_assert_eq(srv_start(&s, backend, 1, args), 0);
	unlink(path);
	header_then_echo(&s, h, sizeof(h) - 1, "192.0.2.77:4477");
	fd = connect_echo(&s);
	{
		char buf[8];

		write_all(fd, "hello\r\n", 7);
		cr_assert_eq(read_to_eof(fd, buf, sizeof(buf)), 0,
			     "served without a header");
	}
	close(fd);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

/* The directory trusts loopback clients with persistent entries: behind a
 * PROXY header it is the client the header names that must be on
 * loopback, not the balancer the connection comes from. */
BACKEND_TEST(proxy, the_directory_trusts_the_client_of_the_header)
{
	static const char *const args[] = { "-b", "127.0.0.1",
					    "-s", "directory/tcp:0",
					    "-o", "directory.proxy=v1",
					    NULL };
	static const struct {
		const char *hdr;
		const char *says;
	} cases[] = {
		{ "PROXY TCP4 192.0.2.7 127.0.0.1 4444 7\r\n",
		  "need a loopback client" },
		{ "PROXY TCP4 127.0.0.5 127.0.0.1 4444 7\r\n",
		  "OK registered web 8080/tcp persistent" },
	};
	struct srv s;

	cr_assert_eq(srv_start(&s, backend, 1, args), 0);
	for (size_t i = 0; i < 2; i++) {
		char req[128], buf[512];
		int fd =
		    tcp_connect(AF_INET, srv_port(&s, "directory", AF_INET));
		ssize_t n;

		cr_assert_geq(fd, 0);
		snprintf(req, sizeof(req),
			 "%sREGISTER web 8080 tcp\r\nQUIT\r\n", cases[i].hdr);
		cr_assert_eq(write_all(fd, req, strlen(req)), 0);
		n = read_to_eof(fd, buf, sizeof(buf) - 1);
		cr_assert_gt(n, 0);
		buf[n] = '\0';
		cr_assert(strstr(buf, cases[i].says), "%s: %s", cases[i].hdr,
			  buf);
		close(fd);
	}
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}
