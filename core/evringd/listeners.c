/* SPDX-License-Identifier: MIT */
/*
 * listeners.c - evringd's sockets: every service on every bind address,
 * TCP and UDP (or on the sockets systemd passed for it, activation.c),
 * and one line per socket on stdout once all are open
 * ("listen SERVICE tcp ADDRESS:PORT BACKEND"; the `lsof -i` of evringd's
 * own sockets). A start that fails prints no line: nothing listens.
 */
#include "evringd.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Bind and serve (fd < 0), or serve fd, a socket bound already (socket
 * activation); *ss becomes the address served (port 0 resolved). */
static int bind_one(struct daemon *d, struct service *s, int pr,
		    struct sockaddr_storage *ss, socklen_t len, bool v6only,
		    int fd)
{
	struct evr_listen_cfg cfg = {
		.proto = s->proto,
		.conf = s->conf,
		.name = s->name,
		.v6only = v6only,
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
		err = fd >= 0 ? evr_udp_bind_fd(d->loop, fd, &ucfg, &u)
			      : evr_udp_bind(d->loop, (struct sockaddr *)ss,
					     len, &ucfg, &u);
		if (!err) {
			evr_udp_addr(u, ss, &len);
			d->udps[d->nudp++] = u;
		}
		return err;
	}
	evd_service_limits(d, s, &cfg.lim);
	err = fd >= 0
		  ? evr_listen_fd(d->loop, fd, &cfg, &ls)
		  : evr_listen(d->loop, (struct sockaddr *)ss, len, &cfg, &ls);
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
	err = bind_one(d, s, pr, &ss, len, v6only, -1);
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
	return 0;
}

/* A socket the service manager bound for s over pr (activation.c). */
static int serve_activated(struct daemon *d, struct service *s, int pr, int fd)
{
	struct sockaddr_storage ss;
	char a[EVR_ADDRSTRLEN];
	int err;

	err = bind_one(d, s, pr, &ss, sizeof(ss), false, fd);
	if (err < 0) {
		evr_log_err("socket activation: socket %d (%s/%s): %s", fd,
			    s->name, evd_proto_names[pr], strerror(-err));
		return err;
	}
	evr_log_info("%s/%s: serving %s, a socket from the service manager",
		     s->name, evd_proto_names[pr],
		     evr_addr_str((struct sockaddr *)&ss, a, sizeof(a)));
	listening(d, s, pr, &ss);
	return 0;
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

	/* sockets passed by systemd: exactly those, none of our own */
	nfd = evd_activated(s, pr, fds, 64);
	for (int k = 0; k < nfd && !err; k++)
		err = serve_activated(d, s, pr, fds[k]);
	if (nfd)
		return err;
	return s->host[0] ? listen_hosts(d, s, pr) : listen_default(d, s, pr);
	return err;
}

int evd_start_listeners(struct daemon *d)
{
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
	/* every port we serve, ephemeral ones included, is one no UDP
	 * service of ours answers */
	for (int i = 0; i < d->nudp; i++)
		for (uint32_t p = 0; p < d->nown; p++)
			evr_udp_deny_port(d->udps[i], d->own_ports[p]);
	for (int i = 0; i < d->nlines; i++)
		printf("%s\n", d->lines[i]);
	fflush(stdout);
	return 0;
}
