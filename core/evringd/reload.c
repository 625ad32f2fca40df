/* SPDX-License-Identifier: MIT */
/*
 * reload.c - configurations (generations) and SIGHUP.
 *
 * A generation is what one parse of the command line and the file made:
 * the services, their modules' configurations, their programs. Whatever
 * serves a service holds a reference on its generation: a socket (the
 * release callback of its configuration in the core), a running program,
 * a tcpmux connector. The current one holds one more. So a reload can
 * replace the configuration at once and the old one is freed when the
 * last connection accepted under it has closed.
 *
 * A reload parses everything again into a new daemon, exactly as at start
 * (a file with any error is refused whole: nothing changes, the reason is
 * logged). Then listeners.c binds the new configuration's sockets with
 * the running daemon at hand: a socket with the same address, port,
 * protocol and kind is claimed instead of bound (the same descriptor,
 * which never stops accepting). If binding fails, what was bound is
 * closed and nothing else changes. Otherwise the commit: every claimed
 * socket serves the new configuration from now on (evr_listener_set_cfg:
 * connections accepted before keep theirs), the running sockets nobody
 * claimed close (a listener drains: its connections hear on_drain and
 * finish), the listener lines are printed again with a summary.
 *
 * With a loop group, all of the above happens on loop 0, for its own
 * sockets; the commit then posts a plan of the new configuration to every
 * other loop (listeners.c), which makes its sockets match it in its next
 * iteration: the same kept, new and closed ones. A generation is shared
 * by the loops, so its count of references is atomic. --threads, --cpus
 * and --steer-cpu keep the values they had at start.
 */
#include "evringd.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- generations ---- */

struct evd_gen *evd_gen_new(void)
{
	struct evd_gen *g = calloc(1, sizeof(*g));

	if (g)
		g->refs = 1;
	return g;
}

void evd_gen_get(struct evd_gen *g)
{
	__atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
}

static void gen_free(struct evd_gen *g)
{
	for (int i = 0; i < MAX_SERVICES; i++) {
		struct service *s = &g->svc[i];

		if (s->conf && s->proto && s->proto->conf_fini)
			s->proto->conf_fini(s->conf);
		free(s->conf);
		evd_prog_free(s->prog);
	}
	free(g);
}

void evd_gen_put(void *arg)
{
	struct evd_gen *g = arg;

	if (__atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0)
		gen_free(g);
}

void evd_gen_retire(struct evd_gen *g)
{
	if (!g)
		return;
	for (int i = 0; i < MAX_SERVICES; i++) {
		struct service *s = &g->svc[i];

		if (s->mux_cn)
			evr_connector_free(s->mux_cn);
		s->mux_cn = NULL;
	}
	evd_gen_put(g);
}

/* ---- SIGHUP ---- */

/* A claimed socket serves nd's service from now on. */
static void reconfigure(struct daemon *nd, struct evd_sock *k)
{
	struct evr_listen_cfg cfg;
	struct evr_udp_cfg ucfg;
	int err = 0;

	if (k->w) {
		evd_wait_set(k->w, k->s);
		return;
	}
	if (k->ls) {
		evd_listen_cfg(nd, k->s, k->v6only, &cfg);
		err = evr_listener_set_cfg(k->ls, &cfg);
	} else if (k->u) {
		evd_udp_cfg(nd, k->s, k->v6only, &ucfg);
		err = evr_udp_set_cfg(k->u, &ucfg);
	}
	if (err < 0) {
		/* it goes on with the previous one */
		evd_gen_put(k->s->gen);
		evr_log_err("reload: %s/%s: %s; the previous configuration "
			    "still serves it",
			    k->s->name, evd_proto_names[k->pr], strerror(-err));
	}
}

/* Nothing of the running daemon changed: undo what nd bound. */
static void rollback(struct daemon *run, struct daemon *nd)
{
	for (int i = 0; i < nd->nsocks; i++)
		if (!nd->socks[i].from)
			evd_sock_close(&nd->socks[i]);
	for (int i = 0; i < run->nsocks; i++)
		run->socks[i].claimed = false;
}

static void daemon_free(struct daemon *nd)
{
	evd_gen_retire(nd->gen);
	free(nd->cpus);
	free(nd->socks);
	free(nd->lines);
	free(nd);
}

static void commit(struct daemon *d, struct daemon *nd)
{
	struct evd_gen *old = d->gen;
	struct evd_plan *plan;
	int opened = 0, closed = 0;

	for (int i = 0; i < nd->nsocks; i++) {
		struct evd_sock *k = &nd->socks[i], *o = k->from;

		if (!o) {
			opened++;
			continue;
		}
		k->ls = o->ls;
		k->u = o->u;
		k->w = o->w;
		o->ls = NULL;
		o->u = NULL;
		o->w = NULL;
		k->from = NULL;
		reconfigure(nd, k);
	}
	for (int i = 0; i < d->nsocks; i++) {
		struct evd_sock *o = &d->socks[i];

		if (o->ls || o->u || o->w) {
			evd_sock_close(o);
			closed++;
		}
	}
	for (int i = 0; i < nd->nsocks; i++)
		for (uint32_t p = 0; nd->socks[i].u && p < nd->nown; p++)
			evr_udp_deny_port(nd->socks[i].u, nd->own_ports[p]);
	/* what the command line and the file set; the loop, the signals
	 * and the process stay */
	free(d->socks);
	free(d->lines);
	d->gen = nd->gen;
	d->svc = nd->svc;
	d->nsvc = nd->nsvc;
	memcpy(d->bind, nd->bind, sizeof(d->bind));
	d->nbind = nd->nbind;
	d->port_offset = nd->port_offset;
	d->backlog = nd->backlog;
	d->lim = nd->lim;
	d->drain_ms = nd->drain_ms;
	d->guard = nd->guard;
	memcpy(d->own_ports, nd->own_ports, sizeof(d->own_ports));
	d->nown = nd->nown;
	d->socks = nd->socks;
	d->nsocks = nd->nsocks;
	d->socks_cap = nd->socks_cap;
	d->lines = nd->lines;
	d->nlines = nd->nlines;
	d->nls = nd->nls;
	free(nd->cpus);
	free(nd);
	if (d->nothers > 1) {
		plan = evd_plan_new(d);
		if (plan)
			evd_plan_post(d, plan);
		else
			evr_log_err("reload: the other loops serve what they "
				    "served");
		evd_plan_put(plan);
	}
	evd_gen_retire(old);
	evd_print_listeners(d);
	printf("reload: %d kept, %d opened, %d closed\n", d->nsocks - opened,
	       opened, closed);
	fflush(stdout);
	evr_log_info("reload: %s: %d services, %d sockets: %d kept, %d "
		     "opened, %d closed",
		     d->conf_path ? d->conf_path : "command line", d->nsvc,
		     d->nsocks, d->nsocks - opened, opened, closed);
}

static void reload(struct daemon *d);

/* systemd hears of it (RELOADING=1, then READY=1), whatever comes of it */
void evd_reload(struct daemon *d)
{
	if (d->stop_signals) {
		evr_log_info("SIGHUP: draining, no reload");
		return;
	}
	evd_deploy_reloading(d);
	reload(d);
	evd_deploy_reloaded(d);
}

static void reload(struct daemon *d)
{
	const char *what = d->conf_path ? d->conf_path : "command line";
	struct daemon *nd;
	int err;

	evr_log_info("SIGHUP: reloading %s", what);
	nd = calloc(1, sizeof(*nd));
	if (!nd || !(nd->gen = evd_gen_new())) {
		free(nd);
		evr_log_err("reload: out of memory; nothing changed");
		return;
	}
	evd_defaults(nd);
	nd->svc = nd->gen->svc;
	nd->argc = d->argc;
	nd->argv = d->argv;
	optind = 0; /* getopt from the start again */
	err = evd_parse_args(nd, d->argc, d->argv);
	if (err) {
		evr_log_err("reload: %s is refused (above: why); the running "
			    "configuration goes on unchanged",
			    what);
		daemon_free(nd);
		return;
	}
	nd->loop = d->loop;
	nd->running = d;
	err = evd_start_listeners(nd);
	if (err) {
		rollback(d, nd);
		evr_log_err("reload: cannot open the sockets of %s (above: "
			    "why); the running configuration goes on "
			    "unchanged",
			    what);
		daemon_free(nd);
		return;
	}
	commit(d, nd);
}
