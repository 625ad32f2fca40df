/* SPDX-License-Identifier: MIT */
/*
 * harness.h - shared pieces of the test programs.
 *
 * Servers: srv_start() runs the real evringd (path in $EVRINGD) on
 * ephemeral loopback ports with a chosen backend, parses the listener lines
 * it prints, and keeps its log in a file the test can search. The server is
 * killed with the test process if the test dies (PR_SET_PDEATHSIG), and
 * srv_stop() ends it by PID and returns its exit status.
 *
 * Clients: blocking sockets with receive/send timeouts, so that a test that
 * goes wrong fails within seconds instead of hanging.
 *
 * BACKEND_TEST(suite, name) defines one test body run once per backend, as
 * suite_io_uring::name and suite_epoll::name. Where io_uring cannot run at
 * all (a container's seccomp profile, kernel.io_uring_disabled=2) the
 * io_uring variant is skipped with the reason the library gives, and the
 * runner prints every skipped test with its reason (Criterion's default
 * output says nothing about skips).
 */
#ifndef EVRING_TEST_HARNESS_H
#define EVRING_TEST_HARNESS_H

#include <criterion/criterion.h>
#include "evring.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define BACKEND_TEST(suite, name, ...)                                         \
	static void suite##_##name##_body(const char *backend);                \
	Test(suite##_io_uring, name, .timeout = 120, ##__VA_ARGS__)            \
	{                                                                      \
		skip_unless_backend_runs("io_uring");                          \
		suite##_##name##_body("io_uring");                             \
	}                                                                      \
	Test(suite##_epoll, name, .timeout = 120, ##__VA_ARGS__)               \
	{                                                                      \
		suite##_##name##_body("epoll");                                \
	}                                                                      \
	static void suite##_##name##_body(const char *backend)

/*
 * NULL when the io_uring backend can run in this process, else why not, in
 * the library's words ("io_uring_setup: Operation not permitted (...)").
 * Found out once per process, by creating a loop with backend "io_uring"
 * through the public API, which probes for real.
 */
const char *io_uring_refusal(void);

/* Skip the running test, naming the reason, when backend is "io_uring"
 * and io_uring cannot run here. Any other backend: nothing. */
void skip_unless_backend_runs(const char *backend);

#define SRV_MAX_LISTENERS 32

struct srv_listener {
	char service[32];
	char proto[8]; /* "tcp" or "udp" */
	int family;
	uint16_t port;
};

struct srv {
	pid_t pid;
	int out_fd; /* the server's stdout */
	char log_path[64];
	char backend[16];
	struct srv_listener ls[SRV_MAX_LISTENERS];
	int nls;
};

/* Counters from the server's SIGUSR1 stats line: every field of
 * EVR_STATS (evring.h), name=value. */
struct srv_stats {
#define SRV_STATS_FIELD(name, type, help) unsigned long long name;
	EVR_STATS(SRV_STATS_FIELD)
#undef SRV_STATS_FIELD
};

/* Path of the evringd under test. */
const char *evringd_path(void);

/*
 * Start evringd with argv (NULL-terminated, without the program name) plus
 * "--backend=<backend>" and wait until it has printed nlisteners listener
 * lines. Returns 0, or -1 if it exited or timed out (its log is printed).
 */
int srv_start(struct srv *s, const char *backend, int nlisteners,
	      const char *const *argv);

/* backend NULL: no --backend option. */

/* Run args[0] with args (a server that prints evringd's listener lines,
 * possibly through a launcher) and wait for nlisteners lines. */
int srv_spawn(struct srv *s, int nlisteners, const char *const *args);

/* Path of a test tool built next to the tests ("seccomp-launch"). */
const char *tool_path(const char *name);

/* Start with "-b 127.0.0.1 -b ::1" and one "-s NAME:0" per service; a
 * NAME without "/udp" or "/tcp" is served over TCP only. */
int srv_start_services(struct srv *s, const char *backend,
		       const char *const *services);

/* TCP port of service on family (AF_INET or AF_INET6), 0 if none. */
uint16_t srv_port(const struct srv *s, const char *service, int family);
/* The same for UDP. */
uint16_t srv_uport(const struct srv *s, const char *service, int family);

/* Send sig, wait up to timeout_ms for exit; returns the exit status, 128+n
 * for a signal, or -1 on timeout (the server is then killed). */
int srv_stop(struct srv *s, int sig, int timeout_ms);

/* Ask for a stats line (SIGUSR1) and parse it. 0 or -1. */
int srv_stats(struct srv *s, struct srv_stats *st);

/* Wait until the stats satisfy conns_open == 0 (up to timeout_ms). */
int srv_wait_idle(struct srv *s, struct srv_stats *st, int timeout_ms);

/* Open file descriptors of pid. */
int fd_count(pid_t pid);

/* Whole log of the server so far (static buffer). */
const char *srv_log(const struct srv *s);
bool srv_log_has(const struct srv *s, const char *needle);

/* Run a program to completion, capturing stderr+stdout into out (NUL
 * terminated, truncated). Returns the exit status or -1. */
int run_capture(const char *const *argv, char *out, size_t outlen,
		int timeout_ms);

/* Run evringd with args (NULL-terminated, without the program name): it
 * must exit 2, a usage error, with says in its output. */
void assert_usage_error(const char *const *args, const char *says);

/* ---- clients ---- */

/* The loopback address of family (127.0.0.1 or ::1) with port; its
 * length. */
socklen_t loopback_addr(int family, uint16_t port, struct sockaddr_storage *ss);
/* How many times needle occurs in hay. */
int count_substr(const char *hay, const char *needle);

/* Connected blocking TCP socket to the loopback of family, with 10 s I/O
 * timeouts. -1 on failure, errno saying why. */
int tcp_connect(int family, uint16_t port);
/* The same with SO_RCVBUF set to rcvbuf before connecting (0: default). */
int tcp_connect_rcvbuf(int family, uint16_t port, int rcvbuf);
int write_all(int fd, const void *p, size_t n);
/* recv(2), again when a stop and continue of the test process interrupted
 * it (the test runner stops its workers; on Linux a socket call with a
 * timeout then fails with EINTR, see signal(7)). */
ssize_t recv_retry(int fd, void *p, size_t n, int flags);
/* Read exactly n bytes; returns n or less on EOF/error/timeout. */
size_t read_exact(int fd, void *p, size_t n);
/* Read until EOF into p (at most cap); returns bytes, -1 on error. */
ssize_t read_to_eof(int fd, void *p, size_t cap);
/*
 * Send n bytes from out while receiving expect bytes into in, with poll, so
 * that neither side can block the other; shut half-closes after the last
 * byte. 0 when all expected bytes arrived in time, else -1.
 */
int xfer(int fd, const void *out, size_t n, void *in, size_t expect, bool shut,
	 int timeout_ms);
/* Fill p with a pattern that depends on seed and offset. */
void fill_pattern(void *p, size_t n, uint32_t seed);

int64_t now_ms(void);

/* Resident memory of pid in KiB (VmRSS), -1 on error. */
long rss_kib(pid_t pid);
/* A TCP socket bound to src (numeric IPv4) and connected to 127.0.0.1;
 * -1 and errno on failure. */
int tcp_connect_from(const char *src, uint16_t port);
/* 1 when the peer closed (EOF or reset) within timeout_ms, else 0; data
 * before the EOF is discarded. timeout_ms 0: closed already? */
int wait_closed(int fd, int timeout_ms);
#endif
