/* SPDX-License-Identifier: MIT */
/*
 * listeners.c - evringd's sockets: every service on every bind address,
 * TCP and UDP (or on the sockets systemd passed for it, activation.c),
 * and one line per socket on stdout once all are open
 * ("listen SERVICE tcp ADDRESS:PORT BACKEND"; the `lsof -i` of evringd's
 * own sockets). A start that fails prints no line: nothing listens.
 *
 * With several loops, loop 0 binds first and records what it bound (the
 * ports of port 0 resolved); each other loop binds the same addresses,
 * every loop its own socket with SO_REUSEPORT, so that the kernel spreads
 * the clients. A module whose configuration is a shared table
 * (EVR_PROTO_ONE_LOOP: the directory) is served by loop 0 alone. A TCP
 * socket from the service manager is one socket: every loop accepts from
 * it (a duplicate each); a UDP one is loop 0's, so that a source's
 * datagrams meet one rate limit. The lines name each address once.
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

/* Every loop its own socket, but for a module served by one loop. */
static bool shared_port(const struct evr_loop *l, const struct service *s)
{
	struct evr_group *g = evr_loop_group(l);

	return g && evr_group_size(g) > 1 &&
	       !(s->proto->flags & EVR_PROTO_ONE_LOOP);
}

/* Bind and serve on loop l (fd < 0), or serve fd, a socket bound already
 * (socket activation); *ss becomes the address served (port 0 resolved);
 * a UDP socket goes in udps[(*nudp)++]. */
static int bind_one(struct daemon *d, struct evr_loop *l, struct service *s,
		    int pr, struct sockaddr_storage *ss, socklen_t len,
		    bool v6only, int fd, struct evr_udp **udps, int *nudp)
{
	struct evr_listen_cfg cfg = {
		.proto = s->proto,
		.conf = s->conf,
		.name = s->name,
		.v6only = v6only,
		.reuseport = fd < 0 && shared_port(l, s),
		.backlog = (int)d->backlog,
		.lim = d->lim,
		.log_conns = s->log_conns ? s->log_conns == 1 : d->log_conns,
		.proxy = (enum evr_proxy)s->proxy,
		.proxy_timeout_ms = s->proxy_timeout_ms,
	};
	struct evr_udp_cfg ucfg = {
		.proto = s->proto,
		.conf = s->conf,
		.name = s->name,
		.v6only = v6only,
		.reuseport = fd < 0 && shared_port(l, s),
		.guard = s->guard_set ? s->guard : d->guard,
	};
	struct evr_listener *ls;
	struct evr_udp *u;
	int err;

	if (pr == P_UDP) {
		/* never answer the ports we serve: another instance of us,
		 * or ourselves, would answer back */
		ucfg.guard.deny_ports = d->own_ports;
		ucfg.guard.ndeny_ports = d->nown;
		err = fd >= 0 ? evr_udp_bind_fd(l, fd, &ucfg, &u)
			      : evr_udp_bind(l, (struct sockaddr *)ss, len,
					     &ucfg, &u);
		if (!err) {
			evr_udp_addr(u, ss, &len);
			udps[(*nudp)++] = u;
		}
		return err;
	}
	evd_service_limits(d, s, &cfg.lim);
	err = fd >= 0 ? evr_listen_fd(l, fd, &cfg, &ls)
		      : evr_listen(l, (struct sockaddr *)ss, len, &cfg, &ls);
	if (!err)
		evr_listener_addr(ls, ss, &len);
	return err;
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET
			 ? ((const struct sockaddr_in *)ss)->sin_port
			 : ((const struct sockaddr_in6 *)ss)->sin6_port);
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

/* Loop 0's socket at ss, for the other loops to serve too: the same
 * address bound again, or (fd >= 0) a duplicate of the service manager's
 * socket. */
static int remember(struct daemon *d, struct service *s, int pr,
		    const struct sockaddr_storage *ss, bool v6only, int fd)
{
	struct bound *b;

	if (d->nbound % 16 == 0) {
		b = realloc(d->bound, (size_t)(d->nbound + 16) * sizeof(*b));
		if (!b) {
			evr_log_err("listeners: out of memory");
			if (fd >= 0)
				close(fd);
			return -ENOMEM;
		}
		d->bound = b;
	}
	b = &d->bound[d->nbound++];
	b->s = s;
	b->pr = pr;
	b->ss = *ss;
	b->len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
					  : sizeof(struct sockaddr_in6);
	b->v6only = v6only;
	b->fd = fd;
	return 0;
}

static int listen_one(struct daemon *d, struct service *s, int pr,
		      const char *host, bool v6only, bool optional)
{
	struct sockaddr_storage ss;
	char a[EVR_ADDRSTRLEN];
	socklen_t len;
	int err;

	if (evr_addr_parse(host, (uint16_t)s->port[pr], &ss, &len) < 0)
		return evd_usage_error("bind address \"%.64s\": not a numeric "
				       "IPv4 or IPv6 address",
				       host);
	evr_addr_str((struct sockaddr *)&ss, a, sizeof(a));
	err = bind_one(d, d->loop, s, pr, &ss, len, v6only, -1, d->udps,
		       &d->nudp);
	if (err == -EAFNOSUPPORT && optional) {
		evr_log_warn("bind %s (%s): %s; serving IPv4 only", a, s->name,
			     strerror(-err));
		return 0;
	}
	if (err < 0) {
		bind_error(s, pr, a, err);
		return err;
	}
	listening(d, s, pr, &ss);
	return remember(d, s, pr, &ss, v6only, -1);
}

/* A socket the service manager bound for s over pr (activation.c). */
static int serve_activated(struct daemon *d, struct service *s, int pr, int fd)
{
	struct sockaddr_storage ss;
	char a[EVR_ADDRSTRLEN];
	int err, keep = -1;

	/* (evr_listen_fd closes fd once it serves a duplicate) */
	if (pr == P_TCP && shared_port(d->loop, s) &&
	    (keep = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
		return -errno;
	err = bind_one(d, d->loop, s, pr, &ss, sizeof(ss), false, fd, d->udps,
		       &d->nudp);
	if (err < 0) {
		evr_log_err("socket activation: socket %d (%s/%s): %s", fd,
			    s->name, evd_proto_names[pr], strerror(-err));
		if (keep >= 0)
			close(keep);
		return err;
	}
	evr_log_info("%s/%s: serving %s, a socket from the service manager",
		     s->name, evd_proto_names[pr],
		     evr_addr_str((struct sockaddr *)&ss, a, sizeof(a)));
	listening(d, s, pr, &ss);
	return keep >= 0 ? remember(d, s, pr, &ss, false, keep) : 0;
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
 * addresses; only those of the service's family. A module that serves
 * the server's own counters (EVR_PROTO_LOCAL): the loopback addresses,
 * unless -b gives others. */
static int listen_default(struct daemon *d, struct service *s, int pr)
{
	bool local = s->proto->flags & EVR_PROTO_LOCAL;
	int err = 0;

	if (d->nbind == 0) {
		if (s->family != AF_INET6)
			err = listen_one(d, s, pr,
					 local ? "127.0.0.1" : "0.0.0.0", false,
					 false);
		if (!err && s->family != AF_INET)
			err = listen_one(d, s, pr, local ? "::1" : "::", true,
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

	/* sockets passed by systemd: exactly those, none of our own */
	nfd = evd_activated(s, pr, fds, 64);
	for (int k = 0; k < nfd && !err; k++)
		err = serve_activated(d, s, pr, fds[k]);
	if (nfd)
		return err;
	return s->host[0] ? listen_hosts(d, s, pr) : listen_default(d, s, pr);
	return err;
}

/* Every port we serve, ephemeral ones included, is one no UDP service
 * of ours answers. */
static void deny_own_ports(const struct daemon *d, struct evr_udp **udps,
			   int nudp)
{
	for (int i = 0; i < nudp; i++)
		for (uint32_t p = 0; p < d->nown; p++)
			evr_udp_deny_port(udps[i], d->own_ports[p]);
}

int evd_start_listeners(struct daemon *d, struct evr_loop *l)
{
	d->loop = l;
	d->lines = calloc(LINES_MAX, sizeof(d->lines[0]));
	if (!d->lines) {
		evr_log_err("listeners: out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < d->nsvc; i++) {
		struct service *s = &d->svc[i];

		for (int pr = 0; pr < 2; pr++) {
			int err;

			if (!s->want[pr])
				continue;
			err = listen_service(d, s, pr);
			if (err)
				return err;
		}
	}
	deny_own_ports(d, d->udps, d->nudp);
	return 0;
}

int evd_listen_more(struct daemon *d, struct evr_loop *l)
{
	struct evr_udp *udps[MAX_SERVICES * MAX_BINDS];
	int nudp = 0;

	for (int i = 0; i < d->nbound; i++) {
		struct bound *b = &d->bound[i];
		struct sockaddr_storage ss = b->ss;
		char a[EVR_ADDRSTRLEN];
		int err, fd = -1;

		if (!shared_port(l, b->s))
			continue;
		if (b->fd >= 0 && (fd = fcntl(b->fd, F_DUPFD_CLOEXEC, 3)) < 0)
			return -errno;
		err = bind_one(d, l, b->s, b->pr, &ss, b->len, b->v6only, fd,
			       udps, &nudp);
		if (err < 0) {
			if (fd >= 0)
				close(fd);
			evr_addr_str((struct sockaddr *)&ss, a, sizeof(a));
			bind_error(b->s, b->pr, a, err);
			return err;
		}
	}
	deny_own_ports(d, udps, nudp);
	return 0;
}

void evd_print_listeners(const struct daemon *d)
{
	for (int i = 0; i < d->nlines; i++)
		printf("%s\n", d->lines[i]);
	fflush(stdout);
}
