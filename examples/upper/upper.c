/* SPDX-License-Identifier: MIT */
/*
 * upper.c - a custom server on libevring: echoes what it receives in upper
 * case. The smallest complete program that defines its own module.
 *
 *	build/examples/upper [PORT]      (default 9000, on 127.0.0.1 and ::1)
 *	printf 'hello\n' | nc -q1 127.0.0.1 9000
 *
 * Runs on io_uring (kernel 6.0+) or epoll (EVRING_BACKEND=epoll).
 */
#include "evring.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The received buffer is ours for the call: change it in place and send
 * the very same buffer back (evr_send takes its own reference). */
static void upper_data(struct evr_conn *c, struct evr_buf *b)
{
	for (uint32_t i = 0; i < b->len; i++)
		b->data[i] = (char)toupper((unsigned char)b->data[i]);
	if (evr_send(c, b) < 0)
		evr_abort(c, -ENOMEM);
}

static const struct evr_proto upper_proto = {
	.name = "upper",
	.summary = "echoes in upper case",
	.on_data = upper_data,
};

static void on_signal(struct evr_loop *l, int signo, void *arg)
{
	(void)signo, (void)arg;
	evr_loop_stop(l);
}

int main(int argc, char **argv)
{
	const char *hosts[] = { "127.0.0.1", "::1" };
	uint16_t port = argc > 1 ? (uint16_t)atoi(argv[1]) : 9000;
	struct evr_listen_cfg cfg = { .proto = &upper_proto };
	struct evr_loop *loop;
	int err;

	evr_log_set_ident("upper");
	err = evr_loop_new(&loop, NULL);
	if (err < 0)
		return 1;
	evr_signal_add(loop, SIGINT, on_signal, NULL);
	evr_signal_add(loop, SIGTERM, on_signal, NULL);
	for (int i = 0; i < 2; i++) {
		struct sockaddr_storage ss;
		struct evr_listener *ls;
		char a[EVR_ADDRSTRLEN];
		socklen_t len;

		evr_addr_parse(hosts[i], port, &ss, &len);
		evr_addr_str((struct sockaddr *)&ss, a, sizeof(a));
		err = evr_listen(loop, (struct sockaddr *)&ss, len, &cfg, &ls);
		if (err < 0) {
			fprintf(stderr, "upper: bind %s: %s\n", a,
				strerror(-err));
			evr_loop_free(loop);
			return 1;
		}
		printf("upper: listening on %s (%s)\n", a,
		       evr_loop_backend(loop));
	}
	fflush(stdout);
	err = evr_loop_run(loop);
	evr_loop_free(loop);
	return err < 0;
}
