/* SPDX-License-Identifier: MIT */
/*
 * test_directory.c - the directory module against the real evringd, on
 * both backends: memory under floods of commands from clients that never
 * read their replies.
 *
 * Layout: clients (a line session, a flood), the floods.
 */
#include "harness.h"

#include <errno.h>
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

static void start_directory(struct srv *s, const char *backend)
{
	const char *argv[] = { "-b", "127.0.0.1", "-s", "directory/tcp:0",
			       NULL };

	cr_assert_eq(srv_start(s, backend, 1, argv), 0);
	cr_assert_str_eq(s->backend, backend);
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
 * largest seen while waiting): bytes_queued the same for 10 samples in a
 * row, 100 ms apart; at most 20 s.
 */
static long settled_rss(struct srv *s)
{
	unsigned long long last = ~0ull;
	long peak = 0;
	int same = 0;

	for (int64_t t0 = now_ms(); same < 10 && now_ms() - t0 < 20000;) {
		struct srv_stats st;
		long rss = rss_kib(s->pid);

		if (rss > peak)
			peak = rss;
		cr_assert_eq(srv_stats(s, &st), 0);
		same = st.bytes_queued == last ? same + 1 : 0;
		last = st.bytes_queued;
		usleep(100 * 1000);
	}
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
 * bound allows twice that, plus the allocator's own pages.
 */
#define FLOOD_GROWTH_MAX_KIB (6 * 1024)

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
 * the server's memory must stay within FLOOD_GROWTH_MAX_KIB of base, and
 * come back there once they leave. Then the first client reads: the first
 * answers commands it sent are answered (all of them when answers is 0).
 * others: connections of the test that stay open meanwhile.
 */
static void flood_and_measure(struct srv *s, const char *cmd, long base,
			      int answers, int others)
{
	int fd[FLOOD_CLIENTS];
	size_t sent[FLOOD_CLIENTS];
	long peak, after;

	for (int i = 0; i < FLOOD_CLIENTS; i++)
		fd[i] = dir_connect(s);
	for (int i = 0; i < FLOOD_CLIENTS; i++)
		sent[i] = flood(fd[i], cmd, FLOOD_BYTES);
	peak = settled_rss(s);
	cr_log_info("%.4s x %d clients: RSS %ld KiB -> %ld KiB (+%ld KiB)", cmd,
		    FLOOD_CLIENTS, base, peak, peak - base);
	cr_assert_leq(peak - base, FLOOD_GROWTH_MAX_KIB,
		      "RSS grew by %ld KiB (%ld -> %ld) under a flood of %s",
		      peak - base, base, peak, cmd);
	/* nothing is lost: the first client gets every answer */
	read_replies(fd[0], answers ? answers : (int)(sent[0] / strlen(cmd)));
	for (int i = 0; i < FLOOD_CLIENTS; i++)
		close(fd[i]);
	cr_assert_eq(wait_conns(s, others), 0, "the flood's connections stay");
	after = rss_kib(s->pid);
	cr_assert_leq(after - base, FLOOD_GROWTH_MAX_KIB,
		      "RSS %ld KiB after the clients left (base %ld)", after,
		      base);
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
