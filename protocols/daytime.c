/* SPDX-License-Identifier: MIT */
/*
 * daytime.c - the Daytime Protocol, RFC 867 (TCP).
 *
 * TCP: on accept the server sends one line with the current date and time
 * and closes; anything the client sends is ignored. UDP: any datagram gets
 * one datagram with the line (capped by the amplification guard: by
 * default no longer than the request). RFC 867 leaves the format
 * free and suggests "Weekday, Month Day, Year Time-Zone"; the default here
 * is that, in UTC, for example
 *
 *	Wednesday, November 25, 2026 03:35:50-UTC
 *
 * followed by CRLF. Options: format=<strftime(3) format>, tz=utc|local.
 * The line changes once a second, so each thread keeps the last one it
 * formatted and reuses it within the same second.
 */
#include "daytime.h"
#include "modules.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define DAYTIME_FMT_MAX	      128
#define DAYTIME_LINE_MAX      256
#define DAYTIME_DEFAULT_UTC   "%A, %B %-d, %Y %H:%M:%S-UTC"
#define DAYTIME_DEFAULT_LOCAL "%A, %B %-d, %Y %H:%M:%S-%Z"

struct daytime_conf {
	char fmt[DAYTIME_FMT_MAX];
	bool fmt_set;
	bool utc;
};

int evr_daytime_format(char *out, size_t outlen, const char *fmt, bool utc,
		       int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	size_t n;

	if (!fmt)
		fmt = utc ? DAYTIME_DEFAULT_UTC : DAYTIME_DEFAULT_LOCAL;
	if (!(utc ? gmtime_r(&tt, &tm) : localtime_r(&tt, &tm)))
		return -EINVAL;
	if (outlen < 3)
		return -ENOSPC;
	n = strftime(out, outlen - 2, fmt, &tm);
	if (n == 0)
		return -ENOSPC; /* too long, or a format that yields nothing */
	out[n++] = '\r';
	out[n++] = '\n';
	out[n] = '\0';
	return (int)n;
}

static int daytime_conf_init(void *p)
{
	struct daytime_conf *cf = p;

	memset(cf, 0, sizeof(*cf));
	cf->utc = true;
	return 0;
}

static int daytime_conf_set(void *p, const char *key, const char *value)
{
	struct daytime_conf *cf = p;
	char probe[DAYTIME_LINE_MAX];

	if (!strcmp(key, "format")) {
		if (strlen(value) >= sizeof(cf->fmt) ||
		    evr_daytime_format(probe, sizeof(probe), value, cf->utc,
				       0) < 0)
			return -EINVAL;
		strcpy(cf->fmt, value);
		cf->fmt_set = true;
		return 0;
	}
	if (!strcmp(key, "tz")) {
		if (!strcmp(value, "utc"))
			cf->utc = true;
		else if (!strcmp(value, "local"))
			cf->utc = false;
		else
			return -EINVAL;
		return 0;
	}
	return -ENOENT;
}

static const struct daytime_conf default_conf = { .utc = true };

/* The current line for cf, formatted at most once a second per thread. */
static int daytime_line(const struct daytime_conf *cf, const char **line)
{
	static __thread struct {
		const struct daytime_conf *cf;
		time_t sec;
		int len;
		char line[DAYTIME_LINE_MAX];
	} cache;
	time_t now = time(NULL);

	if (!cf)
		cf = &default_conf;
	if (cache.cf != cf || cache.sec != now || cache.len <= 0) {
		cache.len = evr_daytime_format(cache.line, sizeof(cache.line),
					       cf->fmt_set ? cf->fmt : NULL,
					       cf->utc, now);
		cache.cf = cf;
		cache.sec = now;
	}
	*line = cache.line;
	return cache.len;
}

/* RFC 867 over UDP: any datagram is answered with one datagram holding
 * the line. */
static void daytime_datagram(struct evr_udp *u, struct evr_buf *b,
			     const struct sockaddr *peer, socklen_t peerlen)
{
	const char *line;
	int len = daytime_line(evr_udp_conf(u), &line);

	(void)b;
	if (len > 0)
		evr_udp_send_copy(u, line, (size_t)len, peer, peerlen);
}

static int daytime_accept(struct evr_conn *c)
{
	const char *line;
	int len = daytime_line(evr_conn_conf(c), &line);
	int err;

	if (len < 0)
		return len;
	err = evr_send_copy(c, line, (size_t)len);
	if (err < 0)
		return err;
	evr_close(c);
	return 0;
}

static const struct evr_proto_opt daytime_opts[] = {
	{ "format", "STRFTIME: the line's strftime(3) format (default "
		    "\"%A, %B %-d, %Y %H:%M:%S-UTC\")" },
	{ "tz", "utc|local: the time zone of the line (default utc)" },
	{ NULL, NULL },
};

const struct evr_proto evr_proto_daytime = {
	.name = "daytime",
	.summary = "RFC 867: sends the date and time as one line, then closes",
	.opts = daytime_opts,
	.conf_size = sizeof(struct daytime_conf),
	.conf_init = daytime_conf_init,
	.conf_set = daytime_conf_set,
	.on_accept = daytime_accept,
	.on_datagram = daytime_datagram,
};
