/* SPDX-License-Identifier: MIT */
/*
 * evring_bench.c - a load generator built on evring's own core.
 *
 *	evring-bench echo    [-c CONNS] [-s SIZE] [-p DEPTH] [-d SECS] HOST:PORT
 *	evring-bench rate    -r MSGS_PER_SEC [-c CONNS] [-s SIZE] HOST:PORT
 *	evring-bench connect [-c CONCURRENCY] [--request TEXT] HOST:PORT
 *	evring-bench idle    -c CONNS [-d SECS] HOST:PORT
 *
 * echo: CONNS connections each keep DEPTH messages of SIZE bytes in flight
 * (closed loop); every echoed byte is checked against what was sent.
 * rate: open loop at a fixed total rate; latency is measured from the time
 * each message was due to be sent, not from when it was sent, so a stalled
 * server cannot hide its stall (coordinated omission, corrected as wrk2
 * does). connect: connection churn (connect, optional request, read to EOF,
 * close), in connections per second. idle: open CONNS connections and hold
 * them (memory per idle connection is measured on the server).
 *
 * The generator must not be the bottleneck it measures: messages are sent
 * as slices of one shared pattern buffer (no copy), many connections'
 * sends leave in one ring submission, receives are multishot into a pool
 * sized to the load. Results: operations/s, MB/s, latency percentiles from
 * a log-linear histogram, errors by kind, client CPU per operation
 * (getrusage) and, with --server-pid, the server's CPU per operation (from
 * /proc/PID/task/ * /schedstat, in nanoseconds). A progress line per second
 * goes to a terminal; --json prints one JSON object instead of the table.
 *
 * Targets must be on loopback unless --allow-remote; every run is bounded
 * (warm-up plus duration, at most an hour).
 */
#include "evring.h"
#include "hist.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define PERIOD	  4096 /* the pattern repeats every PERIOD bytes */
#define RATE_RING 4096 /* messages in flight per connection, rate mode */
#define MAX_SECS  3600
#define TICK_MS	  1

enum mode { M_ECHO, M_RATE, M_CONNECT, M_IDLE, M_UDP };
enum phase { P_WARMUP, P_MEASURE, P_DONE };

enum err_kind {
	E_REFUSED,
	E_RESET,
	E_TIMEOUT,
	E_MISMATCH,
	E_SHORT,
	E_OVERLOAD,
	E_LOST,
	E_OTHER,
	E__COUNT,
};

static const char *const err_names[E__COUNT] = {
	[E_REFUSED] = "refused", [E_RESET] = "reset",
	[E_TIMEOUT] = "timeout", [E_MISMATCH] = "mismatch",
	[E_SHORT] = "short",	 [E_OVERLOAD] = "overload",
	[E_LOST] = "lost",	 [E_OTHER] = "other",
};

static struct opts {
	enum mode mode;
	const char *target;
	uint32_t conns, size, depth, sources;
	double duration, warmup, rate;
	const char *request;
	int server_pid;
	bool json, allow_remote, quiet;
	const char *backend;
} o = {
	.conns = 50,
	.size = 64,
	.depth = 1,
	.duration = 10,
	.warmup = 1,
	.sources = 1,
};

static struct run {
	struct evr_loop *loop;
	struct evr_connector *cn;
	struct sockaddr_storage dst;
	socklen_t dstlen;
	struct evr_buf *pat;
	enum phase phase;
	uint64_t t_start, t_measure, t_end; /* ns */
	uint64_t ops, bytes, errors[E__COUNT];
	uint64_t last_ops, last_print; /* for the progress line */
	struct hist hist;
	struct rusage ru0;
	uint64_t srv_cpu0;
	struct evr_timer tick, second;
	struct evr_conn **conns; /* rate and idle modes */
	uint32_t nconns, started, connected;
	uint64_t rate_next;	/* ns: next message due, rate mode */
	uint64_t rate_interval; /* ns between messages (all connections) */
	uint32_t rate_rr;	/* next connection to send on */
	struct evr_udp *udp;	/* udp mode */
	struct uslot {
		uint32_t gen;
		bool due;      /* answered: the next leaves at the flush */
		uint64_t sent; /* ns */
	} * uslots;
	uint32_t *udue, nudue; /* answered slots, in order */
	struct evr_timer uflush;
	bool tty;
} R;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fail(const char *fmt, ...) EVR_PRINTF(1, 2);
static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "evring-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(2);
}

static enum err_kind err_kind(int err)
{
	switch (-err) {
	case ECONNREFUSED:
		return E_REFUSED;
	case ECONNRESET:
	case EPIPE:
		return E_RESET;
	case ETIMEDOUT:
		return E_TIMEOUT;
	case EPROTO:
		return E_MISMATCH;
	default:
		return E_OTHER;
	}
}

static void count_error(enum err_kind k)
{
	if (R.phase == P_MEASURE)
		R.errors[k]++;
}

/* ---- server CPU from /proc ---- */

static uint64_t server_cpu_ns(int pid)
{
	char path[64];
	struct dirent *de;
	uint64_t total = 0;
	DIR *d;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char p[320];
		unsigned long long ns;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/%d/task/%s/schedstat", pid,
			 de->d_name);
		f = fopen(p, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &ns) == 1)
			total += ns;
		fclose(f);
	}
	closedir(d);
	return total;
}

static uint64_t rusage_us(const struct rusage *ru)
{
	return (uint64_t)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) *
		   1000000u +
	       (uint64_t)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec);
}

/* ---- connections ---- */

static struct evr_proto proto; /* filled in main() for the mode */

/* connect mode */
struct churn_st {
	uint64_t t0;
	uint64_t got;
};

static void connect_one(void)
{
	struct sockaddr_in src = { .sin_family = AF_INET };
	struct evr_conn *c;
	uint32_t k = R.started++ % o.sources;
	int err;

	if (R.phase == P_DONE)
		return;
	if (o.sources > 1 && R.dst.ss_family == AF_INET) {
		/* 127.1.0.1, 127.1.0.2, ...: each source has its own ports */
		src.sin_addr.s_addr =
		    htonl((127u << 24) | (1u << 16) | (k + 1));
		err = evr_connect(R.cn, (struct sockaddr *)&R.dst, R.dstlen,
				  (struct sockaddr *)&src, sizeof(src), &c);
	} else {
		err = evr_connect(R.cn, (struct sockaddr *)&R.dst, R.dstlen,
				  NULL, 0, &c);
	}
	if (err < 0) {
		count_error(err_kind(err));
		if (R.phase == P_WARMUP && err != -EADDRNOTAVAIL)
			fail("connect %s: %s", o.target, strerror(-err));
		return;
	}
	if (o.mode == M_CONNECT)
		((struct churn_st *)evr_conn_state(c))->t0 = now_ns();
}

/* echo and rate: per-connection state; ts is a ring of send times */
struct msg_st {
	uint32_t slot; /* index in R.conns, rate and idle modes */
	uint32_t head, tail;
	uint64_t tx_off, rx_off;
	uint32_t rx_msg; /* bytes of the current message received */
	uint32_t ring;	 /* ts entries */
	uint64_t ts[];
};

static void send_msg(struct evr_conn *c, uint64_t due)
{
	struct msg_st *st = evr_conn_state(c);

	if (st->head - st->tail == st->ring) {
		count_error(E_OVERLOAD);
		return;
	}
	if (evr_send_ref(c, R.pat, st->tx_off % PERIOD, o.size) < 0)
		return;
	st->ts[st->head++ % st->ring] = due;
	st->tx_off += o.size;
}

static void msg_connect(struct evr_conn *c)
{
	struct msg_st *st = evr_conn_state(c);

	st->ring = o.mode == M_RATE ? RATE_RING : o.depth;
	R.connected++;
	if (o.mode != M_ECHO) {
		st->slot = R.nconns;
		R.conns[R.nconns++] = c;
		return;
	}
	for (uint32_t i = 0; i < o.depth; i++)
		send_msg(c, now_ns());
}

/* Check a received chunk against the pattern at its stream offset. */
static bool verify(const struct msg_st *st, const char *p, size_t n)
{
	const char *pat = R.pat->data;
	uint64_t off = st->rx_off;

	while (n) {
		size_t at = off % PERIOD;
		size_t run = PERIOD + o.size - at;

		if (run > n)
			run = n;
		if (memcmp(p, pat + at, run))
			return false;
		p += run;
		n -= run;
		off += run;
	}
	return true;
}

static void msg_data(struct evr_conn *c, struct evr_buf *b)
{
	struct msg_st *st = evr_conn_state(c);
	uint64_t t = 0;

	if (!verify(st, b->data, b->len)) {
		count_error(E_MISMATCH);
		evr_abort(c, -EPROTO);
		return;
	}
	st->rx_off += b->len;
	st->rx_msg += b->len;
	while (st->rx_msg >= o.size) {
		st->rx_msg -= o.size;
		if (st->tail == st->head) { /* more back than was sent */
			count_error(E_MISMATCH);
			evr_abort(c, -EPROTO);
			return;
		}
		if (!t)
			t = now_ns();
		uint64_t sent = st->ts[st->tail++ % st->ring];
		if (R.phase == P_MEASURE) {
			R.ops++;
			R.bytes += o.size;
			hist_add(&R.hist, t > sent ? t - sent : 0);
		}
		if (o.mode == M_ECHO && R.phase != P_DONE)
			send_msg(c, t);
	}
}

static void slot_remove(struct evr_conn *c)
{
	struct msg_st *st = evr_conn_state(c);

	if (o.mode == M_ECHO || st->slot >= R.nconns || R.conns[st->slot] != c)
		return;
	/* move the last one into the hole */
	R.conns[st->slot] = R.conns[--R.nconns];
	((struct msg_st *)evr_conn_state(R.conns[st->slot]))->slot = st->slot;
}

static void msg_close(struct evr_conn *c, int err)
{
	slot_remove(c);
	if (R.phase == P_DONE)
		return;
	count_error(err ? err_kind(err) : E_SHORT);
	connect_one(); /* keep the load at CONNS connections */
}

static void churn_connect(struct evr_conn *c)
{
	if (o.request)
		evr_send_copy(c, o.request, strlen(o.request));
}

static void churn_data(struct evr_conn *c, struct evr_buf *b)
{
	struct churn_st *st = evr_conn_state(c);

	st->got += b->len;
}

static void churn_close(struct evr_conn *c, int err)
{
	struct churn_st *st = evr_conn_state(c);

	if (R.phase == P_MEASURE) {
		if (err)
			R.errors[err_kind(err)]++;
		else if (!st->got)
			R.errors[E_SHORT]++;
		else {
			R.ops++;
			R.bytes += st->got;
			hist_add(&R.hist, now_ns() - st->t0);
		}
	}
	if (R.phase != P_DONE)
		connect_one();
}

/*
 * udp mode: -c datagrams in flight, one per slot. A datagram carries its
 * slot and generation in its first 8 bytes, the pattern after them; an
 * answer for the current generation completes the slot, which sends the
 * next; a slot unanswered for UDP_TIMEOUT_MS counts a loss and sends again
 * (an answer that comes later is ignored).
 *
 * The next datagram leaves after the batch of answers, not from within
 * on_datagram: sent from there to the server that just answered, it would
 * be a reply, and the core's reply-loop rule drops the echo of our own
 * reply when the server's port is outside the ephemeral range (7, 10007).
 */
#define UDP_TIMEOUT_MS 200
#define UDP_HDR	       8

static void udp_send_slot(uint32_t i)
{
	struct evr_buf *b = evr_buf_new(R.loop, o.size);
	uint32_t hdr[2] = { i, R.uslots[i].gen };

	if (!b)
		return;
	memcpy(b->data + UDP_HDR, R.pat->data, o.size - UDP_HDR);
	memcpy(b->data, hdr, UDP_HDR);
	b->len = o.size;
	R.uslots[i].sent = now_ns();
	if (evr_udp_send(R.udp, b, (struct sockaddr *)&R.dst, R.dstlen) < 0)
		count_error(E_OTHER);
	evr_buf_unref(b);
}

static void udp_flush(struct evr_timer *t)
{
	(void)t;
	for (uint32_t k = 0; k < R.nudue; k++) {
		uint32_t i = R.udue[k];

		R.uslots[i].due = false;
		if (R.phase != P_DONE)
			udp_send_slot(i);
	}
	R.nudue = 0;
}

static void udp_datagram(struct evr_udp *u, struct evr_buf *b,
			 const struct sockaddr *peer, socklen_t peerlen)
{
	uint32_t hdr[2];
	uint64_t t = now_ns();
	struct uslot *s;

	(void)u, (void)peer, (void)peerlen;
	if (b->len != o.size) {
		count_error(E_SHORT);
		return;
	}
	memcpy(hdr, b->data, UDP_HDR);
	if (hdr[0] >= o.conns || hdr[1] != R.uslots[hdr[0]].gen ||
	    R.uslots[hdr[0]].due)
		return; /* an answer to a datagram given up on */
	if (memcmp(b->data + UDP_HDR, R.pat->data, o.size - UDP_HDR)) {
		count_error(E_MISMATCH);
		return;
	}
	s = &R.uslots[hdr[0]];
	if (R.phase == P_MEASURE) {
		R.ops++;
		R.bytes += o.size;
		hist_add(&R.hist, t - s->sent);
	}
	s->gen++;
	s->due = true;
	R.udue[R.nudue++] = hdr[0];
	/* a timer due now runs after this iteration's completions */
	if (!evr_timer_active(&R.uflush))
		evr_timer_start(R.loop, &R.uflush, 0);
}

static void udp_check_lost(struct evr_timer *t)
{
	uint64_t now = now_ns();

	if (R.phase == P_DONE)
		return;
	for (uint32_t i = 0; i < o.conns; i++) {
		if (R.uslots[i].due ||
		    now - R.uslots[i].sent < UDP_TIMEOUT_MS * 1000000ull)
			continue;
		count_error(E_LOST);
		R.uslots[i].gen++;
		udp_send_slot(i);
	}
	evr_timer_start(R.loop, t, 10);
}

static void udp_start_all(void)
{
	struct evr_udp_cfg cfg = {
		.proto = &proto,
		.name = "bench",
		/* the answers come from the server's port, maybe 7, and as
		 * fast as it can: the client's guard lets them all in. The
		 * rate is high rather than EVR_UDP_UNLIMITED: an unlimited
		 * guard still gives a source on a port outside the ephemeral
		 * range a bucket of one token, so answers from a server on
		 * 7 or 10007 would pass at one per millisecond at most. */
		.guard = { .allow_reflector_ports = true,
			   .rate = 4000000,
			   .burst = 4000000,
			   .amplification = EVR_UDP_UNLIMITED },
	};
	struct sockaddr_storage ss;
	socklen_t len;
	int err;

	if (o.size < UDP_HDR || o.size > 65507)
		fail("udp mode: -s must be 8 to 65507 bytes");
	evr_addr_parse(R.dst.ss_family == AF_INET ? "0.0.0.0" : "::", 0, &ss,
		       &len);
	err = evr_udp_bind(R.loop, (struct sockaddr *)&ss, len, &cfg, &R.udp);
	if (err < 0)
		fail("udp socket: %s", strerror(-err));
	R.uslots = calloc(o.conns, sizeof(*R.uslots));
	R.udue = calloc(o.conns, sizeof(*R.udue));
	if (!R.uslots || !R.udue)
		fail("out of memory");
	R.connected = o.conns;
	for (uint32_t i = 0; i < o.conns; i++)
		udp_send_slot(i);
	evr_timer_init(&R.uflush, udp_flush);
	evr_timer_init(&R.tick, udp_check_lost);
	evr_timer_start(R.loop, &R.tick, 10);
}

/* ---- phases and reports ---- */

static void print_report(void)
{
	double secs = (double)(R.t_end - R.t_measure) / 1e9;
	struct rusage ru;
	uint64_t cli_us, srv_ns;
	double ops_s = secs > 0 ? (double)R.ops / secs : 0;
	double mb_s = secs > 0 ? (double)R.bytes / secs / 1e6 : 0;
	double cli_per = 0, srv_per = -1;
	static const double qs[] = { 0.5, 0.9, 0.99, 0.999 };
	uint64_t errs = 0;

	getrusage(RUSAGE_SELF, &ru);
	cli_us = rusage_us(&ru) - rusage_us(&R.ru0);
	srv_ns = o.server_pid ? server_cpu_ns(o.server_pid) - R.srv_cpu0 : 0;
	if (R.ops) {
		cli_per = (double)cli_us / (double)R.ops;
		if (o.server_pid)
			srv_per = (double)srv_ns / 1e3 / (double)R.ops;
	}
	for (int i = 0; i < E__COUNT; i++)
		errs += R.errors[i];
	if (o.json) {
		printf("{\"mode\":\"%s\",\"target\":\"%s\",\"backend\":\"%s\","
		       "\"conns\":%u,\"size\":%u,\"depth\":%u,\"rate\":%.0f,"
		       "\"secs\":%.3f,\"ops\":%llu,\"ops_per_s\":%.1f,"
		       "\"mb_per_s\":%.3f,\"lat_us\":{",
		       o.mode == M_ECHO	     ? "echo"
		       : o.mode == M_RATE    ? "rate"
		       : o.mode == M_CONNECT ? "connect"
		       : o.mode == M_UDP     ? "udp"
					     : "idle",
		       o.target, evr_loop_backend(R.loop), o.conns, o.size,
		       o.depth, o.rate, secs, (unsigned long long)R.ops, ops_s,
		       mb_s);
		printf("\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
		       "\"max\":%.1f,\"mean\":%.1f,\"stddev\":%.1f},",
		       hist_quantile(&R.hist, 0.5) / 1e3,
		       hist_quantile(&R.hist, 0.9) / 1e3,
		       hist_quantile(&R.hist, 0.99) / 1e3,
		       hist_quantile(&R.hist, 0.999) / 1e3, R.hist.max / 1e3,
		       hist_mean(&R.hist) / 1e3, hist_stddev(&R.hist) / 1e3);
		printf("\"client_cpu_us_per_op\":%.3f,", cli_per);
		if (srv_per >= 0)
			printf("\"server_cpu_us_per_op\":%.3f,", srv_per);
		else
			printf("\"server_cpu_us_per_op\":null,");
		printf("\"connected\":%u,\"errors\":{", R.connected);
		for (int i = 0; i < E__COUNT; i++)
			printf("%s\"%s\":%llu", i ? "," : "", err_names[i],
			       (unsigned long long)R.errors[i]);
		printf("}}\n");
		return;
	}
	printf("target      %s (%s client)\n", o.target,
	       evr_loop_backend(R.loop));
	printf("load        %u conns, %u-byte messages, depth %u%s\n", o.conns,
	       o.size, o.depth, o.mode == M_RATE ? " (open loop)" : "");
	printf("measured    %.2f s after %.2f s warm-up\n", secs, o.warmup);
	printf("throughput  %.1f ops/s, %.2f MB/s (%llu ops)\n", ops_s, mb_s,
	       (unsigned long long)R.ops);
	printf("latency     ");
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		printf("p%g %.1f us  ", qs[i] * 100,
		       hist_quantile(&R.hist, qs[i]) / 1e3);
	printf("max %.1f us\n", R.hist.max / 1e3);
	printf("            mean %.1f us  sd %.1f us\n",
	       hist_mean(&R.hist) / 1e3, hist_stddev(&R.hist) / 1e3);
	printf("client CPU  %.3f us/op\n", cli_per);
	if (srv_per >= 0)
		printf("server CPU  %.3f us/op (pid %d)\n", srv_per,
		       o.server_pid);
	printf("errors      ");
	if (!errs)
		printf("none");
	for (int i = 0; i < E__COUNT; i++)
		if (R.errors[i])
			printf("%s %llu  ", err_names[i],
			       (unsigned long long)R.errors[i]);
	printf("\n");
}

static void on_second(struct evr_timer *t)
{
	uint64_t now = now_ns();

	if (R.phase == P_DONE)
		return;
	if (R.phase == P_WARMUP &&
	    now >= R.t_start + (uint64_t)(o.warmup * 1e9)) {
		R.phase = P_MEASURE;
		R.t_measure = now;
		R.ops = R.bytes = R.last_ops = 0;
		memset(R.errors, 0, sizeof(R.errors));
		hist_reset(&R.hist);
		getrusage(RUSAGE_SELF, &R.ru0);
		R.srv_cpu0 = server_cpu_ns(o.server_pid);
	} else if (R.phase == P_MEASURE &&
		   now >= R.t_measure + (uint64_t)(o.duration * 1e9)) {
		R.t_end = now;
		R.phase = P_DONE;
		print_report();
		fflush(stdout);
		evr_loop_stop(R.loop);
		return;
	}
	if (R.tty && !o.quiet && R.phase == P_MEASURE &&
	    now - R.last_print >= 1000000000u) {
		uint64_t errs = 0;

		for (int i = 0; i < E__COUNT; i++)
			errs += R.errors[i];
		if (R.last_print)
			fprintf(stderr,
				"\r[%5.1fs] %10.0f ops/s  p99 %8.1f us  conns "
				"%u  errors %llu   ",
				(double)(now - R.t_measure) / 1e9,
				(double)(R.ops - R.last_ops) * 1e9 /
				    (double)(now - R.last_print),
				hist_quantile(&R.hist, 0.99) / 1e3, R.connected,
				(unsigned long long)errs);
		R.last_ops = R.ops;
		R.last_print = now;
	}
	/* fine-grained so that the phases end on time */
	evr_timer_start(R.loop, t, 10);
}

/* rate mode: send what is due, round robin over the connections */
static void on_tick(struct evr_timer *t)
{
	uint64_t now = now_ns();

	if (R.phase == P_DONE)
		return;
	while (R.nconns && R.rate_next <= now) {
		struct evr_conn *c = R.conns[R.rate_rr++ % R.nconns];

		send_msg(c, R.rate_next);
		R.rate_next += R.rate_interval;
	}
	if (!R.nconns)
		R.rate_next = now;
	evr_timer_start(R.loop, t, TICK_MS);
}

static void on_signal(struct evr_loop *l, int signo, void *arg)
{
	(void)signo, (void)arg;
	if (R.phase != P_DONE) {
		R.t_end = now_ns();
		if (R.phase == P_WARMUP)
			R.t_measure = R.t_end;
		R.phase = P_DONE;
		print_report();
	}
	evr_loop_stop(l);
}

/* ---- command line ---- */

static void usage(void)
{
	puts("usage: evring-bench MODE [options] HOST:PORT\n"
	     "modes:\n"
	     "  echo     closed loop: -c conns, each with -p messages of -s "
	     "bytes in flight\n"
	     "  rate     open loop at -r messages/s over -c conns "
	     "(latency from the due time)\n"
	     "  connect  churn: -c concurrent connect, [--request], read to "
	     "EOF, close\n"
	     "  idle     open -c connections and hold them for -d seconds\n"
	     "  udp      -c datagrams of -s bytes in flight; lost ones (no "
	     "answer in\n"
	     "           200 ms) are counted and sent again\n"
	     "options:\n"
	     "  -c N            connections (default 50)\n"
	     "  -s BYTES        message size (default 64)\n"
	     "  -p N            pipeline depth (default 1)\n"
	     "  -r N            messages per second, rate mode\n"
	     "  -d SECS         measured duration (default 10)\n"
	     "  -w SECS         warm-up, not measured (default 1)\n"
	     "  --request TEXT  connect mode: send TEXT after connecting\n"
	     "  --sources N     spread connections over N source addresses "
	     "127.1.0.x\n"
	     "  --server-pid P  report the server's CPU per operation\n"
	     "  --backend NAME  the generator's own backend\n"
	     "  --json          one JSON object instead of the table\n"
	     "  --allow-remote  allow a target outside loopback\n"
	     "  -q              no progress line");
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	const struct sockaddr_in6 *in6 = (const void *)ss;

	return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
	       (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
		in6->sin6_addr.s6_addr[12] == 127);
}

static void parse_target(const char *t)
{
	char host[128];
	const char *colon = strrchr(t, ':');
	long port;

	if (!colon || (size_t)(colon - t) >= sizeof(host))
		fail("target \"%s\": expected HOST:PORT", t);
	memcpy(host, t, (size_t)(colon - t));
	host[colon - t] = '\0';
	port = strtol(colon + 1, NULL, 10);
	if (port <= 0 || port > 65535 ||
	    evr_addr_parse(host, (uint16_t)port, &R.dst, &R.dstlen) < 0)
		fail("target \"%s\": expected a numeric address and a port", t);
	if (!is_loopback(&R.dst) && !o.allow_remote)
		fail("target %s is not on loopback; pass --allow-remote to "
		     "load another machine",
		     t);
}

static double parse_num(const char *opt, const char *s, double min, double max)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || v < min || v > max)
		fail("%s \"%s\": expected a number from %g to %g", opt, s, min,
		     max);
	return v;
}

static void parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "request", required_argument, NULL, 'R' },
		{ "sources", required_argument, NULL, 'S' },
		{ "server-pid", required_argument, NULL, 'P' },
		{ "backend", required_argument, NULL, 'B' },
		{ "json", no_argument, NULL, 'J' },
		{ "allow-remote", no_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	if (argc < 2)
		usage(), exit(2);
	if (!strcmp(argv[1], "echo"))
		o.mode = M_ECHO;
	else if (!strcmp(argv[1], "rate"))
		o.mode = M_RATE;
	else if (!strcmp(argv[1], "connect"))
		o.mode = M_CONNECT;
	else if (!strcmp(argv[1], "idle"))
		o.mode = M_IDLE;
	else if (!strcmp(argv[1], "udp"))
		o.mode = M_UDP;
	else if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		usage(), exit(0);
	else
		fail("unknown mode \"%s\" (echo, rate, connect, idle, udp)",
		     argv[1]);
	optind = 2;
	while ((ch = getopt_long(argc, argv, "c:s:p:r:d:w:qh", lo, NULL)) !=
	       -1) {
		switch (ch) {
		case 'c':
			o.conns = (uint32_t)parse_num("-c", optarg, 1, 1e6);
			break;
		case 's':
			o.size = (uint32_t)parse_num("-s", optarg, 1, 1 << 20);
			break;
		case 'p':
			o.depth = (uint32_t)parse_num("-p", optarg, 1, 1024);
			break;
		case 'r':
			o.rate = parse_num("-r", optarg, 1, 1e8);
			break;
		case 'd':
			o.duration = parse_num("-d", optarg, 0.1, MAX_SECS);
			break;
		case 'w':
			o.warmup = parse_num("-w", optarg, 0, 600);
			break;
		case 'R':
			o.request = optarg;
			break;
		case 'S':
			o.sources =
			    (uint32_t)parse_num("--sources", optarg, 1, 65000);
			break;
		case 'P':
			o.server_pid =
			    (int)parse_num("--server-pid", optarg, 1, 1 << 22);
			break;
		case 'B':
			o.backend = optarg;
			break;
		case 'J':
			o.json = true;
			break;
		case 'A':
			o.allow_remote = true;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'h':
			usage();
			exit(0);
		default:
			fail("bad command line (see --help)");
		}
	}
	if (optind != argc - 1)
		fail("expected one target HOST:PORT (see --help)");
	o.target = argv[optind];
	if (o.mode == M_RATE && !o.rate)
		fail("rate mode needs -r MESSAGES_PER_SECOND");
	parse_target(o.target);
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && o.conns + 64 > rl.rlim_cur)
		fail("%u connections need more descriptors than the limit of "
		     "%llu: run several generators",
		     o.conns, (unsigned long long)rl.rlim_cur);
}

static void setup_proto(void)
{
	proto.name = "bench";
	switch (o.mode) {
	case M_ECHO:
	case M_RATE:
	case M_IDLE:
		proto.state_size =
		    sizeof(struct msg_st) +
		    (o.mode == M_RATE ? RATE_RING : o.depth) * sizeof(uint64_t);
		proto.on_connect = msg_connect;
		proto.on_data = msg_data;
		proto.on_close = msg_close;
		break;
	case M_UDP:
		proto.on_datagram = udp_datagram;
		break;
	case M_CONNECT:
		proto.state_size = sizeof(struct churn_st);
		proto.on_connect = churn_connect;
		proto.on_data = churn_data;
		proto.on_close = churn_close;
		break;
	}
}

static uint32_t pow2_at_least(uint64_t v)
{
	uint32_t p = 1;

	while (p < v && p < (1u << 31))
		p <<= 1;
	return p;
}

/*
 * The receive pool, sized to the load. Every receive takes the next
 * buffer of the ring, so a pool far larger than what is in flight spreads
 * small messages over megabytes: each lands in a cold cache line and TLB
 * entry (4096 x 16 KiB cost 5-8 % more client CPU per 64-byte echo than
 * 128 x 2 KiB at c=50). Echo buffers hold what one connection has in
 * flight, from 2 to 16 KiB (the other modes keep 16 KiB); twice the
 * buffers that all connections' messages in flight fill cover the
 * receives of one iteration, so that the pool does not run dry.
 */
static void size_pool(struct evr_loop_opts *lo)
{
	uint64_t flight = (uint64_t)o.depth * o.size, per = 1, n;
	uint32_t sz = 16384;

	if (o.mode == M_ECHO) {
		sz = pow2_at_least(flight);
		sz = sz < 2048 ? 2048 : sz > 16384 ? 16384 : sz;
		per = (flight + sz - 1) / sz;
	}
	n = pow2_at_least(2 * (uint64_t)o.conns * per);
	lo->buf_count = (uint32_t)(n < 64 ? 64 : n > 4096 ? 4096 : n);
	lo->buf_size = sz;
}

static void make_pattern(void)
{
	R.pat = evr_buf_new(R.loop, PERIOD + o.size);
	if (!R.pat)
		fail("out of memory");
	for (uint32_t i = 0; i < PERIOD + o.size; i++)
		R.pat->data[i] =
		    (char)('a' + ((i % PERIOD) * 7 + (i % PERIOD) / 26) % 26);
	R.pat->len = PERIOD + o.size;
}

/* connect mode: each connection's clock starts when it is started */
static void churn_start_all(void)
{
	for (uint32_t i = 0; i < o.conns; i++)
		connect_one();
}

int main(int argc, char **argv)
{
	struct evr_loop_opts lo;
	struct evr_listen_cfg cfg = { .proto = &proto, .name = "bench" };
	int err;

	signal(SIGPIPE, SIG_IGN);
	evr_log_set_ident("evring-bench");
	/* (a run stopped mid-flight drops a few datagrams: not news) */
	evr_log_set_level(EVR_LOG_ERR);
	parse_args(argc, argv);
	raise_nofile();
	setup_proto();
	evr_loop_opts_init(&lo);
	lo.backend = o.backend;
	size_pool(&lo);
	err = evr_loop_new(&R.loop, &lo);
	if (err < 0)
		fail("cannot create a loop: %s", strerror(-err));
	if (evr_connector_new(R.loop, &cfg, &R.cn) < 0)
		fail("cannot create a connector");
	make_pattern();
	R.conns = calloc(o.conns, sizeof(*R.conns));
	if (!R.conns)
		fail("out of memory");
	hist_reset(&R.hist);
	R.tty = isatty(STDERR_FILENO);
	R.t_start = now_ns();
	evr_signal_add(R.loop, SIGINT, on_signal, NULL);
	evr_signal_add(R.loop, SIGTERM, on_signal, NULL);
	evr_timer_init(&R.second, on_second);
	evr_timer_start(R.loop, &R.second, 10);
	if (o.mode == M_RATE) {
		R.rate_interval = (uint64_t)(1e9 / o.rate);
		if (!R.rate_interval)
			R.rate_interval = 1;
		R.rate_next = now_ns();
		evr_timer_init(&R.tick, on_tick);
		evr_timer_start(R.loop, &R.tick, TICK_MS);
	}
	if (o.mode == M_CONNECT)
		churn_start_all();
	else if (o.mode == M_UDP)
		udp_start_all();
	else
		for (uint32_t i = 0; i < o.conns; i++)
			connect_one();
	err = evr_loop_run(R.loop);
	if (R.tty && !o.quiet)
		fprintf(stderr, "\n");
	evr_buf_unref(R.pat);
	free(R.uslots);
	free(R.udue);
	evr_connector_free(R.cn);
	evr_loop_free(R.loop);
	free(R.conns);
	return err < 0 ? 1 : 0;
}
