/* SPDX-License-Identifier: MIT */
/*
 * bench.h - evring-bench's one run: its options, its state and the calls
 * between its parts.
 *
 * evring_bench.c reads the command line and runs the phases (warm-up,
 * measurement, report); load.c makes the load of each mode (connections,
 * messages, datagrams); results.c turns the counts into the report and
 * reads the server's CPU time and memory from /proc. One run per process:
 * the options and the state are the globals o and R.
 */
#ifndef EVRING_BENCH_H
#define EVRING_BENCH_H

#include "evring.h"
#include "hist.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <time.h>

#define PERIOD	  4096 /* the pattern repeats every PERIOD bytes */
#define RATE_RING 4096 /* messages in flight per connection, rate mode */
#define MAX_SECS  3600
#define TICK_MS	  1
#define UDP_HDR	  8 /* slot and generation at the head of a datagram */

enum mode { M_ECHO, M_RATE, M_CONNECT, M_IDLE, M_UDP };
enum phase { P_WARMUP, P_MEASURE, P_DONE };

enum err_kind {
	E_REFUSED,
	E_RESET,
	E_TIMEOUT,
	E_MISMATCH,
	E_SHORT,
	E_OVERLOAD,
	E_LOST,
	E_OTHER,
	E__COUNT,
};

extern const char *const mode_names[];
extern const char *const err_names[E__COUNT];

struct opts {
	enum mode mode;
	const char *target;
	uint32_t conns, size, depth, sources;
	double duration, warmup, rate;
	char *request; /* --request, escapes decoded */
	size_t request_len;
	uint64_t close_after; /* --close-after: connect mode, 0 to EOF */
	int server_pid;
	bool json, allow_remote, quiet;
	const char *backend;
};

struct uslot {
	uint32_t gen;
	bool due;      /* answered: the next leaves at the flush */
	uint64_t sent; /* ns */
};

struct run {
	struct evr_loop *loop;
	struct evr_connector *cn;
	struct sockaddr_storage dst;
	socklen_t dstlen;
	char dst_str[EVR_ADDRSTRLEN];
	struct evr_buf *pat;
	enum phase phase;
	uint64_t t_start, t_measure, t_end; /* ns */
	uint64_t ops, bytes, errors[E__COUNT];
	uint64_t last_ops, last_print; /* the progress line */
	uint64_t sec_mark, sec_ops;    /* operations in each whole second: */
	uint64_t sec_min, sec_max;     /* their range over */
	uint32_t nsecs;		       /* this many seconds */
	struct hist hist;
	struct rusage ru0;
	uint64_t srv_cpu0;
	long srv_rss0; /* KiB before connecting, idle mode */
	struct evr_timer tick, second;
	struct evr_conn **conns; /* rate and idle modes */
	uint32_t nconns, started, connected;
	uint64_t rate_next;	/* ns: next message due, rate mode */
	uint64_t rate_interval; /* ns between messages (all connections) */
	uint32_t rate_rr;	/* next connection to send on */
	struct evr_udp *udp;	/* udp mode */
	struct uslot *uslots;
	uint32_t *udue, nudue; /* answered slots, in order */
	struct evr_timer uflush;
	bool tty, progress_shown;
	int status; /* exit status */
};

extern struct opts o;
extern struct run R;

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Errors count only while measuring. */
static inline void count_error(enum err_kind k)
{
	if (R.phase == P_MEASURE)
		R.errors[k]++;
}

/* The run cannot start: a line on stderr, exit 1. */
void fail(const char *fmt, ...) EVR_PRINTF(1, 2);

/* load.c: the module of the mode (static, filled once); then the load
 * started (the pattern, the connections or the datagrams). */
const struct evr_proto *load_proto(void);
void load_start(void);
/* udp mode: losses that look like a per-source rate limit. */
bool load_udp_rate_limited(double ops_s);

/* results.c: the report (table or JSON) on stdout; true when something
 * succeeded. */
bool results_report(void);
/* The CPU time of all threads of pid in ns (0 if unknown); its resident
 * memory in KiB (-1 if unknown). */
uint64_t proc_cpu_ns(int pid);
long proc_rss_kib(int pid);

#endif
