/* SPDX-License-Identifier: MIT */
/*
 * test_http.c - the http module (HTTP/1.1 plaintext) against the real
 * evringd on both backends, IPv4 and IPv6 loopback: the exact reply to
 * GET /, HEAD, persistence and pipelining, requests split at every byte,
 * HTTP/1.0, HTTP/1.x as 1.1, Connection: close, 404, 405, 400 (at the
 * first impossible byte), 431, 505, the head deadline and 408, draining.
 * Every test ends with the server back at its baseline (no connection,
 * every buffer back, nothing queued) and a clean exit. The parser itself
 * is tested on split and malformed input at the end.
 *
 * Layout: a small HTTP client (responses read off a stream that may hold
 * several), the integration tests, the parser tests.
 */
#include "evd_conf.h"
#include "../protocols/http.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *const http_only[] = { "http", NULL };
static const int families[] = { AF_INET, AF_INET6 };

#define GET_ROOT  "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
#define HELLO_LEN 13
#define DATE_LEN  29
/* The reply to GET / on a persistent HTTP/1.1 connection, Date aside. */
#define OK_HEAD_1 "HTTP/1.1 200 OK\r\nServer: evring\r\nDate: "
#define OK_HEAD_2 "\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
#define OK_REPLY_LEN                                                           \
	(sizeof(OK_HEAD_1) - 1 + DATE_LEN + sizeof(OK_HEAD_2) - 1 + HELLO_LEN)

/* ---- a small client ---- */

struct client {
	int fd;
	size_t len; /* bytes received, not yet taken as replies */
	char buf[1 << 16];
};

struct reply {
	int status;
	size_t head_len; /* status line and fields, empty line included */
	size_t len;	 /* head and body */
	char raw[2048];	 /* NUL-terminated */
};

static struct client *client_open(struct srv *s, int family)
{
	struct client *cl = calloc(1, sizeof(*cl));

	cr_assert_not_null(cl);
	cl->fd = tcp_connect(family, srv_port(s, "http", family));
	cr_assert_geq(cl->fd, 0, "connect");
	return cl;
}

static void client_close(struct client *cl)
{
	close(cl->fd);
	free(cl);
}

static void client_send(struct client *cl, const char *req)
{
	cr_assert_eq(write_all(cl->fd, req, strlen(req)), 0, "send");
}

/* The value of field name in a reply head, NULL when absent. */
static const char *field(const struct reply *r, const char *name, char *out,
			 size_t cap)
{
	const char *line = strstr(r->raw, "\r\n");

	while (line && line + 2 < r->raw + r->head_len) {
		const char *start = line + 2, *end = strstr(start, "\r\n");
		size_t nl = strlen(name);

		if (end && end > start && !strncasecmp(start, name, nl) &&
		    start[nl] == ':') {
			start += nl + 1;
			while (*start == ' ')
				start++;
			snprintf(out, cap, "%.*s", (int)(end - start), start);
			return out;
		}
		line = end;
	}
	return NULL;
}

/*
 * Take the next reply off the stream, reading as needed. head_only: the
 * request was HEAD, so no body follows whatever Content-Length says.
 * Returns 0, or -1 at EOF, error or timeout before a whole reply.
 */
static int reply_next(struct client *cl, struct reply *r, bool head_only)
{
	char *end, cl_val[32];
	size_t body = 0;

	for (;;) {
		cl->buf[cl->len] = '\0';
		end = strstr(cl->buf, "\r\n\r\n");
		if (end) {
			r->head_len = (size_t)(end + 4 - cl->buf);
			memcpy(r->raw, cl->buf, r->head_len);
			r->raw[r->head_len] = '\0';
			body =
			    field(r, "Content-Length", cl_val, sizeof(cl_val))
				? strtoul(cl_val, NULL, 10)
				: 0;
			r->len = r->head_len + (head_only ? 0 : body);
			if (cl->len >= r->len)
				break;
		}
		ssize_t n = recv(cl->fd, cl->buf + cl->len,
				 sizeof(cl->buf) - 1 - cl->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		cl->len += (size_t)n;
	}
	cr_assert_lt(r->len, sizeof(r->raw));
	memcpy(r->raw, cl->buf, r->len);
	r->raw[r->len] = '\0';
	memmove(cl->buf, cl->buf + r->len, cl->len - r->len);
	cl->len -= r->len;
	if (sscanf(r->raw, "HTTP/1.1 %d ", &r->status) != 1)
		r->status = -1;
	return 0;
}

static void expect_reply(struct client *cl, struct reply *r, int status,
			 bool head_only)
{
	cr_assert_eq(reply_next(cl, r, head_only), 0, "no reply");
	cr_assert_eq(r->status, status, "status %d, wanted %d; reply:\n%s",
		     r->status, status, r->raw);
}

/* The server closed: EOF (not a reset), and nothing after the reply. */
static void expect_eof(struct client *cl)
{
	char extra[256];
	ssize_t n = read_to_eof(cl->fd, extra, sizeof(extra));

	cr_assert_eq(cl->len, 0, "bytes after the last reply");
	cr_assert_eq(n, 0, "wanted EOF, got %zd (errno %d)", n, errno);
}

static void assert_hello(const struct reply *r);

/* The connection is still usable: one more GET / is answered. */
static void expect_open(struct client *cl)
{
	struct reply r;

	client_send(cl, GET_ROOT);
	expect_reply(cl, &r, 200, false);
	assert_hello(&r);
}

static void assert_date_now(const char *date)
{
	regex_t re;
	struct tm tm;
	time_t t;

	cr_assert_eq(
	    regcomp(&re,
		    "^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3][0-9] "
		    "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
		    "[0-9]{4} [0-2][0-9]:[0-5][0-9]:[0-6][0-9] GMT$",
		    REG_EXTENDED | REG_NOSUB),
	    0);
	cr_assert_eq(regexec(&re, date, 0, NULL, 0), 0,
		     "not an IMF-fixdate: \"%s\"", date);
	regfree(&re);
	memset(&tm, 0, sizeof(tm));
	cr_assert_not_null(strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm));
	t = timegm(&tm);
	cr_assert_leq(labs((long)(t - time(NULL))), 5, "Date off by %ld s",
		      (long)(t - time(NULL)));
}

/* The reply to GET / on a persistent connection, byte for byte. */
static void assert_hello(const struct reply *r)
{
	char date[DATE_LEN + 1];

	cr_assert_eq(r->len, OK_REPLY_LEN, "reply:\n%s", r->raw);
	cr_assert_eq(memcmp(r->raw, OK_HEAD_1, sizeof(OK_HEAD_1) - 1), 0,
		     "reply:\n%s", r->raw);
	memcpy(date, r->raw + sizeof(OK_HEAD_1) - 1, DATE_LEN);
	date[DATE_LEN] = '\0';
	assert_date_now(date);
	cr_assert_str_eq(r->raw + sizeof(OK_HEAD_1) - 1 + DATE_LEN,
			 OK_HEAD_2 "Hello, World!");
}

static void start_http(struct srv *s, const char *backend)
{
	cr_assert_eq(srv_start_services(s, backend, http_only), 0);
	cr_assert_str_eq(s->backend, backend);
}

static void assert_baseline_and_stop(struct srv *s)
{
	struct srv_stats st;
	int rc;

	cr_assert_eq(srv_wait_idle(s, &st, 10000), 0,
		     "server not back at baseline: conns_open=%llu "
		     "bufs_free=%llu/%llu bufs_heap=%llu bytes_queued=%llu",
		     st.conns_open, st.bufs_free, st.bufs_total, st.bufs_heap,
		     st.bytes_queued);
	rc = srv_stop(s, SIGTERM, 10000);
	cr_assert_eq(rc, 0, "evringd exit status %d; log:\n%s", rc, srv_log(s));
}

/* Send req on a new connection; the reply must have status and Connection:
 * close, and the server must close after it. */
static void expect_closing_reply(struct srv *s, const char *req, size_t len,
				 int status)
{
	struct client *cl = client_open(s, AF_INET);
	struct reply r;
	char v[64];

	cr_assert_eq(write_all(cl->fd, req, len), 0);
	expect_reply(cl, &r, status, false);
	cr_assert_not_null(field(&r, "Connection", v, sizeof(v)),
			   "no Connection field for %.60s", req);
	cr_assert_str_eq(v, "close");
	cr_assert_not_null(field(&r, "Date", v, sizeof(v)));
	expect_eof(cl);
	client_close(cl);
}

/* ---- integration tests ---- */

BACKEND_TEST(http, get_root_exact_reply_ipv4_and_ipv6)
{
	struct srv s;
	struct reply r;

	start_http(&s, backend);
	for (int f = 0; f < 2; f++) {
		struct client *cl = client_open(&s, families[f]);

		client_send(cl, GET_ROOT);
		expect_reply(cl, &r, 200, false);
		assert_hello(&r);
		/* absolute-form and a query name the same resource */
		client_send(cl,
			    "GET http://localhost/ HTTP/1.1\r\n"
			    "Host: localhost\r\n\r\n"
			    "GET /?q=1 HTTP/1.1\r\nHost: localhost\r\n\r\n");
		expect_reply(cl, &r, 200, false);
		assert_hello(&r);
		expect_reply(cl, &r, 200, false);
		assert_hello(&r);
		client_close(cl);
	}
	assert_baseline_and_stop(&s);
}

BACKEND_TEST(http, head_sends_the_fields_without_the_body)
{
	struct srv s;
	struct reply r;
	char v[64];
	struct client *cl;

	start_http(&s, backend);
	cl = client_open(&s, AF_INET6);
	client_send(cl, "HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n");
	expect_reply(cl, &r, 200, true);
	cr_assert_eq(r.len, OK_REPLY_LEN - HELLO_LEN);
	cr_assert_str_eq(field(&r, "Content-Length", v, sizeof(v)), "13");
	cr_assert_str_eq(field(&r, "Content-Type", v, sizeof(v)), "text/plain");
	cr_assert_str_eq(field(&r, "Server", v, sizeof(v)), "evring");
	/* No body went out: the next bytes are the next reply. */
	expect_open(cl);
	client_send(cl, "HEAD /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n");
	expect_reply(cl, &r, 404, true);
	expect_open(cl);
	client_close(cl);
	assert_baseline_and_stop(&s);
}

BACKEND_TEST(http, hundred_pipelined_requests_in_one_send)
{
	enum { N = 100 };
	static char reqs[N * 64];
	struct srv s;
	struct reply r;
	size_t len = 0;

	start_http(&s, backend);
	for (int f = 0; f < 2; f++) {
		struct client *cl = client_open(&s, families[f]);

		/* Three kinds, so that order shows: 200, 404, HEAD 200. */
		len = 0;
		for (int i = 0; i < N; i++) {
			char *o = reqs + len;
			size_t room = sizeof(reqs) - len;

			if (i % 3 == 0)
				strcpy(o, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
			else if (i % 3 == 1)
				snprintf(o, room,
					 "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n",
					 i);
			else
				strcpy(o, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
			len += strlen(o);
		}
		cr_assert_eq(write_all(cl->fd, reqs, len), 0);
		for (int i = 0; i < N; i++) {
			expect_reply(cl, &r, i % 3 == 1 ? 404 : 200,
				     i % 3 == 2);
			if (i % 3 == 0)
				assert_hello(&r);
		}
		expect_open(cl);
		client_close(cl);
	}
	assert_baseline_and_stop(&s);
}

BACKEND_TEST(http, long_pipeline_split_across_receives)
{
	enum { N = 3000 };
	const size_t rlen = OK_REPLY_LEN;
	size_t len = 0, cap = (size_t)N * 64;
	char *reqs = malloc(cap), *in = malloc((size_t)N * rlen);
	struct srv s;
	int fd;

	/* Requests of varying length, so that receive boundaries fall at
	 * every offset of a request. */
	for (int i = 0; i < N; i++)
		len += (size_t)snprintf(reqs + len, cap - len,
					"GET / HTTP/1.1\r\nHost: %.*s\r\n\r\n",
					1 + i % 23, "abcdefghijklmnopqrstuvw");
	start_http(&s, backend);
	fd = tcp_connect(AF_INET, srv_port(&s, "http", AF_INET));
	cr_assert_geq(fd, 0);
	cr_assert_eq(xfer(fd, reqs, len, in, (size_t)N * rlen, false, 30000), 0,
		     "not all replies came back");
	for (int i = 0; i < N; i++) {
		const char *p = in + (size_t)i * rlen;

		cr_assert_eq(memcmp(p, "HTTP/1.1 200 OK\r\n", 17), 0,
			     "reply %d", i);
		cr_assert_eq(
		    memcmp(p + rlen - HELLO_LEN, "Hello, World!", HELLO_LEN), 0,
		    "reply %d", i);
	}
	close(fd);
	free(reqs);
	free(in);
	assert_baseline_and_stop(&s);
}

BACKEND_TEST(http, request_sent_one_byte_per_send)
{
	static const char req[] =
	    "GET / HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n";
	struct srv s;
	struct reply r;
	struct client *cl;

	start_http(&s, backend);
	cl = client_open(&s, AF_INET);
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < sizeof(req) - 1; i++) {
			cr_assert_eq(write_all(cl->fd, req + i, 1), 0);
			usleep(2000); /* one receive per byte, most likely */
		}
		expect_reply(cl, &r, 200, false);
		assert_hello(&r);
	}
	/* The end of one request and the start of the next in one send. */
	client_send(cl, "GET / HTTP/1.1\r\nHo");
	usleep(20000);
	client_send(cl, "st: a\r\n\r\nGET /x HTTP/1.1\r\n");
	usleep(20000);
	client_send(cl, "Host: a\r\n\r\n");
	expect_reply(cl, &r, 200, false);
	expect_reply(cl, &r, 404, false);
	client_close(cl);
	assert_baseline_and_stop(&s);
}

BACKEND_TEST(http, request_cut_off_by_the_client_leaves_nothing)
{
	struct srv s;
	struct client *cl;

	start_http(&s, backend);
	for (int i = 0; i < 2; i++) {
		cl = client_open(&s, AF_INET);
		expect_open(cl);
		client_send(cl, "GET / HTTP/1.1\r\nHost: a\r\nUser-Ag");
		usleep(20000);
		/* a half-close, then a close, with the request unfinished */
		if (i == 0)
			shutdown(cl->fd, SHUT_WR);
		cr_assert_eq(wait_closed(cl->fd, i == 0 ? 3000 : 100), i == 0);
		client_close(cl);
	}
	assert_baseline_and_stop(&s);
}

BACKEND_TEST(http, thousand_sequential_requests_on_one_connection)
{
	struct srv s;
	struct srv_stats st;
	struct reply r;
	struct client *cl;

	start_http(&s, backend);
	cl = client_open(&s, AF_INET6);
	for (int i = 0; i < 1000; i++) {
		client_send(cl, GET_ROOT);
		expect_reply(cl, &r, 200, false);
		cr_assert_eq(r.len, OK_REPLY_LEN);
	}
	client_close(cl);
	cr_assert_eq(srv_wait_idle(&s, &st, 10000), 0);
	cr_assert_eq(st.conns_accepted, 1);
	assert_baseline_and_stop(&s);
}

BACKEND_TEST(http, http10_closes_after_the_reply)
{
	struct srv s;

	start_http(&s, backend);
	static const char one[] = "GET / HTTP/1.0\r\n\r\n";
	/* and a request pipelined behind it is not answered */
	static const char two[] = "GET / HTTP/1.0\r\nHost: a\r\n\r\n"
				  "GET / HTTP/1.0\r\n\r\n";

	expect_closing_reply(&s, one, strlen(one), 200);
	expect_closing_reply(&s, two, strlen(two), 200);
	assert_baseline_and_stop(&s);
}

BACKEND_TEST(http, http10_keep_alive_stays_open)
{
	struct srv s;
	struct reply r;
	char v[64];
	struct client *cl;

	start_http(&s, backend);
	cl = client_open(&s, AF_INET);
	for (int i = 0; i < 3; i++) {
		client_send(cl,
			    "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
		expect_reply(cl, &r, 200, false);
		cr_assert_str_eq(field(&r, "Connection", v, sizeof(v)),
				 "keep-alive");
		cr_assert_str_eq(r.raw + r.len - HELLO_LEN, "Hello, World!");
	}
	expect_open(cl);
	client_close(cl);
	assert_baseline_and_stop(&s);
}

BACKEND_TEST(http, connection_close_closes_after_the_reply)
{
	static const char *const reqs[] = {
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		/* a list, in any case, and a request behind it is ignored */
		"GET / HTTP/1.1\r\nHost: a\r\nconnection: foo, CLOSE\r\n\r\n"
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	};
	static const int status[] = { 200, 200, 404 };
	struct srv s;

	start_http(&s, backend);
	for (size_t i = 0; i < 3; i++)
		expect_closing_reply(&s, reqs[i], strlen(reqs[i]), status[i]);
	assert_baseline_and_stop(&s);
}

BACKEND_TEST(http, other_targets_are_not_found)
{
	static const char *const targets[] = { "/index.html", "//",
					       "/plaintext", "*",
					       "http://a/b" };
	char req[128], v[64];
	struct srv s;
	struct reply r;
	struct client *cl;

	start_http(&s, backend);
	cl = client_open(&s, AF_INET);
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n",
			 targets[i]);
		client_send(cl, req);
		expect_reply(cl, &r, 404, false);
		cr_assert_str_eq(field(&r, "Content-Length", v, sizeof(v)),
				 "10");
		cr_assert_str_eq(r.raw + r.head_len, "Not Found\n");
		cr_assert_null(field(&r, "Connection", v, sizeof(v)));
	}
	expect_open(cl);
	client_close(cl);
	assert_baseline_and_stop(&s);
}

BACKEND_TEST(http, other_methods_are_not_allowed)
{
	static const char *const bodies[] = {
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
		"chunked\r\n\r\n"
		"5\r\nhello\r\n0\r\n\r\n",
	};
	struct srv s;
	struct reply r;
	char v[64];
	struct client *cl;

	start_http(&s, backend);
	/* Without a body the connection stays. */
	cl = client_open(&s, AF_INET6);
	client_send(cl,
		    "POST / HTTP/1.1\r\nHost: a\r\n\r\n"
		    "BREW /pot HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
		    "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
	for (int i = 0; i < 3; i++) {
		expect_reply(cl, &r, 405, false);
		cr_assert_str_eq(field(&r, "Allow", v, sizeof(v)), "GET, HEAD");
		cr_assert_null(field(&r, "Connection", v, sizeof(v)));
		cr_assert_str_eq(r.raw + r.head_len, "Method Not Allowed\n");
	}
	expect_open(cl);
	client_close(cl);
	/* With a body, which is not read, it closes after the reply. */
	for (int i = 0; i < 2; i++)
		expect_closing_reply(&s, bodies[i], strlen(bodies[i]), 405);
	assert_baseline_and_stop(&s);
}

BACKEND_TEST(http, malformed_requests_get_400_then_close)
{
	static const char *const bad[] = {
		"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", /* two spaces */
		"GET /\r\n\r\n",		      /* no version */
		"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", /* trailing space */
		"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",  /* method not a token */
		"GET index.html HTTP/1.1\r\nHost: a\r\n\r\n", /* bad target */
		"GET / HTTP/1.1\r\nHost : a\r\n\r\n", /* space before colon */
		"GET / HTTP/1.1\r\nHost: a\r\nX\t: b\r\n\r\n",	/* tab, too */
		"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", /* obs-fold */
		"GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n",
		"GET / http/1.1\r\nHost: a\r\n\r\n",  /* case of HTTP */
		"GET / HTTP/1.10\r\nHost: a\r\n\r\n", /* version format */
		"GET / HTTP/1\r\nHost: a\r\n\r\n",
		"GET / HTTP/a.b\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n", /* no Host */
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", /* bare CR */
	};
	struct srv s;

	start_http(&s, backend);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_closing_reply(&s, bad[i], strlen(bad[i]), 400);
	/* a NUL in a field value */
	expect_closing_reply(&s, "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 29,
			     400);
	assert_baseline_and_stop(&s);
}

/*
 * Input that cannot be the start of a request gets its 400 as soon as the
 * first impossible byte arrives, without waiting for a line end that may
 * never come: a TLS ClientHello (a record starts with 0x16, not a tchar of
 * a method, RFC 9110 §5.6.2), a NUL, a bad target or version prefix.
 */
BACKEND_TEST(http, invalid_first_bytes_get_400_at_once)
{
	static const struct {
		const char *in;
		size_t len;
	} bad[] = {
#define B(s) { s, sizeof(s) - 1 }
		/* TLS 1.2 record header and the start of a ClientHello */
		B("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
		B("\x00"),
		B("\r\rGET"),
		B("GET\t/"),
		B("GET /a\x01"),
		B("GET index.html "), /* a target without a scheme */
		B("GET \\"),
		B("GET / HTTP/2.0 "),
		B("GET / HTTP/1.1x"),
		B("GET / HTTX"),
#undef B
	};
	struct srv s;
	struct srv_stats st;
	struct client *cl;

	start_http(&s, backend);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_closing_reply(&s, bad[i].in, bad[i].len, 400);
	/* The start of a valid request waits for the rest. */
	cl = client_open(&s, AF_INET);
	client_send(cl, "GET / HTTP/1");
	cr_assert_eq(wait_closed(cl->fd, 300), 0, "closed a valid start");
	cr_assert_eq(srv_stats(&s, &st), 0);
	cr_assert_eq(st.conns_open, 1);
	client_send(cl, ".1\r\nHost: a\r\n\r\n");
	struct reply r;
	expect_reply(cl, &r, 200, false);
	client_close(cl);
	assert_baseline_and_stop(&s);
}

/* A GET / of exactly len bytes, padded with an X-Pad field. */
static char *request_of_len(size_t len)
{
	static const char head[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
	char *p = malloc(len + 1);

	memcpy(p, head, sizeof(head) - 1);
	memset(p + sizeof(head) - 1, 'p', len - (sizeof(head) - 1) - 4);
	memcpy(p + len - 4, "\r\n\r\n", 5);
	return p;
}

/* A GET / with nfields header fields, Host included. */
static char *request_with_fields(int nfields)
{
	char *p = malloc((size_t)nfields * 16 + 64);
	size_t n = (size_t)sprintf(p, "GET / HTTP/1.1\r\nHost: a\r\n");

	for (int i = 1; i < nfields; i++)
		n += (size_t)sprintf(p + n, "X-%d: v\r\n", i);
	strcpy(p + n, "\r\n");
	return p;
}

BACKEND_TEST(http, header_limits_are_8k_and_100_fields)
{
	struct srv s;
	struct reply r;
	struct client *cl;
	char *req;

	start_http(&s, backend);
	/* At the limits: answered, the connection stays. */
	cl = client_open(&s, AF_INET);
	req = request_of_len(EVR__HTTP_HEAD_MAX);
	client_send(cl, req);
	free(req);
	expect_reply(cl, &r, 200, false);
	req = request_with_fields(EVR__HTTP_FIELDS_MAX);
	client_send(cl, req);
	free(req);
	expect_reply(cl, &r, 200, false);
	expect_open(cl);
	client_close(cl);
	/* One byte or one field more: 431, then close. */
	req = request_of_len(EVR__HTTP_HEAD_MAX + 1);
	expect_closing_reply(&s, req, strlen(req), 431);
	free(req);
	req = request_of_len(64 * 1024);
	expect_closing_reply(&s, req, strlen(req), 431);
	free(req);
	req = request_with_fields(EVR__HTTP_FIELDS_MAX + 1);
	expect_closing_reply(&s, req, strlen(req), 431);
	free(req);
	assert_baseline_and_stop(&s);
}

/*
 * RFC 9110 §2.5: a request of a higher minor version than we implement
 * within major version 1 is processed as HTTP/1.1 (and answered as
 * HTTP/1.1); 505 (§15.6.6) is for a major version we do not speak.
 */
BACKEND_TEST(http, higher_1x_versions_are_served_as_11_other_majors_get_505)
{
	static const char *const other_majors[] = {
		"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
		"GET / HTTP/0.9\r\n\r\n",
		"GET / HTTP/3.0\r\n\r\n",
		"GET / HTTP/9.1\r\nHost: a\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", /* the HTTP/2 preface */
	};
	struct srv s;
	struct reply r;
	struct client *cl;

	start_http(&s, backend);
	cl = client_open(&s, AF_INET);
	/* persistent as HTTP/1.1 is, and answered by an HTTP/1.1 server */
	client_send(cl, "GET / HTTP/1.2\r\nHost: a\r\n\r\n"
			"HEAD / HTTP/1.9\r\nHost: a\r\n\r\n"
			"GET /x HTTP/1.5\r\nHost: a\r\n\r\n");
	expect_reply(cl, &r, 200, false);
	assert_hello(&r);
	expect_reply(cl, &r, 200, true);
	expect_reply(cl, &r, 404, false);
	expect_open(cl);
	client_close(cl);
	/* HTTP/1.1 rules apply: Host is required */
	expect_closing_reply(&s, "GET / HTTP/1.2\r\n\r\n", 19, 400);
	for (size_t i = 0; i < sizeof(other_majors) / sizeof(*other_majors);
	     i++)
		expect_closing_reply(&s, other_majors[i],
				     strlen(other_majors[i]), 505);
	assert_baseline_and_stop(&s);
}

BACKEND_TEST(http, drain_closes_idle_and_finishes_a_started_request)
{
	struct srv s;
	struct reply r;
	struct client *idle, *busy;
	uint16_t port;
	char v[64];

	start_http(&s, backend);
	port = srv_port(&s, "http", AF_INET);
	idle = client_open(&s, AF_INET);
	busy = client_open(&s, AF_INET6);
	expect_open(idle);
	expect_open(busy);
	client_send(busy, "GET / HTTP/1.1\r\nHost:");
	usleep(50000);
	cr_assert_eq(kill(s.pid, SIGTERM), 0);
	/* The idle connection closes at once ... */
	cr_assert_eq(wait_closed(idle->fd, 3000), 1);
	/* (every loop drains: the busy connection may be on another loop
	 * than the idle one; once no loop listens, each has heard) */
	for (int i = 0; i < 1000 && listen_count(port) > 0; i++)
		usleep(10000);
	cr_assert_eq(listen_count(port), 0, "a loop still listens");
	/* ... the other gets its reply, with Connection: close. */
	client_send(busy, " a\r\n\r\n");
	expect_reply(busy, &r, 200, false);
	cr_assert_str_eq(field(&r, "Connection", v, sizeof(v)), "close");
	expect_eof(busy);
	client_close(idle);
	client_close(busy);
	/* The drain ends when the last connection has closed: exit 0 with
	 * no second signal (0 only waits). */
	cr_assert_eq(srv_stop(&s, 0, 10000), 0, "log:\n%s", srv_log(&s));
}

/* evringd serving http on both loopbacks with extra arguments. */
static void start_http_with(struct srv *s, const char *backend, const char *opt)
{
	const char *argv[] = { "-b",	     "127.0.0.1", "-b", "::1", "-s",
			       "http/tcp:0", "-o",	  opt,	NULL };

	cr_assert_eq(srv_start(s, backend, 2, argv), 0);
	cr_assert_str_eq(s->backend, backend);
}

/*
 * Slowloris: a client that sends a byte of its request head every 200 ms
 * never lets the idle timeout fire. The whole head must arrive within
 * header_timeout of its first byte (here 1 s); then the server answers 408
 * (RFC 9110 §15.5.9) with Connection: close, closes, and says why in its
 * log. The hang guard is 15 s; the close may not come before the deadline.
 */
BACKEND_TEST(http, dribbled_request_head_gets_408_at_the_head_deadline)
{
	static const char head[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ";
	struct srv s;
	struct reply r;
	struct client *cl;
	char v[64];
	int64_t t0;
	int sent = 0;

	start_http_with(&s, backend, "http.header_timeout=1s");
	cl = client_open(&s, AF_INET);
	/* a persistent connection waits between requests without limit */
	expect_open(cl);
	usleep(1500 * 1000);
	expect_open(cl);
	t0 = now_ms();
	client_send(cl, head);
	while (now_ms() - t0 < 15000) {
		struct pollfd pfd = { .fd = cl->fd, .events = POLLIN };

		if (poll(&pfd, 1, 200) != 0)
			break;
		if (send(cl->fd, "s", 1, MSG_NOSIGNAL) == 1)
			sent++;
	}
	expect_reply(cl, &r, 408, false);
	cr_assert_geq(now_ms() - t0, 950,
		      "408 after %lld ms, before the "
		      "deadline",
		      (long long)(now_ms() - t0));
	cr_assert_gt(sent, 0, "the client did not dribble");
	cr_assert_str_eq(field(&r, "Connection", v, sizeof(v)), "close");
	cr_assert_str_eq(r.raw + r.head_len, "Request Timeout\n");
	expect_eof(cl);
	client_close(cl);
	cr_assert(srv_log_has(&s, "request head not complete within 1000 ms"),
		  "log:\n%s", srv_log(&s));
	assert_baseline_and_stop(&s);
}

Test(http, header_timeout_is_a_listed_option_with_a_checked_value)
{
	const char *help[] = { evringd_path(), "--help", NULL };
	const char *bad[] = { evringd_path(),
			      "-s",
			      "http/tcp:0",
			      "-o",
			      "http.header_timeout=soon",
			      NULL };
	char out[16384];

	cr_assert_eq(run_capture(help, out, sizeof(out), 10000), 0);
	cr_assert(strstr(out, "header_timeout"), "%s", out);
	cr_assert_eq(run_capture(bad, out, sizeof(out), 10000), 2, "%s", out);
	cr_assert(strstr(out, "header_timeout"), "%s", out);
}

/* ---- the parser, alone ---- */

static int parse(const char *p, size_t n)
{
	struct evr__http_req req;

	return evr__http_parse(p, n, &req);
}

Test(http_parse, every_split_of_a_pipeline)
{
	static const char in[] = "\r\nGET /a?b HTTP/1.1\r\nHost: x\r\n"
				 "Connection: keep-alive, close\r\n\r\n"
				 "HEAD / HTTP/1.0\nUser-Agent: t\n\n";
	const size_t first = strlen(in) - strlen(strstr(in, "HEAD"));
	struct evr__http_req req;
	size_t n = sizeof(in) - 1;

	for (size_t k = 0; k < first; k++)
		cr_assert_eq(parse(in, k), 0, "split at %zu", k);
	for (size_t k = first; k <= n; k++)
		cr_assert_eq(parse(in, k), (int)first, "split at %zu", k);
	cr_assert_eq(evr__http_parse(in, n, &req), (int)first);
	cr_assert_eq(req.method, EVR__HTTP_GET);
	cr_assert_eq(req.minor, 1);
	cr_assert_eq(req.nfields, 2);
	cr_assert_eq(req.flags, EVR__HTTP_CLOSE | EVR__HTTP_KEEP_ALIVE);
	cr_assert_eq(req.path_len, 2);
	cr_assert_eq(memcmp(req.path, "/a", 2), 0);
	cr_assert_eq(req.target_len, 4);
	/* The second request, in place, with bare LF line ends. */
	for (size_t k = first; k < n; k++)
		cr_assert_eq(parse(in + first, k - first), 0, "split at %zu",
			     k);
	cr_assert_eq(evr__http_parse(in + first, n - first, &req),
		     (int)(n - first));
	cr_assert_eq(req.method, EVR__HTTP_HEAD);
	cr_assert_eq(req.minor, 0);
	cr_assert_eq(req.flags, 0);
}

#define WHOLE 1 /* the whole input is one complete request */

Test(http_parse, errors_and_limits)
{
	static const struct {
		const char *in;
		int want;
	} cases[] = {
		{ "GET / HTTP/1.1\r\nHost: a\r\n\r\n", WHOLE },
		{ "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		  WHOLE },
		{ "GET / HTTP/2.0\r\n", -505 },
		{ "GET / HTTP/0.9\r\n", -505 },
		{ "GET / HTTP/1.2\r\nHost: a\r\n\r\n", WHOLE },
		{ "GET / HTTP/1.9\r\n\r\n", -400 }, /* as 1.1: no Host */
		{ "GET / HTTP/1.1\r\nHost: a\r\nA : b\r\n", -400 },
		{ "GET /\r\n", -400 },
		{ "GET / HTTP/1.1\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n"
		  "Content-Length: 3\r\n\r\n",
		  -400 },
		{ "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
		  "Content-Length: 1\r\n\r\n",
		  WHOLE },
		{ "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: "
		  "99999999999999999999\r\n\r\n",
		  -400 },
		{ "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", -400 },
		{ "GET ftp://h HTTP/1.1\r\nHost: a\r\n\r\n", WHOLE },
		{ "GET 1ftp://h HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "GET *x HTTP/1.1\r\nHost: a\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n Host: a\r\n\r\n", -400 },
	};
	struct evr__http_req req;
	char *big;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].in);
		int want = cases[i].want == WHOLE ? (int)n : cases[i].want;

		cr_assert_eq(parse(cases[i].in, n), want, "case %zu: %s", i,
			     cases[i].in);
	}
	cr_assert_gt(evr__http_parse("GET http://h:80?x HTTP/1.1\r\n"
				     "Host: a\r\n\r\n",
				     39, &req),
		     0);
	cr_assert_eq(req.path_len, 1);
	cr_assert_eq(req.path[0], '/');
	cr_assert_eq(
	    evr__http_parse("GET / HTTP/1.7\r\nHost: a\r\n\r\n", 27, &req), 27);
	cr_assert_eq(req.minor, 1, "HTTP/1.7 is parsed as HTTP/1.1");
	/* 8 KiB without an end: 431, not "more" */
	big = malloc(EVR__HTTP_HEAD_MAX + 1);
	memset(big, 'a', EVR__HTTP_HEAD_MAX + 1);
	cr_assert_eq(parse(big, EVR__HTTP_HEAD_MAX - 1), 0);
	cr_assert_eq(parse(big, EVR__HTTP_HEAD_MAX), -431);
	cr_assert_eq(parse(big, EVR__HTTP_HEAD_MAX + 1), -431);
	free(big);
}

/*
 * A request line that no ending can make valid is -400 from its first
 * impossible byte on: every shorter prefix is 0 (more is needed), every
 * longer one -400, exactly what the whole line gets.
 */
Test(http_parse, invalid_request_line_fails_at_its_first_bad_byte)
{
	static const struct {
		const char *in; /* the whole input, a line end included */
		size_t len;
		size_t bad; /* index of the first impossible byte */
	} cases[] = {
#define C(s, bad) { s, sizeof(s) - 1, bad }
		C("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n", 0),
		C("\r\n\r\n\x16\x03\x01\r\n", 4),
		C("\rX / HTTP/1.1\r\n", 1),
		C(" GET / HTTP/1.1\r\n", 0),
		C("GET  / HTTP/1.1\r\n", 4),
		C("GET /\x7f HTTP/1.1\r\n", 5),
		C("GET index.html HTTP/1.1\r\n", 14),
		C("GET 1http://a/ HTTP/1.1\r\n", 4),
		C("GET *x HTTP/1.1\r\n", 5),
		C("GET * x HTTP/1.1\r\n", 6),
		C("GET / http/1.1\r\n", 6),
		C("GET / HTTP/1.1 \r\n", 14),
		C("GET / HTTP/1.1\rx\r\n", 15),
		C("GET / HTTP/11.1\r\n", 12),
#undef C
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (size_t k = 0; k <= cases[i].len; k++)
			cr_assert_eq(parse(cases[i].in, k),
				     k <= cases[i].bad ? 0 : -400,
				     "case %zu, %zu bytes: %d", i, k,
				     parse(cases[i].in, k));
}

#define HEAD_LINES "GET / HTTP/1.1\r\nHost: a\r\n"

/* The request tmpl with its one '?' replaced by byte c, parsed. */
static int parse_with_byte(const char *tmpl, int c)
{
	char in[64];
	size_t n = strlen(tmpl);

	memcpy(in, tmpl, n);
	in[strchr(tmpl, '?') - tmpl] = (char)c;
	return parse(in, n);
}

/* Byte by byte: RFC 9110 §5.6.2 tchar in a method and a field name, §5.5
 * field-vchar, SP and HTAB in a field value. */
Test(http_parse, token_and_field_value_characters)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "abcdefghijklmnopqrstuvwxyz";

	for (int c = 0; c < 256; c++) {
		bool is_t = c && strchr(tchar, c);
		bool is_v = c == '\t' || (c >= 0x20 && c != 0x7f);
		int r;

		r = parse_with_byte("M? / HTTP/1.1\r\nHost: a\r\n\r\n", c);
		cr_assert_eq(r > 0, is_t, "method byte 0x%02x: %d", c, r);
		/* "X:: v" is the field X with the value ": v" */
		r = parse_with_byte(HEAD_LINES "X?: v\r\n\r\n", c);
		cr_assert_eq(r > 0, is_t || c == ':', "name byte 0x%02x: %d", c,
			     r);
		r = parse_with_byte(HEAD_LINES "X: a?b\r\n\r\n", c);
		cr_assert_eq(r > 0, is_v, "value byte 0x%02x: %d", c, r);
		if (r <= 0)
			cr_assert_eq(r, -400);
	}
}
