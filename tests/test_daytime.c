/* SPDX-License-Identifier: MIT */
/*
 * test_daytime.c - daytime (RFC 867) over TCP against the real evringd, on
 * both backends: exactly one well-formed line with the current time, then
 * EOF; the format and time zone options.
 */
#include "harness.h"

#include <netinet/in.h>
#include <regex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const daytime_only[] = { "daytime", NULL };

/* "Wednesday, November 25, 2026 03:35:50-UTC\r\n" */
#define LINE_RE                                                                \
	"^(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), "        \
	"(January|February|March|April|May|June|July|August|September|"        \
	"October|November|December) [1-9][0-9]?, [0-9]{4} "                    \
	"[0-2][0-9]:[0-5][0-9]:[0-6][0-9]-UTC\r\n$"

static ssize_t fetch(int family, uint16_t port, char *buf, size_t cap)
{
	int fd = tcp_connect(family, port);
	ssize_t n;

	cr_assert_geq(fd, 0, "connect");
	n = read_to_eof(fd, buf, cap - 1);
	close(fd);
	cr_assert_geq(n, 0, "read");
	buf[n] = '\0';
	return n;
}

static void assert_line_now(const char *line)
{
	regex_t re;
	struct tm tm;
	time_t t, now = time(NULL);

	cr_assert_eq(regcomp(&re, LINE_RE, REG_EXTENDED | REG_NOSUB), 0);
	cr_assert_eq(regexec(&re, line, 0, NULL, 0), 0,
		     "not a daytime line: \"%s\"", line);
	regfree(&re);
	memset(&tm, 0, sizeof(tm));
	cr_assert_not_null(strptime(line, "%A, %B %d, %Y %H:%M:%S", &tm));
	t = timegm(&tm);
	cr_assert_leq(labs((long)(t - now)), 5, "time off by %ld s",
		      (long)(t - now));
}

BACKEND_TEST(daytime, one_line_then_eof_ipv4_and_ipv6)
{
	static const int families[] = { AF_INET, AF_INET6 };
	char buf[512];
	struct srv s;
	struct srv_stats st;

	cr_assert_eq(srv_start_services(&s, backend, daytime_only), 0);
	for (int f = 0; f < 2; f++) {
		for (int i = 0; i < 20; i++) {
			fetch(families[f], srv_port(&s, "daytime", families[f]),
			      buf, sizeof(buf));
			assert_line_now(buf);
		}
	}
	cr_assert_eq(srv_wait_idle(&s, &st, 10000), 0);
	cr_assert_eq(st.conns_accepted, 40);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

BACKEND_TEST(daytime, input_from_the_client_is_ignored)
{
	char buf[512];
	struct srv s;
	int fd;

	cr_assert_eq(srv_start_services(&s, backend, daytime_only), 0);
	fd = tcp_connect(AF_INET, srv_port(&s, "daytime", AF_INET));
	cr_assert_geq(fd, 0);
	write_all(fd, "hello\r\n", 7);
	/* Our bytes may reach the server after it closed, and be answered
	 * with a reset; the line must have arrived whole before that. */
	size_t n = 0;
	for (ssize_t r; n < sizeof(buf) - 1 &&
			(r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0)) > 0;)
		n += (size_t)r;
	close(fd);
	cr_assert_geq(n, 20);
	buf[n] = '\0';
	assert_line_now(buf);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

BACKEND_TEST(daytime, format_option_is_strftime)
{
	const char *argv[] = { "-b", "127.0.0.1",	  "-s", "daytime/tcp:0",
			       "-o", "daytime.format=%s", NULL };
	char buf[128];
	struct srv s;
	long t;

	cr_assert_eq(srv_start(&s, backend, 1, argv), 0);
	fetch(AF_INET, srv_port(&s, "daytime", AF_INET), buf, sizeof(buf));
	cr_assert_eq(buf[strlen(buf) - 2], '\r');
	t = strtol(buf, NULL, 10);
	cr_assert_leq(labs(t - (long)time(NULL)), 5, "line \"%s\"", buf);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

BACKEND_TEST(daytime, local_time_zone_option)
{
	const char *argv[] = { "-b", "127.0.0.1",	 "-s", "daytime/tcp:0",
			       "-o", "daytime.tz=local", NULL };
	char buf[128];
	struct srv s;

	setenv("TZ", "Asia/Kolkata", 1); /* +05:30, no daylight saving */
	cr_assert_eq(srv_start(&s, backend, 1, argv), 0);
	fetch(AF_INET, srv_port(&s, "daytime", AF_INET), buf, sizeof(buf));
	cr_assert(strstr(buf, "-IST\r\n"), "line \"%s\"", buf);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}
