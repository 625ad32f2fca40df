/* SPDX-License-Identifier: MIT */
/*
 * test_backend.c - backend choice where io_uring is denied.
 *
 * evringd runs under tests/tools/seccomp_launch.c, a raw BPF filter that
 * makes the io_uring system calls fail with EPERM or ENOSYS (as Docker's
 * default profile does) or kills the process on the first one. auto must
 * fall back to epoll, say why, and serve; a forced io_uring must fail with
 * a clear message; a forced epoll must never touch io_uring.
 */
#include "harness.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void assert_serves_echo_and_daytime(const struct srv *s)
{
	static const int families[] = { AF_INET, AF_INET6 };
	char buf[256];

	for (int f = 0; f < 2; f++) {
		int fd =
		    tcp_connect(families[f], srv_port(s, "echo", families[f]));

		cr_assert_geq(fd, 0);
		cr_assert_eq(xfer(fd, "hello\n", 6, buf, 6, true, 10000), 0);
		cr_assert_eq(memcmp(buf, "hello\n", 6), 0);
		close(fd);
		fd = tcp_connect(families[f],
				 srv_port(s, "daytime", families[f]));
		cr_assert_geq(fd, 0);
		ssize_t n = read_to_eof(fd, buf, sizeof(buf) - 1);
		close(fd);
		cr_assert_gt(n, 20);
		buf[n] = '\0';
		cr_assert(strstr(buf, "-UTC\r\n"), "daytime said \"%s\"", buf);
	}
}

static int start_under(struct srv *s, const char *action,
		       const char *backend_opt)
{
	const char *args[16];
	int n = 0;

	args[n++] = tool_path("seccomp-launch");
	args[n++] = action;
	args[n++] = evringd_path();
	if (backend_opt)
		args[n++] = backend_opt;
	args[n++] = "-b";
	args[n++] = "127.0.0.1";
	args[n++] = "-b";
	args[n++] = "::1";
	args[n++] = "-s";
	args[n++] = "echo/tcp:0";
	args[n++] = "-s";
	args[n++] = "daytime/tcp:0";
	args[n] = NULL;
	return srv_spawn(s, 4, args);
}

static void auto_falls_back(const char *action, const char *says)
{
	struct srv s;

	cr_assert_eq(start_under(&s, action, NULL), 0);
	cr_assert_str_eq(s.backend, "epoll");
	assert_serves_echo_and_daytime(&s);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	cr_assert(srv_log_has(&s, "backend epoll (io_uring refused: "
				  "io_uring_setup: "),
		  "log: %s", srv_log(&s));
	cr_assert(srv_log_has(&s, says), "log: %s", srv_log(&s));
}

Test(backend_seccomp, eperm_auto_falls_back_to_epoll, .timeout = 60)
{
	auto_falls_back("EPERM", "Operation not permitted");
}

Test(backend_seccomp, enosys_auto_falls_back_to_epoll, .timeout = 60)
{
	auto_falls_back("ENOSYS", "Function not implemented");
}

static void forced_uring_fails(const char *action, const char *says)
{
	const char *args[] = { tool_path("seccomp-launch"),
			       action,
			       evringd_path(),
			       "--backend=io_uring",
			       "-b",
			       "127.0.0.1",
			       "-s",
			       "echo/tcp:0",
			       NULL };
	char out[4096], expect[160];
	int rc = run_capture(args, out, sizeof(out), 10000);

	cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
	snprintf(expect, sizeof(expect),
		 "backend io_uring cannot run here: io_uring_setup: %s", says);
	cr_assert(strstr(out, expect), "expected \"%s\" in: %s", expect, out);
	cr_assert_null(strstr(out, "listen "), "it must not serve: %s", out);
}

Test(backend_seccomp, eperm_forced_io_uring_fails_clearly, .timeout = 60)
{
	forced_uring_fails("EPERM", "Operation not permitted");
}

Test(backend_seccomp, enosys_forced_io_uring_fails_clearly, .timeout = 60)
{
	forced_uring_fails("ENOSYS", "Function not implemented");
}

/* Under KILL the first io_uring system call ends the process with SIGSYS:
 * serving and a clean exit prove the epoll switch reaches every path. */
Test(backend_seccomp, forced_epoll_never_calls_io_uring, .timeout = 60)
{
	struct srv s;

	cr_assert_eq(start_under(&s, "KILL", "--backend=epoll"), 0);
	assert_serves_echo_and_daytime(&s);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "log: %s", srv_log(&s));
}

Test(backend_seccomp, env_epoll_never_calls_io_uring, .timeout = 60)
{
	struct srv s;

	setenv("EVRING_BACKEND", "epoll", 1);
	cr_assert_eq(start_under(&s, "KILL", NULL), 0);
	assert_serves_echo_and_daytime(&s);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "log: %s", srv_log(&s));
}

Test(backend_choice, env_variable_chooses, .timeout = 60)
{
	const char *argv[] = { "-b", "127.0.0.1", "-s", "echo/tcp:0", NULL };
	struct srv s;

	setenv("EVRING_BACKEND", "epoll", 1);
	cr_assert_eq(srv_start(&s, NULL, 1, argv), 0);
	cr_assert_str_eq(s.backend, "epoll");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	/* The command line wins over the environment. Asked for io_uring by
	 * the environment and for epoll by the command line, so that the
	 * test means the same where io_uring cannot run (there an ignored
	 * command line would make evringd exit instead of serving). */
	setenv("EVRING_BACKEND", "io_uring", 1);
	cr_assert_eq(srv_start(&s, "epoll", 1, argv), 0);
	cr_assert_str_eq(s.backend, "epoll");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

Test(backend_choice, auto_prefers_io_uring_where_it_runs, .timeout = 60)
{
	const char *argv[] = { "-b", "127.0.0.1", "-s", "echo/tcp:0", NULL };
	struct srv s;

	skip_unless_backend_runs("io_uring");
	unsetenv("EVRING_BACKEND");
	cr_assert_eq(srv_start(&s, "io_uring", 1, argv), 0);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	cr_assert_eq(srv_start(&s, "auto", 1, argv), 0);
	cr_assert_str_eq(s.backend, "io_uring");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}
