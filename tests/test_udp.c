/* SPDX-License-Identifier: MIT */
/*
 * test_udp.c - echo and daytime over UDP against evringd, on both
 * backends, and the guard that keeps them from being attack tools: source
 * ports of reflectors and of ourselves, spoofed special sources, the
 * per-source token bucket with flat memory, datagrams larger than a
 * buffer. The amplification cap and hostile sources: test_udp_guard.c.
 *
 * Spoofed sources (a datagram "from" another evringd, or from a multicast
 * address) are sent through a raw socket, and a reflector's port (7) is a
 * privileged one: those tests are skipped, with the reason, where the
 * kernel refuses the raw socket or the bind (not root, no CAP_NET_RAW or
 * CAP_NET_BIND_SERVICE).
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

/* A UDP socket with a 500 ms receive timeout, bound to bind_addr (numeric
 * IPv4) and bind_port if bind_addr is set; -errno if the bind fails. */
static int udp_socket_try(int family, const char *bind_addr, uint16_t bind_port)
{
	struct timeval tv = { .tv_usec = 500 * 1000 };
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind_addr) {
		struct sockaddr_in in = { .sin_family = AF_INET,
					  .sin_port = htons(bind_port) };

		inet_pton(AF_INET, bind_addr, &in.sin_addr);
		if (bind(fd, (struct sockaddr *)&in, sizeof(in)) < 0) {
			int err = errno;

			close(fd);
			return -err;
		}
	}
	return fd;
}

static int udp_socket(int family, const char *bind_addr, uint16_t bind_port)
{
	int fd = udp_socket_try(family, bind_addr, bind_port);

	cr_assert_geq(fd, 0, "bind %s:%u: %s", bind_addr, bind_port,
		      strerror(-fd));
	return fd;
}

/* A socket on a port below 1024, or a skip where the kernel refuses it to
 * this user. */
static int privileged_udp_socket(const char *bind_addr, uint16_t bind_port)
{
	int fd = udp_socket_try(AF_INET, bind_addr, bind_port);

	if (fd == -EACCES || fd == -EPERM)
		cr_skip_test("binding a port below 1024 needs root or "
			     "CAP_NET_BIND_SERVICE: bind %s:%u: %s",
			     bind_addr, bind_port, strerror(-fd));
	cr_assert_geq(fd, 0, "bind %s:%u: %s", bind_addr, bind_port,
		      strerror(-fd));
	return fd;
}

static void udp_to(int fd, int family, uint16_t port, const void *p, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t len;

	len = loopback_addr(family, port, &ss);
	cr_assert_eq(sendto(fd, p, n, 0, (struct sockaddr *)&ss, len),
		     (ssize_t)n);
}

static const char *const udp_services[] = { "echo/udp", "daytime/udp", NULL };

static void start_udp(struct srv *s, const char *backend,
		      const char *const *extra)
{
	const char *argv[32] = { "-b", "127.0.0.1",  "-b", "::1",
				 "-s", "echo/udp:0", "-s", "daytime/udp:0" };
	int n = 8;

	(void)udp_services;
	for (; extra && *extra; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	cr_assert_eq(srv_start(s, backend, 4, argv), 0);
}

static void stop(struct srv *s)
{
	struct srv_stats st;

	cr_assert_eq(srv_wait_idle(s, &st, 5000), 0,
		     "UDP buffers not back: %llu/%llu", st.udp_bufs_free,
		     st.udp_bufs_total);
	cr_assert_eq(srv_stop(s, SIGTERM, 10000), 0, "%s", srv_log(s));
}

BACKEND_TEST(udp, nc_round_trips_echo_and_daytime)
{
	char cmd[256], out[512];
	struct srv s;

	start_udp(&s, backend, NULL);
	snprintf(cmd, sizeof(cmd),
		 "printf 'hello over udp\\n' | nc -u -w1 127.0.0.1 %u",
		 srv_uport(&s, "echo", AF_INET));
	const char *sh1[] = { "/bin/sh", "-c", cmd, NULL };
	cr_assert_eq(run_capture(sh1, out, sizeof(out), 10000), 0);
	cr_assert_str_eq(out, "hello over udp\n");
	/* what `echo | nc -u host 13` sends: a 1-byte request gets the
	 * whole line (the amplification cap counts bytes on the wire) */
	snprintf(cmd, sizeof(cmd), "echo | nc -u -w1 127.0.0.1 %u",
		 srv_uport(&s, "daytime", AF_INET));
	const char *sh2[] = { "/bin/sh", "-c", cmd, NULL };
	cr_assert_eq(run_capture(sh2, out, sizeof(out), 10000), 0);
	cr_assert(strstr(out, "-UTC\r\n"), "daytime said \"%s\"", out);
	stop(&s);
}

BACKEND_TEST(udp, echo_1_byte_and_65507_bytes_ipv4_and_ipv6)
{
	static char out[65507], in[65536];
	static const int families[] = { AF_INET, AF_INET6 };
	static const size_t sizes[] = { 1, 1400, 65507 };
	struct srv s;

	start_udp(&s, backend, NULL);
	for (int f = 0; f < 2; f++) {
		int fd = udp_socket(families[f], NULL, 0);

		for (size_t i = 0; i < 3; i++) {
			fill_pattern(out, sizes[i], (uint32_t)(i + 10 * f));
			udp_to(fd, families[f],
			       srv_uport(&s, "echo", families[f]), out,
			       sizes[i]);
			ssize_t n = recv_retry(fd, in, sizeof(in), 0);
			cr_assert_eq(n, (ssize_t)sizes[i],
				     "family %d size %zu: got %zd", families[f],
				     sizes[i], n);
			cr_assert_eq(memcmp(in, out, sizes[i]), 0);
		}
		close(fd);
	}
	stop(&s);
}

BACKEND_TEST(udp, reflector_source_port_gets_no_reply)
{
	/* One address per backend: the two variants may run at once, and
	 * only one socket can hold port 7 of an address. */
	const char *src = strcmp(backend, "epoll") ? "127.0.0.2" : "127.0.0.3";
	struct srv_stats st;
	char buf[64], says[96];
	struct srv s;
	/* port 7 is echo's: a reflector; answering it could start a loop */
	int fd = privileged_udp_socket(src, 7);

	start_udp(&s, backend, NULL);
	udp_to(fd, AF_INET, srv_uport(&s, "echo", AF_INET), "ping", 4);
	cr_assert_lt(recv_retry(fd, buf, sizeof(buf), 0), 0,
		     "a reflector got a "
		     "reply");
	close(fd);
	cr_assert_eq(srv_stats(&s, &st), 0);
	cr_assert_eq(st.udp_drop_port, 1);
	cr_assert_eq(st.udp_tx, 0);
	snprintf(says, sizeof(says),
		 "%s:7: source port 0 or of a service that answers UDP", src);
	cr_assert(srv_log_has(&s, says), "%s", srv_log(&s));
	/* an ordinary port from the same address is answered */
	fd = udp_socket(AF_INET, src, 0);
	udp_to(fd, AF_INET, srv_uport(&s, "echo", AF_INET), "ping", 4);
	cr_assert_eq(recv_retry(fd, buf, sizeof(buf), 0), 4);
	close(fd);
	stop(&s);
}

/* Forging a source needs a raw socket: skip where the kernel refuses
 * one to this user. */
static void skip_without_raw_sockets(void)
{
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	int err = errno;

	if (fd >= 0) {
		close(fd);
		return;
	}
	if (err == EPERM || err == EACCES)
		cr_skip_test("forging a source address needs a raw socket "
			     "(root or CAP_NET_RAW): socket(AF_INET, "
			     "SOCK_RAW): %s",
			     strerror(err));
	cr_assert_fail("socket(AF_INET, SOCK_RAW): %s", strerror(err));
}

/* A UDP datagram with a forged source, through a raw socket. */
static int spoof(const char *src, uint16_t sport, const char *dst,
		 uint16_t dport, const char *payload)
{
	char pkt[256];
	struct iphdr *ip = (void *)pkt;
	struct udphdr *udp = (void *)(pkt + sizeof(*ip));
	size_t plen = strlen(payload);
	struct sockaddr_in to = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	int ok;

	if (fd < 0)
		return -1;
	memset(pkt, 0, sizeof(pkt));
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons((uint16_t)(sizeof(*ip) + sizeof(*udp) + plen));
	inet_pton(AF_INET, src, &ip->saddr);
	inet_pton(AF_INET, dst, &ip->daddr);
	udp->source = htons(sport);
	udp->dest = htons(dport);
	udp->len = htons((uint16_t)(sizeof(*udp) + plen));
	udp->check = 0; /* optional over IPv4 */
	memcpy(pkt + sizeof(*ip) + sizeof(*udp), payload, plen);
	to.sin_addr.s_addr = ip->daddr;
	ok = sendto(fd, pkt, sizeof(*ip) + sizeof(*udp) + plen, 0,
		    (struct sockaddr *)&to, sizeof(to)) > 0;
	close(fd);
	return ok ? 0 : -1;
}

/*
 * Two evringd instances serving echo on the same port of two addresses:
 * a datagram forged "from" one to the other would start an endless
 * exchange. Each drops datagrams from the ports it serves itself.
 */
BACKEND_TEST(udp, two_instances_cannot_start_a_loop)
{
	struct srv a, b;
	struct srv_stats sa, sb;
	char portspec[32];
	const char *argv_a[] = { "-b", "127.0.0.1", "-s", "echo/udp:0", NULL };

	skip_without_raw_sockets();
	cr_assert_eq(srv_start(&a, backend, 1, argv_a), 0);
	uint16_t port = srv_uport(&a, "echo", AF_INET);
	snprintf(portspec, sizeof(portspec), "echo/udp:%u", port);
	const char *argv_b[] = { "-b", "127.0.0.2", "-s", portspec, NULL };
	cr_assert_eq(srv_start(&b, backend, 1, argv_b), 0);

	/* "from B" to A: if A answered, B would answer A, and so on */
	cr_assert_eq(spoof("127.0.0.2", port, "127.0.0.1", port, "ping"), 0);
	usleep(300 * 1000);
	cr_assert_eq(srv_stats(&a, &sa), 0);
	cr_assert_eq(srv_stats(&b, &sb), 0);
	cr_assert_eq(sa.udp_rx, 1);
	cr_assert_eq(sa.udp_drop_port, 1);
	cr_assert_eq(sa.udp_tx, 0);
	cr_assert_eq(sb.udp_rx, 0, "B heard from A: a loop started");
	cr_assert_eq(srv_stop(&a, SIGTERM, 10000), 0);
	cr_assert_eq(srv_stop(&b, SIGTERM, 10000), 0);
}

BACKEND_TEST(udp, special_source_addresses_are_dropped)
{
	struct srv_stats st;
	struct srv s;

	skip_without_raw_sockets();
	start_udp(&s, backend, NULL);
	uint16_t port = srv_uport(&s, "echo", AF_INET);
	cr_assert_eq(spoof("224.0.0.1", 40000, "127.0.0.1", port, "m"), 0);
	/* (a zero source would be filled in by the kernel) */
	cr_assert_eq(spoof("255.255.255.255", 40000, "127.0.0.1", port, "b"),
		     0);
	usleep(200 * 1000);
	cr_assert_eq(srv_stats(&s, &st), 0);
	cr_assert_eq(st.udp_drop_addr, 2, "rx %llu drop_addr %llu", st.udp_rx,
		     st.udp_drop_addr);
	cr_assert_eq(st.udp_tx, 0);
	stop(&s);
}

BACKEND_TEST(udp, burst_from_one_source_is_bounded_by_the_bucket)
{
	enum { N = 10000 };
	struct srv_stats st;
	struct srv s;
	long rss0, rss1;
	int fd, got = 0;
	int64_t t0, t1;
	char buf[64];

	start_udp(&s, backend, NULL);
	rss0 = rss_kib(s.pid);
	fd = udp_socket(AF_INET, NULL, 0);
	int big = 1 << 22;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	t0 = now_ms();
	for (int i = 0; i < N; i++)
		udp_to(fd, AF_INET, srv_uport(&s, "echo", AF_INET), "x", 1);
	t1 = now_ms();
	while (recv_retry(fd, buf, sizeof(buf), 0) > 0)
		got++;
	close(fd);
	/* burst 200 plus 100 per second of the burst's duration */
	int allowed = 200 + (int)((t1 - t0 + 600) * 100 / 1000) + 1;
	cr_assert_leq(got, allowed, "%d replies to one source (at most %d)",
		      got, allowed);
	cr_assert_geq(got, 150, "the bucket's burst was not served (%d)", got);
	cr_assert_eq(srv_stats(&s, &st), 0);
	/* every datagram that reached the server was answered or dropped
	 * by the bucket (the kernel may drop some before it) */
	cr_assert_eq(st.udp_tx + st.udp_drop_rate, st.udp_rx);
	cr_assert_leq(st.udp_tx, (unsigned long long)allowed);
	cr_assert(srv_log_has(&s, "the source is over its reply rate"));

	/* and from 3,000 sources: the table is fixed, memory stays flat */
	for (int i = 0; i < 3000; i++) {
		char src[32];

		snprintf(src, sizeof(src), "127.2.%d.%d", i / 250, i % 250 + 1);
		fd = udp_socket(AF_INET, src, 0);
		udp_to(fd, AF_INET, srv_uport(&s, "echo", AF_INET), "y", 1);
		close(fd);
	}
	usleep(200 * 1000);
	rss1 = rss_kib(s.pid);
	cr_assert_lt(rss1 - rss0, 4096, "RSS grew %ld KiB", rss1 - rss0);
	stop(&s);
}

BACKEND_TEST(udp, datagrams_larger_than_a_buffer_are_dropped_and_counted)
{
	const char *opt[] = { "--udp-buf-size", "2048", NULL };
	static char big[4000], buf[4096];
	struct srv_stats st;
	struct srv s;
	int fd;

	start_udp(&s, backend, opt);
	fd = udp_socket(AF_INET, NULL, 0);
	for (int i = 0; i < 5; i++)
		udp_to(fd, AF_INET, srv_uport(&s, "echo", AF_INET), big,
		       sizeof(big));
	cr_assert_lt(recv_retry(fd, buf, sizeof(buf), 0), 0,
		     "a cut datagram was echoed");
	/* the socket goes on */
	udp_to(fd, AF_INET, srv_uport(&s, "echo", AF_INET), "ok", 2);
	cr_assert_eq(recv_retry(fd, buf, sizeof(buf), 0), 2);
	close(fd);
	cr_assert_eq(srv_stats(&s, &st), 0);
	cr_assert_eq(st.udp_trunc, 5);
	cr_assert(srv_log_has(&s, "datagram larger than a receive buffer"));
	stop(&s);
}
