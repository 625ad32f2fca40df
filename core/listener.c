/* SPDX-License-Identifier: MIT */
/*
 * listener.c - TCP listening sockets and the accept pause.
 *
 * A listener is created bound and listening, then handed to the backend to
 * accept on. When accepting fails for a reason that retrying at once cannot
 * fix (EMFILE, ENFILE, ENOBUFS, ENOMEM) the listener pauses on a timer
 * instead of spinning, logs once for the whole pause, and tries again until
 * an accept succeeds; the kernel keeps queueing clients in the backlog
 * meanwhile.
 *
 * A listener's memory lives while the kernel works on it (an armed accept)
 * and while connections it accepted are open (they use its module handlers
 * and configuration): refs counts both.
 *
 * Draining (evr_loop_drain) must not reset a client. Closing a listening
 * socket resets the connections in its accept queue, and those whose
 * handshake is under way (the client already sees them established); with
 * SO_REUSEPORT every loop's socket has its own queue. So a draining
 * listener first stops new handshakes (a socket filter drops a SYN without
 * ACK: the client retries, then finds the port closed), accepts what is
 * queued and what completes, and closes once its queue is empty and
 * nothing came for LISTEN_QUIET_MS, an RTT or more. With a deferred
 * accept (TCP_DEFER_ACCEPT) a completed handshake stays with the kernel
 * until the client speaks: the drain turns the deferral off, so that the
 * kernel's next SYN-ACK of each brings it into the queue, and waits while
 * sock_diag shows any on the listener's address. A socket inherited
 * from the service manager just closes: the manager keeps it open, queue
 * and all, for the next server. (The sysctl
 * net.ipv4.tcp_migrate_req would move a closing socket's queue to another
 * of the group, but it is machine-wide and the last socket has no other.)
 */
#include "internal.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ACCEPT_PAUSE_MS 100
#define LISTEN_QUIET_MS 250
#define DEFER_POLL_MS	50    /* a draining listener's look for deferred ones */
#define DEFER_BLIND_MS	15000 /* the same without sock_diag: 4 SYN-ACKs */
#define DEFER_RECENT_MS                                                        \
	65000		 /* a deferral turned off holds some back this long */
#define DEFER_SYNCNT 127 /* SYN-ACK retries while a drain waits */

static int sockopt_on(int fd, int level, int name)
{
	int one = 1;

	if (setsockopt(fd, level, name, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

static int listen_socket(const struct sockaddr *sa, socklen_t salen,
			 const struct evr_listen_cfg *cfg)
{
	int fd, err;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    IPPROTO_TCP);
	if (fd < 0)
		return -errno;
	err = sockopt_on(fd, SOL_SOCKET, SO_REUSEADDR);
	if (!err && cfg->reuseport)
		err = sockopt_on(fd, SOL_SOCKET, SO_REUSEPORT);
	if (!err && sa->sa_family == AF_INET6 && cfg->v6only)
		err = sockopt_on(fd, IPPROTO_IPV6, IPV6_V6ONLY);
	/* Accepted sockets inherit TCP_NODELAY from the listener on Linux:
	 * one setsockopt here instead of one per connection. */
	if (!err)
		err = sockopt_on(fd, IPPROTO_TCP, TCP_NODELAY);
	if (!err && bind(fd, sa, salen) < 0)
		err = -errno;
	if (!err && listen(fd, cfg->backlog > 0 ? cfg->backlog : 1024) < 0)
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

#define WQ_HIGH_DEFAULT (256 * 1024)
#define WQ_MAX_DEFAULT	(4 * 1024 * 1024)

static void limits_resolve(const struct evr_conn_limits *in,
			   struct evr_conn_limits *lim)
{
	*lim = *in;
	if (!lim->wq_high)
		lim->wq_high = WQ_HIGH_DEFAULT;
	if (!lim->wq_low || lim->wq_low > lim->wq_high)
		lim->wq_low = lim->wq_high / 4;
	if (!lim->wq_max)
		lim->wq_max = lim->wq_high > WQ_MAX_DEFAULT ? lim->wq_high
							    : WQ_MAX_DEFAULT;
	if (lim->wq_max < lim->wq_high)
		lim->wq_max = lim->wq_high;
}

void evr__svc_set(struct evr__svc *svc, const struct evr_listen_cfg *cfg)
{
	svc->conf = cfg->conf;
	evr__proto_resolve(cfg->proto, &svc->proto);
	limits_resolve(&cfg->lim, &svc->lim);
	snprintf(svc->name, sizeof(svc->name), "%s",
		 cfg->name ? cfg->name : cfg->proto->name);
	svc->log_conns = cfg->log_conns;
	svc->proxy = (uint8_t)cfg->proxy;
	svc->proxy_timeout_ms =
	    cfg->proxy_timeout_ms ? cfg->proxy_timeout_ms : 5000;
	svc->cfg_release = cfg->release;
	svc->cfg_release_arg = cfg->release_arg;
}

void evr__svc_init(struct evr__svc *svc, struct evr_loop *l,
		   const struct evr_listen_cfg *cfg,
		   void (*release)(struct evr__svc *svc))
{
	svc->loop = l;
	evr__svc_set(svc, cfg);
	svc->nconns = 0;
	svc->refs = 1; /* the owner's */
	svc->release = release;
	svc->retired = false;
	svc->owner = NULL;
}

void evr__svc_cfg_done(struct evr__svc *svc)
{
	void (*done)(void *arg) = svc->cfg_release;

	svc->cfg_release = NULL;
	if (done)
		done(svc->cfg_release_arg);
}

void evr__svc_put(struct evr__svc *svc)
{
	if (--svc->refs == 0)
		svc->release(svc);
}

static void listener_release(struct evr__svc *svc)
{
	struct evr_listener *ls =
	    EVR_CONTAINER_OF(svc, struct evr_listener, svc);

	evr__svc_cfg_done(svc);
	evr__ratelimit_fini(svc->loop, &ls->rl_pause);
	evr__ratelimit_fini(svc->loop, &ls->rl_resume);
	evr__list_del(&ls->link);
	free(ls);
}

/* A configuration set on a listener after its own: its memory goes with
 * its last reference (the listener's, then its connections'), and holds
 * the listener's, so that owner never names freed memory. */
static void cfg_box_release(struct evr__svc *svc)
{
	struct evr__svc *ls_svc = svc->owner;

	evr__svc_cfg_done(svc);
	free(svc);
	evr__svc_put(ls_svc);
}

static void pause_expired(struct evr_timer *t)
{
	struct evr_listener *ls =
	    EVR_CONTAINER_OF(t, struct evr_listener, pause_timer);
	int err;

	if (ls->closing)
		return;
	ls->pause_retries++;
	err = ls->svc.loop->be_ops->listener_start(ls);
	if (err < 0)
		evr__listener_pause(ls, err);
}

/*
 * Out of descriptors, accepting pauses, resumes when one frees up, and
 * pauses again at the next client: the log says so once per interval,
 * with how many pauses and resumes it did not mention.
 */
#define PAUSE_LOG_MS 10000

void evr__listener_pause(struct evr_listener *ls, int err)
{
	struct evr_loop *l = ls->svc.loop;

	if (ls->closing)
		return;
	if (!ls->paused) {
		char a[EVR_ADDRSTRLEN];

		ls->paused = true;
		ls->pause_since = l->now;
		ls->pause_retries = 0;
		l->st.accept_pauses++;
		evr_addr_str((struct sockaddr *)&ls->addr, a, sizeof(a));
		if (evr__ratelimit(l, &ls->rl_pause, PAUSE_LOG_MS,
				   "accept %s (%s): pauses", a, ls->svc.name))
			evr_log_warn("accept %s (%s): %s; pausing accepts, "
				     "retrying every %d ms (more pauses are "
				     "summed up in %d s)",
				     a, ls->svc.name, evr__strerror(err),
				     ACCEPT_PAUSE_MS, PAUSE_LOG_MS / 1000);
	}
	evr_timer_start(l, &ls->pause_timer, ACCEPT_PAUSE_MS);
}

void evr__listener_resumed(struct evr_listener *ls)
{
	struct evr_loop *l = ls->svc.loop;
	char a[EVR_ADDRSTRLEN];

	if (!ls->paused)
		return;
	ls->paused = false;
	evr_addr_str((struct sockaddr *)&ls->addr, a, sizeof(a));
	if (evr__ratelimit_n(l, &ls->rl_resume, PAUSE_LOG_MS, 1, EVR_LOG_INFO,
			     "accept %s (%s): resumes", a, ls->svc.name))
		evr_log_info("accept %s (%s): accepting again after %llu ms "
			     "(more resumes are summed up in %d s)",
			     a, ls->svc.name,
			     (unsigned long long)(l->now - ls->pause_since),
			     PAUSE_LOG_MS / 1000);
}

/* TCP_DEFER_ACCEPT as a configuration asks. The listener remembers what
 * it set: 0 turns off only that, so that an inherited socket keeps what
 * its service manager set (systemd's DeferAcceptSec=) until a
 * configuration of ours sets something else. */
static int defer_accept_set(struct evr_listener *ls, uint32_t secs)
{
	int v = (int)secs;

	if (secs == ls->defer_s)
		return 0;
	if (setsockopt(ls->fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, sizeof(v)) <
	    0)
		return -errno;
	/* what it held back comes in at its next SYN-ACKs: a drain soon
	 * after must still wait for it */
	if (!secs)
		ls->defer_off = ls->svc.loop->now ? ls->svc.loop->now : 1;
	ls->defer_s = secs;
	return 0;
}

/* ---- draining ---- */

/* Drop a SYN without ACK (a new handshake); let everything else through,
 * the ACK that completes a handshake under way included. Accepted sockets
 * inherit the filter: on them it lets everything through. */
static int stop_handshakes(int fd)
{
	static const struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),	   /* TCP flags */
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12), /* SYN, ACK */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
	};
	struct sock_fprog fp = { .len = EVR_ARRAY_SIZE(f),
				 .filter = (struct sock_filter *)f };

	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) < 0)
		return -errno;
	return 0;
}

/* Connections completed and not yet accepted (a listener's tcpi_unacked
 * is its accept queue). */
static bool queue_empty(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return true;
	return ti.tcpi_unacked == 0;
}

/* Does a sock_diag answer name a handshake in SYN_RECV on ls's port and
 * address (any address for a listener on the wildcard; IPv4 clients of an
 * IPv6 socket show as ::ffff:a.b.c.d, which the wildcard takes in)? */
/* The listener's port, in network order. */
static uint16_t listen_port(const struct evr_listener *ls)
{
	return ls->addr.ss_family == AF_INET
		   ? ((const struct sockaddr_in *)&ls->addr)->sin_port
		   : ((const struct sockaddr_in6 *)&ls->addr)->sin6_port;
}

static bool diag_match(const struct evr_listener *ls,
		       const struct inet_diag_msg *m)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)&ls->addr;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ls->addr;

	if (m->idiag_state != TCP_SYN_RECV ||
	    m->id.idiag_sport != listen_port(ls))
		return false;
	if (ls->addr.ss_family == AF_INET)
		return !in->sin_addr.s_addr ||
		       m->id.idiag_src[0] == in->sin_addr.s_addr;
	return IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr) ||
	       !memcmp(m->id.idiag_src, &in6->sin6_addr, 16);
}

/*
 * The handshakes the kernel holds for ls's address (deferred: connected
 * for the client, not in the accept queue), from sock_diag: how long until
 * the last of them has its next SYN-ACK (ms, at least 1), 0 when there is
 * none, or -errno when sock_diag cannot tell (seccomp, or systemd's
 * RestrictAddressFamilies= without AF_NETLINK).
 */
static int64_t diag_pending(const struct evr_listener *ls)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req),
			 .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.r = { .sdiag_family = (uint8_t)ls->addr.ss_family,
		       .sdiag_protocol = IPPROTO_TCP,
		       .idiag_states = 1u << TCP_SYN_RECV },
	};
	union {
		char b[16384];
		struct nlmsghdr align;
	} buf;
	struct timeval tv = { .tv_sec = 1 };
	int64_t next = 0;
	bool done = false;
	int fd =
	    socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	if (fd < 0)
		return -errno;
	/* the kernel filters on the port; the address is ours to check */
	req.r.id.idiag_sport = listen_port(ls);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(fd, &req, sizeof(req), 0) < 0)
		next = -errno;
	while (!done && next >= 0) {
		ssize_t n = recv(fd, &buf, sizeof(buf), 0);
		struct nlmsghdr *h = &buf.align;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			next = n < 0 ? -errno : -EIO;
			break;
		}
		for (; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			const struct inet_diag_msg *m = NLMSG_DATA(h);

			if (h->nlmsg_type == NLMSG_DONE) {
				done = true;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				next = e->error < 0 ? e->error : -EIO;
				break;
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) ||
			    !diag_match(ls, m))
				continue;
			if ((int64_t)m->idiag_expires + 1 > next)
				next = (int64_t)m->idiag_expires + 1;
		}
	}
	close(fd);
	return next;
}

/*
 * A draining listener that deferred accepts: may its close still reset a
 * handshake the kernel holds? The first look sets a deadline, the latest
 * next SYN-ACK of what it finds plus a second for the client's answer
 * (without sock_diag: the first four SYN-ACKs, 15 s, and a log line); a
 * handshake that outlives it was never answered (a client gone, or one on
 * the socket of another loop of the group).
 */
static bool deferred_pending(struct evr_listener *ls)
{
	struct evr_loop *l = ls->svc.loop;
	int64_t next;

	if (!ls->defer_drain)
		return false;
	next = diag_pending(ls);
	if (next < 0 && !ls->defer_until) {
		char a[EVR_ADDRSTRLEN];

		evr_log_warn("drain %s (%s): sock_diag: %s; waiting %d s for "
			     "the clients a deferred accept held back",
			     evr_addr_str((const struct sockaddr *)&ls->addr, a,
					  sizeof(a)),
			     ls->svc.name, strerror((int)-next),
			     DEFER_BLIND_MS / 1000);
		ls->defer_until = l->now + DEFER_BLIND_MS;
	} else if (next > 0 && !ls->defer_until) {
		ls->defer_until = l->now + (uint64_t)next + 1000;
	}
	return next != 0 && l->now < ls->defer_until;
}

static void drain_check(struct evr_timer *t)
{
	struct evr_listener *ls =
	    EVR_CONTAINER_OF(t, struct evr_listener, drain_timer);
	struct evr_loop *l = ls->svc.loop;
	uint64_t quiet = l->now - ls->drain_last;

	if (ls->closing)
		return;
	if (quiet >= LISTEN_QUIET_MS && queue_empty(ls->fd)) {
		if (!deferred_pending(ls)) {
			evr_listener_close(ls);
			return;
		}
		/* the kernel's next SYN-ACK brings them: seconds at most */
		evr_timer_start(l, &ls->drain_timer, DEFER_POLL_MS);
		return;
	}
	evr_timer_start(l, &ls->drain_timer,
			quiet < LISTEN_QUIET_MS ? LISTEN_QUIET_MS - quiet : 10);
}

/*
 * Deferred handshakes come in at their next SYN-ACK once the deferral is
 * off, instead of waiting for data that may come after the close. The
 * kernel gives up on a handshake after its SYN-ACK retries (the sysctl
 * tcp_synack_retries, fewer still when the queue is long) unless the
 * listener's TCP_SYNCNT says more: a held-back client that outlived them
 * would be dropped.
 */
static void defer_drain_start(struct evr_listener *ls)
{
	int retries = DEFER_SYNCNT;

	if (defer_accept_set(ls, 0) < 0)
		return;
	setsockopt(ls->fd, IPPROTO_TCP, TCP_SYNCNT, &retries, sizeof(retries));
	ls->defer_drain = true;
}

static void listener_drain(struct evr_listener *ls)
{
	struct evr_loop *l = ls->svc.loop;

	if (ls->closing || ls->draining)
		return;
	/* a socket of the service manager's lives on after our copy closes,
	 * with its queue, for whoever serves it next: no filter on it */
	if (ls->inherited || stop_handshakes(ls->fd) < 0) {
		evr_listener_close(ls); /* the old way: reset what is queued */
		return;
	}
	ls->draining = true;
	ls->drain_last = l->now;
	if (ls->defer_s ||
	    (ls->defer_off && l->now - ls->defer_off < DEFER_RECENT_MS))
		defer_drain_start(ls);
	evr_timer_start(l, &ls->drain_timer, LISTEN_QUIET_MS);
}

void evr__listener_drain_all(struct evr_loop *l)
{
	struct evr__list *it, *next;

	for (it = l->listeners.next; it != &l->listeners; it = next) {
		next = it->next;
		listener_drain(EVR_CONTAINER_OF(it, struct evr_listener, link));
	}
}

/* What evr_listen(), evr_listen_fd() and evr_listener_set_cfg() refuse. */
static int cfg_check(const struct evr_listen_cfg *cfg)
{
	char why[128];

	if (!cfg || !cfg->proto || (unsigned)cfg->proxy > EVR_PROXY_V2 ||
	    cfg->defer_accept_s > INT_MAX)
		return -EINVAL;
	if (evr_proto_validate(cfg->proto, why, sizeof(why)) < 0) {
		evr_log_err("listen: %s", why);
		return -EINVAL;
	}
	return 0;
}

static int listen_check(struct evr_loop *l, const struct evr_listen_cfg *cfg)
{
	int err = cfg_check(cfg);

	if (!err && l->stopping)
		err = -ESHUTDOWN;
	return err;
}

/* What evr_listen() and evr_listen_fd() share once the socket is bound and
 * listening: on failure fd is closed. sa: the address to report when
 * getsockname fails (NULL: none). */
static int listener_serve(struct evr_loop *l, int fd, const struct sockaddr *sa,
			  socklen_t salen, const struct evr_listen_cfg *cfg,
			  struct evr_listener **out)
{
	struct evr__gport *gp = NULL;
	struct evr_listener *ls;
	int err;

	/* every loop's socket of this address (evr_listen): shared limits,
	 * and the first one gets the steering program */
	if (sa && cfg->reuseport && l->group) {
		err = evr__gport_join(l, fd, SOCK_STREAM,
				      !cfg->reuseport_shared, &gp);
		if (err < 0) {
			close(fd);
			return err;
		}
	}
	ls = calloc(1, sizeof(*ls));
	if (!ls) {
		close(fd);
		return -ENOMEM;
	}
	evr__svc_init(&ls->svc, l, cfg, listener_release);
	ls->svc.gconns = gp ? evr__gport_conns(gp) : NULL;
	ls->cur = &ls->svc;
	ls->fd = fd;
	ls->addrlen = sizeof(ls->addr);
	if (getsockname(fd, (struct sockaddr *)&ls->addr, &ls->addrlen) < 0) {
		ls->addrlen = sa ? salen : 0;
		if (sa)
			memcpy(&ls->addr, sa, salen);
	}
	evr_timer_init(&ls->pause_timer, pause_expired);
	evr_timer_init(&ls->drain_timer, drain_check);
	evr__list_add_tail(&l->listeners, &ls->link);
	l->st.listeners++;
	err = defer_accept_set(ls, cfg->defer_accept_s);
	if (!err)
		err = l->be_ops->listener_start(ls);
	if (err < 0) {
		evr_listener_close(ls);
		return err;
	}
	*out = ls;
	return 0;
}

int evr_listen(struct evr_loop *l, const struct sockaddr *sa, socklen_t salen,
	       const struct evr_listen_cfg *cfg, struct evr_listener **out)
{
	int fd, err;

	if (salen > sizeof(struct sockaddr_storage))
		return -EINVAL;
	err = listen_check(l, cfg);
	if (err < 0)
		return err;
	if (cfg->reuseport && l->group && !cfg->reuseport_shared) {
		err = evr__gport_probe(l, SOCK_STREAM, sa, salen, cfg->v6only);
		if (err < 0)
			return err;
	}
	fd = listen_socket(sa, salen, cfg);
	if (fd < 0)
		return fd;
	return listener_serve(l, fd, sa, salen, cfg, out);
}

/* An inherited socket as evr_listen() makes its own: TCP over IPv4 or
 * IPv6, nonblocking, TCP_NODELAY (accepted sockets inherit it), listening.
 * The listener serves a close-on-exec duplicate, so that fd is the
 * caller's to close on failure. */
int evr_listen_fd(struct evr_loop *l, int fd, const struct evr_listen_cfg *cfg,
		  struct evr_listener **out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss), ilen = sizeof(int);
	int type = 0, accepting = 0, own, fl, err;

	err = listen_check(l, cfg);
	if (err < 0)
		return err;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ilen) < 0)
		return -errno;
	if (type != SOCK_STREAM)
		return -EPROTOTYPE;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
		return -EAFNOSUPPORT;
	ilen = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &ilen) < 0)
		return -errno;
	own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (own < 0)
		return -errno;
	fl = fcntl(own, F_GETFL);
	if (fl < 0 || fcntl(own, F_SETFL, fl | O_NONBLOCK) < 0)
		err = -errno;
	if (!err)
		err = sockopt_on(own, IPPROTO_TCP, TCP_NODELAY);
	if (!err && !accepting &&
	    listen(own, cfg->backlog > 0 ? cfg->backlog : 1024) < 0)
		err = -errno;
	if (err) {
		close(own);
		return err;
	}
	err = listener_serve(l, own, NULL, 0, cfg, out);
	if (!err) {
		(*out)->inherited = true;
		close(fd);
	}
	return err;
}

/* The listener lets go of the configuration it serves. */
static void listener_drop_cur(struct evr_listener *ls)
{
	struct evr__svc *cur = ls->cur;

	ls->cur = &ls->svc;
	if (cur != &ls->svc)
		evr__svc_put(cur);
}

int evr_listener_set_cfg(struct evr_listener *ls,
			 const struct evr_listen_cfg *cfg)
{
	struct evr__svc *box;
	int err = cfg_check(cfg);

	if (err)
		return err;
	if (ls->closing)
		return -ESHUTDOWN;
	box = calloc(1, sizeof(*box));
	if (!box)
		return -ENOMEM;
	err = defer_accept_set(ls, cfg->defer_accept_s);
	if (err) {
		free(box);
		return err;
	}
	evr__svc_init(box, ls->svc.loop, cfg, cfg_box_release);
	box->owner = &ls->svc;
	box->gconns = ls->svc.gconns; /* the address's, across loops */
	ls->svc.refs++;
	if (ls->cur == &ls->svc) {
		/* its own: released with its last connection */
		ls->svc.retired = true;
		if (!ls->svc.nconns)
			evr__svc_cfg_done(&ls->svc);
	}
	listener_drop_cur(ls);
	ls->cur = box;
	return 0;
}

void evr_listener_close(struct evr_listener *ls)
{
	struct evr_loop *l = ls->svc.loop;

	if (ls->closing)
		return;
	ls->closing = true;
	evr_timer_stop(l, &ls->pause_timer);
	evr_timer_stop(l, &ls->drain_timer);
	l->st.listeners--;
	l->be_ops->listener_stop(ls);
	listener_drop_cur(ls);
	evr__svc_put(&ls->svc);
}

void evr_listener_drain(struct evr_listener *ls)
{
	struct evr_loop *l = ls->svc.loop;
	struct evr__list *it;

	if (ls->closing)
		return;
	evr_listener_close(ls); /* (may free it: ls is only compared) */
	for (it = l->conns.next; it != &l->conns; it = it->next) {
		struct evr_conn *c =
		    EVR_CONTAINER_OF(it, struct evr_conn, link);

		if ((c->svc == &ls->svc || c->svc->owner == &ls->svc) &&
		    !(c->flags & EVR__C_CLOSING))
			c->svc->proto.on_drain(c);
	}
}

void evr__listener_close_all(struct evr_loop *l)
{
	struct evr__list *it, *next;

	for (it = l->listeners.next; it != &l->listeners; it = next) {
		struct evr_listener *ls =
		    EVR_CONTAINER_OF(it, struct evr_listener, link);

		/* closing may free ls, never the one after it */
		next = it->next;
		evr_listener_close(ls);
	}
}

/* Loop teardown: the ring is gone, nothing refers to listeners any more. */
void evr__listener_free_all(struct evr_loop *l)
{
	while (!evr__list_empty(&l->listeners)) {
		struct evr_listener *ls = EVR_CONTAINER_OF(
		    l->listeners.next, struct evr_listener, link);

		if (!ls->closing) {
			close(ls->fd);
			l->st.listeners--;
			listener_drop_cur(ls);
		}
		evr__svc_cfg_done(&ls->svc);
		evr__list_del(&ls->link);
		free(ls);
	}
}

int evr_listener_addr(const struct evr_listener *ls,
		      struct sockaddr_storage *ss, socklen_t *len)
{
	memcpy(ss, &ls->addr, ls->addrlen);
	*len = ls->addrlen;
	return 0;
}

int evr_listener_fd(const struct evr_listener *ls)
{
	return ls->fd;
}

const char *evr_listener_name(const struct evr_listener *ls)
{
	return ls->svc.name;
}
