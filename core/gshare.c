/* SPDX-License-Identifier: MIT */
/*
 * gshare.c - what the loops of a group share: the reuseport sockets of an
 * address and their steering program, and the counters of the limits that
 * must hold across loops. Nothing here is touched per byte or per event:
 * the registry at start-up only (under the group's mutex), the counters at
 * accept and close, and only when a limit is set.
 *
 * Reuseport. Every loop opens its own socket on a service's address with
 * SO_REUSEPORT; the kernel keeps them in one array, in the order they
 * joined, and lets a classic BPF program (SO_ATTACH_REUSEPORT_CBPF) choose
 * the index of the socket for each connection or datagram. Ours returns an
 * index below N, the loops of the group, which joined first: a socket of
 * another process of the same user (the kernel lets any such process join
 * a reuseport group) sits at index N or later and gets nothing. The
 * program picks:
 *   - TCP: a hash of the source address and port (the spread the kernel's
 *     own hash gives); with CPU steering, the loop pinned to the CPU that
 *     received the SYN (the NIC's queue), where there is one;
 *   - UDP: a hash of the source address alone (an IPv6 /64), so that all
 *     datagrams of a source reach one loop and its token bucket there is
 *     its only one.
 * The hashes are keyed with the group's random seed. Packets are read
 * relative to the network header (SKF_NET_OFF), which works wherever the
 * transport header begins.
 *
 * Limits. The global and per-service connection limits are atomic
 * counters of the group and of the address. Per source: a sketch of two
 * rows of atomic counters, each indexed by a keyed hash of the source: a
 * connection counts in both of its slots, and is refused when the smaller
 * count is over the limit. Every open connection of a source counts in
 * both of its slots, so the smaller count is never below the source's
 * own: a source never exceeds its limit, whichever loops its connections
 * land on. Sources that share both slots are refused early together: with
 * 2^16 slots a row, two given sources share both with odds of 1 in 2^32.
 */
#include "internal.h"

#include <linux/filter.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51 /* Linux 4.5 */
#endif

/* ---- reuseport sockets by address ---- */

struct evr__gport {
	struct evr__gport *next;
	int type; /* SOCK_STREAM or SOCK_DGRAM */
	struct sockaddr_storage addr;
	socklen_t len;
	unsigned nsocks;
	atomic_uint nconns; /* accepted by every loop, when limited */
};

/* The classic BPF program of a reuseport group: returns the index of the
 * socket (the loop) for a packet. */
#define PROG_MAX 4096 /* BPF_MAXINSNS */

struct prog {
	struct sock_filter f[PROG_MAX];
	unsigned n;
};

static void emit(struct prog *p, struct sock_filter ins)
{
	if (p->n < PROG_MAX)
		p->f[p->n++] = ins;
}

/* A (the words of the source, xor-ed) -> the loop index, keyed. */
static void emit_mix(struct prog *p, uint32_t seed, unsigned n)
{
	emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_XOR | BPF_K, seed));
	/* Fibonacci hashing: the high bits of the product mix all of A */
	emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MUL | BPF_K,
					     0x9e3779b1u));
	emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16));
	emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n));
	emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_A, 0));
}

/*
 * UDP: A = the IPv4 source address, or the two words of an IPv6 source's
 * /64 xor-ed; then mixed.
 */
static void prog_udp(struct prog *p, uint32_t seed, unsigned n)
{
	emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_ABS,
					     SKF_NET_OFF + 0));
	emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf0));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x60, 2,
					     0));
	/* IPv4: saddr at 12 */
	emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					     SKF_NET_OFF + 12));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JA, 3, 0, 0));
	/* IPv6: saddr at 8, its /64 the two words at 8 and 12 */
	emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					     SKF_NET_OFF + 8));
	emit(p, (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TAX, 0));
	emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					     SKF_NET_OFF + 12));
	/* (IPv4 jumps here with X = 0: the kernel clears A and X first) */
	emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0));
	emit_mix(p, seed, n);
}

/*
 * TCP: with CPU steering, first the loop pinned to the CPU that received
 * the SYN; else A = the source address (IPv4; the last word of IPv6's)
 * xor the source port; then mixed.
 */
static void prog_tcp(struct prog *p, uint32_t seed, unsigned n,
		     const int *cpu_of_loop)
{
	if (cpu_of_loop) {
		emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
						     SKF_AD_OFF + SKF_AD_CPU));
		for (unsigned i = 0; i < n; i++) {
			emit(p, (struct sock_filter)BPF_JUMP(
				    BPF_JMP | BPF_JEQ | BPF_K,
				    (uint32_t)cpu_of_loop[i], 0, 1));
			emit(p,
			     (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, i));
		}
	}
	emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_ABS,
					     SKF_NET_OFF + 0));
	emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf0));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x60, 9,
					     0));
	/* IPv4: X = the header's length, the source port right after it */
	emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_ABS,
					     SKF_NET_OFF + 0));
	emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x0f));
	emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_LSH | BPF_K, 2));
	emit(p, (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TAX, 0));
	emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_IND,
					     SKF_NET_OFF));
	emit(p, (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TAX, 0));
	emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					     SKF_NET_OFF + 12));
	emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0));
	emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JA, 4, 0, 0));
	/* IPv6 (no extension headers before TCP: SYNs carry none) */
	emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_ABS,
					     SKF_NET_OFF + 40));
	emit(p, (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TAX, 0));
	emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					     SKF_NET_OFF + 20));
	emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0));
	emit_mix(p, seed, n);
}

/* The loop pinned to each CPU, when every loop has a CPU of its own. */
static const int *cpu_steering(const struct evr_group *g)
{
	if (!g->o.steer_cpu || !g->cpus || g->o.ncpus < g->n)
		return NULL;
	for (unsigned i = 0; i < g->n; i++)
		for (unsigned j = 0; j < i; j++)
			if (g->cpus[i] == g->cpus[j])
				return NULL;
	return g->cpus;
}

static int attach_prog(struct evr_group *g, int fd, int type)
{
	struct prog *p = calloc(1, sizeof(*p));
	struct sock_fprog fp;
	int err = 0;

	if (!p)
		return -ENOMEM;
	if (type == SOCK_DGRAM)
		prog_udp(p, (uint32_t)g->seed, g->n);
	else
		prog_tcp(p, (uint32_t)g->seed, g->n, cpu_steering(g));
	fp.len = (unsigned short)p->n;
	fp.filter = p->f;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fp,
		       sizeof(fp)) < 0)
		err = -errno;
	free(p);
	return err;
}

/* The same address and port (whatever length a caller gave). */
static bool same_addr(const struct sockaddr_storage *a,
		      const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a,
					 *y = (const void *)b;

		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (b->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a;
		const struct sockaddr_in6 *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr,
			       sizeof(x->sin6_addr)) &&
		       x->sin6_scope_id == y->sin6_scope_id;
	}
	return false;
}

int evr__gport_join(struct evr_loop *l, int fd, int type, bool steer,
		    struct evr__gport **out)
{
	struct evr_group *g = l->group;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct evr__gport *gp;
	int err = 0;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	pthread_mutex_lock(&g->mu);
	for (gp = g->ports; gp; gp = gp->next)
		if (gp->type == type && same_addr(&gp->addr, (void *)&ss))
			break;
	if (!gp) {
		gp = calloc(1, sizeof(*gp));
		if (!gp) {
			err = -ENOMEM;
			goto out;
		}
		gp->type = type;
		gp->addr = ss;
		gp->len = len;
		atomic_init(&gp->nconns, 0);
		/* the first socket: the group's program, before any
		 * other socket can join */
		err = steer ? attach_prog(g, fd, type) : 0;
		if (err < 0) {
			free(gp);
			goto out;
		}
		gp->next = g->ports;
		g->ports = gp;
	}
	gp->nsocks++;
	*out = gp;
out:
	pthread_mutex_unlock(&g->mu);
	return err;
}

/*
 * SO_REUSEPORT lets any socket of the same user bind a port in use: a
 * second evringd would start and get nothing. So the first socket of a
 * group on a given port makes sure first that no one holds it, with an
 * exclusive bind it gives back at once. (Port 0: the kernel picks a free
 * one.)
 */
int evr__gport_probe(struct evr_loop *l, int type, const struct sockaddr *sa,
		     socklen_t len, bool v6only)
{
	struct evr_group *g = l->group;
	const struct evr__gport *gp;
	int fd, one = 1, err = 0;
	bool known = false;

	if ((sa->sa_family == AF_INET &&
	     !((const struct sockaddr_in *)sa)->sin_port) ||
	    (sa->sa_family == AF_INET6 &&
	     !((const struct sockaddr_in6 *)sa)->sin6_port))
		return 0;
	pthread_mutex_lock(&g->mu);
	for (gp = g->ports; gp && !known; gp = gp->next)
		known = gp->type == type && same_addr(&gp->addr, sa);
	pthread_mutex_unlock(&g->mu);
	if (known)
		return 0;
	fd = socket(sa->sa_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* as the real socket will be, but for SO_REUSEPORT (TIME_WAIT is
	 * no one's) */
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa->sa_family == AF_INET6 && v6only)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, sa, len) < 0)
		err = -errno;
	close(fd);
	return err;
}

atomic_uint *evr__gport_conns(struct evr__gport *gp)
{
	return &gp->nconns;
}

/* ---- per-source counts: a sketch ---- */

#define SKETCH_ROWS	 2
#define SKETCH_SLOTS	 (1u << 16)
#define SKETCH_SLOTS_MAX (1u << 20)

struct evr__gsketch {
	uint32_t mask;
	uint64_t seed[SKETCH_ROWS];
	atomic_uint *row[SKETCH_ROWS];
};

int evr__group_share_init(struct evr_group *g)
{
	const struct evr_loop_opts *o = &g->o.loop;
	struct evr__gsketch *k;
	uint32_t slots = SKETCH_SLOTS;

	if (!o->max_conns_per_source)
		return 0;
	/* a few slots per connection the server may hold */
	while (o->max_conns && slots < SKETCH_SLOTS_MAX &&
	       slots / 4 < o->max_conns)
		slots <<= 1;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->mask = slots - 1;
	for (int r = 0; r < SKETCH_ROWS; r++) {
		k->seed[r] = evr__random_seed(&k->seed[r]);
		k->row[r] = calloc(slots, sizeof(atomic_uint));
		if (!k->row[r]) {
			g->sources = k;
			evr__group_share_fini(g);
			return -ENOMEM;
		}
	}
	g->sources = k;
	return 0;
}

void evr__gsource_slots(const struct evr_group *g,
			const uint8_t key[EVR__SRCKEY_LEN], uint32_t slot[2])
{
	const struct evr__gsketch *k = g->sources;

	for (int r = 0; r < SKETCH_ROWS; r++)
		slot[r] = evr__source_hash(k->seed[r], key) & k->mask;
}

bool evr__gsource_take(struct evr_group *g, const uint32_t slot[2],
		       uint32_t limit)
{
	struct evr__gsketch *k = g->sources;
	uint32_t a, b;

	a = atomic_fetch_add_explicit(&k->row[0][slot[0]], 1,
				      memory_order_relaxed) +
	    1;
	b = atomic_fetch_add_explicit(&k->row[1][slot[1]], 1,
				      memory_order_relaxed) +
	    1;
	if ((a < b ? a : b) <= limit)
		return true;
	evr__gsource_put(g, slot);
	return false;
}

void evr__gsource_put(struct evr_group *g, const uint32_t slot[2])
{
	struct evr__gsketch *k = g->sources;

	for (int r = 0; r < SKETCH_ROWS; r++)
		atomic_fetch_sub_explicit(&k->row[r][slot[r]], 1,
					  memory_order_relaxed);
}

void evr__group_share_fini(struct evr_group *g)
{
	struct evr__gsketch *k = g->sources;

	while (g->ports) {
		struct evr__gport *gp = g->ports;

		g->ports = gp->next;
		free(gp);
	}
	if (k) {
		for (int r = 0; r < SKETCH_ROWS; r++)
			free(k->row[r]);
		free(k);
		g->sources = NULL;
	}
}
