/* SPDX-License-Identifier: MIT */
/*
 * cli.c - evring-bench's command-line values; see cli.h.
 *
 * Layout: durations, escapes, then targets (split HOST:PORT, the loopback
 * rule, the probes, the resolver that ties them together).
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROBE_TCP_MS 2000 /* a loopback connect answers at once */
#define PROBE_UDP_MS 100  /* time for a "port unreachable" to come back */

int cli_duration(const char *s, double *secs)
{
	static const struct {
		const char *unit;
		double scale;
	} units[] = {
		{ "", 1 },   { "s", 1 },    { "ms", 1e-3 }, { "us", 1e-6 },
		{ "m", 60 }, { "min", 60 }, { "h", 3600 },
	};
	char *end;
	double v = strtod(s, &end);

	if (end == s || v < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (!strcmp(end, units[i].unit)) {
			*secs = v * units[i].scale;
			return 0;
		}
	}
	return -EINVAL;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One escape after the backslash at *s: the byte in *c, *s advanced. */
static int unescape_one(const char **s, char *c)
{
	static const char from[] = "rnt\\\"0", to[] = "\r\n\t\\\"\0";
	const char *p = strchr(from, **s);
	int hi, lo;

	if (**s && p) {
		*c = to[p - from];
		(*s)++;
		return 0;
	}
	if (**s != 'x' || (hi = hexval((*s)[1])) < 0 ||
	    (lo = hexval((*s)[2])) < 0)
		return -EINVAL;
	*c = (char)(hi << 4 | lo);
	*s += 3;
	return 0;
}

int cli_unescape(const char *s, char **out, size_t *len)
{
	char *buf = malloc(strlen(s) + 1), *w = buf;

	if (!buf)
		return -ENOMEM;
	while (*s) {
		if (*s != '\\') {
			*w++ = *s++;
			continue;
		}
		s++;
		if (unescape_one(&s, w++) < 0) {
			free(buf);
			return -EINVAL;
		}
	}
	*w = '\0';
	*out = buf;
	*len = (size_t)(w - buf);
	return 0;
}

/* "host:port", "[v6]:port": host and port copied out. */
static int split_target(const char *t, char *host, size_t hostlen,
			const char **port)
{
	const char *colon = strrchr(t, ':'), *h = t;
	size_t n;

	if (!colon || !colon[1])
		return -EINVAL;
	n = (size_t)(colon - t);
	if (t[0] == '[') {
		if (n < 2 || t[n - 1] != ']')
			return -EINVAL;
		h = t + 1;
		n -= 2;
	}
	if (!n || n >= hostlen)
		return -EINVAL;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = colon + 1;
	return 0;
}

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family != AF_INET6)
		return false;
	const struct sockaddr_in6 *in6 = (const void *)sa;

	return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
	       (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
		in6->sin6_addr.s6_addr[12] == 127);
}

/* Wait for ev on fd; the socket's pending error, or -ETIMEDOUT. */
static int wait_sock(int fd, short ev, int ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int err = 0;
	socklen_t len = sizeof(err);

	if (poll(&p, 1, ms) <= 0)
		return -ETIMEDOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	return -err;
}

/* 0 when the address takes a connection or a datagram, else -errno. */
static int probe(const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK, 0);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		err = -errno;
		if (err == -EINPROGRESS)
			err = wait_sock(fd, POLLOUT, PROBE_TCP_MS);
	}
	if (!err && ai->ai_socktype == SOCK_DGRAM) {
		/* an echo server answers the empty datagram: not an error;
		 * a closed port answers "unreachable": ECONNREFUSED */
		if (send(fd, "", 0, 0) < 0)
			err = -errno;
		else if ((err = wait_sock(fd, POLLIN, PROBE_UDP_MS)) ==
			 -ETIMEDOUT)
			err = 0;
	}
	close(fd);
	return err;
}

int cli_resolve(const char *target, int type, bool allow_remote,
		struct sockaddr_storage *ss, socklen_t *len, char *why,
		size_t whylen)
{
	struct addrinfo hints = { .ai_socktype = type }, *res, *ai;
	const char *port;
	char host[256];
	int err, n = 0;

	if (split_target(target, host, sizeof(host), &port) < 0) {
		snprintf(why, whylen, "expected HOST:PORT");
		return -EINVAL;
	}
	err = getaddrinfo(host, port, &hints, &res);
	if (err) {
		snprintf(why, whylen, "%s", gai_strerror(err));
		return -ENOENT;
	}
	for (ai = res; ai; ai = ai->ai_next)
		n += allow_remote || is_loopback(ai->ai_addr);
	err = n ? -ENOENT : -EPERM;
	snprintf(why, whylen, "%s",
		 n ? "no address to use"
		   : "not on loopback; pass --allow-remote to load another "
		     "machine");
	for (ai = res; ai && n; ai = ai->ai_next) {
		if (!allow_remote && !is_loopback(ai->ai_addr))
			continue;
		err = probe(ai);
		if (!err) {
			memcpy(ss, ai->ai_addr, ai->ai_addrlen);
			*len = ai->ai_addrlen;
			break;
		}
		snprintf(why, whylen, "%s", strerror(-err));
	}
	freeaddrinfo(res);
	return err;
}
