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
 *   - our own last reply to a source coming back from it (two servers
 *     forged into answering each other);
 *   - sources whose token bucket is empty (replies per second per address,
 *     in a fixed-size table: a flood from many sources cannot grow memory,
 *     it only evicts, and evicting refills nobody's bucket);
 * and a reply from within on_datagram longer on the wire than the
 * amplification limit allows is not sent at all (a cut reply is useless to
 * a client). Each kind of drop is counted; the first of each kind in an
 * interval is logged, the rest only counted.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DROP_LOG_MS	      10000
#define RATE_DEFAULT	      100
#define BURST_DEFAULT	      200
#define SOURCES_DEFAULT	      4096
#define AMPLIFICATION_DEFAULT 3
/* The largest payloads: 65535 - 20 (IPv4) - 8 (UDP); an IPv6 payload
 * length of 65535 - 8 (UDP), jumbograms aside. */
#define UDP_PAYLOAD_MAX4 65507
#define UDP_PAYLOAD_MAX6 65527
/* Bytes on the wire besides the payload: IPv4 20 + UDP 8; IPv6 40 + 8. */
#define UDP_HDR4 28
#define UDP_HDR6 48

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
	[EVR__UDP_DROP_LOOP] = "our own reply came back (another server "
			       "answering us)",
	[EVR__UDP_CAPPED] = "reply over the amplification limit, not sent",
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

/* ---- per-source state: token buckets and the last reply ---- */

/*
 * One entry per source address (IPv6: its /64) in a fixed 2-way set
 * associative table: a flood from many sources cannot grow memory. A source
 * that finds no entry takes the one of its set used longest ago. What the
 * evicted source still owed (the time its bucket would be full again) goes
 * into a sketch, a flat array indexed by a second hash and merged by
 * maximum, and a source entering the table starts from its sketch slot: so
 * churning sources through the table never refills anyone's bucket. (The
 * price: a newcomer that shares a slot with a source that emptied its
 * bucket starts as empty, for at most burst / rate seconds.)
 */
static uint32_t full_at(const struct evr_udp *u, const struct evr__bucket *b)
{
	uint64_t missing = (uint64_t)u->guard.burst * 1000u - b->mtokens;

	return (uint32_t)(b->last +
			  (missing + u->guard.rate - 1) / u->guard.rate);
}

static void refill(struct evr_udp *u, struct evr__bucket *b, uint64_t now)
{
	uint64_t cap = (uint64_t)u->guard.burst * 1000u;

	if (now > b->last) {
		uint64_t add = (now - b->last) * u->guard.rate; /* milli */

		b->mtokens =
		    (uint32_t)(b->mtokens + add > cap ? cap : b->mtokens + add);
		b->last = now;
	}
}

static struct evr__bucket *bucket_get(struct evr_udp *u,
				      const struct sockaddr *peer)
{
	uint64_t now = u->svc.loop->now;
	bool limited = u->guard.rate != EVR_UDP_UNLIMITED;
	uint8_t key[EVR__SRCKEY_LEN];
	struct evr__bucket *set, *b;

	evr__source_key(peer, key);
	set = &u->buckets[evr__source_hash(u->seed, key) & (u->nbuckets - 2)];
	for (int i = 0; i < 2; i++) {
		if (set[i].used && !memcmp(set[i].key, key, EVR__SRCKEY_LEN)) {
			set[i].seen = now;
			return &set[i];
		}
	}
	b = !set[0].used		 ? &set[0]
	    : !set[1].used		 ? &set[1]
	    : set[0].seen <= set[1].seen ? &set[0]
					 : &set[1];
	if (b->used && limited) {
		uint32_t *slot = &u->sketch[b->slot];

		refill(u, b, now);
		if ((int32_t)(full_at(u, b) - *slot) > 0)
			*slot = full_at(u, b);
	}
	memset(b, 0, sizeof(*b));
	memcpy(b->key, key, EVR__SRCKEY_LEN);
	b->used = 1;
	b->seen = b->last = now;
	b->mtokens = u->guard.burst * 1000u;
	if (limited) {
		uint32_t full;
		int32_t owed;

		b->slot = evr__source_hash(u->seed2, key) & (u->nsketch - 1);
		full = u->sketch[b->slot];
		owed = (int32_t)(full - (uint32_t)now);
		if (owed > 0)
			b->mtokens =
			    (uint64_t)owed * u->guard.rate >= b->mtokens
				? 0
				: b->mtokens - (uint32_t)owed * u->guard.rate;
	}
	return b;
}

static bool bucket_take(struct evr_udp *u, struct evr__bucket *b)
{
	if (!b || u->guard.rate == EVR_UDP_UNLIMITED)
		return true;
	refill(u, b, u->svc.loop->now);
	if (b->mtokens < 1000)
		return false;
	b->mtokens -= 1000;
	return true;
}

/*
 * Two servers that answer datagrams, forged into talking to each other
 * (each "replying" to the other's port), would go on for ever, slowed only
 * by the rate limit. Each remembers the last reply it sent to a source:
 * its port and a hash of its payload. A datagram from that port with that
 * payload within EVR__UDP_LOOP_MS is our own reply coming back: dropped,
 * which ends the exchange within a round or two whatever the two services
 * are (echo returns a reply as it is; daytime and time repeat within their
 * second; chargen sees its own line come back from an echo).
 *
 * A client that sends the same payload again and again looks the same, so
 * the rule applies only to peers whose port lies outside the kernel's
 * ephemeral range (net.ipv4.ip_local_port_range): clients send from there,
 * servers answer from ports they were given. Two servers both bound to
 * ports of the ephemeral range are left to the rate limit.
 */
#define EVR__UDP_LOOP_MS 1000

/* Read once per process, by whichever loop asks first. */
static uint16_t eph_lo, eph_hi;
static pthread_once_t eph_once = PTHREAD_ONCE_INIT;

static void ephemeral_range(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	unsigned a = 32768, b = 60999; /* the kernel's default */

	if (f) {
		if (fscanf(f, "%u %u", &a, &b) != 2 || !a || a > b || b > 65535)
			a = 32768, b = 60999;
		fclose(f);
	}
	eph_hi = (uint16_t)b;
	eph_lo = (uint16_t)a;
}

static bool ephemeral_port(uint16_t port)
{
	pthread_once(&eph_once, ephemeral_range);
	return port >= eph_lo && port <= eph_hi;
}

static uint64_t reply_sig(uint16_t port, const char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ port ^ ((uint64_t)len << 16);
	size_t n = len < 64 ? len : 64;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 0x100000001b3ULL; /* FNV-1a */
	return h | 1; /* 0: no reply recorded */
}

static bool our_reply(const struct evr_udp *u, const struct evr__bucket *b,
		      uint16_t port, const struct evr_buf *buf)
{
	uint64_t now = u->svc.loop->now;

	return b->reply_sig && now - b->reply_at < EVR__UDP_LOOP_MS &&
	       b->reply_sig == reply_sig(port, buf->data, buf->len);
}

/* The source's entry, needed for its rate and for the reply-loop rule
 * (only peers outside the ephemeral range): NULL when neither applies. */
static struct evr__bucket *source_entry(struct evr_udp *u, uint16_t port,
					const struct sockaddr *peer)
{
	if (u->guard.rate == EVR_UDP_UNLIMITED &&
	    (u->guard.allow_own_replies || ephemeral_port(port)))
		return NULL;
	return bucket_get(u, peer);
}

void evr__udp_datagram(struct evr_udp *u, struct evr_buf *b,
		       const struct sockaddr *peer, socklen_t peerlen,
		       bool truncated)
{
	struct evr_stats *st = &u->svc.loop->st;
	struct evr__bucket *src;
	uint16_t port = peer_port(peer);

	st->udp_rx++;
	if (EVR_UNLIKELY(truncated)) {
		st->udp_trunc++;
		drop_log(u, EVR__UDP_TRUNC, peer);
	} else if (u->closing) {
		/* closed meanwhile: not answered */
	} else if (EVR_UNLIKELY(port_denied(u, port))) {
		st->udp_drop_port++;
		drop_log(u, EVR__UDP_DROP_PORT, peer);
	} else if (EVR_UNLIKELY(!u->guard.allow_special_addrs &&
				addr_special(peer))) {
		st->udp_drop_addr++;
		drop_log(u, EVR__UDP_DROP_ADDR, peer);
	} else if (EVR_UNLIKELY((src = source_entry(u, port, peer)) &&
				our_reply(u, src, port, b))) {
		st->udp_drop_loop++;
		drop_log(u, EVR__UDP_DROP_LOOP, peer);
	} else if (!bucket_take(u, src)) {
		st->udp_drop_rate++;
		drop_log(u, EVR__UDP_DROP_RATE, peer);
	} else {
		u->in_handler = true;
		u->cur = src;
		u->cur_peer = peer;
		u->cur_peerlen = peerlen;
		u->req_len = b->len;
		u->svc.proto.p->on_datagram(u, b, peer, peerlen);
		u->in_handler = false;
		u->cur = NULL;
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

/*
 * Replies leave in batches: queued by the backend's udp_send (both backends
 * use these two), sent with one sendmmsg(2) per socket by the flush pass at
 * the top of the next iteration (or when 64 are queued). The replies to one
 * batch of datagrams cost one system call; a full socket drops the rest,
 * counted: UDP never waits.
 */
void evr__udp_batch_flush(struct evr_udp *u)
{
	struct evr_loop *l = u->svc.loop;
	struct evr__udp_out *o = u->out;
	struct mmsghdr mm[EVR__UDP_OUT_MAX];
	struct iovec iov[EVR__UDP_OUT_MAX];
	uint32_t done = 0;

	if (!o || !o->n)
		return;
	memset(mm, 0, sizeof(mm[0]) * o->n);
	for (uint32_t i = 0; i < o->n; i++) {
		iov[i].iov_base = o->q[i].p;
		iov[i].iov_len = o->q[i].len;
		mm[i].msg_hdr.msg_name = &o->q[i].addr;
		mm[i].msg_hdr.msg_namelen = o->q[i].alen;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	while (done < o->n) {
		int r = sendmmsg(u->fd, mm + done, o->n - done, MSG_DONTWAIT);

		if (r > 0) {
			done += (uint32_t)r;
			l->st.udp_tx += (uint64_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		/* Full socket (EAGAIN) drops the rest, UDP never waits; an
		 * error that belongs to one datagram (an ICMP error,
		 * EMSGSIZE) drops that one and goes on. */
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			while (done < o->n) {
				evr__udp_tx_drop(u);
				done++;
			}
			break;
		}
		evr__udp_tx_drop(u);
		done++;
	}
	for (uint32_t i = 0; i < o->n; i++)
		evr_buf_unref(o->q[i].buf);
	o->n = 0;
}

int evr__udp_batch_send(struct evr_udp *u, struct evr_buf *b, char *p,
			uint32_t len, const struct sockaddr *peer,
			socklen_t peerlen)
{
	struct evr_loop *l = u->svc.loop;
	struct evr__udp_out *o = u->out;

	if (!o) {
		o = u->out = calloc(1, sizeof(*o));
		if (!o)
			return -ENOMEM;
	}
	if (o->n == EVR__UDP_OUT_MAX)
		evr__udp_batch_flush(u);
	o->q[o->n].buf = evr_buf_ref(b);
	o->q[o->n].p = p;
	o->q[o->n].len = len;
	o->q[o->n].alen = peerlen;
	memcpy(&o->q[o->n].addr, peer, peerlen);
	o->n++;
	if (!u->dirty) {
		u->svc.refs++; /* dropped by the flush pass */
		u->dirty = true;
		u->next_dirty = l->udp_dirty;
		l->udp_dirty = u;
	}
	return 0;
}

/* ---- sockets ---- */

static void udp_release(struct evr__svc *svc)
{
	struct evr_udp *u = EVR_CONTAINER_OF(svc, struct evr_udp, svc);

	evr__svc_cfg_done(svc);
	for (int i = 0; i < EVR__UDP__COUNT; i++)
		evr__ratelimit_fini(svc->loop, &u->rl[i]);
	evr__list_del(&u->link);
	free(u->buckets);
	free(u->sketch);
	free(u->out);
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
		u->guard.amplification = AMPLIFICATION_DEFAULT;
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
	/* the table serves the reply-loop rule even without a rate limit */
	u->buckets = calloc(u->nbuckets, sizeof(*u->buckets));
	if (!u->buckets)
		return -ENOMEM;
	u->seed = evr__random_seed(u);
	u->seed2 = evr__random_seed(&u->seed);
	if (u->guard.rate == EVR_UDP_UNLIMITED)
		return 0;
	u->nsketch = 2 * u->nbuckets;
	u->sketch = calloc(u->nsketch, sizeof(*u->sketch));
	if (!u->sketch) {
		free(u->buckets);
		u->buckets = NULL;
		return -ENOMEM;
	}
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

/* The part of a UDP configuration the core keeps with every service. */
static void svc_cfg(const struct evr_udp_cfg *cfg, struct evr_listen_cfg *scfg)
{
	memset(scfg, 0, sizeof(*scfg));
	scfg->proto = cfg->proto;
	scfg->conf = cfg->conf;
	scfg->name = cfg->name;
	scfg->release = cfg->release;
	scfg->release_arg = cfg->release_arg;
}

static int udp_cfg_check(const struct evr_udp_cfg *cfg)
{
	char why[160];

	if (!cfg || !cfg->proto)
		return -EINVAL;
	if (evr_proto_validate(cfg->proto, why, sizeof(why)) < 0 ||
	    (!cfg->proto->on_datagram &&
	     snprintf(why, sizeof(why), "module %s: no on_datagram",
		      cfg->proto->name))) {
		evr_log_err("udp bind: %s", why);
		return -EINVAL;
	}
	return 0;
}

static int udp_check(struct evr_loop *l, const struct evr_udp_cfg *cfg)
{
	int err = udp_cfg_check(cfg);

	if (err < 0)
		return err;
	if (l->stopping || l->draining)
		return -ESHUTDOWN;
	return 0;
}

/* What evr_udp_bind() and evr_udp_bind_fd() share once the socket is
 * bound: on failure fd is closed. sa: the address to report when
 * getsockname fails (NULL: none). */
static int udp_serve(struct evr_loop *l, int fd, const struct sockaddr *sa,
		     socklen_t salen, const struct evr_udp_cfg *cfg,
		     struct evr_udp **out)
{
	struct evr_listen_cfg scfg;
	struct evr__gport *gp;
	struct evr_udp *u;
	int err;

	/* every loop's socket of this address (evr_udp_bind): the first one
	 * gets the steering program, which keeps a source on one loop */
	if (sa && cfg->reuseport && l->group) {
		err = evr__gport_join(l, fd, SOCK_DGRAM, !cfg->reuseport_shared,
				      &gp);
		if (err < 0)
			goto out_close;
	}
	err = udp_pool_ensure(l);
	if (err < 0)
		goto out_close;
	u = calloc(1, sizeof(*u));
	if (!u) {
		err = -ENOMEM;
		goto out_close;
	}
	err = guard_resolve(u, &cfg->guard);
	if (err < 0) {
		free(u);
		goto out_close;
	}
	svc_cfg(cfg, &scfg);
	evr__svc_init(&u->svc, l, &scfg, udp_release);
	u->fd = fd;
	u->addrlen = sizeof(u->addr);
	if (getsockname(fd, (struct sockaddr *)&u->addr, &u->addrlen) < 0) {
		u->addrlen = sa ? salen : 0;
		if (sa)
			memcpy(&u->addr, sa, salen);
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

out_close:
	close(fd);
	return err;
}

int evr_udp_bind(struct evr_loop *l, const struct sockaddr *sa, socklen_t salen,
		 const struct evr_udp_cfg *cfg, struct evr_udp **out)
{
	int fd, err;

	if (salen > sizeof(struct sockaddr_storage))
		return -EINVAL;
	err = udp_check(l, cfg);
	if (err < 0)
		return err;
	if (cfg->reuseport && l->group && !cfg->reuseport_shared) {
		err = evr__gport_probe(l, SOCK_DGRAM, sa, salen, cfg->v6only);
		if (err < 0)
			return err;
	}
	fd = udp_socket(sa, salen, cfg);
	if (fd < 0)
		return fd;
	return udp_serve(l, fd, sa, salen, cfg, out);
}

/* An inherited socket as evr_udp_bind() makes its own: UDP over IPv4 or
 * IPv6, bound, nonblocking. The socket serves a close-on-exec duplicate,
 * so that fd is the caller's to close on failure. */
int evr_udp_bind_fd(struct evr_loop *l, int fd, const struct evr_udp_cfg *cfg,
		    struct evr_udp **out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss), ilen = sizeof(int);
	int type = 0, own, fl, err;

	err = udp_check(l, cfg);
	if (err < 0)
		return err;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ilen) < 0)
		return -errno;
	if (type != SOCK_DGRAM)
		return -EPROTOTYPE;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
		return -EAFNOSUPPORT;
	own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (own < 0)
		return -errno;
	fl = fcntl(own, F_GETFL);
	if (fl < 0 || fcntl(own, F_SETFL, fl | O_NONBLOCK) < 0) {
		err = -errno;
		close(own);
		return err;
	}
	err = udp_serve(l, own, NULL, 0, cfg, out);
	if (!err)
		close(fd);
	return err;
}

/* The new guard's table is made aside, so that a failure changes
 * nothing; ports denied on the socket so far stay denied. */
int evr_udp_set_cfg(struct evr_udp *u, const struct evr_udp_cfg *cfg)
{
	struct evr_listen_cfg scfg;
	struct evr_udp *t;
	int err = udp_cfg_check(cfg);

	if (err < 0)
		return err;
	if (u->closing)
		return -ESHUTDOWN;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	err = guard_resolve(t, &cfg->guard);
	if (err < 0) {
		free(t);
		return err;
	}
	for (uint32_t i = 0; i < u->ndeny; i++)
		evr_udp_deny_port(t, u->deny[i]);
	free(u->buckets);
	free(u->sketch);
	u->guard = t->guard;
	u->buckets = t->buckets;
	u->nbuckets = t->nbuckets;
	u->sketch = t->sketch;
	u->nsketch = t->nsketch;
	u->seed = t->seed;
	u->seed2 = t->seed2;
	memcpy(u->deny, t->deny, sizeof(u->deny));
	u->ndeny = t->ndeny;
	free(t);
	evr__svc_cfg_done(&u->svc);
	svc_cfg(cfg, &scfg);
	evr__svc_set(&u->svc, &scfg);
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

static bool ipv4_wire(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET ||
	       IN6_IS_ADDR_V4MAPPED(
		   &((const struct sockaddr_in6 *)sa)->sin6_addr);
}

static size_t payload_max(const struct sockaddr *sa)
{
	return ipv4_wire(sa) ? UDP_PAYLOAD_MAX4 : UDP_PAYLOAD_MAX6;
}

/* Inside on_datagram, the longest reply the amplification limit lets
 * through to the datagram's sender: its request's bytes on the wire times
 * the limit, less the headers of the reply. */
static size_t reply_cap(const struct evr_udp *u)
{
	size_t hdr = ipv4_wire(u->cur_peer) ? UDP_HDR4 : UDP_HDR6;
	uint64_t wire = ((uint64_t)u->req_len + hdr) * u->guard.amplification;
	size_t max = payload_max(u->cur_peer);

	if (u->guard.amplification == EVR_UDP_UNLIMITED)
		return max;
	return wire - hdr < max ? (size_t)(wire - hdr) : max;
}

size_t evr_udp_reply_max(const struct evr_udp *u)
{
	if (u->in_handler)
		return reply_cap(u);
	return u->addr.ss_family == AF_INET ? UDP_PAYLOAD_MAX4
					    : UDP_PAYLOAD_MAX6;
}

int evr_udp_send_ref(struct evr_udp *u, struct evr_buf *b, size_t off,
		     size_t len, const struct sockaddr *peer, socklen_t peerlen)
{
	struct evr_loop *l = u->svc.loop;
	bool reply;
	int err;

	if (u->closing)
		return -EPIPE;
	if (off > b->len || len > b->len - off ||
	    peerlen > sizeof(struct sockaddr_storage))
		return -EINVAL;
	reply = u->in_handler && peerlen == u->cur_peerlen &&
		!memcmp(peer, u->cur_peer, peerlen);
	if (reply && len > reply_cap(u)) {
		l->st.udp_capped++;
		drop_log(u, EVR__UDP_CAPPED, peer);
		return -EMSGSIZE;
	}
	if (len > payload_max(peer))
		return -EMSGSIZE;
	err = l->be_ops->udp_send(u, b, b->data + off, (uint32_t)len, peer,
				  peerlen);
	if (err < 0) {
		evr__udp_tx_drop(u);
		return err;
	}
	if (reply && u->cur && !u->guard.allow_own_replies &&
	    !ephemeral_port(peer_port(peer))) {
		u->cur->reply_sig =
		    reply_sig(peer_port(peer), b->data + off, len);
		u->cur->reply_at = l->now;
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

	if (len > payload_max(peer))
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
