/* SPDX-License-Identifier: MIT */
/*
 * listeners.c - evringd's sockets: every service on every bind address,
 * TCP and UDP (or on the sockets systemd passed for it, activation.c),
 * and one line per socket on stdout once all are open
 * ("listen SERVICE tcp ADDRESS:PORT BACKEND"; the `lsof -i` of evringd's
 * own sockets). A start that fails prints no line: nothing listens.
 *
 * Each socket is recorded (struct evd_sock) with the address it was
 * configured with: a reload (reload.c) runs the same code for the new
 * configuration and, where a socket of the running daemon has the same
 * address, port, protocol and kind, claims it instead of binding. The
 * sockets systemd passed are claimed by service name and protocol (they
 * were passed once, at start).
 *
 * With several loops, the sockets above are loop 0's, bound with
 * SO_REUSEPORT where every loop serves the service; each other loop binds
 * the same addresses (the ports of port 0 resolved) from a plan loop 0
 * makes, its own socket each, so that the kernel spreads the clients (a
 * socket from the service manager: every loop accepts from a duplicate).
 * Loop 0 alone serves programs (it starts and reaps their processes),
 * modules whose configuration is loop 0's (EVR_PROTO_ONE_LOOP: the
 * directory's table, tcpmux's hand-overs) and a UDP socket from the
 * service manager (one socket: its sources meet one rate limit). The
 * listener lines name each address once.
 */
#include "evringd.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINES_MAX (MAX_SERVICES * 2 * (MAX_BINDS + 1))

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET
			 ? ((const struct sockaddr_in *)ss)->sin_port
			 : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

static bool port_zero(const struct sockaddr_storage *ss)
{
	return port_of(ss) == 0;
}

static void bind_error(const struct service *s, int pr, const char *addr,
		       int err)
{
	const char *hint = "";

	if (err == -EACCES && s->port[pr] < 1024)
		hint = " (ports below 1024 need root or "
		       "CAP_NET_BIND_SERVICE; try --port-offset 10000)";
	else if (err == -EADDRINUSE)
		hint = " (another server uses it)";
	evr_log_err("bind %s (%s/%s): %s%s", addr, s->name, evd_proto_names[pr],
		    strerror(-err), hint);
}

bool evd_every_loop(const struct daemon *d, const struct service *s)
{
	struct evr_group *g = d->loop ? evr_loop_group(d->loop) : NULL;

	return g && evr_group_size(g) > 1 && !s->prog &&
	       !(s->proto->flags & EVR_PROTO_ONE_LOOP);
}

void evd_listen_cfg(const struct daemon *d, struct service *s, bool v6only,
		    struct evr_listen_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->proto = s->proto;
	cfg->conf = s->prog ? (void *)s : s->conf;
	cfg->name = s->name;
	cfg->v6only = v6only;
	cfg->backlog = (int)d->backlog;
	evd_service_limits(d, s, &cfg->lim);
	cfg->log_conns = s->log_conns ? s->log_conns == 1 : d->log_conns;
	cfg->proxy = (enum evr_proxy)s->proxy;
	cfg->proxy_timeout_ms = s->proxy_timeout_ms;
	cfg->defer_accept_s = s->defer_accept_s;
	cfg->reuseport = evd_every_loop(d, s);
	cfg->release = evd_gen_put;
	cfg->release_arg = s->gen;
	evd_gen_get(s->gen);
}

void evd_udp_cfg(const struct daemon *d, struct service *s, bool v6only,
		 struct evr_udp_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->proto = s->proto;
	cfg->conf = s->conf;
	cfg->name = s->name;
	cfg->v6only = v6only;
	cfg->guard = s->guard_set ? s->guard : d->guard;
	/* never answer the ports we serve: another instance of us, or
	 * ourselves, would answer back */
	cfg->guard.deny_ports = d->own_ports;
	cfg->guard.ndeny_ports = d->nown;
	cfg->reuseport = evd_every_loop(d, s);
	cfg->release = evd_gen_put;
	cfg->release_arg = s->gen;
	evd_gen_get(s->gen);
}

static struct evd_sock *sock_new(struct daemon *d)
{
	if (d->nsocks == d->socks_cap) {
		int cap = d->socks_cap ? 2 * d->socks_cap : 16;
		struct evd_sock *m =
		    realloc(d->socks, (size_t)cap * sizeof(*m));

		if (!m)
			return NULL;
		d->socks = m;
		d->socks_cap = cap;
	}
	memset(&d->socks[d->nsocks], 0, sizeof(d->socks[0]));
	return &d->socks[d->nsocks++];
}

static int sock_kind(const struct service *s, int pr)
{
	if (s->prog && evd_prog_wait(s->prog))
		return SK_WAIT;
	return pr == P_UDP ? SK_UDP : SK_LISTENER;
}

/* Bind and serve k->key for s (fd < 0), or serve fd, a socket bound
 * already (socket activation); k->addr becomes the address served (port
 * 0 resolved). */
static int bind_one(struct daemon *d, struct service *s, struct evd_sock *k,
		    int fd)
{
	struct evr_listen_cfg cfg;
	struct evr_udp_cfg ucfg;
	socklen_t len = sizeof(k->addr);
	int err;

	k->addr = k->key;
	if (k->kind == SK_WAIT) {
		err = evd_wait_bind(d, s, k->pr, (struct sockaddr *)&k->key,
				    k->keylen, k->v6only, &k->w);
		if (!err)
			getsockname(evd_wait_fd(k->w),
				    (struct sockaddr *)&k->addr, &len);
		return err;
	}
	if (k->pr == P_UDP) {
		evd_udp_cfg(d, s, k->v6only, &ucfg);
		err = fd >= 0
			  ? evr_udp_bind_fd(d->loop, fd, &ucfg, &k->u)
			  : evr_udp_bind(d->loop, (struct sockaddr *)&k->key,
					 k->keylen, &ucfg, &k->u);
		if (err < 0)
			evd_gen_put(s->gen);
		else
			evr_udp_addr(k->u, &k->addr, &len);
		return err;
	}
	evd_listen_cfg(d, s, k->v6only, &cfg);
	err = fd >= 0 ? evr_listen_fd(d->loop, fd, &cfg, &k->ls)
		      : evr_listen(d->loop, (struct sockaddr *)&k->key,
				   k->keylen, &cfg, &k->ls);
	if (err < 0)
		evd_gen_put(s->gen);
	else
		evr_listener_addr(k->ls, &k->addr, &len);
	return err;
}

/* A socket of the running daemon that serves what k describes: same
 * address and port as configured, protocol, kind and IPV6_V6ONLY (and,
 * for a free port, service name). */
static struct evd_sock *sock_match(struct daemon *run, const struct evd_sock *k)
{
	for (int i = 0; run && i < run->nsocks; i++) {
		struct evd_sock *o = &run->socks[i];

		if (o->claimed || o->activated || o->pr != k->pr ||
		    o->kind != k->kind || o->v6only != k->v6only ||
		    o->keylen != k->keylen ||
		    memcmp(&o->key, &k->key, k->keylen))
			continue;
		if (port_zero(&k->key) && strcmp(o->name, k->name))
			continue;
		return o;
	}
	return NULL;
}

void evd_sock_close(struct evd_sock *k)
{
	if (k->ls)
		evr_listener_drain(k->ls);
	if (k->u)
		evr_udp_close(k->u);
	if (k->w)
		evd_wait_close(k->w);
	k->ls = NULL;
	k->u = NULL;
	k->w = NULL;
}

/* Modules that list the option "served" (the directory) hear of every
 * socket we serve as "name port proto". */
static bool wants_served(const struct evr_proto *p)
{
	for (const struct evr_proto_opt *o = p->opts; o && o->key; o++)
		if (!strcmp(o->key, "served"))
			return true;
	return false;
}

static void tell_served(struct daemon *d, const struct service *s, int pr,
			uint16_t port)
{
	char what[96];

	snprintf(what, sizeof(what), "%s %u %s", s->name, port,
		 evd_proto_names[pr]);
	for (int i = 0; i < d->nsvc; i++) {
		struct service *m = &d->svc[i];

		if (wants_served(m->proto) &&
		    m->proto->conf_set(m->conf, "served", what) < 0)
			evr_log_warn("%s: cannot list %s", m->name, what);
	}
}

/* One more socket served: counted, told to the directory, its port kept
 * from UDP answers, its line kept for stdout. */
static void listening(struct daemon *d, struct service *s, int pr,
		      const struct sockaddr_storage *ss)
{
	char a[EVR_ADDRSTRLEN];
	uint16_t port;

	d->nls++;
	port = port_of(ss);
	tell_served(d, s, pr, port);
	if (d->nown < MAX_SERVICES * 2)
		d->own_ports[d->nown++] = port;
	if (d->nlines < LINES_MAX)
		snprintf(
		    d->lines[d->nlines++], sizeof(d->lines[0]),
		    "listen %s %s %s %s", s->name, evd_proto_names[pr],
		    evr_addr_str((const struct sockaddr *)ss, a, sizeof(a)),
		    evr_loop_backend(d->loop));
}

static int listen_default(struct daemon *d, struct service *s, int pr);

static int listen_one(struct daemon *d, struct service *s, int pr,
		      const char *host, bool v6only, bool optional)
{
	struct evd_sock *k = sock_new(d), *o;
	char a[EVR_ADDRSTRLEN];
	int err;

	if (!k) {
		evr_log_err("listeners: out of memory");
		return -ENOMEM;
	}
	if (evr_addr_parse(host, (uint16_t)s->port[pr], &k->key, &k->keylen) <
	    0) {
		d->nsocks--;
		return evd_usage_error("bind address \"%.64s\": not a numeric "
				       "IPv4 or IPv6 address",
				       host);
	}
	k->pr = pr;
	k->kind = sock_kind(s, pr);
	k->v6only = v6only;
	k->s = s;
	snprintf(k->name, sizeof(k->name), "%s", s->name);
	evr_addr_str((struct sockaddr *)&k->key, a, sizeof(a));
	o = sock_match(d->running, k);
	if (o) {
		/* a reload keeps it: reload.c hands it over */
		o->claimed = true;
		k->from = o;
		k->addr = o->addr;
		d->kept++;
		err = 0;
	} else {
		err = bind_one(d, s, k, -1);
	}
	if (err < 0)
		d->nsocks--;
	if (err == -EAFNOSUPPORT && optional) {
		evr_log_warn("bind %s (%s): %s; serving IPv4 only", a, s->name,
			     strerror(-err));
		return 0;
	}
	if (err < 0) {
		bind_error(s, pr, a, err);
		return err;
	}
	listening(d, s, pr, &k->addr);
	return 0;
}

/* A socket the service manager bound for s over pr (activation.c). */
static int serve_activated(struct daemon *d, struct service *s, int pr, int fd)
{
	struct evd_sock *k = sock_new(d);
	char a[EVR_ADDRSTRLEN];
	socklen_t len = sizeof(k->key);
	int err;

	if (!k) {
		evr_log_err("listeners: out of memory");
		return -ENOMEM;
	}
	k->pr = pr;
	k->kind = sock_kind(s, pr);
	k->activated = true;
	k->s = s;
	snprintf(k->name, sizeof(k->name), "%s", s->name);
	getsockname(fd, (struct sockaddr *)&k->key, &len);
	k->keylen = len;
	err = k->kind == SK_WAIT ? -EOPNOTSUPP : bind_one(d, s, k, fd);
	if (err < 0) {
		d->nsocks--;
		evr_log_err("socket activation: socket %d (%s/%s): %s%s", fd,
			    s->name, evd_proto_names[pr], strerror(-err),
			    err == -EOPNOTSUPP ? " (a wait program binds "
						 "its own)"
					       : "");
		return err;
	}
	evr_log_info("%s/%s: serving %s, a socket from the service manager",
		     s->name, evd_proto_names[pr],
		     evr_addr_str((struct sockaddr *)&k->addr, a, sizeof(a)));
	listening(d, s, pr, &k->addr);
	return 0;
}

/* A reload: the sockets systemd passed at start for s over pr, kept (it
 * passes them once). How many. */
static int claim_activated(struct daemon *d, struct service *s, int pr)
{
	struct daemon *run = d->running;
	int n = 0;

	for (int i = 0; run && i < run->nsocks; i++) {
		struct evd_sock *o = &run->socks[i], *k;

		if (!o->activated || o->claimed || o->pr != pr ||
		    strcmp(o->name, s->name) || o->kind != sock_kind(s, pr))
			continue;
		k = sock_new(d);
		if (!k)
			return -ENOMEM;
		*k = *o;
		k->s = s;
		k->from = o;
		k->claimed = false;
		o->claimed = true;
		d->kept++;
		listening(d, s, pr, &k->addr);
		n++;
	}
	return n;
}

/* The numeric addresses of a host list from a configuration file ("*",
 * addresses, names; getaddrinfo as BSD inetd), each bound in turn. */
static int listen_hosts(struct daemon *d, struct service *s, int pr)
{
	char list[sizeof(s->host)], *save = NULL;
	int err = 0, n = 0;

	snprintf(list, sizeof(list), "%s", s->host);
	for (char *h = strtok_r(list, ",", &save); h && !err;
	     h = strtok_r(NULL, ",", &save)) {
		struct addrinfo hints = {
			.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
			.ai_socktype = pr == P_TCP ? SOCK_STREAM : SOCK_DGRAM,
			.ai_family = s->family ? s->family : AF_UNSPEC,
		};
		struct addrinfo *res;
		char num[INET6_ADDRSTRLEN];
		int rc;

		if (!strcmp(h, "*")) {
			err = listen_default(d, s, pr);
			continue;
		}
		rc = getaddrinfo(h, "0", &hints, &res);
		if (rc) {
			evr_log_err("%s: host \"%s\": %s", s->where, h,
				    gai_strerror(rc));
			return -EINVAL;
		}
		for (struct addrinfo *a = res; a && !err; a = a->ai_next) {
			if (getnameinfo(a->ai_addr, a->ai_addrlen, num,
					sizeof(num), NULL, 0,
					NI_NUMERICHOST) != 0)
				continue;
			if (++n > MAX_BINDS) {
				evr_log_err("%s: more than %d addresses",
					    s->where, MAX_BINDS);
				err = -EINVAL;
				break;
			}
			err = listen_one(d, s, pr, num,
					 a->ai_family == AF_INET6, false);
		}
		freeaddrinfo(res);
	}
	return err;
}

/* Every address (0.0.0.0 and ::, the IPv6 one optional), or the -b
 * addresses; only those of the service's family. */
static int listen_default(struct daemon *d, struct service *s, int pr)
{
	int err = 0;

	if (d->nbind == 0) {
		if (s->family != AF_INET6)
			err = listen_one(d, s, pr, "0.0.0.0", false, false);
		if (!err && s->family != AF_INET)
			err = listen_one(d, s, pr, "::", true,
					 s->family != AF_INET6);
		return err;
	}
	for (int b = 0; !err && b < d->nbind; b++) {
		bool v6 = strchr(d->bind[b], ':') != NULL;

		if (s->family && s->family != (v6 ? AF_INET6 : AF_INET))
			continue;
		err = listen_one(d, s, pr, d->bind[b], false, false);
	}
	return err;
}

static int listen_service(struct daemon *d, struct service *s, int pr)
{
	int fds[64], nfd, err = 0;

	nfd = claim_activated(d, s, pr);
	if (nfd)
		return nfd < 0 ? nfd : 0;
	/* sockets passed by systemd: exactly those, none of our own */
	nfd = evd_activated(s, pr, fds, 64);
	for (int k = 0; k < nfd && !err; k++)
		err = serve_activated(d, s, pr, fds[k]);
	if (nfd)
		return err;
	return s->host[0] ? listen_hosts(d, s, pr) : listen_default(d, s, pr);
}

void evd_print_listeners(struct daemon *d)
{
	for (int i = 0; i < d->nlines; i++)
		printf("%s\n", d->lines[i]);
	fflush(stdout);
}

int evd_start_listeners(struct daemon *d)
{
	int err;

	d->lines = calloc(LINES_MAX, sizeof(d->lines[0]));
	if (!d->lines) {
		evr_log_err("listeners: out of memory");
		return -ENOMEM;
	}
	err = evd_mux_start(d);
	for (int i = 0; !err && i < d->nsvc; i++) {
		struct service *s = &d->svc[i];

		for (int pr = 0; pr < 2 && !err; pr++)
			if (s->want[pr])
				err = listen_service(d, s, pr);
	}
	if (err)
		return err;
	if (d->running)
		return 0; /* reload.c finishes */
	/* every port we serve, ephemeral ones included, is one no UDP
	 * service of ours answers */
	for (int i = 0; i < d->nsocks; i++)
		for (uint32_t p = 0; d->socks[i].u && p < d->nown; p++)
			evr_udp_deny_port(d->socks[i].u, d->own_ports[p]);
	return 0;
}

/* ---- the other loops of a group ---- */

struct evd_plan_sock {
	int pr;
	bool v6only;
	struct sockaddr_storage addr; /* as loop 0 bound it */
	socklen_t len;
	int fd; /* a duplicate of the service manager's socket, or -1 */
	struct evr_listen_cfg cfg; /* each holds a reference on its gen */
	struct evr_udp_cfg ucfg;
};

struct evd_plan {
	unsigned refs; /* atomic: every loop it is posted to holds one */
	struct daemon *d;
	uint16_t own_ports[MAX_SERVICES * 2];
	uint32_t nown;
	int n;
	struct evd_plan_sock v[];
};

/* One socket of a loop other than 0. */
struct evd_lsock {
	int pr;
	bool v6only, keep;
	struct sockaddr_storage addr;
	socklen_t len;
	struct evr_listener *ls;
	struct evr_udp *u;
};

struct evd_loopsocks {
	struct evd_lsock *v;
	int n, cap;
};

struct evd_plan *evd_plan_new(struct daemon *d)
{
	struct evd_plan *p;
	int n = 0;

	p = calloc(1, sizeof(*p) + (size_t)d->nsocks * sizeof(p->v[0]));
	if (!p) {
		evr_log_err("listeners: out of memory");
		return NULL;
	}
	p->refs = 1;
	p->d = d;
	memcpy(p->own_ports, d->own_ports, sizeof(p->own_ports));
	p->nown = d->nown;
	for (int i = 0; i < d->nsocks; i++) {
		struct evd_sock *k = &d->socks[i];
		struct evd_plan_sock *e = &p->v[n];
		socklen_t len = sizeof(e->addr);

		if (k->kind == SK_WAIT || !evd_every_loop(d, k->s) ||
		    (k->activated && k->pr == P_UDP) || (!k->ls && !k->u))
			continue;
		e->pr = k->pr;
		e->v6only = k->v6only;
		e->fd = -1;
		if (k->ls) {
			evr_listener_addr(k->ls, &e->addr, &len);
			if (k->activated &&
			    (e->fd = fcntl(evr_listener_fd(k->ls),
					   F_DUPFD_CLOEXEC, 3)) < 0) {
				evr_log_err("listeners: dup: %s",
					    strerror(errno));
				evd_plan_put(p);
				return NULL;
			}
			evd_listen_cfg(d, k->s, k->v6only, &e->cfg);
		} else {
			evr_udp_addr(k->u, &e->addr, &len);
			evd_udp_cfg(d, k->s, k->v6only, &e->ucfg);
			e->ucfg.guard.deny_ports = p->own_ports;
			e->ucfg.guard.ndeny_ports = p->nown;
		}
		e->len = len;
		p->n = ++n;
	}
	return p;
}

void evd_plan_put(struct evd_plan *p)
{
	if (!p || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL))
		return;
	for (int i = 0; i < p->n; i++) {
		struct evd_plan_sock *e = &p->v[i];

		if (e->fd >= 0)
			close(e->fd);
		evd_gen_put(e->pr == P_UDP ? e->ucfg.release_arg
					   : e->cfg.release_arg);
	}
	free(p);
}

static struct evd_lsock *lsock_find(struct evd_loopsocks *o,
				    const struct evd_plan_sock *e)
{
	for (int j = 0; j < o->n; j++) {
		struct evd_lsock *k = &o->v[j];

		if (!k->keep && k->pr == e->pr && k->v6only == e->v6only &&
		    k->len == e->len && !memcmp(&k->addr, &e->addr, e->len))
			return k;
	}
	return NULL;
}

static struct evd_lsock *lsock_new(struct evd_loopsocks *o)
{
	if (o->n == o->cap) {
		int cap = o->cap ? 2 * o->cap : 16;
		struct evd_lsock *m = realloc(o->v, (size_t)cap * sizeof(*m));

		if (!m)
			return NULL;
		o->v = m;
		o->cap = cap;
	}
	memset(&o->v[o->n], 0, sizeof(o->v[0]));
	return &o->v[o->n++];
}

/* Serve e's new configuration on k, a socket kept. */
static int lsock_set(struct evd_lsock *k, const struct evd_plan_sock *e)
{
	int err;

	evd_gen_get(e->pr == P_UDP ? e->ucfg.release_arg : e->cfg.release_arg);
	err = k->ls ? evr_listener_set_cfg(k->ls, &e->cfg)
		    : evr_udp_set_cfg(k->u, &e->ucfg);
	if (err < 0)
		evd_gen_put(e->pr == P_UDP ? e->ucfg.release_arg
					   : e->cfg.release_arg);
	return err;
}

/* Bind e on l as k. */
static int lsock_bind(struct evr_loop *l, struct evd_lsock *k,
		      const struct evd_plan_sock *e)
{
	const struct sockaddr *sa = (const struct sockaddr *)&e->addr;
	int err, fd = -1;

	k->pr = e->pr;
	k->v6only = e->v6only;
	k->addr = e->addr;
	k->len = e->len;
	k->keep = true;
	if (e->fd >= 0 && (fd = fcntl(e->fd, F_DUPFD_CLOEXEC, 3)) < 0)
		return -errno;
	evd_gen_get(e->pr == P_UDP ? e->ucfg.release_arg : e->cfg.release_arg);
	if (e->pr == P_UDP)
		err = evr_udp_bind(l, sa, e->len, &e->ucfg, &k->u);
	else if (fd >= 0)
		err = evr_listen_fd(l, fd, &e->cfg, &k->ls);
	else
		err = evr_listen(l, sa, e->len, &e->cfg, &k->ls);
	if (err < 0) {
		evd_gen_put(e->pr == P_UDP ? e->ucfg.release_arg
					   : e->cfg.release_arg);
		if (fd >= 0)
			close(fd);
	}
	return err;
}

/* Make loop l's sockets what p says: kept ones take the new
 * configuration, missing ones are bound, the rest drain. At start an
 * error gives up (the group does not start); after a reload the others
 * go on, and it is logged. */
static int plan_apply(struct daemon *d, struct evr_loop *l, struct evd_plan *p,
		      bool start)
{
	unsigned idx = evr_loop_index(l);
	struct evd_loopsocks *o = &d->others[idx];
	char a[EVR_ADDRSTRLEN];
	int err, j = 0;

	for (int i = 0; i < o->n; i++)
		o->v[i].keep = false;
	for (int i = 0; i < p->n; i++) {
		struct evd_plan_sock *e = &p->v[i];
		const char *name = e->pr == P_UDP ? e->ucfg.name : e->cfg.name;
		struct evd_lsock *k = lsock_find(o, e);

		evr_addr_str((struct sockaddr *)&e->addr, a, sizeof(a));
		if (k) {
			k->keep = true;
			err = lsock_set(k, e);
			if (err < 0)
				evr_log_err(
				    "reload: loop %u: %s/%s %s: %s; the "
				    "previous configuration still "
				    "serves it",
				    idx, name, evd_proto_names[e->pr], a,
				    strerror(-err));
			continue;
		}
		k = lsock_new(o);
		err = k ? lsock_bind(l, k, e) : -ENOMEM;
		if (err < 0) {
			if (k)
				o->n--;
			evr_log_err("loop %u: bind %s (%s/%s): %s%s", idx, a,
				    name, evd_proto_names[e->pr],
				    strerror(-err),
				    start ? "" : "; the other loops serve it");
			if (start)
				return err;
		}
	}
	for (int i = 0; i < o->n; i++) {
		struct evd_lsock *k = &o->v[i];

		if (!k->keep) {
			if (k->ls)
				evr_listener_drain(k->ls);
			if (k->u)
				evr_udp_close(k->u);
			continue;
		}
		o->v[j++] = *k;
	}
	o->n = j;
	return 0;
}

int evd_plan_apply(struct daemon *d, struct evr_loop *l, struct evd_plan *p)
{
	return plan_apply(d, l, p, true);
}

static void plan_msg(struct evr_loop *l, void *arg)
{
	struct evd_plan *p = arg;

	plan_apply(p->d, l, p, false);
	evd_plan_put(p);
}

void evd_plan_post(struct daemon *d, struct evd_plan *p)
{
	unsigned n = evr_group_size(d->loops);

	for (unsigned i = 1; i < n; i++) {
		struct evr_loop *l = evr_group_loop(d->loops, i);

		__atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
		if (!l || evr_loop_post(l, plan_msg, p) < 0) {
			evr_log_err("reload: loop %u cannot hear of it; it "
				    "serves what it served",
				    i);
			evd_plan_put(p);
		}
	}
}

int evd_loopsocks_init(struct daemon *d, unsigned n)
{
	d->others = calloc(n, sizeof(d->others[0]));
	if (!d->others) {
		evr_log_err("listeners: out of memory");
		return -ENOMEM;
	}
	d->nothers = n;
	return 0;
}

void evd_loopsocks_free(struct daemon *d)
{
	for (unsigned i = 0; d->others && i < d->nothers; i++)
		free(d->others[i].v);
	free(d->others);
	d->others = NULL;
}
