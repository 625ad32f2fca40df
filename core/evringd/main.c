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
 * once). SIGHUP reloads the configuration (reload.c). SIGUSR1 logs the
 * loop's counters. SIGUSR2 is logged and otherwise ignored.
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
#include <fcntl.h>
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
	/* the loop closes its listeners; the sockets of wait services
	 * are ours (their programs run on) */
	for (int i = 0; i < d->nsocks; i++)
		if (d->socks[i].w)
			evd_sock_close(&d->socks[i]);
	evr_loop_drain(l, d->drain_ms);
}

static void on_reload(struct evr_loop *l, int signo, void *arg)
{
	(void)l, (void)signo;
	evd_reload(arg);
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

/* SIGUSR2 must not kill a server that does not use it yet. */
static void on_ignored(struct evr_loop *l, int signo, void *arg)
{
	(void)l, (void)arg;
	evr_log_info("%s: ignored", strsignal(signo));
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
		{ SIGUSR1, on_stats },	 { SIGHUP, on_reload },
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

/* The configuration goes with the last of what serves it: the loop's
 * sockets and connections, freed with the loop. */
static void daemon_fini(struct daemon *d)
{
	evd_gen_retire(d->gen);
	evr_loop_free(d->loop);
	evd_spawner_fini();
	evd_log_stop();
	free(d->lines);
	free(d->socks);
}

/* A daemon started with 0, 1 or 2 closed would accept sockets there, and
 * hand them to programs as their stdin: keep them taken (inetd does). */
static void std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			break;
}

int main(int argc, char **argv)
{
	static struct daemon d;
	int err;

	evr_log_set_ident("evringd");
	std_fds();
	signal(SIGPIPE, SIG_IGN);
	evd_defaults(&d);
	d.gen = evd_gen_new();
	if (!d.gen) {
		evr_log_err("out of memory");
		return EVRINGD_EXIT_RUNTIME;
	}
	d.svc = d.gen->svc;
	d.argc = argc;
	d.argv = argv;
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
