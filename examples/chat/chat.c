/* SPDX-License-Identifier: MIT */
/*
 * chat.c - a chat server on a loop group and libevring's line framer:
 * members join with a nickname, every line a member types goes to all the
 * others, /msg to one.
 *
 *	build/examples/chat [-b ADDR]... [-p PORT] [-t N] [--backend NAME]
 *	nc 127.0.0.1 9100              (one terminal per member; or telnet)
 *
 * Defaults: 127.0.0.1, port 9100 (0 binds an ephemeral port), one loop
 * per CPU the process may run on (-t 1: one), backend auto. One line per
 * listening socket goes to stdout, as evringd prints it ("listen chat tcp
 * 127.0.0.1:9100 io_uring"); logs go to stderr. SIGINT or SIGTERM stops
 * the server; it exits 0.
 *
 * Protocol: lines in, ending in LF or CRLF; lines out, ending in CRLF.
 *
 *	(on connect)      * welcome; NICK <name> to join, /msg <nick> <text>,
 *	                  /who, /quit
 *	NICK name         join as name: 1-16 of A-Z a-z 0-9 _ -, unique
 *	                  ignoring case; everyone hears "* name joined"
 *	text              every other member hears "name text"
 *	/msg nick text    only nick hears "*name* text"
 *	/who              "* 3 members: alice bob carol" (in order of joining)
 *	/quit             "* bye", then the server closes the connection
 *	(leaving)         the others hear "* name left"
 *
 * Errors are single lines beginning "ERR ": a bad or taken nickname, a
 * line other than NICK (or /quit) before joining, NICK after joining, an
 * unknown /command (so that a mistyped "/mgs bob ..." is not broadcast),
 * /msg to a name nobody has. Control characters in text (an escape
 * sequence aimed at the others' terminals) are relayed as '?'.
 *
 * Loops. Each loop accepts members on a socket of its own (SO_REUSEPORT:
 * the kernel spreads them), and each writes to its own members; nothing is
 * shared and nothing is locked. The room (who is in it, in order of
 * joining, and whether someone lags) lives on loop 0 alone. Every loop
 * sends what its members type to loop 0 through the mailbox (evr_loop_post),
 * in order; loop 0 runs the commands and sends each line out once to every
 * loop, which writes it to its members. Messages from one sender arrive in
 * the order sent, so every member hears the room in one order, whatever
 * loop serves it, and a reply (/who) comes after every line the room sent
 * before it.
 *
 * Backpressure: the room goes at the pace of its slowest reader. When more
 * than wq_high (64 KiB) wait for a member, its loop stops reading from all
 * its members and tells the room, which tells every loop to do the same
 * and, until no one lags, keeps the commands that still come in (those
 * read before the word arrived) for later. Once no member has more than
 * wq_low (16 KiB) waiting, all resume. What is on its way between the
 * loops is bounded too, by credits: a loop sends the room at most
 * IN_CREDIT bytes of lines the room has not acknowledged (then it stops
 * reading), and the room sends a loop at most OUT_CREDIT bytes it has not
 * acknowledged (then it keeps the commands for later), so that neither
 * mailbox can grow without bound. So a member that reads, however
 * slowly, is never dropped for being behind. One that stops reading is
 * dropped by the core once its queue has not moved for 5 s
 * (send_timeout_ms), which releases the room; the others hear "* name
 * left" as for anyone who leaves. wq_max (1 MiB) is a backstop for what
 * the room had taken in before it held (see chat_limits).
 *
 * Files: chat.h (texts, the messages between the loops), room.c (the room
 * and its commands, loop 0's), this one. Layout here: texts, posting
 * messages, each loop's gate (its members), the module's handlers, main.
 *
 * Runs on io_uring (kernel 6.0+) or epoll (--backend epoll).
 */
#include "chat.h"
#include "evring/line.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CHAT_PORT      9100
#define CHAT_BUF_COUNT 16
#define MAX_BINDS      8
#define WQ_HIGH	       (64 * 1024) /* a member lags: hold the room */
#define WQ_LOW	       (16 * 1024) /* it caught up: the room goes on */
#define WQ_MAX	       (1024 * 1024)
#define EXIT_RUNTIME   1
#define EXIT_USAGE     2
#define GREETING                                                               \
	"* welcome; NICK <name> to join, /msg <nick> <text>, /who, /quit"

struct gate;

/* Everything main makes: each loop's gate, the addresses. */
struct chat {
	struct gate **gates; /* by loop index, made by each loop's setup */
	const char *bind[MAX_BINDS];
	int nbind;
	struct sockaddr_storage addr[MAX_BINDS]; /* loop 0's, port resolved */
	socklen_t addrlen[MAX_BINDS];
	char lines[MAX_BINDS][128]; /* the listener lines, for stdout */
	uint16_t port;
	unsigned threads;
	const char *backend;
};

/* ---- texts: lines made once, read by every loop ---- */

struct text *text_new(size_t cap)
{
	struct text *t = malloc(sizeof(*t) + cap);

	if (!t)
		return NULL;
	atomic_init(&t->refs, 1);
	t->len = 0;
	t->cap = (uint32_t)cap;
	return t;
}

void text_put(struct text *t)
{
	if (t && atomic_fetch_sub(&t->refs, 1) == 1)
		free(t);
}

void line_put(struct text *t, const char *head, const char *s, size_t len)
{
	size_t n = strlen(head);
	char *p = t->data + t->len;

	memcpy(p, head, n);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		p[n + i] =
		    (ch < 0x20 && ch != '\t') || ch == 0x7f ? '?' : (char)ch;
	}
	memcpy(p + n + len, "\r\n", 2);
	t->len += (uint32_t)(n + len + 2);
}

/* ---- messages between the loops ---- */

/* This thread's gate: each loop's setup, on the loop's own thread, makes
 * its gate. */
static _Thread_local struct gate *this_gate;

void post_out(struct evr_loop *from, unsigned i, struct out *m)
{
	struct evr_loop *to = evr_group_loop(evr_loop_group(from), i);

	if (!to || evr_loop_post(to, gate_out, m) < 0) {
		text_put(m->t);
		free(m);
	}
}

void post_cmd(struct evr_loop *from, struct cmd *m)
{
	struct evr_loop *to = evr_group_loop(evr_loop_group(from), 0);

	if (!to || evr_loop_post(to, room_cmd, m) < 0)
		free(m);
}

struct cmd *cmd_new(enum cmd_kind kind, unsigned loop, who_t who, int arg,
		    size_t len)
{
	struct cmd *m = malloc(sizeof(*m) + len);

	if (!m)
		return NULL;
	m->next = NULL;
	m->kind = kind;
	m->loop = loop;
	m->who = who;
	m->arg = arg;
	m->len = len;
	return m;
}

/* ---- each loop's gate: its members ---- */

/* One connection's state (evr_conn_state): a member once nick is set. */
struct member {
	struct evr_line lf;
	struct evr_conn *c;
	struct gate *gate;
	who_t who;
	uint32_t slot;
	char nick[NICK_MAX + 1]; /* "" until the room says it joined */
	char *typed;		 /* lines read, not yet sent to the room */
	size_t ntyped, captyped;
	bool quit;    /* /quit went to the room: read no more */
	bool lagging; /* over WQ_HIGH queued, not yet back to WQ_LOW */
	bool held;    /* paused while someone lags */
};

struct gate {
	struct evr_loop *loop;
	unsigned index;
	struct member **slot; /* by slot; NULL: free */
	uint32_t *gen;
	uint32_t nslots;
	uint32_t lagging; /* members of this loop over WQ_HIGH */
	bool room_held;	  /* the room holds every loop */
	bool held;	  /* this loop's members are held */
	size_t in_flight; /* lines sent to the room, not acknowledged */
	size_t taken;	  /* the room's lines taken in, not acknowledged */
};

static bool joined(const struct member *m)
{
	return m->nick[0] != '\0';
}

static int gate_add(struct gate *g, struct member *m)
{
	uint32_t i;

	for (i = 0; i < g->nslots && g->slot[i]; i++)
		;
	if (i == g->nslots) {
		uint32_t n = g->nslots ? 2 * g->nslots : 64;
		struct member **s = realloc(g->slot, n * sizeof(*s));
		uint32_t *gen;

		if (!s)
			return -ENOMEM;
		g->slot = s;
		gen = realloc(g->gen, n * sizeof(*gen));
		if (!gen)
			return -ENOMEM;
		g->gen = gen;
		memset(g->slot + g->nslots, 0,
		       (n - g->nslots) * sizeof(*g->slot));
		memset(g->gen + g->nslots, 0, (n - g->nslots) * sizeof(*gen));
		g->nslots = n;
	}
	g->slot[i] = m;
	m->slot = i;
	m->who = who_make(g->index, g->gen[i], i);
	return 0;
}

static void gate_del(struct gate *g, struct member *m)
{
	g->slot[m->slot] = NULL;
	g->gen[m->slot]++;
}

static struct member *gate_find(const struct gate *g, who_t who)
{
	uint32_t i = (uint32_t)(who & 0xffffff);

	if (i >= g->nslots || !g->slot[i] || g->slot[i]->who != who)
		return NULL;
	return g->slot[i];
}

/*
 * Hold the members of this loop, or let them go, as the room and this
 * loop's laggards say. A pause comes before the bytes: held at once, the
 * members bring in what was on its way (under io_uring about one receive
 * pool between them, under epoll the buffer in hand), no more.
 */
static void gate_hold(struct gate *g)
{
	bool want = g->room_held || g->lagging > 0 || g->in_flight > IN_CREDIT;

	if (want == g->held)
		return;
	g->held = want;
	for (uint32_t i = 0; i < g->nslots; i++) {
		struct member *m = g->slot[i];

		if (!m || !joined(m) || m->held == want)
			continue;
		m->held = want;
		if (want)
			evr_conn_pause(m->c);
		else
			evr_conn_resume(m->c);
	}
}

/* A loop lags (its first laggard) or no longer does: the room hears. */
static void gate_lag(struct gate *g, int delta)
{
	struct cmd *m = cmd_new(CMD_LAG, g->index, 0, delta, 0);

	if (m)
		post_cmd(g->loop, m);
	gate_hold(g);
}

/*
 * Queue b to m. A queue over WQ_HIGH makes m a laggard until on_sent finds
 * it down to WQ_LOW; the gap keeps the room from being held and released
 * at every line. A failed send needs no care here: the core aborts a
 * member whose queue is over wq_max, and on_close tells the room.
 */
static void member_send(struct member *m, struct evr_buf *b)
{
	struct gate *g = m->gate;

	if (evr_send(m->c, b) < 0 || m->lagging ||
	    evr_conn_queued(m->c) <= WQ_HIGH)
		return;
	m->lagging = true;
	if (!g->lagging++)
		gate_lag(g, 1);
}

/* m lags no more: it caught up, or it is leaving. */
static void member_caught_up(struct member *m)
{
	struct gate *g = m->gate;

	if (!m->lagging)
		return;
	m->lagging = false;
	if (!--g->lagging)
		gate_lag(g, -1);
}

/* A text of the room, in a buffer of this loop (buffers do not cross
 * threads): one copy per loop, shared by its members. */
static struct evr_buf *buf_of(struct evr_loop *l, const struct text *t)
{
	struct evr_buf *b = evr_buf_new(l, t->len ? t->len : 1);

	if (!b) {
		evr_log_warn("out of memory: a line was not relayed");
		return NULL;
	}
	memcpy(b->data, t->data, t->len);
	b->len = t->len;
	return b;
}

static void gate_all(struct gate *g, const struct out *o)
{
	struct evr_buf *b = buf_of(g->loop, o->t);

	if (!b)
		return;
	for (uint32_t i = 0; i < g->nslots; i++) {
		struct member *m = g->slot[i];

		if (m && joined(m) && m->who != o->who)
			member_send(m, b);
	}
	evr_buf_unref(b);
}

static void gate_joined(struct gate *g, struct member *m, const struct out *o)
{
	char peer[EVR_ADDRSTRLEN] = "?";
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	memcpy(m->nick, o->nick, sizeof(m->nick));
	if (g->held) {
		m->held = true; /* as the others are */
		evr_conn_pause(m->c);
	}
	if (evr_conn_peer(m->c, &ss, &sl) == 0)
		evr_addr_str((struct sockaddr *)&ss, peer, sizeof(peer));
	evr_log_info("%s joined from %s on loop %u (%u in the room)", m->nick,
		     peer, g->index, o->n);
}

/* A message of the room, on this loop. */
void gate_out(struct evr_loop *l, void *arg)
{
	struct out *o = arg;
	struct gate *g = this_gate;
	struct member *m = o->kind == OUT_ALL ? NULL : gate_find(g, o->who);
	struct evr_buf *b;

	(void)l;
	switch (o->kind) {
	case OUT_ALL:
		gate_all(g, o);
		break;
	case OUT_ONE:
		if (m && (b = buf_of(g->loop, o->t))) {
			member_send(m, b);
			evr_buf_unref(b);
		}
		break;
	case OUT_JOINED:
		if (m)
			gate_joined(g, m, o);
		break;
	case OUT_BYE:
		if (m) {
			evr_line_sendf(m->c, "* bye");
			evr_close(m->c);
		}
		break;
	case OUT_CLOSE:
		if (m)
			evr_close(m->c);
		break;
	case OUT_HOLD:
	case OUT_RELEASE:
		g->room_held = o->kind == OUT_HOLD;
		gate_hold(g);
		break;
	case OUT_ACK:
		g->in_flight -= o->n;
		gate_hold(g);
		break;
	}
	if (o->t && (g->taken += o->t->len) >= OUT_CREDIT / 4) {
		struct cmd *a = cmd_new(CMD_ACK, g->index, 0, (int)g->taken, 0);

		if (a)
			post_cmd(g->loop, a);
		g->taken = 0;
	}
	text_put(o->t);
	free(o);
}

/* ---- the module: each loop's members ---- */

/* The lines of one receive go to the room in one message. */
static void typed_flush(struct member *m)
{
	struct cmd *c;

	if (!m->ntyped)
		return;
	c = cmd_new(CMD_LINES, m->gate->index, m->who, 0, m->ntyped);
	if (!c) {
		evr_log_warn("out of memory: lines were not relayed");
	} else {
		memcpy(c->text, m->typed, m->ntyped);
		m->gate->in_flight += m->ntyped;
		post_cmd(m->gate->loop, c);
		gate_hold(m->gate);
	}
	m->ntyped = 0;
}

static int chat_line(struct evr_conn *c, struct evr_buf *b, char *line,
		     size_t len)
{
	struct member *m = evr_conn_state(c);
	size_t n = 0; /* the first word's length (the line is no string) */

	(void)b;
	while (n < len && line[n] != ' ' && line[n] != '\t')
		n++;
	if (m->ntyped + len + 1 > m->captyped) {
		size_t cap = m->captyped ? 2 * m->captyped : 2 * CHAT_BUF_SIZE;
		char *p;

		while (cap < m->ntyped + len + 1)
			cap *= 2;
		p = realloc(m->typed, cap);
		if (!p) {
			evr_abort(c, -ENOMEM);
			return -1;
		}
		m->typed = p;
		m->captyped = cap;
	}
	memcpy(m->typed + m->ntyped, line, len);
	m->typed[m->ntyped + len] = '\n';
	m->ntyped += len + 1;
	/* after /quit nothing more is read: the room says bye */
	if (n == 5 && !strncasecmp(line, "/quit", 5)) {
		m->quit = true;
		return -1;
	}
	return 0;
}

static int chat_accept(struct evr_conn *c)
{
	static const struct evr_line_cfg lcfg = { .max_line = CHAT_LINE_MAX };
	struct member *m = evr_conn_state(c);

	m->c = c;
	m->gate = this_gate;
	if (gate_add(m->gate, m) < 0)
		return -ENOMEM;
	evr_line_init(&m->lf, c, &lcfg, chat_line);
	return evr_line_sendf(c, GREETING);
}

static void chat_data(struct evr_conn *c, struct evr_buf *b)
{
	struct member *m = evr_conn_state(c);

	evr_line_feed(&m->lf, b);
	typed_flush(m);
}

/* Bytes left for c: a laggard whose queue is down to WQ_LOW lets the room
 * go on. */
static void chat_sent(struct evr_conn *c, size_t n)
{
	struct member *m = evr_conn_state(c);

	(void)n;
	if (m->lagging && evr_conn_queued(c) <= WQ_LOW)
		member_caught_up(m);
}

/* The peer sent all it will: the room answers what it sent, then its
 * loop closes it. */
static void chat_eof(struct evr_conn *c)
{
	struct member *m = evr_conn_state(c);
	struct cmd *e;

	if (m->quit)
		return; /* the room's bye closes it */
	typed_flush(m);
	e = cmd_new(CMD_EOF, m->gate->index, m->who, 0, 0);
	if (e)
		post_cmd(m->gate->loop, e);
	else
		evr_close(c);
}

/*
 * The last call for c, in the loop's flush pass: the room hears that it
 * left (a visitor that never joined is nothing to it), with err: -ENOBUFS
 * when its queue went over wq_max, -ETIMEDOUT after send_timeout_ms
 * without progress.
 */
static void chat_close(struct evr_conn *c, int err)
{
	struct member *m = evr_conn_state(c);
	struct cmd *e;

	evr_line_fini(&m->lf);
	if (!m->gate)
		return;	     /* refused at accept */
	member_caught_up(m); /* the room it held back goes on */
	typed_flush(m);
	free(m->typed);
	e = cmd_new(CMD_LEAVE, m->gate->index, m->who, err, 0);
	if (e)
		post_cmd(m->gate->loop, e);
	gate_del(m->gate, m);
}

static const struct evr_proto chat_proto = {
	.name = "chat",
	.summary = "a chat room in a line protocol",
	.state_size = sizeof(struct member),
	.on_accept = chat_accept,
	.on_data = chat_data,
	.on_sent = chat_sent,
	.on_eof = chat_eof,
	.on_close = chat_close,
};

/* ---- main ---- */

static void on_signal(struct evr_loop *l, int signo, void *arg)
{
	(void)arg;
	evr_log_info("%s: stopping", strsignal(signo));
	evr_group_stop(evr_loop_group(l));
}

static void usage(FILE *f)
{
	fprintf(f, "usage: chat [-b ADDR]... [-p PORT] [-t N] [--backend "
		   "NAME]\n"
		   "  -b, --bind ADDR   listen on ADDR (repeatable; default "
		   "127.0.0.1)\n"
		   "  -p, --port PORT   TCP port (default 9100; 0: any free "
		   "port)\n"
		   "  -t, --threads N   loops (default: one per CPU)\n"
		   "      --backend NAME  auto (default), io_uring or epoll\n");
}

/* 0, 1 after --help, or -EXIT_USAGE after saying why. */
static int parse_args(struct chat *a, int argc, char **argv)
{
	enum { OPT_BACKEND = 256 };
	static const struct option opts[] = {
		{ "bind", required_argument, NULL, 'b' },
		{ "port", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "backend", required_argument, NULL, OPT_BACKEND },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	long v;
	int c;

	a->port = CHAT_PORT;
	while ((c = getopt_long(argc, argv, "b:p:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (a->nbind == MAX_BINDS) {
				fprintf(stderr, "chat: too many -b\n");
				return -EXIT_USAGE;
			}
			a->bind[a->nbind++] = optarg;
			break;
		case 'p':
		case 't':
			v = strtol(optarg, &end, 10);
			if (!*optarg || *end || v < (c == 'p' ? 0 : 1) ||
			    v > (c == 'p' ? 65535 : EVR_GROUP_MAX)) {
				fprintf(stderr,
					"chat: -%c \"%s\": out of range\n", c,
					optarg);
				return -EXIT_USAGE;
			}
			if (c == 'p')
				a->port = (uint16_t)v;
			else
				a->threads = (unsigned)v;
			break;
		case OPT_BACKEND:
			a->backend = optarg;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "chat: unexpected argument \"%s\"\n",
			argv[optind]);
		return -EXIT_USAGE;
	}
	if (!a->nbind)
		a->bind[a->nbind++] = "127.0.0.1";
	for (int i = 0; i < a->nbind; i++) {
		if (evr_addr_parse(a->bind[i], a->port, &a->addr[i],
				   &a->addrlen[i]) < 0) {
			fprintf(stderr,
				"chat: bind address \"%s\": not a numeric "
				"IPv4 or IPv6 address\n",
				a->bind[i]);
			return -EXIT_USAGE;
		}
	}
	return 0;
}

/*
 * Limits of a member's connection. Lines to a member queue in its own
 * write queue, in buffers shared by the members of its loop, so the
 * room's memory is about the longest queue, not the sum of them.
 *
 * wq_high and wq_low are where a member counts as behind and as caught up
 * again, both for the core, which stops reading from it meanwhile (its own
 * /who cannot pile up either), and for the room, which stops reading from
 * everyone (member_send, chat_sent).
 *
 * wq_max is a backstop, not the way a member goes. What the room had taken
 * in before it held is still relayed: about a receive pool (32 KiB) from
 * each loop, which its loop read before the hold reached it. One-letter
 * lines from a 16-letter nick come out ten times as long as they went in:
 * 320 KiB a loop at worst on top of wq_high, which 1 MiB holds for a few
 * loops.
 *
 * A member that stops reading is dropped when its queue has not moved for
 * 5 s. Once it lags the room is held meanwhile, so this is how long a dead
 * peer can stall the room; yet a peer stalled for a few seconds (TCP
 * retransmissions, a terminal suspended and resumed) is forgiven. The
 * same timeout drops a member whose queue stays small (a quiet room, a
 * peer that vanished without a FIN) long before TCP would give up (~15
 * min).
 */
static const struct evr_conn_limits chat_limits = {
	.wq_high = WQ_HIGH,
	.wq_low = WQ_LOW,
	.wq_max = WQ_MAX,
	.send_timeout_ms = 5 * 1000,
};

/*
 * Each loop, on its own thread, in index order: its gate, then its sockets
 * (loop 0 binds the addresses, a port 0 resolved; the others the same,
 * each a socket of its own). Loop 0 also keeps the room and the signals.
 */
static int setup(struct evr_loop *l, unsigned index, void *arg)
{
	struct chat *a = arg;
	struct evr_listen_cfg cfg = {
		.proto = &chat_proto,
		.lim = chat_limits,
		.reuseport = true,
	};
	struct gate *g = calloc(1, sizeof(*g));
	int err = 0;

	if (!g)
		return -ENOMEM;
	g->loop = l;
	g->index = index;
	a->gates[index] = g;
	this_gate = g;
	if (index == 0) {
		err = room_init(l, evr_group_size(evr_loop_group(l)));
		if (!err)
			err = evr_signal_add(l, SIGINT, on_signal, NULL);
		if (!err)
			err = evr_signal_add(l, SIGTERM, on_signal, NULL);
		if (err < 0) {
			evr_log_err("room, signals: %s", strerror(-err));
			return err;
		}
	}
	for (int i = 0; i < a->nbind && !err; i++) {
		struct evr_listener *ls;
		char s[EVR_ADDRSTRLEN];

		err = evr_listen(l, (struct sockaddr *)&a->addr[i],
				 a->addrlen[i], &cfg, &ls);
		if (err < 0) {
			evr_addr_str((struct sockaddr *)&a->addr[i], s,
				     sizeof(s));
			evr_log_err("bind %s: %s", s, strerror(-err));
			break;
		}
		if (index)
			continue;
		a->addrlen[i] = sizeof(a->addr[i]);
		evr_listener_addr(ls, &a->addr[i], &a->addrlen[i]);
		snprintf(
		    a->lines[i], sizeof(a->lines[i]), "listen chat tcp %s %s",
		    evr_addr_str((struct sockaddr *)&a->addr[i], s, sizeof(s)),
		    evr_loop_backend(l));
	}
	return err;
}

int main(int argc, char **argv)
{
	static struct chat a;
	struct evr_group_opts go;
	struct evr_group *g;
	int err;

	evr_log_set_ident("chat");
	signal(SIGPIPE, SIG_IGN);
	err = parse_args(&a, argc, argv);
	if (err)
		return err > 0 ? 0 : -err;
	evr_group_opts_init(&go);
	go.loop.backend = a.backend;
	/*
	 * A small receive pool bounds what a member puts in the others'
	 * queues in one loop iteration, and what still arrives after the room
	 * holds it back (chat_limits). Under io_uring one iteration takes in
	 * at most the whole pool, under epoll at most 16 buffers per
	 * connection: 32 KiB from one member either way, relayed in few enough
	 * buffers for each recipient's one send per iteration to carry
	 * (room_say). 32 KiB per iteration is still hundreds of MB/s.
	 */
	go.loop.buf_size = CHAT_BUF_SIZE;
	go.loop.buf_count = CHAT_BUF_COUNT;
	go.threads = a.threads;
	go.setup = setup;
	go.arg = &a;
	a.gates =
	    calloc(a.threads ? a.threads : EVR_GROUP_MAX, sizeof(*a.gates));
	if (!a.gates)
		return EXIT_RUNTIME;
	err = evr_group_start(&g, &go);
	if (err < 0) {
		free(a.gates);
		return err == -EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
	}
	for (int i = 0; i < a.nbind; i++)
		printf("%s\n", a.lines[i]);
	fflush(stdout);
	err = evr_group_run(g);
	if (err < 0)
		evr_log_err("event loop: %s", strerror(-err));
	/* every loop has ended: on_close has run for every member, the room
	 * has heard every one leave */
	for (unsigned i = 0; i < evr_group_size(g); i++) {
		free(a.gates[i]->slot);
		free(a.gates[i]->gen);
		free(a.gates[i]);
	}
	evr_group_free(g);
	free(a.gates);
	room_fini();
	return err < 0 ? EXIT_RUNTIME : 0;
}
