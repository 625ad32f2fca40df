/* SPDX-License-Identifier: MIT */
/*
 * test_sysctl.c - auto falls back to epoll when kernel.io_uring_disabled=2.
 *
 * Opt-in: runs only with EVRING_TEST_SYSCTL=1 in the environment (and as
 * root), for example
 *
 *	sudo EVRING_TEST_SYSCTL=1 make test
 *
 * and is skipped, with the reason, otherwise. The sysctl is machine-wide
 * and belongs to no namespace: while it is 2, every other program on the
 * host that sets up an io_uring ring fails, so a test suite must not set
 * it unasked. When asked, the window is kept short: this program holds
 * one test only, make runs test programs one after another (nothing else
 * of ours sets up a ring meanwhile), and the old value is restored as soon
 * as the server has chosen its backend, and again at the end even when the
 * test fails. The test is skipped, not failed, where the sysctl is absent
 * or not writable.
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
#define OPT_IN "EVRING_TEST_SYSCTL"

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
	const char *opt_in = getenv(OPT_IN);
	ssize_t n;
	int fd;

	if (!opt_in || strcmp(opt_in, "1"))
		cr_skip_test("sets the machine-wide " SYSCTL " to 2, which "
			     "breaks every io_uring program on the host "
			     "meanwhile: run with " OPT_IN "=1 to allow it");
	fd = open(SYSCTL, O_RDONLY | O_CLOEXEC);
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
