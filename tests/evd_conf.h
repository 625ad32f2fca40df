/* SPDX-License-Identifier: MIT */
/*
 * evd_conf.h - evringd started on a configuration file, for the tests of
 * programs, modules, tcpmux services and reloads: the file, the server,
 * its children, its sockets as /proc shows them.
 */
#ifndef EVRING_TEST_EVD_CONF_H
#define EVRING_TEST_EVD_CONF_H

#include "harness.h"

#include <stdbool.h>
#include <sys/types.h>

/* A file holding text, removed when the test process exits. */
const char *conf_write(const char *text);
/* Replace the text of a file conf_write() made (for a reload). */
void conf_rewrite(const char *path, const char *text);

/* Start evringd on the file (ports 0: the listener lines say which) with
 * more arguments (NULL-terminated, may be NULL); nls listener lines. */
void conf_start(struct srv *s, const char *backend, const char *path, int nls,
		const char *const *extra);

/* Run evringd with args to its end: its exit status, its output. */
int evringd_run(const char *const *args, char *out, size_t cap);

/* Path of a tool built next to the tests ("child-report"). */
const char *tool(const char *name);

/* Children of pid: how many, how many of them zombies. */
int children_of(pid_t pid, int *zombies);
/* Wait up to ms for pid to have no child. 0, or -1. */
int wait_no_children(pid_t pid, int ms);

/* Connect, send out (may be NULL), half-close, read to EOF into buf (NUL
 * terminated). The bytes read, -1 when the connection failed. */
ssize_t tcp_ask(int family, uint16_t port, const char *out, char *buf,
		size_t cap);

/* Wait up to ms for needle in the server's log. */
bool log_wait(struct srv *s, const char *needle, int ms);
/* Wait up to ms for n occurrences of needle in the log, then a little
 * more for a later one: how many there are. */
int log_count(struct srv *s, const char *needle, int n, int ms);

/* Read lines of the server's stdout until one starts with prefix (up to
 * ms); the lines before it in buf. 0 or -1. */
int srv_read_until(struct srv *s, const char *prefix, char *buf, size_t cap,
		   int ms);

/* A TCP socket bound to a free port of 127.0.0.1, and the port: keep it
 * bound until every port a configuration names is chosen, or the next
 * bind could be handed the same one. */
int bind_free(uint16_t *port);

/* The inode of the listening TCP socket on port (/proc/net/tcp{,6}),
 * 0 when none listens there. */
unsigned long listen_inode(uint16_t port);
/* How many sockets listen on port (one per loop of a group). */
int listen_count(uint16_t port);

#endif
