/* SPDX-License-Identifier: MIT */
/*
 * internal.h - private structures shared by the files of core/.
 *
 * Nothing here is part of the public API; internal non-static functions are
 * named evr__*. Nothing above core/ (protocols/, the daemon, examples/,
 * bench/) includes this file: `make check-layers` keeps it so.
 *
 * Layout: lists, buffers and the pool, write-queue entries, modules,
 * connections, listeners, log rate limits, UDP, source addresses, timers,
 * signals, the loop, fault injection. The backend contract (the ops table
 * and the events backends report) is core/backend/backend.h.
 */
#ifndef EVRING_INTERNAL_H
#define EVRING_INTERNAL_H

#include "evring.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/uio.h>

#define EVR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define EVR_LIKELY(x)	  __builtin_expect(!!(x), 1)
#define EVR_UNLIKELY(x)	  __builtin_expect(!!(x), 0)

/* Kernel versions are named, never written as hex. */
#define EVR_KVER(a, b, c) (((a) << 16) + ((b) << 8) + (c))

/* The least power of two >= v (1 for 0). */
static inline uint32_t evr__pow2_roundup(uint32_t v)
{
	uint32_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

/* ---- intrusive doubly-linked list (circular, head is a sentinel) ---- */

struct evr__list {
	struct evr__list *next, *prev;
};

static inline void evr__list_init(struct evr__list *h)
{
	h->next = h->prev = h;
}

static inline bool evr__list_empty(const struct evr__list *h)
{
	return h->next == h;
}

static inline void evr__list_add_tail(struct evr__list *h, struct evr__list *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static inline void evr__list_del(struct evr__list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}

/* ---- the backend contract: core/backend/backend.h ---- */

#include "backend/backend.h"

/* ---- buffers ---- */

enum evr__buf_kind {
	EVR__BUF_POOL,	/* receive pool; id is the index */
	EVR__BUF_SMALL, /* evr_buf_new(), cached, cap EVR__BUF_SMALL_CAP */
	EVR__BUF_MID,	/* evr_buf_new(), cached, cap = pool buffer size */
	EVR__BUF_BIG,	/* evr_buf_new(), exact size, freed */
};

#define EVR__BUF_SMALL_CAP 256
#define EVR__BUF_CACHE_MAX 1024 /* cached free heap buffers per class */

struct evr__pool {
	char *mem; /* count * size bytes, page aligned */
	size_t mem_len;
	struct evr_buf *bufs; /* count headers */
	uint32_t count;
	uint32_t size;
	uint32_t nfree;	      /* available to receive into */
	struct evr_buf *free; /* free list (epoll backend) */
	uint16_t bgid;	      /* io_uring buffer group, index of the pool */
	/* caches of heap buffers by class */
	struct evr_buf *cache_small, *cache_mid;
	uint32_t ncache_small, ncache_mid;
	uint64_t heap_live;
};

/* Pools: 0 for TCP (l->pool), 1 for UDP datagrams (l->upool, made with
 * the first UDP socket). */
#define EVR__POOL_TCP 0
#define EVR__POOL_UDP 1

int evr__pool_init(struct evr_loop *l, struct evr__pool *p, uint16_t bgid,
		   uint32_t count, uint32_t size);
void evr__pool_fini(struct evr__pool *p);

/* ---- write queue ---- */

struct evr__wq {
	struct evr__wq *next;
	struct evr_buf *buf; /* one reference held */
	char *p;
	uint32_t len;
};

/* ---- connections ---- */

enum {
	EVR__C_RECV = 1 << 0,	   /* a receive is armed / registered */
	EVR__C_SENDING = 1 << 1,   /* a send is in flight */
	EVR__C_CLOSING = 1 << 2,   /* evr_close()/evr_abort() was called */
	EVR__C_CLOSED = 1 << 3,	   /* on_close has run; fd closed or closing */
	EVR__C_EOF = 1 << 4,	   /* the peer sent FIN */
	EVR__C_FLUSH = 1 << 5,	   /* on the loop's flush list */
	EVR__C_STARVED = 1 << 6,   /* on loop->starved: waits for buffers */
	EVR__C_ZOMBIE = 1 << 7,	   /* on the loop's zombie list */
	EVR__C_LINGER = 1 << 8,	   /* closed, draining input before close */
	EVR__C_PAUSED_WQ = 1 << 9, /* reading paused: own queue too long */
	EVR__C_PAUSED_ALL = 1 << 10,  /* on loop->paused_all: over budget */
	EVR__C_CONNECTING = 1 << 11,  /* outbound, not yet connected */
	EVR__C_PAUSED_USER = 1 << 12, /* reading paused by the module */
	EVR__C_RESET = 1 << 13,	      /* aborted with bytes unsent: RST */
	EVR__C_EOF_HELD = 1 << 14,    /* on_eof waits for held bytes */
	EVR__C_REDELIVER = 1 << 15,   /* on loop->redeliver: held bytes due */
	EVR__C_GOT_DATA = 1 << 16,    /* the peer has sent bytes */
	EVR__C_DETACHED = 1 << 17,    /* the socket went to another owner */
	EVR__C_GLOBAL = 1 << 18,      /* counted in the group's conns */
	EVR__C_GSVC = 1 << 19,	      /* counted in svc->gconns */
	EVR__C_GSRC = 1 << 20,	      /* counted in the group's sketch */
	/* flags of the backend (epoll): from bit 24 up */
	EVR__C_BE_READY = 1 << 24, /* on the ready list: data may be pending */
	EVR__C_BE_RDHUP = 1 << 25, /* the peer's FIN is queued behind data */
};

#define EVR__C_PAUSED                                                          \
	(EVR__C_PAUSED_WQ | EVR__C_PAUSED_ALL | EVR__C_PAUSED_USER)

/* The handlers of a module, with defaults filled in. */
struct evr__proto_rt {
	const struct evr_proto *p;
	int (*on_accept)(struct evr_conn *c);
	void (*on_data)(struct evr_conn *c, struct evr_buf *b);
	void (*on_eof)(struct evr_conn *c);
	void (*on_sent)(struct evr_conn *c, size_t n);
	void (*on_close)(struct evr_conn *c, int err);
	void (*on_drain)(struct evr_conn *c);
	void (*on_connect)(struct evr_conn *c);
};

void evr__proto_resolve(const struct evr_proto *p, struct evr__proto_rt *rt);

/*
 * What connections of one listener (or one connector) share: the module's
 * handlers, its configuration, the limits. Connections hold a reference:
 * it outlives the listener's socket.
 */
struct evr__svc {
	struct evr_loop *loop;
	struct evr__proto_rt proto;
	struct evr_conn_limits lim;
	void *conf;
	char name[32];
	uint32_t nconns;
	/* in a group, a reuseport listener's: connections of every loop */
	atomic_uint *gconns;
	uint32_t refs; /* owner + kernel operations + connections */
	void (*release)(struct evr__svc *svc); /* at refs == 0 */
	/* the connection log (connlog.c), the PROXY protocol (proxy.c) */
	bool log_conns;
	uint8_t proxy; /* enum evr_proxy */
	uint32_t proxy_timeout_ms;
	/* the program's: conf is no longer used (evr_listen_cfg.release) */
	void (*cfg_release)(void *arg);
	void *cfg_release_arg;
	/* a listener's own configuration, replaced by evr_listener_set_cfg:
	 * released when its last connection goes */
	bool retired;
	/* a configuration set on a listener: the listener's svc (a counted
	 * reference); NULL for the others */
	struct evr__svc *owner;
};

void evr__svc_init(struct evr__svc *svc, struct evr_loop *l,
		   const struct evr_listen_cfg *cfg,
		   void (*release)(struct evr__svc *svc));
/* Module, configuration, name, limits and release of cfg. */
void evr__svc_set(struct evr__svc *svc, const struct evr_listen_cfg *cfg);
/* Tell the program its configuration is unused (once). */
void evr__svc_cfg_done(struct evr__svc *svc);

struct evr_connector {
	struct evr__svc svc; /* first: svc->release frees the connector */
	bool closed;
};

struct evr_conn {
	struct evr_loop *loop;
	/* counted reference; its module (svc->proto) and configuration
	 * (svc->conf) are the connection's */
	struct evr__svc *svc;
	void *udata;
	int fd;
	uint32_t flags;
	uint16_t refs;	      /* kernel operations in flight (io_uring) */
	uint16_t user_pauses; /* evr_conn_pause() not yet resumed */
	int err;	      /* why it closed */
	uint32_t wq_inflight; /* queue entries covered by the send in flight */
	uint32_t wq_n;	      /* queue entries */
	struct evr__wq *wq_head, *wq_tail;
	size_t wq_bytes;
	/* received while reading was paused, for the module once it resumes
	 * (linked through evr_buf.next) */
	struct evr_buf *held_head, *held_tail;
	struct evr__list link;	 /* loop->conns, until freed */
	struct evr__list starve; /* loop->starved, while EVR__C_STARVED */
	struct evr__list paused; /* loop->paused_all, while EVR__C_PAUSED_ALL */
	struct evr__list redeliver; /* loop->redeliver, EVR__C_REDELIVER */
	struct evr_conn *next;	    /* flush list, then zombie list */
	struct evr__source *src;    /* counted in the per-source table */
	void *state_ext; /* the state, when a module switched to needs more */
	struct evr_timer timer; /* idle and send timeouts; lingering close */
	uint64_t last_active;	/* ms: last byte received or sent */
	uint64_t last_progress; /* ms: last send progress or queue start */
	/* what only some services keep (connlog.c); NULL for the others */
	struct evr__conn_ext *ext;
	/* The backend's own part: no one else reads or writes these. */
	struct {
		void *req; /* io_uring: send context or connect address */
		struct evr__list ready; /* epoll: its ready list */
	} be;
	_Alignas(16) unsigned char state[];
};
/* An idle connection's memory is this and its module's state: 256 bytes is
 * a size class of the allocators (the next is 320), kept on 64-bit. */
_Static_assert(sizeof(void *) != 8 || sizeof(struct evr_conn) <= 256,
	       "struct evr_conn outgrew 256 bytes");

/* Longest wait for the peer's EOF in a lingering close. */
#define EVR__LINGER_MS 2000

/* Resume reading of connections paused by the loop's budget. */
void evr__conn_resume_all(struct evr_loop *l);
void evr__conn_redeliver_all(struct evr_loop *l);
void evr__conn_drain_all(struct evr_loop *l);
/* Drop one kernel reference; the connection is freed later when closed. */
void evr__conn_put(struct evr_conn *c);
/* Loop passes. */
void evr__conn_flush_all(struct evr_loop *l);
void evr__conn_refill(struct evr_loop *l);
void evr__conn_reap(struct evr_loop *l);
void evr__conn_abort_all(struct evr_loop *l, int err);
void evr__conn_close_all(struct evr_loop *l);
void evr__conn_free_all(struct evr_loop *l);
void evr__wq_fini(struct evr_loop *l);

/* ---- log lines at most n per interval (log.c) ---- */

struct evr__ratelimit {
	uint64_t next;	     /* ms: the end of the current interval */
	uint64_t suppressed; /* events refused in it; > 0: on l->ratelimits */
	uint32_t used;	     /* lines logged in it */
	uint32_t interval_ms;
	uint8_t level; /* of the summary line */
	struct evr__list link;
	char what[96]; /* "WHAT: N more in the last 10 s" */
};

/*
 * True when a line may be logged now: at most n per interval. The events
 * refused are counted, and when the interval ends the loop logs "WHAT: N
 * more in the last S s" at level, WHAT formatted from fmt (only for the
 * first event refused in an interval). A zeroed structure is ready; its
 * owner calls evr__ratelimit_fini() before freeing it.
 */
bool evr__ratelimit_n(struct evr_loop *l, struct evr__ratelimit *r,
		      uint32_t interval_ms, uint32_t n,
		      enum evr_log_level level, const char *fmt, ...)
    EVR_PRINTF(6, 7);
/* One line per interval, summed up at warning level. */
#define evr__ratelimit(l, r, interval_ms, ...)                                 \
	evr__ratelimit_n(l, r, interval_ms, 1, EVR_LOG_WARN, __VA_ARGS__)
/* Log what r counted, now, and forget it. */
void evr__ratelimit_fini(struct evr_loop *l, struct evr__ratelimit *r);
void evr__ratelimits_init(struct evr_loop *l);
/* Every pending count now (the loop is going away). */
void evr__ratelimits_flush(struct evr_loop *l);

/* ---- listeners ---- */

struct evr_listener {
	struct evr__svc svc; /* first: svc->release frees the listener */
	/* what new connections get: svc, or a configuration set later
	 * (evr_listener_set_cfg), of which the listener holds a reference */
	struct evr__svc *cur;
	int fd;
	bool closing;
	bool paused;
	bool armed; /* an accept is armed (io_uring) */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct evr_timer pause_timer;
	uint64_t pause_since;
	uint32_t pause_retries;
	struct evr__ratelimit rl_pause, rl_resume;
	struct evr__list link; /* loop->listeners, until freed */
	/* inherited (evr_listen_fd): the socket outlives us, its queue too */
	bool inherited;
	/* TCP_DEFER_ACCEPT: the seconds we set (0: none); when we last
	 * turned it off (ms, 0: never); whether a drain turned it off and
	 * waits for what it held back, and until when */
	uint32_t defer_s;
	uint64_t defer_off;
	bool defer_drain;
	uint64_t defer_until;
	/* draining: no new handshake, what is queued is accepted */
	bool draining;
	uint64_t drain_last; /* ms of the last accept while draining */
	struct evr_timer drain_timer;
};

void evr__listener_close_all(struct evr_loop *l);
void evr__listener_drain_all(struct evr_loop *l);
void evr__listener_free_all(struct evr_loop *l);

/* ---- UDP (udp.c) ---- */

/* A source address as limits count it: the family, then the IPv4 address
 * or the IPv6 /64 (IPv4-mapped IPv6 counts as IPv4). */
#define EVR__SRCKEY_LEN 17

/* A source's entry in a UDP socket's table (udp.c). */
struct evr__bucket {
	uint8_t key[EVR__SRCKEY_LEN];
	uint8_t used;
	uint32_t mtokens;   /* thousandths of a token */
	uint32_t slot;	    /* in the sketch of evicted debts */
	uint64_t last;	    /* ms of the last refill */
	uint64_t seen;	    /* ms of the last datagram: eviction order */
	uint64_t reply_sig; /* port and payload of our last reply; 0: none */
	uint64_t reply_at;  /* ms it was sent */
};

enum evr__udp_drop {
	EVR__UDP_DROP_PORT,
	EVR__UDP_DROP_ADDR,
	EVR__UDP_DROP_RATE,
	EVR__UDP_DROP_LOOP,
	EVR__UDP_CAPPED,
	EVR__UDP_TRUNC,
	EVR__UDP_TX_DROP,
	EVR__UDP__COUNT,
};

#define EVR__UDP_DENY_MAX 64
#define EVR__UDP_OUT_MAX  64

/* Replies of a UDP socket waiting to leave in one sendmmsg (udp.c). */
struct evr__udp_out {
	uint32_t n;
	struct {
		struct evr_buf *buf;
		char *p;
		uint32_t len;
		socklen_t alen;
		struct sockaddr_storage addr;
	} q[EVR__UDP_OUT_MAX];
};

struct evr_udp {
	struct evr__svc svc; /* first: svc->release frees the socket */
	int fd;
	bool closing;
	bool armed;   /* a receive is armed (io_uring) / registered */
	bool starved; /* on loop->udp_starved */
	/* inside on_datagram: replies to the sender are capped, and
	 * remembered in its entry (NULL when it needs none) */
	bool in_handler;
	struct evr__bucket *cur;
	const struct sockaddr *cur_peer;
	socklen_t cur_peerlen;
	bool dirty;	  /* on the loop's UDP flush list */
	uint32_t req_len; /* size of the datagram being handled */
	struct evr_udp_guard guard;
	uint16_t deny[EVR__UDP_DENY_MAX];
	uint32_t ndeny;
	struct evr__bucket *buckets;
	uint32_t nbuckets; /* a power of two */
	uint32_t *sketch;  /* when evicted sources' buckets are full again */
	uint32_t nsketch;  /* a power of two */
	uint64_t seed, seed2;
	struct evr__ratelimit rl[EVR__UDP__COUNT];
	struct sockaddr_storage addr;
	socklen_t addrlen;
	struct msghdr rmsg; /* io_uring: layout of multishot recvmsg buffers */
	struct evr__list link;	 /* loop->udps, until freed */
	struct evr__list starve; /* loop->udp_starved */
	struct evr_udp *next_dirty;
	struct evr__udp_out *out; /* replies waiting for the flush pass */
};

void evr__udp_refill(struct evr_loop *l);
void evr__udp_flush_all(struct evr_loop *l);
void evr__udp_close_all(struct evr_loop *l);
void evr__udp_free_all(struct evr_loop *l);

/* ---- per-source connection counts (source.c) ---- */

struct evr__source {
	struct evr__source *next;
	uint32_t count;
	uint32_t hash;
	uint32_t gslot[2]; /* in a group: its slots in the group's sketch */
	uint8_t key[EVR__SRCKEY_LEN];
};

struct evr__sources {
	struct evr__source **b;
	uint32_t nb; /* buckets, a power of two */
	uint32_t n;
	uint64_t seed;
};

/* The key of sa (-EAFNOSUPPORT for another family), and its hash under a
 * secret seed (so that chosen addresses cannot pile up in one bucket). */
int evr__source_key(const struct sockaddr *sa, uint8_t key[EVR__SRCKEY_LEN]);
uint32_t evr__source_hash(uint64_t seed, const uint8_t key[EVR__SRCKEY_LEN]);
/* A random seed (never 0); salt makes up for a getrandom() that fails. */
uint64_t evr__random_seed(const void *salt);

/* The entry of the peer of fd with its count raised; NULL with *err set
 * (-ENOMEM, or the getpeername error). */
struct evr__source *evr__source_get(struct evr_loop *l, int fd, int *err);
/* The same for an address known otherwise (a PROXY header). */
struct evr__source *evr__source_get_addr(struct evr_loop *l,
					 const struct sockaddr *sa, int *err);
/* One more connection of s (its count raised already) against the loop's
 * per-source limit: true when over it. In a group the count is the
 * group's sketch (gshare.c), which takes the connection when it is not
 * over: the caller marks it EVR__C_GSRC. */
bool evr__source_over(struct evr_loop *l, const struct evr__source *s);
void evr__source_put(struct evr_loop *l, struct evr__source *s);
void evr__sources_fini(struct evr_loop *l);

/* ---- timers (timer.c) ---- */

struct evr__timers {
	struct evr_timer **heap;
	uint32_t n, cap;
	bool running;
};

int64_t evr__timers_next(struct evr_loop *l); /* ms until next, -1 none */
void evr__timers_run(struct evr_loop *l);
void evr__timers_fini(struct evr_loop *l);

/* ---- signals ---- */

#define EVR__NSIG 65

/* ---- watches: a descriptor's readiness, a child's exit (watch.c) ---- */

enum evr__watch_kind {
	EVR__W_FD,    /* an evr_watch */
	EVR__W_CHILD, /* an evr_child: fd is its pidfd */
};

/*
 * The loop's side of an evr_watch or evr_child, allocated by the loop so
 * that the user's structure may go as soon as it is stopped while the
 * kernel still holds this one (io_uring: until the cancelled request's
 * completion). owner is NULL once stopped; the record is freed when the
 * backend answers its start (evr__watch_done), or with the loop.
 */
struct evr__watch {
	struct evr_loop *loop;
	void *owner; /* struct evr_watch or struct evr_child */
	int fd;
	uint32_t events;
	uint8_t kind;
	bool armed;  /* started and not yet answered */
	bool waitid; /* io_uring: armed as IORING_OP_WAITID */
	pid_t pid;
	struct evr__list link; /* loop->watches, until freed */
	/* a child without a pidfd (no pidfd_open: kernel before 5.3,
	 * valgrind): its end is polled on this timer */
	struct evr_timer poll;
	siginfo_t si; /* IORING_OP_WAITID writes the child's end */
};

void evr__watch_free_all(struct evr_loop *l);
/* ---- the mailbox (mailbox.c) ---- */

/* A message on its way: a node of the target's queue. */
struct evr__msg {
	_Atomic(struct evr__msg *) next;
	evr_post_fn fn;
	void *arg;
};

/*
 * An intrusive multi-producer, single-consumer queue (Dmitry Vyukov's):
 * a sender exchanges the tail and links the old tail to its node; the
 * loop takes from the head with no atomic read-modify-write. Senders'
 * fields and the loop's own are kept on separate cache lines.
 */
struct evr__mailbox {
	_Atomic(struct evr__msg *) tail;
	atomic_uint senders; /* posts under way (the close handshake) */
	atomic_bool closed;  /* evr_loop_free() has begun: posts refused */
	atomic_bool wake;    /* a wake-up is on its way: senders need not */
	char pad[64];
	/* the loop's own */
	struct evr__msg *head;
	struct evr__msg stub;
	struct evr__msg *cache; /* free nodes for this thread's posts */
	uint32_t ncache;
	int efd;      /* eventfd: wake-ups from any thread */
	bool more;    /* messages wait: run them next iteration */
	bool msgring; /* others of the group may wake it by MSG_RING */
	bool eventfd_only;
};

int evr__mail_init(struct evr_loop *l);
/* Close the mailbox (posts are refused from now on), run what is queued,
 * free the nodes. */
void evr__mail_fini(struct evr_loop *l);
/* Messages left over by the last run (a budget) or posted by the loop's
 * own thread. */
void evr__mail_run(struct evr_loop *l);

/* The loop running on this thread (inside evr_loop_run), else NULL. */
extern _Thread_local struct evr_loop *evr__current;

/* ---- loop groups (group.c) ---- */

#include <pthread.h>

struct evr__gmember {
	struct evr_group *g;
	struct evr_loop *l;
	unsigned index;
	pthread_t th;
	bool thread; /* th is a thread of the group (index > 0) */
	int err;
	struct evr_stats final; /* the counters when the loop ended */
};

struct evr_group {
	unsigned n;
	struct evr_group_opts o;
	int *cpus;
	pthread_mutex_t mu; /* start-up and the end only */
	pthread_cond_t cv;
	unsigned nloops;  /* loops created */
	unsigned started; /* loops set up, in index order */
	int start_err;
	bool go, abort;
	unsigned ran;	 /* loops whose run returned */
	unsigned closed; /* mailboxes closed and emptied */
	bool freeing;	 /* loops are being freed: no more posts */
	bool ended;	 /* evr_group_run() is over */
	bool joined;
	int run_err;
	uint64_t seed; /* of the hashes the loops share (steering, sources) */
	/* limits that hold across the loops; the counters are touched only
	 * when the limit is set */
	atomic_uint conns; /* accepted, open, every loop */
	/* loops in evr_loop_run(): loop 0, which takes the signals, runs
	 * until it is the last */
	atomic_uint running;
	struct evr__gsketch *sources; /* opened with the first loop */
	struct evr__gport *ports;     /* reuseport sockets, by address */
	struct evr__gmember m[];
};

/* What the loops of a group share (gshare.c): made with the group,
 * freed with it. */
int evr__group_share_init(struct evr_group *g);
void evr__group_share_fini(struct evr_group *g);

/* A reuseport socket fd (SOCK_STREAM or SOCK_DGRAM) of loop l joins the
 * sockets of its address; the first gets the group's steering program
 * when steer. 0 or -errno. */
struct evr__gport;
int evr__gport_join(struct evr_loop *l, int fd, int type, bool steer,
		    struct evr__gport **out);
/* Before the first socket of a group binds sa: -EADDRINUSE when another
 * socket holds it (SO_REUSEPORT would hide that), else 0. */
int evr__gport_probe(struct evr_loop *l, int type, const struct sockaddr *sa,
		     socklen_t len, bool v6only);
/* Connections of every loop's socket of this address (a service's). */
atomic_uint *evr__gport_conns(struct evr__gport *gp);

/* Per-source counts across loops: a source's two slots; count one more
 * connection in them unless that would put the source over limit; one
 * fewer. */
void evr__gsource_slots(const struct evr_group *g,
			const uint8_t key[EVR__SRCKEY_LEN], uint32_t slot[2]);
bool evr__gsource_take(struct evr_group *g, const uint32_t slot[2],
		       uint32_t limit);
void evr__gsource_put(struct evr_group *g, const uint32_t slot[2]);

/* ---- the loop ---- */

struct evr_loop {
	const struct evr__backend *be_ops;
	void *be;
	uint64_t now;
	bool stopping;
	bool draining;
	bool running;
	bool over_budget; /* bytes_queued above queued_max */
	uint64_t queued_max, queued_low;
	uint32_t max_conns, max_per_source;
	uint64_t alloc_backoff_until; /* ms: refuse accepts without trying */
	struct evr__list paused_all;  /* connections paused by the budget */
	struct evr__list redeliver; /* resumed, with held bytes to hand over */
	struct evr_timer drain_timer;
	struct evr__sources sources;
	struct evr__ratelimit rl_refuse, rl_overflow, rl_alloc, rl_connlog;
	struct evr__ratelimit rl_proxy;
	/* limiters with events to report, and the timer that reports them */
	struct evr__list ratelimits;
	struct evr_timer rl_timer;
	struct evr__pool pool;	/* TCP receive pool */
	struct evr__pool upool; /* UDP receive pool, count 0 until needed */
	uint32_t udp_buf_count, udp_buf_size;
	struct evr__list udps;
	struct evr__list udp_starved;
	struct evr_udp *udp_dirty;
	struct evr__timers timers;
	struct evr__list conns;
	struct evr__list listeners;
	struct evr__list starved;
	struct evr_conn *flush_head, **flush_tail;
	struct evr_conn *zombies;
	/* write queue entries: free list and the chunks they came from */
	struct evr__wq *wq_free;
	void *wq_chunks;
	/* signals */
	int sigfd;     /* read end of the signal pipe */
	int sigpipe_w; /* write end */
	struct {
		evr_signal_cb cb;
		void *arg;
	} sig[EVR__NSIG];
	/* watches (watch.c): every record, and how many are active */
	struct evr__list watches;
	uint32_t nwatches, nchildren;
	uint32_t holds; /* evr_loop_hold() not yet undone */
	struct evr_stats st;
	char backend_reason[192];
	char disable[128];  /* evr_loop_opts.disable, ",a,b," */
	char features[256]; /* evr_loop_features() */
	bool send_more;	    /* MSG_MORE on the last send of a closing conn */
	struct evr__mailbox mb;
	/* in a loop group: which, and kept running until it stops or
	 * drains */
	struct evr_group *group;
	unsigned index;
};

/* The pool of index idx (evr_buf.pool, the buffer group): TCP or UDP. */
static inline struct evr__pool *evr__pool_of(struct evr_loop *l, unsigned idx)
{
	return idx ? &l->upool : &l->pool;
}

/*
 * Flags for a send of the first n queue entries: MSG_MORE when it is the
 * last of a connection that closes gracefully, so that the reply and the
 * FIN of the close that follows leave in one segment (a daytime or an HTTP
 * "Connection: close" reply: one packet fewer each way, measured as the
 * largest saving of a connection's cost). The close comes right after the
 * send completes (or the lingering close's shutdown), which pushes the
 * corked bytes out.
 */
static inline int evr__conn_send_more(const struct evr_conn *c, uint32_t n)
{
	return (c->flags & EVR__C_CLOSING) && !c->err && n == c->wq_n &&
		       c->loop->send_more
		   ? MSG_MORE
		   : 0;
}

/* Bytes of a PROXY header kept while it arrives: a v1 line (107) or v2's
 * fixed part and an IPv6 address block (16 + 36); v2's TLVs are skipped. */
#define EVR__PROXY_KEEP 108

/*
 * What a connection keeps only when its service asks for it (the
 * connection log, the PROXY protocol): it sits after the module's state,
 * in the same allocation, so that other connections pay one pointer.
 */
struct evr__conn_ext {
	uint64_t started; /* ms */
	uint64_t bytes_in, bytes_out;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer;		   /* the client: from the PROXY header if any */
	socklen_t peerlen; /* 0: not known */
	/* the PROXY header (proxy.c) */
	struct evr_conn *conn;
	struct evr_timer proxy_timer; /* its deadline */
	uint32_t proxy_skip;	      /* v2 TLV bytes still to drop */
	uint16_t proxy_len;	      /* bytes in proxy_hdr */
	bool proxy_pending;	      /* on_accept waits for the header */
	uint8_t proxy_hdr[EVR__PROXY_KEEP];
};

/* connlog.c: extra bytes to allocate for a connection of svc; set c->ext
 * up (c->svc and c->fd set); whether the module accepted c (it has not
 * while a PROXY header is awaited); the end of c, after on_close (the
 * log line). */
size_t evr__conn_ext_size(const struct evr__svc *svc);
void evr__conn_ext_init(struct evr_conn *c);
bool evr__conn_ext_accepted(const struct evr_conn *c);
void evr__conn_ext_finish(struct evr_conn *c);

/* proxy.c: a parsed PROXY header. local: use the connection's own
 * addresses (v2 LOCAL, v1 UNKNOWN, a family or protocol not taken). */
struct evr__proxy_hdr {
	int version;
	bool local;
	uint32_t total; /* bytes on the wire, v2's TLVs included */
	struct sockaddr_storage src, dst;
	socklen_t srclen, dstlen;
};

/*
 * Parse the PROXY header of the given version at the start of the n bytes
 * at p (a pure function). Returns its total length once the part that
 * matters is in (v2: more bytes, TLVs, may follow up to total), 0 when
 * more bytes are needed, -EPROTO when they are not a valid header of that
 * version (as soon as one byte says so), -EINVAL for a bad version.
 */
int evr__proxy_parse(const uint8_t *p, size_t n, enum evr_proxy version,
		     struct evr__proxy_hdr *h);
/* At accept: true when c waits for its header (on_accept is deferred). */
bool evr__proxy_start(struct evr_conn *c);
/* A buffer received while the header is awaited: its header bytes are
 * consumed (b advanced); true when bytes are left for on_data and the
 * module accepted c. */
bool evr__proxy_feed(struct evr_conn *c, struct evr_buf *b);
/* The peer's EOF while the header is awaited: c is closed; true. */
bool evr__proxy_eof(struct evr_conn *c);

uint64_t evr__now_ms(void);

/* Was the fast path name left off (evr_loop_opts.disable)? */
bool evr__feature_off(const struct evr_loop *l, const char *name);
/* Append " name" (or " -name" when off) to the loop's feature line. */
void evr__feature_note(struct evr_loop *l, const char *name, bool on);

/* ---- fault injection (fault.c), for tests ---- */

/*
 * Injection points. Each acts at one place per backend, outside the code
 * that ships: io_uring filters completions between the CQ and their
 * handlers (fault_dispatch in backend/uring.c); epoll makes its system
 * calls through evr__sys, a table that points at fault wrappers while a
 * point is set (SQLite's aSyscall[] is the model). Allocation, the pool
 * and short sends act where the core allocates, hands out pool buffers and
 * gathers a send.
 */
enum evr__fault_point {
	EVR__F_ALLOC,	   /* evr__malloc/evr__calloc return NULL */
	EVR__F_ACCEPT,	   /* an accept fails with err */
	EVR__F_RECV,	   /* a receive fails with err */
	EVR__F_SEND,	   /* a send fails with err */
	EVR__F_RECV_SHORT, /* a receive is cut short */
	EVR__F_SEND_SHORT, /* a send is cut short */
	EVR__F_POOL,	   /* the pool looks empty */
	EVR__F__COUNT,
};

struct evr__fault {
	uint32_t every; /* 0: off; else every Nth call fails */
	uint32_t after; /* calls that pass first */
	int err;	/* -errno to inject */
	uint64_t calls, hits;
};

extern struct evr__fault evr__faults[EVR__F__COUNT];
extern bool evr__faults_on;

void evr__fault_set(enum evr__fault_point p, uint32_t every, uint32_t after,
		    int err);
void evr__fault_clear(void);
/* -errno when this call is to fail, else 0. */
int evr__fault_hit(enum evr__fault_point p);
/* len, or a shorter length when this call is to be cut. */
size_t evr__fault_cut(enum evr__fault_point p, size_t len);

#define EVR__FAULT(p) (EVR_UNLIKELY(evr__faults_on) ? evr__fault_hit(p) : 0)
#define EVR__FAULT_CUT(p, len)                                                 \
	(EVR_UNLIKELY(evr__faults_on) ? evr__fault_cut(p, len) : (len))

/* The system calls of the epoll backend: the real ones, or fault wrappers
 * while a point is set. */
struct evr__syscalls {
	int (*accept4)(int fd, struct sockaddr *sa, socklen_t *len, int flags);
	ssize_t (*recv)(int fd, void *p, size_t n, int flags);
	ssize_t (*sendmsg)(int fd, const struct msghdr *m, int flags);
};

extern struct evr__syscalls evr__sys;

/* Shorten an iovec array of *cnt entries to at most limit bytes. */
static inline size_t evr__iov_cut(struct iovec *iov, int *cnt, size_t limit)
{
	size_t total = 0;

	for (int i = 0; i < *cnt; i++) {
		if (total + iov[i].iov_len >= limit) {
			iov[i].iov_len = limit - total;
			*cnt = i + 1;
			return limit;
		}
		total += iov[i].iov_len;
	}
	return total;
}

/* Allocation that a test can make fail. */
void *evr__malloc(size_t n);
void *evr__calloc(size_t n, size_t size);

/* log.c: strerror for -errno values */
const char *evr__strerror(int err);

#endif /* EVRING_INTERNAL_H */
