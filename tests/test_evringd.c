/* SPDX-License-Identifier: MIT */
/*
 * test_evringd.c - the daemon's command line: one clear line and a distinct
 * exit status for each kind of bad input (2: usage, 1: run time), the
 * listener lines, the port offset, default addresses, and clean stops.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char out[16384];

static int run(const char *const *args)
{
	const char *argv[32];
	int n = 0;

	argv[n++] = evringd_path();
	for (; *args; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	return run_capture(argv, out, sizeof(out), 20000);
}

#define RUN(...) run((const char *const[]){ __VA_ARGS__, NULL })

Test(evringd_cli, help_and_version)
{
	cr_assert_eq(RUN("--help"), 0);
	cr_assert(strstr(out, "usage: evringd"));
	cr_assert(strstr(out, "echo") && strstr(out, "daytime"));
	cr_assert(strstr(out, "--port-offset"));
	cr_assert_eq(RUN("--version"), 0);
	cr_assert(strstr(out, "evringd 0."), "%s", out);
}

Test(evringd_cli, usage_errors_exit_2_with_the_cause)
{
	static const struct {
		const char *args[6];
		const char *says;
	} cases[] = {
		{ { "-b", "127.0.0.1", NULL }, "no service given" },
		{ { "-s", "nosuch", NULL }, "unknown service \"nosuch\"" },
		{ { "-s", "echo:70000", NULL }, "bad port \"70000\"" },
		{ { "-s", "echo/sctp", NULL }, "protocol \"sctp\"" },
		{ { "-s", "echo", "-s", "echo", NULL }, "given twice" },
		{ { "-s", "echo:0", "-b", "nowhere", NULL },
		  "not a numeric IPv4 or IPv6 address" },
		{ { "-s", "echo", "--port-offset", "x", NULL },
		  "--port-offset \"x\"" },
		{ { "-s", "echo:65535", "--port-offset", "1", NULL },
		  "out of range" },
		{ { "-s", "echo", "--backend=bogus", NULL },
		  "backend \"bogus\": unknown" },
		{ { "-s", "daytime", "-o", "daytime.bogus=1", NULL },
		  "has no option \"bogus\"" },
		{ { "-s", "daytime", "-o", "daytime.tz=mars", NULL },
		  "bad value \"mars\"" },
		{ { "-s", "echo", "-o", "echo.x=1", NULL }, "it has none" },
		{ { "-s", "echo", "-o", "daytime.tz=utc", NULL },
		  "service daytime is not served" },
		{ { "-s", "echo", "--bogus", NULL },
		  "unknown option \"--bogus\"" },
		{ { "-s", "echo", "-Z", NULL }, "unknown option \"-Z\"" },
		{ { "-s", NULL }, "missing argument" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run(cases[i].args);

		cr_assert_eq(rc, 2, "case %zu: exit %d, output: %s", i, rc,
			     out);
		cr_assert(strstr(out, cases[i].says),
			  "case %zu: expected \"%s\" in: %s", i, cases[i].says,
			  out);
		cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1,
			     "case %zu: more than one line: %s", i, out);
	}
}

static int listen_on(uint16_t *port)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	socklen_t len = sizeof(in);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	cr_assert_eq(listen(fd, 8), 0);
	getsockname(fd, (struct sockaddr *)&in, &len);
	*port = ntohs(in.sin_port);
	return fd;
}

BACKEND_TEST(evringd, port_in_use_exits_1)
{
	char spec[32], be[32], says[96];
	uint16_t port;
	int fd = listen_on(&port);

	snprintf(spec, sizeof(spec), "echo:%u", port);
	snprintf(be, sizeof(be), "--backend=%s", backend);
	cr_assert_eq(RUN(be, "-b", "127.0.0.1", "-s", spec), 1, "%s", out);
	snprintf(says, sizeof(says),
		 "bind 127.0.0.1:%u (echo/tcp): Address already in use", port);
	cr_assert(strstr(out, says), "expected \"%s\" in: %s", says, out);
	close(fd);
}

/*
 * A copy of evringd in a fresh directory under /tmp that user 65534 can
 * enter: the checkout may lie where that user cannot (/root). evringd
 * links libevring statically and its other libraries from the system, so
 * the binary alone is enough. 0, or -errno with the failing call in why.
 */
static int copy_for_nobody(char *dir, char *path, size_t len, char *why,
			   size_t wlen)
{
	char buf[65536];
	int src, dst, err = 0;
	ssize_t n;

	snprintf(dir, len, "/tmp/evring-test-XXXXXX");
	if (!mkdtemp(dir)) {
		err = -errno;
		snprintf(why, wlen, "mkdtemp /tmp: %s", strerror(-err));
		return err;
	}
	snprintf(path, len, "%s/evringd", dir);
	src = open(evringd_path(), O_RDONLY | O_CLOEXEC);
	if (src < 0) {
		err = -errno;
		snprintf(why, wlen, "open %s: %s", evringd_path(),
			 strerror(-err));
		goto out_rmdir;
	}
	dst = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	if (dst < 0) {
		err = -errno;
		snprintf(why, wlen, "create %s: %s", path, strerror(-err));
		goto out_close_src;
	}
	errno = 0;
	while ((n = read(src, buf, sizeof(buf))) > 0)
		if (write(dst, buf, (size_t)n) != n) {
			n = -1;
			break;
		}
	/* the umask may have taken bits away */
	if (n < 0 || fchmod(dst, 0755) < 0 || chmod(dir, 0755) < 0) {
		err = errno ? -errno : -EIO;
		snprintf(why, wlen, "copy %s to %s: %s", evringd_path(), path,
			 strerror(-err));
	}
	close(dst);
	if (err)
		unlink(path);
out_close_src:
	close(src);
out_rmdir:
	if (err)
		rmdir(dir);
	return err;
}

BACKEND_TEST(evringd, privileged_port_as_user_exits_1_with_hint)
{
	char be[32], buf[8] = "", dir[64], copy[64], why[256];
	int fd =
	    open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_RDONLY);
	int p[2], status;
	bool as_root = getuid() == 0;
	const char *prog = evringd_path();
	size_t len = 0;
	pid_t pid;

	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);

		buf[n > 0 ? n : 0] = '\0';
		close(fd);
		if (atoi(buf) <= 7)
			cr_skip_test("ports below %s are not privileged here",
				     buf);
	}
	/* As root the test becomes user 65534 to run the binary. */
	if (as_root) {
		if (copy_for_nobody(dir, copy, sizeof(dir), why, sizeof(why)))
			cr_skip_test("no copy of evringd that user 65534 can "
				     "run: %s",
				     why);
		prog = copy;
	}
	snprintf(be, sizeof(be), "--backend=%s", backend);
	cr_assert_eq(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		if (as_root &&
		    (setgroups(0, NULL) || setgid(65534) || setuid(65534)))
			_exit(99);
		execl(prog, prog, be, "-b", "127.0.0.1", "-s", "echo",
		      (char *)NULL);
		dprintf(2, "exec %s as uid %d: %s\n", prog, (int)getuid(),
			strerror(errno));
		_exit(98);
	}
	close(p[1]);
	for (ssize_t n; (n = read(p[0], out + len, sizeof(out) - 1 - len)) > 0;)
		len += (size_t)n;
	out[len] = '\0';
	close(p[0]);
	waitpid(pid, &status, 0);
	if (as_root) {
		unlink(copy);
		rmdir(dir);
	}
	cr_assert(WIFEXITED(status));
	/* Not evringd's doing: /tmp mounted noexec, say, or io_uring
	 * limited to a group (kernel.io_uring_disabled=1). */
	if (as_root && WEXITSTATUS(status) == 98)
		cr_skip_test("user 65534 cannot run a copy of evringd: %s",
			     out);
	if (as_root && strstr(out, "backend io_uring cannot run here"))
		cr_skip_test("user 65534 cannot use io_uring: %s", out);
	cr_assert_eq(WEXITSTATUS(status), 1, "exit %d: %s", WEXITSTATUS(status),
		     out);
	cr_assert(strstr(out, "bind 127.0.0.1:7 (echo/tcp): Permission "
			      "denied"),
		  "%s", out);
	cr_assert(strstr(out, "--port-offset"), "no hint in: %s", out);
}

BACKEND_TEST(evringd, port_offset_shifts_the_services_port)
{
	char off[16];
	uint16_t port;
	int fd = listen_on(&port);
	struct srv s;

	close(fd); /* a port that was free a moment ago */
	snprintf(off, sizeof(off), "%d", (int)port - 7);
	const char *argv[] = { "-b", "127.0.0.1", "-s", "echo", "--port-offset",
			       off,  NULL };
	cr_assert_eq(srv_start(&s, backend, 1, argv), 0, "%s", srv_log(&s));
	cr_assert_eq(srv_port(&s, "echo", AF_INET), port);
	fd = tcp_connect(AF_INET, port);
	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(srv_stop(&s, SIGINT, 10000), 0);
}

BACKEND_TEST(evringd, default_addresses_are_all_ipv4_and_ipv6)
{
	const char *argv[] = { "-s", "echo:0", "-s", "daytime:0", NULL };
	struct srv s;
	int v4 = 0, v6 = 0, udp = 0;

	/* echo and daytime have TCP and UDP: 2 x 2 x 2 sockets */
	cr_assert_eq(srv_start(&s, backend, 8, argv), 0);
	for (int i = 0; i < s.nls; i++) {
		v4 += s.ls[i].family == AF_INET;
		v6 += s.ls[i].family == AF_INET6;
		udp += !strcmp(s.ls[i].proto, "udp");
	}
	cr_assert_eq(v4, 4);
	cr_assert_eq(v6, 4);
	cr_assert_eq(udp, 4);
	/* 0.0.0.0 and [::] answer on the loopback addresses */
	for (int i = 0; i < s.nls; i++) {
		if (strcmp(s.ls[i].proto, "tcp"))
			continue;
		int fd = tcp_connect(s.ls[i].family, s.ls[i].port);

		cr_assert_geq(fd, 0, "listener %d", i);
		close(fd);
	}
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

BACKEND_TEST(evringd, backend_is_logged_and_forced)
{
	const char *argv[] = { "-b", "127.0.0.1", "-s", "echo/tcp:0", NULL };
	struct srv s;

	cr_assert_eq(srv_start(&s, backend, 1, argv), 0);
	cr_assert_str_eq(s.backend, backend);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	char says[64];
	snprintf(says, sizeof(says), "backend %s", backend);
	cr_assert(srv_log_has(&s, says), "log: %s", srv_log(&s));
}
