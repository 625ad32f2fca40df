/* SPDX-License-Identifier: MIT */
/*
 * test_line.c - the line framing helper over real sockets, both backends:
 * a module that answers every line with "<len>:<line>\n" (the line sent
 * back from the received buffer itself when it lies in one), served by an
 * in-process loop whose receive buffers are 64 bytes, so that lines cross
 * buffer boundaries all the time. Then the directory module through
 * evringd and nc.
 */
#include "harness.h"
#include "loopsrv.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXLINE 100

struct lst {
	struct evr_line lf;
};

static int on_line(struct evr_conn *c, struct evr_buf *b, char *line,
		   size_t len)
{
	char head[32];
	int n = snprintf(head, sizeof(head), "%zu:", len);

	evr_send_copy(c, head, (size_t)n);
	if (len)
		evr_send_ref(c, b, (size_t)(line - b->data), len);
	evr_send_copy(c, "\n", 1);
	return 0;
}

static int lines_accept(struct evr_conn *c)
{
	struct lst *st = evr_conn_state(c);
	struct evr_line_cfg cfg = { .max_line = MAXLINE, .deadline_ms = 500 };

	evr_line_init(&st->lf, c, &cfg, on_line);
	return 0;
}

static void lines_data(struct evr_conn *c, struct evr_buf *b)
{
	struct lst *st = evr_conn_state(c);

	evr_line_feed(&st->lf, b);
}

static void lines_close(struct evr_conn *c, int err)
{
	struct lst *st = evr_conn_state(c);

	(void)err;
	evr_line_fini(&st->lf);
}

static const struct evr_proto lines = {
	.name = "lines",
	.state_size = sizeof(struct lst),
	.on_accept = lines_accept,
	.on_data = lines_data,
	.on_close = lines_close,
};

static void start(struct server *s, const char *backend)
{
	memset(s, 0, sizeof(*s));
	evr_loop_opts_init(&s->o);
	s->o.buf_size = 64; /* lines cross buffers */
	s->proto = &lines;
	server_start(s, backend);
}

/* Read until want bytes or EOF; returns what was read (NUL-terminated). */
static size_t read_upto(int fd, char *buf, size_t want)
{
	size_t got = read_exact(fd, buf, want);

	buf[got] = '\0';
	return got;
}

static void expect(int fd, const char *want)
{
	static char buf[65536];
	size_t n = strlen(want);

	cr_assert_lt(n, sizeof(buf));
	cr_assert_eq(read_upto(fd, buf, n), n, "got \"%s\", want \"%s\"", buf,
		     want);
	cr_assert_str_eq(buf, want);
}

static void expect_err_and_close(int fd, const char *err)
{
	char buf[4096];
	ssize_t n = 0;

	for (ssize_t r;
	     (size_t)n < sizeof(buf) - 1 &&
	     (r = recv(fd, buf + n, sizeof(buf) - 1 - (size_t)n, 0)) > 0;)
		n += r;
	buf[n] = '\0';
	cr_assert(strstr(buf, err), "expected \"%s\" in \"%s\"", err, buf);
}

BACKEND_TEST(line, split_across_two_sends)
{
	struct server s;
	int fd;

	start(&s, backend);
	fd = tcp_connect(AF_INET, s.port);
	write_all(fd, "hello wor", 9);
	usleep(50 * 1000);
	write_all(fd, "ld\r\n", 4);
	expect(fd, "11:hello world\n");
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

BACKEND_TEST(line, lines_across_buffer_boundaries)
{
	static char in[20000], want[30000];
	size_t ni = 0, nw = 0;
	struct server s;
	int fd;

	start(&s, backend);
	/* lengths 0..100 in one send, through 64-byte receive buffers */
	for (int len = 0; len <= MAXLINE; len++) {
		char line[MAXLINE + 1];

		for (int i = 0; i < len; i++)
			line[i] = (char)('a' + (i + len) % 26);
		memcpy(in + ni, line, (size_t)len);
		ni += (size_t)len;
		in[ni++] = '\n';
		nw += (size_t)sprintf(want + nw, "%d:", len);
		memcpy(want + nw, line, (size_t)len);
		nw += (size_t)len;
		want[nw++] = '\n';
	}
	want[nw] = '\0';
	fd = tcp_connect(AF_INET, s.port);
	write_all(fd, in, ni);
	expect(fd, want);
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

BACKEND_TEST(line, thousand_pipelined_lines_in_one_send)
{
	static char in[20000], want[30000];
	size_t ni = 0, nw = 0;
	struct server s;
	int fd;

	start(&s, backend);
	for (int i = 0; i < 1000; i++) {
		int k = sprintf(in + ni, "line %d%s", i, i % 2 ? "\r\n" : "\n");

		ni += (size_t)k;
		nw += (size_t)sprintf(want + nw, "%d:line %d\n",
				      (int)strlen("line ") + (i < 10	? 1
							      : i < 100 ? 2
									: 3),
				      i);
	}
	fd = tcp_connect(AF_INET, s.port);
	write_all(fd, in, ni);
	expect(fd, want);
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

BACKEND_TEST(line, crlf_lf_and_bare_cr)
{
	struct server s;
	int fd;

	start(&s, backend);
	fd = tcp_connect(AF_INET, s.port);
	/* CRLF and LF end lines; a bare CR is data; an empty line is one */
	write_all(fd, "a\r\nb\nc\rd\n\n\r\n", 13);
	expect(fd, "1:a\n1:b\n3:c\rd\n0:\n0:\n");
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

BACKEND_TEST(line, exactly_the_maximum_and_one_more)
{
	char line[MAXLINE + 3], want[MAXLINE + 16];
	struct server s;
	int fd;

	start(&s, backend);
	memset(line, 'm', MAXLINE);
	memcpy(line + MAXLINE, "\r\n", 2);
	fd = tcp_connect(AF_INET, s.port);
	write_all(fd, line, MAXLINE + 2);
	snprintf(want, sizeof(want), "%d:%.*s\n", MAXLINE, MAXLINE, line);
	expect(fd, want);
	/* one more byte: an error line, then the connection closes */
	memset(line, 'n', MAXLINE + 1);
	line[MAXLINE + 1] = '\n';
	write_all(fd, line, MAXLINE + 2);
	expect_err_and_close(fd, "ERR line too long (more than 100 bytes)");
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

BACKEND_TEST(line, ten_megabytes_without_a_newline)
{
	enum { TOTAL = 10 << 20 };
	static char chunk[65536];
	struct server s;
	size_t sent = 0;
	int fd;

	start(&s, backend);
	memset(chunk, 'z', sizeof(chunk));
	fd = tcp_connect(AF_INET, s.port);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	/* the server gives up long before 10 MB: the send fails or stalls */
	for (int64_t t0 = now_ms(); sent < TOTAL && now_ms() - t0 < 5000;) {
		ssize_t w = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);

		if (w > 0)
			sent += (size_t)w;
		else if (w < 0 && errno != EAGAIN)
			break;
		else
			usleep(1000);
	}
	fcntl(fd, F_SETFL, 0);
	expect_err_and_close(fd, "ERR line too long");
	close(fd);
	struct evr_stats st = server_stats(&s);
	cr_assert_eq(st.bufs_heap, 0, "the framer still holds a buffer");
	server_wait_idle(&s);
	server_stop(&s);
}

BACKEND_TEST(line, dribbling_bytes_hit_the_whole_line_deadline)
{
	struct server s;
	int64_t t0;
	int fd, i;

	start(&s, backend);
	fd = tcp_connect(AF_INET, s.port);
	t0 = now_ms();
	/* one byte every 100 ms, never a newline: the 500 ms deadline runs
	 * from the first byte and is not restarted by later ones */
	for (i = 0; i < 30; i++) {
		if (send(fd, "s", 1, MSG_NOSIGNAL) != 1)
			break;
		usleep(100 * 1000);
		if (wait_closed(fd, 0))
			break;
	}
	cr_assert_lt(now_ms() - t0, 1500, "closed after %lld ms",
		     (long long)(now_ms() - t0));
	cr_assert_lt(i, 15);
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

BACKEND_TEST(line, nul_byte_is_an_error)
{
	struct server s;
	int fd;

	start(&s, backend);
	fd = tcp_connect(AF_INET, s.port);
	write_all(fd, "ok\nbad\0line\n", 12);
	expect(fd, "2:ok\n");
	expect_err_and_close(fd, "ERR line contains a NUL byte");
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

/* ---- holding input: EVR_LINE_HOLD and evr_line_resume ---- */

/*
 * A module that answers like "lines" and holds the rest of its input after
 * every third line, until that line's answer has been sent (on_sent). With
 * conf->never set it never resumes. At EOF it closes once everything held
 * has been answered (evr_line_eof).
 */
struct hold_conf {
	bool never;
};

struct hst {
	struct evr_line lf;
	unsigned n;
};

static int hold_line(struct evr_conn *c, struct evr_buf *b, char *line,
		     size_t len)
{
	struct hst *st = evr_conn_state(c);

	on_line(c, b, line, len);
	return ++st->n % 3 == 0 ? EVR_LINE_HOLD : 0;
}

static int hold_accept(struct evr_conn *c)
{
	struct hst *st = evr_conn_state(c);
	struct evr_line_cfg cfg = { .max_line = MAXLINE, .deadline_ms = 500 };

	evr_line_init(&st->lf, c, &cfg, hold_line);
	return 0;
}

static void hold_data(struct evr_conn *c, struct evr_buf *b)
{
	struct hst *st = evr_conn_state(c);

	evr_line_feed(&st->lf, b);
}

static void hold_sent(struct evr_conn *c, size_t n)
{
	struct hst *st = evr_conn_state(c);
	const struct hold_conf *cf = evr_conn_conf(c);

	(void)n;
	if (!cf->never && evr_line_held(&st->lf) && !evr_conn_queued(c))
		evr_line_resume(&st->lf);
}

static void hold_eof(struct evr_conn *c)
{
	struct hst *st = evr_conn_state(c);

	evr_line_eof(&st->lf);
}

static void hold_close(struct evr_conn *c, int err)
{
	struct hst *st = evr_conn_state(c);

	(void)err;
	evr_line_fini(&st->lf);
}

static const struct evr_proto holder = {
	.name = "holder",
	.state_size = sizeof(struct hst),
	.on_accept = hold_accept,
	.on_data = hold_data,
	.on_sent = hold_sent,
	.on_eof = hold_eof,
	.on_close = hold_close,
};

static void start_holder(struct server *s, const char *backend,
			 struct hold_conf *cf)
{
	memset(s, 0, sizeof(*s));
	evr_loop_opts_init(&s->o);
	s->o.buf_size = 64; /* holds fall inside buffers and between them */
	s->proto = &holder;
	s->conf = cf;
	server_start(s, backend);
}

/* n lines of 0-99 bytes, and what the module answers to them. */
static void hold_lines(int n, char *in, size_t *ni, char *want, size_t *nw)
{
	*ni = *nw = 0;
	for (int i = 0; i < n; i++) {
		int len = (i * 37) % MAXLINE;

		for (int k = 0; k < len; k++)
			in[*ni + (size_t)k] = (char)('a' + (i + k) % 26);
		*nw += (size_t)sprintf(want + *nw, "%d:", len);
		memcpy(want + *nw, in + *ni, (size_t)len);
		*nw += (size_t)len;
		want[(*nw)++] = '\n';
		*ni += (size_t)len;
		in[(*ni)++] = '\n';
	}
	want[*nw] = '\0';
}

BACKEND_TEST(line, held_input_is_delivered_in_order_on_resume)
{
	static char in[100000], want[120000], got[120000];
	struct hold_conf cf = { 0 };
	struct server s;
	size_t ni, nw;
	int fd;

	hold_lines(1000, in, &ni, want, &nw);
	start_holder(&s, backend, &cf);
	fd = tcp_connect(AF_INET, s.port);
	cr_assert_eq(xfer(fd, in, ni, got, nw, false, 30000), 0,
		     "not every line was answered");
	cr_assert_eq(memcmp(got, want, nw), 0, "answers out of order");
	/* the framer paused reading while it held input */
	cr_assert_gt(server_stats(&s).read_pauses, 0);
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

BACKEND_TEST(line, held_input_is_answered_before_the_close_at_eof)
{
	static char in[100000], want[120000], got[130000];
	struct hold_conf cf = { 0 };
	struct server s;
	size_t ni, nw;
	ssize_t n;
	int fd;

	hold_lines(1000, in, &ni, want, &nw);
	start_holder(&s, backend, &cf);
	fd = tcp_connect(AF_INET, s.port);
	cr_assert_eq(write_all(fd, in, ni), 0);
	shutdown(fd, SHUT_WR);
	n = read_to_eof(fd, got, sizeof(got));
	cr_assert_eq(n, (ssize_t)nw, "%zd bytes of %zu before EOF", n, nw);
	cr_assert_eq(memcmp(got, want, nw), 0, "answers out of order");
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

BACKEND_TEST(line, a_connection_closed_with_input_held_leaks_nothing)
{
	static char in[100000], want[120000];
	struct hold_conf cf = { .never = true };
	struct server s;
	size_t ni, nw;
	int fd;

	hold_lines(1000, in, &ni, want, &nw);
	/* held for good, with nothing queued: only the idle timeout ends
	 * the connection (a paused one does not see its peer close) */
	memset(&s, 0, sizeof(s));
	evr_loop_opts_init(&s.o);
	s.o.buf_size = 64;
	s.proto = &holder;
	s.conf = &cf;
	s.lim.idle_timeout_ms = 300;
	server_start(&s, backend);
	for (int i = 0; i < 2; i++) {
		fd = tcp_connect(AF_INET, s.port);
		cr_assert_eq(write_all(fd, in, ni / 4), 0);
		/* three lines answered, then held for good */
		char *third = want;
		for (int k = 0; k < 3; k++)
			third = strchr(third, '\n') + 1;
		*third = '\0';
		expect(fd, want);
		if (i == 0)
			shutdown(fd, SHUT_WR); /* EOF while held */
		usleep(50 * 1000);
		close(fd);
	}
	server_wait_idle(&s);
	server_stop(&s);
}

/* Answers like "lines" and stops at a line "stop", without closing. */
static int stop_line(struct evr_conn *c, struct evr_buf *b, char *line,
		     size_t len)
{
	on_line(c, b, line, len);
	return len == 4 && !memcmp(line, "stop", 4) ? -1 : 0;
}

static int stop_accept(struct evr_conn *c)
{
	struct lst *st = evr_conn_state(c);

	evr_line_init(&st->lf, c, NULL, stop_line);
	return 0;
}

static const struct evr_proto stopper = {
	.name = "stopper",
	.state_size = sizeof(struct lst),
	.on_accept = stop_accept,
	.on_data = lines_data,
	.on_close = lines_close,
};

BACKEND_TEST(line, a_handler_that_stops_gets_no_more_lines)
{
	struct server s;
	char buf[64];
	int fd;

	memset(&s, 0, sizeof(s));
	evr_loop_opts_init(&s.o);
	s.proto = &stopper;
	server_start(&s, backend);
	fd = tcp_connect(AF_INET, s.port);
	write_all(fd, "a\nstop\nb\n", 9);
	expect(fd, "1:a\n4:stop\n");
	usleep(50 * 1000);
	write_all(fd, "c\n", 2); /* a later buffer: still nothing */
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	cr_assert_eq(poll(&pfd, 1, 300), 0, "a line after the stop: %.*s",
		     (int)recv(fd, buf, sizeof(buf), MSG_DONTWAIT), buf);
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

/* ---- the directory module, through evringd and nc ---- */

static int nc_session(uint16_t port, const char *script, char *out,
		      size_t outlen)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "printf '%s' | nc -q1 127.0.0.1 %u", script,
		 port);
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	return run_capture(argv, out, outlen, 10000);
}

BACKEND_TEST(line, directory_session_with_nc)
{
	const char *argv[] = { "-b", "127.0.0.1",	"-s", "echo/tcp:0",
			       "-s", "directory/tcp:0", NULL };
	char out[4096], want[128];
	struct srv s;
	uint16_t port;

	cr_assert_eq(srv_start(&s, backend, 2, argv), 0);
	port = srv_port(&s, "directory", AF_INET);
	cr_assert_eq(
	    nc_session(port,
		       "LIST\\r\\nREGISTER web 8080\\r\\nREGISTER tmp 9090 "
		       "udp session\\r\\nLOOKUP web\\r\\nLOOKUP tmp\\r\\n"
		       "lookup echo\\r\\nREGISTER web 1\\r\\nFROB\\r\\n"
		       "UNREGISTER echo\\r\\nQUIT\\r\\n",
		       out, sizeof(out)),
	    0);
	snprintf(want, sizeof(want), "echo %u/tcp evringd\r\n",
		 srv_port(&s, "echo", AF_INET));
	cr_assert(strstr(out, want), "LIST lacks our own echo: %s", out);
	cr_assert(strstr(out, "OK 2 entries\r\n"), "%s", out);
	cr_assert(strstr(out, "OK registered web 8080/tcp persistent\r\n"));
	cr_assert(strstr(out, "OK registered tmp 9090/udp session\r\n"));
	cr_assert(strstr(out, "OK web 8080/tcp\r\n"));
	cr_assert(strstr(out, "OK tmp 9090/udp\r\n"));
	snprintf(want, sizeof(want), "OK echo %u/tcp\r\n",
		 srv_port(&s, "echo", AF_INET));
	cr_assert(strstr(out, want), "%s", out);
	cr_assert(strstr(out, "ERR web/tcp is already registered"));
	cr_assert(strstr(out, "ERR unknown command \"FROB\""));
	cr_assert(strstr(out, "ERR echo is served by evringd"));
	cr_assert(strstr(out, "OK bye\r\n"));
	/* the session entry left with its connection, the other stayed */
	cr_assert_eq(nc_session(port, "LOOKUP tmp\\r\\nLOOKUP web\\r\\n", out,
				sizeof(out)),
		     0);
	cr_assert(strstr(out, "ERR no such name \"tmp\""), "%s", out);
	cr_assert(strstr(out, "OK web 8080/tcp"), "%s", out);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}
