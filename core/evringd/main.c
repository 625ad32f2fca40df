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
 * to stderr. It runs --threads loops (default: one per CPU it may use),
 * each serving every service on a socket of its own (listeners.c).
 * Signals are handled on loop 0; stop, drain and reload reach the others
 * through their mailboxes. SIGINT and SIGTERM drain: listeners close,
 * open connections get --drain-timeout to finish, and it exits 0 once
 * every loop has drained (a second signal stops at once). SIGHUP reloads
 * the configuration (reload.c). SIGUSR1 logs the counters of every loop,
 * summed. SIGUSR2 is logged and otherwise ignored.
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

/* The first SIGINT/SIGTERM drains, the second stops at once; every loop,
 * once the open connections are counted. */
struct stop_req {
	struct daemon *d;
	int signo;
	bool now;
};

static void stop_counted(const struct evr_stats *per_loop, unsigned n,
			 const struct evr_stats *total, void *arg)
{
	struct stop_req *r = arg;
	unsigned long long open = total ? total->conns_open : 0;

	(void)per_loop, (void)n;
	if (r->now) {
		evr_log_info("%s: stopping now, closing %llu connections",
			     strsignal(r->signo), open);
		evr_group_stop(r->d->loops);
		return;
	}
	evr_log_info("%s: draining: no new connections, %llu open ones get "
		     "up to %u ms to finish (signal again to stop now)",
		     strsignal(r->signo), open, r->d->drain_ms);
	evr_group_drain(r->d->loops, r->d->drain_ms);
}

static void on_stop(struct evr_loop *l, int signo, void *arg)
{
	static struct stop_req req[2]; /* the drain, then the stop */
	struct daemon *d = arg;
	struct stop_req *r = &req[d->stop_signals ? 1 : 0];

	r->d = d;
	r->signo = signo;
	evd_deploy_stopping(d, !d->stop_signals && d->drain_ms);
	r->now = d->stop_signals++ || !d->drain_ms;
	if (!r->now) {
		/* the loops close their listeners; the sockets of wait
		 * services are ours (their programs run on) */
		for (int i = 0; i < d->nsocks; i++)
			if (d->socks[i].w)
				evd_sock_close(&d->socks[i]);
	}
	if (d->stop_signals > 2)
		evr_group_stop(d->loops);
	else if (evr_group_stats(d->loops, l, stop_counted, r) < 0)
		stop_counted(NULL, 0, NULL, r);
}

static void on_reload(struct evr_loop *l, int signo, void *arg)
{
	(void)l, (void)signo;
	evd_reload(arg);
}

static void on_stats(struct evr_loop *l, int signo, void *arg)
{
	(void)signo;
	evd_log_stats(arg, l);
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

/* Each loop's start, on its own thread, in index order: loop 0 takes the
 * signals, binds, and plans what the others bind. */
static int setup(struct evr_loop *l, unsigned index, void *arg)
{
	struct daemon *d = arg;
	int err;

	if (index > 0)
		return evd_plan_apply(d, l, d->plan);
	d->loop = l;
	err = evd_loopsocks_init(d, evr_group_size(evr_loop_group(l)));
	if (!err)
		err = signals_start(d);
	if (!err)
		err = evd_start_listeners(d);
	if (!err && d->nothers > 1 && !(d->plan = evd_plan_new(d)))
		err = -ENOMEM;
	return err;
}

/* Loop 0's end, before it is freed: the tcpmux connectors are its, and
 * go with the current configuration; what else serves it (the sockets
 * and connections of every loop) lets go as the loops are freed. */
static void fini(struct evr_loop *l, unsigned index, void *arg)
{
	struct daemon *d = arg;

	(void)l;
	if (index == 0) {
		evd_gen_retire(d->gen);
		d->gen = NULL;
	}
}

static int group_start(struct daemon *d)
{
	struct evr_group_opts go;
	int err;

	evr_group_opts_init(&go);
	go.loop = d->lo;
	go.threads = d->threads;
	go.cpus = d->cpus;
	go.ncpus = d->ncpus;
	go.steer_cpu = d->steer_cpu;
	go.setup = setup;
	go.fini = fini;
	go.arg = d;
	err = evr_group_start(&d->loops, &go);
	evd_plan_put(d->plan);
	d->plan = NULL;
	return err;
}

static void daemon_fini(struct daemon *d)
{
	evr_group_free(d->loops);
	d->loops = NULL;
	if (d->gen)
		evd_gen_retire(d->gen);
	evd_spawner_fini();
	evd_log_stop();
	evd_loopsocks_free(d);
	free(d->cpus);
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
	err = group_start(&d);
	if (!err) {
		evd_print_listeners(&d);
		err = evd_deploy_ready(&d);
	}
	if (err) {
		daemon_fini(&d);
		return err == -EINVAL ? EVRINGD_EXIT_USAGE
				      : EVRINGD_EXIT_RUNTIME;
	}
	evr_log_info("evringd %s: %d listening sockets, backend %s, %u "
		     "threads, pid %d",
		     EVR_VERSION, d.nls, evr_loop_backend(d.loop),
		     evr_group_size(d.loops), (int)getpid());
	evr_log_info("features %s", evr_loop_features(d.loop));
	err = evr_group_run(d.loops);
	daemon_fini(&d);
	if (err < 0) {
		evr_log_err("event loop: %s", strerror(-err));
		return EVRINGD_EXIT_RUNTIME;
	}
	return 0;
}
