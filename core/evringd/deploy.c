/* SPDX-License-Identifier: MIT */
/*
 * deploy.c - evringd as a system service: the options it takes for that
 * (where log lines go, the connection log, the user to run as) and the
 * steps main() takes around binding.
 *
 * The options have their own getopt_long table (values from
 * EVD_OPT_DEPLOY up) that options.c appends to its own, their own lines of
 * help, and the keys every service takes with -o and in the
 * configuration file's "#@" lines (log_conns, proxy, proxy_timeout,
 * defer_accept).
 * Errors of options are usage errors, logged here with the option they
 * are about (evd_usage_error); errors of keys go back with the reason, as
 * evd_service_option() wants.
 *
 * Steps: evd_deploy_prepare() before anything is bound (read what systemd
 * passed, look the user up), evd_deploy_ready() once every socket is open
 * (drop privileges, then tell systemd), evd_deploy_stopping() when a
 * signal stops evringd, evd_deploy_reloading() and evd_deploy_reloaded()
 * around a reload.
 */
#include "evringd.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

enum {
	OPT_LOG_FORMAT = EVD_OPT_DEPLOY,
	OPT_SYSLOG,
	OPT_LOG_CONNS,
	OPT_USER,
	OPT_GROUP,
};

const struct option evd_deploy_opts[] = {
	{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
	{ "syslog", optional_argument, NULL, OPT_SYSLOG },
	{ "log-conns", no_argument, NULL, OPT_LOG_CONNS },
	{ "user", required_argument, NULL, OPT_USER },
	{ "group", required_argument, NULL, OPT_GROUP },
	{ NULL, 0, NULL, 0 },
};

const char evd_deploy_usage[] =
    "Logging:\n"
    "      --log-format F    auto (default: journal under systemd, else\n"
    "                        rfc3339), journal (\"<N>\" priorities), "
    "rfc3339\n"
    "                        (timestamped lines) or plain\n"
    "      --syslog[=FACILITY]\n"
    "                        log through syslog(3) instead of stderr\n"
    "                        (daemon, user, local0..local7; default "
    "daemon)\n"
    "      --log-conns       one line per connection at its end: peer,\n"
    "                        service, duration, bytes in and out, how it\n"
    "                        ended (at most 100 per second); per service:\n"
    "                        -o NAME.log_conns=on|off\n"
    "\n"
    "Behind a load balancer (per service, TCP):\n"
    "  -o NAME.proxy=v1|v2   every connection starts with a PROXY protocol\n"
    "                        header of that version (haproxy's send-proxy,\n"
    "                        send-proxy-v2), which names the client: limits\n"
    "                        and logs see it. Never guessed: without the\n"
    "                        header a connection is closed\n"
    "  -o NAME.proxy_timeout=T\n"
    "                        the header's deadline (default 5s)\n"
    "\n"
    "Client speaks first (per service, TCP):\n"
    "  -o NAME.defer_accept=T|off\n"
    "                        accept a connection once its first bytes are\n"
    "                        in, or after about T (TCP_DEFER_ACCEPT; whole\n"
    "                        seconds, at most 1h): for echo, http, tcpmux,\n"
    "                        never for daytime, chargen or time\n"
    "\n"
    "Privileges:\n"
    "      --user USER       started as root: once every socket is bound,\n"
    "                        run as USER (its groups, its uid; no\n"
    "                        capability is kept)\n"
    "      --group GROUP     with --user: run with this group instead of\n"
    "                        USER's\n"
    "\n";

void evd_deploy_init(struct daemon *d)
{
	d->log_format = EVD_LOG_AUTO;
	d->syslog_facility = -1;
}

int evd_deploy_option(struct daemon *d, int opt, const char *arg)
{
	enum evd_log_format f;

	switch (opt) {
	case OPT_LOG_FORMAT:
		if (evd_log_parse_format(arg, &f) < 0)
			return evd_usage_error("--log-format \"%s\": expected "
					       "auto, journal, rfc3339 or "
					       "plain",
					       arg);
		d->log_format = (int)f;
		return 0;
	case OPT_SYSLOG:
		if (evd_log_parse_facility(arg ? arg : "daemon",
					   &d->syslog_facility) < 0)
			return evd_usage_error("--syslog=\"%s\": expected "
					       "daemon, user or local0..local7",
					       arg);
		return 0;
	case OPT_LOG_CONNS:
		d->log_conns = true;
		return 0;
	case OPT_USER:
		d->user = arg;
		return 0;
	case OPT_GROUP:
		d->group = arg;
		return 0;
	}
	return evd_usage_error("unknown option");
}

static int parse_onoff(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "1") || !strcmp(v, "yes"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "no"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

#define DEFER_ACCEPT_MAX_S 3600

/* A key of TCP listening sockets on a service without one: -EPROTOTYPE,
 * which -o NAME.KEY passes over while another service called NAME (an
 * inetd.conf's "echo stream tcp" beside its "echo dgram udp") takes it. */
static int tcp_listener_only(const struct service *s, const char *what,
			     char *why, size_t whylen)
{
	if (s->mux)
		snprintf(why, whylen,
			 "%s is reached through tcpmux, with no socket of its "
			 "own (%s)",
			 s->name, what);
	else if (!s->want[P_TCP])
		snprintf(why, whylen, "%s is not served over TCP (%s)", s->name,
			 what);
	else
		return 0;
	return -EPROTOTYPE;
}

/* off, 0, or a duration rounded up to whole seconds (the kernel's unit) */
static int defer_accept_option(struct service *s, const char *value, char *why,
			       size_t whylen)
{
	uint32_t ms = 0;

	if (strcmp(value, "off") &&
	    (evd_parse_ms(value, &ms) < 0 || ms > DEFER_ACCEPT_MAX_S * 1000u)) {
		snprintf(why, whylen,
			 "bad value \"%.64s\" (expected off or a duration up "
			 "to 1h: 5s, 1m)",
			 value);
		return -EINVAL;
	}
	if (ms &&
	    tcp_listener_only(s, "a deferred accept is TCP's", why, whylen) < 0)
		return -EPROTOTYPE;
	s->defer_accept_s = (ms + 999) / 1000;
	return 0;
}

int evd_deploy_service_option(struct daemon *d, struct service *s,
			      const char *key, const char *value, char *why,
			      size_t whylen)
{
	bool on;

	(void)d;
	if (!strcmp(key, "log_conns")) {
		if (parse_onoff(value, &on) < 0) {
			snprintf(why, whylen,
				 "bad value \"%.64s\" (expected on or off)",
				 value);
			return -EINVAL;
		}
		s->log_conns = on ? 1 : 2;
		return 0;
	}
	if (!strcmp(key, "proxy")) {
		enum evr_proxy v;

		if (!strcmp(value, "v1"))
			v = EVR_PROXY_V1;
		else if (!strcmp(value, "v2"))
			v = EVR_PROXY_V2;
		else if (!strcmp(value, "off"))
			v = EVR_PROXY_NONE;
		else {
			snprintf(why, whylen,
				 "bad value \"%.64s\" (expected v1, v2 or "
				 "off)",
				 value);
			return -EINVAL;
		}
		/* set only where it applies: -o passes over the others */
		if (v && tcp_listener_only(s, "the PROXY protocol is for TCP",
					   why, whylen) < 0)
			return -EPROTOTYPE;
		s->proxy = (uint8_t)v;
		return 0;
	}
	if (!strcmp(key, "defer_accept"))
		return defer_accept_option(s, value, why, whylen);
	if (!strcmp(key, "proxy_timeout")) {
		if (evd_parse_ms(value, &s->proxy_timeout_ms) < 0 ||
		    !s->proxy_timeout_ms) {
			snprintf(why, whylen,
				 "bad value \"%.64s\" (expected a duration: "
				 "5s, 500ms)",
				 value);
			return -EINVAL;
		}
		return 0;
	}
	return -ENOENT;
}

int evd_deploy_prepare(struct daemon *d)
{
	int err;

	evd_notify_init();
	err = evd_activation_init(d);
	if (err)
		return err;
	return evd_privs_resolve(d);
}

int evd_deploy_ready(struct daemon *d)
{
	int err = evd_privs_drop(d);

	if (err)
		return err;
	evd_notify_ready(d);
	return 0;
}

void evd_deploy_stopping(struct daemon *d, bool drain)
{
	evd_notify_stopping(d, drain);
}

void evd_deploy_reloading(struct daemon *d)
{
	evd_notify_reloading(d);
}

void evd_deploy_reloaded(struct daemon *d)
{
	evd_notify_ready(d);
}
