/* SPDX-License-Identifier: MIT */
/*
 * uv_echo.c - benchmark peer: a libuv TCP echo server (RFC 862).
 *
 *	uv_echo [-b ADDR] -p PORT
 *
 * Written the way libuv's own guide and benchmarks write it: the default
 * loop, uv_read_start() with an alloc callback that mallocs the suggested
 * size (64 KiB), and each read passed whole to uv_write(), whose request
 * frees the buffer when the write completes. On EOF uv_shutdown() waits
 * for the queued writes, then the handle is closed. Like those examples,
 * it never stops reading while writes are queued.
 *
 * Prints "listen echo tcp ADDR:PORT libuv" once listening. SIGINT or
 * SIGTERM (uv_signal) closes every handle and exits 0; an error exits 1,
 * bad usage 2. On Unix libuv's error codes are negated errno values, so
 * strerror(-err) gives the usual text.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#define PEER_PROG "uv_echo"
#include "peer.h"

struct server {
	uv_tcp_t tcp;
	uv_signal_t sigint, sigterm;
};

/* A write request owns the buffer it sends. */
struct write_req {
	uv_write_t req;
	uv_buf_t buf;
};

static void on_close(uv_handle_t *h)
{
	free(h);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	buf->base = malloc(suggested);
	buf->len = buf->base ? suggested : 0; /* 0: on_read gets UV_ENOBUFS */
}

static void on_write(uv_write_t *req, int status)
{
	struct write_req *wr = (struct write_req *)req;
	uv_handle_t *h = (uv_handle_t *)req->handle;

	free(wr->buf.base);
	free(wr);
	/* UV_ECANCELED: the handle is already closing. */
	if (status < 0 && !uv_is_closing(h))
		uv_close(h, on_close);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	uv_handle_t *h = (uv_handle_t *)req->handle;

	(void)status;
	if (!uv_is_closing(h))
		uv_close(h, on_close);
	free(req);
}

static void on_read(uv_stream_t *client, ssize_t nread, const uv_buf_t *buf)
{
	struct write_req *wr;
	uv_shutdown_t *sr;

	if (nread > 0) {
		wr = malloc(sizeof(*wr));
		if (!wr)
			goto out_close;
		wr->buf = uv_buf_init(buf->base, (unsigned int)nread);
		if (uv_write(&wr->req, client, &wr->buf, 1, on_write) == 0)
			return;
		free(wr);
		goto out_close;
	}
	free(buf->base);
	if (nread == 0) /* EAGAIN */
		return;
	if (nread == UV_EOF) {
		/* Everything received goes back before the close. */
		sr = malloc(sizeof(*sr));
		if (sr && uv_shutdown(sr, client, on_shutdown) == 0)
			return;
		free(sr);
	}
	uv_close((uv_handle_t *)client, on_close);
	return;

out_close:
	free(buf->base);
	uv_close((uv_handle_t *)client, on_close);
}

static void on_connection(uv_stream_t *server, int status)
{
	uv_tcp_t *client;

	if (status < 0) {
		/* libuv sheds load itself on EMFILE: no busy loop. */
		fprintf(stderr, "%s: accept: %s\n", PEER_PROG,
			strerror(-status));
		return;
	}
	client = malloc(sizeof(*client));
	if (!client) {
		fprintf(stderr, "%s: malloc: %s\n", PEER_PROG,
			strerror(ENOMEM));
		return;
	}
	uv_tcp_init(server->loop, client);
	if (uv_accept(server, (uv_stream_t *)client) == 0)
		uv_read_start((uv_stream_t *)client, on_alloc, on_read);
	else
		uv_close((uv_handle_t *)client, on_close);
}

/* Connections are heap handles; the listener and signals are not. */
static void close_walk(uv_handle_t *h, void *arg)
{
	struct server *s = arg;

	if (uv_is_closing(h))
		return;
	if (h->type == UV_TCP && h != (uv_handle_t *)&s->tcp)
		uv_close(h, on_close);
	else
		uv_close(h, NULL);
}

/* Closing every handle lets uv_run() return. */
static void on_signal(uv_signal_t *h, int signum)
{
	(void)signum;
	uv_walk(h->loop, close_walk, h->data);
}

/*
 * Linux copies TCP_NODELAY from the listener to every accepted socket, so
 * setting it here covers all connections without a setsockopt per accept.
 * libuv reports bind's EADDRINUSE from uv_listen().
 */
static int server_listen(struct server *s, struct sockaddr_storage *ss)
{
	int len = sizeof(*ss);
	int err;

	err = uv_tcp_bind(&s->tcp, (struct sockaddr *)ss, 0);
	if (err < 0)
		return peer_sock_error("uv_tcp_bind", ss, -err);
	err = uv_tcp_nodelay(&s->tcp, 1);
	if (err < 0)
		return peer_sock_error("uv_tcp_nodelay", ss, -err);
	err = uv_listen((uv_stream_t *)&s->tcp, PEER_BACKLOG, on_connection);
	if (err < 0)
		return peer_sock_error("uv_listen", ss, -err);
	err = uv_tcp_getsockname(&s->tcp, (struct sockaddr *)ss, &len);
	if (err < 0)
		return peer_sock_error("uv_tcp_getsockname", ss, -err);
	return 0;
}

static int signals_start(uv_loop_t *loop, struct server *s)
{
	int err;

	s->sigint.data = s->sigterm.data = s;
	err = uv_signal_init(loop, &s->sigint);
	if (!err)
		err = uv_signal_start(&s->sigint, on_signal, SIGINT);
	if (!err)
		err = uv_signal_init(loop, &s->sigterm);
	if (!err)
		err = uv_signal_start(&s->sigterm, on_signal, SIGTERM);
	if (err < 0)
		fprintf(stderr, "%s: uv_signal_start: %s\n", PEER_PROG,
			strerror(-err));
	return err;
}

int main(int argc, char **argv)
{
	uv_loop_t *loop = uv_default_loop();
	struct sockaddr_storage ss;
	char a[PEER_ADDRSTR];
	struct server s;
	socklen_t len;
	int err;

	if (peer_parse_args(argc, argv, &ss, &len) < 0)
		return PEER_EXIT_USAGE;
	signal(SIGPIPE, SIG_IGN);
	peer_raise_nofile();
	if (!loop) {
		fprintf(stderr, "%s: uv_default_loop: failed\n", PEER_PROG);
		return 1;
	}
	uv_tcp_init(loop, &s.tcp);
	err = signals_start(loop, &s);
	if (!err)
		err = server_listen(&s, &ss);
	if (!err) {
		printf("listen echo tcp %s libuv\n",
		       peer_addr_str(&ss, a, sizeof(a)));
		fflush(stdout);
	} else {
		uv_walk(loop, close_walk, &s);
	}
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	return err < 0 ? 1 : 0;
}
