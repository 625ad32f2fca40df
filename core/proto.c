/* SPDX-License-Identifier: MIT */
/*
 * proto.c - protocol modules as the core sees them: validation and the
 * default handlers.
 *
 * A module is a const struct evr_proto (evring.h) whose handlers are all
 * optional. Before a listener, connector or UDP socket uses one, the core
 * checks it (evr_proto_validate) and resolves its handlers into a table
 * with a default in every slot (evr__proto_resolve), so that no hot path
 * ever tests a hook for NULL. Finding modules by name is not the core's
 * business: protocols/registry.c does that for programs that want it.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#define EVR_PROTO_STATE_MAX (64 * 1024)
#define EVR_PROTO_NAME_MAX  31

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
	if (p->opts && !p->conf_set) {
		snprintf(why, n, "module %s: options listed without conf_set",
			 name);
		return -EINVAL;
	}
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
	int err = c->svc->proto.on_accept(c);

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
