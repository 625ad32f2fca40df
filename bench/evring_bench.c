/* SPDX-License-Identifier: MIT */
/*
 * evring_bench.c - a load generator built on evring's own core.
 *
 *	evring-bench echo    [-c CONNS] [-s SIZE] [-p DEPTH] [-d TIME] HOST:PORT
 *	evring-bench rate    -r MSGS_PER_SEC [-c CONNS] [-s SIZE] HOST:PORT
 *	evring-bench connect [-c CONCURRENCY] [--request TEXT]
 *			     [--close-after BYTES] HOST:PORT
 *	evring-bench udp     [-c IN_FLIGHT] [-s SIZE] HOST:PORT
 *	evring-bench idle    -c CONNS [-d TIME] HOST:PORT
 *
 * echo: CONNS connections each keep DEPTH messages of SIZE bytes in flight
 * (closed loop); every echoed byte is checked against what was sent.
 * rate: open loop at a fixed total rate; latency is measured from the time
 * each message was due to be sent, not from when it was sent, so a stalled
 * server cannot hide its stall (coordinated omission, corrected as wrk2
 * does). connect: connection churn (connect, optional request, read to
 * EOF or to --close-after bytes, close), in connections per second. udp:
 * IN_FLIGHT datagrams, each sent again when its answer is late. idle: open
 * CONNS connections and hold them; with --server-pid, the server's memory
 * per connection held.
 *
 * The generator must not be the bottleneck it measures: messages are sent
 * as slices of one shared pattern buffer (no copy), many connections'
 * sends leave in one ring submission, receives are multishot into a pool
 * sized to the load. Results: operations/s, MB/s, latency percentiles
 * from a log-linear histogram with mean and standard deviation, errors by
 * kind, client CPU per operation (getrusage) and, with --server-pid, the
 * server's CPU per operation (from /proc/PID/task/ * /schedstat, in
 * nanoseconds). A progress line per second goes to a terminal; --json
 * prints one JSON object instead of the table.
 *
 * Targets may be names (localhost:7); they must be on loopback unless
 * --allow-remote. Every run is bounded (warm-up plus duration, at most an
 * hour). Exit status: 0 when something succeeded; 1 when nothing did (the
 * target refused, every message or connection failed) or the run could
 * not start; 2 for a bad command line.
 */
#include "bench.h"
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const mode_names[] = {
	[M_ECHO] = "echo", [M_RATE] = "rate", [M_CONNECT] = "connect",
	[M_IDLE] = "idle", [M_UDP] = "udp",
};

const char *const err_names[E__COUNT] = {
	[E_REFUSED] = "refused", [E_RESET] = "reset",
	[E_TIMEOUT] = "timeout", [E_MISMATCH] = "mismatch",
	[E_SHORT] = "short",	 [E_OVERLOAD] = "overload",
	[E_LOST] = "lost",	 [E_OTHER] = "other",
};

struct opts o = {
	.conns = 50,
	.size = 64,
	.depth = 1,
	.duration = 10,
	.warmup = 1,
	.sources = 1,
};
struct run R;

static void vdie(int status, const char *fmt, va_list ap)
{
	fprintf(stderr, "evring-bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	exit(status);
}

void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdie(1, fmt, ap);
	va_end(ap);
}

/* A bad command line: exit 2. */
static void bad_usage(const char *fmt, ...) EVR_PRINTF(1, 2);
static void bad_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdie(2, fmt, ap);
	va_end(ap);
}

/* ---- phases ---- */

/* End the run: the report, the exit status, the loop stopped. */
static void finish(void)
{
	uint64_t errs = 0;

	R.t_end = now_ns();
	if (R.phase == P_WARMUP)
		R.t_measure = R.t_end;
	R.phase = P_DONE;
	if (R.progress_shown)
		fputc('\n', stderr); /* the report on lines of its own */
	R.status = results_report() ? 0 : 1;
	for (int i = 0; i < E__COUNT; i++)
		errs += R.errors[i];
	if (R.status)
		fprintf(stderr,
			"evring-bench: nothing succeeded against %s: %s\n",
			o.target,
			errs ? "see the errors"
			     : "nothing completed in the measured time");
	evr_loop_stop(R.loop);
}

static void measure_start(uint64_t now)
{
	R.phase = P_MEASURE;
	R.t_measure = R.sec_mark = now;
	R.ops = R.bytes = R.last_ops = R.sec_ops = 0;
	memset(R.errors, 0, sizeof(R.errors));
	hist_reset(&R.hist);
	getrusage(RUSAGE_SELF, &R.ru0);
	R.srv_cpu0 = proc_cpu_ns(o.server_pid);
}

/* Operations in each whole second of the measurement, for their range. */
static void count_second(uint64_t now)
{
	uint64_t n;

	if (now < R.sec_mark + 1000000000u)
		return;
	n = R.ops - R.sec_ops;
	if (!R.nsecs++ || n < R.sec_min)
		R.sec_min = n;
	if (n > R.sec_max)
		R.sec_max = n;
	R.sec_ops = R.ops;
	R.sec_mark += 1000000000u;
}

static void progress(uint64_t now)
{
	uint64_t errs = 0;

	if (!R.tty || o.quiet || now - R.last_print < 1000000000u)
		return;
	for (int i = 0; i < E__COUNT; i++)
		errs += R.errors[i];
	if (R.last_print) {
		fprintf(stderr,
			"\r[%5.1fs] %10.0f ops/s  p99 %8.1f us  conns %u  "
			"errors %llu   ",
			(double)(now - R.t_measure) / 1e9,
			(double)(R.ops - R.last_ops) * 1e9 /
			    (double)(now - R.last_print),
			hist_quantile(&R.hist, 0.99) / 1e3,
			o.mode == M_IDLE ? R.nconns : R.connected,
			(unsigned long long)errs);
		R.progress_shown = true;
	}
	R.last_ops = R.ops;
	R.last_print = now;
}

static void on_second(struct evr_timer *t)
{
	uint64_t now = now_ns();

	if (R.phase == P_DONE)
		return;
	if (R.phase == P_WARMUP &&
	    now >= R.t_start + (uint64_t)(o.warmup * 1e9)) {
		measure_start(now);
	} else if (R.phase == P_MEASURE &&
		   now >= R.t_measure + (uint64_t)(o.duration * 1e9)) {
		finish();
		return;
	}
	if (R.phase == P_MEASURE) {
		count_second(now);
		progress(now);
	}
	/* fine-grained so that the phases end on time */
	evr_timer_start(R.loop, t, 10);
}

static void on_signal(struct evr_loop *l, int signo, void *arg)
{
	(void)signo, (void)arg;
	if (R.phase != P_DONE)
		finish();
	evr_loop_stop(l);
}

/* ---- command line ---- */

static void usage(void)
{
	puts("usage: evring-bench MODE [options] HOST:PORT\n"
	     "modes:\n"
	     "  echo     closed loop: -c conns, each with -p messages of -s "
	     "bytes in flight\n"
	     "  rate     open loop at -r messages/s over -c conns "
	     "(latency from the due time)\n"
	     "  connect  churn: -c concurrent connect, [--request], read to "
	     "EOF, close\n"
	     "  udp      -c datagrams of -s bytes in flight; lost ones (no "
	     "answer in\n"
	     "           200 ms) are counted and sent again\n"
	     "  idle     open -c connections and hold them; with "
	     "--server-pid, the\n"
	     "           server's memory per connection\n"
	     "HOST:PORT: a name or a numeric address (localhost:7, "
	     "127.0.0.1:7, [::1]:7)\n"
	     "options:\n"
	     "  -c N            connections (default 50)\n"
	     "  -s BYTES        message size (default 64)\n"
	     "  -p N            pipeline depth (default 1)\n"
	     "  -r N            messages per second, rate mode\n"
	     "  -d TIME         measured duration: 10, 10s, 500ms, 2m "
	     "(default 10s)\n"
	     "  -w TIME         warm-up, not measured (default 1s)\n"
	     "  --request TEXT  connect mode: send TEXT after connecting; "
	     "\\r \\n \\t \\\\\n"
	     "                  \\0 \\xHH are escapes\n"
	     "  --close-after N connect mode: close once N bytes arrived "
	     "(echo)\n"
	     "  --sources N     spread connections over N source addresses "
	     "127.1.0.x\n"
	     "  --server-pid P  report the server's CPU per operation (and "
	     "memory, idle)\n"
	     "  --backend NAME  the generator's own backend: auto, io_uring, "
	     "epoll\n"
	     "  --json          one JSON object instead of the table\n"
	     "  --allow-remote  allow a target outside loopback\n"
	     "  -q              no progress line\n"
	     "  --version       print the version\n"
	     "exit status: 0 something succeeded, 1 nothing did or the run "
	     "could not\n"
	     "start, 2 a bad command line");
}

static double parse_num(const char *opt, const char *s, double min, double max)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || v < min || v > max)
		bad_usage("%s \"%s\": expected a number from %g to %g", opt, s,
			  min, max);
	return v;
}

static double parse_time(const char *opt, const char *s, double min, double max)
{
	double v;

	if (cli_duration(s, &v) < 0 || v < min || v > max)
		bad_usage("%s \"%s\": expected a duration from %gs to %gs "
			  "(10, 10s, 500ms, 2m)",
			  opt, s, min, max);
	return v;
}

static enum mode parse_mode(const char *m)
{
	for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
		if (!strcmp(m, mode_names[i]))
			return (enum mode)i;
	if (!strcmp(m, "-h") || !strcmp(m, "--help"))
		usage(), exit(0);
	if (!strcmp(m, "--version"))
		puts("evring-bench " EVR_VERSION), exit(0);
	bad_usage("unknown mode \"%s\" (echo, rate, connect, udp, idle)", m);
	return M_ECHO;
}

static void parse_opt(int ch)
{
	switch (ch) {
	case 'c':
		o.conns = (uint32_t)parse_num("-c", optarg, 1, 1e6);
		break;
	case 's':
		o.size = (uint32_t)parse_num("-s", optarg, 1, 1 << 20);
		break;
	case 'p':
		o.depth = (uint32_t)parse_num("-p", optarg, 1, 1024);
		break;
	case 'r':
		o.rate = parse_num("-r", optarg, 1, 1e8);
		break;
	case 'd':
		o.duration = parse_time("-d", optarg, 0.1, MAX_SECS);
		break;
	case 'w':
		o.warmup = parse_time("-w", optarg, 0, 600);
		break;
	case 'R':
		free(o.request);
		if (cli_unescape(optarg, &o.request, &o.request_len) < 0)
			bad_usage("--request \"%s\": a bad escape (\\r \\n \\t "
				  "\\\\ \\\" \\0 \\xHH)",
				  optarg);
		break;
	case 'C':
		o.close_after =
		    (uint64_t)parse_num("--close-after", optarg, 1, 1e12);
		break;
	case 'S':
		o.sources = (uint32_t)parse_num("--sources", optarg, 1, 65000);
		break;
	case 'P':
		o.server_pid =
		    (int)parse_num("--server-pid", optarg, 1, 1 << 22);
		break;
	case 'B':
		o.backend = optarg;
		break;
	case 'J':
		o.json = true;
		break;
	case 'A':
		o.allow_remote = true;
		break;
	case 'q':
		o.quiet = true;
		break;
	case 'V':
		puts("evring-bench " EVR_VERSION);
		exit(0);
	case 'h':
		usage();
		exit(0);
	default:
		bad_usage("bad command line (see --help)");
	}
}

static void parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "request", required_argument, NULL, 'R' },
		{ "close-after", required_argument, NULL, 'C' },
		{ "sources", required_argument, NULL, 'S' },
		{ "server-pid", required_argument, NULL, 'P' },
		{ "backend", required_argument, NULL, 'B' },
		{ "json", no_argument, NULL, 'J' },
		{ "allow-remote", no_argument, NULL, 'A' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	if (argc < 2)
		usage(), exit(2);
	o.mode = parse_mode(argv[1]);
	optind = 2;
	while ((ch = getopt_long(argc, argv, "c:s:p:r:d:w:qh", lo, NULL)) != -1)
		parse_opt(ch);
	if (optind != argc - 1)
		bad_usage("expected one target HOST:PORT (see --help)");
	o.target = argv[optind];
	if (o.mode == M_RATE && !o.rate)
		bad_usage("rate mode needs -r MESSAGES_PER_SECOND");
	if (o.mode == M_UDP && (o.size < UDP_HDR || o.size > 65507))
		bad_usage("udp mode: -s must be 8 to 65507 bytes");
}

/* The target's address; a name is resolved, a refusal ends the run. */
static void resolve_target(void)
{
	char why[128];
	int type = o.mode == M_UDP ? SOCK_DGRAM : SOCK_STREAM;
	int err = cli_resolve(o.target, type, o.allow_remote, &R.dst, &R.dstlen,
			      why, sizeof(why));

	if (err == -EINVAL || err == -EPERM)
		bad_usage("target %s: %s", o.target, why);
	if (err < 0)
		fail("%s %s: %s", type == SOCK_DGRAM ? "udp" : "connect",
		     o.target, why);
	evr_addr_str((struct sockaddr *)&R.dst, R.dst_str, sizeof(R.dst_str));
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && o.conns + 64 > rl.rlim_cur)
		fail("%u connections need more descriptors than the limit of "
		     "%llu: run several generators",
		     o.conns, (unsigned long long)rl.rlim_cur);
}

static uint32_t pow2_at_least(uint64_t v)
{
	uint32_t p = 1;

	while (p < v && p < (1u << 31))
		p <<= 1;
	return p;
}

/*
 * The receive pool, sized to the load. Every receive takes the next
 * buffer of the ring, so a pool far larger than what is in flight spreads
 * small messages over megabytes: each lands in a cold cache line and TLB
 * entry (4096 x 16 KiB cost 5-8 % more client CPU per 64-byte echo than
 * 128 x 2 KiB at c=50). Echo buffers hold what one connection has in
 * flight, from 2 to 16 KiB (the other modes keep 16 KiB); twice the
 * buffers that all connections' messages in flight fill cover the
 * receives of one iteration, so that the pool does not run dry.
 */
static void size_pool(struct evr_loop_opts *lo)
{
	uint64_t flight = (uint64_t)o.depth * o.size, per = 1, n;
	uint32_t sz = 16384;

	if (o.mode == M_ECHO) {
		sz = pow2_at_least(flight);
		sz = sz < 2048 ? 2048 : sz > 16384 ? 16384 : sz;
		per = (flight + sz - 1) / sz;
	}
	n = pow2_at_least(2 * (uint64_t)o.conns * per);
	lo->buf_count = (uint32_t)(n < 64 ? 64 : n > 4096 ? 4096 : n);
	lo->buf_size = sz;
}

int main(int argc, char **argv)
{
	struct evr_loop_opts lo;
	struct evr_listen_cfg cfg = { .name = "bench" };
	int err;

	signal(SIGPIPE, SIG_IGN);
	evr_log_set_ident("evring-bench");
	/* (a run stopped mid-flight drops a few datagrams: not news) */
	evr_log_set_level(EVR_LOG_ERR);
	parse_args(argc, argv);
	resolve_target();
	raise_nofile();
	cfg.proto = load_proto();
	evr_loop_opts_init(&lo);
	lo.backend = o.backend;
	size_pool(&lo);
	err = evr_loop_new(&R.loop, &lo);
	if (err < 0)
		fail("cannot create a loop: %s", strerror(-err));
	if (evr_connector_new(R.loop, &cfg, &R.cn) < 0)
		fail("cannot create a connector");
	hist_reset(&R.hist);
	R.tty = isatty(STDERR_FILENO);
	R.t_start = now_ns();
	evr_signal_add(R.loop, SIGINT, on_signal, NULL);
	evr_signal_add(R.loop, SIGTERM, on_signal, NULL);
	evr_timer_init(&R.second, on_second);
	evr_timer_start(R.loop, &R.second, 10);
	load_start();
	err = evr_loop_run(R.loop);
	evr_buf_unref(R.pat);
	free(R.uslots);
	free(R.udue);
	evr_connector_free(R.cn);
	evr_loop_free(R.loop);
	free(R.conns);
	free(o.request);
	return err < 0 ? 1 : R.status;
}
