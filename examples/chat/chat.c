/* SPDX-License-Identifier: MIT */
/*
 * chat.c - a chat server on libevring's line framer: members join with a
 * nickname, every line a member types goes to all the others, /msg to one.
 *
 *	build/examples/chat [-b ADDR]... [-p PORT] [--backend NAME]
 *	nc 127.0.0.1 9100              (one terminal per member; or telnet)
 *
 * Defaults: 127.0.0.1, port 9100 (0 binds an ephemeral port), backend auto.
 * One line per listening socket goes to stdout, as evringd prints it
 * ("listen chat tcp 127.0.0.1:9100 io_uring"); logs go to stderr.
 * SIGINT or SIGTERM stops the server; it exits 0.
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
 * Backpressure: the room goes at the pace of its slowest reader. When
 * more than wq_high (64 KiB) wait for a member, the room stops reading
 * from every member (evr_conn_pause): their lines wait in TCP on their
 * side. All are resumed (evr_conn_resume) once no member has more than
 * wq_low (16 KiB) waiting, from the laggards' on_sent. So a member that
 * reads, however slowly, is never dropped for being behind. One that stops
 * reading is dropped by the core once its queue has not moved for 5 s
 * (send_timeout_ms), which releases the room; the others hear "* name
 * left" as for anyone who leaves. wq_max (1 MiB) is a backstop for what
 * arrives after the room is held (see chat_limits).
 *
 * Layout: the room (the members, a list owned by main), holding it back
 * while a member lags, lines out (formatted once into buffers that all
 * recipients share), the commands (a table), the module's handlers, main.
 *
 * Runs on io_uring (kernel 6.0+) or epoll (--backend epoll).
 */
#include "evring.h"
#include "evring/line.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CHAT_PORT      9100
#define NICK_MAX       16
#define CHAT_LINE_MAX  4096 /* a chat line, not a file transfer */
#define CHAT_BUF_SIZE  2048 /* the receive pool; see main */
#define CHAT_BUF_COUNT 16
#define BATCH_BYTES    CHAT_BUF_SIZE /* evr_buf_new's cached size class */
#define MAX_BINDS      8
#define WQ_HIGH	       (64 * 1024) /* a member lags: hold the room */
#define WQ_LOW	       (16 * 1024) /* it caught up: the room goes on */
#define WQ_MAX	       (1024 * 1024)
#define EXIT_RUNTIME   1
#define EXIT_USAGE     2
#define GREETING                                                               \
	"* welcome; NICK <name> to join, /msg <nick> <text>, /who, /quit"

/* ---- the room ---- */

struct member;

/* Everyone who has joined, in order of joining. Owned by main, handed to
 * the listener as its configuration (evr_conn_conf), used on one thread. */
struct room {
	struct member *head, *tail;
	uint32_t n;
	uint32_t lagging; /* members with more than WQ_HIGH queued */
	/* Lines of batch_from not yet sent to the others (room_say). */
	struct evr_buf *batch;
	struct member *batch_from;
};

/* One connection's state (evr_conn_state): a member once nick is set. */
struct member {
	struct evr_line lf;
	struct evr_conn *c;
	struct room *room;
	struct member *prev, *next; /* in room, once joined */
	char nick[NICK_MAX + 1];    /* "" until NICK */
	bool lagging; /* over WQ_HIGH queued, not yet back to WQ_LOW */
	bool held;    /* paused while someone lags (room_hold) */
};

static bool joined(const struct member *m)
{
	return m->nick[0] != '\0';
}

static bool valid_nick(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= NICK_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789_-") == n;
}

static struct member *room_find(const struct room *r, const char *nick)
{
	for (struct member *m = r->head; m; m = m->next)
		if (!strcasecmp(m->nick, nick))
			return m;
	return NULL;
}

static void room_add(struct room *r, struct member *m)
{
	m->prev = r->tail;
	m->next = NULL;
	if (r->tail)
		r->tail->next = m;
	else
		r->head = m;
	r->tail = m;
	r->n++;
}

static void room_del(struct room *r, struct member *m)
{
	if (m->prev)
		m->prev->next = m->next;
	else
		r->head = m->next;
	if (m->next)
		m->next->prev = m->prev;
	else
		r->tail = m->prev;
	m->prev = m->next = NULL;
	r->n--;
}

/* ---- holding the room back ---- */

/*
 * Stop reading from m until no member lags (room_release). Bytes already
 * on their way may still arrive and are relayed; the rest wait in TCP on
 * m's side, where they cost the server nothing.
 */
static void member_hold(struct member *m)
{
	if (m->held)
		return;
	m->held = true;
	evr_conn_pause(m->c);
}

/*
 * A member began to lag: hold every member, not only the authors of lines
 * to it. A pause must come before the bytes, not after them: under
 * io_uring an author's receive may have filled the whole receive pool by
 * the time its first buffer is handled, so pausing each author as its
 * lines reach a laggard lets each of them bring in a pool of lines first
 * (eight authors of one-letter lines pushed a reader past wq_max so).
 * Held at once, all of them bring in about one pool between them under
 * io_uring, the buffer in hand under epoll. Costs a pass over the room
 * per lag, not per line.
 */
static void room_hold(struct room *r)
{
	for (struct member *m = r->head; m; m = m->next)
		member_hold(m);
}

/* The last laggard caught up or left: everyone reads again. */
static void room_release(struct room *r)
{
	for (struct member *m = r->head; m; m = m->next) {
		if (!m->held)
			continue;
		m->held = false;
		evr_conn_resume(m->c);
	}
}

/*
 * Queue b, a line from a member or from the server, to m. A queue over
 * WQ_HIGH makes m a laggard until on_sent finds it down to WQ_LOW; the gap
 * keeps the room from being held and released at every line. A failed
 * send needs no care here: the core aborts a member whose queue is over
 * wq_max, and on_close takes it out of the room.
 */
static void member_send(struct member *m, struct evr_buf *b)
{
	struct room *r = m->room;

	if (evr_send(m->c, b) < 0 || m->lagging ||
	    evr_conn_queued(m->c) <= WQ_HIGH)
		return;
	m->lagging = true;
	if (!r->lagging++)
		room_hold(r);
}

/* m lags no more: it caught up, or it is leaving. */
static void member_caught_up(struct member *m)
{
	struct room *r = m->room;

	if (!m->lagging)
		return;
	m->lagging = false;
	if (!--r->lagging)
		room_release(r);
}

/* ---- lines out ---- */

/*
 * Append a line to b: head, then len bytes of text with control characters
 * replaced by '?', then CRLF. The caller made room: strlen(head) + len + 2.
 */
static void line_put(struct evr_buf *b, const char *head, const char *text,
		     size_t len)
{
	size_t n = strlen(head);
	char *p = b->data + b->len;

	memcpy(p, head, n);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)text[i];

		p[n + i] =
		    (ch < 0x20 && ch != '\t') || ch == 0x7f ? '?' : (char)ch;
	}
	memcpy(p + n + len, "\r\n", 2);
	b->len += (uint32_t)(n + len + 2);
}

/* A new buffer holding one line; one reference, the caller's. NULL when
 * out of memory. */
static struct evr_buf *line_new(struct evr_loop *l, const char *head,
				const char *text, size_t len)
{
	struct evr_buf *b = evr_buf_new(l, strlen(head) + len + 2);

	if (b)
		line_put(b, head, text, len);
	return b;
}

/*
 * Queue b to every member but skip. Zero copy: each evr_send takes its own
 * reference to the same buffer, which goes when the last recipient has
 * sent it.
 */
static void room_send(struct room *r, const struct member *skip,
		      struct evr_buf *b)
{
	for (struct member *m = r->head; m; m = m->next)
		if (m != skip)
			member_send(m, b);
}

/* Send the batch, if any, to everyone but its author; drop our reference.
 * Called before any other line goes out, so that none overtakes it. */
static void room_flush(struct room *r)
{
	if (!r->batch)
		return;
	room_send(r, r->batch_from, r->batch);
	evr_buf_unref(r->batch);
	r->batch = NULL;
	r->batch_from = NULL;
}

/*
 * "from text" to everyone but from. Formatted once into a buffer that all
 * recipients share; consecutive lines of one member share it too, up to
 * BATCH_BYTES, and go out when its on_data returns (chat_data).
 *
 * Why batch: a connection has one send in flight, of at most 64 queued
 * buffers, so a recipient takes at most 64 buffers per loop iteration;
 * with a buffer per line, a fast member's short lines would pile up in
 * the queues of members that read at full speed, and the room would be
 * held for readers that are not slow at all. Batched, the lines of one
 * received buffer cost each recipient one or two queue entries (and main
 * keeps the receive pool small).
 */
static void room_say(struct room *r, struct member *from, struct evr_loop *l,
		     const char *text, size_t len)
{
	char head[NICK_MAX + 2];
	size_t need;

	snprintf(head, sizeof(head), "%s ", from->nick);
	need = strlen(head) + len + 2;
	if (r->batch &&
	    (r->batch_from != from || r->batch->cap - r->batch->len < need))
		room_flush(r);
	if (!r->batch) {
		r->batch =
		    evr_buf_new(l, need > BATCH_BYTES ? need : BATCH_BYTES);
		if (!r->batch) {
			evr_log_warn("out of memory: a line was not relayed");
			return;
		}
		r->batch_from = from;
	}
	line_put(r->batch, head, text, len);
}

/* A line from the server ("* alice joined") to every member. */
static void room_announce(struct room *r, struct evr_loop *l, const char *line)
{
	struct evr_buf *b;

	room_flush(r);
	b = line_new(l, line, NULL, 0);
	if (!b) {
		evr_log_warn("out of memory: \"%s\" was not sent", line);
		return;
	}
	room_send(r, NULL, b);
	evr_buf_unref(b);
}

/* ---- commands ---- */

/* Each returns what the line handler returns: <0 to stop reading. */
typedef int (*cmd_fn)(struct member *m, char *args);

static int cmd_nick(struct member *m, char *args)
{
	char head[NICK_MAX + 16], peer[EVR_ADDRSTRLEN] = "?";
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (joined(m)) {
		evr_line_sendf(m->c, "ERR already joined as %s", m->nick);
		return 0;
	}
	if (!valid_nick(args)) {
		evr_line_sendf(m->c, "ERR bad nick: 1-%d of A-Z a-z 0-9 _ -",
			       NICK_MAX);
		return 0;
	}
	/* a member called ERR would be mistaken for the server's errors */
	if (!strcasecmp(args, "ERR")) {
		evr_line_sendf(m->c, "ERR nick %s is reserved", args);
		return 0;
	}
	if (room_find(m->room, args)) {
		evr_line_sendf(m->c, "ERR nick %s is taken", args);
		return 0;
	}
	strcpy(m->nick, args);
	room_add(m->room, m);
	if (m->room->lagging)
		member_hold(m); /* as the others are */
	snprintf(head, sizeof(head), "* %s joined", m->nick);
	room_announce(m->room, evr_conn_loop(m->c), head);
	if (evr_conn_peer(m->c, &ss, &sl) == 0)
		evr_addr_str((struct sockaddr *)&ss, peer, sizeof(peer));
	evr_log_info("%s joined from %s (%u in the room)", m->nick, peer,
		     m->room->n);
	return 0;
}

static int cmd_msg(struct member *m, char *args)
{
	char head[NICK_MAX + 4];
	size_t tlen = strcspn(args, " \t");
	char *text = args + tlen;
	struct member *to;
	struct evr_buf *b;

	text += strspn(text, " \t");
	args[tlen] = '\0';
	if (!tlen || !*text) {
		evr_line_sendf(m->c, "ERR usage: /msg <nick> <text>");
		return 0;
	}
	to = valid_nick(args) ? room_find(m->room, args) : NULL;
	if (!to) {
		evr_line_sendf(m->c, "ERR no such nick%s%s",
			       valid_nick(args) ? " " : "",
			       valid_nick(args) ? args : "");
		return 0;
	}
	snprintf(head, sizeof(head), "*%s* ", m->nick);
	b = line_new(evr_conn_loop(m->c), head, text, strlen(text));
	if (!b) {
		evr_line_sendf(m->c, "ERR out of memory");
		return 0;
	}
	member_send(to, b);
	evr_buf_unref(b);
	return 0;
}

static int cmd_who(struct member *m, char *args)
{
	struct room *r = m->room;
	struct evr_buf *b;
	size_t len;

	(void)args;
	b = evr_buf_new(evr_conn_loop(m->c), 32 + r->n * (NICK_MAX + 1));
	if (!b) {
		evr_line_sendf(m->c, "ERR out of memory");
		return 0;
	}
	len = (size_t)sprintf(b->data, "* %u member%s:", r->n,
			      r->n == 1 ? "" : "s");
	for (struct member *o = r->head; o; o = o->next)
		len += (size_t)sprintf(b->data + len, " %s", o->nick);
	memcpy(b->data + len, "\r\n", 2);
	b->len = (uint32_t)len + 2;
	evr_send(m->c, b);
	evr_buf_unref(b);
	return 0;
}

/* on_close says "left" to the others. */
static int cmd_quit(struct member *m, char *args)
{
	(void)args;
	evr_line_sendf(m->c, "* bye");
	evr_close(m->c);
	return -1;
}

static const struct command {
	const char *name;
	bool members_only;
	cmd_fn run;
} commands[] = {
	{ "NICK", false, cmd_nick },
	{ "/msg", true, cmd_msg },
	{ "/who", true, cmd_who },
	{ "/quit", false, cmd_quit },
};

/* The command that line starts with (its first word, any case), and where
 * its arguments start; NULL for ordinary text. */
static const struct command *command_find(char *line, char **args)
{
	size_t n = strcspn(line, " \t");

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strlen(commands[i].name) != n ||
		    strncasecmp(commands[i].name, line, n))
			continue;
		*args = line + n + strspn(line + n, " \t");
		for (char *e = *args + strlen(*args);
		     e > *args && (e[-1] == ' ' || e[-1] == '\t');)
			*--e = '\0';
		return &commands[i];
	}
	return NULL;
}

/* ---- the module ---- */

static int chat_line(struct evr_conn *c, struct evr_buf *b, char *line,
		     size_t len)
{
	struct member *m = evr_conn_state(c);
	const struct command *cmd;
	char *args;

	(void)b;
	line[len] = '\0'; /* the framer leaves a byte of room */
	cmd = command_find(line, &args);
	if (!cmd && joined(m) && line[0] != '/') {
		if (len)
			room_say(m->room, m, evr_conn_loop(c), line, len);
		return 0;
	}
	room_flush(m->room); /* what m said before goes first */
	if (cmd && (!cmd->members_only || joined(m)))
		return cmd->run(m, args);
	if (!joined(m))
		evr_line_sendf(c, "ERR join first: NICK <name>");
	else
		evr_line_sendf(c, "ERR unknown command (/msg, /who, /quit)");
	return 0;
}

static int chat_accept(struct evr_conn *c)
{
	static const struct evr_line_cfg lcfg = { .max_line = CHAT_LINE_MAX };
	struct member *m = evr_conn_state(c);

	m->c = c;
	m->room = evr_conn_conf(c);
	evr_line_init(&m->lf, c, &lcfg, chat_line);
	return evr_line_sendf(c, GREETING);
}

static void chat_data(struct evr_conn *c, struct evr_buf *b)
{
	struct member *m = evr_conn_state(c);

	evr_line_feed(&m->lf, b);
	room_flush(m->room);
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

/*
 * The last call for c, in the loop's flush pass: leave the room and tell
 * the others. err says why a member was dropped: -ENOBUFS when its queue
 * went over wq_max, -ETIMEDOUT after send_timeout_ms without progress.
 */
static void chat_close(struct evr_conn *c, int err)
{
	struct member *m = evr_conn_state(c);
	char head[NICK_MAX + 8];

	evr_line_fini(&m->lf);
	if (!joined(m))
		return;
	room_del(m->room, m);
	member_caught_up(m); /* the room it held back goes on */
	snprintf(head, sizeof(head), "* %s left", m->nick);
	room_announce(m->room, evr_conn_loop(c), head);
	if (err)
		evr_log_info("%s left: %s (%u in the room)", m->nick,
			     strerror(-err), m->room->n);
	else
		evr_log_info("%s left (%u in the room)", m->nick, m->room->n);
}

static const struct evr_proto chat_proto = {
	.name = "chat",
	.summary = "a chat room in a line protocol",
	.state_size = sizeof(struct member),
	.on_accept = chat_accept,
	.on_data = chat_data,
	.on_sent = chat_sent,
	.on_close = chat_close,
};

/* ---- main ---- */

static void on_signal(struct evr_loop *l, int signo, void *arg)
{
	(void)arg;
	evr_log_info("%s: stopping", strsignal(signo));
	evr_loop_stop(l);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: chat [-b ADDR]... [-p PORT] [--backend NAME]\n"
		   "  -b, --bind ADDR   listen on ADDR (repeatable; default "
		   "127.0.0.1)\n"
		   "  -p, --port PORT   TCP port (default 9100; 0: any free "
		   "port)\n"
		   "      --backend NAME  auto (default), io_uring or epoll\n");
}

struct args {
	const char *bind[MAX_BINDS];
	int nbind;
	uint16_t port;
	const char *backend;
};

/* 0, 1 after --help, or -EXIT_USAGE after saying why. */
static int parse_args(struct args *a, int argc, char **argv)
{
	enum { OPT_BACKEND = 256 };
	static const struct option opts[] = {
		{ "bind", required_argument, NULL, 'b' },
		{ "port", required_argument, NULL, 'p' },
		{ "backend", required_argument, NULL, OPT_BACKEND },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	long v;
	int c;

	a->port = CHAT_PORT;
	while ((c = getopt_long(argc, argv, "b:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (a->nbind == MAX_BINDS) {
				fprintf(stderr, "chat: too many -b\n");
				return -EXIT_USAGE;
			}
			a->bind[a->nbind++] = optarg;
			break;
		case 'p':
			v = strtol(optarg, &end, 10);
			if (!*optarg || *end || v < 0 || v > 65535) {
				fprintf(stderr,
					"chat: port \"%s\": expected 0-65535\n",
					optarg);
				return -EXIT_USAGE;
			}
			a->port = (uint16_t)v;
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
	return 0;
}

/*
 * Limits of a member's connection. Lines to a member queue in its own
 * write queue, in buffers shared by all recipients, so the room's memory is
 * about the longest queue, not the sum of them.
 *
 * wq_high and wq_low are where a member counts as behind and as caught up
 * again, both for the core, which stops reading from it meanwhile (its own
 * /who cannot pile up either), and for the room, which stops reading from
 * everyone (member_send, chat_sent). 64 KiB is hundreds of long lines,
 * thousands of short ones; 16 KiB leaves a few sends of margin before the
 * room goes on.
 *
 * wq_max is a backstop, not the way a member goes. What was on its way
 * when the room is held still arrives and is relayed: under io_uring the
 * receive pool's worth (32 KiB) that the kernel filled before the cancels,
 * under epoll the buffer in hand (2 KiB). One-letter lines from a
 * 16-letter nick come out ten times as long as they went in: 320 KiB at
 * worst on top of wq_high, which 1 MiB holds with room to spare.
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

/* Listen on host:port and print the listener line: 0, or minus the exit
 * status after saying why not. */
static int listen_on(struct evr_loop *loop, struct room *room, const char *host,
		     uint16_t port)
{
	struct evr_listen_cfg cfg = {
		.proto = &chat_proto,
		.conf = room,
		.lim = chat_limits,
	};
	struct evr_listener *ls;
	struct sockaddr_storage ss;
	char a[EVR_ADDRSTRLEN];
	socklen_t len;
	int err;

	if (evr_addr_parse(host, port, &ss, &len) < 0) {
		fprintf(stderr,
			"chat: bind address \"%s\": not a numeric "
			"IPv4 or IPv6 address\n",
			host);
		return -EXIT_USAGE;
	}
	evr_addr_str((struct sockaddr *)&ss, a, sizeof(a));
	err = evr_listen(loop, (struct sockaddr *)&ss, len, &cfg, &ls);
	if (err < 0) {
		evr_log_err("bind %s: %s", a, strerror(-err));
		return -EXIT_RUNTIME;
	}
	len = sizeof(ss);
	evr_listener_addr(ls, &ss, &len); /* the port, if it was 0 */
	printf("listen chat tcp %s %s\n",
	       evr_addr_str((struct sockaddr *)&ss, a, sizeof(a)),
	       evr_loop_backend(loop));
	return 0;
}

int main(int argc, char **argv)
{
	struct room room = { 0 };
	struct evr_loop_opts lo;
	struct evr_loop *loop;
	struct args a = { 0 };
	int err;

	evr_log_set_ident("chat");
	signal(SIGPIPE, SIG_IGN);
	err = parse_args(&a, argc, argv);
	if (err)
		return err > 0 ? 0 : -err;
	evr_loop_opts_init(&lo);
	lo.backend = a.backend;
	/*
	 * A small receive pool bounds what a member puts in the others'
	 * queues in one loop iteration, and what still arrives after the room
	 * holds it back (chat_limits). Under io_uring one iteration takes in
	 * at most the whole pool, under epoll at most 16 buffers per
	 * connection: 32 KiB from one member either way, relayed in few enough
	 * buffers for each recipient's one send per iteration to carry
	 * (room_say). 32 KiB per iteration is still hundreds of MB/s.
	 */
	lo.buf_size = CHAT_BUF_SIZE;
	lo.buf_count = CHAT_BUF_COUNT;
	err = evr_loop_new(&loop, &lo);
	if (err < 0) {
		if (err != -ENOTSUP && err != -EINVAL)
			evr_log_err("cannot create the event loop: %s",
				    strerror(-err));
		return err == -EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
	}
	err = evr_signal_add(loop, SIGINT, on_signal, NULL);
	if (!err)
		err = evr_signal_add(loop, SIGTERM, on_signal, NULL);
	if (err < 0) {
		evr_log_err("signalfd: %s", strerror(-err));
		err = -EXIT_RUNTIME;
		goto out_free;
	}
	for (int i = 0; i < a.nbind; i++) {
		err = listen_on(loop, &room, a.bind[i], a.port);
		if (err)
			goto out_free;
	}
	fflush(stdout);
	err = evr_loop_run(loop);
	if (err < 0) {
		evr_log_err("event loop: %s", strerror(-err));
		err = -EXIT_RUNTIME;
	}
out_free:
	/* on_close has run for every member: the room is empty */
	evr_loop_free(loop);
	return -err;
}
