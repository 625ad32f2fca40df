/* SPDX-License-Identifier: MIT */
/*
 * test_defer.c - deferred accepts (-o NAME.defer_accept, the listener's
 * TCP_DEFER_ACCEPT), on both backends: a client that connects and says
 * nothing stays in the kernel, one that speaks is accepted and served; a
 * reload turns the setting off and on on the same socket; bad values are
 * usage errors.
 *
 * A drain takes a held-back client in before it closes the socket; a
 * socket from a service manager keeps the manager's setting
 * (test_activation.c).
 *
 * How "stays in the kernel" is told without a clock: the silent client
 * connects first, a second client then connects and gets its echo. The
 * listen queue is first in, first out, so without the deferral the loop
 * would have accepted the silent one before the second; with it, the
 * server's conns_accepted counts the second one only.
 */
#include "evd_conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The silent client, then a talking one: returns the silent one, its
 * connection complete on the client's side. */
static int silent_then_echo(struct srv *s, uint16_t port)
{
	char buf[8];
	int quiet = tcp_connect(AF_INET, port), talk;

	cr_assert_geq(quiet, 0, "connect: %s", strerror(errno));
	talk = tcp_connect(AF_INET, port);
	cr_assert_geq(talk, 0, "connect: %s", strerror(errno));
	cr_assert_eq(write_all(talk, "b\n", 2), 0);
	cr_assert_eq(read_exact(talk, buf, 2), 2, "no echo; log: %s",
		     srv_log(s));
	cr_assert_eq(memcmp(buf, "b\n", 2), 0);
	close(talk);
	return quiet;
}

static unsigned long long accepted(struct srv *s)
{
	struct srv_stats st;

	cr_assert_eq(srv_stats(s, &st), 0);
	return st.conns_accepted;
}

/* Wait up to 10 s for the server to have accepted n in all: a connection
 * the kernel did not hold back may still be on its way to the loop. */
static unsigned long long accepted_reaches(struct srv *s, unsigned long long n)
{
	unsigned long long got = accepted(s);

	for (int64_t end = now_ms() + 10000; got < n && now_ms() < end;
	     got = accepted(s))
		usleep(10000);
	return got;
}

/* The silent client speaks: accepted, answered. */
static void speak(struct srv *s, int fd)
{
	char buf[8];

	cr_assert_eq(write_all(fd, "a\n", 2), 0);
	cr_assert_eq(read_exact(fd, buf, 2), 2, "no echo; log: %s", srv_log(s));
	cr_assert_eq(memcmp(buf, "a\n", 2), 0);
	close(fd);
}

BACKEND_TEST(defer, a_silent_client_waits_in_the_kernel)
{
	const char *args[] = { "-b", "127.0.0.1",
			       "-s", "echo/tcp:0",
			       "-o", "echo.defer_accept=30s",
			       NULL };
	struct srv s;
	uint16_t port;
	int quiet;

	cr_assert_eq(srv_start(&s, backend, 1, args), 0);
	port = srv_port(&s, "echo", AF_INET);
	quiet = silent_then_echo(&s, port);
	cr_assert_eq(accepted(&s), 1,
		     "the silent client was accepted before it spoke");
	speak(&s, quiet);
	cr_assert_eq(accepted(&s), 2);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

/* Without the option the same sequence accepts both at once: the check
 * above can tell the two apart. */
BACKEND_TEST(defer, off_by_default)
{
	const char *args[] = { "-b", "127.0.0.1", "-s", "echo/tcp:0", NULL };
	struct srv s;
	int quiet;

	cr_assert_eq(srv_start(&s, backend, 1, args), 0);
	quiet = silent_then_echo(&s, srv_port(&s, "echo", AF_INET));
	cr_assert_eq(accepted_reaches(&s, 2), 2);
	speak(&s, quiet);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

static void conf(char *text, size_t n, uint16_t port, const char *keys)
{
	struct passwd *pw = getpwuid(geteuid());

	cr_assert_not_null(pw);
	snprintf(text, n,
		 "127.0.0.1:\n"
		 "%s"
		 "%u stream tcp nowait %s echo\n",
		 keys, port, pw->pw_name);
}

static void reload(struct srv *s)
{
	char out[1024];

	kill(s->pid, SIGHUP);
	cr_assert_eq(srv_read_until(s, "reload:", out, sizeof(out), 10000), 0,
		     "no summary; stdout: %s; log: %s", out, srv_log(s));
	cr_assert(strstr(out, "1 kept"), "%s", out);
}

/* From the file's "#@" line; a reload that drops it turns the deferral
 * off on the same socket, one that brings it back turns it on. */
BACKEND_TEST(defer, a_reload_turns_it_off_and_on)
{
	char text[256];
	uint16_t port;
	unsigned long inode;
	unsigned long long n;
	const char *path;
	struct srv s;
	int quiet;

	close(bind_free(&port));
	conf(text, sizeof(text), port, "#@ defer_accept=30s\n");
	path = conf_write(text);
	conf_start(&s, backend, path, 1, NULL);
	inode = listen_inode(port);
	quiet = silent_then_echo(&s, port);
	cr_assert_eq(accepted(&s), 1, "deferred from the file");
	speak(&s, quiet);

	conf(text, sizeof(text), port, "");
	conf_rewrite(path, text);
	reload(&s);
	cr_assert_eq(listen_inode(port), inode, "not the same socket");
	n = accepted(&s);
	quiet = silent_then_echo(&s, port);
	cr_assert_eq(accepted_reaches(&s, n + 2), n + 2,
		     "still deferred after the reload");
	speak(&s, quiet);

	conf(text, sizeof(text), port, "#@ defer_accept=30s\n");
	conf_rewrite(path, text);
	reload(&s);
	n = accepted(&s);
	quiet = silent_then_echo(&s, port);
	cr_assert_eq(accepted(&s), n + 1, "not deferred again");
	speak(&s, quiet);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

/* Every loop's socket defers: with two loops the kernel spreads the
 * silent clients over both. */
BACKEND_TEST(defer, every_loop_defers)
{
	const char *args[] = { "-b",	    "127.0.0.1",
			       "-s",	    "echo/tcp:0",
			       "-o",	    "echo.defer_accept=30s",
			       "--threads", "2",
			       NULL };
	struct srv s;
	uint16_t port;
	int quiet[9];

	cr_assert_eq(srv_start(&s, backend, 1, args), 0);
	port = srv_port(&s, "echo", AF_INET);
	for (int i = 0; i < 8; i++) {
		quiet[i] = tcp_connect(AF_INET, port);
		cr_assert_geq(quiet[i], 0);
	}
	/* (a client that closes is accepted: its FIN is more than an ACK) */
	quiet[8] = silent_then_echo(&s, port);
	cr_assert_eq(accepted(&s), 1, "a loop's socket did not defer");
	for (int i = 0; i < 9; i++)
		speak(&s, quiet[i]);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

/* A drain closes the listening socket: a client the kernel still holds
 * back (connected, silent) would be reset when it speaks. The drain turns
 * the deferral off, the kernel's next SYN-ACK brings the client in, and
 * the drain waits for it: served, not reset. (One loop: the counters of a
 * group are read through its loops, and one that has drained is gone.) */
BACKEND_TEST(defer, a_drain_resets_no_deferred_client)
{
	const char *args[] = {
		"-b",	      "127.0.0.1", "-s",
		"echo/tcp:0", "-o",	   "echo.defer_accept=30s",
		"--threads",  "1",	   "--drain-timeout",
		"30s",	      NULL
	};
	struct srv_stats st = { 0 };
	struct srv s;
	int quiet;

	cr_assert_eq(srv_start(&s, backend, 1, args), 0);
	quiet = silent_then_echo(&s, srv_port(&s, "echo", AF_INET));
	cr_assert_eq(accepted(&s), 1);
	kill(s.pid, SIGTERM);
	/* the kernel's next SYN-ACK comes a second after the SYN: the drain
	 * must still be on then, with the silent client taken in */
	for (int64_t end = now_ms() + 25000;
	     st.conns_accepted < 2 && now_ms() < end; usleep(20000))
		cr_assert_eq(srv_stats(&s, &st), 0,
			     "evringd ended its drain without the silent "
			     "client; log: %s",
			     srv_log(&s));
	cr_assert_eq(st.conns_accepted, 2, "log: %s", srv_log(&s));
	speak(&s, quiet);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

/* An inetd.conf serves echo over TCP and UDP as two services of one
 * name: -o echo.defer_accept is for the TCP one. */
BACKEND_TEST(defer, one_name_over_tcp_and_udp)
{
	char text[256];
	struct passwd *pw = getpwuid(geteuid());
	const char *extra[] = { "-o", "echo.defer_accept=30s", NULL };
	uint16_t port;
	struct srv s;
	int quiet;

	cr_assert_not_null(pw);
	close(bind_free(&port));
	snprintf(text, sizeof(text),
		 "127.0.0.1:\n"
		 "%u stream tcp nowait %s echo\n"
		 "%u dgram udp wait %s echo\n",
		 port, pw->pw_name, port, pw->pw_name);
	conf_start(&s, backend, conf_write(text), 2, extra);
	quiet = silent_then_echo(&s, port);
	cr_assert_eq(accepted(&s), 1);
	speak(&s, quiet);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

Test(defer_cli, bad_values_are_usage_errors)
{
	static const char *const cases[][3] = {
		{ "echo/tcp:0", "echo.defer_accept=soon", "expected off or" },
		{ "echo/tcp:0", "echo.defer_accept=2h", "up to 1h" },
		{ "echo/udp:0", "echo.defer_accept=5s", "not served over TCP" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[] = { "-b", "127.0.0.1", "-s", cases[i][0],
				       "-o", cases[i][1], NULL };

		assert_usage_error(args, cases[i][2]);
	}
}
