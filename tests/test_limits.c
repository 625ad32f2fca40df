/* SPDX-License-Identifier: MIT */
/*
 * test_limits.c - running out of file descriptors.
 *
 * With RLIMIT_NOFILE of 64 for evringd (ulimit -n 64) and 500 clients
 * connecting at once, more than it can accept, one loop must pause
 * accepting
 * (one log line, no spinning: its CPU stays near zero), keep serving the
 * connections it has, and accept every waiting client as descriptors free
 * up again.
 */
#include "harness.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* user + system CPU time of pid in clock ticks */
static long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	/* fields after the command name in parentheses; utime is 14th */
	char *p = strrchr(buf, ')');
	if (!p || sscanf(p + 2,
			 "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			 "%ld %ld",
			 &ut, &st) != 2)
		return -1;
	return ut + st;
}

static int echo_once(int fd, char tag)
{
	char c = 0;

	if (write_all(fd, &tag, 1) < 0 || read_exact(fd, &c, 1) != 1)
		return -1;
	return c == tag ? 0 : -1;
}

BACKEND_TEST(limits, emfile_pauses_without_spinning_and_recovers)
{
	enum { N = 500 };
	/* The limit is set before exec, as `ulimit -n` would: io_uring takes
	 * RLIMIT_NOFILE when the multishot accept is armed, not later. */
	const char *argv[] = { "/usr/bin/prlimit", "--nofile=64:64",
			       evringd_path(), "--backend", backend, "-b",
			       "127.0.0.1", "-s", "echo/tcp:0",
			       /* descriptors are the process's, queues each
				* loop's: with two loops, one could take them
				* all while the client waits on the other */
			       "--threads", "1", NULL };
	struct srv_stats st;
	int fds[N];
	uint16_t port;
	struct srv s;
	long t0, t1;

	cr_assert_eq(srv_spawn(&s, 1, argv), 0);
	port = srv_port(&s, "echo", AF_INET);
	for (int i = 0; i < N; i++) {
		fds[i] =
		    tcp_connect(AF_INET, port); /* the backlog holds them */
		cr_assert_geq(fds[i], 0, "connect #%d", i);
	}
	usleep(300 * 1000);
	cr_assert_eq(echo_once(fds[0], 'a'), 0, "an accepted connection");

	/* Paused: one line for the whole pause, and no busy loop. */
	t0 = cpu_ticks(s.pid);
	usleep(1000 * 1000);
	t1 = cpu_ticks(s.pid);
	cr_assert_leq(t1 - t0, 10, "%ld ticks of CPU in 1 s while paused",
		      t1 - t0);
	cr_assert_eq(count_substr(srv_log(&s), "pausing accepts"), 1, "log: %s",
		     srv_log(&s));
	cr_assert(srv_log_has(&s, "Too many open files"));
	cr_assert_eq(echo_once(fds[1], 'b'), 0, "still serving while paused");

	/* As clients leave, descriptors free up and the ones waiting in the
	 * backlog are accepted and served, every one of them. */
	for (int i = 0; i < N; i++) {
		cr_assert_eq(echo_once(fds[i], (char)('A' + i % 26)), 0,
			     "client #%d was not served", i);
		close(fds[i]);
	}
	cr_assert(srv_log_has(&s, "accepting again"), "log: %s", srv_log(&s));
	cr_assert_eq(srv_wait_idle(&s, &st, 10000), 0);
	cr_assert_geq(st.accept_pauses, 1);
	cr_assert_eq(st.conns_accepted, N);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}
