/* SPDX-License-Identifier: MIT */
/*
 * test_module.c - modules loaded from shared objects (modload.c), on
 * both backends: examples/rot13, built as build/examples/rot13.so, is
 * served by evringd like a built-in module, from --module and from a
 * `#@ module=` line, with its own option and the limits every service
 * takes; a module built for another ABI, one that is not a module and
 * one that calls a function evringd does not have are refused with a
 * message at start and at -t, never run (each would crash if it were);
 * a reload keeps a loaded module.
 */
#include "evd_conf.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *rot13_so(void)
{
	static char path[512];
	const char *dir = getenv("EVRING_BUILD");

	snprintf(path, sizeof(path), "%s/examples/rot13.so",
		 dir && *dir ? dir : "build");
	return path;
}

static const char *me(void)
{
	struct passwd *pw = getpwuid(geteuid());

	cr_assert_not_null(pw);
	return pw->pw_name;
}

BACKEND_TEST(module, a_shared_object_is_served_like_a_builtin)
{
	const char *argv[] = {
		"--module", rot13_so(),		 "-b", "127.0.0.1",
		"-s",	    "rot13/tcp:0",	 "-o", "rot13.numbered=no",
		"-o",	    "rot13.max_conns=1", NULL
	};
	struct srv_stats st;
	char buf[128];
	struct srv s;
	uint16_t port;
	int held, again;

	cr_assert_eq(srv_start(&s, backend, 1, argv), 0);
	port = srv_port(&s, "rot13", AF_INET);
	cr_assert_eq(tcp_ask(AF_INET, port, "Hello, World\n", buf, sizeof(buf)),
		     13);
	cr_assert_str_eq(buf, "Uryyb, Jbeyq\n");
	cr_assert(srv_log_has(&s, "module rot13 loaded from"), "%s",
		  srv_log(&s));
	/* a limit every service takes: one connection at once (the first
	 * one counts until its loop frees it, a moment after our EOF, maybe
	 * on the other loop than the next one lands on) */
	cr_assert_eq(srv_wait_idle(&s, &st, 5000), 0);
	held = tcp_connect(AF_INET, port);
	cr_assert_geq(held, 0);
	cr_assert_eq(write_all(held, "a\n", 2), 0);
	cr_assert_eq(read_exact(held, buf, 2), 2);
	again = tcp_connect(AF_INET, port);
	cr_assert_geq(again, 0);
	cr_assert_eq(wait_closed(again, 5000), 1, "a second connection");
	cr_assert(log_wait(&s, "service limit of 1 reached", 5000), "%s",
		  srv_log(&s));
	close(again);
	close(held);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

Test(module, help_lists_a_loaded_module_and_its_options)
{
	const char *argv[] = { "--module", rot13_so(), "--help", NULL };
	char out[16384];

	cr_assert_eq(evringd_run(argv, out, sizeof(out)), 0, "%s", out);
	cr_assert(strstr(out, "rot13      each line back in ROT13"), "%s", out);
	cr_assert(strstr(out, "Options of rot13 (-o rot13.KEY=VALUE):"), "%s",
		  out);
}

/* The file's form: #@ module=PATH for the whole file; the module's
 * options and the limits in #@ lines of its service. */
BACKEND_TEST(module, a_file_loads_a_module_and_gives_it_options)
{
	char text[1024], buf[128];
	const char *path;
	struct srv s;
	uint16_t port;
	int idle;

	snprintf(text, sizeof(text),
		 "#@ module=%s\n"
		 "127.0.0.1:\n"
		 "#@ numbered=yes idle_timeout=300ms\n"
		 "0 stream tcp nowait %s rot13\n",
		 rot13_so(), me());
	path = conf_write(text);
	conf_start(&s, backend, path, 1, NULL);
	port = srv_port(&s, "rot13", AF_INET);
	cr_assert_eq(tcp_ask(AF_INET, port, "abc\nNOP\n", buf, sizeof(buf)),
		     12);
	cr_assert_str_eq(buf, "1 nop\n2 ABC\n");
	idle = tcp_connect(AF_INET, port);
	cr_assert_geq(idle, 0);
	cr_assert_eq(wait_closed(idle, 5000), 1, "idle_timeout");
	close(idle);
	/* a reload finds it loaded; the socket stays */
	kill(s.pid, SIGHUP);
	cr_assert_eq(srv_read_until(&s, "reload:", buf, sizeof(buf), 10000), 0);
	cr_assert(strstr(buf, "reload: 1 kept, 0 opened, 0 closed"), "%s", buf);
	cr_assert_eq(tcp_ask(AF_INET, port, "abc\n", buf, sizeof(buf)), 6);
	cr_assert_str_eq(buf, "1 nop\n");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

/* Each bad module is refused before anything of it runs: exit 2, a
 * message that says why, no listener. */
Test(module, a_module_of_another_abi_or_none_is_refused_not_run)
{
	static const struct {
		const char *so;
		const char *msg;
	} cases[] = {
		{ "module-bad-abi.so",
		  "built for module ABI 1001, this evringd" },
		{ "module-no-symbol.so",
		  "not an evring module: it exports no symbol evr_module" },
		{ "module-missing-call.so",
		  "undefined symbol: evr_no_such_function" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *so = tool(cases[i].so);
		const char *argv[] = { "--module", so,	    "-b", "127.0.0.1",
				       "-s",	   "bad:0", NULL };
		char out[4096], text[600], want[700];
		const char *path;

		cr_assert_eq(evringd_run(argv, out, sizeof(out)), 2, "%s: %s",
			     so, out);
		cr_assert(strstr(out, cases[i].msg), "%s: %s", so, out);
		cr_assert_null(strstr(out, "listen "), "%s", out);
		/* the file's form, checked with -t */
		snprintf(text, sizeof(text),
			 "# a module\n#@ module=%s\n"
			 "0 stream tcp nowait %s bad\n",
			 so, me());
		path = conf_write(text);
		const char *check[] = { "-t", "-f", path, NULL };
		cr_assert_eq(evringd_run(check, out, sizeof(out)), 2, "%s",
			     out);
		snprintf(want, sizeof(want), "%s:2: module \"%s\": ", path, so);
		cr_assert(strstr(out, want), "expected %s in %s", want, out);
		cr_assert(strstr(strstr(out, want), cases[i].msg), "%s", out);
	}
}

Test(module, check_accepts_a_file_with_a_module)
{
	char text[1024], out[4096];
	const char *path;

	snprintf(text, sizeof(text),
		 "#@ module=%s\n#@ numbered=no\n"
		 "0 stream tcp nowait %s rot13\n",
		 rot13_so(), me());
	path = conf_write(text);
	const char *argv[] = { "-t", "-f", path, NULL };
	cr_assert_eq(evringd_run(argv, out, sizeof(out)), 0, "%s", out);
	cr_assert(strstr(out, "configuration ok: 1 services"), "%s", out);
	/* a bare name is not searched for */
	snprintf(text, sizeof(text),
		 "#@ module=rot13.so\n0 stream tcp nowait %s rot13\n", me());
	path = conf_write(text);
	const char *bad[] = { "-t", "-f", path, NULL };
	cr_assert_eq(evringd_run(bad, out, sizeof(out)), 2, "%s", out);
	cr_assert(strstr(out, ":1: module \"rot13.so\": give a path"), "%s",
		  out);
}
