/* SPDX-License-Identifier: MIT */
/*
 * test_stress.c - correctness under attack: every module at once, under
 * every adverse condition at once, on both backends.
 *
 * One loop in the test process (loopsrv) serves, on 127.0.0.1:
 *   jitter     echo through a module that, at random, sends the buffer
 *              whole, in two slices or as a copy, pauses and resumes
 *              reading (from on_accept, on_data and timers) and holds
 *              receive buffers for a while;
 *   echo       the echo module (zero copy);
 *   lineback   the line framer: each line comes back as "[line]\r\n";
 *   directory  the directory module (a line protocol on the framer);
 *   http       the http module, requests pipelined;
 *   daytime    the daytime module;
 *   burst      downloads of 33-128 KiB asked for by a line: every one
 *              takes its queue past wq_high, however fast the machine;
 *              "ABORT" makes it evr_abort() with a download under way;
 *   UDP echo   the echo module's datagrams, some too big for a buffer;
 * with a receive pool of 4 or 8 small buffers (ENOBUFS), a completion
 * queue of 4 entries (CQ overflow under io_uring), small write-queue marks
 * and loop budget (backpressure), and injected short reads, short sends,
 * EINTR, a pool that looks empty (and, under epoll, failed accepts).
 *
 * A poll() loop in the test drives rounds of clients. Each writes at random
 * cut points with random pauses; some pause their reading for a while
 * (with a small receive buffer, so that the server must stop reading
 * them), some half-close, some reset (SO_LINGER 0) mid-stream or close
 * with input unread, some end the way the protocol ends (QUIT,
 * Connection: close, a 400, an over-long line, a NUL); many short echo
 * connections churn accepts and closes. In each round one http client
 * sends a request body after the server has answered it and closed
 * (plan_late_body).
 *
 * Checks. Every byte a client receives is the byte expected: echo, what it
 * sent; lineback, directory and http, the replies its requests call for
 * (only the Date field of http is free); daytime, the line of a second
 * between its connect and its EOF; UDP, each datagram back exactly once.
 * A connection ends as it should: with an EOF where the server closes,
 * never a reset; a client that reads is never dropped (wq_overflows 0).
 * After every round the loop is idle (no connection, every pool buffer
 * back, nothing queued, no heap buffer: server_wait_idle), the process's
 * descriptors are back at their baseline, every connection made was
 * accepted once and every datagram too big was counted. At the end the
 * RSS has grown by less than RSS_SLACK_KIB since the first round, and each
 * condition above was really met (faults fired, the pool ran dry, queues
 * went past wq_high, the modules paused, held, sliced, copied, aborted).
 *
 * Everything random is drawn from one seed per run, printed first;
 * EVRING_STRESS_SEED=N replays its plan (the kernel's interleaving
 * differs, the plan does not). Work is bounded: at most ROUNDS_MAX rounds
 * of a bounded number of clients and bytes. EVRING_STRESS_SECONDS (default
 * 12) only stops starting new rounds early; it never decides pass or fail,
 * and nothing here measures speed. EVRING_STRESS_ROUNDS changes
 * ROUNDS_MAX (a longer soak), EVRING_STRESS_VERBOSE=1 prints each round,
 * EVRING_STRESS_LATE_BODY=0 leaves the late body out.
 */
#include "harness.h"
#include "loopsrv.h"

#include "../core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum {
	ROUNDS_MAX = 8,	    /* rounds per backend, unless the time is up */
	ROUNDS_MIN = 2,	    /* the RSS check compares round 1 with the last */
	SECONDS = 12,	    /* no round starts after this (per backend) */
	STALL_MS = 20000,   /* a client that moves no byte this long: a hang */
	FD_WAIT_MS = 5000,  /* io_uring closes the kernel may be finishing */
	START_SPREAD = 300, /* ms over which a round's clients connect */
	LB_MAX_LINE = 4096, /* lineback's max_line */
	UDP_BUF = 4096,	    /* UDP pool buffers: datagrams past it dropped */
	DIR_MAX_LINE = 8192,
	HTTP_HEAD_MAX = 8192, /* EVR__HTTP_HEAD_MAX, protocols/http.h */
	/*
	 * RSS growth allowed between the end of round 1 and the end of the
	 * last round, when the loop is idle both times. Round 1 has warmed
	 * every cache (buffer free lists, the allocator's arenas, thread
	 * stacks). Without a leak a later round can add no more than the
	 * allocator keeps of a higher peak of live heap than round 1 had,
	 * and that peak is bounded: the server's queues, at most 56
	 * connections of wq_high (32 KiB) plus a pool's worth of overshoot
	 * (8 x 4 KiB), 3.5 MiB, plus two burst downloads (256 KiB), and
	 * the clients' plans (scripts and expected replies), under 4 MiB.
	 * 8 MiB is above all of them together.
	 * Leaked connections and buffers are caught exactly, every round,
	 * by server_wait_idle; leaked memory by ASan (make check), where
	 * this check is off: ASan's quarantine keeps freed memory on
	 * purpose.
	 */
	RSS_SLACK_KIB = 8192,
};

/* In an HTTP client's expected replies: any printable byte (the Date);
 * http never sends it. Other clients compare every byte as it is. */
#define WILD '\x01'

/* ------------------------------------------------------------------ */
/* Randomness: splitmix64, and a byte pattern addressed by offset      */
/* ------------------------------------------------------------------ */

#define GOLDEN 0x9e3779b97f4a7c15ull

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	return mix64(r->s += GOLDEN);
}

static uint32_t below(struct rng *r, uint32_t n)
{
	return n ? (uint32_t)(rnd(r) % n) : 0;
}

/* lo..hi, both included */
static uint32_t range(struct rng *r, uint32_t lo, uint32_t hi)
{
	return lo + below(r, hi - lo + 1);
}

static bool chance(struct rng *r, unsigned pct)
{
	return below(r, 100) < pct;
}

/* Bytes off..off+n of the endless pattern of seed: any slice can be made
 * again, so an echo client keeps no copy of what it sent. */
static void pattern(uint64_t seed, size_t off, char *dst, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t pos = off + i;
		uint64_t w = mix64(seed + (pos >> 3) * GOLDEN);

		for (unsigned k = pos & 7; k < 8 && i < n; k++, i++)
			dst[i] = (char)(w >> (k * 8));
	}
}

/* ------------------------------------------------------------------ */
/* Server side: the jitter, lineback and burst modules (loop thread)  */
/* ------------------------------------------------------------------ */

static uint64_t srv_seed;    /* set before the loop starts */
static uint32_t srv_wq_high; /* the listeners' wq_high */
static uint64_t srv_accepts; /* loop thread */
static atomic_uint jit_pauses, jit_holds, jit_slices, jit_copies;
static atomic_uint jit_pause_calls; /* every evr_conn_pause() */
static atomic_uint over_high;	    /* queues seen past wq_high */
static atomic_uint burst_aborts;

struct jitter {
	struct evr_conn *c;
	struct evr_timer t; /* ends the pause and the hold */
	struct evr_buf *held;
	struct rng r;
	bool paused;
};

static void jitter_timer(struct evr_timer *t)
{
	struct jitter *j = EVR_CONTAINER_OF(t, struct jitter, t);

	if (j->held) {
		evr_buf_unref(j->held);
		j->held = NULL;
	}
	if (j->paused) {
		j->paused = false;
		evr_conn_resume(j->c);
	}
}

/* Pause reading for 1-20 ms (a proxy whose other side is busy). */
static void jitter_pause(struct jitter *j)
{
	j->paused = true;
	evr_conn_pause(j->c);
	atomic_fetch_add(&jit_pauses, 1);
	atomic_fetch_add(&jit_pause_calls, 1);
	if (!evr_timer_active(&j->t))
		evr_timer_start(evr_conn_loop(j->c), &j->t,
				range(&j->r, 1, 20));
}

/*
 * Half of the connections get a small socket send buffer: on loopback the
 * kernel's buffers (grown to megabytes) would absorb all a slow reader
 * leaves unread, and the write queue would never reach wq_high.
 */
static void small_sndbuf(struct evr_conn *c, struct rng *r)
{
	int size = 4096;

	if (chance(r, 50))
		setsockopt(evr_conn_fd(c), SOL_SOCKET, SO_SNDBUF, &size,
			   sizeof(size));
}

static int jitter_accept(struct evr_conn *c)
{
	struct jitter *j = evr_conn_state(c);

	j->c = c;
	j->r.s = srv_seed ^ mix64(++srv_accepts);
	evr_timer_init(&j->t, jitter_timer);
	small_sndbuf(c, &j->r);
	if (chance(&j->r, 10))
		jitter_pause(j);
	return 0;
}

static int jitter_send(struct jitter *j, struct evr_buf *b)
{
	uint32_t k, p = below(&j->r, 100);
	int err;

	if (p < 50 || b->len < 2)
		return evr_send(j->c, b);
	if (p < 75) {
		atomic_fetch_add(&jit_slices, 1);
		k = range(&j->r, 1, b->len - 1);
		err = evr_send_ref(j->c, b, 0, k);
		return err ? err : evr_send_ref(j->c, b, k, b->len - k);
	}
	atomic_fetch_add(&jit_copies, 1);
	return evr_send_copy(j->c, b->data, b->len);
}

static void jitter_data(struct evr_conn *c, struct evr_buf *b)
{
	struct jitter *j = evr_conn_state(c);
	int err = jitter_send(j, b);
	uint32_t p = below(&j->r, 100);

	if (err < 0) {
		evr_abort(c, err);
		return;
	}
	if (evr_conn_queued(c) > srv_wq_high) /* the core stops reading */
		atomic_fetch_add(&over_high, 1);
	if (p < 15 && !j->paused) {
		jitter_pause(j);
	} else if (p < 25 && !j->paused) {
		evr_conn_pause(c); /* and at once again */
		atomic_fetch_add(&jit_pause_calls, 1);
		evr_conn_resume(c);
	}
	if (chance(&j->r, 10) && !j->held) {
		j->held = evr_buf_ref(b);
		atomic_fetch_add(&jit_holds, 1);
		if (!evr_timer_active(&j->t))
			evr_timer_start(evr_conn_loop(c), &j->t,
					range(&j->r, 1, 20));
	}
}

static void jitter_close(struct evr_conn *c, int err)
{
	struct jitter *j = evr_conn_state(c);

	(void)err;
	evr_timer_stop(evr_conn_loop(c), &j->t);
	if (j->held)
		evr_buf_unref(j->held);
	j->held = NULL;
}

static const struct evr_proto jitter_proto = {
	.name = "jitter",
	.state_size = sizeof(struct jitter),
	.on_accept = jitter_accept,
	.on_data = jitter_data,
	.on_close = jitter_close,
};

struct lineback {
	struct evr_line lf;
};

static const struct evr_line_cfg lineback_cfg = { .max_line = LB_MAX_LINE };

/* "[line]\r\n", the line itself a slice of the buffer it lies in. */
static int lineback_line(struct evr_conn *c, struct evr_buf *b, char *line,
			 size_t len)
{
	int err = evr_send_copy(c, "[", 1);

	if (!err && len)
		err = evr_send_ref(c, b, (size_t)(line - b->data), len);
	if (!err)
		err = evr_send_copy(c, "]\r\n", 3);
	if (err < 0) {
		evr_abort(c, err);
		return -1;
	}
	return 0;
}

static int lineback_accept(struct evr_conn *c)
{
	struct lineback *lb = evr_conn_state(c);
	struct rng r = { srv_seed ^ mix64(++srv_accepts) };

	small_sndbuf(c, &r);
	evr_line_init(&lb->lf, c, &lineback_cfg, lineback_line);
	return 0;
}

static void lineback_data(struct evr_conn *c, struct evr_buf *b)
{
	struct lineback *lb = evr_conn_state(c);

	evr_line_feed(&lb->lf, b);
}

static void lineback_close(struct evr_conn *c, int err)
{
	struct lineback *lb = evr_conn_state(c);

	(void)err;
	evr_line_fini(&lb->lf);
}

static const struct evr_proto lineback_proto = {
	.name = "lineback",
	.state_size = sizeof(struct lineback),
	.on_accept = lineback_accept,
	.on_data = lineback_data,
	.on_close = lineback_close,
};

/*
 * burst: the line "N S" is answered with N bytes of the pattern of S, a
 * download: one evr_send() takes the queue past wq_high whatever the
 * speed of the machine, so the core must stop reading (and later resume)
 * on every such connection. "ABORT" aborts the connection (evr_abort)
 * with what is queued and in flight.
 */
enum { BURST_MAX = 128 << 10 };

static int burst_line(struct evr_conn *c, struct evr_buf *b, char *line,
		      size_t len)
{
	unsigned long long seed;
	struct evr_buf *out;
	unsigned n;
	int err;

	(void)b;
	line[len] = '\0';
	if (!strcmp(line, "ABORT")) { /* with a download queued, maybe sent */
		atomic_fetch_add(&burst_aborts, 1);
		evr_abort(c, -ECONNABORTED);
		return -1;
	}
	if (sscanf(line, "%u %llu", &n, &seed) != 2 || !n || n > BURST_MAX) {
		evr_abort(c, -EPROTO);
		return -1;
	}
	out = evr_buf_new(evr_conn_loop(c), n);
	if (!out) {
		evr_abort(c, -ENOMEM);
		return -1;
	}
	pattern(seed, 0, out->data, n);
	out->len = n;
	err = evr_send(c, out);
	evr_buf_unref(out);
	if (err < 0) {
		evr_abort(c, err);
		return -1;
	}
	if (evr_conn_queued(c) > srv_wq_high)
		atomic_fetch_add(&over_high, 1);
	return 0;
}

static int burst_accept(struct evr_conn *c)
{
	struct lineback *lb = evr_conn_state(c);

	evr_line_init(&lb->lf, c, NULL, burst_line);
	return 0;
}

static const struct evr_proto burst_proto = {
	.name = "burst",
	.state_size = sizeof(struct lineback),
	.on_accept = burst_accept,
	.on_data = lineback_data,
	.on_close = lineback_close,
};

/* ------------------------------------------------------------------ */
/* Client side: plans                                                  */
/* ------------------------------------------------------------------ */

enum kind {
	K_JITTER,
	K_ECHO,
	K_LINEBACK,
	K_DIRECTORY,
	K_HTTP,
	K_DAYTIME,
	K_BURST,
	K_UDP,
	K_CHURN,
	K__COUNT
};

static const char *const kind_name[K__COUNT] = {
	[K_JITTER] = "jitter",	   [K_ECHO] = "echo",
	[K_LINEBACK] = "lineback", [K_DIRECTORY] = "directory",
	[K_HTTP] = "http",	   [K_DAYTIME] = "daytime",
	[K_BURST] = "burst",	   [K_UDP] = "udp",
	[K_CHURN] = "churn",
};

/* Clients of each kind per round: lo..hi. */
static const struct {
	uint8_t lo, hi;
} per_round[K__COUNT] = {
	[K_JITTER] = { 5, 9 },	  [K_ECHO] = { 2, 3 }, [K_LINEBACK] = { 3, 5 },
	[K_DIRECTORY] = { 2, 4 }, [K_HTTP] = { 3, 6 }, [K_DAYTIME] = { 2, 4 },
	[K_BURST] = { 2, 3 },	  [K_UDP] = { 1, 3 },  [K_CHURN] = { 6, 14 },
};

enum { CLIENTS_MAX = 56 };

/* The first http client of each round sends a body after the server
 * closed (plan_late_body); EVRING_STRESS_LATE_BODY=0 leaves it out. */
static bool late_body_on = true;
static bool verbose; /* EVRING_STRESS_VERBOSE=1 */

struct bytes {
	char *p;
	size_t len, cap;
};

static void put(struct bytes *b, const void *p, size_t n)
{
	if (!n)
		return; /* (b->p may still be NULL) */
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 256;
		b->p = realloc(b->p, b->cap);
		cr_assert(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void puts_(struct bytes *b, const char *s)
{
	put(b, s, strlen(s));
}

static void putf(struct bytes *b, const char *fmt, ...) EVR_PRINTF(2, 3);
static void putf(struct bytes *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	cr_assert(n >= 0 && (size_t)n < sizeof(tmp));
	put(b, tmp, (size_t)n);
}

static void put_n(struct bytes *b, char c, size_t n)
{
	char chunk[256];

	memset(chunk, c, sizeof(chunk));
	for (size_t k; n; n -= k) {
		k = n < sizeof(chunk) ? n : sizeof(chunk);
		put(b, chunk, k);
	}
}

struct client {
	enum kind kind;
	int id;
	uint16_t port;
	uint64_t seed; /* the plan, the pattern, the pacing */
	struct rng r;  /* pacing, drawn as the client runs */
	char desc[96]; /* the plan in words, for failures */
	/* What it sends: the pattern of seed (echo, daytime's junk) or out. */
	struct bytes out;
	size_t out_len, sent;
	/* What it expects: the pattern (echo) or exp (http's with WILD). */
	struct bytes exp;
	size_t exp_len, got;
	size_t reset_at; /* reset once this much is sent; SIZE_MAX: never */
	bool drop;	 /* that "reset" is a close(2) with the echo unread */
	bool half;	 /* shutdown(SHUT_WR) after the last byte */
	bool want_eof;	 /* the server closes after the last expected byte */
	bool slow;	 /* pauses its reading now and then */
	/* The server closes on its own (the protocol's end), maybe before it
	 * has read all we send: our sends may then fail (its reset answers
	 * them), what we expect must arrive all the same, then an EOF. */
	bool closes_first;
	bool wclosed;	 /* a send failed so: nothing more is sent */
	size_t pause_at; /* a slow reader pauses once it has got this much */
	/* the first hold_at bytes out, then a pause of hold_ms */
	size_t hold_at;
	uint32_t hold_ms;
	bool held;
	bool read_after_send; /* reads nothing before it has sent all */
	/* Once this much is sent the server may end the connection at any
	 * moment (it aborts): what came before must be right; SIZE_MAX:
	 * never. */
	size_t may_end_at;
	/* burst: where each request starts in out, where its reply ends in
	 * exp; no more than window requests unanswered (within wq_max) */
	uint32_t nreq;
	size_t req_off[5], rep_end[5];
	/* daytime: the line, and the time before the connect */
	char line[128];
	size_t line_len;
	time_t t0;
	/* UDP: datagrams, how many may be unanswered, their lengths */
	uint32_t dgrams, window, next_seq, answered;
	uint32_t big, in_flight; /* too big for a buffer; unanswered */
	uint16_t dlen[32];
	bool seen[32];
	/* the run */
	int fd;
	int64_t start_at, write_at, read_at, last_progress;
	int64_t max_gap, end_at; /* for EVRING_STRESS_VERBOSE */
	bool started, connected, done, reset, failed;
	char why[640];
};

static bool is_echo(const struct client *c)
{
	return c->kind == K_JITTER || c->kind == K_ECHO || c->kind == K_CHURN;
}

/* A write of 1-64 bytes, 65-4096 or 4097-65536: random cut points. */
static size_t cut_size(struct rng *r)
{
	uint32_t p = below(r, 100);

	if (p < 35)
		return range(r, 1, 64);
	if (p < 75)
		return range(r, 65, 4096);
	return range(r, 4097, 65536);
}

/* How a TCP client ends, from p in 0..99: reset below reset_pct (at a
 * random point of what it sends), half-close below half_pct, else close
 * once it has every byte it expects. */
static void plan_end(struct client *c, struct rng *r, unsigned reset_pct,
		     unsigned half_pct)
{
	uint32_t p = below(r, 100);

	if (!is_echo(c) && !c->slow && chance(r, 25)) {
		c->slow = true;
		c->pause_at = range(r, 0, 16 << 10);
		strcat(c->desc, ", slow reader");
	}

	if (p < reset_pct) {
		c->reset_at = below(r, (uint32_t)c->out_len + 1);
		strcat(c->desc, ", reset");
	} else if (p < half_pct) {
		c->half = c->want_eof = true;
		strcat(c->desc, ", half-close");
	} else {
		strcat(c->desc, ", close");
	}
}

static void plan_echo(struct client *c, struct rng *r, bool big_and_slow)
{
	uint32_t p = below(r, 100);
	size_t n;

	if (big_and_slow)
		n = range(r, 256 << 10, 768 << 10);
	else if (p < 55)
		n = range(r, 1, 8 << 10);
	else if (p < 88)
		n = range(r, 8 << 10, 128 << 10);
	else
		n = range(r, 128 << 10, 1 << 20);
	c->slow = big_and_slow || chance(r, 25);
	c->pause_at = range(r, 0, 64 << 10);
	c->out_len = c->exp_len = n;
	snprintf(c->desc, sizeof(c->desc), "%zu bytes%s", n,
		 c->slow ? ", slow reader" : "");
	plan_end(c, r, 15, 55);
}

/*
 * Lines of random bytes (no NUL, no LF; CRs anywhere), ended by
 * LF or CRLF; each comes back as "[line]" with one CR before the LF
 * dropped (line.h). The last line may be over-long or hold a NUL: an ERR
 * line, then the server closes.
 */
static void plan_lineback(struct client *c, struct rng *r)
{
	uint32_t lines = range(r, 1, 50), p;
	char buf[LB_MAX_LINE + 2];

	for (uint32_t i = 0; i < lines; i++) {
		size_t len, raw;

		p = below(r, 100);
		len = p < 65   ? range(r, 0, 60)
		      : p < 93 ? range(r, 61, 1500)
			       : range(r, 1501, LB_MAX_LINE);
		for (size_t k = 0; k < len; k++) {
			do
				buf[k] = (char)range(r, 1, 255);
			while (buf[k] == '\n');
		}
		if (len && chance(r, 10))
			buf[len - 1] = '\r';
		put(&c->out, buf, len);
		raw = len;
		if (chance(r, 50)) {
			buf[raw++] = '\r';
			puts_(&c->out, "\r\n");
		} else {
			puts_(&c->out, "\n");
		}
		if (raw && buf[raw - 1] == '\r')
			raw--;
		puts_(&c->exp, "[");
		put(&c->exp, buf, raw);
		puts_(&c->exp, "]\r\n");
	}
	snprintf(c->desc, sizeof(c->desc), "%u lines", lines);
	p = below(r, 100);
	if (p < 10) {
		put_n(&c->out, 'x',
		      range(r, LB_MAX_LINE + 2, LB_MAX_LINE + 2000));
		puts_(&c->out, "\n");
		putf(&c->exp, "ERR line too long (more than %d bytes)\r\n",
		     LB_MAX_LINE);
		c->want_eof = c->closes_first = true;
		strcat(c->desc, ", then an over-long line");
	} else if (p < 15) {
		put(&c->out, "a\0b\n", 4);
		puts_(&c->exp, "ERR line contains a NUL byte\r\n");
		c->want_eof = c->closes_first = true;
		strcat(c->desc, ", then a NUL");
	}
	c->out_len = c->out.len;
	c->exp_len = c->exp.len;
	if (!c->want_eof)
		plan_end(c, r, 12, 55);
}

/* Words separated by 1-3 blanks, with blanks around the line, sometimes. */
static void dir_cmd(struct client *c, struct rng *r, const char *words)
{
	static const char *const blanks[] = { " ", "\t", "  ", " \t " };

	if (chance(r, 20))
		puts_(&c->out, blanks[below(r, 4)]);
	for (const char *w = words; *w; w++) {
		if (*w == ' ')
			puts_(&c->out, blanks[below(r, 4)]);
		else
			put(&c->out, w, 1);
	}
	if (chance(r, 20))
		puts_(&c->out, blanks[below(r, 4)]);
	puts_(&c->out, chance(r, 50) ? "\r\n" : "\n");
}

/* A command word in random case: the directory ignores case. */
static const char *dir_word(struct rng *r, const char *w, char *buf)
{
	size_t i;

	for (i = 0; w[i]; i++)
		buf[i] = chance(r, 30) ? (char)(w[i] | 0x20) : w[i];
	buf[i] = '\0';
	return buf;
}

/*
 * Commands whose replies depend on this connection alone: names of its
 * own ("r<round>c<id>n<k>"), registered for the session only (so a reset
 * or a close takes them away and the table never fills).
 */
static void plan_directory(struct client *c, struct rng *r, int round)
{
	char cmd[256], w[16], names[25][32];
	uint16_t ports[25];
	bool alive[25], udp[25];
	uint32_t n = range(r, 1, 25), nnames = 0, p;

	for (uint32_t k = 0; k < n; k++) {
		uint32_t a = nnames ? below(r, nnames) : 0;

		p = below(r, 100);
		if (p < 30 || (p < 62 && !nnames)) {
			char *nm = names[nnames];

			snprintf(nm, 32, "r%dc%dn%u", round, c->id, k);
			ports[nnames] = (uint16_t)range(r, 1, 65535);
			udp[nnames] = chance(r, 30);
			alive[nnames] = true;
			snprintf(cmd, sizeof(cmd), "%s %s %u %s session",
				 dir_word(r, "REGISTER", w), nm, ports[nnames],
				 udp[nnames] ? "udp" : "tcp");
			dir_cmd(c, r, cmd);
			putf(&c->exp, "OK registered %s %u/%s session\r\n", nm,
			     ports[nnames], udp[nnames] ? "udp" : "tcp");
			nnames++;
		} else if (p < 45 && alive[a]) {
			snprintf(cmd, sizeof(cmd), "%s %s",
				 dir_word(r, "LOOKUP", w), names[a]);
			dir_cmd(c, r, cmd);
			putf(&c->exp, "OK %s %u/%s\r\n", names[a], ports[a],
			     udp[a] ? "udp" : "tcp");
		} else if (p < 55 && alive[a]) {
			snprintf(cmd, sizeof(cmd), "%s %s",
				 dir_word(r, "UNREGISTER", w), names[a]);
			dir_cmd(c, r, cmd);
			putf(&c->exp, "OK unregistered %s (1 entries)\r\n",
			     names[a]);
			alive[a] = false;
		} else if (p < 62) {
			snprintf(cmd, sizeof(cmd), "LOOKUP %s", names[a]);
			if (alive[a]) /* never registered */
				strcat(cmd, "x");
			dir_cmd(c, r, cmd);
			putf(&c->exp, "ERR no such name \"%s\"\r\n", cmd + 7);
		} else if (p < 70) {
			/* a line longer than a pool buffer: assembled */
			put_n(&c->out, chance(r, 50) ? ' ' : '\t',
			      range(r, 0, 7000));
			dir_cmd(c, r, dir_word(r, "HELP", w));
			puts_(&c->exp,
			      "REGISTER name port [tcp|udp] [session]\r\n"
			      "UNREGISTER name\r\nLOOKUP name\r\nLIST\r\n"
			      "AUTH token\r\nQUIT\r\nOK\r\n");
		} else if (p < 76) {
			snprintf(cmd, sizeof(cmd), "FROB%u", k);
			dir_cmd(c, r, cmd);
			putf(
			    &c->exp,
			    "ERR unknown command \"%s\" (REGISTER, UNREGISTER, "
			    "LOOKUP, LIST, AUTH, HELP, QUIT)\r\n",
			    cmd);
		} else if (p < 80) {
			dir_cmd(c, r, "LOOKUP a b c d e f");
			puts_(&c->exp, "ERR too many words\r\n");
		} else if (p < 85) {
			puts_(&c->out, chance(r, 50) ? "\r\n" : " \t\n");
		} else {
			snprintf(cmd, sizeof(cmd), "REGISTER r%dc%dz%u 0",
				 round, c->id, k);
			dir_cmd(c, r, cmd);
			puts_(&c->exp,
			      "ERR bad port \"0\" (1-65535, decimal)\r\n");
		}
	}
	snprintf(c->desc, sizeof(c->desc), "%u commands", n);
	p = below(r, 100);
	if (p < 15) {
		dir_cmd(c, r, dir_word(r, "QUIT", w));
		puts_(&c->exp, "OK bye\r\n");
		c->want_eof = c->closes_first = true;
		strcat(c->desc, ", QUIT");
	} else if (p < 22) {
		put_n(&c->out, 'y', range(r, DIR_MAX_LINE + 2, 9500));
		puts_(&c->out, "\n");
		putf(&c->exp, "ERR line too long (more than %d bytes)\r\n",
		     DIR_MAX_LINE);
		c->want_eof = c->closes_first = true;
		strcat(c->desc, ", then an over-long line");
	}
	c->out_len = c->out.len;
	c->exp_len = c->exp.len;
	if (!c->want_eof)
		plan_end(c, r, 12, 50);
}

/* HTTP replies (protocols/http.c): status line, fixed fields, Date. */
enum http_conn_hdr { H_NONE, H_CLOSE, H_KEEP_ALIVE };

static void http_reply(struct bytes *e, int status, bool head,
		       enum http_conn_hdr ch)
{
	static const struct {
		int status;
		const char *line, *extra, *body;
	} replies[] = {
		{ 200, "200 OK", "", "Hello, World!" },
		{ 400, "400 Bad Request", "", "Bad Request\n" },
		{ 404, "404 Not Found", "", "Not Found\n" },
		{ 405, "405 Method Not Allowed", "Allow: GET, HEAD\r\n",
		  "Method Not Allowed\n" },
		{ 431, "431 Request Header Fields Too Large", "",
		  "Request Header Fields Too Large\n" },
	};
	size_t i = 0;

	while (replies[i].status != status)
		i++;
	putf(e, "HTTP/1.1 %s\r\nServer: evring\r\nDate: ", replies[i].line);
	put_n(e, WILD, 29);
	putf(e,
	     "\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s%s\r\n",
	     strlen(replies[i].body), replies[i].extra,
	     ch == H_CLOSE	  ? "Connection: close\r\n"
	     : ch == H_KEEP_ALIVE ? "Connection: keep-alive\r\n"
				  : "");
	if (!head)
		puts_(e, replies[i].body);
}

/*
 * One request of kind t (the last four close the connection), its reply
 * expected; lines end in CRLF or LF; sometimes an empty line before it,
 * sometimes a padding field that makes the head span pool buffers. With
 * head, the padding makes the head exactly that long: 431 and a close
 * past HTTP_HEAD_MAX.
 */
static void http_request(struct client *c, struct rng *r, unsigned t,
			 size_t head)
{
	static const struct {
		const char *line, *fields;
		int status;
		bool head;
		enum http_conn_hdr ch;
		const char *body;
	} reqs[] = {
		{ "GET / HTTP/1.1", "Host: a", 200, false, H_NONE, "" },
		{ "HEAD / HTTP/1.1", "Host: a", 200, true, H_NONE, "" },
		{ "GET /missing HTTP/1.1", "Host: a", 404, false, H_NONE, "" },
		{ "PUT / HTTP/1.1", "Host: a", 405, false, H_NONE, "" },
		{ "GET /?q=1 HTTP/1.1", "Host: a", 200, false, H_NONE, "" },
		{ "GET http://a/ HTTP/1.1", "Host: a", 200, false, H_NONE, "" },
		{ "GET / HTTP/1.0", "Connection: keep-alive", 200, false,
		  H_KEEP_ALIVE, "" },
		{ "HEAD /x HTTP/1.0", "Connection: Keep-Alive", 404, true,
		  H_KEEP_ALIVE, "" },
		/* the last request of a connection */
		{ "GET / HTTP/1.1", "Host: a\nConnection: close", 200, false,
		  H_CLOSE, "" },
		{ "GET / HTTP/1.0", "User-Agent: s", 200, false, H_CLOSE, "" },
		{ "GET / HTTP/1.1", "Host: a\nBad Field", 400, false, H_CLOSE,
		  "" },
		{ "GET / HTTP/1.1", "Host: a\nContent-Length: 5", 200, false,
		  H_CLOSE, "hello" },
	};
	const char *eol = chance(r, 20) ? "\n" : "\r\n";
	size_t start = c->out.len;

	if (!head && chance(r, 10))
		puts_(&c->out, eol); /* RFC 9112 §2.2: ignored */
	putf(&c->out, "%s%s", reqs[t].line, eol);
	for (const char *f = reqs[t].fields; *f; f++) {
		if (*f == '\n')
			puts_(&c->out, eol);
		else
			put(&c->out, f, 1);
	}
	puts_(&c->out, eol);
	if (head) { /* "X-Pad: ", the padding, its eol, the empty line */
		puts_(&c->out, "X-Pad: ");
		put_n(&c->out, 'p',
		      head - (c->out.len - start) - 2 * strlen(eol));
		puts_(&c->out, eol);
	} else if (chance(r, 30)) {
		puts_(&c->out, "X-Pad: ");
		put_n(&c->out, 'p', range(r, 0, 3000));
		puts_(&c->out, eol);
	}
	puts_(&c->out, eol);
	puts_(&c->out, reqs[t].body);
	if (head > HTTP_HEAD_MAX)
		http_reply(&c->exp, 431, false, H_CLOSE);
	else
		http_reply(&c->exp, reqs[t].status, reqs[t].head, reqs[t].ch);
}

/*
 * A client that pipelines 100-200 requests, the last with a body, and
 * sends the body 300 ms after the head, reading nothing until it has sent
 * it all (an upload, then the download). Its replies outgrow its receive
 * buffer: the rest wait in the server's socket when the server, which
 * never reads bodies, has answered and closed. The body then comes in
 * after the close; unless the close lingers, the kernel answers it with
 * a reset that destroys the replies not yet delivered. A server that
 * takes its time may linger by chance; a fast one must do it on purpose.
 */
static void plan_late_body(struct client *c, struct rng *r)
{
	uint32_t n = range(r, 100, 200), body = range(r, 1, 8192);

	for (uint32_t k = 0; k < n; k++)
		http_request(c, r, below(r, 8),
			     chance(r, 4) ? HTTP_HEAD_MAX : 0);
	putf(&c->out, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: %u\r\n\r\n",
	     body);
	http_reply(&c->exp, 200, false, H_CLOSE);
	c->hold_at = c->out.len;
	c->hold_ms = 300;
	put_n(&c->out, 'b', body);
	c->read_after_send = true;
	c->want_eof = c->closes_first = true;
	c->out_len = c->out.len;
	c->exp_len = c->exp.len;
	snprintf(c->desc, sizeof(c->desc),
		 "%u requests, then a body of %u sent 300 ms late, read after",
		 n + 1, body);
}

static void plan_http(struct client *c, struct rng *r, bool late_body)
{
	uint32_t n = range(r, 1, 30), p;

	if (late_body) {
		plan_late_body(c, r);
		return;
	}
	for (uint32_t k = 0; k < n; k++)
		http_request(c, r, below(r, 8),
			     chance(r, 4) ? HTTP_HEAD_MAX : 0);
	snprintf(c->desc, sizeof(c->desc), "%u requests", n);
	p = below(r, 100);
	if (p < 30) {
		unsigned t = 8 + p % 4;

		http_request(c, r, t, 0);
		c->want_eof = c->closes_first = true;
		strcat(c->desc, t == 8	  ? ", then Connection: close"
				: t == 9  ? ", then HTTP/1.0"
				: t == 10 ? ", then a 400"
					  : ", then a body");
	} else if (p < 36) {
		http_request(c, r, 0, HTTP_HEAD_MAX + 1);
		c->want_eof = c->closes_first = true;
		strcat(c->desc, ", then a head 1 byte too long");
	}
	c->out_len = c->out.len;
	c->exp_len = c->exp.len;
	if (!c->want_eof)
		plan_end(c, r, 15, 55);
}

/* Read the line, maybe after sending junk the server never reads (its
 * close then lingers), maybe half-closed; or reset after the junk (while
 * the close lingers, maybe), or at once. */
static void plan_daytime(struct client *c, struct rng *r)
{
	uint32_t p = below(r, 100);

	c->want_eof = c->closes_first = true;
	if (p < 40) {
		strcpy(c->desc, "reads");
	} else if (p < 80) {
		c->out_len = range(r, 1, 3000);
		c->half = p >= 65;
		snprintf(c->desc, sizeof(c->desc), "sends %zu bytes%s",
			 c->out_len, c->half ? ", half-close" : "");
	} else if (p < 90) {
		c->out_len = c->reset_at = range(r, 1, 3000);
		c->want_eof = false;
		snprintf(c->desc, sizeof(c->desc), "sends %zu bytes, resets",
			 c->out_len);
	} else {
		c->reset_at = 0;
		c->want_eof = false;
		strcpy(c->desc, "resets at once");
	}
}

/* Downloads of 33-128 KiB, two requests at most in flight, mostly read
 * slowly; then, for the first of a round, an ABORT. */
static void plan_burst(struct client *c, struct rng *r, bool abort_it)
{
	c->nreq = range(r, 1, 4);
	c->window = 2;
	c->slow = chance(r, 70);
	c->pause_at = range(r, 0, 64 << 10);
	for (uint32_t k = 0; k < c->nreq; k++) {
		uint32_t n = range(r, 33 << 10, BURST_MAX);
		uint64_t seed = rnd(r);
		size_t at = c->exp.len;

		c->req_off[k] = c->out.len;
		putf(&c->out, "%u %llu\n", n, (unsigned long long)seed);
		put_n(&c->exp, 0, n);
		pattern(seed, 0, c->exp.p + at, n);
		c->rep_end[k] = c->exp.len;
	}
	c->out_len = c->out.len;
	c->exp_len = c->exp.len;
	snprintf(c->desc, sizeof(c->desc), "%u downloads, %zu bytes%s", c->nreq,
		 c->exp_len, c->slow ? ", slow reader" : "");
	if (abort_it) {
		/* one more "request", answered by an abort; sent once the
		 * window allows, so a download is still under way */
		c->req_off[c->nreq] = c->may_end_at = c->out.len;
		c->rep_end[c->nreq++] = c->exp.len;
		puts_(&c->out, "ABORT\n");
		c->out_len = c->out.len;
		c->want_eof = c->closes_first = true;
		strcat(c->desc, ", then ABORT");
		return;
	}
	plan_end(c, r, 10, 55);
}

/* Short echo connections, many of them: accepts and closes under CQ
 * overflow; a third end before reading, by reset or by a plain close. */
static void plan_churn(struct client *c, struct rng *r)
{
	uint32_t p = below(r, 100);

	c->out_len = c->exp_len = range(r, 1, 200);
	snprintf(c->desc, sizeof(c->desc), "%zu bytes", c->out_len);
	if (p < 20) {
		c->reset_at = c->out_len;
		c->drop = true;
		strcat(c->desc, ", close unread");
	} else {
		plan_end(c, r, 20, 60);
	}
}

/*
 * Datagrams of 8-2048 bytes, window at a time; some empty (when one is in
 * flight at a time: it carries no number), one or two larger than a UDP
 * pool buffer, which the server drops and counts (udp_trunc) without
 * answer. Unanswered, they are not in the window: few enough that the
 * server's socket buffer (208 KiB) never overflows, which would lose
 * them before they are counted.
 */
static void plan_udp(struct client *c, struct rng *r)
{
	c->dgrams = range(r, 4, 32);
	c->window = range(r, 1, 4);
	for (uint32_t i = 0; i < c->dgrams; i++) {
		uint32_t p = below(r, 100);

		if (p < 10 && c->window == 1)
			c->dlen[i] = 0;
		else if (p < 18 && c->big < 2)
			c->dlen[i] = (uint16_t)range(r, UDP_BUF + 1, 6000);
		else
			c->dlen[i] = (uint16_t)range(r, 8, 2048);
		c->big += c->dlen[i] > UDP_BUF;
	}
	snprintf(c->desc, sizeof(c->desc),
		 "%u datagrams (%u too big), %u at a time", c->dgrams, c->big,
		 c->window);
}

/* first: the first client of its kind in the round, which makes sure of
 * one thing: the server has to stop reading a jitter client; an http
 * client's body comes after the server closed; burst aborts. */
static void plan(struct client *c, int round, bool first)
{
	struct rng r = { c->seed };

	c->reset_at = c->hold_at = c->may_end_at = SIZE_MAX;
	c->fd = -1;
	c->r.s = mix64(c->seed ^ GOLDEN);
	switch (c->kind) {
	case K_JITTER:
	case K_ECHO:
		plan_echo(c, &r, first && c->kind == K_JITTER);
		break;
	case K_LINEBACK:
		plan_lineback(c, &r);
		break;
	case K_DIRECTORY:
		plan_directory(c, &r, round);
		break;
	case K_HTTP:
		plan_http(c, &r, first && late_body_on);
		break;
	case K_DAYTIME:
		plan_daytime(c, &r);
		break;
	case K_BURST:
		plan_burst(c, &r, first);
		break;
	case K_CHURN:
		plan_churn(c, &r);
		break;
	case K_UDP:
	case K__COUNT:
		plan_udp(c, &r);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Client side: running                                                */
/* ------------------------------------------------------------------ */

static char wbuf[65536], rbuf[65536], ebuf[65536];

/* p[0..n) as a C string literal, cut to fit out. */
static const char *esc(const char *p, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 5 < outlen; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x",
					      ch);
	}
	out[o] = '\0';
	return out;
}

/* A byte moved (or the EOF came): the stall clock starts again. */
static void progress(struct client *c, int64_t now)
{
	if (now - c->last_progress > c->max_gap)
		c->max_gap = now - c->last_progress;
	c->last_progress = now;
}

static void client_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->done = true;
	c->end_at = now_ms();
}

static void fail(struct client *c, const char *fmt, ...) EVR_PRINTF(2, 3);
static void fail(struct client *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->failed)
		return;
	c->failed = true;
	n = snprintf(c->why, sizeof(c->why),
		     "%s #%d (port %u; %s; sent %zu of %zu, got %zu of %zu): ",
		     kind_name[c->kind], c->id, c->port, c->desc, c->sent,
		     c->out_len, c->got, c->exp_len);
	va_start(ap, fmt);
	vsnprintf(c->why + n, sizeof(c->why) - (size_t)n, fmt, ap);
	va_end(ap);
	client_close(c);
}

/* SO_LINGER 0: close(2) sends a reset. A drop closes without it: the
 * kernel resets only if the echo has arrived unread. */
static void client_reset(struct client *c)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (!c->drop)
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	c->reset = true;
	client_close(c);
}

static void client_start(struct client *c, int64_t now)
{
	int type = c->kind == K_UDP ? SOCK_DGRAM : SOCK_STREAM;
	struct sockaddr_storage ss;
	socklen_t len = loopback_addr(AF_INET, c->port, &ss);
	int rcvbuf = c->read_after_send ? 4096 : 65536;

	c->started = true;
	c->last_progress = c->write_at = c->read_at = now;
	c->t0 = time(NULL);
	c->fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		fail(c, "socket: %s", strerror(errno));
		return;
	}
	/* A slow reader's small window makes the server's queue fill. Not
	 * below the loopback MSS (64 KiB): under it, silly-window avoidance
	 * and the persist timer's backoff slow a connection to kilobytes a
	 * second (a round took 76 s once with 4 KiB). The late body's
	 * client needs its replies to outgrow its window, and they are
	 * only tens of KiB: 4 KiB it is. */
	if (c->slow || c->read_after_send)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
			   sizeof(rcvbuf));
	if (connect(c->fd, (struct sockaddr *)&ss, len) < 0) {
		fail(c, "connect: %s", strerror(errno));
		return;
	}
	fcntl(c->fd, F_SETFL, O_NONBLOCK);
	c->connected = true;
}

static bool client_finished(struct client *c)
{
	if (c->kind == K_UDP)
		return c->answered + c->big == c->dgrams &&
		       c->next_seq == c->dgrams;
	return !c->want_eof && c->got == c->exp_len && c->sent == c->out_len;
}

/* How far c may send: all of it, or up to the first request past its
 * window of unanswered ones. */
static size_t send_limit(const struct client *c)
{
	uint32_t a = 0;

	if (!c->nreq)
		return c->out_len;
	while (a < c->nreq && c->rep_end[a] <= c->got)
		a++;
	return a + c->window < c->nreq ? c->req_off[a + c->window] : c->out_len;
}

static void tcp_write(struct client *c, int64_t now)
{
	size_t n = cut_size(&c->r), left = send_limit(c) - c->sent;
	const char *src = wbuf;
	ssize_t w;

	if (send_limit(c) <= c->sent)
		return;
	if (c->reset_at != SIZE_MAX && c->reset_at - c->sent < left)
		left = c->reset_at - c->sent;
	if (!c->held && c->hold_at - c->sent < left)
		left = c->hold_at - c->sent;
	if (n > left)
		n = left;
	if (c->out.p)
		src = c->out.p + c->sent;
	else
		pattern(c->seed, c->sent, wbuf, n);
	w = send(c->fd, src, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w < 0) {
		if (c->closes_first && (errno == EPIPE || errno == ECONNRESET))
			c->wclosed = true;
		else if (errno != EAGAIN && errno != EINTR)
			fail(c, "send: %s", strerror(errno));
		return;
	}
	c->sent += (size_t)w;
	progress(c, now);
	if (chance(&c->r, 15))
		c->write_at = now + range(&c->r, 1, 15);
	if (!c->held && c->sent == c->hold_at) {
		c->held = true;
		c->write_at = now + c->hold_ms;
	}
	if (c->sent == c->out_len && c->half)
		shutdown(c->fd, SHUT_WR);
}

/* The first byte of p[0..n) that differs from what c expects at c->got,
 * or n. */
static size_t mismatch(struct client *c, const char *p, size_t n)
{
	const char *e = c->exp.p + c->got;

	if (is_echo(c))
		pattern(c->seed, c->got, ebuf, n);
	if (c->kind != K_HTTP) { /* no wildcard */
		e = is_echo(c) ? ebuf : e;
		for (size_t i = 0; i < n; i++)
			if (p[i] != e[i])
				return i;
		return n;
	}
	for (size_t i = 0; i < n; i++) {
		bool ok =
		    e[i] == WILD ? p[i] >= 0x20 && p[i] < 0x7f : p[i] == e[i];

		if (!ok)
			return i;
	}
	return n;
}

static void daytime_eof(struct client *c)
{
	time_t t1 = time(NULL);
	char want[128], a[300];

	for (time_t t = c->t0 - 1; t <= t1 + 1; t++) {
		int len = evr_daytime_format(want, sizeof(want), NULL, true, t);

		if (len > 0 && (size_t)len == c->line_len &&
		    !memcmp(want, c->line, c->line_len)) {
			client_close(c);
			return;
		}
	}
	fail(c, "\"%s\" is not the daytime line of a second from %lld to %lld",
	     esc(c->line, c->line_len, a, sizeof(a)), (long long)c->t0,
	     (long long)t1);
}

static void tcp_eof(struct client *c)
{
	if (c->kind == K_DAYTIME)
		daytime_eof(c);
	else if (c->sent >= c->may_end_at)
		client_close(c);
	else if (c->got < c->exp_len)
		fail(c, "EOF before the last byte%s",
		     c->wclosed ? " (a send had failed: the server had reset "
				  "the connection)"
				: "");
	else if (!c->want_eof)
		fail(c, "the server closed a connection it should have kept");
	else
		client_close(c);
}

static void tcp_data(struct client *c, const char *p, size_t n)
{
	char a[200], b[200];
	size_t bad;

	if (c->kind == K_DAYTIME) {
		if (c->line_len + n >= sizeof(c->line)) {
			fail(c, "a daytime line of more than %zu bytes",
			     sizeof(c->line));
			return;
		}
		memcpy(c->line + c->line_len, p, n);
		c->line_len += n;
		return;
	}
	if (n > c->exp_len - c->got) {
		fail(c, "%zu bytes more than expected: \"%s\"",
		     n - (c->exp_len - c->got),
		     esc(p + (c->exp_len - c->got), n - (c->exp_len - c->got),
			 a, 120));
		return;
	}
	bad = mismatch(c, p, n);
	if (bad < n) {
		const char *e = c->exp.p ? c->exp.p + c->got + bad : ebuf + bad;
		size_t elen = c->exp.p ? c->exp_len - c->got - bad : n - bad;

		fail(c, "wrong byte at offset %zu: expected \"%s\", got \"%s\"",
		     c->got + bad, esc(e, elen < 40 ? elen : 40, a, sizeof(a)),
		     esc(p + bad, n - bad < 40 ? n - bad : 40, b, sizeof(b)));
		return;
	}
	c->got += n;
}

static void tcp_read(struct client *c, int64_t now)
{
	ssize_t n = recv(c->fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);

	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		if (c->sent >= c->may_end_at) {
			client_close(c);
			return;
		}
		fail(c, "recv: %s%s", strerror(errno),
		     errno == ECONNRESET ? " (the server reset it)" : "");
		return;
	}
	progress(c, now);
	if (n == 0) {
		tcp_eof(c);
		return;
	}
	tcp_data(c, rbuf, (size_t)n);
	if (c->slow && c->got >= c->pause_at) {
		c->read_at = now + range(&c->r, 20, 200);
		c->pause_at = c->got + range(&c->r, 16 << 10, 256 << 10);
	}
}

/* A datagram: its sequence number (if it has room), then the pattern of
 * (seed, seq). */
static void udp_payload(const struct client *c, uint32_t seq, char *p)
{
	pattern(c->seed + seq, 0, p, c->dlen[seq]);
	if (c->dlen[seq])
		memcpy(p, &seq, sizeof(seq));
}

static void udp_write(struct client *c, int64_t now)
{
	while (c->next_seq < c->dgrams && c->in_flight < c->window) {
		uint32_t seq = c->next_seq;

		udp_payload(c, seq, wbuf);
		if (send(c->fd, wbuf, c->dlen[seq], MSG_DONTWAIT) < 0) {
			if (errno != EAGAIN && errno != EINTR)
				fail(c, "send: %s", strerror(errno));
			return;
		}
		c->next_seq++;
		c->in_flight += c->dlen[seq] <= UDP_BUF;
		c->sent += c->dlen[seq];
		progress(c, now);
		if (chance(&c->r, 20)) {
			c->write_at = now + range(&c->r, 1, 10);
			return;
		}
	}
}

static void udp_read(struct client *c, int64_t now)
{
	ssize_t n = recv(c->fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);
	uint32_t seq;

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			fail(c, "recv: %s", strerror(errno));
		return;
	}
	if (n == 0 && c->window == 1) {
		seq = c->next_seq - 1;
	} else if (n < 4) {
		fail(c, "a datagram of %zd bytes", n);
		return;
	} else {
		memcpy(&seq, rbuf, sizeof(seq));
	}
	if (seq >= c->next_seq || c->seen[seq] || c->dlen[seq] > UDP_BUF) {
		fail(c, "datagram %u: %s", seq,
		     seq >= c->next_seq ? "never sent"
		     : c->seen[seq]	? "answered twice"
					: "answered, but too big for a buffer");
		return;
	}
	udp_payload(c, seq, ebuf);
	if ((size_t)n != c->dlen[seq] || memcmp(rbuf, ebuf, (size_t)n)) {
		fail(c, "datagram %u came back changed (%zd bytes of %u)", seq,
		     n, c->dlen[seq]);
		return;
	}
	c->seen[seq] = true;
	c->answered++;
	c->in_flight--;
	c->got += (size_t)n;
	progress(c, now);
}

static bool wants_write(const struct client *c)
{
	if (c->kind == K_UDP)
		return c->next_seq < c->dgrams && c->in_flight < c->window;
	return c->sent < send_limit(c) && !c->wclosed;
}

/* What the stalled client waits for, and the loop's state, in words. */
static void stalled(struct client *c, struct server *s)
{
	struct evr_stats st = server_stats(s);

	fail(c,
	     "no progress for %d ms (%s; loop: conns_open %llu, "
	     "bytes_queued %llu, bufs_free %llu of %llu, read_pauses %llu, "
	     "recv_nobufs %llu, udp_bufs_free %llu, udp_tx_drop %llu)",
	     STALL_MS,
	     wants_write(c)	   ? "cannot write"
	     : c->kind == K_UDP	   ? "no answer"
	     : c->got < c->exp_len ? "waits for bytes"
				   : "waits for the EOF",
	     (unsigned long long)st.conns_open,
	     (unsigned long long)st.bytes_queued,
	     (unsigned long long)st.bufs_free,
	     (unsigned long long)st.bufs_total,
	     (unsigned long long)st.read_pauses,
	     (unsigned long long)st.recv_nobufs,
	     (unsigned long long)st.udp_bufs_free,
	     (unsigned long long)st.udp_tx_drop);
}

/* Before polling c: start it, reset it, or notice it stalled. Returns
 * the events to poll for (0: none now) and lowers *next to when c wants
 * to be looked at again. */
static short client_prepare(struct client *c, struct server *s, int64_t now,
			    int64_t *next)
{
	short ev = 0;

	if (!c->started) {
		if (now < c->start_at) {
			*next = c->start_at < *next ? c->start_at : *next;
			return 0;
		}
		client_start(c, now);
		if (c->done)
			return 0;
	}
	if (c->sent >= c->reset_at) {
		client_reset(c);
		return 0;
	}
	if (client_finished(c)) {
		client_close(c);
		return 0;
	}
	if (now - c->last_progress > STALL_MS) {
		stalled(c, s);
		return 0;
	}
	if (wants_write(c)) {
		if (now >= c->write_at)
			ev |= POLLOUT;
		else if (c->write_at < *next)
			*next = c->write_at;
	}
	if (c->read_after_send && wants_write(c))
		return ev;
	if (now >= c->read_at)
		ev |= POLLIN;
	else if (c->read_at < *next)
		*next = c->read_at;
	return ev;
}

/* Run the clients until every one is done: one poll() over them all. */
static void drive(struct client *cs, int n, struct server *s)
{
	struct pollfd pfd[CLIENTS_MAX];
	int idx[CLIENTS_MAX];

	for (;;) {
		int64_t now = now_ms(), next = now + 50;
		int np = 0, active = 0;

		for (int i = 0; i < n; i++) {
			short ev;

			if (cs[i].done)
				continue;
			ev = client_prepare(&cs[i], s, now, &next);
			if (cs[i].done)
				continue;
			active++;
			if (ev) {
				pfd[np] = (struct pollfd){ .fd = cs[i].fd,
							   .events = ev };
				idx[np++] = i;
			}
		}
		if (!active)
			return;
		poll(pfd, (nfds_t)np, next > now ? (int)(next - now) : 0);
		now = now_ms();
		for (int k = 0; k < np; k++) {
			struct client *c = &cs[idx[k]];
			short re = pfd[k].revents;

			if ((re & POLLOUT) && !c->done)
				(c->kind == K_UDP ? udp_write : tcp_write)(c,
									   now);
			if ((re & (POLLIN | POLLHUP | POLLERR)) && !c->done)
				(c->kind == K_UDP ? udp_read : tcp_read)(c,
									 now);
		}
	}
}

/* ------------------------------------------------------------------ */
/* The run                                                             */
/* ------------------------------------------------------------------ */

struct totals {
	unsigned clients[K__COUNT], resets, half_closes, rounds, tcp, big;
	uint64_t bytes_out, bytes_in;
};

static uint16_t port_of(const struct server *s, enum kind k)
{
	switch (k) {
	case K_JITTER:
		return s->port;
	case K_CHURN:
		return s->more_port[K_ECHO - K_ECHO];
	case K_UDP:
	case K__COUNT:
		return s->uport;
	default:
		return s->more_port[k - K_ECHO];
	}
}

/* One round: plan the clients, run them, fail the test on the first
 * few clients that went wrong. */
static void run_round(struct server *s, uint64_t seed, int round,
		      struct totals *tot)
{
	struct client *cs = calloc(CLIENTS_MAX, sizeof(*cs));
	struct rng r = { mix64(seed + (uint64_t)round * GOLDEN) };
	char report[4096] = "";
	int n = 0, failed = 0;
	int64_t t0 = now_ms();

	cr_assert(cs);
	for (int k = 0; k < K__COUNT; k++) {
		uint32_t cnt = range(&r, per_round[k].lo, per_round[k].hi);

		for (uint32_t j = 0; j < cnt && n < CLIENTS_MAX; j++) {
			struct client *c = &cs[n];

			c->kind = (enum kind)k;
			c->id = n++;
			c->port = port_of(s, c->kind);
			c->seed = rnd(&r);
			c->start_at = t0 + below(&r, START_SPREAD);
			plan(c, round, j == 0);
		}
	}
	drive(cs, n, s);
	for (int i = 0; i < n; i++) {
		struct client *c = &cs[i];

		tot->clients[c->kind]++;
		tot->tcp += c->kind != K_UDP && c->connected;
		tot->big += c->kind == K_UDP ? c->big : 0;
		tot->resets += c->reset;
		tot->half_closes += c->half;
		tot->bytes_out += c->sent;
		tot->bytes_in += c->got;
		if (verbose && (c->max_gap > 1000 || c->end_at - t0 > 5000))
			fprintf(stderr,
				"stress: round %d: %s #%d (%s) took %lld ms, "
				"once %lld ms without progress\n",
				round, kind_name[c->kind], c->id, c->desc,
				(long long)(c->end_at - c->start_at),
				(long long)c->max_gap);
		if (c->failed && failed++ < 4)
			snprintf(report + strlen(report),
				 sizeof(report) - strlen(report), "\n  %s",
				 c->why);
		free(c->out.p);
		free(c->exp.p);
	}
	free(cs);
	tot->rounds++;
	cr_assert_eq(failed, 0, "round %d: %d of %d clients failed:%s", round,
		     failed, n, report);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	char *end;
	uint64_t x;

	if (!v || !*v)
		return dflt;
	x = strtoull(v, &end, 0);
	cr_assert(!*end, "%s=%s: not a number", name, v);
	return x;
}

static uint64_t pick_seed(const char *backend)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return env_u64(
	    "EVRING_STRESS_SEED",
	    mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
		  ((uint64_t)getpid() << 16) ^ (uint64_t)backend[0]));
}

/* Descriptors of this process once the closes the kernel may still be
 * finishing (io_uring) are done: back to base, or what it is. */
static int fds_settle(int base)
{
	int64_t deadline = now_ms() + FD_WAIT_MS;
	int n;

	while ((n = fd_count(getpid())) != base && now_ms() < deadline)
		usleep(10000);
	return n;
}

struct faults_plan {
	uint32_t recv_short, send_short, pool, eintr_recv, eintr_send, accept;
};

static void faults_set(const struct faults_plan *f)
{
	evr__fault_set(EVR__F_RECV_SHORT, f->recv_short, 0, 0);
	evr__fault_set(EVR__F_SEND_SHORT, f->send_short, 0, 0);
	evr__fault_set(EVR__F_POOL, f->pool, 0, 0);
	evr__fault_set(EVR__F_RECV, f->eintr_recv, 0, -EINTR);
	evr__fault_set(EVR__F_SEND, f->eintr_send, 0, -EINTR);
	/* io_uring: a failed accept closes a connection the client made,
	 * which no client could tell from a bug; epoll retries it */
	if (f->accept)
		evr__fault_set(EVR__F_ACCEPT, f->accept, 0, -ECONNABORTED);
}

/*
 * The directory kept nothing of the sessions that ended: every client
 * registered for its session only, so LIST must find no entry, whether
 * the session ended by QUIT, a close, a reset or an over-long line. (No
 * SO_SNDTIMEO on the connect: a finite one turns io_uring's task-work
 * notifications into EINTR.)
 */
static void assert_directory_empty(uint16_t port)
{
	static const char want[] = "OK 0 entries\r\nOK bye\r\n";
	static const char cmds[] = "LIST\r\nQUIT\r\n";
	struct timeval tv = { .tv_sec = 10 };
	struct sockaddr_storage ss;
	socklen_t len = loopback_addr(AF_INET, port, &ss);
	char got[4096], a[300];
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *)&ss, len), 0, "connect: %s",
		     strerror(errno));
	cr_assert_eq(write_all(fd, cmds, sizeof(cmds) - 1), 0);
	n = read_to_eof(fd, got, sizeof(got));
	close(fd);
	cr_assert(n == sizeof(want) - 1 && !memcmp(got, want, sizeof(want) - 1),
		  "the directory kept entries of closed sessions: \"%s\"",
		  esc(got, n > 0 ? (size_t)n : 0, a, sizeof(a)));
}

/* Every condition the test is about was met at least once (st: the
 * loop's last counters; the fault table is read once the loop is gone). */
static void assert_conditions_met(const struct evr_stats *st, bool epoll)
{
	cr_assert_gt(st->recv_nobufs, 0, "the pool never ran dry");
	cr_assert_gt(atomic_load(&over_high), 0,
		     "no write queue ever went past wq_high");
	cr_assert_gt(st->read_pauses, 0, "reading never paused");
	cr_assert_gt(atomic_load(&jit_pauses), 0, "jitter never paused");
	cr_assert_gt(atomic_load(&jit_holds), 0, "jitter never held a buffer");
	cr_assert_gt(atomic_load(&jit_slices), 0, "jitter never sliced");
	cr_assert_gt(atomic_load(&jit_copies), 0, "jitter never copied");
	cr_assert_gt(atomic_load(&burst_aborts), 0, "burst never aborted");
	cr_assert_gt(evr__faults[EVR__F_RECV_SHORT].hits, 0, "no short read");
	cr_assert_gt(evr__faults[EVR__F_SEND_SHORT].hits, 0, "no short send");
	cr_assert_gt(evr__faults[EVR__F_POOL].hits, 0, "no empty-pool fault");
	if (epoll) {
		cr_assert_gt(evr__faults[EVR__F_RECV].hits, 0, "no EINTR");
		cr_assert_gt(evr__faults[EVR__F_ACCEPT].hits, 0,
			     "no failed accept");
	}
}

/* The server's side of the plan, drawn from r: loop options, limits,
 * modules, faults. */
static void plan_server(struct server *s, struct faults_plan *f, struct rng *r,
			bool epoll, void *dir_conf)
{
	evr_loop_opts_init(&s->o);
	s->proto = &jitter_proto;
	s->udp_proto = &evr_proto_echo;
	/* 4 and 8: the empty pool; 256: the io_uring ring's window of it,
	 * grown and shrunk under the load */
	s->o.buf_count = below(r, 3) == 2 ? 256 : chance(r, 50) ? 4 : 8;
	s->o.buf_size = 512u << below(r, 4); /* 512 B .. 4 KiB */
	s->o.sq_entries = 4;
	s->o.cq_entries = 4;
	s->o.queued_max = (32u << 10) << (2 * below(r, 3)); /* 32K..512K */
	s->o.udp_buf_count = 4;
	s->o.udp_buf_size = UDP_BUF;
	s->lim.wq_high = 4096u << below(r, 4); /* 4 .. 32 KiB */
	s->lim.wq_max = 1 << 20;
	s->more[K_ECHO - K_ECHO].proto = &evr_proto_echo;
	s->more[K_LINEBACK - K_ECHO].proto = &lineback_proto;
	s->more[K_DIRECTORY - K_ECHO].proto = &evr_proto_directory;
	s->more[K_DIRECTORY - K_ECHO].conf = dir_conf;
	s->more[K_HTTP - K_ECHO].proto = &evr_proto_http;
	s->more[K_DAYTIME - K_ECHO].proto = &evr_proto_daytime;
	s->more[K_BURST - K_ECHO].proto = &burst_proto;
	*f = (struct faults_plan){
		.recv_short = range(r, 2, 6),
		.send_short = range(r, 2, 6),
		.pool = range(r, 3, 9),
		.eintr_recv = range(r, 3, 9),
		.eintr_send = range(r, 3, 9),
		.accept = epoll ? range(r, 3, 7) : 0,
	};
}

/* After a round: the loop is idle, descriptors are back, nobody was
 * dropped, every connection made since the start was accepted once and
 * every datagram too big for a buffer counted. Returns the counters. */
static struct evr_stats assert_round_clean(struct server *s, int round,
					   int fd_base,
					   const struct totals *tot,
					   uint64_t seed)
{
	struct evr_stats st;
	int fds;

	server_wait_idle(s);
	fds = fds_settle(fd_base);
	cr_assert_eq(fds, fd_base,
		     "round %d: %d descriptors open, %d before (seed %#llx)",
		     round, fds, fd_base, (unsigned long long)seed);
	st = server_stats(s);
	cr_assert_eq(st.wq_overflows, 0,
		     "round %d: a client that reads was dropped: write queue "
		     "over wq_max (seed %#llx)",
		     round, (unsigned long long)seed);
	cr_assert_eq(st.send_timeouts + st.idle_timeouts, 0);
	/* Linux hands out a connection reset in the backlog too */
	cr_assert_eq(
	    st.conns_accepted, tot->tcp,
	    "round %d: %llu connections accepted, %u made (seed %#llx)", round,
	    (unsigned long long)st.conns_accepted, tot->tcp,
	    (unsigned long long)seed);
	cr_assert_eq(st.udp_trunc, tot->big,
		     "round %d: %llu datagrams dropped as too big, %u sent "
		     "(seed %#llx)",
		     round, (unsigned long long)st.udp_trunc, tot->big,
		     (unsigned long long)seed);
	return st;
}

static void print_totals(const char *backend, const struct totals *tot,
			 const struct evr_stats *st, int64_t ms, long rss0,
			 long rss1)
{
	char kinds[256] = "";

	for (int k = 0; k < K__COUNT; k++)
		snprintf(kinds + strlen(kinds), sizeof(kinds) - strlen(kinds),
			 "%s%u %s", k ? ", " : "", tot->clients[k],
			 kind_name[k]);
	fprintf(stderr,
		"stress %s: %u rounds in %lld ms: %s clients (%u resets, %u "
		"half-closes), %llu bytes out, %llu in; queues past wq_high %u "
		"times, reading paused %llu times (%u by jitter), pool empty "
		"%llu times; rss %ld -> %ld KiB\n",
		backend, tot->rounds, (long long)ms, kinds, tot->resets,
		tot->half_closes, (unsigned long long)tot->bytes_out,
		(unsigned long long)tot->bytes_in, atomic_load(&over_high),
		(unsigned long long)st->read_pauses,
		atomic_load(&jit_pause_calls),
		(unsigned long long)st->recv_nobufs, rss0, rss1);
}

BACKEND_TEST(stress, every_module_under_every_fault_at_once)
{
	uint64_t seed = pick_seed(backend);
	struct rng r = { seed };
	/* static: a failed assertion leaves this function while the loop
	 * thread still runs, and the loop thread uses the server structure
	 * (its mutex, its counters) until the process exits */
	static struct server s;
	const struct evr_proto *dir = &evr_proto_directory;
	void *dir_conf = calloc(1, dir->conf_size);
	bool epoll = !strcmp(backend, "epoll");
	uint64_t rounds = env_u64("EVRING_STRESS_ROUNDS", ROUNDS_MAX);
	uint64_t seconds = env_u64("EVRING_STRESS_SECONDS", SECONDS);

	late_body_on = env_u64("EVRING_STRESS_LATE_BODY", 1);
	verbose = env_u64("EVRING_STRESS_VERBOSE", 0);
	struct faults_plan f;
	struct totals tot = { 0 };
	struct evr_stats st;
	long rss0 = -1, rss1 = -1;
	int fd_base;
	int64_t t0 = now_ms();

	cr_assert(dir_conf && dir->conf_init(dir_conf) == 0);
	plan_server(&s, &f, &r, epoll, dir_conf);
	fprintf(stderr,
		"stress %s: seed %#llx (replay: EVRING_STRESS_SEED=%#llx); "
		"pool %u x %u B, cq 4, wq_high %u, queued_max %llu; faults "
		"1 in: short recv %u, short send %u, pool %u, EINTR %u/%u, "
		"accept %u\n",
		backend, (unsigned long long)seed, (unsigned long long)seed,
		s.o.buf_count, s.o.buf_size, s.lim.wq_high,
		(unsigned long long)s.o.queued_max, f.recv_short, f.send_short,
		f.pool, f.eintr_recv, f.eintr_send, f.accept);
	srv_seed = seed;
	srv_wq_high = s.lim.wq_high;
	faults_set(&f);
	server_start(&s, backend);
	fd_base = fd_count(getpid());
	cr_assert_gt(fd_base, 0);
	for (int round = 1; round <= (int)rounds; round++) {
		if (round > ROUNDS_MIN &&
		    now_ms() - t0 > (int64_t)seconds * 1000)
			break; /* the time bound: fewer rounds, same checks */
		run_round(&s, seed, round, &tot);
		st = assert_round_clean(&s, round, fd_base, &tot, seed);
		rss1 = rss_kib(getpid());
		if (round == 1)
			rss0 = rss1;
		if (verbose)
			fprintf(stderr,
				"stress %s: round %d done at %lld ms: rss %ld "
				"KiB, %llu accepted of %u, recv_nobufs %llu, "
				"read_pauses %llu\n",
				backend, round, (long long)(now_ms() - t0),
				rss1, (unsigned long long)st.conns_accepted,
				tot.tcp, (unsigned long long)st.recv_nobufs,
				(unsigned long long)st.read_pauses);
	}
	assert_directory_empty(s.more_port[K_DIRECTORY - K_ECHO]);
	st = server_stats(&s);
	server_stop(&s);
	print_totals(backend, &tot, &st, now_ms() - t0, rss0, rss1);
	assert_conditions_met(&st, epoll);
#ifndef __SANITIZE_ADDRESS__
	cr_assert_lt(rss1 - rss0, RSS_SLACK_KIB,
		     "RSS grew from %ld to %ld KiB (seed %#llx)", rss0, rss1,
		     (unsigned long long)seed);
#endif
	evr__fault_clear();
	dir->conf_fini(dir_conf);
	free(dir_conf);
}
