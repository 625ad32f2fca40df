/* SPDX-License-Identifier: MIT */
/*
 * everycore.c - a custom server on a loop group: a loop per CPU, each with
 * its own socket (SO_REUSEPORT: the kernel spreads the clients); greets
 * with the serving loop's number, echoes in upper case; SIGINT or SIGTERM
 * drains every loop, then prints what each accepted.
 *
 *	build/examples/everycore [PORT]      (default 9001, 127.0.0.1)
 */
#include "evring.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hello(struct evr_conn *c)
{
	return evr_sendf(c, "loop %u\r\n", evr_loop_index(evr_conn_loop(c)));
}

static void upper(struct evr_conn *c, struct evr_buf *b)
{
	for (uint32_t i = 0; i < b->len; i++)
		b->data[i] = (char)toupper((unsigned char)b->data[i]);
	if (evr_send(c, b) < 0)
		evr_abort(c, -ENOMEM);
}

static const struct evr_proto everycore = {
	.name = "everycore",
	.on_accept = hello,
	.on_data = upper,
};

/* Signals reach loop 0's thread; the drain reaches every loop. */
static void on_signal(struct evr_loop *l, int signo, void *arg)
{
	(void)signo, (void)arg;
	evr_group_drain(evr_loop_group(l), 5000);
}

/* On each loop's own thread, loop 0 first: it binds (port 0 resolved),
 * the others bind the same address, each a socket of its own. */
static int setup(struct evr_loop *l, unsigned index, void *arg)
{
	struct sockaddr_storage *ss = arg;
	struct evr_listen_cfg cfg = { .proto = &everycore, .reuseport = true };
	struct evr_listener *ls;
	socklen_t len = sizeof(*ss);
	int err = evr_listen(l, (struct sockaddr *)ss, len, &cfg, &ls);

	if (err < 0 || index > 0)
		return err;
	evr_listener_addr(ls, ss, &len);
	evr_signal_add(l, SIGINT, on_signal, NULL);
	return evr_signal_add(l, SIGTERM, on_signal, NULL);
}

static void report(const struct evr_stats *per_loop, unsigned n,
		   const struct evr_stats *total, void *arg)
{
	for (unsigned i = 0; i < n; i++)
		printf("loop %u: %llu connections\n", i,
		       (unsigned long long)per_loop[i].conns_accepted);
	printf("total: %llu\n", (unsigned long long)total->conns_accepted);
	(void)arg;
}

int main(int argc, char **argv)
{
	uint16_t port = argc > 1 ? (uint16_t)strtoul(argv[1], 0, 10) : 9001;
	struct sockaddr_storage ss;
	struct evr_group_opts o;
	struct evr_group *g;
	char a[EVR_ADDRSTRLEN];
	socklen_t len;
	int err;

	evr_addr_parse("127.0.0.1", port, &ss, &len);
	evr_group_opts_init(&o); /* threads 0: one loop per CPU */
	o.setup = setup;
	o.arg = &ss;
	err = evr_group_start(&g, &o);
	if (err < 0) {
		fprintf(stderr, "everycore: %s\n", strerror(-err));
		return 1;
	}
	printf("listen everycore tcp %s %s (%u loops)\n",
	       evr_addr_str((struct sockaddr *)&ss, a, sizeof(a)),
	       evr_loop_backend(evr_group_loop(g, 0)), evr_group_size(g));
	fflush(stdout);
	err = evr_group_run(g);
	evr_group_stats(g, NULL, report, NULL); /* what each loop counted */
	evr_group_free(g);
	return err < 0;
}
