/* SPDX-License-Identifier: MIT */
/*
 * load.c - the load of each evring-bench mode; see bench.h.
 *
 * Layout: connections (shared by every TCP mode), echo and rate and idle
 * (one module: messages of the pattern, checked when they come back),
 * connect (churn), udp (slots of datagrams), then the start of the run.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- connections ---- */

static struct evr_proto proto; /* load_proto() fills it for the mode */

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
		evr_send_copy(c, o.request, o.request_len);
}

static void churn_data(struct evr_conn *c, struct evr_buf *b)
{
	struct churn_st *st = evr_conn_state(c);

	st->got += b->len;
	if (o.close_after && st->got >= o.close_after)
		evr_close(c); /* a server that does not close: echo */
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

/*
 * Losses while answers come at a steady rate look like a per-source token
 * bucket (evringd answers 100 datagrams a second per source address by
 * default, --udp-rate), not like a server out of breath, whose rate moves.
 * Steady: whole seconds within 20 % of each other; a run too short to tell
 * counts as steady only when slow.
 */
bool load_udp_rate_limited(double ops_s)
{
	uint64_t lost = R.errors[E_LOST];

	if (o.mode != M_UDP || !R.ops || lost * 10 < R.ops + lost ||
	    ops_s > 100000)
		return false;
	if (R.nsecs >= 2)
		return R.sec_max <= R.sec_min + R.sec_min / 5 + 2;
	return ops_s < 10000;
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

/* ---- the start ---- */

const struct evr_proto *load_proto(void)
{
	struct evr_proto *p = &proto;

	p->name = "bench";
	switch (o.mode) {
	case M_ECHO:
	case M_RATE:
	case M_IDLE:
		p->state_size =
		    sizeof(struct msg_st) +
		    (o.mode == M_RATE ? RATE_RING : o.depth) * sizeof(uint64_t);
		p->on_connect = msg_connect;
		p->on_data = msg_data;
		p->on_close = msg_close;
		break;
	case M_UDP:
		p->on_datagram = udp_datagram;
		break;
	case M_CONNECT:
		p->state_size = sizeof(struct churn_st);
		p->on_connect = churn_connect;
		p->on_data = churn_data;
		p->on_close = churn_close;
		break;
	}
	return p;
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

void load_start(void)
{
	make_pattern();
	R.conns = calloc(o.conns, sizeof(*R.conns));
	if (!R.conns)
		fail("out of memory");
	R.srv_rss0 = proc_rss_kib(o.server_pid);
	if (o.mode == M_RATE) {
		R.rate_interval = (uint64_t)(1e9 / o.rate);
		if (!R.rate_interval)
			R.rate_interval = 1;
		R.rate_next = now_ns();
		evr_timer_init(&R.tick, on_tick);
		evr_timer_start(R.loop, &R.tick, TICK_MS);
	}
	if (o.mode == M_UDP)
		udp_start_all();
	else
		for (uint32_t i = 0; i < o.conns; i++)
			connect_one();
}
