/* SPDX-License-Identifier: MIT */
/*
 * source.c - connections open per source address.
 *
 * A chained hash table of {address, count}, one entry per source that has a
 * connection open, freed when its last connection closes: memory follows the
 * number of open connections, never the number of addresses ever seen. An
 * IPv6 source counts by its /64, the unit one subscriber usually holds
 * (counting /128s would let one host open a connection from each of its
 * 2^64 addresses). IPv4-mapped IPv6 addresses count as IPv4. The hash is
 * keyed with a random seed so that chosen addresses cannot pile up in one
 * bucket.
 */
#include "internal.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#define KEYLEN EVR__SRCKEY_LEN

int evr__source_key(const struct sockaddr *sa, uint8_t key[KEYLEN])
{
	memset(key, 0, KEYLEN);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		key[0] = 4;
		memcpy(key + 1, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			key[0] = 4;
			memcpy(key + 1, &in6->sin6_addr.s6_addr[12], 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, &in6->sin6_addr, 8); /* the /64 */
		}
		return 0;
	}
	return -EAFNOSUPPORT;
}

uint32_t evr__source_hash(uint64_t seed, const uint8_t key[KEYLEN])
{
	uint64_t a, b, h;

	memcpy(&a, key + 1, 8);
	memcpy(&b, key + 9, 8);
	h = seed ^ key[0];
	/* two rounds of a 64-bit finaliser (splitmix64) over the words */
	h ^= a;
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
	h ^= b + (h >> 31);
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
	return (uint32_t)(h ^ (h >> 31));
}

uint64_t evr__random_seed(const void *salt)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)(uintptr_t)salt ^ evr__now_ms();
	return seed ? seed : 1;
}

static int grow(struct evr__sources *t)
{
	uint32_t nb = t->nb ? t->nb * 2 : 64;
	struct evr__source **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->nb; i++) {
		struct evr__source *s = t->b[i], *next;

		for (; s; s = next) {
			next = s->next;
			s->next = b[s->hash & (nb - 1)];
			b[s->hash & (nb - 1)] = s;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
	return 0;
}

struct evr__source *evr__source_get(struct evr_loop *l, int fd, int *err)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
		*err = -errno;
		return NULL;
	}
	return evr__source_get_addr(l, (struct sockaddr *)&ss, err);
}

struct evr__source *evr__source_get_addr(struct evr_loop *l,
					 const struct sockaddr *sa, int *err)
{
	struct evr__sources *t = &l->sources;
	uint8_t key[KEYLEN];
	struct evr__source *s;
	uint32_t h;

	*err = evr__source_key(sa, key);
	if (*err)
		return NULL;
	if (!t->seed)
		t->seed = evr__random_seed(t);
	if (t->n >= t->nb && (*err = grow(t)) < 0)
		return NULL;
	h = evr__source_hash(t->seed, key);
	for (s = t->b[h & (t->nb - 1)]; s; s = s->next)
		if (s->hash == h && !memcmp(s->key, key, KEYLEN))
			break;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s) {
			*err = -ENOMEM;
			return NULL;
		}
		memcpy(s->key, key, KEYLEN);
		s->hash = h;
		s->next = t->b[h & (t->nb - 1)];
		t->b[h & (t->nb - 1)] = s;
		t->n++;
		l->st.sources = t->n;
	}
	s->count++;
	return s;
}

void evr__source_put(struct evr_loop *l, struct evr__source *s)
{
	struct evr__sources *t = &l->sources;
	struct evr__source **pp;

	if (--s->count)
		return;
	for (pp = &t->b[s->hash & (t->nb - 1)]; *pp != s; pp = &(*pp)->next)
		;
	*pp = s->next;
	free(s);
	t->n--;
	l->st.sources = t->n;
}

void evr__sources_fini(struct evr_loop *l)
{
	struct evr__sources *t = &l->sources;

	for (uint32_t i = 0; i < t->nb; i++) {
		while (t->b[i]) {
			struct evr__source *s = t->b[i];

			t->b[i] = s->next;
			free(s);
		}
	}
	free(t->b);
	memset(t, 0, sizeof(*t));
}
