/* SPDX-License-Identifier: MIT */
/*
 * test_loop.c - a loop in the test process, with options evringd does not
 * take every day: a receive pool of 4 buffers (the ENOBUFS / empty-pool
 * path) and a completion queue of 4 entries (CQ overflow). Both must lose
 * no byte and no completion, on both backends.
 */
#include "harness.h"
#include "loopsrv.h"

#include "evring.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <liburing.h>

struct sender {
	uint16_t port;
	uint32_t seed;
	size_t len;
	int ok;
};

static void *sender_main(void *arg)
{
	struct sender *x = arg;
	char *out = malloc(x->len), *in = malloc(x->len);
	int fd = tcp_connect(AF_INET, x->port);

	fill_pattern(out, x->len, x->seed);
	x->ok = fd >= 0 &&
		xfer(fd, out, x->len, in, x->len, true, 60000) == 0 &&
		memcmp(in, out, x->len) == 0 && read_to_eof(fd, in, 1) == 0;
	if (fd >= 0)
		close(fd);
	free(out);
	free(in);
	return NULL;
}

static void run_senders(uint16_t port, int n, size_t len)
{
	pthread_t th[64];
	struct sender x[64];

	cr_assert_leq(n, 64);
	for (int i = 0; i < n; i++) {
		x[i] = (struct sender){ .port = port,
					.seed = (uint32_t)i + 1,
					.len = len };
		pthread_create(&th[i], NULL, sender_main, &x[i]);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		cr_assert(x[i].ok, "sender %d lost or changed bytes", i);
	}
}

/* An echo loop whose receive pool is count buffers of 1 KiB. */
static void start_with_pool(struct server *s, const char *backend,
			    uint32_t count)
{
	evr_loop_opts_init(&s->o);
	s->o.buf_count = count;
	s->o.buf_size = 1024;
	server_start(s, backend);
}

BACKEND_TEST(loop, pool_of_4_buffers_64_senders_lose_no_byte)
{
	struct server s = { 0 };
	struct evr_stats st;

	start_with_pool(&s, backend, 4);
	run_senders(s.port, 64, 200 * 1024);
	st = server_stats(&s);
	cr_assert_eq(st.bufs_total, 4);
	cr_assert_gt(st.recv_nobufs, 0, "the empty-pool path never ran");
	server_wait_idle(&s);
	server_stop(&s);
}

/* The io_uring ring holds a window of the pool (64 buffers at first): 64
 * senders at once take far more buffers between two polls than that, so
 * the window must grow without losing a byte, give every buffer back, and
 * do it again in a second burst after a quiet spell. */
BACKEND_TEST(loop, burst_beyond_the_ring_window_loses_no_byte)
{
	struct server s = { 0 };
	struct evr_stats st;

	start_with_pool(&s, backend, 2048);
	for (int burst = 0; burst < 2; burst++) {
		run_senders(s.port, 64, 256 * 1024);
		server_wait_idle(&s);
	}
	st = server_stats(&s);
	cr_assert_eq(st.bufs_total, 2048);
	cr_assert_eq(st.bytes_in, 2ULL * 64 * 256 * 1024);
	cr_assert_eq(st.bytes_out, st.bytes_in);
	server_stop(&s);
}

/* Where the kernel has receive bundles (6.10) one receive fills several
 * pool buffers, the ring's next ones in order: 256 KiB written at once
 * into 1 KiB buffers must come back whole and in order, every buffer back
 * in the pool, and the loop counts bundles. With the feature off (or on
 * epoll) there are none, and the bytes are the same. */
/* Does the kernel say it has receive bundles (IORING_FEAT_RECVSEND_BUNDLE)
 * on a version without the 6.13.11-6.14.8 ordering bug? Then an io_uring
 * loop must use them. */
static bool kernel_offers_bundles(void)
{
	struct io_uring_params p = { 0 };
	struct io_uring r;
	struct utsname u;
	unsigned major, minor, patch = 0;
	bool has;

	if (io_uring_queue_init_params(2, &r, &p) < 0)
		return false;
	has = p.features & (1U << 14);
	io_uring_queue_exit(&r);
	if (uname(&u) < 0 ||
	    sscanf(u.release, "%u.%u.%u", &major, &minor, &patch) < 2)
		return false;
	return has && !(major == 6 && ((minor == 13 && patch >= 11) ||
				       (minor == 14 && patch < 9)));
}

static void bundles_run(const char *backend, const char *disable)
{
	struct server s = { 0 };
	struct evr_stats st;
	bool on;

	evr_loop_opts_init(&s.o);
	s.o.buf_count = 1024;
	s.o.buf_size = 1024;
	s.o.disable = disable;
	server_start(&s, backend);
	on = strstr(evr_loop_features(s.l), " recv_bundle") != NULL;
	if (strcmp(backend, "epoll") == 0 || disable)
		cr_assert(!on, "%s", evr_loop_features(s.l));
	else if (kernel_offers_bundles())
		cr_assert(on,
			  "the kernel offers receive bundles, the loop "
			  "does not use them: %s",
			  evr_loop_features(s.l));
	run_senders(s.port, 8, 256 * 1024);
	server_wait_idle(&s);
	st = server_stats(&s);
	cr_assert_eq(st.bytes_in, 8ULL * 256 * 1024);
	if (on)
		cr_assert_gt(st.recv_bundles, 0,
			     "no receive filled two buffers");
	else
		cr_assert_eq(st.recv_bundles, 0);
	server_stop(&s);
}

BACKEND_TEST(loop, receive_bundles_deliver_every_buffer_in_order)
{
	bundles_run(backend, NULL);
}

BACKEND_TEST(loop, receive_bundles_off_deliver_the_same)
{
	bundles_run(backend, "recv_bundle");
}

BACKEND_TEST(loop, completion_queue_of_4_loses_no_completion)
{
	struct server s = { 0 };
	struct evr_stats st;

	evr_loop_opts_init(&s.o);
	s.o.sq_entries = 4;
	s.o.cq_entries = 4;
	s.o.buf_size = 512; /* many completions per connection */
	server_start(&s, backend);
	run_senders(s.port, 64, 64 * 1024);
	st = server_stats(&s);
	cr_assert_geq(st.conns_accepted, 64);
	server_wait_idle(&s);
	server_stop(&s);
}

BACKEND_TEST(loop, stop_with_open_connections_frees_everything)
{
	struct server s = { 0 };
	int fds[16];

	evr_loop_opts_init(&s.o);
	server_start(&s, backend);
	for (int i = 0; i < 16; i++) {
		fds[i] = tcp_connect(AF_INET, s.port);
		cr_assert_geq(fds[i], 0);
		write_all(fds[i], "abc", 3);
	}
	while (server_stats(&s).conns_open < 16)
		;
	/* evr_loop_stop() aborts them; the loop returns once the kernel
	 * let go of every connection (ASan checks the frees). */
	server_stop(&s);
	for (int i = 0; i < 16; i++) {
		char buf[8];

		read_to_eof(fds[i], buf, sizeof(buf));
		close(fds[i]);
	}
}

/*
 * A client that speaks first to a server that answers and closes (daytime)
 * must still get the whole answer and an orderly EOF: with its bytes unread
 * in the server's socket a plain close(2) would send a reset, which can
 * destroy the answer. The loop is held until the client's bytes are there,
 * so the server closes with input pending: a lingering close.
 */
BACKEND_TEST(loop, close_with_unread_input_lingers)
{
	struct server s = { .proto = &evr_proto_daytime };
	char buf[256];
	size_t n = 0;
	ssize_t r;
	int fd;

	evr_loop_opts_init(&s.o);
	atomic_store(&s.hold, true);
	server_start(&s, backend);
	fd = tcp_connect(AF_INET, s.port);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write_all(fd, "hello, server\r\n", 15), 0);
	usleep(50 * 1000);
	atomic_store(&s.hold, false);
	while ((r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0)) > 0)
		n += (size_t)r;
	cr_assert_eq(r, 0, "the line ended in a reset, not an EOF");
	buf[n] = '\0';
	cr_assert(n > 20 && strstr(buf, "-UTC\r\n"), "got \"%s\"", buf);
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

/*
 * A reply whose send fails (the client reset the connection before the
 * server got to it): every connection closes with an error, and the
 * process has the descriptors it had.
 */
BACKEND_TEST(loop, a_reply_to_a_reset_client_leaks_nothing)
{
	enum { N = 8 };
	struct server s = { .proto = &evr_proto_daytime };
	struct linger lin = { .l_onoff = 1, .l_linger = 0 };
	struct evr_stats st;
	int fds, fd;

	evr_loop_opts_init(&s.o);
	atomic_store(&s.hold, true);
	server_start(&s, backend);
	fds = fd_count(getpid());
	for (int i = 0; i < N; i++) {
		fd = tcp_connect(AF_INET, s.port);
		cr_assert_geq(fd, 0);
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
		close(fd); /* a reset, before the server accepted */
	}
	usleep(50 * 1000);
	atomic_store(&s.hold, false);
	for (int64_t end = now_ms() + 5000; now_ms() < end; usleep(10000)) {
		st = server_stats(&s);
		if (st.conns_accepted == N && !st.conns_open)
			break;
	}
	cr_assert_eq(st.conns_accepted, N);
	cr_assert_eq(st.closes_error, N, "%llu of %d sends failed",
		     (unsigned long long)st.closes_error, N);
	server_wait_idle(&s);
	for (int64_t end = now_ms() + 2000;
	     fd_count(getpid()) != fds && now_ms() < end;)
		usleep(10000);
	cr_assert_eq(fd_count(getpid()), fds, "descriptors leaked");
	server_stop(&s);
}

/* A reply of 16 KiB into a socket of a small send buffer, for a client
 * that does not read. */
static int stall_accept(struct evr_conn *c)
{
	static char big[16384];
	int sz = 4096;

	setsockopt(evr_conn_fd(c), SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	memset(big, 'x', sizeof(big));
	evr_send_copy(c, big, sizeof(big));
	evr_close(c);
	return 0;
}

static const struct evr_proto stall = { .name = "stall",
					.on_accept = stall_accept };

/*
 * The last reply of a closing connection stalls: the peer does not read.
 * The send timeout aborts it: the send is cancelled, and the connection
 * ends with a reset (bytes were thrown away), as for any abort. Nothing
 * leaks.
 */
BACKEND_TEST(loop, a_stalled_last_reply_is_aborted_by_the_send_timeout)
{
	struct server s = { .proto = &stall };
	struct sockaddr_storage ss;
	struct evr_stats st;
	char buf[4096];
	size_t got = 0;
	int fd, sz = 1024, err = 0;
	ssize_t r;

	evr_loop_opts_init(&s.o);
	s.lim.send_timeout_ms = 300;
	server_start(&s, backend);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	cr_assert_eq(connect(fd, (struct sockaddr *)&ss,
			     loopback_addr(AF_INET, s.port, &ss)),
		     0);
	for (int64_t end = now_ms() + 5000; now_ms() < end; usleep(10000)) {
		st = server_stats(&s);
		if (st.send_timeouts)
			break;
	}
	cr_assert_eq(st.send_timeouts, 1, "the reply was not stuck");
	while ((r = recv(fd, buf, sizeof(buf), 0)) > 0)
		got += (size_t)r;
	err = r < 0 ? errno : 0;
	cr_assert_eq(err, ECONNRESET, "%zu bytes, then %s", got, strerror(err));
	cr_assert_lt(got, 16384);
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

/* A module that sends what any connection says to every connection (a
 * chat room): a peer that never reads gets bytes it did not ask for, which
 * backpressure on its own reading cannot stop; wq_max must. */
static struct evr_conn *room[16];

static int fanout_accept(struct evr_conn *c)
{
	for (int i = 0; i < 16; i++)
		if (!room[i]) {
			room[i] = c;
			return 0;
		}
	return -EMFILE;
}

static void fanout_data(struct evr_conn *c, struct evr_buf *b)
{
	(void)c;
	for (int i = 0; i < 16; i++)
		if (room[i])
			evr_send(room[i], b);
}

static void fanout_close(struct evr_conn *c, int err)
{
	(void)err;
	for (int i = 0; i < 16; i++)
		if (room[i] == c)
			room[i] = NULL;
}

static const struct evr_proto fanout = { .name = "fanout",
					 .on_accept = fanout_accept,
					 .on_data = fanout_data,
					 .on_close = fanout_close };

BACKEND_TEST(loop, write_queue_over_wq_max_aborts_only_the_slow_peer)
{
	struct server s = { .proto = &fanout };
	char out[1024], in[1024];
	struct evr_stats st;
	int slow, fast;

	evr_loop_opts_init(&s.o);
	s.lim.wq_high = 256 * 1024;
	s.lim.wq_max = 1024 * 1024;
	server_start(&s, backend);
	slow = tcp_connect(AF_INET, s.port);
	fast = tcp_connect(AF_INET, s.port);
	cr_assert(slow >= 0 && fast >= 0);
	/* 8 MiB through the room; the slow peer never reads */
	for (int i = 0; i < 8192; i++) {
		fill_pattern(out, sizeof(out), (uint32_t)i);
		cr_assert_eq(
		    xfer(fast, out, sizeof(out), in, sizeof(in), false, 5000),
		    0, "the fast peer stalled at message %d", i);
		cr_assert_eq(memcmp(in, out, sizeof(in)), 0);
	}
	cr_assert(wait_closed(slow, 5000), "the slow peer was not closed");
	st = server_stats(&s);
	cr_assert_eq(st.wq_overflows, 1);
	close(slow);
	close(fast);
	server_wait_idle(&s);
	server_stop(&s);
}

struct pusher {
	uint16_t port;
	int fd;
	size_t pushed;
};

BACKEND_TEST(loop, global_budget_bounds_all_queues_and_loses_nothing)
{
	enum { N = 8 };
	struct server s = { 0 };
	struct pusher p[N];
	static char chunk[16384], in[1 << 16];
	uint64_t peak = 0;

	evr_loop_opts_init(&s.o);
	s.o.queued_max = 1 << 20;
	s.lim.wq_high = 8 << 20; /* per connection: never reached */
	s.lim.wq_max = 16 << 20;
	server_start(&s, backend);
	for (int i = 0; i < N; i++) {
		p[i].fd = tcp_connect(AF_INET, s.port);
		cr_assert_geq(p[i].fd, 0);
		fcntl(p[i].fd, F_SETFL, O_NONBLOCK);
		p[i].pushed = 0;
	}
	/* Everyone pushes, nobody reads, until nothing moves for 500 ms. */
	for (int64_t last = now_ms(); now_ms() - last < 500;) {
		for (int i = 0; i < N; i++) {
			ssize_t w =
			    send(p[i].fd, chunk, sizeof(chunk), MSG_NOSIGNAL);

			if (w > 0) {
				p[i].pushed += (size_t)w;
				last = now_ms();
			}
		}
		struct evr_stats st = server_stats(&s);
		if (st.bytes_queued > peak)
			peak = st.bytes_queued;
	}
	/* Over the budget by no more than what was on its way from the
	 * kernel when each connection paused (under io_uring, what one
	 * multishot receive delivers before its cancellation lands). */
	size_t pushed = 0;
	for (int i = 0; i < N; i++)
		pushed += p[i].pushed;
	cr_assert_leq(peak, (1u << 20) + N * (1u << 20),
		      "peak %llu of %zu pushed", (unsigned long long)peak,
		      pushed);
	cr_assert_gt(server_stats(&s).read_pauses, 0);
	/* Now everyone reads: every byte comes back. */
	for (int i = 0; i < N; i++) {
		size_t got = 0;

		fcntl(p[i].fd, F_SETFL, 0);
		shutdown(p[i].fd, SHUT_WR);
		for (ssize_t r; (r = recv(p[i].fd, in, sizeof(in), 0)) > 0;)
			got += (size_t)r;
		struct evr_stats st = server_stats(&s);
		cr_assert_eq(
		    got, p[i].pushed,
		    "client %d: %zu of %zu (queued %llu, free bufs %u, "
		    "nobufs %llu)",
		    i, got, p[i].pushed, (unsigned long long)st.bytes_queued,
		    st.bufs_free, (unsigned long long)st.recv_nobufs);
		close(p[i].fd);
	}
	server_wait_idle(&s);
	server_stop(&s);
}

/* ---- outbound connections: a client module in the same loop ---- */

struct client_state {
	size_t got;
	bool connected;
};

static struct {
	int connected, closed, refused, verified;
	char msg[3000];
} cl;

static void client_connect(struct evr_conn *c)
{
	struct client_state *st = evr_conn_state(c);

	st->connected = true;
	cl.connected++;
	evr_send_copy(c, cl.msg, sizeof(cl.msg));
}

static void client_data(struct evr_conn *c, struct evr_buf *b)
{
	struct client_state *st = evr_conn_state(c);

	if (st->got + b->len > sizeof(cl.msg) ||
	    memcmp(cl.msg + st->got, b->data, b->len)) {
		evr_abort(c, -EPROTO);
		return;
	}
	st->got += b->len;
	if (st->got == sizeof(cl.msg)) {
		cl.verified++;
		evr_close(c);
	}
}

static void client_close(struct evr_conn *c, int err)
{
	struct client_state *st = evr_conn_state(c);

	cl.closed++;
	if (err == -ECONNREFUSED && !st->connected)
		cl.refused++;
	if (cl.closed == 101)
		evr_loop_stop(evr_conn_loop(c));
}

static const struct evr_proto client_proto = {
	.name = "client",
	.state_size = sizeof(struct client_state),
	.on_connect = client_connect,
	.on_data = client_data,
	.on_close = client_close,
};

BACKEND_TEST(loop, outbound_connections_echo_and_refusal)
{
	struct evr_listen_cfg scfg = { .proto = &evr_proto_echo };
	struct evr_listen_cfg ccfg = { .proto = &client_proto };
	struct sockaddr_storage ss, dead;
	struct evr_connector *cn;
	struct evr_listener *ls;
	struct evr_loop *l;
	struct evr_conn *c;
	struct evr_stats st;
	socklen_t len, dlen;
	int fd;

	memset(&cl, 0, sizeof(cl));
	fill_pattern(cl.msg, sizeof(cl.msg), 9);
	struct evr_loop_opts o;
	evr_loop_opts_init(&o);
	o.backend = backend;
	cr_assert_eq(evr_loop_new(&l, &o), 0);
	evr_addr_parse("127.0.0.1", 0, &ss, &len);
	cr_assert_eq(evr_listen(l, (struct sockaddr *)&ss, len, &scfg, &ls), 0);
	evr_listener_addr(ls, &ss, &len);
	cr_assert_eq(evr_connector_new(l, &ccfg, &cn), 0);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(
		    evr_connect(cn, (struct sockaddr *)&ss, len, NULL, 0, &c),
		    0);
	/* a port nobody listens on */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	evr_addr_parse("127.0.0.1", 0, &dead, &dlen);
	bind(fd, (struct sockaddr *)&dead, dlen);
	getsockname(fd, (struct sockaddr *)&dead, &dlen);
	close(fd);
	cr_assert_eq(
	    evr_connect(cn, (struct sockaddr *)&dead, dlen, NULL, 0, &c), 0);
	evr_connector_free(cn);
	cr_assert_eq(evr_loop_run(l), 0);
	cr_assert_eq(cl.connected, 100);
	cr_assert_eq(cl.verified, 100);
	cr_assert_eq(cl.refused, 1);
	evr_loop_stats(l, &st);
	cr_assert_eq(st.conns_connected, 101);
	cr_assert_eq(st.conns_open, 0);
	cr_assert_eq(st.bufs_free, st.bufs_total);
	evr_loop_free(l);
}

/* A socket connected already (a socketpair's end) served by evr_adopt. */
BACKEND_TEST(loop, adopted_socketpair_is_served)
{
	struct evr_listen_cfg cfg = { .proto = &evr_proto_echo };
	struct evr_connector *cn;
	struct evr_loop_opts o;
	struct evr_loop *l;
	struct evr_conn *c;
	struct evr_stats st;
	char buf[16];
	int sv[2];

	evr_loop_opts_init(&o);
	o.backend = backend;
	cr_assert_eq(evr_loop_new(&l, &o), 0);
	cr_assert_eq(evr_connector_new(l, &cfg, &cn), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(evr_adopt(cn, sv[0], &c), 0);
	evr_connector_free(cn);
	/* the loop echoes, then sees our EOF and closes its end */
	cr_assert_eq(write(sv[1], "adopted", 7), 7);
	shutdown(sv[1], SHUT_WR);
	cr_assert_eq(evr_loop_run(l), 0);
	cr_assert_eq(read(sv[1], buf, sizeof(buf)), 7);
	cr_assert_eq(memcmp(buf, "adopted", 7), 0);
	cr_assert_eq(read(sv[1], buf, sizeof(buf)), 0);
	evr_loop_stats(l, &st);
	cr_assert_eq(st.conns_open, 0);
	close(sv[1]);
	evr_loop_free(l);
}

/* A module that stops reading after the first buffer and starts again
 * 300 ms later: flow control of its own, without losing a byte. */
struct gate_st {
	struct evr_timer t;
	struct evr_conn *c;
	bool paused_once;
};

static void gate_open(struct evr_timer *t)
{
	struct gate_st *st = EVR_CONTAINER_OF(t, struct gate_st, t);

	evr_conn_resume(st->c);
}

static int gate_accept(struct evr_conn *c)
{
	struct gate_st *st = evr_conn_state(c);

	st->c = c;
	evr_timer_init(&st->t, gate_open);
	return 0;
}

static void gate_data(struct evr_conn *c, struct evr_buf *b)
{
	struct gate_st *st = evr_conn_state(c);

	evr_send(c, b);
	if (!st->paused_once) {
		st->paused_once = true;
		evr_conn_pause(c);
		evr_timer_start(evr_conn_loop(c), &st->t, 300);
	}
}

static void gate_close(struct evr_conn *c, int err)
{
	struct gate_st *st = evr_conn_state(c);

	(void)err;
	evr_timer_stop(evr_conn_loop(c), &st->t);
}

static const struct evr_proto gate = { .name = "gate",
				       .state_size = sizeof(struct gate_st),
				       .on_accept = gate_accept,
				       .on_data = gate_data,
				       .on_close = gate_close };

BACKEND_TEST(loop, module_pauses_and_resumes_reading)
{
	enum { LEN = 2 << 20 };
	struct server s = { .proto = &gate };
	char *out = malloc(LEN), *in = malloc(LEN);
	int64_t t0;
	int fd;

	evr_loop_opts_init(&s.o);
	server_start(&s, backend);
	fd = tcp_connect(AF_INET, s.port);
	fill_pattern(out, LEN, 3);
	t0 = now_ms();
	cr_assert_eq(xfer(fd, out, LEN, in, LEN, true, 20000), 0);
	cr_assert_eq(memcmp(in, out, LEN), 0);
	cr_assert_geq(now_ms() - t0, 290, "the pause did not hold");
	close(fd);
	free(out);
	free(in);
	server_wait_idle(&s);
	server_stop(&s);
}

/* A module written for accepted connections (daytime: on_accept only)
 * serves an adopted one too: on_connect defaults to on_accept. */
BACKEND_TEST(loop, adopted_connection_gets_on_accept_of_its_module)
{
	struct evr_listen_cfg cfg = { .proto = &evr_proto_daytime };
	struct evr_connector *cn;
	struct evr_loop_opts o;
	struct evr_loop *l;
	struct evr_conn *c;
	char buf[128];
	ssize_t n;
	int sv[2];

	evr_loop_opts_init(&o);
	o.backend = backend;
	cr_assert_eq(evr_loop_new(&l, &o), 0);
	cr_assert_eq(evr_connector_new(l, &cfg, &cn), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(evr_adopt(cn, sv[0], &c), 0);
	evr_connector_free(cn);
	cr_assert_eq(evr_loop_run(l), 0);
	n = read(sv[1], buf, sizeof(buf) - 1);
	cr_assert_gt(n, 20);
	buf[n] = '\0';
	cr_assert(strstr(buf, "-UTC\r\n"), "got \"%s\"", buf);
	cr_assert_eq(read(sv[1], buf, sizeof(buf)), 0);
	close(sv[1]);
	evr_loop_free(l);
}
