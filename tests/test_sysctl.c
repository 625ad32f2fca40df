/* SPDX-License-Identifier: MIT */
/*
 * test_sysctl.c - auto falls back to epoll when kernel.io_uring_disabled=2.
 *
 * The sysctl is machine-wide, so this program holds one test only and make
 * runs test programs one after another: nothing else of ours sets up a
 * ring meanwhile. The old value is restored even when the test fails. The
 * test is skipped, not failed, where the sysctl is absent or not writable.
 */
#include "harness.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SYSCTL "/proc/sys/kernel/io_uring_disabled"

static char saved[16];

static int sysctl_write(const char *v)
{
	int fd = open(SYSCTL, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, v, strlen(v));
	close(fd);
	return n == (ssize_t)strlen(v) ? 0 : -1;
}

static void restore(void)
{
	if (saved[0])
		sysctl_write(saved);
}

Test(backend_sysctl, io_uring_disabled_2_falls_back_to_epoll, .timeout = 60,
     .fini = restore)
{
	const char *argv[] = { "-b", "127.0.0.1", "-s", "echo/tcp:0", NULL };
	char buf[8];
	struct srv s;
	int fd = open(SYSCTL, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		cr_skip_test(SYSCTL " does not exist on this kernel");
	n = read(fd, saved, sizeof(saved) - 1);
	close(fd);
	saved[n > 0 ? n : 0] = '\0';
	if (sysctl_write("2") < 0) {
		saved[0] = '\0';
		cr_skip_test(SYSCTL " is not writable here");
	}
	cr_assert_eq(srv_start(&s, "auto", 1, argv), 0);
	restore(); /* as soon as the loop exists: the sysctl is global */
	cr_assert_str_eq(s.backend, "epoll");
	fd = tcp_connect(AF_INET, srv_port(&s, "echo", AF_INET));
	cr_assert_geq(fd, 0);
	cr_assert_eq(xfer(fd, "ping", 4, buf, 4, true, 10000), 0);
	cr_assert_eq(memcmp(buf, "ping", 4), 0);
	close(fd);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	cr_assert(srv_log_has(&s, "io_uring_setup: Operation not permitted"),
		  "log: %s", srv_log(&s));
}
