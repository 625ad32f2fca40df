/* SPDX-License-Identifier: MIT */
/*
 * logging.c - where evringd's log lines go.
 *
 * evringd takes every line of the library and its own through
 * evr_log_set_handler() and writes it in one of these forms:
 *
 *	journal   <4>message                           stderr is the journal
 *	rfc3339   2026-11-25T03:35:50.123Z evringd[42]: warning: message
 *	plain     evringd: warning: message
 *	syslog    syslog(3), facility daemon unless --syslog=FACILITY
 *
 * --log-format auto (the default) picks journal when stderr is the
 * journal's stream (JOURNAL_STREAM, systemd.exec(5): the journal stamps
 * the time itself and takes the priority from "<N>", sd-daemon(3)) and
 * rfc3339 otherwise (RFC 3339 local time with its offset, milliseconds).
 * Each line is one write(2), so lines of processes sharing stderr never
 * interleave.
 */
#include "evringd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *const format_names[] = {
	[EVD_LOG_AUTO] = "auto",
	[EVD_LOG_JOURNAL] = "journal",
	[EVD_LOG_RFC3339] = "rfc3339",
	[EVD_LOG_PLAIN] = "plain",
};

static const struct {
	const char *name;
	int facility;
} facilities[] = {
	{ "daemon", LOG_DAEMON }, { "user", LOG_USER },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

static enum evd_log_format log_format = EVD_LOG_AUTO;
static bool log_syslog;

int evd_log_parse_format(const char *s, enum evd_log_format *out)
{
	for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]);
	     i++)
		if (!strcmp(s, format_names[i])) {
			*out = (enum evd_log_format)i;
			return 0;
		}
	return -EINVAL;
}

int evd_log_parse_facility(const char *s, int *out)
{
	for (size_t i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
		if (!strcmp(s, facilities[i].name)) {
			*out = facilities[i].facility;
			return 0;
		}
	return -EINVAL;
}

/* "2026-11-25T03:35:50.123+01:00", or "...Z" in UTC (RFC 3339 5.6). */
static size_t rfc3339_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;
	long off;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (!localtime_r(&ts.tv_sec, &tm))
		return 0;
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!n)
		return 0;
	n += (size_t)snprintf(buf + n, len - n, ".%03ld", ts.tv_nsec / 1000000);
	off = tm.tm_gmtoff / 60;
	if (off == 0)
		n += (size_t)snprintf(buf + n, len - n, "Z");
	else
		n += (size_t)snprintf(buf + n, len - n, "%c%02ld:%02ld",
				      off < 0 ? '-' : '+', labs(off) / 60,
				      labs(off) % 60);
	return n < len ? n : 0;
}

static void on_line(enum evr_log_level level, const char *msg, void *arg)
{
	char line[1200], ts[48];
	int n;

	(void)arg;
	if (log_syslog) {
		syslog(evr_log_syslog_priority(level), "%s", msg);
		return;
	}
	switch (log_format) {
	case EVD_LOG_JOURNAL:
		n = snprintf(line, sizeof(line), "<%d>%s\n",
			     evr_log_syslog_priority(level), msg);
		break;
	case EVD_LOG_PLAIN:
		n = snprintf(line, sizeof(line), "evringd: %s: %s\n",
			     evr_log_level_name(level), msg);
		break;
	default:
		if (!rfc3339_now(ts, sizeof(ts)))
			snprintf(ts, sizeof(ts), "-");
		n = snprintf(line, sizeof(line), "%s evringd[%d]: %s: %s\n", ts,
			     (int)getpid(), evr_log_level_name(level), msg);
		break;
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* a line that cannot be written has nowhere else to go */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void evd_log_start(const struct daemon *d)
{
	log_format = d->log_format;
	if (log_format == EVD_LOG_AUTO)
		log_format = evr_log_stderr_is_journal() ? EVD_LOG_JOURNAL
							 : EVD_LOG_RFC3339;
	if (d->syslog_facility >= 0) {
		openlog("evringd", LOG_PID | LOG_NDELAY, d->syslog_facility);
		log_syslog = true;
	}
	evr_log_set_handler(on_line, NULL);
}

void evd_log_stop(void)
{
	evr_log_set_handler(NULL, NULL);
	if (log_syslog)
		closelog();
	log_syslog = false;
}
