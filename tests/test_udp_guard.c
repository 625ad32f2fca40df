/* SPDX-License-Identifier: MIT */
/*
 * test_udp_guard.c - the UDP guard against hostile sources, on both
 * backends: replies are never cut (a reply over the amplification cap,
 * counted in bytes on the wire, is not sent at all), the largest IPv6
 * datagram is answered, a victim's bucket cannot be refilled by churning
 * other sources through the table, and two servers on different ports
 * cannot be set answering each other.
 *
 * Sources other than 127.0.0.1 are chosen with IP_PKTINFO, which any user
 * may do for the local addresses of 127.0.0.0/8; a forged source port
 * needs a raw socket, and that test is skipped when not root.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static int udp_socket(int family)
{
	struct timeval tv = { .tv_sec = 2 };
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* The local port fd is bound to. */
static unsigned ephemeral_port_of(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

static void udp_to(int fd, int family, uint16_t port, const void *p, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback_addr(family, port, &ss);

	cr_assert_eq(sendto(fd, p, n, 0, (struct sockaddr *)&ss, len),
		     (ssize_t)n, "sendto %zu bytes: %m", n);
}

/* Send n bytes to 127.0.0.1:port from the local address src (IP_PKTINFO:
 * the socket must be bound to the wildcard address). */
static int udp_from(int fd, uint32_t src, uint16_t port, const void *p,
		    size_t n)
{
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
	struct iovec iov = { .iov_base = (void *)p, .iov_len = n };
	struct msghdr m = { .msg_name = &to,
			    .msg_namelen = sizeof(to),
			    .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	struct in_pktinfo pi = { .ipi_spec_dst.s_addr = htonl(src) };

	memset(cbuf, 0, sizeof(cbuf));
	cm->cmsg_level = IPPROTO_IP;
	cm->cmsg_type = IP_PKTINFO;
	cm->cmsg_len = CMSG_LEN(sizeof(pi));
	memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
	return sendmsg(fd, &m, 0) == (ssize_t)n ? 0 : -1;
}

static void start(struct srv *s, const char *backend, const char *const *extra)
{
	const char *argv[32] = { "-b",
				 "127.0.0.1",
				 "-b",
				 "::1",
				 "-s",
				 "echo/udp:0",
				 "-s",
				 "daytime/udp:0",
				 "--udp-allow-reflector-ports" };
	int n = 9;

	for (; extra && *extra; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	cr_assert_eq(srv_start(s, backend, 4, argv), 0);
}

static void stop(struct srv *s)
{
	struct srv_stats st;

	cr_assert_eq(srv_wait_idle(s, &st, 10000), 0,
		     "UDP buffers not back: %llu/%llu", st.udp_bufs_free,
		     st.udp_bufs_total);
	cr_assert_eq(srv_stop(s, SIGTERM, 10000), 0, "%s", srv_log(s));
}

/* Stats once the server has received rx datagrams (a hang guard only). */
static void stats_after_rx(struct srv *s, unsigned long long rx,
			   struct srv_stats *st)
{
	int64_t deadline = now_ms() + 20000;

	do {
		cr_assert_eq(srv_stats(s, st), 0);
		if (st->udp_rx >= rx)
			return;
		usleep(10000);
	} while (now_ms() < deadline);
	cr_assert_fail("the server received %llu of %llu datagrams", st->udp_rx,
		       rx);
}

BACKEND_TEST(udp_guard, daytime_answers_a_one_byte_request_whole)
{
	char buf[256];
	struct srv s;
	int fd;

	start(&s, backend, NULL);
	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;

		fd = udp_socket(family);
		/* what `echo | nc -u host 13` sends */
		udp_to(fd, family, srv_uport(&s, "daytime", family), "\n", 1);
		ssize_t n = recv_retry(fd, buf, sizeof(buf) - 1, 0);

		cr_assert_gt(n, 20, "a 1-byte request got %zd bytes", n);
		buf[n] = '\0';
		cr_assert(strstr(buf, "-UTC\r\n"), "daytime said \"%s\"", buf);
		close(fd);
	}
	stop(&s);
}

BACKEND_TEST(udp_guard, a_reply_over_the_cap_is_not_sent_but_counted)
{
	const char *opt[] = { "-o", "daytime.udp_amplification=1", NULL };
	struct srv_stats st;
	char buf[256];
	struct srv s;
	int fd;

	start(&s, backend, opt);
	fd = udp_socket(AF_INET);
	/* 2 + 28 bytes on the wire in; daytime's line is longer than 2 */
	udp_to(fd, AF_INET, srv_uport(&s, "daytime", AF_INET), "?\n", 2);
	stats_after_rx(&s, 1, &st);
	cr_assert_eq(st.udp_capped, 1);
	cr_assert_eq(st.udp_tx, 0);
	cr_assert_eq(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), -1,
		     "a cut reply was sent");
	/* echo's reply is as long as its request: never over a cap of 1 */
	const char *opt2[] = { "-o", "echo.udp_amplification=1", NULL };

	stop(&s);
	start(&s, backend, opt2);
	udp_to(fd, AF_INET, srv_uport(&s, "echo", AF_INET), "?\n", 2);
	cr_assert_eq(recv_retry(fd, buf, sizeof(buf), 0), 2);
	close(fd);
	stop(&s);
}

BACKEND_TEST(udp_guard, the_largest_datagram_is_echoed_over_ipv4_and_ipv6)
{
	static char out[65527], in[65536];
	/* 65535 - 20 - 8 over IPv4; 65535 - 8 of an IPv6 payload */
	static const size_t max[2] = { 65507, 65527 };
	struct srv s;

	start(&s, backend, NULL);
	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;
		int fd = udp_socket(family);
		int big = 1 << 20;

		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
		fill_pattern(out, max[f], 7u + (uint32_t)f);
		udp_to(fd, family, srv_uport(&s, "echo", family), out, max[f]);
		ssize_t n = recv_retry(fd, in, sizeof(in), 0);

		cr_assert_eq(n, (ssize_t)max[f], "%s: %zu bytes out, %zd back",
			     f ? "IPv6" : "IPv4", max[f], n);
		cr_assert_eq(memcmp(in, out, max[f]), 0);
		close(fd);
	}
	stop(&s);
}

/*
 * The token bucket table is a fixed size: a source that finds no entry
 * takes one from another. If that gave it a full bucket, a flood that
 * interleaves the victim's address with thousands of others would keep
 * handing the victim fresh buckets. The bound stays burst + rate * t.
 */
BACKEND_TEST(udp_guard, churning_sources_cannot_refill_a_victims_bucket)
{
	enum { VICTIM = 2000, CHURN = 8, ROUND = 10 };
	/* a small table, so that a few sources between two of the victim's
	 * datagrams evict it */
	const char *opt[] = { "--udp-rate",    "100", "--udp-burst", "200",
			      "--udp-sources", "16",  NULL };
	struct sockaddr_in any = { .sin_family = AF_INET };
	struct srv_stats st;
	struct srv s;
	int victim, churn, got = 0;
	uint32_t next = 0;
	char buf[64];
	int64_t t0, t1;

	start(&s, backend, opt);
	uint16_t port = srv_uport(&s, "echo", AF_INET);
	victim = udp_socket(AF_INET);
	churn = udp_socket(AF_INET);
	cr_assert_eq(bind(churn, (struct sockaddr *)&any, sizeof(any)), 0);
	t0 = now_ms();
	for (int i = 0; i < VICTIM; i++) {
		udp_to(victim, AF_INET, port, "v", 1);
		/* others from 127.1.0.0 on, none repeated */
		for (int k = 0; k < CHURN; k++, next++)
			cr_assert_eq(
			    udp_from(churn, 0x7f010000u + next, port, "c", 1),
			    0, "IP_PKTINFO send: %m");
		/* rounds small enough for the server's socket buffer: let
		 * it take each round before the next, so none is lost */
		if (i % ROUND == ROUND - 1)
			stats_after_rx(
			    &s, (unsigned long long)(i + 1) * (CHURN + 1), &st);
		/* read what came back so far, so our socket never fills */
		while (recv(victim, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			got++;
	}
	stats_after_rx(&s, (unsigned long long)VICTIM * (CHURN + 1), &st);
	t1 = now_ms();
	while (recv(victim, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		got++;
	long bound = 200 + 100 * (t1 - t0 + 999) / 1000;

	cr_assert_leq(got, bound,
		      "the victim got %d replies in %lld ms: over 200 + "
		      "100/s (%ld)",
		      got, (long long)(t1 - t0), bound);
	cr_assert_geq(got, 200, "the victim's own burst: %d", got);
	close(victim);
	close(churn);
	stop(&s);
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
	memcpy(pkt + sizeof(*ip) + sizeof(*udp), payload, plen);
	to.sin_addr.s_addr = ip->daddr;
	ok = sendto(fd, pkt, sizeof(*ip) + sizeof(*udp) + plen, 0,
		    (struct sockaddr *)&to, sizeof(to)) > 0;
	close(fd);
	return ok ? 0 : -1;
}

/* Echo over UDP on addr at a fixed port below the ephemeral range (as
 * servers are), tried until one is free. */
static void start_fixed(struct srv *s, const char *backend, const char *addr,
			int first, uint16_t *port)
{
	char spec[32];

	for (int i = first; i < first + 50; i++) {
		*port = (uint16_t)(20000 + (getpid() * 7 + i * 131) % 10000);
		snprintf(spec, sizeof(spec), "echo/udp:%u", *port);
		const char *argv[] = { "-b", addr, "-s", spec, NULL };

		if (srv_start(s, backend, 1, argv) == 0)
			return;
	}
	cr_assert_fail("no free port for %s", addr);
}

/*
 * Echo on 127.0.0.1:A and on 127.0.0.2:B, each knowing only its own
 * ports: a datagram forged "from" A to B makes B answer A, A answer B,
 * and so on. Each must recognise its own reply coming back and drop it,
 * so the exchange dies within a round or two, well below the rate limit.
 */
BACKEND_TEST(udp_guard, two_instances_on_different_ports_do_not_talk)
{
	struct srv_stats sa, sb;
	uint16_t pa, pb;
	struct srv a, b;
	int raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);

	if (raw < 0)
		cr_skip_test("forging a source port needs a raw socket: %m");
	close(raw);
	start_fixed(&a, backend, "127.0.0.1", 0, &pa);
	start_fixed(&b, backend, "127.0.0.2", 1, &pb);
	cr_assert_neq(pa, pb);
	cr_assert_eq(spoof("127.0.0.1", pa, "127.0.0.2", pb, "ping"), 0);
	/* let a loop run, if there is one: it would reach the burst */
	usleep(500 * 1000);
	cr_assert_eq(srv_stats(&a, &sa), 0);
	cr_assert_eq(srv_stats(&b, &sb), 0);
	cr_assert_leq(sa.udp_tx + sb.udp_tx, 4,
		      "A and B exchanged %llu + %llu replies", sa.udp_tx,
		      sb.udp_tx);
	cr_assert_geq(sa.udp_drop_loop + sb.udp_drop_loop, 1);
	cr_assert_eq(srv_stop(&a, SIGTERM, 10000), 0);
	cr_assert_eq(srv_stop(&b, SIGTERM, 10000), 0);
}

/* A client (from an ephemeral port) that sends the same payload again
 * and again is answered every time: the loop rule is for servers. */
BACKEND_TEST(udp_guard, a_client_repeating_itself_is_answered)
{
	char buf[64];
	struct srv s;
	int fd, got = 0;

	start(&s, backend, NULL);
	fd = udp_socket(AF_INET);
	for (int i = 0; i < 50; i++) {
		udp_to(fd, AF_INET, srv_uport(&s, "echo", AF_INET), "same", 4);
		if (recv_retry(fd, buf, sizeof(buf), 0) == 4)
			got++;
	}
	cr_assert_eq(got, 50);
	close(fd);
	stop(&s);
}

/* With the rate limit off, a client on a fixed port below the ephemeral
 * range (where the reply-loop rule keeps an entry for it) is answered
 * every time: no bucket of one token per millisecond. */
BACKEND_TEST(udp_guard, no_rate_limit_means_none_for_fixed_ports)
{
	const char *opt[] = { "--udp-rate", "off", NULL };
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char buf[64];
	struct srv s;
	int fd, got = 0;

	start(&s, backend, opt);
	fd = udp_socket(AF_INET);
	for (int i = 0; i < 50; i++) {
		a.sin_port =
		    htons((uint16_t)(21000 + (getpid() * 13 + i) % 9000));
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			break;
	}
	cr_assert_lt(ephemeral_port_of(fd), 32768);
	for (int i = 0; i < 500; i++) {
		char req[16];
		int n = snprintf(req, sizeof(req), "req %d", i);

		udp_to(fd, AF_INET, srv_uport(&s, "echo", AF_INET), req,
		       (size_t)n);
		if (recv_retry(fd, buf, sizeof(buf), 0) == n)
			got++;
	}
	cr_assert_eq(got, 500, "%d of 500 answered", got);
	close(fd);
	stop(&s);
}
