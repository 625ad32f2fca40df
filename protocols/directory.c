/* SPDX-License-Identifier: MIT */
/*
 * directory.c - a service directory in a line protocol: the portmapper of
 * inetd's world, built on the line framer.
 *
 *	REGISTER name port [tcp|udp] [session]
 *	UNREGISTER name
 *	LOOKUP name
 *	LIST
 *	HELP
 *	QUIT
 *
 * Every reply is one line starting with "OK" or "ERR", except LIST and
 * HELP, which send their lines and end with an OK line. Commands are case
 * insensitive; words are separated by spaces or tabs.
 *
 * The directory belongs to the service (every connection to it sees the
 * same entries) and starts with what evringd itself serves ("evringd"
 * entries, which cannot be changed). A registration lasts until it is
 * unregistered, or, with "session", until the registering connection
 * closes; only that connection may unregister a session entry. The table
 * is bounded (DIR_MAX entries, DIR_PER_CONN registrations per connection).
 * There is no authentication: serve it on loopback for cooperating local
 * programs.
 */
#include "line.h"
#include "modules.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DIR_MAX	     1024
#define DIR_PER_CONN 64
#define DIR_NAME_MAX 63
#define DIR_WORDS    6
/* Replies queued for a connection above which it parses no more commands
 * (the framer holds the rest of the input and reading pauses), and below
 * which it resumes: what one receive of commands can make the server hold
 * is bounded by these, not by the size of the receive. */
#define DIR_QUEUE_HIGH (16 * 1024)
#define DIR_QUEUE_LOW  (4 * 1024)

enum scope { S_SELF, S_PERSISTENT, S_SESSION };

static const char *const scope_names[] = {
	[S_SELF] = "evringd",
	[S_PERSISTENT] = "persistent",
	[S_SESSION] = "session",
};

struct entry {
	char name[DIR_NAME_MAX + 1];
	uint16_t port;
	bool udp;
	enum scope scope;
	const struct evr_conn *owner; /* S_SESSION */
};

struct dir_conf {
	struct entry *e; /* DIR_MAX entries, allocated at conf_init */
	uint32_t n;
};

struct dir_conn {
	struct evr_line lf;
	uint32_t registered; /* registrations made over this connection */
};

static int dir_conf_init(void *p)
{
	struct dir_conf *d = p;

	d->e = calloc(DIR_MAX, sizeof(*d->e));
	d->n = 0;
	return d->e ? 0 : -ENOMEM;
}

static void dir_conf_fini(void *p)
{
	struct dir_conf *d = p;

	free(d->e);
	d->e = NULL;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	return n && n <= DIR_NAME_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789._-") == n;
}

static struct entry *find(struct dir_conf *d, const char *name, bool udp)
{
	for (uint32_t i = 0; i < d->n; i++)
		if (d->e[i].udp == udp && !strcmp(d->e[i].name, name))
			return &d->e[i];
	return NULL;
}

static void remove_at(struct dir_conf *d, uint32_t i)
{
	d->e[i] = d->e[--d->n];
}

/* "name port proto": what evringd serves itself (its LIST of sockets). */
static int dir_conf_set(void *p, const char *key, const char *value)
{
	struct dir_conf *d = p;
	char name[DIR_NAME_MAX + 1], proto[8];
	unsigned port;

	if (strcmp(key, "served"))
		return -ENOENT;
	if (sscanf(value, "%63s %u %7s", name, &port, proto) != 3 ||
	    !valid_name(name) || port > 65535 ||
	    (strcmp(proto, "tcp") && strcmp(proto, "udp")))
		return -EINVAL;
	if (find(d, name, proto[0] == 'u'))
		return 0; /* the same port on another address */
	if (d->n == DIR_MAX)
		return -ENOSPC;
	struct entry *e = &d->e[d->n++];
	memset(e, 0, sizeof(*e));
	strcpy(e->name, name);
	e->port = (uint16_t)port;
	e->udp = proto[0] == 'u';
	e->scope = S_SELF;
	return 0;
}

/* Split line in place into at most DIR_WORDS words. */
static int split(char *line, char **w)
{
	char *save = NULL;
	int n = 0;

	for (char *s = strtok_r(line, " \t", &save); s;
	     s = strtok_r(NULL, " \t", &save)) {
		if (n == DIR_WORDS)
			return -1;
		w[n++] = s;
	}
	return n;
}

static void cmd_register(struct evr_conn *c, struct dir_conf *d, char **w,
			 int n)
{
	struct dir_conn *st = evr_conn_state(c);
	bool udp = false, session = false;
	char *end;
	long port;

	if (n < 3 || n > 5)
		goto usage;
	for (int i = 3; i < n; i++) {
		if (!strcasecmp(w[i], "tcp") && i == 3)
			udp = false;
		else if (!strcasecmp(w[i], "udp") && i == 3)
			udp = true;
		else if (!strcasecmp(w[i], "session"))
			session = true;
		else
			goto usage;
	}
	port = strtol(w[2], &end, 10);
	if (!valid_name(w[1])) {
		evr_line_sendf(c, "ERR bad name (1-%d of A-Z a-z 0-9 . _ -)",
			       DIR_NAME_MAX);
		return;
	}
	if (*end || port < 1 || port > 65535) {
		evr_line_sendf(c, "ERR bad port \"%s\" (1-65535)", w[2]);
		return;
	}
	struct entry *e = find(d, w[1], udp);
	if (e) {
		evr_line_sendf(c, "ERR %s/%s is already registered%s", w[1],
			       udp ? "udp" : "tcp",
			       e->scope == S_SELF ? " (served by evringd)"
						  : "; UNREGISTER it first");
		return;
	}
	if (d->n == DIR_MAX || st->registered == DIR_PER_CONN) {
		evr_line_sendf(c, "ERR directory full (%s limit reached)",
			       d->n == DIR_MAX ? "table" : "connection");
		return;
	}
	e = &d->e[d->n++];
	memset(e, 0, sizeof(*e));
	strcpy(e->name, w[1]);
	e->port = (uint16_t)port;
	e->udp = udp;
	e->scope = session ? S_SESSION : S_PERSISTENT;
	e->owner = session ? c : NULL;
	st->registered++;
	evr_line_sendf(c, "OK registered %s %ld/%s %s", e->name, port,
		       udp ? "udp" : "tcp", scope_names[e->scope]);
	return;
usage:
	evr_line_sendf(c, "ERR usage: REGISTER name port [tcp|udp] [session]");
}

static void cmd_unregister(struct evr_conn *c, struct dir_conf *d, char **w,
			   int n)
{
	uint32_t removed = 0, refused = 0;

	if (n != 2) {
		evr_line_sendf(c, "ERR usage: UNREGISTER name");
		return;
	}
	for (uint32_t i = 0; i < d->n;) {
		struct entry *e = &d->e[i];

		if (strcmp(e->name, w[1])) {
			i++;
			continue;
		}
		if (e->scope == S_SELF ||
		    (e->scope == S_SESSION && e->owner != c)) {
			refused++;
			i++;
			continue;
		}
		remove_at(d, i);
		removed++;
	}
	if (removed)
		evr_line_sendf(c, "OK unregistered %s (%u entries)", w[1],
			       removed);
	else if (refused)
		evr_line_sendf(c,
			       "ERR %s is served by evringd or registered "
			       "by another session",
			       w[1]);
	else
		evr_line_sendf(c, "ERR no such name \"%s\"", w[1]);
}

static void cmd_lookup(struct evr_conn *c, struct dir_conf *d, char **w, int n)
{
	char out[256];
	size_t len;
	int found = 0;

	if (n != 2) {
		evr_line_sendf(c, "ERR usage: LOOKUP name");
		return;
	}
	len = (size_t)snprintf(out, sizeof(out), "OK %s", w[1]);
	for (uint32_t i = 0; i < d->n && len < sizeof(out); i++) {
		if (strcmp(d->e[i].name, w[1]))
			continue;
		len +=
		    (size_t)snprintf(out + len, sizeof(out) - len, " %u/%s",
				     d->e[i].port, d->e[i].udp ? "udp" : "tcp");
		found++;
	}
	if (found)
		evr_line_sendf(c, "%s", out);
	else
		evr_line_sendf(c, "ERR no such name \"%s\"", w[1]);
}

/* The longest LIST line: name, port, protocol, scope, CRLF. */
#define LIST_LINE_MAX (DIR_NAME_MAX + sizeof(" 65535/tcp persistent\r\n"))

/*
 * Every entry, one line each, then "OK N entries": gathered in one buffer
 * and queued with one evr_send, so a LIST of a full table costs one buffer
 * of its own size, not one per line.
 */
static void cmd_list(struct evr_conn *c, struct dir_conf *d)
{
	size_t cap = (size_t)d->n * LIST_LINE_MAX + 32, len = 0;
	struct evr_buf *b = evr_buf_new(evr_conn_loop(c), cap);

	if (!b) {
		evr_line_sendf(c, "ERR out of memory");
		return;
	}
	for (uint32_t i = 0; i < d->n; i++)
		len += (size_t)snprintf(b->data + len, cap - len,
					"%s %u/%s %s\r\n", d->e[i].name,
					d->e[i].port,
					d->e[i].udp ? "udp" : "tcp",
					scope_names[d->e[i].scope]);
	len += (size_t)snprintf(b->data + len, cap - len,
				"OK %u entries\r\n", d->n);
	b->len = (uint32_t)len;
	evr_send(c, b);
	evr_buf_unref(b);
}

static void cmd_help(struct evr_conn *c)
{
	static const char help[] = "REGISTER name port [tcp|udp] [session]\r\n"
				   "UNREGISTER name\r\n"
				   "LOOKUP name\r\n"
				   "LIST\r\n"
				   "QUIT\r\n"
				   "OK\r\n";

	evr_send_copy(c, help, sizeof(help) - 1);
}

static int dir_line(struct evr_conn *c, struct evr_buf *b, char *line,
		    size_t len)
{
	static struct dir_conf none;
	struct dir_conf *d = evr_conn_conf(c);
	char *w[DIR_WORDS];
	int n;

	(void)b;
	if (!d || !d->e)
		d = &none;
	line[len] = '\0'; /* the byte after the line: its LF, or room */
	n = split(line, w);
	if (n == 0)
		return 0;
	if (n < 0)
		evr_line_sendf(c, "ERR too many words");
	else if (!strcasecmp(w[0], "REGISTER"))
		cmd_register(c, d, w, n);
	else if (!strcasecmp(w[0], "UNREGISTER"))
		cmd_unregister(c, d, w, n);
	else if (!strcasecmp(w[0], "LOOKUP"))
		cmd_lookup(c, d, w, n);
	else if (!strcasecmp(w[0], "LIST") && n == 1)
		cmd_list(c, d);
	else if (!strcasecmp(w[0], "HELP"))
		cmd_help(c);
	else if (!strcasecmp(w[0], "QUIT")) {
		evr_line_sendf(c, "OK bye");
		evr_close(c);
		return -1;
	} else
		evr_line_sendf(c,
			       "ERR unknown command \"%.32s\" (REGISTER, "
			       "UNREGISTER, LOOKUP, LIST, HELP, QUIT)",
			       w[0]);
	/* a client that sends and does not read: stop here until the
	 * replies have gone (dir_sent) */
	return evr_conn_queued(c) > DIR_QUEUE_HIGH ? EVR_LINE_HOLD : 0;
}

static int dir_accept(struct evr_conn *c)
{
	struct dir_conn *st = evr_conn_state(c);

	evr_line_init(&st->lf, c, NULL, dir_line);
	return 0;
}

static void dir_data(struct evr_conn *c, struct evr_buf *b)
{
	struct dir_conn *st = evr_conn_state(c);

	evr_line_feed(&st->lf, b);
}

/* Replies have gone out: parse what is held once the queue is low. */
static void dir_sent(struct evr_conn *c, size_t n)
{
	struct dir_conn *st = evr_conn_state(c);

	(void)n;
	if (evr_line_held(&st->lf) && evr_conn_queued(c) <= DIR_QUEUE_LOW)
		evr_line_resume(&st->lf);
}

/* The client has sent everything: answer what is held, then close. */
static void dir_eof(struct evr_conn *c)
{
	struct dir_conn *st = evr_conn_state(c);

	evr_line_eof(&st->lf);
}

/* Session entries go with their connection. */
static void dir_close(struct evr_conn *c, int err)
{
	struct dir_conn *st = evr_conn_state(c);
	struct dir_conf *d = evr_conn_conf(c);

	(void)err;
	evr_line_fini(&st->lf);
	if (!d || !d->e)
		return;
	for (uint32_t i = 0; i < d->n;)
		if (d->e[i].scope == S_SESSION && d->e[i].owner == c)
			remove_at(d, i);
		else
			i++;
}

static const struct evr_proto_opt dir_opts[] = {
	{ "served", "NAME PORT tcp|udp: a socket of this server, listed as "
		    "such (evringd sets it for each of its sockets)" },
	{ NULL, NULL },
};

const struct evr_proto evr_proto_directory = {
	.opts = dir_opts,
	.name = "directory",
	.summary = "a service directory: REGISTER, LOOKUP, LIST (line "
		   "protocol)",
	.state_size = sizeof(struct dir_conn),
	.conf_size = sizeof(struct dir_conf),
	.conf_init = dir_conf_init,
	.conf_set = dir_conf_set,
	.conf_fini = dir_conf_fini,
	.on_accept = dir_accept,
	.on_data = dir_data,
	.on_sent = dir_sent,
	.on_eof = dir_eof,
	.on_close = dir_close,
};
