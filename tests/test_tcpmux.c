/* SPDX-License-Identifier: MIT */
/*
 * test_tcpmux.c - the tcpmux module (RFC 1078) over real sockets, both
 * backends, in a loop of the test process whose receive buffers are 64
 * bytes, so that names and what follows them cross buffers. Two services:
 * "Upper" (with "+", answered by the module) and "quiet" (without: the
 * service answers); each takes the connection by sending back the bytes
 * that followed the name line in the same buffer, in brackets, then
 * closing.
 */
#include "harness.h"
#include "loopsrv.h"
#include "evring/tcpmux.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int take(struct evr_conn *c, struct evr_buf *b, size_t off, void *arg)
{
	evr_sendf(c, "%s[%.*s]", (const char *)arg, (int)(b->len - off),
		  b->data + off);
	evr_close(c);
	return 0;
}

static void start(struct server *s, const char *backend, const char *timeout)
{
	memset(s, 0, sizeof(*s));
	evr_loop_opts_init(&s->o);
	s->o.buf_size = 64;
	s->proto = &evr_proto_tcpmux;
	s->conf = calloc(1, evr_proto_tcpmux.conf_size);
	cr_assert_eq(evr_proto_tcpmux.conf_init(s->conf), 0);
	if (timeout)
		cr_assert_eq(
		    evr_proto_tcpmux.conf_set(s->conf, "timeout", timeout), 0);
	cr_assert_eq(evr_tcpmux_add(s->conf, "Upper", true, take, "U"), 0);
	cr_assert_eq(evr_tcpmux_add(s->conf, "quiet", false, take, "+Q"), 0);
	server_start(s, backend);
}

static void stop(struct server *s)
{
	server_wait_idle(s);
	server_stop(s);
	evr_proto_tcpmux.conf_fini(s->conf);
	free(s->conf);
}

/* Send the pieces (with a pause between them), then read to EOF. */
static void ask(struct server *s, const char *const *pieces, char *out,
		size_t cap)
{
	int fd = tcp_connect(AF_INET, s->port);
	ssize_t n;

	cr_assert_geq(fd, 0);
	for (; *pieces; pieces++) {
		cr_assert_eq(write_all(fd, *pieces, strlen(*pieces)), 0);
		if (pieces[1])
			usleep(30 * 1000);
	}
	n = read_to_eof(fd, out, cap - 1);
	close(fd);
	cr_assert_geq(n, 0);
	out[n] = '\0';
	cr_assert_eq(strlen(out), (size_t)n, "a NUL byte in the reply");
}

BACKEND_TEST(tcpmux, help_lists_the_services_in_any_case)
{
	const char *const req[] = { "hElP\r\n", NULL };
	struct server s;
	char out[256];

	start(&s, backend, NULL);
	ask(&s, req, out, sizeof(out));
	cr_assert_str_eq(out, "Upper\r\nquiet\r\n");
	stop(&s);
}

BACKEND_TEST(tcpmux, plus_service_gets_go_then_the_bytes_after_the_name)
{
	const char *const req[] = { "UPPER\r\nhello", NULL };
	struct server s;
	char out[256];

	start(&s, backend, NULL);
	ask(&s, req, out, sizeof(out));
	cr_assert_str_eq(out, "+Go\r\nU[hello]");
	stop(&s);
}

BACKEND_TEST(tcpmux, service_without_plus_answers_for_itself)
{
	const char *const req[] = { "quiet\n", NULL };
	struct server s;
	char out[256];

	start(&s, backend, NULL);
	ask(&s, req, out, sizeof(out));
	cr_assert_str_eq(out, "+Q[]");
	stop(&s);
}

BACKEND_TEST(tcpmux, name_split_across_reads_and_buffers_is_assembled)
{
	const char *const req[] = { "u", "pP", "e", "r", "\r", "\nab", NULL };
	const char *const lf[] = { "qui", "et\nxyz", NULL };
	struct server s;
	char out[256];

	start(&s, backend, NULL);
	ask(&s, req, out, sizeof(out));
	cr_assert_str_eq(out, "+Go\r\nU[ab]");
	ask(&s, lf, out, sizeof(out));
	cr_assert_str_eq(out, "+Q[xyz]");
	stop(&s);
}

BACKEND_TEST(tcpmux, unknown_name_is_refused_with_a_minus)
{
	const char *const req[] = { "finger\r\n", NULL };
	const char *const empty[] = { "\r\n", NULL };
	struct server s;
	char out[256];

	start(&s, backend, NULL);
	ask(&s, req, out, sizeof(out));
	cr_assert_str_eq(out, "-Service not available\r\n");
	ask(&s, empty, out, sizeof(out));
	cr_assert_str_eq(out, "-Service not available\r\n");
	stop(&s);
}

BACKEND_TEST(tcpmux, name_line_has_a_deadline_and_a_length_limit)
{
	const char *const slow[] = { "Upp", NULL };
	char lng[200];
	const char *const longname[] = { lng, NULL };
	struct server s;
	char out[256];
	int64_t t0;

	memset(lng, 'a', sizeof(lng) - 1);
	lng[sizeof(lng) - 1] = '\0';
	start(&s, backend, "300ms");
	t0 = now_ms();
	ask(&s, slow, out, sizeof(out)); /* never ends its line */
	cr_assert_str_eq(out, "-Timeout: no service name\r\n");
	cr_assert_geq(now_ms() - t0, 250);
	ask(&s, longname, out, sizeof(out));
	cr_assert_str_eq(out, "-Service name too long\r\n");
	stop(&s);
}

Test(tcpmux, add_refuses_bad_and_duplicate_names)
{
	void *conf = calloc(1, evr_proto_tcpmux.conf_size);

	evr_proto_tcpmux.conf_init(conf);
	cr_assert_eq(evr_tcpmux_add(conf, "a", false, take, NULL), 0);
	cr_assert_eq(evr_tcpmux_add(conf, "A", false, take, NULL), -EEXIST);
	cr_assert_eq(evr_tcpmux_add(conf, "help", false, take, NULL), -EINVAL);
	cr_assert_eq(evr_tcpmux_add(conf, "a b", false, take, NULL), -EINVAL);
	cr_assert_eq(evr_tcpmux_add(conf, "", false, take, NULL), -EINVAL);
	cr_assert_eq(evr_proto_tcpmux.conf_set(conf, "timeout", "0"), -EINVAL);
	cr_assert_eq(evr_proto_tcpmux.conf_set(conf, "bogus", "1"), -ENOENT);
	evr_proto_tcpmux.conf_fini(conf);
	free(conf);
}
