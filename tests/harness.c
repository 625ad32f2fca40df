/* SPDX-License-Identifier: MIT */
/*
 * harness.c - servers under test and blocking clients; see harness.h.
 *
 * Layout: whether io_uring can run here and the report of skipped tests;
 * starting, querying and stopping evringd; running a program to its end;
 * blocking clients.
 */
#include "harness.h"

#include "../core/evring.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 30000

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- can io_uring run here? ---- */

/*
 * The library names the reason only in its log line ("backend io_uring
 * cannot run here: REASON"), so stderr goes to a pipe while the loop is
 * created. The pipe is nonblocking: a log longer than the pipe is cut, it
 * cannot hang the test. Without a pipe the line goes to stderr as usual.
 */
static int probe_io_uring(char *why, size_t len)
{
	static const char mark[] = "cannot run here: ";
	struct evr_loop_opts o;
	struct evr_loop *l;
	char line[1024], *at, *nl;
	int p[2] = { -1, -1 }, saved = -1, err;
	ssize_t n = 0;

	evr_loop_opts_init(&o);
	o.backend = "io_uring";
	o.buf_count = 16;
	o.buf_size = 4096;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0)
		saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
	if (saved >= 0) {
		fflush(stderr);
		dup2(p[1], STDERR_FILENO);
	}
	err = evr_loop_new(&l, &o);
	if (saved >= 0) {
		dup2(saved, STDERR_FILENO);
		close(saved);
		n = read(p[0], line, sizeof(line) - 1);
	}
	if (p[0] >= 0) {
		close(p[0]);
		close(p[1]);
	}
	if (err == 0) {
		evr_loop_free(l);
		return 0;
	}
	line[n > 0 ? n : 0] = '\0';
	at = strstr(line, mark);
	at = at ? at + strlen(mark) : line;
	if ((nl = strchr(at, '\n')))
		*nl = '\0';
	if (*at)
		snprintf(why, len, "%s", at);
	else
		snprintf(why, len, "evr_loop_new: %s", strerror(-err));
	return err;
}

/*
 * The probe runs in a child process: an io_uring ring made and torn down
 * in the test's own thread leaves task work behind that interrupts the
 * test's next blocking socket call with EINTR (a socket call with a
 * timeout is not restarted), at random. The child reports its verdict
 * through a pipe: 0, then the reason when io_uring cannot run.
 */
const char *io_uring_refusal(void)
{
	static char why[1024];
	static int probed, err;
	int p[2];
	pid_t pid;

	if (probed)
		return err ? why : NULL;
	probed = 1;
	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		err = probe_io_uring(why, sizeof(why)); /* here, then */
		return err ? why : NULL;
	}
	if (pid == 0) {
		char r[1024] = "";
		int e = probe_io_uring(r, sizeof(r));

		(void)!write(p[1], e ? r : "", e ? strlen(r) + 1 : 1);
		_exit(0);
	}
	close(p[1]);
	ssize_t n = 0, k;

	while ((k = read(p[0], why + n, sizeof(why) - 1 - (size_t)n)) > 0 ||
	       (k < 0 && errno == EINTR))
		n += k > 0 ? k : 0;
	close(p[0]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	why[n] = '\0';
	if (n <= 0)
		snprintf(why, sizeof(why), "the io_uring probe died");
	err = n <= 0 || why[0] != '\0';
	return err ? why : NULL;
}

void skip_unless_backend_runs(const char *backend)
{
	const char *why;

	if (strcmp(backend, "io_uring") || !(why = io_uring_refusal()))
		return;
	cr_skip_test("io_uring cannot run here: %s", why);
}

/*
 * These run in the Criterion runner, not in the test's process. At the
 * default verbosity Criterion counts a skipped test nowhere and prints
 * nothing for it; --verbose prints its own [SKIP] lines. (Its own count of
 * skips includes the tests --filter left out, so we count ours.)
 */
static size_t nskipped;

static bool runner_is_terse(void)
{
	return criterion_options.logging_threshold == CRITERION_IMPORTANT;
}

ReportHook(POST_TEST)(struct criterion_test_stats *st)
{
	if (st->test_status != CR_STATUS_SKIPPED || !runner_is_terse())
		return;
	nskipped++;
	fprintf(stderr, "[SKIP] %s::%s: %s\n", st->test->category,
		st->test->name,
		st->message ? st->message : "(no reason given)");
}

ReportHook(POST_ALL)(struct criterion_global_stats *st)
{
	(void)st;
	if (nskipped)
		fprintf(stderr,
			"[====] Skipped: %zu, each with its reason above\n",
			nskipped);
}

/* ---- servers ---- */

const char *evringd_path(void)
{
	const char *p = getenv("EVRINGD");

	return p && *p ? p : "build/evringd";
}

const char *tool_path(const char *name)
{
	static char path[512];
	const char *dir = getenv("EVRING_BUILD");

	snprintf(path, sizeof(path), "%s/tests/%s", dir && *dir ? dir : "build",
		 name);
	return path;
}

static void child_exec(const char *const *argv, int out_fd, int err_fd)
{
	sigset_t none;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	dup2(out_fd, STDOUT_FILENO);
	dup2(err_fd, STDERR_FILENO);
	execvp(argv[0], (char *const *)argv);
	dprintf(err_fd, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static int parse_listener(struct srv *s, const char *line)
{
	char svc[32], proto[8], addr[80], be[16];
	struct srv_listener *l;
	char *colon;

	if (sscanf(line, "listen %31s %7s %79s %15s", svc, proto, addr, be) !=
	    4)
		return -1;
	if (s->nls == SRV_MAX_LISTENERS)
		return -1;
	l = &s->ls[s->nls++];
	snprintf(l->service, sizeof(l->service), "%s", svc);
	snprintf(l->proto, sizeof(l->proto), "%s", proto);
	l->family = addr[0] == '[' ? AF_INET6 : AF_INET;
	colon = strrchr(addr, ':');
	l->port = colon ? (uint16_t)atoi(colon + 1) : 0;
	snprintf(s->backend, sizeof(s->backend), "%s", be);
	return 0;
}

int srv_start(struct srv *s, const char *backend, int nlisteners,
	      const char *const *argv)
{
	static char wrap[512];
	const char *args[64];
	char be[64];
	size_t n = 0;
	const char *w = getenv("EVRING_WRAP");

	/* make valgrind runs every server under memcheck */
	if (w && *w) {
		snprintf(wrap, sizeof(wrap), "%s", w);
		for (char *t = strtok(wrap, " "); t && n < 16;
		     t = strtok(NULL, " "))
			args[n++] = t;
	}
	args[n++] = evringd_path();
	if (backend) {
		snprintf(be, sizeof(be), "--backend=%s", backend);
		args[n++] = be;
	}
	for (; *argv && n < 63; argv++)
		args[n++] = *argv;
	args[n] = NULL;
	return srv_spawn(s, nlisteners, args);
}

/* Server logs are read after the server stopped, until the test ends:
 * they go when the test process exits. */
static char logs[64][64];
static int nlogs;

static void remove_logs(void)
{
	while (nlogs)
		unlink(logs[--nlogs]);
}

static void forget_at_exit(const char *path)
{
	if (nlogs == 0)
		atexit(remove_logs);
	if (nlogs < 64)
		snprintf(logs[nlogs++], sizeof(logs[0]), "%s", path);
}

int srv_spawn(struct srv *s, int nlisteners, const char *const *args)
{
	char buf[4096];
	size_t len = 0;
	int out[2], logfd;
	int64_t deadline;

	memset(s, 0, sizeof(*s));
	snprintf(s->log_path, sizeof(s->log_path), "/tmp/evring-test-XXXXXX");
	logfd = mkostemp(s->log_path, O_CLOEXEC);
	if (logfd >= 0)
		forget_at_exit(s->log_path);
	if (logfd < 0 || pipe2(out, O_CLOEXEC) < 0)
		return -1;
	s->pid = fork();
	if (s->pid == 0)
		child_exec(args, out[1], logfd);
	close(out[1]);
	close(logfd);
	s->out_fd = out[0];
	if (s->pid < 0)
		return -1;

	deadline = now_ms() + START_TIMEOUT_MS;
	while (s->nls < nlisteners) {
		struct pollfd pfd = { .fd = s->out_fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		ssize_t r;
		char *nl;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			goto fail;
		r = read(s->out_fd, buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			goto fail;
		len += (size_t)r;
		buf[len] = '\0';
		while ((nl = strchr(buf, '\n'))) {
			*nl = '\0';
			parse_listener(s, buf);
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len + 1);
		}
	}
	return 0;
fail:
	fprintf(stderr, "evringd did not start; its log:\n%s\n", srv_log(s));
	srv_stop(s, SIGKILL, 2000);
	return -1;
}

int srv_start_services(struct srv *s, const char *backend,
		       const char *const *services)
{
	const char *args[64];
	char specs[16][64];
	int n = 0, k = 0;

	args[n++] = "-b";
	args[n++] = "127.0.0.1";
	args[n++] = "-b";
	args[n++] = "::1";
	for (; *services && k < 16; services++, k++) {
		snprintf(specs[k], sizeof(specs[k]), "%s%s:0", *services,
			 strchr(*services, '/') ? "" : "/tcp");
		args[n++] = "-s";
		args[n++] = specs[k];
	}
	args[n] = NULL;
	return srv_start(s, backend, 2 * k, args);
}

static uint16_t find_port(const struct srv *s, const char *service,
			  const char *proto, int family)
{
	for (int i = 0; i < s->nls; i++)
		if (s->ls[i].family == family &&
		    !strcmp(s->ls[i].service, service) &&
		    !strcmp(s->ls[i].proto, proto))
			return s->ls[i].port;
	return 0;
}

uint16_t srv_port(const struct srv *s, const char *service, int family)
{
	return find_port(s, service, "tcp", family);
}

uint16_t srv_uport(const struct srv *s, const char *service, int family)
{
	return find_port(s, service, "udp", family);
}

int srv_stop(struct srv *s, int sig, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int status;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, sig);
	for (;;) {
		pid_t r = waitpid(s->pid, &status, WNOHANG);

		if (r == s->pid)
			break;
		if (r < 0 || now_ms() > deadline) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &status, 0);
			s->pid = 0;
			close(s->out_fd);
			return -1;
		}
		usleep(5000);
	}
	s->pid = 0;
	close(s->out_fd);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

const char *srv_log(const struct srv *s)
{
	static char buf[1 << 16];
	int fd = open(s->log_path, O_RDONLY | O_CLOEXEC);
	ssize_t n = 0;

	buf[0] = '\0';
	if (fd < 0)
		return buf;
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_size > (off_t)sizeof(buf) - 1)
		lseek(fd, st.st_size - (off_t)sizeof(buf) + 1, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

bool srv_log_has(const struct srv *s, const char *needle)
{
	return strstr(srv_log(s), needle) != NULL;
}

/* One stats line, "stats: loops=N name=value ...", and the "stats+:"
 * lines that continue it: each field of EVR_STATS as "name=value"; all
 * must be there. */
static int parse_stats(const char *from, struct srv_stats *st)
{
	char line[8192], key[64];
	const char *p = from;
	size_t n = 0;

	/* the first line, then each line right after that continues it */
	for (;;) {
		const char *end = strchr(p, '\n');
		size_t k = end ? (size_t)(end - p) : strlen(p);

		if (n + k + 2 > sizeof(line))
			return -1;
		line[n++] = ' ';
		memcpy(line + n, p, k);
		n += k;
		if (!end || !strstr(end + 1, "stats+: ") ||
		    (strchr(end + 1, '\n') &&
		     strstr(end + 1, "stats+: ") > strchr(end + 1, '\n')))
			break;
		p = strstr(end + 1, "stats+: ") + strlen("stats+:");
	}
	line[n] = '\0';

#define SRV_STATS_PARSE(name, type, help)                                      \
	{                                                                      \
		const char *q;                                                 \
		snprintf(key, sizeof(key), " %s=", #name);                     \
		q = strstr(line, key);                                         \
		if (!q)                                                        \
			return -1;                                             \
		st->name = strtoull(q + strlen(key), NULL, 10);                \
	}
	EVR_STATS(SRV_STATS_PARSE)
#undef SRV_STATS_PARSE
	return 0;
}

/* The server's log from byte off on (static buffer, the first 16 KiB). */
static const char *log_from(const struct srv *s, off_t off)
{
	static char buf[1 << 14];
	int fd = open(s->log_path, O_RDONLY | O_CLOEXEC);
	ssize_t n = -1;

	if (fd >= 0) {
		n = pread(fd, buf, sizeof(buf) - 1, off);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* Ask for a stats line and parse the first one written after the
 * request (the log may be long: only what follows is read). */
int srv_stats(struct srv *s, struct srv_stats *st)
{
	struct stat sb;
	off_t off = stat(s->log_path, &sb) == 0 ? sb.st_size : 0;
	int64_t deadline = now_ms() + 5000;

	kill(s->pid, SIGUSR1);
	while (now_ms() < deadline) {
		const char *p = strstr(log_from(s, off), "stats: ");

		/* (its continuation lines may not be written yet) */
		if (p && strchr(p, '\n') && parse_stats(p, st) == 0)
			return 0;
		usleep(2000);
	}
	return -1;
}

int srv_wait_idle(struct srv *s, struct srv_stats *st, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	do {
		if (srv_stats(s, st) == 0 && st->conns_open == 0 &&
		    st->bufs_free == st->bufs_total && st->bufs_heap == 0 &&
		    st->bytes_queued == 0 &&
		    st->udp_bufs_free == st->udp_bufs_total)
			return 0;
		usleep(20000);
	} while (now_ms() < deadline);
	return -1;
}

int fd_count(pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

int run_capture(const char *const *argv, char *out, size_t outlen,
		int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	size_t len = 0;
	int p[2], status;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid == 0)
		child_exec(argv, p[1], p[1]);
	close(p[1]);
	for (;;) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		int64_t left = deadline - now_ms();
		ssize_t r;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
			kill(pid, SIGKILL);
			break;
		}
		r = read(p[0], out + len, outlen - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len == outlen - 1)
			break;
	}
	out[len] = '\0';
	close(p[0]);
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

void assert_usage_error(const char *const *args, const char *says)
{
	const char *argv[32] = { evringd_path() };
	char out[4096], all[512] = "";
	size_t n = 1;

	for (; args[n - 1] && n < 31; n++) {
		argv[n] = args[n - 1];
		snprintf(all + strlen(all), sizeof(all) - strlen(all), " %s",
			 args[n - 1]);
	}
	argv[n] = NULL;
	cr_assert_eq(run_capture(argv, out, sizeof(out), 10000), 2,
		     "evringd%s: %s", all, out);
	cr_assert(strstr(out, says), "evringd%s: no \"%s\" in: %s", all, says,
		  out);
}

/* ---- clients ---- */

socklen_t loopback_addr(int family, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *in = (void *)ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*in);
	}
	struct sockaddr_in6 *in6 = (void *)ss;

	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	in6->sin6_addr = in6addr_loopback;
	return sizeof(*in6);
}

int count_substr(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle))) {
		n++;
		hay++;
	}
	return n;
}

/* A connect interrupted by a signal goes on in the kernel (connect(2)):
 * wait for it, up to 10 s, and take its result. 0 or -1 with errno. */
static int connect_finish(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int64_t deadline = now_ms() + 10000;
	socklen_t len = sizeof(int);
	int err = 0, r;

	do {
		r = poll(&pfd, 1, (int)(deadline - now_ms()));
	} while (r < 0 && errno == EINTR && now_ms() < deadline);
	if (r <= 0) {
		errno = r == 0 ? ETIMEDOUT : errno;
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -1;
	errno = err;
	return err ? -1 : 0;
}

int tcp_connect(int family, uint16_t port)
{
	return tcp_connect_rcvbuf(family, port, 0);
}

int tcp_connect_rcvbuf(int family, uint16_t port, int rcvbuf)
{
	struct sockaddr_storage ss;
	struct timeval tv = { .tv_sec = 10 };
	socklen_t len;
	int fd;

	len = loopback_addr(family, port, &ss);
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (rcvbuf) /* before the handshake: the window announced is small */
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 &&
	    (errno != EINTR || connect_finish(fd) < 0)) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t recv_retry(int fd, void *p, size_t n, int flags)
{
	ssize_t r;

	do
		r = recv(fd, p, n, flags);
	while (r < 0 && errno == EINTR);
	return r;
}

size_t read_exact(int fd, void *p, size_t n)
{
	char *c = p;
	size_t got = 0;

	while (got < n) {
		ssize_t r = recv(fd, c + got, n - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

ssize_t read_to_eof(int fd, void *p, size_t cap)
{
	char *c = p;
	size_t got = 0;

	for (;;) {
		char sink[4096];
		char *dst = got < cap ? c + got : sink;
		size_t room = got < cap ? cap - got : sizeof(sink);
		ssize_t r = recv(fd, dst, room, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return (ssize_t)got;
		got += (size_t)r;
	}
}

void fill_pattern(void *p, size_t n, uint32_t seed)
{
	unsigned char *c = p;
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		c[i] = (unsigned char)x;
	}
}

int xfer(int fd, const void *out, size_t n, void *in, size_t expect, bool shut,
	 int timeout_ms)
{
	const char *o = out;
	char *i = in;
	size_t sent = 0, got = 0;
	int64_t deadline = now_ms() + timeout_ms;
	int fl = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (shut && n == 0)
		shutdown(fd, SHUT_WR);
	while (got < expect) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - now_ms();

		if (sent < n)
			pfd.events |= POLLOUT;
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		if ((pfd.revents & POLLOUT) && sent < n) {
			ssize_t w = send(fd, o + sent, n - sent, MSG_NOSIGNAL);

			if (w < 0 && errno != EAGAIN)
				break;
			if (w > 0) {
				sent += (size_t)w;
				if (sent == n && shut)
					shutdown(fd, SHUT_WR);
			}
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = recv(fd, i + got, expect - got, 0);

			if (r == 0 || (r < 0 && errno != EAGAIN))
				break;
			if (r > 0)
				got += (size_t)r;
		}
	}
	fcntl(fd, F_SETFL, fl);
	return got == expect ? 0 : -1;
}

long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

int tcp_connect_from(const char *src, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, src, &a.sin_addr);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* Once the time is up, poll without waiting until nothing is left to
 * read: wait_closed(fd, 0) asks whether the EOF is there already, behind
 * whatever data came before it. */
int wait_closed(int fd, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	char buf[4096];

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		ssize_t r;

		if (poll(&pfd, 1, left > 0 ? (int)left : 0) <= 0)
			return 0;
		r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return 1;
	}
}
