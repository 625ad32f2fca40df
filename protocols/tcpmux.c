/* SPDX-License-Identifier: MIT */
/*
 * tcpmux.c - the TCP Port Service Multiplexer, RFC 1078 (tcpmux.h).
 *
 * Per connection: the name line is gathered in the connection's state,
 * byte by byte from each buffer, until LF (a CR before it is dropped), so
 * that a name in several pieces is assembled and the bytes after the
 * line, in the same buffer, are handed to the service with it. A timer
 * bounds the wait for the line. Better than xinetd's: no NUL after the
 * reply, LF alone accepted, nothing read past the line and lost.
 *
 * The services are the configuration's: a small array, searched without
 * regard to case (RFC 1078: "The service name is never case sensitive").
 */
#include "modules.h"
#include "tcpmux.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TCPMUX_TIMEOUT_MS 10000

struct tcpmux_service {
	char name[EVR_TCPMUX_NAME_MAX];
	bool plus;
	evr_tcpmux_take_cb take;
	void *arg;
};

struct tcpmux_conf {
	struct tcpmux_service *svc;
	size_t n;
	uint32_t timeout_ms;
};

enum tcpmux_phase { T_NAME, T_DONE, T_TAKEN };

struct tcpmux_conn {
	struct evr_conn *c;
	struct evr_timer timer;
	enum tcpmux_phase phase;
	size_t len;
	char name[EVR_TCPMUX_NAME_MAX];
};

static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n >= EVR_TCPMUX_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

int evr_tcpmux_add(void *p, const char *name, bool plus,
		   evr_tcpmux_take_cb take, void *arg)
{
	struct tcpmux_conf *cf = p;
	struct tcpmux_service *m;

	if (!name_ok(name, strlen(name)) || !strcasecmp(name, "HELP") || !take)
		return -EINVAL;
	for (size_t i = 0; i < cf->n; i++)
		if (!strcasecmp(cf->svc[i].name, name))
			return -EEXIST;
	m = realloc(cf->svc, (cf->n + 1) * sizeof(*m));
	if (!m)
		return -ENOMEM;
	cf->svc = m;
	m = &cf->svc[cf->n++];
	memset(m, 0, sizeof(*m));
	strcpy(m->name, name);
	m->plus = plus;
	m->take = take;
	m->arg = arg;
	return 0;
}

static int tcpmux_conf_init(void *p)
{
	struct tcpmux_conf *cf = p;

	memset(cf, 0, sizeof(*cf));
	cf->timeout_ms = TCPMUX_TIMEOUT_MS;
	return 0;
}

static int tcpmux_conf_set(void *p, const char *key, const char *value)
{
	struct tcpmux_conf *cf = p;
	char *end;
	unsigned long v;

	if (strcmp(key, "timeout"))
		return -ENOENT;
	v = strtoul(value, &end, 10);
	if (end == value || *value == '-' || v == 0 || v > 3600000)
		return -EINVAL;
	if (!strcmp(end, "s") || !*end)
		v *= 1000;
	else if (strcmp(end, "ms"))
		return -EINVAL;
	cf->timeout_ms = (uint32_t)v;
	return 0;
}

static void tcpmux_conf_fini(void *p)
{
	struct tcpmux_conf *cf = p;

	free(cf->svc);
	cf->svc = NULL;
	cf->n = 0;
}

/* A "-" reply and a close: the client learns why. */
static void refuse(struct tcpmux_conn *st, const char *why)
{
	evr_timer_stop(evr_conn_loop(st->c), &st->timer);
	st->phase = T_DONE;
	evr_sendf(st->c, "-%s\r\n", why);
	evr_close(st->c);
}

static void tcpmux_timeout(struct evr_timer *t)
{
	struct tcpmux_conn *st = EVR_CONTAINER_OF(t, struct tcpmux_conn, timer);

	refuse(st, "Timeout: no service name");
}

static void help(struct tcpmux_conn *st, const struct tcpmux_conf *cf)
{
	evr_timer_stop(evr_conn_loop(st->c), &st->timer);
	st->phase = T_DONE;
	for (size_t i = 0; i < cf->n; i++)
		evr_sendf(st->c, "%s\r\n", cf->svc[i].name);
	evr_close(st->c);
}

/* The name line is complete: b from off is what followed it. */
static void dispatch(struct tcpmux_conn *st, struct evr_buf *b, size_t off)
{
	const struct tcpmux_conf *cf = evr_conn_conf(st->c);
	const struct tcpmux_service *m = NULL;

	if (st->len && st->name[st->len - 1] == '\r')
		st->len--;
	st->name[st->len] = '\0';
	if (!strcasecmp(st->name, "HELP")) {
		help(st, cf);
		return;
	}
	for (size_t i = 0; cf && i < cf->n && !m; i++)
		if (!strcasecmp(cf->svc[i].name, st->name))
			m = &cf->svc[i];
	if (!m || !name_ok(st->name, st->len)) {
		refuse(st, "Service not available");
		return;
	}
	evr_timer_stop(evr_conn_loop(st->c), &st->timer);
	st->phase = T_TAKEN;
	if (m->plus && evr_send_copy(st->c, "+Go\r\n", 5) < 0) {
		evr_abort(st->c, -ENOMEM);
		return;
	}
	if (m->take(st->c, b, off, m->arg) < 0)
		evr_close(st->c);
}

static int tcpmux_accept(struct evr_conn *c)
{
	struct tcpmux_conn *st = evr_conn_state(c);
	const struct tcpmux_conf *cf = evr_conn_conf(c);

	st->c = c;
	evr_timer_init(&st->timer, tcpmux_timeout);
	return evr_timer_start(evr_conn_loop(c), &st->timer,
			       cf ? cf->timeout_ms : TCPMUX_TIMEOUT_MS);
}

static void tcpmux_data(struct evr_conn *c, struct evr_buf *b)
{
	struct tcpmux_conn *st = evr_conn_state(c);

	if (st->phase != T_NAME)
		return; /* after a reply, or taken: not ours */
	for (size_t i = 0; i < b->len; i++) {
		char ch = b->data[i];

		if (ch == '\n') {
			dispatch(st, b, i + 1);
			return;
		}
		/* one more for a CR before the LF */
		if (st->len == EVR_TCPMUX_NAME_MAX) {
			refuse(st, "Service name too long");
			return;
		}
		st->name[st->len++] = ch;
	}
}

static void tcpmux_eof(struct evr_conn *c)
{
	struct tcpmux_conn *st = evr_conn_state(c);

	if (st->phase == T_NAME)
		refuse(st, "No service name");
	else if (st->phase == T_DONE)
		evr_close(c);
}

static void tcpmux_close(struct evr_conn *c, int err)
{
	struct tcpmux_conn *st = evr_conn_state(c);

	(void)err;
	if (st->c)
		evr_timer_stop(evr_conn_loop(c), &st->timer);
}

static void tcpmux_drain(struct evr_conn *c)
{
	struct tcpmux_conn *st = evr_conn_state(c);

	if (st->phase == T_NAME)
		refuse(st, "Server shutting down");
}

static const struct evr_proto_opt tcpmux_opts[] = {
	{ "timeout", "DURATION: the wait for the name line (default 10s; "
		     "500ms, 30s)" },
	{ NULL, NULL },
};

const struct evr_proto evr_proto_tcpmux = {
	.name = "tcpmux",
	.summary = "RFC 1078: a service chosen by name on one port (HELP "
		   "lists them)",
	.opts = tcpmux_opts,
	.state_size = sizeof(struct tcpmux_conn),
	.conf_size = sizeof(struct tcpmux_conf),
	.conf_init = tcpmux_conf_init,
	.conf_set = tcpmux_conf_set,
	.conf_fini = tcpmux_conf_fini,
	/* the hand-overs of its table are loop 0's */
	.flags = EVR_PROTO_ONE_LOOP,
	.on_accept = tcpmux_accept,
	.on_data = tcpmux_data,
	.on_eof = tcpmux_eof,
	.on_close = tcpmux_close,
	.on_drain = tcpmux_drain,
};
