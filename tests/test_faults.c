/* SPDX-License-Identifier: MIT */
/*
 * test_faults.c - injected faults, on both backends, through the fault
 * table of core/fault.c: an in-process echo server whose accepts, receives,
 * sends, receive pool and allocations fail on purpose while clients echo
 * data of many sizes through it.
 *
 * Faults a server must absorb (EINTR, short reads and writes, an empty
 * pool, transient accept errors, EMFILE) must lose no byte: every client
 * gets back exactly what it sent. Faults that end connections (ECONNRESET,
 * EPIPE, ENOMEM on a receive) may end them, but must leak nothing: the
 * server returns to its baseline and serves new clients once the faults
 * stop. Allocation failure refuses new connections and keeps the old ones.
 * ASan (make check) watches every case for leaks and bad accesses.
 */
#include "harness.h"
#include "loopsrv.h"

#include "../core/internal.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { CLIENTS = 8, ROUNDS = 4 };

struct client {
	uint16_t port;
	int id;
	int ok, failed;
};

static void *client_main(void *arg)
{
	static const size_t sizes[] = { 1, 100, 5000, 70000, 300000 };
	struct client *x = arg;

	for (int r = 0; r < ROUNDS; r++) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t n = sizes[i];
			char *out = malloc(n), *in = malloc(n);
			int fd = tcp_connect(AF_INET, x->port);

			fill_pattern(out, n,
				     (uint32_t)(x->id * 100 + r * 10 + i));
			if (fd >= 0 &&
			    xfer(fd, out, n, in, n, true, 20000) == 0 &&
			    !memcmp(in, out, n) && read_to_eof(fd, in, 1) == 0)
				x->ok++;
			else
				x->failed++;
			if (fd >= 0)
				close(fd);
			free(out);
			free(in);
		}
	}
	return NULL;
}

/* Run the clients; returns how many exchanges failed. */
static int run_clients(uint16_t port, int *ok)
{
	pthread_t th[CLIENTS];
	struct client x[CLIENTS];
	int failed = 0;

	*ok = 0;
	for (int i = 0; i < CLIENTS; i++) {
		x[i] = (struct client){ .port = port, .id = i };
		pthread_create(&th[i], NULL, client_main, &x[i]);
	}
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(th[i], NULL);
		failed += x[i].failed;
		*ok += x[i].ok;
	}
	return failed;
}

static void start(struct server *s, const char *backend, uint32_t buf_count)
{
	memset(s, 0, sizeof(*s));
	evr_loop_opts_init(&s->o);
	s->o.buf_count = buf_count;
	server_start(s, backend);
}

/* A fault that must cost nothing: every exchange succeeds. */
static void lossless(const char *backend, enum evr__fault_point p,
		     uint32_t every, int err, uint32_t buf_count)
{
	struct server s;
	int ok;

	evr__fault_set(p, every, 5, err);
	start(&s, backend, buf_count);
	int failed = run_clients(s.port, &ok);
	cr_assert_eq(failed, 0, "%d exchanges failed, %d succeeded (hits %llu)",
		     failed, ok, (unsigned long long)evr__faults[p].hits);
	cr_assert_gt(evr__faults[p].hits, 0, "the fault never fired");
	server_wait_idle(&s);
	server_stop(&s);
}

BACKEND_TEST(faults, eintr_on_receives_and_sends_loses_nothing)
{
	evr__fault_set(EVR__F_SEND, 3, 0, -EINTR);
	lossless(backend, EVR__F_RECV, 2, -EINTR, 0);
	if (!strcmp(backend, "epoll"))
		cr_assert_gt(evr__faults[EVR__F_SEND].hits, 0);
}

BACKEND_TEST(faults, short_reads_lose_nothing)
{
	lossless(backend, EVR__F_RECV_SHORT, 1, 0, 0);
}

BACKEND_TEST(faults, short_writes_lose_nothing)
{
	lossless(backend, EVR__F_SEND_SHORT, 1, 0, 0);
}

BACKEND_TEST(faults, empty_pool_enobufs_loses_nothing)
{
	lossless(backend, EVR__F_POOL, 2, 0, 8);
}

BACKEND_TEST(faults, transient_accept_errors_are_survived)
{
	struct server s;
	int ok;

	/* epoll: the accept is not made and is retried; io_uring: the
	 * accepted socket is closed, as a failed accept would leave it, so
	 * a client may see a reset: it must be the only harm */
	evr__fault_set(EVR__F_ACCEPT, 3, 0, -ECONNABORTED);
	start(&s, backend, 0);
	int failed = run_clients(s.port, &ok);
	cr_assert_gt(ok, 0);
	if (!strcmp(backend, "epoll"))
		cr_assert_eq(failed, 0);
	cr_assert_gt(evr__faults[EVR__F_ACCEPT].hits, 0);
	server_wait_idle(&s);
	evr__fault_clear();
	cr_assert_eq(run_clients(s.port, &ok), 0);
	server_wait_idle(&s);
	server_stop(&s);
}

BACKEND_TEST(faults, emfile_and_enomem_on_accept_pause_and_recover)
{
	struct server s;
	struct evr_stats st;
	int ok;

	evr__fault_set(EVR__F_ACCEPT, 4, 0, -EMFILE);
	start(&s, backend, 0);
	run_clients(s.port, &ok);
	st = server_stats(&s);
	cr_assert_gt(st.accept_pauses, 0);
	evr__fault_set(EVR__F_ACCEPT, 4, 0, -ENOMEM);
	run_clients(s.port, &ok);
	evr__fault_clear();
	cr_assert_eq(run_clients(s.port, &ok), 0, "no recovery");
	server_wait_idle(&s);
	server_stop(&s);
}

/* A fault that ends connections: nothing may leak, and once it stops
 * the server serves as before. */
static void fatal(const char *backend, enum evr__fault_point p, int err)
{
	struct server s;
	int ok;

	evr__fault_set(p, 7, 3, err);
	start(&s, backend, 0);
	int failed = run_clients(s.port, &ok);
	cr_assert_gt(evr__faults[p].hits, 0, "the fault never fired");
	(void)failed; /* under io_uring the bytes may be out already */
	server_wait_idle(&s);
	evr__fault_clear();
	cr_assert_eq(run_clients(s.port, &ok), 0);
	server_wait_idle(&s);
	server_stop(&s);
}

BACKEND_TEST(faults, econnreset_on_receive_leaks_nothing)
{
	fatal(backend, EVR__F_RECV, -ECONNRESET);
}

BACKEND_TEST(faults, enomem_on_receive_leaks_nothing)
{
	fatal(backend, EVR__F_RECV, -ENOMEM);
}

BACKEND_TEST(faults, epipe_on_send_leaks_nothing)
{
	fatal(backend, EVR__F_SEND, -EPIPE);
}

BACKEND_TEST(faults, econnreset_on_send_leaks_nothing)
{
	fatal(backend, EVR__F_SEND, -ECONNRESET);
}

BACKEND_TEST(faults, allocation_failure_refuses_new_connections_only)
{
	char out[1000], in[1000];
	struct evr_stats st;
	struct server s;
	int old, fresh, ok;

	start(&s, backend, 0);
	old = tcp_connect(AF_INET, s.port);
	cr_assert_geq(old, 0);
	fill_pattern(out, sizeof(out), 1);
	cr_assert_eq(xfer(old, out, sizeof(out), in, sizeof(in), false, 5000),
		     0);
	/* from now on every allocation fails */
	evr__fault_set(EVR__F_ALLOC, 1, 0, 0);
	for (int i = 0; i < 5; i++) {
		fresh = tcp_connect(AF_INET, s.port);
		cr_assert_geq(fresh, 0);
		cr_assert(wait_closed(fresh, 5000), "a connection was served "
						    "without memory");
		close(fresh);
		/* the old connection is served all along */
		cr_assert_eq(
		    xfer(old, out, sizeof(out), in, sizeof(in), false, 5000), 0,
		    "an existing connection stopped");
		cr_assert_eq(memcmp(in, out, sizeof(in)), 0);
	}
	/* (the counters are a snapshot the loop refreshes every 2 ms) */
	for (int64_t end = now_ms() + 5000;
	     (st = server_stats(&s)).alloc_fails < 5 && now_ms() < end;)
		usleep(10000);
	cr_assert_geq(st.alloc_fails, 5);
	evr__fault_clear();
	close(old);
	/* accepts are refused without trying for 100 ms after a failure */
	usleep(200 * 1000);
	cr_assert_eq(run_clients(s.port, &ok), 0);
	server_wait_idle(&s);
	server_stop(&s);
}

/*
 * Out of memory, a flood of new clients must not keep the loop asking the
 * allocator for each of them (a failing allocator can be slow: mimalloc
 * tries to map a new arena every time, and a loop doing that for every
 * client of a flood stalled its open connections for seconds). After a
 * failure, accepts are refused without an allocation for 100 ms.
 */
BACKEND_TEST(faults, a_flood_out_of_memory_asks_the_allocator_rarely)
{
	enum { N = 400 };
	char out[100], in[100];
	struct server s;
	int old;

	start(&s, backend, 0);
	old = tcp_connect(AF_INET, s.port);
	cr_assert_geq(old, 0);
	fill_pattern(out, sizeof(out), 3);
	/* accepted and served before the memory runs out */
	cr_assert_eq(xfer(old, out, sizeof(out), in, sizeof(in), false, 5000),
		     0);
	evr__fault_set(EVR__F_ALLOC, 1, 0, 0);
	int64_t t0 = now_ms();

	for (int i = 0; i < N; i++) {
		int fd = tcp_connect(AF_INET, s.port);

		cr_assert_geq(fd, 0);
		cr_assert(wait_closed(fd, 5000), "served without memory");
		close(fd);
	}
	int64_t ms = now_ms() - t0;
	uint64_t calls = evr__faults[EVR__F_ALLOC].calls;

	/* the open connection is served all along */
	cr_assert_eq(xfer(old, out, sizeof(out), in, sizeof(in), false, 5000),
		     0);
	evr__fault_clear();
	cr_assert_geq(server_stats(&s).alloc_fails, N);
	/* once per 100 ms at most, not once per client */
	cr_assert_leq(calls, (uint64_t)(ms / 100 + 2),
		      "%llu allocations tried for %d clients in %lld ms",
		      (unsigned long long)calls, N, (long long)ms);
	close(old);
	server_wait_idle(&s);
	server_stop(&s);
}
