/* SPDX-License-Identifier: MIT */
/*
 * test_harness.c - the harness keeps its promise about io_uring: where it
 * cannot run, io_uring variants are skipped with the library's reason,
 * printed, and everything else still runs and passes; where it runs, they
 * run.
 *
 * The backend_skip_probe suites are ordinary tests (a loop per backend
 * runs a timer; an in-process server on io_uring echoes; the probe agrees
 * with a raw io_uring_setup). The backend_skip suite runs this same
 * program again, restricted to backend_skip_probe, under
 * tests/tools/seccomp_launch.c with the io_uring system calls failing with
 * EPERM and with ENOSYS (as a container's seccomp profile does), and
 * without it, and reads the report. The inner run must not inherit
 * BXFI_MAP, the variable Criterion hands its test workers, or it would
 * take itself for a worker. The suites are named backend_* because they
 * touch io_uring outside *_io_uring suites: make valgrind leaves both
 * out, as valgrind cannot follow io_uring.
 */
#include "harness.h"
#include "loopsrv.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- what the inner run runs ---- */

static int fired;

static void on_timer(struct evr_timer *t)
{
	(void)t;
	fired++;
}

BACKEND_TEST(backend_skip_probe, a_loop_runs_a_timer)
{
	struct evr_loop_opts o;
	struct evr_timer t;
	struct evr_loop *l;

	evr_loop_opts_init(&o);
	o.backend = backend;
	cr_assert_eq(evr_loop_new(&l, &o), 0);
	cr_assert_str_eq(evr_loop_backend(l), backend);
	evr_timer_init(&t, on_timer);
	evr_timer_start(l, &t, 1);
	/* the loop returns when nothing is left to wait for */
	cr_assert_eq(evr_loop_run(l), 0);
	cr_assert_eq(fired, 1);
	evr_loop_free(l);
}

Test(backend_skip_probe, in_process_server_on_io_uring_echoes, .timeout = 60)
{
	struct server s = { 0 };
	char buf[5];
	int fd;

	evr_loop_opts_init(&s.o);
	server_start(&s, "io_uring");
	fd = tcp_connect(AF_INET, s.port);
	cr_assert_geq(fd, 0);
	cr_assert_eq(xfer(fd, "ping\n", 5, buf, 5, true, 10000), 0);
	cr_assert_eq(memcmp(buf, "ping\n", 5), 0);
	close(fd);
	server_wait_idle(&s);
	server_stop(&s);
}

/* The probe against the kernel itself: a ring the kernel refuses is a
 * refusal that names the kernel's error; a ring the kernel grants is not
 * refused for io_uring_setup. */
Test(backend_skip_probe, probe_agrees_with_a_raw_io_uring_setup)
{
	struct io_uring_params p;
	const char *why = io_uring_refusal();
	int fd, err;

	memset(&p, 0, sizeof(p));
	fd = (int)syscall(__NR_io_uring_setup, 4, &p);
	err = errno;
	if (fd < 0) {
		cr_assert_not_null(why,
				   "io_uring_setup: %s, yet the probe "
				   "says io_uring runs",
				   strerror(err));
		cr_assert(strstr(why, strerror(err)), "probe: %s; kernel: %s",
			  why, strerror(err));
		return;
	}
	close(fd);
	cr_assert(!why || !strstr(why, "io_uring_setup"),
		  "the kernel set up a ring, yet the probe says: %s", why);
}

/* ---- the inner run ---- */

static char out[65536];

/* Run this program's backend_skip_probe tests, under seccomp-launch ACTION
 * unless action is NULL; the exit status, the report in out. */
static int run_probes(const char *action)
{
	char self[512];
	const char *args[16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int k = 0;

	cr_assert_gt(n, 0);
	self[n] = '\0';
	args[k++] = "/usr/bin/env";
	args[k++] = "-u";
	args[k++] = "BXFI_MAP";
	if (action) {
		args[k++] = tool_path("seccomp-launch");
		args[k++] = action;
	}
	args[k++] = self;
	args[k++] = "--jobs";
	args[k++] = "1";
	args[k++] = "--filter";
	args[k++] = "backend_skip_probe*/*";
	args[k] = NULL;
	return run_capture(args, out, sizeof(out), 50000);
}

static void io_uring_skipped_epoll_ran(const char *action, const char *says)
{
	static const char *const skipped[] = {
		"backend_skip_probe_io_uring::a_loop_runs_a_timer",
		"backend_skip_probe::in_process_server_on_io_uring_echoes",
	};
	char line[512];
	int rc = run_probes(action);

	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	for (size_t i = 0; i < 2; i++) {
		snprintf(line, sizeof(line),
			 "[SKIP] %s: io_uring cannot run here: "
			 "io_uring_setup: %s",
			 skipped[i], says);
		cr_assert(strstr(out, line), "expected \"%s\" in: %s", line,
			  out);
	}
	cr_assert(strstr(out, "[====] Skipped: 2,"), "%s", out);
	/* the epoll variant and the probe check ran and passed */
	cr_assert(strstr(out, "Tested: 2 | Passing: 2 | Failing: 0 | "
			      "Crashing: 0"),
		  "%s", out);
}

Test(backend_skip, io_uring_variants_skip_with_the_reason_under_seccomp_eperm,
     .timeout = 60)
{
	io_uring_skipped_epoll_ran("EPERM", "Operation not permitted");
}

Test(backend_skip, io_uring_variants_skip_with_the_reason_under_seccomp_enosys,
     .timeout = 60)
{
	io_uring_skipped_epoll_ran("ENOSYS", "Function not implemented");
}

/* Without the filter nothing may be skipped on a machine where io_uring
 * runs: a probe that refused wrongly would hide every io_uring test. */
Test(backend_skip, io_uring_variants_run_where_io_uring_runs, .timeout = 60)
{
	int rc;

	skip_unless_backend_runs("io_uring");
	rc = run_probes(NULL);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, out);
	cr_assert_null(strstr(out, "[SKIP]"), "%s", out);
	cr_assert(strstr(out, "Tested: 4 | Passing: 4 | Failing: 0 | "
			      "Crashing: 0"),
		  "%s", out);
}
