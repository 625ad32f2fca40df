/* SPDX-License-Identifier: MIT */
/*
 * connlog.c - the connection log (evr_listen_cfg.log_conns), and the part
 * of a connection only some services keep.
 *
 * A service that logs its connections, or takes the PROXY protocol
 * (proxy.c), gives each one a struct evr__conn_ext after the module's
 * state, in the same allocation: the start time, the bytes received and
 * sent, the peer's address taken at accept (a connection reset before its
 * end can no longer tell it) or from the PROXY header, and the header's
 * state. Others pay one NULL pointer and a test of it per receive and
 * send.
 *
 * When the connection ends (after on_close) one info line tells who, which
 * service, how long, how many bytes each way and how it ended:
 *
 *	conn echo peer=127.0.0.1:40312 duration=0.250s in=5 out=5 end=closed
 *
 * At most EVR__CONNLOG_RATE lines per second per loop: a flood of short
 * connections must not turn into a flood of log lines. The rest are
 * counted and summed up when the second ends.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#define EVR__CONNLOG_RATE 100

#define EXT_ALIGN 16
#define EXT_OFF(state_size)                                                    \
	(((state_size) + EXT_ALIGN - 1) & ~(size_t)(EXT_ALIGN - 1))

static bool svc_ext(const struct evr__svc *svc)
{
	return svc->log_conns || svc->proxy;
}

size_t evr__conn_ext_size(const struct evr__svc *svc)
{
	size_t st = svc->proto.p->state_size;

	if (!svc_ext(svc))
		return 0;
	return EXT_OFF(st) - st + sizeof(struct evr__conn_ext);
}

void evr__conn_ext_init(struct evr_conn *c)
{
	struct evr__conn_ext *x;

	if (!svc_ext(c->svc))
		return;
	x = (struct evr__conn_ext *)(c->state +
				     EXT_OFF(c->svc->proto.p->state_size));
	x->conn = c;
	x->started = c->loop->now;
	x->peerlen = sizeof(x->peer);
	/* an outbound connection has no peer yet: asked again at the end */
	if (getpeername(c->fd, &x->peer.sa, &x->peerlen) < 0 ||
	    x->peerlen > sizeof(x->peer))
		x->peerlen = 0;
	c->ext = x;
}

/* How it ended, in one word. */
static const char *end_word(const struct evr_conn *c, char *buf, size_t len)
{
	const char *name;

	switch (c->err) {
	case 0:
		return (c->flags & EVR__C_EOF) ? "peer_closed" : "closed";
	case -ETIMEDOUT:
		return "timeout";
	case -ECONNRESET:
	case -EPIPE:
		return "reset";
	case -ENOBUFS:
		return "overflow";
	case -ESHUTDOWN:
		return "shutdown";
	}
	name = strerrorname_np(-c->err);
	if (name)
		snprintf(buf, len, "error:%s", name);
	else
		snprintf(buf, len, "error:%d", -c->err);
	return buf;
}

bool evr__conn_ext_accepted(const struct evr_conn *c)
{
	return !c->ext->proxy_pending;
}

static void conn_log(struct evr_conn *c)
{
	struct evr_loop *l = c->loop;
	struct evr__conn_ext *x = c->ext;
	struct sockaddr_storage ss;
	char peer[EVR_ADDRSTRLEN] = "-", end[48];
	socklen_t len = sizeof(ss);
	uint64_t ms;

	if (!x || evr_log_get_level() < EVR_LOG_INFO)
		return;
	if (!evr__ratelimit_n(l, &l->rl_connlog, 1000, EVR__CONNLOG_RATE,
			      EVR_LOG_INFO,
			      "conn: connections not logged (over %d lines "
			      "per second)",
			      EVR__CONNLOG_RATE))
		return;
	if (x->peerlen)
		evr_addr_str(&x->peer.sa, peer, sizeof(peer));
	else if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0)
		evr_addr_str((struct sockaddr *)&ss, peer, sizeof(peer));
	ms = l->now - x->started;
	evr_log_info(
	    "conn %s peer=%s duration=%llu.%03llus in=%llu out=%llu "
	    "end=%s",
	    c->svc->name, peer, (unsigned long long)(ms / 1000),
	    (unsigned long long)(ms % 1000), (unsigned long long)x->bytes_in,
	    (unsigned long long)x->bytes_out, end_word(c, end, sizeof(end)));
}

void evr__conn_ext_finish(struct evr_conn *c)
{
	evr_timer_stop(c->loop, &c->ext->proxy_timer);
	if (c->svc->log_conns)
		conn_log(c);
}
