/* SPDX-License-Identifier: MIT */
/*
 * installed_echo.c - a program built the way a user of the installed
 * library builds one: copied out of the tree and compiled with nothing
 * but `pkg-config --cflags --libs evring` (tests/test_deploy.c).
 *
 * It serves the built-in echo module on 127.0.0.1 (an ephemeral port),
 * connects to it through a connector of its own, sends one line and
 * checks that the same bytes come back. Prints "echo ok", the library's
 * and the headers' versions and the backend, and exits 0; 1 on any
 * failure, with the reason.
 */
#include <evring.h>
#include <evring/modules.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char msg[] = "hello from outside the tree\n";
static char got[sizeof(msg)];
static size_t ngot;
static int result = 1;

static void client_connect(struct evr_conn *c)
{
	if (evr_send_copy(c, msg, sizeof(msg) - 1) < 0)
		evr_abort(c, -ENOMEM);
}

static void client_data(struct evr_conn *c, struct evr_buf *b)
{
	size_t n = b->len;

	if (n > sizeof(got) - 1 - ngot)
		n = sizeof(got) - 1 - ngot;
	memcpy(got + ngot, b->data, n);
	ngot += n;
	if (ngot == sizeof(msg) - 1) {
		result = memcmp(got, msg, ngot) != 0;
		evr_loop_stop(evr_conn_loop(c));
	}
}

static void client_close(struct evr_conn *c, int err)
{
	if (result)
		fprintf(stderr, "installed_echo: connection closed: %s\n",
			strerror(-err));
	evr_loop_stop(evr_conn_loop(c));
}

static const struct evr_proto client = {
	.name = "client",
	.on_connect = client_connect,
	.on_data = client_data,
	.on_close = client_close,
};

/* A hang guard: the exchange takes milliseconds. */
static struct evr_loop *loop;
static void expired(struct evr_timer *t)
{
	(void)t;
	fprintf(stderr, "installed_echo: no echo within 10 s\n");
	evr_loop_stop(loop);
}

int main(void)
{
	struct evr_listen_cfg scfg = { .proto = &evr_proto_echo };
	struct evr_listen_cfg ccfg = { .proto = &client };
	struct sockaddr_storage ss;
	struct evr_listener *ls;
	struct evr_connector *cn;
	struct evr_conn *c;
	struct evr_timer guard;
	const char *backend;
	socklen_t len;
	int err;

	if (evr_version() != EVR_VERSION_NUM ||
	    strcmp(evr_version_string(), EVR_VERSION)) {
		fprintf(stderr, "installed_echo: library %s, headers %s\n",
			evr_version_string(), EVR_VERSION);
		return 1;
	}
	err = evr_loop_new(&loop, NULL);
	if (err < 0)
		return 1;
	evr_addr_parse("127.0.0.1", 0, &ss, &len);
	err = evr_listen(loop, (struct sockaddr *)&ss, len, &scfg, &ls);
	if (!err)
		err = evr_listener_addr(ls, &ss, &len);
	if (!err)
		err = evr_connector_new(loop, &ccfg, &cn);
	if (!err)
		err = evr_connect(cn, (struct sockaddr *)&ss, len, NULL, 0, &c);
	if (err < 0) {
		fprintf(stderr, "installed_echo: %s\n", strerror(-err));
		return 1;
	}
	evr_timer_init(&guard, expired);
	evr_timer_start(loop, &guard, 10000);
	evr_loop_run(loop);
	backend = evr_loop_backend(loop);
	evr_connector_free(cn);
	if (!result)
		printf("echo ok, libevring %s (headers %s), backend %s\n",
		       evr_version_string(), EVR_VERSION, backend);
	evr_loop_free(loop);
	return result;
}
