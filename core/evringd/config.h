/* SPDX-License-Identifier: MIT */
/*
 * config.h - the inetd.conf parser of evringd: text in, entries out.
 *
 * The format is inetd.conf as OpenBSD inetd and Debian's openbsd-inetd
 * read it, one service per line (docs/man/evringd.conf.5):
 *
 *	[host:]service socket-type protocol wait|nowait[.max]
 *		user[:group|.group] server-program [argv0 args...]
 *
 * plus `host:` lines that set the default host of the lines after them,
 * `#` comments, continuation lines (a line that starts with a blank adds
 * arguments to the line before it), and one extension that a stock parser
 * skips as a comment: `#@ KEY=VALUE ...` lines give options to the next
 * service line, except `#@ module=PATH`, which loads a module for the
 * whole file.
 *
 * This part is pure: it looks at no file, no /etc/services, no user
 * database and no module, so that a fuzzer can run it on its own (tests/
 * fuzz/fuzz_config.c). It checks the syntax of every field; what the
 * names mean is checked by the daemon (config_apply.c), which reports
 * with the same file:line:field prefix.
 */
#ifndef EVRINGD_CONFIG_H
#define EVRINGD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* Limits of what a file may hold; past them the file is refused. */
#define EVD_CONF_MAX_BYTES  (1024 * 1024)
#define EVD_CONF_MAX_LINE   4096 /* bytes in one physical line */
#define EVD_CONF_MAX_ARGS   64	 /* argv0 and its arguments */
#define EVD_CONF_MAX_OPTS   32	 /* #@ options of one service */
#define EVD_CONF_MAX_ERRORS 20	 /* reported; the count says how many */

/* The fields of a service line, numbered as the messages number them. */
enum evd_conf_field {
	EVD_F_SERVICE = 1,
	EVD_F_SOCKTYPE,
	EVD_F_PROTOCOL,
	EVD_F_WAIT,
	EVD_F_USER,
	EVD_F_SERVER,
	EVD_F_ARGS,
	EVD_F_COUNT,
};

struct evd_conf_opt {
	const char *key;
	const char *value;
	int line;
};

/*
 * One service line. Strings point into the configuration's own copy of
 * the text and live as long as it.
 */
struct evd_conf_entry {
	int line;
	/* Each field as written, for messages ("field 4 \"nowiat\""). */
	const char *field[EVD_F_COUNT];
	char *field1; /* field 1's own copy (its token is cut up) */
	/* NULL: the default host of the file (every address unless a
	 * `host:` line said otherwise). Else a comma-separated list of
	 * numeric addresses and host names, "*" for every address; IPv6
	 * brackets removed. */
	const char *host;
	const char *service; /* a name or a decimal port */
	bool port_given;     /* service is a number (port) */
	unsigned port;
	/* tcpmux/NAME and tcpmux/+NAME (NetBSD inetd, xinetd): a service
	 * reached through tcpmux by NAME; with '+' evringd sends the "+"
	 * reply itself. service is then NAME. */
	bool tcpmux;
	bool tcpmux_plus;
	bool stream; /* socket type: stream (TCP) or dgram (UDP) */
	int family;  /* 0 (tcp/udp: IPv4 and IPv6), 4 or 6 */
	bool wait;   /* wait (one server at a time) or nowait */
	long max;    /* the .max suffix; -1 when not given, 0 no limit */
	char user[33];
	char group[33]; /* "" when not given */
	/* "internal", a module's name, or an absolute path */
	const char *server;
	bool internal;
	bool module;	   /* server names a module */
	bool ok;	   /* every field is well formed */
	const char **argv; /* argc strings then NULL; argv0 first */
	int argc;
	struct evd_conf_opt *opts; /* from the #@ lines above it */
	int nopts;
};

/* An error: "path:line: message" (line 0: about the whole file). */
struct evd_conf_error {
	int line;
	char *text;
};

struct evd_conf {
	char *path;
	char *text; /* the copy that the strings point into */
	struct evd_conf_entry *e;
	size_t n, cap;
	/* #@ module=PATH, in file order (key "module") */
	struct evd_conf_opt *mods;
	size_t nmods;
	/* The first EVD_CONF_MAX_ERRORS errors, in line order once
	 * evd_conf_sort_errors() ran; nerrors counts them all. */
	struct evd_conf_error err[EVD_CONF_MAX_ERRORS];
	size_t nerrors;
};

/*
 * Parse len bytes of text read from the file called name (used in
 * messages). Returns 0 with every service line in cf->e; -EINVAL when the
 * file has any error, each in cf->err (entries whose own line is well
 * formed have ok set, so that the caller can check them further and
 * report everything at once); -ENOMEM. cf is filled either way and must
 * be freed with evd_conf_free().
 */
int evd_conf_parse(struct evd_conf *cf, const char *name, const char *text,
		   size_t len);

/* Read the file at path (at most EVD_CONF_MAX_BYTES) and parse it. As
 * evd_conf_parse, plus -errno of open or read, with a message in
 * cf->errors. */
int evd_conf_load(struct evd_conf *cf, const char *path);

/* Add an error for line (0: none) of cf's file: "path:line: message". */
void evd_conf_error(struct evd_conf *cf, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* An error about field f of entry e: "path:line: field N "VALUE": ...". */
void evd_conf_field_error(struct evd_conf *cf, const struct evd_conf_entry *e,
			  enum evd_conf_field f, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Order cf->err by line (stable), the file's own errors first. */
void evd_conf_sort_errors(struct evd_conf *cf);

void evd_conf_free(struct evd_conf *cf);

#endif /* EVRINGD_CONFIG_H */
