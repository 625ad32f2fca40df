/* SPDX-License-Identifier: MIT */
/*
 * fuzz_proxy.c - libFuzzer target for the PROXY protocol parser
 * (evr__proxy_parse, core/proxy.c).
 *
 * An input is a header byte and the bytes a client sends:
 *
 *	byte 0	bit 0: the version the listener takes (0: v1, 1: v2)
 *	rest	the stream
 *
 * What must hold, from haproxy's doc/proxy-protocol.txt and the contract
 * in core/internal.h, not from proxy.c:
 * - a decision is final: once a prefix of the stream is accepted (> 0) or
 *   refused (< 0), every longer prefix gets the same answer, with the same
 *   address; a prefix that gets 0 (more needed) is shorter than the
 *   stream's decision point;
 * - the connection keeps at most EVR__PROXY_KEEP bytes while it waits, so
 *   that many bytes always decide;
 * - an accepted v1 line ends in CRLF and is at most 107 bytes; an accepted
 *   v2 header is 16 bytes plus the length it announces;
 * - an address that is not the connection's own is IPv4 or IPv6 with the
 *   matching length.
 */
#include "../../core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, size_t k)
{
	fprintf(stderr, "fuzz_proxy: %s (prefix %zu)\n", what, k);
	abort();
}

/* A copy of exactly n bytes, so that ASan sees a read past them. */
static int parse(const uint8_t *p, size_t n, enum evr_proxy v,
		 struct evr__proxy_hdr *h)
{
	uint8_t *copy = malloc(n ? n : 1);
	int r;

	memcpy(copy, p, n);
	r = evr__proxy_parse(copy, n, v, h);
	free(copy);
	return r;
}

static bool same(const struct evr__proxy_hdr *a, const struct evr__proxy_hdr *b)
{
	return a->version == b->version && a->local == b->local &&
	       a->total == b->total && a->srclen == b->srclen &&
	       !memcmp(&a->src, &b->src, a->srclen) &&
	       !memcmp(&a->dst, &b->dst, a->dstlen);
}

static void check_accepted(const uint8_t *p, size_t n, enum evr_proxy v, int r,
			   const struct evr__proxy_hdr *h)
{
	if (v == EVR_PROXY_V1) {
		if (r > 107 || (size_t)r > n || p[r - 2] != '\r' ||
		    p[r - 1] != '\n')
			fail("a v1 line accepted without its CRLF", n);
		if (h->version != 1)
			fail("v1 accepted as another version", n);
	} else {
		if (r < 16 || (uint32_t)r != 16u + (p[14] << 8 | p[15]))
			fail("a v2 length that is not 16 + len", n);
		if (h->version != 2)
			fail("v2 accepted as another version", n);
	}
	if (h->local)
		return;
	if (h->src.ss_family == AF_INET) {
		if (h->srclen != sizeof(struct sockaddr_in) ||
		    h->dst.ss_family != AF_INET)
			fail("IPv4 address lengths", n);
	} else if (h->src.ss_family == AF_INET6) {
		if (h->srclen != sizeof(struct sockaddr_in6) ||
		    h->dst.ss_family != AF_INET6)
			fail("IPv6 address lengths", n);
	} else {
		fail("a client address neither IPv4 nor IPv6", n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evr__proxy_hdr first, h;
	enum evr_proxy v;
	const uint8_t *p;
	size_t n, decided = 0;
	int r = 0;

	if (size < 1)
		return 0;
	v = (data[0] & 1) ? EVR_PROXY_V2 : EVR_PROXY_V1;
	p = data + 1;
	n = size - 1;
	if (n > 4096)
		n = 4096;
	for (size_t k = 0; k <= n; k++) {
		int rk = parse(p, k, v, &h);

		if (!decided) {
			if (rk == 0)
				continue;
			decided = k;
			r = rk;
			first = h;
			if (r > 0)
				check_accepted(p, k, v, r, &h);
			if (rk == -EINVAL)
				fail("a bad version for a valid one", k);
			continue;
		}
		if (rk != r || (r > 0 && !same(&h, &first)))
			fail("a decision changed with more bytes", k);
	}
	if (!decided && n >= EVR__PROXY_KEEP)
		fail("undecided after EVR__PROXY_KEEP bytes", n);
	if (decided > EVR__PROXY_KEEP)
		fail("decided only past EVR__PROXY_KEEP bytes", decided);
	return 0;
}
