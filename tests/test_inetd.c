/* SPDX-License-Identifier: MIT */
/*
 * test_inetd.c - evringd as an inetd: the configuration file (-f), its
 * check (-t), every built-in service served from a real inetd.conf over
 * TCP and UDP, IPv4 and IPv6, on both backends.
 *
 * Files that name services by name use their /etc/services ports shifted
 * by a random --port-offset (tests run side by side), below the ephemeral
 * range that client sockets take their ports from; a start that finds a
 * port taken tries another offset.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const int families[] = { AF_INET, AF_INET6 };

/* ---- helpers ---- */

static char conf_paths[16][64];
static int nconf_paths;

static void remove_confs(void)
{
	while (nconf_paths)
		unlink(conf_paths[--nconf_paths]);
}

/* A file holding text, removed when the test process exits. */
static const char *write_conf(const char *text)
{
	char *path;
	int fd;

	cr_assert_lt(nconf_paths, 16);
	path = conf_paths[nconf_paths];
	snprintf(path, 64, "/tmp/evring-conf-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	if (nconf_paths++ == 0)
		atexit(remove_confs);
	return path;
}

/* Run evringd with args to its end; its exit status, output in out. */
static int run_evringd(const char *const *args, char *out, size_t cap)
{
	const char *argv[32] = { evringd_path() };
	int n = 1;

	for (; *args && n < 31; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	return run_capture(argv, out, cap, 20000);
}

/* Start evringd on the file text with nls listeners, the ports of named
 * services shifted by a random offset; more arguments in extra. */
static void start_conf(struct srv *s, const char *backend, const char *text,
		       int nls, const char *const *extra)
{
	const char *path = write_conf(text);

	srand((unsigned)getpid() ^ (unsigned)now_ms());
	for (int attempt = 0; attempt < 8; attempt++) {
		char off[16];
		const char *argv[32] = { "-f", path, "--port-offset", off };
		int n = 4;

		snprintf(off, sizeof(off), "%d", 10000 + rand() % 22000);
		for (const char *const *e = extra; e && *e; e++)
			argv[n++] = *e;
		argv[n] = NULL;
		if (srv_start(s, backend, nls, argv) == 0)
			return;
	}
	cr_assert_fail("evringd did not start on %s", path);
}

static ssize_t udp_ask(int family, uint16_t port, const void *req, size_t n,
		       char *reply, size_t cap)
{
	struct timeval tv = { .tv_sec = 2 };
	struct sockaddr_storage ss;
	socklen_t len = loopback_addr(family, port, &ss);
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ssize_t r;

	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *)&ss, len), 0);
	cr_assert_eq(send(fd, req, n, 0), (ssize_t)n);
	do /* a signal to the test process is not the end of the wait */
		r = recv(fd, reply, cap, 0);
	while (r < 0 && errno == EINTR);
	close(fd);
	return r;
}

static void stop_idle(struct srv *s)
{
	struct srv_stats st;

	cr_assert_eq(srv_wait_idle(s, &st, 10000), 0, "not idle");
	cr_assert_eq(srv_stop(s, SIGTERM, 10000), 0, "%s", srv_log(s));
}

/* ---- the check (-t) ---- */

#define EVERY_BUILTIN                                                          \
	"# every built-in service, as Debian's openbsd-inetd reads them\n"     \
	"echo\tstream\ttcp\tnowait\troot\tinternal\n"                          \
	"echo\tdgram\tudp\twait\troot\tinternal\n"                             \
	"discard\tstream\ttcp\tnowait\troot\tinternal\n"                       \
	"discard\tdgram\tudp\twait\troot\tinternal\n"                          \
	"daytime\tstream\ttcp\tnowait\troot\tinternal\n"                       \
	"daytime\tdgram\tudp\twait\troot\tinternal\n"                          \
	"chargen\tstream\ttcp\tnowait\troot\tinternal\n"                       \
	"chargen\tdgram\tudp\twait\troot\tinternal\n"                          \
	"time\tstream\ttcp\tnowait\troot\tinternal\n"                          \
	"time\tdgram\tudp\twait\troot\tinternal\n"

Test(config, check_accepts_a_good_file_and_binds_nothing)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char text[2048], out[4096];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint16_t port;

	/* a port this test holds: binding it would fail */
	loopback_addr(AF_INET, 0, &ss);
	cr_assert_eq(
	    bind(fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)), 0);
	cr_assert_eq(listen(fd, 1), 0);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	snprintf(text, sizeof(text),
		 EVERY_BUILTIN "127.0.0.1:%u stream tcp nowait root echo\n",
		 port);
	const char *argv[] = { "-t", "-f", write_conf(text), NULL };
	cr_assert_eq(run_evringd(argv, out, sizeof(out)), 0, "%s", out);
	cr_assert(strstr(out, "configuration ok: 11 services"), "%s", out);
	cr_assert_null(strstr(out, "listen "), "%s", out);
	close(fd);
}

/*
 * Each bad line, after two good ones, is refused with its line number,
 * its field and what was expected.
 */
Test(config, check_refuses_a_bad_file_naming_line_and_field)
{
	static const struct {
		const char *line;
		const char *msg;
	} cases[] = {
		{ "echo stream tcp nowiat root internal",
		  ":3: field 4 \"nowiat\": expected wait or nowait" },
		{ "echo strem tcp nowait root internal",
		  ":3: field 2 \"strem\": expected stream or dgram" },
		{ "echo stream udp nowait root internal",
		  ":3: field 3 \"udp\": a stream service needs tcp" },
		{ "echo stream sctp nowait root internal",
		  ":3: field 3 \"sctp\": expected tcp, tcp4, tcp6, udp" },
		{ "echo stream tcp nowait.x root internal",
		  ":3: field 4 \"nowait.x\": bad .max" },
		{ "echo stream tcp nowait ro/ot internal",
		  ":3: field 5 \"ro/ot\": expected USER" },
		{ "echo stream tcp nowait root intern@l",
		  ":3: field 6 \"intern@l\": expected internal, a module" },
		{ "echo stream tcp nowait root internal extra",
		  ":3: field 7 \"extra\": an internal service takes no "
		  "arguments" },
		{ "echo stream tcp nowait",
		  ":3: field 5 missing: expected the user" },
		{ "nosuchservice stream tcp nowait root echo",
		  ":3: field 1 \"nosuchservice\": no tcp service "
		  "\"nosuchservice\" in /etc/services" },
		{ "7007 stream tcp nowait root internal",
		  ":3: field 6 \"internal\": internal needs a service name" },
		{ "7007 stream tcp nowait root nosuchmodule",
		  ":3: field 6 \"nosuchmodule\": no module \"nosuchmodule\"" },
		{ "7007 dgram udp wait root http",
		  ":3: field 3 \"udp\": http does not serve udp" },
		{ "70000 stream tcp nowait root echo",
		  ":3: field 1 \"70000\": port out of range" },
		{ "[::1:echo stream tcp nowait root internal",
		  ":3: field 1 \"[::1:echo\": expected [HOST:]SERVICE" },
		{ "[::1]:echo stream tcp4 nowait root internal",
		  ":3: field 1 \"[::1]:echo\": host \"::1\"" },
		{ "sunrpc/1 stream rpc/tcp wait root /usr/sbin/rpcbind",
		  ":3: field 1 \"sunrpc/1\": RPC services" },
		{ "echo raw tcp nowait root internal",
		  ":3: field 2 \"raw\": not supported: stream or dgram" },
		{ "#@ idle_timeout=forever\necho stream tcp nowait root "
		  "internal",
		  ":3: option \"idle_timeout=forever\": bad value" },
		{ "#@ nosuchkey=1\necho stream tcp nowait root internal",
		  ":3: option \"nosuchkey=1\": echo has no option "
		  "\"nosuchkey\"" },
		{ "#@ max_conns=1", ":3: options for no service" },
		{ "daytime stream tcp nowait root internal",
		  ":3: tcp port 13 is served by line 1 already" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512], out[4096], want[256];
		const char *path;

		snprintf(text, sizeof(text),
			 "daytime stream tcp nowait root internal\n"
			 "# a comment\n%s\n",
			 cases[i].line);
		path = write_conf(text);
		const char *argv[] = { "-t", "-f", path, NULL };
		cr_assert_eq(run_evringd(argv, out, sizeof(out)), 2,
			     "\"%s\" was accepted: %s", cases[i].line, out);
		snprintf(want, sizeof(want), "%s%s", path, cases[i].msg);
		cr_assert(strstr(out, want), "\"%s\": expected \"%s\", got %s",
			  cases[i].line, want, out);
		cr_assert(strstr(out, "the file is refused"), "%s", out);
		unlink(path);
		nconf_paths--;
	}
}

Test(config, check_reports_every_error_of_a_file_at_once)
{
	char out[8192];
	const char *path =
	    write_conf("echo stream tcp nowiat root internal\n"
		       "echo dgram udp wait root internal\n"
		       "daytime stream udp nowait root internal\n"
		       "time stream tcp nowait root internal extra\n");
	const char *argv[] = { "-t", "-f", path, NULL };

	cr_assert_eq(run_evringd(argv, out, sizeof(out)), 2, "%s", out);
	cr_assert_eq(count_substr(out, path), 4, "%s", out);
	cr_assert(strstr(out, ":1: field 4"), "%s", out);
	cr_assert(strstr(out, ":3: field 3"), "%s", out);
	cr_assert(strstr(out, ":4: field 7"), "%s", out);
	cr_assert(strstr(out, "3 errors: the file is refused"), "%s", out);
}

Test(config, check_of_a_missing_file_fails_with_its_name)
{
	char out[2048];
	const char *argv[] = { "-t", "-f", "/nonexistent/inetd.conf", NULL };

	cr_assert_eq(run_evringd(argv, out, sizeof(out)), 2, "%s", out);
	cr_assert(strstr(out, "/nonexistent/inetd.conf: cannot read: No "
			      "such file or directory"),
		  "%s", out);
}

/* A file with an error is refused whole at start: exit 2, and not even
 * its good lines are served. */
BACKEND_TEST(config, start_refuses_a_file_with_any_error_whole)
{
	char out[4096], text[512];
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint16_t port;
	char be[32];

	/* a free port for the good line */
	loopback_addr(AF_INET, 0, &ss);
	cr_assert_eq(
	    bind(fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)), 0);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	close(fd);
	snprintf(text, sizeof(text),
		 "127.0.0.1:%u stream tcp nowait root echo\n"
		 "echo stream tcp nowait root internal bad\n",
		 port);
	snprintf(be, sizeof(be), "--backend=%s", backend);
	const char *argv[] = { be, "-f", write_conf(text), NULL };
	cr_assert_eq(run_evringd(argv, out, sizeof(out)), 2, "%s", out);
	cr_assert_null(strstr(out, "listen "), "%s", out);
	cr_assert(strstr(out, ":2: field 7 \"bad\""), "%s", out);
	cr_assert_lt(tcp_connect(AF_INET, port), 0);
}

/* ---- serving from a file ---- */

static void check_echo(int family, uint16_t port)
{
	char buf[64];
	int fd = tcp_connect(family, port);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write_all(fd, "hello inetd\n", 12), 0);
	cr_assert_eq(read_exact(fd, buf, 12), 12);
	cr_assert_eq(memcmp(buf, "hello inetd\n", 12), 0);
	close(fd);
}

static void check_daytime_line(const char *buf, ssize_t n)
{
	struct tm tm;

	cr_assert_gt(n, 20);
	cr_assert_eq(buf[n - 2], '\r');
	cr_assert_eq(buf[n - 1], '\n');
	memset(&tm, 0, sizeof(tm));
	cr_assert_not_null(strptime(buf, "%A, %B %d, %Y %H:%M:%S", &tm), "%.*s",
			   (int)n, buf);
	cr_assert_leq(labs((long)(timegm(&tm) - time(NULL))), 5);
}

static uint32_t be32(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	       (uint32_t)b[2] << 8 | b[3];
}

/*
 * A real inetd.conf, names resolved through /etc/services, every built-in
 * over TCP and UDP, on 127.0.0.1 and ::1 (a default-host line with a
 * bracketed list, as BSD inetd reads it).
 */
BACKEND_TEST(inetd, every_builtin_on_tcp_and_udp_ipv4_and_ipv6)
{
	char buf[4096];
	struct srv s;

	start_conf(&s, backend, "[127.0.0.1,::1]:\n" EVERY_BUILTIN, 20, NULL);
	for (int f = 0; f < 2; f++) {
		int fam = families[f], fd;
		ssize_t n;

		/* echo */
		check_echo(fam, srv_port(&s, "echo", fam));
		n = udp_ask(fam, srv_uport(&s, "echo", fam), "ping", 4, buf,
			    sizeof(buf));
		cr_assert_eq(n, 4);
		/* discard: nothing back over UDP */
		n = udp_ask(fam, srv_uport(&s, "discard", fam), "x", 1, buf,
			    sizeof(buf));
		cr_assert_eq(n, -1);
		fd = tcp_connect(fam, srv_port(&s, "discard", fam));
		cr_assert_geq(fd, 0);
		cr_assert_eq(write_all(fd, "x", 1), 0);
		shutdown(fd, SHUT_WR);
		cr_assert_eq(read_to_eof(fd, buf, sizeof(buf)), 0);
		close(fd);
		/* daytime: TCP, and UDP to the 1-byte request of
		 * `echo | nc -u` */
		fd = tcp_connect(fam, srv_port(&s, "daytime", fam));
		n = read_to_eof(fd, buf, sizeof(buf) - 1);
		close(fd);
		check_daytime_line(buf, n);
		n = udp_ask(fam, srv_uport(&s, "daytime", fam), "\n", 1, buf,
			    sizeof(buf) - 1);
		check_daytime_line(buf, n);
		/* chargen: the first line of the pattern */
		fd = tcp_connect(fam, srv_port(&s, "chargen", fam));
		cr_assert_eq(read_exact(fd, buf, 74), 74);
		close(fd);
		cr_assert_eq(memcmp(buf, " !\"#$%&'()*+,-./0123456789", 26), 0);
		cr_assert_eq(memcmp(buf + 72, "\r\n", 2), 0);
		n = udp_ask(fam, srv_uport(&s, "chargen", fam), "", 0, buf,
			    sizeof(buf));
		cr_assert_gt(n, 0);
		/* time: between the clock before the question and after */
		uint32_t t0 = (uint32_t)(time(NULL) + 2208988800LL);

		fd = tcp_connect(fam, srv_port(&s, "time", fam));
		cr_assert_eq(read_to_eof(fd, buf, sizeof(buf)), 4);
		close(fd);
		uint32_t t1 = (uint32_t)(time(NULL) + 2208988800LL);
		uint32_t t = be32((unsigned char *)buf);

		cr_assert(t - t0 <= t1 - t0, "time %u not in [%u, %u]", t, t0,
			  t1);
		n = udp_ask(fam, srv_uport(&s, "time", fam), "", 0, buf,
			    sizeof(buf));
		cr_assert_eq(n, 4);
	}
	stop_idle(&s);
}

/* #@ lines give limits and a module's own options to the next line. */
BACKEND_TEST(inetd, option_lines_set_limits_and_module_options)
{
	char buf[256];
	struct srv_stats st;
	struct srv s;
	ssize_t n;
	int a, b;

	start_conf(&s, backend,
		   "127.0.0.1:\n"
		   "#@ max_conns=1\n"
		   "echo stream tcp nowait root internal\n"
		   "#@ format=%s\n"
		   "daytime stream tcp nowait root internal\n",
		   2, NULL);
	a = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
	cr_assert_geq(a, 0);
	cr_assert_eq(write_all(a, "one", 3), 0);
	cr_assert_eq(read_exact(a, buf, 3), 3); /* a is served */
	b = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
	/* the second is closed at accept: the limit of 1 */
	cr_assert_eq(wait_closed(b, 5000), 1);
	close(b);
	close(a);
	a = tcp_connect(AF_INET, srv_port(&s, "daytime", AF_INET));
	n = read_to_eof(a, buf, sizeof(buf) - 1);
	close(a);
	cr_assert_gt(n, 2);
	buf[n] = '\0';
	cr_assert_leq(labs(strtol(buf, NULL, 10) - (long)time(NULL)), 5,
		      "format=%%s gave \"%s\"", buf);
	cr_assert_eq(srv_stats(&s, &st), 0);
	cr_assert_geq(st.conns_refused, 1);
	stop_idle(&s);
}

/* -s and -o still work with -f: the file's services plus those given. */
BACKEND_TEST(inetd, file_and_short_options_combine)
{
	const char *extra[] = { "-s", "daytime/tcp:0",
				"-b", "127.0.0.1",
				"-o", "daytime.format=%s",
				"-o", "echo.max_conns=5",
				NULL };
	char buf[128];
	struct srv s;
	ssize_t n;
	int fd;

	start_conf(&s, backend,
		   "127.0.0.1:echo stream tcp nowait root "
		   "internal\n",
		   2, extra);
	check_echo(AF_INET, srv_port(&s, "echo", AF_INET));
	fd = tcp_connect(AF_INET, srv_port(&s, "daytime", AF_INET));
	n = read_to_eof(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_gt(n, 2);
	buf[n] = '\0';
	cr_assert_leq(labs(strtol(buf, NULL, 10) - (long)time(NULL)), 5);
	stop_idle(&s);
}

/* ---- the documentation ---- */

/* A file of the source tree: above the build directory (build/ or
 * build/san/), the first directory up that has it. */
static const char *source_path(const char *rel)
{
	static char path[600];
	const char *b = getenv("EVRING_BUILD");
	char dir[512];

	snprintf(dir, sizeof(dir), "%s", b && *b ? b : "build");
	for (;;) {
		char *slash = strrchr(dir, '/');

		if (!slash)
			break;
		*slash = '\0';
		snprintf(path, sizeof(path), "%s/%s", dir[0] ? dir : "/", rel);
		if (access(path, R_OK) == 0)
			return path;
	}
	snprintf(path, sizeof(path), "%s", rel);
	return path;
}

Test(docs, man_page_of_the_file_format_passes_mandoc_lint)
{
	char out[4096];
	const char *argv[] = {
		"mandoc", "-T",	     "lint",
		"-W",	  "warning", source_path("docs/man/evringd.conf.5"),
		NULL
	};

	cr_assert_eq(run_capture(argv, out, sizeof(out), 20000), 0, "%s", out);
	cr_assert_str_eq(out, "");
}

/* The README's example file, taken from the README itself, is a good
 * file (Debian's openbsd-inetd reads it as well). */
Test(docs, readme_example_file_passes_the_check)
{
	static char readme[1 << 17];
	char out[4096];
	FILE *f = fopen(source_path("README.md"), "r");
	size_t n;
	char *sec, *start, *end;

	cr_assert_not_null(f);
	n = fread(readme, 1, sizeof(readme) - 1, f);
	fclose(f);
	readme[n] = '\0';
	sec = strstr(readme, "## Running evringd as your inetd");
	cr_assert_not_null(sec);
	start = strstr(sec, "```\n");
	cr_assert_not_null(start);
	start += 4;
	end = strstr(start, "```\n");
	cr_assert_not_null(end);
	*end = '\0';
	const char *argv[] = { "-t", "-f", write_conf(start), NULL };
	cr_assert_eq(run_evringd(argv, out, sizeof(out)), 0, "%s", out);
	cr_assert(strstr(out, "configuration ok: 10 services"), "%s", out);
}
