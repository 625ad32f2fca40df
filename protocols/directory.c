/* SPDX-License-Identifier: MIT */
/*
 * directory.c - a service directory in a line protocol: the portmapper of
 * inetd's world, built on the line framer.
 *
 *	REGISTER name port [tcp|udp] [session]
 *	UNREGISTER name
 *	LOOKUP name
 *	LIST
 *	AUTH token
 *	HELP
 *	QUIT
 *
 * Every reply is one line starting with "OK" or "ERR", except LIST and
 * HELP, which send their lines and end with an OK line. Commands are case
 * insensitive; words are separated by spaces or tabs. A word quoted back in
 * an error shows the bytes outside printable ASCII as \xHH: a reply never
 * carries a control byte to the client's terminal (ESC ]0;... would set its
 * title).
 *
 * The directory belongs to the service (every connection to it sees the
 * same entries) and starts with what evringd itself serves ("evringd"
 * entries, which no one can change). Who may do what:
 *
 * - Any client may register session entries ("session"): they go when its
 *   connection closes.
 * - A persistent entry outlives its connection, so it takes a trusted
 *   client: by default one on a loopback address or a local socket
 *   (persistent=loopback); persistent=token|any|none change that. A client
 *   that sent AUTH with the token of token_file may always.
 * - Every entry has an owner: a session entry its connection, a persistent
 *   one the source that registered it (an IPv4 address, an IPv6 /64, or
 *   "local"). Only the owner, or a client that sent AUTH, may unregister
 *   it. On one host every local program is the same source: programs that
 *   do not trust each other need the token.
 * - Quotas: max_entries in all; per_conn entries registered over one
 *   connection and still in the table (UNREGISTER gives them back);
 *   per_source persistent entries per source (AUTH lifts it); persistent
 *   entries take at most half of the table, so that session entries always
 *   find room.
 *
 * A client that sends commands and does not read the replies is held at
 * DIR_QUEUE_HIGH bytes of replies: the framer keeps the rest of its input
 * and reading pauses until on_sent finds the queue drained.
 *
 * Layout: configuration (the table and the policy), sources, replies,
 * commands, the module's handlers.
 */
#include "line.h"
#include "modules.h"
#include "refused.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DIR_MAX		1024
#define DIR_MAX_LIMIT	65536
#define DIR_PER_CONN	64
#define DIR_PER_SOURCE	64
#define DIR_NAME_MAX	63
#define DIR_WORDS	6
#define DIR_TOKEN_MIN	16
#define DIR_TOKEN_MAX	128
#define DIR_SHOWN_BYTES 32 /* of a word quoted back */
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

/* Who may register persistent entries (besides a client that sent AUTH). */
enum trust { T_LOOPBACK, T_TOKEN, T_ANY, T_NONE };

static const char *const trust_names[] = {
	[T_LOOPBACK] = "loopback",
	[T_TOKEN] = "token",
	[T_ANY] = "any",
	[T_NONE] = "none",
};

/* A client's source: what owns persistent entries and what per_source
 * counts. IPv6 addresses count per /64, as the core's per-source limit
 * does (one host gets a /64). */
enum src_kind { SRC_NONE, SRC_LOCAL, SRC_V4, SRC_V6 };

struct src {
	uint8_t kind;
	uint8_t a[16];
};

struct entry {
	char name[DIR_NAME_MAX + 1];
	uint16_t port;
	bool udp;
	enum scope scope;
	/* The connection it was registered over, while that is open: the
	 * owner of a session entry, and what per_conn counts. */
	struct evr_conn *via;
	struct src owner; /* S_PERSISTENT */
};

struct dir_conf {
	struct entry *e; /* max entries */
	uint32_t n, max;
	uint32_t npersistent;
	uint32_t per_conn, per_source;
	enum trust persistent;
	char token[DIR_TOKEN_MAX + 1]; /* "": AUTH is off */
};

struct dir_conn {
	struct evr_line lf;
	uint32_t registered; /* entries with via == this connection */
	struct src src;
	bool loopback; /* a loopback address or a local socket */
	bool authed;   /* sent AUTH with the token */
};

static __thread struct evr__refusals refusals;

/* ------------------------------------------------------------------ */
/* Configuration                                                       */
/* ------------------------------------------------------------------ */

static int dir_conf_init(void *p)
{
	struct dir_conf *d = p;

	memset(d, 0, sizeof(*d));
	d->max = DIR_MAX;
	d->per_conn = DIR_PER_CONN;
	d->per_source = DIR_PER_SOURCE;
	d->persistent = T_LOOPBACK;
	d->e = calloc(d->max, sizeof(*d->e));
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
	struct entry *e = &d->e[i];

	if (e->via) {
		struct dir_conn *st = evr_conn_state(e->via);

		st->registered--;
	}
	if (e->scope == S_PERSISTENT)
		d->npersistent--;
	*e = d->e[--d->n];
}

/* A number within [min, max], plain decimal. */
static int parse_count(const char *v, unsigned long min, unsigned long max,
		       uint32_t *out)
{
	unsigned long n = 0;

	if (!*v || strlen(v) > 9 || strspn(v, "0123456789") != strlen(v))
		return -EINVAL;
	n = strtoul(v, NULL, 10);
	if (n < min || n > max)
		return -EINVAL;
	*out = (uint32_t)n;
	return 0;
}

static int set_max_entries(struct dir_conf *d, const char *v)
{
	struct entry *e;
	uint32_t max;

	if (parse_count(v, 1, DIR_MAX_LIMIT, &max) < 0 || max < d->n)
		return -EINVAL;
	e = realloc(d->e, max * sizeof(*e));
	if (!e)
		return -ENOMEM;
	d->e = e;
	d->max = max;
	return 0;
}

/* The token is the first line of the file: a file, not the command line,
 * which every local user can read in ps. */
static int set_token_file(struct dir_conf *d, const char *path)
{
	char buf[DIR_TOKEN_MAX + 2];
	ssize_t n;
	size_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	len = strcspn(buf, "\r\n");
	buf[len] = '\0';
	if (len < DIR_TOKEN_MIN || len > DIR_TOKEN_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (buf[i] <= ' ' || buf[i] >= 0x7f)
			return -EINVAL; /* one word of printable ASCII */
	memcpy(d->token, buf, len + 1);
	return 0;
}

/* "name port proto": what evringd serves itself (its LIST of sockets). */
static int set_served(struct dir_conf *d, const char *value)
{
	char name[DIR_NAME_MAX + 1], proto[8];
	unsigned port;

	if (sscanf(value, "%63s %u %7s", name, &port, proto) != 3 ||
	    !valid_name(name) || port > 65535 ||
	    (strcmp(proto, "tcp") && strcmp(proto, "udp")))
		return -EINVAL;
	if (find(d, name, proto[0] == 'u'))
		return 0; /* the same port on another address */
	if (d->n == d->max)
		return -ENOSPC;
	struct entry *e = &d->e[d->n++];
	memset(e, 0, sizeof(*e));
	strcpy(e->name, name);
	e->port = (uint16_t)port;
	e->udp = proto[0] == 'u';
	e->scope = S_SELF;
	return 0;
}

static int dir_conf_set(void *p, const char *key, const char *value)
{
	struct dir_conf *d = p;

	if (!strcmp(key, "served"))
		return set_served(d, value);
	if (!strcmp(key, "persistent")) {
		for (size_t t = 0;
		     t < sizeof(trust_names) / sizeof(*trust_names); t++)
			if (!strcmp(value, trust_names[t])) {
				d->persistent = (enum trust)t;
				return 0;
			}
		return -EINVAL;
	}
	if (!strcmp(key, "token_file"))
		return set_token_file(d, value);
	if (!strcmp(key, "max_entries"))
		return set_max_entries(d, value);
	if (!strcmp(key, "per_conn"))
		return parse_count(value, 1, DIR_MAX_LIMIT, &d->per_conn);
	if (!strcmp(key, "per_source"))
		return parse_count(value, 1, DIR_MAX_LIMIT, &d->per_source);
	return -ENOENT;
}

/* ------------------------------------------------------------------ */
/* Sources                                                             */
/* ------------------------------------------------------------------ */

/* Where c comes from, and whether that is this host's loopback. */
static void source_of(struct evr_conn *c, struct src *s, bool *loopback)
{
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };
	struct sockaddr_storage ss;
	socklen_t len;

	memset(s, 0, sizeof(*s));
	*loopback = false;
	if (evr_conn_peer(c, &ss, &len) < 0)
		return; /* SRC_NONE: trusted with nothing */
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)&ss;

		s->kind = SRC_V4;
		memcpy(s->a, &in->sin_addr, 4);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)&ss;
		const uint8_t *a = in6->sin6_addr.s6_addr;

		if (!memcmp(a, v4mapped, sizeof(v4mapped))) {
			s->kind = SRC_V4;
			memcpy(s->a, a + 12, 4);
		} else if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) {
			s->kind = SRC_V6;
			memcpy(s->a, a, 16);
			*loopback = true;
		} else {
			s->kind = SRC_V6;
			memcpy(s->a, a, 8); /* the /64 */
		}
	} else if (ss.ss_family == AF_UNIX) {
		s->kind = SRC_LOCAL;
		*loopback = true;
	}
	if (s->kind == SRC_V4 && s->a[0] == 127)
		*loopback = true; /* 127.0.0.0/8 */
}

static bool same_src(const struct src *a, const struct src *b)
{
	return a->kind != SRC_NONE && a->kind == b->kind &&
	       !memcmp(a->a, b->a, sizeof(a->a));
}

static uint32_t persistent_from(const struct dir_conf *d, const struct src *s)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < d->n; i++)
		n += d->e[i].scope == S_PERSISTENT &&
		     same_src(&d->e[i].owner, s);
	return n;
}

/* ------------------------------------------------------------------ */
/* Replies                                                             */
/* ------------------------------------------------------------------ */

#define SHOWN_MAX (DIR_SHOWN_BYTES * 4 + 4)

/*
 * A client's word as it may be quoted back: printable ASCII as is (but
 * for '"' and '\'), every other byte as \xHH, at most DIR_SHOWN_BYTES of
 * it, "..." when cut. Returns out.
 */
static const char *shown(char out[SHOWN_MAX], const char *w)
{
	size_t o = 0, i;

	for (i = 0; w[i] && i < DIR_SHOWN_BYTES; i++) {
		unsigned char ch = (unsigned char)w[i];

		if (ch > ' ' && ch < 0x7f && ch != '"' && ch != '\\')
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, 5, "\\x%02x", ch);
	}
	if (w[i])
		o += (size_t)snprintf(out + o, 4, "...");
	out[o] = '\0';
	return out;
}

/* ------------------------------------------------------------------ */
/* Commands                                                            */
/* ------------------------------------------------------------------ */

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

/* A port: 1 to 65535 in plain decimal, no sign, no leading zero. */
static int parse_port(const char *s)
{
	size_t n = strlen(s);
	long v;

	if (!n || n > 5 || s[0] == '0' || strspn(s, "0123456789") != n)
		return -1;
	v = strtol(s, NULL, 10);
	return v <= 65535 ? (int)v : -1;
}

/* Why st may not register one more persistent entry, or NULL. */
static const char *persistent_refused(const struct dir_conf *d,
				      const struct dir_conn *st, char *why,
				      size_t len)
{
	if (d->persistent == T_NONE)
		return "persistent entries are off here; add \"session\"";
	if (!st->authed && d->persistent == T_TOKEN)
		return "persistent entries need AUTH; add \"session\"";
	if (!st->authed && d->persistent == T_LOOPBACK && !st->loopback)
		return "persistent entries need a loopback client or AUTH; "
		       "add \"session\"";
	if (d->npersistent >= d->max / 2)
		return "directory full (persistent entries take at most half "
		       "of the table)";
	if (!st->authed && persistent_from(d, &st->src) >= d->per_source) {
		snprintf(why, len,
			 "directory full (%u persistent entries from this "
			 "source)",
			 d->per_source);
		return why;
	}
	return NULL;
}

static void cmd_register(struct evr_conn *c, struct dir_conf *d, char **w,
			 int n)
{
	struct dir_conn *st = evr_conn_state(c);
	bool udp = false, session = false;
	char buf[SHOWN_MAX], why[96];
	const char *refused;
	struct entry *e;
	int port;

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
	if (!valid_name(w[1])) {
		evr_line_sendf(c, "ERR bad name (1-%d of A-Z a-z 0-9 . _ -)",
			       DIR_NAME_MAX);
		return;
	}
	port = parse_port(w[2]);
	if (port < 0) {
		evr_line_sendf(c, "ERR bad port \"%s\" (1-65535, decimal)",
			       shown(buf, w[2]));
		return;
	}
	e = find(d, w[1], udp);
	if (e) {
		evr_line_sendf(c, "ERR %s/%s is already registered%s", w[1],
			       udp ? "udp" : "tcp",
			       e->scope == S_SELF ? " (served by evringd)"
						  : "; UNREGISTER it first");
		return;
	}
	if (d->n == d->max) {
		evr_line_sendf(c,
			       "ERR directory full (table limit of %u "
			       "entries reached)",
			       d->max);
		return;
	}
	if (st->registered >= d->per_conn) {
		evr_line_sendf(c,
			       "ERR directory full (connection limit of %u "
			       "reached; UNREGISTER one first)",
			       d->per_conn);
		return;
	}
	refused = session ? NULL : persistent_refused(d, st, why, sizeof(why));
	if (refused) {
		evr_line_sendf(c, "ERR %s", refused);
		return;
	}
	e = &d->e[d->n++];
	memset(e, 0, sizeof(*e));
	strcpy(e->name, w[1]);
	e->port = (uint16_t)port;
	e->udp = udp;
	e->scope = session ? S_SESSION : S_PERSISTENT;
	e->via = c;
	e->owner = st->src;
	st->registered++;
	d->npersistent += e->scope == S_PERSISTENT;
	evr_line_sendf(c, "OK registered %s %d/%s %s", e->name, port,
		       udp ? "udp" : "tcp", scope_names[e->scope]);
	return;
usage:
	evr_line_sendf(c, "ERR usage: REGISTER name port [tcp|udp] [session]");
}

/* Whether c may unregister e: its owner, or a client that sent AUTH. */
static bool may_remove(struct evr_conn *c, const struct dir_conn *st,
		       const struct entry *e)
{
	if (e->scope == S_SELF)
		return false;
	if (st->authed)
		return true;
	if (e->scope == S_SESSION)
		return e->via == c;
	return same_src(&e->owner, &st->src);
}

static void cmd_unregister(struct evr_conn *c, struct dir_conf *d, char **w,
			   int n)
{
	struct dir_conn *st = evr_conn_state(c);
	uint32_t removed = 0, served = 0, others = 0;
	char buf[SHOWN_MAX];

	if (n != 2) {
		evr_line_sendf(c, "ERR usage: UNREGISTER name");
		return;
	}
	for (uint32_t i = 0; i < d->n;) {
		struct entry *e = &d->e[i];

		if (strcmp(e->name, w[1])) {
			i++;
		} else if (may_remove(c, st, e)) {
			remove_at(d, i);
			removed++;
		} else {
			served += e->scope == S_SELF;
			others += e->scope != S_SELF;
			i++;
		}
	}
	/* a name that matched is a valid one: safe to show */
	if (removed)
		evr_line_sendf(c, "OK unregistered %s (%u entries)", w[1],
			       removed);
	else if (others)
		evr_line_sendf(c, "ERR %s belongs to another client", w[1]);
	else if (served)
		evr_line_sendf(c, "ERR %s is served by evringd", w[1]);
	else
		evr_line_sendf(c, "ERR no such name \"%s\"", shown(buf, w[1]));
}

static void cmd_lookup(struct evr_conn *c, struct dir_conf *d, char **w, int n)
{
	char out[256], buf[SHOWN_MAX];
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
	if (found) /* a name that matched is a valid one */
		evr_line_sendf(c, "%s", out);
	else
		evr_line_sendf(c, "ERR no such name \"%s\"", shown(buf, w[1]));
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
		len += (size_t)snprintf(
		    b->data + len, cap - len, "%s %u/%s %s\r\n", d->e[i].name,
		    d->e[i].port, d->e[i].udp ? "udp" : "tcp",
		    scope_names[d->e[i].scope]);
	len += (size_t)snprintf(b->data + len, cap - len, "OK %u entries\r\n",
				d->n);
	b->len = (uint32_t)len;
	evr_send(c, b);
	evr_buf_unref(b);
}

/*
 * AUTH token: the token of token_file grants persistent entries (unless
 * persistent=none) and the removal of any entry but evringd's. A wrong one
 * closes the connection, so that guessing costs a connection a try, and
 * is logged. The comparison takes the same time whatever matches.
 */
static int cmd_auth(struct evr_conn *c, struct dir_conf *d, char **w, int n)
{
	struct dir_conn *st = evr_conn_state(c);
	size_t len = strlen(d->token), got;
	unsigned char diff;

	if (n != 2) {
		evr_line_sendf(c, "ERR usage: AUTH token");
		return 0;
	}
	if (!len) {
		evr_line_sendf(c, "ERR AUTH is off here (no token_file)");
		return 0;
	}
	got = strlen(w[1]);
	diff = got != len;
	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char)(d->token[i] ^ (i < got ? w[1][i] : 0));
	if (diff) {
		evr__log_refused(&refusals, c, "directory",
				 "AUTH with a wrong token; closing");
		evr_line_sendf(c, "ERR wrong token");
		evr_close(c);
		return -1;
	}
	st->authed = true;
	evr_line_sendf(c, "OK authenticated");
	return 0;
}

static void cmd_help(struct evr_conn *c)
{
	static const char help[] = "REGISTER name port [tcp|udp] [session]\r\n"
				   "UNREGISTER name\r\n"
				   "LOOKUP name\r\n"
				   "LIST\r\n"
				   "AUTH token\r\n"
				   "QUIT\r\n"
				   "OK\r\n";

	evr_send_copy(c, help, sizeof(help) - 1);
}

/* One command; <0 when the connection is closing. */
static int dir_command(struct evr_conn *c, struct dir_conf *d, char **w, int n)
{
	char buf[SHOWN_MAX];

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
	else if (!strcasecmp(w[0], "AUTH"))
		return cmd_auth(c, d, w, n);
	else if (!strcasecmp(w[0], "HELP"))
		cmd_help(c);
	else if (!strcasecmp(w[0], "QUIT")) {
		evr_line_sendf(c, "OK bye");
		evr_close(c);
		return -1;
	} else
		evr_line_sendf(c,
			       "ERR unknown command \"%s\" (REGISTER, "
			       "UNREGISTER, LOOKUP, LIST, AUTH, HELP, QUIT)",
			       shown(buf, w[0]));
	return 0;
}

static int dir_line(struct evr_conn *c, struct evr_buf *b, char *line,
		    size_t len)
{
	static struct dir_conf none = { .persistent = T_LOOPBACK };
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
	if (dir_command(c, d, w, n) < 0)
		return -1;
	/* a client that sends and does not read: stop here until the
	 * replies have gone (dir_sent) */
	return evr_conn_queued(c) > DIR_QUEUE_HIGH ? EVR_LINE_HOLD : 0;
}

/* ------------------------------------------------------------------ */
/* The module                                                          */
/* ------------------------------------------------------------------ */

static int dir_accept(struct evr_conn *c)
{
	struct dir_conn *st = evr_conn_state(c);

	evr_line_init(&st->lf, c, NULL, dir_line);
	source_of(c, &st->src, &st->loopback);
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

/* Session entries go with their connection; persistent ones stay, and no
 * longer count against it. */
static void dir_close(struct evr_conn *c, int err)
{
	struct dir_conn *st = evr_conn_state(c);
	struct dir_conf *d = evr_conn_conf(c);

	(void)err;
	evr_line_fini(&st->lf);
	if (!d || !d->e)
		return;
	for (uint32_t i = 0; i < d->n;) {
		if (d->e[i].via != c) {
			i++;
		} else if (d->e[i].scope == S_SESSION) {
			remove_at(d, i);
		} else {
			d->e[i].via = NULL;
			st->registered--;
			i++;
		}
	}
}

static const struct evr_proto_opt dir_opts[] = {
	{ "persistent", "loopback|token|any|none: who may register persistent "
			"entries besides a client that sent AUTH (default "
			"loopback: 127.0.0.0/8, ::1, local sockets)" },
	{ "token_file", "PATH: its first line (16-128 printable bytes) is the "
			"token of AUTH, which grants persistent entries and "
			"the removal of anyone's (default: AUTH is off)" },
	{ "max_entries", "N: entries in the table (default 1024); persistent "
			 "ones take at most half" },
	{ "per_conn", "N: entries registered over one connection and still "
		      "there (default 64)" },
	{ "per_source", "N: persistent entries per source address, IPv6 per "
			"/64 (default 64; AUTH lifts it)" },
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
