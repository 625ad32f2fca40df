/* SPDX-License-Identifier: MIT */
/*
 * listen_fds.c - pass sockets to a program the way systemd's socket
 * activation does (sd_listen_fds(3)), for tests.
 *
 *	listen-fds [--pid N] NAMES FD [FD...] -- PROGRAM [ARGS...]
 *
 * Moves each FD (inherited from the caller) to 3, 4, ... in the order
 * given, sets LISTEN_FDS to their number, LISTEN_FDNAMES to NAMES
 * ("echo:daytime"; "-" leaves it unset) and LISTEN_PID to its own pid
 * (the program's, after exec), or N with --pid, then execs PROGRAM. The
 * caller keeps its own copies open, as systemd keeps the sockets while a
 * service restarts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FDS 32
#define HIGH_FD 100

static int usage(void)
{
	fprintf(stderr, "usage: listen-fds [--pid N] NAMES FD [FD...] -- "
			"PROGRAM [ARGS...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	int fds[MAX_FDS], n = 0, i = 1;
	long pid = (long)getpid();
	const char *names;
	char buf[32];

	if (argc > 2 && !strcmp(argv[1], "--pid")) {
		pid = atol(argv[2]);
		i = 3;
	}
	if (i >= argc)
		return usage();
	names = argv[i++];
	for (; i < argc && strcmp(argv[i], "--"); i++) {
		if (n == MAX_FDS)
			return usage();
		/* out of the way first: a source may be a target too */
		fds[n] = fcntl(atoi(argv[i]), F_DUPFD, HIGH_FD);
		if (fds[n] < 0) {
			fprintf(stderr, "listen-fds: fd %s: %s\n", argv[i],
				strerror(errno));
			return 1;
		}
		close(atoi(argv[i]));
		n++;
	}
	if (i + 1 >= argc || n == 0)
		return usage();
	for (int k = 0; k < n; k++) {
		if (dup2(fds[k], 3 + k) < 0) {
			fprintf(stderr, "listen-fds: dup2: %s\n",
				strerror(errno));
			return 1;
		}
		close(fds[k]);
	}
	snprintf(buf, sizeof(buf), "%d", n);
	setenv("LISTEN_FDS", buf, 1);
	snprintf(buf, sizeof(buf), "%ld", pid);
	setenv("LISTEN_PID", buf, 1);
	if (strcmp(names, "-"))
		setenv("LISTEN_FDNAMES", names, 1);
	else
		unsetenv("LISTEN_FDNAMES");
	execvp(argv[i + 1], argv + i + 1);
	fprintf(stderr, "listen-fds: exec %s: %s\n", argv[i + 1],
		strerror(errno));
	return 127;
}
