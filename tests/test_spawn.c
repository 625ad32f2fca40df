/* SPDX-License-Identifier: MIT */
/*
 * test_spawn.c - programs started by evringd (spawn.c), over real sockets
 * on both backends: /bin/cat as echo and /bin/date as daytime; what a
 * child is given (its descriptors, environment, signals, session, user:
 * tests/tools/child_report.c reports them); that every descriptor of
 * evringd is close-on-exec; 1,000 starts in a row; the limits (.max,
 * instances, per_source, cps); an exec failure; failures logged with
 * their status; wait dgram and wait stream services; -t on files with
 * programs.
 *
 * Programs run as the user the tests run as, except in the tests of user
 * switching, which need root and say so when they skip.
 */
#include "evd_conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The user the tests run as, as a file names it. */
static const char *me(void)
{
	struct passwd *pw = getpwuid(geteuid());

	cr_assert_not_null(pw);
	return pw->pw_name;
}

/* A file of lines: "%1$s" is the user, "%2$s" child-report (a comment
 * at the end names both, so that every argument is used). */
static const char *conf(const char *fmt)
{
	char text[4096], f[2048];

	snprintf(f, sizeof(f), "%s# user %%1$s, tool %%2$s\n", fmt);
	snprintf(text, sizeof(text), f, me(), tool("child-report"));
	return conf_write(text);
}

static void stop(struct srv *s)
{
	cr_assert_eq(wait_no_children(s->pid, 10000), 0, "children left");
	cr_assert_eq(srv_stop(s, SIGTERM, 10000), 0, "%s", srv_log(s));
}

/* ---- the classic programs ---- */

BACKEND_TEST(spawn, cat_serves_as_echo_and_date_as_daytime)
{
	const char *path = conf("127.0.0.1:\n"
				"0 stream tcp nowait %1$s /bin/cat cat\n"
				"0 stream tcp nowait %1$s /bin/date date\n");
	char buf[256], year[8];
	struct srv s;
	time_t t = time(NULL);

	conf_start(&s, backend, path, 2, NULL);
	cr_assert_eq(tcp_ask(AF_INET, srv_port(&s, "cat", AF_INET),
			     "hello, cat\n", buf, sizeof(buf)),
		     11);
	cr_assert_str_eq(buf, "hello, cat\n");
	cr_assert_gt(tcp_ask(AF_INET, srv_port(&s, "date", AF_INET), NULL, buf,
			     sizeof(buf)),
		     20);
	strftime(year, sizeof(year), "%Y", gmtime(&t));
	cr_assert(strstr(buf, year), "not a date: %s", buf);
	stop(&s);
}

/* ---- what a child is given ---- */

struct report {
	int fds[8], nfds;
	char env[16][128];
	int nenv;
	char sigblk[32], sigign[32];
	long uid, gid, sid, pid;
	char groups[128];
	bool end;
};

static void parse_report(char *text, struct report *r)
{
	memset(r, 0, sizeof(*r));
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strncmp(line, "fd ", 3) && r->nfds < 8)
			r->fds[r->nfds++] = atoi(line + 3);
		else if (!strncmp(line, "env ", 4) && r->nenv < 16)
			snprintf(r->env[r->nenv++], 128, "%s", line + 4);
		else if (!strncmp(line, "sigblk ", 7))
			snprintf(r->sigblk, 32, "%s", line + 7);
		else if (!strncmp(line, "sigign ", 7))
			snprintf(r->sigign, 32, "%s", line + 7);
		else if (!strncmp(line, "uid ", 4))
			r->uid = atol(line + 4);
		else if (!strncmp(line, "gid ", 4))
			r->gid = atol(line + 4);
		else if (!strncmp(line, "groups", 6))
			snprintf(r->groups, 128, "%s", line + 6);
		else if (!strncmp(line, "sid ", 4))
			sscanf(line, "sid %ld pid %ld", &r->sid, &r->pid);
		else if (!strcmp(line, "end"))
			r->end = true;
	}
}

static const char *env_of(const struct report *r, const char *name)
{
	size_t n = strlen(name);

	for (int i = 0; i < r->nenv; i++)
		if (!strncmp(r->env[i], name, n) && r->env[i][n] == '=')
			return r->env[i] + n + 1;
	return NULL;
}

/* Connect to port, read the child's report. */
static void ask_report(uint16_t port, struct report *r, uint16_t *client)
{
	static char buf[8192];
	struct sockaddr_in me4;
	socklen_t len = sizeof(me4);
	int fd = tcp_connect(AF_INET, port);
	ssize_t n;

	cr_assert_geq(fd, 0);
	getsockname(fd, (struct sockaddr *)&me4, &len);
	*client = ntohs(me4.sin_port);
	shutdown(fd, SHUT_WR);
	n = read_to_eof(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	parse_report(buf, r);
	cr_assert(r->end, "no report: %s", buf);
}

/* The clone way (users switched, or EVRINGD_SPAWN=clone) starts a child
 * that shares the spawner thread's memory until it executes the program;
 * ThreadSanitizer's clone interceptor takes it for a fork's child and
 * resets its own state in the shared memory, and then reports races that
 * are not. The normal and ASan builds run these tests. */
static void skip_clone_under_tsan(void)
{
	if (getenv("EVRING_TSAN"))
		cr_skip_test(
		    "the clone way's child shares the thread's memory, "
		    "which ThreadSanitizer cannot follow");
}

static void child_is_clean(const char *backend, bool clone_way)
{
	static const char *const vars[] = {
		"PATH",
		"HOME",
		"USER",
		"LOGNAME",
		"EVRINGD_SERVICE",
		"PROTO",
		"REMOTE_ADDR",
		"REMOTE_PORT",
		"LOCAL_ADDR",
		"LOCAL_PORT",
	};
	const char *path = conf("127.0.0.1:\n"
				"0 stream tcp nowait %1$s %2$s inspect\n");
	char want[32];
	struct report r;
	struct srv s;
	uint16_t port, client;

	if (clone_way) {
		skip_clone_under_tsan();
		setenv("EVRINGD_SPAWN", "clone", 1);
	}
	setenv("EVRING_TEST_LEAK", "must not reach a child", 1);
	conf_start(&s, backend, path, 1, NULL);
	port = srv_port(&s, "inspect", AF_INET);
	ask_report(port, &r, &client);
	/* the socket as 0, 1 and 2, and nothing else */
	cr_assert_eq(r.nfds, 3, "%d descriptors", r.nfds);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(r.fds[i], i);
	/* exactly the documented variables */
	cr_assert_eq(r.nenv, (int)(sizeof(vars) / sizeof(vars[0])),
		     "%d variables, first %s", r.nenv, r.env[0]);
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		cr_assert_not_null(env_of(&r, vars[i]), "no %s", vars[i]);
	cr_assert_str_eq(env_of(&r, "REMOTE_ADDR"), "127.0.0.1");
	snprintf(want, sizeof(want), "%u", client);
	cr_assert_str_eq(env_of(&r, "REMOTE_PORT"), want);
	snprintf(want, sizeof(want), "%u", port);
	cr_assert_str_eq(env_of(&r, "LOCAL_PORT"), want);
	cr_assert_str_eq(env_of(&r, "PROTO"), "TCP");
	cr_assert_str_eq(env_of(&r, "EVRINGD_SERVICE"), "inspect");
	cr_assert_str_eq(env_of(&r, "USER"), me());
	/* nothing blocked, nothing ignored: SIGPIPE is evringd's */
	cr_assert_str_eq(r.sigblk, "0000000000000000");
	cr_assert_str_eq(r.sigign, "0000000000000000");
	/* a session of its own, as the user it was started as */
	cr_assert_eq(r.sid, r.pid);
	cr_assert_eq(r.uid, (long)geteuid());
	stop(&s);
}

BACKEND_TEST(spawn, a_child_gets_the_socket_and_nothing_else)
{
	child_is_clean(backend, false);
}

BACKEND_TEST(spawn, a_child_started_the_clone_way_is_as_clean)
{
	child_is_clean(backend, true);
}

/* The flags of every descriptor evringd holds while it serves programs
 * (listeners, a wait socket, a connection, its loop): 0, 1 and 2 aside,
 * each is close-on-exec, so none could reach a program even without the
 * close_range that the child makes. */
BACKEND_TEST(spawn, every_descriptor_of_evringd_is_close_on_exec)
{
	const char *path =
	    conf("127.0.0.1:\n"
		 "0 stream tcp nowait %1$s %2$s holder hold 0\n"
		 "0 stream tcp wait %1$s %2$s waiter accept-echo\n"
		 "0 dgram udp wait %1$s %2$s dwaiter dgram-echo\n"
		 "0 stream tcp nowait %1$s echo\n"
		 "0 dgram udp wait %1$s echo\n");
	char dir[64], fdinfo[320], buf[256], be[32];
	const char *args[] = { tool("child-report"),
			       "clean",
			       evringd_path(),
			       be,
			       "-f",
			       path,
			       NULL };
	struct dirent *de;
	struct srv s;
	int held, checked = 0;
	DIR *d;

	/* started with nothing but 0, 1 and 2: what it holds, it opened */
	snprintf(be, sizeof(be), "--backend=%s", backend);
	skip_unless_backend_runs(backend);
	cr_assert_eq(srv_spawn(&s, 5, args), 0);
	held = tcp_connect(AF_INET, srv_port(&s, "holder", AF_INET));
	cr_assert_geq(held, 0);
	snprintf(dir, sizeof(dir), "/proc/%d/fdinfo", (int)s.pid);
	usleep(100 * 1000); /* the child runs, the connection is taken */
	d = opendir(dir);
	cr_assert_not_null(d);
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name), f;
		unsigned long flags = 0;
		ssize_t n;

		if (de->d_name[0] == '.' || fd < 3)
			continue;
		snprintf(fdinfo, sizeof(fdinfo), "%s/%s", dir, de->d_name);
		f = open(fdinfo, O_RDONLY | O_CLOEXEC);
		if (f < 0)
			continue; /* closed meanwhile */
		n = read(f, buf, sizeof(buf) - 1);
		close(f);
		buf[n > 0 ? n : 0] = '\0';
		cr_assert(sscanf(strstr(buf, "flags:"), "flags: %lo", &flags),
			  "%s", buf);
		if (!(flags & O_CLOEXEC)) {
			char link[128], what[128] = "?";
			ssize_t l;

			snprintf(link, sizeof(link), "/proc/%d/fd/%d",
				 (int)s.pid, fd);
			l = readlink(link, what, sizeof(what) - 1);
			what[l > 0 ? l : 0] = '\0';
			cr_assert_fail("fd %d of evringd (%s) is not "
				       "close-on-exec (flags %lo)",
				       fd, what, flags);
		}
		checked++;
	}
	closedir(d);
	cr_assert_geq(checked, 7, "only %d descriptors", checked);
	close(held);
	stop(&s);
}

/* ---- users ---- */

static void skip_unless_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("switching users needs root");
	skip_clone_under_tsan();
}

BACKEND_TEST(spawn, a_program_runs_as_the_configured_user_and_groups)
{
	const char *path =
	    conf("127.0.0.1:\n"
		 "0 stream tcp nowait nobody %2$s asnobody\n"
		 "0 stream tcp nowait nobody:root %2$s asgroup\n");
	struct passwd *pw;
	struct report r;
	struct srv s;
	uint16_t client;
	char want[32];

	skip_unless_root();
	pw = getpwnam("nobody");
	cr_assert_not_null(pw);
	conf_start(&s, backend, path, 2, NULL);
	ask_report(srv_port(&s, "asnobody", AF_INET), &r, &client);
	cr_assert_eq(r.uid, (long)pw->pw_uid);
	cr_assert_eq(r.gid, (long)pw->pw_gid);
	snprintf(want, sizeof(want), " %d", (int)pw->pw_gid);
	cr_assert_str_eq(r.groups, want, "the groups of nobody: %s", r.groups);
	cr_assert_str_eq(env_of(&r, "USER"), "nobody");
	cr_assert_eq(r.nfds, 3);
	ask_report(srv_port(&s, "asgroup", AF_INET), &r, &client);
	cr_assert_eq(r.uid, (long)pw->pw_uid);
	cr_assert_eq(r.gid, 0);
	stop(&s);
}

/* A user that does not exist, or that evringd cannot become, refuses the
 * file at start (and at -t), with its line and field. As root, the
 * second case runs evringd as nobody. */
Test(spawn, a_user_it_cannot_switch_to_is_refused_at_start)
{
	const char *bad = conf("0 stream tcp nowait nosuchuser_evr /bin/cat "
			       "cat\n");
	const char *other = conf_write("0 stream tcp nowait root /bin/cat cat\n"
				       "0 stream tcp nowait nobody /bin/cat "
				       "cat\n");
	const char *argv[] = { "-t", "-f", bad, NULL };
	char out[4096], want[128];

	cr_assert_eq(evringd_run(argv, out, sizeof(out)), 2, "%s", out);
	snprintf(want, sizeof(want),
		 "%s:1: field 5 \"nosuchuser_evr\": no user", bad);
	cr_assert(strstr(out, want), "%s", out);
	if (geteuid() == 0) {
		const char *as[] = { "/usr/bin/setpriv",
				     "--reuid=65534",
				     "--regid=65534",
				     "--clear-groups",
				     evringd_path(),
				     "-f",
				     other,
				     NULL };

		cr_assert_eq(run_capture(as, out, sizeof(out), 20000), 2, "%s",
			     out);
	} else {
		const char *direct[] = { "-f", other, NULL };

		cr_assert_eq(evringd_run(direct, out, sizeof(out)), 2, "%s",
			     out);
	}
	cr_assert(strstr(out, "cannot run programs as"), "%s", out);
	cr_assert(strstr(out, "the file is refused"), "%s", out);
	cr_assert_null(strstr(out, "listen "), "%s", out);
}

/* ---- many ---- */

/* pid's descriptors once the count has held for 10 readings 20 ms apart
 * (up to 10 s). */
static int steady_fd_count(pid_t pid)
{
	int n = fd_count(pid), same = 0;

	for (int i = 0; i < 500 && same < 10; i++) {
		int m;

		usleep(20000);
		m = fd_count(pid);
		same = m == n ? same + 1 : 0;
		n = m;
	}
	return n;
}

BACKEND_TEST(spawn, a_thousand_starts_leave_no_zombie_and_no_stray_fd)
{
	const char *path =
	    conf("127.0.0.1:\n"
		 "0 stream tcp nowait.0 %1$s %2$s quick exit 0\n");
	struct srv s;
	uint16_t port;
	int before, z;

	conf_start(&s, backend, path, 1, NULL);
	port = srv_port(&s, "quick", AF_INET);
	/* the first start makes the spawner (a thread, a pipe): count after
	 * it */
	cr_assert_eq(tcp_ask(AF_INET, port, NULL, (char[16]){ 0 }, 16), 0);
	cr_assert_eq(wait_no_children(s.pid, 10000), 0);
	/* a child reaped is not yet its descriptor closed: the count once
	 * it holds still */
	before = steady_fd_count(s.pid);
	for (int i = 0; i < 1000; i++) {
		char buf[16];

		cr_assert_eq(tcp_ask(AF_INET, port, NULL, buf, sizeof(buf)), 0,
			     "start %d", i);
	}
	cr_assert_eq(wait_no_children(s.pid, 10000), 0);
	cr_assert_eq(children_of(s.pid, &z), 0);
	cr_assert_eq(z, 0, "zombies");
	cr_assert_eq(steady_fd_count(s.pid), before, "descriptors: %d, then %d",
		     before, fd_count(s.pid));
	cr_assert_null(strstr(srv_log(&s), "exited with"), "%s", srv_log(&s));
	stop(&s);
}

/* ---- limits ---- */

/* Served: the report of a child came back. */
static bool served(uint16_t port)
{
	char buf[4096];

	return tcp_ask(AF_INET, port, NULL, buf, sizeof(buf)) > 0 &&
	       strstr(buf, "end\n");
}

/* OpenBSD's meaning: more than .max starts in a minute takes the service
 * down ("server failing (looping)"); it comes back after retry. */
BACKEND_TEST(spawn, dot_max_takes_a_looping_service_down_for_a_while)
{
	const char *path = conf("127.0.0.1:\n"
				"#@ retry=2s\n"
				"0 stream tcp nowait.5 %1$s %2$s looper\n");
	struct srv s;
	uint16_t port;
	int64_t down_at;

	conf_start(&s, backend, path, 1, NULL);
	port = srv_port(&s, "looper", AF_INET);
	for (int i = 0; i < 5; i++)
		cr_assert(served(port), "start %d", i);
	cr_assert_not(served(port), "the 6th start in a minute was served");
	down_at = now_ms();
	cr_assert(log_wait(&s,
			   "looper/tcp: server failing (looping): more "
			   "than 5 servers started in a minute (.max); "
			   "not served for 2 s",
			   5000),
		  "%s", srv_log(&s));
	while (now_ms() - down_at < 1500)
		cr_assert_not(served(port), "served while down");
	while (now_ms() - down_at < 2500)
		usleep(20 * 1000);
	cr_assert(served(port), "not back after retry");
	cr_assert(log_wait(&s, "looper/tcp: served again", 5000));
	stop(&s);
}

/* A client whose program is still running. */
static int hold_one(uint16_t port, const char *src)
{
	int fd = src ? tcp_connect_from(src, port) : tcp_connect(AF_INET, port);

	cr_assert_geq(fd, 0);
	return fd;
}

/* Refused: closed without a byte (the connection is accepted, then
 * closed at once). */
static bool refused(int fd)
{
	char buf[64];

	shutdown(fd, SHUT_WR);
	return read_to_eof(fd, buf, sizeof(buf)) <= 0;
}

static int running_children(struct srv *s, int want)
{
	int64_t deadline = now_ms() + 10000;
	int z, n;

	while ((n = children_of(s->pid, &z)) != want && now_ms() < deadline)
		usleep(5000);
	return n;
}

BACKEND_TEST(spawn, instances_bound_the_programs_running_at_once)
{
	const char *path =
	    conf("127.0.0.1:\n"
		 "#@ instances=2\n"
		 "0 stream tcp nowait %1$s %2$s holder hold 0\n");
	struct srv s;
	uint16_t port;
	int a, b, c;

	conf_start(&s, backend, path, 1, NULL);
	port = srv_port(&s, "holder", AF_INET);
	a = hold_one(port, NULL);
	b = hold_one(port, NULL);
	cr_assert_eq(running_children(&s, 2), 2);
	c = hold_one(port, NULL);
	cr_assert(refused(c), "a third one at once");
	close(c);
	cr_assert(
	    log_wait(&s, "holder/tcp: refused: instances limit of 2", 5000),
	    "%s", srv_log(&s));
	/* one ends (its client closed): room for another */
	close(a);
	cr_assert_eq(running_children(&s, 1), 1);
	c = hold_one(port, NULL);
	cr_assert_eq(running_children(&s, 2), 2);
	close(b);
	close(c);
	stop(&s);
}

BACKEND_TEST(spawn, per_source_bounds_the_programs_of_one_address)
{
	const char *path =
	    conf("*:\n"
		 "#@ per_source=1\n"
		 "0 stream tcp4 nowait %1$s %2$s holder hold 0\n");
	struct srv s;
	uint16_t port;
	int a, b, other;

	conf_start(&s, backend, path, 1, NULL);
	port = srv_port(&s, "holder", AF_INET);
	a = hold_one(port, "127.0.0.1");
	cr_assert_eq(running_children(&s, 1), 1);
	b = hold_one(port, "127.0.0.1");
	cr_assert(refused(b), "a second one from 127.0.0.1");
	close(b);
	other = hold_one(port, "127.0.0.2");
	cr_assert_eq(running_children(&s, 2), 2, "127.0.0.2 was refused");
	cr_assert(log_wait(&s, "refused: per_source limit of 1", 5000));
	close(a);
	close(other);
	stop(&s);
}

/* xinetd's cps RATE,WAIT: over RATE connections in one second, the
 * service is down for WAIT seconds. */
BACKEND_TEST(spawn, cps_takes_the_service_down_for_its_wait)
{
	const char *path = conf("127.0.0.1:\n"
				"#@ cps=3,1\n"
				"0 stream tcp nowait %1$s %2$s rated\n");
	struct srv s;
	uint16_t port;
	int served_n = 0;
	int64_t t0;

	conf_start(&s, backend, path, 1, NULL);
	port = srv_port(&s, "rated", AF_INET);
	t0 = now_ms();
	for (int i = 0; i < 6; i++)
		served_n += served(port);
	if (now_ms() - t0 >= 1000)
		cr_skip_test("six connections took over a second here");
	cr_assert_eq(served_n, 3, "%d served", served_n);
	cr_assert(log_wait(&s,
			   "more than 3 connections in a second (cps); "
			   "not served for 1 s",
			   5000),
		  "%s", srv_log(&s));
	usleep(1200 * 1000);
	cr_assert(served(port), "not back after the wait");
	stop(&s);
}

/* ---- failures ---- */

/* A file that passes the check at start (executable) but that the kernel
 * cannot execute: every connection is closed at once, one log line per
 * 10 s, and no process is left behind. */
BACKEND_TEST(spawn, an_exec_failure_is_logged_once_and_never_loops)
{
	char prog[64], text[256];
	struct srv s;
	uint16_t port;
	int fd, z;

	snprintf(prog, sizeof(prog), "/tmp/evring-noexec-XXXXXX");
	fd = mkstemp(prog);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "not a program\n", 14), 14);
	close(fd);
	chmod(prog, 0755);
	snprintf(text, sizeof(text),
		 "127.0.0.1:\n0 stream tcp nowait %s %s broken\n", me(), prog);
	conf_start(&s, backend, conf_write(text), 1, NULL);
	port = srv_port(&s, "broken", AF_INET);
	for (int i = 0; i < 20; i++) {
		char buf[16];

		cr_assert_eq(tcp_ask(AF_INET, port, NULL, buf, sizeof(buf)), 0);
	}
	cr_assert(log_wait(&s, "broken/tcp: cannot run", 5000), "%s",
		  srv_log(&s));
	cr_assert(strstr(srv_log(&s), "Exec format error"), "%s", srv_log(&s));
	cr_assert_eq(count_substr(srv_log(&s), "cannot run"), 1, "%s",
		     srv_log(&s));
	cr_assert_eq(children_of(s.pid, &z), 0);
	stop(&s);
	unlink(prog);
}

BACKEND_TEST(spawn, a_failing_child_is_logged_with_its_status_or_signal)
{
	const char *path =
	    conf("127.0.0.1:\n"
		 "0 stream tcp nowait %1$s %2$s three exit 3\n"
		 "0 stream tcp nowait %1$s %2$s killed kill 9\n");
	char buf[16], want[128];
	struct srv s;

	conf_start(&s, backend, path, 2, NULL);
	tcp_ask(AF_INET, srv_port(&s, "three", AF_INET), NULL, buf,
		sizeof(buf));
	tcp_ask(AF_INET, srv_port(&s, "killed", AF_INET), NULL, buf,
		sizeof(buf));
	snprintf(want, sizeof(want), "three/tcp: %s (pid ",
		 tool("child-report"));
	cr_assert(log_wait(&s, want, 5000), "%s", srv_log(&s));
	cr_assert(log_wait(&s, "exited with status 3", 5000), "%s",
		  srv_log(&s));
	cr_assert(log_wait(&s, "killed by signal 9 (Killed)", 5000), "%s",
		  srv_log(&s));
	stop(&s);
}

/* ---- wait services ---- */

static int udp_socket_to(uint16_t port, struct sockaddr_storage *ss,
			 socklen_t *len)
{
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	*len = loopback_addr(AF_INET, port, ss);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* One program gets the socket and answers every datagram until it has
 * been idle for a second; then the next datagram starts another. */
BACKEND_TEST(spawn, wait_dgram_hands_the_socket_to_one_program)
{
	const char *path = conf("127.0.0.1:\n"
				"0 dgram udp wait %1$s %2$s uecho "
				"dgram-echo\n");
	const char *const verbose[] = { "-v", NULL };
	struct sockaddr_storage ss;
	char buf[64];
	struct srv s;
	socklen_t len;
	int fd[3];

	conf_start(&s, backend, path, 1, verbose);
	for (int i = 0; i < 3; i++) {
		char msg[16];

		fd[i] =
		    udp_socket_to(srv_uport(&s, "uecho", AF_INET), &ss, &len);
		snprintf(msg, sizeof(msg), "datagram %d", i);
		cr_assert_eq(sendto(fd[i], msg, strlen(msg), 0,
				    (struct sockaddr *)&ss, len),
			     (ssize_t)strlen(msg));
	}
	for (int i = 0; i < 3; i++) {
		char want[16];
		ssize_t n = recv_retry(fd[i], buf, sizeof(buf) - 1, 0);

		cr_assert_gt(n, 0, "datagram %d: no answer (%s) %s", i,
			     strerror(errno), srv_log(&s));
		buf[n] = '\0';
		snprintf(want, sizeof(want), "datagram %d", i);
		cr_assert_str_eq(buf, want);
	}
	cr_assert_eq(log_count(&s, "started", 1, 5000), 1,
		     "one program for the three: %s", srv_log(&s));
	cr_assert_eq(wait_no_children(s.pid, 10000), 0);
	cr_assert_eq(sendto(fd[0], "again", 5, 0, (struct sockaddr *)&ss, len),
		     5);
	cr_assert_eq(recv_retry(fd[0], buf, sizeof(buf), 0), 5);
	cr_assert_eq(log_count(&s, "started", 2, 5000), 2, "%s", srv_log(&s));
	for (int i = 0; i < 3; i++)
		close(fd[i]);
	stop(&s);
}

/* The listening socket itself goes to the program, which accepts. */
BACKEND_TEST(spawn, wait_stream_hands_the_listening_socket_over)
{
	const char *path = conf("127.0.0.1:\n"
				"0 stream tcp wait %1$s %2$s acceptor "
				"accept-echo\n");
	const char *const verbose[] = { "-v", NULL };
	char buf[64];
	struct srv s;
	uint16_t port;

	conf_start(&s, backend, path, 1, verbose);
	port = srv_port(&s, "acceptor", AF_INET);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(tcp_ask(AF_INET, port, "mine\n", buf, sizeof(buf)),
			     5);
		cr_assert_str_eq(buf, "mine\n");
	}
	cr_assert_eq(log_count(&s, "started", 1, 5000), 1,
		     "one program for three connections: %s", srv_log(&s));
	stop(&s);
}

/* A wait dgram service whose program cannot run reads and drops each
 * datagram that would have started it: once the program can run, it
 * answers only what came after. */
BACKEND_TEST(spawn, a_datagram_that_would_have_started_it_is_consumed)
{
	char prog[64], text[256], script[600];
	struct sockaddr_storage ss;
	struct srv s;
	socklen_t len;
	char buf[64];
	int fd, u;

	snprintf(prog, sizeof(prog), "/tmp/evring-noexec-XXXXXX");
	fd = mkstemp(prog);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "not a program\n", 14), 14);
	close(fd);
	chmod(prog, 0755);
	snprintf(text, sizeof(text),
		 "127.0.0.1:\n0 dgram udp wait %s %s later\n", me(), prog);
	conf_start(&s, backend, conf_write(text), 1, NULL);
	u = udp_socket_to(srv_uport(&s, "later", AF_INET), &ss, &len);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(
		    sendto(u, "early", 5, 0, (struct sockaddr *)&ss, len), 5);
	cr_assert(log_wait(&s, "later/udp: cannot run", 5000), "%s",
		  srv_log(&s));
	usleep(100 * 1000);
	/* now it can run */
	snprintf(script, sizeof(script), "#!/bin/sh\nexec %s dgram-echo\n",
		 tool("child-report"));
	fd = open(prog, O_WRONLY | O_TRUNC | O_CLOEXEC);
	cr_assert_eq(write(fd, script, strlen(script)),
		     (ssize_t)strlen(script));
	close(fd);
	cr_assert_eq(sendto(u, "late", 4, 0, (struct sockaddr *)&ss, len), 4);
	cr_assert_eq(recv_retry(u, buf, sizeof(buf), 0), 4);
	cr_assert_eq(memcmp(buf, "late", 4), 0, "an early one came back");
	cr_assert_eq(count_substr(srv_log(&s), "cannot run"), 1, "%s",
		     srv_log(&s));
	close(u);
	stop(&s);
	unlink(prog);
}

/* ---- -t ---- */

Test(spawn, check_accepts_programs_and_refuses_their_mistakes)
{
	static const struct {
		const char *line;
		const char *msg;
	} cases[] = {
		{ "0 stream tcp nowait %s /nonexistent/prog prog",
		  ":1: field 6 \"/nonexistent/prog\": cannot execute: No such "
		  "file" },
		{ "0 dgram udp nowait %s /bin/cat cat",
		  ":1: field 4 \"nowait\": a dgram program is a wait service" },
		{ "#@ instances=lots\n0 stream tcp nowait %s /bin/cat cat",
		  ":1: option \"instances=lots\": bad value" },
		{ "#@ idle_timeout=5s\n0 stream tcp nowait %s /bin/cat cat",
		  ":1: option \"idle_timeout=5s\": a program takes instances, "
		  "per_source, cps and retry" },
		{ "0 stream tcp nowait %s:nosuchgroup_evr /bin/cat cat",
		  ":1: field 5 \"" },
	};
	char good[256], out[4096];
	const char *path;

	snprintf(good, sizeof(good),
		 "#@ instances=10 per_source=2 cps=50,10 retry=1m\n"
		 "0 stream tcp nowait.100 %s /bin/cat cat\n"
		 "0 dgram udp wait %s /bin/cat cat\n",
		 me(), me());
	path = conf_write(good);
	const char *argv[] = { "-t", "-f", path, NULL };
	cr_assert_eq(evringd_run(argv, out, sizeof(out)), 0, "%s", out);
	cr_assert(strstr(out, "configuration ok: 2 services"), "%s", out);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256];

		snprintf(text, sizeof(text), cases[i].line, me());
		path = conf_write(text);
		const char *bad[] = { "-t", "-f", path, NULL };
		cr_assert_eq(evringd_run(bad, out, sizeof(out)), 2,
			     "\"%s\" was accepted: %s", text, out);
		cr_assert(strstr(out, cases[i].msg), "\"%s\": %s", text, out);
	}
}

/* EVRING_DISABLE=waitid: the io_uring loop polls the pidfds instead of
 * IORING_OP_WAITID; its children are reaped all the same. */
Test(spawn_io_uring, children_are_reaped_with_waitid_off, .timeout = 120)
{
	const char *path =
	    conf("127.0.0.1:\n"
		 "0 stream tcp nowait.0 %1$s %2$s quick exit 0\n");
	const char *const verbose[] = { "-v", NULL };
	struct srv s;
	uint16_t port;
	int z;

	skip_unless_backend_runs("io_uring");
	setenv("EVRING_DISABLE", "waitid", 1);
	conf_start(&s, "io_uring", path, 1, verbose);
	cr_assert(log_wait(&s, " -waitid", 5000), "%s", srv_log(&s));
	port = srv_port(&s, "quick", AF_INET);
	for (int i = 0; i < 100; i++) {
		char buf[16];

		cr_assert_eq(tcp_ask(AF_INET, port, NULL, buf, sizeof(buf)), 0);
	}
	cr_assert_eq(wait_no_children(s.pid, 10000), 0);
	cr_assert_eq(children_of(s.pid, &z), 0);
	cr_assert_eq(log_count(&s, "done", 100, 5000), 100);
	stop(&s);
}

/* Without pidfd_open(2) (a kernel before 5.3, valgrind; here a seccomp
 * filter) the children's ends are polled: reaped all the same. */
BACKEND_TEST(spawn, children_are_reaped_without_pidfds)
{
	const char *path =
	    conf("127.0.0.1:\n"
		 "0 stream tcp nowait.0 %1$s %2$s quick exit 0\n");
	char be[32];
	const char *args[] = { tool("child-report"),
			       "nopidfd",
			       evringd_path(),
			       be,
			       "-f",
			       path,
			       NULL };
	struct srv s;
	uint16_t port;
	int z;

	snprintf(be, sizeof(be), "--backend=%s", backend);
	cr_assert_eq(srv_spawn(&s, 1, args), 0);
	port = srv_port(&s, "quick", AF_INET);
	for (int i = 0; i < 20; i++) {
		char buf[16];

		cr_assert_eq(tcp_ask(AF_INET, port, NULL, buf, sizeof(buf)), 0);
	}
	cr_assert_eq(wait_no_children(s.pid, 10000), 0);
	cr_assert_eq(children_of(s.pid, &z), 0);
	cr_assert_null(strstr(srv_log(&s), "cannot"), "%s", srv_log(&s));
	stop(&s);
}

/* A drain (SIGTERM) waits for running programs as for connections; the
 * listeners, wait sockets included, close at once. */
BACKEND_TEST(spawn, a_drain_waits_for_the_running_programs)
{
	const char *path = conf("127.0.0.1:\n"
				"0 stream tcp nowait %1$s %2$s holder hold 1\n"
				"0 stream tcp wait %1$s %2$s waiter "
				"accept-echo\n");
	struct srv s;
	int64_t t0;
	int fd, again;

	conf_start(&s, backend, path, 2, NULL);
	fd = tcp_connect(AF_INET, srv_port(&s, "holder", AF_INET));
	cr_assert_geq(fd, 0);
	shutdown(fd, SHUT_WR); /* the program reads its EOF, then waits 1 s */
	cr_assert_eq(running_children(&s, 1), 1);
	t0 = now_ms();
	kill(s.pid, SIGTERM);
	usleep(200 * 1000);
	again = tcp_connect(AF_INET, srv_port(&s, "waiter", AF_INET));
	cr_assert_lt(again, 0, "the wait socket still accepts");
	/* (signal 0: a second SIGTERM would stop it at once) */
	cr_assert_eq(srv_stop(&s, 0, 10000), 0, "%s", srv_log(&s));
	cr_assert_geq(now_ms() - t0, 600, "it did not wait for the program");
	close(fd);
}

/* With --user, evringd drops root once bound: its programs can run as
 * that user only, and a file that names another is refused at start. */
BACKEND_TEST(spawn, with_user_programs_run_as_that_user_only)
{
	const char *good = conf("127.0.0.1:\n"
				"0 stream tcp nowait nobody %2$s asnobody\n");
	const char *bad = conf("0 stream tcp nowait root /bin/cat cat\n");
	const char *const extra[] = { "--user", "nobody", NULL };
	const char *check[] = { "-t", "-f", bad, "--user", "nobody", NULL };
	struct passwd *pw;
	struct report r;
	struct srv s;
	char out[4096];
	uint16_t client;

	skip_unless_root();
	pw = getpwnam("nobody");
	cr_assert_not_null(pw);
	cr_assert_eq(evringd_run(check, out, sizeof(out)), 2, "%s", out);
	cr_assert(strstr(out, "evringd runs as nobody once bound (--user) and "
			      "cannot run programs as root"),
		  "%s", out);
	conf_start(&s, backend, good, 1, extra);
	ask_report(srv_port(&s, "asnobody", AF_INET), &r, &client);
	cr_assert_eq(r.uid, (long)pw->pw_uid);
	cr_assert_eq(r.gid, (long)pw->pw_gid);
	cr_assert_eq(r.nfds, 3);
	cr_assert_null(strstr(srv_log(&s), "cannot run"), "%s", srv_log(&s));
	stop(&s);
}
