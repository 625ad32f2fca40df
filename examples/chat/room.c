/* SPDX-License-Identifier: MIT */
/*
 * room.c - the chat room: who is in it, in order of joining, and whether
 * someone lags. It lives on loop 0 and nowhere else; every loop sends it
 * what its members type (chat.c), it runs the commands and sends each line
 * out once to every loop.
 *
 * Layout: the room, what it sends, the commands (a table), the messages
 * it takes (and keeps for later while it is held).
 */
#include "chat.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the room ---- */

struct entry {
	who_t who;
	char nick[NICK_MAX + 1];
};

/* Everyone who has joined, in order of joining; used by loop 0 alone. */
struct room {
	struct evr_loop *loop;
	unsigned nloops;
	struct entry *e;
	uint32_t n, cap;
	uint32_t lagging; /* loops with a laggard */
	size_t *unacked;  /* by loop: lines sent, not taken */
	size_t *ran;	  /* by loop: its lines run, not told */
	struct cmd *backlog, **backlog_tail; /* kept while held */
	/* Lines of batch_from not yet sent out (room_say). */
	struct text *batch;
	who_t batch_from;
};

static struct room the_room;

static struct entry *room_find(struct room *r, const char *nick)
{
	for (uint32_t i = 0; i < r->n; i++)
		if (!strcasecmp(r->e[i].nick, nick))
			return &r->e[i];
	return NULL;
}

static struct entry *room_who(struct room *r, who_t who)
{
	for (uint32_t i = 0; i < r->n; i++)
		if (r->e[i].who == who)
			return &r->e[i];
	return NULL;
}

static struct out *out_new(enum out_kind kind, who_t who, struct text *t)
{
	struct out *o = calloc(1, sizeof(*o));

	if (!o) {
		text_put(t);
		return NULL;
	}
	o->kind = kind;
	o->who = who;
	o->t = t;
	return o;
}

/* A message to every loop (t: one reference each). */
static void room_to_all(struct room *r, enum out_kind kind, who_t who,
			struct text *t)
{
	for (unsigned i = 0; i < r->nloops; i++) {
		struct out *o;

		if (t) {
			atomic_fetch_add(&t->refs, 1);
			r->unacked[i] += t->len;
		}
		o = out_new(kind, who, t);
		if (o)
			post_out(r->loop, i, o);
	}
	text_put(t); /* ours */
}

static void room_to_one(struct room *r, enum out_kind kind, who_t who,
			struct text *t)
{
	struct out *o;

	if (t)
		r->unacked[who_loop(who)] += t->len;
	o = out_new(kind, who, t);
	if (o)
		post_out(r->loop, who_loop(who), o);
}

/* Commands wait while a member lags, or while a loop has not taken in
 * what the room sent it. */
static bool room_stalled(const struct room *r)
{
	if (r->lagging)
		return true;
	for (unsigned i = 0; i < r->nloops; i++)
		if (r->unacked[i] > OUT_CREDIT)
			return true;
	return false;
}

/* Send the batch, if any, to everyone but its author. Called before any
 * other line goes out, so that none overtakes it. */
static void room_flush(struct room *r)
{
	if (!r->batch)
		return;
	room_to_all(r, OUT_ALL, r->batch_from, r->batch);
	r->batch = NULL;
}

/*
 * "from text" to everyone but from. Formatted once; consecutive lines of
 * one member share a text up to BATCH_BYTES and go out when the room is
 * done with the lines of one receive (room_lines).
 *
 * Why batch: a connection has one send in flight, of at most 64 queued
 * buffers, so a recipient takes at most 64 buffers per loop iteration;
 * with a buffer per line, a fast member's short lines would pile up in
 * the queues of members that read at full speed, and the room would be
 * held for readers that are not slow at all. Batched, the lines of one
 * received buffer cost each recipient one or two queue entries (and main
 * keeps the receive pool small).
 */
static void room_say(struct room *r, const struct entry *from, const char *s,
		     size_t len)
{
	char head[NICK_MAX + 2];
	size_t need;

	snprintf(head, sizeof(head), "%s ", from->nick);
	need = strlen(head) + len + 2;
	if (r->batch && (r->batch_from != from->who ||
			 r->batch->cap - r->batch->len < need))
		room_flush(r);
	if (!r->batch) {
		r->batch = text_new(need > BATCH_BYTES ? need : BATCH_BYTES);
		if (!r->batch) {
			evr_log_warn("out of memory: a line was not relayed");
			return;
		}
		r->batch_from = from->who;
	}
	line_put(r->batch, head, s, len);
}

/* One line of the server's to who ("ERR ...", "* 3 members: ..."). */
static void room_reply(struct room *r, who_t who, const char *fmt, ...)
    EVR_PRINTF(3, 4);

static void room_reply(struct room *r, who_t who, const char *fmt, ...)
{
	char line[64 + CHAT_LINE_MAX];
	struct text *t;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	t = text_new((size_t)n + 2);
	if (!t)
		return;
	memcpy(t->data, line, (size_t)n);
	memcpy(t->data + n, "\r\n", 2);
	t->len = (uint32_t)n + 2;
	room_to_one(r, OUT_ONE, who, t);
}

/* A line from the server ("* alice joined") to every member. */
static void room_announce(struct room *r, const char *line)
{
	struct text *t = text_new(strlen(line) + 2);

	room_flush(r);
	if (!t) {
		evr_log_warn("out of memory: \"%s\" was not sent", line);
		return;
	}
	line_put(t, line, NULL, 0);
	room_to_all(r, OUT_ALL, 0, t);
}

/* ---- commands, run by the room ---- */

static bool valid_nick(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= NICK_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789_-") == n;
}

/* who (an entry when joined, else NULL) typed a command with args. */
typedef void (*cmd_fn)(struct room *r, who_t who, struct entry *e, char *args);

static void cmd_nick(struct room *r, who_t who, struct entry *e, char *args)
{
	char head[NICK_MAX + 16];
	struct out *o;

	if (e) {
		room_reply(r, who, "ERR already joined as %s", e->nick);
		return;
	}
	if (!valid_nick(args)) {
		room_reply(r, who, "ERR bad nick: 1-%d of A-Z a-z 0-9 _ -",
			   NICK_MAX);
		return;
	}
	/* a member called ERR would be mistaken for the server's errors */
	if (!strcasecmp(args, "ERR")) {
		room_reply(r, who, "ERR nick %s is reserved", args);
		return;
	}
	if (room_find(r, args)) {
		room_reply(r, who, "ERR nick %s is taken", args);
		return;
	}
	if (r->n == r->cap) {
		uint32_t cap = r->cap ? 2 * r->cap : 64;
		struct entry *ne = realloc(r->e, cap * sizeof(*ne));

		if (!ne) {
			room_reply(r, who, "ERR out of memory");
			return;
		}
		r->e = ne;
		r->cap = cap;
	}
	e = &r->e[r->n++];
	e->who = who;
	snprintf(e->nick, sizeof(e->nick), "%s", args);
	/* before the announcement, on the same way: the member hears it */
	o = out_new(OUT_JOINED, who, NULL);
	if (o) {
		memcpy(o->nick, e->nick, sizeof(o->nick));
		o->n = r->n;
		post_out(r->loop, who_loop(who), o);
	}
	snprintf(head, sizeof(head), "* %s joined", e->nick);
	room_announce(r, head);
}

static void cmd_msg(struct room *r, who_t who, struct entry *e, char *args)
{
	char head[NICK_MAX + 4];
	size_t tlen = strcspn(args, " \t");
	char *s = args + tlen;
	struct entry *to;
	struct text *t;

	s += strspn(s, " \t");
	args[tlen] = '\0';
	if (!tlen || !*s) {
		room_reply(r, who, "ERR usage: /msg <nick> <text>");
		return;
	}
	to = valid_nick(args) ? room_find(r, args) : NULL;
	if (!to) {
		room_reply(r, who, "ERR no such nick%s%s",
			   valid_nick(args) ? " " : "",
			   valid_nick(args) ? args : "");
		return;
	}
	snprintf(head, sizeof(head), "*%s* ", e->nick);
	t = text_new(strlen(head) + strlen(s) + 2);
	if (!t) {
		room_reply(r, who, "ERR out of memory");
		return;
	}
	line_put(t, head, s, strlen(s));
	room_to_one(r, OUT_ONE, to->who, t);
}

static void cmd_who(struct room *r, who_t who, struct entry *e, char *args)
{
	struct text *t = text_new(32 + r->n * (NICK_MAX + 1));
	int len;

	(void)e, (void)args;
	if (!t) {
		room_reply(r, who, "ERR out of memory");
		return;
	}
	len = sprintf(t->data, "* %u member%s:", r->n, r->n == 1 ? "" : "s");
	for (uint32_t i = 0; i < r->n; i++)
		len += sprintf(t->data + len, " %s", r->e[i].nick);
	memcpy(t->data + len, "\r\n", 2);
	t->len = (uint32_t)len + 2;
	room_to_one(r, OUT_ONE, who, t);
}

/* Its loop reads no more; the room's leaving is for on_close. */
static void cmd_quit(struct room *r, who_t who, struct entry *e, char *args)
{
	(void)e, (void)args;
	room_to_one(r, OUT_BYE, who, NULL);
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
		for (char *end = *args + strlen(*args);
		     end > *args && (end[-1] == ' ' || end[-1] == '\t');)
			*--end = '\0';
		return &commands[i];
	}
	return NULL;
}

/* One line of who's (NUL-terminated at len; it may hold NULs). */
static void room_line(struct room *r, who_t who, char *line, size_t len)
{
	struct entry *e = room_who(r, who);
	char *args = NULL;
	const struct command *cmd = command_find(line, &args);

	if (!cmd && e && line[0] != '/') {
		if (len)
			room_say(r, e, line, len);
		return;
	}
	room_flush(r); /* what e said before goes first */
	if (cmd && (!cmd->members_only || e))
		cmd->run(r, who, e, args);
	else if (!e)
		room_reply(r, who, "ERR join first: NICK <name>");
	else
		room_reply(r, who, "ERR unknown command (/msg, /who, /quit)");
}

static void room_leave(struct room *r, who_t who, int err)
{
	struct entry *e = room_who(r, who);
	char head[NICK_MAX + 8], nick[NICK_MAX + 1];

	if (!e)
		return; /* a visitor who never joined */
	memcpy(nick, e->nick, sizeof(nick));
	memmove(e, e + 1, (size_t)(r->e + r->n - (e + 1)) * sizeof(*e));
	r->n--;
	snprintf(head, sizeof(head), "* %s left", nick);
	room_announce(r, head);
	/* err says why a member was dropped: -ENOBUFS when its queue went
	 * over wq_max, -ETIMEDOUT after send_timeout_ms without progress */
	if (err)
		evr_log_info("%s left: %s (%u in the room)", nick,
			     strerror(-err), r->n);
	else
		evr_log_info("%s left (%u in the room)", nick, r->n);
}

static void room_run(struct room *r, struct cmd *m)
{
	switch (m->kind) {
	case CMD_LINES:
		for (size_t off = 0; off < m->len;) {
			char *line = m->text + off;
			char *nl = memchr(line, '\n', m->len - off);
			size_t len = (size_t)(nl - line);

			*nl = '\0';
			room_line(r, m->who, line, len);
			off += len + 1;
		}
		room_flush(r);
		if ((r->ran[m->loop] += m->len) >= IN_CREDIT / 4) {
			struct out *o = out_new(OUT_ACK, 0, NULL);

			if (o) {
				o->n = (uint32_t)r->ran[m->loop];
				post_out(r->loop, m->loop, o);
			}
			r->ran[m->loop] = 0;
		}
		break;
	case CMD_EOF:
		room_flush(r);
		room_to_one(r, OUT_CLOSE, m->who, NULL);
		break;
	case CMD_LEAVE:
		room_leave(r, m->who, m->arg);
		break;
	case CMD_LAG:
	case CMD_ACK:
		break; /* run at once: room_cmd */
	}
	free(m);
}

/* Run what waits, until the room stalls again. */
static void room_backlog(struct room *r)
{
	while (r->backlog && !room_stalled(r)) {
		struct cmd *m = r->backlog;

		r->backlog = m->next;
		if (!r->backlog)
			r->backlog_tail = &r->backlog;
		room_run(r, m);
	}
}

/*
 * A message to the room. While some loop lags, or has not taken in what
 * the room sent it, commands wait, in order, until the room goes on (lags
 * and acknowledgements are run at once), so that what loops took in
 * before they heard of a hold does not pile up in a laggard's queue.
 */
void room_cmd(struct evr_loop *l, void *arg)
{
	struct room *r = &the_room;
	struct cmd *m = arg;
	int delta = m->arg;

	(void)l;
	switch (m->kind) {
	case CMD_LAG:
		free(m);
		r->lagging = (uint32_t)((int)r->lagging + delta);
		if (delta > 0 && r->lagging == 1)
			room_to_all(r, OUT_HOLD, 0, NULL);
		else if (!r->lagging)
			room_to_all(r, OUT_RELEASE, 0, NULL);
		break;
	case CMD_ACK:
		r->unacked[m->loop] -= (size_t)delta;
		free(m);
		break;
	default:
		*r->backlog_tail = m;
		r->backlog_tail = &m->next;
	}
	room_backlog(r);
}

int room_init(struct evr_loop *l, unsigned n)
{
	the_room.loop = l;
	the_room.nloops = n;
	the_room.backlog_tail = &the_room.backlog;
	the_room.unacked = calloc(n, sizeof(*the_room.unacked));
	the_room.ran = calloc(n, sizeof(*the_room.ran));
	return the_room.unacked && the_room.ran ? 0 : -ENOMEM;
}

void room_fini(void)
{
	free(the_room.e);
	free(the_room.unacked);
	free(the_room.ran);
}
