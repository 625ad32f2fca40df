/* SPDX-License-Identifier: MIT */
/*
 * udp.c - UDP sockets, and their guard against reflection and amplification.
 *
 * Datagrams land in buffers of the loop's UDP pool (big enough for any
 * datagram, made with the first UDP socket) exactly as TCP data lands in
 * the TCP pool, so a module can reply with the very buffer it received.
 *
 * Before a module sees a datagram, the guard drops what would turn the
 * server into an attack tool (CVE-1999-0103's echo-chargen loop, US-CERT
 * TA14-017A's reflection and amplification):
 *   - source port 0, the ports of services that answer UDP unsolicited,
 *     and the ports the server serves itself (two such services would
 *     answer each other forever);
 *   - broadcast, multicast and unspecified source addresses;
 *   - sources whose token bucket is empty (replies per second per address,
 *     in a fixed-size table: a flood from many sources cannot grow memory,
 *     it only evicts);
 * and replies from within on_datagram are cut to the amplification limit
 * (by default never larger than the request). Each kind of drop is counted;
 * the first of each kind in an interval is logged, the rest only counted.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define DROP_LOG_MS	10000
#define RATE_DEFAULT	100
#define BURST_DEFAULT	200
#define SOURCES_DEFAULT 4096
#define UDP_PAYLOAD_MAX 65507 /* IPv4: 65535 - 20 (IP) - 8 (UDP) */

/* Ports of services that answer a datagram unsolicited: answering them
 * starts a loop or reflects (RFC 862 echo, RFC 867 daytime, RFC 865 qotd,
 * RFC 864 chargen, RFC 868 time, DNS, NTP, SNMP). */
static const uint16_t reflector_ports[] = { 7, 13, 17, 19, 37, 53, 123, 161 };

static const char *const drop_what[EVR__UDP__COUNT] = {
	[EVR__UDP_DROP_PORT] = "source port 0 or of a service that answers "
			       "UDP (reflection guard)",
	[EVR__UDP_DROP_ADDR] = "broadcast, multicast or unspecified source "
			       "address",
	[EVR__UDP_DROP_RATE] = "the source is over its reply rate",
	[EVR__UDP_CAPPED] = "reply cut to the amplification limit",
	[EVR__UDP_TRUNC] = "datagram larger than a receive buffer",
	[EVR__UDP_TX_DROP] = "reply dropped: socket send queue full",
};

static void drop_log(struct evr_udp *u, enum evr__udp_drop kind,
		     const struct sockaddr *peer)
{
	struct evr_loop *l = u->svc.loop;
	char a[EVR_ADDRSTRLEN] = "-";

	if (!evr__ratelimit(l, &u->rl[kind], DROP_LOG_MS, "udp %s: %s",
			    u->svc.name, drop_what[kind]))
		return;
	if (peer)
		evr_addr_str(peer, a, sizeof(a));
	evr_log_warn("udp %s: %s: %s (counted; more of this kind are summed "
		     "up in %d s)",
		     u->svc.name, a, drop_what[kind], DROP_LOG_MS / 1000);
}

/* ---- the guard ---- */

static uint16_t peer_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

static bool port_denied(const struct evr_udp *u, uint16_t port)
{
	if (port == 0)
		return true;
	if (!u->guard.allow_reflector_ports)
		for (size_t i = 0; i < EVR_ARRAY_SIZE(reflector_ports); i++)
			if (port == reflector_ports[i])
				return true;
	for (uint32_t i = 0; i < u->ndeny; i++)
		if (port == u->deny[i])
			return true;
	return false;
}

static bool v4_special(uint32_t a)
{
	return a == 0 || a == 0xffffffffu || (a >> 28) == 0xe; /* 224/4 */
}

static bool addr_special(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return v4_special(
		    ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
	const struct in6_addr *a =
	    &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a)) {
		uint32_t v4;

		memcpy(&v4, &a->s6_addr[12], 4);
		return v4_special(ntohl(v4));
	}
	return IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_MULTICAST(a);
}

static void source_key(const struct sockaddr *sa, uint8_t key[17])
{
	memset(key, 0, 17);
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return;
	}
	const struct in6_addr *a =
	    &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a)) {
		key[0] = 4;
		memcpy(key + 1, &a->s6_addr[12], 4);
	} else {
		key[0] = 6;
		memcpy(key + 1, a, 8); /* one subscriber holds a /64 */
	}
}

static uint32_t key_hash(uint64_t seed, const uint8_t key[17])
{
	uint64_t a, b, h = seed ^ key[0];

	memcpy(&a, key + 1, 8);
	memcpy(&b, key + 9, 8);
	h ^= a;
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
	h ^= b + (h >> 31);
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
	return (uint32_t)(h ^ (h >> 31));
}

/*
 * Take a token from the source's bucket. The table is 2-way set
 * associative; a source that finds no entry evicts the one of its set
 * refilled longest ago and starts with a full bucket (an attacker who
 * churns sources only evicts, it never gains memory).
 */
static bool bucket_take(struct evr_udp *u, const struct sockaddr *peer)
{
	uint64_t now = u->svc.loop->now;
	struct evr__bucket *set, *b;
	uint8_t key[17];
	uint32_t h;

	if (u->guard.rate == EVR_UDP_UNLIMITED)
		return true;
	source_key(peer, key);
	h = key_hash(u->seed, key) & (u->nbuckets - 2);
	set = &u->buckets[h];
	if (set[0].used && !memcmp(set[0].key, key, 17))
		b = &set[0];
	else if (set[1].used && !memcmp(set[1].key, key, 17))
		b = &set[1];
	else {
		b = !set[0].used		 ? &set[0]
		    : !set[1].used		 ? &set[1]
		    : set[0].last <= set[1].last ? &set[0]
						 : &set[1];
		memcpy(b->key, key, 17);
		b->used = 1;
		b->mtokens = u->guard.burst * 1000u;
		b->last = now;
	}
	if (now > b->last) {
		uint64_t add = (now - b->last) * u->guard.rate; /* milli */
		uint64_t cap = (uint64_t)u->guard.burst * 1000u;

		b->mtokens =
		    (uint32_t)(b->mtokens + add > cap ? cap : b->mtokens + add);
		b->last = now;
	}
	if (b->mtokens < 1000)
		return false;
	b->mtokens -= 1000;
	return true;
}

void evr__udp_datagram(struct evr_udp *u, struct evr_buf *b,
		       const struct sockaddr *peer, socklen_t peerlen,
		       bool truncated)
{
	struct evr_stats *st = &u->svc.loop->st;

	st->udp_rx++;
	if (EVR_UNLIKELY(truncated)) {
		st->udp_trunc++;
		drop_log(u, EVR__UDP_TRUNC, peer);
	} else if (u->closing) {
		/* closed meanwhile: not answered */
	} else if (EVR_UNLIKELY(port_denied(u, peer_port(peer)))) {
		st->udp_drop_port++;
		drop_log(u, EVR__UDP_DROP_PORT, peer);
	} else if (EVR_UNLIKELY(!u->guard.allow_special_addrs &&
				addr_special(peer))) {
		st->udp_drop_addr++;
		drop_log(u, EVR__UDP_DROP_ADDR, peer);
	} else if (!bucket_take(u, peer)) {
		st->udp_drop_rate++;
		drop_log(u, EVR__UDP_DROP_RATE, peer);
	} else {
		u->in_handler = true;
		u->req_len = b->len;
		u->svc.proto.p->on_datagram(u, b, peer, peerlen);
		u->in_handler = false;
	}
	evr_buf_unref(b);
}

void evr__udp_tx_drop(struct evr_udp *u)
{
	u->svc.loop->st.udp_tx_drop++;
	drop_log(u, EVR__UDP_TX_DROP, NULL);
}

void evr__udp_starved(struct evr_udp *u)
{
	struct evr_loop *l = u->svc.loop;

	l->st.recv_nobufs++;
	if (u->starved || u->closing)
		return;
	u->starved = true;
	evr__list_add_tail(&l->udp_starved, &u->starve);
}

void evr__udp_refill(struct evr_loop *l)
{
	/* at most one pass over the starved sockets: one that fails to
	 * restart waits for the next iteration */
	uint32_t budget = l->upool.nfree;

	while (budget-- && !evr__list_empty(&l->udp_starved)) {
		struct evr_udp *u = EVR_CONTAINER_OF(l->udp_starved.next,
						     struct evr_udp, starve);

		evr__list_del(&u->starve);
		u->starved = false;
		if (!u->closing && l->be_ops->udp_start(u) < 0)
			evr__udp_starved(u);
	}
}

void evr__udp_flush_all(struct evr_loop *l)
{
	while (l->udp_dirty) {
		struct evr_udp *u = l->udp_dirty;

		l->udp_dirty = u->next_dirty;
		u->dirty = false;
		l->be_ops->udp_flush(u);
		if (l->be_ops->udp_batches)
			evr__svc_put(&u->svc); /* taken when it was queued */
	}
}

/* ---- sockets ---- */

static void udp_release(struct evr__svc *svc)
{
	struct evr_udp *u = EVR_CONTAINER_OF(svc, struct evr_udp, svc);

	for (int i = 0; i < EVR__UDP__COUNT; i++)
		evr__ratelimit_fini(svc->loop, &u->rl[i]);
	evr__list_del(&u->link);
	free(u->buckets);
	free(u->be);
	free(u);
}

static int guard_resolve(struct evr_udp *u, const struct evr_udp_guard *g)
{
	u->guard = *g;
	if (!u->guard.rate)
		u->guard.rate = RATE_DEFAULT;
	if (!u->guard.burst)
		u->guard.burst =
		    u->guard.rate == EVR_UDP_UNLIMITED
			? 1
			: (u->guard.rate * 2 > BURST_DEFAULT ? u->guard.rate * 2
							     : BURST_DEFAULT);
	if (u->guard.burst > 4000000)
		u->guard.burst = 4000000; /* milli-tokens fit 32 bits */
	if (!u->guard.amplification)
		u->guard.amplification = 1;
	u->nbuckets = 2;
	while (u->nbuckets < (g->sources ? g->sources : SOURCES_DEFAULT) &&
	       u->nbuckets < (1u << 22))
		u->nbuckets <<= 1;
	u->guard.sources = u->nbuckets;
	u->ndeny = g->ndeny_ports < EVR__UDP_DENY_MAX ? g->ndeny_ports
						      : EVR__UDP_DENY_MAX;
	if (u->ndeny)
		memcpy(u->deny, g->deny_ports, u->ndeny * sizeof(u->deny[0]));
	u->guard.deny_ports = NULL;
	if (u->guard.rate == EVR_UDP_UNLIMITED)
		return 0;
	u->buckets = calloc(u->nbuckets, sizeof(*u->buckets));
	if (!u->buckets)
		return -ENOMEM;
	if (getrandom(&u->seed, sizeof(u->seed), 0) < 0)
		u->seed = (uint64_t)(uintptr_t)u ^ evr__now_ms();
	return 0;
}

static int udp_pool_ensure(struct evr_loop *l)
{
	int err;

	if (l->upool.count)
		return 0;
	err = evr__pool_init(l, &l->upool, EVR__POOL_UDP, l->udp_buf_count,
			     l->udp_buf_size);
	if (err < 0)
		return err;
	err = l->be_ops->pool_start(l, &l->upool);
	if (err < 0)
		evr__pool_fini(&l->upool);
	return err;
}

static int udp_socket(const struct sockaddr *sa, socklen_t salen,
		      const struct evr_udp_cfg *cfg)
{
	int fd, one = 1, err = 0;

	fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    IPPROTO_UDP);
	if (fd < 0)
		return -errno;
	if (cfg->reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		err = -errno;
	if (!err && sa->sa_family == AF_INET6 && cfg->v6only &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		err = -errno;
	if (!err && bind(fd, sa, salen) < 0)
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

int evr_udp_bind(struct evr_loop *l, const struct sockaddr *sa, socklen_t salen,
		 const struct evr_udp_cfg *cfg, struct evr_udp **out)
{
	struct evr_listen_cfg scfg;
	struct evr_udp *u;
	char why[160];
	int fd, err;

	if (!cfg || !cfg->proto || !cfg->proto->on_datagram ||
	    salen > sizeof(struct sockaddr_storage) ||
	    evr_proto_validate(cfg->proto, why, sizeof(why)) < 0)
		return -EINVAL;
	if (l->stopping || l->draining)
		return -ESHUTDOWN;
	err = udp_pool_ensure(l);
	if (err < 0)
		return err;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	err = guard_resolve(u, &cfg->guard);
	if (err < 0) {
		free(u);
		return err;
	}
	fd = udp_socket(sa, salen, cfg);
	if (fd < 0) {
		free(u->buckets);
		free(u);
		return fd;
	}
	memset(&scfg, 0, sizeof(scfg));
	scfg.proto = cfg->proto;
	scfg.conf = cfg->conf;
	scfg.name = cfg->name;
	evr__svc_init(&u->svc, l, &scfg, udp_release);
	u->fd = fd;
	u->addrlen = sizeof(u->addr);
	if (getsockname(fd, (struct sockaddr *)&u->addr, &u->addrlen) < 0) {
		memcpy(&u->addr, sa, salen);
		u->addrlen = salen;
	}
	/* io_uring lays out each multishot recvmsg buffer from this */
	u->rmsg.msg_namelen = sizeof(struct sockaddr_in6);
	evr__list_init(&u->starve);
	evr__list_add_tail(&l->udps, &u->link);
	err = l->be_ops->udp_start(u);
	if (err < 0) {
		evr_udp_close(u);
		return err;
	}
	*out = u;
	return 0;
}

void evr_udp_close(struct evr_udp *u)
{
	struct evr_loop *l = u->svc.loop;

	if (u->closing)
		return;
	u->closing = true;
	if (u->starved) {
		evr__list_del(&u->starve);
		u->starved = false;
	}
	l->be_ops->udp_flush(u);
	l->be_ops->udp_stop(u);
	evr__svc_put(&u->svc);
}

void evr__udp_close_all(struct evr_loop *l)
{
	struct evr__list *it, *next;

	for (it = l->udps.next; it != &l->udps; it = next) {
		next = it->next;
		evr_udp_close(EVR_CONTAINER_OF(it, struct evr_udp, link));
	}
}

/* Loop teardown: the ring is gone, nothing refers to the sockets. */
void evr__udp_free_all(struct evr_loop *l)
{
	while (!evr__list_empty(&l->udps)) {
		struct evr_udp *u =
		    EVR_CONTAINER_OF(l->udps.next, struct evr_udp, link);

		if (!u->closing)
			close(u->fd);
		udp_release(&u->svc);
	}
}

int evr_udp_addr(const struct evr_udp *u, struct sockaddr_storage *ss,
		 socklen_t *len)
{
	memcpy(ss, &u->addr, u->addrlen);
	*len = u->addrlen;
	return 0;
}

int evr_udp_deny_port(struct evr_udp *u, uint16_t port)
{
	for (uint32_t i = 0; i < u->ndeny; i++)
		if (u->deny[i] == port)
			return 0;
	if (u->ndeny == EVR__UDP_DENY_MAX)
		return -ENOSPC;
	u->deny[u->ndeny++] = port;
	return 0;
}

void *evr_udp_conf(const struct evr_udp *u)
{
	return u->svc.conf;
}

struct evr_loop *evr_udp_loop(const struct evr_udp *u)
{
	return u->svc.loop;
}

int evr_udp_send_ref(struct evr_udp *u, struct evr_buf *b, size_t off,
		     size_t len, const struct sockaddr *peer, socklen_t peerlen)
{
	struct evr_loop *l = u->svc.loop;
	int err;

	if (u->closing)
		return -EPIPE;
	if (off > b->len || len > b->len - off ||
	    peerlen > sizeof(struct sockaddr_storage))
		return -EINVAL;
	if (u->in_handler && u->guard.amplification != EVR_UDP_UNLIMITED &&
	    len > (uint64_t)u->req_len * u->guard.amplification) {
		len = (uint64_t)u->req_len * u->guard.amplification;
		l->st.udp_capped++;
		drop_log(u, EVR__UDP_CAPPED, peer);
	}
	if (len > UDP_PAYLOAD_MAX)
		return -EMSGSIZE;
	err = l->be_ops->udp_send(u, b, b->data + off, (uint32_t)len, peer,
				  peerlen);
	if (err < 0) {
		evr__udp_tx_drop(u);
		return err;
	}
	return 0;
}

int evr_udp_send(struct evr_udp *u, struct evr_buf *b,
		 const struct sockaddr *peer, socklen_t peerlen)
{
	return evr_udp_send_ref(u, b, 0, b->len, peer, peerlen);
}

int evr_udp_send_copy(struct evr_udp *u, const void *p, size_t len,
		      const struct sockaddr *peer, socklen_t peerlen)
{
	struct evr_buf *b;
	int err;

	if (len > UDP_PAYLOAD_MAX)
		return -EMSGSIZE;
	b = evr_buf_new(u->svc.loop, len ? len : 1);
	if (!b)
		return -ENOMEM;
	memcpy(b->data, p, len);
	b->len = (uint32_t)len;
	err = evr_udp_send(u, b, peer, peerlen);
	evr_buf_unref(b);
	return err;
}
