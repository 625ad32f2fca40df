/* SPDX-License-Identifier: MIT */
/*
 * test_mux.c - tcpmux/NAME services of evringd (mux.c), asked with nc
 * and socat as users ask, on both backends: a program (/bin/date) behind
 * tcpmux/+date, a built-in (echo) and a loaded module (rot13) handed the
 * connection itself, with what the client sent after the name; HELP; a
 * program that answers for itself and is given nothing but its socket; a
 * client that does not wait for the reply; -t on the mistakes.
 */
#include "evd_conf.h"

#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *me(void)
{
	struct passwd *pw = getpwuid(geteuid());

	cr_assert_not_null(pw);
	return pw->pw_name;
}

static void start_mux(struct srv *s, const char *backend)
{
	char text[2048], so[512];
	const char *dir = getenv("EVRING_BUILD");

	snprintf(so, sizeof(so), "%s/examples/rot13.so",
		 dir && *dir ? dir : "build");
	snprintf(text, sizeof(text),
		 "#@ module=%s\n"
		 "127.0.0.1:\n"
		 "0 stream tcp nowait %s tcpmux\n"
		 "tcpmux/+date stream tcp nowait %s /bin/date date\n"
		 "tcpmux/echo stream tcp nowait %s internal\n"
		 "#@ numbered=no\n"
		 "tcpmux/+Rot stream tcp nowait %s rot13\n"
		 "tcpmux/inspect stream tcp nowait %s %s inspect\n",
		 so, me(), me(), me(), me(), me(), tool("child-report"));
	conf_start(s, backend, conf_write(text), 1, NULL);
}

/* The client's words through a shell pipe into nc or socat. */
static void ask(const char *client, const char *say, uint16_t port, char *out,
		size_t cap)
{
	char cmd[512];
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };

	if (!strcmp(client, "nc"))
		snprintf(cmd, sizeof(cmd), "printf '%s' | nc -q 5 127.0.0.1 %u",
			 say, port);
	else
		snprintf(cmd, sizeof(cmd),
			 "printf '%s' | socat -t 5 - TCP:127.0.0.1:%u", say,
			 port);
	cr_assert_eq(run_capture(argv, out, cap, 20000), 0, "%s: %s", cmd, out);
}

BACKEND_TEST(mux, a_program_behind_tcpmux_plus_through_nc)
{
	char out[512], year[8];
	time_t t = time(NULL);
	struct srv s;

	start_mux(&s, backend);
	ask("nc", "date\\r\\n", srv_port(&s, "tcpmux", AF_INET), out,
	    sizeof(out));
	cr_assert_eq(strncmp(out, "+Go\r\n", 5), 0, "%s", out);
	strftime(year, sizeof(year), "%Y", gmtime(&t));
	cr_assert(strstr(out + 5, year), "not a date: %s", out);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

/* The bytes after the name line, in the same segment, reach the module
 * the connection is handed to. */
BACKEND_TEST(mux, builtin_and_loaded_modules_through_socat)
{
	char out[512];
	struct srv s;
	uint16_t port;

	start_mux(&s, backend);
	port = srv_port(&s, "tcpmux", AF_INET);
	ask("socat", "ECHO\\r\\nhello, echo\\n", port, out, sizeof(out));
	cr_assert_str_eq(out, "hello, echo\n");
	ask("socat", "rot\\nHello\\nWorld\\n", port, out, sizeof(out));
	cr_assert_str_eq(out, "+Go\r\nUryyb\nJbeyq\n");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

BACKEND_TEST(mux, help_lists_every_service_through_nc)
{
	char out[512];
	struct srv s;

	start_mux(&s, backend);
	ask("nc", "HELP\\r\\n", srv_port(&s, "tcpmux", AF_INET), out,
	    sizeof(out));
	cr_assert_str_eq(out, "date\r\necho\r\nRot\r\ninspect\r\n");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

/* Without '+' the program answers for itself; it has its socket as 0, 1
 * and 2, nothing more, and is told which service it is. */
BACKEND_TEST(mux, a_program_without_plus_gets_only_its_socket)
{
	char out[8192];
	struct srv s;

	start_mux(&s, backend);
	ask("socat", "inspect\\r\\n", srv_port(&s, "tcpmux", AF_INET), out,
	    sizeof(out));
	cr_assert_eq(strncmp(out, "fd 0\nfd 1\nfd 2\nenv ", 19), 0, "%s", out);
	cr_assert(strstr(out, "env EVRINGD_SERVICE=inspect\n"), "%s", out);
	cr_assert(strstr(out, "env REMOTE_ADDR=127.0.0.1\n"), "%s", out);
	cr_assert(strstr(out, "\nend\n"), "%s", out);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

/* A program cannot be given bytes evringd has read: a client that sends
 * data before the reply is told so. */
BACKEND_TEST(mux, a_client_that_does_not_wait_is_told_so)
{
	char out[512];
	struct srv s;

	start_mux(&s, backend);
	ask("nc", "date\\r\\ntoo early\\n", srv_port(&s, "tcpmux", AF_INET),
	    out, sizeof(out));
	cr_assert_str_eq(out, "-Wait for the reply before sending data\r\n");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

Test(mux, check_refuses_tcpmux_mistakes)
{
	static const struct {
		const char *text;
		const char *msg;
	} cases[] = {
		{ "tcpmux/+date stream tcp nowait %s /bin/date date\n",
		  ":1: no tcpmux service to reach tcpmux/date through" },
		{ "tcpmux stream tcp nowait %s internal\n"
		  "tcpmux/echo stream tcp nowait %s internal\n"
		  "tcpmux/ECHO stream tcp nowait %s echo\n",
		  ":3: tcpmux service \"ECHO\" is declared twice" },
		{ "tcpmux stream tcp nowait %s internal\n"
		  "tcpmux/+date dgram udp wait %s /bin/date date\n",
		  ":2: field 4 \"wait\": a tcpmux service is a nowait stream "
		  "service" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512], out[4096];
		const char *path;

		snprintf(text, sizeof(text), cases[i].text, me(), me(), me());
		path = conf_write(text);
		const char *argv[] = { "-t", "-f", path, NULL };
		cr_assert_eq(evringd_run(argv, out, sizeof(out)), 2, "%s", out);
		cr_assert(strstr(out, cases[i].msg), "%s", out);
	}
}
