/* SPDX-License-Identifier: MIT */
/*
 * log.c - leveled log lines on stderr.
 *
 * One line per call, written with a single write(2) so that lines of several
 * processes sharing a terminal do not interleave. Messages name the failing
 * call and the object ("bind [::]:13: Permission denied").
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum evr_log_level log_level = EVR_LOG_INFO;
static const char *log_ident = "evring";

static const char *const level_names[] = {
	[EVR_LOG_ERR] = "error",
	[EVR_LOG_WARN] = "warning",
	[EVR_LOG_INFO] = "info",
	[EVR_LOG_DEBUG] = "debug",
};

void evr_log_set_level(enum evr_log_level level)
{
	if (level > EVR_LOG_DEBUG)
		level = EVR_LOG_DEBUG;
	log_level = level;
}

enum evr_log_level evr_log_get_level(void)
{
	return log_level;
}

void evr_log_set_ident(const char *ident)
{
	log_ident = ident ? ident : "evring";
}

void evr_vlog(enum evr_log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	int n, m;

	if (level > log_level)
		return;
	n = snprintf(line, sizeof(line), "%s: %s: ", log_ident,
		     level_names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2; /* truncated: keep the newline */
	line[n++] = '\n';
	/* A log line that cannot be written has nowhere else to go. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void evr_log(enum evr_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evr_vlog(level, fmt, ap);
	va_end(ap);
}

const char *evr__strerror(int err)
{
	return strerror(err < 0 ? -err : err);
}

bool evr__ratelimit(struct evr__ratelimit *r, uint64_t now,
		    uint32_t interval_ms, uint64_t *suppressed)
{
	if (now < r->next) {
		r->suppressed++;
		return false;
	}
	*suppressed = r->suppressed;
	r->suppressed = 0;
	r->next = now + interval_ms;
	return true;
}
