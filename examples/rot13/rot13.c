/* SPDX-License-Identifier: MIT */
/*
 * rot13.c - a module evringd loads from a shared object: answers each
 * line with its ROT13 (letters turned by 13 places, the rest as it is),
 * with a counter per connection and one option.
 *
 *	make examples			# build/examples/rot13.so
 *	build/evringd --module build/examples/rot13.so -s rot13/tcp:9013
 *	printf 'Hello\n' | nc -q1 127.0.0.1 9013
 *	1 Uryyb
 *
 * or, in evringd.conf(5):
 *
 *	#@ module=/usr/local/lib/evring/rot13.so
 *	#@ max_conns=100 numbered=no
 *	9013 stream tcp nowait nobody rot13
 *
 * It is built with -shared -fPIC and links against nothing: the evr_
 * functions it calls are evringd's own, resolved when evringd loads it.
 * EVR_MODULE_EXPORT at the end is what evringd looks for; it carries the
 * module ABI the module was built for, which evringd checks first.
 */
#include "evring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct rot13_conf {
	bool numbered; /* "3 Uryyb": the line's number first */
};

struct rot13_conn {
	uint64_t lines;
	size_t len; /* bytes of the line gathered so far */
	char line[512];
};

static int rot13_conf_init(void *p)
{
	struct rot13_conf *cf = p;

	cf->numbered = true;
	return 0;
}

static int rot13_conf_set(void *p, const char *key, const char *value)
{
	struct rot13_conf *cf = p;

	if (strcmp(key, "numbered"))
		return -ENOENT;
	if (!strcmp(value, "yes"))
		cf->numbered = true;
	else if (!strcmp(value, "no"))
		cf->numbered = false;
	else
		return -EINVAL;
	return 0;
}

static char rot13(char c)
{
	if (c >= 'a' && c <= 'z')
		return (char)('a' + (c - 'a' + 13) % 26);
	if (c >= 'A' && c <= 'Z')
		return (char)('A' + (c - 'A' + 13) % 26);
	return c;
}

static void answer(struct evr_conn *c, struct rot13_conn *st)
{
	const struct rot13_conf *cf = evr_conn_conf(c);

	st->lines++;
	if (cf->numbered)
		evr_sendf(c, "%llu %.*s\n", (unsigned long long)st->lines,
			  (int)st->len, st->line);
	else
		evr_sendf(c, "%.*s\n", (int)st->len, st->line);
	st->len = 0;
}

/* Lines may arrive in pieces; a line longer than 512 bytes is answered
 * in pieces of 512. */
static void rot13_data(struct evr_conn *c, struct evr_buf *b)
{
	struct rot13_conn *st = evr_conn_state(c);

	for (uint32_t i = 0; i < b->len; i++) {
		char ch = b->data[i];

		if (ch == '\n') {
			if (st->len && st->line[st->len - 1] == '\r')
				st->len--;
			answer(c, st);
			continue;
		}
		st->line[st->len++] = rot13(ch);
		if (st->len == sizeof(st->line))
			answer(c, st);
	}
}

static const struct evr_proto_opt rot13_opts[] = {
	{ "numbered", "yes|no: the line's number before it (default yes)" },
	{ NULL, NULL },
};

static const struct evr_proto rot13_proto = {
	.name = "rot13",
	.summary = "each line back in ROT13, numbered",
	.opts = rot13_opts,
	.state_size = sizeof(struct rot13_conn),
	.conf_size = sizeof(struct rot13_conf),
	.conf_init = rot13_conf_init,
	.conf_set = rot13_conf_set,
	.on_data = rot13_data,
};

EVR_MODULE_EXPORT(rot13_proto);
