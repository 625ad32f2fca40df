/* SPDX-License-Identifier: MIT */
/*
 * test_systemd.c - evringd under systemd, without systemd as PID 1.
 *
 * sd_notify: the test listens on an AF_UNIX datagram socket (a path, or
 * an abstract name) and passes it as $NOTIFY_SOCKET, as the service
 * manager does; READY=1, STATUS=, STOPPING=1 and WATCHDOG=1 must arrive
 * when they should. The units shipped in docs/systemd/ must pass
 * `systemd-analyze verify` (with their man pages installed in a scratch
 * MANPATH, since Documentation= is checked too).
 */
#include "harness.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- a notify socket ---- */

struct notify {
	int fd;
	char dir[64];
	char env[100]; /* the value of NOTIFY_SOCKET */
};

/* abstract: "@evring-notify-PID" in the abstract namespace. */
static void notify_open(struct notify *n, bool abstract)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };
	socklen_t len;

	n->dir[0] = '\0';
	if (abstract) {
		snprintf(n->env, sizeof(n->env), "@evring-notify-%d-%ld",
			 (int)getpid(), (long)now_ms());
		memcpy(sun.sun_path, n->env, strlen(n->env));
		sun.sun_path[0] = '\0';
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				  strlen(n->env));
	} else {
		snprintf(n->dir, sizeof(n->dir), "/tmp/evring-notify-XXXXXX");
		cr_assert_not_null(mkdtemp(n->dir));
		snprintf(n->env, sizeof(n->env), "%s/notify", n->dir);
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", n->env);
		len = sizeof(sun);
	}
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(n->fd, 0);
	cr_assert_eq(bind(n->fd, (struct sockaddr *)&sun, len), 0, "bind: %s",
		     strerror(errno));
	setsockopt(n->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setenv("NOTIFY_SOCKET", n->env, 1);
}

static void notify_close(struct notify *n)
{
	char path[128];

	close(n->fd);
	if (n->dir[0]) {
		snprintf(path, sizeof(path), "%s/notify", n->dir);
		unlink(path);
		rmdir(n->dir);
	}
	unsetenv("NOTIFY_SOCKET");
}

/* The next datagram that contains key (earlier ones are dropped), in msg;
 * 0, or -1 after timeout_ms. */
static int notify_wait(struct notify *n, const char *key, char *msg, size_t len,
		       int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (now_ms() < deadline) {
		ssize_t r = recv(n->fd, msg, len - 1, 0);

		if (r < 0)
			continue;
		msg[r] = '\0';
		if (strstr(msg, key))
			return 0;
	}
	return -1;
}

/* The value of "KEY=" in a datagram, up to the end of its line. */
static const char *field(const char *msg, const char *key)
{
	static char val[512];
	const char *p = strstr(msg, key);

	val[0] = '\0';
	if (p) {
		p += strlen(key);
		snprintf(val, sizeof(val), "%.*s", (int)strcspn(p, "\n"), p);
	}
	return val;
}

static void notify_lifecycle(const char *backend, bool abstract)
{
	static const char *const svcs[] = { "echo", "daytime", NULL };
	struct notify n;
	struct srv s;
	char msg[1024];

	notify_open(&n, abstract);
	cr_assert_eq(srv_start_services(&s, backend, svcs), 0);
	cr_assert_eq(notify_wait(&n, "READY=1", msg, sizeof(msg), 10000), 0,
		     "no READY=1 on %s", n.env);
	/* every listener was open when READY came */
	for (int i = 0; i < s.nls; i++) {
		int fd = tcp_connect(s.ls[i].family, s.ls[i].port);

		cr_assert_geq(fd, 0, "listener %d not open at READY", i);
		close(fd);
	}
	cr_assert_str_eq(field(msg, "STATUS="),
			 strcmp(s.backend, "io_uring")
			     ? "echo, daytime on 4 sockets (epoll); 0 "
			       "connections open, 0 accepted"
			     : "echo, daytime on 4 sockets (io_uring); 0 "
			       "connections open, 0 accepted",
			 "%s", msg);
	cr_assert_eq(atoi(field(msg, "MAINPID=")), s.pid, "%s", msg);

	cr_assert_eq(kill(s.pid, SIGTERM), 0);
	cr_assert_eq(notify_wait(&n, "STOPPING=1", msg, sizeof(msg), 10000), 0,
		     "no STOPPING=1");
	cr_assert(strstr(field(msg, "STATUS="), "draining"), "%s", msg);
	/* no second signal: it would stop evringd at once (or, once the
	 * loop is freed, kill it) */
	cr_assert_eq(srv_stop(&s, 0, 10000), 0);
	notify_close(&n);
}

BACKEND_TEST(notify, ready_when_listening_stopping_on_drain)
{
	notify_lifecycle(backend, false);
}

BACKEND_TEST(notify, abstract_socket)
{
	notify_lifecycle(backend, true);
}

BACKEND_TEST(notify, watchdog_pings_from_the_loop)
{
	static const char *const svcs[] = { "echo", NULL };
	struct notify n;
	struct srv s;
	char msg[1024];

	notify_open(&n, false);
	setenv("WATCHDOG_USEC", "100000", 1);
	cr_assert_eq(srv_start_services(&s, backend, svcs), 0);
	cr_assert_eq(notify_wait(&n, "READY=1", msg, sizeof(msg), 10000), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(
		    notify_wait(&n, "WATCHDOG=1", msg, sizeof(msg), 10000), 0,
		    "watchdog ping %d missing", i);
	cr_assert(strstr(field(msg, "STATUS="), "echo on 2 sockets"), "%s",
		  msg);
	/* a stopped loop stops the pings */
	cr_assert_eq(kill(s.pid, SIGSTOP), 0);
	usleep(300 * 1000);
	while (recv(n.fd, msg, sizeof(msg), MSG_DONTWAIT) > 0)
		;
	cr_assert_neq(notify_wait(&n, "WATCHDOG=1", msg, sizeof(msg), 500), 0,
		      "pinged while stopped");
	cr_assert_eq(kill(s.pid, SIGCONT), 0);
	cr_assert_eq(notify_wait(&n, "WATCHDOG=1", msg, sizeof(msg), 10000), 0,
		     "no ping after SIGCONT");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	unsetenv("WATCHDOG_USEC");
	notify_close(&n);
}

/* WATCHDOG_PID names another process (the variables were meant for a
 * parent): no pings. */
BACKEND_TEST(notify, watchdog_of_another_pid_is_not_ours)
{
	static const char *const svcs[] = { "echo", NULL };
	struct notify n;
	struct srv s;
	char msg[1024];

	notify_open(&n, false);
	setenv("WATCHDOG_USEC", "50000", 1);
	setenv("WATCHDOG_PID", "1", 1);
	cr_assert_eq(srv_start_services(&s, backend, svcs), 0);
	cr_assert_eq(notify_wait(&n, "READY=1", msg, sizeof(msg), 10000), 0);
	cr_assert_neq(notify_wait(&n, "WATCHDOG=1", msg, sizeof(msg), 1000), 0,
		      "pinged for pid 1's watchdog");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	notify_close(&n);
}

/* No NOTIFY_SOCKET: nothing changes (every other test runs so too); a
 * NOTIFY_SOCKET that is not a path is refused with a warning, and evringd
 * serves. */
BACKEND_TEST(notify, bad_notify_socket_is_logged_and_ignored)
{
	static const char *const svcs[] = { "echo", NULL };
	struct srv s;
	struct srv_stats st;

	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	cr_assert_eq(srv_start_services(&s, backend, svcs), 0);
	cr_assert_eq(srv_stats(&s, &st), 0);
	cr_assert(srv_log_has(&s, "NOTIFY_SOCKET vsock:2:1234: not a path"),
		  "%s", srv_log(&s));
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	unsetenv("NOTIFY_SOCKET");
}

/* ---- the unit files ---- */

static const char *src_dir(void)
{
	static char dir[4096];
	const char *e = getenv("EVRING_SRC");

	if (e && *e)
		return e;
	if (access("core/evring.h", R_OK) == 0 && getcwd(dir, sizeof(dir)))
		return dir;
	return NULL;
}

/* The directory of the evringd under test, absolute. */
static const char *dirname_of_evringd(void)
{
	static char dir[4096];
	char *slash;

	if (!realpath(evringd_path(), dir))
		snprintf(dir, sizeof(dir), "%s", evringd_path());
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	return dir;
}

/*
 * docs/systemd/ as make install-systemd writes them (ExecStart is the
 * evringd under test), with evringd(8) in a scratch MANPATH (Documentation=
 * is checked): `systemd-analyze verify` must accept them without a word.
 */
Test(units, systemd_analyze_verify_accepts_them, .timeout = 120)
{
	char dir[] = "/tmp/evring-units-XXXXXX", script[2048], out[8192];
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	const char *probe[] = { "systemd-analyze", "--version", NULL };
	int rc;

	if (!src_dir())
		cr_skip_test("not run from the source tree (set EVRING_SRC)");
	if (run_capture(probe, out, sizeof(out), 10000) != 0)
		cr_skip_test("systemd-analyze cannot run here: %s", out);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(script, sizeof(script),
		 "unset MAKEFLAGS MFLAGS MAKELEVEL; set -e; "
		 "make -C '%s' --no-print-directory -s install-systemd "
		 "DESTDIR='%s' SYSTEMDUNITDIR=/units SBINDIR='%s' >/dev/null; "
		 "mkdir -p '%s/man/man8'; "
		 "cp '%s/docs/man/evringd.8' '%s/man/man8/'; "
		 "grep -q '^ExecStart=%s/evringd ' '%s/units/evringd.service'; "
		 "cd '%s/units'; ls; MANPATH='%s/man' systemd-analyze verify "
		 "*.service *.socket 2>&1",
		 src_dir(), dir, dirname_of_evringd(), dir, src_dir(), dir,
		 dirname_of_evringd(), dir, dir, dir);
	rc = run_capture(argv, out, sizeof(out), 50000);
	{
		char rm[128];

		snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
		if (system(rm) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	if (rc != 0 && strstr(out, "Failed to initialize manager"))
		cr_skip_test("systemd-analyze verify cannot run here: %s", out);
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert_str_eq(out, "evringd.service\nevringd.socket\n",
			 "the units, and not a word more:\n%s", out);
}
