/* SPDX-License-Identifier: MIT */
/*
 * mux.c - tcpmux/NAME and tcpmux/+NAME services (RFC 1078): reached by
 * name through every tcpmux service of the configuration, with no socket
 * of their own.
 *
 * Each is added to the tcpmux services' tables (evr_tcpmux_add) with a
 * hand-over of its kind: a program gets the connection's socket once the
 * name line is read (spawn.c, evd_prog_take; evringd sends the "+Go" of a
 * +NAME service itself, after taking the socket); a module (internal, or
 * by name) gets the connection itself with evr_conn_switch, and with it
 * the bytes that followed the name line, through a connector that holds
 * its configuration and limits on the loop.
 */
#include "config.h"
#include "evringd.h"
#include "evring/tcpmux.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int take_module(struct evr_conn *c, struct evr_buf *b, size_t off,
		       void *arg)
{
	struct service *s = arg;
	int err;

	if (!s->mux_cn)
		return -ENOTCONN;
	err = evr_conn_switch(c, s->mux_cn, b->data + off, b->len - off);
	if (err == -EAGAIN)
		evr_sendf(c, "-Service busy\r\n");
	return err;
}

static int line_of(const struct service *s)
{
	const char *colon = strrchr(s->where, ':');

	return colon ? atoi(colon + 1) : 0;
}

int evd_mux_apply(struct daemon *d, struct evd_conf *cf)
{
	for (int i = 0; i < d->nsvc; i++) {
		struct service *m = &d->svc[i];
		bool reached = false;

		if (!m->mux)
			continue;
		for (int j = 0; j < d->nsvc; j++) {
			struct service *t = &d->svc[j];
			int err;

			if (t->proto != &evr_proto_tcpmux || t->mux)
				continue;
			reached = true;
			/* a program's "+Go" is sent once it has the socket */
			err = evr_tcpmux_add(
			    t->conf, m->name, m->mux_plus && !m->prog,
			    m->prog ? evd_prog_take : take_module, m);
			if (err == -ENOMEM)
				return err;
			if (err == -EEXIST) {
				evd_conf_error(cf, line_of(m),
					       "tcpmux service \"%s\" is "
					       "declared twice",
					       m->name);
				break;
			}
			if (err < 0) {
				evd_conf_error(cf, line_of(m),
					       "\"%s\": not a tcpmux service "
					       "name",
					       m->name);
				break;
			}
		}
		if (!reached)
			evd_conf_error(cf, line_of(m),
				       "no tcpmux service to reach tcpmux/%s "
				       "through (add: tcpmux stream tcp "
				       "nowait root internal)",
				       m->name);
	}
	return 0;
}

int evd_mux_start(struct daemon *d)
{
	for (int i = 0; i < d->nsvc; i++) {
		struct service *s = &d->svc[i];
		struct evr_listen_cfg cfg;
		int err;

		if (!s->mux || s->prog)
			continue;
		evd_listen_cfg(d, s, false, &cfg);
		err = evr_connector_new(d->loop, &cfg, &s->mux_cn);
		if (err < 0) {
			evd_gen_put(s->gen);
			evr_log_err("tcpmux/%s: %s", s->name, strerror(-err));
			return err;
		}
	}
	return 0;
}
