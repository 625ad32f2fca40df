/* SPDX-License-Identifier: MIT */
/*
 * config.c - the inetd.conf parser (config.h): text in, entries out.
 *
 * Two passes. The first cuts the text into logical lines of tokens: a
 * physical line that starts with a blank continues the service line just
 * before it (as in BSD inetd, whose skip() reads on while the next line
 * starts with a space or a tab); `#` lines and blank lines end a line;
 * `#@` lines carry options. The second pass reads each logical line:
 * `host:` lines set the default host, service lines are checked field by
 * field and become entries, options go to the next service line.
 *
 * Every error is collected (up to EVD_CONF_MAX_ERRORS) with the file name,
 * the line and, for a field, its number and value, so that one run of
 * `evringd -t` shows every mistake of a file. A file with any error gives
 * no entries to use: the caller refuses it whole.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Tokens of one logical line: six fields, the arguments, and one more so
 * that too many can be told. */
#define MAX_TOKENS (EVD_F_ARGS - 1 + EVD_CONF_MAX_ARGS + 1)

enum lkind { L_SERVICE, L_OPTIONS };

struct lline {
	int line;
	enum lkind kind;
	int ntok;
	char *tok[MAX_TOKENS];
};

static void verror(struct evd_conf *cf, int line, const char *fmt, va_list ap)
{
	char msg[512];
	struct evd_conf_error *e;

	if (cf->nerrors++ >= EVD_CONF_MAX_ERRORS)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	e = &cf->err[cf->nerrors - 1];
	e->line = line;
	if (line > 0 &&
	    asprintf(&e->text, "%s:%d: %s", cf->path, line, msg) < 0)
		e->text = NULL;
	else if (line <= 0 && asprintf(&e->text, "%s: %s", cf->path, msg) < 0)
		e->text = NULL;
}

void evd_conf_error(struct evd_conf *cf, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(cf, line, fmt, ap);
	va_end(ap);
}

/* At most 64 bytes of a value in a message, with "..." when cut. */
#define SHOW(s)	     (int)(strlen(s) > 64 ? 64 : strlen(s)), (s)
#define SHOW_MORE(s) (strlen(s) > 64 ? "..." : "")
#define FIELD_FMT    "field %d \"%.*s%s\": "

void evd_conf_field_error(struct evd_conf *cf, const struct evd_conf_entry *e,
			  enum evd_conf_field f, const char *fmt, ...)
{
	const char *v = e->field[f] ? e->field[f] : "";
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	evd_conf_error(cf, e->line, FIELD_FMT "%s", (int)f, SHOW(v),
		       SHOW_MORE(v), msg);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Split s in place at blanks into ll's tokens; false when too many. */
static bool tokenize(struct lline *ll, char *s)
{
	for (;;) {
		while (is_blank(*s))
			s++;
		if (!*s)
			return true;
		if (ll->ntok == MAX_TOKENS)
			return false;
		ll->tok[ll->ntok++] = s;
		while (*s && !is_blank(*s))
			s++;
		if (*s)
			*s++ = '\0';
	}
}

static bool only_blanks(const char *s)
{
	while (is_blank(*s))
		s++;
	return !*s;
}

/* Pass 1: the logical lines of the text, in *out (n of them). */
static int split_lines(struct evd_conf *cf, size_t len, struct lline **out,
		       size_t *n)
{
	struct lline *ll = NULL, *cur = NULL;
	size_t cap = 0;
	char *p = cf->text, *end = cf->text + len;

	*n = 0;
	for (int line = 1; p < end; line++) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *eol = nl ? nl : end;
		size_t plen = (size_t)(eol - p);
		char *s = p;

		p = eol + 1;
		if (memchr(s, '\0', plen)) {
			evd_conf_error(cf, line, "a NUL byte in the line");
			cur = NULL;
			continue;
		}
		*eol = '\0';
		if (plen > EVD_CONF_MAX_LINE) {
			evd_conf_error(cf, line, "line longer than %d bytes",
				       EVD_CONF_MAX_LINE);
			cur = NULL;
			continue;
		}
		if (only_blanks(s) || (s[0] == '#' && s[1] != '@')) {
			cur = NULL;
			continue;
		}
		if (is_blank(s[0]) && cur) {
			/* a continuation: more arguments for cur */
			if (!tokenize(cur, s))
				evd_conf_error(cf, line,
					       "more than %d arguments",
					       EVD_CONF_MAX_ARGS);
			continue;
		}
		if (*n == cap) {
			struct lline *m;

			cap = cap ? 2 * cap : 16;
			m = realloc(ll, cap * sizeof(*ll));
			if (!m) {
				free(ll);
				return -ENOMEM;
			}
			ll = m;
		}
		cur = &ll[(*n)++];
		cur->line = line;
		cur->ntok = 0;
		if (s[0] == '#') {
			cur->kind = L_OPTIONS;
			s += 2;
		} else {
			cur->kind = L_SERVICE;
		}
		if (!tokenize(cur, s))
			evd_conf_error(cf, line, "more than %d arguments",
				       EVD_CONF_MAX_ARGS);
		if (cur->kind == L_OPTIONS)
			cur = NULL; /* options never continue */
	}
	*out = ll;
	return 0;
}

/* [A-Za-z0-9] and the characters of extra */
static bool name_chars(const char *s, const char *extra)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr(extra, c)))
			return false;
	}
	return true;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* A decimal number up to max; false for anything else. */
static bool parse_num(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (!all_digits(s) || strlen(s) > 10)
		return false;
	for (; *s; s++)
		v = v * 10 + (unsigned long)(*s - '0');
	if (v > max)
		return false;
	*out = v;
	return true;
}

/*
 * A host list as written before the colon: "*", or comma-separated
 * numeric addresses and host names. Checked for its characters only;
 * the daemon resolves it.
 */
static bool host_ok(const char *h)
{
	const char *p = h;

	if (!strcmp(h, "*"))
		return true;
	if (strlen(h) > 255)
		return false;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char one[256];

		if (n == 0)
			return false;
		memcpy(one, p, n);
		one[n] = '\0';
		if (strcmp(one, "*") && !name_chars(one, ".-_:%"))
			return false;
		if (!comma)
			return true;
		p = comma + 1;
	}
}

/* Cut "[host]:" or "host:" off tok. *host is NULL when tok has no host,
 * "*" for an empty one. False when the brackets do not match. */
static bool split_host(char *tok, char **host, char **rest)
{
	char *colon = strrchr(tok, ':');

	*host = NULL;
	*rest = tok;
	if (!colon)
		return true;
	*colon = '\0';
	*rest = colon + 1;
	if (tok[0] == '[') {
		size_t n = strlen(tok);

		if (n < 2 || tok[n - 1] != ']')
			return false;
		tok[n - 1] = '\0';
		tok++;
	} else if (strchr(tok, '[') || strchr(tok, ']')) {
		return false;
	}
	*host = *tok ? tok : "*";
	return true;
}

#define SERVICE_NAME_MAX 63

static bool parse_service(struct evd_conf *cf, struct evd_conf_entry *e,
			  char *svc)
{
	unsigned long port;

	if (!strncmp(svc, "tcpmux/", 7)) {
		e->tcpmux = true;
		svc += 7;
		if (*svc == '+') {
			e->tcpmux_plus = true;
			svc++;
		}
		if (!name_chars(svc, "._-") || strlen(svc) > SERVICE_NAME_MAX) {
			evd_conf_field_error(cf, e, EVD_F_SERVICE,
					     "expected tcpmux/NAME or "
					     "tcpmux/+NAME, NAME of letters, "
					     "digits, '.', '_' and '-'");
			return false;
		}
	} else if (all_digits(svc)) {
		if (!parse_num(svc, 65535, &port)) {
			evd_conf_field_error(cf, e, EVD_F_SERVICE,
					     "port out of range (0-65535)");
			return false;
		}
		e->port_given = true;
		e->port = (unsigned)port;
	} else if (strchr(svc, '/')) {
		evd_conf_field_error(cf, e, EVD_F_SERVICE,
				     "RPC services (NAME/VERSION) are not "
				     "supported");
		return false;
	} else if (!name_chars(svc, "._+-") || strlen(svc) > SERVICE_NAME_MAX) {
		evd_conf_field_error(cf, e, EVD_F_SERVICE,
				     "expected a service name (as in "
				     "/etc/services) or a port number");
		return false;
	}
	e->service = svc;
	return true;
}

static bool parse_first(struct evd_conf *cf, struct evd_conf_entry *e,
			char *tok, const char *defhost)
{
	char *host, *svc;

	if (!split_host(tok, &host, &svc)) {
		evd_conf_field_error(cf, e, EVD_F_SERVICE,
				     "expected [HOST:]SERVICE, an IPv6 "
				     "address in brackets: [::1]:SERVICE");
		return false;
	}
	if (host && !host_ok(host)) {
		evd_conf_field_error(cf, e, EVD_F_SERVICE,
				     "bad host \"%.64s\": expected *, an "
				     "address or a host name (a list with "
				     "commas)",
				     host);
		return false;
	}
	if (!*svc) {
		evd_conf_field_error(cf, e, EVD_F_SERVICE,
				     "no service after the host");
		return false;
	}
	e->host = host ? (strcmp(host, "*") ? host : NULL) : defhost;
	return parse_service(cf, e, svc);
}

static bool parse_socktype(struct evd_conf *cf, struct evd_conf_entry *e,
			   const char *s)
{
	if (!strcmp(s, "stream")) {
		e->stream = true;
		return true;
	}
	if (!strcmp(s, "dgram"))
		return true;
	if (!strcmp(s, "raw") || !strcmp(s, "rdm") || !strcmp(s, "seqpacket"))
		evd_conf_field_error(cf, e, EVD_F_SOCKTYPE,
				     "not supported: stream or dgram");
	else
		evd_conf_field_error(cf, e, EVD_F_SOCKTYPE,
				     "expected stream or dgram");
	return false;
}

static bool parse_protocol(struct evd_conf *cf, struct evd_conf_entry *e,
			   const char *s)
{
	static const struct {
		const char *name;
		bool stream;
		int family;
	} protos[] = {
		{ "tcp", true, 0 },  { "tcp4", true, 4 },  { "tcp6", true, 6 },
		{ "udp", false, 0 }, { "udp4", false, 4 }, { "udp6", false, 6 },
	};

	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++) {
		if (strcmp(s, protos[i].name))
			continue;
		if (protos[i].stream != e->stream) {
			evd_conf_field_error(cf, e, EVD_F_PROTOCOL,
					     "a %s service needs %s",
					     e->stream ? "stream" : "dgram",
					     e->stream ? "tcp, tcp4 or tcp6"
						       : "udp, udp4 or udp6");
			return false;
		}
		e->family = protos[i].family;
		return true;
	}
	if (!strncmp(s, "rpc/", 4))
		evd_conf_field_error(cf, e, EVD_F_PROTOCOL,
				     "RPC services are not supported");
	else if (!strcmp(s, "unix"))
		evd_conf_field_error(cf, e, EVD_F_PROTOCOL,
				     "UNIX-domain services are not supported");
	else
		evd_conf_field_error(cf, e, EVD_F_PROTOCOL,
				     "expected tcp, tcp4, tcp6, udp, udp4 or "
				     "udp6");
	return false;
}

/* Servers started per minute at most, as inetd's .max (0: no limit). */
#define MAX_MAX 1000000

static bool parse_wait(struct evd_conf *cf, struct evd_conf_entry *e, char *s)
{
	char *dot = strchr(s, '.');
	unsigned long max;

	e->max = -1;
	if (dot) {
		*dot = '\0';
		if (!parse_num(dot + 1, MAX_MAX, &max)) {
			*dot = '.';
			evd_conf_field_error(cf, e, EVD_F_WAIT,
					     "bad .max: expected the number "
					     "of servers a minute (0-%d, 0: "
					     "no limit)",
					     MAX_MAX);
			return false;
		}
		e->max = (long)max;
	}
	if (!strcmp(s, "wait")) {
		e->wait = true;
	} else if (strcmp(s, "nowait")) {
		if (dot)
			*dot = '.';
		evd_conf_field_error(cf, e, EVD_F_WAIT,
				     "expected wait or nowait");
		return false;
	}
	if (dot)
		*dot = '.'; /* the field stays whole for messages */
	if (e->tcpmux && (e->wait || !e->stream)) {
		evd_conf_field_error(cf, e, EVD_F_WAIT,
				     "a tcpmux service is a nowait stream "
				     "service");
		return false;
	}
	return true;
}

/* User and group names as useradd(8) takes them, or numeric ids. */
static bool id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32 || s[0] == '-')
		return false;
	if (s[n - 1] == '$') /* machine accounts */
		n--;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		      c == '.'))
			return false;
	}
	return true;
}

/* user, user:group or user.group (':' first: a user name may hold a
 * dot). */
static bool parse_user(struct evd_conf *cf, struct evd_conf_entry *e,
		       const char *s)
{
	const char *sep = strchr(s, ':');
	size_t ulen;

	if (!sep)
		sep = strchr(s, '.');
	ulen = sep ? (size_t)(sep - s) : strlen(s);
	if (ulen < sizeof(e->user) &&
	    (!sep || strlen(sep + 1) < sizeof(e->group))) {
		memcpy(e->user, s, ulen);
		e->user[ulen] = '\0';
		if (sep)
			strcpy(e->group, sep + 1);
		if (id_ok(e->user) && (!sep || id_ok(e->group)))
			return true;
	}
	evd_conf_field_error(cf, e, EVD_F_USER,
			     "expected USER, USER:GROUP or USER.GROUP");
	return false;
}

static bool parse_server(struct evd_conf *cf, struct evd_conf_entry *e,
			 const char *s)
{
	e->server = s;
	if (!strcmp(s, "internal")) {
		e->internal = true;
		return true;
	}
	if (s[0] == '/')
		return true;
	if (name_chars(s, "_-") && strlen(s) <= SERVICE_NAME_MAX) {
		e->module = true;
		return true;
	}
	evd_conf_field_error(cf, e, EVD_F_SERVER,
			     "expected internal, a module's name or the "
			     "absolute path of a program");
	return false;
}

static int parse_args(struct evd_conf *cf, struct evd_conf_entry *e, char **tok,
		      int n)
{
	if (n > 0 && (e->internal || e->module)) {
		evd_conf_field_error(cf, e, EVD_F_ARGS, "%s takes no arguments",
				     e->internal ? "an internal service"
						 : "a module");
		return 0;
	}
	if (e->internal || e->module || n < 0)
		return 0;
	e->argv = calloc((size_t)(n ? n : 1) + 1, sizeof(*e->argv));
	if (!e->argv)
		return -ENOMEM;
	if (n == 0) {
		/* no argv0: the program's base name, as BSD inetd */
		const char *base = strrchr(e->server, '/');

		e->argv[e->argc++] = base ? base + 1 : e->server;
	}
	for (int i = 0; i < n; i++)
		e->argv[e->argc++] = tok[i];
	return 0;
}

/* KEY=VALUE tokens of a #@ line, added to the pending options. */
static int parse_options(struct evd_conf *cf, const struct lline *ll,
			 struct evd_conf_opt *pend, int *npend)
{
	for (int i = 0; i < ll->ntok; i++) {
		char *t = ll->tok[i];
		char *eq = strchr(t, '=');

		if (!eq || eq == t || !eq[1]) {
			evd_conf_error(cf, ll->line,
				       "option \"%.*s%s\": expected KEY=VALUE",
				       SHOW(t), SHOW_MORE(t));
			continue;
		}
		*eq = '\0';
		if (!name_chars(t, "_-.")) {
			evd_conf_error(cf, ll->line,
				       "option \"%.*s%s\": a key is letters, "
				       "digits, '_', '-' and '.'",
				       SHOW(t), SHOW_MORE(t));
			continue;
		}
		if (!strcmp(t, "module")) {
			/* for the whole file, not the next line */
			struct evd_conf_opt *m =
			    realloc(cf->mods, (cf->nmods + 1) * sizeof(*m));

			if (!m)
				return -ENOMEM;
			cf->mods = m;
			m[cf->nmods].key = t;
			m[cf->nmods].value = eq + 1;
			m[cf->nmods++].line = ll->line;
			continue;
		}
		if (*npend == EVD_CONF_MAX_OPTS) {
			evd_conf_error(cf, ll->line,
				       "more than %d options for one service",
				       EVD_CONF_MAX_OPTS);
			return 0;
		}
		pend[*npend].key = t;
		pend[*npend].value = eq + 1;
		pend[*npend].line = ll->line;
		(*npend)++;
	}
	return 0;
}

static struct evd_conf_entry *new_entry(struct evd_conf *cf)
{
	if (cf->n == cf->cap) {
		size_t cap = cf->cap ? 2 * cf->cap : 16;
		struct evd_conf_entry *m = realloc(cf->e, cap * sizeof(*m));

		if (!m)
			return NULL;
		cf->e = m;
		cf->cap = cap;
	}
	memset(&cf->e[cf->n], 0, sizeof(cf->e[0]));
	return &cf->e[cf->n++];
}

static const char *const field_what[EVD_F_COUNT] = {
	[EVD_F_SERVICE] = "the service",
	[EVD_F_SOCKTYPE] = "the socket type (stream or dgram)",
	[EVD_F_PROTOCOL] = "the protocol (tcp, udp, tcp4, udp4, tcp6, udp6)",
	[EVD_F_WAIT] = "wait or nowait",
	[EVD_F_USER] = "the user",
	[EVD_F_SERVER] = "the server (internal, a module or a program)",
};

/* One service line: an entry, or errors. 0 or -ENOMEM. */
static int parse_service_line(struct evd_conf *cf, struct lline *ll,
			      const char *defhost, struct evd_conf_opt *pend,
			      int *npend)
{
	struct evd_conf_entry *e = new_entry(cf);
	bool ok;

	if (!e)
		return -ENOMEM;
	e->line = ll->line;
	for (int f = EVD_F_SERVICE; f < EVD_F_ARGS && f <= ll->ntok; f++)
		e->field[f] = ll->tok[f - 1];
	e->field1 = strdup(ll->tok[0]);
	if (!e->field1)
		return -ENOMEM;
	e->field[EVD_F_SERVICE] = e->field1;
	if (ll->ntok > EVD_F_SERVER)
		e->field[EVD_F_ARGS] = ll->tok[EVD_F_ARGS - 1];
	if (ll->ntok < EVD_F_SERVER) {
		evd_conf_error(cf, ll->line,
			       "field %d missing: expected %s (a service "
			       "line has 6 fields and arguments)",
			       ll->ntok + 1, field_what[ll->ntok + 1]);
		free(e->field1);
		cf->n--;
		return 0;
	}
	ok = parse_first(cf, e, ll->tok[0], defhost) &&
	     parse_socktype(cf, e, ll->tok[1]) &&
	     parse_protocol(cf, e, ll->tok[2]) &&
	     parse_wait(cf, e, ll->tok[3]) && parse_user(cf, e, ll->tok[4]) &&
	     parse_server(cf, e, ll->tok[5]);
	if (ok) {
		size_t before = cf->nerrors;

		if (parse_args(cf, e, ll->tok + EVD_F_SERVER,
			       ll->ntok - EVD_F_SERVER) < 0)
			return -ENOMEM;
		e->ok = cf->nerrors == before;
	}
	if (*npend) {
		e->opts = malloc((size_t)*npend * sizeof(*e->opts));
		if (!e->opts)
			return -ENOMEM;
		memcpy(e->opts, pend, (size_t)*npend * sizeof(*e->opts));
		e->nopts = *npend;
		*npend = 0;
	}
	return 0;
}

/* Pass 2 over the logical lines. */
static int parse_lines(struct evd_conf *cf, struct lline *ll, size_t n)
{
	struct evd_conf_opt pend[EVD_CONF_MAX_OPTS];
	const char *defhost = NULL;
	int npend = 0, pend_line = 0, err;

	for (size_t i = 0; i < n; i++) {
		size_t len;

		if (ll[i].kind == L_OPTIONS) {
			if (!npend)
				pend_line = ll[i].line;
			if (parse_options(cf, &ll[i], pend, &npend) < 0)
				return -ENOMEM;
			continue;
		}
		len = strlen(ll[i].tok[0]);
		if (ll[i].ntok == 1 && len && ll[i].tok[0][len - 1] == ':') {
			/* "host:" sets the default host, "*:" resets it */
			char *host, *rest;

			if (!split_host(ll[i].tok[0], &host, &rest) ||
			    !host_ok(host)) {
				evd_conf_error(cf, ll[i].line,
					       "bad default host line: "
					       "expected HOST:, [IPV6]: or *:");
				continue;
			}
			defhost = strcmp(host, "*") ? host : NULL;
			continue;
		}
		err = parse_service_line(cf, &ll[i], defhost, pend, &npend);
		if (err)
			return err;
	}
	if (npend)
		evd_conf_error(cf, pend_line,
			       "options for no service (a #@ line gives "
			       "options to the service line after it)");
	return 0;
}

int evd_conf_parse(struct evd_conf *cf, const char *name, const char *text,
		   size_t len)
{
	struct lline *ll = NULL;
	size_t n = 0;
	int err;

	memset(cf, 0, sizeof(*cf));
	cf->path = strdup(name);
	if (!cf->path)
		return -ENOMEM;
	if (len > EVD_CONF_MAX_BYTES) {
		evd_conf_error(cf, 0, "larger than %d bytes",
			       EVD_CONF_MAX_BYTES);
		return -EINVAL;
	}
	cf->text = malloc(len + 1);
	if (!cf->text)
		return -ENOMEM;
	memcpy(cf->text, text, len);
	cf->text[len] = '\0';
	err = split_lines(cf, len, &ll, &n);
	if (!err)
		err = parse_lines(cf, ll, n);
	free(ll);
	if (err)
		return err;
	return cf->nerrors ? -EINVAL : 0;
}

int evd_conf_load(struct evd_conf *cf, const char *path)
{
	size_t cap = 64 * 1024, len = 0;
	char *buf = malloc(cap);
	int fd, err;

	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto out_error;
	}
	for (;;) {
		ssize_t r;

		if (len == cap) {
			char *m;

			if (cap > EVD_CONF_MAX_BYTES)
				break; /* evd_conf_parse refuses it */
			m = realloc(buf, cap * 2);
			if (!m) {
				close(fd);
				free(buf);
				return -ENOMEM;
			}
			buf = m;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			close(fd);
			goto out_error;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	err = evd_conf_parse(cf, path, buf, len);
	free(buf);
	return err;

out_error:
	free(buf);
	memset(cf, 0, sizeof(*cf));
	cf->path = strdup(path);
	if (!cf->path)
		return -ENOMEM;
	evd_conf_error(cf, 0, "cannot read: %s", strerror(-err));
	return err;
}

void evd_conf_sort_errors(struct evd_conf *cf)
{
	size_t n = cf->nerrors < EVD_CONF_MAX_ERRORS ? cf->nerrors
						     : EVD_CONF_MAX_ERRORS;

	/* insertion sort: stable, and there are at most 20 */
	for (size_t i = 1; i < n; i++) {
		struct evd_conf_error x = cf->err[i];
		size_t j = i;

		for (; j > 0 && cf->err[j - 1].line > x.line; j--)
			cf->err[j] = cf->err[j - 1];
		cf->err[j] = x;
	}
}

void evd_conf_free(struct evd_conf *cf)
{
	for (size_t i = 0; i < cf->n; i++) {
		free(cf->e[i].field1);
		free(cf->e[i].argv);
		free(cf->e[i].opts);
	}
	for (size_t i = 0; i < cf->nerrors && i < EVD_CONF_MAX_ERRORS; i++)
		free(cf->err[i].text);
	free(cf->e);
	free(cf->mods);
	free(cf->text);
	free(cf->path);
	memset(cf, 0, sizeof(*cf));
}
