/* SPDX-License-Identifier: MIT */
/*
 * buf.c - the loop's buffers: the receive pool and buffers for replies.
 *
 * The receive pool is one page-aligned region of count * size bytes cut into
 * fixed buffers, described by an array of struct evr_buf indexed by buffer
 * id. Under io_uring every free pool buffer sits in the provided-buffer ring
 * and the kernel picks one only when data arrives; under epoll free buffers
 * sit on a free list. Either way an idle connection holds no buffer.
 *
 * Buffers made by evr_buf_new() come from the heap in three classes: small
 * (EVR__BUF_SMALL_CAP bytes) and mid (the pool's buffer size) are cached on
 * free lists of bounded length so replies cost no allocation in the steady
 * state; bigger ones are allocated and freed exactly.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int evr__pool_init(struct evr_loop *l, struct evr__pool *p, uint16_t bgid,
		   uint32_t count, uint32_t size)
{
	p->bgid = bgid;
	p->count = count;
	p->size = size;
	p->mem_len = (size_t)count * size;
	p->mem = mmap(NULL, p->mem_len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->mem == MAP_FAILED) {
		p->mem = NULL;
		return -errno;
	}
	p->bufs = calloc(count, sizeof(*p->bufs));
	if (!p->bufs) {
		munmap(p->mem, p->mem_len);
		p->mem = NULL;
		return -ENOMEM;
	}
	for (uint32_t i = count; i-- > 0;) {
		struct evr_buf *b = &p->bufs[i];

		b->base = b->data = p->mem + (size_t)i * size;
		b->cap = size;
		b->id = (uint16_t)i;
		b->kind = EVR__BUF_POOL;
		b->pool = (uint8_t)bgid;
		b->loop = l;
		b->next = p->free;
		p->free = b;
	}
	p->nfree = count;
	return 0;
}

static void cache_drain(struct evr_buf **head, uint32_t *n)
{
	while (*head) {
		struct evr_buf *b = *head;

		*head = b->next;
		free(b);
	}
	*n = 0;
}

void evr__pool_fini(struct evr__pool *p)
{
	cache_drain(&p->cache_small, &p->ncache_small);
	cache_drain(&p->cache_mid, &p->ncache_mid);
	if (p->mem)
		munmap(p->mem, p->mem_len);
	free(p->bufs);
	memset(p, 0, sizeof(*p));
}

struct evr_buf *evr__pool_get(struct evr__pool *p)
{
	struct evr_buf *b = p->free;

	if (!b || EVR__FAULT(EVR__F_POOL))
		return NULL;
	p->free = b->next;
	p->nfree--;
	b->next = NULL;
	b->refs = 1;
	b->data = b->base;
	b->len = 0;
	b->cap = p->size;
	return b;
}

void evr__pool_put(struct evr__pool *p, struct evr_buf *b)
{
	b->next = p->free;
	p->free = b;
}

struct evr_buf *evr__pool_take(struct evr__pool *p, uint32_t id)
{
	struct evr_buf *b;

	if (EVR_UNLIKELY(id >= p->count))
		return NULL;
	b = &p->bufs[id];
	p->nfree--;
	b->refs = 1;
	b->data = b->base;
	b->len = 0;
	b->cap = p->size;
	return b;
}

static struct evr_buf *heap_buf(struct evr_loop *l, uint16_t kind, size_t cap)
{
	struct evr_buf *b = evr__malloc(sizeof(*b) + cap);

	if (!b)
		return NULL;
	memset(b, 0, sizeof(*b));
	b->base = (char *)(b + 1);
	b->kind = kind;
	b->loop = l;
	b->cap = (uint32_t)cap;
	return b;
}

struct evr_buf *evr_buf_new(struct evr_loop *l, size_t cap)
{
	struct evr__pool *p = &l->pool;
	struct evr_buf *b;

	if (cap > UINT32_MAX)
		return NULL;
	if (cap <= EVR__BUF_SMALL_CAP) {
		b = p->cache_small;
		if (b) {
			p->cache_small = b->next;
			p->ncache_small--;
		} else {
			b = heap_buf(l, EVR__BUF_SMALL, EVR__BUF_SMALL_CAP);
		}
	} else if (cap <= p->size) {
		b = p->cache_mid;
		if (b) {
			p->cache_mid = b->next;
			p->ncache_mid--;
		} else {
			b = heap_buf(l, EVR__BUF_MID, p->size);
		}
	} else {
		b = heap_buf(l, EVR__BUF_BIG, cap);
	}
	if (!b)
		return NULL;
	b->next = NULL;
	b->refs = 1;
	b->data = b->base;
	b->len = 0;
	b->cap = b->kind == EVR__BUF_SMALL ? EVR__BUF_SMALL_CAP
		 : b->kind == EVR__BUF_MID ? p->size
					   : (uint32_t)cap;
	p->heap_live++;
	return b;
}

struct evr_buf *evr_buf_ref(struct evr_buf *b)
{
	b->refs++;
	return b;
}

static void cache_put(struct evr_buf **head, uint32_t *n, struct evr_buf *b)
{
	if (*n >= EVR__BUF_CACHE_MAX) {
		free(b);
		return;
	}
	b->next = *head;
	*head = b;
	(*n)++;
}

void evr_buf_unref(struct evr_buf *b)
{
	struct evr_loop *l = b->loop;
	struct evr__pool *p = &l->pool;

	if (--b->refs)
		return;
	switch (b->kind) {
	case EVR__BUF_POOL:
		evr__pool_of(l, b->pool)->nfree++;
		l->be_ops->buf_recycle(l, b);
		return;
	case EVR__BUF_SMALL:
		p->heap_live--;
		cache_put(&p->cache_small, &p->ncache_small, b);
		return;
	case EVR__BUF_MID:
		p->heap_live--;
		cache_put(&p->cache_mid, &p->ncache_mid, b);
		return;
	default:
		p->heap_live--;
		free(b);
		return;
	}
}
