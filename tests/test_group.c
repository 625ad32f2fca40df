/* SPDX-License-Identifier: MIT */
/*
 * test_group.c - evringd with two loops (--threads 2), on both backends,
 * its counters read from its stats service and checked with a real
 * Prometheus parser (python3-prometheus-client):
 *
 * - 10,000 connections are served, every loop accepts some, and the
 *   counters equal what the test did (accepted, bytes in and out, closes);
 * - UDP datagrams reach every loop; a source's rate limit holds although
 *   its datagrams come from many ports;
 * - per-source, global and per-service connection limits hold across
 *   loops;
 * - SIGTERM under load: every established connection is served to its
 *   end, none is reset, and it exits 0;
 * - another process that binds the port with SO_REUSEPORT gets nothing,
 *   and a port in use is still an error;
 * - the exposition: # HELP and # TYPE for every family, counters in
 *   _total, a loop label, evring_build_info and the process metrics; on
 *   loopback unless told otherwise.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OPTS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* evringd -b 127.0.0.1 --threads 2 -s stats:0 plus services and options;
 * nlisteners counts the stats listener. */
static int start(struct srv *s, const char *backend, int nlisteners,
		 const char *const *opts)
{
	const char *argv[48];
	int n = 0;

	argv[n++] = "-b";
	argv[n++] = "127.0.0.1";
	argv[n++] = "--threads";
	argv[n++] = "2";
	argv[n++] = "-s";
	argv[n++] = "stats/tcp:0";
	for (; *opts; opts++)
		argv[n++] = *opts;
	argv[n] = NULL;
	return srv_start(s, backend, nlisteners, argv);
}

/* ---- the stats service, read with a real parser ---- */

#define MAX_SAMPLES 512

struct metrics {
	int n;
	struct {
		char type[16];
		char name[64];
		int loop; /* -1: no loop label */
		unsigned long long v;
	} s[MAX_SAMPLES];
	char text[1 << 16]; /* the body */
	size_t response_bytes;
};

static const char request[] = "GET /metrics HTTP/1.1\r\nHost: evringd\r\n\r\n";

/* prometheus_client's own parser: a malformed exposition raises, and the
 * script exits non-zero. One line per sample: TYPE NAME LOOP VALUE. */
static const char parse_py[] =
    "import sys\n"
    "from prometheus_client.parser import text_string_to_metric_families\n"
    "for fam in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
    "    for s in fam.samples:\n"
    "        print(fam.type, s.name, s.labels.get('loop', '-'), "
    "int(s.value))\n";

static int scrape(uint16_t port, struct metrics *m)
{
	static char resp[1 << 17], out[1 << 16];
	char path[] = "/tmp/evring-metrics-XXXXXX";
	const char *argv[] = { "/usr/bin/python3", "-c", parse_py, path, NULL };
	const char *body, *line;
	ssize_t n;
	int fd, rc;

	memset(m, 0, sizeof(*m));
	fd = tcp_connect(AF_INET, port);
	if (fd < 0 || write_all(fd, request, sizeof(request) - 1) < 0)
		return -1;
	n = read_to_eof(fd, resp, sizeof(resp) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	resp[n] = '\0';
	m->response_bytes = (size_t)n;
	if (strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) ||
	    !strstr(resp, "Content-Type: text/plain; version=0.0.4") ||
	    !(body = strstr(resp, "\r\n\r\n")))
		return -1;
	body += 4;
	snprintf(m->text, sizeof(m->text), "%s", body);
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	n = write(fd, body, strlen(body));
	close(fd);
	if (n != (ssize_t)strlen(body))
		return -1;
	rc = run_capture(argv, out, sizeof(out), 30000);
	unlink(path);
	cr_assert_eq(rc, 0, "the Prometheus parser refused it: %s", out);
	for (line = out; *line && m->n < MAX_SAMPLES;) {
		char loop[16];
		int k = m->n;

		if (sscanf(line, "%15s %63s %15s %llu", m->s[k].type,
			   m->s[k].name, loop, &m->s[k].v) == 4) {
			m->s[k].loop = loop[0] == '-' ? -1 : atoi(loop);
			m->n++;
		}
		line = strchr(line, '\n');
		if (!line)
			break;
		line++;
	}
	return 0;
}

/* The sample name of loop (-1: the one without a loop label); asserts
 * it is there. */
static unsigned long long metric(const struct metrics *m, const char *name,
				 int loop)
{
	for (int i = 0; i < m->n; i++)
		if (!strcmp(m->s[i].name, name) && m->s[i].loop == loop)
			return m->s[i].v;
	cr_assert_fail("no sample %s{loop=\"%d\"}", name, loop);
	return 0;
}

static unsigned long long total(const struct metrics *m, const char *name)
{
	return metric(m, name, 0) + metric(m, name, 1);
}

/* ---- 10,000 connections ---- */

#define CONNS	     10000
#define CONN_THREADS 4
#define MSG_LEN	     16

struct clients {
	uint16_t port;
	atomic_int done;
	atomic_int failed;
};

static void *client_main(void *arg)
{
	struct clients *c = arg;
	char out[MSG_LEN], in[MSG_LEN];

	for (int i = 0; i < CONNS / CONN_THREADS; i++) {
		int fd = tcp_connect(AF_INET, c->port);

		fill_pattern(out, sizeof(out), (uint32_t)i);
		if (fd < 0 || write_all(fd, out, sizeof(out)) < 0 ||
		    read_exact(fd, in, sizeof(in)) != sizeof(in) ||
		    memcmp(in, out, sizeof(in)))
			atomic_fetch_add(&c->failed, 1);
		if (fd >= 0)
			close(fd);
		atomic_fetch_add(&c->done, 1);
	}
	return NULL;
}

BACKEND_TEST(group, ten_thousand_connections_every_loop_accepts_some)
{
	struct clients c = { 0 };
	pthread_t th[CONN_THREADS];
	static struct metrics m;
	unsigned long long scrapes = 0, scraped_out = 0;
	uint16_t sport;
	int64_t deadline;
	struct srv s;

	cr_assert_eq(start(&s, backend, 2, OPTS("-s", "echo/tcp:0")), 0);
	c.port = srv_port(&s, "echo", AF_INET);
	sport = srv_port(&s, "stats", AF_INET);
	for (int i = 0; i < CONN_THREADS; i++)
		pthread_create(&th[i], NULL, client_main, &c);
	for (int i = 0; i < CONN_THREADS; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(atomic_load(&c.failed), 0, "%d connections failed",
		     atomic_load(&c.failed));
	/* the last closes may still be on their way: until every echo
	 * connection is counted closed (each scrape is a connection too) */
	deadline = now_ms() + 20000;
	do {
		if (scrapes)
			scraped_out += m.response_bytes;
		cr_assert_eq(scrape(sport, &m), 0);
		scrapes++;
	} while (total(&m, "evring_closes_ok_total") < CONNS + scrapes - 1 &&
		 now_ms() < deadline);
	for (int loop = 0; loop < 2; loop++)
		cr_assert_gt(metric(&m, "evring_conns_accepted_total", loop), 0,
			     "loop %d accepted nothing", loop);
	cr_assert_eq(total(&m, "evring_conns_accepted_total"), CONNS + scrapes,
		     "accepted %llu, connections made %llu",
		     total(&m, "evring_conns_accepted_total"), CONNS + scrapes);
	cr_assert_eq(total(&m, "evring_closes_ok_total"), CONNS + scrapes - 1);
	cr_assert_eq(total(&m, "evring_closes_error_total"), 0);
	cr_assert_eq(total(&m, "evring_conns_refused_total"), 0);
	cr_assert_eq(total(&m, "evring_conns_open"), 1, "this scrape's");
	cr_assert_eq(total(&m, "evring_bytes_in_total"),
		     (unsigned long long)CONNS * MSG_LEN +
			 scrapes * (sizeof(request) - 1),
		     "bytes received %llu", total(&m, "evring_bytes_in_total"));
	/* every byte echoed, and the earlier scrapes' responses */
	cr_assert_eq(total(&m, "evring_bytes_out_total"),
		     (unsigned long long)CONNS * MSG_LEN + scraped_out,
		     "bytes sent %llu", total(&m, "evring_bytes_out_total"));
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

/* ---- UDP ---- */

static int udp_from(const char *src)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = 2 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	inet_pton(AF_INET, src, &a.sin_addr);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "%s: %m",
		     src);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* udp_from() on a port that is none of s's: evringd drops a datagram
 * from a port it serves, on any address and protocol (a reply loop with
 * another instance of itself), and an ephemeral port can be one. */
static int udp_from_not(const struct srv *s, const char *src)
{
	for (;;) {
		struct sockaddr_in a;
		socklen_t len = sizeof(a);
		int fd = udp_from(src), own = 0;

		getsockname(fd, (struct sockaddr *)&a, &len);
		for (int i = 0; i < s->nls; i++)
			own |= s->ls[i].port == ntohs(a.sin_port);
		if (!own)
			return fd;
		close(fd);
	}
}

/* UDP may lose a datagram on a busy machine: up to 3 tries, each
 * counted in *sent. */
static bool udp_echo(int fd, uint16_t port, const char *msg, int *sent)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback_addr(AF_INET, port, &ss);
	char buf[64];
	ssize_t n;

	for (int try = 0; try < 3; try++) {
		if (sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&ss,
			   len) < 0)
			return false;
		(*sent)++;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == (ssize_t)strlen(msg) && !memcmp(buf, msg, (size_t)n))
			return true;
	}
	return false;
}

BACKEND_TEST(group, udp_datagrams_reach_every_loop)
{
	static struct metrics m;
	char src[32];
	struct srv s;
	int sent = 0, answered = 0;

	cr_assert_eq(start(&s, backend, 2,
			   OPTS("-s", "echo/udp:0", "--udp-rate", "off")),
		     0);
	/* a source's datagrams go to one loop: sources 127.0.0.1-64 */
	for (int i = 1; i <= 64; i++) {
		int fd;

		snprintf(src, sizeof(src), "127.0.0.%d", i);
		fd = udp_from_not(&s, src);
		for (int k = 0; k < 4; k++, answered++)
			cr_assert(udp_echo(fd, srv_uport(&s, "echo", AF_INET),
					   "ping", &sent),
				  "%s got no echo", src);
		close(fd);
	}
	cr_assert_eq(scrape(srv_port(&s, "stats", AF_INET), &m), 0);
	for (int loop = 0; loop < 2; loop++)
		cr_assert_gt(metric(&m, "evring_udp_rx_total", loop), 0,
			     "no datagram reached loop %d", loop);
	cr_assert_geq(total(&m, "evring_udp_rx_total"), (unsigned)answered);
	cr_assert_leq(total(&m, "evring_udp_rx_total"), (unsigned)sent);
	cr_assert_eq(total(&m, "evring_udp_tx_total"),
		     total(&m, "evring_udp_rx_total"));
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

/* A source's bucket is one bucket: from 40 ports of one address (which a
 * hash of the whole 4-tuple would spread over both loops), no more than
 * the burst is answered at once. The server's counters are waited for,
 * not a reply with a deadline: a busy machine delays, never drops. */
BACKEND_TEST(group, udp_rate_limit_of_a_source_holds_across_loops)
{
	static struct metrics m;
	enum { PORTS = 40, BURST = 10 };
	struct pollfd pfd[PORTS];
	int fds[PORTS], answered = 0;
	unsigned long long tx = 0;
	struct sockaddr_storage ss;
	socklen_t len;
	char buf[16];
	struct srv s;

	cr_assert_eq(start(&s, backend, 2,
			   OPTS("-s", "echo/udp:0", "--udp-rate", "1",
				"--udp-burst", "10")),
		     0);
	len = loopback_addr(AF_INET, srv_uport(&s, "echo", AF_INET), &ss);
	for (int i = 0; i < PORTS; i++) {
		fds[i] = udp_from_not(&s, "127.0.0.9");
		cr_assert_eq(
		    sendto(fds[i], "x", 1, 0, (struct sockaddr *)&ss, len), 1);
	}
	/* every datagram counted: received, then answered or dropped */
	for (int tries = 0;; tries++) {
		cr_assert_eq(scrape(srv_port(&s, "stats", AF_INET), &m), 0);
		tx = total(&m, "evring_udp_tx_total");
		if (total(&m, "evring_udp_rx_total") == PORTS &&
		    tx + total(&m, "evring_udp_drop_rate_total") == PORTS)
			break;
		cr_assert_lt(tries, 100, "not every datagram counted: %s",
			     m.text);
		usleep(100 * 1000);
	}
	/* the burst, and what a rate of 1/s adds while the test runs */
	cr_assert_geq(tx, BURST);
	cr_assert_leq(tx, BURST + 2, "%llu of %d answered", tx, PORTS);
	/* and all of them reached one loop */
	cr_assert(metric(&m, "evring_udp_rx_total", 0) == 0 ||
		  metric(&m, "evring_udp_rx_total", 1) == 0);
	/* each reply the server counted reaches its client */
	for (int i = 0; i < PORTS; i++)
		pfd[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	for (int waited = 0; answered < (int)tx && waited < 10000;
	     waited += 100) {
		poll(pfd, PORTS, 100);
		for (int i = 0; i < PORTS; i++)
			if (pfd[i].fd >= 0 && (pfd[i].revents & POLLIN) &&
			    recv(pfd[i].fd, buf, sizeof(buf), MSG_DONTWAIT) ==
				1) {
				answered++;
				pfd[i].fd = -1;
			}
	}
	cr_assert_eq(answered, (int)tx, "%d replies for %llu sent", answered,
		     tx);
	for (int i = 0; i < PORTS; i++)
		close(fds[i]);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

/* ---- limits across loops ---- */

/* The peer of fd closed at once (a refusal), or echoes a byte. */
static bool refused(int fd)
{
	char c;

	if (fd < 0 || write_all(fd, "r", 1) < 0)
		return true;
	return read_exact(fd, &c, 1) != 1;
}

/* n connections from src; how many were served. */
static int served_of(const char *src, uint16_t port, int *fds, int n)
{
	int served = 0;

	for (int i = 0; i < n; i++) {
		fds[i] = src ? tcp_connect_from(src, port)
			     : tcp_connect(AF_INET, port);
		if (!refused(fds[i]))
			served++;
	}
	return served;
}

static void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Wait until the server holds no connection but the scrape's own: the
 * closes have been seen, whatever the machine's speed. */
static void wait_all_closed(uint16_t sport)
{
	static struct metrics m;

	for (int tries = 0;; tries++) {
		/* (under a global limit the scrape may be refused while the
		 * others are open) */
		if (scrape(sport, &m) == 0 &&
		    total(&m, "evring_conns_open") <= 1)
			return;
		cr_assert_lt(tries, 200, "connections still open: %s", m.text);
		usleep(50 * 1000);
	}
}

/* Both loops took part: each accepted or refused some. */
static void both_loops_saw_some(uint16_t sport)
{
	static struct metrics m;

	cr_assert_eq(scrape(sport, &m), 0);
	for (int loop = 0; loop < 2; loop++)
		cr_assert_gt(metric(&m, "evring_conns_accepted_total", loop) +
				 metric(&m, "evring_conns_refused_total", loop),
			     0, "loop %d saw no connection", loop);
}

BACKEND_TEST(group, per_source_limit_holds_across_loops)
{
	enum { N = 24 };
	int fds[N], other;
	struct srv s;
	uint16_t port;

	cr_assert_eq(
	    start(&s, backend, 2,
		  OPTS("-s", "echo/tcp:0", "--max-conns-per-source", "3")),
	    0);
	port = srv_port(&s, "echo", AF_INET);
	/* from one address, many ports: spread over both loops */
	cr_assert_eq(served_of("127.0.0.5", port, fds, N), 3,
		     "a source got more than its 3 connections");
	other = tcp_connect_from("127.0.0.6", port);
	cr_assert_not(refused(other), "another source has its own count");
	close(other);
	both_loops_saw_some(srv_port(&s, "stats", AF_INET));
	/* the counts go with the connections: room again */
	close_all(fds, N);
	wait_all_closed(srv_port(&s, "stats", AF_INET));
	cr_assert_eq(served_of("127.0.0.5", port, fds, N), 3);
	close_all(fds, N);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

BACKEND_TEST(group, global_and_service_limits_hold_across_loops)
{
	enum { N = 24 };
	int fds[N];
	struct srv s;
	uint16_t port;

	cr_assert_eq(
	    start(&s, backend, 2, OPTS("-s", "echo/tcp:0", "--max-conns", "5")),
	    0);
	port = srv_port(&s, "echo", AF_INET);
	cr_assert_eq(served_of(NULL, port, fds, N), 5);
	close_all(fds, N);
	wait_all_closed(
	    srv_port(&s, "stats", AF_INET)); /* a scrape is one too */
	both_loops_saw_some(srv_port(&s, "stats", AF_INET));
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));

	cr_assert_eq(start(&s, backend, 2,
			   OPTS("-s", "echo/tcp:0", "-o", "echo.max_conns=4")),
		     0);
	port = srv_port(&s, "echo", AF_INET);
	cr_assert_eq(served_of(NULL, port, fds, N), 4);
	/* the stats service has a count of its own */
	both_loops_saw_some(srv_port(&s, "stats", AF_INET));
	close_all(fds, N);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

/* ---- SIGTERM under load ---- */

#define LOAD_THREADS 8

struct load {
	uint16_t port;
	atomic_bool stop;
	atomic_int served, resets, refused_after;
	char why[128];
};

/* Connect, echo a few messages over a while, close; again and again. A
 * connect that fails is the server no longer listening; an established
 * connection must be served to its end. */
static void *load_main(void *arg)
{
	struct load *L = arg;

	while (!atomic_load(&L->stop)) {
		char out[32], in[32];
		int fd = tcp_connect(AF_INET, L->port);

		if (fd < 0) {
			atomic_fetch_add(&L->refused_after, 1);
			usleep(20000);
			continue;
		}
		for (int k = 0; k < 5; k++) {
			fill_pattern(out, sizeof(out), (uint32_t)k);
			if (write_all(fd, out, sizeof(out)) < 0 ||
			    read_exact(fd, in, sizeof(in)) != sizeof(in) ||
			    memcmp(in, out, sizeof(in))) {
				if (!atomic_fetch_add(&L->resets, 1))
					snprintf(L->why, sizeof(L->why),
						 "message %d: %s", k,
						 strerror(errno));
				break;
			}
			usleep(2000);
		}
		/* the orderly end: our FIN, then the server's */
		shutdown(fd, SHUT_WR);
		if (read_to_eof(fd, in, sizeof(in)) < 0 &&
		    !atomic_fetch_add(&L->resets, 1))
			snprintf(L->why, sizeof(L->why), "at the end: %s",
				 strerror(errno));
		close(fd);
		atomic_fetch_add(&L->served, 1);
	}
	return NULL;
}

/*
 * Connections sitting in the loops' accept queues when the drain begins:
 * the server is stopped (SIGSTOP) while they connect, so the kernel
 * completes their handshakes and queues them, then gets SIGTERM and runs
 * again. Each one the client sees established must be served (closing a
 * listener would reset those); later ones are refused.
 */
#define BURST_THREADS 4
#define BURST_CONNS   400

struct burst {
	uint16_t port;
	atomic_int issued, served, refused, cut;
	char why[128];
};

static void *burst_main(void *arg)
{
	struct burst *B = arg;
	int fds[BURST_CONNS];
	struct sockaddr_storage ss;
	socklen_t len = loopback_addr(AF_INET, B->port, &ss);

	for (int i = 0; i < BURST_CONNS; i++) {
		fds[i] = socket(AF_INET,
				SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fds[i] >= 0 &&
		    connect(fds[i], (struct sockaddr *)&ss, len) < 0 &&
		    errno != EINPROGRESS) {
			close(fds[i]);
			fds[i] = -1;
			atomic_fetch_add(&B->refused, 1);
		}
		atomic_fetch_add(&B->issued, 1);
	}
	for (int i = 0; i < BURST_CONNS; i++) {
		struct pollfd pfd = { .fd = fds[i], .events = POLLOUT };
		int err = 0, fl;
		socklen_t el = sizeof(err);
		char c;

		if (fds[i] < 0)
			continue;
		/* a dropped SYN is retried after 1 s, then refused */
		poll(&pfd, 1, 15000);
		getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &el);
		if (err || !(pfd.revents & POLLOUT)) {
			atomic_fetch_add(&B->refused, 1);
			close(fds[i]);
			continue;
		}
		fl = fcntl(fds[i], F_GETFL);
		fcntl(fds[i], F_SETFL, fl & ~O_NONBLOCK);
		{
			struct timeval tv = { .tv_sec = 10 };

			setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv,
				   sizeof(tv));
		}
		if (write_all(fds[i], "b", 1) < 0 ||
		    read_exact(fds[i], &c, 1) != 1 || c != 'b') {
			if (!atomic_fetch_add(&B->cut, 1))
				snprintf(B->why, sizeof(B->why), "%s",
					 strerror(errno));
		} else {
			atomic_fetch_add(&B->served, 1);
		}
		close(fds[i]);
	}
	return NULL;
}

BACKEND_TEST(group, sigterm_with_connections_queued_resets_no_one)
{
	static struct burst B;
	pthread_t th[BURST_THREADS];
	int status;
	struct srv s;

	memset(&B, 0, sizeof(B));
	cr_assert_eq(start(&s, backend, 2,
			   OPTS("-s", "echo/tcp:0", "--drain-timeout", "30s",
				"--backlog", "4096")),
		     0);
	B.port = srv_port(&s, "echo", AF_INET);
	kill(s.pid, SIGSTOP);
	for (int i = 0; i < BURST_THREADS; i++)
		pthread_create(&th[i], NULL, burst_main, &B);
	while (atomic_load(&B.issued) < BURST_THREADS * BURST_CONNS)
		usleep(1000);
	usleep(100 * 1000); /* the last handshakes */
	kill(s.pid, SIGTERM);
	kill(s.pid, SIGCONT);
	for (int i = 0; i < BURST_THREADS; i++)
		pthread_join(th[i], NULL);
	status = srv_stop(&s, 0, 30000);
	cr_assert_eq(status, 0, "exit status %d: %s", status, srv_log(&s));
	cr_assert_eq(atomic_load(&B.cut), 0,
		     "%d established connections were cut (%s), %d served, "
		     "%d refused",
		     atomic_load(&B.cut), B.why, atomic_load(&B.served),
		     atomic_load(&B.refused));
	cr_assert_eq(atomic_load(&B.served), BURST_THREADS * BURST_CONNS,
		     "every connection queued before the drain is served");
}

BACKEND_TEST(group, sigterm_under_load_drains_without_a_reset)
{
	static struct load L;
	pthread_t th[LOAD_THREADS];
	int status;
	struct srv s;

	memset(&L, 0, sizeof(L));
	cr_assert_eq(start(&s, backend, 2,
			   OPTS("-s", "echo/tcp:0", "--drain-timeout", "20s")),
		     0);
	L.port = srv_port(&s, "echo", AF_INET);
	for (int i = 0; i < LOAD_THREADS; i++)
		pthread_create(&th[i], NULL, load_main, &L);
	while (atomic_load(&L.served) < 200)
		usleep(1000);
	kill(s.pid, SIGTERM);
	/* the server exits by itself once every connection has ended */
	status = srv_stop(&s, 0, 30000);
	atomic_store(&L.stop, true);
	for (int i = 0; i < LOAD_THREADS; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(status, 0, "exit status %d: %s", status, srv_log(&s));
	cr_assert_eq(atomic_load(&L.resets), 0,
		     "%d connections were cut (%s); log: %s",
		     atomic_load(&L.resets), L.why, srv_log(&s));
	cr_assert(srv_log_has(&s, "draining"));
}

/* ---- the port's owner ---- */

BACKEND_TEST(group, another_process_on_the_port_gets_no_connection)
{
	struct sockaddr_storage ss;
	int one = 1, lfd, served = 0, stolen = 0;
	struct srv s;
	socklen_t len;

	cr_assert_eq(start(&s, backend, 2, OPTS("-s", "echo/tcp:0")), 0);
	/* the same user (the kernel's only check), SO_REUSEPORT */
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	len = loopback_addr(AF_INET, srv_port(&s, "echo", AF_INET), &ss);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&ss, len), 0,
		     "SO_REUSEPORT lets the same user bind: %m");
	cr_assert_eq(listen(lfd, 128), 0);
	for (int i = 0; i < 200; i++) {
		int fd = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
		int a;

		if (!refused(fd))
			served++;
		while ((a = accept(lfd, NULL, NULL)) >= 0) {
			stolen++;
			close(a);
		}
		close(fd);
	}
	close(lfd);
	cr_assert_eq(stolen, 0, "another socket took %d connections", stolen);
	cr_assert_eq(served, 200);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

BACKEND_TEST(group, a_port_in_use_is_an_error)
{
	struct sockaddr_storage ss;
	char port[16], spec[32];
	int one = 1, lfd, rc;
	struct srv s;
	socklen_t len;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	len = loopback_addr(AF_INET, 0, &ss);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&ss, len), 0);
	cr_assert_eq(listen(lfd, 8), 0);
	len = sizeof(ss);
	getsockname(lfd, (struct sockaddr *)&ss, &len);
	snprintf(port, sizeof(port), "%u",
		 ntohs(((struct sockaddr_in *)&ss)->sin_port));
	snprintf(spec, sizeof(spec), "echo/tcp:%s", port);
	rc = start(&s, backend, 2, OPTS("-s", spec));
	close(lfd);
	cr_assert_lt(rc, 0, "evringd started on a port in use");
	cr_assert(strstr(srv_log(&s), "Address already in use"), "%s",
		  srv_log(&s));
}

/* ---- the exposition ---- */

BACKEND_TEST(group, metrics_are_prometheus_text_with_help_type_and_loops)
{
	static struct metrics m;
	char line[256];
	struct srv s;
	const char *p;
	int families = 0;

	cr_assert_eq(start(&s, backend, 2, OPTS("-s", "echo/tcp:0")), 0);
	cr_assert_eq(scrape(srv_port(&s, "stats", AF_INET), &m), 0);
	/* every family has its HELP and TYPE; counters end in _total */
	for (p = m.text; (p = strstr(p, "# TYPE ")); p++) {
		char name[64], type[16];

		cr_assert_eq(sscanf(p, "# TYPE %63s %15s", name, type), 2);
		snprintf(line, sizeof(line), "# HELP %s ", name);
		cr_assert(strstr(m.text, line), "no HELP for %s", name);
		if (!strcmp(type, "counter"))
			cr_assert(
			    strlen(name) > 6 &&
				!strcmp(name + strlen(name) - 6, "_total"),
			    "counter %s", name);
		families++;
	}
	cr_assert_geq(families, 40);
	cr_assert_eq(metric(&m, "evring_build_info", -1), 1);
	cr_assert(strstr(m.text, "loops=\"2\""));
	cr_assert_gt(metric(&m, "process_open_fds", -1), 0);
	cr_assert_gt(metric(&m, "process_resident_memory_bytes", -1), 0);
	cr_assert_eq(metric(&m, "evring_listeners", 0), 2, "echo and stats");
	cr_assert_eq(metric(&m, "evring_listeners", 1), 2);
	cr_assert_gt(total(&m, "evring_mail_rx_total"), 0,
		     "the counters came through the mailboxes");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

BACKEND_TEST(group, stats_listens_on_loopback_unless_told)
{
	const char *argv[] = { "--threads", "2", "-s", "stats/tcp:0", NULL };
	char buf[256];
	struct srv s;
	int fd, n;

	cr_assert_eq(srv_start(&s, backend, 2, argv), 0);
	cr_assert_eq(s.nls, 2);
	/* 127.0.0.1 and ::1, nothing else */
	cr_assert_neq(srv_port(&s, "stats", AF_INET), 0);
	cr_assert_neq(srv_port(&s, "stats", AF_INET6), 0);
	fd = tcp_connect(AF_INET, srv_port(&s, "stats", AF_INET));
	cr_assert_geq(fd, 0);
	write_all(fd, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n", 34);
	n = (int)read_to_eof(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	cr_assert(!strncmp(buf, "HTTP/1.1 404", 12), "%s", buf);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

/* ---- examples/everycore: a custom server on a loop group ---- */

BACKEND_TEST(group, everycore_serves_from_every_loop)
{
	char path[512], line[64];
	const char *dir = getenv("EVRING_BUILD");
	const char *argv[] = { path, "0", NULL };
	bool seen[2] = { false, false };
	struct srv s;

	cpu_set_t cpus;

	/* it runs a loop per CPU: two at least to see two */
	if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0 &&
	    CPU_COUNT(&cpus) < 2)
		cr_skip_test("one CPU: everycore runs one loop");
	snprintf(path, sizeof(path), "%s/examples/everycore",
		 dir && *dir ? dir : "build");
	setenv("EVRING_BACKEND", backend, 1);
	cr_assert_eq(srv_spawn(&s, 1, argv), 0);
	unsetenv("EVRING_BACKEND");
	cr_assert_str_eq(s.backend, backend);
	for (int i = 0; i < 64 && !(seen[0] && seen[1]); i++) {
		int fd =
		    tcp_connect(AF_INET, srv_port(&s, "everycore", AF_INET));
		unsigned loop = 9;

		cr_assert_geq(fd, 0);
		cr_assert_eq(read_exact(fd, line, 8), 8);
		cr_assert_eq(sscanf(line, "loop %u", &loop), 1);
		cr_assert_lt(loop, 2);
		seen[loop] = true;
		cr_assert_eq(xfer(fd, "hi", 2, line, 2, true, 5000), 0);
		cr_assert_eq(memcmp(line, "HI", 2), 0);
		close(fd);
	}
	cr_assert(seen[0] && seen[1], "one loop served every connection");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}
