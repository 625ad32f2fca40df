/* SPDX-License-Identifier: MIT */
/*
 * main.c - evringd, a modern inetd on evring.
 *
 *	evringd -s echo -s daytime [--port-offset N] [-b ADDR]...
 *
 * Each -s names a built-in service; its port comes from /etc/services
 * (getservbyname) unless given. Every service listens on every bind address
 * (default: all IPv4 and all IPv6 addresses). One line per listening socket
 * goes to stdout ("listen SERVICE tcp ADDRESS:PORT BACKEND"); log lines go
 * to stderr. SIGINT and SIGTERM drain: listeners close, open connections
 * get --drain-timeout to finish, and it exits 0 (a second signal stops at
 * once). SIGUSR1 logs the loop's counters. SIGHUP and SIGUSR2 are logged
 * and otherwise ignored.
 *
 * Exit status: 0 after a clean stop, 1 for a run-time error (a port in use,
 * a privileged port, no backend), 2 for a usage error. Only main() turns
 * errors into them (evringd.h).
 */
#include "evringd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The first SIGINT/SIGTERM drains, the second stops at once. */
static void on_stop(struct evr_loop *l, int signo, void *arg)
{
	struct daemon *d = arg;
	struct evr_stats st;

	evr_loop_stats(l, &st);
	evd_deploy_stopping(d, !d->stop_signals && d->drain_ms);
	if (d->stop_signals++ || !d->drain_ms) {
		evr_log_info("%s: stopping now, closing %llu connections",
			     strsignal(signo),
			     (unsigned long long)st.conns_open);
		evr_loop_stop(l);
		return;
	}
	evr_log_info("%s: draining: no new connections, %llu open ones get "
		     "up to %u ms to finish (signal again to stop now)",
		     strsignal(signo), (unsigned long long)st.conns_open,
		     d->drain_ms);
	evr_loop_drain(l, d->drain_ms);
}

/* One line of every counter, name=value, in the order of EVR_STATS. */
static void on_stats(struct evr_loop *l, int signo, void *arg)
{
	struct evr_stats st;
	char line[2048];
	size_t off = 0;

	(void)signo, (void)arg;
	evr_loop_stats(l, &st);
#define STAT_FIELD(name, type, help)                                           \
	if (off < sizeof(line))                                                \
		off += (size_t)snprintf(line + off, sizeof(line) - off,        \
					"%s" #name "=%llu", off ? " " : "",    \
					(unsigned long long)st.name);
	EVR_STATS(STAT_FIELD)
#undef STAT_FIELD
	evr_log_info("stats: %s", line);
}

/* SIGHUP (reload, for inetd, xinetd and nginx) and SIGUSR2 must not kill
 * a server that does not use them yet. */
static void on_ignored(struct evr_loop *l, int signo, void *arg)
{
	(void)l, (void)arg;
	evr_log_info("%s: ignored (evringd does not reload its "
		     "configuration)",
		     strsignal(signo));
}

/* A server of many connections wants every descriptor it may have. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int signals_start(struct daemon *d)
{
	static const struct {
		int signo;
		evr_signal_cb cb;
	} sigs[] = {
		{ SIGINT, on_stop },	 { SIGTERM, on_stop },
		{ SIGUSR1, on_stats },	 { SIGHUP, on_ignored },
		{ SIGUSR2, on_ignored },
	};

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		int err = evr_signal_add(d->loop, sigs[i].signo, sigs[i].cb, d);

		if (err < 0) {
			evr_log_err("signal %s: %s", strsignal(sigs[i].signo),
				    strerror(-err));
			return err;
		}
	}
	return 0;
}

static void daemon_fini(struct daemon *d)
{
	evr_loop_free(d->loop);
	evd_log_stop();
	free(d->lines);
	for (int i = 0; i < d->nsvc; i++) {
		struct service *s = &d->svc[i];

		if (s->conf && s->proto->conf_fini)
			s->proto->conf_fini(s->conf);
		free(s->conf);
	}
}

int main(int argc, char **argv)
{
	static struct daemon d;
	int err;

	evr_log_set_ident("evringd");
	signal(SIGPIPE, SIG_IGN);
	evr_loop_opts_init(&d.lo);
	d.lim.idle_timeout_ms = DEFAULT_IDLE_MS;
	d.lim.send_timeout_ms = DEFAULT_SEND_MS;
	d.drain_ms = DEFAULT_DRAIN_MS;
	err = evd_parse_args(&d, argc, argv);
	if (err) {
		daemon_fini(&d);
		return err > 0		? 0
		       : err == -EINVAL ? EVRINGD_EXIT_USAGE
					: EVRINGD_EXIT_RUNTIME;
	}
	evd_log_start(&d);
	err = evd_deploy_prepare(&d);
	if (err) {
		daemon_fini(&d);
		return err == -EINVAL ? EVRINGD_EXIT_USAGE
				      : EVRINGD_EXIT_RUNTIME;
	}
	raise_nofile();
	err = evr_loop_new(&d.loop, &d.lo);
	if (err < 0) {
		if (err != -ENOTSUP && err != -EINVAL)
			evr_log_err("cannot create the event loop: %s",
				    strerror(-err));
		daemon_fini(&d);
		return err == -EINVAL ? EVRINGD_EXIT_USAGE
				      : EVRINGD_EXIT_RUNTIME;
	}
	err = signals_start(&d);
	if (!err)
		err = evd_start_listeners(&d);
	if (!err)
		err = evd_deploy_ready(&d);
	if (err) {
		daemon_fini(&d);
		return err == -EINVAL ? EVRINGD_EXIT_USAGE
				      : EVRINGD_EXIT_RUNTIME;
	}
	evr_log_info("evringd %s: %d listening sockets, backend %s, pid %d",
		     EVR_VERSION, d.nls, evr_loop_backend(d.loop),
		     (int)getpid());
	evr_log_info("features %s", evr_loop_features(d.loop));
	err = evr_loop_run(d.loop);
	daemon_fini(&d);
	if (err < 0) {
		evr_log_err("event loop: %s", strerror(-err));
		return EVRINGD_EXIT_RUNTIME;
	}
	return 0;
}
