/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config.c - libFuzzer target for evringd's inetd.conf parser
 * (core/evringd/config.c), which is pure: text in, entries or errors out.
 *
 * An input is the text of a file. Whatever it holds, the parser must not
 * crash, read or write out of bounds, or leak (ASan), and:
 *
 * - it succeeds exactly when it reports no error, and then every entry is
 *   well formed: the fields a service line must have, a socket type that
 *   agrees with the protocol, at least argv0 for a program, no argument
 *   for a built-in;
 * - every error names the file ("fuzz.conf:" first) and a line that
 *   exists;
 * - a file it accepts means the same when written out again: each entry,
 *   printed in a canonical form (host explicit, #@ options above it, one
 *   field per line, the others continuation lines), parses back to the
 *   same entry.
 */
#include "../../core/evringd/config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_config: %s: %s\n", what, detail ? detail : "");
	abort();
}

static void check_entry(const struct evd_conf_entry *e)
{
	if (!e->ok)
		fail("an entry of an accepted file is not ok", e->field[1]);
	if (!e->service || !*e->service || !e->server || !*e->user)
		fail("a field is missing", e->field[1]);
	if (e->internal || e->module) {
		if (e->argc || e->argv)
			fail("a built-in with arguments", e->field[1]);
	} else {
		if (e->server[0] != '/' || e->argc < 1 || !e->argv ||
		    e->argv[e->argc])
			fail("a program without argv0 or argv end", e->server);
	}
	if (e->tcpmux && (!e->stream || e->wait))
		fail("tcpmux not nowait stream", e->field[1]);
	if (e->family != 0 && e->family != 4 && e->family != 6)
		fail("family", e->field[3]);
}

/* e in a canonical form: its options above it, then its first field, and
 * each other field on a continuation line of its own (a field comes from
 * one line, so no line can be too long). */
static size_t write_entry(const struct evd_conf_entry *e, char *out, size_t cap)
{
	static const char *const proto[2][3] = {
		{ "udp", "udp4", "udp6" },
		{ "tcp", "tcp4", "tcp6" },
	};
	FILE *f = fmemopen(out, cap, "w");
	size_t n;

	if (!f)
		fail("fmemopen", NULL);
	for (int i = 0; i < e->nopts; i++)
		fprintf(f, "#@ %s=%s\n", e->opts[i].key, e->opts[i].value);
	if (e->host)
		fprintf(f, strchr(e->host, ':') ? "[%s]:" : "%s:", e->host);
	if (e->tcpmux)
		fprintf(f, "tcpmux/%s", e->tcpmux_plus ? "+" : "");
	fprintf(f, "%s\n\t%s\n\t%s\n\t%s", e->service,
		e->stream ? "stream" : "dgram",
		proto[e->stream][e->family == 0	  ? 0
				 : e->family == 4 ? 1
						  : 2],
		e->wait ? "wait" : "nowait");
	if (e->max >= 0)
		fprintf(f, ".%ld", e->max);
	fprintf(f, "\n\t%s%s%s\n\t%s", e->user, e->group[0] ? ":" : "",
		e->group, e->server);
	for (int i = 0; i < e->argc; i++)
		fprintf(f, "\n\t%s", e->argv[i]);
	fputc('\n', f);
	n = (size_t)ftell(f);
	fclose(f);
	if (n >= cap)
		fail("canonical line too long", e->field[1]);
	return n;
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static void round_trip(const struct evd_conf_entry *e)
{
	static char text[EVD_CONF_MAX_LINE * (EVD_CONF_MAX_ARGS + 40)];
	struct evd_conf cf;
	const struct evd_conf_entry *r;
	size_t n = write_entry(e, text, sizeof(text));

	if (evd_conf_parse(&cf, "again.conf", text, n) != 0 || cf.n != 1)
		fail("the canonical line is refused",
		     cf.nerrors ? cf.err[0].text : text);
	r = &cf.e[0];
	if (!same(r->host, e->host) || strcmp(r->service, e->service) ||
	    r->tcpmux != e->tcpmux || r->tcpmux_plus != e->tcpmux_plus ||
	    r->stream != e->stream || r->family != e->family ||
	    r->wait != e->wait || r->max != e->max ||
	    strcmp(r->user, e->user) || strcmp(r->group, e->group) ||
	    strcmp(r->server, e->server) || r->argc != e->argc ||
	    r->nopts != e->nopts || r->port_given != e->port_given ||
	    r->port != e->port)
		fail("the canonical line means something else", text);
	for (int i = 0; i < e->argc; i++)
		if (strcmp(r->argv[i], e->argv[i]))
			fail("argv differs", text);
	for (int i = 0; i < e->nopts; i++)
		if (strcmp(r->opts[i].key, e->opts[i].key) ||
		    strcmp(r->opts[i].value, e->opts[i].value))
			fail("options differ", text);
	evd_conf_free(&cf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evd_conf cf;
	int lines = 1, err;

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	err = evd_conf_parse(&cf, "fuzz.conf", (const char *)data, size);
	if (err != 0 && err != -EINVAL)
		fail("unexpected error", NULL);
	if ((err == 0) != (cf.nerrors == 0))
		fail("result and errors disagree", NULL);
	evd_conf_sort_errors(&cf);
	for (size_t i = 0; i < cf.nerrors && i < EVD_CONF_MAX_ERRORS; i++) {
		const struct evd_conf_error *x = &cf.err[i];

		if (!x->text || strncmp(x->text, "fuzz.conf:", 10))
			fail("an error without the file's name", x->text);
		if (x->line < 0 || x->line > lines)
			fail("an error on a line that is not there", x->text);
		if (i && x->line < cf.err[i - 1].line)
			fail("errors out of order", x->text);
	}
	if (err == 0)
		for (size_t i = 0; i < cf.n; i++) {
			check_entry(&cf.e[i]);
			round_trip(&cf.e[i]);
		}
	evd_conf_free(&cf);
	return 0;
}
