/* SPDX-License-Identifier: MIT */
/*
 * test_directory.c - the directory module against the real evringd, on
 * both backends: memory under floods of commands from clients that never
 * read their replies; who may register and unregister what, the quotas,
 * strict ports, and replies that never echo control bytes.
 *
 * Layout: clients (a line session, a flood), the floods, the policy.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FLOOD_CLIENTS 20
#define FLOOD_BYTES   (64 * 1024)

/* ---- clients ---- */

/* evringd serving the directory on 127.0.0.1, with up to two options. */
static void start_directory_with(struct srv *s, const char *backend,
				 const char *opt1, const char *opt2)
{
	const char *argv[] = { "-b", "127.0.0.1", "-s", "directory/tcp:0",
			       NULL, NULL,	  NULL, NULL,
			       NULL };
	int n = 4;

	if (opt1) {
		argv[n++] = "-o";
		argv[n++] = opt1;
	}
	if (opt2) {
		argv[n++] = "-o";
		argv[n++] = opt2;
	}
	cr_assert_eq(srv_start(s, backend, 1, argv), 0);
	cr_assert_str_eq(s->backend, backend);
}

static void start_directory(struct srv *s, const char *backend)
{
	start_directory_with(s, backend, NULL, NULL);
}

static int dir_connect(struct srv *s)
{
	int fd = tcp_connect(AF_INET, srv_port(s, "directory", AF_INET));

	cr_assert_geq(fd, 0, "connect");
	return fd;
}

/*
 * Read until n replies have ended: lines that start with 'O' or 'E' (OK
 * and ERR; no line of a HELP or LIST body here starts with either).
 */
static void read_replies(int fd, int n)
{
	char buf[4096];
	bool line_start = true;
	int seen = 0;

	while (seen < n) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);

		/* a stop and continue of the test process (Criterion's)
		 * ends a recv with SO_RCVTIMEO with EINTR */
		if (r < 0 && errno == EINTR)
			continue;
		cr_assert_gt(r, 0, "%d replies of %d, then %s", seen, n,
			     r ? strerror(errno) : "EOF");
		for (ssize_t i = 0; i < r; i++) {
			if (line_start && (buf[i] == 'O' || buf[i] == 'E'))
				seen++;
			line_start = buf[i] == '\n';
		}
	}
}

/*
 * Send up to n bytes of the commands in cmd, repeated, without blocking and
 * without reading: as much as the server and the kernel take until no
 * byte has moved for 1 s. Returns the bytes sent.
 */
static size_t flood(int fd, const char *cmd, size_t n)
{
	static char buf[FLOOD_BYTES];
	size_t len = strlen(cmd), sent = 0;
	int64_t last = now_ms();

	for (size_t i = 0; i + len <= sizeof(buf); i += len)
		memcpy(buf + i, cmd, len);
	n = n / len * len;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (sent < n && now_ms() - last < 1000) {
		size_t chunk = n - sent < sizeof(buf) ? n - sent : sizeof(buf);
		ssize_t w =
		    send(fd, buf + sent % sizeof(buf), chunk, MSG_NOSIGNAL);

		if (w > 0) {
			sent += (size_t)w;
			last = now_ms();
		} else {
			cr_assert(w < 0 && errno == EAGAIN, "send: %s",
				  strerror(errno));
			usleep(5000);
		}
	}
	fcntl(fd, F_SETFL, 0);
	return sent;
}

/*
 * The server's resident memory once its queues have stopped moving (the
 * largest seen while waiting), and the most bytes queued seen meanwhile:
 * bytes_queued the same for 10 samples in a row, 100 ms apart (a hang
 * guard of 60 s).
 */
static long settled_rss(struct srv *s, unsigned long long *queued_max)
{
	unsigned long long last = ~0ull;
	long peak = 0;
	int same = 0, samples = 0;

	*queued_max = 0;
	for (int64_t t0 = now_ms(); same < 10 && now_ms() - t0 < 60000;) {
		struct srv_stats st;
		long rss = rss_kib(s->pid);

		if (rss > peak)
			peak = rss;
		/* a busy server (under valgrind) may answer late: next one */
		if (srv_stats(s, &st) < 0)
			continue;
		samples++;
		if (st.bytes_queued > *queued_max)
			*queued_max = st.bytes_queued;
		same = st.bytes_queued == last ? same + 1 : 0;
		last = st.bytes_queued;
		usleep(100 * 1000);
	}
	cr_assert_gt(samples, 0, "the server gave no stats");
	return peak;
}

/* Wait until n connections are open and nothing is queued (up to 20 s). */
static int wait_conns(struct srv *s, unsigned long long n)
{
	struct srv_stats st;

	for (int64_t t0 = now_ms(); now_ms() - t0 < 20000; usleep(20000))
		if (srv_stats(s, &st) == 0 && st.conns_open == n &&
		    !st.bytes_queued)
			return 0;
	return -1;
}

static void assert_baseline_and_stop(struct srv *s)
{
	struct srv_stats st;
	int rc;

	cr_assert_eq(srv_wait_idle(s, &st, 10000), 0,
		     "server not back at baseline: conns_open=%llu "
		     "bufs_free=%llu/%llu bufs_heap=%llu bytes_queued=%llu",
		     st.conns_open, st.bufs_free, st.bufs_total, st.bufs_heap,
		     st.bytes_queued);
	rc = srv_stop(s, SIGTERM, 10000);
	cr_assert_eq(rc, 0, "evringd exit status %d; log:\n%s", rc, srv_log(s));
}

/* ---- floods from clients that never read ---- */

/*
 * What the floods may cost: each connection stops parsing once its queue is
 * over the directory's high-water mark (16 KiB) and holds at most one more
 * command's replies (a LIST of a full table, under 90 KiB), held input (a
 * few receive buffers) aside: FLOOD_CLIENTS * ~110 KiB is about 2 MiB. The
 * bound on memory allows twice that, plus the allocator's own pages.
 */
#define FLOOD_QUEUED_MAX     (FLOOD_CLIENTS * (16 + 90) * 1024ull)
#define FLOOD_GROWTH_MAX_KIB (6 * 1024)

/*
 * Resident memory measures what the server holds only without a sanitizer
 * or valgrind in the way: ASan's quarantine and memcheck's freed-block
 * queue keep freed memory resident. The queued bytes are checked always.
 */
static bool rss_is_meaningful(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return false;
#else
	const char *wrap = getenv("EVRING_WRAP");

	return !wrap || !*wrap;
#endif
}

/* The baseline: after one session, so that caches and pools are warm. */
static long warm_rss(struct srv *s)
{
	int fd = dir_connect(s);

	cr_assert_eq(write_all(fd, "HELP\nLIST\n", 10), 0);
	read_replies(fd, 2);
	close(fd);
	usleep(100 * 1000);
	return rss_kib(s->pid);
}

/*
 * Flood the server from FLOOD_CLIENTS connections with cmd, never reading;
 * the bytes queued must stay within FLOOD_QUEUED_MAX and the server's
 * memory within FLOOD_GROWTH_MAX_KIB of base, and come back there once
 * they leave. Then the first client reads: the first
 * answers commands it sent are answered (all of them when answers is 0).
 * others: connections of the test that stay open meanwhile.
 */
static void flood_and_measure(struct srv *s, const char *cmd, long base,
			      int answers, int others)
{
	int fd[FLOOD_CLIENTS];
	size_t sent[FLOOD_CLIENTS];
	unsigned long long queued;
	long peak, after;

	for (int i = 0; i < FLOOD_CLIENTS; i++)
		fd[i] = dir_connect(s);
	for (int i = 0; i < FLOOD_CLIENTS; i++)
		sent[i] = flood(fd[i], cmd, FLOOD_BYTES);
	peak = settled_rss(s, &queued);
	cr_log_info("%.4s x %d clients: RSS %ld KiB -> %ld KiB (+%ld KiB), "
		    "at most %llu bytes queued",
		    cmd, FLOOD_CLIENTS, base, peak, peak - base, queued);
	cr_assert_leq(queued, FLOOD_QUEUED_MAX,
		      "%llu bytes queued under a flood of %.4s", queued, cmd);
	if (rss_is_meaningful())
		cr_assert_leq(peak - base, FLOOD_GROWTH_MAX_KIB,
			      "RSS grew by %ld KiB (%ld -> %ld) under a flood "
			      "of %.4s",
			      peak - base, base, peak, cmd);
	/* nothing is lost: the first client gets every answer */
	read_replies(fd[0], answers ? answers : (int)(sent[0] / strlen(cmd)));
	for (int i = 0; i < FLOOD_CLIENTS; i++)
		close(fd[i]);
	cr_assert_eq(wait_conns(s, others), 0, "the flood's connections stay");
	after = rss_kib(s->pid);
	if (rss_is_meaningful())
		cr_assert_leq(after - base, FLOOD_GROWTH_MAX_KIB,
			      "RSS %ld KiB after the clients left (base %ld)",
			      after, base);
}

BACKEND_TEST(directory, help_flood_from_clients_that_never_read_is_bounded)
{
	struct srv s;
	long base;

	start_directory(&s, backend);
	base = warm_rss(&s);
	/* HELP: six reply lines per 5-byte command */
	flood_and_measure(&s, "HELP\n", base, 0, 0);
	assert_baseline_and_stop(&s);
}

BACKEND_TEST(directory, list_flood_on_a_full_table_is_bounded)
{
	enum { FILLERS = 16, PER = 64 };
	struct srv s;
	int fill[FILLERS];
	char cmd[64];
	long base;

	start_directory(&s, backend);
	/* 1,023 session entries and evringd's own: the table is full */
	for (int i = 0; i < FILLERS; i++) {
		fill[i] = dir_connect(&s);
		for (int k = 0; k < PER; k++) {
			int len = snprintf(cmd, sizeof(cmd),
					   "REGISTER svc-%02d-%02d %d tcp "
					   "session\n",
					   i, k, 1000 + i * PER + k);
			cr_assert_eq(write_all(fill[i], cmd, (size_t)len), 0);
		}
		read_replies(fill[i], PER);
	}
	base = warm_rss(&s);
	/* LIST: 1,025 reply lines per 5-byte command */
	flood_and_measure(&s, "LIST\n", base, 200, FILLERS);
	for (int i = 0; i < FILLERS; i++)
		close(fill[i]);
	assert_baseline_and_stop(&s);
}

/* ---- who may do what ---- */

/* Send cmds, read until n replies have ended; the answer in out. */
static const char *talk(int fd, const char *cmds, int n)
{
	static char out[65536];
	size_t len = 0;
	bool line_start = true;
	int seen = 0;

	cr_assert_eq(write_all(fd, cmds, strlen(cmds)), 0);
	while (seen < n) {
		ssize_t r = recv(fd, out + len, sizeof(out) - 1 - len, 0);

		if (r < 0 && errno == EINTR)
			continue; /* as in read_replies */
		cr_assert_gt(r, 0, "%d replies of %d to %s; got: %.*s", seen, n,
			     cmds, (int)len, out);
		for (ssize_t i = 0; i < r; i++) {
			char ch = out[len + (size_t)i];

			if (line_start && (ch == 'O' || ch == 'E'))
				seen++;
			line_start = ch == '\n';
		}
		len += (size_t)r;
	}
	out[len] = '\0';
	return out;
}

#define assert_has(out, s) cr_assert(strstr(out, s), "no \"%s\" in: %s", s, out)

/* A non-loopback IPv4 address of this machine, or NULL. */
static const char *other_local_ipv4(void)
{
	static char addr[INET_ADDRSTRLEN];
	struct ifaddrs *ifa, *i;
	const char *found = NULL;

	if (getifaddrs(&ifa) < 0)
		return NULL;
	for (i = ifa; i && !found; i = i->ifa_next) {
		struct sockaddr_in *in = (void *)i->ifa_addr;

		if (!in || in->sin_family != AF_INET ||
		    (ntohl(in->sin_addr.s_addr) >> 24) == 127)
			continue;
		found = inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
	}
	freeifaddrs(ifa);
	return found;
}

/* A client from a non-loopback address, or a skipped test. */
static int remote_connect(struct srv *s)
{
	const char *src = other_local_ipv4();
	int fd;

	if (!src) {
		srv_stop(s, SIGKILL, 5000);
		cr_skip_test("no non-loopback IPv4 address to connect from");
	}
	fd = tcp_connect_from(src, srv_port(s, "directory", AF_INET));
	cr_assert_geq(fd, 0, "connect from %s", src);
	return fd;
}

/*
 * Persistent entries outlive their connection, so they take a trusted
 * client: by default one on loopback. Anyone may register session
 * entries.
 */
BACKEND_TEST(directory, persistent_entries_need_a_loopback_client)
{
	struct srv s;
	const char *out;
	int far, near;

	start_directory(&s, backend);
	far = remote_connect(&s);
	near = dir_connect(&s);
	out = talk(far, "REGISTER web 8080\n", 1);
	assert_has(out, "ERR persistent entries need a loopback client or "
			"AUTH; add \"session\"");
	out = talk(far, "REGISTER web 8080 tcp session\n", 1);
	assert_has(out, "OK registered web 8080/tcp session");
	out = talk(near, "REGISTER db 5432\n", 1);
	assert_has(out, "OK registered db 5432/tcp persistent");
	close(far);
	close(near);
	near = dir_connect(&s);
	out = talk(near, "LIST\n", 1);
	assert_has(out, "db 5432/tcp persistent");
	cr_assert_null(strstr(out, "web"), "%s", out);
	close(near);
	assert_baseline_and_stop(&s);
}

/*
 * Every entry has an owner: a session entry its connection, a persistent
 * one the source that registered it. Nobody else may unregister it, and
 * nobody may change evringd's own entries.
 */
BACKEND_TEST(directory, only_the_owner_unregisters_an_entry)
{
	struct srv s;
	const char *out;
	int a, b, far;

	start_directory(&s, backend);
	a = dir_connect(&s);
	b = dir_connect(&s);
	far = remote_connect(&s);
	talk(a, "REGISTER keep 1000\nREGISTER mine 1001 session\n", 2);
	talk(far, "REGISTER theirs 1002 session\n", 1);
	out = talk(far, "UNREGISTER keep\n", 1);
	assert_has(out, "ERR keep belongs to another client");
	out = talk(b, "UNREGISTER mine\n", 1);
	assert_has(out, "ERR mine belongs to another client");
	out = talk(b, "UNREGISTER theirs\n", 1);
	assert_has(out, "ERR theirs belongs to another client");
	out = talk(b, "UNREGISTER directory\n", 1);
	assert_has(out, "ERR directory is served by evringd");
	/* the same source owns the persistent entry */
	out = talk(b, "UNREGISTER keep\n", 1);
	assert_has(out, "OK unregistered keep (1 entries)");
	out = talk(a, "UNREGISTER mine\n", 1);
	assert_has(out, "OK unregistered mine (1 entries)");
	close(a);
	close(b);
	close(far);
	assert_baseline_and_stop(&s);
}

/* UNREGISTER gives back the connection's quota (per_conn, default 64). */
BACKEND_TEST(directory, unregister_gives_back_the_connection_quota)
{
	struct srv s;
	char cmds[64 * 40];
	const char *out;
	size_t len = 0;
	int fd;

	start_directory(&s, backend);
	fd = dir_connect(&s);
	for (int i = 0; i < 64; i++)
		len += (size_t)snprintf(cmds + len, sizeof(cmds) - len,
					"REGISTER q%d %d tcp session\n", i,
					2000 + i);
	out = talk(fd, cmds, 64);
	cr_assert_eq(count_substr(out, "OK registered"), 64, "%s", out);
	out = talk(fd, "REGISTER q64 2064 tcp session\n", 1);
	assert_has(out, "ERR directory full (connection limit of 64 "
			"reached");
	talk(fd, "UNREGISTER q0\nUNREGISTER q1\n", 2);
	out = talk(fd,
		   "REGISTER q64 2064 tcp session\nREGISTER q65 2065 tcp "
		   "session\nREGISTER q66 2066 tcp session\n",
		   3);
	cr_assert_eq(count_substr(out, "OK registered"), 2, "%s", out);
	assert_has(out, "ERR directory full (connection limit");
	close(fd);
	assert_baseline_and_stop(&s);
}

/*
 * The attack of the issue: 16 connections that each register 64
 * persistent entries, then leave. Persistent entries count per source
 * (per_source, default 64) and take at most half of the table: the table
 * keeps room for everyone's session entries.
 */
BACKEND_TEST(directory, persistent_entries_cannot_fill_the_table)
{
	enum { CONNS = 16, PER = 64 };
	struct srv s;
	static char cmds[PER * 40];
	const char *out;
	int oks = 0, fd;

	start_directory(&s, backend);
	for (int c = 0; c < CONNS; c++) {
		size_t len = 0;

		fd = dir_connect(&s);
		for (int i = 0; i < PER; i++)
			len += (size_t)snprintf(cmds + len, sizeof(cmds) - len,
						"REGISTER p%d-%d %d\n", c, i,
						3000 + c * PER + i);
		out = talk(fd, cmds, PER);
		oks += count_substr(out, "OK registered");
		if (c == CONNS - 1)
			assert_has(out, "ERR directory full (64 persistent "
					"entries from this source)");
		close(fd);
	}
	cr_assert_eq(oks, 64, "%d persistent entries from one source", oks);
	/* a newcomer still finds room */
	fd = dir_connect(&s);
	{
		size_t len = 0;

		for (int i = 0; i < PER; i++)
			len += (size_t)snprintf(cmds + len, sizeof(cmds) - len,
						"REGISTER n%d %d tcp session\n",
						i, 5000 + i);
		out = talk(fd, cmds, PER);
		cr_assert_eq(count_substr(out, "OK registered"), PER, "%s",
			     out);
	}
	close(fd);
	assert_baseline_and_stop(&s);
}

/* RFC-style numbers only: 1 to 65535 in plain decimal. */
BACKEND_TEST(directory, ports_are_plain_decimal)
{
	static const char *const bad[] = { "+80",   "080",
					   "0x50",  "80a",
					   "-1",    "0",
					   "65536", "99999999999999999999",
					   "8\r0" };
	struct srv s;
	char cmd[96];
	const char *out;
	int fd;

	start_directory(&s, backend);
	fd = dir_connect(&s);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(cmd, sizeof(cmd), "REGISTER p%zu %s session\n", i,
			 bad[i]);
		out = talk(fd, cmd, 1);
		assert_has(out, "ERR bad port");
	}
	out = talk(fd,
		   "REGISTER a 1 tcp session\nREGISTER b 65535 udp "
		   "session\n",
		   2);
	assert_has(out, "OK registered a 1/tcp session");
	assert_has(out, "OK registered b 65535/udp session");
	close(fd);
	assert_baseline_and_stop(&s);
}

/*
 * Words quoted back in error replies show bytes outside printable ASCII as
 * \xHH: ESC ]0;...BEL would set a terminal's title, CSI (0x9b) too.
 */
BACKEND_TEST(directory, replies_never_echo_control_bytes)
{
	static const char cmds[] = "LOOKUP \x1b]0;owned\x07\n"
				   "FROB\x1b[2J\n"
				   "REGISTER x 8\x1b[0m session\n"
				   "UNREGISTER \x9b"
				   "31m\n"
				   "LOOKUP a\rb\n";
	struct srv s;
	const char *out;
	int fd;

	start_directory(&s, backend);
	fd = dir_connect(&s);
	out = talk(fd, cmds, 5);
	for (const char *p = out; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch == '\r' && p[1] == '\n')
			continue;
		cr_assert((ch >= 0x20 && ch < 0x7f) || ch == '\n',
			  "byte 0x%02x at %zd in: %s", ch, p - out, out);
	}
	assert_has(out, "ERR no such name \"\\x1b]0;owned\\x07\"");
	assert_has(out, "ERR unknown command \"FROB\\x1b[2J\"");
	assert_has(out, "ERR bad port \"8\\x1b[0m\"");
	assert_has(out, "ERR no such name \"\\x9b31m\"");
	assert_has(out, "ERR no such name \"a\\x0db\"");
	close(fd);
	assert_baseline_and_stop(&s);
}

/* A token file for AUTH: path in path (removed with the test's logs). */
static void write_token(char *path, size_t cap, const char *token)
{
	int fd;

	snprintf(path, cap, "/tmp/evring-token-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, token, strlen(token)), (ssize_t)strlen(token));
	close(fd);
}

/*
 * persistent=token: only a client that sent AUTH with the token of
 * token_file may register persistent entries, from anywhere; it may also
 * unregister anyone's entries but evringd's. A wrong token gets an error,
 * a close and a log line.
 */
BACKEND_TEST(directory, auth_with_the_token_grants_persistence_and_removal)
{
	static const char token[] = "s3cret-t0ken-of-32-bytes-exactly\n";
	char path[64], opt[96];
	struct srv s;
	const char *out;
	int a, b, far;

	write_token(path, sizeof(path), token);
	snprintf(opt, sizeof(opt), "directory.token_file=%s", path);
	start_directory_with(&s, backend, opt, "directory.persistent=token");
	unlink(path);
	a = dir_connect(&s);
	out = talk(a, "REGISTER web 80\n", 1);
	assert_has(out, "ERR persistent entries need AUTH; add \"session\"");
	talk(a, "REGISTER tmp 81 tcp session\n", 1);
	far = remote_connect(&s);
	out = talk(far,
		   "AUTH s3cret-t0ken-of-32-bytes-exactly\n"
		   "REGISTER web 80\nUNREGISTER tmp\nUNREGISTER directory\n",
		   4);
	assert_has(out, "OK authenticated");
	assert_has(out, "OK registered web 80/tcp persistent");
	assert_has(out, "OK unregistered tmp (1 entries)");
	assert_has(out, "ERR directory is served by evringd");
	b = dir_connect(&s);
	out = talk(b, "AUTH s3cret-t0ken-of-32-bytes-exactlY\nLIST\n", 1);
	assert_has(out, "ERR wrong token");
	cr_assert_eq(wait_closed(b, 5000), 1, "still open after a wrong token");
	cr_assert(srv_log_has(&s, "AUTH with a wrong token"), "log:\n%s",
		  srv_log(&s));
	close(a);
	close(b);
	close(far);
	assert_baseline_and_stop(&s);
}

/* Every option is listed in --help, and a bad value stops evringd. */
Test(directory, options_are_listed_and_checked)
{
	static const char *const bad[] = {
		"directory.persistent=maybe",
		"directory.per_conn=0",
		"directory.per_source=x",
		"directory.max_entries=0",
		"directory.token_file=/nonexistent/token",
	};
	const char *help[] = { evringd_path(), "--help", NULL };
	char out[16384];

	cr_assert_eq(run_capture(help, out, sizeof(out), 10000), 0);
	for (const char *const *k =
		 (const char *const[]){ "persistent", "token_file",
					"max_entries", "per_conn", "per_source",
					NULL };
	     *k; k++)
		assert_has(out, *k);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *argv[] = {
			evringd_path(), "-s",	"directory/tcp:0",
			"-o",		bad[i], NULL
		};

		cr_assert_eq(run_capture(argv, out, sizeof(out), 10000), 2,
			     "%s: %s", bad[i], out);
	}
}

/* A framing error: the reason to the client, a close, and a log line. */
BACKEND_TEST(directory, framing_errors_close_with_the_reason_logged)
{
	static char longline[9000];
	struct srv s;
	char buf[256];
	ssize_t n;
	int fd;

	start_directory(&s, backend);
	fd = dir_connect(&s);
	memset(longline, 'x', sizeof(longline));
	cr_assert_eq(write_all(fd, longline, sizeof(longline)), 0);
	n = read_to_eof(fd, buf, sizeof(buf) - 1);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	cr_assert_str_eq(buf, "ERR line too long (more than 8192 bytes)\r\n");
	close(fd);
	cr_assert(srv_log_has(&s, "line: 127.0.0.1:"), "log:\n%s", srv_log(&s));
	cr_assert(srv_log_has(&s, "line too long (more than 8192 bytes); "
				  "closing"),
		  "log:\n%s", srv_log(&s));
	assert_baseline_and_stop(&s);
}
