/* SPDX-License-Identifier: MIT */
/*
 * test_regress.c - regression tests for bugs a review found, one test per
 * bug, each run on both backends against an in-process loop (loopsrv) or a
 * loop of its own. Each test states what must hold; it failed on the code
 * before the fix (on the backend named in its comment) and must keep
 * passing. Every wait is bounded, so a regression fails in seconds instead
 * of hanging.
 *
 * Layout: client helpers, then the tests in the order of the bugs: TCP
 * sends and closes, pausing, line framing, the epoll ready list, UDP,
 * outbound connections.
 */
#include "harness.h"
#include "loopsrv.h"

#include "evring.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- client helpers ---- */

/* A TCP client of 127.0.0.1:port whose receive buffer is set before the
 * handshake (so the window it announces is small from the start), with
 * 3 s I/O timeouts. */
static int connect_rcvbuf(uint16_t port, int rcvbuf)
{
	struct timeval tv = { .tv_sec = 3 };
	struct sockaddr_storage ss;
	socklen_t len = loopback_addr(AF_INET, port, &ss);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *)&ss, len), 0, "connect: %s",
		     strerror(errno));
	return fd;
}

/*
 * Read into p (at most cap bytes; more are counted, not kept) until EOF,
 * an error (a reset) or timeout_ms in all. Returns the bytes read; *eof
 * tells whether it ended with an orderly EOF.
 */
static size_t read_all_within(int fd, char *p, size_t cap, int timeout_ms,
			      bool *eof)
{
	int64_t deadline = now_ms() + timeout_ms;
	char extra[256];
	size_t got = 0;

	*eof = false;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		ssize_t r;

		if (left <= 0 || poll(&pfd, 1, (int)left) != 1)
			return got;
		if (got < cap)
			r = recv(fd, p + got, cap - got, MSG_DONTWAIT);
		else
			r = recv(fd, extra, sizeof(extra), MSG_DONTWAIT);
		if (r == 0) {
			*eof = true;
			return got;
		}
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			return got;
		if (r > 0)
			got += (size_t)r;
	}
}

/* 1 when a byte (or EOF, or a reset) arrives on fd within timeout_ms. */
static int readable_within(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, timeout_ms) == 1;
}

/* Wait up to timeout_ms for *v to reach at least want. */
static bool wait_atomic(atomic_int *v, int want, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (atomic_load(v) < want && now_ms() < deadline)
		usleep(1000);
	return atomic_load(v) >= want;
}

/* ---- TCP sends and closes ---- */

/*
 * RFC 862: an echo client that writes, half-closes, and reads only later
 * must get back every byte, then an orderly EOF. While its 4 KiB receive
 * buffer is full the server's send is blocked; the peer's FIN arriving
 * then must not end that send with an error. io_uring failed this: the
 * accepted socket was non-blocking, so the waiting send completed with
 * -EAGAIN at the FIN, which the core took for a dead peer and aborted,
 * cutting the reply short by whatever was still queued.
 */
BACKEND_TEST(regress, echo_after_half_close_returns_every_byte)
{
	enum { N = 3000000 };
	struct server s = { 0 };
	char *out = malloc(N), *in = malloc(N);
	size_t sent = 0, got;
	bool eof;
	int fd;

	cr_assert(out && in);
	fill_pattern(out, N, 862);
	evr_loop_opts_init(&s.o);
	server_start(&s, backend);
	fd = connect_rcvbuf(s.port, 4096);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	/* write what the socket buffers and the server's queue take, up to
	 * N: only stop when nothing moved for a second */
	while (sent < N) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		ssize_t w;

		if (poll(&pfd, 1, 1000) != 1)
			break;
		w = send(fd, out + sent, N - sent, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN)
			break;
		if (w > 0)
			sent += (size_t)w;
	}
	cr_assert_gt(sent, 1u << 20, "only %zu bytes could be written", sent);
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	usleep(300 * 1000); /* the FIN lands while the server's send waits */
	got = read_all_within(fd, in, N, 4000, &eof);
	cr_assert_eq(got, sent, "wrote %zu, got back %zu", sent, got);
	cr_assert_eq(memcmp(in, out, sent), 0, "the echo was changed");
	cr_assert(eof, "no orderly EOF after the echo");
	close(fd);
	free(out);
	free(in);
	server_wait_idle(&s);
	server_stop(&s);
}

/* On the first bytes: queue 8 MiB and close gracefully (an HTTP response
 * with "Connection: close", a file server). */
static void reply_big_and_close(struct evr_conn *c, struct evr_buf *in)
{
	size_t n = 8u << 20;
	struct evr_buf *b = evr_buf_new(evr_conn_loop(c), n);

	(void)in;
	if (!b) {
		evr_abort(c, -ENOMEM);
		return;
	}
	memset(b->data, 'x', n);
	b->len = (uint32_t)n;
	evr_send(c, b);
	evr_buf_unref(b);
	evr_close(c);
}

static const struct evr_proto big_reply = { .name = "bigreply",
					    .on_data = reply_big_and_close };

/*
 * A connection closed gracefully (evr_close) stays open until its queue
 * drains; when the peer never reads, the send timeout is what gets the
 * descriptor and the queued bytes back. It must fire for a closing
 * connection as for any other, once, within a few periods. Both backends
 * failed this: the timeout handler returned at once for a closing
 * connection without re-arming, so such a connection was kept forever
 * with up to wq_max bytes.
 */
BACKEND_TEST(regress, closing_connection_is_reclaimed_by_send_timeout)
{
	struct server s = { .proto = &big_reply };
	struct evr_stats st;
	int64_t deadline;
	int fd;

	evr_loop_opts_init(&s.o);
	s.lim.send_timeout_ms = 300;
	s.lim.wq_high = 32 << 20;
	s.lim.wq_max = 64 << 20;
	server_start(&s, backend);
	fd = connect_rcvbuf(s.port, 4096);
	cr_assert_eq(write_all(fd, "x", 1), 0);
	deadline = now_ms() + 3000; /* 10 periods; never read */
	do {
		st = server_stats(&s);
	} while ((!st.conns_accepted || st.conns_open) && now_ms() < deadline);
	cr_assert_eq(st.conns_accepted, 1);
	cr_assert_eq(st.conns_open, 0,
		     "not reclaimed after 3 s: bytes_queued=%llu "
		     "send_timeouts=%llu",
		     (unsigned long long)st.bytes_queued,
		     (unsigned long long)st.send_timeouts);
	cr_assert_eq(st.send_timeouts, 1);
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

#define BIG_N	  (8u << 20)
#define BIG_CHUNK 65536u

static char *big_msg; /* BIG_N bytes of pattern, made before the server */

/* conf: non-NULL sends the reply as one buffer, NULL as 64 KiB buffers. */
static int send_big_at_accept(struct evr_conn *c)
{
	bool one = evr_conn_conf(c) != NULL;
	size_t chunk = one ? BIG_N : BIG_CHUNK;

	for (size_t off = 0; off < BIG_N; off += chunk) {
		struct evr_buf *b = evr_buf_new(evr_conn_loop(c), chunk);

		if (!b)
			return -ENOMEM;
		memcpy(b->data, big_msg + off, chunk);
		b->len = (uint32_t)chunk;
		evr_send(c, b);
		evr_buf_unref(b);
	}
	evr_close(c);
	return 0;
}

static const struct evr_proto big_banner = { .name = "bigbanner",
					     .on_accept = send_big_at_accept };

static void big_banner_to_late_reader(const char *backend, bool one_buffer)
{
	static int one = 1;
	struct server s = { .proto = &big_banner,
			    .conf = one_buffer ? &one : NULL };
	char *in = malloc(BIG_N);
	size_t got;
	bool eof;
	int fd;

	cr_assert(in);
	evr_loop_opts_init(&s.o);
	s.lim.wq_high = 32 << 20;
	s.lim.wq_max = 64 << 20;
	server_start(&s, backend);
	fd = connect_rcvbuf(s.port, 0);
	sleep(1); /* a slow client: the server's socket fills first */
	got = read_all_within(fd, in, BIG_N, 3000, &eof);
	cr_assert_eq(got, BIG_N, "%s: got %zu of %u bytes",
		     one_buffer ? "one buffer" : "64 KiB buffers", got, BIG_N);
	cr_assert_eq(memcmp(in, big_msg, BIG_N), 0, "the reply was changed");
	cr_assert(eof, "no orderly EOF after the reply");
	close(fd);
	free(in);
	server_wait_idle(&s);
	server_stop(&s);
}

/*
 * A module may queue a reply bigger than the socket buffers from
 * on_accept and close at once (a banner, a file server): the close is
 * graceful, so a client that starts reading only a second later must get
 * every byte, in order, then EOF, whether the reply is one buffer or many.
 * epoll failed this: a connection closed from on_accept was never
 * registered with epoll, so once the socket was full no EPOLLOUT ever
 * came, and the tail was lost with the connection stuck.
 */
BACKEND_TEST(regress, big_reply_queued_and_closed_in_on_accept_arrives_whole)
{
	big_msg = malloc(BIG_N);
	cr_assert(big_msg);
	fill_pattern(big_msg, BIG_N, 8);
	big_banner_to_late_reader(backend, true);
	big_banner_to_late_reader(backend, false);
	free(big_msg);
}

/* ---- pausing ---- */

struct held_state {
	struct evr_timer resume;
	struct evr_conn *c;
	bool resumed;
};

static atomic_int early_data, resumes;

static void resume_later(struct evr_timer *t)
{
	struct held_state *st = EVR_CONTAINER_OF(t, struct held_state, resume);

	st->resumed = true;
	atomic_fetch_add(&resumes, 1);
	evr_conn_resume(st->c);
}

/* A proxy that holds its client until the upstream is there: paused from
 * on_accept, resumed by a timer 300 ms later. */
static int hold_accept(struct evr_conn *c)
{
	struct held_state *st = evr_conn_state(c);

	st->c = c;
	evr_conn_pause(c);
	evr_timer_init(&st->resume, resume_later);
	return evr_timer_start(evr_conn_loop(c), &st->resume, 300);
}

static void hold_data(struct evr_conn *c, struct evr_buf *b)
{
	struct held_state *st = evr_conn_state(c);

	if (!st->resumed)
		atomic_fetch_add(&early_data, 1);
	evr_send(c, b);
}

static void hold_close(struct evr_conn *c, int err)
{
	struct held_state *st = evr_conn_state(c);

	(void)err;
	evr_timer_stop(evr_conn_loop(c), &st->resume);
}

static const struct evr_proto held = { .name = "held",
				       .state_size = sizeof(struct held_state),
				       .on_accept = hold_accept,
				       .on_data = hold_data,
				       .on_close = hold_close };

/*
 * evr_conn_pause() from on_accept must hold on_data back until
 * evr_conn_resume(), and the bytes that waited meanwhile must then arrive,
 * intact, exactly once. io_uring failed the first half: the multishot
 * receive was armed after on_accept regardless of the pause, so on_data
 * ran on a paused connection.
 */
BACKEND_TEST(regress, pause_in_on_accept_holds_data_until_resume)
{
	static const char msg[] = "held until the upstream is there\n";
	struct server s = { .proto = &held };
	char in[sizeof(msg)];
	size_t got;
	bool eof;
	int fd;

	atomic_store(&early_data, 0);
	atomic_store(&resumes, 0);
	evr_loop_opts_init(&s.o);
	server_start(&s, backend);
	fd = connect_rcvbuf(s.port, 0);
	cr_assert_eq(write_all(fd, msg, sizeof(msg) - 1), 0);
	cr_assert(wait_atomic(&resumes, 1, 10000), "never resumed");
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	got = read_all_within(fd, in, sizeof(in), 2000, &eof);
	cr_assert_eq(atomic_load(&early_data), 0,
		     "on_data ran while the connection was paused");
	cr_assert_eq(got, sizeof(msg) - 1, "got %zu bytes after the resume",
		     got);
	cr_assert_eq(memcmp(in, msg, got), 0);
	cr_assert(eof);
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

/* ---- line framing ---- */

struct counted_lines {
	struct evr_line lf;
};

static atomic_int nlines;

static int count_line(struct evr_conn *c, struct evr_buf *b, char *line,
		      size_t len)
{
	(void)c, (void)b, (void)line, (void)len;
	atomic_fetch_add(&nlines, 1);
	return 0;
}

static int counted_accept(struct evr_conn *c)
{
	struct counted_lines *st = evr_conn_state(c);
	struct evr_line_cfg cfg = { .deadline_ms = 1000 };

	evr_line_init(&st->lf, c, &cfg, count_line);
	return 0;
}

static void counted_data(struct evr_conn *c, struct evr_buf *b)
{
	struct counted_lines *st = evr_conn_state(c);

	evr_line_feed(&st->lf, b);
}

static void counted_close(struct evr_conn *c, int err)
{
	struct counted_lines *st = evr_conn_state(c);

	(void)err;
	evr_line_fini(&st->lf);
}

static const struct evr_proto counted = {
	.name = "counted",
	.state_size = sizeof(struct counted_lines),
	.on_accept = counted_accept,
	.on_data = counted_data,
	.on_close = counted_close,
};

/*
 * The whole-line deadline bounds one line, from its first byte to its
 * end: a client pipelining lines that each take 10 ms, whose every
 * write (so every read) ends in the middle of the next line, must never
 * hit a 1 s deadline over 1.5 s (only a stall of the client of nearly a
 * second between two writes could). Both backends failed this: the deadline ran
 * from the first partial line and was stopped only by a read ending on a line
 * boundary, so such a client was cut off after 500 ms. (That a line
 * that really dribbles still hits the deadline is tested in test_line.c,
 * dribbling_bytes_hit_the_whole_line_deadline.)
 */
BACKEND_TEST(regress, lines_that_each_finish_in_time_outlive_the_deadline)
{
	struct server s = { .proto = &counted };
	int one = 1, fd, i;

	atomic_store(&nlines, 0);
	evr_loop_opts_init(&s.o);
	server_start(&s, backend);
	fd = connect_rcvbuf(s.port, 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	cr_assert_eq(send(fd, "LOOKUP a", 8, MSG_NOSIGNAL), 8);
	/* 1.5 s, longer than a deadline, of lines of 10 ms each */
	for (i = 0; i < 150; i++) {
		usleep(10 * 1000);
		cr_assert_eq(send(fd, "bc\nLOOKUP a", 11, MSG_NOSIGNAL), 11,
			     "the server closed after %d lines", i);
	}
	cr_assert_not(readable_within(fd, 100),
		      "the server answered or closed (deadline hit) after %d "
		      "lines",
		      atomic_load(&nlines));
	cr_assert_eq(send(fd, "bc\n", 3, MSG_NOSIGNAL), 3);
	cr_assert(wait_atomic(&nlines, 151, 5000), "%d of 151 lines",
		  atomic_load(&nlines));
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

/* ---- epoll's ready list ---- */

/* An echo that pauses and resumes from on_data (a proxy whose other side
 * caught up at once), and that keeps the first 4 buffers it receives for
 * 100 ms, which empties a pool of 4. */
struct hoarder {
	struct evr_timer release;
	struct evr_buf *held[4];
	int nheld;
	bool done; /* held once and released */
};

static void hoard_release(struct evr_timer *t)
{
	struct hoarder *h = EVR_CONTAINER_OF(t, struct hoarder, release);

	for (int i = 0; i < h->nheld; i++)
		evr_buf_unref(h->held[i]);
	h->nheld = 0;
	h->done = true;
}

static int hoard_accept(struct evr_conn *c)
{
	struct hoarder *h = evr_conn_state(c);

	evr_timer_init(&h->release, hoard_release);
	return evr_timer_start(evr_conn_loop(c), &h->release, 100);
}

static void hoard_data(struct evr_conn *c, struct evr_buf *b)
{
	struct hoarder *h = evr_conn_state(c);

	if (!h->done && h->nheld < 4)
		h->held[h->nheld++] = evr_buf_ref(b);
	evr_send(c, b);
	evr_conn_pause(c);
	evr_conn_resume(c);
}

static void hoard_close(struct evr_conn *c, int err)
{
	struct hoarder *h = evr_conn_state(c);

	(void)err;
	evr_timer_stop(evr_conn_loop(c), &h->release);
	hoard_release(&h->release);
}

static const struct evr_proto hoard = { .name = "hoard",
					.state_size = sizeof(struct hoarder),
					.on_accept = hoard_accept,
					.on_data = hoard_data,
					.on_close = hoard_close };

/*
 * A pause and resume from on_data, while the pool runs dry, must leave
 * the connection on one list at a time and lose no byte: all 1000 bytes
 * come back once the held buffers are released, then EOF, and the loop
 * gets back to idle. epoll failed this: the resume put the connection on
 * the ready list while its read loop went on, and the empty pool then
 * linked the same node into the starved list too, corrupting both (a hang,
 * or a use-after-free under ASan).
 */
BACKEND_TEST(regress, pause_resume_in_on_data_with_an_empty_pool_echoes_all)
{
	struct server s = { .proto = &hoard };
	char out[1000], in[1000];
	bool eof;
	int fd;

	fill_pattern(out, sizeof(out), 4);
	evr_loop_opts_init(&s.o);
	s.o.buf_count = 4;
	s.o.buf_size = 64;
	server_start(&s, backend);
	fd = connect_rcvbuf(s.port, 0);
	cr_assert_eq(xfer(fd, out, sizeof(out), in, sizeof(in), true, 3000), 0,
		     "the echo stalled");
	cr_assert_eq(memcmp(in, out, sizeof(in)), 0, "the echo was changed");
	cr_assert_eq(read_all_within(fd, in, sizeof(in), 2000, &eof), 0);
	cr_assert(eof, "no EOF after the echo");
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

/* ---- UDP ---- */

/* A UDP client on an ephemeral port of 127.0.0.1. */
static int udp_client(void)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback_addr(AF_INET, 0, &ss);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&ss, len), 0);
	return fd;
}

static void udp_send_to(int fd, uint16_t port, const void *p, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback_addr(AF_INET, port, &ss);

	cr_assert_eq(sendto(fd, p, n, 0, (struct sockaddr *)&ss, len),
		     (ssize_t)n);
}

/* Reply, then close the socket in the same iteration (what a drain does
 * to a socket whose datagram came in the same batch as SIGTERM). */
static void reply_and_close(struct evr_udp *u, struct evr_buf *b,
			    const struct sockaddr *peer, socklen_t peerlen)
{
	evr_udp_send(u, b, peer, peerlen);
	evr_udp_close(u);
}

static const struct evr_proto udp_last_word = { .name = "lastword",
						.on_datagram =
						    reply_and_close };

/*
 * evr_udp_close() sends what was queued before it (udp.c flushes the
 * socket's queue before stopping it): a reply queued in the same
 * iteration as the close must reach its peer and be counted as sent,
 * none as dropped, and the socket's memory must be freed only after
 * that. Both backends failed this: under epoll the socket was freed while
 * still on the list of sockets to flush (a use-after-free: a crash, or an
 * ASan report); under io_uring the socket was closed before the reply's
 * submission, which then failed on a closed descriptor.
 */
BACKEND_TEST(regress, udp_reply_queued_before_close_is_sent)
{
	struct server s = { .udp_proto = &udp_last_word };
	struct evr_stats st;
	int64_t deadline;
	char buf[16];
	int fd;

	evr_loop_opts_init(&s.o);
	server_start(&s, backend);
	fd = udp_client();
	udp_send_to(fd, s.uport, "ping", 4);
	cr_assert(readable_within(fd, 1000), "no reply");
	cr_assert_eq(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), 4);
	cr_assert_eq(memcmp(buf, "ping", 4), 0);
	deadline = now_ms() + 1000; /* io_uring counts at the completion */
	do {
		st = server_stats(&s);
	} while (st.udp_tx < 1 && now_ms() < deadline);
	cr_assert_eq(st.udp_rx, 1);
	cr_assert_eq(st.udp_tx, 1);
	cr_assert_eq(st.udp_tx_drop, 0);
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

static atomic_int dgrams, dgrams_over;
static atomic_long worst_over;
static long page_size;

/* Record whether data + cap stays in the buffer, which with page-sized
 * buffers in a page-aligned pool ends at the next page boundary. */
static void check_cap(struct evr_udp *u, struct evr_buf *b,
		      const struct sockaddr *peer, socklen_t peerlen)
{
	long end =
	    (long)((uintptr_t)b->data % (uintptr_t)page_size) + (long)b->cap;

	(void)u, (void)peer, (void)peerlen;
	if (end > page_size || b->len > b->cap) {
		atomic_fetch_add(&dgrams_over, 1);
		atomic_store(&worst_over, end - page_size);
	}
	atomic_fetch_add(&dgrams, 1);
}

static const struct evr_proto udp_cap = { .name = "udpcap",
					  .on_datagram = check_cap };

/*
 * evring.h promises that b->cap is the number of bytes that fit at
 * b->data, so a module may build a reply in place up to cap. With a UDP
 * pool of page-sized buffers (mmap'd, so page-aligned) every buffer ends
 * at the page boundary after its data: data + cap must not pass it, for a
 * small datagram and for one of most of a page. io_uring failed this: it
 * moved data past the recvmsg header and the sender's address and left
 * cap at the whole buffer, overstating it by 44 bytes (into the next
 * buffer, which the kernel may be filling, or past the pool's end).
 */
BACKEND_TEST(regress, udp_datagram_cap_stays_inside_its_buffer)
{
	struct server s = { .udp_proto = &udp_cap };
	static char big[3000];
	int fd;

	atomic_store(&dgrams, 0);
	atomic_store(&dgrams_over, 0);
	page_size = sysconf(_SC_PAGESIZE);
	cr_assert_gt(page_size, (long)sizeof(big) + 256);
	evr_loop_opts_init(&s.o);
	s.o.udp_buf_size = (uint32_t)page_size;
	server_start(&s, backend);
	fd = udp_client();
	udp_send_to(fd, s.uport, "ping", 4);
	udp_send_to(fd, s.uport, big, sizeof(big));
	cr_assert(wait_atomic(&dgrams, 2, 1000), "%d of 2 datagrams",
		  atomic_load(&dgrams));
	cr_assert_eq(atomic_load(&dgrams_over), 0,
		     "data + cap ends %ld bytes past the buffer",
		     atomic_load(&worst_over));
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

/* ---- outbound connections ---- */

static struct {
	int err[2];
	int closed;
	struct evr_loop *l;
	struct evr_timer watchdog;
} cc;

static void cc_data(struct evr_conn *c, struct evr_buf *b)
{
	(void)c, (void)b;
}

static void cc_close(struct evr_conn *c, int err)
{
	cc.err[(intptr_t)evr_conn_udata(c)] = err;
	if (++cc.closed == 2)
		evr_timer_stop(evr_conn_loop(c), &cc.watchdog);
}

/* Neither closed in time: the test fails on cc.closed. */
static void cc_watchdog(struct evr_timer *t)
{
	(void)t;
	cc.closed = -100;
	evr_loop_stop(cc.l);
}

static const struct evr_proto cc_proto = { .name = "closeconnecting",
					   .on_data = cc_data,
					   .on_close = cc_close };

/*
 * A connection closed (evr_close) while it is still connecting, to a port
 * nobody listens on, must tell on_close why it ended: the connect's
 * -ECONNREFUSED, with or without bytes queued for after the connect, not
 * 0 (an orderly close, which would make a client believe its request was
 * delivered) nor the -EPIPE of a send tried on the unconnected socket.
 * Both backends failed this: the connect's completion on a closing
 * connection returned before looking at its error.
 */
BACKEND_TEST(regress, close_while_connecting_reports_the_connect_error)
{
	struct evr_listen_cfg cfg = { .proto = &cc_proto };
	struct sockaddr_storage dead;
	struct evr_connector *cn;
	struct evr_loop_opts o;
	struct evr_stats st;
	struct evr_loop *l;
	socklen_t dlen;
	int fd;

	memset(&cc, 0, sizeof(cc));
	cc.err[0] = cc.err[1] = 1;
	evr_loop_opts_init(&o);
	o.backend = backend;
	cr_assert_eq(evr_loop_new(&l, &o), 0);
	cc.l = l;
	cr_assert_eq(evr_connector_new(l, &cfg, &cn), 0);
	/* a port nobody listens on */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	dlen = loopback_addr(AF_INET, 0, &dead);
	cr_assert_eq(bind(fd, (struct sockaddr *)&dead, dlen), 0);
	getsockname(fd, (struct sockaddr *)&dead, &dlen);
	close(fd);
	for (intptr_t i = 0; i < 2; i++) {
		struct evr_conn *c;

		cr_assert_eq(evr_connect(cn, (struct sockaddr *)&dead, dlen,
					 NULL, 0, &c),
			     0);
		evr_conn_set_udata(c, (void *)i);
		if (i == 1)
			cr_assert_eq(evr_send_copy(c, "hello", 5), 0);
		evr_close(c);
	}
	evr_connector_free(cn);
	evr_timer_init(&cc.watchdog, cc_watchdog);
	evr_timer_start(l, &cc.watchdog, 3000);
	cr_assert_eq(evr_loop_run(l), 0);
	evr_loop_stats(l, &st);
	evr_loop_free(l);
	cr_assert_eq(cc.closed, 2, "on_close did not run for both in 3 s");
	cr_assert_eq(cc.err[0], -ECONNREFUSED, "nothing queued: err %d (%s)",
		     cc.err[0], strerror(-cc.err[0]));
	cr_assert_eq(cc.err[1], -ECONNREFUSED, "bytes queued: err %d (%s)",
		     cc.err[1], strerror(-cc.err[1]));
	cr_assert_eq(st.conns_open, 0);
	cr_assert_eq(st.bufs_free, st.bufs_total);
	cr_assert_eq(st.bufs_heap, 0);
}
