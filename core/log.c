/* SPDX-License-Identifier: MIT */
/*
 * log.c - leveled log lines, the program's handler, rate-limited events.
 *
 * Every line goes through evr_vlog(): below the level it is dropped, else
 * the message is formatted once and handed to the handler a program set
 * (evr_log_set_handler), or written to stderr by the default handler, as
 * "ident: level: message" with a single write(2) so that lines of several
 * processes sharing a terminal do not interleave. When stderr is the
 * systemd journal's stream (JOURNAL_STREAM names its device and inode, see
 * systemd.exec(5)) the default handler prefixes the syslog priority
 * instead ("<4>message", sd-daemon(3)), so that `journalctl -p` works.
 *
 * Rate limits: an event that repeats (a refused connection, a dropped
 * datagram) logs a line at most once per interval; the ones refused in
 * between are counted, and when the interval ends the loop's flush timer
 * logs "WHAT: N more in the last 10 s", so the last burst is always
 * reported, not only when another event comes later.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static enum evr_log_level log_level = EVR_LOG_INFO;
static const char *log_ident = "evring";
static evr_log_fn log_fn;
static void *log_arg;
static int log_journal = -1; /* stderr is the journal: unknown yet */

static const char *const level_names[] = {
	[EVR_LOG_ERR] = "error",
	[EVR_LOG_WARN] = "warning",
	[EVR_LOG_INFO] = "info",
	[EVR_LOG_DEBUG] = "debug",
};

/* syslog(3) priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
static const int level_prio[] = {
	[EVR_LOG_ERR] = 3,
	[EVR_LOG_WARN] = 4,
	[EVR_LOG_INFO] = 6,
	[EVR_LOG_DEBUG] = 7,
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

void evr_log_set_handler(evr_log_fn fn, void *arg)
{
	log_fn = fn;
	log_arg = fn ? arg : NULL;
}

const char *evr_log_level_name(enum evr_log_level level)
{
	return level <= EVR_LOG_DEBUG ? level_names[level] : "debug";
}

int evr_log_syslog_priority(enum evr_log_level level)
{
	return level <= EVR_LOG_DEBUG ? level_prio[level] : 7;
}

bool evr_log_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

static void write_stderr(enum evr_log_level level, const char *msg)
{
	char line[1100];
	int n;

	if (log_journal < 0)
		log_journal = evr_log_stderr_is_journal();
	if (log_journal)
		n = snprintf(line, sizeof(line), "<%d>%s\n", level_prio[level],
			     msg);
	else
		n = snprintf(line, sizeof(line), "%s: %s: %s\n", log_ident,
			     level_names[level], msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n'; /* truncated: keep the newline */
	}
	/* A log line that cannot be written has nowhere else to go. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void evr_vlog(enum evr_log_level level, const char *fmt, va_list ap)
{
	char msg[1024];

	if (level > log_level)
		return;
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		return;
	if (log_fn)
		log_fn(level, msg, log_arg);
	else
		write_stderr(level, msg);
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

/* ---- rate limits ---- */

static void rl_summary(struct evr__ratelimit *r)
{
	uint32_t ms = r->interval_ms;

	if (ms % 1000)
		evr_log((enum evr_log_level)r->level,
			"%s: %llu more in the last %u ms", r->what,
			(unsigned long long)r->suppressed, ms);
	else
		evr_log((enum evr_log_level)r->level,
			"%s: %llu more in the last %u s", r->what,
			(unsigned long long)r->suppressed, ms / 1000);
	r->suppressed = 0;
	evr__list_del(&r->link);
}

/* Arm the flush timer for the earliest interval that ends. */
static void rl_arm(struct evr_loop *l)
{
	uint64_t next = UINT64_MAX;

	for (struct evr__list *n = l->ratelimits.next; n != &l->ratelimits;
	     n = n->next) {
		struct evr__ratelimit *r =
		    EVR_CONTAINER_OF(n, struct evr__ratelimit, link);

		if (r->next < next)
			next = r->next;
	}
	if (next == UINT64_MAX)
		evr_timer_stop(l, &l->rl_timer);
	else
		evr_timer_start(l, &l->rl_timer,
				next > l->now ? next - l->now : 0);
}

static void rl_expired(struct evr_timer *t)
{
	struct evr_loop *l = EVR_CONTAINER_OF(t, struct evr_loop, rl_timer);
	struct evr__list *n, *next;

	for (n = l->ratelimits.next; n != &l->ratelimits; n = next) {
		struct evr__ratelimit *r =
		    EVR_CONTAINER_OF(n, struct evr__ratelimit, link);

		next = n->next;
		if (r->next <= l->now)
			rl_summary(r);
	}
	rl_arm(l);
}

void evr__ratelimits_init(struct evr_loop *l)
{
	evr__list_init(&l->ratelimits);
	evr_timer_init(&l->rl_timer, rl_expired);
}

void evr__ratelimits_flush(struct evr_loop *l)
{
	while (!evr__list_empty(&l->ratelimits))
		rl_summary(EVR_CONTAINER_OF(l->ratelimits.next,
					    struct evr__ratelimit, link));
	evr_timer_stop(l, &l->rl_timer);
}

void evr__ratelimit_fini(struct evr_loop *l, struct evr__ratelimit *r)
{
	if (!r->suppressed)
		return;
	rl_summary(r);
	rl_arm(l);
}

bool evr__ratelimit_n(struct evr_loop *l, struct evr__ratelimit *r,
		      uint32_t interval_ms, uint32_t n,
		      enum evr_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (l->now >= r->next) {
		/* a new interval: the last one's count first, even when
		 * the flush timer has not run yet */
		if (r->suppressed)
			evr__ratelimit_fini(l, r);
		r->next = l->now + interval_ms;
		r->used = 0;
	}
	if (r->used < n) {
		r->used++;
		return true;
	}
	if (r->suppressed++)
		return false;
	/* the first one refused: remember what to call them, and have the
	 * loop report how many when the interval ends */
	va_start(ap, fmt);
	vsnprintf(r->what, sizeof(r->what), fmt, ap);
	va_end(ap);
	r->interval_ms = interval_ms;
	r->level = (uint8_t)level;
	evr__list_add_tail(&l->ratelimits, &r->link);
	if (!evr_timer_active(&l->rl_timer) || l->rl_timer.expires > r->next)
		evr_timer_start(l, &l->rl_timer, r->next - l->now);
	return false;
}
