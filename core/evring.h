/* SPDX-License-Identifier: MIT */
/*
 * evring.h - the one public header of libevring.
 *
 * evring is an event-driven TCP/UDP server framework for Linux. A loop runs
 * on io_uring where the kernel allows it and on epoll elsewhere, behind the
 * same completion-shaped API: a protocol module is told that a connection
 * was accepted, that bytes arrived in a buffer, that bytes it queued were
 * sent, and that the connection closed.
 *
 * Protocol modules have headers of their own next to their code, installed
 * under <evring/...>: <evring/modules.h> (the built-in modules and modules
 * by name), <evring/line.h> (the line framer), <evring/daytime.h>.
 *
 * Layout of this header: conventions, version, loop, mailbox, loop groups,
 * buffers, timers, signals, descriptors and child processes, listeners,
 * UDP, outbound connections, connections, protocol modules, loadable
 * modules, addresses, logging.
 *
 * Conventions
 * - Functions that can fail return 0 (or a count) on success and -errno on
 *   failure; the caller turns the error into words. The few that also log
 *   (a line through evr_log, at most once per interval for events that
 *   repeat) say so in their comment; so do the loop's own events (accept
 *   pauses, refused connections, UDP drops).
 * - A loop and everything attached to it belong to the thread that created
 *   the loop: nothing here is thread-safe unless its comment says so. Run
 *   one loop per thread; a loop group (evr_group_start) runs one per CPU.
 *   Loops share nothing; they talk through their mailboxes
 *   (evr_loop_post, which any thread may call on any loop, as it may
 *   evr_group_stop, evr_group_drain and evr_group_stats).
 * - Callbacks may call any function of this API on the object they were
 *   given, including evr_close(); memory of a connection stays valid until
 *   its on_close handler has returned.
 */
#ifndef EVRING_H
#define EVRING_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Version of these headers; evr_version() tells the library's, which may be
 * newer than the headers a program was built with (same major version: the
 * soname is libevring.so.MAJOR). EVR_VERSION_NUM is 0xMMmmpp.
 */
#define EVR_VERSION_MAJOR 0
#define EVR_VERSION_MINOR 1
#define EVR_VERSION_PATCH 0
#define EVR__STR(x)	  #x
#define EVR__XSTR(x)	  EVR__STR(x)
#define EVR_VERSION                                                            \
	EVR__XSTR(EVR_VERSION_MAJOR)                                           \
	"." EVR__XSTR(EVR_VERSION_MINOR) "." EVR__XSTR(EVR_VERSION_PATCH)
#define EVR_VERSION_NUM                                                        \
	((EVR_VERSION_MAJOR << 16) | (EVR_VERSION_MINOR << 8) |                \
	 EVR_VERSION_PATCH)
/* True when the headers are at least version a.b.c. */
#define EVR_VERSION_AT_LEAST(a, b, c)                                          \
	(EVR_VERSION_NUM >= (((a) << 16) | ((b) << 8) | (c)))

/* The library's version at run time: EVR_VERSION_NUM and EVR_VERSION of
 * the libevring the program runs with. */
unsigned evr_version(void);
const char *evr_version_string(void);

#if defined(__GNUC__)
#define EVR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define EVR_PRINTF(f, a)
#endif

/* The structure that embeds member at p (for timers in user structures). */
#define EVR_CONTAINER_OF(p, type, member)                                      \
	((type *)((char *)(p)-offsetof(type, member)))

struct evr_loop;
struct evr_conn;
struct evr_listener;
struct evr_proto;

/* ------------------------------------------------------------------ */
/* Loop                                                                */
/* ------------------------------------------------------------------ */

/*
 * Options of a loop. Initialise with evr_loop_opts_init() and change what
 * you need; zero fields mean "the default".
 */
struct evr_loop_opts {
	/* "auto" (default), "io_uring" or "epoll". When NULL the environment
	 * variable EVRING_BACKEND is read, then "auto". */
	const char *backend;
	/* Optional fast paths to leave off, comma-separated (each has one,
	 * to compare or to work around a kernel): "defer_taskrun",
	 * "coop_taskrun", "register_ring", "waitid", "msg_ring" (mailbox
	 * wake-ups between the io_uring loops of a group; an eventfd then),
	 * "buf_window" (every free receive buffer in the provided-buffer
	 * ring, not a window of the most recently used), "recv_bundle" (a
	 * receive completion fills one buffer, not several) (io_uring),
	 * "send_more" (both).
	 * When NULL the environment variable EVRING_DISABLE is read.
	 * evr_loop_features() tells what runs. */
	const char *disable;
	/* Receive pool: buf_count buffers of buf_size bytes, owned by the
	 * loop. buf_count is rounded up to a power of two (max 32768). */
	uint32_t buf_size;  /* default 16384 */
	uint32_t buf_count; /* default 1024 */
	/* io_uring queue sizes (ignored by epoll). */
	uint32_t sq_entries; /* default 256 */
	uint32_t cq_entries; /* default 4 * sq_entries, at least sq_entries */
	/* Budget of bytes queued for sending on all connections together.
	 * Above it every connection stops reading once its current buffer is
	 * handled; below three quarters of it they resume. 0: 256 MiB. */
	uint64_t queued_max;
	/* Connections open at once (0: no limit); more are closed at
	 * accept, counted in conns_refused and logged once per 10 s. */
	uint32_t max_conns;
	/* Connections open at once from one source address (0: no limit). */
	uint32_t max_conns_per_source;
	/* UDP receive pool, made with the first UDP socket: udp_buf_count
	 * buffers (default 64) of udp_buf_size bytes (default 65536 plus
	 * room for the sender's address, so that no datagram is cut). */
	uint32_t udp_buf_count;
	uint32_t udp_buf_size;
};

/*
 * Counters and gauges of a loop, read with evr_loop_stats(). The list is
 * written once, here: the structure, evringd's SIGUSR1 line and the tests'
 * parser all expand it. X(name, type, help): type is counter (only grows,
 * since the loop was made) or gauge (a level now).
 */
#define EVR_STATS(X)                                                           \
	X(conns_open, gauge, "connections whose memory is live")               \
	X(conns_accepted, counter, "connections accepted")                     \
	X(closes_ok, counter, "connections closed in order")                   \
	X(closes_timeout, counter, "connections closed: idle or send timeout") \
	X(closes_error, counter, "connections closed: an error or an abort")   \
	X(closes_shutdown, counter, "connections closed: the loop stopped")    \
	X(bytes_in, counter, "bytes received on connections")                  \
	X(bytes_out, counter, "bytes sent on connections")                     \
	X(listeners, gauge, "open listening sockets")                          \
	X(bufs_total, gauge, "receive pool buffers")                           \
	X(bufs_free, gauge, "pool buffers available to receive into")          \
	X(bufs_heap, gauge, "live buffers from evr_buf_new()")                 \
	X(bytes_queued, gauge, "bytes in all write queues")                    \
	X(recv_nobufs, counter, "receives stopped: the pool was empty")        \
	X(accept_pauses, counter, "accepting paused: EMFILE, ENFILE, ENOMEM")  \
	X(timers, gauge, "active timers")                                      \
	X(conns_refused, counter, "connections closed at accept: a limit")     \
	X(idle_timeouts, counter, "connections aborted: idle too long")        \
	X(send_timeouts, counter, "connections aborted: queued bytes stuck")   \
	X(wq_overflows, counter, "connections aborted: write queue over max")  \
	X(read_pauses, counter, "reading paused by backpressure")              \
	X(sources, gauge, "distinct source addresses with a connection")       \
	X(alloc_fails, counter, "accepted sockets closed: no memory")          \
	X(conns_connected, counter, "outbound connections started")            \
	X(udp_rx, counter, "datagrams received")                               \
	X(udp_tx, counter, "datagrams sent")                                   \
	X(udp_drop_port, counter, "dropped: source port 0 or a reflector")     \
	X(udp_drop_addr, counter, "dropped: broadcast/multicast/unspecified")  \
	X(udp_drop_rate, counter, "dropped: the source's bucket was empty")    \
	X(udp_drop_loop, counter, "dropped: our own reply coming back")        \
	X(udp_capped, counter, "replies cut to the amplification cap")         \
	X(udp_trunc, counter, "dropped: larger than a receive buffer")         \
	X(udp_tx_drop, counter, "replies dropped: socket or queue full")       \
	X(udp_bufs_total, gauge, "UDP receive pool buffers")                   \
	X(udp_bufs_free, gauge, "UDP pool buffers available")                  \
	X(proxy_refused, counter, "closed: a wrong or late PROXY header")      \
	X(cq_overflows, counter,                                               \
	  "io_uring: iterations that found the CQ full")                       \
	X(mail_rx, counter, "mailbox messages run")                            \
	X(mail_wakes, counter, "mailbox wake-ups")                             \
	X(mail_msgring, counter, "mailbox wake-ups by IORING_OP_MSG_RING")     \
	X(recv_bundles, counter,                                               \
	  "io_uring: receives that filled several buffers at once")

struct evr_stats {
#define EVR__STATS_FIELD(name, type, help) uint64_t name;
	EVR_STATS(EVR__STATS_FIELD)
#undef EVR__STATS_FIELD
};

void evr_loop_opts_init(struct evr_loop_opts *o);

/*
 * Create a loop. Chooses the backend (see evr_loop_opts.backend), logs one
 * line naming it and why another was refused. Returns 0 and stores the loop
 * in *out, or -errno: -EINVAL for a bad option, -ENOTSUP when a forced
 * backend cannot run here (the reason is logged).
 */
int evr_loop_new(struct evr_loop **out, const struct evr_loop_opts *o);

/*
 * Run until evr_loop_stop() was called and every connection and listener has
 * closed, or until there is nothing left to wait for (no listener,
 * connection, UDP socket, timer, descriptor watch or child; signal
 * watchers do not count). Returns 0 or -errno.
 */
int evr_loop_run(struct evr_loop *l);

/*
 * Ask the loop to stop: listeners close, connections are aborted, pending
 * callbacks still run, then evr_loop_run() returns. Safe from any callback.
 */
void evr_loop_stop(struct evr_loop *l);

/*
 * Drain: stop taking connections, tell every open connection (on_drain),
 * let them finish on their own, and evr_loop_stop() whatever is still open
 * after timeout_ms. evr_loop_run() returns once the last one has closed.
 * Listeners reset no client: each refuses new handshakes at once, accepts
 * (and drains) what its queue holds and the handshakes under way, and
 * closes once nothing came for a quarter of a second; one that deferred
 * accepts (defer_accept_s) first turns that off and waits, up to the
 * kernel's next SYN-ACK of each, for the handshakes it held back (seen
 * through sock_diag). UDP sockets close at once. Calling it again, or
 * evr_loop_stop(), ends the drain at once.
 */
void evr_loop_drain(struct evr_loop *l, uint64_t timeout_ms);

/*
 * Free a loop and everything attached to it. Connections still open (the
 * loop was never run to its end: evr_loop_stop() and evr_loop_run() close
 * them all) get their on_close with -ESHUTDOWN first, so that modules free
 * what they keep; their sockets are closed at once, queued bytes are
 * dropped. Listeners, UDP sockets, timers and signal handlers go without
 * callbacks. Returns 0, or -EBUSY, freeing nothing, when called while
 * evr_loop_run() runs (from a callback). NULL is a no-op.
 */
int evr_loop_free(struct evr_loop *l);

/*
 * Work under way out of the loop's sight (on a thread, in another
 * process) whose result will come back to it: evr_loop_run() goes on,
 * through a drain too, while holds outnumber unholds, until
 * evr_loop_stop(). A program that queues work for a thread holds the loop
 * until the answer is handled, so that a drain does not end before it.
 */
void evr_loop_hold(struct evr_loop *l);
void evr_loop_unhold(struct evr_loop *l);

/* "io_uring" or "epoll". */
const char *evr_loop_backend(const struct evr_loop *l);

/* Monotonic time in milliseconds, cached once per loop iteration. */
uint64_t evr_loop_now(const struct evr_loop *l);

void evr_loop_stats(const struct evr_loop *l, struct evr_stats *st);

/* Why auto selection refused io_uring on this loop ("" if it did not). */
const char *evr_loop_backend_reason(const struct evr_loop *l);

/*
 * One line of what this loop runs on, the kernel features it probed and
 * uses, and those left off: "io_uring: single_issuer defer_taskrun
 * register_ring multishot_accept multishot_recv buf_ring recv_bundle
 * buf_window send_more udp_sendmmsg" (a feature off shows as -name).
 * Valid while the loop is.
 */
const char *evr_loop_features(const struct evr_loop *l);

/* ------------------------------------------------------------------ */
/* Mailbox                                                             */
/* ------------------------------------------------------------------ */

typedef void (*evr_post_fn)(struct evr_loop *l, void *arg);

/*
 * Run fn(target, arg) on target's thread, in one of its iterations (as a
 * timer callback runs: it may call anything of this API on target). Safe
 * from any thread, the target's own included. Costs the sender an allocation it
 * recycles, a few atomic operations and at most one wake-up per burst of
 * messages; the receiving loop takes no lock.
 *
 * Wake-ups: a sender that runs io_uring in a loop of the target's group
 * adds an IORING_OP_MSG_RING to its own ring (no system call of its own:
 * it leaves with the sender's next submission; kernel 5.18, probed); any
 * other sender writes the target's eventfd. evr_loop_opts.disable
 * "msg_ring" leaves the eventfd alone.
 *
 * Order: the messages of one sending thread to one loop run in the order
 * they were posted; messages from different threads interleave in no
 * particular order. Nothing is promised across loops.
 *
 * Never lost: 0 means fn will run, in an iteration or, when the loop has
 * left evr_loop_run() for good, in evr_loop_free() before anything is
 * freed. -ESHUTDOWN means the loop's mailbox has closed (evr_loop_free()
 * is under way) and fn will never run; -ENOMEM. The caller must keep
 * target allocated while it may post to it: in a loop group the group
 * does (loops are freed only once none of them runs).
 */
int evr_loop_post(struct evr_loop *target, evr_post_fn fn, void *arg);

/* ------------------------------------------------------------------ */
/* Loop groups                                                         */
/* ------------------------------------------------------------------ */

/*
 * A loop group: N loops, each in its own thread with its own ring or epoll
 * set, buffer pools, timers, limits and listeners: nothing shared, nothing
 * locked while they serve. Loop 0 runs on the thread that calls
 * evr_group_run(), the others on threads of the group, which block every
 * signal: signals reach loop 0's thread, where evr_signal_add() on loop 0
 * hears them, and stop, drain or anything else reaches the other loops
 * through their mailboxes (evr_group_stop, evr_group_drain,
 * evr_loop_post).
 *
 * The listeners of a service are opened in every loop, each its own
 * socket with SO_REUSEPORT (evr_listen_cfg.reuseport): the kernel spreads
 * the connections. Limits that must hold across the loops do
 * (evr_loop_opts.max_conns, max_conns_per_source, evr_conn_limits
 * .max_conns), and so does the UDP guard's per-source rate (a source's
 * datagrams all reach one loop). See docs/architecture.md.
 */
struct evr_group;

/* On loop l's thread, before any loop of the group runs: open its
 * listeners, UDP sockets, timers. index is l's, 0 .. N-1. Setups run one
 * after another in index order, so loop i may use what loops before it
 * set up (the port loop 0 bound for port 0). 0, or -errno to give up. */
typedef int (*evr_group_setup_fn)(struct evr_loop *l, unsigned index,
				  void *arg);

struct evr_group_opts {
	struct evr_loop_opts loop; /* every loop's options */
	/* Loops, at most EVR_GROUP_MAX; 0: as many as there are CPUs this
	 * process may run on (sched_getaffinity). */
	unsigned threads;
	/* Pin loop i to CPU cpus[i % ncpus] (loop 0: the calling thread);
	 * NULL: no pinning. Copied. */
	const int *cpus;
	unsigned ncpus;
	/* With every loop pinned to a CPU of its own: a TCP connection goes
	 * to the loop on the CPU that received its SYN (the NIC's receive
	 * queue: no cache line crosses CPUs), by hash where no loop is. On
	 * loopback that is the client's CPU, which defeats the spread. */
	bool steer_cpu;
	evr_group_setup_fn setup; /* required */
	/* On loop l's thread once every loop has left its run (or the
	 * start gave up), before l is freed: what the program holds of the
	 * loop goes (a loop whose setup failed has it too). NULL: none. */
	void (*fini)(struct evr_loop *l, unsigned index, void *arg);
	void *arg;
};

#define EVR_GROUP_MAX 1024

void evr_group_opts_init(struct evr_group_opts *o);

/*
 * Start a group: create loop 0 on the calling thread and the others on
 * threads of their own, each running setup, in index order. Returns 0 once
 * every loop is set up, ready to run: the caller may print what listens.
 * When a loop cannot be created or its setup fails, every loop made so far
 * is freed on its own thread and the threads are joined; the error is
 * returned (-EINVAL for bad options, after logging why).
 */
int evr_group_start(struct evr_group **out, const struct evr_group_opts *o);

/*
 * Run every loop; loop 0 on the calling thread, which must be the one that
 * started the group (it made loop 0). Loops of a group run until
 * told to stop or drain (evr_group_stop, evr_group_drain; one whose run
 * fails stops the others). Returns once every loop has returned, each has
 * run the messages left in its mailbox and been freed: 0, or the first
 * error of a loop.
 */
int evr_group_run(struct evr_group *g);

/*
 * Stop every loop (evr_loop_stop), or drain every one (evr_loop_drain):
 * through their mailboxes, so safe from any thread, a signal callback on
 * loop 0 included, while the group is not freed.
 */
void evr_group_stop(struct evr_group *g);
void evr_group_drain(struct evr_group *g, uint64_t timeout_ms);

/* After evr_group_run(), or instead of it after evr_group_start(): join
 * and free. NULL is a no-op. */
void evr_group_free(struct evr_group *g);

unsigned evr_group_size(const struct evr_group *g);
/* Loop i while the group runs (NULL once it has ended). */
struct evr_loop *evr_group_loop(const struct evr_group *g, unsigned i);
/* The group of l and l's index in it; NULL and 0 for a loop on its own. */
struct evr_group *evr_loop_group(const struct evr_loop *l);
unsigned evr_loop_index(const struct evr_loop *l);

/*
 * Counters of every loop, summed without stopping them: each loop copies
 * its own in its next iteration (through its mailbox) and the last to do
 * so hands them all to cb on the loop home (a loop of g): per_loop[i] for
 * loop i, and total, their sum. After the group has ended, cb runs at once
 * on the calling thread (home is ignored) with what each loop counted
 * when it ended. 0, or -ENOMEM, -ESHUTDOWN (home is closing).
 */
typedef void (*evr_group_stats_cb)(const struct evr_stats *per_loop, unsigned n,
				   const struct evr_stats *total, void *arg);
int evr_group_stats(struct evr_group *g, struct evr_loop *home,
		    evr_group_stats_cb cb, void *arg);

/* sum += st, every field (gauges too: the levels of several loops add
 * up). */
void evr_stats_add(struct evr_stats *sum, const struct evr_stats *st);

/* ------------------------------------------------------------------ */
/* Buffers                                                             */
/* ------------------------------------------------------------------ */

/*
 * A reference-counted buffer owned by a loop. Received data arrives in
 * buffers of the loop's pool; evr_buf_new() makes buffers for replies.
 *
 * Ownership: a data handler is lent a buffer for the duration of the call.
 * To keep it, take a reference with evr_buf_ref(); to send it, pass it to
 * evr_send(), which takes its own reference. A buffer returns to its pool
 * when the last reference is dropped with evr_buf_unref(). Buffers belong
 * to one loop and one thread.
 */
struct evr_buf {
	char *data;   /* payload; a module may advance it within the buffer */
	uint32_t len; /* payload bytes */
	uint32_t cap; /* bytes that fit at data */
	/* private: */
	uint32_t refs;
	uint16_t id;
	uint8_t kind;
	uint8_t pool;
	struct evr_loop *loop;
	struct evr_buf *next;
	char *base;
};

/* A buffer with room for at least cap bytes, len 0, one reference.
 * NULL when out of memory. */
struct evr_buf *evr_buf_new(struct evr_loop *l, size_t cap);
struct evr_buf *evr_buf_ref(struct evr_buf *b);
void evr_buf_unref(struct evr_buf *b);

/* ------------------------------------------------------------------ */
/* Timers                                                              */
/* ------------------------------------------------------------------ */

/*
 * A one-shot timer embedded in the user's structure. The callback runs on
 * the loop thread and may restart the timer. Time is in milliseconds.
 */
struct evr_timer;
typedef void (*evr_timer_cb)(struct evr_timer *t);
struct evr_timer {
	/* private: */
	uint64_t expires;
	uint32_t slot; /* heap index + 1; 0 when inactive */
	evr_timer_cb cb;
};

void evr_timer_init(struct evr_timer *t, evr_timer_cb cb);
/* Start or restart: fires once after ms milliseconds. */
int evr_timer_start(struct evr_loop *l, struct evr_timer *t, uint64_t ms);
void evr_timer_stop(struct evr_loop *l, struct evr_timer *t);
static inline bool evr_timer_active(const struct evr_timer *t)
{
	return t->slot != 0;
}

/* ------------------------------------------------------------------ */
/* Signals                                                             */
/* ------------------------------------------------------------------ */

typedef void (*evr_signal_cb)(struct evr_loop *l, int signo, void *arg);

/*
 * Deliver signo to cb on the loop thread: a sigaction handler writes it to
 * a pipe the loop watches. One loop per signal (the last to add it wins);
 * evr_loop_free() restores the default action. Signal watchers do not keep
 * evr_loop_run() alive on their own.
 */
int evr_signal_add(struct evr_loop *l, int signo, evr_signal_cb cb, void *arg);

/* ------------------------------------------------------------------ */
/* Descriptors and child processes                                     */
/* ------------------------------------------------------------------ */

/*
 * Readiness of a descriptor the program owns (a socket it hands to another
 * process when ready, a pipe): once, like poll(2), then the watch is idle
 * until started again. The loop never reads, writes or closes fd.
 *
 * A watch is embedded in the user's structure; its memory may be reused
 * as soon as the callback has run or evr_watch_stop() has returned. An
 * active watch keeps evr_loop_run() going, as a timer does (not while the
 * loop drains or stops).
 */
struct evr_watch;
/* res: the poll(2) events that are ready (POLLIN, POLLHUP, ...), or
 * -errno when the descriptor cannot be watched. */
typedef void (*evr_watch_cb)(struct evr_watch *w, int res);
struct evr_watch {
	/* private: */
	void *req;
	evr_watch_cb cb;
};

/* Watch fd for events (POLLIN, POLLOUT). 0, -EBUSY when w is active,
 * -ENOMEM, or the backend's -errno. */
int evr_watch_start(struct evr_loop *l, struct evr_watch *w, int fd,
		    uint32_t events, evr_watch_cb cb);
/* Stop: cb will not run. Idempotent. */
void evr_watch_stop(struct evr_watch *w);
static inline bool evr_watch_active(const struct evr_watch *w)
{
	return w->req != NULL;
}

/*
 * A child process of this one, reaped by the loop when it exits: no
 * SIGCHLD handler, no race with a pid that is reused, no zombie. The loop
 * watches a pidfd (pidfd_open(2)): under io_uring with IORING_OP_WAITID
 * where the kernel has it (6.7), else by waiting for the pidfd to become
 * readable and calling waitid(P_PIDFD, WNOHANG). The feature "waitid"
 * (evr_loop_opts.disable, EVRING_DISABLE) turns IORING_OP_WAITID off.
 * Without pidfd_open (a kernel before 5.3, valgrind) the child's end is
 * polled with waitid(WNOHANG) every 50 ms.
 *
 * The child must be reaped by no one else: nothing may call wait(2) for
 * any child, and SIGCHLD must not be ignored (the kernel would reap it).
 * A watched child keeps evr_loop_run() going, through a drain too, until
 * evr_loop_stop(); a loop that ends leaves the children it still watched
 * running (their parent reaps them, or init once it has exited).
 */
struct evr_child;
/* status: as waitpid(2) gives it (WIFEXITED, WEXITSTATUS, WIFSIGNALED,
 * WTERMSIG, WCOREDUMP); -1 when the child could not be reaped (logged:
 * someone else reaped it). */
typedef void (*evr_child_cb)(struct evr_child *w, pid_t pid, int status);
struct evr_child {
	/* private: */
	void *req;
	evr_child_cb cb;
	pid_t pid;
};

/* Watch child pid. pidfd: a pidfd of it, which the loop takes and closes,
 * or -1 for the loop to open one. 0, -EBUSY, -ENOMEM, -ESRCH (no such
 * child), or another -errno of pidfd_open(2); on failure the loop took
 * nothing (pidfd is still the caller's). */
int evr_child_watch(struct evr_loop *l, struct evr_child *w, pid_t pid,
		    int pidfd, evr_child_cb cb);
/* Stop watching: cb will not run and the loop will not reap the child. */
void evr_child_unwatch(struct evr_child *w);
static inline bool evr_child_active(const struct evr_child *w)
{
	return w->req != NULL;
}

/* ------------------------------------------------------------------ */
/* Listeners                                                           */
/* ------------------------------------------------------------------ */

/*
 * Per-service limits of the connections a listener accepts. Zero fields
 * take the defaults named here.
 *
 * Backpressure: when more than wq_high bytes wait in a connection's write
 * queue it stops reading (the peer is slowed by TCP flow control); it
 * resumes at wq_low or less. A queue that still grows past wq_max (a module
 * that sends more than it receives, to a peer that does not read) aborts
 * the connection.
 */
struct evr_conn_limits {
	uint32_t wq_high; /* default 256 KiB */
	uint32_t wq_low;  /* default wq_high / 4 */
	uint32_t wq_max;  /* default 4 MiB, at least wq_high */
	/* Abort after this long with no byte received or sent (0: never). */
	uint32_t idle_timeout_ms;
	/* Abort when queued bytes made no progress for this long (a peer that
	 * stopped reading; 0: never). */
	uint32_t send_timeout_ms;
	/* Connections of this listener open at once (0: no limit). */
	uint32_t max_conns;
};

/*
 * The PROXY protocol (haproxy's doc/proxy-protocol.txt) on a listener:
 * every connection starts with the header a load balancer puts in front
 * of it, giving the client's address. Configured, never guessed (anyone
 * could claim any address): a listener with proxy set takes no connection
 * without a valid header of that version.
 */
enum evr_proxy {
	EVR_PROXY_NONE,
	EVR_PROXY_V1, /* "PROXY TCP4 ...\r\n" (haproxy's send-proxy) */
	EVR_PROXY_V2, /* the binary header (send-proxy-v2) */
};

struct evr_listen_cfg {
	const struct evr_proto *proto; /* required */
	void *conf;	  /* the module's per-service configuration */
	const char *name; /* service name for logs; default proto->name */
	int backlog;	  /* default 1024 */
	bool v6only;	  /* IPV6_V6ONLY on an IPv6 socket */
	/* SO_REUSEPORT: one listener per loop of a group, on the same
	 * address. In a group the loops' sockets of an address share its
	 * limits, and a steering program (docs/architecture.md) gives their
	 * connections to them alone: another process of the same user that
	 * binds the port with SO_REUSEPORT gets none, unless reuseport_shared
	 * (the kernel's hash then spreads over every socket of the port,
	 * theirs too). */
	bool reuseport;
	bool reuseport_shared;
	/* The connection log: one info line per connection when it ends,
	 * "conn NAME peer=ADDR duration=1.250s in=BYTES out=BYTES end=HOW"
	 * (HOW: closed, peer_closed, timeout, reset, overflow, shutdown or
	 * error:ERRNO), at most 100 lines per second per loop (the rest
	 * are counted and summed up). Off by default. */
	bool log_conns;
	/* The PROXY protocol: the module's on_accept runs once the header
	 * is in, and evr_conn_peer(), the per-source limit and the
	 * connection log see the client it names (a v2 LOCAL header, as
	 * health checks send, or v1 UNKNOWN: the connection's own peer).
	 * Bytes after the header are the client's first data. A wrong
	 * header, or none within proxy_timeout_ms (default 5000), closes
	 * the connection: counted in proxy_refused, logged at most once per
	 * 10 s. TCP only. */
	enum evr_proxy proxy;
	uint32_t proxy_timeout_ms;
	/* TCP_DEFER_ACCEPT: a connection is accepted once its first bytes
	 * arrive, or after about this many seconds (the kernel counts them
	 * in SYN-ACK retransmissions, so it rounds up: 5 becomes 7). For
	 * protocols where the client speaks first (echo, HTTP, tcpmux, the
	 * PROXY protocol): the accept and the first receive come in one
	 * pass, and a client that connects and says nothing costs the loop
	 * nothing until then. Never for a protocol where the server speaks
	 * first (daytime, chargen, a greeting). 0: none of ours (off on a
	 * socket evr_listen() binds; an inherited socket keeps what its
	 * service manager set). evr_listener_set_cfg applies a changed
	 * value, 0 turning off what an earlier configuration set. A drain
	 * turns it off and waits for the handshakes it held back, which the
	 * close would reset (evr_loop_drain). The held-back handshakes count
	 * against the backlog. */
	uint32_t defer_accept_s;
	struct evr_conn_limits lim;
	/* Called once, on the loop thread, when nothing uses this
	 * configuration any more: the listener is closed or serves another
	 * one (evr_listener_set_cfg), and the last connection accepted
	 * under it has closed. The program frees conf then. NULL: none. */
	void (*release)(void *arg);
	void *release_arg;
};

/*
 * Bind, listen and start accepting on a TCP address. On failure returns
 * -errno and logs nothing: the caller names the address in its message.
 * Port 0 binds an ephemeral port; evr_listener_addr() tells which.
 */
int evr_listen(struct evr_loop *l, const struct sockaddr *sa, socklen_t salen,
	       const struct evr_listen_cfg *cfg, struct evr_listener **out);

/*
 * Serve a TCP socket that is bound already, inherited from a service
 * manager (systemd's socket activation) or a parent, as evr_listen() serves
 * its own: IPv4 or IPv6, listening (listen(2) is called with cfg's backlog
 * if it is not yet), made nonblocking; cfg's v6only and reuseport are what
 * the socket has. On success the listener owns fd (it serves a
 * close-on-exec duplicate and fd is closed); on failure fd is left open
 * and -errno returned: -EPROTOTYPE (not a stream socket), -EAFNOSUPPORT
 * (not IPv4 or IPv6), -ENOTSOCK, or what evr_listen() returns. Logs
 * nothing.
 */
int evr_listen_fd(struct evr_loop *l, int fd, const struct evr_listen_cfg *cfg,
		  struct evr_listener **out);

/* Stop accepting and close the socket. Connections already accepted go on.
 * The listener's memory is freed once the kernel has let go of it. */
void evr_listener_close(struct evr_listener *ls);
/* Close, and tell the connections it accepted (under any configuration
 * it served) that the server is draining (on_drain), as evr_loop_drain()
 * does for the whole loop: they finish on their own, or their timeouts
 * end them. */
void evr_listener_drain(struct evr_listener *ls);

/*
 * Serve the connections accepted from now on with cfg (module,
 * configuration, name, limits) instead of the listener's: the socket
 * stays the same, no client is refused. Connections accepted before keep
 * what they had; the previous configuration's release runs when the last
 * of them closes. backlog, v6only and reuseport are the socket's and are
 * ignored; a changed defer_accept_s is set on the socket. 0, -EINVAL (an
 * invalid module, logged), -ENOMEM, -ESHUTDOWN (closed), or the -errno of
 * setsockopt.
 */
int evr_listener_set_cfg(struct evr_listener *ls,
			 const struct evr_listen_cfg *cfg);

int evr_listener_addr(const struct evr_listener *ls,
		      struct sockaddr_storage *ss, socklen_t *len);
int evr_listener_fd(const struct evr_listener *ls);
const char *evr_listener_name(const struct evr_listener *ls);

/* ------------------------------------------------------------------ */
/* UDP                                                                 */
/* ------------------------------------------------------------------ */

#define EVR_UDP_UNLIMITED UINT32_MAX

/*
 * Defences of a UDP service against being used for reflection and
 * amplification (CVE-1999-0103, US-CERT TA14-017A). All are on by default;
 * each is counted in evr_stats and logged once per 10 s per kind.
 */
struct evr_udp_guard {
	/* Answer datagrams from source port 0 and from the ports of services
	 * that answer UDP unsolicited (7, 13, 17, 19, 37, 53, 123, 161, ...)?
	 * Default false: they are dropped (two such services would answer
	 * each other forever). */
	bool allow_reflector_ports;
	/* Answer broadcast, multicast and unspecified source addresses?
	 * Default false. */
	bool allow_special_addrs;
	/* Take a datagram that repeats our last reply to its sender's port
	 * (a server port: outside the kernel's ephemeral range) within 1 s?
	 * Default false: that is our own reply coming back from another
	 * server forged into talking to us. A client that sends its next
	 * request from on_datagram to a server sets it (the server's echo
	 * repeats it). */
	bool allow_own_replies;
	/* More source ports to drop: the server's own, for instance. */
	const uint16_t *deny_ports;
	uint32_t ndeny_ports;
	/* Replies per second and burst per source address (token bucket);
	 * defaults 100 and 200; EVR_UDP_UNLIMITED turns the limit off. */
	uint32_t rate;
	uint32_t burst;
	/* Source addresses tracked by the buckets (default 4096): a fixed
	 * table, so memory stays flat under a flood from many sources. */
	uint32_t sources;
	/* A reply to a datagram (sent from within on_datagram to its sender)
	 * is at most this many times the request, counted in bytes on the
	 * wire: payload plus 28 bytes of IPv4 and UDP headers, or 48 of
	 * IPv6 and UDP. Default 3: enough for daytime's line to a 1-byte
	 * request (about 2.5x) and time's 4 bytes to an empty datagram
	 * (1.14x), while chargen, 358.8x in US-CERT TA14-017A, is held to
	 * 3x. A longer reply is not sent at all (a cut reply is useless to
	 * the client): it is counted in udp_capped and logged.
	 * EVR_UDP_UNLIMITED turns the cap off. */
	uint32_t amplification;
};

struct evr_udp_cfg {
	const struct evr_proto *proto; /* with on_datagram */
	void *conf;
	const char *name; /* for logs; default proto->name */
	bool v6only;
	/* As for listeners; in a group a source's datagrams all reach one
	 * loop, whose guard is then its only one. */
	bool reuseport;
	bool reuseport_shared;
	struct evr_udp_guard guard;
	/* As in evr_listen_cfg: called once nothing uses conf any more
	 * (the socket is closed, or serves another configuration). */
	void (*release)(void *arg);
	void *release_arg;
};

struct evr_udp;

/* Bind a UDP socket and start receiving; -errno on failure (not logged). */
int evr_udp_bind(struct evr_loop *l, const struct sockaddr *sa, socklen_t salen,
		 const struct evr_udp_cfg *cfg, struct evr_udp **out);
/* The same for a bound UDP socket inherited from a service manager or a
 * parent, as evr_listen_fd() for TCP: on success u owns fd; on failure fd
 * is left open (-EPROTOTYPE: not a datagram socket). */
int evr_udp_bind_fd(struct evr_loop *l, int fd, const struct evr_udp_cfg *cfg,
		    struct evr_udp **out);
/* Stop and close; its memory goes once the kernel has let go of it. */
void evr_udp_close(struct evr_udp *u);
/* Serve the datagrams received from now on with cfg (module,
 * configuration, name, guard) on the same socket; the previous
 * configuration's release runs at once, so not from this socket's own
 * on_datagram. v6only and reuseport are ignored. 0, -EINVAL, -ENOMEM,
 * -ESHUTDOWN. */
int evr_udp_set_cfg(struct evr_udp *u, const struct evr_udp_cfg *cfg);
int evr_udp_addr(const struct evr_udp *u, struct sockaddr_storage *ss,
		 socklen_t *len);
/* Drop datagrams from this source port too (a port the server itself
 * serves, known only once bound). -ENOSPC past 64 ports. */
int evr_udp_deny_port(struct evr_udp *u, uint16_t port);
void *evr_udp_conf(const struct evr_udp *u);
struct evr_loop *evr_udp_loop(const struct evr_udp *u);

/*
 * Send len bytes of b at b->data + off as one datagram to peer: takes a
 * reference, copies nothing. A reply from within on_datagram to the
 * sender over the guard's amplification limit is not sent (-EMSGSIZE,
 * counted in udp_capped, logged at most once per 10 s); see
 * evr_udp_reply_max(). UDP never blocks: when the socket or the send queue
 * is full the datagram is dropped and counted. Returns 0, -EMSGSIZE (over
 * the limit, or over 65507 bytes to IPv4, 65527 to IPv6), -EINVAL,
 * -ENOMEM.
 */
int evr_udp_send_ref(struct evr_udp *u, struct evr_buf *b, size_t off,
		     size_t len, const struct sockaddr *peer,
		     socklen_t peerlen);
int evr_udp_send(struct evr_udp *u, struct evr_buf *b,
		 const struct sockaddr *peer, socklen_t peerlen);
int evr_udp_send_copy(struct evr_udp *u, const void *p, size_t len,
		      const struct sockaddr *peer, socklen_t peerlen);

/* Inside on_datagram: the longest reply payload to the datagram's sender
 * that the amplification limit lets through (chargen chooses its length
 * with it). Elsewhere: the longest datagram payload of the socket's
 * family. */
size_t evr_udp_reply_max(const struct evr_udp *u);

/* ------------------------------------------------------------------ */
/* Outbound connections                                                */
/* ------------------------------------------------------------------ */

/*
 * A connector makes outbound connections that share a module, its
 * configuration and limits, as the connections of a listener do (cfg's
 * backlog, v6only and reuseport are ignored). Outbound connections have the
 * same buffers, write queue, backpressure, timeouts and close rules as
 * accepted ones. Connections made go on after evr_connector_free().
 */
struct evr_connector;

int evr_connector_new(struct evr_loop *l, const struct evr_listen_cfg *cfg,
		      struct evr_connector **out);
void evr_connector_free(struct evr_connector *cn);

/*
 * Start connecting to dst, from src when not NULL (an address with port 0
 * spreads clients over source addresses). Returns 0 and the connection in
 * *out, whose module hears on_connect once it is established, or on_close
 * with the error if it fails; data queued before that is sent after it.
 * Returns -errno, and makes no connection, when the socket cannot be made.
 */
int evr_connect(struct evr_connector *cn, const struct sockaddr *dst,
		socklen_t dstlen, const struct sockaddr *src, socklen_t srclen,
		struct evr_conn **out);

/*
 * Serve a socket that is already connected (one end of a socketpair, a
 * descriptor inherited from a parent) as a connection of cn: its blocking
 * mode is set as the backend wants, and its module hears on_connect in a
 * later iteration, as
 * for evr_connect. The connection owns fd from then on. -errno, and fd is
 * left alone, when it cannot be taken.
 */
int evr_adopt(struct evr_connector *cn, int fd, struct evr_conn **out);

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

/*
 * Queue the payload of b for sending, after everything queued before: takes
 * a reference, copies nothing. Bytes go out in order, with at most one send
 * in flight per socket. Returns 0, -EPIPE when the connection is closing.
 * A send that cannot be queued aborts the connection, which would otherwise
 * go on with a hole in its stream: -ENOBUFS past the queue's wq_max (logged
 * once per 10 s), -ENOMEM out of memory.
 */
int evr_send(struct evr_conn *c, struct evr_buf *b);

/* Queue len bytes of b starting at b->data + off (a slice; no copy). */
int evr_send_ref(struct evr_conn *c, struct evr_buf *b, size_t off, size_t len);

/* Queue a copy of len bytes at p (joined to the last reply buffer when it
 * has room). -ENOMEM, and the connection aborted, when no buffer can be
 * had. */
int evr_send_copy(struct evr_conn *c, const void *p, size_t len);

/* Queue a printf-formatted copy. */
int evr_sendf(struct evr_conn *c, const char *fmt, ...) EVR_PRINTF(2, 3);
int evr_vsendf(struct evr_conn *c, const char *fmt, va_list ap);

/*
 * Close gracefully: stop receiving, send what is queued, then close the
 * socket. Idempotent and safe from any callback. on_close runs once the
 * queue has drained (or failed).
 */
void evr_close(struct evr_conn *c);

/* Close now: drop what is queued and close the socket. on_close gets err. */
void evr_abort(struct evr_conn *c, int err);

/*
 * Flow control decided by the module: stop receiving on c until
 * evr_conn_resume() (a proxy whose other side is backed up, a chat room
 * whose members lag). Pauses are counted: reading restarts when every
 * evr_conn_pause() has had its evr_conn_resume(), so a module and a
 * helper under it (the line framer holds input the same way) may each
 * pause for reasons of their own. Bytes already on their way are held and
 * handed over after the resume, in order; none are lost, TCP slows the
 * peer meanwhile. Independent of the core's own backpressure: reading
 * restarts when neither holds it.
 */
void evr_conn_pause(struct evr_conn *c);
void evr_conn_resume(struct evr_conn *c);

/*
 * Take the socket away from the loop, for another owner (a program the
 * connection is handed to): returns the descriptor, which the caller owns
 * from then on, and closes the connection without touching the socket:
 * nothing more is received or sent, on_close(c, 0) follows in a later
 * pass. The loop stops watching the socket before returning, under
 * io_uring too (its receive is cancelled at once), so no byte that
 * arrives later is taken; bytes the loop had already received and not
 * yet handed to the module are dropped, which is why the place to detach
 * is on_accept (nothing received yet) or a point of the protocol where
 * the peer waits for an answer. The socket keeps its flags (nonblocking
 * under epoll) and close-on-exec. -EBUSY when bytes are queued or being
 * sent, or the connection is connecting; -EPIPE when it is closing.
 */
int evr_conn_detach(struct evr_conn *c);

/*
 * Hand c to another module: from now on it is a connection of cn (its
 * module, configuration and limits; see evr_connector_new), with a fresh
 * zeroed state (the old module's state is gone: it frees what it keeps
 * before calling, and touches its state no more). The new module hears
 * on_accept (returning < 0 closes c), then on_data with the len bytes at
 * p when len > 0 (bytes that arrived for it already, copied). Bytes
 * queued before the switch are still sent, first. 0, -EPIPE (closing),
 * -EBUSY (still connecting), -EAGAIN (cn's max_conns is reached),
 * -EINVAL (cn is freed, or of another loop), -ENOMEM.
 */
int evr_conn_switch(struct evr_conn *c, struct evr_connector *cn, const void *p,
		    size_t len);

/* proto->state_size bytes, zeroed at accept; NULL for a module without
 * state_size. */
void *evr_conn_state(struct evr_conn *c);
void *evr_conn_conf(const struct evr_conn *c); /* the listener's cfg.conf */
void *evr_conn_udata(const struct evr_conn *c);
void evr_conn_set_udata(struct evr_conn *c, void *udata);
struct evr_loop *evr_conn_loop(const struct evr_conn *c);
int evr_conn_fd(const struct evr_conn *c);
size_t evr_conn_queued(const struct evr_conn *c); /* bytes not yet sent */
bool evr_conn_closing(const struct evr_conn *c);
int evr_conn_peer(const struct evr_conn *c, struct sockaddr_storage *ss,
		  socklen_t *len);

/* ------------------------------------------------------------------ */
/* Protocol modules                                                    */
/* ------------------------------------------------------------------ */

/*
 * A protocol module. Every handler is optional; missing ones get the
 * defaults named below, so the core never tests for NULL on a hot path.
 *
 * conf: a module may keep per-service configuration. The daemon allocates
 * conf_size bytes, calls conf_init, then conf_set for each option given by
 * the user (only keys listed in opts), and hands the result to
 * evr_listen() in cfg.conf.
 */
/* An option of a module, as a program shows it: key and one line of
 * help ("format", "STRFTIME: the line's strftime(3) format"). */
struct evr_proto_opt {
	const char *key;
	const char *help;
};

struct evr_proto {
	const char *name;    /* [a-z0-9_-]+, required */
	const char *summary; /* one line for --help */
	/* The keys conf_set takes, ending with { NULL }: a program lists
	 * them in its help and gives a module no key it did not list. */
	const struct evr_proto_opt *opts;
	size_t state_size; /* per-connection bytes, zeroed, <= 64 KiB */
	size_t conf_size;  /* per-service configuration bytes */

	int (*conf_init)(void *conf);
	/* -EINVAL for a bad value, -ENOENT for an unknown key */
	int (*conf_set)(void *conf, const char *key, const char *value);
	void (*conf_fini)(void *conf);

	/* A connection was accepted. Return <0 to refuse it (it is closed).
	 * Default: accept. */
	int (*on_accept)(struct evr_conn *c);
	/* Bytes arrived in b (lent for the call). Default: discard. */
	void (*on_data)(struct evr_conn *c, struct evr_buf *b);
	/* The peer shut down its sending side. Default: evr_close(). */
	void (*on_eof)(struct evr_conn *c);
	/* n queued bytes reached the kernel. Default: nothing. */
	void (*on_sent)(struct evr_conn *c, size_t n);
	/* Last call for c: err is 0 after an orderly close, else -errno.
	 * Default: nothing. */
	void (*on_close)(struct evr_conn *c, int err);
	/* The server is draining: finish what is under way and close (an HTTP
	 * server closes after the current response). Default: nothing; the
	 * connection stays until its peer closes or the drain times out. */
	void (*on_drain)(struct evr_conn *c);
	/* An outbound connection (evr_connect, evr_adopt) is established;
	 * receiving starts after it returns. A connection that fails to
	 * connect gets on_close with the error instead. Default: on_accept
	 * (returning < 0 closes), so a module written for accepted
	 * connections serves the others too; else nothing. */
	void (*on_connect)(struct evr_conn *c);

	/* UDP: a datagram arrived in b (lent for the call) from peer, which
	 * passed the socket's guard. A module that has it can serve UDP;
	 * one with on_accept or on_data can serve TCP; a module may have
	 * both. */
	void (*on_datagram)(struct evr_udp *u, struct evr_buf *b,
			    const struct sockaddr *peer, socklen_t peerlen);

	/* EVR_PROTO_* flags: what a program serving the module should
	 * know. */
	unsigned flags;
};

/* The configuration holds state that every connection of a service
 * shares and changes (a table), unguarded, or objects of one loop: a
 * program with a loop group serves the module on one loop only. */
#define EVR_PROTO_ONE_LOOP (1u << 0)
/* Bound to the loopback addresses unless the addresses are given (an
 * endpoint of the server's own counters). */
#define EVR_PROTO_LOCAL (1u << 1)

/*
 * Check that a module is usable: a valid name, at least one of on_accept,
 * on_connect, on_data or on_datagram, a bounded state size, configuration
 * hooks that agree with conf_size, options only with conf_set. Returns 0
 * or -EINVAL with a reason in why. evr_listen(), evr_udp_bind() and
 * evr_connector_new() refuse an invalid module with -EINVAL and log why.
 */
int evr_proto_validate(const struct evr_proto *p, char *why, size_t whylen);

/* ------------------------------------------------------------------ */
/* Loadable modules                                                    */
/* ------------------------------------------------------------------ */

/*
 * A module built as a shared object that a program such as evringd loads
 * (evringd --module PATH) exports one symbol, evr_module, with
 * EVR_MODULE_EXPORT(its proto). The program checks abi before it reads
 * anything else: a module built against another version of this header
 * is refused with a message, never run. The module calls the evr_ API of
 * the program that loads it (it links against no libevring of its own).
 *
 * EVR_MODULE_ABI grows whenever a change of this header would make a
 * module built before it misbehave (a structure a module reads or fills,
 * a function's meaning). abi and size stay the first two fields forever.
 */
#define EVR_MODULE_ABI	  1
#define EVR_MODULE_SYMBOL "evr_module"

struct evr_module {
	uint32_t abi;  /* EVR_MODULE_ABI of the header it was built with */
	uint32_t size; /* sizeof(struct evr_module) */
	const struct evr_proto *proto;
};

#define EVR_MODULE_EXPORT(p)                                                   \
	__attribute__((visibility("default")))                                 \
	const struct evr_module evr_module = { EVR_MODULE_ABI,                 \
					       sizeof(struct evr_module),      \
					       &(p) }

/* ------------------------------------------------------------------ */
/* Addresses                                                           */
/* ------------------------------------------------------------------ */

#define EVR_ADDRSTRLEN 64 /* "[ffff:...:ffff%ifname]:65535" */

/* "127.0.0.1:7", "[::1]:7". Returns buf. */
const char *evr_addr_str(const struct sockaddr *sa, char *buf, size_t len);

/* Parse a numeric IPv4 or IPv6 address (brackets allowed) with a port.
 * Returns 0 or -EINVAL. */
int evr_addr_parse(const char *host, uint16_t port, struct sockaddr_storage *ss,
		   socklen_t *len);

/* ------------------------------------------------------------------ */
/* Logging                                                             */
/* ------------------------------------------------------------------ */

/*
 * Log lines. The library logs a few events itself, one line each (at most
 * one per interval for events that repeat, the rest counted and summed up
 * when the interval ends, "WHAT: N more in the last 10 s"):
 *
 *   evr_loop_new()      the backend chosen and why another was refused
 *                       (info), a forced backend that cannot run (err)
 *   evr_listen(),
 *   evr_udp_bind(),
 *   evr_connector_new() an invalid module (err)
 *   the running loop    accepting paused and resumed (EMFILE, ENFILE,
 *                       ENOMEM: warn, info), connections refused by a
 *                       limit (warn), write queues over wq_max (warn),
 *                       UDP datagrams dropped by the guard (warn), idle
 *                       and send timeouts (debug), the drain deadline
 *                       (warn), the connection log when a listener asks
 *                       for it (info), failed system calls of a backend
 *                       (err)
 *   evr_loop_free()     the counts of rate-limited events not reported yet
 *
 * Every other function reports errors only by its return value.
 */
enum evr_log_level {
	EVR_LOG_ERR,
	EVR_LOG_WARN,
	EVR_LOG_INFO,
	EVR_LOG_DEBUG,
};

/*
 * Where lines go. By default to stderr as "ident: level: message", one
 * write(2) per line; when stderr is the systemd journal's stream (see
 * evr_log_stderr_is_journal) as "<N>message", N the syslog priority.
 *
 * A program takes every line, with its level, by setting a handler: fn is
 * called for each line at or above the level set, with the message (no
 * ident, level or newline; at most 1023 bytes; valid for the call only)
 * and arg. fn runs on the thread that logs (the loop's) and must not call
 * evr_log. NULL restores the default. Not thread-safe: set it before
 * starting loops.
 */
typedef void (*evr_log_fn)(enum evr_log_level level, const char *msg,
			   void *arg);
void evr_log_set_handler(evr_log_fn fn, void *arg);

void evr_log_set_level(enum evr_log_level level);
enum evr_log_level evr_log_get_level(void);
/* The default handler's ident ("evring"); the string must outlive its
 * use. */
void evr_log_set_ident(const char *ident);
/* "error", "warning", "info", "debug". */
const char *evr_log_level_name(enum evr_log_level level);
/* The syslog(3) priority of a level: LOG_ERR, LOG_WARNING, LOG_INFO,
 * LOG_DEBUG (3, 4, 6, 7), also the journal's "<N>" prefix. */
int evr_log_syslog_priority(enum evr_log_level level);
/* True when stderr is the stream systemd connected to the journal: the
 * environment variable JOURNAL_STREAM ("DEVICE:INODE") names it
 * (systemd.exec(5)). */
bool evr_log_stderr_is_journal(void);

void evr_log(enum evr_log_level level, const char *fmt, ...) EVR_PRINTF(2, 3);
void evr_vlog(enum evr_log_level level, const char *fmt, va_list ap);

#define evr_log_err(...)  evr_log(EVR_LOG_ERR, __VA_ARGS__)
#define evr_log_warn(...) evr_log(EVR_LOG_WARN, __VA_ARGS__)
#define evr_log_info(...) evr_log(EVR_LOG_INFO, __VA_ARGS__)
#define evr_log_debug(...)                                                     \
	do {                                                                   \
		if (evr_log_get_level() >= EVR_LOG_DEBUG)                      \
			evr_log(EVR_LOG_DEBUG, __VA_ARGS__);                   \
	} while (0)

#ifdef __cplusplus
}
#endif
#endif /* EVRING_H */
