/* SPDX-License-Identifier: MIT */
/*
 * notify.c - telling systemd how evringd is doing (sd_notify(3)), without
 * linking libsystemd: the protocol is one datagram of "KEY=VALUE" lines
 * sent to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name"
 * in the abstract namespace).
 *
 *	READY=1		every listener is open and privileges are dropped
 *			(Type=notify: systemctl start returns now)
 *	RELOADING=1	with MONOTONIC_USEC=, when a reload starts
 *			(Type=notify-reload of systemd 253 checks both);
 *			READY=1 again when it is done
 *	STOPPING=1	the drain begins
 *	STATUS=...	a one-line summary, shown by systemctl status
 *	WATCHDOG=1	every half of $WATCHDOG_USEC (WatchdogSec=), from a
 *			timer of the loop: a stuck loop stops the pings
 *
 * The variables are read once at start and removed from the environment
 * (as sd_notify's unset_environment does), so that programs evringd
 * starts do not speak for it. Without $NOTIFY_SOCKET every call is a
 * no-op. A datagram that cannot be sent is logged once and dropped:
 * telling systemd never stops serving.
 */
#include "evringd.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_len;
static bool send_failed_logged;
static uint64_t watchdog_ms; /* between pings; 0: no watchdog */
static struct evr_timer watchdog;
static struct daemon *watchdog_d;

int evd_notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	const char *wusec = getenv("WATCHDOG_USEC");
	const char *wpid = getenv("WATCHDOG_PID");
	size_t len;

	if (wusec && (!wpid || atol(wpid) == (long)getpid())) {
		unsigned long long us = strtoull(wusec, NULL, 10);

		/* ping twice per period, as sd_watchdog_enabled(3) advises */
		watchdog_ms = us / 2000;
		if (us && !watchdog_ms)
			watchdog_ms = 1;
	}
	if (path && (path[0] == '/' || path[0] == '@')) {
		len = strlen(path);
		if (len >= sizeof(notify_addr.sun_path)) {
			evr_log_warn("NOTIFY_SOCKET %s: too long; not "
				     "notifying the service manager",
				     path);
		} else {
			notify_addr.sun_family = AF_UNIX;
			memcpy(notify_addr.sun_path, path, len);
			if (path[0] == '@')
				notify_addr.sun_path[0] = '\0';
			notify_len =
			    (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
					len + (path[0] == '/'));
			notify_fd =
			    socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (notify_fd < 0)
				evr_log_warn("NOTIFY_SOCKET: socket: %s",
					     strerror(errno));
		}
	} else if (path) {
		evr_log_warn("NOTIFY_SOCKET %s: not a path or an abstract "
			     "socket; not notifying the service manager",
			     path);
	}
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	return 0;
}

bool evd_notify_enabled(void)
{
	return notify_fd >= 0;
}

/* Send one datagram of KEY=VALUE lines. */
static void notify(const char *fmt, ...) EVR_PRINTF(1, 2);
static void notify(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	if (notify_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	if (sendto(notify_fd, msg, (size_t)n, MSG_NOSIGNAL,
		   (struct sockaddr *)&notify_addr, notify_len) < 0 &&
	    !send_failed_logged) {
		send_failed_logged = true;
		evr_log_warn("notifying the service manager: %s (logged once)",
			     strerror(errno));
	}
}

/* "echo, daytime on 8 sockets (io_uring); 3 connections open, 1042
 * accepted" */
static void summary(const struct daemon *d, char *buf, size_t len)
{
	struct evr_stats st;
	size_t off = 0;

	for (int i = 0; i < d->nsvc && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
					i ? ", " : "", d->svc[i].name);
	if (off >= len)
		return;
	evr_loop_stats(d->loop, &st);
	snprintf(buf + off, len - off,
		 " on %d sockets (%s); %llu connections open, %llu accepted",
		 d->nls, evr_loop_backend(d->loop),
		 (unsigned long long)st.conns_open,
		 (unsigned long long)st.conns_accepted);
}

static void on_watchdog(struct evr_timer *t)
{
	char status[512];

	summary(watchdog_d, status, sizeof(status));
	notify("WATCHDOG=1\nSTATUS=%s", status);
	evr_timer_start(watchdog_d->loop, t, watchdog_ms);
}

void evd_notify_ready(struct daemon *d)
{
	char status[512];

	if (notify_fd < 0 && !watchdog_ms)
		return;
	summary(d, status, sizeof(status));
	notify("READY=1\nSTATUS=%s\nMAINPID=%d", status, (int)getpid());
	if (watchdog_ms && notify_fd >= 0 && !evr_timer_active(&watchdog)) {
		watchdog_d = d;
		evr_timer_init(&watchdog, on_watchdog);
		evr_timer_start(d->loop, &watchdog, watchdog_ms);
	}
}

void evd_notify_reloading(struct daemon *d)
{
	struct timespec ts;

	(void)d;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	notify("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
	       (unsigned long long)ts.tv_sec * 1000000ULL +
		   (unsigned long long)ts.tv_nsec / 1000);
}

void evd_notify_stopping(struct daemon *d, bool drain)
{
	struct evr_stats st;

	evr_loop_stats(d->loop, &st);
	if (drain)
		notify("STOPPING=1\nSTATUS=draining: %llu connections open "
		       "get up to %u ms",
		       (unsigned long long)st.conns_open, d->drain_ms);
	else
		notify("STOPPING=1\nSTATUS=stopping: closing %llu "
		       "connections",
		       (unsigned long long)st.conns_open);
	/* the watchdog goes on pinging through the drain: the loop is
	 * still alive */
}
