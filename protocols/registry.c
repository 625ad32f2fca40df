/* SPDX-License-Identifier: MIT */
/*
 * registry.c - protocol modules by name.
 *
 * The built-in modules are in a const table; modules registered at run time
 * by a program built on libevring go in a small fixed table after them.
 * Every module is validated before it can be found, and its handlers are
 * resolved with defaults so the core never checks a hook for NULL.
 */
#include "../core/internal.h"

#include <stdio.h>
#include <string.h>

#define EVR_PROTO_STATE_MAX (64 * 1024)
#define EVR_PROTO_NAME_MAX  31
#define EVR_PROTO_USER_MAX  64

static const struct evr_proto *const builtin[] = {
	&evr_proto_echo,
	&evr_proto_daytime,
	&evr_proto_http,
	&evr_proto_directory,
};

static const struct evr_proto *user[EVR_PROTO_USER_MAX];
static size_t nuser;

int evr_proto_validate(const struct evr_proto *p, char *why, size_t n)
{
	const char *name = p ? p->name : NULL;
	size_t len = name ? strlen(name) : 0;

	if (!p || !name || !len) {
		snprintf(why, n, "module has no name");
		return -EINVAL;
	}
	if (len > EVR_PROTO_NAME_MAX ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != len) {
		snprintf(why, n,
			 "module \"%.40s\": name must be 1-%d characters of "
			 "a-z, 0-9, _ and -",
			 name, EVR_PROTO_NAME_MAX);
		return -EINVAL;
	}
	if (!p->on_accept && !p->on_data && !p->on_connect && !p->on_datagram) {
		snprintf(why, n,
			 "module %s: needs on_accept, on_connect, on_data or "
			 "on_datagram (it would never do anything)",
			 name);
		return -EINVAL;
	}
	if (p->state_size > EVR_PROTO_STATE_MAX) {
		snprintf(why, n, "module %s: state_size %zu exceeds %d", name,
			 p->state_size, EVR_PROTO_STATE_MAX);
		return -EINVAL;
	}
	if (!p->conf_size && (p->conf_init || p->conf_set || p->conf_fini)) {
		snprintf(why, n,
			 "module %s: configuration hooks without conf_size",
			 name);
		return -EINVAL;
	}
	return 0;
}

const struct evr_proto *evr_proto_at(size_t i)
{
	if (i < EVR_ARRAY_SIZE(builtin))
		return builtin[i];
	i -= EVR_ARRAY_SIZE(builtin);
	return i < nuser ? user[i] : NULL;
}

const struct evr_proto *evr_proto_find(const char *name)
{
	const struct evr_proto *p;

	for (size_t i = 0; (p = evr_proto_at(i)); i++)
		if (!strcmp(p->name, name))
			return p;
	return NULL;
}

int evr_proto_register(const struct evr_proto *p)
{
	char why[160];

	if (evr_proto_validate(p, why, sizeof(why)) < 0) {
		evr_log_err("register: %s", why);
		return -EINVAL;
	}
	if (evr_proto_find(p->name))
		return -EEXIST;
	if (nuser == EVR_PROTO_USER_MAX)
		return -ENOSPC;
	user[nuser++] = p;
	return 0;
}

/* ---- defaults ---- */

static int default_accept(struct evr_conn *c)
{
	(void)c;
	return 0;
}

static void default_data(struct evr_conn *c, struct evr_buf *b)
{
	(void)c, (void)b;
}

static void default_sent(struct evr_conn *c, size_t n)
{
	(void)c, (void)n;
}

static void default_close(struct evr_conn *c, int err)
{
	(void)c, (void)err;
}

static void default_nothing(struct evr_conn *c)
{
	(void)c;
}

static void connect_as_accept(struct evr_conn *c)
{
	int err = c->proto->on_accept(c);

	if (err < 0)
		evr_abort(c, err);
}

void evr__proto_resolve(const struct evr_proto *p, struct evr__proto_rt *rt)
{
	rt->p = p;
	rt->on_accept = p->on_accept ? p->on_accept : default_accept;
	rt->on_data = p->on_data ? p->on_data : default_data;
	rt->on_eof = p->on_eof ? p->on_eof : evr_close;
	rt->on_sent = p->on_sent ? p->on_sent : default_sent;
	rt->on_close = p->on_close ? p->on_close : default_close;
	rt->on_drain = p->on_drain ? p->on_drain : default_nothing;
	/* A module written for accepted connections serves outbound and
	 * adopted ones too: they get its on_accept when they are ready. */
	rt->on_connect = p->on_connect	? p->on_connect
			 : p->on_accept ? connect_as_accept
					: default_nothing;
}
