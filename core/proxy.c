/* SPDX-License-Identifier: MIT */
/*
 * proxy.c - the PROXY protocol on a listener (evr_listen_cfg.proxy): the
 * header a load balancer (haproxy's send-proxy, send-proxy-v2) puts in
 * front of a connection to tell the client's real address.
 *
 * Layout: the parser, a pure function over the bytes received so far (the
 * fuzz target's subject, tests/fuzz/fuzz_proxy.c), then what a connection
 * does with it.
 *
 * The specification is haproxy's doc/proxy-protocol.txt. Its rules that
 * shape this file:
 * - the receiver is configured for the protocol and never guesses whether
 *   a header is present (2: "MUST not try to guess"), or anyone could
 *   claim any address: a listener with proxy set takes nothing else, and
 *   only the version it was given;
 * - nothing is processed before a complete and valid header (2): the
 *   module's on_accept runs once the header is in, and per-source limits
 *   count the address it gives; a header that is not complete within
 *   proxy_timeout_ms (at least 3 s to cover a retransmit) closes the
 *   connection;
 * - v1 (2.1): one line "PROXY TCP4|TCP6|UNKNOWN ...\r\n" of at most 107
 *   bytes, exactly one space between fields, no leading zeros, a CRLF and
 *   never a lone CR or LF; UNKNOWN means: use the connection's own
 *   addresses;
 * - v2 (2.2): a 16-byte block (the 12-byte signature, version 2 and a
 *   command, family and protocol, the length of what follows), then the
 *   addresses and TLVs. LOCAL (health checks) and families or protocols
 *   this side does not take use the connection's own addresses; other
 *   versions and commands, and unassigned families and protocols, are
 *   refused. TLVs are skipped, however long: only the first bytes of the
 *   address block are kept.
 *
 * Bytes that arrived in the same read after the header are the client's
 * first data: the module gets them in the very buffer, advanced past the
 * header.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
static const char v1_sig[] = "PROXY ";

#define V1_MAX	     107 /* the longest line, CRLF included (2.1) */
#define V2_FIXED     16
#define V2_ADDR_IN4  12 /* 2 * 4 + 2 * 2 */
#define V2_ADDR_IN6  36 /* 2 * 16 + 2 * 2 */
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1

_Static_assert(EVR__PROXY_KEEP >= V1_MAX && EVR__PROXY_KEEP >= V2_FIXED + 36,
	       "the header buffer holds a v1 line and a v2 IPv6 block");

/* ---- the parser ---- */

/* A decimal port: "0", or 1-5 digits without a leading zero, <= 65535. */
static int v1_port(const char *s, size_t n, uint16_t *out)
{
	unsigned v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -EPROTO;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EPROTO;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return -EPROTO;
	*out = (uint16_t)v;
	return 0;
}

/* An address of family af, canonical as 2.1 says (inet_pton refuses
 * leading zeros in IPv4, and takes one "::" in IPv6). */
static int v1_addr(int af, const char *s, size_t n, struct sockaddr_storage *ss,
		   socklen_t *len, uint16_t port)
{
	char buf[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(buf))
		return -EPROTO;
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (af == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		if (n > 15 || inet_pton(AF_INET, buf, &in->sin_addr) != 1)
			return -EPROTO;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		*len = sizeof(*in);
		return 0;
	}
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	if (inet_pton(AF_INET6, buf, &in6->sin6_addr) != 1)
		return -EPROTO;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	*len = sizeof(*in6);
	return 0;
}

/* "PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n" */
static int parse_v1(const uint8_t *p, size_t n, struct evr__proxy_hdr *h)
{
	const char *s = (const char *)p, *f[6];
	size_t flen[6], end = 0;
	uint16_t sport, dport;
	int nf = 0, af, err;

	/* the CRLF, within the first 107 bytes; a lone CR or LF is refused */
	for (end = 0; end < n && end < V1_MAX; end++) {
		if (s[end] == '\n')
			return -EPROTO;
		if (s[end] == '\r') {
			if (end + 1 == n)
				return 0;
			if (s[end + 1] != '\n')
				return -EPROTO;
			break;
		}
	}
	if (end == n)
		return n >= V1_MAX ? -EPROTO : 0;
	if (end >= V1_MAX - 1)
		return -EPROTO;
	h->version = 1;
	h->total = (uint32_t)end + 2;
	/* fields separated by exactly one space */
	for (size_t i = 0, start = 0; i <= end; i++) {
		if (i < end && s[i] != ' ')
			continue;
		if (nf == 6 || i == start)
			return -EPROTO;
		f[nf] = s + start;
		flen[nf++] = i - start;
		start = i + 1;
	}
	/* f[0] is "PROXY" */
	if (flen[1] == 7 && !memcmp(f[1], "UNKNOWN", 7)) {
		h->local = true; /* whatever follows is ignored */
		return (int)h->total;
	}
	if (flen[1] != 4 || memcmp(f[1], "TCP", 3) ||
	    (f[1][3] != '4' && f[1][3] != '6') || nf != 6)
		return -EPROTO;
	af = f[1][3] == '4' ? AF_INET : AF_INET6;
	if (v1_port(f[4], flen[4], &sport) < 0 ||
	    v1_port(f[5], flen[5], &dport) < 0)
		return -EPROTO;
	err = v1_addr(af, f[2], flen[2], &h->src, &h->srclen, sport);
	if (!err)
		err = v1_addr(af, f[3], flen[3], &h->dst, &h->dstlen, dport);
	if (err)
		return err;
	h->local = false;
	return (int)h->total;
}

static int parse_v2(const uint8_t *p, size_t n, struct evr__proxy_hdr *h)
{
	uint8_t cmd, fam, proto;
	size_t len, need;

	if (n < V2_FIXED)
		return 0;
	if ((p[12] >> 4) != 2)
		return -EPROTO;
	cmd = p[12] & 0xF;
	fam = p[13] >> 4;
	proto = p[13] & 0xF;
	if (cmd > V2_CMD_PROXY || fam > 3 || proto > 2)
		return -EPROTO;
	len = (size_t)p[14] << 8 | p[15];
	h->version = 2;
	h->total = (uint32_t)(V2_FIXED + len);
	h->local = true;
	if (cmd == V2_CMD_LOCAL)
		return (int)h->total; /* the family is ignored (2.2) */
	/* TCP over IPv4 (0x11) and IPv6 (0x21) carry the client; anything
	 * else valid falls back to the connection's addresses (2.2) */
	need = p[13] == 0x11 ? V2_ADDR_IN4 : p[13] == 0x21 ? V2_ADDR_IN6 : 0;
	if (len < need)
		return -EPROTO;
	if (n < V2_FIXED + need)
		return 0;
	if (need == V2_ADDR_IN4) {
		struct sockaddr_in *s = (struct sockaddr_in *)&h->src;
		struct sockaddr_in *d = (struct sockaddr_in *)&h->dst;

		memset(&h->src, 0, sizeof(h->src));
		memset(&h->dst, 0, sizeof(h->dst));
		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, p + 16, 4);
		memcpy(&d->sin_addr, p + 20, 4);
		memcpy(&s->sin_port, p + 24, 2);
		memcpy(&d->sin_port, p + 26, 2);
		h->srclen = h->dstlen = sizeof(*s);
		h->local = false;
	} else if (need == V2_ADDR_IN6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&h->src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&h->dst;

		memset(&h->src, 0, sizeof(h->src));
		memset(&h->dst, 0, sizeof(h->dst));
		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, p + 16, 16);
		memcpy(&d->sin6_addr, p + 32, 16);
		memcpy(&s->sin6_port, p + 48, 2);
		memcpy(&d->sin6_port, p + 50, 2);
		h->srclen = h->dstlen = sizeof(*s);
		h->local = false;
	}
	return (int)h->total;
}

int evr__proxy_parse(const uint8_t *p, size_t n, enum evr_proxy version,
		     struct evr__proxy_hdr *h)
{
	size_t k;

	memset(h, 0, sizeof(*h));
	if (version == EVR_PROXY_V1) {
		k = n < sizeof(v1_sig) - 1 ? n : sizeof(v1_sig) - 1;
		if (memcmp(p, v1_sig, k))
			return -EPROTO;
		return k < sizeof(v1_sig) - 1 ? 0 : parse_v1(p, n, h);
	}
	if (version != EVR_PROXY_V2)
		return -EINVAL;
	k = n < sizeof(v2_sig) ? n : sizeof(v2_sig);
	if (memcmp(p, v2_sig, k))
		return -EPROTO;
	return parse_v2(p, n, h);
}

/* ---- a connection waiting for its header ---- */

static const char *const version_names[] = {
	[EVR_PROXY_V1] = "v1",
	[EVR_PROXY_V2] = "v2",
};

/* Closed for a header that is wrong or late: counted, logged at most once
 * per 10 s with the address of the one who sent it. */
static void refuse(struct evr_conn *c, int err, const char *why)
{
	struct evr_loop *l = c->loop;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char a[EVR_ADDRSTRLEN] = "-";

	l->st.proxy_refused++;
	if (evr__ratelimit(
		l, &l->rl_proxy, 10000,
		"proxy: connections closed for their PROXY header")) {
		if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0)
			evr_addr_str((struct sockaddr *)&ss, a, sizeof(a));
		evr_log_warn("proxy (%s): %s: %s (PROXY protocol %s expected); "
			     "closed (more are summed up in 10 s)",
			     c->svc->name, a, why,
			     version_names[c->svc->proxy]);
	}
	evr_abort(c, err);
}

static void header_late(struct evr_timer *t)
{
	struct evr__conn_ext *x =
	    EVR_CONTAINER_OF(t, struct evr__conn_ext, proxy_timer);

	if (x->proxy_pending && !(x->conn->flags & EVR__C_CLOSING))
		refuse(x->conn, -ETIMEDOUT, "no complete header in time");
}

bool evr__proxy_start(struct evr_conn *c)
{
	struct evr__conn_ext *x = c->ext;

	if (!x || !c->svc->proxy)
		return false;
	x->proxy_pending = true;
	evr_timer_init(&x->proxy_timer, header_late);
	evr_timer_start(c->loop, &x->proxy_timer, c->svc->proxy_timeout_ms);
	return true;
}

/* The per-source limit, now that the source is known. */
static int source_admit(struct evr_conn *c)
{
	struct evr_loop *l = c->loop;
	int err;

	if (!l->max_per_source)
		return 0;
	c->src = evr__source_get_addr(l, &c->ext->peer.sa, &err);
	if (!c->src)
		return err == -EAFNOSUPPORT ? 0 : err;
	if (evr__source_over(l, c->src)) {
		l->st.conns_refused++;
		if (evr__ratelimit(l, &l->rl_refuse, 10000,
				   "accept: connections refused by a limit"))
			evr_log_warn("accept (%s): refused a connection: "
				     "per-source limit of %u reached (more "
				     "are summed up in 10 s)",
				     c->svc->name, l->max_per_source);
		return -ECONNREFUSED;
	}
	if (l->group)
		c->flags |= EVR__C_GSRC; /* counted in the group's sketch */
	return 0;
}

/* The header is in: the client is known; the module may have it. */
static bool header_done(struct evr_conn *c)
{
	struct evr__conn_ext *x = c->ext;
	struct evr_loop *l = c->loop;
	int err;

	x->proxy_pending = false;
	evr_timer_stop(l, &x->proxy_timer);
	err = source_admit(c);
	if (err < 0) {
		evr_abort(c, err);
		return false;
	}
	err = c->svc->proto.on_accept(c);
	if (err < 0) {
		evr_abort(c, err);
		return false;
	}
	if (l->draining)
		c->svc->proto.on_drain(c);
	return !(c->flags & EVR__C_CLOSING);
}

bool evr__proxy_feed(struct evr_conn *c, struct evr_buf *b)
{
	struct evr__conn_ext *x = c->ext;
	struct evr__proxy_hdr h;
	uint32_t before, take, used;
	int r;

	if (x->proxy_skip) { /* the rest of v2's TLVs */
		take = b->len < x->proxy_skip ? b->len : x->proxy_skip;
		x->proxy_skip -= take;
		b->data += take;
		b->len -= take;
		if (x->proxy_skip)
			return false;
		return header_done(c) && b->len;
	}
	before = x->proxy_len;
	take = EVR__PROXY_KEEP - before;
	if (take > b->len)
		take = b->len;
	memcpy(x->proxy_hdr + before, b->data, take);
	x->proxy_len = (uint16_t)(before + take);
	r = evr__proxy_parse(x->proxy_hdr, x->proxy_len, c->svc->proxy, &h);
	if (r < 0) {
		refuse(c, -EPROTO,
		       r == -EPROTO ? "not a valid PROXY header"
				    : "bad header");
		return false;
	}
	if (r == 0) {
		if (x->proxy_len == EVR__PROXY_KEEP) {
			refuse(c, -EPROTO, "header too long");
			return false;
		}
		b->data += take;
		b->len -= take;
		return false;
	}
	if (!h.local) {
		memcpy(&x->peer, &h.src, h.srclen);
		x->peerlen = h.srclen;
	}
	/* the header ends at byte r of the stream: maybe beyond this buffer
	 * (TLVs), maybe before its end (the client's first data) */
	used = (uint32_t)r - before;
	if (used > b->len) {
		x->proxy_skip = used - b->len;
		b->data += b->len;
		b->len = 0;
		return false;
	}
	b->data += used;
	b->len -= used;
	return header_done(c) && b->len;
}

bool evr__proxy_eof(struct evr_conn *c)
{
	struct evr__conn_ext *x = c->ext;

	if (!x || !x->proxy_pending)
		return false;
	/* a health check that connects and closes sends nothing: no
	 * warning for it; a header cut short is worth one */
	if (x->proxy_len || x->proxy_skip)
		refuse(c, -EPROTO, "closed in the middle of the header");
	else
		evr_abort(c, -ECONNABORTED);
	return true;
}
