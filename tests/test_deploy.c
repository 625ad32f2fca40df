/* SPDX-License-Identifier: MIT */
/*
 * test_deploy.c - evring deployed as a Debian library and daemon.
 *
 * Install: `make install` into a scratch DESTDIR lays out the library
 * (libevring.a, libevring.so.VERSION with its .so.MAJOR and .so links),
 * the headers (<evring.h>, <evring/...>), evring.pc, the programs and the
 * man pages; a program copied out of the tree (tests/deploy/
 * installed_echo.c) builds with nothing but `pkg-config --cflags --libs
 * evring`, shared and static, and runs; `make uninstall` removes every
 * file install wrote.
 *
 * These tests run make and cc from the source tree: $EVRING_SRC, else the
 * current directory when it holds core/evring.h (`make test` runs there).
 * The tree's build directory is $EVRING_BUILD; nothing is rebuilt, and
 * everything written goes to a scratch directory under /tmp, removed
 * afterwards.
 *
 * Man pages: docs/man/ renders without a warning (mandoc -T lint, man
 * --warnings), and evring(3) names every function of the public headers.
 *
 * Signals: SIGHUP and SIGUSR2, which service managers and operators send,
 * never kill evringd.
 */
#include "harness.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Below the tests' timeout, which is BACKEND_TEST's (120 s) for every
 * test here: Criterion 2.4.1's runner leaks a timer when tests of
 * different timeouts run in parallel, and make check's LeakSanitizer
 * fails the program for it. */
#define SH_TIMEOUT_MS 100000

/* Built with sanitizers (make check): programs linked with the library
 * need them too, and make must use the same build directory. */
#if defined(__SANITIZE_ADDRESS__)
#define SAN_CFLAGS "-fsanitize=address,undefined "
#define SAN_MAKE   "SANITIZE=address,undefined "
#else
#define SAN_CFLAGS ""
#define SAN_MAKE   ""
#endif

static char scratch[64];

static void scratch_make(void)
{
	snprintf(scratch, sizeof(scratch), "/tmp/evring-deploy-XXXXXX");
	cr_assert_not_null(mkdtemp(scratch), "mkdtemp: %s", strerror(errno));
}

static void scratch_remove(void)
{
	char cmd[128];

	if (!scratch[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", scratch);
	scratch[0] = '\0';
}

static const char *src_dir(void)
{
	static char dir[PATH_MAX];
	const char *e = getenv("EVRING_SRC");

	if (e && *e)
		return e;
	if (access("core/evring.h", R_OK) == 0 && getcwd(dir, sizeof(dir)))
		return dir;
	return NULL;
}

static const char *build_dir(void)
{
	static char dir[PATH_MAX];
	const char *b = getenv("EVRING_BUILD");

	if (!b || !*b)
		b = "build";
	if (!realpath(b, dir))
		snprintf(dir, sizeof(dir), "%s", b);
	return dir;
}

/* Run a shell command (printf-formatted) with make's variables of a
 * surrounding make removed; output in out. Returns the exit status. */
static int sh(char *out, size_t outlen, const char *fmt, ...) EVR_PRINTF(3, 4);
static int sh(char *out, size_t outlen, const char *fmt, ...)
{
	char cmd[4096];
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	va_list ap;
	int n;

	n = snprintf(cmd, sizeof(cmd),
		     "unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES; ");
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	return run_capture(argv, out, outlen, SH_TIMEOUT_MS);
}

static void need_tools(const char *tools)
{
	char out[512];

	if (!src_dir())
		cr_skip_test("not run from the source tree (set EVRING_SRC)");
	if (sh(out, sizeof(out),
	       "for t in %s; do command -v $t >/dev/null "
	       "|| { echo $t; exit 1; }; done",
	       tools) != 0)
		cr_skip_test("%s is not installed (make deps installs it)",
			     out);
}

#define PREFIX "/opt/evring-test"

/* make install into scratch/dest with PREFIX; the tree must be built. */
static void install(void)
{
	static char out[65536];
	int rc;

	rc = sh(out, sizeof(out),
		"make -C '%s' --no-print-directory -s " SAN_MAKE
		"BUILD='%s' DESTDIR='%s/dest' PREFIX=" PREFIX " install",
		src_dir(), build_dir(), scratch);
	cr_assert_eq(rc, 0, "make install failed (%d):\n%s", rc, out);
}

static bool exists(const char *rel)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/dest%s", scratch, rel);
	return lstat(path, &st) == 0;
}

static void link_is(const char *rel, const char *target)
{
	char path[512], got[256];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/dest%s", scratch, rel);
	n = readlink(path, got, sizeof(got) - 1);
	cr_assert_gt(n, 0, "%s is not a symbolic link", rel);
	got[n] = '\0';
	cr_assert_str_eq(got, target, "%s points to %s", rel, got);
}

/* pkg-config on the staged install, as a packager's build uses it. */
#define PKGCONFIG                                                              \
	"PKG_CONFIG_PATH='%s/dest" PREFIX "/lib/pkgconfig' "                   \
	"PKG_CONFIG_SYSROOT_DIR='%s/dest' pkg-config"

Test(install, lays_out_library_headers_programs_and_pc, .timeout = 120,
     .fini = scratch_remove)
{
	static const char *const files[] = {
		PREFIX "/lib/libevring.a",
		PREFIX "/lib/libevring.so." EVR_VERSION,
		PREFIX "/include/evring.h",
		PREFIX "/include/evring/modules.h",
		PREFIX "/include/evring/builtin.def",
		PREFIX "/include/evring/line.h",
		PREFIX "/include/evring/daytime.h",
		PREFIX "/lib/pkgconfig/evring.pc",
		PREFIX "/sbin/evringd",
		PREFIX "/bin/evring-bench",
		PREFIX "/share/man/man8/evringd.8",
		PREFIX "/share/man/man1/evring-bench.1",
		PREFIX "/share/man/man3/evring.3",
		PREFIX "/share/man/man5/evringd.conf.5",
	};
	static char out[8192];
	char so[32];

	need_tools("make cc pkg-config readelf");
	scratch_make();
	install();
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		cr_expect(exists(files[i]), "%s was not installed", files[i]);
	snprintf(so, sizeof(so), "libevring.so.%d", EVR_VERSION_MAJOR);
	link_is(PREFIX "/lib/libevring.so", so);
	cr_assert_eq(sh(out, sizeof(out),
			"cd '%s/dest" PREFIX "/lib' && "
			"readlink libevring.so.%d && readelf "
			"-d libevring.so." EVR_VERSION,
			scratch, EVR_VERSION_MAJOR),
		     0, "%s", out);
	cr_expect(strstr(out, "libevring.so." EVR_VERSION "\n"),
		  "libevring.so.%d does not point to the versioned file: %s",
		  EVR_VERSION_MAJOR, out);
	cr_expect(strstr(out, "Library soname: [libevring.so.0]"),
		  "the soname is not libevring.so.0:\n%s", out);

	/* evring.pc: the version of the headers, the installed paths,
	 * nothing of DESTDIR */
	cr_assert_eq(sh(out, sizeof(out),
			"export PKG_CONFIG_PATH='%s/dest" PREFIX
			"/lib/pkgconfig'; for q in --modversion --cflags "
			"--libs --print-requires-private; do pkg-config $q "
			"evring || exit 1; done",
			scratch),
		     0, "%s", out);
	cr_expect(strstr(out, EVR_VERSION "\n"), "modversion: %s", out);
	cr_expect(strstr(out, "-I" PREFIX "/include"), "cflags: %s", out);
	cr_expect(strstr(out, "-L" PREFIX "/lib -levring"), "libs: %s", out);
	cr_expect(strstr(out, "liburing"), "requires.private: %s", out);
	cr_expect(!strstr(out, "/dest"), "DESTDIR leaked into evring.pc: %s",
		  out);

	/* the installed daemon runs and knows its version */
	cr_assert_eq(sh(out, sizeof(out),
			"'%s/dest" PREFIX "/sbin/evringd' --version", scratch),
		     0, "%s", out);
	cr_expect_str_eq(out, "evringd " EVR_VERSION "\n");
}

/* Build tests/deploy/installed_echo.c from a copy outside the tree with
 * the flags pkg-config gives (static: -Wl,-Bstatic around them), run it
 * against the staged library, and return readelf's NEEDED lines. */
static void build_and_run(bool static_link, char *needed, size_t len)
{
	static char out[16384];
	int rc;

	scratch_make();
	install();
	rc = sh(out, sizeof(out),
		"mkdir '%s/user' && cp '%s/tests/deploy/installed_echo.c' "
		"'%s/user/' && cd '%s/user' && cc " SAN_CFLAGS
		"-o installed_echo installed_echo.c $(" PKGCONFIG
		" --cflags evring) %s$(" PKGCONFIG " %s--libs evring)%s",
		scratch, src_dir(), scratch, scratch, scratch, scratch,
		static_link ? "-Wl,-Bstatic " : "", scratch, scratch,
		static_link ? "--static " : "",
		static_link ? " -Wl,-Bdynamic" : "");
	cr_assert_eq(rc, 0, "the out-of-tree build failed:\n%s", out);
	rc = sh(out, sizeof(out),
		"LD_LIBRARY_PATH='%s/dest" PREFIX "/lib' "
		"'%s/user/installed_echo'",
		scratch, scratch);
	cr_assert_eq(rc, 0, "installed_echo failed (%d):\n%s", rc, out);
	cr_expect(strstr(out, "echo ok, libevring " EVR_VERSION), "%s", out);
	rc = sh(needed, len,
		"readelf -d '%s/user/installed_echo' | grep NEEDED || true",
		scratch);
	cr_assert_eq(rc, 0, "readelf: %s", needed);
}

Test(install, program_built_with_pkg_config_runs_shared, .timeout = 120,
     .fini = scratch_remove)
{
	char needed[2048];

	need_tools("make cc pkg-config readelf");
	build_and_run(false, needed, sizeof(needed));
	cr_expect(strstr(needed, "[libevring.so.0]"),
		  "not linked against libevring.so.0:\n%s", needed);
}

Test(install, program_built_with_pkg_config_runs_static, .timeout = 120,
     .fini = scratch_remove)
{
	char needed[2048];

	need_tools("make cc pkg-config readelf");
	build_and_run(true, needed, sizeof(needed));
	cr_expect(!strstr(needed, "libevring"),
		  "static build still needs the shared library:\n%s", needed);
	cr_expect(!strstr(needed, "liburing"),
		  "pkg-config --static did not bring liburing's static "
		  "library:\n%s",
		  needed);
}

Test(install, uninstall_removes_every_file_install_wrote, .timeout = 120,
     .fini = scratch_remove)
{
	static char out[8192];
	int rc;

	need_tools("make find");
	scratch_make();
	install();
	rc = sh(out, sizeof(out),
		"make -C '%s' --no-print-directory -s " SAN_MAKE
		"BUILD='%s' DESTDIR='%s/dest' PREFIX=" PREFIX
		" uninstall >/dev/null && find '%s/dest' ! -type d",
		src_dir(), build_dir(), scratch, scratch);
	cr_assert_eq(rc, 0, "make uninstall failed:\n%s", out);
	cr_expect_str_empty(out, "left behind:\n%s", out);
}

Test(version, run_time_version_is_the_headers_version)
{
	char num[16];

	cr_assert_eq(evr_version(), (unsigned)EVR_VERSION_NUM);
	cr_assert_str_eq(evr_version_string(), EVR_VERSION);
	snprintf(num, sizeof(num), "%u.%u.%u", evr_version() >> 16,
		 (evr_version() >> 8) & 0xff, evr_version() & 0xff);
	cr_assert_str_eq(num, EVR_VERSION);
	cr_assert(EVR_VERSION_AT_LEAST(0, 1, 0));
	cr_assert(!EVR_VERSION_AT_LEAST(EVR_VERSION_MAJOR + 1, 0, 0));
}

/* ---- signals a daemon is sent ---- */

/*
 * inetd, xinetd and nginx take SIGHUP as "reload", and service managers
 * send it (ExecReload=kill -HUP): it must never kill evringd, nor must
 * SIGUSR2. Each is logged; the server goes on serving.
 */
BACKEND_TEST(signals, hup_and_usr2_are_logged_and_do_not_kill)
{
	static const char *const svcs[] = { "echo", NULL };
	static const int sigs[] = { SIGHUP, SIGUSR2, SIGHUP };
	struct srv s;
	char buf[8];
	int fd, before;

	cr_assert_eq(srv_start_services(&s, backend, svcs), 0);
	fd = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
	cr_assert_geq(fd, 0);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		int64_t deadline = now_ms() + 10000;

		before = count_substr(srv_log(&s), "\n");
		cr_assert_eq(kill(s.pid, sigs[i]), 0);
		while (count_substr(srv_log(&s), "\n") == before &&
		       now_ms() < deadline)
			usleep(5000);
		cr_assert_gt(count_substr(srv_log(&s), "\n"), before,
			     "%s was not logged:\n%s", strsignal(sigs[i]),
			     srv_log(&s));
		/* the connection opened before still echoes, and a new one
		 * is accepted */
		cr_assert_eq(xfer(fd, "ping", 4, buf, 4, false, 10000), 0,
			     "no echo after %s", strsignal(sigs[i]));
		cr_assert_eq(memcmp(buf, "ping", 4), 0);
		{
			int fd2 =
			    tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));

			cr_assert_geq(fd2, 0, "not accepting after %s",
				      strsignal(sigs[i]));
			cr_assert_eq(xfer(fd2, "pong", 4, buf, 4, true, 10000),
				     0);
			close(fd2);
		}
	}
	cr_assert(strstr(srv_log(&s), strsignal(SIGUSR2)), "%s", srv_log(&s));
	close(fd);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0,
		     "it must still stop cleanly");
}

/* ---- privileges ---- */

/*
 * A TCP port below 1024 free on 127.0.0.1, 0 if none, held for the test
 * in *hold: bound without SO_REUSEADDR, so that other tests looking for
 * one skip it, then marked SO_REUSEADDR and never listening, so that
 * evringd (whose listeners set SO_REUSEADDR) can still bind it
 * (inet_csk_bind_conflict). Close *hold once evringd listens.
 */
static uint16_t free_low_port(int *hold)
{
	int one = 1;

	for (uint16_t p = 1023; p > 600; p--) {
		struct sockaddr_storage ss;
		socklen_t len = loopback_addr(AF_INET, p, &ss);
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (bind(fd, (struct sockaddr *)&ss, len) == 0) {
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
				   sizeof(one));
			*hold = fd;
			return p;
		}
		close(fd);
	}
	return 0;
}

static long unprivileged_port_start(void)
{
	char buf[16] = "";
	FILE *f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "r");

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	return buf[0] ? atol(buf) : 1024;
}

/* The value of a "Key:" line of /proc/PID/status, or "". */
static const char *proc_status(pid_t pid, const char *key)
{
	static char val[128];
	char path[64], line[256];
	size_t klen = strlen(key);
	FILE *f;

	val[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return val;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			snprintf(val, sizeof(val), "%s", line + klen + 1);
			val[strcspn(val, "\n")] = '\0';
			break;
		}
	fclose(f);
	return val;
}

static void need_root_and_a_low_port(uint16_t *port, int *hold)
{
	if (geteuid() != 0)
		cr_skip_test("changing user needs root (make test as root "
			     "covers it)");
	if (unprivileged_port_start() <= 600)
		cr_skip_test("ports below 1024 are not privileged here "
			     "(ip_unprivileged_port_start=%ld): binding "
			     "first proves nothing",
			     unprivileged_port_start());
	*port = free_low_port(hold);
	if (!*port)
		cr_skip_test("no free port below 1024 on 127.0.0.1");
}

static void echoes(struct srv *s)
{
	char buf[4];
	int fd = tcp_connect(AF_INET, srv_port(s, "echo", AF_INET));

	cr_assert_geq(fd, 0);
	cr_assert_eq(xfer(fd, "ping", 4, buf, 4, true, 10000), 0);
	cr_assert_eq(memcmp(buf, "ping", 4), 0);
	close(fd);
}

/*
 * Started as root with --user nobody: the port below 1024 is bound first
 * (nobody could not bind it), then the process serving it runs as nobody,
 * with nobody's groups and no capability left.
 */
BACKEND_TEST(privileged, user_serves_after_binding_below_1024)
{
	char spec[32];
	const char *args[] = { "-b",	 "127.0.0.1", "-s", spec,
			       "--user", "nobody",    NULL };
	uint16_t port;
	struct srv s;
	int hold;

	need_root_and_a_low_port(&port, &hold);
	snprintf(spec, sizeof(spec), "echo/tcp:%u", port);
	cr_assert_eq(srv_start(&s, backend, 1, args), 0);
	close(hold);
	cr_assert_eq(srv_port(&s, "echo", AF_INET), port);
	cr_assert_lt(port, unprivileged_port_start());
	echoes(&s);
	cr_assert_str_eq(proc_status(s.pid, "Uid"),
			 "\t65534\t65534\t65534\t65534");
	cr_assert_str_eq(proc_status(s.pid, "Gid"),
			 "\t65534\t65534\t65534\t65534");
	cr_assert_str_eq(proc_status(s.pid, "CapEff"), "\t0000000000000000");
	cr_assert_str_eq(proc_status(s.pid, "CapPrm"), "\t0000000000000000");
	cr_assert_str_eq(proc_status(s.pid, "CapAmb"), "\t0000000000000000");
	cr_assert_null(strstr(proc_status(s.pid, "Groups"), " 0 "),
		       "root's group kept: %s", proc_status(s.pid, "Groups"));
	cr_assert(srv_log_has(&s, "privileges dropped after binding: uid "
				  "65534 (nobody)"),
		  "%s", srv_log(&s));
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

/*
 * What systemd's DynamicUser= with AmbientCapabilities=
 * CAP_NET_BIND_SERVICE gives: not root, one capability. It binds the port
 * below 1024 and is dropped as soon as every socket is open.
 */
BACKEND_TEST(privileged, ambient_bind_capability_is_dropped_after_binding)
{
	char spec[32], be[32];
	const char *args[] = { "setpriv",
			       "--reuid=65534",
			       "--regid=65534",
			       "--clear-groups",
			       "--inh-caps=+net_bind_service",
			       "--ambient-caps=+net_bind_service",
			       evringd_path(),
			       be,
			       "-b",
			       "127.0.0.1",
			       "-s",
			       spec,
			       NULL };
	uint16_t port;
	struct srv s;
	int hold;

	need_root_and_a_low_port(&port, &hold);
	if (access(evringd_path(), X_OK) != 0)
		cr_skip_test("%s is not executable", evringd_path());
	snprintf(spec, sizeof(spec), "echo/tcp:%u", port);
	snprintf(be, sizeof(be), "--backend=%s", backend);
	cr_assert_eq(srv_spawn(&s, 1, args), 0,
		     "as uid 65534 with CAP_NET_BIND_SERVICE (can uid 65534 "
		     "reach %s?)",
		     evringd_path());
	close(hold);
	cr_assert_eq(srv_port(&s, "echo", AF_INET), port);
	echoes(&s);
	cr_assert_str_eq(proc_status(s.pid, "Uid"),
			 "\t65534\t65534\t65534\t65534");
	cr_assert_str_eq(proc_status(s.pid, "CapEff"), "\t0000000000000000");
	cr_assert_str_eq(proc_status(s.pid, "CapPrm"), "\t0000000000000000");
	cr_assert_str_eq(proc_status(s.pid, "CapAmb"), "\t0000000000000000");
	cr_assert(srv_log_has(&s, "capabilities dropped after binding"), "%s",
		  srv_log(&s));
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

Test(privileges, unknown_user_or_group_is_a_usage_error_before_binding)
{
	static const char *const cases[][6] = {
		{ "--user", "no-such-user-evring", NULL, NULL,
		  "--user no-such-user-evring: no such user" },
		{ "--user", "nobody", "--group", "no-such-group-evring",
		  "--group no-such-group-evring: no such group" },
		{ "--group", "nogroup", NULL, NULL,
		  "--group nogroup: only with --user" },
	};
	char out[4096];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *argv[] = { evringd_path(), "-b",
				       "127.0.0.1",    "-s",
				       "echo/tcp:0",   cases[i][0],
				       cases[i][1],    cases[i][2],
				       cases[i][3],    NULL };

		cr_assert_eq(run_capture(argv, out, sizeof(out), 10000), 2,
			     "%s", out);
		cr_assert(strstr(out, cases[i][4]), "no \"%s\" in: %s",
			  cases[i][4], out);
		cr_assert_null(strstr(out, "listen "), "it bound: %s", out);
	}
}

/* Not root: another user is out of reach, and it says why. */
Test(privileges, another_user_without_root_exits_1)
{
	const char *direct[] = { evringd_path(), "-b",	   "127.0.0.1", "-s",
				 "echo/tcp:0",	 "--user", "root",	NULL };
	const char *as_nobody[] = { "setpriv",	     "--reuid=65534",
				    "--regid=65534", "--clear-groups",
				    evringd_path(),  "-b",
				    "127.0.0.1",     "-s",
				    "echo/tcp:0",    "--user",
				    "root",	     NULL };
	char out[4096];
	int rc;

	rc = run_capture(geteuid() == 0 ? as_nobody : direct, out, sizeof(out),
			 10000);
	if (rc == 127 || rc == 126)
		cr_skip_test("cannot run evringd as uid 65534: %s", out);
	cr_assert_eq(rc, 1, "%s", out);
	cr_assert(strstr(out, "--user root: evringd runs as uid"), "%s", out);
	cr_assert_null(strstr(out, "listen "), "it bound: %s", out);
}

/* ---- man pages ---- */

Test(man, pages_render_without_warnings, .timeout = 120)
{
	static char out[16384];
	int rc;

	need_tools("mandoc man");
	rc = sh(out, sizeof(out),
		"cd '%s/docs/man' && n=0 && for p in *.[1-8]; do "
		"n=$((n + 1)); mandoc -T lint -W warning $p || exit 1; "
		"LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l $p 2>&1 "
		">/dev/null || exit 1; done; echo pages=$n",
		src_dir());
	cr_assert_eq(rc, 0, "%s", out);
	/* evringd(8), evringd.conf(5), evring-bench(1), evring(3) */
	cr_assert_str_eq(out, "pages=4\n", "warnings, or not the 4 pages:\n%s",
			 out);
}

/* Every evr_ function of the headers make install installs is on
 * evring(3). */
Test(man, evring_3_names_every_public_function, .timeout = 120,
     .fini = scratch_remove)
{
	static char out[16384];
	int rc;

	need_tools("make sed");
	scratch_make();
	install();
	rc = sh(out, sizeof(out),
		"cd '%s/dest" PREFIX "/include' && ls evring.h evring/*.h "
		">/dev/null && sed -n "
		"'s/^[a-z][^(]*[ *]\\(evr_[a-z0-9_]*\\)(.*/\\1/p' "
		"evring.h evring/*.h | sort -u | while read f; do "
		"grep -q \"^\\.Fn $f\\( \\|$\\)\" '%s/docs/man/evring.3' || "
		"echo \"missing: $f\"; done; echo checked",
		scratch, src_dir());
	cr_assert_eq(rc, 0, "%s", out);
	cr_assert_str_eq(out, "checked\n", "%s", out);
}
