/* SPDX-License-Identifier: MIT */
/*
 * test_logging.c - log lines: the program's handler, rate-limited events
 * summed up when their interval ends, evringd's forms (journal priorities,
 * RFC 3339 timestamps, plain, syslog) and the connection log.
 *
 * The rate limiter is driven with the loop's clock set by hand, so those
 * tests do not depend on how fast the machine is. The journal is stood in
 * for by the server's log file: JOURNAL_STREAM names its device and inode,
 * as systemd does for the stream it connects. syslog(3) is caught on a
 * datagram socket that a private mount namespace shows as /dev/log.
 */
#include "harness.h"

#include "../core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- the handler ---- */

#define MAX_LINES 64

static struct {
	enum evr_log_level level;
	char msg[256];
} lines[MAX_LINES];
static int nlines;

static void take(enum evr_log_level level, const char *msg, void *arg)
{
	cr_assert_eq(arg, &nlines);
	if (nlines == MAX_LINES)
		return;
	lines[nlines].level = level;
	snprintf(lines[nlines].msg, sizeof(lines[0].msg), "%s", msg);
	nlines++;
}

static void handler_on(void)
{
	nlines = 0;
	evr_log_set_handler(take, &nlines);
}

static void handler_off(void)
{
	evr_log_set_handler(NULL, NULL);
	evr_log_set_level(EVR_LOG_INFO);
}

/* The line of the handler that contains needle, or -1. */
static int line_with(const char *needle)
{
	for (int i = 0; i < nlines; i++)
		if (strstr(lines[i].msg, needle))
			return i;
	return -1;
}

Test(log_handler, takes_every_line_with_its_level, .init = handler_on,
     .fini = handler_off)
{
	struct evr_loop_opts o;
	struct evr_loop *l = NULL;
	int i;

	/* a line of the library itself */
	evr_loop_opts_init(&o);
	o.backend = "bogus";
	cr_assert_eq(evr_loop_new(&l, &o), -EINVAL);
	i = line_with("backend \"bogus\": unknown");
	cr_assert_geq(i, 0, "the library's error did not reach the handler");
	cr_assert_eq(lines[i].level, EVR_LOG_ERR);
	cr_assert_null(strchr(lines[i].msg, '\n'), "a message has no newline");

	evr_log_warn("w %d", 1);
	evr_log_info("i %d", 2);
	evr_log_set_level(EVR_LOG_WARN);
	evr_log_info("dropped below the level");
	evr_log_debug("dropped too");
	cr_assert_eq(nlines, 3, "%d lines", nlines);
	cr_assert_str_eq(lines[1].msg, "w 1");
	cr_assert_eq(lines[1].level, EVR_LOG_WARN);
	cr_assert_str_eq(lines[2].msg, "i 2");
	cr_assert_eq(lines[2].level, EVR_LOG_INFO);
}

Test(log_handler, levels_have_names_and_syslog_priorities)
{
	cr_assert_str_eq(evr_log_level_name(EVR_LOG_ERR), "error");
	cr_assert_str_eq(evr_log_level_name(EVR_LOG_WARN), "warning");
	cr_assert_eq(evr_log_syslog_priority(EVR_LOG_ERR), 3);
	cr_assert_eq(evr_log_syslog_priority(EVR_LOG_WARN), 4);
	cr_assert_eq(evr_log_syslog_priority(EVR_LOG_INFO), 6);
	cr_assert_eq(evr_log_syslog_priority(EVR_LOG_DEBUG), 7);
}

Test(log_handler, journal_stream_is_recognised_by_device_and_inode)
{
	char path[] = "/tmp/evring-journal-XXXXXX", js[64];
	struct stat st;
	int saved = dup(STDERR_FILENO), fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	unlink(path);
	fstat(fd, &st);
	dup2(fd, STDERR_FILENO);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	cr_expect(evr_log_stderr_is_journal());
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", js, 1);
	cr_expect(!evr_log_stderr_is_journal(), "another inode matched");
	unsetenv("JOURNAL_STREAM");
	cr_expect(!evr_log_stderr_is_journal());
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
}

/* ---- rate limits, with the loop's clock set by hand ---- */

static struct evr_loop *quiet_loop(void)
{
	struct evr_loop *l = NULL;

	cr_assert_eq(evr_loop_new(&l, NULL), 0);
	nlines = 0; /* the backend's line, if any */
	return l;
}

/* Advance the loop's clock and run what is due, as an iteration does. */
static void advance(struct evr_loop *l, uint64_t ms)
{
	l->now += ms;
	evr__timers_run(l);
}

Test(ratelimit, one_line_per_interval_and_the_rest_summed_up_at_its_end,
     .init = handler_on, .fini = handler_off)
{
	struct evr_loop *l = quiet_loop();
	struct evr__ratelimit r = { 0 };
	int logged = 0;

	for (int i = 0; i < 191; i++)
		logged += evr__ratelimit(l, &r, 10000, "drops of kind %d", 7);
	cr_assert_eq(logged, 1);
	cr_assert_eq(nlines, 0, "nothing is summed up before the end");
	advance(l, 9999);
	cr_assert_eq(nlines, 0, "summed up before the interval ended");
	advance(l, 1);
	cr_assert_eq(nlines, 1, "%d lines", nlines);
	cr_assert_str_eq(lines[0].msg,
			 "drops of kind 7: 190 more in the last 10 s");
	cr_assert_eq(lines[0].level, EVR_LOG_WARN);
	cr_assert(!evr_timer_active(&l->rl_timer), "nothing left to report");

	/* the next event starts a new interval and is logged at once */
	cr_assert(evr__ratelimit(l, &r, 10000, "drops"));
	advance(l, 20000);
	cr_assert_eq(nlines, 1, "a summary of nothing");
	evr_loop_free(l);
}

Test(ratelimit, n_per_interval, .init = handler_on, .fini = handler_off)
{
	struct evr_loop *l = quiet_loop();
	struct evr__ratelimit r = { 0 };
	int logged = 0;

	for (int i = 0; i < 150; i++)
		logged += evr__ratelimit_n(l, &r, 1000, 100, EVR_LOG_INFO,
					   "conn lines");
	cr_assert_eq(logged, 100);
	advance(l, 1000);
	cr_assert_eq(nlines, 1);
	cr_assert_str_eq(lines[0].msg, "conn lines: 50 more in the last 1 s");
	cr_assert_eq(lines[0].level, EVR_LOG_INFO);
	evr_loop_free(l);
}

Test(ratelimit, an_event_after_the_interval_reports_the_count_first,
     .init = handler_on, .fini = handler_off)
{
	struct evr_loop *l = quiet_loop();
	struct evr__ratelimit r = { 0 };

	evr__ratelimit(l, &r, 10000, "x");
	evr__ratelimit(l, &r, 10000, "x");
	evr__ratelimit(l, &r, 10000, "x");
	/* the clock moved past the interval, the timer has not run yet */
	l->now += 10500;
	cr_assert(evr__ratelimit(l, &r, 10000, "x"));
	cr_assert_eq(nlines, 1);
	cr_assert_str_eq(lines[0].msg, "x: 2 more in the last 10 s");
	evr_loop_free(l);
}

Test(ratelimit, loop_free_reports_what_is_pending, .init = handler_on,
     .fini = handler_off)
{
	struct evr_loop *l = quiet_loop();

	evr__ratelimit(l, &l->rl_refuse, 10000, "refused");
	evr__ratelimit(l, &l->rl_refuse, 10000, "refused");
	evr__ratelimit(l, &l->rl_overflow, 10000, "overflow");
	evr__ratelimit(l, &l->rl_overflow, 10000, "overflow");
	evr__ratelimit(l, &l->rl_overflow, 10000, "overflow");
	evr_loop_free(l);
	cr_assert_geq(line_with("refused: 1 more in the last 10 s"), 0);
	cr_assert_geq(line_with("overflow: 2 more in the last 10 s"), 0);
}

Test(ratelimit, pending_reports_do_not_keep_the_loop_running,
     .init = handler_on, .fini = handler_off, .timeout = 120)
{
	struct evr_loop *l = quiet_loop();
	int64_t t0 = now_ms();

	evr__ratelimit(l, &l->rl_refuse, 10000, "refused");
	evr__ratelimit(l, &l->rl_refuse, 10000, "refused");
	cr_assert(evr_timer_active(&l->rl_timer));
	cr_assert_eq(evr_loop_run(l), 0);
	cr_assert_lt(now_ms() - t0, 5000, "the loop waited for the report");
	evr_loop_free(l);
	cr_assert_geq(line_with("refused: 1 more"), 0);
}

/* ---- evringd's forms ---- */

/* Start evringd through sh, with JOURNAL_STREAM set to the device and
 * inode of its stderr (the log file) when journal is "match", to one
 * that does not match when "other", unset when NULL. */
static void start_sh(struct srv *s, const char *backend, const char *journal,
		     const char *const *extra)
{
	static char script[512], be[32];
	const char *args[40];
	int n = 0;

	snprintf(script, sizeof(script), "%s exec \"$0\" \"$@\"",
		 !journal ? "unset JOURNAL_STREAM;"
		 : !strcmp(journal, "match")
		     ? "JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) "
		       "&& export JOURNAL_STREAM &&"
		     : "export JOURNAL_STREAM=1:1;");
	snprintf(be, sizeof(be), "--backend=%s", backend);
	args[n++] = "/bin/sh";
	args[n++] = "-c";
	args[n++] = script;
	args[n++] = evringd_path();
	args[n++] = be;
	args[n++] = "-b";
	args[n++] = "127.0.0.1";
	args[n++] = "-s";
	args[n++] = "echo/udp:0";
	args[n++] = "--udp-rate";
	args[n++] = "1";
	args[n++] = "--udp-burst";
	args[n++] = "1";
	for (; extra && *extra && n < 39; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	cr_assert_eq(srv_spawn(s, 1, args), 0);
}

/* A warning: datagrams over the source's rate (burst 1). */
static void provoke_warning(struct srv *s)
{
	struct sockaddr_storage ss;
	socklen_t len =
	    loopback_addr(AF_INET, srv_uport(s, "echo", AF_INET), &ss);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int64_t deadline = now_ms() + 10000;

	for (int i = 0; i < 5; i++)
		sendto(fd, "x", 1, 0, (struct sockaddr *)&ss, len);
	close(fd);
	while (!srv_log_has(s, "over its reply rate") && now_ms() < deadline)
		usleep(5000);
	cr_assert(srv_log_has(s, "over its reply rate"), "%s", srv_log(s));
}

/* Each line of the log satisfies re. */
static void every_line_matches(const char *log, const char *re_src)
{
	char copy[16384], *save = NULL;
	regex_t re;

	cr_assert_eq(regcomp(&re, re_src, REG_EXTENDED | REG_NOSUB), 0);
	snprintf(copy, sizeof(copy), "%s", log);
	for (char *ln = strtok_r(copy, "\n", &save); ln;
	     ln = strtok_r(NULL, "\n", &save))
		cr_expect_eq(regexec(&re, ln, 0, NULL, 0), 0,
			     "line \"%s\" is not /%s/", ln, re_src);
	regfree(&re);
}

BACKEND_TEST(evringd_log, journal_gets_priorities_and_no_timestamps)
{
	struct srv s;

	start_sh(&s, backend, "match", NULL);
	provoke_warning(&s);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	cr_assert(strstr(srv_log(&s), "<6>evringd " EVR_VERSION ": "), "%s",
		  srv_log(&s));
	cr_assert(strstr(srv_log(&s), "<4>udp echo: 127.0.0.1:"), "%s",
		  srv_log(&s));
	every_line_matches(srv_log(&s), "^<[3467]>[^<]");
}

BACKEND_TEST(evringd_log, elsewhere_lines_carry_rfc3339_timestamps)
{
	struct srv s;

	start_sh(&s, backend, "other", NULL);
	provoke_warning(&s);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	every_line_matches(
	    srv_log(&s), "^[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:"
			 "[0-6][0-9]\\.[0-9]{3}(Z|[+-][0-9]{2}:[0-9]{2}) "
			 "evringd\\[[0-9]+\\]: (error|warning|info|debug): ");
	cr_assert(strstr(srv_log(&s), "]: warning: udp echo: "), "%s",
		  srv_log(&s));
}

BACKEND_TEST(evringd_log, log_format_plain_overrides_the_journal)
{
	static const char *const extra[] = { "--log-format=plain", NULL };
	struct srv s;

	start_sh(&s, backend, "match", extra);
	provoke_warning(&s);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	every_line_matches(srv_log(&s),
			   "^evringd: (error|warning|info|debug): ");
}

Test(evringd_log, bad_log_options_are_usage_errors)
{
	static const char *const bad[][4] = {
		{ "--log-format=xml", "expected auto, journal" },
		{ "--syslog=kern", "expected daemon, user" },
	};
	char out[4096];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *argv[] = { evringd_path(), "-s", "echo:0",
				       bad[i][0], NULL };

		cr_assert_eq(run_capture(argv, out, sizeof(out), 10000), 2,
			     "%s: %s", bad[i][0], out);
		cr_assert(strstr(out, bad[i][1]), "%s: %s", bad[i][0], out);
	}
}

/*
 * --syslog: lines go through syslog(3) to /dev/log, here a datagram
 * socket of ours that a private mount namespace (unshare -rm: a user
 * namespace, so no root is needed where the kernel allows them) shows as
 * /dev/log over an empty /dev. The host's /dev is not touched.
 */
Test(evringd_log, syslog_gets_priorities_and_facility, .timeout = 120)
{
	char dir[] = "/tmp/evring-syslog-XXXXXX", path[64], script[512];
	char out[256], msgs[8192] = "";
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 1 };
	const char *probe[] = { "unshare", "-rm", "true", NULL };
	size_t off = 0;
	int64_t deadline;
	struct srv s;
	int fd;

	if (run_capture(probe, out, sizeof(out), 10000) != 0)
		cr_skip_test("no private mount namespace here (unshare -rm: "
			     "%s)",
			     out);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/log", dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	chmod(path, 0666);
	chmod(dir, 0755);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	snprintf(script, sizeof(script),
		 "mount -t tmpfs none /dev && ln -s %s /dev/log && "
		 "exec \"$0\" \"$@\"",
		 path);
	{
		const char *args[] = {
			"unshare",     "-rm",	     "/bin/sh",
			"-c",	       script,	     evringd_path(),
			"-b",	       "127.0.0.1",  "-s",
			"echo/udp:0",  "--udp-rate", "1",
			"--udp-burst", "1",	     "--syslog=local3",
			NULL
		};

		cr_assert_eq(srv_spawn(&s, 1, args), 0);
	}
	{
		struct sockaddr_storage ss;
		socklen_t len =
		    loopback_addr(AF_INET, srv_uport(&s, "echo", AF_INET), &ss);
		int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		for (int i = 0; i < 5; i++)
			sendto(u, "x", 1, 0, (struct sockaddr *)&ss, len);
		close(u);
	}
	deadline = now_ms() + 10000;
	while (now_ms() < deadline && !strstr(msgs, "over its reply rate")) {
		ssize_t r = recv(fd, msgs + off, sizeof(msgs) - off - 2, 0);

		if (r > 0) {
			off += (size_t)r;
			msgs[off++] = '\n';
			msgs[off] = '\0';
		}
	}
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	close(fd);
	unlink(path);
	rmdir(dir);
	/* local3 is facility 19: <19*8+6> for info, <19*8+4> warning */
	cr_assert(strstr(msgs, "<158>"), "no info line: %s", msgs);
	cr_assert(strstr(msgs, "<156>"), "no warning line: %s", msgs);
	cr_assert(strstr(msgs, "evringd["), "no ident and pid: %s", msgs);
	cr_assert(strstr(msgs, "over its reply rate"), "%s", msgs);
	cr_assert_str_empty(srv_log(&s), "stderr got lines too: %s",
			    srv_log(&s));
}

/* ---- rate-limited events of a running server ---- */

/* Every drop is counted once: in a warning line, or in the summary that
 * follows at the end of the 10 s interval. */
BACKEND_TEST(evringd_log, udp_drops_are_summed_up_after_the_last_burst)
{
	struct srv s;
	struct srv_stats st;
	const char *log, *p;
	unsigned long long summed = 0;
	int64_t deadline;
	int warned;

	start_sh(&s, backend, NULL, NULL);
	{
		struct sockaddr_storage ss;
		socklen_t len =
		    loopback_addr(AF_INET, srv_uport(&s, "echo", AF_INET), &ss);
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		for (int i = 0; i < 200; i++)
			sendto(fd, "x", 1, 0, (struct sockaddr *)&ss, len);
		close(fd);
	}
	/* wait for the summary line, then compare with the counter */
	deadline = now_ms() + 30000;
	while (!srv_log_has(&s, "more in the last 10 s") && now_ms() < deadline)
		usleep(50000);
	cr_assert_eq(srv_stats(&s, &st), 0);
	log = srv_log(&s);
	warned = count_substr(log, "over its reply rate (counted");
	for (p = log; (p = strstr(p, "over its reply rate: ")); p++)
		summed +=
		    strtoull(p + strlen("over its reply rate: "), NULL, 10);
	cr_assert_gt(st.udp_drop_rate, 1, "%s", log);
	cr_assert_eq(warned + summed, st.udp_drop_rate,
		     "%d warned + %llu summed up != %llu dropped:\n%s", warned,
		     summed, st.udp_drop_rate, log);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

/* ---- the connection log ---- */

static uint16_t local_port(int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	getsockname(fd, (struct sockaddr *)&sin, &len);
	return ntohs(sin.sin_port);
}

static int wait_log(struct srv *s, const char *needle, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (!srv_log_has(s, needle)) {
		if (now_ms() > deadline)
			return -1;
		usleep(5000);
	}
	return 0;
}

BACKEND_TEST(connlog, is_off_by_default)
{
	static const char *const svcs[] = { "echo", NULL };
	struct srv s;
	struct srv_stats st;
	char buf[8];
	int fd;

	cr_assert_eq(srv_start_services(&s, backend, svcs), 0);
	fd = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
	cr_assert_eq(xfer(fd, "hello", 5, buf, 5, true, 10000), 0);
	close(fd);
	cr_assert_eq(srv_wait_idle(&s, &st, 10000), 0);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	cr_assert_null(strstr(srv_log(&s), "conn echo"), "%s", srv_log(&s));
}

BACKEND_TEST(connlog, tells_peer_service_duration_bytes_and_how_it_ended)
{
	static const char *const args[] = { "-b",
					    "127.0.0.1",
					    "-s",
					    "echo/tcp:0",
					    "-s",
					    "daytime/tcp:0",
					    "-s",
					    "http/tcp:0",
					    "--log-conns",
					    "-o",
					    "http.log_conns=off",
					    "--idle-timeout",
					    "300ms",
					    NULL };
	struct srv s;
	char buf[256], want[128];
	ssize_t n;
	int fd;

	cr_assert_eq(srv_start(&s, backend, 3, args), 0);

	/* echo: the client closes first */
	fd = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
	cr_assert_eq(xfer(fd, "hello", 5, buf, 5, true, 10000), 0);
	cr_assert_eq(read_to_eof(fd, buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want),
		 "conn echo peer=127.0.0.1:%u duration=", local_port(fd));
	close(fd);
	cr_assert_eq(wait_log(&s, want, 10000), 0, "no \"%s\" in:\n%s", want,
		     srv_log(&s));
	cr_assert(
	    strstr(strstr(srv_log(&s), want), "s in=5 out=5 end=peer_closed\n"),
	    "%s", srv_log(&s));

	/* daytime: the server closes after its line */
	fd = tcp_connect(AF_INET, srv_port(&s, "daytime", AF_INET));
	n = read_to_eof(fd, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	snprintf(want, sizeof(want), "conn daytime peer=127.0.0.1:%u ",
		 local_port(fd));
	close(fd);
	cr_assert_eq(wait_log(&s, want, 10000), 0, "%s", srv_log(&s));
	snprintf(want, sizeof(want), " in=0 out=%zd end=closed\n", n);
	cr_assert(strstr(srv_log(&s), want), "no \"%s\" in:\n%s", want,
		  srv_log(&s));

	/* echo again: idle until the server gives up */
	fd = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
	cr_assert_eq(wait_log(&s, "in=0 out=0 end=timeout", 10000), 0, "%s",
		     srv_log(&s));
	close(fd);

	/* http is served, but asked not to log */
	fd = tcp_connect(AF_INET, srv_port(&s, "http", AF_INET));
	write_all(fd, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		  46);
	cr_assert_gt(read_to_eof(fd, buf, sizeof(buf)), 0);
	close(fd);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	cr_assert_null(strstr(srv_log(&s), "conn http"), "%s", srv_log(&s));
}

/*
 * At most 100 lines per second; every connection is either logged or
 * counted in a summary line.
 */
BACKEND_TEST(connlog, is_rate_limited_and_every_connection_counted)
{
	static const char *const args[] = { "-b",	  "127.0.0.1",	 "-s",
					    "echo/tcp:0", "--log-conns", NULL };
	enum { N = 150 };
	struct srv s;
	struct srv_stats st;
	unsigned long long summed = 0;
	const char *log, *p;
	int fds[N], logged;

	cr_assert_eq(srv_start(&s, backend, 1, args), 0);
	for (int i = 0; i < N; i++) {
		fds[i] = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
		cr_assert_geq(fds[i], 0);
	}
	/* all open, then all closed at once: one burst of log lines */
	for (int i = 0; i < N; i++) {
		char c;

		cr_assert_eq(xfer(fds[i], "x", 1, &c, 1, false, 10000), 0);
	}
	for (int i = 0; i < N; i++)
		close(fds[i]);
	cr_assert_eq(srv_wait_idle(&s, &st, 20000), 0);
	/* what the flush timer has not reported yet, the exit does */
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	log = srv_log(&s);
	logged = count_substr(log, "conn echo peer=");
	for (p = log; (p = strstr(p, "conn: connections not logged")); p++) {
		const char *q = strstr(p, "): ");

		cr_assert_not_null(q);
		summed += strtoull(q + 3, NULL, 10);
	}
	cr_assert_eq(logged + summed, N, "%d logged + %llu summed up:\n%s",
		     logged, summed, log);
	cr_assert_geq(logged, 100, "fewer lines than the rate allows");
}
