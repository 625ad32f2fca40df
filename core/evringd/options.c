/* SPDX-License-Identifier: MIT */
/*
 * options.c - evringd's command line.
 *
 *	evringd [options] -s SERVICE[/tcp|/udp][:PORT] [-o NAME.KEY=VALUE]...
 *	evringd [options] -f FILE [-t]
 *
 * Layout: the usage text (services and their options come from the
 * modules themselves), value parsers (counts, durations, sizes), services
 * (-s), per-service options (-o), ports from /etc/services, the getopt
 * loop. Every error is a usage error: logged here with the option it is
 * about, returned as -EINVAL.
 */
#include "evringd.h"

#include <errno.h>
#include <arpa/inet.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>

const char *const evd_proto_names[2] = { "tcp", "udp" };

const struct limit_key evd_limit_keys[] = {
	{ "max_conns", offsetof(struct evr_conn_limits, max_conns), LIM_COUNT },
	{ "idle_timeout", offsetof(struct evr_conn_limits, idle_timeout_ms),
	  LIM_MS },
	{ "send_timeout", offsetof(struct evr_conn_limits, send_timeout_ms),
	  LIM_MS },
	{ "wq_high", offsetof(struct evr_conn_limits, wq_high), LIM_BYTES },
	{ "wq_low", offsetof(struct evr_conn_limits, wq_low), LIM_BYTES },
	{ "wq_max", offsetof(struct evr_conn_limits, wq_max), LIM_BYTES },
};
const size_t evd_nlimit_keys =
    sizeof(evd_limit_keys) / sizeof(evd_limit_keys[0]);

static const char usage_text[] =
    "usage: evringd [options] -s SERVICE [-s SERVICE]...\n"
    "       evringd [options] -f FILE [-t]\n"
    "\n"
    "Serves built-in services, modules and programs over TCP and UDP on\n"
    "io_uring (or epoll), as an inetd.\n"
    "\n"
    "  -f, --config FILE     serve the services of FILE, in inetd.conf "
    "format\n"
    "                        (evringd.conf(5)); -s adds more; SIGHUP "
    "reads it\n"
    "                        again\n"
    "  -m, --module PATH     load a module from a shared object "
    "(repeatable);\n"
    "                        it is served by name as the built-in ones\n"
    "  -t, --test            check the configuration, bind nothing, exit "
    "0\n"
    "                        (good) or 2 (an error, with its file:line)\n"
    "  -s, --service NAME[/tcp|/udp][:PORT]\n"
    "                        serve NAME (over TCP and UDP when the "
    "module\n"
    "                        has both); the port defaults to "
    "/etc/services\n"
    "  -o, --option NAME.KEY=VALUE\n"
    "                        a service option: the module's own, or a "
    "limit\n"
    "                        (max_conns, idle_timeout, send_timeout,\n"
    "                        wq_high, wq_low, wq_max) for that service\n"
    "  -b, --bind ADDR       listen on ADDR only (repeatable; default: "
    "all\n"
    "                        IPv4 and IPv6 addresses)\n"
    "      --port-offset N   add N to every port (10000: 10007, 10013)\n"
    "      --backlog N       listen(2) backlog (default 1024)\n"
    "      --backend NAME    auto (default), io_uring or epoll; also\n"
    "                        the EVRING_BACKEND environment variable\n"
    "      --threads N       loops, one per thread, each serving every\n"
    "                        service (default: the CPUs evringd may run\n"
    "                        on; 1: one loop)\n"
    "      --cpus LIST       pin loop i to the i-th CPU of LIST (0-3,8)\n"
    "      --steer-cpu       with --cpus, a connection goes to the loop of\n"
    "                        the CPU that received it (the NIC's queue)\n"
    "\n"
    "Limits (durations: 30, 30s, 500ms, 5m; sizes: 65536, 64K, 4M):\n"
    "      --idle-timeout T  close a connection idle for T (default "
    "300s;\n"
    "                        0: never)\n"
    "      --send-timeout T  close a connection whose peer takes no byte\n"
    "                        for T (default 60s; 0: never)\n"
    "      --drain-timeout T on SIGTERM, let connections finish for up "
    "to T\n"
    "                        (default 10s; 0: close them at once)\n"
    "      --max-conns N     connections open at once (default: no "
    "limit)\n"
    "      --max-conns-per-source N\n"
    "                        from one IPv4 address or IPv6 /64\n"
    "      --wq-high SIZE    stop reading a connection with this much "
    "queued\n"
    "                        for it (default 256K; resumes at a quarter)\n"
    "      --wq-max SIZE     close a connection with this much queued\n"
    "                        (default 4M)\n"
    "      --queued-max SIZE all connections together (default 256M)\n"
    "\n"
    "UDP guard (per service too: -o NAME.udp_rate=N, udp_burst, "
    "udp_sources,\nudp_amplification):\n"
    "      --udp-rate N      replies per second per source address "
    "(default\n"
    "                        100; off: no limit)\n"
    "      --udp-burst N     bucket size per source (default 200)\n"
    "      --udp-sources N   source addresses the buckets track at once\n"
    "                        (default 4096; memory stays fixed)\n"
    "      --udp-amplification N\n"
    "                        a reply is at most N times its request in "
    "bytes on\n"
    "                        the wire, IP and UDP headers included "
    "(default 3;\n"
    "                        off: no cap); a longer reply is not sent\n"
    "      --udp-allow-reflector-ports\n"
    "                        answer source ports 0, 7, 13, 17, 19, 37, "
    "53, 123,\n"
    "                        161 and our own (dropped by default)\n"
    "      --udp-allow-special-addrs\n"
    "                        answer broadcast, multicast and unspecified\n"
    "                        sources (dropped by default)\n"
    "\n"
    "Tuning:\n"
    "      --buf-size N      receive buffer size in bytes (default 16384)\n"
    "      --buf-count N     receive buffers per loop (default 1024)\n"
    "      --sq-entries N    io_uring submission queue size (default "
    "256)\n"
    "      --cq-entries N    io_uring completion queue size\n"
    "      --udp-buf-size N  UDP receive buffer size (default 65664: any\n"
    "                        datagram fits; larger ones are dropped)\n"
    "\n"
    "  -v, --verbose         more log lines\n"
    "  -q, --quiet           errors and warnings only\n"
    "  -h, --help            this text\n"
    "      --version         print the version\n"
    "\n"
    "Signals: SIGTERM/SIGINT drain then exit 0 (a second one: exit "
    "now);\n"
    "SIGHUP reloads the configuration; SIGUSR1 logs the counters.\n"
    "\n"
    "Services:\n";

/* The services, then the options each module lists for itself. */
static void usage(FILE *f)
{
	const struct evr_proto *p;

	fputs(usage_text, f);
	for (size_t i = 0; (p = evr_proto_at(i)); i++)
		fprintf(f, "  %-10s %s\n", p->name,
			p->summary ? p->summary : "");
	for (size_t i = 0; (p = evr_proto_at(i)); i++) {
		if (!p->opts)
			continue;
		fprintf(f, "\nOptions of %s (-o %s.KEY=VALUE):\n", p->name,
			p->name);
		for (const struct evr_proto_opt *o = p->opts; o->key; o++)
			fprintf(f, "  %-10s %s\n", o->key, o->help);
	}
	fprintf(f, "\n%s", evd_deploy_usage);
}

int evd_usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	evr_log_err("%s (see evringd --help)", msg);
	return -EINVAL;
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* "30" (seconds), "500ms", "30s", "5m", "1h" */
static int parse_ms(const char *s, uint32_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = { { "", 1000 },
		      { "ms", 1 },
		      { "s", 1000 },
		      { "m", 60000 },
		      { "h", 3600000 } };
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix))
			continue;
		if (v > UINT32_MAX / units[i].ms)
			return -ERANGE;
		*out = (uint32_t)(v * units[i].ms);
		return 0;
	}
	return -EINVAL;
}

/* "65536", "64K", "4M", "1G" (binary units) */
static int parse_bytes(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -EINVAL;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M')
		shift = 20;
	else if (*end == 'G')
		shift = 30;
	else if (*end)
		return -EINVAL;
	if (shift && end[1])
		return -EINVAL;
	if (v > (max >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

/* Set evd_limit_keys[i] in lim from text. */
static int set_limit(struct evr_conn_limits *lim, size_t i, const char *v)
{
	uint32_t *field = (uint32_t *)((char *)lim + evd_limit_keys[i].off);
	uint64_t n;
	long c;

	switch (evd_limit_keys[i].kind) {
	case LIM_MS:
		return parse_ms(v, field);
	case LIM_BYTES:
		if (parse_bytes(v, UINT32_MAX, &n) < 0)
			return -EINVAL;
		*field = (uint32_t)n;
		return 0;
	default:
		if (parse_long(v, 0, INT32_MAX, &c) < 0)
			return -EINVAL;
		*field = (uint32_t)c;
		return 0;
	}
}

static void known_services(char *buf, size_t n)
{
	const struct evr_proto *p;
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; (p = evr_proto_at(i)) && off < n; i++)
		off += (size_t)snprintf(buf + off, n - off, "%s%s",
					i ? ", " : "", p->name);
}

bool evd_proto_can(const struct evr_proto *p, int pr)
{
	return pr == P_UDP ? p->on_datagram != NULL
			   : (p->on_accept || p->on_data);
}

int evd_service_init(struct service *s, const struct evr_proto *proto,
		     const char *name)
{
	s->proto = proto;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->port[P_TCP] = s->port[P_UDP] = -1;
	if (!proto->conf_size)
		return 0;
	s->conf = calloc(1, proto->conf_size);
	if (!s->conf) {
		evr_log_err("service %s: out of memory", name);
		return -ENOMEM;
	}
	if (proto->conf_init && proto->conf_init(s->conf) < 0)
		return evd_usage_error("service %s: cannot initialise", name);
	return 0;
}

/* NAME[/tcp|/udp][:PORT]; without a protocol, every one the module has. A
 * name given again with another protocol adds that protocol. */
static int add_service(struct daemon *d, const char *spec)
{
	char name[64], known[256];
	const char *colon = strchr(spec, ':');
	size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
	const struct evr_proto *proto;
	struct service *s = NULL;
	bool want[2] = { true, true }, given = false;
	long port = -1;
	char *slash;
	int err;

	if (len == 0)
		return evd_usage_error("service \"%.64s\": no name", spec);
	if (len >= sizeof(name))
		return evd_usage_error(
		    "service \"%.32s...\": name too long (at "
		    "most %zu characters)",
		    spec, sizeof(name) - 1);
	memcpy(name, spec, len);
	name[len] = '\0';
	slash = strchr(name, '/');
	if (slash) {
		*slash++ = '\0';
		given = true;
		want[P_TCP] = !strcmp(slash, "tcp");
		want[P_UDP] = !strcmp(slash, "udp");
		if (!want[P_TCP] && !want[P_UDP])
			return evd_usage_error(
			    "service \"%.64s\": protocol \"%.64s\" "
			    "is not supported (tcp, udp)",
			    spec, slash);
	}
	proto = evr_proto_find(name);
	if (!proto) {
		known_services(known, sizeof(known));
		return evd_usage_error("unknown service \"%.64s\" (known: %s)",
				       name, known);
	}
	for (int pr = 0; pr < 2; pr++) {
		if (want[pr] && !evd_proto_can(proto, pr)) {
			if (given)
				return evd_usage_error(
				    "service %s does not serve "
				    "%s",
				    name, evd_proto_names[pr]);
			want[pr] = false;
		}
	}
	if (colon && parse_long(colon + 1, 0, 65535, &port) < 0)
		return evd_usage_error("service \"%.64s\": bad port \"%.64s\"",
				       name, colon + 1);
	for (int i = 0; i < d->nsvc; i++)
		if (!strcmp(d->svc[i].name, name))
			s = &d->svc[i];
	if (s) {
		for (int pr = 0; pr < 2; pr++) {
			if (want[pr] && s->want[pr])
				return evd_usage_error(
				    "service \"%.64s\" given twice", spec);
		}
	} else {
		if (d->nsvc == MAX_SERVICES)
			return evd_usage_error("too many services (at most %d)",
					       MAX_SERVICES);
		s = &d->svc[d->nsvc++];
		err = evd_service_init(s, proto, name);
		if (err)
			return err;
	}
	for (int pr = 0; pr < 2; pr++) {
		if (!want[pr])
			continue;
		s->want[pr] = true;
		s->port[pr] = port;
	}
	return 0;
}

/* Per-service UDP guard settings: -o NAME.udp_rate=N and friends. */
static int set_udp_key(struct evr_udp_guard *g, const char *key, const char *v)
{
	long n;
	bool off = !strcmp(v, "off") || !strcmp(v, "0");

	if (!off && parse_long(v, 1, INT32_MAX, &n) < 0)
		return -EINVAL;
	if (!strcmp(key, "udp_rate"))
		g->rate = off ? EVR_UDP_UNLIMITED : (uint32_t)n;
	else if (!strcmp(key, "udp_burst") && !off)
		g->burst = (uint32_t)n;
	else if (!strcmp(key, "udp_sources") && !off)
		g->sources = (uint32_t)n;
	else if (!strcmp(key, "udp_amplification"))
		g->amplification = off ? EVR_UDP_UNLIMITED : (uint32_t)n;
	else
		return -ENOENT;
	return 0;
}

/* The module's own options: only the keys it lists (evr_proto.opts). */
static const struct evr_proto_opt *module_option(const struct evr_proto *p,
						 const char *key)
{
	for (const struct evr_proto_opt *o = p->opts; o && o->key; o++)
		if (!strcmp(o->key, key))
			return o;
	return NULL;
}

static int set_module_option(struct service *s, const char *key,
			     const char *value, char *why, size_t whylen)
{
	const struct evr_proto_opt *o = module_option(s->proto, key);

	if (!o) {
		char keys[256] = "it has none";
		size_t off = 0;

		for (o = s->proto->opts; o && o->key && off < sizeof(keys); o++)
			off += (size_t)snprintf(
			    keys + off, sizeof(keys) - off, "%s%s",
			    off ? ", " : "options: ", o->key);
		snprintf(why, whylen, "%s has no option \"%.64s\" (%s)",
			 s->proto->name, key, keys);
		return -ENOENT;
	}
	if (s->proto->conf_set(s->conf, key, value) < 0) {
		snprintf(why, whylen, "bad value \"%.64s%s\" (%s: %s)", value,
			 strlen(value) > 64 ? "..." : "", o->key, o->help);
		return -EINVAL;
	}
	return 0;
}

int evd_service_option(struct daemon *d, struct service *s, const char *key,
		       const char *value, char *why, size_t whylen)
{
	int err;

	if (s->prog)
		return evd_prog_option(s->prog, key, value, why, whylen);
	for (size_t i = 0; i < evd_nlimit_keys; i++) {
		if (strcmp(key, evd_limit_keys[i].key))
			continue;
		if (set_limit(&s->lim, i, value) < 0) {
			snprintf(why, whylen, "bad value \"%.64s\"", value);
			return -EINVAL;
		}
		s->lim_set |= 1u << i;
		return 0;
	}
	err = evd_deploy_service_option(d, s, key, value, why, whylen);
	if (err != -ENOENT)
		return err;
	if (!strncmp(key, "udp_", 4)) {
		if (!s->guard_set) {
			s->guard = d->guard;
			s->guard_set = true;
		}
		err = set_udp_key(&s->guard, key, value);
		if (err == -EINVAL) {
			snprintf(why, whylen, "bad value \"%.64s\"", value);
			return -EINVAL;
		}
		if (!err)
			return 0;
	}
	return set_module_option(s, key, value, why, whylen);
}

/* NAME.KEY=VALUE, after all -s; for every service called NAME (those a
 * key is not for, as a UDP one for a TCP key, pass it over: one of them
 * must take it) */
static int set_option(struct daemon *d, const char *spec)
{
	const char *dot = strchr(spec, '.');
	const char *eq = dot ? strchr(dot, '=') : NULL;
	char name[64], key[64], why[512], why_not[512] = "";
	bool found = false, taken = false;
	int err;

	if (!dot || !eq || dot == spec || eq == dot + 1 ||
	    (size_t)(dot - spec) >= sizeof(name) ||
	    (size_t)(eq - dot - 1) >= sizeof(key))
		return evd_usage_error(
		    "option \"%.64s\": expected NAME.KEY=VALUE", spec);
	memcpy(name, spec, (size_t)(dot - spec));
	name[dot - spec] = '\0';
	memcpy(key, dot + 1, (size_t)(eq - dot - 1));
	key[eq - dot - 1] = '\0';
	for (int i = 0; i < d->nsvc; i++) {
		if (strcmp(d->svc[i].name, name))
			continue;
		found = true;
		err = evd_service_option(d, &d->svc[i], key, eq + 1, why,
					 sizeof(why));
		if (err == -EPROTOTYPE) { /* not for this one of them */
			memcpy(why_not, why, sizeof(why_not));
			continue;
		}
		if (err < 0)
			return evd_usage_error("option %s.%.64s: %s", name, key,
					       why);
		taken = true;
	}
	if (!found)
		return evd_usage_error(
		    "option \"%.64s\": service %s is not served", spec, name);
	if (!taken)
		return evd_usage_error("option %s.%.64s: %s", name, key,
				       why_not);
	return 0;
}

void evd_service_limits(const struct daemon *d, const struct service *s,
			struct evr_conn_limits *lim)
{
	*lim = d->lim;
	for (size_t i = 0; i < evd_nlimit_keys; i++)
		if (s->lim_set & (1u << i))
			memcpy((char *)lim + evd_limit_keys[i].off,
			       (const char *)&s->lim + evd_limit_keys[i].off,
			       sizeof(uint32_t));
}

/* The write-queue marks in their order: resume (low) <= pause (high) <=
 * close (max); the library's defaults where none is given. */
static int check_limits(const struct evr_conn_limits *lim, const char *svc)
{
	uint32_t high = lim->wq_high ? lim->wq_high : 256 * 1024;
	uint32_t max = lim->wq_max	   ? lim->wq_max
		       : high > (4u << 20) ? high
					   : 4u << 20;

	if (max < high)
		return evd_usage_error("%s%s--wq-max %u is below --wq-high %u: "
				       "connections would be closed before "
				       "they are paused",
				       svc, *svc ? ": " : "", max, high);
	if (lim->wq_low > high)
		return evd_usage_error("%s%swq_low %u is above wq_high %u", svc,
				       *svc ? ": " : "", lim->wq_low, high);
	return 0;
}

static int resolve_ports(struct daemon *d)
{
	for (int i = 0; i < d->nsvc; i++) {
		struct service *s = &d->svc[i];

		for (int pr = 0; pr < 2; pr++) {
			long port = s->port[pr];

			if (!s->want[pr])
				continue;
			if (port < 0) {
				struct servent *se =
				    getservbyname(s->name, evd_proto_names[pr]);

				if (!se)
					return evd_usage_error(
					    "service %s: no %s port in "
					    "/etc/services; give one with "
					    "-s %s/%s:PORT",
					    s->name, evd_proto_names[pr],
					    s->name, evd_proto_names[pr]);
				port = ntohs((uint16_t)se->s_port);
			}
			if (port != 0)
				port += d->port_offset;
			if (port < 0 || port > 65535)
				return evd_usage_error(
				    "service %s: port %ld with offset %ld "
				    "is out of range",
				    s->name, port - d->port_offset,
				    d->port_offset);
			s->port[pr] = port;
		}
	}
	endservent();
	return 0;
}

enum {
	OPT_PORT_OFFSET = 256,
	OPT_IDLE,
	OPT_SEND_TIMEOUT,
	OPT_DRAIN,
	OPT_MAX_CONNS,
	OPT_MAX_PER_SOURCE,
	OPT_QUEUED_MAX,
	OPT_WQ_HIGH,
	OPT_WQ_MAX,
	OPT_UDP_RATE,
	OPT_UDP_BUF,
	OPT_UDP_BURST,
	OPT_UDP_SOURCES,
	OPT_UDP_AMP,
	OPT_UDP_REFLECT,
	OPT_UDP_SPECIAL,
	OPT_BACKLOG,
	OPT_BACKEND,
	OPT_BUF_SIZE,
	OPT_BUF_COUNT,
	OPT_SQ,
	OPT_CQ,
	OPT_THREADS,
	OPT_CPUS,
	OPT_STEER_CPU,
	OPT_VERSION,
};

static const struct option long_opts[] = {
	{ "service", required_argument, NULL, 's' },
	{ "config", required_argument, NULL, 'f' },
	{ "module", required_argument, NULL, 'm' },
	{ "test", no_argument, NULL, 't' },
	{ "option", required_argument, NULL, 'o' },
	{ "bind", required_argument, NULL, 'b' },
	{ "port-offset", required_argument, NULL, OPT_PORT_OFFSET },
	{ "backlog", required_argument, NULL, OPT_BACKLOG },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE },
	{ "send-timeout", required_argument, NULL, OPT_SEND_TIMEOUT },
	{ "drain-timeout", required_argument, NULL, OPT_DRAIN },
	{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
	{ "max-conns-per-source", required_argument, NULL, OPT_MAX_PER_SOURCE },
	{ "queued-max", required_argument, NULL, OPT_QUEUED_MAX },
	{ "wq-high", required_argument, NULL, OPT_WQ_HIGH },
	{ "wq-max", required_argument, NULL, OPT_WQ_MAX },
	{ "udp-rate", required_argument, NULL, OPT_UDP_RATE },
	{ "udp-buf-size", required_argument, NULL, OPT_UDP_BUF },
	{ "udp-burst", required_argument, NULL, OPT_UDP_BURST },
	{ "udp-sources", required_argument, NULL, OPT_UDP_SOURCES },
	{ "udp-amplification", required_argument, NULL, OPT_UDP_AMP },
	{ "udp-allow-reflector-ports", no_argument, NULL, OPT_UDP_REFLECT },
	{ "udp-allow-special-addrs", no_argument, NULL, OPT_UDP_SPECIAL },
	{ "backend", required_argument, NULL, OPT_BACKEND },
	{ "buf-size", required_argument, NULL, OPT_BUF_SIZE },
	{ "buf-count", required_argument, NULL, OPT_BUF_COUNT },
	{ "sq-entries", required_argument, NULL, OPT_SQ },
	{ "cq-entries", required_argument, NULL, OPT_CQ },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "steer-cpu", no_argument, NULL, OPT_STEER_CPU },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static int parse_u32(const char *opt, const char *arg, uint32_t *out)
{
	long v;

	if (parse_long(arg, 1, INT32_MAX, &v) < 0)
		return evd_usage_error(
		    "%s \"%.64s\": expected a positive number", opt, arg);
	*out = (uint32_t)v;
	return 0;
}

/* "0-3,8,10-11": CPUs in order, at most EVR_GROUP_MAX. */
static int parse_cpus(struct daemon *d, const char *arg)
{
	char *copy = strdup(arg), *save = NULL;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	free(d->cpus);
	d->cpus = calloc(EVR_GROUP_MAX, sizeof(*d->cpus));
	d->ncpus = 0;
	for (char *t = strtok_r(copy, ",", &save); t && d->cpus && !err;
	     t = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(t, '-');
		long lo, hi;

		if (dash)
			*dash = '\0';
		if (parse_long(t, 0, CPU_SETSIZE - 1, &lo) < 0 ||
		    parse_long(dash ? dash + 1 : t, lo, CPU_SETSIZE - 1, &hi) <
			0) {
			err = -EINVAL;
			break;
		}
		for (long c = lo; c <= hi; c++) {
			if (d->ncpus == EVR_GROUP_MAX) {
				err = -EINVAL;
				break;
			}
			d->cpus[d->ncpus++] = (int)c;
		}
	}
	free(copy);
	if (!d->cpus)
		return -ENOMEM;
	if (err || !d->ncpus)
		return evd_usage_error("--cpus \"%.64s\": expected CPU numbers "
				       "and ranges (0-3,8)",
				       arg);
	return 0;
}

static int limit_opt(struct daemon *d, const char *opt, const char *arg,
		     const char *key)
{
	for (size_t i = 0; i < evd_nlimit_keys; i++)
		if (!strcmp(evd_limit_keys[i].key, key) &&
		    set_limit(&d->lim, i, arg) == 0)
			return 0;
	return evd_usage_error("%s \"%.64s\": bad value", opt, arg);
}

void evd_defaults(struct daemon *d)
{
	evr_loop_opts_init(&d->lo);
	d->lim.idle_timeout_ms = DEFAULT_IDLE_MS;
	d->lim.send_timeout_ms = DEFAULT_SEND_MS;
	d->drain_ms = DEFAULT_DRAIN_MS;
}

static int load_module(const char *path)
{
	char why[512];

	if (evd_module_load(path, why, sizeof(why)) < 0) {
		evr_log_err("--module %.200s: %s", path, why);
		return -EINVAL;
	}
	return 0;
}

/* Our options, then those of deploy_opts.c. */
static struct option all_opts[sizeof(long_opts) / sizeof(long_opts[0]) + 32];

static const struct option *options_table(void)
{
	size_t n = 0;

	for (const struct option *o = long_opts; o->name; o++)
		all_opts[n++] = *o;
	for (const struct option *o = evd_deploy_opts;
	     o->name && n < sizeof(all_opts) / sizeof(all_opts[0]) - 1; o++)
		all_opts[n++] = *o;
	return all_opts;
}

int evd_parse_args(struct daemon *d, int argc, char **argv)
{
	const char *opts[MAX_SERVICES * 4], *specs[MAX_SERVICES * 2];
	const struct option *table = options_table();
	int nopts = 0, nspecs = 0, verbose = 0, c, err = 0;

	opterr = 0; /* our own one-line messages */
	evd_deploy_init(d);

	while ((c = getopt_long(argc, argv, "s:o:b:f:m:tvqh", table, NULL)) !=
	       -1) {
		switch (c) {
		case 's':
			/* after the loop: --module may come later */
			if (nspecs == (int)(sizeof(specs) / sizeof(specs[0])))
				return evd_usage_error("too many services");
			specs[nspecs++] = optarg;
			break;
		case 'm':
			err = load_module(optarg);
			break;
		case 'f':
			d->conf_path = optarg;
			break;
		case 't':
			d->check_only = true;
			break;
		case 'o':
			if (nopts == (int)(sizeof(opts) / sizeof(opts[0])))
				return evd_usage_error("too many options");
			opts[nopts++] = optarg;
			break;
		case 'b': {
			struct sockaddr_storage ss;
			socklen_t len;

			if (d->nbind == MAX_BINDS)
				return evd_usage_error(
				    "too many bind addresses");
			/* before the loop exists: a usage error is one line */
			if (evr_addr_parse(optarg, 0, &ss, &len) < 0)
				return evd_usage_error(
				    "bind address \"%.64s\": not a numeric "
				    "IPv4 or IPv6 address",
				    optarg);
			d->bind[d->nbind++] = optarg;
			break;
		}
		case OPT_PORT_OFFSET:
			if (parse_long(optarg, -65535, 65535, &d->port_offset))
				return evd_usage_error(
				    "--port-offset \"%.64s\": "
				    "expected -65535..65535",
				    optarg);
			break;
		case OPT_IDLE:
			err = limit_opt(d, "--idle-timeout", optarg,
					"idle_timeout");
			break;
		case OPT_SEND_TIMEOUT:
			err = limit_opt(d, "--send-timeout", optarg,
					"send_timeout");
			break;
		case OPT_WQ_HIGH:
			err = limit_opt(d, "--wq-high", optarg, "wq_high");
			break;
		case OPT_WQ_MAX:
			err = limit_opt(d, "--wq-max", optarg, "wq_max");
			break;
		case OPT_UDP_RATE:
		case OPT_UDP_BURST:
		case OPT_UDP_SOURCES:
		case OPT_UDP_AMP:
			if (set_udp_key(&d->guard,
					c == OPT_UDP_RATE    ? "udp_rate"
					: c == OPT_UDP_BURST ? "udp_burst"
					: c == OPT_UDP_SOURCES
					    ? "udp_sources"
					    : "udp_amplification",
					optarg) < 0)
				return evd_usage_error(
				    "%s \"%.64s\": expected a "
				    "positive number or off",
				    argv[optind - 1], optarg);
			break;
		case OPT_UDP_BUF:
			err = parse_u32("--udp-buf-size", optarg,
					&d->lo.udp_buf_size);
			break;
		case OPT_UDP_REFLECT:
			d->guard.allow_reflector_ports = true;
			break;
		case OPT_UDP_SPECIAL:
			d->guard.allow_special_addrs = true;
			break;
		case OPT_DRAIN:
			if (parse_ms(optarg, &d->drain_ms) < 0)
				return evd_usage_error(
				    "--drain-timeout \"%.64s\": "
				    "expected a duration (10, "
				    "10s, 500ms, 1m)",
				    optarg);
			break;
		case OPT_MAX_CONNS:
			err =
			    parse_u32("--max-conns", optarg, &d->lo.max_conns);
			break;
		case OPT_MAX_PER_SOURCE:
			err = parse_u32("--max-conns-per-source", optarg,
					&d->lo.max_conns_per_source);
			break;
		case OPT_QUEUED_MAX:
			if (parse_bytes(optarg, UINT64_MAX >> 1,
					&d->lo.queued_max) < 0 ||
			    !d->lo.queued_max)
				return evd_usage_error(
				    "--queued-max \"%.64s\": "
				    "expected a size (256M)",
				    optarg);
			break;
		case OPT_BACKLOG:
			if (parse_long(optarg, 1, INT32_MAX, &d->backlog))
				return evd_usage_error(
				    "--backlog \"%.64s\": expected "
				    "a positive number",
				    optarg);
			break;
		case OPT_BACKEND:
			d->lo.backend = optarg;
			break;
		case OPT_BUF_SIZE:
			err = parse_u32("--buf-size", optarg, &d->lo.buf_size);
			break;
		case OPT_BUF_COUNT:
			err =
			    parse_u32("--buf-count", optarg, &d->lo.buf_count);
			break;
		case OPT_SQ:
			err = parse_u32("--sq-entries", optarg,
					&d->lo.sq_entries);
			break;
		case OPT_CQ:
			err = parse_u32("--cq-entries", optarg,
					&d->lo.cq_entries);
			break;
		case OPT_THREADS:
			err = parse_u32("--threads", optarg, &d->threads);
			if (!err && d->threads > EVR_GROUP_MAX)
				err =
				    evd_usage_error("--threads %u: at most %d",
						    d->threads, EVR_GROUP_MAX);
			break;
		case OPT_CPUS:
			err = parse_cpus(d, optarg);
			break;
		case OPT_STEER_CPU:
			d->steer_cpu = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'q':
			verbose = -1;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case OPT_VERSION:
			printf("evringd %s\n", EVR_VERSION);
			return 1;
		default:
			if (c >= EVD_OPT_DEPLOY) {
				err = evd_deploy_option(d, c, optarg);
				break;
			}
			if (optopt)
				return evd_usage_error(
				    "unknown option \"-%c\" or "
				    "missing argument",
				    optopt);
			return evd_usage_error("unknown option \"%.64s\"",
					       argv[optind - 1]);
		}
		if (err)
			return err;
	}
	if (optind < argc)
		return evd_usage_error("unexpected argument \"%.64s\"",
				       argv[optind]);
	if (d->steer_cpu && !d->cpus)
		return evd_usage_error("--steer-cpu needs --cpus");
	if (verbose < 0)
		evr_log_set_level(EVR_LOG_WARN);
	else if (verbose > 0)
		evr_log_set_level(EVR_LOG_DEBUG);
	for (int i = 0; i < nspecs; i++) {
		err = add_service(d, specs[i]);
		if (err)
			return err;
	}
	if (d->conf_path) {
		err = evd_config_apply(d);
		if (err)
			return err;
	}
	if (d->nsvc == 0)
		return evd_usage_error(
		    "no service given (for example -s echo -s "
		    "daytime, or -f FILE)");
	for (int i = 0; i < nopts; i++) {
		err = set_option(d, opts[i]);
		if (err)
			return err;
	}
	err = check_limits(&d->lim, "");
	for (int i = 0; !err && i < d->nsvc; i++) {
		struct evr_conn_limits lim;

		evd_service_limits(d, &d->svc[i], &lim);
		err = check_limits(&lim, d->svc[i].name);
	}
	if (!err)
		err = resolve_ports(d);
	for (int i = 0; i < d->nsvc; i++)
		d->svc[i].gen = d->gen;
	if (err || !d->check_only)
		return err;
	evr_log_info("%s: configuration ok: %d services",
		     d->conf_path ? d->conf_path : "command line", d->nsvc);
	return 1;
}

int evd_parse_ms(const char *s, uint32_t *out)
{
	return parse_ms(s, out);
}
