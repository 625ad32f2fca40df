/* SPDX-License-Identifier: MIT */
/*
 * config_apply.c - what the lines of an inetd.conf mean, as services of
 * the daemon. config.c has checked the syntax; here the names are looked
 * up: modules loaded from `#@ module=` lines, built-in modules
 * (`internal`, or a module's name in its place), programs (spawn.c: the
 * file, the user), ports in /etc/services, host names, the options of
 * `#@` lines, the tcpmux/NAME services (mux.c). Each error names the
 * file, the line and the field, as the parser's do, and every one is
 * logged before the file is refused whole.
 */
#include "config.h"
#include "evringd.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void known_modules(char *buf, size_t n, int pr)
{
	const struct evr_proto *p;
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; (p = evr_proto_at(i)) && off < n; i++)
		if (evd_proto_can(p, pr))
			off += (size_t)snprintf(buf + off, n - off, "%s%s",
						off ? ", " : "", p->name);
}

/* The module of e: by the service's name for `internal`, else by the
 * name in field 6. NULL after an error. */
static const struct evr_proto *
entry_module(struct evd_conf *cf, const struct evd_conf_entry *e, int pr)
{
	const char *name = e->internal ? e->service : e->server;
	const struct evr_proto *p;
	char known[256];

	if (e->internal && e->port_given) {
		evd_conf_field_error(cf, e, EVD_F_SERVER,
				     "internal needs a service name in field "
				     "1, not a port (or name the module here, "
				     "as \"echo\")");
		return NULL;
	}
	p = evr_proto_find(name);
	if (p && evd_proto_can(p, pr))
		return p;
	known_modules(known, sizeof(known), pr);
	if (!p && e->internal)
		evd_conf_field_error(cf, e, EVD_F_SERVER,
				     "no internal %s service \"%s\" (built "
				     "in: %s)",
				     evd_proto_names[pr], name, known);
	else if (!p)
		evd_conf_field_error(cf, e, EVD_F_SERVER,
				     "no module \"%s\" (%s: %s)", name,
				     evd_proto_names[pr], known);
	else
		evd_conf_field_error(
		    cf, e, EVD_F_PROTOCOL, "%s does not serve %s (%s: %s)",
		    name, evd_proto_names[pr], evd_proto_names[pr], known);
	return NULL;
}

static long entry_port(struct evd_conf *cf, const struct evd_conf_entry *e,
		       int pr)
{
	struct servent *se;

	if (e->port_given)
		return e->port;
	se = getservbyname(e->service, evd_proto_names[pr]);
	if (!se) {
		evd_conf_field_error(cf, e, EVD_F_SERVICE,
				     "no %s service \"%s\" in /etc/services "
				     "(give a port number instead)",
				     evd_proto_names[pr], e->service);
		return -1;
	}
	return ntohs((uint16_t)se->s_port);
}

/* Every host of e's list must resolve to an address of its family. */
static bool entry_hosts_ok(struct evd_conf *cf, const struct evd_conf_entry *e)
{
	char list[256], *save = NULL;

	if (!e->host)
		return true;
	snprintf(list, sizeof(list), "%s", e->host);
	for (char *h = strtok_r(list, ",", &save); h;
	     h = strtok_r(NULL, ",", &save)) {
		struct addrinfo hints = {
			.ai_flags = AI_PASSIVE,
			.ai_socktype = e->stream ? SOCK_STREAM : SOCK_DGRAM,
			.ai_family = e->family == 4   ? AF_INET
				     : e->family == 6 ? AF_INET6
						      : AF_UNSPEC,
		};
		struct addrinfo *res;
		int rc;

		if (!strcmp(h, "*"))
			continue;
		rc = getaddrinfo(h, "0", &hints, &res);
		if (rc) {
			evd_conf_field_error(
			    cf, e, EVD_F_SERVICE, "host \"%s\": %s%s", h,
			    gai_strerror(rc),
			    e->family ? " (for this protocol)" : "");
			return false;
		}
		freeaddrinfo(res);
	}
	return true;
}

static void apply_options(struct daemon *d, struct evd_conf *cf,
			  const struct evd_conf_entry *e, struct service *s)
{
	char why[512];

	for (int i = 0; i < e->nopts; i++) {
		const struct evd_conf_opt *o = &e->opts[i];

		if (evd_service_option(d, s, o->key, o->value, why,
				       sizeof(why)) < 0)
			evd_conf_error(cf, o->line, "option \"%s=%.64s\": %s",
				       o->key, o->value, why);
	}
}

/* The service's name: the one of field 1, else (a port) the module's or
 * the program's. */
static const char *entry_name(const struct evd_conf_entry *e,
			      const struct evr_proto *proto)
{
	const char *base;

	if (!e->port_given)
		return e->service;
	if (e->internal || e->module)
		return proto->name;
	base = strrchr(e->argv[0], '/');
	return base ? base + 1 : e->argv[0];
}

static int apply_entry(struct daemon *d, struct evd_conf *cf,
		       const struct evd_conf_entry *e)
{
	int pr = e->stream ? P_TCP : P_UDP;
	bool program = !e->internal && !e->module;
	const struct evr_proto *proto;
	struct service *s;
	long port = 0;
	int err;

	proto = program ? &evd_spawn_proto : entry_module(cf, e, pr);
	if (!proto)
		return 0;
	if (!e->tcpmux) {
		port = entry_port(cf, e, pr);
		if (port < 0 || !entry_hosts_ok(cf, e))
			return 0;
	}
	if (d->nsvc == MAX_SERVICES) {
		evd_conf_error(cf, e->line, "too many services (at most %d)",
			       MAX_SERVICES);
		return 0;
	}
	s = &d->svc[d->nsvc++];
	err = evd_service_init(s, proto, entry_name(e, proto));
	if (!err && program)
		err = evd_prog_setup(d, cf, e, s);
	if (err)
		return err;
	if (e->tcpmux) {
		s->mux = true;
		s->mux_plus = e->tcpmux_plus;
	} else {
		s->want[pr] = true;
		s->port[pr] = port;
	}
	snprintf(s->host, sizeof(s->host), "%s", e->host ? e->host : "");
	s->family = e->family == 4 ? AF_INET : e->family == 6 ? AF_INET6 : 0;
	snprintf(s->where, sizeof(s->where), "%.60s:%d", cf->path, e->line);
	apply_options(d, cf, e, s);
	return 0;
}

static void load_modules(struct evd_conf *cf)
{
	char why[512];

	for (size_t i = 0; i < cf->nmods; i++)
		if (evd_module_load(cf->mods[i].value, why, sizeof(why)) < 0)
			evd_conf_error(cf, cf->mods[i].line,
				       "module \"%.200s\": %s",
				       cf->mods[i].value, why);
}

/* Two lines for the same socket would fail at bind; say so now. Port 0
 * (any free port) never clashes. */
static void check_duplicates(struct daemon *d, struct evd_conf *cf, int first)
{
	for (int i = first; i < d->nsvc; i++) {
		const struct service *a = &d->svc[i];
		int pr = a->want[P_TCP] ? P_TCP : P_UDP;

		if (!a->want[pr])
			continue; /* tcpmux/NAME: no socket */
		for (int j = first; j < i; j++) {
			const struct service *b = &d->svc[j];

			if (!b->want[pr] || b->port[pr] != a->port[pr] ||
			    a->port[pr] == 0 || strcmp(a->host, b->host) ||
			    (a->family && b->family && a->family != b->family))
				continue;
			evd_conf_error(cf, atoi(strrchr(a->where, ':') + 1),
				       "%s port %ld is served by line %s "
				       "already",
				       evd_proto_names[pr], a->port[pr],
				       strrchr(b->where, ':') + 1);
			break;
		}
	}
}

static void log_errors(struct evd_conf *cf)
{
	size_t n = cf->nerrors < EVD_CONF_MAX_ERRORS ? cf->nerrors
						     : EVD_CONF_MAX_ERRORS;

	evd_conf_sort_errors(cf);
	for (size_t i = 0; i < n; i++)
		evr_log_err("%s", cf->err[i].text ? cf->err[i].text
						  : "(out of memory)");
	if (cf->nerrors > n)
		evr_log_err("%s: %zu more errors", cf->path, cf->nerrors - n);
}

int evd_config_apply(struct daemon *d)
{
	struct evd_conf cf;
	int first = d->nsvc, err;

	err = evd_conf_load(&cf, d->conf_path);
	if (err == -EINVAL)
		err = 0; /* check the well-formed lines too: all errors */
	if (!err)
		load_modules(&cf);
	for (size_t i = 0; !err && i < cf.n; i++)
		if (cf.e[i].ok)
			err = apply_entry(d, &cf, &cf.e[i]);
	if (!err)
		check_duplicates(d, &cf, first);
	if (!err)
		err = evd_mux_apply(d, &cf);
	endservent();
	if (err == -ENOMEM) {
		evr_log_err("%s: out of memory", d->conf_path);
	} else if (err || cf.nerrors) {
		log_errors(&cf);
		evr_log_err("%s: %zu error%s: the file is refused",
			    cf.path ? cf.path : d->conf_path, cf.nerrors,
			    cf.nerrors == 1 ? "" : "s");
		err = -EINVAL;
	}
	evd_conf_free(&cf);
	return err;
}
